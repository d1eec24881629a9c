//! feedmill turns news feeds into one clean, deduplicated, full-text feed.
//!
//! # Layout
//!
//! The pipeline, one module per stage; data flows one way, top to bottom:
//!
//! - [`config`]: the TOML file → a validated [`config::Config`].
//! - [`schedule`]: a tokio-cron-scheduler job per source.
//! - [`poll`]: one poll of one source — the place that orders the stages below.
//! - [`fetch`]: HTTP for feeds and pages: deadlines, size caps, conditional GET, SSRF guard.
//! - [`feed`]: a source's document → items, one reader per source kind: feeds (feed-rs; a lenient
//!   quick-xml reader for what it cannot read), Telegram channel previews, HTML listing pages,
//!   sitemaps.
//! - [`extract`]: article page → clean body (site rules, generic extractor, sanitizer).
//! - [`dedup`]: what makes two items the same article, or the same story.
//! - [`store`]: SQLite (the default) or PostgreSQL behind one set of operations, through one
//!   writer thread; a poll's items checked against what is stored in a few set queries and
//!   written together; reports gathered into stories and the best one published; for nodes sharing
//!   a PostgreSQL database, leases on sources, heartbeats, cluster jobs and per-host limits.
//! - [`publish`]: stored items → Atom, RSS 2.0, JSON Feed and story pages.
//! - [`server`]: HTTP endpoints.
//!
//! Beside the stages: [`filter`] (include/exclude patterns), [`language`] (language tags),
//! [`metrics`], [`status`] (the status page), [`opml`], [`websub`], [`systemd`].
//!
//! [`daemon`] wires them together for `feedmill run` and `feedmill poll`; [`shutdown`] carries the
//! stop signal to every task. The binary (`src/main.rs`, with `src/cli/` for the commands that
//! are more than a call into the library) parses the command line and calls these.

pub mod config;
pub mod daemon;
pub mod dedup;
pub mod extract;
pub mod feed;
pub mod fetch;
pub mod filter;
pub mod language;
pub mod metrics;
pub mod opml;
pub mod poll;
pub mod publish;
pub mod schedule;
pub mod server;
pub mod shutdown;
pub mod status;
pub mod store;
pub mod systemd;
pub mod websub;
