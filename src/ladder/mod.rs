//! The SIP ladder of a test run, read from its pcap by our own code (no tshark): the SIP
//! messages over UDP and TCP ([`capture`] for link layers and IPv4 fragments, [`tcp`] for
//! streams, [`sip`] for framing and headers), in time order, between columns that say who is
//! who (`uac_ua1 10.99.0.37`, `DUT 10.99.0.1`), retransmissions marked; [`failure`] finds the
//! message that failed the test. A [`Ladder`] is plain data: it travels in the JSON report and
//! the HTML report draws it.

pub mod capture;
pub mod failure;
pub mod sip;
pub mod tcp;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::report::rfc3339;

/// The most messages a ladder shows: a load test's capture holds thousands of calls; its
/// ladder shows the failed call (see [`Ladder::build`]) or the first ones.
pub const MAX_MESSAGES: usize = 300;

/// The most of one message's text kept (SIP messages are small; a huge body is cut).
pub const MAX_TEXT: usize = 16 * 1024;

#[derive(Debug, Error)]
pub enum LadderError {
    #[error("open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("not a pcap file: {0}")]
    NotPcap(String),
    #[error("link type {0} is not read (Linux cooked, Ethernet or raw IP are)")]
    LinkType(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Transport {
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "TCP")]
    Tcp,
}

/// One SIP message as captured.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Since the epoch.
    pub at: Duration,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub transport: Transport,
    pub sip: sip::Parsed,
}

/// Hands the SIP messages of a pcap to `each`, in file order (a TCP message at the time of
/// the segment that completed it, as Wireshark shows it). Packets that are not SIP are skipped.
pub fn for_each_message(
    reader: impl Read,
    mut each: impl FnMut(Captured),
) -> Result<(), LadderError> {
    let mut streams: BTreeMap<(SocketAddrV4, SocketAddrV4), (tcp::Stream, Vec<u8>)> =
        BTreeMap::new();
    capture::for_each_datagram(reader, |d| match d.protocol {
        17 if d.payload.len() >= 8 => {
            let p = &d.payload;
            if let Some(sip) = sip::parse_datagram(&p[8..]) {
                each(Captured {
                    at: d.at,
                    src: SocketAddrV4::new(d.src, u16::from_be_bytes([p[0], p[1]])),
                    dst: SocketAddrV4::new(d.dst, u16::from_be_bytes([p[2], p[3]])),
                    transport: Transport::Udp,
                    sip,
                });
            }
        }
        6 => {
            let Some(h) = tcp::header(&d.payload) else {
                return;
            };
            let src = SocketAddrV4::new(d.src, h.src_port);
            let dst = SocketAddrV4::new(d.dst, h.dst_port);
            let (stream, buf) = streams.entry((src, dst)).or_default();
            let bytes = stream.segment(&h, &d.payload[h.data_offset..]);
            if h.syn {
                buf.clear();
            }
            buf.extend_from_slice(&bytes);
            loop {
                match sip::take_message(buf) {
                    sip::Take::Message(m) => each(Captured {
                        at: d.at,
                        src,
                        dst,
                        transport: Transport::Tcp,
                        sip: sip::parse(&m),
                    }),
                    sip::Take::Lost => continue,
                    sip::Take::NeedMore => break,
                }
            }
        }
        _ => {}
    })
}

/// Every SIP message of a pcap (tests and small files).
#[cfg(test)]
pub fn read_messages(reader: impl Read) -> Result<Vec<Captured>, LadderError> {
    let mut out = Vec::new();
    for_each_message(reader, |c| out.push(c))?;
    Ok(out)
}

/// What a ladder shows of a stream of messages, kept in bounded memory: the first
/// [`MAX_MESSAGES`], and the first [`MAX_MESSAGES`] of the call to focus on.
struct Keep {
    focus: Option<String>,
    first: Vec<Captured>,
    focused: Vec<Captured>,
    total: u64,
}

impl Keep {
    fn new(focus: Option<&str>) -> Keep {
        Keep {
            focus: focus.map(str::to_string),
            first: Vec::new(),
            focused: Vec::new(),
            total: 0,
        }
    }

    fn push(&mut self, c: Captured) {
        self.total += 1;
        if self.focus.is_some() && c.sip.call_id == self.focus && self.focused.len() < MAX_MESSAGES
        {
            self.focused.push(c.clone());
        }
        if self.first.len() < MAX_MESSAGES {
            self.first.push(c);
        }
    }

    /// The ladder: the focused call when there were too many messages to show them all.
    /// `failure_at`: when SIPp wrote the error, since the epoch.
    fn ladder(self, parties: &[Endpoint], pcap: &str, failure_at: Option<Duration>) -> Ladder {
        let (mut shown, call_id) = if self.total > MAX_MESSAGES as u64 && !self.focused.is_empty() {
            (self.focused, self.focus)
        } else {
            (self.first, None)
        };
        // Captures are in time order but for a rare kernel reordering; stable keeps a TCP
        // segment's messages in stream order.
        shown.sort_by_key(|c| c.at);
        // A retransmission's first sending came before it, so it is among those kept too.
        let retransmission = retransmissions(&shown);
        let mut endpoints = parties.to_vec();
        let mut column = |addr: Ipv4Addr| match endpoints.iter().position(|e| e.address == addr) {
            Some(i) => i,
            None => {
                endpoints.push(Endpoint {
                    label: String::new(),
                    address: addr,
                    ua: None,
                });
                endpoints.len() - 1
            }
        };
        let first = shown.first().map(|c| c.at);
        let messages = shown
            .iter()
            .zip(retransmission)
            .map(|(c, retransmission)| {
                let t = c.at.saturating_sub(first.unwrap_or_default());
                Message {
                    t: t.as_micros() as f64 / 1e6,
                    from: column(*c.src.ip()),
                    to: column(*c.dst.ip()),
                    src_port: c.src.port(),
                    dst_port: c.dst.port(),
                    transport: c.transport,
                    first_line: c.sip.first_line.clone(),
                    call_id: c.sip.call_id.clone(),
                    cseq: c.sip.cseq.clone(),
                    branch: c.sip.branch.clone(),
                    retransmission,
                    text: cut(&c.sip.text),
                }
            })
            .collect::<Vec<_>>();
        Ladder {
            pcap: pcap.to_string(),
            started: first.map(|at| rfc3339(UNIX_EPOCH + at)),
            endpoints,
            omitted: self.total - messages.len() as u64,
            messages,
            call_id,
            failure_t: failure_at.zip(first).map(|(f, first)| {
                let since = if f >= first {
                    (f - first).as_micros() as f64
                } else {
                    -((first - f).as_micros() as f64)
                };
                since / 1e6
            }),
        }
    }
}

/// A column of the ladder: a SIPp instance, the DUT, or another address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `uac_ua1`, `DUT`; empty for an address the run did not know.
    pub label: String,
    pub address: Ipv4Addr,
    /// The instance (`ua1`), for a SIPp instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua: Option<String>,
}

/// One arrow of the ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Seconds since the ladder's first message (to the microsecond).
    pub t: f64,
    /// Endpoint indexes.
    pub from: usize,
    pub to: usize,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: Transport,
    /// `INVITE sip:x@10.0.0.1 SIP/2.0`, `SIP/2.0 180 Ringing`.
    pub first_line: String,
    #[serde(default)]
    pub call_id: Option<String>,
    #[serde(default)]
    pub cseq: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    /// The same message (same way, start line, Call-ID, CSeq, branch) came before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retransmission: bool,
    /// The whole message (cut past [`MAX_TEXT`]).
    pub text: String,
}

impl Message {
    /// What the arrow says: the method of a request, the status of a response with the method
    /// of its CSeq (`200 OK (BYE)`).
    pub fn label(&self) -> String {
        match self.first_line.strip_prefix("SIP/2.0 ") {
            Some(status) => match self.cseq.as_deref().and_then(|c| c.split(' ').nth(1)) {
                Some(method) => format!("{status} ({method})"),
                None => status.to_string(),
            },
            None => self
                .first_line
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// A test run's SIP messages between its endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ladder {
    /// The capture it was read from (the file's name).
    pub pcap: String,
    /// The first message's capture time, RFC 3339.
    #[serde(default)]
    pub started: Option<String>,
    /// The columns, left to right.
    pub endpoints: Vec<Endpoint>,
    pub messages: Vec<Message>,
    /// SIP messages of the capture not shown (other calls, or past [`MAX_MESSAGES`]).
    #[serde(default)]
    pub omitted: u64,
    /// Only this call's messages are shown (a capture with more than [`MAX_MESSAGES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// When SIPp wrote the error that failed the run (from its error file), in seconds since
    /// the first message: what [`failure::highlight`] looks before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_t: Option<f64>,
}

impl Ladder {
    /// The ladder of `captured` (in file order). `parties` are the run's known columns, in
    /// the order shown (UACs, the DUT, UASes); an address the run did not know gets a column of
    /// its own after them. When there are more than [`MAX_MESSAGES`] messages and `focus_call`
    /// (the failed call's Call-ID) is among them, only that call is shown; else the first ones.
    pub fn build(
        captured: impl IntoIterator<Item = Captured>,
        parties: &[Endpoint],
        focus_call: Option<&str>,
        pcap: &str,
    ) -> Ladder {
        let mut keep = Keep::new(focus_call);
        for c in captured {
            keep.push(c);
        }
        keep.ladder(parties, pcap, None)
    }

    /// Reads `pcap` and builds its ladder (see [`Ladder::build`]), in bounded memory whatever
    /// the size of the capture. `failure_at`: when SIPp wrote the error that failed the run
    /// (since the epoch), when known.
    pub fn from_pcap(
        pcap: &Path,
        parties: &[Endpoint],
        focus_call: Option<&str>,
        failure_at: Option<Duration>,
    ) -> Result<Ladder, LadderError> {
        let f = File::open(pcap).map_err(|source| LadderError::Open {
            path: pcap.to_path_buf(),
            source,
        })?;
        let mut keep = Keep::new(focus_call);
        for_each_message(BufReader::new(f), |c| keep.push(c))?;
        let name = pcap
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(keep.ladder(parties, &name, failure_at))
    }
}

/// Whether each message repeats an earlier one: same source and destination, start line,
/// Call-ID, CSeq and top Via branch (a request or response sent again, as SIP over UDP does
/// every T1 until answered; a proxy's relay of it has other addresses, so it is not one).
fn retransmissions(captured: &[Captured]) -> Vec<bool> {
    let mut seen = HashSet::new();
    captured
        .iter()
        .map(|c| {
            !seen.insert((
                c.src,
                c.dst,
                c.sip.first_line.as_str(),
                c.sip.call_id.as_deref(),
                c.sip.cseq.as_deref(),
                c.sip.branch.as_deref(),
            ))
        })
        .collect()
}

/// `text` cut to [`MAX_TEXT`] bytes (on a character boundary), saying how much was cut.
fn cut(text: &str) -> String {
    if text.len() <= MAX_TEXT {
        return text.to_string();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n… ({} more bytes)", &text[..end], text.len() - end)
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    const UAC: [u8; 4] = [10, 99, 0, 37];
    const DUT: [u8; 4] = [10, 99, 0, 1];
    const UAS: [u8; 4] = [10, 99, 0, 12];

    fn msg(first: &str, call: &str, cseq: &str, branch: &str, body: &str) -> Vec<u8> {
        format!(
            "{first}\r\nVia: SIP/2.0/UDP 10.99.0.37:5060;branch={branch}\r\nCall-ID: {call}\r\nCSeq: {cseq}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn parties() -> Vec<Endpoint> {
        vec![
            Endpoint {
                label: "uac_ua1".into(),
                address: UAC.into(),
                ua: Some("ua1".into()),
            },
            Endpoint {
                label: "DUT".into(),
                address: DUT.into(),
                ua: None,
            },
            Endpoint {
                label: "uas_ua0".into(),
                address: UAS.into(),
                ua: Some("ua0".into()),
            },
        ]
    }

    fn ladder_of(link: Link, packets: &[(u64, Vec<u8>)]) -> Ladder {
        let framed: Vec<(u64, Vec<u8>)> = packets
            .iter()
            .map(|(t, ip)| (*t, frame(link, ip)))
            .collect();
        let captured = read_messages(&write_pcap(link, &framed)[..]).expect("read");
        Ladder::build(captured, &parties(), None, "sipp-abcdef.pcap")
    }

    /// A call over UDP through the DUT, with a retransmitted INVITE and a DNS packet between.
    fn udp_call() -> Vec<(u64, Vec<u8>)> {
        let invite = msg(
            "INVITE sip:x@10.99.0.12 SIP/2.0",
            "c1",
            "1 INVITE",
            "b1",
            "v=0\r\n",
        );
        let relayed = msg(
            "INVITE sip:x@10.99.0.12 SIP/2.0",
            "c1",
            "1 INVITE",
            "b2",
            "v=0\r\n",
        );
        let ok = msg("SIP/2.0 200 OK", "c1", "1 INVITE", "b2", "");
        let ok_back = msg("SIP/2.0 200 OK", "c1", "1 INVITE", "b1", "");
        let dns = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01";
        vec![
            (1_000_000, udp_datagram(UAC, 5060, DUT, 5060, &invite, 1)),
            (1_000_100, udp_datagram(UAC, 40000, DUT, 53, dns, 2)),
            (1_500_000, udp_datagram(UAC, 5060, DUT, 5060, &invite, 3)),
            (1_500_200, udp_datagram(DUT, 5060, UAS, 5060, &relayed, 4)),
            (1_600_000, udp_datagram(UAS, 5060, DUT, 5060, &ok, 5)),
            (1_600_300, udp_datagram(DUT, 5060, UAC, 5060, &ok_back, 6)),
        ]
    }

    #[test]
    fn udp_call_with_a_retransmission_and_a_non_sip_packet() {
        for link in [Link::Sll, Link::Ethernet, Link::EthernetVlan] {
            let l = ladder_of(link, &udp_call());
            let arrows: Vec<(usize, usize, String, bool)> = l
                .messages
                .iter()
                .map(|m| (m.from, m.to, m.label(), m.retransmission))
                .collect();
            assert_eq!(
                arrows,
                vec![
                    (0, 1, "INVITE".to_string(), false),
                    (0, 1, "INVITE".to_string(), true),
                    (1, 2, "INVITE".to_string(), false),
                    (2, 1, "200 OK (INVITE)".to_string(), false),
                    (1, 0, "200 OK (INVITE)".to_string(), false),
                ],
                "{link:?}"
            );
            assert_eq!(l.endpoints, parties(), "no extra column");
            let t: Vec<f64> = l.messages.iter().map(|m| m.t).collect();
            assert_eq!(t, vec![0.0, 0.5, 0.5002, 0.6, 0.6003]);
            assert_eq!(l.started.as_deref(), Some("1970-01-01T00:00:01.000Z"));
            assert_eq!(l.messages[0].call_id.as_deref(), Some("c1"));
            assert_eq!(l.messages[0].cseq.as_deref(), Some("1 INVITE"));
            assert_eq!(l.messages[0].branch.as_deref(), Some("b1"));
            assert!(l.messages[0].text.ends_with("\r\n\r\nv=0\r\n"));
            assert_eq!(l.messages[0].transport, Transport::Udp);
            assert_eq!(
                (l.messages[0].src_port, l.messages[0].dst_port),
                (5060, 5060)
            );
            assert_eq!(l.omitted, 0);
            assert_eq!(l.pcap, "sipp-abcdef.pcap");
        }
    }

    /// Over TCP: a message split across three segments (one of them out of order and one sent
    /// twice), then two messages in one segment.
    #[test]
    fn tcp_reassembled_across_segments_and_several_in_one() {
        let invite = msg(
            "INVITE sip:x@10.99.0.1 SIP/2.0",
            "t1",
            "1 INVITE",
            "b1",
            "v=0\r\no=x\r\n",
        );
        let trying = msg("SIP/2.0 100 Trying", "t1", "1 INVITE", "b1", "");
        let ok = msg("SIP/2.0 200 OK", "t1", "1 INVITE", "b1", "");
        let (a, b) = (20, 60);
        let isn = 1000u32;
        let seg = |seq: usize, data: &[u8]| {
            tcp_segment(UAC, 40001, DUT, 5060, isn + 1 + seq as u32, false, data)
        };
        let back = |seq: usize, data: &[u8]| {
            tcp_segment(DUT, 5060, UAC, 40001, 7001 + seq as u32, false, data)
        };
        let both = [trying.clone(), ok.clone()].concat();
        let packets = vec![
            (1, tcp_segment(UAC, 40001, DUT, 5060, isn, true, b"")),
            (2, tcp_segment(DUT, 5060, UAC, 40001, 7000, true, b"")),
            (10, seg(0, &invite[..a])),
            (11, seg(b, &invite[b..])),
            (12, seg(0, &invite[..a])),
            (13, seg(a, &invite[a..b])),
            (20, back(0, &both)),
        ];
        for link in [Link::Sll, Link::Ethernet] {
            let l = ladder_of(link, &packets);
            let got: Vec<(usize, usize, String, Transport)> = l
                .messages
                .iter()
                .map(|m| (m.from, m.to, m.first_line.clone(), m.transport))
                .collect();
            assert_eq!(
                got,
                vec![
                    (
                        0,
                        1,
                        "INVITE sip:x@10.99.0.1 SIP/2.0".into(),
                        Transport::Tcp
                    ),
                    (1, 0, "SIP/2.0 100 Trying".into(), Transport::Tcp),
                    (1, 0, "SIP/2.0 200 OK".into(), Transport::Tcp),
                ],
                "{link:?}"
            );
            assert_eq!(l.messages[0].text.as_bytes(), &invite[..]);
            assert_eq!(l.messages[2].text.as_bytes(), &ok[..]);
            assert!(l.messages.iter().all(|m| !m.retransmission));
            // The INVITE at the time of the segment that completed it.
            assert_eq!(l.messages[1].t, 0.000007);
        }
    }

    #[test]
    fn unknown_addresses_get_a_column_and_long_captures_focus_on_the_failed_call() {
        let other = [10, 99, 0, 200];
        let mut packets = Vec::new();
        for i in 0..(MAX_MESSAGES as u64 + 10) {
            let call = if i == 250 {
                "bad".to_string()
            } else {
                format!("c{i}")
            };
            let m = msg(
                "OPTIONS sip:x@10.99.0.1 SIP/2.0",
                &call,
                "1 OPTIONS",
                "b",
                "",
            );
            packets.push((i, udp_datagram(UAC, 5060, other, 5060, &m, i as u16)));
        }
        let framed: Vec<(u64, Vec<u8>)> = packets
            .iter()
            .map(|(t, ip)| (*t, frame(Link::Sll, ip)))
            .collect();
        let captured = read_messages(&write_pcap(Link::Sll, &framed)[..]).expect("read");
        let l = Ladder::build(captured.clone(), &parties(), None, "p");
        assert_eq!(l.messages.len(), MAX_MESSAGES);
        assert_eq!(l.omitted, 10);
        assert_eq!(l.endpoints.len(), 4);
        assert_eq!(l.endpoints[3].address, Ipv4Addr::from(other));
        assert_eq!(l.endpoints[3].label, "");
        let l = Ladder::build(captured.clone(), &parties(), Some("bad"), "p");
        assert_eq!(l.messages.len(), 1);
        assert_eq!(l.call_id.as_deref(), Some("bad"));
        assert_eq!(l.omitted, MAX_MESSAGES as u64 + 9);
        // A small capture shows everything, whatever the focus.
        let l = Ladder::build(captured[..5].to_vec(), &parties(), Some("c1"), "p");
        assert_eq!((l.messages.len(), l.call_id.as_deref()), (5, None));
    }

    #[test]
    fn json_round_trip_and_long_texts_cut() {
        let l = ladder_of(Link::Sll, &udp_call());
        let text = serde_json::to_string(&l).expect("json");
        assert!(text.contains("\"retransmission\":true"));
        assert_eq!(
            text.matches("\"retransmission\"").count(),
            1,
            "false left out"
        );
        let back: Ladder = serde_json::from_str(&text).expect("back");
        assert_eq!(back, l);
        let long = "é".repeat(MAX_TEXT);
        let c = cut(&long);
        assert!(c.len() < MAX_TEXT + 40);
        assert!(c.ends_with(&format!("… ({} more bytes)", long.len() - MAX_TEXT)));
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = Ladder::from_pcap(Path::new("/nonexistent/x.pcap"), &[], None, None)
            .expect_err("missing");
        assert!(
            e.to_string().starts_with("open /nonexistent/x.pcap: "),
            "{e}"
        );
    }
}
