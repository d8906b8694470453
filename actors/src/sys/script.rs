//! Running a test's `before.sh` / `after.sh` (§2, §4.2): `sh <name>` in the run folder, in its own
//! process group, with a timeout, its output logged line by line, and nothing of it left running.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use slog::{info, warn, Logger};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::watch;
use tokio::time::sleep_until;

/// After SIGTERM on timeout, how long the script gets to clean up before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// After the script and its process group are gone, how long we keep reading output that a
/// process which left the group (`setsid`) may still hold open.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Lines kept for the error message.
const TAIL_LINES: usize = 5;

/// A line longer than this is logged in pieces (a script printing binary data must not make us
/// buffer without bound).
const MAX_LINE: usize = 16 * 1024;

/// "Kill what is left at once": fired by the second Ctrl+C (§4.2). Cheap to clone; every clone
/// sees the same switch.
#[derive(Debug, Clone)]
pub struct KillSwitch {
    /// `true` once fired; a watch channel remembers it for those who ask later.
    fired: Arc<watch::Sender<bool>>,
}

impl Default for KillSwitch {
    fn default() -> Self {
        Self::new()
    }
}

impl KillSwitch {
    pub fn new() -> Self {
        KillSwitch {
            fired: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Fires the switch; it stays fired.
    pub fn kill(&self) {
        self.fired.send_replace(true);
    }

    pub fn is_killed(&self) -> bool {
        *self.fired.borrow()
    }

    /// Resolves once [`KillSwitch::kill`] was called, at once if it already was.
    pub async fn killed(&self) {
        let mut rx = self.fired.subscribe();
        // `wait_for` fails only when the sender is gone, and `self` holds it: never.
        if rx.wait_for(|fired| *fired).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// How a script run went when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptRun {
    /// The test has no such script: nothing was run.
    Absent,
    /// It ran and exited 0.
    Ran { took: Duration },
}

/// Why a script failed. Every message is one line starting with the script's name.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("{name} could not be started: {source}")]
    Start {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("{name} could not be waited for: {source}")]
    Wait {
        name: String,
        #[source]
        source: io::Error,
    },
    /// Non-zero exit status; `tail` is its last lines of stderr (of stdout if stderr was empty).
    #[error("{name} exited with status {code}{}", last_line(tail))]
    Exit {
        name: String,
        code: i32,
        tail: Vec<String>,
    },
    /// Killed by a signal that was not ours.
    #[error("{name} was killed by signal {}{}", signal_name(*signal), last_line(tail))]
    Signal {
        name: String,
        signal: i32,
        tail: Vec<String>,
    },
    #[error("{name} timed out after {} and was killed", seconds(*after))]
    Timeout { name: String, after: Duration },
    #[error("{name} was killed (second interrupt)")]
    Killed { name: String },
}

fn last_line(tail: &[String]) -> String {
    tail.last().map(|l| format!(": {l}")).unwrap_or_default()
}

fn signal_name(signal: i32) -> String {
    Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| signal.to_string())
}

/// `60s`, `0.3s`.
fn seconds(d: Duration) -> String {
    format!("{}s", d.as_millis() as f64 / 1000.0)
}

/// Runs `sh <name>` in `cwd` (the run folder) and waits for it, logging its output into `log`.
///
/// The script gets its own process group, so a Ctrl+C on the terminal does not reach it; on
/// `timeout` the group gets SIGTERM, then SIGKILL 2 s later; when `kill` fires it gets SIGKILL at
/// once (and a script is not started at all if `kill` already fired). When the script exits,
/// whatever it left running in its group is killed. The child is always reaped.
pub async fn run_script(
    name: &str,
    cwd: &Path,
    timeout: Duration,
    log: &Logger,
    kill: &KillSwitch,
) -> Result<ScriptRun, ScriptError> {
    let start_err = |source: io::Error| ScriptError::Start {
        name: name.to_string(),
        source,
    };
    let path = cwd.join(name);
    let exists = tokio::task::spawn_blocking(move || path.try_exists())
        .await
        .map_err(|e| start_err(io::Error::other(e)))?
        .map_err(start_err)?;
    if !exists {
        return Ok(ScriptRun::Absent);
    }
    if kill.is_killed() {
        return Err(ScriptError::Killed {
            name: name.to_string(),
        });
    }
    // A script may read the run's logs (an after.sh collecting them): they are complete.
    crate::sys::logging::flushed().await;

    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg(name)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(start_err)?;
    // `id()` is `None` only once the child was reaped, which has not happened yet.
    let Some(pid) = child.id() else {
        return Err(start_err(io::Error::other("no process id")));
    };
    let mut group = Group::new(pid);
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut out = Lines::new(log, name, Stream::Stdout);
    let mut err = Lines::new(log, name, Stream::Stderr);
    let mut out_buf = [0u8; 4096];
    let mut err_buf = [0u8; 4096];

    let now = tokio::time::Instant::now();
    // A timeout too large to add is as good as none.
    let deadline = now
        .checked_add(timeout)
        .unwrap_or(now + Duration::from_secs(100 * 365 * 24 * 3600));
    let mut end: Option<Forced> = None;
    let mut sigkill_at: Option<tokio::time::Instant> = None;
    let mut sigkilled = false;
    let waited = loop {
        tokio::select! {
            r = read_some(&mut stdout, &mut out_buf), if stdout.is_some() => match r {
                Ok(n) if n > 0 => out.push(&out_buf[..n]),
                _ => stdout = None,
            },
            r = read_some(&mut stderr, &mut err_buf), if stderr.is_some() => match r {
                Ok(n) if n > 0 => err.push(&err_buf[..n]),
                _ => stderr = None,
            },
            r = child.wait() => break r,
            _ = sleep_until(deadline), if end.is_none() => {
                end = Some(Forced::Timeout);
                group.signal(Signal::SIGTERM);
                sigkill_at = Some(tokio::time::Instant::now() + TERM_GRACE);
            }
            _ = sleep_until(sigkill_at.unwrap_or(deadline)), if sigkill_at.is_some() && !sigkilled => {
                group.signal(Signal::SIGKILL);
                sigkilled = true;
            }
            _ = kill.killed(), if !sigkilled => {
                end.get_or_insert(Forced::Killed);
                group.signal(Signal::SIGKILL);
                sigkilled = true;
            }
        }
    };
    let took = started.elapsed();
    // The script is gone; whatever it started in its group goes too.
    group.finish();
    let status = waited.map_err(|source| ScriptError::Wait {
        name: name.to_string(),
        source,
    })?;

    // Read what is left in the pipes: EOF comes at once now that the group is dead, unless
    // something escaped the group and holds them open.
    let drain_until = tokio::time::Instant::now() + DRAIN_GRACE;
    while stdout.is_some() || stderr.is_some() {
        tokio::select! {
            r = read_some(&mut stdout, &mut out_buf), if stdout.is_some() => match r {
                Ok(n) if n > 0 => out.push(&out_buf[..n]),
                _ => stdout = None,
            },
            r = read_some(&mut stderr, &mut err_buf), if stderr.is_some() => match r {
                Ok(n) if n > 0 => err.push(&err_buf[..n]),
                _ => stderr = None,
            },
            _ = sleep_until(drain_until) => break,
        }
    }
    out.finish();
    err.finish();

    let name = name.to_string();
    match end {
        Some(Forced::Timeout) => {
            return Err(ScriptError::Timeout {
                name,
                after: timeout,
            })
        }
        Some(Forced::Killed) => return Err(ScriptError::Killed { name }),
        None => {}
    }
    if status.success() {
        return Ok(ScriptRun::Ran { took });
    }
    let tail = if err.tail.is_empty() {
        out.tail
    } else {
        err.tail
    };
    let tail: Vec<String> = tail.into_iter().collect();
    match status.code() {
        Some(code) => Err(ScriptError::Exit { name, code, tail }),
        None => {
            use std::os::unix::process::ExitStatusExt;
            Err(ScriptError::Signal {
                name,
                signal: status.signal().unwrap_or(0),
                tail,
            })
        }
    }
}

/// Why we ended the script ourselves.
#[derive(Debug, Clone, Copy)]
enum Forced {
    Timeout,
    Killed,
}

/// Reads from a pipe still open; a closed one (`None`) never resolves (its select branch is off).
async fn read_some<R: AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

/// The script's process group: signalled as a whole; killed when dropped unfinished (the future
/// running the script was cancelled), so nothing of it outlives us.
struct Group {
    pgid: Pid,
    /// Cleared once the script was reaped and its group killed: the id may be reused later.
    armed: bool,
}

impl Group {
    fn new(pid: u32) -> Self {
        Group {
            // A pid fits in `pid_t`; a wrapped value would only make killpg fail with ESRCH.
            pgid: Pid::from_raw(pid as libc::pid_t),
            armed: true,
        }
    }

    /// ESRCH (the group is already empty) is what we want; anything else cannot be helped here.
    fn signal(&self, signal: Signal) {
        if self.armed {
            let _ = killpg(self.pgid, signal);
        }
    }

    /// The leader was reaped: kill what it left behind. While any member lives the kernel does not
    /// reuse the group id; if none is left this fails with ESRCH (only a pid reused within the
    /// microseconds since the reap could be hit, which needs the whole pid space to wrap).
    fn finish(&mut self) {
        self.signal(Signal::SIGKILL);
        self.armed = false;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Splits one output stream into lines, logs them, and keeps the last few.
struct Lines<'a> {
    log: &'a Logger,
    script: &'a str,
    stream: Stream,
    /// Bytes after the last newline.
    partial: Vec<u8>,
    /// Last non-blank lines, for the error message.
    tail: VecDeque<String>,
}

impl<'a> Lines<'a> {
    fn new(log: &'a Logger, script: &'a str, stream: Stream) -> Self {
        Lines {
            log,
            script,
            stream,
            partial: Vec::new(),
            tail: VecDeque::with_capacity(TAIL_LINES + 1),
        }
    }

    fn push(&mut self, mut data: &[u8]) {
        while let Some(pos) = data.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&data[..pos]);
            self.emit();
            data = &data[pos + 1..];
        }
        self.partial.extend_from_slice(data);
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            self.emit();
            self.partial = rest;
        }
    }

    /// The stream ended: a last line without newline counts too.
    fn finish(&mut self) {
        if !self.partial.is_empty() {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let bytes = std::mem::take(&mut self.partial);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
        let line = String::from_utf8_lossy(bytes).into_owned();
        match self.stream {
            Stream::Stdout => {
                info!(self.log, "{}", line; "script" => self.script, "stream" => "stdout")
            }
            Stream::Stderr => {
                warn!(self.log, "{}", line; "script" => self.script, "stream" => "stderr")
            }
        }
        if !line.trim().is_empty() {
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;
    use nix::sys::signal::kill as send;
    use std::fmt::Write as _;
    use std::fs;
    use std::sync::Mutex;

    /// A slog drain that keeps each record as `LEVEL msg key=value...`.
    struct Capture(Arc<Mutex<Vec<String>>>);

    struct KvText<'a>(&'a mut String);

    impl slog::Serializer for KvText<'_> {
        fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments) -> slog::Result {
            let _ = write!(self.0, " {key}={val}");
            Ok(())
        }
    }

    impl slog::Drain for Capture {
        type Ok = ();
        type Err = slog::Never;
        fn log(&self, record: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
            let mut line = format!("{} {}", record.level().as_short_str(), record.msg());
            let _ = slog::KV::serialize(&record.kv(), record, &mut KvText(&mut line));
            self.0.lock().unwrap().push(line);
            Ok(())
        }
    }

    fn logger() -> (Logger, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        (Logger::root(Capture(lines.clone()), slog::o!()), lines)
    }

    fn folder_with(script: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("before.sh"), script).unwrap();
        dir
    }

    async fn run(dir: &Path, timeout: Duration) -> (Result<ScriptRun, ScriptError>, Vec<String>) {
        let (log, lines) = logger();
        let res = run_script("before.sh", dir, timeout, &log, &KillSwitch::new()).await;
        let lines = lines.lock().unwrap().clone();
        (res, lines)
    }

    fn read_pid(path: &Path) -> Pid {
        Pid::from_raw(fs::read_to_string(path).unwrap().trim().parse().unwrap())
    }

    /// Gone, or a zombie waiting for a (possibly negligent) init to reap it. Waits up to 2 s.
    async fn gone(pid: Pid) -> bool {
        for _ in 0..200 {
            let zombie = fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(false);
            if send(pid, None) == Err(Errno::ESRCH) || zombie {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn an_endless_timeout_is_fine() {
        let dir = folder_with("exit 0\n");
        let (res, _) = run(dir.path(), Duration::MAX).await;
        assert!(matches!(res.unwrap(), ScriptRun::Ran { .. }));
    }

    #[tokio::test]
    async fn absent_script_is_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let (res, lines) = run(dir.path(), Duration::from_secs(5)).await;
        assert_eq!(res.unwrap(), ScriptRun::Absent);
        assert!(lines.is_empty());
    }

    #[tokio::test]
    async fn success_logs_stdout_at_info_and_stderr_at_warn() {
        let dir = folder_with("echo hello world\necho careful >&2\nprintf 'no newline'\n");
        let (res, lines) = run(dir.path(), Duration::from_secs(5)).await;
        assert!(matches!(res.unwrap(), ScriptRun::Ran { .. }));
        assert!(
            lines.contains(&"INFO hello world stream=stdout script=before.sh".to_string())
                || lines.contains(&"INFO hello world script=before.sh stream=stdout".to_string()),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("WARN careful") && l.contains("stream=stderr")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("INFO no newline")),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn every_line_is_logged_in_order_even_when_the_script_exits_at_once() {
        let dir = folder_with("i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done\n");
        let (res, lines) = run(dir.path(), Duration::from_secs(5)).await;
        res.unwrap();
        let got: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("INFO "))
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        let want: Vec<String> = (0..300).map(|i| format!("line{i}")).collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn non_zero_exit_names_the_status_and_the_last_stderr_line() {
        let dir = folder_with("echo out\nfor i in 1 2 3 4 5 6; do echo err$i >&2; done\nexit 3\n");
        let (res, _) = run(dir.path(), Duration::from_secs(5)).await;
        let err = res.unwrap_err();
        assert_eq!(err.to_string(), "before.sh exited with status 3: err6");
        match err {
            ScriptError::Exit { code, tail, .. } => {
                assert_eq!(code, 3);
                assert_eq!(tail, ["err2", "err3", "err4", "err5", "err6"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn non_zero_exit_without_stderr_uses_stdout() {
        let dir = folder_with("echo first\necho last\nexit 1\n");
        let (res, _) = run(dir.path(), Duration::from_secs(5)).await;
        assert_eq!(
            res.unwrap_err().to_string(),
            "before.sh exited with status 1: last"
        );
        let dir = folder_with("exit 1\n");
        let (res, _) = run(dir.path(), Duration::from_secs(5)).await;
        assert_eq!(
            res.unwrap_err().to_string(),
            "before.sh exited with status 1"
        );
    }

    #[tokio::test]
    async fn death_by_signal() {
        let dir = folder_with("echo bye >&2\nkill -9 $$\n");
        let (res, _) = run(dir.path(), Duration::from_secs(5)).await;
        let err = res.unwrap_err();
        assert!(
            matches!(err, ScriptError::Signal { signal: 9, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "before.sh was killed by signal SIGKILL: bye"
        );
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = folder_with("echo $$ > pid\nsleep 5 &\necho $! > child\nsleep 5\n");
        let started = Instant::now();
        let (res, _) = run(dir.path(), Duration::from_millis(300)).await;
        let err = res.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(err, ScriptError::Timeout { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "before.sh timed out after 0.3s and was killed"
        );
        assert!(gone(read_pid(&dir.path().join("pid"))).await);
        assert!(gone(read_pid(&dir.path().join("child"))).await);
    }

    #[tokio::test]
    async fn timeout_escalates_to_sigkill_when_term_is_ignored() {
        let dir = folder_with("trap '' TERM\necho $$ > pid\nsleep 10\n");
        let started = Instant::now();
        let (res, _) = run(dir.path(), Duration::from_millis(100)).await;
        let took = started.elapsed();
        assert!(matches!(res, Err(ScriptError::Timeout { .. })), "{res:?}");
        assert!(
            took >= TERM_GRACE && took < TERM_GRACE + Duration::from_secs(2),
            "{took:?}"
        );
        assert!(gone(read_pid(&dir.path().join("pid"))).await);
    }

    #[tokio::test]
    async fn kill_switch_kills_at_once() {
        let dir = folder_with("trap '' TERM INT\necho $$ > pid\nsleep 10\n");
        let (log, _) = logger();
        let kill = KillSwitch::new();
        let trigger = kill.clone();
        let started = Instant::now();
        let (res, ()) = tokio::join!(
            run_script(
                "before.sh",
                dir.path(),
                Duration::from_secs(60),
                &log,
                &kill
            ),
            async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                trigger.kill();
            }
        );
        let err = res.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err.to_string(), "before.sh was killed (second interrupt)");
        assert!(gone(read_pid(&dir.path().join("pid"))).await);
    }

    #[tokio::test]
    async fn a_fired_kill_switch_starts_nothing() {
        let dir = folder_with("touch ran\n");
        let (log, _) = logger();
        let kill = KillSwitch::new();
        kill.kill();
        let res = run_script("before.sh", dir.path(), Duration::from_secs(5), &log, &kill).await;
        assert!(matches!(res, Err(ScriptError::Killed { .. })), "{res:?}");
        assert!(!dir.path().join("ran").exists());
    }

    #[tokio::test]
    async fn background_children_do_not_outlive_the_script() {
        let dir = folder_with("sleep 30 &\necho $! > bg.pid\nexit 0\n");
        let started = Instant::now();
        let (res, _) = run(dir.path(), Duration::from_secs(5)).await;
        assert!(matches!(res.unwrap(), ScriptRun::Ran { .. }));
        // Not held up by the background sleep keeping the pipes open.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(gone(read_pid(&dir.path().join("bg.pid"))).await);
    }

    #[tokio::test]
    async fn runs_in_cwd_in_its_own_process_group() {
        let dir = folder_with(
            "pwd > where\nread -r pid comm state ppid pgrp rest < /proc/$$/stat\necho $pgrp > pgid\necho $$ > pid\n",
        );
        let (res, _) = run(dir.path(), Duration::from_secs(5)).await;
        res.unwrap();
        assert_eq!(
            fs::canonicalize(fs::read_to_string(dir.path().join("where")).unwrap().trim()).unwrap(),
            fs::canonicalize(dir.path()).unwrap()
        );
        let pgid = read_pid(&dir.path().join("pgid"));
        assert_ne!(pgid, nix::unistd::getpgrp());
        assert_eq!(pgid, read_pid(&dir.path().join("pid")));
    }

    #[tokio::test]
    async fn a_script_that_cannot_be_looked_at_is_a_start_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("file"), "").unwrap();
        let (res, _) = run(&dir.path().join("file"), Duration::from_secs(5)).await;
        let err = res.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("before.sh could not be started: "),
            "{err}"
        );
    }

    #[tokio::test]
    async fn kill_switch_remembers_and_is_shared() {
        let a = KillSwitch::new();
        let b = a.clone();
        assert!(!b.is_killed());
        a.kill();
        assert!(b.is_killed());
        tokio::time::timeout(Duration::from_secs(1), b.killed())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(1), KillSwitch::default().killed())
            .await
            .unwrap_err();
    }

    #[test]
    fn lines_are_split_across_chunks_and_capped() {
        let (log, lines) = logger();
        let mut l = Lines::new(&log, "after.sh", Stream::Stdout);
        l.push(b"ab");
        l.push(b"c\r\nd\n\nlast");
        l.push(&vec![b'x'; MAX_LINE + 10]);
        l.finish();
        let got: Vec<String> = lines
            .lock()
            .unwrap()
            .iter()
            .map(|s| {
                s.split(" stream=")
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(12)
                    .collect()
            })
            .collect();
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(&got[..3], ["INFO abc", "INFO d", "INFO "]);
        assert!(got[3].starts_with("INFO lastxxx"));
        assert_eq!(l.tail.len(), 4); // the blank line is not kept
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(seconds(Duration::from_secs(60)), "60s");
        assert_eq!(seconds(Duration::from_millis(300)), "0.3s");
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(99), "99");
    }
}
