//! Test run folders (§6): made without following planted symlinks under a possibly world-writable
//! run root, filled with a copy of the test folder, removed without following symlinks.
//!
//! The tool runs as root and the default run root lives in the world-writable, sticky `/var/tmp`,
//! so every step works on directory file descriptors opened with `O_NOFOLLOW`: once the run root
//! is open and known to be ours and writable by nobody else, nothing below it can be swapped.
//! All functions block on file I/O: call them inside `tokio::task::spawn_blocking`.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{geteuid, unlinkat, UnlinkatFlags};

use crate::core::plan::{RunId, TestName};
use crate::sys::owner::RunOwner;

/// Symlinks followed in a row (in the run root's path, or nested symlinked folders, or chains of
/// git symlink stubs) before we call it a loop.
pub const MAX_SYMLINK_DEPTH: usize = 16;

/// A git symlink stub is at most this long (a path, not a file's content).
const STUB_MAX_LEN: usize = 1024;

/// How often `create` retries when a concurrent run of the same test removes the emptied
/// `<test>` folder between our opening it and making `<run_id>` in it. Each try is a few
/// system calls; 5 were seen to lose in a row on a loaded 2-core machine with four threads
/// making and removing runs of one test, so the bound only has to stop a livelock.
const RACE_RETRIES: usize = 1000;

/// Why a run folder could not be made, filled or removed. Every message names the path.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// The test name (or run id) is not a single folder name.
    #[error("create run folder in {}: invalid {what} {name:?}: {why}", root.display())]
    BadName {
        root: PathBuf,
        what: &'static str,
        name: String,
        why: &'static str,
    },
    /// `<run_root>/<test>/<run_id>` is already there: the caller picks another run id.
    #[error("create run folder {}: it already exists", path.display())]
    Exists { path: PathBuf },
    /// Something on the way cannot be trusted: a symlink, or a folder someone else could change.
    #[error("create run folder {}: {why}", run.display())]
    Unsafe { run: PathBuf, why: String },
    /// A system call failed while making the run folder.
    #[error("create run folder {}: {step}: {source}", run.display())]
    Create {
        run: PathBuf,
        step: String,
        #[source]
        source: io::Error,
    },
    /// Reading the test folder or writing the run folder failed.
    #[error("copy {} to {}: {source}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An interrupt stopped the copy of the test folder.
    #[error("interrupted while copying the test folder")]
    Interrupted,
    /// The test folder holds something that cannot be copied (a loop, a device, a dangling link).
    #[error("copy {}: {why}", path.display())]
    Uncopyable { path: PathBuf, why: String },
    /// A system call failed while removing the run folder.
    #[error("remove run folder {}: {step}: {source}", run.display())]
    Remove {
        run: PathBuf,
        step: String,
        #[source]
        source: io::Error,
    },
}

impl RunDirError {
    /// The disk (or our quota) is full: the machine's fault, not the test's, so the run stops.
    pub fn is_storage_full(&self) -> bool {
        let source = match self {
            RunDirError::Create { source, .. }
            | RunDirError::Copy { source, .. }
            | RunDirError::Remove { source, .. } => source,
            _ => return false,
        };
        matches!(
            source.raw_os_error(),
            Some(libc::ENOSPC) | Some(libc::EDQUOT)
        )
    }
}

/// What `copy_test` did, for the test's log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Regular files written into the run folder.
    pub files: usize,
    /// Entries that were symlinks and were copied as what they point to (paths relative to the
    /// test folder).
    pub symlinks_followed: Vec<String>,
    /// Git symlink stubs copied as the content of the file they name: `(stub, target)`, both
    /// relative to the test folder; `target` is the end of the chain.
    pub stubs_resolved: Vec<(String, String)>,
}

// ---------------------------------------------------------------------------------------------
// create

/// Makes `<run_root>/<test>/<run_id>/` (mode 0700) and returns its path.
///
/// Missing folders on the way are made with mode 0700. A symlink in the path is refused, except
/// above the run root a symlink owned by root (or by us) whose folder is not writable by group or
/// others (`/var/run`, a `/tmp` that is a link). The run root, `<test>` and `<run_id>` must be
/// folders owned by the effective uid and not writable by group or others. `<run_id>` must be new:
/// [`RunDirError::Exists`] tells the caller to pick another run id.
pub fn create(run_root: &Path, test: &TestName, run_id: &RunId) -> Result<PathBuf, RunDirError> {
    let root = std::path::absolute(run_root).map_err(|source| RunDirError::Create {
        run: run_root.to_path_buf(),
        step: "find the current folder".to_string(),
        source,
    })?;
    check_name(&root, "test name", &test.0)?;
    check_name(&root, "run id", &run_id.0)?;
    let test_path = root.join(&test.0);
    let run = test_path.join(&run_id.0);

    let root_fd = walk_to_run_root(&root, &run, Walk::Make)?
        .ok_or_else(|| create_err(&run, format!("mkdir {}", root.display()), Errno::ENOENT))?;
    for _ in 0..RACE_RETRIES {
        let test_fd = open_owned_dir(root_fd.as_fd(), OsStr::new(&test.0), &test_path, &run)?;
        match mkdirat(test_fd.as_fd(), run_id.0.as_str(), Mode::S_IRWXU) {
            Ok(()) => {}
            Err(Errno::EEXIST) => return Err(RunDirError::Exists { path: run }),
            // `<test>` was emptied and removed by a concurrent run of the same test: let it
            // finish before trying again.
            Err(Errno::ENOENT) => {
                std::thread::yield_now();
                continue;
            }
            Err(e) => return Err(create_err(&run, format!("mkdir {}", run.display()), e)),
        }
        let fd = open_dir_at(test_fd.as_fd(), OsStr::new(&run_id.0), false)
            .map_err(|e| not_dir_or_io(test_fd.as_fd(), OsStr::new(&run_id.0), &run, &run, e))?;
        fchmod(&fd, Mode::S_IRWXU)
            .map_err(|e| create_err(&run, format!("chmod {}", run.display()), e))?;
        check_owned(&fd, &run, &run)?;
        return Ok(run);
    }
    Err(create_err(
        &run,
        format!("mkdir {} (its folder keeps vanishing)", run.display()),
        Errno::ENOENT,
    ))
}

fn check_name(root: &Path, what: &'static str, name: &str) -> Result<(), RunDirError> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name == "." || name == ".." {
        "it is not a folder name"
    } else if name.contains('/') {
        "it contains '/'"
    } else if name.contains('\0') {
        "it contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(RunDirError::BadName {
        root: root.to_path_buf(),
        what,
        name: name.to_string(),
        why,
    })
}

fn create_err(run: &Path, step: String, e: Errno) -> RunDirError {
    RunDirError::Create {
        run: run.to_path_buf(),
        step,
        source: e.into(),
    }
}

fn unsafe_err(run: &Path, why: String) -> RunDirError {
    RunDirError::Unsafe {
        run: run.to_path_buf(),
        why,
    }
}

/// Opens a folder without following a symlink: `O_PATH` for folders we only walk through (no
/// read permission needed), `O_RDONLY` for those we own and list or chmod.
fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr, path_only: bool) -> nix::Result<OwnedFd> {
    let access = if path_only {
        OFlag::O_PATH
    } else {
        OFlag::O_RDONLY
    };
    openat(
        dir,
        name,
        access | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn is_symlink(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
}

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

fn is_file(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
}

/// Turns a failed `O_NOFOLLOW|O_DIRECTORY` open into "is a symlink" / "is not a folder" / the error.
fn not_dir_or_io(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    shown: &Path,
    run: &Path,
    e: Errno,
) -> RunDirError {
    if e != Errno::ELOOP && e != Errno::ENOTDIR {
        return create_err(run, format!("open {}", shown.display()), e);
    }
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if is_symlink(&st) => unsafe_err(run, format!("{} is a symlink", shown.display())),
        Ok(_) => unsafe_err(run, format!("{} is not a folder", shown.display())),
        Err(e) => create_err(run, format!("stat {}", shown.display()), e),
    }
}

/// The folder is ours alone: owned by the effective uid, writable by nobody else.
fn check_owned(fd: &OwnedFd, shown: &Path, run: &Path) -> Result<(), RunDirError> {
    let st = fstat(fd).map_err(|e| create_err(run, format!("stat {}", shown.display()), e))?;
    let euid = geteuid().as_raw();
    let why = if st.st_uid != euid {
        format!(
            "{} is owned by uid {}, not by us",
            shown.display(),
            st.st_uid
        )
    } else if st.st_mode & 0o002 != 0 {
        format!("{} is writable by others", shown.display())
    } else if st.st_mode & 0o020 != 0 {
        format!("{} is writable by its group", shown.display())
    } else {
        return Ok(());
    };
    Err(unsafe_err(run, why))
}

/// Opens (making it if missing) a folder that must be ours alone: the run root and `<test>`.
fn open_owned_dir(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    shown: &Path,
    run: &Path,
) -> Result<OwnedFd, RunDirError> {
    let mut created = false;
    let mut tries = 0;
    let fd = loop {
        match open_dir_at(parent, name, false) {
            Ok(fd) => break fd,
            // Missing; or made by a concurrent run and already removed again by another.
            Err(Errno::ENOENT) if tries < RACE_RETRIES => {
                tries += 1;
                match mkdirat(parent, name, Mode::S_IRWXU) {
                    Ok(()) => created = true,
                    // Made by a concurrent run meanwhile: checked below like any existing folder.
                    Err(Errno::EEXIST) => created = false,
                    Err(e) => return Err(create_err(run, format!("mkdir {}", shown.display()), e)),
                }
            }
            Err(e) => return Err(not_dir_or_io(parent, name, shown, run, e)),
        }
    };
    if created {
        fchmod(&fd, Mode::S_IRWXU)
            .map_err(|e| create_err(run, format!("chmod {}", shown.display()), e))?;
        spread_hint(&fd);
    }
    check_owned(&fd, shown, run)?;
    Ok(fd)
}

/// Asks ext4's Orlov allocator to place each folder made in `dir` (the run root, a `<test>`
/// folder: both made by us) in a block group of its own, as for the top of a hierarchy
/// (`chattr +T`, FS_TOPDIR_FL). Each run folder then lands away from the files the runs before
/// it deleted: on an ext4 without a journal, making a file scans past every inode its group freed
/// in the last minutes ("recently deleted"), which was half of the tool's CPU per test at
/// `--group 50` (benches/cpu.sh). A file system without the flag refuses it: nothing to do.
fn spread_hint(dir: &OwnedFd) {
    /// FS_TOPDIR_FL (linux/fs.h).
    const TOPDIR: libc::c_int = 0x0002_0000;
    let mut flags: libc::c_int = 0;
    // SAFETY: the kernel reads and writes an int through the pointer (ext4_ioctl's get_user /
    // put_user); `dir` is an open folder of ours.
    unsafe {
        if libc::ioctl(dir.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) == 0
            && flags & TOPDIR == 0
        {
            flags |= TOPDIR;
            libc::ioctl(dir.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags);
        }
    }
}

fn open_slash(run: &Path) -> Result<OwnedFd, RunDirError> {
    openat(
        AT_FDCWD,
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| create_err(run, "open /".to_string(), e))
}

/// One name still to walk on the way to the run root.
struct Pending {
    name: OsString,
    /// The run root itself (the last name of the path as given).
    is_root: bool,
    /// From the path as given (not from a symlink's target): it extends the path we show.
    given: bool,
}

/// Whether a walk to the run root makes what is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    Make,
    /// Only looks: a missing folder ends the walk (it would be made), nothing is made.
    Look,
}

/// Checks, before anything is made, that run folders can be made under `run_root` (as
/// [`create`] will): every name on the way a folder or a trusted symlink, and the run root, if
/// it exists, a folder of ours that nobody else can write. A missing run root is fine (it will
/// be made). Reads only.
pub fn check_run_root(run_root: &Path) -> Result<(), RunDirError> {
    let root = std::path::absolute(run_root).map_err(|source| RunDirError::Create {
        run: run_root.to_path_buf(),
        step: "find the current folder".to_string(),
        source,
    })?;
    walk_to_run_root(&root, &root, Walk::Look).map(|_| ())
}

/// Walks the absolute `root` from `/` name by name and returns the opened run root; `None`
/// when looking only and a name on the way is missing.
fn walk_to_run_root(root: &Path, run: &Path, walk: Walk) -> Result<Option<OwnedFd>, RunDirError> {
    let mut pending: VecDeque<Pending> = VecDeque::new();
    for comp in root.components() {
        match comp {
            Component::Normal(name) => pending.push_back(Pending {
                name: name.to_os_string(),
                is_root: false,
                given: true,
            }),
            Component::ParentDir => pending.push_back(Pending {
                name: OsString::from(".."),
                is_root: false,
                given: true,
            }),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    match pending.back_mut() {
        Some(last) if last.name != ".." => last.is_root = true,
        _ => {
            return Err(unsafe_err(
                run,
                format!("run root {} does not end in a folder name", root.display()),
            ))
        }
    }

    let mut cur = open_slash(run)?;
    let mut shown = PathBuf::from("/");
    let mut followed = 0;
    let mut races = 0;
    while let Some(step) = pending.pop_front() {
        if step.given {
            shown.push(&step.name);
        }
        if step.name == ".." {
            cur = openat(
                cur.as_fd(),
                "..",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| create_err(run, format!("open {}", shown.display()), e))?;
            continue;
        }
        if step.is_root {
            if walk == Walk::Look {
                return match open_dir_at(cur.as_fd(), &step.name, false) {
                    Ok(fd) => check_owned(&fd, &shown, run).map(|()| Some(fd)),
                    Err(Errno::ENOENT) => Ok(None),
                    Err(e) => Err(not_dir_or_io(cur.as_fd(), &step.name, &shown, run, e)),
                };
            }
            return open_owned_dir(cur.as_fd(), &step.name, &shown, run).map(Some);
        }
        match open_dir_at(cur.as_fd(), &step.name, true) {
            Ok(fd) => cur = fd,
            Err(Errno::ENOENT) if walk == Walk::Look => return Ok(None),
            Err(Errno::ENOENT) => {
                match mkdirat(cur.as_fd(), step.name.as_os_str(), Mode::S_IRWXU) {
                    Ok(()) => {
                        let fd = open_dir_at(cur.as_fd(), &step.name, false)
                            .map_err(|e| not_dir_or_io(cur.as_fd(), &step.name, &shown, run, e))?;
                        fchmod(&fd, Mode::S_IRWXU).map_err(|e| {
                            create_err(run, format!("chmod {}", shown.display()), e)
                        })?;
                        cur = fd;
                    }
                    Err(Errno::EEXIST) if races < RACE_RETRIES => {
                        // Made meanwhile by someone else: walk it like any existing name.
                        races += 1;
                        pending.push_front(Pending {
                            given: false,
                            ..step
                        });
                    }
                    Err(e) => return Err(create_err(run, format!("mkdir {}", shown.display()), e)),
                }
            }
            Err(e @ (Errno::ELOOP | Errno::ENOTDIR)) => {
                let st = fstatat(
                    cur.as_fd(),
                    step.name.as_os_str(),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| create_err(run, format!("stat {}", shown.display()), e))?;
                if !is_symlink(&st) {
                    return Err(not_dir_or_io(cur.as_fd(), &step.name, &shown, run, e));
                }
                check_trusted_symlink(&cur, &st, &shown, run)?;
                followed += 1;
                if followed > MAX_SYMLINK_DEPTH {
                    return Err(unsafe_err(
                        run,
                        format!(
                            "{}: more than {MAX_SYMLINK_DEPTH} symlinks on the way (a loop?)",
                            shown.display()
                        ),
                    ));
                }
                let target = readlinkat(cur.as_fd(), step.name.as_os_str())
                    .map_err(|e| create_err(run, format!("readlink {}", shown.display()), e))?;
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    cur = open_slash(run)?;
                }
                // The target's names replace the link's, in front of what is left of the path.
                for comp in target.components().rev() {
                    let name = match comp {
                        Component::Normal(name) => name.to_os_string(),
                        Component::ParentDir => OsString::from(".."),
                        Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
                    };
                    pending.push_front(Pending {
                        name,
                        is_root: false,
                        given: false,
                    });
                }
            }
            Err(e) => return Err(create_err(run, format!("open {}", shown.display()), e)),
        }
    }
    // The loop returns when it reaches the run root, which is the last name.
    Err(unsafe_err(
        run,
        format!("run root {} does not end in a folder name", root.display()),
    ))
}

/// A symlink above the run root is followed only if nobody but root (or us) could have made it:
/// it is owned by root or by us, and its folder is not writable by group or others.
fn check_trusted_symlink(
    dir: &OwnedFd,
    link: &FileStat,
    shown: &Path,
    run: &Path,
) -> Result<(), RunDirError> {
    let euid = geteuid().as_raw();
    if link.st_uid != 0 && link.st_uid != euid {
        return Err(unsafe_err(
            run,
            format!(
                "{} is a symlink owned by uid {}, not by root",
                shown.display(),
                link.st_uid
            ),
        ));
    }
    let parent = fstat(dir).map_err(|e| create_err(run, format!("stat {}", shown.display()), e))?;
    if parent.st_mode & 0o022 != 0 {
        let folder = shown.parent().unwrap_or(Path::new("/"));
        return Err(unsafe_err(
            run,
            format!(
                "{} is a symlink in {}, which is writable by group or others",
                shown.display(),
                folder.display()
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// copy

/// How much of a file is copied between two looks at whether the copy is still wanted: a
/// fraction of a second on any disk.
pub const COPY_CHUNK: u64 = 16 << 20;

/// Copies the content of the test folder `src` into the new, empty run folder `dest`.
///
/// Symlinks are followed (a linked file is copied as its target's content under the link's name;
/// a linked folder as a folder); a loop, or more than [`MAX_SYMLINK_DEPTH`] nested linked
/// folders, is an error. Git symlink stubs (a small file whose whole content is the relative path
/// of another file of the test folder) are copied as the content of the file they name. Files
/// keep their permission bits (without setuid/setgid/sticky; plus owner read and write, since the
/// run folder's files are rendered in place); folders keep theirs plus owner rwx.
///
/// `cancelled` is asked before each entry and each [`COPY_CHUNK`] of a file: once it says so
/// (an interrupt), the copy stops with [`RunDirError::Interrupted`], so that a huge test folder
/// does not keep an interrupt waiting.
pub fn copy_test(
    src: &Path,
    dest: &Path,
    cancelled: &dyn Fn() -> bool,
) -> Result<CopyReport, RunDirError> {
    // The suite may itself be reached through a symlink: follow it.
    let src_fd = openat(
        AT_FDCWD,
        src,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| copy_err(src, dest, e.into()))?;
    let dest_fd = openat(
        AT_FDCWD,
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| copy_err(src, dest, e.into()))?;
    let root_fd = nix::unistd::dup(&src_fd).map_err(|e| copy_err(src, dest, e.into()))?;
    let mut copier = Copier {
        src_root: src,
        dest_root: dest,
        src_root_fd: root_fd,
        report: CopyReport::default(),
        open_folders: Vec::new(),
        cancelled,
    };
    copier.copy_dir(src_fd, dest_fd, Path::new(""), 0)?;
    Ok(copier.report)
}

fn copy_err(from: &Path, to: &Path, source: io::Error) -> RunDirError {
    RunDirError::Copy {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    }
}

/// The names in a folder, sorted, without `.` and `..`; the folder stays usable through the
/// returned `Dir`.
fn list(fd: OwnedFd) -> nix::Result<(Dir, Vec<OsString>)> {
    let mut dir = Dir::from_fd(fd)?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name != "." && name != ".." {
            names.push(name.to_os_string());
        }
    }
    names.sort();
    Ok((dir, names))
}

struct Copier<'a> {
    src_root: &'a Path,
    dest_root: &'a Path,
    /// The test folder, for resolving git symlink stubs by their path relative to it.
    src_root_fd: OwnedFd,
    report: CopyReport,
    /// `(dev, ino)` of the source folders being copied, outermost first: a symlinked folder that
    /// leads back to one of them is a loop.
    open_folders: Vec<(libc::dev_t, libc::ino_t)>,
    /// Asked between entries and chunks: an interrupt stops the copy.
    cancelled: &'a dyn Fn() -> bool,
}

impl Copier<'_> {
    fn src(&self, rel: &Path) -> PathBuf {
        self.src_root.join(rel)
    }

    fn dest(&self, rel: &Path) -> PathBuf {
        self.dest_root.join(rel)
    }

    fn err(&self, rel: &Path, e: impl Into<io::Error>) -> RunDirError {
        copy_err(&self.src(rel), &self.dest(rel), e.into())
    }

    fn uncopyable(&self, rel: &Path, why: String) -> RunDirError {
        RunDirError::Uncopyable {
            path: self.src(rel),
            why,
        }
    }

    /// Copies the folder `src` (at `rel` in the test folder) into `dest`; `links` symlinked
    /// folders were crossed to get here.
    fn copy_dir(
        &mut self,
        src: OwnedFd,
        dest: OwnedFd,
        rel: &Path,
        links: usize,
    ) -> Result<(), RunDirError> {
        let st = fstat(&src).map_err(|e| self.err(rel, e))?;
        self.open_folders.push((st.st_dev, st.st_ino));
        let (src, names) = list(src).map_err(|e| self.err(rel, e))?;
        for name in names {
            self.copy_entry(src.as_fd(), dest.as_fd(), &name, &rel.join(&name), links)?;
        }
        self.open_folders.pop();
        Ok(())
    }

    fn copy_entry(
        &mut self,
        src_dir: BorrowedFd<'_>,
        dest_dir: BorrowedFd<'_>,
        name: &OsStr,
        rel: &Path,
        links: usize,
    ) -> Result<(), RunDirError> {
        if (self.cancelled)() {
            return Err(RunDirError::Interrupted);
        }
        let lst =
            fstatat(src_dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| self.err(rel, e))?;
        let linked = is_symlink(&lst);
        // Follows symlinks; O_NONBLOCK so that a FIFO cannot hang us (it is refused below).
        let fd = match openat(
            src_dir,
            name,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ELOOP) => {
                return Err(self.uncopyable(rel, "too many levels of symlinks (a loop?)".into()))
            }
            Err(Errno::ENOENT) if linked => {
                return Err(self.uncopyable(rel, "the symlink points to nothing".into()))
            }
            Err(e) => return Err(self.err(rel, e)),
        };
        let st = fstat(&fd).map_err(|e| self.err(rel, e))?;
        if linked {
            self.report
                .symlinks_followed
                .push(rel.to_string_lossy().into_owned());
        }
        if is_dir(&st) {
            let links = links + usize::from(linked);
            if links > MAX_SYMLINK_DEPTH {
                return Err(self.uncopyable(
                    rel,
                    format!("more than {MAX_SYMLINK_DEPTH} nested symlinked folders (a loop?)"),
                ));
            }
            if self.open_folders.contains(&(st.st_dev, st.st_ino)) {
                return Err(self.uncopyable(
                    rel,
                    "symlink loop: it leads back to a folder that contains it".into(),
                ));
            }
            mkdirat(dest_dir, name, Mode::S_IRWXU).map_err(|e| self.err(rel, e))?;
            let dest = open_dir_at(dest_dir, name, false).map_err(|e| self.err(rel, e))?;
            let mode = Mode::from_bits_truncate((st.st_mode & 0o777) | 0o700);
            fchmod(&dest, mode).map_err(|e| self.err(rel, e))?;
            self.copy_dir(fd, dest, rel, links)
        } else if is_file(&st) {
            self.copy_file(fd, st, dest_dir, name, rel)
        } else {
            Err(self.uncopyable(rel, "not a regular file or folder".into()))
        }
    }

    fn copy_file(
        &mut self,
        fd: OwnedFd,
        st: FileStat,
        dest_dir: BorrowedFd<'_>,
        name: &OsStr,
        rel: &Path,
    ) -> Result<(), RunDirError> {
        let mut file = File::from(fd);
        let mut head = read_head(&mut file).map_err(|e| self.err(rel, e))?;
        let mut mode = st.st_mode;
        if let Some(end) = self.resolve_stub(&head, rel)? {
            self.report.stubs_resolved.push((
                rel.to_string_lossy().into_owned(),
                end.rel.to_string_lossy().into_owned(),
            ));
            file = end.file;
            head = end.head;
            mode = end.mode;
        }

        let out = openat(
            dest_dir,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .map_err(|e| self.err(rel, e))?;
        // Explicitly, whatever the umask; never setuid/setgid into a root-owned copy.
        fchmod(&out, Mode::from_bits_truncate((mode & 0o777) | 0o600))
            .map_err(|e| self.err(rel, e))?;
        let mut out = File::from(out);
        out.write_all(&head).map_err(|e| self.err(rel, e))?;
        // In chunks (each still copied in the kernel), asking between them.
        loop {
            let copied = io::copy(&mut (&mut file).take(COPY_CHUNK), &mut out)
                .map_err(|e| self.err(rel, e))?;
            if copied < COPY_CHUNK {
                break;
            }
            if (self.cancelled)() {
                return Err(RunDirError::Interrupted);
            }
        }
        self.report.files += 1;
        Ok(())
    }

    /// If `content` (of the file at `rel`) is a git symlink stub, follows the chain of stubs and
    /// returns the file at its end.
    fn resolve_stub(&self, content: &[u8], rel: &Path) -> Result<Option<StubEnd>, RunDirError> {
        let mut found: Option<StubEnd> = None;
        let mut at = rel.to_path_buf();
        let mut content = content.to_vec();
        let mut hops = 0;
        while let Some(target) = stub_target(&content, &at) {
            let Ok(fd) = openat(
                self.src_root_fd.as_fd(),
                &target,
                OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) else {
                break;
            };
            let st = fstat(&fd).map_err(|e| self.err(&target, e))?;
            if !is_file(&st) {
                break;
            }
            hops += 1;
            if hops > MAX_SYMLINK_DEPTH {
                return Err(self.uncopyable(
                    rel,
                    format!("more than {MAX_SYMLINK_DEPTH} git symlink stubs in a row (a loop?)"),
                ));
            }
            let mut file = File::from(fd);
            let head = read_head(&mut file).map_err(|e| self.err(&target, e))?;
            content.clone_from(&head);
            at.clone_from(&target);
            found = Some(StubEnd {
                rel: target,
                file,
                head,
                mode: st.st_mode,
            });
        }
        Ok(found)
    }
}

/// The file a chain of git symlink stubs ends at.
struct StubEnd {
    /// Its path relative to the test folder.
    rel: PathBuf,
    /// Open, positioned just after `head`.
    file: File,
    /// Its first bytes (all of it if it is small).
    head: Vec<u8>,
    mode: libc::mode_t,
}

/// Reads up to one byte more than a stub can hold.
fn read_head(file: &mut File) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(STUB_MAX_LEN + 1);
    file.take(STUB_MAX_LEN as u64 + 1).read_to_end(&mut head)?;
    Ok(head)
}

/// If `content` (of the file at `rel` in the test folder) looks like a git symlink stub, the path
/// it names relative to the test folder, `..` resolved; `None` if it is not one or leaves the
/// test folder. Whether that file exists is for the caller to check.
fn stub_target(content: &[u8], rel: &Path) -> Option<PathBuf> {
    if content.is_empty()
        || content.len() > STUB_MAX_LEN
        || content.starts_with(b"/")
        || content
            .iter()
            .any(|b| matches!(b, b'\n' | b'\r' | b'\0' | b'<'))
    {
        return None;
    }
    let mut target = rel.parent().unwrap_or(Path::new("")).to_path_buf();
    for comp in Path::new(OsStr::from_bytes(content)).components() {
        match comp {
            Component::Normal(name) => target.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                if !target.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!target.as_os_str().is_empty()).then_some(target)
}

// ---------------------------------------------------------------------------------------------
// owners: run folders of killed runs

/// The file in a run folder that names the run that will remove the folder when its test is
/// over. Written only when the folder is to be removed (not with `--leave-temp`), so a folder
/// whose owner died is one nobody else will remove.
pub const OWNER_FILE: &str = ".sipplauncher-owner";

/// Writes [`OWNER_FILE`] naming this process into the run folder `dir` (fresh from
/// [`create`]).
pub fn mark_owner(dir: &Path) -> Result<(), RunDirError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(OWNER_FILE);
    RunOwner::current()
        .and_then(|owner| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .and_then(|mut f| writeln!(f, "{owner}"))
        })
        .map_err(|source| RunDirError::Create {
            run: dir.to_path_buf(),
            step: format!("write {}", path.display()),
            source,
        })
}

/// Removes [`OWNER_FILE`] from the run folder `dir`: the folder is kept, no run is to remove
/// it. A folder without the file is fine.
pub fn unmark_owner(dir: &Path) -> Result<(), RunDirError> {
    match std::fs::remove_file(dir.join(OWNER_FILE)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RunDirError::Remove {
            run: dir.to_path_buf(),
            step: format!("unlink {}", dir.join(OWNER_FILE).display()),
            source,
        }),
    }
}

/// What [`remove_dead_runs`] did.
#[derive(Debug, Default)]
pub struct DeadRuns {
    /// Run folders removed.
    pub removed: Vec<PathBuf>,
    /// Run folders of dead runs that could not be removed, with why.
    pub failed: Vec<RunDirError>,
}

/// Removes the run folders under `run_root` whose [`OWNER_FILE`] names a process that is gone
/// (a run killed with SIGKILL, a crash): `<run_root>/<test>/<run_id>/`. Folders without that
/// file (`--leave-temp`, someone else's) and those of live runs stay. Nothing is made: a missing
/// run root is nothing to do. A run root that is not safe (see [`create`]) is an error and
/// nothing under it is touched. Blocks on file I/O, once at the start of a run.
pub fn remove_dead_runs(run_root: &Path) -> Result<DeadRuns, RunDirError> {
    let mut done = DeadRuns::default();
    let root = std::path::absolute(run_root).map_err(|source| RunDirError::Create {
        run: run_root.to_path_buf(),
        step: "find the current folder".to_string(),
        source,
    })?;
    if std::fs::symlink_metadata(&root).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        return Ok(done);
    }
    let root_fd = walk_to_run_root(&root, &root, Walk::Make)?
        .ok_or_else(|| create_err(&root, format!("open {}", root.display()), Errno::ENOENT))?;
    let list_err = |path: &Path, e: Errno| RunDirError::Remove {
        run: path.to_path_buf(),
        step: format!("list {}", path.display()),
        source: e.into(),
    };
    let root_dup = root_fd.try_clone().map_err(|e| RunDirError::Remove {
        run: root.clone(),
        step: "dup".into(),
        source: e,
    })?;
    let (_root_dir, tests) = list(root_dup).map_err(|e| list_err(&root, e))?;
    for test in tests {
        // Not a folder, a symlink, vanished: not a test's folder of ours.
        let Ok(test_fd) = open_dir_at(root_fd.as_fd(), &test, false) else {
            continue;
        };
        let test_path = root.join(&test);
        let Ok((test_dir, runs)) = list(test_fd) else {
            continue;
        };
        for run in runs {
            let Some(owner) = read_owner(test_dir.as_fd(), &run) else {
                continue;
            };
            if !owner.is_gone() {
                continue;
            }
            let path = test_path.join(&run);
            match remove(&path) {
                Ok(()) => done.removed.push(path),
                Err(e) => done.failed.push(e),
            }
        }
    }
    Ok(done)
}

/// The owner named in `<test_dir>/<run>/OWNER_FILE`, if `run` is a folder that has one (read
/// without following symlinks; at most a short line).
fn read_owner(test_dir: BorrowedFd<'_>, run: &OsStr) -> Option<RunOwner> {
    let run_fd = open_dir_at(test_dir, run, false).ok()?;
    let fd = openat(
        run_fd.as_fd(),
        OWNER_FILE,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    let mut text = String::new();
    File::from(fd).take(128).read_to_string(&mut text).ok()?;
    RunOwner::parse(&text)
}

// ---------------------------------------------------------------------------------------------
// remove

/// Removes the run folder `dir` (a path returned by [`create`]) and everything in it without
/// following symlinks (a symlink inside is removed, not its target), then its `<test>` folder if
/// that became empty. A run folder that is already gone is not an error (cleanup may run twice
/// after an interrupt). Never touches anything above `<test>`.
pub fn remove(dir: &Path) -> Result<(), RunDirError> {
    let remove_err = |step: String, e: Errno| RunDirError::Remove {
        run: dir.to_path_buf(),
        step,
        source: e.into(),
    };
    let (Some(test_dir), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(remove_err("not a run folder".into(), Errno::EINVAL));
    };
    let test_fd = match openat(
        AT_FDCWD,
        test_dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(remove_err(format!("open {}", test_dir.display()), e)),
    };
    match open_dir_at(test_fd.as_fd(), name, false) {
        Ok(fd) => {
            remove_contents(fd, dir, dir)?;
            match unlinkat(test_fd.as_fd(), name, UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(remove_err(format!("rmdir {}", dir.display()), e)),
            }
        }
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(remove_err(format!("open {}", dir.display()), e)),
    }
    drop(test_fd);

    // `<test>` too if this was its last run; a concurrent run of the same test may keep it busy.
    let (Some(root), Some(test_name)) = (test_dir.parent(), test_dir.file_name()) else {
        return Ok(());
    };
    let root_fd = match openat(
        AT_FDCWD,
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(remove_err(format!("open {}", root.display()), e)),
    };
    match unlinkat(root_fd.as_fd(), test_name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOTEMPTY | Errno::EEXIST | Errno::ENOENT | Errno::EBUSY) => Ok(()),
        Err(e) => Err(remove_err(format!("rmdir {}", test_dir.display()), e)),
    }
}

/// Empties the folder open as `fd` (shown as `shown`), depth first, never following a symlink.
fn remove_contents(fd: OwnedFd, shown: &Path, run: &Path) -> Result<(), RunDirError> {
    let remove_err = |step: String, e: Errno| RunDirError::Remove {
        run: run.to_path_buf(),
        step,
        source: e.into(),
    };
    let (dir, names) = list(fd).map_err(|e| remove_err(format!("list {}", shown.display()), e))?;
    for name in names {
        let path = shown.join(&name);
        // Unlinked first, without a stat: only a folder is refused (EISDIR; EPERM where POSIX
        // says so), and a symlink goes itself, never what it points to.
        match unlinkat(dir.as_fd(), name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => continue,
            Err(Errno::EISDIR | Errno::EPERM) => {}
            Err(e) => return Err(remove_err(format!("unlink {}", path.display()), e)),
        }
        let st = match fstatat(dir.as_fd(), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(remove_err(format!("stat {}", path.display()), e)),
        };
        if !is_dir(&st) {
            return Err(remove_err(
                format!("unlink {}", path.display()),
                Errno::EPERM,
            ));
        }
        match open_dir_at(dir.as_fd(), &name, false) {
            Ok(sub) => remove_contents(sub, &path, run)?,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(remove_err(format!("open {}", path.display()), e)),
        }
        match unlinkat(dir.as_fd(), name.as_os_str(), UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(remove_err(format!("rmdir {}", path.display()), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    fn names() -> (TestName, RunId) {
        (TestName("t1".into()), RunId("abcdef".into()))
    }

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    fn private_tempdir() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).unwrap();
        tmp
    }

    #[test]
    fn create_makes_private_folders_and_refuses_a_second_time() {
        let tmp = private_tempdir();
        let root = tmp.path().join("a/b/root");
        let (test, id) = names();
        let run = create(&root, &test, &id).unwrap();
        assert_eq!(run, root.join("t1/abcdef"));
        assert!(run.is_dir());
        for p in [
            tmp.path().join("a"),
            root.clone(),
            root.join("t1"),
            run.clone(),
        ] {
            assert_eq!(mode(&p), 0o700, "{}", p.display());
        }
        let err = create(&root, &test, &id).unwrap_err();
        assert!(matches!(err, RunDirError::Exists { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!("create run folder {}: it already exists", run.display())
        );
        // Another run of the same test is fine: `<test>` may exist.
        let other = create(&root, &test, &RunId("ghijkl".into())).unwrap();
        assert!(other.is_dir());
    }

    #[test]
    fn create_under_a_world_writable_sticky_folder_like_var_tmp() {
        let tmp = private_tempdir();
        let var_tmp = tmp.path().join("var_tmp");
        fs::create_dir(&var_tmp).unwrap();
        fs::set_permissions(&var_tmp, fs::Permissions::from_mode(0o1777)).unwrap();
        let root = var_tmp.join("sipplauncher");
        let run = create(&root, &names().0, &names().1).unwrap();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&run), 0o700);
        // Someone else's (or a planted) run root is refused the next time.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::rename(&root, var_tmp.join("old")).unwrap();
        symlink(var_tmp.join("old"), &root).unwrap();
        let err = create(&root, &names().0, &RunId("other0".into())).unwrap_err();
        assert!(matches!(err, RunDirError::Unsafe { .. }), "{err}");
    }

    /// The flags of a folder (FS_IOC_GETFLAGS), `None` where the file system has none.
    fn fs_flags(p: &Path) -> Option<libc::c_int> {
        let f = fs::File::open(p).unwrap();
        let mut flags: libc::c_int = 0;
        // SAFETY: the kernel writes an int through the pointer.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
        (rc == 0).then_some(flags)
    }

    /// The run root and the `<test>` folders made here get ext4's Orlov hint (`chattr +T`);
    /// a root that was there already keeps its flags; the run folder itself gets none.
    #[test]
    fn made_folders_spread_their_run_folders() {
        const TOPDIR: libc::c_int = 0x0002_0000;
        let tmp = private_tempdir();
        let root = tmp.path().join("root");
        let run = create(&root, &names().0, &names().1).unwrap();
        match fs_flags(tmp.path()) {
            Some(parent) => {
                assert_eq!(parent & TOPDIR, 0, "the folder above the root is not ours");
                assert_ne!(fs_flags(&root).unwrap() & TOPDIR, 0, "run root");
                assert_ne!(
                    fs_flags(&root.join(&names().0 .0)).unwrap() & TOPDIR,
                    0,
                    "<test>"
                );
                assert_eq!(fs_flags(&run).unwrap() & TOPDIR, 0, "run folder");
            }
            // No flags on this file system (tmpfs): the folders are made all the same.
            None => assert!(run.is_dir() && fs_flags(&root).is_none()),
        }
        let existing = tmp.path().join("existing");
        fs::create_dir(&existing).unwrap();
        create(&existing, &names().0, &names().1).unwrap();
        if let Some(flags) = fs_flags(&existing) {
            assert_eq!(flags & TOPDIR, 0, "an existing root keeps its flags");
        }
    }

    #[test]
    fn create_is_umask_independent_for_an_existing_private_root() {
        let tmp = private_tempdir();
        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let run = create(&root, &names().0, &names().1).unwrap();
        assert_eq!(mode(&root), 0o755, "an existing root is left as it is");
        assert_eq!(mode(&run), 0o700);
    }

    #[test]
    fn create_accepts_a_relative_root() {
        let tmp = private_tempdir();
        let cwd = std::env::current_dir().unwrap();
        let rel = pathdiff(tmp.path(), &cwd);
        let run = create(&rel.join("root"), &names().0, &names().1).unwrap();
        assert!(run.is_absolute());
        assert!(tmp.path().join("root/t1/abcdef").is_dir());
    }

    /// `target` relative to `base`, with as many `..` as needed.
    fn pathdiff(target: &Path, base: &Path) -> PathBuf {
        let mut up = PathBuf::new();
        for _ in base.components().skip(1) {
            up.push("..");
        }
        up.join(target.strip_prefix("/").unwrap())
    }

    #[test]
    fn planted_symlink_at_test_is_refused_and_nothing_is_made_at_its_target() {
        let tmp = private_tempdir();
        let root = tmp.path().join("root");
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, root.join("t1")).unwrap();
        let err = create(&root, &names().0, &names().1).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, RunDirError::Unsafe { .. }), "{msg}");
        assert!(
            msg.ends_with(&format!("{} is a symlink", root.join("t1").display())),
            "{msg}"
        );
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn planted_symlink_at_run_id_is_refused() {
        let tmp = private_tempdir();
        let root = tmp.path().join("root");
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir_all(root.join("t1")).unwrap();
        fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, root.join("t1/abcdef")).unwrap();
        let err = create(&root, &names().0, &names().1).unwrap_err();
        assert!(matches!(err, RunDirError::Exists { .. }), "{err}");
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn run_root_that_is_a_symlink_is_refused() {
        let tmp = private_tempdir();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        let root = tmp.path().join("root");
        symlink(&real, &root).unwrap();
        let err = create(&root, &names().0, &names().1).unwrap_err();
        assert!(
            err.to_string()
                .ends_with(&format!("{} is a symlink", root.display())),
            "{err}"
        );
        assert_eq!(fs::read_dir(&real).unwrap().count(), 0);
    }

    #[test]
    fn symlink_above_the_root_in_a_folder_writable_by_others_is_refused() {
        let tmp = private_tempdir();
        let shared = tmp.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        symlink(&real, shared.join("link")).unwrap();
        let root = shared.join("link/root");
        let err = create(&root, &names().0, &names().1).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "{} is a symlink in {}, which is writable by group or others",
                shared.join("link").display(),
                shared.display()
            )),
            "{msg}"
        );
        assert_eq!(fs::read_dir(&real).unwrap().count(), 0);
    }

    #[test]
    fn trusted_symlink_above_the_root_is_followed() {
        // Made by us (or root) in a folder only we can write: like `/var/run -> /run`.
        let tmp = private_tempdir();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        symlink("real", tmp.path().join("link")).unwrap();
        let run = create(&tmp.path().join("link/x/root"), &names().0, &names().1).unwrap();
        assert_eq!(run, tmp.path().join("link/x/root/t1/abcdef"));
        assert!(real.join("x/root/t1/abcdef").is_dir());
    }

    #[test]
    fn symlink_loop_above_the_root_is_an_error() {
        let tmp = private_tempdir();
        symlink("b", tmp.path().join("a")).unwrap();
        symlink("a", tmp.path().join("b")).unwrap();
        let err = create(&tmp.path().join("a/root"), &names().0, &names().1).unwrap_err();
        assert!(err.to_string().contains("symlinks on the way"), "{err}");
    }

    #[test]
    fn root_writable_by_others_is_refused() {
        let tmp = private_tempdir();
        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        let err = create(&root, &names().0, &names().1).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "create run folder {}: {} is writable by others",
                root.join("t1/abcdef").display(),
                root.display()
            )
        );
        assert!(!root.join("t1").exists());

        fs::set_permissions(&root, fs::Permissions::from_mode(0o770)).unwrap();
        let err = create(&root, &names().0, &names().1).unwrap_err();
        assert!(
            err.to_string().ends_with("is writable by its group"),
            "{err}"
        );
    }

    #[test]
    fn test_folder_writable_by_others_is_refused() {
        let tmp = private_tempdir();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("t1")).unwrap();
        fs::set_permissions(root.join("t1"), fs::Permissions::from_mode(0o757)).unwrap();
        let err = create(&root, &names().0, &names().1).unwrap_err();
        assert!(
            err.to_string().ends_with(&format!(
                "{} is writable by others",
                root.join("t1").display()
            )),
            "{err}"
        );
    }

    #[test]
    fn root_owned_by_someone_else_is_refused() {
        // Needs a folder owned by another uid: as root we make one; as a user, `/` is root's.
        let tmp = private_tempdir();
        let (root, owner) = if geteuid().is_root() {
            let root = tmp.path().join("root");
            fs::create_dir(&root).unwrap();
            nix::unistd::chown(&root, Some(nix::unistd::Uid::from_raw(1001)), None).unwrap();
            (root, 1001)
        } else {
            (PathBuf::from("/usr"), 0)
        };
        let err = create(&root, &names().0, &names().1).unwrap_err();
        assert!(
            err.to_string().ends_with(&format!(
                "{} is owned by uid {owner}, not by us",
                root.display()
            )),
            "{err}"
        );
    }

    /// What `create` would refuse is told before anything is made; a missing root is fine and
    /// stays missing.
    #[test]
    fn the_run_root_is_checked_without_making_anything() {
        let tmp = private_tempdir();
        let missing = tmp.path().join("a/b/runs");
        check_run_root(&missing).unwrap();
        assert!(!tmp.path().join("a").exists());
        let ours = tmp.path().join("ours");
        fs::create_dir(&ours).unwrap();
        fs::set_permissions(&ours, fs::Permissions::from_mode(0o700)).unwrap();
        check_run_root(&ours).unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&ours, &link).unwrap();
        let bad = |p: &Path| check_run_root(p).unwrap_err().to_string();
        assert!(bad(&file).ends_with("is not a folder"), "{}", bad(&file));
        assert!(
            bad(&open).ends_with("is writable by others"),
            "{}",
            bad(&open)
        );
        assert!(bad(&link).ends_with("is a symlink"), "{}", bad(&link));
        assert!(bad(&file.join("below")).contains("is not a folder"));
        assert!(
            bad(Path::new("/")).contains("does not end in a folder name"),
            "{}",
            bad(Path::new("/"))
        );
        if geteuid().is_root() {
            let theirs = tmp.path().join("theirs");
            fs::create_dir(&theirs).unwrap();
            nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(1001)), None).unwrap();
            assert!(bad(&theirs).ends_with("is owned by uid 1001, not by us"));
        }
    }

    #[test]
    fn a_file_in_the_way_is_not_a_folder() {
        let tmp = private_tempdir();
        fs::write(tmp.path().join("root"), "").unwrap();
        let err = create(&tmp.path().join("root"), &names().0, &names().1).unwrap_err();
        assert!(err.to_string().ends_with("root is not a folder"), "{err}");
        let err = create(&tmp.path().join("root/x"), &names().0, &names().1).unwrap_err();
        assert!(err.to_string().ends_with("root is not a folder"), "{err}");
    }

    #[test]
    fn bad_test_names_are_refused() {
        let tmp = private_tempdir();
        for bad in ["", ".", "..", "a/b", "/abs"] {
            let err = create(tmp.path(), &TestName(bad.into()), &names().1).unwrap_err();
            assert!(matches!(err, RunDirError::BadName { .. }), "{bad}: {err}");
        }
        let err = create(tmp.path(), &names().0, &RunId("..".into())).unwrap_err();
        assert!(err.to_string().contains("invalid run id"), "{err}");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
        let err = create(Path::new("/"), &names().0, &names().1).unwrap_err();
        assert!(
            err.to_string().contains("does not end in a folder name"),
            "{err}"
        );
    }

    // -- copy --------------------------------------------------------------------------------

    fn fresh_run(tmp: &Path) -> PathBuf {
        create(&tmp.join("runs"), &names().0, &names().1).unwrap()
    }

    #[test]
    fn copy_follows_symlinked_files_and_folders_and_keeps_modes() {
        let tmp = private_tempdir();
        let src = tmp.path().join("suite/t1");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&src).unwrap();
        fs::create_dir_all(outside.join("deep")).unwrap();
        fs::write(src.join("uas_ua0.xml"), "<scenario/>").unwrap();
        symlink("uas_ua0.xml", src.join("uac_ua1.xml")).unwrap();
        fs::write(src.join("before.sh"), "echo hi\n").unwrap();
        fs::set_permissions(src.join("before.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(src.join("private.txt"), "p").unwrap();
        fs::set_permissions(src.join("private.txt"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(outside.join("deep/inc.jinja2"), "{{ x }}").unwrap();
        symlink(&outside, src.join("lib")).unwrap();

        let run = fresh_run(tmp.path());
        let report = copy_test(&src, &run, &|| false).unwrap();
        assert_eq!(
            fs::read_to_string(run.join("uac_ua1.xml")).unwrap(),
            "<scenario/>"
        );
        assert!(fs::symlink_metadata(run.join("uac_ua1.xml"))
            .unwrap()
            .is_file());
        assert!(fs::symlink_metadata(run.join("lib")).unwrap().is_dir());
        assert_eq!(
            fs::read_to_string(run.join("lib/deep/inc.jinja2")).unwrap(),
            "{{ x }}"
        );
        assert_eq!(mode(&run.join("before.sh")), 0o755);
        assert_eq!(mode(&run.join("private.txt")), 0o600);
        assert_eq!(
            report,
            CopyReport {
                files: 5,
                symlinks_followed: vec!["lib".into(), "uac_ua1.xml".into()],
                stubs_resolved: vec![],
            }
        );
    }

    #[test]
    fn copy_strips_setuid_and_makes_read_only_files_writable_by_us() {
        let tmp = private_tempdir();
        let src = tmp.path().join("t1");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("s"), "x").unwrap();
        fs::set_permissions(src.join("s"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::write(src.join("ro"), "x").unwrap();
        fs::set_permissions(src.join("ro"), fs::Permissions::from_mode(0o444)).unwrap();
        let run = fresh_run(tmp.path());
        copy_test(&src, &run, &|| false).unwrap();
        assert_eq!(mode(&run.join("s")), 0o755);
        assert_eq!(mode(&run.join("ro")), 0o644);
    }

    /// An interrupt stops a copy between files and between chunks of a big file: asked once per
    /// entry and once per chunk, it stops at the first chunk once it says so.
    #[test]
    fn an_interrupt_stops_the_copy_between_chunks() {
        let tmp = private_tempdir();
        let src = tmp.path().join("t1");
        fs::create_dir(&src).unwrap();
        let big = fs::File::create(src.join("big")).unwrap();
        big.set_len(3 * COPY_CHUNK).unwrap();
        let copy = |after: u32| {
            let asked = std::cell::Cell::new(0);
            let run_id = RunId(format!("run{after}"));
            let run = create(&tmp.path().join("runs"), &names().0, &run_id).unwrap();
            let answer = copy_test(&src, &run, &|| {
                asked.set(asked.get() + 1);
                asked.get() > after
            });
            (answer, asked.get(), run)
        };
        let (answer, asked, run) = copy(0);
        assert!(matches!(answer, Err(RunDirError::Interrupted)), "{asked}");
        assert!(!run.join("big").exists());
        let (answer, asked, run) = copy(1);
        assert!(matches!(answer, Err(RunDirError::Interrupted)), "{asked}");
        // Its first bytes (read to tell a git symlink stub) and one chunk.
        let len = fs::metadata(run.join("big")).unwrap().len();
        assert!(len > COPY_CHUNK && len < 2 * COPY_CHUNK, "{len}");
        let (answer, asked, run) = copy(10);
        assert_eq!(answer.unwrap().files, 1);
        // Once for the entry, once after each full chunk (the first bytes were read before the
        // chunks: the third is short).
        assert_eq!(asked, 3);
        assert_eq!(fs::metadata(run.join("big")).unwrap().len(), 3 * COPY_CHUNK);
    }

    #[test]
    fn copy_refuses_a_symlinked_folder_loop() {
        let tmp = private_tempdir();
        let src = tmp.path().join("t1");
        fs::create_dir_all(src.join("sub")).unwrap();
        symlink("..", src.join("sub/up")).unwrap();
        let run = fresh_run(tmp.path());
        let err = copy_test(&src, &run, &|| false).unwrap_err();
        assert!(matches!(err, RunDirError::Uncopyable { .. }), "{err}");
        assert!(err.to_string().contains("symlink loop"), "{err}");
        assert!(err.to_string().contains("sub/up"), "{err}");
    }

    #[test]
    fn copy_refuses_a_file_symlink_loop_and_a_dangling_symlink() {
        let tmp = private_tempdir();
        let src = tmp.path().join("t1");
        fs::create_dir(&src).unwrap();
        symlink("b", src.join("a")).unwrap();
        symlink("a", src.join("b")).unwrap();
        let run = fresh_run(tmp.path());
        let err = copy_test(&src, &run, &|| false).unwrap_err();
        assert!(
            err.to_string().contains("too many levels of symlinks"),
            "{err}"
        );

        let src2 = tmp.path().join("t2");
        fs::create_dir(&src2).unwrap();
        symlink("missing", src2.join("a")).unwrap();
        let run2 = create(&tmp.path().join("runs"), &TestName("t2".into()), &names().1).unwrap();
        let err = copy_test(&src2, &run2, &|| false).unwrap_err();
        assert!(err.to_string().contains("points to nothing"), "{err}");
    }

    #[test]
    fn copy_limits_nested_symlinked_folders() {
        // 17 distinct symlinked folders, each inside the previous one's target.
        let tmp = private_tempdir();
        let src = tmp.path().join("t1");
        fs::create_dir(&src).unwrap();
        let mut here = src.clone();
        for i in 0..=MAX_SYMLINK_DEPTH {
            let real = tmp.path().join(format!("real{i}"));
            fs::create_dir(&real).unwrap();
            symlink(&real, here.join("l")).unwrap();
            here = real;
        }
        let run = fresh_run(tmp.path());
        let err = copy_test(&src, &run, &|| false).unwrap_err();
        assert!(
            err.to_string().contains("nested symlinked folders"),
            "{err}"
        );
    }

    #[test]
    fn copy_resolves_git_symlink_stubs() {
        let tmp = private_tempdir();
        let src = tmp.path().join("t1");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("a.xml"), "<scenario>a</scenario>").unwrap();
        fs::write(src.join("b.xml"), "a.xml").unwrap();
        fs::write(src.join("c.xml"), "b.xml").unwrap(); // a chain
        fs::write(src.join("sub/d.xml"), "../a.xml").unwrap();
        fs::write(src.join("sub/e.xml"), "./../sub/../b.xml").unwrap();
        // Not stubs: outside the folder, missing, a folder, a newline, a `<`, absolute.
        fs::write(tmp.path().join("secret"), "s").unwrap();
        fs::write(src.join("out.xml"), "../secret").unwrap();
        fs::write(src.join("missing.xml"), "nope.xml").unwrap();
        fs::write(src.join("dir.xml"), "sub").unwrap();
        fs::write(src.join("nl.xml"), "a.xml\n").unwrap();
        fs::write(src.join("lt.xml"), "<a.xml").unwrap();
        fs::write(src.join("abs.xml"), src.join("a.xml").to_str().unwrap()).unwrap();

        let run = fresh_run(tmp.path());
        let report = copy_test(&src, &run, &|| false).unwrap();
        for f in ["b.xml", "c.xml", "sub/d.xml", "sub/e.xml"] {
            assert_eq!(
                fs::read_to_string(run.join(f)).unwrap(),
                "<scenario>a</scenario>",
                "{f}"
            );
        }
        for (f, content) in [
            ("out.xml", "../secret"),
            ("missing.xml", "nope.xml"),
            ("dir.xml", "sub"),
            ("nl.xml", "a.xml\n"),
            ("lt.xml", "<a.xml"),
        ] {
            assert_eq!(fs::read_to_string(run.join(f)).unwrap(), content, "{f}");
        }
        assert_eq!(
            report.stubs_resolved,
            vec![
                ("b.xml".to_string(), "a.xml".to_string()),
                ("c.xml".to_string(), "a.xml".to_string()),
                ("sub/d.xml".to_string(), "a.xml".to_string()),
                ("sub/e.xml".to_string(), "a.xml".to_string()),
            ]
        );
        assert_eq!(report.files, 11);
    }

    #[test]
    fn stub_takes_its_targets_mode_and_large_targets_are_copied_whole() {
        let tmp = private_tempdir();
        let src = tmp.path().join("t1");
        fs::create_dir(&src).unwrap();
        let big = "x".repeat(100_000);
        fs::write(src.join("big.sh"), &big).unwrap();
        fs::set_permissions(src.join("big.sh"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::write(src.join("link.sh"), "big.sh").unwrap();
        let run = fresh_run(tmp.path());
        copy_test(&src, &run, &|| false).unwrap();
        assert_eq!(fs::read_to_string(run.join("big.sh")).unwrap(), big);
        assert_eq!(fs::read_to_string(run.join("link.sh")).unwrap(), big);
        assert_eq!(mode(&run.join("link.sh")), 0o750);
    }

    #[test]
    fn stub_loop_is_an_error() {
        let tmp = private_tempdir();
        let src = tmp.path().join("t1");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("a.xml"), "b.xml").unwrap();
        fs::write(src.join("b.xml"), "a.xml").unwrap();
        let run = fresh_run(tmp.path());
        let err = copy_test(&src, &run, &|| false).unwrap_err();
        assert!(
            err.to_string().contains("git symlink stubs in a row"),
            "{err}"
        );
    }

    #[test]
    fn stub_target_rules() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(stub_target(b"a.xml", Path::new("b.xml")), p("a.xml"));
        assert_eq!(stub_target(b"../a.xml", Path::new("s/b.xml")), p("a.xml"));
        assert_eq!(stub_target(b"x/./y", Path::new("s/b")), p("s/x/y"));
        assert_eq!(stub_target(b"../a.xml", Path::new("b.xml")), None);
        assert_eq!(stub_target(b"/etc/passwd", Path::new("b")), None);
        assert_eq!(stub_target(b"", Path::new("b")), None);
        assert_eq!(stub_target(b".", Path::new("b")), None);
        assert_eq!(stub_target(b"a\0b", Path::new("b")), None);
        assert_eq!(stub_target(b"a\r", Path::new("b")), None);
        assert_eq!(stub_target(&[b'a'; 1025], Path::new("b")), None);
        assert!(stub_target(&[b'a'; 1024], Path::new("b")).is_some());
    }

    #[test]
    fn copy_of_the_original_example_test_resolves_its_two_stubs() {
        let src = Path::new("/work/shared/compat/original-tmp-testsuite/normal-0000");
        if !src.is_dir() {
            return; // the shared compat folder is not there outside the project's machines
        }
        let tmp = private_tempdir();
        let run = fresh_run(tmp.path());
        let report = copy_test(src, &run, &|| false).unwrap();
        let ua0 = fs::read(src.join("uas_ua0.xml")).unwrap();
        assert_eq!(fs::read(run.join("uac_ua2.xml")).unwrap(), ua0);
        assert_eq!(fs::read(run.join("uas_ua1.xml")).unwrap(), ua0);
        assert_eq!(
            report.stubs_resolved,
            vec![
                ("uac_ua2.xml".to_string(), "uas_ua0.xml".to_string()),
                ("uas_ua1.xml".to_string(), "uas_ua0.xml".to_string()),
            ]
        );
        assert_eq!(report.files, 4);
        assert_eq!(mode(&run.join("before.sh")) & 0o111, 0o111);
    }

    #[test]
    fn storage_full_is_recognised() {
        let full = |errno| RunDirError::Copy {
            from: "a".into(),
            to: "b".into(),
            source: io::Error::from_raw_os_error(errno),
        };
        assert!(full(libc::ENOSPC).is_storage_full());
        assert!(full(libc::EDQUOT).is_storage_full());
        assert!(!full(libc::EACCES).is_storage_full());
        assert!(!RunDirError::Exists { path: "x".into() }.is_storage_full());
    }

    #[test]
    fn copy_refuses_to_overwrite() {
        let tmp = private_tempdir();
        let src = tmp.path().join("t1");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("a"), "new").unwrap();
        let run = fresh_run(tmp.path());
        fs::write(run.join("a"), "old").unwrap();
        let err = copy_test(&src, &run, &|| false).unwrap_err();
        assert!(matches!(err, RunDirError::Copy { .. }), "{err}");
        assert_eq!(fs::read_to_string(run.join("a")).unwrap(), "old");
    }

    // -- remove ------------------------------------------------------------------------------

    #[test]
    fn remove_deletes_the_run_and_its_empty_test_folder_but_not_a_symlinks_target() {
        let tmp = private_tempdir();
        let root = tmp.path().join("runs");
        let (test, id) = names();
        let run = create(&root, &test, &id).unwrap();
        let sibling = create(&root, &test, &RunId("zzzzzz".into())).unwrap();
        let precious = tmp.path().join("precious");
        fs::create_dir(&precious).unwrap();
        fs::write(precious.join("keep"), "k").unwrap();
        fs::create_dir_all(run.join("a/b")).unwrap();
        fs::write(run.join("a/b/f"), "f").unwrap();
        fs::set_permissions(run.join("a/b/f"), fs::Permissions::from_mode(0o000)).unwrap();
        symlink(&precious, run.join("link")).unwrap();
        symlink(precious.join("keep"), run.join("a/filelink")).unwrap();

        remove(&run).unwrap();
        assert!(!run.exists());
        assert!(sibling.is_dir(), "a sibling run is left alone");
        assert!(root.join("t1").is_dir(), "<test> is not empty yet");
        assert_eq!(fs::read_to_string(precious.join("keep")).unwrap(), "k");

        remove(&sibling).unwrap();
        assert!(!root.join("t1").exists(), "the emptied <test> goes too");
        assert!(root.is_dir(), "never the run root");
        assert_eq!(fs::read_to_string(precious.join("keep")).unwrap(), "k");

        remove(&sibling).unwrap(); // twice is fine
    }

    // -- owners of run folders ------------------------------------------------------------

    use crate::sys::owner::tests::me_and_a_dead_run;

    #[test]
    fn dead_runs_folders_go_and_the_rest_stays() {
        let tmp = private_tempdir();
        let root = tmp.path().join("runs");
        let (me, dead) = me_and_a_dead_run();
        let run = |test: &str, id: &str| {
            create(&root, &TestName(test.into()), &RunId(id.into())).unwrap()
        };
        let killed = run("t1", "aaaaaa");
        fs::write(killed.join(OWNER_FILE), format!("{dead}\n")).unwrap();
        fs::create_dir_all(killed.join("sub")).unwrap();
        fs::write(killed.join("sub/f"), "x").unwrap();
        let live = run("t1", "bbbbbb");
        mark_owner(&live).unwrap();
        assert_eq!(
            RunOwner::parse(&fs::read_to_string(live.join(OWNER_FILE)).unwrap()),
            Some(me)
        );
        assert_eq!(mode(&live.join(OWNER_FILE)), 0o600);
        assert!(
            mark_owner(&live).is_err(),
            "written once, never over another"
        );
        // --leave-temp: no owner file.
        let kept = run("t1", "cccccc");
        // A dead-looking owner in another pid namespace (another container): not ours to judge.
        let elsewhere = run("t1", "ffffff");
        let other_ns = RunOwner {
            pidns: dead.pidns + 1,
            ..dead
        };
        fs::write(elsewhere.join(OWNER_FILE), format!("{other_ns}\n")).unwrap();
        let alone = run("t2", "dddddd");
        fs::write(alone.join(OWNER_FILE), format!("{dead}")).unwrap();
        // An owner file that is a symlink is not read.
        let planted = run("t3", "eeeeee");
        fs::write(tmp.path().join("fake"), format!("{dead}")).unwrap();
        symlink(tmp.path().join("fake"), planted.join(OWNER_FILE)).unwrap();
        // Not folders of runs.
        fs::write(root.join("a-file"), "x").unwrap();
        symlink(&killed, root.join("t4")).unwrap();

        let done = remove_dead_runs(&root).unwrap();
        assert!(done.failed.is_empty(), "{:?}", done.failed);
        assert_eq!(done.removed, vec![killed.clone(), alone.clone()]);
        assert!(!killed.exists());
        assert!(
            !root.join("t2").exists(),
            "the emptied <test> folder goes too"
        );
        assert!(live.is_dir() && kept.is_dir() && planted.is_dir() && elsewhere.is_dir());
        assert!(root.join("a-file").is_file());
        assert!(tmp.path().join("fake").is_file());

        // Nothing to do twice; a missing run root is not made.
        assert!(remove_dead_runs(&root).unwrap().removed.is_empty());
        let missing = tmp.path().join("none");
        assert!(remove_dead_runs(&missing).unwrap().removed.is_empty());
        assert!(!missing.exists());
    }

    #[test]
    fn dead_runs_under_an_unsafe_run_root_are_not_touched() {
        let tmp = private_tempdir();
        let root = tmp.path().join("runs");
        let (_, dead) = me_and_a_dead_run();
        let killed = create(&root, &names().0, &names().1).unwrap();
        fs::write(killed.join(OWNER_FILE), format!("{dead}")).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        let e = remove_dead_runs(&root).unwrap_err();
        assert!(e.to_string().contains("writable by others"), "{e}");
        assert!(killed.is_dir());
    }

    #[test]
    fn remove_then_create_again() {
        let tmp = private_tempdir();
        let root = tmp.path().join("runs");
        let run = create(&root, &names().0, &names().1).unwrap();
        remove(&run).unwrap();
        let again = create(&root, &names().0, &names().1).unwrap();
        assert_eq!(again, run);
        assert!(again.is_dir());
    }

    #[test]
    fn concurrent_create_and_remove_of_one_test_do_not_fail() {
        let tmp = private_tempdir();
        let root = tmp.path().join("runs");
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let root = root.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let id = RunId(format!("w{w}i{i:03}"));
                        let run = create(&root, &names().0, &id).unwrap();
                        fs::write(run.join("f"), "x").unwrap();
                        remove(&run).unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert!(!root.join("t1").exists());
    }
}
