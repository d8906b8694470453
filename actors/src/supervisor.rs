//! The Supervisor: a thin shell around [`Dispatcher`]. It carries out the dispatcher's commands
//! (start a group of TestActors, send them Prepare / Run / Abort / Kill / Cleanup, pause, run the
//! GLOBAL scripts) and feeds every reply, signal and timer back in as an [`Input`].

// actix's prelude exports its own `Supervisor`: import actix items by name here.
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, SpawnHandle, WrapFuture};
use slog::{debug, error, info, o, warn, Logger};
use tokio::sync::oneshot;

use crate::core::dispatch::{Command, Dispatcher, Input, Outcome};
use crate::core::plan::{FrontEnd, RenderContext, RunId, RunPlan, TestName};
use crate::core::scheduler::{Schedule, ScheduledRun};
use crate::dns::{DnsActor, DnsShutdown, DNS_PORT};
use crate::events::{Event, EventBus, EventSink, GlobalScript, PROGRESS_EVERY};
use crate::messages::{Abort, Cleanup, Kill, Prepare, Run, Shutdown, Signal};
use crate::net::{NetActor, RESERVE_SIZE};
use crate::sniffer::{SnifferActor, SnifferStop};
use crate::sys::marks::Mark;
use crate::sys::script::{self, KillSwitch, Leftovers, Role};
use crate::sys::{logging, rundir};
use crate::test_actor::TestActor;

/// How a run ended, for the front end.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub outcome: Outcome,
    /// Reports that could not be written, one line each.
    pub report_errors: Vec<String>,
    /// The run stopped on the tool's own fault (e.g. the disk is full, netlink refused).
    pub fatal: Option<String>,
    /// The run could not start (e.g. no privilege for netlink): nothing was done.
    pub start_error: Option<String>,
}

pub struct Supervisor {
    plan: RunPlan,
    core: Dispatcher,
    front: FrontEnd,
    /// The embedded DNS server, shared by the tests (not in --dry-run; binds on first use).
    dns: Option<Addr<DnsActor>>,
    /// The one capture of the run (not in --dry-run or with --no-pcap).
    sniffer: Option<Addr<SnifferActor>>,
    bus: EventBus,
    log: Logger,
    net: Addr<NetActor>,
    /// The TestActors under way, by slot (the current group's, or `--window`'s).
    tests: HashMap<usize, Addr<TestActor>>,
    /// The GLOBAL test's run folder, between its before.sh and after.sh.
    global_folder: Option<PathBuf>,
    /// Fired by signals: the first stops a running GLOBAL before.sh, a second kills a running
    /// GLOBAL script.
    kill: KillSwitch,
    /// What the GLOBAL before.sh left running (helpers for the whole run), stopped after the
    /// GLOBAL after.sh, at the end of the run.
    global_leftovers: Option<Leftovers>,
    /// Pauses that run (one between groups; one per free place with `--window`).
    pauses: VecDeque<SpawnHandle>,
    started: Instant,
    fatal: Option<String>,
    /// What the final network cleanup could not remove.
    leftovers: Vec<String>,
    done: Option<oneshot::Sender<RunResult>>,
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let cfg = &self.plan.config;
        self.bus.emit(Event::RunStarted {
            tests: self.plan.tests.len(),
            runs: cfg.total.unwrap_or(self.plan.tests.len() as u64),
            repeat: cfg.repeat,
            group: cfg.group,
            window: cfg.window,
            seed: cfg.random_seed,
            dry_run: cfg.dry_run,
            at: SystemTime::now(),
        });
        ctx.run_interval(PROGRESS_EVERY, |act, _| {
            act.bus.emit(Event::Progress {
                outcome: act.core.outcome(),
                elapsed: act.started.elapsed(),
            })
        });
        self.input(Input::Start, ctx);
    }
}

impl Supervisor {
    fn input(&mut self, input: Input, ctx: &mut Context<Self>) {
        for cmd in self.core.handle(input) {
            self.execute(cmd, ctx);
        }
    }

    fn execute(&mut self, cmd: Command, ctx: &mut Context<Self>) {
        match cmd {
            Command::RunGlobalBefore => self.global_before(ctx),
            Command::RunGlobalAfter => self.global_after(ctx),
            Command::StartGroup { runs } => self.start_group(runs),
            Command::StartTest { slot, run } => {
                let actor = self.test_actor(run);
                self.tests.insert(slot, actor);
            }
            Command::Prepare { slot } => {
                let Some(actor) = self.tests.get(&slot) else {
                    // Cannot happen (StartGroup/StartTest come first); never stall on it.
                    error!(self.log, "no test actor in slot {slot} to prepare");
                    return self.input(Input::Prepared { slot, ready: false }, ctx);
                };
                let fut = actor.send(Prepare);
                ctx.spawn(fut.into_actor(self).map(move |reply, act, ctx| {
                    let (ready, fatal) = match reply {
                        Ok(r) => (r.ready, r.fatal),
                        Err(e) => (false, Some(format!("test actor gone: {e}"))),
                    };
                    if let Some(f) = fatal {
                        error!(act.log, "stopping the run: {f}");
                        act.fatal.get_or_insert(f);
                        act.input(Input::Fatal, ctx);
                    }
                    if !ready {
                        // Rolled back: the actor is done.
                        act.tests.remove(&slot);
                    }
                    act.input(Input::Prepared { slot, ready }, ctx);
                }));
            }
            Command::Run { slots } => {
                for slot in slots {
                    let Some(actor) = self.tests.get(&slot) else {
                        error!(self.log, "no test actor in slot {slot} to run");
                        self.input(
                            Input::RunDone {
                                slot,
                                success: false,
                            },
                            ctx,
                        );
                        continue;
                    };
                    let fut = actor.send(Run);
                    ctx.spawn(fut.into_actor(self).map(move |reply, act, ctx| {
                        let success = reply.map(|r| r.success).unwrap_or(false);
                        act.input(Input::RunDone { slot, success }, ctx);
                    }));
                }
            }
            Command::Abort { slots } => {
                for slot in slots {
                    if let Some(actor) = self.tests.get(&slot) {
                        actor.do_send(Abort);
                    }
                }
            }
            Command::Kill => {
                self.kill.kill();
                for t in self.tests.values() {
                    t.do_send(Kill);
                }
            }
            Command::Cleanup { slot } => {
                let Some(actor) = self.tests.get(&slot) else {
                    error!(self.log, "no test actor in slot {slot} to clean up");
                    return self.input(
                        Input::Cleaned {
                            slot,
                            passed: false,
                        },
                        ctx,
                    );
                };
                let fut = actor.send(Cleanup);
                ctx.spawn(fut.into_actor(self).map(move |reply, act, ctx| {
                    let passed = reply.map(|r| r.passed).unwrap_or(false);
                    act.tests.remove(&slot);
                    act.input(Input::Cleaned { slot, passed }, ctx);
                }));
            }
            Command::Pause(d) => {
                // All pauses are as long, so the first one started is the one that ends.
                let handle = ctx.run_later(d, |act, ctx| {
                    act.pauses.pop_front();
                    act.input(Input::PauseOver, ctx)
                });
                self.pauses.push_back(handle);
            }
            Command::Finish(outcome) => {
                // The GLOBAL after.sh did not run (a second signal): its helpers go now, and
                // its run folder.
                if let Some(mut left) = self.global_leftovers.take() {
                    let log = self.log.clone();
                    let kill = self.kill.clone();
                    let stopped = async move { left.stop(&log, &kill).await };
                    ctx.spawn(
                        stopped
                            .into_actor(self)
                            .map(move |_, act, ctx| act.execute(Command::Finish(outcome), ctx)),
                    );
                    return;
                }
                if self.global_folder.is_some() {
                    return self.remove_global_folder_then(
                        move |act, ctx| act.execute(Command::Finish(outcome), ctx),
                        ctx,
                    );
                }
                if let Some(dns) = &self.dns {
                    dns.do_send(DnsShutdown);
                }
                if let Some(sniffer) = &self.sniffer {
                    sniffer.do_send(SnifferStop);
                }
                // Links left by a DIRTY test or a second interrupt go before the end.
                let fut = self.net.send(Shutdown);
                ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
                    match res {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => act.leftovers.push(e.to_string()),
                        Err(e) => act.leftovers.push(format!("address pool gone: {e}")),
                    }
                    act.finish(outcome, ctx)
                }));
            }
        }
    }

    fn start_group(&mut self, runs: Vec<ScheduledRun>) {
        let number = runs.first().map(|r| r.index).unwrap_or(0);
        self.bus.emit(Event::GroupStarted {
            number: number / self.plan.config.group.max(1) as u64 + 1,
            size: runs.len(),
        });
        // Dropping the previous group's addresses lets those actors stop.
        self.tests = runs
            .into_iter()
            .enumerate()
            .map(|(slot, run)| (slot, self.test_actor(run)))
            .collect();
    }

    fn test_actor(&self, run: ScheduledRun) -> Addr<TestActor> {
        TestActor::new(
            run,
            Arc::new(self.plan.tests[run.test].clone()),
            self.plan.config.clone(),
            self.front.clone(),
            self.net.clone(),
            self.dns.clone(),
            self.sniffer.clone(),
            self.bus.clone(),
            &self.log,
        )
        .start()
    }

    /// Makes the GLOBAL run folder and runs its before.sh (not in --dry-run: only rendered).
    fn global_before(&mut self, ctx: &mut Context<Self>) {
        let Some(global) = self.plan.global.clone() else {
            return self.input(Input::GlobalBeforeDone { ok: true }, ctx);
        };
        let config = self.plan.config.clone();
        let render = self.front.render.clone();
        let log = self.log.new(o!("test" => "GLOBAL"));
        let kill = self.kill.clone();
        let work = async move {
            let started = Instant::now();
            let name = TestName("GLOBAL".into());
            let run_id = RunId::random();
            let mark = Mark::for_run(&run_id.0);
            let made = {
                let config = config.clone();
                tokio::task::spawn_blocking(move || -> Result<PathBuf, String> {
                    let folder = rundir::create(&config.run_root, &name, &run_id)
                        .map_err(|e| e.to_string())?;
                    let undo = |e: String| {
                        let _ = rundir::remove(&folder);
                        e
                    };
                    if !config.leave_temp {
                        rundir::mark_owner(&folder).map_err(|e| undo(e.to_string()))?;
                    }
                    rundir::copy_test(&global.folder, &folder).map_err(|e| undo(e.to_string()))?;
                    let ctx = RenderContext {
                        test_name: name,
                        run_id,
                        run_id_number: crate::core::plan::random_run_id_number(),
                        dut: config.dut,
                        ua_hosts: Default::default(),
                    };
                    render.render(&folder, &ctx).map_err(undo)?;
                    Ok(folder)
                })
                .await
                .unwrap_or_else(|e| Err(format!("GLOBAL pre-run panicked: {e}")))
            };
            let folder = match made {
                Ok(f) => f,
                Err(e) => return (None, None, Some(e), started.elapsed()),
            };
            if config.dry_run {
                return (Some(folder), None, None, started.elapsed());
            }
            let mut left = match mark {
                Ok(mark) => Leftovers::new(mark),
                Err(e) => {
                    let e = format!("mark before.sh with this run: {e}");
                    return (Some(folder), None, Some(e), started.elapsed());
                }
            };
            let log = global_logger(log, &folder).await;
            let res = script::run_script(
                Role::Before,
                &folder,
                config.script_timeout,
                &log,
                &kill,
                &mut left,
            )
            .await;
            (
                Some(folder),
                Some(left),
                res.err().map(|e| e.to_string()),
                started.elapsed(),
            )
        };
        ctx.spawn(
            work.into_actor(self)
                .map(|(folder, left, err, took), act, ctx| {
                    act.global_folder = folder;
                    act.global_leftovers = left;
                    if let Some(e) = &err {
                        error!(act.log, "GLOBAL before.sh: {e}");
                    }
                    if !act.plan.config.dry_run || err.is_some() {
                        act.bus.emit(Event::Global {
                            script: GlobalScript::Before,
                            error: err.clone(),
                            took,
                        });
                    }
                    let done = Input::GlobalBeforeDone { ok: err.is_none() };
                    // Stopped by a signal, its after.sh runs in its folder (see the dispatcher).
                    if err.is_some() && !act.core.interrupted() {
                        act.remove_global_folder_then(move |act, ctx| act.input(done, ctx), ctx);
                    } else {
                        act.input(done, ctx);
                    }
                }),
        );
    }

    fn global_after(&mut self, ctx: &mut Context<Self>) {
        let Some(folder) = self.global_folder.clone() else {
            return self.input(Input::GlobalAfterDone { ok: true }, ctx);
        };
        if self.plan.config.dry_run {
            return self.remove_global_folder_then(
                |act, ctx| act.input(Input::GlobalAfterDone { ok: true }, ctx),
                ctx,
            );
        }
        let config = self.plan.config.clone();
        let log = self.log.new(o!("test" => "GLOBAL"));
        let kill = self.kill.clone();
        let mut left = self.global_leftovers.take();
        let work = async move {
            let started = Instant::now();
            let log = global_logger(log, &folder).await;
            let Some(left) = left.as_mut() else {
                return (None, started.elapsed());
            };
            // After it, what the GLOBAL before.sh left goes.
            let res = script::run_script(
                Role::After,
                &folder,
                config.script_timeout,
                &log,
                &kill,
                left,
            )
            .await;
            (res.err().map(|e| e.to_string()), started.elapsed())
        };
        ctx.spawn(work.into_actor(self).map(|(err, took), act, ctx| {
            if let Some(e) = &err {
                error!(act.log, "GLOBAL after.sh: {e}");
            }
            act.bus.emit(Event::Global {
                script: GlobalScript::After,
                error: err.clone(),
                took,
            });
            let done = Input::GlobalAfterDone { ok: err.is_none() };
            act.remove_global_folder_then(move |act, ctx| act.input(done, ctx), ctx);
        }));
    }

    /// Removes the GLOBAL run folder (unless `--leave-temp`) on the blocking pool, then feeds
    /// `then` to the dispatcher.
    fn remove_global_folder_then(
        &mut self,
        then: impl FnOnce(&mut Self, &mut Context<Self>) + 'static,
        ctx: &mut Context<Self>,
    ) {
        let Some(folder) = self.global_folder.take() else {
            return then(self, ctx);
        };
        if self.plan.config.leave_temp {
            info!(self.log, "GLOBAL run folder left at {}", folder.display());
            return then(self, ctx);
        }
        let removed = tokio::task::spawn_blocking(move || rundir::remove(&folder));
        ctx.spawn(removed.into_actor(self).map(move |res, act, ctx| {
            match res {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(act.log, "{e}"),
                Err(e) => warn!(act.log, "remove the GLOBAL run folder: {e}"),
            }
            then(act, ctx);
        }));
    }

    fn finish(&mut self, outcome: Outcome, ctx: &mut Context<Self>) {
        self.bus.emit(Event::RunFinished {
            outcome,
            elapsed: self.started.elapsed(),
            at: SystemTime::now(),
        });
        let mut report_errors = self.bus.finish();
        for e in &report_errors {
            error!(self.log, "report: {e}");
        }
        for e in self.leftovers.drain(..) {
            error!(self.log, "network cleanup: {e}");
            report_errors.push(format!("network cleanup: {e}"));
        }
        if let Some(done) = self.done.take() {
            let _ = done.send(RunResult {
                outcome,
                report_errors,
                fatal: self.fatal.clone(),
                start_error: None,
            });
        }
        self.tests.clear();
        actix::ActorContext::stop(ctx);
    }
}

impl Handler<Signal> for Supervisor {
    type Result = ();

    fn handle(&mut self, sig: Signal, ctx: &mut Context<Self>) {
        warn!(self.log, "{} received", sig.0);
        let hard = self.core.interrupted();
        // A running GLOBAL before.sh stops; the GLOBAL after.sh goes on until a second signal.
        self.kill.interrupt();
        self.bus.emit(Event::Interrupted { hard });
        for h in self.pauses.drain(..) {
            ctx.cancel_future(h);
        }
        self.input(Input::Signal, ctx);
    }
}

/// Runs the whole plan on a new actix System and returns when it is over. `sinks` get every
/// event; `front` renders run folders, builds SIPp command lines and parses `dns.txt`.
pub fn run(
    plan: RunPlan,
    front: FrontEnd,
    sinks: Vec<Box<dyn EventSink>>,
    log: Logger,
) -> RunResult {
    let system = actix_rt::System::new();
    let result = system.block_on(async move {
        let (tx, rx) = oneshot::channel();
        let config = plan.config.clone();
        if !config.dry_run {
            crate::sys::strays::kill_strays(&config.run_root, &log);
        }
        // Before their folders go: what the scripts of killed runs left running.
        script::stop_dead_runs(&log, &KillSwitch::new()).await;
        remove_dead_runs(&config.run_root, &log);
        let net_log = log.new(o!("actor" => "net"));
        let net = if config.dry_run {
            NetActor::dry(config.dut, config.network_mask, net_log)
        } else {
            match NetActor::real(config.dut, config.network_mask, net_log).await {
                // Room for a group's pre-run of tests with a few UAs each.
                Ok(mut n) => {
                    n.reserve_size = (config.group * 4).clamp(RESERVE_SIZE, 512);
                    n
                }
                Err(e) => {
                    return RunResult {
                        outcome: Outcome::default(),
                        report_errors: Vec::new(),
                        fatal: None,
                        start_error: Some(e.to_string()),
                    }
                }
            }
        }
        .start();
        // The capture opens at start so that a missing privilege is a clear error before
        // anything is done.
        let sniffer = if config.pcap {
            match SnifferActor::open(log.new(o!("actor" => "sniffer"))) {
                Ok(s) => Some(s.start()),
                Err(e) => {
                    net.do_send(Shutdown);
                    return RunResult {
                        outcome: Outcome::default(),
                        report_errors: Vec::new(),
                        fatal: None,
                        start_error: Some(e.to_string()),
                    };
                }
            }
        } else {
            None
        };
        let schedule = Schedule::new(
            plan.tests.len(),
            config.group,
            config.total,
            config.random_seed,
            config.repeat,
        );
        let mut core = Dispatcher::new(
            schedule,
            plan.global.is_some(),
            config.group_pause,
            config.group_stop_first_fail,
        );
        if config.window {
            core = core.windowed(config.group);
        }
        let supervisor = Supervisor {
            plan,
            core,
            dns: (!config.dry_run)
                .then(|| DnsActor::new(DNS_PORT, log.new(o!("actor" => "dns"))).start()),
            sniffer,
            front,
            bus: EventBus::new(sinks),
            log: log.clone(),
            net,
            tests: HashMap::new(),
            global_folder: None,
            kill: KillSwitch::new(),
            global_leftovers: None,
            pauses: VecDeque::new(),
            started: Instant::now(),
            fatal: None,
            leftovers: Vec::new(),
            done: Some(tx),
        }
        .start();
        if let Err(e) = crate::sys::signal::forward(supervisor.clone().recipient()) {
            error!(log, "cannot catch signals: {e}");
        }
        rx.await.unwrap_or_else(|_| RunResult {
            outcome: Outcome::default(),
            report_errors: Vec::new(),
            fatal: Some("the supervisor stopped without an outcome".into()),
            start_error: None,
        })
    });
    result
}

/// The GLOBAL test's logger, also into its run folder's `sipplauncher.log` (opened on the
/// blocking pool); `log` alone when that file cannot be opened.
async fn global_logger(log: Logger, folder: &std::path::Path) -> Logger {
    let path = folder.join("sipplauncher.log");
    let parent = log.clone();
    tokio::task::spawn_blocking(move || logging::test_logger(&parent, &path))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(log)
}

/// Removes the run folders of killed runs under `run_root` (their SIPp processes are killed
/// first). Blocking, once before the run starts; a run root that is not ours or not safe is left
/// alone (the first test's run folder then says why).
fn remove_dead_runs(run_root: &std::path::Path, log: &Logger) {
    match rundir::remove_dead_runs(run_root) {
        Ok(done) => {
            if !done.removed.is_empty() {
                info!(
                    log,
                    "removed {} run folders left by killed runs",
                    done.removed.len()
                );
            }
            for p in &done.removed {
                debug!(log, "run folder of a killed run removed"; "folder" => %p.display());
            }
            for e in &done.failed {
                warn!(log, "run folder of a killed run: {e}");
            }
        }
        Err(e) => debug!(log, "run folders of killed runs not looked for: {e}"),
    }
}
