//! TLS (SPEC §8, §3), proven without a SIPp built with TLS (Debian's has none):
//! - the certificates a `--dry-run --leave-temp` run leaves in its run folders, checked with the
//!   `openssl` command: signed by the run's ephemeral CA or by a user's CA made with `openssl`
//!   (RSA and EC), SAN = the UA's address, 30 days of validity;
//! - a TLS handshake between `openssl s_server` holding a UA's certificate and `openssl s_client
//!   -verify_ip` trusting `ca.pem` (and the other way round: a UA's certificate as a client's);
//! - the key log library (`keylog/`) preloaded into `openssl s_client`: `tshark` decrypts a capture
//!   of the session with the keys it wrote and reads the SIP request inside;
//! - each bad TLS option of §3 and each bad user CA: one line, exit status 2, nothing made;
//! - SIPp without TLS: a clear error at start, a warning with `--dry-run`;
//! - a real TLS run (in the lab) with a stand-in `sipp` that records its argv and environment.
//!
//! Handshakes and captures run in a network namespace of their own (`unshare -n`, loopback only),
//! so they need root: they are ignored without `--features lab` (CI runs them, as root).

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::lab::{have, is_root, wait_with_timeout, Lab};

/// A UAS and a UAC whose rendered files name every UA's address (the dry run's addresses are
/// read back from them).
const UAS_UA0: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!-- hosts ua0={{ ua0.host }} ua1={{ ua1.host }} -->
<scenario name="answer"><recv request="OPTIONS"/></scenario>
"#;
const UAC_UA1: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!-- hosts ua0={{ ua0.host }} ua1={{ ua1.host }} -->
<scenario name="ask"><send><![CDATA[OPTIONS sip:{{ ua0.host }} SIP/2.0]]></send></scenario>
"#;

/// The conversion the error message of a non-PKCS#8 key tells.
const TO_PKCS8: &str = "openssl pkcs8 -topk8 -nocrypt -in key.pem -out key8.pem";

/// Panics, naming them, when `tools` are not all installed (.ci/run installs them): a test
/// that cannot run fails rather than pass without doing anything.
fn need(what: &str, tools: &[&str]) {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} not installed (.ci/run installs them)",
        missing.join(", ")
    );
}

/// Panics unless a private network namespace can be made (root, the tools); the tests that
/// call it are ignored in builds without `--features lab`.
fn need_netns(what: &str) {
    assert!(
        is_root(),
        "{what}: needs root for a network namespace of its own"
    );
    need(what, &["unshare", "ip", "openssl"]);
}

/// Runs `openssl args` in `dir`; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "openssl {args:?} in {}: {text}",
        dir.display()
    );
    text
}

/// The addresses of the UAs of a dry run, from the `hosts` comment of its rendered scenarios.
fn hosts_of(folder: &Path) -> BTreeMap<String, Ipv4Addr> {
    let re = regex::Regex::new(r"(ua[0-9]+)=([0-9.]+)").unwrap();
    let mut out = BTreeMap::new();
    for e in fs::read_dir(folder).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "xml") {
            let text = fs::read_to_string(e.path()).unwrap();
            for c in re.captures_iter(&text) {
                out.insert(c[1].to_string(), c[2].parse().unwrap());
            }
        }
    }
    assert!(!out.is_empty(), "no hosts in {}", folder.display());
    out
}

/// A suite of `tests`, each a UAS ua0 and a UAC ua1.
fn two_ua_suite(sb: &Sandbox, tests: &[&str]) {
    let files = each_test(tests, &[("uas_ua0.xml", UAS_UA0), ("uac_ua1.xml", UAC_UA1)]);
    write_suite(&sb.suite(), &files);
}

/// A TLS dry run that keeps its run folders; must succeed.
fn tls_dry_run(sb: &Sandbox, extra: &[&str]) -> Run {
    let mut cmd = sb.cmd();
    cmd.arg("--leave-temp").args(extra);
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    r
}

/// The key log library, as `cargo test --workspace` builds it (`keylog/`): beside the binary
/// after `cargo build`, in `deps/` after `cargo test`; built here when neither is there (e.g.
/// `cargo test --test e2e`).
pub(crate) fn keylog_library() -> PathBuf {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let candidates = [
        bin_dir.join("libsipplauncher_keylog.so"),
        bin_dir.join("deps/libsipplauncher_keylog.so"),
    ];
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return p.clone();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "-p", "sipplauncher-keylog"])
        .current_dir(repo())
        .status()
        .expect("cargo build -p sipplauncher-keylog");
    assert!(st.success());
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .expect("libsipplauncher_keylog.so built")
}

/// Runs `script` with `sh -e` in a network namespace of its own with only loopback up, in `dir`,
/// for at most 60 s; returns its status and output.
fn in_netns(dir: &Path, script: &str) -> (bool, String) {
    let child = Command::new("timeout")
        .args(["60", "unshare", "--net", "sh", "-ec"])
        .arg(format!("ip link set lo up\n{script}"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start unshare");
    let out = wait_with_timeout(child, Duration::from_secs(70), "unshare");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Waits (in sh) until `file` holds `text`, 10 s at most.
fn sh_wait_for(file: &str, text: &str) -> String {
    format!(
        "i=0; until grep -q -e '{text}' {file} 2>/dev/null; do i=$((i+1)); \
         if [ $i -gt 200 ]; then echo 'timed out waiting for {text} in {file}' >&2; cat {file} >&2; exit 1; fi; \
         sleep 0.05; done"
    )
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn took(what: &str, since: Instant) {
    eprintln!("timing: {what}: {:?}", since.elapsed());
}

/// Every UA of every run folder has a certificate for its address, signed by the one ephemeral
/// CA of the run (also in `ca.pem`), valid 30 days ahead and from before now; its key is the
/// owner's only. A second run has another CA.
#[test]
fn dry_run_makes_ua_certificates_signed_by_the_runs_ephemeral_ca() {
    need("ephemeral CA", &["openssl"]);
    let t0 = Instant::now();
    let sb = Sandbox::new();
    two_ua_suite(&sb, &["a-tls", "b-tls"]);
    tls_dry_run(&sb, &["--sipp-transport", "l1"]);
    let folders = sb.run_folders();
    assert_eq!(folders.len(), 2, "{folders:?}");
    let ca = fs::read_to_string(folders[0].join("ca.pem")).unwrap();
    for f in &folders {
        assert_eq!(
            fs::read_to_string(f.join("ca.pem")).unwrap(),
            ca,
            "one CA for the whole run"
        );
        check_ua_certificates(f, "ASN1 OID: prime256v1");
    }
    let sb2 = Sandbox::new();
    two_ua_suite(&sb2, &["a-tls"]);
    tls_dry_run(&sb2, &["--sipp-transport", "ln"]);
    let other = fs::read_to_string(sb2.run_folders()[0].join("ca.pem")).unwrap();
    assert_ne!(other, ca, "each run has its own ephemeral CA");
    took("ephemeral CA: two dry runs and their checks", t0);
}

/// `--tls-key-type rsa`: RSA 2048 keys as the original made, for the UAs and the ephemeral CA,
/// with the same IP SAN and validity; openssl verifies them.
#[test]
fn rsa_key_type_makes_rsa_2048_certificates() {
    need("RSA certificates", &["openssl"]);
    let t0 = Instant::now();
    let sb = Sandbox::new();
    two_ua_suite(&sb, &["a-tls"]);
    tls_dry_run(&sb, &["--sipp-transport", "l1", "--tls-key-type", "rsa"]);
    let f = &sb.run_folders()[0];
    check_ua_certificates(f, "Public-Key: (2048 bit)");
    let ca = openssl(f, &["x509", "-in", "ca.pem", "-noout", "-text"]);
    assert!(ca.contains("Public Key Algorithm: rsaEncryption"), "{ca}");
    assert!(ca.contains("Public-Key: (2048 bit)"), "{ca}");
    for ua in hosts_of(f).keys() {
        let text = openssl(f, &["x509", "-in", &format!("{ua}.crt"), "-noout", "-text"]);
        assert!(
            text.contains("Public Key Algorithm: rsaEncryption"),
            "{text}"
        );
        assert!(
            text.contains("Signature Algorithm: sha256WithRSAEncryption"),
            "{text}"
        );
        openssl(f, &["rsa", "-in", &format!("{ua}.key"), "-check", "-noout"]);
    }
    took("RSA certificates: a dry run and its checks", t0);
}

/// Every UA certificate of run folder `f`: verified against `ca.pem` by openssl, its address as
/// the only SAN, valid for 30 days, for both ends of a connection, its key its own; its text
/// holds `key_text` (the key type).
fn check_ua_certificates(f: &Path, key_text: &str) {
    for (ua, ip) in hosts_of(f) {
        let (crt, key) = (format!("{ua}.crt"), format!("{ua}.key"));
        assert_eq!(mode(&f.join(&key)), 0o600, "{}", f.join(&key).display());
        let v = openssl(f, &["verify", "-CAfile", "ca.pem", &crt]);
        assert!(v.contains(&format!("{crt}: OK")), "{v}");
        let san = openssl(
            f,
            &["x509", "-in", &crt, "-noout", "-ext", "subjectAltName"],
        );
        let sans: Vec<&str> = san.lines().skip(1).map(str::trim).collect();
        assert_eq!(sans, [format!("IP Address:{ip}")], "{san}");
        // Valid now, still in 29 days, no longer in 31.
        openssl(f, &["x509", "-in", &crt, "-noout", "-checkend", "2505600"]);
        let st = Command::new("openssl")
            .args(["x509", "-in", &crt, "-noout", "-checkend", "2678400"])
            .current_dir(f)
            .output()
            .unwrap();
        assert!(!st.status.success(), "{crt} valid for more than 31 days");
        let text = openssl(f, &["x509", "-in", &crt, "-noout", "-text"]);
        assert!(text.contains(key_text), "{key_text}: {text}");
        assert!(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"));
        // The key is the certificate's.
        let a = openssl(f, &["x509", "-in", &crt, "-noout", "-pubkey"]);
        let b = openssl(f, &["pkey", "-in", &key, "-pubout"]);
        assert_eq!(a, b, "{key} is not {crt}'s");
    }
}

fn openssl_ca(dir: &Path, name: &str, newkey: &[&str], ext: &[&str]) -> (PathBuf, PathBuf) {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    let mut args = vec!["req", "-x509", "-nodes", "-days", "2", "-subj"];
    let subj = format!("/O=user/CN={name}");
    args.push(&subj);
    args.extend_from_slice(newkey);
    args.extend(["-keyout", &key, "-out", &crt]);
    for e in ext {
        args.extend(["-addext", e]);
    }
    openssl(dir, &args);
    (dir.join(crt), dir.join(key))
}

/// A user's CA made with `openssl` (RSA 2048 and EC P-384, keys in OpenSSL 3's default PKCS#8)
/// signs the UA certificates; `ca.pem` is the user's certificate.
#[test]
fn user_cas_made_with_openssl_sign_the_ua_certificates() {
    need("user CA", &["openssl"]);
    let t0 = Instant::now();
    let keys = tempfile::tempdir().unwrap();
    for (name, newkey, sig) in [
        (
            "rsa-ca",
            &["-newkey", "rsa:2048"][..],
            "sha256WithRSAEncryption",
        ),
        (
            "ec-ca",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
            "ecdsa-with-SHA384",
        ),
    ] {
        let (crt, key) = openssl_ca(
            keys.path(),
            name,
            newkey,
            &["keyUsage=critical,keyCertSign,cRLSign"],
        );
        assert!(fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        let sb = Sandbox::new();
        two_ua_suite(&sb, &["t"]);
        // No --sipp-transport: a CA means TLS (l1).
        tls_dry_run(
            &sb,
            &[
                "--tls-ca-root-cert",
                crt.to_str().unwrap(),
                "--tls-ca-root-key",
                key.to_str().unwrap(),
            ],
        );
        let f = &sb.run_folders()[0];
        let der = |p: &Path| {
            openssl(
                f,
                &["x509", "-in", p.to_str().unwrap(), "-noout", "-fingerprint"],
            )
        };
        assert_eq!(der(&f.join("ca.pem")), der(&crt), "ca.pem is the user's CA");
        for (ua, ip) in hosts_of(f) {
            let crt_name = format!("{ua}.crt");
            let v = openssl(f, &["verify", "-CAfile", crt.to_str().unwrap(), &crt_name]);
            assert!(v.contains(": OK"), "{name}: {v}");
            let text = openssl(f, &["x509", "-in", &crt_name, "-noout", "-text"]);
            assert!(
                text.contains(&format!("Signature Algorithm: {sig}")),
                "{name}: {text}"
            );
            assert!(
                text.contains(&format!("Issuer: O = user, CN = {name}")),
                "{text}"
            );
            assert!(text.contains(&format!("IP Address:{ip}")), "{text}");
        }
    }
    took("user CAs (RSA, EC)", t0);
}

/// `openssl s_server` with ua0's certificate on ua0's address:5061; `openssl s_client
/// -verify_ip` trusting only `ca.pem` completes the handshake, and fails for another address.
/// The server also demands a client certificate: ua1's is accepted (SIPp may be either end).
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root for a network namespace: cargo test --features lab"
)]
fn handshake_with_a_ua_certificate_verifies_its_ip() {
    need_netns("handshake");
    let t0 = Instant::now();
    let sb = Sandbox::new();
    two_ua_suite(&sb, &["t"]);
    tls_dry_run(&sb, &["--sipp-transport", "l1"]);
    let f = &sb.run_folders()[0];
    let hosts = hosts_of(f);
    let (ip0, ip1) = (hosts["ua0"], hosts["ua1"]);
    assert!(
        ip0.is_loopback(),
        "a 127.0.0.1 DUT gives loopback UAs: {ip0}"
    );
    let script = format!(
        "openssl s_server -accept {ip0}:5061 -cert ua0.crt -key ua0.key -CAfile ca.pem -Verify 1 \
           -verify_return_error -www >server.out 2>&1 &\n\
         srv=$!\n\
         {wait}\n\
         openssl s_client -connect {ip0}:5061 -CAfile ca.pem -verify_ip {ip0} -verify_return_error \
           -cert ua1.crt -key ua1.key </dev/null >good.out 2>&1 || echo 'good client failed' >>good.out\n\
         openssl s_client -connect {ip0}:5061 -CAfile ca.pem -verify_ip {ip1} -verify_return_error \
           -cert ua1.crt -key ua1.key </dev/null >bad.out 2>&1 && echo 'bad client passed' >>bad.out\n\
         kill $srv; wait $srv || true",
        wait = sh_wait_for("server.out", "ACCEPT"),
    );
    let (ok, out) = in_netns(f, &script);
    assert!(ok, "{out}");
    let good = fs::read_to_string(f.join("good.out")).unwrap();
    assert!(
        good.contains("Verification: OK") && good.contains("Verify return code: 0 (ok)"),
        "{good}"
    );
    assert!(!good.contains("good client failed"), "{good}");
    let bad = fs::read_to_string(f.join("bad.out")).unwrap();
    assert!(bad.contains("IP address mismatch"), "{bad}");
    assert!(!bad.contains("bad client passed"), "{bad}");
    let server = fs::read_to_string(f.join("server.out")).unwrap();
    assert!(
        !server.contains("verify error"),
        "ua1's certificate refused: {server}"
    );
    took("handshake (two s_client sessions)", t0);
}

/// The key log library preloaded into `openssl s_client` (which, like SIPp before 3.7.5, writes
/// no keys itself) writes `$SSLKEYLOGFILE` (owner only), and with it `tshark` decrypts a
/// capture of the session and reads the SIP request sent in it; without it, it reads nothing.
/// TLS 1.2 (CLIENT_RANDOM lines) and 1.3 (traffic secrets).
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root for a network namespace: cargo test --features lab"
)]
fn keylog_library_lets_tshark_decrypt_a_captured_session() {
    need_netns("keylog");
    need("keylog", &["tshark"]);
    let lib = keylog_library();
    let sb = Sandbox::new();
    two_ua_suite(&sb, &["t"]);
    tls_dry_run(&sb, &["--sipp-transport", "l1"]);
    let f = &sb.run_folders()[0];
    let ip0 = hosts_of(f)["ua0"];
    for (flag, line) in [
        ("-tls1_2", "CLIENT_RANDOM "),
        ("-tls1_3", "CLIENT_TRAFFIC_SECRET_0 "),
    ] {
        let t0 = Instant::now();
        let call_id = format!("keylog-test{flag}");
        let request = format!(
            "OPTIONS sip:ua0@{ip0}:5061;transport=tls SIP/2.0\r\n\
             Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-{call_id}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:test@127.0.0.1>;tag=1\r\n\
             To: <sip:ua0@{ip0}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n"
        );
        fs::write(f.join("request.txt"), request).unwrap();
        for p in [
            "keys.txt",
            "control.txt",
            "cap.pcapng",
            "tshark.out",
            "server.out",
        ] {
            let _ = fs::remove_file(f.join(p));
        }
        let script = format!(
            "tshark -q -i lo -w cap.pcapng -f 'tcp port 5061' >tshark.out 2>&1 &\n\
             ts=$!\n\
             {wait_ts}\n\
             openssl s_server -accept {ip0}:5061 -cert ua0.crt -key ua0.key -naccept 2 -www >server.out 2>&1 &\n\
             srv=$!\n\
             {wait_srv}\n\
             SSLKEYLOGFILE=\"$PWD/control.txt\" openssl s_client -connect {ip0}:5061 -CAfile ca.pem \
               {flag} </dev/null >control.out 2>&1\n\
             SSLKEYLOGFILE=\"$PWD/keys.txt\" LD_PRELOAD='{lib}' openssl s_client -connect {ip0}:5061 \
               -CAfile ca.pem -verify_ip {ip0} -verify_return_error {flag} <request.txt >client.out 2>&1\n\
             wait $srv || true\n\
             sleep 0.5\n\
             kill -INT $ts; wait $ts || true",
            wait_ts = sh_wait_for("tshark.out", "Capture started\\|Capturing on"),
            wait_srv = sh_wait_for("server.out", "ACCEPT"),
            lib = lib.display(),
        );
        let (ok, out) = in_netns(f, &script);
        assert!(ok, "{flag}: {out}");
        assert!(
            !f.join("control.txt").exists(),
            "{flag}: openssl s_client writes keys without the library: the test proves nothing"
        );
        let keys = fs::read_to_string(f.join("keys.txt")).expect("keys.txt written");
        assert!(keys.lines().any(|l| l.starts_with(line)), "{flag}: {keys}");
        assert_eq!(mode(&f.join("keys.txt")), 0o600);
        let tshark = |extra: &[&str]| {
            let out = Command::new("tshark")
                .arg("-r")
                .arg(f.join("cap.pcapng"))
                .args(extra)
                .output()
                .expect("tshark -r");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let handshakes = tshark(&["-Y", "tls.handshake", "-T", "fields", "-e", "frame.number"]);
        assert!(
            !handshakes.trim().is_empty(),
            "{flag}: no TLS in the capture"
        );
        let fields = [
            "-Y",
            "sip",
            "-T",
            "fields",
            "-e",
            "sip.Method",
            "-e",
            "sip.Call-ID",
        ];
        assert_eq!(
            tshark(&fields).trim(),
            "",
            "{flag}: readable without the keys?"
        );
        let keylog = format!("tls.keylog_file:{}", f.join("keys.txt").display());
        let mut with_keys = vec!["-o", &keylog];
        with_keys.extend(fields);
        assert_eq!(
            tshark(&with_keys).trim(),
            format!("OPTIONS\t{call_id}"),
            "{flag}: the SIP request is not readable with the keys"
        );
        took(&format!("keylog + tshark {flag}"), t0);
    }
}

/// Writes a stand-in `sipp` into `dir/bin`: `-v` prints `banner`; otherwise it records its
/// argv (one per line, `$0` first) in `fake-sipp-argv.txt` and its TLS environment in
/// `fake-sipp-env.txt` in its working directory (the run folder), and exits 0.
fn fake_sipp(dir: &Path, banner: &str) -> PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let sipp = bin.join("sipp");
    fs::write(
        &sipp,
        format!(
            "#!/bin/sh\n\
             if [ \"$1\" = -v ]; then printf '\\n SIPp {banner}.\\n\\n'; exit 0; fi\n\
             printf '%s\\n' \"$0\" \"$@\" > fake-sipp-argv.txt\n\
             printf 'SSLKEYLOGFILE=%s\\nLD_PRELOAD=%s\\n' \"${{SSLKEYLOGFILE-unset}}\" \"${{LD_PRELOAD-unset}}\" > fake-sipp-env.txt\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&sipp, fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn path_with(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// A TLS run with a SIPp built without TLS stops at start with one line that says so and what to
/// install (exit status 2, nothing made); with --dry-run it is a warning and the certificates
/// are made all the same.
#[test]
fn sipp_without_tls_is_an_error_at_start_and_a_warning_in_a_dry_run() {
    let sb = Sandbox::new();
    two_ua_suite(&sb, &["t"]);
    let bin = fake_sipp(sb.dir.path(), "v3.6.1-SCTP-PCAP-RTPSTREAM");
    let mut cmd = Command::new(BIN);
    cmd.args(["--dut", "127.0.0.1", "--testsuite"])
        .arg(sb.suite())
        .arg("--run-root")
        .arg(sb.run_root())
        .arg("--log-file")
        .arg(sb.log())
        .args(["--sipp-transport", "l1"])
        .env("PATH", path_with(&bin));
    let r = run(cmd);
    assert_eq!(r.status, 2, "{}\n{}", r.stdout, r.stderr);
    let err = r.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    for part in [
        "--sipp-transport l1",
        "v3.6.1-SCTP-PCAP-RTPSTREAM",
        "was built without TLS",
        "install a SIPp built with OpenSSL",
    ] {
        assert!(err.contains(part), "{err:?} lacks {part:?}");
    }
    assert!(state_lines(&r.stdout).is_empty());
    assert!(!sb.run_root().exists(), "nothing is made");
    assert!(!sb.log().exists(), "the general log was made");

    let mut cmd = sb.cmd();
    cmd.args(["--leave-temp", "--sipp-transport", "l1"])
        .env("PATH", path_with(&bin));
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("warning:") && r.stderr.contains("was built without TLS"),
        "{}",
        r.stderr
    );
    let f = &sb.run_folders()[0];
    for file in ["ca.pem", "ua0.crt", "ua0.key", "ua1.crt", "ua1.key"] {
        assert!(f.join(file).is_file(), "{file} not made in the dry run");
    }

    // A SIPp with TLS: no warning.
    let sb2 = Sandbox::new();
    two_ua_suite(&sb2, &["t"]);
    let bin = fake_sipp(sb2.dir.path(), "v3.7.3-TLS-SCTP-PCAP-RTPSTREAM");
    let mut cmd = sb2.cmd();
    cmd.args(["--sipp-transport", "l1"])
        .env("PATH", path_with(&bin));
    let r = run(cmd);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("TLS"), "{}", r.stderr);
}

/// Runs sipplauncher with `args` (dry run, sandbox suite); expects one line with every part of
/// `expect`, exit status 2, and no run root made.
fn bad(sb: &Sandbox, args: &[&str], expect: &[&str]) {
    let mut cmd = sb.cmd();
    cmd.args(args);
    expect_usage_error(sb, cmd, &format!("{args:?}"), expect);
}

/// Each bad TLS option combination of SPEC §3, and each bad user CA, is one line naming the
/// option and the problem, exit status 2, before anything is made. A key that is not PKCS#8 is
/// told how to convert it, and the key so converted works.
#[test]
fn each_bad_tls_option_gives_its_error() {
    need("bad TLS options", &["openssl"]);
    let t0 = Instant::now();
    let sb = Sandbox::new();
    two_ua_suite(&sb, &["t"]);
    let d = sb.dir.path();
    let p = |f: &str| d.join(f).to_str().unwrap().to_string();
    let (ca_crt, ca_key) = openssl_ca(
        d,
        "good-ca",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &[],
    );
    let (crt, key) = (ca_crt.to_str().unwrap(), ca_key.to_str().unwrap());

    // One without the other.
    bad(
        &sb,
        &["--tls-ca-root-cert", crt],
        &["--tls-ca-root-cert given without --tls-ca-root-key"],
    );
    bad(
        &sb,
        &["--tls-ca-root-key", key],
        &["--tls-ca-root-key given without --tls-ca-root-cert"],
    );
    // TLS options with a transport that is not TLS.
    for t in ["u1", "un", "ui", "t1", "tn"] {
        bad(
            &sb,
            &[
                "--tls-ca-root-cert",
                crt,
                "--tls-ca-root-key",
                key,
                "--sipp-transport",
                t,
            ],
            &[&format!("--sipp-transport {t} is not a TLS transport")],
        );
        bad(
            &sb,
            &["--sipp-tls-version", "1.2", "--sipp-transport", t],
            &["--sipp-tls-version needs a TLS transport"],
        );
    }
    // --sipp-tls-version alone does not turn TLS on.
    bad(
        &sb,
        &["--sipp-tls-version", "1.2"],
        &["--sipp-tls-version needs a TLS transport"],
    );
    bad(
        &sb,
        &["--sipp-tls-version", "1.3", "--sipp-transport", "l1"],
        &["--sipp-tls-version", "1.0, 1.1, 1.2"],
    );

    // Keys that are not PKCS#8: PKCS#1 RSA, SEC1 EC, encrypted PKCS#8.
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa8.key",
        ],
    );
    openssl(
        d,
        &["rsa", "-in", "rsa8.key", "-traditional", "-out", "rsa1.key"],
    );
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "sec1.key",
        ],
    );
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-aes256",
            "-pass",
            "pass:secret",
            "-out",
            "enc.key",
        ],
    );
    for (file, kind, label) in [
        ("rsa1.key", "PKCS#1 RSA key", "BEGIN RSA PRIVATE KEY"),
        ("sec1.key", "SEC1 EC key", "BEGIN EC PRIVATE KEY"),
        (
            "enc.key",
            "encrypted PKCS#8 key",
            "BEGIN ENCRYPTED PRIVATE KEY",
        ),
    ] {
        assert!(
            fs::read_to_string(d.join(file)).unwrap().contains(label),
            "{file}"
        );
        // The CA certificate of that very key: only its format is wrong.
        let c = format!("{file}.crt");
        let mut args = vec![
            "req", "-x509", "-days", "2", "-subj", "/CN=ca", "-key", file, "-out", &c,
        ];
        if file == "enc.key" {
            args.extend(["-passin", "pass:secret"]);
        }
        openssl(d, &args);
        bad(
            &sb,
            &["--tls-ca-root-cert", &p(&c), "--tls-ca-root-key", &p(file)],
            &[
                "--tls-ca-root-key: ",
                kind,
                "not an unencrypted PKCS#8 key",
                TO_PKCS8,
            ],
        );
    }
    // The command the message tells does turn the SEC1 key into one that is taken.
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "sec1.key",
            "-out",
            "sec1-8.key",
        ],
    );
    let ok = Sandbox::new();
    two_ua_suite(&ok, &["t"]);
    tls_dry_run(
        &ok,
        &[
            "--tls-ca-root-cert",
            &p("sec1.key.crt"),
            "--tls-ca-root-key",
            &p("sec1-8.key"),
        ],
    );

    // A certificate that is not a CA: openssl's, and a UA certificate of a run.
    openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=leaf",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
        ],
    );
    openssl(
        d,
        &[
            "x509", "-req", "-in", "leaf.csr", "-CA", crt, "-CAkey", key, "-days", "2", "-out",
            "leaf.crt",
        ],
    );
    assert!(!openssl(d, &["x509", "-in", "leaf.crt", "-noout", "-text"]).contains("CA:TRUE"));
    bad(
        &sb,
        &[
            "--tls-ca-root-cert",
            &p("leaf.crt"),
            "--tls-ca-root-key",
            &p("leaf.key"),
        ],
        &["--tls-ca-root-cert: ", "leaf.crt is not a CA certificate"],
    );
    let ua_folder = &ok.run_folders()[0];
    bad(
        &sb,
        &[
            "--tls-ca-root-cert",
            ua_folder.join("ua0.crt").to_str().unwrap(),
            "--tls-ca-root-key",
            ua_folder.join("ua0.key").to_str().unwrap(),
        ],
        &["--tls-ca-root-cert: ", "is not a CA certificate"],
    );
    // A CA whose key usage forbids signing certificates.
    let (nosign_crt, nosign_key) = openssl_ca(
        d,
        "nosign-ca",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &["keyUsage=critical,digitalSignature"],
    );
    bad(
        &sb,
        &[
            "--tls-ca-root-cert",
            nosign_crt.to_str().unwrap(),
            "--tls-ca-root-key",
            nosign_key.to_str().unwrap(),
        ],
        &["--tls-ca-root-cert: ", "keyCertSign"],
    );
    // A key that is not the certificate's (both PKCS#8).
    bad(
        &sb,
        &[
            "--tls-ca-root-cert",
            crt,
            "--tls-ca-root-key",
            &p("rsa8.key"),
        ],
        &[
            "--tls-ca-root-key: ",
            "rsa8.key does not match the certificate",
            "good-ca.crt",
        ],
    );
    // Not PEM at all.
    fs::write(d.join("junk.pem"), "junk").unwrap();
    bad(
        &sb,
        &[
            "--tls-ca-root-cert",
            &p("junk.pem"),
            "--tls-ca-root-key",
            key,
        ],
        &["--tls-ca-root-cert: ", "holds no PEM certificate"],
    );
    bad(
        &sb,
        &[
            "--tls-ca-root-cert",
            crt,
            "--tls-ca-root-key",
            &p("junk.pem"),
        ],
        &["--tls-ca-root-key: ", "holds no PEM private key"],
    );
    took("bad TLS options", t0);
}

/// A real TLS run (in the lab, against Kamailio) with a stand-in SIPp that has TLS: the argv it
/// gets (snapshot), its certificate for its address in the run folder, and its environment:
/// `SSLKEYLOGFILE` in the run folder, and `LD_PRELOAD` of the key log library for a SIPp older
/// than 3.7.5 only.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root and a lab: cargo test --features lab, as root"
)]
fn real_tls_run_gives_sipp_its_certificate_and_key_log() {
    let lab = Lab::up("tls_fake_sipp");
    let lib = keylog_library();
    for (banner, preload) in [
        ("v3.6.1-TLS-SCTP-PCAP-RTPSTREAM", true),
        ("v3.7.5-TLS-PCAP-RTPSTREAM", false),
    ] {
        let t0 = Instant::now();
        let sb = Sandbox::new();
        write_suite(
            &sb.suite(),
            &[(
                "tls-0000/uac_ua0.xml",
                "<?xml version=\"1.0\"?>\n<!-- hosts ua0={{ ua0.host }} -->\n<scenario name=\"x\"/>\n",
            )],
        );
        let bin = fake_sipp(sb.dir.path(), banner);
        let mut cmd = Command::new("env");
        cmd.arg(format!("PATH={}", path_with(&bin)))
            .arg(format!("SIPPLAUNCHER_KEYLOG_LIBRARY={}", lib.display()))
            .arg(BIN)
            .args(["--dut", &lab.dut().to_string(), "--testsuite"])
            .arg(sb.suite())
            .arg("--run-root")
            .arg(sb.run_root())
            .arg("--log-file")
            .arg(sb.log())
            .args(["--group-pause", "0", "--no-pcap", "--leave-temp"])
            .args(["--sipp-transport", "l1", "--sipp-tls-version", "1.2"]);
        let child = lab
            .wrap(&cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sipplauncher in the lab");
        let out = wait_with_timeout(child, Duration::from_secs(60), "sipplauncher");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(0), "{banner}: {stdout}\n{stderr}");
        let f = &sb.run_folders()[0];
        let ip = hosts_of(f)["ua0"];
        let argv = fs::read_to_string(f.join("fake-sipp-argv.txt")).unwrap();
        let argv: Vec<&str> = argv.lines().collect();
        let ms = argv.iter().position(|a| *a == "-max_socket").unwrap() + 1;
        let mut shown: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        shown[ms] = "N".into();
        shown[0] = "SIPP".into();
        assert_eq!(
            shown.join(" "),
            format!(
                "SIPP -i {ip} -p 5061 -t l1 -sf uac_ua0.xml -recv_timeout 5000 -r 1 -l 1 -m 1 \
                 -log_file uac_ua0_log_file -screen_file uac_ua0_screen_file -trace_err \
                 -trace_calldebug -trace_error_codes -trace_msg -trace_logs -trace_screen \
                 {dut}:5061 -tls_cert ua0.crt -tls_key ua0.key -tls_version 1.2 -max_socket N \
                 -trace_stat -stf uac_ua0_trace.csv -fd 60 -nostdin",
                dut = lab.dut()
            ),
            "{banner}"
        );
        assert_eq!(Path::new(argv[0]), bin.join("sipp"));
        let env = fs::read_to_string(f.join("fake-sipp-env.txt")).unwrap();
        let expect_preload = if preload {
            lib.display().to_string()
        } else {
            "unset".into()
        };
        assert_eq!(
            env,
            format!(
                "SSLKEYLOGFILE={}\nLD_PRELOAD={expect_preload}\n",
                f.join("tls_premaster_keys.txt").display()
            ),
            "{banner}"
        );
        let v = openssl(f, &["verify", "-CAfile", "ca.pem", "ua0.crt"]);
        assert!(v.contains("ua0.crt: OK"), "{v}");
        let san = openssl(
            f,
            &["x509", "-in", "ua0.crt", "-noout", "-ext", "subjectAltName"],
        );
        assert!(san.contains(&format!("IP Address:{ip}")), "{san}");
        assert_eq!(mode(&f.join("ua0.key")), 0o600);
        assert_eq!(mode(&f.join("tls_premaster_keys.txt")), 0o600);
        took(&format!("real TLS run with a stand-in SIPp {banner}"), t0);
    }
}
