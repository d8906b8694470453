//! Which message of a ladder failed the test, from the failure reason (SIPp's own words, as
//! `sipp::failure_reason` put them: `uac_ua1 (uac) call failed, exit status 1: Aborting call on
//! unexpected message for Call-Id '1-2@x': while expecting '200' (index 2), received 'SIP/2.0
//! 404 Not Found Via: ...'`).
//!
//! The rule, in order ("the failure" is the time SIPp wrote the error, from its error file,
//! when the ladder knows it: [`Ladder::failure_t`]):
//! 1. SIPp named the message it did not expect (`received '...'`, or `unexpected BYE/CANCEL for
//!    call: ID`): of the messages to the failed instance with that start line (and that CSeq,
//!    and that Call-ID, when the reason gives them), the last one captured before the failure
//!    (the first one, when the failure's time is not known) is highlighted as **unexpected**.
//!    (The same message may come twice: a DUT retransmits an INVITE the instance already
//!    answered; the copy that came while SIPp expected something else is the unexpected one.)
//! 2. Otherwise (a timeout, a failed send, a killed SIPp), or when no such message is in the
//!    capture: the last message the failed instance sent or received before the failure (in
//!    the named call, when the reason names one) is highlighted as **the last message before
//!    the failure**.
//! 3. When the reason names no instance: the last message of the named call, else of the
//!    ladder.

use std::sync::LazyLock;

use regex::Regex;

use super::Ladder;

/// What the reason says about the failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clue {
    /// The instance that failed (`ua1`).
    pub ua: Option<String>,
    /// Its scenario (`part1_uac_ua1`): its SIPp's files start with it.
    pub scenario: Option<String>,
    pub call_id: Option<String>,
    /// The unexpected message as SIPp printed it, whitespace folded (`SIP/2.0 404 Not Found
    /// Via: ...`).
    pub received: Option<String>,
    /// The method of an unexpected BYE or CANCEL.
    pub unexpected_method: Option<String>,
}

/// Why a message is highlighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// SIPp did not expect it.
    Unexpected,
    /// The failed instance's last message before the failure.
    LastBefore,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Unexpected => "the unexpected message",
            Why::LastBefore => "the last message before the failure",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Highlight {
    /// Index into the ladder's messages.
    pub index: usize,
    pub why: Why,
}

// The patterns are literals: compiling them cannot fail.
static INSTANCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|: )((?:[A-Za-z0-9]+_)?(?:uac|uas)_(ua[0-9]+))(?:\.[0-9]+)? \((?:uac|uas)\)")
        .expect("a valid pattern")
});
static CALL_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Call-I[Dd](?:: ([^\s,']+)| '([^']*)')").expect("a valid pattern")
});
static UNEXPECTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"unexpected (BYE|CANCEL) for call: (\S+)").expect("a valid pattern")
});
static CSEQ: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)CSeq: *([0-9]+ [A-Za-z]+)").expect("a valid pattern"));

/// Reads a failure reason.
pub fn clue(reason: &str) -> Clue {
    let instance = INSTANCE.captures(reason);
    let mut c = Clue {
        ua: instance.as_ref().map(|m| m[2].to_string()),
        scenario: instance.as_ref().map(|m| m[1].to_string()),
        ..Clue::default()
    };
    if let Some(m) = UNEXPECTED.captures(reason) {
        c.unexpected_method = Some(m[1].to_string());
        c.call_id = Some(m[2].to_string());
    } else if let Some(m) = CALL_ID.captures(reason) {
        c.call_id = m.get(1).or(m.get(2)).map(|v| v.as_str().to_string());
    }
    if let Some(at) = reason.find("received '") {
        let text = &reason[at + "received '".len()..];
        c.received = Some(fold(text.trim_end().trim_end_matches('\'')));
    }
    c
}

fn fold(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The message of `ladder` that failed the test whose reason is `reason` (see the module's
/// rule); `None` when the ladder is empty.
pub fn highlight(ladder: &Ladder, reason: &str) -> Option<Highlight> {
    let c = clue(reason);
    let ua = c.ua.as_deref().and_then(|ua| {
        ladder
            .endpoints
            .iter()
            .position(|e| e.ua.as_deref() == Some(ua))
    });
    let in_call = |i: usize| {
        c.call_id
            .as_deref()
            .is_none_or(|id| ladder.messages[i].call_id.as_deref() == Some(id))
    };
    let to_ua = |i: usize| ua.is_none_or(|u| ladder.messages[i].to == u);
    // Captured before SIPp wrote the error (a millisecond of slack for the clocks' rounding).
    let n = match ladder.failure_t {
        Some(t) => ladder
            .messages
            .iter()
            .take_while(|m| m.t <= t + 0.001)
            .count(),
        None => ladder.messages.len(),
    };
    // With the failure's time, the latest match before it; else the first match.
    let pick = |found: &mut dyn Iterator<Item = usize>| {
        if ladder.failure_t.is_some() {
            found.last()
        } else {
            found.next()
        }
    };
    let unexpected = if let Some(method) = &c.unexpected_method {
        pick(&mut (0..n).filter(|&i| {
            let m = &ladder.messages[i];
            m.first_line.split(' ').next() == Some(method.as_str()) && to_ua(i) && in_call(i)
        }))
    } else if let Some(received) = &c.received {
        let cseq = CSEQ.captures(received).map(|m| fold(&m[1]));
        pick(&mut (0..n).filter(|&i| {
            let m = &ladder.messages[i];
            let first = fold(&m.first_line);
            let starts = received
                .strip_prefix(first.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '));
            starts
                && to_ua(i)
                && in_call(i)
                && cseq
                    .as_deref()
                    .is_none_or(|cs| m.cseq.as_deref().map(fold).as_deref() == Some(cs))
        }))
    } else {
        None
    };
    if let Some(index) = unexpected {
        return Some(Highlight {
            index,
            why: Why::Unexpected,
        });
    }
    let last = (0..n)
        .rev()
        .find(|&i| {
            let m = &ladder.messages[i];
            in_call(i) && ua.is_none_or(|u| m.from == u || m.to == u)
        })
        .or_else(|| (0..n).rev().find(|&i| in_call(i)))
        .or(n.checked_sub(1))?;
    Some(Highlight {
        index: last,
        why: Why::LastBefore,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::message;
    use super::super::{Endpoint, Message};
    use super::*;

    fn m(from: usize, to: usize, first: &str, call: &str, cseq: &str) -> Message {
        message(from, to, first, call, cseq)
    }

    fn ladder(messages: Vec<Message>) -> Ladder {
        let e = |label: &str, a: u8, ua: Option<&str>| Endpoint {
            label: label.into(),
            address: [10, 0, 0, a].into(),
            ua: ua.map(str::to_string),
        };
        Ladder {
            pcap: "p".into(),
            started: None,
            endpoints: vec![
                e("uac_ua1", 2, Some("ua1")),
                e("DUT", 1, None),
                e("uas_ua0", 3, Some("ua0")),
            ],
            messages,
            omitted: 0,
            call_id: None,
            failure_t: None,
        }
    }

    #[test]
    fn clues_from_sipp_reasons() {
        let r = "run group part1: part1_uac_ua1 (uac) call failed, exit status 1: Aborting call on unexpected message for Call-Id '1-2@x': while expecting '200' (index 2), received 'SIP/2.0 404 Not Found Via: SIP/2.0/UDP 10.0.0.2;branch=z CSeq: 1 INVITE '; cleanup: after.sh exited with status 1";
        let c = clue(r);
        assert_eq!(c.ua.as_deref(), Some("ua1"));
        assert_eq!(c.scenario.as_deref(), Some("part1_uac_ua1"));
        assert_eq!(c.call_id.as_deref(), Some("1-2@x"));
        assert!(c
            .received
            .as_deref()
            .is_some_and(|t| t.starts_with("SIP/2.0 404 Not Found Via:")));
        let c = clue("uas_ua0.2 (uas) call failed, exit status 1: Call-Id: 5-6@y, receive timeout on message uas_ua0.xml:3 without label to jump to (ontimeout attribute): aborting call");
        assert_eq!(c.ua.as_deref(), Some("ua0"));
        assert_eq!(c.scenario.as_deref(), Some("uas_ua0"));
        assert_eq!(c.call_id.as_deref(), Some("5-6@y"));
        assert_eq!(c.received, None);
        let c = clue("uac_ua1 (uac) call failed, exit status 1: Aborting call on an unexpected BYE for call: 7-8@z");
        assert_eq!(c.unexpected_method.as_deref(), Some("BYE"));
        assert_eq!(c.call_id.as_deref(), Some("7-8@z"));
        assert_eq!(clue("before.sh exited with status 1"), Clue::default());
    }

    #[test]
    fn the_unexpected_message_to_the_failed_instance() {
        let l = ladder(vec![
            m(0, 1, "INVITE sip:x SIP/2.0", "c", "1 INVITE"),
            m(1, 2, "INVITE sip:x SIP/2.0", "c", "1 INVITE"),
            // The same 404 to the DUT first: not to ua1.
            m(2, 1, "SIP/2.0 404 Not Found", "c", "1 INVITE"),
            m(1, 0, "SIP/2.0 404 Not Found", "c", "1 INVITE"),
            m(0, 1, "ACK sip:x SIP/2.0", "c", "1 ACK"),
        ]);
        let r = "uac_ua1 (uac) call failed, exit status 1: Aborting call on unexpected message for Call-Id 'c': while expecting '200' (index 2), received 'SIP/2.0 404 Not Found Via: x CSeq: 1 INVITE Content-Length: 0 '";
        assert_eq!(
            highlight(&l, r),
            Some(Highlight {
                index: 3,
                why: Why::Unexpected
            })
        );
        // Another CSeq named: not that one; the last message of ua1 instead.
        let other = r.replace("CSeq: 1 INVITE", "CSeq: 2 INVITE");
        assert_eq!(
            highlight(&l, &other),
            Some(Highlight {
                index: 4,
                why: Why::LastBefore
            })
        );
    }

    #[test]
    fn timeouts_and_reasons_without_an_instance() {
        let l = ladder(vec![
            m(0, 1, "OPTIONS sip:x SIP/2.0", "c", "1 OPTIONS"),
            m(1, 0, "SIP/2.0 200 OK", "c", "1 OPTIONS"),
            m(1, 2, "OPTIONS sip:y SIP/2.0", "d", "1 OPTIONS"),
            m(2, 1, "SIP/2.0 200 OK", "d", "1 OPTIONS"),
        ]);
        let timeout = "uac_ua1 (uac) call failed, exit status 1: Call-Id: c, receive timeout on message uac_ua1.xml:2 without label to jump to (ontimeout attribute): aborting call";
        assert_eq!(
            highlight(&l, timeout),
            Some(Highlight {
                index: 1,
                why: Why::LastBefore
            })
        );
        assert_eq!(highlight(&l, "killed").map(|h| h.index), Some(3));
        assert_eq!(highlight(&ladder(vec![]), "killed"), None);
        let bye = "uas_ua0 (uas) call failed, exit status 1: Aborting call on an unexpected BYE for call: d";
        let mut with_bye = l.clone();
        with_bye
            .messages
            .push(m(1, 2, "BYE sip:y SIP/2.0", "d", "2 BYE"));
        assert_eq!(
            highlight(&with_bye, bye),
            Some(Highlight {
                index: 4,
                why: Why::Unexpected
            })
        );
    }

    /// The DUT retransmits an INVITE the UAS answered already; the copy that came while SIPp
    /// expected the ACK is the unexpected one, not the first (which SIPp took).
    #[test]
    fn the_copy_before_the_failure_when_its_time_is_known() {
        let at = |t: f64, mut m: Message| {
            m.t = t;
            m
        };
        let mut l = ladder(vec![
            at(0.0, m(0, 1, "INVITE sip:x SIP/2.0", "c", "1 INVITE")),
            at(0.027, m(1, 2, "INVITE sip:x SIP/2.0", "c", "1 INVITE")),
            at(0.028, m(2, 1, "SIP/2.0 180 Ringing", "c", "1 INVITE")),
            at(0.029, m(2, 1, "SIP/2.0 200 OK", "c", "1 INVITE")),
            at(0.4957, m(1, 2, "INVITE sip:x SIP/2.0", "c", "1 INVITE")),
            at(0.53, m(1, 2, "ACK sip:x SIP/2.0", "c", "1 ACK")),
            at(0.9, m(1, 2, "INVITE sip:x SIP/2.0", "c", "1 INVITE")),
        ]);
        let r = "uas_ua0 (uas) call failed, exit status 1: Aborting call on unexpected message for Call-Id 'c': while expecting 'ACK' (index 3), received 'INVITE sip:x SIP/2.0 Via: y CSeq: 1 INVITE '";
        assert_eq!(
            highlight(&l, r).map(|h| h.index),
            Some(1),
            "no time: the first"
        );
        l.failure_t = Some(0.4958);
        assert_eq!(
            highlight(&l, r),
            Some(Highlight {
                index: 4,
                why: Why::Unexpected
            })
        );
        // A timeout: the instance's last message before the failure, not SIPp's own after it.
        let timeout = "uas_ua0 (uas) call failed, exit status 1: Call-Id: c, receive timeout on message uas_ua0.xml:3 without label to jump to (ontimeout attribute): aborting call";
        l.failure_t = Some(0.6);
        assert_eq!(highlight(&l, timeout).map(|h| h.index), Some(5));
    }
}
