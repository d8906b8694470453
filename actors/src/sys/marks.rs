//! The mark of a run's scripts: every `before.sh`/`after.sh` gets `SIPPLAUNCHER_RUN=<mark>` in its
//! environment, and whatever it starts inherits it, also a daemon that leaves the script's
//! process group and session (`setsid`, a double fork, `sipp -bg`). So what a script left running
//! is found in /proc by its mark, stopped exactly (pidfd, start time), and the next run finds
//! and stops what a killed run's scripts left, since the mark names its sipplauncher.
//!
//! The limit: a process that drops its environment (`env -i`, `sudo` without `env_keep`, a
//! service started through systemd or docker, which its manager starts, not the script) and
//! leaves the script's process group is not found.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::sys::owner::RunOwner;

/// The environment variable that carries the mark.
pub const MARK_VAR: &str = "SIPPLAUNCHER_RUN";

/// Whose scripts a process belongs to: the sipplauncher process (which may be gone) and its
/// test run (`run=<run_id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub owner: RunOwner,
    pub run: String,
}

impl Mark {
    /// The mark of run `run_id` of this process.
    pub fn for_run(run_id: &str) -> io::Result<Mark> {
        Ok(Mark {
            owner: this_process()?,
            run: run_id.to_string(),
        })
    }

    /// The variable's value: `pid=N start=T pidns=I run=<run_id>`.
    pub fn value(&self) -> String {
        format!("{} run={}", self.owner, self.run)
    }

    /// The inverse of [`Mark::value`].
    pub fn parse(text: &str) -> Option<Mark> {
        let (owner, run) = text.trim().rsplit_once(" run=")?;
        if run.is_empty() || run.contains(char::is_whitespace) {
            return None;
        }
        Some(Mark {
            owner: RunOwner::parse(owner)?,
            run: run.to_string(),
        })
    }
}

/// This sipplauncher, read once from /proc.
fn this_process() -> io::Result<RunOwner> {
    static ME: OnceLock<RunOwner> = OnceLock::new();
    if let Some(me) = ME.get() {
        return Ok(*me);
    }
    let me = RunOwner::current()?;
    Ok(*ME.get_or_init(|| me))
}

/// A process, told apart from a later one that got its pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcId {
    pub pid: i32,
    pub start: u64,
}

/// One process as the scan saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub id: ProcId,
    pub ppid: i32,
    pub pgid: i32,
    pub comm: String,
    /// A zombie: already dead, waiting for its parent to reap it.
    pub zombie: bool,
    pub mark: Option<Mark>,
}

/// The fields of `/proc/<pid>/stat` a scan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    /// Clock ticks after boot.
    pub start: u64,
    pub comm: String,
}

/// The fields of the text of `/proc/<pid>/stat`.
pub fn parse_stat(stat: &str) -> Option<Stat> {
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        // Field 22 of the whole line, the 20th after the command name.
        start: fields.get(19)?.parse().ok()?,
        comm,
    })
}

/// The value of [`MARK_VAR`] in the text of `/proc/<pid>/environ` (NUL-separated `K=V`).
pub fn mark_in_environ(environ: &[u8]) -> Option<Mark> {
    let prefix = format!("{MARK_VAR}=");
    environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(Mark::parse)
}

/// A window older than this is not trusted: the pid counter may have gone round since (pid_max
/// may be as low as 32768), so the whole of /proc is read.
const WINDOW_TRUSTED_FOR: Duration = Duration::from_secs(20);

/// Where the pid counter of this pid namespace stood when a run's first script started: what
/// the scripts made since has a later pid, so a scan reads only those (reading /proc costs tens
/// of microseconds per process; a busy machine has hundreds).
#[derive(Debug, Clone, Copy)]
pub struct PidWindow {
    /// The last pid assigned before the window opened.
    from: i32,
    at: Instant,
}

impl PidWindow {
    /// Opens a window now; `None` when the counter cannot be read (then scans read everything).
    pub fn open() -> Option<PidWindow> {
        Some(PidWindow {
            from: last_pid()?,
            at: Instant::now(),
        })
    }

    /// The test for pids assigned since the window opened, or `None` when every pid must be
    /// read (the window is old, or the counter cannot be read).
    fn filter(&self) -> Option<impl Fn(i32) -> bool> {
        if self.at.elapsed() > WINDOW_TRUSTED_FOR {
            return None;
        }
        let (from, to) = (self.from, last_pid()?);
        Some(move |pid: i32| in_window(pid, from, to))
    }
}

/// Whether `pid` was assigned after `from` up to `to`, the counter having maybe wrapped.
fn in_window(pid: i32, from: i32, to: i32) -> bool {
    if to >= from {
        pid > from && pid <= to
    } else {
        pid > from || pid <= to
    }
}

/// The last pid assigned in this pid namespace (the last field of `/proc/loadavg`).
fn last_pid() -> Option<i32> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().last()?.parse().ok()
}

/// A small /proc file in one read (a `read_to_string` costs two or three system calls).
fn read_small(path: &str, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let mut f = std::fs::File::open(path)?;
    // Most stat and environ files fit; a longer one is read to its end.
    buf.resize(8192, 0);
    let n = f.read(buf)?;
    buf.truncate(n);
    if n == 8192 {
        f.read_to_end(buf)?;
    }
    Ok(())
}

/// Every process of this pid namespace's /proc but this one, with its mark (blocking: a read of
/// /proc); with a `window`, only those made since it opened. Those that vanish while being read
/// are skipped.
pub fn scan(window: Option<PidWindow>) -> Vec<Seen> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let filter = window.as_ref().and_then(PidWindow::filter);
    let mut buf = Vec::new();
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| filter.as_ref().is_none_or(|f| f(*pid)))
        .filter_map(|pid| {
            read_small(&format!("/proc/{pid}/stat"), &mut buf).ok()?;
            let stat = parse_stat(std::str::from_utf8(&buf).ok()?)?;
            let mark = read_small(&format!("/proc/{pid}/environ"), &mut buf)
                .ok()
                .and_then(|()| mark_in_environ(&buf));
            Some(Seen {
                id: ProcId {
                    pid,
                    start: stat.start,
                },
                ppid: stat.ppid,
                pgid: stat.pgid,
                comm: stat.comm,
                zombie: stat.state == 'Z',
                mark,
            })
        })
        .collect()
}

/// The live processes that carry `mark` or are among `known`, and their descendants: a child
/// caught in the middle of an `exec` shows an empty environment for a moment, but its parent
/// tells whose it is.
pub fn select(seen: &[Seen], mark: &Mark, known: &[ProcId]) -> Vec<ProcId> {
    let mut ours: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.mark.as_ref() == Some(mark) || known.contains(&s.id))
        .collect();
    // Descendants, generation by generation (a scan is small: what was made since a window).
    loop {
        let more: Vec<&Seen> = seen
            .iter()
            .filter(|s| !ours.iter().any(|o| o.id == s.id))
            .filter(|s| ours.iter().any(|o| o.id.pid == s.ppid))
            .collect();
        if more.is_empty() {
            break;
        }
        ours.extend(more);
    }
    let mut ids: Vec<ProcId> = ours.iter().filter(|s| !s.zombie).map(|s| s.id).collect();
    ids.sort();
    ids
}

/// The live processes whose mark names a sipplauncher that is gone (killed, crashed): what a
/// killed run's scripts left. Marks of live runs, and of runs in another pid namespace, are
/// left alone.
pub fn of_dead_runs(seen: &[Seen]) -> Vec<ProcId> {
    seen.iter()
        .filter(|s| !s.zombie)
        .filter(|s| s.mark.as_ref().is_some_and(|m| m.owner.is_gone()))
        .map(|s| s.id)
        .collect()
}

/// Whether `id` still runs (a zombie has stopped running).
pub fn is_alive(id: ProcId) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", id.pid)) {
        Ok(stat) => parse_stat(&stat).is_some_and(|s| s.start == id.start && s.state != 'Z'),
        Err(_) => false,
    }
}

/// Sends `signal` to exactly process `id`: through a pidfd, opened and then checked to be the
/// process of that start time, so a pid reused meanwhile is never hit. Returns whether it was
/// sent.
pub fn signal(id: ProcId, signal: Signal) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; nothing is borrowed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, id.pid, 0) };
    if fd < 0 {
        if io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            // A kernel before 5.3: the pid, checked just before (a small window).
            return is_alive(id) && kill(Pid::from_raw(id.pid), signal).is_ok();
        }
        return false;
    }
    // SAFETY: `fd` was just returned by pidfd_open and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The pidfd holds on to the process it was opened for; if that is the one we saw, the
    // signal reaches it and nothing else.
    if !is_alive(id) {
        return false;
    }
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    fn me() -> RunOwner {
        RunOwner::current().unwrap()
    }

    #[test]
    fn mark_round_trip_and_bad_values() {
        let m = Mark::for_run("abcdef").unwrap();
        assert_eq!(m.owner, me());
        assert_eq!(Mark::parse(&m.value()), Some(m.clone()));
        assert!(m.value().ends_with(" run=abcdef"), "{}", m.value());
        for bad in [
            "",
            "run=abc",
            "pid=1 start=2 pidns=3",
            "pid=1 start=2 pidns=3 run=",
            "pid=1 start=2 run=x",
            "pid=x start=2 pidns=3 run=x",
        ] {
            assert_eq!(Mark::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn mark_found_among_the_environment() {
        let m = Mark::for_run("qwerty").unwrap();
        let env = format!("A=1\0{MARK_VAR}X=2\0{MARK_VAR}={}\0B=3\0", m.value());
        assert_eq!(mark_in_environ(env.as_bytes()), Some(m));
        assert_eq!(mark_in_environ(b"A=1\0B=2\0"), None);
        assert_eq!(mark_in_environ(b""), None);
        assert_eq!(
            mark_in_environ(format!("{MARK_VAR}=garbage\0").as_bytes()),
            None
        );
    }

    #[test]
    fn pid_windows_wrap_around() {
        assert!(in_window(11, 10, 20) && in_window(20, 10, 20));
        assert!(!in_window(10, 10, 20) && !in_window(21, 10, 20) && !in_window(5, 10, 20));
        // The counter went round: from 32000 past pid_max to 400.
        assert!(in_window(32001, 32000, 400) && in_window(300, 32000, 400));
        assert!(!in_window(32000, 32000, 400) && !in_window(401, 32000, 400));
        // Nothing assigned since.
        assert!(!in_window(10, 10, 10) && !in_window(11, 10, 10));
    }

    /// A process started after a window opened is in its scans; one started before is not.
    #[test]
    fn a_window_sees_what_came_after_it() {
        let mark = Mark::for_run("window").unwrap();
        let spawn = || {
            Command::new("sleep")
                .arg("30")
                .env(MARK_VAR, mark.value())
                .spawn()
                .unwrap()
        };
        let mut before = spawn();
        let window = PidWindow::open().expect("/proc/loadavg");
        let mut after = spawn();
        let deadline = Instant::now() + Duration::from_secs(5);
        let (windowed, full) = loop {
            let w: Vec<i32> = select(&scan(Some(window)), &mark, &[])
                .iter()
                .map(|s| s.pid)
                .collect();
            let f: Vec<i32> = select(&scan(None), &mark, &[])
                .iter()
                .map(|s| s.pid)
                .collect();
            if (w.len() == 1 && f.len() == 2) || Instant::now() > deadline {
                break (w, f);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        before.kill().unwrap();
        after.kill().unwrap();
        before.wait().unwrap();
        after.wait().unwrap();
        assert_eq!(
            windowed,
            [after.id() as i32],
            "window {window:?} last {:?}",
            last_pid()
        );
        assert_eq!(full.len(), 2, "{full:?}");
    }

    #[test]
    fn stat_fields() {
        let line = "77 (a (b) c) S 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 424242 23";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                ppid: 5,
                pgid: 6,
                start: 424242,
                comm: "a (b) c".to_string()
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn selection_by_mark_group_and_liveness() {
        let mine = Mark::for_run("aaaaaa").unwrap();
        let other = Mark::for_run("bbbbbb").unwrap();
        let dead = Mark {
            owner: RunOwner {
                start: me().start + 1,
                ..me()
            },
            run: "cccccc".into(),
        };
        let elsewhere = Mark {
            owner: RunOwner {
                pidns: me().pidns + 1,
                ..dead.owner
            },
            run: "dddddd".into(),
        };
        let p = |pid, ppid, zombie, mark: Option<&Mark>| Seen {
            id: ProcId { pid, start: 1 },
            ppid,
            pgid: pid,
            comm: "x".into(),
            zombie,
            mark: mark.cloned(),
        };
        let seen = vec![
            p(10, 1, false, Some(&mine)),
            p(11, 1, false, None), // known (seen in the script's group), env cleared
            p(12, 1, false, Some(&other)),
            p(13, 1, true, Some(&mine)), // a zombie
            p(14, 1, false, None),
            p(15, 1, false, Some(&dead)),
            p(16, 1, false, Some(&elsewhere)),
            p(17, 10, false, None), // a child of 10 in the middle of an exec
            p(18, 17, false, None), // and its child
            p(19, 13, false, None), // the child of a zombie of ours
            p(20, 12, false, None), // another run's
        ];
        let pids = |v: Vec<ProcId>| v.iter().map(|s| s.pid).collect::<Vec<_>>();
        let known = [ProcId { pid: 11, start: 1 }];
        assert_eq!(pids(select(&seen, &mine, &known)), [10, 11, 17, 18, 19]);
        assert_eq!(pids(select(&seen, &mine, &[])), [10, 17, 18, 19]);
        assert_eq!(pids(of_dead_runs(&seen)), [15]);
    }

    /// A child of this test carrying a mark is found by a real scan, signalled exactly, and gone.
    #[test]
    fn a_marked_child_is_found_and_stopped() {
        let mark = Mark::for_run("scanme").unwrap();
        let mut child = Command::new("sleep")
            .arg("30")
            .env(MARK_VAR, mark.value())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        let found = loop {
            // The mark is in the environment once `sleep` is exec'd.
            let found: Vec<Seen> = scan(None)
                .into_iter()
                .filter(|s| s.mark.as_ref() == Some(&mark))
                .collect();
            if !found.is_empty() || Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].id.pid, pid);
        assert_eq!(found[0].comm, "sleep");
        let id = found[0].id;
        assert!(is_alive(id));
        // Another start time: not this process, not signalled.
        assert!(!signal(
            ProcId {
                start: id.start + 1,
                ..id
            },
            Signal::SIGKILL
        ));
        assert!(is_alive(id));
        assert!(signal(id, Signal::SIGKILL));
        child.wait().unwrap();
        assert!(!is_alive(id));
        assert!(!signal(id, Signal::SIGKILL));
    }
}
