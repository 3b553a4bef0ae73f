//! `PgScanExec`: runs remote queries as
//! `COPY (SELECT ...) TO STDOUT (FORMAT binary)`, in one shared snapshot
//! when a table is read in several ranges.

use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use quipu_catalog::SourceDef;
use tokio_postgres::NoTls;

use crate::error::Result;

use datafusion::arrow::record_batch::RecordBatch;

use super::{
    copy::CopyDecoder,
    pool::{MAX_CONNECTIONS, PgPools, bad, connect, pg_reason},
    sql,
};

/// Runs one remote query on one PostgreSQL source. The plan holds the source
/// name and the SQL, never credentials.
#[derive(Debug)]
pub struct PgScanExec {
    source: SourceDef,
    pools: Arc<PgPools>,
    schema: SchemaRef,
    /// One remote query per partition (ranges of the primary key), or one.
    sqls: Vec<String>,
    /// All queries run concurrently inside one output partition (on the
    /// Ballista cluster: see `PgTable::scan`).
    merged: bool,
    /// The connections of a multi-range scan, each in a transaction on one
    /// exported snapshot, made when the first range starts.
    snapshot: Arc<tokio::sync::OnceCell<Option<SharedSnapshot>>>,
    /// Join-key filters from hash joins above (semi-join pushdown), read
    /// when the scan starts.
    dynamic: Vec<Arc<dyn PhysicalExpr>>,
    /// Every decimal the query returns must fit its Arrow type exactly: it
    /// is a table's column, or computed from them without division. A
    /// value with more digits means a column changed at the source, and is
    /// an error rather than a rounded value. (Otherwise, a pushed query's
    /// `avg` say, decimals are cut to the scale DataFusion gives them, as
    /// DataFusion would.)
    exact_decimals: bool,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl PgScanExec {
    pub fn new(source: SourceDef, pools: Arc<PgPools>, schema: SchemaRef, sql: String) -> Self {
        Self::partitioned(source, pools, schema, vec![sql])
    }

    /// A scan whose partitions run one query each (on their own
    /// connections, so in parallel).
    pub fn partitioned(
        source: SourceDef,
        pools: Arc<PgPools>,
        schema: SchemaRef,
        sqls: Vec<String>,
    ) -> Self {
        assert!(!sqls.is_empty(), "a scan has at least one query");
        PgScanExec {
            source,
            pools,
            properties: crate::remote::scan_properties(&schema, sqls.len()),
            schema,
            sqls,
            merged: false,
            snapshot: Default::default(),
            dynamic: vec![],
            exact_decimals: false,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The same scan, its decimals checked to fit exactly (see
    /// `exact_decimals`).
    pub fn exact_decimals(mut self, yes: bool) -> Self {
        self.exact_decimals = yes;
        self
    }

    pub fn checks_decimals(&self) -> bool {
        self.exact_decimals
    }

    /// The same scan with its queries run concurrently in one output
    /// partition (`true`), or one partition per query.
    pub fn merged(mut self, merged: bool) -> Self {
        self.merged = merged && self.sqls.len() > 1;
        let partitions = if self.merged { 1 } else { self.sqls.len() };
        self.properties = crate::remote::scan_properties(&self.schema, partitions);
        self
    }

    pub fn is_merged(&self) -> bool {
        self.merged
    }

    pub fn dynamic_filters(&self) -> &[Arc<dyn PhysicalExpr>] {
        &self.dynamic
    }

    /// The same scan with other join-key filters.
    pub fn with_dynamic_filters(&self, dynamic: Vec<Arc<dyn PhysicalExpr>>) -> Self {
        let mut scan = PgScanExec::partitioned(
            self.source.clone(),
            self.pools.clone(),
            self.schema.clone(),
            self.sqls.clone(),
        )
        .merged(self.merged)
        .exact_decimals(self.exact_decimals);
        scan.dynamic = dynamic;
        scan.snapshot = self.snapshot.clone();
        scan
    }

    /// The remote query with the join keys known now, if any.
    fn sql_now(&self, partition: usize) -> String {
        let sql = &self.sqls[partition];
        let conditions = sql::join_keys_sql(&self.dynamic, &self.schema);
        if conditions.is_empty() {
            return sql.clone();
        }
        let columns: Vec<String> = (0..self.schema.fields().len())
            .map(|i| format!("\"c{i}\""))
            .collect();
        // A scan of no column (only its rows count; seen on the cluster)
        // has no column list: `AS f()` is a syntax error (seed 1 #3755 of
        // the long run, whose join key filter there was FALSE).
        let alias = if columns.is_empty() {
            "f".to_string()
        } else {
            format!("f({})", columns.join(", "))
        };
        format!(
            "SELECT * FROM ({sql}) AS {alias} WHERE {}",
            conditions.join(" AND ")
        )
    }

    /// The remote query of the first partition.
    pub fn sql(&self) -> &str {
        &self.sqls[0]
    }

    /// The remote query of every partition.
    pub fn sqls(&self) -> &[String] {
        &self.sqls
    }

    pub fn source(&self) -> &SourceDef {
        &self.source
    }
}

/// This source's scan operator, if `node` is one.
pub fn remote_scan(node: &dyn ExecutionPlan) -> Option<&dyn crate::remote::RemoteScan> {
    node.downcast_ref::<PgScanExec>()
        .map(|s| s as &dyn crate::remote::RemoteScan)
}

impl crate::remote::RemoteScan for PgScanExec {
    fn source(&self) -> &SourceDef {
        &self.source
    }

    fn dynamic_filters(&self) -> &[Arc<dyn PhysicalExpr>] {
        &self.dynamic
    }

    fn with_dynamic_filters(&self, filters: Vec<Arc<dyn PhysicalExpr>>) -> Arc<dyn ExecutionPlan> {
        Arc::new(PgScanExec::with_dynamic_filters(self, filters))
    }
}

impl DisplayAs for PgScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        if let [sql] = self.sqls.as_slice() {
            write!(f, "PgScanExec: source={} sql={sql}", self.source.name)?;
        } else {
            write!(
                f,
                "PgScanExec: source={} partitions={}{} sql=[{}]",
                self.source.name,
                self.sqls.len(),
                if self.merged {
                    " (concurrent, one output)"
                } else {
                    ""
                },
                self.sqls.join("; ")
            )?;
        }
        crate::remote::join_keys::fmt_keys(f, &self.dynamic)
    }
}

impl ExecutionPlan for PgScanExec {
    fn name(&self) -> &str {
        "PgScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    /// Shows the join-key filters we hold: a hash join only fills its
    /// dynamic filter when a scan below it uses it.
    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        crate::remote::join_keys::visit(&self.dynamic, f)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn handle_child_pushdown_result(
        &self,
        phase: FilterPushdownPhase,
        result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> DfResult<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let (propagation, dynamic) = crate::remote::join_keys::accept(phase, &result);
        if dynamic.is_empty() {
            return Ok(propagation);
        }
        Ok(propagation.with_updated_node(Arc::new(self.with_dynamic_filters(dynamic))))
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if !self.merged {
            return self.query_stream(partition);
        }
        crate::remote::merged_partition(
            "PgScanExec",
            partition,
            &self.schema,
            self.sqls.len(),
            |i| self.query_stream(i),
        )
    }
}

impl PgScanExec {
    /// The batches of the remote query of `partition`.
    fn query_stream(&self, partition: usize) -> DfResult<SendableRecordBatchStream> {
        let rows_fetched =
            crate::metrics::RowsFetched::new(&self.metrics, partition, &self.source.name);
        let (source, pools, schema) =
            (self.source.clone(), self.pools.clone(), self.schema.clone());
        let this = self.with_dynamic_filters(self.dynamic.clone());
        let stream = futures::stream::once(async move {
            // Read the join keys only once the joins have them.
            crate::remote::join_keys::settle(&this.dynamic).await;
            let copy = format!(
                "COPY ({}) TO STDOUT (FORMAT binary)",
                this.sql_now(partition)
            );
            let mut client = match this.snapshot_connection(partition).await {
                Some(c) => c,
                None => TxClient::plain(connect(&pools, &source).await?),
            };
            client.busy = true;
            let out = client
                .client()
                .copy_out(copy.as_str())
                .await
                .map_err(|e| bad(&source, format!("remote query failed: {}", pg_reason(&e))))?;
            let decoder = CopyDecoder::new(schema.clone(), this.exact_decimals)
                .map_err(|e| DataFusionError::Plan(format!("source `{}`: {e}", source.name)))?;
            Ok::<_, DataFusionError>(decode_stream(
                client,
                Box::pin(out),
                decoder,
                source,
                rows_fetched,
            ))
        })
        .map(|r| match r {
            Ok(s) => s.boxed(),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        })
        .flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}

/// The connections of one multi-range scan, one per range, each in a
/// REPEATABLE READ transaction on the same exported snapshot, so the ranges
/// agree even while the table changes.
pub(super) struct SharedSnapshot {
    connections: Mutex<Vec<Option<TxClient>>>,
}

impl fmt::Debug for SharedSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("SharedSnapshot")
    }
}

impl PgScanExec {
    /// Partition `partition`'s connection on the scan's shared snapshot;
    /// `None` for a one-query scan, or when the snapshot could not be set
    /// up (each range then reads its own snapshot, as before).
    async fn snapshot_connection(&self, partition: usize) -> Option<TxClient> {
        let n = self.sqls.len();
        // The exporting connection plus one per range must fit the pool.
        if n < 2 || n + 1 > MAX_CONNECTIONS {
            return None;
        }
        let shared = self
            .snapshot
            .get_or_init(|| async {
                match share_snapshot(&self.pools, &self.source, n).await {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::debug!(source = %self.source.name, error = %e,
                            "no shared snapshot; each range reads its own");
                        None
                    }
                }
            })
            .await
            .as_ref()?;
        shared
            .connections
            .lock()
            .unwrap()
            .get_mut(partition)?
            .take()
    }
}

/// Exports a snapshot and opens `n` connections in transactions on it.
/// One setup at a time in this process (the lock), so two scans cannot
/// each hold part of a pool while waiting for the rest.
pub(super) async fn share_snapshot(
    pools: &PgPools,
    source: &SourceDef,
    n: usize,
) -> Result<SharedSnapshot> {
    static SETUP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = SETUP.lock().await;
    let begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    let failed = |e: tokio_postgres::Error| {
        bad(
            source,
            format!("cannot share a snapshot: {}", pg_reason(&e)),
        )
    };
    let mut exporter = TxClient::plain(connect(pools, source).await?);
    exporter
        .client()
        .batch_execute(begin)
        .await
        .map_err(failed)?;
    exporter.in_transaction = true;
    let id: String = exporter
        .client()
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .map_err(failed)?
        .get(0);
    let literal = sql::quote_literal(&id)
        .ok_or_else(|| bad(source, format!("unexpected snapshot id {id:?}")))?;
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = TxClient::plain(connect(pools, source).await?);
        c.in_transaction = true;
        c.client()
            .batch_execute(&format!("{begin}; SET TRANSACTION SNAPSHOT {literal}"))
            .await
            .map_err(failed)?;
        connections.push(Some(c));
    }
    // Every range has imported the snapshot: the exporter may end.
    exporter.finish().await;
    Ok(SharedSnapshot {
        connections: Mutex::new(connections),
    })
}

type CopyStream = std::pin::Pin<Box<tokio_postgres::CopyOutStream>>;

fn decode_stream(
    client: TxClient,
    out: CopyStream,
    decoder: CopyDecoder,
    source: SourceDef,
    rows_fetched: crate::metrics::RowsFetched,
) -> impl futures::Stream<Item = DfResult<RecordBatch>> + Send {
    futures::stream::unfold(
        (Some(client), out, decoder, false),
        move |(mut client, mut out, mut dec, done)| {
            let source = source.clone();
            let rows_fetched = rows_fetched.clone();
            async move {
                if done {
                    return None;
                }
                loop {
                    if let Some(batch) = dec.take_full() {
                        rows_fetched.add(batch.num_rows());
                        return Some((Ok(batch), (client, out, dec, false)));
                    }
                    match out.next().await {
                        Some(Ok(chunk)) => {
                            if let Err(e) = dec.push(chunk) {
                                return Some((
                                    Err(bad(&source, e).into()),
                                    (client, out, dec, true),
                                ));
                            }
                        }
                        Some(Err(e)) => {
                            let err =
                                bad(&source, format!("remote query failed: {}", pg_reason(&e)));
                            return Some((Err(err.into()), (client, out, dec, true)));
                        }
                        None => {
                            if let Some(c) = client.as_mut() {
                                c.finish().await;
                            }
                            let last = dec.finish();
                            return match last {
                                Ok(Some(b)) => {
                                    rows_fetched.add(b.num_rows());
                                    Some((Ok(b), (client, out, dec, true)))
                                }
                                Ok(None) => None,
                                Err(e) => {
                                    Some((Err(bad(&source, e).into()), (client, out, dec, true)))
                                }
                            };
                        }
                    }
                }
            }
        },
    )
}

/// A pooled connection that may be inside a transaction of ours: ended
/// with `COMMIT` when its query is done, and never handed back to the pool
/// still inside it (dropped early, the connection is closed instead).
pub(super) struct TxClient {
    object: Option<deadpool_postgres::Object>,
    in_transaction: bool,
    /// A remote query may still be sending rows.
    busy: bool,
}

impl TxClient {
    fn plain(object: deadpool_postgres::Object) -> Self {
        TxClient {
            object: Some(object),
            in_transaction: false,
            busy: false,
        }
    }

    fn client(&self) -> &deadpool_postgres::Object {
        self.object.as_ref().expect("a connection until dropped")
    }

    /// After the last row: ends our transaction, if any, so the
    /// connection can go back to the pool.
    pub(super) async fn finish(&mut self) {
        self.busy = false;
        if self.in_transaction && self.client().batch_execute("COMMIT").await.is_ok() {
            self.in_transaction = false;
        }
    }
}

impl Drop for TxClient {
    fn drop(&mut self) {
        // Dropped inside our transaction or while its query still sends
        // rows (a cancel, a statement timeout, a LIMIT reached, an error):
        // the connection is detached from the pool and closes, so the
        // server stops the query instead of running it to its end for a
        // connection the next user would find busy.
        if (self.in_transaction || self.busy)
            && let Some(object) = self.object.take()
        {
            // A query that sends nothing yet (an aggregate still working)
            // would not notice the closed socket: cancel it too.
            if self.busy
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                let token = object.cancel_token();
                runtime.spawn(async move {
                    let _ = token.cancel_query(NoTls).await;
                });
            }
            drop(deadpool_postgres::Object::take(object));
        }
    }
}
