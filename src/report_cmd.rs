//! `sipplauncher report RUN.json --html OUT.html`: a run's HTML report made again from its JSON
//! report (and the pcaps of the run folders it kept, for runs whose ladder the JSON lacks),
//! without running anything and without privileges.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::Parser;

use crate::config::writable_file_path;
use crate::exit_code;
use crate::report::html::write_html;
use crate::report::json::JsonReport;

/// Make the HTML report of a run again from its JSON report
#[derive(Debug, Clone, Parser)]
#[command(
    name = "sipplauncher report",
    about = "Make the HTML report of a run again from its JSON report (--json), without running anything",
    max_term_width = 100
)]
pub struct ReportCli {
    /// The JSON report of a run (written with --json)
    #[arg(value_name = "RUN.json")]
    pub json: PathBuf,

    /// Write the HTML report to FILE
    #[arg(long, value_name = "FILE", required = true)]
    pub html: PathBuf,
}

/// Runs `sipplauncher report ARGS` (`args` without the program and `report`); returns the
/// exit status: 0 written, 2 a bad command line or an unreadable JSON report, 3 the file
/// could not be written.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let argv = std::iter::once(OsString::from("sipplauncher report")).chain(args);
    let cli = match ReportCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => return crate::app::clap_exit(&e),
    };
    let html = match writable_file_path("--html", cli.html) {
        Ok(p) => p,
        Err(e) => return fail(exit_code::USAGE, &e.to_string()),
    };
    if html == cli.json {
        return fail(
            exit_code::USAGE,
            &format!("--html: {} is the JSON report itself", html.display()),
        );
    }
    let report = match JsonReport::read(&cli.json) {
        Ok(r) => r,
        Err(e) => return fail(exit_code::USAGE, &e),
    };
    match write_html(&report, &html) {
        Ok(()) => exit_code::SUCCESS,
        Err(e) => fail(exit_code::INTERNAL, &e),
    }
}

fn fail(status: i32, msg: &str) -> i32 {
    let _ = writeln!(std::io::stderr(), "sipplauncher report: {msg}");
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        ReportCli::command().debug_assert();
    }
}
