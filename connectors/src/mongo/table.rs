//! `MongoTable`: a collection as a DataFusion table (filters, projection
//! and limit go into the `find`; big collections are read in `_id`
//! ranges).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use mongodb::bson::{Bson, Document, doc};
use quipu_catalog::{SourceDef, TableDef};

use super::{
    arrow::as_i64,
    client::MongoClients,
    filter::filter_to_mongo,
    scan::{MongoScanExec, all_of},
};
use crate::error::Result;

#[derive(Debug)]
pub struct MongoTable {
    source: SourceDef,
    collection: String,
    schema: SchemaRef,
    clients: Arc<MongoClients>,
    /// The table's own `partitions` setting (over the source's option).
    partitions: Option<u32>,
}

impl MongoTable {
    pub fn new(
        source: &SourceDef,
        def: &TableDef,
        clients: Arc<MongoClients>,
    ) -> Result<MongoTable> {
        let fields = def
            .columns
            .iter()
            .map(|c| {
                let t = quipu_catalog::types::parse_type(&c.name, &c.data_type)?;
                Ok(Field::new(&c.name, t, true))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(MongoTable {
            source: source.clone(),
            collection: def
                .location
                .clone()
                .unwrap_or_else(|| def.name.table.clone()),
            schema: Arc::new(Schema::new(fields)),
            clients,
            partitions: def.partitions,
        })
    }

    /// A table from its parts (the codec rebuilds tables this way).
    pub fn from_parts(
        source: SourceDef,
        collection: String,
        schema: SchemaRef,
        clients: Arc<MongoClients>,
    ) -> MongoTable {
        MongoTable {
            source,
            collection,
            schema,
            clients,
            partitions: None,
        }
    }

    pub fn partitions(&self) -> Option<u32> {
        self.partitions
    }

    /// The same table with its own `partitions` setting.
    pub fn with_partitions(mut self, partitions: Option<u32>) -> Self {
        self.partitions = partitions;
        self
    }

    pub fn source(&self) -> &SourceDef {
        &self.source
    }

    pub fn collection(&self) -> &str {
        &self.collection
    }

    pub fn clients(&self) -> &Arc<MongoClients> {
        &self.clients
    }

    fn pushdown(&self) -> bool {
        self.source.pushdown()
    }

    /// Conditions splitting the collection into ranges of `_id`, one per
    /// partition, or None for one partition. The number is the table's or
    /// else the source's `partitions` setting; without one a collection is
    /// read whole (on SecantusDB, the one server measured, two ranges read
    /// at 0.17x the rate of one cursor: docs/benchmarks.md). The cuts
    /// are interpolated between the smallest and the largest `_id` (two
    /// index lookups), so this splits ObjectIds and numbers; other `_id`
    /// types read in one partition. MongoDB has no snapshot to share across
    /// cursors: a document written while the ranges run may be seen or not.
    async fn id_ranges(&self) -> Option<Vec<Document>> {
        let forced = crate::remote::forced_partitions(&self.source, self.partitions);
        let n = forced.unwrap_or(1);
        if n <= 1 || !self.pushdown() {
            return None;
        }
        let coll = self
            .clients
            .database(&self.source)
            .ok()?
            .collection::<Document>(&self.collection);
        let end = |order: i32| {
            let coll = coll.clone();
            async move {
                let d = coll
                    .find_one(Document::new())
                    .sort(doc! { "_id": order })
                    .projection(doc! { "_id": 1 })
                    .await
                    .ok()??;
                d.get("_id").cloned()
            }
        };
        let (lo, hi) = (end(1).await?, end(-1).await?);
        let (cuts, kind) = id_cuts(&lo, &hi, n)?;
        let mut ranges = vec![];
        for (i, cut) in cuts.iter().enumerate() {
            ranges.push(if i == 0 {
                // `$lt` only matches `_id`s of the cut's type: the first
                // range takes every other type too.
                doc! { "$or": [
                    { "_id": { "$lt": cut.clone() } },
                    { "_id": { "$not": { "$type": kind } } },
                ] }
            } else {
                doc! { "_id": { "$gte": cuts[i - 1].clone(), "$lt": cut.clone() } }
            });
        }
        ranges.push(doc! { "_id": { "$gte": cuts.last()?.clone() } });
        Some(ranges)
    }
}

/// A projection of `schema`'s fields (without `_id` unless it is one).
pub(crate) fn projection_of(schema: &Schema) -> Document {
    let mut projection = doc! { "_id": 0 };
    for f in schema.fields() {
        projection.insert(f.name().clone(), 1);
    }
    if schema.fields().iter().any(|f| f.name() == "_id") {
        projection.remove("_id");
    }
    projection
}

/// `n - 1` increasing cuts evenly between two `_id`s of one kind
/// (ObjectIds as 96-bit numbers, or integers), and the `$type` alias that
/// kind matches. None when the values do not split.
pub(super) fn id_cuts(lo: &Bson, hi: &Bson, n: usize) -> Option<(Vec<Bson>, &'static str)> {
    let even = |lo: i128, hi: i128| -> Vec<i128> {
        let mut cuts: Vec<i128> = (1..n as i128)
            .map(|i| lo + (hi - lo + 1) * i / n as i128)
            .filter(|c| *c > lo && *c <= hi)
            .collect();
        cuts.dedup();
        cuts
    };
    let (cuts, kind): (Vec<Bson>, &str) = match (lo, hi) {
        (Bson::ObjectId(a), Bson::ObjectId(b)) => {
            let num = |o: &mongodb::bson::oid::ObjectId| {
                o.bytes()
                    .iter()
                    .fold(0i128, |acc, b| (acc << 8) | *b as i128)
            };
            let cuts = even(num(a), num(b))
                .into_iter()
                .map(|c| {
                    let mut bytes = [0u8; 12];
                    bytes.copy_from_slice(&c.to_be_bytes()[4..]);
                    Bson::ObjectId(mongodb::bson::oid::ObjectId::from_bytes(bytes))
                })
                .collect();
            (cuts, "objectId")
        }
        (a, b) => {
            let (a, b) = (as_i64(a)?, as_i64(b)?);
            let cuts = even(a as i128, b as i128)
                .into_iter()
                .map(|c| Bson::Int64(c as i64))
                .collect();
            (cuts, "number")
        }
    };
    (!cuts.is_empty()).then_some((cuts, kind))
}

#[async_trait]
impl TableProvider for MongoTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.pushdown() && filter_to_mongo(f, &self.schema).is_some() {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (_, schema) = crate::remote::projected(&self.schema, projection)?;
        let conditions: Vec<Document> = if self.pushdown() {
            filters
                .iter()
                .filter_map(|f| filter_to_mongo(f, &self.schema))
                .collect()
        } else {
            vec![]
        };
        // A limit is only exact when every filter went to the server.
        let all_pushed = self.pushdown() && conditions.len() == filters.len();
        let filter = all_of(Document::new(), conditions);
        let projection = projection_of(&schema);
        let limit = limit.filter(|_| all_pushed);
        let ranges = if limit.is_none() {
            self.id_ranges().await.unwrap_or_default()
        } else {
            vec![]
        };
        Ok(Arc::new(
            MongoScanExec::new(
                self.source.clone(),
                self.clients.clone(),
                self.collection.clone(),
                schema,
                filter,
                projection,
                limit,
            )
            .with_ranges(ranges, crate::remote::on_ballista(state)),
        ))
    }
}
