//! Test support for the actors' own tests (no root): a front end that renders nothing, run
//! plans over throw-away suites, and an event sink that records what the run told and can act
//! on it (signal the run when a state shows up, as a user would, without sleeping).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use slog::Logger;

use crate::core::plan::{
    FrontEnd, GlobalPlan, Keep, Launch, LaunchPlan, Render, RenderContext, RunConfig, RunPlan,
    TestName, TestPlan, UaName, Zone,
};
use crate::core::state::StateName;
use crate::events::{Event, EventSink};

/// Renders nothing, launches nothing, serves no records.
struct Inert;

impl Render for Inert {
    fn render(&self, _: &Path, _: &RenderContext, _: &dyn Fn() -> bool) -> Result<(), String> {
        Ok(())
    }
}

impl Launch for Inert {
    fn launch_plan(&self, _: &TestPlan, _: &Path, _: &RenderContext) -> Result<LaunchPlan, String> {
        Ok(LaunchPlan::default())
    }
}

impl Zone for Inert {
    fn records(
        &self,
        _: &Path,
        _: &dyn Fn() -> bool,
    ) -> Result<Option<Vec<hickory_server::proto::rr::Record>>, String> {
        Ok(None)
    }
}

pub fn front_end() -> FrontEnd {
    FrontEnd {
        render: Arc::new(Inert),
        launch: Arc::new(Inert),
        zone: Arc::new(Inert),
        evidence: None,
    }
}

/// A front end whose SIPp command lines are `launch`'s, and whose `dns.txt` has one record.
pub fn front_end_with(launch: LaunchPlan) -> FrontEnd {
    struct Fixed(LaunchPlan);
    impl Launch for Fixed {
        fn launch_plan(
            &self,
            _: &TestPlan,
            _: &Path,
            _: &RenderContext,
        ) -> Result<LaunchPlan, String> {
            Ok(self.0.clone())
        }
    }
    struct OneRecord;
    impl Zone for OneRecord {
        fn records(
            &self,
            _: &Path,
            _: &dyn Fn() -> bool,
        ) -> Result<Option<Vec<hickory_server::proto::rr::Record>>, String> {
            use hickory_server::proto::rr::{rdata::A, Name, RData, Record};
            let name = Name::from_ascii("t.example.com.").map_err(|e| e.to_string())?;
            Ok(Some(vec![Record::from_rdata(
                name,
                60,
                RData::A(A::new(10, 0, 0, 2)),
            )]))
        }
    }
    FrontEnd {
        render: Arc::new(Inert),
        launch: Arc::new(Fixed(launch)),
        zone: Arc::new(OneRecord),
        evidence: None,
    }
}

pub fn log() -> Logger {
    Logger::root(slog::Discard, slog::o!())
}

/// A dry run's options: groups of `group`, run folders under `run_root`.
pub fn dry_config(run_root: &Path, group: usize) -> RunConfig {
    RunConfig {
        retries: 0,
        dut: Ipv4Addr::new(10, 0, 0, 1),
        network_mask: 24,
        group,
        group_pause: Duration::ZERO,
        group_stop_first_fail: false,
        window: false,
        total: None,
        random_seed: None,
        repeat: false,
        dry_run: true,
        fail_expected: false,
        keep: Keep::None,
        keep_max: 0,
        hand_to: None,
        run_root: run_root.to_path_buf(),
        script_timeout: Duration::from_secs(10),
        test_timeout: Duration::from_secs(10),
        pcap: false,
    }
}

/// A suite of `tests` one-UA tests (and a GLOBAL folder when `global`) under `dir/suite`, and
/// the run plan of a dry run of it with run folders under `dir/runs`.
pub fn dry_plan(dir: &Path, tests: usize, group: usize, global: bool) -> RunPlan {
    let suite = dir.join("suite");
    let plans = (0..tests)
        .map(|i| {
            let name = format!("test-{i}");
            let folder = suite.join(&name);
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("uac_ua0.xml"), "<scenario/>\n").unwrap();
            TestPlan {
                name: TestName(name),
                folder,
                uas: vec![UaName("ua0".into())],
                run_groups: Vec::new(),
                definition_error: None,
            }
        })
        .collect();
    let global = global.then(|| {
        let folder = suite.join("GLOBAL");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("before.sh"), "true\n").unwrap();
        GlobalPlan { folder }
    });
    let runs = dir.join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    RunPlan {
        tests: Arc::new(plans),
        global,
        config: Arc::new(dry_config(&runs, group)),
    }
}

/// Run folders left under a run root: `<test>/<run_id>` paths.
pub fn run_folders(run_root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(run_root).into_iter().flatten().flatten() {
        out.extend(
            std::fs::read_dir(t.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|r| r.path()),
        );
    }
    out
}

/// A front end whose rendering calls `hook` with each run's keywords first (on the blocking
/// pool, in the middle of that run's pre-run).
pub fn front_end_rendering(hook: impl Fn(&RenderContext) + Send + Sync + 'static) -> FrontEnd {
    struct Hooked<F>(F);
    impl<F: Fn(&RenderContext) + Send + Sync + 'static> Render for Hooked<F> {
        fn render(
            &self,
            _: &Path,
            ctx: &RenderContext,
            _: &dyn Fn() -> bool,
        ) -> Result<(), String> {
            (self.0)(ctx);
            Ok(())
        }
    }
    FrontEnd {
        render: Arc::new(Hooked(hook)),
        ..front_end()
    }
}

/// One test state as a sink saw it: `(run index, state)`.
pub type SeenState = (u64, StateName);

/// Records the test states and counts the interrupts a run told; a test can wait until the run
/// has told an interrupt ([`Told::wait_interrupted`]).
pub struct Recorder {
    told: Arc<Told>,
}

#[derive(Default)]
pub struct Told {
    states: Mutex<Vec<SeenState>>,
    interrupts: Mutex<usize>,
    interrupted: Condvar,
}

impl Told {
    pub fn states(&self) -> Vec<SeenState> {
        self.states.lock().unwrap().clone()
    }

    /// Blocks until the run told an interrupt (the Supervisor handled a signal); panics after
    /// 10 s (a hang).
    pub fn wait_interrupted(&self) {
        let told = self.interrupts.lock().unwrap();
        let (told, timeout) = self
            .interrupted
            .wait_timeout_while(told, Duration::from_secs(10), |n| *n == 0)
            .unwrap();
        assert!(*told > 0 && !timeout.timed_out(), "no interrupt told");
    }
}

impl Recorder {
    pub fn new() -> (Recorder, Arc<Told>) {
        let told = Arc::new(Told::default());
        (Recorder { told: told.clone() }, told)
    }
}

impl EventSink for Recorder {
    fn event(&mut self, event: &Event) {
        match event {
            Event::Test(e) => self.told.states.lock().unwrap().push((e.index, e.state)),
            Event::Interrupted { .. } => {
                *self.told.interrupts.lock().unwrap() += 1;
                self.told.interrupted.notify_all();
            }
            _ => {}
        }
    }
}

/// The states of run `index`, in order.
pub fn states_of(states: &[SeenState], index: u64) -> Vec<StateName> {
    states
        .iter()
        .filter(|(i, _)| *i == index)
        .map(|(_, s)| *s)
        .collect()
}
