//! Blocking work the end of the process never waits for: each job runs on a thread of its own,
//! not on tokio's blocking pool, whose shutdown (when the actor System goes) waits for every
//! job it holds, however long: one stuck job kept a run that was over from exiting. For the
//! pre-run work a suite controls (copying a test folder, rendering its templates, reading its
//! `dns.txt`): an interrupt makes such work give up soon, and the second one stops waiting for
//! it ([`run_until`]); a job that cannot give up (a read stuck in the kernel) then ends with
//! the process.

use std::future::Future;
use std::time::Duration;

use tokio::sync::oneshot;

/// Why a job gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum DetachedError {
    #[error("cannot start a thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("it panicked")]
    Panicked,
    /// No longer waited for (see [`run_until`]); it may still run.
    #[error("not waited for any more (a second interrupt) while it still ran")]
    GivenUp,
}

/// Runs `work` on a new thread named `name` and resolves to its answer.
pub async fn run<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DetachedError> {
    run_until(name, work, std::future::pending()).await
}

/// How long a job still gets once `give_up` resolved: work that gives up itself on the same
/// signal answers within it (and undoes what it made); only stuck work is left.
pub const GIVE_UP_GRACE: Duration = Duration::from_millis(300);

/// [`run`], no longer waited for [`GIVE_UP_GRACE`] after `give_up` resolves (the job is then
/// left to end on its own).
pub async fn run_until<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
    give_up: impl Future<Output = ()>,
) -> Result<T, DetachedError> {
    let (tx, mut rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            // Nobody listens when the job was given up.
            let _ = tx.send(work());
        })
        .map_err(DetachedError::Spawn)?;
    tokio::select! {
        biased;
        answer = &mut rx => return answer.map_err(|_| DetachedError::Panicked),
        () = give_up => {}
    }
    match tokio::time::timeout(GIVE_UP_GRACE, rx).await {
        Ok(answer) => answer.map_err(|_| DetachedError::Panicked),
        Err(_) => Err(DetachedError::GivenUp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn answers_and_panics() {
        assert_eq!(run("t", || 7).await.unwrap(), 7);
        let panicked = run("t", || -> u8 { panic!("on purpose") }).await;
        assert!(matches!(panicked, Err(DetachedError::Panicked)));
    }

    /// A job that never ends is given up when asked (after the grace), and the runtime's end
    /// does not wait for it (on the blocking pool, the drop of the runtime would hang here); a
    /// job that ends within the grace gives its answer.
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
        let answer = rt.block_on(run_until(
            "quick",
            || {
                std::thread::sleep(Duration::from_millis(100));
                5
            },
            async {},
        ));
        assert_eq!(answer.unwrap(), 5);
        drop(rt);
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
