//! Who holds a port: the sockets bound to it in this network namespace (`/proc/net/udp`,
//! `udp6`, `tcp`, `tcp6`), matched by inode against the open files of every process this pid
//! namespace shows (`/proc/<pid>/fd`). Blocking file reads: call it off the actor thread.

use std::collections::HashSet;
use std::fmt;
use std::fs;

/// A transport whose socket tables `/proc/net` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

impl Proto {
    fn tables(self) -> [&'static str; 2] {
        match self {
            Proto::Udp => ["/proc/net/udp", "/proc/net/udp6"],
            Proto::Tcp => ["/proc/net/tcp", "/proc/net/tcp6"],
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
        })
    }
}

/// A process that holds a socket bound to the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: i32,
    /// Its command name (`/proc/<pid>/comm`).
    pub command: String,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (pid {})", self.command, self.pid)
    }
}

/// The processes holding a `proto` socket bound to local port `port`, by pid. Empty when none
/// can be seen (a process of another pid namespace sharing this network namespace, or the
/// socket gone meanwhile).
pub fn port_holders(proto: Proto, port: u16) -> Vec<Holder> {
    let mut inodes = HashSet::new();
    for table in proto.tables() {
        if let Ok(text) = fs::read_to_string(table) {
            inodes.extend(bound_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        return Vec::new();
    }
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut holders = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // A process that ended meanwhile, or one we may not look into: skipped.
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            fs::read_link(fd.path())
                .ok()
                .and_then(|target| socket_inode(target.to_str()?))
                .is_some_and(|inode| inodes.contains(&inode))
        });
        if holds {
            let command = fs::read_to_string(entry.path().join("comm"))
                .map(|c| c.trim_end().to_string())
                .unwrap_or_else(|_| "?".into());
            holders.push(Holder { pid, command });
        }
    }
    holders.sort_by_key(|h| h.pid);
    holders
}

/// The inodes of the sockets of a `/proc/net/{udp,tcp}[6]` table bound to local port `port`.
fn bound_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let local = fields.get(1)?;
            let (_, hex_port) = local.rsplit_once(':')?;
            if u16::from_str_radix(hex_port, 16).ok()? != port {
                return None;
            }
            // A socket in TIME_WAIT has no inode (0): nobody holds it.
            fields
                .get(9)?
                .parse::<u64>()
                .ok()
                .filter(|&inode| inode != 0)
        })
        .collect()
}

/// `socket:[1234]` → 1234.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_read_by_port() {
        let udp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
             1: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41234 2 0000000000000000 0\n\
             2: 0100007F:1435 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41299 2 0000000000000000 0\n";
        assert_eq!(bound_inodes(udp, 53), [41234]);
        assert_eq!(bound_inodes(udp, 5173), [41299]);
        assert!(bound_inodes(udp, 54).is_empty());
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0\n\
             1: 0000000000000000FFFF00000100007F:0035 0000000000000000FFFF00000100007F:9C40 06 00000000:00000000 03:00000FA3 00000000     0        0 0 3 0000000000000000\n";
        assert_eq!(bound_inodes(tcp6, 53), [777]);
        assert!(bound_inodes("", 53).is_empty());
        assert!(bound_inodes("header\ngarbage line\n", 53).is_empty());
        assert_eq!(socket_inode("socket:[41234]"), Some(41234));
        assert_eq!(socket_inode("pipe:[41234]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    /// This process holds the socket: it finds itself (no privileges needed for its own fds).
    #[test]
    fn finds_the_process_that_holds_a_port() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let me = std::process::id() as i32;
        let found = port_holders(Proto::Udp, port);
        assert!(found.iter().any(|h| h.pid == me), "{found:?}");
        let comm = fs::read_to_string("/proc/self/comm").unwrap();
        let mine = found.iter().find(|h| h.pid == me).unwrap();
        assert_eq!(mine.command, comm.trim_end());
        assert_eq!(mine.to_string(), format!("{} (pid {me})", comm.trim_end()));
        drop(udp);
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        assert!(port_holders(Proto::Tcp, port).iter().any(|h| h.pid == me));
        drop(tcp);
        assert!(port_holders(Proto::Tcp, port).iter().all(|h| h.pid != me));
    }
}
