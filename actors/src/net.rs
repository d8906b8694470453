//! NetActor: owns the DUT network's address pool and gives each test run an address per SIPp
//! instance. In `--dry-run` addresses are chosen, not assigned: nothing on the machine changes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use actix::{Actor, Context, Handler};
use slog::{debug, Logger};

use crate::messages::{Lease, Release};
use crate::plan::UaName;
use crate::pool::{AddressPool, PoolError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Pool(#[from] PoolError),
}

pub struct NetActor {
    /// Free and leased addresses of the DUT network.
    pool: AddressPool,
    log: Logger,
}

impl NetActor {
    pub fn new(dut: Ipv4Addr, prefix: u8, log: Logger) -> Self {
        NetActor {
            pool: AddressPool::new(dut, prefix),
            log,
        }
    }
}

impl Actor for NetActor {
    type Context = Context<Self>;
}

impl Handler<Lease> for NetActor {
    type Result = Result<BTreeMap<UaName, Ipv4Addr>, NetError>;

    fn handle(&mut self, msg: Lease, _: &mut Context<Self>) -> Self::Result {
        let mut rng = rand::thread_rng();
        let mut out = BTreeMap::new();
        for ua in msg.uas {
            let addr = match self.pool.pick(&mut rng) {
                Ok(a) => a,
                Err(e) => {
                    self.pool.release(&msg.run_id);
                    return Err(e.into());
                }
            };
            self.pool.lease(addr, &msg.run_id);
            out.insert(ua, addr);
        }
        debug!(self.log, "addresses chosen"; "run_id" => %msg.run_id, "addresses" => ?out);
        Ok(out)
    }
}

impl Handler<Release> for NetActor {
    type Result = Result<(), NetError>;

    fn handle(&mut self, msg: Release, _: &mut Context<Self>) -> Self::Result {
        let n = self.pool.release(&msg.run_id);
        debug!(self.log, "addresses released"; "run_id" => %msg.run_id, "count" => n);
        Ok(())
    }
}
