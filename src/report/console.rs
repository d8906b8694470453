//! The terminal output: what the run is about to do, one line per shown state change (SPEC §4.1,
//! GLOBAL's too), interrupts, the original's closing lines, then the failure recap ([`Recap`]);
//! reasons short and cut to the terminal's width; coloured only on a terminal and never with
//! `NO_COLOR`; flushed line by line.

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};

use sipplauncher_actors::core::dispatch::{CancelReason, Outcome};
use sipplauncher_actors::core::state::StateName;
use sipplauncher_actors::events::{DryRunPlan, Event, EventSink, TestStateEvent};

use sipplauncher_actors::core::plan::Keep;

use super::recap::{Recap, Tone};
use super::{fit, format_duration, printable, printable_path, short_reason};

/// The recap's screenful when the output is no terminal (a CI log): the reports have the rest.
const RECAP_LINES_WITHOUT_TERMINAL: usize = 50;

/// Between groups, as the original printed it (80 `-`).
const GROUP_SEPARATOR: &str =
    "--------------------------------------------------------------------------------";
/// Around GLOBAL and the closing counts, as the original printed it (80 `=`).
const SEPARATOR: &str =
    "================================================================================";

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// Writes the run's lines to a terminal (or any writer).
pub struct Console {
    out: Box<dyn Write + Send>,
    /// ANSI colours: only for a terminal, and not when `NO_COLOR` asks not to.
    color: bool,
    /// Groups started so far: a separator goes before every group but the first.
    groups: u64,
    /// Print the periodic progress line (a terminal is watching).
    progress: bool,
    /// Lines the front end adds below the first line (which part of the suite this is).
    notes: Vec<String>,
    /// A dry run: the closing lines have no SUCCESS/FAILED, as in the original.
    dry_run: bool,
    /// The terminal's width: lines with a reason are cut to it (none: not a terminal).
    width: Option<usize>,
    /// The runs that did not pass, for the recap after the closing lines.
    recap: Recap,
    /// `--retries`: more tries a run that did not pass gets (its lines name the try).
    retries: u32,
    /// The runs under way whose SIPp part succeeded (a CLEAN after it is a pass).
    succeeded: std::collections::BTreeSet<u64>,
}

impl Console {
    pub fn new(out: Box<dyn Write + Send>, color: bool) -> Self {
        Console {
            out,
            color,
            groups: 0,
            progress: false,
            notes: Vec::new(),
            dry_run: false,
            width: None,
            recap: Recap::new(RECAP_LINES_WITHOUT_TERMINAL),
            retries: 0,
            succeeded: std::collections::BTreeSet::new(),
        }
    }

    /// A terminal of `columns` × `rows`: lines cut to its width, the recap a screenful.
    pub fn with_terminal_size(mut self, columns: usize, rows: usize) -> Self {
        self.width = Some(columns.max(20));
        self.recap = Recap::new(rows.max(10));
        self
    }

    /// The run's `--keep` and `--keep-max`, for the recap's words.
    pub fn with_keep(mut self, keep: Keep, max: u64) -> Self {
        self.recap = std::mem::replace(&mut self.recap, Recap::new(0)).with_keep(keep, max);
        self
    }

    /// Also prints `notes` under the "Ready to run" line (e.g. which shard of the suite).
    pub fn with_notes(mut self, notes: Vec<String>) -> Self {
        self.notes = notes;
        self
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
        let console = Console::new(Box::new(stdout), color).with_progress(terminal);
        match terminal.then(|| terminal_size(&io::stdout())).flatten() {
            Some((columns, rows)) => console.with_terminal_size(columns, rows),
            None => console,
        }
    }

    fn paint(&self, text: &str, colour: &str) -> String {
        if self.color {
            format!("{colour}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    fn lines(&mut self, event: &Event) -> Vec<String> {
        self.recap.event(event);
        match event {
            Event::RunStarted {
                runs,
                repeat,
                group,
                window,
                seed,
                dry_run,
                retries,
                ..
            } => {
                self.dry_run = *dry_run;
                self.retries = *retries;
                // The original's words: "1 test", "N tests in one group", "N tests (in groups
                // of G)".
                let what = if *runs == 1 {
                    "test".to_string()
                } else if *window {
                    format!("tests (up to {group} at once, no groups)")
                } else if *group as u64 >= *runs {
                    "tests in one group".to_string()
                } else {
                    format!("tests (in groups of {group})")
                };
                let mut first = format!("Ready to run {runs} {what}");
                if *repeat {
                    first.push_str(" in a loop until interrupted");
                }
                let mut lines = vec![first];
                lines.extend(self.notes.iter().cloned());
                if let Some(seed) = seed {
                    lines.push(format!(
                        "Random order, seed {seed} (replay with --random --seed {seed})"
                    ));
                }
                if *dry_run {
                    lines.push("Dry run: no SIPp, no scripts, no change to the network".into());
                }
                lines.push(SEPARATOR.to_string());
                lines
            }
            Event::GroupStarted { .. } => {
                self.groups += 1;
                if self.groups > 1 {
                    vec![GROUP_SEPARATOR.to_string()]
                } else {
                    Vec::new()
                }
            }
            // The original's frame: `=` after GLOBAL's pre-run and before its post-run.
            Event::Global(e) => match e.state {
                StateName::Ready => vec![SEPARATOR.to_string()],
                StateName::NotReady => vec![self.state_line(e), SEPARATOR.to_string()],
                StateName::Cleaning => vec![SEPARATOR.to_string(), self.state_line(e)],
                s if s.shown() => vec![self.state_line(e)],
                _ => Vec::new(),
            },
            Event::Test(e) => {
                let mut lines = Vec::new();
                if e.state.shown() {
                    lines.push(self.state_line(e));
                }
                match e.state {
                    StateName::Success => {
                        self.succeeded.insert(e.index);
                    }
                    StateName::Fail | StateName::NotReady | StateName::Dirty => {
                        self.succeeded.remove(&e.index);
                    }
                    StateName::Clean => {
                        // A pass (SUCCESS, then CLEAN) on a retry: FLAKY.
                        let passed = self.succeeded.remove(&e.index);
                        if passed && e.attempt > 0 {
                            lines.push(self.flaky_line(e));
                        }
                    }
                    _ => {}
                }
                lines
            }
            Event::DryRun(p) => dry_run_lines(p),
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
                // The original's closing lines, exactly (wrappers read them); then ours.
                let failed = outcome.failed();
                let mut lines = vec![SEPARATOR.to_string(), format!("TOTAL: {}", outcome.total)];
                if !self.dry_run {
                    let failed_line = format!("FAILED: {failed}");
                    lines.push(format!("SUCCESS: {}", outcome.passed));
                    lines.push(if failed > 0 {
                        self.paint(&failed_line, RED)
                    } else {
                        failed_line
                    });
                }
                lines.push(SEPARATOR.to_string());
                lines.push(format!("Total time elapsed {}", whole_seconds(*elapsed)));
                if let Some(note) = ending_note(outcome) {
                    lines.push(self.paint(&note, RED));
                }
                for line in self.recap.lines(outcome.total, self.width) {
                    lines.push(match line.state {
                        Some((n, tone)) if self.color && line.text.is_char_boundary(n) => {
                            let colour = match tone {
                                Tone::Failed => RED,
                                Tone::Flaky => YELLOW,
                            };
                            format!("{}{}", self.paint(&line.text[..n], colour), &line.text[n..])
                        }
                        _ => line.text,
                    });
                }
                lines
            }
        }
    }

    /// `       FLAKY              normal-0000 (3-kqzvxa) - passed on try 2 of 3`: a run that
    /// passed on a retry (counts as passed).
    fn flaky_line(&self, e: &TestStateEvent) -> String {
        let line = fit(
            &format!(
                "{:>12} {:>24} ({}-{}) - passed on try {} of {} (counts as passed)",
                "FLAKY",
                printable(&e.name.0),
                e.index,
                e.run_id,
                e.attempt + 1,
                self.retries + 1
            ),
            self.width,
        );
        match line.get(..12) {
            Some(state) if self.color => format!("{}{}", self.paint(state, YELLOW), &line[12..]),
            _ => line,
        }
    }

    /// `     SUCCESS              normal-0000 (0-kqzvxa) - took 1.02s (1.02 cps)`; a reason
    /// short (a SIP message's first line), the line cut to the terminal's width.
    fn state_line(&self, e: &TestStateEvent) -> String {
        let colour = if e.state.is_error() { RED } else { GREEN };
        let mut line = format!(
            "{:>12} {:>24} ({}-{})",
            e.state.as_str(),
            // `TestName`'s Display ignores the width: pad the string itself.
            printable(&e.name.0),
            e.index,
            e.run_id
        );
        // `--retries`: which try this is, on a retry's lines and where a try did not pass.
        if e.attempt > 0 || (self.retries > 0 && e.state.is_error()) {
            line.push_str(&format!(" [try {}/{}]", e.attempt + 1, self.retries + 1));
        }
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
            line.push_str(&short_reason(reason));
        }
        let line = fit(&line, self.width);
        // The state is the first 12 characters, ASCII: paint them after the cut.
        match line.get(..12) {
            Some(state) if self.color => format!("{}{}", self.paint(state, colour), &line[12..]),
            _ => line,
        }
    }
}

/// `48s`: the original's `%.0fs` (rounded to whole seconds).
fn whole_seconds(d: std::time::Duration) -> String {
    format!("{:.0}s", d.as_secs_f64())
}

/// What a dry run's test would run, under its DRY-RUNNING line: the instances' addresses, then
/// each SIPp command line as a shell would take it, run in the run folder. Whole, never cut:
/// they are there to be copied.
fn dry_run_lines(p: &DryRunPlan) -> Vec<String> {
    let pad = " ".repeat(13);
    let hosts: Vec<String> = p
        .hosts
        .iter()
        .map(|(ua, ip)| format!("{ua} {ip}"))
        .collect();
    let mut lines = vec![
        format!("{pad}addresses: {}", hosts.join(", ")),
        format!("{pad}in {}:", printable_path(&p.run_folder)),
    ];
    // With several run groups and --sipp-max-calls N the stages repeat: shown once.
    let mut seen = std::collections::BTreeSet::new();
    let mut repeats = 0;
    for stage in &p.launch.stages {
        if !stage.instances.is_empty() && stage.instances.iter().all(|i| seen.contains(&i.label)) {
            repeats += 1;
            continue;
        }
        for i in &stage.instances {
            seen.insert(i.label.clone());
            let env = i.env.iter().map(|(k, v)| format!("{k}={} ", shell_word(v)));
            let argv: Vec<String> = i.argv.iter().map(|a| shell_word(a)).collect();
            lines.push(format!(
                "{pad}{}{}",
                env.collect::<String>(),
                argv.join(" ")
            ));
        }
    }
    if repeats > 0 {
        let groups = p.launch.stages.len() - repeats;
        lines.push(format!(
            "{pad}(these {groups} run groups run {} times in all: --sipp-max-calls)",
            p.launch.stages.len() / groups.max(1)
        ));
    }
    lines
}

/// `word` as a POSIX shell reads it back: as it is when it holds only safe characters, else in
/// single quotes.
fn shell_word(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=,@+%".contains(c));
    if safe {
        word.to_string()
    } else if word.chars().any(char::is_control) {
        // bash's $'...': control characters as escapes, never raw on the terminal.
        let mut out = String::from("$'");
        for c in word.chars() {
            match c {
                '\\' | '\'' => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_control() => {
                    for b in c.to_string().bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
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

/// The terminal's columns and rows, when `out` is one that says.
fn terminal_size(out: &impl std::os::fd::AsRawFd) -> Option<(usize, usize)> {
    let mut size = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own; the descriptor is open
    // (stdout) for the call.
    let ok = unsafe { nix::libc::ioctl(out.as_raw_fd(), nix::libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0 && size.ws_row > 0)
        .then_some((usize::from(size.ws_col), usize::from(size.ws_row)))
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
        match self.out.flush() {
            // A reader that stopped reading (`| head`) wanted no more: not a lost report.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            r => r.map_err(|e| format!("flush the terminal output: {e}")),
        }
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

    /// `--retries`: the tries are named on their lines, a pass on a retry is FLAKY, and the
    /// recap names the FLAKY runs apart from those that did not pass.
    #[test]
    fn tries_and_flaky_on_the_console() {
        let text = render(&fixture::retried_events(), false);
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
                .to_string()
        };
        assert!(
            line("(0-flakya) [try 1/3]").starts_with("        FAIL"),
            "{text}"
        );
        assert!(
            !line("(0-flakya)").contains("[try"),
            "the first try's lines before a failure"
        );
        assert_eq!(
            line("       FLAKY"),
            "       FLAKY                    flaky (0-flakyb) - passed on try 2 of 3 (counts as passed)"
        );
        assert!(line("(1-brokec)").contains("[try 3/3]"));
        // The original's counts: runs, FLAKY ones passed.
        assert!(
            text.contains("\nTOTAL: 2\nSUCCESS: 1\nFAILED: 1\n"),
            "{text}"
        );
        assert!(text.contains("FLAKY (passed on a retry, counted as passed): 1 of 2 test runs"));
        assert!(line("passed on try 2 of 3;").contains(
            "flaky (0-flakyb) - passed on try 2 of 3; try 1 FAIL (flakya): received 'SIP/2.0 503 Busy'"
        ));
        assert!(text.contains("Did not pass: 1 of 2 test runs"), "{text}");
        assert!(
            line("(1-brokec) - uac").ends_with("cleanup: after.sh exited with status 2"),
            "the recap has the last try of a run that never passed"
        );
        // On a terminal, a FLAKY run is yellow in the recap as on its state line; a run that
        // did not pass, red.
        let painted = render(&fixture::retried_events(), true);
        let recap_line = |needle: &str| {
            painted
                .lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{painted}"))
                .to_string()
        };
        assert!(
            recap_line("passed on try 2 of 3;").starts_with("\x1b[33m       FLAKY\x1b[0m"),
            "{painted}"
        );
        assert!(
            recap_line("(1-brokec) - uac").starts_with("\x1b[31m"),
            "{painted}"
        );
    }

    #[test]
    fn snapshot_without_colour() {
        let expected = "\
Ready to run 4 tests (in groups of 2)
Random order, seed 42 (replay with --random --seed 42)
================================================================================
   PREPARING                   GLOBAL (0-global)
================================================================================
   PREPARING              normal-0000 (0-kqzvxa)
   PREPARING              normal-0001 (1-bcdefg)
    STARTING              normal-0000 (0-kqzvxa)
    STARTING              normal-0001 (1-bcdefg)
     SUCCESS              normal-0000 (0-kqzvxa) - took 1.02s (1.02 cps)
        FAIL              normal-0001 (1-bcdefg) - took 5.00s (*0.50 cps) - uac ua1 exited with status 1
    CLEANING              normal-0001 (1-bcdefg)
       DIRTY              normal-0001 (1-bcdefg) - took 60ms - after.sh exited with status 2
    CLEANING              normal-0000 (0-kqzvxa)
--------------------------------------------------------------------------------
   PREPARING                 tls-0000 (2-hijklm)
   NOT READY                 tls-0000 (2-hijklm) - took 12ms - before.sh exited with status 1 <&\"'>
   PREPARING              normal-0000 (3-nopqrs)
    STARTING              normal-0000 (3-nopqrs)
     SUCCESS              normal-0000 (3-nopqrs) - took 42s
    CLEANING              normal-0000 (3-nopqrs)
================================================================================
    CLEANING                   GLOBAL (0-global)
       DIRTY                   GLOBAL (0-global) - took 70ms - after.sh exited with status 1
================================================================================
TOTAL: 4
SUCCESS: 2
FAILED: 2
================================================================================
Total time elapsed 48s
GLOBAL did not pass (DIRTY, see above); kept: /var/tmp/sipplauncher/GLOBAL/global
Did not pass: 2 of 4 test runs
        FAIL              normal-0001 (1-bcdefg) - uac ua1 exited with status 1; cleanup: after.sh exited with status 2
             kept: /var/tmp/sipplauncher/normal-0001/bcdefg (pcap sipp-bcdefg.pcap)
   NOT READY                 tls-0000 (2-hijklm) - before.sh exited with status 1 <&\"'>
             kept: /var/tmp/sipplauncher/tls-0000/hijklm
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
            lines[5],
            "\x1b[32m   PREPARING\x1b[0m              normal-0000 (0-kqzvxa)"
        );
        assert_eq!(
            lines[10],
            "\x1b[31m        FAIL\x1b[0m              normal-0001 (1-bcdefg) - took 5.00s \
             (*0.50 cps) - uac ua1 exited with status 1"
        );
        assert_eq!(
            lines[16],
            "\x1b[31m   NOT READY\x1b[0m                 tls-0000 (2-hijklm) - took 12ms - \
             before.sh exited with status 1 <&\"'>"
        );
        assert_eq!(
            lines[23],
            "\x1b[31m       DIRTY\x1b[0m                   GLOBAL (0-global) - took 70ms - \
             after.sh exited with status 1"
        );
        assert_eq!(
            &lines[24..],
            &[
                SEPARATOR,
                "TOTAL: 4",
                "SUCCESS: 2",
                "\x1b[31mFAILED: 2\x1b[0m",
                SEPARATOR,
                "Total time elapsed 48s",
                "GLOBAL did not pass (DIRTY, see above); kept: /var/tmp/sipplauncher/GLOBAL/global",
                "Did not pass: 2 of 4 test runs",
                "\x1b[31m        FAIL\x1b[0m              normal-0001 (1-bcdefg) - uac ua1 exited \
                 with status 1; cleanup: after.sh exited with status 2",
                "             kept: /var/tmp/sipplauncher/normal-0001/bcdefg (pcap sipp-bcdefg.pcap)",
                "\x1b[31m   NOT READY\x1b[0m                 tls-0000 (2-hijklm) - before.sh exited \
                 with status 1 <&\"'>",
                "             kept: /var/tmp/sipplauncher/tls-0000/hijklm",
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
                retries: 0,
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
                usage: None,
            },
        ];
        let expected = format!(
            "\
Ready to run 1 test in a loop until interrupted
Dry run: no SIPp, no scripts, no change to the network
{SEPARATOR}
   PREPARING                        a (0-aaaaaa)
 DRY-RUNNING                        a (0-aaaaaa)
Interrupted: cleaning up (press Ctrl+C again to stop at once)
Interrupted again: stopping at once (press Ctrl+C again to exit now)
Interrupted a third time: exiting now (the next run removes what is left)
{SEPARATOR}
TOTAL: 1
{SEPARATOR}
Total time elapsed 125s
Interrupted before the end; stopped after the first group with a failure \
(--group-stop-first-fail)
Did not pass: 1 of 1 test run
        FAIL                        a (0-aaaaaa) - did not finish (stopped in state DRY-RUNNING)
             folder: /var/tmp/sipplauncher/a/aaaaaa
"
        );
        assert_eq!(render(&events, false), expected);
    }

    fn started(runs: u64, group: usize, window: bool) -> Event {
        Event::RunStarted {
            tests: 3,
            runs,
            repeat: false,
            group,
            window,
            seed: None,
            dry_run: false,
            retries: 0,
            at: fixture::at(0),
        }
    }

    #[test]
    fn the_first_line_is_the_originals() {
        for (runs, group, window, first) in [
            (1, 1, false, "Ready to run 1 test"),
            (1, 4, false, "Ready to run 1 test"),
            (4, 4, false, "Ready to run 4 tests in one group"),
            (4, 9, false, "Ready to run 4 tests in one group"),
            (4, 2, false, "Ready to run 4 tests (in groups of 2)"),
            (
                4,
                2,
                true,
                "Ready to run 4 tests (up to 2 at once, no groups)",
            ),
        ] {
            assert_eq!(
                render(&[started(runs, group, window)], false),
                format!("{first}\n{SEPARATOR}\n")
            );
        }
    }

    #[test]
    fn a_global_that_is_not_ready_is_told_once_and_framed() {
        use StateName::*;
        let text = render(
            &[
                started(2, 1, false),
                fixture::global(Preparing, 0, None, None),
                fixture::global(
                    NotReady,
                    40,
                    Some(40),
                    Some("before.sh exited with status 3"),
                ),
                Event::RunFinished {
                    outcome: Outcome {
                        global_failed: true,
                        ..Outcome::default()
                    },
                    elapsed: std::time::Duration::from_millis(1_500),
                    at: fixture::at(1_500),
                    usage: None,
                },
            ],
            false,
        );
        assert_eq!(
            text,
            format!(
                "\
Ready to run 2 tests (in groups of 1)
{SEPARATOR}
   PREPARING                   GLOBAL (0-global)
   NOT READY                   GLOBAL (0-global) - took 40ms - before.sh exited with status 3
{SEPARATOR}
{SEPARATOR}
TOTAL: 0
SUCCESS: 0
FAILED: 0
{SEPARATOR}
Total time elapsed 2s
GLOBAL did not pass (NOT READY, see above); kept: /var/tmp/sipplauncher/GLOBAL/global
"
            )
        );
    }

    #[test]
    fn elapsed_in_whole_seconds_as_the_original() {
        for (ms, text) in [(0, "0s"), (400, "0s"), (1_600, "2s"), (125_000, "125s")] {
            assert_eq!(
                whole_seconds(std::time::Duration::from_millis(ms)),
                text,
                "{ms} ms"
            );
        }
    }

    /// A terminal's width cuts the lines with a reason, after the short reason took the SIP
    /// message down to its first line; colours go around the state after the cut.
    #[test]
    fn reasons_are_short_and_cut_to_the_terminal() {
        let fail = fixture::test(
            0,
            "call-0000",
            "abcdef",
            StateName::Fail,
            0,
            Some(1_000),
            None,
            Some(
                "ua1 (uac) call failed, exit status 1: Aborting call on unexpected message for \
                 Call-Id '1-99@h': while expecting '200' (index 2), received 'SIP/2.0 404 Not \
                 Here\r\nVia: SIP/2.0/UDP 10.99.0.1;branch=z9hG4bK\r\nContent-Length: 0\r\n'",
            ),
        );
        let out = Shared::default();
        let mut wide = Console::new(Box::new(out.clone()), false);
        wide.event(&fail);
        assert_eq!(
            out.text(),
            "        FAIL                call-0000 (0-abcdef) - took 1.00s - ua1 (uac) call \
             failed, exit status 1: while expecting '200' (index 2), received 'SIP/2.0 404 Not \
             Here'\n"
        );
        let out = Shared::default();
        let mut narrow = Console::new(Box::new(out.clone()), true).with_terminal_size(70, 24);
        narrow.event(&fail);
        assert_eq!(
            out.text(),
            "\x1b[31m        FAIL\x1b[0m                call-0000 (0-abcdef) - took 1.00s - ua1 (…\n"
        );
    }

    #[test]
    fn shell_words_quote_what_a_shell_would_split_or_show() {
        assert_eq!(shell_word("-sf"), "-sf");
        assert_eq!(shell_word("/a/b.xml"), "/a/b.xml");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("a\u{1b}[31m'\n"), r"$'a\x1b[31m\'\x0a'");
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
