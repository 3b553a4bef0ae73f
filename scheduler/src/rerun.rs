//! No answer from a Ballista job that lost part of its work.
//!
//! Ballista 55 recovers from a lost executor by rolling stages back and
//! running them again, but it never withdraws the shuffle outputs that the
//! first attempt of a rolled-back stage had already handed to the next
//! stage, and its shuffle paths carry no attempt number: the next stage
//! then reads old and new outputs, and a query succeeded with every count
//! about 1.5 times too high after an executor was killed (issue 17; the
//! details, with file and line references, are in docs/architecture.md).
//!
//! Quipu cannot fix the recovery from outside, so it refuses its result:
//! [`RerunGuard`] wraps Ballista's job state, and when a job succeeds
//! after any stage ran more than once or any task lost its input or
//! output, the job's status is replaced by a failure carrying
//! [`RERUN_REFUSED`]. The client side (`streams.rs`, `rerunning`) sees that failure
//! before any row (results are fetched only once the job has succeeded)
//! and runs the query once more, whole, as a new job; a second such
//! failure reaches the user as a clear error.

use std::collections::HashSet;
use std::sync::Arc;

use ballista_core::error::Result;
use ballista_core::serde::protobuf::failed_task::FailedReason;
use ballista_core::serde::protobuf::{JobStatus, job_status, task_status};
use ballista_core::{JobId, JobStatusSubscriber};
use ballista_scheduler::cluster::{JobState, JobStateEventStream};
use ballista_scheduler::state::execution_graph::ExecutionGraphBox;
use ballista_scheduler::state::execution_stage::ExecutionStage;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};

/// The text of the failure that replaces a job's status when part of it
/// was run again after a loss.
pub const RERUN_REFUSED: &str = "quipu: an executor was lost while this job ran and Ballista \
     re-ran part of it; that result could count rows twice, so it was discarded";

/// Whether a query's error is a job refused by [`RerunGuard`].
pub fn is_rerun_refusal(e: &DataFusionError) -> bool {
    e.to_string().contains(RERUN_REFUSED)
}

/// Why a job's result cannot be trusted: a stage that ran more than once,
/// or a task that lost its input or its output.
fn rerun_reason(graph: &ExecutionGraphBox) -> Option<String> {
    for (id, stage) in graph.stages() {
        let attempt = match stage {
            ExecutionStage::UnResolved(s) => s.stage_attempt_num,
            ExecutionStage::Resolved(s) => s.stage_attempt_num,
            ExecutionStage::Running(s) => s.stage_attempt_num,
            ExecutionStage::Successful(s) => s.stage_attempt_num,
            ExecutionStage::Failed(s) => s.stage_attempt_num,
        };
        if attempt > 0 {
            return Some(format!("stage {id} ran {} times", attempt + 1));
        }
        let lost = stage.task_infos().unwrap_or_default().iter().any(|t| {
            matches!(
                &t.task_status,
                task_status::Status::Failed(f) if matches!(
                    f.failed_reason,
                    Some(FailedReason::FetchPartitionError(_) | FailedReason::ResultLost(_))
                )
            )
        });
        if lost {
            return Some(format!("a task of stage {id} lost its input or output"));
        }
    }
    None
}

/// Ballista's job state, with the results of re-run jobs refused.
pub struct RerunGuard {
    inner: Arc<dyn JobState>,
}

impl RerunGuard {
    pub fn new(inner: Arc<dyn JobState>) -> RerunGuard {
        RerunGuard { inner }
    }
}

#[async_trait::async_trait]
impl JobState for RerunGuard {
    async fn save_job(&self, job_id: &JobId, graph: &ExecutionGraphBox) -> Result<()> {
        // Only a success is refused: a job that failed after a loss (all
        // executors gone, say) keeps its own clear error, and is not run
        // again.
        let succeeded = matches!(
            graph.status().status,
            Some(job_status::Status::Successful(_))
        );
        if succeeded && let Some(why) = rerun_reason(graph) {
            tracing::warn!(job_id = %job_id, %why, "Ballista job re-ran work after a loss: its result is refused");
            let mut refused = graph.cloned();
            refused.fail_job(format!("{RERUN_REFUSED} ({why})"));
            return self.inner.save_job(job_id, &refused).await;
        }
        self.inner.save_job(job_id, graph).await
    }

    fn accept_job(&self, job_id: &JobId, job_name: &str, queued_at: u64) -> Result<()> {
        self.inner.accept_job(job_id, job_name, queued_at)
    }

    fn pending_job_number(&self) -> usize {
        self.inner.pending_job_number()
    }

    async fn submit_job(
        &self,
        job_id: JobId,
        graph: &ExecutionGraphBox,
        subscriber: Option<JobStatusSubscriber>,
    ) -> Result<()> {
        self.inner.submit_job(job_id, graph, subscriber).await
    }

    async fn get_jobs(&self) -> Result<HashSet<JobId>> {
        self.inner.get_jobs().await
    }

    async fn get_all_jobs(&self) -> Result<HashSet<JobId>> {
        self.inner.get_all_jobs().await
    }

    async fn get_job_status(&self, job_id: &JobId) -> Result<Option<JobStatus>> {
        self.inner.get_job_status(job_id).await
    }

    async fn get_execution_graph(&self, job_id: &JobId) -> Result<Option<ExecutionGraphBox>> {
        self.inner.get_execution_graph(job_id).await
    }

    async fn fail_unscheduled_job(&self, job_id: &JobId, reason: String) -> Result<()> {
        self.inner.fail_unscheduled_job(job_id, reason).await
    }

    async fn remove_job(&self, job_id: &JobId) -> Result<()> {
        self.inner.remove_job(job_id).await
    }

    async fn try_acquire_job(&self, job_id: &JobId) -> Result<Option<ExecutionGraphBox>> {
        self.inner.try_acquire_job(job_id).await
    }

    async fn job_state_events(&self) -> Result<JobStateEventStream> {
        self.inner.job_state_events().await
    }

    async fn create_or_update_session(
        &self,
        session_id: &str,
        config: &SessionConfig,
    ) -> Result<Arc<SessionContext>> {
        self.inner
            .create_or_update_session(session_id, config)
            .await
    }

    async fn remove_session(&self, session_id: &str) -> Result<()> {
        self.inner.remove_session(session_id).await
    }

    fn produce_config(&self) -> SessionConfig {
        self.inner.produce_config()
    }
}
