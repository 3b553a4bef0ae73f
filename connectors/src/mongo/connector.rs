//! MongoDB as a [`Connector`]: discovery by sampling, declared tables, and
//! its part of the codecs (tables, pushed pipelines, scans by their query).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::physical_plan::ExecutionPlan;
use mongodb::bson::Document;
use quipu_catalog::{ColumnDef, SourceDef, SourceKind, TableDef, TableOrigin, types};
use serde::{Deserialize, Serialize};

use crate::connector::{Connector, Encoded, Env, Registration, TableRequest};
use crate::error::{ConnectorError, Result};
use crate::mongo::pushdown::MongoQueryTable;
use crate::mongo::{MongoClients, MongoScanExec, MongoTable};

/// MongoDB sources, with the process's clients.
#[derive(Debug, Default)]
pub struct Mongo {
    clients: Arc<MongoClients>,
}

/// MongoDB's entry in `crate::registry`.
pub const REGISTRATION: Registration = Registration {
    connector: || Arc::new(Mongo::default()),
    remote_scan: Some(super::remote_scan),
    logical_rules: || vec![Arc::new(crate::mongo::pushdown::PushToMongo::default())],
};

/// What the codecs carry of a MongoDB node (the source goes beside it);
/// documents as BSON bytes.
#[derive(Debug, Serialize, Deserialize)]
enum Node {
    Table {
        collection: String,
        partitions: Option<u32>,
    },
    Query {
        collection: String,
        pipeline: Vec<Vec<u8>>,
        default_row: Option<Vec<u8>>,
    },
    Scan {
        collection: String,
        columns: Vec<ColumnDef>,
        filter: Vec<u8>,
        projection: Vec<u8>,
        limit: Option<usize>,
        pipeline: Vec<Vec<u8>>,
        default_row: Option<Vec<u8>>,
        ranges: Vec<Vec<u8>>,
        merged: bool,
    },
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

fn bson_bytes(doc: &Document) -> DfResult<Vec<u8>> {
    let mut out = Vec::new();
    doc.to_writer(&mut out).map_err(external)?;
    Ok(out)
}

fn bson_doc(bytes: &[u8]) -> DfResult<Document> {
    Document::from_reader(bytes).map_err(external)
}

fn bson_list(docs: &[Document]) -> DfResult<Vec<Vec<u8>>> {
    docs.iter().map(bson_bytes).collect()
}

fn bson_docs(list: &[Vec<u8>]) -> DfResult<Vec<Document>> {
    list.iter().map(|b| bson_doc(b)).collect()
}

#[async_trait]
impl Connector for Mongo {
    fn kind(&self) -> SourceKind {
        SourceKind::Mongodb
    }

    async fn discover(&self, _env: &Env, source: &SourceDef) -> Result<Vec<TableDef>> {
        super::discover(&self.clients, source).await
    }

    async fn declare_table(
        &self,
        _env: &Env,
        _source: &SourceDef,
        request: TableRequest,
    ) -> Result<TableDef> {
        let name = request.name;
        let columns = request.declared.ok_or_else(|| ConnectorError::Table {
            table: name.to_string(),
            reason: "a MongoDB table needs declared columns (--column NAME:TYPE)".into(),
        })?;
        Ok(TableDef {
            location: Some(if request.location.is_empty() {
                name.table.clone()
            } else {
                request.location
            }),
            name,
            origin: TableOrigin::Declared,
            format: None,
            file_extension: None,
            partition_columns: vec![],
            declared_schema: true,
            partitions: None,
            primary_key: super::schema::primary_key(columns.iter().map(|c| c.name.as_str())),
            columns,
        })
    }

    fn splits_reads(&self) -> bool {
        true
    }

    async fn table_provider(
        &self,
        _env: &Env,
        source: &SourceDef,
        def: &TableDef,
    ) -> DfResult<Arc<dyn TableProvider>> {
        Ok(Arc::new(MongoTable::new(
            source,
            def,
            self.clients.clone(),
        )?))
    }

    async fn close(&self) {
        self.clients.shutdown().await;
    }

    fn encode_table(&self, table: &dyn TableProvider) -> Option<DfResult<Encoded>> {
        if let Some(t) = table.downcast_ref::<MongoTable>() {
            let node = Node::Table {
                collection: t.collection().to_string(),
                partitions: t.partitions(),
            };
            return Some(Encoded::new(t.source(), node));
        }
        let t = table.downcast_ref::<MongoQueryTable>()?;
        let node = (|| {
            Ok(Node::Query {
                collection: t.collection().to_string(),
                pipeline: bson_list(t.pipeline())?,
                default_row: t.default_row().map(bson_bytes).transpose()?,
            })
        })();
        Some(node.and_then(|node| Encoded::new(t.source(), node)))
    }

    fn decode_table(
        &self,
        encoded: Encoded,
        schema: SchemaRef,
        source: SourceDef,
    ) -> DfResult<Arc<dyn TableProvider>> {
        Ok(match encoded.node()? {
            Node::Table {
                collection,
                partitions,
            } => Arc::new(
                MongoTable::from_parts(source, collection, schema, self.clients.clone())
                    .with_partitions(partitions),
            ),
            Node::Query {
                collection,
                pipeline,
                default_row,
            } => Arc::new(MongoQueryTable::from_parts(
                source,
                self.clients.clone(),
                collection,
                schema,
                bson_docs(&pipeline)?,
                default_row.map(|d| bson_doc(&d)).transpose()?,
            )),
            Node::Scan { .. } => {
                return Err(DataFusionError::Plan(
                    "a Quipu scan operator was found where a table was expected".into(),
                ));
            }
        })
    }

    fn encode_exec(&self, plan: &dyn ExecutionPlan) -> Option<DfResult<Encoded>> {
        let s = plan.downcast_ref::<MongoScanExec>()?;
        let node = (|| {
            Ok(Node::Scan {
                collection: s.collection().to_string(),
                columns: types::columns_of(&s.schema()),
                filter: bson_bytes(s.filter())?,
                projection: bson_bytes(s.projection())?,
                limit: s.limit(),
                pipeline: bson_list(s.pipeline())?,
                default_row: s.default_row().map(bson_bytes).transpose()?,
                ranges: bson_list(s.ranges())?,
                merged: s.is_merged(),
            })
        })();
        Some(node.and_then(|node| Encoded::new(s.source(), node)))
    }

    fn decode_exec(&self, encoded: Encoded, source: SourceDef) -> DfResult<Arc<dyn ExecutionPlan>> {
        let Node::Scan {
            collection,
            columns,
            filter,
            projection,
            limit,
            pipeline,
            default_row,
            ranges,
            merged,
        } = encoded.node()?
        else {
            return Err(DataFusionError::Plan(
                "a Quipu table was found where a scan operator was expected".into(),
            ));
        };
        let schema = Arc::new(types::schema_of(&columns).map_err(external)?);
        Ok(Arc::new(
            MongoScanExec::new(
                source,
                self.clients.clone(),
                collection,
                schema,
                bson_doc(&filter)?,
                bson_doc(&projection)?,
                limit,
            )
            .with_pipeline(
                bson_docs(&pipeline)?,
                default_row.map(|d| bson_doc(&d)).transpose()?,
            )
            .with_ranges(bson_docs(&ranges)?, merged),
        ))
    }
}
