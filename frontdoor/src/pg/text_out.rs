//! Values in PostgreSQL's text form where pgwire's differs.
//!
//! pgwire 0.41 writes every `timestamp`, `timestamptz`, `time` and `interval` with six
//! fractional digits (`2024-02-29 12:34:56.000000`); PostgreSQL writes the
//! fraction without its trailing zeros, and none when it is zero
//! (`2024-02-29 12:34:56`, `12:34:56.5`). psql shows that text and the JDBC
//! driver's `getString` returns it. The rows of such columns are mended on
//! their way out.
//!
//! Before that, [`pg_text_batch`] puts four kinds of columns in PostgreSQL's
//! text at the Arrow level (text format only; binary values are exact):
//! doubles and reals as `float8out` / `float4out` print them (`2`, `1e+15`,
//! `-0`, `1e-05`; pgwire wrote `2.0`, `1000000000000000.0`, `0`, `0.00001`),
//! intervals as `interval_out` prints them (`-1 mons +1 day`),
//! `timestamptz` in the session's `TimeZone` (`SET TimeZone`), as
//! PostgreSQL shows them, with its offset (`-05`, `+05:30`), and decimals
//! exactly (pgwire's hold 28 digits). Binary decimals are written here
//! too ([`super::binary_numeric`]).

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float32Array, Float64Array, StringArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::Type;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::messages::data::DataRow;
use quipu_connectors::dialect::pg_text::{float4_out, float8_out};

/// The batch, or PostgreSQL's "numeric field overflow" when a decimal has
/// more digits than its column's precision. DataFusion 55 does not check
/// the precision of decimal arithmetic (thirty-eight nines plus one is a
/// `numeric(38,0)` holding 10^38), and Arrow's display printed such a
/// value with a digit fewer: 10^37, a wrong answer.
pub fn overflowed_decimals(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    use datafusion::arrow::datatypes::Decimal128Type;
    for column in batch.columns() {
        if let DataType::Decimal128(p, s) = column.data_type()
            && column
                .as_primitive::<Decimal128Type>()
                .validate_decimal_precision(*p)
                .is_err()
        {
            // A literal such as `1e40` is a decimal of one digit at scale
            // -40: it is its 41 digits that do not fit.
            let digits = match *s < 0 {
                true => 38,
                false => *p,
            };
            return Err(ArrowError::ComputeError(format!(
                "numeric field overflow: a value has more than the {digits} digits Quipu's \
                 numerics hold (numeric({p},{s}))"
            )));
        }
    }
    Ok(batch)
}

/// The batch with its text-format doubles as PostgreSQL prints them, its
/// text-format decimals exact, its `timestamptz` columns in the session's
/// time zone `zone` (an IANA name or an offset; one Arrow cannot read
/// leaves the column as it is), and its binary decimals in PostgreSQL's
/// binary form ([`super::binary_numeric`]).
pub fn pg_text_batch(
    batch: RecordBatch,
    fields: &[FieldInfo],
    zone: &str,
) -> Result<RecordBatch, ArrowError> {
    let zone_ok = zone
        .parse::<datafusion::arrow::array::timezone::Tz>()
        .is_ok();
    let mut changed = false;
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    let mut schema_fields: Vec<Field> = Vec::with_capacity(batch.num_columns());
    for (i, (column, field)) in batch
        .columns()
        .iter()
        .zip(batch.schema().fields())
        .enumerate()
    {
        let text = fields
            .get(i)
            .is_some_and(|f| f.format() == FieldFormat::Text);
        let binary = fields
            .get(i)
            .is_some_and(|f| f.format() == FieldFormat::Binary);
        let replaced: Option<ArrayRef> = match column.data_type() {
            DataType::Float64 if text => {
                let a = column.as_any().downcast_ref::<Float64Array>().expect("f64");
                Some(Arc::new(
                    a.iter().map(|v| v.map(float8_out)).collect::<StringArray>(),
                ))
            }
            DataType::Float32 if text => {
                let a = column.as_any().downcast_ref::<Float32Array>().expect("f32");
                Some(Arc::new(
                    a.iter().map(|v| v.map(float4_out)).collect::<StringArray>(),
                ))
            }
            DataType::Timestamp(_, Some(_)) if text && zone_ok => {
                Some(zoned_text(column, Some(zone))?)
            }
            // PostgreSQL's interval text: a sign on each field that differs
            // from the one before (`-1 mons +1 day`, `-1 days +02:00:00`);
            // pgwire left the `+` out.
            DataType::Interval(_) if text => Some(
                quipu_connectors::dialect::pg_out::text_of(column)
                    .map_err(|e| ArrowError::ComputeError(e.to_string()))?,
            ),
            // Exact, at the column's scale: pgwire goes through
            // rust_decimal, which holds 28 digits (`power(n, 2)` of a
            // numeric(20,6), 33 digits, was an error over the wire).
            DataType::Decimal128(..) | DataType::Decimal256(..) if text => {
                Some(cast(column, &DataType::Utf8)?)
            }
            DataType::Decimal128(..) | DataType::Decimal256(..) if binary => {
                Some(super::binary_numeric::binary_numerics(column, None)?)
            }
            // An array's elements as PostgreSQL's `array_out` writes them
            // (`{1.5,NaN,Infinity,-0}`, `{"2024-01-01 10:00:00"}`, `{"1
            // day 02:00:00"}`); pgwire wrote each in its own text
            // (`{inf,2.0}`, `{2024-01-01 10:00:00.000000}`), unquoted.
            DataType::List(_) | DataType::LargeList(_) if text => {
                Some(zoned_text(column, zone_ok.then_some(zone))?)
            }
            _ => None,
        };
        match replaced {
            Some(a) => {
                changed = true;
                schema_fields.push(field.as_ref().clone().with_data_type(a.data_type().clone()));
                columns.push(a);
            }
            None => {
                schema_fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    if !changed {
        return Ok(batch);
    }
    RecordBatch::try_new(Arc::new(Schema::new(schema_fields)), columns)
}

/// The fields `encode_recordbatch` writes a batch of [`pg_text_batch`]
/// with: a text-format array column holds its whole text there, which
/// pgwire would quote again as one element (`"{1,2}"`) under the array's
/// type, so it is written as `text`. The client is told the array's type
/// (the fields of the row description are not these).
pub fn encoding_fields(fields: &Arc<Vec<FieldInfo>>) -> Arc<Vec<FieldInfo>> {
    let array_text = |f: &FieldInfo| {
        f.format() == FieldFormat::Text
            && matches!(f.datatype().kind(), postgres_types::Kind::Array(_))
    };
    if !fields.iter().any(array_text) {
        return fields.clone();
    }
    Arc::new(
        fields
            .iter()
            .map(|f| match array_text(f) {
                true => FieldInfo::new(
                    f.name().to_string(),
                    f.table_id(),
                    f.column_id(),
                    Type::TEXT,
                    f.format(),
                )
                .with_format_options(f.format_options().clone()),
                false => f.clone(),
            })
            .collect(),
    )
}

/// The PostgreSQL fields of a result's `schema`. A `decimal256` (a
/// double shown as an exact `numeric`, `quipu_scheduler`'s rounding) is a
/// `numeric` as a `decimal128` is; pgwire's mapping knows only the
/// latter. Its values are sent as [`pg_text_batch`] and
/// [`super::binary_numeric`] write them.
pub fn pg_fields(
    schema: &Schema,
    format: &pgwire::api::portal::Format,
    options: Option<Arc<pgwire::types::format::FormatOptions>>,
) -> pgwire::error::PgWireResult<Vec<FieldInfo>> {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Decimal256(_, s) => f
                .as_ref()
                .clone()
                .with_data_type(DataType::Decimal128(38, (*s).min(38))),
            _ => f.as_ref().clone(),
        })
        .collect();
    arrow_pg::datatypes::arrow_schema_to_pg_fields(&Schema::new(fields), format, options)
}

/// The hidden columns of places a result carries
/// (`quipu_scheduler::scales`): the columns a client sees, and for each
/// numeric one the hidden column of its values' places.
pub struct Places {
    visible: Vec<usize>,
    places: Vec<Option<usize>>,
}

impl Places {
    /// `None` when `schema` has no hidden column.
    pub fn of(schema: &Schema) -> Option<Places> {
        let of: Vec<Option<usize>> = schema
            .fields()
            .iter()
            .map(|f| quipu_scheduler::scales::places_for(f.name()))
            .collect();
        if of.iter().all(Option::is_none) {
            return None;
        }
        let hidden = |i: usize| of[i].is_some() || schema.field(i).name().starts_with(HIDDEN);
        let visible: Vec<usize> = (0..of.len()).filter(|i| !hidden(*i)).collect();
        let places = visible
            .iter()
            .map(|v| of.iter().position(|o| *o == Some(*v)))
            .collect();
        Some(Places { visible, places })
    }

    /// The schema a client sees.
    pub fn schema(&self, schema: &Schema) -> Schema {
        Schema::new(
            self.visible
                .iter()
                .map(|i| schema.field(*i).clone())
                .collect::<Vec<_>>(),
        )
    }

    /// The batch a client sees: its hidden columns taken off, each text
    /// numeric printed with its values' places, each binary one sent with
    /// them.
    pub fn apply(
        &self,
        batch: RecordBatch,
        fields: &[FieldInfo],
    ) -> Result<RecordBatch, ArrowError> {
        let mut columns = Vec::with_capacity(self.visible.len());
        let mut schema_fields = Vec::with_capacity(self.visible.len());
        for (k, (v, places)) in self.visible.iter().zip(&self.places).enumerate() {
            let column = batch.column(*v);
            let field = batch.schema().field(*v).clone();
            let text = fields
                .get(k)
                .is_some_and(|f| f.format() == FieldFormat::Text);
            match (places, column.data_type()) {
                (Some(p), DataType::Decimal128(_, scale) | DataType::Decimal256(_, scale))
                    if text =>
                {
                    let a = quipu_connectors::dialect::places_text::places_text(
                        column,
                        batch.column(*p),
                        *scale,
                    )?;
                    schema_fields.push(field.with_data_type(DataType::Utf8));
                    columns.push(a);
                }
                (Some(p), DataType::Decimal128(..) | DataType::Decimal256(..)) => {
                    let places = cast(batch.column(*p), &DataType::Int32)?;
                    let a = super::binary_numeric::binary_numerics(
                        column,
                        Some(places.as_primitive::<Int32Type>()),
                    )?;
                    schema_fields.push(field.with_data_type(DataType::Binary));
                    columns.push(a);
                }
                _ => {
                    schema_fields.push(field);
                    columns.push(column.clone());
                }
            }
        }
        RecordBatch::try_new(Arc::new(Schema::new(schema_fields)), columns)
    }
}

/// What every hidden column's name starts with.
const HIDDEN: &str = quipu_scheduler::scales::HIDDEN;

/// A `timestamptz` column, or an array of them, as PostgreSQL prints it in
/// `zone`: `2024-02-29 23:59:59.5+05:30`, `2026-03-08 02:30:00-05` (the
/// offset's minutes only when there are some; pgwire wrote the hours
/// alone). Any other column (or no zone Arrow can read) as PostgreSQL
/// prints it as it is.
fn zoned_text(column: &ArrayRef, zone: Option<&str>) -> Result<ArrayRef, ArrowError> {
    use datafusion::arrow::datatypes::TimeUnit;
    let zoned = |t: &DataType| match (t, zone) {
        (DataType::Timestamp(_, Some(_)), Some(zone)) => Some(DataType::Timestamp(
            TimeUnit::Microsecond,
            Some(zone.into()),
        )),
        _ => None,
    };
    let target = match column.data_type() {
        DataType::List(f) => zoned(f.data_type())
            .map(|t| DataType::List(Arc::new(f.as_ref().clone().with_data_type(t)))),
        t => zoned(t),
    };
    let column = match target {
        Some(t) => cast(column, &t)?,
        None => Arc::clone(column),
    };
    quipu_connectors::dialect::pg_out::text_of(&column)
        .map_err(|e| ArrowError::ComputeError(e.to_string()))
}

/// What the rows of one result need mended after pgwire encoded them:
/// the text-format time columns, whose fractions are trimmed.
#[derive(Clone)]
pub struct Mending {
    times: Vec<usize>,
}

impl Mending {
    pub fn of(fields: &[FieldInfo]) -> Mending {
        Mending {
            times: time_columns(fields),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    pub fn apply(&self, row: DataRow) -> DataRow {
        mend(row, &self.times)
    }
}

/// The columns whose text needs mending (text format, a time type).
fn time_columns(fields: &[FieldInfo]) -> Vec<usize> {
    fields
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.format() == FieldFormat::Text
                && matches!(
                    *f.datatype(),
                    Type::TIMESTAMP
                        | Type::TIMESTAMPTZ
                        | Type::TIME
                        | Type::TIMETZ
                        | Type::INTERVAL
                )
        })
        .map(|(i, _)| i)
        .collect()
}

/// The row with the fractions of `columns` trimmed.
fn mend(row: DataRow, columns: &[usize]) -> DataRow {
    rebuilt(row, |i, v| match columns.contains(&i) {
        true => Some(Bytes::from(trimmed(&v))),
        false => Some(v),
    })
}

/// The row with each value `f(column, value)` (`None`: NULL); NULLs stay.
fn rebuilt(row: DataRow, mut f: impl FnMut(usize, Bytes) -> Option<Bytes>) -> DataRow {
    let count = row.field_count;
    let mut data = BytesMut::with_capacity(row.data.len());
    for (i, value) in fields(row).into_iter().enumerate() {
        match value.and_then(|v| f(i, v)) {
            None => data.put_i32(-1),
            Some(v) => {
                data.put_i32(v.len() as i32);
                data.put_slice(&v);
            }
        }
    }
    DataRow::new(data, count)
}

/// `12:34:56.500000+00` as `12:34:56.5+00`: the run of digits after the
/// seconds' point loses its trailing zeros, and the point goes with them
/// when none is left.
fn trimmed(v: &[u8]) -> Vec<u8> {
    let Some(dot) = v.iter().position(|&b| b == b'.') else {
        return v.to_vec();
    };
    let digits = v[dot + 1..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let kept = v[dot + 1..dot + 1 + digits]
        .iter()
        .rposition(|&b| b != b'0')
        .map_or(0, |p| p + 1);
    let mut out = v[..dot].to_vec();
    if kept > 0 {
        out.extend_from_slice(&v[dot..dot + 1 + kept]);
    }
    out.extend_from_slice(&v[dot + 1 + digits..]);
    out
}

/// The NULLs of a batch's interval columns: (column, null rows), or `None`
/// when it has none. arrow-pg 0.16 encodes a NULL `interval` as
/// `00:00:00` (it reads the value slot without asking whether it is
/// valid, as it does for every other type), so these are set back to
/// NULL after encoding.
pub fn interval_nulls(batch: &RecordBatch) -> Option<Vec<(usize, NullBuffer)>> {
    let columns: Vec<(usize, NullBuffer)> = batch
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.data_type(), DataType::Interval(_)))
        .filter_map(|(i, c)| Some((i, c.logical_nulls().filter(|n| n.null_count() > 0)?)))
        .collect();
    (!columns.is_empty()).then_some(columns)
}

/// `rows` (one batch's, in order) with the NULLs of [`interval_nulls`].
pub fn with_interval_nulls<'a, E: 'a>(
    rows: Box<dyn Iterator<Item = Result<DataRow, E>> + Send + Sync + 'a>,
    nulls: Option<Vec<(usize, NullBuffer)>>,
) -> Box<dyn Iterator<Item = Result<DataRow, E>> + Send + Sync + 'a> {
    let Some(nulls) = nulls else {
        return rows;
    };
    Box::new(rows.enumerate().map(move |(r, row)| {
        row.map(|row| match nulls.iter().any(|(_, n)| n.is_null(r)) {
            false => row,
            true => rebuilt(row, |i, v| {
                let null = nulls.iter().any(|(c, n)| *c == i && n.is_null(r));
                (!null).then_some(v)
            }),
        })
    }))
}

/// The values of a row in text format (`None` for NULL).
pub fn fields(row: DataRow) -> Vec<Option<Bytes>> {
    let mut data = row.data.freeze();
    let mut out = Vec::with_capacity(row.field_count.max(0) as usize);
    for _ in 0..row.field_count {
        let len = data.get_i32();
        if len < 0 {
            out.push(None);
        } else {
            out.push(Some(data.split_to(len as usize)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_as_postgresql_writes_them() {
        for (pgwire, pg) in [
            ("2024-02-29 12:34:56.000000", "2024-02-29 12:34:56"),
            ("2024-02-29 12:34:56.500000", "2024-02-29 12:34:56.5"),
            ("2024-02-29 12:34:56.000000+00", "2024-02-29 12:34:56+00"),
            (
                "2024-02-29 12:34:56.123456-05:30",
                "2024-02-29 12:34:56.123456-05:30",
            ),
            ("12:00:00.010000", "12:00:00.01"),
            ("2024-02-29 12:34:56", "2024-02-29 12:34:56"),
        ] {
            assert_eq!(String::from_utf8(trimmed(pgwire.as_bytes())).unwrap(), pg);
        }
        let mut data = BytesMut::new();
        for v in [Some("1"), None, Some("2024-02-29 12:34:56.000000")] {
            match v {
                None => data.put_i32(-1),
                Some(v) => {
                    data.put_i32(v.len() as i32);
                    data.put_slice(v.as_bytes());
                }
            }
        }
        let row = mend(DataRow::new(data, 3), &[2]);
        assert_eq!(
            fields(row),
            [
                Some(Bytes::from_static(b"1")),
                None,
                Some(Bytes::from_static(b"2024-02-29 12:34:56"))
            ]
        );
    }
}
