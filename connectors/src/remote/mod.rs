//! What every live source's scan shares: plan properties of one or many
//! remote streams, streams merged into one partition, projections, the
//! rows each scan fetched (through [`RemoteScan`], so this code never
//! names a source), and the join keys a scan accepts from a hash join
//! ([`join_keys`]).

pub mod join_keys;

/// Plan properties of a remote scan that runs as one stream (one remote
/// query or `find`), shared by `PgScanExec` and `MongoScanExec`.
pub fn single_scan_properties(
    schema: &datafusion::arrow::datatypes::SchemaRef,
) -> std::sync::Arc<datafusion::physical_plan::PlanProperties> {
    scan_properties(schema, 1)
}

/// Whether a scan is planned for Ballista (its session carries Ballista's
/// settings), whose tasks cannot be handed single partitions of our scans
/// (see `PgScanExec`).
pub fn on_ballista(state: &dyn datafusion::catalog::Session) -> bool {
    crate::planning::cluster_plan::on_ballista(state.config_options())
}

/// The streams of `n` remote queries (`stream(i)`) merged into one output
/// partition, each query on its own task (its own connection or cursor,
/// its decoding on its own thread), batches passed on as they come;
/// dropping the merged stream aborts the tasks. `name` and `partition`
/// word the error for a partition other than 0.
pub fn merged_partition(
    name: &str,
    partition: usize,
    schema: &datafusion::arrow::datatypes::SchemaRef,
    n: usize,
    stream: impl Fn(
        usize,
    )
        -> datafusion::error::Result<datafusion::physical_plan::SendableRecordBatchStream>,
) -> datafusion::error::Result<datafusion::physical_plan::SendableRecordBatchStream> {
    use futures::StreamExt;
    if partition != 0 {
        return Err(datafusion::error::DataFusionError::Internal(format!(
            "{name} has one output partition, asked for {partition}"
        )));
    }
    let mut merged = datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder::new(
        schema.clone(),
        2 * n,
    );
    for i in 0..n {
        let tx = merged.tx();
        let mut stream = stream(i)?;
        merged.spawn(async move {
            while let Some(batch) = stream.next().await {
                if tx.send(batch).await.is_err() {
                    break;
                }
            }
            Ok(())
        });
    }
    Ok(merged.build())
}

/// Plan properties of a remote scan with `partitions` independent streams.
pub fn scan_properties(
    schema: &datafusion::arrow::datatypes::SchemaRef,
    partitions: usize,
) -> std::sync::Arc<datafusion::physical_plan::PlanProperties> {
    use datafusion::physical_expr::EquivalenceProperties;
    use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
    std::sync::Arc::new(datafusion::physical_plan::PlanProperties::new(
        EquivalenceProperties::new(schema.clone()),
        datafusion::physical_plan::Partitioning::UnknownPartitioning(partitions),
        EmissionType::Incremental,
        Boundedness::Bounded,
    ))
}

/// The column indices a scan reads (all when `projection` is None) and
/// the schema it returns.
pub fn projected(
    schema: &datafusion::arrow::datatypes::SchemaRef,
    projection: Option<&Vec<usize>>,
) -> datafusion::error::Result<(Vec<usize>, datafusion::arrow::datatypes::SchemaRef)> {
    let indices: Vec<usize> = projection
        .cloned()
        .unwrap_or_else(|| (0..schema.fields().len()).collect());
    let projected = std::sync::Arc::new(schema.project(&indices)?);
    Ok((indices, projected))
}

/// What one live-source scan of an executed plan read.
#[derive(Debug, Clone)]
pub struct ScanFetched {
    pub source: String,
    /// The scan's one-line EXPLAIN text (remote query included).
    pub line: String,
    /// Its `rows_fetched` metric (None when the scan has not run).
    pub rows: Option<usize>,
}

/// The rows each live-source scan of `plan` fetched from its source, from
/// the operators' metrics (for benchmarks and tests that check how much a
/// source was asked for). `scan_of` recognises the scans
/// (`crate::registry::remote_scan`).
pub fn rows_fetched(
    plan: &std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    scan_of: ScanOf,
) -> Vec<ScanFetched> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut scans = vec![];
    let _ = plan.apply(|node| {
        if let Some(scan) = scan_of(node.as_ref()) {
            scans.push(ScanFetched {
                source: scan.source().name.clone(),
                line: datafusion::physical_plan::displayable(node.as_ref())
                    .one_line()
                    .to_string(),
                rows: node
                    .metrics()
                    .and_then(|m| m.sum_by_name("rows_fetched"))
                    .map(|v| v.as_usize()),
            });
        }
        Ok(TreeNodeRecursion::Continue)
    });
    scans
}

/// What the code shared by live sources needs of a scan operator, without
/// knowing which source it reads.
pub trait RemoteScan: datafusion::physical_plan::ExecutionPlan {
    /// The source it reads.
    fn source(&self) -> &quipu_catalog::SourceDef;
    /// The join-key filters it holds ([`join_keys`]).
    fn dynamic_filters(&self) -> &[std::sync::Arc<dyn datafusion::physical_expr::PhysicalExpr>];
    /// The same scan holding `filters` instead.
    fn with_dynamic_filters(
        &self,
        filters: Vec<std::sync::Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
    ) -> std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>;
}

/// Recognises the scan operators of every kind of source
/// (`crate::registry::remote_scan`).
pub type ScanOf = fn(&dyn datafusion::physical_plan::ExecutionPlan) -> Option<&dyn RemoteScan>;

/// The number of partitions a live table's reads are split into when set:
/// the table's own setting, else the source's `partitions` option.
pub(crate) fn forced_partitions(
    source: &quipu_catalog::SourceDef,
    table: Option<u32>,
) -> Option<usize> {
    table.map(|n| n as usize).or_else(|| {
        source
            .options
            .get("partitions")
            .and_then(|v| v.parse().ok())
    })
}

/// A source's options as one string: a cached connection pool is reused
/// only while this stays the same (a changed source gets a new pool).
pub(crate) fn options_key(source: &quipu_catalog::SourceDef) -> String {
    let mut options: Vec<_> = source.options.iter().collect();
    options.sort();
    format!("{options:?}")
}
