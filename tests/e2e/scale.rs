//! Beyond one machine (issue 12): `--shard K/N`, `sipplauncher merge`, `--retries`,
//! `--rerun-failed`, in dry runs (no privileges needed); the real runs of several processes on
//! one DUT network are in [`crate::scale_lab`].

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::*;

/// `t-0`..`t-{n-1}`; those in `dns` have a `dns.txt`.
fn sharded_suite(sb: &Sandbox, n: usize, dns: &[usize]) {
    let mut files: Vec<(String, String)> = Vec::new();
    for i in 0..n {
        files.push((format!("t-{i}/uac_ua0.xml"), OPTIONS_UAC.to_string()));
        if dns.contains(&i) {
            files.push((
                format!("t-{i}/dns.txt"),
                "t{{ test.run_id }}.example.com. A {{ ua0.host }}\n".to_string(),
            ));
        }
    }
    write_suite(&sb.suite(), &files);
}

pub fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// The names of the test runs of a JSON report, in order.
pub fn run_names(report: &Value) -> Vec<String> {
    report["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn shards_are_disjoint_cover_the_suite_and_keep_dns_tests_in_shard_1() {
    let sb = Sandbox::new();
    sharded_suite(&sb, 8, &[2, 5]);
    let mut all = Vec::new();
    for (k, mode) in [
        (1, ""),
        (2, ""),
        (3, ""),
        (1, "hash:"),
        (2, "hash:"),
        (3, "hash:"),
    ] {
        let json = sb.path(&format!("shard-{mode}{k}.json"));
        let mut cmd = sb.cmd();
        cmd.args(["--shard", &format!("{mode}{k}/3"), "--json"])
            .arg(&json);
        let r = run(cmd);
        assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
        let split = if mode.is_empty() { "count" } else { "hash" };
        assert!(
            r.stdout
                .contains(&format!("Shard {mode}{k}/3 ({split} split): ")),
            "{}",
            r.stdout
        );
        let v = read_json(&json);
        assert_eq!(v["shard"]["index"], k);
        assert_eq!(v["shard"]["total"], 3);
        assert_eq!(v["shard"]["mode"], split);
        let names = run_names(&v);
        let planned: Vec<String> = serde_json::from_value(v["planned"].clone()).unwrap();
        assert_eq!(names, planned, "each planned test ran once");
        for t in v["tests"].as_array().unwrap() {
            assert_eq!(t["shard"], k, "every run names its shard");
            assert!(t["host"].as_str().is_some_and(|h| !h.is_empty()));
        }
        if k == 1 {
            assert!(names.contains(&"t-2".into()) && names.contains(&"t-5".into()));
        } else {
            assert!(!names.iter().any(|n| n == "t-2" || n == "t-5"), "{names:?}");
        }
        if mode.is_empty() {
            all.push(names);
        }
    }
    // Count split: even (3, 3, 2 with both DNS tests in shard 1), disjoint, the whole suite.
    let sizes: Vec<usize> = all.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 2], "{all:?}");
    let union: BTreeSet<String> = all.iter().flatten().cloned().collect();
    assert_eq!(union.len(), 8, "disjoint and complete: {all:?}");
}

#[test]
fn total_and_random_apply_within_the_shard_and_an_empty_shard_passes() {
    let sb = Sandbox::new();
    sharded_suite(&sb, 4, &[]);
    // Shard 2/3 of 4 tests: t-1 alone; --total 3 runs it three times.
    let json = sb.path("total.json");
    let mut cmd = sb.cmd();
    cmd.args(["--shard", "2/3", "--total", "3", "--random", "--json"])
        .arg(&json);
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(run_names(&read_json(&json)), ["t-1", "t-1", "t-1"]);

    // More shards than tests: shard 6/6 has none; it says so, writes its reports, exits 0.
    let (json, junit) = (sb.path("empty.json"), sb.path("empty.xml"));
    let mut cmd = sb.cmd();
    cmd.args(["--shard", "6/6", "--json"])
        .arg(&json)
        .arg("--junit")
        .arg(&junit);
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("Shard 6/6 (count split): 0 of the 4 tests collected"),
        "{}",
        r.stdout
    );
    let v = read_json(&json);
    assert_eq!(v["summary"]["total"], 0);
    assert_eq!(v["planned"], serde_json::json!([]));
    assert!(fs::read_to_string(&junit).unwrap().contains("tests=\"0\""));
    assert!(sb.run_folders().is_empty());
}

/// Runs `sipplauncher merge ARGS...`.
fn merge(args: &[&std::ffi::OsStr]) -> Run {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("merge").args(args);
    run(cmd)
}

#[test]
fn merge_joins_the_shards_reports_and_refuses_a_missing_or_truncated_one() {
    let sb = Sandbox::new();
    sharded_suite(&sb, 7, &[4]);
    // A test that is NOT READY (no scenario): the suite fails, whichever shard runs it.
    write_suite(&sb.suite(), &[("t-3/readme.txt", "")]);
    fs::remove_file(sb.suite().join("t-3/uac_ua0.xml")).unwrap();
    let mut statuses = Vec::new();
    for k in 1..=3 {
        let mut cmd = sb.cmd();
        cmd.args(["--shard", &format!("{k}/3"), "--json"])
            .arg(sb.path(&format!("s{k}.json")));
        statuses.push(run(cmd).status);
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 1).count(),
        1,
        "{statuses:?}"
    );
    let (json, junit, html) = (
        sb.path("merged.json"),
        sb.path("merged.xml"),
        sb.path("merged.html"),
    );
    let s = |k: u32| sb.path(&format!("s{k}.json")).into_os_string();
    let r = merge(&[
        "--json".as_ref(),
        json.as_os_str(),
        "--junit".as_ref(),
        junit.as_os_str(),
        "--html".as_ref(),
        html.as_os_str(),
        &s(3),
        &s(1),
        &s(2),
    ]);
    assert_eq!(
        r.status, 1,
        "the whole suite failed: {}{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stdout
            .contains("Merged 3 reports: TOTAL: 7, SUCCESS: 6, FAILED: 1"),
        "{}",
        r.stdout
    );
    let v = read_json(&json);
    let mut names = run_names(&v);
    names.sort();
    assert_eq!(names, (0..7).map(|i| format!("t-{i}")).collect::<Vec<_>>());
    assert_eq!(v["summary"]["total"], 7);
    let shards: Vec<u64> = v["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["shard"].as_u64().unwrap())
        .collect();
    assert!(
        shards.windows(2).all(|w| w[0] <= w[1]),
        "shard order: {shards:?}"
    );
    let xml = fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"7\" failures=\"0\" errors=\"1\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 7);
    // The HTML report's own writer, on the merged runs: every test is in it.
    let page = fs::read_to_string(&html).unwrap();
    for i in 0..7 {
        assert!(
            page.contains(&format!("t-{i}")),
            "t-{i} in the merged HTML report"
        );
    }

    // A shard's report missing: named, exit 2, nothing written.
    let out = sb.path("partial.json");
    let r = merge(&["--json".as_ref(), out.as_os_str(), &s(1), &s(3)]);
    assert_eq!(r.status, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("no report of 2/3"), "{}", r.stderr);
    assert!(!out.exists());
    // A report cut short (a job killed while writing): named, exit 2.
    let text = fs::read_to_string(sb.path("s2.json")).unwrap();
    fs::write(sb.path("s2.json"), &text[..text.len() - 40]).unwrap();
    let r = merge(&["--json".as_ref(), out.as_os_str(), &s(1), &s(2), &s(3)]);
    assert_eq!(r.status, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("s2.json: not a whole JSON document (truncated?)"),
        "{}",
        r.stderr
    );
    // A file that is not there at all.
    let r = merge(&["--json".as_ref(), out.as_os_str(), "nope.json".as_ref()]);
    assert_eq!(
        (r.status, r.stderr.trim()),
        (2, "sipplauncher merge: nope.json: no such file")
    );
    assert!(!out.exists());
}

#[test]
fn rerun_failed_runs_only_what_did_not_pass() {
    let sb = Sandbox::new();
    sharded_suite(&sb, 4, &[]);
    // t-2 has no scenario: NOT READY.
    fs::remove_file(sb.suite().join("t-2/uac_ua0.xml")).unwrap();
    write_suite(&sb.suite(), &[("t-2/readme.txt", "")]);
    let json = |n: &str| sb.path(&format!("{n}.json"));
    let run_with = |args: &[&std::ffi::OsStr]| {
        let mut cmd = sb.cmd();
        cmd.args(args);
        run(cmd)
    };
    let r = run_with(&["--json".as_ref(), json("first").as_os_str()]);
    assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);

    // Only t-2 runs again (still NOT READY).
    let r = run_with(&[
        "--rerun-failed".as_ref(),
        json("first").as_os_str(),
        "--json".as_ref(),
        json("second").as_os_str(),
    ]);
    assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "Running again the 1 test that did not pass in {}",
            json("first").display()
        )),
        "{}",
        r.stdout
    );
    assert_eq!(run_names(&read_json(&json("second"))), ["t-2"]);

    // Mended, it passes; a report of nothing but passes leaves nothing to run again.
    write_suite(&sb.suite(), &[("t-2/uac_ua0.xml", OPTIONS_UAC)]);
    let r = run_with(&[
        "--rerun-failed".as_ref(),
        json("second").as_os_str(),
        "--json".as_ref(),
        json("third").as_os_str(),
    ]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(run_names(&read_json(&json("third"))), ["t-2"]);
    let r = run_with(&[
        "--rerun-failed".as_ref(),
        json("third").as_os_str(),
        "--json".as_ref(),
        json("fourth").as_os_str(),
    ]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("Nothing to run again: every test of"),
        "{}",
        r.stdout
    );
    assert!(run_names(&read_json(&json("fourth"))).is_empty());

    // A merged report of shards (t-2 fails in shard 1, t-1 in shard 2): what failed in any
    // shard; with --shard, split again.
    fs::remove_file(sb.suite().join("t-2/uac_ua0.xml")).unwrap();
    fs::remove_file(sb.suite().join("t-1/uac_ua0.xml")).unwrap();
    for k in 1..=2 {
        let r = run_with(&[
            "--shard".as_ref(),
            format!("{k}/2").as_ref(),
            "--json".as_ref(),
            json(&format!("s{k}")).as_os_str(),
        ]);
        assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
    }
    let r = merge(&[
        "--json".as_ref(),
        json("merged").as_os_str(),
        json("s1").as_os_str(),
        json("s2").as_os_str(),
    ]);
    assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
    let mut ran = Vec::new();
    for k in 1..=2 {
        let r = run_with(&[
            "--rerun-failed".as_ref(),
            json("merged").as_os_str(),
            "--shard".as_ref(),
            format!("{k}/2").as_ref(),
            "--json".as_ref(),
            json(&format!("r{k}")).as_os_str(),
        ]);
        assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
        ran.extend(run_names(&read_json(&json(&format!("r{k}")))));
    }
    ran.sort();
    assert_eq!(ran, ["t-1", "t-2"]);
}
