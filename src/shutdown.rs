//! Graceful shutdown: one [`Shutdown`] signal shared by every long-running task.
//!
//! The daemon triggers it on SIGTERM/SIGINT; the HTTP server stops accepting, the scheduler stops
//! starting polls, and polls in flight stop fetching but still write what they finished.

use tokio::sync::watch;

/// A cloneable handle that tells whether shutdown has begun and lets tasks wait for it.
#[derive(Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// The side that starts the shutdown.
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

/// A connected trigger and signal.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

impl Shutdown {
    /// A signal that never fires (for one-shot commands).
    pub fn never() -> Shutdown {
        let (trigger, shutdown) = channel();
        // Keep the sender alive for the life of the program so `wait` pends forever.
        std::mem::forget(trigger);
        shutdown
    }

    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves once shutdown has begun.
    pub async fn wait(&self) {
        let mut receiver = self.receiver.clone();
        // An error means the trigger is gone, which only happens when the daemon is ending anyway.
        let _ = receiver.wait_for(|triggered| *triggered).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_returns_after_trigger() {
        let (trigger, shutdown) = channel();
        assert!(!shutdown.is_triggered());
        let waiter = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.wait().await }
        });
        trigger.trigger();
        waiter.await.unwrap();
        assert!(shutdown.is_triggered());
    }
}
