//! Turns SIGINT, SIGTERM, SIGHUP and SIGQUIT into a [`Signal`] message to the Supervisor. No work
//! is done in a signal handler: tokio's handler only wakes the task below.

use actix::Recipient;
use tokio::signal::unix::{signal, SignalKind};

use crate::messages::Signal;

/// Starts one task per signal kind on the current System; each forwards every delivery.
pub fn forward(to: Recipient<Signal>) -> std::io::Result<()> {
    for (kind, name) in [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
    ] {
        let mut stream = signal(kind)?;
        let to = to.clone();
        actix_rt::spawn(async move {
            while stream.recv().await.is_some() {
                to.do_send(Signal(name));
            }
        });
    }
    Ok(())
}
