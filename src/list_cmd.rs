//! `sipplauncher list` (or a run's command line with `--list`): the tests a run would collect,
//! after `--pattern-only`/`--pattern-exclude`, with their run groups, instances and roles, the
//! scripts and files they bring, and GLOBAL. It only reads the suite: no privileges needed, no
//! folder made, nothing sent.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;

use sipplauncher_actors::core::plan::TestPlan;

use crate::cli::{Cli, SuiteArgs};
use crate::config::{compile_patterns, existing_folder, UsageError};
use crate::exit_code;
use crate::report::{printable, printable_path};
use crate::suite::{self, CollectOptions, Suite};

/// The files of a test folder worth naming beside its scenarios.
const EXTRA_FILES: [&str; 4] = ["before.sh", "after.sh", "dns.txt", "3pcc.txt"];

/// List the tests of a suite, as a run would collect them
#[derive(Debug, Clone, Parser)]
#[command(
    name = "sipplauncher list",
    about = "List the tests a run would collect (after the filters), with their run groups, \
             instances and roles; reads the suite only",
    max_term_width = 100
)]
pub struct ListCli {
    #[command(flatten)]
    pub suite: SuiteArgs,
}

impl ListCli {
    /// The listing options of a run's command line (`--list`); the others are not looked at.
    pub fn of_run(cli: &Cli) -> ListCli {
        ListCli {
            suite: cli.suite.clone(),
        }
    }
}

/// Runs `sipplauncher list ARGS` (`args` without the program and `list`); returns the exit
/// status: 0 listed, 2 a bad command line or no tests found.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let argv = std::iter::once(OsString::from("sipplauncher list")).chain(args);
    match ListCli::try_parse_from(argv) {
        Ok(cli) => list(&cli),
        Err(e) => crate::app::clap_exit(&e),
    }
}

/// Prints the listing to stdout; one line on stderr and exit status 2 when the options are bad
/// or no test is left.
pub fn list(cli: &ListCli) -> i32 {
    let suite = match collect(cli) {
        Ok(s) => s,
        Err(msg) => {
            let _ = writeln!(std::io::stderr(), "sipplauncher: {msg}");
            return exit_code::USAGE;
        }
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is the reader's choice: nothing to report.
    let _ = out.write_all(listing(&suite).as_bytes());
    let _ = out.flush();
    exit_code::SUCCESS
}

fn collect(cli: &ListCli) -> Result<Suite, String> {
    let usage = |e: UsageError| e.to_string();
    let testsuite = existing_folder("--testsuite", cli.suite.testsuite.clone()).map_err(usage)?;
    let folder = |option, p: &Option<PathBuf>| {
        p.clone()
            .map(|p| existing_folder(option, p))
            .transpose()
            .map_err(usage)
    };
    let opts = CollectOptions {
        testsuite,
        template_folder: folder("--template-folder", &cli.suite.template_folder)?,
        global_folder: folder("--global-test-folder", &cli.suite.global_test_folder)?,
        only: compile_patterns("--pattern-only", &cli.suite.pattern_only).map_err(usage)?,
        exclude: compile_patterns("--pattern-exclude", &cli.suite.pattern_exclude)
            .map_err(usage)?,
    };
    let suite = suite::collect(&opts).map_err(|e| format!("{}: {e}", e.option()))?;
    if suite.tests.is_empty() {
        let filtered = !opts.only.is_empty() || !opts.exclude.is_empty();
        return Err(suite::no_tests_message(&opts.testsuite, filtered));
    }
    Ok(suite)
}

/// The listing: per test its name (and the files it brings), then per run group its instances
/// in start order, role and scenario file; a test that cannot run says why; then GLOBAL and the
/// count.
pub fn listing(suite: &Suite) -> String {
    let mut out = String::new();
    for t in &suite.tests {
        test_lines(t, &mut out);
    }
    let runnable = suite
        .tests
        .iter()
        .filter(|t| t.definition_error.is_none())
        .count();
    let n = suite.tests.len();
    out.push_str(&format!(
        "{n} {} in {}",
        if n == 1 { "test" } else { "tests" },
        printable_path(&suite.root)
    ));
    if runnable < n {
        out.push_str(&format!(" ({} not runnable)", n - runnable));
    }
    match &suite.global {
        Some(g) => {
            let scripts = present(&g.folder, &["before.sh", "after.sh"]);
            out.push_str(&format!(
                "; GLOBAL {}{}",
                printable_path(&g.folder),
                if scripts.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", scripts.join(", "))
                }
            ));
        }
        None => out.push_str("; no GLOBAL"),
    }
    out.push('\n');
    out
}

fn test_lines(t: &TestPlan, out: &mut String) {
    let extras = present(&t.folder, &EXTRA_FILES);
    out.push_str(&printable(&t.name.0));
    if !extras.is_empty() {
        out.push_str(&format!(" ({})", extras.join(", ")));
    }
    out.push('\n');
    if let Some(why) = &t.definition_error {
        out.push_str(&format!("    not runnable (NOT READY when run): {why}\n"));
        return;
    }
    let named = t.run_groups.len() > 1 || t.run_groups.iter().any(|g| !g.id.is_empty());
    for g in &t.run_groups {
        let pad = if named {
            out.push_str(&format!("  run group {}\n", g.id));
            "      "
        } else {
            "    "
        };
        for s in &g.scenarios {
            out.push_str(&format!(
                "{pad}{:<4}{:<6}{}\n",
                s.ua.0,
                s.role.as_str(),
                s.file
            ));
        }
    }
}

/// Which of `names` are files in `folder`.
fn present<'a>(folder: &Path, names: &[&'a str]) -> Vec<&'a str> {
    names
        .iter()
        .copied()
        .filter(|n| folder.join(n).is_file())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn suite_in(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
        let root = dir.join("suite");
        for (rel, content) in files {
            let p = root.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }
        root
    }

    fn cli(root: &Path, only: &[&str], exclude: &[&str]) -> ListCli {
        ListCli {
            suite: SuiteArgs {
                testsuite: root.to_path_buf(),
                template_folder: None,
                global_test_folder: None,
                pattern_only: only.iter().map(|s| s.to_string()).collect(),
                pattern_exclude: exclude.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    #[test]
    fn tests_with_their_run_groups_instances_and_roles() {
        let dir = tempfile::tempdir().unwrap();
        let root = suite_in(
            dir.path(),
            &[
                ("GLOBAL/before.sh", "true\n"),
                ("call-0000/uas_ua0.xml", "<scenario/>"),
                ("call-0000/uac_ua1.xml", "<scenario/>"),
                ("call-0000/before.sh", "true\n"),
                ("call-0000/dns.txt", ""),
                ("two-0000/part0_uas_ua0.xml", "<scenario/>"),
                ("two-0000/part0_uac_ua1.xml", "<scenario/>"),
                ("two-0000/part1_uac_ua0.xml", "<scenario/>"),
                ("two-0000/part1_uas_ua1.xml", "<scenario/>"),
                ("empty-0000/README", "nothing"),
                ("skip-0000/uac_ua0.xml", "<scenario/>"),
            ],
        );
        let suite = collect(&cli(&root, &[], &["skip"])).unwrap();
        assert_eq!(
            listing(&suite),
            format!(
                "\
call-0000 (before.sh, dns.txt)
    ua0 uas   uas_ua0.xml
    ua1 uac   uac_ua1.xml
empty-0000
    not runnable (NOT READY when run): {}
two-0000
  run group part0
      ua0 uas   part0_uas_ua0.xml
      ua1 uac   part0_uac_ua1.xml
  run group part1
      ua1 uas   part1_uas_ua1.xml
      ua0 uac   part1_uac_ua0.xml
3 tests in {} (1 not runnable); GLOBAL {} (before.sh)
",
                suite.tests[1].definition_error.as_deref().unwrap(),
                root.display(),
                root.join("GLOBAL").display()
            )
        );
    }

    #[test]
    fn bad_options_and_no_tests_are_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = suite_in(dir.path(), &[("a-0000/uac_ua0.xml", "<scenario/>")]);
        let err = collect(&cli(&root, &["b"], &[])).unwrap_err();
        assert!(
            err.starts_with("No tests found in ") && err.ends_with("--pattern-exclude"),
            "{err}"
        );
        let err = collect(&cli(&root, &["("], &[])).unwrap_err();
        assert!(err.starts_with("--pattern-only: \"(\""), "{err}");
        let err = collect(&cli(&dir.path().join("nope"), &[], &[])).unwrap_err();
        assert!(
            err.starts_with("--testsuite: ") && err.ends_with("does not exist"),
            "{err}"
        );
    }
}
