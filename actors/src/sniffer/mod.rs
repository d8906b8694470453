//! SnifferActor: one packet capture for the whole run, on every interface at once, that files
//! each packet to the test runs it is from or to and writes each run's pcap (SPEC §10).
//!
//! ```text
//!  TestActor ──Register──▶ SnifferActor ──Command──▶ capture thread ◀── AF_PACKET socket
//!            ──Unregister─▶  (actix)    ◀─oneshot──  (its own OS       (all interfaces,
//!                              │                      thread, poll)     cooked, SO_TIMESTAMPNS)
//!                              └─ spawn_blocking: sort by time, write sipp-<run_id>.pcap
//! ```
//!
//! - The socket is `socket(AF_PACKET, SOCK_DGRAM, ETH_P_ALL)`, bound to no interface: every
//!   interface. Each packet comes cooked (from the network header on) with its `sockaddr_ll`,
//!   from which a Linux cooked-mode header is built (pcap link type `LINUX_SLL`, 113). The
//!   outgoing copy of a loopback packet is skipped (its incoming copy is kept), so a packet on
//!   `lo` is filed once, as libpcap's "any" device does.
//! - Timestamps are the kernel's (`SO_TIMESTAMPNS`: when the packet was received or handed to
//!   the driver), not the time we read it; the clock is read only when the kernel gave none.
//! - A packet is filed to every registered run one of whose addresses is its IPv4 source or
//!   destination (through 802.1Q/802.1ad tags), or the sender or target IP of an ARP packet.
//! - The capture thread never blocks on anything but `poll` on the socket and an eventfd; the
//!   actor writes a command to a channel and bumps the eventfd, so a command is seen at once
//!   even when no packet flows. Replies come back on tokio oneshots: no handler blocks.
//! - [`Register`] is answered once the thread has the registration: every packet read after
//!   that is filed. [`Unregister`] makes the thread first drain what the kernel holds in the
//!   socket (non-blocking reads until EAGAIN; under a flood, no more packets than the socket
//!   can hold), then hand over the run's packets; the pcap is written on the blocking pool, so
//!   the capture of other runs does not wait for the disk. No sleep anywhere.
//! - A run's packets are held in memory up to [`SPILL_BYTES`]; then that chunk goes to the
//!   run's pcap file from the capture thread (sorted by time within the chunk), so that a long
//!   or busy test costs a bounded amount of memory.
//! - A classic BPF filter on the socket, rebuilt once per batch of Registers and Unregisters
//!   (the commands waiting when the thread wakes; a group of tests starts and ends together),
//!   keeps the kernel from queueing what no run wants: with no run registered nothing is read
//!   at all; loopback's outgoing copies never reach user space (half the work on `lo`). A
//!   Register is answered once the filter that lets its packets through is on.
//! - The kernel's drop counter (`PACKET_STATISTICS`) is read at every Register and Unregister;
//!   drops are charged to every run registered at that moment ([`PcapStats::dropped`]).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, IoSliceMut, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::{Actor, Context, Handler, ResponseFuture};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{
    recv, recvmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned, LinkAddr,
    MsgFlags, SockFlag, SockProtocol, SockType,
};
use nix::sys::time::TimeSpec;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};
use slog::{debug, error, warn, Logger};
use tokio::sync::oneshot;

use crate::core::plan::RunId;
use crate::messages::{Register, Shutdown, ShutdownError, Unregister};
use crate::net::pool::prefix_mask;

/// The longest packet kept, Linux cooked header included (libpcap's default snap length).
pub const SNAPLEN: u32 = 262_144;
/// The Linux cooked-mode header (`LINUX_SLL`) put in front of each packet.
pub const SLL_HEADER_LEN: usize = 16;
/// The socket's receive buffer asked for: room for ~40k small packets while the thread is
/// busy (SO_RCVBUFFORCE; SO_RCVBUF, capped by `net.core.rmem_max`, without CAP_NET_ADMIN).
pub const RECEIVE_BUFFER: usize = 32 << 20;
/// Packets read in a row before the thread looks at its commands again.
const BATCH: usize = 256;
/// A run's packets held in memory before they go to its pcap file (sorted by time within each
/// such chunk), so that a long or busy test does not grow the process without bound.
const SPILL_BYTES: usize = 8 << 20;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
/// `sll_pkttype` of a packet this host sent (linux/if_packet.h).
const PACKET_OUTGOING: u8 = 4;
/// Beyond this many addresses registered at once, the kernel filter lets every IPv4 packet
/// through (each address costs 4 instructions of the 4096 a classic BPF program may have).
const FILTER_MAX_ADDRS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SniffError {
    /// The capture socket was refused: not root (no CAP_NET_RAW).
    #[error("capture: Operation not permitted (run as root, use --no-pcap, or --dry-run)")]
    NotPermitted,
    /// The capture socket (or its thread) could not be made.
    #[error("capture: {0}")]
    Socket(String),
    #[error("capture of run {0} is already on")]
    AlreadyRegistered(RunId),
    #[error("no capture for run {0}")]
    UnknownRun(RunId),
    /// The pcap file could not be written.
    #[error("write {path}: {reason}")]
    Write { path: String, reason: String },
    /// The capture thread has ended ([`Shutdown`], or it failed: see the log).
    #[error("capture: stopped")]
    Stopped,
}

/// What [`Unregister`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PcapStats {
    /// Packets in the pcap.
    pub packets: u64,
    /// Packets the kernel dropped (for any test: the socket is shared) while this run was
    /// registered; non-zero means the pcap may miss some.
    pub dropped: u64,
}

/// Where the tests' addresses come from: the DUT network. With a scope the kernel filter keeps
/// the packets from or to any address of the network but the DUT's and this host's own, and so
/// stays as it is while the runs come and go (setting a filter at every Register and
/// Unregister was a few % of the tool's CPU per test at `--group 50`); user space files each
/// packet to the runs of its addresses as without one. A run's address outside the scope gets
/// its own test in the filter. A network busy with others' traffic makes the capture give the
/// scope up (see [`Strays`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    network: Ipv4Addr,
    prefix: u8,
    /// Addresses of the network that are never a test's (sorted): the DUT and this host's
    /// own, not those of a `sipp-` link (another run's addresses may be ours later).
    exclude: Vec<Ipv4Addr>,
}

impl Scope {
    /// The network `dut/prefix`, without the DUT and the addresses this network namespace has
    /// in it now on links that are not `sipp-` links (one getifaddrs).
    pub fn of_network(dut: Ipv4Addr, prefix: u8) -> Scope {
        let mut exclude = vec![dut];
        if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
            for ifa in addrs {
                let Some(a) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) else {
                    continue;
                };
                if !ifa
                    .interface_name
                    .starts_with(crate::net::netlink::LINK_PREFIX)
                {
                    exclude.push(a.ip());
                }
            }
        }
        Scope::new(dut, prefix, exclude)
    }

    fn new(dut: Ipv4Addr, prefix: u8, exclude: Vec<Ipv4Addr>) -> Scope {
        let mut scope = Scope {
            network: Ipv4Addr::from(u32::from(dut) & prefix_mask(prefix)),
            prefix: prefix.min(32),
            exclude: Vec::new(),
        };
        let mut exclude: Vec<Ipv4Addr> =
            exclude.into_iter().filter(|a| scope.contains(*a)).collect();
        exclude.sort();
        exclude.dedup();
        scope.exclude = exclude;
        scope
    }

    fn mask(&self) -> u32 {
        prefix_mask(self.prefix)
    }

    fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.network)
    }
}

/// The pcap file name of a run, in its run folder (SPEC §6).
pub fn pcap_name(run: &RunId) -> String {
    format!("sipp-{run}.pcap")
}

/// One captured packet: a cooked-mode header and the packet from its network header on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Packet {
    /// Since the Unix epoch.
    ts: Duration,
    /// The length on the wire (header included); more than `data.len()` when cut at
    /// [`SNAPLEN`].
    orig_len: u32,
    data: Vec<u8>,
}

/// The link-layer facts of a packet, from its `sockaddr_ll`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cooked {
    pkttype: u8,
    hatype: u16,
    halen: u8,
    addr: [u8; 8],
    /// Host order (the ethertype).
    protocol: u16,
}

impl Cooked {
    fn from_sockaddr(ll: &libc::sockaddr_ll) -> Self {
        Cooked {
            pkttype: ll.sll_pkttype,
            hatype: ll.sll_hatype,
            halen: ll.sll_halen,
            addr: ll.sll_addr,
            protocol: u16::from_be(ll.sll_protocol),
        }
    }

    /// The copy a loopback device makes of what it sends: its received copy follows.
    fn is_loopback_outgoing(&self) -> bool {
        self.hatype == libc::ARPHRD_LOOPBACK && self.pkttype == PACKET_OUTGOING
    }

    /// The LINUX_SLL header: packet type, ARPHRD type, address length, address (8 bytes,
    /// zero-padded), protocol; all big-endian.
    fn sll_header(&self) -> [u8; SLL_HEADER_LEN] {
        let mut h = [0u8; SLL_HEADER_LEN];
        h[0..2].copy_from_slice(&u16::from(self.pkttype).to_be_bytes());
        h[2..4].copy_from_slice(&self.hatype.to_be_bytes());
        h[4..6].copy_from_slice(&u16::from(self.halen).to_be_bytes());
        let n = usize::from(self.halen).min(8);
        h[6..6 + n].copy_from_slice(&self.addr[..n]);
        h[14..16].copy_from_slice(&self.protocol.to_be_bytes());
        h
    }
}

/// The two IPv4 addresses a cooked packet is between: source and destination of an IPv4
/// packet, sender and target of an ARP packet for IPv4; through VLAN tags.
fn endpoints(mut protocol: u16, mut p: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let ip = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    // At most two tags (802.1ad outer, 802.1Q inner) when the driver left them in.
    for _ in 0..3 {
        match protocol {
            ETH_P_IP => {
                if p.len() < 20 || p[0] >> 4 != 4 {
                    return None;
                }
                return Some((ip(&p[12..16]), ip(&p[16..20])));
            }
            ETH_P_ARP => {
                // htype(2) ptype(2) hlen(1) plen(1) oper(2) sha spa tha tpa
                if p.len() < 8 || u16::from_be_bytes([p[2], p[3]]) != ETH_P_IP || p[5] != 4 {
                    return None;
                }
                let hlen = usize::from(p[4]);
                let spa = 8 + hlen;
                let tpa = spa + 4 + hlen;
                if p.len() < tpa + 4 {
                    return None;
                }
                return Some((ip(&p[spa..spa + 4]), ip(&p[tpa..tpa + 4])));
            }
            ETH_P_8021Q | ETH_P_8021AD => {
                if p.len() < 4 {
                    return None;
                }
                protocol = u16::from_be_bytes([p[2], p[3]]);
                p = &p[4..];
            }
            _ => return None,
        }
    }
    None
}

/// A pcap file being written.
type PcapOut = PcapWriter<BufWriter<std::fs::File>>;

/// A run being captured.
struct Registration {
    run_id: RunId,
    addrs: Vec<Ipv4Addr>,
    pcap: PathBuf,
    /// Packets not yet in the file, and their size.
    packets: Vec<Packet>,
    bytes: usize,
    /// The pcap file, once a chunk went to it; the packets written so far.
    out: Option<PcapOut>,
    written: u64,
    /// A chunk could not be written: the run's pcap has failed; later packets are dropped.
    failed: Option<SniffError>,
    dropped: u64,
}

impl Registration {
    /// Writes the packets held to the pcap file (made at the first chunk).
    fn spill(&mut self) {
        let mut packets = std::mem::take(&mut self.packets);
        self.bytes = 0;
        if self.failed.is_some() {
            return;
        }
        let out = match self.out.take() {
            Some(out) => Ok(out),
            None => open_pcap(&self.pcap),
        };
        match out.and_then(|mut out| append(&mut out, &self.pcap, &mut packets).map(|()| out)) {
            Ok(out) => {
                self.written += packets.len() as u64;
                self.out = Some(out);
            }
            Err(e) => self.failed = Some(e),
        }
    }
}

/// What the thread hands over on [`Unregister`]: what is left to write.
struct Taken {
    pcap: PathBuf,
    packets: Vec<Packet>,
    out: Option<PcapOut>,
    written: u64,
    failed: Option<SniffError>,
    dropped: u64,
}

impl Taken {
    /// Packets in the pcap once it is finished.
    fn total(&self) -> u64 {
        self.written + self.packets.len() as u64
    }

    /// Writes the rest and closes the file (blocking: on the blocking pool).
    fn finish(self) -> Result<(), SniffError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        finish_pcap(&self.pcap, self.out, self.packets)
    }
}

/// The registrations and the filing of packets to them (no socket: testable as it is).
struct Filer {
    regs: Vec<Registration>,
    /// Address → indexes in `regs`; rebuilt on every change (a few addresses a run).
    by_addr: HashMap<Ipv4Addr, Vec<usize>>,
    /// Scratch for the runs one packet goes to.
    targets: Vec<usize>,
    /// [`SPILL_BYTES`] (smaller in tests).
    spill_at: usize,
}

impl Default for Filer {
    fn default() -> Self {
        Filer {
            regs: Vec::new(),
            by_addr: HashMap::new(),
            targets: Vec::new(),
            spill_at: SPILL_BYTES,
        }
    }
}

impl Filer {
    fn reindex(&mut self) {
        self.by_addr.clear();
        for (i, r) in self.regs.iter().enumerate() {
            for a in &r.addrs {
                let runs = self.by_addr.entry(*a).or_default();
                if !runs.contains(&i) {
                    runs.push(i);
                }
            }
        }
    }

    /// Every address registered, once each.
    fn addresses(&self) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = self.by_addr.keys().copied().collect();
        v.sort();
        v
    }

    fn register(
        &mut self,
        run_id: RunId,
        addrs: Vec<Ipv4Addr>,
        pcap: PathBuf,
    ) -> Result<(), SniffError> {
        if self.regs.iter().any(|r| r.run_id == run_id) {
            return Err(SniffError::AlreadyRegistered(run_id));
        }
        self.regs.push(Registration {
            run_id,
            addrs,
            pcap,
            packets: Vec::new(),
            bytes: 0,
            out: None,
            written: 0,
            failed: None,
            dropped: 0,
        });
        self.reindex();
        Ok(())
    }

    fn unregister(&mut self, run_id: &RunId) -> Result<Taken, SniffError> {
        let i = self
            .regs
            .iter()
            .position(|r| &r.run_id == run_id)
            .ok_or_else(|| SniffError::UnknownRun(run_id.clone()))?;
        let r = self.regs.remove(i);
        self.reindex();
        Ok(Taken {
            pcap: r.pcap,
            packets: r.packets,
            out: r.out,
            written: r.written,
            failed: r.failed,
            dropped: r.dropped,
        })
    }

    /// Charges kernel drops to every run registered now.
    fn charge_drops(&mut self, dropped: u64) {
        for r in &mut self.regs {
            r.dropped += dropped;
        }
    }

    /// Files one packet (`data` cut at the snap length, `len` its real length) to the runs it
    /// is from or to; returns to how many.
    fn file(&mut self, ts: Duration, cooked: &Cooked, data: &[u8], len: usize) -> usize {
        if self.regs.is_empty() {
            return 0;
        }
        let Some((a, b)) = endpoints(cooked.protocol, data) else {
            return 0;
        };
        self.targets.clear();
        for addr in [a, b] {
            if let Some(runs) = self.by_addr.get(&addr) {
                for &i in runs {
                    if !self.targets.contains(&i) {
                        self.targets.push(i);
                    }
                }
            }
        }
        if self.targets.is_empty() {
            return 0;
        }
        let header = cooked.sll_header();
        let orig_len = u32::try_from(SLL_HEADER_LEN + len).unwrap_or(u32::MAX);
        for &i in &self.targets {
            let mut bytes = Vec::with_capacity(SLL_HEADER_LEN + data.len());
            bytes.extend_from_slice(&header);
            bytes.extend_from_slice(data);
            let r = &mut self.regs[i];
            r.bytes += bytes.len();
            r.packets.push(Packet {
                ts,
                orig_len,
                data: bytes,
            });
            if r.bytes >= self.spill_at {
                // Blocks this thread for the write of one chunk (to the page cache, as a
                // rule); the socket's buffer holds what comes meanwhile.
                r.spill();
            }
        }
        self.targets.len()
    }
}

/// Commands from the actor to the capture thread.
enum Command {
    Register {
        run_id: RunId,
        addrs: Vec<Ipv4Addr>,
        pcap: PathBuf,
        reply: oneshot::Sender<Result<(), SniffError>>,
    },
    Unregister {
        run_id: RunId,
        reply: oneshot::Sender<Result<Taken, SniffError>>,
    },
    Stop {
        reply: Option<oneshot::Sender<()>>,
    },
}

/// What one batch of commands changed: whether the filter is to be set again, and the
/// Registers to answer once it is.
#[derive(Default)]
struct Batch {
    changed: bool,
    registered: Vec<(RunId, oneshot::Sender<Result<(), SniffError>>)>,
}

/// The thread's side: the socket, its buffers and the registrations.
struct Capture {
    sock: OwnedFd,
    /// One packet, cut at the snap length.
    buf: Vec<u8>,
    /// Room for the SCM_TIMESTAMPNS control message.
    cmsg: Vec<u8>,
    /// The most packets the socket can hold: a drain reads no more.
    drain_max: usize,
    filer: Filer,
    /// Until the network turns out busy with others' traffic (see [`Strays`]).
    scope: Option<Scope>,
    /// The program on the socket now (a new one the same is not set again).
    attached: Vec<(u16, u8, u8, u32)>,
    strays: Strays,
    log: Logger,
}

/// The IPv4 packets a [`Scope`] lets through that are no run's: this host's traffic with other
/// machines of the DUT network. Past [`STRAYS_MAX`] in [`STRAYS_WINDOW`], the capture gives the
/// scope up and filters by the runs' addresses (set at each Register and Unregister, as
/// without a scope): a busy network must not cost the capture its CPU, nor fill the socket's
/// buffer (drops are charged to every run).
#[derive(Debug)]
struct Strays {
    count: u32,
    since: std::time::Instant,
    max: u32,
    window: Duration,
}

impl Default for Strays {
    fn default() -> Self {
        Strays {
            count: 0,
            since: std::time::Instant::now(),
            max: STRAYS_MAX,
            window: STRAYS_WINDOW,
        }
    }
}

impl Strays {
    /// Counts one; `true` when there were too many within the window.
    fn one_more(&mut self) -> bool {
        if self.since.elapsed() > self.window {
            self.count = 0;
            self.since = std::time::Instant::now();
        }
        self.count += 1;
        self.count > self.max
    }
}

/// See [`Strays`].
const STRAYS_MAX: u32 = 1000;
const STRAYS_WINDOW: Duration = Duration::from_secs(1);

impl Capture {
    fn new(sock: OwnedFd, scope: Option<Scope>, log: Logger) -> Self {
        // The kernel charges each packet at least a few hundred bytes against the receive
        // buffer (SO_RCVBUF reads back the doubled, charged size).
        let drain_max = nix::sys::socket::getsockopt(&sock, sockopt::RcvBuf)
            .map_or(RECEIVE_BUFFER, |b| b.max(RECEIVE_BUFFER))
            / 256;
        Capture {
            drain_max,
            sock,
            buf: vec![0; SNAPLEN as usize - SLL_HEADER_LEN],
            cmsg: nix::cmsg_space!(TimeSpec),
            filer: Filer::default(),
            scope,
            // What open_socket set.
            attached: shape(&filter_program(&[])),
            strays: Strays::default(),
            log,
        }
    }

    /// Reads one packet without waiting and files it; `Ok(false)` when the socket is empty.
    fn read_one(&mut self) -> Result<bool, Errno> {
        let (len, addr, ts) = loop {
            let mut iov = [IoSliceMut::new(&mut self.buf)];
            let res = recvmsg::<LinkAddr>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut self.cmsg),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
            );
            match res {
                Ok(msg) => {
                    let ts = msg.cmsgs().ok().and_then(|mut it| {
                        it.find_map(|c| match c {
                            ControlMessageOwned::ScmTimestampns(t) => Some(timespec(t)),
                            _ => None,
                        })
                    });
                    // With MSG_TRUNC, `bytes` is the packet's real length.
                    break (msg.bytes, msg.address, ts);
                }
                Err(Errno::EAGAIN) => return Ok(false),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        };
        let ts = ts.unwrap_or_else(now);
        let Some(addr) = addr else {
            return Ok(true);
        };
        let cooked = Cooked::from_sockaddr(addr.as_ref());
        if !cooked.is_loopback_outgoing() {
            let caught = len.min(self.buf.len());
            let filed = self.filer.file(ts, &cooked, &self.buf[..caught], len);
            if filed == 0
                && cooked.protocol == ETH_P_IP
                && self.scope.is_some()
                && self.strays.one_more()
            {
                self.give_up_scope();
            }
        }
        Ok(true)
    }

    /// From now on, the filter holds the runs' addresses (see [`Strays`]).
    fn give_up_scope(&mut self) {
        self.scope = None;
        warn!(
            self.log,
            "capture: more than {} packets a second of others' traffic in the DUT network: \
             the kernel filter now lists the tests' addresses",
            self.strays.max
        );
        if let Err(e) = self.refilter() {
            warn!(self.log, "{e}");
        }
    }

    /// Reads up to `max` packets, or until the socket is empty; returns how many.
    fn read_batch(&mut self, max: usize) -> usize {
        for n in 0..max {
            match self.read_one() {
                Ok(true) => {}
                Ok(false) => return n,
                Err(e) => {
                    warn!(self.log, "capture: read: {e}");
                    return n;
                }
            }
        }
        max
    }

    /// Reads what the kernel holds now: until the socket is empty. A flood that keeps it
    /// from emptying is cut off after as many packets as the socket can hold, so the drain
    /// ends, and ends without looking at any clock.
    fn drain(&mut self) {
        for _ in 0..self.drain_max {
            match self.read_one() {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    warn!(self.log, "capture: read: {e}");
                    return;
                }
            }
        }
        debug!(
            self.log,
            "capture: drain cut off after {} packets", self.drain_max
        );
    }

    /// The drops the kernel counted since the last call, charged to the runs registered now.
    fn take_drops(&mut self) {
        match packet_drops(&self.sock) {
            Ok(0) => {}
            Ok(n) => {
                warn!(self.log, "capture: the kernel dropped {n} packets"; "runs" => self.filer.regs.len());
                self.filer.charge_drops(n);
            }
            Err(e) => debug!(self.log, "capture: PACKET_STATISTICS: {e}"),
        }
    }

    /// Sets the kernel filter to the addresses registered now. Should the kernel refuse it,
    /// the short filter that keeps every IPv4 packet is tried; if that too is refused, the
    /// socket keeps its former filter and the error is returned.
    fn refilter(&mut self) -> Result<(), SniffError> {
        let addrs = self.filer.addresses();
        let mut program = match &self.scope {
            Some(scope) if !addrs.is_empty() => scoped_program(scope, &addrs),
            _ => filter_program(&addrs),
        };
        let wanted = shape(&program);
        if wanted == self.attached {
            return Ok(());
        }
        let Err(e) = attach_filter(&self.sock, &mut program) else {
            self.attached = wanted;
            return Ok(());
        };
        warn!(
            self.log,
            "capture: set the kernel filter: {e}: every IPv4 packet is read"
        );
        let mut all = filter_program(&vec![Ipv4Addr::UNSPECIFIED; FILTER_MAX_ADDRS + 1]);
        attach_filter(&self.sock, &mut all)
            .map_err(|e| SniffError::Socket(format!("set the kernel filter: {}", e.desc())))?;
        self.attached = shape(&all);
        Ok(())
    }

    /// Handles one command of a batch; `false` to end the thread. The filter is set once for
    /// the whole batch ([`Capture::settle`]).
    fn command(&mut self, cmd: Command, batch: &mut Batch) -> bool {
        match cmd {
            Command::Register {
                run_id,
                addrs,
                pcap,
                reply,
            } => {
                // Drops before this run was registered are not its.
                self.take_drops();
                let id = run_id.clone();
                match self.filer.register(run_id, addrs, pcap) {
                    Ok(()) => {
                        batch.changed = true;
                        batch.registered.push((id, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Unregister { run_id, reply } => {
                self.drain();
                self.take_drops();
                let res = self.filer.unregister(&run_id);
                // Its addresses leave the filter at the end of the batch; their packets
                // meanwhile are nobody's and not filed.
                batch.changed |= res.is_ok();
                let _ = reply.send(res);
            }
            Command::Stop { reply } => {
                self.settle(std::mem::take(batch));
                if let Some(r) = reply {
                    let _ = r.send(());
                }
                return false;
            }
        }
        true
    }

    /// Sets the filter for what a batch of commands changed, then answers its Registers. A
    /// refused filter (see [`Capture::refilter`]) refuses the batch's registrations (the
    /// former filter stays, without their addresses); for Unregisters alone it is a warning.
    fn settle(&mut self, batch: Batch) {
        if !batch.changed {
            return;
        }
        let res = self.refilter();
        if let Err(e) = &res {
            if batch.registered.is_empty() {
                warn!(self.log, "{e}");
            }
            for (id, _) in &batch.registered {
                let _ = self.filer.unregister(id);
            }
        }
        for (_, reply) in batch.registered {
            let _ = reply.send(res.clone());
        }
    }

    fn run(mut self, commands: mpsc::Receiver<Command>, wake: Arc<EventFd>) {
        loop {
            let read = self.read_batch(BATCH);
            let mut batch = Batch::default();
            loop {
                match commands.try_recv() {
                    Ok(cmd) => {
                        if !self.command(cmd, &mut batch) {
                            return;
                        }
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        self.settle(batch);
                        return;
                    }
                }
            }
            self.settle(batch);
            if read == BATCH {
                // More is probably waiting: no need to ask poll.
                continue;
            }
            let mut fds = [
                PollFd::new(self.sock.as_fd(), PollFlags::POLLIN),
                PollFd::new(wake.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    error!(self.log, "capture: poll: {e}: the capture stops");
                    return;
                }
            }
            let woken = fds[1]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN));
            if woken {
                // Reset the counter before looking at the commands, so that none is missed.
                let _ = wake.read();
            }
        }
    }
}

fn timespec(t: TimeSpec) -> Duration {
    Duration::new(
        u64::try_from(t.tv_sec()).unwrap_or(0),
        u32::try_from(t.tv_nsec()).unwrap_or(0),
    )
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The classic BPF program the kernel runs on each packet before it queues it to the socket
/// (offset 0 is the network header: the socket is SOCK_DGRAM). It drops the outgoing copy of
/// loopback packets, keeps ARP and VLAN-tagged packets (user space looks inside), and keeps an
/// IPv4 packet only when its source or destination is in `addrs` (any IPv4 packet when there
/// are more than [`FILTER_MAX_ADDRS`]). With no address nothing is kept: no run, no work.
fn filter_program(addrs: &[Ipv4Addr]) -> Vec<libc::sock_filter> {
    if addrs.is_empty() {
        return vec![ret(0)];
    }
    let mut p = program_head();
    if addrs.len() > FILTER_MAX_ADDRS {
        p.push(ret(KEEP));
        return p;
    }
    // 12: source, then destination; each address: equal → the next instruction (keep).
    for offset in [12, 16] {
        p.push(ld_word(offset));
        push_any_of(&mut p, addrs);
    }
    p.push(ret(0));
    p
}

/// As [`filter_program`] for the runs registered now (`addrs`, not empty), under a [`Scope`]:
/// an IPv4 packet is kept when its source or destination is an address of the scope's network
/// other than those it excludes, or one of `addrs` outside the network. So the program changes
/// only when a run's address is outside the scope or is one the scope excludes.
/// `addrs` is sorted (as [`Filer::addresses`] gives them).
fn scoped_program(scope: &Scope, addrs: &[Ipv4Addr]) -> Vec<libc::sock_filter> {
    let outside: Vec<Ipv4Addr> = addrs
        .iter()
        .copied()
        .filter(|a| !scope.contains(*a))
        .collect();
    if outside.len() > FILTER_MAX_ADDRS {
        return filter_program(&outside);
    }
    // An address a run has is never excluded. Each exclusion jumps over the rest of its side;
    // jumps reach 255 instructions at most: past that many, none is excluded.
    let mut exclude: Vec<Ipv4Addr> = scope
        .exclude
        .iter()
        .copied()
        .filter(|e| addrs.binary_search(e).is_err())
        .collect();
    if exclude.len() > MAX_EXCLUDED {
        exclude.clear();
    }
    let mut p = program_head();
    for offset in [12, 16] {
        p.push(ld_word(offset));
        push_any_of(&mut p, &outside);
        for (i, e) in exclude.iter().enumerate() {
            // To the next side: over the exclusions left and the three of the network test.
            let over = u8::try_from(exclude.len() - 1 - i + 3).unwrap_or(u8::MAX);
            p.push(jeq(u32::from(*e), over, 0));
        }
        p.push(stmt(
            libc::BPF_ALU | libc::BPF_AND | libc::BPF_K,
            scope.mask(),
        ));
        p.push(jeq(u32::from(scope.network), 0, 1));
        p.push(ret(KEEP));
    }
    p.push(ret(0));
    p
}

/// Exclusions a scoped program holds at most (see [`scoped_program`]).
const MAX_EXCLUDED: usize = 200;
/// The filter's "keep the whole packet".
const KEEP: u32 = u32::MAX;

/// The start of every program but "keep nothing": outgoing loopback copies dropped, ARP kept,
/// VLAN kept, anything else but IPv4 dropped; IPv4 goes on at instruction 12.
fn program_head() -> Vec<libc::sock_filter> {
    // Ancillary data: the loads at SKF_AD_OFF + n read skb fields (negative offsets as u32).
    let ld_meta = |field: libc::c_int| ld_word((libc::SKF_AD_OFF + field) as u32);
    vec![
        /* 0 */ ld_meta(libc::SKF_AD_PKTTYPE),
        /* 1 */ jeq(u32::from(PACKET_OUTGOING), 0, 3),
        /* 2 */ ld_meta(libc::SKF_AD_HATYPE),
        /* 3 */ jeq(u32::from(libc::ARPHRD_LOOPBACK), 0, 1),
        /* 4 */ ret(0),
        /* 5 */ ld_meta(libc::SKF_AD_PROTOCOL), // host order
        /* 6 */ jeq(u32::from(ETH_P_IP), 5, 0), // to 12
        /* 7 */ jeq(u32::from(ETH_P_ARP), 3, 0), // to 11
        /* 8 */ jeq(u32::from(ETH_P_8021Q), 2, 0),
        /* 9 */ jeq(u32::from(ETH_P_8021AD), 1, 0),
        /* 10 */ ret(0),
        /* 11 */ ret(KEEP),
    ]
}

/// For the word loaded: each of `addrs` equal → keep, else on to what follows.
fn push_any_of(p: &mut Vec<libc::sock_filter>, addrs: &[Ipv4Addr]) {
    for a in addrs {
        p.push(jeq(u32::from(*a), 0, 1));
        p.push(ret(KEEP));
    }
}

fn op(code: u32) -> u16 {
    u16::try_from(code).unwrap_or(0)
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: op(code),
        jt: 0,
        jf: 0,
        k,
    }
}

fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K),
        jt,
        jf,
        k,
    }
}

fn ld_word(offset: u32) -> libc::sock_filter {
    stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset)
}

fn ret(k: u32) -> libc::sock_filter {
    stmt(libc::BPF_RET | libc::BPF_K, k)
}

/// A program as comparable values (`sock_filter` has no `PartialEq`).
fn shape(p: &[libc::sock_filter]) -> Vec<(u16, u8, u8, u32)> {
    p.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect()
}

/// Puts `program` on the socket in place of the one it had (atomically: no packet sees
/// neither).
fn attach_filter(sock: &OwnedFd, program: &mut [libc::sock_filter]) -> Result<(), Errno> {
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len()).map_err(|_| Errno::EINVAL)?,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `prog` is a struct sock_fprog whose `filter` points to `len` sock_filter
    // instructions that live until the call returns (the kernel copies them); the fd is a
    // socket we own.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// `getsockopt(SOL_PACKET, PACKET_STATISTICS)`: the drops since the last call (the kernel
/// resets its counters on each read).
fn packet_drops(sock: &OwnedFd) -> Result<u64, Errno> {
    let mut stats = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `stats` is a struct tpacket_stats (linux/if_packet.h) and `len` its size; the
    // kernel writes at most `len` bytes to it; the fd is a packet socket we own.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut stats as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(Errno::last());
    }
    Ok(u64::from(stats.tp_drops))
}

/// The capture socket: every interface, cooked, kernel timestamps, a large receive buffer.
fn open_socket(log: &Logger) -> Result<OwnedFd, SniffError> {
    let sock = socket(
        AddressFamily::Packet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::EthAll,
    )
    .map_err(|e| match e {
        Errno::EPERM | Errno::EACCES => SniffError::NotPermitted,
        e => SniffError::Socket(e.desc().to_string()),
    })?;
    if let Err(e) = setsockopt(&sock, sockopt::RcvBufForce, &RECEIVE_BUFFER) {
        debug!(
            log,
            "capture: SO_RCVBUFFORCE: {e}: SO_RCVBUF instead (capped by rmem_max)"
        );
        setsockopt(&sock, sockopt::RcvBuf, &RECEIVE_BUFFER)
            .map_err(|e| SniffError::Socket(format!("SO_RCVBUF: {}", e.desc())))?;
    }
    setsockopt(&sock, sockopt::ReceiveTimestampns, &true)
        .map_err(|e| SniffError::Socket(format!("SO_TIMESTAMPNS: {}", e.desc())))?;
    // Nothing is kept until a run registers.
    attach_filter(&sock, &mut filter_program(&[]))
        .map_err(|e| SniffError::Socket(format!("SO_ATTACH_FILTER: {}", e.desc())))?;
    // What was queued before the filter, and the counters, are not anyone's.
    let mut buf = [0u8; 1];
    while recv(
        sock.as_raw_fd(),
        &mut buf,
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
    )
    .is_ok()
    {}
    let _ = packet_drops(&sock);
    Ok(sock)
}

/// Makes (or empties) the pcap file `path` and writes its header: LINUX_SLL, nanosecond
/// timestamps. The final path component is not followed if it is a symlink (run folders live
/// under world-writable /var/tmp).
fn open_pcap(path: &Path) -> Result<PcapOut, SniffError> {
    let fail = |reason: String| SniffError::Write {
        path: path.display().to_string(),
        reason,
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| fail(e.to_string()))?;
    let header = PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: SNAPLEN,
        datalink: DataLink::LINUX_SLL,
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::native(),
    };
    PcapWriter::with_header(BufWriter::new(file), header).map_err(|e| fail(e.to_string()))
}

/// Appends `packets` to `out`, sorted by time (stable: equal stamps keep the order they were
/// read in).
fn append(out: &mut PcapOut, path: &Path, packets: &mut [Packet]) -> Result<(), SniffError> {
    packets.sort_by_key(|p| p.ts);
    for p in packets.iter() {
        out.write_packet(&PcapPacket::new(p.ts, p.orig_len, &p.data))
            .map_err(|e| SniffError::Write {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
    }
    Ok(())
}

/// Appends `packets` to the pcap file `out` (made now when `None`) and flushes it.
fn finish_pcap(
    path: &Path,
    out: Option<PcapOut>,
    mut packets: Vec<Packet>,
) -> Result<(), SniffError> {
    let fail = |reason: String| SniffError::Write {
        path: path.display().to_string(),
        reason,
    };
    let mut out = match out {
        Some(out) => out,
        None => open_pcap(path)?,
    };
    append(&mut out, path, &mut packets)?;
    out.into_writer()
        .into_inner()
        .map_err(|e| fail(e.error().to_string()))?
        .flush()
        .map_err(|e: io::Error| fail(e.to_string()))
}

/// Writes `packets` as a whole pcap file (see [`open_pcap`] and [`append`]).
#[cfg(test)]
fn write_pcap(path: &Path, packets: Vec<Packet>) -> Result<(), SniffError> {
    finish_pcap(path, None, packets)
}

/// The run's capture. Make it with [`SnifferActor::open`] at the start of a real run (not
/// with `--no-pcap` or `--dry-run`), then `start()` it like any actor.
pub struct SnifferActor {
    commands: mpsc::Sender<Command>,
    wake: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
    log: Logger,
}

impl SnifferActor {
    /// Opens the capture socket in the calling thread's network namespace and starts the
    /// capture thread. A missing privilege is [`SniffError::NotPermitted`], one line that
    /// says what to do. Blocks only for the socket calls and the thread's start.
    pub fn open(log: Logger, scope: Option<Scope>) -> Result<SnifferActor, SniffError> {
        let sock = open_socket(&log)?;
        let wake = Arc::new(
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(|e| SniffError::Socket(format!("eventfd: {}", e.desc())))?,
        );
        let (commands, rx) = mpsc::channel();
        let capture = Capture::new(sock, scope, log.clone());
        let thread_wake = wake.clone();
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || capture.run(rx, thread_wake))
            .map_err(|e| SniffError::Socket(format!("start the capture thread: {e}")))?;
        debug!(log, "capture started on every interface");
        Ok(SnifferActor {
            commands,
            wake,
            thread: Some(thread),
            log,
        })
    }

    /// Hands a command to the capture thread and wakes it.
    fn send(&self, cmd: Command) -> Result<(), SniffError> {
        self.commands.send(cmd).map_err(|_| SniffError::Stopped)?;
        self.wake
            .write(1)
            .map_err(|e| SniffError::Socket(format!("eventfd: {}", e.desc())))?;
        Ok(())
    }
}

impl Drop for SnifferActor {
    /// Without a [`Shutdown`] (the System went away): the thread is told to end, and
    /// [`crate::run`] waits for it (never joined here, on the actor thread).
    fn drop(&mut self) {
        let _ = self.send(Command::Stop { reply: None });
        if let Some(thread) = self.thread.take() {
            crate::sys::last_resort::adopt(thread);
        }
    }
}

impl Actor for SnifferActor {
    type Context = Context<Self>;
}

impl Handler<Register> for SnifferActor {
    type Result = ResponseFuture<Result<(), SniffError>>;

    fn handle(&mut self, msg: Register, _: &mut Context<Self>) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        let log = self.log.clone();
        debug!(log, "capture registered"; "run_id" => %msg.run_id, "addresses" => ?msg.addrs);
        let sent = self.send(Command::Register {
            run_id: msg.run_id,
            addrs: msg.addrs,
            pcap: msg.pcap,
            reply,
        });
        Box::pin(async move {
            sent?;
            answer.await.map_err(|_| SniffError::Stopped)?
        })
    }
}

impl Handler<Unregister> for SnifferActor {
    type Result = ResponseFuture<Result<PcapStats, SniffError>>;

    fn handle(&mut self, msg: Unregister, _: &mut Context<Self>) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        let log = self.log.clone();
        let run_id = msg.run_id.clone();
        let sent = self.send(Command::Unregister {
            run_id: msg.run_id,
            reply,
        });
        Box::pin(async move {
            sent?;
            let taken = answer.await.map_err(|_| SniffError::Stopped)??;
            let stats = PcapStats {
                packets: taken.total(),
                dropped: taken.dropped,
            };
            let path = taken.pcap.clone();
            tokio::task::spawn_blocking(move || taken.finish())
                .await
                .map_err(|e| SniffError::Write {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })??;
            debug!(log, "pcap written"; "run_id" => %run_id, "file" => %path.display(),
                "packets" => stats.packets, "dropped" => stats.dropped);
            Ok(stats)
        })
    }
}

impl Handler<Shutdown> for SnifferActor {
    type Result = ResponseFuture<Result<(), ShutdownError>>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        let sent = self.send(Command::Stop { reply: Some(reply) });
        let thread = self.thread.take();
        Box::pin(async move {
            // A thread that ended already (it failed: logged then) has nothing more to undo.
            if sent.is_ok() {
                let _ = answer.await;
            }
            // The thread has answered and returns: joining it is quick, but off this thread.
            if let Some(t) = thread {
                let joined = tokio::task::spawn_blocking(move || t.join()).await;
                if !matches!(joined, Ok(Ok(()))) {
                    return Err(SniffError::Socket("the capture thread panicked".into()).into());
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::netlink::testns;
    use actix::Addr;
    use std::net::UdpSocket;
    use std::time::Instant;

    fn log() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    fn lo(d: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 0, d)
    }

    async fn register(
        s: &Addr<SnifferActor>,
        id: &str,
        addrs: &[Ipv4Addr],
        pcap: &Path,
    ) -> Result<(), SniffError> {
        s.send(Register {
            run_id: RunId(id.into()),
            addrs: addrs.to_vec(),
            pcap: pcap.to_path_buf(),
        })
        .await
        .unwrap()
    }

    async fn unregister(s: &Addr<SnifferActor>, id: &str) -> Result<PcapStats, SniffError> {
        s.send(Unregister {
            run_id: RunId(id.into()),
        })
        .await
        .unwrap()
    }

    /// A packet read back from a pcap.
    #[derive(Debug)]
    struct Read {
        ts: Duration,
        orig_len: u32,
        data: Vec<u8>,
    }

    impl Read {
        fn pkttype(&self) -> u16 {
            u16::from_be_bytes([self.data[0], self.data[1]])
        }
        fn hatype(&self) -> u16 {
            u16::from_be_bytes([self.data[2], self.data[3]])
        }
        fn protocol(&self) -> u16 {
            u16::from_be_bytes([self.data[14], self.data[15]])
        }
        fn net(&self) -> &[u8] {
            &self.data[SLL_HEADER_LEN..]
        }
        fn endpoints(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
            endpoints(self.protocol(), self.net())
        }
        /// IPv4 protocol number (17 UDP, 1 ICMP).
        fn ip_proto(&self) -> Option<u8> {
            (self.protocol() == ETH_P_IP).then(|| self.net()[9])
        }
        /// The UDP payload.
        fn udp_payload(&self) -> Option<&[u8]> {
            if self.ip_proto() != Some(17) {
                return None;
            }
            let ihl = usize::from(self.net()[0] & 0xf) * 4;
            Some(&self.net()[ihl + 8..])
        }
        /// ARP operation (1 request, 2 reply).
        fn arp_op(&self) -> Option<u16> {
            (self.protocol() == ETH_P_ARP)
                .then(|| u16::from_be_bytes([self.net()[6], self.net()[7]]))
        }
    }

    fn read_pcap(path: &Path) -> (PcapHeader, Vec<Read>) {
        let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
        let header = r.header();
        let mut out = Vec::new();
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            out.push(Read {
                ts: p.timestamp,
                orig_len: p.orig_len,
                data: p.data.into_owned(),
            });
        }
        (header, out)
    }

    /// The number of packets tshark reads from `path`; `None` when tshark is not installed.
    fn tshark_count(path: &Path) -> Option<usize> {
        let out = std::process::Command::new("tshark")
            .arg("-n")
            .arg("-r")
            .arg(path)
            .output();
        match out {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("tshark not installed: pcap not checked with it");
                None
            }
            Err(e) => panic!("tshark: {e}"),
            Ok(o) => {
                assert!(
                    o.status.success(),
                    "tshark -r {}: {}",
                    path.display(),
                    String::from_utf8_lossy(&o.stderr)
                );
                Some(String::from_utf8_lossy(&o.stdout).lines().count())
            }
        }
    }

    fn seq_of(p: &Read) -> Option<u32> {
        let b = p.udp_payload()?;
        Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
    }

    fn cooked(protocol: u16) -> Cooked {
        Cooked {
            pkttype: 0,
            hatype: libc::ARPHRD_ETHER,
            halen: 6,
            addr: [2, 0, 0, 0, 0, 1, 0, 0],
            protocol,
        }
    }

    fn ipv4(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&[0x13, 0xc4, 0x13, 0xc4, 0, 8, 0, 0]);
        p
    }

    fn arp(op: u16, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
        let mut p = vec![0, 1, 8, 0, 6, 4];
        p.extend_from_slice(&op.to_be_bytes());
        p.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&spa.octets());
        p.extend_from_slice(&[0; 6]);
        p.extend_from_slice(&tpa.octets());
        p
    }

    #[test]
    fn endpoints_of_ipv4_arp_and_vlan() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(endpoints(ETH_P_IP, &ipv4(a, b)), Some((a, b)));
        assert_eq!(endpoints(ETH_P_ARP, &arp(1, a, b)), Some((a, b)));
        let mut tagged = vec![0, 100, 0x08, 0x00];
        tagged.extend(ipv4(b, a));
        assert_eq!(endpoints(ETH_P_8021Q, &tagged), Some((b, a)));
        let mut qinq = vec![0, 7, 0x81, 0x00, 0, 100, 0x08, 0x06];
        qinq.extend(arp(2, b, a));
        assert_eq!(endpoints(ETH_P_8021AD, &qinq), Some((b, a)));
        // Short, not IPv4, not ARP for IPv4, IPv6.
        assert_eq!(endpoints(ETH_P_IP, &ipv4(a, b)[..19]), None);
        let mut v6 = ipv4(a, b);
        v6[0] = 0x60;
        assert_eq!(endpoints(ETH_P_IP, &v6), None);
        assert_eq!(endpoints(ETH_P_ARP, &arp(1, a, b)[..27]), None);
        let mut arp6 = arp(1, a, b);
        arp6[2] = 0x86;
        assert_eq!(endpoints(ETH_P_ARP, &arp6), None);
        assert_eq!(endpoints(0x86dd, &ipv4(a, b)), None);
        assert_eq!(endpoints(ETH_P_8021Q, &[0, 1]), None);
    }

    #[test]
    fn cooked_header_layout() {
        let c = Cooked {
            pkttype: PACKET_OUTGOING,
            hatype: libc::ARPHRD_ETHER,
            halen: 6,
            addr: [1, 2, 3, 4, 5, 6, 9, 9],
            protocol: ETH_P_ARP,
        };
        assert_eq!(
            c.sll_header(),
            [0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x06]
        );
        assert!(!c.is_loopback_outgoing());
        let lo_out = Cooked {
            hatype: libc::ARPHRD_LOOPBACK,
            ..c
        };
        assert!(lo_out.is_loopback_outgoing());
        assert!(!Cooked {
            pkttype: 0,
            ..lo_out
        }
        .is_loopback_outgoing());
    }

    #[test]
    fn filer_files_each_packet_to_each_of_its_runs_once() {
        let ip = |d| Ipv4Addr::new(10, 0, 0, d);
        let mut f = Filer::default();
        let c = cooked(ETH_P_IP);
        // No run: nothing is even parsed.
        assert_eq!(f.file(Duration::ZERO, &c, &ipv4(ip(1), ip(2)), 28), 0);
        f.register(RunId("aaaaaa".into()), vec![ip(1), ip(2)], "a".into())
            .unwrap();
        f.register(RunId("bbbbbb".into()), vec![ip(3), ip(3)], "b".into())
            .unwrap();
        assert_eq!(
            f.register(RunId("aaaaaa".into()), vec![ip(9)], "x".into()),
            Err(SniffError::AlreadyRegistered(RunId("aaaaaa".into())))
        );
        // Both ends in A: once. A to B: both. Unrelated: none. ARP: by sender or target.
        assert_eq!(
            f.file(Duration::from_secs(1), &c, &ipv4(ip(1), ip(2)), 28),
            1
        );
        assert_eq!(
            f.file(Duration::from_secs(2), &c, &ipv4(ip(2), ip(3)), 28),
            2
        );
        assert_eq!(
            f.file(Duration::from_secs(3), &c, &ipv4(ip(7), ip(8)), 28),
            0
        );
        let a = cooked(ETH_P_ARP);
        assert_eq!(
            f.file(Duration::from_secs(4), &a, &arp(1, ip(7), ip(3)), 28),
            1
        );
        // A cut packet keeps its real length.
        assert_eq!(
            f.file(Duration::from_secs(5), &c, &ipv4(ip(3), ip(8)), 9000),
            1
        );
        f.charge_drops(2);

        let b = f.unregister(&RunId("bbbbbb".into())).unwrap();
        assert_eq!(b.pcap, PathBuf::from("b"));
        assert_eq!(b.dropped, 2);
        let stamps: Vec<u64> = b.packets.iter().map(|p| p.ts.as_secs()).collect();
        assert_eq!(stamps, vec![2, 4, 5]);
        assert_eq!(b.packets[2].orig_len, 9016);
        assert_eq!(&b.packets[0].data[..SLL_HEADER_LEN], &c.sll_header());
        assert_eq!(
            &b.packets[0].data[SLL_HEADER_LEN..],
            &ipv4(ip(2), ip(3))[..]
        );
        assert_eq!(
            f.unregister(&RunId("bbbbbb".into())).err(),
            Some(SniffError::UnknownRun(RunId("bbbbbb".into())))
        );
        // B's addresses are no longer filed; A's still are.
        assert_eq!(
            f.file(Duration::from_secs(6), &c, &ipv4(ip(3), ip(1)), 28),
            1
        );
        let a = f.unregister(&RunId("aaaaaa".into())).unwrap();
        assert_eq!(a.packets.len(), 3);
        assert!(f.by_addr.is_empty());
    }

    #[test]
    fn a_busy_run_goes_to_its_pcap_in_chunks_and_memory_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let ip = |d| Ipv4Addr::new(10, 0, 0, d);
        let c = cooked(ETH_P_IP);
        let chunked = |id: &str, path: PathBuf| {
            let mut f = Filer {
                spill_at: 1000,
                ..Filer::default()
            };
            f.register(RunId(id.into()), vec![ip(1)], path).unwrap();
            f
        };
        // 100 packets of 44 bytes: four chunks go to the file during the run.
        let path = dir.path().join("sipp-aaaaaa.pcap");
        let mut f = chunked("aaaaaa", path.clone());
        for i in 0..100u64 {
            // Two stamps out of order within a chunk: sorted in the file.
            let ts = Duration::from_millis(if i % 10 == 3 { i + 2 } else { i });
            assert_eq!(f.file(ts, &c, &ipv4(ip(1), ip(2)), 28), 1);
            assert!(
                f.regs[0].bytes < 1000,
                "at most a chunk held: {}",
                f.regs[0].bytes
            );
        }
        assert_eq!(
            f.regs[0].written, 92,
            "four chunks of 23 packets (1,012 bytes)"
        );
        assert!(path.exists(), "the pcap is made at the first chunk");
        let taken = f.unregister(&RunId("aaaaaa".into())).unwrap();
        assert_eq!(taken.total(), 100);
        taken.finish().unwrap();
        let (_, back) = read_pcap(&path);
        assert_eq!(back.len(), 100);
        assert!(back.windows(2).all(|w| w[0].ts <= w[1].ts));
        if let Some(n) = tshark_count(&path) {
            assert_eq!(n, 100);
        }

        // A chunk that cannot be written: the run's pcap fails with the reason, and what
        // comes after is dropped rather than held.
        let bad = dir.path().join("gone/sipp-bbbbbb.pcap");
        let mut f = chunked("bbbbbb", bad.clone());
        for i in 0..100u64 {
            f.file(Duration::from_millis(i), &c, &ipv4(ip(1), ip(2)), 28);
            assert!(f.regs[0].packets.len() < 23);
        }
        let taken = f.unregister(&RunId("bbbbbb".into())).unwrap();
        let e = taken.finish().unwrap_err().to_string();
        assert!(e.starts_with(&format!("write {}: ", bad.display())), "{e}");
    }

    #[test]
    fn pcap_is_sorted_by_time_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sipp-abcdef.pcap");
        let c = cooked(ETH_P_IP);
        let p = |s: u64, n: u32, d: u8| Packet {
            ts: Duration::new(s, n),
            orig_len: 16 + 28,
            data: [
                &c.sll_header()[..],
                &ipv4(Ipv4Addr::new(10, 0, 0, d), Ipv4Addr::new(10, 0, 0, 9)),
            ]
            .concat(),
        };
        // Out of order, two with the same stamp (kept in the order read).
        let packets = vec![p(5, 7, 1), p(5, 3, 2), p(4, 999_999_999, 3), p(5, 3, 4)];
        write_pcap(&path, packets).unwrap();
        let (header, back) = read_pcap(&path);
        assert_eq!(header.datalink, DataLink::LINUX_SLL);
        assert_eq!(header.ts_resolution, TsResolution::NanoSecond);
        assert_eq!(header.snaplen, SNAPLEN);
        let order: Vec<u8> = back
            .iter()
            .map(|r| r.endpoints().unwrap().0.octets()[3])
            .collect();
        assert_eq!(order, vec![3, 2, 4, 1]);
        assert_eq!(back[0].ts, Duration::new(4, 999_999_999));
        assert_eq!(back[0].orig_len, 44);
        if let Some(n) = tshark_count(&path) {
            assert_eq!(n, 4);
        }
        // Written again: replaced. A symlink in its place is not followed.
        write_pcap(&path, vec![]).unwrap();
        assert!(read_pcap(&path).1.is_empty());
        let link = dir.path().join("link.pcap");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = write_pcap(&link, vec![]).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("write {}: ", link.display())),
            "{err}"
        );
        assert!(read_pcap(&path).1.is_empty());
    }

    #[test]
    fn filter_program_shape() {
        let jumps_in_range = |p: &[libc::sock_filter]| {
            for (i, ins) in p.iter().enumerate() {
                if u32::from(ins.code) & 0x07 == libc::BPF_JMP {
                    assert!(i + 1 + usize::from(ins.jt.max(ins.jf)) < p.len(), "{i}");
                }
            }
            // Every path ends in a return.
            assert_eq!(
                u32::from(p.last().unwrap().code),
                libc::BPF_RET | libc::BPF_K
            );
        };
        assert_eq!(filter_program(&[]).len(), 1);
        let addrs: Vec<Ipv4Addr> = (1..=3).map(|d| Ipv4Addr::new(10, 0, 0, d)).collect();
        let p = filter_program(&addrs);
        assert_eq!(p.len(), 12 + 2 * (1 + 2 * 3) + 1);
        jumps_in_range(&p);
        let p = filter_program(&vec![Ipv4Addr::UNSPECIFIED; FILTER_MAX_ADDRS]);
        assert!(p.len() <= 4096);
        jumps_in_range(&p);
        let p = filter_program(&vec![Ipv4Addr::UNSPECIFIED; FILTER_MAX_ADDRS + 1]);
        assert_eq!(p.len(), 13);
        jumps_in_range(&p);
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn kernel_filter_lets_through_only_what_is_registered() {
        testns::in_netns("kernel filter", || {
            let mut cap = Capture::new(open_socket(&log()).unwrap(), None, log());
            let socks: Vec<UdpSocket> = (2..=5)
                .map(|d| UdpSocket::bind((lo(d), 5060)).unwrap())
                .collect();
            // Sends 2→3 and 4→5, waits until both arrived, then reads what the capture has.
            let exchange = |cap: &mut Capture| {
                socks[0].send_to(b"a", (lo(3), 5060)).unwrap();
                socks[2].send_to(b"b", (lo(5), 5060)).unwrap();
                socks[1].recv(&mut [0; 4]).unwrap();
                socks[3].recv(&mut [0; 4]).unwrap();
                let mut n = 0;
                while cap.read_one().unwrap() {
                    n += 1;
                }
                n
            };
            // No run: nothing reaches the socket.
            assert_eq!(exchange(&mut cap), 0);
            // 2 registered: only 2→3, and only its incoming copy (lo's outgoing one is not).
            cap.filer
                .register(RunId("aaaaaa".into()), vec![lo(2)], "a".into())
                .unwrap();
            cap.refilter().unwrap();
            assert_eq!(exchange(&mut cap), 1);
            assert_eq!(cap.filer.regs[0].packets.len(), 1);
            // Too many addresses for the filter: every IPv4 packet (user space still sorts).
            let many: Vec<Ipv4Addr> = (0..=FILTER_MAX_ADDRS as u32)
                .map(|i| Ipv4Addr::from(0x0a00_0000 + i))
                .collect();
            cap.filer
                .register(RunId("bbbbbb".into()), many, "b".into())
                .unwrap();
            cap.refilter().unwrap();
            assert_eq!(exchange(&mut cap), 2);
            assert_eq!(cap.filer.regs[0].packets.len(), 2);
            assert!(cap.filer.regs[1].packets.is_empty());
            cap.filer.unregister(&RunId("bbbbbb".into())).unwrap();
            cap.filer.unregister(&RunId("aaaaaa".into())).unwrap();
            cap.refilter().unwrap();
            assert_eq!(exchange(&mut cap), 0);
        });
    }

    #[test]
    fn a_scope_is_its_network_without_the_dut_and_the_hosts_own() {
        let s = Scope::new(
            Ipv4Addr::new(10, 99, 0, 1),
            23,
            vec![
                Ipv4Addr::new(10, 99, 1, 7),
                Ipv4Addr::new(192, 168, 1, 5),
                Ipv4Addr::new(10, 99, 0, 1),
                Ipv4Addr::new(10, 99, 1, 7),
            ],
        );
        assert_eq!(s.network, Ipv4Addr::new(10, 99, 0, 0));
        assert_eq!(s.mask(), 0xffff_fe00);
        assert_eq!(
            s.exclude,
            vec![Ipv4Addr::new(10, 99, 0, 1), Ipv4Addr::new(10, 99, 1, 7)]
        );
        assert!(s.contains(Ipv4Addr::new(10, 99, 1, 255)));
        assert!(!s.contains(Ipv4Addr::new(10, 99, 2, 0)));
        assert!(Scope::new(Ipv4Addr::new(10, 1, 2, 3), 0, vec![]).contains(Ipv4Addr::BROADCAST));
        assert!(!Scope::new(Ipv4Addr::new(10, 1, 2, 3), 32, vec![])
            .contains(Ipv4Addr::new(10, 1, 2, 4)));
        // What this namespace has (lo's 127.0.0.1 at least) is excluded when in the network.
        let here = Scope::of_network(Ipv4Addr::new(127, 0, 0, 9), 8);
        assert!(here.exclude.contains(&Ipv4Addr::new(127, 0, 0, 9)));
    }

    #[test]
    fn scoped_program_shape() {
        let jumps_in_range = |p: &[libc::sock_filter]| {
            for (i, ins) in p.iter().enumerate() {
                if u32::from(ins.code) & 0x07 == libc::BPF_JMP {
                    assert!(i + 1 + usize::from(ins.jt.max(ins.jf)) < p.len(), "{i}");
                }
            }
        };
        let net = |d: u8| Ipv4Addr::new(10, 99, 0, d);
        let scope = Scope::new(net(1), 24, vec![net(1), net(2)]);
        // Runs in the network: the program does not depend on which.
        let p = scoped_program(&scope, &[net(5)]);
        assert_eq!(shape(&p), shape(&scoped_program(&scope, &[net(6), net(7)])));
        assert_eq!(p.len(), 12 + 2 * (1 + 2 + 3) + 1);
        jumps_in_range(&p);
        // An exclusion jumps to the start of the other side (the destination's load).
        assert_eq!(p[13].k, u32::from(net(1)));
        assert_eq!(13 + 1 + usize::from(p[13].jt), 18);
        assert_eq!(p[18].k, 16);
        // A run's address is never excluded; one outside the network is tested alone.
        let q = scoped_program(&scope, &[Ipv4Addr::new(10, 98, 0, 1), net(2)]);
        assert_eq!(q.len(), 12 + 2 * (1 + 2 + 1 + 3) + 1);
        jumps_in_range(&q);
        // Too many exclusions for a jump: none.
        let many: Vec<Ipv4Addr> = (0..=MAX_EXCLUDED as u32)
            .map(|i| Ipv4Addr::from(0x0a63_0000 + i))
            .collect();
        let wide = Scope::new(net(1), 16, many);
        assert_eq!(scoped_program(&wide, &[net(250)]).len(), 12 + 2 * 4 + 1);
        let few = Scope::new(net(1), 16, wide.exclude[..MAX_EXCLUDED].to_vec());
        let p = scoped_program(&few, &[net(250)]);
        assert!(p.len() <= 4096);
        jumps_in_range(&p);
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn a_scoped_filter_stays_while_runs_come_and_go() {
        testns::in_netns("scoped filter", || {
            // 127.0.0.0/29 without .1 and .6; .9 and .10 are outside.
            let scope = Scope::new(lo(1), 29, vec![lo(1), lo(6)]);
            let mut cap = Capture::new(open_socket(&log()).unwrap(), Some(scope), log());
            let socks: HashMap<u8, UdpSocket> = [1, 2, 3, 4, 5, 6, 9, 10]
                .into_iter()
                .map(|d| (d, UdpSocket::bind((lo(d), 5060)).unwrap()))
                .collect();
            // Sends each pair's packet, waits until each arrived, then counts what the
            // capture read.
            let exchange = |cap: &mut Capture, pairs: &[(u8, u8)]| {
                for (from, to) in pairs {
                    socks[from].send_to(b"x", (lo(*to), 5060)).unwrap();
                    socks[to].recv(&mut [0; 4]).unwrap();
                }
                let mut n = 0;
                while cap.read_one().unwrap() {
                    n += 1;
                }
                n
            };
            let register = |cap: &mut Capture, id: &str, d: u8| {
                cap.filer
                    .register(RunId(id.into()), vec![lo(d)], id.into())
                    .unwrap();
                cap.refilter().unwrap();
            };
            let pairs = [(2, 3), (4, 5), (6, 1), (9, 10)];
            // No run: nothing reaches the socket.
            assert_eq!(exchange(&mut cap, &pairs), 0);
            // A run in the network: every packet of the network but between excluded
            // addresses (6→1), not those outside (9→10); user space files only the run's.
            register(&mut cap, "aaaaaa", 2);
            let scoped = cap.attached.clone();
            assert_eq!(exchange(&mut cap, &pairs), 2);
            assert_eq!(cap.filer.regs[0].packets.len(), 1);
            // Another run in the network: the filter stays as it is.
            register(&mut cap, "bbbbbb", 4);
            assert_eq!(cap.attached, scoped);
            assert_eq!(exchange(&mut cap, &pairs), 2);
            assert_eq!(cap.filer.regs[1].packets.len(), 1);
            // A run outside the network, and one at an excluded address: each in the filter.
            register(&mut cap, "cccccc", 9);
            assert_ne!(cap.attached, scoped);
            register(&mut cap, "dddddd", 6);
            assert_eq!(exchange(&mut cap, &pairs), 4);
            assert!(cap.filer.regs.iter().all(|r| !r.packets.is_empty()));
            // The last run gone: nothing is read again.
            for id in ["aaaaaa", "bbbbbb", "cccccc", "dddddd"] {
                cap.filer.unregister(&RunId(id.into())).unwrap();
            }
            cap.refilter().unwrap();
            assert_eq!(exchange(&mut cap, &pairs), 0);
        });
    }

    /// Others' traffic in the DUT network past the limit: the capture gives its scope up and
    /// lists the runs' addresses in the filter; the runs' own packets are filed all along.
    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn a_busy_network_makes_the_capture_filter_by_address() {
        testns::in_netns("busy network", || {
            let scope = Scope::new(lo(1), 29, vec![lo(1)]);
            let mut cap = Capture::new(open_socket(&log()).unwrap(), Some(scope), log());
            // A generous window: the limit, not the machine's speed, decides.
            cap.strays.max = 50;
            cap.strays.window = Duration::from_secs(600);
            let socks: HashMap<u8, UdpSocket> = [2, 3, 4, 5]
                .into_iter()
                .map(|d| (d, UdpSocket::bind((lo(d), 5060)).unwrap()))
                .collect();
            let send = |from: u8, to: u8, n: usize| {
                for _ in 0..n {
                    socks[&from].send_to(b"x", (lo(to), 5060)).unwrap();
                    socks[&to].recv(&mut [0; 4]).unwrap();
                }
            };
            let drain = |cap: &mut Capture| {
                let mut n = 0;
                while cap.read_one().unwrap() {
                    n += 1;
                }
                n
            };
            cap.filer
                .register(RunId("aaaaaa".into()), vec![lo(2)], "a".into())
                .unwrap();
            cap.refilter().unwrap();
            let scoped = cap.attached.clone();
            // Within the limit: kept by the scope, filed to no run.
            send(4, 5, 50);
            send(2, 3, 1);
            assert_eq!(drain(&mut cap), 51);
            assert!(cap.scope.is_some());
            assert_eq!(cap.attached, scoped);
            // One more: the scope goes, the filter lists the run's address.
            send(4, 5, 1);
            assert_eq!(drain(&mut cap), 1);
            assert!(cap.scope.is_none());
            assert_eq!(cap.attached, shape(&filter_program(&[lo(2)])));
            send(4, 5, 20);
            send(2, 3, 1);
            assert_eq!(drain(&mut cap), 1, "only the run's packet now");
            assert_eq!(cap.filer.regs[0].packets.len(), 2);
            // A later run's addresses join the filter at its Register, as without a scope.
            cap.filer
                .register(RunId("bbbbbb".into()), vec![lo(4)], "b".into())
                .unwrap();
            cap.refilter().unwrap();
            send(4, 5, 1);
            assert_eq!(drain(&mut cap), 1);
            assert_eq!(cap.filer.regs[1].packets.len(), 1);
        });
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn a_batch_of_registers_is_answered_once_its_filter_is_on() {
        testns::in_netns("filter batch", || {
            let mut cap = Capture::new(open_socket(&log()).unwrap(), None, log());
            let socks: Vec<UdpSocket> = (2..=3)
                .map(|d| UdpSocket::bind((lo(d), 5060)).unwrap())
                .collect();
            let register = |cap: &mut Capture, batch: &mut Batch, id: &str, d: u8| {
                let (reply, answer) = oneshot::channel();
                let cmd = Command::Register {
                    run_id: RunId(id.into()),
                    addrs: vec![lo(d)],
                    pcap: id.into(),
                    reply,
                };
                assert!(cap.command(cmd, batch));
                answer
            };
            let mut batch = Batch::default();
            let mut a = register(&mut cap, &mut batch, "aaaaaa", 2);
            let mut b = register(&mut cap, &mut batch, "bbbbbb", 3);
            // The same run twice in one batch: refused at once, the first stays.
            let mut again = register(&mut cap, &mut batch, "aaaaaa", 2);
            assert!(matches!(
                again.try_recv(),
                Ok(Err(SniffError::AlreadyRegistered(_)))
            ));
            // Not answered before the filter is on.
            assert!(a.try_recv().is_err() && b.try_recv().is_err());
            cap.settle(batch);
            assert_eq!(a.try_recv().unwrap(), Ok(()));
            assert_eq!(b.try_recv().unwrap(), Ok(()));
            socks[0].send_to(b"a", (lo(3), 5060)).unwrap();
            socks[1].recv(&mut [0; 4]).unwrap();
            let mut n = 0;
            while cap.read_one().unwrap() {
                n += 1;
            }
            // Its one incoming copy, filed for both runs.
            assert_eq!(n, 1);
            assert_eq!(cap.filer.regs.len(), 2);
            assert!(cap.filer.regs.iter().all(|r| r.packets.len() == 1));
            // An Unregister is answered at once; the filter follows at the batch's end.
            let mut batch = Batch::default();
            let (reply, mut taken) = oneshot::channel();
            let cmd = Command::Unregister {
                run_id: RunId("aaaaaa".into()),
                reply,
            };
            assert!(cap.command(cmd, &mut batch));
            assert!(taken.try_recv().unwrap().is_ok());
            assert!(batch.changed && batch.registered.is_empty());
            cap.settle(batch);
            assert_eq!(cap.filer.addresses(), vec![lo(3)]);
        });
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            SniffError::NotPermitted.to_string(),
            "capture: Operation not permitted (run as root, use --no-pcap, or --dry-run)"
        );
        assert_eq!(
            SniffError::UnknownRun(RunId("abcdef".into())).to_string(),
            "no capture for run abcdef"
        );
        assert_eq!(pcap_name(&RunId("abcdef".into())), "sipp-abcdef.pcap");
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn loopback_packets_are_filed_once_and_none_is_lost() {
        testns::in_netns("capture on lo", || {
            actix_rt::System::new().block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let pcap = dir.path().join("a.pcap");
                let sniffer = SnifferActor::open(log(), None).unwrap().start();
                register(&sniffer, "aaaaaa", &[lo(2), lo(3)], &pcap)
                    .await
                    .unwrap();
                let rx = UdpSocket::bind((lo(3), 5060)).unwrap();
                setsockopt(&rx, sockopt::RcvBufForce, &(16 << 20)).unwrap();
                rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let tx = UdpSocket::bind((lo(2), 5061)).unwrap();
                let sent = Duration::from_secs(
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap()
                        .as_secs(),
                );
                for i in 0..5000u32 {
                    tx.send_to(&i.to_be_bytes(), (lo(3), 5060)).unwrap();
                }
                // As SIPp's peer has its last message before SIPp ends: the kernel hands a
                // packet to the capture socket before the receiving socket, so each packet
                // received is in the capture's queue. (On a loaded machine the kernel may
                // deliver the last sends a little after send_to returned.)
                let mut buf = [0u8; 16];
                for _ in 0..5000 {
                    rx.recv(&mut buf).unwrap();
                }
                let stats = unregister(&sniffer, "aaaaaa").await.unwrap();
                assert_eq!(
                    stats,
                    PcapStats {
                        packets: 5000,
                        dropped: 0
                    }
                );
                let (_, back) = read_pcap(&pcap);
                let seqs: Vec<u32> = back.iter().map(|p| seq_of(p).unwrap()).collect();
                // Each once, and in the order sent (sorted by kernel time).
                assert_eq!(seqs, (0..5000).collect::<Vec<u32>>());
                for p in &back {
                    assert_eq!(p.endpoints(), Some((lo(2), lo(3))));
                    assert_eq!(p.pkttype(), 0, "the incoming copy");
                    assert_eq!(p.hatype(), libc::ARPHRD_LOOPBACK);
                    assert_eq!(p.orig_len as usize, p.data.len());
                    assert!(p.ts >= sent && p.ts < sent + Duration::from_secs(60));
                }
                if let Some(n) = tshark_count(&pcap) {
                    assert_eq!(n, 5000);
                }
                // Gone: a second unregister is an error.
                assert_eq!(
                    unregister(&sniffer, "aaaaaa").await,
                    Err(SniffError::UnknownRun(RunId("aaaaaa".into())))
                );
                sniffer.send(Shutdown).await.unwrap().unwrap();
            });
        });
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn two_runs_at_once_each_get_their_own_packets() {
        testns::in_netns("two runs", || {
            actix_rt::System::new().block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let (pa, pb) = (dir.path().join("a.pcap"), dir.path().join("b.pcap"));
                let sniffer = SnifferActor::open(log(), None).unwrap().start();
                register(&sniffer, "aaaaaa", &[lo(2), lo(3)], &pa)
                    .await
                    .unwrap();
                register(&sniffer, "bbbbbb", &[lo(4), lo(5)], &pb)
                    .await
                    .unwrap();
                let socks: Vec<UdpSocket> = (2..=7)
                    .map(|d| UdpSocket::bind((lo(d), 5060)).unwrap())
                    .collect();
                // Each packet is received before the next is sent: it is in the capture's
                // queue then (the kernel hands it to the capture socket first).
                let send = |from: u8, to: u8, tag: u32| {
                    socks[usize::from(from - 2)]
                        .send_to(&tag.to_be_bytes(), (lo(to), 5060))
                        .unwrap();
                    let mut buf = [0u8; 4];
                    socks[usize::from(to - 2)].recv(&mut buf).unwrap();
                    assert_eq!(u32::from_be_bytes(buf), tag);
                };
                for i in 0..100 {
                    send(2, 3, i);
                    send(5, 4, 1000 + i);
                    send(6, 7, 2000 + i);
                    if i % 10 == 0 {
                        send(3, 4, 3000 + i);
                    }
                }
                let a = unregister(&sniffer, "aaaaaa").await.unwrap();
                assert_eq!(a.packets, 110);
                // After A is gone, B still captures.
                send(4, 5, 4000);
                send(2, 3, 5000);
                let b = unregister(&sniffer, "bbbbbb").await.unwrap();
                assert_eq!(b.packets, 111);

                let tags = |p: &Path| -> Vec<u32> {
                    read_pcap(p).1.iter().map(|r| seq_of(r).unwrap()).collect()
                };
                let want_a: Vec<u32> = (0..100)
                    .flat_map(|i| {
                        let mut v = vec![i];
                        if i % 10 == 0 {
                            v.push(3000 + i);
                        }
                        v
                    })
                    .collect();
                assert_eq!(tags(&pa), want_a);
                let mut want_b: Vec<u32> = (0..100)
                    .flat_map(|i| {
                        let mut v = vec![1000 + i];
                        if i % 10 == 0 {
                            v.push(3000 + i);
                        }
                        v
                    })
                    .collect();
                want_b.push(4000);
                assert_eq!(tags(&pb), want_b);
                if let (Some(na), Some(nb)) = (tshark_count(&pa), tshark_count(&pb)) {
                    assert_eq!((na, nb), (110, 111));
                }
            });
        });
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn arp_and_traffic_over_a_wire_are_filed() {
        testns::in_netns("capture on a veth", || {
            actix_rt::System::new().block_on(async {
                let ip = |d| Ipv4Addr::new(10, 77, 0, d);
                let _peer = testns::veth(&[(ip(1), 24)], &[(ip(2), 24)], true).await;
                testns::wait_running(&["va"]).await;
                let dir = tempfile::tempdir().unwrap();
                let pcap = dir.path().join("a.pcap");
                let sniffer = SnifferActor::open(log(), None).unwrap().start();
                register(&sniffer, "aaaaaa", &[ip(1)], &pcap).await.unwrap();
                // To a closed port over there: ARP first, then the datagram, then an ICMP
                // error back; once the socket has the error, the kernel has filed them all.
                let s = UdpSocket::bind((ip(1), 0)).unwrap();
                s.connect((ip(2), 9)).unwrap();
                s.send(b"hello").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let err = s.recv(&mut [0; 16]).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
                let stats = unregister(&sniffer, "aaaaaa").await.unwrap();
                let (_, back) = read_pcap(&pcap);
                assert_eq!(stats.packets as usize, back.len());
                for p in &back {
                    let (a, b) = p.endpoints().unwrap();
                    assert!(a == ip(1) || b == ip(1), "{p:?}");
                    assert_eq!(p.hatype(), libc::ARPHRD_ETHER);
                }
                let request = back.iter().find(|p| p.arp_op() == Some(1)).unwrap();
                assert_eq!(request.endpoints(), Some((ip(1), ip(2))));
                assert_eq!(request.pkttype(), u16::from(PACKET_OUTGOING));
                let reply = back.iter().find(|p| p.arp_op() == Some(2)).unwrap();
                assert_eq!(reply.endpoints(), Some((ip(2), ip(1))));
                assert_eq!(reply.pkttype(), 0);
                let udp: Vec<&Read> = back.iter().filter(|p| p.ip_proto() == Some(17)).collect();
                assert_eq!(udp.len(), 1);
                assert_eq!(udp[0].udp_payload(), Some(&b"hello"[..]));
                assert_eq!(udp[0].pkttype(), u16::from(PACKET_OUTGOING));
                let icmp: Vec<&Read> = back.iter().filter(|p| p.ip_proto() == Some(1)).collect();
                assert_eq!(icmp.len(), 1);
                assert_eq!(icmp[0].endpoints(), Some((ip(2), ip(1))));
                // Time order: the request before the reply before the ICMP error.
                let at = |p: &Read| back.iter().position(|q| std::ptr::eq(q, p)).unwrap();
                assert!(at(request) < at(reply) && at(reply) < at(icmp[0]));
                if let Some(n) = tshark_count(&pcap) {
                    assert_eq!(n, back.len());
                }
            });
        });
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn register_twice_unknown_run_and_after_stop() {
        testns::in_netns("capture errors", || {
            actix_rt::System::new().block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let pcap = dir.path().join("a.pcap");
                let sniffer = SnifferActor::open(log(), None).unwrap().start();
                assert_eq!(
                    unregister(&sniffer, "zzzzzz").await,
                    Err(SniffError::UnknownRun(RunId("zzzzzz".into())))
                );
                register(&sniffer, "aaaaaa", &[lo(2)], &pcap).await.unwrap();
                assert_eq!(
                    register(&sniffer, "aaaaaa", &[lo(3)], &pcap).await,
                    Err(SniffError::AlreadyRegistered(RunId("aaaaaa".into())))
                );
                // No packet at all: an empty pcap, still readable.
                assert_eq!(
                    unregister(&sniffer, "aaaaaa").await.unwrap(),
                    PcapStats::default()
                );
                assert!(read_pcap(&pcap).1.is_empty());
                // A pcap that cannot be written is one line naming it.
                let bad = dir.path().join("no/such/dir/x.pcap");
                register(&sniffer, "bbbbbb", &[lo(2)], &bad).await.unwrap();
                let err = unregister(&sniffer, "bbbbbb")
                    .await
                    .unwrap_err()
                    .to_string();
                assert!(
                    err.starts_with(&format!("write {}: ", bad.display())),
                    "{err}"
                );
                sniffer.send(Shutdown).await.unwrap().unwrap();
                assert_eq!(
                    register(&sniffer, "cccccc", &[lo(2)], &pcap).await,
                    Err(SniffError::Stopped)
                );
                assert_eq!(
                    unregister(&sniffer, "cccccc").await,
                    Err(SniffError::Stopped)
                );
            });
        });
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn not_permitted_is_one_clear_line() {
        testns::in_netns("capture not permitted", || {
            const CAP_NET_RAW: u32 = 13;
            testns::drop_capability(CAP_NET_RAW);
            let err = SnifferActor::open(log(), None).err().unwrap();
            assert_eq!(err, SniffError::NotPermitted);
            assert_eq!(
                err.to_string(),
                "capture: Operation not permitted (run as root, use --no-pcap, or --dry-run)"
            );
        });
    }

    fn median(mut v: Vec<Duration>) -> Duration {
        v.sort();
        v[v.len() / 2]
    }

    /// CPU time the capture thread(s) of this process used so far.
    fn capture_cpu() -> Duration {
        let tick = Duration::from_secs(1) / 100; // USER_HZ
        let mut total = Duration::ZERO;
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let dir = task.unwrap().path();
            if std::fs::read_to_string(dir.join("comm"))
                .unwrap_or_default()
                .trim()
                != "capture"
            {
                continue;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
            // After the ")" closing the name: state is field 3; utime, stime are 14 and 15.
            let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
            let ticks: u32 = rest[11].parse::<u32>().unwrap() + rest[12].parse::<u32>().unwrap();
            total += tick * ticks;
        }
        total
    }

    /// `cargo test -p sipplauncher-actors --release --lib sniffer::tests::timing -- --ignored
    /// --nocapture --test-threads 1`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn timing_throughput() {
        testns::in_netns("capture throughput", || {
            actix_rt::System::new().block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let sniffer = SnifferActor::open(log(), None).unwrap().start();
                for (senders, per_sender, size) in [
                    (1, 200_000u32, 4usize),
                    (2, 200_000, 4),
                    (4, 200_000, 4),
                    (1, 100_000, 1000),
                    (4, 100_000, 1000),
                ] {
                    let addrs: Vec<Ipv4Addr> = (0..senders * 2).map(|i| lo(10 + i)).collect();
                    let pcap = dir.path().join("t.pcap");
                    register(&sniffer, "tttttt", &addrs, &pcap).await.unwrap();
                    let cpu = capture_cpu();
                    let start = Instant::now();
                    let threads: Vec<_> = (0..senders)
                        .map(|s| {
                            let (from, to) = (lo(10 + 2 * s), lo(11 + 2 * s));
                            std::thread::spawn(move || {
                                let _rx = UdpSocket::bind((to, 5060)).unwrap();
                                let tx = UdpSocket::bind((from, 5060)).unwrap();
                                let mut buf = vec![0u8; size];
                                for i in 0..per_sender {
                                    buf[..4].copy_from_slice(&i.to_be_bytes());
                                    tx.send_to(&buf, (to, 5060)).unwrap();
                                }
                            })
                        })
                        .collect();
                    for t in threads {
                        t.join().unwrap();
                    }
                    let took = start.elapsed();
                    let t = Instant::now();
                    let stats = unregister(&sniffer, "tttttt").await.unwrap();
                    let cpu = capture_cpu() - cpu;
                    let sent = u64::from(per_sender) * u64::from(senders);
                    eprintln!(
                        "{senders} sender(s), {size}-byte payloads: sent {sent} in {took:?} \
                         ({:.0} packets/s); filed {} ({} lost, kernel drops {}); unregister \
                         + write {:?}; capture thread CPU {:.2} µs a packet filed",
                        sent as f64 / took.as_secs_f64(),
                        stats.packets,
                        sent - stats.packets.min(sent),
                        stats.dropped,
                        t.elapsed(),
                        cpu.as_secs_f64() * 1e6 / stats.packets.max(1) as f64
                    );
                }
            });
        });
    }

    /// See [`timing_throughput`].
    #[test]
    #[ignore = "a measurement, not a check"]
    fn timing_register_unregister() {
        testns::in_netns("capture register/unregister", || {
            actix_rt::System::new().block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let sniffer = SnifferActor::open(log(), None).unwrap().start();
                let _rx = UdpSocket::bind((lo(3), 5060)).unwrap();
                let tx = UdpSocket::bind((lo(2), 5060)).unwrap();
                let (mut reg, mut unreg) = (Vec::new(), Vec::new());
                for round in 0..20 {
                    let pcap = dir.path().join(format!("{round}.pcap"));
                    let t = Instant::now();
                    register(&sniffer, "tttttt", &[lo(2), lo(3)], &pcap)
                        .await
                        .unwrap();
                    reg.push(t.elapsed());
                    for i in 0..100u32 {
                        tx.send_to(&i.to_be_bytes(), (lo(3), 5060)).unwrap();
                    }
                    let t = Instant::now();
                    let stats = unregister(&sniffer, "tttttt").await.unwrap();
                    unreg.push(t.elapsed());
                    assert_eq!(stats.packets, 100);
                }
                eprintln!(
                    "register: median {:?} of 20; unregister with 100 packets (drain + pcap \
                     written): median {:?} of 20",
                    median(reg),
                    median(unreg)
                );
            });
        });
    }
}
