//! PostgreSQL as a [`Connector`]: discovery, tables, and its part of the
//! codecs (tables, pushed remote queries, scans by their SQL).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::physical_plan::ExecutionPlan;
use quipu_catalog::{ColumnDef, SourceDef, SourceKind, TableDef, TableName, types};
use serde::{Deserialize, Serialize};

use crate::connector::{Connector, Encoded, Env, Registration, TableRequest};
use crate::error::{ConnectorError, Result};
use crate::postgres::pushdown::RemoteQueryTable;
use crate::postgres::{PgPools, PgScanExec, PgTable};

/// PostgreSQL sources, with the process's connection pools.
#[derive(Debug, Default)]
pub struct Postgres {
    pools: Arc<PgPools>,
}

/// PostgreSQL's entry in `crate::registry`.
pub const REGISTRATION: Registration = Registration {
    connector: || Arc::new(Postgres::default()),
    remote_scan: Some(super::remote_scan),
    logical_rules: || vec![Arc::new(crate::postgres::pushdown::PushToSources::default())],
};

/// What the codecs carry of a PostgreSQL node (the source goes beside it).
#[derive(Debug, Serialize, Deserialize)]
enum Node {
    Table {
        schema: String,
        table: String,
        partitions: Option<u32>,
    },
    RemoteQuery {
        sql: String,
        exact_decimals: bool,
    },
    Scan {
        sqls: Vec<String>,
        columns: Vec<ColumnDef>,
        merged: bool,
        exact_decimals: bool,
    },
}

#[async_trait]
impl Connector for Postgres {
    fn kind(&self) -> SourceKind {
        SourceKind::Postgres
    }

    async fn discover(&self, _env: &Env, source: &SourceDef) -> Result<Vec<TableDef>> {
        super::discover(&self.pools, source).await
    }

    async fn declare_table(
        &self,
        _env: &Env,
        _source: &SourceDef,
        request: TableRequest,
    ) -> Result<TableDef> {
        Err(ConnectorError::Table {
            table: request.name.to_string(),
            reason:
                "PostgreSQL tables are discovered; use `quipu catalog refresh` after creating one"
                    .into(),
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
        Ok(Arc::new(PgTable::new(source, def, self.pools.clone())?))
    }

    fn encode_table(&self, table: &dyn TableProvider) -> Option<DfResult<Encoded>> {
        if let Some(t) = table.downcast_ref::<PgTable>() {
            let node = Node::Table {
                schema: t.name().schema.clone(),
                table: t.name().table.clone(),
                partitions: t.partitions(),
            };
            return Some(Encoded::new(t.source(), node));
        }
        let t = table.downcast_ref::<RemoteQueryTable>()?;
        let node = Node::RemoteQuery {
            sql: t.sql().to_string(),
            exact_decimals: t.exact_decimals(),
        };
        Some(Encoded::new(t.source(), node))
    }

    fn decode_table(
        &self,
        encoded: Encoded,
        schema: SchemaRef,
        source: SourceDef,
    ) -> DfResult<Arc<dyn TableProvider>> {
        Ok(match encoded.node()? {
            Node::Table {
                schema: remote_schema,
                table,
                partitions,
            } => {
                let name = TableName {
                    source: source.name.clone(),
                    schema: remote_schema,
                    table,
                };
                Arc::new(
                    PgTable::from_parts(source, name, schema, self.pools.clone())
                        .with_partitions(partitions),
                )
            }
            Node::RemoteQuery {
                sql,
                exact_decimals,
            } => Arc::new(RemoteQueryTable::from_parts(
                source,
                self.pools.clone(),
                schema,
                sql,
                exact_decimals,
            )),
            Node::Scan { .. } => return Err(scan_for_table()),
        })
    }

    fn encode_exec(&self, plan: &dyn ExecutionPlan) -> Option<DfResult<Encoded>> {
        let s = plan.downcast_ref::<PgScanExec>()?;
        let node = Node::Scan {
            sqls: s.sqls().to_vec(),
            columns: types::columns_of(&s.schema()),
            merged: s.is_merged(),
            exact_decimals: s.checks_decimals(),
        };
        Some(Encoded::new(s.source(), node))
    }

    fn decode_exec(&self, encoded: Encoded, source: SourceDef) -> DfResult<Arc<dyn ExecutionPlan>> {
        let Node::Scan {
            sqls,
            columns,
            merged,
            exact_decimals,
        } = encoded.node()?
        else {
            return Err(DataFusionError::Plan(
                "a Quipu table was found where a scan operator was expected".into(),
            ));
        };
        if sqls.is_empty() {
            return Err(DataFusionError::Plan(
                "a PostgreSQL scan without a remote query".into(),
            ));
        }
        let schema = Arc::new(
            types::schema_of(&columns).map_err(|e| DataFusionError::External(Box::new(e)))?,
        );
        Ok(Arc::new(
            PgScanExec::partitioned(source, self.pools.clone(), schema, sqls)
                .merged(merged)
                .exact_decimals(exact_decimals),
        ))
    }
}

fn scan_for_table() -> DataFusionError {
    DataFusionError::Plan("a Quipu scan operator was found where a table was expected".into())
}
