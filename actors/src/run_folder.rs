//! A run folder made ready, for a TestActor's pre-run and for the GLOBAL pseudo-test alike:
//! made under the run root (a fresh run id when the folder exists already), marked with its
//! owner, the test's files copied in, its `sipplauncher.log` opened, its templates rendered.
//! Whatever fails undoes what was done, but the folder: it stays as evidence or goes
//! (`--keep`, see [`Keeper`]). Blocking: call it on the blocking pool.

use std::path::{Path, PathBuf};

use slog::{debug, info, warn, Logger};

use crate::core::plan::{Render, RenderContext, RunConfig, RunId, TestName};
use crate::sys::keep::{Fate, Keeper};
use crate::sys::{logging, rundir};

/// How many other run ids are drawn when the folder of the first exists already.
const RUN_ID_TRIES: u32 = 5;

/// A run folder, made and rendered.
pub struct RunFolder {
    /// The run id the folder is named by: the one asked for, or a fresh one when that folder
    /// existed already.
    pub run_id: RunId,
    pub path: PathBuf,
    /// The run's own logger: `sipplauncher.log` in the folder, and the general log.
    pub log: Logger,
}

/// Why a run folder could not be made ready.
pub struct FolderFailure {
    /// One line.
    pub reason: String,
    /// The tool's own fault (a full disk, the log not writable): the run stops.
    pub fatal: bool,
    /// The run's own log, when it was opened: the failure goes there too.
    pub log: Option<Logger>,
    /// The folder, when it was made, and what became of it.
    pub folder: Option<(PathBuf, Fate)>,
}

/// Makes the run folder of `name` from `source` and renders it with `ctx` (whose run id may be
/// replaced, see [`RunFolder::run_id`]). The copy and the rendering give up soon after
/// `cancelled` says so (an interrupt: the folder would be undone anyway).
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    source: &Path,
    name: &TestName,
    config: &RunConfig,
    keeper: &Keeper,
    render: &dyn Render,
    ctx: RenderContext,
    log: &Logger,
    cancelled: &dyn Fn() -> bool,
) -> Result<RunFolder, FolderFailure> {
    let mut run_id = ctx.run_id.clone();
    let mut tries = 0;
    let path = loop {
        match rundir::create(&config.run_root, name, &run_id) {
            Ok(f) => break f,
            Err(rundir::RunDirError::Exists { .. }) if tries < RUN_ID_TRIES => {
                tries += 1;
                run_id = RunId::random();
            }
            // A folder that cannot be made is this test's problem (NOT READY, the run goes
            // on); only a full disk stops the run.
            Err(e) => {
                return Err(FolderFailure {
                    fatal: e.is_storage_full(),
                    reason: e.to_string(),
                    log: None,
                    folder: None,
                })
            }
        }
    };
    // The run did not get ready: its folder is evidence of why (its log, its rendered files).
    // (Not when an interrupt cut it short: the user stopped it, nothing is left behind.)
    let undo = |reason: String, fatal: bool, run_log: Option<Logger>| {
        let failed = !cancelled();
        let fate = settle(&path, keeper, failed, run_log.as_ref().unwrap_or(log));
        FolderFailure {
            reason,
            fatal,
            log: run_log,
            folder: Some((path.clone(), fate)),
        }
    };
    // A folder that may be removed names its run, so that the next run removes it if this one
    // is killed before it can.
    if keeper.marks_owner() {
        if let Err(e) = rundir::mark_owner(&path) {
            let fatal = e.is_storage_full();
            return Err(undo(e.to_string(), fatal, None));
        }
    }
    let report = match rundir::copy_test(source, &path, cancelled) {
        Ok(r) => r,
        Err(e) => {
            let fatal = e.is_storage_full();
            return Err(undo(e.to_string(), fatal, None));
        }
    };
    let log_path = path.join("sipplauncher.log");
    let run_log = match logging::test_logger(log, &log_path) {
        Ok(l) => l,
        Err(e) => {
            return Err(undo(
                format!("open {}: {e}", log_path.display()),
                true,
                None,
            ))
        }
    };
    debug!(run_log, "run folder made"; "folder" => %path.display(), "files" => report.files);
    for (stub, target) in &report.stubs_resolved {
        info!(run_log, "{stub} holds only the name of {target} (a symlink checked out as a file): used {target}'s content");
    }
    let ctx = RenderContext {
        run_id: run_id.clone(),
        ..ctx
    };
    if let Err(e) = render.render(&path, &ctx, cancelled) {
        return Err(undo(e, false, Some(run_log)));
    }
    debug!(run_log, "templates rendered");
    Ok(RunFolder {
        run_id,
        path,
        log: run_log,
    })
}

/// Keeps the run folder `path` as evidence or removes it (`failed`: see [`Keeper::settle`]);
/// a problem is logged. Blocking.
pub fn settle(path: &Path, keeper: &Keeper, failed: bool, log: &Logger) -> Fate {
    let settled = keeper.settle(path, failed);
    for p in settled.problem.iter().chain(&settled.warning) {
        warn!(log, "{p}");
    }
    if settled.fate == Fate::Kept {
        info!(log, "run folder kept at {}", path.display());
    }
    settled.fate
}
