//! Benchmark: what the `--html` sink costs the thread it runs on during a soak: one page of a
//! 10,000-run soak (20 tests, 10 failed runs with their ladders, a passing ladder per test) made
//! from the runs kept in memory (`Digest::render`, done at every rewrite, every 30 s), and
//! taking the 10,000 runs in (`Digest::add`, once per run as it settles: its row is rendered
//! then). Prints the median and spread of repeated runs and the page's size, on standard error
//! as the other benches. `cargo bench --bench html_render`; set `HTML_BENCH_REPEAT` (default 7)
//! and `HTML_BENCH_RUNS` (default 10000) to change it.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sipplauncher::ladder::{Endpoint, Ladder, Message, Transport};
use sipplauncher::report::evidence::LadderPolicy;
use sipplauncher::report::html::Digest;
use sipplauncher::report::json::{JsonReport, JsonRun, Summary};

fn ladder(failed: bool) -> Ladder {
    let e = |label: &str, a: u8, ua: Option<&str>| Endpoint {
        label: label.into(),
        address: Ipv4Addr::new(10, 99, 0, a),
        ua: ua.map(str::to_string),
    };
    let steps: &[(usize, usize, &str, &str)] = if failed {
        &[
            (0, 1, "INVITE sip:bob@10.99.0.12:5060 SIP/2.0", "1 INVITE"),
            (1, 0, "SIP/2.0 100 Trying", "1 INVITE"),
            (1, 2, "INVITE sip:bob@10.99.0.12:5060 SIP/2.0", "1 INVITE"),
            (2, 1, "SIP/2.0 486 Busy Here", "1 INVITE"),
            (1, 2, "ACK sip:bob@10.99.0.12:5060 SIP/2.0", "1 ACK"),
            (1, 0, "SIP/2.0 486 Busy Here", "1 INVITE"),
            (0, 1, "ACK sip:bob@10.99.0.12:5060 SIP/2.0", "1 ACK"),
        ]
    } else {
        &[
            (0, 1, "INVITE sip:bob@10.99.0.12:5060 SIP/2.0", "1 INVITE"),
            (1, 0, "SIP/2.0 100 Trying", "1 INVITE"),
            (1, 2, "INVITE sip:bob@10.99.0.12:5060 SIP/2.0", "1 INVITE"),
            (2, 1, "SIP/2.0 180 Ringing", "1 INVITE"),
            (1, 0, "SIP/2.0 180 Ringing", "1 INVITE"),
            (2, 1, "SIP/2.0 200 OK", "1 INVITE"),
            (1, 0, "SIP/2.0 200 OK", "1 INVITE"),
            (0, 1, "ACK sip:bob@10.99.0.12:5060 SIP/2.0", "1 ACK"),
            (1, 2, "ACK sip:bob@10.99.0.12:5060 SIP/2.0", "1 ACK"),
            (0, 1, "BYE sip:bob@10.99.0.12:5060 SIP/2.0", "2 BYE"),
            (1, 2, "BYE sip:bob@10.99.0.12:5060 SIP/2.0", "2 BYE"),
            (2, 1, "SIP/2.0 200 OK", "2 BYE"),
            (1, 0, "SIP/2.0 200 OK", "2 BYE"),
        ]
    };
    Ladder {
        pcap: "sipp-abcdef.pcap".into(),
        started: Some("2024-03-01T12:00:00.000Z".into()),
        endpoints: vec![e("uac_ua1", 37, Some("ua1")), e("DUT", 1, None), e("uas_ua0", 12, Some("ua0"))],
        messages: steps
            .iter()
            .enumerate()
            .map(|(i, (from, to, first, cseq))| Message {
                t: i as f64 * 0.001,
                from: *from,
                to: *to,
                src_port: 5060,
                dst_port: 5060,
                transport: Transport::Udp,
                first_line: first.to_string(),
                call_id: Some("1-4242@10.99.0.37".into()),
                cseq: Some(cseq.to_string()),
                branch: Some(format!("z9hG4bK-{i}")),
                retransmission: false,
                text: format!(
                    "{first}\r\nVia: SIP/2.0/UDP 10.99.0.37:5060;branch=z9hG4bK-{i}\r\nFrom: <sip:alice@10.99.0.37:5060>;tag=1\r\nTo: <sip:bob@10.99.0.12:5060>\r\nCall-ID: 1-4242@10.99.0.37\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
                ),
            })
            .collect(),
        omitted: 0,
        call_id: None,
        failure_t: None,
    }
}

fn runs(n: u64) -> Vec<JsonRun> {
    let (failed_ladder, passing_ladder) = (Arc::new(ladder(true)), Arc::new(ladder(false)));
    let every = (n / 10).max(1);
    (0..n)
        .map(|i| {
            let failed = i % every == every / 2;
            let name = format!("test-{:03}", i % 20);
            JsonRun {
                index: i,
                name,
                run_id: "abcdef".into(),
                run_id_number: format!("{i:012}"),
                result: if failed { "FAIL" } else { "SUCCESS" }.into(),
                state: "CLEAN".into(),
                passed: !failed,
                started: "2024-03-01T12:00:00.000Z".into(),
                took_s: 0.2 + (i % 50) as f64 / 1000.0,
                wall_s: 0.3,
                reason: failed.then(|| "uac_ua1 (uac) call failed, exit status 1: Aborting call on unexpected message for Call-Id '1-4242@10.99.0.37': while expecting '180' (index 2), received 'SIP/2.0 486 Busy Here CSeq: 1 INVITE '".to_string()),
                ladder: Some(if failed { failed_ladder.clone() } else { passing_ladder.clone() }),
                ..JsonRun::default()
            }
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let repeat: usize = std::env::var("HTML_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let n: u64 = std::env::var("HTML_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let all = runs(n);
    let head = JsonReport {
        tool: "sipplauncher".into(),
        summary: Summary {
            total: n,
            success: n - 10,
            failed: 10,
            flaky: 0,
        },
        ..JsonReport::default()
    };
    let (mut adds, mut renders) = (Vec::new(), Vec::new());
    let mut size = 0;
    for _ in 0..repeat {
        let t = Instant::now();
        let mut d = Digest::new(LadderPolicy::default(), None);
        for r in &all {
            d.add(r);
        }
        adds.push(t.elapsed());
        let t = Instant::now();
        let page = d.render(&head, true, &[]).expect("page");
        renders.push(t.elapsed());
        size = page.len();
    }
    let show = |what: &str, v: &[Duration]| {
        eprintln!(
            "{what:<28} median {:>7.1} ms  (min {:.1}, max {:.1}, {} runs)",
            median(v.to_vec()).as_secs_f64() * 1e3,
            v.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1e3),
            v.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1e3),
            v.len()
        );
    };
    eprintln!("{n} runs, 10 failed, page {:.2} MB", size as f64 / 1e6);
    show("take the runs in (add)", &adds);
    show("one page (render)", &renders);
}
