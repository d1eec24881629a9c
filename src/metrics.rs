//! Prometheus metrics (`GET /metrics`, OpenMetrics text): what the daemon did, by source, host
//! and outcome. One process-wide registry; the stages record into it as they work.

use std::borrow::Cow;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PollLabels {
    pub source: String,
    /// `ok`, `not_modified` (304 or unchanged body) or `error`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// `feed` or `page`.
    pub kind: String,
    /// `2xx` … `5xx`, or `none` when no response came.
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ItemLabels {
    pub source: String,
    /// `new`, `duplicate`, `merged`, `updated`, `filtered`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    /// `rule`, `structured`, `generic` or `feed`.
    pub step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabels {
    pub host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `feed` or `page`.
    pub kind: String,
}

/// Every metric feedmill exports.
pub struct Metrics {
    registry: Registry,
    pub polls: Family<PollLabels, Counter>,
    pub http_responses: Family<StatusLabels, Counter>,
    pub items: Family<ItemLabels, Counter>,
    pub extraction_steps: Family<StepLabels, Counter>,
    pub rule_misses: Family<HostLabels, Counter>,
    pub fetch_seconds: Family<KindLabels, Histogram, fn() -> Histogram>,
    pub waiting_requests: Family<HostLabels, Gauge>,
    pub database_bytes: Gauge,
}

fn fetch_histogram() -> Histogram {
    // 10 ms … ~82 s.
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let polls = Family::default();
    let http_responses = Family::default();
    let items = Family::default();
    let extraction_steps = Family::default();
    let rule_misses = Family::default();
    let fetch_seconds = Family::new_with_constructor(fetch_histogram as fn() -> Histogram);
    let waiting_requests = Family::default();
    let database_bytes = Gauge::default();
    let node = NODE.get().map(|node| (Cow::Borrowed("node"), Cow::Owned(node.clone())));
    let mut registry = Registry::with_prefix_and_labels("feedmill", node.into_iter());
    registry.register("polls", "Polls by source and outcome", polls.clone());
    registry.register(
        "http_responses",
        "Responses to feed and page requests by status class",
        http_responses.clone(),
    );
    registry.register("items", "Items by source and what deduplication made of them", items.clone());
    registry.register(
        "extraction_steps",
        "Stored bodies by the extraction step that produced them",
        extraction_steps.clone(),
    );
    registry.register("rule_misses", "Pages whose site rule matched nothing, by host", rule_misses.clone());
    registry.register("fetch_duration_seconds", "Time of feed and page requests", fetch_seconds.clone());
    registry.register(
        "waiting_requests",
        "Requests waiting for a slot of their host",
        waiting_requests.clone(),
    );
    registry.register("database_size_bytes", "Size of the SQLite database", database_bytes.clone());
    Metrics {
        registry,
        polls,
        http_responses,
        items,
        extraction_steps,
        rule_misses,
        fetch_seconds,
        waiting_requests,
        database_bytes,
    }
});

/// A poll's outcomes, as [`Metrics::poll`] records them.
pub const POLL_OUTCOMES: &[&str] = &["ok", "not_modified", "error"];
/// What deduplication makes of an item, as [`Metrics::items`] records it.
pub const ITEM_KINDS: &[&str] = &["new", "duplicate", "merged", "updated", "filtered"];

/// The process-wide metrics.
/// The node label every series carries when several nodes share a database.
static NODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Labels every series with this node's name (`node="…"`), so that the nodes of a cluster can be
/// told apart; takes effect only before the first use of [`metrics`].
pub fn label_node(name: &str) {
    let _ = NODE.set(name.to_owned());
}

pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Creates every series whose label values are known before any work — each source ×
    /// poll outcome and × item kind, each response class, each extraction step — at 0, so
    /// `rate()` and absence alerts work from the start (Prometheus's instrumentation guidance).
    pub fn declare(&self, sources: &[String]) {
        for source in sources {
            for outcome in POLL_OUTCOMES {
                let _ = self
                    .polls
                    .get_or_create(&PollLabels { source: source.clone(), outcome: (*outcome).into() });
            }
            for kind in ITEM_KINDS {
                let _ =
                    self.items.get_or_create(&ItemLabels { source: source.clone(), kind: (*kind).into() });
            }
        }
        for kind in ["feed", "page"] {
            for class in ["2xx", "3xx", "4xx", "5xx", "none"] {
                let _ = self
                    .http_responses
                    .get_or_create(&StatusLabels { kind: kind.into(), class: class.into() });
            }
            let _ = self.fetch_seconds.get_or_create(&KindLabels { kind: kind.into() });
        }
        for step in ["rule", "structured", "generic", "feed"] {
            let _ = self.extraction_steps.get_or_create(&StepLabels { step: step.into() });
        }
    }

    pub fn poll(&self, source: &str, outcome: &str) {
        self.polls
            .get_or_create(&PollLabels { source: source.to_owned(), outcome: outcome.to_owned() })
            .inc();
    }

    /// A response (`Some(status)`) or none (`None`) to a `kind` request that took `elapsed`.
    pub fn response(&self, kind: &str, status: Option<u16>, elapsed: Duration) {
        let class = status.map_or_else(|| "none".to_owned(), |s| format!("{}xx", s / 100));
        self.http_responses.get_or_create(&StatusLabels { kind: kind.to_owned(), class }).inc();
        self.fetch_seconds
            .get_or_create(&KindLabels { kind: kind.to_owned() })
            .observe(elapsed.as_secs_f64());
    }

    pub fn items(&self, source: &str, kind: &str, count: usize) {
        if count > 0 {
            let labels = ItemLabels { source: source.to_owned(), kind: kind.to_owned() };
            self.items.get_or_create(&labels).inc_by(count as u64);
        }
    }

    pub fn extraction_step(&self, step: &str) {
        self.extraction_steps.get_or_create(&StepLabels { step: step.to_owned() }).inc();
    }

    pub fn rule_miss(&self, host: &str) {
        self.rule_misses.get_or_create(&HostLabels { host: host.to_owned() }).inc();
    }

    /// The gauge of requests waiting for `host`'s slot.
    pub fn waiting(&self, host: &str) -> Gauge {
        self.waiting_requests.get_or_create(&HostLabels { host: host.to_owned() }).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_encodes_with_labels() {
        let m = metrics();
        m.poll("unn-uk", "ok");
        m.response("feed", Some(304), Duration::from_millis(30));
        m.items("unn-uk", "merged", 2);
        m.rule_miss("unn.ua");
        let text = m.encode();
        assert!(text.contains("feedmill_polls_total{source=\"unn-uk\",outcome=\"ok\"} 1"), "{text}");
        assert!(text.contains("feedmill_http_responses_total{kind=\"feed\",class=\"3xx\"}"), "{text}");
        assert!(text.contains("feedmill_items_total{source=\"unn-uk\",kind=\"merged\"} 2"), "{text}");
        assert!(text.contains("feedmill_rule_misses_total{host=\"unn.ua\"} 1"), "{text}");
        assert!(text.contains("feedmill_fetch_duration_seconds_count{kind=\"feed\"}"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn known_series_exist_at_zero_before_any_work() {
        let m = metrics();
        m.declare(&["never-polled".to_owned()]);
        let text = m.encode();
        for outcome in POLL_OUTCOMES {
            let series = format!("feedmill_polls_total{{source=\"never-polled\",outcome=\"{outcome}\"}} 0");
            assert!(text.contains(&series), "{series} in {text}");
        }
        for kind in ITEM_KINDS {
            let series = format!("feedmill_items_total{{source=\"never-polled\",kind=\"{kind}\"}} 0");
            assert!(text.contains(&series), "{series}");
        }
        assert!(text.contains("feedmill_http_responses_total{kind=\"page\",class=\"5xx\"}"));
        assert!(text.contains("feedmill_extraction_steps_total{step=\"structured\"}"));
    }
}
