//! Live MongoDB collections: schema inference from a sample (stored in the
//! catalog once, editable), the BSON to Arrow mapping, and `MongoScanExec`,
//! which runs one `find` with the pushed filter, projection and limit (or
//! an aggregation pipeline built by `mongo_pushdown`), possibly split into
//! ranges of `_id`.
//!
//! Mapping: integers -> Int64, doubles (or mixed numbers) -> Float64,
//! strings -> Utf8, booleans -> Boolean, dates -> Timestamp(ms, UTC),
//! ObjectId -> Utf8 (hex), Decimal128 -> Utf8, sub-documents -> Struct
//! (fields merged over the sample), arrays of one scalar kind -> List,
//! anything mixed -> Utf8 holding relaxed extended JSON. A missing field
//! is NULL.

pub mod connector;
pub mod pushdown;

pub use connector::{Mongo, REGISTRATION};

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, NullArray, StringArray,
    StructArray, TimestampMillisecondArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, expr::InList,
};
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
use mongodb::options::ClientOptions;
use quipu_catalog::{ColumnDef, SourceDef, TableDef, TableName, TableOrigin, secret};

use crate::error::{ConnectorError, Result};

const SAMPLE: i64 = 1000;
const BATCH_ROWS: usize = 8192;
const MAX_POOL: u32 = 8;

/// Option `monitor_timeout` (seconds, default 30): how long the driver
/// waits for a heartbeat answer (and a new connection) before it declares
/// the server unreachable and interrupts the queries in flight.
/// (The catalog checked the value when the source was added.)
fn monitor_timeout(source: &SourceDef) -> Duration {
    let secs = source
        .options
        .get("monitor_timeout")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(30);
    Duration::from_secs(secs)
}

fn bad(source: &SourceDef, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::Source {
        source_name: source.name.clone(),
        reason: reason.into(),
    }
}

/// One driver client (it pools connections itself) per source.
#[derive(Default)]
pub struct MongoClients {
    clients: Mutex<HashMap<String, (String, mongodb::Client)>>,
}

impl fmt::Debug for MongoClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MongoClients")
    }
}

fn database_name(source: &SourceDef) -> Result<String> {
    source
        .options
        .get("database")
        .cloned()
        .ok_or_else(|| bad(source, "missing option `database`"))
}

impl MongoClients {
    /// Shuts every client down (see `QuipuSession::close`).
    pub async fn shutdown(&self) {
        let clients: Vec<mongodb::Client> = self
            .clients
            .lock()
            .unwrap()
            .drain()
            .map(|(_, (_, c))| c)
            .collect();
        for c in clients {
            c.shutdown().immediate(true).await;
        }
    }

    pub fn database(&self, source: &SourceDef) -> Result<mongodb::Database> {
        let key = crate::remote::options_key(source);
        let db = database_name(source)?;
        let mut clients = self.clients.lock().unwrap();
        if let Some((k, c)) = clients.get(&source.name)
            && *k == key
        {
            return Ok(c.database(&db));
        }
        let o = |k: &str| source.options.get(k).map(String::as_str);
        let host = o("host").unwrap_or("localhost").to_string();
        let port: u16 = o("port")
            .unwrap_or("27017")
            .parse()
            .map_err(|_| bad(source, "option `port` must be a number"))?;
        let mut options = ClientOptions::builder()
            .hosts(vec![mongodb::options::ServerAddress::Tcp {
                host,
                port: Some(port),
            }])
            .app_name("quipu".to_string())
            // The driver also uses the connect timeout as the deadline of
            // its heartbeat to a server that does not stream them, and a
            // heartbeat timeout interrupts every query in flight. A busy
            // server (SecantusDB is single-threaded: one long find blocks
            // the hello) must not fail queries that way, so this is long;
            // server selection (5 s) still reports a down source quickly.
            .connect_timeout(monitor_timeout(source))
            .server_selection_timeout(Duration::from_secs(5))
            .max_pool_size(MAX_POOL)
            .build();
        options.direct_connection =
            Some(o("direct_connection").map(|v| v != "false").unwrap_or(true));
        if o("tls").is_some_and(|v| v == "true") {
            options.tls = Some(mongodb::options::Tls::Enabled(Default::default()));
        }
        if let Some(user) = o("user") {
            let password = o("password")
                .map(secret::resolve)
                .transpose()
                .map_err(|e| bad(source, e.to_string()))?;
            options.credential = Some(
                mongodb::options::Credential::builder()
                    .username(user.to_string())
                    .password(password)
                    .source(o("auth_source").map(str::to_string))
                    .build(),
            );
        }
        let client = mongodb::Client::with_options(options)
            .map_err(|e| bad(source, format!("cannot connect to MongoDB: {e}")))?;
        clients.insert(source.name.clone(), (key, client.clone()));
        Ok(client.database(&db))
    }
}

fn mongo_reason(e: &mongodb::error::Error) -> String {
    e.to_string().replace('\n', " ")
}

// ---- schema inference ------------------------------------------------------

/// What a sample says about one field.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Null,
    Int,
    Float,
    Str,
    Bool,
    Date,
    Doc(BTreeMap<String, Kind>),
    List(Box<Kind>),
    Mixed,
}

fn kind_of(v: &Bson) -> Kind {
    match v {
        Bson::Null | Bson::Undefined => Kind::Null,
        Bson::Int32(_) | Bson::Int64(_) => Kind::Int,
        Bson::Double(_) => Kind::Float,
        Bson::String(_) | Bson::ObjectId(_) | Bson::Decimal128(_) | Bson::Symbol(_) => Kind::Str,
        Bson::Boolean(_) => Kind::Bool,
        Bson::DateTime(_) => Kind::Date,
        Bson::Document(d) => Kind::Doc(d.iter().map(|(k, v)| (k.clone(), kind_of(v))).collect()),
        Bson::Array(items) => {
            Kind::List(Box::new(items.iter().map(kind_of).fold(Kind::Null, merge)))
        }
        _ => Kind::Mixed,
    }
}

fn merge(a: Kind, b: Kind) -> Kind {
    use Kind::*;
    match (a, b) {
        (Null, x) | (x, Null) => x,
        (Int, Float) | (Float, Int) => Float,
        (Doc(mut x), Doc(y)) => {
            for (k, v) in y {
                let merged = match x.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                x.insert(k, merged);
            }
            Doc(x)
        }
        (List(x), List(y)) => List(Box::new(merge(*x, *y))),
        (x, y) if x == y => x,
        _ => Mixed,
    }
}

fn arrow_type(k: &Kind) -> DataType {
    match k {
        Kind::Int => DataType::Int64,
        Kind::Float => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::Date => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        Kind::Doc(fields) if !fields.is_empty() => DataType::Struct(
            fields
                .iter()
                .map(|(n, k)| Field::new(n, arrow_type(k), true))
                .collect(),
        ),
        Kind::List(inner)
            if matches!(
                **inner,
                Kind::Int | Kind::Float | Kind::Str | Kind::Bool | Kind::Date
            ) =>
        {
            DataType::List(Arc::new(Field::new("item", arrow_type(inner), true)))
        }
        _ => DataType::Utf8,
    }
}

/// Lists the collections (or the `collections` allow-list) and infers each
/// one's schema from a sample. Empty collections are skipped with a
/// warning: they need a declared schema.
pub async fn discover(clients: &MongoClients, source: &SourceDef) -> Result<Vec<TableDef>> {
    let db = clients.database(source)?;
    let allow: Vec<String> = source
        .options
        .get("collections")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut names = db.list_collection_names().await.map_err(|e| {
        bad(
            source,
            format!("cannot list collections: {}", mongo_reason(&e)),
        )
    })?;
    names.retain(|n| !n.starts_with("system.") && !n.starts_with('_'));
    if !allow.is_empty() {
        names.retain(|n| allow.contains(n));
    }
    names.sort();
    let mut tables = Vec::new();
    for name in names {
        let coll = db.collection::<Document>(&name);
        let docs: Vec<Document> = coll
            .find(doc! {})
            .limit(SAMPLE)
            .await
            .map_err(|e| {
                bad(
                    source,
                    format!("cannot sample {name}: {}", mongo_reason(&e)),
                )
            })?
            .try_collect()
            .await
            .map_err(|e| {
                bad(
                    source,
                    format!("cannot sample {name}: {}", mongo_reason(&e)),
                )
            })?;
        if docs.is_empty() {
            tracing::warn!(source = %source.name, "collection {name} is empty: declare its schema with `quipu catalog add-table`");
            continue;
        }
        // Field order: first seen.
        let mut order: Vec<String> = Vec::new();
        let mut kinds: HashMap<String, Kind> = HashMap::new();
        for d in &docs {
            for (k, v) in d {
                let kind = kind_of(v);
                match kinds.remove(k) {
                    Some(old) => {
                        kinds.insert(k.clone(), merge(old, kind));
                    }
                    None => {
                        order.push(k.clone());
                        kinds.insert(k.clone(), kind);
                    }
                }
            }
        }
        let columns = order
            .iter()
            .map(|k| ColumnDef {
                name: k.clone(),
                data_type: arrow_type(&kinds[k]).to_string(),
                nullable: true,
            })
            .collect();
        tables.push(TableDef {
            name: TableName {
                source: source.name.clone(),
                schema: "public".into(),
                table: name.clone(),
            },
            origin: TableOrigin::Discovered,
            location: Some(name),
            format: None,
            file_extension: None,
            columns,
            partition_columns: vec![],
            declared_schema: false,
            partitions: None,
        });
    }
    Ok(tables)
}

// ---- BSON to Arrow ---------------------------------------------------------

fn json_text(v: &Bson) -> String {
    match v {
        Bson::String(s) => s.clone(),
        Bson::ObjectId(o) => o.to_hex(),
        Bson::Decimal128(d) => d.to_string(),
        other => other.clone().into_relaxed_extjson().to_string(),
    }
}

/// The doubles that convert to i64 exactly: [-2^63, 2^63).
pub(crate) const I64_MIN_F: f64 = -9_223_372_036_854_775_808.0;
pub(crate) const I64_END_F: f64 = 9_223_372_036_854_775_808.0;

fn as_i64(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(x) => Some(*x as i64),
        Bson::Int64(x) => Some(*x),
        // An integral double in range; `as` would saturate 1e300 to i64::MAX.
        Bson::Double(x) if x.fract() == 0.0 && (I64_MIN_F..I64_END_F).contains(x) => {
            Some(*x as i64)
        }
        _ => None,
    }
}

fn as_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(x) => Some(*x as f64),
        Bson::Int64(x) => Some(*x as f64),
        Bson::Double(x) => Some(*x),
        _ => None,
    }
}

fn present(v: Option<&Bson>) -> Option<&Bson> {
    v.filter(|b| !matches!(b, Bson::Null | Bson::Undefined))
}

/// One column of `t` from the values of a field across documents.
fn build(t: &DataType, values: &[Option<&Bson>]) -> DfResult<ArrayRef> {
    let values: Vec<Option<&Bson>> = values.iter().map(|v| present(*v)).collect();
    Ok(match t {
        DataType::Int64 => Arc::new(
            values
                .iter()
                .map(|v| v.and_then(as_i64))
                .collect::<Int64Array>(),
        ),
        DataType::Float64 => Arc::new(
            values
                .iter()
                .map(|v| v.and_then(as_f64))
                .collect::<Float64Array>(),
        ),
        DataType::Boolean => Arc::new(
            values
                .iter()
                .map(|v| v.and_then(|b| b.as_bool()))
                .collect::<BooleanArray>(),
        ),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => Arc::new(
            values
                .iter()
                .map(|v| {
                    v.and_then(|b| b.as_datetime())
                        .map(|d| d.timestamp_millis())
                })
                .collect::<TimestampMillisecondArray>()
                .with_timezone_opt(tz.clone()),
        ),
        DataType::Struct(fields) => {
            let docs: Vec<Option<&Document>> = values
                .iter()
                .map(|v| v.and_then(|b| b.as_document()))
                .collect();
            let children = fields
                .iter()
                .map(|f| {
                    let vals: Vec<Option<&Bson>> = docs
                        .iter()
                        .map(|d| d.and_then(|d| d.get(f.name())))
                        .collect();
                    build(f.data_type(), &vals)
                })
                .collect::<DfResult<Vec<_>>>()?;
            let nulls = NullBuffer::from(docs.iter().map(|d| d.is_some()).collect::<Vec<_>>());
            Arc::new(StructArray::try_new(fields.clone(), children, Some(nulls))?)
        }
        DataType::List(field) => {
            let arrays: Vec<Option<&Vec<Bson>>> = values
                .iter()
                .map(|v| v.and_then(|b| b.as_array()))
                .collect();
            let mut offsets = vec![0i32];
            let mut items: Vec<Option<&Bson>> = Vec::new();
            for a in &arrays {
                if let Some(a) = a {
                    items.extend(a.iter().map(Some));
                }
                offsets.push(items.len() as i32);
            }
            let child = build(field.data_type(), &items)?;
            let nulls = NullBuffer::from(arrays.iter().map(|a| a.is_some()).collect::<Vec<_>>());
            Arc::new(ListArray::try_new(
                field.clone(),
                OffsetBuffer::new(offsets.into()),
                child,
                Some(nulls),
            )?)
        }
        DataType::Null => Arc::new(NullArray::new(values.len())),
        _ => Arc::new(
            values
                .iter()
                .map(|v| v.map(json_text))
                .collect::<StringArray>(),
        ),
    })
}

fn to_batch(schema: &SchemaRef, docs: &[Document]) -> DfResult<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            let vals: Vec<Option<&Bson>> = docs.iter().map(|d| d.get(f.name())).collect();
            build(f.data_type(), &vals)
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(docs.len())),
    )?)
}

// ---- filters ---------------------------------------------------------------

/// A value as BSON for a field of type `t` (None: not comparable there).
pub(crate) fn bson_value(v: &ScalarValue, t: &DataType) -> Option<Bson> {
    use ScalarValue::*;
    let numeric = matches!(t, DataType::Int64 | DataType::Float64);
    Some(match v {
        _ if v.is_null() => return None,
        Int8(Some(x)) if numeric => Bson::Int64(*x as i64),
        Int16(Some(x)) if numeric => Bson::Int64(*x as i64),
        Int32(Some(x)) if numeric => Bson::Int64(*x as i64),
        Int64(Some(x)) if numeric => Bson::Int64(*x),
        Float64(Some(x)) if numeric && x.is_finite() => Bson::Double(*x),
        Boolean(Some(b)) if *t == DataType::Boolean => Bson::Boolean(*b),
        // Strings compare as strings: `{"$gt": ""}` given as a value stays a value.
        Utf8(Some(s)) | LargeUtf8(Some(s)) | Utf8View(Some(s)) if *t == DataType::Utf8 => {
            Bson::String(s.clone())
        }
        TimestampMillisecond(Some(ms), _) if matches!(t, DataType::Timestamp(_, _)) => {
            Bson::DateTime(mongodb::bson::DateTime::from_millis(*ms))
        }
        TimestampMicrosecond(Some(us), _)
            if matches!(t, DataType::Timestamp(_, _)) && us % 1000 == 0 =>
        {
            Bson::DateTime(mongodb::bson::DateTime::from_millis(us / 1000))
        }
        _ => return None,
    })
}

/// BSON types a text column's values may have besides strings, ObjectIds
/// and null: the reader gives each of them as text (`json_text`), so a
/// query on the column's text must not drop them at the source. Listed
/// positively so that an index on the field still bounds the scan.
const TEXT_OTHER_TYPES: [&str; 16] = [
    "double",
    "object",
    "array",
    "binData",
    "bool",
    "date",
    "regex",
    "javascript",
    "int",
    "timestamp",
    "long",
    "decimal",
    "minKey",
    "maxKey",
    "symbol",
    "dbPointer",
];

/// MongoDB's name for a SQL comparison operator, in queries and in
/// aggregation expressions alike.
pub(crate) fn comparison_op(op: Operator) -> Option<&'static str> {
    Some(match op {
        Operator::Eq => "$eq",
        Operator::NotEq => "$ne",
        Operator::Lt => "$lt",
        Operator::LtEq => "$lte",
        Operator::Gt => "$gt",
        Operator::GtEq => "$gte",
        _ => return None,
    })
}

/// The ObjectId a text value names: the reader gives an ObjectId as its 24
/// lower-case hex digits, so only such text can equal one.
fn object_id_of(text: &str) -> Option<mongodb::bson::oid::ObjectId> {
    let hex = text.len() == 24
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex.then(|| mongodb::bson::oid::ObjectId::parse_str(text).ok())
        .flatten()
}

/// The query document for SQL's `name <op> value` on field `name` of Arrow
/// type `t`: every row where the SQL predicate is TRUE matches (Quipu
/// re-checks what comes back, so more may match). The one place a SQL
/// comparison becomes a MongoDB query condition, for filters and for join
/// keys: MongoDB compares values of one BSON type only, while a Quipu text
/// column also holds ObjectIds (as hex), decimals and other values as
/// text, which a plain string condition would drop at the source.
pub(crate) fn field_condition(
    name: &str,
    op: Operator,
    value: &ScalarValue,
    t: &DataType,
) -> Option<Document> {
    let mop = comparison_op(op)?;
    let v = bson_value(value, t)?;
    let plain = |mop: &str, v: Bson| {
        let mut d = Document::new();
        d.insert(name, doc! { mop: v });
        d
    };
    let Bson::String(text) = &v else {
        return Some(plain(mop, v));
    };
    // `$ne` matches every value of another type already.
    if op == Operator::NotEq {
        return Some(plain(mop, v));
    }
    let object_ids = match op {
        Operator::Eq => match object_id_of(text) {
            Some(oid) => plain("$eq", Bson::ObjectId(oid)),
            None => return Some(any_of(vec![plain(mop, v.clone()), other_types(name)])),
        },
        // A range over hex text: every ObjectId, settled by the re-check.
        _ => plain("$type", Bson::String("objectId".into())),
    };
    Some(any_of(vec![
        plain(mop, v.clone()),
        object_ids,
        other_types(name),
    ]))
}

/// The query document for SQL's `name IN (values)` (no NULL among them),
/// a superset as [`field_condition`].
pub(crate) fn field_in(name: &str, values: &[&ScalarValue], t: &DataType) -> Option<Document> {
    let mut items = values
        .iter()
        .map(|v| bson_value(v, t))
        .collect::<Option<Vec<_>>>()?;
    if *t != DataType::Utf8 {
        return Some(doc! { name: { "$in": items } });
    }
    let ids: Vec<Bson> = items
        .iter()
        .filter_map(|v| match v {
            Bson::String(s) => object_id_of(s).map(Bson::ObjectId),
            _ => None,
        })
        .collect();
    items.extend(ids);
    Some(any_of(vec![
        doc! { name: { "$in": items } },
        other_types(name),
    ]))
}

fn other_types(name: &str) -> Document {
    doc! { name: { "$type": TEXT_OTHER_TYPES.to_vec() } }
}

fn any_of(parts: Vec<Document>) -> Document {
    doc! { "$or": parts }
}

/// A filter as a MongoDB query document on top-level fields. Mongo returns a
/// superset where SQL and Mongo semantics differ (NULL vs missing, text
/// columns holding other types), and DataFusion re-applies every filter.
pub fn filter_to_mongo(e: &Expr, schema: &Schema) -> Option<Document> {
    let field = |e: &Expr| match e {
        Expr::Column(c) => schema
            .field_with_name(&c.name)
            .ok()
            .map(|f| (f.name().clone(), f.data_type().clone())),
        _ => None,
    };
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => Some(
                doc! { "$and": [filter_to_mongo(left, schema)?, filter_to_mongo(right, schema)?] },
            ),
            Operator::Or => Some(
                doc! { "$or": [filter_to_mongo(left, schema)?, filter_to_mongo(right, schema)?] },
            ),
            _ => {
                let ((name, t), op, lit) = match (field(left), field(right)) {
                    (Some(f), None) => (f, *op, right.as_ref()),
                    (None, Some(f)) => (f, op.swap()?, left.as_ref()),
                    _ => return None,
                };
                let Expr::Literal(v, _) = lit else {
                    return None;
                };
                field_condition(&name, op, v, &t)
            }
        },
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            let (name, t) = field(expr)?;
            let items = list
                .iter()
                .map(|i| match i {
                    Expr::Literal(v, _) => Some(v),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            field_in(&name, &items, &t)
        }
        Expr::IsNotNull(inner) => {
            let (name, _) = field(inner)?;
            let mut d = Document::new();
            d.insert(name, doc! { "$ne": Bson::Null });
            Some(d)
        }
        _ => None,
    }
}

// ---- table and scan ----------------------------------------------------------

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
fn id_cuts(lo: &Bson, hi: &Bson, n: usize) -> Option<(Vec<Bson>, &'static str)> {
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
fn all_of(base: Document, more: Vec<Document>) -> Document {
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

/// The join keys a hash join published (`crate::remote::join_keys`), as
/// MongoDB query documents on the
/// scan's fields.
pub fn join_keys_filter(filters: &[Arc<dyn PhysicalExpr>], schema: &Schema) -> Vec<Document> {
    fn render(c: &crate::remote::join_keys::Cond, schema: &Schema) -> Option<Document> {
        match c {
            crate::remote::join_keys::Cond::False => Some(doc! { "_id": { "$exists": false } }),
            crate::remote::join_keys::Cond::And(parts) => {
                let parts: Vec<Bson> = parts
                    .iter()
                    .filter_map(|p| render(p, schema))
                    .map(Bson::Document)
                    .collect();
                (!parts.is_empty()).then(|| doc! { "$and": parts })
            }
            crate::remote::join_keys::Cond::Or(parts) => {
                let parts = parts
                    .iter()
                    .map(|p| render(p, schema).map(Bson::Document))
                    .collect::<Option<Vec<_>>>()?;
                Some(doc! { "$or": parts })
            }
            crate::remote::join_keys::Cond::In(i, values) => {
                let f = schema.fields().get(*i)?;
                let values: Vec<&ScalarValue> = values.iter().filter(|v| !v.is_null()).collect();
                field_in(f.name(), &values, f.data_type())
            }
            crate::remote::join_keys::Cond::Cmp(i, op, v) => {
                let f = schema.fields().get(*i)?;
                field_condition(f.name(), *op, v, f.data_type())
            }
        }
    }
    crate::remote::join_keys::current(filters)
        .iter()
        .filter_map(|c| render(c, schema))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Fields;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn inference_merges_and_widens() {
        let a = kind_of(&Bson::Document(
            doc! { "n": 1, "loc": { "id": 1 }, "tags": ["a"] },
        ));
        let b = kind_of(&Bson::Document(
            doc! { "n": 1.5, "loc": { "type": "store" }, "tags": [] },
        ));
        let Kind::Doc(m) = merge(a, b) else { panic!() };
        assert_eq!(arrow_type(&m["n"]), DataType::Float64);
        assert_eq!(
            arrow_type(&m["loc"]),
            DataType::Struct(Fields::from(vec![
                Field::new("id", DataType::Int64, true),
                Field::new("type", DataType::Utf8, true)
            ]))
        );
        assert!(matches!(arrow_type(&m["tags"]), DataType::List(_)));
        assert_eq!(merge(Kind::Str, Kind::Int), Kind::Mixed);
    }

    #[test]
    fn string_values_stay_values() {
        let schema = Schema::new(vec![
            Field::new("sku", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]);
        let f = filter_to_mongo(&col("sku").eq(lit("{\"$gt\": \"\"}")), &schema).unwrap();
        assert_eq!(
            f,
            doc! { "$or": [
                { "sku": { "$eq": "{\"$gt\": \"\"}" } },
                { "sku": { "$type": TEXT_OTHER_TYPES.to_vec() } },
            ] }
        );
        // A type mismatch is left to DataFusion.
        assert!(filter_to_mongo(&col("sku").eq(lit(5i64)), &schema).is_none());
        assert_eq!(
            filter_to_mongo(&col("n").lt_eq(lit(5i64)), &schema).unwrap(),
            doc! { "n": { "$lte": 5i64 } }
        );
    }

    /// Text columns hold ObjectIds as hex: a comparison with text reaches
    /// them as ObjectIds (equality) or lets every ObjectId through for the
    /// re-check (ranges), never as a string comparison that drops them.
    #[test]
    fn text_conditions_reach_object_ids() {
        let schema = Schema::new(vec![Field::new("_id", DataType::Utf8, true)]);
        let hex = "65a1b2c3d4e5f60718293a4b";
        let oid = mongodb::bson::oid::ObjectId::parse_str(hex).unwrap();
        let f = filter_to_mongo(&col("_id").eq(lit(hex)), &schema).unwrap();
        assert_eq!(
            f,
            doc! { "$or": [
                { "_id": { "$eq": hex } },
                { "_id": { "$eq": oid } },
                { "_id": { "$type": TEXT_OTHER_TYPES.to_vec() } },
            ] }
        );
        // Upper-case hex is not how the reader gives an ObjectId.
        let f = filter_to_mongo(&col("_id").eq(lit(hex.to_uppercase())), &schema).unwrap();
        assert!(!format!("{f:?}").contains("ObjectId"), "{f:?}");
        let f = filter_to_mongo(&col("_id").gt(lit("0")), &schema).unwrap();
        assert_eq!(
            f,
            doc! { "$or": [
                { "_id": { "$gt": "0" } },
                { "_id": { "$type": "objectId" } },
                { "_id": { "$type": TEXT_OTHER_TYPES.to_vec() } },
            ] }
        );
        let f = filter_to_mongo(
            &col("_id").in_list(vec![lit(hex), lit("x")], false),
            &schema,
        )
        .unwrap();
        assert_eq!(
            f,
            doc! { "$or": [
                { "_id": { "$in": [hex, "x", oid] } },
                { "_id": { "$type": TEXT_OTHER_TYPES.to_vec() } },
            ] }
        );
    }

    #[test]
    fn join_key_in_lists_become_in_filters() {
        use crate::remote::join_keys::fixtures;
        let m = join_keys_filter(&[fixtures::sku_range_and_list()], &fixtures::schema());
        assert_eq!(m.len(), 1);
        assert!(m[0].to_string().contains("$in"), "{}", m[0]);
    }
}
