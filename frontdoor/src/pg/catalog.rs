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
use datafusion::arrow::array::{BooleanArray, Int16Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
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
    let matviews: Arc<dyn TableProvider> =
        Arc::new(matviews((home == DEFAULT_CATALOG).then_some(store.clone())));
    let keys: Arc<dyn TableProvider> = Arc::new(primary_keys(store.clone(), home));
    let plain = Arc::new(ConnectedPgCatalog {
        connected: schema.connected.clone(),
        databases: schema.databases.clone(),
        reshaped: HashMap::from([
            (MATVIEWS_TABLE.to_string(), matviews),
            (KEYS_TABLE.to_string(), keys),
        ]),
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
    // The key columns of the tables listed (a table, its namespace and
    // name, a column's number and place in the key), from the catalog's
    // primary keys ([`primary_keys`]). `attnum` is the column's place in
    // the table, as datafusion-pg-catalog numbers `pg_attribute`: reading
    // that table here made psql's `\d` three times slower.
    let keys = format!(
        "SELECT c.oid AS relid, c.relnamespace AS nsp, c.relname, n.nspname, \
         k.attnum, k.keyseq, k.colname \
         FROM pg_catalog.{KEYS_TABLE} AS k \
         JOIN pg_catalog.pg_namespace AS n ON n.nspname = k.schemaname \
         JOIN pg_catalog.pg_class AS c ON c.relnamespace = n.oid AND c.relname = k.tablename"
    );
    // The tables with a key, by name, and their keys' sizes: what
    // `pg_class` joins (by name, and each keyed table's row is read
    // twice, once as the table and once as its key's index, so that
    // `pg_class` is scanned once).
    let keyed = format!(
        "SELECT schemaname, tablename, count(*) AS n FROM pg_catalog.{KEYS_TABLE} \
         GROUP BY schemaname, tablename"
    );
    // Each key's index and constraint have the table's oid moved into a
    // range of their own (tables' oids count up from 16384).
    let index_oid = |c: &str| format!("CAST({c} + {INDEX_OID_OFFSET} AS INT)");
    let key_oid = |c: &str| format!("CAST({c} + {KEY_OID_OFFSET} AS INT)");
    // Each primary key's index as `CREATE INDEX` writes it.
    let indexdefs = format!(
        "SELECT {index} AS indexrelid, \
         'CREATE UNIQUE INDEX ' || quote_ident(relname || '_pkey') || ' ON ' || \
         quote_ident(nspname) || '.' || quote_ident(relname) || ' USING btree (' || \
         string_agg(quote_ident(colname), ', ' ORDER BY keyseq) || ')' AS indexdef \
         FROM ({keys}) AS x GROUP BY relid, relname, nspname",
        index = index_oid("relid"),
    );
    // Columns of pg_class the rows of a key's index set.
    let index_columns = "oid, relname, relkind, relam, relnatts, relhasindex";
    vec![
        (
            // Materialized views (caches) are relkind 'm': psql's `\dm`
            // lists them, `\dt` does not. Each primary key is an index
            // (relkind 'i') named `<table>_pkey`, as PostgreSQL names it.
            "pg_class".into(),
            format!(
                "SELECT c.* EXCEPT ({index_columns}), \
                 CASE WHEN v.ix THEN {oid} ELSE c.oid END AS oid, \
                 CASE WHEN v.ix THEN c.relname || '_pkey' ELSE c.relname END AS relname, \
                 CASE WHEN v.ix THEN 'i' WHEN m.matviewname IS NULL THEN c.relkind \
                 ELSE 'm' END AS relkind, \
                 CASE WHEN v.ix THEN 403 ELSE c.relam END AS relam, \
                 CASE WHEN v.ix THEN CAST(k.n AS SMALLINT) ELSE c.relnatts END AS relnatts, \
                 CASE WHEN v.ix THEN false ELSE c.relhasindex OR k.n IS NOT NULL END \
                 AS relhasindex, \
                 CAST(NULL AS TEXT[]) AS reloptions, CAST(NULL AS TEXT[]) AS relacl \
                 FROM pg_catalog.pg_class AS c \
                 LEFT JOIN pg_catalog.pg_namespace AS ns ON ns.oid = c.relnamespace LEFT JOIN \
                 (SELECT n.oid AS nsp, q.matviewname FROM pg_catalog.{MATVIEWS_TABLE} AS q \
                 JOIN pg_catalog.pg_namespace AS n ON n.nspname = q.schemaname) AS m \
                 ON m.nsp = c.relnamespace AND m.matviewname = c.relname \
                 LEFT JOIN ({keyed}) AS k ON k.schemaname = ns.nspname AND k.tablename = c.relname \
                 CROSS JOIN (VALUES (false), (true)) AS v(ix) \
                 WHERE NOT v.ix OR k.n IS NOT NULL",
                oid = index_oid("c.oid"),
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
            // The system's indexes, and one unique index per primary key.
            "pg_index".into(),
            format!(
                "SELECT * EXCEPT (indkey, indoption, indclass, indcollation), {}, {}, {}, {} \
                 FROM pg_catalog.pg_index \
                 UNION ALL \
                 SELECT {index} AS indexrelid, CAST(relid AS INT) AS indrelid, \
                 CAST(n AS SMALLINT) AS indnatts, CAST(n AS SMALLINT) AS indnkeyatts, \
                 true AS indisunique, false AS indnullsnotdistinct, true AS indisprimary, \
                 false AS indisexclusion, true AS indimmediate, false AS indisclustered, \
                 true AS indisvalid, false AS indcheckxmin, true AS indisready, true AS indislive, \
                 false AS indisreplident, CAST(NULL AS TEXT) AS indexprs, \
                 CAST(NULL AS TEXT) AS indpred, indkey, CAST(zeros AS SMALLINT[]) AS indoption, \
                 zeros AS indclass, zeros AS indcollation \
                 FROM (SELECT relid, count(*) AS n, \
                 array_agg(CAST(attnum AS SMALLINT) ORDER BY keyseq) AS indkey, \
                 array_agg(CAST(0 AS INT)) AS zeros FROM ({keys}) AS x GROUP BY relid) AS k",
                ints("indkey", "SMALLINT"),
                ints("indoption", "SMALLINT"),
                ints("indclass", "INT"),
                ints("indcollation", "INT"),
                index = index_oid("relid"),
            ),
        ),
        (
            // The system's constraints, and each primary key.
            "pg_constraint".into(),
            format!(
                "SELECT * EXCEPT (conkey, confkey), {}, {} FROM pg_catalog.pg_constraint \
                 UNION ALL \
                 SELECT {key} AS oid, relname || '_pkey' AS conname, \
                 CAST(nsp AS INT) AS connamespace, 'p' AS contype, false AS condeferrable, \
                 false AS condeferred, true AS convalidated, CAST(relid AS INT) AS conrelid, \
                 0 AS contypid, {index} AS conindid, 0 AS conparentid, 0 AS confrelid, \
                 ' ' AS confupdtype, ' ' AS confdeltype, ' ' AS confmatchtype, \
                 true AS conislocal, CAST(0 AS SMALLINT) AS coninhcount, true AS connoinherit, \
                 CAST(NULL AS TEXT) AS conpfeqop, CAST(NULL AS TEXT) AS conppeqop, \
                 CAST(NULL AS TEXT) AS conffeqop, CAST(NULL AS TEXT) AS confdelsetcols, \
                 CAST(NULL AS TEXT) AS conexclop, CAST(NULL AS TEXT) AS conbin, \
                 array_agg(CAST(attnum AS SMALLINT) ORDER BY keyseq) AS conkey, \
                 CAST(NULL AS SMALLINT[]) AS confkey \
                 FROM ({keys}) AS x GROUP BY relid, relname, nsp",
                ints("conkey", "SMALLINT"),
                ints("confkey", "SMALLINT"),
                key = key_oid("relid"),
                index = index_oid("relid"),
            ),
        ),
        (
            // Each primary key's index definition, and each of its
            // columns, for `pg_get_indexdef`
            // (`catalog_sql::index_definitions`).
            INDEXDEFS_TABLE.into(),
            indexdefs.clone(),
        ),
        (
            INDEXCOLS_TABLE.into(),
            format!(
                "SELECT {index} AS indexrelid, CAST(keyseq AS INT) AS n, \
                 quote_ident(colname) AS coldef FROM ({keys}) AS x",
                index = index_oid("relid"),
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
            // extension reads when it attaches a database: the primary
            // keys' (Quipu's tables have no other).
            "pg_indexes".into(),
            format!(
                "SELECT n.nspname AS schemaname, c.relname AS tablename, \
                 c.relname || '_pkey' AS indexname, CAST(NULL AS TEXT) AS tablespace, \
                 d.indexdef FROM ({indexdefs}) AS d \
                 JOIN pg_catalog.pg_class AS c ON {oid} = d.indexrelid \
                 JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace",
                oid = index_oid("c.oid"),
            ),
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

/// The table of the primary keys' columns ([`primary_keys`]), read by the
/// reshaped tables only.
const KEYS_TABLE: &str = "quipu_keys";

/// The views of each primary key's index definition, and of its columns.
pub(super) const INDEXDEFS_TABLE: &str = "quipu_indexdefs";
pub(super) const INDEXCOLS_TABLE: &str = "quipu_indexcols";

/// Added to a table's oid: its primary key's index, and its constraint.
const INDEX_OID_OFFSET: i32 = 1_000_000_000;
const KEY_OID_OFFSET: i32 = 1_500_000_000;

/// Reads a [`StoreTable`]'s rows, in its schema.
type ReadRows = Box<dyn Fn(&SchemaRef) -> Result<RecordBatch> + Send + Sync>;

/// A table the reshaped `pg_catalog` tables read from Quipu's catalog at
/// each scan (a change is seen by the next query).
struct StoreTable {
    schema: SchemaRef,
    rows: ReadRows,
}

impl std::fmt::Debug for StoreTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTable")
            .field("schema", &self.schema)
            .finish()
    }
}

fn catalog_error(e: quipu_catalog::CatalogError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Quipu's materialized views (caches, docs/caching.md) as PostgreSQL's
/// `pg_matviews` has them. Empty for a source's database (no `store`):
/// caches live in the `quipu` catalog.
fn matviews(store: Option<Arc<CatalogStore>>) -> StoreTable {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let schema = Arc::new(Schema::new(vec![
        text("schemaname"),
        text("matviewname"),
        text("matviewowner"),
        text("tablespace"),
        Field::new("hasindexes", DataType::Boolean, true),
        Field::new("ispopulated", DataType::Boolean, true),
        text("definition"),
    ]));
    let rows = move |schema: &SchemaRef| {
        let caches = match &store {
            Some(store) => store.caches().map_err(catalog_error)?,
            None => vec![],
        };
        let text = |f: &dyn Fn(&quipu_catalog::CacheDef) -> Option<String>| {
            Arc::new(caches.iter().map(f).collect::<StringArray>()) as _
        };
        Ok(RecordBatch::try_new(
            schema.clone(),
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
        )?)
    };
    StoreTable {
        schema,
        rows: Box::new(rows),
    }
}

/// The primary keys of the tables of the source `home` (found at the
/// source by discovery, `TableDef::primary_key`): one row per key column
/// with its place in the key, from 1. None for the `quipu` catalog.
fn primary_keys(store: Arc<CatalogStore>, home: &str) -> StoreTable {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let schema = Arc::new(Schema::new(vec![
        text("schemaname"),
        text("tablename"),
        text("colname"),
        Field::new("keyseq", DataType::Int16, false),
        // The column's number in `pg_attribute`: its place in the table.
        Field::new("attnum", DataType::Int16, false),
    ]));
    let home = home.to_string();
    let rows = move |schema: &SchemaRef| {
        let tables = match home.as_str() {
            DEFAULT_CATALOG => vec![],
            source => store.tables(Some(source)).map_err(catalog_error)?,
        };
        // (table, place in the key, column, place in the table)
        let keys: Vec<(&quipu_catalog::TableDef, usize, &String, usize)> = tables
            .iter()
            .flat_map(|t| {
                t.primary_key.iter().enumerate().filter_map(move |(i, c)| {
                    let at = t.columns.iter().position(|x| &x.name == c)?;
                    Some((t, i, c, at))
                })
            })
            .collect();
        Ok(RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    keys.iter().map(|(t, ..)| &t.name.schema),
                )),
                Arc::new(StringArray::from_iter_values(
                    keys.iter().map(|(t, ..)| &t.name.table),
                )),
                Arc::new(StringArray::from_iter_values(
                    keys.iter().map(|(_, _, c, _)| c),
                )),
                Arc::new(Int16Array::from_iter_values(
                    keys.iter().map(|(_, i, _, _)| *i as i16 + 1),
                )),
                Arc::new(Int16Array::from_iter_values(
                    keys.iter().map(|(.., at)| *at as i16 + 1),
                )),
            ],
        )?)
    };
    StoreTable {
        schema,
        rows: Box::new(rows),
    }
}

#[async_trait]
impl TableProvider for StoreTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
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
        let batch = (self.rows)(&self.schema)?;
        datafusion::datasource::MemTable::try_new(self.schema.clone(), vec![vec![batch]])?
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
