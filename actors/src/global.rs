//! GlobalActor: the GLOBAL pseudo-test (SPEC §2): its run folder is made like a test's (the
//! same [`run_folder::prepare`]), its before.sh runs once before the first test and its
//! after.sh once after the last, then the folder goes (or stays as evidence when a script
//! failed, `--keep`). What its before.sh starts in the background (a DUT-side `sipp -bg`)
//! serves the whole run: it is stopped after the after.sh. A first interrupt stops a running
//! before.sh; its after.sh still runs, in its folder. In `--dry-run` the folder is only
//! rendered; no script runs. Started by the Supervisor only when the suite has a GLOBAL folder.
//!
//! Its state lines are the original's: PREPARING, then READY (not shown) or NOT READY around
//! before.sh; CLEANING, then CLEAN (not shown) or DIRTY around after.sh; also in a dry run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::{Actor, ActorFutureExt, Context, Handler, ResponseActFuture, WrapFuture};
use slog::{o, warn, Logger};

use crate::core::plan::{
    random_run_id_number, GlobalPlan, Render, RenderContext, RunConfig, RunId, TestName,
};
use crate::core::state::StateName;
use crate::events::{Event, EventBus, TestStateEvent};
use crate::messages::{Abort, GlobalAfter, GlobalBefore, GlobalCleanup, GlobalReply, Kill};
use crate::run_folder::{self, RunFolder};
use crate::sys::detached;
use crate::sys::keep::{Fate, Keeper};
use crate::sys::marks::Mark;
use crate::sys::script::{self, KillSwitch, Leftovers, Role};

/// The name GLOBAL's run folder and lines go by.
pub const GLOBAL_NAME: &str = "GLOBAL";

pub struct GlobalActor {
    plan: GlobalPlan,
    config: Arc<RunConfig>,
    /// The front end's templates (GLOBAL's files are rendered like a test's).
    render: Arc<dyn Render>,
    /// Which run folders stay; shared with the test runs.
    keeper: Arc<Keeper>,
    /// The GLOBAL lines of the terminal and the reports.
    bus: EventBus,
    /// The general log, with `test => GLOBAL`.
    log: Logger,
    /// Fired by interrupts: the first stops a running before.sh, a second kills a running
    /// script at once.
    kill: KillSwitch,
    /// Its run id (drawn again if its folder exists already) and run id number.
    run_id: RunId,
    run_id_number: String,
    /// Between before.sh and after.sh: the run folder and its log.
    folder: Option<RunFolder>,
    /// What before.sh left running (helpers for the whole run), stopped after after.sh.
    leftovers: Option<Leftovers>,
    /// Where its folder is (also after it went), and what became of it.
    path: Option<PathBuf>,
    fate: Option<Fate>,
}

impl GlobalActor {
    pub fn new(
        plan: GlobalPlan,
        config: Arc<RunConfig>,
        render: Arc<dyn Render>,
        keeper: Arc<Keeper>,
        bus: EventBus,
        log: &Logger,
    ) -> Self {
        GlobalActor {
            plan,
            config,
            render,
            keeper,
            bus,
            log: log.new(o!("test" => GLOBAL_NAME)),
            kill: KillSwitch::new(),
            run_id: RunId::random(),
            run_id_number: random_run_id_number(),
            folder: None,
            leftovers: None,
            path: None,
            fate: None,
        }
    }

    /// Tells the terminal and the reports GLOBAL's new state; a failure once, on its line (the
    /// general log keeps it too).
    fn emit(&self, state: StateName, took: Option<Duration>, reason: Option<String>) {
        if let Some(r) = &reason {
            warn!(self.log, "GLOBAL {state}: {r}");
        }
        self.bus.emit(Event::Global(TestStateEvent {
            index: 0,
            attempt: 0,
            name: TestName(GLOBAL_NAME.into()),
            run_id: self.run_id.clone(),
            run_id_number: self.run_id_number.clone(),
            state,
            at: SystemTime::now(),
            took,
            cps: None,
            sipp_time: None,
            stats: None,
            reason,
            run_folder: self.path.clone(),
            pcap: None,
            folder_fate: if matches!(
                state,
                StateName::NotReady | StateName::Clean | StateName::Dirty
            ) {
                self.fate
            } else {
                None
            },
            evidence: None,
        }));
    }
}

impl Actor for GlobalActor {
    type Context = Context<Self>;
}

/// How GLOBAL's pre-run ended.
enum BeforeEnd {
    /// Its folder is ready (and what before.sh left running).
    Ready(RunFolder, Option<Leftovers>),
    /// A signal stopped before.sh halfway: its after.sh is owed and runs in the folder.
    Stopped(RunFolder, Leftovers, String),
    /// Why not, and the folder with its fate when it was made.
    NotReady(String, Option<(PathBuf, Fate)>),
}

impl Handler<GlobalBefore> for GlobalActor {
    type Result = ResponseActFuture<Self, GlobalReply>;

    fn handle(&mut self, _: GlobalBefore, _: &mut Context<Self>) -> Self::Result {
        self.emit(StateName::Preparing, None, None);
        let started = Instant::now();
        let source = self.plan.folder.clone();
        let config = self.config.clone();
        let render = self.render.clone();
        let keeper = self.keeper.clone();
        let log = self.log.clone();
        let kill = self.kill.clone();
        let ctx = RenderContext {
            test_name: TestName(GLOBAL_NAME.into()),
            run_id: self.run_id.clone(),
            run_id_number: self.run_id_number.clone(),
            dut: config.dut,
            ua_hosts: Default::default(),
        };
        let work = async move {
            let blocking_config = config.clone();
            let blocking_keeper = keeper.clone();
            let blocking_kill = kill.clone();
            let given_up = kill.clone();
            // On a thread the process's end does not wait for; a second interrupt stops
            // waiting for it (see test_actor).
            let made = detached::run_until(
                "GLOBAL pre-run",
                move || {
                    run_folder::prepare(
                        &source,
                        &ctx.test_name.clone(),
                        &blocking_config,
                        &blocking_keeper,
                        render.as_ref(),
                        ctx,
                        &log,
                        &|| blocking_kill.is_interrupted(),
                    )
                    .map_err(|f| (f.reason, f.folder))
                },
                async move { given_up.killed().await },
            )
            .await
            .unwrap_or_else(|e| Err((format!("GLOBAL pre-run: {e}"), None)));
            let made = match made {
                Ok(m) => m,
                Err((reason, folder)) => return BeforeEnd::NotReady(reason, folder),
            };
            if config.dry_run {
                return BeforeEnd::Ready(made, None);
            }
            let mut left = None;
            let ran = match Mark::for_run(&made.run_id.0) {
                Ok(mark) => {
                    let left = left.insert(Leftovers::new(mark));
                    script::run_script(
                        Role::Before,
                        &made.path,
                        config.script_timeout,
                        &made.log,
                        &kill,
                        left,
                    )
                    .await
                    .map_err(|e| e.to_string())
                }
                Err(e) => Err(format!("mark before.sh with this run: {e}")),
            };
            match (ran, left) {
                (Ok(_), left) => BeforeEnd::Ready(made, left),
                // Its after.sh restores what it began, in its folder (the dispatcher owes it
                // then).
                (Err(e), Some(left)) if kill.is_interrupted() && !kill.is_killed() => {
                    BeforeEnd::Stopped(made, left, e)
                }
                (Err(e), _) => {
                    // Evidence of why, unless Ctrl+C stopped it.
                    let failed = !kill.is_interrupted();
                    let path = made.path.clone();
                    let fate = tokio::task::spawn_blocking(move || {
                        run_folder::settle(&made.path, &keeper, failed, &made.log)
                    })
                    .await
                    .unwrap_or(Fate::Removed);
                    BeforeEnd::NotReady(e, Some((path, fate)))
                }
            }
        };
        Box::pin(work.into_actor(self).map(move |end, act, _| {
            let took = Some(started.elapsed());
            match end {
                BeforeEnd::Ready(made, left) => {
                    act.run_id = made.run_id.clone();
                    act.path = Some(made.path.clone());
                    act.folder = Some(made);
                    act.leftovers = left;
                    act.emit(StateName::Ready, took, None);
                    GlobalReply { ok: true }
                }
                BeforeEnd::Stopped(made, left, reason) => {
                    act.run_id = made.run_id.clone();
                    act.path = Some(made.path.clone());
                    act.folder = Some(made);
                    act.leftovers = Some(left);
                    act.emit(StateName::NotReady, took, Some(reason));
                    GlobalReply { ok: false }
                }
                BeforeEnd::NotReady(reason, folder) => {
                    if let Some((path, fate)) = folder {
                        act.path = Some(path);
                        act.fate = Some(fate);
                    }
                    act.emit(StateName::NotReady, took, Some(reason));
                    GlobalReply { ok: false }
                }
            }
        }))
    }
}

impl Handler<GlobalAfter> for GlobalActor {
    type Result = ResponseActFuture<Self, GlobalReply>;

    fn handle(&mut self, _: GlobalAfter, _: &mut Context<Self>) -> Self::Result {
        let Some(made) = self.folder.take() else {
            return Box::pin(actix::fut::ready(GlobalReply { ok: true }));
        };
        self.emit(StateName::Cleaning, None, None);
        let started = Instant::now();
        let config = self.config.clone();
        let keeper = self.keeper.clone();
        let kill = self.kill.clone();
        let left = self.leftovers.take();
        // Every step tried, as a test's post-run: after.sh, then what before.sh left running,
        // then the folder (kept when after.sh failed); DIRTY when either went wrong.
        let work = async move {
            let mut problems = Vec::new();
            if let (false, Some(mut left)) = (config.dry_run, left) {
                if let Err(e) = script::run_script(
                    Role::After,
                    &made.path,
                    config.script_timeout,
                    &made.log,
                    &kill,
                    &mut left,
                )
                .await
                {
                    problems.push(e.to_string());
                }
            }
            let failed = !problems.is_empty() && !kill.is_killed();
            let log = made.log.clone();
            let settled =
                tokio::task::spawn_blocking(move || keeper.settle(&made.path, failed)).await;
            let fate = match settled {
                Ok(s) => {
                    if let Some(w) = &s.warning {
                        warn!(log, "{w}");
                    }
                    problems.extend(s.problem);
                    Some(s.fate)
                }
                Err(e) => {
                    problems.push(format!("settle the GLOBAL run folder: {e}"));
                    None
                }
            };
            (problems, fate)
        };
        Box::pin(work.into_actor(self).map(move |(problems, fate), act, _| {
            act.fate = fate;
            let took = Some(started.elapsed());
            if problems.is_empty() {
                act.emit(StateName::Clean, took, None);
                GlobalReply { ok: true }
            } else {
                act.emit(StateName::Dirty, took, Some(problems.join("; ")));
                GlobalReply { ok: false }
            }
        }))
    }
}

impl Handler<GlobalCleanup> for GlobalActor {
    type Result = ResponseActFuture<Self, ()>;

    /// The run ends without GLOBAL after.sh (a second signal): what before.sh left running
    /// goes, and the folder (removed: the user stopped the run).
    fn handle(&mut self, _: GlobalCleanup, _: &mut Context<Self>) -> Self::Result {
        let made = self.folder.take();
        let left = self.leftovers.take();
        let keeper = self.keeper.clone();
        let kill = self.kill.clone();
        let log = self.log.clone();
        Box::pin(
            async move {
                if let Some(mut left) = left {
                    left.stop(&log, &kill).await;
                }
                if let Some(made) = made {
                    let _ =
                        tokio::task::spawn_blocking(move || keeper.settle(&made.path, false)).await;
                }
            }
            .into_actor(self),
        )
    }
}

impl Handler<Abort> for GlobalActor {
    type Result = ();

    /// A running before.sh stops (TERM, grace, KILL); a running after.sh goes on.
    fn handle(&mut self, _: Abort, _: &mut Context<Self>) {
        self.kill.interrupt();
    }
}

impl Handler<Kill> for GlobalActor {
    type Result = ();

    fn handle(&mut self, _: Kill, _: &mut Context<Self>) {
        self.kill.kill();
    }
}
