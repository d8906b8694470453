//! Real runs (no `--dry-run`) against a real DUT: Kamailio in a lab of two network namespaces
//! (see [`crate::lab`]). sipplauncher and SIPp run in the lab's runner namespace; nothing
//! reaches the host's own network. Each test brings up a lab of its own and takes it down on
//! drop (also when it fails); they need root and are ignored without `--features lab` (see
//! `Lab::up`).
//!
//! Checked here: the printed states, exit statuses, the JSON and JUnit reports, SIPp's own
//! files in the run folders kept with `--leave-temp` (the addresses each UA really used, read
//! from the Contact headers it sent), interrupts and kills, and that no `sipp-*` link and no
//! SIPp process is left in the runner's namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;

use crate::common::*;
use crate::lab::{options_then, wait_with_timeout, Lab, OPTIONS_SEND};

/// The example suite's macros (`options`, `answer_call`, `place_call`), copied into every suite
/// written here.
pub(crate) fn sip_macros() -> String {
    fs::read_to_string(repo().join("tmp-testsuite/TEMPLATES/sip.jinja2"))
        .expect("tmp-testsuite/TEMPLATES/sip.jinja2")
}

/// `nobody`, standing for the user who ran sudo.
const NOBODY: u32 = 65_534;

/// The macros use `[field0]` and `[field1]`: every suite gets an injection file.
pub(crate) const USERS: &str = "SEQUENTIAL\nalice;bob\n";

/// An OPTIONS ping to the DUT itself (Kamailio answers 200).
pub(crate) const OPTIONS_UAC: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
{% import 'sip.jinja2' as sip -%}
<scenario name="{{ test.name }}: OPTIONS to {{ dut.host }}">
  {{ sip.options('sip:ping@' ~ dut.host ~ ':5060') }}
</scenario>
"#;

/// Answers a call relayed by the DUT.
pub(crate) const CALL_UAS: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
{% import 'sip.jinja2' as sip -%}
<scenario name="{{ test.name }}: answer at {{ ua0.host }}">
  {{ sip.answer_call() }}
</scenario>
"#;

/// Calls ua0 through the DUT (SIPp's remote host): the DUT relays to the Request-URI's host.
pub(crate) const CALL_UAC: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
{% import 'sip.jinja2' as sip -%}
<scenario name="{{ test.name }}: call {{ ua0.host }} through {{ dut.host }}">
  {{ sip.place_call('sip:x@' ~ ua0.host ~ ':5060', test.name ~ ' ' ~ test.run_id) }}
</scenario>
"#;

/// Kamailio answers OPTIONS with 200, this scenario expects a 180: SIPp aborts the call
/// ("while expecting '180'").
fn expects_180() -> String {
    options_then("expects 180", &[r#"<recv response="180"/>"#])
}

/// The 200 comes, then a BYE that nobody sends: SIPp's receive timeout.
fn waits_for_a_bye() -> String {
    options_then(
        "waits for a BYE",
        &[r#"<recv response="200"/>"#, r#"<recv request="BYE"/>"#],
    )
}

/// An OPTIONS ping, then 20 s of nothing: SIPp is still running when the test interrupts it.
pub(crate) fn long_uac() -> String {
    options_then(
        "long",
        &[
            r#"<recv response="200"/>"#,
            r#"<pause milliseconds="20000"/>"#,
        ],
    )
}

/// A UAS waiting for an INVITE that never comes (no call, so no receive timeout either).
const WAITING_UAS: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="waits for an INVITE">
  <recv request="INVITE"/>
</scenario>
"#;

/// Writes a suite: the example's macros as `TEMPLATES/sip.jinja2`, `users.csv` (unless given),
/// and `files`.
pub(crate) fn write_real_suite<P: AsRef<str>, C: AsRef<str>>(root: &Path, files: &[(P, C)]) {
    let macros = sip_macros();
    let mut all: Vec<(&str, &str)> = vec![("TEMPLATES/sip.jinja2", macros.as_str())];
    if !files.iter().any(|(p, _)| p.as_ref() == "users.csv") {
        all.push(("users.csv", USERS));
    }
    all.extend(files.iter().map(|(p, c)| (p.as_ref(), c.as_ref())));
    write_suite(root, &all);
}

/// A real-run command (no `--dry-run`): the lab's DUT, the sandbox's run root and log, no
/// pause between groups, short calls (`-r 100`: the first call 10 ms after SIPp starts) and a
/// 2 s receive timeout. To be run with [`run_in`] (or `lab.wrap`).
pub(crate) fn real_cmd(lab: &Lab, sb: &Sandbox, suite: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--dut")
        .arg(lab.dut().to_string())
        .arg("--testsuite")
        .arg(suite)
        .arg("--run-root")
        .arg(sb.run_root())
        .arg("--log-file")
        .arg(sb.log())
        .args(["--group-pause", "0"])
        .args(["--sipp-call-rate", "100"])
        .args(["--sipp-recv-timeout", "2000"])
        .env_remove("NO_COLOR");
    c
}

/// Runs `cmd` in the lab's runner namespace; at most 60 s.
pub(crate) fn run_in(lab: &Lab, cmd: &Command) -> Run {
    let child = lab
        .wrap(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sipplauncher in the lab");
    let out = wait_with_timeout(child, Duration::from_secs(60), "sipplauncher");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(crate) fn show(r: &Run) -> String {
    format!(
        "exit status {}\n--- stdout\n{}--- stderr\n{}",
        r.status, r.stdout, r.stderr
    )
}

pub(crate) fn json_report(path: &Path) -> serde_json::Value {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read the json report {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the json report parses")
}

/// The JSON report's entry of test `name` (the first run of it).
pub(crate) fn json_test<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["tests"]
        .as_array()
        .expect("tests: an array")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no test {name} in the report:\n{report:#}"))
}

/// The line of `test` in state `state`.
pub(crate) fn line_of<'a>(lines: &'a [StateLine], test: &str, state: &str) -> &'a StateLine {
    lines
        .iter()
        .find(|l| l.test == test && l.state == state)
        .unwrap_or_else(|| panic!("no {state} line for {test} in {lines:#?}"))
}

/// The printed states of test `name` (its only run).
pub(crate) fn states_named(lines: &[StateLine], name: &str) -> Vec<String> {
    let index = lines
        .iter()
        .find(|l| l.test == name)
        .unwrap_or_else(|| panic!("no line for {name} in {lines:#?}"))
        .index;
    states_of(lines, index)
}

pub(crate) const REAL_SEQUENCE: [&str; 4] = ["PREPARING", "STARTING", "SUCCESS", "CLEANING"];

/// The run folders kept for test `name`.
fn folders_of(sb: &Sandbox, name: &str) -> Vec<PathBuf> {
    sb.run_folders()
        .into_iter()
        .filter(|f| f.parent().and_then(Path::file_name) == Some(name.as_ref()))
        .collect()
}

/// The one run folder kept for test `name`.
fn folder_of(sb: &Sandbox, name: &str) -> PathBuf {
    let f = folders_of(sb, name);
    assert_eq!(f.len(), 1, "run folders of {name}: {:?}", sb.run_folders());
    f.into_iter().next().unwrap()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| {
        let listing: Vec<_> = path
            .parent()
            .and_then(|p| fs::read_dir(p).ok())
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        panic!("read {}: {e}; the folder holds {listing:?}", path.display())
    })
}

/// SIPp's own trace files of scenario `stem` in `folder` (`<stem>_<pid>_<kind>`, the names
/// SIPp gives them itself), oldest first.
fn sipp_traces(folder: &Path, stem: &str, kind: &str) -> Vec<PathBuf> {
    let prefix = format!("{stem}_");
    let suffix = format!("_{kind}");
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(&suffix))
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|e| (e.metadata().unwrap().modified().unwrap(), e.path()))
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// The one trace file of `kind` (e.g. `messages.log`) SIPp wrote for scenario `stem`.
fn sipp_trace(folder: &Path, stem: &str, kind: &str) -> PathBuf {
    let mut found = sipp_traces(folder, stem, kind);
    assert_eq!(
        found.len(),
        1,
        "{stem}_<pid>_{kind} in {}: {found:?}",
        folder.display()
    );
    found.remove(0)
}

/// The addresses in the Contact headers of the messages SIPp sent (its `-i`: the scenarios
/// here put `[local_ip]` there), from a `-trace_msg` file.
fn sent_addresses(messages_log: &str) -> BTreeSet<Ipv4Addr> {
    let contact = regex::Regex::new(r"^Contact:\s*<sip:(?:[^@>]*@)?(\d+\.\d+\.\d+\.\d+)").unwrap();
    let mut sent = false;
    let mut out = BTreeSet::new();
    for line in messages_log.lines() {
        if line.contains("message sent") {
            sent = true;
        } else if line.contains("message received") {
            sent = false;
        } else if sent {
            if let Some(c) = contact.captures(line.trim_start()) {
                out.insert(c[1].parse().unwrap());
            }
        }
    }
    out
}

/// The one address a UA used, from its messages log.
fn address_in(log: &Path) -> Ipv4Addr {
    let text = read(log);
    let addrs = sent_addresses(&text);
    assert_eq!(
        addrs.len(),
        1,
        "{}: one address expected in the Contact headers sent, got {addrs:?}:\n{text}",
        log.display()
    );
    addrs.into_iter().next().unwrap()
}

pub(crate) fn sipp_links(lab: &Lab) -> Vec<String> {
    lab.links()
        .into_iter()
        .filter(|l| l.starts_with("sipp-"))
        .collect()
}

/// The SIPp processes inside the lab's runner namespace (`ip netns pids`: `pgrep` would also
/// see the SIPp of other labs, the pid namespace being shared).
pub(crate) fn sipp_pids(lab: &Lab) -> Vec<i32> {
    let out = Command::new("ip")
        .args(["netns", "pids", &lab.run_ns()])
        .output()
        .expect("ip netns pids");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .filter(|p| fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sipp"))
        .collect()
}

/// Waits until `cond` holds, at most `timeout`.
pub(crate) fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Spawned {
    /// sipplauncher started in the lab.
    pub(crate) fn start(lab: &Lab, cmd: &Command) -> Spawned {
        Spawned::spawn(&mut lab.wrap(cmd))
    }
}

/// `ip netns exec` execs the program: the child's pid is sipplauncher's own.
pub(crate) fn assert_is_sipplauncher(pid: Pid) {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(
        comm.trim(),
        "sipplauncher",
        "pid {pid} (the spawned `ip netns exec`) is not sipplauncher itself"
    );
}

/// The example suite against Kamailio: every test passes and is cleaned up, the GLOBAL scripts
/// ran, the report has SIPp's time.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn example_suite_against_kamailio() {
    let lab = Lab::up("example_suite_against_kamailio");
    let sb = Sandbox::new();
    let mut cmd = real_cmd(&lab, &sb, &repo().join("tmp-testsuite"));
    cmd.arg("--json")
        .arg(sb.path("report.json"))
        .arg("--junit")
        .arg(sb.path("junit.xml"));
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    let names: Vec<&str> = lines
        .iter()
        .filter(|l| l.state == "PREPARING")
        .map(|l| l.test.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "call-0000",
            "call-twogroups-0000",
            "dns-0000",
            "options-0000"
        ],
        "{}",
        r.stdout
    );
    for i in 0..4 {
        assert_eq!(states_of(&lines, i), REAL_SEQUENCE, "{}", r.stdout);
    }
    assert_eq!(summary(&r.stdout, "TOTAL"), Some(4), "{}", r.stdout);
    assert_eq!(summary(&r.stdout, "SUCCESS"), Some(4), "{}", r.stdout);
    assert_eq!(summary(&r.stdout, "FAILED"), Some(0), "{}", r.stdout);

    let json = json_report(&sb.path("report.json"));
    assert_eq!(json["dry_run"], false, "{json:#}");
    assert_eq!(json["global"]["before"]["ok"], true, "{json:#}");
    assert_eq!(json["global"]["after"]["ok"], true, "{json:#}");
    let tests = json["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 4, "{json:#}");
    for t in tests {
        assert_eq!(t["result"], "SUCCESS", "{t:#}");
        assert_eq!(t["state"], "CLEAN", "{t:#}");
        assert_eq!(t["passed"], true, "{t:#}");
        let sipp = t["sipp_s"].as_f64().unwrap_or_else(|| panic!("{t:#}"));
        let wall = t["wall_s"].as_f64().unwrap();
        assert!(sipp > 0.0, "SIPp ran: {t:#}");
        assert!(wall >= sipp, "wall time covers SIPp's: {t:#}");
    }
    let junit = fs::read_to_string(sb.path("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 4, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");

    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
    assert_eq!(sipp_pids(&lab), Vec::<i32>::new());
}

/// An OPTIONS ping from a UA of the test to the DUT: Kamailio's 200 is in SIPp's log.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn options_ping_to_the_dut() {
    let lab = Lab::up("options_ping_to_the_dut");
    let sb = Sandbox::new();
    write_real_suite(&sb.suite(), &[("ping-0000/uac_ua0.xml", OPTIONS_UAC)]);
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--leave-temp");
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    assert_eq!(
        states_named(&lines, "ping-0000"),
        REAL_SEQUENCE,
        "{}",
        r.stdout
    );

    let folder = folder_of(&sb, "ping-0000");
    let log = read(&sipp_trace(&folder, "uac_ua0", "messages.log"));
    let ua0 = address_in(&sipp_trace(&folder, "uac_ua0", "messages.log"));
    assert!(
        log.contains(&format!("OPTIONS sip:ping@{}:5060 SIP/2.0", lab.dut())),
        "{log}"
    );
    assert!(log.contains("SIP/2.0 200 OK"), "the DUT's answer: {log}");
    // A dynamic address of the DUT's network, not the runner's own nor the DUT's.
    assert_eq!(ua0.octets()[..3], lab.dut().octets()[..3], "{ua0}");
    assert_ne!(ua0, lab.dut());
    assert_ne!(ua0, lab.runner());
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
}

/// ua1 calls ua0 through the DUT: the INVITE reaches ua0 relayed by Kamailio (its Via on top).
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn call_through_the_dut() {
    let lab = Lab::up("call_through_the_dut");
    let sb = Sandbox::new();
    write_real_suite(
        &sb.suite(),
        &[
            ("call-0000/uas_ua0.xml", CALL_UAS),
            ("call-0000/uac_ua1.xml", CALL_UAC),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--leave-temp")
        .arg("--json")
        .arg(sb.path("report.json"));
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    assert_eq!(
        states_named(&lines, "call-0000"),
        REAL_SEQUENCE,
        "{}",
        r.stdout
    );
    // The SUCCESS line tells the time and the UAC's calls per second.
    let success = line_of(&lines, "call-0000", "SUCCESS");
    assert!(
        regex::Regex::new(r"^ - took \S+ \(\d+\.\d\d cps\)$")
            .unwrap()
            .is_match(&success.rest),
        "{success:?}"
    );

    let folder = folder_of(&sb, "call-0000");
    let ua0 = address_in(&sipp_trace(&folder, "uas_ua0", "messages.log"));
    let ua1 = address_in(&sipp_trace(&folder, "uac_ua1", "messages.log"));
    assert_ne!(ua0, ua1);
    let uas = read(&sipp_trace(&folder, "uas_ua0", "messages.log"));
    let invite = uas
        .split("----------")
        .find(|m| m.contains("message received") && m.contains("\nINVITE "))
        .unwrap_or_else(|| panic!("no INVITE received by ua0:\n{uas}"));
    assert!(
        invite.contains(&format!("INVITE sip:x@{ua0}:5060 SIP/2.0")),
        "{invite}"
    );
    let vias: Vec<&str> = invite.lines().filter(|l| l.starts_with("Via:")).collect();
    assert_eq!(vias.len(), 2, "the DUT's Via and ua1's: {invite}");
    assert!(
        vias[0].starts_with(&format!("Via: SIP/2.0/UDP {};", lab.dut())),
        "{invite}"
    );
    assert!(
        vias[1].starts_with(&format!("Via: SIP/2.0/UDP {ua1}:5060;")),
        "{invite}"
    );
    assert!(uas.contains("\nBYE "), "the call ended with a BYE: {uas}");
    let json = json_report(&sb.path("report.json"));
    let t = json_test(&json, "call-0000");
    assert!(t["cps"].as_f64().is_some_and(|c| c > 0.0), "{t:#}");
    // SIPp's statistics: the UAC's one call, and its INVITE-to-200 timer (`rtd` in
    // place_call), as it reads in the UAC's own statistics file.
    assert_eq!(
        t["calls"],
        serde_json::json!({"created": 1, "successful": 1, "failed": 0}),
        "{t:#}"
    );
    let stat = read(&folder.join("uac_ua1_trace.csv"));
    let header: Vec<&str> = stat.lines().next().unwrap_or_default().split(';').collect();
    let row: Vec<&str> = stat.lines().last().unwrap_or_default().split(';').collect();
    let col = header.iter().position(|h| *h == "ResponseTime1(C)");
    let ms = col
        .and_then(|i| row.get(i))
        .map(|v| v.split(':').map(|n| n.parse::<f64>().unwrap_or(f64::NAN)))
        .map(|hmsu| {
            hmsu.zip([3_600_000.0, 60_000.0, 1_000.0, 0.001])
                .map(|(n, ms)| n * ms)
                .sum::<f64>()
        });
    assert_eq!(t["setup_ms"].as_f64(), ms, "{t:#}\n{stat}");
    // What the run cost: its own CPU, SIPp's (its reaped children), the host's load.
    let usage = &json["usage"];
    assert!(usage["cpu_user_s"].as_f64().is_some(), "{usage:#}");
    assert!(
        usage["children_cpu_user_s"].as_f64().unwrap_or(0.0)
            + usage["children_cpu_system_s"].as_f64().unwrap_or(0.0)
            > 0.0,
        "SIPp's CPU counts as the children's: {usage:#}"
    );
    assert_eq!(
        usage["load_end"].as_array().map(Vec::len),
        Some(3),
        "{usage:#}"
    );
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
}

/// A scenario that gets another response than it expects, and one that waits for a request in
/// vain: both FAIL with SIPp's own reason, on the console, in the JSON and JUnit reports and in
/// the test's log.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn missing_response_fails_with_sipps_reason() {
    let lab = Lab::up("missing_response_fails_with_sipps_reason");
    let sb = Sandbox::new();
    let unexpected = expects_180();
    let waits = waits_for_a_bye();
    write_real_suite(
        &sb.suite(),
        &[
            ("unexpected-0000/uac_ua0.xml", unexpected.as_str()),
            ("timeout-0000/uac_ua0.xml", waits.as_str()),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.args(["--sipp-recv-timeout", "500", "--group", "2", "--leave-temp"])
        .arg("--json")
        .arg(sb.path("report.json"))
        .arg("--junit")
        .arg(sb.path("junit.xml"));
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 1, "{}", show(&r));
    assert_eq!(summary(&r.stdout, "FAILED"), Some(2), "{}", r.stdout);
    let lines = state_lines(&r.stdout);
    let json = json_report(&sb.path("report.json"));
    let junit = fs::read_to_string(sb.path("junit.xml")).unwrap();
    let failures: Vec<&str> = junit
        .split("<failure message=\"")
        .skip(1)
        .map(|f| f.split('"').next().unwrap())
        .collect();
    assert_eq!(failures.len(), 2, "{junit}");
    for (test, sipp_says) in [
        ("unexpected-0000", "while expecting"),
        ("timeout-0000", "receive timeout"),
    ] {
        assert_eq!(
            states_named(&lines, test),
            ["PREPARING", "STARTING", "FAIL", "CLEANING"],
            "{}",
            r.stdout
        );
        let fail = line_of(&lines, test, "FAIL");
        assert!(fail.rest.contains(sipp_says), "{test}: {fail:?}");
        let t = json_test(&json, test);
        assert_eq!(t["result"], "FAIL", "{t:#}");
        assert_eq!(t["passed"], false, "{t:#}");
        let reason = t["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(sipp_says), "{test}: {t:#}");
        assert!(
            failures.iter().any(|f| f.contains(sipp_says)),
            "{test}: no <failure message=...{sipp_says}...> in\n{junit}"
        );
        let log = read(&folder_of(&sb, test).join("sipplauncher.log"));
        assert!(log.contains(sipp_says), "{test}'s sipplauncher.log:\n{log}");
    }
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
}

/// Issue 11, items 1-3: by default a failed run's folder stays with its pcap and SIPp's files
/// (no longer marked for removal), a passing run's goes; the FAIL line gives the received
/// message's status line only, while the run's log and the reports keep the whole message; the
/// recap after the original's closing lines names the run, its reason and its folder.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn a_failed_runs_evidence_is_kept_and_recapped() {
    let lab = Lab::up("a_failed_runs_evidence_is_kept_and_recapped");
    let sb = Sandbox::new();
    let unexpected = expects_180();
    write_real_suite(
        &sb.suite(),
        &[
            ("fail-0000/uac_ua0.xml", unexpected.as_str()),
            ("pass-0000/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    // As if run through sudo by `nobody`: the evidence is theirs to open (item 6).
    cmd.arg("--json")
        .arg(sb.path("report.json"))
        .arg("--junit")
        .arg(sb.path("junit.xml"))
        .env("SUDO_UID", NOBODY.to_string())
        .env("SUDO_GID", NOBODY.to_string());
    fs::set_permissions(sb.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 1, "{}", show(&r));
    assert_eq!(closing_lines(&r.stdout, false), (2, Some(1), Some(1)));
    let lines = state_lines(&r.stdout);
    let fail = line_of(&lines, "fail-0000", "FAIL");
    assert!(
        fail.rest
            .ends_with("while expecting '180' (index 1), received 'SIP/2.0 200 OK'"),
        "{fail:?}"
    );
    // The evidence: the failed run's folder, whole; the passing run's folder gone.
    let folders = sb.run_folders();
    assert_eq!(folders.len(), 1, "{folders:?}");
    let folder = &folders[0];
    assert_eq!(folder, &sb.run_root().join("fail-0000").join(&fail.run_id));
    let pcap = folder.join(format!("sipp-{}.pcap", fail.run_id));
    assert!(
        pcap_sip_messages(&pcap).len() >= 2,
        "the OPTIONS and its 200 in {}",
        pcap.display()
    );
    assert!(!folder.join(".sipplauncher-owner").exists());
    // nobody (the sudo user) reads the pcap without root, through the run root it may search.
    assert_eq!(fs::metadata(&pcap).unwrap().uid(), NOBODY);
    let as_nobody = Command::new("cat")
        .arg(&pcap)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    assert!(
        as_nobody.status.success() && as_nobody.stdout == fs::read(&pcap).unwrap(),
        "{}",
        String::from_utf8_lossy(&as_nobody.stderr)
    );
    assert_eq!(fs::metadata(sb.path("report.json")).unwrap().uid(), NOBODY);
    let log = read(&folder.join("sipplauncher.log"));
    assert!(
        log.contains("received 'SIP/2.0 200 OK") && log.contains("Via: SIP/2.0/UDP"),
        "the whole message in the run's log:\n{log}"
    );
    // The recap: the run, its short reason, where its evidence is.
    let (recapped, recap) = recap(&r.stdout);
    assert_eq!(recap[0], "Did not pass: 1 of 2 test runs", "{}", show(&r));
    assert_eq!(recapped.len(), 1, "{}", show(&r));
    assert_eq!(
        (recapped[0].state.as_str(), recapped[0].run_id.as_str()),
        ("FAIL", fail.run_id.as_str())
    );
    assert!(recapped[0].rest.ends_with("received 'SIP/2.0 200 OK'"));
    assert_eq!(
        recap[2].trim(),
        format!(
            "kept: {} (pcap sipp-{}.pcap)",
            folder.display(),
            fail.run_id
        )
    );
    // The reports: the whole reason, the folder, the pcap and that they are kept.
    let json = json_report(&sb.path("report.json"));
    let t = json_test(&json, "fail-0000");
    assert!(
        t["reason"].as_str().unwrap().contains("Via: SIP/2.0/UDP"),
        "{t:#}"
    );
    assert_eq!(t["run_folder"], folder.display().to_string());
    assert_eq!(t["run_folder_kept"], true);
    assert_eq!(t["pcap"], pcap.display().to_string());
    let junit = read(&sb.path("junit.xml"));
    assert!(
        junit.contains(&format!(
            "run folder: {}\nrun folder kept: yes\npcap: {}</system-out>",
            folder.display(),
            pcap.display()
        )),
        "{junit}"
    );
    let p = json_test(&json, "pass-0000");
    assert_eq!(
        (&p["run_folder_kept"], &p["run_folder_fate"]),
        (&false.into(), &"removed".into())
    );
    assert_eq!(r.stderr, "", "{}", show(&r));
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
}

/// ua0 REGISTERs `alice-<run_id>` at the DUT (run group part0), then ua1 calls that address
/// of record at the DUT and the DUT relays the call to ua0's registered contact (part1).
const REGISTER_UAC: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register alice at {{ dut.host }}">
  <send retrans="500">
    <![CDATA[

      REGISTER sip:{{ dut.host }} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: <sip:alice-{{ test.run_id }}@{{ dut.host }}>;tag=[pid]SIPpTag00[call_number]
      To: <sip:alice-{{ test.run_id }}@{{ dut.host }}>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:alice-{{ test.run_id }}@[local_ip]:[local_port]>
      Expires: 60
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"#;

const CALL_ALICE: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
{% import 'sip.jinja2' as sip -%}
<scenario name="call alice through {{ dut.host }}">
  {{ sip.place_call('sip:alice-' ~ test.run_id ~ '@' ~ dut.host, test.name) }}
</scenario>
"#;

/// A call to a user nobody registered: the registrar has no contact, 404.
const CALL_NOBODY: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="call bob, not registered, at {{ dut.host }}">
  <send retrans="500">
    <![CDATA[

      INVITE sip:bob-{{ test.run_id }}@{{ dut.host }} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: <sip:lab@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:bob-{{ test.run_id }}@{{ dut.host }}>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:lab@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <recv response="404"/>
  <send>
    <![CDATA[

      ACK sip:bob-{{ test.run_id }}@{{ dut.host }} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: <sip:lab@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:bob-{{ test.run_id }}@{{ dut.host }}>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Content-Length: 0

    ]]>
  </send>
</scenario>
"#;

/// The lab's DUT is also a registrar (issue 11.7): a REGISTER, then a call to the registered
/// address of record reaches the registered contact through it; an unregistered user is 404.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn the_labs_dut_is_a_registrar() {
    let lab = Lab::up("the_labs_dut_is_a_registrar");
    let sb = Sandbox::new();
    write_real_suite(
        &sb.suite(),
        &[
            ("register-0000/part0_uac_ua0.xml", REGISTER_UAC),
            ("register-0000/part1_uas_ua0.xml", CALL_UAS),
            ("register-0000/part1_uac_ua1.xml", CALL_ALICE),
            ("unregistered-0000/uac_ua0.xml", CALL_NOBODY),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.args(["--keep", "all"]);
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    assert_eq!(closing_lines(&r.stdout, false), (2, Some(2), Some(0)));
    // The INVITE for alice reached ua0 at the contact it registered, relayed by the DUT.
    let folder = folder_of(&sb, "register-0000");
    let ua0 = address_in(&sipp_trace(&folder, "part0_uac_ua0", "messages.log"));
    let uas = read(&sipp_trace(&folder, "part1_uas_ua0", "messages.log"));
    let run_id = folder.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        uas.contains(&format!("INVITE sip:alice-{run_id}@{ua0}:5060 SIP/2.0")),
        "{uas}"
    );
}

/// A failing before.sh: NOT READY, SIPp never started. A failing after.sh: DIRTY.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn failing_before_sh_is_not_ready_and_runs_no_sipp() {
    let lab = Lab::up("failing_before_sh_is_not_ready_and_runs_no_sipp");
    let sb = Sandbox::new();
    write_real_suite(
        &sb.suite(),
        &[
            (
                "a-before-fails/before.sh",
                "echo 'provisioning {{ dut.host }} failed'\nexit 1\n",
            ),
            ("a-before-fails/uac_ua0.xml", OPTIONS_UAC),
            ("b-after-fails/after.sh", "echo 'cannot undo'\nexit 1\n"),
            ("b-after-fails/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    // By default (--keep failed) both runs' folders stay: the evidence of a NOT READY after
    // its folder was made and of a DIRTY (issue 11.1).
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--json").arg(sb.path("report.json"));
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 1, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    let json = json_report(&sb.path("report.json"));

    assert_eq!(
        states_named(&lines, "a-before-fails"),
        ["PREPARING", "NOT READY"],
        "{}",
        r.stdout
    );
    let not_ready = line_of(&lines, "a-before-fails", "NOT READY");
    assert!(not_ready.rest.contains("before.sh"), "{not_ready:?}");
    let a = json_test(&json, "a-before-fails");
    assert_eq!(a["state"], "NOT READY", "{a:#}");
    assert_eq!(a["passed"], false, "{a:#}");
    assert!(a["sipp_s"].is_null(), "no SIPp ran: {a:#}");
    assert!(
        a["reason"]
            .as_str()
            .is_some_and(|r| r.contains("before.sh")),
        "{a:#}"
    );
    // Its folder is kept: before.sh's output is in its log, no file of SIPp's.
    assert_eq!(a["run_folder_kept"], true, "{a:#}");
    let a_folders = folders_of(&sb, "a-before-fails");
    assert_eq!(a_folders.len(), 1, "{:?}", sb.run_folders());
    let a_log = read(&a_folders[0].join("sipplauncher.log"));
    assert!(
        a_log.contains(&format!("provisioning {} failed", lab.dut())),
        "{a_log}"
    );
    for folder in a_folders {
        let sipp_files: Vec<String> = fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.ends_with("_output.log")
                    || n.ends_with("_messages.log")
                    || n.ends_with("_log_file")
            })
            .collect();
        assert!(
            sipp_files.is_empty(),
            "SIPp ran for a test whose before.sh failed: {sipp_files:?} in {}",
            folder.display()
        );
    }

    let b = states_named(&lines, "b-after-fails");
    assert_eq!(b.last().map(String::as_str), Some("DIRTY"), "{}", r.stdout);
    assert_eq!(b[..2], ["PREPARING", "STARTING"], "{}", r.stdout);
    let dirty = line_of(&lines, "b-after-fails", "DIRTY");
    assert!(dirty.rest.contains("after.sh"), "{dirty:?}");
    let bj = json_test(&json, "b-after-fails");
    assert_eq!(bj["state"], "DIRTY", "{bj:#}");
    assert_eq!(bj["passed"], false, "{bj:#}");
    assert!(bj["sipp_s"].as_f64().is_some_and(|s| s > 0.0), "{bj:#}");
    assert_eq!(bj["run_folder_kept"], true, "{bj:#}");
    let b_folders = folders_of(&sb, "b-after-fails");
    assert_eq!(b_folders.len(), 1, "{:?}", sb.run_folders());
    assert!(
        read(&b_folders[0].join("sipplauncher.log")).contains("cannot undo"),
        "{}",
        b_folders[0].display()
    );
    assert_eq!(summary(&r.stdout, "SUCCESS"), Some(0), "{}", r.stdout);
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
}

/// Two run groups: ua0 answers in part0 and calls in part1 with the same address;
/// `--sipp-max-calls 2` repeats the sequence of run groups.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn two_run_groups_keep_ua0s_address() {
    let lab = Lab::up("two_run_groups_keep_ua0s_address");
    let call_ua1 = CALL_UAC.replace("ua0.host", "ua1.host");
    let files = [
        ("twogroups-0000/part0_uas_ua0.xml", CALL_UAS),
        ("twogroups-0000/part0_uac_ua1.xml", CALL_UAC),
        ("twogroups-0000/part1_uac_ua0.xml", call_ua1.as_str()),
        (
            "twogroups-0000/part1_uas_ua1.xml",
            &CALL_UAS.replace("ua0.host", "ua1.host"),
        ),
    ];

    // Once.
    let sb = Sandbox::new();
    write_real_suite(&sb.suite(), &files);
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--leave-temp");
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    assert_eq!(
        states_named(&lines, "twogroups-0000"),
        REAL_SEQUENCE,
        "{}",
        r.stdout
    );
    let f = folder_of(&sb, "twogroups-0000");
    let ua0 = address_in(&sipp_trace(&f, "part0_uas_ua0", "messages.log"));
    assert_eq!(
        ua0,
        address_in(&sipp_trace(&f, "part1_uac_ua0", "messages.log"))
    );
    let ua1 = address_in(&sipp_trace(&f, "part0_uac_ua1", "messages.log"));
    assert_eq!(
        ua1,
        address_in(&sipp_trace(&f, "part1_uas_ua1", "messages.log"))
    );
    assert_ne!(ua0, ua1);
    // part1's call went to ua1's address.
    let part1 = read(&sipp_trace(&f, "part1_uac_ua0", "messages.log"));
    assert!(
        part1.contains(&format!("INVITE sip:x@{ua1}:5060 SIP/2.0")),
        "{part1}"
    );

    // Twice: part0, part1, part0, part1, each SIPp with -m 1; the files we name are numbered
    // but for the last pass, which has the original's names; SIPp's own have its pids.
    let sb = Sandbox::new();
    write_real_suite(&sb.suite(), &files);
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.args(["--leave-temp", "--sipp-max-calls", "2"]);
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    assert_eq!(
        states_named(&lines, "twogroups-0000"),
        REAL_SEQUENCE,
        "{}",
        r.stdout
    );
    let f = folder_of(&sb, "twogroups-0000");
    for stem in [
        "part0_uas_ua0.1",
        "part0_uas_ua0",
        "part1_uac_ua0.1",
        "part1_uac_ua0",
    ] {
        for file in ["_log_file", "_screen_file", "_trace.csv"] {
            assert!(f.join(format!("{stem}{file}")).is_file(), "{stem}{file}");
        }
    }
    assert!(!f.join("part0_uas_ua0.2_trace.csv").exists());
    // SIPp said nothing but "Resolving remote host": no output file.
    assert!(!f.join("part0_uas_ua0_output.log").exists());
    let mut ua0s = BTreeSet::new();
    for stem in ["part0_uas_ua0", "part1_uac_ua0"] {
        let passes = sipp_traces(&f, stem, "messages.log");
        assert_eq!(passes.len(), 2, "{stem}: {passes:?}");
        for log in passes {
            ua0s.insert(address_in(&log));
            if stem == "part0_uas_ua0" {
                // Each pass is one call per instance.
                let uas = read(&log);
                assert_eq!(uas.matches("\nINVITE sip:").count(), 1, "{uas}");
            }
        }
    }
    assert_eq!(ua0s.len(), 1, "ua0 used {ua0s:?}");
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
}

/// SIPp's files in a run folder carry the original's names: a `<log>` action writes to
/// `<scenario>_log_file`, the last screen is `<scenario>_screen_file`, the statistics
/// `<scenario>_trace.csv`, and SIPp names its traces itself (`<scenario>_<pid>_messages.log`...).
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn log_actions_write_to_the_originals_log_file() {
    let lab = Lab::up("log_actions_write_to_the_originals_log_file");
    let sb = Sandbox::new();
    let scenario = options_then(
        "logs",
        &[
            r#"<recv response="200"><action><log message="the DUT answered [call_id] from {{ dut.host }}"/></action></recv>"#,
        ],
    );
    write_suite(&sb.suite(), &[("log-0000/uac_ua0.xml", scenario.as_str())]);
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--leave-temp");
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let f = folder_of(&sb, "log-0000");
    let logged = read(&f.join("uac_ua0_log_file"));
    assert!(
        logged.contains("the DUT answered 1-") && logged.contains(&format!(" from {}", lab.dut())),
        "{logged}"
    );
    assert!(read(&f.join("uac_ua0_screen_file")).contains("Statistics Screen"));
    assert!(read(&f.join("uac_ua0_trace.csv")).contains("CallRate(C)"));
    let messages = read(&sipp_trace(&f, "uac_ua0", "messages.log"));
    assert!(messages.contains("SIP/2.0 200 OK"), "{messages}");
    sipp_trace(&f, "uac_ua0", "calldebug.log");
    // Nothing under the names of earlier versions of this tool.
    for gone in [
        "uac_ua0_messages.log",
        "uac_ua0_screen.log",
        "uac_ua0_errors.log",
    ] {
        assert!(!f.join(gone).exists(), "{gone}");
    }
}

/// A test SIPp cannot even start is NOT READY with SIPp's own reason, not FAIL: `[field0]`
/// without an injection file is seen in pre-run (SIPp is never started); a scenario SIPp
/// cannot parse and an injection file it cannot read stop SIPp before its first call, and
/// the test is still cleaned up (after.sh runs). The run goes on.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn a_test_sipp_cannot_start_is_not_ready_with_sipps_reason() {
    let lab = Lab::up("a_test_sipp_cannot_start_is_not_ready");
    let sb = Sandbox::new();
    let field = options_then("field", &[r#"<recv response="200"/>"#])
        .replace("sip:lab@[local_ip]", "sip:[field0]@[local_ip]");
    let field_line = field.lines().position(|l| l.contains("[field0]")).unwrap() + 1;
    let ok = options_then("ok", &[r#"<recv response="200"/>"#]);
    write_suite(
        &sb.suite(),
        &[
            ("field-0000/uac_ua0.xml", field.as_str()),
            ("field-0000/after.sh", "echo after > after-ran\n"),
            ("ok-0000/uac_ua0.xml", ok.as_str()),
            (
                "unparsable-0000/uac_ua0.xml",
                "<scenario><send><![CDATA[\nOPTIONS x\n]]></send>\n<recv response=\"200\"\n</scenario>\n",
            ),
            ("unparsable-0000/uas_ua1.xml", WAITING_UAS),
            ("unparsable-0000/after.sh", "echo after > after-ran\n"),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--leave-temp")
        .arg("--json")
        .arg(sb.path("report.json"));
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 1, "{}", show(&r));
    assert_eq!(summary(&r.stdout, "FAILED"), Some(2), "{}", r.stdout);
    let lines = state_lines(&r.stdout);
    let json = json_report(&sb.path("report.json"));

    assert_eq!(
        states_named(&lines, "field-0000"),
        ["PREPARING", "NOT READY"],
        "{}",
        r.stdout
    );
    let why = format!(
        "uac_ua0.xml line {field_line}: [field0] needs an injection file, and there is none"
    );
    assert!(
        line_of(&lines, "field-0000", "NOT READY")
            .rest
            .contains(&why),
        "{}",
        r.stdout
    );
    assert!(
        !folder_of(&sb, "field-0000").join("after-ran").exists(),
        "pre-run rolled back: no after.sh"
    );

    assert_eq!(
        states_named(&lines, "unparsable-0000"),
        ["PREPARING", "STARTING", "NOT READY", "CLEANING"],
        "{}",
        r.stdout
    );
    let sipp_says = "uac_ua0 (uac) could not start, exit status 1: Unable to load or parse 'uac_ua0.xml' xml scenario file";
    let line = line_of(&lines, "unparsable-0000", "NOT READY");
    assert!(line.rest.contains(sipp_says), "{line:?}");
    let f = folder_of(&sb, "unparsable-0000");
    assert_eq!(
        read(&f.join("after-ran")),
        "after\n",
        "cleanup ran after.sh"
    );
    for (test, reason) in [("field-0000", why.as_str()), ("unparsable-0000", sipp_says)] {
        let t = json_test(&json, test);
        assert_eq!(t["result"], "NOT READY", "{t:#}");
        assert!(
            t["reason"].as_str().is_some_and(|r| r.contains(reason)),
            "{t:#}"
        );
    }
    assert_eq!(json_test(&json, "unparsable-0000")["state"], "CLEAN");
    assert_eq!(
        states_named(&lines, "ok-0000"),
        REAL_SEQUENCE,
        "{}",
        r.stdout
    );

    // An injection file SIPp cannot read (a binary): its words, not only an exit status.
    let sb = Sandbox::new();
    write_suite(&sb.suite(), &[("ok-0000/uac_ua0.xml", ok.as_str())]);
    let binary = sb.path("binary.csv");
    fs::write(&binary, b"\x7fELF\x02\x01\x01\x00\xff\xfe\n\x00\x00").unwrap();
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--sipp-info-file").arg(&binary);
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 1, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    assert_eq!(
        states_named(&lines, "ok-0000"),
        ["PREPARING", "STARTING", "NOT READY", "CLEANING"],
        "{}",
        r.stdout
    );
    let line = line_of(&lines, "ok-0000", "NOT READY");
    assert!(
        line.rest.contains("could not start, exit status 1: Unknown file type (valid values are RANDOM, SEQUENTIAL, and USER)"),
        "{line:?}"
    );
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
    assert_eq!(sipp_pids(&lab), Vec::<i32>::new());
}

/// The suite's users.csv is SIPp's injection file: `[field0]` and `[field1]` come from it.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn users_csv_fields_reach_sipp() {
    let lab = Lab::up("users_csv_fields_reach_sipp");
    let sb = Sandbox::new();
    write_real_suite(
        &sb.suite(),
        &[
            ("users.csv", "SEQUENTIAL\nzorro123;bob\n"),
            (
                "fields-0000/uac_ua0.xml",
                &OPTIONS_UAC.replace("sip:ping@", "sip:[field0]@"),
            ),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--leave-temp");
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    assert_eq!(
        states_named(&lines, "fields-0000"),
        REAL_SEQUENCE,
        "{}",
        r.stdout
    );
    let f = folder_of(&sb, "fields-0000");
    let log = read(&sipp_trace(&f, "uac_ua0", "messages.log"));
    assert!(
        log.contains(&format!("OPTIONS sip:zorro123@{}:5060 SIP/2.0", lab.dut())),
        "{log}"
    );
    assert!(log.contains("From: <sip:bob@"), "[field1]: {log}");
}

/// 3PCC extended: ua1 is a slave, ua0 the master; they exchange commands over SIPp's twin
/// sockets (TCP). The slave starts first, the master once the slave listens.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn three_pcc_extended() {
    let lab = Lab::up("three_pcc_extended");
    // SIPp needs a SIP message in every scenario ("Unable to determine send mode of the tool"
    // without one): both ping the DUT.
    let master = format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="3pcc master">
{OPTIONS_SEND}  <recv response="200"/>
  <sendCmd dest="ua1">
    <![CDATA[
      Call-ID: [call_id]
      From: m

    ]]>
  </sendCmd>
  <recvCmd src="ua1"/>
</scenario>
"#
    );
    let slave = format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="3pcc slave">
  <recvCmd src="m"/>
{OPTIONS_SEND}  <recv response="200"/>
  <sendCmd dest="m">
    <![CDATA[
      Call-ID: [call_id]
      From: ua1

    ]]>
  </sendCmd>
</scenario>
"#
    );
    let sb = Sandbox::new();
    write_real_suite(
        &sb.suite(),
        &[
            (
                "3pcc-0000/3pcc.txt",
                "m;{{ ua0.host }}:8880\nua1;{{ ua1.host }}:8881\n",
            ),
            ("3pcc-0000/uac_ua0.xml", master.as_str()),
            ("3pcc-0000/uac_ua1.xml", slave.as_str()),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--leave-temp");
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    assert_eq!(
        states_named(&lines, "3pcc-0000"),
        REAL_SEQUENCE,
        "{}",
        r.stdout
    );
    let f = folder_of(&sb, "3pcc-0000");
    let log = read(&f.join("sipplauncher.log"));
    let started = |label: &str| {
        log.lines()
            .position(|l| l.contains(&format!("started {label},")))
            .unwrap_or_else(|| panic!("{label} not started:\n{log}"))
    };
    assert!(
        started("uac_ua1") < started("uac_ua0"),
        "the slave starts before the master:\n{log}"
    );
    let argv = |label: &str| {
        log.lines()
            .find(|l| l.contains(&format!("started {label},")))
            .unwrap()
            .to_string()
    };
    assert!(
        argv("uac_ua0").contains("-master m -slave_cfg 3pcc.txt"),
        "{log}"
    );
    assert!(
        argv("uac_ua1").contains("-slave ua1 -slave_cfg 3pcc.txt"),
        "{log}"
    );
    let ua0 = address_in(&sipp_trace(&f, "uac_ua0", "messages.log"));
    let ua1 = address_in(&sipp_trace(&f, "uac_ua1", "messages.log"));
    let pcc = read(&f.join("3pcc.txt"));
    assert_eq!(pcc, format!("m;{ua0}:8880\nua1;{ua1}:8881\n"));
}

/// Ten call tests at once: twenty distinct addresses, all cleaned up.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn group_of_ten_gets_distinct_addresses() {
    let lab = Lab::up("group_of_ten_gets_distinct_addresses");
    let sb = Sandbox::new();
    let names: Vec<String> = (0..10).map(|i| format!("call-{i:04}")).collect();
    let files = each_test(
        &names,
        &[("uas_ua0.xml", CALL_UAS), ("uac_ua1.xml", CALL_UAC)],
    );
    write_real_suite(&sb.suite(), &files);
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.args(["--group", "10", "--leave-temp"])
        .arg("--json")
        .arg(sb.path("report.json"));
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    assert_eq!(summary(&r.stdout, "SUCCESS"), Some(10), "{}", r.stdout);
    let lines = state_lines(&r.stdout);
    let json = json_report(&sb.path("report.json"));
    let mut used: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
    for n in &names {
        assert_eq!(states_named(&lines, n), REAL_SEQUENCE, "{}", r.stdout);
        assert_eq!(json_test(&json, n)["state"], "CLEAN");
        let f = folder_of(&sb, n);
        for (ua, stem) in [("ua0", "uas_ua0"), ("ua1", "uac_ua1")] {
            let a = address_in(&sipp_trace(&f, stem, "messages.log"));
            assert!(a != lab.dut() && a != lab.runner(), "{n} {ua}: {a}");
            if let Some(other) = used.insert(a, format!("{n} {ua}")) {
                panic!("{a} given twice: {other} and {n} {ua}");
            }
        }
    }
    assert_eq!(used.len(), 20);
    // They ran at the same time: every test of the group was started before any had ended.
    let first_end = r
        .stdout
        .lines()
        .position(|l| l.contains(" SUCCESS "))
        .unwrap();
    let last_start = r
        .stdout
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(" STARTING "))
        .map(|(i, _)| i)
        .last()
        .unwrap();
    assert!(last_start < first_end, "{}", r.stdout);
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
    assert_eq!(sipp_pids(&lab), Vec::<i32>::new());
}

/// A suite whose SIPp instances run for 20 s unless stopped, with after.sh (the test's and
/// GLOBAL's) touching marker files outside the run folder.
fn long_suite(sb: &Sandbox) {
    let uac = long_uac();
    write_real_suite(
        &sb.suite(),
        &[
            ("GLOBAL/after.sh", "touch '{{ marker }}.global'\n"),
            ("long-0000/uas_ua1.xml", WAITING_UAS),
            ("long-0000/uac_ua0.xml", uac.as_str()),
            ("long-0000/after.sh", "touch '{{ marker }}'\n"),
        ],
    );
}

/// Ctrl+C while SIPp runs: SIPp stopped, after.sh and GLOBAL after.sh run, the summary printed,
/// exit status 1, nothing left behind.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn sigint_while_sipp_runs_cleans_everything() {
    let lab = Lab::up("sigint_while_sipp_runs_cleans_everything");
    let sb = Sandbox::new();
    long_suite(&sb);
    let marker = sb.path("after-ran");
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--keyword-replacement-values")
        .arg(serde_json::json!({ "marker": marker.display().to_string() }).to_string())
        .arg("--json")
        .arg(sb.path("report.json"));
    let mut run = Spawned::start(&lab, &cmd);
    run.wait_for("STARTING", Duration::from_secs(15));
    assert_is_sipplauncher(run.pid());
    assert!(
        wait_until(Duration::from_secs(5), || sipp_pids(&lab).len() == 2),
        "two SIPp running: {:?}",
        sipp_pids(&lab)
    );
    assert!(!marker.exists());
    kill(run.pid(), Signal::SIGINT).unwrap();
    let (status, stdout, took) = run.finish(Duration::from_secs(10));
    assert!(
        took < Duration::from_secs(4),
        "exit took {took:?}:\n{stdout}"
    );
    assert_eq!(status, 1, "{stdout}");
    // The original's closing lines, then (a line of its own after them) why the run ended.
    assert_eq!(closing_lines(&stdout, false), (1, Some(0), Some(1)));
    let (_, after) = recap(&stdout);
    assert!(
        after
            .iter()
            .any(|l| l.starts_with("Interrupted before the end")),
        "{stdout}"
    );
    let lines = state_lines(&stdout);
    assert_eq!(
        states_named(&lines, "long-0000"),
        ["PREPARING", "STARTING", "FAIL", "CLEANING"],
        "{stdout}"
    );
    let fail = line_of(&lines, "long-0000", "FAIL");
    assert!(fail.rest.contains("interrupted"), "{fail:?}");
    assert_eq!(sipp_pids(&lab), Vec::<i32>::new());
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
    assert!(marker.exists(), "the test's after.sh ran");
    assert!(
        sb.path("after-ran.global").exists(),
        "GLOBAL after.sh ran after the interrupt"
    );
    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
    let json = json_report(&sb.path("report.json"));
    assert_eq!(json["interrupted"], true, "{json:#}");
    let t = json_test(&json, "long-0000");
    assert_eq!(t["result"], "FAIL", "{t:#}");
    assert_eq!(t["state"], "CLEAN", "cleaned up after the interrupt: {t:#}");
    assert!(
        t["reason"]
            .as_str()
            .is_some_and(|r| r.contains("interrupted")),
        "{t:#}"
    );
}

/// Links of dead runs (ours, by the alias, or unmarked) are removed by the next run; so is the
/// link of a run killed with SIGKILL while SIPp ran.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn leftover_link_from_a_killed_run_is_removed() {
    let lab = Lab::up("leftover_link_from_a_killed_run_is_removed");
    assert!(
        !Path::new("/proc/999999").exists(),
        "pid 999999 exists: the leftover's owner must be dead"
    );
    // A link of a gone run of our pid namespace (999999 runs nothing here).
    let pidns = fs::read_link("/proc/self/ns/pid").unwrap();
    let pidns = pidns.to_str().unwrap();
    let pidns = pidns["pid:[".len()..pidns.len() - 1].to_string();
    lab.run_ok("ip", ["link", "add", "sipp-zzzzzz", "type", "bridge"]);
    let dead = format!("sipplauncher pid=999999 start=1 pidns={pidns}");
    lab.run_ok("ip", ["link", "set", "sipp-zzzzzz", "alias", &dead]);
    lab.run_ok("ip", ["link", "add", "sipp-yyyyyy", "type", "bridge"]);
    assert_eq!(sipp_links(&lab), ["sipp-zzzzzz", "sipp-yyyyyy"]);

    let sb = Sandbox::new();
    write_real_suite(&sb.suite(), &[("ping-0000/uac_ua0.xml", OPTIONS_UAC)]);
    let ping = real_cmd(&lab, &sb, &sb.suite());
    let r = run_in(&lab, &ping);
    assert_eq!(r.status, 0, "{}", show(&r));
    assert_eq!(sipp_links(&lab), Vec::<String>::new());

    // kill -9 while SIPp runs: its link stays (marked with its pid), SIPp goes on.
    let long = Sandbox::new();
    long_suite(&long);
    let mut cmd = real_cmd(&lab, &long, &long.suite());
    cmd.arg("--keyword-replacement-values").arg(
        serde_json::json!({ "marker": long.path("after-ran").display().to_string() }).to_string(),
    );
    let mut run = Spawned::start(&lab, &cmd);
    run.wait_for("STARTING", Duration::from_secs(15));
    assert_is_sipplauncher(run.pid());
    assert!(
        wait_until(Duration::from_secs(5), || sipp_pids(&lab).len() == 2),
        "two SIPp running: {:?}",
        sipp_pids(&lab)
    );
    let killed = run.pid();
    kill(killed, Signal::SIGKILL).unwrap();
    let (status, _, _) = run.finish(Duration::from_secs(5));
    assert_eq!(status, -1, "killed by a signal");
    // Its test's link, and the link that held its reserve of probed addresses (`sipp-+...`).
    let (reserve, left): (Vec<String>, Vec<String>) = sipp_links(&lab)
        .into_iter()
        .partition(|l| l.starts_with("sipp-+"));
    assert_eq!(left.len(), 1, "the killed run's link: {left:?}");
    assert_eq!(
        reserve.len(),
        1,
        "the killed run's reserve link: {reserve:?}"
    );
    let alias = lab.run_ok("ip", ["-j", "link", "show", &left[0]]);
    let alias: serde_json::Value = serde_json::from_slice(&alias.stdout).unwrap();
    let alias = alias[0]["ifalias"].as_str().unwrap_or_default().to_string();
    assert!(
        alias.starts_with(&format!("sipplauncher pid={killed} start="))
            && alias.contains(" pidns="),
        "{alias}"
    );
    // The link and the run folders name their run the same way.
    let owner = alias.strip_prefix("sipplauncher ").unwrap().to_string();
    assert!(!long.path("after-ran").exists(), "no cleanup after kill -9");
    // Its SIPp processes go on, orphaned; its run folders (the suite's GLOBAL and its test's)
    // stay, naming their owner.
    assert_eq!(sipp_pids(&lab).len(), 2, "{:?}", sipp_pids(&lab));
    let killed_folders = long.run_folders();
    assert_eq!(killed_folders.len(), 2, "{killed_folders:?}");
    for f in &killed_folders {
        assert_eq!(read(&f.join(".sipplauncher-owner")).trim(), owner, "{f:?}");
    }
    // Beside it: a run folder of a live run (this test process is its owner) and one without an
    // owner file (--leave-temp): both stay.
    let my_start = read(Path::new("/proc/self/stat"));
    let my_start = my_start[my_start.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    let live = long.run_root().join("other/livexx");
    let kept = long.run_root().join("other/keptxx");
    for f in [&live, &kept] {
        fs::create_dir_all(f).unwrap();
        fs::write(f.join("file"), "x").unwrap();
    }
    fs::write(
        live.join(".sipplauncher-owner"),
        format!(
            "pid={} start={my_start} pidns={pidns}\n",
            std::process::id()
        ),
    )
    .unwrap();

    // The next run (same run root) removes the link and kills the stray SIPp before it starts.
    let mut next = real_cmd(&lab, &long, &sb.suite());
    next.arg("--log-file").arg(long.path("next.log"));
    let r = run_in(&lab, &next);
    assert_eq!(r.status, 0, "{}", show(&r));
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
    assert!(
        wait_until(Duration::from_secs(5), || sipp_pids(&lab).is_empty()),
        "stray SIPp left: {:?}",
        sipp_pids(&lab)
    );
    let log = read(&long.path("next.log"));
    assert!(log.contains("killing a SIPp left by a killed run"), "{log}");
    // The killed run's folders are gone; the other two stay.
    assert!(
        log.contains("removed 2 run folders left by killed runs"),
        "{log}"
    );
    assert_eq!(long.run_folders(), vec![kept, live]);
}

/// The example suite's DNS test: the DUT resolves the Request-URI's domain with the records of
/// dns.txt, served by sipplauncher's DNS server on the runner's address.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn dns_test_of_the_example_suite() {
    let lab = Lab::up("dns_test_of_the_example_suite");
    let sb = Sandbox::new();
    let mut cmd = real_cmd(&lab, &sb, &repo().join("tmp-testsuite"));
    cmd.args(["--pattern-only", "dns", "--leave-temp"])
        .arg("--json")
        .arg(sb.path("report.json"));
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    assert_eq!(
        states_named(&lines, "dns-0000"),
        REAL_SEQUENCE,
        "{}",
        r.stdout
    );
    let f = folder_of(&sb, "dns-0000");
    let run_id = f.file_name().unwrap().to_string_lossy().into_owned();
    let uas = read(&sipp_trace(&f, "uas_ua0", "messages.log"));
    assert!(
        uas.contains(&format!(
            "INVITE sip:alice@svc-{run_id}.example.com SIP/2.0"
        )),
        "ua0 got the call addressed by name:\n{uas}"
    );
    // The records in the test's own log, as the original wrote them; and Kamailio's question.
    let log = read(&f.join("sipplauncher.log"));
    for want in [
        "loading DNS file ".to_string(),
        format!("  1: ua0-{run_id}.example.com. 300 IN A "),
        format!("  2: _sip._udp.svc-{run_id}.example.com. 300 IN SRV 10 60 5060 ua0-{run_id}.example.com."),
        "2 zone resource records generated from file".to_string(),
        "authoritative for: example.com.".to_string(),
        format!("dns: _sip._udp.svc-{run_id}.example.com. SRV: 1 records"),
    ] {
        assert!(log.contains(&want), "{want:?} not in\n{log}");
    }
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
}

/// A failing GLOBAL before.sh stops the run cleanly: no test is prepared, its after.sh does not
/// run, one clear line says why, exit status 1.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn failing_global_before_sh_stops_the_run() {
    let lab = Lab::up("failing_global_before_sh");
    let sb = Sandbox::new();
    let marker = sb.path("global-after-ran");
    let after = format!("touch {}\n", marker.display());
    write_real_suite(
        &sb.suite(),
        &[
            ("GLOBAL/before.sh", "echo provisioning failed >&2\nexit 3\n"),
            ("GLOBAL/after.sh", after.as_str()),
            ("options-0000/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--json")
        .arg(sb.path("r.json"))
        .arg("--junit")
        .arg(sb.path("junit.xml"));
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 1, "{}", show(&r));
    assert!(state_lines(&r.stdout).is_empty(), "{}", show(&r));
    // Told once, on GLOBAL's own NOT READY line, in the tool's words: no log record on the
    // terminal.
    let global = global_lines(&r.stdout);
    let states: Vec<&str> = global.iter().map(|l| l.state.as_str()).collect();
    assert_eq!(states, ["PREPARING", "NOT READY"], "{}", show(&r));
    assert!(
        global[1].rest.contains("before.sh")
            && global[1].rest.contains("exited with status 3")
            && global[1].rest.contains("provisioning failed"),
        "{}",
        show(&r)
    );
    assert_eq!(
        r.stdout.matches("provisioning failed").count(),
        1,
        "{}",
        show(&r)
    );
    assert_eq!(r.stderr, "", "{}", show(&r));
    assert_eq!(closing_lines(&r.stdout, false), (0, Some(0), Some(0)));
    // After the closing lines, the recap points at GLOBAL's kept folder (its reason is above).
    let global_folder = sb.run_root().join("GLOBAL").join(&global[0].run_id);
    assert_eq!(
        recap(&r.stdout).1,
        [format!(
            "GLOBAL did not pass (NOT READY, see above); kept: {}",
            global_folder.display()
        )],
        "{}",
        show(&r)
    );
    assert!(global_folder.join("sipplauncher.log").exists());
    // The reports count as the console does: GLOBAL is no test case; its failure is theirs.
    let counts = report_counts(&sb.path("r.json"), &sb.path("junit.xml"));
    assert_eq!(
        (counts.json, counts.junit),
        ((0, 0, 0), (0, 0)),
        "{}",
        show(&r)
    );
    assert_eq!(
        (counts.json_global_before_ok, counts.json_global_after_ok),
        (Some(false), None)
    );
    assert!(
        counts
            .junit_global_error
            .starts_with("GLOBAL before.sh failed: before.sh exited with status 3"),
        "{counts:?}"
    );
    assert!(
        !marker.exists(),
        "GLOBAL after.sh ran after a failed before.sh"
    );
    assert!(sipp_links(&lab).is_empty());
}

/// A failing GLOBAL after.sh makes the exit status 1 (also when every test passed); the console,
/// the JSON and the JUnit report count alike (GLOBAL is no test run in any of them) and each
/// tells GLOBAL's failure once.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn failing_global_after_sh_fails_the_run() {
    let lab = Lab::up("failing_global_after_sh");
    let sb = Sandbox::new();
    let unexpected = expects_180();
    write_real_suite(
        &sb.suite(),
        &[
            ("GLOBAL/after.sh", "echo 'cannot restore' >&2\nexit 1\n"),
            ("fail-0000/uac_ua0.xml", unexpected.as_str()),
            ("options-0000/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--json")
        .arg(sb.path("r.json"))
        .arg("--junit")
        .arg(sb.path("junit.xml"));
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 1, "{}", show(&r));
    // The original's closing lines, exactly.
    assert_eq!(
        closing_lines(&r.stdout, false),
        (2, Some(1), Some(1)),
        "{}",
        show(&r)
    );
    let global = global_lines(&r.stdout);
    let states: Vec<&str> = global.iter().map(|l| l.state.as_str()).collect();
    assert_eq!(states, ["PREPARING", "CLEANING", "DIRTY"], "{}", show(&r));
    assert!(
        global[2].rest.contains("after.sh exited with status 1"),
        "{}",
        show(&r)
    );
    // Told once on the terminal, in the tool's words; no log record there.
    assert_eq!(
        r.stdout.matches("cannot restore").count(),
        1,
        "{}",
        show(&r)
    );
    assert!(
        !r.stdout.lines().any(|l| ["ERRO ", "WARN ", "INFO "]
            .iter()
            .any(|level| l.contains(level))),
        "{}",
        show(&r)
    );
    assert_eq!(r.stderr, "", "{}", show(&r));
    // The recap: GLOBAL first (its reason is on its line above), then the failed test run.
    let (recapped, recap_lines) = recap(&r.stdout);
    assert!(
        recap_lines[0].starts_with("GLOBAL did not pass (DIRTY, see above); kept: "),
        "{}",
        show(&r)
    );
    assert_eq!(
        recap_lines[1],
        "Did not pass: 1 of 2 test runs",
        "{}",
        show(&r)
    );
    let failed: Vec<&str> = recapped.iter().map(|l| l.test.as_str()).collect();
    assert_eq!(failed, ["fail-0000"], "{}", show(&r));
    let counts = report_counts(&sb.path("r.json"), &sb.path("junit.xml"));
    assert_eq!(
        (counts.json, counts.junit),
        ((2, 1, 1), (2, 1)),
        "{}",
        show(&r)
    );
    assert_eq!(
        (counts.json_global_before_ok, counts.json_global_after_ok),
        (Some(true), Some(false))
    );
    assert!(
        counts
            .junit_global_error
            .starts_with("GLOBAL after.sh failed: after.sh exited with status 1"),
        "{counts:?}"
    );
    // Every test passing, GLOBAL's after.sh alone fails the run: exit 1, which --fail-expected
    // turns into the expected outcome.
    cmd.args(["--pattern-only", "options"]);
    let passing = run_in(&lab, &cmd);
    assert_eq!(passing.status, 1, "{}", show(&passing));
    assert_eq!(closing_lines(&passing.stdout, false), (1, Some(1), Some(0)));
    cmd.arg("--fail-expected");
    assert_eq!(run_in(&lab, &cmd).status, 0);
}

/// A before.sh that hangs is killed after --script-timeout: NOT READY, and the run goes on.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn hanging_before_sh_times_out() {
    let lab = Lab::up("hanging_before_sh");
    let sb = Sandbox::new();
    write_real_suite(
        &sb.suite(),
        &[
            ("a-hangs/before.sh", "sleep 30\n"),
            ("a-hangs/uac_ua0.xml", OPTIONS_UAC),
            ("b-fine/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.args(["--script-timeout", "0.5"]);
    let started = Instant::now();
    let r = run_in(&lab, &cmd);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.status, 1, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    assert_eq!(states_named(&lines, "a-hangs"), ["PREPARING", "NOT READY"]);
    assert!(
        line_of(&lines, "a-hangs", "NOT READY")
            .rest
            .contains("timed out"),
        "{}",
        show(&r)
    );
    assert_eq!(states_named(&lines, "b-fine"), REAL_SEQUENCE);
    assert!(sipp_links(&lab).is_empty());
}

/// A second SIGINT while a before.sh provisions (and would for 30 s, deaf to the SIGTERM of
/// the first): it is killed at once, the run ends within a second or two, and the test's link
/// is still removed.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn second_sigint_kills_a_hanging_script_and_still_cleans_up() {
    let lab = Lab::up("second_sigint");
    let sb = Sandbox::new();
    let deaf = sb.path("deaf");
    let before = format!(
        "trap '' TERM\ntouch {}\necho provisioning\nsleep 30\n",
        deaf.display()
    );
    write_real_suite(
        &sb.suite(),
        &[
            ("slow/before.sh", before.as_str()),
            ("slow/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let cmd = real_cmd(&lab, &sb, &sb.suite());
    let mut s = Spawned::start(&lab, &cmd);
    s.wait_for("PREPARING", Duration::from_secs(20));
    assert!(wait_until(Duration::from_secs(10), || !sipp_links(&lab).is_empty()));
    // The script ignores SIGTERM from now on.
    assert!(wait_until(Duration::from_secs(10), || deaf.exists()));
    let pid = s.pid();
    assert_is_sipplauncher(pid);
    kill(pid, Signal::SIGINT).unwrap();
    // The first one sends it SIGTERM, which it ignores: it has a grace of a second...
    s.wait_for("Interrupted: cleaning up", Duration::from_secs(10));
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "ended on the first signal"
    );
    kill(pid, Signal::SIGINT).unwrap();
    // ...the second ends it at once.
    let (status, stdout, took) = s.finish(Duration::from_secs(5));
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_ne!(status, 0, "{stdout}");
    assert!(stdout.contains("Interrupted again"), "{stdout}");
    assert!(summary(&stdout, "TOTAL").is_some(), "{stdout}");
    assert!(sipp_links(&lab).is_empty(), "{:?}", sipp_links(&lab));
    assert!(sb.run_folders().is_empty());
}

/// Two tests running at once that define the same DNS name: the later one is NOT READY with a
/// message naming both tests and the name; the earlier one runs and its name resolves.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn dns_name_defined_by_two_tests_at_once_conflicts() {
    let lab = Lab::up("dns_conflict");
    let sb = Sandbox::new();
    let zone = "shared.example.com.  A  {{ ua0.host }}\n";
    write_real_suite(
        &sb.suite(),
        &[
            ("a-first/dns.txt", zone),
            ("a-first/uac_ua0.xml", OPTIONS_UAC),
            ("b-second/dns.txt", zone),
            ("b-second/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.args(["--group", "2"]);
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 1, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    assert_eq!(
        states_named(&lines, "a-first"),
        REAL_SEQUENCE,
        "{}",
        show(&r)
    );
    assert_eq!(states_named(&lines, "b-second"), ["PREPARING", "NOT READY"]);
    let why = &line_of(&lines, "b-second", "NOT READY").rest;
    assert!(
        why.contains("a-first") && why.contains("b-second") && why.contains("shared.example.com"),
        "{why}"
    );
    // One after the other, there is no conflict.
    let r = run_in(&lab, &real_cmd(&lab, &sb, &sb.suite()));
    assert_eq!(r.status, 0, "{}", show(&r));
}

/// During a test, a DUT in its own namespace resolves the test's A and SRV records through
/// the launcher (dig from the DUT namespace, run by before.sh), as from an authority (issue
/// 10.4): an absent name under the test's domain is NXDOMAIN and a name without the type asked
/// is NODATA, both with the domain's SOA; a foreign zone is REFUSED (no open resolver, no
/// recursion); after the run, no answer for the test's names.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn the_dut_resolves_a_tests_records_during_it_only() {
    let lab = Lab::up("dns_from_the_dut");
    assert!(
        std::process::Command::new("dig").arg("-v").output().is_ok(),
        "no dig: .ci/run installs bind9-dnsutils"
    );
    let sb = Sandbox::new();
    let out = sb.path("answers");
    let dig = format!(
        "ip netns exec {dut} dig +tries=1 +time=2 @{runner}",
        dut = lab.dut_ns(),
        runner = lab.runner()
    );
    let before = format!(
        "{dig} +short ep-{{{{ test.run_id }}}}.example.com A > {o}.a\n\
         {dig} +short _sip._udp.svc-{{{{ test.run_id }}}}.example.com SRV > {o}.srv\n\
         {dig} www.example.org A > {o}.foreign\n\
         {dig} absent-{{{{ test.run_id }}}}.example.com A > {o}.nxdomain\n\
         {dig} ep-{{{{ test.run_id }}}}.example.com AAAA > {o}.nodata\n\
         echo {{{{ test.run_id }}}} > {o}.run_id\n",
        o = out.display()
    );
    write_real_suite(
        &sb.suite(),
        &[
            (
                "t/dns.txt",
                "ep-{{ test.run_id }}.example.com  A  {{ ua0.host }}\n\
                 _sip._udp.svc-{{ test.run_id }}.example.com.  SRV  [10, 60, 5060, \"ep-{{ test.run_id }}.example.com.\"]\n",
            ),
            ("t/before.sh", before.as_str()),
            ("t/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--leave-temp");
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let ua0 = address_in(&sipp_trace(&folder_of(&sb, "t"), "uac_ua0", "messages.log"));
    let a = read(&sb.path("answers.a"));
    assert_eq!(a.trim(), ua0.to_string(), "A record");
    let run_id = read(&sb.path("answers.run_id")).trim().to_string();
    let srv = read(&sb.path("answers.srv"));
    assert_eq!(
        srv.trim(),
        format!("10 60 5060 ep-{run_id}.example.com."),
        "SRV record"
    );
    // dig's flags line reads ";; flags: qr aa rd; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ...".
    let flags = |answer: &str| -> String {
        answer
            .lines()
            .find(|l| l.starts_with(";; flags:"))
            .unwrap_or_else(|| panic!("no flags line: {answer}"))
            .to_string()
    };
    for (file, status) in [
        ("answers.nxdomain", "NXDOMAIN"),
        ("answers.nodata", "NOERROR"),
    ] {
        let answer = read(&sb.path(file));
        assert!(answer.contains(&format!("status: {status}")), "{answer}");
        let f = flags(&answer);
        assert!(
            f.contains(" aa") && f.contains("ANSWER: 0") && f.contains("AUTHORITY: 1"),
            "{answer}"
        );
        assert!(!f.contains(" ra"), "no recursion: {answer}");
        let soa = answer
            .lines()
            .skip_while(|l| !l.starts_with(";; AUTHORITY SECTION:"))
            .nth(1)
            .unwrap_or_else(|| panic!("no authority section: {answer}"));
        let fields: Vec<&str> = soa.split_whitespace().collect();
        assert_eq!(fields[..4], ["example.com.", "0", "IN", "SOA"], "{answer}");
    }
    let foreign = read(&sb.path("answers.foreign"));
    assert!(foreign.contains("status: REFUSED"), "{foreign}");
    assert!(
        !foreign.contains(" ra;") && !foreign.contains(" ra "),
        "no recursion: {foreign}"
    );
    // After the run: no answer for the test's name.
    let after = lab.output(
        "ip",
        [
            "netns".to_string(),
            "exec".to_string(),
            lab.dut_ns(),
            "dig".to_string(),
            "+tries=1".to_string(),
            "+time=1".to_string(),
            format!("@{}", lab.runner()),
            format!("ep-{run_id}.example.com"),
            "A".to_string(),
        ],
    );
    let after = String::from_utf8_lossy(&after.stdout);
    assert!(
        !after.contains(&ua0.to_string()),
        "still answered after the run: {after}"
    );
}

/// The SIP messages of a pcap written by sipplauncher (Linux cooked SLL, IPv4, UDP): each
/// message's `(start line, Call-ID, CSeq)`.
fn pcap_sip_messages(path: &Path) -> Vec<(String, String, String)> {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = pcap_file::pcap::PcapReader::new(file).expect("a pcap");
    assert_eq!(
        reader.header().datalink,
        pcap_file::DataLink::LINUX_SLL,
        "cooked capture"
    );
    let mut out = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let data = packet.expect("a packet").data;
        // SLL header: 16 bytes, the protocol in its last two.
        if data.len() < 16 + 20 || data[14..16] != [0x08, 0x00] {
            continue;
        }
        let ip = &data[16..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        if ip[9] != 17 || ip.len() < ihl + 8 {
            continue;
        }
        out.extend(sip_message(&ip[ihl + 8..]));
    }
    out
}

/// `(start line, Call-ID, CSeq)` of a SIP message, if `bytes` is one.
fn sip_message(bytes: &[u8]) -> Option<(String, String, String)> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let start = lines.next()?.trim().to_string();
    if !(start.ends_with("SIP/2.0") || start.starts_with("SIP/2.0 ")) {
        return None;
    }
    let header = |name: &str| {
        text.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    Some((start, header("Call-ID"), header("CSeq")))
}

/// The messages SIPp's `-trace_msg` file shows, sent and received, in order.
fn traced_sip_messages(log: &str) -> Vec<(String, String, String)> {
    // Each message follows a "... message sent/received ...:" line and ends at a blank line
    // after its headers (no bodies here).
    let mut out = Vec::new();
    let mut lines = log.lines().peekable();
    while let Some(l) = lines.next() {
        if !(l.contains("message sent") || l.contains("message received")) {
            continue;
        }
        let mut msg = Vec::new();
        while let Some(next) = lines.peek() {
            if next.trim().is_empty() && !msg.is_empty() {
                break;
            }
            let next = lines.next().unwrap_or_default();
            if !next.trim().is_empty() {
                msg.push(next.trim().to_string());
            }
        }
        if let Some(m) = sip_message(msg.join("\r\n").as_bytes()) {
            out.push(m);
        }
    }
    out
}

/// A call through the DUT: the test's pcap holds every SIP message that SIPp's own message
/// traces show for both UAs, the first and the last included.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn pcap_holds_every_sip_message_of_both_uas() {
    let lab = Lab::up("pcap_every_message");
    let sb = Sandbox::new();
    write_real_suite(
        &sb.suite(),
        &[
            ("call/uas_ua0.xml", CALL_UAS),
            ("call/uac_ua1.xml", CALL_UAC),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.arg("--leave-temp");
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let folder = folder_of(&sb, "call");
    let run_id = folder.file_name().unwrap().to_string_lossy().into_owned();
    let pcap = pcap_sip_messages(&folder.join(format!("sipp-{run_id}.pcap")));
    let mut traced = Vec::new();
    for ua in ["uac_ua1", "uas_ua0"] {
        let t = traced_sip_messages(&read(&sipp_trace(&folder, ua, "messages.log")));
        assert!(t.len() >= 5, "{ua}: {t:?}");
        traced.push((ua, t));
    }
    for (ua, msgs) in &traced {
        for m in msgs {
            assert!(
                pcap.contains(m),
                "{ua}'s {m:?} is not in the pcap:\n{pcap:#?}"
            );
        }
        // First and last explicitly (INVITE ... and the 200 to the BYE).
        assert!(msgs.first().unwrap().0.starts_with("INVITE"), "{msgs:?}");
        assert!(msgs.last().unwrap().2.ends_with("BYE"), "{msgs:?}");
    }
    // Each UA's message crosses the DUT: the pcap has both legs, so at least all of them.
    let all: usize = traced.iter().map(|(_, m)| m.len()).sum();
    assert!(
        pcap.len() >= all,
        "{} in the pcap, {all} traced",
        pcap.len()
    );
}

/// Two tests at once: each pcap holds only packets of its own addresses.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn two_tests_at_once_each_get_only_their_own_packets() {
    let lab = Lab::up("pcap_two_tests");
    let sb = Sandbox::new();
    write_real_suite(
        &sb.suite(),
        &[
            ("a/uas_ua0.xml", CALL_UAS),
            ("a/uac_ua1.xml", CALL_UAC),
            ("b/uas_ua0.xml", CALL_UAS),
            ("b/uac_ua1.xml", CALL_UAC),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.args(["--leave-temp", "--group", "2"]);
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let mut call_ids = Vec::new();
    for t in ["a", "b"] {
        let folder = folder_of(&sb, t);
        let run_id = folder.file_name().unwrap().to_string_lossy().into_owned();
        let msgs = pcap_sip_messages(&folder.join(format!("sipp-{run_id}.pcap")));
        assert!(!msgs.is_empty(), "{t}: empty pcap");
        let ids: BTreeSet<String> = msgs.iter().map(|m| m.1.clone()).collect();
        assert_eq!(ids.len(), 1, "{t}: one call, one Call-ID: {ids:?}");
        call_ids.push(ids.into_iter().next().unwrap());
        // Each UA of the test sent from an address of its own.
        let own = sent_addresses(&read(&sipp_trace(&folder, "uac_ua1", "messages.log")))
            .into_iter()
            .chain(sent_addresses(&read(&sipp_trace(
                &folder,
                "uas_ua0",
                "messages.log",
            ))))
            .collect::<BTreeSet<_>>();
        assert_eq!(own.len(), 2, "{t}: {own:?}");
    }
    assert_ne!(call_ids[0], call_ids[1], "each pcap has its own call");
}

/// --no-pcap: no capture, no pcap file.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn no_pcap_writes_no_pcap() {
    let lab = Lab::up("no_pcap");
    let sb = Sandbox::new();
    write_real_suite(&sb.suite(), &[("o/uac_ua0.xml", OPTIONS_UAC)]);
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.args(["--leave-temp", "--no-pcap"]);
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    let folder = folder_of(&sb, "o");
    let pcaps: Vec<_> = fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pcap"))
        .collect();
    assert!(pcaps.is_empty(), "{pcaps:?}");
    // Without --no-pcap there is one.
    let sb2 = Sandbox::new();
    write_real_suite(&sb2.suite(), &[("o/uac_ua0.xml", OPTIONS_UAC)]);
    let mut cmd = real_cmd(&lab, &sb2, &sb2.suite());
    cmd.arg("--leave-temp");
    assert_eq!(run_in(&lab, &cmd).status, 0);
    let folder = folder_of(&sb2, "o");
    assert!(fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".pcap")));
}

/// Without the privilege to capture: one clear line at start, exit status 2, nothing done.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn capture_without_privilege_is_a_clear_error_at_start() {
    let lab = Lab::up("capture_no_privilege");
    let sb = Sandbox::new();
    write_real_suite(&sb.suite(), &[("o/uac_ua0.xml", OPTIONS_UAC)]);
    let inner = real_cmd(&lab, &sb, &sb.suite());
    // Root without CAP_NET_RAW (netlink still works: CAP_NET_ADMIN stays).
    let mut cmd = Command::new("setpriv");
    cmd.args(["--bounding-set", "-net_raw", "--inh-caps", "-net_raw", "--"])
        .arg(inner.get_program())
        .args(inner.get_args());
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 2, "{}", show(&r));
    let err = r.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("capture") && err.contains("not permitted"),
        "{err}"
    );
    assert!(state_lines(&r.stdout).is_empty(), "{}", show(&r));
    assert!(sb.run_folders().is_empty());
    assert!(sipp_links(&lab).is_empty());
}

/// A test whose SIPp instances neither end nor fail is stopped after --test-timeout and FAILs,
/// with the reason; its SIPp processes are gone.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn test_timeout_stops_sipp_and_fails() {
    let lab = Lab::up("test_timeout");
    let sb = Sandbox::new();
    write_real_suite(&sb.suite(), &[("stuck/uas_ua0.xml", WAITING_UAS)]);
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.args(["--test-timeout", "1", "--sipp-recv-timeout", "60000"]);
    let started = Instant::now();
    let r = run_in(&lab, &cmd);
    let took = started.elapsed();
    assert_eq!(r.status, 1, "{}", show(&r));
    assert!(took < Duration::from_secs(8), "{took:?}");
    let lines = state_lines(&r.stdout);
    assert_eq!(
        states_named(&lines, "stuck"),
        ["PREPARING", "STARTING", "FAIL", "CLEANING"]
    );
    let why = &line_of(&lines, "stuck", "FAIL").rest;
    assert!(why.contains("timed out after 1.00s"), "{why}");
    assert_eq!(sipp_pids(&lab), Vec::<i32>::new());
    assert!(sipp_links(&lab).is_empty());
}

/// An open-files limit too small for SIPp is one clear line at start (exit status 2).
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn too_small_an_open_files_limit_is_a_clear_error() {
    let lab = Lab::up("nofile_limit");
    let sb = Sandbox::new();
    write_real_suite(&sb.suite(), &[("o/uac_ua0.xml", OPTIONS_UAC)]);
    let inner = real_cmd(&lab, &sb, &sb.suite());
    let mut line = String::from("ulimit -n 24 && exec");
    for part in std::iter::once(inner.get_program()).chain(inner.get_args()) {
        line.push_str(&format!(" '{}'", part.to_string_lossy()));
    }
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &line]);
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 2, "{}", show(&r));
    let err = r.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("open-files limit (24)") && err.contains("ulimit -n"),
        "{err}"
    );
    assert!(!sb.log().exists(), "the general log was made");
    assert!(sipp_links(&lab).is_empty());
}

/// A `--group` that the open-files limit cannot carry is one clear line at start (exit status
/// 2), not tests failing one by one with "Too many open files"; a smaller group runs under
/// the same limit.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn a_group_too_large_for_the_open_files_limit_is_a_clear_error() {
    let lab = Lab::up("nofile_group");
    let sb = Sandbox::new();
    let files = each_test(
        ["t0", "t1", "t2"],
        &[("uac_ua0.xml", OPTIONS_UAC), ("uac_ua1.xml", OPTIONS_UAC)],
    );
    write_real_suite(&sb.suite(), &files);
    let limited = |group: &str| {
        let mut inner = real_cmd(&lab, &sb, &sb.suite());
        inner.args(["--group", group]);
        let mut line = String::from("ulimit -n 70 && exec");
        for part in std::iter::once(inner.get_program()).chain(inner.get_args()) {
            line.push_str(&format!(" '{}'", part.to_string_lossy()));
        }
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &line]);
        run_in(&lab, &cmd)
    };
    let r = limited("3");
    assert_eq!(r.status, 2, "{}", show(&r));
    assert_eq!(
        r.stderr.trim(),
        "sipplauncher: --group 3: 3 tests at once, with up to 2 SIPp each, need about 76 open \
         files, more than the open-files limit (70): raise it (ulimit -n 76) or lower --group"
    );
    assert!(state_lines(&r.stdout).is_empty());
    assert!(sb.run_folders().is_empty());
    let r = limited("1");
    assert_eq!(r.status, 0, "{}", show(&r));
    assert_eq!(summary(&r.stdout, "SUCCESS"), Some(3));
    assert!(sipp_links(&lab).is_empty());
}

/// No `sipp` on PATH: one clear line at start (exit status 2), nothing done.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn no_sipp_on_path_is_a_clear_error() {
    let lab = Lab::up("no_sipp");
    let sb = Sandbox::new();
    write_real_suite(&sb.suite(), &[("o/uac_ua0.xml", OPTIONS_UAC)]);
    let inner = real_cmd(&lab, &sb, &sb.suite());
    // `env` sets PATH for sipplauncher only (the lab's `ip netns exec` still needs one).
    let mut cmd = Command::new("env");
    cmd.arg(format!("PATH={}", sb.path("empty-bin").display()))
        .arg(inner.get_program())
        .args(inner.get_args());
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 2, "{}", show(&r));
    let err = r.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no sipp executable on PATH"), "{err}");
    assert!(state_lines(&r.stdout).is_empty());
    assert!(!sb.log().exists(), "the general log was made");
    assert!(sipp_links(&lab).is_empty());
    assert!(sb.run_folders().is_empty());
}

/// A burst of 20,000 UDP packets between two of a test's addresses, sent by its before.sh within
/// about 2 s: every one is in the test's pcap (counted against the sender's count). 620 bytes
/// each, 13 MB in all: more than the capture holds in memory for a run, so a chunk goes to the
/// pcap file during the run.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn a_burst_of_20000_packets_lands_in_the_pcap_whole() {
    let lab = Lab::up("pcap_burst");
    let sb = Sandbox::new();
    let sent = sb.path("sent");
    let before = format!(
        "python3 - <<'PY'\n\
         import socket, time\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('{{{{ ua0.host }}}}', 0))\n\
         r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         r.bind(('{{{{ ua1.host }}}}', 9999))\n\
         r.setblocking(False)\n\
         n, t0 = 0, time.time()\n\
         for i in range(20000):\n\
         \x20   s.sendto(b'burst %05d' % i + b'.' * 600, ('{{{{ ua1.host }}}}', 9999))\n\
         \x20   n += 1\n\
         \x20   if i % 64 == 0:\n\
         \x20       while True:\n\
         \x20           try: r.recv(64)\n\
         \x20           except BlockingIOError: break\n\
         open('{sent}', 'w').write('%d %.3f' % (n, time.time() - t0))\n\
         PY\n",
        sent = sent.display()
    );
    write_real_suite(
        &sb.suite(),
        &[
            ("burst/before.sh", before.as_str()),
            ("burst/uas_ua1.xml", WAITING_UAS),
            ("burst/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    // The UAS waits for a call that never comes: the test ends FAIL on its timeout, which is
    // fine here; only the pcap matters.
    cmd.args(["--leave-temp", "--test-timeout", "1"]);
    let r = run_in(&lab, &cmd);
    let folder = folder_of(&sb, "burst");
    let run_id = folder.file_name().unwrap().to_string_lossy().into_owned();
    let (n, secs) = {
        let text = read(&sent);
        let mut it = text.split_whitespace();
        let n: usize = it.next().unwrap().parse().unwrap();
        let secs: f64 = it.next().unwrap().parse().unwrap();
        (n, secs)
    };
    assert_eq!(n, 20_000, "{}", show(&r));
    let file = fs::File::open(folder.join(format!("sipp-{run_id}.pcap"))).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(file).unwrap();
    let mut burst = 0;
    while let Some(p) = reader.next_packet() {
        let data = p.unwrap().data;
        if data.windows(6).any(|w| w == b"burst ") {
            burst += 1;
        }
    }
    eprintln!("burst: {n} sent in {secs:.2} s, {burst} in the pcap");
    assert_eq!(burst, n, "packets lost (sent in {secs:.2} s)");
}

/// `--window`: a slow test does not hold up the others. The same suite (one 3 s test, then
/// four quick pings) at `--group 2`, in groups and in window mode: in groups, the second group's
/// pings wait for the slow test to end; in window mode the four pings run one after another
/// beside it and are done before it ends, and every test still gets its whole post-run.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn window_keeps_the_group_busy_while_a_slow_test_runs() {
    let lab = Lab::up("window_keeps_the_group_busy_while_a_slow_test_runs");
    let sb = Sandbox::new();
    let slow = options_then(
        "slow",
        &[
            r#"<recv response="200"/>"#,
            r#"<pause milliseconds="3000"/>"#,
        ],
    );
    let pings = ["b-ping-0000", "b-ping-0001", "b-ping-0002", "b-ping-0003"];
    let mut files = each_test(pings, &[("uac_ua0.xml", OPTIONS_UAC)]);
    files.push(("a-slow-0000/uac_ua0.xml".into(), slow.as_str()));
    write_real_suite(&sb.suite(), &files);
    // Where in stdout each state line is.
    let position = |lines: &[StateLine], test: &str, state: &str| {
        lines
            .iter()
            .position(|l| l.test == test && l.state == state)
            .unwrap_or_else(|| panic!("no {state} line for {test} in {lines:#?}"))
    };

    for window in [false, true] {
        let mut cmd = real_cmd(&lab, &sb, &sb.suite());
        cmd.args(["--group", "2"]);
        if window {
            cmd.arg("--window");
        }
        let r = run_in(&lab, &cmd);
        assert_eq!(r.status, 0, "window {window}: {}", show(&r));
        let lines = state_lines(&r.stdout);
        for name in std::iter::once("a-slow-0000").chain(pings) {
            assert_eq!(states_named(&lines, name), REAL_SEQUENCE, "{name}");
        }
        let slow_done = position(&lines, "a-slow-0000", "SUCCESS");
        if window {
            for ping in pings {
                let cleaned = position(&lines, ping, "CLEANING");
                assert!(cleaned < slow_done, "{ping} waited:\n{}", r.stdout);
            }
        } else {
            // Groups: {slow, ping 0}, {ping 1, ping 2}, {ping 3}.
            assert!(position(&lines, "b-ping-0000", "CLEANING") > slow_done);
            for ping in &pings[1..] {
                assert!(position(&lines, ping, "PREPARING") > slow_done, "{ping}");
            }
        }
        assert_eq!(sipp_links(&lab), Vec::<String>::new());
        assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
    }
}

/// A TestActor that dies mid-run (a panic: test-only fault injection, `SIPPLAUNCHER_FAULT`, in
/// builds with the `fault-injection` feature that only these tests turn on) is cleaned up by its
/// parent at once: before the next group's pre-run, its SIPp is gone, and its link, addresses,
/// DNS records, capture and run folder; the run goes on and reports it DIRTY.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn a_test_actor_that_dies_mid_run_is_cleaned_up_by_the_supervisor() {
    let lab = Lab::up("dead_test_actor");
    let sb = Sandbox::new();
    let seen = sb.path("seen");
    // The next group's before.sh looks at what the dead run left, in the runner's namespace.
    let look = format!(
        "ip -o link show > {o}.links\n\
         ip -o -4 addr show > {o}.addrs\n\
         dig +tries=1 +time=2 @127.0.0.1 dies.example.com A > {o}.dns 2>&1\n\
         ls -A {root}/a-dies > {o}.folders 2>/dev/null\n\
         for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = sipp ] && readlink $p/cwd; done | grep a-dies > {o}.sipp\n\
         true\n",
        o = seen.display(),
        root = sb.run_root().display()
    );
    write_real_suite(
        &sb.suite(),
        &[
            ("a-dies/dns.txt", "dies.example.com  A  {{ ua0.host }}\n"),
            ("a-dies/uac_ua0.xml", long_uac().as_str()),
            ("b-next/before.sh", look.as_str()),
            ("b-next/uac_ua0.xml", OPTIONS_UAC),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.args(["--group", "1", "--json"])
        .arg(sb.path("report.json"))
        .env("SIPPLAUNCHER_FAULT", "panic-mid-run:a-dies");
    let r = run_in(&lab, &cmd);
    assert_eq!(r.status, 1, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    assert_eq!(
        states_named(&lines, "a-dies"),
        ["PREPARING", "STARTING", "DIRTY"],
        "{}",
        r.stdout
    );
    assert_eq!(
        states_named(&lines, "b-next"),
        REAL_SEQUENCE,
        "{}",
        r.stdout
    );
    let report = json_report(&sb.path("report.json"));
    let dead = json_test(&report, "a-dies");
    let reason = dead["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("its test actor died")
            && reason.contains(
                "gave back its SIPp (killed), its capture, its DNS records, its link and \
                 addresses, its run folder"
            )
            && !reason.contains("except"),
        "{reason}"
    );
    // What b-next's before.sh saw: only its own link (and its address on it), no record of
    // the dead run, no folder of it, no SIPp of it (one running in its folder).
    let links: Vec<String> = read(&sb.path("seen.links"))
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|n| {
            n.trim_end_matches(':')
                .split('@')
                .next()
                .unwrap()
                .to_string()
        })
        // A run's link (not a spare, `sipp-_…`, nor the ARP reserve's, `sipp-+…`).
        .filter(|n| n.starts_with("sipp-") && !n.starts_with("sipp-_") && !n.starts_with("sipp-+"))
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    let own = &links[0];
    for line in read(&sb.path("seen.addrs")).lines() {
        if line.contains("sipp-") && !line.contains("sipp-+") {
            assert!(
                line.contains(own.as_str()),
                "an address of the dead run: {line}"
            );
        }
    }
    let dns = read(&sb.path("seen.dns"));
    assert!(dns.contains("status: REFUSED"), "{dns}");
    assert_eq!(
        read(&sb.path("seen.folders")).trim(),
        "",
        "the dead run's folder"
    );
    assert_eq!(
        read(&sb.path("seen.sipp")).trim(),
        "",
        "the dead run's SIPp"
    );
    // And nothing at the end.
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
    assert_eq!(sipp_pids(&lab), Vec::<i32>::new());
    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
}

/// Three signals while a post-run hangs (test-only fault injection, see above): the first and
/// the second cannot end it, the third ends the run at once, the links removed first; what is
/// left (the hung run's folder) is removed by the next run.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn a_third_sigint_exits_at_once_after_removing_the_links() {
    let lab = Lab::up("third_sigint");
    let sb = Sandbox::new();
    write_real_suite(&sb.suite(), &[("hangs/uac_ua0.xml", OPTIONS_UAC)]);
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.env("SIPPLAUNCHER_FAULT", "hang-in-cleanup:hangs");
    let mut s = Spawned::start(&lab, &cmd);
    s.wait_for("CLEANING", Duration::from_secs(20));
    assert!(!sipp_links(&lab).is_empty());
    let pid = s.pid();
    assert_is_sipplauncher(pid);
    for line in [
        "Interrupted: cleaning up",
        "Interrupted again: stopping at once",
    ] {
        kill(pid, Signal::SIGINT).unwrap();
        s.wait_for(line, Duration::from_secs(10));
    }
    assert!(s.child.try_wait().unwrap().is_none(), "the post-run hangs");
    kill(pid, Signal::SIGINT).unwrap();
    let (status, stdout, _) = s.finish(Duration::from_secs(10));
    assert_eq!(status, 1, "{stdout}");
    assert!(
        stdout.contains("Interrupted a third time: exiting now"),
        "{stdout}"
    );
    assert!(summary(&stdout, "TOTAL").is_some(), "{stdout}");
    assert_eq!(sipp_links(&lab), Vec::<String>::new());
    // The hung run's folder is the next run's to remove (its owner is gone).
    assert_eq!(sb.run_folders().len(), 1);
    let mut next = real_cmd(&lab, &sb, &sb.suite());
    next.arg("--dry-run");
    let r = run_in(&lab, &next);
    assert_eq!(r.status, 0, "{}", show(&r));
    assert!(sb.run_folders().is_empty(), "{:?}", sb.run_folders());
}

/// What a run's JSON and JUnit reports count: JSON `(total, success, failed)` from its
/// `summary`, checked against its `tests`; JUnit `(tests, failures + errors)`, checked against
/// its `<testcase>`s; how each tells GLOBAL.
#[derive(Debug)]
struct ReportCounts {
    json: (u64, u64, u64),
    junit: (u64, u64),
    json_global_before_ok: Option<bool>,
    json_global_after_ok: Option<bool>,
    /// The JUnit suite's `<system-err>` (GLOBAL's failures), unescaped enough to compare.
    junit_global_error: String,
}

fn report_counts(json: &Path, junit: &Path) -> ReportCounts {
    let j = json_report(json);
    let s = &j["summary"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("{j:#}"));
    let counts = (n(&s["total"]), n(&s["success"]), n(&s["failed"]));
    let tests = j["tests"].as_array().unwrap();
    assert_eq!(tests.len() as u64, counts.0, "{j:#}");
    assert_eq!(
        tests.iter().filter(|t| t["passed"] == false).count() as u64,
        counts.2,
        "{j:#}"
    );
    assert!(
        tests.iter().all(|t| t["name"] != "GLOBAL"),
        "GLOBAL is no test run: {j:#}"
    );
    let x = read(junit);
    let attr = |name: &str| -> u64 {
        let re = regex::Regex::new(&format!(
            r#"<testsuite name="sipplauncher"[^>]* {name}="(\d+)""#
        ))
        .unwrap();
        re.captures(&x)
            .unwrap_or_else(|| panic!("no {name}= in\n{x}"))[1]
            .parse()
            .unwrap()
    };
    let cases = x.matches("<testcase ").count() as u64;
    assert_eq!(cases, attr("tests"), "{x}");
    assert!(!x.contains("<testcase name=\"GLOBAL\""), "{x}");
    let global_error = x
        .split("<system-err>")
        .nth(1)
        .map(|e| {
            e.split("</system-err>")
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default();
    let ok = |k: &str| j["global"][k]["ok"].as_bool();
    ReportCounts {
        json: counts,
        junit: (cases, attr("failures") + attr("errors")),
        json_global_before_ok: ok("before"),
        json_global_after_ok: ok("after"),
        junit_global_error: global_error,
    }
}
