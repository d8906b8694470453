//! The JUnit XML report (`--junit FILE`) for CI (GitLab, Jenkins): one testcase per test run,
//! in run order; written at the end. GLOBAL is not a test case (as on the console, whose
//! `TOTAL` the `tests` count equals): its scripts are the suite's properties, and a failing one
//! is the suite's `<system-err>`.
//! Streamed: each test run's testcase goes to a spool file once the run is over, so a run of
//! days holds only its running tests in memory; the counts of the header are kept as numbers.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sipplauncher_actors::events::{Event, EventSink};
use sipplauncher_actors::sys::keep::Fate;

use super::{
    junit_timestamp, write_atomic_with, Collector, GlobalRecord, RunRecord, RunResult, Spool,
};

/// Collects the runs from the event stream and writes the XML file on `finish()`.
pub struct JUnit {
    path: PathBuf,
    collected: Collector,
    /// The testcases of the runs that are over.
    spool: Spool,
    /// Of the spooled testcases.
    spooled: Counts,
}

impl JUnit {
    pub fn new(path: PathBuf) -> Self {
        JUnit {
            spool: Spool::beside(&path),
            path,
            collected: Collector::default(),
            spooled: Counts::default(),
        }
    }

    /// The whole document, as of `now` (in memory: for tests and small runs).
    pub fn render(&mut self, now: SystemTime) -> String {
        let (head, tail) = self.head_and_tail(now);
        let body = self.spool.read_all().unwrap_or_default();
        format!("{head}{body}{tail}")
    }

    /// Moves the testcases of the runs that are over to the spool.
    fn spool_settled(&mut self) {
        for r in self.collected.take_settled() {
            let case = Case::of_run(&r);
            self.spooled.add(&case);
            let mut x = String::new();
            case.write(&mut x);
            self.spool.push(&x);
        }
    }

    /// What goes before the spooled testcases, and after them (the runs still going, the
    /// GLOBAL scripts' errors, the end tags).
    fn head_and_tail(&self, now: SystemTime) -> (String, String) {
        let c = &self.collected;
        let cases: Vec<Case> = c.runs.values().map(Case::of_run).collect();
        let globals = [c.global_before.as_ref(), c.global_after.as_ref()];
        let mut counts = self.spooled;
        let mut tail = String::new();
        for case in &cases {
            counts.add(case);
            case.write(&mut tail);
        }
        tail.push_str(&end(globals));
        let head = header(
            counts,
            c.elapsed(now),
            c.started.unwrap_or(now),
            c.seed,
            globals,
        );
        (head, tail)
    }
}

/// The numbers of a `<testsuite>`'s header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub tests: usize,
    pub failures: usize,
    pub errors: usize,
}

impl Counts {
    /// Counts `case` in.
    pub fn add(&mut self, case: &Case) {
        self.tests += 1;
        match case.verdict {
            Verdict::Failure { .. } => self.failures += 1,
            Verdict::Error { .. } => self.errors += 1,
            Verdict::Passed => {}
        }
    }
}

/// What comes before the testcases: the XML declaration, `<testsuites>`, `<testsuite>` and its
/// properties (the seed, the GLOBAL scripts `[before, after]`).
fn header(
    counts: Counts,
    time: Duration,
    started: SystemTime,
    seed: Option<u64>,
    globals: [Option<&GlobalRecord>; 2],
) -> String {
    let Counts {
        tests,
        failures,
        errors,
    } = counts;
    let time = seconds(time);
    let timestamp = junit_timestamp(started);
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    // `write!` to a String cannot fail; its Result is dropped with `let _`.
    let _ = writeln!(
        x,
        "<testsuites name=\"sipplauncher\" tests=\"{tests}\" failures=\"{failures}\" \
         errors=\"{errors}\" time=\"{time}\">"
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"sipplauncher\" tests=\"{tests}\" failures=\"{failures}\" \
         errors=\"{errors}\" skipped=\"0\" time=\"{time}\" timestamp=\"{timestamp}\">"
    );
    let mut properties: Vec<(&str, String)> = Vec::new();
    if let Some(seed) = seed {
        properties.push(("seed", seed.to_string()));
    }
    for (name, g) in ["global_before", "global_after"].into_iter().zip(globals) {
        if let Some(g) = g {
            properties.push((name, global_value(g)));
        }
    }
    if !properties.is_empty() {
        x.push_str("    <properties>\n");
        for (name, value) in &properties {
            let _ = writeln!(
                x,
                "      <property name=\"{name}\" value=\"{}\"/>",
                attr(value)
            );
        }
        x.push_str("    </properties>\n");
    }
    x
}

/// What comes after the testcases: the GLOBAL scripts' errors (`[before, after]`), the end tags.
fn end(globals: [Option<&GlobalRecord>; 2]) -> String {
    let mut tail = String::new();
    let global_errors: Vec<String> = ["before", "after"]
        .into_iter()
        .zip(globals)
        .filter_map(|(script, g)| {
            g.and_then(|g| g.error.as_ref())
                .map(|e| format!("GLOBAL {script}.sh failed: {e}"))
        })
        .collect();
    if !global_errors.is_empty() {
        let _ = writeln!(
            tail,
            "    <system-err>{}</system-err>",
            text(&global_errors.join("\n"))
        );
    }
    tail.push_str("  </testsuite>\n</testsuites>\n");
    tail
}

/// A whole document of `cases` (e.g. `merge`'s, from the runs of several JSON reports): the
/// same header, testcases and end as a run's own report.
pub fn document(
    cases: &[Case],
    time: Duration,
    started: SystemTime,
    seed: Option<u64>,
    globals: [Option<&GlobalRecord>; 2],
) -> String {
    let mut counts = Counts::default();
    let mut body = String::new();
    for case in cases {
        counts.add(case);
        case.write(&mut body);
    }
    format!(
        "{}{body}{}",
        header(counts, time, started, seed, globals),
        end(globals)
    )
}

impl EventSink for JUnit {
    fn event(&mut self, event: &Event) {
        self.collected.event(event);
        if matches!(event, Event::Test(_)) {
            self.spool_settled();
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        let (head, tail) = self.head_and_tail(SystemTime::now());
        let spool = &mut self.spool;
        write_atomic_with(&self.path, |w| {
            w.write_all(head.as_bytes())?;
            spool.copy_to(w)?;
            w.write_all(tail.as_bytes())
        })
        .inspect(|()| self.spool.remove())
        .map_err(|e| format!("write the junit report {}: {e}", self.path.display()))
    }
}

enum Verdict {
    Passed,
    /// FAIL, DIRTY, or cut short after pre-run.
    Failure {
        kind: String,
        message: String,
    },
    /// NOT READY.
    Error {
        kind: String,
        message: String,
    },
}

/// One `<testcase>`.
pub struct Case {
    name: String,
    time: Duration,
    verdict: Verdict,
    out: Option<String>,
    /// `--retries`: the earlier tries that did not pass, as Maven Surefire writes reruns:
    /// `<flakyFailure>`/`<flakyError>` in a case that passed on a retry, `<rerunFailure>`/
    /// `<rerunError>` beside the `<failure>`/`<error>` (the last try's) of one that never did.
    reruns: Vec<Rerun>,
}

/// One earlier try of a testcase's run (see [`Case`]).
struct Rerun {
    /// `flakyFailure`, `flakyError`, `rerunFailure` or `rerunError`.
    tag: &'static str,
    kind: String,
    message: String,
    out: String,
}

/// What a testcase tells of one test run: taken from the event stream (a run's own report) or
/// from a run of a JSON report (`merge`).
#[derive(Debug, Clone, PartialEq)]
pub struct RunCase<'a> {
    pub name: &'a str,
    pub index: u64,
    pub run_id: &'a str,
    pub run_id_number: &'a str,
    /// SUCCESS, FAIL or NOT READY ([`RunResult::as_str`]).
    pub result: &'a str,
    /// The last state it reached ([`sipplauncher_actors::core::state::StateName::as_str`]).
    pub state: &'a str,
    /// SUCCESS and CLEAN.
    pub passed: bool,
    pub took: Duration,
    /// Why it did not pass, on one line.
    pub reason: Option<String>,
    pub run_folder: Option<String>,
    /// More lines for its `<system-out>` (e.g. which shard and host ran it).
    pub more: Vec<String>,
    /// `--retries`: its earlier tries, which did not pass, first first (with no `tries` of
    /// their own).
    pub tries: Vec<RunCase<'a>>,
}

/// Where a run's evidence is, for its `<system-out>`: whether its folder stayed, and its pcap
/// when it is there to open.
fn evidence_lines(r: &RunRecord) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(fate) = r.folder_fate {
        lines.push(format!(
            "run folder kept: {}",
            if fate == Fate::Kept { "yes" } else { "no" }
        ));
    }
    if let (true, Some(pcap)) = (r.folder_kept(), &r.pcap) {
        lines.push(format!("pcap: {}", pcap.display()));
    }
    lines
}

impl Case {
    fn of_run(r: &RunRecord) -> Case {
        Case::of(RunCase {
            tries: r.earlier.iter().map(Case::run_case).collect(),
            ..Case::run_case(r)
        })
    }

    /// One try's part of the testcase (its earlier tries left to [`Case::of_run`]).
    fn run_case(r: &RunRecord) -> RunCase<'_> {
        RunCase {
            name: &r.name,
            index: r.index,
            run_id: &r.run_id,
            run_id_number: &r.run_id_number,
            result: r.result().as_str(),
            state: r.state.as_str(),
            passed: r.passed(),
            took: r.took(),
            reason: r.reason(),
            run_folder: r.run_folder.as_ref().map(|p| p.display().to_string()),
            more: evidence_lines(r),
            tries: Vec::new(),
        }
    }

    /// The testcase of one test run.
    pub fn of(r: RunCase<'_>) -> Case {
        let own = verdict(&r);
        let tries = r.tries.len() + 1;
        let mut out = system_out(&r);
        if !r.tries.is_empty() {
            let _ = if r.passed {
                write!(out, "\nFLAKY: passed on try {tries}")
            } else {
                write!(out, "\ndid not pass in {tries} tries")
            };
        }
        let reruns = r
            .tries
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (error, kind, message) = match verdict(t) {
                    Verdict::Error { kind, message } => (true, kind, message),
                    Verdict::Failure { kind, message } => (false, kind, message),
                    // A try that passed is never retried; told as a failure if it were.
                    Verdict::Passed => (false, t.state.to_string(), t.state.to_string()),
                };
                let tag = match (r.passed, error) {
                    (true, false) => "flakyFailure",
                    (true, true) => "flakyError",
                    (false, false) => "rerunFailure",
                    (false, true) => "rerunError",
                };
                Rerun {
                    tag,
                    kind,
                    message,
                    out: format!("try {} of {tries}\n{}", i + 1, system_out(t)),
                }
            })
            .collect();
        Case {
            name: r.name.to_string(),
            time: r.took,
            verdict: own,
            out: Some(out),
            reruns,
        }
    }

    fn write(&self, x: &mut String) {
        // As the terminal shows it: a hostile folder name's control characters escaped.
        let name = attr(&super::printable(&self.name));
        let _ = write!(
            x,
            "    <testcase name=\"{name}\" classname=\"sipplauncher.{name}\" time=\"{}\"",
            seconds(self.time)
        );
        if matches!(self.verdict, Verdict::Passed) && self.out.is_none() {
            x.push_str("/>\n");
            return;
        }
        x.push_str(">\n");
        match &self.verdict {
            Verdict::Passed => {}
            Verdict::Failure { kind, message } | Verdict::Error { kind, message } => {
                let tag = match self.verdict {
                    Verdict::Error { .. } => "error",
                    _ => "failure",
                };
                let _ = writeln!(
                    x,
                    "      <{tag} message=\"{}\" type=\"{}\">{}</{tag}>",
                    attr(message),
                    attr(kind),
                    text(message)
                );
            }
        }
        // As Surefire: the try's reason as its stack trace, its own system-out.
        for r in &self.reruns {
            let _ = writeln!(
                x,
                "      <{tag} message=\"{}\" type=\"{}\">\n        <stackTrace>{}</stackTrace>\n        \
                 <system-out>{}</system-out>\n      </{tag}>",
                attr(&r.message),
                attr(&r.kind),
                text(&r.message),
                text(&r.out),
                tag = r.tag,
            );
        }
        if let Some(out) = &self.out {
            let _ = writeln!(x, "      <system-out>{}</system-out>", text(out));
        }
        x.push_str("    </testcase>\n");
    }
}

/// A run's verdict: passed, or its failure (FAIL, DIRTY, cut short) or error (NOT READY).
fn verdict(r: &RunCase<'_>) -> Verdict {
    if r.passed {
        return Verdict::Passed;
    }
    let not_ready = r.result == RunResult::NotReady.as_str();
    let kind = if not_ready || r.result == RunResult::Fail.as_str() {
        r.result
    } else {
        // It ran fine but cleanup did not: DIRTY (or cut short while CLEANING).
        r.state
    }
    .to_string();
    let message = r.reason.clone().unwrap_or_else(|| kind.clone());
    if not_ready {
        Verdict::Error { kind, message }
    } else {
        Verdict::Failure { kind, message }
    }
}

/// A run's `<system-out>`: which run it was, its final state, where its folder is.
fn system_out(r: &RunCase<'_>) -> String {
    let mut out = format!(
        "run: {}-{}\nrun id number: {}\nfinal state: {}",
        r.index, r.run_id, r.run_id_number, r.state
    );
    if let Some(folder) = &r.run_folder {
        let _ = write!(out, "\nrun folder: {}", super::printable(folder));
    }
    for line in &r.more {
        let _ = write!(out, "\n{line}");
    }
    out
}

/// A GLOBAL script's property: `ok (0.030s)` or `failed (0.070s): why`.
fn global_value(g: &GlobalRecord) -> String {
    match &g.error {
        None => format!("ok ({}s)", seconds(g.took)),
        Some(e) => format!("failed ({}s): {e}", seconds(g.took)),
    }
}

/// Seconds with milliseconds, as JUnit's `time` attributes are.
fn seconds(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// XML 1.0 allows no control characters but tab, line feed and carriage return: others (from a
/// SIPp error, say) become U+FFFD, as do the two non-characters.
fn xml_char_ok(c: char) -> bool {
    !(c < ' ' && !matches!(c, '\t' | '\n' | '\r') || c == '\u{FFFE}' || c == '\u{FFFF}')
}

/// Escaped for element text.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A parser would turn a bare CR into LF.
            '\r' => out.push_str("&#13;"),
            c if xml_char_ok(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// Escaped for a double-quoted attribute value (line breaks kept, not normalized to spaces).
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if xml_char_ok(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use sipplauncher_actors::core::dispatch::CancelReason;
    use sipplauncher_actors::core::state::StateName;
    use sipplauncher_actors::messages::SignalKind;

    fn junit_of(events: &[Event]) -> JUnit {
        let mut j = JUnit::new(PathBuf::from("unused.xml"));
        for e in events {
            j.event(e);
        }
        j
    }

    /// `--retries`, as Maven Surefire: a FLAKY case passes with a `<flakyFailure>` a failed
    /// try; one that never passed has its last try's `<failure>` and a `<rerunError>` /
    /// `<rerunFailure>` an earlier try.
    #[test]
    fn flaky_and_rerun_failures_as_surefire() {
        let x = junit_of(&fixture::retried_events()).render(SystemTime::now());
        assert!(x.contains("tests=\"2\" failures=\"1\" errors=\"0\""), "{x}");
        let flaky = &x[x.find("name=\"flaky\"").unwrap()..];
        let flaky = &flaky[..flaky.find("</testcase>").unwrap()];
        assert!(!flaky.contains("<failure"), "{flaky}");
        assert!(flaky.contains(
            "<flakyFailure message=\"received &apos;SIP/2.0 503 Busy&apos;\" type=\"FAIL\">\n        \
             <stackTrace>received 'SIP/2.0 503 Busy'</stackTrace>\n        \
             <system-out>try 1 of 2\nrun: 0-flakya"
        ), "{flaky}");
        assert!(flaky.contains("FLAKY: passed on try 2"), "{flaky}");
        let broken = &x[x.find("name=\"broken\"").unwrap()..];
        let broken = &broken[..broken.find("</testcase>").unwrap()];
        let tags: Vec<&str> = broken
            .lines()
            .filter_map(|l| l.trim().strip_prefix('<'))
            .filter_map(|l| l.split([' ', '>']).next())
            .filter(|t| {
                t.starts_with("failure") || t.starts_with("rerun") || t.starts_with("flaky")
            })
            .collect();
        assert_eq!(tags, ["failure", "rerunError", "rerunFailure"], "{broken}");
        assert!(broken.contains(
            "<rerunError message=\"before.sh exited with status 1\" type=\"NOT READY\">"
        ));
        assert!(broken.contains("did not pass in 3 tries"));
    }

    #[test]
    fn snapshot() {
        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="sipplauncher" tests="4" failures="1" errors="1" time="48.250">
  <testsuite name="sipplauncher" tests="4" failures="1" errors="1" skipped="0" time="48.250" timestamp="2024-03-01T12:00:00">
    <properties>
      <property name="seed" value="42"/>
      <property name="global_before" value="ok (0.030s)"/>
      <property name="global_after" value="failed (0.070s): after.sh exited with status 1"/>
    </properties>
    <testcase name="normal-0000" classname="sipplauncher.normal-0000" time="1.020">
      <system-out>run: 0-kqzvxa
run id number: 000000000000
final state: CLEAN
run folder: /var/tmp/sipplauncher/normal-0000/kqzvxa
run folder kept: no</system-out>
    </testcase>
    <testcase name="normal-0001" classname="sipplauncher.normal-0001" time="5.000">
      <failure message="uac ua1 exited with status 1; cleanup: after.sh exited with status 2" type="FAIL">uac ua1 exited with status 1; cleanup: after.sh exited with status 2</failure>
      <system-out>run: 1-bcdefg
run id number: 000000000001
final state: DIRTY
run folder: /var/tmp/sipplauncher/normal-0001/bcdefg
run folder kept: yes
pcap: /var/tmp/sipplauncher/normal-0001/bcdefg/sipp-bcdefg.pcap</system-out>
    </testcase>
    <testcase name="tls-0000" classname="sipplauncher.tls-0000" time="0.012">
      <error message="before.sh exited with status 1 &lt;&amp;&quot;&apos;&gt;" type="NOT READY">before.sh exited with status 1 &lt;&amp;"'&gt;</error>
      <system-out>run: 2-hijklm
run id number: 000000000002
final state: NOT READY
run folder: /var/tmp/sipplauncher/tls-0000/hijklm
run folder kept: yes</system-out>
    </testcase>
    <testcase name="normal-0000" classname="sipplauncher.normal-0000" time="42.000">
      <system-out>run: 3-nopqrs
run id number: 000000000003
final state: CLEAN
run folder: /var/tmp/sipplauncher/normal-0000/nopqrs
run folder kept: no</system-out>
    </testcase>
    <system-err>GLOBAL after.sh failed: after.sh exited with status 1</system-err>
  </testsuite>
</testsuites>
"#;
        let mut j = junit_of(&fixture::events());
        assert_eq!(j.render(SystemTime::now()), expected);
    }

    #[test]
    fn escaping() {
        assert_eq!(attr("a<&\"'>b\nc"), "a&lt;&amp;&quot;&apos;&gt;b&#10;c");
        assert_eq!(text("a<&\"'>b\nc"), "a&lt;&amp;\"'&gt;b\nc");
        assert_eq!(text("bell\u{7}"), "bell\u{FFFD}");
        assert_eq!(attr("x\u{1b}[0m"), "x\u{FFFD}[0m");
    }

    #[test]
    fn a_failing_global_before_is_no_test_case() {
        let mut j = junit_of(&[
            fixture::global(StateName::Preparing, 0, None, None),
            fixture::global(StateName::NotReady, 5, Some(5), Some("exit status 3")),
            Event::Interrupted {
                signal: SignalKind::Interrupt,
                reason: CancelReason::Signal,
            },
        ]);
        let xml = j.render(fixture::at(0));
        // The counts are the console's: GLOBAL is not a test run.
        assert!(xml
            .contains("<testsuites name=\"sipplauncher\" tests=\"0\" failures=\"0\" errors=\"0\""));
        assert!(!xml.contains("<testcase"));
        assert!(xml.contains(
            "      <property name=\"global_before\" value=\"failed (0.005s): exit status 3\"/>"
        ));
        assert!(xml.contains(
            "    <system-err>GLOBAL before.sh failed: exit status 3</system-err>\n  </testsuite>"
        ));
    }

    #[test]
    fn a_passing_global_and_no_tests() {
        let mut j = junit_of(&[
            fixture::global(StateName::Preparing, 0, None, None),
            fixture::global(StateName::Ready, 5, Some(5), None),
        ]);
        let xml = j.render(fixture::at(0));
        assert!(xml.contains("tests=\"0\" failures=\"0\" errors=\"0\""));
        assert!(xml.contains("<property name=\"global_before\" value=\"ok (0.005s)\"/>"));
        assert!(!xml.contains("<testcase"));
        assert!(!xml.contains("<system-err>"));
    }

    #[test]
    fn dirty_after_success_is_a_failure() {
        let mut j = junit_of(&[
            fixture::test(0, "a", "aaaaaa", StateName::Preparing, 0, None, None, None),
            fixture::test(0, "a", "aaaaaa", StateName::Ready, 0, None, None, None),
            fixture::test(0, "a", "aaaaaa", StateName::Starting, 0, None, None, None),
            fixture::test(0, "a", "aaaaaa", StateName::Success, 0, Some(7), None, None),
            fixture::test(0, "a", "aaaaaa", StateName::Cleaning, 0, None, None, None),
            fixture::test(0, "a", "aaaaaa", StateName::Dirty, 0, Some(1), None, None),
        ]);
        let xml = j.render(fixture::at(0));
        assert!(xml.contains(
            "<failure message=\"cleanup failed\" type=\"DIRTY\">cleanup failed</failure>"
        ));
    }

    #[test]
    fn finish_writes_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("junit.xml");
        let mut j = JUnit::new(path.clone());
        for e in fixture::events() {
            j.event(&e);
        }
        let expected = j.render(SystemTime::now());
        j.finish().expect("written");
        let written = std::fs::read_to_string(&path).expect("read");
        assert_eq!(written, expected);
        // The spool is gone with the report written.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("junit.xml")]);

        let mut bad = JUnit::new(dir.path().join("nope").join("junit.xml"));
        let err = bad.finish().expect_err("no such folder");
        assert!(err.starts_with("write the junit report "), "{err}");
        assert!(!err.contains('\n'));
    }
}
