//! `--rerun-failed REPORT.json`: the tests that did not pass in a JSON report (a run's own or a
//! merge's), to run only those again. A test did not pass when one of its runs did not (a FLAKY
//! run, passed on a retry, passed), or when the report was to run it and has no run of it (the
//! run was cut short before it).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::merge::Part;

/// What a report says is to run again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rerun {
    /// The names of the tests that did not pass.
    pub tests: BTreeSet<String>,
}

impl Rerun {
    /// Reads `path` (a whole sipplauncher JSON report, else one line saying what is wrong).
    pub fn read(path: &Path) -> Result<Rerun, String> {
        let part = Part::read(path).map_err(|e| e.to_string())?;
        Ok(Rerun::of(&Value::Object(part.doc)))
    }

    /// The tests of `report` that did not pass.
    pub fn of(report: &Value) -> Rerun {
        let runs = report["tests"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut tests: BTreeSet<String> = runs
            .iter()
            .filter(|r| r["passed"].as_bool() != Some(true))
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect();
        let ran: BTreeSet<&str> = runs.iter().filter_map(|r| r["name"].as_str()).collect();
        let planned = report["planned"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        tests.extend(
            planned
                .iter()
                .filter_map(Value::as_str)
                .filter(|n| !ran.contains(n))
                .map(str::to_string),
        );
        Rerun { tests }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failed_not_ready_and_never_run_tests_are_rerun_passed_and_flaky_are_not() {
        let report = json!({
            "tool": "sipplauncher",
            "planned": ["a", "b", "c", "d", "e", "f"],
            "tests": [
                {"name": "a", "passed": true},
                {"name": "b", "passed": false, "result": "FAIL"},
                {"name": "c", "passed": false, "result": "NOT READY"},
                // Passed once, failed once (--total): did not pass.
                {"name": "d", "passed": true},
                {"name": "d", "passed": false},
                // FLAKY: passed on a retry.
                {"name": "e", "passed": true, "flaky": true},
                // "f" never ran (the run was interrupted before it).
            ],
        });
        let r = Rerun::of(&report);
        assert_eq!(
            r.tests.iter().map(String::as_str).collect::<Vec<_>>(),
            ["b", "c", "d", "f"]
        );
        // A report without "planned" (an older one): its runs only.
        let older =
            json!({"tests": [{"name": "x", "passed": false}, {"name": "y", "passed": true}]});
        assert_eq!(
            Rerun::of(&older).tests.into_iter().collect::<Vec<_>>(),
            ["x"]
        );
    }

    #[test]
    fn a_bad_report_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let cut = dir.path().join("cut.json");
        std::fs::write(&cut, "{\"tool\": \"sipplauncher\", \"tests\": [").unwrap();
        let e = Rerun::read(&cut).unwrap_err();
        assert!(e.contains("cut.json: not a whole JSON document"), "{e}");
        assert!(!e.contains('\n'));
        let e = Rerun::read(&dir.path().join("none.json")).unwrap_err();
        assert!(e.ends_with("none.json: no such file"), "{e}");
    }
}
