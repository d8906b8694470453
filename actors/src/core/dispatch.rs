//! The Supervisor's decisions, as a pure core: every outside input (a test prepared, a run over,
//! a cleanup done, a pause over, a signal, a GLOBAL script done) is an [`Input`], and
//! [`Dispatcher::handle`] answers with the [`Command`]s to carry out. The Supervisor actor is a
//! thin shell that carries them out and feeds the replies back in.
//!
//! The invariants it keeps (and the tests below check for every order of outcomes and signals):
//! pre-run one test after another; run the ready tests of a group at once; post-run in reverse
//! order of pre-run; every test that got READY gets exactly one Cleanup; no test is prepared
//! after an interrupt; the GLOBAL after.sh runs once when its before.sh ran, unless a second
//! signal ends the run at once.
//!
//! With `--window` there are no groups and no barrier: up to `--group` tests are under way at
//! once, a READY test runs at once, a test whose run ended is post-run at once, and its place
//! goes to the next test (after `--group-pause`). Pre-runs and post-runs still take turns one
//! at a time (never two scripts at once), post-runs first and in the order the runs ended. The
//! other invariants hold as above, and never more than `--group` tests are under way.
//!
//! With `--retries N` a try that did not pass (NOT READY, FAIL, DIRTY) is tried again, up to N
//! more times, as a fresh run with the same index and the next attempt, before any new run
//! (in group mode the retries make the next group). A retry is never asked once the run winds
//! down; one asked and not started then counts as a run that did not pass. [`Outcome`] counts
//! runs, not tries: a run that passed on a retry is FLAKY and counts as passed. A try that is
//! to be tried again is no failure for `--group-stop-first-fail`.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

/// Why a run winds down, in rising order (as nextest's `CancelReason`): a later reason only
/// ever raises the level, never lowers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CancelReason {
    /// The tool's own fault (a full disk, netlink refused): nothing more starts, running SIPp
    /// stops, every cleanup runs in full (after.sh included). Not a signal: the user's first
    /// Ctrl+C after it is still a first signal and kills nothing.
    Fatal,
    /// The first signal: as [`CancelReason::Fatal`], a running before.sh is stopped too (TERM,
    /// grace, KILL), and the run counts as interrupted.
    Signal,
    /// The second signal: whatever runs is killed at once (scripts, SIPp, also in its stop
    /// grace); cleanups skip after.sh but still remove what they can; no GLOBAL after.sh.
    SecondSignal,
    /// The third signal: the run ends now; only the shared services are shut down (the links
    /// removed). What is left is removed by the next run.
    ThirdSignal,
}

impl CancelReason {
    /// The reason after one more signal.
    pub fn next_signal(current: Option<CancelReason>) -> CancelReason {
        match current {
            None | Some(CancelReason::Fatal) => CancelReason::Signal,
            Some(CancelReason::Signal) => CancelReason::SecondSignal,
            Some(CancelReason::SecondSignal | CancelReason::ThirdSignal) => {
                CancelReason::ThirdSignal
            }
        }
    }
}

use crate::core::scheduler::{Schedule, ScheduledRun};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Start,
    GlobalBeforeDone {
        ok: bool,
    },
    Prepared {
        slot: usize,
        ready: bool,
    },
    RunDone {
        slot: usize,
        success: bool,
    },
    Cleaned {
        slot: usize,
        passed: bool,
    },
    PauseOver,
    /// A signal arrived (which one does not matter here; how many does).
    Signal,
    /// The tool's own fault (run folder root not writable, disk full): see
    /// [`CancelReason::Fatal`].
    Fatal,
    GlobalAfterDone {
        ok: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    RunGlobalBefore,
    /// Make one TestActor per run; slot `i` is `runs[i]` (the previous group's are done).
    StartGroup {
        runs: Vec<ScheduledRun>,
    },
    /// `--window`: make one TestActor for `run` in the new slot `slot` (slots are not reused).
    StartTest {
        slot: usize,
        run: ScheduledRun,
    },
    Prepare {
        slot: usize,
    },
    Run {
        slots: Vec<usize>,
    },
    /// First signal: stop the runs of these slots (they still answer `RunDone`), or the
    /// before.sh of the slot being prepared (it still answers `Prepared`).
    Abort {
        slots: Vec<usize>,
    },
    /// First signal during the GLOBAL before.sh: stop it (it still answers
    /// `GlobalBeforeDone`; its after.sh is then owed).
    AbortGlobal,
    /// Second signal: kill whatever runs now (scripts, SIPp); what follows skips the scripts.
    Kill,
    Cleanup {
        slot: usize,
    },
    Pause(Duration),
    RunGlobalAfter,
    Finish(Outcome),
}

/// How the run ended; the front end turns it into an exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Test runs that ended (NOT READY, CLEAN or DIRTY).
    pub total: u64,
    /// Those that succeeded and were cleaned up.
    pub passed: u64,
    pub interrupted: bool,
    /// The GLOBAL before.sh or after.sh failed.
    pub global_failed: bool,
    /// `--group-stop-first-fail` ended the run early.
    pub stopped_on_failure: bool,
    /// The run stopped on the tool's own fault.
    pub fatal: bool,
    /// `--retries`: runs that passed on a retry (FLAKY; counted in `passed` too).
    pub flaky: u64,
    /// `--retries`: tries that did not pass and were tried again (not counted in `total`).
    pub retried: u64,
}

impl Outcome {
    pub fn failed(&self) -> u64 {
        self.total - self.passed
    }
    /// Every test run passed, the GLOBAL scripts too, and the run was not cut short.
    pub fn all_passed(&self) -> bool {
        self.failed() == 0 && !self.global_failed && !self.interrupted && !self.fatal
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Init,
    GlobalBefore,
    Preparing {
        slot: usize,
    },
    Running {
        pending: usize,
    },
    Cleaning {
        slot: usize,
    },
    Pausing,
    /// `--window`: tests come and go; [`Window`] says what is under way.
    Window,
    GlobalAfter,
    Done,
}

/// What is under way in `--window` mode.
#[derive(Debug, Default)]
struct Window {
    /// Tests that may start now: free places whose pause is over.
    free: usize,
    /// Places whose `--group-pause` runs.
    pausing: usize,
    /// The one pre-run or post-run under way.
    lane: Option<Lane>,
    /// Slots whose SIPp run.
    running: BTreeSet<usize>,
    /// Slots whose run is over (or that were READY when a signal came), for post-run in this
    /// order.
    to_clean: VecDeque<usize>,
    /// The slot the next test gets.
    next_slot: usize,
    /// A test failed (NOT READY, FAIL or DIRTY): for `--group-stop-first-fail`.
    failed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Preparing(usize),
    Cleaning(usize),
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    ready: bool,
    running: bool,
}

#[derive(Debug)]
pub struct Dispatcher {
    schedule: Schedule,
    has_global: bool,
    pause: Duration,
    stop_first_fail: bool,
    phase: Phase,
    slots: Vec<Slot>,
    /// Slots that got READY, in pre-run order; post-run pops from the end.
    to_clean: Vec<usize>,
    group_failed: bool,
    /// Why the run winds down, once it does.
    cancel: Option<CancelReason>,
    /// The GLOBAL after.sh is to run at the end: its before.sh succeeded, or was stopped by a
    /// signal.
    global_after_owed: bool,
    outcome: Outcome,
    /// `--window` mode's state; `None` in group mode.
    window: Option<Window>,
    /// `--group`, the most tests under way at once in `--window` mode.
    width: usize,
    /// `--retries`: how many more tries a run that did not pass gets.
    retries: u32,
    /// Tries to make before any new run, in the order their runs ended.
    retry: VecDeque<ScheduledRun>,
    /// The run of each slot under way (slots of the group, or the window's).
    runs: std::collections::BTreeMap<usize, ScheduledRun>,
}

impl Dispatcher {
    pub fn new(
        schedule: Schedule,
        has_global: bool,
        pause: Duration,
        stop_first_fail: bool,
    ) -> Self {
        Dispatcher {
            schedule,
            has_global,
            pause,
            stop_first_fail,
            phase: Phase::Init,
            slots: Vec::new(),
            to_clean: Vec::new(),
            group_failed: false,
            cancel: None,
            global_after_owed: false,
            outcome: Outcome::default(),
            window: None,
            width: 1,
            retries: 0,
            retry: VecDeque::new(),
            runs: std::collections::BTreeMap::new(),
        }
    }

    /// `--retries N`: a run that did not pass is tried again, up to `retries` more times.
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Whether the try of `slot`, if it does not pass, is to be tried again: it has tries
    /// left and the run does not wind down.
    fn may_retry(&self, slot: usize) -> bool {
        self.cancel.is_none()
            && self
                .runs
                .get(&slot)
                .is_some_and(|r| r.attempt < self.retries)
    }

    /// The try of `slot` is over: counts it, or asks for its retry. Whether the run is over
    /// and did not pass (a failure for `--group-stop-first-fail`).
    fn settle(&mut self, slot: usize, passed: bool) -> bool {
        let run = self.runs.remove(&slot);
        if passed {
            self.outcome.total += 1;
            self.outcome.passed += 1;
            if run.is_some_and(|r| r.attempt > 0) {
                self.outcome.flaky += 1;
            }
            return false;
        }
        match run {
            Some(r) if self.cancel.is_none() && r.attempt < self.retries => {
                self.outcome.retried += 1;
                self.retry.push_back(r.retry());
                false
            }
            _ => {
                self.outcome.total += 1;
                true
            }
        }
    }

    /// Retries asked and never started or prepared (the run wound down first): runs that did
    /// not pass, and tries that were not tried again after all.
    fn drop_retries(&mut self) {
        let unprepared = self.runs.values().filter(|r| r.attempt > 0).count();
        let dropped = (self.retry.len() + unprepared) as u64;
        self.outcome.total += dropped;
        self.outcome.retried -= dropped;
        self.retry.clear();
        self.runs.clear();
    }

    /// No run is left to start: the schedule is done and no retry waits.
    fn nothing_to_start(&self) -> bool {
        self.schedule.is_done() && self.retry.is_empty()
    }

    /// `--window` mode: up to `width` tests under way at once, without groups.
    pub fn windowed(mut self, width: usize) -> Self {
        assert!(width > 0, "validated by the front end");
        self.width = width;
        self.window = Some(Window::default());
        self
    }

    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Why the run winds down, if it does.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.cancel
    }

    /// Whether the run is winding down (a signal, or a fatal error).
    pub fn interrupted(&self) -> bool {
        self.cancel.is_some()
    }

    /// Winding down on a signal (not on a fatal error alone).
    fn signalled(&self) -> bool {
        self.cancel >= Some(CancelReason::Signal)
    }

    fn hard(&self) -> bool {
        self.cancel >= Some(CancelReason::SecondSignal)
    }

    pub fn handle(&mut self, input: Input) -> Vec<Command> {
        let mut out = Vec::new();
        match (self.phase.clone(), input) {
            (Phase::Init, Input::Start) => {
                if self.interrupted() {
                    // Signalled before the start: nothing at all is run.
                    self.finish(&mut out);
                } else if self.has_global {
                    self.phase = Phase::GlobalBefore;
                    out.push(Command::RunGlobalBefore);
                } else {
                    self.first_tests(&mut out);
                }
            }
            (Phase::GlobalBefore, Input::GlobalBeforeDone { ok }) => {
                if ok {
                    self.global_after_owed = true;
                    self.first_tests(&mut out);
                } else {
                    self.outcome.global_failed = true;
                    // Stopped by the first signal, it may have changed the DUT halfway: its
                    // after.sh restores it (SPEC §4.2).
                    self.global_after_owed = self.interrupted();
                    self.finish(&mut out);
                }
            }
            (Phase::Preparing { slot }, Input::Prepared { slot: s, ready }) if s == slot => {
                if ready {
                    self.slots[slot].ready = true;
                    self.to_clean.push(slot);
                } else if self.settle(slot, false) {
                    self.group_failed = true;
                }
                if self.interrupted() {
                    self.clean_next(&mut out);
                } else if slot + 1 < self.slots.len() {
                    self.phase = Phase::Preparing { slot: slot + 1 };
                    out.push(Command::Prepare { slot: slot + 1 });
                } else {
                    let ready: Vec<usize> = (0..self.slots.len())
                        .filter(|&i| self.slots[i].ready)
                        .collect();
                    if ready.is_empty() {
                        self.group_done(&mut out);
                    } else {
                        for &i in &ready {
                            self.slots[i].running = true;
                        }
                        self.phase = Phase::Running {
                            pending: ready.len(),
                        };
                        out.push(Command::Run { slots: ready });
                    }
                }
            }
            (Phase::Running { pending }, Input::RunDone { slot, success })
                if self.slots.get(slot).is_some_and(|s| s.running) =>
            {
                self.slots[slot].running = false;
                if !success && !self.may_retry(slot) {
                    self.group_failed = true;
                }
                if pending == 1 {
                    self.clean_next(&mut out);
                } else {
                    self.phase = Phase::Running {
                        pending: pending - 1,
                    };
                }
            }
            (Phase::Cleaning { slot }, Input::Cleaned { slot: s, passed }) if s == slot => {
                if self.settle(slot, passed) {
                    self.group_failed = true;
                }
                self.clean_next(&mut out);
            }
            (Phase::Pausing, Input::PauseOver) => self.next_group(&mut out),
            (
                Phase::Window,
                input @ (Input::Prepared { .. }
                | Input::RunDone { .. }
                | Input::Cleaned { .. }
                | Input::PauseOver),
            ) => self.window_input(input, &mut out),
            (Phase::GlobalAfter, Input::GlobalAfterDone { ok }) => {
                if !ok {
                    self.outcome.global_failed = true;
                }
                self.phase = Phase::Done;
                out.push(Command::Finish(self.outcome));
            }
            (phase, Input::Fatal) => {
                self.outcome.fatal = true;
                if self.cancel.is_none() {
                    self.cancel = Some(CancelReason::Fatal);
                    // The step under way ends, then cleanup and the end.
                    self.wind_down(phase, &mut out);
                }
            }
            (phase, Input::Signal) => {
                self.outcome.interrupted = true;
                let reason = CancelReason::next_signal(self.cancel);
                let first = self.cancel.is_none();
                self.cancel = Some(reason);
                match reason {
                    // After a fatal error what runs was stopped already.
                    CancelReason::Signal if first => self.wind_down(phase, &mut out),
                    CancelReason::Fatal | CancelReason::Signal => {}
                    _ if phase == Phase::Done => {}
                    CancelReason::SecondSignal => out.push(Command::Kill),
                    // The end now, without waiting for the tests' cleanups.
                    CancelReason::ThirdSignal => {
                        self.drop_retries();
                        self.phase = Phase::Done;
                        out.push(Command::Finish(self.outcome));
                    }
                }
            }
            // A late answer that no longer fits (a pause that was cut short, a duplicate): ignore.
            _ => {}
        }
        out
    }

    /// The first reason to wind down (a first signal, or a fatal error): nothing more starts,
    /// running SIPp stops; on a signal a running before.sh stops too (a test's or GLOBAL's;
    /// after a fatal error the failing pre-run is the one under way); an after.sh under way is
    /// never cut halfway: its answer sees the reason.
    fn wind_down(&mut self, phase: Phase, out: &mut Vec<Command>) {
        match phase {
            Phase::Pausing => self.finish(out),
            Phase::Window => self.window_abort(out),
            Phase::Running { .. } => {
                let slots: Vec<usize> = (0..self.slots.len())
                    .filter(|&i| self.slots[i].running)
                    .collect();
                out.push(Command::Abort { slots });
            }
            Phase::Preparing { slot } if self.signalled() => {
                out.push(Command::Abort { slots: vec![slot] })
            }
            Phase::GlobalBefore if self.signalled() => out.push(Command::AbortGlobal),
            _ => {}
        }
    }

    /// After GLOBAL before.sh (or at start without one): the first group, or the window.
    fn first_tests(&mut self, out: &mut Vec<Command>) {
        match self.window.as_mut() {
            Some(w) => {
                w.free = self.width;
                self.phase = Phase::Window;
                self.pump(out);
            }
            None => self.next_group(out),
        }
    }

    /// `--window`: a test's answer.
    fn window_input(&mut self, input: Input, out: &mut Vec<Command>) {
        let interrupted = self.interrupted();
        // Whether the try of the slot answering would be tried again, were it to fail.
        let may_retry = match &input {
            Input::Prepared { slot, .. }
            | Input::RunDone { slot, .. }
            | Input::Cleaned { slot, .. } => self.may_retry(*slot),
            _ => false,
        };
        let lane = self.window.as_ref().and_then(|w| w.lane);
        // A try that ends here (NOT READY, or cleaned up): counted, or its retry asked.
        let failed = match input {
            Input::Prepared { slot, ready: false } if lane == Some(Lane::Preparing(slot)) => {
                self.settle(slot, false)
            }
            Input::Cleaned { slot, passed } if lane == Some(Lane::Cleaning(slot)) => {
                self.settle(slot, passed)
            }
            _ => false,
        };
        let Some(w) = self.window.as_mut() else {
            return;
        };
        w.failed |= failed;
        let mut freed = false;
        match input {
            Input::Prepared { slot, ready } if w.lane == Some(Lane::Preparing(slot)) => {
                w.lane = None;
                if !ready {
                    freed = true;
                } else if interrupted {
                    // READY → CLEANING: interrupted before its run.
                    w.to_clean.push_back(slot);
                } else {
                    w.running.insert(slot);
                    out.push(Command::Run { slots: vec![slot] });
                }
            }
            Input::RunDone { slot, success } if w.running.remove(&slot) => {
                w.failed |= !success && !may_retry;
                w.to_clean.push_back(slot);
            }
            Input::Cleaned { slot, .. } if w.lane == Some(Lane::Cleaning(slot)) => {
                w.lane = None;
                freed = true;
            }
            Input::PauseOver if w.pausing > 0 => {
                w.pausing -= 1;
                w.free += 1;
            }
            // A late or duplicate answer: nothing changes.
            _ => return,
        }
        // The test's place goes to the next one, after the pause; no pause when no test is
        // to start any more.
        let stopping = interrupted || (self.stop_first_fail && w.failed);
        if freed && !stopping {
            if self.pause.is_zero() {
                w.free += 1;
            } else {
                w.pausing += 1;
                out.push(Command::Pause(self.pause));
            }
        }
        self.pump(out);
    }

    /// `--window`, first signal (or fatal error): the running tests stop; what is READY and
    /// not yet running is cleaned up without a run.
    fn window_abort(&mut self, out: &mut Vec<Command>) {
        let Some(w) = self.window.as_ref() else {
            return;
        };
        // The running tests, and the one whose before.sh may be running.
        let mut slots: Vec<usize> = w.running.iter().copied().collect();
        if let (Some(Lane::Preparing(slot)), true) = (w.lane, self.signalled()) {
            slots.push(slot);
        }
        if !slots.is_empty() {
            out.push(Command::Abort { slots });
        }
        // Maybe nothing was under way (all places pausing): then this is the end.
        self.pump(out);
    }

    /// `--window`: starts the next post-run or pre-run when the lane is free, or ends the run
    /// when nothing is under way and nothing is left to start.
    fn pump(&mut self, out: &mut Vec<Command>) {
        let stopping = self.interrupted();
        let stop_on_failure = self.stop_first_fail;
        let Some(w) = self.window.as_mut() else {
            return;
        };
        if w.lane.is_some() {
            return;
        }
        if let Some(slot) = w.to_clean.pop_front() {
            w.lane = Some(Lane::Cleaning(slot));
            out.push(Command::Cleanup { slot });
            return;
        }
        let failed_stop = stop_on_failure && w.failed;
        if !stopping && !failed_stop && w.free > 0 {
            if let Some(run) = self.retry.pop_front().or_else(|| self.schedule.next_run()) {
                w.free -= 1;
                let slot = w.next_slot;
                w.next_slot += 1;
                self.runs.insert(slot, run);
                w.lane = Some(Lane::Preparing(slot));
                out.push(Command::StartTest { slot, run });
                out.push(Command::Prepare { slot });
                return;
            }
        }
        let nothing_left =
            stopping || failed_stop || (self.schedule.is_done() && self.retry.is_empty());
        if w.running.is_empty() && nothing_left {
            if failed_stop && !stopping && !self.nothing_to_start() {
                self.outcome.stopped_on_failure = true;
            }
            self.finish(out);
        }
    }

    fn next_group(&mut self, out: &mut Vec<Command>) {
        if self.interrupted() {
            return self.finish(out);
        }
        // Retries first, as a group of their own.
        let retries = (!self.retry.is_empty()).then(|| {
            let n = self.retry.len().min(self.schedule.group());
            self.retry.drain(..n).collect::<Vec<_>>()
        });
        match retries.or_else(|| self.schedule.next_group()) {
            None => self.finish(out),
            Some(runs) => {
                self.runs = runs.iter().copied().enumerate().collect();
                self.slots = vec![Slot::default(); runs.len()];
                self.to_clean.clear();
                self.group_failed = false;
                self.phase = Phase::Preparing { slot: 0 };
                out.push(Command::StartGroup { runs });
                out.push(Command::Prepare { slot: 0 });
            }
        }
    }

    fn clean_next(&mut self, out: &mut Vec<Command>) {
        match self.to_clean.pop() {
            Some(slot) => {
                self.phase = Phase::Cleaning { slot };
                out.push(Command::Cleanup { slot });
            }
            None => self.group_done(out),
        }
    }

    fn group_done(&mut self, out: &mut Vec<Command>) {
        if self.interrupted() || self.nothing_to_start() {
            return self.finish(out);
        }
        if self.stop_first_fail && self.group_failed {
            self.outcome.stopped_on_failure = true;
            return self.finish(out);
        }
        if self.pause.is_zero() {
            self.next_group(out);
        } else {
            self.phase = Phase::Pausing;
            out.push(Command::Pause(self.pause));
        }
    }

    /// The tests are over: GLOBAL after.sh if its before.sh ran (and no second signal), then
    /// the end.
    fn finish(&mut self, out: &mut Vec<Command>) {
        self.drop_retries();
        if self.global_after_owed && !self.hard() {
            self.phase = Phase::GlobalAfter;
            out.push(Command::RunGlobalAfter);
        } else {
            self.phase = Phase::Done;
            out.push(Command::Finish(self.outcome));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, VecDeque};

    /// Signals and fatal errors a harness injects: each after so many inputs.
    type Injections<'a> = &'a [(usize, Input)];

    /// Builds the injections of a property test: a fatal error and signals, each after so many
    /// inputs, in the order they come.
    fn injections(fatal_after: Option<usize>, signals_after: &[usize]) -> Vec<(usize, Input)> {
        let mut all: Vec<(usize, Input)> = signals_after
            .iter()
            .map(|&n| (n, Input::Signal))
            .chain(fatal_after.map(|n| (n, Input::Fatal)))
            .collect();
        all.sort_by_key(|(n, _)| *n);
        all
    }

    /// What both harnesses check about winding down, whatever the mode: how the cancel reason
    /// moves, what a fatal error and each signal make happen, and the end.
    #[derive(Default, Debug)]
    struct WindDown {
        signals: u32,
        fatal: bool,
        kills: usize,
        /// Kill commands before a second signal (a fatal error or one signal kill nothing).
        early_kills: usize,
        /// GLOBAL before.sh or tests started or prepared after a signal or a fatal error.
        started_after_cancel: usize,
        /// Commands after the Finish.
        after_finish: usize,
        /// The cancel reason went down at some input.
        reason_lowered: bool,
        last_reason: Option<CancelReason>,
        /// A signal, a fatal error came before the Finish (the outcome says so then).
        signal_before_finish: bool,
        fatal_before_finish: bool,
        /// A second signal came before the Finish (so the Kill is owed).
        second_before_finish: bool,
        /// A third signal came before the Finish (the tests' cleanups are not waited for).
        third_before_finish: bool,
        /// A second signal came before the GLOBAL after.sh was asked for (or the Finish).
        second_before_global_after: bool,
        /// The GLOBAL before.sh succeeded, or failed once the run was winding down (a signal
        /// stopped it): its after.sh is owed.
        global_after_owed: bool,
        global_after: usize,
        finish: Vec<Outcome>,
    }

    impl WindDown {
        /// Before `input` is handled.
        fn input(&mut self, input: &Input) {
            let ended = !self.finish.is_empty();
            match input {
                Input::Signal => {
                    self.signals += 1;
                    self.signal_before_finish |= !ended;
                    self.second_before_finish |= self.signals == 2 && !ended;
                    self.third_before_finish |= self.signals == 3 && !ended;
                    self.second_before_global_after |=
                        self.signals == 2 && self.global_after == 0 && !ended;
                }
                Input::Fatal => {
                    self.fatal = true;
                    self.fatal_before_finish |= !ended;
                }
                Input::GlobalBeforeDone { ok } => {
                    self.global_after_owed = *ok || self.signals > 0 || self.fatal
                }
                _ => {}
            }
        }

        /// After the dispatcher handled an input.
        fn handled(&mut self, d: &Dispatcher) {
            let reason = d.cancel_reason();
            self.reason_lowered |= reason < self.last_reason;
            self.last_reason = reason;
        }

        fn command(&mut self, cmd: &Command) {
            if !self.finish.is_empty() {
                self.after_finish += 1;
            }
            let cancelled = self.signals > 0 || self.fatal;
            match cmd {
                Command::Kill => {
                    self.kills += 1;
                    if self.signals < 2 {
                        self.early_kills += 1;
                    }
                }
                Command::RunGlobalBefore
                | Command::StartGroup { .. }
                | Command::StartTest { .. }
                | Command::Prepare { .. }
                    if cancelled =>
                {
                    self.started_after_cancel += 1
                }
                Command::RunGlobalAfter => self.global_after += 1,
                Command::Finish(o) => self.finish.push(*o),
                _ => {}
            }
        }

        /// What holds for every run, in both modes.
        fn check(&self) -> Result<(), TestCaseError> {
            prop_assert_eq!(self.finish.len(), 1, "one Finish");
            prop_assert_eq!(self.after_finish, 0, "nothing after the Finish");
            prop_assert!(!self.reason_lowered, "the cancel reason never goes down");
            prop_assert_eq!(
                self.early_kills,
                0,
                "a fatal error or a first signal kills nothing"
            );
            prop_assert_eq!(self.kills, usize::from(self.second_before_finish));
            prop_assert_eq!(self.started_after_cancel, 0);
            prop_assert!(self.global_after <= 1);
            // The GLOBAL after.sh (which restores the DUT) runs after a fatal error and a
            // first signal; only a second signal skips it.
            if self.global_after_owed && !self.second_before_global_after {
                prop_assert_eq!(self.global_after, 1);
            }
            let o = self.finish[0];
            prop_assert_eq!(o.fatal, self.fatal_before_finish);
            prop_assert_eq!(o.interrupted, self.signal_before_finish);
            Ok(())
        }
    }

    /// Plays the Supervisor's shell: carries out commands by answering with inputs, with the
    /// outcomes drawn from `luck`, and signals and fatal errors injected after so many inputs.
    /// Records what it saw.
    #[derive(Default, Debug)]
    struct Trace {
        prepared: Vec<(u64, usize)>,
        ready: Vec<(u64, usize)>,
        cleaned: Vec<(u64, usize)>,
        global_before: usize,
        global_after: usize,
        finish: Vec<Outcome>,
        wind_down: WindDown,
        tries: Tries,
    }

    /// The tries of the runs as they ended: run index, attempt, passed.
    #[derive(Default, Debug)]
    struct Tries {
        /// The run of each slot under way.
        runs: BTreeMap<usize, ScheduledRun>,
        ended: Vec<(u64, u32, bool)>,
    }

    impl Tries {
        fn start(&mut self, slot: usize, run: ScheduledRun) {
            self.runs.insert(slot, run);
        }

        /// The answer to a command: the try of its slot ends on NOT READY and on cleanup.
        fn answered(&mut self, input: &Input) {
            let (slot, passed) = match *input {
                Input::Prepared { slot, ready: false } => (slot, false),
                Input::Cleaned { slot, passed } => (slot, passed),
                _ => return,
            };
            let run = self.runs.remove(&slot).expect("a slot under way");
            self.ended.push((run.index, run.attempt, passed));
        }

        /// What holds of the tries and the outcome's counts, for `--retries retries`; `all`:
        /// the run was neither cut short nor stopped on a failure, so every failed run used
        /// all its tries.
        fn check(&self, o: &Outcome, retries: u32, all: bool) -> Result<(), TestCaseError> {
            let mut by_run: BTreeMap<u64, Vec<(u32, bool)>> = BTreeMap::new();
            for &(index, attempt, passed) in &self.ended {
                by_run.entry(index).or_default().push((attempt, passed));
            }
            let (mut passed, mut flaky) = (0, 0);
            for (index, tries) in &by_run {
                let attempts: Vec<u32> = tries.iter().map(|t| t.0).collect();
                prop_assert_eq!(
                    &attempts,
                    &(0..tries.len() as u32).collect::<Vec<_>>(),
                    "run {}: tries in order",
                    index
                );
                prop_assert!(
                    tries.len() as u32 <= retries + 1,
                    "run {}: too many tries",
                    index
                );
                let (last, before) = tries.split_last().expect("one try at least");
                prop_assert!(
                    before.iter().all(|t| !t.1),
                    "run {}: retried after a pass",
                    index
                );
                if last.1 {
                    passed += 1;
                    flaky += u64::from(last.0 > 0);
                } else if all {
                    prop_assert_eq!(last.0, retries, "run {}: tries left unused", index);
                }
            }
            prop_assert_eq!(o.total, by_run.len() as u64, "total counts runs, not tries");
            prop_assert_eq!(o.passed, passed);
            prop_assert_eq!(o.flaky, flaky);
            prop_assert_eq!(o.retried, self.ended.len() as u64 - by_run.len() as u64);
            Ok(())
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn simulate(
        tests: usize,
        group: usize,
        total: Option<u64>,
        global: bool,
        stop_first_fail: bool,
        luck: &[bool],
        inject: Injections,
    ) -> Trace {
        simulate_retries(
            tests,
            group,
            total,
            global,
            stop_first_fail,
            luck,
            inject,
            0,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn simulate_retries(
        tests: usize,
        group: usize,
        total: Option<u64>,
        global: bool,
        stop_first_fail: bool,
        luck: &[bool],
        inject: Injections,
        retries: u32,
    ) -> Trace {
        let schedule = Schedule::new(tests, group, total, None, false);
        let mut d = Dispatcher::new(schedule, global, Duration::from_millis(5), stop_first_fail)
            .with_retries(retries);
        let mut trace = Trace::default();
        let mut queue: VecDeque<Input> = VecDeque::from([Input::Start]);
        let mut luck = luck.iter().copied().cycle();
        let mut inject = inject.iter().cloned().peekable();
        // Those due at 0 come before the start (signals caught before the run was under way).
        while let Some((_, input)) = inject.next_if(|(after, _)| *after == 0) {
            queue.insert(queue.len() - 1, input);
        }
        let mut group_no = 0u64;
        let mut steps = 0usize;
        while let Some(input) = queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "no end");
            trace.wind_down.input(&input);
            let commands = d.handle(input);
            trace.wind_down.handled(&d);
            for cmd in commands {
                trace.wind_down.command(&cmd);
                let answers = answer(&cmd, &mut luck, trace.wind_down.signals);
                for a in &answers {
                    trace.tries.answered(a);
                }
                match cmd {
                    Command::RunGlobalBefore => trace.global_before += 1,
                    Command::StartGroup { runs } => {
                        group_no += 1;
                        for (slot, run) in runs.into_iter().enumerate() {
                            trace.tries.start(slot, run);
                        }
                    }
                    Command::StartTest { .. } => panic!("StartTest in group mode"),
                    Command::Prepare { slot } => {
                        trace.prepared.push((group_no, slot));
                        if answers == [Input::Prepared { slot, ready: true }] {
                            trace.ready.push((group_no, slot));
                        }
                    }
                    Command::Cleanup { slot } => trace.cleaned.push((group_no, slot)),
                    Command::RunGlobalAfter => trace.global_after += 1,
                    Command::Finish(o) => trace.finish.push(o),
                    Command::Run { .. }
                    | Command::Abort { .. }
                    | Command::AbortGlobal
                    | Command::Kill
                    | Command::Pause(_) => {}
                }
                queue.extend(answers);
            }
            // Signals (and fatal errors) arrive between any two inputs, at the front like a
            // fresh message.
            let mut due = Vec::new();
            while let Some((_, input)) = inject.next_if(|(after, _)| *after <= steps) {
                due.push(input);
            }
            for input in due.into_iter().rev() {
                queue.push_front(input);
            }
        }
        trace
    }

    /// What the Supervisor's shell feeds back for `cmd`, outcomes drawn from `luck` (a GLOBAL
    /// before.sh killed by a second signal counts as done).
    fn answer(cmd: &Command, luck: &mut impl Iterator<Item = bool>, signals: u32) -> Vec<Input> {
        let mut draw = || luck.next().unwrap();
        match cmd {
            Command::RunGlobalBefore => vec![Input::GlobalBeforeDone {
                ok: draw() || signals > 1,
            }],
            Command::Prepare { slot } => vec![Input::Prepared {
                slot: *slot,
                ready: draw(),
            }],
            Command::Run { slots } => slots
                .iter()
                .map(|&slot| Input::RunDone {
                    slot,
                    success: draw(),
                })
                .collect(),
            Command::Cleanup { slot } => vec![Input::Cleaned {
                slot: *slot,
                passed: draw(),
            }],
            Command::Pause(_) => vec![Input::PauseOver],
            Command::RunGlobalAfter => vec![Input::GlobalAfterDone { ok: true }],
            Command::StartGroup { .. }
            | Command::StartTest { .. }
            | Command::Abort { .. }
            | Command::AbortGlobal
            | Command::Kill
            | Command::Finish(_) => Vec::new(),
        }
    }

    #[test]
    fn three_tests_in_groups_of_two() {
        let t = simulate(3, 2, None, true, false, &[true], &[]);
        assert_eq!(t.global_before, 1);
        assert_eq!(t.global_after, 1);
        assert_eq!(t.prepared, vec![(1, 0), (1, 1), (2, 0)]);
        // Post-run in reverse order of pre-run.
        assert_eq!(t.cleaned, vec![(1, 1), (1, 0), (2, 0)]);
        assert_eq!(t.finish.len(), 1);
        let o = t.finish[0];
        assert_eq!((o.total, o.passed), (3, 3));
        assert!(o.all_passed());
    }

    #[test]
    fn failing_global_before_stops_the_run_without_tests() {
        let t = simulate(3, 1, None, true, false, &[false], &[]);
        assert!(t.prepared.is_empty());
        assert_eq!(t.global_after, 0);
        assert!(t.finish[0].global_failed);
        assert!(!t.finish[0].all_passed());
    }

    #[test]
    fn stop_first_fail_stops_after_the_failing_group() {
        // ready, run fails, cleaned passed=false ...
        let t = simulate(
            4,
            2,
            None,
            false,
            true,
            &[true, true, false, true, true, false],
            &[],
        );
        assert!(t.finish[0].stopped_on_failure);
        assert_eq!(t.prepared.iter().filter(|p| p.0 > 1).count(), 0);
    }

    #[test]
    fn signal_during_pause_ends_the_run_with_global_after() {
        let schedule = Schedule::new(2, 1, None, None, false);
        let mut d = Dispatcher::new(schedule, true, Duration::from_secs(1), false);
        d.handle(Input::Start);
        d.handle(Input::GlobalBeforeDone { ok: true });
        d.handle(Input::Prepared {
            slot: 0,
            ready: true,
        });
        d.handle(Input::RunDone {
            slot: 0,
            success: true,
        });
        assert_eq!(
            d.handle(Input::Cleaned {
                slot: 0,
                passed: true
            }),
            vec![Command::Pause(Duration::from_secs(1))]
        );
        assert_eq!(d.handle(Input::Signal), vec![Command::RunGlobalAfter]);
        assert_eq!(d.handle(Input::PauseOver), vec![]);
        let end = d.handle(Input::GlobalAfterDone { ok: true });
        let Command::Finish(o) = &end[0] else {
            panic!("{end:?}")
        };
        assert!(o.interrupted && !o.all_passed());
        assert_eq!((o.total, o.passed), (1, 1));
    }

    #[test]
    fn a_first_signal_after_a_fatal_error_kills_nothing() {
        // GLOBAL before.sh ran; the first test's pre-run hits a full disk (fatal); the user's
        // Ctrl+C while GLOBAL after.sh restores the DUT must not kill it; a second one does.
        let schedule = Schedule::new(2, 2, None, None, false);
        let mut d = Dispatcher::new(schedule, true, Duration::ZERO, false);
        d.handle(Input::Start);
        d.handle(Input::GlobalBeforeDone { ok: true });
        assert_eq!(d.handle(Input::Fatal), vec![]);
        assert_eq!(d.cancel_reason(), Some(CancelReason::Fatal));
        assert_eq!(
            d.handle(Input::Prepared {
                slot: 0,
                ready: false
            }),
            vec![Command::RunGlobalAfter]
        );
        assert_eq!(d.handle(Input::Signal), vec![]);
        assert_eq!(d.cancel_reason(), Some(CancelReason::Signal));
        assert_eq!(d.handle(Input::Signal), vec![Command::Kill]);
        let end = d.handle(Input::GlobalAfterDone { ok: false });
        let Command::Finish(o) = &end[0] else {
            panic!("{end:?}")
        };
        assert!(o.fatal && o.interrupted && o.global_failed);
    }

    #[test]
    fn a_third_signal_ends_the_run_without_waiting_for_cleanups() {
        let schedule = Schedule::new(2, 2, None, None, false);
        let mut d = Dispatcher::new(schedule, true, Duration::ZERO, false);
        d.handle(Input::Start);
        d.handle(Input::GlobalBeforeDone { ok: true });
        d.handle(Input::Prepared {
            slot: 0,
            ready: true,
        });
        d.handle(Input::Prepared {
            slot: 1,
            ready: true,
        });
        assert_eq!(
            d.handle(Input::Signal),
            vec![Command::Abort { slots: vec![0, 1] }]
        );
        assert_eq!(d.handle(Input::Signal), vec![Command::Kill]);
        let end = d.handle(Input::Signal);
        assert_eq!(d.cancel_reason(), Some(CancelReason::ThirdSignal));
        let [Command::Finish(o)] = end.as_slice() else {
            panic!("{end:?}")
        };
        assert!(o.interrupted);
        // Late answers and more signals change nothing any more.
        assert_eq!(
            d.handle(Input::RunDone {
                slot: 0,
                success: false
            }),
            vec![]
        );
        assert_eq!(d.handle(Input::Signal), vec![]);
        assert_eq!(d.cancel_reason(), Some(CancelReason::ThirdSignal));
    }

    /// The first signal stops a running before.sh: a test's (the slot being prepared is
    /// aborted) or GLOBAL's, whose after.sh then still runs.
    #[test]
    fn signal_during_pre_run_stops_before_sh() {
        let schedule = Schedule::new(3, 3, None, None, false);
        let mut d = Dispatcher::new(schedule, false, Duration::ZERO, false);
        d.handle(Input::Start);
        d.handle(Input::Prepared {
            slot: 0,
            ready: true,
        });
        assert_eq!(
            d.handle(Input::Signal),
            vec![Command::Abort { slots: vec![1] }]
        );
        // Stopped: NOT READY; nothing more is prepared, the READY one is cleaned.
        assert_eq!(
            d.handle(Input::Prepared {
                slot: 1,
                ready: false
            }),
            vec![Command::Cleanup { slot: 0 }]
        );

        let schedule = Schedule::new(3, 1, None, None, false);
        let mut d = Dispatcher::new(schedule, true, Duration::ZERO, false);
        assert_eq!(d.handle(Input::Start), vec![Command::RunGlobalBefore]);
        assert_eq!(d.handle(Input::Signal), vec![Command::AbortGlobal]);
        assert_eq!(
            d.handle(Input::GlobalBeforeDone { ok: false }),
            vec![Command::RunGlobalAfter]
        );
        let end = d.handle(Input::GlobalAfterDone { ok: true });
        let Command::Finish(o) = &end[0] else {
            panic!("{end:?}")
        };
        assert!(o.interrupted && o.global_failed && o.total == 0);
        // A GLOBAL before.sh that fails on its own owes no after.sh.
        let schedule = Schedule::new(3, 1, None, None, false);
        let mut d = Dispatcher::new(schedule, true, Duration::ZERO, false);
        d.handle(Input::Start);
        let end = d.handle(Input::GlobalBeforeDone { ok: false });
        assert!(matches!(end[..], [Command::Finish(_)]), "{end:?}");
    }

    #[test]
    fn signal_while_running_aborts_the_running_tests() {
        let schedule = Schedule::new(3, 3, None, None, false);
        let mut d = Dispatcher::new(schedule, false, Duration::ZERO, false);
        d.handle(Input::Start);
        d.handle(Input::Prepared {
            slot: 0,
            ready: true,
        });
        d.handle(Input::Prepared {
            slot: 1,
            ready: false,
        });
        assert_eq!(
            d.handle(Input::Prepared {
                slot: 2,
                ready: true
            }),
            vec![Command::Run { slots: vec![0, 2] }]
        );
        d.handle(Input::RunDone {
            slot: 2,
            success: true,
        });
        assert_eq!(
            d.handle(Input::Signal),
            vec![Command::Abort { slots: vec![0] }]
        );
        assert_eq!(
            d.handle(Input::RunDone {
                slot: 0,
                success: false
            }),
            vec![Command::Cleanup { slot: 2 }]
        );
        assert_eq!(d.handle(Input::Signal), vec![Command::Kill]);
        assert_eq!(
            d.handle(Input::Cleaned {
                slot: 2,
                passed: true
            }),
            vec![Command::Cleanup { slot: 0 }]
        );
        let end = d.handle(Input::Cleaned {
            slot: 0,
            passed: false,
        });
        let Command::Finish(o) = &end[0] else {
            panic!("{end:?}")
        };
        assert_eq!((o.total, o.passed), (3, 1));
    }

    /// What [`simulate_window`] saw.
    #[derive(Default, Debug)]
    struct WindowTrace {
        started: Vec<usize>,
        ready: Vec<usize>,
        cleaned: Vec<usize>,
        /// Slots in the order their runs ended (RunDone delivered).
        ran: Vec<usize>,
        /// Most tests under way at once (started, not yet NOT READY or cleaned).
        max_under_way: usize,
        /// Most pre-runs and post-runs under way at once.
        max_lane: usize,
        global_before: usize,
        global_after: usize,
        finish: Vec<Outcome>,
        wind_down: WindDown,
        tries: Tries,
    }

    /// Plays the Supervisor's shell in `--window` mode: every answer waits in a pool and the
    /// answers come back in an order drawn from `picks`, so that runs end in any order and
    /// pre-runs, runs and post-runs overlap any way they can. Outcomes come from `luck`;
    /// signals and fatal errors come after so many answers (`inject`).
    #[allow(clippy::too_many_arguments)]
    fn simulate_window(
        tests: usize,
        width: usize,
        total: Option<u64>,
        global: bool,
        stop_first_fail: bool,
        pause: bool,
        luck: &[bool],
        picks: &[usize],
        inject: Injections,
        retries: u32,
    ) -> WindowTrace {
        let schedule = Schedule::new(tests, width, total, None, false);
        let pause = if pause {
            Duration::from_millis(5)
        } else {
            Duration::ZERO
        };
        let mut d = Dispatcher::new(schedule, global, pause, stop_first_fail)
            .windowed(width)
            .with_retries(retries);
        let mut t = WindowTrace::default();
        let mut pool: Vec<Input> = Vec::new();
        let mut luck = luck.iter().copied().cycle();
        let mut picks = picks.iter().copied().cycle();
        let mut inject = inject.iter().cloned().peekable();
        let mut under_way = BTreeSet::new();
        let mut lane = 0usize;
        let mut steps = 0usize;
        let mut early: VecDeque<Input> = VecDeque::new();
        while let Some((_, input)) = inject.next_if(|(after, _)| *after == 0) {
            early.push_back(input);
        }
        early.push_back(Input::Start);
        let mut next = early.pop_front();
        while let Some(input) = next.take() {
            steps += 1;
            assert!(steps < 100_000, "no end");
            t.tries.answered(&input);
            match input {
                Input::Prepared { slot, ready } => {
                    lane -= 1;
                    if !ready {
                        under_way.remove(&slot);
                    }
                }
                Input::Cleaned { slot, .. } => {
                    lane -= 1;
                    under_way.remove(&slot);
                }
                Input::RunDone { slot, .. } => t.ran.push(slot),
                _ => {}
            }
            t.wind_down.input(&input);
            let commands = d.handle(input);
            t.wind_down.handled(&d);
            for cmd in commands {
                t.wind_down.command(&cmd);
                let answers = answer(&cmd, &mut luck, t.wind_down.signals);
                match cmd {
                    Command::RunGlobalBefore => t.global_before += 1,
                    Command::StartGroup { .. } => panic!("StartGroup in window mode"),
                    Command::StartTest { slot, run } => {
                        t.tries.start(slot, run);
                        assert!(!t.started.contains(&slot), "slot {slot} reused");
                        t.started.push(slot);
                        under_way.insert(slot);
                        t.max_under_way = t.max_under_way.max(under_way.len());
                    }
                    Command::Prepare { slot } => {
                        lane += 1;
                        t.max_lane = t.max_lane.max(lane);
                        if answers == [Input::Prepared { slot, ready: true }] {
                            t.ready.push(slot);
                        }
                    }
                    Command::Cleanup { slot } => {
                        lane += 1;
                        t.max_lane = t.max_lane.max(lane);
                        t.cleaned.push(slot);
                    }
                    Command::RunGlobalAfter => t.global_after += 1,
                    Command::Finish(o) => t.finish.push(o),
                    // The runs' answers are in the pool already.
                    Command::Run { .. }
                    | Command::Abort { .. }
                    | Command::AbortGlobal
                    | Command::Kill
                    | Command::Pause(_) => {}
                }
                pool.extend(answers);
            }
            if let Some(input) = early.pop_front() {
                next = Some(input);
            } else if let Some((_, input)) = inject.next_if(|(after, _)| *after <= steps) {
                next = Some(input);
            } else if !pool.is_empty() {
                let i = picks.next().unwrap() % pool.len();
                next = Some(pool.swap_remove(i));
            }
        }
        t
    }

    #[test]
    fn window_a_slow_test_does_not_hold_up_the_others() {
        let schedule = Schedule::new(3, 2, None, None, false);
        let mut d = Dispatcher::new(schedule, false, Duration::ZERO, false).windowed(2);
        let start = |slot: usize| {
            let run = ScheduledRun {
                index: slot as u64,
                test: slot,
                attempt: 0,
            };
            vec![Command::StartTest { slot, run }, Command::Prepare { slot }]
        };
        let ready = |slot| Input::Prepared { slot, ready: true };
        let ran = |slot, success| Input::RunDone { slot, success };
        let cleaned = |slot, passed| Input::Cleaned { slot, passed };
        let run = |slot| Command::Run { slots: vec![slot] };
        let cleanup = |slot| Command::Cleanup { slot };
        let script: Vec<(Input, Vec<Command>)> = vec![
            (Input::Start, start(0)),
            // READY runs at once, and the next pre-run follows.
            (ready(0), [vec![run(0)], start(1)].concat()),
            (ready(1), vec![run(1)]),
            // Test 1 ends while test 0 runs on: post-run, then test 2 takes its place.
            (ran(1, true), vec![cleanup(1)]),
            (cleaned(1, true), start(2)),
            // A signal: the running test stops, and the before.sh of the one being prepared;
            // that one, READY all the same (its script was over), is cleaned without a run.
            (Input::Signal, vec![Command::Abort { slots: vec![0, 2] }]),
            (ready(2), vec![cleanup(2)]),
            (ran(0, false), vec![]),
            (cleaned(2, true), vec![cleanup(0)]),
        ];
        for (step, (input, expected)) in script.into_iter().enumerate() {
            assert_eq!(d.handle(input.clone()), expected, "step {step}: {input:?}");
        }
        let end = d.handle(cleaned(0, false));
        let Command::Finish(o) = &end[0] else {
            panic!("{end:?}")
        };
        assert!(o.interrupted);
        assert_eq!((o.total, o.passed), (3, 2));
    }

    #[test]
    fn window_pause_holds_a_place_and_stop_first_fail_starts_nothing_more() {
        let schedule = Schedule::new(4, 1, None, None, false);
        let pause = Duration::from_secs(1);
        let mut d = Dispatcher::new(schedule, false, pause, true).windowed(1);
        d.handle(Input::Start);
        d.handle(Input::Prepared {
            slot: 0,
            ready: true,
        });
        d.handle(Input::RunDone {
            slot: 0,
            success: true,
        });
        // The place is free after the pause only.
        assert_eq!(
            d.handle(Input::Cleaned {
                slot: 0,
                passed: true
            }),
            vec![Command::Pause(pause)]
        );
        assert_eq!(d.handle(Input::PauseOver)[1], Command::Prepare { slot: 1 });
        // NOT READY is a failure: no more tests (and no pause); the run ends as stopped on
        // failure.
        let end = d.handle(Input::Prepared {
            slot: 1,
            ready: false,
        });
        assert_eq!(end.len(), 1, "{end:?}");
        let Command::Finish(o) = &end[0] else {
            panic!("{end:?}")
        };
        assert!(o.stopped_on_failure && !o.interrupted);
        assert_eq!((o.total, o.passed), (2, 1));
    }

    proptest! {
        #[test]
        fn window_keeps_the_invariants_in_any_order_of_answers(
            tests in 1usize..6,
            width in 1usize..5,
            total in proptest::option::of(1u64..12),
            global in any::<bool>(),
            stop in any::<bool>(),
            pause in any::<bool>(),
            luck in proptest::collection::vec(any::<bool>(), 1..20),
            picks in proptest::collection::vec(0usize..8, 1..20),
            fatal_after in proptest::option::of(0usize..30),
            signals_after in proptest::collection::vec(0usize..40, 0..4),
            retries in 0u32..3,
        ) {
            let inject = injections(fatal_after, &signals_after);
            let t = simulate_window(
                tests, width, total, global, stop, pause, &luck, &picks, &inject, retries,
            );
            t.wind_down.check()?;
            // Exactly one Cleanup for every READY test, none for the others (a third signal
            // ends the run without waiting for the rest).
            let mut ready = t.ready.clone();
            let mut cleaned = t.cleaned.clone();
            ready.sort();
            cleaned.sort();
            let third = t.wind_down.third_before_finish;
            if third {
                cleaned.dedup();
                prop_assert_eq!(cleaned.len(), t.cleaned.len(), "cleaned twice");
                prop_assert!(cleaned.iter().all(|s| ready.contains(s)));
            } else {
                prop_assert_eq!(&ready, &cleaned);
            }
            // Never more than --group tests under way; one pre-run or post-run at a time.
            prop_assert!(t.max_under_way <= width);
            prop_assert!(t.max_lane <= 1);
            // Post-run in the order the runs ended.
            let ran_cleaned: Vec<usize> =
                t.cleaned.iter().copied().filter(|s| t.ran.contains(s)).collect();
            prop_assert!(t.ran.starts_with(&ran_cleaned));
            if !third {
                prop_assert_eq!(&ran_cleaned, &t.ran);
                let o = t.finish[0];
                prop_assert_eq!((o.total + o.retried) as usize, t.started.len());
                let all = inject.is_empty() && !stop;
                t.tries.check(&o, retries, all)?;
            }
            if inject.is_empty() && !stop && !(global && t.finish[0].global_failed) {
                prop_assert_eq!(t.finish[0].total, total.unwrap_or(tests as u64));
            }
        }

        #[test]
        fn every_ready_test_is_cleaned_once_in_reverse_order(
            tests in 1usize..6,
            group in 1usize..5,
            total in proptest::option::of(1u64..12),
            global in any::<bool>(),
            stop in any::<bool>(),
            luck in proptest::collection::vec(any::<bool>(), 1..20),
            fatal_after in proptest::option::of(0usize..30),
            signals_after in proptest::collection::vec(0usize..40, 0..4),
            retries in 0u32..3,
        ) {
            let inject = injections(fatal_after, &signals_after);
            let t = simulate_retries(
                tests, group, total, global, stop, &luck, &inject, retries,
            );
            t.wind_down.check()?;
            let third = t.wind_down.third_before_finish;
            // Exactly one Cleanup for every READY test, none for the others (a third signal
            // ends the run without waiting for the rest).
            let mut ready = t.ready.clone();
            let mut cleaned = t.cleaned.clone();
            ready.sort();
            cleaned.sort();
            if third {
                cleaned.dedup();
                prop_assert_eq!(cleaned.len(), t.cleaned.len(), "cleaned twice");
                prop_assert!(cleaned.iter().all(|s| ready.contains(s)));
            } else {
                prop_assert_eq!(&ready, &cleaned);
            }
            // Within a group, post-run is the reverse of pre-run (as far as it got).
            for g in 1..=t.ready.iter().map(|r| r.0).max().unwrap_or(0) {
                let mut pre: Vec<usize> =
                    t.ready.iter().filter(|r| r.0 == g).map(|r| r.1).collect();
                let post: Vec<usize> =
                    t.cleaned.iter().filter(|r| r.0 == g).map(|r| r.1).collect();
                pre.reverse();
                prop_assert!(pre.starts_with(&post), "group {}: {:?} then {:?}", g, pre, post);
                if !third {
                    prop_assert_eq!(pre.len(), post.len());
                }
            }
            let o = t.finish[0];
            if !third {
                prop_assert_eq!((o.total + o.retried) as usize, t.prepared.len());
                t.tries.check(&o, retries, inject.is_empty() && !stop)?;
            }
            if inject.is_empty() && !stop {
                let expected = total.unwrap_or(tests as u64) as usize;
                prop_assert_eq!(o.total as usize + if global && t.global_before == 1 && o.global_failed && t.prepared.is_empty() { expected } else { 0 }, expected);
            }
        }
    }
}
