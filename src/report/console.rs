//! The terminal output: what the run is about to do, one line per shown state change (SPEC §4.1),
//! GLOBAL failures, interrupts and the summary; coloured on a terminal, flushed line by line.

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};

use sipplauncher_actors::core::dispatch::{CancelReason, Outcome};
use sipplauncher_actors::core::state::StateName;
use sipplauncher_actors::events::{Event, EventSink, TestStateEvent};

use super::{format_duration, one_line};

/// Between groups and before the summary.
const SEPARATOR: &str =
    "----------------------------------------------------------------------------";

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

/// Writes the run's lines to a terminal (or any writer).
pub struct Console {
    out: Box<dyn Write>,
    /// ANSI colours: only for a terminal, and not when `NO_COLOR` asks not to.
    color: bool,
    /// Groups started so far: a separator goes before every group but the first.
    groups: u64,
    /// Print the periodic progress line (a terminal is watching).
    progress: bool,
}

impl Console {
    pub fn new(out: Box<dyn Write>, color: bool) -> Self {
        Console {
            out,
            color,
            groups: 0,
            progress: false,
        }
    }

    /// Also prints the periodic progress line of long runs.
    pub fn with_progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// To stdout, coloured when stdout is a terminal and `NO_COLOR` is unset or empty
    /// (https://no-color.org).
    pub fn stdout() -> Self {
        let stdout = io::stdout();
        let terminal = stdout.is_terminal();
        let color = color_wanted(terminal, std::env::var_os("NO_COLOR"));
        Console::new(Box::new(stdout), color).with_progress(terminal)
    }

    fn paint(&self, text: &str, colour: &str) -> String {
        if self.color {
            format!("{colour}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    fn lines(&mut self, event: &Event) -> Vec<String> {
        match event {
            Event::RunStarted {
                runs,
                repeat,
                group,
                window,
                seed,
                dry_run,
                ..
            } => {
                let how = if *window {
                    format!("up to {group} at once, no groups")
                } else {
                    format!("in groups of {group}")
                };
                let mut first = format!(
                    "Ready to run {runs} {} ({how})",
                    if *runs == 1 { "test" } else { "tests" }
                );
                if *repeat {
                    first.push_str(" in a loop until interrupted");
                }
                let mut lines = vec![first];
                if let Some(seed) = seed {
                    lines.push(format!(
                        "Random order, seed {seed} (replay with --random --seed {seed})"
                    ));
                }
                if *dry_run {
                    lines.push("Dry run: no SIPp, no scripts, no change to the network".into());
                }
                lines
            }
            Event::GroupStarted { .. } => {
                self.groups += 1;
                if self.groups > 1 {
                    vec![SEPARATOR.to_string()]
                } else {
                    Vec::new()
                }
            }
            Event::Global { script, error, .. } => match error {
                Some(error) => vec![self.paint(
                    &format!("GLOBAL {}: {}", script.file_name(), one_line(error)),
                    RED,
                )],
                None => Vec::new(),
            },
            Event::Test(e) if e.state.shown() => vec![self.state_line(e)],
            Event::Test(_) => Vec::new(),
            Event::Progress { outcome, elapsed } if self.progress => {
                vec![progress_line(outcome, *elapsed)]
            }
            Event::Progress { .. } => Vec::new(),
            Event::Interrupted { reason, .. } => vec![match reason {
                CancelReason::Fatal | CancelReason::Signal => {
                    "Interrupted: cleaning up (press Ctrl+C again to stop at once)"
                }
                CancelReason::SecondSignal => {
                    "Interrupted again: stopping at once (press Ctrl+C again to exit now)"
                }
                CancelReason::ThirdSignal => {
                    "Interrupted a third time: exiting now (the next run removes what is left)"
                }
            }
            .into()],
            Event::RunFinished {
                outcome, elapsed, ..
            } => {
                let failed = outcome.failed();
                let failed_line = format!("FAILED: {failed}");
                let mut lines = vec![
                    SEPARATOR.to_string(),
                    format!("TOTAL: {}", outcome.total),
                    format!("SUCCESS: {}", outcome.passed),
                    if failed > 0 {
                        self.paint(&failed_line, RED)
                    } else {
                        failed_line
                    },
                    format!("Elapsed: {}", format_duration(*elapsed)),
                ];
                if let Some(note) = ending_note(outcome) {
                    lines.push(self.paint(&note, RED));
                }
                lines
            }
        }
    }

    /// `     SUCCESS              normal-0000 (0-kqzvxa) - took 1.02s (1.02 cps)`
    fn state_line(&self, e: &TestStateEvent) -> String {
        let colour = if e.state.is_error() { RED } else { GREEN };
        let mut line = format!(
            "{} {:>24} ({}-{})",
            self.paint(&format!("{:>12}", e.state.as_str()), colour),
            // `TestName`'s Display ignores the width: pad the string itself.
            e.name.0,
            e.index,
            e.run_id
        );
        if is_end_state(e.state) {
            if let Some(took) = e.took {
                line.push_str(&format!(" - took {}", format_duration(took)));
            }
            if let Some(cps) = e.cps {
                // The calls per second of a run that did not succeed are not to be trusted.
                let mark = if e.state == StateName::Success {
                    ""
                } else {
                    "*"
                };
                line.push_str(&format!(" ({mark}{cps:.2} cps)"));
            }
        }
        if let Some(reason) = &e.reason {
            line.push_str(" - ");
            line.push_str(&one_line(reason));
        }
        line
    }
}

/// The states whose line tells how long the step took.
fn is_end_state(state: StateName) -> bool {
    matches!(
        state,
        StateName::NotReady | StateName::Success | StateName::Fail | StateName::Dirty
    )
}

/// Why the summary does not tell the whole story, if it does not.
fn ending_note(outcome: &Outcome) -> Option<String> {
    let mut notes = Vec::new();
    if outcome.interrupted {
        notes.push("interrupted before the end");
    }
    if outcome.global_failed {
        notes.push("a GLOBAL script failed");
    }
    if outcome.fatal {
        notes.push("stopped by an internal error (see the log)");
    }
    if outcome.stopped_on_failure {
        notes.push("stopped after the first group with a failure (--group-stop-first-fail)");
    }
    let note = notes.join("; ");
    let mut chars = note.chars();
    let first = chars.next()?;
    Some(first.to_uppercase().chain(chars).collect())
}

fn color_wanted(is_terminal: bool, no_color: Option<OsString>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

impl EventSink for Console {
    fn event(&mut self, event: &Event) {
        let lines = self.lines(event);
        // A closed terminal or pipe (`| head`) must not stop the run: write errors are dropped.
        for line in lines {
            let _ = writeln!(self.out, "{line}");
        }
        let _ = self.out.flush();
    }

    fn finish(&mut self) -> Result<(), String> {
        self.out
            .flush()
            .map_err(|e| format!("flush the terminal output: {e}"))
    }
}

/// `progress: 1200 runs done, 1198 passed, 2 failed, 12.3 runs/s, 1m37s`.
fn progress_line(o: &Outcome, elapsed: std::time::Duration) -> String {
    let rate = o.total as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "progress: {} runs done, {} passed, {} failed, {rate:.1} runs/s, {}",
        o.total,
        o.passed,
        o.failed(),
        format_duration(elapsed)
    )
}

#[cfg(test)]
mod progress_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn progress_only_for_a_terminal() {
        let o = Outcome {
            total: 1200,
            passed: 1198,
            ..Outcome::default()
        };
        let ev = Event::Progress {
            outcome: o,
            elapsed: Duration::from_secs(100),
        };
        let mut quiet = Console::new(Box::new(Vec::new()), false);
        assert!(quiet.lines(&ev).is_empty());
        let mut watched = Console::new(Box::new(Vec::new()), false).with_progress(true);
        assert_eq!(
            watched.lines(&ev),
            vec!["progress: 1200 runs done, 1198 passed, 2 failed, 12.0 runs/s, 100s".to_string()]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use sipplauncher_actors::messages::SignalKind;
    use std::sync::{Arc, Mutex};

    /// A writer the test can read back, and that counts flushes.
    #[derive(Clone, Default)]
    struct Shared {
        text: Arc<Mutex<Vec<u8>>>,
        flushes: Arc<Mutex<usize>>,
    }

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.text.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            *self.flushes.lock().expect("lock") += 1;
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.text.lock().expect("lock").clone()).expect("utf-8")
        }
    }

    fn render(events: &[Event], color: bool) -> String {
        let out = Shared::default();
        let mut console = Console::new(Box::new(out.clone()), color);
        for e in events {
            console.event(e);
        }
        console.finish().expect("flush");
        out.text()
    }

    #[test]
    fn snapshot_without_colour() {
        let expected = "\
Ready to run 4 tests (in groups of 2)
Random order, seed 42 (replay with --random --seed 42)
   PREPARING              normal-0000 (0-kqzvxa)
   PREPARING              normal-0001 (1-bcdefg)
    STARTING              normal-0000 (0-kqzvxa)
    STARTING              normal-0001 (1-bcdefg)
     SUCCESS              normal-0000 (0-kqzvxa) - took 1.02s (1.02 cps)
        FAIL              normal-0001 (1-bcdefg) - took 5.00s (*0.50 cps) - uac ua1 exited with status 1
    CLEANING              normal-0001 (1-bcdefg)
       DIRTY              normal-0001 (1-bcdefg) - took 60ms - after.sh exited with status 2
    CLEANING              normal-0000 (0-kqzvxa)
----------------------------------------------------------------------------
   PREPARING                 tls-0000 (2-hijklm)
   NOT READY                 tls-0000 (2-hijklm) - took 12ms - before.sh exited with status 1 <&\"'>
   PREPARING              normal-0000 (3-nopqrs)
    STARTING              normal-0000 (3-nopqrs)
     SUCCESS              normal-0000 (3-nopqrs) - took 42s
    CLEANING              normal-0000 (3-nopqrs)
GLOBAL after.sh: after.sh exited with status 1
----------------------------------------------------------------------------
TOTAL: 4
SUCCESS: 2
FAILED: 2
Elapsed: 48s
A GLOBAL script failed
";
        assert_eq!(render(&fixture::events(), false), expected);
    }

    #[test]
    fn snapshot_with_colour() {
        let events = fixture::events();
        // The first group's first two lines, the NOT READY line and the end.
        let text = render(&events, true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2],
            "\x1b[32m   PREPARING\x1b[0m              normal-0000 (0-kqzvxa)"
        );
        assert_eq!(
            lines[7],
            "\x1b[31m        FAIL\x1b[0m              normal-0001 (1-bcdefg) - took 5.00s \
             (*0.50 cps) - uac ua1 exited with status 1"
        );
        assert_eq!(
            lines[13],
            "\x1b[31m   NOT READY\x1b[0m                 tls-0000 (2-hijklm) - took 12ms - \
             before.sh exited with status 1 <&\"'>"
        );
        assert_eq!(
            lines[18],
            "\x1b[31mGLOBAL after.sh: after.sh exited with status 1\x1b[0m"
        );
        assert_eq!(
            &lines[19..],
            &[
                SEPARATOR,
                "TOTAL: 4",
                "SUCCESS: 2",
                "\x1b[31mFAILED: 2\x1b[0m",
                "Elapsed: 48s",
                "\x1b[31mA GLOBAL script failed\x1b[0m",
            ]
        );
        // Without the colour codes it is the plain text.
        let plain = text.replace(GREEN, "").replace(RED, "").replace(RESET, "");
        assert_eq!(plain, render(&events, false));
        // Every shown state is coloured: green for the normal ones, red for the errors.
        for (state, colour) in [
            ("PREPARING", GREEN),
            ("STARTING", GREEN),
            ("SUCCESS", GREEN),
            ("CLEANING", GREEN),
            ("FAIL", RED),
            ("DIRTY", RED),
            ("NOT READY", RED),
        ] {
            assert!(
                text.contains(&format!("{colour}{state:>12}{RESET}")),
                "{state}"
            );
        }
    }

    #[test]
    fn loop_dry_run_and_interrupts() {
        let events = [
            Event::RunStarted {
                tests: 1,
                runs: 1,
                repeat: true,
                group: 1,
                window: false,
                seed: None,
                dry_run: true,
                at: fixture::at(0),
            },
            Event::GroupStarted { number: 1, size: 1 },
            fixture::test(0, "a", "aaaaaa", StateName::Preparing, 0, None, None, None),
            fixture::test(0, "a", "aaaaaa", StateName::Ready, 0, None, None, None),
            fixture::test(0, "a", "aaaaaa", StateName::DryRunning, 0, None, None, None),
            Event::Interrupted {
                signal: SignalKind::Interrupt,
                reason: CancelReason::Signal,
            },
            Event::Interrupted {
                signal: SignalKind::Interrupt,
                reason: CancelReason::SecondSignal,
            },
            Event::Interrupted {
                signal: SignalKind::Terminate,
                reason: CancelReason::ThirdSignal,
            },
            Event::RunFinished {
                outcome: Outcome {
                    total: 1,
                    passed: 0,
                    interrupted: true,
                    stopped_on_failure: true,
                    ..Outcome::default()
                },
                elapsed: std::time::Duration::from_secs(125),
                at: fixture::at(125_000),
            },
        ];
        let expected = format!(
            "\
Ready to run 1 test (in groups of 1) in a loop until interrupted
Dry run: no SIPp, no scripts, no change to the network
   PREPARING                        a (0-aaaaaa)
 DRY-RUNNING                        a (0-aaaaaa)
Interrupted: cleaning up (press Ctrl+C again to stop at once)
Interrupted again: stopping at once (press Ctrl+C again to exit now)
Interrupted a third time: exiting now (the next run removes what is left)
{SEPARATOR}
TOTAL: 1
SUCCESS: 0
FAILED: 1
Elapsed: 2m05s
Interrupted before the end; stopped after the first group with a failure \
(--group-stop-first-fail)
"
        );
        assert_eq!(render(&events, false), expected);
    }

    #[test]
    fn every_event_is_flushed() {
        let out = Shared::default();
        let mut console = Console::new(Box::new(out.clone()), false);
        for (i, e) in fixture::events().iter().enumerate() {
            console.event(e);
            assert_eq!(*out.flushes.lock().expect("lock"), i + 1);
        }
    }

    #[test]
    fn multi_line_reasons_stay_on_one_line() {
        let e = fixture::test(
            0,
            "a",
            "aaaaaa",
            StateName::Fail,
            0,
            Some(1),
            None,
            Some("line one\nline two\n"),
        );
        assert_eq!(
            render(&[e], false),
            "        FAIL                        a (0-aaaaaa) - took 1ms - line one line two\n"
        );
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(color_wanted(true, None));
        assert!(color_wanted(true, Some(OsString::new())));
        assert!(!color_wanted(true, Some(OsString::from("1"))));
        assert!(!color_wanted(false, None));
    }
}
