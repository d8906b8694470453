//! Benchmark: reading a `dns.txt` (issue 13.1). For 32,000 and 200,000 records side by side in
//! one run (sizes interleaved, rounds repeated, medians): the parse (records per second: a
//! linear parse reads both sizes at the same rate), then what the DNS server does with them:
//! grouped by name off the actor thread (`RunZone::new`), added to the served zones and removed
//! (on the DnsActor's thread). The records: 3 A records to 1 SRV in the original's list form.
//! Run with `cargo bench --bench dns_zone`; `DNS_BENCH_REPEAT` (default 7) rounds.

use std::fmt::Write;
use std::time::{Duration, Instant};

use sipplauncher::dns_zone;
use sipplauncher_actors::core::plan::{RunId, TestName};
use sipplauncher_actors::dns::zones::{RunZone, Zones};

const SIZES: [usize; 2] = [32_000, 200_000];

fn zone_text(records: usize) -> String {
    let mut text = String::with_capacity(records * 48);
    for i in 0..records {
        let [_, b, c, d] = (i as u32).to_be_bytes();
        if i % 4 == 3 {
            let _ = writeln!(
                text,
                "_sip._udp.s{i}.example.com.  SRV  [10, 60, 5060, \"h{}.example.com.\"]",
                i - 1
            );
        } else {
            let _ = writeln!(text, "h{i}.example.com.  A  10.{b}.{c}.{d}");
        }
    }
    text
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn spread(v: &[Duration]) -> (Duration, Duration) {
    (
        *v.iter().min().unwrap_or(&Duration::ZERO),
        *v.iter().max().unwrap_or(&Duration::ZERO),
    )
}

#[derive(Default)]
struct Times {
    parse: Vec<Duration>,
    group: Vec<Duration>,
    add: Vec<Duration>,
    remove: Vec<Duration>,
}

fn main() {
    let repeat: usize = std::env::var("DNS_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let texts: Vec<String> = SIZES.iter().map(|&n| zone_text(n)).collect();
    let mut times: Vec<Times> = SIZES.iter().map(|_| Times::default()).collect();
    for round in 0..repeat {
        for k in 0..SIZES.len() {
            // Rotated order: neither size always runs first.
            let i = (k + round) % SIZES.len();
            let t = Instant::now();
            let records = dns_zone::parse(&texts[i]).expect("the generated dns.txt parses");
            times[i].parse.push(t.elapsed());
            assert_eq!(records.len(), SIZES[i]);
            let t = Instant::now();
            let zone = RunZone::new(records);
            times[i].group.push(t.elapsed());
            let mut zones = Zones::default();
            let run = RunId("bench1".into());
            let t = Instant::now();
            zones
                .add(run.clone(), TestName("bench".into()), zone)
                .expect("no conflict");
            times[i].add.push(t.elapsed());
            let t = Instant::now();
            zones.remove(&run);
            times[i].remove.push(t.elapsed());
        }
    }
    eprintln!("dns.txt, {repeat} rounds, medians (min..max):");
    for (n, t) in SIZES.iter().zip(&times) {
        let p = median(t.parse.clone());
        let rate = *n as f64 / p.as_secs_f64();
        let show = |v: &[Duration]| {
            let (lo, hi) = spread(v);
            format!("{:?} ({lo:?}..{hi:?})", median(v.to_vec()))
        };
        eprintln!(
            "{n:>7} records: parse {} = {:.0} records/s; group {}; add {}; remove {}",
            show(&t.parse),
            rate,
            show(&t.group),
            show(&t.add),
            show(&t.remove),
        );
    }
}
