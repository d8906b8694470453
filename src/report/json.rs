//! The JSON report (`--json FILE`): one document with the run's settings, its times, its summary,
//! the GLOBAL scripts and every test run in run order; written at the end.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sipplauncher_actors::events::{Event, EventSink};
use sipplauncher_actors::sys::keep::Fate;
use sipplauncher_actors::sys::usage::{LoadAvg, RunUsage};

use super::evidence::RunAttachment;
use super::{rfc3339, write_atomic_with, Collector, GlobalRecord, RunRecord, Spool};
use crate::ladder::Ladder;
use crate::shard::Shard;

/// What the report says about the run beyond the event stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunMeta {
    pub tool_version: String,
    /// SIPp's version, when it was looked for (`v3.6.1-SCTP-PCAP-RTPSTREAM`).
    pub sipp_version: Option<String>,
    /// As given with `--dut`.
    pub dut: String,
    /// The suite's folder, as given.
    pub testsuite: String,
    pub dry_run: bool,
    pub group: usize,
    /// `--window`: up to `group` tests at once, no groups.
    pub window: bool,
    /// The process's arguments, the program first.
    pub command_line: Vec<String>,
    /// `--fail-expected`: `merge` applies it once to the whole suite.
    pub fail_expected: bool,
    /// `--shard K/N`, when given.
    pub shard: Option<Shard>,
    /// This machine's name: with the shard, where each run ran (kept by `merge`).
    pub host: String,
    /// The names of the tests this run was to run (collected, filtered, its shard's), so that
    /// `merge` and `--rerun-failed` can tell a test that never ran from one that passed.
    pub planned: Vec<String>,
}

/// This machine's name (`/proc/sys/kernel/hostname`: the UTS namespace's, as `hostname` says;
/// a pod's or a CI runner's name), or `"unknown"`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Collects the runs from the event stream and writes the document on `finish()`.
pub struct Json {
    path: PathBuf,
    meta: RunMeta,
    collected: Collector,
    /// The `tests` entries of the runs that are over, each `,`-led but the first: streamed so
    /// that a run of days holds only its running tests in memory.
    spool: Spool,
}

/// The JSON report's document: what `--json` writes and what `report` (and `merge`) read.
/// Fields are only ever added, each with a default, so that older reports still read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonReport {
    pub tool: String,
    pub version: String,
    pub dut: String,
    pub testsuite: String,
    pub command_line: Vec<String>,
    pub dry_run: bool,
    pub group: usize,
    pub window: bool,
    pub seed: Option<u64>,
    /// SIPp's version, when it was looked for.
    pub sipp_version: Option<String>,
    /// `--fail-expected` (`merge` applies it once to the whole suite).
    pub fail_expected: bool,
    /// `--shard K/N`; none without it (and in a merged report, whose runs name theirs).
    pub shard: Option<ShardInfo>,
    /// The machine that ran it; none in a merged report (each run names its own).
    pub host: Option<String>,
    /// The names of the tests it was to run (collected, filtered, its shard's).
    pub planned: Vec<String>,
    pub started: String,
    pub finished: String,
    pub elapsed_s: f64,
    pub interrupted: bool,
    /// It stopped on the tool's own fault (exit status 3).
    pub fatal: bool,
    pub summary: Summary,
    pub global: Globals,
    /// What the run cost the machine; `null` when it never told its end.
    pub usage: Option<Usage>,
    /// Every test run, in run order. Last: a long report is streamed around it.
    pub tests: Vec<JsonRun>,
}

impl JsonReport {
    /// Reads a report written by `--json`.
    pub fn read(path: &Path) -> Result<JsonReport, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let not_ours = |why: String| {
            format!(
                "{} is not a sipplauncher JSON report: {why}",
                path.display()
            )
        };
        let report: JsonReport =
            serde_json::from_str(&text).map_err(|e| not_ours(e.to_string()))?;
        if report.tool != "sipplauncher" {
            return Err(not_ours("no \"tool\": \"sipplauncher\"".into()));
        }
        Ok(report)
    }
}

/// `--shard K/N` in the report: `{"index": K, "total": N, "mode": "count"|"hash"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardInfo {
    pub index: u32,
    pub total: u32,
    pub mode: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub total: u64,
    /// FLAKY runs included.
    pub success: u64,
    pub failed: u64,
    /// `--retries`: runs that passed on a retry (in `success` too); absent when none did.
    #[serde(skip_serializing_if = "is_zero")]
    pub flaky: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// sipplauncher's own CPU during the run (all its threads), that of the processes it started
/// and reaped (SIPp, scripts), and the host's load averages (1, 5, 15 minutes) at start and end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    pub children_cpu_user_s: f64,
    pub children_cpu_system_s: f64,
    pub load_start: Option<[f64; 3]>,
    pub load_end: Option<[f64; 3]>,
}

impl Usage {
    fn of(u: &RunUsage) -> Usage {
        let load = |l: Option<LoadAvg>| l.map(|l| [l.one, l.five, l.fifteen]);
        Usage {
            cpu_user_s: micros(u.own.user),
            cpu_system_s: micros(u.own.system),
            children_cpu_user_s: micros(u.children.user),
            children_cpu_system_s: micros(u.children.system),
            load_start: load(u.load_start),
            load_end: load(u.load_end),
        }
    }

    /// sipplauncher's own CPU, user and system.
    pub fn cpu_s(&self) -> f64 {
        self.cpu_user_s + self.cpu_system_s
    }

    /// Its children's CPU (SIPp, scripts), user and system.
    pub fn children_cpu_s(&self) -> f64 {
        self.children_cpu_user_s + self.children_cpu_system_s
    }
}

/// What SIPp counted of a run's calls (its UAC instances).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Calls {
    pub created: u64,
    pub successful: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Globals {
    pub before: Option<Global>,
    pub after: Option<Global>,
    /// GLOBAL's own run (absent without a GLOBAL folder).
    pub run_id: Option<String>,
    pub run_folder: Option<String>,
    /// Its folder stays as evidence (a script failed, `--keep`).
    pub run_folder_kept: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Global {
    pub ok: bool,
    pub error: Option<String>,
    pub took_s: f64,
}

/// One test run of the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonRun {
    pub index: u64,
    pub name: String,
    pub run_id: String,
    pub run_id_number: String,
    /// `SUCCESS`, `FAIL`, `NOT READY`.
    pub result: String,
    /// The last state: `CLEAN`, `DIRTY`, `NOT READY`, ...
    pub state: String,
    pub passed: bool,
    pub started: String,
    pub took_s: f64,
    pub cps: Option<f64>,
    /// From PREPARING to CLEAN/DIRTY/NOT READY.
    pub wall_s: f64,
    /// How long its SIPp processes ran (real runs).
    pub sipp_s: Option<f64>,
    /// SIPp's counts of the calls of its UACs (real runs whose statistics were read).
    pub calls: Option<Calls>,
    /// The call setup time the scenario measures with `rtd` (SIPp's first response-time
    /// timer, its mean over the calls), in milliseconds; `null` when it measures none.
    pub setup_ms: Option<f64>,
    pub reason: Option<String>,
    pub run_folder: Option<String>,
    /// The run folder stays (`--keep`): the evidence is there to look at.
    pub run_folder_kept: bool,
    /// `kept`, `removed`, `removed_over_keep_max` (a failure, but `--keep-max` folders were
    /// kept already); null while the run is not over.
    pub run_folder_fate: Option<Fate>,
    /// The run's pcap, in its run folder (there while the folder is kept).
    pub pcap: Option<String>,
    /// Each instance's label (`uac_ua1`) and address in this run (runs that got past pre-run).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub addresses: BTreeMap<String, Ipv4Addr>,
    /// The run's SIP ladder, for the runs the HTML report draws (see `report::evidence`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ladder: Option<Arc<Ladder>>,
    /// Why its pcap gave no ladder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ladder_error: Option<String>,
    /// Its shard's K (`--shard K/N`); none without `--shard`.
    pub shard: Option<u32>,
    /// The machine it ran on.
    pub host: Option<String>,
    /// `--retries`: it passed on a retry (and `passed` is true).
    #[serde(skip_serializing_if = "is_false")]
    pub flaky: bool,
    /// `--retries`: which try this entry is, from 0 (the run's last in `tests`).
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub attempt: u32,
    /// `--retries`: the run's earlier tries, which did not pass, first try first: each with
    /// its own run id, result, reason, run folder.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tries: Vec<JsonRun>,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

impl JsonRun {
    /// Whether the run's SIP part succeeded (SUCCESS, whatever its cleanup).
    pub fn succeeded(&self) -> bool {
        self.result == "SUCCESS"
    }
}

impl Json {
    pub fn new(path: PathBuf, meta: RunMeta) -> Self {
        Json {
            spool: Spool::beside(&path),
            path,
            meta,
            collected: Collector::default(),
        }
    }

    /// Moves the entries of the runs that are over to the spool.
    fn spool_settled(&mut self) {
        for r in self.collected.take_settled() {
            match serde_json::to_string_pretty(&JsonRun::of_run(&r, &self.meta)) {
                Ok(text) => {
                    let lead = if self.spool.count == 0 { "" } else { ",\n" };
                    self.spool.push(&format!("{lead}{}", indent(&text, 4)));
                }
                // Only plain data here: cannot fail; kept out of the report if it ever did.
                Err(_) => continue,
            }
        }
    }

    /// The document around the spooled entries: what comes before them and after them.
    fn head_and_tail(&self, now: SystemTime) -> Result<(String, String), serde_json::Error> {
        let mut doc = serde_json::to_value(self.document(now))?;
        let rest = doc
            .as_object_mut()
            .and_then(|o| o.remove("tests"))
            .unwrap_or_default();
        let rest: Vec<String> = rest
            .as_array()
            .map(|a| a.iter().map(serde_json::to_string_pretty).collect())
            .unwrap_or_else(|| Ok(Vec::new()))?;
        let mut head = serde_json::to_string_pretty(&doc)?;
        // `{ ...\n}`: reopen the object for the tests array, which comes last.
        head.truncate(head.trim_end().len() - 1);
        let head = format!("{},\n  \"tests\": [\n", head.trim_end());
        let mut tail = String::new();
        for (i, t) in rest.iter().enumerate() {
            if i > 0 || self.spool.count > 0 {
                tail.push_str(",\n");
            }
            tail.push_str(&indent(t, 4));
        }
        tail.push_str("\n  ]\n}\n");
        Ok((head, tail))
    }

    /// The whole document, as of `now` (the end time when the run never told its end); in
    /// memory: for tests and small runs.
    pub fn render(&mut self, now: SystemTime) -> Result<String, serde_json::Error> {
        let (head, tail) = self.head_and_tail(now)?;
        let body = self.spool.read_all().unwrap_or_default();
        Ok(format!("{head}{body}{tail}"))
    }

    fn document(&self, now: SystemTime) -> JsonReport {
        document(&self.meta, &self.collected, now)
    }
}

/// The report as of `now`, its `tests` the runs still held by `c` (not yet taken as settled).
pub(crate) fn document(meta: &RunMeta, c: &Collector, now: SystemTime) -> JsonReport {
    let summary = match c.end {
        Some(end) => Summary {
            total: end.outcome.total,
            success: end.outcome.passed,
            failed: end.outcome.failed(),
            flaky: end.outcome.flaky,
        },
        // Cut short before its end: count what the records say.
        None => {
            let total = c.runs.len() as u64 + c.settled;
            let success = c.runs.values().filter(|r| r.passed()).count() as u64 + c.settled_passed;
            let flaky = c.runs.values().filter(|r| r.flaky()).count() as u64 + c.settled_flaky;
            Summary {
                total,
                success,
                failed: total - success,
                flaky,
            }
        }
    };
    JsonReport {
        tool: "sipplauncher".into(),
        version: meta.tool_version.clone(),
        dut: meta.dut.clone(),
        testsuite: meta.testsuite.clone(),
        command_line: meta.command_line.clone(),
        dry_run: meta.dry_run,
        group: meta.group,
        window: meta.window,
        seed: c.seed,
        sipp_version: meta.sipp_version.clone(),
        fail_expected: meta.fail_expected,
        shard: meta.shard.map(|s| ShardInfo {
            index: s.index,
            total: s.total,
            mode: s.mode.as_str().into(),
        }),
        host: Some(meta.host.clone()),
        planned: meta.planned.clone(),
        started: rfc3339(c.started.unwrap_or(now)),
        finished: rfc3339(c.end.map_or(now, |e| e.at)),
        elapsed_s: secs(c.elapsed(now)),
        interrupted: c.interrupted(),
        fatal: c.end.is_some_and(|e| e.outcome.fatal),
        summary,
        global: Globals {
            before: c.global_before.as_ref().map(Global::of),
            after: c.global_after.as_ref().map(Global::of),
            run_id: c.global_run.as_ref().map(|g| g.run_id.clone()),
            run_folder: c
                .global_run
                .as_ref()
                .and_then(|g| g.run_folder.as_ref())
                .map(|p| p.display().to_string()),
            run_folder_kept: c.global_run.as_ref().is_some_and(RunRecord::folder_kept),
        },
        usage: c.end.and_then(|e| e.usage).as_ref().map(Usage::of),
        tests: c.runs.values().map(|r| JsonRun::of_run(r, meta)).collect(),
    }
}

impl Global {
    fn of(g: &GlobalRecord) -> Global {
        Global {
            ok: g.error.is_none(),
            error: g.error.clone(),
            took_s: secs(g.took),
        }
    }
}

impl JsonRun {
    pub(crate) fn of(r: &RunRecord) -> JsonRun {
        let evidence = r.evidence.as_ref().and_then(RunAttachment::of);
        JsonRun {
            index: r.index,
            name: r.name.clone(),
            run_id: r.run_id.clone(),
            run_id_number: r.run_id_number.clone(),
            result: r.result().as_str().into(),
            state: r.state.as_str().into(),
            passed: r.passed(),
            started: rfc3339(r.started),
            took_s: secs(r.took()),
            cps: r.cps,
            wall_s: secs(r.last.duration_since(r.started).unwrap_or_default()),
            sipp_s: r.sipp_time.map(secs),
            calls: r.stats.map(|s| Calls {
                created: s.calls,
                successful: s.successful,
                failed: s.failed,
            }),
            setup_ms: r
                .stats
                .and_then(|s| s.setup_time)
                .map(|d| micros(d) * 1_000.0),
            reason: r.reason(),
            run_folder: r.run_folder.as_ref().map(|p| p.display().to_string()),
            run_folder_kept: r.folder_kept(),
            run_folder_fate: r.folder_fate,
            pcap: r.pcap.as_ref().map(|p| p.display().to_string()),
            addresses: evidence.map(|e| e.addresses.clone()).unwrap_or_default(),
            ladder: evidence.and_then(|e| e.ladder.clone()),
            ladder_error: evidence.and_then(|e| e.ladder_error.clone()),
            shard: None,
            host: None,
            flaky: r.flaky(),
            attempt: r.attempt,
            tries: r.earlier.iter().map(JsonRun::of).collect(),
        }
    }

    /// [`JsonRun::of`], with the shard and the host of the run it belongs to.
    pub(crate) fn of_run(r: &RunRecord, meta: &RunMeta) -> JsonRun {
        let shard = meta.shard.map(|s| s.index);
        let host = Some(meta.host.clone());
        let mut run = JsonRun::of(r);
        for t in &mut run.tries {
            t.shard = shard;
            t.host.clone_from(&host);
        }
        JsonRun { shard, host, ..run }
    }
}

/// Seconds, to the millisecond (no float noise like 1.0200000000000001).
pub(crate) fn secs(d: Duration) -> f64 {
    d.as_millis() as f64 / 1_000.0
}

/// Seconds, to the microsecond (CPU times: a run's own CPU is often a few milliseconds).
fn micros(d: Duration) -> f64 {
    d.as_micros() as f64 / 1_000_000.0
}

impl EventSink for Json {
    fn event(&mut self, event: &Event) {
        self.collected.event(event);
        if matches!(event, Event::Test(_)) {
            self.spool_settled();
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        let what = format!("write the json report {}", self.path.display());
        let (head, tail) = self
            .head_and_tail(SystemTime::now())
            .map_err(|e| format!("{what}: {e}"))?;
        let spool = &mut self.spool;
        write_atomic_with(&self.path, |w| {
            w.write_all(head.as_bytes())?;
            spool.copy_to(w)?;
            w.write_all(tail.as_bytes())
        })
        .inspect(|()| self.spool.remove())
        .map_err(|e| format!("{what}: {e}"))
    }
}

/// `text` with every line indented by `n` spaces.
fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use serde_json::{json, Value};
    use sipplauncher_actors::core::dispatch::CancelReason;
    use sipplauncher_actors::core::state::StateName;
    use sipplauncher_actors::messages::SignalKind;

    fn meta() -> RunMeta {
        RunMeta {
            tool_version: "0.1.0".into(),
            sipp_version: Some("v3.6.1".into()),
            dut: "10.22.22.24".into(),
            testsuite: "./suite".into(),
            dry_run: false,
            group: 2,
            window: false,
            command_line: vec!["sipplauncher".into(), "--dut".into(), "10.22.22.24".into()],
            fail_expected: false,
            shard: Some(Shard {
                index: 2,
                total: 3,
                mode: crate::shard::ShardMode::Count,
            }),
            host: "runner-b".into(),
            planned: vec![
                "normal-0000".into(),
                "normal-0001".into(),
                "tls-0000".into(),
            ],
        }
    }

    fn json_of(events: &[Event]) -> Json {
        let mut j = Json::new(PathBuf::from("unused.json"), meta());
        for e in events {
            j.event(e);
        }
        j
    }

    /// `--retries`: a run is one entry with its earlier tries; FLAKY counts as passed.
    #[test]
    fn every_try_with_its_reason() {
        let mut j = json_of(&fixture::retried_events());
        let text = j.render(SystemTime::now()).expect("serializes");
        let v: Value = serde_json::from_str(&text).expect("one JSON document");
        assert_eq!(
            v["summary"],
            json!({"total": 2, "success": 1, "failed": 1, "flaky": 1})
        );
        let tests = v["tests"].as_array().expect("tests");
        assert_eq!(tests.len(), 2, "one entry a run, not a try");
        let flaky = &tests[0];
        assert_eq!(flaky["name"], "flaky");
        assert_eq!(flaky["run_id"], "flakyb");
        assert_eq!(
            (flaky["passed"].clone(), flaky["flaky"].clone()),
            (json!(true), json!(true))
        );
        assert_eq!(flaky["attempt"], 1);
        let tries = flaky["tries"].as_array().expect("tries");
        assert_eq!(tries.len(), 1);
        assert_eq!(tries[0]["run_id"], "flakya");
        assert_eq!(tries[0]["result"], "FAIL");
        assert_eq!(tries[0]["reason"], "received 'SIP/2.0 503 Busy'");
        assert_eq!(tries[0]["shard"], 2, "a try names its shard too");
        let broken = &tests[1];
        assert_eq!(broken["passed"], false);
        assert!(broken.get("flaky").is_none());
        assert_eq!(broken["attempt"], 2);
        assert_eq!(broken["state"], "DIRTY");
        let tries: Vec<(&str, &str)> = broken["tries"]
            .as_array()
            .expect("tries")
            .iter()
            .map(|t| (t["run_id"].as_str().unwrap(), t["result"].as_str().unwrap()))
            .collect();
        assert_eq!(tries, [("brokea", "NOT READY"), ("brokeb", "FAIL")]);
        // What `report` and `merge` read back.
        let back: JsonReport = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back.summary.flaky, 1);
        assert_eq!(
            back.tests[1].tries[0].reason.as_deref(),
            Some("before.sh exited with status 1")
        );
    }

    /// A try that did not pass stays in memory until its retry: the entry is written whole.
    #[test]
    fn a_try_waits_for_its_retry_before_it_is_spooled() {
        let events = fixture::retried_events();
        let mut j = Json::new(PathBuf::from("unused.json"), meta());
        for e in &events {
            j.event(e);
            if let Event::Test(t) = e {
                if t.run_id.0 == "flakya" && t.state == StateName::Clean {
                    assert_eq!(
                        j.collected.take_settled().len(),
                        0,
                        "run 0 waits for its retry"
                    );
                }
            }
        }
        let settled = j.collected.take_settled();
        assert!(j.collected.runs.is_empty());
        let _ = settled;
    }

    #[test]
    fn snapshot_field_by_field() {
        let mut j = json_of(&fixture::events());
        let text = j.render(SystemTime::now()).expect("serializes");
        let v: Value = serde_json::from_str(&text).expect("one JSON document");
        assert_eq!(v["tool"], "sipplauncher");
        assert_eq!(v["version"], "0.1.0");
        assert_eq!(v["dut"], "10.22.22.24");
        assert_eq!(v["testsuite"], "./suite");
        assert_eq!(
            v["command_line"],
            json!(["sipplauncher", "--dut", "10.22.22.24"])
        );
        assert_eq!(v["dry_run"], false);
        assert_eq!(v["group"], 2);
        assert_eq!(v["seed"], 42);
        assert_eq!(v["sipp_version"], "v3.6.1");
        assert_eq!(v["started"], "2024-03-01T12:00:00.000Z");
        assert_eq!(v["finished"], "2024-03-01T12:00:48.250Z");
        assert_eq!(v["elapsed_s"], 48.25);
        assert_eq!(v["interrupted"], false);
        assert_eq!(v["fatal"], false);
        assert_eq!(v["fail_expected"], false);
        assert_eq!(v["shard"], json!({"index": 2, "total": 3, "mode": "count"}));
        assert_eq!(v["host"], "runner-b");
        assert_eq!(
            v["planned"],
            json!(["normal-0000", "normal-0001", "tls-0000"])
        );
        assert_eq!(v["summary"], json!({"total": 4, "success": 2, "failed": 2}));
        assert_eq!(
            v["global"],
            json!({
                "before": {"ok": true, "error": null, "took_s": 0.03},
                "after": {"ok": false, "error": "after.sh exited with status 1", "took_s": 0.07},
                "run_id": "global",
                "run_folder": "/var/tmp/sipplauncher/GLOBAL/global",
                "run_folder_kept": true,
            })
        );
        let tests = v["tests"].as_array().expect("tests");
        assert_eq!(tests.len(), 4);
        assert_eq!(
            tests[0],
            json!({
                "index": 0,
                "name": "normal-0000",
                "run_id": "kqzvxa",
                "run_id_number": "000000000000",
                "result": "SUCCESS",
                "state": "CLEAN",
                "passed": true,
                "started": "2024-03-01T12:00:00.040Z",
                "took_s": 1.02,
                "cps": 1.0234,
                "wall_s": 5.21,
                "sipp_s": null,
                "calls": {"created": 2, "successful": 2, "failed": 0},
                "setup_ms": 14.0,
                "reason": null,
                "run_folder": "/var/tmp/sipplauncher/normal-0000/kqzvxa",
                "run_folder_kept": false,
                "run_folder_fate": "removed",
                "pcap": "/var/tmp/sipplauncher/normal-0000/kqzvxa/sipp-kqzvxa.pcap",
                "shard": 2,
                "host": "runner-b",
            })
        );
        assert_eq!(tests[1]["calls"], Value::Null, "no statistics read");
        assert_eq!(tests[1]["setup_ms"], Value::Null);
        assert_eq!(
            v["usage"],
            json!({
                "cpu_user_s": 0.12,
                "cpu_system_s": 0.03,
                "children_cpu_user_s": 0.8,
                "children_cpu_system_s": 0.2,
                "load_start": [0.5, 0.25, 0.125],
                "load_end": [1.5, 0.75, 0.25],
            })
        );
        // The evidence of a failure is kept, and said so.
        assert_eq!(tests[1]["run_folder_kept"], true);
        assert_eq!(tests[1]["run_folder_fate"], "kept");
        assert_eq!(tests[1]["result"], "FAIL");
        assert_eq!(tests[1]["state"], "DIRTY");
        assert_eq!(tests[1]["passed"], false);
        assert_eq!(tests[1]["cps"], 0.5);
        assert_eq!(
            tests[1]["reason"],
            "uac ua1 exited with status 1; cleanup: after.sh exited with status 2"
        );
        assert_eq!(tests[2]["result"], "NOT READY");
        assert_eq!(tests[2]["state"], "NOT READY");
        assert_eq!(tests[2]["took_s"], 0.012);
        assert_eq!(tests[2]["reason"], "before.sh exited with status 1 <&\"'>");
        assert_eq!(tests[2]["cps"], Value::Null);
        assert_eq!(tests[3]["index"], 3);
        assert_eq!(tests[3]["name"], "normal-0000");
        assert_eq!(tests[3]["took_s"], 42.0);
        assert_eq!(tests[3]["passed"], true);
        // The fields, in this order.
        let keys: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        let mut expected = vec![
            "tool",
            "version",
            "dut",
            "testsuite",
            "command_line",
            "dry_run",
            "group",
            "window",
            "seed",
            "sipp_version",
            "fail_expected",
            "shard",
            "host",
            "planned",
            "started",
            "finished",
            "elapsed_s",
            "interrupted",
            "fatal",
            "summary",
            "global",
            "usage",
            "tests",
        ];
        expected.sort_unstable();
        assert_eq!(sorted, expected);
    }

    #[test]
    fn a_run_cut_short() {
        let mut j = json_of(&[
            Event::RunStarted {
                tests: 1,
                runs: 1,
                repeat: false,
                group: 1,
                window: false,
                seed: None,
                dry_run: false,
                retries: 0,
                at: fixture::at(0),
            },
            fixture::test(0, "a", "aaaaaa", StateName::Preparing, 10, None, None, None),
            fixture::test(0, "a", "aaaaaa", StateName::Ready, 20, None, None, None),
            Event::Interrupted {
                signal: SignalKind::Interrupt,
                reason: CancelReason::Signal,
            },
            fixture::test(0, "a", "aaaaaa", StateName::Cleaning, 30, None, None, None),
            fixture::test(0, "a", "aaaaaa", StateName::Clean, 40, Some(10), None, None),
        ]);
        let v: Value = serde_json::from_str(&j.render(fixture::at(2_500)).expect("serializes"))
            .expect("one JSON document");
        assert_eq!(v["seed"], Value::Null);
        assert_eq!(v["interrupted"], true);
        assert_eq!(v["finished"], "2024-03-01T12:00:02.500Z");
        assert_eq!(v["elapsed_s"], 2.5);
        assert_eq!(v["summary"], json!({"total": 1, "success": 0, "failed": 1}));
        assert_eq!(
            v["global"],
            json!({"before": null, "after": null, "run_id": null, "run_folder": null,
                   "run_folder_kept": false})
        );
        assert_eq!(v["usage"], Value::Null, "no end, no usage");
        assert_eq!(v["tests"][0]["result"], "FAIL");
        assert_eq!(v["tests"][0]["state"], "CLEAN");
        assert_eq!(v["tests"][0]["took_s"], 0.0);
        assert_eq!(v["tests"][0]["reason"], "interrupted before it ran");
    }

    #[test]
    fn finish_writes_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("report.json");
        let mut j = Json::new(path.clone(), meta());
        for e in fixture::events() {
            j.event(&e);
        }
        j.finish().expect("written");
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        assert_eq!(written["summary"]["total"], 4);

        let mut bad = Json::new(dir.path().join("nope").join("r.json"), meta());
        let err = bad.finish().expect_err("no such folder");
        assert!(err.starts_with("write the json report "), "{err}");
    }

    /// 10,000 runs in groups of 10: only the running ones stay in memory (the rest is in the
    /// spool), and the written document holds every run, in run order, and no spool is left.
    #[test]
    fn a_long_run_is_streamed_and_complete() {
        use sipplauncher_actors::core::state::StateName::*;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("long.json");
        let mut j = Json::new(path.clone(), meta());
        let mut most_in_memory = 0;
        for group in 0..1_000u64 {
            let runs: Vec<u64> = (group * 10..group * 10 + 10).collect();
            for &i in &runs {
                for (state, ms) in [(Preparing, 0), (Ready, 1), (DryRunning, 2), (Success, 3)] {
                    j.event(&fixture::test(
                        i,
                        "t",
                        "abcdef",
                        state,
                        ms,
                        Some(1),
                        None,
                        None,
                    ));
                }
            }
            most_in_memory = most_in_memory.max(j.collected.runs.len());
            // Post-run in reverse order.
            for &i in runs.iter().rev() {
                j.event(&fixture::test(
                    i, "t", "abcdef", Cleaning, 4, None, None, None,
                ));
                j.event(&fixture::test(
                    i,
                    "t",
                    "abcdef",
                    Clean,
                    5,
                    Some(1),
                    None,
                    None,
                ));
            }
            assert!(j.collected.runs.is_empty(), "group {group} all spooled");
        }
        assert_eq!(most_in_memory, 10);
        j.finish().expect("written");
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let tests = v["tests"].as_array().expect("tests");
        assert_eq!(tests.len(), 10_000);
        for (i, t) in tests.iter().enumerate() {
            assert_eq!(t["index"], i as u64);
            assert_eq!(t["state"], "CLEAN");
        }
        assert_eq!(v["summary"]["total"], 10_000);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("long.json")],
            "no spool left"
        );
    }
}
