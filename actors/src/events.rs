//! The event stream of a run: every state line, the GLOBAL scripts, the start and the end.
//! The terminal output, the JUnit and the JSON reports are all fed from it (front end sinks).

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::core::dispatch::{CancelReason, Outcome};
use crate::core::plan::{Attachment, RunId, TestName};
use crate::core::state::StateName;
use crate::messages::SignalKind;

/// How often a run reports its progress.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// One test run changed state.
#[derive(Debug, Clone)]
pub struct TestStateEvent {
    /// Counts runs from 0 across the whole run; printed as `(<index>-<run_id>)`.
    pub index: u64,
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
    /// Why the test is NOT READY, FAIL or DIRTY: one line.
    pub reason: Option<String>,
    /// The run folder (also after it was removed: where it was).
    pub run_folder: Option<PathBuf>,
    /// On the run's last event (CLEAN or DIRTY): what the front end's
    /// [`crate::core::plan::Evidence`] made of the run in post-run.
    pub evidence: Option<Attachment>,
}

/// Which GLOBAL script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalScript {
    Before,
    After,
}

impl GlobalScript {
    pub fn file_name(self) -> &'static str {
        match self {
            GlobalScript::Before => "before.sh",
            GlobalScript::After => "after.sh",
        }
    }
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
        at: SystemTime,
    },
    /// A new group of test runs starts (numbered from 1).
    GroupStarted {
        number: u64,
        size: usize,
    },
    /// A GLOBAL script ended (it is not run in --dry-run: no event then).
    Global {
        script: GlobalScript,
        error: Option<String>,
        took: Duration,
    },
    Test(TestStateEvent),
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
    },
}

/// Something that consumes the event stream (the terminal, a report file).
pub trait EventSink {
    fn event(&mut self, event: &Event);
    /// The run is over: write out what is kept until the end. The error is one line.
    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// Hands each event to every sink, in order. Shared by the actors of the run, which all live on
/// the System's one thread, so the order of lines is the order of events.
#[derive(Clone, Default)]
pub struct EventBus {
    sinks: Rc<RefCell<Vec<Box<dyn EventSink>>>>,
}

impl EventBus {
    pub fn new(sinks: Vec<Box<dyn EventSink>>) -> Self {
        EventBus {
            sinks: Rc::new(RefCell::new(sinks)),
        }
    }

    pub fn emit(&self, event: Event) {
        for sink in self.sinks.borrow_mut().iter_mut() {
            sink.event(&event);
        }
    }

    /// Finishes every sink; returns the errors, one line each.
    pub fn finish(&self) -> Vec<String> {
        self.sinks
            .borrow_mut()
            .iter_mut()
            .filter_map(|s| s.finish().err())
            .collect()
    }
}
