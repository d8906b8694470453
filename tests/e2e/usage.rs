//! Every bad input of SPEC §3 ends with one line naming the option and the problem, exit
//! status 2, before anything is made (no run root, no report).

use std::process::Command;

use crate::common::*;

fn bad(sb: &Sandbox, args: &[&str], expect: &[&str]) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--run-root")
        .arg(sb.run_root())
        .arg("--log-file")
        .arg(sb.log());
    expect_usage_error(sb, cmd, &format!("{args:?}"), expect);
}

#[test]
fn each_bad_input_gets_one_line_and_status_2() {
    let sb = Sandbox::new();
    write_suite(&sb.suite(), &[("t/uac_ua0.xml", OPTIONS_UAC)]);
    let suite = sb.suite();
    let s = suite.to_str().unwrap();
    let pem = sb.path("ca.pem");
    std::fs::write(&pem, "x").unwrap();
    let pem = pem.to_str().unwrap();
    let d = ["--dut", "10.0.0.1", "--testsuite", s, "--dry-run"];
    let with = |extra: &[&'static str]| -> Vec<String> {
        d.iter()
            .map(|x| x.to_string())
            .chain(extra.iter().map(|x| x.to_string()))
            .collect()
    };
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec!["--testsuite".into(), s.into(), "--dry-run".into()],
            vec!["--dut", "missing"],
        ),
        (
            vec![
                "--dut".into(),
                "10.0.0".into(),
                "--testsuite".into(),
                s.into(),
            ],
            vec!["--dut", "10.0.0"],
        ),
        (
            with(&["--network-mask", "31"]),
            vec!["--network-mask", "31"],
        ),
        (with(&["--network-mask", "0"]), vec!["--network-mask"]),
        (
            with(&["--pattern-only", "a("]),
            vec!["--pattern-only", "a("],
        ),
        (
            with(&["--pattern-exclude", "[z"]),
            vec!["--pattern-exclude"],
        ),
        (
            with(&["--keyword-replacement-values", "[1]"]),
            vec!["--keyword-replacement-values", "object"],
        ),
        (
            with(&["--keyword-replacement-values", "{nope"]),
            vec!["--keyword-replacement-values", "JSON"],
        ),
        (with(&["--group", "0"]), vec!["--group"]),
        (
            with(&["--shard", "4/3"]),
            vec!["--shard", "no shard 4 of 3"],
        ),
        (with(&["--shard", "2"]), vec!["--shard", "\"2\" is not K/N"]),
        (with(&["--retries", "-1"]), vec!["--retries", "'-1'"]),
        (with(&["--retries", "two"]), vec!["--retries", "'two'"]),
        (
            with(&["--rerun-failed", "/nonexistent/report.json"]),
            vec!["--rerun-failed", "/nonexistent/report.json: no such file"],
        ),
        (with(&["--pattern-only", "zzz"]), vec!["No tests found"]),
        (
            with(&["--template-folder", "/nonexistent/tpl"]),
            vec!["--template-folder", "/nonexistent/tpl"],
        ),
        (
            with(&["--sipp-info-file", "/nonexistent/users.csv"]),
            vec!["--sipp-info-file"],
        ),
        (
            with(&["--sipp-tls-version", "1.2"]),
            vec!["--sipp-tls-version"],
        ),
        (with(&["--group-pause", "-1"]), vec!["--group-pause"]),
        (
            with(&["--junit", "/nonexistent/dir/j.xml"]),
            vec!["--junit"],
        ),
        (with(&["--html", "/nonexistent/dir/r.html"]), vec!["--html"]),
    ];
    for (args, expect) in &cases {
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        bad(&sb, &args, expect);
    }
    let cert_only: Vec<String> = d
        .iter()
        .map(|x| x.to_string())
        .chain(["--tls-ca-root-cert".into(), pem.into()])
        .collect();
    bad(
        &sb,
        &cert_only.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        &["--tls-ca-root-key"],
    );
    let tls_udp: Vec<String> = d
        .iter()
        .map(|x| x.to_string())
        .chain(
            [
                "--tls-ca-root-cert",
                pem,
                "--tls-ca-root-key",
                pem,
                "--sipp-transport",
                "u1",
            ]
            .map(String::from),
        )
        .collect();
    bad(
        &sb,
        &tls_udp.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        &["--sipp-transport"],
    );
    bad(
        &sb,
        &[
            "--dut",
            "10.0.0.1",
            "--testsuite",
            "/nonexistent/suite",
            "--dry-run",
        ],
        &["--testsuite", "/nonexistent/suite"],
    );
}

#[test]
fn help_explains_every_option() {
    let r = run({
        let mut c = Command::new(BIN);
        c.arg("--help");
        c
    });
    assert_eq!(r.status, 0);
    for opt in [
        "--dut",
        "--testsuite",
        "--template-folder",
        "--global-test-folder",
        "--pattern-only",
        "--pattern-exclude",
        "--network-mask",
        "--group",
        "--group-pause",
        "--group-stop-first-fail",
        "--total",
        "--random",
        "--loop",
        "--dry-run",
        "--fail-expected",
        "--leave-temp",
        "--keyword-replacement-values",
        "--no-pcap",
        "--tls-ca-root-cert",
        "--tls-ca-root-key",
        "--sipp-transport",
        "--sipp-info-file",
        "--sipp-call-rate",
        "--sipp-max-calls",
        "--sipp-recv-timeout",
        "--sipp-tls-version",
        "--sipp-concurrent-calls-limit",
        "--default_behaviors",
        "--seed",
        "--run-root",
        "--script-timeout",
        "--test-timeout",
        "--junit",
        "--json",
        "--version",
    ] {
        assert!(r.stdout.contains(opt), "--help lacks {opt}");
    }
    let v = run({
        let mut c = Command::new(BIN);
        c.arg("-v");
        c
    });
    assert_eq!(v.status, 0);
    assert!(v.stdout.contains(env!("CARGO_PKG_VERSION")));
}
