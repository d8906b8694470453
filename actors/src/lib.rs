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
//! Where things are (a room per actor: the actor, its pure core, its OS adapter):
//! - [`supervisor::Supervisor`]: drives the run through [`core::dispatch::Dispatcher`]: groups,
//!   pre-run in order, run at once, post-run in reverse, GLOBAL scripts, interrupts, the end;
//!   starts the shared services and shuts them down (Shutdown, DnsShutdown, SnifferStop).
//! - [`test_actor::TestActor`]: one test run; owns its [`core::state::Lifecycle`], its run
//!   folder, its log and its scripts; asks the services below for what its run needs and gives
//!   it back in post-run.
//! - [`net`]: the NetActor, the addresses of the DUT network ([`net::pool::AddressPool`]) and the
//!   `sipp-<run_id>` links ([`net::netlink`], [`net::arp`]).
//! - [`sipp`]: the SippActor, one per running test: its SIPp processes, stage by stage.
//! - [`dns`]: the DnsActor, the embedded DNS server shared by all tests (records per run).
//! - [`sniffer`]: the SnifferActor, the one capture of the run, a pcap per test.
//! - [`core`]: the pure cores (no actix, no tokio): [`core::plan`] (what runs),
//!   [`core::scheduler`], [`core::dispatch`], [`core::state`].
//! - [`sys`]: the OS helpers: run folders, scripts, strays, owners, signals, logs.
//! - [`messages`]: the typed messages between actors; [`events`]: the run's event stream, which
//!   the front end's console and reports consume.

pub mod core;
pub mod dns;
pub mod events;
pub mod messages;
pub mod net;
pub mod sipp;
pub mod sniffer;
pub mod supervisor;
pub mod sys;
pub mod test_actor;

pub use supervisor::run;
