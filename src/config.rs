//! The validated configuration: [`validate`] turns the parsed command line into a [`Config`], or
//! into one [`UsageError`] line naming the option and the problem, before anything is changed on
//! the machine (it only reads paths, and draws a fresh `--random` seed when none is given).

use std::fmt;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde_json::Value;
use sipplauncher_actors::core::plan::{HandTo, Keep, RunConfig};
use sipplauncher_actors::sys::logging::{self, Rotation};
use sipplauncher_actors::sys::rundir;

use crate::cli::{Cli, DEFAULT_LOG_FILE};
use crate::rerun::Rerun;
use crate::shard::{Shard, ShardError};
use crate::suite::CollectOptions;
use crate::tls::KeyType;

/// `--group-pause` when not given (the original's), but in a dry run.
pub const DEFAULT_GROUP_PAUSE: Duration = Duration::from_millis(800);

/// The user who ran sudo, when this runs as root through sudo (`SUDO_UID` and `SUDO_GID`, not
/// root's own): kept evidence and report files are handed to them. Anything else (not root,
/// unset or unreadable variables) hands nothing: modes stay as they are.
pub fn sudo_user(
    euid_is_root: bool,
    uid: Option<std::ffi::OsString>,
    gid: Option<std::ffi::OsString>,
) -> Option<HandTo> {
    let number = |v: Option<std::ffi::OsString>| v?.to_str()?.trim().parse::<u32>().ok();
    let (uid, gid) = (number(uid)?, number(gid)?);
    (euid_is_root && uid != 0).then_some(HandTo { uid, gid })
}

/// SIPp's `-t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP, one socket.
    U1,
    /// UDP, one socket per call.
    Un,
    /// UDP, one socket per IP address.
    Ui,
    /// TCP, one socket.
    T1,
    /// TCP, one socket per call.
    Tn,
    /// TLS, one socket.
    L1,
    /// TLS, one socket per call.
    Ln,
}

impl Transport {
    pub const ALL: [Transport; 7] = [
        Transport::U1,
        Transport::Un,
        Transport::Ui,
        Transport::T1,
        Transport::Tn,
        Transport::L1,
        Transport::Ln,
    ];

    /// As SIPp spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::U1 => "u1",
            Transport::Un => "un",
            Transport::Ui => "ui",
            Transport::T1 => "t1",
            Transport::Tn => "tn",
            Transport::L1 => "l1",
            Transport::Ln => "ln",
        }
    }

    pub fn is_tls(self) -> bool {
        matches!(self, Transport::L1 | Transport::Ln)
    }

    /// Exactly as SIPp spells it (lowercase).
    pub fn parse(s: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `--sipp-*` options (and `--default_behaviors`), for building SIPp's command line.
#[derive(Debug, Clone, PartialEq)]
pub struct SippOptions {
    /// `-t`.
    pub transport: Transport,
    /// `-inf` given with `--sipp-info-file`; `None` = `<suite>/users.csv` if present, found at
    /// collection.
    pub info_file: Option<PathBuf>,
    /// `-r`, > 0.
    pub call_rate: f64,
    /// `-m`, >= 1.
    pub max_calls: u64,
    /// `-recv_timeout`; 0 is passed on as is (SIPp: no timeout).
    pub recv_timeout_ms: u64,
    /// `-tls_version`: "1.0", "1.1" or "1.2"; only with a TLS transport.
    pub tls_version: Option<String>,
    /// `-l`, >= 1.
    pub concurrent_calls_limit: u64,
    /// `-default_behaviors`, passed on as is.
    pub default_behaviors: Option<String>,
}

/// Everything the front end needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the runtime needs.
    pub run: RunConfig,
    /// An existing folder.
    pub testsuite: PathBuf,
    /// `--template-folder` when given (an existing folder); the default is found at collection.
    pub template_folder: Option<PathBuf>,
    /// `--global-test-folder` when given (an existing folder); the default is found at collection.
    pub global_folder: Option<PathBuf>,
    /// `--pattern-only`, compiled anchored at the start (`^(?:RE)`): `is_match` is Python's
    /// `re.match`.
    pub only: Vec<Regex>,
    /// `--pattern-exclude`, anchored like `only`.
    pub exclude: Vec<Regex>,
    /// `--keyword-replacement-values`; empty when not given.
    pub keywords: serde_json::Map<String, Value>,
    /// Its folder exists.
    pub junit: Option<PathBuf>,
    /// Its folder exists.
    pub json: Option<PathBuf>,
    /// Its folder exists.
    pub html: Option<PathBuf>,
    /// The general log: `--log-file` (its folder exists) or the default.
    pub log_file: PathBuf,
    /// `--log-file` was given: failing to open it is an error, while the default may be skipped.
    pub log_file_explicit: bool,
    /// `--log-max-size` and `--log-keep`.
    pub log_rotation: Rotation,
    pub no_pcap: bool,
    /// `(cert, key)` of the CA given with `--tls-ca-root-cert`/`--tls-ca-root-key`; both files
    /// exist.
    pub tls_ca: Option<(PathBuf, PathBuf)>,
    /// `--tls-key-type`: the keys made for the UAs and the ephemeral CA.
    pub tls_key_type: KeyType,
    /// The seed in use when `--random` (also in `run.random_seed`), to print for replay.
    pub seed: Option<u64>,
    /// `--shard K/N`: run only that part of the collected tests.
    pub shard: Option<Shard>,
    /// `--rerun-failed`: the report, and the tests that did not pass in it.
    pub rerun: Option<(PathBuf, Rerun)>,
    pub sipp: SippOptions,
}

impl Config {
    /// What to collect: the suite's folders and the name filters of the command line.
    pub fn collect_options(&self) -> CollectOptions {
        CollectOptions {
            testsuite: self.testsuite.clone(),
            template_folder: self.template_folder.clone(),
            global_folder: self.global_folder.clone(),
            only: self.only.clone(),
            exclude: self.exclude.clone(),
        }
    }
}

/// A bad command line: one line naming the option and the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UsageError {
    #[error("--dut: missing; give the DUT's IPv4 address, e.g. --dut 10.22.22.24")]
    MissingDut,
    #[error("--dut: {} is not an IPv4 address", Quoted(.0))]
    NotIpv4(String),
    #[error("--dut: {0} cannot be a DUT's address")]
    UnusableDut(Ipv4Addr),
    #[error("{option}: {} is not a whole number", Quoted(value))]
    NotAWholeNumber { option: &'static str, value: String },
    #[error("{option}: {value} is outside {min}..{max}")]
    OutOfRange {
        option: &'static str,
        value: i128,
        min: i128,
        max: i128,
    },
    #[error("{option}: must be at least {min}")]
    TooSmall { option: &'static str, min: u64 },
    /// `what` says which numbers are accepted, e.g. "a number of seconds > 0".
    #[error("{option}: must be {what}")]
    BadNumber {
        option: &'static str,
        what: &'static str,
    },
    #[error("{option}: {} is not one of {allowed}", Quoted(value))]
    NotOneOf {
        option: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error("{option}: {} does not exist", path.display())]
    NotFound { option: &'static str, path: PathBuf },
    #[error("{option}: {} is not a folder", path.display())]
    NotAFolder { option: &'static str, path: PathBuf },
    #[error("{option}: {} is not a file", path.display())]
    NotAFile { option: &'static str, path: PathBuf },
    #[error("{option}: {} cannot be read: {reason}", path.display())]
    Unreadable {
        option: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{option}: folder {} of {} does not exist", folder.display(), path.display())]
    NoParentFolder {
        option: &'static str,
        folder: PathBuf,
        path: PathBuf,
    },
    #[error("--dut: {dut} is the {what} address of {network}/{mask}: no device can have it")]
    DutNotAHost {
        dut: Ipv4Addr,
        network: Ipv4Addr,
        mask: u8,
        what: &'static str,
    },
    #[error(
        "--default_behaviors: {} is not a behavior SIPp knows (a list of all, none, bye, \
         abortunexp, pingreply, cseq, each maybe after - or +)",
        Quoted(.0)
    )]
    BadBehavior(String),
    #[error("--run-root: {0}")]
    RunRoot(String),
    /// The general log: `--log-file`, or the default one.
    #[error("--log-file: {why}{}", if *explicit { "" } else { " (the default; give another with --log-file)" })]
    UnsafeLog { why: String, explicit: bool },
    #[error("{option}: {} is the same file as {other}", path.display())]
    SameFile {
        option: &'static str,
        other: &'static str,
        path: PathBuf,
    },
    #[error(
        "{option}: {} is not a valid regular expression: {reason}",
        Quoted(pattern)
    )]
    BadRegex {
        option: &'static str,
        pattern: String,
        reason: String,
    },
    #[error("--keyword-replacement-values: invalid JSON: {0}")]
    BadJson(String),
    #[error("--keyword-replacement-values: must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("{given} given without {missing}")]
    GivenWithout {
        given: &'static str,
        missing: &'static str,
    },
    #[error(
        "--sipp-transport {0} is not a TLS transport but --tls-ca-root-cert/--tls-ca-root-key \
         were given"
    )]
    CaWithoutTls(Transport),
    #[error("--sipp-tls-version needs a TLS transport (l1 or ln)")]
    TlsVersionWithoutTls,
    #[error("--shard: {0}")]
    BadShard(#[from] ShardError),
    #[error("--rerun-failed: {0}")]
    BadRerun(String),
    #[error("--leave-temp keeps every run folder, but --keep {0} was given: give one of them")]
    LeaveTempWithKeep(&'static str),
    #[error("--tls-key-type needs a TLS transport (l1 or ln)")]
    KeyTypeWithoutTls,
}

/// A value as the user typed it, in double quotes; only control characters are escaped (a
/// regular expression's backslashes stay as typed), so that the message stays on one line.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        f.write_str("\"")
    }
}

/// Checks the command line; reads the file system but changes nothing.
///
/// The checks follow the order of the options in SPEC §3, so the first problem is the one told.
pub fn validate(cli: Cli) -> Result<Config, UsageError> {
    let dut = parse_dut(cli.dut.as_deref())?;
    let testsuite = existing_folder("--testsuite", cli.suite.testsuite)?;
    let template_folder = cli
        .suite
        .template_folder
        .map(|p| existing_folder("--template-folder", p))
        .transpose()?;
    let global_folder = cli
        .suite
        .global_test_folder
        .map(|p| existing_folder("--global-test-folder", p))
        .transpose()?;
    let only = compile_patterns("--pattern-only", &cli.suite.pattern_only)?;
    let exclude = compile_patterns("--pattern-exclude", &cli.suite.pattern_exclude)?;

    let network_mask = parse_mask(&cli.network_mask)?;
    check_dut_is_a_host(dut, network_mask)?;
    let group = parse_count("--group", &cli.group, 1)?;
    let group = usize::try_from(group).map_err(|_| UsageError::OutOfRange {
        option: "--group",
        value: i128::from(group),
        min: 1,
        max: usize::MAX as i128,
    })?;
    // A dry run goes through the motions at once, unless asked to pause.
    let group_pause = match &cli.group_pause {
        Some(raw) => parse_seconds("--group-pause", raw, true)?,
        None if cli.dry_run => Duration::ZERO,
        None => DEFAULT_GROUP_PAUSE,
    };
    let total = cli
        .total
        .as_deref()
        .map(|t| parse_count("--total", t, 1))
        .transpose()?;
    let keep = cli
        .keep
        .as_deref()
        .map(|k| {
            Keep::parse(k).ok_or(UsageError::NotOneOf {
                option: "--keep",
                value: k.to_string(),
                allowed: "none, failed, all",
            })
        })
        .transpose()?;
    // `--leave-temp` is `--keep all`, as in the original.
    let keep = match (cli.leave_temp, keep) {
        (false, k) => k.unwrap_or(Keep::Failed),
        (true, None | Some(Keep::All)) => Keep::All,
        (true, Some(k)) => return Err(UsageError::LeaveTempWithKeep(k.as_str())),
    };
    let keep_max = parse_whole("--keep-max", &cli.keep_max)?;
    let keywords = parse_keywords(cli.keyword_replacement_values.as_deref())?;

    let tls_ca = match (cli.tls_ca_root_cert, cli.tls_ca_root_key) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(UsageError::GivenWithout {
                given: "--tls-ca-root-cert",
                missing: "--tls-ca-root-key",
            })
        }
        (None, Some(_)) => {
            return Err(UsageError::GivenWithout {
                given: "--tls-ca-root-key",
                missing: "--tls-ca-root-cert",
            })
        }
        (Some(cert), Some(key)) => Some((
            existing_file("--tls-ca-root-cert", cert)?,
            existing_file("--tls-ca-root-key", key)?,
        )),
    };
    let tls_version = cli
        .sipp_tls_version
        .map(|v| match v.as_str() {
            "1.0" | "1.1" | "1.2" => Ok(v),
            _ => Err(UsageError::NotOneOf {
                option: "--sipp-tls-version",
                value: v,
                allowed: "1.0, 1.1, 1.2",
            }),
        })
        .transpose()?;
    let tls_key_type = cli
        .tls_key_type
        .as_deref()
        .map(|t| {
            KeyType::parse(t).ok_or_else(|| UsageError::NotOneOf {
                option: "--tls-key-type",
                value: t.to_string(),
                allowed: KeyType::ALLOWED,
            })
        })
        .transpose()?;
    let transport = match cli.sipp_transport {
        Some(t) => Transport::parse(&t).ok_or(UsageError::NotOneOf {
            option: "--sipp-transport",
            value: t,
            allowed: "u1, un, ui, t1, tn, l1, ln",
        })?,
        // Giving a CA is using TLS; `--sipp-tls-version` alone is not (SPEC §3 refuses it
        // without a TLS transport).
        None if tls_ca.is_some() => Transport::L1,
        None => Transport::U1,
    };
    if tls_ca.is_some() && !transport.is_tls() {
        return Err(UsageError::CaWithoutTls(transport));
    }
    if tls_version.is_some() && !transport.is_tls() {
        return Err(UsageError::TlsVersionWithoutTls);
    }
    if tls_key_type.is_some() && !transport.is_tls() {
        return Err(UsageError::KeyTypeWithoutTls);
    }
    let info_file = cli
        .sipp_info_file
        .map(|p| existing_file("--sipp-info-file", p))
        .transpose()?;
    let call_rate = parse_positive("--sipp-call-rate", &cli.sipp_call_rate)?;
    let max_calls = parse_count("--sipp-max-calls", &cli.sipp_max_calls, 1)?;
    let recv_timeout_ms = parse_count("--sipp-recv-timeout", &cli.sipp_recv_timeout, 0)?;
    let concurrent_calls_limit = parse_count(
        "--sipp-concurrent-calls-limit",
        &cli.sipp_concurrent_calls_limit,
        1,
    )?;

    let seed = match (cli.seed, cli.random) {
        (Some(_), false) => {
            return Err(UsageError::GivenWithout {
                given: "--seed",
                missing: "--random",
            })
        }
        (Some(s), true) => Some(parse_whole("--seed", &s)?),
        (None, true) => Some(rand::random::<u64>()),
        (None, false) => None,
    };
    let script_timeout = parse_seconds("--script-timeout", &cli.script_timeout, false)?;
    let test_timeout = parse_seconds("--test-timeout", &cli.test_timeout, false)?;
    let shard = cli.shard.as_deref().map(Shard::parse).transpose()?;
    let rerun = cli
        .rerun_failed
        .map(|p| {
            Rerun::read(&p)
                .map(|r| (p, r))
                .map_err(UsageError::BadRerun)
        })
        .transpose()?;
    let junit = cli
        .junit
        .map(|p| writable_file_path("--junit", p))
        .transpose()?;
    let json = cli
        .json
        .map(|p| writable_file_path("--json", p))
        .transpose()?;
    let html = cli
        .html
        .map(|p| writable_file_path("--html", p))
        .transpose()?;
    let log_keep = parse_count("--log-keep", &cli.log_keep, 0)?;
    let log_rotation = Rotation {
        // At least a byte: a smaller size would rotate before every line all the same.
        max_bytes: ((parse_positive("--log-max-size", &cli.log_max_size)? * (1u64 << 20) as f64)
            as u64)
            .max(1),
        keep: u32::try_from(log_keep).map_err(|_| UsageError::OutOfRange {
            option: "--log-keep",
            value: i128::from(log_keep),
            min: 0,
            max: i128::from(u32::MAX),
        })?,
    };
    let log_file_explicit = cli.log_file.is_some();
    let log_file = match cli.log_file {
        Some(path) => writable_file_path("--log-file", path)?,
        None => PathBuf::from(DEFAULT_LOG_FILE),
    };
    // Something planted at the log's name is refused; a log that is only not ours to open is
    // told when it is opened (the default one is then skipped).
    if let Err(e) = logging::check_log_file(&log_file) {
        if log_file_explicit || !e.is_open_failure() {
            return Err(UsageError::UnsafeLog {
                why: e.to_string(),
                explicit: log_file_explicit,
            });
        }
    }
    // Two of them in one file would overwrite each other, however the path is spelt.
    check_distinct_outputs(&[
        ("--junit", junit.as_deref()),
        ("--json", json.as_deref()),
        ("--html", html.as_deref()),
        ("--log-file", Some(log_file.as_path())),
    ])?;
    check_run_root(&cli.run_root)?;
    if let Some(b) = &cli.default_behaviors {
        check_behaviors(b)?;
    }

    Ok(Config {
        run: RunConfig {
            dut,
            network_mask,
            group,
            group_pause,
            group_stop_first_fail: cli.group_stop_first_fail,
            retries: cli.retries,
            window: cli.window,
            total,
            random_seed: seed,
            repeat: cli.repeat,
            dry_run: cli.dry_run,
            fail_expected: cli.fail_expected,
            keep,
            keep_max,
            hand_to: sudo_user(
                nix::unistd::geteuid().is_root(),
                std::env::var_os("SUDO_UID"),
                std::env::var_os("SUDO_GID"),
            ),
            run_root: cli.run_root,
            script_timeout,
            test_timeout,
            pcap: !cli.no_pcap && !cli.dry_run,
        },
        testsuite,
        template_folder,
        global_folder,
        only,
        exclude,
        keywords,
        junit,
        json,
        html,
        log_file,
        log_file_explicit,
        log_rotation,
        no_pcap: cli.no_pcap,
        tls_ca,
        tls_key_type: tls_key_type.unwrap_or_default(),
        seed,
        shard,
        rerun,
        sipp: SippOptions {
            transport,
            info_file,
            call_rate,
            max_calls,
            recv_timeout_ms,
            tls_version,
            concurrent_calls_limit,
            default_behaviors: cli.default_behaviors,
        },
    })
}

fn parse_dut(raw: Option<&str>) -> Result<Ipv4Addr, UsageError> {
    let raw = raw.ok_or(UsageError::MissingDut)?;
    let dut: Ipv4Addr = raw
        .trim()
        .parse()
        .map_err(|_| UsageError::NotIpv4(raw.to_string()))?;
    // No SIP device answers there, and no test network can be built around it.
    if dut.is_unspecified() || dut.is_broadcast() || dut.is_multicast() {
        return Err(UsageError::UnusableDut(dut));
    }
    Ok(dut)
}

/// The DUT is a host of its network: not the network's own address, nor its broadcast one
/// (every test would fail, each in its own words).
fn check_dut_is_a_host(dut: Ipv4Addr, mask: u8) -> Result<(), UsageError> {
    let bits = sipplauncher_actors::net::pool::prefix_mask(mask);
    let addr = u32::from(dut);
    let what = if addr == addr & bits {
        "network"
    } else if addr == addr | !bits {
        "broadcast"
    } else {
        return Ok(());
    };
    Err(UsageError::DutNotAHost {
        dut,
        network: Ipv4Addr::from(addr & bits),
        mask,
        what,
    })
}

/// `-default_behaviors` as SIPp reads it: comma-separated, each `none`, or one of its behaviors
/// with an optional `-` (off) or `+` (on) in front; an unknown one would make every SIPp exit.
fn check_behaviors(raw: &str) -> Result<(), UsageError> {
    let known = ["all", "bye", "abortunexp", "pingreply", "cseq"];
    let mut tokens = raw.split(',').filter(|t| !t.is_empty()).peekable();
    if tokens.peek().is_none() {
        return Err(UsageError::BadBehavior(raw.to_string()));
    }
    for token in tokens {
        let name = token
            .strip_prefix('-')
            .or_else(|| token.strip_prefix('+'))
            .unwrap_or(token);
        if token != "none" && !known.contains(&name) {
            return Err(UsageError::BadBehavior(token.to_string()));
        }
    }
    Ok(())
}

/// The run root can hold run folders (checked as they will be made, without making anything).
fn check_run_root(root: &Path) -> Result<(), UsageError> {
    let absolute = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    if absolute.file_name().is_none() {
        return Err(UsageError::RunRoot(format!(
            "{} cannot be the run root: give a folder of its own, e.g. {}",
            root.display(),
            crate::cli::DEFAULT_RUN_ROOT
        )));
    }
    rundir::check_run_root(root).map_err(|e| {
        UsageError::RunRoot(match e {
            rundir::RunDirError::Unsafe { why, .. } => why,
            rundir::RunDirError::Create { step, source, .. } => format!("{step}: {source}"),
            other => other.to_string(),
        })
    })
}

/// How a file is told apart from others: its device and inode once it exists, else its
/// absolute path with the folder resolved (two spellings of one new file meet there).
#[derive(Debug, PartialEq, Eq)]
enum FileKey {
    Inode(u64, u64),
    Path(PathBuf),
}

fn file_key(path: &Path) -> FileKey {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = fs::metadata(path) {
        return FileKey::Inode(m.dev(), m.ino());
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let folder = absolute
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .unwrap_or_else(|| absolute.parent().unwrap_or(Path::new("/")).to_path_buf());
    FileKey::Path(folder.join(absolute.file_name().unwrap_or_default()))
}

/// No two of the files the run writes (reports, the general log) are one file.
fn check_distinct_outputs(outputs: &[(&'static str, Option<&Path>)]) -> Result<(), UsageError> {
    let keyed: Vec<(&'static str, &Path, FileKey)> = outputs
        .iter()
        .filter_map(|(o, p)| p.map(|p| (*o, p, file_key(p))))
        .collect();
    for (i, (option, path, key)) in keyed.iter().enumerate() {
        if let Some((other, _, _)) = keyed[..i].iter().find(|(_, _, k)| k == key) {
            return Err(UsageError::SameFile {
                option,
                other,
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

fn parse_mask(raw: &str) -> Result<u8, UsageError> {
    const OPTION: &str = "--network-mask";
    let mask: i128 = raw
        .trim()
        .parse()
        .map_err(|_| UsageError::NotAWholeNumber {
            option: OPTION,
            value: raw.to_string(),
        })?;
    let out_of_range = UsageError::OutOfRange {
        option: OPTION,
        value: mask,
        min: 1,
        max: 30,
    };
    if !(1..=30).contains(&mask) {
        return Err(out_of_range);
    }
    u8::try_from(mask).map_err(|_| out_of_range)
}

fn parse_whole(option: &'static str, raw: &str) -> Result<u64, UsageError> {
    let t = raw.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    // A negative whole number is a number, just too small: say so rather than "not a number".
    if t.parse::<i128>().is_ok_and(|n| n < 0) {
        return Err(UsageError::TooSmall { option, min: 0 });
    }
    Err(UsageError::NotAWholeNumber {
        option,
        value: raw.to_string(),
    })
}

/// A whole number >= `min`.
fn parse_count(option: &'static str, raw: &str, min: u64) -> Result<u64, UsageError> {
    match parse_whole(option, raw) {
        Ok(n) if n >= min => Ok(n),
        Ok(_) | Err(UsageError::TooSmall { .. }) => Err(UsageError::TooSmall { option, min }),
        Err(e) => Err(e),
    }
}

/// A duration in seconds, fractions allowed; `zero_ok` for ">= 0", else "> 0".
fn parse_seconds(option: &'static str, raw: &str, zero_ok: bool) -> Result<Duration, UsageError> {
    let what = if zero_ok {
        "a number of seconds >= 0"
    } else {
        "a number of seconds > 0"
    };
    let bad = UsageError::BadNumber { option, what };
    let secs: f64 = raw.trim().parse().map_err(|_| bad.clone())?;
    if !secs.is_finite() || secs < 0.0 || (!zero_ok && secs == 0.0) {
        return Err(bad);
    }
    let d = Duration::try_from_secs_f64(secs).map_err(|_| bad.clone())?;
    if !zero_ok && d.is_zero() {
        // Smaller than a nanosecond: zero for any timer.
        return Err(bad);
    }
    Ok(d)
}

fn parse_positive(option: &'static str, raw: &str) -> Result<f64, UsageError> {
    match raw.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(UsageError::BadNumber {
            option,
            what: "a number > 0",
        }),
    }
}

pub(crate) fn compile_patterns(
    option: &'static str,
    patterns: &[String],
) -> Result<Vec<Regex>, UsageError> {
    patterns
        .iter()
        .map(|p| compile_anchored(p).map_err(|e| regex_error(option, p, &e)))
        .collect()
}

/// Compiles `pattern` so that it matches only at the start of the text, like Python's
/// `re.match` (an end anchor is the pattern's own business, as there).
fn compile_anchored(pattern: &str) -> Result<Regex, regex::Error> {
    // Compiled alone first, so that an error points into the user's own text.
    Regex::new(pattern)?;
    Regex::new(&format!("^(?:{pattern})"))
        // A verbose-mode `(?x)` pattern ending in a `#` comment would comment out the closing
        // parenthesis; a newline ends the comment, and is ignored elsewhere in verbose mode
        // (the only mode in which the plain wrapping can fail after the pattern compiled).
        .or_else(|_| Regex::new(&format!("^(?:{pattern}\n)")))
}

fn regex_error(option: &'static str, pattern: &str, e: &regex::Error) -> UsageError {
    let text = e.to_string();
    // The syntax error is several lines (the pattern, a caret, "error: ..."): keep the last.
    let reason = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        });
    // "Compiled regex exceeds size limit of 10485760 bytes." reads as a fragment like the rest.
    let reason = reason.trim_end_matches('.');
    let mut chars = reason.chars();
    let reason: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown error".to_string(),
    };
    UsageError::BadRegex {
        option,
        pattern: pattern.to_string(),
        reason,
    }
}

fn parse_keywords(raw: Option<&str>) -> Result<serde_json::Map<String, Value>, UsageError> {
    let Some(raw) = raw else {
        return Ok(serde_json::Map::new());
    };
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(UsageError::NotAnObject(match other {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        })),
        Err(e) => Err(UsageError::BadJson(e.to_string())),
    }
}

fn metadata(option: &'static str, path: &Path) -> Result<fs::Metadata, UsageError> {
    fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => UsageError::NotFound {
            option,
            path: path.to_path_buf(),
        },
        _ => UsageError::Unreadable {
            option,
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })
}

pub(crate) fn existing_folder(option: &'static str, path: PathBuf) -> Result<PathBuf, UsageError> {
    if metadata(option, &path)?.is_dir() {
        Ok(path)
    } else {
        Err(UsageError::NotAFolder { option, path })
    }
}

fn existing_file(option: &'static str, path: PathBuf) -> Result<PathBuf, UsageError> {
    if metadata(option, &path)?.is_dir() {
        Err(UsageError::NotAFile { option, path })
    } else {
        Ok(path)
    }
}

/// A file to be written: its folder exists, and it is not itself a folder.
/// `path` as a file to write: not a folder, in a folder that exists.
pub(crate) fn writable_file_path(
    option: &'static str,
    path: PathBuf,
) -> Result<PathBuf, UsageError> {
    if path.is_dir() {
        return Err(UsageError::NotAFile { option, path });
    }
    match path.parent() {
        // `report.xml`: the current folder.
        Some(p) if p.as_os_str().is_empty() => Ok(path),
        Some(p) if !p.is_dir() => Err(UsageError::NoParentFolder {
            option,
            folder: p.to_path_buf(),
            path,
        }),
        // `/` alone has no parent and is a folder, refused above.
        _ => Ok(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            fs::create_dir(dir.path().join("suite")).expect("suite");
            fs::create_dir(dir.path().join("tpl")).expect("tpl");
            fs::write(dir.path().join("ca.pem"), "cert").expect("cert");
            fs::write(dir.path().join("ca.key"), "key").expect("key");
            fs::write(dir.path().join("users.csv"), "SEQUENTIAL\n").expect("csv");
            Fixture { dir }
        }

        fn p(&self, name: &str) -> String {
            self.dir.path().join(name).display().to_string()
        }

        /// Parses `--dut 10.0.0.1 --testsuite <suite> --log-file <tmp>/l.log` plus `args`.
        fn cli(&self, args: &[&str]) -> Cli {
            let suite = self.p("suite");
            let log = self.p("l.log");
            let mut argv = vec![
                "sipplauncher",
                "--dut",
                "10.0.0.1",
                "--testsuite",
                &suite,
                "--log-file",
                &log,
            ];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).expect("clap accepts it")
        }

        fn ok(&self, args: &[&str]) -> Config {
            validate(self.cli(args)).expect("valid")
        }

        fn err(&self, args: &[&str]) -> String {
            let e = validate(self.cli(args)).expect_err("invalid");
            let line = e.to_string();
            assert!(!line.contains('\n'), "not one line: {line}");
            line
        }
    }

    #[test]
    fn defaults() {
        let f = Fixture::new();
        let c = f.ok(&[]);
        assert_eq!(c.run.dut, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(c.run.network_mask, 24);
        assert_eq!(c.run.group, 1);
        assert_eq!(c.run.group_pause, Duration::from_millis(800));
        assert!(!c.run.group_stop_first_fail);
        assert!(!c.run.window);
        assert_eq!(c.run.total, None);
        assert_eq!(c.run.random_seed, None);
        assert!(!c.run.repeat && !c.run.dry_run && !c.run.fail_expected);
        assert_eq!((c.run.keep, c.run.keep_max), (Keep::Failed, 100));
        assert_eq!(c.run.run_root, PathBuf::from("/var/tmp/sipplauncher"));
        assert_eq!(c.run.script_timeout, Duration::from_secs(60));
        assert_eq!(c.run.test_timeout, Duration::from_secs(180));
        assert_eq!(c.testsuite, PathBuf::from(f.p("suite")));
        assert_eq!(c.template_folder, None);
        assert_eq!(c.global_folder, None);
        assert!(c.only.is_empty() && c.exclude.is_empty() && c.keywords.is_empty());
        assert_eq!(
            (c.junit, c.json, c.tls_ca, c.seed),
            (None, None, None, None)
        );
        assert!(!c.no_pcap);
        assert!(c.log_file_explicit, "the fixture gives --log-file");
        assert_eq!(
            c.sipp,
            SippOptions {
                transport: Transport::U1,
                info_file: None,
                call_rate: 1.0,
                max_calls: 1,
                recv_timeout_ms: 5000,
                tls_version: None,
                concurrent_calls_limit: 1,
                default_behaviors: None,
            }
        );
    }

    #[test]
    fn everything_given() {
        let f = Fixture::new();
        let (tpl, cert, key, csv) = (f.p("tpl"), f.p("ca.pem"), f.p("ca.key"), f.p("users.csv"));
        let (junit, json) = (f.p("r.xml"), f.p("r.json"));
        let c = f.ok(&[
            "--template-folder",
            &tpl,
            "--global-test-folder",
            &tpl,
            "--pattern-only",
            "normal-",
            "--pattern-exclude",
            "normal-00(0|1)",
            "--network-mask",
            "30",
            "--group",
            "8",
            "--group-pause",
            "0",
            "--group-stop-first-fail",
            "--window",
            "--total",
            "100",
            "--random",
            "--seed",
            "42",
            "--loop",
            "--dry-run",
            "--fail-expected",
            "--leave-temp",
            "--keyword-replacement-values",
            r#"{"domain": "example.com", "port": 5060}"#,
            "--no-pcap",
            "--tls-ca-root-cert",
            &cert,
            "--tls-ca-root-key",
            &key,
            "--sipp-info-file",
            &csv,
            "--sipp-call-rate",
            "0.5",
            "--sipp-max-calls",
            "10",
            "--sipp-recv-timeout",
            "0",
            "--sipp-tls-version",
            "1.2",
            "--tls-key-type",
            "rsa",
            "--sipp-concurrent-calls-limit",
            "3",
            "--default_behaviors",
            "all,-bye",
            "--run-root",
            "/tmp/rr",
            "--script-timeout",
            "0.25",
            "--test-timeout",
            "30",
            "--junit",
            &junit,
            "--json",
            &json,
        ]);
        assert_eq!(c.run.network_mask, 30);
        assert_eq!(c.run.group, 8);
        assert_eq!(c.run.group_pause, Duration::ZERO);
        assert!(c.run.group_stop_first_fail && c.run.repeat && c.run.dry_run);
        assert!(c.run.window);
        assert!(c.run.fail_expected && c.no_pcap);
        assert_eq!(c.run.keep, Keep::All, "--leave-temp");
        assert_eq!(c.run.total, Some(100));
        assert_eq!((c.run.random_seed, c.seed), (Some(42), Some(42)));
        assert_eq!(c.run.run_root, PathBuf::from("/tmp/rr"));
        assert_eq!(c.run.script_timeout, Duration::from_millis(250));
        assert_eq!(c.run.test_timeout, Duration::from_secs(30));
        assert_eq!(c.template_folder, Some(PathBuf::from(&tpl)));
        assert_eq!(c.global_folder, Some(PathBuf::from(&tpl)));
        assert_eq!(c.keywords["domain"], "example.com");
        assert_eq!(c.keywords["port"], 5060);
        assert_eq!(c.tls_ca, Some((PathBuf::from(&cert), PathBuf::from(&key))));
        assert_eq!(c.tls_key_type, KeyType::Rsa);
        assert_eq!(c.junit, Some(PathBuf::from(&junit)));
        assert_eq!(c.json, Some(PathBuf::from(&json)));
        assert_eq!(c.sipp.transport, Transport::L1, "TLS is used: l1");
        assert_eq!(c.sipp.info_file, Some(PathBuf::from(&csv)));
        assert_eq!(c.sipp.call_rate, 0.5);
        assert_eq!(c.sipp.max_calls, 10);
        assert_eq!(c.sipp.recv_timeout_ms, 0);
        assert_eq!(c.sipp.tls_version.as_deref(), Some("1.2"));
        assert_eq!(c.sipp.concurrent_calls_limit, 3);
        assert_eq!(c.sipp.default_behaviors.as_deref(), Some("all,-bye"));
    }

    #[test]
    fn patterns_match_at_the_start_only() {
        let f = Fixture::new();
        let c = f.ok(&[
            "--pattern-only",
            "normal|tls",
            "--pattern-exclude",
            ".*-0001$",
        ]);
        let only = &c.only[0];
        assert!(only.is_match("normal-0000"));
        assert!(only.is_match("tls-0000"));
        assert!(
            !only.is_match("x-normal-0000"),
            "re.match is anchored at the start"
        );
        assert!(c.exclude[0].is_match("normal-0001"));
        assert!(!c.exclude[0].is_match("normal-0001x"));
        // A verbose pattern ending in a comment still compiles.
        let c = f.ok(&["--pattern-only", "(?x) normal  # the normal tests"]);
        assert!(c.only[0].is_match("normal-1") && !c.only[0].is_match("a-normal"));
    }

    #[test]
    fn the_sudo_user() {
        let os = |s: &str| Some(std::ffi::OsString::from(s));
        assert_eq!(
            sudo_user(true, os("1000"), os("1001")),
            Some(HandTo {
                uid: 1000,
                gid: 1001
            })
        );
        assert_eq!(sudo_user(false, os("1000"), os("1000")), None, "not root");
        assert_eq!(sudo_user(true, os("0"), os("0")), None, "root's own sudo");
        assert_eq!(sudo_user(true, None, os("1000")), None);
        assert_eq!(sudo_user(true, os("x"), os("1000")), None);
    }

    #[test]
    fn a_dry_run_pauses_only_when_asked() {
        let f = Fixture::new();
        assert_eq!(f.ok(&["--dry-run"]).run.group_pause, Duration::ZERO);
        assert_eq!(
            f.ok(&["--dry-run", "--group-pause", "0.5"]).run.group_pause,
            Duration::from_millis(500)
        );
        assert_eq!(f.ok(&[]).run.group_pause, Duration::from_millis(800));
    }

    #[test]
    fn keep_and_leave_temp() {
        let f = Fixture::new();
        for (args, keep, max) in [
            (&["--keep", "none"][..], Keep::None, 100),
            (&["--keep", "all", "--keep-max", "3"][..], Keep::All, 3),
            (&["--leave-temp"][..], Keep::All, 100),
            (&["--leave-temp", "--keep", "all"][..], Keep::All, 100),
            (&["--keep-max", "0"][..], Keep::Failed, 0),
        ] {
            let c = f.ok(args);
            assert_eq!((c.run.keep, c.run.keep_max), (keep, max), "{args:?}");
        }
    }

    #[test]
    fn random_without_seed_picks_one() {
        let f = Fixture::new();
        let c = f.ok(&["--random"]);
        assert!(c.seed.is_some());
        assert_eq!(c.seed, c.run.random_seed);
    }

    #[test]
    fn transport_defaults_and_explicit() {
        let f = Fixture::new();
        assert_eq!(
            f.ok(&["--sipp-transport", "tn"]).sipp.transport,
            Transport::Tn
        );
        let c = f.ok(&["--sipp-tls-version", "1.1", "--sipp-transport", "l1"]);
        assert_eq!(c.sipp.transport, Transport::L1);
        assert_eq!(c.tls_key_type, KeyType::Ecdsa, "the default key type");
        let (cert, key) = (f.p("ca.pem"), f.p("ca.key"));
        let c = f.ok(&[
            "--tls-ca-root-cert",
            &cert,
            "--tls-ca-root-key",
            &key,
            "--sipp-transport",
            "ln",
        ]);
        assert_eq!(c.sipp.transport, Transport::Ln);
        for t in Transport::ALL {
            assert_eq!(Transport::parse(t.as_str()), Some(t));
            assert_eq!(t.is_tls(), t.as_str().starts_with('l'));
        }
    }

    #[test]
    fn every_error_is_one_line_naming_the_option() {
        let f = Fixture::new();
        let (suite, cert, key, csv) =
            (f.p("suite"), f.p("ca.pem"), f.p("ca.key"), f.p("users.csv"));
        let nope = f.p("nope");
        let nope_xml = format!("{nope}/r.xml");
        let (dot_spelt, plain, log) = (f.p("tpl/../r.xml"), f.p("r.xml"), f.p("l.log"));
        let fifo = f.p("fifo");
        nix::unistd::mkfifo(fifo.as_str(), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let table: Vec<(Vec<&str>, String)> = vec![
            (vec!["--dut", "10.0.0"], r#"--dut: "10.0.0" is not an IPv4 address"#.into()),
            (vec!["--dut", "::1"], r#"--dut: "::1" is not an IPv4 address"#.into()),
            (vec!["--dut", "0.0.0.0"], "--dut: 0.0.0.0 cannot be a DUT's address".into()),
            (vec!["--network-mask", "31"], "--network-mask: 31 is outside 1..30".into()),
            (vec!["--network-mask", "0"], "--network-mask: 0 is outside 1..30".into()),
            (
                vec!["--network-mask", "-1"],
                "--network-mask: -1 is outside 1..30".into(),
            ),
            (vec!["--network-mask", "x"], r#"--network-mask: "x" is not a whole number"#.into()),
            (vec!["--network-mask", "300"], "--network-mask: 300 is outside 1..30".into()),
            (vec!["--testsuite", &nope], format!("--testsuite: {nope} does not exist")),
            (vec!["--testsuite", &csv], format!("--testsuite: {csv} is not a folder")),
            (vec!["--template-folder", &nope], format!("--template-folder: {nope} does not exist")),
            (vec!["--global-test-folder", &csv], format!("--global-test-folder: {csv} is not a folder")),
            (
                vec!["--pattern-only", "a("],
                r#"--pattern-only: "a(" is not a valid regular expression: unclosed group"#.into(),
            ),
            (
                vec!["--pattern-exclude", "ok", "--pattern-exclude", "[z-a]"],
                r#"--pattern-exclude: "[z-a]" is not a valid regular expression: invalid character class range, the start must be <= the end"#.into(),
            ),
            (
                vec!["--pattern-only", r"\p{Nope}"],
                r#"--pattern-only: "\p{Nope}" is not a valid regular expression: unicode property not found"#.into(),
            ),
            (
                vec!["--pattern-only", "a{99999999}"],
                r#"--pattern-only: "a{99999999}" is not a valid regular expression: compiled regex exceeds size limit of 10485760 bytes"#.into(),
            ),
            (
                vec!["--pattern-only", "a\n("],
                r#"--pattern-only: "a\n(" is not a valid regular expression: unclosed group"#.into(),
            ),
            (vec!["--dut", "1.2.3.\t4"], r#"--dut: "1.2.3.\t4" is not an IPv4 address"#.into()),
            (
                vec!["--keyword-replacement-values", "[1]"],
                "--keyword-replacement-values: must be a JSON object, got an array".into(),
            ),
            (
                vec!["--keyword-replacement-values", "\"s\""],
                "--keyword-replacement-values: must be a JSON object, got a string".into(),
            ),
            (
                vec!["--keyword-replacement-values", "{"],
                "--keyword-replacement-values: invalid JSON: EOF while parsing an object at line 1 column 1".into(),
            ),
            (vec!["--tls-ca-root-cert", &cert], "--tls-ca-root-cert given without --tls-ca-root-key".into()),
            (vec!["--tls-ca-root-key", &key], "--tls-ca-root-key given without --tls-ca-root-cert".into()),
            (
                vec!["--tls-ca-root-cert", &nope, "--tls-ca-root-key", &key],
                format!("--tls-ca-root-cert: {nope} does not exist"),
            ),
            (
                vec!["--tls-ca-root-cert", &cert, "--tls-ca-root-key", &suite],
                format!("--tls-ca-root-key: {suite} is not a file"),
            ),
            (
                vec!["--tls-ca-root-cert", &cert, "--tls-ca-root-key", &key, "--sipp-transport", "u1"],
                "--sipp-transport u1 is not a TLS transport but --tls-ca-root-cert/--tls-ca-root-key were given".into(),
            ),
            (
                vec!["--sipp-tls-version", "1.2", "--sipp-transport", "t1"],
                "--sipp-tls-version needs a TLS transport (l1 or ln)".into(),
            ),
            (
                vec!["--sipp-tls-version", "1.2"],
                "--sipp-tls-version needs a TLS transport (l1 or ln)".into(),
            ),
            (
                vec!["--sipp-tls-version", "1.3"],
                r#"--sipp-tls-version: "1.3" is not one of 1.0, 1.1, 1.2"#.into(),
            ),
            (
                vec!["--tls-key-type", "rsa"],
                "--tls-key-type needs a TLS transport (l1 or ln)".into(),
            ),
            (
                vec!["--tls-key-type", "dsa", "--sipp-transport", "l1"],
                r#"--tls-key-type: "dsa" is not one of ecdsa, rsa"#.into(),
            ),
            (
                vec!["--sipp-transport", "U1"],
                r#"--sipp-transport: "U1" is not one of u1, un, ui, t1, tn, l1, ln"#.into(),
            ),
            (vec!["--group", "0"], "--group: must be at least 1".into()),
            (vec!["--group", "-3"], "--group: must be at least 1".into()),
            (vec!["--group", "two"], r#"--group: "two" is not a whole number"#.into()),
            (vec!["--total", "0"], "--total: must be at least 1".into()),
            (vec!["--group-pause", "-1"], "--group-pause: must be a number of seconds >= 0".into()),
            (vec!["--group-pause", "soon"], "--group-pause: must be a number of seconds >= 0".into()),
            (vec!["--group-pause", "inf"], "--group-pause: must be a number of seconds >= 0".into()),
            (vec!["--sipp-call-rate", "0"], "--sipp-call-rate: must be a number > 0".into()),
            (vec!["--sipp-call-rate", "NaN"], "--sipp-call-rate: must be a number > 0".into()),
            (vec!["--sipp-max-calls", "0"], "--sipp-max-calls: must be at least 1".into()),
            (vec!["--sipp-recv-timeout", "-5"], "--sipp-recv-timeout: must be at least 0".into()),
            (vec!["--sipp-concurrent-calls-limit", "0"], "--sipp-concurrent-calls-limit: must be at least 1".into()),
            (vec!["--sipp-info-file", &nope], format!("--sipp-info-file: {nope} does not exist")),
            (vec!["--sipp-info-file", &suite], format!("--sipp-info-file: {suite} is not a file")),
            (vec!["--script-timeout", "0"], "--script-timeout: must be a number of seconds > 0".into()),
            (vec!["--test-timeout", "-1"], "--test-timeout: must be a number of seconds > 0".into()),
            (vec!["--seed", "1"], "--seed given without --random".into()),
            (vec!["--random", "--seed", "x"], r#"--seed: "x" is not a whole number"#.into()),
            (vec!["--keep", "some"], r#"--keep: "some" is not one of none, failed, all"#.into()),
            (
                vec!["--leave-temp", "--keep", "failed"],
                "--leave-temp keeps every run folder, but --keep failed was given: give one of \
                 them"
                    .into(),
            ),
            (vec!["--keep-max", "-1"], "--keep-max: must be at least 0".into()),
            (vec!["--keep-max", "x"], r#"--keep-max: "x" is not a whole number"#.into()),
            (
                vec!["--junit", &nope_xml],
                format!("--junit: folder {nope} of {nope}/r.xml does not exist"),
            ),
            (vec!["--json", &suite], format!("--json: {suite} is not a file")),
            (
                vec!["--html", "same", "--json", "same"],
                "--html: same is the same file as --json".into(),
            ),
            (vec!["--html", &suite], format!("--html: {suite} is not a file")),
            (
                vec!["--junit", "same", "--json", "same"],
                "--json: same is the same file as --junit".into(),
            ),
            (
                vec!["--junit", &dot_spelt, "--json", &plain],
                format!("--json: {plain} is the same file as --junit"),
            ),
            (
                vec!["--json", &log],
                format!("--log-file: {log} is the same file as --json"),
            ),
            (
                vec!["--log-file", &fifo],
                format!("--log-file: {fifo} is a FIFO, not a regular file"),
            ),
            (
                vec!["--dut", "10.0.0.0"],
                "--dut: 10.0.0.0 is the network address of 10.0.0.0/24: no device can have it"
                    .into(),
            ),
            (
                vec!["--dut", "10.0.0.3", "--network-mask", "30"],
                "--dut: 10.0.0.3 is the broadcast address of 10.0.0.0/30: no device can have it"
                    .into(),
            ),
            (
                vec!["--default_behaviors", "all,-byee"],
                r#"--default_behaviors: "-byee" is not a behavior SIPp knows (a list of all, none, bye, abortunexp, pingreply, cseq, each maybe after - or +)"#.into(),
            ),
            (vec!["--run-root", &csv], format!("--run-root: {csv} is not a folder")),
            (
                vec!["--run-root", "/"],
                "--run-root: / cannot be the run root: give a folder of its own, e.g. /var/tmp/sipplauncher".into(),
            ),
        ];
        for (args, expected) in table {
            assert_eq!(f.err(&args), expected, "for {args:?}");
        }
    }

    #[test]
    fn default_behaviors_as_sipp_reads_them() {
        for ok in [
            "all",
            "none",
            "all,-bye",
            "+pingreply,abortunexp",
            "cseq,",
            "none,bye",
        ] {
            check_behaviors(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", ",", "al", "all,-", "BYE", "all;bye"] {
            assert!(check_behaviors(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn missing_dut_has_its_own_message() {
        let cli = Cli::try_parse_from(["sipplauncher"]).expect("clap accepts it");
        assert_eq!(
            validate(cli).expect_err("no dut").to_string(),
            "--dut: missing; give the DUT's IPv4 address, e.g. --dut 10.22.22.24"
        );
    }

    #[test]
    fn the_default_log_file_is_not_explicit() {
        let f = Fixture::new();
        let suite = f.p("suite");
        let cli = Cli::try_parse_from(["sipplauncher", "--dut", "10.0.0.1", "--testsuite", &suite])
            .expect("clap accepts it");
        let c = validate(cli).expect("valid");
        assert_eq!(c.log_file, PathBuf::from("/tmp/sipplauncher.log"));
        assert!(!c.log_file_explicit);
        let nope = f.p("nope/l.log");
        let cli = Cli::try_parse_from([
            "sipplauncher",
            "--dut",
            "10.0.0.1",
            "--testsuite",
            &suite,
            "--log-file",
            &nope,
        ])
        .expect("clap accepts it");
        assert_eq!(
            validate(cli).expect_err("no folder").to_string(),
            format!(
                "--log-file: folder {} of {nope} does not exist",
                f.p("nope")
            )
        );
    }

    #[test]
    fn loopback_dut_is_fine() {
        let f = Fixture::new();
        let mut cli = f.cli(&[]);
        cli.dut = Some("127.0.0.1".into());
        assert_eq!(validate(cli).expect("valid").run.dut, Ipv4Addr::LOCALHOST);
    }
}
