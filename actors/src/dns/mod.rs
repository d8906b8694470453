//! DnsActor: the embedded DNS server that all tests share (SPEC §9): it serves the records of
//! each running test's `dns.txt`, added in pre-run and removed in post-run.
//!
//! - [`Zones`], the pure core: which test serves which names, conflicts, and the answer to a
//!   question. No actix, no tokio.
//! - [`DnsActor`]: owns the [`Zones`] (shared with the server's request handler behind a
//!   lock) and the server. The server is bound at the first [`AddRecords`] that has records,
//!   on UDP and TCP `0.0.0.0:<port>`, and runs as tasks on the actor's runtime (hickory's
//!   [`Server`]); a watcher task tells the actor when it ends. An end the actor did not ask for
//!   (a socket error, a panic) is logged and the server is bound again on the same port, with
//!   the records of the tests still registered.
//!
//! Answers: authoritative (AA=1, RA=0) for the names held, with every record of the asked type
//! (NODATA when there is none, CNAMEs chased within what is held); REFUSED for any other name,
//! so that the server never becomes an open resolver. No zone cuts: each record's owner name is
//! held on its own; `*.example.com.` records answer for names below `example.com.` that are not
//! held themselves.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, AtomicResponse, Context, Handler, Message, WrapFuture};
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use slog::{debug, info, warn, Logger};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::core::plan::{RunId, TestName};
use crate::messages::{AddRecords, RemoveRecords, Shutdown, ShutdownError};

/// The port of the real thing.
pub const DNS_PORT: u16 = 53;

/// A TCP connection that sends no request for this long is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Responses queued for sending on one TCP connection (hickory's default).
const TCP_RESPONSE_BUFFER: usize = 32;
/// How long [`Shutdown`] waits for the server's tasks to end before it aborts them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// CNAMEs followed for one answer at most (a loop ends there too).
const MAX_CNAME_CHAIN: usize = 8;
/// The first and the longest wait between two tries to bind the server again after it died.
const RESTART_DELAY_MIN: Duration = Duration::from_millis(20);
const RESTART_DELAY_MAX: Duration = Duration::from_secs(5);
/// A server that lived less than this before it died counts as failing at once: the next
/// restart waits (else a server that dies at once would be restarted in a busy loop).
const STABLE_UPTIME: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error(
        "dns.txt of test {test} defines {name} already served for test {holder} (run {holder_run})"
    )]
    Conflict {
        test: TestName,
        name: String,
        holder: TestName,
        holder_run: RunId,
    },
    #[error("dns server: {proto} port {port} is taken ({reason})")]
    PortTaken {
        proto: &'static str,
        port: u16,
        reason: String,
    },
    #[error("dns server: cannot bind {proto} port {port} ({reason})")]
    Bind {
        proto: &'static str,
        port: u16,
        reason: String,
        errno: Option<i32>,
    },
    #[error("dns records of run {0} are served already")]
    AlreadyAdded(RunId),
    #[error("dns server: shut down, the run is stopping")]
    ShutDown,
}

impl DnsError {
    /// The tool's own fault (SPEC §4 step 4: the run stops): not allowed to bind the port.
    pub fn is_fatal(&self) -> bool {
        matches!(self, DnsError::Bind { errno: Some(e), .. } if *e == libc::EACCES || *e == libc::EPERM)
    }

    fn bind(proto: &'static str, port: u16, e: &io::Error) -> Self {
        let errno = e.raw_os_error();
        let reason = match errno {
            Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
            None => e.to_string(),
        };
        if e.kind() == io::ErrorKind::AddrInUse {
            DnsError::PortTaken {
                proto,
                port,
                reason,
            }
        } else {
            DnsError::Bind {
                proto,
                port,
                reason,
                errno,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The pure core.

/// The names of one run.
#[derive(Debug, Clone)]
struct RunNames {
    test: TestName,
    names: Vec<Name>,
}

/// The records of one owner name and the run that serves them.
#[derive(Debug, Clone)]
struct Held {
    run: RunId,
    records: Vec<Record>,
}

/// What to answer to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Not a name we hold: REFUSED.
    Refused,
    /// A name we hold: NOERROR, AA, these records (none: NODATA).
    Records(Vec<Record>),
}

/// The records served, by owner name, and the runs they belong to. Names are compared without
/// case (as [`Name`] does).
#[derive(Debug, Default)]
pub struct Zones {
    names: HashMap<Name, Held>,
    runs: BTreeMap<RunId, RunNames>,
}

impl Zones {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// How many runs have records here.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Whether `records` of run `run` of `test` could be added: no name of theirs is served for
    /// another run, and the run has none yet.
    pub fn check(&self, run: &RunId, test: &TestName, records: &[Record]) -> Result<(), DnsError> {
        if self.runs.contains_key(run) {
            return Err(DnsError::AlreadyAdded(run.clone()));
        }
        for r in records {
            if let Some(held) = self.names.get(&r.name) {
                let holder = self
                    .runs
                    .get(&held.run)
                    .map(|h| h.test.clone())
                    .unwrap_or_else(|| TestName("?".into()));
                return Err(DnsError::Conflict {
                    test: test.clone(),
                    name: r.name.to_lowercase().to_ascii(),
                    holder,
                    holder_run: held.run.clone(),
                });
            }
        }
        Ok(())
    }

    /// Adds the records of a run, all or none (see [`Zones::check`]). Owner names are
    /// lowercased; identical records are kept once.
    pub fn add(
        &mut self,
        run: RunId,
        test: TestName,
        records: Vec<Record>,
    ) -> Result<(), DnsError> {
        self.check(&run, &test, &records)?;
        if records.is_empty() {
            return Ok(());
        }
        let mut names: Vec<Name> = Vec::new();
        for mut r in records {
            r.name = r.name.to_lowercase();
            let held = self.names.entry(r.name.clone()).or_insert_with(|| {
                names.push(r.name.clone());
                Held {
                    run: run.clone(),
                    records: Vec::new(),
                }
            });
            if !held.records.contains(&r) {
                held.records.push(r);
            }
        }
        self.runs.insert(run, RunNames { test, names });
        Ok(())
    }

    /// Removes the records of a run; how many names it had.
    pub fn remove(&mut self, run: &RunId) -> usize {
        let Some(gone) = self.runs.remove(run) else {
            return 0;
        };
        for n in &gone.names {
            self.names.remove(n);
        }
        gone.names.len()
    }

    /// The records of `name` (exact, or from the nearest `*.` wildcard above it), with their
    /// owner set to `name`.
    fn records_of(&self, name: &Name) -> Option<Vec<Record>> {
        if let Some(held) = self.names.get(name) {
            return Some(held.records.clone());
        }
        let labels = name.num_labels();
        for keep in (0..labels).rev() {
            let Ok(wild) = name.trim_to(keep as usize).prepend_label("*") else {
                continue;
            };
            if let Some(held) = self.names.get(&wild) {
                return Some(
                    held.records
                        .iter()
                        .map(|r| {
                            let mut r = r.clone();
                            r.name = name.clone();
                            r
                        })
                        .collect(),
                );
            }
        }
        None
    }

    /// The answer to the question `name` `qtype` (class IN).
    pub fn answer(&self, name: &Name, qtype: RecordType) -> Answer {
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return Answer::Refused;
        }
        let Some(first) = self.records_of(name) else {
            return Answer::Refused;
        };
        let mut out = Vec::new();
        let mut records = first;
        let mut seen: HashSet<Name> = HashSet::from([name.clone()]);
        for _ in 0..=MAX_CNAME_CHAIN {
            let matching: Vec<Record> = records
                .iter()
                .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
                .cloned()
                .collect();
            if !matching.is_empty() || qtype == RecordType::CNAME {
                out.extend(matching);
                break;
            }
            let Some(cname) = records.iter().find_map(|r| match &r.data {
                RData::CNAME(c) => Some((r.clone(), c.0.clone())),
                _ => None,
            }) else {
                break;
            };
            out.push(cname.0);
            // Follow the CNAME only within what we hold; the client asks for the rest.
            if !seen.insert(cname.1.clone()) {
                break;
            }
            match self.records_of(&cname.1) {
                Some(next) => records = next,
                None => break,
            }
        }
        Answer::Records(out)
    }
}

// ---------------------------------------------------------------------------------------------
// The request handler the server calls.

/// Answers from the shared [`Zones`]. The lock is held only to copy an answer out.
struct ZoneHandler {
    zones: Arc<RwLock<Zones>>,
}

impl ZoneHandler {
    /// The response code, whether the answer is authoritative, and its records.
    fn decide(&self, request: &Request) -> (ResponseCode, bool, Vec<Record>) {
        if request.metadata.message_type != MessageType::Query {
            return (ResponseCode::FormErr, false, Vec::new());
        }
        if request.metadata.op_code != OpCode::Query {
            return (ResponseCode::NotImp, false, Vec::new());
        }
        let [query] = request.queries.queries() else {
            return (ResponseCode::FormErr, false, Vec::new());
        };
        if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
            return (ResponseCode::Refused, false, Vec::new());
        }
        let name = Name::from(query.name());
        let zones = self.zones.read().unwrap_or_else(PoisonError::into_inner);
        match zones.answer(&name, query.query_type()) {
            Answer::Refused => (ResponseCode::Refused, false, Vec::new()),
            Answer::Records(r) => (ResponseCode::NoError, true, r),
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for ZoneHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let (code, authoritative, answers) = self.decide(request);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = code;
        metadata.authoritative = authoritative;
        metadata.recursion_available = false;
        // A client that speaks EDNS gets EDNS back (RFC 6891), with its buffer size.
        let edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e.set_version(0);
            e
        });
        let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            metadata,
            answers.iter(),
            std::iter::empty(),
            std::iter::empty(),
            std::iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The actor.

/// The server while it runs.
struct Running {
    /// Which start this is; an end reported for an older one is stale.
    generation: u64,
    started: Instant,
    /// Cancelling it is hickory's graceful shutdown.
    shutdown: CancellationToken,
    /// Of the task that runs the server (it owns hickory's [`Server`]).
    server_task: AbortHandle,
    /// Awaits the server task and reports its end to the actor.
    watcher: JoinHandle<()>,
}

/// watcher → DnsActor: the server of `generation` ended, with this error (`None`: cleanly).
#[derive(Message)]
#[rtype(result = "()")]
struct ServerEnded {
    generation: u64,
    error: Option<String>,
}

/// The delayed retry of a restart that could not bind.
#[derive(Message)]
#[rtype(result = "()")]
struct RetryStart;

pub struct DnsActor {
    port: u16,
    log: Logger,
    /// The records served; the server's request handler reads them.
    zones: Arc<RwLock<Zones>>,
    /// `None` until the first records, and between a failure and its restart.
    server: Option<Running>,
    /// Of the last start.
    generation: u64,
    /// Set by [`Shutdown`]: no more records, no restart.
    closed: bool,
    /// The wait before the next restart try; zero after a server that ran well.
    restart_delay: Duration,
    /// A [`RetryStart`] is scheduled.
    retry_pending: bool,
    /// [`STABLE_UPTIME`]; tests set it to zero to restart at once.
    stable_uptime: Duration,
}

impl DnsActor {
    /// A server for `port` (53 in production), not bound until the first records.
    pub fn new(port: u16, log: Logger) -> Self {
        DnsActor {
            port,
            log,
            zones: Arc::new(RwLock::new(Zones::default())),
            server: None,
            generation: 0,
            closed: false,
            restart_delay: Duration::ZERO,
            retry_pending: false,
            stable_uptime: STABLE_UPTIME,
        }
    }

    fn zones(&self) -> std::sync::RwLockWriteGuard<'_, Zones> {
        self.zones.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Binds UDP and TCP `0.0.0.0:<port>` and starts the server on them.
    fn start_server(&mut self, ctx: &mut Context<Self>) -> Result<(), DnsError> {
        let port = self.port;
        let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
        // Binding does not block: fine on the actor's thread.
        let udp = std::net::UdpSocket::bind(addr).map_err(|e| DnsError::bind("UDP", port, &e))?;
        let tcp = std::net::TcpListener::bind(addr).map_err(|e| DnsError::bind("TCP", port, &e))?;
        let setup_err = |proto, e: io::Error| DnsError::Bind {
            proto,
            port,
            reason: e.to_string(),
            errno: e.raw_os_error(),
        };
        udp.set_nonblocking(true).map_err(|e| setup_err("UDP", e))?;
        tcp.set_nonblocking(true).map_err(|e| setup_err("TCP", e))?;
        let udp = tokio::net::UdpSocket::from_std(udp).map_err(|e| setup_err("UDP", e))?;
        let tcp = tokio::net::TcpListener::from_std(tcp).map_err(|e| setup_err("TCP", e))?;

        let mut server = Server::new(ZoneHandler {
            zones: self.zones.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        let shutdown = server.shutdown_token().clone();
        let task = tokio::spawn(async move { server.block_until_done().await });
        let server_task = task.abort_handle();
        self.generation += 1;
        let generation = self.generation;
        let me = ctx.address();
        let watcher = actix::spawn(async move {
            let error = match task.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) if e.is_panic() => Some("the server task panicked".to_string()),
                Err(_) => Some("the server task was cancelled".to_string()),
            };
            me.do_send(ServerEnded { generation, error });
        });
        self.server = Some(Running {
            generation,
            started: Instant::now(),
            shutdown,
            server_task,
            watcher,
        });
        info!(self.log, "dns server listening on UDP and TCP port {port}"; "generation" => generation);
        Ok(())
    }

    fn has_records(&self) -> bool {
        !self
            .zones
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// After the server died: binds again after `restart_delay` (now when zero), and keeps
    /// trying, waiting longer each time, while some run has records (else the next
    /// [`AddRecords`] binds).
    fn restart(&mut self, ctx: &mut Context<Self>) {
        if self.closed || self.server.is_some() || self.retry_pending {
            return;
        }
        if !self.has_records() {
            debug!(
                self.log,
                "dns server down, no records to serve: bound again with the next"
            );
            return;
        }
        if !self.restart_delay.is_zero() {
            self.retry_pending = true;
            ctx.notify_later(RetryStart, self.restart_delay);
            return;
        }
        if let Err(e) = self.start_server(ctx) {
            // The old sockets may still be closing: soon again.
            self.restart_delay = RESTART_DELAY_MIN;
            warn!(self.log, "{e}: trying again in {:?}", self.restart_delay);
            self.retry_pending = true;
            ctx.notify_later(RetryStart, self.restart_delay);
        }
    }
}

impl Actor for DnsActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(s) = self.server.take() {
            s.shutdown.cancel();
        }
    }
}

impl Handler<AddRecords> for DnsActor {
    type Result = Result<(), DnsError>;

    fn handle(&mut self, msg: AddRecords, ctx: &mut Context<Self>) -> Self::Result {
        if self.closed {
            return Err(DnsError::ShutDown);
        }
        self.zones
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .check(&msg.run_id, &msg.test, &msg.records)?;
        if msg.records.is_empty() {
            return Ok(());
        }
        if self.server.is_none() {
            self.start_server(ctx)?;
        }
        let n = msg.records.len();
        let run = msg.run_id.clone();
        self.zones().add(msg.run_id, msg.test, msg.records)?;
        debug!(self.log, "dns records added"; "run_id" => %run, "records" => n);
        Ok(())
    }
}

impl Handler<RemoveRecords> for DnsActor {
    type Result = ();

    fn handle(&mut self, msg: RemoveRecords, _: &mut Context<Self>) {
        let n = self.zones().remove(&msg.run_id);
        if n > 0 {
            debug!(self.log, "dns records removed"; "run_id" => %msg.run_id, "names" => n);
        }
    }
}

impl Handler<Shutdown> for DnsActor {
    type Result = AtomicResponse<Self, Result<(), ShutdownError>>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.closed = true;
        let running = self.server.take();
        let log = self.log.clone();
        let work = async move {
            let Some(r) = running else { return Ok(()) };
            r.shutdown.cancel();
            let mut watcher = r.watcher;
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut watcher)
                .await
                .is_err()
            {
                warn!(
                    log,
                    "dns server did not stop within {SHUTDOWN_GRACE:?}: aborted"
                );
                r.server_task.abort();
                let _ = watcher.await;
            }
            info!(log, "dns server stopped");
            Ok(())
        };
        AtomicResponse::new(Box::pin(work.into_actor(self)))
    }
}

impl Handler<ServerEnded> for DnsActor {
    type Result = ();

    fn handle(&mut self, msg: ServerEnded, ctx: &mut Context<Self>) {
        let current = matches!(&self.server, Some(r) if r.generation == msg.generation);
        if !current || self.closed {
            return;
        }
        let Some(was) = self.server.take() else {
            return;
        };
        let lived = was.started.elapsed();
        let why = msg.error.unwrap_or_else(|| "it stopped by itself".into());
        self.restart_delay = if lived >= self.stable_uptime {
            Duration::ZERO
        } else {
            (self.restart_delay * 2).clamp(RESTART_DELAY_MIN, RESTART_DELAY_MAX)
        };
        warn!(self.log, "dns server ended unexpectedly after {lived:?}: {why}; restarting it on port {}", self.port;
            "runs" => self.zones.read().unwrap_or_else(PoisonError::into_inner).runs());
        self.restart(ctx);
    }
}

impl Handler<RetryStart> for DnsActor {
    type Result = ();

    fn handle(&mut self, _: RetryStart, ctx: &mut Context<Self>) {
        self.retry_pending = false;
        if self.closed || self.server.is_some() || !self.has_records() {
            return;
        }
        if let Err(e) = self.start_server(ctx) {
            self.restart_delay =
                (self.restart_delay * 2).clamp(RESTART_DELAY_MIN, RESTART_DELAY_MAX);
            warn!(self.log, "{e}: trying again in {:?}", self.restart_delay);
            self.retry_pending = true;
            ctx.notify_later(RetryStart, self.restart_delay);
        }
    }
}

/// Test only: makes the server task end as if it failed (aborts it), and tells which start of
/// the server is up.
#[cfg(test)]
#[derive(Message)]
#[rtype(result = "Option<u64>")]
struct CrashServer;

#[cfg(test)]
#[derive(Message)]
#[rtype(result = "Option<u64>")]
struct Generation;

#[cfg(test)]
impl Handler<CrashServer> for DnsActor {
    type Result = Option<u64>;

    fn handle(&mut self, _: CrashServer, _: &mut Context<Self>) -> Option<u64> {
        let r = self.server.as_ref()?;
        r.server_task.abort();
        Some(r.generation)
    }
}

#[cfg(test)]
impl Handler<Generation> for DnsActor {
    type Result = Option<u64>;

    fn handle(&mut self, _: Generation, _: &mut Context<Self>) -> Option<u64> {
        self.server.as_ref().map(|r| r.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::netlink::testns;
    use actix::Addr;
    use hickory_server::proto::op::{Message as DnsMessage, Query};
    use hickory_server::proto::rr::rdata::{A, CNAME, NAPTR, SRV, TXT};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn log() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

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

    fn naptr(owner: &str, order: u16, services: &str, replacement: &str) -> Record {
        Record::from_rdata(
            name(owner),
            60,
            RData::NAPTR(NAPTR::new(
                order,
                50,
                (*b"s").into(),
                services.as_bytes().into(),
                (*b"").into(),
                name(replacement),
            )),
        )
    }

    fn txt(owner: &str, s: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::TXT(TXT::new(vec![s.into()])))
    }

    fn answered(a: Answer) -> Vec<Record> {
        match a {
            Answer::Records(r) => r,
            Answer::Refused => panic!("refused"),
        }
    }

    // -- the pure core --------------------------------------------------------------------

    #[test]
    fn zones_answer_held_names_and_refuse_the_rest() {
        let mut z = Zones::default();
        z.add(
            run("aaaaaa"),
            test("t0"),
            vec![
                a("EP1.example.com.", [10, 0, 0, 5]),
                a("ep1.example.com.", [10, 0, 0, 6]),
                a("ep1.example.com.", [10, 0, 0, 6]),
                txt("ep1.example.com.", "hello"),
                srv("_sip._udp.example.com.", 5060, "ep1.example.com."),
            ],
        )
        .unwrap();
        let got = answered(z.answer(&name("Ep1.Example.Com."), RecordType::A));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].name.to_ascii(), "ep1.example.com.");
        assert_eq!(
            answered(z.answer(&name("ep1.example.com."), RecordType::ANY)).len(),
            3
        );
        // NODATA: the name is held, not this type.
        assert_eq!(
            z.answer(&name("ep1.example.com."), RecordType::AAAA),
            Answer::Records(vec![])
        );
        assert_eq!(
            z.answer(&name("example.com."), RecordType::A),
            Answer::Refused
        );
        assert_eq!(
            z.answer(&name("x.ep1.example.com."), RecordType::A),
            Answer::Refused
        );
        assert_eq!(
            z.answer(&name("example.org."), RecordType::A),
            Answer::Refused
        );
        assert_eq!(
            z.answer(&name("ep1.example.com."), RecordType::AXFR),
            Answer::Refused
        );
        assert_eq!(z.runs(), 1);
        assert_eq!(z.remove(&run("aaaaaa")), 2);
        assert_eq!(z.remove(&run("aaaaaa")), 0);
        assert!(z.is_empty());
        assert_eq!(
            z.answer(&name("ep1.example.com."), RecordType::A),
            Answer::Refused
        );
    }

    #[test]
    fn zones_conflicts_add_nothing() {
        let mut z = Zones::default();
        z.add(
            run("abcdef"),
            test("call-0000"),
            vec![a("ep1.example.com.", [10, 0, 0, 5])],
        )
        .unwrap();
        let err = z
            .add(
                run("ghijkl"),
                test("call-0001"),
                vec![
                    a("new.example.com.", [10, 0, 0, 7]),
                    srv("_sip._udp.example.com.", 5060, "ep1.example.com."),
                    a("EP1.example.com.", [10, 0, 0, 6]),
                ],
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dns.txt of test call-0001 defines ep1.example.com. already served for test \
             call-0000 (run abcdef)"
        );
        assert_eq!(
            z.answer(&name("new.example.com."), RecordType::A),
            Answer::Refused
        );
        assert_eq!(z.runs(), 1);
        assert_eq!(
            z.add(run("abcdef"), test("call-0000"), vec![]),
            Err(DnsError::AlreadyAdded(run("abcdef")))
        );
        // Once the first run is gone, the name is free.
        z.remove(&run("abcdef"));
        z.add(
            run("ghijkl"),
            test("call-0001"),
            vec![a("ep1.example.com.", [10, 0, 0, 6])],
        )
        .unwrap();
    }

    #[test]
    fn zones_chase_cnames_within_what_they_hold() {
        let mut z = Zones::default();
        z.add(
            run("aaaaaa"),
            test("t0"),
            vec![
                cname("sip.example.com.", "proxy.example.com."),
                cname("proxy.example.com.", "ep1.example.com."),
                a("ep1.example.com.", [10, 0, 0, 5]),
                cname("out.example.com.", "elsewhere.example.org."),
                cname("loop1.example.com.", "loop2.example.com."),
                cname("loop2.example.com.", "loop1.example.com."),
            ],
        )
        .unwrap();
        let got = answered(z.answer(&name("sip.example.com."), RecordType::A));
        let types: Vec<RecordType> = got.iter().map(|r| r.record_type()).collect();
        assert_eq!(types, [RecordType::CNAME, RecordType::CNAME, RecordType::A]);
        // Asked for the CNAME itself: only it.
        assert_eq!(
            answered(z.answer(&name("sip.example.com."), RecordType::CNAME)).len(),
            1
        );
        // A target we do not hold: the CNAME alone.
        assert_eq!(
            answered(z.answer(&name("out.example.com."), RecordType::A)).len(),
            1
        );
        // A loop ends.
        assert_eq!(
            answered(z.answer(&name("loop1.example.com."), RecordType::A)).len(),
            2
        );
        // The target's other types: NODATA after the chain.
        assert_eq!(
            answered(z.answer(&name("sip.example.com."), RecordType::AAAA)).len(),
            2
        );
    }

    #[test]
    fn zones_wildcards() {
        let mut z = Zones::default();
        z.add(
            run("aaaaaa"),
            test("t0"),
            vec![
                a("*.example.com.", [10, 0, 0, 9]),
                a("ep1.example.com.", [10, 0, 0, 5]),
            ],
        )
        .unwrap();
        let got = answered(z.answer(&name("a.b.example.com."), RecordType::A));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name.to_ascii(), "a.b.example.com.");
        assert_eq!(got[0].data, RData::A(A(Ipv4Addr::new(10, 0, 0, 9))));
        let got = answered(z.answer(&name("ep1.example.com."), RecordType::A));
        assert_eq!(got[0].data, RData::A(A(Ipv4Addr::new(10, 0, 0, 5))));
        assert_eq!(
            z.answer(&name("example.com."), RecordType::A),
            Answer::Refused
        );
        assert_eq!(
            z.answer(&name("example.org."), RecordType::A),
            Answer::Refused
        );
    }

    #[test]
    fn bind_errors_read_well() {
        let taken = DnsError::bind("UDP", 53, &io::Error::from_raw_os_error(libc::EADDRINUSE));
        assert_eq!(
            taken.to_string(),
            "dns server: UDP port 53 is taken (Address already in use)"
        );
        assert!(!taken.is_fatal());
        let denied = DnsError::bind("TCP", 53, &io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(
            denied.to_string(),
            "dns server: cannot bind TCP port 53 (Permission denied)"
        );
        assert!(denied.is_fatal());
    }

    // -- the server, in a private network namespace ---------------------------------------

    fn query(owner: &str, t: RecordType) -> DnsMessage {
        let mut q = DnsMessage::query();
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(name(owner), t));
        q
    }

    async fn ask_udp(port: u16, owner: &str, t: RecordType) -> DnsMessage {
        let q = query(owner, t);
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.send_to(&q.to_vec().unwrap(), ("127.0.0.1", port))
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no UDP answer for {owner} {t}"))
            .unwrap();
        let m = DnsMessage::from_vec(&buf[..n]).unwrap();
        assert_eq!(m.metadata.id, q.metadata.id);
        m
    }

    async fn ask_tcp(port: u16, owner: &str, t: RecordType) -> DnsMessage {
        let q = query(owner, t);
        let bytes = q.to_vec().unwrap();
        let work = async {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            s.write_all(&(bytes.len() as u16).to_be_bytes())
                .await
                .unwrap();
            s.write_all(&bytes).await.unwrap();
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await.unwrap();
            let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut body).await.unwrap();
            body
        };
        let body = tokio::time::timeout(Duration::from_secs(2), work)
            .await
            .unwrap_or_else(|_| panic!("no TCP answer for {owner} {t}"));
        let m = DnsMessage::from_vec(&body).unwrap();
        assert_eq!(m.metadata.id, q.metadata.id);
        m
    }

    /// An authoritative answer: NOERROR, AA, RA=0; its answer records.
    fn authoritative(m: &DnsMessage) -> &[Record] {
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
        assert!(m.metadata.authoritative, "{m:?}");
        assert!(!m.metadata.recursion_available, "{m:?}");
        &m.answers
    }

    fn refused(m: &DnsMessage) {
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{m:?}");
        assert!(!m.metadata.authoritative, "{m:?}");
        assert!(!m.metadata.recursion_available, "{m:?}");
        assert!(m.answers.is_empty(), "{m:?}");
    }

    async fn add(
        dns: &Addr<DnsActor>,
        id: &str,
        t: &str,
        records: Vec<Record>,
    ) -> Result<(), DnsError> {
        dns.send(AddRecords {
            run_id: run(id),
            test: test(t),
            records,
        })
        .await
        .unwrap()
    }

    fn example() -> Vec<Record> {
        vec![
            a("ep1.example.com.", [10, 0, 0, 5]),
            srv("_sip._udp.example.com.", 5060, "ep1.example.com."),
        ]
    }

    #[test]
    fn a_and_srv_over_udp_and_tcp() {
        testns::in_netns("dns a and srv", || {
            actix_rt::System::new().block_on(async {
                let dns = DnsActor::new(DNS_PORT, log()).start();
                add(&dns, "abcdef", "call-0000", example()).await.unwrap();
                for tcp in [false, true] {
                    let ask = |owner: &'static str, t| async move {
                        if tcp {
                            ask_tcp(DNS_PORT, owner, t).await
                        } else {
                            ask_udp(DNS_PORT, owner, t).await
                        }
                    };
                    let m = ask("ep1.example.com.", RecordType::A).await;
                    assert_eq!(authoritative(&m), &[a("ep1.example.com.", [10, 0, 0, 5])]);
                    let m = ask("_sip._udp.EXAMPLE.com.", RecordType::SRV).await;
                    let ans = authoritative(&m);
                    assert_eq!(ans.len(), 1);
                    assert_eq!(
                        ans[0].data,
                        RData::SRV(SRV::new(10, 60, 5060, name("ep1.example.com.")))
                    );
                    assert_eq!(ans[0].ttl, 60);
                    // NODATA.
                    let m = ask("ep1.example.com.", RecordType::AAAA).await;
                    assert!(authoritative(&m).is_empty());
                }
                // EDNS in, EDNS out.
                let mut q = query("ep1.example.com.", RecordType::A);
                let mut edns = Edns::new();
                edns.set_max_payload(1232);
                q.set_edns(edns);
                let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                sock.send_to(&q.to_vec().unwrap(), ("127.0.0.1", DNS_PORT))
                    .await
                    .unwrap();
                let mut buf = vec![0u8; 4096];
                let n = sock.recv(&mut buf).await.unwrap();
                let m = DnsMessage::from_vec(&buf[..n]).unwrap();
                assert_eq!(authoritative(&m).len(), 1);
                assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(1232));
                dns.send(Shutdown).await.unwrap().unwrap();
            });
        });
    }

    #[test]
    fn unknown_names_and_recursion_are_refused() {
        testns::in_netns("dns refused", || {
            actix_rt::System::new().block_on(async {
                let dns = DnsActor::new(DNS_PORT, log()).start();
                add(&dns, "abcdef", "call-0000", example()).await.unwrap();
                for owner in ["example.org.", "example.com.", "other.example.com.", "."] {
                    refused(&ask_udp(DNS_PORT, owner, RecordType::A).await);
                    refused(&ask_tcp(DNS_PORT, owner, RecordType::A).await);
                }
                refused(&ask_udp(DNS_PORT, "example.org.", RecordType::NS).await);
                dns.send(Shutdown).await.unwrap().unwrap();
            });
        });
    }

    #[test]
    fn removed_records_are_refused() {
        testns::in_netns("dns removal", || {
            actix_rt::System::new().block_on(async {
                let dns = DnsActor::new(DNS_PORT, log()).start();
                add(&dns, "abcdef", "call-0000", example()).await.unwrap();
                add(
                    &dns,
                    "ghijkl",
                    "call-0001",
                    vec![a("ep2.example.com.", [10, 0, 0, 6])],
                )
                .await
                .unwrap();
                assert_eq!(
                    authoritative(&ask_udp(DNS_PORT, "ep1.example.com.", RecordType::A).await)
                        .len(),
                    1
                );
                dns.send(RemoveRecords {
                    run_id: run("abcdef"),
                })
                .await
                .unwrap();
                refused(&ask_udp(DNS_PORT, "ep1.example.com.", RecordType::A).await);
                refused(&ask_udp(DNS_PORT, "_sip._udp.example.com.", RecordType::SRV).await);
                // The other run's are still served; removing twice is fine.
                assert_eq!(
                    authoritative(&ask_udp(DNS_PORT, "ep2.example.com.", RecordType::A).await)
                        .len(),
                    1
                );
                dns.send(RemoveRecords {
                    run_id: run("abcdef"),
                })
                .await
                .unwrap();
                dns.send(RemoveRecords {
                    run_id: run("ghijkl"),
                })
                .await
                .unwrap();
                refused(&ask_udp(DNS_PORT, "ep2.example.com.", RecordType::A).await);
                dns.send(Shutdown).await.unwrap().unwrap();
            });
        });
    }

    #[test]
    fn a_conflict_names_both_tests_and_adds_nothing() {
        testns::in_netns("dns conflict", || {
            actix_rt::System::new().block_on(async {
                let dns = DnsActor::new(DNS_PORT, log()).start();
                add(&dns, "abcdef", "call-0000", example()).await.unwrap();
                let err = add(
                    &dns,
                    "ghijkl",
                    "call-0001",
                    vec![
                        a("new.example.com.", [10, 0, 0, 7]),
                        a("ep1.example.com.", [10, 0, 0, 8]),
                    ],
                )
                .await
                .unwrap_err();
                assert_eq!(
                    err.to_string(),
                    "dns.txt of test call-0001 defines ep1.example.com. already served for \
                     test call-0000 (run abcdef)"
                );
                refused(&ask_udp(DNS_PORT, "new.example.com.", RecordType::A).await);
                let m = ask_udp(DNS_PORT, "ep1.example.com.", RecordType::A).await;
                assert_eq!(authoritative(&m), &[a("ep1.example.com.", [10, 0, 0, 5])]);
                dns.send(Shutdown).await.unwrap().unwrap();
            });
        });
    }

    #[test]
    fn a_taken_port_fails_clearly_and_a_later_add_tries_again() {
        testns::in_netns("dns port taken", || {
            actix_rt::System::new().block_on(async {
                let dns = DnsActor::new(DNS_PORT, log()).start();
                let udp = std::net::UdpSocket::bind(("0.0.0.0", DNS_PORT)).unwrap();
                let err = add(&dns, "abcdef", "call-0000", example())
                    .await
                    .unwrap_err();
                assert_eq!(
                    err.to_string(),
                    "dns server: UDP port 53 is taken (Address already in use)"
                );
                drop(udp);
                let tcp = std::net::TcpListener::bind(("127.0.0.1", DNS_PORT)).unwrap();
                let err = add(&dns, "abcdef", "call-0000", example())
                    .await
                    .unwrap_err();
                assert_eq!(
                    err.to_string(),
                    "dns server: TCP port 53 is taken (Address already in use)"
                );
                drop(tcp);
                // Nothing was added by the failures.
                add(&dns, "abcdef", "call-0000", example()).await.unwrap();
                let m = ask_udp(DNS_PORT, "ep1.example.com.", RecordType::A).await;
                assert_eq!(authoritative(&m).len(), 1);
                dns.send(Shutdown).await.unwrap().unwrap();
            });
        });
    }

    #[test]
    fn the_server_is_restarted_with_its_records_after_a_failure() {
        testns::in_netns("dns restart", || {
            actix_rt::System::new().block_on(async {
                let dns = DnsActor::new(DNS_PORT, log()).start();
                add(&dns, "abcdef", "call-0000", example()).await.unwrap();
                assert_eq!(dns.send(Generation).await.unwrap(), Some(1));
                assert_eq!(dns.send(CrashServer).await.unwrap(), Some(1));
                let start = Instant::now();
                while dns.send(Generation).await.unwrap() != Some(2) {
                    assert!(start.elapsed() < Duration::from_secs(2), "not restarted");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let m = ask_udp(DNS_PORT, "ep1.example.com.", RecordType::A).await;
                assert_eq!(authoritative(&m), &[a("ep1.example.com.", [10, 0, 0, 5])]);
                let m = ask_tcp(DNS_PORT, "_sip._udp.example.com.", RecordType::SRV).await;
                assert_eq!(authoritative(&m).len(), 1);
                // Again, at once: the restart waits a little, then comes.
                assert_eq!(dns.send(CrashServer).await.unwrap(), Some(2));
                while dns.send(Generation).await.unwrap() != Some(3) {
                    assert!(
                        start.elapsed() < Duration::from_secs(3),
                        "not restarted twice"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let m = ask_udp(DNS_PORT, "ep1.example.com.", RecordType::A).await;
                assert_eq!(authoritative(&m).len(), 1);
                // With no records left, a failed server waits for the next ones.
                dns.send(RemoveRecords {
                    run_id: run("abcdef"),
                })
                .await
                .unwrap();
                dns.send(CrashServer).await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
                assert_eq!(dns.send(Generation).await.unwrap(), None);
                add(&dns, "ghijkl", "call-0001", example()).await.unwrap();
                assert_eq!(dns.send(Generation).await.unwrap(), Some(4));
                let m = ask_udp(DNS_PORT, "ep1.example.com.", RecordType::A).await;
                assert_eq!(authoritative(&m).len(), 1);
                dns.send(Shutdown).await.unwrap().unwrap();
            });
        });
    }

    #[test]
    fn a_server_that_ran_well_is_restarted_at_once() {
        testns::in_netns("dns restart at once", || {
            actix_rt::System::new().block_on(async {
                let mut actor = DnsActor::new(DNS_PORT, log());
                actor.stable_uptime = Duration::ZERO;
                let dns = actor.start();
                add(&dns, "abcdef", "call-0000", example()).await.unwrap();
                for generation in 1..=5 {
                    assert_eq!(dns.send(CrashServer).await.unwrap(), Some(generation));
                    let start = Instant::now();
                    while dns.send(Generation).await.unwrap() != Some(generation + 1) {
                        assert!(start.elapsed() < Duration::from_secs(2), "not restarted");
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    let m = ask_tcp(DNS_PORT, "ep1.example.com.", RecordType::A).await;
                    assert_eq!(authoritative(&m).len(), 1);
                }
                dns.send(Shutdown).await.unwrap().unwrap();
            });
        });
    }

    /// What a SIP proxy does (RFC 3263): NAPTR for the domain, SRV for the chosen transport,
    /// then A for the target.
    #[test]
    fn a_naptr_srv_a_chain_resolves_like_a_sip_proxy() {
        testns::in_netns("dns naptr chain", || {
            actix_rt::System::new().block_on(async {
                let dns = DnsActor::new(DNS_PORT, log()).start();
                add(
                    &dns,
                    "abcdef",
                    "call-0000",
                    vec![
                        naptr("example.com.", 90, "SIP+D2T", "_sip._tcp.example.com."),
                        naptr("example.com.", 50, "SIP+D2U", "_sip._udp.example.com."),
                        srv("_sip._udp.example.com.", 5070, "ep1.example.com."),
                        srv("_sip._tcp.example.com.", 5071, "ep1.example.com."),
                        a("ep1.example.com.", [10, 0, 0, 5]),
                    ],
                )
                .await
                .unwrap();
                let m = ask_udp(DNS_PORT, "example.com.", RecordType::NAPTR).await;
                let mut naptrs: Vec<NAPTR> = authoritative(&m)
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::NAPTR(n) => Some(n.clone()),
                        _ => None,
                    })
                    .collect();
                assert_eq!(naptrs.len(), 2);
                naptrs.sort_by_key(|n| (n.order, n.preference));
                let best = &naptrs[0];
                assert_eq!(&*best.services, b"SIP+D2U");
                assert_eq!(&*best.flags, b"s");
                let m = ask_udp(DNS_PORT, &best.replacement.to_ascii(), RecordType::SRV).await;
                let RData::SRV(srv) = &authoritative(&m)[0].data else {
                    panic!("{m:?}")
                };
                assert_eq!(srv.port, 5070);
                let m = ask_udp(DNS_PORT, &srv.target.to_ascii(), RecordType::A).await;
                assert_eq!(
                    authoritative(&m)[0].data,
                    RData::A(A(Ipv4Addr::new(10, 0, 0, 5)))
                );
                dns.send(Shutdown).await.unwrap().unwrap();
            });
        });
    }

    #[test]
    fn shutdown_frees_the_port_and_empty_records_bind_nothing() {
        testns::in_netns("dns shutdown", || {
            actix_rt::System::new().block_on(async {
                let dns = DnsActor::new(DNS_PORT, log()).start();
                add(&dns, "aaaaaa", "empty", vec![]).await.unwrap();
                assert_eq!(dns.send(Generation).await.unwrap(), None);
                add(&dns, "abcdef", "call-0000", example()).await.unwrap();
                assert_eq!(
                    add(&dns, "abcdef", "call-0000", example()).await,
                    Err(DnsError::AlreadyAdded(run("abcdef")))
                );
                dns.send(Shutdown).await.unwrap().unwrap();
                drop(std::net::UdpSocket::bind(("0.0.0.0", DNS_PORT)).unwrap());
                drop(std::net::TcpListener::bind(("0.0.0.0", DNS_PORT)).unwrap());
                assert_eq!(
                    add(&dns, "ghijkl", "call-0001", example()).await,
                    Err(DnsError::ShutDown)
                );
                // Twice is fine.
                dns.send(Shutdown).await.unwrap().unwrap();
            });
        });
    }

    #[test]
    fn another_port_works_too() {
        testns::in_netns("dns other port", || {
            actix_rt::System::new().block_on(async {
                let dns = DnsActor::new(5353, log()).start();
                add(&dns, "abcdef", "call-0000", example()).await.unwrap();
                let m = ask_udp(5353, "ep1.example.com.", RecordType::A).await;
                assert_eq!(authoritative(&m).len(), 1);
                dns.send(Shutdown).await.unwrap().unwrap();
            });
        });
    }

    fn median(mut v: Vec<Duration>) -> Duration {
        v.sort();
        v[v.len() / 2]
    }

    /// `cargo test -p sipplauncher-actors --lib dns::tests::timing -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn timing_add_records() {
        testns::in_netns("dns timing", || {
            actix_rt::System::new().block_on(async {
                let mut first = Vec::new();
                for _ in 0..20 {
                    let dns = DnsActor::new(DNS_PORT, log()).start();
                    let t = Instant::now();
                    add(&dns, "abcdef", "call-0000", example()).await.unwrap();
                    first.push(t.elapsed());
                    dns.send(Shutdown).await.unwrap().unwrap();
                }
                let dns = DnsActor::new(DNS_PORT, log()).start();
                add(
                    &dns,
                    "zzzzzz",
                    "up",
                    vec![a("up.example.com.", [10, 0, 0, 1])],
                )
                .await
                .unwrap();
                let mut up = Vec::new();
                let mut remove = Vec::new();
                for i in 0..20 {
                    let id = format!("run{i:03}");
                    let t = Instant::now();
                    add(&dns, &id, "call-0000", example()).await.unwrap();
                    up.push(t.elapsed());
                    let t = Instant::now();
                    dns.send(RemoveRecords { run_id: run(&id) }).await.unwrap();
                    remove.push(t.elapsed());
                }
                let mut answer = Vec::new();
                add(&dns, "abcdef", "call-0000", example()).await.unwrap();
                for _ in 0..20 {
                    let t = Instant::now();
                    ask_udp(DNS_PORT, "ep1.example.com.", RecordType::A).await;
                    answer.push(t.elapsed());
                }
                eprintln!(
                    "AddRecords (2 records) binding the server: median {:?} of 20",
                    median(first)
                );
                eprintln!(
                    "AddRecords (2 records), server up: median {:?} of 20",
                    median(up)
                );
                eprintln!("RemoveRecords: median {:?} of 20", median(remove));
                eprintln!("UDP query answered: median {:?} of 20", median(answer));
                dns.send(Shutdown).await.unwrap().unwrap();
            });
        });
    }
}
