//! The ARP probe of candidate addresses (SPEC §5): is anyone on the networks of this host
//! using them? Blocking: call it from a thread of its own or `tokio::task::spawn_blocking`.
//!
//! The caller decides when to probe: a DUT network in 127.0.0.0/8 is on no wire, so the
//! NetActor never probes for it (no ARP at all then).

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pnet::datalink::{self, Channel, DataLinkReceiver, DataLinkSender, NetworkInterface};
use pnet::ipnetwork::IpNetwork;
use pnet::packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
use pnet::packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet::packet::Packet;
use pnet::util::MacAddr;

/// The longest a single read waits, so that a round ends on time.
const READ_SLICE: Duration = Duration::from_millis(5);
const FRAME_LEN: usize = 42; // Ethernet header (14) + ARP for IPv4 over Ethernet (28)

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArpError {
    #[error("arp probe on {interface}: {reason}")]
    Interface {
        interface: String,
        reason: String,
        /// The errno, when the system gave one (EPERM: not root).
        errno: Option<i32>,
    },
    #[error("arp probe: {0}")]
    Other(String),
}

/// What a probe heard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probed {
    /// Candidates someone answered for, or announced (RFC 5227): in use, not to be given.
    pub taken: HashSet<Ipv4Addr>,
    /// Candidates another host asked for while we probed: another machine probing for the same
    /// address (a sipplauncher sharing the DUT's link), or someone looking for it. Not to be
    /// given now; they may be tried again later.
    pub wanted: HashSet<Ipv4Addr>,
}

impl Probed {
    /// Taken or wanted: not to be given now.
    pub fn refused(&self, a: &Ipv4Addr) -> bool {
        self.taken.contains(a) || self.wanted.contains(a)
    }
}

/// Sends an ARP request for each candidate on every interface that is up, running, not
/// loopback, does ARP, has a MAC and an IPv4 address and is not one of our `sipp-*` links;
/// collects answers for `timeout`, then asks again (`retries` times) for the candidates
/// nobody answered. Returns the candidates someone answered for or announced (taken), and those
/// another host asked for meanwhile (wanted: when two machines probe for one address at the
/// same time, each hears the other and neither takes it). The sender address of a request is
/// the interface's own IPv4 address in the candidate's subnet, else 0.0.0.0 (an RFC 5227
/// probe).
///
/// All candidates are asked together and interfaces in parallel: a probe with nobody
/// answering costs `(1 + retries) * timeout`, however many candidates and interfaces.
pub fn probe(candidates: &[Ipv4Addr], timeout: Duration, retries: u32) -> Result<Probed, ArpError> {
    if candidates.is_empty() {
        return Ok(Probed::default());
    }
    let all = datalink::interfaces();
    // Requests from any interface of this host are our own (several interfaces probe at once).
    let ours: Vec<MacAddr> = all.iter().filter_map(|i| i.mac).collect();
    let interfaces: Vec<NetworkInterface> = all.into_iter().filter(eligible).collect();
    probe_on(&interfaces, &ours, candidates, false, timeout, retries)
}

/// Asks once more, for `timeout`, for addresses this host has just put on a link: those another
/// host answers for too are taken (it put them on its own link between our probe and our
/// taking them; its own check sees ours, so one of the two gives them up, never neither).
/// Answers from this host's own interfaces are ours and do not count.
pub fn probe_held(held: &[Ipv4Addr], timeout: Duration) -> Result<HashSet<Ipv4Addr>, ArpError> {
    if held.is_empty() {
        return Ok(HashSet::new());
    }
    let all = datalink::interfaces();
    let ours: Vec<MacAddr> = all.iter().filter_map(|i| i.mac).collect();
    let interfaces: Vec<NetworkInterface> = all.into_iter().filter(eligible).collect();
    Ok(probe_on(&interfaces, &ours, held, true, timeout, 0)?.taken)
}

/// Announces addresses this host has just taken (RFC 5227 ARP announcements: a broadcast
/// request whose sender and target address are the address, from the interface's MAC) on every
/// interface that [`probe`] uses and whose IPv4 subnet holds the address. A neighbour whose
/// cache still maps the address to the machine that had it last (the DUT, after another
/// sipplauncher on its link gave the address up a moment ago) takes our MAC for it at once,
/// rather than sending the answers to our calls to that machine until its entry expires.
/// Returns how many announcements went out.
pub fn announce(held: &[Ipv4Addr]) -> Result<usize, ArpError> {
    if held.is_empty() {
        return Ok(0);
    }
    let mut sent = 0;
    for iface in datalink::interfaces().into_iter().filter(eligible) {
        let on_its_subnet: Vec<Ipv4Addr> = held
            .iter()
            .copied()
            .filter(|&a| {
                iface.ips.iter().any(|n| match n {
                    IpNetwork::V4(n) => n.prefix() < 32 && n.contains(a),
                    IpNetwork::V6(_) => false,
                })
            })
            .collect();
        // `eligible` keeps only interfaces with a MAC.
        let (true, Some(mac)) = (!on_its_subnet.is_empty(), iface.mac) else {
            continue;
        };
        let (mut tx, _rx) = open(&iface)?;
        for a in on_its_subnet {
            let fail = |reason: String| ArpError::Interface {
                interface: iface.name.clone(),
                reason,
                errno: None,
            };
            match tx.send_to(&request(mac, a, a), None) {
                Some(Ok(())) => sent += 1,
                Some(Err(e)) => return Err(fail(format!("announce: {e}"))),
                None => return Err(fail("announce: no buffer".into())),
            }
        }
    }
    Ok(sent)
}

fn eligible(i: &NetworkInterface) -> bool {
    i.is_up()
        && i.is_running()
        && !i.is_loopback()
        && i.flags & (libc::IFF_NOARP as u32) == 0
        && !i.name.starts_with(crate::net::netlink::LINK_PREFIX)
        && i.mac.is_some_and(|m| m != MacAddr::zero())
        && i.ips.iter().any(IpNetwork::is_ipv4)
}

fn probe_on(
    interfaces: &[NetworkInterface],
    ours: &[MacAddr],
    candidates: &[Ipv4Addr],
    held: bool,
    timeout: Duration,
    retries: u32,
) -> Result<Probed, ArpError> {
    let heard = Mutex::new(Probed::default());
    if candidates.is_empty() || interfaces.is_empty() {
        return Ok(Probed::default());
    }
    // Channels first, all of them, so that one refused interface fails before any request.
    let mut channels = Vec::new();
    for iface in interfaces {
        channels.push((iface, open(iface)?));
    }
    let start = Instant::now();
    let results: Vec<Result<(), ArpError>> = std::thread::scope(|s| {
        let handles: Vec<_> = channels
            .into_iter()
            .map(|(iface, (tx, rx))| {
                let heard = &heard;
                s.spawn(move || {
                    let asked = Asked {
                        ours,
                        candidates,
                        held,
                    };
                    probe_interface(iface, tx, rx, &asked, heard, start, timeout, retries)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(ArpError::Other("a probe thread panicked".into())))
            })
            .collect()
    });
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(heard.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// What one probe asks about.
struct Asked<'a> {
    /// The MACs of every interface of this host.
    ours: &'a [MacAddr],
    candidates: &'a [Ipv4Addr],
    /// The candidates are on a link of ours already ([`probe_held`]).
    held: bool,
}

type Pair = (Box<dyn DataLinkSender>, Box<dyn DataLinkReceiver>);

fn open(iface: &NetworkInterface) -> Result<Pair, ArpError> {
    let config = datalink::Config {
        read_timeout: Some(READ_SLICE),
        write_timeout: Some(Duration::from_millis(100)),
        promiscuous: false,
        ..Default::default()
    };
    match datalink::channel(iface, config) {
        Ok(Channel::Ethernet(tx, rx)) => Ok((tx, rx)),
        Ok(_) => Err(ArpError::Interface {
            interface: iface.name.clone(),
            reason: "not an Ethernet channel".into(),
            errno: None,
        }),
        Err(e) => Err(ArpError::Interface {
            interface: iface.name.clone(),
            reason: e.to_string(),
            errno: e.raw_os_error(),
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn probe_interface(
    iface: &NetworkInterface,
    mut tx: Box<dyn DataLinkSender>,
    mut rx: Box<dyn DataLinkReceiver>,
    asked: &Asked<'_>,
    heard: &Mutex<Probed>,
    start: Instant,
    timeout: Duration,
    retries: u32,
) -> Result<(), ArpError> {
    let fail = |what: &str, e: Option<std::io::Error>| ArpError::Interface {
        interface: iface.name.clone(),
        reason: match &e {
            Some(e) => format!("{what}: {e}"),
            None => what.to_string(),
        },
        errno: e.and_then(|e| e.raw_os_error()),
    };
    // `eligible` keeps only interfaces with a MAC; a missing one would be a bug there.
    let mac = iface.mac.ok_or_else(|| fail("no MAC address", None))?;
    let candidates = asked.candidates;
    let is_taken = |a: &Ipv4Addr| heard.lock().map(|t| t.refused(a)).unwrap_or(false);
    for round in 0..=retries {
        let open: Vec<Ipv4Addr> = candidates
            .iter()
            .copied()
            .filter(|a| !is_taken(a))
            .collect();
        if open.is_empty() {
            break;
        }
        for &target in &open {
            let frame = request(mac, sender_ip(iface, target), target);
            match tx.send_to(&frame, None) {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(fail("send", Some(e))),
                None => return Err(fail("send: no buffer", None)),
            }
        }
        let deadline = start + timeout * (round + 1);
        while Instant::now() < deadline {
            match rx.next() {
                Ok(frame) => {
                    if let Some((addr, seen)) = answer(frame, mac, asked) {
                        if let Ok(mut h) = heard.lock() {
                            match seen {
                                Seen::InUse => h.taken.insert(addr),
                                Seen::Wanted => h.wanted.insert(addr),
                            };
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(fail("receive", Some(e))),
            }
        }
    }
    Ok(())
}

/// The interface's address in `target`'s subnet, else 0.0.0.0.
fn sender_ip(iface: &NetworkInterface, target: Ipv4Addr) -> Ipv4Addr {
    iface
        .ips
        .iter()
        .find_map(|n| match n {
            IpNetwork::V4(n) if n.contains(target) && n.ip() != target => Some(n.ip()),
            _ => None,
        })
        .unwrap_or(Ipv4Addr::UNSPECIFIED)
}

/// A broadcast ARP request for `target`.
fn request(mac: MacAddr, sender: Ipv4Addr, target: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut frame = [0u8; FRAME_LEN];
    let mut arp = [0u8; FRAME_LEN - 14];
    {
        // Both buffers have the sizes these packets need: `new` cannot fail.
        let mut p = MutableArpPacket::new(&mut arp).expect("28 bytes hold an ARP packet");
        p.set_hardware_type(ArpHardwareTypes::Ethernet);
        p.set_protocol_type(EtherTypes::Ipv4);
        p.set_hw_addr_len(6);
        p.set_proto_addr_len(4);
        p.set_operation(ArpOperations::Request);
        p.set_sender_hw_addr(mac);
        p.set_sender_proto_addr(sender);
        p.set_target_hw_addr(MacAddr::zero());
        p.set_target_proto_addr(target);
    }
    let mut e = MutableEthernetPacket::new(&mut frame).expect("42 bytes hold the frame");
    e.set_destination(MacAddr::broadcast());
    e.set_source(mac);
    e.set_ethertype(EtherTypes::Arp);
    e.set_payload(&arp);
    frame
}

/// What a frame says of a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Someone has it: an ARP reply or request whose sender address is the candidate.
    InUse,
    /// Someone else asks for it: a request whose target is the candidate.
    Wanted,
}

/// The candidate an ARP frame is about, if any: in use when its sender address is one (not
/// our own request from `mac`: an answer from another interface of this host counts, unless
/// the candidates are held by this host already); wanted when it is a request for one from
/// another host (not from any of `ours`: our requests on one interface reach the others).
fn answer(frame: &[u8], mac: MacAddr, asked: &Asked<'_>) -> Option<(Ipv4Addr, Seen)> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Arp {
        return None;
    }
    let arp = ArpPacket::new(eth.payload())?;
    let op = arp.get_operation();
    let from = arp.get_sender_hw_addr();
    if (op != ArpOperations::Reply && op != ArpOperations::Request) || from == mac {
        return None;
    }
    let ours = asked.ours.contains(&from);
    let sender = arp.get_sender_proto_addr();
    if asked.candidates.contains(&sender) && !(asked.held && ours) {
        return Some((sender, Seen::InUse));
    }
    let target = arp.get_target_proto_addr();
    (op == ArpOperations::Request && asked.candidates.contains(&target) && !ours && !asked.held)
        .then_some((target, Seen::Wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::netlink::{testns, Netlink};

    #[test]
    fn request_frame_layout() {
        let mac = MacAddr::new(2, 0, 0, 0, 0, 1);
        let f = request(mac, Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(10, 0, 0, 9));
        let eth = EthernetPacket::new(&f).unwrap();
        assert_eq!(eth.get_destination(), MacAddr::broadcast());
        assert_eq!(eth.get_ethertype(), EtherTypes::Arp);
        let arp = ArpPacket::new(eth.payload()).unwrap();
        assert_eq!(arp.get_operation(), ArpOperations::Request);
        assert_eq!(arp.get_target_proto_addr(), Ipv4Addr::new(10, 0, 0, 9));
        assert_eq!(arp.get_sender_proto_addr(), Ipv4Addr::UNSPECIFIED);
        // Our own request is never an answer, even for a candidate.
        let nine = Ipv4Addr::new(10, 0, 0, 9);
        let other = MacAddr::new(2, 0, 0, 0, 0, 2);
        const CANDIDATES: &[Ipv4Addr] = &[Ipv4Addr::new(10, 0, 0, 9)];
        let asked = |ours: &'static [MacAddr], held| Asked {
            ours,
            candidates: CANDIDATES,
            held,
        };
        const MINE: &[MacAddr] = &[MacAddr(2, 0, 0, 0, 0, 1)];
        const BOTH: &[MacAddr] = &[MacAddr(2, 0, 0, 0, 0, 1), MacAddr(2, 0, 0, 0, 0, 2)];
        assert_eq!(answer(&f, mac, &asked(MINE, false)), None);
        // Someone using a candidate (here: asking with it as its own address): in use.
        let g = request(other, nine, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            answer(&g, mac, &asked(MINE, false)),
            Some((nine, Seen::InUse))
        );
        // Once we hold it, our own other interfaces answering do not count; others do.
        assert_eq!(answer(&g, mac, &asked(BOTH, true)), None);
        assert_eq!(
            answer(&g, mac, &asked(MINE, true)),
            Some((nine, Seen::InUse))
        );
        // Another machine probing (or looking) for a candidate: wanted.
        let h = request(other, Ipv4Addr::UNSPECIFIED, nine);
        assert_eq!(
            answer(&h, mac, &asked(MINE, false)),
            Some((nine, Seen::Wanted))
        );
        // ... unless it is another interface of this host, or we hold it already.
        assert_eq!(answer(&h, mac, &asked(BOTH, false)), None);
        assert_eq!(answer(&h, mac, &asked(MINE, true)), None);
    }

    #[test]
    fn nothing_to_probe() {
        assert_eq!(
            probe(&[], Duration::from_millis(1), 1).unwrap(),
            Probed::default()
        );
    }

    /// va in the test's namespace with 10.200.0.1/24 (another subnet: probes from 0.0.0.0);
    /// vb in the same namespace with 10.123.0.1/24: the kernel answers for it.
    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn probe_on_a_veth_pair_one_namespace() {
        testns::in_netns("arp probe, one namespace", || {
            let rt = testns::runtime();
            rt.block_on(async {
                testns::veth(
                    &[(Ipv4Addr::new(10, 200, 0, 1), 24)],
                    &[(Ipv4Addr::new(10, 123, 0, 1), 24)],
                    false,
                )
                .await;
                testns::wait_running(&["va", "vb"]).await;
            });
            let names: Vec<String> = datalink::interfaces()
                .into_iter()
                .filter(eligible)
                .map(|i| i.name)
                .collect();
            assert!(names.contains(&"va".to_string()), "{names:?}");
            let one = Ipv4Addr::new(10, 123, 0, 1);
            let two = Ipv4Addr::new(10, 123, 0, 2);
            let heard = probe(&[one, two], Duration::from_millis(50), 1).unwrap();
            assert_eq!(heard.taken, HashSet::from([one]));
            // Our requests reach our other interface: not someone else's.
            assert!(heard.wanted.is_empty(), "{heard:?}");
        });
    }

    /// Once an address is on a link of ours, our own interfaces answering for it do not count;
    /// another machine answering for it does (it took it too).
    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn probe_held_hears_only_other_machines() {
        testns::in_netns("arp probe of held addresses", || {
            let rt = testns::runtime();
            let ip = |d: u8| Ipv4Addr::new(10, 126, 0, d);
            let peer = rt.block_on(async {
                // Here: va .3; the other machine: vb .1 and .7 (it took .7).
                let peer = testns::veth(&[(ip(3), 24)], &[(ip(1), 24), (ip(7), 32)], true).await;
                testns::wait_running(&["va"]).await;
                let nl = Netlink::connect().await.unwrap();
                // We hold .7 and .8 on a link of ours.
                let link = nl.create_link("sipp-+test", None).await.unwrap();
                nl.add_address(link.index, "sipp-+test", ip(7), 32)
                    .await
                    .unwrap();
                nl.add_address(link.index, "sipp-+test", ip(8), 32)
                    .await
                    .unwrap();
                nl.set_up(link.index, "sipp-+test").await.unwrap();
                peer
            });
            let clash = probe_held(&[ip(7), ip(8)], Duration::from_millis(50)).unwrap();
            assert_eq!(clash, HashSet::from([ip(7)]));
            drop(peer);
        });
    }

    /// An address another machine had a moment ago: the neighbour's cache (the DUT's) still
    /// has that machine's MAC for it until our announcement, then ours.
    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn an_announcement_updates_the_neighbours_cache() {
        testns::in_netns("arp announcement", || {
            let rt = testns::runtime();
            let ip = |d: u8| Ipv4Addr::new(10, 128, 0, d);
            let peer = rt
                .block_on(async {
                    let peer = testns::veth(&[(ip(3), 24)], &[(ip(1), 24)], true).await;
                    testns::wait_running(&["va"]).await;
                    let nl = Netlink::connect().await.unwrap();
                    let link = nl.create_link("sipp-+test", None).await.unwrap();
                    nl.add_address(link.index, "sipp-+test", ip(9), 32)
                        .await
                        .unwrap();
                    nl.set_up(link.index, "sipp-+test").await.unwrap();
                    peer
                })
                .expect("a peer namespace");
            let neigh = || {
                let out = std::process::Command::new("ip")
                    .args(["neigh", "show", "10.128.0.9", "dev", "vb"])
                    .output()
                    .expect("ip neigh");
                String::from_utf8_lossy(&out.stdout).into_owned()
            };
            // The machine that had .9 before us.
            let before = peer.run(move || {
                let ok = std::process::Command::new("ip")
                    .args([
                        "neigh",
                        "replace",
                        "10.128.0.9",
                        "lladdr",
                        "02:00:00:00:00:09",
                    ])
                    .args(["dev", "vb", "nud", "reachable"])
                    .status()
                    .expect("ip neigh replace")
                    .success();
                assert!(ok);
                neigh()
            });
            assert!(before.contains("02:00:00:00:00:09"), "{before}");
            let va_mac = datalink::interfaces()
                .into_iter()
                .find(|i| i.name == "va")
                .and_then(|i| i.mac)
                .expect("va's MAC");
            // Not announced on a subnet of no interface of ours.
            assert_eq!(announce(&[ip(9), Ipv4Addr::new(10, 129, 0, 9)]).unwrap(), 1);
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                let after = peer.run(neigh);
                if after.contains(&va_mac.to_string()) {
                    break;
                }
                assert!(Instant::now() < deadline, "not updated: {after}");
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }

    /// va here with 10.123.0.3/24 (requests from 10.123.0.3); vb in a second namespace with
    /// 10.123.0.1/24: the usual case of a neighbour on the wire.
    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn probe_a_neighbour_in_another_namespace() {
        testns::in_netns("arp probe, two namespaces", || {
            let rt = testns::runtime();
            let one = Ipv4Addr::new(10, 123, 0, 1);
            let peer = rt.block_on(async {
                let peer =
                    testns::veth(&[(Ipv4Addr::new(10, 123, 0, 3), 24)], &[(one, 24)], true).await;
                testns::wait_running(&["va"]).await;
                peer
            });
            let two = Ipv4Addr::new(10, 123, 0, 2);
            let heard = probe(&[one, two], Duration::from_millis(50), 1).unwrap();
            assert_eq!(heard.taken, HashSet::from([one]));
            drop(peer);
        });
    }
}
