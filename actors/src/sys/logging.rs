//! slog plumbing: the root logger (the general log file) and each test run's own logger,
//! which also writes `sipplauncher.log` in the run folder.
//!
//! A record is formatted where it is logged (into memory) and written by one writer thread
//! ("sipplauncher-log"), so that a slow disk or a terminal that stops reading never holds up
//! the actor thread. The writer's queue is bounded ([`QUEUE`] lines): only a writer that many
//! lines behind makes a logging thread wait, and no line is ever dropped. The writer takes the
//! lines in batches ([`LINGER`]): a line logged while it lingers wakes no thread. [`flushed`]
//! and [`flush`] wake it and wait until every line logged before is written (before a script
//! reads the logs; at the end of a run). The general log rotates ([`Rotation`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};

use slog::{o, Drain, Logger, OwnedKVList, Record};

/// Lines the writer may be behind before a logging thread waits for it.
pub const QUEUE: usize = 65_536;

/// How long the writer, once woken by a line, lets the next lines gather before it writes them
/// (and again while lines keep coming). Waking it for every line was a context switch per line
/// on both threads, a tenth of the tool's CPU per test at `--group 50` (benches/cpu.sh); a line
/// reaches its file at most this late, a flush at once.
pub const LINGER: std::time::Duration = std::time::Duration::from_millis(10);

/// When the general log rotates: once it would grow past `max_bytes`, `<log>` becomes
/// `<log>.1`, `<log>.1` becomes `<log>.2`, ... and `<log>.<keep>` is the last one kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: u32,
}

impl Default for Rotation {
    /// The original's size (100 MiB), and 5 old files.
    fn default() -> Self {
        Rotation {
            max_bytes: 100 << 20,
            keep: 5,
        }
    }
}

/// The renames that rotate `path` keeping `keep` old files, in the order to do them: oldest
/// first, so that only `<log>.<keep>` is replaced; none when nothing is kept.
pub fn rotation_renames(path: &Path, keep: u32) -> Vec<(PathBuf, PathBuf)> {
    let numbered = |n: u32| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    };
    (1..=keep)
        .rev()
        .map(|n| {
            let from = if n == 1 {
                path.to_path_buf()
            } else {
                numbered(n - 1)
            };
            (from, numbered(n))
        })
        .collect()
}

/// The general log file: appended to, rotated by size.
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    /// Bytes in `file`.
    size: u64,
    rotation: Rotation,
}

impl RotatingFile {
    /// `file` is `path`, opened for appending (see [`open_log`]); it rotates from its present
    /// size on.
    pub fn new(file: File, path: PathBuf, rotation: Rotation) -> io::Result<RotatingFile> {
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path,
            file,
            size,
            rotation,
        })
    }

    /// Writes one record's line; rotates first when the line would take the file past its
    /// size (a line larger than the size still goes whole into a file of its own).
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.rotation.max_bytes {
            // A rotation that fails (another user's file took the name meanwhile) keeps
            // writing where it was; the next line tries again.
            let _ = self.rotate();
        }
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        for (from, to) in rotation_renames(&self.path, self.rotation.keep) {
            match fs::rename(&from, &to) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                r => r?,
            }
        }
        if self.rotation.keep == 0 {
            match fs::remove_file(&self.path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                r => r?,
            }
        }
        // O_EXCL: the new file is ours, never one planted at the name meanwhile.
        self.file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Where a formatted line goes.
#[derive(Clone)]
enum Sink {
    General(Arc<Mutex<RotatingFile>>),
    File(Arc<File>),
}

impl Sink {
    fn write(&self, line: &[u8]) {
        // A log that cannot be written is not worth stopping a run for (it never was).
        let _ = match self {
            Sink::General(f) => match f.lock() {
                Ok(mut f) => f.write_line(line),
                Err(_) => Ok(()),
            },
            Sink::File(f) => (&**f).write_all(line),
        };
    }
}

enum Job {
    Line(Sink, Vec<u8>),
    /// A run's log whose logger is gone: closed by the writer (after its last lines), not by
    /// the thread that dropped the logger (a close is work for the file system).
    Close(Sink),
    Flush(Ack),
}

impl Job {
    fn run(self) {
        match self {
            Job::Line(sink, line) => sink.write(&line),
            Job::Close(sink) => drop(sink),
            Job::Flush(Ack::Sync(done)) => {
                let _ = done.send(());
            }
            Job::Flush(Ack::Async(done)) => {
                let _ = done.send(());
            }
        }
    }
}

/// The writer thread's queue and the thread, to wake it for a flush.
struct Writer {
    queue: SyncSender<Job>,
    thread: std::thread::Thread,
}

enum Ack {
    Sync(SyncSender<()>),
    Async(tokio::sync::oneshot::Sender<()>),
}

/// The writer thread: started by the first logged line, shared by every logger of the process;
/// `None` inside when the thread could not be started (lines are then written where they are
/// logged).
static WRITER: OnceLock<Option<Writer>> = OnceLock::new();

fn writer() -> Option<&'static Writer> {
    WRITER
        .get_or_init(|| {
            let (tx, rx) = sync_channel::<Job>(QUEUE);
            let spawned = std::thread::Builder::new()
                .name("sipplauncher-log".into())
                .spawn(move || write_lines(rx));
            spawned.ok().map(|handle| Writer {
                queue: tx,
                thread: handle.thread().clone(),
            })
        })
        .as_ref()
}

/// The writer's loop: waits for a job; then, as long as lines keep coming, sleeps [`LINGER`]
/// (or until a flush wakes it) and does every job queued meanwhile, in order. While it sleeps,
/// a logged line only joins the queue (the channel wakes a receiver only when one waits in
/// `recv`).
fn write_lines(rx: std::sync::mpsc::Receiver<Job>) {
    while let Ok(job) = rx.recv() {
        job.run();
        loop {
            std::thread::park_timeout(LINGER);
            let mut any = false;
            loop {
                match rx.try_recv() {
                    Ok(job) => {
                        job.run();
                        any = true;
                    }
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                }
            }
            if !any {
                break;
            }
        }
    }
}

fn submit(sink: &Sink, line: Vec<u8>) {
    queue(Job::Line(sink.clone(), line));
}

/// Hands a job to the writer; done here when there is no writer.
fn queue(job: Job) {
    match writer() {
        Some(w) => {
            if let Err(e) = w.queue.send(job) {
                // The thread is gone (it never ends while the process lives): do it here.
                e.0.run();
            }
        }
        None => job.run(),
    }
}

/// Waits (blocking) until every line logged before is written.
pub fn flush() {
    if let Some(Some(w)) = WRITER.get() {
        let (done, wait) = sync_channel(1);
        if w.queue.send(Job::Flush(Ack::Sync(done))).is_ok() {
            w.thread.unpark();
            let _ = wait.recv();
        }
    }
}

/// Waits (without blocking the thread) until every line logged before is written: before a
/// script runs, so that it finds the logs complete.
pub async fn flushed() {
    if let Some(Some(w)) = WRITER.get() {
        let (done, wait) = tokio::sync::oneshot::channel();
        // A full queue is the only wait here, as for any logged line.
        if w.queue.send(Job::Flush(Ack::Async(done))).is_ok() {
            w.thread.unpark();
            let _ = wait.await;
        }
    }
}

/// A record's line, as slog-term's plain full format writes it with the keys in the order they
/// were given: `Nov 30 06:19:10.134 INFO message, key: value, ...`, local time, the loggers' keys
/// (root first) before the record's own. Written here rather than through slog-term, which
/// needs a decorator behind a lock and looks up the time zone for each record.
fn format_line(record: &Record, values: &OwnedKVList) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut line = String::with_capacity(128);
    timestamp(&mut line, std::time::SystemTime::now());
    let _ = write!(line, " {} ", record.level().as_short_str());
    push_printable(&mut line, &record.msg().to_string());
    let mut kv = Pairs(Vec::new());
    // slog hands both lists out last key first: the whole is read backwards.
    let _ = slog::KV::serialize(&record.kv(), record, &mut kv);
    let _ = slog::KV::serialize(values, record, &mut kv);
    for (key, value) in kv.0.iter().rev() {
        let _ = write!(line, ", {key}: ");
        push_printable(&mut line, value);
    }
    line.push('\n');
    line.into_bytes()
}

/// `text` onto `line`, each control character (a line break, a tab, an escape sequence: from a
/// test folder's name, a script's output) written as a Rust escape (`\n`, `\u{1b}`), as the
/// terminal shows names: a record stays one line, and the log cannot drive the terminal it is
/// read on.
fn push_printable(line: &mut String, text: &str) {
    use std::fmt::Write as _;
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(line, "{}", c.escape_default());
        } else {
            line.push(c);
        }
    }
}

/// `Nov 30 06:19:10.134`, in the local time zone (UTC when it cannot be had).
fn timestamp(out: &mut String, now: std::time::SystemTime) {
    use std::fmt::Write as _;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let since = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = libc::time_t::try_from(since.as_secs()).unwrap_or(libc::time_t::MAX);
    // SAFETY: all-zero is a valid `tm`, which localtime_r fills; it is thread-safe.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live values of the right types.
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        // SAFETY: as above; gmtime_r only fails for years beyond an int.
        unsafe { libc::gmtime_r(&secs, &mut tm) };
    }
    let month = MONTHS[usize::try_from(tm.tm_mon).unwrap_or(0).min(11)];
    let _ = write!(
        out,
        "{month} {:02} {:02}:{:02}:{:02}.{:03}",
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        since.subsec_millis()
    );
}

/// The key-values of a record, as slog serializes them (last first).
struct Pairs(Vec<(slog::Key, String)>);

impl slog::Serializer for Pairs {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments) -> slog::Result {
        self.0.push((key, val.to_string()));
        Ok(())
    }
}

/// Formats each record here and hands its line to the writer thread for `sink`.
struct Queued {
    sink: Sink,
}

impl Queued {
    fn new(sink: Sink) -> Queued {
        Queued { sink }
    }
}

impl Drop for Queued {
    /// The logger is gone: the writer closes the file once the lines before are written (the
    /// sink's last owner is then the writer's job).
    fn drop(&mut self) {
        queue(Job::Close(self.sink.clone()));
    }
}

impl Drain for Queued {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        submit(&self.sink, format_line(record, values));
        Ok(())
    }
}

/// Why a file the tool appends to outside its run folders (the general log) is refused: in a
/// world-writable folder such as /tmp, anyone may have planted something at the name. One
/// line, naming the path.
#[derive(Debug, thiserror::Error)]
pub enum LogFileError {
    #[error("{} is a symlink", .0.display())]
    Symlink(PathBuf),
    #[error("{} is {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{} is owned by uid {uid}, neither by us nor by root", path.display())]
    Owner { path: PathBuf, uid: u32 },
    #[error("{} is writable by others", .0.display())]
    WritableByOthers(PathBuf),
    /// Another name of the same file may be someone else's choice (a hard link to a file of
    /// root's, made where protected_hardlinks is off).
    #[error("{} has {links} hard links", path.display())]
    HardLinked { path: PathBuf, links: u64 },
    #[error("{} was replaced while being opened", .0.display())]
    Replaced(PathBuf),
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl LogFileError {
    /// Only that the file cannot be opened (no permission, say): not something planted.
    pub fn is_open_failure(&self) -> bool {
        matches!(self, LogFileError::Open { .. })
    }
}

/// What a file type is called in a message.
fn kind_of(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a folder"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "not a file"
    }
}

/// Refuses what is at `path` unless it is a regular file of ours or root's, writable by nobody
/// else, with one name; nothing there is fine. Looks without opening (opening a FIFO or a
/// device could block or act).
pub fn check_log_file(path: &Path) -> Result<(), LogFileError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(LogFileError::Open {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    check_meta(path, &meta)
}

fn check_meta(path: &Path, meta: &fs::Metadata) -> Result<(), LogFileError> {
    use std::os::unix::fs::MetadataExt;
    let ft = meta.file_type();
    let path = path.to_path_buf();
    if ft.is_symlink() {
        return Err(LogFileError::Symlink(path));
    }
    if !ft.is_file() {
        return Err(LogFileError::NotRegular {
            path,
            kind: kind_of(&ft),
        });
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid && meta.uid() != 0 {
        return Err(LogFileError::Owner {
            path,
            uid: meta.uid(),
        });
    }
    if meta.mode() & 0o002 != 0 {
        return Err(LogFileError::WritableByOthers(path));
    }
    if meta.nlink() > 1 {
        return Err(LogFileError::HardLinked {
            path,
            links: meta.nlink(),
        });
    }
    Ok(())
}

/// Opens the general log for appending (made, mode 0600, if missing) as [`check_log_file`]
/// wants it: without following a symlink, without blocking (a FIFO would hang the open), and
/// checked again once open, so that nothing swapped in meanwhile is written to.
pub fn open_general(path: &Path) -> Result<File, LogFileError> {
    use std::os::unix::fs::MetadataExt;
    check_log_file(path)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => LogFileError::Symlink(path.to_path_buf()),
            // A FIFO nobody reads (O_NONBLOCK|O_WRONLY).
            Some(libc::ENXIO) => LogFileError::NotRegular {
                path: path.to_path_buf(),
                kind: "a FIFO",
            },
            _ => LogFileError::Open {
                path: path.to_path_buf(),
                source,
            },
        })?;
    let open_err = |source| LogFileError::Open {
        path: path.to_path_buf(),
        source,
    };
    check_meta(path, &file.metadata().map_err(open_err)?)?;
    // The name still leads to what was opened (not a file put there in between).
    let now = fs::symlink_metadata(path).map_err(open_err)?;
    let opened = file.metadata().map_err(open_err)?;
    if (now.dev(), now.ino()) != (opened.dev(), opened.ino()) {
        return Err(LogFileError::Replaced(path.to_path_buf()));
    }
    Ok(file)
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
pub fn root(general: Option<RotatingFile>) -> Logger {
    match general {
        Some(file) => Logger::root(
            Queued::new(Sink::General(Arc::new(Mutex::new(file)))).fuse(),
            o!(),
        ),
        None => Logger::root(slog::Discard, o!()),
    }
}

/// A test run's logger: writes `path` (its `sipplauncher.log`) and passes every record on to
/// `parent` too.
pub fn test_logger(parent: &Logger, path: &Path) -> io::Result<Logger> {
    let file = Queued::new(Sink::File(Arc::new(open_log(path)?)));
    Ok(Logger::root(
        slog::Duplicate::new(file, parent.clone()).fuse(),
        o!(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use slog::info;

    /// The general log is refused, in one line, unless it is a regular file of ours (or
    /// root's) that only its owner can write, with one name; opening never blocks (a FIFO).
    #[test]
    fn the_general_log_is_refused_unless_it_is_safe() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        // Missing: made, 0600; then appended to.
        let log = p("general.log");
        open_general(&log).unwrap();
        assert_eq!(
            fs::metadata(&log).unwrap().permissions().mode() & 0o777,
            0o600
        );
        open_general(&log).unwrap();
        nix::unistd::mkfifo(&p("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::os::unix::fs::symlink(&log, p("link")).unwrap();
        fs::write(p("open"), "").unwrap();
        fs::set_permissions(p("open"), fs::Permissions::from_mode(0o666)).unwrap();
        fs::write(p("linked"), "").unwrap();
        fs::hard_link(p("linked"), p("linked-too")).unwrap();
        fs::create_dir(p("folder")).unwrap();
        let mut cases = vec![
            ("fifo", "is a FIFO, not a regular file"),
            ("link", "is a symlink"),
            ("open", "is writable by others"),
            ("linked", "has 2 hard links"),
            ("folder", "is a folder, not a regular file"),
        ];
        if nix::unistd::geteuid().is_root() {
            fs::write(p("theirs"), "").unwrap();
            nix::unistd::chown(&p("theirs"), Some(nix::unistd::Uid::from_raw(1001)), None).unwrap();
            cases.push(("theirs", "is owned by uid 1001, neither by us nor by root"));
        }
        for (name, why) in cases {
            for err in [
                check_log_file(&p(name)).unwrap_err(),
                open_general(&p(name)).unwrap_err(),
            ] {
                assert!(!err.is_open_failure(), "{name}: {err}");
                assert_eq!(err.to_string(), format!("{} {why}", p(name).display()));
            }
        }
        // Nothing was written through the symlink or into the others' file.
        assert_eq!(fs::read(&log).unwrap().len(), 0);
        assert_eq!(fs::read(p("open")).unwrap().len(), 0);
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    /// The line is slog-term's plain full format with the keys in the order given (what the
    /// logs were before): the same text after the timestamp, for keys of the loggers at two
    /// levels and of the record, of every kind.
    #[test]
    fn lines_read_as_slog_term_wrote_them() {
        struct Both(Mutex<Vec<(String, String)>>);
        impl Drain for Both {
            type Ok = ();
            type Err = slog::Never;
            fn log(&self, r: &Record, v: &OwnedKVList) -> Result<(), slog::Never> {
                let ours = String::from_utf8(format_line(r, v)).unwrap();
                let buf = std::sync::Arc::new(Mutex::new(Vec::new()));
                struct W(std::sync::Arc<Mutex<Vec<u8>>>);
                impl Write for W {
                    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                        self.0.lock().unwrap().extend_from_slice(b);
                        Ok(b.len())
                    }
                    fn flush(&mut self) -> io::Result<()> {
                        Ok(())
                    }
                }
                let term =
                    slog_term::FullFormat::new(slog_term::PlainDecorator::new(W(buf.clone())))
                        .use_original_order()
                        .build();
                term.log(r, v).unwrap();
                let theirs = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
                self.0.lock().unwrap().push((ours, theirs));
                Ok(())
            }
        }
        let both = std::sync::Arc::new(Both(Mutex::new(Vec::new())));
        let root = Logger::root(both.clone().fuse(), o!("actor" => "net"));
        let run = root.new(o!("test" => "call-0000", "run_id" => "abcdef"));
        let addr = std::net::Ipv4Addr::new(10, 0, 0, 1);
        slog::info!(run, "state {} (took {:.3}s)", "CLEAN", 0.008);
        slog::debug!(run, "started uac_ua1"; "pid" => 42, "argv" => "sipp -i x", "ip" => %addr, "cps" => ?Some(1.5));
        slog::warn!(root, "no keys of its own");
        let lines = both.0.lock().unwrap();
        assert_eq!(lines.len(), 3);
        for (ours, theirs) in lines.iter() {
            // "Nov 30 06:19:10.134 " is 20 characters.
            assert_eq!(ours.len(), theirs.len(), "{ours}{theirs}");
            assert_eq!(ours[19..], theirs[19..]);
            assert_eq!(&ours[3..4], " ");
            assert_eq!(&ours[15..16], ".");
        }
        assert!(
            lines[1].0.ends_with(
                " DEBG started uac_ua1, actor: net, test: call-0000, run_id: abcdef, pid: 42, \
             argv: sipp -i x, ip: 10.0.0.1, cps: Some(1.5)\n"
            ),
            "{}",
            lines[1].0
        );
    }

    /// Issue 13.5: a test folder's name (or a script's output) with a line break, a tab or an
    /// escape sequence is one line in the logs, its control characters escaped as on the
    /// terminal: it can neither forge a record nor drive the terminal the log is read on.
    #[test]
    fn control_characters_are_escaped() {
        struct Lines(Mutex<Vec<String>>);
        impl Drain for Lines {
            type Ok = ();
            type Err = slog::Never;
            fn log(&self, r: &Record, v: &OwnedKVList) -> Result<(), slog::Never> {
                let line = String::from_utf8(format_line(r, v)).unwrap();
                self.0.lock().unwrap().push(line);
                Ok(())
            }
        }
        let lines = std::sync::Arc::new(Lines(Mutex::new(Vec::new())));
        let name = "a\nDec 24 00:00:00.000 INFO forged\tb\x1b[31mred";
        let run = Logger::root(lines.clone().fuse(), o!("test" => name));
        slog::info!(run, "test {name} is not runnable"; "why" => "x\ry");
        let lines = lines.0.lock().unwrap();
        assert_eq!(lines[0].lines().count(), 1, "{}", lines[0]);
        assert!(
            lines[0].ends_with(
                " INFO test a\\nDec 24 00:00:00.000 INFO forged\\tb\\u{1b}[31mred is not \
                 runnable, test: a\\nDec 24 00:00:00.000 INFO forged\\tb\\u{1b}[31mred, why: \
                 x\\ry\n"
            ),
            "{}",
            lines[0]
        );
    }

    #[test]
    fn renames_oldest_first() {
        let p = Path::new("/tmp/s.log");
        let r = |a: &str, b: &str| (PathBuf::from(a), PathBuf::from(b));
        assert_eq!(
            rotation_renames(p, 3),
            [
                r("/tmp/s.log.2", "/tmp/s.log.3"),
                r("/tmp/s.log.1", "/tmp/s.log.2"),
                r("/tmp/s.log", "/tmp/s.log.1"),
            ]
        );
        assert_eq!(rotation_renames(p, 1), [r("/tmp/s.log", "/tmp/s.log.1")]);
        assert!(rotation_renames(p, 0).is_empty());
    }

    /// Lines of 10 bytes into files of at most 25: two lines a file, the newest in `<log>`,
    /// then `<log>.1`, `<log>.2`; nothing older is kept, no line is split or lost in what is.
    #[test]
    fn rotates_by_size_and_keeps_n_old_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let rotation = Rotation {
            max_bytes: 25,
            keep: 2,
        };
        let mut f = RotatingFile::new(open_log(&path).unwrap(), path.clone(), rotation).unwrap();
        for i in 0..9 {
            f.write_line(format!("line {i:03}\n").as_bytes()).unwrap();
        }
        assert_eq!(names(dir.path()), ["s.log", "s.log.1", "s.log.2"]);
        let read = |n: &str| fs::read_to_string(dir.path().join(n)).unwrap();
        assert_eq!(read("s.log"), "line 008\n");
        assert_eq!(read("s.log.1"), "line 006\nline 007\n");
        assert_eq!(read("s.log.2"), "line 004\nline 005\n");
        // A line larger than the size: a file of its own, whole.
        let big = "x".repeat(40) + "\n";
        f.write_line(big.as_bytes()).unwrap();
        f.write_line(b"after\n").unwrap();
        assert_eq!(read("s.log.1"), big);
        assert_eq!(read("s.log"), "after\n");
        assert_eq!(read("s.log.2"), "line 008\n");
        // The new file is owner-only like the first.
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    /// An existing log counts from its size; `keep 0` starts the file again when it is full.
    #[test]
    fn existing_size_counts_and_keep_0_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        fs::write(&path, "0123456789012345678\n").unwrap();
        let rotation = Rotation {
            max_bytes: 25,
            keep: 0,
        };
        let mut f = RotatingFile::new(open_log(&path).unwrap(), path.clone(), rotation).unwrap();
        f.write_line(b"next line\n").unwrap();
        assert_eq!(names(dir.path()), ["s.log"]);
        assert_eq!(fs::read_to_string(&path).unwrap(), "next line\n");
    }

    /// A link planted at an old file's name (in a world-writable /tmp) is replaced, never
    /// followed: what it points to is left as it was.
    #[test]
    fn a_planted_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let target = dir.path().join("target");
        fs::write(&target, "theirs\n").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("s.log.1")).unwrap();
        let rotation = Rotation {
            max_bytes: 10,
            keep: 1,
        };
        let mut f = RotatingFile::new(open_log(&path).unwrap(), path.clone(), rotation).unwrap();
        f.write_line(b"first\n").unwrap();
        f.write_line(b"second\n").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "theirs\n");
        let old = dir.path().join("s.log.1");
        assert!(fs::symlink_metadata(&old).unwrap().is_file());
        assert_eq!(fs::read_to_string(&old).unwrap(), "first\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "second\n");
    }

    /// Records reach their files through the writer thread; after [`flush`] every one is there,
    /// in order, the run's in both its own log and the general one.
    #[test]
    fn records_are_written_by_the_writer_thread_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let general = dir.path().join("general.log");
        let file = RotatingFile::new(
            open_log(&general).unwrap(),
            general.clone(),
            Rotation::default(),
        )
        .unwrap();
        let root = root(Some(file));
        let run = test_logger(&root, &dir.path().join("sipplauncher.log")).unwrap();
        for i in 0..1000 {
            info!(run, "record {i}"; "n" => i);
        }
        info!(root, "the root's own");
        flush();
        let run_log = fs::read_to_string(dir.path().join("sipplauncher.log")).unwrap();
        let lines: Vec<&str> = run_log.lines().collect();
        assert_eq!(lines.len(), 1000);
        for (i, l) in lines.iter().enumerate() {
            assert!(l.ends_with(&format!(" INFO record {i}, n: {i}")), "{l}");
        }
        let general = fs::read_to_string(&general).unwrap();
        assert_eq!(general.lines().count(), 1001);
        assert!(general
            .lines()
            .last()
            .unwrap()
            .ends_with("INFO the root's own"));
    }

    /// Whether this process holds `path` open (its /proc/self/fd links).
    fn held_open(path: &Path) -> bool {
        fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| fs::read_link(e.unwrap().path()).ok())
            .any(|target| target == path)
    }

    /// A run's logger that is dropped leaves its file to the writer, which writes the lines
    /// logged before and then closes it; lines logged while the writer lingers are all there
    /// after a flush, which wakes it (a flush that waited for a lingering writer forever would
    /// hang here: the bound is generous, only there to catch that).
    #[test]
    fn a_dropped_run_log_is_written_then_closed_by_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let root = root(None);
        let path = dir.path().join("sipplauncher.log");
        let run = test_logger(&root, &path).unwrap();
        assert!(held_open(&path));
        for round in 0..3 {
            for i in 0..10 {
                info!(run, "round {round} line {i}");
            }
            let started = std::time::Instant::now();
            flush();
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
            let text = fs::read_to_string(&path).unwrap();
            assert_eq!(text.lines().count(), 10 * (round + 1), "{text}");
        }
        info!(run, "the last line");
        drop(run);
        flush();
        assert!(fs::read_to_string(&path)
            .unwrap()
            .ends_with(" INFO the last line\n"));
        assert!(!held_open(&path), "closed once its logger is gone");
    }
}
