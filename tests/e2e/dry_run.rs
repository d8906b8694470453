//! Whole runs in `--dry-run`: the printed state sequence of each test run, exit statuses,
//! the reports, and the run folders with `--leave-temp`.

use std::fs;
use std::process::Command;

use crate::common::*;

const DRY_SEQUENCE: [&str; 4] = ["PREPARING", "DRY-RUNNING", "SUCCESS", "CLEANING"];

fn three_test_suite(sb: &Sandbox) {
    write_suite(
        &sb.suite(),
        &[
            ("a-0000/uac_ua0.xml", OPTIONS_UAC),
            ("b-0000/uac_ua0.xml", OPTIONS_UAC),
            ("c-0000/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
}

/// The original's frame around the state lines, line for line: the start, `=` around GLOBAL's
/// pre-run and post-run, `-` between groups, the closing counts (no SUCCESS/FAILED in a dry
/// run) and the elapsed time; nothing on standard error.
#[test]
fn the_console_lines_are_the_originals() {
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &[
            ("GLOBAL/before.sh", "exit 0\n"),
            ("a-0000/uac_ua0.xml", OPTIONS_UAC),
            ("b-0000/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let r = run(sb.cmd());
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stderr, "");
    let ids = regex::Regex::new(r"\((\d+)-[a-z]{6}\)").unwrap();
    let took = regex::Regex::new(r" - took \S+$").unwrap();
    // The dry run's own lines (addresses, SIPp command lines) are indented by 13: not the
    // original's, checked in `list.rs`.
    let plan = " ".repeat(13);
    let text: Vec<String> = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with(&plan))
        .map(|l| {
            took.replace(&ids.replace(l, "($1-id)"), " - took T")
                .into_owned()
        })
        .collect();
    let eq = "=".repeat(80);
    let dash = "-".repeat(80);
    let expected = [
        "Ready to run 2 tests (in groups of 1)",
        "Dry run: no SIPp, no scripts, no change to the network",
        &eq,
        "   PREPARING                   GLOBAL (0-id)",
        &eq,
        "   PREPARING                   a-0000 (0-id)",
        " DRY-RUNNING                   a-0000 (0-id)",
        "     SUCCESS                   a-0000 (0-id) - took T",
        "    CLEANING                   a-0000 (0-id)",
        &dash,
        "   PREPARING                   b-0000 (1-id)",
        " DRY-RUNNING                   b-0000 (1-id)",
        "     SUCCESS                   b-0000 (1-id) - took T",
        "    CLEANING                   b-0000 (1-id)",
        &eq,
        "    CLEANING                   GLOBAL (0-id)",
        &eq,
        "TOTAL: 2",
        &eq,
        "Total time elapsed 0s",
    ];
    assert_eq!(text, expected, "{}", r.stdout);
    // One group for all: the original's other wording.
    let mut cmd = sb.cmd();
    cmd.args(["--group", "2"]);
    let r = run(cmd);
    assert!(
        r.stdout.starts_with("Ready to run 2 tests in one group\n"),
        "{}",
        r.stdout
    );
}

/// `--keep`: failed runs' folders stay (at most `--keep-max`), passing runs' go; the recap
/// and the JSON report list every failure and say which folders are kept; kept folders are
/// left alone by later runs; `--keep none` and `--keep all` (`--leave-temp`).
#[test]
fn failed_runs_keep_their_folders_up_to_keep_max() {
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &[
            (
                "bad-0000/uac_ua0.xml",
                "<scenario>{{ nosuch }}</scenario>\n",
            ),
            ("good-0000/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = sb.cmd();
    cmd.args(["--total", "6", "--keep-max", "2", "--json"])
        .arg(sb.path("r.json"));
    let r = run(cmd);
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
    let folders = sb.run_folders();
    let bad = sb.run_root().join("bad-0000");
    assert_eq!(folders.len(), 2, "{folders:?}");
    assert!(folders.iter().all(|f| f.starts_with(&bad)), "{folders:?}");
    for f in &folders {
        assert!(!f.join(".sipplauncher-owner").exists());
        assert!(f.join("sipplauncher.log").exists());
    }
    // Every failure recapped: the first two kept, the third over --keep-max.
    let (failed, lines) = recap(&r.stdout);
    assert_eq!(lines[0], "Did not pass: 3 of 6 test runs", "{}", r.stdout);
    let ids: Vec<(u64, &str)> = failed.iter().map(|l| (l.index, l.state.as_str())).collect();
    assert_eq!(ids, [(0, "NOT READY"), (2, "NOT READY"), (4, "NOT READY")]);
    for (i, l) in failed.iter().enumerate().take(2) {
        assert_eq!(
            lines[2 + 2 * i].trim(),
            format!("kept: {}", bad.join(&l.run_id).display()),
            "{}",
            r.stdout
        );
    }
    assert_eq!(
        lines[6].trim(),
        "folder removed: --keep-max 2 failed runs' folders are kept already"
    );
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(sb.path("r.json")).unwrap()).unwrap();
    let fates: Vec<(&str, bool)> = json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["run_folder_fate"].as_str().unwrap(),
                t["run_folder_kept"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fates,
        [
            ("kept", true),
            ("removed", false),
            ("kept", true),
            ("removed", false),
            ("removed_over_keep_max", false),
            ("removed", false)
        ]
    );

    // A later run leaves them alone; --keep none keeps nothing of its own.
    let mut cmd = sb.cmd();
    cmd.args(["--keep", "none"]);
    let none = run(cmd);
    assert_eq!(none.status, 1);
    assert_eq!(sb.run_folders(), folders);
    assert_eq!(
        crate::common::recap(&none.stdout).1[2].trim(),
        "folder removed (--keep none)"
    );

    // --keep all and --leave-temp keep every folder, passing or not, beyond --keep-max.
    for keep in [&["--keep", "all"][..], &["--leave-temp"][..]] {
        let sb = Sandbox::new();
        write_suite(
            &sb.suite(),
            &[
                (
                    "bad-0000/uac_ua0.xml",
                    "<scenario>{{ nosuch }}</scenario>\n",
                ),
                ("good-0000/uac_ua0.xml", OPTIONS_UAC),
            ],
        );
        let mut cmd = sb.cmd();
        cmd.args(["--total", "4", "--keep-max", "1"]).args(keep);
        assert_eq!(run(cmd).status, 1);
        assert_eq!(sb.run_folders().len(), 4, "{keep:?}");
    }
}

/// Run through sudo (SUDO_UID/SUDO_GID): a kept folder, everything in it and the report files
/// go to that user, who can reach the folder (search, not list, on the run root and `<test>`);
/// without sudo, ownership and modes stay as they are.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root (to hand files to another user): cargo test --features lab"
)]
fn kept_evidence_and_reports_go_to_the_sudo_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    const NOBODY: u32 = 65_534;
    assert!(
        nix::unistd::geteuid().is_root(),
        "needs root (to hand files to another user)"
    );
    let run_with = |sudo: bool| {
        let sb = Sandbox::new();
        std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        write_suite(
            &sb.suite(),
            &[
                (
                    "bad-0000/uac_ua0.xml",
                    "<scenario>{{ nosuch }}</scenario>\n",
                ),
                ("good-0000/uac_ua0.xml", OPTIONS_UAC),
            ],
        );
        let mut cmd = sb.cmd();
        cmd.arg("--json")
            .arg(sb.path("r.json"))
            .arg("--junit")
            .arg(sb.path("r.xml"))
            .arg("--html")
            .arg(sb.path("r.html"));
        if sudo {
            cmd.env("SUDO_UID", NOBODY.to_string())
                .env("SUDO_GID", NOBODY.to_string());
        } else {
            cmd.env_remove("SUDO_UID").env_remove("SUDO_GID");
        }
        assert_eq!(run(cmd).status, 1);
        sb
    };
    let owners = |p: &std::path::Path| {
        let mut all = vec![p.to_path_buf()];
        let mut i = 0;
        while i < all.len() {
            if all[i].is_dir() {
                let more: Vec<_> = fs::read_dir(&all[i])
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
                    .collect();
                all.extend(more);
            }
            i += 1;
        }
        all.iter()
            .map(|f| {
                let m = fs::symlink_metadata(f).unwrap();
                (m.uid(), m.gid())
            })
            .collect::<std::collections::BTreeSet<_>>()
    };
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().mode() & 0o777;

    let sb = run_with(true);
    let folders = sb.run_folders();
    assert_eq!(folders.len(), 1, "{folders:?}");
    let kept = &folders[0];
    assert_eq!(owners(kept), [(NOBODY, NOBODY)].into());
    assert_eq!(mode(&sb.run_root()), 0o711);
    assert_eq!(mode(&sb.run_root().join("bad-0000")), 0o711);
    for report in ["r.json", "r.xml", "r.html"] {
        assert_eq!(
            fs::metadata(sb.path(report)).unwrap().uid(),
            NOBODY,
            "{report}"
        );
    }
    // nobody reads its log, but lists no run folder.
    let as_nobody = |args: &[&std::path::Path]| {
        Command::new(args[0])
            .args(&args[1..])
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .unwrap()
    };
    let log = kept.join("sipplauncher.log");
    let cat = as_nobody(&[std::path::Path::new("cat"), &log]);
    assert!(
        cat.status.success(),
        "{}",
        String::from_utf8_lossy(&cat.stderr)
    );
    assert!(String::from_utf8_lossy(&cat.stdout).contains("nosuch"));
    let root = sb.run_root();
    assert!(!as_nobody(&[std::path::Path::new("ls"), &root])
        .status
        .success());

    let sb = run_with(false);
    let kept = &sb.run_folders()[0];
    assert_eq!(owners(kept), [(0, 0)].into());
    assert_eq!(mode(&sb.run_root()), 0o700);
    for report in ["r.json", "r.xml", "r.html"] {
        assert_eq!(fs::metadata(sb.path(report)).unwrap().uid(), 0, "{report}");
    }
}

#[test]
fn example_suite_passes_with_reports_and_rendered_folders() {
    let sb = Sandbox::new();
    let mut cmd = sb.cmd();
    cmd.arg("--testsuite")
        .arg(repo().join("tmp-testsuite"))
        .arg("--leave-temp")
        .arg("--junit")
        .arg(sb.path("junit.xml"))
        .arg("--json")
        .arg(sb.path("report.json"));
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("Ready to run 4 tests (in groups of 1)"),
        "{}",
        r.stdout
    );
    let lines = state_lines(&r.stdout);
    let names: Vec<&str> = lines
        .iter()
        .filter(|l| l.state == "PREPARING")
        .map(|l| l.test.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "call-0000",
            "call-twogroups-0000",
            "dns-0000",
            "options-0000"
        ]
    );
    for i in 0..4 {
        assert_eq!(states_of(&lines, i), DRY_SEQUENCE, "{}", r.stdout);
    }
    // The original's closing lines: a dry run has no SUCCESS/FAILED lines.
    assert_eq!(closing_lines(&r.stdout, true), (4, None, None));
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(sb.path("report.json")).unwrap()).unwrap();
    assert_eq!(
        json["summary"],
        serde_json::json!({"total": 4, "success": 4, "failed": 0})
    );

    // Every run folder kept, every file rendered: no template syntax left, keywords in place.
    let folders = sb.run_folders();
    let tests: Vec<String> = folders
        .iter()
        .map(|f| {
            f.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n != "GLOBAL")
        .collect();
    assert_eq!(
        tests,
        [
            "call-0000",
            "call-twogroups-0000",
            "dns-0000",
            "options-0000"
        ]
    );
    for folder in &folders {
        for entry in fs::read_dir(folder).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = fs::read_to_string(entry.path()).unwrap();
            if name.ends_with(".xml") || name.ends_with(".sh") || name == "dns.txt" {
                assert!(
                    !text.contains("{{") && !text.contains("{%"),
                    "{name} not rendered:\n{text}"
                );
            }
        }
    }
    let call = folders
        .iter()
        .find(|f| f.to_string_lossy().contains("/call-0000/"))
        .unwrap();
    let uac = fs::read_to_string(call.join("uac_ua1.xml")).unwrap();
    assert!(uac.contains("INVITE sip:[field0]@127.0.0."), "{uac}");
    assert!(uac.contains("<recv response=\"200\" rtd=\"true\" rrs=\"true\"/>"));
    assert!(call.join("sipplauncher.log").is_file());
    let run_id = call.file_name().unwrap().to_string_lossy().into_owned();
    assert!(fs::read_to_string(call.join("before.sh"))
        .unwrap()
        .contains(&run_id));
    let dns = fs::read_to_string(
        folders
            .iter()
            .find(|f| f.to_string_lossy().contains("/dns-0000/"))
            .unwrap()
            .join("dns.txt"),
    )
    .unwrap();
    assert!(dns.contains(".example.com.    A    127.0.0."), "{dns}");

    // Reports.
    let junit = fs::read_to_string(sb.path("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 4, "{junit}");
    assert!(!junit.contains("<failure"));
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(sb.path("report.json")).unwrap()).unwrap();
    let tests = json["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 4);
    for (i, t) in tests.iter().enumerate() {
        assert_eq!(t["index"], i as u64);
        assert_eq!(t["result"], "SUCCESS");
        assert_eq!(t["state"], "CLEAN");
        assert_eq!(t["passed"], true);
        let line = lines.iter().find(|l| l.index == i as u64).unwrap();
        assert_eq!(t["run_id"], line.run_id.as_str());
        assert_eq!(t["name"], line.test.as_str());
    }
    assert_eq!(json["summary"]["total"], 4);
    assert_eq!(json["dry_run"], true);
}

#[test]
fn original_example_suite_renders_unchanged() {
    let sb = Sandbox::new();
    let mut cmd = sb.cmd();
    cmd.arg("--testsuite")
        .arg(compat_suite())
        .arg("--leave-temp");
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let lines = state_lines(&r.stdout);
    let mut names: Vec<&str> = lines
        .iter()
        .filter(|l| l.state == "SUCCESS")
        .map(|l| l.test.as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "normal-0000",
            "normal-0001",
            "normal-dns-0000",
            "options-0000",
            "options-0001"
        ]
    );
    let mut scenarios = 0;
    for folder in sb.run_folders() {
        if folder.parent().unwrap().ends_with("GLOBAL") {
            continue;
        }
        for entry in fs::read_dir(&folder).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".xml") {
                scenarios += 1;
                let text = fs::read_to_string(entry.path()).unwrap();
                // The macro from TEMPLATES/options.jinja2, expanded (also in the files that
                // were symlinks in the original).
                assert!(
                    text.contains("<send start_rtd=\"true\">"),
                    "{name}:\n{text}"
                );
                assert!(
                    text.contains("OPTIONS sip:[remote_ip]: SIP/2.0"),
                    "{name}:\n{text}"
                );
                assert!(!text.contains("{{") && !text.contains("{%"), "{name}");
            }
        }
    }
    assert_eq!(scenarios, 11);
}

#[test]
fn groups_prepare_in_order_and_clean_up_in_reverse() {
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &each_test(
            (0..5).map(|i| format!("t{i}")),
            &[("uac_ua0.xml", OPTIONS_UAC)],
        ),
    );
    let mut cmd = sb.cmd();
    cmd.args(["--group", "3"]);
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Ready to run 5 tests (in groups of 3)"));
    let lines = state_lines(&r.stdout);
    let seq: Vec<(String, u64)> = lines.iter().map(|l| (l.state.clone(), l.index)).collect();
    let p = |s: &str, i| (s.to_string(), i);
    assert_eq!(
        seq,
        vec![
            p("PREPARING", 0),
            p("PREPARING", 1),
            p("PREPARING", 2),
            p("DRY-RUNNING", 0),
            p("SUCCESS", 0),
            p("DRY-RUNNING", 1),
            p("SUCCESS", 1),
            p("DRY-RUNNING", 2),
            p("SUCCESS", 2),
            p("CLEANING", 2),
            p("CLEANING", 1),
            p("CLEANING", 0),
            p("PREPARING", 3),
            p("PREPARING", 4),
            p("DRY-RUNNING", 3),
            p("SUCCESS", 3),
            p("DRY-RUNNING", 4),
            p("SUCCESS", 4),
            p("CLEANING", 4),
            p("CLEANING", 3),
        ]
    );
    // A separator between the two groups; no run folder left without --leave-temp.
    assert!(sb.run_folders().is_empty());
}

/// `--window`: no groups (no separator line), every run still goes through its four states, the
/// reports say so; with `--group-stop-first-fail` nothing starts after a failure.
#[test]
fn window_runs_every_test_without_groups() {
    let sb = Sandbox::new();
    let mut files = each_test(
        (0..5).map(|i| format!("t{i}")),
        &[("uac_ua0.xml", OPTIONS_UAC)],
    );
    files.push((
        "a-bad/uac_ua0.xml".into(),
        "<scenario>{{ nosuch }}</scenario>\n",
    ));
    write_suite(&sb.suite(), &files);

    let mut cmd = sb.cmd();
    cmd.args(["--group", "3", "--window", "--pattern-exclude", "a-bad"])
        .arg("--json")
        .arg(sb.path("r.json"));
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("Ready to run 5 tests (up to 3 at once, no groups)"),
        "{}",
        r.stdout
    );
    // No group, so no separator between groups.
    let separators = r.stdout.lines().filter(|l| l.starts_with("-----")).count();
    assert_eq!(separators, 0, "{}", r.stdout);
    let lines = state_lines(&r.stdout);
    for index in 0..5 {
        assert_eq!(
            states_of(&lines, index),
            ["PREPARING", "DRY-RUNNING", "SUCCESS", "CLEANING"],
            "run {index}:\n{}",
            r.stdout
        );
    }
    assert_eq!(summary(&r.stdout, "TOTAL"), Some(5));
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(sb.path("r.json")).unwrap()).unwrap();
    assert_eq!(report["window"], true);
    assert_eq!(report["group"], 3);
    assert!(sb.run_folders().is_empty());

    // The failing test comes first: nothing else starts.
    let mut cmd = sb.cmd();
    cmd.args(["--group", "1", "--window", "--group-stop-first-fail"]);
    let r = run(cmd);
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
    let lines = state_lines(&r.stdout);
    assert_eq!(
        states_of(&lines, 0),
        ["PREPARING", "NOT READY"],
        "{}",
        r.stdout
    );
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert_eq!(summary(&r.stdout, "TOTAL"), Some(1));
}

#[test]
fn definition_and_template_errors_are_not_ready_and_the_run_goes_on() {
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &[
            ("a-dup/part0_uac_ua1.xml", OPTIONS_UAC),
            ("a-dup/part0_uas_ua1.xml", OPTIONS_UAC),
            ("b-empty/README", "no scenario here"),
            (
                "c-keyword/uac_ua0.xml",
                "<scenario>\n{{ ua0.host }}\n{{ nosuch.thing }}\n</scenario>\n",
            ),
            ("d-good/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = sb.cmd();
    cmd.arg("--json").arg(sb.path("r.json"));
    let r = run(cmd);
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
    let lines = state_lines(&r.stdout);
    assert_eq!(states_of(&lines, 0), ["PREPARING", "NOT READY"]);
    assert_eq!(states_of(&lines, 1), ["PREPARING", "NOT READY"]);
    assert_eq!(states_of(&lines, 2), ["PREPARING", "NOT READY"]);
    assert_eq!(states_of(&lines, 3), DRY_SEQUENCE);
    let reason = |i: u64| {
        lines
            .iter()
            .find(|l| l.index == i && l.state == "NOT READY")
            .unwrap()
            .rest
            .clone()
    };
    assert!(
        reason(0).contains("part0_uac_ua1.xml") && reason(0).contains("part0_uas_ua1.xml"),
        "{}",
        reason(0)
    );
    assert!(reason(1).contains("no scenario"), "{}", reason(1));
    assert!(
        reason(2).contains("uac_ua0.xml")
            && reason(2).contains("line 3")
            && reason(2).contains("nosuch.thing"),
        "{}",
        reason(2)
    );
    assert_eq!(closing_lines(&r.stdout, true), (4, None, None));
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(sb.path("r.json")).unwrap()).unwrap();
    assert_eq!(
        json["summary"],
        serde_json::json!({"total": 4, "success": 1, "failed": 3})
    );
    assert_eq!(json["tests"][2]["result"], "NOT READY");
    assert!(json["tests"][2]["reason"]
        .as_str()
        .unwrap()
        .contains("nosuch.thing"));
    // The NOT READY runs whose folder was made (the template error's) keep it as evidence,
    // with the reason in its log; those refused before (definition errors) made none.
    let folders = sb.run_folders();
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert!(folders[0].parent().unwrap().ends_with("c-keyword"));
    let log = fs::read_to_string(folders[0].join("sipplauncher.log")).unwrap();
    assert!(log.contains("nosuch.thing"), "{log}");
    assert!(!folders[0].join(".sipplauncher-owner").exists());
    assert_eq!(json["tests"][2]["run_folder_kept"], true);
    assert_eq!(json["tests"][3]["run_folder_kept"], false);
}

#[test]
fn fail_expected_inverts_and_stop_first_fail_stops() {
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &[
            ("a/uac_ua0.xml", "{{ broken"),
            ("b/uac_ua0.xml", OPTIONS_UAC),
            ("c/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = sb.cmd();
    cmd.arg("--fail-expected");
    assert_eq!(run(cmd).status, 0);

    let mut cmd = sb.cmd();
    cmd.args(["--group-stop-first-fail", "--group", "2"]);
    let r = run(cmd);
    assert_eq!(r.status, 1);
    let lines = state_lines(&r.stdout);
    assert!(lines.iter().all(|l| l.index < 2), "{}", r.stdout);

    // A passing suite with --fail-expected fails.
    let mut cmd = sb.cmd();
    cmd.args(["--pattern-only", "[bc]", "--fail-expected"]);
    assert_eq!(run(cmd).status, 1);
}

#[test]
fn patterns_total_and_random_with_seed() {
    let sb = Sandbox::new();
    three_test_suite(&sb);
    // Anchored at the start like re.match: "0000" matches nothing, "b" only b-0000.
    let mut cmd = sb.cmd();
    cmd.args(["--pattern-only", "[ab]", "--pattern-exclude", "a"]);
    let r = run(cmd);
    let tests: Vec<String> = state_lines(&r.stdout)
        .into_iter()
        .filter(|l| l.state == "SUCCESS")
        .map(|l| l.test)
        .collect();
    assert_eq!(tests, ["b-0000"]);

    let mut cmd = sb.cmd();
    cmd.args(["--total", "7", "--group", "2"]);
    let r = run(cmd);
    assert_eq!(r.status, 0);
    let tests: Vec<String> = state_lines(&r.stdout)
        .into_iter()
        .filter(|l| l.state == "SUCCESS")
        .map(|l| l.test)
        .collect();
    assert_eq!(
        tests,
        ["a-0000", "b-0000", "c-0000", "a-0000", "b-0000", "c-0000", "a-0000"]
    );
    assert_eq!(summary(&r.stdout, "TOTAL"), Some(7));

    let order = |seed: &str| {
        let mut cmd = sb.cmd();
        cmd.args(["--random", "--seed", seed, "--total", "9"]);
        let r = run(cmd);
        assert_eq!(r.status, 0);
        assert!(r.stdout.contains(&format!("seed {seed}")), "{}", r.stdout);
        state_lines(&r.stdout)
            .into_iter()
            .filter(|l| l.state == "SUCCESS")
            .map(|l| l.test)
            .collect::<Vec<_>>()
    };
    let a = order("12345");
    assert_eq!(a, order("12345"), "the seed replays the run");
    for pass in a.chunks(3) {
        let mut p = pass.to_vec();
        p.sort();
        assert_eq!(p, ["a-0000", "b-0000", "c-0000"], "no repeat within a pass");
    }
    // Without --seed a seed is still printed, so that the run can be replayed.
    let mut cmd = sb.cmd();
    cmd.arg("--random");
    let r = run(cmd);
    assert!(r.stdout.contains("--random --seed "), "{}", r.stdout);
}

#[test]
fn keyword_replacement_values_reach_templates_and_override() {
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &[(
            "k/uac_ua0.xml",
            "<x a=\"{{ dut.host }}\" b=\"{{ extra.name }}\" c=\"{{ 'a<b&c' }}\" d=\"{{ 'hi' | b64encode }}\"/>\n",
        )],
    );
    let mut cmd = sb.cmd();
    cmd.arg("--leave-temp").args([
        "--keyword-replacement-values",
        r#"{"dut": {"host": "sip.example.net"}, "extra": {"name": "x&y"}}"#,
    ]);
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let folder = &sb.run_folders()[0];
    let text = fs::read_to_string(folder.join("uac_ua0.xml")).unwrap();
    assert_eq!(
        text,
        "<x a=\"sip.example.net\" b=\"x&y\" c=\"a<b&c\" d=\"aGk=\"/>\n"
    );
}

#[test]
fn a_not_ready_runs_log_holds_why_when_its_folder_is_kept() {
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &[("k/uac_ua0.xml", "<scenario>\n{{ no.such }}\n</scenario>\n")],
    );
    let mut cmd = sb.cmd();
    cmd.arg("--leave-temp");
    let r = run(cmd);
    assert_eq!(r.status, 1, "{}", r.stdout);
    let folders = sb.run_folders();
    assert_eq!(folders.len(), 1, "kept with --leave-temp");
    let log = fs::read_to_string(folders[0].join("sipplauncher.log")).unwrap();
    assert!(
        log.contains("NOT READY") && log.contains("no.such"),
        "{log}"
    );
    // The file itself is left as it was: not rendered, not half-written.
    let text = fs::read_to_string(folders[0].join("uac_ua0.xml")).unwrap();
    assert_eq!(text, "<scenario>\n{{ no.such }}\n</scenario>\n");
}

#[test]
fn a_bad_dns_txt_line_is_not_ready_naming_file_and_line() {
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &[
            (
                "a-dns/dns.txt",
                "# records\nok.example.com A {{ ua0.host }}\nbad.example.com A 300.1.2.3\n",
            ),
            ("a-dns/uac_ua0.xml", OPTIONS_UAC),
            (
                "b-srv/dns.txt",
                "_sip._udp.x.example.com. SRV [10, 60, \"x.example.com.\"]\n",
            ),
            ("b-srv/uac_ua0.xml", OPTIONS_UAC),
            ("c-good/dns.txt", "_sip._udp.y.example.com. SRV [10, 60, 5060, \"y.example.com.\"]\ny.example.com. A {{ ua0.host }}\n"),
            ("c-good/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let r = run(sb.cmd());
    assert_eq!(r.status, 1, "{}", r.stdout);
    let lines = state_lines(&r.stdout);
    let why = |i: u64| {
        lines
            .iter()
            .find(|l| l.index == i && l.state == "NOT READY")
            .unwrap_or_else(|| panic!("{}", r.stdout))
            .rest
            .clone()
    };
    assert!(
        why(0).contains("dns.txt line 3") && why(0).contains("300.1.2.3"),
        "{}",
        why(0)
    );
    assert!(
        why(1).contains("dns.txt line 1") && why(1).contains("SRV"),
        "{}",
        why(1)
    );
    assert_eq!(states_of(&lines, 2), DRY_SEQUENCE);
}

#[test]
fn a_run_folder_that_cannot_be_made_is_not_ready_and_the_run_goes_on() {
    let sb = Sandbox::new();
    write_suite(
        &sb.suite(),
        &[
            ("a/uac_ua0.xml", OPTIONS_UAC),
            ("b/uac_ua0.xml", OPTIONS_UAC),
            ("c/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    // Where b's folders go, a file stands: its run folder cannot be made.
    fs::create_dir_all(sb.run_root()).unwrap();
    fs::write(sb.run_root().join("b"), "in the way").unwrap();
    let r = run(sb.cmd());
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
    let lines = state_lines(&r.stdout);
    assert_eq!(states_of(&lines, 0), DRY_SEQUENCE);
    assert_eq!(states_of(&lines, 1), ["PREPARING", "NOT READY"]);
    let why = &lines.iter().find(|l| l.state == "NOT READY").unwrap().rest;
    assert!(why.contains("create run folder"), "{why}");
    assert_eq!(states_of(&lines, 2), DRY_SEQUENCE);
    assert_eq!(summary(&r.stdout, "TOTAL"), Some(3));
}

/// The general log rotates: `--log-max-size` (MiB) and `--log-keep` old files, `<log>.1` the
/// newest; a run's last line is in `<log>`; nothing older than `<log>.<keep>`.
#[test]
fn the_general_log_rotates_by_size() {
    let sb = Sandbox::new();
    let names: Vec<String> = (0..12).map(|i| format!("t-{i:04}")).collect();
    write_suite(
        &sb.suite(),
        &each_test(&names, &[("uac_ua0.xml", OPTIONS_UAC)]),
    );
    // 2 KiB files: a dozen tests log several times that.
    let mut cmd = sb.cmd();
    cmd.args(["--log-max-size", "0.002", "--log-keep", "2"]);
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let log = sb.log();
    let with = |n: u32| std::path::PathBuf::from(format!("{}.{n}", log.display()));
    for f in [log.clone(), with(1), with(2)] {
        let text = fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let longest = text.lines().map(str::len).max().unwrap_or(0) + 1;
        assert!(
            text.len() <= 2097 || text.len() <= longest,
            "{}: {} bytes",
            f.display(),
            text.len()
        );
        assert!(text.ends_with('\n'), "whole lines: {}", f.display());
    }
    assert!(!with(3).exists(), "only 2 old files are kept");
    // The run's last record is in <log>, its first ones were in files no longer kept.
    let newest = fs::read_to_string(&log).unwrap();
    assert!(
        newest.contains("state CLEAN (took ") && newest.contains("test: t-0011"),
        "{newest}"
    );
    let kept = [with(2), with(1), log.clone()]
        .map(|f| fs::read_to_string(f).unwrap())
        .concat();
    assert!(
        !kept.contains(&format!(
            "sipplauncher {} starting",
            env!("CARGO_PKG_VERSION")
        )) && !kept.contains("test: t-0000,"),
        "{kept}"
    );

    // Bad values: one line, exit 2, no log made.
    let sb = Sandbox::new();
    write_suite(&sb.suite(), &[("a/uac_ua0.xml", OPTIONS_UAC)]);
    for (args, expect) in [
        (["--log-max-size", "0"], "--log-max-size: "),
        (["--log-max-size", "ten"], "--log-max-size: "),
        (["--log-keep", "-1"], "--log-keep: must be at least 0"),
    ] {
        let mut cmd = sb.cmd();
        cmd.args(args);
        expect_usage_error(&sb, cmd, &args.join(" "), &[expect]);
    }
}
