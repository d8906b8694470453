//! The whole command: parse and validate the options, collect the suite, build the run plan,
//! run it on the actor runtime, turn the outcome into an exit status.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Parser;
use slog::{info, o, warn, Logger};

use sipplauncher_actors::core::dispatch::Outcome;
use sipplauncher_actors::core::plan::{Evidence, FrontEnd, RunPlan, TestPlan};
use sipplauncher_actors::events::{Event, EventSink};
use sipplauncher_actors::supervisor::RunResult;
use sipplauncher_actors::sys::logging::{self, RotatingFile};
use sipplauncher_actors::sys::signal::Interrupts;

use crate::cli::Cli;
use crate::config::{self, Config};
use crate::dns_zone::{self, ZoneFiles};
use crate::exit_code;
use crate::list_cmd;
use crate::merge;
use crate::preflight;
use crate::report::evidence::{Harvest, LadderPolicy};
use crate::report::html::Html;
use crate::report::{console::Console, json, json::Json, json::RunMeta, junit::JUnit};
use crate::report_cmd;
use crate::shard::Shard;
use crate::sipp_args::{SippLauncher, TlsSetup};
use crate::suite::{self, Suite};
use crate::template::Renderer;
use crate::tls::{self, Ca};

/// Runs the command with the process's arguments; returns the exit status. A first argument
/// naming a subcommand runs it; anything else is a run.
pub fn main() -> i32 {
    let mut args = std::env::args_os().skip(1);
    if let Some(first) = args.next() {
        if first == "report" {
            return report_cmd::main(args);
        }
        if first == "merge" {
            return merge::main(args.collect());
        }
        if first == "list" {
            return list_cmd::main(args);
        }
        if first == "sweep" {
            return crate::sweep::main(&args.collect::<Vec<_>>());
        }
    }
    // A run: before anything else, from now on a signal never has its default action. Until
    // the run takes the signals over, the first one ends the process with one line (nothing is
    // made before the run). (Subcommands above keep the default: they change nothing a signal
    // could leave half done.)
    let interrupts = match Interrupts::catch() {
        Ok(i) => i,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "sipplauncher: warning: signals not caught ({e}): Ctrl+C ends the process as is"
            );
            Interrupts::none()
        }
    };
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return clap_exit(&e),
    };
    // `--list`: the listing of this command line's suite, not a run (no --dut needed).
    if cli.list {
        return list_cmd::list(&list_cmd::ListCli::of_run(&cli));
    }
    let config = match config::validate(cli) {
        Ok(c) => c,
        Err(e) => return usage(&e.to_string()),
    };
    run(config, interrupts)
}

/// clap's help or version (printed as clap has them, exit 0), or a usage error it caught: one
/// line, with its tip when it has one (a similar option), exit 2.
pub fn clap_exit(e: &clap::Error) -> i32 {
    if !e.use_stderr() {
        let _ = e.print();
        return exit_code::SUCCESS;
    }
    usage(&clap_one_line(e))
}

/// clap's message of a usage error on one line: `unexpected argument '--grop' found (a similar
/// argument exists: '--group'); see --help`.
pub fn clap_one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines
        .next()
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .unwrap_or("bad command line");
    let tip = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("tip: "));
    match tip {
        Some(tip) => format!("{first} ({tip}); see --help"),
        None => format!("{first}; see --help"),
    }
}

fn usage(msg: &str) -> i32 {
    let _ = writeln!(std::io::stderr(), "sipplauncher: {msg}");
    exit_code::USAGE
}

/// A step stopped the command: its one line is printed; exit with this status.
struct Stop(i32);

/// A usage error (exit 2): one line, nothing was made.
fn usage_stop(msg: &str) -> Stop {
    Stop(usage(msg))
}

/// Runs a validated configuration: each step below in turn; the first that stops the command
/// gives the exit status.
pub fn run(config: Config, interrupts: Interrupts) -> i32 {
    let status = match run_steps(config, interrupts) {
        Ok(status) | Err(Stop(status)) => status,
    };
    // The logs are written off the threads that log: wait for the last lines.
    logging::flush();
    status
}

fn run_steps(config: Config, interrupts: Interrupts) -> Result<i32, Stop> {
    crate::report::hand_reports_to(config.run.hand_to);
    // Every check first: a usage error leaves nothing behind, not even the general log.
    let ca = check_ca(&config)?;
    let suite = collect(&config)?;
    let (suite, notes) = select(&config, suite)?;
    if suite.tests.is_empty() {
        let log = open_log(&config)?;
        note(&log, &suite, None, &notes);
        return Ok(nothing_to_run(
            &config,
            run_meta(&config, &suite, None),
            notes,
        ));
    }
    let sipp = preflight(&config, &suite)?;
    let info_file = info_file(&config, &suite)?;
    let log = open_log(&config)?;
    note(&log, &suite, Some(&sipp), &notes);
    let sipp_version = sipp.found.as_ref().map(|f| f.version.clone());
    let meta = run_meta(&config, &suite, sipp_version);
    let (plan, front) = build_plan(&config, suite, sipp, info_file, ca, &log)?;
    let sinks = sinks(&config, meta, notes);
    let result = sipplauncher_actors::run(plan, front, sinks, log, interrupts);
    exit_status(&config, &result)
}

/// The part of the collected tests this process runs (`--rerun-failed`, then `--shard`), and
/// what the console says of it; none of the tests to run again in the suite is a usage error.
fn select(config: &Config, mut suite: Suite) -> Result<(Suite, Vec<String>), Stop> {
    let mut notes = Vec::new();
    if let Some((report, rerun)) = &config.rerun {
        let report = report.display();
        let collected: Vec<&str> = suite.tests.iter().map(|t| t.name.0.as_str()).collect();
        let missing: Vec<&str> = rerun
            .tests
            .iter()
            .map(String::as_str)
            .filter(|n| !collected.contains(n))
            .collect();
        if !rerun.tests.is_empty() && missing.len() == rerun.tests.len() {
            return Err(usage_stop(&format!(
                "--rerun-failed: none of the {} tests that did not pass in {report} is in the \
                 suite (after --pattern-only/--pattern-exclude): {}",
                missing.len(),
                missing.join(", ")
            )));
        }
        suite.tests.retain(|t| rerun.tests.contains(&t.name.0));
        let mut line = match suite.tests.len() {
            0 => format!("Nothing to run again: every test of {report} passed"),
            n => format!(
                "Running again the {n} {} that did not pass in {report}",
                if n == 1 { "test" } else { "tests" }
            ),
        };
        if !missing.is_empty() {
            line.push_str(&format!(
                " ({} not in the suite: {})",
                missing.len(),
                missing.join(", ")
            ));
        }
        notes.push(line);
    }
    if let Some(shard) = config.shard {
        let collected = suite.tests.len();
        suite.tests = shard_of(suite.tests, shard);
        let line = format!(
            "Shard {shard} ({} split): {} of the {collected} tests collected",
            shard.mode.as_str(),
            suite.tests.len()
        );
        notes.push(line);
    }
    Ok((suite, notes))
}

/// The tests of `shard`, in suite order; a test with a `dns.txt` belongs to shard 1.
fn shard_of(tests: Vec<TestPlan>, shard: Shard) -> Vec<TestPlan> {
    let names: Vec<&str> = tests.iter().map(|t| t.name.0.as_str()).collect();
    let dns: Vec<bool> = tests
        .iter()
        .map(|t| t.folder.join(dns_zone::FILE_NAME).is_file())
        .collect();
    let keep = shard.select(&names, &dns);
    let mut keep = keep.into_iter().peekable();
    tests
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.next_if_eq(i).is_some())
        .map(|(_, t)| t)
        .collect()
}

/// A run with no test to run (an empty shard): the reports say so, nothing else is done.
fn nothing_to_run(config: &Config, meta: RunMeta, notes: Vec<String>) -> i32 {
    let now = SystemTime::now();
    let mut sinks = sinks(config, meta, notes);
    let outcome = Outcome::default();
    for event in [
        Event::RunStarted {
            tests: 0,
            runs: 0,
            repeat: false,
            group: config.run.group,
            window: config.run.window,
            seed: config.seed,
            dry_run: config.run.dry_run,
            retries: config.run.retries,
            at: now,
        },
        Event::RunFinished {
            outcome,
            elapsed: Duration::ZERO,
            at: now,
            usage: None,
        },
    ] {
        for sink in sinks.iter_mut() {
            sink.event(&event);
        }
    }
    let mut status = exit_code::for_outcome(&outcome, config.run.fail_expected);
    for sink in sinks.iter_mut() {
        if let Err(e) = sink.finish() {
            let _ = writeln!(std::io::stderr(), "sipplauncher: report not written: {e}");
            status = status.max(exit_code::FAILURE);
        }
    }
    status
}

/// The general log: a default path that cannot be opened (e.g. made by another user) is not
/// worth stopping a run for; an explicit one is.
fn open_log(config: &Config) -> Result<Logger, Stop> {
    // Never through a symlink, never blocking on a FIFO, never into a file of someone else's:
    // such a one is refused even as the default; one only not ours to open is skipped then.
    let general = match logging::open_general(&config.log_file) {
        Ok(f) => Some(f),
        Err(e) if config.log_file_explicit || !e.is_open_failure() => {
            let default = if config.log_file_explicit {
                ""
            } else {
                " (the default; give another with --log-file)"
            };
            return Err(usage_stop(&format!("--log-file: {e}{default}")));
        }
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "sipplauncher: warning: no general log: {e}"
            );
            None
        }
    };
    let general = general.and_then(|file| {
        match RotatingFile::new(file, config.log_file.clone(), config.log_rotation) {
            Ok(f) => Some(f),
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "sipplauncher: warning: no general log: {}: {e}",
                    config.log_file.display()
                );
                None
            }
        }
    });
    let log = logging::root(general).new(o!());
    info!(log, "sipplauncher {} starting", env!("CARGO_PKG_VERSION"); "args" => ?std::env::args_os().collect::<Vec<_>>());
    Ok(log)
}

/// The CA is checked (or made) before anything else is done: a bad one is a usage error.
fn check_ca(config: &Config) -> Result<Option<Arc<Ca>>, Stop> {
    if !config.sipp.transport.is_tls() {
        return Ok(None);
    }
    let ca = match &config.tls_ca {
        Some((cert, key)) => Ca::load(cert, key, config.tls_key_type),
        None => Ca::ephemeral(config.tls_key_type),
    };
    ca.map(|ca| Some(Arc::new(ca)))
        .map_err(|e| usage_stop(&e.to_string()))
}

/// What the checks found, into the general log once it is open.
fn note(log: &Logger, suite: &Suite, sipp: Option<&SippCheck>, notes: &[String]) {
    for t in suite.tests.iter().filter(|t| t.definition_error.is_some()) {
        warn!(log, "test {} is not runnable", t.name; "why" => t.definition_error.as_deref());
    }
    if let Some(f) = sipp.and_then(|s| s.found.as_ref()) {
        info!(log, "SIPp {} at {}", f.version, f.path.display());
    }
    for line in notes {
        info!(log, "{line}");
    }
}

/// The tests of the suite, after `--pattern-only` / `--pattern-exclude`; none is a usage error.
fn collect(config: &Config) -> Result<Suite, Stop> {
    let suite = suite::collect(&config.collect_options())
        .map_err(|e| usage_stop(&format!("{}: {e}", e.option())))?;
    if suite.tests.is_empty() {
        let filtered = !config.only.is_empty() || !config.exclude.is_empty();
        return Err(usage_stop(&suite::no_tests_message(
            &config.testsuite,
            filtered,
        )));
    }
    Ok(suite)
}

/// SIPp's injection file (`--sipp-info-file`, else the suite's `users.csv`), named absolutely:
/// SIPp runs in the run folder.
fn info_file(config: &Config, suite: &Suite) -> Result<Option<PathBuf>, Stop> {
    config
        .sipp
        .info_file
        .clone()
        .or_else(|| suite.info_file.clone())
        .as_ref()
        .map(std::path::absolute)
        .transpose()
        .map_err(|e| usage_stop(&format!("--sipp-info-file: {e}")))
}

/// What the preflight found out about SIPp.
struct SippCheck {
    /// The SIPp to run (in a dry run: the one on PATH, or plain `sipp`, for the plans shown).
    program: std::path::PathBuf,
    /// `-max_socket` for every instance.
    max_socket: u64,
    /// The SIPp found and asked for its version (a real run; a TLS dry run when one is found).
    found: Option<preflight::Sipp>,
}

/// SIPp is there (with TLS when the run needs it) and the open-files limit carries `--group`;
/// a dry run only warns about what a real run would stop on.
fn preflight(config: &Config, suite: &Suite) -> Result<SippCheck, Stop> {
    let sipp = &config.sipp;
    let transport = sipp.transport;
    if config.run.dry_run {
        // Only shown in the plans of a dry run; no SIPp needed.
        let path_var = std::env::var("PATH").unwrap_or_default();
        let program = preflight::which("sipp", &path_var);
        let max_socket =
            preflight::max_socket_for(1024, sipp.concurrent_calls_limit).unwrap_or(1024);
        // A TLS dry run tells what the real run would stop on (the certificates are made all
        // the same).
        let found = match &program {
            Some(_) if transport.is_tls() => preflight::find_sipp().ok(),
            _ => None,
        };
        if let Some(f) = found.as_ref().filter(|f| !f.has_tls()) {
            let _ = writeln!(
                std::io::stderr(),
                "sipplauncher: warning: {}; a real run would stop here",
                preflight::no_tls_message(f, transport.as_str())
            );
        }
        return Ok(SippCheck {
            program: program.unwrap_or_else(|| "sipp".into()),
            max_socket,
            found,
        });
    }
    let found = preflight::find_sipp().map_err(|e| usage_stop(&e))?;
    if transport.is_tls() && !found.has_tls() {
        return Err(usage_stop(&format!(
            "{}, or use --dry-run",
            preflight::no_tls_message(&found, transport.as_str())
        )));
    }
    let max_socket = preflight::max_socket(sipp.concurrent_calls_limit)
        .map_err(|e| usage_stop(&format!("--sipp-concurrent-calls-limit: {e}")))?;
    check_open_files(config, suite)?;
    Ok(SippCheck {
        program: found.path.clone(),
        max_socket,
        found: Some(found),
    })
}

/// Too many tests at once for the open-files limit would fail them one by one with "Too many
/// open files": say so once, before anything is done.
fn check_open_files(config: &Config, suite: &Suite) -> Result<(), Stop> {
    preflight::check_open_files(&config.run, &suite.tests).map_err(|e| usage_stop(&e))
}

/// How SIPp gets its certificates and writes its TLS keys: SIPp from 3.7.5 writes
/// SSLKEYLOGFILE itself; an older (or unknown) one gets the key log library, when it is
/// installed.
fn tls_setup(
    config: &Config,
    ca: Arc<Ca>,
    found: Option<&preflight::Sipp>,
    log: &Logger,
) -> TlsSetup {
    let writes_itself = found
        .and_then(|f| f.number())
        .is_some_and(|n| n >= tls::SIPP_WRITES_KEYLOG);
    let preload = if writes_itself {
        None
    } else {
        tls::keylog_library()
    };
    match (&preload, writes_itself) {
        (Some(lib), _) => info!(log, "TLS keys of SIPp through {}", lib.display()),
        (None, true) => info!(log, "SIPp writes its TLS keys itself"),
        (None, false) => {
            warn!(log, "{} is not installed: SIPp older than 3.7.5 will not log its TLS keys", tls::KEYLOG_LIBRARY; "looked in" => ?std::env::current_exe().map(|e| tls::keylog_library_candidates(&e)).unwrap_or_default());
            if !config.run.dry_run {
                let _ = writeln!(
                    std::io::stderr(),
                    "sipplauncher: warning: {} is not installed (beside sipplauncher, in <prefix>/lib/sipplauncher/, or named by ${}): {} will stay empty (SIPp {} writes no TLS keys itself)",
                    tls::KEYLOG_LIBRARY,
                    tls::KEYLOG_LIBRARY_ENV,
                    tls::KEYLOG_FILE,
                    found.map(|f| f.version.as_str()).unwrap_or("?")
                );
            }
        }
    }
    info!(
        log,
        "TLS certificates signed by {}",
        ca.user_file()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the run's ephemeral CA".into())
    );
    TlsSetup { ca, preload }
}

/// The run plan for the actor runtime, and the front end's part of preparing each run
/// (rendering, SIPp command lines, `dns.txt`).
fn build_plan(
    config: &Config,
    suite: Suite,
    sipp: SippCheck,
    info_file: Option<PathBuf>,
    ca: Option<Arc<Ca>>,
    log: &Logger,
) -> Result<(RunPlan, FrontEnd), Stop> {
    let mut opts = config.sipp.clone();
    opts.info_file.clone_from(&info_file);
    let tls = ca.map(|ca| tls_setup(config, ca, sipp.found.as_ref(), log));
    let launch = Arc::new(SippLauncher {
        program: sipp.program,
        dut: config.run.dut,
        opts,
        info_file,
        max_socket: sipp.max_socket,
        tls,
    });
    let render = Arc::new(Renderer::new(
        suite.template_folder.clone(),
        config.keywords.clone(),
    ));
    let plan = RunPlan {
        tests: Arc::new(suite.tests),
        global: suite.global,
        config: Arc::new(config.run.clone()),
    };
    // The reports that keep ladders get them read from each run's pcap in post-run.
    let evidence = (config.json.is_some() || config.html.is_some())
        .then(|| Arc::new(Harvest::new(ladder_policy(config), log.new(o!()))) as Arc<dyn Evidence>);
    let front = FrontEnd {
        render,
        launch,
        zone: Arc::new(ZoneFiles),
        evidence,
    };
    Ok((plan, front))
}

/// Which runs get a SIP ladder in the reports.
/// Which runs get a SIP ladder in the reports: as many failed runs as `--keep-max` keeps
/// folders of (whatever `--keep`: a ladder is in the report, not on the disk).
fn ladder_policy(config: &Config) -> LadderPolicy {
    LadderPolicy {
        failed_max: usize::try_from(config.run.keep_max).unwrap_or(usize::MAX),
    }
}

/// What the reports say of the run beyond its events.
fn run_meta(config: &Config, suite: &Suite, sipp_version: Option<String>) -> RunMeta {
    RunMeta {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        sipp_version,
        dut: config.run.dut.to_string(),
        testsuite: config.testsuite.display().to_string(),
        dry_run: config.run.dry_run,
        group: config.run.group,
        window: config.run.window,
        command_line: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        fail_expected: config.run.fail_expected,
        shard: config.shard,
        host: json::host_name(),
        planned: suite.tests.iter().map(|t| t.name.0.clone()).collect(),
    }
}

/// Where the run's events go: the terminal (with `notes` under its first line), and the
/// reports asked for.
fn sinks(config: &Config, meta: RunMeta, notes: Vec<String>) -> Vec<Box<dyn EventSink>> {
    let console = Console::stdout()
        .with_keep(config.run.keep, config.run.keep_max)
        .with_notes(notes);
    let mut sinks: Vec<Box<dyn EventSink>> = vec![Box::new(console)];
    if let Some(path) = &config.junit {
        sinks.push(Box::new(JUnit::new(path.clone())));
    }
    if let Some(path) = &config.json {
        sinks.push(Box::new(Json::new(path.clone(), meta.clone())));
    }
    if let Some(path) = &config.html {
        sinks.push(Box::new(Html::new(
            path.clone(),
            meta,
            ladder_policy(config),
        )));
    }
    sinks
}

/// The exit status of a run that happened (or could not start: a usage error then).
fn exit_status(config: &Config, result: &RunResult) -> Result<i32, Stop> {
    if let Some(e) = &result.start_error {
        return Err(usage_stop(e));
    }
    let mut status = exit_code::for_outcome(&result.outcome, config.run.fail_expected);
    for e in &result.report_errors {
        let _ = writeln!(std::io::stderr(), "sipplauncher: report not written: {e}");
        status = status.max(exit_code::FAILURE);
    }
    if let Some(f) = &result.fatal {
        let _ = writeln!(std::io::stderr(), "sipplauncher: run stopped: {f}");
        status = exit_code::INTERNAL;
    }
    Ok(status)
}
