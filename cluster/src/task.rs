//! A named background thread with a stop flag, as every stage of a cluster node runs:
//! the thread polls the flag between units of work; `shutdown` sets it and waits, and
//! dropping the handle sets it without waiting.

use crate::ClusterError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

pub(crate) struct Task {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Task {
    pub(crate) fn spawn(
        name: &str,
        run: impl FnOnce(&AtomicBool) + Send + 'static,
    ) -> Result<Task, ClusterError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(&flag))
            .map_err(|e| ClusterError::Start(format!("cannot start {name}: {e}")))?;
        Ok(Task {
            stop,
            thread: Some(thread),
        })
    }

    /// Ask the thread to stop and wait until it has.
    pub(crate) fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
