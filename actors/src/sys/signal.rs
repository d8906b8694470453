//! OS signals, caught from the first instant of the process and handed to the run as
//! [`Interrupts`]: SIGINT, SIGTERM, SIGHUP and SIGQUIT never have their default action (which
//! would end the process with nothing cleaned up), whenever they come.
//!
//! The handler does only what is async-signal-safe: it writes the signal's number to a pipe. A
//! thread of ours reads the pipe and sends each signal on a channel, which the run reads (its
//! Supervisor gets a [`Signal`](crate::messages::Signal) message for each). Before the run takes
//! them over ([`Interrupts::take_over`]) nothing has been made on the machine: the first signal
//! ends the process at once, with one line. Tests make their own [`Interrupts`] with
//! [`Interrupts::channel`] and signal without any real signal, as mini-redis injects its
//! shutdown future.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::Arc;

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use tokio::sync::mpsc;

use crate::messages::SignalKind;

/// The signals caught, as the OS and as the run names them.
const CAUGHT: [(Signal, SignalKind); 4] = [
    (Signal::SIGINT, SignalKind::Interrupt),
    (Signal::SIGTERM, SignalKind::Terminate),
    (Signal::SIGHUP, SignalKind::Hangup),
    (Signal::SIGQUIT, SignalKind::Quit),
];

/// Who handles a signal: the front end (nothing made yet: the process ends), the run, or
/// nobody any more (the process is ending).
const FRONT_END: u8 = 0;
const RUN: u8 = 1;
const EXITING: u8 = 2;

/// The write end of the pipe, for the handler (-1 before [`Interrupts::catch`]).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signo: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // SAFETY: `__errno_location` returns this thread's errno slot; `write(2)` is
    // async-signal-safe and the buffer lives across the call. errno is restored so that the
    // code interrupted by the signal does not see ours. A full pipe (hundreds of signals not yet
    // read) drops this one: the run has long been told.
    unsafe {
        let errno = *libc::__errno_location();
        let byte = signo as u8;
        libc::write(fd, (&byte as *const u8).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

/// The signals of a run, in the order they came.
pub struct Interrupts {
    rx: mpsc::UnboundedReceiver<SignalKind>,
    /// Signals already taken off the channel by [`Interrupts::arrived`].
    early: VecDeque<SignalKind>,
    /// [`FRONT_END`] until the run handles the signals ([`Interrupts::take_over`]).
    owner: Arc<AtomicU8>,
}

impl Interrupts {
    /// Catches SIGINT, SIGTERM, SIGHUP and SIGQUIT from now on, for the rest of the process
    /// (call it first thing in `main`, once). Signals already pending (blocked by whoever
    /// started us) are delivered at once.
    pub fn catch() -> io::Result<Interrupts> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        if PIPE_WRITE
            .compare_exchange(-1, write.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(io::Error::other("signals are caught already"));
        }
        // The handler writes to it for the rest of the process.
        std::mem::forget(write);
        let (tx, rx) = mpsc::unbounded_channel();
        let owner = Arc::new(AtomicU8::new(FRONT_END));
        let reader_owner = owner.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || read_signals(read, tx, reader_owner))?;
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let mut set = SigSet::empty();
        for (sig, _) in CAUGHT {
            // SAFETY: the handler only loads an atomic and calls write(2) (async-signal-safe).
            unsafe { sigaction(sig, &action) }.map_err(io::Error::from)?;
            set.add(sig);
        }
        // A parent may have started us with them blocked: from now on they reach the handler.
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None)
            .map_err(io::Error::from)?;
        Ok(Interrupts {
            rx,
            early: VecDeque::new(),
            owner,
        })
    }

    /// Interrupts sent by hand (tests): each value sent is one signal.
    pub fn channel() -> (mpsc::UnboundedSender<SignalKind>, Interrupts) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            tx,
            Interrupts {
                rx,
                early: VecDeque::new(),
                owner: Arc::new(AtomicU8::new(FRONT_END)),
            },
        )
    }

    /// No signal will ever come (runs that are not the process's, e.g. benchmarks).
    pub fn none() -> Interrupts {
        Interrupts::channel().1
    }

    /// The first signal that came already, if any; it stays to be received.
    fn arrived(&mut self) -> Option<SignalKind> {
        while let Ok(sig) = self.rx.try_recv() {
            self.early.push_back(sig);
        }
        self.early.front().copied()
    }

    /// The run handles the signals from now on: call it before anything is made. When a
    /// signal was faster, the process is ending: this never returns then.
    pub fn take_over(&self) {
        if self
            .owner
            .compare_exchange(FRONT_END, RUN, Ordering::SeqCst, Ordering::SeqCst)
            == Err(EXITING)
        {
            loop {
                std::thread::park();
            }
        }
    }

    /// The next signal; `None` once no more can come.
    pub async fn recv(&mut self) -> Option<SignalKind> {
        match self.early.pop_front() {
            Some(sig) => Some(sig),
            None => self.rx.recv().await,
        }
    }

    /// The signals that came already, taken off.
    pub fn drain_arrived(&mut self) -> Vec<SignalKind> {
        self.arrived();
        self.early.drain(..).collect()
    }
}

/// The reading thread: one byte a signal.
fn read_signals(read: OwnedFd, tx: mpsc::UnboundedSender<SignalKind>, owner: Arc<AtomicU8>) {
    let file = std::fs::File::from(read);
    let mut byte = [0u8; 1];
    loop {
        match io::Read::read(&mut &file, &mut byte) {
            Ok(1) => {}
            Ok(_) => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        let Some(kind) = CAUGHT
            .iter()
            .find(|(sig, _)| *sig as i32 == i32::from(byte[0]))
            .map(|(_, kind)| *kind)
        else {
            continue;
        };
        if owner
            .compare_exchange(FRONT_END, EXITING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            // Status 1, as an interrupted run (exit_code::FAILURE in the front end).
            eprintln!(
                "sipplauncher: interrupted ({kind}) before the run started: nothing was done"
            );
            std::process::exit(1);
        }
        // The run may be over (receiver gone): later signals change nothing.
        let _ = tx.send(kind);
    }
}
