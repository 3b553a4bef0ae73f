//! Logical and physical extension codecs for Quipu's live-source tables and
//! scan operators, composed with another codec (Ballista's) for everything
//! else. With them a plan that reads PostgreSQL or MongoDB can be sent to
//! the scheduler and its scans run on executors.
//!
//! The encoded form names the source and carries the remote query (SQL, or
//! collection, filter, projection and limit) and the column types; never
//! connection options or credentials. The decoding side looks the source up
//! in its own catalog and connects with its own pools, resolving secret
//! references locally.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use mongodb::bson::Document;
use quipu_catalog::{ColumnDef, SourceDef, TableName, types};
use serde::{Deserialize, Serialize};

use crate::catalog_provider::QuipuCatalogList;
use crate::mongo::{MongoScanExec, MongoTable};
use crate::mongo_pushdown::MongoQueryTable;
use crate::postgres::{PgScanExec, PgTable};
use crate::pushdown::RemoteQueryTable;

/// Starts every buffer we encode. A zero byte cannot start a protobuf
/// message (field number 0 is invalid), so it never collides with what the
/// inner codec writes.
const MAGIC: &[u8] = b"\0quipu1\0";

#[derive(Debug, Serialize, Deserialize)]
enum Encoded {
    PgTable {
        source: String,
        schema: String,
        table: String,
        #[serde(default)]
        partitions: Option<u32>,
    },
    MongoTable {
        source: String,
        collection: String,
        #[serde(default)]
        partitions: Option<u32>,
    },
    RemoteQuery {
        source: String,
        sql: String,
        #[serde(default)]
        exact_decimals: bool,
    },
    MongoQuery {
        source: String,
        collection: String,
        pipeline: Vec<Vec<u8>>,
        default_row: Option<Vec<u8>>,
    },
    PgScan {
        source: String,
        sqls: Vec<String>,
        columns: Vec<ColumnDef>,
        #[serde(default)]
        merged: bool,
        #[serde(default)]
        exact_decimals: bool,
    },
    MongoScan {
        source: String,
        collection: String,
        columns: Vec<ColumnDef>,
        filter: Vec<u8>,
        projection: Vec<u8>,
        limit: Option<usize>,
        #[serde(default)]
        pipeline: Vec<Vec<u8>>,
        #[serde(default)]
        default_row: Option<Vec<u8>>,
        #[serde(default)]
        ranges: Vec<Vec<u8>>,
        #[serde(default)]
        merged: bool,
    },
}

fn write(e: &Encoded, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(MAGIC);
    serde_json::to_writer(buf, e).map_err(|e| DataFusionError::External(Box::new(e)))
}

fn read(buf: &[u8]) -> Option<Result<Encoded>> {
    let body = buf.strip_prefix(MAGIC)?;
    Some(
        serde_json::from_slice(body)
            .map_err(|e| DataFusionError::Plan(format!("cannot decode a Quipu plan node: {e}"))),
    )
}

fn schema_of(columns: &[ColumnDef]) -> Result<SchemaRef> {
    Ok(Arc::new(
        types::schema_of(columns).map_err(|e| DataFusionError::External(Box::new(e)))?,
    ))
}

fn bson_bytes(doc: &Document) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    doc.to_writer(&mut out)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(out)
}

fn bson_doc(bytes: &[u8]) -> Result<Document> {
    Document::from_reader(bytes).map_err(|e| DataFusionError::External(Box::new(e)))
}

fn bson_list(docs: &[Document]) -> Result<Vec<Vec<u8>>> {
    docs.iter().map(bson_bytes).collect()
}

fn bson_docs(list: &[Vec<u8>]) -> Result<Vec<Document>> {
    list.iter().map(|b| bson_doc(b)).collect()
}

/// The catalog and connection pools a decoded node runs with.
#[derive(Debug, Clone)]
struct Resolver {
    catalogs: QuipuCatalogList,
}

impl Resolver {
    fn source(&self, name: &str) -> Result<SourceDef> {
        let shared = &self.catalogs.shared;
        let lookup = || {
            shared
                .store
                .source(name)
                .map_err(|e| DataFusionError::External(Box::new(e)))
        };
        let mut found = lookup()?;
        if found.is_none()
            && let Some(refresh) = shared.on_source_miss.get()
        {
            // A source added since this process last synced its catalog.
            refresh(name);
            found = lookup()?;
        }
        found.ok_or_else(|| {
            DataFusionError::Plan(format!(
                "source `{name}` is not in this process's catalog (dropped while the query ran?)"
            ))
        })
    }

    fn encode_table(&self, node: &dyn TableProvider) -> Option<Encoded> {
        if let Some(t) = node.downcast_ref::<PgTable>() {
            return Some(Encoded::PgTable {
                source: t.source().name.clone(),
                schema: t.name().schema.clone(),
                table: t.name().table.clone(),
                partitions: t.partitions(),
            });
        }
        if let Some(t) = node.downcast_ref::<MongoTable>() {
            return Some(Encoded::MongoTable {
                source: t.source().name.clone(),
                collection: t.collection().to_string(),
                partitions: t.partitions(),
            });
        }
        if let Some(t) = node.downcast_ref::<RemoteQueryTable>() {
            return Some(Encoded::RemoteQuery {
                source: t.source().name.clone(),
                sql: t.sql().to_string(),
                exact_decimals: t.exact_decimals(),
            });
        }
        if let Some(t) = node.downcast_ref::<MongoQueryTable>() {
            return Some(Encoded::MongoQuery {
                source: t.source().name.clone(),
                collection: t.collection().to_string(),
                pipeline: bson_list(t.pipeline()).ok()?,
                default_row: match t.default_row() {
                    Some(d) => Some(bson_bytes(d).ok()?),
                    None => None,
                },
            });
        }
        None
    }

    fn decode_table(&self, e: Encoded, schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
        let shared = &self.catalogs.shared;
        Ok(match e {
            Encoded::PgTable {
                source,
                schema: remote_schema,
                table,
                partitions,
            } => {
                let source = self.source(&source)?;
                let name = TableName {
                    source: source.name.clone(),
                    schema: remote_schema,
                    table,
                };
                Arc::new(
                    PgTable::from_parts(source, name, schema, shared.pg.clone())
                        .with_partitions(partitions),
                )
            }
            Encoded::MongoTable {
                source,
                collection,
                partitions,
            } => Arc::new(
                MongoTable::from_parts(
                    self.source(&source)?,
                    collection,
                    schema,
                    shared.mongo.clone(),
                )
                .with_partitions(partitions),
            ),
            Encoded::RemoteQuery {
                source,
                sql,
                exact_decimals,
            } => Arc::new(RemoteQueryTable::from_parts(
                self.source(&source)?,
                shared.pg.clone(),
                schema,
                sql,
                exact_decimals,
            )),
            Encoded::MongoQuery {
                source,
                collection,
                pipeline,
                default_row,
            } => Arc::new(MongoQueryTable::from_parts(
                self.source(&source)?,
                shared.mongo.clone(),
                collection,
                schema,
                bson_docs(&pipeline)?,
                default_row.map(|d| bson_doc(&d)).transpose()?,
            )),
            other => {
                return Err(DataFusionError::Plan(format!(
                    "a Quipu scan operator was found where a table was expected: {other:?}"
                )));
            }
        })
    }

    fn encode_exec(&self, node: &dyn ExecutionPlan) -> Result<Option<Encoded>> {
        if let Some(s) = node.downcast_ref::<PgScanExec>() {
            return Ok(Some(Encoded::PgScan {
                source: s.source().name.clone(),
                sqls: s.sqls().to_vec(),
                columns: types::columns_of(&s.schema()),
                merged: s.is_merged(),
                exact_decimals: s.checks_decimals(),
            }));
        }
        if let Some(s) = node.downcast_ref::<MongoScanExec>() {
            return Ok(Some(Encoded::MongoScan {
                source: s.source().name.clone(),
                collection: s.collection().to_string(),
                columns: types::columns_of(&s.schema()),
                filter: bson_bytes(s.filter())?,
                projection: bson_bytes(s.projection())?,
                limit: s.limit(),
                pipeline: bson_list(s.pipeline())?,
                default_row: s.default_row().map(bson_bytes).transpose()?,
                ranges: bson_list(s.ranges())?,
                merged: s.is_merged(),
            }));
        }
        Ok(None)
    }

    fn decode_exec(&self, e: Encoded) -> Result<Arc<dyn ExecutionPlan>> {
        let shared = &self.catalogs.shared;
        Ok(match e {
            Encoded::PgScan {
                source,
                sqls,
                columns,
                merged,
                exact_decimals,
            } => {
                if sqls.is_empty() {
                    return Err(DataFusionError::Plan(
                        "a PostgreSQL scan without a remote query".into(),
                    ));
                }
                Arc::new(
                    PgScanExec::partitioned(
                        self.source(&source)?,
                        shared.pg.clone(),
                        schema_of(&columns)?,
                        sqls,
                    )
                    .merged(merged)
                    .exact_decimals(exact_decimals),
                )
            }
            Encoded::MongoScan {
                source,
                collection,
                columns,
                filter,
                projection,
                limit,
                pipeline,
                default_row,
                ranges,
                merged,
            } => Arc::new(
                MongoScanExec::new(
                    self.source(&source)?,
                    shared.mongo.clone(),
                    collection,
                    schema_of(&columns)?,
                    bson_doc(&filter)?,
                    bson_doc(&projection)?,
                    limit,
                )
                .with_pipeline(
                    bson_docs(&pipeline)?,
                    default_row.map(|d| bson_doc(&d)).transpose()?,
                )
                .with_ranges(bson_docs(&ranges)?, merged),
            ),
            other => {
                return Err(DataFusionError::Plan(format!(
                    "a Quipu table was found where a scan operator was expected: {other:?}"
                )));
            }
        })
    }
}

/// Quipu's logical codec: live-source tables here, the rest to `inner`.
#[derive(Debug)]
pub struct QuipuLogicalCodec {
    resolver: Resolver,
    inner: Arc<dyn LogicalExtensionCodec>,
}

impl QuipuLogicalCodec {
    pub fn new(catalogs: QuipuCatalogList, inner: Arc<dyn LogicalExtensionCodec>) -> Self {
        QuipuLogicalCodec {
            resolver: Resolver { catalogs },
            inner,
        }
    }
}

impl LogicalExtensionCodec for QuipuLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match read(buf) {
            Some(e) => self.resolver.decode_table(e?, schema),
            None => self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match self.resolver.encode_table(node.as_ref()) {
            Some(e) => write(&e, buf),
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

/// Quipu's physical codec: live-source scans here, the rest to `inner`.
#[derive(Debug)]
pub struct QuipuPhysicalCodec {
    resolver: Resolver,
    inner: Arc<dyn PhysicalExtensionCodec>,
}

impl QuipuPhysicalCodec {
    pub fn new(catalogs: QuipuCatalogList, inner: Arc<dyn PhysicalExtensionCodec>) -> Self {
        QuipuPhysicalCodec {
            resolver: Resolver { catalogs },
            inner,
        }
    }
}

impl PhysicalExtensionCodec for QuipuPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match read(buf) {
            Some(e) => self.resolver.decode_exec(e?),
            None => self.inner.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        match self.resolver.encode_exec(node.as_ref())? {
            Some(e) => write(&e, buf),
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_expr(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn datafusion::physical_expr::PhysicalExpr>],
        ctx: &datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx<
            '_,
        >,
    ) -> Result<Arc<dyn datafusion::physical_expr::PhysicalExpr>> {
        self.inner.try_decode_expr(buf, inputs, ctx)
    }

    fn try_encode_expr(
        &self,
        node: &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        buf: &mut Vec<u8>,
        ctx: &datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx<
            '_,
        >,
    ) -> Result<()> {
        self.inner.try_encode_expr(node, buf, ctx)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}
