//! The Quipu executor: a Ballista executor that runs with the same session
//! state (catalog, object stores, functions) as the planner, so the scans
//! the scheduler hands it resolve to the same sources.
//!
//! Today executors run inside the `quipu` process (the embedded cluster);
//! the multi-process `quipu executor` builds on the same state.

use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;

/// Starts an executor in this process that registers with `scheduler` and
/// offers `vcores` task slots.
pub async fn start_embedded(
    scheduler: SchedulerGrpcClient<tonic::transport::Channel>,
    vcores: usize,
    state: &SessionState,
) -> Result<()> {
    ballista_executor::new_standalone_executor_from_state(scheduler, vcores, state)
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))
}
