//! The test state machine of SPEC §4.1, as types: each state is a type whose only constructors
//! are the allowed transitions, so no other transition can be written.
//!
//! ```text
//! CREATED → PREPARING → READY → STARTING → SUCCESS | FAIL → CLEANING → CLEAN | DIRTY
//!                             → DRY-RUNNING → SUCCESS
//!                     → NOT READY                   READY → CLEANING (interrupted before run)
//!                                      STARTING → NOT READY → CLEANING (SIPp could not start)
//! ```
//!
//! NOT READY from PREPARING is the end (pre-run rolled back what it did); NOT READY from
//! STARTING (SIPp refused its scenario, injection file or options before its first call) still
//! owes the cleanup of everything pre-run made, after.sh included.
//!
//! [`Lifecycle`] holds whichever state a test is in, with what the run holds there, for an actor
//! to store; [`Lifecycle::step`], [`Lifecycle::ready`] and [`Lifecycle::clean`] dispatch to the
//! typed transitions and refuse the rest.

use std::fmt;

/// The name of a state, as printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum StateName {
    #[serde(rename = "CREATED")]
    Created,
    #[serde(rename = "PREPARING")]
    Preparing,
    #[serde(rename = "READY")]
    Ready,
    #[serde(rename = "NOT READY")]
    NotReady,
    #[serde(rename = "DRY-RUNNING")]
    DryRunning,
    #[serde(rename = "STARTING")]
    Starting,
    #[serde(rename = "SUCCESS")]
    Success,
    #[serde(rename = "FAIL")]
    Fail,
    #[serde(rename = "CLEANING")]
    Cleaning,
    #[serde(rename = "CLEAN")]
    Clean,
    #[serde(rename = "DIRTY")]
    Dirty,
}

impl StateName {
    pub fn as_str(self) -> &'static str {
        match self {
            StateName::Created => "CREATED",
            StateName::Preparing => "PREPARING",
            StateName::Ready => "READY",
            StateName::NotReady => "NOT READY",
            StateName::DryRunning => "DRY-RUNNING",
            StateName::Starting => "STARTING",
            StateName::Success => "SUCCESS",
            StateName::Fail => "FAIL",
            StateName::Cleaning => "CLEANING",
            StateName::Clean => "CLEAN",
            StateName::Dirty => "DIRTY",
        }
    }

    /// Whether the terminal shows this state (CREATED, READY and CLEAN are not shown).
    pub fn shown(self) -> bool {
        !matches!(
            self,
            StateName::Created | StateName::Ready | StateName::Clean
        )
    }

    /// Error states are printed in red.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            StateName::NotReady | StateName::Fail | StateName::Dirty
        )
    }

    /// SUCCESS or FAIL: the end of the run itself.
    pub fn is_run_end(self) -> bool {
        matches!(self, StateName::Success | StateName::Fail)
    }
}

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// Each state is a small type with private fields: outside this module the only way to get one
// is `Created::new()` followed by the transitions below. The states of a run that holds
// something (READY, DRY-RUNNING, STARTING, and SUCCESS / FAIL until post-run) carry it, as
// `R`: what pre-run made comes in with READY and goes out to post-run with CLEANING, so that no
// other state can reach it. Tests of the transitions alone use `R = ()`.

#[derive(Debug, PartialEq, Eq)]
pub struct Created(());
#[derive(Debug, PartialEq, Eq)]
pub struct Preparing(());
/// Carries what pre-run made.
#[derive(Debug, PartialEq, Eq)]
pub struct Ready<R>(R);
#[derive(Debug, PartialEq, Eq)]
pub struct NotReady(());
#[derive(Debug, PartialEq, Eq)]
pub struct DryRunning<R>(R);
#[derive(Debug, PartialEq, Eq)]
pub struct Starting<R>(R);
/// SUCCESS, FAIL, or NOT READY when SIPp could not start: the run is over, cleanup is still due.
#[derive(Debug, PartialEq, Eq)]
pub struct Finished<R> {
    held: R,
    success: bool,
    /// SIPp started (SUCCESS or FAIL); `false`: it refused to (NOT READY).
    started: bool,
}
#[derive(Debug, PartialEq, Eq)]
pub struct Cleaning {
    /// Whether the run succeeded (`false` also for a test interrupted before it ran).
    success: bool,
}
/// CLEAN or DIRTY.
#[derive(Debug, PartialEq, Eq)]
pub struct Cleaned {
    success: bool,
    clean: bool,
}

impl Created {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Created(())
    }
    pub fn prepare(self) -> Preparing {
        Preparing(())
    }
}

impl Preparing {
    pub fn ready<R>(self, held: R) -> Ready<R> {
        Ready(held)
    }
    pub fn not_ready(self) -> NotReady {
        NotReady(())
    }
}

impl<R> Ready<R> {
    pub fn start(self) -> Starting<R> {
        Starting(self.0)
    }
    pub fn dry_run(self) -> DryRunning<R> {
        DryRunning(self.0)
    }
    /// Interrupted before it ran: straight to cleanup, and the test did not succeed.
    pub fn interrupt(self) -> (Cleaning, R) {
        (Cleaning { success: false }, self.0)
    }
}

impl<R> DryRunning<R> {
    pub fn succeed(self) -> Finished<R> {
        Finished {
            held: self.0,
            success: true,
            started: true,
        }
    }
}

impl<R> Starting<R> {
    pub fn finish(self, success: bool) -> Finished<R> {
        Finished {
            held: self.0,
            success,
            started: true,
        }
    }
    /// SIPp exited before its first call on a setup error of the test's (NOT READY).
    pub fn not_started(self) -> Finished<R> {
        Finished {
            held: self.0,
            success: false,
            started: false,
        }
    }
}

impl<R> Finished<R> {
    pub fn success(&self) -> bool {
        self.success
    }
    /// Post-run: what the run held goes to the cleanup.
    pub fn clean(self) -> (Cleaning, R) {
        (
            Cleaning {
                success: self.success,
            },
            self.held,
        )
    }
}

impl Cleaning {
    pub fn done(self, clean: bool) -> Cleaned {
        Cleaned {
            success: self.success,
            clean,
        }
    }
}

impl Cleaned {
    /// The test passed: it succeeded and was cleaned up without a failing step.
    pub fn passed(&self) -> bool {
        self.success && self.clean
    }
    pub fn success(&self) -> bool {
        self.success
    }
}

/// Whichever state a test is in, with what the run holds there.
#[derive(Debug, PartialEq, Eq)]
pub enum Lifecycle<R = ()> {
    Created(Created),
    Preparing(Preparing),
    Ready(Ready<R>),
    NotReady(NotReady),
    DryRunning(DryRunning<R>),
    Starting(Starting<R>),
    Finished(Finished<R>),
    Cleaning(Cleaning),
    Cleaned(Cleaned),
}

/// What happened to a test; [`Lifecycle::apply`] turns it into a transition. The two steps
/// that move what the run holds in and out are [`Lifecycle::ready`] and [`Lifecycle::clean`];
/// as plain steps (`Prepared { ok: true }`, `Clean`) they are for runs that hold nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Prepare,
    Prepared {
        ok: bool,
    },
    Run {
        dry: bool,
    },
    RunEnded {
        success: bool,
    },
    /// SIPp could not even start (STARTING → NOT READY).
    NotStarted,
    /// Cleanup asked for: from SUCCESS/FAIL, or from READY when the test never ran.
    Clean,
    Cleaned {
        clean: bool,
    },
}

/// A transition done: the new state, and what the run held when it went out (to CLEANING).
type Moved<R> = (Lifecycle<R>, Option<R>);

/// A step that the current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid transition: {step:?} in state {from}")]
pub struct InvalidTransition {
    pub from: StateName,
    pub step: Step,
}

impl<R> Default for Lifecycle<R> {
    fn default() -> Self {
        Lifecycle::Created(Created::new())
    }
}

impl<R> Lifecycle<R> {
    pub fn name(&self) -> StateName {
        match self {
            Lifecycle::Created(_) => StateName::Created,
            Lifecycle::Preparing(_) => StateName::Preparing,
            Lifecycle::Ready(_) => StateName::Ready,
            Lifecycle::NotReady(_) => StateName::NotReady,
            Lifecycle::DryRunning(_) => StateName::DryRunning,
            Lifecycle::Starting(_) => StateName::Starting,
            Lifecycle::Finished(f) if !f.started => StateName::NotReady,
            Lifecycle::Finished(f) if f.success => StateName::Success,
            Lifecycle::Finished(_) => StateName::Fail,
            Lifecycle::Cleaning(_) => StateName::Cleaning,
            Lifecycle::Cleaned(c) if c.clean => StateName::Clean,
            Lifecycle::Cleaned(_) => StateName::Dirty,
        }
    }

    /// What the run holds, in the states that hold it (READY up to post-run).
    pub fn held(&self) -> Option<&R> {
        match self {
            Lifecycle::Ready(Ready(r))
            | Lifecycle::DryRunning(DryRunning(r))
            | Lifecycle::Starting(Starting(r))
            | Lifecycle::Finished(Finished { held: r, .. }) => Some(r),
            _ => None,
        }
    }

    /// The data-free transitions; on a step the state does not allow (or one that moves data,
    /// see [`Lifecycle::ready`] and [`Lifecycle::clean`]), the state is handed back unchanged
    /// with the error.
    fn apply_moving(
        self,
        step: Step,
        held: impl FnOnce() -> Option<R>,
    ) -> Result<Moved<R>, (Lifecycle<R>, InvalidTransition)> {
        use Lifecycle as L;
        Ok(match (self, step) {
            (L::Created(s), Step::Prepare) => (L::Preparing(s.prepare()), None),
            (L::Preparing(s), Step::Prepared { ok: true }) => match held() {
                Some(r) => (L::Ready(s.ready(r)), None),
                None => {
                    let from = StateName::Preparing;
                    return Err((L::Preparing(s), InvalidTransition { from, step }));
                }
            },
            (L::Preparing(s), Step::Prepared { ok: false }) => (L::NotReady(s.not_ready()), None),
            (L::Ready(s), Step::Run { dry: true }) => (L::DryRunning(s.dry_run()), None),
            (L::Ready(s), Step::Run { dry: false }) => (L::Starting(s.start()), None),
            (L::Ready(s), Step::Clean) => {
                let (c, r) = s.interrupt();
                (L::Cleaning(c), Some(r))
            }
            (L::DryRunning(s), Step::RunEnded { success: true }) => {
                (L::Finished(s.succeed()), None)
            }
            (L::Starting(s), Step::RunEnded { success }) => (L::Finished(s.finish(success)), None),
            (L::Starting(s), Step::NotStarted) => (L::Finished(s.not_started()), None),
            (L::Finished(s), Step::Clean) => {
                let (c, r) = s.clean();
                (L::Cleaning(c), Some(r))
            }
            (L::Cleaning(s), Step::Cleaned { clean }) => (L::Cleaned(s.done(clean)), None),
            (state, step) => {
                let from = state.name();
                return Err((state, InvalidTransition { from, step }));
            }
        })
    }

    /// Applies `step` in place, with `held` for READY; gives out what the run held on CLEANING.
    fn step_moving(
        &mut self,
        step: Step,
        held: impl FnOnce() -> Option<R>,
    ) -> Result<(StateName, Option<R>), InvalidTransition> {
        let current = std::mem::take(self);
        match current.apply_moving(step, held) {
            Ok((next, out)) => {
                *self = next;
                Ok((self.name(), out))
            }
            Err((unchanged, err)) => {
                *self = unchanged;
                Err(err)
            }
        }
    }

    /// Applies a step that moves no data in place; on an invalid step (READY and CLEANING
    /// included: see [`Lifecycle::ready`], [`Lifecycle::clean`]) the state stays as it was.
    pub fn step(&mut self, step: Step) -> Result<StateName, InvalidTransition> {
        if matches!(step, Step::Clean) {
            return Err(InvalidTransition {
                from: self.name(),
                step,
            });
        }
        self.step_moving(step, || None).map(|(name, _)| name)
    }

    /// PREPARING → READY, holding what pre-run made.
    pub fn ready(&mut self, held: R) -> Result<StateName, InvalidTransition> {
        self.step_moving(Step::Prepared { ok: true }, || Some(held))
            .map(|(name, _)| name)
    }

    /// READY or SUCCESS / FAIL (or NOT READY after STARTING) → CLEANING: what the run held, for
    /// post-run to give back.
    pub fn clean(&mut self) -> Result<R, InvalidTransition> {
        match self.step_moving(Step::Clean, || None)? {
            (_, Some(held)) => Ok(held),
            // Every transition to CLEANING gives out what the run held.
            (from, None) => Err(InvalidTransition {
                from,
                step: Step::Clean,
            }),
        }
    }

    /// Whether the test passed: it ended CLEAN after SUCCESS.
    pub fn passed(&self) -> bool {
        matches!(self, Lifecycle::Cleaned(c) if c.passed())
    }

    /// Whether cleanup is still owed: the test got past PREPARING and is not yet CLEAN/DIRTY.
    pub fn owes_cleanup(&self) -> bool {
        matches!(
            self,
            Lifecycle::Ready(_)
                | Lifecycle::DryRunning(_)
                | Lifecycle::Starting(_)
                | Lifecycle::Finished(_)
                | Lifecycle::Cleaning(_)
        )
    }
}

impl Lifecycle<()> {
    /// Any step, for a run that holds nothing: READY holds `()`, CLEANING gives it back.
    pub fn apply(self, step: Step) -> Result<Lifecycle<()>, (Lifecycle<()>, InvalidTransition)> {
        self.apply_moving(step, || Some(())).map(|(next, _)| next)
    }

    /// Applies any step in place (see [`Lifecycle::apply`]).
    pub fn step_any(&mut self, step: Step) -> Result<StateName, InvalidTransition> {
        self.step_moving(step, || Some(())).map(|(name, _)| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL_STEPS: [Step; 11] = [
        Step::Prepare,
        Step::Prepared { ok: true },
        Step::Prepared { ok: false },
        Step::Run { dry: true },
        Step::Run { dry: false },
        Step::RunEnded { success: true },
        Step::RunEnded { success: false },
        Step::NotStarted,
        Step::Clean,
        Step::Cleaned { clean: true },
        Step::Cleaned { clean: false },
    ];

    /// The transitions SPEC §4.1 allows, written out as a table independent of the code above.
    fn allowed(from: StateName, to: StateName) -> bool {
        use StateName::*;
        matches!(
            (from, to),
            (Created, Preparing)
                | (Preparing, Ready)
                | (Preparing, NotReady)
                | (Ready, Starting)
                | (Ready, DryRunning)
                | (Ready, Cleaning)
                | (DryRunning, Success)
                | (Starting, Success)
                | (Starting, Fail)
                | (Starting, NotReady)
                | (Success, Cleaning)
                | (Fail, Cleaning)
                | (NotReady, Cleaning)
                | (Cleaning, Clean)
                | (Cleaning, Dirty)
        )
    }

    #[test]
    fn happy_paths() {
        let mut s = Lifecycle::default();
        for step in [
            Step::Prepare,
            Step::Prepared { ok: true },
            Step::Run { dry: false },
            Step::RunEnded { success: true },
            Step::Clean,
            Step::Cleaned { clean: true },
        ] {
            s.step_any(step).unwrap();
        }
        assert_eq!(s.name(), StateName::Clean);
        assert!(s.passed());
    }

    #[test]
    fn dry_run_cannot_fail_and_interrupted_ready_does_not_pass() {
        let mut s = Lifecycle::default();
        s.step_any(Step::Prepare).unwrap();
        s.step_any(Step::Prepared { ok: true }).unwrap();
        s.step_any(Step::Run { dry: true }).unwrap();
        let err = s.step_any(Step::RunEnded { success: false }).unwrap_err();
        assert_eq!(err.from, StateName::DryRunning);
        assert_eq!(s.name(), StateName::DryRunning);

        let mut s = Lifecycle::default();
        s.step_any(Step::Prepare).unwrap();
        s.step_any(Step::Prepared { ok: true }).unwrap();
        assert_eq!(s.step_any(Step::Clean).unwrap(), StateName::Cleaning);
        assert_eq!(
            s.step_any(Step::Cleaned { clean: true }).unwrap(),
            StateName::Clean
        );
        assert!(
            !s.passed(),
            "a test interrupted before its run did not pass"
        );
    }

    #[test]
    fn not_ready_is_terminal() {
        let mut s = Lifecycle::default();
        s.step_any(Step::Prepare).unwrap();
        s.step_any(Step::Prepared { ok: false }).unwrap();
        for step in ALL_STEPS {
            assert!(s.step_any(step).is_err());
            assert_eq!(s.name(), StateName::NotReady);
        }
        assert!(!s.owes_cleanup());
    }

    #[test]
    fn not_ready_after_starting_still_owes_cleanup() {
        let mut s = Lifecycle::default();
        for step in [
            Step::Prepare,
            Step::Prepared { ok: true },
            Step::Run { dry: false },
        ] {
            s.step_any(step).unwrap();
        }
        assert_eq!(s.step_any(Step::NotStarted).unwrap(), StateName::NotReady);
        assert!(
            s.owes_cleanup(),
            "pre-run's folder, link and after.sh are still due"
        );
        assert!(s.step_any(Step::RunEnded { success: true }).is_err());
        assert_eq!(s.step_any(Step::Clean).unwrap(), StateName::Cleaning);
        assert_eq!(
            s.step_any(Step::Cleaned { clean: true }).unwrap(),
            StateName::Clean
        );
        assert!(!s.passed());
        // Only a started SIPp can refuse to start.
        let mut s = Lifecycle::default();
        for step in [
            Step::Prepare,
            Step::Prepared { ok: true },
            Step::Run { dry: true },
        ] {
            s.step_any(step).unwrap();
        }
        assert!(s.step_any(Step::NotStarted).is_err());
    }

    proptest! {
        /// Whatever steps arrive, every transition that happens is one of §4.1.
        #[test]
        fn only_spec_transitions(steps in proptest::collection::vec(0..ALL_STEPS.len(), 0..40)) {
            let mut s = Lifecycle::default();
            for i in steps {
                let before = s.name();
                if let Ok(after) = s.step_any(ALL_STEPS[i]) {
                    prop_assert!(allowed(before, after), "{before} -> {after}");
                } else {
                    prop_assert_eq!(s.name(), before);
                }
            }
        }

        /// A driver that, like the TestActor, answers every Cleanup message once the test is past
        /// PREPARING: whatever the run's outcome and wherever the interrupt falls, every path that
        /// reached READY goes through CLEANING and ends CLEAN or DIRTY.
        #[test]
        fn ready_always_ends_clean_or_dirty(
            dry in any::<bool>(),
            success in any::<bool>(),
            clean in any::<bool>(),
            interrupt_at in 0usize..4,
            sipp_refused in any::<bool>(),
        ) {
            let mut s = Lifecycle::default();
            let mut trace = vec![s.name()];
            let mut push = |s: &mut Lifecycle, step| { let n = s.step_any(step).unwrap(); trace.push(n); };
            push(&mut s, Step::Prepare);
            push(&mut s, Step::Prepared { ok: true });
            if interrupt_at > 0 {
                push(&mut s, Step::Run { dry });
                if sipp_refused && !dry {
                    push(&mut s, Step::NotStarted);
                } else {
                    push(&mut s, Step::RunEnded { success: success || dry });
                }
            }
            // The Cleanup message: from READY (interrupted) or after the run.
            push(&mut s, Step::Clean);
            push(&mut s, Step::Cleaned { clean });
            prop_assert!(trace.contains(&StateName::Ready));
            prop_assert!(trace.contains(&StateName::Cleaning));
            prop_assert!(matches!(s.name(), StateName::Clean | StateName::Dirty));
            prop_assert!(!s.owes_cleanup());
        }
    }

    #[test]
    fn what_pre_run_made_is_held_until_post_run_takes_it() {
        let mut s: Lifecycle<&str> = Lifecycle::default();
        s.step(Step::Prepare).unwrap();
        assert_eq!(s.held(), None);
        // READY needs what pre-run made: the plain step is refused.
        assert!(s.step(Step::Prepared { ok: true }).is_err());
        assert_eq!(s.ready("folder").unwrap(), StateName::Ready);
        assert_eq!(s.held(), Some(&"folder"));
        s.step(Step::Run { dry: false }).unwrap();
        assert_eq!(s.held(), Some(&"folder"));
        s.step(Step::RunEnded { success: true }).unwrap();
        // Only `clean` gives it out.
        assert!(s.step(Step::Clean).is_err());
        assert_eq!(s.clean().unwrap(), "folder");
        assert_eq!(s.name(), StateName::Cleaning);
        assert_eq!(s.held(), None);
        assert!(s.clean().is_err());
        s.step(Step::Cleaned { clean: true }).unwrap();
        assert!(s.passed());
    }
}
