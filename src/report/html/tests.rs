//! The HTML report: from the event stream (the `--html` sink) and from a JSON report (`report`),
//! what the page holds, its bounds on long runs, and that it fetches nothing.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use sipplauncher_actors::core::state::StateName;
use sipplauncher_actors::events::{Event, EventSink};

use super::*;
use crate::ladder::testing::{frame, message, udp_datagram, write_pcap, Link};
use crate::ladder::{Endpoint, Ladder};
use crate::report::evidence::RunAttachment;
use crate::report::fixture;
use crate::report::json::{Json, RunMeta};

fn meta() -> RunMeta {
    RunMeta {
        tool_version: "0.1.0".into(),
        sipp_version: Some("v3.6.1-SCTP-PCAP-RTPSTREAM".into()),
        dut: "10.99.0.1".into(),
        testsuite: "./suite".into(),
        dry_run: false,
        group: 2,
        window: false,
        command_line: vec![
            "sipplauncher".into(),
            "--dut".into(),
            "10.99.0.1".into(),
            "--keyword-replacement-values".into(),
            r#"{"a": "<b>"}"#.into(),
        ],
        ..RunMeta::default()
    }
}

fn endpoints() -> Vec<Endpoint> {
    let e = |label: &str, a: u8, ua: Option<&str>| Endpoint {
        label: label.into(),
        address: Ipv4Addr::new(10, 99, 0, a),
        ua: ua.map(str::to_string),
    };
    vec![
        e("uac_ua1", 37, Some("ua1")),
        e("DUT", 1, None),
        e("uas_ua0", 12, Some("ua0")),
    ]
}

/// A call: INVITE (sent twice), relayed, then a 404 back to the UAC.
fn failed_ladder() -> Ladder {
    let mut again = message(0, 1, "INVITE sip:x@10.99.0.12 SIP/2.0", "c1", "1 INVITE");
    again.retransmission = true;
    let mut msgs = vec![
        message(0, 1, "INVITE sip:x@10.99.0.12 SIP/2.0", "c1", "1 INVITE"),
        again,
        message(1, 2, "INVITE sip:x@10.99.0.12 SIP/2.0", "c1", "1 INVITE"),
        message(2, 1, "SIP/2.0 404 Not Here", "c1", "1 INVITE"),
        message(1, 0, "SIP/2.0 404 Not Here", "c1", "1 INVITE"),
    ];
    for (i, m) in msgs.iter_mut().enumerate() {
        m.t = i as f64 * 0.01;
        m.text = format!("{}\r\nX-Mark: <msg{i}>\r\n\r\n", m.first_line);
    }
    Ladder {
        pcap: "sipp-bcdefg.pcap".into(),
        started: Some("2024-03-01T12:00:00.200Z".into()),
        endpoints: endpoints(),
        messages: msgs,
        omitted: 0,
        call_id: None,
        failure_t: None,
    }
}

fn passing_ladder() -> Ladder {
    Ladder {
        pcap: "sipp-kqzvxa.pcap".into(),
        started: None,
        endpoints: endpoints(),
        messages: vec![
            message(
                0,
                1,
                "OPTIONS sip:ping@10.99.0.1 SIP/2.0",
                "c0",
                "1 OPTIONS",
            ),
            message(1, 0, "SIP/2.0 200 OK", "c0", "1 OPTIONS"),
        ],
        omitted: 0,
        call_id: None,
        failure_t: None,
    }
}

const REASON: &str = "uac_ua1 (uac) call failed, exit status 1: Aborting call on unexpected message for Call-Id 'c1': while expecting '200' (index 2), received 'SIP/2.0 404 Not Here Via: x CSeq: 1 INVITE '";

/// The fixture's events, run 1 failing with [`REASON`], runs 0 and 1 with their ladders.
fn events() -> Vec<Event> {
    fixture::events()
        .into_iter()
        .map(|mut e| {
            if let Event::Test(t) = &mut e {
                if t.index == 1 && t.state == StateName::Fail {
                    t.reason = Some(REASON.into());
                }
                let ladder = match (t.index, t.state) {
                    (0, StateName::Clean) => Some(passing_ladder()),
                    (1, StateName::Dirty) => Some(failed_ladder()),
                    _ => None,
                };
                if let Some(l) = ladder {
                    t.evidence = Some(Arc::new(RunAttachment {
                        addresses: BTreeMap::from([
                            ("uac_ua1".to_string(), Ipv4Addr::new(10, 99, 0, 37)),
                            ("uas_ua0".to_string(), Ipv4Addr::new(10, 99, 0, 12)),
                        ]),
                        ladder: Some(Arc::new(l)),
                        ladder_error: None,
                    }));
                }
            }
            e
        })
        .collect()
}

fn html_of(events: &[Event], dir: &Path) -> String {
    let path = dir.join("r.html");
    let mut h = Html::new(path.clone(), meta(), LadderPolicy::default());
    for e in events {
        h.event(e);
    }
    h.finish().expect("written");
    std::fs::read_to_string(&path).expect("read")
}

/// `s` as minijinja's HTML escaping writes it.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// Every reference a page could fetch something with.
fn external_references(page: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"(?i)(?:src|href|action|url)\s*[=(]\s*["']?([^"' )>]+)"#)
        .expect("pattern");
    re.captures_iter(page)
        .map(|c| c[1].to_string())
        .filter(|u| !u.starts_with('#'))
        .chain(
            [
                "<link",
                "@import",
                "<iframe",
                "<object",
                "<embed",
                "fetch(",
                "XMLHttpRequest",
            ]
            .into_iter()
            .filter(|x| page.contains(x))
            .map(str::to_string),
        )
        .collect()
}

/// `--retries`: a FLAKY run is a pass, filtered as FLAKY too, with its earlier tries' words.
#[test]
fn flaky_runs_on_the_page() {
    let dir = tempfile::tempdir().unwrap();
    // The failed first try of the FLAKY run came with its ladder.
    let events: Vec<Event> = fixture::retried_events()
        .into_iter()
        .map(|mut e| {
            if let Event::Test(t) = &mut e {
                if t.run_id.0 == "flakya" && t.state == StateName::Clean {
                    t.evidence = Some(Arc::new(RunAttachment {
                        addresses: BTreeMap::from([
                            ("uac_ua1".to_string(), Ipv4Addr::new(10, 99, 0, 37)),
                            ("uas_ua0".to_string(), Ipv4Addr::new(10, 99, 0, 12)),
                        ]),
                        ladder: Some(Arc::new(failed_ladder())),
                        ladder_error: None,
                    }));
                }
            }
            e
        })
        .collect();
    let page = html_of(&events, dir.path());
    // Drawn under its test, named as the try it was, and linked from the FLAKY run's row.
    let ladder = {
        let at = page
            .find("<div class=\"ladder FAIL FLAKY\" id=\"ladder-0-try1\"")
            .unwrap_or_else(|| panic!("the first try's ladder:\n{page}"));
        &page[at..at + page[at..].find("</svg>").expect("its drawing")]
    };
    assert!(ladder.contains("Run 0 (0-flakya), try 1"), "{ladder}");
    assert_eq!(ladder.matches("<g class=\"msg").count(), 5);
    assert!(
        page.contains("href=\"#ladder-0-try1\""),
        "linked from its row"
    );
    assert!(
        page.contains("1 FLAKY</span> (passed on a retry, counted as passed)"),
        "summary"
    );
    assert!(
        page.contains("class=\"SUCCESS FLAKY\""),
        "the row's filter keys"
    );
    assert!(page.contains("value=\"FLAKY\""), "a filter");
    assert!(page.contains(&esc(
        "FLAKY: passed on try 2; try 1 FAIL (flakya): received 'SIP/2.0 503 Busy'"
    )));
}

#[test]
fn a_page_from_the_event_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = html_of(&events(), dir.path());
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains(r#"<span class="verdict FAILED" id="verdict">FAILED</span>"#));
    // The summary: counts, versions, DUT, the command line quoted as a shell would, escaped.
    assert!(
        page.contains("<b>4</b>: 2 passed, 2 did not (1 FAIL, 1 NOT READY, 1 DIRTY)"),
        "{page}"
    );
    assert!(page.contains("sipplauncher 0.1.0 · SIPp v3.6.1-SCTP-PCAP-RTPSTREAM"));
    assert!(page.contains(r#"<td class="mono">10.99.0.1</td>"#));
    assert!(page.contains(
        "<code>sipplauncher --dut 10.99.0.1 --keyword-replacement-values &#x27;{&quot;a&quot;: &quot;&lt;b&gt;&quot;}&#x27;</code>"
    ));
    assert!(!page.contains("<b>\"}"), "escaped");
    assert!(page
        .contains("after.sh: <span class=\"global-failed\">after.sh exited with status 1</span>"));
    // Every run, grouped by test; the runs of normal-0000 together.
    for i in 0..4 {
        assert!(page.contains(&format!("<tr id=\"run-{i}\"")), "run {i}");
    }
    let section = |name: &str| {
        let at = page.find(&format!("<h3>{name}</h3>")).expect("a section");
        let end = page[at..].find("</section>").expect("its end") + at;
        &page[at..end]
    };
    let normal = section("normal-0000");
    assert!(normal.contains("id=\"run-0\"") && normal.contains("id=\"run-3\""));
    assert!(!normal.contains("id=\"run-1\""));
    assert!(section("tls-0000").contains("<tr id=\"run-2\" class=\"NOT_READY\">"));
    assert!(section("normal-0001").contains("<tr id=\"run-1\" class=\"FAIL DIRTY\">"));
    // The tests' table: runs, pass rate, median and p95 of SIPp time, failures.
    assert!(page
        .contains("<td class=\"num\">2</td><td class=\"num\">2</td><td class=\"num\">100%</td>"));
    assert!(
        page.contains("<td class=\"num\">1.02s</td><td class=\"num\">42s</td>"),
        "median, p95"
    );
    assert!(page.contains("run 1 (1-bcdefg)</a> <span class=\"st FAIL\">FAIL &#x2f; DIRTY</span>"));
    // The filters.
    for k in ["SUCCESS", "FAIL", "NOT_READY", "DIRTY"] {
        assert!(
            page.contains(&format!("class=\"filter\" value=\"{k}\" checked")),
            "{k}"
        );
    }
    // The failed run's ladder: 5 arrows, the retransmission marked, the 404 to the UAC
    // highlighted and its text shown; the passing run's ladder first in its section.
    let ladder = {
        let at = page
            .find("<div class=\"ladder FAIL DIRTY\" id=\"ladder-1\"")
            .expect("ladder of run 1");
        let end = page[at..].find("</svg>").expect("svg end") + at;
        &page[at..end]
    };
    assert_eq!(ladder.matches("<g class=\"msg").count(), 5);
    assert_eq!(ladder.matches("<g class=\"msg retrans\"").count(), 1);
    assert_eq!(ladder.matches(" failed\"").count(), 1);
    assert!(ladder.contains("<g class=\"msg failed\" data-n=\"4\""));
    assert!(ladder.contains(">uac_ua1</text>") && ladder.contains(">10.99.0.37</text>"));
    assert!(ladder.contains(">DUT</text>") && ladder.contains(">uas_ua0</text>"));
    assert!(page.contains("highlighted: the message SIPp did not expect"));
    assert!(page.contains("<div class=\"msg-text failed\" id=\"ladder-1-m4\">"));
    assert!(
        page.contains("X-Mark: &lt;msg4&gt;"),
        "the message text, escaped"
    );
    assert!(
        page.contains("id=\"ladder-1-m0\" hidden"),
        "others on click"
    );
    assert!(normal.contains("A passing run: 0 (0-kqzvxa)"));
    assert!(page.contains("<a href=\"#ladder-1\">ladder</a>"));
    // The passing run's ladder folded (its link unfolds it), the failed one's open.
    let passing = {
        let at = page
            .find("id=\"ladder-0\"")
            .expect("the passing run's ladder");
        &page[at..at + page[at..].find("</svg>").expect("svg end")]
    };
    assert!(passing.contains("<details class=\"fold\"><summary>the ladder: "));
    assert!(!ladder.contains("details"), "a failed run's ladder is open");
    assert!(
        external_references(&page).is_empty(),
        "{:?}",
        external_references(&page)
    );
}

#[test]
fn the_page_fetches_nothing_and_the_check_would_see_it() {
    assert_eq!(
        external_references(r##"<img src="http://x/a.png"><a href="#ok">"##),
        vec!["http://x/a.png".to_string()]
    );
    assert_eq!(
        external_references(r#"<link rel=stylesheet href=x.css>"#),
        vec!["x.css".to_string(), "<link".to_string()]
    );
}

#[test]
fn written_when_the_run_starts_and_on_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.html");
    let mut h = Html::new(path.clone(), meta(), LadderPolicy::default());
    let evs = events();
    // Up to the first group's end.
    let first_group_end = evs
        .iter()
        .position(|e| matches!(e, Event::GroupStarted { number: 2, .. }))
        .expect("two groups");
    for e in &evs[..first_group_end] {
        h.event(e);
    }
    h.event(&Event::Progress {
        outcome: Default::default(),
        elapsed: Duration::from_secs(30),
    });
    h.writer.stop();
    let page = std::fs::read_to_string(&path).expect("written while running");
    assert!(page.contains(">RUNNING</span>"));
    assert!(page.contains("rewritten every 30 seconds"));
    assert!(page.contains("id=\"run-1\"") && !page.contains("id=\"run-2\""));
    let mut h = Html::new(path.clone(), meta(), LadderPolicy::default());
    h.event(&evs[0]);
    h.writer.stop();
    let page = std::fs::read_to_string(&path).expect("written at the start");
    assert!(page.contains(">RUNNING</span>") && page.contains("<b>0</b>"));
}

/// The JSON report carries the ladders: `report` makes the same page from it.
#[test]
fn the_same_page_again_from_the_json_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let live = html_of(&events(), dir.path());
    let json_path = dir.path().join("r.json");
    let mut j = Json::new(json_path.clone(), meta());
    for e in events() {
        j.event(&e);
    }
    j.finish().expect("json written");
    let report = JsonReport::read(&json_path).expect("reads back");
    assert_eq!(report.tests[1].ladder.as_deref(), Some(&failed_ladder()));
    assert_eq!(
        report.tests[0].addresses.get("uac_ua1"),
        Some(&Ipv4Addr::new(10, 99, 0, 37))
    );
    let out = dir.path().join("again.html");
    write_html(&report, &out).expect("written");
    let again = std::fs::read_to_string(&out).expect("read");
    let stamp = regex::Regex::new(r"Written [0-9TZ:.-]+").expect("pattern");
    assert_eq!(stamp.replace_all(&again, ""), stamp.replace_all(&live, ""));
}

/// A report of an older sipplauncher (no addresses, ladders or SIPp version) still reads and
/// makes a page; something else than a report is refused in one line.
#[test]
fn older_reports_read_and_others_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = r#"{"tool":"sipplauncher","version":"0.0.9","dut":"10.0.0.1","testsuite":"s",
      "command_line":["sipplauncher"],"dry_run":true,"group":1,"seed":null,
      "started":"2024-03-01T12:00:00.000Z","finished":"2024-03-01T12:00:01.000Z","elapsed_s":1.0,
      "interrupted":false,"summary":{"total":1,"success":1,"failed":0},
      "global":{"before":null,"after":null},
      "tests":[{"index":0,"name":"a","run_id":"abcdef","run_id_number":"1","result":"SUCCESS",
        "state":"CLEAN","passed":true,"started":"2024-03-01T12:00:00.000Z","took_s":0.0,
        "cps":null,"wall_s":0.1,"sipp_s":null,"reason":null,"run_folder":null}]}"#;
    let p = dir.path().join("old.json");
    std::fs::write(&p, old).expect("write");
    let r = JsonReport::read(&p).expect("reads");
    assert_eq!((r.tests.len(), r.sipp_version.as_deref()), (1, None));
    let out = dir.path().join("old.html");
    write_html(&r, &out).expect("page");
    let page = std::fs::read_to_string(&out).expect("read");
    assert!(page.contains(">PASSED</span>") && page.contains("SIPp not known"));
    std::fs::write(&p, "{}").expect("write");
    let e = JsonReport::read(&p).expect_err("not ours");
    assert!(
        e.ends_with("is not a sipplauncher JSON report: no \"tool\": \"sipplauncher\""),
        "{e}"
    );
    std::fs::write(&p, "[1,").expect("write");
    let e = JsonReport::read(&p).expect_err("not json");
    assert!(
        e.contains("is not a sipplauncher JSON report: ") && !e.contains('\n'),
        "{e}"
    );
}

/// A run whose JSON entry has no ladder but whose run folder was kept: read from its pcap.
#[test]
fn ladders_from_kept_run_folders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("busy").join("abcdef");
    std::fs::create_dir_all(&folder).expect("folder");
    let invite = b"INVITE sip:x@10.99.0.12 SIP/2.0\r\nCall-ID: k1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let busy =
        b"SIP/2.0 486 Busy Here\r\nCall-ID: k1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let pcap = write_pcap(
        Link::Sll,
        &[
            (
                1,
                frame(
                    Link::Sll,
                    &udp_datagram([10, 99, 0, 37], 5060, [10, 99, 0, 1], 5060, invite, 1),
                ),
            ),
            (
                2,
                frame(
                    Link::Sll,
                    &udp_datagram([10, 99, 0, 1], 5060, [10, 99, 0, 37], 5060, busy, 2),
                ),
            ),
        ],
    );
    std::fs::write(folder.join("sipp-abcdef.pcap"), pcap).expect("pcap");
    let run = JsonRun {
        index: 0,
        name: "busy".into(),
        run_id: "abcdef".into(),
        result: "FAIL".into(),
        state: "CLEAN".into(),
        reason: Some("uac_ua1 (uac) call failed, exit status 1: Aborting call on unexpected message for Call-Id 'k1': while expecting '180' (index 2), received 'SIP/2.0 486 Busy Here Call-ID: k1 CSeq: 1 INVITE '".into()),
        run_folder: Some(folder.display().to_string()),
        addresses: BTreeMap::from([("uac_ua1".to_string(), Ipv4Addr::new(10, 99, 0, 37))]),
        ..JsonRun::default()
    };
    let missing = JsonRun {
        index: 1,
        run_id: "gone00".into(),
        run_folder: Some(dir.path().join("gone").display().to_string()),
        ..run.clone()
    };
    let report = JsonReport {
        tool: "sipplauncher".into(),
        dut: "10.99.0.1".into(),
        summary: json::Summary {
            total: 2,
            success: 0,
            failed: 2,
            flaky: 0,
        },
        tests: vec![run, missing],
        ..JsonReport::default()
    };
    let out = dir.path().join("r.html");
    write_html(&report, &out).expect("page");
    let page = std::fs::read_to_string(&out).expect("read");
    assert!(page.contains("<div class=\"ladder FAIL\" id=\"ladder-0\""));
    assert!(
        page.contains("<g class=\"msg failed\" data-n=\"1\""),
        "the 486 highlighted"
    );
    assert!(!page.contains("id=\"ladder-1\""), "no folder, no ladder");
    assert!(
        page.contains(&format!(
            "<div class=\"mono note\">{}</div>",
            esc(&folder.display().to_string())
        )),
        "the kept folder named"
    );
}

/// 12,000 runs with 150 failures: every run is counted, 10,000 listed plus the failures past
/// them; the ladders the runs came with are drawn (one passing one a test); the page stays a
/// few MB.
#[test]
fn long_runs_stay_bounded() {
    let mut d = Digest::new(LadderPolicy::default(), None);
    let ladder = Arc::new(failed_ladder());
    for i in 0..12_000u64 {
        let failed = i % 80 == 7;
        d.add(&JsonRun {
            index: i,
            name: format!("t{}", i % 3),
            run_id: "abcdef".into(),
            result: if failed { "FAIL" } else { "SUCCESS" }.into(),
            state: "CLEAN".into(),
            passed: !failed,
            started: "2024-03-01T12:00:00.000Z".into(),
            took_s: (i % 100) as f64 / 100.0,
            reason: failed.then(|| REASON.to_string()),
            ladder: Some(ladder.clone()),
            ..JsonRun::default()
        });
    }
    let head = JsonReport {
        summary: json::Summary {
            total: 12_000,
            success: 11_850,
            failed: 150,
            flaky: 0,
        },
        ..JsonReport::default()
    };
    let page = d.render(&head, false, &[]).expect("page");
    assert_eq!(page.matches("<tr id=\"run-").count(), 10_000 + 25);
    assert_eq!(page.matches("<div class=\"ladder FAIL\" id=").count(), 150);
    assert_eq!(page.matches("<div class=\"ladder SUCCESS\" id=").count(), 3);
    assert!(page.contains("passing runs not listed"));
    let mb = page.len() as f64 / 1e6;
    assert!(mb < 6.0, "{mb} MB");
    // Stats count every run: 4,000 per test.
    assert_eq!(
        page.matches("<td class=\"num\">4000</td><td class=\"num\">3950</td>")
            .count(),
        3
    );
}

#[test]
fn extra_sections_after_the_tests_table_or_first() {
    let d = Digest::new(LadderPolicy::default(), None);
    let page = d
        .render(
            &JsonReport::default(),
            false,
            &[
                Section {
                    id: "capacity".into(),
                    title: "Capacity".into(),
                    html: "<svg><circle r=\"3\"/></svg>".into(),
                    first: false,
                },
                Section {
                    id: "headline".into(),
                    title: "Headline".into(),
                    html: "<p>first</p>".into(),
                    first: true,
                },
            ],
        )
        .expect("page");
    let at = |what: &str| page.find(what).unwrap_or_else(|| panic!("{what}"));
    let tests = at("id=\"tests\"");
    let extra = at("<section class=\"extra\" id=\"capacity\">");
    let runs = at("<h2>Runs</h2>");
    assert!(tests < extra && extra < runs);
    assert!(page.contains("<svg><circle r=\"3\"/></svg>"), "as given");
    let headline = at("<section class=\"extra\" id=\"headline\">");
    assert!(headline > at("</header>") && headline < at("<h2>Summary</h2>"));
    assert_eq!(page.matches("<p>first</p>").count(), 1, "once");
    assert_eq!(page.matches("id=\"capacity\"").count(), 1, "once");
}

#[test]
fn small_helpers() {
    assert_eq!(pass_rate(2, 3), "66.7%");
    assert_eq!(pass_rate(0, 0), "-");
    assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95), Some(10));
    assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5), Some(5));
    assert_eq!(percentile(&[], 0.5), None);
    assert_eq!(
        shell_words(&["a b".into(), "it's".into(), "x=1".into()]),
        r"'a b' 'it'\''s' x=1"
    );
    assert_eq!(cut("abcdef", 3), "abc…");
}

/// Failed runs without a ladder in the report: read from their kept pcaps up to the policy's
/// bound; the others are counted, not drawn.
#[test]
fn pcaps_read_up_to_the_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let invite = b"INVITE sip:x@10.99.0.1 SIP/2.0\r\nCall-ID: k\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let pcap = write_pcap(
        Link::Sll,
        &[(
            1,
            frame(
                Link::Sll,
                &udp_datagram([10, 99, 0, 37], 5060, [10, 99, 0, 1], 5060, invite, 1),
            ),
        )],
    );
    let mut d = Digest::new(
        LadderPolicy { failed_max: 3 },
        Some(Ipv4Addr::new(10, 99, 0, 1)),
    );
    for i in 0..5u64 {
        let folder = dir.path().join(format!("r{i}"));
        std::fs::create_dir(&folder).expect("folder");
        std::fs::write(folder.join("sipp-abcdef.pcap"), &pcap).expect("pcap");
        d.add(&JsonRun {
            index: i,
            name: "t".into(),
            run_id: "abcdef".into(),
            result: "FAIL".into(),
            state: "CLEAN".into(),
            run_folder: Some(folder.display().to_string()),
            ..JsonRun::default()
        });
    }
    let page = d.render(&JsonReport::default(), false, &[]).expect("page");
    assert_eq!(page.matches("<div class=\"ladder FAIL\" id=").count(), 3);
    assert!(page.contains(
        "2 more failed runs without a ladder here (ladders are read for at most 3 failed runs)"
    ));
}
