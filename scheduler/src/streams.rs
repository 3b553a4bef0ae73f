//! The result streams a statement hands back: what every stream carries
//! ([`QueryOutput`]), the metrics wrapper of every statement ([`timed`]),
//! and the stream of a cluster query ([`ClusterStream`]), which names its
//! Ballista job in the logs, cancels the job when dropped early and runs
//! the query once more when the job was refused for re-running lost work
//! ([`rerunning`]).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::SessionContext;
use futures::{Stream, StreamExt, TryStreamExt};

use crate::engine::Engine;
use crate::error::Result;

/// Where a statement ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutedOn {
    Local,
    Cluster,
}

impl std::fmt::Display for ExecutedOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExecutedOn::Local => "local",
            ExecutedOn::Cluster => "cluster",
        })
    }
}

/// The result of one statement: a stream of batches and how it ran.
pub struct QueryOutput {
    pub schema: SchemaRef,
    pub stream: SendableRecordBatchStream,
    pub executed_on: ExecutedOn,
    /// Why it ran where it did, for logs and `--verbose`.
    pub reason: String,
}

/// The one output of a statement started without splitting.
pub fn one(mut outs: Vec<QueryOutput>) -> Result<QueryOutput> {
    match outs.len() {
        1 => Ok(outs.remove(0)),
        n => Err(DataFusionError::Internal(format!("expected one output, got {n}")).into()),
    }
}

/// Records a statement's duration when its last batch (or an error) has
/// been read, and counts execution errors.
pub(crate) fn timed(
    stream: SendableRecordBatchStream,
    executed_on: String,
    started: Instant,
    open: Arc<std::sync::atomic::AtomicUsize>,
) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let span = tracing::Span::current();
    let mut done = false;
    let wrapped = stream
        .map(move |item| {
            if item.is_err() && !done {
                done = true;
                quipu_connectors::metrics::metrics()
                    .query_errors
                    .with_label_values(&["execute"])
                    .inc();
                span.in_scope(|| tracing::debug!("query failed while running"));
            }
            Some(item)
        })
        .chain(futures::stream::once(async move {
            // A statement read as several streams ends with its last one.
            if open.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 {
                let m = quipu_connectors::metrics::metrics();
                m.query_seconds
                    .with_label_values(&[&executed_on])
                    .observe(started.elapsed().as_secs_f64());
            }
            None
        }))
        .filter_map(|x| async move { x });
    Box::pin(RecordBatchStreamAdapter::new(schema, wrapped))
}

/// Starts a physical plan made by [`Engine::cluster_physical`]: submits
/// its job.
pub(crate) fn cluster_stream(
    ctx: &SessionContext,
    physical: Arc<dyn ExecutionPlan>,
    scheduler_url: String,
) -> Result<ClusterStream> {
    let stream = execute_stream(physical.clone(), ctx.task_ctx())?;
    Ok(ClusterStream {
        inner: stream,
        plan: physical,
        scheduler_url,
        span: tracing::Span::current(),
        logged: false,
        done: false,
    })
}

/// The output of a cluster query whose first job is `first`. A job
/// refused by [`crate::rerun::RerunGuard`] (it re-ran work after a lost
/// executor) fails before its first row: the query then runs once more as
/// a new job, planned again from `plan`.
pub(crate) fn rerunning(
    first: ClusterStream,
    engine: Arc<Engine>,
    session: SessionContext,
    plan: LogicalPlan,
    reason: String,
) -> QueryOutput {
    let schema = first.inner.schema();
    let span = tracing::Span::current();
    let stream = futures::stream::once(async move {
        let mut first = first;
        let next: Pin<Box<dyn Stream<Item = DfResult<RecordBatch>> + Send>> =
            match first.next().await {
                Some(Err(e)) if crate::rerun::is_rerun_refusal(&e) => {
                    span.in_scope(|| {
                        tracing::warn!(error = %e, "running the query again as a new Ballista job")
                    });
                    drop(first);
                    let (ctx, physical, url) = engine
                        .cluster_physical(&session, plan)
                        .await
                        .map_err(external)?;
                    cluster_stream(&ctx, physical, url)
                        .map_err(external)?
                        .boxed()
                }
                Some(Ok(batch)) => futures::stream::iter([Ok(batch)]).chain(first).boxed(),
                Some(Err(e)) => futures::stream::iter([Err(e)]).boxed(),
                None => futures::stream::empty().boxed(),
            };
        Ok::<_, DataFusionError>(next)
    })
    .try_flatten();
    QueryOutput {
        schema: schema.clone(),
        stream: Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
        executed_on: ExecutedOn::Cluster,
        reason,
    }
}

fn external(e: crate::error::SchedulerError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The stream of a cluster query. Logs the Ballista job id once the job
/// has answered (its first batch, the end or an error), inside the
/// statement's span: the line `query_id=N ... job_id=...` ties the
/// client's statement to the scheduler's and executors' log lines about
/// the job. Dropped before its end (a cancel request, a statement timeout,
/// a client gone), it asks the scheduler to cancel the job, so the
/// executors stop its tasks instead of running them to the end.
pub(crate) struct ClusterStream {
    inner: SendableRecordBatchStream,
    plan: Arc<dyn ExecutionPlan>,
    scheduler_url: String,
    span: tracing::Span,
    logged: bool,
    done: bool,
}

impl ClusterStream {
    fn job_id(&self) -> Option<String> {
        use ballista_core::execution_plans::DistributedQueryExec;
        use datafusion_proto::protobuf::LogicalPlanNode;
        let mut job = None;
        let _ = self.plan.apply(|node| {
            if let Some(d) = node.downcast_ref::<DistributedQueryExec<LogicalPlanNode>>() {
                job = d.job_id().map(|j| j.to_string());
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        job
    }
}

impl futures::Stream for ClusterStream {
    type Item = DfResult<RecordBatch>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let mut polled = self.inner.poll_next_unpin(cx);
        // The connection to the scheduler broke (it restarted, or the
        // network did): say so, rather than only the transport's words.
        // A job that failed reached the scheduler: a transport error
        // inside it is a task's, reading shuffle data from an executor
        // that stopped (Ballista 55 reports that read as a task's runtime
        // error, not as a lost map output it would compute again).
        if let std::task::Poll::Ready(Some(Err(e))) = &polled {
            let text = e.to_string();
            let transport = text.contains("h2 protocol error") || text.contains("transport error");
            let failed_job = text.contains("Job ") && text.contains(" failed");
            if failed_job
                && !transport
                && let Some((sqlstate, said)) = data_exception_of_job(&text)
            {
                polled = std::task::Poll::Ready(Some(Err(
                    quipu_connectors::error::DataException::error(
                        sqlstate,
                        &format!("{said} (a task on the cluster failed: {text})"),
                    ),
                )));
            }
            let why = if !transport {
                None
            } else if failed_job {
                Some(format!(
                    "a task of the query lost its connection to an executor while it fetched \
                     that executor's shuffle output (the executor stopped or cannot be \
                     reached); run the query again: {text}"
                ))
            } else {
                Some(format!(
                    "lost the connection to the Ballista scheduler at {} while the query ran \
                     (it restarted or cannot be reached); run the query again: {text}",
                    self.scheduler_url
                ))
            };
            if let Some(why) = why {
                polled = std::task::Poll::Ready(Some(Err(DataFusionError::Execution(why))));
            }
        }
        if let std::task::Poll::Ready(item) = &polled {
            if !self.logged {
                self.logged = true;
                if let Some(job) = self.job_id() {
                    self.span
                        .in_scope(|| tracing::info!(job_id = %job, "query runs as a Ballista job"));
                }
            }
            if !matches!(item, Some(Ok(_))) {
                self.done = true;
            }
        }
        polled
    }
}

/// DataFusion's words when an uncorrelated scalar subquery returns more
/// than one row (`ScalarSubqueryExec`), an `Execution` error with no type
/// of its own: PostgreSQL's 21000 (cardinality_violation).
pub const SCALAR_SUBQUERY_ROWS: &str = "Scalar subquery returned more than one row";

/// The SQLSTATE and PostgreSQL's words for a value a task could not
/// compute, from a failed job's message. Ballista 55 sends a task's error
/// to the scheduler as text only (the `Debug` form of DataFusion's error,
/// `...External(ArrowError(DivideByZero))`), so the error's type (Arrow's
/// `DivideByZero`, Quipu's `DataException`: `frontdoor::error_codes`) is
/// lost on the way and only its words are left. They are read back here,
/// so a client gets the same SQLSTATE (`22012`, not `XX000`) whether the
/// query ran in-process or on the cluster.
fn data_exception_of_job(text: &str) -> Option<(&'static str, String)> {
    if let Some(said) = quipu_connectors::error::text_not_a_value(text)
        .or_else(|| quipu_connectors::error::out_of_range(text))
    {
        return Some(said);
    }
    // Quipu's own: `DataException { sqlstate: "2201E", message: ... }`.
    const OURS: &str = "DataException { sqlstate: \"";
    if let Some(at) = text.find(OURS) {
        let code = &text[at + OURS.len()..];
        for known in [
            "22012", "2201E", "22003", "22P02", "22023", "22000", "21000",
        ] {
            if code.starts_with(known) {
                return Some((known, "a value could not be computed".into()));
            }
        }
    }
    const WORDS: &[(&str, &str, &str)] = &[
        ("DivideByZero", "22012", "division by zero"),
        ("Divide by zero", "22012", "division by zero"),
        ("ArithmeticOverflow", "22003", "value out of range"),
        ("Arithmetic overflow", "22003", "value out of range"),
        ("ArrowError(ParseError", "22P02", "invalid input syntax"),
        ("Parser error", "22P02", "invalid input syntax"),
        ("ArrowError(CastError", "22000", "a value could not be cast"),
        ("Cast error", "22000", "a value could not be cast"),
        (
            SCALAR_SUBQUERY_ROWS,
            "21000",
            "more than one row returned by a subquery used as an expression",
        ),
    ];
    WORDS
        .iter()
        .find(|(words, _, _)| text.contains(words))
        .map(|(_, code, said)| (*code, said.to_string()))
}

impl datafusion::physical_plan::RecordBatchStream for ClusterStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

impl Drop for ClusterStream {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (Some(job), Ok(runtime)) = (self.job_id(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let url = self.scheduler_url.clone();
        let span = self.span.clone();
        runtime.spawn(async move {
            use ballista_core::serde::protobuf::CancelJobParams;
            use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
            let outcome = match SchedulerGrpcClient::connect(url).await {
                Ok(mut c) => c
                    .cancel_job(CancelJobParams {
                        job_id: job.clone(),
                    })
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            span.in_scope(|| match outcome {
                Ok(()) => {
                    tracing::info!(job_id = %job, "statement ended early: Ballista job cancelled")
                }
                Err(e) => {
                    tracing::warn!(job_id = %job, error = %e, "cannot cancel the Ballista job")
                }
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::data_exception_of_job;

    #[test]
    fn a_failed_jobs_words_give_back_the_sqlstate() {
        let job = |e: &str| {
            format!(
                "Job 038H failed: Job failed due to stage 1 failed: Task failed due to runtime execution error: {e}"
            )
        };
        for (error, code) in [
            (
                "DataFusionError(Shared(External(ArrowError(DivideByZero))))",
                "22012",
            ),
            (
                "ArrowError(ArithmeticOverflow(\"Overflow happened on: 1 * 2\"))",
                "22003",
            ),
            (
                "ArrowError(CastError(\"Cannot cast string 'x' to value of Int32 type\"))",
                "22P02",
            ),
            (
                "ArrowError(CastError(\"Cannot cast string '2024-02-30' to value of Date32 type\"))",
                "22008",
            ),
            (
                "ArrowError(InvalidArgumentError(\"1234.5 is too large to store in a Decimal128 of precision 4. Max is 999.9\"))",
                "22003",
            ),
            (
                "ArrowError(CastError(\"Unsupported cast from Utf8 to List\"))",
                "22000",
            ),
            (
                "External(DataException { sqlstate: \"2201E\", message: \"cannot take logarithm of zero\" })",
                "2201E",
            ),
        ] {
            assert_eq!(
                data_exception_of_job(&job(error)).map(|(c, _)| c),
                Some(code),
                "{error}"
            );
        }
        assert_eq!(data_exception_of_job(&job("Internal(\"lost\")")), None);
    }
}
