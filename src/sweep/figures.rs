//! The sweep's figures (pure: no process, no file): one size's figures from its run's JSON
//! report, percentiles, failure reasons counted, the knee, and the decision to go on or stop.
//!
//! Definitions (README "Benchmarking a DUT" says the same):
//! - tests/s: the size's test runs (every result) over its run's elapsed time;
//! - calls/s: the calls SIPp's UACs created (`TotalCallCreated`) over the same time;
//! - setup time: per run, SIPp's `rtd` timer (`setup_ms` in the report) where the scenarios
//!   measure one; when no run of the size has one, the run's SIPp time (`sipp_s`) instead;
//!   median and 95th percentile over the runs that have it (passed or not);
//! - pass rate: passed runs over runs;
//! - the knee: the largest size whose pass rate is at least `--target`, and the size after which
//!   tests/s stop growing (see [`GROWTH`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::json::{Calls, JsonReport, JsonRun};

/// Tests/s "stop growing" at size `s` when the next size's tests/s are less than
/// `1 + GROWTH` times those at `s` (a gain under 10 %).
pub const GROWTH: f64 = 0.10;

/// Where a size's setup times come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetupSource {
    /// SIPp's `rtd` timer of the scenarios.
    Rtd,
    /// No scenario measures one: the time SIPp ran.
    SippTime,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setup {
    pub source: SetupSource,
    /// Runs that gave a value.
    pub runs: usize,
    pub median_ms: f64,
    pub p95_ms: f64,
}

/// One failure reason and how many runs of the size failed with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureCount {
    pub reason: String,
    pub count: u64,
}

/// Everything the sweep says about one size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeFigures {
    /// `--group`.
    pub group: usize,
    /// `--total` of the run.
    pub total: u64,
    /// Its JSON report and its console output, in the sweep's folder.
    pub report: String,
    pub console: String,
    /// The run's exit status (`None`: killed by a signal).
    pub exit_status: Option<i32>,
    /// The run was interrupted: its figures are partial and take no part in the knee.
    pub interrupted: bool,
    pub runs: u64,
    pub passed: u64,
    pub failed: u64,
    pub pass_rate: f64,
    /// The failed runs' reasons ([`reason_key`]), most frequent first.
    pub failures: Vec<FailureCount>,
    pub elapsed_s: f64,
    pub tests_per_s: f64,
    /// SIPp's UACs' calls (`None` in a dry run: no SIPp).
    pub calls: Option<u64>,
    pub calls_successful: Option<u64>,
    pub calls_failed: Option<u64>,
    pub calls_per_s: Option<f64>,
    pub setup: Option<Setup>,
    /// sipplauncher's own CPU (user + system, every thread; SIPp not included).
    pub cpu_s: Option<f64>,
    pub cpu_ms_per_test: Option<f64>,
    /// The CPU of what it started: SIPp and the scripts.
    pub children_cpu_s: Option<f64>,
    /// The host's 1-minute load average at the run's start and end.
    pub load_start: Option<f64>,
    pub load_end: Option<f64>,
}

impl SizeFigures {
    /// The figures of the run at `--group group` from its JSON report.
    pub fn of(
        group: usize,
        total: u64,
        report_file: &str,
        console_file: &str,
        exit_status: Option<i32>,
        r: &JsonReport,
    ) -> SizeFigures {
        let runs = r.summary.total;
        let per_s = |n: f64| {
            if r.elapsed_s > 0.0 {
                n / r.elapsed_s
            } else {
                0.0
            }
        };
        let with_calls: Vec<&Calls> = r.tests.iter().filter_map(|t| t.calls.as_ref()).collect();
        let calls =
            (!with_calls.is_empty()).then(|| with_calls.iter().map(|c| c.created).sum::<u64>());
        let mut failures: BTreeMap<String, u64> = BTreeMap::new();
        for t in r.tests.iter().filter(|t| !t.passed) {
            let key = t
                .reason
                .as_deref()
                .map(reason_key)
                .unwrap_or_else(|| "(no reason given)".into());
            *failures.entry(key).or_default() += 1;
        }
        let mut failures: Vec<FailureCount> = failures
            .into_iter()
            .map(|(reason, count)| FailureCount { reason, count })
            .collect();
        failures.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        let cpu_s = r.usage.as_ref().map(|u| u.cpu_s());
        SizeFigures {
            group,
            total,
            report: report_file.to_string(),
            console: console_file.to_string(),
            exit_status,
            interrupted: r.interrupted,
            runs,
            passed: r.summary.success,
            failed: r.summary.failed,
            pass_rate: if runs > 0 {
                r.summary.success as f64 / runs as f64
            } else {
                0.0
            },
            failures,
            elapsed_s: r.elapsed_s,
            tests_per_s: per_s(runs as f64),
            calls,
            calls_successful: (!with_calls.is_empty())
                .then(|| with_calls.iter().map(|c| c.successful).sum()),
            calls_failed: (!with_calls.is_empty())
                .then(|| with_calls.iter().map(|c| c.failed).sum()),
            calls_per_s: calls.map(|c| per_s(c as f64)),
            setup: setup_of(&r.tests),
            cpu_s,
            cpu_ms_per_test: cpu_s
                .filter(|_| runs > 0)
                .map(|c| c * 1_000.0 / runs as f64),
            children_cpu_s: r.usage.as_ref().map(|u| u.children_cpu_s()),
            load_start: r.usage.as_ref().and_then(|u| u.load_start).map(|l| l[0]),
            load_end: r.usage.as_ref().and_then(|u| u.load_end).map(|l| l[0]),
        }
    }
}

/// The setup times of a size's runs: `rtd` where any run has one, else SIPp's time.
pub fn setup_of(tests: &[JsonRun]) -> Option<Setup> {
    let rtd: Vec<f64> = tests.iter().filter_map(|t| t.setup_ms).collect();
    let (source, mut values) = if rtd.is_empty() {
        let sipp = tests
            .iter()
            .filter_map(|t| t.sipp_s)
            .map(|s| s * 1_000.0)
            .collect();
        (SetupSource::SippTime, sipp)
    } else {
        (SetupSource::Rtd, rtd)
    };
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    Some(Setup {
        source,
        runs: values.len(),
        median_ms: percentile(&values, 0.5)?,
        p95_ms: percentile(&values, 0.95)?,
    })
}

/// The `q`-quantile (0..=1) of `sorted` (ascending), by linear interpolation between the two
/// nearest ranks (numpy's default, Excel's PERCENTILE.INC): the median of an even count is the
/// mean of the middle two, and p95 of 20 values lies between the 19th and the 20th. `None` for
/// no values.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// A failure reason with what differs from run to run taken out, so that the runs that failed
/// the same way count as one: only the first line of a SIP message quoted in it (a reason holds
/// the whole received message, its line breaks turned into spaces), Call-IDs and addresses
/// replaced, at most 200 characters.
pub fn reason_key(reason: &str) -> String {
    let first = &reason[..first_line_end(reason)];
    let mut out = String::with_capacity(first.len());
    let mut rest = first;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("Call-Id '") {
            out.push_str("Call-Id '…'");
            rest = after.split_once('\'').map_or("", |(_, r)| r);
            continue;
        }
        if let Some(len) = ipv4_at(rest) {
            out.push_str("<addr>");
            rest = &rest[len..];
            // A port after the address goes with it.
            if let Some(p) = rest.strip_prefix(':') {
                let digits = p.chars().take_while(char::is_ascii_digit).count();
                if digits > 0 {
                    rest = &p[digits..];
                }
            }
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
        // Skip to the next boundary inside a word: addresses start a word.
        if c.is_ascii_digit() || c.is_alphanumeric() || c == '.' {
            let skip = rest
                .char_indices()
                .take_while(|(_, c)| c.is_alphanumeric() || *c == '.' || *c == '_' || *c == '-')
                .last()
                .map_or(0, |(i, c)| i + c.len_utf8());
            out.push_str(&rest[..skip]);
            rest = &rest[skip..];
        }
    }
    let trimmed = out.trim_end();
    match trimmed.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &trimmed[..i]),
        None => trimmed.to_string(),
    }
}

/// Where the first line of the SIP message quoted after `received '` ends: before its first
/// header (` Name: `), the line breaks being spaces by now. Without such a message: at the first
/// double space (a flattened line break), else the end.
fn first_line_end(reason: &str) -> usize {
    const RECEIVED: &str = "received '";
    if let Some(start) = reason.find(RECEIVED).map(|i| i + RECEIVED.len()) {
        let msg = &reason[start..];
        for (sp, _) in msg.char_indices().filter(|(_, c)| *c == ' ') {
            let word = msg[sp + 1..].split(' ').next().unwrap_or_default();
            let is_header = word.len() > 1
                && word.ends_with(':')
                && word.starts_with(|c: char| c.is_ascii_alphabetic())
                && word[..word.len() - 1]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if is_header {
                return start + sp;
            }
        }
        return reason.len();
    }
    reason.find("  ").unwrap_or(reason.len())
}

/// The length of a dotted IPv4 address at the start of `s`, if one is there.
fn ipv4_at(s: &str) -> Option<usize> {
    let mut len = 0;
    for part in 0..4 {
        if part > 0 {
            if s[len..].starts_with('.') {
                len += 1;
            } else {
                return None;
            }
        }
        let digits = s[len..].chars().take_while(char::is_ascii_digit).count();
        if !(1..=3).contains(&digits) {
            return None;
        }
        len += digits;
    }
    // Not the start of a longer dotted number (a version such as 1.2.3.4.5).
    let next = s[len..].chars().next();
    if next.is_some_and(|c| {
        c.is_ascii_digit() || (c == '.' && s[len + 1..].starts_with(|c: char| c.is_ascii_digit()))
    }) {
        return None;
    }
    Some(len)
}

/// The largest size (of those run to their end) whose pass rate is at least `target`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Capacity {
    pub group: usize,
    pub pass_rate: f64,
}

/// Where tests/s stop growing: from `group` to `next_group` they grew by `gain` (a fraction),
/// less than [`GROWTH`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Plateau {
    pub group: usize,
    pub tests_per_s: f64,
    pub next_group: usize,
    pub next_tests_per_s: f64,
    pub gain: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Knee {
    /// `None`: no size reached the target.
    pub capacity: Option<Capacity>,
    /// `None`: tests/s grew by at least [`GROWTH`] at every step (or fewer than two sizes ran).
    pub plateau: Option<Plateau>,
}

/// The knee of the sizes run so far (in increasing size; interrupted sizes are left out: their
/// figures are partial).
pub fn knee(sizes: &[SizeFigures], target: f64) -> Knee {
    let done: Vec<&SizeFigures> = sizes.iter().filter(|s| !s.interrupted).collect();
    let capacity = done
        .iter()
        .filter(|s| s.pass_rate >= target)
        .max_by_key(|s| s.group)
        .map(|s| Capacity {
            group: s.group,
            pass_rate: s.pass_rate,
        });
    let plateau = done.windows(2).find_map(|w| {
        let (a, b) = (w[0], w[1]);
        (b.tests_per_s < a.tests_per_s * (1.0 + GROWTH)).then(|| Plateau {
            group: a.group,
            tests_per_s: a.tests_per_s,
            next_group: b.group,
            next_tests_per_s: b.tests_per_s,
            gain: if a.tests_per_s > 0.0 {
                b.tests_per_s / a.tests_per_s - 1.0
            } else {
                0.0
            },
        })
    });
    Knee { capacity, plateau }
}

/// What the sweep does after a size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Run the next size (or end: there is none).
    GoOn,
    /// The size's pass rate fell below `--stop-below`: no bigger size is run.
    StopBelow { pass_rate: f64 },
    /// The size was interrupted (the user's signal): the sweep ends.
    Interrupted,
}

/// The decision after a size with figures `f`.
pub fn next_after(f: &SizeFigures, stop_below: f64) -> Next {
    if f.interrupted {
        Next::Interrupted
    } else if f.pass_rate < stop_below {
        Next::StopBelow {
            pass_rate: f.pass_rate,
        }
    } else {
        Next::GoOn
    }
}

/// `--total` of the run at `group`: the user's, else 4 × the size, and the suite once at least.
pub fn total_for(group: usize, user_total: Option<u64>, tests: usize) -> u64 {
    user_total.unwrap_or_else(|| (4 * group as u64).max(tests as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json::{Summary, Usage};

    fn test(
        passed: bool,
        reason: Option<&str>,
        sipp_s: Option<f64>,
        setup_ms: Option<f64>,
    ) -> JsonRun {
        JsonRun {
            name: "t".into(),
            passed,
            reason: reason.map(str::to_string),
            sipp_s,
            calls: sipp_s.map(|_| Calls {
                created: 1,
                successful: u64::from(passed),
                failed: u64::from(!passed),
            }),
            setup_ms,
            ..JsonRun::default()
        }
    }

    fn size(group: usize, tests_per_s: f64, pass_rate: f64) -> SizeFigures {
        let report = JsonReport {
            elapsed_s: 10.0,
            summary: Summary {
                total: 1000,
                success: (pass_rate * 1000.0).round() as u64,
                failed: 1000 - (pass_rate * 1000.0).round() as u64,
                flaky: 0,
            },
            ..JsonReport::default()
        };
        let mut f = SizeFigures::of(group, 100, "r.json", "r.log", Some(0), &report);
        f.tests_per_s = tests_per_s;
        f
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(10.5));
        assert_eq!(percentile(&v, 0.95), Some(19.05));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 1.0), Some(20.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[7.0], 0.95), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        // p95 of 1..=100: between the 95th and 96th values.
        let h: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(&h, 0.95).unwrap() - 95.05).abs() < 1e-9);
    }

    #[test]
    fn setup_times_rtd_first_else_sipp_time() {
        let rtd = [
            test(true, None, Some(1.2), Some(12.0)),
            test(false, Some("x"), Some(5.0), None),
            test(true, None, Some(1.1), Some(10.0)),
        ];
        assert_eq!(
            setup_of(&rtd),
            Some(Setup {
                source: SetupSource::Rtd,
                runs: 2,
                median_ms: 11.0,
                p95_ms: 11.9,
            })
        );
        let no_rtd = [
            test(true, None, Some(1.0), None),
            test(true, None, Some(3.0), None),
        ];
        let s = setup_of(&no_rtd).expect("sipp time");
        assert_eq!(
            (s.source, s.runs, s.median_ms),
            (SetupSource::SippTime, 2, 2000.0)
        );
        assert_eq!(setup_of(&[test(true, None, None, None)]), None, "a dry run");
    }

    #[test]
    fn reasons_of_the_same_failure_count_as_one() {
        let a = "uac_ua1 (uac) call failed, exit status 1: Aborting call on unexpected message for Call-Id '1-2345@10.99.0.37': while expecting '200' (index 2), received 'SIP/2.0 503 Too Many Calls  Via: SIP/2.0/UDP 10.99.0.37:5060;branch=z9hG4bK-1  From: <sip:alice@10.99.0.37:5060>;tag=1'";
        let b = "uac_ua1 (uac) call failed, exit status 1: Aborting call on unexpected message for Call-Id '7-999@10.99.0.121': while expecting '200' (index 2), received 'SIP/2.0 503 Too Many Calls  Via: SIP/2.0/UDP 10.99.0.121:5060;branch=z9hG4bK-7'";
        assert_eq!(reason_key(a), reason_key(b));
        // SIPp's error file, flattened to single spaces.
        let c = "uac_ua1 (uac) call failed, exit status 1: Aborting call on unexpected message for Call-Id '3-1@10.99.0.9': while expecting '100' (index 1), received 'SIP/2.0 503 Too Many Calls Via: SIP/2.0/UDP 10.99.0.9:5060;branch=z9 From: <sip:a@10.99.0.9>;tag=3 Content-Length: 0'";
        assert_eq!(
            reason_key(c),
            "uac_ua1 (uac) call failed, exit status 1: Aborting call on unexpected message for Call-Id '…': while expecting '100' (index 1), received 'SIP/2.0 503 Too Many Calls"
        );
        let request = "received 'INVITE sip:x@10.0.0.1:5060 SIP/2.0 Via: SIP/2.0/UDP 10.0.0.2'";
        assert_eq!(reason_key(request), "received 'INVITE sip:x@<addr> SIP/2.0");
        assert_eq!(
            reason_key(a),
            "uac_ua1 (uac) call failed, exit status 1: Aborting call on unexpected message for Call-Id '…': while expecting '200' (index 2), received 'SIP/2.0 503 Too Many Calls"
        );
        assert_eq!(
            reason_key("SIPp did not open udp 10.99.0.5:5060 within 10s"),
            "SIPp did not open udp <addr> within 10s"
        );
        assert_eq!(
            reason_key("sipp 3.6.1.2.5 x"),
            "sipp 3.6.1.2.5 x",
            "not an address"
        );
        assert_eq!(reason_key("a2.3.4.5"), "a2.3.4.5", "inside a word");
        let long = "x".repeat(300);
        assert_eq!(reason_key(&long).chars().count(), 201);
        assert_eq!(
            reason_key("before.sh exited with status 1"),
            "before.sh exited with status 1"
        );
    }

    #[test]
    fn figures_of_a_report() {
        let report = JsonReport {
            elapsed_s: 4.0,
            summary: Summary {
                total: 4,
                success: 2,
                failed: 2,
                flaky: 0,
            },
            usage: Some(Usage {
                cpu_user_s: 0.3,
                cpu_system_s: 0.1,
                children_cpu_user_s: 1.0,
                children_cpu_system_s: 0.5,
                load_start: Some([0.5, 0.4, 0.3]),
                load_end: Some([1.5, 0.6, 0.3]),
            }),
            tests: vec![
                test(true, None, Some(1.0), Some(10.0)),
                test(
                    false,
                    Some("received 'SIP/2.0 503 Busy  Via: 10.0.0.1'"),
                    Some(1.0),
                    Some(30.0),
                ),
                test(
                    false,
                    Some("received 'SIP/2.0 503 Busy  Via: 10.0.0.2'"),
                    Some(1.0),
                    None,
                ),
                test(true, None, Some(1.0), Some(20.0)),
            ],
            ..JsonReport::default()
        };
        let f = SizeFigures::of(2, 4, "group-2.json", "group-2.log", Some(1), &report);
        assert_eq!((f.runs, f.passed, f.failed), (4, 2, 2));
        assert_eq!(f.pass_rate, 0.5);
        assert_eq!(f.tests_per_s, 1.0);
        assert_eq!(f.calls, Some(4));
        assert_eq!((f.calls_successful, f.calls_failed), (Some(2), Some(2)));
        assert_eq!(f.calls_per_s, Some(1.0));
        assert_eq!(
            f.failures,
            vec![FailureCount {
                reason: "received 'SIP/2.0 503 Busy".into(),
                count: 2
            }]
        );
        let s = f.setup.as_ref().expect("setup");
        assert_eq!((s.source, s.runs, s.median_ms), (SetupSource::Rtd, 3, 20.0));
        assert!((f.cpu_s.unwrap() - 0.4).abs() < 1e-9);
        assert!((f.cpu_ms_per_test.unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(f.children_cpu_s, Some(1.5));
        assert_eq!((f.load_start, f.load_end), (Some(0.5), Some(1.5)));
        assert_eq!(f.exit_status, Some(1));
    }

    #[test]
    fn knee_capacity_is_the_largest_size_at_target() {
        let sizes = [
            size(1, 4.0, 1.0),
            size(10, 27.0, 1.0),
            size(50, 39.0, 0.995),
            size(100, 40.0, 0.97),
        ];
        let k = knee(&sizes, 0.99);
        assert_eq!(
            k.capacity,
            Some(Capacity {
                group: 50,
                pass_rate: 0.995
            })
        );
        assert_eq!(knee(&sizes, 1.0).capacity.map(|c| c.group), Some(10));
        assert_eq!(knee(&[size(1, 4.0, 0.5)], 0.99).capacity, None);
    }

    #[test]
    fn knee_plateau_is_the_first_step_under_ten_percent() {
        // 4 → 27 (+575 %), 27 → 39 (+44 %), 39 → 40 (+2.6 %): the plateau starts at 50.
        let sizes = [
            size(1, 4.0, 1.0),
            size(10, 27.0, 1.0),
            size(50, 39.0, 1.0),
            size(100, 40.0, 1.0),
        ];
        let p = knee(&sizes, 0.99).plateau.expect("a plateau");
        assert_eq!((p.group, p.next_group), (50, 100));
        assert!((p.gain - 1.0 / 39.0).abs() < 1e-9);
        // Exactly +10 % still grows; a fall is a plateau too.
        let grows = [size(1, 10.0, 1.0), size(2, 11.0, 1.0)];
        assert_eq!(knee(&grows, 0.99).plateau, None);
        let falls = [size(1, 10.0, 1.0), size(2, 12.0, 1.0), size(4, 8.0, 1.0)];
        assert_eq!(knee(&falls, 0.99).plateau.map(|p| p.group), Some(2));
        assert_eq!(knee(&[size(1, 10.0, 1.0)], 0.99).plateau, None, "one size");
        assert_eq!(
            knee(&[], 0.99),
            Knee {
                capacity: None,
                plateau: None
            }
        );
    }

    #[test]
    fn interrupted_sizes_take_no_part_in_the_knee() {
        let mut cut = size(10, 50.0, 1.0);
        cut.interrupted = true;
        let k = knee(&[size(1, 10.0, 1.0), cut], 0.99);
        assert_eq!(k.capacity.map(|c| c.group), Some(1));
        assert_eq!(k.plateau, None);
    }

    #[test]
    fn stop_below_and_interrupts() {
        assert_eq!(next_after(&size(1, 1.0, 1.0), 0.95), Next::GoOn);
        assert_eq!(
            next_after(&size(1, 1.0, 0.95), 0.95),
            Next::GoOn,
            "at the rate goes on"
        );
        assert_eq!(
            next_after(&size(1, 1.0, 0.94), 0.95),
            Next::StopBelow { pass_rate: 0.94 }
        );
        let mut cut = size(1, 1.0, 0.0);
        cut.interrupted = true;
        assert_eq!(next_after(&cut, 0.95), Next::Interrupted);
    }

    #[test]
    fn totals() {
        assert_eq!(total_for(1, None, 10), 10, "the suite once");
        assert_eq!(total_for(10, None, 10), 40);
        assert_eq!(total_for(10, Some(7), 10), 7, "the user's");
    }
}
