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
    // The original's closing lines (a dry run's), then why the run ended on a line of its own.
    let (total, _, _) = closing_lines(&stdout, true);
    assert!(total >= 2, "the loop ran: {total}");
    assert!(
        recap(&stdout)
            .1
            .iter()
            .any(|l| l.starts_with("Interrupted before the end")),
        "{stdout}"
    );
    // Every run past PREPARING was cleaned up, also one interrupted before it ran; one the
    // signal caught in PREPARING gave its preparation up (issue 13.1: no waiting for it).
    let lines = state_lines(&stdout);
    let last = lines.iter().map(|l| l.index).max().unwrap();
    for i in 0..=last {
        let states = states_of(&lines, i);
        assert_eq!(
            states.first().map(String::as_str),
            Some("PREPARING"),
            "{stdout}"
        );
        let end = lines.iter().rev().find(|l| l.index == i).unwrap();
        assert!(
            end.state == "CLEANING"
                || (states == ["PREPARING", "NOT READY"] && end.rest.contains("interrupted while")),
            "run {i}: {states:?}\n{stdout}"
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

/// A terminal (here a pipe) that stops reading does not stall the run: the console and the
/// reports are written on a thread of their own, so while stdout is full a signal still winds
/// the run down to its end (told in the general log); the summary comes once stdout is read.
#[test]
fn a_stdout_nobody_reads_does_not_stall_signal_handling() {
    use nix::fcntl::{fcntl, FcntlArg};
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::process::Stdio;

    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &[
            ("a/uac_ua0.xml", OPTIONS_UAC),
            ("b/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = sb.cmd();
    cmd.args(["--loop", "--group", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // A small pipe, never read until the end: it fills after a few dozen lines.
    let size = fcntl(&stdout, FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let queued = || {
        let mut n: nix::libc::c_int = 0;
        // SAFETY: FIONREAD writes one int, the bytes waiting in the pipe.
        unsafe { nix::libc::ioctl(stdout.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
        n
    };
    let started = std::time::Instant::now();
    // Full: less room left than a line needs (a write of a line waits for room for all of it).
    while queued() + 256 < size {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "stdout never filled"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    kill(pid, Signal::SIGINT).unwrap();
    // The run winds down and ends while nobody reads its stdout.
    let log = sb.log();
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("run over: writing the reports"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the run did not wind down while stdout was full"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
    let mut text = String::new();
    stdout.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("Interrupted"), "{text}");
    assert!(summary(&text, "TOTAL").is_some(), "{text}");
}

/// Issue 13 item 1: a `dns.txt` of 200,000 records takes its pre-run seconds to read in a
/// debug build. A SIGINT then is answered at once: the reading gives up, the test is NOT READY
/// (interrupted, named), the run ends and leaves nothing; and so with a second SIGINT right
/// after the first. Before, the first signal waited for the whole file (16 s here). The bound
/// only catches a wait for the file (the latency itself: BENCHMARKS.md §7).
#[test]
fn sigint_while_a_large_dns_txt_is_read_is_answered_at_once() {
    use std::fmt::Write;
    const RECORDS: usize = 200_000;
    // As hostile.rs: the target is 1 s; 3 s only catches a wait for the file.
    const BOUND: Duration = Duration::from_secs(3);
    let mut zone = String::with_capacity(RECORDS * 40);
    for i in 0..RECORDS {
        let _ = writeln!(
            zone,
            "h{i}.example.com.  A  10.0.{}.{}",
            i >> 8 & 255,
            i & 255
        );
    }
    for signals in [1, 2] {
        let sb = Sandbox::new();
        write_suite(
            &sb.suite(),
            &[
                ("big/dns.txt", zone.as_str()),
                ("big/uac_ua0.xml", OPTIONS_UAC),
            ],
        );
        let mut s = Spawned::spawn(&mut sb.cmd());
        s.wait_for("PREPARING", Duration::from_secs(20));
        // The folder is copied and rendered (those give up on a signal too: hostile.rs): the
        // pre-run is reading dns.txt now.
        let started = std::time::Instant::now();
        while !std::fs::read_to_string(sb.log()).is_ok_and(|l| l.contains("templates rendered")) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the run folder was never made"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        kill(s.pid(), Signal::SIGINT).unwrap();
        if signals == 2 {
            std::thread::sleep(Duration::from_millis(20));
            kill(s.pid(), Signal::SIGINT).unwrap();
        }
        let (status, stdout, took) = s.finish(Duration::from_secs(60));
        assert!(
            took < BOUND,
            "{signals} SIGINT: exit took {took:?}:\n{stdout}"
        );
        assert_eq!(status, 1, "{stdout}");
        assert!(stdout.contains("Interrupted"), "{stdout}");
        let lines = state_lines(&stdout);
        assert_eq!(states_of(&lines, 0), ["PREPARING", "NOT READY"], "{stdout}");
        let why = &lines[1].rest;
        let gave_up = why.contains("interrupted while") && why.contains("dns.txt");
        // A second signal waits 300 ms at most for the pre-run (sys::detached): on a loaded
        // machine the reading may not have looked by then; the folder it leaves is a dead
        // run's, for the next run to remove.
        let not_waited = signals == 2 && why.contains("not waited for any more");
        assert!(gave_up || not_waited, "{why}");
        if gave_up {
            assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
        }
    }
}
