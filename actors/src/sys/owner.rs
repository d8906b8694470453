//! Who made a run folder or a link: a sipplauncher process, named so that a later run can tell
//! whether it is gone (killed, crashed) and what it left may be removed.

use std::fmt;
use std::io;

/// A process, told apart from a later one that got the same pid by its start time (clock ticks
/// after boot, `/proc/<pid>/stat` field 22), in a pid namespace (its inode number): a run in
/// another pid namespace (another container sharing the run root or the network namespace)
/// cannot be seen from here, so it is never judged gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOwner {
    pub pid: i32,
    pub start: u64,
    pub pidns: u64,
}

impl RunOwner {
    /// This process.
    pub fn current() -> io::Result<RunOwner> {
        let pid = std::process::id() as i32;
        let start = start_time(pid)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "cannot read /proc/self/stat")
        })?;
        Ok(RunOwner {
            pid,
            start,
            pidns: pid_namespace()?,
        })
    }

    /// Process `pid` of this pid namespace, if there is one.
    pub fn of_process(pid: i32) -> Option<RunOwner> {
        Some(RunOwner {
            pid,
            start: start_time(pid).ok()??,
            pidns: pid_namespace().ok()?,
        })
    }

    /// `pid=N start=T pidns=I`, as [`fmt::Display`] writes it.
    pub fn parse(text: &str) -> Option<RunOwner> {
        let (mut pid, mut start, mut pidns) = (None, None, None);
        for field in text.split_whitespace() {
            match field.split_once('=') {
                Some(("pid", v)) => pid = v.parse().ok(),
                Some(("start", v)) => start = v.parse().ok(),
                Some(("pidns", v)) => pidns = v.parse().ok(),
                _ => return None,
            }
        }
        Some(RunOwner {
            pid: pid?,
            start: start?,
            pidns: pidns?,
        })
    }

    /// Whether the process still runs (its pid has not gone to another process since), as
    /// seen from this pid namespace.
    pub fn is_alive(&self) -> bool {
        // Unreadable for another reason than "no such process": count it as alive, so that
        // nothing of a run that may still be going is removed.
        start_time(self.pid).map_or(true, |start| start == Some(self.start))
    }

    /// Whether what it made may be removed: it is of this pid namespace and no longer runs.
    pub fn is_gone(&self) -> bool {
        pid_namespace().is_ok_and(|ns| ns == self.pidns) && !self.is_alive()
    }
}

impl fmt::Display for RunOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid={} start={} pidns={}",
            self.pid, self.start, self.pidns
        )
    }
}

/// The inode number of this process's pid namespace (`/proc/self/ns/pid` reads `pid:[N]`).
pub fn pid_namespace() -> io::Result<u64> {
    let link = std::fs::read_link("/proc/self/ns/pid")?;
    link.to_str()
        .and_then(|l| l.strip_prefix("pid:["))
        .and_then(|l| l.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/self/ns/pid: {}", link.display()),
            )
        })
}

/// The start time of process `pid`, `None` when there is no such process.
fn start_time(pid: i32) -> io::Result<Option<u64>> {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // After the command name (which may hold spaces and parentheses): field 3 onwards.
    let start = stat
        .rfind(')')
        .and_then(|close| stat[close + 1..].split_whitespace().nth(19))
        .and_then(|f| f.parse().ok());
    match start {
        Some(start) => Ok(Some(start)),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: no start time"),
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    /// This process, and the same pid with another start time: a later process that got the
    /// pid of a killed run.
    pub fn me_and_a_dead_run() -> (RunOwner, RunOwner) {
        let me = RunOwner::current().unwrap();
        let dead = RunOwner {
            start: me.start + 1,
            ..me
        };
        (me, dead)
    }

    #[test]
    fn round_trip_liveness_and_namespace() {
        let (me, dead) = me_and_a_dead_run();
        assert_eq!(me.pid, std::process::id() as i32);
        assert_eq!(RunOwner::parse(&me.to_string()), Some(me));
        assert_eq!(RunOwner::parse(&format!("{me}\n")), Some(me));
        assert!(me.is_alive() && !me.is_gone());
        assert!(!dead.is_alive() && dead.is_gone());
        assert!(
            !Path::new("/proc/999999").exists(),
            "pid 999999 must be free"
        );
        let none = RunOwner {
            pid: 999999,
            start: 1,
            ..me
        };
        assert!(!none.is_alive() && none.is_gone());
        assert_eq!(RunOwner::of_process(me.pid), Some(me));
        assert_eq!(RunOwner::of_process(999999), None);
        // Not seen from here: another pid namespace's run is never gone.
        let elsewhere = RunOwner {
            pidns: me.pidns + 1,
            ..dead
        };
        assert!(!elsewhere.is_gone());
        for bad in [
            "",
            "pid=1",
            "pid=1 start=2",
            "pid=x start=2 pidns=3",
            "pid=1 start=2 pidns=3 extra",
            "hello",
        ] {
            assert_eq!(RunOwner::parse(bad), None, "{bad:?}");
        }
    }
}
