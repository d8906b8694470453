//! A pcap's packets down to their IPv4 payloads: the link layers a capture of ours or a user's
//! has (Linux cooked SLL, what sipplauncher's sniffer writes; SLL2; Ethernet with VLAN tags; raw
//! IP), and IPv4 fragments put back together (a SIP message over UDP larger than the MTU).

use std::collections::VecDeque;
use std::io::Read;
use std::net::Ipv4Addr;
use std::time::Duration;

use pcap_file::pcap::PcapParser;
use pcap_file::DataLink;

use super::LadderError;

/// How many datagrams may wait for their missing fragments at once: a capture that lost one
/// fragment must not keep the others forever.
const MAX_PARTIAL: usize = 64;

/// One IPv4 datagram (put together from its fragments when it was fragmented).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Since the epoch: the capture time of its (last) packet.
    pub at: Duration,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// The IP protocol number: 6 TCP, 17 UDP.
    pub protocol: u8,
    /// The IP payload: the transport header and its data.
    pub payload: Vec<u8>,
}

/// The link layers read; anything else is refused in one line.
fn ip_offset(link: DataLink, frame: &[u8]) -> Option<usize> {
    match link {
        // Linux cooked: 16 bytes, the protocol in the last two.
        DataLink::LINUX_SLL => (frame.get(14..16)? == [0x08, 0x00]).then_some(16),
        // SLL2: 20 bytes, the protocol first.
        DataLink::LINUX_SLL2 => (frame.get(0..2)? == [0x08, 0x00]).then_some(20),
        DataLink::ETHERNET => {
            let mut at = 12;
            // 802.1Q and 802.1ad tags, stacked.
            while matches!(frame.get(at..at + 2)?, [0x81, 0x00] | [0x88, 0xa8]) {
                at += 4;
            }
            (frame.get(at..at + 2)? == [0x08, 0x00]).then_some(at + 2)
        }
        DataLink::RAW | DataLink::IPV4 => Some(0),
        _ => None,
    }
}

fn supported(link: DataLink) -> bool {
    matches!(
        link,
        DataLink::LINUX_SLL
            | DataLink::LINUX_SLL2
            | DataLink::ETHERNET
            | DataLink::RAW
            | DataLink::IPV4
    )
}

/// A datagram waiting for fragments.
struct Partial {
    key: (Ipv4Addr, Ipv4Addr, u16, u8),
    /// (offset, bytes), as they came.
    parts: Vec<(usize, Vec<u8>)>,
    /// Known once the last fragment (MF clear) came.
    total: Option<usize>,
}

impl Partial {
    /// The whole payload once every byte up to `total` is there.
    fn assemble(&self) -> Option<Vec<u8>> {
        let total = self.total?;
        let mut parts: Vec<&(usize, Vec<u8>)> = self.parts.iter().collect();
        parts.sort_by_key(|p| p.0);
        let mut out = Vec::with_capacity(total);
        for (offset, bytes) in parts {
            if *offset > out.len() {
                return None;
            }
            let skip = out.len() - offset;
            if skip < bytes.len() {
                out.extend_from_slice(&bytes[skip..]);
            }
        }
        (out.len() >= total).then(|| {
            out.truncate(total);
            out
        })
    }
}

/// Reads the IPv4 datagrams of a pcap, in file order. A file cut short (a run killed while its
/// capture was written) gives the datagrams before the cut. The file is read whole and parsed
/// where it lies: pcap-file's `PcapReader` zeroes an 8 MB buffer first, whatever the file's size
/// (a ninth of sipplauncher's CPU per test when every run's ladder was read).
pub fn datagrams(mut reader: impl Read) -> Result<Vec<Datagram>, LadderError> {
    let mut data = Vec::new();
    reader
        .read_to_end(&mut data)
        .map_err(|e| LadderError::NotPcap(e.to_string()))?;
    let (mut rest, pcap) =
        PcapParser::new(&data).map_err(|e| LadderError::NotPcap(e.to_string()))?;
    let link = pcap.header().datalink;
    if !supported(link) {
        return Err(LadderError::LinkType(format!("{link:?}")));
    }
    let mut out = Vec::new();
    let mut partial: VecDeque<Partial> = VecDeque::new();
    // The end of the file, or a record cut short, ends the reading.
    while let Ok((next, packet)) = pcap.next_packet(rest) {
        rest = next;
        let Some(ip) = ip_offset(link, &packet.data).and_then(|o| packet.data.get(o..)) else {
            continue;
        };
        if ip.len() < 20 || ip[0] >> 4 != 4 {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if ihl < 20 || total_len < ihl || ip.len() < ihl {
            continue;
        }
        // Ethernet pads short frames; a snap length may cut long ones.
        let payload = &ip[ihl..total_len.min(ip.len())];
        let id = u16::from_be_bytes([ip[4], ip[5]]);
        let flags_offset = u16::from_be_bytes([ip[6], ip[7]]);
        let more = flags_offset & 0x2000 != 0;
        let offset = usize::from(flags_offset & 0x1fff) * 8;
        let protocol = ip[9];
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let payload = if more || offset > 0 {
            let key = (src, dst, id, protocol);
            let at = match partial.iter().position(|p| p.key == key) {
                Some(i) => i,
                None => {
                    if partial.len() == MAX_PARTIAL {
                        partial.pop_front();
                    }
                    partial.push_back(Partial {
                        key,
                        parts: Vec::new(),
                        total: None,
                    });
                    partial.len() - 1
                }
            };
            let p = &mut partial[at];
            p.parts.push((offset, payload.to_vec()));
            if !more {
                p.total = Some(offset + payload.len());
            }
            match p.assemble() {
                Some(whole) => {
                    partial.remove(at);
                    whole
                }
                None => continue,
            }
        } else {
            payload.to_vec()
        };
        out.push(Datagram {
            at: packet.timestamp,
            src,
            dst,
            protocol,
            payload,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn link_layers() {
        let udp = udp_datagram([10, 0, 0, 1], 5060, [10, 0, 0, 2], 5060, b"hello", 7);
        for link in [Link::Sll, Link::Ethernet, Link::EthernetVlan] {
            let pcap = write_pcap(link, &[(1_000, frame(link, &udp))]);
            let d = datagrams(&pcap[..]).expect("read");
            assert_eq!(d.len(), 1, "{link:?}");
            assert_eq!(d[0].src, Ipv4Addr::new(10, 0, 0, 1));
            assert_eq!(d[0].protocol, 17);
            assert_eq!(&d[0].payload[8..], b"hello", "{link:?}");
            assert_eq!(d[0].at, Duration::from_micros(1_000));
        }
    }

    #[test]
    fn other_protocols_and_cut_files() {
        // An ARP frame and an IPv6 packet in an SLL capture: no datagram.
        let mut arp = vec![0u8; 16 + 28];
        arp[14..16].copy_from_slice(&[0x08, 0x06]);
        let mut v6 = vec![0u8; 16 + 40];
        v6[14..16].copy_from_slice(&[0x86, 0xdd]);
        let udp = udp_datagram([10, 0, 0, 1], 1, [10, 0, 0, 2], 2, b"x", 1);
        let mut pcap = write_pcap(Link::Sll, &[(1, arp), (2, v6), (3, frame(Link::Sll, &udp))]);
        assert_eq!(datagrams(&pcap[..]).expect("read").len(), 1);
        // Cut in the middle of a second copy of the last packet: the whole ones are read.
        let again = pcap[pcap.len() - (16 + 16 + udp.len())..].to_vec();
        pcap.extend_from_slice(&again[..again.len() - 5]);
        assert_eq!(datagrams(&pcap[..]).expect("read").len(), 1);
        assert!(matches!(
            datagrams(&b"not a pcap"[..]),
            Err(LadderError::NotPcap(_))
        ));
    }

    #[test]
    fn fragments_put_together_in_any_order() {
        let body = vec![b'a'; 3000];
        let whole = udp_datagram([10, 0, 0, 1], 5060, [10, 0, 0, 2], 5060, &body, 9);
        let frags = fragment(&whole, 1480);
        assert_eq!(frags.len(), 3);
        let packets = vec![
            (1, frame(Link::Sll, &frags[2])),
            (2, frame(Link::Sll, &frags[0])),
            (3, frame(Link::Sll, &frags[1])),
        ];
        let d = datagrams(&write_pcap(Link::Sll, &packets)[..]).expect("read");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].payload, whole[20..]);
        assert_eq!(d[0].at, Duration::from_micros(3));
        // One fragment lost: nothing.
        let d = datagrams(&write_pcap(Link::Sll, &packets[..2])[..]).expect("read");
        assert!(d.is_empty());
    }
}
