//! PostgreSQL types as Arrow types, and what happens to a type without a
//! mapping (`unsupported_type`).

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use quipu_catalog::SourceDef;

use crate::error::Result;

use super::pool::bad;

/// How a PostgreSQL type is read: its Arrow type, and whether the remote
/// query casts it to text first.
pub(super) fn map_type(
    udt: &str,
    precision: Option<i32>,
    scale: Option<i32>,
) -> Option<(DataType, bool)> {
    Some(match udt {
        "bool" => (DataType::Boolean, false),
        "int2" => (DataType::Int16, false),
        "int4" => (DataType::Int32, false),
        "int8" => (DataType::Int64, false),
        "float4" => (DataType::Float32, false),
        "float8" => (DataType::Float64, false),
        "numeric" => match (precision, scale) {
            (Some(p), Some(s)) if (1..=38).contains(&p) => {
                (DataType::Decimal128(p as u8, s as i8), false)
            }
            // Unconstrained numeric: wide enough for money and counts.
            _ => (DataType::Decimal128(38, 10), false),
        },
        "text" | "varchar" | "bpchar" | "name" | "citext" => (DataType::Utf8, false),
        "json" | "jsonb" | "uuid" | "xml" | "inet" | "cidr" | "macaddr" | "interval" | "time"
        | "timetz" => (DataType::Utf8, true),
        "date" => (DataType::Date32, false),
        "timestamp" => (DataType::Timestamp(TimeUnit::Microsecond, None), false),
        "timestamptz" => (
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        "bytea" => (DataType::Binary, false),
        _ => return None,
    })
}

/// Per-source policy for types without a mapping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Unsupported {
    Error,
    Warn,
    AsText,
}

pub(super) fn unsupported_policy(source: &SourceDef) -> Result<Unsupported> {
    match source.options.get("unsupported_type").map(String::as_str) {
        None | Some("as_text") => Ok(Unsupported::AsText),
        Some("warn") => Ok(Unsupported::Warn),
        Some("error") => Ok(Unsupported::Error),
        Some(other) => Err(bad(
            source,
            format!("option `unsupported_type` must be error, warn or as_text, got `{other}`"),
        )),
    }
}
