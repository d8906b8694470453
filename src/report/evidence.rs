//! What the reports keep of a test run's evidence: who had which address (the ladder's
//! columns) and, for the runs the HTML report draws, the SIP ladder read from the run's pcap in
//! post-run, before its folder may be removed ([`Harvest`], the runtime's `Evidence` hook).
//!
//! Which runs get a ladder ([`LadderPolicy`]): every failed run with a pcap, up to
//! `failed_max` of them (so that a soak with a test that always fails stays small), and the
//! first passing run of each test that has SIP in its pcap.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use regex::Regex;

use slog::{debug, warn, Logger};

use sipplauncher_actors::core::plan::{Attachment, Evidence, Role, RunEvidence, TestPlan, UaName};

use crate::ladder::{failure, Endpoint, Ladder};

/// How many failed runs get a ladder by default (as many as `--keep-max` keeps folders).
pub const FAILED_LADDERS: usize = 100;

/// How many passing runs of one test are read before giving up on a ladder for it (their
/// pcaps held no SIP).
const PASSING_TRIES: u32 = 3;

/// What a run left for the reports (the runtime hands it back in the run's last event).
#[derive(Debug, Clone, PartialEq)]
pub struct RunAttachment {
    /// Each instance's label (`uac_ua1`) and address in this run.
    pub addresses: BTreeMap<String, Ipv4Addr>,
    pub ladder: Option<Arc<Ladder>>,
    /// Why the pcap could not be read, when a ladder was wanted.
    pub ladder_error: Option<String>,
}

impl RunAttachment {
    /// The attachment of an event, if it is one of ours.
    pub fn of(a: &Attachment) -> Option<&RunAttachment> {
        a.downcast_ref::<RunAttachment>()
    }
}

/// Which runs get a ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LadderPolicy {
    /// Ladders of failed runs, at most.
    pub failed_max: usize,
}

impl Default for LadderPolicy {
    fn default() -> Self {
        LadderPolicy {
            failed_max: FAILED_LADDERS,
        }
    }
}

/// The policy's count so far, for a report made run after run.
#[derive(Debug, Default)]
pub struct LadderTally {
    failed: usize,
    /// Tests with a passing run's ladder.
    passing: HashSet<String>,
    /// Passing runs read per test without one.
    tries: HashMap<String, u32>,
}

impl LadderTally {
    /// Whether a run of `test` that `succeeded` (or not) is to get a ladder.
    pub fn wants(&self, policy: &LadderPolicy, test: &str, succeeded: bool) -> bool {
        if succeeded {
            !self.passing.contains(test)
                && self.tries.get(test).copied().unwrap_or(0) < PASSING_TRIES
        } else {
            self.failed < policy.failed_max
        }
    }

    /// Counts a run that got `ladder` (or tried to).
    pub fn got(&mut self, test: &str, succeeded: bool, ladder: Option<&Ladder>) {
        if succeeded {
            match ladder {
                Some(l) if !l.messages.is_empty() => {
                    self.passing.insert(test.to_string());
                }
                _ => *self.tries.entry(test.to_string()).or_default() += 1,
            }
        } else if ladder.is_some() {
            self.failed += 1;
        }
    }
}

/// The label of each instance of `test`: its role(s) and name (`uac_ua1`; `uac/uas_ua0` for
/// an instance that plays both in different run groups).
pub fn labels(test: &TestPlan) -> BTreeMap<UaName, String> {
    let mut roles: BTreeMap<UaName, Vec<Role>> = BTreeMap::new();
    for s in test.run_groups.iter().flat_map(|g| &g.scenarios) {
        let r = roles.entry(s.ua.clone()).or_default();
        if !r.contains(&s.role) {
            r.push(s.role);
        }
    }
    roles
        .into_iter()
        .map(|(ua, mut r)| {
            // UAC before UAS, as in `uac/uas`.
            r.sort_by_key(|role| std::cmp::Reverse(*role));
            let names: Vec<&str> = r.iter().map(|r| r.as_str()).collect();
            let label = format!("{}_{ua}", names.join("/"));
            (ua, label)
        })
        .collect()
}

/// The instance of a label (`uac_ua1` → `ua1`).
fn ua_of(label: &str) -> Option<&str> {
    label.rsplit('_').next().filter(|u| u.starts_with("ua"))
}

/// The ladder's columns: the callers (instances that are only UACs) left, the DUT, the others
/// right; by instance number within each side.
pub fn parties(addresses: &BTreeMap<String, Ipv4Addr>, dut: Ipv4Addr) -> Vec<Endpoint> {
    let mut left = Vec::new();
    let mut right = Vec::new();
    for (label, &address) in addresses {
        let e = Endpoint {
            label: label.clone(),
            address,
            ua: ua_of(label).map(str::to_string),
        };
        if label.starts_with("uac_") {
            left.push(e);
        } else {
            right.push(e);
        }
    }
    let number = |e: &Endpoint| {
        e.ua.as_deref()
            .and_then(|u| u.strip_prefix("ua"))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    };
    left.sort_by_key(number);
    right.sort_by_key(number);
    left.push(Endpoint {
        label: "DUT".into(),
        address: dut,
        ua: None,
    });
    left.extend(right);
    left
}

/// Reads the ladder of a run's pcap (in its run folder), focused on the failed call when the
/// capture is large; for a failed run, with the time SIPp wrote its error (from the failed
/// instance's error file beside the pcap), which tells the unexpected message from an earlier
/// copy of it.
pub fn read_ladder(
    pcap: &Path,
    addresses: &BTreeMap<String, Ipv4Addr>,
    dut: Ipv4Addr,
    reason: Option<&str>,
) -> Result<Ladder, String> {
    let clue = reason.map(failure::clue).unwrap_or_default();
    let failure_at = reason.and_then(|_| failure_time(pcap.parent()?, clue.scenario.as_deref()));
    Ladder::from_pcap(
        pcap,
        &parties(addresses, dut),
        clue.call_id.as_deref(),
        failure_at,
    )
    .map_err(|e| e.to_string())
}

// A literal: compiling it cannot fail.
static ERROR_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{4}-\d{2}-\d{2}\t\d{2}:\d{2}:\d{2}\.\d+\t(\d+)\.(\d{1,9}): ")
        .expect("a valid pattern")
});

/// When SIPp wrote its last error, since the epoch: the latest entry of the error files
/// (`<scenario>_<pid>_errors.log`, entries `DATE\tTIME\tEPOCH: message`) of `scenario` (the
/// failed instance), or of every instance when it is not known.
pub fn failure_time(folder: &Path, scenario: Option<&str>) -> Option<Duration> {
    let mut latest = None;
    for entry in std::fs::read_dir(folder).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = scenario.is_none_or(|s| {
            name.strip_prefix(s)
                .is_some_and(|rest| rest.starts_with('_') || rest.starts_with('.'))
        });
        if !ours || !name.ends_with("_errors.log") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        for c in ERROR_TIME.captures_iter(&text) {
            let secs: u64 = c[1].parse().unwrap_or(0);
            let frac = format!("{:0<9}", &c[2]);
            let nanos: u32 = frac.parse().unwrap_or(0);
            let at = Duration::new(secs, nanos);
            latest = latest.max(Some(at));
        }
    }
    latest
}

/// The runtime's `Evidence` hook: labels each run's addresses, and reads the ladders the
/// policy wants.
pub struct Harvest {
    policy: LadderPolicy,
    tally: Mutex<LadderTally>,
    log: Logger,
}

impl Harvest {
    pub fn new(policy: LadderPolicy, log: Logger) -> Harvest {
        Harvest {
            policy,
            tally: Mutex::new(LadderTally::default()),
            log,
        }
    }
}

impl Evidence for Harvest {
    fn collect(&self, run: &RunEvidence) -> Option<Attachment> {
        let labels = labels(&run.test);
        let addresses: BTreeMap<String, Ipv4Addr> = run
            .hosts
            .iter()
            .map(|(ua, addr)| {
                let label = labels.get(ua).cloned().unwrap_or_else(|| ua.0.clone());
                (label, *addr)
            })
            .collect();
        let test = run.test.name.0.as_str();
        let wanted = run.pcap.as_ref().filter(|_| {
            self.tally
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .wants(&self.policy, test, run.succeeded)
        });
        let mut attachment = RunAttachment {
            addresses,
            ladder: None,
            ladder_error: None,
        };
        if let Some(pcap) = wanted {
            match read_ladder(pcap, &attachment.addresses, run.dut, run.reason.as_deref()) {
                Ok(l) => {
                    debug!(self.log, "ladder read"; "test" => test, "run_id" => %run.run_id, "messages" => l.messages.len());
                    attachment.ladder = Some(Arc::new(l));
                }
                Err(e) => {
                    warn!(self.log, "no ladder: {e}"; "test" => test, "run_id" => %run.run_id);
                    attachment.ladder_error = Some(e);
                }
            }
            self.tally
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .got(test, run.succeeded, attachment.ladder.as_deref());
        }
        Some(Arc::new(attachment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::testing::message;
    use sipplauncher_actors::core::plan::{RunGroup, Scenario, TestName};

    fn plan() -> TestPlan {
        let s = |file: &str, role, ua: &str| Scenario {
            file: file.into(),
            role,
            ua: UaName(ua.into()),
        };
        TestPlan {
            name: TestName("t".into()),
            folder: "/x".into(),
            uas: vec![
                UaName("ua0".into()),
                UaName("ua1".into()),
                UaName("ua2".into()),
            ],
            run_groups: vec![
                RunGroup {
                    id: "a".into(),
                    scenarios: vec![
                        s("a_uas_ua0.xml", Role::Uas, "ua0"),
                        s("a_uac_ua1.xml", Role::Uac, "ua1"),
                    ],
                },
                RunGroup {
                    id: "b".into(),
                    scenarios: vec![
                        s("b_uas_ua1.xml", Role::Uas, "ua1"),
                        s("b_uac_ua2.xml", Role::Uac, "ua2"),
                    ],
                },
            ],
            definition_error: None,
        }
    }

    #[test]
    fn labels_and_columns() {
        let l = labels(&plan());
        let got: Vec<&str> = l.values().map(String::as_str).collect();
        assert_eq!(got, vec!["uas_ua0", "uac/uas_ua1", "uac_ua2"]);
        let addresses: BTreeMap<String, Ipv4Addr> = l
            .values()
            .enumerate()
            .map(|(i, label)| (label.clone(), Ipv4Addr::new(10, 0, 0, 10 + i as u8)))
            .collect();
        let cols: Vec<(String, Option<String>)> = parties(&addresses, Ipv4Addr::new(10, 0, 0, 1))
            .into_iter()
            .map(|e| (format!("{} {}", e.label, e.address), e.ua))
            .collect();
        assert_eq!(
            cols,
            vec![
                ("uac_ua2 10.0.0.12".into(), Some("ua2".into())),
                ("DUT 10.0.0.1".into(), None),
                ("uas_ua0 10.0.0.10".into(), Some("ua0".into())),
                ("uac/uas_ua1 10.0.0.11".into(), Some("ua1".into())),
            ]
        );
    }

    #[test]
    fn policy_one_passing_ladder_per_test_and_failed_ones_up_to_the_bound() {
        let policy = LadderPolicy { failed_max: 2 };
        let mut t = LadderTally::default();
        let ladder = |n: usize| Ladder {
            pcap: "p".into(),
            started: None,
            endpoints: vec![],
            messages: (0..n)
                .map(|_| message(0, 1, "OPTIONS sip:x SIP/2.0", "c", "1 OPTIONS"))
                .collect(),
            omitted: 0,
            call_id: None,
            failure_t: None,
        };
        assert!(t.wants(&policy, "a", true));
        // A pcap without SIP: tried again, up to PASSING_TRIES times.
        for _ in 0..PASSING_TRIES {
            assert!(t.wants(&policy, "a", true));
            t.got("a", true, Some(&ladder(0)));
        }
        assert!(!t.wants(&policy, "a", true));
        t.got("b", true, Some(&ladder(3)));
        assert!(!t.wants(&policy, "b", true));
        assert!(t.wants(&policy, "c", true));
        for _ in 0..2 {
            assert!(t.wants(&policy, "a", false));
            t.got("a", false, Some(&ladder(1)));
        }
        assert!(!t.wants(&policy, "c", false), "two failed ladders at most");
    }

    #[test]
    fn failure_time_from_the_failed_instances_error_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write =
            |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
        write(
            "uas_ua0_4242_errors.log",
            "The following events occurred:\n2026-11-26\t13:03:10.184404\t1795698190.184404: Unable to x2026-11-26\t13:03:10.284404\t1795698190.2844: Aborting call\n",
        );
        write(
            "uac_ua1_4243_errors.log",
            "2026-11-26\t13:03:11.000000\t1795698191.000000: other\n",
        );
        write(
            "uas_ua0_4242_messages.log",
            "2026-11-26\t13:03:12.000000\t1795698192.000000: no\n",
        );
        assert_eq!(
            failure_time(dir.path(), Some("uas_ua0")),
            Some(Duration::new(1_795_698_190, 284_400_000))
        );
        assert_eq!(
            failure_time(dir.path(), None),
            Some(Duration::new(1_795_698_191, 0)),
            "any instance's, the latest"
        );
        assert_eq!(failure_time(dir.path(), Some("uac_ua9")), None);
        assert_eq!(failure_time(&dir.path().join("gone"), None), None);
    }

    /// From a run folder as a failed run leaves it (its pcap, the failed instance's error
    /// file): the DUT retransmits an INVITE the UAS answered already; SIPp took the first copy
    /// and failed on the copy that came while it expected the ACK. That copy is highlighted,
    /// not the first (which it is when the error file is gone).
    #[test]
    fn the_unexpected_copy_from_a_pcap_and_the_error_file() {
        use crate::ladder::failure::{highlight, Highlight, Why};
        use crate::ladder::testing::{frame, udp_datagram, write_pcap, Link};
        let (uac, dut, uas) = ([10, 99, 0, 37], [10, 99, 0, 1], [10, 99, 0, 12]);
        let sip = |first: &str, cseq: &str, branch: &str| {
            format!(
                "{first}\r\nVia: SIP/2.0/UDP 10.99.0.1:5060;branch={branch}\r\nCall-ID: 7-42@10.99.0.37\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes()
        };
        let invite = |b: &str| sip("INVITE sip:bob@10.99.0.12 SIP/2.0", "1 INVITE", b);
        let t0 = 1_795_698_190_000_000u64;
        let packets = [
            (0, uac, dut, invite("z9hG4bK-1")),
            (27_000, dut, uas, invite("z9hG4bK-2")),
            (
                28_000,
                uas,
                dut,
                sip("SIP/2.0 180 Ringing", "1 INVITE", "z9hG4bK-2"),
            ),
            (
                29_000,
                uas,
                dut,
                sip("SIP/2.0 200 OK", "1 INVITE", "z9hG4bK-2"),
            ),
            (495_700, dut, uas, invite("z9hG4bK-2")),
            (
                530_000,
                dut,
                uas,
                sip("ACK sip:bob@10.99.0.12 SIP/2.0", "1 ACK", "z9hG4bK-3"),
            ),
            (900_000, dut, uas, invite("z9hG4bK-2")),
        ];
        let framed: Vec<(u64, Vec<u8>)> = packets
            .iter()
            .enumerate()
            .map(|(i, (us, src, dst, m))| {
                let ip = udp_datagram(*src, 5060, *dst, 5060, m, i as u16);
                (t0 + us, frame(Link::Sll, &ip))
            })
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let pcap = dir.path().join("sipp-abcdef.pcap");
        std::fs::write(&pcap, write_pcap(Link::Sll, &framed)).expect("pcap");
        let error_file = dir.path().join("uas_ua0_4242_errors.log");
        std::fs::write(
            &error_file,
            "2026-11-26\t13:03:10.495800\t1795698190.495800: Aborting call on unexpected message for Call-Id '7-42@10.99.0.37': while expecting 'ACK' (index 3), received 'INVITE sip:bob@10.99.0.12 SIP/2.0 ...'\n",
        )
        .expect("error file");
        let addresses: BTreeMap<String, Ipv4Addr> = [
            ("uac_ua1".to_string(), Ipv4Addr::from(uac)),
            ("uas_ua0".to_string(), Ipv4Addr::from(uas)),
        ]
        .into();
        let reason = "uas_ua0 (uas) call failed, exit status 1: Aborting call on unexpected message for Call-Id '7-42@10.99.0.37': while expecting 'ACK' (index 3), received 'INVITE sip:bob@10.99.0.12 SIP/2.0 Via: SIP/2.0/UDP 10.99.0.1:5060;branch=z9hG4bK-2 Call-ID: 7-42@10.99.0.37 CSeq: 1 INVITE Content-Length: 0 '";
        let l = read_ladder(&pcap, &addresses, dut.into(), Some(reason)).expect("ladder");
        assert_eq!(l.messages.len(), 7);
        let labels: Vec<&str> = l.endpoints.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, ["uac_ua1", "DUT", "uas_ua0"]);
        assert_eq!(l.failure_t, Some(0.4958));
        assert!(l.messages[4].retransmission && l.messages[6].retransmission);
        assert_eq!(
            highlight(&l, reason),
            Some(Highlight {
                index: 4,
                why: Why::Unexpected
            })
        );
        // A passing run's ladder is read without the error time.
        let passing = read_ladder(&pcap, &addresses, dut.into(), None).expect("ladder");
        assert_eq!(passing.failure_t, None);
        // Without the error file: the first copy to the UAS.
        std::fs::remove_file(&error_file).expect("remove");
        let l = read_ladder(&pcap, &addresses, dut.into(), Some(reason)).expect("ladder");
        assert_eq!(l.failure_t, None);
        assert_eq!(highlight(&l, reason).map(|h| h.index), Some(1));
    }
}
