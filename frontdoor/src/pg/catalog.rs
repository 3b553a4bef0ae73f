//! What a PostgreSQL client sees of the catalog: which database it is
//! connected to, and the `pg_catalog` its metadata queries read.
//!
//! Each Quipu catalog (`quipu`, and one per source: `crm`, `lake`, ...) is
//! a PostgreSQL database. A connection's database is its default catalog,
//! so a client connected to `lake` that lists `public.sales` (psql `\dt`,
//! DBeaver's navigator, Metabase's sync) can also select from
//! `public.sales`; three-part names still reach every granted source.
//! As in PostgreSQL, `pg_class`, `pg_namespace`, `pg_attribute`, ... list
//! the connected database only; `pg_database` lists every database the
//! user may read.
//!
//! datafusion-pg-catalog builds `pg_catalog` over one catalog list, used
//! both for the databases and for the relations, so it lists the tables
//! of every catalog under their two-part names (`public.sales` of `lake`
//! and `public.customers` of `crm` side by side, `public` twice in `\dn`).
//! [`connected_pg_catalog`] builds it twice instead: once over the
//! connected database alone, once over all of them for `pg_database`.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;
use datafusion_pg_catalog::pg_catalog::context::{
    EmptyContextProvider, PgCatalogContextProvider, Role,
};
use datafusion_pg_catalog::pg_catalog::{PgCatalogSchemaProvider, PgCatalogStaticTables};
use quipu_catalog::{CatalogStore, DEFAULT_CATALOG};

use super::functions::Settings;
use super::{PG_VERSION, PG_VERSION_NUM};

/// The database name some clients connect to by default (pgAdmin, the
/// JDBC driver's examples, `psql -d postgres`): the `quipu` catalog.
pub const POSTGRES_ALIAS: &str = "postgres";

/// The catalog a connection's database names, or `None` when the user has
/// no such database. No database in the startup packet, `quipu` and
/// [`POSTGRES_ALIAS`] mean the `quipu` catalog.
pub fn home_catalog(database: Option<&str>, readable: &[String]) -> Option<String> {
    match database {
        None | Some("") | Some(DEFAULT_CATALOG) | Some(POSTGRES_ALIAS) => {
            Some(DEFAULT_CATALOG.to_string())
        }
        Some(name) => readable.iter().find(|c| *c == name).cloned(),
    }
}

/// Makes `home` the session's default catalog and sets up `pg_catalog`
/// (tables and functions) as seen from it.
pub async fn connect(
    ctx: &SessionContext,
    home: &str,
    settings: Settings,
    store: Arc<CatalogStore>,
) -> std::result::Result<(), String> {
    let fail = |e: DataFusionError| e.to_string();
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .catalog
        .default_catalog = home.to_string();
    // Registers the functions (current_database() answers `home`) and a
    // pg_catalog over every catalog, replaced just below.
    datafusion_pg_catalog::setup_pg_catalog(ctx, home, EmptyContextProvider)
        .map_err(|e| e.to_string())?;
    // It registers its own `quote_ident`, which left `ñandú` and `user`
    // unquoted: Quipu's functions of the same names win.
    for f in quipu_connectors::session::scalar_functions() {
        ctx.register_udf(f.as_ref().clone());
    }
    let all: Arc<dyn CatalogProviderList> = ctx.state().catalog_list().clone();
    // The static tables (pg_type, pg_proc, ...) are the same for every
    // connection: read once per process (setup_pg_catalog reads its own).
    static TABLES: std::sync::OnceLock<Arc<PgCatalogStaticTables>> = std::sync::OnceLock::new();
    let tables = match TABLES.get() {
        Some(t) => t.clone(),
        None => {
            let t = Arc::new(PgCatalogStaticTables::try_new().map_err(fail)?);
            TABLES.get_or_init(|| t).clone()
        }
    };
    let connected = PgCatalogSchemaProvider::try_new(
        Connected {
            all: all.clone(),
            home: home.to_string(),
        },
        tables.clone(),
        Users(store.clone()),
    )
    .map_err(fail)?;
    let databases =
        PgCatalogSchemaProvider::try_new(all, tables, EmptyContextProvider).map_err(fail)?;
    let mut schema = ConnectedPgCatalog {
        connected: Arc::new(connected),
        databases: Arc::new(databases),
        reshaped: HashMap::new(),
    };
    let catalog = ctx
        .catalog(home)
        .ok_or_else(|| format!("catalog {home} is gone"))?;
    // The reshaped tables are planned over the plain ones, and over the
    // materialized views of the catalog (those of the `quipu` catalog,
    // where they live), which only they read.
    let matviews: Arc<dyn TableProvider> = Arc::new(MatViews {
        store: (home == DEFAULT_CATALOG).then_some(store.clone()),
    });
    let plain = Arc::new(ConnectedPgCatalog {
        connected: schema.connected.clone(),
        databases: schema.databases.clone(),
        reshaped: HashMap::from([(MATVIEWS_TABLE.to_string(), matviews)]),
    });
    catalog.register_schema("pg_catalog", plain).map_err(fail)?;
    for (name, sql) in reshaped_tables(home) {
        let plan = ctx
            .state()
            .create_logical_plan(&sql)
            .await
            .map_err(|e| format!("pg_catalog.{name}: {e}"))?;
        schema
            .reshaped
            .insert(name, Arc::new(ViewTable::new(plan, None)));
    }
    catalog
        .register_schema("pg_catalog", Arc::new(schema))
        .map_err(fail)?;
    super::functions::register(ctx, settings);
    Ok(())
}

/// `pg_catalog` tables whose columns datafusion-pg-catalog leaves out or
/// types as text, as SQL over its own: what SQLAlchemy's and the JDBC
/// driver's reflection queries need to plan.
fn reshaped_tables(home: &str) -> Vec<(String, String)> {
    // An int2vector / oidvector / int2[] column (`1 2`, `[2, 20, 3]`),
    // stored as text, as an array.
    let ints = |c: &str, t: &str| {
        format!(
            "CAST(string_to_array(btrim(regexp_replace({c}, '[^0-9-]+', ' ', 'g')), ' ') \
             AS {t}[]) AS {c}"
        )
    };
    let home = home.replace('\'', "''");
    vec![
        (
            // Materialized views (caches) are relkind 'm': psql's `\dm`
            // lists them, `\dt` does not.
            "pg_class".into(),
            format!(
                "SELECT c.* EXCEPT (relkind), \
                 CASE WHEN m.matviewname IS NULL THEN c.relkind ELSE 'm' END AS relkind, \
                 CAST(NULL AS TEXT[]) AS reloptions, CAST(NULL AS TEXT[]) AS relacl \
                 FROM pg_catalog.pg_class AS c LEFT JOIN \
                 (SELECT n.oid AS nsp, q.matviewname FROM pg_catalog.{MATVIEWS_TABLE} AS q \
                 JOIN pg_catalog.pg_namespace AS n ON n.nspname = q.schemaname) AS m \
                 ON m.nsp = c.relnamespace AND m.matviewname = c.relname"
            ),
        ),
        (
            // The materialized views the user may read (those pg_class
            // lists).
            "pg_matviews".into(),
            format!(
                "SELECT q.* FROM pg_catalog.{MATVIEWS_TABLE} AS q \
                 JOIN pg_catalog.pg_namespace AS n ON n.nspname = q.schemaname \
                 JOIN pg_catalog.pg_class AS c ON c.relnamespace = n.oid AND c.relname = q.matviewname"
            ),
        ),
        (
            // A numeric column's precision and scale as PostgreSQL keeps
            // them, in `atttypmod` ((precision << 16 | scale) + 4; -1 for
            // other types): `format_type` shows `numeric(12,2)`, and DuckDB
            // reads an attached table's numeric as DECIMAL(12,2), not as a
            // DOUBLE that summed to 4394982.45000028.
            "pg_attribute".into(),
            format!(
                "SELECT a.* EXCEPT (attacl, atttypmod), \
                 CAST(COALESCE(CASE WHEN ic.data_type LIKE 'Decimal%' \
                 THEN ic.numeric_precision * 65536 + ic.numeric_scale + 4 END, a.atttypmod) \
                 AS INT) AS atttypmod, \
                 CAST(NULL AS TEXT[]) AS attacl FROM pg_catalog.pg_attribute AS a \
                 LEFT JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid \
                 LEFT JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace \
                 LEFT JOIN information_schema.columns AS ic ON ic.table_catalog = '{home}' \
                 AND ic.table_schema = n.nspname AND ic.table_name = c.relname \
                 AND ic.column_name = a.attname"
            ),
        ),
        (
            "pg_index".into(),
            format!(
                "SELECT * EXCEPT (indkey, indoption, indclass, indcollation), {}, {}, {}, {} \
                 FROM pg_catalog.pg_index",
                ints("indkey", "SMALLINT"),
                ints("indoption", "SMALLINT"),
                ints("indclass", "INT"),
                ints("indcollation", "INT")
            ),
        ),
        (
            "pg_constraint".into(),
            format!(
                "SELECT * EXCEPT (conkey, confkey), {}, {} FROM pg_catalog.pg_constraint",
                ints("conkey", "SMALLINT"),
                ints("confkey", "SMALLINT")
            ),
        ),
        (
            // Policies' roles as an array (psql's `\dp` asks for
            // `oid = ANY (polroles)`); there are no policies.
            "pg_policy".into(),
            format!(
                "SELECT * EXCEPT (polroles), {} FROM pg_catalog.pg_policy",
                ints("polroles", "INT")
            ),
        ),
        (
            // The settings clients read from it (the JDBC driver's
            // `max_index_keys` before `getImportedKeys`), beside the one
            // datafusion-pg-catalog has.
            "pg_settings".into(),
            format!(
                "SELECT * FROM pg_catalog.pg_settings UNION ALL \
                 SELECT v.column1 AS name, v.column2 AS setting, s.* EXCEPT (name, setting) \
                 FROM (VALUES ('max_index_keys', '32'), ('max_identifier_length', '63'), \
                 ('block_size', '8192'), ('server_version', '{PG_VERSION}'), \
                 ('server_version_num', '{PG_VERSION_NUM}'), ('server_encoding', 'UTF8'), \
                 ('integer_datetimes', 'on'), ('default_table_access_method', 'heap')) AS v \
                 LEFT JOIN pg_catalog.pg_settings AS s ON FALSE"
            ),
        ),
        (
            // PostgreSQL's view of the indexes, which DuckDB's postgres
            // extension reads when it attaches a database. Quipu's tables
            // have none; the view is there, over `pg_index`.
            "pg_indexes".into(),
            "SELECT n.nspname AS schemaname, c.relname AS tablename, i.relname AS indexname, \
             CAST(NULL AS TEXT) AS tablespace, CAST(NULL AS TEXT) AS indexdef \
             FROM pg_catalog.pg_index AS x \
             JOIN pg_catalog.pg_class AS c ON c.oid = x.indrelid \
             JOIN pg_catalog.pg_class AS i ON i.oid = x.indexrelid \
             JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace"
                .into(),
        ),
        (
            // The views' queries (stored as their `CREATE VIEW`), as
            // `pg_get_viewdef` and `\d+ view` show them.
            "pg_views".into(),
            format!(
                "SELECT table_schema AS schemaname, table_name AS viewname, \
                 'quipu' AS viewowner, \
                 regexp_replace(definition, '^\\s*CREATE\\s+(OR\\s+REPLACE\\s+)?VIEW\\s+.*?\\s+AS\\s+', '', 'i') \
                 AS definition \
                 FROM information_schema.views WHERE table_catalog = '{home}'"
            ),
        ),
    ]
}

/// The table of every materialized view, read by the reshaped `pg_class`
/// and `pg_matviews` only.
const MATVIEWS_TABLE: &str = "quipu_matviews";

/// Quipu's materialized views (caches, docs/caching.md) as PostgreSQL's
/// `pg_matviews` has them, read from the catalog at each scan (a cache
/// created or refreshed is seen by the next query). Empty for a source's
/// database: caches live in the `quipu` catalog.
#[derive(Debug)]
struct MatViews {
    store: Option<Arc<CatalogStore>>,
}

impl MatViews {
    fn schema() -> SchemaRef {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        Arc::new(Schema::new(vec![
            text("schemaname"),
            text("matviewname"),
            text("matviewowner"),
            text("tablespace"),
            Field::new("hasindexes", DataType::Boolean, true),
            Field::new("ispopulated", DataType::Boolean, true),
            text("definition"),
        ]))
    }
}

#[async_trait]
impl TableProvider for MatViews {
    fn schema(&self) -> SchemaRef {
        Self::schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[datafusion::prelude::Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        use datafusion::arrow::array::{BooleanArray, RecordBatch, StringArray};
        let caches = match &self.store {
            Some(store) => store
                .caches()
                .map_err(|e| DataFusionError::External(Box::new(e)))?,
            None => vec![],
        };
        let text = |f: &dyn Fn(&quipu_catalog::CacheDef) -> Option<String>| {
            Arc::new(caches.iter().map(f).collect::<StringArray>()) as _
        };
        let batch = RecordBatch::try_new(
            Self::schema(),
            vec![
                text(&|c| Some(c.schema.clone())),
                text(&|c| Some(c.name.clone())),
                text(&|_| Some("quipu".to_string())),
                text(&|_| None),
                Arc::new(BooleanArray::from(vec![false; caches.len()])),
                // Populated once a refresh has completed.
                Arc::new(
                    caches
                        .iter()
                        .map(|c| Some(c.state.generation > 0))
                        .collect::<BooleanArray>(),
                ),
                text(&|c| Some(c.sql.clone())),
            ],
        )?;
        datafusion::datasource::MemTable::try_new(Self::schema(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// Quipu's users as PostgreSQL roles (`pg_roles`, psql's `\du`): each can
/// log in; admins are superusers.
#[derive(Debug, Clone)]
struct Users(Arc<CatalogStore>);

#[async_trait]
impl PgCatalogContextProvider for Users {
    async fn roles(&self) -> Vec<String> {
        match self.0.users() {
            Ok(users) => users.into_iter().map(|u| u.name).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading users from the catalog failed");
                vec![]
            }
        }
    }

    async fn role(&self, name: &str) -> Option<Role> {
        let user = self.0.user(name).ok()??;
        Some(Role {
            name: user.name,
            is_superuser: user.admin,
            can_login: true,
            can_create_db: false,
            can_create_role: false,
            can_create_user: false,
            can_replication: false,
            grants: vec![],
            inherited_roles: vec![],
        })
    }
}

/// The catalogs as `pg_catalog`'s relations see them: the connected one.
#[derive(Debug, Clone)]
struct Connected {
    all: Arc<dyn CatalogProviderList>,
    home: String,
}

#[async_trait]
impl CatalogInfo for Connected {
    async fn catalog_names(&self) -> Result<Vec<String>> {
        Ok(vec![self.home.clone()])
    }

    async fn schema_names(&self, catalog: &str) -> Result<Option<Vec<String>>> {
        self.all.schema_names(catalog).await
    }

    async fn table_names(&self, catalog: &str, schema: &str) -> Result<Option<Vec<String>>> {
        self.all.table_names(catalog, schema).await
    }

    async fn table_schema(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<SchemaRef>> {
        self.all.table_schema(catalog, schema, table).await
    }

    async fn table_type(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<TableType>> {
        self.all.table_type(catalog, schema, table).await
    }
}

/// `pg_catalog` of one connection: `pg_database` over every catalog, the
/// rest over the connected one.
#[derive(Debug)]
struct ConnectedPgCatalog {
    connected: Arc<dyn SchemaProvider>,
    databases: Arc<dyn SchemaProvider>,
    /// See [`reshaped_tables`].
    reshaped: HashMap<String, Arc<dyn TableProvider>>,
}

#[async_trait]
impl SchemaProvider for ConnectedPgCatalog {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.connected.table_names();
        for name in self.reshaped.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(table) = self.reshaped.get(name) {
            Ok(Some(table.clone()))
        } else if name == "pg_database" {
            self.databases.table(name).await
        } else {
            self.connected.table(name).await
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.reshaped.contains_key(name) || self.connected.table_exist(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn databases_are_catalogs_the_user_reads() {
        let readable = vec!["quipu".to_string(), "lake".to_string()];
        for db in [None, Some(""), Some("quipu"), Some("postgres")] {
            assert_eq!(home_catalog(db, &readable).as_deref(), Some("quipu"));
        }
        assert_eq!(
            home_catalog(Some("lake"), &readable).as_deref(),
            Some("lake")
        );
        // A source not granted is no database of this user; nor is a name
        // that only differs in case (PostgreSQL's names are exact here).
        assert_eq!(home_catalog(Some("crm"), &readable), None);
        assert_eq!(home_catalog(Some("Lake"), &readable), None);
    }
}
