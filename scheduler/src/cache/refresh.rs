//! Refreshing a materialized view: run its query from the sources, write
//! the answer as a new generation of Parquet files, then point the
//! catalog at it in one transaction.
//!
//! What a reader sees is always one whole generation: the catalog names
//! the serving generation's directory, and a new one is written beside it
//! under a name no catalog entry holds until the flip. A refresh that
//! fails or is killed leaves the catalog as it was (the previous
//! generation keeps serving); its half-written directory is removed by
//! the next refresh. The generation that the flip retires is kept until
//! [`RETAIN`] after the flip (queries planned before it may still be
//! reading it), then removed by a later refresh.
//!
//! One refresh at a time per cache, across processes: a refresh claims
//! the cache in the catalog (process id, host, start) and a claim whose
//! process is gone (killed) is taken over.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::{SortOptions, sort_to_indices};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, lit};
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use quipu_catalog::{CacheDef, CatalogError, ColumnDef, ReadWith, Refreshing, Retired, SourceFile};

use super::{lake_files, now_ms};
use crate::engine::Engine;
use crate::error::{Result, SchedulerError};

/// How long a generation a refresh replaced stays readable: a query
/// planned before the flip reads it (its files are listed at planning and
/// opened while it runs). A query running longer than this over a cache
/// refreshed meanwhile fails with "file not found" rather than mixing
/// generations.
pub const RETAIN: Duration = Duration::from_secs(15 * 60);

/// What one refresh did.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub generation: u64,
    pub rows: u64,
    pub bytes: u64,
    pub took: Duration,
    /// `full`, `full (<why not incremental>)` or `incremental (<n> rows
    /// added)`.
    pub kind: String,
}

/// At most this many files in a generation: an incremental refresh adds
/// one, and past this many a refresh reads everything again into one.
pub const MAX_FILES: usize = 32;

/// Caches this process is refreshing now.
fn in_process() -> &'static Mutex<HashSet<String>> {
    static SET: std::sync::OnceLock<Mutex<HashSet<String>>> = std::sync::OnceLock::new();
    SET.get_or_init(|| Mutex::new(HashSet::new()))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Whether the process holding a claim is still refreshing.
fn alive(claim: &Refreshing, key: &str) -> bool {
    if claim.host != hostname() {
        // Another machine's process: trusted for a day.
        return now_ms().saturating_sub(claim.since_ms) < 86_400_000;
    }
    if claim.pid == std::process::id() {
        return in_process().lock().unwrap().contains(key);
    }
    std::path::Path::new(&format!("/proc/{}", claim.pid)).exists()
}

fn refresh_error(cache: &str, e: impl std::fmt::Display) -> SchedulerError {
    SchedulerError::Query(DataFusionError::Execution(format!(
        "refresh of materialized view {cache} failed: {e}"
    )))
}

/// The base URL a cache's generations are written under (with a trailing
/// `/`): its `storage`, or `cache/` in the catalog's data directory.
pub fn base_url(engine: &Engine, def: &CacheDef) -> String {
    let base = match &def.storage {
        Some(s) => s.clone(),
        None => format!(
            "file://{}",
            engine.session().store().dir().join("cache").display()
        ),
    };
    format!(
        "{}/{}.{}/",
        base.trim_end_matches('/'),
        dir_name(&def.schema),
        dir_name(&def.name)
    )
}

/// A name as one safe path segment: letters, digits, `_` and `-` as they
/// are, every other byte as `%XX` (so a quoted name such as `".."` or
/// `"a/b"` cannot reach outside the cache's directory).
fn dir_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out
}

/// The object store and path prefix of a directory URL.
fn store_of(engine: &Engine, url: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    let parsed = ListingTableUrl::parse(url)?;
    let store = engine
        .session()
        .runtime()
        .object_store(parsed.object_store())
        .map_err(|_| {
            SchedulerError::Query(DataFusionError::Plan(format!(
                "no object store for {url}: add the bucket as a lake source first"
            )))
        })?;
    Ok((store, parsed.prefix().clone()))
}

/// Checks that `storage` (a `file://` or `s3://` URL) can hold a cache's
/// files: writes and removes a probe object there.
pub async fn check_storage(engine: &Engine, def: &CacheDef) -> Result<()> {
    let bad = |reason: String| {
        SchedulerError::Query(DataFusionError::Plan(format!(
            "materialized view {}: storage {}: {reason}",
            def.qualified(),
            def.storage.as_deref().unwrap_or("(default)")
        )))
    };
    if let Some(s) = &def.storage
        && !(s.starts_with("file:///") || s.starts_with("s3://"))
    {
        return Err(bad(
            "expected a file:///absolute/path or s3://bucket/prefix URL".into(),
        ));
    }
    let url = base_url(engine, def);
    if let Some(path) = url.strip_prefix("file://") {
        std::fs::create_dir_all(path).map_err(|e| bad(format!("cannot create {path}: {e}")))?;
    }
    let (store, prefix) = store_of(engine, &url).map_err(|e| bad(e.to_string()))?;
    let probe = prefix.clone().join(".quipu-probe");
    store
        .put(&probe, bytes::Bytes::from_static(b"probe").into())
        .await
        .map_err(|e| bad(format!("not writable: {e}")))?;
    let _ = store.delete(&probe).await;
    Ok(())
}

/// Removes every object under `dir` (a directory URL), best effort.
async fn remove_dir(engine: &Engine, dir: &str) {
    let Ok((store, prefix)) = store_of(engine, dir) else {
        return;
    };
    let listed: Vec<_> = store.list(Some(&prefix)).collect().await;
    for meta in listed.into_iter().flatten() {
        let _ = store.delete(&meta.location).await;
    }
    if let Some(path) = dir.strip_prefix("file://") {
        let _ = std::fs::remove_dir_all(path);
    }
}

/// Removes every file of a (dropped) cache.
pub async fn remove_all(engine: &Engine, def: &CacheDef) {
    remove_dir(engine, &base_url(engine, def)).await;
}

/// Removes what is under the cache's base directory that no catalog
/// entry names: generations of refreshes that were killed or failed.
async fn remove_orphans(engine: &Engine, def: &CacheDef) {
    let base = base_url(engine, def);
    let Ok((store, prefix)) = store_of(engine, &base) else {
        return;
    };
    let mut kept: Vec<String> = def
        .state
        .retired
        .iter()
        .map(|r| r.location.clone())
        .collect();
    kept.extend(def.state.location.clone());
    let kept: Vec<ObjectPath> = kept
        .iter()
        .filter_map(|u| store_of(engine, u).ok().map(|(_, p)| p))
        .collect();
    let listed: Vec<_> = store.list(Some(&prefix)).collect().await;
    for meta in listed.into_iter().flatten() {
        if !kept.iter().any(|k| meta.location.prefix_matches(k)) {
            let _ = store.delete(&meta.location).await;
        }
    }
    // On a file system the emptied directories stay: remove them too.
    if let Some(path) = base.strip_prefix("file://")
        && let Ok(entries) = std::fs::read_dir(path)
    {
        let names: Vec<String> = def
            .state
            .retired
            .iter()
            .map(|r| r.location.clone())
            .chain(def.state.location.clone())
            .collect();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !names
                .iter()
                .any(|l| l.trim_end_matches('/').ends_with(&format!("/{name}")))
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Claims the cache for this process, or says who is refreshing it.
fn claim(engine: &Engine, schema: &str, name: &str) -> Result<CacheDef> {
    let key = format!("{schema}.{name}");
    let me = Refreshing {
        pid: std::process::id(),
        host: hostname(),
        since_ms: now_ms(),
    };
    let claimed = engine.session().store().update_cache(schema, name, |def| {
        if let Some(other) = &def.state.refreshing
            && alive(other, &key)
        {
            return Ok(Err(other.clone()));
        }
        def.state.refreshing = Some(me.clone());
        Ok(Ok(def.clone()))
    })?;
    match claimed {
        Ok(def) => {
            in_process().lock().unwrap().insert(key);
            Ok(def)
        }
        Err(other) => Err(SchedulerError::Query(DataFusionError::Execution(format!(
            "materialized view {key} is being refreshed (by process {} on {}, for {}); try again when it is done",
            other.pid,
            other.host,
            super::human(Duration::from_millis(
                now_ms().saturating_sub(other.since_ms)
            ))
        )))),
    }
}

/// Whether a refresh of the cache is under way (in any live process).
pub fn busy(def: &CacheDef) -> bool {
    def.state
        .refreshing
        .as_ref()
        .is_some_and(|r| alive(r, &def.qualified()))
}

/// Refreshes one cache: reads its query from the sources (never from a
/// cache), writes a new generation and flips the catalog to it.
///
/// Boxed: a refresh runs a query, whose planning may refresh a stale cache
/// (`quipu.stale_cache = 'wait'`).
pub fn refresh<'a>(
    engine: &'a Arc<Engine>,
    schema: &'a str,
    name: &'a str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Refreshed>> + Send + 'a>> {
    Box::pin(refresh_now(engine, schema, name))
}

async fn refresh_now(engine: &Arc<Engine>, schema: &str, name: &str) -> Result<Refreshed> {
    let key = format!("{schema}.{name}");
    let def = claim(engine, schema, name)?;
    let started = Instant::now();
    let read_at = now_ms();
    remove_orphans(engine, &def).await;
    let location = format!(
        "{}g{:06}-{:08x}/",
        base_url(engine, &def),
        def.state.generation + 1,
        rand_suffix()
    );
    let written = write_generation(engine, &def, &location).await;
    let store = engine.session().store();
    let outcome = match written {
        Ok(Written {
            columns,
            rows,
            bytes,
            read_with,
            watermark,
            kind,
            source_files,
        }) => {
            let took = started.elapsed();
            let flipped = store.update_cache(schema, name, |d| {
                let now = now_ms();
                let retired = d.state.location.take().map(|location| Retired {
                    location,
                    at_ms: now,
                });
                let mut state = std::mem::take(&mut d.state);
                state.retired.extend(retired);
                // Generations retired long enough ago go; the others stay
                // for the queries that may still read them.
                let (gone, kept): (Vec<Retired>, Vec<Retired>) = state
                    .retired
                    .drain(..)
                    .partition(|r| now.saturating_sub(r.at_ms) >= RETAIN.as_millis() as u64);
                state.retired = kept;
                let gone: Vec<String> = gone.into_iter().map(|r| r.location).collect();
                state.generation += 1;
                state.location = Some(location.clone());
                state.columns = columns;
                state.rows = rows;
                state.bytes = bytes;
                state.read_at_ms = Some(read_at);
                state.read_with = Some(read_with);
                state.watermark = watermark.clone();
                state.refresh_kind = Some(kind.clone());
                state.source_files = source_files;
                state.refresh_ms = Some(took.as_millis() as u64);
                state.last_error = None;
                state.last_error_at_ms = None;
                state.refreshing = None;
                let generation = state.generation;
                d.state = state;
                Ok((generation, gone))
            });
            match flipped {
                Ok((generation, gone)) => {
                    for dir in gone {
                        remove_dir(engine, &dir).await;
                    }
                    Ok(Refreshed {
                        generation,
                        rows,
                        bytes,
                        took,
                        kind,
                    })
                }
                Err(e) => Err(SchedulerError::from(e)),
            }
        }
        Err(e) => Err(e),
    };
    in_process().lock().unwrap().remove(&key);
    let m = quipu_connectors::metrics::metrics();
    match &outcome {
        Ok(done) => {
            m.cache_refreshes.with_label_values(&[&key, "ok"]).inc();
            m.cache_bytes
                .with_label_values(&[&key])
                .set(done.bytes as i64);
            m.cache_refresh_seconds
                .with_label_values(&[&key])
                .observe(done.took.as_secs_f64());
            tracing::info!(cache = %key, generation = done.generation, rows = done.rows, bytes = done.bytes, took_ms = done.took.as_millis() as u64, kind = %done.kind, "materialized view refreshed");
        }
        Err(e) => {
            m.cache_refreshes.with_label_values(&[&key, "error"]).inc();
            tracing::warn!(cache = %key, error = %e, "materialized view refresh failed");
            remove_dir(engine, &location).await;
            let message = e.to_string();
            let _ = store.update_cache(schema, name, |d| {
                d.state.refreshing = None;
                d.state.last_error = Some(message);
                d.state.last_error_at_ms = Some(now_ms());
                Ok(())
            });
        }
    }
    outcome.map_err(|e| match e {
        SchedulerError::Catalog(CatalogError::UnknownCache(c)) => {
            refresh_error(&key, format!("{c} was dropped while it refreshed"))
        }
        SchedulerError::Query(DataFusionError::Execution(m)) if m.starts_with("refresh of") => {
            SchedulerError::Query(DataFusionError::Execution(m))
        }
        other => refresh_error(&key, other),
    })
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(now_ms() as u128);
    h.finish() as u32
}

/// What a refresh wrote: the generation's columns, rows and bytes, the
/// settings it read with, its largest `append_column` value and how it
/// was made.
struct Written {
    columns: Vec<ColumnDef>,
    rows: u64,
    bytes: u64,
    read_with: ReadWith,
    watermark: Option<String>,
    kind: String,
    /// A lake table's files the generation read (see [`lake_files`]).
    source_files: Vec<SourceFile>,
}

/// How a refresh reads: everything (and why, when an append column was
/// declared), or the rows above the serving generation's largest value.
enum Mode {
    Full(Option<String>),
    Incremental {
        above: ScalarValue,
        files: Vec<ObjectMeta>,
    },
    /// A lake table's files added since the serving generation's refresh
    /// ([`lake_files`]), and the serving generation's files.
    NewFiles {
        new: Vec<SourceFile>,
        files: Vec<ObjectMeta>,
    },
}

/// Checks, when a materialized view is created, that its `append_column`
/// is a column of its answer of a type with an order.
pub fn check_append_column(qualified: &str, plan: &LogicalPlan, column: &str) -> Result<()> {
    let schema = plan.schema();
    let Some((_, field)) = schema.iter().find(|(_, f)| f.name() == column) else {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        return Err(SchedulerError::Query(DataFusionError::Plan(format!(
            "materialized view {qualified}: append_column `{column}` is not a column of its query (its columns: {})",
            names.join(", ")
        ))));
    };
    let t = field.data_type();
    if !(t.is_integer()
        || matches!(
            t,
            DataType::Decimal128(..)
                | DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(..)
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
        ))
    {
        return Err(SchedulerError::Query(DataFusionError::Plan(format!(
            "materialized view {qualified}: append_column `{column}` is of type {t}; it must be an integer, numeric, date, timestamp or text column"
        ))));
    }
    Ok(())
}

/// Why the plan's answer cannot grow by the rows above a value of one of
/// its columns (None: it can): it must read one table, through filters
/// and projections only. A join, an aggregate, DISTINCT, a window, a
/// LIMIT or a subquery could change rows already cached when rows are
/// added.
fn not_append_only(plan: &LogicalPlan) -> Option<String> {
    let mut scans = 0;
    let mut other = None;
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(_) => scans += 1,
            LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => {
            }
            n => {
                let shown = n.display().to_string();
                other = Some(
                    shown
                        .split(':')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                );
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if let Some(node) = other {
        return Some(format!("its query does more than filter one table: {node}"));
    }
    (scans != 1).then(|| format!("its query reads {scans} tables, not one"))
}

/// The largest non-NULL value of `column` in `batch`.
fn batch_max(batch: &RecordBatch, column: usize) -> Result<Option<ScalarValue>> {
    let a = batch.column(column);
    let options = SortOptions {
        descending: true,
        nulls_first: false,
    };
    let top =
        sort_to_indices(a, Some(options), Some(1)).map_err(|e| SchedulerError::Query(e.into()))?;
    if top.is_empty() || a.is_null(top.value(0) as usize) {
        return Ok(None);
    }
    Ok(Some(ScalarValue::try_from_array(a, top.value(0) as usize)?))
}

/// Decides how this refresh reads (see [`Mode`]).
async fn mode(
    engine: &Engine,
    def: &CacheDef,
    plan: &LogicalPlan,
    read_with: &ReadWith,
    listed: Option<&[SourceFile]>,
) -> Result<Mode> {
    let full = |why: String| Ok(Mode::Full(Some(why)));
    let st = &def.state;
    let Some(column) = &def.append_column else {
        // A lake table's new files, when the serving generation recorded
        // the files it read.
        let (Some(now), Some(location)) = (listed, &st.location) else {
            return Ok(Mode::Full(None));
        };
        if st.source_files.is_empty() {
            return Ok(Mode::Full(None));
        }
        if st.read_with.as_ref() != Some(read_with) {
            return full("the settings it was read with changed".into());
        }
        let schema = plan.schema().as_arrow().clone();
        if quipu_catalog::types::columns_of(&schema) != st.columns {
            return full("the columns of its answer changed".into());
        }
        let Some(new) = lake_files::added(&st.source_files, now) else {
            return full("a file it read was changed or removed".into());
        };
        let files = generation_files(engine, def, location).await?;
        if files.len() >= MAX_FILES {
            return full(format!("compacting its {} files into one", files.len()));
        }
        return Ok(Mode::NewFiles { new, files });
    };
    let (Some(location), Some(text)) = (&st.location, &st.watermark) else {
        return full("no generation with rows yet".into());
    };
    if st.read_with.as_ref() != Some(read_with) {
        return full("the settings it was read with changed".into());
    }
    if let Some(why) = not_append_only(plan) {
        return full(why);
    }
    let schema = plan.schema().as_arrow().clone();
    if quipu_catalog::types::columns_of(&schema) != st.columns {
        return full("the columns of its answer changed".into());
    }
    let Ok(index) = schema.index_of(column) else {
        return full(format!("{column} is no longer a column of its answer"));
    };
    let above = ScalarValue::try_from_string(text.clone(), schema.field(index).data_type())?;
    let files = generation_files(engine, def, location).await?;
    if files.len() >= MAX_FILES {
        return full(format!("compacting its {} files into one", files.len()));
    }
    Ok(Mode::Incremental { above, files })
}

/// The files of the generation at `location`.
async fn generation_files(
    engine: &Engine,
    def: &CacheDef,
    location: &str,
) -> Result<Vec<ObjectMeta>> {
    let (store, prefix) = store_of(engine, location)?;
    store
        .list(Some(&prefix))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| refresh_error(&def.qualified(), e))
}

/// Runs the cache's query in a session that reads no cache and writes its
/// answer as a Parquet file under `location`: all of it, or (with an
/// `append_column`, see [`Mode`]) only the rows above the serving
/// generation's largest value, next to that generation's files.
async fn write_generation(engine: &Arc<Engine>, def: &CacheDef, location: &str) -> Result<Written> {
    let qualified = def.qualified();
    let session = engine.client();
    let read_with = super::rewrite::read_with(&session.context().state());
    // The answer must come from the sources, not from this or another
    // cache.
    session.sql("SET quipu.max_staleness = '0'").await?;
    session.sql("SET quipu.stale_cache = 'live'").await?;
    let mut parsed = session.parse(&def.sql)?;
    if parsed.len() != 1 {
        return Err(refresh_error(&qualified, "its query is not one statement"));
    }
    let plan = session.plan_definition(parsed.remove(0)).await?;
    // A cache over one lake table: its files now, before reading.
    let state = session.context().state();
    let lake = match &def.append_column {
        None if not_append_only(&plan).is_none() => lake_files::lake_table(&plan),
        _ => None,
    };
    let listed = match &lake {
        Some(t) => Some(lake_files::list(&state, t).await?),
        None => None,
    };
    let mode = mode(engine, def, &plan, &read_with, listed.as_deref()).await?;
    let plan = match &mode {
        Mode::Incremental { above, .. } => {
            let column = def.append_column.as_deref().unwrap_or_default();
            LogicalPlanBuilder::from(plan)
                .filter(Expr::Column(Column::new_unqualified(column)).gt(lit(above.clone())))?
                .build()?
        }
        Mode::NewFiles { new, .. } => {
            // Exactly the new files, read here (the cluster's codec does
            // not know the table that chooses them).
            session.sql("SET quipu.execution = 'local'").await?;
            lake_files::only(plan, new)?
        }
        Mode::Full(_) => plan,
    };
    let out = session.run_plan(plan).await?;
    let schema = out.schema.clone();
    let mut seen = HashSet::new();
    for f in schema.fields() {
        if !seen.insert(f.name().clone()) {
            return Err(SchedulerError::Query(DataFusionError::Plan(format!(
                "materialized view {qualified}: its query returns two columns named `{}`; give them distinct names with AS",
                f.name()
            ))));
        }
    }
    if let Some(path) = location.strip_prefix("file://") {
        std::fs::create_dir_all(path)
            .map_err(|e| refresh_error(&qualified, format!("cannot create {path}: {e}")))?;
    }
    let (store, prefix) = store_of(engine, location)?;
    // Named by generation, so the files an incremental refresh carries
    // over keep their names beside the new one.
    let file = prefix
        .clone()
        .join(format!("part-{:06}.parquet", def.state.generation + 1).as_str());
    let sink = object_store::buffered::BufWriter::new(store.clone(), file.clone());
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut writer = AsyncArrowWriter::try_new(sink, schema.clone(), Some(props))
        .map_err(|e| refresh_error(&qualified, e))?;
    let watched = match &def.append_column {
        Some(c) => Some(schema.index_of(c).map_err(|_| {
            refresh_error(
                &qualified,
                format!("append_column {c} is not a column of its answer"),
            )
        })?),
        None => None,
    };
    let mut largest: Option<ScalarValue> = None;
    let mut rows = 0u64;
    let mut stream = out.stream;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        if let Some(i) = watched
            && let Some(m) = batch_max(&batch, i)?
            && largest
                .as_ref()
                .is_none_or(|l| m.partial_cmp(l) == Some(std::cmp::Ordering::Greater))
        {
            largest = Some(m);
        }
        writer
            .write(&batch)
            .await
            .map_err(|e| refresh_error(&qualified, e))?;
    }
    writer
        .close()
        .await
        .map_err(|e| refresh_error(&qualified, e))?;
    let mut bytes = store
        .head(&file)
        .await
        .map_err(|e| refresh_error(&qualified, e))?
        .size;
    if rows == 0 && !matches!(mode, Mode::Full(_)) {
        // Nothing added: no empty file beside the carried-over ones.
        store
            .delete(&file)
            .await
            .map_err(|e| refresh_error(&qualified, e))?;
        bytes = 0;
    }
    // The files read: recorded for a full read only when nothing was
    // added to the table while it read (see lake_files).
    let source_files = match (&mode, &lake, listed) {
        (Mode::NewFiles { .. }, _, Some(listed)) => listed,
        (Mode::Full(_), Some(t), Some(listed)) => {
            if lake_files::list(&state, t).await? == listed {
                listed
            } else {
                vec![]
            }
        }
        _ => vec![],
    };
    let (kind, total, watermark) = match mode {
        Mode::Full(why) => (
            match why {
                Some(why) => format!("full ({why})"),
                None => "full".to_string(),
            },
            rows,
            largest,
        ),
        Mode::Incremental { above, files } => {
            bytes += carry_over(&store, &prefix, &files, &qualified).await?;
            (
                format!("incremental ({rows} rows added)"),
                def.state.rows + rows,
                Some(largest.unwrap_or(above)),
            )
        }
        Mode::NewFiles { new, files } => {
            bytes += carry_over(&store, &prefix, &files, &qualified).await?;
            (
                format!(
                    "incremental ({} new file{}, {rows} rows added)",
                    new.len(),
                    if new.len() == 1 { "" } else { "s" }
                ),
                def.state.rows + rows,
                None,
            )
        }
    };
    // Kept only if its text reads back as the same value (else the next
    // refresh is a full one).
    let watermark = watermark.and_then(|v| {
        let text = v.to_string();
        (ScalarValue::try_from_string(text.clone(), &v.data_type()).ok() == Some(v)).then_some(text)
    });
    let columns = quipu_catalog::types::columns_of(&schema);
    Ok(Written {
        columns,
        rows: total,
        bytes,
        read_with,
        watermark,
        kind,
        source_files,
    })
}

/// Carries the serving generation's `files` over into the new one at
/// `prefix` (a hard link on a file system, a copy in the bucket on S3);
/// their bytes.
async fn carry_over(
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
    files: &[ObjectMeta],
    qualified: &str,
) -> Result<u64> {
    let mut bytes = 0;
    for f in files {
        let Some(name) = f.location.filename() else {
            continue;
        };
        store
            .copy(&f.location, &prefix.clone().join(name))
            .await
            .map_err(|e| refresh_error(qualified, e))?;
        bytes += f.size;
    }
    Ok(bytes)
}

/// Refreshes, one at a time, every cache declared with `refresh = 'every
/// ...'` whose serving generation is that old (a failed refresh is tried
/// again after the same interval). Runs until the process ends.
pub fn spawn_refresher(engine: Arc<Engine>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let caches = match engine.session().store().caches() {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read materialized views");
                    continue;
                }
            };
            for def in caches {
                let Some(every) = def.refresh_every_secs else {
                    continue;
                };
                let now = now_ms();
                let every_ms = every * 1_000;
                let last = def
                    .state
                    .read_at_ms
                    .unwrap_or(0)
                    .max(def.state.last_error_at_ms.unwrap_or(0));
                if now.saturating_sub(last) < every_ms || busy(&def) {
                    continue;
                }
                // Errors are recorded in the catalog and logged.
                let _ = refresh(&engine, &def.schema, &def.name).await;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_directories_stay_inside_the_storage() {
        assert_eq!(dir_name("by_customer-2"), "by_customer-2");
        assert_eq!(dir_name(".."), "~2E~2E");
        assert_eq!(dir_name("a/b"), "a~2Fb");
        assert_eq!(dir_name("a~2Fb"), "a~7E2Fb");
        assert_eq!(dir_name("Ñ"), "~C3~91");
    }
}
