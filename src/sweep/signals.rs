//! Interrupts of a sweep. Each size's run is a child process in a process group of its own, so
//! the terminal's Ctrl+C reaches the sweep alone; the sweep passes every INT, TERM, HUP and QUIT
//! it gets to the running child, once each. So the run sees exactly the signals the user sent:
//! the first stops it cleanly (its tests cleaned up, its report written), a second stops what is
//! left at once, as for a run started by hand. The sweep counts them and starts no size after
//! the first.
//!
//! The handler does only async-signal-safe work: two atomics and `kill(2)`.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use nix::sys::signal::{
    sigaction, sigprocmask, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal,
};

/// The running child's pid, 0 when none runs.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// Signals received since [`install`].
static RECEIVED: AtomicUsize = AtomicUsize::new(0);

const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

extern "C" fn on_signal(sig: std::ffi::c_int) {
    RECEIVED.fetch_add(1, Ordering::SeqCst);
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // kill(2) is async-signal-safe (nix only wraps it); a pid that has just exited is at
        // worst a zombie of ours (reaped only after CHILD is cleared), never another process.
        if let Ok(sig) = Signal::try_from(sig) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
    }
}

/// Catches the signals for the rest of the process's life (the children get the default
/// actions back at exec).
pub fn install() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in FORWARDED {
        // SAFETY: the handler only touches atomics and calls kill(2).
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}

/// How many signals came since [`install`].
pub fn received() -> usize {
    RECEIVED.load(Ordering::SeqCst)
}

/// Spawns `cmd` and makes it the child that gets the signals. The signals are held back while
/// it starts, so that one arriving meanwhile is passed on to it rather than lost; the child
/// gets the mask from before back ahead of its exec (`Command` does not reset it, and a run
/// that starts with its signals blocked would never see an interrupt).
pub fn spawn(cmd: &mut Command) -> io::Result<Child> {
    let mut held = SigSet::empty();
    for sig in FORWARDED {
        held.add(sig);
    }
    let mut before = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&held), Some(&mut before)).map_err(io::Error::from)?;
    // SAFETY: sigprocmask(2) is async-signal-safe, and `before` is a copy.
    unsafe {
        cmd.pre_exec(move || {
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&before), None).map_err(io::Error::from)
        });
    }
    let child = cmd.spawn();
    if let Ok(c) = &child {
        CHILD.store(i32::try_from(c.id()).unwrap_or(0), Ordering::SeqCst);
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&before), None).map_err(io::Error::from)?;
    child
}

/// Waits for the child and stops passing signals to it (before it is reaped, so that its pid is
/// never signalled once it could belong to another process).
pub fn wait(child: &mut Child) -> io::Result<std::process::ExitStatus> {
    // Wait without reaping (WNOWAIT), forget the pid, then reap.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    let exited = nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOWAIT;
    while let Err(nix::errno::Errno::EINTR) =
        nix::sys::wait::waitid(nix::sys::wait::Id::Pid(pid), exited)
    {}
    CHILD.store(0, Ordering::SeqCst);
    child.wait()
}
