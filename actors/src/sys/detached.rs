//! Blocking work the end of the process never waits for: each job runs on a thread of its own,
//! not on tokio's blocking pool, whose shutdown (when the actor System goes) waits for every
//! job it holds, however long: one stuck job kept a run that was over from exiting. For the
//! pre-run work a suite controls (copying a test folder, rendering its templates, reading its
//! `dns.txt`): an interrupt makes such work give up soon, and the second one stops waiting for
//! it ([`run_until`]); a job that cannot give up (a read stuck in the kernel) then ends with
//! the process.

use std::future::Future;

use tokio::sync::oneshot;

/// Why a job gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum DetachedError {
    #[error("cannot start a thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("it panicked")]
    Panicked,
    /// No longer waited for (see [`run_until`]); it may still run.
    #[error("given up while it still ran")]
    GivenUp,
}

/// Runs `work` on a new thread named `name` and resolves to its answer.
pub async fn run<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DetachedError> {
    run_until(name, work, std::future::pending()).await
}

/// [`run`], no longer waited for once `give_up` resolves (the job is left to end on its own).
pub async fn run_until<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
    give_up: impl Future<Output = ()>,
) -> Result<T, DetachedError> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            // Nobody listens when the job was given up.
            let _ = tx.send(work());
        })
        .map_err(DetachedError::Spawn)?;
    tokio::select! {
        biased;
        answer = rx => answer.map_err(|_| DetachedError::Panicked),
        () = give_up => Err(DetachedError::GivenUp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn answers_and_panics() {
        assert_eq!(run("t", || 7).await.unwrap(), 7);
        let panicked = run("t", || -> u8 { panic!("on purpose") }).await;
        assert!(matches!(panicked, Err(DetachedError::Panicked)));
    }

    /// A job that never ends is given up when asked, and the runtime's end does not wait for
    /// it (on the blocking pool, the drop of the runtime would hang here).
    #[test]
    fn a_stuck_job_is_given_up_and_does_not_hold_the_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let started = Instant::now();
        let answer = rt.block_on(run_until(
            "stuck",
            || std::thread::sleep(Duration::from_secs(3600)),
            async { tokio::time::sleep(Duration::from_millis(50)).await },
        ));
        assert!(matches!(answer, Err(DetachedError::GivenUp)));
        drop(rt);
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
