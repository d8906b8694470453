//! SIPp's own statistics of a test run, read from the last row of each instance's `-trace_stat`
//! CSV (pure: text in, figures out): the calls its UACs made and how they ended, and the call
//! setup time its scenario measures with `rtd`. The sweep (`sipplauncher sweep`) turns them into
//! calls per second and setup-time percentiles per group size.

use std::time::Duration;

/// What SIPp counted in one test run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SippStats {
    /// Calls the UAC instances created (`TotalCallCreated`), summed over them and over run
    /// groups. UAS instances are left out: their calls are the UACs' calls seen from the other
    /// side, and counting both would count one call twice.
    pub calls: u64,
    /// Of those, the calls SIPp counted as successful (`SuccessfulCall(C)`) ...
    pub successful: u64,
    /// ... and as failed (`FailedCall(C)`).
    pub failed: u64,
    /// The scenario's first response-time timer (`rtd="true"` or `rtd="1"`: for a call, from
    /// the INVITE to its 200), SIPp's mean over its calls (`ResponseTime1(C)`; with `-m 1` the
    /// one call), from the first instance that measured one, UACs first. `None` when no
    /// instance's scenario measures one.
    pub setup_time: Option<Duration>,
}

/// The figures of one instance's statistics file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InstanceStats {
    pub created: u64,
    pub successful: u64,
    pub failed: u64,
    /// The first response-time timer's cumulative mean (`ResponseTime1(C)`, or
    /// `ResponseTime<name>(C)` for a named timer), as printed. SIPp prints it (as zero) also for
    /// scenarios that measure nothing: see [`InstanceStats::timed`].
    pub response_time: Option<Duration>,
}

impl InstanceStats {
    /// Keeps the response time only where it means something: the scenario measures one
    /// ([`measures_rtd`]), and it is not the zero SIPp prints for a timer that never stopped
    /// (every call failed). A real 0 ms (SIPp counts whole milliseconds) of a call that
    /// succeeded stays.
    pub fn timed(mut self, scenario_measures_rtd: bool) -> InstanceStats {
        let never_stopped = self.response_time == Some(Duration::ZERO) && self.successful == 0;
        if !scenario_measures_rtd || never_stopped {
            self.response_time = None;
        }
        self
    }
}

/// Reads the last row of a `-trace_stat` CSV (`;`-separated, a header row first). `None` when
/// the text has no data row or lacks the call counters.
pub fn parse(text: &str) -> Option<InstanceStats> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split(';').map(str::trim).collect();
    let row: Vec<&str> = lines.next_back()?.split(';').map(str::trim).collect();
    let at = |i: usize| row.get(i).copied();
    let count =
        |name: &str| -> Option<u64> { at(header.iter().position(|h| *h == name)?)?.parse().ok() };
    // SIPp numbers its timers in the order the scenario names them: the first column is the
    // first timer.
    let first_timer = header.iter().position(|h| {
        h.starts_with("ResponseTime")
            && h.ends_with("(C)")
            && !h.contains("StDev")
            && !h.starts_with("ResponseTimeRepartition")
    });
    Some(InstanceStats {
        created: count("TotalCallCreated")?,
        successful: count("SuccessfulCall(C)")?,
        failed: count("FailedCall(C)")?,
        response_time: first_timer.and_then(at).and_then(parse_duration),
    })
}

/// Whether a SIPp scenario stops a response-time timer somewhere: an `rtd` attribute
/// (`rtd="true"`, `rtd="1"`, `rtd="name"`; `start_rtd` only starts one).
pub fn measures_rtd(scenario: &str) -> bool {
    scenario.match_indices("rtd").any(|(i, _)| {
        let before = scenario[..i].chars().next_back();
        let after = scenario[i + 3..].trim_start();
        before.is_some_and(char::is_whitespace) && after.starts_with('=')
    })
}

/// SIPp's durations in its statistics: `HH:MM:SS:uuuuuu` (hours, minutes, seconds,
/// microseconds; SIPp's clock ticks in milliseconds, so the last three digits are 0).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut parts = s.trim().split(':');
    let h: u64 = parts.next()?.parse().ok()?;
    let m: u64 = parts.next()?.parse().ok()?;
    let sec: u64 = parts.next()?.parse().ok()?;
    let us: u64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || m >= 60 || sec >= 60 || us >= 1_000_000 {
        return None;
    }
    Some(Duration::from_secs(h * 3_600 + m * 60 + sec) + Duration::from_micros(us))
}

/// The test run's figures from its instances' statistics, in plan order, each with whether it
/// is a UAC; instances without a readable file are skipped. `None` when none could be read.
pub fn combine(instances: &[(bool, Option<InstanceStats>)]) -> Option<SippStats> {
    if instances.iter().all(|(_, s)| s.is_none()) {
        return None;
    }
    let mut out = SippStats::default();
    for (_, s) in instances.iter().filter(|(uac, _)| *uac) {
        if let Some(s) = s {
            out.calls += s.created;
            out.successful += s.successful;
            out.failed += s.failed;
        }
    }
    let uacs_first = instances
        .iter()
        .filter(|(uac, _)| *uac)
        .chain(instances.iter().filter(|(uac, _)| !*uac));
    out.setup_time = uacs_first
        .filter_map(|(_, s)| s.as_ref()?.response_time)
        .next();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header of SIPp 3.6.1's statistics, cut to the columns read here and their
    /// neighbours, with one scenario timer.
    const HEADER: &str = "StartTime;CallRate(C);TotalCallCreated;CurrentCall;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);ResponseTime1(P);ResponseTime1(C);ResponseTime1StDev(C);CallLength(C);ResponseTimeRepartition1;ResponseTimeRepartition1_<10;ResponseTimeRepartition1_<20;ResponseTimeRepartition1_>=200;CallLengthRepartition;CallLengthRepartition_<10;";

    fn csv(rows: &[&str]) -> String {
        let mut s = format!("{HEADER}\n");
        for r in rows {
            s.push_str(r);
            s.push('\n');
        }
        s
    }

    #[test]
    fn a_uac_that_measured_its_setup_time() {
        let text = csv(&[
            "t0;0;0;0;0;0;0;0;00:00:00:000000;00:00:00:000000;00:00:00:000000;00:00:00:000000;;0;0;0;;0;",
            "t1;9.6;3;0;3;3;0;0;00:00:00:012000;00:00:00:014000;00:00:00:002000;00:00:00:216000;;0;2;1;;0;",
        ]);
        let s = parse(&text).expect("a row");
        assert_eq!(
            s,
            InstanceStats {
                created: 3,
                successful: 3,
                failed: 0,
                response_time: Some(Duration::from_millis(14)),
            }
        );
        assert_eq!(s.timed(true).response_time, Some(Duration::from_millis(14)));
        assert_eq!(s.timed(false).response_time, None, "no rtd in the scenario");
    }

    /// SIPp 3.6.1 without a `<ResponseTimeRepartition>` in the scenario: no buckets, and the
    /// last column is empty (the line ends with `;`).
    #[test]
    fn a_real_row_without_repartition_columns() {
        let header = "StartTime;TotalCallCreated;SuccessfulCall(C);FailedCall(C);ResponseTime1(P);ResponseTime1(C);ResponseTime1StDev(P);ResponseTime1StDev(C);CallLength(P);CallLength(C);CallLengthStDev(P);CallLengthStDev(C);";
        let row = "2026-11-30\t06:16:32.5\t1796018192.5;1;1;0;00:00:00:000000;00:00:00:002000;00:00:00:000000;00:00:00:000000;00:00:00:000000;00:00:00:000000;00:00:00:000000;2562047788015:12:55:808000;";
        let s = parse(&format!("{header}\n{row}\n")).expect("a row");
        assert_eq!((s.created, s.successful, s.failed), (1, 1, 0));
        assert_eq!(s.response_time, Some(Duration::from_millis(2)));
    }

    #[test]
    fn a_zero_counts_only_for_a_call_that_succeeded() {
        let zero = |successful: u64| InstanceStats {
            created: 1,
            successful,
            failed: 1 - successful,
            response_time: Some(Duration::ZERO),
        };
        assert_eq!(zero(1).timed(true).response_time, Some(Duration::ZERO));
        assert_eq!(zero(0).timed(true).response_time, None);
    }

    #[test]
    fn a_named_timer_is_read() {
        let text = "TotalCallCreated;SuccessfulCall(C);FailedCall(C);ResponseTimesetup(P);ResponseTimesetup(C);ResponseTimesetupStDev(C);ResponseTimeother(C)\n1;1;0;00:00:00:001000;00:00:00:007000;00:00:00:000000;00:00:00:009000\n";
        assert_eq!(
            parse(text).and_then(|s| s.response_time),
            Some(Duration::from_millis(7))
        );
    }

    #[test]
    fn rtd_attributes() {
        assert!(measures_rtd(r#"<recv response="200" rtd="true"/>"#));
        assert!(measures_rtd("<recv response=\"200\"\n   rtd = \"setup\"/>"));
        assert!(!measures_rtd(r#"<send start_rtd="true">"#));
        assert!(!measures_rtd(
            r#"<recv response="200"/><!-- no rtd here -->"#
        ));
        assert!(!measures_rtd(""));
    }

    #[test]
    fn failed_calls_and_missing_rows() {
        let text = csv(&[
            "t1;1;2;0;1;1;1;1;00:00:00:000000;00:00:01:250000;00:00:00:000000;00:00:00:000000;;0;0;2;;0;",
        ]);
        let s = parse(&text).expect("a row");
        assert_eq!((s.created, s.successful, s.failed), (2, 1, 1));
        assert_eq!(s.response_time, Some(Duration::from_millis(1_250)));
        assert_eq!(parse(HEADER), None, "a header without a row");
        assert_eq!(parse(""), None);
        assert_eq!(parse("StartTime;CallRate(C)\nx;1\n"), None, "no counters");
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("01:02:03:004000"),
            Some(Duration::from_secs(3_723) + Duration::from_millis(4))
        );
        assert_eq!(parse_duration("00:00:00:000000"), Some(Duration::ZERO));
        for bad in ["", "00:00:00", "00:61:00:000000", "a:b:c:d", "0:0:0:0:0"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn combined_over_instances_uacs_counted_uacs_timed_first() {
        let uas = InstanceStats {
            created: 1,
            successful: 1,
            failed: 0,
            response_time: Some(Duration::from_millis(3)),
        };
        let uac = |created, rt| InstanceStats {
            created,
            successful: created,
            failed: 0,
            response_time: rt,
        };
        let s = combine(&[
            (false, Some(uas)),
            (true, Some(uac(2, None))),
            (true, None),
            (true, Some(uac(1, Some(Duration::from_millis(20))))),
        ])
        .expect("some stats");
        assert_eq!((s.calls, s.successful, s.failed), (3, 3, 0));
        assert_eq!(
            s.setup_time,
            Some(Duration::from_millis(20)),
            "a UAC's timer first"
        );
        let only_uas = combine(&[(false, Some(uas)), (true, Some(uac(1, None)))]).unwrap();
        assert_eq!(only_uas.setup_time, Some(Duration::from_millis(3)));
        assert_eq!(combine(&[(true, None), (false, None)]), None);
        assert_eq!(combine(&[]), None);
    }
}
