//! The HTTP server (axum): the merged feed and a health check.
//!
//! `GET /feed.atom` renders the newest `max_items` items; `GET /healthz` answers 200 with the
//! version and the number of configured sources.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;

use crate::publish::{atom, EntryView, FeedMeta};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// What the handlers need.
pub struct AppState {
    pub store: Store,
    pub meta: FeedMeta,
    pub max_items: usize,
    pub source_count: usize,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new().route("/feed.atom", get(feed_atom)).route("/healthz", get(healthz)).with_state(state)
}

/// Serves until shutdown; connections in flight are finished first.
pub async fn serve(listener: TcpListener, state: Arc<AppState>, shutdown: Shutdown) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(async move { shutdown.wait().await }).await
}

async fn feed_atom(State(state): State<Arc<AppState>>) -> Response {
    match state.store.latest_items(state.max_items).await {
        Ok(items) => {
            let entries: Vec<EntryView> =
                items.into_iter().map(|item| EntryView::new(item, &state.meta.public_url)).collect();
            let body = atom::render(&state.meta, &entries);
            ([(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")], body).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "cannot read items for /feed.atom");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the store: {error}\n")).into_response()
        }
    }
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "sources": state.source_count,
    }))
    .into_response()
}
