//! `sipplauncher sweep`: bad input refused in one line with nothing made; a dry-run sweep's
//! files; a sweep in a lab whose DUT carries at most 2 calls at once (it stops below
//! `--stop-below` at the first size that exceeds them, and every figure of `sweep.json` agrees
//! with the per-size reports); interrupts (one signal: the size is cleaned up, its after.sh
//! waited for, the sizes done are written; two: the run stops at once, as by hand).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use serde_json::Value;

use crate::common::*;
use crate::lab::Lab;
use crate::real::{
    assert_is_sipplauncher, json_report, run_in, show, sip_macros, sipp_links, sipp_pids,
    wait_until, write_real_suite, CALL_UAS,
};

/// A sweep over the sandbox's suite in a dry run (no privileges), files in `out`.
fn dry_sweep(sb: &Sandbox, out: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("sweep")
        .args(["--dut", "127.0.0.1", "--dry-run", "--group-pause", "0"])
        .arg("--testsuite")
        .arg(sb.suite())
        .arg("--run-root")
        .arg(sb.run_root())
        .arg("--log-file")
        .arg(sb.log())
        .arg("--out")
        .arg(out);
    c
}

/// A real sweep against the lab's DUT over `suite` (short calls, no pause), files in `out`.
fn lab_sweep(lab: &Lab, sb: &Sandbox, suite: &Path, out: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("sweep")
        .arg("--dut")
        .arg(lab.dut().to_string())
        .arg("--testsuite")
        .arg(suite)
        .arg("--run-root")
        .arg(sb.run_root())
        .arg("--log-file")
        .arg(sb.log())
        .args(["--group-pause", "0", "--sipp-call-rate", "100"])
        .args(["--sipp-recv-timeout", "5000"])
        .arg("--out")
        .arg(out);
    c
}

const OPTIONS: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="ping"><send><![CDATA[
OPTIONS sip:{{ dut.host }} SIP/2.0
]]></send><recv response="200"/></scenario>
"#;

#[test]
fn bad_sweeps_are_refused_in_one_line_and_make_nothing() {
    let sb = Sandbox::new();
    write_suite(&sb.suite(), &[("t-0000/uac_ua0.xml", OPTIONS)]);
    let out = sb.path("out");
    let full = dry_sweep(&sb, &out);
    let base: Vec<String> = full
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let with = |extra: &[&str], drop: &[&str]| {
        let mut c = Command::new(BIN);
        let mut skip = 0;
        for a in &base {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if drop.contains(&a.as_str()) {
                skip = 1;
                continue;
            }
            c.arg(a);
        }
        c.args(extra);
        c
    };
    let cases: Vec<(&str, Command, &[&str])> = vec![
        ("no --groups", with(&[], &[]), &["--groups: missing"]),
        (
            "bad size",
            with(&["--groups", "1,0"], &[]),
            &["--groups: \"0\""],
        ),
        (
            "not a size",
            with(&["--groups", "a"], &[]),
            &["--groups: \"a\""],
        ),
        (
            "rate",
            with(&["--groups", "1", "--stop-below", "2"], &[]),
            &["--stop-below: \"2\" is not a rate"],
        ),
        (
            "target",
            with(&["--groups", "1", "--target=x"], &[]),
            &["--target: \"x\""],
        ),
        (
            "no --out",
            with(&["--groups", "1"], &["--out"]),
            &["--out: missing"],
        ),
        (
            "--group",
            with(&["--groups", "1", "--group", "3"], &[]),
            &["--group: not with sweep"],
        ),
        (
            "--json",
            with(&["--groups", "1", "--json", "/tmp/x.json"], &[]),
            &["--json: not with sweep"],
        ),
        (
            "--loop",
            with(&["--groups", "1", "--loop"], &[]),
            &["--loop: not with sweep"],
        ),
        (
            "--html",
            with(&["--groups", "1", "--html", "/tmp/x.html"], &[]),
            &["--html: not with sweep", "sweep.html"],
        ),
        (
            "a run option",
            with(&["--groups", "1"], &["--dut"]),
            &["--dut: missing"],
        ),
        (
            "a run option's value",
            with(&["--groups", "1", "--sipp-call-rate", "0"], &[]),
            &["--sipp-call-rate"],
        ),
        (
            "an unknown option",
            with(&["--groups", "1", "--nope"], &[]),
            &["unexpected argument '--nope'"],
        ),
        (
            "no tests",
            with(&["--groups", "1", "--pattern-only", "zzz"], &[]),
            &["No tests found"],
        ),
    ];
    for (label, cmd, expect) in cases {
        let r = run(cmd);
        assert_eq!(r.status, 2, "{label}: {}\n{}", r.stdout, r.stderr);
        let err = r.stderr.trim_end();
        assert_eq!(err.lines().count(), 1, "{label}: one line:\n{err}");
        assert!(err.starts_with("sipplauncher sweep: "), "{label}: {err}");
        for e in expect {
            assert!(err.contains(e), "{label}: {err:?} should contain {e:?}");
        }
        assert!(!out.exists(), "{label} made --out");
        assert!(!sb.run_root().exists(), "{label} made the run root");
    }
    // A folder that is not empty is refused, and left as it was.
    fs::create_dir(&out).unwrap();
    fs::write(out.join("keep"), "mine").unwrap();
    let r = run(with(&["--groups", "1"], &[]));
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is not empty"), "{}", r.stderr);
    assert_eq!(fs::read_dir(&out).unwrap().count(), 1);
    // --help is the sweep's own.
    let r = run(with(&["--help"], &[]));
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stdout.contains("--stop-below"), "{}", r.stdout);
}

/// The figures of one size as the sweep wrote them.
fn size_of(sweep: &Value, group: u64) -> &Value {
    sweep["sizes"]
        .as_array()
        .expect("sizes")
        .iter()
        .find(|s| s["group"] == group)
        .unwrap_or_else(|| panic!("no --group {group} in {sweep:#}"))
}

/// Linear interpolation between ranks, written again here so that the sweep's own is checked.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

fn close(a: &Value, b: f64, what: &str) {
    let a = a
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {a} is not a number"));
    assert!(
        (a - b).abs() <= 1e-6 * b.abs().max(1.0),
        "{what}: {a} != {b}"
    );
}

/// Every figure of a size in `sweep.json` against its run's own report, `group-N.json`.
fn check_against_report(out: &Path, size: &Value) {
    let group = size["group"].as_u64().expect("group");
    assert_eq!(size["report"], format!("group-{group}.json"));
    let r = json_report(&out.join(format!("group-{group}.json")));
    assert_eq!(r["group"], group, "the run's own --group");
    let tests = r["tests"].as_array().expect("tests");
    let runs = r["summary"]["total"].as_u64().unwrap();
    let passed = r["summary"]["success"].as_u64().unwrap();
    assert_eq!(tests.len() as u64, runs);
    assert_eq!(size["runs"], runs, "{size:#}");
    assert_eq!(size["passed"], passed);
    assert_eq!(size["failed"], runs - passed);
    close(&size["pass_rate"], passed as f64 / runs as f64, "pass rate");
    let elapsed = r["elapsed_s"].as_f64().unwrap();
    close(&size["elapsed_s"], elapsed, "elapsed");
    close(&size["tests_per_s"], runs as f64 / elapsed, "tests/s");
    let calls: u64 = tests
        .iter()
        .filter_map(|t| t["calls"]["created"].as_u64())
        .sum();
    if calls > 0 {
        assert_eq!(size["calls"], calls);
        close(&size["calls_per_s"], calls as f64 / elapsed, "calls/s");
        let setups: Vec<f64> = tests
            .iter()
            .filter_map(|t| t["setup_ms"].as_f64())
            .collect();
        assert!(!setups.is_empty(), "the scenarios measure rtd: {r:#}");
        assert_eq!(size["setup"]["source"], "rtd");
        assert_eq!(size["setup"]["runs"], setups.len());
        close(
            &size["setup"]["median_ms"],
            quantile(&setups, 0.5),
            "median",
        );
        close(&size["setup"]["p95_ms"], quantile(&setups, 0.95), "p95");
    }
    let usage = &r["usage"];
    close(
        &size["cpu_s"],
        usage["cpu_user_s"].as_f64().unwrap() + usage["cpu_system_s"].as_f64().unwrap(),
        "cpu",
    );
    close(
        &size["children_cpu_s"],
        usage["children_cpu_user_s"].as_f64().unwrap()
            + usage["children_cpu_system_s"].as_f64().unwrap(),
        "children's cpu",
    );
    close(
        &size["load_end"],
        usage["load_end"][0].as_f64().unwrap(),
        "load",
    );
    // The failures: every failed run counted once, under its reason.
    let counted: u64 = size["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| f["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, runs - passed, "{size:#}");
    assert_eq!(size["interrupted"], r["interrupted"]);
}

#[test]
fn dry_run_sweep_writes_its_files() {
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &each_test(["a-0000", "b-0000", "c-0000"], &[("uac_ua0.xml", OPTIONS)]),
    );
    let out = sb.path("out");
    let mut cmd = dry_sweep(&sb, &out);
    cmd.args(["--groups", "2,1"]);
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let mut files: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "group-1.json",
            "group-1.log",
            "group-2.json",
            "group-2.log",
            "sweep.html",
            "sweep.json",
            "sweep.svg"
        ]
    );
    let sweep: Value = serde_json::from_str(&fs::read_to_string(out.join("sweep.json")).unwrap())
        .expect("sweep.json parses");
    assert_eq!(sweep["state"], "complete");
    assert_eq!(
        sweep["groups"],
        serde_json::json!([1, 2]),
        "in increasing order"
    );
    // --total: 4 x the size, at least the suite (3 tests) once.
    assert_eq!(size_of(&sweep, 1)["total"], 4);
    assert_eq!(size_of(&sweep, 2)["total"], 8);
    for g in [1, 2] {
        check_against_report(&out, size_of(&sweep, g));
        let console = fs::read_to_string(out.join(format!("group-{g}.log"))).unwrap();
        assert!(console.contains("DRY-RUNNING"), "{console}");
    }
    assert_eq!(sweep["knee"]["capacity"]["group"], 2);
    let svg = fs::read_to_string(out.join("sweep.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("tests per second"),
        "{svg}"
    );
    // The console: a line per size, the table, the knee.
    assert!(
        r.stdout.contains("--group 1: 4/4 passed (100%)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Capacity: --group 2 is the largest size"),
        "{}",
        r.stdout
    );
}

/// The example's call macros with the call held for `hold_ms` between ACK and BYE.
fn macros_holding(hold_ms: u32) -> String {
    let m = sip_macros();
    let pause = r#"<pause milliseconds="200"/>"#;
    assert!(m.contains(pause), "place_call's pause changed: {m}");
    m.replace(pause, &format!(r#"<pause milliseconds="{hold_ms}"/>"#))
}

/// Calls ua0 through the DUT (place_call: `rtd` from the INVITE to its 200).
const CALL_UAC: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
{% import 'sip.jinja2' as sip -%}
<scenario name="call">
  {{ sip.place_call('sip:x@' ~ ua0.host ~ ':5060', test.name ~ ' ' ~ test.run_id) }}
</scenario>
"#;

/// A DUT that carries 2 calls at once, calls held 1 s: --group 1 and 2 pass, at 4 two of
/// each group's four INVITEs get "503 Too Many Calls": 50 % < 95 %, the sweep stops there and
/// --group 8 never runs. Every figure agrees with the per-size reports.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn sweep_stops_below_at_a_dut_s_capacity_and_its_figures_match_the_reports() {
    let lab = Lab::up_with("sweep_stops_below", 1, Some(2));
    let sb = Sandbox::new();
    let macros = macros_holding(1000);
    write_real_suite(
        &sb.suite(),
        &[
            ("TEMPLATES/sip.jinja2", macros.as_str()),
            ("call-0000/uas_ua0.xml", CALL_UAS),
            ("call-0000/uac_ua1.xml", CALL_UAC),
        ],
    );
    let out = sb.path("out");
    // The largest size is checked against the open-files limit before anything is made, not
    // found out at its turn: --group 10 of two-SIPp tests needs 104.
    let mut inner = lab_sweep(&lab, &sb, &sb.suite(), &out);
    inner.args(["--groups", "1,10"]);
    let mut line = String::from("ulimit -n 70 && exec");
    for part in std::iter::once(inner.get_program()).chain(inner.get_args()) {
        line.push_str(&format!(" '{}'", part.to_string_lossy()));
    }
    let mut limited = Command::new("sh");
    limited.args(["-c", &line]);
    let r = run_in(&lab, &limited);
    assert_eq!(r.status, 2, "{}", show(&r));
    assert!(
        r.stderr
            .trim()
            .starts_with("sipplauncher sweep: --group 10: 10 tests at once")
            && r.stderr.trim().lines().count() == 1,
        "{}",
        show(&r)
    );
    assert!(!out.exists() && sb.run_folders().is_empty());

    let mut cmd = lab_sweep(&lab, &sb, &sb.suite(), &out);
    cmd.args(["--groups", "1,2,4,8"]);
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 1, "{}", show(&r));
    let sweep = json_report(&out.join("sweep.json"));
    assert_eq!(sweep["state"], "stopped_below", "{sweep:#}");
    assert_eq!(sweep["group"], 4);
    let sizes = sweep["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 3, "--group 8 must not run: {sweep:#}");
    assert!(!out.join("group-8.json").exists());
    for (g, passed) in [(1, 4), (2, 8), (4, 8)] {
        let s = size_of(&sweep, g);
        assert_eq!(s["passed"], passed, "--group {g}: {s:#}");
        check_against_report(&out, s);
    }
    let four = size_of(&sweep, 4);
    assert_eq!(four["pass_rate"], 0.5);
    let failures = four["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "one reason: {four:#}");
    assert_eq!(failures[0]["count"], 8);
    let reason = failures[0]["reason"].as_str().unwrap();
    assert!(
        reason.ends_with("received 'SIP/2.0 503 Too Many Calls"),
        "{reason}"
    );
    assert_eq!(sweep["knee"]["capacity"]["group"], 2, "{sweep:#}");
    // The HTML report of the last size, the curve on top: the plot, every size, the knee, and
    // the ladders of the runs the DUT refused (their folders kept as evidence).
    let html = fs::read_to_string(out.join("sweep.html")).expect("sweep.html");
    assert!(
        html.contains(r#"<section class="extra" id="capacity">"#),
        "{html}"
    );
    assert!(html.contains("<svg") && html.contains("tests per second"));
    for g in [1, 2, 4] {
        assert!(
            html.contains(&format!(r#"<a href="group-{g}.json">"#)),
            "{html}"
        );
    }
    assert!(html.contains("Capacity: --group 2 is the largest size"));
    assert!(
        html.contains("503 Too Many Calls"),
        "the refused calls' ladders"
    );
    assert!(
        r.stdout
            .contains("Stopped: --group 4 passed 50% of its runs, below --stop-below 95%"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("8 x uac_ua1 (uac) call failed"),
        "{}",
        r.stdout
    );
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
}

/// The after.sh of the interrupt test: waits `after_sleep` seconds, then leaves a mark.
const MARKING_AFTER: &str = "sleep {{ after_sleep }}\ntouch {{ marks }}/after-{{ test.run_id }}\n";

fn marks(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Waits until `file` holds `what` (the console of a size's run).
fn wait_for_in(file: &Path, what: &str, timeout: Duration) {
    assert!(
        wait_until(timeout, || fs::read_to_string(file)
            .is_ok_and(|t| t.contains(what))),
        "no {what:?} in {} within {timeout:?}:\n{}",
        file.display(),
        fs::read_to_string(file).unwrap_or_default()
    );
}

/// One Ctrl+C during the second size: that run stops its call, waits for its after.sh and
/// writes its report; the sweep writes both sizes (the second marked interrupted) and exits 1.
/// Then two Ctrl+C while an after.sh sleeps 30 s: the run stops at once, as a run started by
/// hand does, and nothing is left in the lab either way.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn sweep_interrupted_keeps_the_sizes_done_and_the_run_s_two_signal_meaning() {
    let lab = Lab::up("sweep_interrupted");
    let sb = Sandbox::new();
    let macros = macros_holding(2000);
    write_real_suite(
        &sb.suite(),
        &[
            ("TEMPLATES/sip.jinja2", macros.as_str()),
            ("hold-0000/uas_ua0.xml", CALL_UAS),
            ("hold-0000/uac_ua1.xml", CALL_UAC),
            ("hold-0000/after.sh", MARKING_AFTER),
        ],
    );
    let mark_dir = sb.path("marks");
    fs::create_dir(&mark_dir).unwrap();
    let keywords = |sleep: u32| {
        format!(
            r#"{{"marks": "{}", "after_sleep": {sleep}}}"#,
            mark_dir.display()
        )
    };

    // One signal, during the second size's call.
    let out = sb.path("one");
    let mut cmd = lab_sweep(&lab, &sb, &sb.suite(), &out);
    cmd.args(["--groups", "1,2", "--total", "1"])
        .arg("--keyword-replacement-values")
        .arg(keywords(1));
    let mut sweep = Spawned::start(&lab, &cmd);
    sweep.wait_for("--group 2:", Duration::from_secs(30));
    assert_is_sipplauncher(sweep.pid());
    wait_for_in(
        &out.join("group-2.log"),
        "STARTING",
        Duration::from_secs(20),
    );
    kill(sweep.pid(), Signal::SIGINT).unwrap();
    let (status, stdout, _) = sweep.finish(Duration::from_secs(30));
    assert_eq!(status, 1, "{stdout}");
    let doc = json_report(&out.join("sweep.json"));
    assert_eq!(doc["state"], "interrupted", "{doc:#}");
    assert_eq!(size_of(&doc, 1)["interrupted"], false);
    assert_eq!(size_of(&doc, 1)["passed"], 1);
    let two = size_of(&doc, 2);
    assert_eq!(two["interrupted"], true, "{doc:#}");
    check_against_report(&out, two);
    let report = json_report(&out.join("group-2.json"));
    assert_eq!(report["tests"][0]["state"], "CLEAN", "{report:#}");
    assert_eq!(
        marks(&mark_dir).len(),
        2,
        "both runs' after.sh finished: one signal is passed on once"
    );
    assert!(
        stdout.contains("Interrupted: the sizes done so far are written"),
        "{stdout}"
    );
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
    assert_eq!(sipp_pids(&lab), Vec::<i32>::new());

    // Two signals while after.sh sleeps: the second kills it; the sweep ends at once.
    let out = sb.path("two");
    let mut cmd = lab_sweep(&lab, &sb, &sb.suite(), &out);
    cmd.args(["--groups", "1,2", "--total", "1"])
        .arg("--keyword-replacement-values")
        .arg(keywords(30));
    let mut sweep = Spawned::start(&lab, &cmd);
    sweep.wait_for("--group 1:", Duration::from_secs(30));
    wait_for_in(
        &out.join("group-1.log"),
        "CLEANING",
        Duration::from_secs(20),
    );
    kill(sweep.pid(), Signal::SIGINT).unwrap();
    // The first signal is taken (two sent at once could be one to the kernel) and waits for
    // after.sh (it restores the DUT).
    wait_for_in(
        &out.join("group-1.log"),
        "Interrupted: cleaning up",
        Duration::from_secs(10),
    );
    assert!(
        fs::read_to_string(out.join("group-1.log")).is_ok_and(|t| !t.contains("TOTAL")),
        "the run waits for after.sh after one signal"
    );
    kill(sweep.pid(), Signal::SIGINT).unwrap();
    let (status, stdout, took) = sweep.finish(Duration::from_secs(20));
    assert_eq!(status, 1, "{stdout}");
    assert!(
        took < Duration::from_secs(20),
        "a hang, not the after.sh's 30 s: {took:?}"
    );
    assert_eq!(
        marks(&mark_dir).len(),
        2,
        "the second signal killed after.sh"
    );
    let doc = json_report(&out.join("sweep.json"));
    assert_eq!(doc["state"], "interrupted", "{doc:#}");
    assert_eq!(
        doc["sizes"].as_array().unwrap().len(),
        1,
        "--group 2 never started"
    );
    assert_eq!(size_of(&doc, 1)["interrupted"], true);
    assert!(!out.join("group-2.json").exists());
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
    assert_eq!(sipp_pids(&lab), Vec::<i32>::new());
}

/// Arguments need not be UTF-8 (a suite folder named in another encoding): the sweep and its
/// runs take them as given, and their reports show them lossily.
#[test]
fn arguments_that_are_not_utf8_are_taken_as_given() {
    use std::os::unix::ffi::OsStrExt;
    let sb = Sandbox::new();
    let suite = sb
        .dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"suite-\xff"));
    write_suite(&suite, &[("t-0000/uac_ua0.xml", OPTIONS)]);
    let out = sb.path("out");
    let mut cmd = Command::new(BIN);
    cmd.arg("sweep")
        .args([
            "--dut",
            "127.0.0.1",
            "--dry-run",
            "--group-pause",
            "0",
            "--groups",
            "1",
        ])
        .arg("--testsuite")
        .arg(&suite)
        .arg("--run-root")
        .arg(sb.run_root())
        .arg("--log-file")
        .arg(sb.log())
        .arg("--out")
        .arg(&out);
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let sweep = json_report(&out.join("sweep.json"));
    assert_eq!(size_of(&sweep, 1)["passed"], 4, "{sweep:#}");
    let report = json_report(&out.join("group-1.json"));
    assert!(
        report["command_line"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().is_some_and(|a| a.ends_with("suite-\u{fffd}"))),
        "{report:#}"
    );
}
