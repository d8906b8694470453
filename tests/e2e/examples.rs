//! The examples of `examples/` (issue 12): a GitLab CI pipeline, a GitHub Actions workflow, a
//! Kubernetes Indexed Job, and the image they run (`examples/Dockerfile`).
//! - Every YAML file parses and holds what its example relies on (the fields CI or Kubernetes
//!   reads to split the suite, the capabilities, the shared volume, the merge after the shards).
//! - The commands the examples run are run here as their engines would run them (the shard
//!   commands with each index, then the merge), in dry runs of the example suite: the shards
//!   cover the suite once and the merge joins them.
//! - The image is built (buildah, from Debian's packages) and runs the example suite against
//!   the lab's Kamailio, with SIPp and the key-log library from the image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use yaml_rust2::{Yaml, YamlLoader};

use crate::common::*;
use crate::lab::{have, is_root, wait_with_timeout, Lab};
use crate::real::show;
use crate::scale::{read_json, run_names};

fn examples() -> PathBuf {
    repo().join("examples")
}

/// The one document of a YAML file of `examples/`.
fn yaml(rel: &str) -> Yaml {
    let path = examples().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(docs.len(), 1, "{rel}: one document");
    docs.remove(0)
}

fn s<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str()
        .unwrap_or_else(|| panic!("{what}: a string expected, got {y:?}"))
}

fn list<'a>(y: &'a Yaml, what: &str) -> &'a Vec<Yaml> {
    y.as_vec()
        .unwrap_or_else(|| panic!("{what}: a list expected, got {y:?}"))
}

/// The strings of a list.
fn strings(y: &Yaml, what: &str) -> Vec<String> {
    list(y, what)
        .iter()
        .map(|v| s(v, what).to_string())
        .collect()
}

/// The YAML files of `examples/`, relative to it.
fn yaml_files() -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![examples()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                out.push(
                    p.strip_prefix(examples())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_example_yaml_parses_and_holds_what_it_relies_on() {
    // Every YAML file is checked below: a new one must be added here.
    assert_eq!(
        yaml_files(),
        [
            "ci/github-actions.yml",
            "ci/gitlab-ci.yml",
            "k8s/data-pod.yaml",
            "k8s/dns-service.yaml",
            "k8s/merge-job.yaml",
            "k8s/reports-pvc.yaml",
            "k8s/shards-job.yaml",
        ]
    );

    // GitLab: `parallel:` shards, each naming CI_NODE_INDEX/CI_NODE_TOTAL, reports kept even
    // when a shard fails; the merge after them, always, its JUnit a report of the pipeline.
    let g = yaml("ci/gitlab-ci.yml");
    let shard = &g["sip-shard"];
    assert!(
        shard["parallel"].as_i64().is_some_and(|n| n >= 2),
        "parallel"
    );
    let script = strings(&shard["script"], "sip-shard.script").join("\n");
    assert!(
        script.contains("--shard \"$CI_NODE_INDEX/$CI_NODE_TOTAL\""),
        "{script}"
    );
    assert!(
        script.contains("--json \"shard-$CI_NODE_INDEX.json\""),
        "{script}"
    );
    assert_eq!(s(&shard["artifacts"]["when"], "artifacts.when"), "always");
    assert_eq!(
        strings(&shard["artifacts"]["paths"], "paths"),
        ["shard-*.json"]
    );
    let report = &g["sip-report"];
    let stages = strings(&g["stages"], "stages");
    let stage = |job: &Yaml| {
        let name = s(&job["stage"], "stage");
        stages
            .iter()
            .position(|x| x == name)
            .expect("a known stage")
    };
    assert!(
        stage(report) > stage(shard),
        "the merge comes after the shards"
    );
    assert_eq!(s(&report["when"], "sip-report.when"), "always");
    assert_eq!(
        s(&list(&report["needs"], "needs")[0]["job"], "needs.job"),
        "sip-shard"
    );
    let merge = strings(&report["script"], "sip-report.script").join("\n");
    assert!(
        merge.contains("sipplauncher merge --json suite.json --junit suite.xml"),
        "{merge}"
    );
    assert_eq!(
        s(&report["artifacts"]["reports"]["junit"], "reports.junit"),
        "suite.xml"
    );

    // GitHub Actions: a matrix of shards 1..N, none cancelled by another's failure, with the
    // capabilities; the merge needs them and runs always.
    let w = yaml("ci/github-actions.yml");
    let job = &w["jobs"]["shard"];
    let matrix: Vec<i64> = list(&job["strategy"]["matrix"]["shard"], "matrix.shard")
        .iter()
        .map(|v| v.as_i64().expect("a shard number"))
        .collect();
    assert_eq!(matrix, (1..=matrix.len() as i64).collect::<Vec<_>>());
    assert_eq!(job["strategy"]["fail-fast"].as_bool(), Some(false));
    let options = s(&job["container"]["options"], "container.options");
    for cap in ["--cap-add NET_ADMIN", "--cap-add NET_RAW", "--network host"] {
        assert!(options.contains(cap), "{options}");
    }
    let run_step = shard_step(&w);
    assert!(
        run_step.contains("--shard \"${{ matrix.shard }}/${{ strategy.job-total }}\""),
        "{run_step}"
    );
    let upload = list(&job["steps"], "steps")
        .iter()
        .find(|st| {
            st["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        })
        .expect("an upload step");
    assert_eq!(s(&upload["if"], "upload.if"), "always()");
    let merge_job = &w["jobs"]["merge"];
    assert_eq!(s(&merge_job["needs"], "merge.needs"), "shard");
    assert_eq!(s(&merge_job["if"], "merge.if"), "always()");
    assert!(merge_step(&w).starts_with("sipplauncher merge "));

    // Kubernetes: an Indexed Job of N pods at once, on the DUT's network, with the
    // capabilities, the shard from JOB_COMPLETION_INDEX, reports on the shared volume.
    let j = yaml("k8s/shards-job.yaml");
    assert_eq!(s(&j["apiVersion"], "apiVersion"), "batch/v1");
    assert_eq!(s(&j["kind"], "kind"), "Job");
    assert_eq!(s(&j["spec"]["completionMode"], "completionMode"), "Indexed");
    let n = j["spec"]["completions"].as_i64().expect("completions");
    assert_eq!(
        j["spec"]["parallelism"].as_i64(),
        Some(n),
        "all shards at once"
    );
    assert_eq!(j["spec"]["backoffLimit"].as_i64(), Some(0));
    let pod = &j["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"].as_bool(), Some(true));
    assert_eq!(s(&pod["restartPolicy"], "restartPolicy"), "Never");
    let c = &list(&pod["containers"], "containers")[0];
    let caps = strings(
        &c["securityContext"]["capabilities"]["add"],
        "capabilities.add",
    );
    assert_eq!(caps, ["NET_ADMIN", "NET_RAW"]);
    assert_eq!(env_of(c)["SHARDS"], n.to_string());
    let command = strings(&c["command"], "command");
    assert!(
        command[2].contains("--shard \"$((JOB_COMPLETION_INDEX + 1))/$SHARDS\""),
        "{command:?}"
    );
    let claim = |doc: &Yaml| {
        let spec = &doc["spec"]["template"]["spec"];
        let spec = if spec.is_badvalue() {
            &doc["spec"]
        } else {
            spec
        };
        s(
            &list(&spec["volumes"], "volumes")[0]["persistentVolumeClaim"]["claimName"],
            "claimName",
        )
        .to_string()
    };
    let pvc = yaml("k8s/reports-pvc.yaml");
    assert_eq!(s(&pvc["kind"], "kind"), "PersistentVolumeClaim");
    assert_eq!(
        strings(&pvc["spec"]["accessModes"], "accessModes"),
        ["ReadWriteMany"]
    );
    let volume = s(&pvc["metadata"]["name"], "pvc name").to_string();
    let merge_job = yaml("k8s/merge-job.yaml");
    let data_pod = yaml("k8s/data-pod.yaml");
    for doc in [&j, &merge_job, &data_pod] {
        assert_eq!(claim(doc), volume, "every pod mounts the shared volume");
    }
    let mc = &list(
        &merge_job["spec"]["template"]["spec"]["containers"],
        "containers",
    )[0];
    assert_eq!(env_of(mc)["SHARDS"], n.to_string());
    assert!(strings(&mc["command"], "command")[2].contains("sipplauncher merge"));
    // The DUT's resolver reaches the pod of index 0 (shard 1, where the dns.txt tests run).
    let dns = yaml("k8s/dns-service.yaml");
    let sel = &dns["spec"]["selector"];
    assert_eq!(
        s(&sel["job-name"], "job-name"),
        s(&j["metadata"]["name"], "name")
    );
    assert_eq!(
        s(&sel["batch.kubernetes.io/job-completion-index"], "index"),
        "0"
    );
    let ports: Vec<(String, i64)> = list(&dns["spec"]["ports"], "ports")
        .iter()
        .map(|p| {
            (
                s(&p["protocol"], "protocol").to_string(),
                p["port"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, [("UDP".to_string(), 53), ("TCP".to_string(), 53)]);

    // The image: Debian, SIPp from sip-tester, the binary and the key-log library where
    // sipplauncher looks for it.
    let docker = std::fs::read_to_string(examples().join("Dockerfile")).unwrap();
    for line in [
        "ARG BASE=debian:",
        "FROM ${BASE}",
        "apt-get install -y --no-install-recommends sip-tester",
        "COPY sipplauncher /usr/local/bin/sipplauncher",
        "COPY libsipplauncher_keylog.so /usr/local/lib/sipplauncher/libsipplauncher_keylog.so",
    ] {
        assert!(docker.contains(line), "{line} in examples/Dockerfile");
    }
}

/// A container's `env` list as a map.
fn env_of(container: &Yaml) -> BTreeMap<String, String> {
    list(&container["env"], "env")
        .iter()
        .map(|e| {
            (
                s(&e["name"], "name").to_string(),
                s(&e["value"], "value").to_string(),
            )
        })
        .collect()
}

/// The `run:` of the GitHub shard job's step that calls sipplauncher.
fn shard_step(w: &Yaml) -> String {
    run_of(&w["jobs"]["shard"], "sipplauncher --")
}

fn merge_step(w: &Yaml) -> String {
    run_of(&w["jobs"]["merge"], "sipplauncher merge")
}

fn run_of(job: &Yaml, starts: &str) -> String {
    list(&job["steps"], "steps")
        .iter()
        .filter_map(|st| st["run"].as_str())
        .find(|r| r.starts_with(starts))
        .unwrap_or_else(|| panic!("a step that runs {starts}"))
        .to_string()
}

/// Runs `script` with `sh -c` in `dir`, with our sipplauncher first on PATH and `env`.
fn sh(script: &str, dir: &Path, env: &[(String, String)]) -> Run {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd)
}

/// The merged report in `dir` holds each test of the example suite once, from `shards` shards;
/// JUnit and HTML beside it.
fn check_merged(dir: &Path, shards: usize, what: &str) {
    let v = read_json(&dir.join("suite.json"));
    let mut names = run_names(&v);
    names.sort();
    assert_eq!(
        names,
        [
            "call-0000",
            "call-twogroups-0000",
            "dns-0000",
            "options-0000"
        ],
        "{what}"
    );
    assert_eq!(v["merged_from"].as_array().unwrap().len(), shards, "{what}");
    assert!(
        dir.join("suite.xml").is_file() && dir.join("suite.html").is_file(),
        "{what}"
    );
}

/// The commands of the three examples, run as their engines would (each shard with its index,
/// then the merge), in dry runs of the example suite; the merge joins them.
#[test]
fn the_examples_commands_shard_and_merge_the_example_suite() {
    let sb = Sandbox::new();
    let suite = repo().join("tmp-testsuite").display().to_string();
    let options = format!(
        "--dry-run --run-root {} --log-file {}",
        sb.run_root().display(),
        sb.log().display()
    );
    // An example's variables, but the suite (the example suite here) and the options (a dry
    // run in the sandbox).
    let here = |vars: Vec<(String, String)>| -> Vec<(String, String)> {
        vars.into_iter()
            .map(|(k, v)| match k.as_str() {
                "SUITE" => (k, suite.clone()),
                "SIPPLAUNCHER_OPTIONS" => (k, options.clone()),
                _ => (k, v),
            })
            .collect()
    };

    // GitLab CI: the script of `sip-shard` in each of its `parallel:` jobs, then `sip-report`'s.
    let g = yaml("ci/gitlab-ci.yml");
    let dir = sb.path("gitlab");
    std::fs::create_dir(&dir).unwrap();
    let n = g["sip-shard"]["parallel"].as_i64().unwrap();
    let vars = here(
        g["variables"]
            .as_hash()
            .unwrap()
            .iter()
            .map(|(k, v)| (s(k, "variable").into(), s(v, "value").into()))
            .collect(),
    );
    for k in 1..=n {
        let mut env = vars.clone();
        env.push(("CI_NODE_INDEX".into(), k.to_string()));
        env.push(("CI_NODE_TOTAL".into(), n.to_string()));
        for line in strings(&g["sip-shard"]["script"], "script") {
            let r = sh(&line, &dir, &env);
            assert_eq!(r.status, 0, "gitlab shard {k}: {}", show(&r));
        }
    }
    for line in strings(&g["sip-report"]["script"], "script") {
        let r = sh(&line, &dir, &vars);
        assert_eq!(r.status, 0, "gitlab merge: {}", show(&r));
    }
    check_merged(&dir, n as usize, "gitlab");

    // GitHub Actions: the shard step with each matrix value (the expressions as Actions
    // substitutes them), the workflow's env, then the merge step.
    let w = yaml("ci/github-actions.yml");
    let dir = sb.path("github");
    std::fs::create_dir(&dir).unwrap();
    let matrix = list(&w["jobs"]["shard"]["strategy"]["matrix"]["shard"], "matrix").len();
    let env = here(
        w["env"]
            .as_hash()
            .unwrap()
            .iter()
            .map(|(k, v)| (s(k, "env").into(), s(v, "value").into()))
            .collect(),
    );
    for k in 1..=matrix {
        let step = shard_step(&w)
            .replace("${{ matrix.shard }}", &k.to_string())
            .replace("${{ strategy.job-total }}", &matrix.to_string());
        assert!(!step.contains("${{"), "an expression left: {step}");
        let r = sh(&step, &dir, &env);
        assert_eq!(r.status, 0, "github shard {k}: {}", show(&r));
    }
    let r = sh(&merge_step(&w), &dir, &env);
    assert_eq!(r.status, 0, "github merge: {}", show(&r));
    check_merged(&dir, matrix, "github");

    // Kubernetes: the shard container's command with each JOB_COMPLETION_INDEX and its env
    // (the shared volume's folders here), then the merge Job's.
    let j = yaml("k8s/shards-job.yaml");
    let dir = sb.path("k8s");
    std::fs::create_dir(&dir).unwrap();
    let c = &list(&j["spec"]["template"]["spec"]["containers"], "containers")[0];
    let command = strings(&c["command"], "command");
    assert_eq!(command[..2], ["sh", "-c"]);
    let local = |map: BTreeMap<String, String>| {
        let mut env = here(map.into_iter().collect());
        for (k, v) in env.iter_mut() {
            if k == "REPORTS" {
                *v = dir.display().to_string();
            }
        }
        env
    };
    let completions = j["spec"]["completions"].as_i64().unwrap();
    for index in 0..completions {
        let mut env = local(env_of(c));
        env.push(("JOB_COMPLETION_INDEX".into(), index.to_string()));
        let r = sh(&command[2], Path::new("/"), &env);
        assert_eq!(r.status, 0, "k8s index {index}: {}", show(&r));
    }
    let m = yaml("k8s/merge-job.yaml");
    let mc = &list(&m["spec"]["template"]["spec"]["containers"], "containers")[0];
    let merge = strings(&mc["command"], "command");
    let r = sh(&merge[2], Path::new("/"), &local(env_of(mc)));
    assert_eq!(r.status, 0, "k8s merge: {}", show(&r));
    check_merged(&dir, completions as usize, "k8s");
}

/// Why the image cannot be built here, or `None` when it can.
fn no_builder() -> Option<String> {
    if !is_root() {
        return Some("not root".into());
    }
    let missing: Vec<&str> = ["buildah", "debootstrap"]
        .into_iter()
        .filter(|p| !have(p))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "{} not installed (apt-get install -y buildah debootstrap)",
            missing.join(", ")
        )
    })
}

/// The image of examples/Dockerfile, built with buildah from Debian's packages (the base made
/// with debootstrap once, kept for later builds), runs the example suite against the lab's
/// Kamailio: SIPp, the DNS server and the capture from inside the image, with only the
/// capabilities the README names.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn the_image_builds_and_runs_the_example_suite_against_the_lab() {
    if let Some(why) = no_builder() {
        panic!("the image cannot be built here: {why}");
    }
    let lab = Lab::up("the_image_runs_the_example_suite");
    let tag = format!("localhost/sipplauncher:e2e-{}", std::process::id());
    let out = Command::new("bash")
        .arg(examples().join("build-image.sh"))
        .arg(&tag)
        .env("BASE", "debootstrap")
        .env("BUILDER", "buildah")
        .env("SIPPLAUNCHER_BIN", BIN)
        .env("KEYLOG_LIB", crate::tls::keylog_library())
        .stdin(Stdio::null())
        .output()
        .expect("examples/build-image.sh");
    assert!(
        out.status.success(),
        "build-image.sh: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let made = Command::new("buildah")
        .args(["from", &tag])
        .output()
        .expect("buildah from");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let ctr = String::from_utf8_lossy(&made.stdout).trim().to_string();
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path("out")).unwrap();
    let mut cmd = Command::new("buildah");
    cmd.args(["run", "--isolation", "chroot"])
        .args(["--cap-add", "CAP_NET_ADMIN", "--cap-add", "CAP_NET_RAW"])
        .arg("-v")
        .arg(format!(
            "{}:/suite:ro",
            repo().join("tmp-testsuite").display()
        ))
        .arg("-v")
        .arg(format!("{}:/out", sb.path("out").display()))
        .arg(&ctr)
        .args(["--", "sipplauncher", "--dut", &lab.dut().to_string()])
        .args(["--testsuite", "/suite", "--json", "/out/report.json"])
        .args(["--group", "2", "--group-pause", "0"]);
    let child = lab
        .wrap(&cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("buildah run");
    let out = wait_with_timeout(child, Duration::from_secs(120), "the image's sipplauncher");
    let _ = Command::new("buildah").args(["rm", &ctr]).output();
    let _ = Command::new("buildah").args(["rmi", &tag]).output();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v = read_json(&sb.path("out/report.json"));
    assert_eq!(v["summary"]["success"], 4, "{v}");
    assert_eq!(
        v["sipp_version"].as_str().map(|s| s.contains("3.")),
        Some(true)
    );
    assert!(!lab.links().iter().any(|l| l.starts_with("sipp-")));
}
