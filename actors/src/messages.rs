//! The typed messages between the actors. A message's reply type is part of it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use actix::Message;

use crate::core::plan::{RunId, UaName};
use crate::net::NetError;

/// Supervisor → TestActor: pre-run (PREPARING → READY or NOT READY).
#[derive(Message)]
#[rtype(result = "PrepareReply")]
pub struct Prepare;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareReply {
    pub ready: bool,
    /// The tool's own fault (run folder root not writable, disk full): the run stops.
    pub fatal: Option<String>,
}

/// Supervisor → TestActor: run (READY → DRY-RUNNING/STARTING → SUCCESS/FAIL).
#[derive(Message)]
#[rtype(result = "RunReply")]
pub struct Run;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunReply {
    pub success: bool,
}

/// Supervisor → TestActor, first interrupt: stop the run now; the test still answers `Run`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Abort;

/// Supervisor → TestActor, second interrupt: kill whatever runs at once; cleanup then skips
/// after.sh but still removes what it can.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Kill;

/// Supervisor → TestActor: post-run (→ CLEANING → CLEAN or DIRTY). Also the cleanup after an
/// interrupt: every test past PREPARING gets exactly one.
#[derive(Message)]
#[rtype(result = "CleanupReply")]
pub struct Cleanup;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupReply {
    /// SUCCESS and CLEAN.
    pub passed: bool,
}

/// TestActor → NetActor: an address for each instance of a run.
#[derive(Message)]
#[rtype(result = "Result<BTreeMap<UaName, Ipv4Addr>, NetError>")]
pub struct Lease {
    pub run_id: RunId,
    pub uas: Vec<UaName>,
}

/// TestActor → NetActor: give back the addresses of a run.
#[derive(Message)]
#[rtype(result = "Result<(), NetError>")]
pub struct Release {
    pub run_id: RunId,
}

/// Supervisor → NetActor, at the end of a run and after a second interrupt: remove every
/// `sipp-*` link made and not yet released; later leases fail.
#[derive(Message)]
#[rtype(result = "Result<(), NetError>")]
pub struct Shutdown;

/// signal task → Supervisor: SIGINT, SIGTERM, SIGHUP or SIGQUIT arrived.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Signal(pub &'static str);
