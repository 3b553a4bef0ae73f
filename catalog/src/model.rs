//! The catalog's entities. They are serialised as JSON inside the store, so
//! every field added later must have a serde default (see `store::migrate`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{CatalogError, Result};
use crate::secret;

/// What kind of system a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A directory or bucket of Parquet / CSV / NDJSON files.
    Lake,
    /// A PostgreSQL database.
    Postgres,
    /// A MongoDB (wire protocol) database.
    Mongodb,
}

impl SourceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceKind::Lake => "lake",
            SourceKind::Postgres => "postgres",
            SourceKind::Mongodb => "mongodb",
        }
    }

    /// Options this kind understands. Anything else is rejected when a source
    /// is added, so a typo (`pasword=`) is caught instead of silently ignored.
    pub fn known_options(&self) -> &'static [&'static str] {
        match self {
            SourceKind::Lake => &[
                "url",
                "format",
                "has_header",
                "delimiter",
                "region",
                "endpoint",
                "access_key_id",
                "secret_access_key",
                "session_token",
                "allow_http",
            ],
            SourceKind::Postgres => &[
                "host",
                "port",
                "user",
                "password",
                "dbname",
                "sslmode",
                "schemas",
                "pushdown",
                "unsupported_type",
                "query_timeout",
                "partitions",
            ],
            SourceKind::Mongodb => &[
                "host",
                "port",
                "user",
                "password",
                "database",
                "auth_source",
                "tls",
                "direct_connection",
                "collections",
                "pushdown",
                "unsupported_type",
                "query_timeout",
                "monitor_timeout",
                "partitions",
                "pipelines",
            ],
        }
    }

    /// Options that must never hold a literal value.
    pub fn is_secret_option(option: &str) -> bool {
        matches!(
            option,
            "password" | "secret_access_key" | "session_token" | "token" | "api_key"
        )
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceKind {
    type Err = CatalogError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "lake" => Ok(SourceKind::Lake),
            "postgres" | "postgresql" => Ok(SourceKind::Postgres),
            "mongodb" | "mongo" => Ok(SourceKind::Mongodb),
            _ => Err(CatalogError::UnknownKind(s.to_string())),
        }
    }
}

/// A registered external system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDef {
    pub name: String,
    pub kind: SourceKind,
    /// Connection options. Secret options hold references, never values.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl SourceDef {
    /// How long one remote query may run (option `query_timeout`, seconds;
    /// 300 by default).
    pub fn query_timeout(&self) -> std::time::Duration {
        let secs = self
            .options
            .get("query_timeout")
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        std::time::Duration::from_secs(secs)
    }

    /// False when the source's option `pushdown` turns pushdown off.
    pub fn pushdown(&self) -> bool {
        self.options
            .get("pushdown")
            .and_then(|v| parse_bool(v))
            .unwrap_or(true)
    }

    /// True when the MongoDB option `pipelines` turns on pushing sorts and
    /// aggregates as aggregation pipelines. Off by default: on the one
    /// MongoDB-wire server measured (SecantusDB) they were slower than
    /// reading the documents (docs/benchmarks.md).
    pub fn pipelines(&self) -> bool {
        self.pushdown()
            && self
                .options
                .get("pipelines")
                .and_then(|v| parse_bool(v))
                .unwrap_or(false)
    }

    /// Builds a source definition and checks names and options (but does
    /// not contact the source: that is the connectors' job).
    pub fn new(
        name: impl Into<String>,
        kind: SourceKind,
        options: BTreeMap<String, String>,
    ) -> Result<Self> {
        let def = SourceDef {
            name: name.into(),
            kind,
            options,
        };
        def.validate()?;
        Ok(def)
    }

    /// Checks the name, that every option is known to the kind, that secrets
    /// are references and that required options are present.
    pub fn validate(&self) -> Result<()> {
        validate_source_name(&self.name)?;
        let known = self.kind.known_options();
        for (key, value) in &self.options {
            if !known.contains(&key.as_str()) {
                return Err(CatalogError::UnknownOption {
                    source_name: self.name.clone(),
                    kind: self.kind.to_string(),
                    option: key.clone(),
                    known: known.join(", "),
                });
            }
            if SourceKind::is_secret_option(key) {
                if !secret::is_reference(value) {
                    return Err(CatalogError::PlaintextSecret {
                        source_name: self.name.clone(),
                        option: key.clone(),
                    });
                }
                secret::parse(value)?;
            }
        }
        let required: &[&str] = match self.kind {
            SourceKind::Lake => &["url"],
            SourceKind::Postgres => &["host", "dbname"],
            SourceKind::Mongodb => &["host", "database"],
        };
        for option in required {
            if !self.options.contains_key(*option) {
                return Err(CatalogError::MissingOption {
                    source_name: self.name.clone(),
                    option: (*option).to_string(),
                });
            }
        }
        if let Some(format) = self.options.get("format") {
            FileFormat::from_str(format).map_err(|_| CatalogError::InvalidOption {
                source_name: self.name.clone(),
                option: "format".into(),
                reason: format!("`{format}` is not one of parquet, csv, json"),
            })?;
        }
        for flag in [
            "has_header",
            "allow_http",
            "tls",
            "direct_connection",
            "pushdown",
            "pipelines",
        ] {
            if let Some(v) = self.options.get(flag) {
                parse_bool(v).ok_or_else(|| CatalogError::InvalidOption {
                    source_name: self.name.clone(),
                    option: flag.into(),
                    reason: format!("`{v}` is not true or false"),
                })?;
            }
        }
        if let Some(v) = self.options.get("partitions")
            && !v.parse::<u64>().is_ok_and(|n| (1..=64).contains(&n))
        {
            return Err(CatalogError::InvalidOption {
                source_name: self.name.clone(),
                option: "partitions".into(),
                reason: format!("`{v}` is not a number of partitions from 1 to 64"),
            });
        }
        for option in ["query_timeout", "monitor_timeout"] {
            if let Some(v) = self.options.get(option)
                && !v.parse::<u64>().is_ok_and(|s| s > 0)
            {
                return Err(CatalogError::InvalidOption {
                    source_name: self.name.clone(),
                    option: option.into(),
                    reason: format!("`{v}` is not a whole number of seconds above 0"),
                });
            }
        }
        if let Some(v) = self.options.get("delimiter")
            && v.len() != 1
        {
            return Err(CatalogError::InvalidOption {
                source_name: self.name.clone(),
                option: "delimiter".into(),
                reason: format!("`{v}` must be exactly one ASCII character"),
            });
        }
        Ok(())
    }

    /// A boolean option with a default.
    pub fn bool_option(&self, key: &str, default: bool) -> bool {
        self.options
            .get(key)
            .and_then(|v| parse_bool(v))
            .unwrap_or(default)
    }
}

/// A boolean option as the catalog accepts it (true/false, yes/no, on/off, 1/0).
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Names reserved for Quipu's own catalogs and DataFusion's system schemas.
const RESERVED: &[&str] = &[
    crate::DEFAULT_CATALOG,
    "information_schema",
    "pg_catalog",
    "datafusion",
];

/// Source names become SQL catalog names, so keep them plain identifiers
/// that never need quoting.
pub fn validate_source_name(name: &str) -> Result<()> {
    let invalid = |reason: &str| CatalogError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(invalid("a source name cannot be empty")),
        Some(c) if !(c.is_ascii_lowercase() || c == '_') => {
            return Err(invalid(
                "a source name must start with a lowercase letter or `_`",
            ));
        }
        _ => {}
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(invalid(
            "a source name may only hold lowercase letters, digits and `_`",
        ));
    }
    if name.len() > 63 {
        return Err(invalid("a source name is at most 63 characters"));
    }
    if RESERVED.contains(&name) {
        return Err(invalid("this name is reserved"));
    }
    Ok(())
}

/// Schema and table names may be anything SQL can quote, except empty or
/// holding a NUL (the store's key separator).
pub fn validate_object_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('\0') {
        return Err(CatalogError::InvalidName {
            name: name.escape_debug().to_string(),
            reason: "names must be non-empty and must not contain NUL".into(),
        });
    }
    Ok(())
}

/// A three-part table name, `source.schema.table`, as in Trino.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableName {
    pub source: String,
    pub schema: String,
    pub table: String,
}

impl TableName {
    pub fn new(
        source: impl Into<String>,
        schema: impl Into<String>,
        table: impl Into<String>,
    ) -> Self {
        TableName {
            source: source.into(),
            schema: schema.into(),
            table: table.into(),
        }
    }

    /// Parses `source.schema.table` or `source.table` (schema `public`).
    /// Parts are split on dots; names with dots are declared through the
    /// library, not the command line.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('.').collect();
        let name = match parts.as_slice() {
            [source, schema, table] => TableName::new(*source, *schema, *table),
            [source, table] => TableName::new(*source, crate::DEFAULT_SCHEMA, *table),
            _ => {
                return Err(CatalogError::InvalidName {
                    name: s.to_string(),
                    reason: "expected source.schema.table or source.table".into(),
                });
            }
        };
        validate_source_name(&name.source)?;
        validate_object_name(&name.schema)?;
        validate_object_name(&name.table)?;
        Ok(name)
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.source, self.schema, self.table)
    }
}

/// File formats a lake table can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Parquet,
    Csv,
    /// Newline-delimited JSON.
    Json,
}

impl FileFormat {
    /// The format a file name implies, if any.
    pub fn from_path(path: &str) -> Option<FileFormat> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".parquet") || lower.ends_with(".parq") {
            Some(FileFormat::Parquet)
        } else if lower.ends_with(".csv") {
            Some(FileFormat::Csv)
        } else if lower.ends_with(".json")
            || lower.ends_with(".ndjson")
            || lower.ends_with(".jsonl")
        {
            Some(FileFormat::Json)
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv => "csv",
            FileFormat::Json => "json",
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FileFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "parquet" => Ok(FileFormat::Parquet),
            "csv" => Ok(FileFormat::Csv),
            "json" | "ndjson" | "jsonl" => Ok(FileFormat::Json),
            other => Err(format!(
                "unknown format `{other}`; expected parquet, csv or json"
            )),
        }
    }
}

/// One column of a stored schema. The type is kept as text (Arrow's own
/// `DataType` display form) so the catalog files stay readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub data_type: String,
    #[serde(default = "yes")]
    pub nullable: bool,
    /// The source's type of a column read as text whose values PostgreSQL
    /// orders otherwise than their text (an enum by its labels' order,
    /// `money`, an array, `jsonb`, `inet`, ...): Quipu refuses to order
    /// them rather than order their text (`dialect::text_order`). None for
    /// every other column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
}

fn yes() -> bool {
    true
}

/// How a table got into the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableOrigin {
    /// Found by discovery (`add-source`, `refresh`); replaced on refresh.
    Discovered,
    /// Declared by an admin (`add-table`); refresh leaves it alone.
    Declared,
}

/// A table of a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    pub name: TableName,
    pub origin: TableOrigin,
    /// Lake: the folder or file, relative to the source URL (or a full URL).
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// Lake: only files with this suffix are read (`.parquet`, `.ndjson`).
    #[serde(default)]
    pub file_extension: Option<String>,
    /// File columns (without partition columns). Empty means "infer".
    #[serde(default)]
    pub columns: Vec<ColumnDef>,
    /// Hive-style partition columns (`date=2026-11-27/`), outermost first.
    #[serde(default)]
    pub partition_columns: Vec<ColumnDef>,
    /// Whether `columns` was declared by an admin (kept on refresh) rather
    /// than inferred.
    #[serde(default)]
    pub declared_schema: bool,
    /// Live tables: how many partitions (key or `_id` ranges) a read is
    /// split into, over the source's `partitions` option; None: automatic.
    /// Set with `quipu catalog set-partitions`, kept on refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    /// Live tables: the primary key's columns at the source, in key order
    /// (a MongoDB collection's is `_id`), found by discovery. Clients see
    /// it in `pg_catalog` (`pg_constraint`, `pg_index`); Quipu does not
    /// enforce it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_key: Vec<String>,
}

/// A SQL view in the `quipu` catalog, e.g. `yachay.customer_360`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewDef {
    pub schema: String,
    pub name: String,
    pub sql: String,
}

/// A user of the front doors (PostgreSQL wire, Flight SQL).
///
/// The password is kept only as SCRAM-SHA-256's verifier (RFC 5802, what
/// PostgreSQL stores as `SCRAM-SHA-256$iter:salt$StoredKey:ServerKey`):
/// `SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations)`,
/// `StoredKey = SHA-256(HMAC(SaltedPassword, "Client Key"))`,
/// `ServerKey = HMAC(SaltedPassword, "Server Key")`, hex-encoded. These
/// verify a client's proof but cannot produce one, so reading the catalog
/// file does not let anyone log in; neither the password nor the
/// SaltedPassword is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDef {
    pub name: String,
    /// Hex of the random salt.
    pub salt: String,
    pub iterations: u32,
    /// Hex of SCRAM's StoredKey.
    pub stored_key: String,
    /// Hex of SCRAM's ServerKey.
    pub server_key: String,
    /// May change the catalog and the users.
    #[serde(default)]
    pub admin: bool,
    /// Sources this user may read (`*` for all). Views are readable when
    /// every source they read is.
    #[serde(default)]
    pub sources: Vec<String>,
}

impl UserDef {
    /// Whether this user may read `source`.
    pub fn may_read(&self, source: &str) -> bool {
        self.admin || self.sources.iter().any(|s| s == "*" || s == source)
    }

    /// The granted sources, or `None` for all of them.
    pub fn readable_sources(&self) -> Option<std::collections::BTreeSet<String>> {
        if self.admin || self.sources.iter().any(|s| s == "*") {
            None
        } else {
            Some(self.sources.iter().cloned().collect())
        }
    }
}

/// A materialized view: a query whose answer Quipu keeps as Parquet files
/// (one generation per refresh) and reads instead of the sources when a
/// query allows data of its age (docs/caching.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheDef {
    pub schema: String,
    pub name: String,
    /// The defining query (a `SELECT`), as written.
    pub sql: String,
    /// Seconds between automatic refreshes; None: refreshed by hand only.
    #[serde(default)]
    pub refresh_every_secs: Option<u64>,
    /// The oldest data (seconds) a query may be answered with when it sets
    /// no bound of its own; None: any age.
    #[serde(default)]
    pub max_staleness_secs: Option<u64>,
    /// Where generations are written: a `file://` or `s3://` URL (s3 through
    /// the lake source whose URL it is under); None: `cache/` under the
    /// catalog's data directory.
    #[serde(default)]
    pub storage: Option<String>,
    /// A column of the answer whose value grows with every row the sources
    /// add (`WITH (append_column = 'order_id')`): a refresh of a query over
    /// one table then reads only the rows above the serving generation's
    /// largest value and adds them to its files. None: every refresh reads
    /// everything.
    #[serde(default)]
    pub append_column: Option<String>,
    /// What the last refreshes did.
    #[serde(default)]
    pub state: CacheState,
}

/// The serving generation of a cache and what its refreshes did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CacheState {
    /// Bumped by every refresh that completed; 0: never refreshed.
    #[serde(default)]
    pub generation: u64,
    /// URL of the directory holding the serving generation's files.
    #[serde(default)]
    pub location: Option<String>,
    /// The columns of the files (Arrow display types, as tables store them).
    #[serde(default)]
    pub columns: Vec<ColumnDef>,
    #[serde(default)]
    pub rows: u64,
    #[serde(default)]
    pub bytes: u64,
    /// When the serving generation's refresh began reading the sources
    /// (milliseconds since the Unix epoch): its age counts from here.
    #[serde(default)]
    pub read_at_ms: Option<u64>,
    /// How long that refresh took.
    #[serde(default)]
    pub refresh_ms: Option<u64>,
    /// The last refresh's error, if it failed (cleared by a success).
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_error_at_ms: Option<u64>,
    /// The refresh under way, if any: which process and since when.
    #[serde(default)]
    pub refreshing: Option<Refreshing>,
    /// Earlier generations not yet removed: queries planned before a flip
    /// may still read them.
    #[serde(default)]
    pub retired: Vec<Retired>,
    /// The settings that change answers, as the serving generation's
    /// refresh had them; None: refreshed before Quipu recorded them (such
    /// a generation answers only queries that name it).
    #[serde(default)]
    pub read_with: Option<ReadWith>,
    /// The largest `append_column` value of the serving generation, as its
    /// text (read back at the column's type); None: no append column, or
    /// no row yet.
    #[serde(default)]
    pub watermark: Option<String>,
    /// How the serving generation was made: `full`, `full (<why not
    /// incremental>)` or `incremental (<n> rows added)`.
    #[serde(default)]
    pub refresh_kind: Option<String>,
    /// For a cache over one lake table: the table's files its serving
    /// generation has read, each as it was then (an incremental refresh
    /// reads only files not listed here). Empty: not recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_files: Vec<SourceFile>,
}

/// A file of a lake table, as a cache's refresh listed it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourceFile {
    /// Its path in its object store.
    pub path: String,
    pub size: u64,
    /// Its last modification (milliseconds since the Unix epoch).
    pub modified_ms: i64,
}

/// The session settings a refresh computed its answer with, among those
/// that change answers: a query from a session that has them otherwise
/// is not answered from the cache.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReadWith {
    /// `datafusion.execution.time_zone` (None: unset, UTC).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// `quipu.date_order`, the order ambiguous date text in the query was
    /// read in (None: MDY, the default, and all that generations
    /// recorded before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_order: Option<String>,
}

/// A generation a refresh replaced, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    pub location: String,
    pub at_ms: u64,
}

/// A refresh under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refreshing {
    pub pid: u32,
    pub host: String,
    pub since_ms: u64,
}

impl CacheDef {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}
