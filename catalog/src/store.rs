//! The persistent catalog store: one redb file (`catalog.redb`) in the data
//! directory.
//!
//! redb commits are atomic and crash-safe (copy-on-write B-trees with a
//! two-slot commit header), so a `kill -9` during a change leaves either the
//! old catalog or the new one. Each public mutation here is exactly one
//! write transaction, and every check that can fail (duplicates, unknown
//! names) runs inside it before anything is inserted, so a failed change
//! writes nothing.
//!
//! Layout (format version 1):
//! - `meta`: `format_version` (u64), `generation` (u64, bumped on each commit)
//! - `sources`: name -> JSON [`SourceDef`]
//! - `tables`: `source \0 schema \0 table` -> JSON [`TableDef`]
//! - `views`: `schema \0 name` -> JSON [`ViewDef`]
//! - `schemas`: schema name of the `quipu` catalog -> `()` (created with `CREATE SCHEMA`)
//! - `cache_policies`: `schema \0 name` -> JSON [`CacheDef`] (materialized
//!   views: definition and serving generation; empty before caches existed)
//! - `users` (version 2): name -> JSON [`UserDef`] (SCRAM StoredKey and
//!   ServerKey since version 3, never the password nor the SaltedPassword,
//!   so the file does not let its reader log in); not part of
//!   [`CatalogSnapshot`], so executors never receive it
//! - `auth` (version 3): `mock_salt_secret` -> 32 random bytes, made once per
//!   catalog, from which the front doors derive a stable fake salt for user
//!   names that do not exist (never printed, not in the snapshot)
//!
//! The file is created 0600 in a directory created 0700. Version 2 stored
//! each user's SaltedPassword, which is enough to log in; opening such a
//! file rewrites every user to StoredKey/ServerKey in the migration's
//! transaction and then compacts the file so the freed pages holding the
//! old values are gone from it.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{CatalogError, Result};
use crate::model::{CacheDef, SourceDef, TableDef, TableName, TableOrigin, UserDef, ViewDef};

/// Current on-disk format version. Bump it and add a step to [`migrate`]
/// whenever the layout or the JSON entities change incompatibly.
pub const FORMAT_VERSION: u64 = 3;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SOURCES: TableDefinition<&str, &str> = TableDefinition::new("sources");
const TABLES: TableDefinition<&str, &str> = TableDefinition::new("tables");
const VIEWS: TableDefinition<&str, &str> = TableDefinition::new("views");
const SCHEMAS: TableDefinition<&str, ()> = TableDefinition::new("schemas");
const CACHE_POLICIES: TableDefinition<&str, &str> = TableDefinition::new("cache_policies");
const USERS: TableDefinition<&str, &str> = TableDefinition::new("users");
const AUTH: TableDefinition<&str, &[u8]> = TableDefinition::new("auth");

/// Key in `auth` of the secret that mock salts of unknown users derive from.
const MOCK_SECRET: &str = "mock_salt_secret";

const FILE_NAME: &str = "catalog.redb";

/// The whole catalog at one generation, as JSON on the wire between the
/// scheduler and its executors. Holds secret references only, never
/// secret values (the store refuses plaintext secrets).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CatalogSnapshot {
    pub format_version: u64,
    pub generation: u64,
    pub sources: Vec<SourceDef>,
    pub tables: Vec<TableDef>,
    pub views: Vec<ViewDef>,
    pub schemas: Vec<String>,
    /// Materialized views (executors read their files by location).
    #[serde(default)]
    pub caches: Vec<CacheDef>,
}

/// The catalog on disk. Several processes may open it at once (a server and
/// the CLI); redb serialises their write transactions.
pub struct CatalogStore {
    db: redb::Database,
    path: PathBuf,
}

impl std::fmt::Debug for CatalogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogStore")
            .field("path", &self.path)
            .finish()
    }
}

fn table_key(name: &TableName) -> String {
    format!("{}\0{}\0{}", name.source, name.schema, name.table)
}

fn view_key(schema: &str, name: &str) -> String {
    format!("{schema}\0{name}")
}

fn encode<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(CatalogError::storage)
}

/// The entries of one table whose keys start with `prefix` (all without
/// one), decoded, inside an open read transaction.
fn entries<T: DeserializeOwned>(
    tx: &redb::ReadTransaction,
    def: TableDefinition<&str, &str>,
    prefix: Option<&str>,
) -> Result<Vec<T>> {
    let table = tx.open_table(def).map_err(CatalogError::storage)?;
    let mut out = Vec::new();
    for entry in table.iter().map_err(CatalogError::storage)? {
        let (k, v) = entry.map_err(CatalogError::storage)?;
        if prefix.is_some_and(|p| !k.value().starts_with(p)) {
            continue;
        }
        out.push(decode(k.value(), v.value())?);
    }
    Ok(out)
}

/// A `meta` number (0 when absent) inside an open read transaction.
fn meta_value(tx: &redb::ReadTransaction, key: &str) -> Result<u64> {
    let meta = tx.open_table(META).map_err(CatalogError::storage)?;
    Ok(meta
        .get(key)
        .map_err(CatalogError::storage)?
        .map(|v| v.value())
        .unwrap_or(0))
}

/// The schemas created with `CREATE SCHEMA`, inside an open read transaction.
fn created_schemas(tx: &redb::ReadTransaction) -> Result<Vec<String>> {
    let table = tx.open_table(SCHEMAS).map_err(CatalogError::storage)?;
    let mut out = Vec::new();
    for entry in table.iter().map_err(CatalogError::storage)? {
        out.push(entry.map_err(CatalogError::storage)?.0.value().to_string());
    }
    Ok(out)
}

/// Empties one table and fills it with `rows` (key, JSON), inside a write
/// transaction.
fn refill(
    tx: &redb::WriteTransaction,
    def: TableDefinition<&str, &str>,
    rows: impl IntoIterator<Item = (String, Result<String>)>,
) -> Result<()> {
    let mut table = tx.open_table(def).map_err(CatalogError::storage)?;
    table.retain(|_, _| false).map_err(CatalogError::storage)?;
    for (key, json) in rows {
        table
            .insert(key.as_str(), json?.as_str())
            .map_err(CatalogError::storage)?;
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(key: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| CatalogError::Corrupt {
        key: key.replace('\0', "."),
        reason: e.to_string(),
    })
}

/// Rewrites format-2 user records, which held `salted_password`, to
/// `stored_key` and `server_key` (both derive from it), inside the
/// migration's write transaction. Returns whether any was rewritten.
fn upgrade_users(tx: &redb::WriteTransaction) -> Result<bool> {
    let mut users = tx.open_table(USERS).map_err(CatalogError::storage)?;
    let mut rewritten = Vec::new();
    for entry in users.iter().map_err(CatalogError::storage)? {
        let (k, v) = entry.map_err(CatalogError::storage)?;
        let key = k.value().to_string();
        let mut json: serde_json::Value = decode(&key, v.value())?;
        let Some(obj) = json.as_object_mut() else {
            continue;
        };
        let Some(salted) = obj.remove("salted_password") else {
            continue;
        };
        let salted = salted
            .as_str()
            .and_then(crate::secret::unhex)
            .ok_or_else(|| CatalogError::Corrupt {
                key: format!("users.{key}"),
                reason: "salted_password is not hex".into(),
            })?;
        let (stored, server) = crate::secret::scram_keys(&salted);
        obj.insert("stored_key".into(), crate::secret::hex(&stored).into());
        obj.insert("server_key".into(), crate::secret::hex(&server).into());
        rewritten.push((key, encode(&json)?));
    }
    for (key, json) in &rewritten {
        users
            .insert(key.as_str(), json.as_str())
            .map_err(CatalogError::storage)?;
    }
    Ok(!rewritten.is_empty())
}

/// Creates `dir` (and missing parents) with mode 0700; an existing
/// directory is left as it is.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Why [`prepare_file`] refused.
enum Prepared {
    Empty,
    Io(std::io::Error),
}

/// Makes sure the catalog file exists with mode 0600 before redb opens it:
/// creates a missing one (empty, for redb to initialise), tightens an
/// existing one that group or others may read, and refuses an existing
/// empty one unless `init`.
fn prepare_file(path: &Path, init: bool) -> std::result::Result<(), Prepared> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Prepared::Io(e)),
    }
    let mut meta = std::fs::metadata(path).map_err(Prepared::Io)?;
    // Another process may have just created the file and be about to
    // initialise it: give it a moment before calling the file empty.
    for _ in 0..25 {
        if meta.len() > 0 || init {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        meta = std::fs::metadata(path).map_err(Prepared::Io)?;
    }
    if meta.len() == 0 && !init {
        return Err(Prepared::Empty);
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
            .map_err(Prepared::Io)?;
        tracing::warn!(
            path = %path.display(),
            "catalog file mode was {:o}; tightened to {:o} (it holds user credentials)",
            mode & 0o777,
            mode & 0o700
        );
    }
    Ok(())
}

impl CatalogStore {
    /// Opens (creating if needed) the catalog in `dir`, migrating an older
    /// format and refusing a newer one. A missing directory is created with
    /// mode 0700 and a missing file with mode 0600; an existing file
    /// readable by group or others is tightened to 0600. An existing empty
    /// (0-byte) file is refused: it is not a catalog, and treating it as a
    /// new one would start an empty server silently (use
    /// [`CatalogStore::open_init`] to initialise it on purpose).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir.as_ref(), false)
    }

    /// Like [`CatalogStore::open`], but an existing empty file is
    /// initialised as a new catalog instead of refused.
    pub fn open_init(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir.as_ref(), true)
    }

    fn open_with(dir: &Path, init: bool) -> Result<Self> {
        let open_err = |e: Box<dyn std::error::Error + Send + Sync>| CatalogError::Open {
            path: dir.to_path_buf(),
            source: e,
        };
        create_private_dir(dir).map_err(|e| open_err(Box::new(e)))?;
        let path = dir.join(FILE_NAME);
        prepare_file(&path, init).map_err(|e| match e {
            Prepared::Empty => CatalogError::EmptyFile { path: path.clone() },
            Prepared::Io(e) => open_err(Box::new(e)),
        })?;
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(&path)
            .map_err(|e| open_err(Box::new(e)))?;
        let mut store = CatalogStore {
            db,
            path: dir.to_path_buf(),
        };
        if store.migrate()? {
            store.scrub();
        }
        Ok(store)
    }

    /// The data directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// Brings the file to [`FORMAT_VERSION`] in one transaction. Returns
    /// whether user records holding a SaltedPassword were rewritten.
    fn migrate(&self) -> Result<bool> {
        let tx = self.db.begin_write().map_err(CatalogError::storage)?;
        {
            let mut meta = tx.open_table(META).map_err(CatalogError::storage)?;
            let found = meta
                .get("format_version")
                .map_err(CatalogError::storage)?
                .map(|v| v.value());
            match found {
                Some(v) if v > FORMAT_VERSION => {
                    return Err(CatalogError::TooNew {
                        path: self.path.clone(),
                        found: v as u32,
                        supported: FORMAT_VERSION as u32,
                    });
                }
                Some(v) if v == FORMAT_VERSION => return Ok(false),
                // Version 0 is a new, empty file; version 1 lacks `users`
                // and version 2 `auth`, which are created below; version 2
                // users are rewritten below. Later steps go here in order.
                None | Some(_) => {}
            }
            meta.insert("format_version", FORMAT_VERSION)
                .map_err(CatalogError::storage)?;
            if found.is_none() {
                meta.insert("generation", 0)
                    .map_err(CatalogError::storage)?;
            }
        }
        for def in [SOURCES, TABLES, VIEWS, CACHE_POLICIES, USERS] {
            tx.open_table(def).map_err(CatalogError::storage)?;
        }
        tx.open_table(SCHEMAS).map_err(CatalogError::storage)?;
        let rewrote = upgrade_users(&tx)?;
        {
            let mut auth = tx.open_table(AUTH).map_err(CatalogError::storage)?;
            if auth
                .get(MOCK_SECRET)
                .map_err(CatalogError::storage)?
                .is_none()
            {
                let secret = crate::secret::random_bytes::<32>();
                auth.insert(MOCK_SECRET, secret.as_slice())
                    .map_err(CatalogError::storage)?;
            }
        }
        tx.commit().map_err(CatalogError::storage)?;
        Ok(rewrote)
    }

    /// Compacts the file after the users were rewritten: redb frees the
    /// pages of the old records without erasing them, and compaction moves
    /// the live pages down and truncates the file. Failure (another
    /// process is reading) is logged; the records themselves are already
    /// rewritten.
    fn scrub(&mut self) {
        loop {
            match self.db.compact() {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(
                        path = %self.path.display(),
                        error = %e,
                        "could not compact the catalog after rewriting its users; \
                         freed pages may still hold old password hashes until reused"
                    );
                    break;
                }
            }
        }
    }

    /// The per-catalog secret that mock salts of unknown user names are
    /// derived from (HMAC(secret, name)), so that such a name gets the same
    /// salt on every attempt, as a real user does.
    pub fn mock_salt_secret(&self) -> Result<Vec<u8>> {
        let tx = self.db.begin_read().map_err(CatalogError::storage)?;
        let auth = tx.open_table(AUTH).map_err(CatalogError::storage)?;
        let got = auth.get(MOCK_SECRET).map_err(CatalogError::storage)?;
        got.map(|v| v.value().to_vec())
            .ok_or_else(|| CatalogError::Corrupt {
                key: format!("auth.{MOCK_SECRET}"),
                reason: "missing".into(),
            })
    }

    /// A counter bumped by every committed change, so that in-memory views
    /// of the catalog (in this or another process) know when to reload.
    pub fn generation(&self) -> Result<u64> {
        let tx = self.db.begin_read().map_err(CatalogError::storage)?;
        meta_value(&tx, "generation")
    }

    /// The on-disk format version of this file.
    pub fn format_version(&self) -> Result<u64> {
        let tx = self.db.begin_read().map_err(CatalogError::storage)?;
        meta_value(&tx, "format_version")
    }

    fn read_all<T: DeserializeOwned>(
        &self,
        def: TableDefinition<&str, &str>,
        prefix: Option<&str>,
    ) -> Result<Vec<T>> {
        let tx = self.db.begin_read().map_err(CatalogError::storage)?;
        entries(&tx, def, prefix)
    }

    fn read_one<T: DeserializeOwned>(
        &self,
        def: TableDefinition<&str, &str>,
        key: &str,
    ) -> Result<Option<T>> {
        let tx = self.db.begin_read().map_err(CatalogError::storage)?;
        let table = tx.open_table(def).map_err(CatalogError::storage)?;
        let got = table.get(key).map_err(CatalogError::storage)?;
        got.map(|v| decode(key, v.value())).transpose()
    }

    /// All sources, by name.
    pub fn sources(&self) -> Result<Vec<SourceDef>> {
        self.read_all(SOURCES, None)
    }

    pub fn source(&self, name: &str) -> Result<Option<SourceDef>> {
        self.read_one(SOURCES, name)
    }

    /// Tables of one source, or of all sources.
    pub fn tables(&self, source: Option<&str>) -> Result<Vec<TableDef>> {
        let prefix = source.map(|s| format!("{s}\0"));
        self.read_all(TABLES, prefix.as_deref())
    }

    pub fn table(&self, name: &TableName) -> Result<Option<TableDef>> {
        self.read_one(TABLES, &table_key(name))
    }

    /// All views of the `quipu` catalog.
    pub fn views(&self) -> Result<Vec<ViewDef>> {
        self.read_all(VIEWS, None)
    }

    /// Schemas of the `quipu` catalog: those created explicitly plus those
    /// holding a view.
    pub fn schemas(&self) -> Result<Vec<String>> {
        let tx = self.db.begin_read().map_err(CatalogError::storage)?;
        let mut out = created_schemas(&tx)?;
        drop(tx);
        let cached = self.caches()?.into_iter().map(|c| c.schema);
        for schema in self.views()?.into_iter().map(|v| v.schema).chain(cached) {
            if !out.contains(&schema) {
                out.push(schema);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Everything in the catalog as one consistent copy (one read
    /// transaction): what the scheduler hands executors.
    pub fn snapshot(&self) -> Result<CatalogSnapshot> {
        let tx = self.db.begin_read().map_err(CatalogError::storage)?;
        let generation = meta_value(&tx, "generation")?;
        let sources = entries(&tx, SOURCES, None)?;
        let tables = entries(&tx, TABLES, None)?;
        let views = entries(&tx, VIEWS, None)?;
        let schemas = created_schemas(&tx)?;
        let caches = entries(&tx, CACHE_POLICIES, None)?;
        Ok(CatalogSnapshot {
            format_version: FORMAT_VERSION,
            generation,
            sources,
            tables,
            views,
            schemas,
            caches,
        })
    }

    /// Makes this catalog an exact copy of `snap` in one write transaction,
    /// generation included (an executor's replica of the scheduler's
    /// catalog). A snapshot of another format version is refused.
    pub fn replace_with(&self, snap: &CatalogSnapshot) -> Result<()> {
        if snap.format_version != FORMAT_VERSION {
            return Err(CatalogError::TooNew {
                path: self.path.clone(),
                found: snap.format_version as u32,
                supported: FORMAT_VERSION as u32,
            });
        }
        let tx = self.db.begin_write().map_err(CatalogError::storage)?;
        {
            refill(
                &tx,
                SOURCES,
                snap.sources.iter().map(|s| (s.name.clone(), encode(s))),
            )?;
            refill(
                &tx,
                TABLES,
                snap.tables.iter().map(|t| (table_key(&t.name), encode(t))),
            )?;
            refill(
                &tx,
                VIEWS,
                snap.views
                    .iter()
                    .map(|v| (view_key(&v.schema, &v.name), encode(v))),
            )?;
            refill(
                &tx,
                CACHE_POLICIES,
                snap.caches
                    .iter()
                    .map(|c| (view_key(&c.schema, &c.name), encode(c))),
            )?;
            let mut schemas = tx.open_table(SCHEMAS).map_err(CatalogError::storage)?;
            schemas
                .retain(|_, _| false)
                .map_err(CatalogError::storage)?;
            for s in &snap.schemas {
                schemas
                    .insert(s.as_str(), ())
                    .map_err(CatalogError::storage)?;
            }
            let mut meta = tx.open_table(META).map_err(CatalogError::storage)?;
            meta.insert("generation", snap.generation)
                .map_err(CatalogError::storage)?;
        }
        tx.commit().map_err(CatalogError::storage)
    }

    /// Runs `f` in one write transaction and bumps the generation; if `f`
    /// fails nothing is committed.
    fn write<R>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<R>) -> Result<R> {
        let tx = self.db.begin_write().map_err(CatalogError::storage)?;
        let out = f(&tx)?;
        {
            let mut meta = tx.open_table(META).map_err(CatalogError::storage)?;
            let g = meta
                .get("generation")
                .map_err(CatalogError::storage)?
                .map(|v| v.value())
                .unwrap_or(0);
            meta.insert("generation", g + 1)
                .map_err(CatalogError::storage)?;
        }
        tx.commit().map_err(CatalogError::storage)?;
        Ok(out)
    }

    /// Adds a source together with its discovered tables, atomically.
    pub fn add_source(&self, source: &SourceDef, tables: &[TableDef]) -> Result<()> {
        source.validate()?;
        self.write(|tx| {
            let mut sources = tx.open_table(SOURCES).map_err(CatalogError::storage)?;
            if sources
                .get(source.name.as_str())
                .map_err(CatalogError::storage)?
                .is_some()
            {
                return Err(CatalogError::DuplicateSource(source.name.clone()));
            }
            sources
                .insert(source.name.as_str(), encode(source)?.as_str())
                .map_err(CatalogError::storage)?;
            let mut t = tx.open_table(TABLES).map_err(CatalogError::storage)?;
            for table in tables {
                t.insert(table_key(&table.name).as_str(), encode(table)?.as_str())
                    .map_err(CatalogError::storage)?;
            }
            Ok(())
        })
    }

    /// Removes a source and all its tables.
    pub fn drop_source(&self, name: &str) -> Result<()> {
        self.write(|tx| {
            let mut sources = tx.open_table(SOURCES).map_err(CatalogError::storage)?;
            if sources
                .remove(name)
                .map_err(CatalogError::storage)?
                .is_none()
            {
                return Err(CatalogError::UnknownSource(name.to_string()));
            }
            let mut t = tx.open_table(TABLES).map_err(CatalogError::storage)?;
            let prefix = format!("{name}\0");
            t.retain(|k, _| !k.starts_with(&prefix))
                .map_err(CatalogError::storage)?;
            Ok(())
        })
    }

    /// Replaces the discovered tables of a source (declared tables stay;
    /// a discovered table never shadows a declared one of the same name; a
    /// table found again keeps its `partitions` setting).
    pub fn replace_discovered_tables(&self, source: &str, tables: &[TableDef]) -> Result<()> {
        self.write(|tx| {
            let sources = tx.open_table(SOURCES).map_err(CatalogError::storage)?;
            if sources
                .get(source)
                .map_err(CatalogError::storage)?
                .is_none()
            {
                return Err(CatalogError::UnknownSource(source.to_string()));
            }
            let mut t = tx.open_table(TABLES).map_err(CatalogError::storage)?;
            let prefix = format!("{source}\0");
            let mut declared = Vec::new();
            let mut doomed = Vec::new();
            let mut settings = std::collections::HashMap::new();
            for entry in t.iter().map_err(CatalogError::storage)? {
                let (k, v) = entry.map_err(CatalogError::storage)?;
                if !k.value().starts_with(&prefix) {
                    continue;
                }
                let def: TableDef = decode(k.value(), v.value())?;
                if def.origin == TableOrigin::Declared {
                    declared.push(k.value().to_string());
                } else {
                    if let Some(n) = def.partitions {
                        settings.insert(k.value().to_string(), n);
                    }
                    doomed.push(k.value().to_string());
                }
            }
            for k in doomed {
                t.remove(k.as_str()).map_err(CatalogError::storage)?;
            }
            for table in tables {
                let key = table_key(&table.name);
                if !declared.contains(&key) {
                    let mut table = table.clone();
                    if let Some(n) = settings.get(&key) {
                        table.partitions = Some(*n);
                    }
                    t.insert(key.as_str(), encode(&table)?.as_str())
                        .map_err(CatalogError::storage)?;
                }
            }
            Ok(())
        })
    }

    /// Adds one (declared) table; its source must exist.
    pub fn add_table(&self, table: &TableDef, replace: bool) -> Result<()> {
        self.write(|tx| {
            let sources = tx.open_table(SOURCES).map_err(CatalogError::storage)?;
            if sources
                .get(table.name.source.as_str())
                .map_err(CatalogError::storage)?
                .is_none()
            {
                return Err(CatalogError::UnknownSource(table.name.source.clone()));
            }
            let mut t = tx.open_table(TABLES).map_err(CatalogError::storage)?;
            let key = table_key(&table.name);
            if !replace
                && t.get(key.as_str())
                    .map_err(CatalogError::storage)?
                    .is_some()
            {
                return Err(CatalogError::DuplicateTable(table.name.to_string()));
            }
            t.insert(key.as_str(), encode(table)?.as_str())
                .map_err(CatalogError::storage)?;
            Ok(())
        })
    }

    /// Sets (or with None clears) a table's `partitions`.
    pub fn set_table_partitions(&self, name: &TableName, partitions: Option<u32>) -> Result<()> {
        self.write(|tx| {
            let mut t = tx.open_table(TABLES).map_err(CatalogError::storage)?;
            let key = table_key(name);
            let mut def: TableDef = match t.get(key.as_str()).map_err(CatalogError::storage)? {
                Some(v) => decode(&key, v.value())?,
                None => return Err(CatalogError::UnknownTable(name.to_string())),
            };
            def.partitions = partitions;
            t.insert(key.as_str(), encode(&def)?.as_str())
                .map_err(CatalogError::storage)?;
            Ok(())
        })
    }

    pub fn drop_table(&self, name: &TableName) -> Result<()> {
        self.write(|tx| {
            let mut t = tx.open_table(TABLES).map_err(CatalogError::storage)?;
            if t.remove(table_key(name).as_str())
                .map_err(CatalogError::storage)?
                .is_none()
            {
                return Err(CatalogError::UnknownTable(name.to_string()));
            }
            Ok(())
        })
    }

    /// Creates or replaces a view.
    pub fn put_view(&self, view: &ViewDef) -> Result<()> {
        crate::model::validate_object_name(&view.schema)?;
        crate::model::validate_object_name(&view.name)?;
        self.write(|tx| {
            let caches = tx
                .open_table(CACHE_POLICIES)
                .map_err(CatalogError::storage)?;
            let key = view_key(&view.schema, &view.name);
            if caches
                .get(key.as_str())
                .map_err(CatalogError::storage)?
                .is_some()
            {
                return Err(CatalogError::NameTaken {
                    kind: "materialized view",
                    name: format!("{}.{}", view.schema, view.name),
                });
            }
            let mut t = tx.open_table(VIEWS).map_err(CatalogError::storage)?;
            t.insert(
                view_key(&view.schema, &view.name).as_str(),
                encode(view)?.as_str(),
            )
            .map_err(CatalogError::storage)?;
            Ok(())
        })
    }

    pub fn drop_view(&self, schema: &str, name: &str) -> Result<()> {
        self.write(|tx| {
            let mut t = tx.open_table(VIEWS).map_err(CatalogError::storage)?;
            if t.remove(view_key(schema, name).as_str())
                .map_err(CatalogError::storage)?
                .is_none()
            {
                return Err(CatalogError::UnknownView(format!("{schema}.{name}")));
            }
            Ok(())
        })
    }

    /// All materialized views.
    pub fn caches(&self) -> Result<Vec<CacheDef>> {
        self.read_all(CACHE_POLICIES, None)
    }

    pub fn cache(&self, schema: &str, name: &str) -> Result<Option<CacheDef>> {
        self.read_one(CACHE_POLICIES, &view_key(schema, name))
    }

    /// Declares a materialized view (never refreshed yet). Its name may not
    /// be a view's or another cache's.
    pub fn create_cache(&self, cache: &CacheDef) -> Result<()> {
        crate::model::validate_object_name(&cache.schema)?;
        crate::model::validate_object_name(&cache.name)?;
        self.write(|tx| {
            let key = view_key(&cache.schema, &cache.name);
            let views = tx.open_table(VIEWS).map_err(CatalogError::storage)?;
            if views
                .get(key.as_str())
                .map_err(CatalogError::storage)?
                .is_some()
            {
                return Err(CatalogError::NameTaken {
                    kind: "view",
                    name: cache.qualified(),
                });
            }
            let mut t = tx
                .open_table(CACHE_POLICIES)
                .map_err(CatalogError::storage)?;
            if t.get(key.as_str())
                .map_err(CatalogError::storage)?
                .is_some()
            {
                return Err(CatalogError::NameTaken {
                    kind: "materialized view",
                    name: cache.qualified(),
                });
            }
            t.insert(key.as_str(), encode(cache)?.as_str())
                .map_err(CatalogError::storage)?;
            Ok(())
        })
    }

    /// Changes one cache in one transaction: `f` sees the stored
    /// definition and returns what to keep (an error changes nothing).
    pub fn update_cache<R>(
        &self,
        schema: &str,
        name: &str,
        f: impl FnOnce(&mut CacheDef) -> Result<R>,
    ) -> Result<R> {
        self.write(|tx| {
            let key = view_key(schema, name);
            let mut t = tx
                .open_table(CACHE_POLICIES)
                .map_err(CatalogError::storage)?;
            let mut def: CacheDef = match t.get(key.as_str()).map_err(CatalogError::storage)? {
                Some(v) => decode(&key, v.value())?,
                None => return Err(CatalogError::UnknownCache(format!("{schema}.{name}"))),
            };
            let out = f(&mut def)?;
            t.insert(key.as_str(), encode(&def)?.as_str())
                .map_err(CatalogError::storage)?;
            Ok(out)
        })
    }

    /// Removes a cache's definition and returns it (its files are the
    /// caller's to remove).
    pub fn drop_cache(&self, schema: &str, name: &str) -> Result<CacheDef> {
        self.write(|tx| {
            let key = view_key(schema, name);
            let mut t = tx
                .open_table(CACHE_POLICIES)
                .map_err(CatalogError::storage)?;
            let removed = t.remove(key.as_str()).map_err(CatalogError::storage)?;
            match removed {
                Some(v) => decode(&key, v.value()),
                None => Err(CatalogError::UnknownCache(format!("{schema}.{name}"))),
            }
        })
    }

    /// All users, by name.
    pub fn users(&self) -> Result<Vec<UserDef>> {
        self.read_all(USERS, None)
    }

    pub fn user(&self, name: &str) -> Result<Option<UserDef>> {
        self.read_one(USERS, name)
    }

    /// Creates or replaces a user.
    pub fn put_user(&self, user: &UserDef) -> Result<()> {
        crate::model::validate_object_name(&user.name)?;
        self.write(|tx| {
            let mut t = tx.open_table(USERS).map_err(CatalogError::storage)?;
            t.insert(user.name.as_str(), encode(user)?.as_str())
                .map_err(CatalogError::storage)?;
            Ok(())
        })
    }

    pub fn drop_user(&self, name: &str) -> Result<()> {
        self.write(|tx| {
            let mut t = tx.open_table(USERS).map_err(CatalogError::storage)?;
            if t.remove(name).map_err(CatalogError::storage)?.is_none() {
                return Err(CatalogError::UnknownUser(name.to_string()));
            }
            Ok(())
        })
    }

    /// Records an (empty) schema of the `quipu` catalog.
    pub fn create_schema(&self, name: &str) -> Result<()> {
        crate::model::validate_object_name(name)?;
        self.write(|tx| {
            let mut t = tx.open_table(SCHEMAS).map_err(CatalogError::storage)?;
            t.insert(name, ()).map_err(CatalogError::storage)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::SourceKind;

    fn lake(name: &str) -> SourceDef {
        let mut o = BTreeMap::new();
        o.insert("url".to_string(), "file:///tmp/lake".to_string());
        SourceDef::new(name, SourceKind::Lake, o).unwrap()
    }

    fn table(source: &str, t: &str, origin: TableOrigin) -> TableDef {
        TableDef {
            name: TableName::new(source, "public", t),
            origin,
            location: Some(format!("{t}/")),
            format: None,
            file_extension: None,
            columns: vec![],
            partition_columns: vec![],
            declared_schema: false,
            partitions: None,
            primary_key: vec![],
        }
    }

    #[test]
    fn add_list_drop_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = CatalogStore::open(dir.path()).unwrap();
            s.add_source(
                &lake("lake"),
                &[table("lake", "a", TableOrigin::Discovered)],
            )
            .unwrap();
            let err = s.add_source(&lake("lake"), &[]).unwrap_err();
            assert!(matches!(err, CatalogError::DuplicateSource(_)));
            assert_eq!(s.tables(Some("lake")).unwrap().len(), 1);
        }
        let s = CatalogStore::open(dir.path()).unwrap();
        assert_eq!(s.sources().unwrap(), vec![lake("lake")]);
        assert_eq!(s.format_version().unwrap(), FORMAT_VERSION);
        s.drop_source("lake").unwrap();
        assert!(s.tables(None).unwrap().is_empty());
        assert!(matches!(
            s.drop_source("lake").unwrap_err(),
            CatalogError::UnknownSource(_)
        ));
    }

    #[test]
    fn refresh_keeps_declared_tables_and_prefix_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let s = CatalogStore::open(dir.path()).unwrap();
        s.add_source(&lake("l"), &[table("l", "old", TableOrigin::Discovered)])
            .unwrap();
        s.add_source(
            &lake("l2"),
            &[table("l2", "other", TableOrigin::Discovered)],
        )
        .unwrap();
        let mut declared = table("l", "mine", TableOrigin::Declared);
        declared.location = Some("custom/".into());
        s.add_table(&declared, false).unwrap();
        let g = s.generation().unwrap();
        s.replace_discovered_tables(
            "l",
            &[
                table("l", "new", TableOrigin::Discovered),
                table("l", "mine", TableOrigin::Discovered),
            ],
        )
        .unwrap();
        assert!(s.generation().unwrap() > g);
        let names: Vec<_> = s
            .tables(Some("l"))
            .unwrap()
            .into_iter()
            .map(|t| (t.name.table, t.location))
            .collect();
        assert_eq!(
            names,
            vec![
                ("mine".into(), Some("custom/".into())),
                ("new".into(), Some("new/".into()))
            ]
        );
        assert_eq!(s.tables(Some("l2")).unwrap().len(), 1);
    }

    #[test]
    fn users_are_kept_apart_from_the_snapshot_and_version_1_upgrades() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = CatalogStore::open(dir.path()).unwrap();
            s.add_source(&lake("lake"), &[]).unwrap();
            // Make the file look like version 1 (no `users` table).
            let tx = s.db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert("format_version", 1)
                .unwrap();
            tx.delete_table(USERS).unwrap();
            tx.commit().unwrap();
        }
        let s = CatalogStore::open(dir.path()).unwrap();
        assert_eq!(s.format_version().unwrap(), FORMAT_VERSION);
        assert!(
            s.generation().unwrap() > 0,
            "the upgrade kept the generation"
        );
        assert_eq!(s.sources().unwrap().len(), 1);
        let user = UserDef {
            name: "ana".into(),
            salt: "00ff".into(),
            iterations: 4096,
            stored_key: "abcd".into(),
            server_key: "ef01".into(),
            admin: false,
            sources: vec!["lake".into()],
        };
        s.put_user(&user).unwrap();
        assert_eq!(s.user("ana").unwrap(), Some(user));
        assert!(
            !serde_json::to_string(&s.snapshot().unwrap())
                .unwrap()
                .contains("abcd")
        );
        assert!(
            !serde_json::to_string(&s.snapshot().unwrap())
                .unwrap()
                .contains("ef01")
        );
        s.drop_user("ana").unwrap();
        assert!(matches!(
            s.drop_user("ana").unwrap_err(),
            CatalogError::UnknownUser(_)
        ));
    }

    #[test]
    fn refuses_newer_format() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = CatalogStore::open(dir.path()).unwrap();
            let tx = s.db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert("format_version", FORMAT_VERSION + 1)
                .unwrap();
            tx.commit().unwrap();
        }
        let err = CatalogStore::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_catalog_is_private_and_a_loose_file_is_tightened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/data");
        drop(CatalogStore::open(&dir).unwrap());
        assert_eq!(mode(&dir), 0o700, "data directory");
        assert_eq!(mode(&root.path().join("a")), 0o700, "created parent");
        let file = dir.join(FILE_NAME);
        assert_eq!(mode(&file), 0o600, "catalog file");

        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(CatalogStore::open(&dir).unwrap());
        assert_eq!(mode(&file), 0o600, "tightened on open");
    }

    #[test]
    fn an_empty_file_is_refused_unless_initialising() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        std::fs::write(&file, b"").unwrap();
        let err = CatalogStore::open(dir.path()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "catalog file {} is empty (0 bytes): it is not a Quipu catalog; move it away or restore a backup",
                file.display()
            )
        );
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 0, "left as it was");
        let s = CatalogStore::open_init(dir.path()).unwrap();
        assert_eq!(s.format_version().unwrap(), FORMAT_VERSION);
        drop(s);
        CatalogStore::open(dir.path()).unwrap();
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn version_2_users_lose_their_salted_password_on_open() {
        use crate::secret::{hex, scram_keys};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        // Two users as format 2 wrote them: the SaltedPassword in hex.
        let salted: Vec<[u8; 32]> = vec![[0x5a; 32], [0xc3; 32]];
        {
            let s = CatalogStore::open(dir.path()).unwrap();
            // Enough tables that the users' pages are not at the file's end.
            let many: Vec<TableDef> = (0..300)
                .map(|i| table("lake", &format!("t{i}"), TableOrigin::Discovered))
                .collect();
            s.add_source(&lake("lake"), &many[..150]).unwrap();
            let tx = s.db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert("format_version", 2)
                .unwrap();
            tx.delete_table(AUTH).unwrap();
            {
                let mut users = tx.open_table(USERS).unwrap();
                for (name, sp) in ["ana", "boss"].iter().zip(&salted) {
                    let json = format!(
                        r#"{{"name":"{name}","salt":"00112233","salted_password":"{}","iterations":4096,"admin":false,"sources":["lake"]}}"#,
                        hex(sp)
                    );
                    users.insert(*name, json.as_str()).unwrap();
                }
            }
            tx.commit().unwrap();
            s.add_source(&lake("lake2"), &many[150..]).unwrap();
        }
        let before = std::fs::read(&file).unwrap();
        assert!(contains(&before, hex(&salted[0]).as_bytes()), "test setup");

        let s = CatalogStore::open(dir.path()).unwrap();
        assert_eq!(s.format_version().unwrap(), FORMAT_VERSION);
        for (name, sp) in ["ana", "boss"].iter().zip(&salted) {
            let u = s.user(name).unwrap().unwrap();
            let (stored, server) = scram_keys(sp);
            assert_eq!(u.stored_key, hex(&stored), "{name}");
            assert_eq!(u.server_key, hex(&server), "{name}");
            assert_eq!((u.salt.as_str(), u.iterations), ("00112233", 4096));
            assert_eq!(u.sources, vec!["lake".to_string()]);
        }
        // The raw records...
        let tx = s.db.begin_read().unwrap();
        let users = tx.open_table(USERS).unwrap();
        for entry in users.iter().unwrap() {
            let (_, v) = entry.unwrap();
            assert!(!v.value().contains("salted_password"), "{}", v.value());
        }
        drop(users);
        drop(tx);
        assert_eq!(s.mock_salt_secret().unwrap().len(), 32);
        drop(s);
        // ...and every byte of the file: no SaltedPassword, not even in
        // freed pages.
        let after = std::fs::read(&file).unwrap();
        for sp in &salted {
            assert!(!contains(&after, hex(sp).as_bytes()), "hex left in file");
            assert!(!contains(&after, sp), "raw bytes left in file");
        }
        assert!(!contains(&after, b"salted_password"));
    }

    #[test]
    fn the_mock_salt_secret_is_made_once_per_catalog() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let first = CatalogStore::open(a.path())
            .unwrap()
            .mock_salt_secret()
            .unwrap();
        let again = CatalogStore::open(a.path())
            .unwrap()
            .mock_salt_secret()
            .unwrap();
        let other = CatalogStore::open(b.path())
            .unwrap()
            .mock_salt_secret()
            .unwrap();
        assert_eq!(first, again);
        assert_ne!(first, other);
        assert!(
            !serde_json::to_string(&CatalogStore::open(a.path()).unwrap().snapshot().unwrap())
                .unwrap()
                .contains(&crate::secret::hex(&first))
        );
    }
}
