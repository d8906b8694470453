//! sipplauncher's runtime: the actors that execute a run plan, their messages, and the pure
//! cores they drive.
//!
//! ```text
//!                  signals (INT TERM HUP QUIT) ──Signal──▶ ┌────────────┐
//!                                                          │ Supervisor │── events ──▶ EventBus
//!   front end ──RunPlan──▶ run() ─────────────────────────▶│ (dispatch) │             (console,
//!                                                          └─────┬──────┘              junit, json)
//!                      Prepare / Run / Abort / Kill / Cleanup    │  ▲  Prepared / RunDone / Cleaned
//!                                                                ▼  │
//!                                                          ┌────────────┐ Lease/Release ┌──────────┐
//!                                                          │ TestActor  │──────────────▶│ NetActor │
//!                                                          │ (one a run)│               └──────────┘
//!                                                          └────────────┘
//! ```
//!
//! Actors (each a thin shell around a pure core):
//! - [`supervisor::Supervisor`]: drives the run through [`dispatch::Dispatcher`]: groups,
//!   pre-run in order, run at once, post-run in reverse, GLOBAL scripts, interrupts, the end.
//! - [`test_actor::TestActor`]: one test run; owns its [`state::Lifecycle`], its run folder,
//!   its log and its scripts.
//! - [`net::NetActor`]: the addresses of the DUT network ([`pool::AddressPool`]).
//!
//! Pure cores (no actix, no tokio): [`state`], [`scheduler`], [`dispatch`], [`pool`].

pub mod arp;
pub mod dispatch;
pub mod dns;
pub mod events;
pub mod logging;
pub mod messages;
pub mod net;
pub mod netlink;
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
