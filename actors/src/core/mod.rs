//! The pure cores shared by several actors: no actix, no tokio, unit-tested without a runtime.
//!
//! - [`plan`]: what the runtime executes (tests, instances, run groups, run-wide options), as
//!   the front end built it.
//! - [`scheduler`]: which test runs next (`--group`, `--total`, `--random`, `--loop`).
//! - [`dispatch`]: the Supervisor's decisions (groups, `--window`, interrupts, GLOBAL).
//! - [`state`]: a test run's lifecycle, as a typestate (SPEC §4.1).

pub mod dispatch;
pub mod plan;
pub mod scheduler;
pub mod state;
