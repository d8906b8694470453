//! TestActor: one run of one test. It owns the test's [`Lifecycle`], run folder, log and
//! scripts, and answers the Supervisor's Prepare / Run / Cleanup with the outcome. Work that
//! blocks (files) runs on the blocking pool; the state transitions happen in the handlers, when
//! the work's result comes back, never across an `.await`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use actix::{Actor, ActorFutureExt, Addr, Context, Handler, ResponseActFuture, WrapFuture};
use slog::{debug, error, info, o, warn, Logger};

use crate::core::plan::{
    random_run_id_number, Attachment, FrontEnd, Keep, LaunchPlan, RenderContext, RunConfig,
    RunEvidence, RunId, TestPlan, UaName,
};
use crate::core::scheduler::ScheduledRun;
use crate::core::state::{Lifecycle, StateName, Step};
use crate::dns::zones::RunZone;
use crate::dns::{self, DnsActor};
use crate::events::{format_duration, DryRunPlan, Event, EventBus, TestStateEvent};
use crate::messages::{
    Abort, AddRecords, Cleanup, CleanupReply, Kill, Lease, Prepare, PrepareReply, Register,
    Release, RemoveRecords, Run, RunReply, RunSipp, StopSipp, Unregister,
};
use crate::net::NetActor;
use crate::run_folder;
use crate::sipp::stats::SippStats;
use crate::sipp::{SippActor, SippOutcome};
use crate::sniffer::{pcap_name, SnifferActor};
use crate::sys::keep::{Fate, Keeper};
use crate::sys::marks::Mark;
use crate::sys::script::{self, KillSwitch, Leftovers, Role};

/// What the blocking part of pre-run made.
struct Prepared {
    run_id: RunId,
    folder: PathBuf,
    test_log: Logger,
    launch_plan: LaunchPlan,
    /// The rendered `dns.txt`, parsed and grouped for the DNS server.
    zone: Option<RunZone>,
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

pub struct TestActor {
    run: ScheduledRun,
    plan: Arc<TestPlan>,
    config: Arc<RunConfig>,
    front: FrontEnd,
    /// The shared DNS server (real runs only).
    dns: Option<Addr<DnsActor>>,
    /// This run's `dns.txt` records are served: remove them in post-run.
    dns_added: bool,
    /// The run's capture (real runs without --no-pcap).
    sniffer: Option<Addr<SnifferActor>>,
    /// This run's packets are being filed: write its pcap in post-run.
    capturing: bool,
    net: Addr<NetActor>,
    bus: EventBus,
    /// The general log, with this run's keys.
    log: Logger,
    /// The run's own log (`sipplauncher.log` in its folder) once the folder exists; else `log`.
    test_log: Logger,
    life: Lifecycle,
    run_id: RunId,
    /// The id the addresses are leased under: the first run id (a run id may be drawn again
    /// when its folder exists already).
    lease: RunId,
    run_id_number: String,
    /// Set once made; stays set after removal, for the reports.
    folder: Option<PathBuf>,
    /// The run's pcap once its packets are captured.
    pcap: Option<PathBuf>,
    /// Which run folders stay once their test is over; shared by the run.
    keeper: Arc<Keeper>,
    /// What became of the folder, once its test is over.
    folder_fate: Option<Fate>,
    /// A signal stopped its run (or its scripts): a failure that is no evidence of a fault.
    cut_short: bool,
    /// Addresses leased from the NetActor, to give back in post-run.
    hosts: BTreeMap<UaName, Ipv4Addr>,
    /// When the current step began (pre-run, run or post-run), for "took".
    step_started: Instant,
    /// Fired by an interrupt: the first stops a running before.sh, a second kills any script at
    /// once.
    kill: KillSwitch,
    /// What before.sh left running (the test's helpers), stopped once after.sh has run.
    leftovers: Option<Leftovers>,
    /// The SIPp command lines of this run, made in pre-run.
    launch_plan: Option<LaunchPlan>,
    /// Runs the SIPp instances while the test is STARTING.
    sipp: Option<Addr<SippActor>>,
    /// Of the run, for the SUCCESS/FAIL line.
    cps: Option<f64>,
    sipp_time: Option<std::time::Duration>,
    stats: Option<SippStats>,
    /// Why the run failed, for the front end's look at its evidence in post-run.
    fail_reason: Option<String>,
    /// What the front end made of the run's evidence, for its last event.
    evidence: Option<Attachment>,
}

impl TestActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        run: ScheduledRun,
        plan: Arc<TestPlan>,
        config: Arc<RunConfig>,
        front: FrontEnd,
        net: Addr<NetActor>,
        dns: Option<Addr<DnsActor>>,
        sniffer: Option<Addr<SnifferActor>>,
        bus: EventBus,
        keeper: Arc<Keeper>,
        log: &Logger,
    ) -> Self {
        let run_id = RunId::random();
        let log = log.new(o!("test" => plan.name.0.clone(), "run_id" => run_id.0.clone()));
        TestActor {
            run,
            plan,
            config,
            front,
            dns,
            dns_added: false,
            sniffer,
            capturing: false,
            net,
            bus,
            test_log: log.clone(),
            log,
            life: Lifecycle::default(),
            lease: run_id.clone(),
            run_id,
            run_id_number: random_run_id_number(),
            folder: None,
            pcap: None,
            keeper,
            folder_fate: None,
            cut_short: false,
            hosts: BTreeMap::new(),
            step_started: Instant::now(),
            kill: KillSwitch::new(),
            leftovers: None,
            launch_plan: None,
            sipp: None,
            cps: None,
            sipp_time: None,
            stats: None,
            fail_reason: None,
            evidence: None,
        }
    }

    /// Applies a step and reports the new state. A refused step is a bug in the caller: it is
    /// logged and the state stays.
    fn step(&mut self, step: Step, reason: Option<String>) -> bool {
        let state = match self.life.step(step) {
            Ok(s) => s,
            Err(e) => {
                error!(self.log, "{e}");
                return false;
            }
        };
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
        self.bus.emit(Event::Test(TestStateEvent {
            index: self.run.index,
            name: self.plan.name.clone(),
            run_id: self.run_id.clone(),
            run_id_number: self.run_id_number.clone(),
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
            evidence: if matches!(state, StateName::Clean | StateName::Dirty) {
                self.evidence.take()
            } else {
                None
            },
            reason,
            run_folder: self.folder.clone(),
            pcap: self.pcap.clone(),
            // Known on the run's last event (a NOT READY after STARTING still owes cleanup:
            // none yet then).
            folder_fate: if matches!(
                state,
                StateName::NotReady | StateName::Clean | StateName::Dirty
            ) {
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
        true
    }
}

impl Actor for TestActor {
    type Context = Context<Self>;
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
) -> Result<Prepared, PrepareFailure> {
    let made = run_folder::prepare(
        &plan.folder,
        &plan.name,
        config,
        keeper,
        front.render.as_ref(),
        ctx.clone(),
        log,
    )
    .map_err(|f| PrepareFailure {
        reason: f.reason,
        fatal: f.fatal,
        test_log: f.log,
        folder: f.folder,
    })?;
    // NOT READY: the folder stays as evidence (`--keep`).
    let undo = |reason: String| {
        let fate = run_folder::settle(&made.path, keeper, true, &made.log);
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
    let launch_plan = front
        .launch
        .launch_plan(plan, &made.path, &ctx)
        .map_err(undo)?;
    let zone = front
        .zone
        .records(&made.path)
        .map_err(undo)?
        .map(|records| {
            // Grouped here, off the actor threads: adding it to the server is then a merge.
            let zone = RunZone::new(records);
            dns::log_zone(&made.log, &made.path.join("dns.txt"), &zone);
            zone
        });
    Ok(Prepared {
        run_id: made.run_id,
        folder: made.path,
        test_log: made.log,
        launch_plan,
        zone,
    })
}

impl Handler<Prepare> for TestActor {
    type Result = ResponseActFuture<Self, PrepareReply>;

    fn handle(&mut self, _: Prepare, _: &mut Context<Self>) -> Self::Result {
        self.step(Step::Prepare, None);
        if let Some(err) = self.plan.definition_error.clone() {
            self.step(Step::Prepared { ok: false }, Some(err));
            return Box::pin(actix::fut::ready(PrepareReply {
                ready: false,
                fatal: None,
            }));
        }

        let plan = self.plan.clone();
        let config = self.config.clone();
        let front = self.front.clone();
        let dns = self.dns.clone();
        let sniffer = self.sniffer.clone();
        let test_name = self.plan.name.clone();
        let net = self.net.clone();
        let run_id = self.run_id.clone();
        let log = self.log.clone();
        let kill = self.kill.clone();
        let keeper = self.keeper.clone();
        let ctx_base = RenderContext {
            test_name: plan.name.clone(),
            run_id: run_id.clone(),
            run_id_number: self.run_id_number.clone(),
            dut: config.dut,
            ua_hosts: BTreeMap::new(),
        };
        let work = async move {
            let hosts = net
                .send(Lease {
                    run_id: run_id.clone(),
                    uas: plan.uas.clone(),
                })
                .await
                .map_err(|e| PrepareFailure {
                    reason: format!("address pool gone: {e}"),
                    fatal: true,
                    test_log: None,
                    folder: None,
                })?
                .map_err(|e| PrepareFailure {
                    reason: e.to_string(),
                    fatal: e.is_fatal(),
                    test_log: None,
                    folder: None,
                })?;
            let ctx_base = RenderContext {
                ua_hosts: hosts.clone(),
                ..ctx_base
            };
            let blocking_config = config.clone();
            let blocking_log = log.clone();
            let blocking_keeper = keeper.clone();
            let prepared = tokio::task::spawn_blocking(move || {
                prepare_folder(
                    &plan,
                    &blocking_config,
                    &blocking_keeper,
                    &front,
                    ctx_base,
                    &blocking_log,
                )
            })
            .await;
            let mut prepared = match prepared {
                Ok(Ok(p)) => p,
                Ok(Err(f)) => return Err(f),
                Err(e) => {
                    return Err(PrepareFailure {
                        reason: format!("pre-run panicked: {e}"),
                        fatal: true,
                        test_log: None,
                        folder: None,
                    })
                }
            };
            // Undoes the records when a later step fails; the folder stays as evidence or goes
            // (`--keep`): returns what became of it.
            let undo = |prepared: &Prepared, dns_added: bool| {
                let folder = prepared.folder.clone();
                let keeper = keeper.clone();
                let dns = dns.clone();
                let run_id = prepared.run_id.clone();
                let log = prepared.test_log.clone();
                // A before.sh stopped by Ctrl+C is not the test's failure.
                let failed = !kill.is_interrupted();
                async move {
                    if let (true, Some(dns)) = (dns_added, dns) {
                        let _ = dns.send(RemoveRecords { run_id }).await;
                    }
                    let f = folder.clone();
                    let fate = tokio::task::spawn_blocking(move || {
                        run_folder::settle(&f, &keeper, failed, &log)
                    })
                    .await
                    .unwrap_or(Fate::Removed);
                    Some((folder, fate))
                }
            };
            let mut dns_added = false;
            if let (Some(zone), Some(dns)) = (prepared.zone.take(), dns.as_ref()) {
                let added = dns
                    .send(AddRecords {
                        run_id: prepared.run_id.clone(),
                        test: test_name.clone(),
                        zone,
                        log: prepared.test_log.clone(),
                    })
                    .await;
                let failure = match added {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some((e.to_string(), e.is_fatal())),
                    Err(e) => Some((format!("dns server gone: {e}"), true)),
                };
                if let Some((reason, fatal)) = failure {
                    let folder = undo(&prepared, false).await;
                    return Err(PrepareFailure {
                        reason,
                        fatal,
                        test_log: Some(prepared.test_log),
                        folder,
                    });
                }
                dns_added = true;
            }
            // The capture starts before before.sh (it may talk to the DUT) and SIPp: the
            // acknowledgement means every packet from now on is filed.
            if let Some(sniffer) = sniffer.as_ref() {
                let registered = sniffer
                    .send(Register {
                        run_id: prepared.run_id.clone(),
                        addrs: hosts.values().copied().collect(),
                        pcap: prepared.folder.join(pcap_name(&prepared.run_id)),
                    })
                    .await;
                let failure = match registered {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(e) => Some(format!("capture gone: {e}")),
                };
                if let Some(reason) = failure {
                    let folder = undo(&prepared, dns_added).await;
                    return Err(PrepareFailure {
                        reason,
                        fatal: true,
                        test_log: Some(prepared.test_log),
                        folder,
                    });
                }
            }
            let capturing = sniffer.is_some();
            let mut leftovers = None;
            if !config.dry_run {
                let ran = match Mark::for_run(&prepared.run_id.0) {
                    Ok(mark) => {
                        let left = leftovers.insert(Leftovers::new(mark));
                        script::run_script(
                            Role::Before,
                            &prepared.folder,
                            config.script_timeout,
                            &prepared.test_log,
                            &kill,
                            left,
                        )
                        .await
                        .map_err(|e| e.to_string())
                    }
                    Err(e) => Err(format!("mark before.sh with this run: {e}")),
                };
                if let Err(reason) = ran {
                    if let (true, Some(s)) = (capturing, sniffer.as_ref()) {
                        let _ = s
                            .send(Unregister {
                                run_id: prepared.run_id.clone(),
                            })
                            .await;
                    }
                    let folder = undo(&prepared, dns_added).await;
                    return Err(PrepareFailure {
                        reason,
                        fatal: false,
                        test_log: Some(prepared.test_log),
                        folder,
                    });
                }
            }
            Ok((prepared, hosts, dns_added, capturing, leftovers))
        };
        Box::pin(work.into_actor(self).map(|res, act, _| match res {
            Ok((prepared, hosts, dns_added, capturing, leftovers)) => {
                act.dns_added = dns_added;
                act.leftovers = leftovers;
                act.capturing = capturing;
                if capturing {
                    act.pcap = Some(prepared.folder.join(pcap_name(&prepared.run_id)));
                }
                act.run_id = prepared.run_id;
                act.folder = Some(prepared.folder);
                act.test_log = prepared.test_log;
                act.launch_plan = Some(prepared.launch_plan);
                act.hosts = hosts;
                act.step(Step::Prepared { ok: true }, None);
                PrepareReply {
                    ready: true,
                    fatal: None,
                }
            }
            Err(f) => {
                act.net.do_send(Release {
                    run_id: act.lease.clone(),
                });
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

    fn handle(&mut self, _: Run, _: &mut Context<Self>) -> Self::Result {
        if self.config.dry_run {
            self.step(Step::Run { dry: true }, None);
            if let (Some(launch), Some(folder)) = (&self.launch_plan, &self.folder) {
                self.bus.emit(Event::DryRun(DryRunPlan {
                    index: self.run.index,
                    name: self.plan.name.clone(),
                    run_id: self.run_id.clone(),
                    run_folder: folder.clone(),
                    hosts: self.hosts.clone(),
                    launch: launch.clone(),
                }));
            }
            self.step(Step::RunEnded { success: true }, None);
            return Box::pin(actix::fut::ready(RunReply { success: true }));
        }
        self.step(Step::Run { dry: false }, None);
        let (Some(plan), Some(folder)) = (self.launch_plan.clone(), self.folder.clone()) else {
            self.step(
                Step::RunEnded { success: false },
                Some("nothing to run".into()),
            );
            return Box::pin(actix::fut::ready(RunReply { success: false }));
        };
        let sipp = SippActor::new(
            plan,
            folder,
            self.config.test_timeout,
            self.test_log.clone(),
        )
        .start();
        self.sipp = Some(sipp.clone());
        Box::pin(sipp.send(RunSipp).into_actor(self).map(|res, act, _| {
            act.sipp = None;
            let outcome = res.unwrap_or_else(|e| SippOutcome {
                success: false,
                not_started: false,
                reason: Some(format!("SIPp supervisor gone: {e}")),
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
        if let Some(s) = &self.sipp {
            // Its FAIL is the interrupt's doing, not evidence of a fault.
            self.cut_short = true;
            s.do_send(StopSipp { hard: false });
        }
    }
}

impl Handler<Kill> for TestActor {
    type Result = ();

    fn handle(&mut self, _: Kill, _: &mut Context<Self>) {
        debug!(self.log, "kill asked");
        self.cut_short = true;
        self.kill.kill();
        if let Some(s) = &self.sipp {
            s.do_send(StopSipp { hard: true });
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
        if !self.step(Step::Clean, None) {
            // Not past PREPARING, or already cleaned: nothing is owed.
            return Box::pin(actix::fut::ready(CleanupReply {
                passed: self.life.passed(),
            }));
        }

        let config = self.config.clone();
        let keeper = self.keeper.clone();
        let folder = self.folder.clone();
        let log = self.test_log.clone();
        let kill = self.kill.clone();
        let net = self.net.clone();
        let lease = self.lease.clone();
        let dns = self
            .dns
            .clone()
            .filter(|_| std::mem::take(&mut self.dns_added));
        let sniffer = self
            .sniffer
            .clone()
            .filter(|_| std::mem::take(&mut self.capturing));
        let run_id = self.run_id.clone();
        // The folder stays whatever happens (`--keep all`); else its fate is known at the end.
        let keep_folder = config.keep == Keep::All;
        // The front end's look at the run (its pcap) before the folder may go.
        let evidence = self
            .front
            .evidence
            .clone()
            .zip(folder.clone())
            .map(|(evidence, folder)| {
                let facts = RunEvidence {
                    index: self.run.index,
                    test: self.plan.clone(),
                    run_id: run_id.clone(),
                    pcap: sniffer.is_some().then(|| folder.join(pcap_name(&run_id))),
                    folder,
                    hosts: self.hosts.clone(),
                    dut: config.dut,
                    succeeded,
                    reason: self.fail_reason.clone(),
                    folder_kept: keep_folder,
                };
                (evidence, facts)
            });
        let leftovers = self.leftovers.take();
        // SPEC §4 step 6, every step tried: after.sh, then what the scripts left running; the
        // pcap; the DNS records; the link; the run folder last, so that it stays as evidence
        // when any step before failed.
        let work = async move {
            let mut problems = Vec::new();
            if let (Some(folder), Some(mut left)) = (&folder, leftovers) {
                // Not started after a second interrupt; what before.sh left goes all the same.
                let skipped = kill.is_killed();
                match script::run_script(
                    Role::After,
                    folder,
                    config.script_timeout,
                    &log,
                    &kill,
                    &mut left,
                )
                .await
                {
                    Ok(_) => {}
                    Err(script::ScriptError::Killed { .. }) if skipped => {}
                    Err(e) => problems.push(e.to_string()),
                }
            }
            if let Some(sniffer) = sniffer {
                match sniffer
                    .send(Unregister {
                        run_id: run_id.clone(),
                    })
                    .await
                {
                    Ok(Ok(stats)) => {
                        info!(log, "pcap written"; "packets" => stats.packets);
                        if stats.dropped > 0 {
                            warn!(log, "the kernel dropped {} packets during the capture: the pcap may miss some", stats.dropped);
                        }
                    }
                    Ok(Err(e)) => problems.push(e.to_string()),
                    Err(e) => problems.push(format!("capture gone: {e}")),
                }
            }
            if let Some(dns) = dns {
                if let Err(e) = dns.send(RemoveRecords { run_id }).await {
                    problems.push(format!("remove DNS records: {e}"));
                }
            }
            let mut attachment = None;
            if let Some((evidence, facts)) = evidence.filter(|_| !kill.is_killed()) {
                match tokio::task::spawn_blocking(move || evidence.collect(&facts)).await {
                    Ok(a) => attachment = a,
                    // The front end's bug, not the run's: logged, the cleanup goes on.
                    Err(e) => warn!(log, "evidence not collected: {e}"),
                }
            }
            match net.send(Release { run_id: lease }).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => problems.push(e.to_string()),
                Err(e) => problems.push(format!("release addresses: {e}")),
            }
            let mut fate = None;
            if let Some(folder) = &folder {
                let failed = failed_run && !(succeeded && problems.is_empty()) && !kill.is_killed();
                let f = folder.clone();
                match tokio::task::spawn_blocking(move || keeper.settle(&f, failed)).await {
                    Ok(settled) => {
                        problems.extend(settled.problem);
                        fate = Some(settled.fate);
                        match settled.fate {
                            Fate::Kept => info!(log, "run folder kept at {}", folder.display()),
                            Fate::RemovedOverKeepMax => {
                                info!(
                                    log,
                                    "run folder removed: --keep-max folders are kept already"
                                )
                            }
                            Fate::Removed => {}
                        }
                    }
                    Err(e) => problems.push(format!("settle the run folder: {e}")),
                }
            }
            (problems, fate, attachment)
        };
        Box::pin(
            work.into_actor(self)
                .map(|(problems, fate, attachment), act, _| {
                    act.hosts.clear();
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
