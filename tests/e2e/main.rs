//! The one integration test binary: runs the real `sipplauncher` binary on fixture suites.
//! - [`dry_run`]: whole runs in `--dry-run` (no privileges needed): states, reports, run folders.
//! - [`usage`]: every bad input gets one line naming the option, exit status 2, nothing made.
//! - [`interrupt`]: signals during a run.
//! - [`hostile`]: hostile inputs and untimely signals (issue 13): refused in one line, answered
//!   at once, nothing left behind.
//! - [`tls`]: certificates, handshakes and the TLS key log (SPEC §8) without a TLS SIPp.
//! - [`html`]: the HTML report of a real run in the lab, opened in headless Chromium.

mod common;
mod dry_run;
mod hostile;
mod html;
mod interrupt;
mod lab;
mod real;
mod tls;
mod usage;
