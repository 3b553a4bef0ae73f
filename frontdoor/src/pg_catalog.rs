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
use pgwire::api::Type;
use quipu_catalog::{CatalogStore, DEFAULT_CATALOG};
use quipu_connectors::dialect::pg_text::shaped_like;

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
        Users(store),
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
    // The reshaped tables are planned over the plain ones.
    let plain = Arc::new(ConnectedPgCatalog {
        connected: schema.connected.clone(),
        databases: schema.databases.clone(),
        reshaped: HashMap::new(),
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
    ctx.register_udf(version_udf());
    ctx.register_udf(to_regtype_udf());
    ctx.register_udf(size_pretty_udf());
    for f in constant_udfs() {
        ctx.register_udf(f);
    }
    ctx.register_udf(current_setting_udf(settings.clone()));
    ctx.register_udf(set_config_udf(settings));
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
            "pg_class".into(),
            "SELECT *, CAST(NULL AS TEXT[]) AS reloptions, CAST(NULL AS TEXT[]) AS relacl \
             FROM pg_catalog.pg_class"
                .into(),
        ),
        (
            "pg_attribute".into(),
            "SELECT * EXCEPT (attacl), CAST(NULL AS TEXT[]) AS attacl FROM pg_catalog.pg_attribute"
                .into(),
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
            // The settings clients read from it (the JDBC driver's
            // `max_index_keys` before `getImportedKeys`), beside the one
            // datafusion-pg-catalog has.
            "pg_settings".into(),
            "SELECT * FROM pg_catalog.pg_settings UNION ALL \
             SELECT v.column1 AS name, v.column2 AS setting, s.* EXCEPT (name, setting) \
             FROM (VALUES ('max_index_keys', '32'), ('max_identifier_length', '63'), \
             ('block_size', '8192'), ('server_version', '16.6'), \
             ('server_version_num', '160006'), ('server_encoding', 'UTF8'), \
             ('integer_datetimes', 'on'), ('default_table_access_method', 'heap')) AS v \
             LEFT JOIN pg_catalog.pg_settings AS s ON FALSE"
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
        self.connected.table_names()
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
        self.connected.table_exist(name)
    }
}

/// `version()` as PostgreSQL words it: SQLAlchemy, JDBC and BI tools
/// parse the number after "PostgreSQL".
fn version_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use datafusion::scalar::ScalarValue;
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(format!(
                "PostgreSQL {} on {}-{}, federating through Apache DataFusion",
                crate::pg::SERVER_VERSION,
                std::env::consts::ARCH,
                std::env::consts::OS
            )))))
        }),
    )
}

/// `to_regtype(name)`: the OID of a built-in type, NULL for any other
/// name (psycopg asks for `hstore` when SQLAlchemy connects).
fn to_regtype_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{Array, Int32Array, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    static OIDS: std::sync::OnceLock<HashMap<String, i32>> = std::sync::OnceLock::new();
    let oids = OIDS.get_or_init(|| {
        (1..10_000u32)
            .filter_map(|oid| Type::from_oid(oid).map(|t| (t.name().to_string(), oid as i32)))
            .collect()
    });
    create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let names = arrays[0]
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| DataFusionError::Plan("to_regtype takes text".into()))?;
            let out: Int32Array = (0..names.len())
                .map(|i| {
                    if names.is_null(i) {
                        return None;
                    }
                    let name = names.value(i).trim().trim_start_matches("pg_catalog.");
                    oids.get(name.to_ascii_lowercase().as_str()).copied()
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

/// Functions with one answer here: `pg_type_is_visible(oid)`,
/// `pg_collation_is_visible(oid)` and `pg_function_is_visible(oid)` are
/// true (one search path, no shadowing); nothing has a comment
/// (`obj_description`, `col_description`: psql's `\dT`, JDBC's
/// `getUDTs`); Quipu has no sequences nor indexes, so
/// `pg_get_serial_sequence(table, column)` and `pg_get_indexdef(...)` are
/// NULL. SQLAlchemy's `get_columns` and `get_indexes` call them.
fn constant_udfs() -> Vec<datafusion::logical_expr::ScalarUDF> {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, Signature, Volatility};
    use datafusion::scalar::ScalarValue;
    /// Any arguments (clients send untyped parameters), one answer.
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct Constant {
        name: &'static str,
        value: ScalarValue,
        signature: Signature,
    }
    impl datafusion::logical_expr::ScalarUDFImpl for Constant {
        fn name(&self) -> &str {
            self.name
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, _: &[DataType]) -> Result<DataType> {
            Ok(self.value.data_type())
        }
        fn invoke_with_args(&self, _: ScalarFunctionArgs) -> Result<ColumnarValue> {
            Ok(ColumnarValue::Scalar(self.value.clone()))
        }
    }
    [
        ("pg_type_is_visible", ScalarValue::Boolean(Some(true))),
        ("pg_collation_is_visible", ScalarValue::Boolean(Some(true))),
        ("pg_function_is_visible", ScalarValue::Boolean(Some(true))),
        // No comments on anything.
        ("obj_description", ScalarValue::Utf8(None)),
        ("col_description", ScalarValue::Utf8(None)),
        ("shobj_description", ScalarValue::Utf8(None)),
        ("pg_get_serial_sequence", ScalarValue::Utf8(None)),
        ("pg_get_indexdef", ScalarValue::Utf8(None)),
        // The signatures of functions (psql's `\\df`, JDBC's
        // `getFunctions`) are not known: NULL.
        ("pg_get_function_result", ScalarValue::Utf8(None)),
        ("pg_get_function_arguments", ScalarValue::Utf8(None)),
        (
            "pg_get_function_identity_arguments",
            ScalarValue::Utf8(None),
        ),
    ]
    .into_iter()
    .map(|(name, value)| {
        datafusion::logical_expr::ScalarUDF::new_from_impl(Constant {
            name,
            value,
            signature: Signature::variadic_any(Volatility::Immutable),
        })
    })
    .collect()
}

/// `set_config(name, value, is_local)`: `SET name = value` (for the
/// connection; Quipu has no transactions to scope `is_local` to), answering
/// the value. asyncpg calls it while it introspects types. Settings of the
/// engine (`datafusion.*`, `quipu.*`) are set with `SET`, not here.
fn set_config_udf(settings: Settings) -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{Array, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    create_udf(
        "set_config",
        vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let text = |i: usize| {
                arrays[i]
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("coerced to Utf8")
                    .clone()
            };
            let (names, values) = (text(0), text(1));
            let mut out = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                if names.is_null(i) {
                    return Err(DataFusionError::Execution(
                        "set_config: the setting name must not be NULL".into(),
                    ));
                }
                let name = names.value(i).to_ascii_lowercase();
                if name.starts_with("datafusion.") || name.starts_with("quipu.") {
                    return Err(DataFusionError::Execution(format!(
                        "set_config cannot change {name}; use SET {name} = ..."
                    )));
                }
                let value = (!values.is_null(i)).then(|| values.value(i).to_string());
                settings
                    .lock()
                    .unwrap()
                    .insert(name, value.clone().unwrap_or_default());
                out.push(value);
            }
            shaped_like(args, Arc::new(StringArray::from(out)))
        }),
    )
}

/// `pg_size_pretty(bytes)` as PostgreSQL words it: `8192 bytes`, `16 kB`,
/// `10 MB` (a unit is used from 10 of it on, rounded half up).
fn size_pretty_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    create_udf(
        "pg_size_pretty",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let bytes = arrays[0]
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("coerced to Int64");
            let out: StringArray = bytes.iter().map(|b| b.map(size_pretty)).collect();
            shaped_like(args, Arc::new(out))
        }),
    )
}

fn size_pretty(bytes: i64) -> String {
    const LIMIT: u64 = 10 * 1024;
    if bytes.unsigned_abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    // PostgreSQL's dbsize.c: one extra bit kept for rounding half away
    // from zero.
    let mut size = bytes >> 9;
    for unit in ["kB", "MB", "GB", "TB"] {
        if size.unsigned_abs() < LIMIT * 2 - 1 || unit == "TB" {
            return format!("{} {unit}", (size + size.signum()) / 2);
        }
        size >>= 10;
    }
    unreachable!("TB is the last unit")
}

/// A connection's PostgreSQL settings (`SET application_name ...`).
pub type Settings = Arc<std::sync::Mutex<HashMap<String, String>>>;

/// `current_setting(name [, missing_ok])`: what `SHOW name` answers.
fn current_setting_udf(settings: Settings) -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{Array, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Signature, Volatility};
    #[derive(Debug)]
    struct CurrentSetting {
        settings: Settings,
        signature: Signature,
    }
    impl PartialEq for CurrentSetting {
        fn eq(&self, other: &Self) -> bool {
            Arc::ptr_eq(&self.settings, &other.settings)
        }
    }
    impl Eq for CurrentSetting {}
    impl std::hash::Hash for CurrentSetting {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            Arc::as_ptr(&self.settings).hash(state);
        }
    }
    impl datafusion::logical_expr::ScalarUDFImpl for CurrentSetting {
        fn name(&self) -> &str {
            "current_setting"
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, _: &[DataType]) -> Result<DataType> {
            Ok(DataType::Utf8)
        }
        fn invoke_with_args(
            &self,
            args: datafusion::logical_expr::ScalarFunctionArgs,
        ) -> Result<ColumnarValue> {
            let arrays = ColumnarValue::values_to_arrays(&args.args)?;
            let names = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
            let names = names.as_any().downcast_ref::<StringArray>().expect("cast");
            let missing_ok = arrays
                .get(1)
                .map(|a| datafusion::arrow::compute::cast(a, &DataType::Boolean))
                .transpose()?;
            let mut out = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                if names.is_null(i) {
                    out.push(None);
                    continue;
                }
                let name = names.value(i).to_ascii_lowercase();
                match crate::pg::setting(&self.settings, &name) {
                    Some(v) => out.push(Some(v)),
                    None if missing_ok.as_ref().is_some_and(|m| {
                        let m = m
                            .as_any()
                            .downcast_ref::<datafusion::arrow::array::BooleanArray>();
                        m.is_some_and(|m| m.is_valid(i) && m.value(i))
                    }) =>
                    {
                        out.push(None)
                    }
                    None => {
                        return Err(DataFusionError::Execution(format!(
                            "unrecognized configuration parameter \"{name}\""
                        )));
                    }
                }
            }
            shaped_like(&args.args, Arc::new(StringArray::from(out)))
        }
    }
    datafusion::logical_expr::ScalarUDF::new_from_impl(CurrentSetting {
        settings,
        signature: Signature::one_of(
            vec![
                datafusion::logical_expr::TypeSignature::Exact(vec![DataType::Utf8]),
                datafusion::logical_expr::TypeSignature::Exact(vec![
                    DataType::Utf8,
                    DataType::Boolean,
                ]),
            ],
            Volatility::Stable,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_postgresql_prints_them() {
        for (bytes, pg) in [
            (0, "0 bytes"),
            (10239, "10239 bytes"),
            (10240, "10 kB"),
            (1_000_000, "977 kB"),
            (10_485_760, "10 MB"),
            (1_500_000_000, "1431 MB"),
            (-20_000, "-20 kB"),
        ] {
            assert_eq!(size_pretty(bytes), pg, "{bytes}");
        }
    }

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
