//! The HTML report of a real run in the lab (a call that passes, a call the callee refuses with
//! 486), opened in a real browser: Debian's Chromium, headless, in a network namespace of its
//! own with no link at all (so it could not fetch anything even if the page asked). Checked on
//! the DOM Chromium made: each test's ladder, its arrows in order, the failed message's
//! highlight and text, the filter from the address; then `sipplauncher report` makes the same
//! page from the JSON report.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use crate::lab::{have, wait_with_timeout, Lab};
use crate::real::{real_cmd, run_in, show, write_real_suite, CALL_UAC, CALL_UAS};

/// A callee that refuses the call: 486, then the ACK of it.
const BUSY_UAS: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="busy">
  <recv request="INVITE"/>
  <send>
    <![CDATA[

      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"#;

/// Chromium, headless, on `page` in a fresh network namespace (`unshare -n`: only a loopback
/// that is down), with `extra` (`--dump-dom`, `--screenshot=...`); its standard output.
fn chromium(page: &str, profile: &Path, extra: &[&str]) -> String {
    assert!(
        have("chromium"),
        "chromium is not installed (apt-get install -y chromium): the HTML report is checked in it"
    );
    let child = Command::new("unshare")
        .args(["-n", "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(page)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let out = wait_with_timeout(child, Duration::from_secs(90), "chromium");
    assert!(
        out.status.success(),
        "chromium {extra:?} {page}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The part of `dom` from `start` to the next `end`.
fn between<'a>(dom: &'a str, start: &str, end: &str) -> &'a str {
    let at = dom
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in the page"));
    let len = dom[at..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end} after {start}"));
    &dom[at..at + len]
}

/// The arrows of a ladder (the DOM of its `<svg>`): each one's classes and label, in order.
fn arrows(svg: &str) -> Vec<(String, String)> {
    let re = regex::Regex::new(
        r#"(?s)<g class="(msg[^"]*)"[^>]*>.*?<text class="label"[^>]*>([^<]*)</text>"#,
    )
    .expect("pattern");
    re.captures_iter(svg)
        .map(|c| (c[1].to_string(), c[2].trim().to_string()))
        .collect()
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn html_report_of_a_failing_and_a_passing_test_in_chromium() {
    let lab = Lab::up("html_report");
    let sb = Sandbox::new();
    write_real_suite(
        &sb.suite(),
        &[
            ("busy/uas_ua0.xml", BUSY_UAS),
            ("busy/uac_ua1.xml", CALL_UAC),
            ("call/uas_ua0.xml", CALL_UAS),
            ("call/uac_ua1.xml", CALL_UAC),
        ],
    );
    let (html, json) = (sb.path("report.html"), sb.path("report.json"));
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    // No run folder kept (the failed run's would be, by default): the ladders must come from
    // the JSON report below.
    cmd.args(["--group", "2", "--keep", "none", "--html"])
        .arg(&html)
        .arg("--json")
        .arg(&json);
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 1, "busy fails: {}", show(&r));
    assert!(r.stdout.contains("SUCCESS: 1"), "{}", show(&r));

    let profile = tempfile::tempdir().expect("profile");
    let url = format!("file://{}", html.display());
    let dom = chromium(&url, profile.path(), &["--dump-dom"]);
    assert!(dom.contains(r#"id="verdict">FAILED</span>"#), "{dom}");
    assert!(dom.contains(&lab.dut().to_string()));

    // busy (run 0): INVITE to the DUT, relayed to the callee, its 486 relayed back: the 486
    // that reached the UAC is the message SIPp did not expect.
    let busy = between(&dom, r#"<div class="ladder FAIL" id="ladder-0""#, "</svg>");
    assert!(
        busy.contains(">uac_ua1</text>")
            && busy.contains(">DUT</text>")
            && busy.contains(">uas_ua0</text>")
    );
    let a = arrows(busy);
    let labels: Vec<&str> = a.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(labels.first(), Some(&"INVITE"), "{a:?}");
    assert!(
        labels
            .iter()
            .filter(|l| **l == "486 Busy Here (INVITE)")
            .count()
            == 2,
        "{a:?}"
    );
    let failed: Vec<&(String, String)> = a.iter().filter(|(c, _)| c.contains("failed")).collect();
    assert_eq!(failed.len(), 1, "one highlighted: {a:?}");
    assert_eq!(failed[0].1, "486 Busy Here (INVITE)");
    let hl = a
        .iter()
        .position(|(c, _)| c.contains("failed"))
        .expect("highlighted");
    assert!(
        hl > labels
            .iter()
            .position(|l| *l == "486 Busy Here (INVITE)")
            .expect("486"),
        "the second 486 (DUT to UAC) is the one: {a:?}"
    );
    let shown = between(&dom, &format!(r#"id="ladder-0-m{hl}""#), "</pre>");
    assert!(!shown.contains("hidden"), "its text is shown: {shown}");
    assert!(shown.contains("SIP/2.0 486 Busy Here"));
    assert!(dom.contains("highlighted: the message SIPp did not expect"));

    // call (run 1), the passing run: the whole call through the DUT, nothing highlighted.
    let call = between(
        &dom,
        r#"<div class="ladder SUCCESS" id="ladder-1""#,
        "</svg>",
    );
    assert!(dom.contains("A passing run: 1 (1-"));
    let a = arrows(call);
    let labels: Vec<&str> = a.iter().map(|(_, l)| l.as_str()).collect();
    let order = [
        "INVITE",
        "180 Ringing (INVITE)",
        "200 OK (INVITE)",
        "ACK",
        "BYE",
        "200 OK (BYE)",
    ];
    let mut at = 0;
    for want in order {
        at += labels[at..]
            .iter()
            .position(|l| *l == want)
            .unwrap_or_else(|| panic!("{want} after arrow {at}: {labels:?}"));
    }
    assert!(labels.len() >= 12, "both legs of each message: {labels:?}");
    assert!(a.iter().all(|(c, _)| !c.contains("failed")));
    // Folded (the failures stand out); a link to it (the runs table's) unfolds it.
    let fold = |dom: &str| between(dom, r#"id="ladder-1""#, "</summary>").to_string();
    assert!(
        fold(&dom).contains(r#"<details class="fold">"#),
        "{}",
        fold(&dom)
    );
    let linked = chromium(&format!("{url}#ladder-1"), profile.path(), &["--dump-dom"]);
    assert!(
        fold(&linked).contains(r#"<details class="fold" open="#),
        "{}",
        fold(&linked)
    );
    assert!(
        !between(&dom, r#"id="ladder-0""#, "</svg>").contains("<details"),
        "a failed run's ladder is open"
    );

    // The filter from the address: only failures.
    let filtered = chromium(&format!("{url}#show=FAIL"), profile.path(), &["--dump-dom"]);
    let row = |index: u32| between(&filtered, &format!(r#"<tr id="run-{index}""#), ">").to_string();
    assert!(
        row(1).contains("hidden"),
        "the passing run hidden: {}",
        row(1)
    );
    assert!(
        !row(0).contains("hidden"),
        "the failed run shown: {}",
        row(0)
    );

    // The JSON carries the ladders, with the time SIPp wrote its error (from its error file):
    // after the 486 reached the UAC.
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&json).expect("json")).expect("a JSON report");
    let ladder = &report["tests"][0]["ladder"];
    let failure_t = ladder["failure_t"].as_f64().expect("failure_t");
    let msgs = ladder["messages"].as_array().expect("messages");
    assert!(failure_t >= msgs[hl]["t"].as_f64().expect("t"), "{ladder}");
    assert!(report["tests"][1]["ladder"]["messages"]
        .as_array()
        .is_some_and(|m| m.len() >= 12));
    assert_eq!(
        report["tests"][1]["ladder"]["failure_t"],
        serde_json::Value::Null
    );

    // A screenshot, for people (CI keeps it when it fails).
    let png = sb.path("report.png");
    chromium(
        &url,
        profile.path(),
        &[&format!("--screenshot={}", png.display())],
    );
    let size = fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "a screenshot of the page: {size} bytes");

    // `report` makes the same page from the JSON report (the ladders travel in it: the run
    // folders are gone).
    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
    let again = sb.path("again.html");
    let out = Command::new(BIN)
        .args(["report"])
        .arg(&json)
        .arg("--html")
        .arg(&again)
        .output()
        .expect("run report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stamp = regex::Regex::new(r"Written [0-9TZ:.-]+").expect("pattern");
    let read = |p: &Path| fs::read_to_string(p).expect("read");
    assert_eq!(
        stamp.replace_all(&read(&again), ""),
        stamp.replace_all(&read(&html), "")
    );
}
