//! Several sipplauncher processes on one DUT network at once, for real (issue 12): a scale-out
//! lab (`LAB_RUNNERS=3 lab/lab.sh up`: three runner namespaces on one bridge with Kamailio, as
//! three machines on the DUT's link) runs the three shards of a suite at once, one per runner,
//! then `sipplauncher merge` joins their reports; and the same three processes in one namespace.
//! Checked: every test ran exactly once, with the expected result (the DNS test through shard 1's
//! DNS server), every run names its shard and host, no address was ever on two links at once (a
//! watcher polls every namespace's addresses while the shards run), and nothing is left.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::lab::{wait_with_timeout, Lab};
use crate::real::{real_cmd, show, write_real_suite, CALL_UAC, CALL_UAS};
use crate::scale::{read_json, run_names};

/// Every IPv4 address (not loopback) on any link of the watched namespaces, polled while it
/// lives: an address on two links at the same time (in one namespace or in two) is a conflict.
struct AddressWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    handle: Option<JoinHandle<()>>,
}

#[derive(Default, Debug)]
struct Seen {
    /// "A on ns/link and ns/link", once per address and pair.
    conflicts: BTreeSet<String>,
    /// Distinct addresses seen on `sipp-*` links: proof that the watch saw the runs.
    test_addresses: BTreeSet<String>,
    polls: u64,
}

impl AddressWatch {
    fn start(namespaces: Vec<String>) -> AddressWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let handle = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
                    for ns in &namespaces {
                        for (link, addr) in addresses(ns) {
                            holders
                                .entry(addr)
                                .or_default()
                                .push(format!("{ns}/{link}"));
                        }
                    }
                    let mut s = seen.lock().unwrap();
                    s.polls += 1;
                    for (addr, on) in holders {
                        if on.iter().any(|l| l.contains("/sipp-")) {
                            s.test_addresses.insert(addr.clone());
                        }
                        if on.len() > 1 {
                            s.conflicts
                                .insert(format!("{addr} on {}", on.join(" and ")));
                        }
                    }
                    drop(s);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        AddressWatch {
            stop,
            seen,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("the address watch");
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// `(link, address)` of every IPv4 address in namespace `ns` but loopback's.
fn addresses(ns: &str) -> Vec<(String, String)> {
    let out = Command::new("ip")
        .args(["-n", ns, "-o", "-4", "addr", "show"])
        .output()
        .expect("ip addr show");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            // "7: sipp-abcdef    inet 10.99.3.17/32 scope global sipp-abcdef ..."
            let mut f = l.split_whitespace();
            let link = f.nth(1)?.split('@').next()?.to_string();
            let addr = f.nth(1)?.split('/').next()?.to_string();
            (!addr.starts_with("127.")).then_some((link, addr))
        })
        .collect()
}

/// The watch can fail: one address put on links of two namespaces is reported.
fn watch_sees_a_conflict(lab: &Lab) {
    let watch = AddressWatch::start(vec![lab.runner_ns(1), lab.runner_ns(2)]);
    let x = lab.addr(250).to_string();
    for k in [1, 2] {
        let ns = lab.runner_ns(k);
        for args in [
            vec!["-n", &ns, "link", "add", "sc-check", "type", "bridge"],
            vec![
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{x}/32"),
                "dev",
                "sc-check",
            ],
        ] {
            let st = Command::new("ip").args(&args).status().expect("ip");
            assert!(st.success(), "ip {args:?}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while watch.seen.lock().unwrap().conflicts.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for k in [1, 2] {
        let ns = lab.runner_ns(k);
        let _ = Command::new("ip")
            .args(["-n", &ns, "link", "del", "sc-check"])
            .status();
    }
    let seen = watch.finish();
    assert_eq!(
        seen.conflicts.into_iter().collect::<Vec<_>>(),
        [format!(
            "{x} on {}/sc-check and {}/sc-check",
            lab.runner_ns(1),
            lab.runner_ns(2)
        )]
    );
}

/// 12 calls through the DUT (UAC → Kamailio → UAS, two addresses each) and the example suite's
/// DNS test (the DUT finds the UAS through the records of its `dns.txt`).
fn scale_suite(root: &Path) -> Vec<String> {
    let mut files: Vec<(String, String)> = Vec::new();
    for i in 0..12 {
        files.push((format!("call-{i:02}/uas_ua0.xml"), CALL_UAS.to_string()));
        files.push((format!("call-{i:02}/uac_ua1.xml"), CALL_UAC.to_string()));
    }
    for f in ["dns.txt", "uac_ua1.xml", "uas_ua0.xml"] {
        let text = std::fs::read_to_string(repo().join("tmp-testsuite/dns-0000").join(f))
            .expect("the example's dns test");
        files.push((format!("dns-0000/{f}"), text));
    }
    write_real_suite(root, &files);
    let mut names: Vec<String> = (0..12).map(|i| format!("call-{i:02}")).collect();
    names.push("dns-0000".into());
    names.sort();
    names
}

/// Runs the 3 shards at once, shard K in runner `runner(K)`'s namespace with host name
/// `runner-K` (a UTS namespace of its own, as a machine), merges their reports; checks every
/// test ran once and passed, on its shard's host, with no address on two links at any time.
fn three_shards_then_merge(lab: &Lab, hint: &str, runner: impl Fn(u32) -> u32) {
    let sb = Sandbox::new();
    let names = scale_suite(&sb.suite());
    let watched: BTreeSet<String> = (1..=3).map(|k| lab.runner_ns(runner(k))).collect();
    let watch = AddressWatch::start(watched.iter().cloned().collect());
    let children: Vec<_> = (1..=3u32)
        .map(|k| {
            let mut cmd = real_cmd(lab, &sb, &sb.suite());
            cmd.args(["--shard", &format!("{k}/3"), "--group", "3", "--json"])
                .arg(sb.path(&format!("shard-{k}.json")))
                .arg("--log-file")
                .arg(sb.path(&format!("shard-{k}.log")));
            let mut as_host = Command::new("unshare");
            as_host
                .args(["--uts", "sh", "-c", "hostname \"$0\" && exec \"$@\""])
                .arg(format!("runner-{k}"))
                .arg(cmd.get_program())
                .args(cmd.get_args());
            lab.wrap_in(runner(k), &as_host)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a shard")
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let out = wait_with_timeout(
                c,
                Duration::from_secs(90),
                &format!("{hint}: shard {}", i + 1),
            );
            Run {
                status: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .collect();
    let seen = watch.finish();
    if !seen.conflicts.is_empty() {
        // What each process's log says of those addresses.
        let mut said = String::new();
        for c in &seen.conflicts {
            let addr = c.split(' ').next().unwrap_or_default();
            for k in 1..=3 {
                let log =
                    std::fs::read_to_string(sb.path(&format!("shard-{k}.log"))).unwrap_or_default();
                for l in log.lines().filter(|l| l.contains(addr)) {
                    said.push_str(&format!("shard {k}: {l}\n"));
                }
            }
        }
        panic!(
            "{hint}: an address on two links at once: {:?}\n{said}",
            seen.conflicts
        );
    }
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.status, 0, "{hint}: shard {}: {}", i + 1, show(r));
    }
    // The watch saw the tests' addresses (13 tests, 2 addresses each, one poll per 20 ms).
    assert!(
        seen.test_addresses.len() >= 10 && seen.polls >= 10,
        "{hint}: the watch saw too little: {seen:?}"
    );

    let mut merge = Command::new(BIN);
    merge
        .arg("merge")
        .arg("--json")
        .arg(sb.path("suite.json"))
        .arg("--junit")
        .arg(sb.path("suite.xml"));
    for k in 1..=3 {
        merge.arg(sb.path(&format!("shard-{k}.json")));
    }
    let r = run(merge);
    assert_eq!(r.status, 0, "{hint}: merge: {}", show(&r));
    let v = read_json(&sb.path("suite.json"));
    let mut ran = run_names(&v);
    ran.sort();
    assert_eq!(ran, names, "{hint}: every test exactly once");
    assert_eq!(v["summary"]["total"], names.len());
    assert_eq!(v["summary"]["success"], names.len());
    for t in v["tests"].as_array().unwrap() {
        assert_eq!(t["result"], "SUCCESS", "{hint}: {t}");
        assert_eq!(t["state"], "CLEAN", "{hint}: {t}");
        let k = t["shard"].as_u64().expect("shard");
        assert_eq!(t["host"], format!("runner-{k}"), "{hint}: {t}");
        if t["name"] == "dns-0000" {
            assert_eq!(k, 1, "{hint}: the DNS test runs in shard 1");
        }
    }
    let xml = std::fs::read_to_string(sb.path("suite.xml")).unwrap();
    assert!(
        xml.contains(&format!(
            "tests=\"{}\" failures=\"0\" errors=\"0\"",
            names.len()
        )),
        "{xml}"
    );
    // Nothing left: no link of ours, no SIPp, no run folder.
    for ns in &watched {
        let left: Vec<(String, String)> = addresses(ns)
            .into_iter()
            .filter(|(l, _)| l.starts_with("sipp-"))
            .collect();
        assert!(left.is_empty(), "{hint}: {ns}: {left:?}");
        let links = Command::new("ip")
            .args(["-n", ns, "-o", "link", "show"])
            .output()
            .unwrap();
        let links = String::from_utf8_lossy(&links.stdout).into_owned();
        assert!(!links.contains("sipp-"), "{hint}: {ns}: {links}");
    }
    assert_eq!(sb.run_folders(), Vec::<std::path::PathBuf>::new(), "{hint}");
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn three_shards_in_three_runner_namespaces_then_merge() {
    let lab = Lab::up_runners("three_shards_in_three_runner_namespaces", 3);
    watch_sees_a_conflict(&lab);
    three_shards_then_merge(&lab, "three runner namespaces", |k| k);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn three_shards_in_one_namespace_then_merge() {
    let lab = Lab::up("three_shards_in_one_namespace");
    three_shards_then_merge(&lab, "one namespace", |_| 1);
}

/// `--retries` for real: `flaky` fails its first try only (its before.sh, counting its tries in
/// a file, turns the first try's OPTIONS into one that waits for a 180), `broken` is NOT READY
/// every try, `good` passes. FLAKY counts as passed; every try is a fresh run named in every
/// report; a suite whose only failure is flaky exits 0.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn retries_name_every_try_and_a_flaky_test_passes() {
    let lab = Lab::up("retries_name_every_try_and_a_flaky_test_passes");
    let sb = Sandbox::new();
    let count = sb.path("flaky.count");
    let before = format!(
        "f='{}'\nn=$(cat \"$f\" 2>/dev/null || echo 0)\necho $((n + 1)) > \"$f\"\n\
         if [ \"$n\" = 0 ]; then sed -i 's/response=\"200\"/response=\"180\"/' uac_ua0.xml; fi\n",
        count.display()
    );
    write_real_suite(
        &sb.suite(),
        &[
            ("broken/before.sh", "echo 'the DUT is not set up'\nexit 1\n"),
            ("broken/uac_ua0.xml", crate::real::OPTIONS_UAC),
            ("flaky/before.sh", before.as_str()),
            ("flaky/uac_ua0.xml", crate::real::OPTIONS_UAC),
            ("good/uac_ua0.xml", crate::real::OPTIONS_UAC),
        ],
    );
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.args(["--retries", "2", "--group", "3", "--json"])
        .arg(sb.path("r.json"))
        .arg("--junit")
        .arg(sb.path("r.xml"))
        .arg("--html")
        .arg(sb.path("r.html"));
    let r = crate::real::run_in(&lab, &cmd);
    assert_eq!(r.status, 1, "broken never passes: {}", show(&r));
    assert_eq!(std::fs::read_to_string(&count).unwrap().trim(), "2");
    let flaky_line = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("FLAKY ") && l.contains("flaky ("))
        .unwrap_or_else(|| panic!("no FLAKY line: {}", show(&r)));
    assert!(
        flaky_line.ends_with("- passed on try 2 of 3 (counts as passed)"),
        "{flaky_line}"
    );
    assert!(
        r.stdout.contains("\nTOTAL: 3\nSUCCESS: 2\nFAILED: 1\n"),
        "{}",
        show(&r)
    );
    assert!(r
        .stdout
        .contains("FLAKY (passed on a retry, counted as passed): 1 of 3 test runs"));
    assert!(r.stdout.contains("[try 3/3]"), "{}", show(&r));

    let v = read_json(&sb.path("r.json"));
    assert_eq!(v["summary"]["flaky"], 1, "{}", v["summary"]);
    assert_eq!(v["summary"]["total"], 3);
    assert_eq!(v["summary"]["success"], 2);
    let mut names = run_names(&v);
    names.sort();
    assert_eq!(names, ["broken", "flaky", "good"], "one entry a run");
    let test = |name: &str| -> serde_json::Value {
        v["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap()
    };
    let flaky = test("flaky");
    assert_eq!(flaky["passed"], true, "{flaky:#}");
    assert_eq!(flaky["flaky"], true, "{flaky:#}");
    assert_eq!(flaky["attempt"], 1, "{flaky:#}");
    let first = &flaky["tries"][0];
    assert_eq!(first["result"], "FAIL", "{flaky:#}");
    assert!(
        first["reason"].as_str().is_some_and(|r| r.contains("180")),
        "SIPp's reason: {flaky:#}"
    );
    // A fresh run: its own run id and folder.
    assert_ne!(first["run_id"], flaky["run_id"]);
    assert_ne!(first["run_folder"], flaky["run_folder"]);
    assert_eq!(
        first["index"], flaky["index"],
        "a retry keeps its run's index"
    );
    // The failed try's evidence stays (--keep failed), the passing try's folder went.
    assert_eq!(first["run_folder_kept"], true, "{flaky:#}");
    assert!(Path::new(first["run_folder"].as_str().unwrap()).is_dir());
    assert!(!Path::new(flaky["run_folder"].as_str().unwrap()).exists());
    let broken = test("broken");
    assert_eq!(broken["attempt"], 2, "{broken:#}");
    let tries: Vec<&str> = broken["tries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["result"].as_str().unwrap())
        .collect();
    assert_eq!(tries, ["NOT READY", "NOT READY"], "{broken:#}");
    assert!(test("good")["tries"].is_null());

    let xml = std::fs::read_to_string(sb.path("r.xml")).unwrap();
    assert!(
        xml.contains("tests=\"3\" failures=\"0\" errors=\"1\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<flakyFailure ").count(), 1, "{xml}");
    assert_eq!(xml.matches("<rerunError ").count(), 2, "{xml}");
    let html = std::fs::read_to_string(sb.path("r.html")).unwrap();
    assert!(html.contains("1 FLAKY</span>"), "the HTML summary");
    // The FLAKY run's failed first try is drawn, read from its pcap in post-run.
    let try_ladder = format!("id=\"ladder-{}-try1\"", flaky["index"]);
    assert!(
        html.contains(&try_ladder),
        "{try_ladder} in the HTML report"
    );

    // A merge keeps the tries and counts the FLAKY run as passed.
    let mut merge = Command::new(BIN);
    merge
        .arg("merge")
        .arg("--junit")
        .arg(sb.path("merged.xml"))
        .arg(sb.path("r.json"));
    let m = run(merge);
    assert_eq!(m.status, 1, "{}", show(&m));
    assert!(
        m.stdout
            .contains("TOTAL: 3, SUCCESS: 2, FAILED: 1 (FLAKY: 1, in SUCCESS)"),
        "{}",
        show(&m)
    );
    let merged = std::fs::read_to_string(sb.path("merged.xml")).unwrap();
    assert_eq!(merged.matches("<flakyFailure ").count(), 1, "{merged}");
    assert_eq!(merged.matches("<rerunError ").count(), 2, "{merged}");

    // --rerun-failed takes FLAKY as passed: only broken again.
    let mut again = Command::new(BIN);
    again
        .args(["--dut", "10.99.0.1", "--dry-run", "--testsuite"])
        .arg(sb.suite())
        .arg("--rerun-failed")
        .arg(sb.path("r.json"))
        .arg("--run-root")
        .arg(sb.run_root())
        .arg("--log-file")
        .arg(sb.path("dry.log"));
    let d = run(again);
    assert_eq!(d.status, 0, "{}", show(&d));
    assert!(
        d.stdout
            .contains("Running again the 1 test that did not pass"),
        "{}",
        show(&d)
    );

    // A suite whose only failure was flaky passes (with --window: a retry takes a free place).
    std::fs::remove_file(&count).unwrap();
    let mut cmd = real_cmd(&lab, &sb, &sb.suite());
    cmd.args(["--retries", "1", "--window", "--pattern-exclude", "broken"]);
    let r = crate::real::run_in(&lab, &cmd);
    assert_eq!(r.status, 0, "{}", show(&r));
    assert!(
        r.stdout.contains("\nTOTAL: 2\nSUCCESS: 2\nFAILED: 0\n"),
        "{}",
        show(&r)
    );
    assert!(r.stdout.contains("passed on try 2 of 2"), "{}", show(&r));
}

/// An address one machine gives up and another takes a moment later: the DUT must answer the
/// new one, not the MAC its ARP cache still holds for the address (the machines announce the
/// addresses they take). `--network-mask 29` leaves 3 free addresses (.4 to .6: the DUT is .1,
/// the runners .2 and .3), so the second runner's call (2 addresses) takes at least one of the
/// first runner's again, seconds later, well within the DUT's ARP cache's time.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn an_address_another_runner_just_gave_up_reaches_the_dut() {
    let lab = Lab::up_runners("an_address_another_runner_just_gave_up", 2);
    let sb = Sandbox::new();
    write_real_suite(
        &sb.suite(),
        &[
            ("call/uas_ua0.xml", CALL_UAS),
            ("call/uac_ua1.xml", CALL_UAC),
        ],
    );
    let mut used = Vec::new();
    for runner in [1, 2] {
        let json = sb.path(&format!("runner-{runner}.json"));
        let mut cmd = real_cmd(&lab, &sb, &sb.suite());
        cmd.args(["--network-mask", "29", "--json"]).arg(&json);
        let child = lab
            .wrap_in(runner, &cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sipplauncher");
        let out = wait_with_timeout(child, Duration::from_secs(60), "sipplauncher");
        let r = Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_eq!(r.status, 0, "runner {runner}: {}", show(&r));
        let v = read_json(&json);
        let mut addrs: Vec<String> = v["tests"][0]["addresses"]
            .as_object()
            .expect("addresses")
            .values()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        addrs.sort();
        used.push(addrs);
    }
    assert!(
        used[0].iter().any(|a| used[1].contains(a)),
        "the second runner took one of the first one's addresses (else this proves nothing): \
         {used:?}"
    );
}
