//! Benchmark: `--dry-run` of a generated 1,000-test suite, `--group 50` and `--group 1` side by
//! side in one run, `--group-pause 0`. Prints the median and spread of repeated runs of the real
//! binary (wall time, from spawn to exit). Run with `cargo bench --bench dry_run`; set
//! `DRY_RUN_BENCH_REPEAT` (default 7) and `DRY_RUN_BENCH_TESTS` (default 1000) to change it.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCENARIO: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
{% import 'ping.jinja2' as ping -%}
<scenario name="{{ test.name }} {{ test.run_id }}">
  {{ ping.options(dut.host, ua0.host) }}
</scenario>
"#;

const MACRO: &str = r#"{% macro options(dut, me) -%}
  <send><![CDATA[
    OPTIONS sip:{{ dut }} SIP/2.0
    Via: SIP/2.0/[transport] {{ me }}:[local_port];branch=[branch]
  ]]></send>
  <recv response="200"/>
{%- endmacro %}
"#;

fn make_suite(root: &Path, tests: usize) {
    fs::create_dir_all(root.join("TEMPLATES")).unwrap();
    fs::write(root.join("TEMPLATES/ping.jinja2"), MACRO).unwrap();
    for i in 0..tests {
        let t = root.join(format!("bench-{i:05}"));
        fs::create_dir_all(&t).unwrap();
        fs::write(t.join("uac_ua0.xml"), SCENARIO).unwrap();
        fs::write(t.join("uas_ua1.xml"), SCENARIO).unwrap();
        fs::write(t.join("before.sh"), "echo {{ ua0.host }} {{ ua1.host }}\n").unwrap();
    }
}

fn once(suite: &Path, run_root: &Path, log: &Path, group: u32) -> Duration {
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_sipplauncher"))
        .args(["--dut", "127.0.0.1", "--dry-run", "--group-pause", "0"])
        .arg("--group")
        .arg(group.to_string())
        .arg("--testsuite")
        .arg(suite)
        .arg("--run-root")
        .arg(run_root)
        .arg("--log-file")
        .arg(log)
        .stdout(Stdio::null())
        .status()
        .expect("run sipplauncher");
    let took = start.elapsed();
    assert!(status.success(), "sipplauncher failed: {status}");
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let repeat: usize = std::env::var("DRY_RUN_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let tests: usize = std::env::var("DRY_RUN_BENCH_TESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite");
    make_suite(&suite, tests);
    let run_root = dir.path().join("runs");
    let log = dir.path().join("general.log");
    let groups = [50u32, 1];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); groups.len()];
    // Interleaved, so that the noise of a shared machine hits both alike.
    for _ in 0..repeat {
        for (i, &g) in groups.iter().enumerate() {
            times[i].push(once(&suite, &run_root, &log, g));
        }
    }
    eprintln!("dry-run of {tests} tests, {repeat} runs each (wall time, spawn to exit):");
    for (i, &g) in groups.iter().enumerate() {
        let t = &times[i];
        eprintln!(
            "  --group {g:>3}: median {:>8.3}s  min {:>8.3}s  max {:>8.3}s  ({:.2} ms/test)",
            median(t.clone()).as_secs_f64(),
            t.iter().min().unwrap().as_secs_f64(),
            t.iter().max().unwrap().as_secs_f64(),
            median(t.clone()).as_secs_f64() * 1000.0 / tests as f64,
        );
    }
}
