//! A lab for end-to-end runs against a real DUT: `lab/lab.sh` makes two network namespaces,
//! `<name>-dut` running Kamailio (a stateful SIP proxy, `lab/kamailio.cfg`) and `<name>-run`
//! where sipplauncher and SIPp run, joined by one veth pair and connected to nothing else.
//!
//! ```ignore
//! let lab = Lab::up("call_through_kamailio");
//! let mut cmd = Command::new(common::BIN);
//! cmd.args(["--dut", &lab.dut().to_string(), "--testsuite", "..."]);
//! let out = lab.wrap(&cmd).output().unwrap(); // runs in the runner's namespace
//! assert!(!lab.links().iter().any(|l| l.starts_with("sipp-")));
//! // dropping `lab` takes it down
//! ```
//!
//! Root only. A test that needs a lab is marked
//! `#[cfg_attr(not(feature = "lab"), ignore = "needs root and a lab: ...")]` and starts with
//! `let lab = Lab::up("what");`: without `--features lab` it is ignored (libtest shows it so),
//! never passed without doing anything; with it, a lab that cannot be made (not root, no
//! `kamailio`/`sipp`) fails the test with the reason. CI runs as root with the feature and the
//! tools (`.ci/run`), and fails if any test was ignored but the measurements.
//!
//! Each lab gets a unique short name (`sl` + 6 letters) and its own subnet `10.99.<n>.0/24`
//! (DUT `.1`, runner `.2`), so that labs of tests running in parallel threads (or processes)
//! never meet: they are isolated by their namespaces anyway, the subnets only keep captures and
//! logs apart. Dropping a [`Lab`] (also while panicking) takes it down: Kamailio and anything
//! left running in its namespaces are stopped, the namespaces and their files are removed.

// A harness: not every helper is used by the tests of the moment.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::ffi::OsStr;
use std::hash::{BuildHasher, Hasher};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Running as root (the lab makes namespaces and links).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `lab/lab.sh` of this repository.
pub fn lab_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("lab/lab.sh")
}

/// Whether `program` is on PATH (or in the sbin folders, where `kamailio` lives).
pub fn have(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .any(|d| d.join(program).is_file())
}

/// Why no lab can be made here, or `None` when one can.
pub fn unavailable() -> Option<String> {
    if !is_root() {
        return Some("not root".into());
    }
    let missing: Vec<&str> = ["kamailio", "sipp", "ip", "ss"]
        .into_iter()
        .filter(|p| !have(p))
        .collect();
    if missing.is_empty() {
        None
    } else {
        Some(format!(
            "{} not installed (apt-get install -y kamailio sip-tester iproute2)",
            missing.join(", ")
        ))
    }
}

static LABS: AtomicU32 = AtomicU32::new(0);

/// A lab that is up; taken down on drop.
pub struct Lab {
    name: String,
    hint: String,
    /// The first three octets of the lab's /24.
    net: [u8; 3],
    /// Runner namespaces (1 but in a scale-out lab).
    runners: u32,
}

impl Lab {
    /// Brings a lab up; `name_hint` only appears in messages; the lab's name is `sl` + 6
    /// random letters. Panics with the reason when no lab can be made here (not root, a tool
    /// missing: tests that call this are ignored in builds without `--features lab`, so that
    /// one that cannot run is never counted as passed), or with lab.sh's output when it fails.
    pub fn up(name_hint: &str) -> Lab {
        Lab::up_with(name_hint, 1, None)
    }

    /// [`Lab::up`] for a scale-out lab of `runners` runner namespaces on one bridge with the
    /// DUT (`LAB_RUNNERS`), as that many machines on the DUT's link.
    pub fn up_runners(name_hint: &str, runners: u32) -> Lab {
        Lab::up_with(name_hint, runners, None)
    }

    /// [`Lab::up`] with `runners` runner namespaces and a DUT that carries at most
    /// `call_limit` calls at once (the next INVITEs get 503: `LAB_CALL_LIMIT` of lab.sh), or no
    /// limit.
    pub fn up_with(name_hint: &str, runners: u32, call_limit: Option<u32>) -> Lab {
        if let Some(why) = unavailable() {
            panic!("{name_hint}: no lab can be made here: {why}");
        }
        sweep_orphans();
        let seq = LABS.fetch_add(1, Ordering::Relaxed);
        let n = 1 + ((std::process::id() % 254) + seq * 37) % 254;
        let lab = Lab {
            name: unique_name(seq),
            hint: name_hint.to_string(),
            net: [10, 99, n as u8],
            runners,
        };
        let out = Command::new(lab_script())
            .args(["up", &lab.name])
            .env("LAB_NET", lab.net_prefix())
            .env("LAB_RUNNERS", runners.to_string())
            .env(
                "LAB_CALL_LIMIT",
                call_limit.map(|n| n.to_string()).unwrap_or_default(),
            )
            .stdin(Stdio::null())
            .output()
            .expect("run lab/lab.sh");
        if !out.status.success() {
            // lab.sh takes down what it made when up fails: nothing for Drop to do.
            std::mem::forget(lab);
            panic!(
                "{name_hint}: lab.sh up failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Who made it: a later test process takes it down if this one dies without Drop.
        let _ = std::fs::write(
            lab.state_dir().join("owner"),
            std::process::id().to_string(),
        );
        lab
    }

    /// The lab's name: its namespaces are `<name>-dut` and `<name>-run`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The runner's namespace, where sipplauncher and SIPp run.
    pub fn run_ns(&self) -> String {
        format!("{}-run", self.name)
    }

    /// Runner `k`'s namespace (1..=runners; runner 1 is [`Lab::run_ns`]).
    pub fn runner_ns(&self, k: u32) -> String {
        assert!((1..=self.runners).contains(&k), "no runner {k}");
        if k == 1 {
            self.run_ns()
        } else {
            format!("{}-run{k}", self.name)
        }
    }

    /// Runner `k`'s own address (runner 1's is [`Lab::runner`]).
    pub fn runner_addr(&self, k: u32) -> Ipv4Addr {
        self.addr(1 + k as u8)
    }

    /// The DUT's namespace, where Kamailio runs.
    pub fn dut_ns(&self) -> String {
        format!("{}-dut", self.name)
    }

    /// `10.99.<n>`: the lab's /24 without its last octet (what `LAB_NET` was).
    pub fn net_prefix(&self) -> String {
        let [a, b, c] = self.net;
        format!("{a}.{b}.{c}")
    }

    /// An address of the lab's /24: `addr(1)` is the DUT, `addr(2)` the runner; the others are
    /// free for tests (put them on a link of the runner's namespace: the DUT reaches them).
    pub fn addr(&self, host: u8) -> Ipv4Addr {
        let [a, b, c] = self.net;
        Ipv4Addr::new(a, b, c, host)
    }

    /// The DUT's address (Kamailio listens there on UDP and TCP port 5060).
    pub fn dut(&self) -> Ipv4Addr {
        self.addr(1)
    }

    /// The runner's own address, on its veth `lab-run` (the DUT's DNS server is looked for
    /// there: `/etc/netns/<name>-dut/resolv.conf`).
    pub fn runner(&self) -> Ipv4Addr {
        self.addr(2)
    }

    /// `program args...` to be run in the runner's namespace (`ip netns exec <name>-run ...`).
    pub fn command<I, S>(&self, program: impl AsRef<OsStr>, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command_in(1, program, args)
    }

    /// `program args...` to be run in runner `k`'s namespace.
    pub fn command_in<I, S>(&self, k: u32, program: impl AsRef<OsStr>, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new("ip");
        c.args(["netns", "exec"])
            .arg(self.runner_ns(k))
            .arg(program)
            .args(args);
        c
    }

    /// `cmd` (program, arguments, environment changes, working folder) to be run in the
    /// runner's namespace instead (e.g. a sipplauncher command line built as usual).
    pub fn wrap(&self, cmd: &Command) -> Command {
        self.wrap_in(1, cmd)
    }

    /// [`Lab::wrap`] into runner `k`'s namespace.
    pub fn wrap_in(&self, k: u32, cmd: &Command) -> Command {
        let mut c = self.command_in(k, cmd.get_program(), cmd.get_args());
        for (key, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(key, v),
                None => c.env_remove(key),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            c.current_dir(d);
        }
        c
    }

    /// Runs `program args...` in the runner's namespace and returns its output (stdin null).
    pub fn output<I, S>(&self, program: impl AsRef<OsStr>, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(program, args)
            .stdin(Stdio::null())
            .output()
            .expect("run ip netns exec")
    }

    /// Runs `program args...` in the runner's namespace; panics with its output if it fails.
    pub fn run_ok<I, S>(&self, program: &str, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args
            .into_iter()
            .map(|a| a.as_ref().to_os_string())
            .collect();
        let out = self.output(program, &args);
        assert!(
            out.status.success(),
            "{}: `{program} {:?}` in {} failed ({}):\n{}{}",
            self.hint,
            args,
            self.run_ns(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The names of the links in the runner's namespace (`lo`, `lab-run`, and whatever tests or
    /// sipplauncher added: no `sipp-*` link may be left after a run).
    pub fn links(&self) -> Vec<String> {
        let out = self.run_ok("ip", ["-j", "link", "show"]);
        let links: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("ip -j link show: json");
        links
            .as_array()
            .expect("ip -j link show: an array")
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(str::to_string))
            .collect()
    }

    /// Puts `addrs` (as /32) on a new bridge link `link` (up) in the runner's namespace: extra
    /// addresses in the lab's /24 that the DUT reaches through the veth (the runner's kernel
    /// answers ARP for them). A bridge, since this kernel may have no `dummy` driver.
    pub fn add_addresses(&self, link: &str, addrs: &[Ipv4Addr]) {
        self.run_ok("ip", ["link", "add", link, "type", "bridge"]);
        self.run_ok("ip", ["link", "set", link, "up"]);
        for a in addrs {
            self.run_ok("ip", ["addr", "add", &format!("{a}/32"), "dev", link]);
        }
    }

    /// Waits until something listens on UDP `addr:port` in the runner's namespace (e.g. a UAS
    /// SIPp just started); panics after `timeout`.
    pub fn wait_udp_listen(&self, addr: Ipv4Addr, port: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let filter = format!("src {addr}:{port}");
        loop {
            let out = self.output("ss", ["-Hlun", &filter]);
            if out.status.success() && !out.stdout.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: nothing listens on udp {addr}:{port} after {timeout:?}",
                self.hint
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kamailio's log so far (its stderr: startup lines, warnings, errors).
    pub fn kamailio_log(&self) -> String {
        std::fs::read_to_string(self.state_dir().join("kamailio.log")).unwrap_or_default()
    }

    fn state_dir(&self) -> PathBuf {
        Path::new(STATE_ROOT).join(&self.name)
    }

    /// Whether the lab's namespaces exist (false once it is down).
    pub fn exists(&self) -> bool {
        namespaces().iter().any(|n| n.starts_with(&self.name))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{}: lab {} ({}.0/24), Kamailio's log:\n{}",
                self.hint,
                self.name,
                self.net_prefix(),
                self.kamailio_log()
            );
        }
        match Command::new(lab_script())
            .args(["down", &self.name])
            .env("LAB_NET", self.net_prefix())
            .env("LAB_RUNNERS", self.runners.to_string())
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "{}: lab.sh down {} failed ({}):\n{}",
                self.hint,
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("{}: lab.sh down {}: {e}", self.hint, self.name),
        }
    }
}

const STATE_ROOT: &str = "/run/sipplauncher-lab";

/// Takes down the labs of test processes that died without dropping them (killed, timed out):
/// those whose `owner` file names a process that no longer exists.
fn sweep_orphans() {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| {
        let Ok(dir) = std::fs::read_dir(STATE_ROOT) else {
            return;
        };
        for lab in dir.flatten() {
            let name = lab.file_name().to_string_lossy().into_owned();
            let Ok(owner) = std::fs::read_to_string(lab.path().join("owner")) else {
                continue;
            };
            let Ok(pid) = owner.trim().parse::<u32>() else {
                continue;
            };
            if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            eprintln!("note: taking down lab {name}, left by process {pid}");
            let _ = Command::new(lab_script())
                .args(["down", &name])
                .stdin(Stdio::null())
                .output();
        }
    });
}

/// The network namespaces that exist (`ip netns list`).
pub fn namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// `sl` + 6 random lowercase letters (namespace names stay short: `sl??????-dut`, 12 chars).
fn unique_name(seq: u32) -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u32(seq);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    let mut x = h.finish();
    let mut name = String::from("sl");
    for _ in 0..6 {
        name.push((b'a' + (x % 26) as u8) as char);
        x /= 26;
    }
    name
}

/// Waits for `child` at most `timeout`; kills it (and says so) when it is still running then.
pub fn wait_with_timeout(mut child: Child, timeout: Duration, what: &str) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().expect("try_wait") {
            Some(_) => return child.wait_with_output().expect("wait_with_output"),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("wait_with_output");
                panic!(
                    "{what}: still running after {timeout:?}, killed:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// An OPTIONS request to SIPp's remote host (the DUT) itself, as a scenario's `<send>`.
pub const OPTIONS_SEND: &str = r#"  <send retrans="500">
    <![CDATA[

      OPTIONS sip:ping@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: <sip:lab@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:ping@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 OPTIONS
      Contact: <sip:lab@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
"#;

/// A scenario `name`: [`OPTIONS_SEND`], then `then` (its elements, each on its own line).
pub fn options_then(name: &str, then: &[&str]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"{name}\">\n{OPTIONS_SEND}"
    );
    for element in then {
        x.push_str(&format!("  {element}\n"));
    }
    x.push_str("</scenario>\n");
    x
}

/// A call through SIPp's remote host (the DUT) to `CALLEE` (an `ip:port`): the DUT relays the
/// INVITE to the host of the Request-URI; no Record-Route, so ACK and BYE carry the callee's
/// Contact as Request-URI and are relayed the same way.
pub const CALL_THROUGH_DUT: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="call CALLEE through the DUT">
  <send retrans="500">
    <![CDATA[

      INVITE sip:x@CALLEE SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: <sip:lab@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:x@CALLEE>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:lab@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      Max-Forwards: 70
      From: <sip:lab@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:x@CALLEE>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:lab@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      Max-Forwards: 70
      From: <sip:lab@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:x@CALLEE>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:lab@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"#;

/// The answering side of [`CALL_THROUGH_DUT`] (SIPp's built-in `uas` would wait 4 s at its end).
pub const ANSWER: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answer a call">
  <recv request="INVITE"/>
  <send>
    <![CDATA[

      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"#;

/// SIPp's common options here: one call, no keyboard, bounded in time.
fn sipp_args(lab: &Lab, scenario: &[&str], ip: Ipv4Addr, port: u16) -> Vec<String> {
    let mut a = vec![lab.dut().to_string()];
    a.extend(scenario.iter().map(|s| s.to_string()));
    a.extend(
        [
            "-i",
            &ip.to_string(),
            "-p",
            &port.to_string(),
            "-m",
            "1",
            "-nostdin",
            "-recv_timeout",
            "5000",
            "-timeout",
            "20",
        ]
        .map(str::to_string),
    );
    a
}

fn show(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The lab itself works: Kamailio answers an OPTIONS ping, and relays a call from one address
/// of the runner to another (the way sipplauncher's UAs will use it), with plain SIPp.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn lab_options_ping_and_call_through_kamailio() {
    let lab = Lab::up("lab_options_ping_and_call_through_kamailio");
    let name = lab.name().to_string();
    assert!(lab.exists());
    assert!(namespaces().contains(&lab.dut_ns()));
    assert!(namespaces().contains(&lab.run_ns()));
    let dir = tempfile::tempdir().unwrap();
    let options = dir.path().join("options.xml");
    let ping = options_then("OPTIONS ping to the DUT", &[r#"<recv response="200"/>"#]);
    std::fs::write(&options, ping).unwrap();

    // (a) OPTIONS to the DUT itself: 200.
    let opt = options.to_str().unwrap();
    let out = lab.output("sipp", sipp_args(&lab, &["-sf", opt], lab.runner(), 5070));
    assert!(out.status.success(), "OPTIONS ping: {}", show(&out));

    // (b) a call: UAC at .11 -> DUT -> UAS at .10 (the Request-URI's host), both on an extra
    // link of the runner's namespace.
    let (uas_ip, uac_ip) = (lab.addr(10), lab.addr(11));
    lab.add_addresses("lab-extra", &[uas_ip, uac_ip]);
    let answer = dir.path().join("answer.xml");
    std::fs::write(&answer, ANSWER).unwrap();
    let call = dir.path().join("call.xml");
    std::fs::write(
        &call,
        CALL_THROUGH_DUT.replace("CALLEE", &format!("{uas_ip}:5060")),
    )
    .unwrap();
    let uas = lab
        .command(
            "sipp",
            sipp_args(&lab, &["-sf", answer.to_str().unwrap()], uas_ip, 5060),
        )
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the UAS");
    lab.wait_udp_listen(uas_ip, 5060, Duration::from_secs(10));
    let call = call.to_str().unwrap();
    let mut uac = Command::new("sipp");
    uac.args(sipp_args(&lab, &["-sf", call], uac_ip, 5060))
        .current_dir(dir.path());
    let uac = lab
        .wrap(&uac)
        .stdin(Stdio::null())
        .output()
        .expect("run the UAC");
    let uas = wait_with_timeout(uas, Duration::from_secs(30), "the UAS");
    assert!(uac.status.success(), "UAC: {}", show(&uac));
    assert!(uas.status.success(), "UAS: {}", show(&uas));

    let links = lab.links();
    for l in ["lo", "lab-run", "lab-extra"] {
        assert!(links.iter().any(|x| x == l), "{l} in {links:?}");
    }
    assert!(!links.iter().any(|l| l.starts_with("sipp-")), "{links:?}");

    drop(lab);
    let left: Vec<_> = namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&name))
        .collect();
    assert!(left.is_empty(), "namespaces left after down: {left:?}");
    assert!(!Path::new("/etc/netns").join(format!("{name}-dut")).exists());
    assert!(!Path::new(STATE_ROOT).join(&name).exists());
}
