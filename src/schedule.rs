//! The schedule stage: one tokio-cron-scheduler job per source, plus a first poll at start.
//!
//! Each source has a lock: a tick that finds the previous poll still running is skipped, so a
//! source never polls concurrently with itself. Every poll runs in its own task, so one slow or
//! failing source never delays another.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::config::{Schedule, Source};
use crate::poll::Poller;

/// The scheduler could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("scheduler: {0}")]
pub struct ScheduleError(#[from] JobSchedulerError);

/// The running jobs.
pub struct Scheduler {
    jobs: JobScheduler,
    locks: Vec<Arc<Mutex<()>>>,
}

impl Scheduler {
    /// Starts a job per source and polls every source once now.
    pub async fn start(poller: Arc<Poller>, sources: &[Source]) -> Result<Scheduler, ScheduleError> {
        let jobs = JobScheduler::new().await?;
        let mut locks = Vec::with_capacity(sources.len());
        for source in sources {
            let lock = Arc::new(Mutex::new(()));
            locks.push(Arc::clone(&lock));
            let tick = {
                let (poller, source, lock) = (Arc::clone(&poller), source.clone(), Arc::clone(&lock));
                move |_id, _scheduler| {
                    spawn_poll(&poller, &source, &lock);
                    Box::pin(async {}) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
                }
            };
            let job = match &source.schedule {
                Schedule::Cron(expr) => Job::new_async(expr.as_str(), tick)?,
                Schedule::Every(every) => Job::new_repeated_async(*every, tick)?,
            };
            jobs.add(job).await?;
            spawn_poll(&poller, source, &lock);
        }
        jobs.start().await?;
        Ok(Scheduler { jobs, locks })
    }

    /// Stops starting polls and waits (up to `grace`) for running ones to finish their writes.
    pub async fn stop(mut self, grace: Duration) {
        if let Err(error) = self.jobs.shutdown().await {
            tracing::warn!(%error, "scheduler did not shut down cleanly");
        }
        let all_idle = async {
            for lock in &self.locks {
                let _idle = lock.lock().await;
            }
        };
        if tokio::time::timeout(grace, all_idle).await.is_err() {
            tracing::warn!("polls still running after {}s; stopping anyway", grace.as_secs());
        }
    }
}

/// Starts a poll unless the source is already being polled.
fn spawn_poll(poller: &Arc<Poller>, source: &Source, lock: &Arc<Mutex<()>>) {
    let Ok(guard) = Arc::clone(lock).try_lock_owned() else {
        tracing::debug!(source = %source.name, "previous poll still running; tick skipped");
        return;
    };
    let (poller, source) = (Arc::clone(poller), source.clone());
    tokio::spawn(async move {
        let _guard = guard;
        poller.poll(&source).await;
    });
}
