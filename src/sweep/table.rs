//! The sweep's console: a line per size as it ends, and at the end the table of every size, the
//! knee and why the sweep stopped (pure: figures in, lines out).

use super::figures::{Knee, SetupSource, SizeFigures, GROWTH};

/// The line printed when a size's run is over.
pub fn size_line(f: &SizeFigures) -> String {
    let setup = match &f.setup {
        Some(s) => format!(", setup p95 {}", ms(s.p95_ms)),
        None => String::new(),
    };
    format!(
        "--group {}: {}/{} passed ({}%), {:.2} tests/s{}{}, took {:.1}s{}",
        f.group,
        f.passed,
        f.runs,
        pct(f.pass_rate),
        f.tests_per_s,
        f.calls_per_s
            .map(|c| format!(", {c:.2} calls/s"))
            .unwrap_or_default(),
        setup,
        f.elapsed_s,
        if f.interrupted { " (interrupted)" } else { "" }
    )
}

/// The columns of the sizes' table.
pub const HEADER: [&str; 11] = [
    "--group",
    "runs",
    "passed",
    "failed",
    "pass %",
    "tests/s",
    "calls/s",
    "setup p50",
    "setup p95",
    "CPU ms/test",
    "load",
];

/// One size's cells, in [`HEADER`]'s order (`-` for a figure it lacks; `*` marks a size
/// interrupted).
pub fn cells(f: &SizeFigures) -> Vec<String> {
    let (p50, p95) = match &f.setup {
        Some(s) => (ms(s.median_ms), ms(s.p95_ms)),
        None => ("-".into(), "-".into()),
    };
    vec![
        format!("{}{}", f.group, if f.interrupted { "*" } else { "" }),
        f.runs.to_string(),
        f.passed.to_string(),
        f.failed.to_string(),
        pct(f.pass_rate),
        format!("{:.2}", f.tests_per_s),
        f.calls_per_s.map_or("-".into(), |c| format!("{c:.2}")),
        p50,
        p95,
        f.cpu_ms_per_test.map_or("-".into(), |c| format!("{c:.1}")),
        match (f.load_start, f.load_end) {
            (Some(a), Some(b)) => format!("{a:.2}-{b:.2}"),
            _ => "-".into(),
        },
    ]
}

/// The table of every size, then its notes.
pub fn table(sizes: &[SizeFigures]) -> Vec<String> {
    let header = HEADER;
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    rows.extend(sizes.iter().map(cells));
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:>w$}"))
                .collect::<Vec<_>>()
                .join("  ")
        })
        .collect();
    out.extend(notes(sizes));
    out
}

/// What the table's figures are: where the setup times come from, what `*` means.
pub fn notes(sizes: &[SizeFigures]) -> Vec<String> {
    let mut out = Vec::new();
    let source = sizes
        .iter()
        .find_map(|f| f.setup.as_ref().map(|s| s.source));
    out.push(match source {
        Some(SetupSource::SippTime) => {
            "setup: no scenario measures one (rtd): the tests' SIPp time instead".to_string()
        }
        Some(SetupSource::Rtd) => {
            "setup: SIPp's rtd timer of the scenarios (call setup time), over the runs".to_string()
        }
        None => "setup: none measured (a dry run starts no SIPp)".to_string(),
    });
    if sizes.iter().any(|f| f.interrupted) {
        out.push("*: interrupted; its figures are partial and take no part in the knee".into());
    }
    out
}

/// The knee, in words.
pub fn knee_lines(knee: &Knee, target: f64, sizes: &[SizeFigures]) -> Vec<String> {
    let mut out = Vec::new();
    out.push(match knee.capacity {
        Some(c) => format!(
            "Capacity: --group {} is the largest size with a pass rate of at least {}% ({}%)",
            c.group,
            pct(target),
            pct(c.pass_rate)
        ),
        None => format!("Capacity: no size passed {}% of its runs", pct(target)),
    });
    let complete = sizes.iter().filter(|f| !f.interrupted).count();
    out.push(match knee.plateau {
        Some(p) => format!(
            "Throughput: tests/s stop growing after --group {} ({:.2} tests/s; {:+.1}% at --group {}, under {}%)",
            p.group,
            p.tests_per_s,
            p.gain * 100.0,
            p.next_group,
            pct(GROWTH)
        ),
        None if complete < 2 => "Throughput: one size is no curve (give more sizes)".into(),
        None => format!(
            "Throughput: tests/s still grew by {}% or more at every size",
            pct(GROWTH)
        ),
    });
    out
}

/// The most frequent failure reasons of each size that had failures (at most `per_size` each).
pub fn failure_lines(sizes: &[SizeFigures], per_size: usize) -> Vec<String> {
    let mut out = Vec::new();
    for f in sizes.iter().filter(|f| !f.failures.is_empty()) {
        out.push(format!("--group {}: {} failed:", f.group, f.failed));
        for r in f.failures.iter().take(per_size) {
            out.push(format!("  {:>5} x {}", r.count, r.reason));
        }
        let more = f.failures.len().saturating_sub(per_size);
        if more > 0 {
            out.push(format!("        and {more} other reasons (sweep.json)"));
        }
    }
    out
}

/// A rate as a percentage: `100`, `99.5`.
pub fn pct(rate: f64) -> String {
    let p = rate * 100.0;
    if (p - p.round()).abs() < 0.05 {
        format!("{}", p.round())
    } else {
        format!("{p:.1}")
    }
}

/// Milliseconds: `12ms`, `1.25s` from a second on.
fn ms(v: f64) -> String {
    if v >= 1_000.0 {
        format!("{:.2}s", v / 1_000.0)
    } else {
        format!("{v:.0}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::super::figures::{knee, FailureCount, Setup};
    use super::*;
    use crate::report::json::{JsonReport, Summary};

    fn size(group: usize, tps: f64, passed: u64) -> SizeFigures {
        let report = JsonReport {
            elapsed_s: 2.0,
            summary: Summary {
                total: 10,
                success: passed,
                failed: 10 - passed,
                flaky: 0,
            },
            ..JsonReport::default()
        };
        let mut f = SizeFigures::of(group, 10, "r", "c", Some(0), &report);
        f.tests_per_s = tps;
        f
    }

    #[test]
    fn the_table_lines_up() {
        let mut a = size(1, 3.5, 10);
        a.setup = Some(Setup {
            source: SetupSource::Rtd,
            runs: 10,
            median_ms: 4.0,
            p95_ms: 12.4,
        });
        a.calls_per_s = Some(3.5);
        a.cpu_ms_per_test = Some(12.25);
        a.load_start = Some(0.5);
        a.load_end = Some(0.75);
        let mut b = size(100, 40.0, 9);
        b.interrupted = true;
        let t = table(&[a, b]);
        assert_eq!(
            t[0],
            "--group  runs  passed  failed  pass %  tests/s  calls/s  setup p50  setup p95  CPU ms/test       load"
        );
        assert_eq!(
            t[1],
            "      1    10      10       0     100     3.50     3.50        4ms       12ms         12.2  0.50-0.75"
        );
        assert_eq!(
            t[2],
            "   100*    10       9       1      90    40.00        -          -          -            -          -"
        );
        assert!(t[3].starts_with("setup: SIPp's rtd"));
        assert!(t[4].starts_with("*: interrupted"));
    }

    #[test]
    fn knee_and_failures_in_words() {
        let sizes = [size(1, 4.0, 10), size(10, 27.0, 10), size(50, 28.0, 8)];
        let k = knee(&sizes, 0.99);
        assert_eq!(
            knee_lines(&k, 0.99, &sizes),
            [
                "Capacity: --group 10 is the largest size with a pass rate of at least 99% (100%)",
                "Throughput: tests/s stop growing after --group 10 (27.00 tests/s; +3.7% at --group 50, under 10%)",
            ]
        );
        let none = knee(&[size(1, 1.0, 5)], 0.99);
        assert_eq!(
            knee_lines(&none, 0.99, &[size(1, 1.0, 5)]),
            [
                "Capacity: no size passed 99% of its runs",
                "Throughput: one size is no curve (give more sizes)"
            ]
        );
        let mut f = size(4, 1.0, 7);
        f.failures = vec![
            FailureCount {
                reason: "received 503".into(),
                count: 2,
            },
            FailureCount {
                reason: "timeout".into(),
                count: 1,
            },
        ];
        assert_eq!(
            failure_lines(&[size(1, 1.0, 10), f], 1),
            [
                "--group 4: 3 failed:",
                "      2 x received 503",
                "        and 1 other reasons (sweep.json)"
            ]
        );
        assert_eq!(pct(0.995), "99.5");
        assert_eq!(pct(1.0), "100");
    }

    #[test]
    fn a_size_line() {
        let mut f = size(10, 27.456, 10);
        f.calls_per_s = Some(27.456);
        assert_eq!(
            size_line(&f),
            "--group 10: 10/10 passed (100%), 27.46 tests/s, 27.46 calls/s, took 2.0s"
        );
    }
}
