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

    /// The instance's command line. `stem` names its trace files; `m` is its `-m`.
    fn argv(
        &self,
        file: &str,
        stem: &str,
        ua: &UaName,
        ip: Ipv4Addr,
        m: u64,
        pcc: &Pcc,
    ) -> Vec<String> {
        let o = &self.opts;
        // With TLS the DUT is reached on 5061 too (SIPp's default remote port is 5060).
        let remote = if self.opts.transport.is_tls() {
            format!("{}:{}", self.dut, self.port())
        } else {
            self.dut.to_string()
        };
        let mut a: Vec<String> = vec![
            self.program.display().to_string(),
            remote,
            "-sf".into(),
            file.into(),
            "-i".into(),
            ip.to_string(),
            "-p".into(),
            self.port().to_string(),
            "-t".into(),
            o.transport.as_str().into(),
            "-r".into(),
            o.call_rate.to_string(),
            "-m".into(),
            m.to_string(),
            "-l".into(),
            o.concurrent_calls_limit.to_string(),
            "-recv_timeout".into(),
            o.recv_timeout_ms.to_string(),
            "-nostdin".into(),
            "-trace_msg".into(),
            "-message_file".into(),
            format!("{stem}_messages.log"),
            "-trace_err".into(),
            "-error_file".into(),
            format!("{stem}_errors.log"),
            "-trace_calldebug".into(),
            "-calldebug_file".into(),
            format!("{stem}_calldebug.log"),
            "-trace_error_codes".into(),
            "-trace_screen".into(),
            "-screen_file".into(),
            format!("{stem}_screen.log"),
            "-trace_stat".into(),
            "-stf".into(),
            format!("{stem}_trace.csv"),
            "-fd".into(),
            "60".into(),
            "-max_socket".into(),
            self.max_socket.to_string(),
        ];
        if let Some(inf) = &self.info_file {
            a.push("-inf".into());
            a.push(inf.display().to_string());
        }
        if let Some(b) = &o.default_behaviors {
            a.push("-default_behaviors".into());
            a.push(b.clone());
        }
        if self.tls.is_some() {
            let f = UaFiles::of(ua);
            a.extend(["-tls_cert".into(), f.cert, "-tls_key".into(), f.key]);
        }
        if let Some(v) = &o.tls_version {
            a.push("-tls_version".into());
            a.push(v.clone());
        }
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

    /// The plan of one test run in `run_folder` (absolute): pure, given the parsed `3pcc.txt`.
    pub fn plan(
        &self,
        plan: &TestPlan,
        run_folder: &Path,
        hosts: &BTreeMap<UaName, Ipv4Addr>,
        three_pcc: Option<&ThreePcc>,
    ) -> Result<LaunchPlan, String> {
        let env = self.env(run_folder);
        let several = plan.run_groups.len() > 1;
        // With several run groups, -m N repeats the whole sequence N times with -m 1.
        let (repeat, m) = if several {
            (self.opts.max_calls, 1)
        } else {
            (1, self.opts.max_calls)
        };
        let mut stages = Vec::new();
        for rep in 0..repeat {
            for group in &plan.run_groups {
                let mut instances = Vec::new();
                for sc in &group.scenarios {
                    let ip = *hosts
                        .get(&sc.ua)
                        .ok_or_else(|| format!("no address for {}", sc.ua))?;
                    let base = sc.file.strip_suffix(".xml").unwrap_or(&sc.file);
                    let stem = if repeat > 1 {
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
                    instances.push(InstanceLaunch {
                        label: stem.clone(),
                        role: sc.role,
                        wave,
                        argv: self.argv(&sc.file, &stem, &sc.ua, ip, m, &pcc),
                        listen,
                        error_file: format!("{stem}_errors.log"),
                        stat_file: format!("{stem}_trace.csv"),
                        output_file: format!("{stem}_output.log"),
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
        let run_folder = std::path::absolute(run_folder)
            .map_err(|e| format!("run folder {}: {e}", run_folder.display()))?;
        if let Some(t) = &self.tls {
            // Only this test's UAs, with the addresses they have in this run.
            t.ca.write_run_folder(&run_folder, &ctx.ua_hosts)
                .map_err(|e| e.to_string())?;
        }
        self.plan(plan, &run_folder, &ctx.ua_hosts, three_pcc.as_ref())
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
    use sipplauncher_actors::core::plan::TestName;

    const RUN: &str = "/runs/t/abcdef";

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
            .plan(&plan, Path::new(RUN), &hosts, None)
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
        assert_eq!(
            uas.argv.join(" "),
            "sipp 10.0.0.1 -sf uas_ua0.xml -i 10.0.0.10 -p 5060 -t u1 -r 1 -m 1 -l 1 \
             -recv_timeout 5000 -nostdin -trace_msg -message_file uas_ua0_messages.log \
             -trace_err -error_file uas_ua0_errors.log -trace_calldebug -calldebug_file \
             uas_ua0_calldebug.log -trace_error_codes -trace_screen -screen_file \
             uas_ua0_screen.log -trace_stat -stf uas_ua0_trace.csv -fd 60 -max_socket 1000 \
             -inf /suite/users.csv"
        );
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
            .plan(&plan, Path::new(RUN), &hosts, None)
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
        assert_eq!(lp.stages[2].instances[0].label, "a_uas_ua0.2");
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
            .plan(&plan, Path::new(RUN), &hosts, None)
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
            .plan(&plan, Path::new(RUN), &hosts, Some(&pcc))
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
            .plan(&plan, Path::new(RUN), &hosts, None)
            .unwrap();
        assert!(lp.stages[0].instances[0].listen[0].tcp);
        let mut o = opts();
        o.transport = Transport::L1;
        let lp = launcher(o)
            .plan(&plan, Path::new(RUN), &hosts, None)
            .unwrap();
        assert_eq!(lp.stages[0].instances[0].listen[0].addr.port(), 5061);
    }

    fn tls_launcher(preload: Option<&str>) -> SippLauncher {
        let mut o = opts();
        o.transport = Transport::L1;
        o.tls_version = Some("1.2".into());
        let mut l = launcher(o);
        l.tls = Some(TlsSetup {
            ca: Arc::new(Ca::ephemeral().unwrap()),
            preload: preload.map(PathBuf::from),
        });
        l
    }

    #[test]
    fn tls_argv_and_env_snapshot() {
        let (plan, hosts) = test(&["uac_ua1.xml", "uas_ua0.xml"]);
        let lib = "/usr/local/lib/sipplauncher/libsipplauncher_keylog.so";
        let lp = tls_launcher(Some(lib))
            .plan(&plan, Path::new(RUN), &hosts, None)
            .unwrap();
        let uas = &lp.stages[0].instances[0];
        assert_eq!(
            uas.argv.join(" "),
            "sipp 10.0.0.1:5061 -sf uas_ua0.xml -i 10.0.0.10 -p 5061 -t l1 -r 1 -m 1 -l 1 \
             -recv_timeout 5000 -nostdin -trace_msg -message_file uas_ua0_messages.log \
             -trace_err -error_file uas_ua0_errors.log -trace_calldebug -calldebug_file \
             uas_ua0_calldebug.log -trace_error_codes -trace_screen -screen_file \
             uas_ua0_screen.log -trace_stat -stf uas_ua0_trace.csv -fd 60 -max_socket 1000 \
             -inf /suite/users.csv -tls_cert ua0.crt -tls_key ua0.key -tls_version 1.2"
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
            .ends_with("-tls_cert ua1.crt -tls_key ua1.key -tls_version 1.2"));
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
            .plan(&plan, Path::new(RUN), &hosts, None)
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
            .plan(&plan, Path::new(RUN), &hosts, None)
            .unwrap();
        let i = &lp.stages[0].instances[0];
        assert!(i.env.is_empty());
        assert!(!i.argv.iter().any(|a| a.starts_with("-tls")));
        assert_eq!(i.argv[1], "10.0.0.1", "no port: SIPp's default 5060");
    }

    #[test]
    fn tls_launch_plan_writes_each_uas_certificate_in_the_run_folder() {
        use sipplauncher_actors::core::plan::{RenderContext, RunId, TestName};
        let dir = tempfile::tempdir().unwrap();
        let (plan, hosts) = test(&["a_uas_ua0.xml", "a_uac_ua1.xml", "b_uac_ua0.xml"]);
        let ctx = RenderContext {
            test_name: TestName("t".into()),
            run_id: RunId("abcdef".into()),
            run_id_number: "123456789012".into(),
            dut: Ipv4Addr::new(10, 0, 0, 1),
            ua_hosts: hosts.clone(),
        };
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
}
