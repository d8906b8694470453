//! What a run tells: the terminal lines ([`console`]), the JUnit XML ([`junit`]) and the JSON
//! ([`json`]) reports, three `EventSink`s fed by the same event stream; and what they share:
//! duration and time formatting, atomic file writes, and the per-test-run records that the two
//! report files keep until the end.

pub mod console;
pub mod evidence;
pub mod html;
pub mod json;
pub mod junit;
pub mod recap;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sipplauncher_actors::core::dispatch::Outcome;
use sipplauncher_actors::core::plan::{Attachment, HandTo};
use sipplauncher_actors::core::state::StateName;
use sipplauncher_actors::events::{Event, TestStateEvent};
use sipplauncher_actors::sipp::stats::SippStats;
use sipplauncher_actors::sys::keep::Fate;
use sipplauncher_actors::sys::usage::RunUsage;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

pub use sipplauncher_actors::events::format_duration;

/// `SystemTime` as RFC 3339 in UTC with milliseconds: `2024-03-01T12:34:56.789Z`.
pub fn rfc3339(t: SystemTime) -> String {
    utc(t)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default()
}

/// `SystemTime` as the JUnit schema's `timestamp`: `2024-03-01T12:34:56` (UTC, no zone: the
/// schema's pattern allows none).
pub fn junit_timestamp(t: SystemTime) -> String {
    utc(t)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

/// `t` in UTC; a time beyond the years `time` handles (±9999) is taken as the nearest it does.
fn utc(t: SystemTime) -> OffsetDateTime {
    let nanos = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    };
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if nanos < 0 {
        PrimitiveDateTime::MIN.assume_utc()
    } else {
        PrimitiveDateTime::MAX.assume_utc()
    })
}

/// Writes `data` to `path` all at once: to a temporary file in the same folder, synced, then
/// renamed over `path`, so that a reader (CI) never sees half a report, and a file or symlink
/// already at `path` is replaced, never written through.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(data))
}

/// Like [`write_atomic`], the content written by `fill` (so that a large report is streamed,
/// not built in memory).
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let (tmp, f) = create_hidden(path, &name.to_string_lossy(), "tmp")?;
    let result = write_new(f, fill)
        .and_then(|()| hand_over(&tmp))
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a new hidden file `.<name>.<random>.<suffix>` beside `path`, mode 0600: created
/// exclusively at a name nobody can foresee, never through a symlink, so that nothing planted
/// in the report's folder (others may write there, /tmp) is written to or read back.
fn create_hidden(path: &Path, name: &str, suffix: &str) -> io::Result<(PathBuf, fs::File)> {
    use rand::RngExt;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tries = 0;
    loop {
        let tag: String = (0..12)
            .map(|_| rand::rng().random_range(b'a'..=b'z') as char)
            .collect();
        let hidden = path.with_file_name(format!(".{name}.{tag}.{suffix}"));
        let opened = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&hidden);
        match opened {
            Ok(f) => return Ok((hidden, f)),
            // 26^12 names: a clash is someone's plant, or bad luck once.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 3 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The user report files are handed to: the one who ran sudo (see [`hand_reports_to`]).
static REPORTS_TO: OnceLock<HandTo> = OnceLock::new();

/// Run through sudo: every report file written from now on belongs to `to`, so that they read
/// it (and open its pcaps' report) without root. Set once, at start.
pub fn hand_reports_to(to: Option<HandTo>) {
    if let Some(to) = to {
        let _ = REPORTS_TO.set(to);
    }
}

/// A freshly written report file to the sudo user, when there is one.
fn hand_over(path: &Path) -> io::Result<()> {
    match REPORTS_TO.get() {
        Some(to) => std::os::unix::fs::lchown(path, Some(to.uid), Some(to.gid)),
        None => Ok(()),
    }
}

fn write_new(
    f: fs::File,
    fill: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut w = io::BufWriter::new(f);
    fill(&mut w)?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()
}

/// The settled test runs of a report, written out as they settle: a long run (`--loop` for
/// days) keeps only its running tests in memory, and the report is put together from this file
/// at the end. Beside the report, hidden (`.<name>.<random>.spool`, made as
/// [`create_hidden`] makes it: exclusively, never through a symlink); removed when dropped.
pub struct Spool {
    /// The report's path, until the spool file is made; then the spool file's.
    path: PathBuf,
    file: Option<io::BufWriter<fs::File>>,
    /// The first write error: the report then says so at the end.
    error: Option<String>,
    /// Entries pushed.
    pub count: u64,
}

impl Spool {
    pub fn beside(report: &Path) -> Spool {
        let name = report
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "report".into());
        Spool {
            path: report.with_file_name(name),
            file: None,
            error: None,
            count: 0,
        }
    }

    pub fn push(&mut self, text: &str) {
        self.count += 1;
        if self.error.is_some() {
            return;
        }
        if self.file.is_none() {
            let name = self
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match create_hidden(&self.path, &name, "spool") {
                Ok((path, f)) => {
                    self.path = path;
                    self.file = Some(io::BufWriter::new(f));
                }
                Err(e) => {
                    self.error = Some(format!("beside {}: {e}", self.path.display()));
                    return;
                }
            }
        }
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.write_all(text.as_bytes()) {
                self.error = Some(format!("{}: {e}", self.path.display()));
            }
        }
    }

    /// Copies everything pushed so far into `w`.
    pub fn copy_to(&mut self, w: &mut dyn io::Write) -> io::Result<()> {
        if let Some(e) = &self.error {
            return Err(io::Error::other(format!("spool {e}")));
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        f.flush()?;
        // Read back through the file we made (not the name: it could be swapped meanwhile).
        let mut r = f.get_ref().try_clone()?;
        r.seek(io::SeekFrom::Start(0))?;
        io::copy(&mut r, w)?;
        // Appends go on at the end.
        f.get_mut().seek(io::SeekFrom::End(0))?;
        Ok(())
    }

    /// Everything pushed so far (tests and small reports).
    pub fn read_all(&mut self) -> io::Result<String> {
        let mut out = Vec::new();
        self.copy_to(&mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

impl Spool {
    /// Deletes the spool file (once the report is written, or when dropped).
    pub fn remove(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A name from the suite (a test's folder name) as a terminal line shows it: control characters
/// (an escape sequence, a line break) written as Rust escapes (`\u{1b}`), so that a hostile
/// folder name can neither drive the terminal nor forge a line; anything else as it is.
pub fn printable(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(name);
    }
    std::borrow::Cow::Owned(
        name.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// A path as a terminal line shows it: see [`printable`].
pub fn printable_path(path: &Path) -> String {
    printable(&path.display().to_string()).into_owned()
}

/// `s` on one line: line breaks and other control characters become spaces.
pub fn one_line(s: &str) -> String {
    s.trim_end()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// SIPp's words before the reason of an aborted call: the Call-ID adds nothing on a terminal
/// (it is in the test's log and the reports).
const SIPP_ABORT_PREFIX: &str = "Aborting call on unexpected message for Call-Id '";

/// A reason as the terminal shows it: one line, and a SIP message quoted in it (SIPp's
/// `received '...'`) cut to its first line, its status or request line:
/// `received 'SIP/2.0 404 Not Here'`, not the whole message. The full text stays in the test's
/// log and the reports.
pub fn short_reason(reason: &str) -> String {
    let mut text = one_line(reason);
    // `Aborting call on unexpected message for Call-Id '<id>': while expecting ...`
    if let Some(at) = text.find(SIPP_ABORT_PREFIX) {
        if let Some(end) = text[at + SIPP_ABORT_PREFIX.len()..].find("': ") {
            text.replace_range(at..at + SIPP_ABORT_PREFIX.len() + end + 3, "");
        }
    }
    const RECEIVED: &str = "received '";
    let Some(at) = text.find(RECEIVED) else {
        return text;
    };
    let start = at + RECEIVED.len();
    // Multi-line messages were flattened by `one_line`: find the first line's end by its shape.
    let first = first_sip_line(&reason[reason.find(RECEIVED).map_or(0, |r| r + RECEIVED.len())..])
        .or_else(|| first_sip_line(&text[start..]));
    match first {
        Some(line) => format!("{}{line}'", &text[..start]),
        None => text,
    }
}

/// The start line of the SIP message at the start of `text` (a status line `SIP/2.0 404 Not
/// Here` or a request line `INVITE sip:x@y SIP/2.0`), when `text` starts with one.
fn first_sip_line(text: &str) -> Option<String> {
    // Not flattened: the line ends where the line does.
    let line = text.split(['\r', '\n']).next().unwrap_or("");
    let line = line.trim_end_matches('\'');
    let words: Vec<&str> = line.split_whitespace().collect();
    let is_header = |w: &str| {
        w.len() > 1
            && w.ends_with(':')
            && w[..w.len() - 1]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let kept: Vec<&str> = if words.first() == Some(&"SIP/2.0") {
        // Status line: the version, the code, then the phrase up to the first header.
        let code = words.get(1)?;
        if code.len() != 3 || !code.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        words
            .iter()
            .copied()
            .take_while(|w| !is_header(w))
            .collect()
    } else {
        // Request line: METHOD URI SIP/2.0.
        let method = words.first()?;
        if !method.chars().all(|c| c.is_ascii_uppercase() || c == '-')
            || words.get(2) != Some(&"SIP/2.0")
        {
            return None;
        }
        words[..3].to_vec()
    };
    let kept = kept.join(" ");
    Some(kept.trim_end_matches('\'').to_string())
}

/// `text` cut to `width` characters, an ellipsis marking the cut; whole when it fits or when
/// there is no width (not a terminal).
pub fn fit(text: &str, width: Option<usize>) -> String {
    match width {
        Some(w) if text.chars().count() > w => {
            let mut out: String = text.chars().take(w.saturating_sub(1)).collect();
            out.push('…');
            out
        }
        _ => text.to_string(),
    }
}

/// What a test run came to, as the reports say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    Success,
    Fail,
    NotReady,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Success => "SUCCESS",
            RunResult::Fail => "FAIL",
            RunResult::NotReady => "NOT READY",
        }
    }
}

/// One test run, as the report files keep it until the end (one small struct a run).
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub index: u64,
    /// `--retries`: which try this is (from 0).
    pub attempt: u32,
    /// `--retries`: the run's earlier tries, which did not pass, first try first (each with no
    /// `earlier` of its own).
    pub earlier: Vec<RunRecord>,
    pub name: String,
    pub run_id: String,
    pub run_id_number: String,
    /// Its first event.
    pub started: SystemTime,
    /// The last state it reached.
    pub state: StateName,
    /// It got past pre-run: if it has no result, it was cut short, not refused.
    pub reached_ready: bool,
    /// Set by NOT READY, SUCCESS or FAIL.
    pub result: Option<RunResult>,
    /// Of that end state: pre-run for NOT READY, the run for SUCCESS and FAIL.
    pub took: Option<Duration>,
    pub cps: Option<f64>,
    /// How long its SIPp processes ran.
    pub sipp_time: Option<Duration>,
    /// What SIPp counted: calls, setup time.
    pub stats: Option<SippStats>,
    /// Its last event: with `started`, the run's wall time.
    pub last: SystemTime,
    /// Of that end state.
    pub reason: Option<String>,
    /// Why cleanup left it DIRTY.
    pub cleanup_reason: Option<String>,
    pub run_folder: Option<PathBuf>,
    /// Its pcap, when its packets were captured.
    pub pcap: Option<PathBuf>,
    /// Whether its folder stayed as evidence or went, once it is over.
    pub folder_fate: Option<Fate>,
    /// What the front end made of the run in post-run (its addresses, maybe its ladder).
    pub evidence: Option<Attachment>,
}

impl RunRecord {
    fn new(e: &TestStateEvent) -> Self {
        RunRecord {
            index: e.index,
            attempt: e.attempt,
            earlier: Vec::new(),
            name: e.name.0.clone(),
            run_id: e.run_id.0.clone(),
            run_id_number: e.run_id_number.clone(),
            started: e.at,
            state: e.state,
            reached_ready: false,
            result: None,
            took: None,
            cps: None,
            sipp_time: None,
            stats: None,
            last: e.at,
            reason: None,
            cleanup_reason: None,
            run_folder: None,
            pcap: None,
            folder_fate: None,
            evidence: None,
        }
    }

    fn update(&mut self, e: &TestStateEvent) {
        self.state = e.state;
        self.last = e.at;
        if e.run_folder.is_some() {
            self.run_folder.clone_from(&e.run_folder);
        }
        if e.pcap.is_some() {
            self.pcap.clone_from(&e.pcap);
        }
        if e.folder_fate.is_some() {
            self.folder_fate = e.folder_fate;
        }
        if e.evidence.is_some() {
            self.evidence.clone_from(&e.evidence);
        }
        let result = match e.state {
            StateName::Created | StateName::Preparing => None,
            StateName::NotReady => Some(RunResult::NotReady),
            StateName::Success => Some(RunResult::Success),
            StateName::Fail => Some(RunResult::Fail),
            StateName::Ready
            | StateName::DryRunning
            | StateName::Starting
            | StateName::Cleaning
            | StateName::Clean
            | StateName::Dirty => {
                self.reached_ready = true;
                None
            }
        };
        if let Some(result) = result {
            self.result = Some(result);
            self.took = e.took;
            self.cps = e.cps;
            self.sipp_time = e.sipp_time;
            self.stats = e.stats;
            self.reason = e.reason.as_deref().map(one_line);
        }
        if e.state == StateName::Dirty {
            self.cleanup_reason = e.reason.as_deref().map(one_line);
        }
    }

    /// A run that ended without a result (interrupted before it ran, or killed) counts as FAIL
    /// once it got past pre-run, else as NOT READY.
    pub fn result(&self) -> RunResult {
        self.result.unwrap_or(if self.reached_ready {
            RunResult::Fail
        } else {
            RunResult::NotReady
        })
    }

    /// Nothing more happens to it: NOT READY in pre-run, or cleaned up (CLEAN or DIRTY). A NOT
    /// READY after STARTING (SIPp could not start) is still cleaned up.
    pub fn settled(&self) -> bool {
        match self.state {
            StateName::NotReady => !self.reached_ready,
            StateName::Clean | StateName::Dirty => true,
            _ => false,
        }
    }

    /// Succeeded and cleaned up, as `Outcome::passed` counts it.
    pub fn passed(&self) -> bool {
        self.result == Some(RunResult::Success) && self.state == StateName::Clean
    }

    /// Passed on a retry (`--retries`): FLAKY.
    pub fn flaky(&self) -> bool {
        self.passed() && !self.earlier.is_empty()
    }

    /// Settled, and no retry of it is to come: it passed, or it had all its tries
    /// (`retries` more after the first), or the run is `ended`. (A run that winds down asks
    /// no retry; the last try of a run cut short is final once the run ends.)
    pub fn over(&self, retries: u32, ended: bool) -> bool {
        self.settled() && (ended || self.passed() || self.attempt >= retries)
    }

    /// Takes the event of a new try of this run (`e.attempt` above this record's): this
    /// record becomes the new try, the old one goes to `earlier`.
    fn next_try(&mut self, e: &TestStateEvent) {
        let mut old = std::mem::replace(self, RunRecord::new(e));
        self.earlier = std::mem::take(&mut old.earlier);
        self.earlier.push(old);
    }

    /// Takes one event of this run: of this try, or of a new one.
    fn take(&mut self, e: &TestStateEvent) {
        if e.attempt > self.attempt {
            self.next_try(e);
        }
        self.update(e);
    }

    /// Its folder is there to look at (kept as evidence, `--keep`).
    pub fn folder_kept(&self) -> bool {
        self.folder_fate == Some(Fate::Kept)
    }

    /// The run's time: that of its end state, zero when it never got one.
    pub fn took(&self) -> Duration {
        self.took.unwrap_or_default()
    }

    /// Everything known about why it did not pass, on one line; `None` when nothing is.
    pub fn reason(&self) -> Option<String> {
        let mut parts = Vec::new();
        match (&self.reason, self.result) {
            (Some(r), _) => parts.push(r.clone()),
            (None, Some(_)) => {}
            (None, None) => parts.push(
                if self.reached_ready
                    && matches!(
                        self.state,
                        StateName::Ready
                            | StateName::Cleaning
                            | StateName::Clean
                            | StateName::Dirty
                    )
                {
                    "interrupted before it ran".to_string()
                } else {
                    format!("did not finish (stopped in state {})", self.state)
                },
            ),
        }
        match self.state {
            StateName::Dirty => parts.push(match &self.cleanup_reason {
                Some(r) => format!("cleanup: {r}"),
                None => "cleanup failed".to_string(),
            }),
            StateName::Cleaning if self.result.is_some() => {
                parts.push("cleanup did not finish".to_string())
            }
            _ => {}
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// The end of GLOBAL's pre-run (its before.sh) or post-run (its after.sh).
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalRecord {
    pub error: Option<String>,
    pub took: Duration,
}

/// How the run ended.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd {
    pub outcome: Outcome,
    pub elapsed: Duration,
    pub at: SystemTime,
    pub usage: Option<RunUsage>,
}

/// What the report files need from the event stream, kept until `finish()`.
#[derive(Debug, Default)]
pub struct Collector {
    pub started: Option<SystemTime>,
    /// `--retries`: a run that did not pass is over only once its last try is.
    pub retries: u32,
    pub seed: Option<u64>,
    /// An `Interrupted` event came (also known from the outcome, when the run got to its end).
    pub interrupted: bool,
    pub end: Option<RunEnd>,
    pub global_before: Option<GlobalRecord>,
    pub global_after: Option<GlobalRecord>,
    /// The GLOBAL pseudo-test's own record (run id, folder, its fate), when there is one.
    pub global_run: Option<RunRecord>,
    /// By run index: the runs not yet taken by [`Collector::take_settled`].
    pub runs: BTreeMap<u64, RunRecord>,
    /// The next run index to hand out as settled: reports keep run order.
    next_settled: u64,
    /// Runs handed out as settled, and how many of them passed.
    pub settled: u64,
    pub settled_passed: u64,
    /// Of those, how many were FLAKY.
    pub settled_flaky: u64,
}

impl Collector {
    pub fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                seed, at, retries, ..
            } => {
                self.started = Some(*at);
                self.retries = *retries;
                self.seed = *seed;
            }
            Event::GroupStarted { .. } => {}
            Event::Global(e) => {
                self.global_run
                    .get_or_insert_with(|| RunRecord::new(e))
                    .update(e);
                let record = Some(GlobalRecord {
                    error: e.reason.as_deref().map(one_line),
                    took: e.took.unwrap_or_default(),
                });
                match e.state {
                    StateName::Ready | StateName::NotReady => self.global_before = record,
                    StateName::Clean | StateName::Dirty => self.global_after = record,
                    _ => {}
                }
            }
            Event::Test(e) => self
                .runs
                .entry(e.index)
                .or_insert_with(|| RunRecord::new(e))
                .take(e),
            Event::Interrupted { .. } => self.interrupted = true,
            Event::Progress { .. } | Event::DryRun(_) => {}
            Event::RunFinished {
                outcome,
                elapsed,
                at,
                usage,
            } => {
                self.end = Some(RunEnd {
                    outcome: *outcome,
                    elapsed: *elapsed,
                    at: *at,
                    usage: *usage,
                });
            }
        }
    }

    /// The runs that are over (NOT READY, CLEAN or DIRTY), in run order, taken out of
    /// `runs`; a run that is over waits for the runs before it.
    pub fn take_settled(&mut self) -> Vec<RunRecord> {
        let mut out = Vec::new();
        while let Some(r) = self.runs.get(&self.next_settled) {
            if !r.over(self.retries, self.end.is_some()) {
                break;
            }
            if let Some(r) = self.runs.remove(&self.next_settled) {
                self.settled += 1;
                if r.passed() {
                    self.settled_passed += 1;
                }
                if r.flaky() {
                    self.settled_flaky += 1;
                }
                out.push(r);
            }
            self.next_settled += 1;
        }
        out
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted || self.end.is_some_and(|e| e.outcome.interrupted)
    }

    /// The run's length: as the run told, else from its start to `now`.
    pub fn elapsed(&self, now: SystemTime) -> Duration {
        match (self.end, self.started) {
            (Some(end), _) => end.elapsed,
            (None, Some(started)) => now.duration_since(started).unwrap_or_default(),
            (None, None) => Duration::ZERO,
        }
    }
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A fixed event stream for the snapshot tests of the three sinks.

    use super::*;
    use sipplauncher_actors::core::plan::{RunId, TestName};

    /// 2024-03-01T12:00:00Z.
    pub const T0: u64 = 1_709_294_400;

    pub fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T0) + Duration::from_millis(ms)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn test(
        index: u64,
        name: &str,
        run_id: &str,
        state: StateName,
        at_ms: u64,
        took_ms: Option<u64>,
        cps: Option<f64>,
        reason: Option<&str>,
    ) -> Event {
        Event::Test(TestStateEvent {
            index,
            attempt: 0,
            name: TestName(name.into()),
            run_id: RunId(run_id.into()),
            run_id_number: format!("00000000000{index}"),
            state,
            at: at(at_ms),
            took: took_ms.map(Duration::from_millis),
            cps,
            sipp_time: None,
            stats: None,
            reason: reason.map(str::to_string),
            run_folder: Some(PathBuf::from(format!(
                "/var/tmp/sipplauncher/{name}/{run_id}"
            ))),
            pcap: (!matches!(
                state,
                StateName::Created | StateName::Preparing | StateName::NotReady
            ))
            .then(|| {
                PathBuf::from(format!(
                    "/var/tmp/sipplauncher/{name}/{run_id}/sipp-{run_id}.pcap"
                ))
            }),
            // A failed run's folder is kept, a passing run's removed (`--keep failed`).
            folder_fate: match state {
                StateName::Clean => Some(Fate::Removed),
                StateName::NotReady | StateName::Dirty => Some(Fate::Kept),
                _ => None,
            },
            evidence: None,
        })
    }

    /// The GLOBAL pseudo-test's state event.
    pub fn global(
        state: StateName,
        at_ms: u64,
        took_ms: Option<u64>,
        reason: Option<&str>,
    ) -> Event {
        Event::Global(TestStateEvent {
            index: 0,
            attempt: 0,
            name: TestName("GLOBAL".into()),
            run_id: RunId("global".into()),
            run_id_number: "000000000042".into(),
            state,
            at: at(at_ms),
            took: took_ms.map(Duration::from_millis),
            cps: None,
            sipp_time: None,
            stats: None,
            reason: reason.map(str::to_string),
            run_folder: Some(PathBuf::from("/var/tmp/sipplauncher/GLOBAL/global")),
            pcap: None,
            folder_fate: match state {
                StateName::Clean => Some(Fate::Removed),
                StateName::NotReady | StateName::Dirty => Some(Fate::Kept),
                _ => None,
            },
            evidence: None,
        })
    }

    /// Two groups of two: run 0 passes, run 1 fails and is left DIRTY, run 2 is NOT READY, run 3
    /// passes; the GLOBAL after.sh fails.
    pub fn events() -> Vec<Event> {
        use StateName::*;
        vec![
            Event::RunStarted {
                tests: 3,
                runs: 4,
                repeat: false,
                group: 2,
                window: false,
                seed: Some(42),
                dry_run: false,
                retries: 0,
                at: at(0),
            },
            global(Preparing, 0, None, None),
            global(Ready, 30, Some(30), None),
            Event::GroupStarted { number: 1, size: 2 },
            test(0, "normal-0000", "kqzvxa", Created, 40, None, None, None),
            test(0, "normal-0000", "kqzvxa", Preparing, 40, None, None, None),
            test(0, "normal-0000", "kqzvxa", Ready, 90, None, None, None),
            test(1, "normal-0001", "bcdefg", Preparing, 90, None, None, None),
            test(1, "normal-0001", "bcdefg", Ready, 140, None, None, None),
            test(0, "normal-0000", "kqzvxa", Starting, 140, None, None, None),
            test(1, "normal-0001", "bcdefg", Starting, 140, None, None, None),
            with_stats(
                test(
                    0,
                    "normal-0000",
                    "kqzvxa",
                    Success,
                    1160,
                    Some(1020),
                    Some(1.0234),
                    None,
                ),
                SippStats {
                    calls: 2,
                    successful: 2,
                    failed: 0,
                    setup_time: Some(Duration::from_millis(14)),
                },
            ),
            test(
                1,
                "normal-0001",
                "bcdefg",
                Fail,
                5140,
                Some(5000),
                Some(0.5),
                Some("uac ua1 exited with status 1"),
            ),
            test(1, "normal-0001", "bcdefg", Cleaning, 5140, None, None, None),
            test(
                1,
                "normal-0001",
                "bcdefg",
                Dirty,
                5200,
                Some(60),
                None,
                Some("after.sh exited with status 2"),
            ),
            test(0, "normal-0000", "kqzvxa", Cleaning, 5200, None, None, None),
            test(
                0,
                "normal-0000",
                "kqzvxa",
                Clean,
                5250,
                Some(50),
                None,
                None,
            ),
            Event::GroupStarted { number: 2, size: 2 },
            test(2, "tls-0000", "hijklm", Preparing, 6050, None, None, None),
            test(
                2,
                "tls-0000",
                "hijklm",
                NotReady,
                6062,
                Some(12),
                None,
                Some("before.sh exited with status 1 <&\"'>"),
            ),
            test(
                3,
                "normal-0000",
                "nopqrs",
                Preparing,
                6062,
                None,
                None,
                None,
            ),
            test(3, "normal-0000", "nopqrs", Ready, 6100, None, None, None),
            test(3, "normal-0000", "nopqrs", Starting, 6100, None, None, None),
            test(
                3,
                "normal-0000",
                "nopqrs",
                Success,
                48100,
                Some(42_000),
                None,
                None,
            ),
            test(
                3,
                "normal-0000",
                "nopqrs",
                Cleaning,
                48100,
                None,
                None,
                None,
            ),
            test(
                3,
                "normal-0000",
                "nopqrs",
                Clean,
                48150,
                Some(50),
                None,
                None,
            ),
            global(Cleaning, 48_180, None, None),
            global(
                Dirty,
                48_250,
                Some(70),
                Some("after.sh exited with status 1"),
            ),
            Event::RunFinished {
                outcome: Outcome {
                    total: 4,
                    passed: 2,
                    global_failed: true,
                    ..Outcome::default()
                },
                elapsed: Duration::from_millis(48_250),
                at: at(48_250),
                usage: Some(usage()),
            },
        ]
    }

    /// `--retries 2`, two runs in one group: run 0 (`flaky`) fails its first try and passes
    /// its second (FLAKY); run 1 (`broken`) is NOT READY, then FAILs, then FAILs and is left
    /// DIRTY: it never passes. The retries come after the first tries, as the dispatcher
    /// orders them.
    pub fn retried_events() -> Vec<Event> {
        use StateName::*;
        let t = |index, attempt, run_id: &str, state, at_ms, reason: Option<&str>| {
            let name = if index == 0 { "flaky" } else { "broken" };
            let took = matches!(state, NotReady | Success | Fail | Dirty).then_some(10);
            let mut e = test(index, name, run_id, state, at_ms, took, None, reason);
            if let Event::Test(e) = &mut e {
                e.attempt = attempt;
            }
            e
        };
        let mut events = vec![Event::RunStarted {
            tests: 2,
            runs: 2,
            repeat: false,
            group: 2,
            window: false,
            seed: None,
            dry_run: false,
            retries: 2,
            at: at(0),
        }];
        events.extend([
            t(0, 0, "flakya", Preparing, 0, None),
            t(0, 0, "flakya", Ready, 10, None),
            t(1, 0, "brokea", Preparing, 10, None),
            t(
                1,
                0,
                "brokea",
                NotReady,
                20,
                Some("before.sh exited with status 1"),
            ),
            t(0, 0, "flakya", Starting, 20, None),
            t(
                0,
                0,
                "flakya",
                Fail,
                1000,
                Some("received 'SIP/2.0 503 Busy'"),
            ),
            t(0, 0, "flakya", Cleaning, 1000, None),
            t(0, 0, "flakya", Clean, 1010, None),
        ]);
        for (i, (index, run_id)) in [(1, "brokeb"), (0, "flakyb")].into_iter().enumerate() {
            let at0 = 2000 + i as u64 * 10;
            events.push(t(index, 1, run_id, Preparing, at0, None));
            events.push(t(index, 1, run_id, Ready, at0 + 5, None));
        }
        events.extend([
            t(1, 1, "brokeb", Starting, 2020, None),
            t(0, 1, "flakyb", Starting, 2020, None),
            t(
                1,
                1,
                "brokeb",
                Fail,
                3000,
                Some("uac ua0 exited with status 1"),
            ),
            t(0, 1, "flakyb", Success, 3000, None),
            t(0, 1, "flakyb", Cleaning, 3000, None),
            t(0, 1, "flakyb", Clean, 3010, None),
            t(1, 1, "brokeb", Cleaning, 3010, None),
            t(1, 1, "brokeb", Clean, 3020, None),
            t(1, 2, "brokec", Preparing, 4000, None),
            t(1, 2, "brokec", Ready, 4010, None),
            t(1, 2, "brokec", Starting, 4010, None),
            t(
                1,
                2,
                "brokec",
                Fail,
                5000,
                Some("uac ua0 exited with status 1"),
            ),
            t(1, 2, "brokec", Cleaning, 5000, None),
            t(
                1,
                2,
                "brokec",
                Dirty,
                5010,
                Some("after.sh exited with status 2"),
            ),
            Event::RunFinished {
                outcome: Outcome {
                    total: 2,
                    passed: 1,
                    flaky: 1,
                    retried: 3,
                    ..Outcome::default()
                },
                elapsed: Duration::from_millis(5010),
                at: at(5010),
                usage: None,
            },
        ]);
        events
    }

    /// `event` (a test's) with SIPp's statistics.
    pub fn with_stats(mut event: Event, stats: SippStats) -> Event {
        if let Event::Test(e) = &mut event {
            e.stats = Some(stats);
        }
        event
    }

    /// What the fixture's run cost.
    pub fn usage() -> RunUsage {
        use sipplauncher_actors::sys::usage::{CpuTimes, LoadAvg};
        RunUsage {
            own: CpuTimes {
                user: Duration::from_millis(120),
                system: Duration::from_millis(30),
            },
            children: CpuTimes {
                user: Duration::from_millis(800),
                system: Duration::from_millis(200),
            },
            load_start: Some(LoadAvg {
                one: 0.5,
                five: 0.25,
                fifteen: 0.125,
            }),
            load_end: Some(LoadAvg {
                one: 1.5,
                five: 0.75,
                fifteen: 0.25,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipplauncher_actors::core::dispatch::CancelReason;
    use sipplauncher_actors::messages::SignalKind;

    #[test]
    fn durations() {
        let table = [
            (0, "0ms"),
            (12, "12ms"),
            (999, "999ms"),
            (1_000, "1.00s"),
            (1_250, "1.25s"),
            (9_999, "9.99s"),
            (10_000, "10s"),
            (42_900, "42s"),
            (119_999, "119s"),
            (120_000, "2m00s"),
            (125_000, "2m05s"),
            (3_599_000, "59m59s"),
            (3_723_000, "1h02m03s"),
            (90_000_000, "25h00m00s"),
        ];
        for (ms, text) in table {
            assert_eq!(format_duration(Duration::from_millis(ms)), text, "{ms} ms");
        }
    }

    #[test]
    fn times() {
        let t = UNIX_EPOCH + Duration::from_millis(1_709_296_496_789);
        assert_eq!(rfc3339(t), "2024-03-01T12:34:56.789Z");
        assert_eq!(junit_timestamp(t), "2024-03-01T12:34:56");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let before = UNIX_EPOCH - Duration::from_millis(1);
        assert_eq!(rfc3339(before), "1969-12-31T23:59:59.999Z");
        // A leap year's last day.
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        assert_eq!(rfc3339(t), "2024-12-31T23:59:59.000Z");
        // A leap day; the ends of the years a report can name.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000Z");
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(rfc3339(far), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("report.xml");
        write_atomic(&path, b"one").expect("first");
        write_atomic(&path, b"two").expect("second");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.xml")]);
        let missing = dir.path().join("nope").join("r.xml");
        assert!(write_atomic(&missing, b"x").is_err());
    }

    #[test]
    fn short_reasons_show_a_sip_messages_first_line() {
        let full = "ua0 (uac) call failed, exit status 1: Aborting call on unexpected message for \
                    Call-Id '1-2345@10.99.0.7': while expecting '200' (index 1), received \
                    'SIP/2.0 404 Not Here\r\nVia: SIP/2.0/UDP 10.99.0.7:5060;branch=z9hG4bK-1\r\n\
                    From: <sip:a@b>;tag=1\r\nContent-Length: 0\r\n\r\n'";
        let short = "ua0 (uac) call failed, exit status 1: while expecting '200' (index 1), \
                     received 'SIP/2.0 404 Not Here'";
        assert_eq!(short_reason(full), short);
        // Flattened already (SIPp's error file, read into one line).
        assert_eq!(short_reason(&one_line(&full.replace("\r\n", " "))), short);
        assert_eq!(
            short_reason("x: received 'INVITE sip:bob@10.0.0.1:5060 SIP/2.0 Via: SIP/2.0/UDP h'"),
            "x: received 'INVITE sip:bob@10.0.0.1:5060 SIP/2.0'"
        );
        assert_eq!(
            short_reason("received 'SIP/2.0 180 Ringing'"),
            "received 'SIP/2.0 180 Ringing'"
        );
        // Nothing SIP-shaped: the reason on one line, as it is.
        for plain in [
            "before.sh exited with status 1: oops",
            "received 'garbage here'",
            "multi\nline",
        ] {
            assert_eq!(short_reason(plain), one_line(plain), "{plain:?}");
        }
    }

    #[test]
    fn names_are_printable() {
        assert_eq!(printable("call-0000"), "call-0000");
        assert_eq!(printable("a\u{1b}[31mb\nc"), "a\\u{1b}[31mb\\nc");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn fit_cuts_to_the_width() {
        assert_eq!(fit("abcdef", Some(4)), "abc…");
        assert_eq!(fit("abcd", Some(4)), "abcd");
        assert_eq!(fit("abcdef", None), "abcdef");
        assert_eq!(fit("ééééé", Some(3)), "éé…");
    }

    #[test]
    fn one_line_removes_breaks() {
        assert_eq!(one_line("a\nb\r\tc\n"), "a b  c");
    }

    #[test]
    fn records_follow_the_runs() {
        let mut c = Collector::default();
        for e in fixture::events() {
            c.event(&e);
        }
        assert_eq!(c.runs.len(), 4);
        let r: Vec<_> = c.runs.values().collect();
        assert!(r[0].passed() && r[0].reason().is_none());
        assert_eq!(r[0].took(), Duration::from_millis(1020));
        assert_eq!(
            (r[1].result(), r[1].state),
            (RunResult::Fail, StateName::Dirty)
        );
        assert_eq!(
            r[1].reason().as_deref(),
            Some("uac ua1 exited with status 1; cleanup: after.sh exited with status 2")
        );
        assert_eq!(r[2].result(), RunResult::NotReady);
        assert!(!r[2].passed());
        assert!(r[3].passed());
        assert_eq!(
            c.global_after.as_ref().and_then(|g| g.error.as_deref()),
            Some("after.sh exited with status 1")
        );
        assert_eq!(c.elapsed(SystemTime::now()), Duration::from_millis(48_250));
    }

    #[test]
    fn a_run_cut_short_has_a_result_and_a_reason() {
        use fixture::test;
        use StateName::*;
        let mut c = Collector::default();
        for e in [
            test(0, "a", "aaaaaa", Preparing, 0, None, None, None),
            test(0, "a", "aaaaaa", Ready, 1, None, None, None),
            test(0, "a", "aaaaaa", Cleaning, 2, None, None, None),
            test(0, "a", "aaaaaa", Clean, 3, Some(1), None, None),
            test(1, "b", "bbbbbb", Preparing, 0, None, None, None),
            test(2, "c", "cccccc", Preparing, 0, None, None, None),
            test(2, "c", "cccccc", Ready, 1, None, None, None),
            test(2, "c", "cccccc", Starting, 1, None, None, None),
            test(3, "d", "dddddd", Preparing, 0, None, None, None),
            test(3, "d", "dddddd", Ready, 1, None, None, None),
            test(3, "d", "dddddd", Starting, 1, None, None, None),
            test(3, "d", "dddddd", Success, 1, Some(5), None, None),
            test(3, "d", "dddddd", Cleaning, 1, None, None, None),
            Event::Interrupted {
                signal: SignalKind::Interrupt,
                reason: CancelReason::Signal,
            },
        ] {
            c.event(&e);
        }
        assert!(c.interrupted());
        let r: Vec<_> = c.runs.values().collect();
        assert_eq!(r[0].result(), RunResult::Fail);
        assert_eq!(r[0].reason().as_deref(), Some("interrupted before it ran"));
        assert_eq!(r[1].result(), RunResult::NotReady);
        assert_eq!(
            r[1].reason().as_deref(),
            Some("did not finish (stopped in state PREPARING)")
        );
        assert_eq!(r[2].result(), RunResult::Fail);
        assert_eq!(
            r[2].reason().as_deref(),
            Some("did not finish (stopped in state STARTING)")
        );
        assert!(!r[3].passed());
        assert_eq!(r[3].reason().as_deref(), Some("cleanup did not finish"));
    }

    /// SIPp refused to start: NOT READY after STARTING, then cleaned up; the run is settled
    /// (handed to the report files) only once cleanup is over, and stays NOT READY.
    #[test]
    fn not_ready_after_starting_settles_after_its_cleanup() {
        use fixture::test;
        use StateName::*;
        let why = "uac_ua0 (uac) could not start, exit status 1: No injection file was specified!";
        let mut c = Collector::default();
        for e in [
            test(0, "a", "aaaaaa", Preparing, 0, None, None, None),
            test(0, "a", "aaaaaa", Ready, 1, None, None, None),
            test(0, "a", "aaaaaa", Starting, 2, None, None, None),
            test(0, "a", "aaaaaa", NotReady, 3, Some(1), None, Some(why)),
            test(1, "b", "bbbbbb", Preparing, 0, None, None, None),
            test(
                1,
                "b",
                "bbbbbb",
                NotReady,
                1,
                Some(1),
                None,
                Some("before.sh failed"),
            ),
        ] {
            c.event(&e);
        }
        assert!(
            c.take_settled().is_empty(),
            "a's cleanup is still due, b waits for a"
        );
        for e in [
            test(0, "a", "aaaaaa", Cleaning, 4, None, None, None),
            test(0, "a", "aaaaaa", Clean, 5, Some(1), None, None),
        ] {
            c.event(&e);
        }
        let settled = c.take_settled();
        assert_eq!(settled.len(), 2);
        assert_eq!(
            (settled[0].result(), settled[0].state),
            (RunResult::NotReady, Clean)
        );
        assert_eq!(settled[0].reason().as_deref(), Some(why));
        assert!(!settled[0].passed());
        assert_eq!(settled[1].result(), RunResult::NotReady);
        assert_eq!((c.settled, c.settled_passed), (2, 0));
    }

    /// Issue 13.3: the spool and the temporary report beside a report in a folder others can
    /// write are made exclusively, mode 0600, at names nobody can foresee, never through a
    /// symlink: what was planted at the names they had (`.<name>.<pid>.spool`, `.tmp`) is
    /// neither written to nor read back, and the report replaces a symlink at its name.
    #[test]
    fn spool_and_temporary_files_cannot_be_planted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.json");
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        let pid = std::process::id();
        for planted in [format!(".r.json.{pid}.spool"), format!(".r.json.{pid}.tmp")] {
            std::os::unix::fs::symlink(&victim, dir.path().join(planted)).unwrap();
        }
        std::os::unix::fs::symlink(&victim, &report).unwrap();
        let (mut a, mut b) = (Spool::beside(&report), Spool::beside(&report));
        a.push("one");
        b.push("two");
        assert_ne!(a.path, b.path);
        assert_eq!(
            fs::symlink_metadata(&a.path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(a.read_all().unwrap(), "one");
        a.push(" more");
        assert_eq!(a.read_all().unwrap(), "one more");
        write_atomic_with(&report, |w| a.copy_to(w)).unwrap();
        assert_eq!(fs::read_to_string(&report).unwrap(), "one more");
        assert!(!fs::symlink_metadata(&report).unwrap().is_symlink());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        let (spool_a, spool_b) = (a.path.clone(), b.path.clone());
        drop(a);
        drop(b);
        assert!(!spool_a.exists() && !spool_b.exists());
        // Only the plants, the victim and the report are left.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 4);
    }
}
