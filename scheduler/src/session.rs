//! One client's session: its own settings (`SET` is per client), the
//! grants of its user, and the way every statement goes: parsed under the
//! statement limits, planned once into a logical plan, checked against the
//! grants, placed in this process or on the cluster
//! ([`crate::placement`]), and started as result streams
//! ([`crate::streams`]). Both paths start from the same logical plan, so
//! they agree on results.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::TableReference;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParserBuilder, Statement};
use quipu_connectors::dialect::datetime_input::DateOrder;
use quipu_connectors::{Access, QuipuOptions};
use tracing::Instrument;

use crate::engine::Engine;
use crate::error::{Result, SchedulerError};
use crate::placement::{self, Placement};
use crate::streams::{ExecutedOn, QueryOutput, one};

/// What a session runs: SQL planned here, or a plan made earlier by
/// [`ClientSession::plan`] with its parameters bound.
pub enum Work {
    Statement(Statement),
    /// A statement with settings of its own (`crate::hints`).
    Hinted(Statement, crate::hints::Hints),
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
    /// A statement about a materialized view (`crate::cache`).
    Cache(crate::cache::CacheStatement),
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
fn failed_to_start(span: &tracing::Span, e: SchedulerError) -> SchedulerError {
    quipu_connectors::metrics::metrics()
        .query_errors
        .with_label_values(&["plan"])
        .inc();
    span.in_scope(|| tracing::debug!(error = %e, "query failed to start"));
    e
}

/// A planning error as [`SchedulerError::TableNotFound`] when the planner
/// stopped at a table the session cannot see (absent, or in a source its
/// user is not granted, which is absent for them): the first of `named`
/// whose catalog, schema or table does not exist. Any other error stays
/// as it is.
fn missing_table(
    state: &SessionState,
    named: Vec<TableReference>,
    e: DataFusionError,
) -> SchedulerError {
    if !matches!(e.find_root(), DataFusionError::Plan(_)) {
        return e.into();
    }
    let defaults = &state.config_options().catalog;
    // A table function's name (`forecast(...)`) is among the references
    // but is no table: its own error (a bad argument) stays what it is.
    let missing = named
        .into_iter()
        .filter(|name| {
            !(name.schema().is_none() && state.table_functions().contains_key(name.table()))
        })
        .find(|name| {
            let resolved = name
                .clone()
                .resolve(&defaults.default_catalog, &defaults.default_schema);
            !state
                .schema_for_ref(name.clone())
                .is_ok_and(|schema| schema.table_exist(&resolved.table))
        });
    match missing {
        Some(table) => SchedulerError::TableNotFound {
            table: table.to_string(),
            source: e,
        },
        None => e.into(),
    }
}

/// The `quipu.` settings of a session state.
pub(crate) fn options_of(state: &SessionState) -> QuipuOptions {
    state
        .config()
        .options()
        .extensions
        .get::<QuipuOptions>()
        .cloned()
        .unwrap_or_default()
}

/// One client's session: its settings and the statements it runs.
pub struct ClientSession {
    engine: Arc<Engine>,
    ctx: SessionContext,
    access: Access,
    /// Whether a result carries the places of its numerics in hidden
    /// columns (`crate::scales`; the PostgreSQL front door prints them).
    numeric_places: bool,
}

/// How DataFusion 55 refuses two select items it names alike.
const UNIQUE_NAMES: &str = "Projections require unique expression names";

/// Whose names a statement's select list gives: a result's, which
/// PostgreSQL lets repeat (`syntax::distinct_result_names`), or a
/// definition's, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    Result,
    AsWritten,
}

impl ClientSession {
    pub(crate) fn new(engine: Arc<Engine>, state: SessionState, access: Access) -> Self {
        ClientSession {
            engine,
            ctx: SessionContext::new_with_state(state),
            access,
            numeric_places: false,
        }
    }

    /// The session with its results' numerics' places in hidden columns
    /// (`crate::scales`), for a front door that prints them.
    pub fn with_numeric_places(mut self) -> Self {
        self.numeric_places = true;
        self
    }
}

/// A process-unique id for one statement, in its log lines.
fn next_query_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A statement's plan given PostgreSQL's meaning where DataFusion's
/// differs (issue 22), in the session's time zone `zone`. A query is
/// planned through it, and so is a materialized view's defining query
/// when the cache is matched against a query (`crate::cache::rewrite`):
/// a view read by a query is rewritten with the query.
pub(crate) fn postgresql_meaning(
    plan: LogicalPlan,
    zone: Option<&str>,
    order: DateOrder,
) -> Result<LogicalPlan, DataFusionError> {
    // Values turned into text print as PostgreSQL's
    // (`crate::text_forms`); before the zones, so a `timestamptz` is
    // printed in the session's.
    let plan = crate::text_forms::rewrite(plan)?;
    // Parameters beside arrays are arrays (asyncpg encodes them so).
    let plan = quipu_connectors::dialect::array_sets::array_placeholders(plan)?;
    // `timestamptz` is truncated, cast, printed and compared in the
    // session's time zone (`crate::zones`); before the rewrites below,
    // so they see it.
    // Date text is read in the session's `DateStyle` order.
    let plan = crate::zones::rewrite(plan, zone, order)?;
    let plan = crate::similar::rewrite(plan)?;
    // `to_date` / `to_timestamp` read PostgreSQL's template
    // patterns, not chrono's (`crate::formats`).
    let plan = crate::formats::rewrite(plan)?;
    // Date arithmetic and numeric rounding answer PostgreSQL's types
    // (`crate::pg_types`).
    let plan = crate::pg_types::rewrite(plan)?;
    // Intervals group by their span (`crate::interval_groups`).
    let plan = crate::interval_groups::rewrite(plan)?;
    // Casts to integers and float `round`s round as PostgreSQL's do
    // (`crate::rounding`).
    let plan = crate::rounding::rewrite(plan)?;
    // `extract` is a numeric, `date_part` a double, the seconds of a
    // timestamp keep their fraction (`crate::extract`).
    let plan = crate::extract::rewrite(plan)?;
    // A `date_part`, a double only now, turned into text prints as
    // PostgreSQL's (`2024`, not `2024.0`).
    crate::text_forms::rewrite(plan)
}

/// `SET DateStyle = '...'`, which DataFusion has no setting for ("could
/// not find config namespace"), as PostgreSQL reads it: the order it names
/// set as `quipu.date_order` (as DataFusion sets `TimeZone` as
/// `datafusion.execution.time_zone`), for the engine's own clients (the
/// Flight SQL door, `quipu sql`); the PostgreSQL door answers it itself.
fn date_style(plan: LogicalPlan, now: DateOrder) -> Result<LogicalPlan, DataFusionError> {
    use datafusion::logical_expr::{SetVariable, Statement};
    match plan {
        LogicalPlan::Statement(Statement::SetVariable(SetVariable { variable, value }))
            if variable.eq_ignore_ascii_case("datestyle") =>
        {
            let order = quipu_connectors::dialect::datetime_input::date_style(&value, now)
                .map_err(|e| {
                    DataFusionError::Configuration(format!(
                        "invalid value for parameter \"DateStyle\": \"{value}\": {e}"
                    ))
                })?;
            Ok(LogicalPlan::Statement(Statement::SetVariable(
                SetVariable {
                    variable: "quipu.date_order".into(),
                    value: order.name().into(),
                },
            )))
        }
        other => Ok(other),
    }
}

/// Runs the analyzer on a plan (views expanded, types coerced, Quipu's own
/// analyzer rules), as the optimizer will before anything else.
pub(crate) fn analyzed(
    state: &SessionState,
    plan: LogicalPlan,
) -> Result<LogicalPlan, DataFusionError> {
    state
        .analyzer()
        .execute_and_check(plan, state.config_options(), |_, _| {})
}

impl ClientSession {
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The DataFusion context of this session (its settings live here).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// `plan` after this session's analyzer ([`analyzed`]): the types its
    /// rows will have.
    pub fn analyze(&self, plan: LogicalPlan) -> Result<LogicalPlan, DataFusionError> {
        analyzed(&self.ctx.state(), plan)
    }

    fn options(&self) -> QuipuOptions {
        options_of(&self.ctx.state())
    }

    /// Splits text into statements (`;`-separated). Their `/*+ */` hints
    /// (`crate::hints`) are checked here; [`ClientSession::parse_hinted`]
    /// returns them.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        Ok(self
            .parse_hinted(sql)?
            .into_iter()
            .map(|(s, _)| s)
            .collect())
    }

    /// [`ClientSession::parse`], each statement with its hints.
    pub fn parse_hinted(&self, sql: &str) -> Result<Vec<(Statement, crate::hints::Hints)>> {
        crate::limits::check_sql_text(sql)?;
        let hints = crate::hints::of_text(sql)?;
        let sql = crate::sugar::desugar(sql);
        let mut parser = DFParserBuilder::new(&*sql)
            .with_dialect(&quipu_connectors::session::SQL_DIALECT)
            .build()?;
        let statements: Vec<Statement> = parser.parse_statements()?.into_iter().collect();
        Ok(crate::hints::zip(statements, hints))
    }

    /// Runs every statement in `sql` and returns their outputs in order.
    /// An empty text is an error.
    pub async fn sql(&self, sql: &str) -> Result<Vec<QueryOutput>> {
        let statements = self.parse_hinted(sql)?;
        if statements.is_empty() {
            return Err(DataFusionError::Plan("empty query".into()).into());
        }
        let mut out = Vec::with_capacity(statements.len());
        for (statement, hints) in statements {
            out.push(one(self
                .start(Work::Hinted(statement, hints), false)
                .await?)?);
        }
        Ok(out)
    }

    /// Runs exactly one statement.
    pub async fn sql_one(&self, sql: &str) -> Result<QueryOutput> {
        let mut statements = self.parse_hinted(sql)?;
        match statements.len() {
            1 => {
                let (statement, hints) = statements.remove(0);
                one(self.start(Work::Hinted(statement, hints), false).await?)
            }
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
    /// are the formats of `to_date` and `to_timestamp` (`crate::formats`).
    pub async fn plan(&self, statement: Statement) -> Result<LogicalPlan> {
        self.plan_hinted(statement, &crate::hints::Hints::default())
            .await
    }

    /// [`ClientSession::plan`] with the statement's own settings
    /// (`crate::hints`) over the session's.
    pub async fn plan_hinted(
        &self,
        statement: Statement,
        hints: &crate::hints::Hints,
    ) -> Result<LogicalPlan> {
        self.plan_as(statement, hints, Names::Result).await
    }

    /// The plan of a materialized view's query, whose select list names
    /// its columns: as written, where [`ClientSession::plan`] gives
    /// repeated result names names of their own.
    pub async fn plan_definition(&self, statement: Statement) -> Result<LogicalPlan> {
        self.plan_as(statement, &crate::hints::Hints::default(), Names::AsWritten)
            .await
    }

    async fn plan_as(
        &self,
        statement: Statement,
        hints: &crate::hints::Hints,
        names: Names,
    ) -> Result<LogicalPlan> {
        use crate::cache::rewrite::{Outcome, apply};
        let state = self.ctx.state();
        let mut opts = options_of(&state);
        hints.apply(&mut opts)?;
        let mut waited = false;
        loop {
            let plan = self.plan_live(statement.clone(), names).await?;
            match apply(&self.engine, &state, &self.access, plan, waited, &opts).await? {
                Outcome::Unchanged(plan) | Outcome::Rewritten(plan) => {
                    // A query's shown numerics exact (not a materialized
                    // view's stored columns, nor the plans the cache
                    // matched).
                    let plan = match names {
                        Names::Result => crate::rounding::exact_shown(plan)?,
                        Names::AsWritten => plan,
                    };
                    return match self.numeric_places && names == Names::Result {
                        true => Ok(crate::scales::annotate(plan)?),
                        false => Ok(plan),
                    };
                }
                // A stale cache was refreshed for this query (`stale_cache
                // = 'wait'`): plan it again over the new generation, once.
                Outcome::Refreshed if !waited => waited = true,
                Outcome::Refreshed => {
                    return Err(DataFusionError::Execution(
                        "a materialized view this query reads went stale again while it was refreshed"
                            .into(),
                    )
                    .into());
                }
            }
        }
    }

    /// [`ClientSession::plan`] without the caches.
    async fn plan_live(&self, statement: Statement, names: Names) -> Result<LogicalPlan> {
        let order = self.options().date_order;
        let mut statement = quipu_connectors::dialect::syntax::fix(statement, order)?;
        if names == Names::Result {
            statement = quipu_connectors::dialect::syntax::distinct_result_names(statement);
        }
        let statement = quipu_connectors::dialect::syntax::mark_extracts(statement);
        // `CREATE TABLE lake.s.t WITH (partition_by = ...) AS`: DataFusion
        // refuses table options, so Quipu's are taken off first.
        let (statement, write_options) = crate::lake_write::take_options(statement)?;
        let state = self.ctx.state();
        // The tables it names, to tell "no such table" from other planning
        // errors by the catalog rather than by the error's words.
        let named = state.resolve_table_references(&statement).ok();
        let insert = crate::lake_write::insert_shape(&statement);
        let again = statement.clone();
        let planned = match state.statement_to_plan(statement).await {
            // Two different items DataFusion names alike (`position('a'
            // IN s), strpos(s, 'a')`): once more with a name for each.
            Err(DataFusionError::Plan(m))
                if names == Names::Result && m.starts_with(UNIQUE_NAMES) =>
            {
                let named = quipu_connectors::dialect::syntax::name_every_item(again);
                state.statement_to_plan(named).await
            }
            // `sum(x), sum(CAST(x AS numeric))`: DataFusion names both
            // aggregates `sum(x)`; once more with the casts labelled.
            Err(DataFusionError::SchemaError(e, _))
                if matches!(
                    *e,
                    datafusion::common::SchemaError::DuplicateUnqualifiedField { .. }
                ) =>
            {
                let labelled = quipu_connectors::dialect::syntax::label_casts(again);
                state.statement_to_plan(labelled).await
            }
            other => other,
        };
        let plan = match planned.and_then(quipu_connectors::dialect::set_all::rewrite) {
            Ok(plan) => plan,
            Err(e) => {
                if let Some(better) =
                    crate::lake_write::column_count_error(&state, insert, &e).await
                {
                    return Err(better.into());
                }
                return Err(missing_table(&state, named.unwrap_or_default(), e));
            }
        };
        let plan = crate::lake_write::ctas_into_source(&state, plan, write_options)?;
        let plan = date_style(plan, order)?;
        crate::limits::check_plan(&plan)?;
        let zone = state.config_options().execution.time_zone.clone();
        Ok(postgresql_meaning(plan, zone.as_deref(), order)?)
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
            let (statement, hints) = match work {
                Work::Statement(statement) => (statement, crate::hints::Hints::default()),
                Work::Hinted(statement, hints) => (statement, hints),
                Work::Plan(plan) => return self.decide(plan, started, split).await,
            };
            if let Some(cache) = crate::cache::statement::of(&statement) {
                let cache = cache?;
                if !self.access.is_admin() {
                    return Err(SchedulerError::NotAdmin(cache.tag().to_string()));
                }
                return Ok(Step::Cache(cache));
            }
            let plan = self.plan_hinted(statement, &hints).await?;
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
                        stream: crate::streams::timed(
                            out.stream,
                            label.clone(),
                            started,
                            open.clone(),
                        ),
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
            return Err(SchedulerError::PermissionDenied(source));
        }
        if !self.access.is_admin()
            && matches!(
                plan,
                LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_)
            )
        {
            return Err(SchedulerError::NotAdmin(plan.display().to_string()));
        }
        // Writes go to the lake only, as Parquet, by Quipu's own writer
        // (`crate::lake_write`): refused here, before anything runs, when
        // they name a live source, a view, a CSV table or an UPDATE.
        // EXPLAIN ANALYZE would run DataFusion's own write, straight into
        // the table's folder.
        if let LogicalPlan::Analyze(a) = plan
            && matches!(a.input.as_ref(), LogicalPlan::Dml(_) | LogicalPlan::Ddl(_))
        {
            return Err(DataFusionError::NotImplemented(
                "EXPLAIN ANALYZE of a write or DDL statement is not supported: run the statement itself".into(),
            )
            .into());
        }
        if let LogicalPlan::Dml(dml) = plan {
            let (table, op) = crate::lake_write::write_of(&state, dml)?;
            self.engine.session().check_lake_write(&table, &op)?;
        }
        Ok(())
    }

    /// Checks the queries of the `forecast()` / `backtest()` calls a plan
    /// reads (through views too) as if they were run directly: they are
    /// planned by this session and go through [`ClientSession::check`].
    /// (Their rows are read when the outer plan is made, by the session
    /// that makes it: on the cluster path, the scheduler's, which has every
    /// grant; hence the check here, on the client's side.)
    pub async fn check_forecast_queries(&self, plan: &LogicalPlan, depth: usize) -> Result<()> {
        for sql in quipu_connectors::forecast::inner_queries(plan) {
            if depth > 8 {
                return Err(
                    DataFusionError::Plan("forecast() calls nest more than 8 deep".into()).into(),
                );
            }
            let statement = self.parse(&sql)?;
            let [statement] = <[Statement; 1]>::try_from(statement).map_err(|s| {
                DataFusionError::Plan(format!(
                    "forecast(): its query must be one statement, got {}",
                    s.len()
                ))
            })?;
            let inner = self.plan(statement).await?;
            self.check(&inner)?;
            Box::pin(self.check_forecast_queries(&inner, depth + 1)).await?;
        }
        Ok(())
    }

    /// Checks a plan and decides where it runs ([`crate::placement`]),
    /// planning it physically (locally or for the cluster) but starting
    /// nothing.
    async fn decide(&self, plan: LogicalPlan, started: Instant, split: bool) -> Result<Step> {
        self.check(&plan)?;
        self.check_forecast_queries(&plan, 0).await?;
        if let Some(why) = placement::local_only(&plan) {
            return Ok(Step::Logical(plan, why.to_string()));
        }
        let opts = self.options();
        if let Some(Placement::Cluster(reason)) = placement::forced(&opts) {
            return self.plan_for_cluster(plan, reason).await;
        }
        // Local physical planning is also the estimate: it lists the files
        // left after partition pruning, with their sizes and row counts.
        // Live-source scans count for nothing: their work is done by the
        // source, whatever runs the rest.
        let df = self.ctx.execute_logical_plan(plan.clone()).await?;
        let physical = df.create_physical_plan().await?;
        let est = placement::estimate(&physical);
        tracing::debug!(scan = %est, planning_ms = started.elapsed().as_millis() as u64, "query planned");
        match placement::place(&opts, &est, placement::forwards_rows(&physical)) {
            Placement::Cluster(reason) => self.plan_for_cluster(plan, reason).await,
            Placement::Local(reason) => Ok(Step::Local {
                physical,
                reason,
                split,
            }),
        }
    }

    async fn start_step(&self, step: Step) -> Result<Vec<QueryOutput>> {
        match step {
            Step::Logical(plan, reason) => Ok(vec![self.run_local_logical(plan, reason).await?]),
            Step::Cache(statement) => {
                let tag = statement.tag();
                crate::cache::execute(&self.engine, self, statement).await?;
                let schema: SchemaRef = Arc::new(datafusion::arrow::datatypes::Schema::empty());
                Ok(vec![QueryOutput {
                    schema: schema.clone(),
                    stream: Box::pin(
                        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                            schema,
                            futures::stream::empty(),
                        ),
                    ),
                    executed_on: ExecutedOn::Local,
                    reason: tag.to_string(),
                }])
            }
            Step::Cluster {
                ctx,
                physical,
                scheduler_url,
                reason,
                plan,
            } => {
                tracing::debug!(%reason, "running on the cluster");
                let first = crate::streams::cluster_stream(&ctx, physical, scheduler_url)?;
                Ok(vec![crate::streams::rerunning(
                    first,
                    self.engine.clone(),
                    self.ctx.clone(),
                    plan,
                    reason,
                )])
            }
            Step::Local {
                physical,
                reason,
                split,
            } => {
                let schema = physical.schema();
                if split && let Some((top, n)) = placement::independent_partitions(&physical) {
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
        let (ctx, physical, scheduler_url) = self
            .engine
            .cluster_physical(&self.ctx, plan.clone())
            .await?;
        Ok(Step::Cluster {
            ctx,
            physical,
            scheduler_url,
            reason,
            plan,
        })
    }

    async fn run_local_logical(&self, plan: LogicalPlan, reason: String) -> Result<QueryOutput> {
        if let LogicalPlan::Dml(dml) = &plan {
            return crate::lake_write::run(self.engine.session(), &self.ctx.state(), dml).await;
        }
        let df = self.ctx.execute_logical_plan(plan).await?;
        let stream = df.execute_stream().await?;
        // The rows' schema, not the DataFrame's: that one is the plan's
        // before analysis, whose types coercion may still change (`SELECT
        // CASE WHEN true THEN 1 ELSE 2.5 END` was described as a bigint
        // and sent decimals, which the front door could not encode).
        let schema: SchemaRef = stream.schema();
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

    async fn planning_error(sql: &str) -> SchedulerError {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (a BIGINT) AS VALUES (1)")
            .await
            .unwrap();
        let state = ctx.state();
        let statement = state
            .sql_to_statement(sql, &datafusion::config::Dialect::PostgreSQL)
            .unwrap();
        let named = state.resolve_table_references(&statement).unwrap();
        let e = state.statement_to_plan(statement).await.unwrap_err();
        missing_table(&state, named, e)
    }

    #[tokio::test]
    async fn a_table_the_catalog_lacks_is_told_by_the_catalog() {
        match planning_error("SELECT a FROM t JOIN nope ON true").await {
            SchedulerError::TableNotFound { table, source } => {
                assert_eq!(table, "nope");
                // The message stays the planner's.
                assert!(source.to_string().contains("nope"), "{source}");
            }
            other => panic!("expected TableNotFound, got {other:?}"),
        }
        assert!(matches!(
            planning_error("SELECT * FROM other_catalog.public.t").await,
            SchedulerError::TableNotFound { .. }
        ));
    }

    #[tokio::test]
    async fn other_planning_errors_stay_what_they_are() {
        // Every table exists: an unknown column or function is not a
        // missing table, whatever the words of the error.
        for sql in ["SELECT b FROM t", "SELECT no_such_function(a) FROM t"] {
            let e = planning_error(sql).await;
            assert!(matches!(e, SchedulerError::Query(_)), "{sql}: {e:?}");
        }
    }
}
