//! The one owner of what a claimed partition runs beside its caller: the batches in flight,
//! each batch's journal group commits, the head hint.
//!
//! Owned in one place so that they all stop with the partition: a processor dropped (its
//! invocation fenced, failed or cancelled) cancels them, and one that finishes waits for
//! them, so that no request is still in flight when Lambda freezes the environment after
//! the invocation returns.

use std::future::Future;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Tasks spawned for one claimed partition.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl Tasks {
    /// Runs `task` in the background until it ends or the owner stops; `None` if it was
    /// stopped first.
    pub(crate) fn spawn<F>(&self, task: F) -> JoinHandle<Option<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let stop = self.stop.clone();
        self.tracker.spawn(async move { stop.run_until_cancelled(task).await })
    }

    /// Waits for every task spawned so far to end by itself; none may be spawned after.
    pub(crate) async fn finish(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_the_owner_stops_its_tasks_and_finishing_waits_for_them() {
        let tasks = Tasks::default();
        let forever = tasks.spawn(std::future::pending::<()>());
        drop(tasks);
        assert_eq!(forever.await.unwrap(), None, "stopped with its owner");

        let tasks = Tasks::default();
        let (done, mut finished) = tokio::sync::oneshot::channel();
        tasks.spawn(async move {
            tokio::task::yield_now().await;
            done.send(()).unwrap();
        });
        tasks.finish().await;
        assert!(finished.try_recv().is_ok(), "finish returned after the task ended");
    }
}
