//! Which test runs come next: `--group` slices of the run sequence, `--total` runs wrapping
//! around the list, `--random` (a fresh shuffle for each pass over the list, so no test repeats
//! within a pass, seeded so that a run can be replayed) and `--loop`. Pure: no runtime.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// One test run to do: `index` counts runs from 0 across the whole run, `test` indexes the
/// collected tests, `attempt` counts the tries of the run from 0 (`--retries`: a try that did
/// not pass is tried again as a fresh run with the same index and the next attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledRun {
    pub index: u64,
    pub test: usize,
    pub attempt: u32,
}

impl ScheduledRun {
    /// The next try of this run.
    pub fn retry(self) -> ScheduledRun {
        ScheduledRun {
            attempt: self.attempt + 1,
            ..self
        }
    }
}

#[derive(Debug)]
pub struct Schedule {
    tests: usize,
    group: usize,
    /// Runs in one round (one whole run of the suite).
    per_round: u64,
    repeat: bool,
    rng: Option<StdRng>,
    /// The current pass over the list, and how far into it we are.
    pass: Vec<usize>,
    pass_pos: usize,
    done_in_round: u64,
    next_index: u64,
}

impl Schedule {
    /// `tests` > 0 and `group` > 0 (the front end refuses the rest).
    pub fn new(
        tests: usize,
        group: usize,
        total: Option<u64>,
        seed: Option<u64>,
        repeat: bool,
    ) -> Self {
        assert!(tests > 0 && group > 0, "validated by the front end");
        let mut s = Schedule {
            tests,
            group,
            per_round: total.unwrap_or(tests as u64),
            repeat,
            rng: seed.map(StdRng::seed_from_u64),
            pass: Vec::new(),
            pass_pos: 0,
            done_in_round: 0,
            next_index: 0,
        };
        s.new_pass();
        s
    }

    fn new_pass(&mut self) {
        self.pass = (0..self.tests).collect();
        if let Some(rng) = self.rng.as_mut() {
            self.pass.shuffle(rng);
        }
        self.pass_pos = 0;
    }

    /// Runs in one round, i.e. in the whole run without `--loop`.
    pub fn runs_per_round(&self) -> u64 {
        self.per_round
    }

    /// `--group`: the most runs a group takes.
    pub fn group(&self) -> usize {
        self.group
    }

    /// Whether no group is left.
    pub fn is_done(&self) -> bool {
        !self.repeat && self.done_in_round >= self.per_round
    }

    /// The next group, or `None` when the run is over. A group never crosses from one round
    /// into the next.
    pub fn next_group(&mut self) -> Option<Vec<ScheduledRun>> {
        if !self.start_round() {
            return None;
        }
        let size = (self.group as u64).min(self.per_round - self.done_in_round) as usize;
        Some((0..size).map(|_| self.take()).collect())
    }

    /// The next run alone (`--window`: a run starts whenever a test ends), or `None` when the
    /// run is over.
    pub fn next_run(&mut self) -> Option<ScheduledRun> {
        self.start_round().then(|| self.take())
    }

    /// Whether a run is left in this round, starting a new round first where `--loop` asks.
    fn start_round(&mut self) -> bool {
        if self.per_round == 0 {
            return false;
        }
        if self.done_in_round >= self.per_round {
            if !self.repeat {
                return false;
            }
            // A new round starts from a new pass, like a fresh run would.
            self.done_in_round = 0;
            self.new_pass();
        }
        true
    }

    /// The next run of the round ([`Schedule::start_round`] said there is one).
    fn take(&mut self) -> ScheduledRun {
        if self.pass_pos == self.pass.len() {
            self.new_pass();
        }
        let run = ScheduledRun {
            index: self.next_index,
            test: self.pass[self.pass_pos],
            attempt: 0,
        };
        self.pass_pos += 1;
        self.next_index += 1;
        self.done_in_round += 1;
        run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(mut s: Schedule) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        while let Some(g) = s.next_group() {
            out.push(g.iter().map(|r| r.test).collect());
            assert!(out.len() < 10_000);
        }
        out
    }

    #[test]
    fn slices_in_order() {
        let s = Schedule::new(5, 2, None, None, false);
        assert_eq!(all(s), vec![vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[test]
    fn total_wraps_around() {
        let s = Schedule::new(3, 2, Some(7), None, false);
        assert_eq!(all(s), vec![vec![0, 1], vec![2, 0], vec![1, 2], vec![0]]);
    }

    #[test]
    fn indices_count_every_run() {
        let mut s = Schedule::new(3, 2, Some(5), None, false);
        let mut idx = Vec::new();
        while let Some(g) = s.next_group() {
            idx.extend(g.iter().map(|r| r.index));
        }
        assert_eq!(idx, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn random_has_no_repeat_within_a_pass_and_replays_with_its_seed() {
        let tests = 10;
        let flat = |seed| -> Vec<usize> {
            all(Schedule::new(tests, 3, Some(30), Some(seed), false)).concat()
        };
        let a = flat(42);
        assert_eq!(a.len(), 30);
        for pass in a.chunks(tests) {
            let mut p = pass.to_vec();
            p.sort();
            assert_eq!(
                p,
                (0..tests).collect::<Vec<_>>(),
                "each pass is a permutation"
            );
        }
        assert_eq!(a, flat(42), "the same seed replays the same run");
        assert_ne!(a, flat(43));
        assert_ne!(a[..tests], (0..tests).collect::<Vec<_>>()[..], "shuffled");
    }

    #[test]
    fn loop_repeats_rounds_and_never_ends() {
        let mut s = Schedule::new(2, 3, None, None, true);
        let groups: Vec<Vec<usize>> = (0..4)
            .map(|_| s.next_group().unwrap().iter().map(|r| r.test).collect())
            .collect();
        // A group never crosses from one round into the next.
        assert_eq!(groups, vec![vec![0, 1]; 4]);
        assert!(!s.is_done());
    }

    #[test]
    fn next_run_takes_the_same_runs_one_by_one() {
        for (tests, group, total, seed) in [(5, 2, None, None), (3, 2, Some(7), Some(9))] {
            let grouped: Vec<ScheduledRun> = std::iter::from_fn({
                let mut s = Schedule::new(tests, group, total, seed, false);
                move || s.next_group()
            })
            .flatten()
            .collect();
            let mut s = Schedule::new(tests, group, total, seed, false);
            let single: Vec<ScheduledRun> = std::iter::from_fn(|| s.next_run()).collect();
            assert_eq!(single, grouped);
            assert!(s.is_done());
        }
        // --loop: rounds follow each other without end.
        let mut s = Schedule::new(2, 5, Some(3), None, true);
        let tests: Vec<usize> = (0..7).map(|_| s.next_run().unwrap().test).collect();
        assert_eq!(tests, vec![0, 1, 0, 0, 1, 0, 0]);
        assert!(!s.is_done());
    }

    #[test]
    fn is_done_after_last_group() {
        let mut s = Schedule::new(2, 1, None, None, false);
        assert!(!s.is_done());
        s.next_group();
        assert!(!s.is_done());
        s.next_group();
        assert!(s.is_done());
        assert!(s.next_group().is_none());
    }
}
