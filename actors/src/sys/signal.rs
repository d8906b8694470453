//! Turns SIGINT, SIGTERM, SIGHUP and SIGQUIT into a [`Signal`] message to the Supervisor. No work
//! is done in a signal handler: tokio's handler only wakes the task below.

use actix::Recipient;
use tokio::signal::unix::{signal, SignalKind as OsSignal};

use crate::messages::{Signal, SignalKind};

/// Starts one task per signal kind on the current System; each forwards every delivery.
pub fn forward(to: Recipient<Signal>) -> std::io::Result<()> {
    for (os, kind) in [
        (OsSignal::interrupt(), SignalKind::Interrupt),
        (OsSignal::terminate(), SignalKind::Terminate),
        (OsSignal::hangup(), SignalKind::Hangup),
        (OsSignal::quit(), SignalKind::Quit),
    ] {
        let mut stream = signal(os)?;
        let to = to.clone();
        actix_rt::spawn(async move {
            while stream.recv().await.is_some() {
                to.do_send(Signal(kind));
            }
        });
    }
    Ok(())
}
