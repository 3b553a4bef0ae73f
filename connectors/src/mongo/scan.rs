//! `MongoScanExec`: runs one `find` or aggregation pipeline, possibly
//! over several `_id` ranges.

use std::fmt;
use std::sync::Arc;

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
use futures::{StreamExt, TryStreamExt};
use mongodb::bson::{Bson, Document, doc};
use quipu_catalog::SourceDef;

use super::{
    arrow::to_batch,
    client::{MongoClients, bad, mongo_reason},
    filter::join_keys_filter,
};

/// Documents per batch read from the server.
pub(super) const BATCH_ROWS: usize = 8192;

/// One `find` on one collection, or one aggregation pipeline (pushed
/// groups and sorts), possibly split into ranges of `_id`. The plan holds
/// the source name, the collection and the query, never credentials.
#[derive(Debug)]
pub struct MongoScanExec {
    source: SourceDef,
    clients: Arc<MongoClients>,
    collection: String,
    schema: SchemaRef,
    filter: Document,
    projection: Document,
    limit: Option<usize>,
    /// Aggregation stages run after the filter's `$match`; empty: a `find`.
    pipeline: Vec<Document>,
    /// The row a pushed aggregate without GROUP BY answers when no document
    /// matches (counts 0, the rest NULL): MongoDB's `$group` gives no row.
    default_row: Option<Document>,
    /// One extra condition per partition (ranges of `_id`); empty: one
    /// partition reading everything.
    ranges: Vec<Document>,
    /// All ranges run concurrently inside one output partition (on the
    /// cluster, see `PgScanExec`).
    merged: bool,
    /// Join-key filters from hash joins above (semi-join pushdown), read
    /// when the scan starts.
    dynamic: Vec<Arc<dyn PhysicalExpr>>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl MongoScanExec {
    pub fn new(
        source: SourceDef,
        clients: Arc<MongoClients>,
        collection: String,
        schema: SchemaRef,
        filter: Document,
        projection: Document,
        limit: Option<usize>,
    ) -> Self {
        MongoScanExec {
            source,
            clients,
            collection,
            properties: crate::remote::single_scan_properties(&schema),
            schema,
            filter,
            projection,
            limit,
            pipeline: vec![],
            default_row: None,
            ranges: vec![],
            merged: false,
            dynamic: vec![],
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The same scan running `pipeline` after its filter (an `aggregate`
    /// instead of a `find`); `default_row` answers an empty input.
    pub fn with_pipeline(mut self, pipeline: Vec<Document>, default_row: Option<Document>) -> Self {
        self.pipeline = pipeline;
        self.default_row = default_row;
        self
    }

    /// The same scan split into `ranges` (one partition each, or all in one
    /// partition when `merged`). Fewer than two ranges: one partition.
    pub fn with_ranges(mut self, ranges: Vec<Document>, merged: bool) -> Self {
        self.merged = merged && ranges.len() > 1;
        self.ranges = if ranges.len() > 1 { ranges } else { vec![] };
        let partitions = if self.merged {
            1
        } else {
            self.ranges.len().max(1)
        };
        self.properties = crate::remote::scan_properties(&self.schema, partitions);
        self
    }

    pub fn source(&self) -> &SourceDef {
        &self.source
    }

    pub fn collection(&self) -> &str {
        &self.collection
    }

    pub fn filter(&self) -> &Document {
        &self.filter
    }

    pub fn projection(&self) -> &Document {
        &self.projection
    }

    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    pub fn pipeline(&self) -> &[Document] {
        &self.pipeline
    }

    pub fn default_row(&self) -> Option<&Document> {
        self.default_row.as_ref()
    }

    pub fn ranges(&self) -> &[Document] {
        &self.ranges
    }

    pub fn is_merged(&self) -> bool {
        self.merged
    }

    pub fn dynamic_filters(&self) -> &[Arc<dyn PhysicalExpr>] {
        &self.dynamic
    }

    /// The same scan with other join-key filters.
    pub fn with_dynamic_filters(&self, dynamic: Vec<Arc<dyn PhysicalExpr>>) -> Self {
        let mut scan = MongoScanExec::new(
            self.source.clone(),
            self.clients.clone(),
            self.collection.clone(),
            self.schema.clone(),
            self.filter.clone(),
            self.projection.clone(),
            self.limit,
        )
        .with_pipeline(self.pipeline.clone(), self.default_row.clone())
        .with_ranges(self.ranges.clone(), self.merged);
        scan.dynamic = dynamic;
        scan
    }

    /// Whether join keys may narrow this scan: not under a limit (its rows
    /// are any n rows, not n matching ones) nor for a global aggregate
    /// (filtering its one row away would bring the default row back).
    fn takes_join_keys(&self) -> bool {
        self.limit.is_none()
            && self.default_row.is_none()
            && !self.pipeline.iter().any(|s| s.contains_key("$limit"))
    }
}

/// This source's scan operator, if `node` is one.
pub fn remote_scan(node: &dyn ExecutionPlan) -> Option<&dyn crate::remote::RemoteScan> {
    node.downcast_ref::<MongoScanExec>()
        .map(|s| s as &dyn crate::remote::RemoteScan)
}

impl crate::remote::RemoteScan for MongoScanExec {
    fn source(&self) -> &SourceDef {
        &self.source
    }

    fn dynamic_filters(&self) -> &[Arc<dyn PhysicalExpr>] {
        &self.dynamic
    }

    fn with_dynamic_filters(&self, filters: Vec<Arc<dyn PhysicalExpr>>) -> Arc<dyn ExecutionPlan> {
        Arc::new(MongoScanExec::with_dynamic_filters(self, filters))
    }
}

impl DisplayAs for MongoScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "MongoScanExec: source={} collection={} filter={}",
            self.source.name, self.collection, self.filter
        )?;
        if self.pipeline.is_empty() {
            write!(f, " projection={}", self.projection)?;
        } else {
            let stages: Vec<String> = self.pipeline.iter().map(|s| s.to_string()).collect();
            write!(f, " pipeline=[{}]", stages.join(", "))?;
        }
        if let Some(n) = self.limit {
            write!(f, " limit={n}")?;
        }
        if !self.ranges.is_empty() {
            write!(
                f,
                " partitions={}{}",
                self.ranges.len(),
                if self.merged {
                    " (concurrent, one output)"
                } else {
                    ""
                }
            )?;
            if let (Some(first), Some(last)) = (self.ranges.first(), self.ranges.last()) {
                write!(f, " ranges=[{first} .. {last}]")?;
            }
        }
        crate::remote::join_keys::fmt_keys(f, &self.dynamic)
    }
}

impl ExecutionPlan for MongoScanExec {
    fn name(&self) -> &str {
        "MongoScanExec"
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
        if dynamic.is_empty() || !self.takes_join_keys() {
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
            "MongoScanExec",
            partition,
            &self.schema,
            self.ranges.len(),
            |i| self.query_stream(i),
        )
    }
}

impl MongoScanExec {
    /// The documents of range `partition` (or of the whole scan), as batches.
    fn query_stream(&self, partition: usize) -> DfResult<SendableRecordBatchStream> {
        let range = match (self.ranges.get(partition), self.ranges.is_empty()) {
            (Some(r), _) => Some(r.clone()),
            (None, true) if partition == 0 => None,
            _ => {
                return Err(DataFusionError::Internal(format!(
                    "MongoScanExec has {} partitions, asked for {partition}",
                    self.ranges.len().max(1)
                )));
            }
        };
        let rows_fetched =
            crate::metrics::RowsFetched::new(&self.metrics, partition, &self.source.name);
        let db = self.clients.database(&self.source)?;
        let coll = db.collection::<Document>(&self.collection);
        let (filter, projection, limit) =
            (self.filter.clone(), self.projection.clone(), self.limit);
        let (pipeline, default_row) = (self.pipeline.clone(), self.default_row.clone());
        let (source, schema) = (self.source.clone(), self.schema.clone());
        let fail = move |e: mongodb::error::Error| -> DataFusionError {
            bad(
                &source,
                format!("query on MongoDB failed: {}", mongo_reason(&e)),
            )
            .into()
        };
        let fail2 = fail.clone();
        let (dynamic, fields) = (self.dynamic.clone(), self.schema.clone());
        let timeout = self.source.query_timeout();
        let stream = futures::stream::once(async move {
            // Read the join keys only once the joins have them.
            crate::remote::join_keys::settle(&dynamic).await;
            let keys = join_keys_filter(&dynamic, &fields);
            let filter = all_of(filter, range.into_iter().collect());
            if pipeline.is_empty() {
                let filter = all_of(filter, keys);
                let mut find = coll
                    .find(filter)
                    .max_time(timeout)
                    .projection(projection)
                    .batch_size(BATCH_ROWS as u32);
                if let Some(n) = limit {
                    find = find.limit(n as i64);
                }
                return find.await.map_err(fail);
            }
            // The join keys name the pipeline's output columns, so they
            // filter its end.
            let mut stages = vec![];
            if !filter.is_empty() {
                stages.push(doc! { "$match": filter });
            }
            stages.extend(pipeline);
            let keys = all_of(Document::new(), keys);
            if !keys.is_empty() {
                stages.push(doc! { "$match": keys });
            }
            coll.aggregate(stages)
                .max_time(timeout)
                .batch_size(BATCH_ROWS as u32)
                .await
                .map_err(fail)
        })
        .map(move |cursor| match cursor {
            Ok(c) => {
                let fail = fail2.clone();
                c.map_err(fail).try_chunks(BATCH_ROWS).boxed()
            }
            Err(e) => {
                futures::stream::once(
                    async move { Err(futures::stream::TryChunksError(vec![], e)) },
                )
                .boxed()
            }
        })
        .flatten()
        .map(move |chunk| chunk.map_err(|e| e.1));
        // A global aggregate over no documents still answers one row.
        let stream: futures::stream::BoxStream<'static, DfResult<Vec<Document>>> = match default_row
        {
            None => stream.boxed(),
            Some(row) => {
                let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let seen2 = seen.clone();
                stream
                    .inspect(move |c| {
                        if c.as_ref().is_ok_and(|d| !d.is_empty()) {
                            seen.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                    })
                    .chain(futures::stream::once(async move {
                        Ok(if seen2.load(std::sync::atomic::Ordering::Relaxed) {
                            vec![]
                        } else {
                            vec![row]
                        })
                    }))
                    .boxed()
            }
        };
        let stream = stream
            .try_filter(|docs| futures::future::ready(!docs.is_empty()))
            .map(move |docs| {
                let docs = docs?;
                rows_fetched.add(docs.len());
                to_batch(&schema, &docs)
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}

/// `base` and `more` as one query document (`$and` of the non-empty ones).
pub(super) fn all_of(base: Document, more: Vec<Document>) -> Document {
    let mut parts: Vec<Bson> = std::iter::once(base)
        .chain(more)
        .filter(|d| !d.is_empty())
        .map(Bson::Document)
        .collect();
    match parts.len() {
        0 => Document::new(),
        1 => match parts.pop() {
            Some(Bson::Document(d)) => d,
            _ => Document::new(),
        },
        _ => doc! { "$and": parts },
    }
}
