//! Every message between the actors, grouped by the actor that receives it. A message's reply
//! type is part of it (`#[rtype]`). The three shared services (NetActor, DnsActor,
//! SnifferActor) take the same [`Shutdown`], so that the Supervisor fans it out to all of them
//! and waits for every reply.
//!
//! Only an actor's messages to itself (the DnsActor's `ServerEnded` and `RetryStart`) and
//! test-only probes stay private to their module.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use actix::Message;
use slog::Logger;

use crate::core::plan::{LaunchPlan, RunId, TestName, UaName};
use crate::dns::zones::RunZone;
use crate::dns::DnsError;
use crate::net::NetError;
use crate::sipp::SippOutcome;
use crate::sniffer::{PcapStats, SniffError};
use crate::sys::marks::Mark;
use crate::sys::script::KillSwitch;

// ---------------------------------------------------------------------------------------------
// → Supervisor

/// The OS signals that wind a run down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalKind {
    Interrupt,
    Terminate,
    Hangup,
    Quit,
}

impl SignalKind {
    pub fn name(self) -> &'static str {
        match self {
            SignalKind::Interrupt => "SIGINT",
            SignalKind::Terminate => "SIGTERM",
            SignalKind::Hangup => "SIGHUP",
            SignalKind::Quit => "SIGQUIT",
        }
    }
}

impl std::fmt::Display for SignalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// signal task → Supervisor: a signal arrived.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Signal(pub SignalKind);

/// TestActor → Supervisor: what its run holds now, sent whenever that changes, so that the
/// Supervisor can give it all back itself if the TestActor dies (a panic, a bug).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Holding {
    pub slot: usize,
    pub holds: Holds,
}

/// What a test run holds of the machine and of the shared services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holds {
    /// Addresses (on their `sipp-<id>` link) leased under this id.
    pub lease: Option<RunId>,
    /// The run id its run folder, DNS records and capture go by, and the folder.
    pub folder: Option<(RunId, PathBuf)>,
    /// Its `dns.txt` records are served.
    pub dns: bool,
    /// Its packets are being captured.
    pub capture: bool,
    /// Its scripts ran under this mark: what they left running is stopped when it is given back.
    pub scripts: Option<Mark>,
}

impl Holds {
    pub fn is_empty(&self) -> bool {
        *self == Holds::default()
    }
}

// ---------------------------------------------------------------------------------------------
// → TestActor (Abort and Kill also → GlobalActor)

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

/// Supervisor → TestActor and GlobalActor, first interrupt: stop the run now (the test still
/// answers `Run`), or a running before.sh (TERM, grace, KILL; it still answers `Prepare` /
/// `GlobalBefore`); a running after.sh goes on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Abort;

/// Supervisor → TestActor and GlobalActor, second interrupt: kill whatever runs at once
/// (scripts, SIPp); cleanup then skips after.sh but still removes what it can.
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

// ---------------------------------------------------------------------------------------------
// → GlobalActor

/// Supervisor → GlobalActor, before the first test: make the GLOBAL run folder and run its
/// before.sh (in `--dry-run` the folder is only rendered).
#[derive(Message)]
#[rtype(result = "GlobalReply")]
pub struct GlobalBefore;

/// Supervisor → GlobalActor, after the last test: run the GLOBAL after.sh (when its before.sh
/// ran) and remove the GLOBAL run folder.
#[derive(Message)]
#[rtype(result = "GlobalReply")]
pub struct GlobalAfter;

/// Supervisor → GlobalActor, at the end when `GlobalAfter` was not sent (a second signal):
/// stop what the GLOBAL before.sh left running and remove the GLOBAL run folder; no script
/// runs. Nothing to do when `GlobalAfter` was sent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GlobalCleanup;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalReply {
    /// The script (and the folder it needs) did not fail.
    pub ok: bool,
}

// ---------------------------------------------------------------------------------------------
// → NetActor

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

// ---------------------------------------------------------------------------------------------
// → DnsActor

/// TestActor → DnsActor, pre-run: serve these records while the run lasts. Binds the server
/// first if it is not up. Either every record is added or none.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), DnsError>")]
pub struct AddRecords {
    pub run_id: RunId,
    pub test: TestName,
    /// The run's `dns.txt`, parsed and grouped (off the actor's thread).
    pub zone: RunZone,
    /// The run's own log: the questions its records answer are told there.
    pub log: Logger,
    /// The run's switch: adding many records gives up once the run is interrupted.
    pub stop: KillSwitch,
}

/// TestActor → DnsActor, post-run: stop serving the records of a run (none is fine).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct RemoveRecords {
    pub run_id: RunId,
}

/// → DnsActor: where the server listens (its port, when bound on port 0, as in tests); `None`
/// while it is not bound.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Option<std::net::SocketAddr>")]
pub struct LocalAddr;

// ---------------------------------------------------------------------------------------------
// → SnifferActor

/// TestActor → SnifferActor, in pre-run: file every packet from or to `addrs` to this run,
/// for `pcap`. Answered once the capture thread has it; SIPp may start then.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), SniffError>")]
pub struct Register {
    pub run_id: RunId,
    pub addrs: Vec<Ipv4Addr>,
    /// Where [`Unregister`] writes the run's packets: `<run folder>/sipp-<run_id>.pcap`.
    pub pcap: PathBuf,
}

/// TestActor → SnifferActor, in post-run: stop filing for this run and write its pcap.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<PcapStats, SniffError>")]
pub struct Unregister {
    pub run_id: RunId,
}

// ---------------------------------------------------------------------------------------------
// → every service (NetActor, DnsActor, SnifferActor)

/// Supervisor → each shared service, at the end of the run: undo everything it holds, then
/// answer; what it is asked afterwards fails. The NetActor removes every `sipp-*` link made
/// and not yet removed; the DnsActor stops its server and waits until its sockets are closed;
/// the SnifferActor closes the capture socket and ends its thread (packets of runs still
/// registered are dropped).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<(), ShutdownError>")]
pub struct Shutdown;

/// What a service could not undo at [`Shutdown`]; one line.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Dns(#[from] DnsError),
    #[error(transparent)]
    Capture(#[from] SniffError),
}

// ---------------------------------------------------------------------------------------------
// → SippActor

/// TestActor → SippActor (the runner the Supervisor handed it): run the plan in the run folder,
/// logging to the run's log. Answered when every instance has exited.
#[derive(Message)]
#[rtype(result = "SippOutcome")]
pub struct RunSipp {
    pub plan: LaunchPlan,
    pub folder: PathBuf,
    /// `--test-timeout`.
    pub timeout: Duration,
    pub log: Logger,
}

/// TestActor → SippActor: stop what runs (interrupt); `hard` for the second one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopSipp {
    pub hard: bool,
}
