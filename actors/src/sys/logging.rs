//! slog plumbing: the root logger (the general log file) and each test run's own logger,
//! which also writes `sipplauncher.log` in the run folder.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use slog::{o, Drain, Logger};

/// A plain-text drain writing to `file`, one line per record with its key-values.
fn file_drain(file: File) -> impl Drain<Ok = (), Err = slog::Never> + Send + Sync + 'static {
    let decorator = slog_term::PlainSyncDecorator::new(file);
    slog_term::FullFormat::new(decorator)
        .use_original_order()
        .build()
        .ignore_res()
}

/// Opens a log file for appending without following a symlink (logs live in world-writable
/// folders such as /tmp).
pub fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// The root logger: everything at debug and above goes to the general log file when there is
/// one. Nothing goes to the terminal: what a user must see is told by the console reporter, in
/// the tool's own words, once (a raw record such as `ERRO ...` never reaches the terminal).
pub fn root(general: Option<File>) -> Logger {
    match general {
        Some(file) => Logger::root(file_drain(file), o!()),
        None => Logger::root(slog::Discard, o!()),
    }
}

/// A test run's logger: writes `path` (its `sipplauncher.log`) and passes every record on to
/// `parent` too.
pub fn test_logger(parent: &Logger, path: &Path) -> io::Result<Logger> {
    let file = open_log(path)?;
    Ok(Logger::root(
        slog::Duplicate::new(file_drain(file), parent.clone()).ignore_res(),
        o!(),
    ))
}
