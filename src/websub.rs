//! WebSub (W3C) publisher side: when new entries appear, tell the configured hub which feeds
//! changed (`hub.mode=publish`), so subscribers get them without polling.
//!
//! Polls report changed sources through a channel; a task waits a moment to collect changes
//! that arrive together, then pings the hub once per changed feed URL: the merged feeds and the
//! changed sources' own feeds, in every format. A failing hub is logged and never slows polling.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::mpsc;
use url::Url;

use crate::publish::{Channel, Format};
use crate::shutdown::Shutdown;
use crate::store::FeedScope;

/// How long changes are collected before the hub is pinged.
const DEBOUNCE: Duration = Duration::from_millis(500);
const FORMATS: [Format; 3] = [Format::Atom, Format::Rss, Format::Json];

/// Handle the poller uses to report a source whose published entries changed.
#[derive(Clone)]
pub struct Notifier {
    changed: mpsc::UnboundedSender<String>,
}

impl Notifier {
    /// Starts the pinging task; it ends at shutdown.
    pub fn spawn(
        hub: Url,
        public_url: Url,
        user_agent: String,
        title: String,
        shutdown: Shutdown,
    ) -> Notifier {
        let (changed, mut receiver) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            let client = match reqwest::Client::builder()
                .user_agent(user_agent)
                .timeout(Duration::from_secs(10))
                .build()
            {
                Ok(client) => client,
                Err(error) => return tracing::error!(%error, "WebSub: cannot build an HTTP client"),
            };
            loop {
                let first = tokio::select! {
                    first = receiver.recv() => first,
                    _ = shutdown.wait() => None,
                };
                let Some(first) = first else { break };
                let mut sources = BTreeSet::from([first]);
                tokio::time::sleep(DEBOUNCE).await;
                while let Ok(more) = receiver.try_recv() {
                    sources.insert(more);
                }
                for topic in topics(&public_url, &title, &sources) {
                    publish(&client, &hub, &topic).await;
                }
            }
        });
        Notifier { changed }
    }

    /// Reports that `source` has new or updated entries.
    pub fn changed(&self, source: &str) {
        let _ = self.changed.send(source.to_owned());
    }
}

/// The feed URLs that change when `sources` get entries.
fn topics(public_url: &Url, title: &str, sources: &BTreeSet<String>) -> Vec<String> {
    let scopes = std::iter::once(FeedScope::All).chain(sources.iter().cloned().map(FeedScope::Source));
    scopes
        .map(|scope| Channel::for_scope(title, public_url, &scope))
        .flat_map(|c| FORMATS.map(|f| c.first_url(f)))
        .collect()
}

async fn publish(client: &reqwest::Client, hub: &Url, topic: &str) {
    let form = [("hub.mode", "publish"), ("hub.url", topic)];
    match client.post(hub.clone()).form(&form).send().await {
        Ok(response) if response.status().is_success() => tracing::debug!(%hub, topic, "WebSub hub notified"),
        Ok(response) => {
            tracing::warn!(%hub, topic, status = %response.status(), "WebSub hub refused the ping")
        }
        Err(error) => tracing::warn!(%hub, topic, %error, "WebSub hub not reachable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_the_merged_and_changed_source_feeds() {
        let base = Url::parse("http://feeds.example/").unwrap();
        let topics = topics(&base, "t", &BTreeSet::from(["unn uk".to_owned()]));
        assert_eq!(
            topics,
            vec![
                "http://feeds.example/feed.atom",
                "http://feeds.example/feed.rss",
                "http://feeds.example/feed.json",
                "http://feeds.example/sources/unn%20uk/feed.atom",
                "http://feeds.example/sources/unn%20uk/feed.rss",
                "http://feeds.example/sources/unn%20uk/feed.json",
            ]
        );
    }
}
