//! The JSON report (`--json FILE`): one document with the run's settings, its times, its summary,
//! the GLOBAL scripts and every test run in run order; written at the end.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use sipplauncher_actors::events::{Event, EventSink};

use super::{rfc3339, write_atomic_with, Collector, GlobalRecord, RunRecord, Spool};
use crate::shard::Shard;

/// What the report says about the run beyond the event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMeta {
    pub tool_version: String,
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

#[derive(Serialize)]
struct Document<'a> {
    tool: &'static str,
    version: &'a str,
    dut: &'a str,
    testsuite: &'a str,
    command_line: &'a [String],
    dry_run: bool,
    group: usize,
    window: bool,
    seed: Option<u64>,
    fail_expected: bool,
    /// `{"index": K, "total": N, "mode": "count"|"hash"}` or null.
    shard: Option<ShardJson>,
    host: &'a str,
    /// The tests this run was to run, by name.
    planned: &'a [String],
    started: String,
    finished: String,
    elapsed_s: f64,
    interrupted: bool,
    /// The run stopped on the tool's own fault (exit status 3).
    fatal: bool,
    summary: Summary,
    global: Globals,
    /// The runs not spooled (still going when the document was made); the spooled ones are
    /// put in front of them when it is written.
    tests: Vec<TestRun<'a>>,
}

#[derive(Serialize)]
struct ShardJson {
    index: u32,
    total: u32,
    mode: &'static str,
}

#[derive(Serialize)]
struct Summary {
    total: u64,
    success: u64,
    failed: u64,
}

#[derive(Serialize)]
struct Globals {
    before: Option<Global>,
    after: Option<Global>,
}

#[derive(Serialize)]
struct Global {
    ok: bool,
    error: Option<String>,
    took_s: f64,
}

#[derive(Serialize)]
struct TestRun<'a> {
    index: u64,
    name: &'a str,
    run_id: &'a str,
    run_id_number: &'a str,
    result: &'static str,
    state: &'static str,
    passed: bool,
    started: String,
    took_s: f64,
    cps: Option<f64>,
    /// From PREPARING to CLEAN/DIRTY/NOT READY.
    wall_s: f64,
    /// How long its SIPp processes ran (real runs).
    sipp_s: Option<f64>,
    reason: Option<String>,
    run_folder: Option<String>,
    /// Its shard's K (`--shard K/N`), null without `--shard`.
    shard: Option<u32>,
    /// The machine it ran on.
    host: &'a str,
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
            match serde_json::to_string_pretty(&TestRun::of(&r, &self.meta)) {
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

    fn document(&self, now: SystemTime) -> Document<'_> {
        let c = &self.collected;
        let summary = match c.end {
            Some(end) => Summary {
                total: end.outcome.total,
                success: end.outcome.passed,
                failed: end.outcome.failed(),
            },
            // Cut short before its end: count what the records say.
            None => {
                let total = c.runs.len() as u64 + c.settled;
                let success =
                    c.runs.values().filter(|r| r.passed()).count() as u64 + c.settled_passed;
                Summary {
                    total,
                    success,
                    failed: total - success,
                }
            }
        };
        Document {
            tool: "sipplauncher",
            version: &self.meta.tool_version,
            dut: &self.meta.dut,
            testsuite: &self.meta.testsuite,
            command_line: &self.meta.command_line,
            dry_run: self.meta.dry_run,
            group: self.meta.group,
            window: self.meta.window,
            seed: c.seed,
            fail_expected: self.meta.fail_expected,
            shard: self.meta.shard.map(|s| ShardJson {
                index: s.index,
                total: s.total,
                mode: s.mode.as_str(),
            }),
            host: &self.meta.host,
            planned: &self.meta.planned,
            started: rfc3339(c.started.unwrap_or(now)),
            finished: rfc3339(c.end.map_or(now, |e| e.at)),
            elapsed_s: secs(c.elapsed(now)),
            interrupted: c.interrupted(),
            fatal: c.end.is_some_and(|e| e.outcome.fatal),
            summary,
            global: Globals {
                before: c.global_before.as_ref().map(Global::of),
                after: c.global_after.as_ref().map(Global::of),
            },
            tests: c
                .runs
                .values()
                .map(|r| TestRun::of(r, &self.meta))
                .collect(),
        }
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

impl<'a> TestRun<'a> {
    fn of(r: &'a RunRecord, meta: &'a RunMeta) -> TestRun<'a> {
        TestRun {
            index: r.index,
            name: &r.name,
            run_id: &r.run_id,
            run_id_number: &r.run_id_number,
            result: r.result().as_str(),
            state: r.state.as_str(),
            passed: r.passed(),
            started: rfc3339(r.started),
            took_s: secs(r.took()),
            cps: r.cps,
            wall_s: secs(r.last.duration_since(r.started).unwrap_or_default()),
            sipp_s: r.sipp_time.map(secs),
            reason: r.reason(),
            run_folder: r.run_folder.as_ref().map(|p| p.display().to_string()),
            shard: meta.shard.map(|s| s.index),
            host: &meta.host,
        }
    }
}

/// Seconds, to the millisecond (no float noise like 1.0200000000000001).
fn secs(d: Duration) -> f64 {
    d.as_millis() as f64 / 1_000.0
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
    use sipplauncher_actors::core::state::StateName;

    fn meta() -> RunMeta {
        RunMeta {
            tool_version: "0.1.0".into(),
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
                "reason": null,
                "run_folder": "/var/tmp/sipplauncher/normal-0000/kqzvxa",
                "shard": 2,
                "host": "runner-b",
            })
        );
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
                at: fixture::at(0),
            },
            fixture::test(0, "a", "aaaaaa", StateName::Preparing, 10, None, None, None),
            fixture::test(0, "a", "aaaaaa", StateName::Ready, 20, None, None, None),
            Event::Interrupted { hard: false },
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
        assert_eq!(v["global"], json!({"before": null, "after": null}));
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
