//! TestActor: one run of one test. It owns the test's [`Lifecycle`] (whose READY-and-later
//! states hold what pre-run made: [`Held`]), its log and its scripts, and answers the
//! Supervisor's Prepare / Run / Cleanup with the outcome. It asks its [`Collaborators`] (given
//! as recipients: the seam tests fill with stand-ins) for what the run needs, tells the
//! Supervisor what it holds whenever that changes ([`Holding`]), and gives everything back in
//! post-run. Work that blocks (files) runs on the blocking pool; the state transitions happen
//! in the handlers, when the work's result comes back, never across an `.await`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::{Actor, ActorFutureExt, Context, Handler, Recipient, ResponseActFuture, WrapFuture};
use slog::{debug, error, info, o, warn, Logger};

use crate::core::plan::{
    Attachment, FrontEnd, Keep, LaunchPlan, RenderContext, RunConfig, RunEvidence, RunId, TestPlan,
    UaName,
};
use crate::core::scheduler::ScheduledRun;
use crate::core::state::{Lifecycle, StateName, Step};
use crate::dns::zones::RunZone;
use crate::events::{format_duration, DryRunPlan, Event, EventBus, TestStateEvent};
use crate::messages::{
    Abort, AddRecords, Cleanup, CleanupReply, Holding, Holds, Kill, Lease, Prepare, PrepareReply,
    Register, Release, RemoveRecords, Run, RunReply, RunSipp, StopSipp, Unregister,
};
use crate::run_folder;
use crate::sipp::stats::SippStats;
use crate::sipp::SippOutcome;
use crate::sniffer::pcap_name;
use crate::sys::detached;
use crate::sys::keep::{Fate, Keeper};
use crate::sys::marks::Mark;
use crate::sys::script::{self, KillSwitch, Leftovers, Role};

/// Who a TestActor is: the run the Supervisor scheduled in a slot, and the ids it drew for it
/// (so that the Supervisor can name the run even if its actor dies).
#[derive(Debug, Clone)]
pub struct Identity {
    pub slot: usize,
    pub run: ScheduledRun,
    pub plan: Arc<TestPlan>,
    /// The run id asked for (the addresses are leased under it; the folder may get another
    /// when this one's exists already).
    pub run_id: RunId,
    /// 12 digits, `test.run_id_number` in templates.
    pub run_id_number: String,
}

/// The DnsActor's part, for a run with `dns.txt` (real runs).
#[derive(Clone)]
pub struct DnsRecipients {
    pub add: Recipient<AddRecords>,
    pub remove: Recipient<RemoveRecords>,
}

/// The SnifferActor's part (real runs without `--no-pcap`).
#[derive(Clone)]
pub struct CaptureRecipients {
    pub register: Recipient<Register>,
    pub unregister: Recipient<Unregister>,
}

/// The SIPp runner the Supervisor hands each TestActor.
#[derive(Clone)]
pub struct SippRecipients {
    pub run: Recipient<RunSipp>,
    pub stop: Recipient<StopSipp>,
}

/// Whom a TestActor asks for what its run needs, and whom it tells what it holds.
#[derive(Clone)]
pub struct Collaborators {
    /// The NetActor: addresses and their link.
    pub lease: Recipient<Lease>,
    pub release: Recipient<Release>,
    pub dns: Option<DnsRecipients>,
    pub capture: Option<CaptureRecipients>,
    pub sipp: SippRecipients,
    /// The Supervisor.
    pub holding: Recipient<Holding>,
}

/// What a READY run holds, from pre-run until post-run gives it back: it lives in the
/// [`Lifecycle`]'s READY, DRY-RUNNING, STARTING and SUCCESS / FAIL states.
struct Held {
    /// The run id the folder, the DNS records and the capture go by.
    run_id: RunId,
    folder: PathBuf,
    /// The run's own log (`sipplauncher.log` in its folder, and the general log).
    log: Logger,
    /// Each instance's address (leased under the lease id).
    hosts: BTreeMap<UaName, Ipv4Addr>,
    /// The SIPp command lines.
    launch: LaunchPlan,
    /// Its `dns.txt` records are served.
    dns: bool,
    /// Its packets are captured, for this pcap.
    pcap: Option<PathBuf>,
    /// What its before.sh left running (the test's helpers), stopped once after.sh has run.
    helpers: Option<Leftovers>,
    /// Neither before.sh nor after.sh was in the run folder once it was prepared: post-run
    /// need not look for after.sh again (nothing of the test ran in the folder that could
    /// have written one but SIPp).
    no_scripts: bool,
}

/// Why pre-run failed; whether it is the tool's own fault (the run stops) or the test's.
struct PrepareFailure {
    reason: String,
    fatal: bool,
    /// The run's own log, when it was made: the NOT READY line goes there too.
    test_log: Option<Logger>,
    /// The run folder, when it was made, and what became of it (kept as evidence or removed).
    folder: Option<(PathBuf, Fate)>,
}

impl PrepareFailure {
    fn new(reason: String, fatal: bool) -> Self {
        PrepareFailure {
            reason,
            fatal,
            test_log: None,
            folder: None,
        }
    }
}

pub struct TestActor {
    id: Identity,
    config: Arc<RunConfig>,
    front: FrontEnd,
    with: Collaborators,
    bus: EventBus,
    /// Which run folders stay once their test is over; shared by the run.
    keeper: Arc<Keeper>,
    /// The general log, with this run's keys.
    log: Logger,
    /// Where the run stands, with what it holds there.
    life: Lifecycle<Held>,
    /// The run's own log once its folder exists (it stays for the last lines); else `log`.
    test_log: Logger,
    /// The run id the events name (the folder's, once made).
    run_id: RunId,
    /// For the reports, also once the folder is gone: where it was, its pcap, its fate.
    folder: Option<PathBuf>,
    pcap: Option<PathBuf>,
    folder_fate: Option<Fate>,
    /// A signal stopped its run (or its scripts): a failure that is no evidence of a fault.
    cut_short: bool,
    /// When the current step began (pre-run, run or post-run), for "took".
    step_started: Instant,
    /// Fired by a second interrupt: kills a running script at once.
    kill: KillSwitch,
    /// Of the run, for the SUCCESS/FAIL line.
    cps: Option<f64>,
    sipp_time: Option<Duration>,
    stats: Option<SippStats>,
    /// Why the run failed, for the front end's look at its evidence in post-run.
    fail_reason: Option<String>,
    /// What the front end made of the run's evidence, for its last event.
    evidence: Option<Attachment>,
}

impl TestActor {
    pub fn new(
        id: Identity,
        config: Arc<RunConfig>,
        front: FrontEnd,
        with: Collaborators,
        bus: EventBus,
        keeper: Arc<Keeper>,
        log: &Logger,
    ) -> Self {
        let log = log.new(o!("test" => id.plan.name.0.clone(), "run_id" => id.run_id.0.clone()));
        TestActor {
            run_id: id.run_id.clone(),
            id,
            config,
            front,
            with,
            bus,
            keeper,
            test_log: log.clone(),
            log,
            life: Lifecycle::default(),
            folder: None,
            pcap: None,
            folder_fate: None,
            cut_short: false,
            step_started: Instant::now(),
            kill: KillSwitch::new(),
            cps: None,
            sipp_time: None,
            stats: None,
            fail_reason: None,
            evidence: None,
        }
    }

    /// Applies a step that moves nothing and reports the new state. A refused step is a bug
    /// in the caller: it is logged and the state stays.
    fn step(&mut self, step: Step, reason: Option<String>) -> bool {
        match self.life.step(step) {
            Ok(state) => {
                self.announce(state, reason);
                true
            }
            Err(e) => {
                error!(self.log, "{e}");
                false
            }
        }
    }

    /// Tells the terminal, the reports and the run's log about the state the run is in now.
    fn announce(&mut self, state: StateName, reason: Option<String>) {
        let took = matches!(
            state,
            StateName::NotReady
                | StateName::Success
                | StateName::Fail
                | StateName::Clean
                | StateName::Dirty
        )
        .then(|| self.step_started.elapsed());
        let took_s = took
            .map(|t| format!(" (took {})", format_duration(t)))
            .unwrap_or_default();
        match &reason {
            Some(r) if state.is_error() => warn!(self.test_log, "state {state}{took_s}: {r}"),
            _ => info!(self.test_log, "state {state}{took_s}"),
        }
        if state == StateName::Fail {
            self.fail_reason.clone_from(&reason);
        }
        let last = matches!(state, StateName::Clean | StateName::Dirty);
        self.bus.emit(Event::Test(TestStateEvent {
            index: self.id.run.index,
            attempt: self.id.run.attempt,
            name: self.id.plan.name.clone(),
            run_id: self.run_id.clone(),
            run_id_number: self.id.run_id_number.clone(),
            state,
            at: SystemTime::now(),
            took,
            cps: if state.is_run_end() { self.cps } else { None },
            sipp_time: if state.is_run_end() {
                self.sipp_time
            } else {
                None
            },
            stats: if state.is_run_end() { self.stats } else { None },
            evidence: if last { self.evidence.take() } else { None },
            reason,
            run_folder: self.folder.clone(),
            pcap: self.pcap.clone(),
            // Known on the run's last event (a NOT READY after STARTING still owes cleanup:
            // none yet then).
            folder_fate: if last || state == StateName::NotReady {
                self.folder_fate
            } else {
                None
            },
        }));
        if matches!(
            state,
            StateName::Preparing
                | StateName::Cleaning
                | StateName::DryRunning
                | StateName::Starting
        ) {
            self.step_started = Instant::now();
        }
    }
}

impl Actor for TestActor {
    type Context = Context<Self>;
}

/// What the blocking part of pre-run made.
struct Prepared {
    run_id: RunId,
    folder: PathBuf,
    test_log: Logger,
    launch: LaunchPlan,
    /// The rendered `dns.txt`, parsed and grouped for the DNS server.
    zone: Option<RunZone>,
    /// Which of before.sh and after.sh are in the folder (`true` when it could not be told:
    /// the script's run looks again and says why).
    scripts: ScriptsFound,
}

/// Which scripts the prepared folder holds, looked for on the preparation's thread rather
/// than in a blocking job of their own at each script's turn (two fewer per test).
#[derive(Debug, Clone, Copy)]
struct ScriptsFound {
    before: bool,
    after: bool,
}

impl ScriptsFound {
    fn in_folder(folder: &Path) -> Self {
        let found = |role: Role| folder.join(role.file_name()).try_exists().unwrap_or(true);
        ScriptsFound {
            before: found(Role::Before),
            after: found(Role::After),
        }
    }
}

/// The blocking part of pre-run: the run folder (see [`run_folder::prepare`]), then the SIPp
/// command lines and the DNS records. Undoes what it did on failure.
fn prepare_folder(
    plan: &TestPlan,
    config: &RunConfig,
    keeper: &Keeper,
    front: &FrontEnd,
    ctx: RenderContext,
    log: &Logger,
    kill: &KillSwitch,
) -> Result<Prepared, PrepareFailure> {
    // An interrupt gives the copy and the rendering up: nothing of this run will run.
    let interrupted = || kill.is_interrupted();
    let made = run_folder::prepare(
        &plan.folder,
        &plan.name,
        config,
        keeper,
        front.render.as_ref(),
        ctx.clone(),
        log,
        &interrupted,
    )
    .map_err(|f| PrepareFailure {
        reason: f.reason,
        fatal: f.fatal,
        test_log: f.log,
        folder: f.folder,
    })?;
    // NOT READY: the folder stays as evidence (`--keep`), unless a signal cut the pre-run
    // short (Ctrl+C leaves nothing behind, as for a before.sh it stops).
    let undo = |reason: String| {
        let fate = run_folder::settle(&made.path, keeper, !interrupted(), &made.log);
        PrepareFailure {
            reason,
            fatal: false,
            test_log: Some(made.log.clone()),
            folder: Some((made.path.clone(), fate)),
        }
    };
    let ctx = RenderContext {
        run_id: made.run_id.clone(),
        ..ctx
    };
    let launch = front
        .launch
        .launch_plan(plan, &made.path, &ctx)
        .map_err(undo)?;
    // A dns.txt of many records is read and grouped in a while: the first signal does not wait
    // for the end (the test would not run anyway). Grouped here, off the actor threads: adding
    // it to the server is then a merge.
    let zone = match front.zone.records(&made.path, &interrupted).map_err(undo)? {
        None => None,
        Some(records) => {
            let zone = RunZone::new_until(records, &interrupted)
                .ok_or_else(|| undo("interrupted while grouping the dns.txt records".into()))?;
            crate::dns::log_zone(&made.log, &made.path.join("dns.txt"), &zone);
            Some(zone)
        }
    };
    let scripts = ScriptsFound::in_folder(&made.path);
    Ok(Prepared {
        run_id: made.run_id,
        folder: made.path,
        test_log: made.log,
        launch,
        zone,
        scripts,
    })
}

/// Pre-run (SPEC §4 steps 1-4), off the actor: lease, run folder, DNS records, capture,
/// before.sh; on a failure, what was done is undone in reverse (capture, records, link; the
/// folder last, kept as evidence or removed). Tells the Supervisor what it holds at each step.
struct PreRun {
    plan: Arc<TestPlan>,
    config: Arc<RunConfig>,
    front: FrontEnd,
    keeper: Arc<Keeper>,
    with: Collaborators,
    slot: usize,
    lease: RunId,
    ctx: RenderContext,
    log: Logger,
    kill: KillSwitch,
    holds: Holds,
}

impl PreRun {
    fn tell(&self) {
        self.with.holding.do_send(Holding {
            slot: self.slot,
            holds: self.holds.clone(),
        });
    }

    async fn run(mut self) -> Result<Held, PrepareFailure> {
        let leased = self
            .with
            .lease
            .send(Lease {
                run_id: self.lease.clone(),
                uas: self.plan.uas.clone(),
            })
            .await;
        let hosts = match leased {
            Ok(Ok(hosts)) => hosts,
            failed => {
                let failure = match failed {
                    Ok(Err(e)) => PrepareFailure::new(e.to_string(), e.is_fatal()),
                    _ => PrepareFailure::new("address pool gone".into(), true),
                };
                // A refused lease gives back whatever part of it was made.
                self.release().await;
                return Err(failure);
            }
        };
        self.holds.lease = Some(self.lease.clone());
        self.tell();

        let ctx = RenderContext {
            ua_hosts: hosts.clone(),
            ..self.ctx.clone()
        };
        let (plan, config, keeper, front, log, kill) = (
            self.plan.clone(),
            self.config.clone(),
            self.keeper.clone(),
            self.front.clone(),
            self.log.clone(),
            self.kill.clone(),
        );
        // On a thread the process's end does not wait for; a second interrupt stops waiting
        // for it (a folder it still makes is a dead run's for the next run to remove).
        let kill_given_up = self.kill.clone();
        let prepared = detached::run_until(
            "pre-run",
            move || prepare_folder(&plan, &config, &keeper, &front, ctx, &log, &kill),
            async move { kill_given_up.killed().await },
        )
        .await
        .unwrap_or_else(|e| {
            let given_up = matches!(e, detached::DetachedError::GivenUp);
            Err(PrepareFailure::new(format!("pre-run: {e}"), !given_up))
        });
        let mut prepared = match prepared {
            Ok(p) => p,
            Err(f) => {
                self.release().await;
                return Err(f);
            }
        };
        self.holds.folder = Some((prepared.run_id.clone(), prepared.folder.clone()));
        self.tell();
        let mut held = Held {
            run_id: prepared.run_id.clone(),
            folder: prepared.folder.clone(),
            log: prepared.test_log.clone(),
            hosts,
            launch: std::mem::take(&mut prepared.launch),
            dns: false,
            pcap: None,
            helpers: None,
            no_scripts: !prepared.scripts.before && !prepared.scripts.after,
        };

        if let (Some(zone), Some(dns)) = (prepared.zone.take(), self.with.dns.clone()) {
            let added = dns
                .add
                .send(AddRecords {
                    run_id: held.run_id.clone(),
                    test: self.plan.name.clone(),
                    zone,
                    log: held.log.clone(),
                    stop: self.kill.clone(),
                })
                .await;
            let failure = match added {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some((e.to_string(), e.is_fatal())),
                Err(e) => Some((format!("dns server gone: {e}"), true)),
            };
            if let Some((reason, fatal)) = failure {
                return Err(self.roll_back(held, reason, fatal).await);
            }
            held.dns = true;
            self.holds.dns = true;
            self.tell();
        }
        // The capture starts before before.sh (it may talk to the DUT) and SIPp: the
        // acknowledgement means every packet from now on is filed.
        if let Some(capture) = self.with.capture.clone() {
            let pcap = held.folder.join(pcap_name(&held.run_id));
            let registered = capture
                .register
                .send(Register {
                    run_id: held.run_id.clone(),
                    addrs: held.hosts.values().copied().collect(),
                    pcap: pcap.clone(),
                })
                .await;
            let failure = match registered {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(format!("capture gone: {e}")),
            };
            if let Some(reason) = failure {
                return Err(self.roll_back(held, reason, true).await);
            }
            held.pcap = Some(pcap);
            self.holds.capture = true;
            self.tell();
        }
        if !self.config.dry_run {
            let mut left = match Mark::for_run(&held.run_id.0) {
                Ok(mark) => Leftovers::new(mark),
                Err(e) => {
                    let reason = format!("mark before.sh with this run: {e}");
                    return Err(self.roll_back(held, reason, false).await);
                }
            };
            self.holds.scripts = Some(left.mark().clone());
            self.tell();
            // No before.sh: run_script would find none and do nothing else.
            let ran = if prepared.scripts.before {
                script::run_script(
                    Role::Before,
                    &held.folder,
                    self.config.script_timeout,
                    &held.log,
                    &self.kill,
                    &mut left,
                )
                .await
                .map(drop)
            } else {
                Ok(())
            };
            if let Err(e) = ran {
                // What it started is stopped already.
                self.holds.scripts = None;
                return Err(self.roll_back(held, e.to_string(), false).await);
            }
            held.helpers = Some(left);
        }
        Ok(held)
    }

    /// Gives back the addresses (also those of a refused lease).
    async fn release(&mut self) {
        let _ = self
            .with
            .release
            .send(Release {
                run_id: self.lease.clone(),
            })
            .await;
        self.holds.lease = None;
        self.tell();
    }

    /// Undoes what pre-run made, in reverse: the capture, the records, the link; the folder
    /// last, which stays as evidence or goes (`--keep`).
    async fn roll_back(mut self, held: Held, reason: String, fatal: bool) -> PrepareFailure {
        if let (Some(capture), Some(_)) = (self.with.capture.clone(), &held.pcap) {
            let _ = capture
                .unregister
                .send(Unregister {
                    run_id: held.run_id.clone(),
                })
                .await;
            self.holds.capture = false;
        }
        if let (Some(dns), true) = (self.with.dns.clone(), held.dns) {
            let _ = dns
                .remove
                .send(RemoveRecords {
                    run_id: held.run_id.clone(),
                })
                .await;
            self.holds.dns = false;
        }
        self.release().await;
        // A before.sh stopped by Ctrl+C is not the test's failure.
        let failed = !self.kill.is_interrupted();
        let (folder, keeper, log) = (held.folder.clone(), self.keeper.clone(), held.log.clone());
        let fate =
            tokio::task::spawn_blocking(move || run_folder::settle(&folder, &keeper, failed, &log))
                .await
                .unwrap_or(Fate::Removed);
        self.holds.folder = None;
        self.tell();
        PrepareFailure {
            reason,
            fatal,
            test_log: Some(held.log),
            folder: Some((held.folder, fate)),
        }
    }
}

impl Handler<Prepare> for TestActor {
    type Result = ResponseActFuture<Self, PrepareReply>;

    fn handle(&mut self, _: Prepare, _: &mut Context<Self>) -> Self::Result {
        self.step(Step::Prepare, None);
        if let Some(err) = self.id.plan.definition_error.clone() {
            self.step(Step::Prepared { ok: false }, Some(err));
            return Box::pin(actix::fut::ready(PrepareReply {
                ready: false,
                fatal: None,
            }));
        }
        let pre_run = PreRun {
            plan: self.id.plan.clone(),
            config: self.config.clone(),
            front: self.front.clone(),
            keeper: self.keeper.clone(),
            with: self.with.clone(),
            slot: self.id.slot,
            lease: self.id.run_id.clone(),
            ctx: RenderContext {
                test_name: self.id.plan.name.clone(),
                run_id: self.id.run_id.clone(),
                run_id_number: self.id.run_id_number.clone(),
                dut: self.config.dut,
                ua_hosts: BTreeMap::new(),
            },
            log: self.log.clone(),
            kill: self.kill.clone(),
            holds: Holds::default(),
        };
        Box::pin(pre_run.run().into_actor(self).map(|res, act, _| match res {
            Ok(held) => {
                act.run_id = held.run_id.clone();
                act.folder = Some(held.folder.clone());
                act.pcap.clone_from(&held.pcap);
                act.test_log = held.log.clone();
                match act.life.ready(held) {
                    Ok(state) => act.announce(state, None),
                    Err(e) => error!(act.log, "{e}"),
                }
                PrepareReply {
                    ready: true,
                    fatal: None,
                }
            }
            Err(f) => {
                if let Some(l) = f.test_log {
                    act.test_log = l;
                }
                if let Some((folder, fate)) = f.folder {
                    act.folder = Some(folder);
                    act.folder_fate = Some(fate);
                }
                let fatal = f.fatal.then(|| f.reason.clone());
                act.step(Step::Prepared { ok: false }, Some(f.reason));
                PrepareReply {
                    ready: false,
                    fatal,
                }
            }
        }))
    }
}

impl Handler<Run> for TestActor {
    type Result = ResponseActFuture<Self, RunReply>;

    fn handle(&mut self, _: Run, ctx: &mut Context<Self>) -> Self::Result {
        if self.config.dry_run {
            self.step(Step::Run { dry: true }, None);
            if let Some(held) = self.life.held() {
                self.bus.emit(Event::DryRun(DryRunPlan {
                    index: self.id.run.index,
                    name: self.id.plan.name.clone(),
                    run_id: held.run_id.clone(),
                    run_folder: held.folder.clone(),
                    hosts: held.hosts.clone(),
                    launch: held.launch.clone(),
                }));
            }
            self.step(Step::RunEnded { success: true }, None);
            return Box::pin(actix::fut::ready(RunReply { success: true }));
        }
        if !self.step(Step::Run { dry: false }, None) {
            return Box::pin(actix::fut::ready(RunReply { success: false }));
        }
        // STARTING holds what READY held.
        let Some(held) = self.life.held() else {
            return Box::pin(actix::fut::ready(RunReply { success: false }));
        };
        let run = self.with.sipp.run.send(RunSipp {
            plan: held.launch.clone(),
            folder: held.folder.clone(),
            timeout: self.config.test_timeout,
            log: held.log.clone(),
        });
        fault::while_sipp_runs(&self.id.plan.name, ctx);
        Box::pin(run.into_actor(self).map(|res, act, _| {
            let outcome = res.unwrap_or_else(|e| SippOutcome {
                success: false,
                not_started: false,
                reason: Some(format!("SIPp runner gone: {e}")),
                cps: None,
                sipp_time: Default::default(),
                stats: None,
            });
            crate::sipp::log_outcome(&act.test_log, &outcome);
            act.cps = outcome.cps;
            act.sipp_time = Some(outcome.sipp_time);
            act.stats = outcome.stats;
            let step = if outcome.not_started {
                Step::NotStarted
            } else {
                Step::RunEnded {
                    success: outcome.success,
                }
            };
            act.step(step, outcome.reason);
            RunReply {
                success: outcome.success,
            }
        }))
    }
}

impl Handler<Abort> for TestActor {
    type Result = ();

    fn handle(&mut self, _: Abort, _: &mut Context<Self>) {
        debug!(self.log, "abort asked");
        // A running before.sh stops (TERM, grace, KILL); after.sh goes on.
        self.kill.interrupt();
        if self.life.name() == StateName::Starting {
            // Its FAIL is the interrupt's doing, not evidence of a fault.
            self.cut_short = true;
            self.with.sipp.stop.do_send(StopSipp { hard: false });
        }
    }
}

impl Handler<Kill> for TestActor {
    type Result = ();

    fn handle(&mut self, _: Kill, _: &mut Context<Self>) {
        debug!(self.log, "kill asked");
        self.cut_short = true;
        self.kill.kill();
        if self.life.name() == StateName::Starting {
            self.with.sipp.stop.do_send(StopSipp { hard: true });
        }
    }
}

impl Handler<Cleanup> for TestActor {
    type Result = ResponseActFuture<Self, CleanupReply>;

    fn handle(&mut self, _: Cleanup, _: &mut Context<Self>) -> Self::Result {
        // A failed run keeps its folder as evidence (NOT READY when SIPp could not start, FAIL,
        // DIRTY); not one a signal cut short, nor one that never ran (interrupted, or
        // --group-stop-first-fail).
        let ran = self.life.name();
        let failed_run = !self.cut_short
            && matches!(
                ran,
                StateName::Fail | StateName::Success | StateName::NotReady
            );
        let succeeded = ran == StateName::Success;
        let mut held = match self.life.clean() {
            Ok(held) => held,
            // Not past PREPARING, or already cleaned: nothing is owed.
            Err(_) => {
                return Box::pin(actix::fut::ready(CleanupReply {
                    passed: self.life.passed(),
                }))
            }
        };
        self.announce(StateName::Cleaning, None);
        if fault::hangs_in_cleanup(&self.id.plan.name) {
            return Box::pin(actix::fut::wrap_future(std::future::pending()));
        }

        let config = self.config.clone();
        let keeper = self.keeper.clone();
        let kill = self.kill.clone();
        let with = self.with.clone();
        let lease = self.id.run_id.clone();
        let slot = self.id.slot;
        // The folder stays whatever happens (`--keep all`); else its fate is known at the end.
        let keep_folder = config.keep == Keep::All;
        // The front end's look at the run (its pcap) before the folder may go.
        let evidence = self.front.evidence.clone().map(|evidence| {
            let facts = RunEvidence {
                index: self.id.run.index,
                test: self.id.plan.clone(),
                run_id: held.run_id.clone(),
                pcap: held.pcap.clone(),
                folder: held.folder.clone(),
                hosts: held.hosts.clone(),
                dut: config.dut,
                succeeded,
                reason: self.fail_reason.clone(),
                folder_kept: keep_folder,
            };
            (evidence, facts)
        });
        let helpers = held.helpers.take();
        let no_scripts = held.no_scripts;
        // SPEC §4 step 6, every step tried: after.sh, then what the scripts left running; the
        // pcap; the DNS records; the link; the run folder last, so that it stays as evidence
        // when any step before failed.
        let work = async move {
            let log = &held.log;
            let mut holds = Holds {
                lease: Some(lease.clone()),
                folder: Some((held.run_id.clone(), held.folder.clone())),
                dns: held.dns,
                capture: held.pcap.is_some(),
                scripts: helpers.as_ref().map(|h| h.mark().clone()),
            };
            let tell = |holds: &Holds| {
                with.holding.do_send(Holding {
                    slot,
                    holds: holds.clone(),
                })
            };
            let mut problems = Vec::new();
            if let Some(mut helpers) = helpers {
                // Not started after a second interrupt; what before.sh left goes all the same.
                let skipped = kill.is_killed();
                let ran = if no_scripts {
                    // What run_script does when it finds no after.sh.
                    helpers.stop(log, &kill).await;
                    Ok(script::ScriptRun::Absent)
                } else {
                    script::run_script(
                        Role::After,
                        &held.folder,
                        config.script_timeout,
                        log,
                        &kill,
                        &mut helpers,
                    )
                    .await
                };
                match ran {
                    Err(script::ScriptError::Killed { .. }) if skipped => {}
                    Err(e) => problems.push(e.to_string()),
                    Ok(_) => {}
                }
                holds.scripts = None;
                tell(&holds);
            }
            if let (Some(capture), Some(_)) = (&with.capture, &held.pcap) {
                let unregistered = capture
                    .unregister
                    .send(Unregister {
                        run_id: held.run_id.clone(),
                    })
                    .await;
                match unregistered {
                    Ok(Ok(stats)) => {
                        info!(log, "pcap written"; "packets" => stats.packets);
                        if stats.dropped > 0 {
                            warn!(log, "the kernel dropped {} packets during the capture: the pcap may miss some", stats.dropped);
                        }
                    }
                    Ok(Err(e)) => problems.push(e.to_string()),
                    Err(e) => problems.push(format!("capture gone: {e}")),
                }
                holds.capture = false;
                tell(&holds);
            }
            if let (Some(dns), true) = (&with.dns, held.dns) {
                let removed = dns
                    .remove
                    .send(RemoveRecords {
                        run_id: held.run_id.clone(),
                    })
                    .await;
                if let Err(e) = removed {
                    problems.push(format!("remove DNS records: {e}"));
                }
                holds.dns = false;
                tell(&holds);
            }
            match with.release.send(Release { run_id: lease }).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => problems.push(e.to_string()),
                Err(e) => problems.push(format!("release addresses: {e}")),
            }
            holds.lease = None;
            tell(&holds);
            let failed = failed_run && !(succeeded && problems.is_empty()) && !kill.is_killed();
            let folder = held.folder.clone();
            // The front end's look at the run (its pcap), then the folder's fate: one job on
            // the blocking pool, not two (one wake-up of this thread fewer per test).
            let evidence = evidence.filter(|_| !kill.is_killed());
            let job = tokio::task::spawn_blocking(move || {
                let attachment = evidence.map(|(evidence, facts)| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        evidence.collect(&facts)
                    }))
                });
                (attachment, keeper.settle(&folder, failed))
            })
            .await;
            let mut attachment = None;
            let settled = job.map(|(collected, settled)| {
                match collected {
                    Some(Ok(a)) => attachment = a,
                    // The front end's bug, not the run's: logged, the cleanup goes on.
                    Some(Err(_)) => warn!(log, "evidence not collected: it panicked"),
                    None => {}
                }
                settled
            });
            let fate = match settled {
                Ok(settled) => {
                    if let Some(w) = &settled.warning {
                        warn!(log, "{w}");
                    }
                    problems.extend(settled.problem);
                    match settled.fate {
                        Fate::Kept => info!(log, "run folder kept at {}", held.folder.display()),
                        Fate::RemovedOverKeepMax => {
                            info!(
                                log,
                                "run folder removed: --keep-max folders are kept already"
                            )
                        }
                        Fate::Removed => {}
                    }
                    Some(settled.fate)
                }
                Err(e) => {
                    problems.push(format!("settle the run folder: {e}"));
                    None
                }
            };
            holds.folder = None;
            tell(&holds);
            (problems, fate, attachment)
        };
        Box::pin(
            work.into_actor(self)
                .map(|(problems, fate, attachment), act, _| {
                    act.folder_fate = fate;
                    act.evidence = attachment;
                    let clean = problems.is_empty();
                    let reason = (!clean).then(|| problems.join("; "));
                    act.step(Step::Cleaned { clean }, reason);
                    CleanupReply {
                        passed: act.life.passed(),
                    }
                }),
        )
    }
}

/// Test-only fault injection, in builds with the `fault-injection` feature, which only the
/// end-to-end tests turn on (a dev-dependency of the front end): a build for users has none of
/// it. `SIPPLAUNCHER_FAULT=panic-mid-run:<test>` makes that test's TestActor panic while its
/// SIPp runs, so that the tests can check the Supervisor gives back what it held;
/// `hang-in-cleanup:<test>` makes its post-run never end (what a third signal is for).
#[cfg(feature = "fault-injection")]
mod fault {
    use super::*;
    use actix::AsyncContext;

    fn asked(fault: &str, test: &crate::core::plan::TestName) -> bool {
        let asked = std::env::var("SIPPLAUNCHER_FAULT").ok();
        asked.as_deref() == Some(format!("{fault}:{test}").as_str())
    }

    pub fn hangs_in_cleanup(test: &crate::core::plan::TestName) -> bool {
        asked("hang-in-cleanup", test)
    }

    pub fn while_sipp_runs(test: &crate::core::plan::TestName, ctx: &mut Context<TestActor>) {
        if asked("panic-mid-run", test) {
            ctx.run_later(Duration::from_millis(300), |act, _| {
                panic!("fault injection: {} panics mid-run", act.id.plan.name)
            });
        }
    }
}

#[cfg(not(feature = "fault-injection"))]
mod fault {
    use super::*;

    pub fn hangs_in_cleanup(_: &crate::core::plan::TestName) -> bool {
        false
    }

    pub fn while_sipp_runs(_: &crate::core::plan::TestName, _: &mut Context<TestActor>) {}
}

#[cfg(test)]
mod tests {
    //! The TestActor alone, without root: its collaborators are stand-ins that write each
    //! message they get to the same file as the test's scripts, so that the file tells the
    //! order in which things were done and undone.

    use std::collections::HashSet;
    use std::io::Write;
    use std::path::Path;

    use actix::Addr;

    use super::*;
    use crate::core::plan::{InstanceLaunch, Keep, Role, Stage, TestName};
    use crate::dns::DnsError;
    use crate::net::NetError;
    use crate::sipp::SippActor;
    use crate::sniffer::{PcapStats, SniffError};
    use crate::testkit;

    /// Every service a TestActor asks, in one: writes each message's name to `order`; fails
    /// the ones named in `fail`. Its SIPp "runs" for 10 ms.
    struct StandIn {
        order: PathBuf,
        fail: HashSet<&'static str>,
        holds: Vec<Holds>,
    }

    impl StandIn {
        fn note(&self, what: &str) -> bool {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.order)
                .unwrap();
            writeln!(f, "{what}").unwrap();
            !self.fail.contains(what)
        }
    }

    impl Actor for StandIn {
        type Context = Context<Self>;
    }

    impl Handler<Lease> for StandIn {
        type Result = Result<BTreeMap<UaName, Ipv4Addr>, NetError>;
        fn handle(&mut self, msg: Lease, _: &mut Context<Self>) -> Self::Result {
            if !self.note("Lease") {
                return Err(NetError::ShutDown);
            }
            Ok(msg
                .uas
                .into_iter()
                .map(|ua| (ua, Ipv4Addr::new(10, 0, 0, 2)))
                .collect())
        }
    }

    impl Handler<Release> for StandIn {
        type Result = Result<(), NetError>;
        fn handle(&mut self, _: Release, _: &mut Context<Self>) -> Self::Result {
            self.note("Release");
            Ok(())
        }
    }

    impl Handler<AddRecords> for StandIn {
        type Result = Result<(), DnsError>;
        fn handle(&mut self, _: AddRecords, _: &mut Context<Self>) -> Self::Result {
            if !self.note("AddRecords") {
                return Err(DnsError::ShutDown);
            }
            Ok(())
        }
    }

    impl Handler<RemoveRecords> for StandIn {
        type Result = ();
        fn handle(&mut self, _: RemoveRecords, _: &mut Context<Self>) {
            self.note("RemoveRecords");
        }
    }

    impl Handler<Register> for StandIn {
        type Result = Result<(), SniffError>;
        fn handle(&mut self, _: Register, _: &mut Context<Self>) -> Self::Result {
            if !self.note("Register") {
                return Err(SniffError::Socket("refused".into()));
            }
            Ok(())
        }
    }

    impl Handler<Unregister> for StandIn {
        type Result = Result<PcapStats, SniffError>;
        fn handle(&mut self, _: Unregister, _: &mut Context<Self>) -> Self::Result {
            self.note("Unregister");
            Ok(PcapStats::default())
        }
    }

    impl Handler<RunSipp> for StandIn {
        type Result = actix::ResponseActFuture<Self, SippOutcome>;
        fn handle(&mut self, _: RunSipp, _: &mut Context<Self>) -> Self::Result {
            self.note("RunSipp");
            let done = tokio::time::sleep(Duration::from_millis(10));
            Box::pin(done.into_actor(self).map(|_, act, _| SippOutcome {
                success: act.note("SIPp exited"),
                not_started: false,
                reason: None,
                cps: None,
                sipp_time: Duration::from_millis(10),
                stats: None,
            }))
        }
    }

    impl Handler<StopSipp> for StandIn {
        type Result = ();
        fn handle(&mut self, msg: StopSipp, _: &mut Context<Self>) {
            self.note(if msg.hard {
                "StopSipp hard"
            } else {
                "StopSipp"
            });
        }
    }

    impl Handler<Holding> for StandIn {
        type Result = ();
        fn handle(&mut self, msg: Holding, _: &mut Context<Self>) {
            self.holds.push(msg.holds);
        }
    }

    /// The last word a TestActor said of what it holds.
    #[derive(actix::Message)]
    #[rtype(result = "Option<Holds>")]
    struct LastHolds;

    impl Handler<LastHolds> for StandIn {
        type Result = Option<Holds>;
        fn handle(&mut self, _: LastHolds, _: &mut Context<Self>) -> Option<Holds> {
            self.holds.last().cloned()
        }
    }

    /// A real run of test `t` (scripts from `scripts`, each also noting its name in the
    /// order), its services the stand-in, its SIPp runner `sipp` (the stand-in when `None`).
    struct Setup {
        _dir: tempfile::TempDir,
        order: PathBuf,
        run_root: PathBuf,
        services: Addr<StandIn>,
        actor: Addr<TestActor>,
    }

    fn setup(
        scripts: &[(&str, &str)],
        fail: &[&'static str],
        launch: LaunchPlan,
        sipp: Option<SippRecipients>,
    ) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let order = dir.path().join("order");
        let folder = dir.path().join("suite/t");
        std::fs::create_dir_all(&folder).unwrap();
        for (name, body) in scripts {
            let text = format!("echo {name} >> {}\n{body}\n", order.display());
            std::fs::write(folder.join(name), text).unwrap();
        }
        let run_root = dir.path().join("runs");
        std::fs::create_dir_all(&run_root).unwrap();
        let mut config = testkit::dry_config(&run_root, 1);
        config.dry_run = false;
        config.keep = Keep::None;
        let services = StandIn {
            order: order.clone(),
            fail: fail.iter().copied().collect(),
            holds: Vec::new(),
        }
        .start();
        let with = Collaborators {
            lease: services.clone().recipient(),
            release: services.clone().recipient(),
            dns: Some(DnsRecipients {
                add: services.clone().recipient(),
                remove: services.clone().recipient(),
            }),
            capture: Some(CaptureRecipients {
                register: services.clone().recipient(),
                unregister: services.clone().recipient(),
            }),
            sipp: sipp.unwrap_or_else(|| SippRecipients {
                run: services.clone().recipient(),
                stop: services.clone().recipient(),
            }),
            holding: services.clone().recipient(),
        };
        let id = Identity {
            slot: 0,
            run: ScheduledRun {
                index: 0,
                test: 0,
                attempt: 0,
            },
            plan: Arc::new(TestPlan {
                name: TestName("t".into()),
                folder,
                uas: vec![UaName("ua0".into())],
                run_groups: Vec::new(),
                definition_error: None,
            }),
            run_id: RunId::random(),
            run_id_number: "000000000000".into(),
        };
        let keeper = Arc::new(Keeper::new(Keep::None, 0));
        let actor = TestActor::new(
            id,
            Arc::new(config),
            testkit::front_end_with(launch),
            with,
            EventBus::default(),
            keeper,
            &testkit::log(),
        )
        .start();
        Setup {
            _dir: dir,
            order,
            run_root,
            services,
            actor,
        }
    }

    fn order(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits (polling, bounded to catch a hang) until `path`'s last line is `what`.
    async fn until_noted(path: &Path, what: &str) {
        let started = Instant::now();
        while order(path).last().map(String::as_str) != Some(what) {
            assert!(started.elapsed() < Duration::from_secs(10), "never {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[actix_rt::test]
    async fn post_run_gives_back_in_reverse_with_the_folder_last() {
        let s = setup(
            &[("before.sh", "true"), ("after.sh", "true")],
            &[],
            LaunchPlan::default(),
            None,
        );
        assert!(s.actor.send(Prepare).await.unwrap().ready);
        assert_eq!(
            s.services
                .send(LastHolds)
                .await
                .unwrap()
                .map(|h| h.capture && h.dns),
            Some(true),
            "the Supervisor is told what the run holds"
        );
        assert!(s.actor.send(Run).await.unwrap().success);
        assert!(s.actor.send(Cleanup).await.unwrap().passed);
        assert_eq!(
            order(&s.order),
            [
                "Lease",
                "AddRecords",
                "Register",
                "before.sh",
                "RunSipp",
                "SIPp exited",
                "after.sh",
                "Unregister",
                "RemoveRecords",
                "Release",
            ]
        );
        assert!(testkit::run_folders(&s.run_root).is_empty());
        assert_eq!(
            s.services.send(LastHolds).await.unwrap(),
            Some(Holds::default())
        );
    }

    #[actix_rt::test]
    async fn a_refused_capture_rolls_pre_run_back_in_reverse() {
        let s = setup(
            &[("before.sh", "true")],
            &["Register"],
            LaunchPlan::default(),
            None,
        );
        let reply = s.actor.send(Prepare).await.unwrap();
        assert!(!reply.ready);
        assert_eq!(reply.fatal.as_deref(), Some("capture: refused"));
        assert_eq!(
            order(&s.order),
            [
                "Lease",
                "AddRecords",
                "Register",
                "RemoveRecords",
                "Release"
            ]
        );
        assert!(testkit::run_folders(&s.run_root).is_empty());
        assert_eq!(
            s.services.send(LastHolds).await.unwrap(),
            Some(Holds::default())
        );
        // NOT READY is the end: nothing more is owed.
        assert!(!s.actor.send(Cleanup).await.unwrap().passed);
        assert_eq!(order(&s.order).len(), 5);
    }

    #[actix_rt::test]
    async fn a_failing_before_sh_rolls_back_what_pre_run_made() {
        let s = setup(&[("before.sh", "exit 3")], &[], LaunchPlan::default(), None);
        let reply = s.actor.send(Prepare).await.unwrap();
        assert!(!reply.ready && reply.fatal.is_none());
        assert_eq!(
            order(&s.order),
            [
                "Lease",
                "AddRecords",
                "Register",
                "before.sh",
                "Unregister",
                "RemoveRecords",
                "Release"
            ]
        );
        assert!(testkit::run_folders(&s.run_root).is_empty());
    }

    #[actix_rt::test]
    async fn a_kill_during_pre_run_kills_before_sh_and_rolls_back() {
        let s = setup(
            &[("before.sh", "sleep 60")],
            &[],
            LaunchPlan::default(),
            None,
        );
        let prepared = s.actor.send(Prepare);
        let prepared = actix_rt::spawn(prepared);
        until_noted(&s.order, "before.sh").await;
        s.actor.do_send(Kill);
        let reply = prepared.await.unwrap().unwrap();
        assert!(!reply.ready);
        assert_eq!(
            order(&s.order),
            [
                "Lease",
                "AddRecords",
                "Register",
                "before.sh",
                "Unregister",
                "RemoveRecords",
                "Release"
            ]
        );
        assert!(testkit::run_folders(&s.run_root).is_empty());
    }

    /// Runs test `t` with a real SippActor (grace `grace`) handed to the TestActor, its "sipp"
    /// a script named `sipp` that ignores SIGUSR1 and SIGTERM; once it is up, sends the
    /// TestActor Abort and, when `kill`, a Kill after the first signal went out. Returns the
    /// signals the runner sent, in order, and the run's log.
    async fn stop_a_stubborn_sipp(grace: Duration, kill: bool) -> (Vec<String>, String) {
        let bin = tempfile::tempdir().unwrap();
        let sipp_path = bin.path().join("sipp");
        let ready_file = "ready";
        // Ignored signals stay ignored across exec: `sleep` ignores them too.
        std::fs::write(
            &sipp_path,
            format!("#!/bin/sh\ntrap '' USR1 TERM\n: > {ready_file}\nexec sleep 60\n"),
        )
        .unwrap();
        std::fs::set_permissions(
            &sipp_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let launch = LaunchPlan {
            stages: vec![Stage {
                run_group: String::new(),
                instances: vec![InstanceLaunch {
                    label: "uac_ua0".into(),
                    role: Role::Uac,
                    wave: 1,
                    argv: vec![sipp_path.display().to_string()],
                    listen: Vec::new(),
                    error_file: "uac_ua0_errors.log".into(),
                    stat_file: "uac_ua0_trace.csv".into(),
                    output_file: "uac_ua0_output.log".into(),
                    env: Vec::new(),
                }],
            }],
        };
        let sipp = SippActor::with_grace(grace).start();
        let runner = SippRecipients {
            run: sipp.clone().recipient(),
            stop: sipp.clone().recipient(),
        };
        let s = setup(&[("after.sh", "true")], &[], launch, Some(runner));
        assert!(s.actor.send(Prepare).await.unwrap().ready);
        let folder = testkit::run_folders(&s.run_root).pop().unwrap();
        let ran = actix_rt::spawn(s.actor.send(Run));
        let started = Instant::now();
        while !folder.join(ready_file).exists() {
            assert!(started.elapsed() < Duration::from_secs(10), "never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let log_file = folder.join("sipplauncher.log");
        let sent = |what: &str| {
            let line = format!("{what} to uac_ua0");
            std::fs::read_to_string(&log_file).is_ok_and(|l| l.contains(&line))
        };
        s.actor.do_send(Abort);
        if kill {
            // The Kill comes during the grace that follows SIGUSR1.
            let started = Instant::now();
            loop {
                crate::sys::logging::flushed().await;
                if sent("SIGUSR1") {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(10), "no SIGUSR1");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            s.actor.do_send(Kill);
        }
        let reply = ran.await.unwrap().unwrap();
        assert!(!reply.success);
        crate::sys::logging::flushed().await;
        let log = std::fs::read_to_string(&log_file).unwrap();
        let signals = log
            .lines()
            .filter(|l| l.ends_with(" to uac_ua0"))
            .filter_map(|l| l.split_whitespace().rev().nth(2))
            .map(str::to_string)
            .collect();
        // Post-run gives everything back in reverse; after.sh (it restores the DUT) runs after
        // a first signal and is skipped after a Kill.
        let _ = s.actor.send(Cleanup).await.unwrap();
        let after: &[&str] = if kill { &[] } else { &["after.sh"] };
        let given_back = [after, &["Unregister", "RemoveRecords", "Release"]].concat();
        assert_eq!(order(&s.order)[3..], given_back, "{log}");
        assert!(testkit::run_folders(&s.run_root).is_empty());
        (signals, log)
    }

    #[actix_rt::test]
    async fn an_abort_stops_a_sipp_that_ignores_usr1_and_term_by_escalating() {
        let (signals, log) = stop_a_stubborn_sipp(Duration::from_millis(200), false).await;
        assert_eq!(signals, ["SIGUSR1", "SIGTERM", "SIGKILL"], "{log}");
    }

    #[actix_rt::test]
    async fn abort_then_kill_stop_a_sipp_that_ignores_usr1_and_term() {
        // A grace long enough that SIGTERM would be sent only if the Kill waited for it.
        let (signals, log) = stop_a_stubborn_sipp(Duration::from_secs(3), true).await;
        assert_eq!(signals, ["SIGUSR1", "SIGKILL"], "{log}");
        assert!(log.contains("interrupted: SIPp stopped"), "{log}");
    }
}
