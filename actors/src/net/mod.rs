//! NetActor: owns the DUT network's address pool and gives each test run an address per SIPp
//! instance, on a link of its own `sipp-<run_id>` (SPEC §5).
//!
//! Two modes:
//! - [`NetActor::dry`] (`--dry-run`): addresses are chosen, not assigned: nothing on the
//!   machine changes.
//! - [`NetActor::real`]: at start, leftover `sipp-*` links of dead runs are removed and this
//!   host's addresses and gateways are excluded; a lease ARP-probes its candidates (not on a
//!   127/8 DUT network), makes the link, sets it up and puts the addresses on it as /32s; a
//!   release deletes the link; [`Shutdown`] deletes every link not yet released.
//!
//! Lease, Release and Shutdown are [`AtomicResponse`]s: while one of them awaits netlink or
//! the probe, no other is handled, so two leases never probe or take the same candidates and
//! a shutdown never misses a link being made. Pre-run is test after test anyway (SPEC §4).
//! Nothing blocks the actix thread: the probe runs on `spawn_blocking`, netlink is async.
//!
//! Two things are kept off a test's own time, because each costs tens of milliseconds:
//! - The ARP probe: a reserve of addresses that nobody answered for in the last
//!   [`RESERVE_TTL`] is probed ahead, in the background, and a lease takes from it first.
//! - Making and deleting a link (an ifb takes ~20 ms and a bridge ~40 ms to unregister on
//!   this kernel, under the kernel's rtnl lock, which also stalls the next link made): a
//!   release takes the addresses off the link and renames it to a spare `sipp-_<letters>`; the
//!   next lease renames a spare to `sipp-<run_id>` instead of making one. [`Shutdown`] deletes
//!   the spares with the rest.

pub mod arp;
pub mod netlink;
pub mod pool;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::{Actor, AtomicResponse, Context, Handler, WrapFuture};
use slog::{debug, info, warn, Logger};

use self::arp::ArpError;
use self::netlink::{alias_owner, owner_alias, Netlink, NetlinkError, LINK_PREFIX};
use self::pool::{AddressPool, PoolError};
use crate::core::plan::{RunId, UaName};
use crate::messages::{Lease, Release, Shutdown, ShutdownError};
use crate::sys::owner::RunOwner;

/// How many rounds of pick-and-probe a lease tries before it gives up.
pub const MAX_ROUNDS: u32 = 10;

/// How long an address that nobody answered ARP for stays good in the reserve.
pub const RESERVE_TTL: Duration = Duration::from_secs(10);

/// Addresses kept probed ahead, at least (fewer in a small network); see
/// [`NetActor::reserve_size`].
pub const RESERVE_SIZE: usize = 16;

/// Under which name the pool holds the reserve.
fn reserve_id() -> RunId {
    RunId("~reserve".into())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Arp(#[from] ArpError),
    #[error("no free address in {network}/{prefix} after {tries} tries: addresses answer ARP")]
    NoFreeAddress {
        network: Ipv4Addr,
        prefix: u8,
        tries: u32,
    },
    #[error("run {0} already has addresses")]
    AlreadyLeased(RunId),
    #[error("no more addresses: the run is stopping")]
    ShutDown,
    /// Shutdown could not remove some links: each failure, `; `-separated.
    #[error("{}", .0.join("; "))]
    Cleanup(Vec<String>),
}

impl NetError {
    /// The tool's own fault (SPEC §4 step 4: the run stops): the kernel refused us.
    pub fn is_fatal(&self) -> bool {
        match self {
            NetError::Netlink(NetlinkError::NotPermitted | NetlinkError::Connect(_)) => true,
            NetError::Netlink(e) => matches!(e.errno(), Some(libc::EPERM | libc::EACCES)),
            NetError::Arp(ArpError::Interface { errno, .. }) => {
                matches!(errno, Some(libc::EPERM | libc::EACCES))
            }
            _ => false,
        }
    }
}

/// The name of the link of a run.
pub fn link_name(run: &RunId) -> String {
    format!("{LINK_PREFIX}{run}")
}

/// State the handlers' futures share with the actor (one thread: `Rc`; a borrow is never
/// held across an await).
struct Shared {
    /// Free and leased addresses of the DUT network.
    pool: RefCell<AddressPool>,
    /// Links made and not yet removed, with their index.
    links: RefCell<BTreeMap<String, u32>>,
    /// After [`Shutdown`]: no more leases.
    closed: Cell<bool>,
    /// Addresses probed free ahead of need, with when; held in the pool under [`reserve_id`].
    reserve: RefCell<std::collections::VecDeque<(Ipv4Addr, Instant)>>,
    /// Links of ours without a run, kept to be renamed for the next run instead of made anew:
    /// making and deleting a link holds the kernel's rtnl lock for ~40 ms, a rename ~1 ms.
    spares: RefCell<Vec<(String, u32)>>,
    /// A background probe refilling the reserve is under way.
    refilling: Cell<bool>,
    /// Woken when a refill ends (its candidates are held by the pool meanwhile).
    refilled: tokio::sync::Notify,
}

struct Real {
    nl: Netlink,
    /// The alias that marks our links: `sipplauncher pid=<our pid>`.
    alias: String,
}

pub struct NetActor {
    shared: Rc<Shared>,
    /// `None` in `--dry-run`.
    real: Option<Real>,
    log: Logger,
    /// How long a probe waits for ARP answers, per round (SPEC §5: short).
    pub arp_timeout: Duration,
    /// How many times a probe asks again for the candidates nobody answered.
    pub arp_retries: u32,
    /// How many addresses to keep probed ahead: enough for a group's pre-run, so that no test
    /// of it waits for a probe (the supervisor sets it from `--group`).
    pub reserve_size: usize,
}

impl NetActor {
    /// `--dry-run`: addresses are chosen from the pool, nothing on the machine is touched.
    pub fn dry(dut: Ipv4Addr, prefix: u8, log: Logger) -> Self {
        NetActor {
            shared: Rc::new(Shared {
                pool: RefCell::new(AddressPool::new(dut, prefix)),
                links: RefCell::new(BTreeMap::new()),
                closed: Cell::new(false),
                reserve: RefCell::new(Default::default()),
                spares: RefCell::new(Vec::new()),
                refilling: Cell::new(false),
                refilled: tokio::sync::Notify::new(),
            }),
            real: None,
            log,
            arp_timeout: Duration::from_millis(50),
            arp_retries: 1,
            reserve_size: RESERVE_SIZE,
        }
    }

    /// The real thing: connects netlink (a refusal is one clear line), removes the `sipp-*`
    /// links of earlier runs whose owner is gone (a link without our alias counts as a
    /// leftover; one whose owner is another live sipplauncher is left alone), and excludes
    /// every IPv4 address of this host and every gateway from the pool. Call it inside the
    /// runtime the actor will run on (the netlink connection is a task of it).
    pub async fn real(dut: Ipv4Addr, prefix: u8, log: Logger) -> Result<NetActor, NetError> {
        let nl = Netlink::connect().await?;
        let me = RunOwner::current()
            .map_err(|e| NetlinkError::Connect(format!("name our links: /proc/self: {e}")))?;
        for link in nl.links().await? {
            if !link.name.starts_with(LINK_PREFIX) {
                continue;
            }
            match link.alias.as_deref().and_then(alias_owner) {
                // Another run still going, or one of another pid namespace (not ours to judge).
                Some(owner) if owner != me && !owner.is_gone() => {
                    info!(
                        log,
                        "link {} belongs to a sipplauncher that is not gone: left alone",
                        link.name; "owner" => %owner
                    );
                }
                owner => {
                    if nl.delete_link(&link.name).await? {
                        debug!(log, "leftover link removed"; "link" => &link.name, "owner" => ?owner);
                    }
                }
            }
        }
        let hosts = nl.ipv4_addresses().await?;
        let gateways = nl.gateways().await?;
        let mut actor = NetActor::dry(dut, prefix, log);
        {
            let mut pool = actor.shared.pool.borrow_mut();
            for host in hosts {
                pool.exclude(host.addr);
            }
            for gw in gateways {
                pool.exclude(gw);
            }
        }
        actor.real = Some(Real {
            nl,
            alias: owner_alias(&me),
        });
        Ok(actor)
    }

    fn lease_dry(&self, msg: Lease) -> Result<BTreeMap<UaName, Ipv4Addr>, NetError> {
        let mut pool = self.shared.pool.borrow_mut();
        let mut rng = rand::rng();
        let mut out = BTreeMap::new();
        for ua in msg.uas {
            let addr = match pool.pick(&mut rng) {
                Ok(a) => a,
                Err(e) => {
                    pool.release(&msg.run_id);
                    return Err(e.into());
                }
            };
            pool.lease(addr, &msg.run_id);
            out.insert(ua, addr);
        }
        debug!(self.log, "addresses chosen"; "run_id" => %msg.run_id, "addresses" => ?out);
        Ok(out)
    }
}

/// Whether the DUT network is on no wire (no ARP then).
fn is_loopback_network(network: Ipv4Addr) -> bool {
    network.octets()[0] == 127
}

struct LeaseJob {
    shared: Rc<Shared>,
    nl: Netlink,
    alias: String,
    log: Logger,
    arp_timeout: Duration,
    arp_retries: u32,
}

impl LeaseJob {
    async fn lease(
        self,
        run: RunId,
        uas: Vec<UaName>,
    ) -> Result<BTreeMap<UaName, Ipv4Addr>, NetError> {
        let name = link_name(&run);
        if self.shared.closed.get() {
            return Err(NetError::ShutDown);
        }
        if self.shared.links.borrow().contains_key(&name) {
            return Err(NetError::AlreadyLeased(run));
        }
        if uas.is_empty() {
            return Ok(BTreeMap::new());
        }
        // Addresses this host got since start (another sipplauncher's links): our own probe
        // would not hear them answer. Those on our own links are leased already.
        let hosts = self.nl.ipv4_addresses().await?;
        {
            let ours: HashSet<u32> = self.shared.links.borrow().values().copied().collect();
            let mut pool = self.shared.pool.borrow_mut();
            for h in hosts.into_iter().filter(|h| !ours.contains(&h.index)) {
                pool.exclude(h.addr);
            }
        }
        let addrs = match self.choose(&run, uas.len()).await {
            Ok(a) => a,
            Err(e) => {
                self.shared.pool.borrow_mut().release(&run);
                return Err(e);
            }
        };
        if let Err(e) = self.make_link(&name, &addrs).await {
            self.shared.pool.borrow_mut().release(&run);
            return Err(e);
        }
        let out: BTreeMap<UaName, Ipv4Addr> = uas.into_iter().zip(addrs).collect();
        debug!(self.log, "addresses leased"; "run_id" => %run, "link" => &name, "addresses" => ?out);
        Ok(out)
    }

    /// `need` addresses nobody answers ARP for, leased in the pool under `run`.
    async fn choose(&self, run: &RunId, need: usize) -> Result<Vec<Ipv4Addr>, NetError> {
        let (network, prefix) = {
            let pool = self.shared.pool.borrow();
            (pool.network(), pool.prefix())
        };
        let mut chosen: Vec<Ipv4Addr> = Vec::with_capacity(need);
        loop {
            // Made before looking, so that a refill ending in between is not missed.
            let refilled = self.shared.refilled.notified();
            {
                let mut reserve = self.shared.reserve.borrow_mut();
                let mut pool = self.shared.pool.borrow_mut();
                while chosen.len() < need {
                    let Some((a, probed)) = reserve.pop_front() else {
                        break;
                    };
                    if probed.elapsed() < RESERVE_TTL {
                        pool.lease(a, run);
                        chosen.push(a);
                    } else {
                        pool.unlease(a);
                    }
                }
            }
            if chosen.len() == need {
                return Ok(chosen);
            }
            // A refill under way holds candidates that may be all the network has left.
            if !self.shared.refilling.get() {
                break;
            }
            refilled.await;
        }
        for _ in 0..MAX_ROUNDS {
            let fresh = {
                let mut pool = self.shared.pool.borrow_mut();
                let mut rng = rand::rng();
                let mut fresh = Vec::with_capacity(need - chosen.len());
                for _ in chosen.len()..need {
                    let a = pool.pick(&mut rng)?;
                    pool.lease(a, run);
                    fresh.push(a);
                }
                fresh
            };
            let taken = if is_loopback_network(network) {
                HashSet::new()
            } else {
                let candidates = fresh.clone();
                let (timeout, retries) = (self.arp_timeout, self.arp_retries);
                tokio::task::spawn_blocking(move || arp::probe(&candidates, timeout, retries))
                    .await
                    .map_err(|e| ArpError::Other(format!("the probe thread failed: {e}")))??
            };
            {
                let mut pool = self.shared.pool.borrow_mut();
                for a in fresh {
                    if taken.contains(&a) {
                        debug!(self.log, "address answers ARP: skipped"; "address" => %a, "run_id" => %run);
                        pool.exclude(a);
                    } else {
                        chosen.push(a);
                    }
                }
            }
            if chosen.len() == need {
                // The pool holds exactly the chosen addresses for `run` (not the answered).
                let mut pool = self.shared.pool.borrow_mut();
                for a in pool_leased_of(&pool, run, &chosen) {
                    pool.unlease(a);
                }
                for a in &chosen {
                    pool.lease(*a, run);
                }
                return Ok(chosen);
            }
        }
        Err(NetError::NoFreeAddress {
            network,
            prefix,
            tries: MAX_ROUNDS,
        })
    }

    /// Makes `name`, sets it up, adds the addresses as /32s; on failure removes it again.
    async fn make_link(&self, name: &str, addrs: &[Ipv4Addr]) -> Result<(), NetError> {
        let spare = self.shared.spares.borrow_mut().pop();
        let index = match spare {
            Some((spare, index)) => match self.nl.rename_link(index, &spare, name).await {
                Ok(()) => {
                    debug!(self.log, "spare link reused"; "link" => name, "was" => &spare);
                    index
                }
                Err(e) => {
                    // Not usable: let Shutdown try to delete it; make a new one.
                    warn!(self.log, "{e}");
                    self.shared.links.borrow_mut().insert(spare, index);
                    self.create(name).await?
                }
            },
            None => self.create(name).await?,
        };
        self.shared
            .links
            .borrow_mut()
            .insert(name.to_string(), index);
        let made_index = index;
        let configured = async {
            self.nl.set_up(made_index, name).await?;
            for &a in addrs {
                // A /32: no connected route for the DUT network on this link, so traffic
                // to the DUT still leaves by the real interface.
                self.nl.add_address(made_index, name, a, 32).await?;
                debug!(self.log, "address added"; "link" => name, "address" => %a);
            }
            Ok::<(), NetlinkError>(())
        }
        .await;
        if let Err(e) = configured {
            match self.nl.delete_link(name).await {
                Ok(_) => {
                    self.shared.links.borrow_mut().remove(name);
                    debug!(self.log, "link removed"; "link" => name);
                }
                Err(e2) => warn!(self.log, "cannot remove link {name}: {e2}"),
            }
            return Err(e.into());
        }
        Ok(())
    }
}

/// The addresses `pool` holds for `run` that are not in `keep` (candidates that answered).
fn pool_leased_of(pool: &AddressPool, run: &RunId, keep: &[Ipv4Addr]) -> Vec<Ipv4Addr> {
    pool.leased_by(run)
        .into_iter()
        .filter(|a| !keep.contains(a))
        .collect()
}

/// Probes up to `size` fresh candidates in one round and keeps those nobody answered for in the
/// reserve. Runs in the background after a lease; one at a time.
async fn refill_reserve(shared: Rc<Shared>, timeout: Duration, size: usize, log: Logger) {
    if shared.refilling.replace(true) || shared.closed.get() {
        return;
    }
    let candidates: Vec<Ipv4Addr> = {
        let mut pool = shared.pool.borrow_mut();
        let reserve = shared.reserve.borrow();
        let fresh = reserve
            .iter()
            .filter(|(_, t)| t.elapsed() < RESERVE_TTL / 2)
            .count();
        // Leave half of the free addresses to the synchronous path of a nearly full network.
        let room = (pool.free() / 2).min(size);
        let mut rng = rand::rng();
        let mut out = Vec::new();
        for _ in fresh..room {
            match pool.pick(&mut rng) {
                Ok(a) => {
                    pool.lease(a, &reserve_id());
                    out.push(a);
                }
                Err(_) => break,
            }
        }
        out
    };
    if candidates.is_empty() {
        shared.refilling.set(false);
        shared.refilled.notify_waiters();
        return;
    }
    let probe = candidates.clone();
    // One round, no retry: a candidate that is missed here is probed again when it is used
    // after its time in the reserve ran out.
    let taken = tokio::task::spawn_blocking(move || arp::probe(&probe, timeout, 1)).await;
    let now = Instant::now();
    {
        let mut pool = shared.pool.borrow_mut();
        let mut reserve = shared.reserve.borrow_mut();
        reserve.retain(|(a, t)| {
            let keep = t.elapsed() < RESERVE_TTL;
            if !keep {
                pool.unlease(*a);
            }
            keep
        });
        match taken {
            Ok(Ok(taken)) => {
                for a in candidates {
                    if taken.contains(&a) {
                        pool.unlease(a);
                        pool.exclude(a);
                    } else {
                        reserve.push_back((a, now));
                    }
                }
            }
            Ok(Err(e)) => {
                debug!(log, "reserve probe failed: {e}");
                candidates.into_iter().for_each(|a| pool.unlease(a));
            }
            Err(e) => {
                debug!(log, "reserve probe failed: {e}");
                candidates.into_iter().for_each(|a| pool.unlease(a));
            }
        }
        debug!(log, "address reserve refilled"; "size" => reserve.len());
    }
    shared.refilling.set(false);
    shared.refilled.notify_waiters();
}

impl LeaseJob {
    /// A new link `name` (a failed create removes what it made itself; an existing link of
    /// that name is not ours and is not touched).
    async fn create(&self, name: &str) -> Result<u32, NetError> {
        let made = self.nl.create_link(name, Some(&self.alias)).await?;
        if made.fell_back {
            info!(
                self.log,
                "this kernel has no dummy links: the test links are {}", made.kind
            );
        }
        debug!(self.log, "link added"; "link" => name, "kind" => ?made.kind);
        Ok(made.index)
    }
}

/// Takes the addresses off a run's link and renames it to a spare name for the next run; when
/// that fails, deletes it. The run's addresses go back to the pool once they are off the link.
async fn retire_link(
    shared: &Shared,
    nl: &Netlink,
    run: &RunId,
    log: &Logger,
) -> Result<(), NetError> {
    let name = link_name(run);
    let Some(index) = shared.links.borrow().get(&name).copied() else {
        shared.pool.borrow_mut().release(run);
        return Ok(());
    };
    let spare = format!("{LINK_PREFIX}_{}", RunId::random());
    let recycled = async {
        nl.flush_addresses(index, &name).await?;
        nl.rename_link(index, &name, &spare).await
    }
    .await;
    match recycled {
        Ok(()) => {
            shared.links.borrow_mut().remove(&name);
            shared.spares.borrow_mut().push((spare.clone(), index));
            debug!(log, "link kept as a spare"; "link" => &name, "spare" => &spare);
        }
        Err(e) => {
            debug!(log, "cannot keep link {name} as a spare: {e}");
            remove_link(shared, nl, &name, log).await?;
        }
    }
    let n = shared.pool.borrow_mut().release(run);
    debug!(log, "addresses released"; "run_id" => %run, "count" => n);
    Ok(())
}

/// Deletes `name` if we made it; `Ok` when it is gone (also when it was gone already).
async fn remove_link(
    shared: &Shared,
    nl: &Netlink,
    name: &str,
    log: &Logger,
) -> Result<(), NetError> {
    if !shared.links.borrow().contains_key(name) {
        return Ok(());
    }
    let existed = nl.delete_link(name).await?;
    shared.links.borrow_mut().remove(name);
    if existed {
        debug!(log, "link removed"; "link" => name);
    } else {
        debug!(log, "link already gone"; "link" => name);
    }
    Ok(())
}

impl Actor for NetActor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        // Probe ahead from the start, so that the first test does not wait for ARP either.
        if self.real.is_some() && !is_loopback_network(self.shared.pool.borrow().network()) {
            actix_rt::spawn(refill_reserve(
                self.shared.clone(),
                self.arp_timeout,
                self.reserve_size,
                self.log.clone(),
            ));
        }
    }
}

impl Drop for NetActor {
    /// A last resort when the actor goes without a [`Shutdown`]: remove our links on a
    /// thread of its own (made from this one, so in the same network namespace).
    fn drop(&mut self) {
        if self.real.is_none() {
            return;
        }
        let mut names: Vec<String> = std::mem::take(&mut *self.shared.links.borrow_mut())
            .into_keys()
            .collect();
        names.extend(self.shared.spares.borrow_mut().drain(..).map(|(n, _)| n));
        if names.is_empty() {
            return;
        }
        let log = self.log.clone();
        let worker = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return warn!(log, "cannot remove links {names:?}: {e}"),
            };
            rt.block_on(async {
                let nl = match Netlink::connect().await {
                    Ok(nl) => nl,
                    Err(e) => return warn!(log, "cannot remove links {names:?}: {e}"),
                };
                for name in &names {
                    match nl.delete_link(name).await {
                        Ok(_) => debug!(log, "link removed"; "link" => name),
                        Err(e) => warn!(log, "{e}"),
                    }
                }
            });
        });
        let _ = worker.join();
    }
}

impl Handler<Lease> for NetActor {
    type Result = AtomicResponse<Self, Result<BTreeMap<UaName, Ipv4Addr>, NetError>>;

    fn handle(&mut self, msg: Lease, _: &mut Context<Self>) -> Self::Result {
        let Some(real) = &self.real else {
            let res = if self.shared.closed.get() {
                Err(NetError::ShutDown)
            } else {
                self.lease_dry(msg)
            };
            return AtomicResponse::new(Box::pin(actix::fut::ready(res)));
        };
        let job = LeaseJob {
            shared: self.shared.clone(),
            nl: real.nl.clone(),
            alias: real.alias.clone(),
            log: self.log.clone(),
            arp_timeout: self.arp_timeout,
            arp_retries: self.arp_retries,
        };
        let probes = !is_loopback_network(self.shared.pool.borrow().network());
        let (shared, timeout, size, log) = (
            self.shared.clone(),
            self.arp_timeout,
            self.reserve_size,
            self.log.clone(),
        );
        let work = async move {
            let res = job.lease(msg.run_id, msg.uas).await;
            if probes {
                actix_rt::spawn(refill_reserve(shared, timeout, size, log));
            }
            res
        };
        AtomicResponse::new(Box::pin(work.into_actor(self)))
    }
}

impl Handler<Release> for NetActor {
    type Result = AtomicResponse<Self, Result<(), NetError>>;

    fn handle(&mut self, msg: Release, _: &mut Context<Self>) -> Self::Result {
        let shared = self.shared.clone();
        let log = self.log.clone();
        let nl = self.real.as_ref().map(|r| r.nl.clone());
        let work = async move {
            match nl {
                // Addresses stay leased while their link cannot be cleared.
                Some(nl) => retire_link(&shared, &nl, &msg.run_id, &log).await,
                None => {
                    let n = shared.pool.borrow_mut().release(&msg.run_id);
                    debug!(log, "addresses released"; "run_id" => %msg.run_id, "count" => n);
                    Ok(())
                }
            }
        };
        AtomicResponse::new(Box::pin(work.into_actor(self)))
    }
}

impl Handler<Shutdown> for NetActor {
    type Result = AtomicResponse<Self, Result<(), ShutdownError>>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.shared.closed.set(true);
        let shared = self.shared.clone();
        let log = self.log.clone();
        let nl = self.real.as_ref().map(|r| r.nl.clone());
        let work = async move {
            let Some(nl) = nl else { return Ok(()) };
            {
                let mut links = shared.links.borrow_mut();
                links.extend(shared.spares.borrow_mut().drain(..));
            }
            // One batch for all of them; then one by one whatever is left (and the bookkeeping).
            if !shared.links.borrow().is_empty() {
                if let Err(e) = nl.delete_own_group().await {
                    debug!(log, "{e}");
                }
            }
            let names: Vec<String> = shared.links.borrow().keys().cloned().collect();
            let mut problems = Vec::new();
            for name in names {
                if let Err(e) = remove_link(&shared, &nl, &name, &log).await {
                    problems.push(e.to_string());
                }
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(NetError::Cleanup(problems).into())
            }
        };
        AtomicResponse::new(Box::pin(work.into_actor(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::netlink::testns;
    use actix::Addr;
    use std::time::Instant;

    fn log() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    fn uas(n: usize) -> Vec<UaName> {
        (1..=n).map(|i| UaName(format!("ua{i}"))).collect()
    }

    fn run(id: &str) -> RunId {
        RunId(id.into())
    }

    async fn lease(
        net: &Addr<NetActor>,
        id: &str,
        n: usize,
    ) -> Result<BTreeMap<UaName, Ipv4Addr>, NetError> {
        net.send(Lease {
            run_id: run(id),
            uas: uas(n),
        })
        .await
        .unwrap()
    }

    async fn release(net: &Addr<NetActor>, id: &str) -> Result<(), NetError> {
        net.send(Release { run_id: run(id) }).await.unwrap()
    }

    /// The `sipp-*` links of the namespace and the IPv4 addresses on each.
    async fn sipp_links(
        nl: &Netlink,
    ) -> BTreeMap<String, (crate::net::netlink::Link, Vec<(Ipv4Addr, u8)>)> {
        let addrs = nl.ipv4_addresses().await.unwrap();
        nl.links()
            .await
            .unwrap()
            .into_iter()
            .filter(|l| l.name.starts_with(LINK_PREFIX))
            .map(|l| {
                let mut on: Vec<(Ipv4Addr, u8)> = addrs
                    .iter()
                    .filter(|a| a.index == l.index)
                    .map(|a| (a.addr, a.prefix))
                    .collect();
                on.sort();
                (l.name.clone(), (l, on))
            })
            .collect()
    }

    #[test]
    fn dry_lease_touches_nothing() {
        actix_rt::System::new().block_on(async {
            let net = NetActor::dry(Ipv4Addr::new(10, 0, 0, 1), 24, log()).start();
            let got = lease(&net, "aaaaaa", 3).await.unwrap();
            assert_eq!(got.len(), 3);
            release(&net, "aaaaaa").await.unwrap();
            net.send(Shutdown).await.unwrap().unwrap();
            assert_eq!(lease(&net, "bbbbbb", 1).await, Err(NetError::ShutDown));
        });
    }

    #[test]
    fn real_lease_on_loopback_makes_the_link_and_release_removes_it() {
        testns::in_netns("real lease on loopback", || {
            actix_rt::System::new().block_on(async {
                let nl = Netlink::connect().await.unwrap();
                let net = NetActor::real(Ipv4Addr::new(127, 0, 0, 1), 24, log())
                    .await
                    .unwrap()
                    .start();
                let got = lease(&net, "abcdef", 3).await.unwrap();
                let mut want: Vec<(Ipv4Addr, u8)> = got.values().map(|a| (*a, 32)).collect();
                want.sort();
                assert_eq!(want.len(), 3);
                assert!(!want.contains(&(Ipv4Addr::new(127, 0, 0, 1), 32)));
                let links = sipp_links(&nl).await;
                let (link, on) = &links["sipp-abcdef"];
                assert!(link.up);
                assert_eq!(
                    link.alias.as_deref(),
                    Some(owner_alias(&RunOwner::current().unwrap()).as_str())
                );
                assert_eq!(on, &want);
                // The same run twice is refused, and its link stays.
                assert_eq!(
                    lease(&net, "abcdef", 1).await,
                    Err(NetError::AlreadyLeased(run("abcdef")))
                );
                release(&net, "abcdef").await.unwrap();
                // The link stays as a spare without addresses, and the next run gets it.
                let links = sipp_links(&nl).await;
                assert_eq!(links.len(), 1, "{links:?}");
                let (spare, (spare_link, on)) = links.iter().next().unwrap();
                assert!(spare.starts_with("sipp-_"), "{spare}");
                assert!(on.is_empty());
                let index = spare_link.index;
                // A release of a run without a link (or twice) is fine.
                release(&net, "abcdef").await.unwrap();
                lease(&net, "ghijkl", 1).await.unwrap();
                let links = sipp_links(&nl).await;
                assert_eq!(links["sipp-ghijkl"].0.index, index, "the spare was reused");
                assert_eq!(links.len(), 1);
                net.send(Shutdown).await.unwrap().unwrap();
                assert!(sipp_links(&nl).await.is_empty());
            });
        });
    }

    #[test]
    fn concurrent_leases_never_share_an_address() {
        testns::in_netns("concurrent leases", || {
            actix_rt::System::new().block_on(async {
                let nl = Netlink::connect().await.unwrap();
                // 6 usable, the DUT is one: exactly 5 to give.
                let net = NetActor::real(Ipv4Addr::new(127, 0, 0, 1), 29, log())
                    .await
                    .unwrap()
                    .start();
                for round in 0..5 {
                    let (a, b) =
                        futures_util::join!(lease(&net, "aaaaaa", 2), lease(&net, "bbbbbb", 3));
                    let (a, b) = (a.unwrap(), b.unwrap());
                    let all: HashSet<Ipv4Addr> = a.values().chain(b.values()).copied().collect();
                    assert_eq!(all.len(), 5, "round {round}: {a:?} {b:?}");
                    assert_eq!(sipp_links(&nl).await.len(), 2);
                    assert!(matches!(
                        lease(&net, "cccccc", 1).await,
                        Err(NetError::Pool(PoolError::Exhausted { .. }))
                    ));
                    release(&net, "aaaaaa").await.unwrap();
                    release(&net, "bbbbbb").await.unwrap();
                }
                // Only the two links, renamed spares between runs; Shutdown removes them.
                let links = sipp_links(&nl).await;
                assert_eq!(links.len(), 2);
                assert!(links.keys().all(|n| n.starts_with("sipp-_")), "{links:?}");
                net.send(Shutdown).await.unwrap().unwrap();
                assert!(sipp_links(&nl).await.is_empty());
            });
        });
    }

    #[test]
    fn leftover_links_are_removed_unless_their_owner_runs() {
        testns::in_netns("leftover links", || {
            actix_rt::System::new().block_on(async {
                let nl = Netlink::connect().await.unwrap();
                let (_, dead) = crate::sys::owner::tests::me_and_a_dead_run();
                let parent = RunOwner::of_process(nix::unistd::getppid().as_raw()).unwrap();
                assert!(parent.is_alive());
                let elsewhere = RunOwner {
                    pidns: dead.pidns + 1,
                    ..dead
                };
                for (name, alias) in [
                    ("sipp-zzzzzz", None),
                    ("sipp-yyyyyy", Some(owner_alias(&dead))),
                    // An alias of ours but without start time and pid namespace: a leftover.
                    ("sipp-wwwwww", Some("sipplauncher pid=1".to_string())),
                    ("sipp-vvvvvv", Some("someone else's".to_string())),
                    // A live run, and one of another pid namespace (a container sharing this
                    // network namespace): both left alone.
                    ("sipp-xxxxxx", Some(owner_alias(&parent))),
                    ("sipp-uuuuuu", Some(owner_alias(&elsewhere))),
                    ("other", None),
                ] {
                    nl.create_link(name, alias.as_deref()).await.unwrap();
                }
                let net = NetActor::real(Ipv4Addr::new(127, 0, 0, 1), 24, log())
                    .await
                    .unwrap();
                let left: Vec<String> = nl
                    .links()
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|l| l.name)
                    .filter(|n| n != "lo")
                    .collect();
                assert_eq!(left, ["sipp-xxxxxx", "sipp-uuuuuu", "other"]);
                // Not ours: neither Shutdown nor the actor's end removes it.
                let net = net.start();
                net.send(Shutdown).await.unwrap().unwrap();
                assert!(nl.link("sipp-xxxxxx").await.unwrap().is_some());
            });
        });
    }

    #[test]
    fn an_address_that_answers_arp_is_never_given() {
        testns::in_netns("arp on a veth", || {
            actix_rt::System::new().block_on(async {
                let nl = Netlink::connect().await.unwrap();
                let ip = |c: u8, d: u8| Ipv4Addr::new(10, c, 0, d);
                // Here: va with .3/29 and .14/28. Over the wire: the DUTs (.1) and
                // 10.123.0.2, 10.124.0.2-13, which answer ARP.
                let mut far = vec![(ip(123, 1), 29), (ip(123, 2), 29)];
                far.extend((1..=13).map(|d| (ip(124, d), 28)));
                let _peer = testns::veth(&[(ip(123, 3), 29), (ip(124, 14), 28)], &far, true).await;
                testns::wait_running(&["va"]).await;

                // 10.123.0.0/29: .2 .4 .5 .6 are candidates, .2 answers.
                let mut actor = NetActor::real(ip(123, 1), 29, log()).await.unwrap();
                actor.arp_timeout = Duration::from_millis(30);
                let net = actor.start();
                assert!(matches!(
                    lease(&net, "aaaaaa", 4).await,
                    Err(NetError::Pool(PoolError::Exhausted { .. }))
                ));
                assert!(sipp_links(&nl).await.is_empty());
                let got = lease(&net, "bbbbbb", 3).await.unwrap();
                let got: HashSet<Ipv4Addr> = got.into_values().collect();
                assert_eq!(got, HashSet::from([ip(123, 4), ip(123, 5), ip(123, 6)]));
                release(&net, "bbbbbb").await.unwrap();

                // 10.124.0.0/28: every candidate answers: the lease gives up (after 10
                // rounds, or sooner when the probes ahead found every address taken).
                let mut actor = NetActor::real(ip(124, 1), 28, log()).await.unwrap();
                actor.arp_timeout = Duration::from_millis(20);
                let net = actor.start();
                let err = lease(&net, "cccccc", 1).await.unwrap_err().to_string();
                assert!(
                    err == "no free address in 10.124.0.0/28 after 10 tries: addresses answer ARP"
                        || err
                            == "no free address left in 10.124.0.0/28 (14 usable, 14 taken or excluded)",
                    "{err}"
                );
                assert!(sipp_links(&nl).await.is_empty());
            });
        });
    }

    /// Our links carry the run's own link group, and one request deletes them all (and
    /// nothing else: a link of ours without it, a foreign one).
    #[test]
    fn our_links_go_in_one_group_delete() {
        testns::in_netns("group delete", || {
            actix_rt::System::new().block_on(async {
                let nl = Netlink::connect().await.unwrap();
                let alias = owner_alias(&RunOwner::current().unwrap());
                for name in ["sipp-aaaaaa", "sipp-bbbbbb", "sipp-_cccccc"] {
                    nl.create_link(name, Some(&alias)).await.unwrap();
                }
                // No alias, so no group: someone else's link.
                nl.create_link("sipp-other", None).await.unwrap();
                nl.delete_own_group().await.unwrap();
                let left: Vec<String> = sipp_links(&nl).await.into_keys().collect();
                assert_eq!(left, vec!["sipp-other".to_string()]);
                // With nothing left in the group, it is not an error.
                nl.delete_own_group().await.unwrap();
            });
        });
    }

    #[test]
    fn shutdown_removes_the_links_not_released() {
        testns::in_netns("shutdown", || {
            actix_rt::System::new().block_on(async {
                let nl = Netlink::connect().await.unwrap();
                let net = NetActor::real(Ipv4Addr::new(127, 0, 0, 1), 24, log())
                    .await
                    .unwrap()
                    .start();
                for id in ["aaaaaa", "bbbbbb", "cccccc"] {
                    lease(&net, id, 2).await.unwrap();
                }
                release(&net, "bbbbbb").await.unwrap();
                // One removed behind our back: still fine.
                nl.delete_link("sipp-cccccc").await.unwrap();
                // sipp-aaaaaa and bbbbbb's link, now a spare.
                assert_eq!(sipp_links(&nl).await.len(), 2);
                net.send(Shutdown).await.unwrap().unwrap();
                assert!(sipp_links(&nl).await.is_empty());
                assert_eq!(lease(&net, "dddddd", 1).await, Err(NetError::ShutDown));
                release(&net, "aaaaaa").await.unwrap();
            });
        });
    }

    #[test]
    fn links_left_when_the_actor_goes_are_removed() {
        testns::in_netns("actor dropped", || {
            actix_rt::System::new().block_on(async {
                let net = NetActor::real(Ipv4Addr::new(127, 0, 0, 1), 24, log())
                    .await
                    .unwrap()
                    .start();
                lease(&net, "aaaaaa", 1).await.unwrap();
            });
            // The System is gone, and the actor with it.
            testns::runtime().block_on(async {
                let nl = Netlink::connect().await.unwrap();
                assert!(sipp_links(&nl).await.is_empty());
            });
        });
    }

    #[test]
    fn not_permitted_is_one_clear_line() {
        testns::in_netns("not permitted", || {
            testns::drop_capability(12); // CAP_NET_ADMIN
            actix_rt::System::new().block_on(async {
                let err = NetActor::real(Ipv4Addr::new(127, 0, 0, 1), 24, log())
                    .await
                    .err()
                    .unwrap();
                assert_eq!(
                    err.to_string(),
                    "netlink: Operation not permitted (run as root, or use --dry-run)"
                );
                assert!(err.is_fatal());
            });
        });
    }

    fn median(mut v: Vec<Duration>) -> Duration {
        v.sort();
        v[v.len() / 2]
    }

    /// `cargo test -p sipplauncher-actors --lib timing -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn timing_lease_release() {
        testns::in_netns("timing", || {
            actix_rt::System::new().block_on(async {
                let net = NetActor::real(Ipv4Addr::new(127, 0, 0, 1), 24, log())
                    .await
                    .unwrap()
                    .start();
                let mut times = Vec::new();
                for _ in 0..20 {
                    let t = Instant::now();
                    lease(&net, "aaaaaa", 2).await.unwrap();
                    release(&net, "aaaaaa").await.unwrap();
                    times.push(t.elapsed());
                }
                eprintln!(
                    "loopback lease+release of 2: median {:?} of 20",
                    median(times)
                );

                let ip = |d: u8| Ipv4Addr::new(10, 123, 0, d);
                let _peer = testns::veth(&[(ip(3), 24)], &[(ip(1), 24)], true).await;
                testns::wait_running(&["va"]).await;
                let net = NetActor::real(ip(1), 24, log()).await.unwrap().start();
                let mut times = Vec::new();
                for _ in 0..5 {
                    let t = Instant::now();
                    lease(&net, "bbbbbb", 2).await.unwrap();
                    release(&net, "bbbbbb").await.unwrap();
                    times.push(t.elapsed());
                }
                eprintln!(
                    "veth lease+release of 2 with one ARP round (50 ms, 1 retry): median {:?} of 5",
                    median(times)
                );
            });
        });
    }
}
