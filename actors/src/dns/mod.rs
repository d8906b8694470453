//! DnsActor: the embedded DNS server that all tests share (SPEC §9): it serves the records of
//! each running test's `dns.txt`, added in pre-run and removed in post-run.
//!
//! - [`zones`], the pure core: which run serves which names, the domains they make the server
//!   the authority for, conflicts, and the answer to a question. No actix, no tokio.
//! - [`server`]: hickory's side: the sockets and the request handler.
//! - [`DnsActor`] (here): owns the [`zones::Zones`] (shared with the request handler behind a
//!   lock) and the server. The server is bound at the first [`AddRecords`] that has records, on
//!   UDP and TCP of its address (`0.0.0.0:53` in a run; `127.0.0.1:0` in tests, a free port:
//!   [`LocalAddr`] tells which), and runs as tasks on the actor's runtime (hickory's
//!   [`Server`]); a watcher task tells the actor when it ends. An end the actor did not ask for
//!   (a socket error, a panic) is logged and the server is bound again on the same port, with
//!   the records of the tests still registered. A port taken by another process fails the
//!   test's [`AddRecords`] at once, naming that process.
//!
//! Answers: see [`zones`]: authoritative (AA=1, RA=0) under the domains the running tests
//! serve, with NXDOMAIN and NODATA carrying the domain's SOA; REFUSED for any other name, so
//! that the server never becomes an open resolver.

pub mod server;
pub mod zones;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock, RwLockWriteGuard};
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFuture, ActorFutureExt, AsyncContext, AtomicResponse, Context, Handler, Message,
    WrapFuture,
};
use hickory_server::Server;
use slog::{debug, info, warn, Logger};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::core::plan::RunId;
use crate::events::format_duration;
use crate::messages::{AddRecords, LocalAddr, RemoveRecords, Shutdown, ShutdownError};
use crate::sys::script::KillSwitch;
use crate::sys::sockets::{self, Holder, Proto};
use server::{Served, ZoneHandler};
use zones::{Adding, RunZone, ZoneError};

/// The port of the real thing.
pub const DNS_PORT: u16 = 53;

/// Where a run's server listens: every address of the runner, port 53.
pub const RUN_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), DNS_PORT);

/// A TCP connection that sends no request for this long is closed.
/// Names added to the zones under one hold of their write lock (see [`DnsActor::add`]).
const ADD_STEP: usize = 4096;
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Responses queued for sending on one TCP connection (hickory's default).
const TCP_RESPONSE_BUFFER: usize = 32;
/// How long [`Shutdown`] waits for the server's tasks to end before it aborts them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// The first and the longest wait between two tries to bind the server again after it died.
const RESTART_DELAY_MIN: Duration = Duration::from_millis(20);
const RESTART_DELAY_MAX: Duration = Duration::from_secs(5);
/// A server that lived less than this before it died counts as failing at once: the next
/// restart waits (else a server that dies at once would be restarted in a busy loop).
const STABLE_UPTIME: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error(transparent)]
    Zone(#[from] ZoneError),
    /// `by`: the processes that hold the port, when they can be seen.
    #[error("dns server: {proto} port {port} is taken {}", taken_by(.by, .reason))]
    PortTaken {
        proto: &'static str,
        port: u16,
        reason: String,
        by: Vec<Holder>,
    },
    #[error("dns server: cannot bind {proto} port {port} ({reason})")]
    Bind {
        proto: &'static str,
        port: u16,
        reason: String,
        errno: Option<i32>,
    },
    #[error("dns server: shut down, the run is stopping")]
    ShutDown,
}

/// "by sipplauncher (pid 4242)", or the OS's reason when nobody can be seen holding it.
fn taken_by(by: &[Holder], reason: &str) -> String {
    if by.is_empty() {
        return format!("({reason})");
    }
    let who: Vec<String> = by.iter().map(Holder::to_string).collect();
    format!("by {}", who.join(", "))
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
                by: Vec::new(),
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

/// Writes the records of a run's `dns.txt` to its log, as the original did: at most
/// [`LOGGED_RECORDS`] of them (a file of 200,000 records is not read in a log).
pub fn log_zone(log: &Logger, file: &std::path::Path, zone: &RunZone) {
    info!(log, "loading DNS file {}", file.display());
    for (i, r) in zone.records().take(LOGGED_RECORDS).enumerate() {
        info!(log, " {:2}: {r}", i + 1);
    }
    if zone.len() > LOGGED_RECORDS {
        info!(log, " ... and {} more", zone.len() - LOGGED_RECORDS);
    }
    info!(
        log,
        "{} zone resource records generated from file",
        zone.len()
    );
    let domains: Vec<String> = zone.domains().iter().map(|d| d.to_ascii()).collect();
    if !domains.is_empty() {
        info!(log, "authoritative for: {}", domains.join(" "));
    }
}

/// The records of a run's log at most.
pub const LOGGED_RECORDS: usize = 1000;

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
    /// Where to listen; its port is the one bound once bound (a restart takes the same).
    addr: SocketAddr,
    log: Logger,
    /// The records served and the runs' logs; the server's request handler reads them.
    served: Arc<RwLock<Served>>,
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
    /// A server for `addr` ([`RUN_ADDR`] in a run), not bound until the first records.
    pub fn new(addr: SocketAddr, log: Logger) -> Self {
        DnsActor {
            addr,
            log,
            served: Arc::new(RwLock::new(Served::default())),
            server: None,
            generation: 0,
            closed: false,
            restart_delay: Duration::ZERO,
            retry_pending: false,
            stable_uptime: STABLE_UPTIME,
        }
    }

    fn served(&self) -> RwLockWriteGuard<'_, Served> {
        self.served.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Binds UDP and TCP on the address and starts the server on them.
    fn start_server(&mut self, ctx: &mut Context<Self>) -> Result<(), DnsError> {
        // Binding does not block: fine on the actor's thread.
        let (udp, tcp) = server::bind(self.addr)?;
        let setup_err = |proto, e: io::Error| DnsError::Bind {
            proto,
            port: self.addr.port(),
            reason: e.to_string(),
            errno: e.raw_os_error(),
        };
        let bound = udp.local_addr().map_err(|e| setup_err("UDP", e))?;
        let udp = tokio::net::UdpSocket::from_std(udp).map_err(|e| setup_err("UDP", e))?;
        let tcp = tokio::net::TcpListener::from_std(tcp).map_err(|e| setup_err("TCP", e))?;
        self.addr = bound;

        let mut server = Server::new(ZoneHandler {
            served: self.served.clone(),
            log: self.log.clone(),
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
        info!(self.log, "dns server listening on UDP and TCP {bound}"; "generation" => generation);
        Ok(())
    }

    fn has_records(&self) -> bool {
        !self
            .served
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .zones
            .is_empty()
    }

    /// Checks, binds the server if it is not up, adds the first [`ADD_STEP`] names; the rest,
    /// if any, is left to [`DnsActor::add_rest`].
    fn add(&mut self, msg: AddRecords, ctx: &mut Context<Self>) -> Result<Added, DnsError> {
        if self.closed {
            return Err(DnsError::ShutDown);
        }
        let n = msg.zone.len();
        // Checked before the server is bound: a conflict binds nothing.
        let adding = self
            .served
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .zones
            .begin_add(msg.run_id.clone(), msg.test, msg.zone)?;
        let Some(mut adding) = adding else {
            return Ok(Added::Done);
        };
        if self.server.is_none() {
            self.start_server(ctx)?;
        }
        let rest = Rest {
            run: msg.run_id,
            records: n,
            log: msg.log,
            stop: msg.stop,
        };
        if !self.served().zones.add_some(&mut adding, ADD_STEP) {
            return Ok(Added::More(Box::new((adding, rest))));
        }
        self.added(rest);
        Ok(Added::Done)
    }

    /// The steps left of a large add, each under the write lock, the server (a task of this
    /// thread) answering the other tests' questions in between: 200,000 records take ~300 ms.
    /// The actor takes no other message meanwhile (an atomic response).
    fn add_rest(
        &self,
        mut adding: Adding,
        rest: Rest,
    ) -> impl ActorFuture<Self, Output = Result<(), DnsError>> {
        let served = self.served.clone();
        let stop = rest.stop.clone();
        async move {
            loop {
                tokio::task::yield_now().await;
                let mut s = served.write().unwrap_or_else(PoisonError::into_inner);
                if stop.is_interrupted() {
                    s.zones.abandon(adding);
                    return Err(DnsError::Zone(ZoneError::Interrupted));
                }
                if s.zones.add_some(&mut adding, ADD_STEP) {
                    return Ok(());
                }
            }
        }
        .into_actor(self)
        .map(move |res, act, _| {
            if res.is_ok() {
                act.added(rest);
            }
            res
        })
    }

    /// The run's records are all in: its log gets the questions they answer.
    fn added(&mut self, rest: Rest) {
        self.served().logs.insert(rest.run.clone(), rest.log);
        debug!(self.log, "dns records added"; "run_id" => %rest.run, "records" => rest.records);
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
            warn!(
                self.log,
                "{e}: trying again in {}",
                format_duration(self.restart_delay)
            );
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
    type Result = AtomicResponse<Self, Result<(), DnsError>>;

    fn handle(&mut self, msg: AddRecords, ctx: &mut Context<Self>) -> Self::Result {
        match self.add(msg, ctx) {
            Err(DnsError::PortTaken {
                proto,
                port,
                reason,
                ..
            }) => {
                // Who holds it: /proc, read on the blocking pool. Nothing was added.
                let which = if proto == "TCP" {
                    Proto::Tcp
                } else {
                    Proto::Udp
                };
                let lookup =
                    tokio::task::spawn_blocking(move || sockets::port_holders(which, port));
                AtomicResponse::new(Box::pin(
                    async move {
                        let by = lookup.await.unwrap_or_default();
                        Err(DnsError::PortTaken {
                            proto,
                            port,
                            reason,
                            by,
                        })
                    }
                    .into_actor(self)
                    .map(|res, act, _| {
                        if let Err(e) = &res {
                            debug!(act.log, "{e}");
                        }
                        res
                    }),
                ))
            }
            Ok(Added::More(more)) => {
                let (adding, rest) = *more;
                AtomicResponse::new(Box::pin(self.add_rest(adding, rest)))
            }
            Ok(Added::Done) => AtomicResponse::new(Box::pin(actix::fut::ready(Ok(())))),
            Err(e) => AtomicResponse::new(Box::pin(actix::fut::ready(Err(e)))),
        }
    }
}

/// How far [`DnsActor::add`] got.
enum Added {
    Done,
    /// A large zone: its first step is in, the others to come.
    More(Box<(Adding, Rest)>),
}

/// What is done once a run's records are all in.
struct Rest {
    run: RunId,
    records: usize,
    log: Logger,
    stop: KillSwitch,
}

impl Handler<RemoveRecords> for DnsActor {
    type Result = ();

    fn handle(&mut self, msg: RemoveRecords, _: &mut Context<Self>) {
        let mut served = self.served();
        let n = served.zones.remove(&msg.run_id);
        served.logs.remove(&msg.run_id);
        drop(served);
        if n > 0 {
            debug!(self.log, "dns records removed"; "run_id" => %msg.run_id, "names" => n);
        }
    }
}

impl Handler<LocalAddr> for DnsActor {
    type Result = Option<SocketAddr>;

    fn handle(&mut self, _: LocalAddr, _: &mut Context<Self>) -> Option<SocketAddr> {
        self.server.as_ref().map(|_| self.addr)
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
        let runs = self
            .served
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .zones
            .runs();
        warn!(self.log, "dns server ended unexpectedly after {}: {why}; restarting it on {}", format_duration(lived), self.addr;
            "runs" => runs);
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
            warn!(
                self.log,
                "{e}: trying again in {}",
                format_duration(self.restart_delay)
            );
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

/// The actor on loopback, on a free port: no privileges needed, so these run everywhere.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::plan::{RunId, TestName};
    use crate::sys::script::KillSwitch;
    use actix::Addr;
    use hickory_server::proto::op::{Edns, Message as DnsMessage, Query, ResponseCode};
    use hickory_server::proto::rr::rdata::{A, NAPTR, SRV};
    use hickory_server::proto::rr::{Name, RData, Record, RecordType};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn log() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    fn loopback() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn run(id: &str) -> RunId {
        RunId(id.into())
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

    fn query(owner: &str, t: RecordType) -> DnsMessage {
        let mut q = DnsMessage::query();
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(name(owner), t));
        q
    }

    async fn ask_udp(at: SocketAddr, owner: &str, t: RecordType) -> DnsMessage {
        let q = query(owner, t);
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.send_to(&q.to_vec().unwrap(), at).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no UDP answer for {owner} {t}"))
            .unwrap();
        let m = DnsMessage::from_vec(&buf[..n]).unwrap();
        assert_eq!(m.metadata.id, q.metadata.id);
        m
    }

    async fn ask_tcp(at: SocketAddr, owner: &str, t: RecordType) -> DnsMessage {
        let q = query(owner, t);
        let bytes = q.to_vec().unwrap();
        let work = async {
            let mut s = tokio::net::TcpStream::connect(at).await.unwrap();
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

    /// A negative authoritative answer: `code`, AA, no answer, the SOA of `domain` in the
    /// authority section.
    fn negative(m: &DnsMessage, code: ResponseCode, domain: &str) {
        assert_eq!(m.metadata.response_code, code, "{m:?}");
        assert!(m.metadata.authoritative, "{m:?}");
        assert!(!m.metadata.recursion_available, "{m:?}");
        assert!(m.answers.is_empty(), "{m:?}");
        assert_eq!(m.authorities.len(), 1, "{m:?}");
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA, "{m:?}");
        assert_eq!(m.authorities[0].name, name(domain), "{m:?}");
    }

    fn refused(m: &DnsMessage) {
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{m:?}");
        assert!(!m.metadata.authoritative, "{m:?}");
        assert!(!m.metadata.recursion_available, "{m:?}");
        assert!(m.answers.is_empty() && m.authorities.is_empty(), "{m:?}");
    }

    async fn add(
        dns: &Addr<DnsActor>,
        id: &str,
        t: &str,
        records: Vec<Record>,
    ) -> Result<(), DnsError> {
        dns.send(AddRecords {
            run_id: run(id),
            test: TestName(t.into()),
            zone: RunZone::new(records),
            log: log(),
            stop: KillSwitch::new(),
        })
        .await
        .unwrap()
    }

    async fn served_at(dns: &Addr<DnsActor>) -> SocketAddr {
        dns.send(LocalAddr).await.unwrap().expect("bound")
    }

    fn example() -> Vec<Record> {
        vec![
            a("ep1.example.com.", [10, 0, 0, 5]),
            srv("_sip._udp.example.com.", 5060, "ep1.example.com."),
        ]
    }

    #[actix_rt::test]
    async fn answers_over_udp_and_tcp_as_an_authority() {
        let dns = DnsActor::new(loopback(), log()).start();
        assert_eq!(dns.send(LocalAddr).await.unwrap(), None);
        add(&dns, "abcdef", "call-0000", example()).await.unwrap();
        let at = served_at(&dns).await;
        assert!(at.ip().is_loopback() && at.port() != 0, "{at}");
        for tcp in [false, true] {
            let ask = |owner: &'static str, t| async move {
                if tcp {
                    ask_tcp(at, owner, t).await
                } else {
                    ask_udp(at, owner, t).await
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
            // NODATA and NXDOMAIN under the served domain, with its SOA.
            let m = ask("ep1.example.com.", RecordType::AAAA).await;
            negative(&m, ResponseCode::NoError, "example.com.");
            let m = ask("absent.example.com.", RecordType::A).await;
            negative(&m, ResponseCode::NXDomain, "example.com.");
            // Outside: REFUSED, also the parent domain and the root.
            for owner in ["example.org.", "com.", "."] {
                refused(&ask(owner, RecordType::A).await);
            }
        }
        // EDNS in, EDNS out.
        let mut q = query("ep1.example.com.", RecordType::A);
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        q.set_edns(edns);
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.send_to(&q.to_vec().unwrap(), at).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = sock.recv(&mut buf).await.unwrap();
        let m = DnsMessage::from_vec(&buf[..n]).unwrap();
        assert_eq!(authoritative(&m).len(), 1);
        assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(1232));
        dns.send(Shutdown).await.unwrap().unwrap();
    }

    /// Every type a `dns.txt` may hold (SPF is served as TXT) goes over the wire and comes
    /// back as it was given: DNSKEY and RRSIG as the opaque data `dns.txt` makes of them.
    #[actix_rt::test]
    async fn every_record_type_is_served_as_given() {
        use hickory_server::proto::rr::rdata::{AAAA, CAA, CNAME, MX, NS, NULL, PTR, SOA, TXT};
        let mut caa = CAA::new_issue(false, None, Vec::new());
        caa.tag = "issue".into();
        caa.value = b"ca.example.net".to_vec();
        let opaque = |code, wire: &[u8]| RData::Unknown {
            code,
            rdata: NULL::with(wire.to_vec()),
        };
        // RRSIG: covered A, algorithm 13, 2 labels, TTL 300, two times, key tag, signer, sig.
        let mut rrsig = vec![0, 1, 13, 2, 0, 0, 1, 44, 0x70, 0xdb, 0xd8, 0x80];
        rrsig.extend([0x65, 0x92, 0x00, 0x80, 0x10, 0x92]);
        rrsig.extend(b"\x07example\x03com\x00\x01\x02");
        let given: Vec<(&str, RecordType, RData)> = vec![
            (
                "ep1.t.example.com.",
                RecordType::A,
                RData::A(A(Ipv4Addr::new(10, 0, 0, 5))),
            ),
            (
                "ep1.t.example.com.",
                RecordType::AAAA,
                RData::AAAA(AAAA("2001:db8::5".parse().unwrap())),
            ),
            ("t.example.com.", RecordType::CAA, RData::CAA(caa)),
            (
                "sip.t.example.com.",
                RecordType::CNAME,
                RData::CNAME(CNAME(name("ep1.t.example.com."))),
            ),
            (
                "t.example.com.",
                RecordType::DNSKEY,
                opaque(RecordType::DNSKEY, &[1, 1, 3, 13, 0x8f, 0x1a]),
            ),
            (
                "t.example.com.",
                RecordType::MX,
                RData::MX(MX::new(20, name("mail.t.example.com."))),
            ),
            (
                "t.example.com.",
                RecordType::NAPTR,
                naptr("t.example.com.", 100, "SIP+D2U", "_sip._udp.t.example.com.").data,
            ),
            (
                "t.example.com.",
                RecordType::NS,
                RData::NS(NS(name("ns1.t.example.com."))),
            ),
            (
                "5.0.0.10.in-addr.arpa.",
                RecordType::PTR,
                RData::PTR(PTR(name("ep1.t.example.com."))),
            ),
            (
                "t.example.com.",
                RecordType::RRSIG,
                opaque(RecordType::RRSIG, &rrsig),
            ),
            (
                "t.example.com.",
                RecordType::SOA,
                RData::SOA(SOA::new(
                    name("ns1.t.example.com."),
                    name("admin.t.example.com."),
                    1,
                    3600,
                    600,
                    86400,
                    60,
                )),
            ),
            (
                "_sip._udp.t.example.com.",
                RecordType::SRV,
                RData::SRV(SRV::new(10, 60, 5060, name("ep1.t.example.com."))),
            ),
            (
                "t.example.com.",
                RecordType::TXT,
                RData::TXT(TXT::new(vec!["v=spf1 -all".into(), "second".into()])),
            ),
        ];
        let records = given
            .iter()
            .map(|(owner, _, data)| Record::from_rdata(name(owner), 60, data.clone()))
            .collect();
        let dns = DnsActor::new(loopback(), log()).start();
        add(&dns, "abcdef", "every-type", records).await.unwrap();
        let at = served_at(&dns).await;
        for (owner, t, data) in &given {
            let m = ask_udp(at, owner, *t).await;
            let answers = authoritative(&m);
            assert_eq!(answers.len(), 1, "{owner} {t}: {m:?}");
            assert_eq!(answers[0].record_type(), *t, "{owner} {t}");
            assert_eq!(&answers[0].data, data, "{owner} {t}");
        }
        dns.send(Shutdown).await.unwrap().unwrap();
    }

    /// An interrupted run's records are not added (the add gives up, a large one midway) and
    /// the run is told so; the server goes on serving the others.
    #[actix_rt::test]
    async fn an_interrupted_runs_records_are_not_added() {
        let dns = DnsActor::new(loopback(), log()).start();
        add(&dns, "abcdef", "call-0000", example()).await.unwrap();
        let at = served_at(&dns).await;
        let stop = KillSwitch::new();
        stop.interrupt();
        let many = (0..5_000u32)
            .map(|i| a(&format!("h{i}.example.net."), [10, 0, 0, 7]))
            .collect();
        let added = dns
            .send(AddRecords {
                run_id: run("ghijkl"),
                test: TestName("big".into()),
                zone: RunZone::new(many),
                log: log(),
                stop,
            })
            .await
            .unwrap();
        assert_eq!(added, Err(DnsError::Zone(ZoneError::Interrupted)));
        refused(&ask_udp(at, "h0.example.net.", RecordType::A).await);
        let m = ask_udp(at, "ep1.example.com.", RecordType::A).await;
        assert_eq!(authoritative(&m).len(), 1);
        dns.send(Shutdown).await.unwrap().unwrap();
    }

    /// A large zone goes in in steps: the server answers the other runs' questions while it is
    /// added, and then serves it whole.
    #[actix_rt::test]
    async fn questions_are_answered_while_a_large_zone_is_added() {
        use futures_util::FutureExt;
        let dns = DnsActor::new(loopback(), log()).start();
        add(&dns, "abcdef", "call-0000", example()).await.unwrap();
        let at = served_at(&dns).await;
        let names = ADD_STEP as u32 * 12 + 7;
        let many = (0..names)
            .map(|i| a(&format!("h{i}.example.net."), [10, 0, 0, 7]))
            .collect();
        let mut adding = Box::pin(dns.send(AddRecords {
            run_id: run("ghijkl"),
            test: TestName("big".into()),
            zone: RunZone::new(many),
            log: log(),
            stop: KillSwitch::new(),
        }));
        // Handed to the actor, which starts adding at its next turn.
        assert!(adding.as_mut().now_or_never().is_none());
        let m = ask_udp(at, "ep1.example.com.", RecordType::A).await;
        assert_eq!(authoritative(&m).len(), 1);
        assert!(
            adding.as_mut().now_or_never().is_none(),
            "answered only once the add was over"
        );
        assert_eq!(adding.await.unwrap(), Ok(()));
        for owner in ["h0.example.net.", &format!("h{}.example.net.", names - 1)] {
            assert_eq!(
                authoritative(&ask_udp(at, owner, RecordType::A).await).len(),
                1
            );
        }
        dns.send(Shutdown).await.unwrap().unwrap();
    }

    #[actix_rt::test]
    async fn removed_records_are_refused() {
        let dns = DnsActor::new(loopback(), log()).start();
        add(&dns, "abcdef", "call-0000", example()).await.unwrap();
        add(
            &dns,
            "ghijkl",
            "call-0001",
            vec![a("ep2.example.net.", [10, 0, 0, 6])],
        )
        .await
        .unwrap();
        let at = served_at(&dns).await;
        assert_eq!(
            authoritative(&ask_udp(at, "ep1.example.com.", RecordType::A).await).len(),
            1
        );
        dns.send(RemoveRecords {
            run_id: run("abcdef"),
        })
        .await
        .unwrap();
        refused(&ask_udp(at, "ep1.example.com.", RecordType::A).await);
        refused(&ask_udp(at, "_sip._udp.example.com.", RecordType::SRV).await);
        // The other run's are still served; removing twice is fine.
        assert_eq!(
            authoritative(&ask_udp(at, "ep2.example.net.", RecordType::A).await).len(),
            1
        );
        for id in ["abcdef", "ghijkl"] {
            dns.send(RemoveRecords { run_id: run(id) }).await.unwrap();
        }
        refused(&ask_udp(at, "ep2.example.net.", RecordType::A).await);
        dns.send(Shutdown).await.unwrap().unwrap();
    }

    #[actix_rt::test]
    async fn a_conflict_names_both_tests_and_adds_nothing() {
        let dns = DnsActor::new(loopback(), log()).start();
        add(&dns, "abcdef", "call-0000", example()).await.unwrap();
        let err = add(
            &dns,
            "ghijkl",
            "call-0001",
            vec![
                a("new.example.org.", [10, 0, 0, 7]),
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
        let at = served_at(&dns).await;
        refused(&ask_udp(at, "new.example.org.", RecordType::A).await);
        let m = ask_udp(at, "ep1.example.com.", RecordType::A).await;
        assert_eq!(authoritative(&m), &[a("ep1.example.com.", [10, 0, 0, 5])]);
        dns.send(Shutdown).await.unwrap().unwrap();
    }

    /// Issue 12.3: a port another process holds fails the add at once, naming the process
    /// (here the test process itself holds it); a later add tries again.
    #[actix_rt::test]
    async fn a_taken_port_names_its_holder_and_a_later_add_tries_again() {
        let me = format!("(pid {})", std::process::id());
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let dns = DnsActor::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), log()).start();
        let err = add(&dns, "abcdef", "call-0000", example())
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("dns server: UDP port {port} is taken by "))
                && msg.contains(&me),
            "{msg}"
        );
        drop(udp);
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let msg = add(&dns, "abcdef", "call-0000", example())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with(&format!("dns server: TCP port {port} is taken by "))
                && msg.contains(&me),
            "{msg}"
        );
        drop(tcp);
        // Nothing was added by the failures.
        add(&dns, "abcdef", "call-0000", example()).await.unwrap();
        let at = served_at(&dns).await;
        assert_eq!(at.port(), port);
        let m = ask_udp(at, "ep1.example.com.", RecordType::A).await;
        assert_eq!(authoritative(&m).len(), 1);
        dns.send(Shutdown).await.unwrap().unwrap();
    }

    #[test]
    fn bind_errors_read_well() {
        let taken = DnsError::bind("UDP", 53, &io::Error::from_raw_os_error(libc::EADDRINUSE));
        assert_eq!(
            taken.to_string(),
            "dns server: UDP port 53 is taken (Address already in use)"
        );
        assert!(!taken.is_fatal());
        let by = DnsError::PortTaken {
            proto: "UDP",
            port: 53,
            reason: "Address already in use".into(),
            by: vec![
                Holder {
                    pid: 4242,
                    command: "sipplauncher".into(),
                },
                Holder {
                    pid: 7,
                    command: "dnsmasq".into(),
                },
            ],
        };
        assert_eq!(
            by.to_string(),
            "dns server: UDP port 53 is taken by sipplauncher (pid 4242), dnsmasq (pid 7)"
        );
        let denied = DnsError::bind("TCP", 53, &io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(
            denied.to_string(),
            "dns server: cannot bind TCP port 53 (Permission denied)"
        );
        assert!(denied.is_fatal());
    }

    #[actix_rt::test]
    async fn the_server_is_restarted_with_its_records_after_a_failure() {
        let dns = DnsActor::new(loopback(), log()).start();
        add(&dns, "abcdef", "call-0000", example()).await.unwrap();
        let at = served_at(&dns).await;
        assert_eq!(dns.send(Generation).await.unwrap(), Some(1));
        assert_eq!(dns.send(CrashServer).await.unwrap(), Some(1));
        let start = Instant::now();
        while dns.send(Generation).await.unwrap() != Some(2) {
            assert!(start.elapsed() < Duration::from_secs(2), "not restarted");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // On the same port.
        assert_eq!(served_at(&dns).await, at);
        let m = ask_udp(at, "ep1.example.com.", RecordType::A).await;
        assert_eq!(authoritative(&m), &[a("ep1.example.com.", [10, 0, 0, 5])]);
        let m = ask_tcp(at, "_sip._udp.example.com.", RecordType::SRV).await;
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
        let m = ask_udp(at, "ep1.example.com.", RecordType::A).await;
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
        assert_eq!(dns.send(LocalAddr).await.unwrap(), None);
        add(&dns, "ghijkl", "call-0001", example()).await.unwrap();
        assert_eq!(dns.send(Generation).await.unwrap(), Some(4));
        let m = ask_udp(at, "ep1.example.com.", RecordType::A).await;
        assert_eq!(authoritative(&m).len(), 1);
        dns.send(Shutdown).await.unwrap().unwrap();
    }

    #[actix_rt::test]
    async fn a_server_that_ran_well_is_restarted_at_once() {
        let mut actor = DnsActor::new(loopback(), log());
        actor.stable_uptime = Duration::ZERO;
        let dns = actor.start();
        add(&dns, "abcdef", "call-0000", example()).await.unwrap();
        let at = served_at(&dns).await;
        for generation in 1..=5 {
            assert_eq!(dns.send(CrashServer).await.unwrap(), Some(generation));
            let start = Instant::now();
            while dns.send(Generation).await.unwrap() != Some(generation + 1) {
                assert!(start.elapsed() < Duration::from_secs(2), "not restarted");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let m = ask_tcp(at, "ep1.example.com.", RecordType::A).await;
            assert_eq!(authoritative(&m).len(), 1);
        }
        dns.send(Shutdown).await.unwrap().unwrap();
    }

    /// What a SIP proxy does (RFC 3263): NAPTR for the domain, SRV for the chosen transport,
    /// then A for the target; a transport without SRV is NXDOMAIN, the fallback's cue.
    #[actix_rt::test]
    async fn a_naptr_srv_a_chain_resolves_like_a_sip_proxy() {
        let dns = DnsActor::new(loopback(), log()).start();
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
        let at = served_at(&dns).await;
        let m = ask_udp(at, "example.com.", RecordType::NAPTR).await;
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
        let m = ask_udp(at, &best.replacement.to_ascii(), RecordType::SRV).await;
        let RData::SRV(srv) = &authoritative(&m)[0].data else {
            panic!("{m:?}")
        };
        assert_eq!(srv.port, 5070);
        let m = ask_udp(at, &srv.target.to_ascii(), RecordType::A).await;
        assert_eq!(
            authoritative(&m)[0].data,
            RData::A(A(Ipv4Addr::new(10, 0, 0, 5)))
        );
        let m = ask_udp(at, "_sips._tcp.example.com.", RecordType::SRV).await;
        negative(&m, ResponseCode::NXDomain, "example.com.");
        dns.send(Shutdown).await.unwrap().unwrap();
    }

    #[actix_rt::test]
    async fn shutdown_frees_the_port_and_empty_records_bind_nothing() {
        let dns = DnsActor::new(loopback(), log()).start();
        add(&dns, "aaaaaa", "empty", vec![]).await.unwrap();
        assert_eq!(dns.send(Generation).await.unwrap(), None);
        add(&dns, "abcdef", "call-0000", example()).await.unwrap();
        assert_eq!(
            add(&dns, "abcdef", "call-0000", example()).await,
            Err(DnsError::Zone(ZoneError::AlreadyAdded(run("abcdef"))))
        );
        let at = served_at(&dns).await;
        dns.send(Shutdown).await.unwrap().unwrap();
        drop(std::net::UdpSocket::bind(at).unwrap());
        drop(std::net::TcpListener::bind(at).unwrap());
        assert_eq!(
            add(&dns, "ghijkl", "call-0001", example()).await,
            Err(DnsError::ShutDown)
        );
        // Twice is fine.
        dns.send(Shutdown).await.unwrap().unwrap();
    }

    /// The questions a run's records answer are told in its own log.
    #[actix_rt::test]
    async fn answered_questions_go_to_the_runs_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sipplauncher.log");
        let run_log = crate::sys::logging::test_logger(&log(), &path).unwrap();
        let dns = DnsActor::new(loopback(), log()).start();
        dns.send(AddRecords {
            run_id: run("abcdef"),
            test: TestName("call-0000".into()),
            zone: RunZone::new(example()),
            log: run_log,
            stop: KillSwitch::new(),
        })
        .await
        .unwrap()
        .unwrap();
        let at = served_at(&dns).await;
        ask_udp(at, "ep1.example.com.", RecordType::A).await;
        ask_udp(at, "nope.example.com.", RecordType::A).await;
        ask_udp(at, "example.org.", RecordType::A).await;
        dns.send(Shutdown).await.unwrap().unwrap();
        // Log lines are written by the log thread: wait for them.
        crate::sys::logging::flushed().await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("dns: ep1.example.com. A: 1 records"),
            "{text}"
        );
        assert!(
            text.contains("dns: nope.example.com. A: NXDOMAIN"),
            "{text}"
        );
        assert!(!text.contains("example.org"), "{text}");
    }

    /// `cargo test -p sipplauncher-actors --lib dns::tests::timing -- --ignored --nocapture`
    #[actix_rt::test]
    #[ignore = "a measurement, not a check"]
    async fn timing_add_records() {
        fn median(mut v: Vec<Duration>) -> Duration {
            v.sort();
            v[v.len() / 2]
        }
        let mut first = Vec::new();
        for _ in 0..20 {
            let dns = DnsActor::new(loopback(), log()).start();
            let t = Instant::now();
            add(&dns, "abcdef", "call-0000", example()).await.unwrap();
            first.push(t.elapsed());
            dns.send(Shutdown).await.unwrap().unwrap();
        }
        let dns = DnsActor::new(loopback(), log()).start();
        add(
            &dns,
            "zzzzzz",
            "up",
            vec![a("up.example.com.", [10, 0, 0, 1])],
        )
        .await
        .unwrap();
        let at = served_at(&dns).await;
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
            ask_udp(at, "ep1.example.com.", RecordType::A).await;
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
    }
}
