//! The catalog store as DataFusion catalogs: one catalog per source
//! (`crm`, `lake`, ...) plus the `quipu` catalog of views.
//!
//! The in-memory snapshot is reloaded whenever the store's generation
//! changes, so a change made by another process (the CLI while a server
//! runs) is seen by the next query. Table providers are built on first use
//! and cached until the next change.

pub mod access;
pub mod cache;
pub mod cache_memory;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::datasource::ViewTable;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::prelude::SessionConfig;
use quipu_catalog::{
    CacheDef, CatalogStore, DEFAULT_CATALOG, DEFAULT_SCHEMA, SourceDef, TableDef, TableName,
    ViewDef,
};

use crate::connector::Env;
use crate::registry::Connectors;

/// Views may use views, but not without end (a cycle of views).
const MAX_VIEW_DEPTH: usize = 16;

#[derive(Debug, Default)]
struct Snapshot {
    generation: u64,
    sources: BTreeMap<String, SourceDef>,
    /// source -> schema -> table -> definition
    tables: BTreeMap<String, BTreeMap<String, BTreeMap<String, TableDef>>>,
    /// schema -> view name -> definition
    views: BTreeMap<String, BTreeMap<String, ViewDef>>,
    /// schema -> materialized view name -> definition
    caches: BTreeMap<String, BTreeMap<String, CacheDef>>,
    schemas: BTreeSet<String>,
}

impl Snapshot {
    fn load(store: &CatalogStore) -> quipu_catalog::Result<Snapshot> {
        let generation = store.generation()?;
        let mut snap = Snapshot {
            generation,
            ..Default::default()
        };
        for s in store.sources()? {
            snap.tables.entry(s.name.clone()).or_default();
            snap.sources.insert(s.name.clone(), s);
        }
        for t in store.tables(None)? {
            snap.tables
                .entry(t.name.source.clone())
                .or_default()
                .entry(t.name.schema.clone())
                .or_default()
                .insert(t.name.table.clone(), t);
        }
        for v in store.views()? {
            snap.views
                .entry(v.schema.clone())
                .or_default()
                .insert(v.name.clone(), v);
        }
        for c in store.caches()? {
            snap.caches
                .entry(c.schema.clone())
                .or_default()
                .insert(c.name.clone(), c);
        }
        snap.schemas = store.schemas()?.into_iter().collect();
        snap.schemas.insert(DEFAULT_SCHEMA.to_string());
        Ok(snap)
    }
}

pub(crate) struct Shared {
    pub(crate) store: Arc<CatalogStore>,
    /// The runtime, `memory://` stores and configuration of the process.
    pub(crate) env: Env,
    /// One connector per kind of source, with its connection pools, shared
    /// by every session.
    pub(crate) connectors: Connectors,
    /// Builds the session state views are planned with (the session's, so
    /// a view means what the same query means; given by `crate::session`).
    build_state: StateBuilder,
    snapshot: RwLock<Arc<Snapshot>>,
    providers: Mutex<HashMap<TableName, Arc<dyn TableProvider>>>,
    /// Called when a plan from elsewhere names a source this process does
    /// not know; an executor refreshes its catalog replica there.
    pub(crate) on_source_miss: std::sync::OnceLock<SourceMissHook>,
}

/// How `crate::session` builds a session state over a catalog list.
pub(crate) type StateBuilder = fn(
    Arc<dyn CatalogProviderList>,
    SessionConfig,
    Arc<RuntimeEnv>,
) -> datafusion::execution::session_state::SessionState;

/// See [`QuipuCatalogList::on_source_miss`].
pub type SourceMissHook = Box<dyn Fn(&str) + Send + Sync>;

/// DataFusion's view of the Quipu catalog.
#[derive(Clone)]
pub struct QuipuCatalogList {
    pub(crate) shared: Arc<Shared>,
    depth: usize,
}

impl std::fmt::Debug for QuipuCatalogList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuipuCatalogList")
            .field("store", &self.shared.store)
            .finish()
    }
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl QuipuCatalogList {
    pub(crate) fn new(store: Arc<CatalogStore>, env: Env, build_state: StateBuilder) -> Self {
        QuipuCatalogList {
            shared: Arc::new(Shared {
                store,
                env,
                connectors: Connectors::default(),
                build_state,
                snapshot: RwLock::new(Arc::new(Snapshot {
                    generation: u64::MAX,
                    ..Default::default()
                })),
                providers: Mutex::new(HashMap::new()),
                on_source_miss: std::sync::OnceLock::new(),
            }),
            depth: 0,
        }
    }

    /// The current snapshot, reloaded if the store changed since.
    fn snapshot(&self) -> Arc<Snapshot> {
        let current = self.shared.snapshot.read().unwrap().clone();
        match self.shared.store.generation() {
            Ok(g) if g == current.generation => current,
            Ok(_) => match Snapshot::load(&self.shared.store) {
                Ok(fresh) => {
                    let fresh = Arc::new(fresh);
                    *self.shared.snapshot.write().unwrap() = fresh.clone();
                    self.shared.providers.lock().unwrap().clear();
                    fresh
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot reload catalog; using the last snapshot");
                    current
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot read catalog generation");
                current
            }
        }
    }

    /// The sources a view reads, through the views it names, read from
    /// the SQL text: a three-part name's first part is a source, a shorter
    /// name a view of the `quipu` catalog (or a CTE, which names nothing
    /// here). Synchronous, unlike planning the view, so that listing views
    /// (`table_names`) can leave out those a user may not read.
    pub fn view_sources(&self, schema: &str, name: &str) -> BTreeSet<String> {
        use datafusion::sql::sqlparser::ast::{ObjectNamePart, visit_relations};
        use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
        use datafusion::sql::sqlparser::parser::Parser;
        let snap = self.snapshot();
        let mut out = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut todo = vec![(schema.to_string(), name.to_string())];
        while let Some(view) = todo.pop() {
            if !seen.insert(view.clone()) {
                continue;
            }
            let view_sql = snap.views.get(&view.0).and_then(|v| v.get(&view.1));
            let sql = match view_sql {
                Some(def) => &def.sql,
                None => match snap.caches.get(&view.0).and_then(|c| c.get(&view.1)) {
                    Some(def) => &def.sql,
                    None => continue,
                },
            };
            let Ok(statements) = Parser::parse_sql(&PostgreSqlDialect {}, sql) else {
                continue;
            };
            let _ = visit_relations(&statements, |relation| {
                let parts: Vec<String> = relation
                    .0
                    .iter()
                    .filter_map(|p| match p {
                        ObjectNamePart::Identifier(i) if i.quote_style.is_some() => {
                            Some(i.value.clone())
                        }
                        ObjectNamePart::Identifier(i) => Some(i.value.to_lowercase()),
                        _ => None,
                    })
                    .collect();
                match parts.as_slice() {
                    [source, _, _] if source != DEFAULT_CATALOG => {
                        out.insert(source.clone());
                    }
                    [_, schema, name] | [schema, name] => todo.push((schema.clone(), name.clone())),
                    [name] => todo.push((DEFAULT_SCHEMA.to_string(), name.clone())),
                    _ => {}
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
        }
        out
    }

    /// Installs what to do when a decoded plan names an unknown source
    /// (once per process; later calls are ignored).
    pub fn on_source_miss(&self, hook: SourceMissHook) {
        let _ = self.shared.on_source_miss.set(hook);
    }

    /// Forgets cached providers (after a change made through this process).
    pub fn invalidate(&self) {
        self.shared.providers.lock().unwrap().clear();
    }

    async fn source_table(&self, def: &TableDef) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(p) = self.shared.providers.lock().unwrap().get(&def.name) {
            return Ok(Some(p.clone()));
        }
        let snap = self.snapshot();
        let Some(source) = snap.sources.get(&def.name.source) else {
            return Ok(None);
        };
        let provider = self
            .shared
            .connectors
            .of(source.kind)
            .table_provider(&self.shared.env, source, def)
            .await?;
        self.shared
            .providers
            .lock()
            .unwrap()
            .insert(def.name.clone(), provider.clone());
        Ok(Some(provider))
    }

    async fn view_table(&self, view: &ViewDef) -> DfResult<Arc<dyn TableProvider>> {
        let plan = self
            .plan_view_sql(&view.schema, &view.name, &view.sql)
            .await?;
        Ok(Arc::new(ViewTable::new(plan, Some(view.sql.clone()))))
    }

    /// A materialized view: its serving generation's files, or (never
    /// refreshed) its query, read live as a view.
    async fn cache_table(&self, def: &CacheDef) -> DfResult<Arc<dyn TableProvider>> {
        let plan = self.plan_view_sql(&def.schema, &def.name, &def.sql).await?;
        match cache::CacheTable::new(def.clone(), plan.clone())? {
            Some(table) => Ok(Arc::new(table)),
            None => Ok(Arc::new(ViewTable::new(plan, Some(def.sql.clone())))),
        }
    }

    /// The logical plan of a view's (or materialized view's) SQL, planned
    /// one level deeper (views inside stay unexpanded until analysis).
    pub async fn plan_view_sql(
        &self,
        schema: &str,
        name: &str,
        sql: &str,
    ) -> DfResult<LogicalPlan> {
        if self.depth >= MAX_VIEW_DEPTH {
            return Err(DataFusionError::Plan(format!(
                "view {schema}.{name} nests views more than {MAX_VIEW_DEPTH} deep (is it recursive?)"
            )));
        }
        let nested = QuipuCatalogList {
            shared: self.shared.clone(),
            depth: self.depth + 1,
        };
        let state = (self.shared.build_state)(
            Arc::new(nested),
            self.shared.env.config.clone(),
            self.shared.env.runtime.clone(),
        );
        // The view's SQL gets the same PostgreSQL meaning as a client's
        // statement (crate::dialect::syntax): IS DISTINCT FROM, IN subqueries, ...
        let planned = async {
            // Read in the server's date order (views are planned in a
            // state of their own, with the server's settings).
            let order = state
                .config_options()
                .extensions
                .get::<crate::QuipuOptions>()
                .map(|o| o.date_order)
                .unwrap_or_default();
            let statement = crate::dialect::syntax::fix(
                state.sql_to_statement(sql, &datafusion::config::Dialect::PostgreSQL)?,
                order,
            )?;
            crate::dialect::set_all::rewrite(state.statement_to_plan(statement).await?)
        };
        let plan = planned.await.map_err(|e| {
            DataFusionError::Plan(format!("view {schema}.{name} no longer plans: {e}"))
        })?;
        Ok(match plan {
            LogicalPlan::Ddl(DdlStatement::CreateView(cv)) => Arc::unwrap_or_clone(cv.input),
            other => other,
        })
    }

    /// The materialized views of the catalog, as of now.
    pub fn caches(&self) -> Vec<CacheDef> {
        self.snapshot()
            .caches
            .values()
            .flat_map(|c| c.values().cloned())
            .collect()
    }
}

impl CatalogProviderList for QuipuCatalogList {
    fn register_catalog(
        &self,
        name: String,
        _catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        tracing::warn!(catalog = %name, "ignoring in-memory catalog registration; add sources with `quipu catalog add-source`");
        None
    }

    fn catalog_names(&self) -> Vec<String> {
        let snap = self.snapshot();
        let mut names = vec![DEFAULT_CATALOG.to_string()];
        names.extend(snap.sources.keys().cloned());
        names
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        if name == DEFAULT_CATALOG {
            return Some(Arc::new(ViewCatalog { list: self.clone() }));
        }
        let snap = self.snapshot();
        snap.sources.contains_key(name).then(|| {
            Arc::new(SourceCatalog {
                list: self.clone(),
                source: name.to_string(),
            }) as Arc<dyn CatalogProvider>
        })
    }
}

/// The tables of one source, grouped in schemas.
#[derive(Debug)]
struct SourceCatalog {
    list: QuipuCatalogList,
    source: String,
}

impl CatalogProvider for SourceCatalog {
    fn schema_names(&self) -> Vec<String> {
        let snap = self.list.snapshot();
        snap.tables
            .get(&self.source)
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let snap = self.list.snapshot();
        snap.tables.get(&self.source)?.get(name)?;
        Some(Arc::new(SourceSchema {
            list: self.list.clone(),
            source: self.source.clone(),
            schema: name.to_string(),
        }))
    }
}

#[derive(Debug)]
struct SourceSchema {
    list: QuipuCatalogList,
    source: String,
    schema: String,
}

impl SourceSchema {
    fn def(&self, name: &str) -> Option<TableDef> {
        self.list
            .snapshot()
            .tables
            .get(&self.source)?
            .get(&self.schema)?
            .get(name)
            .cloned()
    }
}

#[async_trait]
impl SchemaProvider for SourceSchema {
    fn table_names(&self) -> Vec<String> {
        let snap = self.list.snapshot();
        snap.tables
            .get(&self.source)
            .and_then(|s| s.get(&self.schema))
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match self.def(name) {
            Some(def) => self.list.source_table(&def).await,
            None => Ok(None),
        }
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!(
            "cannot create {}.{}.{name}: tables of source `{}` are managed with `quipu catalog add-table`",
            self.source, self.schema, self.source
        )))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.def(name).is_some()
    }
}

/// The `quipu` catalog: persistent SQL views in schemas.
#[derive(Debug)]
struct ViewCatalog {
    list: QuipuCatalogList,
}

impl CatalogProvider for ViewCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.list.snapshot().schemas.iter().cloned().collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let snap = self.list.snapshot();
        snap.schemas.contains(name).then(|| {
            Arc::new(ViewSchema {
                list: self.list.clone(),
                schema: name.to_string(),
            }) as Arc<dyn SchemaProvider>
        })
    }

    fn register_schema(
        &self,
        name: &str,
        _schema: Arc<dyn SchemaProvider>,
    ) -> DfResult<Option<Arc<dyn SchemaProvider>>> {
        self.list
            .shared
            .store
            .create_schema(name)
            .map_err(external)?;
        Ok(None)
    }
}

#[derive(Debug)]
struct ViewSchema {
    list: QuipuCatalogList,
    schema: String,
}

impl ViewSchema {
    fn def(&self, name: &str) -> Option<ViewDef> {
        self.list
            .snapshot()
            .views
            .get(&self.schema)?
            .get(name)
            .cloned()
    }

    fn cache(&self, name: &str) -> Option<CacheDef> {
        self.list
            .snapshot()
            .caches
            .get(&self.schema)?
            .get(name)
            .cloned()
    }
}

#[async_trait]
impl SchemaProvider for ViewSchema {
    fn table_names(&self) -> Vec<String> {
        let snap = self.list.snapshot();
        let views = snap.views.get(&self.schema).into_iter();
        let caches = snap.caches.get(&self.schema).into_iter();
        views
            .flat_map(|v| v.keys().cloned())
            .chain(caches.flat_map(|c| c.keys().cloned()))
            .collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(view) = self.def(name) {
            return Ok(Some(self.list.view_table(&view).await?));
        }
        match self.cache(name) {
            Some(cache) => Ok(Some(self.list.cache_table(&cache).await?)),
            None => Ok(None),
        }
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(view) = (table.as_ref() as &dyn Any).downcast_ref::<ViewTable>() else {
            return Err(DataFusionError::Plan(format!(
                "cannot create table {}.{name}: Quipu stores no table data; create a view, or register lake files with `quipu catalog add-table`",
                self.schema
            )));
        };
        let Some(sql) = view.definition() else {
            return Err(DataFusionError::Plan(format!(
                "view {}.{name} has no SQL definition to store",
                self.schema
            )));
        };
        self.list
            .shared
            .store
            .put_view(&ViewDef {
                schema: self.schema.clone(),
                name,
                sql: sql.clone(),
            })
            .map_err(external)?;
        Ok(None)
    }

    fn deregister_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if self.cache(name).is_some() {
            return Err(DataFusionError::Plan(format!(
                "{}.{name} is a materialized view: drop it with DROP MATERIALIZED VIEW",
                self.schema
            )));
        }
        if self.def(name).is_none() {
            return Ok(None);
        }
        self.list
            .shared
            .store
            .drop_view(&self.schema, name)
            .map_err(external)?;
        // DataFusion only checks that something was removed.
        Ok(Some(Arc::new(
            datafusion::datasource::empty::EmptyTable::new(Arc::new(
                datafusion::arrow::datatypes::Schema::empty(),
            )),
        )))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.def(name).is_some() || self.cache(name).is_some()
    }
}
