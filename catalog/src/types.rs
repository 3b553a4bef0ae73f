//! Column types as admins write them (`bigint`, `text`, `timestamptz`,
//! `decimal(12,2)`) and as the catalog stores them (Arrow's display form,
//! which `DataType::from_str` reads back).

use std::str::FromStr;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::error::{CatalogError, Result};
use crate::model::ColumnDef;

/// Parses a SQL type name or an Arrow type name.
pub fn parse_type(column: &str, ty: &str) -> Result<DataType> {
    let lower = ty.trim().to_ascii_lowercase();
    let simple = match lower.as_str() {
        "bool" | "boolean" => Some(DataType::Boolean),
        "smallint" | "int2" => Some(DataType::Int16),
        "int" | "integer" | "int4" => Some(DataType::Int32),
        "bigint" | "int8" => Some(DataType::Int64),
        "real" | "float4" | "float" => Some(DataType::Float32),
        "double" | "double precision" | "float8" => Some(DataType::Float64),
        "text" | "varchar" | "string" | "char" => Some(DataType::Utf8),
        "bytea" | "binary" | "blob" => Some(DataType::Binary),
        "date" => Some(DataType::Date32),
        "timestamp" => Some(DataType::Timestamp(TimeUnit::Microsecond, None)),
        "timestamptz" | "timestamp with time zone" => Some(DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("UTC".into()),
        )),
        _ => None,
    };
    if let Some(t) = simple {
        return Ok(t);
    }
    let invalid = |reason: String| CatalogError::InvalidType {
        column: column.to_string(),
        ty: ty.to_string(),
        reason,
    };
    if let Some(args) = lower
        .strip_prefix("decimal(")
        .or_else(|| lower.strip_prefix("numeric("))
        .and_then(|r| r.strip_suffix(')'))
    {
        let mut it = args.split(',').map(str::trim);
        let precision: u8 = it
            .next()
            .and_then(|p| p.parse().ok())
            .filter(|p| (1..=38).contains(p))
            .ok_or_else(|| invalid("precision must be 1..=38".into()))?;
        let scale: i8 = match it.next() {
            Some(s) => s
                .parse()
                .ok()
                .filter(|s: &i8| *s >= 0 && (*s as u8) <= precision)
                .ok_or_else(|| invalid("scale must be 0..=precision".into()))?,
            None => 0,
        };
        return Ok(DataType::Decimal128(precision, scale));
    }
    DataType::from_str(ty.trim()).map_err(|_| {
        invalid("not a known SQL type (bigint, int, double, text, boolean, date, timestamp, timestamptz, decimal(p,s)) nor an Arrow type".into())
    })
}

/// Converts stored columns into an Arrow schema.
pub fn schema_of(columns: &[ColumnDef]) -> Result<Schema> {
    let fields = columns
        .iter()
        .map(|c| {
            let t = DataType::from_str(&c.data_type).map_err(|e| CatalogError::Corrupt {
                key: c.name.clone(),
                reason: format!("stored type `{}` unreadable: {e}", c.data_type),
            })?;
            Ok(Field::new(&c.name, t, c.nullable))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Schema::new(fields))
}

/// Converts an Arrow schema into stored columns.
pub fn columns_of(schema: &Schema) -> Vec<ColumnDef> {
    schema
        .fields()
        .iter()
        .map(|f| ColumnDef {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
            source_type: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_names_and_round_trip() {
        assert_eq!(parse_type("a", "BIGINT").unwrap(), DataType::Int64);
        assert_eq!(
            parse_type("a", "numeric(12, 2)").unwrap(),
            DataType::Decimal128(12, 2)
        );
        assert!(parse_type("a", "decimal(40,2)").is_err());
        assert!(
            parse_type("a", "wibble")
                .unwrap_err()
                .to_string()
                .contains("`a`")
        );
        for t in [
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Decimal128(10, 2),
            DataType::Utf8,
            DataType::Date32,
        ] {
            let cols = columns_of(&Schema::new(vec![Field::new("c", t.clone(), true)]));
            assert_eq!(schema_of(&cols).unwrap().field(0).data_type(), &t);
        }
    }
}
