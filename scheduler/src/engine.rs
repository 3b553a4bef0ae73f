//! One planner, two ways to execute.
//!
//! A [`ClientSession`] parses and plans each statement with its own session
//! state (so `SET` is per client). Statements that scan nothing, touch only
//! `information_schema`, or are DDL/`SET` always run in-process. Queries run
//! in-process too unless their estimated scan is large (see
//! [`QuipuOptions`]), in which case the same logical plan goes to the
//! Ballista cluster. Both paths start from the same logical plan, so they
//! agree on results.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use ballista_core::extension::SessionStateExt;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::DataFusionError;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, execute_stream};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParserBuilder, Statement};
use futures::{Stream, StreamExt, TryStreamExt};
use quipu_connectors::{Access, ExecutionMode, QuipuOptions, QuipuSession};
use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::cluster::{self, Cluster};
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

/// The process-wide engine: catalog, session template, embedded cluster.
pub struct Engine {
    session: QuipuSession,
    cluster: OnceCell<Cluster>,
    vcores: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("session", &self.session)
            .finish()
    }
}

impl Engine {
    pub fn new(session: QuipuSession) -> Arc<Self> {
        let vcores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Arc::new(Engine {
            session,
            cluster: OnceCell::new(),
            vcores,
        })
    }

    /// An engine whose cluster is already running (a `quipu scheduler`
    /// process and its executors): cluster queries go there.
    pub fn with_cluster(session: QuipuSession, cluster: Cluster) -> Arc<Self> {
        let engine = Engine::new(session);
        // A fresh cell: set cannot fail.
        let _ = engine.cluster.set(cluster);
        engine
    }

    /// An engine that submits cluster queries to the scheduler at
    /// `scheduler_url` (`http://host:port`) instead of starting its own.
    pub fn remote(session: QuipuSession, scheduler_url: &str) -> Arc<Self> {
        Self::with_cluster(session, Cluster::at(scheduler_url.trim_end_matches('/')))
    }

    /// Opens the catalog in `data_dir`.
    pub fn open(data_dir: impl AsRef<std::path::Path>) -> Result<Arc<Self>> {
        Ok(Self::new(QuipuSession::open(data_dir)?))
    }

    pub fn session(&self) -> &QuipuSession {
        &self.session
    }

    /// A new client session with its own settings.
    pub fn client(self: &Arc<Self>) -> ClientSession {
        ClientSession {
            engine: self.clone(),
            ctx: SessionContext::new_with_state(self.session.state()),
            access: Access::all(),
        }
    }

    /// A client session that sees and reads only what `access` grants
    /// (front-door users).
    pub fn client_for(self: &Arc<Self>, access: Access) -> ClientSession {
        ClientSession {
            engine: self.clone(),
            ctx: SessionContext::new_with_state(self.session.state_for(access.clone())),
            access,
        }
    }

    /// The embedded cluster, started on first use.
    pub async fn cluster(&self) -> Result<&Cluster> {
        self.cluster
            .get_or_try_init(|| cluster::start(&self.session, self.vcores))
            .await
    }
}

/// What a client hands over: SQL text already split into statements, or
/// a plan with its parameters bound.
/// What a session runs: SQL planned here, or a plan made earlier by
/// [`ClientSession::plan`] with its parameters bound.
pub enum Work {
    Statement(Statement),
    Plan(LogicalPlan),
}

/// A statement planned by [`ClientSession::prepare`], not yet started.
pub struct Planned {
    step: Step,
    started: Instant,
    span: tracing::Span,
}

/// Where a planned statement runs, with what it needs to start there.
enum Step {
    /// In-process from its logical plan: catalog and session statements,
    /// which act when they are executed.
    Logical(LogicalPlan, String),
    /// On the Ballista cluster.
    Cluster {
        ctx: SessionContext,
        physical: Arc<dyn ExecutionPlan>,
        scheduler_url: String,
        reason: String,
        /// Planned again if the job must run again.
        plan: LogicalPlan,
    },
    /// In-process, optionally one stream per independent partition.
    Local {
        physical: Arc<dyn ExecutionPlan>,
        reason: String,
        split: bool,
    },
}

/// Counts and logs a statement that failed before its first batch.
fn failed_to_start(
    span: &tracing::Span,
    e: crate::error::SchedulerError,
) -> crate::error::SchedulerError {
    quipu_connectors::metrics::metrics()
        .query_errors
        .with_label_values(&["plan"])
        .inc();
    span.in_scope(|| tracing::debug!(error = %e, "query failed to start"));
    e
}

/// One client's session: its settings and the statements it runs.
pub struct ClientSession {
    engine: Arc<Engine>,
    ctx: SessionContext,
    access: Access,
}

/// What the planner estimates a query will read.
#[derive(Debug, Default, Clone, Copy)]
struct WorkEstimate {
    bytes: u64,
    rows: u64,
    files: usize,
}

fn estimate(plan: &Arc<dyn ExecutionPlan>) -> WorkEstimate {
    let mut est = WorkEstimate::default();
    // A file split into byte ranges (one per core) sits in several file
    // groups, each range carrying the whole file's statistics: count each
    // file once (counting ranges doubled the rows of a one-file table and
    // sent a 10 M-row table to the cluster as if it had 20 M).
    let mut seen = std::collections::HashSet::new();
    let _ = plan.apply(|node| {
        if let Some(ds) = node.downcast_ref::<DataSourceExec>()
            && let Some(scan) = ds.data_source().downcast_ref::<FileScanConfig>()
        {
            for group in &scan.file_groups {
                for file in group.files() {
                    if !seen.insert(file.object_meta.location.clone()) {
                        continue;
                    }
                    est.bytes += file.object_meta.size;
                    est.files += 1;
                    if let Some(rows) = file
                        .statistics
                        .as_ref()
                        .and_then(|s| s.num_rows.get_value())
                    {
                        est.rows += *rows as u64;
                    }
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    est
}

/// Whether a plan only reads and forwards rows: scans, projections,
/// limits and the operators that move batches between partitions. Every
/// row it reads goes to the client through this process, so the cluster
/// would only add a shuffle write and a fetch per row (4x slower for a
/// 10 M-row export, measured); such plans run in-process whatever their
/// size. A filter, join, aggregate, sort or window makes work worth
/// spreading.
fn forwards_rows(plan: &Arc<dyn ExecutionPlan>) -> bool {
    use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
    use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
    use datafusion::physical_plan::projection::ProjectionExec;
    use datafusion::physical_plan::repartition::RepartitionExec;
    every_node(plan, |node| {
        node.is::<DataSourceExec>()
            || node.is::<ProjectionExec>()
            || node.is::<CoalescePartitionsExec>()
            || node.is::<RepartitionExec>()
            || node.is::<GlobalLimitExec>()
            || node.is::<LocalLimitExec>()
    })
}

/// Whether `holds` is true of every node of `plan` (it stops at the
/// first that fails).
fn every_node(
    plan: &Arc<dyn ExecutionPlan>,
    holds: impl Fn(&Arc<dyn ExecutionPlan>) -> bool,
) -> bool {
    let mut all = true;
    let _ = plan.apply(|node| {
        all = holds(node);
        Ok(if all {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    all
}

/// The one output of a statement that was not split.
/// The one output of a statement started without splitting.
pub fn one(mut outs: Vec<QueryOutput>) -> Result<QueryOutput> {
    match outs.len() {
        1 => Ok(outs.remove(0)),
        n => Err(DataFusionError::Internal(format!("expected one output, got {n}")).into()),
    }
}

/// The node whose output partitions can be read as separate streams, and
/// their number: the plan under its final merge when every node below
/// works partition by partition (at most one child, the same partition
/// count, no repartitioning), and there are at least two.
fn independent_partitions(
    plan: &Arc<dyn ExecutionPlan>,
) -> Option<(Arc<dyn ExecutionPlan>, usize)> {
    use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
    use datafusion::physical_plan::repartition::RepartitionExec;
    let top = if plan.is::<CoalescePartitionsExec>() {
        plan.children().first().map(|c| (*c).clone())?
    } else {
        plan.clone()
    };
    let n = top.output_partitioning().partition_count();
    if n < 2 {
        return None;
    }
    let independent = every_node(&top, |node| {
        node.children().len() <= 1
            && node.output_partitioning().partition_count() == n
            && !node.is::<RepartitionExec>()
    });
    independent.then_some((top, n))
}

/// A process-unique id for one statement, in its log lines.
fn next_query_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Records a statement's duration when its last batch (or an error) has
/// been read, and counts execution errors.
fn timed(
    stream: SendableRecordBatchStream,
    executed_on: String,
    started: Instant,
    open: Arc<std::sync::atomic::AtomicUsize>,
) -> SendableRecordBatchStream {
    use futures::StreamExt;
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
    Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, wrapped))
}

/// The stream of a cluster query. Logs the Ballista job id once the job
/// has answered (its first batch, the end or an error), inside the
/// statement's span: the line `query_id=N ... job_id=...` ties the
/// client's statement to the scheduler's and executors' log lines about
/// the job. Dropped before its end (a cancel request, a statement timeout,
/// a client gone), it asks the scheduler to cancel the job, so the
/// executors stop its tasks instead of running them to the end.
/// Plans `plan` with `session`'s state for the Ballista cluster: the
/// context that runs it, its physical plan and the scheduler's address.
async fn cluster_physical(
    engine: &Arc<Engine>,
    session: &SessionContext,
    plan: LogicalPlan,
) -> Result<(SessionContext, Arc<dyn ExecutionPlan>, String)> {
    let cluster = engine.cluster().await?;
    if let Some(probe) = &cluster.executors {
        probe.wait_for_one(&cluster.scheduler_url).await?;
    }
    // The client side encodes the plan with Quipu's codecs too.
    let state = session.state();
    let config = crate::cluster::with_codecs(
        quipu_executor::static_planner(state.config().clone()),
        engine.session(),
    );
    let cluster_state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build()
        .upgrade_for_ballista(cluster.scheduler_url.clone())?;
    let ctx = SessionContext::new_with_state(cluster_state);
    let physical = ctx
        .execute_logical_plan(plan)
        .await?
        .create_physical_plan()
        .await?;
    Ok((ctx, physical, cluster.scheduler_url.clone()))
}

/// Starts a physical plan made by [`cluster_physical`]: submits its job.
fn cluster_stream(
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

fn external(e: crate::error::SchedulerError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

struct ClusterStream {
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
    type Item = datafusion::error::Result<datafusion::arrow::record_batch::RecordBatch>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use futures::StreamExt;
        let mut polled = self.inner.poll_next_unpin(cx);
        // The connection to the scheduler broke (it restarted, or the
        // network did): say so, rather than only the transport's words.
        if let std::task::Poll::Ready(Some(Err(e))) = &polled {
            let text = e.to_string();
            if text.contains("h2 protocol error") || text.contains("transport error") {
                polled = std::task::Poll::Ready(Some(Err(DataFusionError::Execution(format!(
                    "lost the connection to the Ballista scheduler at {} while the query ran \
                     (it restarted or cannot be reached); run the query again: {text}",
                    self.scheduler_url
                )))));
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

/// Whether a logical plan can only run in this process: it is not a query
/// (DDL, SET, EXPLAIN), scans nothing, or reads only system tables.
fn local_only(plan: &LogicalPlan) -> Option<&'static str> {
    match plan {
        LogicalPlan::Ddl(_)
        | LogicalPlan::Statement(_)
        | LogicalPlan::Dml(_)
        | LogicalPlan::Copy(_)
        | LogicalPlan::Explain(_)
        | LogicalPlan::Analyze(_)
        | LogicalPlan::DescribeTable(_) => return Some("not a query"),
        _ => {}
    }
    let mut scans = 0;
    let mut system = false;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            scans += 1;
            if matches!(
                scan.table_name.schema(),
                Some("information_schema" | "pg_catalog")
            ) {
                system = true;
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if scans == 0 {
        Some("scans no table")
    } else if system {
        Some("reads system tables")
    } else {
        None
    }
}

impl ClientSession {
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The DataFusion context of this session (its settings live here).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    fn options(&self) -> QuipuOptions {
        self.ctx
            .state()
            .config()
            .options()
            .extensions
            .get::<QuipuOptions>()
            .cloned()
            .unwrap_or_default()
    }

    /// Splits text into statements (`;`-separated).
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        crate::limits::check_sql_text(sql)?;
        let mut parser = DFParserBuilder::new(sql).build()?;
        Ok(parser.parse_statements()?.into_iter().collect())
    }

    /// Runs every statement in `sql` and returns their outputs in order.
    /// An empty text is an error.
    pub async fn sql(&self, sql: &str) -> Result<Vec<QueryOutput>> {
        let statements = self.parse(sql)?;
        if statements.is_empty() {
            return Err(DataFusionError::Plan("empty query".into()).into());
        }
        let mut out = Vec::with_capacity(statements.len());
        for statement in statements {
            out.push(self.run(statement).await?);
        }
        Ok(out)
    }

    /// Runs exactly one statement.
    pub async fn sql_one(&self, sql: &str) -> Result<QueryOutput> {
        let mut statements = self.parse(sql)?;
        match statements.len() {
            1 => self.run(statements.remove(0)).await,
            0 => Err(DataFusionError::Plan("empty query".into()).into()),
            n => Err(DataFusionError::Plan(format!("expected one statement, got {n}")).into()),
        }
    }

    /// Plans a statement once, then runs it locally or on the cluster.
    /// Every log line of the statement carries its `query_id`; the
    /// process's metrics count it (docs/configuration.md, Metrics).
    pub async fn run(&self, statement: Statement) -> Result<QueryOutput> {
        one(self.start(Work::Statement(statement), false).await?)
    }

    /// Turns a statement into a logical plan with this session's settings
    /// (prepared statements: plan once, bind parameters, run many times).
    /// The plan is weighed against the statement limits
    /// (`crate::limits::check_plan`) before anything analyses it, and its
    /// `SIMILAR TO`s are given PostgreSQL's meaning (`crate::similar`), as
    /// are the formats of `to_char` and `to_date` (`crate::formats`).
    pub async fn plan(&self, statement: Statement) -> Result<LogicalPlan> {
        let statement = quipu_connectors::dialect::syntax::fix(statement)?;
        let statement = quipu_connectors::dialect::syntax::mark_extracts(statement);
        let plan = self.ctx.state().statement_to_plan(statement).await?;
        crate::limits::check_plan(&plan)?;
        let plan = crate::similar::rewrite(plan)?;
        // `to_char` / `to_date` / `to_timestamp` read PostgreSQL's template
        // patterns, not chrono's (`crate::formats`).
        let plan = crate::formats::rewrite(plan)?;
        // Casts to integers and float `round`s round as PostgreSQL's do
        // (`crate::rounding`).
        let plan = crate::rounding::rewrite(plan)?;
        // Timestamps and float8s cast to text print as PostgreSQL's
        // (`crate::text_forms`).
        let plan = crate::text_forms::rewrite(plan)?;
        // `extract` is a numeric, `date_part` a double, the seconds of a
        // timestamp keep their fraction (`crate::extract`).
        Ok(crate::extract::rewrite(plan)?)
    }

    /// Runs a logical plan made by [`ClientSession::plan`] (its parameters
    /// bound), exactly as [`ClientSession::run`] runs a statement.
    pub async fn run_plan(&self, plan: LogicalPlan) -> Result<QueryOutput> {
        one(self.start(Work::Plan(plan), false).await?)
    }

    /// Like [`ClientSession::run_plan`], but a plan that runs in-process
    /// with independent output partitions (scans, filters, projections:
    /// nothing that moves rows between partitions) comes back as one
    /// output per partition, so a client that reads several streams at
    /// once (Flight SQL endpoints) gets them in parallel. Together they
    /// hold the rows of the query, in no particular order between them.
    /// Otherwise there is one output.
    pub async fn run_plan_partitions(&self, plan: LogicalPlan) -> Result<Vec<QueryOutput>> {
        self.start(Work::Plan(plan), true).await
    }

    async fn start(&self, work: Work, split: bool) -> Result<Vec<QueryOutput>> {
        let planned = self.prepare(work, split).await?;
        self.launch(planned).await
    }

    /// Plans a statement (or a bound plan) as far as it goes without
    /// starting anything: the SQL is planned, checked against the user's
    /// grants, optimized and planned physically, and where it will run is
    /// decided. This is the CPU work of a statement; a front door runs it
    /// where a cancel or `statement_timeout` can stop waiting for it, and
    /// [`ClientSession::launch`] then starts the plan where the statement's
    /// streams are owned.
    pub async fn prepare(&self, work: Work, split: bool) -> Result<Planned> {
        let span = tracing::info_span!("start", query_id = next_query_id());
        let started = Instant::now();
        let step = async {
            let plan = match work {
                Work::Statement(statement) => self.plan(statement).await?,
                Work::Plan(plan) => plan,
            };
            self.decide(plan, started, split).await
        }
        .instrument(span.clone())
        .await;
        match step {
            Ok(step) => Ok(Planned {
                step,
                started,
                span,
            }),
            Err(e) => Err(failed_to_start(&span, e)),
        }
    }

    /// Starts a statement planned by [`ClientSession::prepare`]: the
    /// catalog statements act, the scans and cluster job begin, and the
    /// output streams are returned.
    pub async fn launch(&self, planned: Planned) -> Result<Vec<QueryOutput>> {
        let Planned {
            step,
            started,
            span,
        } = planned;
        let m = quipu_connectors::metrics::metrics();
        match self.start_step(step).instrument(span.clone()).await {
            Ok(outs) => {
                let label = outs[0].executed_on.to_string();
                m.queries.with_label_values(&[&label]).inc();
                span.in_scope(|| {
                    tracing::debug!(executed_on = %label, reason = %outs[0].reason, "query started")
                });
                let open = Arc::new(std::sync::atomic::AtomicUsize::new(outs.len()));
                Ok(outs
                    .into_iter()
                    .map(|out| QueryOutput {
                        stream: timed(out.stream, label.clone(), started, open.clone()),
                        ..out
                    })
                    .collect())
            }
            Err(e) => Err(failed_to_start(&span, e)),
        }
    }

    /// Refuses a plan this session's user may not run: it reads a source
    /// not granted, or changes the catalog without the admin role.
    pub fn check(&self, plan: &LogicalPlan) -> Result<()> {
        let state = self.ctx.state();
        let catalog = &state.config_options().catalog;
        if let Some(source) =
            self.access
                .first_denied(plan, &catalog.default_catalog, &catalog.default_schema)
        {
            return Err(crate::error::SchedulerError::PermissionDenied(source));
        }
        if !self.access.is_admin()
            && matches!(
                plan,
                LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_)
            )
        {
            return Err(crate::error::SchedulerError::NotAdmin(
                plan.display().to_string(),
            ));
        }
        // DataFusion would write a lake table's files in its own naming
        // (`.json` into an `.ndjson` table, never read back): refused until
        // Quipu writes to the lake itself.
        if let LogicalPlan::Dml(dml) = plan {
            return Err(DataFusionError::NotImplemented(format!(
                "{} into {} is not supported: Quipu reads its sources and does not write to them",
                dml.op, dml.table_name
            ))
            .into());
        }
        Ok(())
    }

    /// Checks a plan and decides where it runs, planning it physically
    /// (locally or for the cluster) but starting nothing.
    async fn decide(&self, plan: LogicalPlan, started: Instant, split: bool) -> Result<Step> {
        self.check(&plan)?;
        if let Some(why) = local_only(&plan) {
            return Ok(Step::Logical(plan, why.to_string()));
        }
        let opts = self.options();
        if opts.execution == ExecutionMode::Cluster {
            let reason = "quipu.execution = 'cluster'".to_string();
            return self.plan_for_cluster(plan, reason).await;
        }
        // Local physical planning is also the estimate: it lists the files
        // left after partition pruning, with their sizes and row counts.
        // Live-source scans count for nothing: their work is done by the
        // source, whatever runs the rest.
        let df = self.ctx.execute_logical_plan(plan.clone()).await?;
        let physical = df.create_physical_plan().await?;
        let est = estimate(&physical);
        let scan = format!(
            "{} bytes, {} rows in {} files",
            est.bytes, est.rows, est.files
        );
        let large = est.bytes >= opts.cluster_min_bytes || est.rows >= opts.cluster_min_rows;
        tracing::debug!(%scan, planning_ms = started.elapsed().as_millis() as u64, "query planned");
        if opts.execution == ExecutionMode::Auto && large && !forwards_rows(&physical) {
            return self
                .plan_for_cluster(plan, format!("large scan: {scan}"))
                .await;
        }
        let reason = match opts.execution {
            ExecutionMode::Local => "quipu.execution = 'local'".to_string(),
            _ if large => format!("rows only forwarded to the client: {scan}"),
            _ => format!("small scan: {scan}"),
        };
        Ok(Step::Local {
            physical,
            reason,
            split,
        })
    }

    async fn start_step(&self, step: Step) -> Result<Vec<QueryOutput>> {
        match step {
            Step::Logical(plan, reason) => Ok(vec![self.run_local_logical(plan, reason).await?]),
            Step::Cluster {
                ctx,
                physical,
                scheduler_url,
                reason,
                plan,
            } => {
                tracing::debug!(%reason, "running on the cluster");
                let first = cluster_stream(&ctx, physical, scheduler_url)?;
                let schema = first.inner.schema();
                let (engine, session_ctx) = (self.engine.clone(), self.ctx.clone());
                let span = tracing::Span::current();
                // A job refused by `crate::rerun::RerunGuard` (it re-ran
                // work after a lost executor) fails before its first row:
                // the query then runs once more as a new job.
                let stream = futures::stream::once(async move {
                    let mut first = first;
                    let next: Pin<Box<dyn Stream<Item = DfResult<RecordBatch>> + Send>> =
                        match first.next().await {
                            Some(Err(e)) if crate::rerun::is_rerun_refusal(&e) => {
                                span.in_scope(|| {
                                    tracing::warn!(error = %e, "running the query again as a new Ballista job")
                                });
                                drop(first);
                                let (ctx, physical, url) =
                                    cluster_physical(&engine, &session_ctx, plan)
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
                Ok(vec![QueryOutput {
                    schema: schema.clone(),
                    stream: Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
                    executed_on: ExecutedOn::Cluster,
                    reason,
                }])
            }
            Step::Local {
                physical,
                reason,
                split,
            } => {
                let schema = physical.schema();
                if split && let Some((top, n)) = independent_partitions(&physical) {
                    let task_ctx = self.ctx.task_ctx();
                    return (0..n)
                        .map(|i| {
                            Ok(QueryOutput {
                                schema: schema.clone(),
                                stream: top.execute(i, task_ctx.clone())?,
                                executed_on: ExecutedOn::Local,
                                reason: format!("{reason}; {n} partitions read separately"),
                            })
                        })
                        .collect();
                }
                let stream = execute_stream(physical, self.ctx.task_ctx())?;
                Ok(vec![QueryOutput {
                    schema,
                    stream,
                    executed_on: ExecutedOn::Local,
                    reason,
                }])
            }
        }
    }

    /// Plans the logical plan for the Ballista cluster (the job is
    /// submitted when the plan is started).
    async fn plan_for_cluster(&self, plan: LogicalPlan, reason: String) -> Result<Step> {
        let (ctx, physical, scheduler_url) =
            cluster_physical(&self.engine, &self.ctx, plan.clone()).await?;
        Ok(Step::Cluster {
            ctx,
            physical,
            scheduler_url,
            reason,
            plan,
        })
    }

    async fn run_local_logical(&self, plan: LogicalPlan, reason: String) -> Result<QueryOutput> {
        let df = self.ctx.execute_logical_plan(plan).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let stream = df.execute_stream().await?;
        Ok(QueryOutput {
            schema,
            stream,
            executed_on: ExecutedOn::Local,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Parquet file split into byte ranges (one per partition) is one
    /// file for the estimate, with its rows counted once.
    #[tokio::test]
    async fn a_file_split_into_ranges_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let ctx = SessionContext::new();
        ctx.sql(&format!(
            "COPY (SELECT value AS v FROM range(200000)) TO '{}' STORED AS PARQUET",
            path.display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        let config = datafusion::prelude::SessionConfig::new()
            .with_target_partitions(4)
            .with_repartition_file_min_size(1);
        let ctx = SessionContext::new_with_config(config);
        ctx.register_parquet("t", path.to_str().unwrap(), Default::default())
            .await
            .unwrap();
        let plan = ctx
            .sql("SELECT sum(v) FROM t")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut ranges = 0;
        let _ = plan.apply(|node| {
            if let Some(ds) = node.downcast_ref::<DataSourceExec>()
                && let Some(scan) = ds.data_source().downcast_ref::<FileScanConfig>()
            {
                ranges += scan.file_groups.iter().map(|g| g.len()).sum::<usize>();
            }
            Ok(TreeNodeRecursion::Continue)
        });
        assert!(ranges > 1, "the file was not split: {ranges} range(s)");
        let est = estimate(&plan);
        assert_eq!(est.files, 1);
        assert_eq!(est.rows, 200_000);
        assert_eq!(est.bytes, std::fs::metadata(&path).unwrap().len());
        assert!(!forwards_rows(&plan), "an aggregate is work to spread");
        let read = ctx
            .sql("SELECT v FROM t LIMIT 10")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        assert!(forwards_rows(&read));
    }
}
