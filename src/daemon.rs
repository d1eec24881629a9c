//! Wiring: the long-running daemon (`feedmill run`) and the one-shot poll (`feedmill poll`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::{Config, Source, StorageConfig};
use crate::extract::{rules::RuleFileError, Extractor, SiteRules};
use crate::fetch::{FetchError, Fetcher};
use crate::poll::{PollReport, Poller};
use crate::schedule::{ScheduleError, Scheduler};
use crate::server::{self, AppState};
use crate::shutdown::{self, Shutdown};
use crate::store::{ClusterLimits, DedupParams, Store, StoreError};
use crate::websub::Notifier;

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// How long running polls get to finish their writes after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// The daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Rules(#[from] RuleFileError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("server.listen {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("server: {0}")]
    Serve(std::io::Error),
    #[error("no source named `{0}` in the config")]
    NoSuchSource(String),
    #[error("poll task failed: {0}")]
    Poll(String),
}

/// The parts every command that polls needs.
struct Pipeline {
    store: Store,
    poller: Arc<Poller>,
}

async fn pipeline(config: &Config, shutdown: Shutdown, websub: bool) -> Result<Pipeline, DaemonError> {
    if config.storage.database.is_some() {
        crate::metrics::label_node(&config.cluster.node);
    }
    let store = Store::open_configured(&config.storage).await?.with_node(&config.cluster.node);
    let poller = poller(config, &store, shutdown, websub).await?;
    Ok(Pipeline { store, poller })
}

/// A poller for `config` over the open store (its sources registered, their poll state loaded).
/// `websub`: ping the configured hub when entries change (the daemon does; a one-shot poll,
/// which exits right away, does not).
async fn poller(
    config: &Config,
    store: &Store,
    shutdown: Shutdown,
    websub: bool,
) -> Result<Arc<Poller>, DaemonError> {
    let dedup = DedupParams {
        window_secs: config.dedup.window.as_secs() as i64,
        threshold: config.dedup.threshold,
        languages: config.feed.languages.clone().into(),
    };
    let store = store.clone().with_dedup(dedup);
    crate::metrics::metrics().declare(&config.sources.iter().map(|s| s.name.clone()).collect::<Vec<_>>());
    let source_ids: HashMap<String, i64> = store.sync_sources(&config.sources).await?;
    let mut fetcher = Fetcher::new(&config.fetch)?;
    if config.storage.database.is_some() {
        fetcher =
            fetcher.with_shared_limits(Arc::new(ClusterLimits::new(store.clone(), config.cluster.lease)));
    }
    let extractor = Arc::new(Extractor::new(SiteRules::new(&config.sites)?));
    let states = store.poll_states().await?;
    let mut poller = Poller::new(store, fetcher, extractor, source_ids, states, config, shutdown.clone());
    if config.storage.database.is_some() {
        poller = poller.with_lease(config.cluster.lease);
    }
    if let (true, Some(hub)) = (websub, &config.feed.websub_hub) {
        let notifier = Notifier::spawn(
            hub.clone(),
            config.server.public_url.clone(),
            config.fetch.user_agent.clone(),
            config.feed.title.clone(),
            shutdown,
        );
        poller = poller.with_notifier(notifier);
    }
    Ok(Arc::new(poller))
}

/// `feedmill poll`: polls every source (or one) once, concurrently, and returns the reports in
/// config order, with the time the polling itself took (from the first request to the last commit).
pub async fn poll_once(
    config: &Config,
    only: Option<&str>,
) -> Result<(Vec<PollReport>, Duration), DaemonError> {
    let sources: Vec<Source> = match only {
        Some(name) => {
            vec![config.source(name).cloned().ok_or_else(|| DaemonError::NoSuchSource(name.into()))?]
        }
        None => config.sources.clone(),
    };
    let Pipeline { store, poller } = pipeline(config, Shutdown::never(), false).await?;
    let started = std::time::Instant::now();
    // As many workers as polls may be in flight, each taking the next source from a shared queue:
    // one task per source would allocate (and move) 10,000 large poll futures up front.
    let queue = Arc::new(std::sync::Mutex::new(sources.into_iter().enumerate()));
    let mut workers = JoinSet::new();
    for _ in 0..config.fetch.max_connections.max(1) {
        let (queue, poller) = (Arc::clone(&queue), Arc::clone(&poller));
        workers.spawn(async move {
            let mut reports = Vec::new();
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some((index, source)) = next else { break };
                if let Some(report) = poller.poll(&source, true).await {
                    reports.push((index, report));
                }
            }
            reports
        });
    }
    let mut reports = Vec::new();
    while let Some(joined) = workers.join_next().await {
        reports.extend(joined.map_err(|e| DaemonError::Poll(e.to_string()))?);
    }
    reports.sort_by_key(|(index, _)| *index);
    store.flush().await?;
    let cycle = started.elapsed();
    store.close().await?;
    Ok((reports.into_iter().map(|(_, report)| report).collect(), cycle))
}

/// `feedmill run`: serves HTTP and polls on schedule until SIGTERM/SIGINT, then stops starting
/// work, lets running polls write what they finished, and returns.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    // A file-size limit (or a full disk that reports as one) must fail writes, not kill the
    // daemon: SIGXFSZ's default action is to terminate. Handling it makes the write return EFBIG.
    let _file_size_signal =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ));
    let (trigger, shutdown) = shutdown::channel();
    let Pipeline { store, poller } = pipeline(&config, shutdown.clone(), true).await?;
    let listener = TcpListener::bind(&config.server.listen)
        .await
        .map_err(|source| DaemonError::Listen { addr: config.server.listen.clone(), source })?;
    if config.storage.database.is_some() {
        // Node names are unique: by default the host and the port, which no other live process
        // listens on, as this one now does.
        match store.release_own_leases().await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "gave back the leases an earlier run of this node held"),
            Err(error) => {
                tracing::warn!(%error, "cannot give back this node's earlier leases; they run out by themselves")
            }
        }
    }
    let state = Arc::new(AppState::new(store.clone(), &config));
    let server = tokio::spawn(server::serve(listener, Arc::clone(&state), shutdown.clone()));
    tokio::spawn(retention(store.clone(), config.storage.clone(), shutdown.clone()));
    tokio::spawn(heartbeat(
        store.clone(),
        config.server.listen.clone(),
        config.cluster.lease,
        shutdown.clone(),
    ));
    if config.storage.database.is_some() {
        tokio::spawn(follow_other_nodes(store.clone(), shutdown.clone()));
    }
    let mut scheduler = Scheduler::start(poller, &config.sources, |_| true, shutdown.clone()).await?;
    tracing::info!(
        listen = %config.server.listen, sources = config.sources.len(), db = %config.storage.describe(),
        "feedmill running"
    );
    crate::systemd::ready(store.clone(), config.sources.len(), shutdown.clone());

    let mut config = config;
    let mut hangups = hangup_signals();
    loop {
        tokio::select! {
            _ = wait_for_signal() => break,
            Some(()) = hangups.recv() => {
                match reload(&config, &store, scheduler, &state, shutdown.clone()).await? {
                    (running, Some(new)) => (scheduler, config) = (running, new),
                    (running, None) => scheduler = running,
                }
            }
        }
    }
    tracing::info!("shutting down");
    crate::systemd::stopping();
    trigger.trigger();
    scheduler.stop(SHUTDOWN_GRACE).await;
    store.close().await?;
    match tokio::time::timeout(Duration::from_secs(1), server).await {
        Ok(Ok(Err(error))) => return Err(DaemonError::Serve(error)),
        Ok(_) => {}
        Err(_) => tracing::warn!("HTTP connections still open at exit"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP: reads the config file again. A valid new config replaces the sources — added ones
/// start (and poll now), removed ones stop, changed schedules apply — after the running polls
/// finish; an invalid one is logged and the running config stays. Returns the scheduler now
/// running and the new config when it was applied.
async fn reload(
    current: &Config,
    store: &Store,
    scheduler: Scheduler,
    state: &Arc<AppState>,
    shutdown: Shutdown,
) -> Result<(Scheduler, Option<Config>), DaemonError> {
    let new = match Config::load(&current.path) {
        Ok(new) => new,
        Err(error) => {
            tracing::error!(%error, "config reload rejected; the running configuration stays");
            return Ok((scheduler, None));
        }
    };
    let storage_changed =
        new.storage.path != current.storage.path || new.storage.database != current.storage.database;
    if new.server != current.server || storage_changed || new.feed != current.feed {
        tracing::warn!("[server], [feed] and the storage's database changes take effect at the next restart");
    }
    let poller = match poller(&new, store, shutdown.clone(), true).await {
        Ok(poller) => poller,
        Err(error) => {
            tracing::error!(%error, "config reload failed; the running configuration stays");
            return Ok((scheduler, None));
        }
    };
    crate::systemd::reloading();
    scheduler.stop(SHUTDOWN_GRACE).await;
    let known: Vec<&str> = current.sources.iter().map(|s| s.name.as_str()).collect();
    let scheduler =
        Scheduler::start(poller, &new.sources, |s| !known.contains(&s.name.as_str()), shutdown).await?;
    state.set_sources(&new.sources);
    let added = new.sources.iter().filter(|s| !known.contains(&s.name.as_str())).count();
    let removed = current.sources.iter().filter(|s| new.source(&s.name).is_none()).count();
    tracing::info!(sources = new.sources.len(), added, removed, "configuration reloaded");
    crate::systemd::reloaded(new.sources.len());
    Ok((scheduler, Some(new)))
}

/// Applies `[storage]` retention at start (its settings may have changed) and then every
/// [`RETENTION_EVERY`], until shutdown; the hourly rounds once per cluster: a node skips a round
/// another node ran within the hour.
async fn retention(store: Store, storage: StorageConfig, shutdown: Shutdown) {
    let mut every = 0;
    loop {
        match store.claim_job("retention", every).await {
            Ok(false) => tracing::debug!("retention ran on another node within the hour"),
            Ok(true) => match store.apply_retention(storage.max_age_days, storage.max_items_per_source).await
            {
                Ok(done) if done.removed > 0 => {
                    tracing::info!(removed = done.removed, "retention removed old items")
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "retention failed"),
            },
            Err(error) => tracing::error!(%error, "retention: cannot reach the database"),
        }
        // A minute's slack, so that the node whose hourly timer ran the job last runs it again.
        every = RETENTION_EVERY.as_secs() as i64 - 60;
        tokio::select! {
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// Records this node as alive and renews its leases every third of the lease, until shutdown.
async fn heartbeat(store: Store, listen: String, lease: Duration, shutdown: Shutdown) {
    loop {
        if let Err(error) = store.heartbeat(&listen, lease.as_secs() as i64).await {
            tracing::error!(%error, "heartbeat: cannot reach the database");
        }
        tokio::select! {
            _ = tokio::time::sleep(lease / 3) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// How often a node sharing its database looks whether other nodes changed the feeds.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Keeps this node's feeds in step with the other nodes' commits, until shutdown.
async fn follow_other_nodes(store: Store, shutdown: Shutdown) {
    loop {
        if let Err(error) = store.follow_other_nodes().await {
            tracing::debug!(%error, "cannot read the feeds' version");
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// SIGHUP deliveries, as a channel (empty forever when the handler cannot be installed).
fn hangup_signals() -> tokio::sync::mpsc::UnboundedReceiver<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    match signal(SignalKind::hangup()) {
        Ok(mut hangup) => {
            tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    if sender.send(()).is_err() {
                        return;
                    }
                }
            });
        }
        Err(error) => tracing::warn!(%error, "cannot install the SIGHUP handler; reload needs a restart"),
    }
    receiver
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        _ => {
            tracing::warn!("cannot install signal handlers; waiting for Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
