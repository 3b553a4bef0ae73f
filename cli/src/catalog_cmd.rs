//! `quipu catalog ...`: administration of the embedded catalog.

use std::collections::BTreeMap;
use std::path::Path;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use quipu_catalog::types::parse_type;
use quipu_catalog::{ColumnDef, FileFormat, SourceDef, SourceKind, TableDef, TableName};
use quipu_connectors::QuipuSession;

use crate::args::{CatalogCommand, Format, Kind};
use crate::output::error_message;

/// `writeln!` into a `String` (which cannot fail).
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

fn kind_of(k: Kind) -> SourceKind {
    match k {
        Kind::Lake => SourceKind::Lake,
        Kind::Postgres => SourceKind::Postgres,
        Kind::Mongodb => SourceKind::Mongodb,
    }
}

pub fn format_of(f: Format) -> FileFormat {
    match f {
        Format::Parquet => FileFormat::Parquet,
        Format::Csv => FileFormat::Csv,
        Format::Json => FileFormat::Json,
    }
}

fn new_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().copied());
    t
}

fn columns_text(cols: &[ColumnDef]) -> String {
    cols.iter()
        .map(|c| format!("{} {}", c.name, c.data_type))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_tables(out: &mut String, tables: &[TableDef]) {
    let mut t = new_table(&["table", "format", "location", "partitions", "columns"]);
    for d in tables {
        t.add_row(vec![
            d.name.to_string(),
            d.format.map(|f| f.to_string()).unwrap_or_default(),
            d.location.clone().unwrap_or_default(),
            d.partition_columns
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
            d.columns.len().to_string(),
        ]);
    }
    say!(out, "{t}");
}

/// Runs one catalog command; errors come back as one sentence.
/// `quipu catalog ...` on the catalog in `data_dir`.
pub async fn run(data_dir: &Path, cmd: CatalogCommand) -> Result<(), String> {
    let session = QuipuSession::open(data_dir).map_err(|e| error_message(&e))?;
    let text = execute(&session, cmd).await;
    session.close().await;
    print!("{}", text?);
    Ok(())
}

/// Runs one catalog command on `session`'s catalog; returns what to show
/// (the server runs this for `quipu --server ... catalog ...`).
pub async fn execute(session: &QuipuSession, cmd: CatalogCommand) -> Result<String, String> {
    let mut out = String::new();
    let store = session.store().clone();
    match cmd {
        CatalogCommand::AddSource {
            name,
            kind,
            url,
            format,
            options,
        } => {
            let mut opts = BTreeMap::new();
            for o in options {
                let (k, v) = o
                    .split_once('=')
                    .ok_or_else(|| format!("option `{o}` is not KEY=VALUE"))?;
                if opts.insert(k.trim().to_string(), v.to_string()).is_some() {
                    return Err(format!("option `{}` given twice", k.trim()));
                }
            }
            if let Some(url) = url {
                opts.insert("url".into(), url);
            }
            if let Some(f) = format {
                opts.insert("format".into(), format_of(f).to_string());
            }
            let def = SourceDef::new(&name, kind_of(kind), opts).map_err(|e| error_message(&e))?;
            let tables = session
                .add_source(&def)
                .await
                .map_err(|e| error_message(&e))?;
            say!(
                out,
                "added source `{name}` ({}) with {} tables",
                def.kind,
                tables.len()
            );
            if !tables.is_empty() {
                print_tables(&mut out, &tables);
            }
        }
        CatalogCommand::List { tables } => {
            let sources = store.sources().map_err(|e| error_message(&e))?;
            let all = store.tables(None).map_err(|e| error_message(&e))?;
            let mut t = new_table(&["source", "kind", "location", "tables"]);
            for s in &sources {
                let location = s
                    .options
                    .get("url")
                    .or_else(|| s.options.get("host"))
                    .cloned()
                    .unwrap_or_default();
                let n = all.iter().filter(|t| t.name.source == s.name).count();
                t.add_row(vec![
                    s.name.clone(),
                    s.kind.to_string(),
                    location,
                    n.to_string(),
                ]);
            }
            say!(out, "{t}");
            let views = store.views().map_err(|e| error_message(&e))?;
            if !views.is_empty() {
                say!(
                    out,
                    "views: {}",
                    views
                        .iter()
                        .map(|v| format!("{}.{}", v.schema, v.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let caches = store.caches().map_err(|e| error_message(&e))?;
            if !caches.is_empty() {
                say!(
                    out,
                    "materialized views: {}",
                    caches
                        .iter()
                        .map(|c| c.qualified())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if tables {
                print_tables(&mut out, &all);
            }
        }
        CatalogCommand::Describe { name } => {
            let parts: Vec<&str> = name.split('.').collect();
            let cache = match parts.as_slice() {
                [schema, n] | ["quipu", schema, n] => {
                    store.cache(schema, n).map_err(|e| error_message(&e))?
                }
                _ => None,
            };
            if let Some(def) = cache {
                describe_cache(&mut out, &def);
            } else if name.contains('.') {
                let tn = TableName::parse(&name).map_err(|e| error_message(&e))?;
                let def = store
                    .table(&tn)
                    .map_err(|e| error_message(&e))?
                    .ok_or_else(|| format!("table `{tn}` does not exist"))?;
                say!(
                    out,
                    "table {tn} ({:?}, {})",
                    def.origin,
                    def.format.map(|f| f.to_string()).unwrap_or_default()
                );
                if let Some(l) = &def.location {
                    say!(out, "location: {l}");
                }
                if let Some(n) = def.partitions {
                    say!(out, "read partitions: {n}");
                }
                let mut t = new_table(&["column", "type", "nullable", "kind"]);
                for c in &def.columns {
                    t.add_row(vec![
                        c.name.clone(),
                        c.data_type.clone(),
                        c.nullable.to_string(),
                        if def.declared_schema {
                            "declared"
                        } else {
                            "inferred"
                        }
                        .to_string(),
                    ]);
                }
                for c in &def.partition_columns {
                    t.add_row(vec![
                        c.name.clone(),
                        c.data_type.clone(),
                        c.nullable.to_string(),
                        "partition".to_string(),
                    ]);
                }
                say!(out, "{t}");
            } else {
                let s = store
                    .source(&name)
                    .map_err(|e| error_message(&e))?
                    .ok_or_else(|| format!("source `{name}` does not exist"))?;
                say!(out, "source {} ({})", s.name, s.kind);
                for (k, v) in &s.options {
                    // Secret options only ever hold references, which are safe to show.
                    say!(out, "  {k} = {v}");
                }
                print_tables(
                    &mut out,
                    &store.tables(Some(&name)).map_err(|e| error_message(&e))?,
                );
            }
        }
        CatalogCommand::Drop { name } => {
            if name.contains('.') {
                let tn = TableName::parse(&name).map_err(|e| error_message(&e))?;
                store.drop_table(&tn).map_err(|e| error_message(&e))?;
                say!(out, "dropped table `{tn}`");
            } else {
                store.drop_source(&name).map_err(|e| error_message(&e))?;
                say!(out, "dropped source `{name}` and its tables");
            }
        }
        CatalogCommand::SetPartitions { name, partitions } => {
            let tn = TableName::parse(&name).map_err(|e| error_message(&e))?;
            let n = match partitions.trim() {
                "auto" => None,
                v => Some(v.parse::<u32>().map_err(|_| {
                    format!("`{v}` is not a number of partitions from 1 to 64, nor `auto`")
                })?),
            };
            session
                .set_table_partitions(&tn, n)
                .map_err(|e| error_message(&e))?;
            match n {
                Some(n) => say!(out, "table `{tn}`: reads split into {n} partition(s)"),
                None => say!(out, "table `{tn}`: partitions chosen from its size"),
            }
        }
        CatalogCommand::Refresh { name } => {
            let drift = session
                .refresh_source(&name)
                .await
                .map_err(|e| error_message(&e))?;
            if drift.is_empty() {
                say!(out, "source `{name}`: no changes");
            }
            for t in &drift.added {
                say!(out, "added   {t}");
            }
            for t in &drift.removed {
                say!(out, "removed {t}");
            }
            for (t, what) in &drift.changed {
                say!(out, "changed {t}: {what}");
            }
        }
        CatalogCommand::AddTable {
            name,
            path,
            format,
            columns,
            replace,
        } => {
            let tn = TableName::parse(&name).map_err(|e| error_message(&e))?;
            let declared = if columns.is_empty() {
                None
            } else {
                let mut cols = Vec::new();
                for c in &columns {
                    let (n, ty) = c
                        .split_once(':')
                        .ok_or_else(|| format!("column `{c}` is not NAME:TYPE"))?;
                    let dt = parse_type(n, ty).map_err(|e| error_message(&e))?;
                    cols.push(ColumnDef {
                        name: n.trim().to_string(),
                        data_type: dt.to_string(),
                        nullable: true,
                        source_type: None,
                    });
                }
                Some(cols)
            };
            let def = session
                .add_table(tn, &path, format.map(format_of), declared, replace)
                .await
                .map_err(|e| error_message(&e))?;
            say!(
                out,
                "added table `{}` ({} columns: {})",
                def.name,
                def.columns.len(),
                columns_text(&def.columns)
            );
        }
    }
    Ok(out)
}

/// Milliseconds since the Unix epoch as UTC time, `2026-11-30 22:58:01`.
fn utc(ms: u64) -> String {
    arrow::temporal_conversions::timestamp_ms_to_datetime(ms as i64)
        .map(|t| format!("{} UTC", t.format("%Y-%m-%d %H:%M:%S")))
        .unwrap_or_else(|| ms.to_string())
}

/// What `catalog describe schema.name` shows of a materialized view: its
/// query and settings, and its serving generation with how it got there.
fn describe_cache(out: &mut String, def: &quipu_catalog::CacheDef) {
    use std::fmt::Write as _;
    use std::time::Duration;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let human = |ms: u64| quipu_scheduler::cache::human(Duration::from_millis(ms));
    let st = &def.state;
    let _ = writeln!(out, "materialized view {}", def.qualified());
    let _ = writeln!(out, "query: {}", def.sql);
    let _ = writeln!(
        out,
        "refresh: {}",
        def.refresh_every_secs
            .map(|s| format!("every {}", human(s * 1000)))
            .unwrap_or_else(|| "manual".into())
    );
    let _ = writeln!(
        out,
        "max_staleness: {}",
        def.max_staleness_secs
            .map(|s| human(s * 1000))
            .unwrap_or_else(|| "none (any age)".into())
    );
    let _ = writeln!(
        out,
        "storage: {}",
        def.storage
            .as_deref()
            .unwrap_or("cache/ in the data directory")
    );
    if let Some(c) = &def.append_column {
        let _ = writeln!(
            out,
            "append_column: {c} (largest value cached: {})",
            st.watermark.as_deref().unwrap_or("none")
        );
    }
    if !st.source_files.is_empty() {
        let _ = writeln!(
            out,
            "lake files read: {} (a refresh reads only files added since)",
            st.source_files.len()
        );
    }
    let _ = writeln!(out, "generation: {}", st.generation);
    let _ = writeln!(out, "rows: {}", st.rows);
    let _ = writeln!(out, "bytes: {}", st.bytes);
    if let Some(read) = st.read_at_ms {
        let _ = writeln!(
            out,
            "data read at: {} ({} old)",
            utc(read),
            human(now.saturating_sub(read))
        );
    }
    if let Some(ms) = st.refresh_ms {
        let _ = writeln!(out, "refresh took: {}", human(ms));
    }
    if let Some(kind) = &st.refresh_kind {
        let _ = writeln!(out, "last refresh: {kind}");
    }
    if let (Some(every), Some(read)) = (def.refresh_every_secs, st.read_at_ms) {
        let _ = writeln!(out, "next refresh: {}", utc(read + every * 1000));
    }
    if let Some(r) = &st.refreshing {
        let _ = writeln!(
            out,
            "refreshing: since {} (process {} on {})",
            utc(r.since_ms),
            r.pid,
            r.host
        );
    }
    match (&st.last_error, st.last_error_at_ms) {
        (Some(e), Some(at)) => {
            let _ = writeln!(out, "last error: {e} (at {})", utc(at));
        }
        (Some(e), None) => {
            let _ = writeln!(out, "last error: {e}");
        }
        _ => {
            let _ = writeln!(out, "last error: none");
        }
    }
    if let Some(l) = &st.location {
        let _ = writeln!(out, "files: {l}");
    }
}
