//! SIPp command lines (SPEC §11): for each test run, the stages (run groups, repeated for
//! `--sipp-max-calls` when there are several) and each instance's argv, environment, start wave
//! and the sockets that show it is listening. Also `3pcc.txt` (§2) and, with TLS (§8), each UA's
//! certificate and the key log. [`SippLauncher::plan`] is pure; [`Launch::launch_plan`] reads
//! `3pcc.txt` and writes the TLS files.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sipplauncher_actors::core::plan::{
    InstanceLaunch, Launch, LaunchPlan, Listen, RenderContext, Role, Stage, TestPlan, UaName,
};

use crate::config::{SippOptions, Transport};
use crate::tls::{self, Ca, UaFiles};

/// The 3PCC-extended peer table: `ID;IP:PORT` lines, `m` is the master.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreePcc {
    /// ID → address, in file order.
    pub peers: Vec<(String, SocketAddrV4)>,
}

impl ThreePcc {
    pub const FILE: &'static str = "3pcc.txt";

    /// Parses the rendered file; `#` comments and blank lines are skipped. The error names the
    /// line and the problem.
    pub fn parse(text: &str) -> Result<ThreePcc, String> {
        let mut peers: Vec<(String, SocketAddrV4)> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |what: &str| format!("{} line {}: {what}: {line:?}", Self::FILE, n + 1);
            let (id, addr) = line
                .split_once(';')
                .ok_or_else(|| at("expected ID;IP:PORT"))?;
            let id = id.trim();
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(at("bad peer id"));
            }
            let addr: SocketAddrV4 = addr
                .trim()
                .parse()
                .map_err(|_| at("expected an IPv4 address and port after ';'"))?;
            if peers.iter().any(|(p, _)| p == id) {
                return Err(at("peer id given twice"));
            }
            peers.push((id.to_string(), addr));
        }
        if !peers.iter().any(|(id, _)| id == "m") {
            return Err(format!("{}: no master line (m;IP:PORT)", Self::FILE));
        }
        Ok(ThreePcc { peers })
    }

    /// The peer entry whose address is `ip`.
    fn peer_of(&self, ip: Ipv4Addr) -> Option<&(String, SocketAddrV4)> {
        self.peers.iter().find(|(_, a)| *a.ip() == ip)
    }
}

/// What a TLS run adds to each SIPp instance.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    /// Signs each UA's certificate; made (or loaded) once per run.
    pub ca: Arc<Ca>,
    /// The key log library, `LD_PRELOAD`ed into SIPp when SIPp is older than 3.7.5 (which writes
    /// `SSLKEYLOGFILE` itself) and the library is installed.
    pub preload: Option<PathBuf>,
}

/// Builds the launch plans of every test run of a run.
#[derive(Debug, Clone)]
pub struct SippLauncher {
    /// The `sipp` program (found on PATH at start).
    pub program: PathBuf,
    pub dut: Ipv4Addr,
    pub opts: SippOptions,
    /// `-inf`, made absolute (SIPp runs in the run folder).
    pub info_file: Option<PathBuf>,
    /// `-max_socket`, from the open-files limit.
    pub max_socket: u64,
    /// With a TLS transport (and only then).
    pub tls: Option<TlsSetup>,
}

impl SippLauncher {
    fn port(&self) -> u16 {
        if self.opts.transport.is_tls() {
            5061
        } else {
            5060
        }
    }

    fn tcp(&self) -> bool {
        !matches!(
            self.opts.transport,
            Transport::U1 | Transport::Un | Transport::Ui
        )
    }

    /// The instance's command line: the original's (pysipp's order and flags, the files named
    /// as it named them), plus `-p` (where readiness is looked for) and `-nostdin`. `stem`
    /// names the files we name; `m` is its `-m`; `rtp_echo` is pysipp's media rule.
    #[allow(clippy::too_many_arguments)]
    fn argv(
        &self,
        file: &str,
        stem: &str,
        ua: &UaName,
        ip: Ipv4Addr,
        m: u64,
        pcc: &Pcc,
        rtp_echo: bool,
    ) -> Vec<String> {
        let o = &self.opts;
        let files = TraceFiles::of(stem);
        let mut a: Vec<String> = vec![
            self.program.display().to_string(),
            "-i".into(),
            ip.to_string(),
            "-p".into(),
            self.port().to_string(),
            "-t".into(),
            o.transport.as_str().into(),
            "-sf".into(),
            file.into(),
            "-recv_timeout".into(),
            o.recv_timeout_ms.to_string(),
        ];
        if let Some(b) = &o.default_behaviors {
            a.extend(["-default_behaviors".into(), b.clone()]);
        }
        a.extend([
            "-r".into(),
            o.call_rate.to_string(),
            "-l".into(),
            o.concurrent_calls_limit.to_string(),
            "-m".into(),
            m.to_string(),
            "-log_file".into(),
            files.log,
        ]);
        if let Some(inf) = &self.info_file {
            a.extend(["-inf".into(), inf.display().to_string()]);
        }
        a.extend(["-screen_file".into(), files.screen]);
        if rtp_echo {
            a.push("-rtp_echo".into());
        }
        // Without file names: SIPp's own `<scenario>_<pid>_errors.log` and so on, as the
        // original left them.
        a.extend(
            [
                "-trace_err",
                "-trace_calldebug",
                "-trace_error_codes",
                "-trace_msg",
                "-trace_logs",
                "-trace_screen",
            ]
            .map(String::from),
        );
        // With TLS the DUT is reached on 5061 too (SIPp's default remote port is 5060).
        a.push(if o.transport.is_tls() {
            format!("{}:{}", self.dut, self.port())
        } else {
            self.dut.to_string()
        });
        if self.tls.is_some() {
            let f = UaFiles::of(ua);
            a.extend(["-tls_cert".into(), f.cert, "-tls_key".into(), f.key]);
        }
        if let Some(v) = &o.tls_version {
            a.extend(["-tls_version".into(), v.clone()]);
        }
        a.extend([
            "-max_socket".into(),
            self.max_socket.to_string(),
            "-trace_stat".into(),
            "-stf".into(),
            files.stat,
            "-fd".into(),
            "60".into(),
            "-nostdin".into(),
        ]);
        match pcc {
            Pcc::None => {}
            Pcc::Master => {
                a.extend(["-master".into(), "m".into()]);
                a.extend(["-slave_cfg".into(), ThreePcc::FILE.into()]);
            }
            Pcc::Slave(id, _) => {
                a.extend(["-slave".into(), id.clone()]);
                a.extend(["-slave_cfg".into(), ThreePcc::FILE.into()]);
            }
        }
        a
    }

    /// The environment of every SIPp instance of a test run in `run_folder` (absolute): with
    /// TLS, where the session keys go, and the key log library for an older SIPp.
    fn env(&self, run_folder: &Path) -> Vec<(String, String)> {
        let Some(t) = &self.tls else {
            return Vec::new();
        };
        let mut env = vec![(
            "SSLKEYLOGFILE".to_string(),
            run_folder.join(tls::KEYLOG_FILE).display().to_string(),
        )];
        if let Some(lib) = &t.preload {
            let inherited = std::env::var("LD_PRELOAD").ok();
            env.push((
                "LD_PRELOAD".to_string(),
                preload_with(lib, inherited.as_deref()),
            ));
        }
        env
    }

    /// The plan of one test run in `run_folder` (absolute): pure, given the parsed `3pcc.txt`
    /// and what each rendered scenario holds (`facts`, by file name; a file not in it is taken
    /// to play no media).
    pub fn plan(
        &self,
        plan: &TestPlan,
        run_folder: &Path,
        hosts: &BTreeMap<UaName, Ipv4Addr>,
        three_pcc: Option<&ThreePcc>,
        facts: &BTreeMap<String, ScenarioFacts>,
    ) -> Result<LaunchPlan, String> {
        let env = self.env(run_folder);
        let several = plan.run_groups.len() > 1;
        // With several run groups, -m N repeats the whole sequence N times with -m 1.
        let (repeat, m) = if several {
            (self.opts.max_calls, 1)
        } else {
            (1, self.opts.max_calls)
        };
        let plays_media = |file: &str| facts.get(file).is_some_and(|f| f.plays_media);
        let mut stages = Vec::new();
        for rep in 0..repeat {
            for group in &plan.run_groups {
                // pysipp's rule (its default `pysipp_conf_scen` hook): in a scenario of two
                // agents where one plays media, the other echoes it.
                let echo = group.scenarios.len() == 2
                    && group.scenarios.iter().any(|sc| plays_media(&sc.file));
                let mut instances = Vec::new();
                for sc in &group.scenarios {
                    let ip = *hosts
                        .get(&sc.ua)
                        .ok_or_else(|| format!("no address for {}", sc.ua))?;
                    let base = sc.file.strip_suffix(".xml").unwrap_or(&sc.file);
                    // The last pass writes the original's names (the original overwrote them
                    // pass after pass); the passes before it are kept beside, numbered.
                    let stem = if rep + 1 < repeat {
                        format!("{base}.{}", rep + 1)
                    } else {
                        base.to_string()
                    };
                    let pcc = match three_pcc.and_then(|t| t.peer_of(ip)) {
                        None => Pcc::None,
                        Some((id, _)) if id == "m" => Pcc::Master,
                        Some((id, addr)) => Pcc::Slave(id.clone(), *addr),
                    };
                    let mut listen = Vec::new();
                    if sc.role == Role::Uas {
                        listen.push(Listen {
                            tcp: self.tcp(),
                            addr: SocketAddrV4::new(ip, self.port()),
                        });
                    }
                    if let Pcc::Slave(_, addr) = &pcc {
                        // SIPp's twin sockets are TCP; the master connects at once.
                        listen.push(Listen {
                            tcp: true,
                            addr: *addr,
                        });
                    }
                    let wave = match (&pcc, sc.role) {
                        (Pcc::Master, _) => 2,
                        (Pcc::Slave(..), _) | (Pcc::None, Role::Uas) => 0,
                        (Pcc::None, Role::Uac) => 1,
                    };
                    let rtp_echo = echo && !plays_media(&sc.file);
                    let files = TraceFiles::of(&stem);
                    instances.push(InstanceLaunch {
                        label: stem.clone(),
                        role: sc.role,
                        wave,
                        argv: self.argv(&sc.file, &stem, &sc.ua, ip, m, &pcc, rtp_echo),
                        listen,
                        error_file: format!("{base}_{}_errors.log", InstanceLaunch::PID),
                        stat_file: files.stat,
                        output_file: files.output,
                        env: env.clone(),
                    });
                }
                stages.push(Stage {
                    run_group: group.id.clone(),
                    instances,
                });
            }
        }
        Ok(LaunchPlan { stages })
    }
}

/// The files of an instance that are named on its command line (SIPp names the others itself:
/// `<scenario>_<pid>_messages.log`, `_errors.log`, `_calldebug.log`, `_error_codes.log`).
struct TraceFiles {
    /// `-log_file`: what the scenario's `<log>` actions write; pysipp's name.
    log: String,
    /// `-screen_file`: SIPp's last screen; pysipp's name.
    screen: String,
    /// `-stf`: the statistics CSV; the original's name.
    stat: String,
    /// SIPp's standard output and error: ours (pysipp kept only stderr, in memory).
    output: String,
}

impl TraceFiles {
    fn of(stem: &str) -> TraceFiles {
        TraceFiles {
            log: format!("{stem}_log_file"),
            screen: format!("{stem}_screen_file"),
            stat: format!("{stem}_trace.csv"),
            output: format!("{stem}_output.log"),
        }
    }
}

/// What pysipp and SIPp look for in a rendered scenario.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScenarioFacts {
    /// pysipp's `plays_media`: the text holds `play_pcap_audio` anywhere.
    pub plays_media: bool,
    /// The first `[fieldN]` keyword outside XML comments, with its line (from 1): SIPp refuses
    /// to start such a scenario without an injection file.
    pub first_field: Option<(usize, String)>,
}

impl ScenarioFacts {
    pub fn of(text: &str) -> ScenarioFacts {
        ScenarioFacts {
            plays_media: text.contains("play_pcap_audio"),
            first_field: first_field(text),
        }
    }
}

/// The first `[fieldN]` (or `[fieldN line=... file=...]`) outside `<!-- -->` comments.
fn first_field(text: &str) -> Option<(usize, String)> {
    let mut rest = text;
    let mut offset = 0;
    loop {
        // The part before the next comment is searched; the comment is skipped.
        let (code, after) = match rest.find("<!--") {
            Some(c) => (&rest[..c], Some(c)),
            None => (rest, None),
        };
        let mut from = 0;
        while let Some(i) = code[from..].find("[field") {
            let at = from + i;
            let tail = &code[at + "[field".len()..];
            let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
            let closed = tail[digits..].starts_with(']') || tail[digits..].starts_with(' ');
            if digits > 0 && closed {
                let end = tail.find(']').map_or(tail.len(), |e| e + 1);
                let keyword = format!("[field{}", &tail[..end]);
                let line = text[..offset + at].matches('\n').count() + 1;
                return Some((line, keyword));
            }
            from = at + 1;
        }
        let c = after?;
        let close = rest[c..].find("-->").map_or(rest.len(), |e| c + e + 3);
        offset += close;
        rest = &rest[close..];
    }
}

enum Pcc {
    None,
    Master,
    Slave(String, SocketAddrV4),
}

impl Launch for SippLauncher {
    fn launch_plan(
        &self,
        plan: &TestPlan,
        run_folder: &Path,
        ctx: &RenderContext,
    ) -> Result<LaunchPlan, String> {
        let path = run_folder.join(ThreePcc::FILE);
        let three_pcc = match std::fs::read_to_string(&path) {
            Ok(text) => Some(ThreePcc::parse(&text)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("read {}: {e}", path.display())),
        };
        let mut facts = BTreeMap::new();
        for sc in plan.run_groups.iter().flat_map(|g| &g.scenarios) {
            let path = run_folder.join(&sc.file);
            // Rendered as text already; SIPp reads it as bytes.
            let bytes = std::fs::read(&path).map_err(|e| format!("read {}: {e}", sc.file))?;
            let f = ScenarioFacts::of(&String::from_utf8_lossy(&bytes));
            if let (Some((line, keyword)), None) = (&f.first_field, &self.info_file) {
                // SIPp would refuse it at start ("No injection file was specified!").
                return Err(format!(
                    "{} line {line}: {keyword} needs an injection file, and there is none \
                     (no --sipp-info-file, no users.csv in the suite)",
                    sc.file
                ));
            }
            facts.insert(sc.file.clone(), f);
        }
        let run_folder = std::path::absolute(run_folder)
            .map_err(|e| format!("run folder {}: {e}", run_folder.display()))?;
        if let Some(t) = &self.tls {
            // Only this test's UAs, with the addresses they have in this run.
            t.ca.write_run_folder(&run_folder, &ctx.ua_hosts)
                .map_err(|e| e.to_string())?;
        }
        self.plan(plan, &run_folder, &ctx.ua_hosts, three_pcc.as_ref(), &facts)
    }
}

/// `LD_PRELOAD` for SIPp: the key log library first (its hooks must come before the OpenSSL
/// they wrap), then what the user preloads already, kept.
fn preload_with(lib: &Path, inherited: Option<&str>) -> String {
    match inherited.map(str::trim).filter(|s| !s.is_empty()) {
        Some(theirs) => format!("{} {theirs}", lib.display()),
        None => lib.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::KeyType;
    use sipplauncher_actors::core::plan::{RenderContext, TestName};

    const RUN: &str = "/runs/t/abcdef";
    static NO_FACTS: BTreeMap<String, ScenarioFacts> = BTreeMap::new();

    fn opts() -> SippOptions {
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
    }

    fn launcher(o: SippOptions) -> SippLauncher {
        SippLauncher {
            program: "sipp".into(),
            dut: Ipv4Addr::new(10, 0, 0, 1),
            opts: o,
            info_file: Some("/suite/users.csv".into()),
            max_socket: 1000,
            tls: None,
        }
    }

    fn test(files: &[&str]) -> (TestPlan, BTreeMap<UaName, Ipv4Addr>) {
        let names: Vec<String> = files.iter().map(|s| s.to_string()).collect();
        let plan = crate::scenario::plan_test(TestName("t".into()), "/suite/t".into(), &names);
        let hosts = plan
            .uas
            .iter()
            .enumerate()
            .map(|(i, ua)| (ua.clone(), Ipv4Addr::new(10, 0, 0, 10 + i as u8)))
            .collect();
        (plan, hosts)
    }

    #[test]
    fn argv_snapshot() {
        let (plan, hosts) = test(&["uac_ua1.xml", "uas_ua0.xml"]);
        let lp = launcher(opts())
            .plan(&plan, Path::new(RUN), &hosts, None, &NO_FACTS)
            .unwrap();
        assert_eq!(lp.stages.len(), 1);
        let uas = &lp.stages[0].instances[0];
        assert_eq!(uas.label, "uas_ua0");
        assert_eq!(uas.wave, 0);
        assert_eq!(
            uas.listen,
            vec![Listen {
                tcp: false,
                addr: "10.0.0.10:5060".parse().unwrap()
            }]
        );
        // The original's command line (pysipp's order; its `<scenario>_log_file` and
        // `<scenario>_screen_file`; SIPp's own names for the other traces), with -p and
        // -nostdin.
        assert_eq!(
            uas.argv.join(" "),
            "sipp -i 10.0.0.10 -p 5060 -t u1 -sf uas_ua0.xml -recv_timeout 5000 -r 1 -l 1 \
             -m 1 -log_file uas_ua0_log_file -inf /suite/users.csv -screen_file \
             uas_ua0_screen_file -trace_err -trace_calldebug -trace_error_codes -trace_msg \
             -trace_logs -trace_screen 10.0.0.1 -max_socket 1000 -trace_stat -stf \
             uas_ua0_trace.csv -fd 60 -nostdin"
        );
        assert_eq!(uas.error_file, "uas_ua0_{pid}_errors.log");
        assert_eq!(uas.stat_file, "uas_ua0_trace.csv");
        assert_eq!(uas.output_file, "uas_ua0_output.log");
        let uac = &lp.stages[0].instances[1];
        assert_eq!((uac.label.as_str(), uac.wave), ("uac_ua1", 1));
        assert!(uac.listen.is_empty());
        assert_eq!(lp.first_uac().unwrap().label, "uac_ua1");
    }

    #[test]
    fn several_run_groups_repeat_with_m_1() {
        let (plan, hosts) = test(&["a_uas_ua0.xml", "a_uac_ua1.xml", "b_uac_ua0.xml"]);
        let mut o = opts();
        o.max_calls = 3;
        o.call_rate = 2.5;
        let lp = launcher(o)
            .plan(&plan, Path::new(RUN), &hosts, None, &NO_FACTS)
            .unwrap();
        let groups: Vec<&str> = lp.stages.iter().map(|s| s.run_group.as_str()).collect();
        assert_eq!(groups, ["a", "b", "a", "b", "a", "b"]);
        for s in &lp.stages {
            for i in &s.instances {
                let m = i.argv.iter().position(|a| a == "-m").unwrap();
                assert_eq!(i.argv[m + 1], "1");
                assert!(i.argv.contains(&"2.5".to_string()));
            }
        }
        // The passes before the last are numbered; the last has the original's names.
        let labels: Vec<&str> = lp
            .stages
            .iter()
            .map(|s| s.instances[0].label.as_str())
            .collect();
        assert_eq!(
            labels,
            [
                "a_uas_ua0.1",
                "b_uac_ua0.1",
                "a_uas_ua0.2",
                "b_uac_ua0.2",
                "a_uas_ua0",
                "b_uac_ua0"
            ]
        );
        let uas = &lp.stages[0].instances[0];
        assert!(uas.argv.join(" ").contains(
            "-log_file a_uas_ua0.1_log_file -inf /suite/users.csv -screen_file a_uas_ua0.1_screen_file"
        ));
        assert_eq!(uas.stat_file, "a_uas_ua0.1_trace.csv");
        // SIPp names its own traces after the scenario and its pid, whatever the pass.
        assert_eq!(uas.error_file, "a_uas_ua0_{pid}_errors.log");
        assert_eq!(lp.stages[4].instances[0].stat_file, "a_uas_ua0_trace.csv");
        // ua0 keeps its address across run groups.
        let ip_of =
            |i: &InstanceLaunch| i.argv[i.argv.iter().position(|a| a == "-i").unwrap() + 1].clone();
        assert_eq!(
            ip_of(&lp.stages[0].instances[0]),
            ip_of(&lp.stages[1].instances[0])
        );
    }

    #[test]
    fn one_run_group_keeps_m() {
        let (plan, hosts) = test(&["uac_ua0.xml"]);
        let mut o = opts();
        o.max_calls = 7;
        let lp = launcher(o)
            .plan(&plan, Path::new(RUN), &hosts, None, &NO_FACTS)
            .unwrap();
        assert_eq!(lp.stages.len(), 1);
        let a = &lp.stages[0].instances[0].argv;
        assert_eq!(a[a.iter().position(|x| x == "-m").unwrap() + 1], "7");
    }

    #[test]
    fn three_pcc_master_last_and_slaves_listen() {
        let (plan, hosts) = test(&["uac_ua0.xml", "uac_ua1.xml", "uas_ua2.xml"]);
        let pcc = ThreePcc::parse("# peers\nm;10.0.0.10:8880\n\nua1;10.0.0.11:8881\n").unwrap();
        let lp = launcher(opts())
            .plan(&plan, Path::new(RUN), &hosts, Some(&pcc), &NO_FACTS)
            .unwrap();
        let by = |l: &str| {
            lp.stages[0]
                .instances
                .iter()
                .find(|i| i.label == l)
                .unwrap()
                .clone()
        };
        let master = by("uac_ua0");
        assert_eq!(master.wave, 2);
        assert!(master
            .argv
            .join(" ")
            .contains("-master m -slave_cfg 3pcc.txt"));
        let slave = by("uac_ua1");
        assert_eq!(slave.wave, 0);
        assert!(slave
            .argv
            .join(" ")
            .contains("-slave ua1 -slave_cfg 3pcc.txt"));
        assert_eq!(
            slave.listen,
            vec![Listen {
                tcp: true,
                addr: "10.0.0.11:8881".parse().unwrap()
            }]
        );
        let plain = by("uas_ua2");
        assert_eq!(plain.wave, 0);
        assert!(!plain.argv.iter().any(|a| a == "-slave_cfg"));
    }

    #[test]
    fn three_pcc_parse_errors_name_the_line() {
        for (text, expect) in [
            ("m;10.0.0.1", "line 1"),
            ("m 10.0.0.1:5", "line 1: expected ID;IP:PORT"),
            ("ua1;10.0.0.2:1\n", "no master line"),
            ("m;10.0.0.1:1\nm;10.0.0.2:2", "line 2: peer id given twice"),
            ("m;10.0.0.1:1\nu a;10.0.0.2:2", "line 2: bad peer id"),
        ] {
            let e = ThreePcc::parse(text).unwrap_err();
            assert!(e.contains(expect), "{text:?}: {e}");
        }
    }

    #[test]
    fn tcp_and_tls_transports_listen_on_tcp() {
        let (plan, hosts) = test(&["uas_ua0.xml"]);
        let mut o = opts();
        o.transport = Transport::T1;
        let lp = launcher(o)
            .plan(&plan, Path::new(RUN), &hosts, None, &NO_FACTS)
            .unwrap();
        assert!(lp.stages[0].instances[0].listen[0].tcp);
        let mut o = opts();
        o.transport = Transport::L1;
        let lp = launcher(o)
            .plan(&plan, Path::new(RUN), &hosts, None, &NO_FACTS)
            .unwrap();
        assert_eq!(lp.stages[0].instances[0].listen[0].addr.port(), 5061);
    }

    fn tls_launcher(preload: Option<&str>) -> SippLauncher {
        let mut o = opts();
        o.transport = Transport::L1;
        o.tls_version = Some("1.2".into());
        let mut l = launcher(o);
        l.tls = Some(TlsSetup {
            ca: Arc::new(Ca::ephemeral(KeyType::Ecdsa).unwrap()),
            preload: preload.map(PathBuf::from),
        });
        l
    }

    #[test]
    fn tls_argv_and_env_snapshot() {
        let (plan, hosts) = test(&["uac_ua1.xml", "uas_ua0.xml"]);
        let lib = "/usr/local/lib/sipplauncher/libsipplauncher_keylog.so";
        let lp = tls_launcher(Some(lib))
            .plan(&plan, Path::new(RUN), &hosts, None, &NO_FACTS)
            .unwrap();
        let uas = &lp.stages[0].instances[0];
        assert_eq!(
            uas.argv.join(" "),
            "sipp -i 10.0.0.10 -p 5061 -t l1 -sf uas_ua0.xml -recv_timeout 5000 -r 1 -l 1 \
             -m 1 -log_file uas_ua0_log_file -inf /suite/users.csv -screen_file \
             uas_ua0_screen_file -trace_err -trace_calldebug -trace_error_codes -trace_msg \
             -trace_logs -trace_screen 10.0.0.1:5061 -tls_cert ua0.crt -tls_key ua0.key \
             -tls_version 1.2 -max_socket 1000 -trace_stat -stf uas_ua0_trace.csv -fd 60 \
             -nostdin"
        );
        assert_eq!(
            uas.listen,
            vec![Listen {
                tcp: true,
                addr: "10.0.0.10:5061".parse().unwrap()
            }]
        );
        let env = vec![
            (
                "SSLKEYLOGFILE".to_string(),
                "/runs/t/abcdef/tls_premaster_keys.txt".to_string(),
            ),
            ("LD_PRELOAD".to_string(), lib.to_string()),
        ];
        assert_eq!(uas.env, env);
        let uac = &lp.stages[0].instances[1];
        assert!(uac
            .argv
            .join(" ")
            .contains("-tls_cert ua1.crt -tls_key ua1.key -tls_version 1.2"));
        assert_eq!(uac.env, env, "every instance writes the same key log");
    }

    #[test]
    fn key_log_library_goes_before_a_users_preload() {
        let lib = Path::new("/usr/lib/sipplauncher/libsipplauncher_keylog.so");
        assert_eq!(preload_with(lib, None), lib.display().to_string());
        assert_eq!(preload_with(lib, Some("  ")), lib.display().to_string());
        assert_eq!(
            preload_with(lib, Some("/opt/libfoo.so:/opt/libbar.so")),
            format!("{} /opt/libfoo.so:/opt/libbar.so", lib.display())
        );
    }

    #[test]
    fn tls_without_the_library_sets_only_the_key_log_and_no_tls_sets_nothing() {
        let (plan, hosts) = test(&["uac_ua0.xml"]);
        let lp = tls_launcher(None)
            .plan(&plan, Path::new(RUN), &hosts, None, &NO_FACTS)
            .unwrap();
        let i = &lp.stages[0].instances[0];
        assert_eq!(
            i.env,
            vec![(
                "SSLKEYLOGFILE".to_string(),
                "/runs/t/abcdef/tls_premaster_keys.txt".to_string()
            )]
        );
        let lp = launcher(opts())
            .plan(&plan, Path::new(RUN), &hosts, None, &NO_FACTS)
            .unwrap();
        let i = &lp.stages[0].instances[0];
        assert!(i.env.is_empty());
        assert!(!i.argv.iter().any(|a| a.starts_with("-tls")));
        assert!(
            i.argv.contains(&"10.0.0.1".to_string()),
            "no port: SIPp's default 5060"
        );
    }

    #[test]
    fn tls_launch_plan_writes_each_uas_certificate_in_the_run_folder() {
        let dir = tempfile::tempdir().unwrap();
        let files = ["a_uas_ua0.xml", "a_uac_ua1.xml", "b_uac_ua0.xml"];
        for f in files {
            std::fs::write(dir.path().join(f), "<scenario/>").unwrap();
        }
        let (plan, hosts) = test(&files);
        let ctx = context(&hosts);
        let lp = tls_launcher(None)
            .launch_plan(&plan, dir.path(), &ctx)
            .unwrap();
        for f in ["ca.pem", "ua0.crt", "ua0.key", "ua1.crt", "ua1.key"] {
            assert!(dir.path().join(f).is_file(), "{f}");
        }
        let keylog = dir.path().join("tls_premaster_keys.txt");
        for i in lp.stages.iter().flat_map(|s| &s.instances) {
            assert_eq!(
                i.env,
                vec![("SSLKEYLOGFILE".to_string(), keylog.display().to_string())]
            );
        }
    }

    fn context(hosts: &BTreeMap<UaName, Ipv4Addr>) -> RenderContext {
        use sipplauncher_actors::core::plan::RunId;
        RenderContext {
            test_name: TestName("t".into()),
            run_id: RunId("abcdef".into()),
            run_id_number: "123456789012".into(),
            dut: Ipv4Addr::new(10, 0, 0, 1),
            ua_hosts: hosts.clone(),
        }
    }

    fn echoes(lp: &LaunchPlan) -> Vec<(String, bool)> {
        lp.stages
            .iter()
            .flat_map(|s| &s.instances)
            .map(|i| (i.label.clone(), i.argv.iter().any(|a| a == "-rtp_echo")))
            .collect()
    }

    #[test]
    fn rtp_echo_as_pysipp_decides_it() {
        let media =
            ScenarioFacts::of("<nop><action><exec play_pcap_audio=\"g711a.pcap\"/></action></nop>");
        let quiet = ScenarioFacts::of("<send/>");
        assert!(media.plays_media && !quiet.plays_media);
        let facts = |pairs: &[(&str, &ScenarioFacts)]| -> BTreeMap<String, ScenarioFacts> {
            pairs
                .iter()
                .map(|(f, x)| (f.to_string(), (*x).clone()))
                .collect()
        };
        let l = launcher(opts());
        // Two agents, one plays media: the other echoes it.
        let (plan, hosts) = test(&["uac_ua1.xml", "uas_ua0.xml"]);
        let f = facts(&[("uac_ua1.xml", &media), ("uas_ua0.xml", &quiet)]);
        let lp = l.plan(&plan, Path::new(RUN), &hosts, None, &f).unwrap();
        assert_eq!(
            echoes(&lp),
            [
                ("uas_ua0".to_string(), true),
                ("uac_ua1".to_string(), false)
            ]
        );
        // Both play media: neither echoes.
        let f = facts(&[("uac_ua1.xml", &media), ("uas_ua0.xml", &media)]);
        let lp = l.plan(&plan, Path::new(RUN), &hosts, None, &f).unwrap();
        assert!(echoes(&lp).iter().all(|(_, e)| !e));
        // No media: nobody echoes.
        let lp = l
            .plan(&plan, Path::new(RUN), &hosts, None, &NO_FACTS)
            .unwrap();
        assert!(echoes(&lp).iter().all(|(_, e)| !e));
        // Three agents: pysipp's rule is for two only.
        let (plan, hosts) = test(&["uac_ua1.xml", "uas_ua0.xml", "uas_ua2.xml"]);
        let f = facts(&[("uac_ua1.xml", &media)]);
        let lp = l.plan(&plan, Path::new(RUN), &hosts, None, &f).unwrap();
        assert!(echoes(&lp).iter().all(|(_, e)| !e));
        // Per run group (one pysipp scenario each): a group of two with media echoes, a group
        // of one does not.
        let (plan, hosts) = test(&["a_uac_ua1.xml", "a_uas_ua0.xml", "b_uac_ua0.xml"]);
        let f = facts(&[("a_uac_ua1.xml", &media), ("b_uac_ua0.xml", &quiet)]);
        let lp = l.plan(&plan, Path::new(RUN), &hosts, None, &f).unwrap();
        assert_eq!(
            echoes(&lp),
            [
                ("a_uas_ua0".to_string(), true),
                ("a_uac_ua1".to_string(), false),
                ("b_uac_ua0".to_string(), false)
            ]
        );
        let uas = &lp.stages[0].instances[0].argv.join(" ");
        assert!(
            uas.contains("-screen_file a_uas_ua0_screen_file -rtp_echo -trace_err"),
            "{uas}"
        );
    }

    #[test]
    fn field_keywords_outside_comments() {
        for (text, expect) in [
            ("<send>\nFrom: [field0]\n</send>", Some((2, "[field0]"))),
            ("a\nb [field12 line=1] c", Some((2, "[field12 line=1]"))),
            ("<!-- [field0] -->\nno fields", None),
            (
                "<!-- x -->\n<!-- [field1] -->\n[field3]",
                Some((3, "[field3]")),
            ),
            ("[fields] [field] [fieldx]", None),
            ("<!-- never closed [field0]", None),
        ] {
            let got = ScenarioFacts::of(text).first_field;
            assert_eq!(got, expect.map(|(l, k)| (l, k.to_string())), "{text:?}");
        }
    }

    #[test]
    fn a_field_without_an_injection_file_is_refused_before_sipp_starts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("uas_ua0.xml"), "<scenario/>").unwrap();
        std::fs::write(
            dir.path().join("uac_ua1.xml"),
            "<scenario>\n<send><![CDATA[\nINVITE sip:[field0]@x SIP/2.0\n]]></send>\n</scenario>\n",
        )
        .unwrap();
        let (plan, hosts) = test(&["uac_ua1.xml", "uas_ua0.xml"]);
        let mut l = launcher(opts());
        l.info_file = None;
        let e = l
            .launch_plan(&plan, dir.path(), &context(&hosts))
            .unwrap_err();
        assert_eq!(
            e,
            "uac_ua1.xml line 3: [field0] needs an injection file, and there is none \
             (no --sipp-info-file, no users.csv in the suite)"
        );
        // With one, it runs.
        let l = launcher(opts());
        let lp = l.launch_plan(&plan, dir.path(), &context(&hosts)).unwrap();
        assert_eq!(lp.stages[0].instances.len(), 2);
        // A scenario that is not there (a bug: pre-run copied the folder) is named.
        std::fs::remove_file(dir.path().join("uas_ua0.xml")).unwrap();
        let e = l
            .launch_plan(&plan, dir.path(), &context(&hosts))
            .unwrap_err();
        assert!(e.starts_with("read uas_ua0.xml: "), "{e}");
    }
}
