//! sipplauncher's front end: the command line, its validation, collecting the suite, rendering
//! templates, the reports and exit statuses. It builds a [`sipplauncher_actors::core::plan::RunPlan`]
//! and hands it to the actor runtime ([`sipplauncher_actors::run`]).
//!
//! - [`cli`]: the options (clap). [`config`]: their validation, one line per bad input.
//! - [`suite`]: the tests of a suite; [`scenario`]: scenario file names → instances, run groups.
//! - [`template`]: rendering run folders with minijinja.
//! - [`report`]: terminal lines, JUnit XML and JSON, all fed from the run's event stream.
//! - [`merge`]: `sipplauncher merge`, the shards' JSON reports joined into one.
//! - [`shard`]: `--shard K/N`, the part of the suite one machine runs.
//! - [`tls`]: the run's CA and each UA's certificate (SPEC §8).
//! - [`exit_code`]: the documented exit statuses. [`app`]: the whole command, for `main`.

pub mod app;
pub mod cli;
pub mod config;
pub mod dns_zone;
pub mod exit_code;
pub mod merge;
pub mod preflight;
pub mod report;
pub mod scenario;
pub mod shard;
pub mod sipp_args;
pub mod suite;
pub mod template;
pub mod tls;
