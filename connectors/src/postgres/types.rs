//! PostgreSQL types as Arrow types, and what happens to a type without a
//! mapping (`unsupported_type`).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use quipu_catalog::SourceDef;

use crate::error::Result;

use super::pool::bad;

/// The types a remote query hands Quipu, the one table that the discovery
/// (which PostgreSQL types are read as what), the pushdown (what a pushed
/// query's result column is cast to) and the binary COPY decoder (how its
/// bytes are read) all follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wire {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric(u8, i8),
    /// Text, and every type the remote query casts to text.
    Text,
    Date,
    Timestamp,
    TimestampTz,
    /// Months, days and microseconds, as PostgreSQL keeps an interval.
    Interval,
    Bytea,
    /// An array of one dimension of one of the types above that is read
    /// as itself (not cast to text), as an Arrow List.
    Array(Box<Wire>),
}

impl Wire {
    /// How a PostgreSQL type (`udt_name`) is read, and whether the remote
    /// query casts it to text first. None: no mapping.
    pub(super) fn of_udt(
        udt: &str,
        precision: Option<i32>,
        scale: Option<i32>,
    ) -> Option<(Wire, bool)> {
        Some(match udt {
            "bool" => (Wire::Bool, false),
            "int2" => (Wire::Int2, false),
            "int4" => (Wire::Int4, false),
            "int8" => (Wire::Int8, false),
            "float4" => (Wire::Float4, false),
            "float8" => (Wire::Float8, false),
            "numeric" => match (precision, scale) {
                (Some(p), Some(s)) if (1..=38).contains(&p) && (0..=p).contains(&s) => {
                    (Wire::Numeric(p as u8, s as i8), false)
                }
                // Unconstrained numeric: wide enough for money and counts.
                _ => (Wire::Numeric(38, 10), false),
            },
            "text" | "varchar" | "bpchar" | "name" | "citext" => (Wire::Text, false),
            "json" | "jsonb" | "uuid" | "xml" | "inet" | "cidr" | "macaddr" | "time" | "timetz" => {
                (Wire::Text, true)
            }
            "interval" => (Wire::Interval, false),
            "date" => (Wire::Date, false),
            "timestamp" => (Wire::Timestamp, false),
            "timestamptz" => (Wire::TimestampTz, false),
            "bytea" => (Wire::Bytea, false),
            // An array (`_int4`) of a type read as itself; the precision
            // and scale are its elements' (`discovery::element_typmod`).
            // A `char(n)[]`'s elements keep their padding, which a scalar
            // `char(n)` read as text does not: it is read as its text.
            "_bpchar" => return None,
            array => match array
                .strip_prefix('_')
                .and_then(|e| Wire::of_udt(e, precision, scale))
            {
                Some((Wire::Array(_), _)) | Some((_, true)) | None => return None,
                Some((element, false)) => (Wire::Array(Box::new(element)), false),
            },
        })
    }

    /// The wire type an Arrow type is read from (None: Quipu cannot ask
    /// PostgreSQL for it).
    pub(crate) fn of_arrow(t: &DataType) -> Option<Wire> {
        Some(match t {
            DataType::Boolean => Wire::Bool,
            DataType::Int16 => Wire::Int2,
            DataType::Int32 => Wire::Int4,
            DataType::Int64 => Wire::Int8,
            DataType::Float32 => Wire::Float4,
            DataType::Float64 => Wire::Float8,
            DataType::Decimal128(p, s) if *s >= 0 && *s as u8 <= *p => Wire::Numeric(*p, *s),
            DataType::Utf8 => Wire::Text,
            DataType::Date32 => Wire::Date,
            DataType::Timestamp(TimeUnit::Microsecond, None) => Wire::Timestamp,
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC" => {
                Wire::TimestampTz
            }
            DataType::Interval(IntervalUnit::MonthDayNano) => Wire::Interval,
            DataType::Binary => Wire::Bytea,
            DataType::List(f) => match Wire::of_arrow(f.data_type())? {
                Wire::Array(_) => return None,
                element => Wire::Array(Box::new(element)),
            },
            _ => return None,
        })
    }

    /// Its Arrow type.
    pub(crate) fn arrow(&self) -> DataType {
        match *self {
            Wire::Bool => DataType::Boolean,
            Wire::Int2 => DataType::Int16,
            Wire::Int4 => DataType::Int32,
            Wire::Int8 => DataType::Int64,
            Wire::Float4 => DataType::Float32,
            Wire::Float8 => DataType::Float64,
            Wire::Numeric(p, s) => DataType::Decimal128(p, s),
            Wire::Text => DataType::Utf8,
            Wire::Date => DataType::Date32,
            Wire::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Wire::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Wire::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            Wire::Bytea => DataType::Binary,
            Wire::Array(ref element) => {
                DataType::List(Arc::new(Field::new("item", element.arrow(), true)))
            }
        }
    }

    /// The PostgreSQL type a remote query casts the column to, so that its
    /// bytes are this wire type's.
    pub(crate) fn cast(&self) -> String {
        match *self {
            Wire::Bool => "boolean".into(),
            Wire::Int2 => "smallint".into(),
            Wire::Int4 => "integer".into(),
            Wire::Int8 => "bigint".into(),
            Wire::Float4 => "real".into(),
            Wire::Float8 => "double precision".into(),
            Wire::Numeric(p, s) => format!("numeric({p},{s})"),
            Wire::Text => "text".into(),
            Wire::Date => "date".into(),
            Wire::Timestamp => "timestamp".into(),
            Wire::TimestampTz => "timestamptz".into(),
            Wire::Interval => "interval".into(),
            Wire::Bytea => "bytea".into(),
            // A numeric array's elements keep their places: a cast to
            // numeric(p,s)[] would round them at the source, where the
            // decoder checks that each fits.
            Wire::Array(ref element) => match **element {
                Wire::Numeric(..) => "numeric[]".into(),
                ref e => format!("{}[]", e.cast()),
            },
        }
    }
}

/// How a PostgreSQL type is read: its Arrow type, and whether the remote
/// query casts it to text first.
pub(super) fn map_type(
    udt: &str,
    precision: Option<i32>,
    scale: Option<i32>,
) -> Option<(DataType, bool)> {
    Wire::of_udt(udt, precision, scale).map(|(w, as_text)| (w.arrow(), as_text))
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

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Wire; 13] = [
        Wire::Bool,
        Wire::Int2,
        Wire::Int4,
        Wire::Int8,
        Wire::Float4,
        Wire::Float8,
        Wire::Numeric(12, 2),
        Wire::Text,
        Wire::Date,
        Wire::Timestamp,
        Wire::TimestampTz,
        Wire::Interval,
        Wire::Bytea,
    ];

    /// Every wire type goes round: Arrow type and back, cast name and back
    /// (as the discovery would read a column of that type).
    #[test]
    fn every_wire_type_round_trips_through_arrow_and_its_cast() {
        for w in ALL {
            assert_eq!(Wire::of_arrow(&w.arrow()), Some(w.clone()), "{w:?}");
            let cast = w.cast();
            let (udt, p, s) = match cast.as_str() {
                "boolean" => ("bool", None, None),
                "smallint" => ("int2", None, None),
                "integer" => ("int4", None, None),
                "bigint" => ("int8", None, None),
                "real" => ("float4", None, None),
                "double precision" => ("float8", None, None),
                "numeric(12,2)" => ("numeric", Some(12), Some(2)),
                other => (other, None, None),
            };
            assert_eq!(Wire::of_udt(udt, p, s), Some((w, false)), "{cast}");
        }
    }

    #[test]
    fn types_without_a_native_reading_are_cast_to_text_or_unmapped() {
        assert_eq!(Wire::of_udt("uuid", None, None), Some((Wire::Text, true)));
        assert_eq!(
            Wire::of_udt("numeric", None, None),
            Some((Wire::Numeric(38, 10), false))
        );
        // A scale above the precision is not a numeric(p, s) Arrow has.
        assert_eq!(
            Wire::of_udt("numeric", Some(2), Some(5)),
            Some((Wire::Numeric(38, 10), false))
        );
        // Arrays of the types read as themselves are lists; the others,
        // and arrays of arrays' names, have no mapping (read as text).
        assert_eq!(
            Wire::of_udt("_numeric", Some(10), Some(2)),
            Some((Wire::Array(Box::new(Wire::Numeric(10, 2))), false))
        );
        let ints = Wire::Array(Box::new(Wire::Int4));
        assert_eq!(Wire::of_arrow(&ints.arrow()), Some(ints.clone()));
        assert_eq!(ints.cast(), "integer[]");
        assert_eq!(
            Wire::Array(Box::new(Wire::Numeric(10, 2))).cast(),
            "numeric[]"
        );
        for text in ["_uuid", "_jsonb", "_bpchar", "__int4", "_mood"] {
            assert_eq!(Wire::of_udt(text, None, None), None, "{text}");
        }
        assert_eq!(Wire::of_udt("geometry", None, None), None);
        assert_eq!(Wire::of_arrow(&DataType::Int8), None);
        assert_eq!(
            Wire::of_arrow(&DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("+01:00".into())
            )),
            None
        );
    }
}
