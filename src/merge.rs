//! `sipplauncher merge --json OUT.json [--junit OUT.xml] [--html OUT.html] REPORT.json...`: the
//! JSON reports of a suite's shards (or of separate runs) in, one report of each kind out, as if
//! one machine had run the whole suite. Every run keeps its shard and host; the counts add up;
//! the exit status is the whole suite's, with `--fail-expected` applied once. A missing or
//! truncated report, or a shard of the split with no report, is one line and exit status 2:
//! never a silently smaller report.
//!
//! The runs pass through as they are in the reports (fields this version does not know are
//! kept), so that `--rerun-failed`, `report` and the HTML report read a merged report like a
//! run's own.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde_json::{json, Map, Value};
use sipplauncher_actors::core::dispatch::Outcome;

use crate::exit_code;
use crate::report::html::write_html;
use crate::report::json::JsonReport;
use crate::report::junit::{self, Case, RunCase};
use crate::report::{rfc3339, write_atomic_with, GlobalRecord};

/// Join the JSON reports of a suite's shards into one JSON, JUnit and HTML report.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "sipplauncher merge",
    version,
    about = "Join the JSON reports of a suite's shards (--shard K/N) into one report of each \
             kind; the exit status is the whole suite's",
    disable_version_flag = true,
    args_override_self = true,
    max_term_width = 100
)]
pub struct MergeCli {
    /// Write the merged JSON report to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write the merged JUnit XML report to FILE
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write the merged HTML report to FILE
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// The JSON reports (--json) of the shards, or of any runs of one suite
    #[arg(value_name = "REPORT.json", required = true)]
    pub reports: Vec<PathBuf>,
}

/// Why the reports cannot be merged: one line, exit status 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("give at least one of --json, --junit, --html")]
    NoOutput,
    #[error("{option}: {}", .reason)]
    Output {
        option: &'static str,
        reason: String,
    },
    #[error("{}: {reason}", file.display())]
    Unreadable { file: PathBuf, reason: String },
    #[error("{}: not a whole JSON document (truncated?): {reason}", file.display())]
    Truncated { file: PathBuf, reason: String },
    #[error("{}: not a sipplauncher JSON report: {reason}", file.display())]
    NotAReport { file: PathBuf, reason: String },
    #[error("{} is given twice", file.display())]
    SameFile { file: PathBuf },
    #[error("shard {shard} is in both {} and {}", first.display(), second.display())]
    ShardTwice {
        shard: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{} is shard {shard} of another split than {} ({other})", file.display(), first.display())]
    OtherSplit {
        file: PathBuf,
        shard: String,
        first: PathBuf,
        other: String,
    },
    #[error("no report of {}: {} given", missing.join(", "), given)]
    MissingShards { missing: Vec<String>, given: String },
    #[error("{} is not a shard's report (no --shard) but {} is: merge the shards of one split", file.display(), sharded.display())]
    Unsharded { file: PathBuf, sharded: PathBuf },
    #[error("{} says --fail-expected and {} does not: the shards of one suite run alike", with.display(), without.display())]
    FailExpected { with: PathBuf, without: PathBuf },
    #[error("{} ran against DUT {a} and {} against {b}", first.display(), file.display())]
    OtherDut {
        first: PathBuf,
        a: String,
        file: PathBuf,
        b: String,
    },
}

/// One report read in.
#[derive(Debug)]
pub struct Part {
    pub file: PathBuf,
    /// The whole document, an object.
    pub doc: Map<String, Value>,
}

/// `(K, N, mode)` of a shard's report.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShardOf {
    index: u64,
    total: u64,
    mode: String,
}

impl ShardOf {
    fn label(&self) -> String {
        match self.mode.as_str() {
            "count" => format!("{}/{}", self.index, self.total),
            m => format!("{m}:{}/{}", self.index, self.total),
        }
    }
}

impl Part {
    /// Reads and checks one report: a whole JSON document with the fields a merge relies on.
    pub fn read(file: &Path) -> Result<Part, MergeError> {
        let text = std::fs::read_to_string(file).map_err(|e| MergeError::Unreadable {
            file: file.to_path_buf(),
            reason: match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                _ => e.to_string(),
            },
        })?;
        Part::parse(file, &text)
    }

    fn parse(file: &Path, text: &str) -> Result<Part, MergeError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            let reason = e.to_string();
            if e.is_eof() || e.is_syntax() {
                MergeError::Truncated {
                    file: file.to_path_buf(),
                    reason,
                }
            } else {
                MergeError::NotAReport {
                    file: file.to_path_buf(),
                    reason,
                }
            }
        })?;
        let not = |reason: &str| MergeError::NotAReport {
            file: file.to_path_buf(),
            reason: reason.to_string(),
        };
        let Value::Object(doc) = value else {
            return Err(not("not a JSON object"));
        };
        if doc.get("tool").and_then(Value::as_str) != Some("sipplauncher") {
            return Err(not("no \"tool\": \"sipplauncher\""));
        }
        let Some(tests) = doc.get("tests").and_then(Value::as_array) else {
            return Err(not("no \"tests\" list"));
        };
        if tests
            .iter()
            .any(|t| t.get("name").and_then(Value::as_str).is_none())
        {
            return Err(not("a test run without a name"));
        }
        for key in ["total", "success", "failed"] {
            if doc
                .get("summary")
                .and_then(|s| s.get(key))
                .and_then(Value::as_u64)
                .is_none()
            {
                return Err(not(&format!("no summary.{key}")));
            }
        }
        Ok(Part {
            file: file.to_path_buf(),
            doc,
        })
    }

    fn shard(&self) -> Option<ShardOf> {
        let s = self.doc.get("shard")?;
        Some(ShardOf {
            index: s.get("index")?.as_u64()?,
            total: s.get("total")?.as_u64()?,
            mode: s.get("mode")?.as_str().unwrap_or("count").to_string(),
        })
    }

    fn flag(&self, key: &str) -> bool {
        self.doc.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.doc.get(key).and_then(Value::as_str)
    }

    fn count(&self, key: &str) -> u64 {
        self.doc
            .get("summary")
            .and_then(|s| s.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    fn time(&self, key: &str) -> Option<SystemTime> {
        self.str(key).and_then(parse_rfc3339)
    }

    fn global(&self, which: &str) -> Option<GlobalRecord> {
        let g = self.doc.get("global")?.get(which)?;
        if g.is_null() {
            return None;
        }
        Some(GlobalRecord {
            error: g.get("error").and_then(Value::as_str).map(str::to_string),
            took: Duration::from_secs_f64(g.get("took_s").and_then(Value::as_f64).unwrap_or(0.0)),
        })
    }
}

/// Checks that the parts belong together: no file twice; either no shard reports, or every
/// shard of one split exactly once; one DUT; `--fail-expected` alike.
pub fn check(parts: &[Part]) -> Result<(), MergeError> {
    for (i, p) in parts.iter().enumerate() {
        if let Some(q) = parts[..i].iter().find(|q| same_file(&q.file, &p.file)) {
            return Err(MergeError::SameFile {
                file: q.file.clone(),
            });
        }
    }
    let Some(first) = parts.first() else {
        return Ok(());
    };
    for p in &parts[1..] {
        if first.flag("fail_expected") != p.flag("fail_expected") {
            let (with, without) = if first.flag("fail_expected") {
                (first, p)
            } else {
                (p, first)
            };
            return Err(MergeError::FailExpected {
                with: with.file.clone(),
                without: without.file.clone(),
            });
        }
        if first.str("dut") != p.str("dut") {
            return Err(MergeError::OtherDut {
                first: first.file.clone(),
                a: first.str("dut").unwrap_or("?").to_string(),
                file: p.file.clone(),
                b: p.str("dut").unwrap_or("?").to_string(),
            });
        }
    }
    let Some((lead, split)) = parts.iter().find_map(|p| p.shard().map(|s| (p, s))) else {
        return Ok(());
    };
    let mut seen: BTreeMap<u64, &Part> = BTreeMap::new();
    for p in parts {
        let Some(s) = p.shard() else {
            return Err(MergeError::Unsharded {
                file: p.file.clone(),
                sharded: lead.file.clone(),
            });
        };
        if s.total != split.total || s.mode != split.mode {
            return Err(MergeError::OtherSplit {
                file: p.file.clone(),
                shard: s.label(),
                first: lead.file.clone(),
                other: split.label(),
            });
        }
        if let Some(q) = seen.insert(s.index, p) {
            return Err(MergeError::ShardTwice {
                shard: s.label(),
                first: q.file.clone(),
                second: p.file.clone(),
            });
        }
    }
    let missing: Vec<String> = (1..=split.total)
        .filter(|k| !seen.contains_key(k))
        .map(|index| {
            ShardOf {
                index,
                ..split.clone()
            }
            .label()
        })
        .collect();
    if !missing.is_empty() {
        let given: Vec<String> = seen
            .iter()
            .map(|(&index, p)| {
                let label = ShardOf {
                    index,
                    ..split.clone()
                }
                .label();
                format!("{label} ({})", p.file.display())
            })
            .collect();
        return Err(MergeError::MissingShards {
            missing,
            given: given.join(", "),
        });
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The merged report: the parts' runs (shard by shard, in run order, each with its shard and
/// host), the counts added up, the earliest start and the latest end.
#[derive(Debug)]
pub struct Merged {
    pub doc: Map<String, Value>,
    /// The whole suite's outcome, for the exit status.
    pub outcome: Outcome,
    pub fail_expected: bool,
}

/// Merges checked parts (see [`check`]); `command_line` is the merge's own.
pub fn merge(mut parts: Vec<Part>, command_line: Vec<String>) -> Merged {
    // Shard order, then the order given.
    parts.sort_by_key(|p| p.shard().map(|s| s.index).unwrap_or(0));
    let first_started = parts.iter().filter_map(|p| p.time("started")).min();
    let last_finished = parts.iter().filter_map(|p| p.time("finished")).max();
    let elapsed = match (first_started, last_finished) {
        (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default(),
        _ => Duration::ZERO,
    };
    let mut outcome = Outcome::default();
    let mut tests = Vec::new();
    let mut planned = Vec::new();
    let mut shards = Vec::new();
    let mut globals: [Vec<(String, GlobalRecord)>; 2] = [Vec::new(), Vec::new()];
    let fail_expected = parts.iter().any(|p| p.flag("fail_expected"));
    for part in &mut parts {
        let shard = part.shard();
        let host = part.doc.get("host").cloned().unwrap_or(Value::Null);
        let who = match &shard {
            Some(s) => format!("shard {}", s.label()),
            None => part.file.display().to_string(),
        };
        outcome.total += part.count("total");
        outcome.passed += part.count("success");
        outcome.flaky += part.count("flaky");
        outcome.interrupted |= part.flag("interrupted");
        outcome.fatal |= part.flag("fatal");
        for (i, which) in ["before", "after"].into_iter().enumerate() {
            if let Some(g) = part.global(which) {
                outcome.global_failed |= g.error.is_some();
                globals[i].push((who.clone(), g));
            }
        }
        if let Some(Value::Array(names)) = part.doc.get("planned") {
            planned.extend(names.iter().cloned());
        }
        shards.push(json!({
            "file": part.file.display().to_string(),
            "shard": part.doc.get("shard").cloned().unwrap_or(Value::Null),
            "host": host,
            "command_line": part.doc.get("command_line").cloned().unwrap_or(Value::Null),
            "started": part.doc.get("started").cloned().unwrap_or(Value::Null),
            "finished": part.doc.get("finished").cloned().unwrap_or(Value::Null),
            "elapsed_s": part.doc.get("elapsed_s").cloned().unwrap_or(Value::Null),
            "interrupted": part.flag("interrupted"),
            "fatal": part.flag("fatal"),
            "summary": part.doc.get("summary").cloned().unwrap_or(Value::Null),
            "global": part.doc.get("global").cloned().unwrap_or(Value::Null),
        }));
        let Some(Value::Array(runs)) = part.doc.remove("tests") else {
            continue;
        };
        for mut run in runs {
            if let Value::Object(r) = &mut run {
                // Reports of runs without --shard, or older ones: the report's own say.
                if r.get("shard").is_none_or(Value::is_null) {
                    r.insert(
                        "shard".into(),
                        shard.as_ref().map_or(Value::Null, |s| s.index.into()),
                    );
                }
                if r.get("host").is_none_or(Value::is_null) {
                    r.insert("host".into(), host.clone());
                }
            }
            tests.push(run);
        }
    }
    let first = parts.first();
    let same = |key: &str| -> Value {
        let mut values = parts.iter().map(|p| p.doc.get(key).cloned());
        match values.next().flatten() {
            Some(v) if values.all(|w| w.as_ref() == Some(&v)) => v,
            _ => Value::Null,
        }
    };
    let global = |list: &[(String, GlobalRecord)]| -> Value {
        if list.is_empty() {
            return Value::Null;
        }
        let errors: Vec<String> = list
            .iter()
            .filter_map(|(who, g)| g.error.as_ref().map(|e| format!("{who}: {e}")))
            .collect();
        let took = list.iter().map(|(_, g)| g.took).max().unwrap_or_default();
        json!({
            "ok": errors.is_empty(),
            "error": if errors.is_empty() { Value::Null } else { errors.join("; ").into() },
            "took_s": secs(took),
        })
    };
    let mut doc = Map::new();
    doc.insert("tool".into(), "sipplauncher".into());
    doc.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    doc.insert("dut".into(), same("dut"));
    doc.insert(
        "testsuite".into(),
        first
            .and_then(|p| p.doc.get("testsuite").cloned())
            .unwrap_or(Value::Null),
    );
    doc.insert("command_line".into(), json!(command_line));
    doc.insert(
        "dry_run".into(),
        parts.iter().any(|p| p.flag("dry_run")).into(),
    );
    doc.insert("group".into(), same("group"));
    doc.insert(
        "window".into(),
        parts.iter().any(|p| p.flag("window")).into(),
    );
    doc.insert("seed".into(), same("seed"));
    doc.insert("fail_expected".into(), fail_expected.into());
    // The whole suite: no one shard, no one host (each run names its own).
    doc.insert("shard".into(), Value::Null);
    doc.insert("host".into(), Value::Null);
    doc.insert("planned".into(), Value::Array(planned));
    let now = SystemTime::now();
    doc.insert(
        "started".into(),
        rfc3339(first_started.unwrap_or(now)).into(),
    );
    doc.insert(
        "finished".into(),
        rfc3339(last_finished.unwrap_or(now)).into(),
    );
    doc.insert("elapsed_s".into(), secs(elapsed).into());
    doc.insert("interrupted".into(), outcome.interrupted.into());
    doc.insert("fatal".into(), outcome.fatal.into());
    doc.insert("summary".into(), {
        let mut summary = json!({
            "total": outcome.total,
            "success": outcome.passed,
            "failed": outcome.failed(),
        });
        if outcome.flaky > 0 {
            summary["flaky"] = outcome.flaky.into();
        }
        summary
    });
    doc.insert(
        "global".into(),
        json!({"before": global(&globals[0]), "after": global(&globals[1])}),
    );
    doc.insert("merged_from".into(), Value::Array(shards));
    doc.insert("tests".into(), Value::Array(tests));
    Merged {
        doc,
        outcome,
        fail_expected,
    }
}

impl Merged {
    /// The exit status of the whole suite: every run passed (and the GLOBAL scripts, and no part
    /// was cut short), `--fail-expected` applied once.
    pub fn status(&self) -> i32 {
        exit_code::for_outcome(&self.outcome, self.fail_expected)
    }

    /// The JUnit document of the merged runs (the run's own writer's testcases); the GLOBAL
    /// scripts of all parts as the suite's properties, their failures (naming the shard) as its
    /// `<system-err>`.
    pub fn junit(&self) -> String {
        let cases: Vec<Case> = self
            .doc
            .get("tests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|run| Case::of(run_case(run)))
            .collect();
        let global = |which: &str| -> Option<GlobalRecord> {
            let g = self.doc.get("global")?.get(which)?;
            (!g.is_null()).then(|| GlobalRecord {
                error: g.get("error").and_then(Value::as_str).map(str::to_string),
                took: Duration::from_secs_f64(
                    g.get("took_s").and_then(Value::as_f64).unwrap_or(0.0),
                ),
            })
        };
        let (before, after) = (global("before"), global("after"));
        let started = self
            .doc
            .get("started")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
            .unwrap_or(UNIX_EPOCH);
        let elapsed = self
            .doc
            .get("elapsed_s")
            .and_then(Value::as_f64)
            .map(Duration::from_secs_f64)
            .unwrap_or_default();
        let seed = self.doc.get("seed").and_then(Value::as_u64);
        junit::document(
            &cases,
            elapsed,
            started,
            seed,
            [before.as_ref(), after.as_ref()],
        )
    }
}

/// What a testcase needs of one run of a JSON report.
fn run_case(run: &Value) -> RunCase<'_> {
    let s = |key: &str| run.get(key).and_then(Value::as_str);
    let mut more = Vec::new();
    match (run.get("shard").and_then(Value::as_u64), s("host")) {
        (Some(k), Some(h)) => more.push(format!("shard: {k} on {h}")),
        (Some(k), None) => more.push(format!("shard: {k}")),
        (None, Some(h)) => more.push(format!("host: {h}")),
        (None, None) => {}
    }
    RunCase {
        name: s("name").unwrap_or("?"),
        index: run.get("index").and_then(Value::as_u64).unwrap_or(0),
        run_id: s("run_id").unwrap_or(""),
        run_id_number: s("run_id_number").unwrap_or(""),
        result: s("result").unwrap_or("FAIL"),
        state: s("state").unwrap_or("?"),
        passed: run.get("passed").and_then(Value::as_bool).unwrap_or(false),
        took: Duration::from_secs_f64(run.get("took_s").and_then(Value::as_f64).unwrap_or(0.0)),
        reason: s("reason").map(str::to_string),
        run_folder: s("run_folder").map(str::to_string),
        more,
        tries: run
            .get("tries")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(run_case)
            .collect(),
    }
}

/// Seconds, to the millisecond (as the run's own report).
fn secs(d: Duration) -> f64 {
    d.as_millis() as f64 / 1_000.0
}

/// `2024-03-01T12:34:56.789Z` (as [`rfc3339`] writes it; any RFC 3339 time) back to a time.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

/// The `merge` subcommand with its arguments (after `merge`); returns the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match MergeCli::try_parse_from(std::iter::once(OsString::from("merge")).chain(args)) {
        Ok(c) => c,
        Err(e) => return crate::app::clap_exit(&e),
    };
    match run(&cli) {
        Ok(status) => status,
        Err((status, msg)) => {
            let _ = writeln!(std::io::stderr(), "sipplauncher merge: {msg}");
            status
        }
    }
}

/// Reads, checks, merges and writes; the error is the exit status and one line.
fn run(cli: &MergeCli) -> Result<i32, (i32, String)> {
    let usage = |e: MergeError| (exit_code::USAGE, e.to_string());
    if cli.json.is_none() && cli.junit.is_none() && cli.html.is_none() {
        return Err(usage(MergeError::NoOutput));
    }
    let outputs = [
        ("--json", &cli.json),
        ("--junit", &cli.junit),
        ("--html", &cli.html),
    ];
    for (i, (option, path)) in outputs.iter().enumerate() {
        let Some(path) = path else { continue };
        check_output(option, path, &cli.reports).map_err(usage)?;
        if let Some((other, _)) = outputs[..i]
            .iter()
            .find(|(_, p)| p.as_ref().is_some_and(|p| same_file(p, path)))
        {
            return Err(usage(MergeError::Output {
                option,
                reason: format!("{} is also {other}", path.display()),
            }));
        }
    }
    let parts = cli
        .reports
        .iter()
        .map(|f| Part::read(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    check(&parts).map_err(usage)?;
    let merged = merge(
        parts,
        std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    );
    let internal = |what: &str, path: &Path, e: std::io::Error| {
        (
            exit_code::INTERNAL,
            format!("write the {what} report {}: {e}", path.display()),
        )
    };
    if let Some(path) = &cli.junit {
        let xml = merged.junit();
        write_atomic_with(path, |w| w.write_all(xml.as_bytes()))
            .map_err(|e| internal("junit", path, e))?;
    }
    if let Some(path) = &cli.html {
        // The HTML report's own writer, on the merged report as `report` reads one.
        let report: JsonReport = serde_json::from_value(Value::Object(merged.doc.clone()))
            .map_err(|e| {
                (
                    exit_code::INTERNAL,
                    format!("the merged report does not read back: {e}"),
                )
            })?;
        write_html(&report, path).map_err(|e| (exit_code::INTERNAL, e))?;
    }
    if let Some(path) = &cli.json {
        write_atomic_with(path, |w| {
            serde_json::to_writer_pretty(&mut *w, &merged.doc)?;
            w.write_all(b"\n")
        })
        .map_err(|e| internal("json", path, e))?;
    }
    let s = &merged.outcome;
    let _ = writeln!(
        std::io::stdout(),
        "Merged {} reports: TOTAL: {}, SUCCESS: {}, FAILED: {}{}{}",
        merged
            .doc
            .get("merged_from")
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        s.total,
        s.passed,
        s.failed(),
        // --retries: runs that passed on a retry, counted in SUCCESS.
        if s.flaky > 0 {
            format!(" (FLAKY: {}, in SUCCESS)", s.flaky)
        } else {
            String::new()
        },
        match (s.interrupted, s.global_failed, s.fatal) {
            (true, _, _) => " (a part was interrupted)",
            (_, _, true) => " (a part stopped on the tool's own fault)",
            (_, true, _) => " (a GLOBAL script failed)",
            _ => "",
        }
    );
    Ok(merged.status())
}

/// An output file: its folder exists, it is not a folder, and it is none of the reports read.
fn check_output(option: &'static str, path: &Path, inputs: &[PathBuf]) -> Result<(), MergeError> {
    let bad = |reason: String| MergeError::Output { option, reason };
    if path.is_dir() {
        return Err(bad(format!("{} is a folder", path.display())));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(bad(format!(
                "folder {} of {} does not exist",
                parent.display(),
                path.display()
            )));
        }
    }
    if let Some(input) = inputs.iter().find(|i| same_file(i, path)) {
        return Err(bad(format!(
            "{} is one of the reports to merge",
            input.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(shard: Option<(u64, u64)>, host: &str, runs: &[(&str, bool)]) -> String {
        let tests: Vec<Value> = runs
            .iter()
            .enumerate()
            .map(|(i, (name, passed))| {
                json!({
                    "index": i, "name": name, "run_id": "abcdef",
                    "run_id_number": "000000000000",
                    "result": if *passed { "SUCCESS" } else { "FAIL" },
                    "state": "CLEAN",
                    "passed": passed, "started": "2024-03-01T12:00:00.000Z",
                    "took_s": 1.5, "cps": null, "wall_s": 2.0, "sipp_s": 1.4,
                    "reason": if *passed { Value::Null } else { "uac ua0 exited with status 1".into() },
                    "run_folder": null, "shard": shard.map(|s| s.0), "host": host,
                    "a_field_from_a_later_version": [1, 2],
                })
            })
            .collect();
        let passed = runs.iter().filter(|r| r.1).count();
        json!({
            "tool": "sipplauncher", "version": "0.1.0", "dut": "10.0.0.1",
            "testsuite": "./suite", "command_line": ["sipplauncher"], "dry_run": false,
            "group": 1, "window": false, "seed": null, "fail_expected": false,
            "shard": shard.map(|(k, n)| json!({"index": k, "total": n, "mode": "count"})),
            "host": host,
            "planned": runs.iter().map(|r| r.0).collect::<Vec<_>>(),
            "started": format!("2024-03-01T12:00:0{}.000Z", shard.map_or(0, |s| s.0)),
            "finished": format!("2024-03-01T12:01:0{}.500Z", shard.map_or(0, |s| s.0)),
            "elapsed_s": 60.5, "interrupted": false, "fatal": false,
            "summary": {"total": runs.len(), "success": passed, "failed": runs.len() - passed},
            "global": {"before": null, "after": null},
            "tests": tests,
        })
        .to_string()
    }

    fn part(name: &str, text: &str) -> Part {
        Part::parse(Path::new(name), text).expect(name)
    }

    /// `--retries`: FLAKY runs add up, and the merged JUnit has their tries as Surefire does.
    #[test]
    fn flaky_runs_and_their_tries_are_merged() {
        let with_tries = |text: String, flaky: bool| -> String {
            let mut v: Value = serde_json::from_str(&text).unwrap();
            let run = &mut v["tests"][0];
            run["tries"] = json!([{
                "index": 0, "name": run["name"].clone(), "run_id": "firstt",
                "run_id_number": "000000000001", "result": "FAIL", "state": "CLEAN",
                "passed": false, "reason": "received 'SIP/2.0 503 Busy'",
            }]);
            run["attempt"] = 1.into();
            if flaky {
                run["flaky"] = true.into();
                v["summary"]["flaky"] = 1.into();
            }
            v.to_string()
        };
        let parts = vec![
            part(
                "1.json",
                &with_tries(report(Some((1, 2)), "a", &[("x", true)]), true),
            ),
            part(
                "2.json",
                &with_tries(report(Some((2, 2)), "b", &[("y", false)]), false),
            ),
        ];
        let m = merge(parts, vec!["sipplauncher".into(), "merge".into()]);
        let d = Value::Object(m.doc.clone());
        assert_eq!(
            d["summary"],
            json!({"total": 2, "success": 1, "failed": 1, "flaky": 1})
        );
        assert_eq!(d["tests"][0]["tries"][0]["run_id"], "firstt");
        let x = m.junit();
        assert!(
            x.contains(
                "<flakyFailure message=\"received &apos;SIP/2.0 503 Busy&apos;\" type=\"FAIL\">"
            ),
            "{x}"
        );
        assert!(
            x.contains(
                "<rerunFailure message=\"received &apos;SIP/2.0 503 Busy&apos;\" type=\"FAIL\">"
            ),
            "{x}"
        );
        assert_eq!(m.status(), 1, "y never passed");
    }

    #[test]
    fn counts_add_up_and_runs_keep_shard_and_host() {
        let parts = vec![
            part("2.json", &report(Some((2, 2)), "b", &[("y", false)])),
            part(
                "1.json",
                &report(Some((1, 2)), "a", &[("x", true), ("z", true)]),
            ),
        ];
        check(&parts).expect("one split, complete");
        let m = merge(parts, vec!["sipplauncher".into(), "merge".into()]);
        let d = Value::Object(m.doc.clone());
        assert_eq!(d["summary"], json!({"total": 3, "success": 2, "failed": 1}));
        assert_eq!(d["started"], "2024-03-01T12:00:01.000Z");
        assert_eq!(d["finished"], "2024-03-01T12:01:02.500Z");
        assert_eq!(d["elapsed_s"], 61.5);
        assert_eq!(d["planned"], json!(["x", "z", "y"]));
        let runs = d["tests"].as_array().unwrap();
        let who: Vec<(&str, u64, &str)> = runs
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap(),
                    r["shard"].as_u64().unwrap(),
                    r["host"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(who, [("x", 1, "a"), ("z", 1, "a"), ("y", 2, "b")]);
        // Fields this version does not know pass through.
        assert_eq!(runs[0]["a_field_from_a_later_version"], json!([1, 2]));
        assert_eq!(d["merged_from"].as_array().unwrap().len(), 2);
        assert_eq!(d["merged_from"][1]["host"], "b");
        assert_eq!(m.status(), exit_code::FAILURE);

        let xml = m.junit();
        assert!(
            xml.contains("<testsuites name=\"sipplauncher\" tests=\"3\" failures=\"1\" errors=\"0\" time=\"61.500\">"),
            "{xml}"
        );
        assert!(xml.contains("shard: 2 on b</system-out>"), "{xml}");
        assert!(xml.contains("<failure message=\"uac ua0 exited with status 1\" type=\"FAIL\">"));
    }

    #[test]
    fn fail_expected_is_applied_once_to_the_whole_suite() {
        let with = |text: String| text.replace("\"fail_expected\":false", "\"fail_expected\":true");
        // One shard all passed, the other failed: the suite failed, as expected: 0.
        let parts = vec![
            part("1.json", &with(report(Some((1, 2)), "a", &[("x", true)]))),
            part("2.json", &with(report(Some((2, 2)), "b", &[("y", false)]))),
        ];
        check(&parts).unwrap();
        assert_eq!(merge(parts, vec![]).status(), exit_code::SUCCESS);
        // Every run passed: under --fail-expected that is a failure.
        let parts = vec![
            part("1.json", &with(report(Some((1, 2)), "a", &[("x", true)]))),
            part("2.json", &with(report(Some((2, 2)), "b", &[("y", true)]))),
        ];
        assert_eq!(merge(parts, vec![]).status(), exit_code::FAILURE);
        // Shards that disagree on it are not one suite's.
        let parts = vec![
            part("1.json", &with(report(Some((1, 2)), "a", &[("x", true)]))),
            part("2.json", &report(Some((2, 2)), "b", &[("y", true)])),
        ];
        assert_eq!(
            check(&parts).unwrap_err().to_string(),
            "1.json says --fail-expected and 2.json does not: the shards of one suite run alike"
        );
    }

    #[test]
    fn a_missing_twice_given_or_foreign_shard_is_one_line() {
        let r = |k, n| report(Some((k, n)), "h", &[("x", true)]);
        let cases: Vec<(Vec<(&str, String)>, &str)> =
            vec![
            (
                vec![("a.json", r(1, 3)), ("c.json", r(3, 3))],
                "no report of 2/3: 1/3 (a.json), 3/3 (c.json) given",
            ),
            (
                vec![("a.json", r(1, 2)), ("b.json", r(1, 2))],
                "shard 1/2 is in both a.json and b.json",
            ),
            (
                vec![("a.json", r(1, 2)), ("b.json", r(2, 3))],
                "b.json is shard 2/3 of another split than a.json (1/2)",
            ),
            (
                vec![
                    ("a.json", r(1, 2)),
                    ("b.json", report(None, "h", &[("x", true)])),
                ],
                "b.json is not a shard's report (no --shard) but a.json is: merge the shards of \
                 one split",
            ),
            (
                vec![
                    ("a.json", report(None, "h", &[])),
                    ("b.json", report(None, "h", &[]).replace("10.0.0.1", "10.0.0.9")),
                ],
                "a.json ran against DUT 10.0.0.1 and b.json against 10.0.0.9",
            ),
        ];
        for (files, msg) in cases {
            let parts: Vec<Part> = files.iter().map(|(f, t)| part(f, t)).collect();
            let e = check(&parts).expect_err(msg).to_string();
            assert_eq!(e, msg);
            assert!(!e.contains('\n'));
        }
        // Unsharded reports of one suite merge as they are.
        let parts = vec![
            part("a.json", &report(None, "h1", &[("x", true)])),
            part("b.json", &report(None, "h2", &[("x", true)])),
        ];
        check(&parts).unwrap();
        let m = merge(parts, vec![]);
        assert_eq!(m.doc["tests"][1]["host"], "h2");
        assert_eq!(m.doc["tests"][1]["shard"], Value::Null);
        assert_eq!(m.status(), exit_code::SUCCESS);
    }

    #[test]
    fn a_truncated_or_foreign_report_is_named() {
        let whole = report(Some((1, 1)), "h", &[("x", true), ("y", true)]);
        let cut = &whole[..whole.len() / 2];
        let e = Part::parse(Path::new("s1.json"), cut)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s1.json: not a whole JSON document (truncated?): EOF while parsing"),
            "{e}"
        );
        for (text, why) in [
            ("[1, 2]", "not a JSON object"),
            ("{\"tool\": \"other\"}", "no \"tool\": \"sipplauncher\""),
            (
                "{\"tool\": \"sipplauncher\", \"tests\": []}",
                "no summary.total",
            ),
        ] {
            let e = Part::parse(Path::new("x.json"), text)
                .unwrap_err()
                .to_string();
            assert_eq!(e, format!("x.json: not a sipplauncher JSON report: {why}"));
        }
        let e = Part::read(Path::new("/nonexistent/s2.json"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "/nonexistent/s2.json: no such file");
    }

    #[test]
    fn rfc3339_round_trips() {
        for ms in [0u64, 1, 999, 1_709_294_400_123, 4_102_444_799_999] {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{}", rfc3339(t));
        }
        assert_eq!(parse_rfc3339("2024-03-01"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
