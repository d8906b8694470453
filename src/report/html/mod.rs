//! The HTML report (`--html FILE`, `sipplauncher report`): one self-contained file (inline
//! style, inline script, SVG; nothing fetched) made with minijinja: the run's summary, a table
//! of the tests (runs, pass rate, median and 95th percentile duration, first and last failure),
//! every test run grouped by test with a filter by state, and the SIP ladder of the failed runs
//! and of one passing run of each test.
//!
//! One writer for both ways in: [`Digest`] takes test runs one at a time as JSON report
//! entries ([`JsonRun`]) and keeps what the page shows in bounded memory (rows up to
//! [`MAX_ROWS`], ladders as rendered fragments, durations as milliseconds); the [`Html`] sink
//! feeds it from the event stream and rewrites the file every 30 s while the run goes on;
//! [`write_html`] feeds it from a JSON report (`report`, `merge`).

mod svg;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use minijinja::{context, AutoEscape, Environment};
use serde::Serialize;

use sipplauncher_actors::events::{Event, EventSink};

use super::evidence::{read_ladder, LadderPolicy, LadderTally};
use super::json::{self, JsonReport, JsonRun, RunMeta};
use super::{format_duration, rfc3339, write_atomic, Collector};
use crate::ladder::{failure, Ladder};

/// The most runs listed one by one; past it only the runs that did not pass are, up to as many
/// again (the JSON report lists every run; the tests' table counts them all).
pub const MAX_ROWS: usize = 10_000;

/// A reason in the runs' table is cut here (the whole of it is in the cell's tooltip and above
/// the run's ladder).
const REASON_CUT: usize = 240;

const PAGE: &str = include_str!("page.html");
const LADDER: &str = include_str!("ladder.html");
const ROW: &str = include_str!("row.html");

/// An extra section of the page (e.g. a capacity curve): after the tests' table, or first.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// Its anchor.
    pub id: String,
    pub title: String,
    /// Its body: HTML (inline SVG and style only: the page stays self-contained).
    pub html: String,
    /// Shown first, above the summary: the page's headline (a sweep's capacity curve, above
    /// the report of its last size).
    pub first: bool,
}

/// Writes the HTML report of `report` to `out` (atomically). Runs without a ladder in the
/// report that should have one get it from their kept run folder's pcap, when it is there.
pub fn write_html(report: &JsonReport, out: &Path) -> Result<(), String> {
    write_html_with(report, out, &[])
}

/// [`write_html`] with extra sections.
pub fn write_html_with(report: &JsonReport, out: &Path, extra: &[Section]) -> Result<(), String> {
    let mut digest = Digest::new(LadderPolicy::default(), report.dut.parse().ok());
    for run in &report.tests {
        digest.add(run);
    }
    let page = digest
        .render(report, false, extra)
        .map_err(|e| format!("render the html report: {e}"))?;
    write_atomic(out, page.as_bytes())
        .map_err(|e| format!("write the html report {}: {e}", out.display()))
}

/// Which runs a row's filter keys say: its result, and DIRTY when its cleanup failed.
fn keys(run: &JsonRun) -> String {
    let mut k = key(&run.result).to_string();
    if run.state == "DIRTY" {
        k.push_str(" DIRTY");
    }
    if run.flaky {
        k.push_str(" FLAKY");
    }
    k
}

/// A result or state as a class and filter key (`NOT READY` → `NOT_READY`).
fn key(s: &str) -> &str {
    match s {
        "NOT READY" => "NOT_READY",
        other => other,
    }
}

/// The filters, in the order shown.
const CATEGORIES: [(&str, &str); 5] = [
    ("SUCCESS", "SUCCESS"),
    ("FAIL", "FAIL"),
    ("NOT_READY", "NOT READY"),
    ("DIRTY", "DIRTY"),
    // Passed on a retry (`--retries`): SUCCESS too.
    ("FLAKY", "FLAKY"),
];

/// A FLAKY run's words: on which try it passed, and what its earlier tries were.
fn flaky_reason(run: &JsonRun) -> String {
    let mut s = format!("FLAKY: passed on try {}", run.tries.len() + 1);
    for (i, t) in run.tries.iter().enumerate() {
        s.push_str(&format!("; try {} {} ({})", i + 1, t.result, t.run_id));
        if t.state == "DIRTY" && t.result == "SUCCESS" {
            s.push_str(" DIRTY");
        }
        if let Some(r) = &t.reason {
            s.push_str(": ");
            s.push_str(r);
        }
    }
    s
}

#[derive(Debug, Clone, Serialize)]
struct Row {
    index: u64,
    run_id: String,
    result: String,
    result_key: String,
    state: String,
    state_key: String,
    keys: String,
    /// `12:00:01` of its start (UTC, as the report's times).
    time: String,
    took: String,
    wall: String,
    reason: Option<String>,
    reason_full: Option<String>,
    folder: Option<String>,
    /// The anchor of its ladder on the page.
    ladder: Option<String>,
    ladder_note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct FailureRef {
    anchor: String,
    /// `3 (3-abcdef)`.
    label: String,
    key: String,
    state: String,
    time: String,
}

/// What the page keeps of one test.
#[derive(Debug, Default)]
struct TestDigest {
    name: String,
    runs: u64,
    passed: u64,
    /// The SIPp time of its SUCCESS and FAIL runs, in milliseconds.
    took_ms: Vec<u32>,
    first_failure: Option<FailureRef>,
    last_failure: Option<FailureRef>,
    /// The listed runs' rows, rendered.
    rows_html: String,
    rows_listed: u64,
    rows_omitted: u64,
    /// Rendered ladder fragments; the passing run's first.
    ladders: Vec<String>,
    ladders_omitted: u64,
}

/// The page's content, built one test run at a time (see the module).
pub struct Digest {
    policy: LadderPolicy,
    tally: LadderTally,
    /// Read the ladders of failed runs without one from their kept pcaps (not while a run
    /// goes on: its ladders come with its events, and no file is read on its thread).
    read_pcaps: bool,
    /// For ladders read from kept pcaps (the report's `dut`).
    dut: Option<Ipv4Addr>,
    /// In the order of their first run.
    tests: Vec<TestDigest>,
    by_name: BTreeMap<String, usize>,
    listed: usize,
    listed_not_passed: usize,
    counts: BTreeMap<&'static str, u64>,
    env: Environment<'static>,
}

impl Digest {
    /// `dut`: to read ladders from kept pcaps (`None`: none is read).
    pub fn new(policy: LadderPolicy, dut: Option<Ipv4Addr>) -> Digest {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        // Both are compiled in: a syntax error is caught by the tests.
        let _ = env.add_template("page.html", PAGE);
        let _ = env.add_template("ladder.html", LADDER);
        let _ = env.add_template("row.html", ROW);
        Digest {
            policy,
            tally: LadderTally::default(),
            read_pcaps: dut.is_some(),
            dut,
            tests: Vec::new(),
            by_name: BTreeMap::new(),
            listed: 0,
            listed_not_passed: 0,
            counts: BTreeMap::new(),
            env,
        }
    }

    /// Takes one test run (in run order).
    pub fn add(&mut self, run: &JsonRun) {
        let at = match self.by_name.get(&run.name) {
            Some(&i) => i,
            None => {
                self.tests.push(TestDigest {
                    // Shown as the terminal shows it: control characters escaped.
                    name: super::printable(&run.name).into_owned(),
                    ..TestDigest::default()
                });
                self.by_name.insert(run.name.clone(), self.tests.len() - 1);
                self.tests.len() - 1
            }
        };
        let keys = keys(run);
        for (k, _) in CATEGORIES {
            if keys.split(' ').any(|x| x == k) {
                *self.counts.entry(k).or_default() += 1;
            }
        }
        let anchor = format!("run-{}", run.index);
        let ladder_anchor = format!("ladder-{}", run.index);
        let label = format!("{} ({}-{})", run.index, run.index, run.run_id);
        let ladder_block = self.ladder_block(run, &keys, &label, &ladder_anchor);
        // `--retries`: the earlier tries that did not pass, each with its ladder (a FLAKY
        // run's failure is the one to look at).
        let try_blocks: Vec<(String, LadderBlock)> = run
            .tries
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.passed)
            .map(|(k, t)| {
                let anchor = format!("ladder-{}-try{}", run.index, k + 1);
                let label = format!("{} ({}-{}), try {}", run.index, run.index, t.run_id, k + 1);
                // Shown with the try's result, and with FLAKY when the run passed at last.
                let mut try_keys = self::keys(t);
                if run.flaky {
                    try_keys.push_str(" FLAKY");
                }
                let block = self.ladder_block(t, &try_keys, &label, &anchor);
                (anchor, block)
            })
            .collect();
        let (ladder, ladder_note) = match &ladder_block {
            LadderBlock::Shown(_) => (Some(ladder_anchor.clone()), None),
            LadderBlock::Note(n) => (None, Some(n.clone())),
            LadderBlock::Omitted | LadderBlock::None => (None, None),
        };
        // A FLAKY run's row links its last failed try's ladder (its own is a passing one, to
        // compare with); another run's, when it has none of its own.
        let try_ladder = try_blocks
            .iter()
            .rev()
            .find(|(_, b)| matches!(b, LadderBlock::Shown(_)))
            .map(|(a, _)| a.clone());
        let ladder = if run.flaky {
            try_ladder.or(ladder)
        } else {
            ladder.or(try_ladder)
        };
        let listed = self.listed < MAX_ROWS || (!run.passed && self.listed_not_passed < MAX_ROWS);
        // Rendered once, here: a rewrite of the page only strings the rows together.
        let row = listed.then(|| {
            let reason_full = if run.flaky {
                Some(flaky_reason(run))
            } else {
                run.reason.clone()
            };
            let row = Row {
                index: run.index,
                run_id: run.run_id.clone(),
                result: run.result.clone(),
                result_key: key(&run.result).to_string(),
                state: run.state.clone(),
                state_key: key(&run.state).to_string(),
                keys: keys.clone(),
                time: time_of(&run.started),
                took: format_duration(Duration::from_secs_f64(run.took_s.max(0.0))),
                wall: format_duration(Duration::from_secs_f64(run.wall_s.max(0.0))),
                reason: reason_full.as_deref().map(|r| cut(r, REASON_CUT)),
                reason_full: reason_full.filter(|r| r.chars().count() > REASON_CUT),
                // Where its evidence stays (a removed folder is not worth a line).
                folder: run
                    .run_folder
                    .clone()
                    .filter(|f| !run.passed && Path::new(f).is_dir())
                    .map(|f| super::printable(&f).into_owned()),
                ladder,
                ladder_note,
            };
            self.env
                .get_template("row.html")
                .and_then(|t| t.render(context! { r => row }))
                // Plain data into a template of ours: cannot fail; the row is left out if it did.
                .unwrap_or_default()
        });

        let t = &mut self.tests[at];
        t.runs += 1;
        if run.passed {
            t.passed += 1;
        }
        if matches!(run.result.as_str(), "SUCCESS" | "FAIL") {
            t.took_ms
                .push(u32::try_from((run.took_s * 1000.0).round() as u64).unwrap_or(u32::MAX));
        }
        if !run.passed {
            let f = FailureRef {
                anchor: if listed { anchor } else { ladder_anchor },
                label,
                key: key(&run.result).to_string(),
                state: if run.state == run.result {
                    run.state.clone()
                } else {
                    format!("{} / {}", run.result, run.state)
                },
                time: time_of(&run.started),
            };
            if t.first_failure.is_none() {
                t.first_failure = Some(f.clone());
            }
            t.last_failure = Some(f);
        }
        match ladder_block {
            // The passing run's ladder goes first.
            LadderBlock::Shown(html) if run.succeeded() => t.ladders.insert(0, html),
            LadderBlock::Shown(html) => t.ladders.push(html),
            LadderBlock::Omitted => t.ladders_omitted += 1,
            LadderBlock::Note(_) | LadderBlock::None => {}
        }
        for (_, block) in try_blocks {
            match block {
                LadderBlock::Shown(html) => t.ladders.push(html),
                LadderBlock::Omitted => t.ladders_omitted += 1,
                LadderBlock::Note(_) | LadderBlock::None => {}
            }
        }
        match row {
            Some(row) => {
                t.rows_html.push_str(&row);
                t.rows_html.push('\n');
                t.rows_listed += 1;
                self.listed += 1;
                if !run.passed {
                    self.listed_not_passed += 1;
                }
            }
            None => t.rows_omitted += 1,
        }
    }

    /// The run's ladder, drawn. A ladder the run came with is drawn (the policy chose it when
    /// the run was made; a passing one only when its test has none yet); a failed run without
    /// one gets it from its kept pcap, when pcaps are read, as long as the policy wants more.
    fn ladder_block(
        &mut self,
        run: &JsonRun,
        keys: &str,
        label: &str,
        anchor: &str,
    ) -> LadderBlock {
        let succeeded = run.succeeded();
        let wanted = self.tally.wants(&self.policy, &run.name, succeeded);
        let mut ladder: Option<Arc<Ladder>> = run.ladder.clone();
        let mut error = run.ladder_error.clone();
        match (&ladder, wanted, succeeded) {
            // One passing ladder a test.
            (Some(_), false, true) => return LadderBlock::None,
            (Some(_), _, _) => {}
            (None, false, false) => return LadderBlock::Omitted,
            (None, false, true) => return LadderBlock::None,
            (None, true, _) => {
                if let (Some(folder), Some(dut), None, true) =
                    (&run.run_folder, self.dut, &error, self.read_pcaps)
                {
                    let pcap = Path::new(folder).join(format!("sipp-{}.pcap", run.run_id));
                    if pcap.is_file() {
                        match read_ladder(&pcap, &run.addresses, dut, run.reason.as_deref()) {
                            Ok(l) => ladder = Some(Arc::new(l)),
                            Err(e) => error = Some(e),
                        }
                    }
                }
            }
        }
        self.tally.got(&run.name, succeeded, ladder.as_deref());
        let Some(ladder) = ladder else {
            return match error {
                Some(e) => LadderBlock::Note(format!("no ladder: {e}")),
                None => LadderBlock::None,
            };
        };
        if succeeded && ladder.messages.is_empty() {
            return LadderBlock::None;
        }
        let highlight = match (&run.reason, succeeded) {
            (Some(r), false) => failure::highlight(&ladder, r),
            _ => None,
        };
        let view = svg::layout(&ladder, highlight);
        let title = if succeeded {
            format!("A passing run: {label}")
        } else {
            format!("Run {label}")
        };
        let mut subtitle = format!("{} · {}", run.result, run.state);
        subtitle.push_str(&format!(" · {}", ladder.pcap));
        if let Some(s) = &ladder.started {
            subtitle.push_str(&format!(" · first message {s}"));
        }
        let note = if ladder.messages.is_empty() {
            Some("No SIP message in the capture.".to_string())
        } else if ladder.omitted > 0 {
            Some(match &ladder.call_id {
                Some(c) => format!(
                    "Only the failed call ({c}) is shown: {} other SIP messages are in the capture.",
                    ladder.omitted
                ),
                None => format!(
                    "The first {} SIP messages are shown; {} more are in the capture.",
                    ladder.messages.len(),
                    ladder.omitted
                ),
            })
        } else {
            None
        };
        let has_retrans = view.arrows.iter().any(|a| a.retransmission);
        let rendered = self.env.get_template("ladder.html").and_then(|t| {
            t.render(context! {
                id => anchor,
                keys => keys,
                title => title,
                subtitle => subtitle,
                reason => if succeeded { None } else { run.reason.clone() },
                note => note,
                view => view,
                has_retrans => has_retrans,
                // A passing run's ladder is there to compare with: folded, so that the
                // failures stand out; its link in the runs table unfolds it.
                folded => succeeded,
            })
        });
        match rendered {
            Ok(html) => LadderBlock::Shown(html),
            Err(e) => LadderBlock::Note(format!("ladder not drawn: {e}")),
        }
    }

    /// The page, with `head`'s summary (its `tests` are not read: the runs are those added).
    pub fn render(
        &self,
        head: &JsonReport,
        running: bool,
        extra: &[Section],
    ) -> Result<String, minijinja::Error> {
        let globals_failed = [&head.global.before, &head.global.after]
            .iter()
            .any(|g| g.as_ref().is_some_and(|g| !g.ok));
        let verdict = if running {
            "RUNNING"
        } else if head.interrupted {
            "INTERRUPTED"
        } else if head.summary.failed == 0 && !globals_failed && head.summary.total > 0 {
            "PASSED"
        } else {
            "FAILED"
        };
        let added: u64 = self.tests.iter().map(|t| t.runs).sum();
        let categories: Vec<_> = CATEGORIES
            .iter()
            .map(|(k, name)| {
                context! { key => k, name => name, count => self.counts.get(k).copied().unwrap_or(0) }
            })
            .collect();
        let globals: Vec<_> = [
            ("before.sh", &head.global.before),
            ("after.sh", &head.global.after),
        ]
        .into_iter()
        .filter_map(|(name, g)| {
            g.as_ref().map(|g| {
                context! {
                    name => name,
                    ok => g.ok,
                    error => g.error,
                    took => format_duration(Duration::from_secs_f64(g.took_s.max(0.0))),
                }
            })
        })
        .collect();
        let tests: Vec<_> = self
            .tests
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut sorted = t.took_ms.clone();
                sorted.sort_unstable();
                let pct = |p: f64| {
                    percentile(&sorted, p)
                        .map(|ms| format_duration(Duration::from_millis(u64::from(ms))))
                };
                context! {
                    id => format!("t{i}"),
                    name => t.name,
                    runs => t.runs,
                    passed => t.passed,
                    pass_rate => pass_rate(t.passed, t.runs),
                    median => pct(0.5),
                    p95 => pct(0.95),
                    first_failure => t.first_failure,
                    last_failure => t.last_failure,
                    open => t.passed < t.runs || t.rows_listed <= 20,
                    rows_html => t.rows_html,
                    rows_listed => t.rows_listed,
                    rows_omitted => t.rows_omitted,
                    ladders => t.ladders,
                    ladders_omitted => t.ladders_omitted,
                }
            })
            .collect();
        let mode = {
            let mut m = if head.window {
                format!("--window, {} at once", head.group)
            } else {
                format!("groups of {}", head.group)
            };
            if head.dry_run {
                m.push_str(" · dry run");
            }
            if let Some(seed) = head.seed {
                m.push_str(&format!(" · --random, seed {seed}"));
            }
            m
        };
        let under_way = if running {
            head.summary.total.saturating_sub(added)
        } else {
            0
        };
        let mut head = head.clone();
        head.tests = Vec::new();
        self.env.get_template("page.html")?.render(context! {
            head => head,
            verdict => verdict,
            categories => categories,
            under_way => under_way,
            elapsed => format_duration(Duration::from_secs_f64(head.elapsed_s.max(0.0))),
            command_line => shell_words(&head.command_line),
            mode => mode,
            globals => globals,
            running => running,
            written => format!("Written {}", rfc3339(SystemTime::now())),
            tests => tests,
            extra => extra,
            failed_max => self.policy.failed_max,
        })
    }
}

enum LadderBlock {
    Shown(String),
    /// The policy's bound was reached.
    Omitted,
    /// Why there is none.
    Note(String),
    None,
}

/// `93.3%` (one decimal unless whole).
fn pass_rate(passed: u64, runs: u64) -> String {
    if runs == 0 {
        return "-".into();
    }
    let pct = passed as f64 * 100.0 / runs as f64;
    if pct.fract() == 0.0 {
        format!("{pct:.0}%")
    } else {
        format!("{pct:.1}%")
    }
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// `12:00:01` of an RFC 3339 time.
fn time_of(rfc3339: &str) -> String {
    rfc3339.get(11..19).unwrap_or(rfc3339).to_string()
}

/// `s` cut to `n` characters, with `…` when cut.
fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// The command line as a shell would read it back.
fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes the page in the background while the run goes on, so that the actor thread never
/// waits on the disk. Only the latest page waits to be written: one made while the previous is
/// still being written replaces any older one waiting.
struct Writer {
    slot: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Slot {
    page: Option<String>,
    closed: bool,
}

impl Writer {
    fn start(path: PathBuf) -> Writer {
        let slot: Arc<(Mutex<Slot>, Condvar)> = Arc::default();
        let shared = slot.clone();
        let thread = std::thread::Builder::new()
            .name("html-report".into())
            .spawn(move || loop {
                let page = {
                    let (lock, ready) = &*shared;
                    let mut s = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    while s.page.is_none() && !s.closed {
                        s = ready.wait(s).unwrap_or_else(PoisonError::into_inner);
                    }
                    match s.page.take() {
                        Some(p) => p,
                        None => return,
                    }
                };
                // A failed write is tried again with the next page; the last write, at the
                // end, reports its error.
                let _ = write_atomic(&path, page.as_bytes());
            })
            .ok();
        Writer { slot, thread }
    }

    fn offer(&self, page: String) {
        let (lock, ready) = &*self.slot;
        lock.lock().unwrap_or_else(PoisonError::into_inner).page = Some(page);
        ready.notify_one();
    }

    /// Writes the page waiting, if any, and stops.
    fn stop(&mut self) {
        let (lock, ready) = &*self.slot;
        lock.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        ready.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    /// A sink dropped without `finish` (a panic): the thread ends after the page it writes.
    fn drop(&mut self) {
        let (lock, ready) = &*self.slot;
        lock.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        ready.notify_one();
    }
}

/// The `--html FILE` sink: feeds a [`Digest`] from the event stream; the page is written when
/// the run starts, every [`sipplauncher_actors::events::PROGRESS_EVERY`] while it goes on, and
/// at its end.
pub struct Html {
    path: PathBuf,
    meta: RunMeta,
    collected: Collector,
    digest: Digest,
    writer: Writer,
}

impl Html {
    pub fn new(path: PathBuf, meta: RunMeta, policy: LadderPolicy) -> Html {
        Html {
            writer: Writer::start(path.clone()),
            path,
            meta,
            collected: Collector::default(),
            // Ladders come with the runs' events; no pcap is read here.
            digest: Digest::new(policy, None),
        }
    }

    fn head(&self) -> JsonReport {
        let mut head = json::document(&self.meta, &self.collected, SystemTime::now());
        head.tests = Vec::new();
        head
    }

    /// The page as it stands, to be written in the background.
    fn snapshot(&self) {
        if let Ok(page) = self.digest.render(&self.head(), true, &[]) {
            self.writer.offer(page);
        }
    }
}

impl EventSink for Html {
    fn event(&mut self, event: &Event) {
        self.collected.event(event);
        match event {
            Event::Test(_) => {
                for r in self.collected.take_settled() {
                    self.digest.add(&JsonRun::of(&r));
                }
            }
            Event::RunStarted { .. } | Event::Progress { .. } => self.snapshot(),
            _ => {}
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        self.writer.stop();
        // Runs cut short (interrupted, killed) are still held: they are listed too.
        let left: Vec<JsonRun> = self.collected.runs.values().map(JsonRun::of).collect();
        for r in &left {
            self.digest.add(r);
        }
        let what = format!("write the html report {}", self.path.display());
        let page = self
            .digest
            .render(&self.head(), false, &[])
            .map_err(|e| format!("{what}: {e}"))?;
        write_atomic(&self.path, page.as_bytes()).map_err(|e| format!("{what}: {e}"))
    }
}
