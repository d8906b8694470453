//! What the runtime executes: the collected tests, their SIPp instances and run groups, and the
//! run-wide options. Built by the front end (`src/`), read-only here.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A test's name: the name of its folder in the suite.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TestName(pub String);

impl fmt::Display for TestName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SIPp instance's name, `uaN`: it keeps one address for the whole test.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UaName(pub String);

impl fmt::Display for UaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The 6 random lowercase letters that name one run of one test (`sipp-<run_id>`, its folder).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub String);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl RunId {
    /// A fresh random run id: 6 lowercase letters.
    pub fn random() -> Self {
        use rand::RngExt;
        let mut rng = rand::rng();
        RunId(
            (0..6)
                .map(|_| rng.random_range(b'a'..=b'z') as char)
                .collect(),
        )
    }
}

/// 12 random digits, offered to templates as `test.run_id_number`.
pub fn random_run_id_number() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..12)
        .map(|_| rng.random_range(b'0'..=b'9') as char)
        .collect()
}

/// `uas` instances start before any `uac` of their run group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Uas,
    Uac,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Uas => "uas",
            Role::Uac => "uac",
        }
    }
}

/// One scenario file: which instance runs it, in which role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// File name inside the test (and run) folder.
    pub file: String,
    pub role: Role,
    pub ua: UaName,
}

/// The scenarios that run at the same time; run groups of a test run one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunGroup {
    /// The file-name prefix (`part0` of `part0_uac_ua0.xml`); `""` for no prefix.
    pub id: String,
    /// UAS scenarios first, then UAC; by instance name within a role.
    pub scenarios: Vec<Scenario>,
}

/// One test of the suite, as collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestPlan {
    pub name: TestName,
    /// The test's folder in the suite (copied into each run folder).
    pub folder: PathBuf,
    /// Every instance of the test, sorted; each gets one address per run.
    pub uas: Vec<UaName>,
    /// Ordered by id.
    pub run_groups: Vec<RunGroup>,
    /// Set when the folder does not define a runnable test; the run makes it NOT READY with this.
    pub definition_error: Option<String>,
}

/// The GLOBAL pseudo-test: before.sh once before the first group, after.sh once after the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalPlan {
    pub folder: PathBuf,
}

/// Which run folders stay once their test is over (issue 11: the evidence of a failure is kept
/// by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Every run folder is removed.
    None,
    /// The folder of a run that did not pass (NOT READY, FAIL, DIRTY) stays, up to
    /// `--keep-max`; a passing run's folder is removed.
    Failed,
    /// Every run folder stays (`--leave-temp`).
    All,
}

impl Keep {
    pub fn as_str(self) -> &'static str {
        match self {
            Keep::None => "none",
            Keep::Failed => "failed",
            Keep::All => "all",
        }
    }

    /// As `--keep` spells it.
    pub fn parse(s: &str) -> Option<Keep> {
        [Keep::None, Keep::Failed, Keep::All]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// The user kept evidence is handed to: the one who ran sudo (`SUDO_UID`, `SUDO_GID`), so that
/// they open a kept pcap without root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandTo {
    pub uid: u32,
    pub gid: u32,
}

/// Run-wide options the runtime needs; validated by the front end.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub dut: Ipv4Addr,
    pub network_mask: u8,
    /// Tests run at the same time (>= 1).
    pub group: usize,
    pub group_pause: Duration,
    pub group_stop_first_fail: bool,
    /// `--retries`: how many more tries a run that did not pass gets (FLAKY if one passes).
    pub retries: u32,
    /// `--window`: keep `group` tests under way, no groups behind a barrier.
    pub window: bool,
    /// Test runs in all (wrapping around the list); `None` = one per test.
    pub total: Option<u64>,
    /// Shuffle seed; `Some` turns `--random` on.
    pub random_seed: Option<u64>,
    pub repeat: bool,
    pub dry_run: bool,
    pub fail_expected: bool,
    /// Which run folders stay once their test is over (`--keep`; `--leave-temp` is `All`).
    pub keep: Keep,
    /// With `Keep::Failed`: at most this many failed runs' folders are kept (`--keep-max`).
    pub keep_max: u64,
    /// Run through sudo: kept run folders are handed to that user once their test is over.
    pub hand_to: Option<HandTo>,
    /// Where run folders are made: `<run_root>/<test>/<run_id>/`.
    pub run_root: PathBuf,
    pub script_timeout: Duration,
    pub test_timeout: Duration,
    /// Capture each test's packets to `sipp-<run_id>.pcap` (not with `--no-pcap` or
    /// `--dry-run`).
    pub pcap: bool,
}

/// Everything a run needs: the tests, the GLOBAL test, the options.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub tests: Arc<Vec<TestPlan>>,
    pub global: Option<GlobalPlan>,
    pub config: Arc<RunConfig>,
}

/// The keywords of one test run that templates see (the front end adds its own extras).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderContext {
    pub test_name: TestName,
    pub run_id: RunId,
    pub run_id_number: String,
    pub dut: Ipv4Addr,
    /// `uaN` -> its address in this run.
    pub ua_hosts: BTreeMap<UaName, Ipv4Addr>,
}

/// The front end's part of preparing a run folder: rendering its templated files.
/// Called off the actix thread (it reads and writes files).
pub trait Render: Send + Sync + 'static {
    /// Render the files of a freshly copied run folder in place. The error is one line naming
    /// the file, the line and the problem. Once `cancelled` says so (an interrupt), give up
    /// at once with an error, writing nothing more.
    fn render(
        &self,
        run_folder: &std::path::Path,
        ctx: &RenderContext,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), String>;
}

/// A socket a SIPp instance must have open before the next wave of its stage starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    pub tcp: bool,
    pub addr: std::net::SocketAddrV4,
}

/// One SIPp process to start, as the front end built it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceLaunch {
    /// Names the instance in messages: the scenario's file stem, e.g. `part0_uac_ua1`.
    pub label: String,
    pub role: Role,
    /// Start order within the stage: every instance of a lower wave is listening before an
    /// instance of a higher wave starts (UAS and 3PCC slaves, then UACs, then a 3PCC master).
    pub wave: u8,
    /// The program and its arguments; run with the run folder as working directory.
    pub argv: Vec<String>,
    /// What "listening" means for this instance (empty: ready once started).
    pub listen: Vec<Listen>,
    /// SIPp's error trace, relative to the run folder, with [`InstanceLaunch::PID`] where SIPp
    /// puts its process id (`uac_ua1_{pid}_errors.log`): the reason of a failure.
    pub error_file: String,
    /// The `-trace_stat` CSV, relative to the run folder: the CPS of a UAC.
    pub stat_file: String,
    /// Where its standard output and error go, relative to the run folder.
    pub output_file: String,
    /// Environment variables set for it (e.g. `SSLKEYLOGFILE`, `LD_PRELOAD`).
    pub env: Vec<(String, String)>,
}

impl InstanceLaunch {
    /// Stands for the SIPp process's id in [`InstanceLaunch::error_file`].
    pub const PID: &'static str = "{pid}";
}

/// The instances that run at the same time: one run group (once per repetition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub run_group: String,
    pub instances: Vec<InstanceLaunch>,
}

/// Everything the SippActor runs for one test run, stage after stage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LaunchPlan {
    pub stages: Vec<Stage>,
}

impl LaunchPlan {
    /// The first UAC of the first stage that has one: its statistics give the test's CPS.
    pub fn first_uac(&self) -> Option<&InstanceLaunch> {
        self.stages
            .iter()
            .flat_map(|s| s.instances.iter())
            .find(|i| i.role == Role::Uac)
    }
}

/// The front end's part of the DNS records of a test run: its rendered `dns.txt`, parsed.
/// Called off the actix thread after rendering.
pub trait Zone: Send + Sync + 'static {
    /// `None` when the run folder has no `dns.txt`; the error names the file and line. Gives up
    /// (an error) once `cancelled()` says so: the run was interrupted.
    fn records(
        &self,
        run_folder: &std::path::Path,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<Vec<hickory_server::proto::rr::Record>>, String>;
}

/// What the front end lends the runtime to prepare a test run.
#[derive(Clone)]
pub struct FrontEnd {
    pub render: Arc<dyn Render>,
    pub launch: Arc<dyn Launch>,
    pub zone: Arc<dyn Zone>,
    /// Looks at each run's evidence in post-run (the HTML report's ladders); `None`: nobody.
    pub evidence: Option<Arc<dyn Evidence>>,
}

/// What a test run leaves for the front end to look at in post-run: after its capture is
/// written, before its run folder may be removed.
#[derive(Debug, Clone)]
pub struct RunEvidence {
    pub index: u64,
    pub test: Arc<TestPlan>,
    pub run_id: RunId,
    pub folder: PathBuf,
    /// The run's pcap, when its packets were captured.
    pub pcap: Option<PathBuf>,
    /// Each instance's address in this run.
    pub hosts: BTreeMap<UaName, Ipv4Addr>,
    pub dut: Ipv4Addr,
    /// The run ended in SUCCESS (not FAIL, nor interrupted before it ran).
    pub succeeded: bool,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// The run folder stays after post-run.
    pub folder_kept: bool,
}

/// What the front end made of a run's evidence, opaque to the runtime: handed back in the
/// run's last event (CLEAN or DIRTY, [`crate::events::TestStateEvent::evidence`]).
pub type Attachment = Arc<dyn std::any::Any + Send + Sync>;

/// The front end's look at a test run's evidence before its run folder may be removed (the
/// HTML report reads the run's SIP ladder from its pcap). Called on the blocking pool, once per
/// run that reached post-run with a run folder, unless a second interrupt asked to stop at once.
pub trait Evidence: Send + Sync + 'static {
    fn collect(&self, run: &RunEvidence) -> Option<Attachment>;
}

/// The front end's part of starting SIPp: the command lines of a test run's instances. Called
/// off the actix thread after rendering (it may read the rendered `3pcc.txt`).
pub trait Launch: Send + Sync + 'static {
    /// The error is one line naming the file and the problem.
    fn launch_plan(
        &self,
        plan: &TestPlan,
        run_folder: &std::path::Path,
        ctx: &RenderContext,
    ) -> Result<LaunchPlan, String>;
}
