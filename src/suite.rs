//! Collecting the suite (SPEC §2): which subfolders are tests, the `--pattern-only` /
//! `--pattern-exclude` filter, the template and GLOBAL folders, and `users.csv`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use regex::Regex;
use sipplauncher_actors::core::plan::{GlobalPlan, TestName, TestPlan};

use crate::scenario::plan_test;

/// The default name of the shared-templates folder inside the suite.
pub const TEMPLATES_FOLDER: &str = "TEMPLATES";
/// The default name of the GLOBAL pseudo-test folder inside the suite.
pub const GLOBAL_FOLDER: &str = "GLOBAL";
/// The default injection file inside the suite.
pub const INFO_FILE: &str = "users.csv";

/// What to collect, from the command line.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// `--testsuite`.
    pub testsuite: PathBuf,
    /// `--template-folder`, when given; else `<suite>/TEMPLATES` if present.
    pub template_folder: Option<PathBuf>,
    /// `--global-test-folder`, when given; else `<suite>/GLOBAL` if present.
    pub global_folder: Option<PathBuf>,
    /// `--pattern-only`: a test runs only if one of these matches at the start of its name.
    pub only: Vec<Regex>,
    /// `--pattern-exclude`: a test whose name one of these matches at the start is skipped.
    pub exclude: Vec<Regex>,
}

/// The collected suite.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The suite folder, as given.
    pub root: PathBuf,
    /// The tests that passed the filter, sorted by name.
    pub tests: Vec<TestPlan>,
    /// The GLOBAL pseudo-test, if there is one.
    pub global: Option<GlobalPlan>,
    /// Where `{% import %}` / `{% include %}` look after the run folder.
    pub template_folder: Option<PathBuf>,
    /// `<suite>/users.csv` when it exists (SIPp `-inf` unless `--sipp-info-file` says otherwise).
    pub info_file: Option<PathBuf>,
}

/// The one line of a run (or a listing) that found no test to run.
pub fn no_tests_message(testsuite: &Path, filtered: bool) -> String {
    format!(
        "No tests found in {}{}",
        testsuite.display(),
        if filtered {
            " after --pattern-only/--pattern-exclude"
        } else {
            ""
        }
    )
}

/// The folders collection reads, each given by an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Suite,
    Templates,
    Global,
}

impl Folder {
    /// The command-line option that names this folder.
    pub fn option(self) -> &'static str {
        match self {
            Folder::Suite => "--testsuite",
            Folder::Templates => "--template-folder",
            Folder::Global => "--global-test-folder",
        }
    }
}

impl std::fmt::Display for Folder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Folder::Suite => "test suite",
            Folder::Templates => "template folder",
            Folder::Global => "global test folder",
        })
    }
}

/// Why the suite could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{what} {}: {source}", path.display())]
    Open {
        what: Folder,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what} {}: not a folder", path.display())]
    NotAFolder { what: Folder, path: PathBuf },
    #[error("read test suite {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl CollectError {
    /// The command-line option whose value is at fault, for the usage line.
    pub fn option(&self) -> &'static str {
        match self {
            CollectError::Open { what, .. } | CollectError::NotAFolder { what, .. } => {
                what.option()
            }
            CollectError::Read { .. } => Folder::Suite.option(),
        }
    }
}

/// Collects the tests of the suite (SPEC §2). A test folder that does not define a
/// runnable test is still collected, with its `definition_error` set; only problems with the
/// suite folder itself (or an explicit template / GLOBAL folder) are errors.
pub fn collect(opts: &CollectOptions) -> Result<Suite, CollectError> {
    let root = opts.testsuite.clone();
    require_folder(Folder::Suite, &root)?;

    let template_folder = match &opts.template_folder {
        Some(explicit) => {
            require_folder(Folder::Templates, explicit)?;
            Some(explicit.clone())
        }
        None => Some(root.join(TEMPLATES_FOLDER)).filter(|p| p.is_dir()),
    };
    let global_folder = match &opts.global_folder {
        Some(explicit) => {
            require_folder(Folder::Global, explicit)?;
            Some(explicit.clone())
        }
        None => Some(root.join(GLOBAL_FOLDER)).filter(|p| p.is_dir()),
    };

    let not_tests = NotTests::new(&[template_folder.as_deref(), global_folder.as_deref()]);

    let read_err = |source| CollectError::Read {
        path: root.clone(),
        source,
    };
    let mut candidates: Vec<(String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(&root).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        // `fs::metadata` follows symlinks: a symlinked folder is a test; a dangling link is not.
        let is_dir = fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false);
        if !is_dir || name.starts_with('.') || not_tests.contains(&name, &path) {
            continue;
        }
        if selected(&name, &opts.only, &opts.exclude) {
            candidates.push((name, path));
        }
    }
    candidates.sort_by(|a, b| a.0.cmp(&b.0));

    let tests = candidates
        .into_iter()
        .map(|(name, folder)| collect_test(TestName(name), folder))
        .collect();

    let info_file = Some(root.join(INFO_FILE)).filter(|p| p.is_file());

    Ok(Suite {
        root,
        tests,
        global: global_folder.map(|folder| GlobalPlan { folder }),
        template_folder,
        info_file,
    })
}

/// Whether a test named `name` runs: some only-pattern matches (or there is none) and no
/// exclude-pattern matches.
pub fn selected(name: &str, only: &[Regex], exclude: &[Regex]) -> bool {
    (only.is_empty() || only.iter().any(|re| matches_at_start(re, name)))
        && !exclude.iter().any(|re| matches_at_start(re, name))
}

/// Python's `re.match`: a match must begin at offset 0 (it need not reach the end). The regex
/// crate finds the leftmost match, so if any match starts at 0, the one found does.
pub fn matches_at_start(re: &Regex, name: &str) -> bool {
    re.find(name).is_some_and(|m| m.start() == 0)
}

fn require_folder(what: Folder, path: &Path) -> Result<(), CollectError> {
    let meta = fs::metadata(path).map_err(|source| CollectError::Open {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(CollectError::NotAFolder {
            what,
            path: path.to_path_buf(),
        })
    }
}

/// The subfolders of the suite that are not tests: the template and GLOBAL folders, by name and
/// by canonical path (an explicit folder may be a symlink to, or the target of, a subfolder).
struct NotTests {
    names: Vec<String>,
    canonical: Vec<PathBuf>,
}

impl NotTests {
    fn new(folders: &[Option<&Path>]) -> Self {
        let mut names = vec![TEMPLATES_FOLDER.to_string(), GLOBAL_FOLDER.to_string()];
        let mut canonical = Vec::new();
        for folder in folders.iter().flatten() {
            if let Some(name) = folder.file_name() {
                names.push(name.to_string_lossy().into_owned());
            }
            if let Ok(c) = fs::canonicalize(folder) {
                canonical.push(c);
            }
        }
        NotTests { names, canonical }
    }

    fn contains(&self, name: &str, path: &Path) -> bool {
        self.names.iter().any(|n| n == name)
            || fs::canonicalize(path).is_ok_and(|c| self.canonical.contains(&c))
    }
}

/// One test: its plan from the names of its files (regular files and symlinks to files).
fn collect_test(name: TestName, folder: PathBuf) -> TestPlan {
    match file_names(&folder) {
        Ok(files) => plan_test(name, folder, &files),
        Err(e) => {
            let message = format!("read {}: {e}", folder.display());
            let mut plan = plan_test(name, folder, &[]);
            plan.definition_error = Some(message);
            plan
        }
    }
}

/// The names of the files in `folder`, following symlinks; names that are not UTF-8 are left
/// out (no scenario, script or data file the tool looks for has one).
fn file_names(folder: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(folder)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const ORIGINAL: &str = "/work/shared/compat/original-tmp-testsuite";

    fn opts(root: &Path) -> CollectOptions {
        CollectOptions {
            testsuite: root.to_path_buf(),
            template_folder: None,
            global_folder: None,
            only: vec![],
            exclude: vec![],
        }
    }

    fn res(v: &[&str]) -> Vec<Regex> {
        v.iter().map(|r| Regex::new(r).unwrap()).collect()
    }

    fn names(s: &Suite) -> Vec<&str> {
        s.tests.iter().map(|t| t.name.0.as_str()).collect()
    }

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "x").unwrap();
    }

    #[test]
    fn the_original_example_suite() {
        let root = Path::new(ORIGINAL);
        // Part of the project's layout (../shared beside the repository): a test that cannot
        // run fails rather than pass without doing anything.
        assert!(root.is_dir(), "{ORIGINAL} not present");
        let s = collect(&opts(root)).unwrap();
        assert_eq!(
            names(&s),
            [
                "normal-0000",
                "normal-0001",
                "normal-dns-0000",
                "options-0000",
                "options-0001"
            ]
        );
        assert_eq!(s.template_folder, Some(root.join("TEMPLATES")));
        assert_eq!(
            s.global,
            Some(GlobalPlan {
                folder: root.join("GLOBAL")
            })
        );
        assert_eq!(s.info_file, Some(root.join("users.csv")));
        assert_eq!(s.root, root);
        for t in &s.tests {
            assert_eq!(t.definition_error, None, "{}", t.name);
            assert_eq!(t.folder, root.join(&t.name.0));
        }
        let n0 = &s.tests[0];
        let files: Vec<_> = n0.run_groups[0]
            .scenarios
            .iter()
            .map(|s| s.file.as_str())
            .collect();
        assert_eq!(files, ["uas_ua0.xml", "uas_ua1.xml", "uac_ua2.xml"]);
        let uas: Vec<_> = s.tests[4].uas.iter().map(|u| u.0.as_str()).collect();
        assert_eq!(uas, ["ua0", "ua1", "ua2"]);
    }

    #[test]
    fn patterns_match_at_the_start_and_exclude_wins() {
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            (
                &[],
                &[],
                &[
                    "normal-0000",
                    "normal-0001",
                    "normal-dns-0000",
                    "options-0000",
                ],
            ),
            (
                &["normal"],
                &[],
                &["normal-0000", "normal-0001", "normal-dns-0000"],
            ),
            // re.match: anchored at the start only, not at the end.
            (&["0000"], &[], &[]),
            (&["normal-0"], &[], &["normal-0000", "normal-0001"]),
            (
                &[".*0000$"],
                &[],
                &["normal-0000", "normal-dns-0000", "options-0000"],
            ),
            (
                &["options", "normal-d"],
                &[],
                &["normal-dns-0000", "options-0000"],
            ),
            (&[], &["normal"], &["options-0000"]),
            (
                &[],
                &["dns"],
                &[
                    "normal-0000",
                    "normal-0001",
                    "normal-dns-0000",
                    "options-0000",
                ],
            ),
            (
                &["normal"],
                &["normal-0001", "normal-dns"],
                &["normal-0000"],
            ),
            (&["options"], &["opt"], &[]),
            // an empty match at offset 0 is a match, as in Python.
            (
                &["x*"],
                &[],
                &[
                    "normal-0000",
                    "normal-0001",
                    "normal-dns-0000",
                    "options-0000",
                ],
            ),
            // leftmost match not at 0 but another at 0: `b|ab` on "ab..."
            (
                &["0|normal"],
                &[],
                &["normal-0000", "normal-0001", "normal-dns-0000"],
            ),
        ];
        let all = [
            "normal-0000",
            "normal-0001",
            "normal-dns-0000",
            "options-0000",
        ];
        for (only, exclude, want) in cases {
            let (only, exclude) = (res(only), res(exclude));
            let got: Vec<_> = all
                .iter()
                .copied()
                .filter(|n| selected(n, &only, &exclude))
                .collect();
            assert_eq!(&got, want, "only {only:?} exclude {exclude:?}");
        }
    }

    #[test]
    fn patterns_filter_the_collected_tests() {
        let root = Path::new(ORIGINAL);
        assert!(root.is_dir(), "{ORIGINAL} not present");
        let mut o = opts(root);
        o.only = res(&["normal", "options-0001"]);
        o.exclude = res(&["normal-dns"]);
        let s = collect(&o).unwrap();
        assert_eq!(names(&s), ["normal-0000", "normal-0001", "options-0001"]);
    }

    #[test]
    fn folders_symlinks_hidden_and_special_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("b-test/uac_ua0.xml"));
        touch(&root.join("a-test/uas_ua0.xml"));
        touch(&root.join("a-test/uac_ua1.xml"));
        touch(&root.join(".hidden/uac_ua0.xml"));
        touch(&root.join("TEMPLATES/x.jinja2"));
        touch(&root.join("GLOBAL/before.sh"));
        touch(&root.join("not-a-folder.txt"));
        touch(&root.join("users.csv"));
        touch(&root.join("elsewhere/real/uac_ua0.xml"));
        fs::create_dir(root.join("Z-empty")).unwrap();
        symlink(root.join("elsewhere/real"), root.join("c-linked")).unwrap();
        symlink(root.join("nowhere"), root.join("d-dangling")).unwrap();
        // a symlinked file counts under its own name (uac_ua1.xml is a UAC scenario)
        symlink("uac_ua0.xml", root.join("b-test/uac_ua1.xml")).unwrap();
        symlink("missing.xml", root.join("b-test/uac_ua2.xml")).unwrap();

        let s = collect(&opts(root)).unwrap();
        // byte order: upper case first
        assert_eq!(
            names(&s),
            ["Z-empty", "a-test", "b-test", "c-linked", "elsewhere"]
        );
        assert!(s.tests[0]
            .definition_error
            .as_deref()
            .unwrap()
            .starts_with("no scenario in "));
        let b: Vec<_> = s.tests[2].run_groups[0]
            .scenarios
            .iter()
            .map(|s| s.file.as_str())
            .collect();
        assert_eq!(b, ["uac_ua0.xml", "uac_ua1.xml"]);
        assert_eq!(s.tests[3].folder, root.join("c-linked"));
        assert_eq!(s.tests[3].definition_error, None);
        assert_eq!(s.template_folder, Some(root.join("TEMPLATES")));
        assert_eq!(s.global.as_ref().unwrap().folder, root.join("GLOBAL"));
        assert_eq!(s.info_file, Some(root.join("users.csv")));
    }

    #[test]
    fn explicit_folders_are_not_tests_by_path_or_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("suite");
        touch(&root.join("t1/uac_ua0.xml"));
        touch(&root.join("my-templates/x.jinja2"));
        touch(&root.join("shared/before.sh"));
        touch(&dir.path().join("outside/glob/before.sh"));
        touch(&root.join("glob/uac_ua0.xml"));
        // a subfolder that is a symlink to the explicit template folder is not a test either
        symlink(root.join("my-templates"), root.join("tpl-link")).unwrap();

        let mut o = opts(&root);
        o.template_folder = Some(root.join("my-templates"));
        o.global_folder = Some(dir.path().join("outside/glob"));
        let s = collect(&o).unwrap();
        assert_eq!(names(&s), ["shared", "t1"]);
        assert_eq!(s.template_folder, o.template_folder);
        assert_eq!(s.global.unwrap().folder, dir.path().join("outside/glob"));
        assert_eq!(s.info_file, None);
    }

    #[test]
    fn no_template_or_global_folder() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("t/uac_ua0.xml"));
        let s = collect(&opts(dir.path())).unwrap();
        assert_eq!(s.template_folder, None);
        assert_eq!(s.global, None);
        assert_eq!(names(&s), ["t"]);
    }

    #[test]
    fn bad_suite_folders() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = collect(&opts(&missing)).unwrap_err();
        assert_eq!(err.option(), "--testsuite");
        let err = err.to_string();
        assert!(
            err.starts_with(&format!("test suite {}: ", missing.display())),
            "{err}"
        );
        assert!(err.contains("No such file or directory"), "{err}");

        let file = dir.path().join("file");
        touch(&file);
        let err = collect(&opts(&file)).unwrap_err().to_string();
        assert_eq!(err, format!("test suite {}: not a folder", file.display()));

        let mut o = opts(dir.path());
        o.template_folder = Some(missing.clone());
        let err = collect(&o).unwrap_err();
        assert_eq!(err.option(), "--template-folder");
        let err = err.to_string();
        assert!(
            err.starts_with(&format!("template folder {}: ", missing.display())),
            "{err}"
        );
        let mut o = opts(dir.path());
        o.global_folder = Some(file.clone());
        let err = collect(&o).unwrap_err();
        assert_eq!(err.option(), "--global-test-folder");
        let err = err.to_string();
        assert_eq!(
            err,
            format!("global test folder {}: not a folder", file.display())
        );
    }

    #[test]
    fn unreadable_suite_and_test_folders() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("suite");
        touch(&root.join("t/uac_ua0.xml"));
        fs::set_permissions(root.join("t"), fs::Permissions::from_mode(0o111)).unwrap();
        // root (CAP_DAC_OVERRIDE) reads anything: nothing to check there.
        if fs::read_dir(root.join("t")).is_err() {
            let s = collect(&opts(&root)).unwrap();
            let e = s.tests[0].definition_error.clone().unwrap();
            assert!(
                e.starts_with("read ") && e.contains("Permission denied"),
                "{e}"
            );
            fs::set_permissions(&root, fs::Permissions::from_mode(0o111)).unwrap();
            let err = collect(&opts(&root)).unwrap_err().to_string();
            assert!(err.starts_with("read test suite "), "{err}");
        }
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(root.join("t"), fs::Permissions::from_mode(0o755)).unwrap();
    }
}
