//! The addresses of the DUT network: which are free to give a test, which are leased. Pure; the
//! NetActor adds what only the machine knows (its own addresses, gateways, ARP answers).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::{Rng, RngExt};

use crate::core::plan::RunId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error(
        "no free address left in {network}/{prefix} ({usable} usable, {taken} taken or excluded)"
    )]
    Exhausted {
        network: Ipv4Addr,
        prefix: u8,
        usable: u64,
        taken: usize,
    },
}

#[derive(Debug)]
pub struct AddressPool {
    network: u32,
    prefix: u8,
    /// Never given out: the DUT, this host's own addresses, gateways.
    excluded: HashSet<Ipv4Addr>,
    /// Not given out until the time given: addresses someone answered ARP for, or another
    /// sipplauncher holds (it gives them back after its test; a neighbour may leave).
    busy: HashMap<Ipv4Addr, Instant>,
    /// Given to a running test.
    leased: HashMap<Ipv4Addr, RunId>,
}

/// The netmask of a prefix length (0 to 32) as a number: `/23` is `0xffff_fe00`.
pub fn prefix_mask(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

impl AddressPool {
    /// The network of `dut`/`prefix` (1..=30, validated by the front end); the DUT is excluded.
    pub fn new(dut: Ipv4Addr, prefix: u8) -> Self {
        let mask = prefix_mask(prefix);
        let mut excluded = HashSet::new();
        excluded.insert(dut);
        AddressPool {
            network: u32::from(dut) & mask,
            prefix,
            excluded,
            busy: HashMap::new(),
            leased: HashMap::new(),
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Host addresses of the network: all but the network and broadcast addresses.
    pub fn usable(&self) -> u64 {
        (1u64 << (32 - u32::from(self.prefix))) - 2
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        let offset = u32::from(addr).wrapping_sub(self.network) as u64;
        u32::from(addr) >= self.network && offset >= 1 && offset <= self.usable()
    }

    pub fn exclude(&mut self, addr: Ipv4Addr) {
        self.excluded.insert(addr);
    }

    /// Excludes a host address of this machine (`addr/prefix` on one of its interfaces) and,
    /// for a subnet that has them (up to /30), that subnet's network and broadcast addresses:
    /// in a DUT network wider than the host's own subnet (`--network-mask 23` on a host with a
    /// /24), the host's kernel takes the broadcast address of its /24 for a broadcast, never
    /// for a test's address: it answers no ARP for it and a test given it cannot be reached.
    pub fn exclude_host(&mut self, addr: Ipv4Addr, prefix: u8) {
        self.exclude(addr);
        if (1..=30).contains(&prefix) {
            let mask = prefix_mask(prefix);
            self.exclude(Ipv4Addr::from(u32::from(addr) & mask));
            self.exclude(Ipv4Addr::from(u32::from(addr) | !mask));
        }
    }

    /// Not to be given out for `how_long` (see `busy`).
    pub fn set_busy(&mut self, addr: Ipv4Addr, how_long: Duration) {
        self.busy.insert(addr, Instant::now() + how_long);
        // Forget the ones whose time is over, so that the map stays small over long runs.
        let now = Instant::now();
        self.busy.retain(|_, until| *until > now);
    }

    fn is_busy(&self, addr: &Ipv4Addr) -> bool {
        self.busy
            .get(addr)
            .is_some_and(|until| *until > Instant::now())
    }

    pub fn is_free(&self, addr: Ipv4Addr) -> bool {
        self.contains(addr)
            && !self.excluded.contains(&addr)
            && !self.leased.contains_key(&addr)
            && !self.is_busy(&addr)
    }

    /// A random free address (not leased, not excluded), or an error when none is left.
    pub fn pick(&self, rng: &mut impl Rng) -> Result<Ipv4Addr, PoolError> {
        self.pick_avoiding(rng, &HashSet::new())
    }

    /// [`AddressPool::pick`], not one of `avoid` either (addresses others hold right now).
    pub fn pick_avoiding(
        &self,
        rng: &mut impl Rng,
        avoid: &HashSet<Ipv4Addr>,
    ) -> Result<Ipv4Addr, PoolError> {
        let free = |a: Ipv4Addr| self.is_free(a) && !avoid.contains(&a);
        let usable = self.usable();
        // Random tries first; a nearly full pool falls back to a scan from a random start.
        for _ in 0..64 {
            let addr = Ipv4Addr::from(self.network + rng.random_range(1..=usable) as u32);
            if free(addr) {
                return Ok(addr);
            }
        }
        let start = rng.random_range(0..usable);
        (0..usable)
            .map(|i| Ipv4Addr::from(self.network + 1 + ((start + i) % usable) as u32))
            .find(|&a| free(a))
            .ok_or_else(|| PoolError::Exhausted {
                network: self.network(),
                prefix: self.prefix,
                usable,
                taken: self.taken() + avoid.iter().filter(|a| self.is_free(**a)).count(),
            })
    }

    pub fn lease(&mut self, addr: Ipv4Addr, run: &RunId) {
        self.leased.insert(addr, run.clone());
    }

    /// Gives back one address, whoever holds it.
    pub fn unlease(&mut self, addr: Ipv4Addr) {
        self.leased.remove(&addr);
    }

    /// Gives back every address of `run`; returns how many.
    pub fn release(&mut self, run: &RunId) -> usize {
        let before = self.leased.len();
        self.leased.retain(|_, r| r != run);
        before - self.leased.len()
    }

    /// The addresses leased under `run`.
    pub fn leased_by(&self, run: &RunId) -> Vec<Ipv4Addr> {
        self.leased
            .iter()
            .filter(|(_, r)| *r == run)
            .map(|(a, _)| *a)
            .collect()
    }

    /// Usable addresses neither leased nor excluded.
    pub fn free(&self) -> usize {
        (self.usable() as usize).saturating_sub(self.taken())
    }

    /// Usable addresses that are excluded, busy or leased.
    fn taken(&self) -> usize {
        let excluded = self
            .excluded
            .iter()
            .filter(|a| self.contains(**a) && !self.leased.contains_key(a))
            .count();
        let busy = self
            .busy
            .keys()
            .filter(|a| {
                self.contains(**a)
                    && self.is_busy(a)
                    && !self.excluded.contains(a)
                    && !self.leased.contains_key(a)
            })
            .count();
        excluded + busy + self.leased.len()
    }

    pub fn leased(&self) -> usize {
        self.leased.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn never_network_broadcast_or_dut_and_no_address_twice() {
        let dut = Ipv4Addr::new(10, 0, 0, 1);
        let mut pool = AddressPool::new(dut, 29); // 6 usable, DUT is one of them
        let mut rng = StdRng::seed_from_u64(7);
        let run = RunId("abcdef".into());
        let mut got = HashSet::new();
        for _ in 0..5 {
            let a = pool.pick(&mut rng).unwrap();
            assert_ne!(a, dut);
            assert_ne!(a, Ipv4Addr::new(10, 0, 0, 0));
            assert_ne!(a, Ipv4Addr::new(10, 0, 0, 7));
            assert!(got.insert(a), "{a} given twice");
            pool.lease(a, &run);
        }
        assert!(matches!(
            pool.pick(&mut rng),
            Err(PoolError::Exhausted { usable: 6, .. })
        ));
        assert_eq!(pool.release(&run), 5);
        assert!(pool.pick(&mut rng).is_ok());
    }

    #[test]
    fn prefix_masks() {
        assert_eq!(prefix_mask(0), 0);
        assert_eq!(prefix_mask(23), 0xffff_fe00);
        assert_eq!(prefix_mask(32), u32::MAX);
        assert_eq!(prefix_mask(40), u32::MAX);
    }

    #[test]
    fn a_host_subnets_network_and_broadcast_are_never_given() {
        // A /23 DUT network; the host has 10.0.0.5/24 and a /32 and a /31 of its own.
        let mut pool = AddressPool::new(Ipv4Addr::new(10, 0, 0, 1), 23);
        pool.exclude_host(Ipv4Addr::new(10, 0, 0, 5), 24);
        pool.exclude_host(Ipv4Addr::new(10, 0, 1, 9), 32);
        pool.exclude_host(Ipv4Addr::new(10, 0, 1, 20), 31);
        for (a, free) in [
            ([10, 0, 0, 5], false),
            ([10, 0, 0, 255], false),
            ([10, 0, 1, 0], true),
            ([10, 0, 0, 254], true),
            ([10, 0, 1, 9], false),
            ([10, 0, 1, 8], true),
            ([10, 0, 1, 10], true),
            ([10, 0, 1, 20], false),
            ([10, 0, 1, 21], true),
        ] {
            assert_eq!(pool.is_free(Ipv4Addr::from(a)), free, "{a:?}");
        }
        assert_eq!(
            (0..2000)
                .filter_map(|_| pool.pick(&mut rand::rng()).ok())
                .filter(|a| *a == Ipv4Addr::new(10, 0, 0, 255))
                .count(),
            0
        );
    }

    #[test]
    fn excluded_addresses_are_skipped() {
        let mut pool = AddressPool::new(Ipv4Addr::new(192, 0, 2, 10), 30); // .9 .10 usable
        pool.exclude(Ipv4Addr::new(192, 0, 2, 9));
        let mut rng = StdRng::seed_from_u64(1);
        assert!(pool.pick(&mut rng).is_err());
    }

    #[test]
    fn busy_addresses_come_back_when_their_time_is_over() {
        let mut pool = AddressPool::new(Ipv4Addr::new(192, 0, 2, 10), 30); // .9 .10 usable
        let nine = Ipv4Addr::new(192, 0, 2, 9);
        let mut rng = StdRng::seed_from_u64(1);
        pool.set_busy(nine, Duration::from_millis(50));
        assert!(!pool.is_free(nine));
        assert_eq!(pool.free(), 0);
        assert!(pool.pick(&mut rng).is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(pool.is_free(nine));
        assert_eq!(pool.pick(&mut rng), Ok(nine));
    }

    #[test]
    fn loopback_network() {
        let pool = AddressPool::new(Ipv4Addr::new(127, 0, 0, 1), 24);
        assert_eq!(pool.network(), Ipv4Addr::new(127, 0, 0, 0));
        assert_eq!(pool.usable(), 254);
        assert!(pool.contains(Ipv4Addr::new(127, 0, 0, 254)));
        assert!(!pool.contains(Ipv4Addr::new(127, 0, 0, 255)));
        assert!(!pool.contains(Ipv4Addr::new(127, 0, 1, 1)));
    }
}
