//! `dns.txt` (SPEC §2, §9): a test's zone lines, parsed into the DNS records that the embedded
//! DNS server serves while the test runs.
//!
//! One record a line: `NAME [TTL] [IN] TYPE VALUE`; `#` starts a comment (outside quotes);
//! blank lines are ignored. Names get the final dot if they lack it and are lowercased. TYPE is
//! one of A, AAAA, CNAME, MX, NAPTR, NS, PTR, SOA, SRV, TXT. VALUE is written as in a zone file
//! (`10 60 5060 ep1.example.com.`), or as the original's list (`[10, 60, 5060,
//! "ep1.example.com."]`), which is accepted for every type.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::str::FromStr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NAPTR, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// The file's name in a test (and run) folder.
pub const FILE_NAME: &str = "dns.txt";

/// The TTL of a record whose line gives none, in seconds.
pub const DEFAULT_TTL: u32 = 60;

/// The record types a `dns.txt` may hold.
pub const TYPES: [&str; 10] = [
    "A", "AAAA", "CNAME", "MX", "NAPTR", "NS", "PTR", "SOA", "SRV", "TXT",
];

/// A line of `dns.txt` that is not a record: which line (from 1) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dns.txt line {line}: {problem}")]
pub struct ZoneError {
    pub line: usize,
    pub problem: String,
}

/// Parses the whole text of a `dns.txt`: its records in the order of the lines, identical
/// records once.
pub fn parse(text: &str) -> Result<Vec<Record>, ZoneError> {
    let mut records: Vec<Record> = Vec::new();
    // The line of each owner name's CNAME, and of its first other record (RFC 1034 §3.6.2:
    // a name with a CNAME has no other data).
    let mut cnames: HashMap<Name, usize> = HashMap::new();
    let mut others: HashMap<Name, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let err = |problem: String| ZoneError { line: n, problem };
        let Some(record) = parse_line(line).map_err(err)? else {
            continue;
        };
        let is_cname = record.record_type() == RecordType::CNAME;
        let name = &record.name;
        let clash = if is_cname {
            cnames.get(name).or_else(|| others.get(name))
        } else {
            cnames.get(name)
        };
        if let Some(&other) = clash {
            if !records.contains(&record) {
                return Err(err(format!(
                    "{name} has a CNAME, so it can have no other record (line {other})"
                )));
            }
        }
        if is_cname {
            cnames.entry(name.clone()).or_insert(n);
        } else {
            others.entry(name.clone()).or_insert(n);
        }
        // Record equality ignores the TTL: the first line's wins.
        if !records.contains(&record) {
            records.push(record);
        }
    }
    Ok(records)
}

/// The records of the `dns.txt` in `run_folder` (rendered already); `None` when there is no
/// such file. An error is one line naming the file and, for a bad line, the line.
pub fn parse_file(run_folder: &Path) -> Result<Option<Vec<Record>>, String> {
    let path = run_folder.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("read {}: {e}", path.display())),
    };
    parse(&text).map(Some).map_err(|e| e.to_string())
}

/// One token of a line: a bare word, a quoted string, or a `[...]` list of either.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    List(Vec<String>),
}

/// A token with the byte offset where it starts, to quote the raw value in errors.
struct Lexed {
    tokens: Vec<(usize, Token)>,
    /// Where the text ends: at the comment, or the line's end.
    end: usize,
}

/// Splits a line into tokens; `#` outside quotes ends the line. Inside quotes, `\x` is `x`.
fn lex(line: &str) -> Result<Lexed, String> {
    let bytes = line.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#' {
            return Ok(Lexed { tokens, end: i });
        } else if c == b'"' {
            let (s, next) = quoted(line, i)?;
            tokens.push((i, Token::Quoted(s)));
            i = next;
        } else if c == b'[' {
            let (items, next) = list(line, i)?;
            tokens.push((i, Token::List(items)));
            i = next;
        } else {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !b"#\"[".contains(&bytes[i])
            {
                i += 1;
            }
            tokens.push((start, Token::Word(line[start..i].to_string())));
        }
    }
    Ok(Lexed {
        tokens,
        end: line.len(),
    })
}

/// The string quoted at `start` (`"` or, in lists, `'`) and the offset after its closing quote.
fn quoted(line: &str, start: usize) -> Result<(String, usize), String> {
    let mut chars = line[start..].char_indices();
    let Some((_, quote)) = chars.next() else {
        return Err("a quoted string is empty".into());
    };
    let mut out = String::new();
    while let Some((j, ch)) = chars.next() {
        if ch == '\\' {
            match chars.next() {
                Some((_, esc)) => out.push(esc),
                None => break,
            }
        } else if ch == quote {
            return Ok((out, start + j + ch.len_utf8()));
        } else {
            out.push(ch);
        }
    }
    Err(format!(
        "unterminated quoted string: {}",
        line[start..].trim_end()
    ))
}

/// The items of the `[a, "b", 'c']` list at `start` and the offset after its `]`.
fn list(line: &str, start: usize) -> Result<(Vec<String>, usize), String> {
    let bytes = line.as_bytes();
    let unterminated = || format!("no closing ] in {}", line[start..].trim_end());
    let mut items = Vec::new();
    let mut i = start + 1;
    // Whether an item was read since the last comma (or the `[`).
    let mut have_item = false;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let Some(&c) = bytes.get(i) else {
            return Err(unterminated());
        };
        match c {
            b']' => {
                if !have_item && !items.is_empty() {
                    return Err(format!("an empty item in {}", &line[start..=i]));
                }
                return Ok((items, i + 1));
            }
            b',' => {
                if !have_item {
                    return Err(format!("an empty item in {}", line[start..].trim_end()));
                }
                have_item = false;
                i += 1;
            }
            _ if have_item => {
                return Err(format!(
                    "a comma is missing in {}",
                    line[start..].trim_end()
                ))
            }
            b'"' | b'\'' => {
                let (s, next) = quoted(line, i)?;
                items.push(s);
                have_item = true;
                i = next;
            }
            b'#' => return Err(unterminated()),
            _ => {
                let from = i;
                while i < bytes.len()
                    && !bytes[i].is_ascii_whitespace()
                    && !b",]#\"'".contains(&bytes[i])
                {
                    i += 1;
                }
                items.push(line[from..i].to_string());
                have_item = true;
            }
        }
    }
}

/// One line: `None` for a blank or comment line.
fn parse_line(line: &str) -> Result<Option<Record>, String> {
    let lexed = lex(line)?;
    let mut tokens = lexed.tokens.into_iter().peekable();
    let Some((_, first)) = tokens.next() else {
        return Ok(None);
    };
    let shape = || {
        format!(
            "expected NAME [TTL] [IN] TYPE VALUE, got {}",
            line[..lexed.end].trim()
        )
    };
    let Token::Word(name) = first else {
        return Err(shape());
    };
    let name = domain_name(&name)?;
    let mut ttl = None;
    let mut class = false;
    let rtype = loop {
        let Some((_, Token::Word(word))) = tokens.next() else {
            return Err(shape());
        };
        if word.bytes().all(|b| b.is_ascii_digit()) && ttl.is_none() {
            ttl = Some(number::<u32>("TTL", &word)?);
        } else if word.eq_ignore_ascii_case("IN") && !class {
            class = true;
        } else if ["CH", "CS", "HS"]
            .iter()
            .any(|c| word.eq_ignore_ascii_case(c))
        {
            return Err(format!("class {word} is not supported: only IN"));
        } else {
            break word.to_ascii_uppercase();
        }
    };
    let value: Vec<(usize, Token)> = tokens.collect();
    let raw = match value.first() {
        Some((at, _)) => line[*at..lexed.end].trim_end(),
        None => "",
    };
    let fields: Vec<String> = match value.as_slice() {
        [(_, Token::List(items))] => items.clone(),
        _ => {
            let mut fields = Vec::with_capacity(value.len());
            for (_, t) in value {
                match t {
                    Token::Word(s) | Token::Quoted(s) => fields.push(s),
                    Token::List(_) => {
                        return Err(format!(
                            "{rtype}: a [...] list must be the whole value, got {raw}"
                        ))
                    }
                }
            }
            fields
        }
    };
    let rdata = rdata(&rtype, &fields, raw)?;
    Ok(Some(Record::from_rdata(
        name,
        ttl.unwrap_or(DEFAULT_TTL),
        rdata,
    )))
}

/// `got ...` of an error: the value as written, or `nothing`.
fn got(raw: &str) -> String {
    if raw.is_empty() {
        "got nothing".into()
    } else {
        format!("got {raw}")
    }
}

/// The data of a record of type `rtype` from the fields of its value.
fn rdata(rtype: &str, f: &[String], raw: &str) -> Result<RData, String> {
    let shape = |want: &str| Err(format!("{rtype} needs {want}, {}", got(raw)));
    Ok(match rtype {
        "A" => match f {
            [a] => RData::A(A(address::<Ipv4Addr>(a, "IPv4")?)),
            _ => return shape("one IPv4 address"),
        },
        "AAAA" => match f {
            [a] => RData::AAAA(AAAA(address::<Ipv6Addr>(a, "IPv6")?)),
            _ => return shape("one IPv6 address"),
        },
        "CNAME" | "NS" | "PTR" => match f {
            [n] => {
                let n = domain_name(n)?;
                match rtype {
                    "CNAME" => RData::CNAME(CNAME(n)),
                    "NS" => RData::NS(NS(n)),
                    _ => RData::PTR(PTR(n)),
                }
            }
            _ => return shape("one domain name"),
        },
        "MX" => match f {
            [pref, exchange] => RData::MX(MX::new(
                number("MX preference", pref)?,
                domain_name(exchange)?,
            )),
            _ => return shape("PREFERENCE EXCHANGE (10 mail.example.com.)"),
        },
        "NAPTR" => match f {
            [order, pref, flags, services, regexp, replacement] => RData::NAPTR(NAPTR::new(
                number("NAPTR order", order)?,
                number("NAPTR preference", pref)?,
                character_string(flags)?,
                character_string(services)?,
                character_string(regexp)?,
                domain_name(replacement)?,
            )),
            _ => {
                return shape(
                    r#"ORDER PREFERENCE "FLAGS" "SERVICES" "REGEXP" REPLACEMENT (100 10 "S" "SIP+D2U" "" _sip._udp.example.com.)"#,
                )
            }
        },
        "SOA" => match f {
            [mname, rname, serial, refresh, retry, expire, minimum] => RData::SOA(SOA::new(
                domain_name(mname)?,
                domain_name(rname)?,
                number("SOA serial", serial)?,
                number("SOA refresh", refresh)?,
                number("SOA retry", retry)?,
                number("SOA expire", expire)?,
                number("SOA minimum", minimum)?,
            )),
            _ => return shape("MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM"),
        },
        "SRV" => match f {
            [priority, weight, port, target] => RData::SRV(SRV::new(
                number("SRV priority", priority)?,
                number("SRV weight", weight)?,
                number("SRV port", port)?,
                domain_name(target)?,
            )),
            _ => return shape(r#"[priority, weight, port, "target"]"#),
        },
        "TXT" => {
            if f.is_empty() {
                return shape(r#"one or more "strings""#);
            }
            for s in f {
                character_string(s)?;
            }
            RData::TXT(TXT::new(f.to_vec()))
        }
        _ => return Err(format!("unknown record type {rtype:?}")),
    })
}

/// A name made absolute and lowercase.
fn domain_name(s: &str) -> Result<Name, String> {
    let bad = |why: &dyn Display| format!("{s:?} is not a domain name ({why})");
    if s.is_empty() {
        return Err(bad(&"empty"));
    }
    if s == "@" {
        return Err(bad(&"dns.txt has no origin: write the whole name"));
    }
    let absolute = if s.ends_with('.') {
        s.to_string()
    } else {
        format!("{s}.")
    };
    if absolute.contains("..") {
        return Err(bad(&"an empty label"));
    }
    let name = Name::from_ascii(&absolute).map_err(|e| bad(&e))?;
    if name.len() > 255 {
        return Err(bad(&"longer than 255 bytes"));
    }
    Ok(name.to_lowercase())
}

fn address<T: FromStr>(s: &str, family: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an {family} address"))
}

/// A number field: decimal digits only, in the range of `T`.
fn number<T: TryFrom<u64> + Bounded>(what: &str, s: &str) -> Result<T, String> {
    let bad = || format!("{what} {s:?} is not a number from 0 to {}", T::MAX);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    s.parse::<u64>()
        .ok()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(bad)
}

/// The largest value of a number field, for its error.
trait Bounded {
    const MAX: u64;
}

impl Bounded for u16 {
    const MAX: u64 = u16::MAX as u64;
}

impl Bounded for u32 {
    const MAX: u64 = u32::MAX as u64;
}

/// SOA's refresh, retry and expire (RFC 1035 says 32-bit unsigned; hickory keeps them `i32`).
impl Bounded for i32 {
    const MAX: u64 = i32::MAX as u64;
}

/// A DNS character-string: at most 255 bytes.
fn character_string(s: &str) -> Result<Box<[u8]>, String> {
    if s.len() > 255 {
        return Err(format!(
            "a string of {} bytes is too long (255 at most): {:?}...",
            s.len(),
            s.chars().take(20).collect::<String>()
        ));
    }
    Ok(s.as_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn one(line: &str) -> Record {
        let mut v = parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(v.len(), 1, "{line:?}");
        v.remove(0)
    }

    #[test]
    fn every_type_and_form() {
        let srv = |p, w, port, t: &str| RData::SRV(SRV::new(p, w, port, name(t)));
        let naptr = |o, p, f: &str, s: &str, r: &str, t: &str| {
            RData::NAPTR(NAPTR::new(
                o,
                p,
                f.as_bytes().into(),
                s.as_bytes().into(),
                r.as_bytes().into(),
                name(t),
            ))
        };
        let cases: Vec<(&str, &str, u32, RData)> = vec![
            (
                "ep1.example.com  A       10.0.0.5",
                "ep1.example.com.",
                60,
                RData::A(A(Ipv4Addr::new(10, 0, 0, 5))),
            ),
            (
                "EP1.Example.COM. 300 IN A 10.0.0.5 # trailing comment",
                "ep1.example.com.",
                300,
                RData::A(A(Ipv4Addr::new(10, 0, 0, 5))),
            ),
            (
                "ep1.example.com IN 5 a 10.0.0.5#comment",
                "ep1.example.com.",
                5,
                RData::A(A(Ipv4Addr::new(10, 0, 0, 5))),
            ),
            (
                "v6.example.com AAAA 2001:db8::5",
                "v6.example.com.",
                60,
                RData::AAAA(AAAA("2001:db8::5".parse().unwrap())),
            ),
            (
                "sip.example.com CNAME Ep1.example.com",
                "sip.example.com.",
                60,
                RData::CNAME(CNAME(name("ep1.example.com."))),
            ),
            (
                "example.com MX 10 mail.example.com.",
                "example.com.",
                60,
                RData::MX(MX::new(10, name("mail.example.com."))),
            ),
            (
                r#"example.com NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.example.com."#,
                "example.com.",
                60,
                naptr(100, 10, "S", "SIP+D2U", "", "_sip._udp.example.com."),
            ),
            (
                r#"example.com NAPTR 10 0 "U" "E2U+sip" "!^.*$!sip:info@example.com!" ."#,
                "example.com.",
                60,
                naptr(10, 0, "U", "E2U+sip", "!^.*$!sip:info@example.com!", "."),
            ),
            (
                r#"example.com NAPTR [100, 10, "S", "SIP+D2T", "", "_sip._tcp.example.com."]"#,
                "example.com.",
                60,
                naptr(100, 10, "S", "SIP+D2T", "", "_sip._tcp.example.com."),
            ),
            (
                "example.com NS ns1.example.com",
                "example.com.",
                60,
                RData::NS(NS(name("ns1.example.com."))),
            ),
            (
                "5.0.0.10.in-addr.arpa PTR ep1.example.com.",
                "5.0.0.10.in-addr.arpa.",
                60,
                RData::PTR(PTR(name("ep1.example.com."))),
            ),
            (
                "example.com. SOA ns1.example.com. admin.example.com. 1 3600 600 86400 60",
                "example.com.",
                60,
                RData::SOA(SOA::new(
                    name("ns1.example.com."),
                    name("admin.example.com."),
                    1,
                    3600,
                    600,
                    86400,
                    60,
                )),
            ),
            (
                r#"_sip._udp.example.com.         SRV [10, 60, 5060, "ep1.example.com."]"#,
                "_sip._udp.example.com.",
                60,
                srv(10, 60, 5060, "ep1.example.com."),
            ),
            (
                "_sip._tcp.example.com SRV [10,60,5060,'ep1.example.com']",
                "_sip._tcp.example.com.",
                60,
                srv(10, 60, 5060, "ep1.example.com."),
            ),
            (
                "_sip._tcp.example.com 30 SRV 10 60 5060 ep1.example.com. # plain form",
                "_sip._tcp.example.com.",
                30,
                srv(10, 60, 5060, "ep1.example.com."),
            ),
            (
                r#"example.com TXT "some text""#,
                "example.com.",
                60,
                RData::TXT(TXT::new(vec!["some text".into()])),
            ),
            (
                r#"example.com TXT "a # not a comment" "b \"quoted\"" word"#,
                "example.com.",
                60,
                RData::TXT(TXT::new(vec![
                    "a # not a comment".into(),
                    r#"b "quoted""#.into(),
                    "word".into(),
                ])),
            ),
            (
                "*.example.com A 10.0.0.7",
                "*.example.com.",
                60,
                RData::A(A(Ipv4Addr::new(10, 0, 0, 7))),
            ),
        ];
        for (line, owner, ttl, data) in cases {
            let r = one(line);
            assert_eq!(r.name, name(owner), "{line}");
            assert!(r.name.is_fqdn(), "{line}");
            assert_eq!(r.name.to_ascii(), owner, "lowercase: {line}");
            assert_eq!(r.ttl, ttl, "{line}");
            assert_eq!(r.data, data, "{line}");
        }
    }

    #[test]
    fn the_originals_example() {
        let text = "ep1.example.com  A       10.0.0.5\n\n# UDP SRV records\n\
            _sip._udp.example.com.         SRV [10, 60, 5060, \"ep1.example.com.\"]\n\
            \n   # TCP SRV records\n\
            _sip._tcp.example.com.         SRV [10, 60, 5060, \"ep1.example.com.\"]\r\n";
        let got = parse(text).unwrap();
        let names: Vec<String> = got.iter().map(|r| r.name.to_ascii()).collect();
        assert_eq!(
            names,
            [
                "ep1.example.com.",
                "_sip._udp.example.com.",
                "_sip._tcp.example.com."
            ]
        );
        assert_eq!(got[1].record_type(), RecordType::SRV);
    }

    /// The original's example suite's dns.txt, rendered.
    #[test]
    fn the_original_suites_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/compat/original-tmp-testsuite/normal-dns-0000/dns.txt");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipped: no {}", path.display());
            return;
        };
        let got = parse(&text.replace("{{ ua1.host }}", "10.22.22.101")).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got[0].data, RData::A(A(Ipv4Addr::new(10, 22, 22, 101))));
        assert_eq!(
            got[4].name.to_ascii(),
            "_sips._tcp.example.com.",
            "{:?}",
            got[4]
        );
        assert_eq!(
            got[4].data,
            RData::SRV(SRV::new(10, 60, 5061, name("ep1.example.com.")))
        );
    }

    #[test]
    fn blank_comments_and_duplicates() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(
            parse("\n  \n# only a comment\n\t# another\n").unwrap(),
            vec![]
        );
        let got =
            parse("a.example A 10.0.0.1\na.example. 30 A 10.0.0.1\na.example A 10.0.0.2").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].ttl, 60);
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            ("a.example AXFR x", r#"dns.txt line 1: unknown record type "AXFR""#),
            ("a.example HINFO x y", r#"dns.txt line 1: unknown record type "HINFO""#),
            (
                "\n300.example A 300.1.2.3",
                r#"dns.txt line 2: "300.1.2.3" is not an IPv4 address"#,
            ),
            ("a.example A", "dns.txt line 1: A needs one IPv4 address, got nothing"),
            (
                "a.example A 10.0.0.1 10.0.0.2",
                "dns.txt line 1: A needs one IPv4 address, got 10.0.0.1 10.0.0.2",
            ),
            (
                "a.example AAAA 10.0.0.1",
                r#"dns.txt line 1: "10.0.0.1" is not an IPv6 address"#,
            ),
            ("a.example AAAA", "dns.txt line 1: AAAA needs one IPv6 address, got nothing"),
            (
                "a.example CNAME b.example c.example",
                "dns.txt line 1: CNAME needs one domain name, got b.example c.example",
            ),
            ("a.example NS", "dns.txt line 1: NS needs one domain name, got nothing"),
            (
                "a.example PTR bad..name",
                r#"dns.txt line 1: "bad..name" is not a domain name (an empty label)"#,
            ),
            (
                "a.example MX mail.example",
                "dns.txt line 1: MX needs PREFERENCE EXCHANGE (10 mail.example.com.), got mail.example",
            ),
            (
                "a.example MX x mail.example",
                r#"dns.txt line 1: MX preference "x" is not a number from 0 to 65535"#,
            ),
            (
                r#"a.example NAPTR 100 10 "S" "SIP+D2U" _sip._udp.example.com."#,
                r#"dns.txt line 1: NAPTR needs ORDER PREFERENCE "FLAGS" "SERVICES" "REGEXP" REPLACEMENT (100 10 "S" "SIP+D2U" "" _sip._udp.example.com.), got 100 10 "S" "SIP+D2U" _sip._udp.example.com."#,
            ),
            (
                r#"a.example NAPTR 100 -1 "S" "SIP+D2U" "" _sip._udp.example.com."#,
                r#"dns.txt line 1: NAPTR preference "-1" is not a number from 0 to 65535"#,
            ),
            (
                "a.example SOA ns1.example. admin.example. 1 3600 600 86400",
                "dns.txt line 1: SOA needs MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM, got ns1.example. admin.example. 1 3600 600 86400",
            ),
            (
                "a.example SOA ns1.example. admin.example. 1 3600 600 -5 60",
                r#"dns.txt line 1: SOA expire "-5" is not a number from 0 to 2147483647"#,
            ),
            (
                r#"_sip._udp.example.com. SRV [10, 60, "ep1.example.com."]"#,
                r#"dns.txt line 1: SRV needs [priority, weight, port, "target"], got [10, 60, "ep1.example.com."]"#,
            ),
            (
                "_sip._udp.example.com. SRV 10 60 ep1.example.com. # no port",
                r#"dns.txt line 1: SRV needs [priority, weight, port, "target"], got 10 60 ep1.example.com."#,
            ),
            (
                r#"_sip._udp.example.com. SRV [10, 60, 70000, "ep1.example.com."]"#,
                r#"dns.txt line 1: SRV port "70000" is not a number from 0 to 65535"#,
            ),
            (
                r#"_sip._udp.example.com. SRV [10, 60, 5060, "ep1.example.com."] extra"#,
                r#"dns.txt line 1: SRV: a [...] list must be the whole value, got [10, 60, 5060, "ep1.example.com."] extra"#,
            ),
            (
                r#"_sip._udp.example.com. SRV [10, 60, 5060, "ep1.example.com.""#,
                r#"dns.txt line 1: no closing ] in [10, 60, 5060, "ep1.example.com.""#,
            ),
            (
                "_sip._udp.example.com. SRV [10 60 5060 ep1]",
                "dns.txt line 1: a comma is missing in [10 60 5060 ep1]",
            ),
            (
                "_sip._udp.example.com. SRV [10,, 60, 5060, ep1]",
                "dns.txt line 1: an empty item in [10,, 60, 5060, ep1]",
            ),
            (
                r#"_sip._udp.example.com. SRV [10, 60, 5060, "ep1]"#,
                r#"dns.txt line 1: unterminated quoted string: "ep1]"#,
            ),
            ("a.example TXT", r#"dns.txt line 1: TXT needs one or more "strings", got nothing"#),
            (
                r#"a.example TXT "unterminated"#,
                r#"dns.txt line 1: unterminated quoted string: "unterminated"#,
            ),
            ("a.example", "dns.txt line 1: expected NAME [TTL] [IN] TYPE VALUE, got a.example"),
            (
                "a.example 60 IN",
                "dns.txt line 1: expected NAME [TTL] [IN] TYPE VALUE, got a.example 60 IN",
            ),
            (
                r#""quoted.name" A 10.0.0.1"#,
                r#"dns.txt line 1: expected NAME [TTL] [IN] TYPE VALUE, got "quoted.name" A 10.0.0.1"#,
            ),
            (
                "a.example 99999999999 A 10.0.0.1",
                r#"dns.txt line 1: TTL "99999999999" is not a number from 0 to 4294967295"#,
            ),
            ("a.example CH A 10.0.0.1", "dns.txt line 1: class CH is not supported: only IN"),
            (
                "@ A 10.0.0.1",
                r#"dns.txt line 1: "@" is not a domain name (dns.txt has no origin: write the whole name)"#,
            ),
            (
                "bad_name!.example A 10.0.0.1",
                r#"dns.txt line 1: "bad_name!.example" is not a domain name (Malformed label: bad_name!)"#,
            ),
            (
                "a.example CNAME b.example\na.example A 10.0.0.1",
                "dns.txt line 2: a.example. has a CNAME, so it can have no other record (line 1)",
            ),
            (
                "a.example A 10.0.0.1\n\na.example CNAME b.example",
                "dns.txt line 3: a.example. has a CNAME, so it can have no other record (line 1)",
            ),
            (
                "a.example CNAME b.example\na.example CNAME c.example",
                "dns.txt line 2: a.example. has a CNAME, so it can have no other record (line 1)",
            ),
        ];
        for (text, want) in cases {
            let got = parse(text).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), Some(*want), "{text:?}");
        }
        let long = format!("a.example TXT {}", "x".repeat(256));
        let err = parse(&long).unwrap_err().to_string();
        assert!(
            err.starts_with("dns.txt line 1: a string of 256 bytes is too long (255 at most)"),
            "{err}"
        );
        let long_label = format!("{}.example A 10.0.0.1", "x".repeat(64));
        let err = parse(&long_label).unwrap_err().to_string();
        assert!(err.contains("is not a domain name"), "{err}");
    }

    #[test]
    fn parse_file_none_some_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(parse_file(dir.path()), Ok(None));
        std::fs::write(dir.path().join(FILE_NAME), "ep1.example.com A 10.0.0.5\n").unwrap();
        let got = parse_file(dir.path()).unwrap().unwrap();
        assert_eq!(got.len(), 1);
        std::fs::write(
            dir.path().join(FILE_NAME),
            "# ok\nep1.example.com SRV 1 2 3\n",
        )
        .unwrap();
        assert_eq!(
            parse_file(dir.path()),
            Err(
                r#"dns.txt line 2: SRV needs [priority, weight, port, "target"], got 1 2 3"#.into()
            )
        );
        std::fs::write(dir.path().join(FILE_NAME), b"\xff\xfe").unwrap();
        let err = parse_file(dir.path()).unwrap_err();
        assert!(
            err.starts_with("read ") && err.contains("dns.txt: "),
            "{err}"
        );
    }
}

/// Lends [`parse_file`] to the runtime, which parses each run's rendered `dns.txt` in pre-run.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZoneFiles;

impl sipplauncher_actors::core::plan::Zone for ZoneFiles {
    fn records(&self, run_folder: &Path) -> Result<Option<Vec<Record>>, String> {
        parse_file(run_folder)
    }
}
