//! Seeing before running (issue 11.5): `sipplauncher list` and `--list` without privileges and
//! without making anything; `--dry-run` showing each UA's address and each SIPp command line, and
//! pausing between groups only when asked.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::common::*;

/// `nobody`: the listing needs no privilege.
const NOBODY: u32 = 65_534;

fn suite(sb: &Sandbox) {
    write_suite(
        &sb.suite(),
        &[
            ("GLOBAL/after.sh", "true\n"),
            ("call-0000/uas_ua0.xml", OPTIONS_UAC),
            ("call-0000/uac_ua1.xml", OPTIONS_UAC),
            ("call-0000/before.sh", "true\n"),
            ("two-0000/part0_uas_ua0.xml", OPTIONS_UAC),
            ("two-0000/part0_uac_ua1.xml", OPTIONS_UAC),
            ("two-0000/part1_uac_ua0.xml", OPTIONS_UAC),
            ("zzz-0000/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
}

/// The sandbox readable by everyone, so that an unprivileged user can list its suite.
fn open_to_all(sb: &Sandbox) {
    for entry in walk(sb.dir.path()) {
        let mode = if entry.is_dir() { 0o755 } else { 0o644 };
        fs::set_permissions(&entry, fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() {
        for e in fs::read_dir(p).unwrap().flatten() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn list_needs_no_privilege_and_makes_nothing() {
    let sb = Sandbox::new();
    suite(&sb);
    open_to_all(&sb);
    let mut cmd = Command::new(BIN);
    cmd.arg("list")
        .arg("--testsuite")
        .arg(sb.suite())
        .args(["--pattern-exclude", "zzz"]);
    if nix::unistd::geteuid().is_root() {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let tree = || {
        let mut all = walk(sb.dir.path());
        all.sort();
        all
    };
    let before = tree();
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(tree(), before, "list made something");
    assert_eq!(
        r.stdout,
        format!(
            "\
call-0000 (before.sh)
    ua0 uas   uas_ua0.xml
    ua1 uac   uac_ua1.xml
two-0000
  run group part0
      ua0 uas   part0_uas_ua0.xml
      ua1 uac   part0_uac_ua1.xml
  run group part1
      ua0 uac   part1_uac_ua0.xml
2 tests in {}; GLOBAL {} (after.sh)
",
            sb.suite().display(),
            sb.suite().join("GLOBAL").display()
        )
    );

    // `--list` on a run's command line: the same, no --dut needed, no run root, no log made.
    let mut cmd = Command::new(BIN);
    cmd.arg("--list")
        .arg("--testsuite")
        .arg(sb.suite())
        .arg("--run-root")
        .arg(sb.run_root())
        .arg("--log-file")
        .arg(sb.log())
        .args(["--pattern-only", "call"]);
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("call-0000 (before.sh)\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\n1 test in "), "{}", r.stdout);
    assert!(!sb.run_root().exists() && !sb.log().exists());

    // Nothing left after the filters: one line, exit status 2.
    let mut cmd = Command::new(BIN);
    cmd.args(["list", "--pattern-only", "nope", "--testsuite"])
        .arg(sb.suite());
    let r = run(cmd);
    assert_eq!(r.status, 2);
    assert_eq!(
        r.stderr,
        format!(
            "sipplauncher: No tests found in {} after --pattern-only/--pattern-exclude\n",
            sb.suite().display()
        )
    );
}

/// A dry run shows, under each DRY-RUNNING line, the run's addresses and SIPp command lines
/// (the addresses in them, the scenario, the run folder they run in).
#[test]
fn dry_run_shows_addresses_and_sipp_command_lines() {
    let sb = Sandbox::new();
    suite(&sb);
    let mut cmd = sb.cmd();
    cmd.args(["--pattern-only", "two", "--keep", "all"]);
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(" DRY-RUNNING"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    let addresses = lines[at + 1].trim();
    let re = regex::Regex::new(r"^addresses: ua0 (127\.\d+\.\d+\.\d+), ua1 (127\.\d+\.\d+\.\d+)$")
        .unwrap();
    let c = re
        .captures(addresses)
        .unwrap_or_else(|| panic!("{addresses:?}"));
    let (ua0, ua1) = (c[1].to_string(), c[2].to_string());
    let folder = sb
        .run_folders()
        .into_iter()
        .find(|f| f.parent().unwrap().ends_with("two-0000"))
        .unwrap();
    assert_eq!(lines[at + 2].trim(), format!("in {}:", folder.display()));
    let commands: Vec<&str> = lines[at + 3..at + 6].iter().map(|l| l.trim()).collect();
    for (command, ip, scenario) in [
        (commands[0], &ua0, "part0_uas_ua0.xml"),
        (commands[1], &ua1, "part0_uac_ua1.xml"),
        (commands[2], &ua0, "part1_uac_ua0.xml"),
    ] {
        assert!(
            command.contains(&format!(" -i {ip} "))
                && command.contains(&format!(" -sf {scenario} "))
                && command.contains(" 127.0.0.1 "),
            "{command}"
        );
        assert!(
            command.split(' ').next().unwrap().ends_with("sipp"),
            "{command}"
        );
    }
    assert!(lines[at + 6].starts_with("     SUCCESS"), "{}", r.stdout);
}

/// A dry run does not pause between groups unless `--group-pause` says so.
#[test]
fn a_dry_run_pauses_between_groups_only_when_asked() {
    let sb = Sandbox::new();
    suite(&sb);
    let gaps = |pause: Option<&str>| -> Vec<f64> {
        let mut cmd = Command::new(BIN);
        cmd.arg("--dut")
            .arg("127.0.0.1")
            .arg("--testsuite")
            .arg(sb.suite())
            .arg("--run-root")
            .arg(sb.run_root())
            .arg("--log-file")
            .arg(sb.log())
            .arg("--dry-run")
            .arg("--json")
            .arg(sb.path("r.json"));
        if let Some(p) = pause {
            cmd.args(["--group-pause", p]);
        }
        let r = run(cmd);
        assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(sb.path("r.json")).unwrap()).unwrap();
        let started: Vec<f64> = json["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let s = t["started"].as_str().unwrap();
                // Seconds of the day, to the millisecond: `...THH:MM:SS.mmmZ`.
                let time = &s[11..23];
                let h: f64 = time[0..2].parse().unwrap();
                let m: f64 = time[3..5].parse().unwrap();
                let sec: f64 = time[6..12].parse().unwrap();
                h * 3600.0 + m * 60.0 + sec
            })
            .collect();
        started.windows(2).map(|w| w[1] - w[0]).collect()
    };
    // A pause makes a gap of at least its length; none, a gap of a few milliseconds (0.8 s,
    // the default pause, would be a hang).
    for gap in gaps(Some("0.3")) {
        assert!(gap >= 0.3, "{gap}");
    }
    for gap in gaps(None) {
        assert!(gap < 0.8, "{gap}");
    }
}
