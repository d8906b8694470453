//! The geometry of a ladder drawn as SVG: where each column and arrow goes, what each says and
//! how it looks (retransmission, the failed message). Plain data for the `ladder.html`
//! template, computed here so that it is tested without a browser.

use serde::Serialize;

use crate::ladder::failure::{Highlight, Why};
use crate::ladder::{Ladder, Transport};

/// Space between two columns.
const COLUMN: u32 = 240;
/// The times' gutter on the left.
const GUTTER: u32 = 80;
/// Height of the column heads.
const HEAD: u32 = 64;
/// Height of one message's row.
const ROW: u32 = 32;
/// The most characters of an arrow's label: what fits between two columns with room to spare
/// at both ends (12 px monospace: ~7.2 px a character; the whole start line is in the arrow's
/// tooltip and its message).
const LABEL: usize = 28;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Column {
    pub x: u32,
    /// `uac_ua1`, `DUT`; empty for an address the run did not know.
    pub label: String,
    pub address: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Arrow {
    /// Index in the ladder's messages.
    pub n: usize,
    pub x1: u32,
    pub x2: u32,
    pub y: u32,
    /// Where the label goes (the middle of the arrow, or beside a loop).
    pub label_x: u32,
    /// `INVITE`, `200 OK (INVITE)`.
    pub label: String,
    /// Since the first message: `+0.6ms`, `+209.2ms`, `+1.234s`.
    pub time: String,
    /// The source and destination with their ports and the transport, for the message panel.
    pub route: String,
    pub retransmission: bool,
    /// From an endpoint to itself: drawn as a loop.
    pub to_self: bool,
    pub highlighted: bool,
    pub first_line: String,
    pub text: String,
}

/// A ladder ready to draw.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LadderView {
    pub width: u32,
    pub height: u32,
    /// Where the column lines end.
    pub bottom: u32,
    pub columns: Vec<Column>,
    pub arrows: Vec<Arrow>,
    /// What the highlight means, when there is one.
    pub highlight: Option<String>,
}

/// Lays out `ladder`, `highlight` marking the failed message.
pub fn layout(ladder: &Ladder, highlight: Option<Highlight>) -> LadderView {
    let x_of = |i: usize| GUTTER + COLUMN / 2 + i as u32 * COLUMN;
    let columns: Vec<Column> = ladder
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| Column {
            x: x_of(i),
            label: e.label.clone(),
            address: e.address.to_string(),
        })
        .collect();
    let arrows: Vec<Arrow> = ladder
        .messages
        .iter()
        .enumerate()
        .map(|(n, m)| {
            let (x1, x2) = (x_of(m.from), x_of(m.to));
            let to_self = m.from == m.to;
            let endpoint = |i: usize, port: u16| {
                let a = ladder
                    .endpoints
                    .get(i)
                    .map(|e| e.address.to_string())
                    .unwrap_or_default();
                format!("{a}:{port}")
            };
            let transport = match m.transport {
                Transport::Udp => "UDP",
                Transport::Tcp => "TCP",
            };
            Arrow {
                n,
                x1,
                x2,
                y: HEAD + 24 + n as u32 * ROW,
                label_x: if to_self { x1 + 40 } else { (x1 + x2) / 2 },
                label: fit(&m.label(), LABEL),
                time: since_first(m.t),
                route: format!(
                    "{} → {} {transport}",
                    endpoint(m.from, m.src_port),
                    endpoint(m.to, m.dst_port)
                ),
                retransmission: m.retransmission,
                to_self,
                highlighted: highlight.is_some_and(|h| h.index == n),
                first_line: m.first_line.clone(),
                text: m.text.clone(),
            }
        })
        .collect();
    let bottom = HEAD + 24 + arrows.len() as u32 * ROW;
    LadderView {
        width: GUTTER + columns.len().max(1) as u32 * COLUMN,
        height: bottom + 8,
        bottom,
        columns,
        arrows,
        highlight: highlight.map(|h| {
            match h.why {
                Why::Unexpected => "highlighted: the message SIPp did not expect",
                Why::LastBefore => {
                    "highlighted: the failed instance's last message before the failure"
                }
            }
            .to_string()
        }),
    }
}

/// `+0.6ms` under a second, `+1.234s` from it.
fn since_first(t: f64) -> String {
    if t < 1.0 {
        format!("+{:.1}ms", t * 1000.0)
    } else {
        format!("+{t:.3}s")
    }
}

/// An arrow's label in `n` characters: a long response's reason phrase is cut, not the method
/// of its CSeq (`100 trying -- your… (INVITE)`).
fn fit(label: &str, n: usize) -> String {
    if label.chars().count() <= n {
        return label.to_string();
    }
    if let Some(open) = label.rfind(" (").filter(|_| label.ends_with(')')) {
        let method = &label[open..];
        let room = n.saturating_sub(method.chars().count() + 1);
        if room >= 8 {
            return format!("{}{method}", cut(&label[..open], room));
        }
    }
    cut(label, n.saturating_sub(1))
}

/// `s` cut to `n` characters, then `…`, when it is longer.
fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((at, _)) => format!("{}…", &s[..at].trim_end()),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::testing::message;
    use crate::ladder::Endpoint;

    #[test]
    fn columns_arrows_and_the_highlight() {
        let e = |label: &str, a: u8| Endpoint {
            label: label.into(),
            address: [10, 0, 0, a].into(),
            ua: None,
        };
        let mut retrans = message(0, 1, "INVITE sip:x SIP/2.0", "c", "1 INVITE");
        retrans.retransmission = true;
        retrans.t = 0.5;
        let ladder = Ladder {
            pcap: "p".into(),
            started: None,
            endpoints: vec![e("uac_ua1", 2), e("DUT", 1)],
            messages: vec![
                message(0, 1, "INVITE sip:x SIP/2.0", "c", "1 INVITE"),
                retrans,
                message(1, 0, "SIP/2.0 404 Not Found", "c", "1 INVITE"),
                message(1, 1, "OPTIONS sip:self SIP/2.0", "d", "1 OPTIONS"),
            ],
            omitted: 0,
            call_id: None,
            failure_t: None,
        };
        let v = layout(
            &ladder,
            Some(Highlight {
                index: 2,
                why: Why::Unexpected,
            }),
        );
        assert_eq!(
            v.columns.iter().map(|c| c.x).collect::<Vec<_>>(),
            vec![200, 440]
        );
        assert_eq!(v.columns[0].address, "10.0.0.2");
        assert_eq!(v.width, 80 + 2 * 240);
        let a = &v.arrows;
        assert_eq!(
            (a[0].x1, a[0].x2, a[0].label.as_str()),
            (200, 440, "INVITE")
        );
        assert_eq!((a[2].x1, a[2].x2), (440, 200), "right to left");
        assert_eq!(a[2].label, "404 Not Found (INVITE)");
        assert!(a[1].retransmission && !a[0].retransmission);
        assert_eq!(a[1].time, "+500.0ms");
        assert_eq!(a[0].time, "+0.0ms");
        assert_eq!(since_first(1.23456), "+1.235s");
        assert_eq!(since_first(0.000711), "+0.7ms");
        assert_eq!(
            fit("100 trying -- your call is important to us (INVITE)", LABEL),
            "100 trying -- your… (INVITE)"
        );
        assert_eq!(
            fit("183 Session Progress (INVITE)", LABEL),
            "183 Session Progre… (INVITE)"
        );
        assert_eq!(fit("200 OK (INVITE)", LABEL), "200 OK (INVITE)");
        assert_eq!(
            fit("SUBSCRIBE-WITH-A-VERY-LONG-METHOD-NAME", LABEL),
            "SUBSCRIBE-WITH-A-VERY-LONG-…"
        );
        assert_eq!(
            fit("200 OK (SUBSCRIBE-WITH-A-VERY-LONG-METHOD)", LABEL),
            "200 OK (SUBSCRIBE-WITH-A-VE…",
            "no room for the status: cut at the end"
        );
        assert!(a
            .iter()
            .all(|a| a.label.trim_end_matches(" ↻").chars().count() <= LABEL));
        assert!(a[2].highlighted && a.iter().filter(|a| a.highlighted).count() == 1);
        assert!(a[3].to_self);
        assert!(a[1].y > a[0].y && a[2].y > a[1].y, "time goes down");
        assert_eq!(a[0].route, "10.0.0.2:5060 → 10.0.0.1:5060 UDP");
        assert!(v
            .highlight
            .as_deref()
            .is_some_and(|h| h.contains("did not expect")));
        assert!(v.bottom > a[3].y && v.height > v.bottom);
    }
}
