//! The DNS server's pure core: the records each run serves, the domains they make the server the
//! authority for, and the answer to a question. No actix, no tokio, no sockets.
//!
//! **Served domains.** A run serves the domains named by the owners of its SOA records, and,
//! for each of its names under none of those, the name's last two labels (`example.com.` for
//! `_sip._udp.example.com.`; a name of one or two labels is a domain itself; a wildcard's `*` is
//! not counted). Under a served domain the answers are authoritative (AA): the records asked
//! for; NODATA (NOERROR, no answer) for a name that holds records, or has names below it, but
//! none of the type asked; NXDOMAIN for a name that does not exist. Both negative answers carry
//! the domain's SOA in the authority section: the run's own, else one made up with a TTL and
//! negative-caching time of 0 (a DUT must not remember a name as absent: the next test may serve
//! it). Any other name is REFUSED: the server is never an open resolver, and never recurses.
//!
//! **Cost.** Adding, checking and removing a run are linear in its records, and a question is
//! answered with a few hash look-ups per label of the name asked (plus the answer's size): the
//! names below each name are counted when they are added, never searched. A run of 200,000
//! records is added in one pass, or in steps ([`Zones::begin_add`]) that let questions in between.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use hickory_server::proto::rr::rdata::SOA;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};

use crate::core::plan::{RunId, TestName};

/// CNAMEs followed for one answer at most (a loop ends there too).
pub const MAX_CNAME_CHAIN: usize = 8;

/// How many records [`RunZone::new_until`] groups between two looks at its `cancelled`.
const LOOK_EVERY: usize = 1024;

/// The SOA made up for a domain no run gave one for: serial, refresh, retry and expire as a
/// zone file would have them; TTL and minimum 0 (no negative caching).
const MADE_UP_SOA: (u32, i32, i32, i32, u32) = (1, 3600, 600, 86400, 0);

/// Why the records of a run cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error(
        "dns.txt of test {test} defines {name} already served for test {holder} (run {holder_run})"
    )]
    Conflict {
        test: TestName,
        name: String,
        holder: TestName,
        holder_run: RunId,
    },
    #[error("dns records of run {0} are served already")]
    AlreadyAdded(RunId),
    #[error("interrupted while adding the dns.txt records")]
    Interrupted,
}

/// A name as the maps hold it: its labels in lowercase, each after its length (the DNS wire
/// format without the root's final 0). The key of an ancestor is a suffix of the key, so that
/// walking up a name allocates nothing; hashing a key is hashing a few bytes.
type Key = Box<[u8]>;

fn key(name: &Name) -> Key {
    let mut k = Vec::with_capacity(name.len());
    for label in name.iter() {
        // A label is at most 63 bytes (hickory checks it).
        k.push(label.len() as u8);
        k.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    k.into_boxed_slice()
}

/// The key, its parent's, ..., the root's (empty).
fn up(k: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut next = Some(k);
    std::iter::from_fn(move || {
        let k = next.take()?;
        if let Some(&len) = k.first() {
            next = k.get(1 + len as usize..);
        }
        Some(k)
    })
}

/// The name of a key (for the made-up SOA and the log).
fn name_of(k: &[u8]) -> Name {
    let mut labels: Vec<&[u8]> = Vec::new();
    let mut rest = k;
    while let Some((&len, tail)) = rest.split_first() {
        let (label, after) = tail.split_at((len as usize).min(tail.len()));
        labels.push(label);
        rest = after;
    }
    // The labels came from a valid name.
    Name::from_labels(labels).unwrap_or_else(|_| Name::root())
}

/// The domain of a name no SOA covers: its last two labels (a `*` label aside).
fn implied_domain(k: &[u8]) -> &[u8] {
    let k = match k {
        [1, b'*', rest @ ..] => rest,
        _ => k,
    };
    let suffixes: Vec<&[u8]> = up(k).collect();
    // [k, parent, ..., two labels, one label, root]
    suffixes[suffixes.len().saturating_sub(3)]
}

/// The records of one run, ready to be served: grouped by owner name (lowercase), identical
/// records once, with the domains they make the server the authority for. Made off the actor's
/// thread (it costs a pass over the records); adding it is then a merge.
#[derive(Debug, Clone, Default)]
pub struct RunZone {
    /// By owner name, in the order the names first appear.
    names: Vec<(Key, Vec<Record>)>,
    /// The served domains (apexes), each once: SOA owners first, then the others.
    domains: Vec<Key>,
    /// How many records in all.
    records: usize,
}

impl RunZone {
    pub fn new(records: Vec<Record>) -> Self {
        Self::new_until(records, &|| false).unwrap_or_default()
    }

    /// [`RunZone::new`], giving up (`None`) once `cancelled()` says so: the run was
    /// interrupted while it grouped many records.
    pub fn new_until(records: Vec<Record>, cancelled: &dyn Fn() -> bool) -> Option<Self> {
        let mut index: HashMap<Key, usize> = HashMap::new();
        let mut names: Vec<(Key, Vec<Record>)> = Vec::new();
        // Record equality ignores the TTL (RFC 2136): the first one's wins. A record's hash
        // (its name's index and its data) points to the first record that had it.
        let hashes = std::collections::hash_map::RandomState::new();
        let mut seen: HashMap<u64, (usize, usize)> = HashMap::with_capacity(records.len());
        let mut count = 0;
        for (i, mut r) in records.into_iter().enumerate() {
            if i % LOOK_EVERY == LOOK_EVERY - 1 && cancelled() {
                return None;
            }
            let k = key(&r.name);
            let at = match index.get(&k) {
                Some(&at) => at,
                None => {
                    index.insert(k.clone(), names.len());
                    // Most names hold one record: no room for four (272 bytes each) per name.
                    names.push((k, Vec::with_capacity(1)));
                    names.len() - 1
                }
            };
            let group = &mut names[at].1;
            let hash = hashes.hash_one((at, &r.data));
            let repeat = match seen.get(&hash) {
                Some(&(g, i)) if g == at && group[i].data == r.data => true,
                // Another record with the same hash (as good as never): look at the name's.
                Some(_) => group.iter().any(|held| held.data == r.data),
                None => false,
            };
            if repeat {
                continue;
            }
            seen.entry(hash).or_insert((at, group.len()));
            count += 1;
            if r.name.iter().any(|l| l.iter().any(u8::is_ascii_uppercase)) {
                r.name = r.name.to_lowercase();
            }
            group.push(r);
        }
        let soa_owners: HashSet<&[u8]> = names
            .iter()
            .filter(|(_, rs)| rs.iter().any(|r| r.record_type() == RecordType::SOA))
            .map(|(k, _)| &**k)
            .collect();
        let mut domains: Vec<Key> = Vec::new();
        let mut have: HashSet<&[u8]> = HashSet::new();
        for (k, _) in &names {
            if soa_owners.contains(&**k) && have.insert(k) {
                domains.push(k.clone());
            }
        }
        for (k, _) in &names {
            if soa_owners.is_empty() || !up(k).any(|a| soa_owners.contains(a)) {
                let d = implied_domain(k);
                if have.insert(d) {
                    domains.push(d.into());
                }
            }
        }
        Some(RunZone {
            names,
            domains,
            records: count,
        })
    }

    /// How many records (identical ones once).
    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The domains these records make the server the authority for.
    pub fn domains(&self) -> Vec<Name> {
        self.domains.iter().map(|d| name_of(d)).collect()
    }

    /// Every record, by owner name in the order the names first appear.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.names.iter().flat_map(|(_, rs)| rs.iter())
    }
}

/// What to answer to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A name under no served domain, or a zone transfer: REFUSED, not authoritative.
    Refused,
    /// A name under a served domain: AA, NOERROR or NXDOMAIN.
    Authoritative(Box<Authoritative>),
}

/// An authoritative answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Authoritative {
    /// The name (or the last target of its CNAMEs) does not exist: NXDOMAIN.
    pub nxdomain: bool,
    pub answers: Vec<Record>,
    /// The domain's SOA, for a negative answer (NXDOMAIN, or no record of the type asked).
    pub authority: Option<Record>,
    /// The runs whose records are in the answer, or whose domain gave a negative one (their
    /// logs say so).
    pub runs: Vec<RunId>,
}

impl Authoritative {
    fn note(&mut self, run: &RunId) {
        if !self.runs.contains(run) {
            self.runs.push(run.clone());
        }
    }
}

/// The records of one owner name and the run that serves them.
#[derive(Debug, Clone)]
struct Held {
    /// Shared by all the run's names: one allocation a run, not one a name.
    run: Arc<RunId>,
    records: Vec<Record>,
}

/// What a run added, to take it away again.
#[derive(Debug, Clone)]
struct RunEntry {
    test: TestName,
    names: Vec<Key>,
    domains: Vec<Key>,
}

/// A run's records being added in steps ([`Zones::begin_add`]).
#[derive(Debug)]
pub struct Adding {
    run: RunId,
    holder: Arc<RunId>,
    test: TestName,
    /// Still to add.
    names: std::vec::IntoIter<(Key, Vec<Record>)>,
    /// Added so far.
    added: Vec<Key>,
    domains: Vec<Key>,
}

/// A name, as far as answers go.
enum Node<'a> {
    /// Records of its own, or of the wildcard that stands for it.
    Held {
        held: &'a Held,
        wildcard: bool,
    },
    /// No records, but names below it (an empty non-terminal): it exists.
    Empty,
    Absent,
}

/// Everything served, by owner name, and the runs it belongs to. Names compare without case.
#[derive(Debug, Default)]
pub struct Zones {
    names: HashMap<Key, Held>,
    /// For each name above a held name: how many held names lie below it.
    below: HashMap<Key, usize>,
    /// Each served domain and the runs that serve it.
    domains: HashMap<Key, HashSet<RunId>>,
    runs: HashMap<RunId, RunEntry>,
}

impl Zones {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// How many runs have records here.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Whether the records of run `run` of `test` could be added: no name of theirs is served
    /// for another run, and the run has none yet.
    pub fn check(&self, run: &RunId, test: &TestName, zone: &RunZone) -> Result<(), ZoneError> {
        if self.runs.contains_key(run) {
            return Err(ZoneError::AlreadyAdded(run.clone()));
        }
        for (k, records) in &zone.names {
            if let Some(held) = self.names.get(k) {
                let holder = self
                    .runs
                    .get(&held.run)
                    .map(|h| h.test.clone())
                    .unwrap_or_else(|| TestName("?".into()));
                let name = match records.first() {
                    Some(r) => r.name.to_ascii(),
                    None => name_of(k).to_ascii(),
                };
                return Err(ZoneError::Conflict {
                    test: test.clone(),
                    name,
                    holder,
                    holder_run: (*held.run).clone(),
                });
            }
        }
        Ok(())
    }

    /// Adds the records of a run, all or none (see [`Zones::check`]). An empty zone adds
    /// nothing (the run is not registered).
    pub fn add(&mut self, run: RunId, test: TestName, zone: RunZone) -> Result<(), ZoneError> {
        self.add_until(run, test, zone, &|| false)
    }

    /// [`Zones::add`], giving up once `cancelled()` says so (the run was interrupted while it
    /// added many records): what was added goes again, and the answer is
    /// [`ZoneError::Interrupted`].
    pub fn add_until(
        &mut self,
        run: RunId,
        test: TestName,
        zone: RunZone,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), ZoneError> {
        let Some(mut adding) = self.begin_add(run, test, zone)? else {
            return Ok(());
        };
        while !self.add_some(&mut adding, LOOK_EVERY) {
            if cancelled() {
                self.abandon(adding);
                return Err(ZoneError::Interrupted);
            }
        }
        Ok(())
    }

    /// Checks a run's records (see [`Zones::check`]) and gets them ready to be added in steps
    /// ([`Zones::add_some`]), so that a caller can let the questions in between: a large
    /// `dns.txt` takes a few hundred milliseconds. `None` for an empty zone: nothing to add
    /// (the run is not registered). Nothing but another step may change the zones meanwhile:
    /// the check holds until the last step only so.
    pub fn begin_add(
        &self,
        run: RunId,
        test: TestName,
        zone: RunZone,
    ) -> Result<Option<Adding>, ZoneError> {
        self.check(&run, &test, &zone)?;
        if zone.is_empty() {
            return Ok(None);
        }
        Ok(Some(Adding {
            holder: Arc::new(run.clone()),
            run,
            test,
            added: Vec::with_capacity(zone.names.len()),
            names: zone.names.into_iter(),
            domains: zone.domains,
        }))
    }

    /// Adds up to `max` more names of `adding`; `true` once all are in and the run is
    /// registered with its domains, which the server is the authority for from then on (until
    /// then the names already added answer only under a domain another run serves).
    pub fn add_some(&mut self, adding: &mut Adding, max: usize) -> bool {
        self.names.reserve(adding.names.len().min(max));
        for (k, records) in adding.names.by_ref().take(max) {
            for above in up(&k).skip(1) {
                match self.below.get_mut(above) {
                    Some(n) => *n += 1,
                    None => {
                        self.below.insert(above.into(), 1);
                    }
                }
            }
            adding.added.push(k.clone());
            self.names.insert(
                k,
                Held {
                    run: adding.holder.clone(),
                    records,
                },
            );
        }
        if adding.names.len() > 0 {
            return false;
        }
        for d in &adding.domains {
            self.domains
                .entry(d.clone())
                .or_default()
                .insert(adding.run.clone());
        }
        self.runs.insert(
            adding.run.clone(),
            RunEntry {
                test: adding.test.clone(),
                names: std::mem::take(&mut adding.added),
                domains: std::mem::take(&mut adding.domains),
            },
        );
        true
    }

    /// Takes back what the steps of an add not finished put in.
    pub fn abandon(&mut self, adding: Adding) {
        // Registered with the names added so far, to go the way every run goes.
        self.runs.insert(
            adding.run.clone(),
            RunEntry {
                test: adding.test,
                names: adding.added,
                domains: Vec::new(),
            },
        );
        self.remove(&adding.run);
    }

    /// Removes the records of a run; how many names it had.
    pub fn remove(&mut self, run: &RunId) -> usize {
        let Some(gone) = self.runs.remove(run) else {
            return 0;
        };
        for k in &gone.names {
            self.names.remove(k);
            for above in up(k).skip(1) {
                if let Some(n) = self.below.get_mut(above) {
                    *n -= 1;
                    if *n == 0 {
                        self.below.remove(above);
                    }
                }
            }
        }
        for d in &gone.domains {
            if let Some(runs) = self.domains.get_mut(d) {
                runs.remove(run);
                if runs.is_empty() {
                    self.domains.remove(d);
                }
            }
        }
        gone.names.len()
    }

    /// The nearest served domain at or above `k`.
    fn domain_of<'k>(&self, k: &'k [u8]) -> Option<&'k [u8]> {
        up(k).find(|a| self.domains.contains_key(*a))
    }

    fn exists(&self, k: &[u8]) -> bool {
        self.names.contains_key(k) || self.below.contains_key(k)
    }

    /// RFC 4592: a name that does not exist takes the records of `*.<closest encloser>`, the
    /// closest encloser being its nearest existing ancestor.
    fn node(&self, k: &[u8]) -> Node<'_> {
        if let Some(held) = self.names.get(k) {
            return Node::Held {
                held,
                wildcard: false,
            };
        }
        if self.below.contains_key(k) {
            return Node::Empty;
        }
        let Some(encloser) = up(k).skip(1).find(|a| self.exists(a)) else {
            return Node::Absent;
        };
        let mut wild = Vec::with_capacity(encloser.len() + 2);
        wild.extend_from_slice(&[1, b'*']);
        wild.extend_from_slice(encloser);
        match self.names.get(&wild[..]) {
            Some(held) => Node::Held {
                held,
                wildcard: true,
            },
            None => Node::Absent,
        }
    }

    /// The SOA of a served domain for a negative answer: the one a run gave, else one made up;
    /// its TTL is the negative-caching time (RFC 2308 §3: the lesser of its TTL and minimum).
    fn soa(&self, domain: &[u8], out: &mut Authoritative) -> Record {
        if let Some(held) = self.names.get(domain) {
            let given = held.records.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some((r, soa.minimum)),
                _ => None,
            });
            if let Some((r, minimum)) = given {
                out.note(&held.run);
                let mut r = r.clone();
                r.ttl = r.ttl.min(minimum);
                return r;
            }
        }
        if let Some(runs) = self.domains.get(domain) {
            let mut runs: Vec<&RunId> = runs.iter().collect();
            runs.sort();
            for r in runs {
                out.note(r);
            }
        }
        let apex = name_of(domain);
        let label = |l: &str| apex.prepend_label(l).unwrap_or_else(|_| apex.clone());
        let (serial, refresh, retry, expire, minimum) = MADE_UP_SOA;
        Record::from_rdata(
            apex.clone(),
            minimum,
            RData::SOA(SOA::new(
                label("ns"),
                label("hostmaster"),
                serial,
                refresh,
                retry,
                expire,
                minimum,
            )),
        )
    }

    /// The answer to the question `qname` `qtype` (class IN).
    pub fn answer(&self, qname: &Name, qtype: RecordType) -> Answer {
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return Answer::Refused;
        }
        let first = key(qname);
        let Some(mut domain) = self.domain_of(&first).map(Key::from) else {
            return Answer::Refused;
        };
        let mut out = Authoritative::default();
        let mut name = qname.to_lowercase();
        let mut k = first;
        let mut seen: Vec<Key> = vec![k.clone()];
        for _ in 0..=MAX_CNAME_CHAIN {
            let (held, wildcard) = match self.node(&k) {
                Node::Held { held, wildcard } => (held, wildcard),
                Node::Empty => {
                    out.authority = Some(self.soa(&domain, &mut out));
                    break;
                }
                Node::Absent => {
                    out.nxdomain = true;
                    out.authority = Some(self.soa(&domain, &mut out));
                    break;
                }
            };
            out.note(&held.run);
            let owned = |r: &Record| {
                let mut r = r.clone();
                if wildcard {
                    r.name = name.clone();
                }
                r
            };
            let before = out.answers.len();
            out.answers.extend(
                held.records
                    .iter()
                    .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
                    .map(owned),
            );
            if out.answers.len() > before {
                break;
            }
            let cname = held.records.iter().find_map(|r| match &r.data {
                RData::CNAME(c) if qtype != RecordType::CNAME => Some((r, c.0.clone())),
                _ => None,
            });
            let Some((record, target)) = cname else {
                // NODATA.
                out.authority = Some(self.soa(&domain, &mut out));
                break;
            };
            out.answers.push(owned(record));
            // Followed within what is served; the client asks elsewhere for the rest. A loop
            // ends with the CNAMEs so far.
            let next = key(&target);
            if seen.contains(&next) {
                break;
            }
            let Some(d) = self.domain_of(&next).map(Key::from) else {
                break;
            };
            seen.push(next.clone());
            domain = d;
            name = target.to_lowercase();
            k = next;
        }
        Answer::Authoritative(Box::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_server::proto::rr::rdata::{A, CNAME, NS, SRV, TXT};
    use std::net::Ipv4Addr;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn run(id: &str) -> RunId {
        RunId(id.into())
    }

    fn test(n: &str) -> TestName {
        TestName(n.into())
    }

    fn a(owner: &str, ip: [u8; 4]) -> Record {
        Record::from_rdata(name(owner), 60, RData::A(A(Ipv4Addr::from(ip))))
    }

    fn srv(owner: &str, port: u16, target: &str) -> Record {
        Record::from_rdata(
            name(owner),
            60,
            RData::SRV(SRV::new(10, 60, port, name(target))),
        )
    }

    fn cname(owner: &str, target: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::CNAME(CNAME(name(target))))
    }

    fn txt(owner: &str, s: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::TXT(TXT::new(vec![s.into()])))
    }

    fn soa(owner: &str, ttl: u32, minimum: u32) -> Record {
        Record::from_rdata(
            name(owner),
            ttl,
            RData::SOA(SOA::new(
                name("ns1.example.com."),
                name("admin.example.com."),
                7,
                3600,
                600,
                86400,
                minimum,
            )),
        )
    }

    fn zones(runs: &[(&str, &str, Vec<Record>)]) -> Zones {
        let mut z = Zones::default();
        for (id, t, records) in runs {
            z.add(run(id), test(t), RunZone::new(records.clone()))
                .unwrap();
        }
        z
    }

    fn auth(a: Answer) -> Authoritative {
        match a {
            Answer::Authoritative(a) => *a,
            Answer::Refused => panic!("refused"),
        }
    }

    /// NOERROR with records.
    fn found(z: &Zones, q: &str, t: RecordType) -> Vec<Record> {
        let a = auth(z.answer(&name(q), t));
        assert!(!a.nxdomain, "{q} {t}: {a:?}");
        assert!(a.authority.is_none(), "{q} {t}: {a:?}");
        assert!(!a.answers.is_empty(), "{q} {t}: {a:?}");
        a.answers
    }

    /// NODATA: NOERROR, no records, the SOA of `domain`.
    fn nodata(z: &Zones, q: &str, t: RecordType, domain: &str) -> Record {
        let a = auth(z.answer(&name(q), t));
        assert!(!a.nxdomain, "{q} {t}: {a:?}");
        assert!(a.answers.is_empty(), "{q} {t}: {a:?}");
        let soa = a.authority.expect("an SOA");
        assert_eq!(soa.name, name(domain), "{q} {t}");
        assert_eq!(soa.record_type(), RecordType::SOA);
        soa
    }

    /// NXDOMAIN with the SOA of `domain`.
    fn nxdomain(z: &Zones, q: &str, domain: &str) -> Record {
        let a = auth(z.answer(&name(q), RecordType::A));
        assert!(a.nxdomain, "{q}: {a:?}");
        assert!(a.answers.is_empty(), "{q}: {a:?}");
        let soa = a.authority.expect("an SOA");
        assert_eq!(soa.name, name(domain), "{q}");
        soa
    }

    fn refused(z: &Zones, q: &str) {
        assert_eq!(z.answer(&name(q), RecordType::A), Answer::Refused, "{q}");
    }

    #[test]
    fn served_domains_are_the_soa_owners_else_the_last_two_labels() {
        let domains = |records: Vec<Record>| -> Vec<String> {
            RunZone::new(records)
                .domains()
                .iter()
                .map(|d| d.to_ascii())
                .collect()
        };
        assert_eq!(
            domains(vec![
                a("ep1.example.com.", [10, 0, 0, 5]),
                srv("_sip._udp.example.com.", 5060, "ep1.example.com."),
                a("x.other.org.", [10, 0, 0, 6]),
                a("example.net.", [10, 0, 0, 7]),
                a("localhost.", [127, 0, 0, 1]),
                a("*.wild.example.io.", [10, 0, 0, 8]),
                a("*.io.", [10, 0, 0, 9]),
            ]),
            [
                "example.com.",
                "other.org.",
                "example.net.",
                "localhost.",
                "example.io.",
                "io."
            ]
        );
        // An SOA makes its owner the domain of the names below it; the others keep theirs.
        assert_eq!(
            domains(vec![
                a("ep1.sub.example.com.", [10, 0, 0, 5]),
                soa("sub.example.com.", 60, 5),
                a("sub.example.com.", [10, 0, 0, 5]),
                a("ep2.example.com.", [10, 0, 0, 6]),
            ]),
            ["sub.example.com.", "example.com."]
        );
    }

    #[test]
    fn run_zones_group_by_name_lowercase_and_drop_repeats() {
        let z = RunZone::new(vec![
            a("EP1.example.com.", [10, 0, 0, 5]),
            txt("x.example.com.", "t"),
            a("ep1.example.com.", [10, 0, 0, 5]),
            a("ep1.Example.com.", [10, 0, 0, 6]),
        ]);
        assert_eq!(z.len(), 3);
        let owners: Vec<String> = z.records().map(|r| r.name.to_ascii()).collect();
        assert_eq!(
            owners,
            ["ep1.example.com.", "ep1.example.com.", "x.example.com."]
        );
        assert!(RunZone::new(vec![]).is_empty());
    }

    /// The answers of an authority (issue 10.4): records; NODATA and NXDOMAIN with the SOA;
    /// REFUSED outside the served domains; no zone transfers.
    #[test]
    fn answers_as_an_authority() {
        let z = zones(&[(
            "aaaaaa",
            "t0",
            vec![
                a("EP1.example.com.", [10, 0, 0, 5]),
                a("ep1.example.com.", [10, 0, 0, 6]),
                txt("ep1.example.com.", "hello"),
                srv("_sip._udp.example.com.", 5060, "ep1.example.com."),
            ],
        )]);
        let got = found(&z, "Ep1.Example.Com.", RecordType::A);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].name.to_ascii(), "ep1.example.com.");
        assert_eq!(found(&z, "ep1.example.com.", RecordType::ANY).len(), 3);
        assert_eq!(
            found(&z, "_sip._udp.example.com.", RecordType::SRV).len(),
            1
        );
        // NODATA: the name is held, not this type; the SOA is made up (TTL 0, minimum 0).
        let made_up = nodata(&z, "ep1.example.com.", RecordType::AAAA, "example.com.");
        assert_eq!(made_up.ttl, 0);
        let RData::SOA(s) = &made_up.data else {
            panic!("{made_up:?}")
        };
        assert_eq!(s.minimum, 0);
        assert_eq!(s.mname, name("ns.example.com."));
        assert_eq!(s.rname, name("hostmaster.example.com."));
        // An empty non-terminal, and the apex with nothing of its own, exist: NODATA.
        nodata(&z, "_udp.example.com.", RecordType::A, "example.com.");
        nodata(&z, "example.com.", RecordType::A, "example.com.");
        nodata(&z, "example.com.", RecordType::SOA, "example.com.");
        // Absent names under the served domain: NXDOMAIN.
        nxdomain(&z, "absent.example.com.", "example.com.");
        nxdomain(&z, "x.ep1.example.com.", "example.com.");
        nxdomain(&z, "_sip._tcp.example.com.", "example.com.");
        // Outside: REFUSED.
        refused(&z, "example.org.");
        refused(&z, "com.");
        refused(&z, ".");
        refused(&z, "ep1.example.com.org.");
        assert_eq!(
            z.answer(&name("ep1.example.com."), RecordType::AXFR),
            Answer::Refused
        );
        assert_eq!(
            z.answer(&name("example.com."), RecordType::IXFR),
            Answer::Refused
        );
        assert_eq!(
            auth(z.answer(&name("ep1.example.com."), RecordType::A)).runs,
            [run("aaaaaa")]
        );
    }

    #[test]
    fn a_given_soa_is_the_authority_with_its_negative_ttl() {
        let z = zones(&[(
            "aaaaaa",
            "t0",
            vec![
                soa("example.com.", 86400, 5),
                Record::from_rdata(
                    name("example.com."),
                    86400,
                    RData::NS(NS(name("ns1.example.com."))),
                ),
                a("ns1.example.com.", [10, 0, 0, 1]),
                a("deep.sub.example.com.", [10, 0, 0, 2]),
            ],
        )]);
        let s = nxdomain(&z, "nope.example.com.", "example.com.");
        // RFC 2308 §3: the lesser of its TTL and its minimum.
        assert_eq!(s.ttl, 5);
        let RData::SOA(data) = &s.data else {
            panic!("{s:?}")
        };
        assert_eq!(data.serial, 7);
        assert_eq!(
            auth(z.answer(&name("nope.example.com."), RecordType::A)).runs,
            [run("aaaaaa")]
        );
        nodata(&z, "ns1.example.com.", RecordType::AAAA, "example.com.");
        nodata(&z, "sub.example.com.", RecordType::A, "example.com.");
        // Asked for, the SOA and NS are answers with their own TTL.
        let got = found(&z, "example.com.", RecordType::SOA);
        assert_eq!(got[0].ttl, 86400);
        assert_eq!(found(&z, "example.com.", RecordType::NS).len(), 1);
        refused(&z, "example.org.");
    }

    /// Two runs: the nearest served domain answers; one run gone, its domain goes unless the
    /// other serves it too.
    #[test]
    fn domains_of_several_runs() {
        let mut z = zones(&[
            (
                "aaaaaa",
                "t0",
                vec![
                    soa("sub.example.com.", 60, 30),
                    a("ep1.sub.example.com.", [10, 0, 0, 5]),
                ],
            ),
            ("bbbbbb", "t1", vec![a("ep2.example.com.", [10, 0, 0, 6])]),
            ("cccccc", "t2", vec![a("ep3.example.com.", [10, 0, 0, 7])]),
        ]);
        assert_eq!(
            nxdomain(&z, "x.sub.example.com.", "sub.example.com.").ttl,
            30
        );
        assert_eq!(nxdomain(&z, "x.example.com.", "example.com.").ttl, 0);
        z.remove(&run("aaaaaa"));
        // sub.example.com. is no domain now, but lies under example.com.
        nxdomain(&z, "x.sub.example.com.", "example.com.");
        assert_eq!(z.remove(&run("bbbbbb")), 1);
        nxdomain(&z, "ep2.example.com.", "example.com.");
        found(&z, "ep3.example.com.", RecordType::A);
        assert_eq!(z.remove(&run("cccccc")), 1);
        refused(&z, "ep3.example.com.");
        refused(&z, "example.com.");
        assert!(z.is_empty());
        assert!(z.names.is_empty() && z.below.is_empty() && z.domains.is_empty());
    }

    #[test]
    fn conflicts_add_nothing() {
        let mut z = zones(&[(
            "abcdef",
            "call-0000",
            vec![a("ep1.example.com.", [10, 0, 0, 5])],
        )]);
        let err = z
            .add(
                run("ghijkl"),
                test("call-0001"),
                RunZone::new(vec![
                    a("new.example.org.", [10, 0, 0, 7]),
                    srv("_sip._udp.example.com.", 5060, "ep1.example.com."),
                    a("EP1.example.com.", [10, 0, 0, 6]),
                ]),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dns.txt of test call-0001 defines ep1.example.com. already served for test \
             call-0000 (run abcdef)"
        );
        refused(&z, "new.example.org.");
        nxdomain(&z, "_sip._udp.example.com.", "example.com.");
        assert_eq!(z.runs(), 1);
        assert_eq!(
            z.add(run("abcdef"), test("call-0000"), RunZone::default()),
            Err(ZoneError::AlreadyAdded(run("abcdef")))
        );
        // An empty zone adds nothing, not even the run.
        z.add(run("zzzzzz"), test("empty"), RunZone::default())
            .unwrap();
        assert_eq!(z.runs(), 1);
        // Once the first run is gone, the name is free.
        z.remove(&run("abcdef"));
        z.add(
            run("ghijkl"),
            test("call-0001"),
            RunZone::new(vec![a("ep1.example.com.", [10, 0, 0, 6])]),
        )
        .unwrap();
        assert_eq!(z.remove(&run("nobody")), 0);
    }

    #[test]
    fn cnames_are_chased_within_what_is_served() {
        let z = zones(&[(
            "aaaaaa",
            "t0",
            vec![
                cname("sip.example.com.", "proxy.example.com."),
                cname("proxy.example.com.", "ep1.example.com."),
                a("ep1.example.com.", [10, 0, 0, 5]),
                cname("out.example.com.", "elsewhere.example.org."),
                cname("dangling.example.com.", "gone.example.com."),
                cname("loop1.example.com.", "loop2.example.com."),
                cname("loop2.example.com.", "loop1.example.com."),
            ],
        )]);
        let got = found(&z, "sip.example.com.", RecordType::A);
        let types: Vec<RecordType> = got.iter().map(|r| r.record_type()).collect();
        assert_eq!(types, [RecordType::CNAME, RecordType::CNAME, RecordType::A]);
        // Asked for the CNAME itself: only it.
        assert_eq!(found(&z, "sip.example.com.", RecordType::CNAME).len(), 1);
        // A target outside: the CNAME alone, NOERROR, the client asks elsewhere.
        assert_eq!(found(&z, "out.example.com.", RecordType::A).len(), 1);
        // A target that does not exist: NXDOMAIN (RFC 6604) with the CNAME and the SOA.
        let a = auth(z.answer(&name("dangling.example.com."), RecordType::A));
        assert!(
            a.nxdomain && a.answers.len() == 1 && a.authority.is_some(),
            "{a:?}"
        );
        // A loop ends.
        let a = auth(z.answer(&name("loop1.example.com."), RecordType::A));
        assert_eq!(a.answers.len(), 2, "{a:?}");
        // The target has no record of the type: NODATA after the chain.
        let a = auth(z.answer(&name("sip.example.com."), RecordType::AAAA));
        assert!(
            !a.nxdomain && a.answers.len() == 2 && a.authority.is_some(),
            "{a:?}"
        );
    }

    #[test]
    fn wildcards_stand_for_absent_names_only() {
        let z = zones(&[(
            "aaaaaa",
            "t0",
            vec![
                a("*.example.com.", [10, 0, 0, 9]),
                a("ep1.example.com.", [10, 0, 0, 5]),
                a("x.sub.example.com.", [10, 0, 0, 6]),
            ],
        )]);
        let got = found(&z, "a.b.example.com.", RecordType::A);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name.to_ascii(), "a.b.example.com.");
        assert_eq!(got[0].data, RData::A(A(Ipv4Addr::new(10, 0, 0, 9))));
        let got = found(&z, "ep1.example.com.", RecordType::A);
        assert_eq!(got[0].data, RData::A(A(Ipv4Addr::new(10, 0, 0, 5))));
        // A wildcard's name without the type: NODATA.
        nodata(&z, "other.example.com.", RecordType::AAAA, "example.com.");
        // sub.example.com. exists (a name below it): its own absent children are not covered
        // by *.example.com. (RFC 4592 §2.2.1), and it is NODATA itself.
        nxdomain(&z, "y.sub.example.com.", "example.com.");
        nodata(&z, "sub.example.com.", RecordType::A, "example.com.");
        refused(&z, "example.org.");
    }

    /// An add the run's interrupt cuts short leaves the zones as they were: the names it had
    /// added so far go again (also the ancestors they made exist), the other runs stay served.
    #[test]
    fn an_interrupted_add_leaves_nothing() {
        let mut z = zones(&[("keepme", "kept", vec![a("ep.example.org.", [10, 0, 0, 1])])]);
        let sizes = |z: &Zones| (z.names.len(), z.below.len(), z.runs.len(), z.domains.len());
        let before = sizes(&z);
        let records: Vec<Record> = (0..5_000u32)
            .map(|i| a(&format!("h{i}.s{}.example.com.", i % 7), [10, 0, 0, 2]))
            .collect();
        let looks = std::cell::Cell::new(0);
        // The third look says stop: 3,071 names are in by then.
        let third = || {
            looks.set(looks.get() + 1);
            looks.get() == 3
        };
        let cut = z.add_until(
            run("bigbig"),
            test("big"),
            RunZone::new(records.clone()),
            &third,
        );
        assert_eq!(cut, Err(ZoneError::Interrupted));
        assert_eq!(looks.get(), 3);
        assert_eq!(sizes(&z), before);
        refused(&z, "h0.s0.example.com.");
        refused(&z, "s0.example.com.");
        found(&z, "ep.example.org.", RecordType::A);
        // Nothing of it is held: the same run adds in full afterwards.
        z.add_until(run("bigbig"), test("big"), RunZone::new(records), &|| false)
            .unwrap();
        found(&z, "h4999.s1.example.com.", RecordType::A);
    }

    /// 20,000 records in one run, 20,000 records of one name, 200 runs of 50: added, asked and
    /// removed in well under the bound even in a debug build on a busy machine. A step
    /// quadratic in the records would take minutes here; this is no benchmark
    /// (BENCHMARKS.md has the figures).
    #[test]
    fn many_records_add_and_remove_in_linear_time() {
        let started = std::time::Instant::now();
        let records: Vec<Record> = (0..20_000u32)
            .map(|i| {
                a(
                    &format!("h{i}.example.com."),
                    (i | 0x0a00_0000).to_be_bytes(),
                )
            })
            .collect();
        let zone = RunZone::new(records);
        assert_eq!(zone.len(), 20_000);
        let mut z = Zones::default();
        z.add(run("bigbig"), test("big"), zone).unwrap();
        found(&z, "h19999.example.com.", RecordType::A);
        nxdomain(&z, "h20000.example.com.", "example.com.");
        let same: Vec<Record> = (0..20_000u32)
            .map(|i| txt("many.example.org.", &i.to_string()))
            .collect();
        z.add(run("manyyy"), test("many"), RunZone::new(same))
            .unwrap();
        assert_eq!(
            found(&z, "many.example.org.", RecordType::TXT).len(),
            20_000
        );
        for r in 0..200u32 {
            let records = (0..50u32)
                .map(|i| a(&format!("h{i}.r{r}.example.net."), [10, 1, 0, 1]))
                .collect();
            z.add(
                run(&format!("r{r:05}")),
                test("small"),
                RunZone::new(records),
            )
            .unwrap();
        }
        assert_eq!(z.remove(&run("bigbig")), 20_000);
        for r in 0..200u32 {
            assert_eq!(z.remove(&run(&format!("r{r:05}"))), 50);
        }
        z.remove(&run("manyyy"));
        assert!(z.names.is_empty() && z.below.is_empty() && z.domains.is_empty());
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(30), "{took:?}");
    }
}
