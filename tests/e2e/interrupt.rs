//! Signals during a run: the run winds down through Cleanup messages, prints its summary and
//! exits non-zero, leaving no run folder. Signals are caught from the process's first instant:
//! no test here waits before signalling.

use std::os::unix::process::CommandExt;
use std::time::Duration;

use nix::sys::signal::{kill, SigSet, Signal};

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
    cmd.args(["--loop", "--group", "2"]);
    let mut s = Spawned::spawn(&mut cmd);
    // The loop is under way: its third run is being prepared.
    s.wait_for("(2-", Duration::from_secs(20));
    kill(s.pid(), Signal::SIGINT).unwrap();
    // Ends on its own rather than looping on (the latency itself is a benchmark's:
    // benches/interrupt.sh).
    let (status, stdout, _) = s.finish(Duration::from_secs(10));
    assert_eq!(status, 1, "{stdout}");
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

/// A signal that comes before sipplauncher has even started its `main` is not lost and does not
/// kill it: it is blocked across exec here (as a shell may leave it pending), so it is delivered
/// the instant sipplauncher catches signals. Without that, the `--loop` below never ends (the
/// signal stays blocked) or the default action kills the process.
#[test]
fn a_signal_at_the_first_instant_ends_the_run_with_nothing_made() {
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &[
            ("GLOBAL/before.sh", "echo before\n"),
            ("a/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = sb.cmd();
    cmd.arg("--loop");
    // SAFETY: between fork and exec only sigprocmask(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let mut set = SigSet::empty();
            set.add(Signal::SIGINT);
            set.thread_block()?;
            Ok(())
        });
    }
    let s = Spawned::spawn(&mut cmd);
    kill(s.pid(), Signal::SIGINT).unwrap();
    let (status, stdout, stderr, _) = s.finish_all(Duration::from_secs(10));
    // Exit 1 (not killed by the signal): either before the run took the signals over (one line,
    // nothing done) or as a run interrupted before its start (nothing run).
    assert_eq!(status, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let early = stderr.contains("sipplauncher: interrupted (SIGINT) before the run started");
    let in_run = stdout.contains("Interrupted") && summary(&stdout, "TOTAL") == Some(0);
    assert!(early || in_run, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stdout.contains("PREPARING"), "{stdout}");
    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
}
