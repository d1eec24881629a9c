//! systemd integration (`Type=notify`): `READY=1` once the store is open and the server listens,
//! `STATUS=` lines saying how polling goes, `WATCHDOG=1` pings while the database still takes
//! writes, and `STOPPING=1` at shutdown. Outside systemd (no `$NOTIFY_SOCKET`) all of it is a
//! no-op.

use std::time::Duration;

use chrono::Utc;
use sd_notify::NotifyState;

use crate::shutdown::Shutdown;
use crate::store::Store;

/// How often the `STATUS=` line is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(30);

fn notify(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::debug!(%error, "systemd notification not sent");
    }
}

/// Tells systemd the daemon is ready, then keeps its status and watchdog fed until shutdown.
pub fn ready(store: Store, sources: usize, shutdown: Shutdown) {
    notify(&[
        NotifyState::Ready,
        NotifyState::Status(&format!("serving; {sources} sources, first polls running")),
    ]);
    let mut watchdog_usec = 0;
    if sd_notify::watchdog_enabled(false, &mut watchdog_usec) {
        let every = Duration::from_micros(watchdog_usec / 2);
        let (store, shutdown) = (store.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                // A wedged writer or an unwritable database stops the pings: systemd restarts us.
                match store.probe_write().await {
                    Ok(()) => notify(&[NotifyState::Watchdog]),
                    Err(error) => {
                        tracing::error!(%error, "database write probe failed; not feeding the watchdog")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.wait() => return,
                }
            }
        });
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(STATUS_EVERY) => {}
                _ = shutdown.wait() => return,
            }
            let status = match store.last_success_at().await {
                Ok(Some(at)) => {
                    format!("{sources} sources; last successful poll {} s ago", Utc::now().timestamp() - at)
                }
                Ok(None) => format!("{sources} sources; no successful poll yet"),
                Err(error) => format!("{sources} sources; cannot read the database: {error}"),
            };
            notify(&[NotifyState::Status(&status)]);
        }
    });
}

/// Tells systemd a configuration reload began…
pub fn reloading() {
    notify(&[NotifyState::Reloading, NotifyState::Status("reloading the configuration")]);
}

/// …and ended.
pub fn reloaded(sources: usize) {
    notify(&[NotifyState::Ready, NotifyState::Status(&format!("configuration reloaded; {sources} sources"))]);
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping: finishing polls and writes")]);
}
