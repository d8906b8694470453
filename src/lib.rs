//! sipplauncher's front end: the command line, its validation, collecting the suite, rendering
//! templates, the reports and exit statuses. It builds a [`sipplauncher_actors::core::plan::RunPlan`]
//! and hands it to the actor runtime ([`sipplauncher_actors::run`]).
//!
//! A newcomer reads [`app`] first: the command as a sequence of named steps, each a function.
//!
//! - [`app`]: the whole command, for `main`: the subcommand or a run (signals caught first,
//!   open the log, check the CA, collect, preflight, build the plan, run it, the exit status).
//! - [`cli`]: the options (clap). [`config`]: their validation, one line per bad input.
//! - [`suite`]: the tests of a suite; [`scenario`]: scenario file names → instances, run groups.
//! - [`template`]: rendering run folders with minijinja.
//! - [`sipp_args`]: each test run's SIPp command lines (stages, argv, waves).
//! - [`dns_zone`]: `dns.txt` parsed into the records the embedded DNS server serves.
//! - [`rerun`]: `--rerun-failed`, the tests that did not pass in a JSON report.
//! - [`shard`]: `--shard K/N`, the part of the suite one machine runs.
//! - [`tls`]: the run's CA and each UA's certificate (SPEC §8).
//! - [`preflight`]: the checks made once at start (SIPp there, its version and TLS, open files).
//! - [`report`]: the sinks of the run's event stream: terminal lines ([`report::console`]) and
//!   the failure recap after them ([`report::recap`]), JUnit XML ([`report::junit`]), JSON
//!   ([`report::json`]) and HTML ([`report::html`]: the page, the ladders' geometry in
//!   `report::html::svg`, its tests in `report::html::tests`); [`report::evidence`]: what
//!   they keep of a run's evidence (addresses, the ladder read in post-run).
//! - [`ladder`]: the SIP ladder of a test run, read from its pcap by our own code:
//!   [`ladder::capture`] (link layers, IPv4 fragments), [`ladder::tcp`] (streams in order),
//!   [`ladder::sip`] (SIP messages in bytes), [`ladder::failure`] (which message failed);
//!   `ladder::testing`: pcaps written byte by byte for the tests.
//! - [`report_cmd`]: `sipplauncher report`, the HTML report again from a JSON report.
//! - [`list_cmd`]: `sipplauncher list` (and `--list`): the tests a run would collect.
//! - [`merge`]: `sipplauncher merge`, the shards' JSON reports joined into one of each kind.
//! - [`sweep`]: `sipplauncher sweep`, a DUT's capacity curve over group sizes: its options
//!   ([`sweep::args`]), each size's figures and the knee ([`sweep::figures`], pure), its
//!   signals passed on to each size's run ([`sweep::signals`]), the console table
//!   ([`sweep::table`]), `sweep.svg` ([`sweep::svg`]) and `sweep.html` ([`sweep::html`]).
//! - [`exit_code`]: the documented exit statuses.

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
