//! Batch writes to the lake: `CREATE TABLE lake.s.t [WITH (partition_by =
//! 'c')] AS SELECT ...` and `INSERT INTO lake.s.t SELECT ...` write Parquet
//! into a lake source, one statement at a time, all or nothing.
//!
//! How a statement's files become visible in one step (docs/sql.md, "Writing
//! to the lake"):
//!
//! 1. The rows are written by DataFusion's own Parquet writer (hive-style
//!    `col=value/` folders when the table is partitioned) into a staging
//!    folder beside the table: `<parent>/.quipu-write/<table>/<id>/`. No
//!    query reads it: discovery skips names starting with `.`, and
//!    DataFusion's listing of a table ignores files two folders deep that
//!    are not `col=value` folders (`listing_table_ignore_subdirectory`).
//! 2. On `file://` the staging folder becomes the table's folder by one
//!    `rename(2)`: for `CREATE TABLE` a plain rename (the folder did not
//!    exist); for `INSERT` the table's current files are hard-linked into the
//!    staging folder first and the two folders are swapped with
//!    `renameat2(RENAME_EXCHANGE)`, then the old folder is removed. A query
//!    sees the old folder or the new one, never half of the new files, and a
//!    statement that fails or is killed before the swap leaves only its
//!    staging folder, which the next write to the table removes.
//! 3. Object stores have no rename: on `s3://` (and `memory://`) each staged
//!    object is copied to its place and the staging objects deleted. A
//!    failure before the first copy leaves the table as it was; a process
//!    killed during the copies leaves the files copied so far visible.
//!
//! One statement writes a given table at a time: on `file://` a lock file
//! (`flock`) in the staging folder, held across processes; elsewhere a lock
//! inside this process only.

use std::collections::HashSet;
use std::sync::Mutex;

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{LogicalPlan, TableSource};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use quipu_catalog::types::columns_of;
use quipu_catalog::{ColumnDef, FileFormat, SourceKind, TableDef, TableName, TableOrigin};

use crate::error::{ConnectorError, Result};
use crate::lake::object_stores::{LakeRoot, lake_root};
use crate::session::QuipuSession;

/// The name of the folder, beside a table's folder, where statements stage
/// their files.
pub const STAGING: &str = ".quipu-write";

/// What a write statement does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LakeWrite {
    /// `CREATE TABLE ... AS`: a new table, partitioned by these columns.
    Create {
        partition_by: Vec<String>,
        if_not_exists: bool,
    },
    /// `INSERT INTO ... SELECT`: rows added to an existing table.
    Insert,
}

/// The target of a `CREATE TABLE ... AS` into a source, as planned: the
/// `TableSource` of a DataFusion `DmlStatement` (`WriteOp::Ctas`), which
/// carries what the `WITH` options said.
#[derive(Debug)]
pub struct CtasTarget {
    pub schema: SchemaRef,
    pub partition_by: Vec<String>,
    pub if_not_exists: bool,
}

impl TableSource for CtasTarget {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

fn table_err(table: &TableName, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::Table {
        table: table.to_string(),
        reason: reason.into(),
    }
}

/// The refusal of a write into a source that is not a lake.
fn not_lake(table: &TableName, kind: SourceKind) -> ConnectorError {
    ConnectorError::DataFusion(DataFusionError::NotImplemented(format!(
        "cannot write into {table}: `{}` is a {kind} source, and Quipu writes only to the lake \
         (CREATE TABLE ... AS or INSERT INTO ... SELECT into a table of a lake source)",
        table.source
    )))
}

/// Partition column types DataFusion's writer can put in folder names
/// (and that read back as the same values).
fn partition_type_ok(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Boolean
            | DataType::Date32
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

/// The folder a new table `lake.<schema>.<table>` gets, relative to the
/// lake's root, as discovery would name it: `public` tables at the root,
/// others in a folder per schema.
pub fn default_location(table: &TableName) -> String {
    if table.schema == quipu_catalog::DEFAULT_SCHEMA {
        format!("{}/", table.table)
    } else {
        format!("{}/{}/", table.schema, table.table)
    }
}

/// Tables being written by this process (object stores have no lock file).
fn writing() -> &'static Mutex<HashSet<String>> {
    static WRITING: std::sync::OnceLock<Mutex<HashSet<String>>> = std::sync::OnceLock::new();
    WRITING.get_or_init(Default::default)
}

/// Held while a statement writes a table.
enum TableLock {
    /// `flock` on a file in the staging folder (released when closed).
    File(#[allow(dead_code)] std::fs::File),
    Process(String),
}

impl Drop for TableLock {
    fn drop(&mut self) {
        if let TableLock::Process(key) = self {
            writing().lock().unwrap().remove(key);
        }
    }
}

/// A process-unique name for one statement's staging folder.
fn write_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}-{n}", std::process::id())
}

/// Where one statement writes: the table's folder and its staging folder,
/// as URLs and (on `file://`) as local paths.
struct Places {
    table_url: url::Url,
    /// `<parent>/.quipu-write/<table>/`: leftovers of killed statements and
    /// the lock file live here.
    staging_root: url::Url,
    staging_url: url::Url,
    local: bool,
}

impl Places {
    fn new(root: &LakeRoot, table: &TableName, location: &str) -> Result<Places> {
        let table_url = root.join(location).map_err(|r| table_err(table, r))?;
        let folder = table_url
            .path_segments()
            .and_then(|mut s| s.rfind(|s| !s.is_empty()).map(str::to_string))
            .ok_or_else(|| table_err(table, "a table at the lake's root cannot be written"))?;
        let staging_root = table_url
            .join(&format!("../{STAGING}/{folder}/"))
            .map_err(|e| table_err(table, e.to_string()))?;
        let staging_url = staging_root
            .join(&format!("{}/", write_id()))
            .map_err(|e| table_err(table, e.to_string()))?;
        Ok(Places {
            local: table_url.scheme() == "file",
            table_url,
            staging_root,
            staging_url,
        })
    }

    fn path(url: &url::Url) -> std::path::PathBuf {
        url.to_file_path().unwrap_or_default()
    }

    fn object_path(url: &url::Url) -> Result<ObjectPath> {
        ObjectPath::from_url_path(url.path()).map_err(|e| ConnectorError::Source {
            source_name: url.to_string(),
            reason: e.to_string(),
        })
    }
}

fn io_err(table: &TableName, what: &str, e: std::io::Error) -> ConnectorError {
    table_err(table, format!("{what}: {e}"))
}

impl QuipuSession {
    /// Refuses a write into `table` before anything runs: the source must
    /// be a lake, and an `INSERT` needs a Parquet table in a folder.
    pub fn check_lake_write(&self, table: &TableName, op: &LakeWrite) -> Result<()> {
        let source = self
            .store()
            .source(&table.source)?
            .ok_or_else(|| quipu_catalog::CatalogError::UnknownSource(table.source.clone()))?;
        if source.kind != SourceKind::Lake {
            return Err(not_lake(table, source.kind));
        }
        if *op == LakeWrite::Insert {
            let def = self
                .store()
                .table(table)?
                .ok_or_else(|| table_err(table, "no such table"))?;
            insertable(&def)?;
        }
        Ok(())
    }

    /// Runs a write statement: `input` is the planned `SELECT` (for an
    /// `INSERT`, already in the table's column order and types). Returns
    /// the number of rows written. See the module docs for how the files
    /// appear at once.
    pub async fn write_lake(
        &self,
        state: &SessionState,
        table: &TableName,
        op: LakeWrite,
        input: LogicalPlan,
    ) -> Result<u64> {
        self.check_lake_write(table, &op)?;
        let source = self
            .store()
            .source(&table.source)?
            .ok_or_else(|| quipu_catalog::CatalogError::UnknownSource(table.source.clone()))?;
        let env = &self.catalogs().shared.env;
        let root = lake_root(&source, &env.runtime, &env.memory)?;
        let existing = self.store().table(table)?;
        let (location, partition_by, new_def) = match &op {
            LakeWrite::Create {
                partition_by,
                if_not_exists,
            } => {
                if existing.is_some() {
                    if *if_not_exists {
                        return Ok(0);
                    }
                    return Err(
                        quipu_catalog::CatalogError::DuplicateTable(table.to_string()).into(),
                    );
                }
                let location = default_location(table);
                let def = new_table(table, &location, input.schema().as_arrow(), partition_by)?;
                (location, partition_by.clone(), Some(def))
            }
            LakeWrite::Insert => {
                let def = existing.ok_or_else(|| table_err(table, "no such table"))?;
                let partition_by = def
                    .partition_columns
                    .iter()
                    .map(|c| c.name.clone())
                    .collect();
                (def.location.clone().unwrap_or_default(), partition_by, None)
            }
        };
        let places = Places::new(&root, table, &location)?;
        let _lock = lock(&root, table, &places).await?;
        if new_def.is_some() && holds_files(&root, &places).await? {
            return Err(table_err(
                table,
                format!(
                    "{} already holds files; register them with `quipu catalog add-table`, or choose another name",
                    places.table_url
                ),
            ));
        }
        let written = stage(state, table, &root, &places, input, partition_by.clone()).await;
        let rows = match written {
            Ok(rows) => rows,
            Err(e) => {
                discard(&root, &places).await;
                return Err(e);
            }
        };
        let committed = if places.local {
            commit_local(table, &places, new_def.is_some())
        } else {
            commit_objects(table, &root, &places).await
        };
        if let Err(e) = committed {
            discard(&root, &places).await;
            return Err(e);
        }
        if let Some(def) = new_def {
            if let Err(e) = self.store().add_table(&def, false) {
                // Not registered: the folder goes too, or a later CTAS of
                // the same name would find it in the way.
                if places.local {
                    let _ = std::fs::remove_dir_all(Places::path(&places.table_url));
                }
                return Err(e.into());
            }
            self.catalogs().invalidate();
        }
        tracing::info!(table = %table, rows, "lake write committed");
        Ok(rows)
    }
}

/// An existing table Quipu can append Parquet files to.
fn insertable(def: &TableDef) -> Result<()> {
    let table = &def.name;
    if def.format != Some(FileFormat::Parquet) {
        let format = def.format.map(|f| f.to_string()).unwrap_or_default();
        return Err(table_err(
            table,
            format!("it is a {format} table; Quipu writes only Parquet tables"),
        ));
    }
    let location = def.location.as_deref().unwrap_or("");
    if location.is_empty() || !location.ends_with('/') {
        return Err(table_err(
            table,
            "it is a single file or the lake's root; Quipu writes tables that are folders",
        ));
    }
    if def.file_extension.as_deref().unwrap_or("") != ".parquet" {
        return Err(table_err(
            table,
            "it reads files not named *.parquet, so it would not read what Quipu writes",
        ));
    }
    Ok(())
}

/// The catalog entry of a table made by `CREATE TABLE ... AS`: the query's
/// columns, partition columns last (as a listing table reads them).
fn new_table(
    table: &TableName,
    location: &str,
    schema: &Schema,
    partition_by: &[String],
) -> Result<TableDef> {
    let mut seen = HashSet::new();
    for name in schema.fields().iter().map(|f| f.name()) {
        if !seen.insert(name.as_str()) {
            return Err(table_err(
                table,
                format!("the query gives two columns named `{name}`; name them apart with AS"),
            ));
        }
    }
    for p in partition_by {
        let Ok(field) = schema.field_with_name(p) else {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(table_err(
                table,
                format!(
                    "partition_by names `{p}`, which the query does not return (it returns {})",
                    names.join(", ")
                ),
            ));
        };
        if !partition_type_ok(field.data_type()) {
            return Err(table_err(
                table,
                format!(
                    "partition column `{p}` is {}; partition by text, an integer, a boolean or a date",
                    field.data_type()
                ),
            ));
        }
    }
    if partition_by.len() >= schema.fields().len() {
        return Err(table_err(
            table,
            "every column is a partition column; the files need at least one other column",
        ));
    }
    let files = Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| !partition_by.contains(f.name()))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let partition_columns = partition_by
        .iter()
        .map(|p| {
            let field = schema.field_with_name(p).expect("checked above");
            ColumnDef {
                name: p.clone(),
                data_type: field.data_type().to_string(),
                nullable: true,
                source_type: None,
            }
        })
        .collect();
    Ok(TableDef {
        name: table.clone(),
        origin: TableOrigin::Declared,
        location: Some(location.to_string()),
        format: Some(FileFormat::Parquet),
        file_extension: Some(".parquet".to_string()),
        columns: columns_of(&files),
        partition_columns,
        declared_schema: true,
        partitions: None,
        primary_key: vec![],
    })
}

/// Takes the table's write lock and removes what killed statements left in
/// its staging folder.
async fn lock(root: &LakeRoot, table: &TableName, places: &Places) -> Result<TableLock> {
    let busy = || {
        table_err(
            table,
            "another statement is writing this table; try again when it ends",
        )
    };
    if places.local {
        let dir = Places::path(&places.staging_root);
        std::fs::create_dir_all(&dir)
            .map_err(|e| io_err(table, "cannot create the staging folder", e))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))
            .map_err(|e| io_err(table, "cannot open the write lock", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(busy()),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io_err(table, "cannot take the write lock", e));
            }
        }
        for entry in std::fs::read_dir(&dir)
            .map_err(|e| io_err(table, "cannot list the staging folder", e))?
        {
            let entry = entry.map_err(|e| io_err(table, "cannot list the staging folder", e))?;
            if entry.file_name() != ".lock" {
                tracing::info!(table = %table, leftover = %entry.path().display(), "removing what an earlier write left");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(TableLock::File(file))
    } else {
        let key = places.table_url.to_string();
        if !writing().lock().unwrap().insert(key.clone()) {
            return Err(busy());
        }
        let lock = TableLock::Process(key);
        let prefix = Places::object_path(&places.staging_root)?;
        let leftovers: Vec<_> = root
            .store
            .list(Some(&prefix))
            .map_ok(|o| o.location)
            .try_collect()
            .await
            .map_err(|e| table_err(table, format!("cannot list {}: {e}", places.staging_root)))?;
        for path in leftovers {
            let _ = root.store.delete(&path).await;
        }
        Ok(lock)
    }
}

/// Whether a new table's folder already holds anything.
async fn holds_files(root: &LakeRoot, places: &Places) -> Result<bool> {
    if places.local {
        let dir = Places::path(&places.table_url);
        return Ok(std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()));
    }
    let prefix = Places::object_path(&places.table_url)?;
    let first = root.store.list(Some(&prefix)).try_next().await;
    Ok(matches!(first, Ok(Some(_))))
}

/// Writes the rows into the staging folder with DataFusion's Parquet
/// writer, and checks the partition folders it made.
async fn stage(
    state: &SessionState,
    table: &TableName,
    root: &LakeRoot,
    places: &Places,
    input: LogicalPlan,
    partition_by: Vec<String>,
) -> Result<u64> {
    if places.local {
        std::fs::create_dir_all(Places::path(&places.staging_url))
            .map_err(|e| io_err(table, "cannot create the staging folder", e))?;
    }
    let options = DataFrameWriteOptions::new()
        .with_partition_by(partition_by.clone())
        .with_single_file_output(false);
    let batches = DataFrame::new(state.clone(), input)
        .write_parquet(places.staging_url.as_str(), options, None)
        .await?;
    let rows = batches
        .iter()
        .filter_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::UInt64Array>()
                .map(|a| a.iter().flatten().sum::<u64>())
        })
        .sum();
    if !partition_by.is_empty() {
        // DataFusion's writer puts a NULL partition value in a folder
        // `col=` that reads back as '' (or fails for a number): refused.
        let prefix = Places::object_path(&places.staging_url)?;
        let files = staged_files(table, root, &prefix).await?;
        for file in &files {
            if let Some(part) = file.parts().find(|p| {
                let p = p.as_ref();
                partition_by
                    .iter()
                    .any(|c| p.strip_prefix(c.as_str()).is_some_and(|rest| rest == "="))
            }) {
                return Err(table_err(
                    table,
                    format!(
                        "partition column `{}` is NULL or empty in some rows; a partition value must be set",
                        part.as_ref().trim_end_matches('=')
                    ),
                ));
            }
        }
    }
    Ok(rows)
}

/// Removes a statement's staging folder (its files never became visible).
async fn discard(root: &LakeRoot, places: &Places) {
    if places.local {
        let _ = std::fs::remove_dir_all(Places::path(&places.staging_url));
        return;
    }
    if let Ok(prefix) = Places::object_path(&places.staging_url) {
        let staged: Vec<ObjectPath> = root
            .store
            .list(Some(&prefix))
            .map_ok(|o| o.location)
            .try_collect()
            .await
            .unwrap_or_default();
        for path in staged {
            let _ = root.store.delete(&path).await;
        }
    }
}

/// Hard-links every file under `from` into `to`, keeping relative paths.
fn link_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            link_tree(&entry.path(), &target)?;
        } else {
            std::fs::hard_link(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Makes the staged files the table's on a local file system, in one
/// rename (see the module docs).
fn commit_local(table: &TableName, places: &Places, create: bool) -> Result<()> {
    let staged = Places::path(&places.staging_url);
    let folder = Places::path(&places.table_url);
    let exists = folder.is_dir();
    if create || !exists {
        if exists {
            // Empty (checked under the lock): rename replaces it.
            std::fs::remove_dir(&folder)
                .map_err(|e| io_err(table, "cannot replace the empty table folder", e))?;
        }
        if let Some(parent) = folder.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_err(table, "cannot create the table folder", e))?;
        }
        return std::fs::rename(&staged, &folder)
            .map_err(|e| io_err(table, "cannot move the staged files into place", e));
    }
    link_tree(&folder, &staged).map_err(|e| {
        io_err(
            table,
            "cannot link the table's files into the new version",
            e,
        )
    })?;
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        &staged,
        rustix::fs::CWD,
        &folder,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|e| {
        io_err(
            table,
            "cannot swap in the new version of the table",
            e.into(),
        )
    })?;
    // `staged` now holds the previous version: its files are also linked
    // from the table's folder, so removing it frees nothing a query reads.
    if let Err(e) = std::fs::remove_dir_all(&staged) {
        tracing::warn!(table = %table, error = %e, "cannot remove the previous version's folder; the next write removes it");
    }
    Ok(())
}

/// The objects a statement staged under `prefix`.
async fn staged_files(
    table: &TableName,
    root: &LakeRoot,
    prefix: &ObjectPath,
) -> Result<Vec<ObjectPath>> {
    root.store
        .list(Some(prefix))
        .map_ok(|o| o.location)
        .try_collect()
        .await
        .map_err(|e| table_err(table, format!("cannot list the staged files: {e}")))
}

/// Copies the staged objects to their places and deletes the staging
/// objects (object stores have no rename; not atomic, see the module docs).
async fn commit_objects(table: &TableName, root: &LakeRoot, places: &Places) -> Result<()> {
    let prefix = Places::object_path(&places.staging_url)?;
    let target = Places::object_path(&places.table_url)?;
    let staged = staged_files(table, root, &prefix).await?;
    for from in &staged {
        let relative: Vec<_> = from.prefix_match(&prefix).into_iter().flatten().collect();
        let to = relative
            .into_iter()
            .fold(target.clone(), |p, part| p.join(part));
        root.store
            .copy(from, &to)
            .await
            .map_err(|e| table_err(table, format!("cannot copy {from} to {to}: {e}")))?;
    }
    for from in &staged {
        let _ = root.store.delete(from).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;

    #[test]
    fn new_tables_put_partition_columns_last_and_refuse_bad_ones() {
        let t = TableName::new("lake", "archive", "pos");
        let schema = Schema::new(vec![
            Field::new("month", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(12, 2), true),
            Field::new("at", DataType::Float64, true),
        ]);
        let def = new_table(&t, "archive/pos/", &schema, &["month".into()]).unwrap();
        let cols: Vec<&str> = def.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(cols, ["amount", "at"]);
        assert_eq!(def.partition_columns[0].name, "month");
        assert_eq!(default_location(&t), "archive/pos/");
        assert_eq!(
            default_location(&TableName::new("lake", "public", "x")),
            "x/"
        );
        let err = new_table(&t, "a/", &schema, &["nope".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`nope`") && err.contains("month, amount, at"),
            "{err}"
        );
        let err = new_table(&t, "a/", &schema, &["at".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("partition column `at` is Float64"), "{err}");
        let twice = Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("a", DataType::Utf8, true),
        ]);
        let err = new_table(&t, "a/", &twice, &[]).unwrap_err().to_string();
        assert!(err.contains("two columns named `a`"), "{err}");
    }
}
