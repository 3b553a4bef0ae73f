//! `quipu scheduler` and `quipu serve`: a Ballista scheduler with Quipu's
//! session builder and codecs, the query engine that submits to it, and
//! the HTTP side of the cluster:
//!
//! - `GET /catalog`, `GET /catalog/generation`: the catalog for executors,
//!   behind the cluster token (`Authorization: Bearer ...`);
//! - `GET /metrics`: Prometheus text;
//! - `GET /health`: `ok` with the executor count and catalog generation.
//!
//! `quipu serve` is the same process plus one executor inside it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use ballista_scheduler::state::SchedulerState;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use quipu_connectors::QuipuSession;
use quipu_connectors::metrics::metrics;

use crate::cluster::{
    Cluster, ExecutorProbe, cluster_config, config_producer, logical_codec, physical_codec,
    session_builder, start_embedded_executor,
};
use crate::engine::Engine;
use crate::error::{Result, SchedulerError};

/// What `quipu scheduler` / `quipu serve` are started with.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub bind: String,
    /// Ballista gRPC (executors register, jobs are submitted); 0 = any.
    pub port: u16,
    /// HTTP: catalog channel, metrics, health; 0 = any.
    pub http_port: u16,
    /// How executors and clients reach this scheduler.
    pub external_host: Option<String>,
    /// The cluster token executors present.
    pub token: String,
    /// An executor silent for this long is considered lost and its tasks
    /// run elsewhere.
    pub executor_timeout: Duration,
    /// Executors pull tasks (default) or the scheduler pushes them; the
    /// executors must use the same.
    pub scheduling: TaskSchedulingPolicy,
    /// Task slots of an executor inside this process (`quipu serve`).
    pub embedded_slots: Option<usize>,
}

pub use ballista_core::config::TaskSchedulingPolicy;

type State_ = Arc<SchedulerState<LogicalPlanNode, PhysicalPlanNode>>;

/// A running scheduler.
pub struct RunningScheduler {
    pub engine: Arc<Engine>,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
}

/// Executors that reported within the executor timeout.
async fn live_executors(state: &State_, timeout: Duration) -> usize {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    match state.executor_manager.get_executors_state().await {
        Ok(all) => all
            .iter()
            .filter(|(_, seen, _)| seen.is_some_and(|t| now.saturating_sub(t) <= timeout))
            .count(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list executors");
            0
        }
    }
}

fn listen_err(addr: &str) -> impl Fn(std::io::Error) -> SchedulerError + '_ {
    move |e| SchedulerError::ClusterStart(format!("cannot listen on {addr}: {e}"))
}

/// Starts the scheduler's services; they run until the process ends.
pub async fn start(session: QuipuSession, opts: SchedulerOptions) -> Result<RunningScheduler> {
    if opts.token.trim().is_empty() {
        return Err(SchedulerError::ClusterStart(
            "no cluster token: set QUIPU_CLUSTER_TOKEN or --token-file (executors present \
             the same token to fetch the catalog)"
                .into(),
        ));
    }
    let grpc_bind = format!("{}:{}", opts.bind, opts.port);
    let listener = tokio::net::TcpListener::bind(&grpc_bind)
        .await
        .map_err(listen_err(&grpc_bind))?;
    let grpc_addr = listener.local_addr().map_err(listen_err(&grpc_bind))?;
    let external_host = opts
        .external_host
        .clone()
        .unwrap_or_else(|| connect_host(&opts.bind));

    let timeout = opts.executor_timeout.as_secs().max(2);
    let sched_config = SchedulerConfig {
        bind_host: opts.bind.clone(),
        bind_port: grpc_addr.port(),
        external_host: external_host.clone(),
        override_session_builder: Some(session_builder(&session)),
        override_config_producer: Some(config_producer(cluster_config(&session))),
        override_logical_codec: Some(logical_codec(&session)),
        override_physical_codec: Some(physical_codec(&session)),
        // Executors pull tasks by default. With Ballista 55's push mode, the
        // re-run of a stage whose output a lost executor held was sometimes
        // never launched on the survivors and the query hung
        // (docs/architecture.md, tests/it/cluster.rs); push is faster per
        // stage (docs/benchmarks.md, cluster).
        scheduling_policy: opts.scheduling,
        executor_timeout_seconds: timeout,
        expire_dead_executor_interval_seconds: (timeout / 3).max(1),
        no_executors_grace_period_seconds: timeout,
        ..Default::default()
    };
    let base = BallistaCluster::new_from_config(&sched_config)
        .await
        .map_err(|e| SchedulerError::ClusterStart(e.to_string()))?;
    // Jobs that re-ran work after a lost executor end in a failure the
    // client re-runs, never in their (possibly double-counted) result.
    let cluster = BallistaCluster::new(
        base.cluster_state(),
        Arc::new(crate::rerun::RerunGuard::new(base.job_state())),
    );
    let server =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(sched_config))
            .await
            .map_err(|e| SchedulerError::ClusterStart(e.to_string()))?;
    let state = server.state.clone();
    let http_state_for_probe = state.clone();
    tokio::spawn(async move {
        if let Err(e) = start_grpc_service_with_listener(listener, server).await {
            tracing::error!(error = %e, "scheduler gRPC service stopped");
        }
    });
    let scheduler_url = format!("http://{}:{}", external_host, grpc_addr.port());

    let http_bind = format!("{}:{}", opts.bind, opts.http_port);
    let http_listener = tokio::net::TcpListener::bind(&http_bind)
        .await
        .map_err(listen_err(&http_bind))?;
    let http_addr = http_listener.local_addr().map_err(listen_err(&http_bind))?;
    let http_state = HttpState {
        session: session.clone(),
        token: Arc::from(opts.token.as_str()),
        state,
        timeout: Duration::from_secs(timeout),
    };
    tokio::spawn(serve_http(http_listener, http_state));

    if let Some(slots) = opts.embedded_slots {
        start_embedded_executor(&session, &scheduler_url, slots).await?;
    }
    tracing::info!(grpc = %grpc_addr, http = %http_addr, "quipu scheduler started");
    // A query submitted while no executor is live waits at most one
    // executor timeout for the first to register, then fails naming the
    // scheduler (Ballista would keep the job queued forever).
    let probe_state = http_state_for_probe;
    let probe_timeout = Duration::from_secs(timeout);
    let executors = ExecutorProbe::new(probe_timeout, move || {
        let state = probe_state.clone();
        Box::pin(async move { live_executors(&state, probe_timeout).await })
    });
    let engine = Engine::with_cluster(
        session,
        Cluster {
            scheduler_url,
            executors: Some(executors),
        },
    );
    // Materialized views declared with `refresh = 'every ...'`.
    crate::cache::refresh::spawn_refresher(engine.clone());
    Ok(RunningScheduler {
        engine,
        grpc_addr,
        http_addr,
    })
}

/// Where a client on this machine reaches a service bound to `bind`.
fn connect_host(bind: &str) -> String {
    match bind {
        "0.0.0.0" | "::" | "[::]" => "127.0.0.1".to_string(),
        other => other.to_string(),
    }
}

#[derive(Clone)]
struct HttpState {
    session: QuipuSession,
    token: Arc<str>,
    state: State_,
    timeout: Duration,
}

async fn serve_http(listener: tokio::net::TcpListener, state: HttpState) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_page))
        .route("/catalog", get(catalog))
        .route("/catalog/generation", get(generation))
        .with_state(state);
    if let Err(e) = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    {
        tracing::error!(error = %e, "scheduler HTTP server stopped");
    }
}

/// Compares the presented bearer token with ours in constant time.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(presented) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    quipu_catalog::secret::constant_time_eq(presented.as_bytes(), token.as_bytes())
}

fn refused() -> axum::response::Response {
    (StatusCode::UNAUTHORIZED, "missing or wrong cluster token\n").into_response()
}

fn internal(e: impl std::fmt::Display) -> axum::response::Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
}

async fn catalog(State(s): State<HttpState>, headers: HeaderMap) -> axum::response::Response {
    if !authorized(&headers, &s.token) {
        return refused();
    }
    match s.session.store().snapshot() {
        Ok(snap) => axum::Json(snap).into_response(),
        Err(e) => internal(e),
    }
}

async fn generation(State(s): State<HttpState>, headers: HeaderMap) -> axum::response::Response {
    if !authorized(&headers, &s.token) {
        return refused();
    }
    match s.session.store().generation() {
        Ok(g) => format!("{g}\n").into_response(),
        Err(e) => internal(e),
    }
}

async fn health(State(s): State<HttpState>) -> axum::response::Response {
    let executors = live_executors(&s.state, s.timeout).await;
    let generation = s.session.store().generation().unwrap_or(0);
    format!("ok executors={executors} catalog_generation={generation}\n").into_response()
}

async fn metrics_page(State(s): State<HttpState>) -> axum::response::Response {
    let m = metrics();
    m.executors
        .set(live_executors(&s.state, s.timeout).await as i64);
    m.catalog_generation
        .set(s.session.store().generation().unwrap_or(0) as i64);
    quipu_executor::process::metrics_page()
        .await
        .into_response()
}
