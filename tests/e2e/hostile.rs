//! Hostile inputs and untimely signals (issue 13, and issue 10 item 6): the cases an adversary
//! tried against the tool, kept so that they stay fixed. Each checks the promise, not a
//! figure: interrupts assert a generous bound on the exit time (3 s) to catch a hang.
//!
//! `SIPPLAUNCHER_BIN=/path/to/sipplauncher` runs the cases against another build (how the
//! "before" column of the closing table was measured).
//!
//! - scripts: what `before.sh` starts lives until `after.sh` (GLOBAL's: the end of the run) and
//!   is then stopped; the first signal stops a running `before.sh`; a running `after.sh` is
//!   waited for until a second; a killed run's scripts are stopped by the next run.
//! - bad input (items 3, 4): one line, exit 2, nothing made (no run root, no log, no report),
//!   a planted general log neither opened nor written.
//! - a template that would render for ever (item 1): out of fuel, naming its file; a SIGINT
//!   during it answered at once.
//! - a hostile test folder name (item 5): escaped on the console, in the logs and reports.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::*;
use crate::lab::{Lab, ANSWER, CALL_THROUGH_DUT};
use crate::real::{
    assert_is_sipplauncher, long_uac, real_cmd, run_in, show, sipp_links, sipp_pids, states_named,
    wait_until, write_real_suite, OPTIONS_UAC, REAL_SEQUENCE,
};

/// What an interrupted run may take to exit: generous, to catch a hang, not to benchmark.
const EXIT_BOUND: Duration = Duration::from_secs(3);

/// The binary under test: this build's, or `SIPPLAUNCHER_BIN`'s.
fn bin() -> PathBuf {
    std::env::var_os("SIPPLAUNCHER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(BIN))
}

/// `cmd` with [`bin`] as its program.
fn with_bin(cmd: &Command) -> Command {
    let mut c = Command::new(bin());
    c.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// A real run of `sb`'s suite in `lab`, with [`bin`].
fn real(lab: &Lab, sb: &Sandbox) -> Command {
    with_bin(&real_cmd(lab, sb, &sb.suite()))
}

/// The pid a script's helper wrote into `path` (waits up to 10 s for it).
fn pid_in(path: &Path) -> Pid {
    assert!(
        wait_until(Duration::from_secs(10), || fs::read_to_string(path)
            .is_ok_and(|s| s.ends_with('\n'))),
        "{} was not written",
        path.display()
    );
    Pid::from_raw(fs::read_to_string(path).unwrap().trim().parse().unwrap())
}

/// Whether `pid` runs (a zombie waiting for a negligent init does not).
fn running(pid: Pid) -> bool {
    kill(pid, None).is_ok()
        && !fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
}

/// Waits up to 5 s for `pid` to be gone.
fn gone(pid: Pid) -> bool {
    wait_until(Duration::from_secs(5), || !running(pid))
}

/// The processes that carry a `SIPPLAUNCHER_RUN` mark naming sipplauncher `pid` (what its
/// scripts left running).
fn marked_by(pid: Pid) -> Vec<i32> {
    let want = format!("SIPPLAUNCHER_RUN=pid={pid} ");
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            fs::read(format!("/proc/{p}/environ")).is_ok_and(|e| {
                e.split(|b| *b == 0)
                    .any(|kv| kv.starts_with(want.as_bytes()))
            })
        })
        .filter(|p| running(Pid::from_raw(*p)))
        .collect()
}

/// Issue 10 item 6: a GLOBAL before.sh starts the UAS the tests call with `sipp -bg`; it serves
/// every test (it would die with before.sh's process group before), and nothing of it is left
/// after the run.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn a_global_sipp_bg_serves_the_tests_and_is_gone_after() {
    let lab = Lab::up("global_sipp_bg");
    let sb = Sandbox::new();
    let callee = format!("{}:5070", lab.runner());
    let call = CALL_THROUGH_DUT.replace("CALLEE", &callee);
    let before = format!(
        // `sipp -bg` exits 99 in the parent: the script goes on to say so.
        "sipp -sf uas.xml -i {} -p 5070 -bg -nostdin -trace_err {{{{ dut.host }}}}\n\
         echo the UAS runs in the background\n",
        lab.runner()
    );
    write_real_suite(
        &sb.suite(),
        &[
            ("GLOBAL/before.sh", before.as_str()),
            ("GLOBAL/uas.xml", ANSWER),
            ("call-1/uac_ua0.xml", call.as_str()),
            ("call-2/uac_ua0.xml", call.as_str()),
        ],
    );
    let r = run_in(&lab, &real(&lab, &sb));
    assert_eq!(r.status, 0, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    for t in ["call-1", "call-2"] {
        assert_eq!(states_named(&lines, t), REAL_SEQUENCE, "{}", show(&r));
    }
    assert_eq!(sipp_pids(&lab), Vec::<i32>::new(), "the GLOBAL UAS is left");
    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
}

/// A test's before.sh starts helpers three ways (in its group, in a session of its own, by a
/// double fork): its after.sh finds them running; after the run none is left, nor what after.sh
/// started in the background.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn a_tests_helpers_live_until_its_after_sh() {
    let lab = Lab::up("helpers_until_after");
    let sb = Sandbox::new();
    let p = |n: &str| sb.path(n).display().to_string();
    let before = format!(
        "sleep 60 &\necho $! > {g}\n\
         setsid sh -c 'echo $$ > {s}; exec sleep 60' &\n\
         sh -c 'sh -c \"echo \\$\\$ > {d}; exec sleep 60\" &'\n\
         while [ ! -s {s} ] || [ ! -s {d} ]; do sleep 0.05; done\n",
        g = p("in-group"),
        s = p("own-session"),
        d = p("double-fork"),
    );
    let after = format!(
        "for f in {g} {s} {d}; do kill -0 $(cat $f) || exit 7; done\n\
         echo alive > {ok}\nsleep 60 &\necho $! > {a}\n",
        g = p("in-group"),
        s = p("own-session"),
        d = p("double-fork"),
        ok = p("after-saw-them"),
        a = p("after-child"),
    );
    write_real_suite(
        &sb.suite(),
        &[
            ("helped/before.sh", before.as_str()),
            ("helped/after.sh", after.as_str()),
            ("helped/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let r = run_in(&lab, &real(&lab, &sb));
    assert_eq!(r.status, 0, "{}", show(&r));
    assert!(sb.path("after-saw-them").exists(), "{}", show(&r));
    for f in ["in-group", "own-session", "double-fork", "after-child"] {
        assert!(gone(pid_in(&sb.path(f))), "{f} left running");
    }
}

/// Issue 13 item 2: the first SIGINT stops a test's before.sh that would provision for 30 s
/// (and ignores SIGTERM): the run ends within the bound, the helper it started is gone, the
/// GLOBAL after.sh ran.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn sigint_stops_a_tests_before_sh() {
    let lab = Lab::up("sigint_test_before");
    let sb = Sandbox::new();
    let helper = sb.path("helper");
    let before = format!(
        "trap '' TERM\nsetsid sh -c 'echo $$ > {}; exec sleep 60' &\necho provisioning\nsleep 30\n",
        helper.display()
    );
    let global_after = format!("touch {}\n", sb.path("global-after").display());
    write_real_suite(
        &sb.suite(),
        &[
            ("GLOBAL/after.sh", global_after.as_str()),
            ("slow/before.sh", before.as_str()),
            ("slow/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut s = Spawned::start(&lab, &real(&lab, &sb));
    s.wait_for("PREPARING", Duration::from_secs(20));
    let helper = pid_in(&helper);
    assert_is_sipplauncher(s.pid());
    kill(s.pid(), Signal::SIGINT).unwrap();
    let (status, stdout, took) = s.finish(Duration::from_secs(40));
    assert!(took < EXIT_BOUND, "exit took {took:?}:\n{stdout}");
    assert_eq!(status, 1, "{stdout}");
    let lines = state_lines(&stdout);
    assert_eq!(
        states_named(&lines, "slow"),
        ["PREPARING", "NOT READY"],
        "{stdout}"
    );
    assert!(gone(helper), "the helper of before.sh is left");
    assert!(
        sb.path("global-after").exists(),
        "GLOBAL after.sh did not run"
    );
    assert!(sipp_links(&lab).is_empty());
    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
}

/// Issue 13 item 2: the first SIGINT stops the GLOBAL before.sh; the GLOBAL after.sh still runs
/// (it restores what before.sh began), then the run ends within the bound.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn sigint_stops_the_global_before_sh_and_after_sh_still_runs() {
    let lab = Lab::up("sigint_global_before");
    let sb = Sandbox::new();
    let global_after = format!("touch {}\n", sb.path("global-after").display());
    let provisioning = sb.path("provisioning");
    let global_before = format!(
        "echo provisioning\ntouch {}\nsleep 30\n",
        provisioning.display()
    );
    write_real_suite(
        &sb.suite(),
        &[
            ("GLOBAL/before.sh", global_before.as_str()),
            ("GLOBAL/after.sh", global_after.as_str()),
            ("t/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let s = Spawned::start(&lab, &real(&lab, &sb));
    // GLOBAL's before.sh is running (signals are caught from the start: no need to wait more).
    assert!(wait_until(Duration::from_secs(20), || provisioning.exists()));
    kill(s.pid(), Signal::SIGINT).unwrap();
    let (status, stdout, took) = s.finish(Duration::from_secs(40));
    assert!(took < EXIT_BOUND, "exit took {took:?}:\n{stdout}");
    assert_eq!(status, 1, "{stdout}");
    assert!(state_lines(&stdout).is_empty(), "a test ran: {stdout}");
    assert!(
        sb.path("global-after").exists(),
        "GLOBAL after.sh did not run"
    );
    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
}

/// Issue 13 item 2: a running after.sh restores the DUT: the first SIGINT waits for it; a
/// second kills it and the run ends within the bound.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn sigint_waits_for_after_sh_and_a_second_kills_it() {
    let lab = Lab::up("sigint_after");
    let sb = Sandbox::new();
    let after = format!(
        "echo restoring\nsleep 1.5\ntouch {}\n",
        sb.path("restored").display()
    );
    write_real_suite(
        &sb.suite(),
        &[
            ("restores/after.sh", after.as_str()),
            ("restores/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut s = Spawned::start(&lab, &real(&lab, &sb));
    s.wait_for("CLEANING", Duration::from_secs(20));
    kill(s.pid(), Signal::SIGINT).unwrap();
    let (status, stdout, _) = s.finish(Duration::from_secs(20));
    assert!(sb.path("restored").exists(), "after.sh was cut: {stdout}");
    assert_eq!(status, 1, "{stdout}");

    let sb = Sandbox::new();
    write_real_suite(
        &sb.suite(),
        &[
            ("hangs/after.sh", "echo restoring\nsleep 30\n"),
            ("hangs/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut s = Spawned::start(&lab, &real(&lab, &sb));
    s.wait_for("CLEANING", Duration::from_secs(20));
    kill(s.pid(), Signal::SIGINT).unwrap();
    // The first signal is taken (two sent at once could be one to the kernel) and waits.
    s.wait_for("Interrupted: cleaning up", Duration::from_secs(10));
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "after.sh cut by the first signal"
    );
    let sent = Instant::now();
    kill(s.pid(), Signal::SIGINT).unwrap();
    let (status, stdout, _) = s.finish(Duration::from_secs(40));
    let took = sent.elapsed();
    assert!(took < EXIT_BOUND, "exit took {took:?}:\n{stdout}");
    assert_ne!(status, 0, "{stdout}");
    assert!(sipp_links(&lab).is_empty());
    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
}

/// Issue 13 item 6 (and 10.6): sipplauncher SIGKILLed while a before.sh runs (with a helper in
/// a session of its own): the next run stops the script and its helper, before it removes their
/// folder.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn a_killed_runs_scripts_are_stopped_by_the_next_run() {
    let lab = Lab::up("killed_run_scripts");
    let sb = Sandbox::new();
    let before = format!(
        "echo $$ > {s}\nsetsid sh -c 'echo $$ > {h}; exec sleep 60' &\nsleep 60\n",
        s = sb.path("script").display(),
        h = sb.path("helper").display(),
    );
    write_real_suite(
        &sb.suite(),
        &[
            ("a-slow/before.sh", before.as_str()),
            ("a-slow/uac_ua0.xml", OPTIONS_UAC),
            ("b-fine/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut s = Spawned::start(&lab, &real(&lab, &sb));
    s.wait_for("PREPARING", Duration::from_secs(20));
    let (script, helper) = (pid_in(&sb.path("script")), pid_in(&sb.path("helper")));
    let killed = s.pid();
    assert_is_sipplauncher(killed);
    kill(killed, Signal::SIGKILL).unwrap();
    let _ = s.finish(Duration::from_secs(10));
    assert!(
        running(script) && running(helper),
        "gone with sipplauncher already"
    );
    assert!(!sb.run_folders().is_empty());

    let mut next = real(&lab, &sb);
    next.args(["--pattern-only", "b-"]);
    let r = run_in(&lab, &next);
    assert_eq!(r.status, 0, "{}", show(&r));
    assert!(gone(script), "the killed run's before.sh is left");
    assert!(gone(helper), "its helper is left");
    assert_eq!(marked_by(killed), Vec::<i32>::new());
    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
}

/// An interrupt while SIPp runs: cleanup runs after.sh, and the helpers of before.sh go with it.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn sigint_while_sipp_runs_stops_the_helpers() {
    let lab = Lab::up("sigint_helpers");
    let sb = Sandbox::new();
    let before = format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 60' &\n",
        sb.path("helper").display()
    );
    let uac = long_uac();
    write_real_suite(
        &sb.suite(),
        &[
            ("long/before.sh", before.as_str()),
            ("long/uac_ua0.xml", uac.as_str()),
        ],
    );
    let mut s = Spawned::start(&lab, &real(&lab, &sb));
    s.wait_for("STARTING", Duration::from_secs(20));
    let helper = pid_in(&sb.path("helper"));
    assert!(running(helper));
    kill(s.pid(), Signal::SIGINT).unwrap();
    let (status, stdout, took) = s.finish(Duration::from_secs(40));
    assert!(took < EXIT_BOUND, "exit took {took:?}:\n{stdout}");
    assert_eq!(status, 1, "{stdout}");
    assert!(gone(helper), "the helper is left");
    assert_eq!(sipp_pids(&lab), Vec::<i32>::new());
}

/// Every file and folder under `dir` with its size (a log appended to grows), sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let meta = fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                todo.push(e.path());
            }
            out.push((e.path(), meta.len()));
        }
    }
    out.sort();
    out
}

/// `cmd` is refused: exit status 2, one line holding each of `expect`, and nothing made or
/// written in the sandbox (no run root, no general log, no report).
fn refused(sb: &Sandbox, cmd: Command, expect: &[&str]) {
    let label = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
    let before = tree(sb.dir.path());
    let r = run(cmd);
    assert_eq!(r.status, 2, "{label}: {}", show(&r));
    let err = r.stderr.trim_end();
    assert_eq!(err.lines().count(), 1, "{label}: one line expected:\n{err}");
    for e in expect {
        assert!(err.contains(e), "{label}: {err:?} should contain {e:?}");
    }
    assert_eq!(
        tree(sb.dir.path()),
        before,
        "{label} made or changed something"
    );
}

/// A real run (no `--dry-run`) of `sb`'s suite in a network namespace of its own that goes with
/// it (`unshare -n`: nothing reaches the host's network even if a check failed), with `path` as
/// PATH and `ulimit -n` at `nofile`.
fn real_alone(sb: &Sandbox, path: &Path, nofile: u32) -> Command {
    // Named absolutely: PATH is the one given.
    let mut cmd = Command::new("/usr/bin/unshare");
    cmd.args(["-n", "--", "/bin/sh", "-c"])
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(bin())
        .args(["--dut", "10.99.0.1", "--testsuite"])
        .arg(sb.suite())
        .arg("--run-root")
        .arg(sb.run_root())
        .arg("--log-file")
        .arg(sb.log())
        .env("PATH", path);
    cmd
}

/// A `sipp` in `sb` that prints `banner` for `sipp -v`; returns its folder.
fn a_sipp(sb: &Sandbox, banner: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = sb.path("bin");
    fs::create_dir_all(&bin).unwrap();
    let sipp = bin.join("sipp");
    fs::write(&sipp, format!("#!/bin/sh\nprintf '{banner}\\n'\n")).unwrap();
    fs::set_permissions(&sipp, fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// Issue 13 items 3 and 4: each bad input of the adversary's list is refused in one line with
/// exit status 2 before anything is made: not the run root, not the general log (the nine cases
/// that made the log before included), no report; a planted log file (FIFO, symlink, writable
/// by others, another user's) is neither opened nor written.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root (another user's files, a network namespace): cargo test --features lab, as root"
)]
fn bad_input_is_one_line_and_makes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let suite = |sb: &Sandbox| write_suite(&sb.suite(), &[("t/uac_ua0.xml", OPTIONS_UAC)]);
    let p = |sb: &Sandbox, rel: &str| sb.path(rel).to_str().unwrap().to_string();
    let dry = |sb: &Sandbox, args: &[&str]| {
        let mut c = with_bin(&sb.cmd());
        c.args(args);
        c
    };

    // Suites with nothing to run.
    let sb = Sandbox::new();
    fs::create_dir(sb.suite()).unwrap();
    refused(&sb, dry(&sb, &[]), &["No tests found"]);
    let sb = Sandbox::new();
    write_suite(&sb.suite(), &[("GLOBAL/before.sh", "true\n")]);
    refused(&sb, dry(&sb, &[]), &["No tests found"]);
    let sb = Sandbox::new();
    suite(&sb);
    refused(
        &sb,
        dry(&sb, &["--pattern-only", "zzz"]),
        &["No tests found"],
    );

    // Options.
    let sb = Sandbox::new();
    suite(&sb);
    fs::write(sb.path("ca.pem"), "garbage").unwrap();
    let ca = p(&sb, "ca.pem");
    refused(
        &sb,
        dry(&sb, &["--tls-ca-root-cert", &ca, "--tls-ca-root-key", &ca]),
        &["--tls-ca-root-cert", "no PEM certificate"],
    );
    refused(
        &sb,
        dry(&sb, &["--grop", "2"]),
        &["'--grop'", "'--group'", "see --help"],
    );
    refused(
        &sb,
        dry(&sb, &["--dut", "10.1.1.0"]),
        &["--dut: 10.1.1.0 is the network address of 10.1.1.0/24"],
    );
    refused(
        &sb,
        dry(&sb, &["--dut", "10.1.1.7", "--network-mask", "29"]),
        &["--dut: 10.1.1.7 is the broadcast address of 10.1.1.0/29"],
    );
    refused(
        &sb,
        dry(&sb, &["--default_behaviors", "all,-byee"]),
        &["--default_behaviors", "\"-byee\""],
    );

    // Outputs that are one file: a report over the general log, two spellings of one report.
    let log = p(&sb, "general.log");
    refused(
        &sb,
        dry(&sb, &["--json", &log]),
        &["--log-file", "is the same file as --json"],
    );
    let (junit, json) = (p(&sb, "suite/../r.xml"), p(&sb, "r.xml"));
    refused(
        &sb,
        dry(&sb, &["--junit", &junit, "--json", &json]),
        &["--json", "is the same file as --junit"],
    );

    // Run roots: a file, `/`, writable by others without the sticky bit, another user's.
    let file = p(&sb, "ca.pem");
    refused(
        &sb,
        dry(&sb, &["--run-root", &file]),
        &["--run-root", "is not a folder"],
    );
    refused(
        &sb,
        dry(&sb, &["--run-root", "/"]),
        &["--run-root: / cannot be the run root"],
    );
    fs::create_dir(sb.path("open")).unwrap();
    fs::set_permissions(sb.path("open"), fs::Permissions::from_mode(0o777)).unwrap();
    refused(
        &sb,
        dry(&sb, &["--run-root", &p(&sb, "open")]),
        &["--run-root", "is writable by others"],
    );
    fs::create_dir(sb.path("theirs")).unwrap();
    let other = Some(nix::unistd::Uid::from_raw(1001));
    nix::unistd::chown(&sb.path("theirs"), other, None).unwrap();
    refused(
        &sb,
        dry(&sb, &["--run-root", &p(&sb, "theirs")]),
        &["--run-root", "is owned by uid 1001"],
    );

    // A planted general log: a FIFO (it hung the tool), a symlink, a file writable by others,
    // another user's.
    nix::unistd::mkfifo(&sb.path("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    fs::write(sb.path("victim"), "").unwrap();
    std::os::unix::fs::symlink(sb.path("victim"), sb.path("link")).unwrap();
    fs::write(sb.path("open.log"), "").unwrap();
    fs::set_permissions(sb.path("open.log"), fs::Permissions::from_mode(0o666)).unwrap();
    fs::write(sb.path("theirs.log"), "").unwrap();
    nix::unistd::chown(&sb.path("theirs.log"), other, None).unwrap();
    fs::set_permissions(sb.path("theirs.log"), fs::Permissions::from_mode(0o644)).unwrap();
    for (name, why) in [
        ("fifo", "is a FIFO, not a regular file"),
        ("link", "is a symlink"),
        ("open.log", "is writable by others"),
        ("theirs.log", "is owned by uid 1001"),
    ] {
        refused(
            &sb,
            dry(&sb, &["--log-file", &p(&sb, name)]),
            &["--log-file", why],
        );
    }

    // Real runs that stop at the SIPp checks (in a network namespace of their own).
    let sb = Sandbox::new();
    suite(&sb);
    fs::create_dir(sb.path("empty-bin")).unwrap();
    refused(
        &sb,
        real_alone(&sb, &sb.path("empty-bin"), 1024),
        &["no sipp executable on PATH"],
    );
    let not_sipp = a_sipp(&sb, "hello");
    refused(
        &sb,
        real_alone(&sb, &not_sipp, 1024),
        &["does not look like SIPp"],
    );
    let sb = Sandbox::new();
    suite(&sb);
    let no_tls = a_sipp(&sb, "\\n SIPp v3.6.1-SCTP-PCAP-RTPSTREAM.\\n");
    let mut tls = real_alone(&sb, &no_tls, 1024);
    tls.args(["--sipp-transport", "l1"]);
    refused(&sb, tls, &["was built without TLS"]);
    refused(
        &sb,
        real_alone(&sb, &no_tls, 24),
        &["open-files limit (24)"],
    );
}

/// A scenario that would render for ever: 10^10 turns of nested loops (it took the tool and
/// its signals with it before).
const RENDERS_FOR_EVER: &str = "<scenario>\n{% for i in range(100000) %}\
                                {% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}\n\
                                </scenario>\n";

/// Issue 13 item 1: a template that would render for ever fails on the engine's fuel, in one
/// line naming its file and line (NOT READY, the run goes on to the next test); during such a
/// rendering a SIGINT is answered at once: the run ends within the bound and leaves nothing.
#[test]
fn a_template_that_renders_for_ever_neither_hangs_nor_deafens() {
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &[
            ("a/uac_ua0.xml", RENDERS_FOR_EVER),
            // (The suite has no macros: the plain scenario, not real.rs's.)
            ("b/uac_ua0.xml", crate::common::OPTIONS_UAC),
        ],
    );
    let r = run(with_bin(&sb.cmd()));
    assert_eq!(r.status, 1, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    let why = &lines
        .iter()
        .find(|l| l.test == "a" && l.state == "NOT READY")
        .unwrap_or_else(|| panic!("{}", show(&r)))
        .rest;
    assert!(
        why.contains("uac_ua0.xml line 2: the template takes too long to render"),
        "{why}"
    );
    assert_eq!(
        states_named(&lines, "b").last().unwrap(),
        "CLEANING",
        "{}",
        show(&r)
    );

    let sb = Sandbox::new();
    write_suite(&sb.suite(), &[("a/uac_ua0.xml", RENDERS_FOR_EVER)]);
    let mut s = Spawned::spawn(&mut with_bin(&sb.cmd()));
    s.wait_for("PREPARING", Duration::from_secs(20));
    // The run's log is opened once the folder is copied, just before the rendering.
    assert!(wait_until(Duration::from_secs(20), || sb
        .run_folders()
        .iter()
        .any(|f| f.join("sipplauncher.log").exists())));
    kill(s.pid(), Signal::SIGINT).unwrap();
    let (status, stdout, took) = s.finish(Duration::from_secs(40));
    assert!(took < EXIT_BOUND, "exit took {took:?}:\n{stdout}");
    assert_eq!(status, 1, "{stdout}");
    assert!(
        stdout.contains("interrupted while rendering the templates"),
        "{stdout}"
    );
    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
}

/// Issue 13 item 5: a test folder whose name holds a line break, a tab and an escape sequence
/// (one that would forge a SUCCESS line and colour the terminal) is shown escaped, as `\n`,
/// `\t`, `\u{1b}`, on the console, in the general log and the run's log, in the JUnit and HTML
/// reports; the JSON report keeps the name itself (JSON escapes it), so that `--rerun-failed`
/// and `merge` find the test.
#[test]
fn a_hostile_test_name_is_shown_escaped_everywhere() {
    let name = "a\n     SUCCESS forged (0-aaaaaa)\tb\u{1b}[31mred";
    let shown = "a\\n     SUCCESS forged (0-aaaaaa)\\tb\\u{1b}[31mred";
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &[(format!("{name}/uac_ua0.xml"), crate::common::OPTIONS_UAC)],
    );
    let (json, junit, html) = (sb.path("r.json"), sb.path("r.xml"), sb.path("r.html"));
    let mut cmd = with_bin(&sb.cmd());
    cmd.args(["--keep", "all", "--json"])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--html")
        .arg(&html);
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let folder = &sb.run_folders()[0];
    let test_log = fs::read_to_string(folder.join("sipplauncher.log")).unwrap();
    for (what, text) in [
        ("the console", r.stdout.as_str()),
        ("the general log", &fs::read_to_string(sb.log()).unwrap()),
        ("the run's log", &test_log),
        ("the JUnit report", &fs::read_to_string(&junit).unwrap()),
        ("the HTML report", &fs::read_to_string(&html).unwrap()),
    ] {
        assert!(
            text.contains(shown),
            "{what} does not show {shown:?}:\n{text}"
        );
        assert!(
            !text.contains('\u{1b}') && !text.contains("\tb"),
            "{what} holds the raw name:\n{text}"
        );
        // No line of its own for the forged state.
        assert!(
            !text.lines().any(|l| l.starts_with("     SUCCESS forged")),
            "{what}:\n{text}"
        );
    }
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["tests"][0]["name"], name, "{report}");
}
