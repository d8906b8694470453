//! `dns.txt` (SPEC §2, §9): a test's zone lines, parsed into the DNS records that the embedded
//! DNS server serves while the test runs.
//!
//! One record a line: `NAME [TTL] [IN] TYPE VALUE`, the original's `NAME TYPE VALUE` with an
//! optional TTL and class. `#` starts a comment (outside quotes and lists); blank lines are
//! ignored. Names get the final dot if they lack it and are lowercased. The types are the
//! original's: A, AAAA, CAA, CNAME, DNSKEY, MX, NAPTR, NS, PTR, RRSIG, SOA, SPF (served as TXT,
//! as the original did), SRV, TXT. VALUE takes every form the original took (it handed
//! `eval()` of a `[...]` value, else the rest of the line as one argument, to dnslib's record
//! class), and the zone-file form too:
//! - `[...]`: a Python literal list (strings, `b"bytes"`, integers, nested lists and tuples,
//!   `QTYPE.A`), its items being the arguments of dnslib's class: `SRV [10, 60, 5060,
//!   "ep1."]`, `SOA ["ns1.", "admin.", [1, 2, 3, 4, 5]]`, `MX ["mail.", 20]`, `TXT [["a",
//!   "b"]]`, `A [[10, 0, 0, 5]]`;
//! - the rest of the line as one argument: `A 10.0.0.5`, `CNAME ep1.example.com.`, `MX
//!   mail.example.com.` (preference 10), `TXT some text` (one string);
//! - the zone-file form (RFC 1035 presentation): `MX 10 mail.`, `SRV 10 60 5060 ep1.`, `TXT
//!   "a" "b"`, `SOA ns1. admin. 1 3600 600 86400 60`, `CAA 0 issue "ca.example"`, `DNSKEY 257 3
//!   8 <base64>`, `RRSIG A 8 3 300 20300101000000 20240101000000 1234 example.com. <base64>`.
//!
//! Parsing is linear in the lines (identical records are found by hashing).

use std::collections::HashMap;
use std::fmt::Display;
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::str::FromStr;

use base64::Engine;
use hickory_proto::rr::rdata::{A, AAAA, CAA, CNAME, MX, NAPTR, NS, NULL, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// The file's name in a test (and run) folder.
pub const FILE_NAME: &str = "dns.txt";

/// The TTL of a record whose line gives none, in seconds: the original's (dnslib's example
/// server): 300, and a day for NS and SOA. Not 0: a DUT that caches may take a record of TTL 0
/// as expired at once (Kamailio does: "478 Unresolvable destination").
pub const DEFAULT_TTL: u32 = 300;
/// The TTL of NS and SOA records whose line gives none.
pub const DEFAULT_TTL_NS_SOA: u32 = 86400;

/// The record types a `dns.txt` may hold (the original's).
pub const TYPES: [&str; 14] = [
    "A", "AAAA", "CAA", "CNAME", "DNSKEY", "MX", "NAPTR", "NS", "PTR", "RRSIG", "SOA", "SPF",
    "SRV", "TXT",
];

/// The SOA times the original meant to give an SOA of two names (`["ns1.", "admin."]`):
/// refresh, retry, expire, minimum; the serial is the time of parsing.
const SOA_DEFAULT_TIMES: (i32, i32, i32, u32) = (3600, 3600 * 3, 3600 * 24, 3600);

/// MX preference when only the exchange is given (dnslib's default).
const MX_DEFAULT_PREFERENCE: u16 = 10;

/// A line of `dns.txt` that is not a record: which line (from 1) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dns.txt line {line}: {problem}")]
pub struct ZoneError {
    pub line: usize,
    pub problem: String,
}

/// Parses the whole text of a `dns.txt`: its records in the order of the lines, identical
/// records once. Linear in the lines: records and names are looked up by hash.
pub fn parse(text: &str) -> Result<Vec<Record>, ZoneError> {
    parse_until(text, &|| false)
}

/// How many lines are read between two looks at `cancelled` (a look is one read of a flag;
/// 256 lines take ~20 ms in a debug build, well under 1 ms in release).
const LINES_BETWEEN_LOOKS: usize = 256;

/// [`parse`], giving up (an error naming the line reached) once `cancelled()` says so: a
/// run interrupted while it reads a file of 200,000 records does not wait for the end.
pub fn parse_until(text: &str, cancelled: &dyn Fn() -> bool) -> Result<Vec<Record>, ZoneError> {
    // A record per line at most.
    let lines = memchr_count(text.as_bytes(), b'\n') + 1;
    let mut records: Vec<Record> = Vec::with_capacity(lines);
    // Record equality (RFC 2136) is owner (without case), class and data, not the TTL: the
    // first line's TTL wins. Each record's hash points to the first record that had it.
    let hashes = std::collections::hash_map::RandomState::new();
    let mut seen: HashMap<u64, usize> = HashMap::with_capacity(lines);
    // Per owner name, the line of its CNAME and of its first other record (RFC 1034 §3.6.2:
    // a name with a CNAME has no other data).
    let mut owners: HashMap<Name, Owner> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let err = |problem: String| ZoneError { line: n, problem };
        if i % LINES_BETWEEN_LOOKS == 0 && i > 0 && cancelled() {
            return Err(err("interrupted while reading dns.txt".into()));
        }
        let Some(record) = parse_line(line).map_err(err)? else {
            continue;
        };
        let hash = hashes.hash_one((&record.name, &record.data));
        let repeat = match seen.get(&hash) {
            Some(&at) if records[at] == record => true,
            // Another record with the same hash (as good as never): look at them all.
            Some(_) => records.contains(&record),
            None => false,
        };
        if repeat {
            continue;
        }
        let is_cname = record.record_type() == RecordType::CNAME;
        let owner = match owners.get_mut(&record.name) {
            Some(o) => o,
            None => owners.entry(record.name.clone()).or_default(),
        };
        let clash = if is_cname {
            owner.cname.or(owner.other)
        } else {
            owner.cname
        };
        if let Some(other) = clash {
            return Err(err(format!(
                "{} has a CNAME, so it can have no other record (line {other})",
                record.name
            )));
        }
        if is_cname {
            owner.cname = Some(n);
        } else {
            owner.other.get_or_insert(n);
        }
        seen.entry(hash).or_insert(records.len());
        records.push(record);
    }
    Ok(records)
}

/// The lines of an owner name's CNAME and of its first other record.
#[derive(Debug, Default)]
struct Owner {
    cname: Option<usize>,
    other: Option<usize>,
}

/// How many times `byte` occurs in `bytes`.
fn memchr_count(bytes: &[u8], byte: u8) -> usize {
    bytes.iter().filter(|&&b| b == byte).count()
}

/// The records of the `dns.txt` in `run_folder` (rendered already); `None` when there is no
/// such file. An error is one line naming the file and, for a bad line, the line.
pub fn parse_file(run_folder: &Path) -> Result<Option<Vec<Record>>, String> {
    parse_file_until(run_folder, &|| false)
}

/// [`parse_file`], giving up once `cancelled()` says so (see [`parse_until`]).
pub fn parse_file_until(
    run_folder: &Path,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<Vec<Record>>, String> {
    let path = run_folder.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("read {}: {e}", path.display())),
    };
    parse_until(&text, cancelled)
        .map(Some)
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Lines.

/// One item of a plain (zone-file) value: a bare word or a `"quoted string"`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word {
    text: String,
    quoted: bool,
}

/// A record's value as written.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// `[...]`: the original's arguments to dnslib's record class, and the list as written.
    List { items: Vec<Py>, raw: String },
    /// Anything else: the words of the rest of the line, and that rest as written.
    Plain { words: Vec<Word>, raw: String },
}

/// Reads words (bare or quoted) from `line` at `at`; stops at `#` outside quotes. The offset
/// where the text ends (the comment or the line's end) comes back too.
fn words(line: &str, mut at: usize) -> Result<(Vec<(usize, Word)>, usize), String> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    while at < bytes.len() {
        let c = bytes[at];
        if c.is_ascii_whitespace() {
            at += 1;
        } else if c == b'#' {
            return Ok((out, at));
        } else if c == b'"' {
            let (text, next) = zone_quoted(line, at)?;
            out.push((at, Word { text, quoted: true }));
            at = next;
        } else {
            let start = at;
            while at < bytes.len()
                && !bytes[at].is_ascii_whitespace()
                && !b"#\"".contains(&bytes[at])
            {
                at += 1;
            }
            out.push((
                start,
                Word {
                    text: line[start..at].to_string(),
                    quoted: false,
                },
            ));
        }
    }
    Ok((out, line.len()))
}

/// A zone-file quoted string at `start`: `\x` is `x`, `\DDD` the byte DDD. The offset after
/// the closing quote comes back too.
fn zone_quoted(line: &str, start: usize) -> Result<(String, usize), String> {
    let mut chars = line[start + 1..].char_indices().peekable();
    let mut out = String::new();
    while let Some((j, ch)) = chars.next() {
        match ch {
            '"' => return Ok((out, start + 1 + j + 1)),
            '\\' => {
                let digits: String = line[start + 1 + j + 1..]
                    .chars()
                    .take(3)
                    .take_while(char::is_ascii_digit)
                    .collect();
                if digits.len() == 3 {
                    let byte: u8 = digits.parse().map_err(|_| {
                        format!("\\{digits} is no byte in {}", line[start..].trim_end())
                    })?;
                    out.push(byte as char);
                    for _ in 0..3 {
                        chars.next();
                    }
                } else if let Some((_, esc)) = chars.next() {
                    out.push(esc);
                }
            }
            _ => out.push(ch),
        }
    }
    Err(format!(
        "unterminated quoted string: {}",
        line[start..].trim_end()
    ))
}

/// The next word of the line's head at `at`: `None` at the end or a comment.
fn head_word(line: &str, at: usize) -> Option<(&str, usize)> {
    let rest = &line[at..];
    let start = at + rest.len() - rest.trim_start().len();
    let word_len = line[start..]
        .find(|c: char| c.is_ascii_whitespace() || c == '#')
        .unwrap_or(line.len() - start);
    if word_len == 0 {
        return None;
    }
    Some((&line[start..start + word_len], start + word_len))
}

/// One line: `None` for a blank or comment line.
fn parse_line(line: &str) -> Result<Option<Record>, String> {
    let Some((first, mut at)) = head_word(line, 0) else {
        return Ok(None);
    };
    let shape = || {
        let end = line.find('#').unwrap_or(line.len());
        format!(
            "expected NAME [TTL] [IN] TYPE VALUE, got {}",
            line[..end].trim()
        )
    };
    if first.starts_with('"') {
        return Err(shape());
    }
    let name = domain_name(first)?;
    let mut ttl = None;
    let mut class = false;
    let rtype = loop {
        let Some((w, next)) = head_word(line, at) else {
            return Err(shape());
        };
        at = next;
        if w.bytes().all(|b| b.is_ascii_digit()) && ttl.is_none() {
            ttl = Some(number::<u32>("TTL", w)?);
        } else if w.eq_ignore_ascii_case("IN") && !class {
            class = true;
        } else if ["CH", "CS", "HS"].iter().any(|c| w.eq_ignore_ascii_case(c)) {
            return Err(format!("class {w} is not supported: only IN"));
        } else if w.starts_with(['"', '[']) {
            return Err(shape());
        } else {
            break w.to_ascii_uppercase();
        }
    };
    let value = value(line, at)?;
    let data = rdata(&rtype, &value)?;
    let ttl = ttl.unwrap_or(match data {
        RData::NS(_) | RData::SOA(_) => DEFAULT_TTL_NS_SOA,
        _ => DEFAULT_TTL,
    });
    Ok(Some(Record::from_rdata(name, ttl, data)))
}

/// The value after the type, at `at`.
fn value(line: &str, at: usize) -> Result<Value, String> {
    let start = at + line[at..].len() - line[at..].trim_start().len();
    if line[start..].starts_with('[') {
        let mut p = PyParser::new(line, start);
        let items = p.list()?;
        let raw = line[start..p.at].to_string();
        p.skip_ws();
        match p.peek() {
            None | Some(b'#') => Ok(Value::List { items, raw }),
            Some(_) => Err(format!(
                "a [...] list must be the whole value, got {}",
                line[start..].trim_end()
            )),
        }
    } else {
        let (found, end) = words(line, start)?;
        Ok(Value::Plain {
            words: found.into_iter().map(|(_, w)| w).collect(),
            raw: line[start..end].trim().to_string(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The `[...]` form: Python literals, as the original's eval() read them.

/// A Python literal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Py {
    Int(i128),
    Str(String),
    Bytes(Vec<u8>),
    /// A list or a tuple.
    Seq(Vec<Py>),
    /// `QTYPE.A` (the original's eval() saw dnslib's QTYPE): a record type.
    QType(String),
}

impl Display for Py {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Py::Int(n) => write!(f, "{n}"),
            Py::Str(s) => write!(f, "{s:?}"),
            Py::Bytes(b) => write!(f, "b{:?}", String::from_utf8_lossy(b)),
            Py::Seq(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Py::QType(t) => write!(f, "QTYPE.{t}"),
        }
    }
}

/// Reads Python literals from a line.
struct PyParser<'a> {
    line: &'a str,
    at: usize,
    /// Where the list began, to quote it in errors.
    start: usize,
}

impl<'a> PyParser<'a> {
    fn new(line: &'a str, start: usize) -> Self {
        PyParser {
            line,
            at: start,
            start,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn written(&self) -> &str {
        self.line[self.start..].trim_end()
    }

    fn fail<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} in {}", self.written()))
    }

    /// The `[...]` at the cursor.
    fn list(&mut self) -> Result<Vec<Py>, String> {
        match self.seq()? {
            Py::Seq(items) => Ok(items),
            _ => self.fail("not a list"),
        }
    }

    /// `[a, b]` or `(a, b)` (a `(x)` without a comma is `x`, as in Python).
    fn seq(&mut self) -> Result<Py, String> {
        let close = match self.peek() {
            Some(b'[') => b']',
            Some(b'(') => b')',
            _ => return self.fail("a list is expected"),
        };
        self.at += 1;
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some(b'#') => return self.fail(&format!("no closing {}", close as char)),
                Some(c) if c == close => {
                    self.at += 1;
                    break;
                }
                Some(b',') => return self.fail("an empty item"),
                Some(_) => {}
            }
            items.push(self.item()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    trailing_comma = true;
                }
                Some(c) if c == close => {
                    trailing_comma = false;
                }
                None | Some(b'#') => return self.fail(&format!("no closing {}", close as char)),
                Some(_) => return self.fail("a comma is missing"),
            }
        }
        if close == b')' && items.len() == 1 && !trailing_comma {
            return Ok(items.remove(0));
        }
        Ok(Py::Seq(items))
    }

    fn item(&mut self) -> Result<Py, String> {
        let rest = &self.line[self.at..];
        let b = rest.as_bytes();
        match b[0] {
            b'[' | b'(' => self.seq(),
            b'"' | b'\'' => self.string(false, false).map(Py::Str),
            b'0'..=b'9' | b'-' | b'+' => self.int(),
            _ => {
                // String prefixes: b, r, u, br, rb (any case).
                let prefix: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect::<String>()
                    .to_ascii_lowercase();
                let quote_follows = matches!(b.get(prefix.len()), Some(b'"' | b'\''));
                if quote_follows && ["b", "r", "u", "br", "rb"].contains(&prefix.as_str()) {
                    self.at += prefix.len();
                    let bytes = prefix.contains('b');
                    let s = self.string(bytes, prefix.contains('r'))?;
                    return Ok(if bytes {
                        Py::Bytes(s.chars().map(|c| c as u32 as u8).collect())
                    } else {
                        Py::Str(s)
                    });
                }
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                    .collect();
                if let Some(t) = word.strip_prefix("QTYPE.").filter(|t| !t.is_empty()) {
                    self.at += word.len();
                    return Ok(Py::QType(t.to_string()));
                }
                let shown = if word.is_empty() {
                    rest.chars().take(1).collect()
                } else {
                    word
                };
                self.fail(&format!(
                    "{shown} is not a literal (strings, b\"bytes\", integers, lists, QTYPE.X)"
                ))
            }
        }
    }

    /// A quoted string (the cursor on its quote). In `bytes`, each char is one byte (escapes
    /// `\xHH` give any byte; other characters must be ASCII).
    fn string(&mut self, bytes: bool, raw: bool) -> Result<String, String> {
        let quote = self.line.as_bytes()[self.at] as char;
        let body_start = self.at + 1;
        let mut chars = self.line[body_start..].char_indices();
        let mut out = String::new();
        while let Some((j, ch)) = chars.next() {
            if ch == quote {
                self.at = body_start + j + 1;
                return Ok(out);
            }
            if bytes && !ch.is_ascii() {
                return self.fail("bytes can only hold ASCII characters");
            }
            if ch != '\\' || raw {
                out.push(ch);
                if ch == '\\' {
                    // A raw string still cannot end with its quote escaped.
                    if let Some((_, next)) = chars.next() {
                        out.push(next);
                    }
                }
                continue;
            }
            let Some((_, esc)) = chars.next() else { break };
            let mut hex = |n: usize| -> Option<u32> {
                let digits: String = (0..n)
                    .filter_map(|_| chars.next().map(|(_, c)| c))
                    .collect();
                (digits.len() == n)
                    .then(|| u32::from_str_radix(&digits, 16).ok())
                    .flatten()
            };
            match esc {
                '\\' | '\'' | '"' => out.push(esc),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'v' => out.push('\x0b'),
                'x' => match hex(2).and_then(char::from_u32) {
                    Some(c) => out.push(c),
                    None => return self.fail("a \\x escape needs two hex digits"),
                },
                'u' | 'U' if !bytes => {
                    let n = if esc == 'u' { 4 } else { 8 };
                    match hex(n).and_then(char::from_u32) {
                        Some(c) => out.push(c),
                        None => {
                            return self.fail(&format!("a \\{esc} escape needs {n} hex digits"))
                        }
                    }
                }
                '0'..='7' => {
                    let mut v = esc.to_digit(8).unwrap_or(0);
                    // Up to two more octal digits.
                    for _ in 0..2 {
                        match chars.clone().next() {
                            Some((_, c)) if c.is_digit(8) => {
                                v = v * 8 + c.to_digit(8).unwrap_or(0);
                                chars.next();
                            }
                            _ => break,
                        }
                    }
                    match char::from_u32(v) {
                        Some(c) if !bytes || v < 256 => out.push(c),
                        _ => return self.fail("an octal escape out of range"),
                    }
                }
                // Python keeps an unknown escape as written.
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
        self.fail("an unterminated string")
    }

    /// An integer: decimal, `0x`, `0o`, `0b`, with `_` between digits.
    fn int(&mut self) -> Result<Py, String> {
        let rest = &self.line[self.at..];
        let len = rest
            .char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphanumeric() || c == '_' || (i == 0 && (c == '-' || c == '+')))
            })
            .map_or(rest.len(), |(i, _)| i);
        let text = &rest[..len];
        let (neg, body) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let clean = body.replace('_', "");
        let lower = clean.to_ascii_lowercase();
        let parsed = if let Some(h) = lower.strip_prefix("0x") {
            i128::from_str_radix(h, 16).ok()
        } else if let Some(o) = lower.strip_prefix("0o") {
            i128::from_str_radix(o, 8).ok()
        } else if let Some(b) = lower.strip_prefix("0b") {
            i128::from_str_radix(b, 2).ok()
        } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().any(|b| b != b'0') {
            // Python 3 has no leading zeros in decimals.
            None
        } else if !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_digit()) {
            lower.parse().ok()
        } else {
            None
        };
        let Some(n) = parsed.filter(|_| !body.starts_with('_') && !body.ends_with('_')) else {
            return self.fail(&format!("{text} is not an integer"));
        };
        self.at += len;
        Ok(Py::Int(if neg { -n } else { n }))
    }
}

// ---------------------------------------------------------------------------------------------
// Record data.

/// The data of a record of type `rtype` from its value.
fn rdata(rtype: &str, value: &Value) -> Result<RData, String> {
    let (args, raw, plain): (Vec<Py>, &str, Option<&[Word]>) = match value {
        Value::List { items, raw } => (items.clone(), raw, None),
        Value::Plain { words, raw } => (
            words.iter().map(|w| Py::Str(w.text.clone())).collect(),
            raw,
            Some(words.as_slice()),
        ),
    };
    let got = if raw.is_empty() {
        "got nothing".to_string()
    } else {
        format!("got {raw}")
    };
    let shape = |want: &str| Err(format!("{rtype} needs {want}, {got}"));
    Ok(match rtype {
        "A" => match args.as_slice() {
            [Py::Seq(octets)] => {
                let o = fixed::<4>(octets, "IPv4 address", raw)?;
                RData::A(A(Ipv4Addr::from(o)))
            }
            [one] => RData::A(A(ipv4(&text("IPv4 address", one)?)?)),
            _ => return shape("one IPv4 address"),
        },
        "AAAA" => match args.as_slice() {
            [Py::Seq(octets)] => {
                let o = fixed::<16>(octets, "IPv6 address", raw)?;
                RData::AAAA(AAAA(Ipv6Addr::from(o)))
            }
            [one] => {
                let s = text("IPv6 address", one)?;
                let ip = s
                    .parse::<Ipv6Addr>()
                    .map_err(|_| format!("{s:?} is not an IPv6 address"))?;
                RData::AAAA(AAAA(ip))
            }
            _ => return shape("one IPv6 address"),
        },
        "CNAME" | "NS" | "PTR" => {
            let n = match (plain, args.as_slice()) {
                (_, [n]) => domain_name(&text("domain name", n)?)?,
                // dnslib's default: `CNAME()` names the root.
                (None, []) => Name::root(),
                _ => return shape("one domain name"),
            };
            match rtype {
                "CNAME" => RData::CNAME(CNAME(n)),
                "NS" => RData::NS(NS(n)),
                _ => RData::PTR(PTR(n)),
            }
        }
        "MX" => {
            let root = Py::Str(".".into());
            let (pref, exchange) = match args.as_slice() {
                // dnslib's defaults: `MX()` is the root, preference 10.
                [] if plain.is_none() => (None, &root),
                [exchange] => (None, exchange),
                // The zone file's order, or a list in it.
                [pref, exchange] if is_number(pref) => (Some(pref), exchange),
                // dnslib's order: MX(label, preference).
                [exchange, pref] => (Some(pref), exchange),
                _ => return shape("EXCHANGE, or PREFERENCE EXCHANGE (10 mail.example.com.)"),
            };
            let pref = match pref {
                Some(p) => number_of("MX preference", p)?,
                None => MX_DEFAULT_PREFERENCE,
            };
            RData::MX(MX::new(pref, domain_name(&text("MX exchange", exchange)?)?))
        }
        "NAPTR" => match args.as_slice() {
            [order, pref, flags, services, regexp, rest @ ..] if rest.len() <= 1 => {
                let replacement = match rest {
                    [r] => domain_name(&text("NAPTR replacement", r)?)?,
                    _ => Name::root(),
                };
                RData::NAPTR(NAPTR::new(
                    number_of("NAPTR order", order)?,
                    number_of("NAPTR preference", pref)?,
                    character_string(&bytes_of("NAPTR flags", flags)?)?,
                    character_string(&bytes_of("NAPTR services", services)?)?,
                    character_string(&bytes_of("NAPTR regexp", regexp)?)?,
                    replacement,
                ))
            }
            _ => {
                return shape(
                    r#"ORDER PREFERENCE "FLAGS" "SERVICES" "REGEXP" REPLACEMENT (100 10 "S" "SIP+D2U" "" _sip._udp.example.com.)"#,
                )
            }
        },
        "SOA" => {
            let root = Py::Str(".".into());
            // dnslib's defaults for what a list leaves out (`SOA(mname)`, or the rest of the
            // line as its one argument): the root and five zeros.
            let zeros = || vec![Py::Int(0); 5];
            let (mname, rname, times): (&Py, &Py, Vec<Py>) = match args.as_slice() {
                [m, r, Py::Seq(times)] => (m, r, times.clone()),
                [m, r] => (m, r, Vec::new()),
                [m, r, times @ ..] if times.len() == 5 => (m, r, times.to_vec()),
                [m] => (m, &root, zeros()),
                [] if plain.is_none() => (&root, &root, zeros()),
                _ => {
                    return shape(
                        r#"["MNAME", "RNAME", [SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM]] or MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM"#,
                    )
                }
            };
            let mname = domain_name(&text("SOA mname", mname)?)?;
            let rname = domain_name(&text("SOA rname", rname)?)?;
            let soa = match times.as_slice() {
                [] => {
                    let (refresh, retry, expire, minimum) = SOA_DEFAULT_TIMES;
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs() as u32)
                        .unwrap_or(1);
                    SOA::new(mname, rname, now, refresh, retry, expire, minimum)
                }
                [serial, refresh, retry, expire, minimum] => SOA::new(
                    mname,
                    rname,
                    number_of("SOA serial", serial)?,
                    number_of("SOA refresh", refresh)?,
                    number_of("SOA retry", retry)?,
                    number_of("SOA expire", expire)?,
                    number_of("SOA minimum", minimum)?,
                ),
                _ => return shape("five times: [SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM]"),
            };
            RData::SOA(soa)
        }
        "SRV" => {
            // A list may leave out the last ones: dnslib's defaults are 0 and the root.
            let (zero, root) = (Py::Int(0), Py::Str(".".into()));
            let given = args.len();
            // (A name among fewer than four is a left-out number, not a defaulted target.)
            let short = plain.is_none() && given < 4 && args.iter().all(is_number);
            if !(given == 4 || short) {
                return shape(r#"[priority, weight, port, "target"]"#);
            }
            let arg = |i: usize, default| args.get(i).unwrap_or(default);
            RData::SRV(SRV::new(
                number_of("SRV priority", arg(0, &zero))?,
                number_of("SRV weight", arg(1, &zero))?,
                number_of("SRV port", arg(2, &zero))?,
                domain_name(&text("SRV target", arg(3, &root))?)?,
            ))
        }
        "TXT" | "SPF" => {
            let strings: Vec<Vec<u8>> = match (plain, args.as_slice()) {
                (_, []) => return shape(r#"one or more "strings""#),
                // The original: the rest of the line is one string.
                (Some(words), _) if !words.iter().any(|w| w.quoted) => {
                    vec![raw.as_bytes().to_vec()]
                }
                (Some(words), _) => words.iter().map(|w| w.text.as_bytes().to_vec()).collect(),
                (None, [Py::Seq(items)]) => items
                    .iter()
                    .map(|i| bytes_of("TXT string", i))
                    .collect::<Result<_, _>>()?,
                (None, items) => items
                    .iter()
                    .map(|i| bytes_of("TXT string", i))
                    .collect::<Result<_, _>>()?,
            };
            // What the original meant for a long string: pieces of 255 bytes (dnslib's docs).
            let pieces: Vec<&[u8]> = strings
                .iter()
                .flat_map(|s| {
                    if s.is_empty() {
                        vec![&s[..]]
                    } else {
                        s.chunks(255).collect()
                    }
                })
                .collect();
            RData::TXT(TXT::from_bytes(pieces))
        }
        "CAA" => match args.as_slice() {
            [flags, tag, value] => {
                let flags: u8 = number_of("CAA flags", flags)?;
                let tag = text("CAA tag", tag)?;
                if tag.is_empty()
                    || tag.len() > 15
                    || !tag.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(format!(
                        "CAA tag {tag:?} is not 1 to 15 letters and digits (issue, issuewild, iodef)"
                    ));
                }
                let mut caa = CAA::new_issue(false, None, Vec::new());
                caa.issuer_critical = flags & 0x80 != 0;
                caa.reserved_flags = flags & 0x7f;
                caa.tag = tag;
                caa.value = bytes_of("CAA value", value)?;
                RData::CAA(caa)
            }
            _ => return shape(r#"FLAGS TAG "VALUE" ([0, "issue", "ca.example.net"])"#),
        },
        "DNSKEY" => {
            let (head, key) = match (plain, args.as_slice()) {
                (None, [f, p, a, key]) => (vec![f, p, a], bytes_of("DNSKEY key", key)?),
                (Some(_), [f, p, a, key @ ..]) if !key.is_empty() => {
                    (vec![f, p, a], base64_of("DNSKEY key", key)?)
                }
                _ => return shape("FLAGS PROTOCOL ALGORITHM KEY (257 3 8 AwEAAa...)"),
            };
            let mut wire = Vec::with_capacity(4 + key.len());
            wire.extend(number_of::<u16>("DNSKEY flags", head[0])?.to_be_bytes());
            wire.push(number_of::<u8>("DNSKEY protocol", head[1])?);
            wire.push(number_of::<u8>("DNSKEY algorithm", head[2])?);
            wire.extend(key);
            unknown(RecordType::DNSKEY, wire)?
        }
        "RRSIG" => {
            let want = "COVERED ALGORITHM LABELS ORIGINAL-TTL EXPIRATION INCEPTION KEY-TAG SIGNER SIGNATURE";
            let (head, sig) = match (plain, args.as_slice()) {
                (None, [h @ .., sig]) if h.len() == 8 => {
                    (h.to_vec(), bytes_of("RRSIG signature", sig)?)
                }
                (Some(_), [h @ .., _]) if h.len() >= 8 => {
                    (h[..8].to_vec(), base64_of("RRSIG signature", &args[8..])?)
                }
                _ => return shape(want),
            };
            let covered: u16 = match &head[0] {
                Py::Int(_) => number_of("RRSIG type covered", &head[0])?,
                Py::QType(t) | Py::Str(t) => u16::from(
                    RecordType::from_str(&t.to_ascii_uppercase())
                        .map_err(|_| format!("RRSIG type covered {t:?} is not a record type"))?,
                ),
                other => return Err(format!("RRSIG type covered {other} is not a record type")),
            };
            let mut wire = Vec::with_capacity(64 + sig.len());
            wire.extend(covered.to_be_bytes());
            wire.push(number_of::<u8>("RRSIG algorithm", &head[1])?);
            wire.push(number_of::<u8>("RRSIG labels", &head[2])?);
            wire.extend(number_of::<u32>("RRSIG original TTL", &head[3])?.to_be_bytes());
            wire.extend(signature_time("RRSIG expiration", &head[4])?.to_be_bytes());
            wire.extend(signature_time("RRSIG inception", &head[5])?.to_be_bytes());
            wire.extend(number_of::<u16>("RRSIG key tag", &head[6])?.to_be_bytes());
            let signer = domain_name(&text("RRSIG signer", &head[7])?)?;
            for label in signer.iter() {
                wire.push(label.len() as u8);
                wire.extend(label.iter().map(u8::to_ascii_lowercase));
            }
            wire.push(0);
            wire.extend(sig);
            unknown(RecordType::RRSIG, wire)?
        }
        _ => {
            return Err(format!(
                "unknown record type {rtype:?} (one of {})",
                TYPES.join(" ")
            ))
        }
    })
}

/// A record type hickory serves as opaque data (no DNSSEC support built in): its wire form.
fn unknown(code: RecordType, wire: Vec<u8>) -> Result<RData, String> {
    if wire.len() > u16::MAX as usize {
        return Err(format!("{code} data of {} bytes is too long", wire.len()));
    }
    Ok(RData::Unknown {
        code,
        rdata: NULL::with(wire),
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

/// An IPv4 address as dnslib read one: four decimal numbers, a final dot allowed.
fn ipv4(s: &str) -> Result<Ipv4Addr, String> {
    let bad = || format!("{s:?} is not an IPv4 address");
    let parts: Vec<&str> = s.trim_end_matches('.').split('.').collect();
    let [a, b, c, d] = parts.as_slice() else {
        return Err(bad());
    };
    let octet = |p: &str| -> Result<u8, String> {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse().map_err(|_| bad())
    };
    Ok(Ipv4Addr::new(octet(a)?, octet(b)?, octet(c)?, octet(d)?))
}

/// `N` numbers of 0 to 255 (an address as a list of its bytes).
fn fixed<const N: usize>(items: &[Py], what: &str, raw: &str) -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    if items.len() != N {
        return Err(format!("an {what} as a list has {N} numbers, got {raw}"));
    }
    for (o, item) in out.iter_mut().zip(items) {
        *o = number_of(what, item)?;
    }
    Ok(out)
}

fn is_number(p: &Py) -> bool {
    match p {
        Py::Int(_) => true,
        Py::Str(s) => !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// A number field: an integer, or (the zone-file form) a string of decimal digits, in the
/// range of `T`.
fn number_of<T: TryFrom<u64> + Bounded>(what: &str, p: &Py) -> Result<T, String> {
    match p {
        Py::Int(n) => u64::try_from(*n)
            .ok()
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| format!("{what} {n} is not a number from 0 to {}", T::MAX)),
        Py::Str(s) => number(what, s),
        other => Err(format!("{what} {other} is not a number")),
    }
}

/// A string field: a string, or bytes that are UTF-8.
fn text(what: &str, p: &Py) -> Result<String, String> {
    match p {
        Py::Str(s) => Ok(s.clone()),
        Py::Bytes(b) => String::from_utf8(b.clone()).map_err(|_| format!("{what} {p} is not text")),
        other => Err(format!("{what} {other} is not a string")),
    }
}

/// A bytes field: bytes, or a string's UTF-8 (as dnslib took a `str` there).
fn bytes_of(what: &str, p: &Py) -> Result<Vec<u8>, String> {
    match p {
        Py::Str(s) => Ok(s.as_bytes().to_vec()),
        Py::Bytes(b) => Ok(b.clone()),
        other => Err(format!("{what} {other} is not a string or bytes")),
    }
}

/// Base64 words of the zone-file form, joined.
fn base64_of(what: &str, words: &[Py]) -> Result<Vec<u8>, String> {
    let mut joined = String::new();
    for w in words {
        joined.push_str(&text(what, w)?);
    }
    base64::engine::general_purpose::STANDARD
        .decode(joined.as_bytes())
        .map_err(|e| format!("{what} is not base64 ({e})"))
}

/// An RRSIG time: seconds since 1970, or `YYYYMMDDHHmmSS` in UTC (RFC 4034 §3.2).
fn signature_time(what: &str, p: &Py) -> Result<u32, String> {
    let s = match p {
        Py::Str(s) if s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()) => s,
        _ => return number_of(what, p),
    };
    let field = |r: std::ops::Range<usize>| s[r].parse::<u16>().unwrap_or(0);
    let bad = || format!("{what} {s:?} is not a time YYYYMMDDHHmmSS");
    let month = time::Month::try_from(field(4..6) as u8).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(field(0..4) as i32, month, field(6..8) as u8)
        .map_err(|_| bad())?;
    let clock = time::Time::from_hms(field(8..10) as u8, field(10..12) as u8, field(12..14) as u8)
        .map_err(|_| bad())?;
    let secs = time::PrimitiveDateTime::new(date, clock)
        .assume_utc()
        .unix_timestamp();
    u32::try_from(secs).map_err(|_| bad())
}

/// A number written in decimal digits only, in the range of `T`.
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

impl Bounded for u8 {
    const MAX: u64 = u8::MAX as u64;
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
fn character_string(s: &[u8]) -> Result<Box<[u8]>, String> {
    if s.len() > 255 {
        return Err(format!(
            "a string of {} bytes is too long (255 at most): {:?}...",
            s.len(),
            String::from_utf8_lossy(&s[..20])
        ));
    }
    Ok(s.into())
}

/// Lends [`parse_file`] to the runtime, which parses each run's rendered `dns.txt` in pre-run.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZoneFiles;

impl sipplauncher_actors::core::plan::Zone for ZoneFiles {
    fn records(
        &self,
        run_folder: &Path,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<Vec<Record>>, String> {
        parse_file_until(run_folder, cancelled)
    }
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

    fn a(ip: [u8; 4]) -> RData {
        RData::A(A(Ipv4Addr::from(ip)))
    }

    fn srv(p: u16, w: u16, port: u16, t: &str) -> RData {
        RData::SRV(SRV::new(p, w, port, name(t)))
    }

    fn mx(p: u16, t: &str) -> RData {
        RData::MX(MX::new(p, name(t)))
    }

    fn naptr(o: u16, p: u16, f: &[u8], s: &[u8], r: &[u8], t: &str) -> RData {
        RData::NAPTR(NAPTR::new(o, p, f.into(), s.into(), r.into(), name(t)))
    }

    fn soa(m: &str, r: &str, t: [u32; 5]) -> RData {
        RData::SOA(SOA::new(
            name(m),
            name(r),
            t[0],
            t[1] as i32,
            t[2] as i32,
            t[3] as i32,
            t[4],
        ))
    }

    fn txt(strings: &[&[u8]]) -> RData {
        RData::TXT(TXT::from_bytes(strings.to_vec()))
    }

    fn caa(flags: u8, tag: &str, value: &[u8]) -> RData {
        let mut c = CAA::new_issue(false, None, Vec::new());
        c.issuer_critical = flags & 0x80 != 0;
        c.reserved_flags = flags & 0x7f;
        c.tag = tag.into();
        c.value = value.to_vec();
        RData::CAA(c)
    }

    fn opaque(code: RecordType, wire: Vec<u8>) -> RData {
        RData::Unknown {
            code,
            rdata: NULL::with(wire),
        }
    }

    fn dnskey(flags: u16, protocol: u8, alg: u8, key: &[u8]) -> RData {
        let mut w = flags.to_be_bytes().to_vec();
        w.extend([protocol, alg]);
        w.extend(key);
        opaque(RecordType::DNSKEY, w)
    }

    /// RRSIG's wire: covered A, algorithm 8, 3 labels, TTL 300, the two times, key tag 1234,
    /// signer example.com., then `sig`.
    fn rrsig(covered: u16, exp: u32, inc: u32, sig: &[u8]) -> RData {
        let mut w = covered.to_be_bytes().to_vec();
        w.extend([8, 3]);
        w.extend(300u32.to_be_bytes());
        w.extend(exp.to_be_bytes());
        w.extend(inc.to_be_bytes());
        w.extend(1234u16.to_be_bytes());
        w.extend(b"\x07example\x03com\x00");
        w.extend(sig);
        opaque(RecordType::RRSIG, w)
    }

    /// Every type the original served, in every form it took (the `[...]` list as dnslib's
    /// arguments, the rest of the line as one argument) and in the zone-file form.
    #[test]
    fn every_type_and_form() {
        // 2030-01-01 and 2024-01-01, 00:00:00 UTC.
        let (exp, inc) = (1_893_456_000u32, 1_704_067_200u32);
        let b64 = "AwEAAQ==";
        let cases: Vec<(&str, RData)> = vec![
            // A
            ("ep1.example.com  A       10.0.0.5", a([10, 0, 0, 5])),
            ("ep1.example.com A 10.0.0.5.", a([10, 0, 0, 5])),
            ("ep1.example.com A 010.000.000.005", a([10, 0, 0, 5])),
            (r#"ep1.example.com A ["10.0.0.5"]"#, a([10, 0, 0, 5])),
            ("ep1.example.com A [[10, 0, 0, 5]]", a([10, 0, 0, 5])),
            ("ep1.example.com A [(10, 0, 0, 5)]", a([10, 0, 0, 5])),
            // AAAA
            (
                "v6.example.com AAAA 2001:db8::5",
                RData::AAAA(AAAA("2001:db8::5".parse().unwrap())),
            ),
            (
                "v6.example.com AAAA ['2001:db8::5']",
                RData::AAAA(AAAA("2001:db8::5".parse().unwrap())),
            ),
            (
                "v6.example.com AAAA [[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]]",
                RData::AAAA(AAAA("2001:db8::5".parse().unwrap())),
            ),
            // CAA: the list; the zone file's form
            (
                r#"example.com CAA [0, "issue", "letsencrypt.org"]"#,
                caa(0, "issue", b"letsencrypt.org"),
            ),
            (
                r#"example.com CAA 128 iodef "mailto:ca@example.com""#,
                caa(128, "iodef", b"mailto:ca@example.com"),
            ),
            // CNAME, NS, PTR
            (
                "sip.example.com CNAME Ep1.example.com",
                RData::CNAME(CNAME(name("ep1.example.com."))),
            ),
            (
                r#"sip.example.com CNAME ["ep1.example.com."]"#,
                RData::CNAME(CNAME(name("ep1.example.com."))),
            ),
            (
                "example.com NS ns1.example.com",
                RData::NS(NS(name("ns1.example.com."))),
            ),
            (
                "example.com NS ['ns1.example.com.']",
                RData::NS(NS(name("ns1.example.com."))),
            ),
            (
                "5.0.0.10.in-addr.arpa PTR ep1.example.com.",
                RData::PTR(PTR(name("ep1.example.com."))),
            ),
            (
                r#"5.0.0.10.in-addr.arpa PTR [b"ep1.example.com."]"#,
                RData::PTR(PTR(name("ep1.example.com."))),
            ),
            // An empty list: dnslib's default, the root.
            ("alias.example.com CNAME []", RData::CNAME(CNAME(Name::root()))),
            // DNSKEY: dnslib's arguments (a str key is its bytes, as dnslib took it); zone file
            (
                r#"example.com DNSKEY [257, 3, 8, b"\x03\x01\x00\x01"]"#,
                dnskey(257, 3, 8, &[3, 1, 0, 1]),
            ),
            (
                r#"example.com DNSKEY [256, 3, 13, "AwEAAQ=="]"#,
                dnskey(256, 3, 13, b"AwEAAQ=="),
            ),
            (
                "example.com DNSKEY 257 3 8 AwEA AQ==",
                dnskey(257, 3, 8, &[3, 1, 0, 1]),
            ),
            // MX: the exchange alone (preference 10), dnslib's [label, preference], zone file
            ("example.com MX mail.example.com", mx(10, "mail.example.com.")),
            (
                r#"example.com MX ["mail.example.com."]"#,
                mx(10, "mail.example.com."),
            ),
            (
                r#"example.com MX ["mail.example.com.", 20]"#,
                mx(20, "mail.example.com."),
            ),
            (
                r#"example.com MX [20, "mail.example.com."]"#,
                mx(20, "mail.example.com."),
            ),
            ("example.com MX 30 mail.example.com.", mx(30, "mail.example.com.")),
            ("example.com MX []", mx(10, ".")),
            // NAPTR: dnslib's arguments (bytes, or str), replacement optional; zone file
            (
                r#"example.com NAPTR [100, 10, b"S", b"SIP+D2U", b"", "_sip._udp.example.com."]"#,
                naptr(100, 10, b"S", b"SIP+D2U", b"", "_sip._udp.example.com."),
            ),
            (
                r#"example.com NAPTR [100, 10, "S", "SIP+D2T", "", "_sip._tcp.example.com."]"#,
                naptr(100, 10, b"S", b"SIP+D2T", b"", "_sip._tcp.example.com."),
            ),
            (
                r#"example.com NAPTR [10, 0, b"U", b"E2U+sip", b"!^.*$!sip:info@example.com!"]"#,
                naptr(10, 0, b"U", b"E2U+sip", b"!^.*$!sip:info@example.com!", "."),
            ),
            (
                r#"example.com NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.example.com."#,
                naptr(100, 10, b"S", b"SIP+D2U", b"", "_sip._udp.example.com."),
            ),
            (
                r#"example.com NAPTR 10 0 "U" "E2U+sip" "!^.*$!sip:info@example.com!" ."#,
                naptr(10, 0, b"U", b"E2U+sip", b"!^.*$!sip:info@example.com!", "."),
            ),
            // RRSIG: dnslib's arguments (QTYPE.A or a number, seconds, bytes); zone file
            (
                &*Box::leak(
                    format!(
                        r#"example.com RRSIG [QTYPE.A, 8, 3, 300, {exp}, {inc}, 1234, "example.com.", b"\x01\x02"]"#
                    )
                    .into_boxed_str(),
                ),
                rrsig(1, exp, inc, &[1, 2]),
            ),
            (
                &*Box::leak(
                    format!(
                        r#"example.com RRSIG [28, 8, 3, 300, {exp}, {inc}, 1234, "example.com", b"\x01\x02"]"#
                    )
                    .into_boxed_str(),
                ),
                rrsig(28, exp, inc, &[1, 2]),
            ),
            (
                &*Box::leak(
                    format!(
                        "example.com RRSIG A 8 3 300 20300101000000 20240101000000 1234 example.com. {b64}"
                    )
                    .into_boxed_str(),
                ),
                rrsig(1, exp, inc, &[3, 1, 0, 1]),
            ),
            // SOA: dnslib's three arguments; flat; zone file
            (
                r#"example.com. SOA ["ns1.example.com.", "admin.example.com.", [1, 2, 3, 4, 5]]"#,
                soa("ns1.example.com.", "admin.example.com.", [1, 2, 3, 4, 5]),
            ),
            (
                r#"example.com. SOA ["ns1.example.com.", "admin.example.com.", (1, 2, 3, 4, 5)]"#,
                soa("ns1.example.com.", "admin.example.com.", [1, 2, 3, 4, 5]),
            ),
            (
                "example.com. SOA ns1.example.com. admin.example.com. 1 3600 600 86400 60",
                soa("ns1.example.com.", "admin.example.com.", [1, 3600, 600, 86400, 60]),
            ),
            // What dnslib filled in: the root and zeros.
            (
                "example.com. SOA ns1.example.com.",
                soa("ns1.example.com.", ".", [0; 5]),
            ),
            (
                r#"example.com. SOA ["ns1.example.com."]"#,
                soa("ns1.example.com.", ".", [0; 5]),
            ),
            ("example.com. SOA []", soa(".", ".", [0; 5])),
            // SRV
            (
                r#"_sip._udp.example.com.         SRV [10, 60, 5060, "ep1.example.com."]"#,
                srv(10, 60, 5060, "ep1.example.com."),
            ),
            (
                "_sip._tcp.example.com SRV [10,60,5060,'ep1.example.com']",
                srv(10, 60, 5060, "ep1.example.com."),
            ),
            (
                "_sip._tcp.example.com SRV [1_0, 0x3c, 5060, r'ep1.example.com',]",
                srv(10, 60, 5060, "ep1.example.com."),
            ),
            (
                "_sip._tcp.example.com SRV 10 60 5060 ep1.example.com. # plain form",
                srv(10, 60, 5060, "ep1.example.com."),
            ),
            // A short list: dnslib's defaults, 0 and the root.
            ("_sip._udp.example.com SRV [10, 60, 5060]", srv(10, 60, 5060, ".")),
            ("_sip._udp.example.com SRV [10]", srv(10, 0, 0, ".")),
            ("_sip._udp.example.com SRV []", srv(0, 0, 0, ".")),
            // TXT and SPF (served as TXT): the rest of the line as one string; dnslib's one
            // string or list of strings; the zone file's quoted strings
            ("example.com TXT some text here", txt(&[b"some text here"])),
            ("example.com SPF v=spf1 -all", txt(&[b"v=spf1 -all"])),
            (r#"example.com TXT ["one string"]"#, txt(&[b"one string"])),
            (r#"example.com TXT [["a", b"b"]]"#, txt(&[b"a", b"b"])),
            (r#"example.com SPF [("v=spf1", "-all")]"#, txt(&[b"v=spf1", b"-all"])),
            (r#"example.com TXT "some text""#, txt(&[b"some text"])),
            (
                r#"example.com TXT "a # not a comment" "b \"quoted\"" word"#,
                txt(&[b"a # not a comment", br#"b "quoted""#, b"word"]),
            ),
            (r#"example.com TXT "caf\195\169""#, txt(&["caf\u{c3}\u{a9}".as_bytes()])),
            (r#"example.com TXT ["tab\there", 'q\'s']"#, txt(&[b"tab\there", b"q's"])),
        ];
        for (line, want) in cases {
            let r = one(line);
            let ttl = match want {
                RData::NS(_) | RData::SOA(_) => 86400,
                _ => 300,
            };
            assert_eq!(r.data, want, "{line}");
            assert!(r.name.is_fqdn(), "{line}");
            assert_eq!(r.ttl, ttl, "{line}");
        }
        // Every type of the original is among them.
        for t in TYPES {
            assert!(
                parse(&format!("x.example {t} [1]"))
                    .map_or_else(|e| !e.problem.contains("unknown record type"), |_| true),
                "{t}"
            );
        }
    }

    #[test]
    fn names_ttls_and_classes() {
        let r = one("EP1.Example.COM. 300 IN A 10.0.0.5 # trailing comment");
        assert_eq!(r.name.to_ascii(), "ep1.example.com.");
        assert_eq!(r.ttl, 300);
        let r = one("ep1.example.com IN 5 a 10.0.0.5#comment");
        assert_eq!((r.ttl, r.data), (5, a([10, 0, 0, 5])));
        let r = one("*.example.com A 10.0.0.7");
        assert_eq!(r.name.to_ascii(), "*.example.com.");
        // SOA of two names: the times the original meant to give it.
        let r = one(r#"example.com SOA ["ns1.example.com.", "admin.example.com."]"#);
        let RData::SOA(s) = r.data else {
            panic!("{r:?}")
        };
        assert_eq!(
            (s.refresh, s.retry, s.expire, s.minimum),
            (3600, 10800, 86400, 3600)
        );
        assert!(s.serial > 1_700_000_000, "{}", s.serial);
        // A string longer than 255 bytes: pieces of 255.
        let long = "x".repeat(600);
        let r = one(&format!("example.com TXT {long}"));
        let RData::TXT(t) = r.data else {
            panic!("{r:?}")
        };
        let lens: Vec<usize> = t.txt_data.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [255, 255, 90]);
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

    /// The example suite's dns.txt (tmp-testsuite, the original's), rendered.
    #[test]
    fn the_example_suites_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tmp-testsuite/dns-0000/dns.txt");
        let text = std::fs::read_to_string(&path).unwrap();
        let rendered = regex::Regex::new(r"\{\{[^}]*\}\}")
            .unwrap()
            .replace_all(&text, "10.22.22.101");
        let got = parse(&rendered).unwrap_or_else(|e| panic!("{e}\n{rendered}"));
        assert!(!got.is_empty());
        assert!(got.iter().any(|r| r.record_type() == RecordType::SRV));
    }

    #[test]
    fn blank_comments_and_duplicates() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(
            parse("\n  \n# only a comment\n\t# another\n").unwrap(),
            vec![]
        );
        let got =
            parse("a.example A 10.0.0.1\na.example. 30 A 10.0.0.1\nA.EXAMPLE A 10.0.0.2").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].ttl, 300);
        // An identical CNAME twice is one record, not a clash.
        assert_eq!(
            parse("a.example CNAME b.example\na.example CNAME b.example.")
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            ("a.example AXFR x", r#"dns.txt line 1: unknown record type "AXFR" (one of A AAAA CAA CNAME DNSKEY MX NAPTR NS PTR RRSIG SOA SPF SRV TXT)"#),
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
                "a.example A [10, 0, 0, 1]",
                "dns.txt line 1: A needs one IPv4 address, got [10, 0, 0, 1]",
            ),
            (
                "a.example A [[10, 0, 1]]",
                "dns.txt line 1: an IPv4 address as a list has 4 numbers, got [[10, 0, 1]]",
            ),
            (
                "a.example A [[10, 0, 0, 256]]",
                "dns.txt line 1: IPv4 address 256 is not a number from 0 to 255",
            ),
            (
                "a.example AAAA 10.0.0.1",
                r#"dns.txt line 1: "10.0.0.1" is not an IPv6 address"#,
            ),
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
                "a.example PTR [5]",
                "dns.txt line 1: domain name 5 is not a string",
            ),
            (
                "a.example MX x mail.example",
                r#"dns.txt line 1: MX preference "mail.example" is not a number from 0 to 65535"#,
            ),
            (
                "a.example MX 1 2 3",
                "dns.txt line 1: MX needs EXCHANGE, or PREFERENCE EXCHANGE (10 mail.example.com.), got 1 2 3",
            ),
            (
                r#"a.example NAPTR 100 10 "S" "SIP+D2U""#,
                r#"dns.txt line 1: NAPTR needs ORDER PREFERENCE "FLAGS" "SERVICES" "REGEXP" REPLACEMENT (100 10 "S" "SIP+D2U" "" _sip._udp.example.com.), got 100 10 "S" "SIP+D2U""#,
            ),
            (
                r#"a.example NAPTR 100 -1 "S" "SIP+D2U" "" _sip._udp.example.com."#,
                r#"dns.txt line 1: NAPTR preference "-1" is not a number from 0 to 65535"#,
            ),
            (
                r#"a.example NAPTR [100, -1, "S", "SIP+D2U", "", "x."]"#,
                "dns.txt line 1: NAPTR preference -1 is not a number from 0 to 65535",
            ),
            (
                "a.example SOA ns1.example. admin.example. 1 3600 600 86400",
                r#"dns.txt line 1: SOA needs ["MNAME", "RNAME", [SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM]] or MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM, got ns1.example. admin.example. 1 3600 600 86400"#,
            ),
            (
                r#"a.example SOA ["ns1.", "admin.", [1, 2, 3, 4]]"#,
                r#"dns.txt line 1: SOA needs five times: [SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM], got ["ns1.", "admin.", [1, 2, 3, 4]]"#,
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
                "dns.txt line 1: SRV port 70000 is not a number from 0 to 65535",
            ),
            (
                r#"_sip._udp.example.com. SRV [10, 60, 5060, "ep1.example.com."] extra"#,
                r#"dns.txt line 1: a [...] list must be the whole value, got [10, 60, 5060, "ep1.example.com."] extra"#,
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
                "_sip._udp.example.com. SRV [10,, 60, 5060, 'ep1']",
                "dns.txt line 1: an empty item in [10,, 60, 5060, 'ep1']",
            ),
            (
                r#"_sip._udp.example.com. SRV [10, 60, 5060, "ep1]"#,
                r#"dns.txt line 1: an unterminated string in [10, 60, 5060, "ep1]"#,
            ),
            (
                "_sip._udp.example.com. SRV [10, 60, 5060, ep1]",
                "dns.txt line 1: ep1 is not a literal (strings, b\"bytes\", integers, lists, QTYPE.X) in [10, 60, 5060, ep1]",
            ),
            (
                "_sip._udp.example.com. SRV [10, 60, 05060, 'ep1']",
                "dns.txt line 1: 05060 is not an integer in [10, 60, 05060, 'ep1']",
            ),
            (
                "a.example TXT [b'caf\u{e9}']",
                "dns.txt line 1: bytes can only hold ASCII characters in [b'caf\u{e9}']",
            ),
            (
                r#"a.example TXT ["\x4"]"#,
                r#"dns.txt line 1: a \x escape needs two hex digits in ["\x4"]"#,
            ),
            ("a.example TXT", r#"dns.txt line 1: TXT needs one or more "strings", got nothing"#),
            (
                "a.example TXT [5]",
                "dns.txt line 1: TXT string 5 is not a string or bytes",
            ),
            (
                r#"a.example TXT "unterminated"#,
                r#"dns.txt line 1: unterminated quoted string: "unterminated"#,
            ),
            (
                r#"a.example CAA [0, "is sue", "x"]"#,
                r#"dns.txt line 1: CAA tag "is sue" is not 1 to 15 letters and digits (issue, issuewild, iodef)"#,
            ),
            (
                "a.example CAA 0 issue",
                r#"dns.txt line 1: CAA needs FLAGS TAG "VALUE" ([0, "issue", "ca.example.net"]), got 0 issue"#,
            ),
            (
                "a.example DNSKEY 257 3 8 not*base64",
                "dns.txt line 1: DNSKEY key is not base64 (Invalid symbol 42, offset 3.)",
            ),
            (
                "a.example DNSKEY [257, 3, 8]",
                "dns.txt line 1: DNSKEY needs FLAGS PROTOCOL ALGORITHM KEY (257 3 8 AwEAAa...), got [257, 3, 8]",
            ),
            (
                "a.example RRSIG [QTYPE.NOPE, 8, 3, 300, 1, 1, 1, 'a.', b'']",
                r#"dns.txt line 1: RRSIG type covered "NOPE" is not a record type"#,
            ),
            (
                "a.example RRSIG A 8 3 300 20301301000000 20240101000000 1 a. AA==",
                r#"dns.txt line 1: RRSIG expiration "20301301000000" is not a time YYYYMMDDHHmmSS"#,
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
        let long = format!(r#"a.example NAPTR 1 1 "{}" "" "" ."#, "x".repeat(256));
        let err = parse(&long).unwrap_err().to_string();
        assert!(
            err.starts_with("dns.txt line 1: a string of 256 bytes is too long (255 at most)"),
            "{err}"
        );
        let long_label = format!("{}.example A 10.0.0.1", "x".repeat(64));
        let err = parse(&long_label).unwrap_err().to_string();
        assert!(err.contains("is not a domain name"), "{err}");
    }

    /// 50,000 lines, among them a repeat and one name of 10,000 records: parsed well within the
    /// bound even in a debug build on a busy machine (a record looked for in a list made it
    /// quadratic, issue 13.1: 32,000 records took 28 s). Not a benchmark: `cargo bench --bench
    /// dns_zone` gives the figures.
    #[test]
    fn a_large_file_is_parsed_in_linear_time() {
        let mut text = String::new();
        for i in 0..40_000u32 {
            let [_, b, c, d] = i.to_be_bytes();
            text.push_str(&format!("h{i}.example.com A 10.{b}.{c}.{d}\n"));
        }
        for i in 0..10_000u32 {
            text.push_str(&format!("many.example.com TXT [\"{i}\"]\n"));
        }
        text.push_str("h0.example.com A 10.0.0.0\n");
        let started = std::time::Instant::now();
        let got = parse(&text).unwrap();
        let took = started.elapsed();
        assert_eq!(got.len(), 50_000);
        assert!(took < std::time::Duration::from_secs(60), "{took:?}");
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
