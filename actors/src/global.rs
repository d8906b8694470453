//! GlobalActor: the GLOBAL pseudo-test (SPEC §2): its run folder is made like a test's (the
//! same [`run_folder::prepare`]), its before.sh runs once before the first test and its
//! after.sh once after the last, then the folder goes. In `--dry-run` the folder is only
//! rendered and removed; no script runs. Started by the Supervisor only when the suite has a
//! GLOBAL folder.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorFutureExt, Context, Handler, ResponseActFuture, WrapFuture};
use slog::{error, info, o, warn, Logger};

use crate::core::plan::{
    random_run_id_number, GlobalPlan, Render, RenderContext, RunConfig, RunId, TestName,
};
use crate::events::{Event, EventBus, GlobalScript};
use crate::messages::{GlobalAfter, GlobalBefore, GlobalReply, Kill};
use crate::run_folder::{self, RunFolder};
use crate::sys::script::{self, KillSwitch};

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
    /// Fired by a second interrupt: kills a running script at once.
    kill: KillSwitch,
    /// Between before.sh and after.sh: the run folder and its log.
    folder: Option<RunFolder>,
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
            .unwrap_or_else(|e| Err(format!("GLOBAL pre-run panicked: {e}")))?;
            if config.dry_run {
                return Ok(made);
            }
            match script::run_script(
                "before.sh",
                &made.path,
                config.script_timeout,
                &made.log,
                &kill,
            )
            .await
            {
                Ok(_) => Ok(made),
                Err(e) => {
                    remove_folder(made.path, config, made.log).await;
                    Err(e.to_string())
                }
            }
        };
        Box::pin(work.into_actor(self).map(move |res, act, _| {
            let error = match res {
                Ok(made) => {
                    act.folder = Some(made);
                    None
                }
                Err(e) => Some(e),
            };
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
        let work = async move {
            let res = if config.dry_run {
                Ok(())
            } else {
                script::run_script(
                    "after.sh",
                    &made.path,
                    config.script_timeout,
                    &made.log,
                    &kill,
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
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
