//! Last-resort clean-ups: what an actor still holds when it goes without having been asked to
//! undo it (its [`Shutdown`](crate::messages::Shutdown) never came, or was not waited for).
//! Its `Drop` hands the work to a thread of its own here, never joining it on the actor thread;
//! [`crate::run`] waits for every such thread once the actor System is gone, so that it returns
//! only when everything is undone.

use std::sync::Mutex;
use std::thread::JoinHandle;

/// The threads started and not yet waited for.
static PENDING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Runs `work` on a new thread (made from the calling one: same network namespace), to be
/// waited for by [`wait`]. When no thread can be made the work runs here, as a last resort
/// of the last resort.
pub fn spawn(name: &str, work: impl FnOnce() + Send + 'static) {
    let work = std::sync::Arc::new(Mutex::new(Some(work)));
    let on_thread = work.clone();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let work = on_thread.lock().map(|mut w| w.take()).ok().flatten();
            if let Some(work) = work {
                work();
            }
        });
    match spawned {
        Ok(handle) => {
            PENDING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle);
        }
        Err(_) => {
            let work = work.lock().map(|mut w| w.take()).ok().flatten();
            if let Some(work) = work {
                work();
            }
        }
    }
}

/// Hands a thread that is ending (it was told to) to [`wait`].
pub fn adopt(thread: JoinHandle<()>) {
    PENDING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(thread);
}

/// Waits for every last-resort thread started so far. Call it off the actor thread, once the
/// actors are gone.
pub fn wait() {
    loop {
        let pending = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|e| e.into_inner()));
        if pending.is_empty() {
            return;
        }
        for thread in pending {
            // A panic there was the thread's own: nothing more can be done about it here.
            let _ = thread.join();
        }
    }
}
