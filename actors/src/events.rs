//! The event stream of a run: every state line, the GLOBAL scripts, the start and the end.
//! The terminal output, the JUnit and the JSON reports are all fed from it (front end sinks).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::core::dispatch::{CancelReason, Outcome};
use crate::core::plan::{Attachment, LaunchPlan, RunId, TestName, UaName};
use crate::core::state::StateName;
use crate::messages::SignalKind;
use crate::sipp::stats::SippStats;
use crate::sys::keep::Fate;
use crate::sys::usage::RunUsage;

/// How often a run reports its progress.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// A duration for people, the one format of the tool's lines and logs (the closing line's
/// `Total time elapsed Ns` is the original's): `12ms` under a second, `1.25s` under 10 s, `42s` under 2 minutes,
/// then `2m05s`, and `1h02m03s` from an hour on (soak runs last days). Truncated, never rounded
/// up (9.999 s is `9.99s`, not `10.00s`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    if ms < 10_000 {
        let cs = ms / 10;
        return format!("{}.{:02}s", cs / 100, cs % 100);
    }
    let s = d.as_secs();
    if s < 120 {
        format!("{s}s")
    } else if s < 3_600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m{:02}s", s / 3_600, s % 3_600 / 60, s % 60)
    }
}

/// One test run changed state.
#[derive(Debug, Clone)]
pub struct TestStateEvent {
    /// Counts runs from 0 across the whole run; printed as `(<index>-<run_id>)`.
    pub index: u64,
    /// `--retries`: which try of the run this is, from 0 (a retry has the index of its run,
    /// and a run id, folder and addresses of its own).
    pub attempt: u32,
    pub name: TestName,
    pub run_id: RunId,
    pub run_id_number: String,
    pub state: StateName,
    pub at: SystemTime,
    /// For end states (NOT READY, SUCCESS, FAIL, CLEAN, DIRTY): how long the step took
    /// (pre-run for NOT READY, the run for SUCCESS/FAIL, post-run for CLEAN/DIRTY).
    pub took: Option<Duration>,
    /// Calls per second of the first UAC, when known.
    pub cps: Option<f64>,
    /// For SUCCESS/FAIL of a real run: how long SIPp processes ran (first start to last exit).
    pub sipp_time: Option<std::time::Duration>,
    /// For SUCCESS/FAIL of a real run: what SIPp counted (calls, setup time), when its
    /// statistics could be read.
    pub stats: Option<SippStats>,
    /// Why the test is NOT READY, FAIL or DIRTY: one line.
    pub reason: Option<String>,
    /// The run folder (also after it was removed: where it was).
    pub run_folder: Option<PathBuf>,
    /// The run's pcap (in `run_folder`), once its packets are captured (real runs without
    /// `--no-pcap`).
    pub pcap: Option<PathBuf>,
    /// On the run's last event (NOT READY, CLEAN, DIRTY), when it had a folder: whether the
    /// folder stays as evidence (`--keep`, `--keep-max`) or went.
    pub folder_fate: Option<Fate>,
    /// On the run's last event (CLEAN or DIRTY): what the front end's
    /// [`crate::core::plan::Evidence`] made of the run in post-run.
    pub evidence: Option<Attachment>,
}

/// `--dry-run`: what a test run would do, told with its DRY-RUNNING line: each instance's
/// address and each SIPp command line as it would run (in `run_folder`).
#[derive(Debug, Clone)]
pub struct DryRunPlan {
    pub index: u64,
    pub name: TestName,
    pub run_id: RunId,
    pub run_folder: PathBuf,
    pub hosts: BTreeMap<UaName, Ipv4Addr>,
    pub launch: LaunchPlan,
}

#[derive(Debug, Clone)]
pub enum Event {
    RunStarted {
        /// Tests collected.
        tests: usize,
        /// Test runs per round (`--total`, else the number of tests).
        runs: u64,
        /// `--loop`: rounds repeat until interrupted.
        repeat: bool,
        group: usize,
        /// `--window`: `group` tests under way at once, no groups.
        window: bool,
        /// `--random`'s seed.
        seed: Option<u64>,
        dry_run: bool,
        /// `--retries`: more tries a run that did not pass gets.
        retries: u32,
        at: SystemTime,
    },
    /// A new group of test runs starts (numbered from 1).
    GroupStarted {
        number: u64,
        size: usize,
    },
    /// The GLOBAL pseudo-test changed state, as the original showed it: PREPARING → READY or
    /// NOT READY around its before.sh, CLEANING → CLEAN or DIRTY around its after.sh (also in
    /// --dry-run, where the scripts do not run). `name` is [`crate::global::GLOBAL_NAME`],
    /// `index` 0, `took` set on READY too (how long before.sh took).
    Global(TestStateEvent),
    Test(TestStateEvent),
    /// `--dry-run`: right after a run's DRY-RUNNING, what it would run.
    DryRun(DryRunPlan),
    /// A signal arrived; `reason` is where the run stands now (first, second, third signal).
    Interrupted {
        signal: SignalKind,
        reason: CancelReason,
    },
    /// Every [`PROGRESS_EVERY`] of a run: where it stands (for a terminal watching a long run).
    Progress {
        outcome: Outcome,
        elapsed: Duration,
    },
    RunFinished {
        outcome: Outcome,
        elapsed: Duration,
        at: SystemTime,
        /// What the run cost: sipplauncher's CPU, its children's (SIPp, scripts), the host's
        /// load at start and end.
        usage: Option<RunUsage>,
    },
}

/// Something that consumes the event stream (the terminal, a report file). Sinks run on a
/// thread of their own (see [`EventBus`]): a sink may block (a full pipe, a slow disk) without
/// holding up the run.
pub trait EventSink: Send {
    fn event(&mut self, event: &Event);
    /// The run is over: write out what is kept until the end. The error is one line.
    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// What the sinks' thread is asked to do. (Almost every job is an event: boxing them to make
/// the rare `Finish` smaller would cost an allocation each.)
#[allow(clippy::large_enum_variant)]
enum Job {
    Event(Event),
    Finish(tokio::sync::oneshot::Sender<Vec<String>>),
}

/// Hands each event to every sink, in order, on the sinks' own thread: the actors only queue
/// events, so a terminal whose reader stopped reading, or a report on a slow disk, never stalls
/// them (nor the handling of signals). One queue for all the actors: the order of lines is the
/// order of events.
#[derive(Clone)]
pub struct EventBus {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(Vec::new())
    }
}

impl EventBus {
    /// Starts the sinks' thread; it ends once every clone of the bus is gone.
    pub fn new(mut sinks: Vec<Box<dyn EventSink>>) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel();
        let run = move || {
            while let Ok(job) = queue.recv() {
                match job {
                    Job::Event(event) => {
                        for sink in sinks.iter_mut() {
                            sink.event(&event);
                        }
                    }
                    Job::Finish(reply) => {
                        let errors = sinks.iter_mut().filter_map(|s| s.finish().err()).collect();
                        let _ = reply.send(errors);
                    }
                }
            }
        };
        // Without a thread of their own (none can be made) the sinks get nothing: a run
        // without its reports is better than no run; `finish` says so.
        let _ = std::thread::Builder::new().name("events".into()).spawn(run);
        EventBus { jobs }
    }

    pub fn emit(&self, event: Event) {
        // The sinks' thread ends only when the bus does, or when a sink panicked: `finish`
        // tells then.
        let _ = self.jobs.send(Job::Event(event));
    }

    /// Finishes every sink, after every event emitted before; resolves to the errors, one line
    /// each. Never blocks the calling thread.
    pub fn finish(&self) -> impl std::future::Future<Output = Vec<String>> + 'static {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = self.jobs.send(Job::Finish(reply)).is_ok();
        async move {
            let gone =
                || vec!["reports: the thread writing them stopped (see the log)".to_string()];
            if !sent {
                return gone();
            }
            answer.await.unwrap_or_else(|_| gone())
        }
    }
}
