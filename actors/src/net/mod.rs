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
pub mod claim;
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
use self::claim::{Claim, ClaimError, CLAIM_TIMEOUT};
use self::netlink::{alias_owner, owner_alias, Netlink, NetlinkError, LINK_PREFIX};
use self::pool::{AddressPool, PoolError};
use crate::core::plan::{RunId, UaName};
use crate::messages::{Lease, Release, Shutdown, ShutdownError};
use crate::sys::last_resort;
use crate::sys::owner::RunOwner;

/// How long an address that someone answered ARP for is not tried again: neighbours may leave
/// (another sipplauncher on the link gives its test addresses back after each test).
pub const BUSY_FOR: Duration = Duration::from_secs(10);

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
    #[error(transparent)]
    Claim(#[from] ClaimError),
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
    /// The link that holds the reserve's addresses, `sipp-+<letters>` (made with the actor),
    /// so that they answer ARP: another machine probing for one of them hears that it is taken.
    reserve_link: RefCell<Option<(String, u32)>>,
    /// The addresses on the reserve link.
    on_reserve_link: RefCell<HashSet<Ipv4Addr>>,
    /// Probes found too old to trust when their addresses were to be taken, so far.
    stale: Cell<u64>,
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
                reserve_link: RefCell::new(None),
                on_reserve_link: RefCell::new(HashSet::new()),
                stale: Cell::new(0),
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
        let me = RunOwner::current()
            .map_err(|e| NetlinkError::Connect(format!("name our links: /proc/self: {e}")))?;
        Self::real_owned(dut, prefix, log, me).await
    }

    /// [`NetActor::real`] for links owned by `me` (tests play two processes in one).
    async fn real_owned(
        dut: Ipv4Addr,
        prefix: u8,
        log: Logger,
        me: RunOwner,
    ) -> Result<NetActor, NetError> {
        let nl = Netlink::connect().await?;
        // Under the address lock: another sipplauncher making a link (made first, its alias
        // set next) is never caught without its alias and taken for a leftover.
        let claim = Claim::take(CLAIM_TIMEOUT).await?;
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
        let theirs: HashSet<u32> = nl
            .links()
            .await?
            .into_iter()
            .filter(|l| l.name.starts_with(LINK_PREFIX))
            .map(|l| l.index)
            .collect();
        let mut actor = NetActor::dry(dut, prefix, log);
        {
            let mut pool = actor.shared.pool.borrow_mut();
            for host in hosts {
                // Other sipplaunchers' test addresses come and go: each pick avoids those
                // held at that moment (see `Acquire::run`); the rest is this host's own.
                if !theirs.contains(&host.index) {
                    pool.exclude_host(host.addr, host.prefix);
                }
            }
            for gw in gateways {
                pool.exclude(gw);
            }
        }
        // The link that holds the reserve's addresses (see `Shared::reserve_link`).
        let alias = owner_alias(&me);
        let name = format!("{LINK_PREFIX}+{}", RunId::random());
        let made = nl.create_link(&name, Some(&alias)).await?;
        actor
            .shared
            .links
            .borrow_mut()
            .insert(name.clone(), made.index);
        if let Err(e) = nl.set_up(made.index, &name).await {
            let _ = nl.delete_link(&name).await;
            return Err(e.into());
        }
        debug!(actor.log, "reserve link added"; "link" => &name, "kind" => ?made.kind);
        drop(claim);
        *actor.shared.reserve_link.borrow_mut() = Some((name, made.index));
        actor.real = Some(Real { nl, alias });
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
        let mut chosen: Vec<Ipv4Addr> = Vec::with_capacity(uas.len());
        let mut res = self.choose(&run, uas.len(), &mut chosen).await;
        if res.is_ok() {
            // Off the reserve link and onto the run's, under the lock: other processes of
            // this host never see them free.
            res = match Claim::take(CLAIM_TIMEOUT).await {
                Ok(_claim) => self.make_link(&name, &chosen).await,
                Err(e) => Err(e.into()),
            };
        }
        if let Err(e) = res {
            self.give_back(&run, &chosen);
            return Err(e);
        }
        let out: BTreeMap<UaName, Ipv4Addr> = uas.into_iter().zip(chosen).collect();
        debug!(self.log, "addresses leased"; "run_id" => %run, "link" => &name, "addresses" => ?out);
        Ok(out)
    }

    /// After a failed lease: the addresses still on the reserve link go back to the reserve,
    /// the others (taken off the host with the failed link) back to the pool.
    fn give_back(&self, run: &RunId, chosen: &[Ipv4Addr]) {
        let mut reserve = self.shared.reserve.borrow_mut();
        let mut pool = self.shared.pool.borrow_mut();
        for &a in chosen {
            if self.shared.on_reserve_link.borrow().contains(&a) {
                pool.unlease(a);
                pool.lease(a, &reserve_id());
                reserve.push_front((a, Instant::now()));
            }
        }
        pool.release(run);
    }

    /// Fills `chosen` up to `need` addresses held on the reserve link (and leased in the pool
    /// under `run`): from the reserve first, else acquired now.
    async fn choose(
        &self,
        run: &RunId,
        need: usize,
        chosen: &mut Vec<Ipv4Addr>,
    ) -> Result<(), NetError> {
        loop {
            // Made before looking, so that a refill ending in between is not missed.
            let refilled = self.shared.refilled.notified();
            let mut expired = Vec::new();
            {
                let mut reserve = self.shared.reserve.borrow_mut();
                let mut pool = self.shared.pool.borrow_mut();
                while chosen.len() < need {
                    let Some((a, held)) = reserve.pop_front() else {
                        break;
                    };
                    if held.elapsed() < RESERVE_TTL {
                        pool.unlease(a);
                        pool.lease(a, run);
                        chosen.push(a);
                    } else {
                        expired.push(a);
                    }
                }
            }
            retire_reserved(&self.shared, &self.nl, &expired, &self.log).await;
            if chosen.len() == need {
                return Ok(());
            }
            // A refill under way holds candidates that may be all the network has left.
            if !self.shared.refilling.get() {
                break;
            }
            refilled.await;
        }
        let acquire = Acquire {
            shared: &self.shared,
            nl: &self.nl,
            log: &self.log,
            timeout: self.arp_timeout,
            retries: self.arp_retries,
        };
        // Rounds whose probe was too old to trust (a loaded machine) do not count: they say
        // nothing of the network. A bound all the same.
        let mut rounds = 0;
        for _ in 0..MAX_ROUNDS * 10 {
            let stale = self.shared.stale.get();
            let got = acquire.run(need - chosen.len(), run).await?;
            chosen.extend(got);
            if chosen.len() == need {
                return Ok(());
            }
            if self.shared.stale.get() == stale {
                rounds += 1;
                if rounds == MAX_ROUNDS {
                    break;
                }
            }
        }
        let pool = self.shared.pool.borrow();
        Err(NetError::NoFreeAddress {
            network: pool.network(),
            prefix: pool.prefix(),
            tries: MAX_ROUNDS,
        })
    }

    /// Makes `name`, sets it up and moves the addresses from the reserve link onto it as /32s;
    /// on failure removes it again. Called under the address lock.
    async fn make_link(&self, name: &str, addrs: &[Ipv4Addr]) -> Result<(), NetError> {
        let spare = self.shared.spares.borrow_mut().pop();
        // A spare is up already (it was renamed while up); a new link is made down.
        let (index, reused) = match spare {
            Some((spare, index)) => match self.nl.rename_link(index, &spare, name).await {
                Ok(()) => {
                    debug!(self.log, "spare link reused"; "link" => name, "was" => &spare);
                    (index, true)
                }
                Err(e) => {
                    // Not usable: let Shutdown try to delete it; make a new one.
                    warn!(self.log, "{e}");
                    self.shared.links.borrow_mut().insert(spare, index);
                    (self.create(name).await?, false)
                }
            },
            None => (self.create(name).await?, false),
        };
        self.shared
            .links
            .borrow_mut()
            .insert(name.to_string(), index);
        let made_index = index;
        let reserve_link = self.shared.reserve_link.borrow().clone();
        let configured = async {
            if !reused {
                self.nl.set_up(made_index, name).await?;
            }
            for &a in addrs {
                if let Some((rname, rindex)) = &reserve_link {
                    // Off the reserve link first: an address is never on two of our links.
                    if self.shared.on_reserve_link.borrow().contains(&a) {
                        self.nl.delete_address(*rindex, rname, a, 32).await?;
                        self.shared.on_reserve_link.borrow_mut().remove(&a);
                    }
                }
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

/// Takes fresh addresses of the DUT network for this process, so that no other process (of
/// this host or another machine on the link) has them at the same time:
/// 1. picks candidates from the pool and ARP-probes them: those someone answers for are
///    excluded; those another host asks for meanwhile (it is probing them too) are skipped;
/// 2. under the network namespace's address lock, puts the others on the reserve link (so that
///    from now on this host answers ARP for them), but not those another process of this host
///    put on a link meanwhile (its answers do not reach our probe);
/// 3. probes them once more from there: another machine that took one between our probe and
///    our taking it answers now, and it is given up (that machine's own check hears us, so one
///    of the two gives it up, never neither).
///
/// A DUT network in 127/8 is on no wire: no ARP there, steps 2 only.
struct Acquire<'a> {
    shared: &'a Shared,
    nl: &'a Netlink,
    log: &'a Logger,
    timeout: Duration,
    retries: u32,
}

impl Acquire<'_> {
    /// Up to `n` addresses, held on the reserve link and leased in the pool under `holder`;
    /// an error when the pool has none left at all.
    async fn run(&self, n: usize, holder: &RunId) -> Result<Vec<Ipv4Addr>, NetError> {
        // Made before the probe, so that holding what it found is quick (see `hold`).
        let (link, index) = self.reserve_link()?;
        // What other processes of this host hold now is not picked (checked again in `hold`).
        let others = foreign_addresses(self.shared, self.nl).await?;
        let (candidates, loopback) = {
            let mut pool = self.shared.pool.borrow_mut();
            let mut rng = rand::rng();
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                match pool.pick_avoiding(&mut rng, &others) {
                    Ok(a) => {
                        pool.lease(a, holder);
                        out.push(a);
                    }
                    Err(e) if out.is_empty() => return Err(e.into()),
                    Err(_) => break,
                }
            }
            (out, is_loopback_network(pool.network()))
        };
        // When the probe ended (none on a loopback network: nothing to trust or distrust).
        let mut probed = None;
        let free = if loopback {
            candidates
        } else {
            let probe = candidates.clone();
            let (timeout, retries) = (self.timeout, self.retries);
            let heard = tokio::task::spawn_blocking(move || arp::probe(&probe, timeout, retries))
                .await
                .map_err(|e| ArpError::Other(format!("the probe thread failed: {e}")))
                .and_then(|r| r);
            probed = Some(Instant::now());
            let heard = match heard {
                Ok(h) => h,
                Err(e) => {
                    let mut pool = self.shared.pool.borrow_mut();
                    candidates.iter().for_each(|a| pool.unlease(*a));
                    return Err(e.into());
                }
            };
            let mut pool = self.shared.pool.borrow_mut();
            let mut free = Vec::with_capacity(candidates.len());
            for a in candidates {
                if heard.taken.contains(&a) {
                    debug!(self.log, "address answers ARP: skipped"; "address" => %a);
                    pool.unlease(a);
                    pool.set_busy(a, BUSY_FOR);
                } else if heard.wanted.contains(&a) {
                    debug!(self.log, "address asked for by another host: skipped"; "address" => %a);
                    pool.unlease(a);
                } else {
                    free.push(a);
                }
            }
            free
        };
        let held = match self.hold(&free, &link, index, probed).await {
            Ok(h) => h,
            Err(e) => {
                retire_reserved(self.shared, self.nl, &free, self.log).await;
                return Err(e);
            }
        };
        if loopback || held.is_empty() {
            return Ok(held);
        }
        let probe = held.clone();
        let timeout = self.timeout;
        // Then the addresses kept are announced: the DUT may still map one of them to the
        // machine that gave it up a moment ago (another sipplauncher on its link).
        let checked = tokio::task::spawn_blocking(move || {
            let clash = arp::probe_held(&probe, timeout)?;
            let kept: Vec<Ipv4Addr> = probe.into_iter().filter(|a| !clash.contains(a)).collect();
            Ok((clash, arp::announce(&kept)))
        })
        .await
        .map_err(|e| ArpError::Other(format!("the probe thread failed: {e}")))
        .and_then(|r| r);
        let clash = match checked {
            Ok((c, announced)) => {
                if let Err(e) = announced {
                    // Not fatal: the DUT's cache is only slower to learn where they went.
                    warn!(self.log, "addresses not announced"; "error" => %e);
                }
                c
            }
            Err(e) => {
                retire_reserved(self.shared, self.nl, &held, self.log).await;
                return Err(e.into());
            }
        };
        if clash.is_empty() {
            return Ok(held);
        }
        let (gone, kept): (Vec<Ipv4Addr>, Vec<Ipv4Addr>) =
            held.into_iter().partition(|a| clash.contains(a));
        for a in &gone {
            debug!(self.log, "address taken by another machine meanwhile: given up"; "address" => %a);
        }
        retire_reserved(self.shared, self.nl, &gone, self.log).await;
        let mut pool = self.shared.pool.borrow_mut();
        gone.iter().for_each(|a| pool.set_busy(*a, BUSY_FOR));
        Ok(kept)
    }

    /// The reserve link (made with the actor, see [`NetActor::real`]).
    fn reserve_link(&self) -> Result<(String, u32), NetError> {
        self.shared
            .reserve_link
            .borrow()
            .clone()
            .ok_or_else(|| NetError::Netlink(NetlinkError::Connect("no reserve link".into())))
    }

    /// Puts `addrs` on the reserve link under the address lock; those another process of this
    /// host holds now are busy instead. Returns those put.
    ///
    /// Only while the probe that found them free (ended at `probed`) is recent: two machines
    /// that probe one address with two rounds each, one after the other, hear each other
    /// unless the first one takes it more than two rounds after its last request, i.e. more
    /// than a round after its probe ended. A probe older than that (a loaded machine) is not
    /// trusted: its candidates go back to the pool and are probed again.
    async fn hold(
        &self,
        addrs: &[Ipv4Addr],
        name: &str,
        index: u32,
        probed: Option<Instant>,
    ) -> Result<Vec<Ipv4Addr>, NetError> {
        if addrs.is_empty() {
            return Ok(Vec::new());
        }
        let _claim = Claim::take(CLAIM_TIMEOUT).await?;
        if self.shared.closed.get() {
            return Err(NetError::ShutDown);
        }
        let foreign = foreign_addresses(self.shared, self.nl).await?;
        if let Some(age) = probed
            .map(|p| p.elapsed())
            .filter(|age| *age > self.timeout)
        {
            debug!(self.log, "probe too old to take its addresses: probed again"; "age" => ?age);
            self.shared.stale.set(self.shared.stale.get() + 1);
            let mut pool = self.shared.pool.borrow_mut();
            addrs.iter().for_each(|a| pool.unlease(*a));
            return Ok(Vec::new());
        }
        let mut held = Vec::with_capacity(addrs.len());
        for &a in addrs {
            if foreign.contains(&a) {
                debug!(self.log, "address taken by another process of this host: skipped"; "address" => %a);
                self.shared.pool.borrow_mut().unlease(a);
                continue;
            }
            self.nl.add_address(index, name, a, 32).await?;
            self.shared.on_reserve_link.borrow_mut().insert(a);
            held.push(a);
        }
        Ok(held)
    }
}

/// The IPv4 addresses of this network namespace that are on links not ours (another process's,
/// the host's own).
async fn foreign_addresses(shared: &Shared, nl: &Netlink) -> Result<HashSet<Ipv4Addr>, NetError> {
    let hosts = nl.ipv4_addresses().await?;
    let ours: HashSet<u32> = shared.links.borrow().values().copied().collect();
    Ok(hosts
        .into_iter()
        .filter(|h| !ours.contains(&h.index))
        .map(|h| h.addr)
        .collect())
}

/// Takes addresses off the reserve link (if there) and gives them back to the pool. Best
/// effort: one that cannot be taken off stays excluded.
async fn retire_reserved(shared: &Shared, nl: &Netlink, addrs: &[Ipv4Addr], log: &Logger) {
    let link = shared.reserve_link.borrow().clone();
    for &a in addrs {
        let off = match &link {
            Some((name, index)) if shared.on_reserve_link.borrow().contains(&a) => {
                nl.delete_address(*index, name, a, 32).await
            }
            _ => Ok(()),
        };
        let mut pool = shared.pool.borrow_mut();
        pool.unlease(a);
        match off {
            Ok(()) => {
                shared.on_reserve_link.borrow_mut().remove(&a);
            }
            Err(e) => {
                debug!(log, "{e}");
                pool.exclude(a);
            }
        }
    }
}

/// Acquires up to `size` fresh addresses into the reserve (see [`Acquire`]), so that the next
/// leases take them without waiting for ARP. Runs in the background after a lease; one at a
/// time.
async fn refill_reserve(
    shared: Rc<Shared>,
    nl: Netlink,
    timeout: Duration,
    size: usize,
    log: Logger,
) {
    if shared.refilling.replace(true) || shared.closed.get() {
        return;
    }
    let expired: Vec<Ipv4Addr> = {
        let mut reserve = shared.reserve.borrow_mut();
        let mut out = Vec::new();
        reserve.retain(|(a, t)| {
            let keep = t.elapsed() < RESERVE_TTL;
            if !keep {
                out.push(*a);
            }
            keep
        });
        out
    };
    retire_reserved(&shared, &nl, &expired, &log).await;
    let want = {
        let pool = shared.pool.borrow();
        let reserve = shared.reserve.borrow();
        let fresh = reserve
            .iter()
            .filter(|(_, t)| t.elapsed() < RESERVE_TTL / 2)
            .count();
        // Leave half of the free addresses to the synchronous path of a nearly full network.
        (pool.free() / 2).min(size).saturating_sub(fresh)
    };
    if want > 0 {
        let acquire = Acquire {
            shared: &shared,
            nl: &nl,
            log: &log,
            timeout,
            // Two rounds: another machine probing for a candidate at the same time hears our
            // second request if we did not hear its first (each then gives it up), so that
            // two machines never put one address on a link at once; the check from the
            // reserve link catches what is left (a take within the last milliseconds).
            retries: 1,
        };
        // A round whose probe went stale before its addresses could be taken (a loaded
        // machine) is tried again, a few times.
        for _ in 0..3 {
            let stale = shared.stale.get();
            match acquire.run(want, &reserve_id()).await {
                Ok(held) => {
                    let now = Instant::now();
                    shared
                        .reserve
                        .borrow_mut()
                        .extend(held.into_iter().map(|a| (a, now)));
                }
                Err(e) => debug!(log, "reserve not refilled: {e}"),
            }
            if shared.stale.get() == stale || shared.closed.get() {
                break;
            }
        }
        debug!(log, "address reserve refilled"; "size" => shared.reserve.borrow().len());
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
        let Some(real) = &self.real else { return };
        if !is_loopback_network(self.shared.pool.borrow().network()) {
            actix_rt::spawn(refill_reserve(
                self.shared.clone(),
                real.nl.clone(),
                self.arp_timeout,
                self.reserve_size,
                self.log.clone(),
            ));
        }
    }
}

impl Drop for NetActor {
    /// A last resort when the actor goes without a [`Shutdown`]: our links are removed on a
    /// thread of its own (made from this one, so in the same network namespace), which
    /// [`crate::run`] waits for; never joined here, on the actor thread.
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
        last_resort::spawn("remove links", move || {
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
        let refill = refill_reserve(
            self.shared.clone(),
            real.nl.clone(),
            self.arp_timeout,
            self.reserve_size,
            self.log.clone(),
        );
        let work = async move {
            let res = job.lease(msg.run_id, msg.uas).await;
            if probes {
                actix_rt::spawn(refill);
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

    /// The `sipp-*` links of the namespace and the IPv4 addresses on each, but the reserve
    /// link (see [`all_sipp_links`]).
    async fn sipp_links(
        nl: &Netlink,
    ) -> BTreeMap<String, (crate::net::netlink::Link, Vec<(Ipv4Addr, u8)>)> {
        let mut links = all_sipp_links(nl).await;
        links.retain(|name, _| !name.starts_with("sipp-+"));
        links
    }

    /// Every `sipp-*` link of the namespace, the reserve link `sipp-+...` too.
    async fn all_sipp_links(
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
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
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
                assert!(all_sipp_links(&nl).await.is_empty());
            });
        });
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
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
                assert!(all_sipp_links(&nl).await.is_empty());
            });
        });
    }

    /// Two sipplauncher processes in one network namespace (two actors here: each knows only
    /// its own links, they share the namespace's address lock) lease 3 addresses each at the
    /// same time from a network of 13, 10 times: never one address twice (random picks would
    /// share one in 58% of the rounds), and what one gives back is the other's again later
    /// (busy for a moment, not excluded for good).
    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn two_processes_in_one_namespace_never_share_an_address() {
        testns::in_netns("two processes, one namespace", || {
            actix_rt::System::new().block_on(async {
                let dut = Ipv4Addr::new(127, 0, 0, 1);
                let a = NetActor::real(dut, 28, log()).await.unwrap().start();
                // Another live sipplauncher: its links name our parent (alive, not us).
                let other = RunOwner::of_process(nix::unistd::getppid().as_raw()).unwrap();
                let b = NetActor::real_owned(dut, 28, log(), other)
                    .await
                    .unwrap()
                    .start();
                let mut b_got = HashSet::new();
                for round in 0..10 {
                    let (x, y) =
                        futures_util::join!(lease(&a, "aaaaaa", 3), lease(&b, "bbbbbb", 3));
                    let (x, y) = (x.unwrap(), y.unwrap());
                    let (x, y): (HashSet<Ipv4Addr>, HashSet<Ipv4Addr>) =
                        (x.into_values().collect(), y.into_values().collect());
                    assert!(x.is_disjoint(&y), "round {round}: {x:?} {y:?}");
                    b_got.extend(y);
                    release(&a, "aaaaaa").await.unwrap();
                    release(&b, "bbbbbb").await.unwrap();
                }
                assert!(b_got.len() > 3, "{b_got:?}");
                for net in [a, b] {
                    net.send(Shutdown).await.unwrap().unwrap();
                }
                let nl = Netlink::connect().await.unwrap();
                assert!(all_sipp_links(&nl).await.is_empty());
            });
        });
    }

    /// The reserve's addresses are on the reserve link, so this host answers ARP for them:
    /// another machine on the wire probing for one hears that it is taken.
    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn reserve_addresses_answer_another_machines_probe() {
        testns::in_netns("reserve answers arp", || {
            let rt = testns::runtime();
            let ip = |d: u8| Ipv4Addr::new(10, 125, 0, d);
            let peer = rt
                .block_on(async {
                    let peer = testns::veth(&[(ip(3), 24)], &[(ip(1), 24)], true).await;
                    testns::wait_running(&["va"]).await;
                    peer
                })
                .unwrap();
            drop(rt);
            let held: Vec<Ipv4Addr> = actix_rt::System::new().block_on(async {
                let nl = Netlink::connect().await.unwrap();
                let mut actor = NetActor::real(ip(1), 24, log()).await.unwrap();
                actor.arp_timeout = Duration::from_millis(20);
                actor.reserve_size = 4;
                let net = actor.start();
                let deadline = Instant::now() + Duration::from_secs(5);
                let held = loop {
                    let links = all_sipp_links(&nl).await;
                    let held: Vec<Ipv4Addr> = links
                        .iter()
                        .filter(|(n, _)| n.starts_with("sipp-+"))
                        .flat_map(|(_, (_, on))| on.iter().map(|(a, _)| *a))
                        .collect();
                    if held.len() == 4 || Instant::now() > deadline {
                        break held;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                };
                assert_eq!(held.len(), 4, "the reserve link holds the reserve");
                // The other machine asks while we hold them.
                let asked = held.clone();
                let heard =
                    peer.run(move || arp::probe(&asked, Duration::from_millis(100), 1).unwrap());
                assert_eq!(heard.taken, held.iter().copied().collect::<HashSet<_>>());
                // A lease takes from the reserve: its addresses leave the reserve link.
                let got: HashSet<Ipv4Addr> = lease(&net, "aaaaaa", 2)
                    .await
                    .unwrap()
                    .into_values()
                    .collect();
                assert!(
                    got.iter().all(|a| held.contains(a)),
                    "{got:?} from {held:?}"
                );
                let links = all_sipp_links(&nl).await;
                let on_run: HashSet<Ipv4Addr> =
                    links["sipp-aaaaaa"].1.iter().map(|(a, _)| *a).collect();
                assert_eq!(on_run, got);
                for (name, (_, on)) in &links {
                    if name.starts_with("sipp-+") {
                        assert!(on.iter().all(|(a, _)| !got.contains(a)), "{links:?}");
                    }
                }
                net.send(Shutdown).await.unwrap().unwrap();
                assert!(all_sipp_links(&nl).await.is_empty());
                held
            });
            assert_eq!(held.len(), 4);
        });
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
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
                    // Made as their owners would: in their own link group (not ours).
                    let made = nl.create_link(name, None).await.unwrap();
                    if let Some(alias) = alias {
                        nl.handle()
                            .link()
                            .set(
                                rtnetlink::LinkUnspec::new_with_index(made.index)
                                    .alias(&alias)
                                    .build(),
                            )
                            .execute()
                            .await
                            .unwrap();
                    }
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
                    .filter(|n| n != "lo" && !n.starts_with("sipp-+"))
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
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
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
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
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
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
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
                assert!(all_sipp_links(&nl).await.is_empty());
                assert_eq!(lease(&net, "dddddd", 1).await, Err(NetError::ShutDown));
                release(&net, "aaaaaa").await.unwrap();
            });
        });
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn links_left_when_the_actor_goes_are_removed() {
        testns::in_netns("actor dropped", || {
            actix_rt::System::new().block_on(async {
                let net = NetActor::real(Ipv4Addr::new(127, 0, 0, 1), 24, log())
                    .await
                    .unwrap()
                    .start();
                lease(&net, "aaaaaa", 1).await.unwrap();
            });
            // The System is gone, and the actor with it; its last resort is waited for.
            last_resort::wait();
            testns::runtime().block_on(async {
                let nl = Netlink::connect().await.unwrap();
                assert!(all_sipp_links(&nl).await.is_empty());
            });
        });
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
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
