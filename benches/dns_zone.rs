//! Benchmark: reading a `dns.txt` (issue 13.1). For 32,000 and 200,000 records side by side in
//! one run (sizes interleaved, rounds repeated, medians): the parse (records per second: a
//! linear parse reads both sizes at the same rate), then what the DNS server does with them:
//! grouped by name off the actor thread (`RunZone::new`), added to the served zones and removed
//! (on the DnsActor's thread). The records: 3 A records to 1 SRV in the original's list form.
//! Each step is timed twice: wall time, and the CPU time of this thread (what the step costs,
//! much less disturbed than the wall time by the other work of a shared machine).
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

/// This thread's CPU time so far (user and system).
fn thread_cpu() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    // RUSAGE_THREAD cannot fail for the calling thread.
    getrusage(UsageWho::RUSAGE_THREAD).map_or(Duration::ZERO, |u| {
        let us = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
        };
        us(u.user_time()) + us(u.system_time())
    })
}

/// Wall and CPU time of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, (Duration, Duration)) {
    let (wall, cpu) = (Instant::now(), thread_cpu());
    let out = f();
    (out, (wall.elapsed(), thread_cpu() - cpu))
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

/// Per step, (wall, cpu) of each round.
#[derive(Default)]
struct Times {
    parse: Vec<(Duration, Duration)>,
    group: Vec<(Duration, Duration)>,
    add: Vec<(Duration, Duration)>,
    remove: Vec<(Duration, Duration)>,
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
            let (records, t) = timed(|| dns_zone::parse(&texts[i]));
            let records = records.expect("the generated dns.txt parses");
            times[i].parse.push(t);
            assert_eq!(records.len(), SIZES[i]);
            let (zone, t) = timed(|| RunZone::new(records));
            times[i].group.push(t);
            let mut zones = Zones::default();
            let run = RunId("bench1".into());
            let (added, t) = timed(|| zones.add(run.clone(), TestName("bench".into()), zone));
            added.expect("no conflict");
            times[i].add.push(t);
            let ((), t) = timed(|| {
                zones.remove(&run);
            });
            times[i].remove.push(t);
        }
    }
    eprintln!("dns.txt, {repeat} rounds, medians: wall (min..max) / this thread's CPU");
    for (n, t) in SIZES.iter().zip(&times) {
        let show = |v: &[(Duration, Duration)]| {
            let wall: Vec<Duration> = v.iter().map(|x| x.0).collect();
            let cpu: Vec<Duration> = v.iter().map(|x| x.1).collect();
            let (lo, hi) = spread(&wall);
            format!("{:?} ({lo:?}..{hi:?}) / {:?}", median(wall), median(cpu))
        };
        let per_sec = |v: &[(Duration, Duration)], pick: fn(&(Duration, Duration)) -> Duration| {
            *n as f64 / median(v.iter().map(pick).collect()).as_secs_f64()
        };
        eprintln!(
            "{n:>7} records: parse {} = {:.0} records/s wall, {:.0} CPU",
            show(&t.parse),
            per_sec(&t.parse, |x| x.0),
            per_sec(&t.parse, |x| x.1),
        );
        eprintln!(
            "{:>16} group {}; add {}; remove {}",
            "",
            show(&t.group),
            show(&t.add),
            show(&t.remove),
        );
    }
}
