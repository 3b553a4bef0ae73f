//! A PostgreSQL source's tables and columns, from `information_schema`.

use datafusion::arrow::datatypes::DataType;
use quipu_catalog::{ColumnDef, SourceDef, TableDef, TableName, TableOrigin};

use crate::error::Result;

use super::{
    pool::{PgPools, bad, connect, pg_reason},
    types::{Unsupported, map_type, unsupported_policy},
};

/// Lists the tables and views of the allowed schemas with their columns.
pub async fn discover(pools: &PgPools, source: &SourceDef) -> Result<Vec<TableDef>> {
    let policy = unsupported_policy(source)?;
    let client = connect(pools, source).await?;
    let schemas: Vec<String> = source
        .options
        .get("schemas")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let rows = client
        .query(
            "SELECT c.table_schema::text, c.table_name::text, c.column_name::text, c.udt_name::text,
                    c.is_nullable = 'YES', c.numeric_precision, c.numeric_scale,
                    c.data_type::text,
                    CASE WHEN c.udt_name = '_numeric' THEN
                      (SELECT a.atttypmod FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = format('%I.%I', c.table_schema, c.table_name)::regclass
                         AND a.attname = c.column_name)
                    END
             FROM information_schema.columns c
             JOIN information_schema.tables t
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name
             WHERE t.table_type IN ('BASE TABLE', 'VIEW', 'FOREIGN')
               AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
               AND (cardinality($1::text[]) = 0 OR c.table_schema = ANY($1))
             ORDER BY 1, 2, c.ordinal_position",
            &[&schemas],
        )
        .await
        .map_err(|e| bad(source, format!("cannot list tables: {}", pg_reason(&e))))?;
    let mut tables: Vec<TableDef> = Vec::new();
    for r in rows {
        let (schema, table, column, udt): (String, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let nullable: bool = r.get(4);
        let data_type: String = r.get(7);
        let (precision, scale): (Option<i32>, Option<i32>) = match udt.as_str() {
            "_numeric" => element_typmod(r.get(8)),
            _ => (r.get(5), r.get(6)),
        };
        let name = TableName {
            source: source.name.clone(),
            schema: schema.clone(),
            table: table.clone(),
        };
        if tables.last().map(|t| &t.name) != Some(&name) {
            tables.push(TableDef {
                name,
                origin: TableOrigin::Discovered,
                location: None,
                format: None,
                file_extension: None,
                columns: vec![],
                partition_columns: vec![],
                declared_schema: false,
                partitions: None,
                primary_key: vec![],
            });
        }
        let arrow = match (map_type(&udt, precision, scale), policy) {
            (Some((t, _)), _) => t,
            (None, Unsupported::AsText) => DataType::Utf8,
            (None, Unsupported::Warn) => {
                tracing::warn!(source = %source.name, "skipping column {schema}.{table}.{column} of unsupported type {data_type}");
                continue;
            }
            (None, Unsupported::Error) => {
                return Err(bad(
                    source,
                    format!(
                        "column {schema}.{table}.{column} has type {data_type}, which has no mapping (set unsupported_type=as_text or warn)"
                    ),
                ));
            }
        };
        let source_type = (arrow == DataType::Utf8)
            .then(|| text_ordered_otherwise(&udt, &data_type))
            .flatten();
        tables.last_mut().unwrap().columns.push(ColumnDef {
            name: column,
            data_type: arrow.to_string(),
            nullable,
            source_type,
        });
    }
    // Each table's primary key, in key order (for clients' metadata).
    let keys = client
        .query(
            "SELECT n.nspname::text, c.relname::text, a.attname::text
             FROM pg_index i
             JOIN pg_class c ON c.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             WHERE i.indisprimary
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND (cardinality($1::text[]) = 0 OR n.nspname = ANY($1))
             ORDER BY 1, 2, k.ord",
            &[&schemas],
        )
        .await
        .map_err(|e| {
            bad(
                source,
                format!("cannot list primary keys: {}", pg_reason(&e)),
            )
        })?;
    let mut found: std::collections::BTreeMap<(String, String), Vec<String>> = Default::default();
    for r in keys {
        let (schema, table, column): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        found.entry((schema, table)).or_default().push(column);
    }
    for t in &mut tables {
        let Some(key) = found.remove(&(t.name.schema.clone(), t.name.table.clone())) else {
            continue;
        };
        // A key with a column Quipu skipped (of a type it does not map) is
        // not a key of the table Quipu reads.
        if key.iter().all(|k| t.columns.iter().any(|c| &c.name == k)) {
            t.primary_key = key;
        }
    }
    Ok(tables)
}

/// The precision and scale of a `numeric(p,s)[]` column's elements, from
/// its type modifier (`information_schema` gives none for an array):
/// PostgreSQL keeps `((p << 16) | s) + 4`, and -1 for a `numeric[]`.
fn element_typmod(typmod: Option<i32>) -> (Option<i32>, Option<i32>) {
    match typmod {
        Some(m) if m >= 4 => (Some(((m - 4) >> 16) & 0xffff), Some((m - 4) & 0xffff)),
        _ => (None, None),
    }
}

/// The name of a type read as text (`udt`, the `information_schema`'s
/// `data_type` beside it) whose values PostgreSQL orders otherwise than
/// their text: an enum by its labels' order (`'sad' < 'ok'`), `money` and
/// `inet` as numbers, arrays element by element, `jsonb` by its own rules,
/// `timetz` by its instant; `json` and `xml` have no order. None for the
/// types whose text orders as they do (text, `citext` aside, `uuid`,
/// `time`).
fn text_ordered_otherwise(udt: &str, data_type: &str) -> Option<String> {
    if matches!(
        udt,
        "text" | "varchar" | "bpchar" | "name" | "citext" | "uuid" | "time"
    ) {
        return None;
    }
    Some(match data_type {
        "USER-DEFINED" => udt.to_string(),
        "ARRAY" => format!("{}[]", udt.strip_prefix('_').unwrap_or(udt)),
        other => other.to_string(),
    })
}
