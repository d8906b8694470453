//! `sipplauncher sweep --groups 1,10,50,100 --out DIR [run options]`: a DUT's capacity curve.
//! The suite runs at each group size in turn, each size one whole run with the same options;
//! the sweep reads each run's JSON report and writes `sweep.json` (every figure), `sweep.svg`
//! (the curve) and a table on the console, naming the knee.
//!
//! Each size's run is this same binary started again as a child process (`sipplauncher
//! --group N --total T --json DIR/group-N.json ...`), not a call into the run in this process:
//! - a size is then exactly the run a user would start by hand, with its own process, actix
//!   System, signal hooks, leftover clean-up and exit status, and nothing carried from one size
//!   to the next (the runtime keeps process-wide state: signal handlers stay installed once
//!   hooked, spare links, the ARP reserve); its report can be checked against the sweep's
//!   figures because the sweep only reads it;
//! - interrupts keep a run's meaning: the child runs in its own process group and gets each
//!   signal the sweep gets, once ([`signals`]): the first Ctrl+C cleans up and writes the
//!   size's report, a second stops it at once; the sweep writes the sizes done and ends;
//! - sipplauncher's own CPU per size is measured by the run itself (getrusage of its own
//!   process from its start to its end, in its report's `usage`), which the parent could not do
//!   apart from SIPp's: a reaped child's rusage includes the SIPp processes it reaped;
//! - its cost is one exec per size (a few milliseconds: BENCHMARKS.md "Sweep").
//!
//! Rooms: [`args`] (the command line), [`figures`] (the pure figures: percentiles, failure
//! reasons, knee, decisions), [`table`] (the console), [`svg`] (the plot), [`html`] (the curve
//! in the HTML report), [`signals`].

pub mod args;
pub mod figures;
pub mod html;
pub mod signals;
pub mod svg;
pub mod table;

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::exit_code;
use crate::report::json::JsonReport;
use crate::report::{rfc3339, write_atomic};
use args::{Parsed, SweepPlan};
use figures::{knee, next_after, Knee, Next, SizeFigures, GROWTH};

/// `sweep.json`'s shape; raised when a field changes meaning or goes (new fields do not).
pub const FORMAT: u32 = 1;

/// Runs `sipplauncher sweep` with the arguments after `sweep`; returns the exit status.
pub fn main(args: &[OsString]) -> i32 {
    let plan = match args::parse(args) {
        Ok(Parsed::Print(text)) => {
            let _ = write!(std::io::stdout(), "{text}");
            return exit_code::SUCCESS;
        }
        Ok(Parsed::Plan(p)) => p,
        Err(e) => return usage(&e),
    };
    run(&plan)
}

/// Text for the sweep's SVG and HTML (XML and HTML alike: `&`, `<`, `>` and `"`).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn usage(msg: &str) -> i32 {
    let _ = writeln!(std::io::stderr(), "sipplauncher sweep: {msg}");
    exit_code::USAGE
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// How the sweep ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Ending {
    /// Still going (`sweep.json` is rewritten after every size).
    Running,
    /// Every size ran, none below `--stop-below`.
    Complete,
    /// A size's pass rate fell below `--stop-below`: no larger size ran.
    StoppedBelow { group: usize, pass_rate: f64 },
    /// A signal: the sizes done so far are written.
    Interrupted,
    /// A size's run could not start or stopped on the tool's own fault.
    Failed { group: usize, error: String },
}

/// `sweep.json`.
#[derive(Serialize)]
struct Document<'a> {
    tool: &'static str,
    version: &'static str,
    format: u32,
    command_line: Vec<String>,
    dut: &'a str,
    testsuite: &'a str,
    /// The sizes asked for, in the order they run.
    groups: &'a [usize],
    /// `--total` given by the user (else per size: 4 x the size, at least the number of tests).
    total: Option<u64>,
    tests: usize,
    window: bool,
    dry_run: bool,
    stop_below: f64,
    target: f64,
    /// Tests/s "stop growing" below this gain from one size to the next.
    growth: f64,
    started: String,
    finished: String,
    elapsed_s: f64,
    #[serde(flatten)]
    ending: &'a Ending,
    sizes: &'a [SizeFigures],
    knee: Knee,
}

/// What the sweep has so far, written after every size.
struct Sweep<'a> {
    plan: &'a SweepPlan,
    sizes: Vec<SizeFigures>,
    started: SystemTime,
    clock: Instant,
    /// The files written in `--out`, to remove them when nothing could run.
    written: Vec<PathBuf>,
}

impl Sweep<'_> {
    fn knee(&self) -> Knee {
        knee(&self.sizes, self.plan.target)
    }

    /// Writes `sweep.json` and `sweep.svg` as of now.
    fn write(&mut self, ending: &Ending) -> Result<(), String> {
        let plan = self.plan;
        let doc = Document {
            tool: "sipplauncher",
            version: env!("CARGO_PKG_VERSION"),
            format: FORMAT,
            command_line: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            dut: &plan.dut,
            testsuite: &plan.testsuite,
            groups: &plan.sizes,
            total: plan.user_total,
            tests: plan.tests,
            window: plan.window,
            dry_run: plan.dry_run,
            stop_below: plan.stop_below,
            target: plan.target,
            growth: GROWTH,
            started: rfc3339(self.started),
            finished: rfc3339(SystemTime::now()),
            elapsed_s: (self.clock.elapsed().as_millis() as f64) / 1_000.0,
            ending,
            sizes: &self.sizes,
            knee: self.knee(),
        };
        let json = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())? + "\n";
        let svg = svg::plot(
            &self.sizes,
            &self.knee(),
            &svg::Labels {
                dut: &plan.dut,
                testsuite: &plan.testsuite,
                target: plan.target,
                stop_below: plan.stop_below,
            },
        );
        for (name, data) in [
            ("sweep.json", json.as_bytes()),
            ("sweep.svg", svg.as_bytes()),
        ] {
            let path = plan.out.join(name);
            write_atomic(&path, data).map_err(|e| format!("write {}: {e}", path.display()))?;
            if !self.written.contains(&path) {
                self.written.push(path);
            }
        }
        Ok(())
    }
}

impl Sweep<'_> {
    /// `sweep.html`: the last size's HTML report with the curve on top (nothing when no size
    /// left a report). Once, at the end: its ladders come from the pcaps the runs kept.
    fn write_html(&mut self) -> Result<(), String> {
        let Some(last) = self.sizes.last() else {
            return Ok(());
        };
        let plan = self.plan;
        let report = JsonReport::read(&plan.out.join(&last.report))?;
        let knee = self.knee();
        let svg = svg::plot(
            &self.sizes,
            &knee,
            &svg::Labels {
                dut: &plan.dut,
                testsuite: &plan.testsuite,
                target: plan.target,
                stop_below: plan.stop_below,
            },
        );
        let section = html::section(&self.sizes, &knee, plan.target, &svg);
        let path = plan.out.join("sweep.html");
        crate::report::html::write_html_with(&report, &path, &[section])?;
        self.written.push(path);
        Ok(())
    }
}

/// What one size's run came to.
enum SizeEnd {
    /// Its report was read.
    Figures(Box<SizeFigures>),
    /// No usable report: why, in one line, and the status to end the sweep with.
    NoReport { why: String, status: i32 },
}

fn run(plan: &SweepPlan) -> i32 {
    if let Err(e) = signals::install() {
        return usage(&format!("cannot catch signals: {e}"));
    }
    if plan.out_is_new {
        if let Err(e) = fs::create_dir(&plan.out) {
            return usage(&format!("--out: cannot make {}: {e}", plan.out.display()));
        }
    }
    let mut sweep = Sweep {
        plan,
        sizes: Vec::new(),
        started: SystemTime::now(),
        clock: Instant::now(),
        written: Vec::new(),
    };
    say(&format!(
        "Sweep of {} tests at --group {} against {}; files in {}",
        plan.tests,
        plan.sizes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        plan.dut,
        plan.out.display()
    ));
    let mut ending = Ending::Complete;
    let mut status = exit_code::SUCCESS;
    for &group in &plan.sizes {
        if signals::received() > 0 {
            ending = Ending::Interrupted;
            break;
        }
        let total = plan.total(group);
        say(&format!(
            "--group {group}: {total} test runs (console: {})",
            plan.out.join(console_name(group)).display()
        ));
        match run_size(&mut sweep, group, total) {
            SizeEnd::Figures(f) => {
                say(&table::size_line(&f));
                let fatal = f.exit_status == Some(exit_code::INTERNAL);
                let next = next_after(&f, plan.stop_below);
                sweep.sizes.push(*f);
                if fatal {
                    ending = Ending::Failed {
                        group,
                        error: format!(
                            "the run stopped on the tool's own fault (exit status 3): see {}",
                            console_name(group)
                        ),
                    };
                    status = exit_code::INTERNAL;
                    break;
                }
                match next {
                    Next::GoOn if signals::received() > 0 => {
                        ending = Ending::Interrupted;
                        break;
                    }
                    Next::GoOn => {}
                    Next::StopBelow { pass_rate } => {
                        ending = Ending::StoppedBelow { group, pass_rate };
                        break;
                    }
                    Next::Interrupted => {
                        ending = Ending::Interrupted;
                        break;
                    }
                }
            }
            SizeEnd::NoReport { why, status: s } => {
                let _ = writeln!(
                    std::io::stderr(),
                    "sipplauncher sweep: --group {group}: {why}"
                );
                if signals::received() > 0 {
                    ending = Ending::Interrupted;
                } else {
                    ending = Ending::Failed { group, error: why };
                    status = s;
                }
                break;
            }
        }
        if let Err(e) = sweep.write(&Ending::Running) {
            let _ = writeln!(std::io::stderr(), "sipplauncher sweep: {e}");
            return exit_code::INTERNAL;
        }
    }
    // A sweep whose first run could not even start made nothing worth keeping.
    if sweep.sizes.is_empty() && status == exit_code::USAGE {
        remove_made(&sweep);
        return status;
    }
    if let Err(e) = sweep.write(&ending) {
        let _ = writeln!(std::io::stderr(), "sipplauncher sweep: {e}");
        return exit_code::INTERNAL;
    }
    if let Err(e) = sweep.write_html() {
        let _ = writeln!(std::io::stderr(), "sipplauncher sweep: {e}");
        status = status.max(exit_code::FAILURE);
    }
    summary(&sweep, &ending);
    match ending {
        Ending::Complete => exit_code::SUCCESS,
        Ending::StoppedBelow { .. } | Ending::Interrupted => exit_code::FAILURE,
        Ending::Failed { .. } => status.max(exit_code::FAILURE),
        Ending::Running => exit_code::INTERNAL,
    }
}

fn report_name(group: usize) -> String {
    format!("group-{group}.json")
}

fn console_name(group: usize) -> String {
    format!("group-{group}.log")
}

/// Runs the suite at `group` as a child process and reads its report.
fn run_size(sweep: &mut Sweep, group: usize, total: u64) -> SizeEnd {
    let plan = sweep.plan;
    let report = plan.out.join(report_name(group));
    let console_path = plan.out.join(console_name(group));
    let console = match fs::File::create(&console_path) {
        Ok(f) => f,
        Err(e) => {
            return SizeEnd::NoReport {
                why: format!("cannot make {}: {e}", console_path.display()),
                status: exit_code::INTERNAL,
            }
        }
    };
    sweep.written.push(console_path.clone());
    sweep.written.push(report.clone());
    let mut cmd = match child_command(plan, group, total, &report, &console) {
        Ok(c) => c,
        Err(e) => {
            return SizeEnd::NoReport {
                why: e,
                status: exit_code::INTERNAL,
            }
        }
    };
    let mut child = match signals::spawn(&mut cmd) {
        Ok(c) => c,
        Err(e) => {
            return SizeEnd::NoReport {
                why: format!("cannot start the run: {e}"),
                status: exit_code::INTERNAL,
            }
        }
    };
    let exit = match signals::wait(&mut child) {
        Ok(s) => s,
        Err(e) => {
            return SizeEnd::NoReport {
                why: format!("lost the run: {e}"),
                status: exit_code::INTERNAL,
            }
        }
    };
    let code = exit.code();
    if code == Some(exit_code::USAGE) {
        // The run refused to start (e.g. no privilege for netlink): its own line says why.
        return SizeEnd::NoReport {
            why: last_line(&console_path)
                .unwrap_or_else(|| "the run refused to start (exit status 2)".into()),
            status: exit_code::USAGE,
        };
    }
    let parsed = JsonReport::read(&report);
    match parsed {
        Ok(r) => SizeEnd::Figures(Box::new(SizeFigures::of(
            group,
            total,
            &report_name(group),
            &console_name(group),
            code,
            &r,
        ))),
        Err(e) => {
            let how = match (code, exit.signal()) {
                (Some(c), _) => format!("exit status {c}"),
                (None, Some(s)) => format!("killed by signal {s}"),
                _ => "ended".into(),
            };
            SizeEnd::NoReport {
                why: format!(
                    "the run left no report ({how}; {e}); see {}",
                    console_path.display()
                ),
                status: exit_code::INTERNAL,
            }
        }
    }
}

/// `sipplauncher <run options> --group N [--total T] [--seed S] --json REPORT`, its output into
/// `console`, in a process group of its own, stopped (SIGTERM: a clean interrupt) if the sweep
/// dies.
fn child_command(
    plan: &SweepPlan,
    group: usize,
    total: u64,
    report: &Path,
    console: &fs::File,
) -> Result<Command, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find sipplauncher's own binary: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(&plan.run_args)
        .arg("--group")
        .arg(group.to_string());
    if plan.user_total.is_none() {
        cmd.arg("--total").arg(total.to_string());
    }
    if let Some(seed) = plan.add_seed {
        cmd.arg("--seed").arg(seed.to_string());
    }
    cmd.arg("--json").arg(report);
    let out = console.try_clone().map_err(|e| e.to_string())?;
    let err = console.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let parent = nix::unistd::getpid();
    // SAFETY: only async-signal-safe calls between fork and exec: prctl(2) and getppid(2).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)?;
            // The sweep died before the line above: nobody would stop this run.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("the sweep is gone"));
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// The last non-empty line of a file (a run's one-line error is its last line).
fn last_line(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.strip_prefix("sipplauncher: ").unwrap_or(l).to_string())
}

/// Removes what the sweep wrote, and `--out` if it made it.
fn remove_made(sweep: &Sweep) {
    for f in &sweep.written {
        let _ = fs::remove_file(f);
    }
    if sweep.plan.out_is_new {
        let _ = fs::remove_dir(&sweep.plan.out);
    }
}

/// The closing lines: the table, the failures, the knee, how the sweep ended, the files.
fn summary(sweep: &Sweep, ending: &Ending) {
    let plan = sweep.plan;
    say("");
    if sweep.sizes.is_empty() {
        say("No size ran to its report.");
    } else {
        for l in table::table(&sweep.sizes) {
            say(&l);
        }
        for l in table::failure_lines(&sweep.sizes, 3) {
            say(&l);
        }
        for l in table::knee_lines(&sweep.knee(), plan.target, &sweep.sizes) {
            say(&l);
        }
    }
    match ending {
        Ending::StoppedBelow { group, pass_rate } => say(&format!(
            "Stopped: --group {group} passed {}% of its runs, below --stop-below {}%: no larger size ran",
            table::pct(*pass_rate),
            table::pct(plan.stop_below)
        )),
        Ending::Interrupted => say("Interrupted: the sizes done so far are written"),
        Ending::Failed { group, error } => say(&format!("Stopped at --group {group}: {error}")),
        Ending::Complete | Ending::Running => {}
    }
    say(&format!(
        "Figures: {}; plot: {}; HTML: {}",
        plan.out.join("sweep.json").display(),
        plan.out.join("sweep.svg").display(),
        plan.out.join("sweep.html").display()
    ));
}
