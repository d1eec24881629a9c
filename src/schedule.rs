//! The schedule stage: one tokio-cron-scheduler job per source, plus a first poll at start.
//!
//! Each source has a lock: a tick that finds the previous poll still running is skipped, so a
//! source never polls concurrently with itself. Every poll runs in its own task, so one slow or
//! failing source never delays another. Scheduled polls start after a fixed per-source offset
//! (up to a quarter of the interval, at most two minutes), so a thousand sources on `*/10` spread
//! over two minutes instead of firing in the same second. The offset also depends on the node's
//! name: nodes sharing a database reach a source's tick in a different order for each source, so
//! the first to claim it — the one that polls — varies and the work spreads over the nodes. Whether a tick actually polls is the
//! poller's decision: a source in backoff, or paced by its publisher, skips ticks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::config::{Schedule, Source};
use crate::poll::Poller;
use crate::shutdown::Shutdown;

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
    /// Starts a job per source, and polls the sources `poll_now` picks once now.
    pub async fn start(
        poller: Arc<Poller>,
        sources: &[Source],
        poll_now: impl Fn(&Source) -> bool,
        shutdown: Shutdown,
    ) -> Result<Scheduler, ScheduleError> {
        let jobs = JobScheduler::new().await?;
        let mut locks = Vec::with_capacity(sources.len());
        for source in sources {
            let lock = Arc::new(Mutex::new(()));
            locks.push(Arc::clone(&lock));
            let tick = {
                let (poller, source, lock) = (Arc::clone(&poller), source.clone(), Arc::clone(&lock));
                let (offset, shutdown) = (spread_offset(&source, poller.node()), shutdown.clone());
                move |_id, _scheduler| {
                    spawn_poll(&poller, &source, &lock, offset, &shutdown);
                    Box::pin(async {}) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
                }
            };
            let job = match &source.schedule {
                Schedule::Cron(expr) => Job::new_async(expr.as_str(), tick)?,
                Schedule::Every(every) => Job::new_repeated_async(*every, tick)?,
            };
            jobs.add(job).await?;
            if poll_now(source) {
                spawn_poll(&poller, source, &lock, Duration::ZERO, &shutdown);
            }
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

/// Starts a poll after `offset` unless the source is already being polled.
fn spawn_poll(
    poller: &Arc<Poller>,
    source: &Source,
    lock: &Arc<Mutex<()>>,
    offset: Duration,
    shutdown: &Shutdown,
) {
    let Ok(guard) = Arc::clone(lock).try_lock_owned() else {
        tracing::debug!(source = %source.name, "previous poll still running; tick skipped");
        return;
    };
    let (poller, source, shutdown) = (Arc::clone(poller), source.clone(), shutdown.clone());
    tokio::spawn(async move {
        let _guard = guard;
        tokio::select! {
            _ = tokio::time::sleep(offset) => { poller.poll(&source, false).await; }
            _ = shutdown.wait() => {}
        }
    });
}

/// A stable per-source start offset: a hash of the node's and the source's names, within a quarter
/// of the interval and at most two minutes.
fn spread_offset(source: &Source, node: &str) -> Duration {
    use sha2::Digest;
    let window = (source.schedule.interval() / 4).min(Duration::from_secs(120));
    let digest = sha2::Sha256::digest(format!("{node}\0{}", source.name).as_bytes());
    let hash = digest.iter().take(8).fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let window_ms = window.as_millis().max(1) as u64;
    Duration::from_millis(hash % window_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Schedule;

    fn source(name: &str, schedule: Schedule) -> Source {
        let url = url::Url::parse("https://e.com/rss").unwrap_or_else(|_| unreachable!());
        Source {
            name: name.into(),
            url,
            schedule,
            full_text: false,
            tags: vec![],
            priority: 0,
            filter: Default::default(),
            kind: crate::config::SourceKind::Feed,
        }
    }

    #[test]
    fn sources_on_one_schedule_spread_over_two_minutes() {
        let every_ten = Schedule::Cron("0 */10 * * * *".into());
        let offsets: Vec<u64> = (0..1000)
            .map(|i| spread_offset(&source(&format!("s{i}"), every_ten.clone()), "n").as_secs())
            .collect();
        assert!(offsets.iter().all(|s| *s < 120));
        let mut per_second = std::collections::HashMap::new();
        for s in &offsets {
            *per_second.entry(s).or_insert(0) += 1;
        }
        assert!(per_second.len() > 100, "1,000 sources use {} distinct seconds", per_second.len());
        assert!(per_second.values().all(|n| *n < 30), "no second holds more than a few dozen");
        // Stable: the same name always gets the same offset.
        assert_eq!(
            spread_offset(&source("s1", every_ten.clone()), "n"),
            spread_offset(&source("s1", every_ten.clone()), "n")
        );
        // Another node reaches the sources in another order.
        let other: Vec<u64> = (0..1000)
            .map(|i| spread_offset(&source(&format!("s{i}"), every_ten.clone()), "m").as_secs())
            .collect();
        let first_here = (0..1000).filter(|&i| offsets[i] < other[i]).count();
        assert!((350..650).contains(&first_here), "node n is first for {first_here} of 1,000 sources");
        // Short intervals get short offsets.
        assert!(
            spread_offset(&source("x", Schedule::Every(Duration::from_secs(1))), "n")
                < Duration::from_millis(250)
        );
    }
}
