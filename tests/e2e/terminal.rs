//! The console on a real terminal (a pseudo-terminal the test opens): colours only there and
//! never with `NO_COLOR`; lines with a reason cut to the terminal's width; the recap of a long
//! run a screenful.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

use crate::common::*;

/// A pseudo-terminal of `columns` × 24: (master, slave).
fn pty(columns: u16) -> (File, OwnedFd) {
    let mut master = -1;
    let mut slave = -1;
    let size = nix::libc::winsize {
        ws_row: 24,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors into the ints we own and reads `size`; names are
    // not asked for (null).
    let rc = unsafe {
        nix::libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are fresh from openpty and owned by nobody else.
    unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Runs `cmd` with its standard output on a terminal `columns` wide; its output, `\r\n` made
/// `\n`.
fn on_terminal(mut cmd: std::process::Command, columns: u16) -> (i32, String) {
    let (mut master, slave) = pty(columns);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sipplauncher");
    // The slave's last copy is the child's now: reading ends (EIO) when the child exits.
    drop(cmd);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => break,
            Err(e) => panic!("read the terminal: {e}"),
        }
    }
    let status = child.wait().expect("wait").code().unwrap_or(-1);
    (status, String::from_utf8_lossy(&out).replace("\r\n", "\n"))
}

fn suite(sb: &Sandbox) {
    write_suite(
        &sb.suite(),
        &[
            (
                "bad-0000/uac_ua0.xml",
                "<scenario>\n{{ a_keyword_nobody_defined_for_this_rather_long_line }}\n</scenario>\n",
            ),
            ("good-0000/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
}

#[test]
fn colours_on_a_terminal_and_lines_cut_to_its_width() {
    let sb = Sandbox::new();
    suite(&sb);
    // An empty NO_COLOR asks for nothing (https://no-color.org).
    let mut cmd = sb.cmd();
    cmd.env("NO_COLOR", "");
    let (status, text) = on_terminal(cmd, 60);
    assert_eq!(status, 1, "{text}");
    assert!(
        text.contains("\x1b[32m   PREPARING\x1b[0m"),
        "green states:\n{text}"
    );
    let not_ready = text
        .lines()
        .find(|l| l.contains("NOT READY") && l.contains("bad-0000"))
        .unwrap_or_else(|| panic!("no NOT READY line:\n{text}"));
    assert!(
        not_ready.starts_with("\x1b[31m   NOT READY\x1b[0m"),
        "{not_ready:?}"
    );
    let visible = not_ready.replace("\x1b[31m", "").replace("\x1b[0m", "");
    assert_eq!(visible.chars().count(), 60, "{visible:?}");
    assert!(visible.ends_with('…'), "{visible:?}");
    // The original's closing lines stay whole.
    assert!(
        text.contains(&format!("{}\nTOTAL: 2\n", "=".repeat(80))),
        "{text}"
    );
}

#[test]
fn no_color_means_no_colour_even_on_a_terminal() {
    let sb = Sandbox::new();
    suite(&sb);
    let mut cmd = sb.cmd();
    cmd.env("NO_COLOR", "1");
    let (status, text) = on_terminal(cmd, 200);
    assert_eq!(status, 1, "{text}");
    assert!(text.contains("   PREPARING"), "{text}");
    assert!(!text.contains('\x1b'), "{text:?}");
    // Nor in a pipe.
    let r = run(sb.cmd());
    assert!(r.stdout.contains("   PREPARING"), "{}", r.stdout);
    assert!(!r.stdout.contains('\x1b'), "{:?}", r.stdout);
}

/// A test folder whose name holds an escape sequence and a line break: the state lines, the
/// recap and `list` show it escaped, so it neither colours the terminal nor forges a line.
#[test]
fn a_hostile_test_name_cannot_drive_the_terminal() {
    let sb = Sandbox::new();
    let evil = "evil\u{1b}[31m\nFAILED: 0-0000";
    write_suite(
        &sb.suite(),
        &[(
            format!("{evil}/uac_ua0.xml"),
            "<scenario>{{ nosuch }}</scenario>\n".to_string(),
        )],
    );
    let r = run(sb.cmd());
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains('\x1b'), "{:?}", r.stdout);
    let shown = "evil\\u{1b}[31m\\nFAILED: 0-0000";
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("   NOT READY") && l.contains(shown)),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with("FAILED:"))
            .count(),
        0,
        "a dry run has no FAILED line; none forged: {}",
        r.stdout
    );
    let mut list = std::process::Command::new(BIN);
    list.arg("list").arg("--testsuite").arg(sb.suite());
    let l = run(list);
    assert_eq!(l.status, 0, "{}", l.stderr);
    assert!(
        l.stdout.starts_with(&format!("{shown}\n")),
        "{:?}",
        l.stdout
    );
}

/// Issue 11.3 on a long run (a soak whose tests keep failing): the recap takes a screenful,
/// per test how many of its runs did not pass with the first and the last, and counts what does
/// not fit; a screenful is the terminal's rows, or 50 lines in a pipe (a CI log).
#[test]
fn a_long_run_is_recapped_per_test_in_a_screenful() {
    let sb = Sandbox::new();
    let bad = ["a", "b", "c", "d", "e"];
    let mut files = vec![("good-0000/uac_ua0.xml".to_string(), OPTIONS_UAC.to_string())];
    for t in bad {
        files.push((
            format!("{t}-bad-0000/uac_ua0.xml"),
            "<scenario>{{ nosuch }}</scenario>\n".to_string(),
        ));
    }
    write_suite(&sb.suite(), &files);
    // 60 runs: each failing test 10 times (indices t, t + 6, ... t + 54), good 10 times.
    let cmd = || {
        let mut c = sb.cmd();
        c.args(["--total", "60", "--keep-max", "2"]);
        c
    };
    let per_test = |lines: &[String], shown: usize| {
        assert_eq!(
            lines[0],
            "Did not pass: 50 of 60 test runs; per test, the first and the last (every run is in \
             the JSON and JUnit reports)",
            "{lines:#?}"
        );
        let mut at = 1;
        for (i, t) in bad.iter().take(shown).enumerate() {
            let name = format!("{t}-bad-0000");
            assert_eq!(lines[at], format!("{name}: 10 of 10 runs did not pass"));
            for (k, index) in [i, i + 54].into_iter().enumerate() {
                let state = &lines[at + 1 + 2 * k];
                assert!(
                    state.starts_with("   NOT READY")
                        && state.contains(&format!("{name} ({index}-"))
                        && state.contains("nosuch"),
                    "{state:?} in {lines:#?}"
                );
                let evidence = lines[at + 2 + 2 * k].trim();
                // --keep-max 2: only the first two failures' folders (runs 0 and 1) stay.
                if index < 2 {
                    assert!(evidence.starts_with("kept: "), "{evidence:?}");
                } else {
                    assert_eq!(
                        evidence,
                        "folder removed: --keep-max 2 failed runs' folders are kept already"
                    );
                }
            }
            at += 5;
        }
        at
    };

    // In a pipe: 50 lines at most; the five tests' blocks fit (26 lines).
    let r = run(cmd());
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
    let (_, lines) = crate::common::recap(&r.stdout);
    assert_eq!(per_test(&lines, bad.len()), lines.len(), "{lines:#?}");
    assert_eq!(sb.run_folders().len(), 2, "{:?}", sb.run_folders());

    // On a terminal of 24 rows (uncoloured, to read it): four blocks, then what did not fit,
    // counted.
    let mut c = cmd();
    c.env("NO_COLOR", "1");
    let (status, text) = on_terminal(c, 200);
    assert_eq!(status, 1, "{text}");
    let (_, lines) = crate::common::recap(&text);
    assert!(lines.len() <= 24, "{lines:#?}");
    let at = per_test(&lines, 4);
    assert_eq!(
        lines[at..],
        ["... and 1 more tests with runs that did not pass (see the reports)"],
        "{lines:#?}"
    );
}
