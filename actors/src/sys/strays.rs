//! SIPp processes left by a run that was killed (SIGKILL, a crash): found at the start of a
//! real run and killed before anything else happens, so that a new run never shares the DUT
//! with the calls of a dead one.
//!
//! A stray is a process named `sipp` whose working directory is a run folder under our run root
//! and whose parent is not a live sipplauncher (its launcher died, so it was re-parented),
//! unless it is the helper of a live run: a `sipp -bg` that a running test's `before.sh` started
//! carries that run's mark ([`crate::sys::marks`]). Helpers of dead runs go with the other
//! leftovers of their scripts.

use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use slog::{info, Logger};

use crate::sys::marks::{self, Mark};

/// One process seen in /proc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub comm: String,
    pub cwd: Option<PathBuf>,
    /// The mark of the scripts that started it (read for `sipp` processes only).
    pub mark: Option<Mark>,
}

/// `(pid, ppid, pgid)` and the command name from the text of `/proc/<pid>/stat`.
pub fn parse_stat(stat: &str) -> Option<(i32, i32, i32, String)> {
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split at the
    // last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let pid = stat[..open].trim().parse().ok()?;
    let comm = stat[open + 1..close].to_string();
    let mut rest = stat[close + 1..].split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgid = rest.next()?.parse().ok()?;
    Some((pid, ppid, pgid, comm))
}

/// Every process of this machine's /proc (those that vanish while reading are skipped).
pub fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (pid, ppid, pgid, comm) = parse_stat(&stat)?;
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
            let mark = (comm == "sipp")
                .then(|| std::fs::read(format!("/proc/{pid}/environ")).ok())
                .flatten()
                .and_then(|e| marks::mark_in_environ(&e));
            Some(Proc {
                pid,
                ppid,
                pgid,
                comm,
                cwd,
                mark,
            })
        })
        .collect()
}

/// The strays among `procs`: `sipp` processes working under `run_root` whose parent is not a
/// live `sipplauncher`, and that are not the helper of a run that still goes.
pub fn strays(procs: &[Proc], run_root: &Path) -> Vec<Proc> {
    procs
        .iter()
        .filter(|p| p.comm == "sipp")
        .filter(|p| p.mark.as_ref().is_none_or(|m| m.owner.is_gone()))
        .filter(|p| p.cwd.as_deref().is_some_and(|c| c.starts_with(run_root)))
        .filter(|p| {
            !procs
                .iter()
                .any(|q| q.pid == p.ppid && q.comm == "sipplauncher")
        })
        .cloned()
        .collect()
}

/// Kills the stray SIPp processes of dead runs under `run_root` (and their process groups);
/// returns how many. Blocking but short (a read of /proc): called once, before the run starts.
pub fn kill_strays(run_root: &Path, log: &Logger) -> usize {
    let root = run_root
        .canonicalize()
        .unwrap_or_else(|_| run_root.to_path_buf());
    let found = strays(&processes(), &root);
    for p in &found {
        info!(log, "killing a SIPp left by a killed run"; "pid" => p.pid, "folder" => ?p.cwd);
        // Its own group (SIPp runs in one of its own), then the process itself.
        if p.pgid == p.pid {
            let _ = killpg(Pid::from_raw(p.pgid), Signal::SIGKILL);
        }
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
    }
    found.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names() {
        assert_eq!(
            parse_stat("1234 (sipp) S 1 1234 1234 0 -1 4194560 ..."),
            Some((1234, 1, 1234, "sipp".into()))
        );
        assert_eq!(
            parse_stat("77 (a (b) c) R 5 6 7 8"),
            Some((77, 5, 6, "a (b) c".into()))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn only_sipp_under_the_run_root_without_a_live_launcher() {
        let root = Path::new("/var/tmp/sipplauncher");
        let p = |pid, ppid, comm: &str, cwd: Option<&str>| Proc {
            pid,
            ppid,
            pgid: pid,
            comm: comm.into(),
            cwd: cwd.map(PathBuf::from),
            mark: None,
        };
        let (me, dead) = crate::sys::owner::tests::me_and_a_dead_run();
        let marked = |pid, owner| Proc {
            mark: Some(Mark {
                owner,
                run: "abcdef".into(),
            }),
            ..p(pid, 1, "sipp", Some("/var/tmp/sipplauncher/GLOBAL/abcdef"))
        };
        let procs = vec![
            p(10, 1, "sipplauncher", Some("/home")),
            // A live run's SIPp: its parent is sipplauncher.
            p(11, 10, "sipp", Some("/var/tmp/sipplauncher/t/abcdef")),
            // Re-parented to init: stray.
            p(12, 1, "sipp", Some("/var/tmp/sipplauncher/t/ghijkl")),
            // Elsewhere: someone else's SIPp.
            p(13, 1, "sipp", Some("/home/me")),
            // Not SIPp.
            p(14, 1, "sh", Some("/var/tmp/sipplauncher/t/ghijkl")),
            // Parent alive but not a launcher (e.g. a subreaper shell): stray.
            p(15, 16, "sipp", Some("/var/tmp/sipplauncher/u/mnopqr")),
            p(16, 1, "bash", None),
            // A live run's before.sh started it with `sipp -bg`: its helper, not a stray.
            marked(17, me),
            // The helper of a run that was killed: stray.
            marked(18, dead),
        ];
        let pids: Vec<i32> = strays(&procs, root).iter().map(|p| p.pid).collect();
        assert_eq!(pids, vec![12, 15, 18]);
    }
}
