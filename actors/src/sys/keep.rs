//! What becomes of a run folder once its test is over (issue 11): the evidence of a run that
//! did not pass stays (`--keep failed`, the default, at most `--keep-max` folders a run), every
//! folder stays (`--keep all`, `--leave-temp`), or none does. A kept folder no longer names its
//! run as the one that will remove it, so that the next run leaves it alone. Run through sudo,
//! a kept folder is handed to that user (see [`hand_over`]).
//!
//! The decision is pure ([`decide`]); [`Keeper::settle`] carries it out (blocking: call it on
//! the blocking pool).

use std::fs;
use std::io;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::core::plan::{HandTo, Keep};
use crate::sys::rundir;

/// What becomes of one run folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    Kept,
    Removed,
    /// A run that did not pass, whose folder was removed because `--keep-max` folders are kept
    /// already.
    RemovedOverKeepMax,
}

/// The fate of a run's folder under `keep` (`failed`: the run did not pass, through a fault of
/// its own), when `kept` failed runs' folders are kept already and at most `max` may be.
pub fn decide(keep: Keep, failed: bool, max: u64, kept: u64) -> Fate {
    match keep {
        Keep::All => Fate::Kept,
        Keep::None => Fate::Removed,
        Keep::Failed if !failed => Fate::Removed,
        Keep::Failed if kept < max => Fate::Kept,
        Keep::Failed => Fate::RemovedOverKeepMax,
    }
}

/// A run's account of kept folders, shared by all its test runs (and GLOBAL).
#[derive(Debug)]
pub struct Keeper {
    keep: Keep,
    max: u64,
    /// Failed runs' folders kept so far (`Keep::Failed` only).
    kept_failed: AtomicU64,
    /// Run through sudo: the user kept folders are handed to.
    hand_to: Option<HandTo>,
}

/// What [`Keeper::settle`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub fate: Fate,
    /// Why the folder could not be removed, or kept as it should: one line.
    pub problem: Option<String>,
    /// Why a kept folder could not be handed to the sudo user (not a fault of the run's: to
    /// log, not to make it DIRTY).
    pub warning: Option<String>,
}

impl Keeper {
    pub fn new(keep: Keep, max: u64) -> Self {
        Keeper {
            keep,
            max,
            kept_failed: AtomicU64::new(0),
            hand_to: None,
        }
    }

    /// Kept folders go to this user (the one who ran sudo).
    pub fn handing_to(mut self, to: Option<HandTo>) -> Self {
        self.hand_to = to;
        self
    }

    /// Whether a fresh run folder names its run in [`rundir::OWNER_FILE`]: every folder that
    /// may be removed does, so that the next run removes it if this one is killed first.
    pub fn marks_owner(&self) -> bool {
        self.keep != Keep::All
    }

    /// Decides the fate of a folder and takes a place among the kept ones when it is kept.
    fn fate(&self, failed: bool) -> Fate {
        let mut fate = Fate::Removed;
        // `fetch_update` retries the closure on a race: the last call's decision is the one
        // that took effect.
        let _ = self
            .kept_failed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |kept| {
                fate = decide(self.keep, failed, self.max, kept);
                (self.keep == Keep::Failed && fate == Fate::Kept).then_some(kept + 1)
            });
        fate
    }

    /// Keeps or removes `folder`, the folder of a run that is over. `failed`: the run did not
    /// pass through a fault of its own (NOT READY, FAIL, DIRTY); a run that passed, or that a
    /// signal cut short (Ctrl+C leaves nothing behind, SPEC §4.2), is not evidence of anything.
    /// Blocks on file I/O.
    pub fn settle(&self, folder: &Path, failed: bool) -> Settled {
        let fate = self.fate(failed);
        let problem = match fate {
            Fate::Kept if self.marks_owner() => rundir::unmark_owner(folder).err(),
            Fate::Kept => None,
            Fate::Removed | Fate::RemovedOverKeepMax => rundir::remove(folder).err(),
        };
        let warning = match (fate, self.hand_to) {
            (Fate::Kept, Some(to)) => hand_over(folder, to).err().map(|e| {
                format!(
                    "hand the run folder {} to uid {} (SUDO_UID): {e}",
                    folder.display(),
                    to.uid
                )
            }),
            _ => None,
        };
        Settled {
            fate,
            problem: problem.map(|e| e.to_string()),
            warning,
        }
    }
}

/// Gives the kept run folder `folder` (`<run_root>/<test>/<run_id>`) and everything in it to
/// `to`, symlinks themselves rather than what they point to, and lets `to` reach it: `<test>` and
/// the run root get search permission for all (not read: nobody lists the other runs; the run
/// folders of others stay 0700 and root's). Blocking.
pub fn hand_over(folder: &Path, to: HandTo) -> io::Result<()> {
    give(folder, to)?;
    for parent in folder.ancestors().skip(1).take(2) {
        let meta = fs::symlink_metadata(parent)?;
        // Made by us, refused when someone else could write to it (rundir::create): no symlink
        // to follow here; checked again all the same.
        if meta.file_type().is_dir() {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o011 != 0o011 {
                fs::set_permissions(parent, fs::Permissions::from_mode(mode | 0o011))?;
            }
        }
    }
    Ok(())
}

/// `path` and, for a folder, everything under it, to `to`, without following symlinks.
fn give(path: &Path, to: HandTo) -> io::Result<()> {
    lchown(path, Some(to.uid), Some(to.gid))?;
    if fs::symlink_metadata(path)?.file_type().is_dir() {
        for entry in fs::read_dir(path)? {
            give(&entry?.path(), to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        use Fate::*;
        use Keep::{All, Failed, None as Nothing};
        for (keep, failed, kept, fate) in [
            (All, false, 0, Kept),
            (All, true, 500, Kept),
            (Nothing, false, 0, Removed),
            (Nothing, true, 0, Removed),
            (Failed, false, 0, Removed),
            (Failed, true, 0, Kept),
            (Failed, true, 1, RemovedOverKeepMax),
        ] {
            assert_eq!(
                decide(keep, failed, 1, kept),
                fate,
                "{keep:?} {failed} {kept}"
            );
        }
        assert_eq!(decide(Failed, true, 0, 0), RemovedOverKeepMax);
    }

    #[test]
    fn at_most_keep_max_failed_folders_are_kept() {
        let e = Keeper::new(Keep::Failed, 2);
        let fates: Vec<Fate> = [true, false, true, true, false, true]
            .into_iter()
            .map(|failed| e.fate(failed))
            .collect();
        assert_eq!(
            fates,
            [
                Fate::Kept,
                Fate::Removed,
                Fate::Kept,
                Fate::RemovedOverKeepMax,
                Fate::Removed,
                Fate::RemovedOverKeepMax
            ]
        );
        // Keeping all is not bounded.
        let all = Keeper::new(Keep::All, 1);
        assert!((0..5).all(|_| all.fate(true) == Fate::Kept));
    }

    #[test]
    fn settle_keeps_without_the_owner_file_or_removes() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let make = |id: &str| {
            let test = crate::core::plan::TestName("t".into());
            let run = crate::core::plan::RunId(id.into());
            let f = rundir::create(tmp.path(), &test, &run).unwrap();
            rundir::mark_owner(&f).unwrap();
            std::fs::write(f.join("sipp-x.pcap"), b"x").unwrap();
            f
        };
        let e = Keeper::new(Keep::Failed, 1);
        let failed = make("aaaaaa");
        let passed = make("bbbbbb");
        let over = make("cccccc");
        let s = e.settle(&failed, true);
        assert_eq!((s.fate, s.problem), (Fate::Kept, None));
        assert!(failed.join("sipp-x.pcap").exists());
        assert!(!failed.join(rundir::OWNER_FILE).exists());
        assert_eq!(e.settle(&passed, false).fate, Fate::Removed);
        assert!(!passed.exists());
        assert_eq!(e.settle(&over, true).fate, Fate::RemovedOverKeepMax);
        assert!(!over.exists());
    }
}
