//! The embedded DNS server with company, in the lab: a second sipplauncher in the same network
//! namespace that needs port 53 while the first serves it makes its DNS tests NOT READY naming
//! the first process, never waiting for it (issue 12.3).

use std::fs;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::lab::Lab;
use crate::real::{
    assert_is_sipplauncher, line_of, real_cmd, run_in, show, sipp_links, states_named, wait_until,
    write_real_suite, REAL_SEQUENCE,
};

/// Two sipplauncher processes in one network namespace (issue 12.3). The first serves its test's
/// records on port 53 while that test's before.sh waits; meanwhile the second's DNS test is NOT
/// READY at once, naming the first process (its pid, from /proc), and its other test passes.
/// Then the first goes on and passes.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn a_second_process_needing_port_53_is_not_ready_naming_the_first() {
    let lab = Lab::up("dns_port_53_two_processes");
    let first = Sandbox::new();
    let serving = first.path("serving");
    let release = first.path("release");
    let before = format!(
        "touch {serving}\nfor i in $(seq 600); do [ -e {release} ] && exit 0; sleep 0.05; done\nexit 1\n",
        serving = serving.display(),
        release = release.display()
    );
    write_real_suite(
        &first.suite(),
        &[
            (
                "held/dns.txt",
                "held-{{ test.run_id }}.example.com.  A  {{ ua0.host }}\n",
            ),
            ("held/before.sh", before.as_str()),
            ("held/uac_ua0.xml", crate::real::OPTIONS_UAC),
        ],
    );
    let one = Spawned::start(&lab, &real_cmd(&lab, &first, &first.suite()));
    let holder = one.pid();
    assert!(
        wait_until(Duration::from_secs(20), || serving.exists()),
        "the first run's before.sh did not start"
    );
    assert_is_sipplauncher(holder);

    let second = Sandbox::new();
    write_real_suite(
        &second.suite(),
        &[
            (
                "a-dns/dns.txt",
                "other-{{ test.run_id }}.example.com.  A  {{ ua0.host }}\n",
            ),
            ("a-dns/uac_ua0.xml", crate::real::OPTIONS_UAC),
            ("b-plain/uac_ua0.xml", crate::real::OPTIONS_UAC),
        ],
    );
    let started = Instant::now();
    let r = run_in(&lab, &real_cmd(&lab, &second, &second.suite()));
    let took = started.elapsed();
    fs::write(&release, "").unwrap();
    assert!(took < Duration::from_secs(20), "{took:?}: {}", show(&r));
    assert_eq!(r.status, 1, "{}", show(&r));
    let lines = state_lines(&r.stdout);
    assert_eq!(states_named(&lines, "a-dns"), ["PREPARING", "NOT READY"]);
    let why = &line_of(&lines, "a-dns", "NOT READY").rest;
    assert!(
        why.contains("port 53 is taken by sipplauncher (pid ")
            && why.contains(&format!("(pid {holder})")),
        "{why}"
    );
    assert_eq!(
        states_named(&lines, "b-plain"),
        REAL_SEQUENCE,
        "{}",
        show(&r)
    );

    let (status, stdout, _) = one.finish(Duration::from_secs(30));
    assert_eq!(status, 0, "{stdout}");
    assert_eq!(
        states_named(&state_lines(&stdout), "held"),
        REAL_SEQUENCE,
        "{stdout}"
    );
    assert!(sipp_links(&lab).is_empty(), "{:?}", sipp_links(&lab));
}
