//! GlobalActor: the GLOBAL pseudo-test (SPEC §2): its run folder is made like a test's (the
//! same [`run_folder::prepare`]), its before.sh runs once before the first test and its
//! after.sh once after the last, then the folder goes. What its before.sh starts in the
//! background (a DUT-side `sipp -bg`) serves the whole run: it is stopped after the after.sh.
//! A first interrupt stops a running before.sh (its after.sh still runs). In `--dry-run` the
//! folder is only rendered and removed; no script runs. Started by the Supervisor only when the
//! suite has a GLOBAL folder.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorFutureExt, Context, Handler, ResponseActFuture, WrapFuture};
use slog::{error, info, o, warn, Logger};

use crate::core::plan::{
    random_run_id_number, GlobalPlan, Render, RenderContext, RunConfig, RunId, TestName,
};
use crate::events::{Event, EventBus, GlobalScript};
use crate::messages::{Abort, GlobalAfter, GlobalBefore, GlobalCleanup, GlobalReply, Kill};
use crate::run_folder::{self, RunFolder};
use crate::sys::marks::Mark;
use crate::sys::script::{self, KillSwitch, Leftovers, Role};

/// The name GLOBAL's run folder and log lines go by.
pub const GLOBAL_NAME: &str = "GLOBAL";

pub struct GlobalActor {
    plan: GlobalPlan,
    config: Arc<RunConfig>,
    /// The front end's templates (GLOBAL's files are rendered like a test's).
    render: Arc<dyn Render>,
    /// The GLOBAL lines of the terminal and the reports.
    bus: EventBus,
    /// The general log, with `test => GLOBAL`.
    log: Logger,
    /// Fired by interrupts: the first stops a running before.sh, a second kills a running
    /// script at once.
    kill: KillSwitch,
    /// Between before.sh and after.sh: the run folder and its log.
    folder: Option<RunFolder>,
    /// What before.sh left running (helpers for the whole run), stopped after after.sh.
    leftovers: Option<Leftovers>,
}

impl GlobalActor {
    pub fn new(
        plan: GlobalPlan,
        config: Arc<RunConfig>,
        render: Arc<dyn Render>,
        bus: EventBus,
        log: &Logger,
    ) -> Self {
        GlobalActor {
            plan,
            config,
            render,
            bus,
            log: log.new(o!("test" => GLOBAL_NAME)),
            kill: KillSwitch::new(),
            folder: None,
            leftovers: None,
        }
    }

    /// Tells the terminal and the reports how a script went (not in `--dry-run`, where no
    /// script runs, unless the folder itself failed).
    fn report(&self, script: GlobalScript, error: Option<String>, took: Duration) {
        if let Some(e) = &error {
            error!(self.log, "GLOBAL {}: {e}", script.file_name());
        }
        if !self.config.dry_run || error.is_some() {
            self.bus.emit(Event::Global {
                script,
                error,
                took,
            });
        }
    }
}

impl Actor for GlobalActor {
    type Context = Context<Self>;
}

impl Handler<GlobalBefore> for GlobalActor {
    type Result = ResponseActFuture<Self, GlobalReply>;

    fn handle(&mut self, _: GlobalBefore, _: &mut Context<Self>) -> Self::Result {
        let started = Instant::now();
        let source = self.plan.folder.clone();
        let config = self.config.clone();
        let render = self.render.clone();
        let log = self.log.clone();
        let kill = self.kill.clone();
        let work = async move {
            let ctx = RenderContext {
                test_name: TestName(GLOBAL_NAME.into()),
                run_id: RunId::random(),
                run_id_number: random_run_id_number(),
                dut: config.dut,
                ua_hosts: Default::default(),
            };
            let blocking_config = config.clone();
            let made = tokio::task::spawn_blocking(move || {
                run_folder::prepare(
                    &source,
                    &ctx.test_name.clone(),
                    &blocking_config,
                    render.as_ref(),
                    ctx,
                    &log,
                )
                .map_err(|f| f.reason)
            })
            .await
            .unwrap_or_else(|e| Err(format!("GLOBAL pre-run panicked: {e}")));
            let made = match made {
                Ok(m) => m,
                Err(e) => return (None, None, Err(e)),
            };
            if config.dry_run {
                return (Some(made), None, Ok(()));
            }
            let mut left = match Mark::for_run(&made.run_id.0) {
                Ok(mark) => Leftovers::new(mark),
                Err(e) => {
                    remove_folder(made.path, config, made.log).await;
                    return (
                        None,
                        None,
                        Err(format!("mark before.sh with this run: {e}")),
                    );
                }
            };
            let res = script::run_script(
                Role::Before,
                &made.path,
                config.script_timeout,
                &made.log,
                &kill,
                &mut left,
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
            match res {
                Ok(()) => (Some(made), Some(left), Ok(())),
                // Stopped by a signal halfway: its after.sh restores what it began, in its
                // folder (the dispatcher owes it then).
                Err(e) if kill.is_interrupted() => (Some(made), Some(left), Err(e)),
                Err(e) => {
                    remove_folder(made.path, config, made.log).await;
                    (None, None, Err(e))
                }
            }
        };
        Box::pin(work.into_actor(self).map(move |(made, left, res), act, _| {
            act.folder = made;
            act.leftovers = left;
            let error = res.err();
            let ok = error.is_none();
            act.report(GlobalScript::Before, error, started.elapsed());
            GlobalReply { ok }
        }))
    }
}

impl Handler<GlobalAfter> for GlobalActor {
    type Result = ResponseActFuture<Self, GlobalReply>;

    fn handle(&mut self, _: GlobalAfter, _: &mut Context<Self>) -> Self::Result {
        let Some(made) = self.folder.take() else {
            return Box::pin(actix::fut::ready(GlobalReply { ok: true }));
        };
        let started = Instant::now();
        let config = self.config.clone();
        let kill = self.kill.clone();
        let left = self.leftovers.take();
        let work = async move {
            let res = match left {
                // Then what before.sh left running goes (and what after.sh leaves).
                Some(mut left) if !config.dry_run => script::run_script(
                    Role::After,
                    &made.path,
                    config.script_timeout,
                    &made.log,
                    &kill,
                    &mut left,
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
                _ => Ok(()),
            };
            remove_folder(made.path, config, made.log).await;
            res
        };
        Box::pin(work.into_actor(self).map(move |res, act, _| {
            let error = res.err();
            let ok = error.is_none();
            if !act.config.dry_run {
                act.report(GlobalScript::After, error, started.elapsed());
            }
            GlobalReply { ok }
        }))
    }
}

impl Handler<GlobalCleanup> for GlobalActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: GlobalCleanup, _: &mut Context<Self>) -> Self::Result {
        let made = self.folder.take();
        let left = self.leftovers.take();
        let config = self.config.clone();
        let kill = self.kill.clone();
        let log = self.log.clone();
        Box::pin(
            async move {
                if let Some(mut left) = left {
                    left.stop(&log, &kill).await;
                }
                if let Some(made) = made {
                    remove_folder(made.path, config, made.log).await;
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

/// Removes GLOBAL's run folder (unless `--leave-temp`) on the blocking pool.
async fn remove_folder(path: PathBuf, config: Arc<RunConfig>, log: Logger) {
    if config.leave_temp {
        info!(log, "GLOBAL run folder left at {}", path.display());
        return;
    }
    let blocking_log = log.clone();
    let removed = tokio::task::spawn_blocking(move || {
        run_folder::remove_unless_kept(&path, &config, &blocking_log);
    })
    .await;
    if let Err(e) = removed {
        warn!(log, "remove the GLOBAL run folder: {e}");
    }
}
