//! sipplauncher's front end: the command line, its validation, collecting the suite, rendering
//! templates, the reports and exit statuses. It builds a [`sipplauncher_actors::core::plan::RunPlan`]
//! and hands it to the actor runtime ([`sipplauncher_actors::run`]).
//!
//! A newcomer reads [`app`] first: the command as a sequence of named steps, each a function.
//!
//! - [`app`]: the whole command, for `main`: open the log, check the CA, collect, preflight,
//!   build the plan, run it, the exit status.
//! - [`cli`]: the options (clap). [`config`]: their validation, one line per bad input.
//! - [`suite`]: the tests of a suite; [`scenario`]: scenario file names → instances, run groups.
//! - [`template`]: rendering run folders with minijinja.
//! - [`sipp_args`]: each test run's SIPp command lines (stages, argv, waves).
//! - [`dns_zone`]: `dns.txt` parsed into the records the embedded DNS server serves.
//! - [`rerun`]: `--rerun-failed`, the tests that did not pass in a JSON report.
//! - [`shard`]: `--shard K/N`, the part of the suite one machine runs.
//! - [`tls`]: the run's CA and each UA's certificate (SPEC §8).
//! - [`preflight`]: the checks made once at start (SIPp there, its version and TLS, open files).
//! - [`report`]: terminal lines ([`report::console`]), JUnit XML ([`report::junit`]), JSON
//!   ([`report::json`]) and HTML ([`report::html`]), all fed from the run's event stream.
//! - [`ladder`]: the SIP ladder of a test run, read from its pcap by our own code.
//! - [`report_cmd`]: `sipplauncher report`, the HTML report again from a JSON report.
//! - [`list_cmd`]: `sipplauncher list` (and `--list`): the tests a run would collect.
//! - [`merge`]: `sipplauncher merge`, the shards' JSON reports joined into one of each kind.
//! - [`exit_code`]: the documented exit statuses.
//! - [`sweep`]: `sipplauncher sweep`, a DUT's capacity curve over group sizes.

pub mod app;
pub mod cli;
pub mod config;
pub mod dns_zone;
pub mod exit_code;
pub mod ladder;
pub mod list_cmd;
pub mod merge;
pub mod preflight;
pub mod report;
pub mod report_cmd;
pub mod rerun;
pub mod scenario;
pub mod shard;
pub mod sipp_args;
pub mod suite;
pub mod sweep;
pub mod template;
pub mod tls;
