//! What one client may see and read.
//!
//! A front-door user is granted sources (`crm`, `lake`, or all). Their
//! session plans over a [`SessionCatalogList`] that hides the other sources,
//! so `information_schema`, `pg_catalog` and Flight SQL metadata (all built
//! from the session's catalog list) do not list them, and a query naming
//! them does not resolve. Views live in the shared `quipu` catalog; a view
//! is listed only to who may read its sources (read from its SQL by
//! `QuipuCatalogList::view_sources`), and reading one is checked by
//! [`sources_read`] on the planned query, which follows views down to the
//! tables they read.
//!
//! The wrapper also holds per-session schemas, found in every catalog
//! (`pg_catalog`, registered by the PostgreSQL front door), which must not
//! be persisted as `CREATE SCHEMA` would.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use std::borrow::Cow;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, SchemaProvider, Session, TableProvider,
};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Constraints, Statistics, TableReference};
use datafusion::datasource::{TableType, source_as_provider};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use quipu_catalog::DEFAULT_CATALOG;

/// Schemas of the `quipu` catalog that belong to one session, not to the
/// catalog store.
const SESSION_SCHEMAS: &[&str] = &["pg_catalog"];

/// The sources a client may read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// `None`: every source.
    sources: Option<BTreeSet<String>>,
    /// May change the catalog (DDL such as `CREATE VIEW`).
    admin: bool,
}

impl Access {
    /// Everything (the CLI, admins, the embedded engine).
    pub fn all() -> Self {
        Access {
            sources: None,
            admin: true,
        }
    }

    /// Only these sources, no catalog changes.
    pub fn only(sources: impl IntoIterator<Item = String>) -> Self {
        Access {
            sources: Some(sources.into_iter().collect()),
            admin: false,
        }
    }

    /// `grants`: `None` for every source.
    pub fn new(grants: Option<BTreeSet<String>>, admin: bool) -> Self {
        Access {
            sources: grants,
            admin,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// Granted every source.
    pub fn reads_everything(&self) -> bool {
        self.sources.is_none()
    }

    pub fn may_read(&self, source: &str) -> bool {
        source == DEFAULT_CATALOG
            || self
                .sources
                .as_ref()
                .is_none_or(|granted| granted.contains(source))
    }

    /// The first source of `plan` this access may not read, if any.
    pub fn first_denied(
        &self,
        plan: &LogicalPlan,
        default_catalog: &str,
        default_schema: &str,
    ) -> Option<String> {
        if self.reads_everything() {
            return None;
        }
        sources_read(plan, default_catalog, default_schema)
            .into_iter()
            .find(|s| !self.may_read(s))
    }
}

/// Every catalog (source) a logical plan reads, through views and
/// subqueries.
pub fn sources_read(
    plan: &LogicalPlan,
    default_catalog: &str,
    default_schema: &str,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect(plan, default_catalog, default_schema, &mut out, 0);
    out
}

fn collect(
    plan: &LogicalPlan,
    default_catalog: &str,
    default_schema: &str,
    out: &mut BTreeSet<String>,
    depth: usize,
) {
    // Views nest at most 16 deep (catalog::MAX_VIEW_DEPTH); a
    // deeper chain does not plan in the first place.
    if depth > 32 {
        return;
    }
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let resolved =
                TableReference::clone(&scan.table_name).resolve(default_catalog, default_schema);
            out.insert(resolved.catalog.to_string());
            // A view's plan (through `GrantedViews`' wrapper too).
            let provider = source_as_provider(&scan.source).ok();
            // A materialized view reads what its query reads: its files
            // are as secret as the sources behind them.
            if let Some(cache) = provider.as_ref().and_then(|p| {
                (p.as_ref() as &dyn std::any::Any).downcast_ref::<super::cache::CacheTable>()
            }) {
                collect(
                    &cache.defining,
                    DEFAULT_CATALOG,
                    quipu_catalog::DEFAULT_SCHEMA,
                    out,
                    depth + 1,
                );
            }
            if let Some(provider) = provider
                && let Some(view) = provider.get_logical_plan()
            {
                // A view's SQL names what it reads as seen from the
                // `quipu` catalog, whatever database the session is in.
                collect(
                    &view,
                    DEFAULT_CATALOG,
                    quipu_catalog::DEFAULT_SCHEMA,
                    out,
                    depth + 1,
                );
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

/// A client's view of the catalogs: the granted sources, the `quipu`
/// catalog, and that session's own schemas.
#[derive(Debug)]
pub struct SessionCatalogList {
    inner: Arc<dyn CatalogProviderList>,
    access: Access,
    session_schemas: Arc<RwLock<BTreeMap<String, Arc<dyn SchemaProvider>>>>,
    /// Tells which sources a view reads, to leave unreadable views out of
    /// listings.
    views: Option<crate::catalog::QuipuCatalogList>,
}

impl SessionCatalogList {
    pub fn new(inner: Arc<dyn CatalogProviderList>, access: Access) -> Self {
        SessionCatalogList {
            inner,
            access,
            session_schemas: Default::default(),
            views: None,
        }
    }

    /// Lists only the views this access may read (their sources found by
    /// `catalogs`); without it, every view is listed.
    pub fn listing_views_by(mut self, catalogs: crate::catalog::QuipuCatalogList) -> Self {
        self.views = Some(catalogs);
        self
    }
}

impl CatalogProviderList for SessionCatalogList {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.inner
            .catalog_names()
            .into_iter()
            .filter(|c| self.access.may_read(c))
            .collect()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        if !self.access.may_read(name) {
            return None;
        }
        let inner = self.inner.catalog(name)?;
        Some(Arc::new(WithSessionSchemas {
            inner,
            access: self.access.clone(),
            views: name == DEFAULT_CATALOG,
            session_schemas: self.session_schemas.clone(),
            lister: self.views.clone(),
        }))
    }
}

/// A catalog plus one session's own schemas: `pg_catalog` is in every
/// database, as in PostgreSQL, so a client connected to `lake` finds
/// `pg_catalog.pg_class` (which `lake.pg_catalog.pg_class` resolves to).
#[derive(Debug)]
struct WithSessionSchemas {
    inner: Arc<dyn CatalogProvider>,
    access: Access,
    /// The `quipu` catalog: its views are shown per grant.
    views: bool,
    session_schemas: Arc<RwLock<BTreeMap<String, Arc<dyn SchemaProvider>>>>,
    lister: Option<crate::catalog::QuipuCatalogList>,
}

impl CatalogProvider for WithSessionSchemas {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.inner.schema_names();
        names.extend(self.session_schemas.read().unwrap().keys().cloned());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(s) = self.session_schemas.read().unwrap().get(name) {
            return Some(s.clone());
        }
        let inner = self.inner.schema(name)?;
        // Who reads every source sees every definition: no wrapper, no
        // walk of each view's plan on every name lookup.
        if !self.views || self.access.reads_everything() {
            return Some(inner);
        }
        Some(Arc::new(GrantedViews {
            inner,
            access: self.access.clone(),
            schema: name.to_string(),
            lister: self.lister.clone(),
        }))
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> DfResult<Option<Arc<dyn SchemaProvider>>> {
        if SESSION_SCHEMAS.contains(&name) {
            return Ok(self
                .session_schemas
                .write()
                .unwrap()
                .insert(name.to_string(), schema));
        }
        self.inner.register_schema(name, schema)
    }
}

/// A schema of the `quipu` catalog as one client sees it: a view that
/// reads a source the client may not read keeps its name and columns
/// (reading it is refused by [`sources_read`]), but not its definition
/// (issue 16: `information_schema.views` showed the SQL of views over
/// sources the user was not granted).
#[derive(Debug)]
struct GrantedViews {
    inner: Arc<dyn SchemaProvider>,
    access: Access,
    schema: String,
    lister: Option<crate::catalog::QuipuCatalogList>,
}

#[async_trait::async_trait]
impl SchemaProvider for GrantedViews {
    fn owner_name(&self) -> Option<&str> {
        self.inner.owner_name()
    }

    /// Only the views the client may read (issue 18: what a client lists,
    /// it can select). Reading one by name is still refused by
    /// [`sources_read`], with the source named.
    fn table_names(&self) -> Vec<String> {
        let names = self.inner.table_names();
        let Some(lister) = &self.lister else {
            return names;
        };
        names
            .into_iter()
            .filter(|n| {
                lister
                    .view_sources(&self.schema, n)
                    .iter()
                    .all(|s| self.access.may_read(s))
            })
            .collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.inner.table(name).await? else {
            return Ok(None);
        };
        let hidden = table.get_logical_plan().is_some_and(|plan| {
            self.access
                .first_denied(&plan, DEFAULT_CATALOG, quipu_catalog::DEFAULT_SCHEMA)
                .is_some()
        });
        Ok(Some(if hidden {
            Arc::new(WithoutDefinition(table))
        } else {
            table
        }))
    }

    async fn table_type(&self, name: &str) -> DfResult<Option<TableType>> {
        self.inner.table_type(name).await
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        self.inner.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        self.inner.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// A view whose SQL text is not shown.
#[derive(Debug)]
struct WithoutDefinition(Arc<dyn TableProvider>);

#[async_trait::async_trait]
impl TableProvider for WithoutDefinition {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.0.constraints()
    }

    fn table_type(&self) -> TableType {
        self.0.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        None
    }

    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.0.get_logical_plan()
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.0.get_column_default(column)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.0.statistics()
    }
}
