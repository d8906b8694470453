//! TCP streams put back in order from their segments: one byte stream per direction of a
//! connection, segments out of order held until the gap fills, retransmitted bytes dropped.

use std::collections::BTreeMap;

/// The most out-of-order bytes a stream holds: past it, the gap is taken as lost (a capture
/// that dropped a segment) and the stream goes on from the next segment held.
const MAX_PENDING: usize = 1 << 20;

/// A TCP header's fields the reassembly needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub syn: bool,
    /// Where the data begins in the segment.
    pub data_offset: usize,
}

/// Parses a TCP header; `None` when the segment is too short for one.
pub fn header(segment: &[u8]) -> Option<Header> {
    if segment.len() < 20 {
        return None;
    }
    let data_offset = usize::from(segment[12] >> 4) * 4;
    if data_offset < 20 || data_offset > segment.len() {
        return None;
    }
    let flags = segment[13];
    Some(Header {
        src_port: u16::from_be_bytes([segment[0], segment[1]]),
        dst_port: u16::from_be_bytes([segment[2], segment[3]]),
        seq: u32::from_be_bytes([segment[4], segment[5], segment[6], segment[7]]),
        syn: flags & 0x02 != 0,
        data_offset,
    })
}

/// One direction of a connection.
#[derive(Debug, Default)]
pub struct Stream {
    /// The sequence number of the next byte in order; unknown until the SYN or the first data.
    next: Option<u32>,
    /// Segments past a gap, by sequence number.
    pending: BTreeMap<u32, Vec<u8>>,
    pending_bytes: usize,
}

impl Stream {
    /// Takes one segment; returns the bytes that are now in order (empty when none).
    pub fn segment(&mut self, h: &Header, data: &[u8]) -> Vec<u8> {
        if h.syn {
            // A new connection on the same ports starts a new stream.
            *self = Stream {
                next: Some(h.seq.wrapping_add(1)),
                ..Stream::default()
            };
            return Vec::new();
        }
        if data.is_empty() {
            return Vec::new();
        }
        let next = *self.next.get_or_insert(h.seq);
        let mut out = Vec::new();
        // Sequence numbers wrap: compare by signed distance.
        let ahead = h.seq.wrapping_sub(next) as i32;
        if ahead > 0 {
            self.hold(h.seq, data);
        } else {
            let old = ahead.unsigned_abs() as usize;
            if old < data.len() {
                out.extend_from_slice(&data[old..]);
            }
        }
        self.next = Some(next.wrapping_add(out.len() as u32));
        self.drain_pending(&mut out);
        if self.pending_bytes > MAX_PENDING {
            // Lost: go on from the nearest segment held.
            let next = self.next.unwrap_or(h.seq);
            if let Some(&seq) = self.pending.keys().min_by_key(|&&s| s.wrapping_sub(next)) {
                self.next = Some(seq);
                self.drain_pending(&mut out);
            }
        }
        out
    }

    fn hold(&mut self, seq: u32, data: &[u8]) {
        let held = self.pending.entry(seq).or_default();
        if data.len() > held.len() {
            self.pending_bytes += data.len() - held.len();
            *held = data.to_vec();
        }
    }

    /// Appends the held segments that now follow in order.
    fn drain_pending(&mut self, out: &mut Vec<u8>) {
        while let Some(next) = self.next {
            // The held segment that starts at or before `next` (by signed distance).
            let Some(&seq) = self
                .pending
                .keys()
                .find(|&&s| (s.wrapping_sub(next) as i32) <= 0)
            else {
                return;
            };
            let data = self.pending.remove(&seq).unwrap_or_default();
            self.pending_bytes -= data.len();
            let old = next.wrapping_sub(seq) as usize;
            if old < data.len() {
                out.extend_from_slice(&data[old..]);
                self.next = Some(next.wrapping_add((data.len() - old) as u32));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(seq: u32, syn: bool) -> Header {
        Header {
            src_port: 1,
            dst_port: 2,
            seq,
            syn,
            data_offset: 20,
        }
    }

    #[test]
    fn in_order_out_of_order_and_retransmitted() {
        let mut s = Stream::default();
        assert!(s.segment(&h(u32::MAX - 2, true), b"").is_empty());
        // The sequence numbers wrap around in the middle of the stream.
        assert_eq!(s.segment(&h(u32::MAX - 1, false), b"abc"), b"abc");
        assert_eq!(s.segment(&h(4, false), b"ghi"), b"", "held: 'def' missing");
        assert_eq!(s.segment(&h(1, false), b"def"), b"defghi");
        // A retransmission, whole or overlapping.
        assert_eq!(s.segment(&h(1, false), b"def"), b"");
        assert_eq!(s.segment(&h(5, false), b"hijk"), b"jk");
    }

    #[test]
    fn picked_up_without_a_syn_and_a_lost_gap() {
        let mut s = Stream::default();
        assert_eq!(s.segment(&h(1000, false), b"xy"), b"xy");
        let big = vec![b'z'; MAX_PENDING + 1];
        // 1002..1010 never comes: once too much is held, the stream goes on past the gap.
        assert_eq!(s.segment(&h(1010, false), &big), big);
        assert_eq!(s.segment(&h(1010 + big.len() as u32, false), b"!"), b"!");
    }

    #[test]
    fn headers() {
        let mut seg = vec![0u8; 24];
        seg[0..2].copy_from_slice(&5060u16.to_be_bytes());
        seg[2..4].copy_from_slice(&40000u16.to_be_bytes());
        seg[4..8].copy_from_slice(&7u32.to_be_bytes());
        seg[12] = 6 << 4;
        seg[13] = 0x12; // SYN+ACK
        let hd = header(&seg).expect("header");
        assert_eq!((hd.src_port, hd.dst_port, hd.seq), (5060, 40000, 7));
        assert!(hd.syn);
        assert_eq!(hd.data_offset, 24);
        assert_eq!(header(&seg[..19]), None);
        seg[12] = 7 << 4;
        assert_eq!(header(&seg), None, "data offset past the segment");
    }
}
