//! Checks made once at start of a real run, before anything changes on the machine: SIPp is
//! there and runs (and which version, built with TLS or not), and the open-files limit leaves
//! SIPp room (`-max_socket`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use sipplauncher_actors::core::plan::{RunConfig, TestPlan};

/// `sipp` found on PATH and answering `-v`.
#[derive(Debug, Clone)]
pub struct Sipp {
    pub path: PathBuf,
    /// E.g. `v3.6.1-SCTP-PCAP-RTPSTREAM`.
    pub version: String,
}

impl Sipp {
    /// Built with TLS: `TLS` is among the features of its banner
    /// (`v3.7.3-TLS-SCTP-PCAP-RTPSTREAM`).
    pub fn has_tls(&self) -> bool {
        has_feature(&self.version, "TLS")
    }

    /// `major.minor.patch` of the version, when it reads as one.
    pub fn number(&self) -> Option<(u32, u32, u32)> {
        version_number(&self.version)
    }
}

/// Whether a `sipp -v` version names `feature` among its dash-separated parts.
pub fn has_feature(version: &str, feature: &str) -> bool {
    version.split('-').skip(1).any(|f| f == feature)
}

/// `v3.6.1-SCTP-PCAP-RTPSTREAM` → `(3, 6, 1)`; a missing patch number is 0.
pub fn version_number(version: &str) -> Option<(u32, u32, u32)> {
    let v = version.trim_start_matches('v');
    let number = v.split('-').next()?;
    let mut parts = number.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = match parts.next() {
        // A suffix such as "1rc2" keeps its leading digits.
        Some(p) => p
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0),
        None => 0,
    };
    Some((major, minor, patch))
}

/// A TLS run with a SIPp built without TLS: the line that says so and what to install.
pub fn no_tls_message(sipp: &Sipp, transport: &str) -> String {
    format!(
        "--sipp-transport {transport}: {} ({}) was built without TLS: install a SIPp built with \
         OpenSSL first on PATH (`sipp -v` lists TLS among its features; from source: cmake \
         -DUSE_SSL=1; Debian's sip-tester has no TLS)",
        sipp.path.display(),
        sipp.version
    )
}

/// Looks `name` up on `path_var` (a PATH value) like a shell would.
pub fn which(name: &str, path_var: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Finds `sipp` and asks its version; the error is one line.
pub fn find_sipp() -> Result<Sipp, String> {
    let path_var = std::env::var("PATH").unwrap_or_default();
    let path = which("sipp", &path_var).ok_or_else(|| {
        "no sipp executable on PATH: install SIPp (Debian: apt-get install sip-tester), or use --dry-run"
            .to_string()
    })?;
    let mut child = Command::new(&path)
        .arg("-v")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{} does not run: {e}", path.display()))?;
    // `sipp -v` answers at once; a SIPp that hangs is as good as none.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} -v did not answer within 5s", path.display()));
            }
            Err(e) => return Err(format!("{} -v: {e}", path.display())),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{} -v: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = parse_version(&text).ok_or_else(|| {
        format!(
            "{} does not look like SIPp: `sipp -v` printed no version (exit status {})",
            path.display(),
            out.status
        )
    })?;
    Ok(Sipp { path, version })
}

/// The version from `sipp -v`'s banner (` SIPp v3.6.1-SCTP-PCAP-RTPSTREAM.`).
pub fn parse_version(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("SIPp ")?;
        Some(rest.trim_end_matches('.').to_string())
    })
}

/// Raises the soft open-files limit to the hard one (SIPp and a large `--group` need
/// descriptors) and returns `-max_socket`: the limit minus the call limit. Too small a limit is
/// an error naming the numbers.
pub fn max_socket(calls_limit: u64) -> Result<u64, String> {
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("open-files limit: {e}"))?;
    let soft = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    max_socket_for(soft, calls_limit)
}

/// SIPp needs some descriptors beyond its sockets (files, traces); 32 is a floor that a one-call
/// scenario is sure to pass.
pub fn max_socket_for(limit: u64, calls_limit: u64) -> Result<u64, String> {
    const FLOOR: u64 = 32;
    match limit.checked_sub(calls_limit) {
        Some(n) if n >= FLOOR => Ok(n),
        _ => Err(format!(
            "the open-files limit ({limit}) is too small for --sipp-concurrent-calls-limit {calls_limit}: raise it (ulimit -n) to at least {}",
            calls_limit + FLOOR
        )),
    }
}

/// Open files sipplauncher itself needs for `group` tests under way whose largest run group
/// has `most_instances` SIPp processes: a base for its own (logs, netlink, capture, DNS,
/// reports) and, per test, its log, one per SIPp (the handle it is waited by) and one to spare
/// (a SIPp's output file while it starts). Measured: 606 at most at `--group 200` of two-UA
/// tests (BENCHMARKS.md); this says 864.
pub fn files_needed(group: usize, most_instances: usize) -> u64 {
    const BASE: u64 = 64;
    BASE + group as u64 * (2 + most_instances as u64)
}

/// Refuses a `--group` (`at_once` tests under way: fewer when a round has fewer runs) that the
/// open-files limit `limit` cannot carry: one line that says what to raise or lower.
pub fn check_group_files(
    limit: u64,
    group: usize,
    at_once: usize,
    most_instances: usize,
) -> Result<(), String> {
    let needed = files_needed(at_once, most_instances);
    if limit >= needed {
        return Ok(());
    }
    Err(format!(
        "--group {group}: {at_once} tests at once, with up to {most_instances} SIPp each, need \
         about {needed} open files, more than the open-files limit ({limit}): raise it (ulimit \
         -n {needed}) or lower --group"
    ))
}

/// Refuses a run whose `--group` the open-files limit cannot carry, for the tests of `tests`
/// (their largest run group sets the SIPp per test).
pub fn check_open_files(run: &RunConfig, tests: &[TestPlan]) -> Result<(), String> {
    let most_instances = tests
        .iter()
        .flat_map(|t| t.run_groups.iter().map(|g| g.scenarios.len()))
        .max()
        .unwrap_or(1);
    // Tests under way at once: --group, or fewer when a round has fewer runs (a group never
    // spans two rounds; --window with --loop does).
    let per_round = run.total.unwrap_or(tests.len() as u64);
    let at_once = if run.window && run.repeat {
        run.group
    } else {
        run.group
            .min(usize::try_from(per_round).unwrap_or(usize::MAX))
    };
    open_files_limit()
        .and_then(|limit| check_group_files(limit, run.group, at_once, most_instances))
}

/// The open-files limit after [`max_socket`] raised it.
pub fn open_files_limit() -> Result<u64, String> {
    getrlimit(Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .map_err(|e| format!("open-files limit: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_files_against_the_limit() {
        assert_eq!(files_needed(1, 1), 67);
        assert_eq!(files_needed(200, 2), 864);
        assert!(check_group_files(20_000, 200, 200, 2).is_ok());
        assert!(check_group_files(67, 1, 1, 1).is_ok());
        assert!(check_group_files(66, 1, 1, 1).is_err());
        // --group 100 of a 10-test suite: 10 at once.
        assert!(check_group_files(128, 100, 10, 2).is_ok());
        let e = check_group_files(128, 100, 100, 2).unwrap_err();
        assert_eq!(
            e,
            "--group 100: 100 tests at once, with up to 2 SIPp each, need about 464 open files, \
             more than the open-files limit (128): raise it (ulimit -n 464) or lower --group"
        );
    }

    #[test]
    fn version_from_banner() {
        let banner = "\n SIPp v3.6.1-SCTP-PCAP-RTPSTREAM.\n\n This program is free software;";
        assert_eq!(
            parse_version(banner).as_deref(),
            Some("v3.6.1-SCTP-PCAP-RTPSTREAM")
        );
        assert_eq!(parse_version("nothing here"), None);
    }

    #[test]
    fn tls_feature_and_version_number() {
        let debian = Sipp {
            path: "/usr/bin/sipp".into(),
            version: "v3.6.1-SCTP-PCAP-RTPSTREAM".into(),
        };
        assert!(!debian.has_tls());
        assert_eq!(debian.number(), Some((3, 6, 1)));
        let m = no_tls_message(&debian, "l1");
        assert_eq!(m.lines().count(), 1);
        assert!(
            m.starts_with("--sipp-transport l1: /usr/bin/sipp (v3.6.1-SCTP-PCAP-RTPSTREAM) was built without TLS: install a SIPp built with OpenSSL"),
            "{m}"
        );
        for (v, tls, n) in [
            ("v3.7.3-TLS-SCTP-PCAP-RTPSTREAM", true, Some((3, 7, 3))),
            ("v3.7.5-TLS-PCAP", true, Some((3, 7, 5))),
            ("v3.6.0-TLS", true, Some((3, 6, 0))),
            ("v3.4-TLS-PCAP", true, Some((3, 4, 0))),
            ("v3.7.0rc1-TLS-PCAP", true, Some((3, 7, 0))),
            ("vTLS", false, None),
            ("v3.6.1-PCAP-RTPSTREAM-NOTLS", false, Some((3, 6, 1))),
        ] {
            assert_eq!(has_feature(v, "TLS"), tls, "{v}");
            assert_eq!(version_number(v), n, "{v}");
        }
    }

    #[test]
    fn which_finds_executables_only() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("sipp");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        let path = dir.path().display().to_string();
        assert_eq!(which("sipp", &path), None, "not executable yet");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(which("sipp", &format!("/nonexistent:{path}")), Some(exe));
    }

    #[test]
    fn max_socket_is_limit_minus_calls_with_a_floor() {
        assert_eq!(max_socket_for(1024, 1), Ok(1023));
        let e = max_socket_for(40, 20).unwrap_err();
        assert!(
            e.contains("(40)") && e.contains("20") && e.contains("52"),
            "{e}"
        );
        assert!(max_socket_for(10, 100).is_err());
    }
}
