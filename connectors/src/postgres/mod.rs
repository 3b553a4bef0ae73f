//! Live PostgreSQL tables: discovery from `information_schema`, the type
//! mapping to Arrow, and `PgScanExec`, which runs one remote query as
//! `COPY (SELECT ...) TO STDOUT (FORMAT binary)` and decodes the binary rows
//! straight into Arrow arrays (no per-row allocation, no text parsing).
//!
//! Filters and projections are pushed into the remote query; the filters we
//! push are re-checked by DataFusion (`Inexact`), so a dialect difference can
//! only cost speed, never a wrong row.

pub mod connector;
pub mod pushdown;
pub mod sql;

pub use connector::{Postgres, REGISTRATION};

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Buf, Bytes, BytesMut};
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::Session;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
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
use quipu_catalog::{ColumnDef, SourceDef, TableDef, TableName, TableOrigin, secret};
use tokio_postgres::NoTls;

use crate::error::{ConnectorError, Result};

/// Connections per source per process: one query cannot swamp a production
/// database.
const MAX_CONNECTIONS: usize = 8;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BATCH_ROWS: usize = 8192;

/// Connection pools, one per source (keyed by name and options so that a
/// changed source gets a new pool).
#[derive(Default)]
pub struct PgPools {
    pools: Mutex<HashMap<String, (String, deadpool_postgres::Pool)>>,
}

impl fmt::Debug for PgPools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PgPools")
    }
}

fn bad(source: &SourceDef, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::Source {
        source_name: source.name.clone(),
        reason: reason.into(),
    }
}

/// The libpq-style configuration of a source; the password is resolved
/// here, at connection time, and kept only inside the driver's config.
fn pg_config(source: &SourceDef) -> Result<tokio_postgres::Config> {
    let o = |k: &str| source.options.get(k).map(String::as_str);
    let mut c = tokio_postgres::Config::new();
    c.host(o("host").unwrap_or("localhost"));
    let port = o("port").unwrap_or("5432");
    c.port(port.parse().map_err(|_| {
        bad(
            source,
            format!("option `port` must be a number, got `{port}`"),
        )
    })?);
    c.user(o("user").unwrap_or("postgres"));
    if let Some(p) = o("password") {
        // Named after the source: an executor that lacks the secret says
        // which source it cannot open.
        c.password(secret::resolve(p).map_err(|e| bad(source, e.to_string()))?);
    }
    c.dbname(o("dbname").ok_or_else(|| bad(source, "missing option `dbname`"))?);
    match o("sslmode").unwrap_or("disable") {
        "disable" | "prefer" | "allow" => {}
        other => {
            return Err(bad(
                source,
                format!(
                    "sslmode `{other}` is not supported yet: this build connects to PostgreSQL without TLS (use sslmode=disable on a trusted network)"
                ),
            ));
        }
    }
    c.connect_timeout(CONNECT_TIMEOUT);
    c.application_name("quipu");
    // Dates of timestamptz values (casts, date_trunc in pushed queries) are
    // taken in UTC, as DataFusion does.
    // The server ends a remote query that runs past `query_timeout`.
    // Literals are rendered as `E''` strings whatever this setting, but a
    // server configured with it off would read backslashes in any other
    // string as escapes: pin it.
    c.options(format!(
        "-c TimeZone=UTC -c standard_conforming_strings=on -c statement_timeout={}",
        source.query_timeout().as_millis()
    ));
    Ok(c)
}

impl PgPools {
    pub fn pool(&self, source: &SourceDef) -> Result<deadpool_postgres::Pool> {
        let key = crate::remote::options_key(source);
        let mut pools = self.pools.lock().unwrap();
        if let Some((k, p)) = pools.get(&source.name)
            && *k == key
        {
            return Ok(p.clone());
        }
        let manager = deadpool_postgres::Manager::from_config(
            pg_config(source)?,
            NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(MAX_CONNECTIONS)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(CONNECT_TIMEOUT + Duration::from_secs(1)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| bad(source, format!("cannot build a connection pool: {e}")))?;
        pools.insert(source.name.clone(), (key, pool.clone()));
        Ok(pool)
    }
}

/// One line for a failed PostgreSQL call: the server's message when there
/// is one, else the driver's chain of causes.
pub fn pg_reason(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

/// A connection from the source's pool. Connection failures that may pass
/// (refused or reset while the server restarts) are retried twice; a
/// timeout is not, so a source that does not answer is reported within the
/// connect timeout.
async fn connect(pools: &PgPools, source: &SourceDef) -> Result<deadpool_postgres::Object> {
    let pool = pools.pool(source)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match pool.get().await {
            Ok(c) => return Ok(c),
            Err(deadpool_postgres::PoolError::Backend(e))
                if attempt < 3
                    && e.as_db_error().is_none()
                    && !e.to_string().contains("timed out") =>
            {
                tracing::debug!(source = %source.name, error = %pg_reason(&e), attempt, "retrying a PostgreSQL connection");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => {
                let reason = match &e {
                    deadpool_postgres::PoolError::Backend(e) => pg_reason(e),
                    deadpool_postgres::PoolError::Timeout(_) => {
                        "timed out waiting for a connection (the server does not answer, or all connections are busy)".to_string()
                    }
                    other => other.to_string(),
                };
                return Err(bad(
                    source,
                    format!("cannot connect to PostgreSQL: {reason}"),
                ));
            }
        }
    }
}

/// How a PostgreSQL type is read: its Arrow type, and whether the remote
/// query casts it to text first.
fn map_type(udt: &str, precision: Option<i32>, scale: Option<i32>) -> Option<(DataType, bool)> {
    Some(match udt {
        "bool" => (DataType::Boolean, false),
        "int2" => (DataType::Int16, false),
        "int4" => (DataType::Int32, false),
        "int8" => (DataType::Int64, false),
        "float4" => (DataType::Float32, false),
        "float8" => (DataType::Float64, false),
        "numeric" => match (precision, scale) {
            (Some(p), Some(s)) if (1..=38).contains(&p) => {
                (DataType::Decimal128(p as u8, s as i8), false)
            }
            // Unconstrained numeric: wide enough for money and counts.
            _ => (DataType::Decimal128(38, 10), false),
        },
        "text" | "varchar" | "bpchar" | "name" | "citext" => (DataType::Utf8, false),
        "json" | "jsonb" | "uuid" | "xml" | "inet" | "cidr" | "macaddr" | "interval" | "time"
        | "timetz" => (DataType::Utf8, true),
        "date" => (DataType::Date32, false),
        "timestamp" => (DataType::Timestamp(TimeUnit::Microsecond, None), false),
        "timestamptz" => (
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        "bytea" => (DataType::Binary, false),
        _ => return None,
    })
}

/// Per-source policy for types without a mapping.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Unsupported {
    Error,
    Warn,
    AsText,
}

fn unsupported_policy(source: &SourceDef) -> Result<Unsupported> {
    match source.options.get("unsupported_type").map(String::as_str) {
        None | Some("as_text") => Ok(Unsupported::AsText),
        Some("warn") => Ok(Unsupported::Warn),
        Some("error") => Ok(Unsupported::Error),
        Some(other) => Err(bad(
            source,
            format!("option `unsupported_type` must be error, warn or as_text, got `{other}`"),
        )),
    }
}

/// Lists the tables and views of the allowed schemas with their columns.
pub async fn discover(pools: &PgPools, source: &SourceDef) -> Result<Vec<TableDef>> {
    let policy = unsupported_policy(source)?;
    let client = connect(pools, source).await?;
    let schemas: Vec<String> = source
        .options
        .get("schemas")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let rows = client
        .query(
            "SELECT c.table_schema::text, c.table_name::text, c.column_name::text, c.udt_name::text,
                    c.is_nullable = 'YES', c.numeric_precision, c.numeric_scale,
                    c.data_type::text
             FROM information_schema.columns c
             JOIN information_schema.tables t
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name
             WHERE t.table_type IN ('BASE TABLE', 'VIEW', 'FOREIGN')
               AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
               AND (cardinality($1::text[]) = 0 OR c.table_schema = ANY($1))
             ORDER BY 1, 2, c.ordinal_position",
            &[&schemas],
        )
        .await
        .map_err(|e| bad(source, format!("cannot list tables: {}", pg_reason(&e))))?;
    let mut tables: Vec<TableDef> = Vec::new();
    for r in rows {
        let (schema, table, column, udt): (String, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let nullable: bool = r.get(4);
        let (precision, scale): (Option<i32>, Option<i32>) = (r.get(5), r.get(6));
        let data_type: String = r.get(7);
        let name = TableName {
            source: source.name.clone(),
            schema: schema.clone(),
            table: table.clone(),
        };
        if tables.last().map(|t| &t.name) != Some(&name) {
            tables.push(TableDef {
                name,
                origin: TableOrigin::Discovered,
                location: None,
                format: None,
                file_extension: None,
                columns: vec![],
                partition_columns: vec![],
                declared_schema: false,
                partitions: None,
            });
        }
        let arrow = match (map_type(&udt, precision, scale), policy) {
            (Some((t, _)), _) => t,
            (None, Unsupported::AsText) => DataType::Utf8,
            (None, Unsupported::Warn) => {
                tracing::warn!(source = %source.name, "skipping column {schema}.{table}.{column} of unsupported type {data_type}");
                continue;
            }
            (None, Unsupported::Error) => {
                return Err(bad(
                    source,
                    format!(
                        "column {schema}.{table}.{column} has type {data_type}, which has no mapping (set unsupported_type=as_text or warn)"
                    ),
                ));
            }
        };
        tables.last_mut().unwrap().columns.push(ColumnDef {
            name: column,
            data_type: arrow.to_string(),
            nullable,
        });
    }
    Ok(tables)
}

/// A PostgreSQL table as a DataFusion table.
#[derive(Debug)]
pub struct PgTable {
    source: SourceDef,
    name: TableName,
    schema: SchemaRef,
    pools: Arc<PgPools>,
    /// The table's own `partitions` setting (over the source's option).
    partitions: Option<u32>,
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
    /// the server's statistics. Each range runs in its own transaction (no
    /// shared snapshot yet): rows written while the partitions start may be
    /// seen by one and not another.
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
        }
    }

    pub fn new(source: &SourceDef, def: &TableDef, pools: Arc<PgPools>) -> Result<PgTable> {
        let fields = def
            .columns
            .iter()
            .map(|c| {
                let t = quipu_catalog::types::parse_type(&c.name, &c.data_type)?;
                Ok(Field::new(&c.name, t, c.nullable))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PgTable {
            source: source.clone(),
            name: def.name.clone(),
            schema: Arc::new(Schema::new(fields)),
            pools,
            partitions: def.partitions,
        })
    }
}

#[async_trait]
impl TableProvider for PgTable {
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
                    DataType::Utf8 => format!("{col}::text"),
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
            let decoder = CopyDecoder::new(schema.clone(), this.exact_decimals);
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
struct SharedSnapshot {
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
async fn share_snapshot(pools: &PgPools, source: &SourceDef, n: usize) -> Result<SharedSnapshot> {
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

/// A pooled connection that may be inside a transaction of ours: ended
/// with `COMMIT` when its query is done, and never handed back to the pool
/// still inside it (dropped early, the connection is closed instead).
struct TxClient {
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
    async fn finish(&mut self) {
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

/// Decodes PostgreSQL's binary COPY format into Arrow batches.
struct CopyDecoder {
    schema: SchemaRef,
    builders: Vec<Box<dyn ArrayBuilder>>,
    rows: usize,
    buf: BytesMut,
    header_done: bool,
    ended: bool,
    ready: Vec<RecordBatch>,
    /// Decimals must fit their column's type exactly (`PgScanExec::exact_decimals`).
    exact: bool,
}

const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

fn builder_for(t: &DataType) -> Box<dyn ArrayBuilder> {
    match t {
        DataType::Boolean => Box::new(BooleanBuilder::new()),
        DataType::Int16 => Box::new(Int16Builder::new()),
        DataType::Int32 => Box::new(Int32Builder::new()),
        DataType::Int64 => Box::new(Int64Builder::new()),
        DataType::Float32 => Box::new(Float32Builder::new()),
        DataType::Float64 => Box::new(Float64Builder::new()),
        DataType::Decimal128(p, s) => Box::new(
            Decimal128Builder::new()
                .with_precision_and_scale(*p, *s)
                .unwrap_or_default(),
        ),
        DataType::Date32 => Box::new(Date32Builder::new()),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            Box::new(TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()))
        }
        DataType::Binary => Box::new(BinaryBuilder::new()),
        _ => Box::new(StringBuilder::new()),
    }
}

macro_rules! append {
    ($b:expr, $ty:ty, $v:expr) => {
        $b.as_any_mut()
            .downcast_mut::<$ty>()
            .expect("builder matches the schema")
            .append_option($v)
    };
}

impl CopyDecoder {
    fn new(schema: SchemaRef, exact: bool) -> Self {
        let builders = schema
            .fields()
            .iter()
            .map(|f| builder_for(f.data_type()))
            .collect();
        CopyDecoder {
            schema,
            builders,
            rows: 0,
            buf: BytesMut::new(),
            header_done: false,
            ended: false,
            ready: Vec::new(),
            exact,
        }
    }

    fn take_full(&mut self) -> Option<RecordBatch> {
        (!self.ready.is_empty()).then(|| self.ready.remove(0))
    }

    fn push(&mut self, chunk: Bytes) -> std::result::Result<(), String> {
        self.buf.extend_from_slice(&chunk);
        if !self.header_done {
            if self.buf.len() < 19 {
                return Ok(());
            }
            if &self.buf[..11] != b"PGCOPY\n\xff\r\n\0" {
                return Err("unexpected COPY header from the server".into());
            }
            let ext = u32::from_be_bytes(self.buf[15..19].try_into().unwrap()) as usize;
            if self.buf.len() < 19 + ext {
                return Ok(());
            }
            self.buf.advance(19 + ext);
            self.header_done = true;
        }
        while !self.ended {
            match self.tuple()? {
                true => {
                    if self.rows >= BATCH_ROWS {
                        let b = self.flush()?;
                        self.ready.push(b);
                    }
                }
                false => break,
            }
        }
        Ok(())
    }

    /// Decodes one tuple if it is complete in the buffer.
    fn tuple(&mut self) -> std::result::Result<bool, String> {
        let buf = &self.buf[..];
        if buf.len() < 2 {
            return Ok(false);
        }
        let n = i16::from_be_bytes([buf[0], buf[1]]);
        if n == -1 {
            self.ended = true;
            self.buf.advance(2);
            return Ok(false);
        }
        let expected = self.schema.fields().len().max(1);
        if n as usize != expected {
            return Err(format!("COPY row has {n} fields, expected {expected}"));
        }
        // Check the whole tuple is here before decoding anything.
        let mut pos = 2;
        let mut spans = Vec::with_capacity(n as usize);
        for _ in 0..n {
            if buf.len() < pos + 4 {
                return Ok(false);
            }
            let len = i32::from_be_bytes(buf[pos..pos + 4].try_into().unwrap());
            pos += 4;
            if len < 0 {
                spans.push(None);
            } else {
                let len = len as usize;
                if buf.len() < pos + len {
                    return Ok(false);
                }
                spans.push(Some((pos, len)));
                pos += len;
            }
        }
        if !self.schema.fields().is_empty() {
            for (i, span) in spans.into_iter().enumerate() {
                let v = span.map(|(p, l)| &buf[p..p + l]);
                let field = self.schema.field(i);
                decode_value(field.data_type(), &mut self.builders[i], v, self.exact)
                    .map_err(|e| format!("column {}: {e}", field.name()))?;
            }
        }
        self.rows += 1;
        self.buf.advance(pos);
        Ok(true)
    }

    fn flush(&mut self) -> std::result::Result<RecordBatch, String> {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        let rows = std::mem::take(&mut self.rows);
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| e.to_string())
    }

    fn finish(&mut self) -> std::result::Result<Option<RecordBatch>, String> {
        if let Some(b) = self.ready.pop() {
            return Ok(Some(b));
        }
        if self.rows == 0 {
            return Ok(None);
        }
        self.flush().map(Some)
    }
}

fn be<const N: usize>(v: &[u8]) -> std::result::Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

fn decode_value(
    t: &DataType,
    b: &mut Box<dyn ArrayBuilder>,
    v: Option<&[u8]>,
    exact: bool,
) -> std::result::Result<(), String> {
    match t {
        DataType::Boolean => append!(b, BooleanBuilder, v.map(|v| v.first() == Some(&1))),
        DataType::Int16 => append!(
            b,
            Int16Builder,
            v.map(be::<2>).transpose()?.map(i16::from_be_bytes)
        ),
        DataType::Int32 => append!(
            b,
            Int32Builder,
            v.map(be::<4>).transpose()?.map(i32::from_be_bytes)
        ),
        DataType::Int64 => append!(
            b,
            Int64Builder,
            v.map(be::<8>).transpose()?.map(i64::from_be_bytes)
        ),
        DataType::Float32 => append!(
            b,
            Float32Builder,
            v.map(be::<4>).transpose()?.map(f32::from_be_bytes)
        ),
        DataType::Float64 => append!(
            b,
            Float64Builder,
            v.map(be::<8>).transpose()?.map(f64::from_be_bytes)
        ),
        DataType::Date32 => append!(
            b,
            Date32Builder,
            v.map(be::<4>)
                .transpose()?
                .map(|x| i32::from_be_bytes(x) + PG_EPOCH_DAYS)
        ),
        DataType::Timestamp(_, _) => append!(
            b,
            TimestampMicrosecondBuilder,
            v.map(be::<8>)
                .transpose()?
                .map(|x| i64::from_be_bytes(x) + PG_EPOCH_MICROS)
        ),
        DataType::Decimal128(p, s) => {
            let d = v
                .map(|v| match decode_numeric(v, *s)? {
                    (n, cut) if exact && (cut || !fits_precision(n, *p)) => Err(format!(
                        "a value does not fit numeric({p},{s}), the column's type in the \
                         catalog: the column has changed at the source; run `quipu catalog \
                         refresh` for this source"
                    )),
                    (n, _) => Ok(n),
                })
                .transpose()?;
            append!(b, Decimal128Builder, d)
        }
        DataType::Binary => append!(b, BinaryBuilder, v),
        _ => {
            let s = v
                .map(|v| std::str::from_utf8(v).map_err(|e| format!("invalid UTF-8: {e}")))
                .transpose()?;
            append!(b, StringBuilder, s)
        }
    }
    Ok(())
}

/// Whether `n` (an unscaled decimal) has at most `precision` digits.
fn fits_precision(n: i128, precision: u8) -> bool {
    10i128
        .checked_pow(precision as u32)
        .is_none_or(|limit| n.unsigned_abs() < limit as u128)
}

/// PostgreSQL's binary numeric (base-10000 digits) as an integer at `scale`,
/// and whether non-zero digits below that scale were cut off.
fn decode_numeric(v: &[u8], scale: i8) -> std::result::Result<(i128, bool), String> {
    if v.len() < 8 {
        return Err("short numeric".into());
    }
    let ndigits = u16::from_be_bytes([v[0], v[1]]) as usize;
    let weight = i16::from_be_bytes([v[2], v[3]]) as i32;
    let sign = u16::from_be_bytes([v[4], v[5]]);
    if sign == 0xC000 {
        return Err("NaN does not fit a decimal column".into());
    }
    if v.len() < 8 + 2 * ndigits {
        return Err("short numeric".into());
    }
    let mut acc: i128 = 0;
    let mut cut = false;
    let scale = scale as i32;
    for i in 0..ndigits {
        let digit = u16::from_be_bytes([v[8 + 2 * i], v[9 + 2 * i]]) as i128;
        let exp10 = 4 * (weight - i as i32) + scale;
        let term = if exp10 >= 0 {
            digit
                .checked_mul(
                    10i128
                        .checked_pow(exp10 as u32)
                        .ok_or("numeric out of range")?,
                )
                .ok_or("numeric out of range")?
        } else if exp10 > -5 {
            let div = 10i128.pow((-exp10) as u32);
            cut |= digit % div != 0;
            digit / div
        } else {
            cut |= digit != 0;
            0
        };
        acc = acc.checked_add(term).ok_or("numeric out of range")?;
    }
    Ok((if sign == 0x4000 { -acc } else { acc }, cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: &[u16], weight: i16, neg: bool, dscale: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((ndigits.len() as u16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend((if neg { 0x4000u16 } else { 0 }).to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in ndigits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_decode_at_the_column_scale() {
        // 1234.05 = [1234, 0500] weight 0
        assert_eq!(
            decode_numeric(&numeric(&[1234, 500], 0, false, 2), 2).unwrap(),
            (123_405, false)
        );
        // -0.07 = [0700] weight -1
        assert_eq!(
            decode_numeric(&numeric(&[700], -1, true, 2), 2).unwrap(),
            (-7, false)
        );
        // 12345678 = [1234, 5678] weight 1
        assert_eq!(
            decode_numeric(&numeric(&[1234, 5678], 1, false, 0), 2).unwrap(),
            (1_234_567_800, false)
        );
        assert_eq!(
            decode_numeric(&numeric(&[], 0, false, 0), 2).unwrap(),
            (0, false)
        );
        // 1.2345 read at scale 2 loses digits (issue 17: a column altered
        // from numeric(12,2) to numeric(14,4)); 1.2300 does not.
        assert_eq!(
            decode_numeric(&numeric(&[1, 2345], 0, false, 4), 2).unwrap(),
            (123, true)
        );
        assert_eq!(
            decode_numeric(&numeric(&[1, 2300], 0, false, 4), 2).unwrap(),
            (123, false)
        );
        // A whole base-10000 digit below the scale.
        assert_eq!(
            decode_numeric(&numeric(&[1, 0, 7], 0, false, 12), 2).unwrap(),
            (100, true)
        );
        assert!(fits_precision(99_999, 5) && !fits_precision(100_000, 5));
        assert!(fits_precision(-99_999, 5) && !fits_precision(-100_000, 5));
    }
}
