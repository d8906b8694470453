//! Signals during a run: the run winds down through Cleanup messages, prints its summary and
//! exits non-zero, leaving no run folder.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::*;

#[test]
fn sigint_during_a_looping_dry_run_exits_cleanly() {
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &[
            ("GLOBAL/before.sh", "echo before\n"),
            ("a/uac_ua0.xml", OPTIONS_UAC),
            ("b/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = sb.cmd();
    cmd.args(["--loop", "--group", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let sent = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Ends on its own rather than looping on (the latency itself is a benchmark's:
    // benches/interrupt.sh).
    assert!(took < Duration::from_secs(10), "exit took {took:?}");
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("Interrupted"), "{stdout}");
    let total = summary(&stdout, "TOTAL").expect("summary printed");
    assert!(total >= 2, "the loop ran: {total}");
    // Every run past PREPARING was cleaned up, also one interrupted before it ran.
    let lines = state_lines(&stdout);
    let last = lines.iter().map(|l| l.index).max().unwrap();
    for i in 0..=last {
        let states = states_of(&lines, i);
        assert_eq!(
            states.first().map(String::as_str),
            Some("PREPARING"),
            "{stdout}"
        );
        assert_eq!(
            states.last().map(String::as_str),
            Some("CLEANING"),
            "run {i}: {states:?}"
        );
    }
    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
}
