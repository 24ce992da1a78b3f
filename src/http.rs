//! The HTTP side of observability: `/metrics`, `/healthz` and `/readyz`.
//!
//! Liveness and readiness mean different things to Kubernetes and are kept apart. `/healthz` answers 200 while
//! the consumer loop is alive (a wedged loop gets the pod restarted). `/readyz` answers 200 only when the
//! instance has input partitions assigned and a broker connection, which is what "this replica is doing work"
//! means for a consumer-group member; a replica without partitions (more replicas than partitions) is alive
//! but not ready. A replica with a partition stopped at a record no topic accepts (`processing.on_undeliverable
//! = "stop"`) is not ready either, and says which.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

/// Health signals written by the stream layer and read by the probes.
#[derive(Debug, Default)]
pub struct Health {
    assigned: AtomicBool,
    connected: AtomicBool,
    /// Partitions stopped at a record that can be delivered nowhere, as "topic/partition@offset".
    blocked: std::sync::Mutex<Vec<String>>,
    /// Unix millis of the consumer loop's last iteration.
    heartbeat_ms: AtomicU64,
}

/// The consumer loop polls at least every few hundred milliseconds; this much silence means it is stuck.
const LIVENESS_STALL: Duration = Duration::from_secs(60);

impl Health {
    pub fn set_assigned(&self, v: bool) {
        self.assigned.store(v, Ordering::Relaxed);
    }
    pub fn set_connected(&self, v: bool) {
        self.connected.store(v, Ordering::Relaxed);
    }
    pub fn beat(&self) {
        self.heartbeat_ms.store(now_ms(), Ordering::Relaxed);
    }
    pub fn set_blocked(&self, partitions: Vec<String>) {
        *self.blocked.lock().unwrap_or_else(|p| p.into_inner()) = partitions;
    }
    pub fn blocked(&self) -> Vec<String> {
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    pub fn is_ready(&self) -> bool {
        self.assigned.load(Ordering::Relaxed)
            && self.connected.load(Ordering::Relaxed)
            && self.blocked().is_empty()
    }
    pub fn is_live(&self) -> bool {
        let last = self.heartbeat_ms.load(Ordering::Relaxed);
        last == 0 || now_ms().saturating_sub(last) < LIVENESS_STALL.as_millis() as u64
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { metrics, health })
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    if s.health.is_live() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "consumer loop stalled\n")
    }
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let assigned = s.health.assigned.load(Ordering::Relaxed);
    let connected = s.health.connected.load(Ordering::Relaxed);
    let blocked = s.health.blocked();
    let mut body = format!("assigned={assigned} connected={connected}\n");
    if !blocked.is_empty() {
        body.push_str(&format!(
            "blocked={} (records no topic accepts; see the error log and processing.on_undeliverable)\n",
            blocked.join(",")
        ));
    }
    let status = if s.health.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

/// Binds `addr` (port 0 picks a free port) and serves until `shutdown` resolves; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(metrics, health);
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    Ok((local, handle))
}
