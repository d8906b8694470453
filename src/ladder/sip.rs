//! SIP messages in bytes: is this SIP, where does a message end in a TCP stream (Content-Length
//! framing, several messages in one segment, one message over several), and the headers the
//! ladder needs (Call-ID, CSeq, the top Via's branch), compact forms included (RFC 3261 §7.3.3).

/// The most a message's head (start line and headers) may take before a stream is judged not
/// to be SIP (or out of step): SIP's own practical limit for UDP is 64 KiB.
const MAX_HEAD: usize = 64 * 1024;

/// One SIP message, as the ladder shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// `INVITE sip:x@10.0.0.1 SIP/2.0` or `SIP/2.0 180 Ringing`.
    pub first_line: String,
    pub call_id: Option<String>,
    /// `1 INVITE`.
    pub cseq: Option<String>,
    /// The top Via's `branch` parameter.
    pub branch: Option<String>,
    /// The whole message (lossy UTF-8: a binary body shows as replacement characters).
    pub text: String,
}

impl Parsed {
    /// The method of a request, `None` for a response.
    pub fn method(&self) -> Option<&str> {
        (!self.first_line.starts_with("SIP/")).then(|| {
            self.first_line
                .split_whitespace()
                .next()
                .unwrap_or_default()
        })
    }
}

/// `SIP/2.0 200 OK`, or `METHOD uri SIP/2.0` with a method made of token characters.
pub fn is_start_line(line: &[u8]) -> bool {
    let line = trim_cr(line);
    if let Some(rest) = line.strip_prefix(b"SIP/2.0 ") {
        return rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit);
    }
    let Some(rest) = line.strip_suffix(b" SIP/2.0") else {
        return false;
    };
    let mut parts = rest.splitn(2, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let uri = parts.next().unwrap_or_default();
    !method.is_empty()
        && method
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(b))
        && !uri.is_empty()
        && !uri.contains(&b' ')
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The message of one UDP datagram, if it is SIP (a keep-alive or anything else: `None`). Bytes
/// past its Content-Length are not part of it.
pub fn parse_datagram(bytes: &[u8]) -> Option<Parsed> {
    let head_end = head_end(bytes).map_or(bytes.len(), |(end, _)| end);
    let (first, _) = split_line(bytes)?;
    if !is_start_line(first) {
        return None;
    }
    let len = content_length(&bytes[..head_end])
        .map_or(bytes.len(), |cl| (head_end + cl).min(bytes.len()));
    Some(parse(&bytes[..len]))
}

/// What [`take_message`] found at the front of a stream's buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// A whole message, taken out of the buffer.
    Message(Vec<u8>),
    /// The front is the start of a message: wait for more bytes.
    NeedMore,
    /// The buffer holds no start of a SIP message (not SIP, or data lost before it): it was
    /// emptied up to where one might begin.
    Lost,
}

/// Takes the first whole SIP message off the front of a TCP stream's `buf`. Keep-alive line
/// breaks before it are dropped; bytes that cannot begin a message are skipped up to the next
/// line that looks like a start line (a stream picked up in the middle, or a lost segment).
pub fn take_message(buf: &mut Vec<u8>) -> Take {
    let lead = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    buf.drain(..lead);
    if buf.is_empty() {
        return Take::NeedMore;
    }
    let Some((first, _)) = split_line(buf) else {
        // No whole line yet: a start line is short; a long one is no start line.
        if buf.len() > MAX_HEAD {
            buf.clear();
            return Take::Lost;
        }
        return Take::NeedMore;
    };
    if !is_start_line(first) {
        match next_start_line(buf) {
            Some(at) => {
                buf.drain(..at);
            }
            None => {
                // Keep the last partial line: it may be the start of one.
                let keep = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                buf.drain(..keep);
            }
        }
        return Take::Lost;
    }
    let Some((end, _)) = head_end(buf) else {
        if buf.len() > MAX_HEAD {
            buf.clear();
            return Take::Lost;
        }
        return Take::NeedMore;
    };
    // Content-Length is mandatory over TCP (RFC 3261 §20.14): none means no body.
    let total = end + content_length(&buf[..end]).unwrap_or(0);
    if buf.len() < total {
        return Take::NeedMore;
    }
    let rest = buf.split_off(total);
    Take::Message(std::mem::replace(buf, rest))
}

/// Where the next line that looks like a start line begins (not the first line).
fn next_start_line(buf: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(nl) = buf[at..].iter().position(|&b| b == b'\n') {
        at += nl + 1;
        match split_line(&buf[at..]) {
            Some((line, _)) if is_start_line(line) => return Some(at),
            Some(_) => {}
            None => return None,
        }
    }
    None
}

/// The first line (without its line break) and what follows it; `None` without a line break.
fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    Some((trim_cr(&bytes[..nl]), &bytes[nl + 1..]))
}

/// The end of the head (past its blank line) and the length of that blank line's break.
fn head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let crlf = find(bytes, b"\r\n\r\n").map(|i| (i + 4, 4));
    let lf = find(bytes, b"\n\n").map(|i| (i + 2, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The head's lines (start line excluded), folded continuation lines joined.
fn header_lines(head: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in head.lines().skip(1) {
        if line.trim().is_empty() {
            break;
        }
        match out.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => out.push(line.trim_end().to_string()),
        }
    }
    out
}

/// The first value of a header, by its long or its compact name.
fn header<'a>(lines: &'a [String], long: &str, compact: Option<&str>) -> Option<&'a str> {
    lines.iter().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case(long) || compact.is_some_and(|c| name.eq_ignore_ascii_case(c)))
            .then(|| value.trim())
    })
}

fn content_length(head: &[u8]) -> Option<usize> {
    let lines = header_lines(&String::from_utf8_lossy(head));
    header(&lines, "Content-Length", Some("l"))?.parse().ok()
}

/// The parts of a message the ladder shows and matches on.
pub fn parse(bytes: &[u8]) -> Parsed {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let head_len = head_end(bytes).map_or(bytes.len(), |(end, _)| end);
    let head = String::from_utf8_lossy(&bytes[..head_len]);
    let lines = header_lines(&head);
    let first_line = head.lines().next().unwrap_or_default().trim().to_string();
    let branch = header(&lines, "Via", Some("v")).and_then(|via| {
        // The top Via is the first of a comma-separated list.
        via.split(',').next()?.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("branch")
                .then(|| v.trim().to_string())
        })
    });
    Parsed {
        first_line,
        call_id: header(&lines, "Call-ID", Some("i")).map(str::to_string),
        cseq: header(&lines, "CSeq", None)
            .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" ")),
        branch,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@10.0.0.2 SIP/2.0\r\n\
        Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK-1;rport, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-9\r\n\
        i: abc@10.0.0.1\r\n\
        CSeq:  1   INVITE\r\n\
        Subject: a folded\r\n  header\r\n\
        l: 4\r\n\r\nv=0\n";

    #[test]
    fn start_lines() {
        for (line, sip) in [
            (&b"INVITE sip:x@y SIP/2.0\r"[..], true),
            (b"SIP/2.0 180 Ringing", true),
            (b"SIP/2.0 18 Ringing", false),
            (b"OPTIONS sip:ping@10.0.0.1:5060 SIP/2.0", true),
            (b"GET / HTTP/1.1", false),
            (b"INVITE  SIP/2.0", false),
            (b"INVITE sip:a b SIP/2.0", false),
            (b"IN(VITE sip:a SIP/2.0", false),
            (b"", false),
        ] {
            assert_eq!(
                is_start_line(line),
                sip,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn headers_compact_folded_and_the_top_via() {
        let p = parse(INVITE.as_bytes());
        assert_eq!(p.first_line, "INVITE sip:bob@10.0.0.2 SIP/2.0");
        assert_eq!(p.call_id.as_deref(), Some("abc@10.0.0.1"));
        assert_eq!(p.cseq.as_deref(), Some("1 INVITE"));
        assert_eq!(p.branch.as_deref(), Some("z9hG4bK-1"));
        assert_eq!(p.method(), Some("INVITE"));
        assert_eq!(p.text, INVITE);
        let r = parse(b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n");
        assert_eq!(r.method(), None);
        assert_eq!(r.branch, None);
    }

    #[test]
    fn datagrams() {
        let mut d = INVITE.as_bytes().to_vec();
        d.extend_from_slice(b"trailing junk");
        let p = parse_datagram(&d).expect("sip");
        assert_eq!(p.text, INVITE, "cut at Content-Length");
        assert_eq!(parse_datagram(b"\r\n\r\n"), None);
        assert_eq!(parse_datagram(b"\x00\x01binary"), None);
        assert_eq!(parse_datagram(b"GET / HTTP/1.1\r\n\r\n"), None);
        // No Content-Length: all of it.
        let p = parse_datagram(b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\nbody").expect("sip");
        assert!(p.text.ends_with("body"));
    }

    #[test]
    fn stream_framing() {
        let ok = "SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";
        // Keep-alives, two messages and the start of a third in one buffer.
        let mut buf = format!("\r\n\r\n{INVITE}{ok}SIP/2.0 18").into_bytes();
        assert_eq!(
            take_message(&mut buf),
            Take::Message(INVITE.as_bytes().to_vec())
        );
        assert_eq!(
            take_message(&mut buf),
            Take::Message(ok.as_bytes().to_vec())
        );
        assert_eq!(take_message(&mut buf), Take::NeedMore);
        assert_eq!(buf, b"SIP/2.0 18");
        // The body not all there yet.
        let mut buf = INVITE.as_bytes()[..INVITE.len() - 2].to_vec();
        assert_eq!(take_message(&mut buf), Take::NeedMore);
        buf.extend_from_slice(&INVITE.as_bytes()[INVITE.len() - 2..]);
        assert_eq!(
            take_message(&mut buf),
            Take::Message(INVITE.as_bytes().to_vec())
        );
        assert!(buf.is_empty());
        // Picked up in the middle of a message: skipped to the next start line.
        let mut buf = format!("ntent-Length: 0\r\n\r\n{ok}").into_bytes();
        assert_eq!(take_message(&mut buf), Take::Lost);
        assert_eq!(
            take_message(&mut buf),
            Take::Message(ok.as_bytes().to_vec())
        );
        // Not SIP at all: dropped but the last partial line.
        let mut buf = b"GET / HTTP/1.1\r\nHost: x\r\nSIP/2.".to_vec();
        assert_eq!(take_message(&mut buf), Take::Lost);
        assert_eq!(buf, b"SIP/2.");
    }
}
