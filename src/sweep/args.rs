//! The sweep's command line: its own options (`--groups`, `--out`, `--stop-below`, `--target`)
//! picked out of the arguments, every other argument a run option passed to each size's run as
//! given; all of it checked before anything is made, one line per problem.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};

use crate::cli::Cli;
use crate::config;
use crate::preflight;
use crate::suite;

use super::figures::total_for;

/// The sweep's own options. The run options are not listed here: any of `sipplauncher --help`
/// may follow (all but `--group`, `--json`, `--junit`, `--html` and `--loop`: the sweep sets
/// or makes them).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "sipplauncher sweep",
    about = "Benchmark a DUT: run the suite at each group size in turn and draw its capacity curve",
    after_help = "Every other option is a run option (see `sipplauncher --help`), given to the \
                  run of each size as is; --group, --total and --json are set per size (--total: \
                  4 x the size, at least the number of tests, unless given).\n\nIn DIR: \
                  sweep.json (every figure), sweep.svg (the curve), sweep.html (the curve, then \
                  the last size's HTML report), and per size group-N.json (its run's report) and \
                  group-N.log (its console).\n\nExit status: 0 every size ran and none fell \
                  below --stop-below; 1 one did (the sweep stopped there) or the sweep was \
                  interrupted; 2 bad input; 3 a run stopped on the tool's own fault.",
    disable_version_flag = true,
    args_override_self = true,
    max_term_width = 100
)]
pub struct SweepCli {
    /// Group sizes to run, comma-separated (run in increasing order), e.g. 1,10,50,100
    #[arg(long, value_name = "N,N,...")]
    pub groups: Option<String>,

    /// Folder for the sweep's files (new or empty)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Stop at the first size whose pass rate is below RATE (0..1)
    #[arg(long, value_name = "RATE", default_value = "0.95")]
    pub stop_below: String,

    /// The knee: the largest size whose pass rate is at least RATE (0..1)
    #[arg(long, value_name = "RATE", default_value = "0.99")]
    pub target: String,
}

/// The sweep's options, as they take a value.
const OWN: [&str; 4] = ["--groups", "--out", "--stop-below", "--target"];

/// Run options the sweep sets itself, by clap id, and why the user may not.
const SET_BY_SWEEP: [(&str, &str); 5] = [
    ("group", "--group: not with sweep: --groups gives the sizes"),
    (
        "json",
        "--json: not with sweep: each size's report goes to --out DIR",
    ),
    (
        "junit",
        "--junit: not with sweep: each size's report goes to --out DIR",
    ),
    (
        "html",
        "--html: not with sweep: it writes DIR/sweep.html (the curve, then the last size's \
         runs); `sipplauncher report DIR/group-N.json --html FILE` makes any size's",
    ),
    (
        "repeat",
        "--loop: not with sweep: every size must come to an end",
    ),
];

/// A checked sweep: what to run and where.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    /// Increasing, distinct, each at least 1.
    pub sizes: Vec<usize>,
    pub out: PathBuf,
    /// `--out` did not exist: the sweep makes it (and removes it when nothing could run).
    pub out_is_new: bool,
    pub stop_below: f64,
    pub target: f64,
    /// Given to every size's run as they were typed.
    pub run_args: Vec<OsString>,
    /// `--total` when the user gave one.
    pub user_total: Option<u64>,
    /// `--seed` to add to every run: `--random` without a seed gets one seed for all sizes.
    pub add_seed: Option<u64>,
    /// Tests collected (after the filters): `--total`'s floor.
    pub tests: usize,
    pub dut: String,
    pub testsuite: String,
    pub window: bool,
    pub dry_run: bool,
}

impl SweepPlan {
    /// `--total` of the run at `group`.
    pub fn total(&self, group: usize) -> u64 {
        total_for(group, self.user_total, self.tests)
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// `--help` (or a clap answer such as `--version`): print this, exit 0.
    Print(String),
    Plan(Box<SweepPlan>),
}

/// Splits the arguments after `sweep` into the sweep's own (with their values) and the run's.
/// A sweep option's value is the next argument, or follows `=`.
pub fn split(args: &[OsString]) -> Result<(Vec<OsString>, Vec<OsString>), String> {
    let mut own = Vec::new();
    let mut run = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let text = a.to_str().unwrap_or_default();
        let name = text.split_once('=').map_or(text, |(n, _)| n);
        if text == "-h" || text == "--help" {
            own.push(a.clone());
        } else if OWN.contains(&name) {
            own.push(a.clone());
            if !text.contains('=') {
                match it.next() {
                    Some(v) => own.push(v.clone()),
                    None => return Err(format!("{name}: missing value")),
                }
            }
        } else {
            run.push(a.clone());
        }
    }
    Ok((own, run))
}

/// `--groups`: sizes, increasing and distinct.
pub fn parse_groups(text: &str) -> Result<Vec<usize>, String> {
    let mut sizes = Vec::new();
    for part in text.split(',') {
        let p = part.trim();
        match p.parse::<usize>() {
            Ok(n) if n >= 1 => sizes.push(n),
            _ => {
                return Err(format!(
                    "--groups: \"{p}\" is not a group size (a whole number, at least 1)"
                ))
            }
        }
    }
    sizes.sort_unstable();
    sizes.dedup();
    Ok(sizes)
}

/// A rate between 0 and 1.
pub fn parse_rate(option: &str, text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "{option}: \"{text}\" is not a rate between 0 and 1 (e.g. 0.95)"
        )),
    }
}

/// `--out`: a new folder in an existing one, or an empty folder. Returns whether it is new.
pub fn check_out(out: &Path) -> Result<bool, String> {
    match std::fs::symlink_metadata(out) {
        Ok(m) if m.is_dir() => {
            let mut entries = std::fs::read_dir(out)
                .map_err(|e| format!("--out: {} cannot be read: {e}", out.display()))?;
            if entries.next().is_some() {
                return Err(format!(
                    "--out: {} is not empty (a sweep writes into a new or empty folder)",
                    out.display()
                ));
            }
            Ok(false)
        }
        Ok(_) => Err(format!("--out: {} is not a folder", out.display())),
        Err(_) => {
            let parent = match out.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if !parent.is_dir() {
                return Err(format!(
                    "--out: folder {} of {} does not exist",
                    parent.display(),
                    out.display()
                ));
            }
            Ok(true)
        }
    }
}

/// The first line of a clap error, without clap's `error: ` (one line, as every bad input).
fn clap_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// Parses and checks everything (reads the file system, makes nothing).
pub fn parse(args: &[OsString]) -> Result<Parsed, String> {
    let (own, run_args) = split(args)?;
    let sweep = match SweepCli::try_parse_from(
        std::iter::once(OsString::from("sipplauncher sweep")).chain(own),
    ) {
        Ok(s) => s,
        Err(e) if !e.use_stderr() => return Ok(Parsed::Print(e.render().to_string())),
        Err(e) => return Err(clap_line(&e)),
    };
    let groups = sweep
        .groups
        .as_deref()
        .ok_or("--groups: missing; give the group sizes, e.g. --groups 1,10,50,100")?;
    let sizes = parse_groups(groups)?;
    let out = sweep
        .out
        .ok_or("--out: missing; give a folder for the sweep's files, e.g. --out sweep-1")?;
    let stop_below = parse_rate("--stop-below", &sweep.stop_below)?;
    let target = parse_rate("--target", &sweep.target)?;

    let matches = match Cli::command().try_get_matches_from(
        std::iter::once(OsStr::new("sipplauncher")).chain(run_args.iter().map(OsString::as_os_str)),
    ) {
        Ok(m) => m,
        Err(e) if !e.use_stderr() => return Ok(Parsed::Print(e.render().to_string())),
        Err(e) => return Err(clap_line(&e)),
    };
    for (id, why) in SET_BY_SWEEP {
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            return Err(why.to_string());
        }
    }
    let cli = Cli::from_arg_matches(&matches).map_err(|e| clap_line(&e))?;

    // Every size's run, checked as that run will check it (only --group and --total differ).
    let mut last = None;
    let user_total = cli.total.clone();
    for &size in &sizes {
        let mut c = cli.clone();
        c.group = size.to_string();
        if user_total.is_none() {
            // The floor (the number of tests) is not known yet: 4 x the size is checked here,
            // the run's --total below.
            c.total = Some((4 * size as u64).to_string());
        }
        last = Some(config::validate(c).map_err(|e| e.to_string())?);
    }
    // The largest size's: only --group and --total differ between sizes.
    let config =
        last.ok_or("--groups: missing; give the group sizes, e.g. --groups 1,10,50,100")?;
    let suite =
        suite::collect(&config.collect_options()).map_err(|e| format!("{}: {e}", e.option()))?;
    if suite.tests.is_empty() {
        return Err(format!("No tests found in {}", config.testsuite.display()));
    }
    let user_total = config.run.total.filter(|_| user_total.is_some());
    if !config.run.dry_run {
        check_machine(&config, &suite)?;
    }
    let out_is_new = check_out(&out)?;
    Ok(Parsed::Plan(Box::new(SweepPlan {
        sizes,
        out,
        out_is_new,
        stop_below,
        target,
        run_args,
        user_total,
        add_seed: config.seed.filter(|_| cli.seed.is_none()),
        tests: suite.tests.len(),
        dut: config.run.dut.to_string(),
        testsuite: config.testsuite.display().to_string(),
        window: config.run.window,
        dry_run: config.run.dry_run,
    })))
}

/// What a real run checks at its start, for the largest size (`config` is its run's): SIPp is
/// there (with TLS if needed), and the open-files limit carries `--group largest`. So that a
/// sweep does not find out at its last size.
fn check_machine(config: &config::Config, suite: &suite::Suite) -> Result<(), String> {
    let found = preflight::find_sipp()?;
    let transport = config.sipp.transport;
    if transport.is_tls() && !found.has_tls() {
        return Err(format!(
            "{}, or use --dry-run",
            preflight::no_tls_message(&found, transport.as_str())
        ));
    }
    preflight::max_socket(config.sipp.concurrent_calls_limit)
        .map_err(|e| format!("--sipp-concurrent-calls-limit: {e}"))?;
    preflight::check_open_files(&config.run, &suite.tests)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn split_picks_the_sweeps_own_options() {
        let (own, run) = split(&os(&[
            "--dut",
            "10.0.0.1",
            "--groups",
            "1,2",
            "--out=o",
            "--group-pause",
            "0",
            "--stop-below",
            "0.5",
            "--target=0.9",
            "-h",
        ]))
        .expect("splits");
        assert_eq!(
            own,
            os(&[
                "--groups",
                "1,2",
                "--out=o",
                "--stop-below",
                "0.5",
                "--target=0.9",
                "-h"
            ])
        );
        assert_eq!(run, os(&["--dut", "10.0.0.1", "--group-pause", "0"]));
        assert_eq!(split(&os(&["--out"])), Err("--out: missing value".into()));
        // --group is a run option (refused later), not --groups.
        let (own, run) = split(&os(&["--group", "3", "--groupsx"])).expect("splits");
        assert!(own.is_empty());
        assert_eq!(run, os(&["--group", "3", "--groupsx"]));
    }

    #[test]
    fn group_sizes() {
        assert_eq!(parse_groups("1,10,50,100"), Ok(vec![1, 10, 50, 100]));
        assert_eq!(
            parse_groups("10, 1,10"),
            Ok(vec![1, 10]),
            "sorted, once each"
        );
        for bad in ["0", "1,,2", "a", "-1", "1.5", ""] {
            let e = parse_groups(bad).expect_err(bad);
            assert!(e.starts_with("--groups: \""), "{e}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("--target", "0.99"), Ok(0.99));
        assert_eq!(parse_rate("--target", "1"), Ok(1.0));
        assert_eq!(parse_rate("--target", "0"), Ok(0.0));
        for bad in ["1.5", "-0.1", "x", "95%", "NaN"] {
            let e = parse_rate("--stop-below", bad).expect_err(bad);
            assert!(e.starts_with("--stop-below: "), "{e}");
        }
    }

    #[test]
    fn out_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(check_out(&dir.path().join("new")), Ok(true));
        assert_eq!(check_out(dir.path()), Ok(false), "empty");
        std::fs::write(dir.path().join("f"), "x").expect("write");
        let e = check_out(dir.path()).expect_err("not empty");
        assert!(
            e.ends_with("is not empty (a sweep writes into a new or empty folder)"),
            "{e}"
        );
        let e = check_out(&dir.path().join("f")).expect_err("a file");
        assert!(e.ends_with("is not a folder"), "{e}");
        let e = check_out(&dir.path().join("no/such")).expect_err("no parent");
        assert!(e.contains("does not exist"), "{e}");
    }
}
