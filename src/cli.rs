//! The command line of SPEC §3, as clap parses it: every option of the original, with its name,
//! default and meaning. Values that need checking are kept raw here (strings); `config::validate`
//! checks them and says what is wrong in one line, so clap's own errors are only for unknown
//! options and missing values.

use std::path::PathBuf;

use clap::{ArgAction, Parser};

/// The default `--testsuite`.
pub const DEFAULT_TESTSUITE: &str = "./tmp-testsuite";

/// The options that say which suite and which of its tests: a run's and `sipplauncher list`'s.
#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    /// Folder of the test suite
    #[arg(long, value_name = "DIR", default_value = DEFAULT_TESTSUITE)]
    pub testsuite: PathBuf,

    /// Folder of shared template snippets [default: <suite>/TEMPLATES if present]
    #[arg(long, value_name = "DIR")]
    pub template_folder: Option<PathBuf>,

    /// Folder of the GLOBAL before.sh/after.sh [default: <suite>/GLOBAL if present]
    #[arg(long, value_name = "DIR")]
    pub global_test_folder: Option<PathBuf>,

    /// Only tests whose name matches RE at its start (repeatable: any of them) [default: all]
    #[arg(long, value_name = "RE")]
    pub pattern_only: Vec<String>,

    /// Leave out tests whose name matches RE at its start (repeatable; wins over --pattern-only)
    #[arg(long, value_name = "RE")]
    pub pattern_exclude: Vec<String>,
}
/// The default `--run-root`.
pub const DEFAULT_RUN_ROOT: &str = "/var/tmp/sipplauncher";
/// The default `--log-file`.
pub const DEFAULT_LOG_FILE: &str = "/tmp/sipplauncher.log";

/// The subcommands, one line each, as the top-level `--help` shows them (each is a first
/// argument with its own parser and `--help`: `app::main` dispatches on it).
pub const COMMANDS_HELP: &str = "\
Commands (a first argument; `sipplauncher <COMMAND> --help` for each):
  list    List the tests a run would collect, with their run groups, instances and roles
  report  Make the HTML report of a run again from its JSON report
  merge   Join the JSON reports of a suite's shards into one report of each kind
  sweep   Benchmark a DUT: run the suite at each group size, draw its capacity curve
Without a command: a run of the suite, with the options below.";

/// Run a suite of SIPp tests against a SIP device under test (DUT).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "sipplauncher",
    version,
    about = "Run a suite of SIPp tests against a SIP device under test (DUT) with one command",
    override_usage = "sipplauncher [OPTIONS]\n       sipplauncher <list|report|merge|sweep> [ARGS]",
    before_help = COMMANDS_HELP,
    // The commands after the usage, before the run's options.
    help_template = "{about-with-newline}\n{usage-heading} {usage}\n\n{before-help}{all-args}{after-help}",
    // `-v` is the version, as in the original; clap's own `-V` is replaced below.
    disable_version_flag = true,
    // As argparse in the original: an option given twice keeps its last value.
    args_override_self = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Print the version and exit
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,

    /// List the tests this command line would run (as `sipplauncher list`) and exit
    #[arg(long)]
    pub list: bool,

    /// DUT IPv4 address (required)
    #[arg(long, value_name = "IP")]
    pub dut: Option<String>,

    /// Which suite and which of its tests (shared with `sipplauncher list`).
    #[command(flatten)]
    pub suite: SuiteArgs,

    /// Prefix length of the DUT network, where test addresses are picked (1..30)
    #[arg(
        long,
        value_name = "N",
        default_value = "24",
        allow_negative_numbers = true
    )]
    pub network_mask: String,

    /// Tests run at the same time
    #[arg(
        long,
        value_name = "N",
        default_value = "1",
        allow_negative_numbers = true
    )]
    pub group: String,

    /// Pause between groups, in seconds (fractions allowed) [default: 0.8; 0 with --dry-run]
    // No clap default: a dry run pauses only when asked to.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub group_pause: Option<String>,

    /// Stop after the group in which a test failed
    #[arg(long)]
    pub group_stop_first_fail: bool,

    /// No groups: keep --group tests under way, each test that ends making room for the next
    /// (post-run at once, in the order runs end; --group-pause per place; with
    /// --group-stop-first-fail no test starts after a failure)
    #[arg(long)]
    pub window: bool,

    /// Test runs to do, wrapping around the list of tests [default: the number of tests]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub total: Option<String>,

    /// Pick tests in random order (the seed is printed, see --seed)
    #[arg(long)]
    pub random: bool,

    /// Repeat the whole run until interrupted (or, with --group-stop-first-fail, a failure)
    #[arg(long = "loop")]
    pub repeat: bool,

    /// Go through the motions without SIPp, scripts or network changes (no privileges needed)
    #[arg(long)]
    pub dry_run: bool,

    /// Invert the exit status: 0 when a test failed, 1 when all passed
    #[arg(long)]
    pub fail_expected: bool,

    /// Keep every test run folder (the same as --keep all)
    #[arg(long)]
    pub leave_temp: bool,

    /// Which test run folders stay once their test is over: none, failed (those of runs that
    /// did not pass) or all [default: failed]
    // No clap default: --leave-temp with an explicit --keep other than all is refused.
    #[arg(long, value_name = "WHICH")]
    pub keep: Option<String>,

    /// With --keep failed: keep at most this many failed runs' folders (the reports still list
    /// every failure)
    #[arg(
        long,
        value_name = "N",
        default_value = "100",
        allow_negative_numbers = true
    )]
    pub keep_max: String,

    /// Extra template keywords, a JSON object, e.g. '{"domain": "example.com"}'
    #[arg(long, value_name = "JSON")]
    pub keyword_replacement_values: Option<String>,

    /// Do not capture the tests' packets to pcap files
    #[arg(long)]
    pub no_pcap: bool,

    /// CA certificate that signs the per-UA certificates [default: an ephemeral CA]
    #[arg(long, value_name = "PEM")]
    pub tls_ca_root_cert: Option<PathBuf>,

    /// Private key of --tls-ca-root-cert [default: an ephemeral CA]
    #[arg(long, value_name = "PEM")]
    pub tls_ca_root_key: Option<PathBuf>,

    /// Key of each UA's certificate (and of the ephemeral CA): ecdsa (P-256) or rsa (2048 bits,
    /// as the original made); needs TLS [default: ecdsa]
    #[arg(long, value_name = "TYPE")]
    pub tls_key_type: Option<String>,

    /// SIPp transport (-t): u1, un, ui, t1, tn, l1, ln [default: l1 if TLS is used, else u1]
    #[arg(long, value_name = "MODE")]
    pub sipp_transport: Option<String>,

    /// SIPp injection file (-inf) [default: <suite>/users.csv if present]
    #[arg(long, value_name = "FILE")]
    pub sipp_info_file: Option<PathBuf>,

    /// SIPp call rate (-r), calls per second
    #[arg(
        long,
        value_name = "F",
        default_value = "1.0",
        allow_negative_numbers = true
    )]
    pub sipp_call_rate: String,

    /// SIPp maximum number of calls (-m)
    #[arg(
        long,
        value_name = "N",
        default_value = "1",
        allow_negative_numbers = true
    )]
    pub sipp_max_calls: String,

    /// SIPp receive timeout (-recv_timeout), in milliseconds
    #[arg(
        long,
        value_name = "MS",
        default_value = "5000",
        allow_negative_numbers = true
    )]
    pub sipp_recv_timeout: String,

    /// SIPp TLS version (-tls_version): 1.0, 1.1 or 1.2; needs TLS [default: SIPp's]
    #[arg(long, value_name = "V")]
    pub sipp_tls_version: Option<String>,

    /// SIPp limit of simultaneous calls (-l)
    #[arg(
        long,
        value_name = "N",
        default_value = "1",
        allow_negative_numbers = true
    )]
    pub sipp_concurrent_calls_limit: String,

    /// SIPp default behaviors (-default_behaviors) [default: SIPp's]
    #[arg(long = "default_behaviors", value_name = "V")]
    pub default_behaviors: Option<String>,

    /// Seed of --random, to replay a random run [default: a fresh random one]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub seed: Option<String>,

    /// Where test run folders are made: <DIR>/<test>/<run_id>/
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUN_ROOT)]
    pub run_root: PathBuf,

    /// before.sh/after.sh are killed after this many seconds (fractions allowed)
    #[arg(
        long,
        value_name = "SECONDS",
        default_value = "60",
        allow_negative_numbers = true
    )]
    pub script_timeout: String,

    /// A test still running after this many seconds is stopped and FAILs
    #[arg(
        long,
        value_name = "SECONDS",
        default_value = "180",
        allow_negative_numbers = true
    )]
    pub test_timeout: String,

    /// Try a test run that did not pass again, up to N more times (a fresh run each time); one
    /// that passes on a retry is FLAKY and counts as passed
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub retries: u32,

    /// Run only the tests that did not pass in that JSON report (a run's --json, or a merge's)
    #[arg(long, value_name = "REPORT.json")]
    pub rerun_failed: Option<PathBuf>,

    /// Run only part K of N of the tests (count:K/N even in size, hash:K/N stable by name; tests
    /// with dns.txt in part 1), for one of N CI jobs or pods; join the reports with `merge`
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,

    /// Write a JUnit XML report to FILE (for CI) [default: none]
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write a JSON report to FILE [default: none]
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write a self-contained HTML report to FILE, with the SIP ladder of failed runs and of
    /// one passing run of each test; rewritten every 30 s while the run goes on [default: none]
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// General log file [default: /tmp/sipplauncher.log]
    // No clap default: whether it was given matters (an explicit path must work, the default
    // may be skipped); `config` applies `DEFAULT_LOG_FILE`.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    /// The general log rotates when it would grow past this size, in MiB (fractions allowed)
    #[arg(long, value_name = "MIB", default_value = "100")]
    pub log_max_size: String,

    /// Old general logs kept by the rotation: <log>.1 (the newest) ... <log>.N
    #[arg(
        long,
        value_name = "N",
        default_value = "5",
        allow_negative_numbers = true
    )]
    pub log_keep: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sipplauncher").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_originals() {
        let cli = parse(&[]).expect("no option is required by clap");
        assert_eq!(cli.dut, None);
        assert_eq!(cli.suite.testsuite, PathBuf::from("./tmp-testsuite"));
        assert_eq!(cli.suite.template_folder, None);
        assert_eq!(cli.suite.global_test_folder, None);
        assert!(cli.suite.pattern_only.is_empty() && cli.suite.pattern_exclude.is_empty());
        assert_eq!(cli.network_mask, "24");
        assert_eq!(cli.group, "1");
        assert_eq!(cli.group_pause, None);
        assert!(!cli.group_stop_first_fail);
        assert_eq!(cli.total, None);
        assert!(!cli.random && !cli.repeat && !cli.dry_run && !cli.fail_expected);
        assert!(!cli.leave_temp && !cli.no_pcap);
        assert_eq!(cli.keep, None);
        assert_eq!(cli.keep_max, "100");
        assert_eq!(cli.keyword_replacement_values, None);
        assert_eq!(cli.sipp_transport, None);
        assert_eq!(cli.sipp_call_rate, "1.0");
        assert_eq!(cli.sipp_max_calls, "1");
        assert_eq!(cli.sipp_recv_timeout, "5000");
        assert_eq!(cli.sipp_tls_version, None);
        assert_eq!(cli.sipp_concurrent_calls_limit, "1");
        assert_eq!(cli.default_behaviors, None);
        assert_eq!(cli.seed, None);
        assert_eq!(cli.run_root, PathBuf::from("/var/tmp/sipplauncher"));
        assert_eq!(cli.script_timeout, "60");
        assert_eq!(cli.test_timeout, "180");
        assert_eq!(cli.junit, None);
        assert_eq!(cli.json, None);
        assert_eq!(cli.log_file, None);
    }

    #[test]
    fn every_option_has_its_original_name() {
        let cli = parse(&[
            "--dut",
            "10.22.22.24",
            "--testsuite",
            "suite",
            "--template-folder",
            "t",
            "--global-test-folder",
            "g",
            "--pattern-only",
            "a",
            "--pattern-only",
            "b",
            "--pattern-exclude",
            "c",
            "--network-mask",
            "16",
            "--group",
            "4",
            "--group-pause",
            "0.5",
            "--group-stop-first-fail",
            "--total",
            "9",
            "--random",
            "--loop",
            "--dry-run",
            "--fail-expected",
            "--leave-temp",
            "--keep",
            "all",
            "--keep-max",
            "7",
            "--keyword-replacement-values",
            "{}",
            "--no-pcap",
            "--tls-ca-root-cert",
            "ca.pem",
            "--tls-ca-root-key",
            "ca.key",
            "--sipp-transport",
            "l1",
            "--sipp-info-file",
            "users.csv",
            "--sipp-call-rate",
            "2.5",
            "--sipp-max-calls",
            "3",
            "--sipp-recv-timeout",
            "100",
            "--sipp-tls-version",
            "1.2",
            "--sipp-concurrent-calls-limit",
            "5",
            "--default_behaviors",
            "all,-bye",
            "--seed",
            "42",
            "--run-root",
            "/tmp/r",
            "--script-timeout",
            "1.5",
            "--test-timeout",
            "30",
            "--junit",
            "j.xml",
            "--json",
            "j.json",
            "--log-file",
            "l.log",
        ])
        .expect("all options parse");
        assert_eq!(cli.dut.as_deref(), Some("10.22.22.24"));
        assert_eq!(cli.suite.pattern_only, vec!["a", "b"]);
        assert_eq!(cli.suite.pattern_exclude, vec!["c"]);
        assert!(cli.random && cli.repeat && cli.dry_run && cli.fail_expected);
        assert!(cli.group_stop_first_fail && cli.leave_temp && cli.no_pcap);
        assert_eq!(
            (cli.keep.as_deref(), cli.keep_max.as_str()),
            (Some("all"), "7")
        );
        assert_eq!(cli.default_behaviors.as_deref(), Some("all,-bye"));
        assert_eq!(cli.seed.as_deref(), Some("42"));
        assert_eq!(cli.log_file, Some(PathBuf::from("l.log")));
    }

    #[test]
    fn the_last_of_a_repeated_option_wins() {
        let cli = parse(&[
            "--dut", "10.0.0.1", "--dut", "10.0.0.2", "--random", "--random",
        ])
        .expect("parses");
        assert_eq!(cli.dut.as_deref(), Some("10.0.0.2"));
        assert!(cli.random);
    }

    #[test]
    fn negative_numbers_reach_validation() {
        let cli = parse(&["--group", "-1", "--group-pause", "-0.5"]).expect("parses");
        assert_eq!(cli.group, "-1");
        assert_eq!(cli.group_pause.as_deref(), Some("-0.5"));
    }

    #[test]
    fn lowercase_v_is_the_version() {
        let err = parse(&["-v"]).expect_err("prints the version");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        let err = parse(&["--version"]).expect_err("prints the version");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        let err = parse(&["-h"]).expect_err("prints the help");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    #[test]
    fn unknown_options_and_missing_values_are_clap_errors() {
        assert!(parse(&["--nope"]).is_err());
        assert!(parse(&["--dut"]).is_err());
    }

    #[test]
    fn help_lists_each_subcommand_in_one_line() {
        let help = Cli::command().render_help().to_string();
        for name in ["list", "report", "merge", "sweep"] {
            let lines: Vec<&str> = help
                .lines()
                .filter(|l| l.trim_start().starts_with(&format!("{name}  ")))
                .collect();
            assert_eq!(lines.len(), 1, "{name} not listed once in:\n{help}");
        }
        // Before the options, after the usage.
        let at = |what: &str| help.find(what).unwrap_or_else(|| panic!("{what}:\n{help}"));
        assert!(at("Usage:") < at("Commands") && at("Commands") < at("Options:"));
        // The long help shows them too.
        assert!(Cli::command()
            .render_long_help()
            .to_string()
            .contains(COMMANDS_HELP));
    }

    #[test]
    fn help_has_one_line_per_option() {
        let help = Cli::command().render_long_help().to_string();
        for long in [
            "--dut",
            "--testsuite",
            "--default_behaviors",
            "--loop",
            "--log-file",
            "--junit",
        ] {
            assert!(help.contains(long), "{long} missing from:\n{help}");
        }
        // Every documented option says what it does in one sentence: no doc comment spans
        // paragraphs (which clap would show as extra lines).
        for arg in Cli::command().get_arguments() {
            let text = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(!text.is_empty(), "{} has no help", arg.get_id());
            assert!(!text.contains('\n'), "{} help spans lines", arg.get_id());
        }
    }
}
