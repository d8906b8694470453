//! Running a test's `before.sh` / `after.sh` (§2, §4.2): `sh <name>` in the run folder, in its own
//! process group, with a timeout, its output logged line by line; what it leaves running is
//! found by its mark ([`marks`]) and stopped in time, so that nothing of it outlives the run.
//!
//! What `before.sh` starts in the background (a DUT-side `sipp -bg`, a daemon) is a helper of
//! the test: it lives until the test's `after.sh` has run (GLOBAL's: the end of the run), then
//! [`Leftovers::stop`] stops it (TERM, a grace, KILL). What `after.sh` leaves goes at the same
//! time. A first interrupt stops a running `before.sh`; a running `after.sh` (it restores the
//! DUT) is waited for until a second one, which kills whatever runs at once.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use slog::{debug, info, warn, Logger};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{ChildStderr, ChildStdout, Command};
use tokio::sync::watch;
use tokio::time::sleep_until;

use crate::events::format_duration;
use crate::sys::marks::{self, Mark, ProcId, MARK_VAR};

/// After SIGTERM on timeout, how long the script gets to clean up before SIGKILL; also what
/// left-over helpers get between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// The same grace once the run is interrupted: the user is waiting.
const INTERRUPT_GRACE: Duration = Duration::from_secs(1);

/// After the script is gone, how long we keep reading output that a process which escaped
/// (or outlived) it may still hold open, before the script's result is told.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// After a successful `before.sh`, how long we wait for its pipes to close (so that its last
/// lines are logged before the test's next step) before the helpers holding them are read in
/// the background.
const HANDOVER_WAIT: Duration = Duration::from_millis(50);

/// How often a stop looks whether the processes it signalled are gone.
const POLL: Duration = Duration::from_millis(20);

/// Rounds of SIGKILL: each round finds what forked meanwhile.
const KILL_ROUNDS: usize = 10;

/// Lines kept for the error message.
const TAIL_LINES: usize = 5;

/// A line longer than this is logged in pieces (a script printing binary data must not make us
/// buffer without bound).
const MAX_LINE: usize = 16 * 1024;

/// How far the run is being called off (§4.2): a first interrupt stops a running `before.sh`;
/// a second ("kill what is left at once") kills any script at once. Cheap to clone; every clone
/// sees the same switch.
#[derive(Debug, Clone)]
pub struct KillSwitch {
    /// 0: nothing; 1: interrupted; 2: killed. A watch channel remembers it for those who ask
    /// later.
    level: Arc<watch::Sender<u8>>,
}

impl Default for KillSwitch {
    fn default() -> Self {
        Self::new()
    }
}

const INTERRUPTED: u8 = 1;
const KILLED: u8 = 2;

impl KillSwitch {
    pub fn new() -> Self {
        KillSwitch {
            level: Arc::new(watch::Sender::new(0)),
        }
    }

    /// The first interrupt: a running `before.sh` is stopped (TERM, grace, KILL); `after.sh`
    /// goes on. Never lowers a level already reached.
    pub fn interrupt(&self) {
        self.level.send_if_modified(|l| {
            let was = *l;
            *l = was.max(INTERRUPTED);
            *l != was
        });
    }

    /// Kills any script at once; it stays fired.
    pub fn kill(&self) {
        self.level.send_replace(KILLED);
    }

    pub fn is_interrupted(&self) -> bool {
        *self.level.borrow() >= INTERRUPTED
    }

    pub fn is_killed(&self) -> bool {
        *self.level.borrow() >= KILLED
    }

    /// Resolves once the level reaches `level`, at once if it already has.
    async fn reached(&self, level: u8) {
        let mut rx = self.level.subscribe();
        // `wait_for` fails only when the sender is gone, and `self` holds it: never.
        if rx.wait_for(|l| *l >= level).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves once [`KillSwitch::interrupt`] (or `kill`) was called.
    pub async fn interrupted(&self) {
        self.reached(INTERRUPTED).await
    }

    /// Resolves once [`KillSwitch::kill`] was called, at once if it already was.
    pub async fn killed(&self) {
        self.reached(KILLED).await
    }

    /// The grace between SIGTERM and SIGKILL now.
    fn grace(&self) -> Duration {
        if self.is_interrupted() {
            INTERRUPT_GRACE
        } else {
            TERM_GRACE
        }
    }
}

/// Which script: they differ in what an interrupt does to them and in what they may leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `before.sh`: stopped by the first interrupt; what it leaves running are the test's
    /// helpers, kept until [`Leftovers::stop`].
    Before,
    /// `after.sh`: restores the DUT, so it is waited for until a second interrupt; what it
    /// leaves goes at [`Leftovers::stop`].
    After,
}

impl Role {
    pub fn file_name(self) -> &'static str {
        match self {
            Role::Before => "before.sh",
            Role::After => "after.sh",
        }
    }
}

/// How a script run went when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptRun {
    /// The test has no such script: nothing was run.
    Absent,
    /// It ran and exited 0.
    Ran { took: Duration },
}

/// Why a script failed. Every message is one line starting with the script's name.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("{name} could not be started: {source}")]
    Start {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("{name} could not be waited for: {source}")]
    Wait {
        name: String,
        #[source]
        source: io::Error,
    },
    /// Non-zero exit status; `tail` is its last lines of stderr (of stdout if stderr was empty).
    #[error("{name} exited with status {code}{}", last_line(tail))]
    Exit {
        name: String,
        code: i32,
        tail: Vec<String>,
    },
    /// Killed by a signal that was not ours.
    #[error("{name} was killed by signal {}{}", signal_name(*signal), last_line(tail))]
    Signal {
        name: String,
        signal: i32,
        tail: Vec<String>,
    },
    #[error("{name} timed out after {} and was killed", format_duration(*after))]
    Timeout { name: String, after: Duration },
    /// The first interrupt stopped it (`before.sh` only).
    #[error("{name} was stopped (interrupted)")]
    Interrupted { name: String },
    #[error("{name} was killed (second interrupt)")]
    Killed { name: String },
}

fn last_line(tail: &[String]) -> String {
    tail.last().map(|l| format!(": {l}")).unwrap_or_default()
}

fn signal_name(signal: i32) -> String {
    Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| signal.to_string())
}

/// What a test run's scripts left running, found by the run's [`Mark`]; stopped by
/// [`Leftovers::stop`] (or, as a last resort, killed when dropped unstopped).
#[derive(Debug)]
pub struct Leftovers {
    mark: Mark,
    /// A script ran with the mark: something of it may still run.
    live: bool,
    /// Members of a finished script's process group, seen when it ended: they stay ours even if
    /// they dropped the mark (told apart from a later process with the same pid).
    known: Vec<ProcId>,
    /// Opened when the first script started: scans read only the processes made since.
    window: Option<marks::PidWindow>,
    /// Read the output of helpers that still hold `before.sh`'s pipes, into the test's log.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Leftovers {
    /// Nothing left yet, for the run that `mark` names.
    pub fn new(mark: Mark) -> Self {
        Leftovers {
            mark,
            live: false,
            known: Vec::new(),
            window: None,
            readers: Vec::new(),
        }
    }

    /// Whatever carries `mark`: what the scripts of a run left whose owner went away (a test
    /// actor that died), to be stopped.
    pub fn adopt(mark: Mark) -> Self {
        let mut left = Leftovers::new(mark);
        left.live = true;
        left
    }

    /// The run's mark (what its scripts carry in their environment).
    pub fn mark(&self) -> &Mark {
        &self.mark
    }

    /// Whether a script ran and what it left was not stopped yet.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Stops everything the run's scripts left: SIGTERM, a grace (shorter once interrupted),
    /// then SIGKILL in rounds until nothing carrying the mark is left; a fired `cancel` ends the
    /// grace at once. Then the helpers' last output is read. Returns how many processes were
    /// stopped.
    pub async fn stop(&mut self, log: &Logger, cancel: &KillSwitch) -> usize {
        let mut stopped = 0;
        if self.live {
            let (mark, known) = (&self.mark, &self.known);
            stopped = stop_where(
                self.window,
                |seen| marks::select(seen, mark, known),
                log,
                cancel,
            )
            .await;
            self.live = false;
            self.known.clear();
        }
        for mut reader in self.readers.drain(..) {
            // EOF comes at once now, unless an untracked process holds the pipes.
            if tokio::time::timeout(DRAIN_GRACE, &mut reader)
                .await
                .is_err()
            {
                reader.abort();
            }
        }
        stopped
    }
}

impl Drop for Leftovers {
    /// A last resort (the owner went away without [`Leftovers::stop`]: a panic, a third signal
    /// that does not wait): SIGKILL to what is left, at once. Blocking but short (a read of
    /// what was made since the window opened); done here rather than on a thread that the
    /// process's exit could cut short.
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
        if !self.live {
            return;
        }
        for _ in 0..KILL_ROUNDS {
            let left = marks::select(&marks::scan(self.window), &self.mark, &self.known);
            if left.is_empty() {
                break;
            }
            for id in left {
                marks::signal(id, Signal::SIGKILL);
            }
            std::thread::sleep(POLL);
        }
    }
}

/// A scan of /proc on the blocking pool (of what was made since `window` opened, if given).
async fn scan(window: Option<marks::PidWindow>) -> Vec<marks::Seen> {
    tokio::task::spawn_blocking(move || marks::scan(window))
        .await
        .unwrap_or_default()
}

/// Stops what the scripts of killed runs left running (their sipplauncher is gone: its mark
/// names a dead process), TERM, grace, KILL, before a new run starts; returns how many
/// processes. Marks of live runs, or of runs in another pid namespace, are left alone.
pub async fn stop_dead_runs(log: &Logger, cancel: &KillSwitch) -> usize {
    let found = stop_where(None, marks::of_dead_runs, log, cancel).await;
    if found > 0 {
        info!(
            log,
            "stopped {found} process(es) left running by the scripts of killed runs"
        );
    }
    found
}

/// SIGTERM to what `select` picks from a scan of /proc, a grace, then SIGKILL until it picks
/// nothing. Returns how many processes were picked at first.
async fn stop_where(
    window: Option<marks::PidWindow>,
    select: impl Fn(&[marks::Seen]) -> Vec<ProcId>,
    log: &Logger,
    cancel: &KillSwitch,
) -> usize {
    let mut first = select(&scan(window).await);
    if first.is_empty() {
        // An orphan caught in the middle of an `exec` shows no mark for a moment: a second
        // look (a scan takes long enough for an exec to end) before calling it nothing.
        first = select(&scan(window).await);
        if first.is_empty() {
            return 0;
        }
    }
    let hard = cancel.is_killed();
    let signal = if hard {
        Signal::SIGKILL
    } else {
        Signal::SIGTERM
    };
    for id in &first {
        marks::signal(*id, signal);
        // A stopped process acts on SIGTERM only once continued.
        marks::signal(*id, Signal::SIGCONT);
    }
    if !hard {
        let until = tokio::time::Instant::now() + cancel.grace();
        loop {
            if first.iter().all(|id| !marks::is_alive(*id)) {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = cancel.killed() => break,
            }
            if tokio::time::Instant::now() >= until {
                break;
            }
        }
    }
    // What ignored SIGTERM, and what was forked meanwhile.
    let mut killed = Vec::new();
    for _ in 0..KILL_ROUNDS {
        let left = select(&scan(window).await);
        if left.is_empty() {
            break;
        }
        for id in left {
            if marks::signal(id, Signal::SIGKILL) && !killed.contains(&id) {
                killed.push(id);
            }
        }
        tokio::time::sleep(POLL).await;
    }
    if !killed.is_empty() && !hard {
        warn!(log, "{} process(es) left by the scripts did not stop on SIGTERM and were killed", killed.len(); "pids" => ?killed.iter().map(|i| i.pid).collect::<Vec<_>>());
    }
    debug!(log, "stopped what the scripts left running"; "processes" => first.len(), "pids" => ?first.iter().map(|i| i.pid).collect::<Vec<_>>());
    first.len()
}

/// Runs `sh before.sh` (or `after.sh`) in `cwd` (the run folder) and waits for it, logging its
/// output into `log`.
///
/// The script gets its own process group (so a Ctrl+C on the terminal does not reach it) and
/// the run's mark in its environment. On `timeout` the group gets SIGTERM, then SIGKILL 2 s
/// later; on the first interrupt a `before.sh` gets the same with a 1 s grace; when `cancel`
/// is killed the group gets SIGKILL at once (and no script starts once it is). When a
/// `before.sh` succeeds, what it left running stays, recorded in `left`; when it fails, that
/// is stopped before returning. When `after.sh` has run (or is absent, or is not started because
/// `cancel` is killed), everything the run's scripts left is stopped ([`Leftovers::stop`]) before
/// returning. The child is always reaped.
pub async fn run_script(
    role: Role,
    cwd: &Path,
    timeout: Duration,
    log: &Logger,
    cancel: &KillSwitch,
    left: &mut Leftovers,
) -> Result<ScriptRun, ScriptError> {
    let name = role.file_name();
    let start_err = |source: io::Error| ScriptError::Start {
        name: name.to_string(),
        source,
    };
    let path = cwd.join(name);
    let exists = tokio::task::spawn_blocking(move || path.try_exists())
        .await
        .map_err(|e| start_err(io::Error::other(e)))?
        .map_err(start_err)?;
    if !exists {
        if role == Role::After {
            left.stop(log, cancel).await;
        }
        return Ok(ScriptRun::Absent);
    }
    let refused = match role {
        Role::Before => cancel.is_interrupted(),
        Role::After => cancel.is_killed(),
    };
    if refused {
        left.stop(log, cancel).await;
        return Err(if cancel.is_killed() {
            ScriptError::Killed {
                name: name.to_string(),
            }
        } else {
            ScriptError::Interrupted {
                name: name.to_string(),
            }
        });
    }
    // A script may read the run's logs (an after.sh collecting them): they are complete.
    crate::sys::logging::flushed().await;

    let started = Instant::now();
    if left.window.is_none() {
        left.window = marks::PidWindow::open();
    }
    let mut child = Command::new("sh")
        .arg(name)
        .current_dir(cwd)
        .env(MARK_VAR, left.mark.value())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(start_err)?;
    left.live = true;
    // `id()` is `None` only once the child was reaped, which has not happened yet.
    let Some(pid) = child.id() else {
        return Err(start_err(io::Error::other("no process id")));
    };
    let mut group = Group::new(pid);
    let mut pipes = Pipes {
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        out: Lines::new(log.clone(), name, Stream::Stdout),
        err: Lines::new(log.clone(), name, Stream::Stderr),
    };

    let now = tokio::time::Instant::now();
    // A timeout too large to add is as good as none.
    let deadline = now
        .checked_add(timeout)
        .unwrap_or(now + Duration::from_secs(100 * 365 * 24 * 3600));
    let mut end: Option<Forced> = None;
    let mut sigkill_at: Option<tokio::time::Instant> = None;
    let mut sigkilled = false;
    let stoppable = role == Role::Before;
    let waited = loop {
        tokio::select! {
            _ = pipes.read_some(), if pipes.open() => {}
            r = child.wait() => break r,
            _ = sleep_until(deadline), if end.is_none() => {
                end = Some(Forced::Timeout);
                group.signal(Signal::SIGTERM);
                sigkill_at = Some(tokio::time::Instant::now() + TERM_GRACE);
            }
            _ = cancel.interrupted(), if stoppable && end.is_none() => {
                end = Some(Forced::Interrupted);
                group.signal(Signal::SIGTERM);
                sigkill_at = Some(tokio::time::Instant::now() + INTERRUPT_GRACE);
            }
            _ = sleep_until(sigkill_at.unwrap_or(deadline)), if sigkill_at.is_some() && !sigkilled => {
                group.signal(Signal::SIGKILL);
                sigkilled = true;
            }
            _ = cancel.killed(), if !sigkilled => {
                end = Some(Forced::Killed);
                group.signal(Signal::SIGKILL);
                sigkilled = true;
            }
        }
    };
    let took = started.elapsed();
    // Who is still in the script's group: ours, even if they drop the mark.
    let seen = scan(left.window).await;
    left.known.extend(
        seen.iter()
            .filter(|s| !s.zombie && s.pgid == group.pgid.as_raw())
            .map(|s| s.id),
    );
    // The group id is not signalled any more: once empty, it may be reused.
    group.disarm();
    let status = waited.map_err(|source| ScriptError::Wait {
        name: name.to_string(),
        source,
    });
    let kept = role == Role::Before && end.is_none() && status.as_ref().is_ok_and(|s| s.success());
    if kept {
        // The script's last lines before the test goes on; what its helpers print later is
        // read in the background into the same log.
        pipes.drain(HANDOVER_WAIT).await;
        if pipes.open() {
            left.readers.push(tokio::spawn(pipes.read_to_end()));
        } else {
            pipes.finish();
        }
        return Ok(ScriptRun::Ran { took });
    }
    // The test will not run (its before.sh failed), or after.sh is over: what the scripts
    // left goes now, then their last output is read.
    left.stop(log, cancel).await;
    pipes.drain(DRAIN_GRACE).await;
    pipes.finish();
    let status = status?;

    let name = name.to_string();
    match end {
        Some(Forced::Timeout) => {
            return Err(ScriptError::Timeout {
                name,
                after: timeout,
            })
        }
        Some(Forced::Interrupted) => return Err(ScriptError::Interrupted { name }),
        Some(Forced::Killed) => return Err(ScriptError::Killed { name }),
        None => {}
    }
    if status.success() {
        return Ok(ScriptRun::Ran { took });
    }
    let tail = pipes.tail();
    match status.code() {
        Some(code) => Err(ScriptError::Exit { name, code, tail }),
        None => {
            use std::os::unix::process::ExitStatusExt;
            Err(ScriptError::Signal {
                name,
                signal: status.signal().unwrap_or(0),
                tail,
            })
        }
    }
}

/// Why we ended the script ourselves.
#[derive(Debug, Clone, Copy)]
enum Forced {
    Timeout,
    Interrupted,
    Killed,
}

/// The script's two output pipes and their line splitters.
struct Pipes {
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    out: Lines,
    err: Lines,
}

impl Pipes {
    fn open(&self) -> bool {
        self.stdout.is_some() || self.stderr.is_some()
    }

    /// Reads what comes first on either pipe; `false` when nothing was read (a pipe closed).
    async fn read_some(&mut self) -> bool {
        let mut out_buf = [0u8; 4096];
        let mut err_buf = [0u8; 4096];
        tokio::select! {
            r = read_some(&mut self.stdout, &mut out_buf), if self.stdout.is_some() => match r {
                Ok(n) if n > 0 => { self.out.push(&out_buf[..n]); true }
                _ => { self.stdout = None; false }
            },
            r = read_some(&mut self.stderr, &mut err_buf), if self.stderr.is_some() => match r {
                Ok(n) if n > 0 => { self.err.push(&err_buf[..n]); true }
                _ => { self.stderr = None; false }
            },
        }
    }

    /// Reads until both pipes are closed or `wait` is over.
    async fn drain(&mut self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        while self.open() {
            tokio::select! {
                _ = self.read_some() => {}
                _ = sleep_until(until) => break,
            }
        }
    }

    /// Reads until both pipes are closed (for helpers that hold them), then logs what is left.
    async fn read_to_end(mut self) {
        while self.open() {
            self.read_some().await;
        }
        self.finish();
    }

    /// The streams ended: a last line without newline counts too.
    fn finish(&mut self) {
        self.out.finish();
        self.err.finish();
    }

    /// The last lines of stderr, of stdout if stderr had none.
    fn tail(&mut self) -> Vec<String> {
        let tail = if self.err.tail.is_empty() {
            &mut self.out.tail
        } else {
            &mut self.err.tail
        };
        tail.drain(..).collect()
    }
}

/// Reads from a pipe still open; a closed one (`None`) never resolves (its select branch is off).
async fn read_some<R: AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => std::future::pending().await,
    }
}

/// The script's process group while its leader runs: signalled as a whole; killed when dropped
/// unfinished (the future running the script was cancelled), so nothing of it outlives us.
struct Group {
    pgid: Pid,
    /// Cleared once the leader was reaped: the id may be reused once the group is empty.
    armed: bool,
}

impl Group {
    fn new(pid: u32) -> Self {
        Group {
            // A pid fits in `pid_t`; a wrapped value would only make killpg fail with ESRCH.
            pgid: Pid::from_raw(pid as libc::pid_t),
            armed: true,
        }
    }

    /// ESRCH (the group is already empty) is what we want; anything else cannot be helped here.
    fn signal(&self, signal: Signal) {
        if self.armed {
            let _ = killpg(self.pgid, signal);
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Splits one output stream into lines, logs them, and keeps the last few.
struct Lines {
    log: Logger,
    script: &'static str,
    stream: Stream,
    /// Bytes after the last newline.
    partial: Vec<u8>,
    /// Last non-blank lines, for the error message.
    tail: VecDeque<String>,
}

impl Lines {
    fn new(log: Logger, script: &'static str, stream: Stream) -> Self {
        Lines {
            log,
            script,
            stream,
            partial: Vec::new(),
            tail: VecDeque::with_capacity(TAIL_LINES + 1),
        }
    }

    fn push(&mut self, mut data: &[u8]) {
        while let Some(pos) = data.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&data[..pos]);
            self.emit();
            data = &data[pos + 1..];
        }
        self.partial.extend_from_slice(data);
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            self.emit();
            self.partial = rest;
        }
    }

    /// The stream ended: a last line without newline counts too.
    fn finish(&mut self) {
        if !self.partial.is_empty() {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let bytes = std::mem::take(&mut self.partial);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
        let line = String::from_utf8_lossy(bytes).into_owned();
        match self.stream {
            Stream::Stdout => {
                info!(self.log, "{}", line; "script" => self.script, "stream" => "stdout")
            }
            Stream::Stderr => {
                warn!(self.log, "{}", line; "script" => self.script, "stream" => "stderr")
            }
        }
        if !line.trim().is_empty() {
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;
    use nix::sys::signal::kill as send;
    use std::fmt::Write as _;
    use std::fs;
    use std::sync::Mutex;

    /// A slog drain that keeps each record as `LEVEL msg key=value...`.
    struct Capture(Arc<Mutex<Vec<String>>>);

    struct KvText<'a>(&'a mut String);

    impl slog::Serializer for KvText<'_> {
        fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments) -> slog::Result {
            let _ = write!(self.0, " {key}={val}");
            Ok(())
        }
    }

    impl slog::Drain for Capture {
        type Ok = ();
        type Err = slog::Never;
        fn log(&self, record: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
            let mut line = format!("{} {}", record.level().as_short_str(), record.msg());
            let _ = slog::KV::serialize(&record.kv(), record, &mut KvText(&mut line));
            self.0.lock().unwrap().push(line);
            Ok(())
        }
    }

    fn logger() -> (Logger, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        (Logger::root(Capture(lines.clone()), slog::o!()), lines)
    }

    fn folder_with(script: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("before.sh"), script).unwrap();
        dir
    }

    /// Leftovers of a fresh run id (each test its own, so that parallel tests never meet).
    fn leftovers() -> Leftovers {
        let run: String = (0..6)
            .map(|_| (b'a' + rand::random::<u8>() % 26) as char)
            .collect();
        Leftovers::new(Mark::for_run(&run).unwrap())
    }

    async fn run(dir: &Path, timeout: Duration) -> (Result<ScriptRun, ScriptError>, Vec<String>) {
        let (log, lines) = logger();
        let mut left = leftovers();
        let res = run_script(
            Role::Before,
            dir,
            timeout,
            &log,
            &KillSwitch::new(),
            &mut left,
        )
        .await;
        left.stop(&log, &KillSwitch::new()).await;
        let lines = lines.lock().unwrap().clone();
        (res, lines)
    }

    fn read_pid(path: &Path) -> Pid {
        Pid::from_raw(fs::read_to_string(path).unwrap().trim().parse().unwrap())
    }

    /// Waits up to 5 s for `path` to be written by a script's helper.
    async fn wait_pid(path: &Path) -> Pid {
        for _ in 0..500 {
            if let Ok(s) = fs::read_to_string(path) {
                if s.ends_with('\n') {
                    return Pid::from_raw(s.trim().parse().unwrap());
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} was not written", path.display());
    }

    fn alive(pid: Pid) -> bool {
        send(pid, None).is_ok() && !zombie(pid)
    }

    fn zombie(pid: Pid) -> bool {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
    }

    /// Gone, or a zombie waiting for a (possibly negligent) init to reap it. Waits up to 2 s.
    async fn gone(pid: Pid) -> bool {
        for _ in 0..200 {
            if send(pid, None) == Err(Errno::ESRCH) || zombie(pid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn an_endless_timeout_is_fine() {
        let dir = folder_with("exit 0\n");
        let (res, _) = run(dir.path(), Duration::MAX).await;
        assert!(matches!(res.unwrap(), ScriptRun::Ran { .. }));
    }

    #[tokio::test]
    async fn absent_script_is_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let (res, lines) = run(dir.path(), Duration::from_secs(5)).await;
        assert_eq!(res.unwrap(), ScriptRun::Absent);
        assert!(lines.is_empty());
    }

    #[tokio::test]
    async fn success_logs_stdout_at_info_and_stderr_at_warn() {
        let dir = folder_with("echo hello world\necho careful >&2\nprintf 'no newline'\n");
        let (res, lines) = run(dir.path(), Duration::from_secs(5)).await;
        assert!(matches!(res.unwrap(), ScriptRun::Ran { .. }));
        assert!(
            lines.contains(&"INFO hello world stream=stdout script=before.sh".to_string())
                || lines.contains(&"INFO hello world script=before.sh stream=stdout".to_string()),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("WARN careful") && l.contains("stream=stderr")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("INFO no newline")),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn every_line_is_logged_in_order_even_when_the_script_exits_at_once() {
        let dir = folder_with("i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done\n");
        let (res, lines) = run(dir.path(), Duration::from_secs(5)).await;
        res.unwrap();
        let got: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("INFO "))
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        let want: Vec<String> = (0..300).map(|i| format!("line{i}")).collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn non_zero_exit_names_the_status_and_the_last_stderr_line() {
        let dir = folder_with("echo out\nfor i in 1 2 3 4 5 6; do echo err$i >&2; done\nexit 3\n");
        let (res, _) = run(dir.path(), Duration::from_secs(5)).await;
        let err = res.unwrap_err();
        assert_eq!(err.to_string(), "before.sh exited with status 3: err6");
        match err {
            ScriptError::Exit { code, tail, .. } => {
                assert_eq!(code, 3);
                assert_eq!(tail, ["err2", "err3", "err4", "err5", "err6"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn non_zero_exit_without_stderr_uses_stdout() {
        let dir = folder_with("echo first\necho last\nexit 1\n");
        let (res, _) = run(dir.path(), Duration::from_secs(5)).await;
        assert_eq!(
            res.unwrap_err().to_string(),
            "before.sh exited with status 1: last"
        );
        let dir = folder_with("exit 1\n");
        let (res, _) = run(dir.path(), Duration::from_secs(5)).await;
        assert_eq!(
            res.unwrap_err().to_string(),
            "before.sh exited with status 1"
        );
    }

    #[tokio::test]
    async fn death_by_signal() {
        let dir = folder_with("echo bye >&2\nkill -9 $$\n");
        let (res, _) = run(dir.path(), Duration::from_secs(5)).await;
        let err = res.unwrap_err();
        assert!(
            matches!(err, ScriptError::Signal { signal: 9, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "before.sh was killed by signal SIGKILL: bye"
        );
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = folder_with("echo $$ > pid\nsleep 5 &\necho $! > child\nsleep 5\n");
        let started = Instant::now();
        let (res, _) = run(dir.path(), Duration::from_millis(300)).await;
        let err = res.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(err, ScriptError::Timeout { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "before.sh timed out after 300ms and was killed"
        );
        assert!(gone(read_pid(&dir.path().join("pid"))).await);
        assert!(gone(read_pid(&dir.path().join("child"))).await);
    }

    #[tokio::test]
    async fn timeout_escalates_to_sigkill_when_term_is_ignored() {
        let dir = folder_with("trap '' TERM\necho $$ > pid\nsleep 10\n");
        let started = Instant::now();
        let (res, _) = run(dir.path(), Duration::from_millis(100)).await;
        let took = started.elapsed();
        assert!(matches!(res, Err(ScriptError::Timeout { .. })), "{res:?}");
        assert!(
            took >= TERM_GRACE && took < TERM_GRACE + Duration::from_secs(2),
            "{took:?}"
        );
        assert!(gone(read_pid(&dir.path().join("pid"))).await);
    }

    #[tokio::test]
    async fn kill_switch_kills_at_once() {
        let dir = folder_with("trap '' TERM INT\necho $$ > pid\nsleep 10\n");
        fs::rename(dir.path().join("before.sh"), dir.path().join("after.sh")).unwrap();
        let (log, _) = logger();
        let kill = KillSwitch::new();
        let trigger = kill.clone();
        let mut left = leftovers();
        let started = Instant::now();
        let (res, ()) = tokio::join!(
            run_script(
                Role::After,
                dir.path(),
                Duration::from_secs(60),
                &log,
                &kill,
                &mut left
            ),
            async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                trigger.interrupt();
                tokio::time::sleep(Duration::from_millis(100)).await;
                trigger.kill();
            }
        );
        let err = res.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err.to_string(), "after.sh was killed (second interrupt)");
        assert!(gone(read_pid(&dir.path().join("pid"))).await);
    }

    #[tokio::test]
    async fn a_fired_kill_switch_starts_nothing() {
        let dir = folder_with("touch ran\n");
        fs::write(dir.path().join("after.sh"), "touch ran\n").unwrap();
        let (log, _) = logger();
        let kill = KillSwitch::new();
        kill.interrupt();
        let mut left = leftovers();
        // Once interrupted, no before.sh starts; after.sh still does.
        let res = run_script(
            Role::Before,
            dir.path(),
            Duration::from_secs(5),
            &log,
            &kill,
            &mut left,
        )
        .await;
        assert!(
            matches!(res, Err(ScriptError::Interrupted { .. })),
            "{res:?}"
        );
        assert!(!dir.path().join("ran").exists());
        kill.kill();
        let res = run_script(
            Role::After,
            dir.path(),
            Duration::from_secs(5),
            &log,
            &kill,
            &mut left,
        )
        .await;
        assert!(matches!(res, Err(ScriptError::Killed { .. })), "{res:?}");
        assert!(!dir.path().join("ran").exists());
    }

    /// The first interrupt stops a before.sh that ignores SIGTERM within the short grace, with
    /// what it started; the second would not be needed.
    #[tokio::test]
    async fn first_interrupt_stops_before_sh_and_its_helpers() {
        let dir = folder_with(
            "trap '' TERM\necho $$ > pid\nsetsid sh -c 'echo $$ > helper; exec sleep 30' &\nsleep 10\n",
        );
        let (log, _) = logger();
        let kill = KillSwitch::new();
        let trigger = kill.clone();
        let mut left = leftovers();
        let helper = dir.path().join("helper");
        let started = Instant::now();
        let (res, ()) = tokio::join!(
            run_script(
                Role::Before,
                dir.path(),
                Duration::from_secs(60),
                &log,
                &kill,
                &mut left
            ),
            async {
                wait_pid(&helper).await;
                trigger.interrupt();
            }
        );
        let took = started.elapsed();
        assert_eq!(
            res.unwrap_err().to_string(),
            "before.sh was stopped (interrupted)"
        );
        assert!(
            took < INTERRUPT_GRACE * 2 + Duration::from_secs(1),
            "{took:?}"
        );
        assert!(gone(read_pid(&dir.path().join("pid"))).await);
        assert!(gone(read_pid(&helper)).await);
        assert!(!left.is_live());
    }

    /// A running after.sh restores the DUT: the first interrupt lets it finish.
    #[tokio::test]
    async fn first_interrupt_lets_after_sh_finish() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("after.sh"), "sleep 0.5\ntouch restored\n").unwrap();
        let (log, _) = logger();
        let kill = KillSwitch::new();
        let trigger = kill.clone();
        let mut left = leftovers();
        let (res, ()) = tokio::join!(
            run_script(
                Role::After,
                dir.path(),
                Duration::from_secs(60),
                &log,
                &kill,
                &mut left
            ),
            async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                trigger.interrupt();
            }
        );
        assert!(matches!(res.unwrap(), ScriptRun::Ran { .. }));
        assert!(dir.path().join("restored").exists());
    }

    /// What before.sh starts in the background (in its group, in a session of its own, a double
    /// fork) keeps running after it returns, and its output still reaches the log; after.sh
    /// finds it running; once after.sh is over it is all gone, with what after.sh started too.
    #[tokio::test]
    async fn before_sh_helpers_live_until_after_sh_has_run() {
        let dir = folder_with(concat!(
            "sleep 30 &\necho $! > in_group\n",
            "setsid sh -c 'echo $$ > own_session; sleep 0.3; echo helper speaks; exec sleep 30' &\n",
            "sh -c 'sh -c \"echo \\$\\$ > double_fork; exec sleep 30\" &' \n",
            "echo before done\n",
        ));
        fs::write(
            dir.path().join("after.sh"),
            "for f in in_group own_session double_fork; do kill -0 $(cat $f) || exit 7; done\n\
             sleep 30 &\necho $! > after_child\n",
        )
        .unwrap();
        let (log, lines) = logger();
        let kill = KillSwitch::new();
        let mut left = leftovers();
        let started = Instant::now();
        let res = run_script(
            Role::Before,
            dir.path(),
            Duration::from_secs(5),
            &log,
            &kill,
            &mut left,
        )
        .await;
        assert!(matches!(res.unwrap(), ScriptRun::Ran { .. }));
        // Not held up by the helpers keeping the pipes open.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(left.is_live());
        let helpers: Vec<Pid> = [
            wait_pid(&dir.path().join("in_group")).await,
            wait_pid(&dir.path().join("own_session")).await,
            wait_pid(&dir.path().join("double_fork")).await,
        ]
        .to_vec();
        tokio::time::sleep(Duration::from_millis(500)).await;
        for p in &helpers {
            assert!(alive(*p), "helper {p} died early");
        }
        assert!(
            lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.starts_with("INFO helper speaks")),
            "{:?}",
            lines.lock().unwrap()
        );
        let res = run_script(
            Role::After,
            dir.path(),
            Duration::from_secs(5),
            &log,
            &kill,
            &mut left,
        )
        .await;
        assert!(
            matches!(res.unwrap(), ScriptRun::Ran { .. }),
            "after.sh saw the helpers"
        );
        for p in &helpers {
            assert!(gone(*p).await, "helper {p} left running");
        }
        assert!(gone(read_pid(&dir.path().join("after_child"))).await);
        assert!(!left.is_live());
    }

    /// The script sees its mark; what it leaves and ignores SIGTERM is killed after the grace.
    #[tokio::test]
    async fn helpers_that_ignore_sigterm_are_killed_after_the_grace() {
        let dir = folder_with(
            "echo \"$SIPPLAUNCHER_RUN\" > mark\nsetsid sh -c \"trap '' TERM; echo \\$\\$ > helper; while :; do sleep 1; done\" &\n",
        );
        let (log, lines) = logger();
        let kill = KillSwitch::new();
        let mut left = leftovers();
        let res = run_script(
            Role::Before,
            dir.path(),
            Duration::from_secs(5),
            &log,
            &kill,
            &mut left,
        )
        .await;
        res.unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("mark")).unwrap().trim(),
            left.mark().value()
        );
        let helper = wait_pid(&dir.path().join("helper")).await;
        let started = Instant::now();
        let stopped = left.stop(&log, &kill).await;
        let took = started.elapsed();
        assert!(stopped >= 1);
        assert!(
            took >= TERM_GRACE && took < TERM_GRACE + Duration::from_secs(2),
            "{took:?}"
        );
        assert!(gone(helper).await);
        assert!(
            lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("did not stop on SIGTERM")),
            "{:?}",
            lines.lock().unwrap()
        );
    }

    /// A before.sh that fails leaves nothing running.
    #[tokio::test]
    async fn a_failing_before_sh_leaves_nothing() {
        let dir =
            folder_with("setsid sh -c 'echo $$ > helper; exec sleep 30' &\nsleep 0.2\nexit 4\n");
        let (log, _) = logger();
        let mut left = leftovers();
        let res = run_script(
            Role::Before,
            dir.path(),
            Duration::from_secs(5),
            &log,
            &KillSwitch::new(),
            &mut left,
        )
        .await;
        assert!(
            matches!(res, Err(ScriptError::Exit { code: 4, .. })),
            "{res:?}"
        );
        assert!(gone(read_pid(&dir.path().join("helper"))).await);
        assert!(!left.is_live());
    }

    /// Leftovers dropped unstopped (their owner panicked) are killed all the same.
    #[tokio::test]
    async fn dropped_leftovers_are_killed() {
        let dir = folder_with("setsid sh -c 'echo $$ > helper; exec sleep 30' &\n");
        let (log, _) = logger();
        let mut left = leftovers();
        run_script(
            Role::Before,
            dir.path(),
            Duration::from_secs(5),
            &log,
            &KillSwitch::new(),
            &mut left,
        )
        .await
        .unwrap();
        let helper = wait_pid(&dir.path().join("helper")).await;
        assert!(alive(helper));
        drop(left);
        assert!(gone(helper).await);
    }

    /// A before.sh that leaves nothing: nothing to stop.
    #[tokio::test]
    async fn nothing_left_nothing_to_stop() {
        let dir = folder_with("sleep 0.1 &\nwait\necho done\n");
        let (log, _) = logger();
        let mut left = leftovers();
        run_script(
            Role::Before,
            dir.path(),
            Duration::from_secs(5),
            &log,
            &KillSwitch::new(),
            &mut left,
        )
        .await
        .unwrap();
        assert!(left.is_live());
        assert_eq!(left.stop(&log, &KillSwitch::new()).await, 0);
        assert!(!left.is_live());
    }

    /// What a killed run's scripts left (its mark names a dead sipplauncher) is stopped by the
    /// next run; a live run's helpers are left alone.
    #[tokio::test]
    async fn the_next_run_stops_what_killed_runs_left() {
        let (me, _) = crate::sys::owner::tests::me_and_a_dead_run();
        let dead = Mark {
            owner: crate::sys::owner::RunOwner {
                start: me.start + 1,
                ..me
            },
            run: "deadrn".into(),
        };
        let live = Mark::for_run("liverun").unwrap();
        let spawn = |mark: &Mark| {
            std::process::Command::new("sleep")
                .arg("30")
                .env(MARK_VAR, mark.value())
                .spawn()
                .unwrap()
        };
        let mut orphan = spawn(&dead);
        let mut helper = spawn(&live);
        let (log, _) = logger();
        // Until the children have exec'd `sleep` with the mark.
        let mut stopped = 0;
        for _ in 0..100 {
            stopped += stop_dead_runs(&log, &KillSwitch::new()).await;
            if stopped > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // At least ours (a killed test process may have left more).
        assert!(stopped >= 1);
        assert!(
            orphan.try_wait().unwrap().is_some() || gone(Pid::from_raw(orphan.id() as i32)).await
        );
        assert!(
            helper.try_wait().unwrap().is_none(),
            "a live run's helper was stopped"
        );
        helper.kill().unwrap();
        helper.wait().unwrap();
        orphan.wait().unwrap();
    }

    #[tokio::test]
    async fn runs_in_cwd_in_its_own_process_group() {
        let dir = folder_with(
            "pwd > where\nread -r pid comm state ppid pgrp rest < /proc/$$/stat\necho $pgrp > pgid\necho $$ > pid\n",
        );
        let (res, _) = run(dir.path(), Duration::from_secs(5)).await;
        res.unwrap();
        assert_eq!(
            fs::canonicalize(fs::read_to_string(dir.path().join("where")).unwrap().trim()).unwrap(),
            fs::canonicalize(dir.path()).unwrap()
        );
        let pgid = read_pid(&dir.path().join("pgid"));
        assert_ne!(pgid, nix::unistd::getpgrp());
        assert_eq!(pgid, read_pid(&dir.path().join("pid")));
    }

    #[tokio::test]
    async fn a_script_that_cannot_be_looked_at_is_a_start_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("file"), "").unwrap();
        let (res, _) = run(&dir.path().join("file"), Duration::from_secs(5)).await;
        let err = res.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("before.sh could not be started: "),
            "{err}"
        );
    }

    #[tokio::test]
    async fn kill_switch_levels_remember_and_are_shared() {
        let a = KillSwitch::new();
        let b = a.clone();
        assert!(!b.is_interrupted() && !b.is_killed());
        a.interrupt();
        assert!(b.is_interrupted() && !b.is_killed());
        tokio::time::timeout(Duration::from_secs(1), b.interrupted())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_millis(50), b.killed())
            .await
            .unwrap_err();
        a.kill();
        a.interrupt();
        assert!(b.is_killed(), "an interrupt after a kill does not lower it");
        tokio::time::timeout(Duration::from_secs(1), b.killed())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(1), KillSwitch::default().killed())
            .await
            .unwrap_err();
    }

    #[test]
    fn lines_are_split_across_chunks_and_capped() {
        let (log, lines) = logger();
        let mut l = Lines::new(log, "after.sh", Stream::Stdout);
        l.push(b"ab");
        l.push(b"c\r\nd\n\nlast");
        l.push(&vec![b'x'; MAX_LINE + 10]);
        l.finish();
        let got: Vec<String> = lines
            .lock()
            .unwrap()
            .iter()
            .map(|s| {
                s.split(" stream=")
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(12)
                    .collect()
            })
            .collect();
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(&got[..3], ["INFO abc", "INFO d", "INFO "]);
        assert!(got[3].starts_with("INFO lastxxx"));
        assert_eq!(l.tail.len(), 4); // the blank line is not kept
    }

    #[test]
    fn signals_are_named() {
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(99), "99");
    }
}
