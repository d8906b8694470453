//! The lock that several sipplauncher processes in one network namespace take to put addresses
//! on their links: under it, a process checks that none of its addresses is on a link of the
//! namespace already and puts them on its own, so that two processes (two CI jobs on one host,
//! shards in one container) never pick the same free address at the same moment.
//!
//! It is an abstract unix socket (`@sipplauncher-address-claim`): bound by one process at a
//! time, scoped to the network namespace like the addresses it guards (whatever the mount or pid
//! namespace), and released by the kernel when its holder exits, even by SIGKILL: a killed run
//! never leaves it taken. Waiting for it never blocks the actix thread (a retry every
//! millisecond on the runtime's timer).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// The abstract socket's name (no file: a leading NUL byte on the wire).
pub const CLAIM_NAME: &str = "sipplauncher-address-claim";

/// How long to wait for the lock before giving up: it is held for a netlink dump and a few
/// address changes (milliseconds), so this is only reached when something is wrong.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("the address lock of this network namespace (@{CLAIM_NAME}) is held by another process for {0:?}")]
    Timeout(Duration),
    #[error("the address lock of this network namespace (@{CLAIM_NAME}): {0}")]
    Io(String),
}

/// The lock, held while it lives.
#[derive(Debug)]
pub struct Claim {
    _socket: UnixDatagram,
}

impl Claim {
    /// Takes the lock now, or `None` when another process holds it.
    pub fn try_take() -> Result<Option<Claim>, ClaimError> {
        let addr = SocketAddr::from_abstract_name(CLAIM_NAME.as_bytes())
            .map_err(|e| ClaimError::Io(e.to_string()))?;
        match UnixDatagram::bind_addr(&addr) {
            Ok(socket) => Ok(Some(Claim { _socket: socket })),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(None),
            Err(e) => Err(ClaimError::Io(e.to_string())),
        }
    }

    /// Takes the lock, waiting for it up to `timeout`.
    pub async fn take(timeout: Duration) -> Result<Claim, ClaimError> {
        let start = Instant::now();
        loop {
            if let Some(claim) = Claim::try_take()? {
                return Ok(claim);
            }
            if start.elapsed() >= timeout {
                return Err(ClaimError::Timeout(timeout));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::netlink::testns;

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "needs root for a network namespace: cargo test --features lab"
    )]
    fn one_holder_per_network_namespace_and_free_again_when_dropped() {
        testns::in_netns("claim lock", || {
            let a = Claim::try_take().unwrap().expect("free at first");
            assert!(Claim::try_take().unwrap().is_none(), "held");
            let rt = testns::runtime();
            let err = rt
                .block_on(Claim::take(Duration::from_millis(20)))
                .unwrap_err();
            assert!(matches!(err, ClaimError::Timeout(_)), "{err}");
            // Released when the holder lets go; a waiter gets it then.
            let waiter = std::thread::spawn(|| {
                testns::runtime().block_on(Claim::take(Duration::from_secs(5)))
            });
            std::thread::sleep(Duration::from_millis(30));
            drop(a);
            let b = waiter.join().unwrap().expect("taken after the release");
            // Another network namespace has a lock of its own.
            testns::in_netns("claim lock, another namespace", || {
                assert!(Claim::try_take().unwrap().is_some());
            });
            drop(b);
        });
    }
}
