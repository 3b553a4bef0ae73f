//! The lake as a [`Connector`]: an object store of files, one folder (or
//! file) a table.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::TableProvider;
use datafusion::error::Result as DfResult;
use quipu_catalog::{SourceDef, SourceKind, TableDef};

use crate::connector::{Connector, Env, Registration, TableRequest};
use crate::error::Result;
use crate::lake::object_stores::{lake_root, normalize_lake_url};

/// Lake sources.
#[derive(Debug, Default)]
pub struct Lake;

/// The lake's entry in `crate::registry`: DataFusion's listing tables do
/// their own pushdown.
pub const REGISTRATION: Registration = Registration {
    connector: || Arc::new(Lake),
    remote_scan: None,
    logical_rules: Vec::new,
};

#[async_trait]
impl Connector for Lake {
    fn kind(&self) -> SourceKind {
        SourceKind::Lake
    }

    /// A `url` given as a relative path is stored as an absolute `file://`
    /// URL, so the catalog means the same from any directory.
    fn normalize(&self, source: &mut SourceDef) -> Result<()> {
        if let Some(raw) = source.options.get("url") {
            let url = normalize_lake_url(&source.name, raw)?;
            source.options.insert("url".into(), url.to_string());
        }
        Ok(())
    }

    async fn discover(&self, env: &Env, source: &SourceDef) -> Result<Vec<TableDef>> {
        let root = lake_root(source, &env.runtime, &env.memory)?;
        super::discover(&env.state(), source, &root).await
    }

    async fn declare_table(
        &self,
        env: &Env,
        source: &SourceDef,
        request: TableRequest,
    ) -> Result<TableDef> {
        let root = lake_root(source, &env.runtime, &env.memory)?;
        super::describe_location(&env.state(), source, &root, request).await
    }

    /// A lake table is split by its files.
    fn splits_reads(&self) -> bool {
        false
    }

    async fn table_provider(
        &self,
        env: &Env,
        source: &SourceDef,
        def: &TableDef,
    ) -> DfResult<Arc<dyn TableProvider>> {
        let root = lake_root(source, &env.runtime, &env.memory)?;
        Ok(super::listing_table(&env.state(), source, &root, def).await?)
    }
}
