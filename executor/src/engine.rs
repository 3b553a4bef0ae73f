//! The execution engine of Quipu's executors: Ballista's, with Quipu's
//! checked integer arithmetic put back into every task's plan.
//!
//! The scheduler marks `+`, `-` and `*` as failing on overflow
//! (`quipu_connectors::planning::checked_arithmetic`), but DataFusion's
//! protobuf form of a plan drops the mark on its way to an executor, where
//! the arithmetic would wrap around silently again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ballista_core::JobId;
use ballista_core::client::BallistaClient;
use ballista_core::client_pool::{BallistaClientPool, PooledClient};
use ballista_core::extension::BallistaConfigGrpcEndpoint;
use ballista_core::utils::GrpcClientConfig;
use ballista_executor::execution_engine::{
    DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor,
};
use datafusion::error::Result;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;

/// How long an idle shuffle connection is kept (Ballista's default).
const IDLE: Duration = Duration::from_secs(30);

/// The engine every Quipu executor runs its tasks with.
pub fn checked_engine() -> Arc<dyn ExecutionEngine> {
    Arc::new(CheckedEngine(DefaultExecutionEngine::with_client_pool(
        Arc::new(ClientPool::default()),
    )))
}

/// Ballista's default engine over plans with checked arithmetic.
pub struct CheckedEngine(DefaultExecutionEngine);

impl ExecutionEngine for CheckedEngine {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> Result<Arc<dyn QueryStageExecutor>> {
        let plan = quipu_connectors::planning::checked_arithmetic::checked_plan(plan)?;
        self.0.create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )
    }
}

type Key = (String, u16, GrpcClientConfig);
type Idle = Arc<Mutex<HashMap<Key, Vec<(BallistaClient, Instant)>>>>;

/// Shuffle readers' Flight connections, reused while fresh. Ballista's own
/// pool (what its default engine uses) is private to its crate, and an
/// engine of one's own gets none: without this each fetch of a shuffle
/// partition would open a new connection.
#[derive(Default)]
struct ClientPool {
    idle: Idle,
}

impl std::fmt::Debug for ClientPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientPool").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl BallistaClientPool for ClientPool {
    async fn acquire(
        &self,
        host: &str,
        port: u16,
        config: &GrpcClientConfig,
        customize_endpoint: Option<Arc<BallistaConfigGrpcEndpoint>>,
    ) -> ballista_core::error::Result<PooledClient> {
        let key: Key = (host.to_string(), port, config.clone());
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let free = idle.entry(key.clone()).or_default();
            free.retain(|(_, since)| since.elapsed() < IDLE);
            free.pop().map(|(c, _)| c)
        };
        let client = match reused {
            Some(c) => c,
            None => {
                BallistaClient::try_new(
                    host,
                    port,
                    config.max_message_size,
                    config.use_tls,
                    customize_endpoint,
                    config.io_retries_times,
                    config.io_retry_wait_time_ms,
                    config.initial_connection_window_size,
                    config.initial_stream_window_size,
                )
                .await?
            }
        };
        let idle = Arc::clone(&self.idle);
        Ok(PooledClient::new(
            client,
            Box::new(move |c| {
                let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
                idle.entry(key).or_default().push((c, Instant::now()));
            }),
        ))
    }

    async fn evict_idle(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|_, free| {
            free.retain(|(_, since)| since.elapsed() < IDLE);
            !free.is_empty()
        });
    }
}
