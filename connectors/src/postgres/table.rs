//! `PgTable`: a PostgreSQL table as a DataFusion table (filters and
//! projections go into the remote query; big tables are read in key
//! ranges).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{Constraint, Constraints};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use quipu_catalog::{SourceDef, TableDef, TableName};

use crate::error::Result;

use super::{
    pool::{PgPools, connect},
    scan::PgScanExec,
    sql,
};

/// A PostgreSQL table as a DataFusion table.
#[derive(Debug)]
pub struct PgTable {
    source: SourceDef,
    name: TableName,
    schema: SchemaRef,
    pools: Arc<PgPools>,
    /// The table's own `partitions` setting (over the source's option).
    partitions: Option<u32>,
    /// The source's primary key, so a query grouped by it may show the
    /// table's other columns, as PostgreSQL lets it (`GROUP BY c.id`
    /// beside `c.name`): DataFusion refused them. PostgreSQL enforces the
    /// key, so DataFusion may also drop a join or a `DISTINCT` it makes
    /// redundant; a key dropped at the source since the last `quipu
    /// catalog refresh` would mislead it (docs/sources.md).
    constraints: Option<Constraints>,
}

impl PgTable {
    pub fn source(&self) -> &SourceDef {
        &self.source
    }

    /// The remote `schema.table`.
    pub fn name(&self) -> &TableName {
        &self.name
    }

    pub fn pools(&self) -> &Arc<PgPools> {
        &self.pools
    }

    pub fn partitions(&self) -> Option<u32> {
        self.partitions
    }

    /// The same table with its own `partitions` setting.
    pub fn with_partitions(mut self, partitions: Option<u32>) -> Self {
        self.partitions = partitions;
        self
    }

    /// Conditions splitting the table into ranges of its integer primary
    /// key, one per partition, or None for one partition. The number is the
    /// table's or else the source's `partitions` setting, else `target` (the session's target
    /// partitions) for tables of at least `2 * ROWS_PER_PARTITION` rows by
    /// the server's statistics. The ranges read one exported snapshot
    /// (`PgScanExec::snapshot_connection`) when the exporter and a
    /// connection per range fit the pool; otherwise each range reads its own,
    /// and rows written while the partitions start may be seen by one and
    /// not another.
    async fn key_ranges(&self, target: usize) -> Option<Vec<String>> {
        const ROWS_PER_PARTITION: i64 = 250_000;
        let forced = crate::remote::forced_partitions(&self.source, self.partitions);
        if forced.unwrap_or(target) <= 1 || !self.pushdown() {
            return None;
        }
        let client = connect(&self.pools, &self.source).await.ok()?;
        let stats = client
            .query_opt(
                "SELECT c.reltuples::int8, a.attname::text FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1 \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&self.name.schema, &self.name.table],
            )
            .await
            .ok()??;
        let (rows, key): (i64, String) = (stats.get(0), stats.get(1));
        let n = match forced {
            Some(n) => n,
            None if rows >= 2 * ROWS_PER_PARTITION => {
                target.min((rows / ROWS_PER_PARTITION) as usize)
            }
            None => return None,
        };
        let is_int = self
            .schema
            .field_with_name(&key)
            .is_ok_and(|f| f.data_type().is_integer());
        if n <= 1 || !is_int {
            return None;
        }
        let k = sql::quote_ident(&key);
        let bounds = client
            .query_one(
                &format!(
                    "SELECT min({k})::int8, max({k})::int8 FROM {}.{}",
                    sql::quote_ident(&self.name.schema),
                    sql::quote_ident(&self.name.table)
                ),
                &[],
            )
            .await
            .ok()?;
        let (lo, hi): (Option<i64>, Option<i64>) = (bounds.get(0), bounds.get(1));
        let (lo, hi) = (lo? as i128, hi? as i128);
        let cuts: Vec<i128> = (1..n as i128)
            .map(|i| lo + (hi - lo + 1) * i / n as i128)
            .collect();
        let mut ranges = vec![];
        for i in 0..n {
            let lower = (i > 0).then(|| format!("{k} >= {}", cuts[i - 1]));
            let upper = (i + 1 < n).then(|| format!("{k} < {}", cuts[i]));
            ranges.push(match (lower, upper) {
                (Some(l), Some(u)) => format!("{l} AND {u}"),
                (Some(c), None) | (None, Some(c)) => c,
                (None, None) => return None,
            });
        }
        Some(ranges)
    }

    /// False when the source has `pushdown=off`.
    pub fn pushdown(&self) -> bool {
        self.source.pushdown()
    }

    /// A table from its parts (the codec rebuilds tables this way).
    pub fn from_parts(
        source: SourceDef,
        name: TableName,
        schema: SchemaRef,
        pools: Arc<PgPools>,
    ) -> PgTable {
        PgTable {
            source,
            name,
            schema,
            pools,
            partitions: None,
            constraints: None,
        }
    }

    pub fn new(source: &SourceDef, def: &TableDef, pools: Arc<PgPools>) -> Result<PgTable> {
        let fields = def
            .columns
            .iter()
            .map(|c| {
                let t = quipu_catalog::types::parse_type(&c.name, &c.data_type)?;
                let field = Field::new(&c.name, t, c.nullable);
                Ok(match c.source_type.as_deref() {
                    // Its values are JSON inside JSON (`json_arguments.rs`).
                    Some(of @ ("json" | "jsonb")) => crate::dialect::text_order::text_of(
                        crate::dialect::pg_text::mark_json(field),
                        of,
                    ),
                    Some(of) => crate::dialect::text_order::text_of(field, of),
                    None => field,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let schema = Arc::new(Schema::new(fields));
        Ok(PgTable {
            source: source.clone(),
            name: def.name.clone(),
            constraints: primary_key(&schema, &def.primary_key),
            schema,
            pools,
            partitions: def.partitions,
        })
    }
}

/// The primary key as DataFusion's constraint, or None when the table
/// has none or a key column is not in the catalog (skipped by
/// `unsupported_type = warn`).
fn primary_key(schema: &Schema, key: &[String]) -> Option<Constraints> {
    let indices = key
        .iter()
        .map(|k| schema.index_of(k).ok())
        .collect::<Option<Vec<usize>>>()?;
    (!indices.is_empty())
        .then(|| Constraints::new_unverified(vec![Constraint::PrimaryKey(indices)]))
}

#[async_trait]
impl TableProvider for PgTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.constraints.as_ref()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let pushdown = self.pushdown();
        Ok(filters
            .iter()
            .map(|f| {
                if pushdown && sql::filter_to_sql(f, &self.schema).is_some() {
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
        let select: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| {
                let col = sql::quote_ident(f.name());
                match f.data_type() {
                    // Types read as text are cast on the server.
                    DataType::Utf8 => sql::text_read(&col, f),
                    _ => col,
                }
            })
            .collect();
        let mut sql = format!(
            "SELECT {} FROM {}.{}",
            if select.is_empty() {
                "NULL".to_string()
            } else {
                select.join(", ")
            },
            sql::quote_ident(&self.name.schema),
            sql::quote_ident(&self.name.table)
        );
        let pushdown = self.pushdown();
        let conditions: Vec<String> = if pushdown {
            filters
                .iter()
                .filter_map(|f| sql::filter_to_sql(f, &self.schema))
                .collect()
        } else {
            vec![]
        };
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        // A limit is only exact when every filter went to the server.
        if let Some(n) = limit.filter(|_| conditions.len() == filters.len()) {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        // Ballista 55 hands each task the stage's plan with only file and
        // memory scans cut down to the task's partitions; any other leaf is
        // executed as partitions 0.. of the whole scan, so a task owning
        // partition 2 would run range 0 again (rows duplicated and lost,
        // tests/it/pushdown.rs). On the cluster the ranges are read by one
        // partition that runs their queries concurrently instead.
        let on_ballista = crate::remote::on_ballista(state);
        let ranges = if limit.is_none() {
            self.key_ranges(state.config().target_partitions()).await
        } else {
            None
        };
        let sqls = match ranges {
            Some(ranges) => ranges
                .iter()
                .map(|r| {
                    let glue = if conditions.is_empty() {
                        " WHERE "
                    } else {
                        " AND "
                    };
                    format!("{sql}{glue}{r}")
                })
                .collect(),
            None => vec![sql],
        };
        Ok(Arc::new(
            PgScanExec::partitioned(self.source.clone(), self.pools.clone(), schema, sqls)
                .exact_decimals(true)
                .merged(on_ballista),
        ))
    }
}
