//! SippActor: runs the SIPp instances of one test run (SPEC §11) from the front end's
//! [`LaunchPlan`]: stage after stage; in a stage, wave after wave (UAS and 3PCC slaves, then
//! UACs, then a 3PCC master), each wave starting once the previous waves listen on their
//! sockets (asked of the kernel, see [`sockets`]; no fixed sleep). Every SIPp runs in its own
//! process group in the run folder and is reaped. When one fails, the others of its stage are
//! stopped (SIGUSR1, then SIGTERM, then SIGKILL after short grace periods); the same on
//! `--test-timeout` and on an interrupt. [`stats`]: what SIPp counted (calls, setup time), read
//! from its statistics.

pub mod stats;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use actix::{Actor, ActorFutureExt, Context, Handler, ResponseActFuture, WrapFuture};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use slog::{debug, info, warn, Logger};
use tokio::sync::{mpsc, watch};

use crate::core::plan::{InstanceLaunch, LaunchPlan, Listen, Role};
use crate::events::format_duration;

pub mod sockets;
use crate::messages::{RunSipp, StopSipp};
use stats::SippStats;

/// Grace periods between SIGUSR1, SIGTERM and SIGKILL when stopping instances.
pub const STOP_GRACE: Duration = Duration::from_millis(200);
/// How long a server instance may take to open its sockets.
const LISTEN_DEADLINE: Duration = Duration::from_secs(10);
/// How often the kernel is asked for the sockets while waiting for them: first after
/// [`LISTEN_POLL`], then each wait half as long again, up to [`LISTEN_POLL_MAX`]. A SIPp takes
/// 20-250 ms to open its socket (more on a loaded machine): ~15 asks instead of ~100 at a fixed
/// 2 ms (each a netlink round trip and a wake-up of the actor thread), for at most 10 ms later.
const LISTEN_POLL: Duration = Duration::from_millis(2);
const LISTEN_POLL_MAX: Duration = Duration::from_millis(10);

/// How hard to stop: the first interrupt stops gently, the second kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopLevel {
    Running,
    Abort,
    Kill,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SippOutcome {
    pub success: bool,
    /// SIPp refused to start, before its first call (a scenario it cannot parse, an injection
    /// file it cannot read, `[fieldN]` without one): the test is NOT READY, not FAIL.
    pub not_started: bool,
    /// Why it failed, one line (SIPp's own reason when it gave one).
    pub reason: Option<String>,
    /// `CallRate(C)` of the first UAC's statistics, when there is one.
    pub cps: Option<f64>,
    /// From the first SIPp's start to the last one's exit, summed over stages.
    pub sipp_time: Duration,
    /// SIPp's own statistics of the instances that ran, when any could be read.
    pub stats: Option<SippStats>,
}

/// A test run's SIPp runner: made by the Supervisor for each TestActor and handed to it, idle
/// until [`RunSipp`]; [`StopSipp`] stops what runs, gently or hard.
pub struct SippActor {
    /// Between SIGUSR1, SIGTERM and SIGKILL when stopping ([`STOP_GRACE`]).
    grace: Duration,
    /// Tells the running plan to stop, and how hard (a fresh one for each run).
    stop: watch::Sender<StopLevel>,
}

impl Default for SippActor {
    fn default() -> Self {
        SippActor::with_grace(STOP_GRACE)
    }
}

impl SippActor {
    pub fn with_grace(grace: Duration) -> Self {
        SippActor {
            grace,
            stop: watch::channel(StopLevel::Running).0,
        }
    }
}

impl Actor for SippActor {
    type Context = Context<Self>;
}

impl Handler<RunSipp> for SippActor {
    type Result = ResponseActFuture<Self, SippOutcome>;

    fn handle(&mut self, msg: RunSipp, _: &mut Context<Self>) -> Self::Result {
        self.stop = watch::channel(StopLevel::Running).0;
        let fut = run_plan(
            msg.plan,
            msg.folder,
            msg.timeout,
            self.grace,
            msg.log,
            self.stop.subscribe(),
        );
        Box::pin(fut.into_actor(self).map(|outcome, _, _| outcome))
    }
}

impl Handler<StopSipp> for SippActor {
    type Result = ();

    fn handle(&mut self, msg: StopSipp, _: &mut Context<Self>) {
        let level = if msg.hard {
            StopLevel::Kill
        } else {
            StopLevel::Abort
        };
        self.stop.send_if_modified(|l| {
            let raise = level > *l;
            if raise {
                *l = level;
            }
            raise
        });
    }
}

/// One started instance.
struct Running {
    label: String,
    role: Role,
    pgid: Pid,
    /// `None` while it runs.
    status: Option<ExitStatus>,
    /// What it printed on standard error (the end of it), once it exited.
    stderr: Vec<u8>,
    launch: InstanceLaunch,
}

/// An instance's end: its index in the stage, its exit status, its standard error.
type Exit = (usize, std::io::Result<ExitStatus>, Vec<u8>);

/// The end of SIPp's standard error that is kept in memory: its last lines say why it stopped.
const STDERR_KEPT: usize = 256 * 1024;

/// Why a stage failed, one line; `not_started`: SIPp refused to start (see [`SippOutcome`]).
struct StageFailure {
    reason: String,
    not_started: bool,
}

impl StageFailure {
    fn failed(reason: String) -> StageFailure {
        StageFailure {
            reason,
            not_started: false,
        }
    }
}

/// Why a stage ended early.
enum Cut {
    Failed,
    Timeout,
    Stopped(StopLevel),
}

/// Runs every stage; the outcome is SUCCESS when every instance of every stage exited 0.
pub async fn run_plan(
    plan: LaunchPlan,
    folder: PathBuf,
    timeout: Duration,
    grace: Duration,
    log: Logger,
    mut stop: watch::Receiver<StopLevel>,
) -> SippOutcome {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut sipp_time = Duration::ZERO;
    let mut outcome = SippOutcome {
        success: true,
        not_started: false,
        reason: None,
        cps: None,
        sipp_time,
        stats: None,
    };
    for (n, stage) in plan.stages.iter().enumerate() {
        debug!(log, "stage {} (run group {:?})", n + 1, stage.run_group);
        let started = Instant::now();
        let result = run_stage(
            &stage.instances,
            &folder,
            deadline,
            timeout,
            grace,
            &log,
            &mut stop,
        )
        .await;
        sipp_time += started.elapsed();
        if let Err(StageFailure {
            reason,
            not_started,
        }) = result
        {
            outcome.success = false;
            outcome.not_started = not_started;
            outcome.reason = Some(if plan.stages.len() > 1 && !stage.run_group.is_empty() {
                format!("run group {}: {reason}", stage.run_group)
            } else {
                reason
            });
            break;
        }
    }
    outcome.sipp_time = sipp_time;
    if let Some(uac) = plan.first_uac() {
        outcome.cps = read_cps(&folder.join(&uac.stat_file)).await;
    }
    outcome.stats = read_stats(&plan, &folder).await;
    outcome
}

/// SIPp's statistics of every instance of the plan (those that did not run have no file). A
/// file is read once, also when its stage is repeated (`-m` over several run groups). The files
/// are read in one job on the blocking pool (a job per file woke a thread for each).
async fn read_stats(plan: &LaunchPlan, folder: &Path) -> Option<SippStats> {
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    for inst in plan.stages.iter().flat_map(|s| s.instances.iter()) {
        if !seen.insert(&inst.stat_file) {
            continue;
        }
        // The scenario tells whether its timer means anything (SIPp prints one regardless).
        let scenario = inst
            .argv
            .iter()
            .position(|a| a == "-sf")
            .and_then(|i| inst.argv.get(i + 1))
            .map(|f| folder.join(f));
        files.push((
            inst.role == Role::Uac,
            folder.join(&inst.stat_file),
            scenario,
        ));
    }
    let read = move || {
        let instances: Vec<_> = files
            .into_iter()
            .map(|(uac, stat_file, scenario)| {
                let text = std::fs::read_to_string(stat_file).ok();
                let found = text.as_deref().and_then(stats::parse).map(|found| {
                    let measures = scenario.is_some_and(|f| {
                        std::fs::read_to_string(f).is_ok_and(|xml| stats::measures_rtd(&xml))
                    });
                    found.timed(measures)
                });
                (uac, found)
            })
            .collect();
        stats::combine(&instances)
    };
    // A pool that cannot run the job (the runtime is shutting down): no statistics.
    tokio::task::spawn_blocking(read).await.ok().flatten()
}

async fn run_stage(
    instances: &[InstanceLaunch],
    folder: &Path,
    deadline: tokio::time::Instant,
    timeout: Duration,
    grace: Duration,
    log: &Logger,
    stop: &mut watch::Receiver<StopLevel>,
) -> Result<(), StageFailure> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Exit>();
    let mut running: Vec<Running> = Vec::new();
    let mut waves: Vec<u8> = instances.iter().map(|i| i.wave).collect();
    waves.sort();
    waves.dedup();

    let mut cut: Option<Cut> = None;
    let mut probe = Probe::Untried;
    'waves: for wave in waves {
        for inst in instances.iter().filter(|i| i.wave == wave) {
            match spawn(inst, folder, running.len(), tx.clone()).await {
                Ok(pgid) => {
                    debug!(log, "started {}", inst.label; "pid" => pgid.as_raw(), "argv" => inst.argv.join(" "));
                    running.push(Running {
                        label: inst.label.clone(),
                        role: inst.role,
                        pgid,
                        status: None,
                        stderr: Vec::new(),
                        launch: inst.clone(),
                    });
                }
                Err(e) => {
                    stop_all(&mut running, &mut rx, StopLevel::Abort, grace, stop, log).await;
                    return Err(StageFailure {
                        reason: format!("{}: SIPp could not be started: {e}", inst.label),
                        not_started: true,
                    });
                }
            }
        }
        // The next wave starts once this one's sockets are open.
        let wanted: Vec<Listen> = running
            .iter()
            .filter(|r| r.launch.wave == wave)
            .flat_map(|r| r.launch.listen.iter().copied())
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let listen_deadline = tokio::time::Instant::now() + LISTEN_DEADLINE;
        let mut poll = LISTEN_POLL;
        loop {
            if listening(&wanted, &mut probe).await {
                break;
            }
            tokio::select! {
                Some((i, st, err)) = rx.recv() => {
                    record(&mut running[i], st, err);
                    if !running[i].status.is_some_and(|s| s.success()) || running[i].role == Role::Uas {
                        // A server that ends before the clients start cannot serve them.
                        cut = Some(Cut::Failed);
                        break 'waves;
                    }
                }
                _ = tokio::time::sleep(poll) => poll = (poll * 3 / 2).min(LISTEN_POLL_MAX),
                _ = tokio::time::sleep_until(listen_deadline) => {
                    stop_all(&mut running, &mut rx, StopLevel::Abort, grace, stop, log).await;
                    return Err(StageFailure::failed(format!("SIPp did not open {} within {}s", describe(&wanted), LISTEN_DEADLINE.as_secs())));
                }
                _ = tokio::time::sleep_until(deadline) => { cut = Some(Cut::Timeout); break 'waves; }
                Ok(()) = stop.changed() => { cut = Some(Cut::Stopped(*stop.borrow())); break 'waves; }
            }
        }
    }

    // Wait for every instance to exit; stop the others at the first failure.
    while cut.is_none() && running.iter().any(|r| r.status.is_none()) {
        tokio::select! {
            Some((i, st, err)) = rx.recv() => {
                record(&mut running[i], st, err);
                if !running[i].status.is_some_and(|s| s.success()) {
                    cut = Some(Cut::Failed);
                }
            }
            _ = tokio::time::sleep_until(deadline) => cut = Some(Cut::Timeout),
            Ok(()) = stop.changed() => cut = Some(Cut::Stopped(*stop.borrow())),
        }
    }
    match cut {
        None => Ok(()),
        Some(c) => {
            let level = match c {
                Cut::Stopped(StopLevel::Kill) => StopLevel::Kill,
                _ => StopLevel::Abort,
            };
            // The first failure is the reason; the instances stopped after it are not.
            let first_failed = running
                .iter()
                .position(|r| r.status.is_some_and(|s| !s.success()));
            stop_all(&mut running, &mut rx, level, grace, stop, log).await;
            match c {
                Cut::Timeout => Err(StageFailure::failed(format!(
                    "timed out after {} (--test-timeout): SIPp stopped",
                    format_duration(timeout)
                ))),
                Cut::Stopped(_) => Err(StageFailure::failed("interrupted: SIPp stopped".into())),
                Cut::Failed => {
                    let r = first_failed.map(|i| &running[i]).or_else(|| {
                        running
                            .iter()
                            .find(|r| r.status.is_some_and(|s| !s.success()))
                    });
                    match r {
                        Some(r) => Err(failure_reason(r, folder).await),
                        None => Err(StageFailure::failed(
                            "a SIPp instance ended before the others started".into(),
                        )),
                    }
                }
            }
        }
    }
}

fn record(r: &mut Running, st: std::io::Result<ExitStatus>, stderr: Vec<u8>) {
    r.stderr = stderr;
    r.status = Some(st.unwrap_or_else(|_| {
        // The wait itself failed: count it as a failure (exit status 255 like SIPp's fatal).
        std::os::unix::process::ExitStatusExt::from_raw(255 << 8)
    }));
}

fn describe(wanted: &[Listen]) -> String {
    wanted
        .iter()
        .map(|l| format!("{} {}", if l.tcp { "tcp" } else { "udp" }, l.addr))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Starts one SIPp in its own process group; a task reaps it and reports its exit as
/// [`Exit`]. Its standard output (its screen, which `-screen_file` has too) goes nowhere, as in
/// the original; its standard error is read into memory and written to its output file only
/// when it failed or said more than the usual "Resolving remote host" (one file fewer per
/// instance: files made were most of the tool's CPU).
async fn spawn(
    inst: &InstanceLaunch,
    folder: &Path,
    idx: usize,
    tx: mpsc::UnboundedSender<Exit>,
) -> std::io::Result<Pid> {
    let (program, args) = inst
        .argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command line"))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(inst.env.iter().map(|(k, v)| (k, v)))
        .current_dir(folder)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child
        .id()
        .map(|p| Pid::from_raw(p as i32))
        .ok_or_else(|| std::io::Error::other("SIPp exited at once"))?;
    let stderr = child.stderr.take();
    let output = folder.join(&inst.output_file);
    actix_rt::spawn(async move {
        let mut kept = Vec::new();
        let st = match stderr {
            Some(pipe) => {
                let read = read_tail(pipe, &mut kept);
                tokio::pin!(read);
                tokio::select! {
                    st = child.wait() => {
                        // What SIPp wrote before it exited is in the pipe already; a child of
                        // SIPp that kept the pipe open is not waited for.
                        let _ = tokio::time::timeout(Duration::from_millis(100), read).await;
                        st
                    }
                    () = &mut read => child.wait().await,
                }
            }
            None => child.wait().await,
        };
        let failed = !st.as_ref().is_ok_and(|s| s.success());
        if failed || says_something(&kept) {
            let _ = tokio::fs::write(&output, &kept).await;
        }
        let _ = tx.send((idx, st, kept));
    });
    Ok(pid)
}

/// Reads `pipe` to its end, keeping its last [`STDERR_KEPT`] bytes in `kept`.
async fn read_tail(mut pipe: tokio::process::ChildStderr, kept: &mut Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_KEPT {
                    kept.drain(..kept.len() - STDERR_KEPT);
                }
            }
        }
    }
}

/// Whether SIPp's standard error holds more than the line it always prints.
fn says_something(stderr: &[u8]) -> bool {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with("Resolving remote host"))
}

/// Stops every instance still running: SIGUSR1, then SIGTERM, then SIGKILL, each after a
/// grace period (at once with SIGKILL for `Kill`, also when a Kill comes during a grace);
/// waits until all are reaped.
async fn stop_all(
    running: &mut [Running],
    rx: &mut mpsc::UnboundedReceiver<Exit>,
    level: StopLevel,
    grace: Duration,
    stop: &mut watch::Receiver<StopLevel>,
    log: &Logger,
) {
    const GENTLE: [Signal; 3] = [Signal::SIGUSR1, Signal::SIGTERM, Signal::SIGKILL];
    let mut killing = level == StopLevel::Kill || *stop.borrow() == StopLevel::Kill;
    let mut step = 0;
    loop {
        let sig = if killing {
            Signal::SIGKILL
        } else {
            GENTLE[step]
        };
        let alive: Vec<usize> = (0..running.len())
            .filter(|&i| running[i].status.is_none())
            .collect();
        if alive.is_empty() {
            break;
        }
        for &i in &alive {
            debug!(log, "{} to {}", sig, running[i].label);
            let _ = killpg(running[i].pgid, sig);
        }
        let until = tokio::time::Instant::now()
            + if sig == Signal::SIGKILL {
                Duration::from_secs(10)
            } else {
                grace
            };
        while running.iter().any(|r| r.status.is_none()) {
            tokio::select! {
                Some((i, st, err)) = rx.recv() => record(&mut running[i], st, err),
                _ = tokio::time::sleep_until(until) => break,
                // A second interrupt during the grace: no more waiting.
                Ok(()) = stop.changed(), if !killing => {
                    if *stop.borrow() == StopLevel::Kill {
                        killing = true;
                        break;
                    }
                }
            }
        }
        // After SIGKILL, whatever is left is reported below.
        if sig == Signal::SIGKILL {
            break;
        }
        if !killing {
            step += 1;
        }
    }
    for r in running.iter() {
        // Children of SIPp left in its group, if any.
        let _ = killpg(r.pgid, Signal::SIGKILL);
        if r.status.is_none() {
            warn!(log, "{} did not exit after SIGKILL", r.label);
        }
    }
}

/// How the sockets of this namespace are looked at: asked of the kernel (sock_diag), opened at
/// the first wait of a stage; `/proc/net` when the kernel refuses that (no inet_diag).
enum Probe {
    Untried,
    Kernel(sockets::SockDiag),
    ProcNet,
}

/// Whether every wanted socket is open (bound, and listening for TCP) in this namespace.
async fn listening(wanted: &[Listen], probe: &mut Probe) -> bool {
    if matches!(probe, Probe::Untried) {
        *probe = match sockets::SockDiag::open() {
            Ok(d) => Probe::Kernel(d),
            Err(_) => Probe::ProcNet,
        };
    }
    if let Probe::Kernel(d) = probe {
        let mut all = true;
        for l in wanted {
            match d.is_open(l.tcp, l.addr) {
                Ok(true) => {}
                Ok(false) => {
                    all = false;
                    break;
                }
                Err(_) => {
                    *probe = Probe::ProcNet;
                    break;
                }
            }
        }
        if !matches!(probe, Probe::ProcNet) {
            return all;
        }
    }
    let mut open = HashSet::new();
    for (tcp, path) in [(false, "/proc/net/udp"), (true, "/proc/net/tcp")] {
        if !wanted.iter().any(|l| l.tcp == tcp) {
            continue;
        }
        if let Ok(text) = tokio::fs::read_to_string(path).await {
            open.extend(parse_proc_net(&text, tcp).into_iter().map(|a| (tcp, a)));
        }
    }
    wanted.iter().all(|l| {
        open.contains(&(l.tcp, l.addr))
            || open.contains(&(
                l.tcp,
                std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, l.addr.port()),
            ))
    })
}

/// The local addresses of /proc/net/{udp,tcp}: for TCP only sockets in LISTEN state (0A).
pub fn parse_proc_net(text: &str, tcp: bool) -> Vec<std::net::SocketAddrV4> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let local = f.nth(1)?;
            let state = f.nth(1)?;
            if tcp && state != "0A" {
                return None;
            }
            let (ip, port) = local.split_once(':')?;
            let ip = u32::from_str_radix(ip, 16).ok()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            // The kernel prints the address in host byte order of a little-endian u32.
            Some(std::net::SocketAddrV4::new(
                std::net::Ipv4Addr::from(u32::from_be(ip.to_le())),
                port,
            ))
        })
        .collect()
}

/// One line saying why `r` failed, in SIPp's own words: the last event of its error file,
/// else of what it printed; and whether it refused to start. SIPp exits 1 both when a call
/// failed and when it stops on an error before its scenario is set up: in the second case it
/// created no call.
async fn failure_reason(r: &Running, folder: &Path) -> StageFailure {
    let status = r.status.map(describe_status).unwrap_or_default();
    let errors = match find_error_file(folder, &r.launch.error_file, r.pgid.as_raw()).await {
        Some(path) => read_lossy(&path).await,
        None => String::new(),
    };
    let output = String::from_utf8_lossy(&r.stderr).into_owned();
    let stat_file = folder.join(&r.launch.stat_file);
    let stat = |column: &'static str| read_stat(&stat_file, column);
    let code = r.status.and_then(|s| s.code());
    let mut not_started = false;
    let kind = match code {
        Some(1) => {
            if stat("FailedCall(C)").await.is_some_and(|v| v > 0.0) {
                "call failed"
            } else if stat("TotalCallCreated").await.unwrap_or(0.0) == 0.0 {
                not_started = true;
                "could not start"
            } else {
                "setup error"
            }
        }
        Some(254) | Some(255) => "fatal error",
        Some(97) => "stopped by a command",
        Some(99) => "no call processed",
        _ => "ended",
    };
    let detail = last_error(&errors)
        .or_else(|| last_error(&output))
        .or_else(|| last_output_line(&output));
    let reason = match detail {
        Some(d) => format!("{} ({}) {kind}, {status}: {d}", r.label, r.role.as_str()),
        None => format!("{} ({}) {kind}, {status}", r.label, r.role.as_str()),
    };
    StageFailure {
        reason,
        not_started,
    }
}

/// A file's text; bytes that are not UTF-8 (SIPp quotes a binary injection file) become U+FFFD
/// rather than losing the whole text.
async fn read_lossy(path: &Path) -> String {
    match tokio::fs::read(path).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    }
}

/// SIPp's error file for the instance with process id `pid`: `pattern` with the pid put in;
/// when that is not there (a `sipp` wrapper's pid is not SIPp's), the newest file the pattern
/// matches with any number in its place.
async fn find_error_file(folder: &Path, pattern: &str, pid: i32) -> Option<PathBuf> {
    let exact = folder.join(pattern.replace(InstanceLaunch::PID, &pid.to_string()));
    if tokio::fs::try_exists(&exact).await.unwrap_or(false) {
        return Some(exact);
    }
    let (prefix, suffix) = pattern.split_once(InstanceLaunch::PID)?;
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut dir = tokio::fs::read_dir(folder).await.ok()?;
    while let Ok(Some(entry)) = dir.next_entry().await {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !matches_pid_pattern(name, prefix, suffix) {
            continue;
        }
        let modified = match entry.metadata().await.and_then(|m| m.modified()) {
            Ok(t) => t,
            Err(_) => continue,
        };
        if newest.as_ref().is_none_or(|(t, _)| modified > *t) {
            newest = Some((modified, entry.path()));
        }
    }
    newest.map(|(_, p)| p)
}

/// `name` is `prefix`, a number, `suffix`.
fn matches_pid_pattern(name: &str, prefix: &str, suffix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The last line of SIPp's output that says something: not its screen's rules and tables.
fn last_output_line(output: &str) -> Option<String> {
    output
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| {
            !l.is_empty()
                && !l.contains("------")
                && !l.contains(" | ")
                && !l.starts_with("Resolving remote host")
        })
        .map(str::to_string)
}

fn describe_status(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended".into(),
    }
}

/// The last event of a SIPp error file: entries are `DATE\tTIME\tEPOCH: message`, not always
/// separated by newlines.
pub fn last_error(text: &str) -> Option<String> {
    error_messages(text)
        .into_iter()
        .rev()
        .map(|m| m.split_whitespace().collect::<Vec<_>>().join(" "))
        .find(|m| !m.is_empty())
}

/// Splits a SIPp error file into its messages, dropping the timestamps.
fn error_messages(text: &str) -> Vec<String> {
    // A timestamp: YYYY-MM-DD\tHH:MM:SS.ffffff\tEPOCH.ffffff:
    let bytes = text.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 10 < bytes.len() {
        let looks_like_date = bytes[i..i + 4].iter().all(u8::is_ascii_digit)
            && bytes[i + 4] == b'-'
            && bytes[i + 5..i + 7].iter().all(u8::is_ascii_digit)
            && bytes[i + 7] == b'-'
            && bytes[i + 8..i + 10].iter().all(u8::is_ascii_digit)
            && bytes.get(i + 10) == Some(&b'\t');
        if looks_like_date {
            // The message starts after the second tab's epoch and its ": ".
            if let Some(colon) = text[i..].find(": ") {
                starts.push((i, i + colon + 2));
                i += colon + 2;
                continue;
            }
        }
        i += 1;
    }
    let mut out = Vec::new();
    for (k, &(_, msg_start)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map(|s| s.0).unwrap_or(text.len());
        out.push(text[msg_start..end].trim().to_string());
    }
    out
}

/// `CallRate(C)` of the last row of a `-trace_stat` CSV.
pub async fn read_cps(path: &Path) -> Option<f64> {
    read_stat(path, "CallRate(C)").await
}

async fn read_stat(path: &Path, column: &str) -> Option<f64> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    stat_value(&text, column)
}

/// A column of the last row of SIPp's `;`-separated statistics.
pub fn stat_value(text: &str, column: &str) -> Option<f64> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next()?;
    let idx = header.split(';').position(|h| h.trim() == column)?;
    let last = lines.next_back()?;
    last.split(';').nth(idx)?.trim().parse().ok()
}

/// Logs a summary of the outcome into the test's log.
pub fn log_outcome(log: &Logger, o: &SippOutcome) {
    match &o.reason {
        None => {
            info!(log, "SIPp: every instance exited 0"; "sipp_time_ms" => o.sipp_time.as_millis() as u64, "cps" => o.cps)
        }
        Some(r) => warn!(log, "SIPp: {r}"; "sipp_time_ms" => o.sipp_time.as_millis() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_udp_and_tcp() {
        let udp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                   1234: 0500007F:13C4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0\n";
        assert_eq!(
            parse_proc_net(udp, false),
            vec!["127.0.0.5:5060".parse().unwrap()]
        );
        let tcp = "  sl  local_address rem_address   st\n\
                   0: 0B00630A:22A1 00000000:0000 0A 0\n\
                   1: 0B00630A:22A2 0100630A:1F90 01 0\n";
        assert_eq!(
            parse_proc_net(tcp, true),
            vec!["10.99.0.11:8865".parse().unwrap()]
        );
    }

    #[test]
    fn last_error_of_a_sipp_error_file() {
        let text = "The following events occurred:\n2026-11-26\t13:03:10.184404\t1795698190.184404: Unable to load or parse '/x.xml' xml scenario file2026-11-26\t13:03:10.284404\t1795698190.284404: Aborting call on unexpected message for Call-Id '1-2@x': while expecting '200' (index 2), received 'SIP/2.0 404 Not Found\n";
        assert_eq!(
            last_error(text).as_deref(),
            Some("Aborting call on unexpected message for Call-Id '1-2@x': while expecting '200' (index 2), received 'SIP/2.0 404 Not Found")
        );
        assert_eq!(last_error("The following events occurred:\n"), None);
        assert_eq!(last_error(""), None);
    }

    #[test]
    fn cps_from_the_last_row() {
        let csv = "StartTime;CallRate(P);CallRate(C);FailedCall(C)\nx;1;1.97;0\ny;0;1.9685;1\n";
        assert_eq!(stat_value(csv, "CallRate(C)"), Some(1.9685));
        assert_eq!(stat_value(csv, "FailedCall(C)"), Some(1.0));
        assert_eq!(stat_value(csv, "Nope"), None);
        assert_eq!(stat_value("CallRate(C)\n", "CallRate(C)"), None);
    }

    fn instance(stem: &str) -> InstanceLaunch {
        InstanceLaunch {
            label: stem.into(),
            role: Role::Uac,
            wave: 1,
            argv: vec!["sipp".into()],
            listen: Vec::new(),
            error_file: format!("{stem}_{}_errors.log", InstanceLaunch::PID),
            stat_file: format!("{stem}_trace.csv"),
            output_file: format!("{stem}_output.log"),
            env: Vec::new(),
        }
    }

    fn exited(code: i32, pid: i32, stem: &str) -> Running {
        exited_saying(code, pid, stem, b"")
    }

    fn exited_saying(code: i32, pid: i32, stem: &str, stderr: &[u8]) -> Running {
        Running {
            label: stem.into(),
            role: Role::Uac,
            pgid: Pid::from_raw(pid),
            status: Some(std::os::unix::process::ExitStatusExt::from_raw(code << 8)),
            stderr: stderr.to_vec(),
            launch: instance(stem),
        }
    }

    const STAT_HEAD: &str = "StartTime;TotalCallCreated;FailedCall(C)\n";
    const ERR_HEAD: &str = "The following events occurred:\n";

    /// SIPp's exit status 1 is a failed call or a setup it refused: the statistics tell.
    #[tokio::test]
    async fn exit_1_before_any_call_is_a_refusal_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // No statistics at all (it stopped while reading its options), the reason in the
        // error file SIPp named after its pid.
        std::fs::write(
            d.join("uac_ua0_4242_errors.log"),
            format!("{ERR_HEAD}2026-11-30\t06:07:34.241695\t1796018854.241695: No injection file was specified!\n"),
        )
        .unwrap();
        let f = failure_reason(&exited(1, 4242, "uac_ua0"), d).await;
        assert!(f.not_started);
        assert_eq!(
            f.reason,
            "uac_ua0 (uac) could not start, exit status 1: No injection file was specified!"
        );
        // Statistics with no call created: the same.
        std::fs::write(d.join("uac_ua0_trace.csv"), format!("{STAT_HEAD}x;0;0\n")).unwrap();
        assert!(
            failure_reason(&exited(1, 4242, "uac_ua0"), d)
                .await
                .not_started
        );
        // A failed call: FAIL.
        std::fs::write(d.join("uac_ua0_trace.csv"), format!("{STAT_HEAD}x;1;1\n")).unwrap();
        let f = failure_reason(&exited(1, 4242, "uac_ua0"), d).await;
        assert!(!f.not_started);
        assert!(
            f.reason
                .starts_with("uac_ua0 (uac) call failed, exit status 1: "),
            "{}",
            f.reason
        );
        // A fatal error after the scenario was set up (a TCP connect refused by the DUT): FAIL.
        std::fs::write(d.join("uac_ua0_trace.csv"), format!("{STAT_HEAD}x;0;0\n")).unwrap();
        let f = failure_reason(&exited(255, 4242, "uac_ua0"), d).await;
        assert!(!f.not_started);
        assert!(
            f.reason
                .starts_with("uac_ua0 (uac) fatal error, exit status 255"),
            "{}",
            f.reason
        );
    }

    /// The reason is SIPp's own words wherever it put them: its error file (found by glob when
    /// the pid is not the one SIPp used), else what it printed, binary bytes and all.
    #[tokio::test]
    async fn the_reason_is_found_wherever_sipp_wrote_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Printed only (SIPp had no error file yet), quoting a binary injection file.
        let mut out = b"2026-11-30\t06:07:39.159111\t1796018859.159111: Unknown file type (valid values are RANDOM, SEQUENTIAL, and USER) for bin.csv:\xffELF\n".to_vec();
        out.extend_from_slice(&out.clone());
        let f = failure_reason(&exited_saying(1, 7, "uas_ua0", &out), d).await;
        assert!(f.not_started);
        assert!(
            f.reason.ends_with(": Unknown file type (valid values are RANDOM, SEQUENTIAL, and USER) for bin.csv:\u{fffd}ELF"),
            "{}",
            f.reason
        );
        // Error files of two earlier SIPps of the same scenario and none of this pid: the newest.
        let older = d.join("uac_ua1_100_errors.log");
        std::fs::write(
            &older,
            format!("{ERR_HEAD}2026-11-30\t06:07:39.1\t1.1: old\n"),
        )
        .unwrap();
        let t = std::time::SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&older)
            .unwrap()
            .set_modified(t)
            .unwrap();
        std::fs::write(
            d.join("uac_ua1_200_errors.log"),
            format!("{ERR_HEAD}2026-11-30\t06:07:39.1\t1.1: new\n"),
        )
        .unwrap();
        std::fs::write(d.join("uac_ua1_x_errors.log"), "not SIPp's").unwrap();
        std::fs::write(d.join("uac_ua10_300_errors.log"), "another scenario's").unwrap();
        let f = failure_reason(&exited(1, 999, "uac_ua1"), d).await;
        assert!(f.reason.ends_with(": new"), "{}", f.reason);
        // Nothing but SIPp's screen: no rule or table line is taken for a reason.
        let screen = b"Resolving remote host '10.0.0.1'... Done.\nWarning: something odd\n------------------------------ Test Terminated --------------------------------\n  Counter | x\n";
        let f = failure_reason(&exited_saying(99, 1, "uac_ua2", screen), d).await;
        assert_eq!(
            f.reason,
            "uac_ua2 (uac) no call processed, exit status 99: Warning: something odd"
        );
    }

    #[test]
    fn what_sipp_says_on_stderr_is_kept_when_it_says_something() {
        assert!(!says_something(b""));
        assert!(!says_something(
            b"Resolving remote host '10.99.0.1'... Done.\n"
        ));
        assert!(says_something(
            b"Resolving remote host '10.99.0.1'... Done.\n2026-11-30\t07:46:10.8\t1.8: Call-Id: 1-28188@127.0.0.1, receive timeout\n"
        ));
    }

    /// A real process: its standard error reaches the outcome, and its file is written when it
    /// failed; a quiet success leaves no file.
    #[actix_rt::test]
    async fn stderr_is_read_and_written_only_when_worth_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut loud = instance("loud");
        loud.argv = ["sh", "-c", "echo out; echo 'it broke' >&2; exit 3"]
            .map(String::from)
            .to_vec();
        let mut quiet = instance("quiet");
        quiet.argv = [
            "sh",
            "-c",
            "echo out; echo 'Resolving remote host x... Done.' >&2",
        ]
        .map(String::from)
        .to_vec();
        let (tx, mut rx) = mpsc::unbounded_channel();
        spawn(&loud, dir.path(), 0, tx.clone()).await.unwrap();
        spawn(&quiet, dir.path(), 1, tx).await.unwrap();
        let mut ends = Vec::new();
        while let Some((i, st, err)) = rx.recv().await {
            ends.push((i, st.unwrap().code(), err));
        }
        ends.sort();
        assert_eq!(ends[0], (0, Some(3), b"it broke\n".to_vec()));
        assert_eq!(ends[1].1, Some(0));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("loud_output.log")).unwrap(),
            "it broke\n",
            "standard output goes nowhere"
        );
        assert!(!dir.path().join("quiet_output.log").exists());
    }

    #[test]
    fn pid_patterns() {
        assert!(matches_pid_pattern(
            "uac_ua1_123_errors.log",
            "uac_ua1_",
            "_errors.log"
        ));
        assert!(!matches_pid_pattern(
            "uac_ua1__errors.log",
            "uac_ua1_",
            "_errors.log"
        ));
        assert!(!matches_pid_pattern(
            "uac_ua1_12a_errors.log",
            "uac_ua1_",
            "_errors.log"
        ));
        assert!(!matches_pid_pattern(
            "uac_ua10_1_errors.log",
            "uac_ua1_",
            "_errors.log"
        ));
    }

    /// A slog drain that keeps every message, for tests that check what was done in order.
    #[derive(Clone, Default)]
    struct Recorded(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl slog::Drain for Recorded {
        type Ok = ();
        type Err = slog::Never;
        fn log(&self, r: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
            let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
            lines.push(r.msg().to_string());
            Ok(())
        }
    }

    impl Recorded {
        fn lines(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
        /// The signals sent to `label`, in order.
        fn signals_to(&self, label: &str) -> Vec<String> {
            self.lines()
                .iter()
                .filter_map(|l| l.strip_suffix(&format!(" to {label}")).map(str::to_string))
                .collect()
        }
    }

    /// A stand-in for a wedged SIPp: ignores SIGUSR1 and SIGTERM (the `sleep` it becomes keeps
    /// them ignored), says it is ready once it does, and waits to be killed.
    fn stubborn_sipp(folder: &Path) -> LaunchPlan {
        let mut inst = instance("uac_ua0");
        inst.argv = vec![
            "sh".into(),
            "-c".into(),
            "trap '' USR1 TERM; : > ready; exec sleep 60".into(),
        ];
        assert!(folder.is_dir());
        LaunchPlan {
            stages: vec![crate::core::plan::Stage {
                run_group: String::new(),
                instances: vec![inst],
            }],
        }
    }

    /// Runs [`stubborn_sipp`] with `grace`, sends each stop level once it is ready, and returns
    /// the outcome and the signals it got.
    fn stop_stubborn_sipp(grace: Duration, levels: &[StopLevel]) -> (SippOutcome, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().to_path_buf();
        let rec = Recorded::default();
        let log = Logger::root(slog::Fuse(rec.clone()), slog::o!());
        let (stop, rx) = watch::channel(StopLevel::Running);
        let levels = levels.to_vec();
        let outcome = actix_rt::System::new().block_on(async move {
            let plan = stubborn_sipp(&folder);
            let run = actix_rt::spawn(run_plan(
                plan,
                folder.clone(),
                Duration::from_secs(60),
                grace,
                log,
                rx,
            ));
            // The trap is in place: a signal now reaches a process that ignores it.
            let started = std::time::Instant::now();
            while !folder.join("ready").exists() {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the stand-in never started"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            for level in levels {
                stop.send_replace(level);
                // The next level comes while the previous one's first signal is in its grace.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            run.await.unwrap()
        });
        (outcome, rec.signals_to("uac_ua0"))
    }

    #[test]
    fn a_sipp_that_ignores_usr1_and_term_is_killed_after_the_graces() {
        let (outcome, signals) = stop_stubborn_sipp(Duration::from_millis(50), &[StopLevel::Abort]);
        assert_eq!(signals, ["SIGUSR1", "SIGTERM", "SIGKILL"]);
        assert!(!outcome.success);
        assert_eq!(outcome.reason.as_deref(), Some("interrupted: SIPp stopped"));
    }

    #[test]
    fn a_kill_during_the_stop_grace_kills_at_once() {
        // A grace long enough that SIGTERM would be sent only if the Kill waited for it.
        let (outcome, signals) =
            stop_stubborn_sipp(Duration::from_secs(3), &[StopLevel::Abort, StopLevel::Kill]);
        assert_eq!(signals, ["SIGUSR1", "SIGKILL"]);
        assert!(!outcome.success);
    }
}
