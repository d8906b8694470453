//! Scenario file names (`[<group>_]ua{c,s}_uaN.xml`) and the test plan they make: instances,
//! run groups, and the definition errors a test folder can have.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::PathBuf;

use sipplauncher_actors::core::plan::{Role, RunGroup, Scenario, TestName, TestPlan, UaName};

/// What a scenario file name says: its run group, role and instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioName {
    /// The prefix before the role (`part0` of `part0_uac_ua0.xml`); `""` for no prefix.
    pub run_group: String,
    pub role: Role,
    pub ua: UaName,
}

/// Parses a scenario file name: `^(ua[cs])_(ua[0-9]+)\.xml$` or
/// `^([a-zA-Z0-9]+)_(ua[cs])_(ua[0-9]+)\.xml$`; `None` for any other name.
///
/// Written by hand rather than with a regex so that it cannot panic; a property test checks it
/// against the two regexes.
pub fn parse_scenario_name(name: &str) -> Option<ScenarioName> {
    let stem = name.strip_suffix(".xml")?;
    let parts: Vec<&str> = stem.split('_').collect();
    let (run_group, role, ua) = match parts.as_slice() {
        [role, ua] => ("", *role, *ua),
        [group, role, ua] => (*group, *role, *ua),
        _ => return None,
    };
    if run_group.is_empty() && parts.len() == 3 {
        return None;
    }
    if !run_group.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let role = match role {
        "uac" => Role::Uac,
        "uas" => Role::Uas,
        _ => return None,
    };
    let digits = ua.strip_prefix("ua")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(ScenarioName {
        run_group: run_group.to_string(),
        role,
        ua: UaName(ua.to_string()),
    })
}

/// Whether `name` is a scenario file name (see [`parse_scenario_name`]).
pub fn is_scenario_file(name: &str) -> bool {
    parse_scenario_name(name).is_some()
}

/// Natural order: runs of ASCII digits compare by value (`ua2` < `ua10`), the rest byte-wise;
/// names equal that way (`ua01`, `ua1`) fall back to plain byte order so the order is total.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(cx), Some(cy)) if cx.is_ascii_digit() && cy.is_ascii_digit() => {
                let dx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let dy = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (nx, ny) = (trim_zeros(&x[..dx]), trim_zeros(&y[..dy]));
                // Without leading zeros, a longer run of digits is a bigger number.
                let ord = nx.len().cmp(&ny.len()).then_with(|| nx.cmp(ny));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[dx..];
                y = &y[dy..];
            }
            (Some(cx), Some(cy)) => {
                if cx != cy {
                    return cx.cmp(cy);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

/// Builds a test's plan from the names of the files in its folder; names that are not
/// scenario names are ignored. Problems of the definition go to `definition_error` (the run
/// makes the test NOT READY with it), never to a panic or an `Err`: the run goes on.
pub fn plan_test(name: TestName, folder: PathBuf, file_names: &[String]) -> TestPlan {
    let mut files: Vec<&str> = file_names.iter().map(String::as_str).collect();
    files.sort_unstable();
    files.dedup();

    // run group id -> scenarios; BTreeMap keeps the ids in string order, "" first.
    let mut groups: BTreeMap<String, Vec<Scenario>> = BTreeMap::new();
    for file in files {
        if let Some(parsed) = parse_scenario_name(file) {
            groups.entry(parsed.run_group).or_default().push(Scenario {
                file: file.to_string(),
                role: parsed.role,
                ua: parsed.ua,
            });
        }
    }

    let mut errors = Vec::new();
    if groups.is_empty() {
        errors.push(format!(
            "no scenario in {}: expected files like uac_ua0.xml or part0_uas_ua1.xml",
            folder.display()
        ));
    }

    let mut uas: Vec<UaName> = Vec::new();
    let mut run_groups = Vec::with_capacity(groups.len());
    for (id, mut scenarios) in groups {
        scenarios.sort_by(|a, b| {
            a.role
                .cmp(&b.role)
                .then_with(|| natural_cmp(&a.ua.0, &b.ua.0))
                .then_with(|| a.file.cmp(&b.file))
        });
        errors.extend(duplicate_instances(&id, &scenarios));
        uas.extend(scenarios.iter().map(|s| s.ua.clone()));
        run_groups.push(RunGroup { id, scenarios });
    }
    uas.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    uas.dedup();

    TestPlan {
        name,
        folder,
        uas,
        run_groups,
        definition_error: (!errors.is_empty()).then(|| errors.join("; ")),
    }
}

/// One message per instance that has more than one scenario in the run group `id`.
fn duplicate_instances(id: &str, scenarios: &[Scenario]) -> Vec<String> {
    let mut by_ua: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in scenarios {
        by_ua.entry(&s.ua.0).or_default().push(&s.file);
    }
    let mut dups: Vec<(&str, Vec<&str>)> = by_ua.into_iter().filter(|(_, f)| f.len() > 1).collect();
    dups.sort_by(|a, b| natural_cmp(a.0, b.0));
    dups.into_iter()
        .map(|(ua, mut files)| {
            files.sort_unstable();
            let group = if id.is_empty() {
                String::new()
            } else {
                format!("run group \"{id}\": ")
            };
            let count = match files.len() {
                2 => "two".to_string(),
                n => n.to_string(),
            };
            let listed = match files.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    format!("{} and {last}", rest.join(", "))
                }
                _ => files.join(""),
            };
            format!("{group}instance {ua} has {count} scenarios: {listed}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::Regex;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn plan(files: &[&str]) -> TestPlan {
        plan_test(
            TestName("t".into()),
            PathBuf::from("/suite/t"),
            &names(files),
        )
    }

    /// (run group, file, role, ua) of every scenario, in plan order.
    fn flat(p: &TestPlan) -> Vec<(String, String, Role, String)> {
        p.run_groups
            .iter()
            .flat_map(|g| {
                g.scenarios
                    .iter()
                    .map(|s| (g.id.clone(), s.file.clone(), s.role, s.ua.0.clone()))
            })
            .collect()
    }

    #[test]
    fn parse_table() {
        type Want = Option<(&'static str, Role, &'static str)>;
        let cases: &[(&str, Want)] = &[
            ("uac_ua0.xml", Some(("", Role::Uac, "ua0"))),
            ("uas_ua12.xml", Some(("", Role::Uas, "ua12"))),
            ("part0_uac_ua1.xml", Some(("part0", Role::Uac, "ua1"))),
            ("A9_uas_ua007.xml", Some(("A9", Role::Uas, "ua007"))),
            ("uac_ua.xml", None),
            ("uac_uaX.xml", None),
            ("uax_ua0.xml", None),
            ("UAC_ua0.xml", None),
            ("uac_ua0.XML", None),
            ("uac_ua0.xml.bak", None),
            ("uac_ua0xml", None),
            ("_uac_ua0.xml", None),
            ("part-0_uac_ua0.xml", None),
            ("a_b_uac_ua0.xml", None),
            ("uac_ua0_x.xml", None),
            ("uac_ua١.xml", None), // a non-ASCII digit
            ("before.sh", None),
            ("dns.txt", None),
            ("", None),
        ];
        for (name, want) in cases {
            let got = parse_scenario_name(name);
            let want = want.map(|(g, role, ua)| ScenarioName {
                run_group: g.to_string(),
                role,
                ua: UaName(ua.to_string()),
            });
            assert_eq!(got, want, "{name}");
            assert_eq!(is_scenario_file(name), want.is_some(), "{name}");
        }
    }

    /// Names close to scenario names, and some that are.
    const NAMES: &str = "([a-zA-Z0-9_]{0,4}_)?(ua[cs]|ua|uax)_(ua[0-9]{0,3}|x)(\\.xml|\\.xm|)";

    proptest! {
        #[test]
        fn parse_agrees_with_the_regexes(name in NAMES) {
            let plain = Regex::new(r"^(ua[cs])_(ua[0-9]+)\.xml$").unwrap();
            let grouped = Regex::new(r"^([a-zA-Z0-9]+)_(ua[cs])_(ua[0-9]+)\.xml$").unwrap();
            let want = if let Some(c) = plain.captures(&name) {
                Some((String::new(), c[1].to_string(), c[2].to_string()))
            } else {
                grouped
                    .captures(&name)
                    .map(|c| (c[1].to_string(), c[2].to_string(), c[3].to_string()))
            };
            let got = parse_scenario_name(&name)
                .map(|p| (p.run_group, p.role.as_str().to_string(), p.ua.0));
            prop_assert_eq!(got, want);
        }

        #[test]
        fn natural_cmp_is_a_total_order(
            mut v in proptest::collection::vec("(ua|x)?[0-9]{0,3}", 0..8)
        ) {
            v.sort_by(|a, b| natural_cmp(a, b));
            for w in v.windows(2) {
                prop_assert_ne!(natural_cmp(&w[0], &w[1]), Ordering::Greater);
                prop_assert_eq!(
                    natural_cmp(&w[0], &w[1]),
                    natural_cmp(&w[1], &w[0]).reverse()
                );
            }
        }
    }

    #[test]
    fn natural_order_table() {
        let cases = [
            ("ua2", "ua10", Ordering::Less),
            ("ua10", "ua9", Ordering::Greater),
            ("ua1", "ua1", Ordering::Equal),
            ("ua01", "ua1", Ordering::Less), // equal numbers: byte order
            ("ua", "ua0", Ordering::Less),
            ("a", "b", Ordering::Less),
            (
                "ua99999999999999999999999",
                "ua100000000000000000000000",
                Ordering::Less,
            ),
        ];
        for (a, b, want) in cases {
            assert_eq!(natural_cmp(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn single_group_uas_first_then_uac_in_natural_order() {
        let p = plan(&[
            "uac_ua10.xml",
            "uac_ua2.xml",
            "uas_ua1.xml",
            "uas_ua0.xml",
            "before.sh",
            "dns.txt",
        ]);
        assert_eq!(p.definition_error, None);
        assert_eq!(p.run_groups.len(), 1);
        assert_eq!(p.run_groups[0].id, "");
        let order: Vec<_> = flat(&p).into_iter().map(|s| s.1).collect();
        assert_eq!(
            order,
            ["uas_ua0.xml", "uas_ua1.xml", "uac_ua2.xml", "uac_ua10.xml"]
        );
        let uas: Vec<_> = p.uas.iter().map(|u| u.0.as_str()).collect();
        assert_eq!(uas, ["ua0", "ua1", "ua2", "ua10"]);
        assert_eq!(p.name, TestName("t".into()));
        assert_eq!(p.folder, PathBuf::from("/suite/t"));
    }

    #[test]
    fn run_groups_by_id_and_instances_shared_across_them() {
        let p = plan(&[
            "part1_uas_ua0.xml",
            "part0_uac_ua1.xml",
            "part0_uas_ua0.xml",
            "part1_uac_ua1.xml",
            "uac_ua3.xml",
        ]);
        assert_eq!(p.definition_error, None);
        let ids: Vec<_> = p.run_groups.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["", "part0", "part1"]);
        assert_eq!(
            flat(&p),
            [
                ("".into(), "uac_ua3.xml".into(), Role::Uac, "ua3".into()),
                (
                    "part0".into(),
                    "part0_uas_ua0.xml".into(),
                    Role::Uas,
                    "ua0".into()
                ),
                (
                    "part0".into(),
                    "part0_uac_ua1.xml".into(),
                    Role::Uac,
                    "ua1".into()
                ),
                (
                    "part1".into(),
                    "part1_uas_ua0.xml".into(),
                    Role::Uas,
                    "ua0".into()
                ),
                (
                    "part1".into(),
                    "part1_uac_ua1.xml".into(),
                    Role::Uac,
                    "ua1".into()
                ),
            ]
        );
        let uas: Vec<_> = p.uas.iter().map(|u| u.0.as_str()).collect();
        assert_eq!(uas, ["ua0", "ua1", "ua3"]);
    }

    #[test]
    fn two_scenarios_of_one_instance_in_one_run_group() {
        let p = plan(&[
            "part0_uas_ua1.xml",
            "part0_uac_ua1.xml",
            "part1_uac_ua1.xml",
        ]);
        assert_eq!(
            p.definition_error.as_deref(),
            Some(
                "run group \"part0\": instance ua1 has two scenarios: part0_uac_ua1.xml and \
                 part0_uas_ua1.xml"
            )
        );
        let p = plan(&["uas_ua1.xml", "uac_ua1.xml", "uas_ua2.xml", "uac_ua2.xml"]);
        assert_eq!(
            p.definition_error.as_deref(),
            Some(
                "instance ua1 has two scenarios: uac_ua1.xml and uas_ua1.xml; \
                 instance ua2 has two scenarios: uac_ua2.xml and uas_ua2.xml"
            )
        );
    }

    #[test]
    fn no_scenario_is_a_definition_error() {
        for files in [&[][..], &["before.sh", "uac_ua0.xml.orig", "README"][..]] {
            let p = plan(files);
            assert_eq!(
                p.definition_error.as_deref(),
                Some(
                    "no scenario in /suite/t: expected files like uac_ua0.xml or \
                     part0_uas_ua1.xml"
                )
            );
            assert!(p.run_groups.is_empty());
            assert!(p.uas.is_empty());
        }
    }

    #[test]
    fn duplicate_file_names_count_once() {
        let p = plan(&["uac_ua0.xml", "uac_ua0.xml"]);
        assert_eq!(p.definition_error, None);
        assert_eq!(p.run_groups[0].scenarios.len(), 1);
    }
}
