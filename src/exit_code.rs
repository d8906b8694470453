//! The exit statuses of sipplauncher, documented constants (scripts and CI rely on them), and the
//! status a finished run ends with.

use sipplauncher_actors::core::dispatch::Outcome;

/// Every test run passed, and the GLOBAL scripts too (with `--fail-expected`: something failed).
pub const SUCCESS: i32 = 0;

/// A test failed, was NOT READY or DIRTY, a GLOBAL script failed, or the run was interrupted
/// (with `--fail-expected`: every test passed; an interrupted run is 1 all the same).
pub const FAILURE: i32 = 1;

/// A bad command line, no `sipp` executable, or no tests found after filtering: nothing was done
/// on the machine.
pub const USAGE: i32 = 2;

/// The tool's own fault, e.g. the disk is full or netlink refuses a request:
/// the run stopped after cleaning up what it had done.
pub const INTERNAL: i32 = 3;

/// The exit status of a run that ended with `outcome`: [`SUCCESS`] when every test run passed,
/// else [`FAILURE`]; `--fail-expected` swaps the two, except that a run cut short (interrupted,
/// or stopped by the tool's own fault) is always a failure: it proves nothing either way. (For
/// the tool's own fault the caller reports [`INTERNAL`].)
pub fn for_outcome(outcome: &Outcome, fail_expected: bool) -> i32 {
    if outcome.interrupted || outcome.fatal {
        return FAILURE;
    }
    match (outcome.all_passed(), fail_expected) {
        (true, false) | (false, true) => SUCCESS,
        (true, true) | (false, false) => FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(total: u64, passed: u64) -> Outcome {
        Outcome {
            total,
            passed,
            ..Outcome::default()
        }
    }

    #[test]
    fn constants_are_distinct_and_stable() {
        assert_eq!([SUCCESS, FAILURE, USAGE, INTERNAL], [0, 1, 2, 3]);
    }

    #[test]
    fn all_passed_is_success() {
        assert_eq!(for_outcome(&outcome(3, 3), false), SUCCESS);
        assert_eq!(for_outcome(&outcome(3, 3), true), FAILURE);
    }

    #[test]
    fn a_failure_is_failure() {
        assert_eq!(for_outcome(&outcome(3, 2), false), FAILURE);
        assert_eq!(for_outcome(&outcome(3, 2), true), SUCCESS);
    }

    #[test]
    fn a_global_failure_is_failure() {
        let o = Outcome {
            global_failed: true,
            ..outcome(3, 3)
        };
        assert_eq!(for_outcome(&o, false), FAILURE);
        assert_eq!(for_outcome(&o, true), SUCCESS);
    }

    #[test]
    fn a_fatal_run_always_fails() {
        let o = Outcome {
            fatal: true,
            ..outcome(3, 1)
        };
        assert_eq!(for_outcome(&o, true), FAILURE);
    }

    #[test]
    fn an_interrupted_run_always_fails() {
        for passed in [2, 3] {
            let o = Outcome {
                interrupted: true,
                ..outcome(3, passed)
            };
            assert_eq!(for_outcome(&o, false), FAILURE);
            assert_eq!(for_outcome(&o, true), FAILURE);
        }
    }
}
