//! `libsipplauncher_keylog.so`: preloaded (`LD_PRELOAD`) into a SIPp older than 3.7.5, it writes
//! the TLS session keys of every connection to `$SSLKEYLOGFILE` in the NSS key log format that
//! Wireshark reads (SPEC §8). SIPp from 3.7.5 does this itself.
//!
//! How: it interposes OpenSSL's `SSL_CTX_new`, `SSL_CTX_new_ex` and `SSL_new`; each calls the
//! real function (found with `dlsym(RTLD_NEXT, ...)`) and installs a key log callback on the
//! context with `SSL_CTX_set_keylog_callback` (OpenSSL 1.1.1 and later), unless the program set
//! one of its own. The callback appends each line to the file with one `write` on an `O_APPEND`
//! descriptor, so the SIPp instances of a test can share one file.
//!
//! It links against nothing but libc: OpenSSL's functions are looked up at run time, so the
//! library builds without OpenSSL's headers, and in a program without OpenSSL (or with one older
//! than 1.1.1) it does nothing. Without `SSLKEYLOGFILE` it does nothing either.

#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::{c_char, c_void, CStr};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// OpenSSL's opaque types: only ever handled by pointer.
type SslCtx = c_void;
type Ssl = c_void;
type SslMethod = c_void;
type LibCtx = c_void;

/// `void (*)(const SSL *ssl, const char *line)`
type KeylogCallback = unsafe extern "C" fn(*const Ssl, *const c_char);
/// `void SSL_CTX_set_keylog_callback(SSL_CTX *ctx, SSL_CTX_keylog_cb_func cb)`
type SetKeylogCallback = unsafe extern "C" fn(*mut SslCtx, Option<KeylogCallback>);
/// `SSL_CTX_keylog_cb_func SSL_CTX_get_keylog_callback(const SSL_CTX *ctx)`
type GetKeylogCallback = unsafe extern "C" fn(*const SslCtx) -> Option<KeylogCallback>;
/// `SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)`
type CtxNew = unsafe extern "C" fn(*const SslMethod) -> *mut SslCtx;
/// `SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *meth)`
type CtxNewEx = unsafe extern "C" fn(*mut LibCtx, *const c_char, *const SslMethod) -> *mut SslCtx;
/// `SSL *SSL_new(SSL_CTX *ctx)`
type SslNew = unsafe extern "C" fn(*mut SslCtx) -> *mut Ssl;

/// The environment variable naming the key log file, as in OpenSSL, NSS and SIPp ≥ 3.7.5.
pub const ENV: &str = "SSLKEYLOGFILE";

/// Looks `$name` up with `dlsym(handle, name)` once and keeps it as a function pointer of type
/// `$ty`; `None` when no loaded object defines it.
macro_rules! resolve {
    ($handle:expr, $ty:ty, $name:literal) => {{
        static CELL: OnceLock<Option<$ty>> = OnceLock::new();
        *CELL.get_or_init(|| {
            let name: &CStr = $name;
            // SAFETY: dlsym only reads the NUL-terminated name; RTLD_NEXT and RTLD_DEFAULT are
            // valid pseudo-handles. It returns null when the symbol is not found.
            let p = unsafe { libc::dlsym($handle, name.as_ptr()) };
            if p.is_null() {
                None
            } else {
                // SAFETY: `p` is the address of OpenSSL's C function of that name, whose
                // prototype (ssl.h) is the one `$ty` spells; a data pointer and a function
                // pointer have the same size and representation on the platforms dlsym serves.
                Some(unsafe { std::mem::transmute::<*mut c_void, $ty>(p) })
            }
        })
    }};
}

/// An append-only key log file.
#[derive(Debug)]
pub struct KeyLog {
    file: Mutex<File>,
}

impl KeyLog {
    /// Opens (or creates, readable by the owner only: it holds secrets) `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<KeyLog> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        Ok(KeyLog {
            file: Mutex::new(file),
        })
    }

    /// Appends `line` and a newline in a single `write`, so that lines of processes sharing
    /// the file do not interleave.
    pub fn write_line(&self, line: &[u8]) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        // A thread that panicked while holding the lock cannot have left a half line behind:
        // the write below is the only thing done under it.
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.write_all(&buf)
    }
}

/// The process's key log: opened on first use from `$SSLKEYLOGFILE`; `None` when it is unset,
/// empty or cannot be opened (said once on standard error, which SIPp's output file keeps).
fn key_log() -> Option<&'static KeyLog> {
    static LOG: OnceLock<Option<KeyLog>> = OnceLock::new();
    LOG.get_or_init(|| {
        let path = std::env::var_os(ENV).filter(|p| !p.is_empty())?;
        match KeyLog::open(Path::new(&path)) {
            Ok(log) => Some(log),
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "sipplauncher_keylog: cannot open {}: {e}",
                    Path::new(&path).display()
                );
                None
            }
        }
    })
    .as_ref()
}

/// The callback OpenSSL calls with each key log line (without its newline).
unsafe extern "C" fn log_line(_ssl: *const Ssl, line: *const c_char) {
    if line.is_null() {
        return;
    }
    // SAFETY: OpenSSL passes a NUL-terminated string that stays valid during the call.
    let line = unsafe { CStr::from_ptr(line) };
    if let Some(log) = key_log() {
        // Nothing to tell the TLS connection: a key lost is a capture not decrypted.
        let _ = log.write_line(line.to_bytes());
    }
}

/// Installs [`log_line`] on `ctx`, unless the program installed a callback of its own or there
/// is no key log to write to.
fn install(ctx: *mut SslCtx) {
    if ctx.is_null() || key_log().is_none() {
        return;
    }
    let Some(set) = resolve!(
        libc::RTLD_DEFAULT,
        SetKeylogCallback,
        c"SSL_CTX_set_keylog_callback"
    ) else {
        // OpenSSL before 1.1.1 has no key log callback.
        return;
    };
    if let Some(get) = resolve!(
        libc::RTLD_DEFAULT,
        GetKeylogCallback,
        c"SSL_CTX_get_keylog_callback"
    ) {
        // SAFETY: `ctx` is a live SSL_CTX that OpenSSL just made or was just given.
        if unsafe { get(ctx) }.is_some() {
            return;
        }
    }
    // SAFETY: as above; the callback is a plain function that lives as long as the process.
    unsafe { set(ctx, Some(log_line)) };
}

/// Interposes OpenSSL's `SSL_CTX_new`.
///
/// # Safety
///
/// As OpenSSL's `SSL_CTX_new`: `method` is null or a valid `SSL_METHOD`.
#[no_mangle]
pub unsafe extern "C" fn SSL_CTX_new(method: *const SslMethod) -> *mut SslCtx {
    let Some(real) = resolve!(libc::RTLD_NEXT, CtxNew, c"SSL_CTX_new") else {
        return std::ptr::null_mut();
    };
    // SAFETY: the caller's arguments, passed on to the function it meant to call.
    let ctx = unsafe { real(method) };
    install(ctx);
    ctx
}

/// Interposes OpenSSL 3's `SSL_CTX_new_ex`.
///
/// # Safety
///
/// As OpenSSL's `SSL_CTX_new_ex`: each pointer is null or valid for its type.
#[no_mangle]
pub unsafe extern "C" fn SSL_CTX_new_ex(
    libctx: *mut LibCtx,
    propq: *const c_char,
    method: *const SslMethod,
) -> *mut SslCtx {
    let Some(real) = resolve!(libc::RTLD_NEXT, CtxNewEx, c"SSL_CTX_new_ex") else {
        return std::ptr::null_mut();
    };
    // SAFETY: the caller's arguments, passed on to the function it meant to call.
    let ctx = unsafe { real(libctx, propq, method) };
    install(ctx);
    ctx
}

/// Interposes OpenSSL's `SSL_new`: a context made in a way not seen above still gets the
/// callback before its first connection.
///
/// # Safety
///
/// As OpenSSL's `SSL_new`: `ctx` is a valid `SSL_CTX`.
#[no_mangle]
pub unsafe extern "C" fn SSL_new(ctx: *mut SslCtx) -> *mut Ssl {
    let Some(real) = resolve!(libc::RTLD_NEXT, SslNew, c"SSL_new") else {
        return std::ptr::null_mut();
    };
    install(ctx);
    // SAFETY: the caller's argument, passed on to the function it meant to call.
    unsafe { real(ctx) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn lines_are_appended_with_a_newline_owner_only() {
        let dir = std::env::temp_dir().join(format!("keylog-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.txt");
        let _ = std::fs::remove_file(&path);
        let a = KeyLog::open(&path).unwrap();
        a.write_line(b"CLIENT_RANDOM 00 11").unwrap();
        // A second process (here: a second handle) appends, never truncates.
        let b = KeyLog::open(&path).unwrap();
        b.write_line(b"SERVER_TRAFFIC_SECRET_0 22 33").unwrap();
        a.write_line(b"EXPORTER_SECRET 44 55").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "CLIENT_RANDOM 00 11\nSERVER_TRAFFIC_SECRET_0 22 33\nEXPORTER_SECRET 44 55\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_openssl_the_hooks_return_null() {
        // This test binary links no OpenSSL: the interposers find nothing to call and say so
        // with null, as OpenSSL does when it fails.
        // SAFETY: null is a valid argument for each (OpenSSL returns null for it, too).
        unsafe {
            assert!(SSL_CTX_new(std::ptr::null()).is_null());
            assert!(
                SSL_CTX_new_ex(std::ptr::null_mut(), std::ptr::null(), std::ptr::null()).is_null()
            );
            assert!(SSL_new(std::ptr::null_mut()).is_null());
        }
    }
}
