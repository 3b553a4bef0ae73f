//! `quipu executor`: a Ballista executor process with Quipu's codecs, the
//! catalog replica of [`crate::catalog_sync`], and `/metrics` + `/health`
//! on a small HTTP port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::RuntimeProducer;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use quipu_connectors::QuipuSession;

use crate::catalog_sync::{CatalogClient, SyncError};

/// What `quipu executor` is started with (flags, environment, TOML file).
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's gRPC address, `host:port`.
    pub scheduler_host: String,
    pub scheduler_port: u16,
    /// The scheduler's HTTP address, `http://host:port`.
    pub catalog_url: String,
    pub token: String,
    pub bind: String,
    /// How the scheduler and other executors reach this one.
    pub external_host: Option<String>,
    /// Arrow Flight (shuffle data, results).
    pub port: u16,
    pub grpc_port: u16,
    pub http_port: u16,
    /// Concurrent tasks; 0 means one per core.
    pub slots: usize,
    pub work_dir: Option<PathBuf>,
    /// How often the executor reports to the scheduler.
    pub heartbeat_seconds: u64,
    /// Pull tasks (default) or take pushed ones: the scheduler's setting.
    pub scheduling: ballista_core::config::TaskSchedulingPolicy,
    /// How long to wait for the scheduler at start.
    pub scheduler_patience: Duration,
}

/// Why an executor could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("{0}")]
    Catalog(#[from] SyncError),
    #[error("cannot use the work directory {path}: {reason}")]
    WorkDir { path: PathBuf, reason: String },
    #[error("cannot open the catalog replica: {0}")]
    Session(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("executor failed: {0}")]
    Ballista(String),
}

/// Runs an executor until it is stopped (SIGTERM/Ctrl-C) or fails.
pub async fn run(opts: ExecutorOptions) -> Result<(), ExecutorError> {
    let work_dir = match &opts.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("quipu-executor-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work_dir).map_err(|e| ExecutorError::WorkDir {
        path: work_dir.clone(),
        reason: e.to_string(),
    })?;
    let replica_dir = work_dir.join("catalog");
    let session =
        QuipuSession::open(&replica_dir).map_err(|e| ExecutorError::Session(e.to_string()))?;
    let client = CatalogClient::new(&opts.catalog_url, &opts.token);
    client
        .sync_at_start(session.store(), opts.scheduler_patience)
        .await?;
    session
        .catalogs()
        .on_source_miss(crate::catalog_sync::miss_hook(
            &opts.catalog_url,
            &opts.token,
            session.store().clone(),
        ));
    let poller = client.spawn_poller(session.store().clone(), Duration::from_secs(1));

    let http_addr = format!("{}:{}", opts.bind, opts.http_port);
    let listener = tokio::net::TcpListener::bind(&http_addr)
        .await
        .map_err(|e| ExecutorError::Listen {
            addr: http_addr.clone(),
            reason: e.to_string(),
        })?;
    let http = tokio::spawn(serve_http(listener));

    let runtime = session.runtime().clone();
    let runtime_producer: RuntimeProducer = Arc::new(move |_| Ok(runtime.clone()));
    let config = crate::cluster_config(&session);
    let config_producer: ballista_core::ConfigProducer = Arc::new(move || config.clone());
    let process = ExecutorProcessConfig {
        bind_host: opts.bind.clone(),
        external_host: opts.external_host.clone(),
        port: opts.port,
        grpc_port: opts.grpc_port,
        scheduler_host: opts.scheduler_host.clone(),
        scheduler_port: opts.scheduler_port,
        scheduler_connect_timeout_seconds: opts.scheduler_patience.as_secs().max(1) as u16,
        vcores: opts.slots,
        // Must match the scheduler's (see scheduler::process::start).
        task_scheduling_policy: opts.scheduling,
        work_dir: Some(work_dir.join("shuffle").to_string_lossy().into_owned()),
        executor_heartbeat_interval_seconds: opts.heartbeat_seconds,
        print_thread_info: false,
        job_data_clean_up_interval_seconds: 600,
        job_data_ttl_seconds: 3600,
        override_runtime_producer: Some(runtime_producer),
        override_config_producer: Some(config_producer),
        override_logical_codec: Some(crate::logical_codec(&session)),
        override_physical_codec: Some(crate::physical_codec(&session)),
        override_execution_engine: Some(crate::engine::checked_engine()),
        ..Default::default()
    };
    std::fs::create_dir_all(work_dir.join("shuffle")).map_err(|e| ExecutorError::WorkDir {
        path: work_dir.clone(),
        reason: e.to_string(),
    })?;
    tracing::info!(
        scheduler = %format!("{}:{}", opts.scheduler_host, opts.scheduler_port),
        flight_port = opts.port,
        http = %http_addr,
        "quipu executor starting"
    );
    let result = start_executor_process(Arc::new(process)).await;
    poller.abort();
    http.abort();
    session.close().await;
    result.map_err(|e| ExecutorError::Ballista(e.to_string()))
}

/// `/metrics` and `/health` of an executor.
async fn serve_http(listener: tokio::net::TcpListener) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_page));
    if let Err(e) = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    {
        tracing::error!(error = %e, "executor HTTP server stopped");
    }
}

/// The Prometheus text page (shared by the scheduler's HTTP server).
pub async fn metrics_page() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        quipu_connectors::metrics::render(),
    )
}
