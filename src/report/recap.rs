//! The failure recap the terminal prints after the original's closing lines (issue 11): every
//! run that did not pass, with its state, test, run id, short reason and where its evidence is;
//! on a long soak at most a screenful: then per test, how many runs did not pass, the first and
//! the last. Memory stays bounded: the runs under way, up to a screenful of failures, and one
//! tally per test.

use std::collections::BTreeMap;

use sipplauncher_actors::core::plan::Keep;
use sipplauncher_actors::core::state::StateName;
use sipplauncher_actors::events::{Event, TestStateEvent};
use sipplauncher_actors::sys::keep::Fate;

use super::{fit, printable, printable_path, short_reason, RunRecord, RunResult};

/// How many lines a run takes in the recap: its state line and its evidence line.
const LINES_PER_RUN: usize = 2;

/// The most FLAKY runs the recap names one by one (the reports have them all).
const MAX_FLAKY_LISTED: usize = 10;

/// One line of the recap: its text, and how many leading characters are the state (to colour).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    /// The state at the start of the line, if any: its length, and whether it is a run that
    /// did not pass (red on a terminal) or one that passed on a retry (FLAKY: yellow, as on its
    /// state line).
    pub state: Option<(usize, Tone)>,
}

/// How a recap line's state is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Failed,
    Flaky,
}

impl Line {
    fn plain(text: String) -> Line {
        Line { text, state: None }
    }
}

/// Per test: its runs, and the first and last of those that did not pass.
#[derive(Debug, Default)]
struct Tally {
    runs: u64,
    failed: u64,
    first: Option<RunRecord>,
    last: Option<RunRecord>,
}

/// Collects the runs that did not pass from the event stream.
#[derive(Debug)]
pub struct Recap {
    /// Lines the recap may take (a screenful).
    screen: usize,
    /// Most runs listed one by one; beyond, the recap is per test.
    max_listed: usize,
    /// Runs under way (at most `--group`), by index.
    running: BTreeMap<u64, RunRecord>,
    /// GLOBAL's NOT READY or DIRTY, when it failed.
    global: Option<TestStateEvent>,
    /// The runs that did not pass, in the order they ended, while there are at most
    /// `max_listed`.
    listed: Vec<RunRecord>,
    failed: u64,
    tallies: BTreeMap<String, Tally>,
    /// The run's `--keep` and `--keep-max` (for the words of a removed failure's folder).
    keep: Option<(Keep, u64)>,
    /// `--retries`: a run that did not pass is over once its last try is.
    retries: u32,
    /// Runs that passed on a retry (FLAKY), the first [`MAX_FLAKY_LISTED`] of them.
    flaky: Vec<RunRecord>,
    flaky_count: u64,
}

impl Recap {
    /// `screen`: how many lines the recap may take.
    pub fn new(screen: usize) -> Recap {
        Recap {
            screen,
            max_listed: screen.saturating_sub(2) / LINES_PER_RUN,
            running: BTreeMap::new(),
            global: None,
            listed: Vec::new(),
            failed: 0,
            tallies: BTreeMap::new(),
            keep: None,
            retries: 0,
            flaky: Vec::new(),
            flaky_count: 0,
        }
    }

    /// Names `--keep` and `--keep-max` in the words of a failure whose folder went.
    pub fn with_keep(mut self, keep: Keep, max: u64) -> Recap {
        self.keep = Some((keep, max));
        self
    }

    pub fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted { retries, .. } => self.retries = *retries,
            Event::Test(e) => {
                let over = self.update(e);
                if let Some(r) = over {
                    self.settle(r);
                }
            }
            Event::Global(e) => {
                if matches!(e.state, StateName::NotReady | StateName::Dirty) {
                    self.global = Some(e.clone());
                }
            }
            Event::RunFinished { .. } => {
                // Runs that never got to an end (a second signal): they did not pass.
                for r in std::mem::take(&mut self.running).into_values() {
                    self.settle(r);
                }
            }
            _ => {}
        }
    }

    /// The run's record, taken out once it is over.
    fn update(&mut self, e: &TestStateEvent) -> Option<RunRecord> {
        let r = self
            .running
            .entry(e.index)
            .or_insert_with(|| RunRecord::new(e));
        r.take(e);
        if r.over(self.retries, false) {
            self.running.remove(&e.index)
        } else {
            None
        }
    }

    fn settle(&mut self, r: RunRecord) {
        let tally = self.tallies.entry(r.name.clone()).or_default();
        tally.runs += 1;
        if r.flaky() {
            self.flaky_count += 1;
            if self.flaky.len() < MAX_FLAKY_LISTED {
                self.flaky.push(r);
            }
            return;
        }
        if r.passed() {
            return;
        }
        tally.failed += 1;
        self.failed += 1;
        if tally.first.is_none() {
            tally.first = Some(r.clone());
        } else {
            tally.last = Some(r.clone());
        }
        if self.listed.len() < self.max_listed {
            self.listed.push(r);
        } else {
            // Too many for a screen: the per-test view takes over.
            self.listed.clear();
            self.listed.shrink_to_fit();
            self.max_listed = 0;
        }
    }

    /// Runs that did not pass so far.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// The recap's lines (none when everything passed), each cut to `width` but the evidence
    /// lines (paths are given whole); `total`: the runs of the whole run.
    pub fn lines(&self, total: u64, width: Option<usize>) -> Vec<Line> {
        let mut out = self.failure_lines(total, width);
        self.flaky_lines(total, width, &mut out);
        out
    }

    /// `--retries`: the runs that passed on a retry, each with what its earlier tries were.
    fn flaky_lines(&self, total: u64, width: Option<usize>, out: &mut Vec<Line>) {
        if self.flaky_count == 0 {
            return;
        }
        let runs = if total == 1 { "run" } else { "runs" };
        out.push(Line::plain(format!(
            "FLAKY (passed on a retry, counted as passed): {} of {total} test {runs}",
            self.flaky_count
        )));
        for r in &self.flaky {
            let tries = r.earlier.len() + 1;
            let before: Vec<String> = r
                .earlier
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mut s = format!("try {} {} ({})", i + 1, shown_state(t), t.run_id);
                    if let Some(reason) = t.reason() {
                        s.push_str(": ");
                        s.push_str(&short_reason(&reason));
                    }
                    s
                })
                .collect();
            let line = format!(
                "{:>12} {:>24} ({}-{}) - passed on try {tries} of {}; {}",
                "FLAKY",
                printable(&r.name),
                r.index,
                r.run_id,
                self.retries + 1,
                before.join("; ")
            );
            out.push(Line {
                text: fit(&line, width),
                state: Some((12, Tone::Flaky)),
            });
        }
        if self.flaky_count > self.flaky.len() as u64 {
            out.push(Line::plain(format!(
                "... and {} more FLAKY runs (see the reports)",
                self.flaky_count - self.flaky.len() as u64
            )));
        }
    }

    /// Every run that did not pass, or per test on a long run.
    fn failure_lines(&self, total: u64, width: Option<usize>) -> Vec<Line> {
        let mut out = Vec::new();
        if let Some(g) = &self.global {
            // Its reason is on its own state line above: told once.
            let mut r = RunRecord::new(g);
            r.update(g);
            out.push(Line::plain(format!(
                "GLOBAL did not pass ({}, see above); {}",
                g.state,
                self.evidence(&r)
            )));
        }
        if self.failed == 0 {
            return out;
        }
        let runs = if total == 1 { "run" } else { "runs" };
        if self.max_listed > 0 && self.listed.len() as u64 == self.failed {
            out.push(Line::plain(format!(
                "Did not pass: {} of {total} test {runs}",
                self.failed
            )));
            for r in &self.listed {
                self.run_lines(r, width, &mut out);
            }
            return out;
        }
        out.push(Line::plain(fit(
            &format!(
                "Did not pass: {} of {total} test {runs}; per test, the first and the last (every \
                 run is in the JSON and JUnit reports)",
                self.failed
            ),
            width,
        )));
        let failing: Vec<(&String, &Tally)> =
            self.tallies.iter().filter(|(_, t)| t.failed > 0).collect();
        for (shown, (name, t)) in failing.iter().enumerate() {
            // A test's block: its line, and two lines for each of its first and last failures.
            let block = 1 + LINES_PER_RUN * if t.last.is_some() { 2 } else { 1 };
            if out.len() + block + 1 > self.screen && shown > 0 {
                out.push(Line::plain(format!(
                    "... and {} more tests with runs that did not pass (see the reports)",
                    failing.len() - shown
                )));
                break;
            }
            out.push(Line::plain(fit(
                &format!(
                    "{}: {} of {} runs did not pass",
                    printable(name),
                    t.failed,
                    t.runs
                ),
                width,
            )));
            for r in [&t.first, &t.last].into_iter().flatten() {
                self.run_lines(r, width, &mut out);
            }
        }
        out
    }

    /// A run's two lines: its state line with the short reason, then its evidence.
    fn run_lines(&self, r: &RunRecord, width: Option<usize>, out: &mut Vec<Line>) {
        self.lines_of(shown_state(r), r, r.reason(), width, out);
    }

    fn lines_of(
        &self,
        state: &str,
        r: &RunRecord,
        reason: Option<String>,
        width: Option<usize>,
        out: &mut Vec<Line>,
    ) {
        let mut line = format!(
            "{state:>12} {:>24} ({}-{})",
            printable(&r.name),
            r.index,
            r.run_id
        );
        if let Some(reason) = reason {
            line.push_str(" - ");
            line.push_str(&short_reason(&reason));
        }
        out.push(Line {
            text: fit(&line, width),
            state: Some((12, Tone::Failed)),
        });
        out.push(Line::plain(format!("{:12} {}", "", self.evidence(r))));
    }

    /// Where the run's evidence is: its kept folder and pcap, or why there is none.
    fn evidence(&self, r: &RunRecord) -> String {
        let Some(folder) = &r.run_folder else {
            return "no run folder (it stopped before one was made)".into();
        };
        match r.folder_fate {
            Some(Fate::Kept) => {
                let mut s = format!("kept: {}", printable_path(folder));
                if let Some(pcap) = r.pcap.as_ref().and_then(|p| p.file_name()) {
                    s.push_str(&format!(" (pcap {})", pcap.to_string_lossy()));
                }
                s
            }
            Some(Fate::RemovedOverKeepMax) => match self.keep {
                Some((_, n)) => {
                    format!("folder removed: --keep-max {n} failed runs' folders are kept already")
                }
                None => "folder removed: --keep-max failed runs' folders are kept already".into(),
            },
            // A failure's folder goes with --keep none, or when a signal cut the run short.
            Some(Fate::Removed) => match self.keep {
                Some((Keep::None, _)) => "folder removed (--keep none)".into(),
                _ => "folder removed (the run was cut short)".into(),
            },
            None => format!("folder: {}", printable_path(folder)),
        }
    }
}

/// The state a run that did not pass is recapped under: its result, or DIRTY when only its
/// cleanup failed.
fn shown_state(r: &RunRecord) -> &'static str {
    match r.result() {
        RunResult::Success => r.state.as_str(),
        other => other.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, global, test};
    use sipplauncher_actors::core::dispatch::Outcome;
    use StateName::*;

    fn texts(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.text.clone()).collect()
    }

    #[test]
    fn every_failure_with_its_evidence() {
        let mut r = Recap::new(24).with_keep(Keep::Failed, 100);
        for e in fixture::events() {
            r.event(&e);
        }
        assert_eq!(r.failed(), 2);
        assert_eq!(
            texts(&r.lines(4, None)),
            [
                "GLOBAL did not pass (DIRTY, see above); kept: /var/tmp/sipplauncher/GLOBAL/global",
                "Did not pass: 2 of 4 test runs",
                "        FAIL              normal-0001 (1-bcdefg) - uac ua1 exited with status \
                 1; cleanup: after.sh exited with status 2",
                "             kept: /var/tmp/sipplauncher/normal-0001/bcdefg (pcap sipp-bcdefg.pcap)",
                "   NOT READY                 tls-0000 (2-hijklm) - before.sh exited with status 1 \
                 <&\"'>",
                "             kept: /var/tmp/sipplauncher/tls-0000/hijklm",
            ]
        );
        // Cut to the width, but for the paths.
        let cut = r.lines(4, Some(50));
        assert_eq!(
            cut[2].text,
            "        FAIL              normal-0001 (1-bcdefg) …"
        );
        assert_eq!(cut[2].state, Some((12, Tone::Failed)));
        assert!(cut[3].text.ends_with("(pcap sipp-bcdefg.pcap)"));
    }

    /// A soak with a test that always fails: a screenful, per test.
    #[test]
    fn a_long_soak_is_recapped_per_test() {
        let mut r = Recap::new(12).with_keep(Keep::Failed, 2);
        let mut index = 0;
        for round in 0..100u64 {
            for (name, fails) in [("good", false), ("bad", true), ("flaky", round % 50 == 7)] {
                let id = format!("r{index:05}");
                let run =
                    |state, took, reason| test(index, name, &id, state, 0, took, None, reason);
                r.event(&run(Preparing, None, None));
                r.event(&run(Ready, None, None));
                r.event(&run(Starting, None, None));
                if fails {
                    r.event(&run(
                        Fail,
                        Some(5),
                        Some("received 'SIP/2.0 503 Busy Via: x'"),
                    ));
                } else {
                    r.event(&run(Success, Some(5), None));
                }
                r.event(&run(Cleaning, None, None));
                let mut end = run(Clean, Some(1), None);
                if let Event::Test(e) = &mut end {
                    e.folder_fate = Some(match (fails, index) {
                        (false, _) => Fate::Removed,
                        (true, i) if i < 5 => Fate::Kept,
                        (true, _) => Fate::RemovedOverKeepMax,
                    });
                }
                r.event(&end);
                index += 1;
            }
        }
        r.event(&Event::RunFinished {
            outcome: Outcome::default(),
            elapsed: std::time::Duration::ZERO,
            at: fixture::at(0),
            usage: None,
        });
        assert_eq!(r.failed(), 102);
        assert!(r.listed.is_empty(), "bounded memory: {}", r.listed.len());
        assert_eq!(
            texts(&r.lines(300, None)),
            [
                "Did not pass: 102 of 300 test runs; per test, the first and the last (every run \
                 is in the JSON and JUnit reports)",
                "bad: 100 of 100 runs did not pass",
                "        FAIL                      bad (1-r00001) - received 'SIP/2.0 503 Busy'",
                "             kept: /var/tmp/sipplauncher/bad/r00001 (pcap sipp-r00001.pcap)",
                "        FAIL                      bad (298-r00298) - received 'SIP/2.0 503 Busy'",
                "             folder removed: --keep-max 2 failed runs' folders are kept already",
                "flaky: 2 of 100 runs did not pass",
                "        FAIL                    flaky (23-r00023) - received 'SIP/2.0 503 Busy'",
                "             folder removed: --keep-max 2 failed runs' folders are kept already",
                "        FAIL                    flaky (173-r00173) - received 'SIP/2.0 503 Busy'",
                "             folder removed: --keep-max 2 failed runs' folders are kept already",
            ]
        );
        // A smaller screen: what does not fit is counted.
        r.screen = 8;
        let lines = texts(&r.lines(300, None));
        assert_eq!(lines.len(), 7);
        assert_eq!(
            lines[6],
            "... and 1 more tests with runs that did not pass (see the reports)"
        );
    }

    #[test]
    fn nothing_when_everything_passed() {
        let mut r = Recap::new(24);
        for e in [
            global(Preparing, 0, None, None),
            global(Ready, 1, Some(1), None),
            test(0, "a", "aaaaaa", Preparing, 0, None, None, None),
            test(0, "a", "aaaaaa", Ready, 0, None, None, None),
            test(0, "a", "aaaaaa", DryRunning, 0, None, None, None),
            test(0, "a", "aaaaaa", Success, 0, Some(1), None, None),
            test(0, "a", "aaaaaa", Cleaning, 0, None, None, None),
            test(0, "a", "aaaaaa", Clean, 0, Some(1), None, None),
            global(Cleaning, 2, None, None),
            global(Clean, 3, Some(1), None),
        ] {
            r.event(&e);
        }
        assert!(r.lines(1, Some(80)).is_empty());
    }

    #[test]
    fn a_run_cut_short_by_a_second_signal_is_recapped() {
        let mut r = Recap::new(24);
        for e in [
            test(0, "a", "aaaaaa", Preparing, 0, None, None, None),
            test(0, "a", "aaaaaa", Ready, 0, None, None, None),
            test(0, "a", "aaaaaa", Starting, 0, None, None, None),
            Event::RunFinished {
                outcome: Outcome::default(),
                elapsed: std::time::Duration::ZERO,
                at: fixture::at(0),
                usage: None,
            },
        ] {
            r.event(&e);
        }
        assert_eq!(
            texts(&r.lines(1, None)),
            [
                "Did not pass: 1 of 1 test run",
                "        FAIL                        a (0-aaaaaa) - did not finish (stopped in \
                 state STARTING)",
                "             folder: /var/tmp/sipplauncher/a/aaaaaa",
            ]
        );
    }
}
