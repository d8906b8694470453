//! The Supervisor: a thin shell around [`Dispatcher`]. It carries out the dispatcher's commands
//! (start a group of TestActors, send them Prepare / Run / Abort / Kill / Cleanup, pause, run the
//! GLOBAL scripts) and feeds every reply, signal and timer back in as an [`Input`].

// actix's prelude exports its own `Supervisor`: import actix items by name here.
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::{
    Actor, ActorFutureExt, Addr, Arbiter, AsyncContext, Context, Handler, Recipient, SpawnHandle,
    WrapFuture,
};
use slog::{debug, error, info, o, warn, Logger};
use tokio::sync::oneshot;

use crate::core::dispatch::{CancelReason, Command, Dispatcher, Input, Outcome};
use crate::core::plan::{random_run_id_number, FrontEnd, RunId, RunPlan};
use crate::core::scheduler::{Schedule, ScheduledRun};
use crate::core::state::StateName;
use crate::dns::{DnsActor, RUN_ADDR};
use crate::events::{Event, EventBus, EventSink, TestStateEvent, PROGRESS_EVERY};
use crate::global::GlobalActor;
use crate::messages::{
    Abort, Cleanup, GlobalAfter, GlobalBefore, GlobalCleanup, Holding, Holds, Kill, Prepare,
    Release, RemoveRecords, Run, Shutdown, Signal, SignalKind, StopSipp, Unregister,
};
use crate::net::{NetActor, RESERVE_SIZE};
use crate::sipp::SippActor;
use crate::sniffer::{Scope, SnifferActor};
use crate::sys::keep::Keeper;
use crate::sys::script::{self, KillSwitch, Leftovers};
use crate::sys::signal::Interrupts;
use crate::sys::{last_resort, rundir, usage};
use crate::test_actor::{
    CaptureRecipients, Collaborators, DnsRecipients, Identity, SippRecipients, TestActor,
};

/// How long the services get to undo what they hold at the end (each has bounds of its own;
/// this one only keeps a stuck service from hanging the run).
const SHUTDOWN_BOUND: Duration = Duration::from_secs(30);
/// The same after a third signal: the user wants out now; links go first, in one batch.
const THIRD_SIGNAL_SHUTDOWN: Duration = Duration::from_secs(2);

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

/// The services the tests of a run share; each is shut down by [`Shutdown`] at the end.
struct Services {
    /// Addresses and `sipp-*` links of the DUT network.
    net: Addr<NetActor>,
    /// The embedded DNS server (not in --dry-run; binds on first use).
    dns: Option<Addr<DnsActor>>,
    /// The one capture of the run (not in --dry-run or with --no-pcap).
    sniffer: Option<Addr<SnifferActor>>,
}

impl Services {
    /// Every service, by the name its failures are logged under.
    fn all(&self) -> Vec<(&'static str, Recipient<Shutdown>)> {
        let mut all = vec![("network", self.net.clone().recipient())];
        if let Some(dns) = &self.dns {
            all.push(("dns", dns.clone().recipient()));
        }
        if let Some(sniffer) = &self.sniffer {
            all.push(("capture", sniffer.clone().recipient()));
        }
        all
    }

    /// See [`shutdown_all`].
    fn shutdown(&self) -> impl std::future::Future<Output = Vec<String>> + 'static {
        shutdown_all(self.all())
    }
}

/// Sends [`Shutdown`] to every service at once and waits for every reply, as Relay's controller
/// does: a service that fails (or is gone) does not hold up the others. Returns the failures,
/// one line each.
fn shutdown_all(
    services: Vec<(&'static str, Recipient<Shutdown>)>,
) -> impl std::future::Future<Output = Vec<String>> + 'static {
    let replies: Vec<_> = services
        .into_iter()
        .map(|(name, to)| async move {
            match to.send(Shutdown).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("{name} cleanup: {e}")),
                Err(e) => Some(format!("{name} cleanup: the service is gone ({e})")),
            }
        })
        .collect();
    async move {
        futures_util::future::join_all(replies)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// A TestActor under way, and what the Supervisor knows of it: enough to give back what it
/// holds, and to name its run, if it dies (ractor's lesson: cleanup is the parent's job when a
/// child ends without doing its own).
struct Child {
    actor: Addr<TestActor>,
    /// The SIPp runner handed to it: stopped hard if the TestActor dies.
    sipp: Addr<SippActor>,
    id: Identity,
    /// What it holds, as it last said ([`Holding`]).
    holds: Holds,
}

pub struct Supervisor {
    plan: RunPlan,
    core: Dispatcher,
    front: FrontEnd,
    services: Services,
    /// The GLOBAL pseudo-test, when the suite has one.
    global: Option<Addr<GlobalActor>>,
    /// Which run folders stay once their test is over; shared by the test runs and GLOBAL.
    keeper: Arc<Keeper>,
    bus: EventBus,
    log: Logger,
    /// The TestActors under way, by slot (the current group's, or `--window`'s).
    tests: HashMap<usize, Child>,
    /// Slots whose TestActor died and whose holdings the Supervisor gave back: their Cleanup is
    /// answered at once.
    orphans: HashSet<usize>,
    /// Pauses that run (one between groups; one per free place with `--window`).
    pauses: VecDeque<SpawnHandle>,
    started: Instant,
    /// CPU times and load at the start: the run's usage is measured from there.
    started_usage: usage::Snapshot,
    /// The run's signals, until `started` hands them to a task that forwards each as a
    /// [`Signal`] message.
    interrupts: Option<Interrupts>,
    fatal: Option<String>,
    /// What the services could not undo at the end, one line each.
    leftovers: Vec<String>,
    done: Option<oneshot::Sender<RunResult>>,
    /// Groups started so far (`--retries` makes groups of retries between the scheduled ones).
    groups: u64,
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
            retries: cfg.retries,
            at: SystemTime::now(),
        });
        ctx.run_interval(PROGRESS_EVERY, |act, _| {
            act.bus.emit(Event::Progress {
                outcome: act.core.outcome(),
                elapsed: act.started.elapsed(),
            })
        });
        // Signals that came before the run was under way count before it starts anything.
        if let Some(mut interrupts) = self.interrupts.take() {
            for kind in interrupts.drain_arrived() {
                self.signal(kind, ctx);
            }
            let me = ctx.address().recipient();
            actix_rt::spawn(async move {
                while let Some(kind) = interrupts.recv().await {
                    if me.try_send(Signal(kind)).is_err() {
                        // The Supervisor is gone: the run is over.
                        return;
                    }
                }
            });
        }
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
            Command::StartGroup { runs } => self.start_group(runs, ctx),
            Command::StartTest { slot, run } => {
                let child = self.test_actor(slot, run, ctx);
                self.tests.insert(slot, child);
            }
            Command::Prepare { slot } => {
                let Some(child) = self.tests.get(&slot) else {
                    // Cannot happen (StartGroup/StartTest come first); never stall on it.
                    error!(self.log, "no test actor in slot {slot} to prepare");
                    return self.input(Input::Prepared { slot, ready: false }, ctx);
                };
                let fut = child.actor.send(Prepare);
                ctx.spawn(fut.into_actor(self).map(move |reply, act, ctx| {
                    let (ready, fatal) = match reply {
                        Ok(r) => (r.ready, r.fatal),
                        Err(e) => {
                            let then = Input::Prepared { slot, ready: false };
                            return act.child_died(slot, &e, then, ctx);
                        }
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
                    let Some(child) = self.tests.get(&slot) else {
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
                    let fut = child.actor.send(Run);
                    ctx.spawn(
                        fut.into_actor(self)
                            .map(move |reply, act, ctx| match reply {
                                Ok(r) => act.input(
                                    Input::RunDone {
                                        slot,
                                        success: r.success,
                                    },
                                    ctx,
                                ),
                                Err(e) => {
                                    let then = Input::RunDone {
                                        slot,
                                        success: false,
                                    };
                                    act.child_died(slot, &e, then, ctx)
                                }
                            }),
                    );
                }
            }
            Command::Abort { slots } => {
                for slot in slots {
                    if let Some(child) = self.tests.get(&slot) {
                        child.actor.do_send(Abort);
                    }
                }
            }
            Command::AbortGlobal => {
                if let Some(global) = &self.global {
                    global.do_send(Abort);
                }
            }
            Command::Kill => {
                if let Some(global) = &self.global {
                    global.do_send(Kill);
                }
                for child in self.tests.values() {
                    child.actor.do_send(Kill);
                }
            }
            Command::Cleanup { slot } => {
                let cleaned = Input::Cleaned {
                    slot,
                    passed: false,
                };
                let Some(child) = self.tests.get(&slot) else {
                    // Its TestActor died and what it held was given back already.
                    if !self.orphans.remove(&slot) {
                        error!(self.log, "no test actor in slot {slot} to clean up");
                    }
                    return self.input(cleaned, ctx);
                };
                let fut = child.actor.send(Cleanup);
                ctx.spawn(
                    fut.into_actor(self)
                        .map(move |reply, act, ctx| match reply {
                            Ok(r) => {
                                act.tests.remove(&slot);
                                act.input(
                                    Input::Cleaned {
                                        slot,
                                        passed: r.passed,
                                    },
                                    ctx,
                                );
                            }
                            Err(e) => {
                                act.child_died(slot, &e, cleaned, ctx);
                                act.orphans.remove(&slot);
                            }
                        }),
                );
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
                // Links left by a DIRTY test or a second interrupt go before the end, and so
                // do the DNS server and the capture. After a third signal, not for long.
                let global = self.global.clone();
                let services = self.services.shutdown();
                // GLOBAL first: what its after.sh did not get to (a second signal skipped it).
                let shutdown = async move {
                    if let Some(global) = global {
                        let _ = global.send(GlobalCleanup).await;
                    }
                    services.await
                };
                let bound = if self.core.cancel_reason() == Some(CancelReason::ThirdSignal) {
                    THIRD_SIGNAL_SHUTDOWN
                } else {
                    SHUTDOWN_BOUND
                };
                let fut = async move {
                    tokio::time::timeout(bound, shutdown)
                        .await
                        .unwrap_or_else(|_| {
                            vec![format!(
                                "cleanup: the services did not all stop within {bound:?}"
                            )]
                        })
                };
                ctx.spawn(fut.into_actor(self).map(move |failures, act, ctx| {
                    act.leftovers.extend(failures);
                    act.finish(outcome, ctx)
                }));
            }
        }
    }

    fn start_group(&mut self, runs: Vec<ScheduledRun>, ctx: &mut Context<Self>) {
        self.groups += 1;
        self.bus.emit(Event::GroupStarted {
            number: self.groups,
            size: runs.len(),
        });
        // Dropping the previous group's addresses lets those actors stop.
        self.tests = runs
            .into_iter()
            .enumerate()
            .map(|(slot, run)| (slot, self.test_actor(slot, run, ctx)))
            .collect();
    }

    /// A TestActor for `run` in `slot`, with its own SIPp runner and the shared services.
    fn test_actor(&self, slot: usize, run: ScheduledRun, ctx: &Context<Self>) -> Child {
        let sipp = SippActor::default().start();
        let id = Identity {
            slot,
            run,
            plan: Arc::new(self.plan.tests[run.test].clone()),
            run_id: RunId::random(),
            run_id_number: random_run_id_number(),
        };
        let net = &self.services.net;
        let with = Collaborators {
            lease: net.clone().recipient(),
            release: net.clone().recipient(),
            dns: self.services.dns.as_ref().map(|dns| DnsRecipients {
                add: dns.clone().recipient(),
                remove: dns.clone().recipient(),
            }),
            capture: self.services.sniffer.as_ref().map(|s| CaptureRecipients {
                register: s.clone().recipient(),
                unregister: s.clone().recipient(),
            }),
            sipp: SippRecipients {
                run: sipp.clone().recipient(),
                stop: sipp.clone().recipient(),
            },
            holding: ctx.address().recipient(),
        };
        let actor = TestActor::new(
            id.clone(),
            self.plan.config.clone(),
            self.front.clone(),
            with,
            self.bus.clone(),
            self.keeper.clone(),
            &self.log,
        )
        .start();
        Child {
            actor,
            sipp,
            id,
            holds: Holds::default(),
        }
    }

    /// A TestActor died (a panic, a bug: its mailbox is gone): the Supervisor gives back at
    /// once what it held (its SIPp stopped hard, its capture, its DNS records, its link and
    /// addresses, its run folder), tells the reports, then feeds `then` to the dispatcher.
    fn child_died(
        &mut self,
        slot: usize,
        why: &actix::MailboxError,
        then: Input,
        ctx: &mut Context<Self>,
    ) {
        let Some(child) = self.tests.remove(&slot) else {
            return self.input(then, ctx);
        };
        let name = child.id.plan.name.clone();
        error!(self.log, "the test actor of {name} died ({why}): giving back what it held";
            "run_id" => %child.id.run_id, "holds" => ?child.holds);
        self.orphans.insert(slot);
        let work = give_back(
            child.holds.clone(),
            child.sipp,
            &self.services,
            self.keeper.clone(),
            self.log.new(o!("run_id" => child.id.run_id.0.clone())),
        );
        let state = match then {
            Input::Prepared { .. } => StateName::NotReady,
            _ => StateName::Dirty,
        };
        let log = self.log.clone();
        let why = why.to_string();
        ctx.spawn(work.into_actor(self).map(move |(given, problems), act, ctx| {
            let mut reason = format!("its test actor died ({why}): the supervisor gave back {given}");
            if !problems.is_empty() {
                reason = format!("{reason}, except: {}", problems.join("; "));
            }
            info!(log, "what the test actor of {name} held is given back"; "given" => &given);
            act.bus.emit(Event::Test(TestStateEvent {
                index: child.id.run.index,
                attempt: child.id.run.attempt,
                name: name.clone(),
                run_id: child
                    .holds
                    .folder
                    .as_ref()
                    .map(|(id, _)| id.clone())
                    .unwrap_or_else(|| child.id.run_id.clone()),
                run_id_number: child.id.run_id_number.clone(),
                state,
                at: SystemTime::now(),
                took: None,
                cps: None,
                sipp_time: None,
                stats: None,
                reason: Some(reason),
                run_folder: child.holds.folder.as_ref().map(|(_, f)| f.clone()),
                pcap: None,
                evidence: None,
                folder_fate: None,
            }));
            act.input(then, ctx);
        }));
    }

    /// GLOBAL's before.sh (the dispatcher asks only when the suite has a GLOBAL folder).
    fn global_before(&mut self, ctx: &mut Context<Self>) {
        let Some(global) = &self.global else {
            return self.input(Input::GlobalBeforeDone { ok: true }, ctx);
        };
        let fut = global.send(GlobalBefore);
        ctx.spawn(fut.into_actor(self).map(|reply, act, ctx| {
            let ok = reply.map(|r| r.ok).unwrap_or(false);
            act.input(Input::GlobalBeforeDone { ok }, ctx);
        }));
    }

    fn global_after(&mut self, ctx: &mut Context<Self>) {
        let Some(global) = &self.global else {
            return self.input(Input::GlobalAfterDone { ok: true }, ctx);
        };
        let fut = global.send(GlobalAfter);
        ctx.spawn(fut.into_actor(self).map(|reply, act, ctx| {
            let ok = reply.map(|r| r.ok).unwrap_or(false);
            act.input(Input::GlobalAfterDone { ok }, ctx);
        }));
    }

    fn finish(&mut self, outcome: Outcome, ctx: &mut Context<Self>) {
        self.bus.emit(Event::RunFinished {
            outcome,
            elapsed: self.started.elapsed(),
            at: SystemTime::now(),
            usage: Some(usage::Snapshot::now().since(&self.started_usage)),
        });
        info!(self.log, "run over: writing the reports";
            "runs" => outcome.total, "passed" => outcome.passed,
            "interrupted" => outcome.interrupted);
        // The reports are written on the sinks' thread; the run ends once they are.
        let written = self.bus.finish();
        ctx.wait(
            written
                .into_actor(self)
                .map(move |mut report_errors, act, ctx| {
                    for e in &report_errors {
                        error!(act.log, "report: {e}");
                    }
                    for e in act.leftovers.drain(..) {
                        error!(act.log, "{e}");
                        report_errors.push(e);
                    }
                    if let Some(done) = act.done.take() {
                        let _ = done.send(RunResult {
                            outcome,
                            report_errors,
                            fatal: act.fatal.clone(),
                            start_error: None,
                        });
                    }
                    act.tests.clear();
                    actix::ActorContext::stop(ctx);
                }),
        );
    }
}

impl Handler<Holding> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Holding, _: &mut Context<Self>) {
        // A late word from a TestActor already given up for dead changes nothing.
        if let Some(child) = self.tests.get_mut(&msg.slot) {
            child.holds = msg.holds;
        }
    }
}

impl Handler<Signal> for Supervisor {
    type Result = ();

    fn handle(&mut self, sig: Signal, ctx: &mut Context<Self>) {
        self.signal(sig.0, ctx);
    }
}

impl Supervisor {
    fn signal(&mut self, kind: SignalKind, ctx: &mut Context<Self>) {
        let reason = CancelReason::next_signal(self.core.cancel_reason());
        warn!(self.log, "{kind} received"; "now" => ?reason);
        self.bus.emit(Event::Interrupted {
            signal: kind,
            reason,
        });
        for h in self.pauses.drain(..) {
            ctx.cancel_future(h);
        }
        self.input(Input::Signal, ctx);
    }
}

/// Runs the whole plan on a new actix System and returns when it is over. `sinks` get every
/// event; `front` renders run folders, builds SIPp command lines and parses `dns.txt`;
/// `interrupts` are the run's signals (the process's, [`Interrupts::catch`], or a test's).
pub fn run(
    plan: RunPlan,
    front: FrontEnd,
    sinks: Vec<Box<dyn EventSink>>,
    log: Logger,
    interrupts: Interrupts,
) -> RunResult {
    let system = actix_rt::System::new();
    // From here on something may be made on the machine: a signal is the run's to handle.
    interrupts.take_over();
    let result = system.block_on(async move {
        remove_leftovers(&plan, &log).await;
        let services = match start_services(&plan, &log).await {
            Ok(s) => s,
            Err(e) => return RunResult::not_started(e),
        };
        let (done, result) = oneshot::channel();
        let bus = EventBus::new(sinks);
        Supervisor::new(plan, front, services, bus, log, interrupts, done).start();
        result.await.unwrap_or_else(|_| RunResult {
            outcome: Outcome::default(),
            report_errors: Vec::new(),
            fatal: Some("the supervisor stopped without an outcome".into()),
            start_error: None,
        })
    });
    // The actors go with their System; what one still held is undone by its last resort,
    // waited for here, off the actor thread: the run is over only when everything is undone.
    drop(system);
    last_resort::wait();
    result
}

impl RunResult {
    /// The run could not start: nothing was done.
    fn not_started(why: String) -> Self {
        RunResult {
            outcome: Outcome::default(),
            report_errors: Vec::new(),
            fatal: None,
            start_error: Some(why),
        }
    }
}

impl Supervisor {
    fn new(
        plan: RunPlan,
        front: FrontEnd,
        services: Services,
        bus: EventBus,
        log: Logger,
        interrupts: Interrupts,
        done: oneshot::Sender<RunResult>,
    ) -> Self {
        let config = plan.config.clone();
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
        core = core.with_retries(config.retries);
        // Which run folders stay once their test is over: one account for the whole run.
        let keeper = Arc::new(Keeper::new(config.keep, config.keep_max).handing_to(config.hand_to));
        let global = plan.global.clone().map(|g| {
            GlobalActor::new(
                g,
                config.clone(),
                front.render.clone(),
                keeper.clone(),
                bus.clone(),
                &log,
            )
            .start()
        });
        Supervisor {
            plan,
            core,
            front,
            services,
            global,
            keeper,
            bus,
            log,
            tests: HashMap::new(),
            orphans: HashSet::new(),
            pauses: VecDeque::new(),
            started: Instant::now(),
            started_usage: usage::Snapshot::now(),
            interrupts: Some(interrupts),
            fatal: None,
            leftovers: Vec::new(),
            done: Some(done),
            groups: 0,
        }
    }
}

/// Gives back what a dead TestActor held, every step tried (its SIPp first, killed; the folder
/// last): returns what was given back, in words, and what could not be.
fn give_back(
    holds: Holds,
    sipp: Addr<SippActor>,
    services: &Services,
    keeper: Arc<Keeper>,
    log: Logger,
) -> impl std::future::Future<Output = (String, Vec<String>)> + 'static {
    let net = services.net.clone();
    let dns = services.dns.clone();
    let sniffer = services.sniffer.clone();
    async move {
        let mut given = vec!["its SIPp (killed)"];
        let mut problems = Vec::new();
        // Not waited for: SIGKILL takes effect at once, and a SIPp whose link went only fails.
        sipp.do_send(StopSipp { hard: true });
        if let Some(mark) = holds.scripts {
            // Its after.sh will not run: what its scripts left goes now.
            let stopped = Leftovers::adopt(mark).stop(&log, &KillSwitch::new()).await;
            if stopped > 0 {
                given.push("what its scripts left running");
            }
        }
        let run_id = holds.folder.as_ref().map(|(id, _)| id.clone());
        if let (true, Some(sniffer), Some(run_id)) = (holds.capture, &sniffer, &run_id) {
            let run_id = run_id.clone();
            match sniffer.send(Unregister { run_id }).await {
                Ok(Ok(_)) => given.push("its capture"),
                Ok(Err(e)) => problems.push(e.to_string()),
                Err(e) => problems.push(format!("capture gone: {e}")),
            }
        }
        if let (true, Some(dns), Some(run_id)) = (holds.dns, &dns, &run_id) {
            let run_id = run_id.clone();
            match dns.send(RemoveRecords { run_id }).await {
                Ok(()) => given.push("its DNS records"),
                Err(e) => problems.push(format!("remove DNS records: {e}")),
            }
        }
        if let Some(lease) = holds.lease {
            match net.send(Release { run_id: lease }).await {
                Ok(Ok(())) => given.push("its link and addresses"),
                Ok(Err(e)) => problems.push(e.to_string()),
                Err(e) => problems.push(format!("release addresses: {e}")),
            }
        }
        if let Some((_, folder)) = holds.folder {
            // Not the test's failure: its folder is no evidence of one.
            let settled = tokio::task::spawn_blocking(move || keeper.settle(&folder, false)).await;
            match settled {
                Ok(s) => match s.problem {
                    Some(p) => problems.push(p),
                    None => given.push("its run folder"),
                },
                Err(e) => problems.push(format!("settle the run folder: {e}")),
            }
        }
        (given.join(", "), problems)
    }
}

/// What killed runs left: their SIPp processes (not in --dry-run), what their scripts left
/// running, and their run folders. Once, before the run starts.
async fn remove_leftovers(plan: &RunPlan, log: &Logger) {
    let config = &plan.config;
    if !config.dry_run {
        crate::sys::strays::kill_strays(&config.run_root, log);
    }
    // Before their folders go.
    script::stop_dead_runs(log, &KillSwitch::new()).await;
    remove_dead_runs(&config.run_root, log);
}

/// Starts the services the tests share. The network (netlink) and the capture are opened here
/// so that a missing privilege is one clear line before anything is done; the DNS server binds
/// on first use.
async fn start_services(plan: &RunPlan, log: &Logger) -> Result<Services, String> {
    let config = &plan.config;
    let net_log = log.new(o!("actor" => "net"));
    let net = if config.dry_run {
        NetActor::dry(config.dut, config.network_mask, net_log)
    } else {
        let mut net = NetActor::real(config.dut, config.network_mask, net_log)
            .await
            .map_err(|e| e.to_string())?;
        // Room for a group's pre-run of tests with a few UAs each.
        net.reserve_size = (config.group * 4).clamp(RESERVE_SIZE, 512);
        net
    }
    .start();
    let sniffer = if config.pcap {
        // The tests' addresses are of the DUT network: the kernel filter can stay as it is.
        let scope = Scope::of_network(config.dut, config.network_mask);
        match SnifferActor::open(log.new(o!("actor" => "sniffer")), Some(scope)) {
            Ok(s) => Some(s.start()),
            Err(e) => {
                // Nothing was made yet, but the NetActor is asked all the same.
                let _ = net.send(Shutdown).await;
                return Err(e.to_string());
            }
        }
    } else {
        None
    };
    // The DNS server on a thread of its own: adding or removing the records of a large
    // dns.txt, or a flood of questions, never holds up the Supervisor's answer to a signal.
    let dns = (!config.dry_run).then(|| {
        let dns_log = log.new(o!("actor" => "dns"));
        DnsActor::start_in_arbiter(&Arbiter::new().handle(), move |_| {
            DnsActor::new(RUN_ADDR, dns_log)
        })
    });
    Ok(Services { net, dns, sniffer })
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

#[cfg(test)]
mod tests {
    //! The whole runtime in a dry run, without root: signals come through the injected
    //! [`Interrupts`], sent by a sink the instant a state shows up, never after a sleep.

    use super::*;
    use crate::core::state::StateName;
    use crate::testkit::{self, states_of, Recorder};

    #[test]
    fn a_signal_during_a_pre_run_winds_the_run_down_through_every_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let plan = testkit::dry_plan(dir.path(), 4, 2, true);
        let run_root = plan.config.run_root.clone();
        let (tx, interrupts) = Interrupts::channel();
        let (sink, told) = Recorder::new();
        // The user presses Ctrl+C while the second test of the first group is being prepared
        // (its rendering waits until the Supervisor has handled it).
        let waiting = told.clone();
        let front = testkit::front_end_rendering(move |ctx| {
            if ctx.test_name.0 == "test-1" {
                tx.send(SignalKind::Interrupt).unwrap();
                waiting.wait_interrupted();
            }
        });
        let result = run(
            plan,
            front,
            vec![Box::new(sink)],
            testkit::log(),
            interrupts,
        );
        assert!(result.outcome.interrupted, "{result:?}");
        assert_eq!((result.outcome.total, result.outcome.passed), (2, 0));
        let states = told.states();
        // Both tests past PREPARING are cleaned (in reverse order); nothing else started.
        for index in [0, 1] {
            assert_eq!(
                states_of(&states, index),
                [
                    StateName::Preparing,
                    StateName::Ready,
                    StateName::Cleaning,
                    StateName::Clean
                ],
                "run {index}: {states:?}"
            );
        }
        assert!(states.iter().all(|(i, _)| *i < 2), "{states:?}");
        assert!(testkit::run_folders(&run_root).is_empty());
    }

    /// A stand-in service: answers [`Shutdown`] after `delay` with `fails` or Ok, and says it
    /// was done.
    struct Service {
        delay: Duration,
        fails: bool,
        done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl Actor for Service {
        type Context = Context<Self>;
    }

    impl Handler<Shutdown> for Service {
        type Result = actix::ResponseFuture<Result<(), crate::messages::ShutdownError>>;

        fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
            let (delay, fails, done) = (self.delay, self.fails, self.done.clone());
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                if fails {
                    Err(
                        crate::net::NetError::Cleanup(vec!["delete link sipp-abcdef".into()])
                            .into(),
                    )
                } else {
                    Ok(())
                }
            })
        }
    }

    #[test]
    fn every_service_is_shut_down_and_waited_for_whatever_the_others_do() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let flags: Vec<_> = (0..3)
            .map(|_| std::sync::Arc::new(AtomicBool::new(false)))
            .collect();
        let failures = actix_rt::System::new().block_on({
            let flags = flags.clone();
            async move {
                let service = |delay: u64, fails: bool, done: &std::sync::Arc<AtomicBool>| {
                    Service {
                        delay: Duration::from_millis(delay),
                        fails,
                        done: done.clone(),
                    }
                    .start()
                    .recipient()
                };
                // A service whose actor is gone (it panicked, say): its mailbox is closed.
                let gone = Service {
                    delay: Duration::ZERO,
                    fails: false,
                    done: std::sync::Arc::new(AtomicBool::new(false)),
                }
                .start();
                let gone_recipient = gone.clone().recipient();
                gone.do_send(Stop);
                while gone.connected() {
                    tokio::task::yield_now().await;
                }
                shutdown_all(vec![
                    ("network", service(0, true, &flags[0])),
                    ("gone", gone_recipient),
                    ("dns", service(50, false, &flags[1])),
                    ("capture", service(10, false, &flags[2])),
                ])
                .await
            }
        });
        assert!(
            flags.iter().all(|f| f.load(Ordering::SeqCst)),
            "every reply awaited"
        );
        assert_eq!(
            failures,
            [
                "network cleanup: delete link sipp-abcdef".to_string(),
                "gone cleanup: the service is gone (Mailbox has closed)".to_string(),
            ]
        );
    }

    #[derive(actix::Message)]
    #[rtype(result = "()")]
    struct Stop;

    impl Handler<Stop> for Service {
        type Result = ();
        fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
            actix::ActorContext::stop(ctx);
        }
    }

    #[test]
    fn signals_that_came_before_the_start_run_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let plan = testkit::dry_plan(dir.path(), 2, 1, true);
        let run_root = plan.config.run_root.clone();
        let (tx, interrupts) = Interrupts::channel();
        tx.send(SignalKind::Terminate).unwrap();
        let (sink, told) = Recorder::new();
        let result = run(
            plan,
            testkit::front_end(),
            vec![Box::new(sink)],
            testkit::log(),
            interrupts,
        );
        assert!(result.outcome.interrupted);
        assert_eq!(result.outcome.total, 0);
        assert!(told.states().is_empty());
        // Not even GLOBAL's run folder was made.
        assert!(std::fs::read_dir(&run_root).unwrap().next().is_none());
    }
}
