//! Whether an IPv4 socket is open in this network namespace (a UDP socket bound, a TCP socket
//! listening) to receive at an address, asked of the kernel with NETLINK_SOCK_DIAG: how the
//! SippActor sees that a UAS is up before its UACs start. Each question names its socket (the
//! kernel looks it up as for a packet to that address, a socket bound to 0.0.0.0 included), so
//! the answer is one small message, not a list of every socket. It replaces reading
//! `/proc/net/udp` and `/proc/net/tcp` (text of every socket, formatted by the kernel and parsed
//! again, on the blocking pool, every 2 ms per waiting test). The kernel answers from memory
//! while the call is made: it returns at once, so it is made where the test waits.

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SOCK_DIAG_BY_FAMILY` (linux/sock_diag.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCP_LISTEN` (linux/tcp_states.h), as a state bit.
const TCPF_LISTEN: u32 = 1 << 10;
/// `struct nlmsghdr` and `struct inet_diag_req_v2` (linux/inet_diag.h).
const NLMSG_HDR: usize = 16;
const REQ_V2: usize = 56;
/// `struct inet_diag_msg` up to the end of its `id` (family, state, timer, retrans, the id).
const MSG_ID_END: usize = 4 + 48;

/// A `NETLINK_SOCK_DIAG` socket of this namespace.
pub struct SockDiag {
    fd: OwnedFd,
    seq: u32,
}

impl SockDiag {
    pub fn open() -> io::Result<SockDiag> {
        // SAFETY: plain socket(2); the fd is owned at once.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // The kernel answers a dump at once; a second is the bound should it ever not.
        let timeout = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: `timeout` is a timeval and the length is its size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SockDiag { fd, seq: 0 })
    }
}

impl SockDiag {
    /// Whether a socket of the protocol would receive at `addr`: for TCP, a listening one.
    pub fn is_open(&mut self, tcp: bool, addr: SocketAddrV4) -> io::Result<bool> {
        self.seq = self.seq.wrapping_add(1);
        let req = lookup(tcp, addr, self.seq);
        // SAFETY: `req` is a complete request of `req.len()` bytes; the kernel is the peer.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 1024];
        loop {
            // SAFETY: `buf` is writable for its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = usize::try_from(n).unwrap_or(0);
            let mut found = Vec::new();
            match parse(&buf[..n], self.seq, &mut found) {
                // One answer: the socket, or an error.
                Ok(_) if !found.is_empty() => {
                    return Ok(!tcp || found_state(&buf[..n]) == Some(TCP_LISTEN))
                }
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(false),
                Err(e) => return Err(e),
            }
            if n == 0 {
                return Ok(false);
            }
        }
    }
}

/// `TCP_LISTEN` (linux/tcp_states.h).
const TCP_LISTEN: u8 = 10;

/// The state of the first socket in an answer.
fn found_state(buf: &[u8]) -> Option<u8> {
    (buf.len() > NLMSG_HDR + 1).then(|| buf[NLMSG_HDR + 1])
}

/// The request that looks up the socket that would receive at `addr` (no dump), no cookie to
/// match. The kernel reads the id as a packet to `addr` from nowhere: TCP as the id's source
/// (`inet_diag_find_one_icsk`), UDP as its destination ("src and dst are swapped for historical
/// reasons", `udp_dump_one`).
fn lookup(tcp: bool, addr: SocketAddrV4, seq: u32) -> Vec<u8> {
    let mut m = request(tcp, seq);
    // A request, not a dump.
    m[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    // inet_diag_sockid: sport, dport, src[4], dst[4], if, cookie[2].
    let id = NLMSG_HDR + 8;
    let (port_at, ip_at) = if tcp { (id, id + 4) } else { (id + 2, id + 20) };
    m[port_at..port_at + 2].copy_from_slice(&addr.port().to_be_bytes());
    m[ip_at..ip_at + 4].copy_from_slice(&addr.ip().octets());
    // idiag_if 0 (any), then the cookie: INET_DIAG_NOCOOKIE, both words all ones.
    m[id + 40..id + 48].fill(0xff);
    m
}

/// A request about IPv4 UDP sockets in any state or TCP sockets listening, as a dump; its id is
/// empty (every socket).
fn request(tcp: bool, seq: u32) -> Vec<u8> {
    let len = NLMSG_HDR + REQ_V2;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // inet_diag_req_v2: family, protocol, ext, pad, states, then a zero id (no filter).
    m.push(libc::AF_INET as u8);
    m.push(if tcp {
        libc::IPPROTO_TCP
    } else {
        libc::IPPROTO_UDP
    } as u8);
    m.push(0);
    m.push(0);
    let states: u32 = if tcp { TCPF_LISTEN } else { u32::MAX };
    m.extend_from_slice(&states.to_ne_bytes());
    m.resize(len, 0);
    m
}

/// Reads one datagram of the dump's answer into `addrs`; `true` once the dump is done. Messages
/// of another sequence number (an answer to an earlier request cut short) are skipped.
pub fn parse(mut buf: &[u8], seq: u32, addrs: &mut Vec<SocketAddrV4>) -> io::Result<bool> {
    let u32_at = |b: &[u8], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    while buf.len() >= NLMSG_HDR {
        let len = u32_at(buf, 0) as usize;
        if len < NLMSG_HDR || len > buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "sock_diag: bad message length",
            ));
        }
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        let msg_seq = u32_at(buf, 8);
        let body = &buf[NLMSG_HDR..len];
        if msg_seq == seq {
            match kind {
                k if k == libc::NLMSG_DONE as u16 => return Ok(true),
                k if k == libc::NLMSG_ERROR as u16 => {
                    let errno = if body.len() >= 4 {
                        -(u32_at(body, 0) as i32)
                    } else {
                        libc::EINVAL
                    };
                    return Err(io::Error::from_raw_os_error(errno));
                }
                // inet_diag_msg: family, state, timer, retrans, then the id: sport, dport
                // (network order), src[4], dst[4] (IPv4: the first word, network order).
                SOCK_DIAG_BY_FAMILY
                    if body.len() >= MSG_ID_END && body[0] == libc::AF_INET as u8 =>
                {
                    let port = u16::from_be_bytes([body[4], body[5]]);
                    let ip = Ipv4Addr::new(body[8], body[9], body[10], body[11]);
                    addrs.push(SocketAddrV4::new(ip, port));
                }
                _ => {}
            }
        }
        // Messages are aligned to 4 bytes.
        let next = (len + 3) & !3;
        buf = &buf[next.min(buf.len())..];
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDR + body.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn socket_msg(family: u8, ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = vec![family, 7, 0, 0];
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        b.extend_from_slice(&ip);
        b.resize(72, 0);
        b
    }

    #[test]
    fn request_layout() {
        let r = request(true, 9);
        assert_eq!(r.len(), 72);
        assert_eq!(u32::from_ne_bytes([r[0], r[1], r[2], r[3]]), 72);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 20);
        assert_eq!(u32::from_ne_bytes([r[8], r[9], r[10], r[11]]), 9);
        assert_eq!(
            (r[16], r[17]),
            (libc::AF_INET as u8, libc::IPPROTO_TCP as u8)
        );
        assert_eq!(u32::from_ne_bytes([r[20], r[21], r[22], r[23]]), 1 << 10);
        assert!(r[24..].iter().all(|&b| b == 0), "no filter on the id");
    }

    #[test]
    fn answers_are_parsed_and_other_sequences_skipped() {
        let mut buf = message(
            20,
            3,
            &socket_msg(libc::AF_INET as u8, [10, 99, 0, 11], 5060),
        );
        buf.extend(message(
            20,
            2,
            &socket_msg(libc::AF_INET as u8, [10, 0, 0, 9], 9),
        ));
        buf.extend(message(
            20,
            3,
            &socket_msg(libc::AF_INET6 as u8, [0; 4], 5060),
        ));
        let mut addrs = Vec::new();
        assert!(!parse(&buf, 3, &mut addrs).unwrap());
        assert_eq!(addrs, ["10.99.0.11:5060".parse().unwrap()]);
        let done = message(libc::NLMSG_DONE as u16, 3, &0u32.to_ne_bytes());
        assert!(parse(&done, 3, &mut addrs).unwrap());
        let err = message(libc::NLMSG_ERROR as u16, 3, &(-libc::EPERM).to_ne_bytes());
        assert_eq!(
            parse(&err, 3, &mut addrs).unwrap_err().raw_os_error(),
            Some(libc::EPERM)
        );
        let mut bad = message(20, 3, &[0; 8]);
        bad[0] = 200;
        assert!(parse(&bad, 3, &mut addrs).is_err());
    }

    /// The kernel's own answer: a UDP socket bound and a TCP socket listening here are seen, a
    /// TCP socket that does not listen (a client's) is not, nor an address nobody holds.
    #[test]
    fn the_kernel_shows_bound_and_listening_sockets() {
        let v4 = |a: std::net::SocketAddr| match a {
            std::net::SocketAddr::V4(a) => a,
            other => panic!("{other}"),
        };
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (udp_at, listen_at, client_at) = (
            v4(udp.local_addr().unwrap()),
            v4(listener.local_addr().unwrap()),
            v4(client.local_addr().unwrap()),
        );
        let mut diag = SockDiag::open().unwrap();
        assert!(diag.is_open(false, udp_at).unwrap());
        assert!(diag.is_open(true, listen_at).unwrap());
        assert!(!diag.is_open(true, client_at).unwrap(), "not listening");
        assert!(
            !diag.is_open(false, listen_at).unwrap(),
            "no UDP socket there"
        );
        let nobody = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1);
        assert!(!diag.is_open(true, nobody).unwrap());
        assert!(!diag.is_open(false, nobody).unwrap());
        // A socket bound to every address receives at each of them.
        let any = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = any.local_addr().unwrap().port();
        assert!(diag
            .is_open(false, SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
            .unwrap());
    }
}
