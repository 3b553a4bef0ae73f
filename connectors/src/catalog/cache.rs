//! A materialized view as a table: the Parquet files of its serving
//! generation, with the plan of its defining query beside them (what the
//! grant check reads through, and what a query too strict for the cache's
//! age is answered with instead).

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Constraints, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use quipu_catalog::{CacheDef, ColumnDef};
use serde::{Deserialize, Serialize};

/// The files of one generation of a cache, as the cluster's plans carry
/// them: enough to read them again in another process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheFiles {
    /// `schema.name`, for messages.
    pub name: String,
    /// URL of the generation's directory.
    pub location: String,
    pub columns: Vec<ColumnDef>,
}

impl CacheFiles {
    /// A listing table over the generation's Parquet files.
    pub fn table(&self) -> DfResult<ListingTable> {
        let schema = quipu_catalog::types::schema_of(&self.columns)
            .map_err(|e| DataFusionError::Plan(format!("cache {}: {e}", self.name)))?;
        let url = ListingTableUrl::parse(&self.location).map_err(|e| {
            DataFusionError::Plan(format!(
                "cache {}: invalid location {}: {e}",
                self.name, self.location
            ))
        })?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        ListingTable::try_new(
            ListingTableConfig::new(url)
                .with_listing_options(options)
                .with_schema(Arc::new(schema)),
        )
    }
}

/// A materialized view with data: its serving generation's files, and the
/// plan of its defining query.
#[derive(Debug)]
pub struct CacheTable {
    pub def: CacheDef,
    pub files: CacheFiles,
    /// The defining query, planned as a view is (views inside not inlined).
    pub defining: LogicalPlan,
    table: ListingTable,
}

impl CacheTable {
    /// The table of `def`'s serving generation; None when it has none yet.
    pub fn new(def: CacheDef, defining: LogicalPlan) -> DfResult<Option<Self>> {
        let Some(location) = def.state.location.clone() else {
            return Ok(None);
        };
        let files = CacheFiles {
            name: def.qualified(),
            location,
            columns: def.state.columns.clone(),
        };
        let table = files.table()?;
        Ok(Some(CacheTable {
            def,
            files,
            defining,
            table,
        }))
    }

    /// Milliseconds since the serving generation's refresh began reading
    /// its sources.
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.def.state.read_at_ms.unwrap_or(0))
    }
}

#[async_trait]
impl TableProvider for CacheTable {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        None
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_table_definition(&self) -> Option<&str> {
        Some(&self.def.sql)
    }

    /// None: the planner must read the files, not inline the query.
    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        None
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // Held in memory when it fits (cache_memory.rs).
        if let Some((parts, _)) =
            super::cache_memory::held(&self.files.name, &self.files.location, &self.table, state)
                .await?
        {
            // The batches were read through `self.table`: its schema.
            return Ok(MemorySourceConfig::try_new_exec(
                &parts,
                self.table.schema(),
                projection.cloned(),
            )?);
        }
        self.table.scan(state, projection, filters, limit).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.table.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.table.statistics()
    }
}
