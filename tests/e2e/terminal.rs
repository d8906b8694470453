//! The console on a real terminal (a pseudo-terminal the test opens): colours only there and
//! never with `NO_COLOR`; lines with a reason cut to the terminal's width.

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
    let (status, text) = on_terminal(sb.cmd(), 60);
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
