//! Test helpers: pcaps written byte by byte (IPv4, UDP, TCP, fragments; Linux cooked or
//! Ethernet frames), so that the ladder builder's tests read files shaped like real captures.

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Linux cooked (what sipplauncher's sniffer writes).
    Sll,
    Ethernet,
    /// Ethernet with an 802.1Q tag.
    EthernetVlan,
}

/// A pcap file of `packets` (microseconds since the epoch, frame).
pub fn write_pcap(link: Link, packets: &[(u64, Vec<u8>)]) -> Vec<u8> {
    write_pcap_as(link, TsResolution::MicroSecond, Endianness::Little, packets)
}

/// [`write_pcap`] with nanosecond times (as sipplauncher's sniffer writes) or big-endian
/// fields (as a capture made on another machine may have).
pub fn write_pcap_as(
    link: Link,
    ts_resolution: TsResolution,
    endianness: Endianness,
    packets: &[(u64, Vec<u8>)],
) -> Vec<u8> {
    let header = PcapHeader {
        datalink: match link {
            Link::Sll => DataLink::LINUX_SLL,
            Link::Ethernet | Link::EthernetVlan => DataLink::ETHERNET,
        },
        ts_resolution,
        endianness,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).expect("pcap header");
    for (us, data) in packets {
        w.write_packet(&PcapPacket::new(
            Duration::from_micros(*us),
            data.len() as u32,
            data,
        ))
        .expect("pcap packet");
    }
    w.into_writer()
}

/// `ip` (an IPv4 packet) in a frame of `link`.
pub fn frame(link: Link, ip: &[u8]) -> Vec<u8> {
    let mut f = match link {
        Link::Sll => {
            // Outgoing (4), ARPHRD_ETHER, 6-byte address, padding, IPv4.
            let mut h = vec![0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
            h.extend_from_slice(&[0x08, 0x00]);
            h
        }
        Link::Ethernet => {
            let mut h = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
            h.extend_from_slice(&[0x08, 0x00]);
            h
        }
        Link::EthernetVlan => {
            let mut h = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
            h.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a, 0x08, 0x00]);
            h
        }
    };
    f.extend_from_slice(ip);
    if matches!(link, Link::Ethernet | Link::EthernetVlan) && f.len() < 60 {
        // Ethernet's minimum frame: the padding is not part of the IP packet.
        f.resize(60, 0);
    }
    f
}

/// An IPv4 header for `payload`.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&id.to_be_bytes());
    ip.extend_from_slice(&[0x40, 0, 64, protocol, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    ip.extend_from_slice(payload);
    ip
}

/// An IPv4 packet holding a UDP datagram.
pub fn udp_datagram(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    data: &[u8],
    id: u16,
) -> Vec<u8> {
    let mut udp = Vec::new();
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(data);
    ipv4(src, dst, 17, id, &udp)
}

/// An IPv4 packet holding a TCP segment (ACK, plus SYN when `syn`).
pub fn tcp_segment(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    seq: u32,
    syn: bool,
    data: &[u8],
) -> Vec<u8> {
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&sport.to_be_bytes());
    tcp.extend_from_slice(&dport.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0]);
    tcp.push(5 << 4);
    tcp.push(if syn { 0x12 } else { 0x10 });
    tcp.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    tcp.extend_from_slice(data);
    ipv4(src, dst, 6, 0, &tcp)
}

/// `ip` cut into fragments of at most `mtu` bytes each.
pub fn fragment(ip: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let payload = &ip[20..];
    let step = (mtu - 20) / 8 * 8;
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < payload.len() {
        let end = (offset + step).min(payload.len());
        let mut f = ip[..20].to_vec();
        f[2..4].copy_from_slice(&((20 + end - offset) as u16).to_be_bytes());
        let more = if end < payload.len() { 0x2000 } else { 0 };
        f[6..8].copy_from_slice(&((more | (offset / 8)) as u16).to_be_bytes());
        f.extend_from_slice(&payload[offset..end]);
        out.push(f);
        offset = end;
    }
    out
}

/// A ladder message with the fields the tests look at.
pub fn message(from: usize, to: usize, first_line: &str, call: &str, cseq: &str) -> super::Message {
    super::Message {
        t: 0.0,
        from,
        to,
        src_port: 5060,
        dst_port: 5060,
        transport: super::Transport::Udp,
        first_line: first_line.into(),
        call_id: Some(call.into()),
        cseq: Some(cseq.into()),
        branch: None,
        retransmission: false,
        text: String::new(),
    }
}
