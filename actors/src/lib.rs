//! sipplauncher's runtime: the actors that execute a run plan, their messages, and the pure
//! cores they drive.
//!
//! ```text
//! signal task ─Signal─▶ ┌──────────────┐ ─events─▶ EventBus ─▶ sinks, on a thread of their own
//! (INT TERM HUP QUIT)   │  Supervisor  │            (console, JSON, JUnit, HTML: the front end)
//! front end ─plan─▶     │ (Dispatcher) │ ─GlobalBefore / GlobalAfter /  ─▶ ┌─────────────┐
//!   run()               └──────────────┘  GlobalCleanup / Abort / Kill     │ GlobalActor │
//!                          │        ▲                                      └─────────────┘
//!   Prepare / Run /        │        │ PrepareReply / RunReply / CleanupReply;
//!   Abort / Kill /         ▼        │ Holding (what its run holds, at each change)
//!   Cleanup             ┌──────────────┐ ─RunSipp / StopSipp─▶ ┌───────────┐
//!                       │  TestActor   │                       │ SippActor │─▶ SIPp processes
//!                       │ (one a run)  │                       └───────────┘  (its runner, handed
//!                       └──────────────┘                                        by the Supervisor)
//!        Lease /          │         │ AddRecords /        │ Register /
//!        Release          ▼         ▼ RemoveRecords       ▼ Unregister
//!                 ┌──────────┐ ┌──────────┐ ┌──────────────┐
//!                 │ NetActor │ │ DnsActor │ │ SnifferActor │─▶ capture thread
//!                 └──────────┘ └──────────┘ └──────────────┘
//!                       ▲            ▲             ▲
//!                       └────────────┴─────────────┴── from the Supervisor:
//!                         - Release / RemoveRecords / Unregister of a TestActor that died
//!                           (its mailbox gone: the Supervisor gives back what it held, at once);
//!                         - Shutdown at the end, to all three at once, every reply awaited.
//! ```
//!
//! Where things are: a folder per actor (the actor, its pure core, its OS adapter), the pure
//! cores several actors share in [`core`], the OS helpers in [`sys`]. A newcomer reads
//! [`messages`] (who says what to whom), then [`supervisor`] and [`core::dispatch`] (what
//! happens when), then [`test_actor`] and [`core::state`] (one test run).
//! - [`supervisor`]: the Supervisor drives the run through [`core::dispatch::Dispatcher`]:
//!   groups, pre-run in order, run at once, post-run in reverse, interrupts, the end; starts the
//!   shared services, gives back what a dead TestActor held, and at the end sends each service
//!   the same [`messages::Shutdown`] and waits for every reply. [`run`] is the entry point.
//! - [`global`]: the GlobalActor, the GLOBAL pseudo-test's run folder and its before.sh /
//!   after.sh.
//! - [`test_actor`]: the TestActor, one test run; its [`core::state::Lifecycle`] carries what
//!   the run holds; it asks the services below (as `Recipient`s) for what its run needs and
//!   gives it back in post-run.
//! - [`run_folder`]: a run folder made ready (made, marked, copied, logged, rendered), shared by
//!   the TestActor and the GlobalActor.
//! - [`net`]: the NetActor, the addresses of the DUT network ([`net::pool`], pure) and the
//!   `sipp-<run_id>` links ([`net::netlink`]), ARP-probed first ([`net::arp`]); [`net::claim`]:
//!   the lock several sipplauncher processes of one network namespace share.
//! - [`sipp`]: the SippActor, one per running test: its SIPp processes, stage by stage;
//!   [`sipp::stats`]: SIPp's own statistics (pure); [`sipp::sockets`]: whether a UAS listens
//!   yet (NETLINK_SOCK_DIAG).
//! - [`dns`]: the DnsActor, the embedded DNS server shared by all tests: [`dns::zones`] (the
//!   records of each run and the answers: pure), [`dns::server`] (hickory's sockets and handler).
//! - [`sniffer`]: the SnifferActor, the one capture of the run, a pcap per test.
//! - [`core`]: the pure cores (no actix, no tokio): [`core::plan`] (what runs, as the front end
//!   built it), [`core::scheduler`] (which test next), [`core::dispatch`] (the Supervisor's
//!   decisions), [`core::state`] (a test run's typestate).
//! - [`sys`]: the OS helpers: [`sys::rundir`] (run folders), [`sys::keep`] (which run folders
//!   stay), [`sys::script`] (before.sh / after.sh), [`sys::marks`] (what a script left running),
//!   [`sys::strays`] (SIPp left by killed runs), [`sys::owner`] (who made a link or a folder),
//!   [`sys::signal`] (signals, caught first thing), [`sys::logging`] (slog drains off the
//!   actor thread), [`sys::sockets`] (who holds a port), [`sys::usage`] (the CPU a run cost),
//!   [`sys::last_resort`] (what an actor's `Drop` still undoes, on a thread the run waits for),
//!   [`sys::detached`] (pre-run work on threads the process's end does not wait for).
//! - [`messages`]: every message between the actors, grouped by receiver; [`events`]: the run's
//!   event stream, which the front end's console and reports consume on a thread of their own
//!   (a stdout nobody reads, a slow disk never stall the actors).
//! - `testkit` (tests only): a front end that renders nothing, throw-away suites, a recording
//!   sink that can signal the run when a state shows up.

pub mod core;
pub mod dns;
pub mod events;
pub mod global;
pub mod messages;
pub mod net;
pub mod run_folder;
pub mod sipp;
pub mod sniffer;
pub mod supervisor;
pub mod sys;
pub mod test_actor;
#[cfg(test)]
mod testkit;

pub use supervisor::run;
