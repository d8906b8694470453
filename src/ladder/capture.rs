//! A pcap's packets down to their IPv4 payloads: the link layers a capture of ours or a user's
//! has (Linux cooked SLL, what sipplauncher's sniffer writes; SLL2; Ethernet with VLAN tags; raw
//! IP), and IPv4 fragments put back together (a SIP message over UDP larger than the MTU).

use std::collections::VecDeque;
use std::io::Read;
use std::net::Ipv4Addr;
use std::time::Duration;

use pcap_file::pcap::PcapHeader;
use pcap_file::{DataLink, Endianness, TsResolution};

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

/// The largest packet record read: past it the file is taken as damaged (a capture's snap
/// length is at most 256 KiB).
const MAX_RECORD: usize = 256 * 1024;

/// Reads `buf.len()` bytes; `false` at the end of the file, also in the middle of `buf` (a file
/// cut short).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> bool {
    let mut at = 0;
    while at < buf.len() {
        match r.read(&mut buf[at..]) {
            Ok(0) => return false,
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Hands the IPv4 datagrams of a pcap to `each`, in file order, one at a time (a test's capture
/// may be large: it is never all in memory). A file cut short (a run killed while its capture
/// was written) gives the datagrams before the cut.
///
/// The records are read here rather than with pcap-file's reader, which holds an 8 MB buffer
/// per file.
pub fn for_each_datagram(
    mut reader: impl Read,
    mut each: impl FnMut(Datagram),
) -> Result<(), LadderError> {
    let mut head = [0u8; 24];
    if !read_full(&mut reader, &mut head) {
        return Err(LadderError::NotPcap("shorter than a pcap header".into()));
    }
    let (_, header) =
        PcapHeader::from_slice(&head).map_err(|e| LadderError::NotPcap(e.to_string()))?;
    let link = header.datalink;
    if !supported(link) {
        return Err(LadderError::LinkType(format!("{link:?}")));
    }
    let big = header.endianness == Endianness::Big;
    let nanos = header.ts_resolution == TsResolution::NanoSecond;
    let field = |b: &[u8]| {
        let b = [b[0], b[1], b[2], b[3]];
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let mut partial: VecDeque<Partial> = VecDeque::new();
    let mut record = [0u8; 16];
    let mut frame = Vec::new();
    while read_full(&mut reader, &mut record) {
        let (secs, frac, len) = (
            field(&record[0..]),
            field(&record[4..]),
            field(&record[8..]),
        );
        let len = len as usize;
        if len > MAX_RECORD {
            break;
        }
        frame.resize(len, 0);
        if !read_full(&mut reader, &mut frame) {
            break;
        }
        let sub = if nanos {
            frac
        } else {
            frac.saturating_mul(1_000)
        };
        let at = Duration::new(u64::from(secs), sub.min(999_999_999));
        if let Some(d) = datagram(link, &frame, at, &mut partial) {
            each(d);
        }
    }
    Ok(())
}

/// The IPv4 datagram of one frame, once whole (`None` for another protocol, or a fragment of a
/// datagram still missing others).
fn datagram(
    link: DataLink,
    frame: &[u8],
    at: Duration,
    partial: &mut VecDeque<Partial>,
) -> Option<Datagram> {
    let ip = frame.get(ip_offset(link, frame)?..)?;
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ihl < 20 || total_len < ihl || ip.len() < ihl {
        return None;
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
        let whole = p.assemble()?;
        partial.remove(at);
        whole
    } else {
        payload.to_vec()
    };
    Some(Datagram {
        at,
        src,
        dst,
        protocol,
        payload,
    })
}

/// Every datagram of a pcap (tests and small files).
#[cfg(test)]
pub fn datagrams(reader: impl Read) -> Result<Vec<Datagram>, LadderError> {
    let mut out = Vec::new();
    for_each_datagram(reader, |d| out.push(d))?;
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
    fn nanosecond_and_big_endian_files() {
        let udp = udp_datagram([10, 0, 0, 1], 5060, [10, 0, 0, 2], 5060, b"hi", 7);
        for (res, end) in [
            (TsResolution::NanoSecond, Endianness::Little),
            (TsResolution::MicroSecond, Endianness::Big),
            (TsResolution::NanoSecond, Endianness::Big),
        ] {
            let pcap = write_pcap_as(Link::Sll, res, end, &[(1_500_000, frame(Link::Sll, &udp))]);
            let d = datagrams(&pcap[..]).expect("read");
            assert_eq!(d.len(), 1, "{res:?} {end:?}");
            assert_eq!(d[0].at, Duration::from_micros(1_500_000), "{res:?} {end:?}");
            assert_eq!(&d[0].payload[8..], b"hi");
        }
        // A record claiming more than any snap length: the file is damaged from there.
        let mut pcap = write_pcap(Link::Sll, &[(1, frame(Link::Sll, &udp))]);
        pcap.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]);
        assert_eq!(datagrams(&pcap[..]).expect("read").len(), 1);
        assert!(matches!(
            datagrams(&b"short"[..]),
            Err(LadderError::NotPcap(_))
        ));
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
