//! Lake tables: discovery of tables in a folder tree, schema inference, and
//! `ListingTable`s (which Ballista serialises natively, so lake scans run on
//! executors without a codec of ours).
//!
//! Discovery rules, from the lake root:
//! - a data file directly in the root is table `public.<file stem>`;
//! - a folder that holds data files or hive partition folders (`k=v/`) is a
//!   *table folder*: at the root it is table `public.<folder>`;
//! - any other folder at the root is a schema, and each table folder inside
//!   it is table `<schema>.<folder>`;
//! - names starting with `.` or `_` (`_SUCCESS`, `.crc`) are ignored.
//!
//! Partition folders become columns (`Int64` when every value seen is an
//! integer, else `Utf8`), so filters on them prune whole folders.

pub mod connector;
pub mod object_stores;
pub mod write;

pub use connector::{Lake, REGISTRATION};

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::file_format::FileFormat as DfFileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use quipu_catalog::types::{columns_of, schema_of};
use quipu_catalog::{ColumnDef, FileFormat, SourceDef, TableDef, TableName, TableOrigin};

use crate::connector::TableRequest;
use crate::error::{ConnectorError, Result};
use crate::lake::object_stores::LakeRoot;

/// What a table folder looks like: its partition columns and data files.
#[derive(Debug, Clone, PartialEq)]
struct TableShape {
    partition_columns: Vec<(String, DataType)>,
    format: FileFormat,
    extension: String,
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

/// Last segment of an object path.
fn leaf(path: &ObjectPath) -> String {
    path.filename().unwrap_or_default().to_string()
}

/// The suffix a listing must match: `.parquet`, `.ndjson`, `.csv`.
fn extension_of(name: &str) -> String {
    match name.rfind('.') {
        Some(i) => name[i..].to_string(),
        None => String::new(),
    }
}

fn list_err(source: &SourceDef, root: &LakeRoot, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::List {
        source_name: source.name.clone(),
        url: root.url.to_string(),
        reason: e.to_string(),
    }
}

/// Data file format from the source's `format` option, else the file name.
fn format_for(source: &SourceDef, file: &str) -> Option<FileFormat> {
    let forced = source.options.get("format").and_then(|f| f.parse().ok());
    match FileFormat::from_path(file) {
        Some(f) => Some(forced.unwrap_or(f)),
        None => forced.filter(|_| !is_hidden(file) && file.contains('.')),
    }
}

/// Walks down a folder: data files here, or hive partition folders to follow.
async fn inspect(
    source: &SourceDef,
    root: &LakeRoot,
    dir: &ObjectPath,
) -> Result<Option<TableShape>> {
    let mut partition_columns = Vec::new();
    let mut current = dir.clone();
    loop {
        let listing = root
            .store
            .list_with_delimiter(Some(&current))
            .await
            .map_err(|e| list_err(source, root, e))?;
        let file = listing
            .objects
            .iter()
            .map(|o| leaf(&o.location))
            .filter(|n| !is_hidden(n))
            .find_map(|n| format_for(source, &n).map(|f| (f, extension_of(&n))));
        if let Some((format, extension)) = file {
            return Ok(Some(TableShape {
                partition_columns,
                format,
                extension,
            }));
        }
        let partitions: Vec<(String, String, ObjectPath)> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| {
                let name = leaf(p);
                let (k, v) = name.split_once('=')?;
                (!is_hidden(&name)).then(|| (k.to_string(), v.to_string(), p.clone()))
            })
            .collect();
        let Some((key, _, first)) = partitions.first().cloned() else {
            return Ok(None);
        };
        if let Some((other, _, _)) = partitions.iter().find(|(k, _, _)| *k != key) {
            return Err(ConnectorError::Source {
                source_name: source.name.clone(),
                reason: format!("folder {current} mixes partition keys `{key}` and `{other}`"),
            });
        }
        let all_ints = partitions
            .iter()
            .all(|(_, v, _)| v.parse::<i64>().is_ok() || v == "__HIVE_DEFAULT_PARTITION__");
        let ty = if all_ints {
            DataType::Int64
        } else {
            DataType::Utf8
        };
        partition_columns.push((key, ty));
        current = first;
    }
}

fn file_format(source: &SourceDef, format: FileFormat) -> Result<Arc<dyn DfFileFormat>> {
    Ok(match format {
        FileFormat::Parquet => Arc::new(ParquetFormat::default()),
        FileFormat::Json => Arc::new(JsonFormat::default()),
        FileFormat::Csv => {
            let delimiter = source
                .options
                .get("delimiter")
                .and_then(|d| d.bytes().next())
                .unwrap_or(b',');
            Arc::new(
                CsvFormat::default()
                    .with_has_header(source.bool_option("has_header", true))
                    .with_delimiter(delimiter),
            )
        }
    })
}

fn listing_options(source: &SourceDef, def: &TableDef) -> Result<ListingOptions> {
    let format = def.format.ok_or_else(|| ConnectorError::Table {
        table: def.name.to_string(),
        reason: "no file format recorded; re-add the table with --format".into(),
    })?;
    let partition_cols = schema_of(&def.partition_columns)?
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    Ok(ListingOptions::new(file_format(source, format)?)
        .with_file_extension(def.file_extension.clone().unwrap_or_default())
        .with_table_partition_cols(partition_cols))
}

fn table_url(root: &LakeRoot, def: &TableDef) -> Result<ListingTableUrl> {
    let location = def.location.as_deref().unwrap_or("");
    let url = root
        .join(location)
        .map_err(|reason| ConnectorError::Table {
            table: def.name.to_string(),
            reason,
        })?;
    ListingTableUrl::parse(url.as_str()).map_err(|e| ConnectorError::Table {
        table: def.name.to_string(),
        reason: format!("invalid location {url}: {e}"),
    })
}

/// Infers the file schema of a table (partition columns excluded).
async fn infer(
    state: &dyn Session,
    source: &SourceDef,
    root: &LakeRoot,
    def: &TableDef,
) -> Result<SchemaRef> {
    let url = table_url(root, def)?;
    listing_options(source, def)?
        .infer_schema(state, &url)
        .await
        .map_err(|e| ConnectorError::Table {
            table: def.name.to_string(),
            reason: format!("cannot infer the schema of {url}: {e}"),
        })
}

/// A table definition for a folder or file, partitions and schema filled in.
pub async fn describe_location(
    state: &dyn Session,
    source: &SourceDef,
    root: &LakeRoot,
    request: TableRequest,
) -> Result<TableDef> {
    let TableRequest {
        name,
        location,
        format,
        declared,
        origin,
    } = request;
    let location = location.as_str();
    let url = root
        .join(location)
        .map_err(|reason| ConnectorError::Table {
            table: name.to_string(),
            reason,
        })?;
    let is_file = !location.is_empty()
        && !location.ends_with('/')
        && FileFormat::from_path(location).is_some();
    let path = ObjectPath::from_url_path(url.path()).map_err(|e| ConnectorError::Table {
        table: name.to_string(),
        reason: format!("invalid location `{location}`: {e}"),
    })?;
    let path = if url.scheme() == "file" {
        ObjectPath::from_filesystem_path(url.to_file_path().unwrap_or_default()).unwrap_or(path)
    } else {
        path
    };
    let shape = if is_file {
        let format = format.or_else(|| FileFormat::from_path(location));
        let extension = extension_of(location);
        root.store
            .head(&path)
            .await
            .map_err(|e| ConnectorError::Table {
                table: name.to_string(),
                reason: format!("cannot read {url}: {e}"),
            })?;
        format.map(|format| TableShape {
            partition_columns: vec![],
            format,
            extension,
        })
    } else {
        inspect(source, root, &path).await?
    };
    let (shape, location) = match shape {
        Some(mut s) => {
            if let Some(f) = format {
                s.format = f;
            }
            let loc = if is_file || location.is_empty() || location.ends_with('/') {
                location.to_string()
            } else {
                format!("{location}/")
            };
            (s, loc)
        }
        None => match (format, &declared) {
            // An empty folder is fine when the admin says what will be in it.
            (Some(format), Some(_)) => (
                TableShape {
                    partition_columns: vec![],
                    format,
                    extension: String::new(),
                },
                format!("{}/", location.trim_end_matches('/')),
            ),
            _ => {
                return Err(ConnectorError::Table {
                    table: name.to_string(),
                    reason: format!(
                        "no Parquet, CSV or JSON files found at {url}; give --format and --column to declare an empty table"
                    ),
                });
            }
        },
    };
    let mut def = TableDef {
        name,
        origin,
        location: Some(location),
        format: Some(shape.format),
        file_extension: Some(shape.extension),
        columns: vec![],
        partition_columns: shape
            .partition_columns
            .iter()
            .map(|(n, t)| ColumnDef {
                name: n.clone(),
                data_type: t.to_string(),
                nullable: true,
                source_type: None,
            })
            .collect(),
        declared_schema: declared.is_some(),
        partitions: None,
        primary_key: vec![],
    };
    match declared {
        Some(cols) => def.columns = cols,
        None => {
            def.columns = columns_of(infer(state, source, root, &def).await?.as_ref());
            // A column that was NULL in every sampled row is most likely
            // text that the sample did not reach (JSON says nothing more).
            for c in &mut def.columns {
                if c.data_type == DataType::Null.to_string() {
                    c.data_type = DataType::Utf8.to_string();
                }
            }
        }
    }
    // Files that also carry their partition key as a column (`date=.../`
    // holding a `date` column): the file's typed column wins, the folder
    // key is not declared (it would make the name ambiguous).
    let file_columns: Vec<String> = def.columns.iter().map(|c| c.name.clone()).collect();
    def.partition_columns.retain(|p| {
        let clash = file_columns.contains(&p.name);
        if clash {
            tracing::info!(table = %def.name, "partition key `{}` is also a file column; reading it from the files", p.name);
        }
        !clash
    });
    Ok(def)
}

/// Finds every table of a lake source (see the module docs for the rules).
pub async fn discover(
    state: &dyn Session,
    source: &SourceDef,
    root: &LakeRoot,
) -> Result<Vec<TableDef>> {
    let listing = root
        .store
        .list_with_delimiter(Some(&root.prefix))
        .await
        .map_err(|e| list_err(source, root, e))?;
    let schema = quipu_catalog::DEFAULT_SCHEMA;
    let mut found: Vec<(TableName, String)> = Vec::new();
    // The root itself may be one partitioned table.
    if listing
        .common_prefixes
        .iter()
        .any(|p| leaf(p).contains('=') && !is_hidden(&leaf(p)))
    {
        let name = root
            .url
            .path_segments()
            .and_then(|mut s| s.rfind(|s| !s.is_empty()).map(str::to_string))
            .unwrap_or_else(|| source.name.clone());
        found.push((TableName::new(&source.name, schema, name), String::new()));
    } else {
        for object in &listing.objects {
            let file = leaf(&object.location);
            if is_hidden(&file) || format_for(source, &file).is_none() {
                continue;
            }
            let stem = file.split('.').next().unwrap_or(&file).to_string();
            found.push((TableName::new(&source.name, schema, stem), file));
        }
        for dir in &listing.common_prefixes {
            let folder = leaf(dir);
            if is_hidden(&folder) {
                continue;
            }
            if inspect(source, root, dir).await?.is_some() {
                found.push((
                    TableName::new(&source.name, schema, &folder),
                    format!("{folder}/"),
                ));
                continue;
            }
            let inner = root
                .store
                .list_with_delimiter(Some(dir))
                .await
                .map_err(|e| list_err(source, root, e))?;
            for sub in &inner.common_prefixes {
                let table = leaf(sub);
                if !is_hidden(&table) && inspect(source, root, sub).await?.is_some() {
                    found.push((
                        TableName::new(&source.name, &folder, &table),
                        format!("{folder}/{table}/"),
                    ));
                }
            }
        }
    }
    let mut tables = Vec::with_capacity(found.len());
    for (name, location) in found {
        tables.push(
            describe_location(
                state,
                source,
                root,
                TableRequest {
                    name,
                    location,
                    format: None,
                    declared: None,
                    origin: TableOrigin::Discovered,
                },
            )
            .await?,
        );
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    tables.dedup_by(|a, b| a.name == b.name);
    Ok(tables)
}

/// The DataFusion table for a lake table definition.
pub async fn listing_table(
    state: &dyn Session,
    source: &SourceDef,
    root: &LakeRoot,
    def: &TableDef,
) -> Result<Arc<dyn TableProvider>> {
    let schema = if def.columns.is_empty() {
        infer(state, source, root, def).await?
    } else {
        Arc::new(schema_of(&def.columns)?)
    };
    let config = ListingTableConfig::new(table_url(root, def)?)
        .with_listing_options(listing_options(source, def)?)
        .with_schema(schema);
    let table = ListingTable::try_new(config).map_err(|e| ConnectorError::Table {
        table: def.name.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Arc::new(table))
}
