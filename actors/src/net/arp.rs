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

/// Sends an ARP request for each candidate on every interface that is up, running, not
/// loopback, does ARP, has a MAC and an IPv4 address and is not one of our `sipp-*` links;
/// collects answers for `timeout`, then asks again (`retries` times) for the candidates
/// nobody answered. Returns the candidates someone answered for, or announced or probed
/// themselves (RFC 5227): those are taken. The sender address of a request is the
/// interface's own IPv4 address in the candidate's subnet, else 0.0.0.0 (an RFC 5227 probe).
///
/// All candidates are asked together and interfaces in parallel: a probe with nobody
/// answering costs `(1 + retries) * timeout`, however many candidates and interfaces.
pub fn probe(
    candidates: &[Ipv4Addr],
    timeout: Duration,
    retries: u32,
) -> Result<HashSet<Ipv4Addr>, ArpError> {
    if candidates.is_empty() {
        return Ok(HashSet::new());
    }
    let interfaces: Vec<NetworkInterface> = datalink::interfaces()
        .into_iter()
        .filter(eligible)
        .collect();
    probe_on(&interfaces, candidates, timeout, retries)
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
    candidates: &[Ipv4Addr],
    timeout: Duration,
    retries: u32,
) -> Result<HashSet<Ipv4Addr>, ArpError> {
    let taken = Mutex::new(HashSet::new());
    if candidates.is_empty() || interfaces.is_empty() {
        return Ok(HashSet::new());
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
                let taken = &taken;
                s.spawn(move || {
                    probe_interface(iface, tx, rx, candidates, taken, start, timeout, retries)
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
    Ok(taken.into_inner().unwrap_or_else(|p| p.into_inner()))
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
    candidates: &[Ipv4Addr],
    taken: &Mutex<HashSet<Ipv4Addr>>,
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
    let is_taken = |a: &Ipv4Addr| taken.lock().map(|t| t.contains(a)).unwrap_or(false);
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
                    if let Some(addr) = answer(frame, mac, candidates) {
                        if let Ok(mut t) = taken.lock() {
                            t.insert(addr);
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

/// The candidate a frame shows in use: an ARP packet (reply, or someone else's request)
/// whose sender address is a candidate, not sent by us.
fn answer(frame: &[u8], mac: MacAddr, candidates: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Arp {
        return None;
    }
    let arp = ArpPacket::new(eth.payload())?;
    let op = arp.get_operation();
    if (op != ArpOperations::Reply && op != ArpOperations::Request)
        || arp.get_sender_hw_addr() == mac
    {
        return None;
    }
    let sender = arp.get_sender_proto_addr();
    candidates.contains(&sender).then_some(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::netlink::testns;

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
        assert_eq!(answer(&f, mac, &[Ipv4Addr::UNSPECIFIED]), None);
        let other = MacAddr::new(2, 0, 0, 0, 0, 2);
        let g = request(
            other,
            Ipv4Addr::new(10, 0, 0, 9),
            Ipv4Addr::new(10, 0, 0, 1),
        );
        assert_eq!(
            answer(&g, mac, &[Ipv4Addr::new(10, 0, 0, 9)]),
            Some(Ipv4Addr::new(10, 0, 0, 9))
        );
    }

    #[test]
    fn nothing_to_probe() {
        assert!(probe(&[], Duration::from_millis(1), 1).unwrap().is_empty());
    }

    /// va in the test's namespace with 10.200.0.1/24 (another subnet: probes from 0.0.0.0);
    /// vb in the same namespace with 10.123.0.1/24: the kernel answers for it.
    #[test]
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
            let taken = probe(&[one, two], Duration::from_millis(50), 1).unwrap();
            assert_eq!(taken, HashSet::from([one]));
        });
    }

    /// va here with 10.123.0.3/24 (requests from 10.123.0.3); vb in a second namespace with
    /// 10.123.0.1/24: the usual case of a neighbour on the wire.
    #[test]
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
            let taken = probe(&[one, two], Duration::from_millis(50), 1).unwrap();
            assert_eq!(taken, HashSet::from([one]));
            drop(peer);
        });
    }
}
