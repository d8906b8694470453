//! Helpers shared by the integration tests: fixture suites, running the binary, reading its
//! state lines.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

pub const BIN: &str = env!("CARGO_BIN_EXE_sipplauncher");

/// The repository's root (the example suite lives there).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The original tool's example suite, kept beside the repository in `shared/`.
pub fn compat_suite() -> PathBuf {
    let p = repo().join("../shared/compat/original-tmp-testsuite");
    assert!(
        p.is_dir(),
        "{} is missing: the compatibility check needs shared/ beside the repository",
        p.display()
    );
    p
}

/// Writes a suite from (relative path, content) pairs; `.sh` files are made executable.
pub fn write_suite<P: AsRef<str>, C: AsRef<str>>(root: &Path, files: &[(P, C)]) {
    for (rel, content) in files {
        let rel = rel.as_ref();
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content.as_ref()).unwrap();
        if rel.ends_with(".sh") {
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

/// The files of the tests `names`, each test the same `files` (path within the test, content),
/// for [`write_suite`].
pub fn each_test<'a, N: std::fmt::Display>(
    names: impl IntoIterator<Item = N>,
    files: &[(&str, &'a str)],
) -> Vec<(String, &'a str)> {
    names
        .into_iter()
        .flat_map(|n| {
            files
                .iter()
                .map(|(f, c)| (format!("{n}/{f}"), *c))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub const OPTIONS_UAC: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="ping {{ dut.host }}">
  <send><![CDATA[
OPTIONS sip:{{ dut.host }} SIP/2.0
Via: SIP/2.0/[transport] {{ ua0.host }}:[local_port];branch=[branch]
]]></send>
  <recv response="200"/>
</scenario>
"#;

/// A sandbox for one run: a suite folder, a run root, a general log.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn suite(&self) -> PathBuf {
        self.dir.path().join("suite")
    }
    pub fn run_root(&self) -> PathBuf {
        self.dir.path().join("runs")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("general.log")
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    /// A command with the sandbox's suite, run root and log already set, and `--dry-run`.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--dut")
            .arg("127.0.0.1")
            .arg("--testsuite")
            .arg(self.suite())
            .arg("--run-root")
            .arg(self.run_root())
            .arg("--log-file")
            .arg(self.log())
            .arg("--group-pause")
            .arg("0")
            .arg("--dry-run")
            .env_remove("NO_COLOR");
        c
    }
    /// Run folders left under the run root: `<test>/<run_id>` paths.
    pub fn run_folders(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(tests) = fs::read_dir(self.run_root()) {
            for t in tests.flatten() {
                if let Ok(runs) = fs::read_dir(t.path()) {
                    out.extend(runs.flatten().map(|r| r.path()));
                }
            }
        }
        out.sort();
        out
    }
}

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(mut cmd: Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run sipplauncher");
    Run {
        status: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A state line: `       STATE                 name (index-runid)...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLine {
    pub state: String,
    pub test: String,
    pub index: u64,
    pub run_id: String,
    pub rest: String,
}

/// The state lines of test runs (not GLOBAL's: see [`global_lines`]).
pub fn state_lines(stdout: &str) -> Vec<StateLine> {
    all_state_lines(stdout)
        .into_iter()
        .filter(|l| l.test != "GLOBAL")
        .collect()
}

/// The GLOBAL pseudo-test's state lines (`   PREPARING   GLOBAL (0-abcdef)`).
pub fn global_lines(stdout: &str) -> Vec<StateLine> {
    all_state_lines(stdout)
        .into_iter()
        .filter(|l| l.test == "GLOBAL")
        .collect()
}

/// The state lines of the run, before its closing lines (the recap after them has the same
/// shape: see [`recap`]).
fn all_state_lines(stdout: &str) -> Vec<StateLine> {
    parse_state_lines(stdout.lines().take_while(|l| !l.starts_with("TOTAL: ")))
}

/// The failure recap after the closing lines: (its state lines, every line of it).
pub fn recap(stdout: &str) -> (Vec<StateLine>, Vec<String>) {
    let lines: Vec<String> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Total time elapsed "))
        .skip(1)
        .map(str::to_string)
        .collect();
    (parse_state_lines(lines.iter().map(String::as_str)), lines)
}

fn parse_state_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<StateLine> {
    let re = regex::Regex::new(
        r"^\s*(PREPARING|NOT READY|DRY-RUNNING|STARTING|SUCCESS|FAIL|CLEANING|DIRTY)\s+(\S+) \((\d+)-([a-z]{6})\)(.*)$",
    )
    .unwrap();
    lines
        .filter_map(|l| re.captures(l))
        .map(|c| StateLine {
            state: c[1].to_string(),
            test: c[2].to_string(),
            index: c[3].parse().unwrap(),
            run_id: c[4].to_string(),
            rest: c[5].to_string(),
        })
        .collect()
}

/// The printed states of one test run, in order.
pub fn states_of(lines: &[StateLine], index: u64) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.index == index)
        .map(|l| l.state.clone())
        .collect()
}

/// The original's closing lines: 80 `=`, `TOTAL: N`, (`SUCCESS: N`, `FAILED: N` but in a dry
/// run), 80 `=`, `Total time elapsed Ns`; checked line by line, exactly, at the first `TOTAL:`
/// line (our own lines may follow them). Returns (total, success, failed).
pub fn closing_lines(stdout: &str, dry_run: bool) -> (u64, Option<u64>, Option<u64>) {
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("TOTAL: "))
        .unwrap_or_else(|| panic!("no TOTAL line:\n{stdout}"));
    let sep = "=".repeat(80);
    assert_eq!(lines[at - 1], sep, "{stdout}");
    let number = |line: &str, key: &str| -> u64 {
        let re = regex::Regex::new(&format!("^{key}: (0|[1-9][0-9]*)$")).unwrap();
        let c = re
            .captures(line)
            .unwrap_or_else(|| panic!("{line:?} is not the original's {key} line:\n{stdout}"));
        c[1].parse().unwrap()
    };
    let total = number(lines[at], "TOTAL");
    let (success, failed, next) = if dry_run {
        (None, None, at + 1)
    } else {
        (
            Some(number(lines[at + 1], "SUCCESS")),
            Some(number(lines[at + 2], "FAILED")),
            at + 3,
        )
    };
    assert_eq!(lines[next], sep, "{stdout}");
    assert!(
        regex::Regex::new(r"^Total time elapsed (0|[1-9][0-9]*)s$")
            .unwrap()
            .is_match(lines[next + 1]),
        "{:?} is not the original's elapsed line:\n{stdout}",
        lines[next + 1]
    );
    (total, success, failed)
}

/// The value of a summary line such as `TOTAL: 5`.
pub fn summary(stdout: &str, key: &str) -> Option<u64> {
    stdout.lines().find_map(|l| {
        l.trim()
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Runs `cmd` and checks the bad-input contract of SPEC §3: exit status 2, one line on stderr
/// holding every part of `expect`, and no run root made under `sb`.
pub fn expect_usage_error(sb: &Sandbox, cmd: Command, label: &str, expect: &[&str]) {
    let r = run(cmd);
    assert_eq!(r.status, 2, "{label}: {}\n{}", r.stdout, r.stderr);
    let err = r.stderr.trim_end();
    assert_eq!(err.lines().count(), 1, "{label}: one line expected:\n{err}");
    for e in expect {
        assert!(err.contains(e), "{label}: {err:?} should contain {e:?}");
    }
    assert!(!sb.run_root().exists(), "{label} made the run root");
    assert!(!sb.log().exists(), "{label} made the general log");
}

/// sipplauncher started, its stdout read line by line in a thread (and its stderr kept), so that
/// a test can act when a line shows up instead of sleeping.
pub struct Spawned {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// Reads stderr to its end; gives it back.
    stderr: std::thread::JoinHandle<String>,
}

impl Spawned {
    pub fn spawn(cmd: &mut Command) -> Spawned {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sipplauncher");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err_pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut buf = String::new();
            let _ = err_pipe.read_to_string(&mut buf);
            buf
        });
        Spawned {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Reads lines until one contains `what`; panics after `timeout`.
    pub fn wait_for(&mut self, what: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(what);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "no line with {what:?} within {timeout:?}; stdout so far:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits for the exit (at most `timeout`, else kills it and panics); the whole stdout.
    pub fn finish(self, timeout: Duration) -> (i32, String, Duration) {
        let (status, stdout, _, took) = self.finish_all(timeout);
        (status, stdout, took)
    }

    /// As [`Spawned::finish`], with stderr: `(status, stdout, stderr, took)`.
    pub fn finish_all(mut self, timeout: Duration) -> (i32, String, String, Duration) {
        let start = Instant::now();
        let deadline = start + timeout;
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "sipplauncher still running {timeout:?} after the signal; stdout:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = start.elapsed();
        // The reader thread ends at EOF.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let mut stdout = self.seen.join("\n");
        stdout.push('\n');
        let stderr = self.stderr.join().unwrap_or_default();
        (status.code().unwrap_or(-1), stdout, stderr, took)
    }
}
