//! What a run cost the machine: sipplauncher's own CPU time and that of the processes it
//! started and reaped (SIPp, scripts), from `getrusage(2)`, and the host's load average
//! (`/proc/loadavg`). A [`Snapshot`] at the start and one at the end give the run's
//! [`RunUsage`].

use std::time::Duration;

use nix::sys::resource::{getrusage, Usage, UsageWho};

/// User and system CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTimes {
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    fn of(u: &Usage) -> CpuTimes {
        let d = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
        };
        CpuTimes {
            user: d(u.user_time()),
            system: d(u.system_time()),
        }
    }

    /// `self - earlier`, never below zero.
    fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// The host's load average: runnable and uninterruptible tasks, averaged over 1, 5 and 15
/// minutes (all CPUs: on a 2-CPU host, 2.0 is full).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// `/proc/loadavg`'s first three fields (`0.52 0.58 0.59 1/467 12345`).
pub fn parse_loadavg(text: &str) -> Option<LoadAvg> {
    let mut f = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some(LoadAvg {
        one: f.next()??,
        five: f.next()??,
        fifteen: f.next()??,
    })
}

/// The process's CPU times and the host's load at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    own: CpuTimes,
    children: CpuTimes,
    load: Option<LoadAvg>,
}

impl Snapshot {
    /// Now. Two `getrusage` calls and a read of `/proc/loadavg`, which the kernel makes up in
    /// memory: nothing here waits on a disk or a peer, so it may run on the actix thread.
    pub fn now() -> Snapshot {
        let usage = |who| getrusage(who).map(|u| CpuTimes::of(&u)).unwrap_or_default();
        Snapshot {
            own: usage(UsageWho::RUSAGE_SELF),
            children: usage(UsageWho::RUSAGE_CHILDREN),
            load: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .as_deref()
                .and_then(parse_loadavg),
        }
    }

    /// What happened between `start` and this snapshot.
    pub fn since(&self, start: &Snapshot) -> RunUsage {
        RunUsage {
            own: self.own.since(&start.own),
            children: self.children.since(&start.children),
            load_start: start.load,
            load_end: self.load,
        }
    }
}

/// What one run cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunUsage {
    /// sipplauncher's own CPU during the run (every thread of the process), without the
    /// processes it started.
    pub own: CpuTimes,
    /// The CPU of the processes it started and reaped during the run (SIPp, before.sh and
    /// after.sh, and what they reaped in turn).
    pub children: CpuTimes,
    /// The host's load when the run started and when it ended (the 1-minute figure follows a
    /// run of a minute or more; shorter runs show mostly what came before).
    pub load_start: Option<LoadAvg>,
    pub load_end: Option<LoadAvg>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg_of_the_proc_file() {
        assert_eq!(
            parse_loadavg("0.52 1.58 10.09 1/467 12345\n"),
            Some(LoadAvg {
                one: 0.52,
                five: 1.58,
                fifteen: 10.09
            })
        );
        assert_eq!(parse_loadavg("0.52 x 1"), None);
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn usage_counts_only_what_happened_between_two_snapshots() {
        let start = Snapshot::now();
        // Burn a little CPU in this process and in a reaped child.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"])
            .status()
            .expect("sh runs");
        assert!(status.success());
        let u = Snapshot::now().since(&start);
        assert!(u.own.total() > Duration::ZERO, "{u:?}");
        assert!(u.children.total() > Duration::ZERO, "{u:?}");
        assert!(u.load_start.is_some() && u.load_end.is_some(), "{u:?}");
        let later = Snapshot::now();
        assert!(later.since(&later).own.total().is_zero());
    }
}
