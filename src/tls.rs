//! TLS material (SPEC §8): the run's CA (the user's `--tls-ca-root-cert`/`--tls-ca-root-key`,
//! checked at start, or an ephemeral one made once per run), each UA's certificate and key
//! written into its run folder, and where the key log library for older SIPp is installed.
//!
//! Every key made here is ECDSA P-256, or RSA 2048 with `--tls-key-type rsa` (what the original
//! made, for a DUT that takes nothing else); every certificate is valid from a day ago (clocks of
//! the DUT and of this machine need not agree to the second) to 30 days ahead. A UA's certificate names its address
//! as an IP subject alternative name and serves both ends of a connection (server and client
//! authentication), since one SIPp instance may accept and open connections.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::RngExt;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use sipplauncher_actors::core::plan::UaName;
use time::{Duration, OffsetDateTime};
use x509_parser::pem::Pem;

/// The CA's certificate in each run folder, for the user to trust on the DUT.
pub const CA_FILE: &str = "ca.pem";

/// The TLS key log in each run folder (`SSLKEYLOGFILE`), for Wireshark.
pub const KEYLOG_FILE: &str = "tls_premaster_keys.txt";

/// The key log library for SIPp older than 3.7.5 (the `keylog/` crate of this workspace).
pub const KEYLOG_LIBRARY: &str = "libsipplauncher_keylog.so";

/// From 3.7.5 SIPp writes its TLS keys to `$SSLKEYLOGFILE` itself.
pub const SIPP_WRITES_KEYLOG: (u32, u32, u32) = (3, 7, 5);

/// How to turn another kind of PEM key into the PKCS#8 one that is read here.
const TO_PKCS8: &str = "openssl pkcs8 -topk8 -nocrypt -in key.pem -out key8.pem";

/// A CA or UA certificate that cannot be had; one line, naming the option or file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{option}: {} cannot be read: {source}", path.display())]
    Read {
        option: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--tls-ca-root-cert: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", .0.display())]
    NoCertificate(PathBuf),
    #[error("--tls-ca-root-cert: {} is not a valid X.509 certificate: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("--tls-ca-root-cert: {} is not a CA certificate (it lacks basicConstraints CA:TRUE)", .0.display())]
    NotACa(PathBuf),
    #[error("--tls-ca-root-cert: {} may not sign certificates (its key usage lacks keyCertSign)", .0.display())]
    MayNotSign(PathBuf),
    #[error("--tls-ca-root-cert: {} is not valid now (valid from {not_before} to {not_after})", path.display())]
    NotValidNow {
        path: PathBuf,
        not_before: String,
        not_after: String,
    },
    #[error("--tls-ca-root-key: {} holds no PEM private key", .0.display())]
    NoKey(PathBuf),
    #[error(
        "--tls-ca-root-key: {} is {kind}, not an unencrypted PKCS#8 key (-----BEGIN PRIVATE KEY-----): convert it with `{}`",
        path.display(),
        TO_PKCS8
    )]
    NotPkcs8 { path: PathBuf, kind: &'static str },
    #[error(
        "--tls-ca-root-key: {} is not a usable key ({reason}): use ECDSA P-256 or P-384, Ed25519 or RSA of 2048 bits or more, in PKCS#8",
        path.display()
    )]
    UnusableKey { path: PathBuf, reason: String },
    #[error("--tls-ca-root-key: {} does not match the certificate {}", key.display(), cert.display())]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("make the run's ephemeral CA: {0}")]
    Ephemeral(#[source] CertError),
    #[error("make the certificate of {ua} ({ip}): {source}")]
    Issue {
        ua: String,
        ip: Ipv4Addr,
        #[source]
        source: CertError,
    },
    #[error("write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a key or a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error(transparent)]
    Rcgen(#[from] rcgen::Error),
    #[error("generate an RSA key: {0}")]
    Rsa(#[from] rsa::Error),
    #[error("encode an RSA key: {0}")]
    Pkcs8(#[from] rsa::pkcs8::Error),
}

/// The kind of key made for each UA (and for the ephemeral CA): `--tls-key-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyType {
    /// ECDSA P-256: small, fast to make.
    #[default]
    Ecdsa,
    /// RSA 2048 bits, signed with SHA-256: as the original made them.
    Rsa,
}

impl KeyType {
    pub const ALLOWED: &'static str = "ecdsa, rsa";

    pub fn parse(s: &str) -> Option<KeyType> {
        match s {
            "ecdsa" => Some(KeyType::Ecdsa),
            "rsa" => Some(KeyType::Rsa),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ecdsa => "ecdsa",
            KeyType::Rsa => "rsa",
        }
    }

    /// A fresh key of this type.
    fn generate(self) -> Result<KeyPair, CertError> {
        match self {
            KeyType::Ecdsa => Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?),
            KeyType::Rsa => {
                // rcgen's backend (ring) signs with RSA keys but does not make them.
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
                let der = key.to_pkcs8_der()?;
                Ok(KeyPair::try_from(der.as_bytes())?)
            }
        }
    }
}

/// The CA that signs the UAs' certificates of a whole run.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The kind of key each UA gets.
    key_type: KeyType,
    /// The CA's certificate, PEM, as written to each run folder's `ca.pem`.
    cert_pem: String,
    /// The user's certificate file, or `None` for the ephemeral CA.
    from: Option<PathBuf>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Ca").field("from", &self.from).finish()
    }
}

/// A UA's certificate and key, both PEM.
#[derive(Clone)]
pub struct UaCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for UaCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UaCert").finish_non_exhaustive()
    }
}

/// The files of one UA in its run folder, relative to it (SIPp runs there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UaFiles {
    /// `<ua>.crt`
    pub cert: String,
    /// `<ua>.key`, readable by the owner only.
    pub key: String,
}

impl UaFiles {
    pub fn of(ua: &UaName) -> UaFiles {
        UaFiles {
            cert: format!("{ua}.crt"),
            key: format!("{ua}.key"),
        }
    }
}

/// Parameters every certificate made here shares: valid from a day ago to 30 days ahead, a
/// random serial, and a subject of organization "sipplauncher" plus `names`.
fn base_params(names: &[(DnType, String)]) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(30);
    params.serial_number = Some(serial());
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "sipplauncher");
    for (kind, value) in names {
        dn.push(kind.clone(), value.as_str());
    }
    params.distinguished_name = dn;
    params
}

/// A random positive 128-bit serial number (RFC 5280: unique per CA, at most 20 octets).
fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

impl Ca {
    /// A fresh CA for this run only, with a key of `key_type`: its key never leaves memory.
    pub fn ephemeral(key_type: KeyType) -> Result<Ca, TlsError> {
        let key = key_type.generate().map_err(TlsError::Ephemeral)?;
        let mut params = base_params(&[(DnType::CommonName, "sipplauncher ephemeral CA".into())]);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(|e| TlsError::Ephemeral(e.into()))?;
        Ok(Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            key_type,
            from: None,
        })
    }

    /// The user's CA: `cert` is a PEM certificate of a CA that may sign certificates and is
    /// valid now, `key` its unencrypted PKCS#8 PEM key. Each problem is one line naming the
    /// option; a key of another format names the command that converts it. The UAs get keys
    /// of `key_type`, whatever the CA's own.
    pub fn load(cert: &Path, key: &Path, key_type: KeyType) -> Result<Ca, TlsError> {
        let read = |option: &'static str, path: &Path| {
            fs::read(path).map_err(|source| TlsError::Read {
                option,
                path: path.to_path_buf(),
                source,
            })
        };
        let cert_text = read("--tls-ca-root-cert", cert)?;
        let key_text = read("--tls-ca-root-key", key)?;

        let cert_pem = Pem::iter_from_buffer(&cert_text)
            .filter_map(Result::ok)
            .find(|p| p.label == "CERTIFICATE" || p.label == "X509 CERTIFICATE")
            .ok_or_else(|| TlsError::NoCertificate(cert.to_path_buf()))?;
        let bad_cert = |reason: String| TlsError::BadCertificate {
            path: cert.to_path_buf(),
            reason,
        };
        let (_, x509) = x509_parser::parse_x509_certificate(&cert_pem.contents)
            .map_err(|e| bad_cert(e.to_string()))?;
        if !x509.is_ca() {
            return Err(TlsError::NotACa(cert.to_path_buf()));
        }
        if let Ok(Some(ku)) = x509.key_usage() {
            if !ku.value.key_cert_sign() {
                return Err(TlsError::MayNotSign(cert.to_path_buf()));
            }
        }
        if !x509.validity().is_valid() {
            return Err(TlsError::NotValidNow {
                path: cert.to_path_buf(),
                not_before: x509.validity().not_before.to_string(),
                not_after: x509.validity().not_after.to_string(),
            });
        }

        let key_pair = load_key(key, &key_text)?;
        if key_pair.der_bytes() != x509.public_key().subject_public_key.data.as_ref() {
            return Err(TlsError::KeyMismatch {
                key: key.to_path_buf(),
                cert: cert.to_path_buf(),
            });
        }
        let issuer = Issuer::from_ca_cert_der(&cert_pem.contents.clone().into(), key_pair)
            .map_err(|e| bad_cert(e.to_string()))?;
        Ok(Ca {
            issuer,
            key_type,
            cert_pem: pem_of("CERTIFICATE", &cert_pem.contents),
            from: Some(cert.to_path_buf()),
        })
    }

    /// The CA's certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The user's certificate file, or `None` for the ephemeral CA.
    pub fn user_file(&self) -> Option<&Path> {
        self.from.as_deref()
    }

    /// A fresh key (of the run's key type) and a certificate for `ip`, signed by this CA.
    pub fn issue(&self, ua: &UaName, ip: Ipv4Addr) -> Result<UaCert, TlsError> {
        let err = |source: CertError| TlsError::Issue {
            ua: ua.to_string(),
            ip,
            source,
        };
        let key = self.key_type.generate().map_err(err)?;
        let mut params = base_params(&[
            (DnType::OrganizationalUnitName, ua.0.clone()),
            (DnType::CommonName, ip.to_string()),
        ]);
        params.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(ip))];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| err(e.into()))?;
        Ok(UaCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes `ca.pem`, an empty key log (owner only: SIPp appends to it and keeps its mode)
    /// and, for each UA, `<ua>.crt` and `<ua>.key` (owner only) into a run folder; returns the
    /// UAs' file names.
    pub fn write_run_folder(
        &self,
        folder: &Path,
        uas: &BTreeMap<UaName, Ipv4Addr>,
    ) -> Result<BTreeMap<UaName, UaFiles>, TlsError> {
        write_file(&folder.join(CA_FILE), self.cert_pem.as_bytes(), 0o644)?;
        write_file(&folder.join(KEYLOG_FILE), b"", 0o600)?;
        let mut out = BTreeMap::new();
        for (ua, ip) in uas {
            let c = self.issue(ua, *ip)?;
            let files = UaFiles::of(ua);
            write_file(&folder.join(&files.cert), c.cert_pem.as_bytes(), 0o644)?;
            write_file(&folder.join(&files.key), c.key_pem.as_bytes(), 0o600)?;
            out.insert(ua.clone(), files);
        }
        Ok(out)
    }
}

/// Reads a PKCS#8 PEM key; any other kind of key gets the command that converts it.
fn load_key(path: &Path, text: &[u8]) -> Result<KeyPair, TlsError> {
    let blocks: Vec<Pem> = Pem::iter_from_buffer(text).filter_map(Result::ok).collect();
    let not_pkcs8 = |kind| TlsError::NotPkcs8 {
        path: path.to_path_buf(),
        kind,
    };
    let pkcs8 = blocks.iter().find(|p| p.label == "PRIVATE KEY");
    let Some(pkcs8) = pkcs8 else {
        return Err(
            match blocks
                .iter()
                .map(|p| p.label.as_str())
                .find(|l| l.ends_with("PRIVATE KEY"))
            {
                Some("RSA PRIVATE KEY") => {
                    not_pkcs8("a PKCS#1 RSA key (-----BEGIN RSA PRIVATE KEY-----)")
                }
                Some("EC PRIVATE KEY") => {
                    not_pkcs8("a SEC1 EC key (-----BEGIN EC PRIVATE KEY-----)")
                }
                Some("ENCRYPTED PRIVATE KEY") => not_pkcs8("an encrypted PKCS#8 key"),
                Some("DSA PRIVATE KEY") => not_pkcs8("a DSA key"),
                Some("OPENSSH PRIVATE KEY") => not_pkcs8("an OpenSSH key"),
                _ => TlsError::NoKey(path.to_path_buf()),
            },
        );
    };
    KeyPair::try_from(pkcs8.contents.as_slice()).map_err(|e| TlsError::UnusableKey {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// `der` in PEM with the given label, 64 columns as OpenSSL writes it.
fn pem_of(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // Base64 is ASCII: any chunk of it is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes a fresh file with `mode`: a file already there (from the test folder, or a link) is
/// removed first, so the key is never written through a link nor left with wider permissions.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let err = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.write_all(contents).map_err(err)
}

/// Where the key log library is looked for, in order: beside the `sipplauncher` executable (as
/// `cargo build` leaves them), then in `../lib/sipplauncher/` from the executable's folder (an
/// install under a prefix: `/usr/local/bin/sipplauncher` and
/// `/usr/local/lib/sipplauncher/libsipplauncher_keylog.so`).
pub fn keylog_library_candidates(exe: &Path) -> Vec<PathBuf> {
    let Some(dir) = exe.parent() else {
        return Vec::new();
    };
    let mut out = vec![dir.join(KEYLOG_LIBRARY)];
    if let Some(prefix) = dir.parent() {
        out.push(prefix.join("lib/sipplauncher").join(KEYLOG_LIBRARY));
    }
    out
}

/// Names the key log library explicitly, instead of the places of
/// [`keylog_library_candidates`] (for an install elsewhere, and for the tests).
pub const KEYLOG_LIBRARY_ENV: &str = "SIPPLAUNCHER_KEYLOG_LIBRARY";

/// The installed key log library, if any: `$SIPPLAUNCHER_KEYLOG_LIBRARY` when set (an absolute
/// path to an existing file, else none), otherwise the first of
/// [`keylog_library_candidates`] that exists.
pub fn keylog_library() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(KEYLOG_LIBRARY_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        // SIPp runs in the run folder: a relative path would name another file there.
        return (p.is_absolute() && p.is_file()).then_some(p);
    }
    let exe = std::env::current_exe().ok()?;
    let exe = fs::canonicalize(&exe).unwrap_or(exe);
    keylog_library_candidates(&exe)
        .into_iter()
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::X509Certificate;

    fn parse(pem: &str) -> Vec<u8> {
        Pem::iter_from_buffer(pem.as_bytes())
            .next()
            .expect("a PEM block")
            .expect("valid PEM")
            .contents
    }

    fn ua(n: &str) -> UaName {
        UaName(n.into())
    }

    fn days(d: time::Duration) -> f64 {
        d.as_seconds_f64() / 86400.0
    }

    fn check_ua_cert(ca: &Ca, der: &[u8], ip: Ipv4Addr) {
        check_ua_cert_of(ca, der, ip, KeyType::Ecdsa)
    }

    fn check_ua_cert_of(ca: &Ca, der: &[u8], ip: Ipv4Addr, key_type: KeyType) {
        let (_, c): (_, X509Certificate) = x509_parser::parse_x509_certificate(der).unwrap();
        let ca_der = parse(ca.cert_pem());
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        // Signed by the CA.
        assert_eq!(c.issuer(), ca_cert.subject());
        c.verify_signature(Some(ca_cert.public_key()))
            .expect("signed by the CA");
        // The SAN is the UA's address, and nothing else.
        let san = c.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            san.value.general_names,
            vec![GeneralName::IPAddress(&ip.octets())]
        );
        assert!(!c.is_ca());
        // From a day ago to 30 days ahead.
        let now = OffsetDateTime::now_utc();
        let nb = c.validity().not_before.to_datetime();
        let na = c.validity().not_after.to_datetime();
        assert!((days(now - nb) - 1.0).abs() < 0.01, "{nb}");
        assert!((days(na - now) - 30.0).abs() < 0.01, "{na}");
        match (key_type, c.public_key().parsed().unwrap()) {
            (KeyType::Ecdsa, x509_parser::public_key::PublicKey::EC(p)) => {
                // P-256.
                assert_eq!(p.key_size(), 256);
            }
            (KeyType::Rsa, x509_parser::public_key::PublicKey::RSA(r)) => {
                assert_eq!(r.key_size(), 2048);
            }
            (t, k) => panic!("{t:?} key expected, got {k:?}"),
        }
    }

    /// `--tls-key-type rsa`: RSA 2048 for the ephemeral CA and the UAs, signed with SHA-256,
    /// the IP SAN kept; a user's CA of another key type signs RSA UAs too.
    #[test]
    fn rsa_keys_as_the_original_made() {
        let ca = Ca::ephemeral(KeyType::Rsa).unwrap();
        let ca_der = parse(ca.cert_pem());
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert!(matches!(
            ca_cert.public_key().parsed().unwrap(),
            x509_parser::public_key::PublicKey::RSA(r) if r.key_size() == 2048
        ));
        let ip = Ipv4Addr::new(10, 22, 22, 102);
        let c = ca.issue(&ua("ua1"), ip).unwrap();
        let der = parse(&c.cert_pem);
        check_ua_cert_of(&ca, &der, ip, KeyType::Rsa);
        let (_, leaf) = x509_parser::parse_x509_certificate(&der).unwrap();
        // sha256WithRSAEncryption
        assert_eq!(
            leaf.signature_algorithm.algorithm.to_id_string(),
            "1.2.840.113549.1.1.11"
        );
        assert!(c.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let key = KeyPair::from_pem(&c.key_pem).unwrap();
        assert_eq!(
            key.der_bytes(),
            leaf.public_key().subject_public_key.data.as_ref()
        );
        // An ECDSA user CA, RSA UAs.
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = user_ca(
            dir.path(),
            &KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            IsCa::Ca(BasicConstraints::Unconstrained),
            vec![KeyUsagePurpose::KeyCertSign],
        );
        let ca = Ca::load(&cert, &key, KeyType::Rsa).unwrap();
        let c = ca.issue(&ua("ua0"), ip).unwrap();
        check_ua_cert_of(&ca, &parse(&c.cert_pem), ip, KeyType::Rsa);
    }

    #[test]
    fn ephemeral_ca_signs_ua_certificates_with_their_ip() {
        let ca = Ca::ephemeral(KeyType::Ecdsa).unwrap();
        let ca_der = parse(ca.cert_pem());
        let (_, cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert!(cert.is_ca());
        assert!(cert.key_usage().unwrap().unwrap().value.key_cert_sign());
        let ip = Ipv4Addr::new(10, 22, 22, 101);
        let c = ca.issue(&ua("ua0"), ip).unwrap();
        check_ua_cert(&ca, &parse(&c.cert_pem), ip);
        assert!(c.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        // The key is the certificate's.
        let key = KeyPair::from_pem(&c.key_pem).unwrap();
        let leaf_der = parse(&c.cert_pem);
        let (_, leaf) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
        assert_eq!(
            key.der_bytes(),
            leaf.public_key().subject_public_key.data.as_ref()
        );
        // Every certificate gets its own key and serial.
        let d = ca.issue(&ua("ua0"), ip).unwrap();
        assert_ne!(c.key_pem, d.key_pem);
        let leaf2_der = parse(&d.cert_pem);
        let (_, leaf2) = x509_parser::parse_x509_certificate(&leaf2_der).unwrap();
        assert_ne!(leaf.raw_serial(), leaf2.raw_serial());
        // Two runs, two CAs.
        assert_ne!(
            ca.cert_pem(),
            Ca::ephemeral(KeyType::Ecdsa).unwrap().cert_pem()
        );
    }

    #[test]
    fn run_folder_gets_ca_and_owner_only_keys() {
        let dir = tempfile::tempdir().unwrap();
        // A key file of the test folder (or a link) is replaced, not written through.
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("ua1.key")).unwrap();
        let ca = Ca::ephemeral(KeyType::Ecdsa).unwrap();
        let hosts: BTreeMap<UaName, Ipv4Addr> = [
            (ua("ua0"), Ipv4Addr::new(127, 0, 0, 10)),
            (ua("ua1"), Ipv4Addr::new(127, 0, 0, 11)),
        ]
        .into();
        let files = ca.write_run_folder(dir.path(), &hosts).unwrap();
        assert_eq!(
            files[&ua("ua1")],
            UaFiles {
                cert: "ua1.crt".into(),
                key: "ua1.key".into()
            }
        );
        assert_eq!(
            fs::read_to_string(dir.path().join(CA_FILE)).unwrap(),
            ca.cert_pem()
        );
        let keylog = dir.path().join(KEYLOG_FILE);
        assert_eq!(fs::read(&keylog).unwrap(), b"");
        assert_eq!(
            fs::metadata(&keylog).unwrap().permissions().mode() & 0o777,
            0o600
        );
        for (u, ip) in &hosts {
            let f = &files[u];
            let key = dir.path().join(&f.key);
            let meta = fs::symlink_metadata(&key).unwrap();
            assert!(meta.is_file());
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", f.key);
            let cert = fs::read_to_string(dir.path().join(&f.cert)).unwrap();
            check_ua_cert(&ca, &parse(&cert), *ip);
        }
        assert!(!fs::read_to_string("/etc/hostname")
            .unwrap_or_default()
            .contains("PRIVATE"));
    }

    /// A user CA made here (rcgen), written as files.
    fn user_ca(
        dir: &Path,
        key: &KeyPair,
        is_ca: IsCa,
        usages: Vec<KeyUsagePurpose>,
    ) -> (PathBuf, PathBuf) {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "user CA");
        p.is_ca = is_ca;
        p.key_usages = usages;
        let cert = p.self_signed(key).unwrap();
        let (c, k) = (dir.join("ca.crt"), dir.join("ca.key"));
        fs::write(&c, cert.pem()).unwrap();
        fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn user_ca_signs_and_is_copied_to_ca_pem() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let (c, k) = user_ca(
            dir.path(),
            &key,
            IsCa::Ca(BasicConstraints::Unconstrained),
            vec![KeyUsagePurpose::KeyCertSign],
        );
        let ca = Ca::load(&c, &k, KeyType::Ecdsa).unwrap();
        assert_eq!(ca.user_file(), Some(c.as_path()));
        assert_eq!(
            parse(ca.cert_pem()),
            parse(&fs::read_to_string(&c).unwrap())
        );
        let ip = Ipv4Addr::new(192, 0, 2, 7);
        let u = ca.issue(&ua("ua3"), ip).unwrap();
        check_ua_cert(&ca, &parse(&u.cert_pem), ip);
    }

    #[test]
    fn bad_user_cas_are_one_line_naming_the_option() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let err = |c: &Path, k: &Path| Ca::load(c, k, KeyType::Ecdsa).unwrap_err().to_string();

        let (c, k) = user_ca(d, &key, IsCa::ExplicitNoCa, vec![]);
        let e = err(&c, &k);
        assert!(
            e.starts_with("--tls-ca-root-cert: ") && e.contains("not a CA"),
            "{e}"
        );

        let (c, k) = user_ca(d, &key, ca, vec![KeyUsagePurpose::DigitalSignature]);
        let e = err(&c, &k);
        assert!(e.contains("keyCertSign"), "{e}");

        let (c, _) = user_ca(d, &key, ca, vec![]);
        let k2 = d.join("other.key");
        fs::write(&k2, other.serialize_pem()).unwrap();
        let e = err(&c, &k2);
        assert!(
            e.starts_with("--tls-ca-root-key: ") && e.contains("does not match the certificate"),
            "{e}"
        );

        for (label, kind) in [
            ("RSA PRIVATE KEY", "PKCS#1"),
            ("EC PRIVATE KEY", "SEC1"),
            ("ENCRYPTED PRIVATE KEY", "encrypted"),
        ] {
            let k = d.join("k.pem");
            fs::write(&k, pem_of(label, b"\x30\x00")).unwrap();
            let e = err(&c, &k);
            assert!(
                e.starts_with("--tls-ca-root-key: ")
                    && e.contains(kind)
                    && e.contains("openssl pkcs8 -topk8 -nocrypt -in key.pem -out key8.pem"),
                "{e}"
            );
        }

        let junk = d.join("junk");
        fs::write(&junk, "not pem").unwrap();
        assert!(err(&c, &junk).contains("holds no PEM private key"));
        assert!(err(&junk, &k2).contains("holds no PEM certificate"));
        let bad = d.join("bad.pem");
        fs::write(&bad, pem_of("CERTIFICATE", b"\x30\x03\x02\x01\x00")).unwrap();
        assert!(err(&bad, &k2).contains("not a valid X.509 certificate"));
        let k8 = d.join("garbage8.pem");
        fs::write(&k8, pem_of("PRIVATE KEY", b"\x30\x03\x02\x01\x00")).unwrap();
        assert!(
            err(&c, &k8).contains("not a usable key"),
            "{}",
            err(&c, &k8)
        );
        for e in [err(&c, &k2), err(&junk, &k2), err(&c, &k8)] {
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn expired_user_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let (c, k) = (dir.path().join("c"), dir.path().join("k"));
        fs::write(&c, p.self_signed(&key).unwrap().pem()).unwrap();
        fs::write(&k, key.serialize_pem()).unwrap();
        let e = Ca::load(&c, &k, KeyType::Ecdsa).unwrap_err().to_string();
        assert!(e.contains("is not valid now") && e.contains("2001"), "{e}");
    }

    #[test]
    fn keylog_library_is_beside_the_binary_or_under_the_prefix() {
        assert_eq!(
            keylog_library_candidates(Path::new("/usr/local/bin/sipplauncher")),
            vec![
                PathBuf::from("/usr/local/bin/libsipplauncher_keylog.so"),
                PathBuf::from("/usr/local/lib/sipplauncher/libsipplauncher_keylog.so"),
            ]
        );
    }
}
