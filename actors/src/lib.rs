//! sipplauncher's runtime: the actors that execute a run plan, their messages, and the pure
//! cores they drive.
//!
//! ```text
//!          signals (INT TERM HUP QUIT) ──Signal──▶ ┌────────────┐
//!                                                  │ Supervisor │── events ──▶ EventBus (console,
//!   front end ──RunPlan, FrontEnd──▶ run() ───────▶│ (dispatch) │              junit, json)
//!                                                  └─────┬──────┘
//!              Prepare / Run / Abort / Kill / Cleanup    │  ▲  Prepared / RunDone / Cleaned
//!                                                        ▼  │
//!   ┌──────────┐ Lease/Release  ┌──────────────┐ RunSipp/StopSipp ┌───────────┐
//!   │ NetActor │◀───────────────│  TestActor   │─────────────────▶│ SippActor │ SIPp processes
//!   └──────────┘                │ (one a run)  │                  └───────────┘
//!   ┌──────────┐ Add/Remove-    │              │ Register/        ┌──────────────┐
//!   │ DnsActor │◀──Records──────│              │──Unregister─────▶│ SnifferActor │ capture thread
//!   └──────────┘                └──────────────┘                  └──────────────┘
//! ```
//!
//! Actors (each a thin shell around a pure core):
//! - [`supervisor::Supervisor`]: drives the run through [`dispatch::Dispatcher`]: groups,
//!   pre-run in order, run at once, post-run in reverse, GLOBAL scripts, interrupts, the end;
//!   starts the shared services and shuts them down (Shutdown, DnsShutdown, SnifferStop).
//! - [`test_actor::TestActor`]: one test run; owns its [`state::Lifecycle`], its run folder,
//!   its log and its scripts; asks the services below for what its run needs and gives it back
//!   in post-run.
//! - [`net::NetActor`]: the addresses of the DUT network ([`pool::AddressPool`]) and the
//!   `sipp-<run_id>` links ([`netlink`], [`arp`]).
//! - [`sipp::SippActor`]: one per running test: its SIPp processes, stage by stage.
//! - [`dns::DnsActor`]: the embedded DNS server shared by all tests (records per run).
//! - [`sniffer::SnifferActor`]: the one capture of the run, a pcap per test.
//!
//! Pure cores (no actix, no tokio): [`state`], [`scheduler`], [`dispatch`], [`pool`], and the
//! zone logic of [`dns::Zones`].

pub mod arp;
pub mod dispatch;
pub mod dns;
pub mod events;
pub mod logging;
pub mod messages;
pub mod net;
pub mod netlink;
pub mod owner;
pub mod plan;
pub mod pool;
pub mod rundir;
pub mod scheduler;
pub mod script;
pub mod signal;
pub mod sipp;
pub mod sniffer;
pub mod state;
pub mod strays;
pub mod supervisor;
pub mod test_actor;

pub use supervisor::run;
