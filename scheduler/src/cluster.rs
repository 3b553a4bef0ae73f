//! The embedded Ballista cluster: a scheduler and one executor inside this
//! process, both using Quipu's session so that they resolve the same
//! catalog and object stores. Started on first use.

use std::sync::Arc;

use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::prelude::SessionConfig;
use quipu_connectors::QuipuSession;

use crate::error::{Result, SchedulerError};

/// A running cluster: where its scheduler listens and, when the scheduler
/// runs in this process, how to count its live executors.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `http://localhost:PORT` of the scheduler's gRPC service.
    pub scheduler_url: String,
    /// Counts the executors that reported recently; `None` when the
    /// scheduler is another process (`quipu sql --cluster`).
    pub executors: Option<ExecutorProbe>,
}

impl Cluster {
    /// A cluster known only by its scheduler's URL.
    pub fn at(scheduler_url: impl Into<String>) -> Cluster {
        Cluster {
            scheduler_url: scheduler_url.into(),
            executors: None,
        }
    }
}

type ProbeFn = dyn Fn() -> futures::future::BoxFuture<'static, usize> + Send + Sync + 'static;

/// How many executors are live, and how long a query waits for the first
/// one before it fails (a job queued with no executor would wait forever:
/// Ballista does not fail it).
#[derive(Clone)]
pub struct ExecutorProbe {
    count: Arc<ProbeFn>,
    pub wait: std::time::Duration,
}

impl std::fmt::Debug for ExecutorProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorProbe")
            .field("wait", &self.wait)
            .finish()
    }
}

impl ExecutorProbe {
    pub fn new(
        wait: std::time::Duration,
        count: impl Fn() -> futures::future::BoxFuture<'static, usize> + Send + Sync + 'static,
    ) -> ExecutorProbe {
        ExecutorProbe {
            count: Arc::new(count),
            wait,
        }
    }

    /// Returns once an executor is live, or fails after `wait` naming the
    /// scheduler.
    pub async fn wait_for_one(&self, scheduler_url: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.wait;
        let mut warned = false;
        loop {
            if (self.count)().await > 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SchedulerError::NoExecutors {
                    scheduler: scheduler_url.to_string(),
                    waited: self.wait.as_secs(),
                });
            }
            if !warned {
                warned = true;
                tracing::warn!(
                    scheduler = scheduler_url,
                    wait_s = self.wait.as_secs(),
                    "no executor is registered: the query waits for one"
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

pub use quipu_executor::{cluster_config, codecs, logical_codec, physical_codec, with_codecs};

/// Ballista's session builder: Quipu's session state with the job's
/// configuration (catalog, object stores, rules).
pub(crate) fn session_builder(
    session: &QuipuSession,
) -> ballista_scheduler::scheduler_server::SessionBuilder {
    let session = session.clone();
    Arc::new(move |config: SessionConfig| Ok(session.state_with_config(config)))
}

/// Ballista's config producer: every job starts from `config`.
pub(crate) fn config_producer(config: SessionConfig) -> ballista_core::ConfigProducer {
    Arc::new(move || config.clone())
}

/// A gRPC client of the scheduler, retried while it comes up.
pub(crate) async fn connect(
    scheduler_url: &str,
) -> Result<SchedulerGrpcClient<tonic::transport::Channel>> {
    let mut attempts = 0;
    loop {
        match SchedulerGrpcClient::connect(scheduler_url.to_string()).await {
            Ok(c) => return Ok(c),
            Err(e) if attempts < 50 => {
                attempts += 1;
                tracing::debug!(error = %e, "waiting for the scheduler");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => {
                return Err(SchedulerError::ClusterStart(format!(
                    "cannot reach the scheduler at {scheduler_url}: {e}"
                )));
            }
        }
    }
}

/// Starts an executor inside this process with `slots` task slots,
/// registered with the scheduler at `scheduler_url`.
pub(crate) async fn start_embedded_executor(
    session: &QuipuSession,
    scheduler_url: &str,
    slots: usize,
) -> Result<()> {
    let client = connect(scheduler_url).await?;
    let state = session.state_with_config(cluster_config(session));
    quipu_executor::start_embedded(client, slots, &state)
        .await
        .map_err(|e| SchedulerError::ClusterStart(e.to_string()))
}

/// Starts the scheduler and an executor with `vcores` task slots.
pub async fn start(session: &QuipuSession, vcores: usize) -> Result<Cluster> {
    let addr = ballista_scheduler::standalone::new_standalone_scheduler_with_builder(
        session_builder(session),
        config_producer(cluster_config(session)),
        codecs(session),
    )
    .await
    .map_err(|e| SchedulerError::ClusterStart(e.to_string()))?;
    let scheduler_url = format!("http://localhost:{}", addr.port());
    start_embedded_executor(session, &scheduler_url, vcores).await?;
    tracing::info!(%scheduler_url, vcores, "embedded Ballista cluster started");
    Ok(Cluster::at(scheduler_url))
}
