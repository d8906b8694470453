//! The one integration test binary: runs the real `sipplauncher` binary on fixture suites.
//! - [`dry_run`]: whole runs in `--dry-run` (no privileges needed): states, reports, run folders.
//! - [`usage`]: every bad input gets one line naming the option, exit status 2, nothing made.
//! - [`interrupt`]: signals during a run.
//! - [`hostile`]: hostile inputs and untimely signals (issue 13): refused in one line, answered
//!   at once, nothing left behind.
//! - [`examples`]: the CI and Kubernetes examples' YAML and commands, the image they run.
//! - [`scale`]: `--shard`, `merge`, `--retries`, `--rerun-failed` (issue 12).
//! - [`scale_lab`]: several processes on one DUT network: shards in a scale-out lab, merged.
//! - [`tls`]: certificates, handshakes and the TLS key log (SPEC §8) without a TLS SIPp.
//! - [`list`]: `list`/`--list`, the dry run's addresses and command lines, its group pause.
//! - [`terminal`]: the console on a pseudo-terminal: colours, `NO_COLOR`, the width.
//! - [`dns`]: the DNS server beside another sipplauncher in one network namespace.
//! - [`house`]: each `lib.rs` map names every module of its crate.
//! - [`html`]: the HTML report of a real run in the lab, opened in headless Chromium.
//! - [`sweep`]: `sipplauncher sweep`, dry and in a lab with a DUT of limited capacity.

mod common;
mod dns;
mod dry_run;
mod examples;
mod hostile;
mod house;
mod html;
mod interrupt;
mod lab;
mod list;
mod real;
mod scale;
mod scale_lab;
mod sweep;
mod terminal;
mod tls;
mod usage;
