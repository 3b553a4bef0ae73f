//! The binary COPY decoder: rows straight into Arrow arrays (no per-row
//! allocation, no text parsing).

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    IntervalMonthDayNanoBuilder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, IntervalMonthDayNano, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::types::Wire;

/// Rows per Arrow batch.
const BATCH_ROWS: usize = 8192;

/// Decodes PostgreSQL's binary COPY format into Arrow batches.
pub(super) struct CopyDecoder {
    schema: SchemaRef,
    /// How each column's bytes are read (`types::Wire`).
    wires: Vec<Wire>,
    builders: Vec<Box<dyn ArrayBuilder>>,
    rows: usize,
    buf: BytesMut,
    header_done: bool,
    ended: bool,
    ready: Vec<RecordBatch>,
    /// Decimals must fit their column's type exactly (`PgScanExec::exact_decimals`).
    exact: bool,
}

pub(super) const PG_EPOCH_DAYS: i32 = 10_957;
pub(super) const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The builder of a column read as `w`, of Arrow type `t` (`w.arrow()`
/// but for the name and nullability of a list's element field).
fn builder_for(w: &Wire, t: &DataType) -> Box<dyn ArrayBuilder> {
    match w {
        Wire::Bool => Box::new(BooleanBuilder::new()),
        Wire::Int2 => Box::new(Int16Builder::new()),
        Wire::Int4 => Box::new(Int32Builder::new()),
        Wire::Int8 => Box::new(Int64Builder::new()),
        Wire::Float4 => Box::new(Float32Builder::new()),
        Wire::Float8 => Box::new(Float64Builder::new()),
        Wire::Numeric(p, s) => Box::new(
            Decimal128Builder::new()
                .with_precision_and_scale(*p, *s)
                .unwrap_or_default(),
        ),
        Wire::Date => Box::new(Date32Builder::new()),
        Wire::Timestamp | Wire::TimestampTz => {
            let tz = match t {
                DataType::Timestamp(_, tz) => tz.clone(),
                _ => None,
            };
            Box::new(TimestampMicrosecondBuilder::new().with_timezone_opt(tz))
        }
        Wire::Interval => Box::new(IntervalMonthDayNanoBuilder::new()),
        Wire::Bytea => Box::new(BinaryBuilder::new()),
        Wire::Text => Box::new(StringBuilder::new()),
        Wire::Array(element) => {
            let field = match t {
                DataType::List(f) => f.clone(),
                _ => Arc::new(Field::new("item", element.arrow(), true)),
            };
            let values = builder_for(element, field.data_type());
            Box::new(ListBuilder::new(values).with_field(field))
        }
    }
}

macro_rules! append {
    ($b:expr, $ty:ty, $v:expr) => {
        $b.as_any_mut()
            .downcast_mut::<$ty>()
            .expect("builder matches the schema")
            .append_option($v)
    };
}

impl CopyDecoder {
    /// A decoder of rows of `schema`; an error names a column whose type
    /// is not read from PostgreSQL.
    pub(super) fn new(schema: SchemaRef, exact: bool) -> std::result::Result<Self, String> {
        let wires = schema
            .fields()
            .iter()
            .map(|f| {
                Wire::of_arrow(f.data_type()).ok_or_else(|| {
                    format!(
                        "column {} has type {}, which is not read from PostgreSQL",
                        f.name(),
                        f.data_type()
                    )
                })
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let builders = wires
            .iter()
            .zip(schema.fields())
            .map(|(w, f)| builder_for(w, f.data_type()))
            .collect();
        Ok(CopyDecoder {
            schema,
            wires,
            builders,
            rows: 0,
            buf: BytesMut::new(),
            header_done: false,
            ended: false,
            ready: Vec::new(),
            exact,
        })
    }

    pub(super) fn take_full(&mut self) -> Option<RecordBatch> {
        (!self.ready.is_empty()).then(|| self.ready.remove(0))
    }

    pub(super) fn push(&mut self, chunk: Bytes) -> std::result::Result<(), String> {
        self.buf.extend_from_slice(&chunk);
        if !self.header_done {
            if self.buf.len() < 19 {
                return Ok(());
            }
            if &self.buf[..11] != b"PGCOPY\n\xff\r\n\0" {
                return Err("unexpected COPY header from the server".into());
            }
            let ext = u32::from_be_bytes(self.buf[15..19].try_into().unwrap()) as usize;
            if self.buf.len() < 19 + ext {
                return Ok(());
            }
            self.buf.advance(19 + ext);
            self.header_done = true;
        }
        while !self.ended {
            match self.tuple()? {
                true => {
                    if self.rows >= BATCH_ROWS {
                        let b = self.flush()?;
                        self.ready.push(b);
                    }
                }
                false => break,
            }
        }
        Ok(())
    }

    /// Decodes one tuple if it is complete in the buffer.
    fn tuple(&mut self) -> std::result::Result<bool, String> {
        let buf = &self.buf[..];
        if buf.len() < 2 {
            return Ok(false);
        }
        let n = i16::from_be_bytes([buf[0], buf[1]]);
        if n == -1 {
            self.ended = true;
            self.buf.advance(2);
            return Ok(false);
        }
        let expected = self.schema.fields().len().max(1);
        if n as usize != expected {
            return Err(format!("COPY row has {n} fields, expected {expected}"));
        }
        // Check the whole tuple is here before decoding anything.
        let mut pos = 2;
        let mut spans = Vec::with_capacity(n as usize);
        for _ in 0..n {
            if buf.len() < pos + 4 {
                return Ok(false);
            }
            let len = i32::from_be_bytes(buf[pos..pos + 4].try_into().unwrap());
            pos += 4;
            if len < 0 {
                spans.push(None);
            } else {
                let len = len as usize;
                if buf.len() < pos + len {
                    return Ok(false);
                }
                spans.push(Some((pos, len)));
                pos += len;
            }
        }
        if !self.schema.fields().is_empty() {
            for (i, span) in spans.into_iter().enumerate() {
                let v = span.map(|(p, l)| &buf[p..p + l]);
                decode_value(&self.wires[i], &mut self.builders[i], v, self.exact)
                    .map_err(|e| format!("column {}: {e}", self.schema.field(i).name()))?;
            }
        }
        self.rows += 1;
        self.buf.advance(pos);
        Ok(true)
    }

    fn flush(&mut self) -> std::result::Result<RecordBatch, String> {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        let rows = std::mem::take(&mut self.rows);
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| e.to_string())
    }

    pub(super) fn finish(&mut self) -> std::result::Result<Option<RecordBatch>, String> {
        if let Some(b) = self.ready.pop() {
            return Ok(Some(b));
        }
        if self.rows == 0 {
            return Ok(None);
        }
        self.flush().map(Some)
    }
}

/// The error for PostgreSQL's `infinity` or `-infinity` in a `date` or
/// `timestamp[tz]` column (sent as the type's greatest or least value):
/// Quipu's dates and times are finite, and the sentinel read as a time
/// overflowed (a panic, or in a release build a wrong date).
fn infinite(kind: &str) -> String {
    format!(
        "a value is infinity or -infinity, which Quipu does not read as a {kind} (its dates \
         and times are finite): filter it out, or read the column through a view at the \
         source that turns it into NULL (`CASE WHEN isfinite(c) THEN c END`)"
    )
}

pub(super) fn be<const N: usize>(v: &[u8]) -> std::result::Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

fn decode_value(
    w: &Wire,
    b: &mut Box<dyn ArrayBuilder>,
    v: Option<&[u8]>,
    exact: bool,
) -> std::result::Result<(), String> {
    match w {
        Wire::Bool => append!(b, BooleanBuilder, v.map(|v| v.first() == Some(&1))),
        Wire::Int2 => append!(
            b,
            Int16Builder,
            v.map(be::<2>).transpose()?.map(i16::from_be_bytes)
        ),
        Wire::Int4 => append!(
            b,
            Int32Builder,
            v.map(be::<4>).transpose()?.map(i32::from_be_bytes)
        ),
        Wire::Int8 => append!(
            b,
            Int64Builder,
            v.map(be::<8>).transpose()?.map(i64::from_be_bytes)
        ),
        Wire::Float4 => append!(
            b,
            Float32Builder,
            v.map(be::<4>).transpose()?.map(f32::from_be_bytes)
        ),
        Wire::Float8 => append!(
            b,
            Float64Builder,
            v.map(be::<8>).transpose()?.map(f64::from_be_bytes)
        ),
        Wire::Date => {
            let days = v.map(be::<4>).transpose()?.map(i32::from_be_bytes);
            let days = days
                .map(|x| match x {
                    i32::MAX | i32::MIN => Err(infinite("date")),
                    x => x
                        .checked_add(PG_EPOCH_DAYS)
                        .ok_or_else(|| format!("the date of day {x} is out of range")),
                })
                .transpose()?;
            append!(b, Date32Builder, days)
        }
        Wire::Timestamp | Wire::TimestampTz => {
            let micros = v.map(be::<8>).transpose()?.map(i64::from_be_bytes);
            let micros = micros
                .map(|x| match x {
                    i64::MAX | i64::MIN => Err(infinite("timestamp")),
                    x => x
                        .checked_add(PG_EPOCH_MICROS)
                        .ok_or_else(|| format!("the timestamp {x} is out of range")),
                })
                .transpose()?;
            append!(b, TimestampMicrosecondBuilder, micros)
        }
        &Wire::Numeric(p, s) => {
            let d = v
                .map(|v| match decode_numeric(v, s)? {
                    // An unconstrained numeric is read as numeric(38,10)
                    // (`types::Wire::of_udt`): a refresh cannot widen it.
                    (n, cut) if exact && (cut || !fits_precision(n, p)) && (p, s) == (38, 10) => {
                        Err(
                            "a value has more than 10 places or 28 integer digits, more than \
                             Quipu reads of a numeric without a precision (numeric(38,10)): \
                             cast the column to a numeric(p,s) in a view at the source and \
                             read the view"
                                .to_string(),
                        )
                    }
                    (n, cut) if exact && (cut || !fits_precision(n, p)) => Err(format!(
                        "a value does not fit numeric({p},{s}), the column's type in the \
                         catalog: the column has changed at the source; run `quipu catalog \
                         refresh` for this source"
                    )),
                    (n, _) => Ok(n),
                })
                .transpose()?;
            append!(b, Decimal128Builder, d)
        }
        // Microseconds (8 bytes), days (4), months (4).
        Wire::Interval => {
            let span = v
                .map(be::<16>)
                .transpose()?
                .map(|x| {
                    let micros = i64::from_be_bytes(x[0..8].try_into().expect("8 of 16 bytes"));
                    let days = i32::from_be_bytes(x[8..12].try_into().expect("4 of 16 bytes"));
                    let months = i32::from_be_bytes(x[12..16].try_into().expect("4 of 16 bytes"));
                    micros
                        .checked_mul(1000)
                        .map(|nanos| IntervalMonthDayNano::new(months, days, nanos))
                        .ok_or_else(|| {
                            "an interval's hours, minutes and seconds hold at most about 292 \
                             years here (64-bit nanoseconds)"
                                .to_string()
                        })
                })
                .transpose()?;
            append!(b, IntervalMonthDayNanoBuilder, span)
        }
        Wire::Bytea => append!(b, BinaryBuilder, v),
        Wire::Text => {
            let s = v
                .map(|v| std::str::from_utf8(v).map_err(|e| format!("invalid UTF-8: {e}")))
                .transpose()?;
            append!(b, StringBuilder, s)
        }
        Wire::Array(element) => {
            let list = b
                .as_any_mut()
                .downcast_mut::<ListBuilder<Box<dyn ArrayBuilder>>>()
                .expect("builder matches the schema");
            match v {
                None => list.append_null(),
                Some(v) => {
                    for item in array_elements(v)? {
                        decode_value(element, list.values(), item, exact)?;
                    }
                    list.append(true);
                }
            }
        }
    }
    Ok(())
}

/// The elements of PostgreSQL's binary array (dimensions, flags, element
/// type, each dimension's length and lower bound, then each element's
/// length and bytes, -1 for NULL). Quipu reads an array as a list: one of
/// more dimensions, or whose subscripts do not start at 1, is refused by
/// name, since a list would answer `a[1]`, `array_length(a, 2)` and
/// `array_lower` otherwise than PostgreSQL.
fn array_elements(v: &[u8]) -> std::result::Result<Vec<Option<&[u8]>>, String> {
    let word = |at: usize| -> std::result::Result<i32, String> {
        v.get(at..at + 4)
            .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| "short array".to_string())
    };
    let dims = word(0)?;
    match dims {
        0 => return Ok(Vec::new()),
        1 => {}
        n => {
            return Err(format!(
                "a value is an array of {n} dimensions; Quipu reads an array column as a list \
                 of one dimension: read it through a view at the source (`array_to_string`, \
                 or one dimension per column)"
            ));
        }
    }
    let (len, lower) = (word(12)?, word(16)?);
    if lower != 1 {
        return Err(format!(
            "a value is an array whose subscripts start at {lower}, not 1; Quipu reads an \
             array column as a list from 1: read it through a view at the source that \
             rebuilds it (`array(SELECT unnest(c))`)"
        ));
    }
    let mut at = 20;
    // Each element takes at least its 4-byte length: a count beyond that
    // is a broken value, found short below, not an allocation to make.
    let mut items = Vec::with_capacity((len.max(0) as usize).min(v.len() / 4));
    for _ in 0..len {
        let n = word(at)?;
        at += 4;
        if n < 0 {
            items.push(None);
        } else {
            let item = v.get(at..at + n as usize).ok_or("short array")?;
            items.push(Some(item));
            at += n as usize;
        }
    }
    Ok(items)
}

/// Whether `n` (an unscaled decimal) has at most `precision` digits.
pub(super) fn fits_precision(n: i128, precision: u8) -> bool {
    10i128
        .checked_pow(precision as u32)
        .is_none_or(|limit| n.unsigned_abs() < limit as u128)
}

/// PostgreSQL's binary numeric (base-10000 digits) as an integer at `scale`,
/// and whether non-zero digits below that scale were cut off.
pub(super) fn decode_numeric(v: &[u8], scale: i8) -> std::result::Result<(i128, bool), String> {
    if v.len() < 8 {
        return Err("short numeric".into());
    }
    let ndigits = u16::from_be_bytes([v[0], v[1]]) as usize;
    let weight = i16::from_be_bytes([v[2], v[3]]) as i32;
    let sign = u16::from_be_bytes([v[4], v[5]]);
    // PostgreSQL's NaN, Infinity and -Infinity (no digits: an infinity
    // read as a number was 0).
    match sign {
        0xC000 => return Err("NaN does not fit a decimal column".into()),
        0xD000 | 0xF000 => {
            return Err("Infinity or -Infinity does not fit a decimal column".into());
        }
        _ => {}
    }
    if v.len() < 8 + 2 * ndigits {
        return Err("short numeric".into());
    }
    let mut acc: i128 = 0;
    let mut cut = false;
    let scale = scale as i32;
    for i in 0..ndigits {
        let digit = u16::from_be_bytes([v[8 + 2 * i], v[9 + 2 * i]]) as i128;
        let exp10 = 4 * (weight - i as i32) + scale;
        let term = if exp10 >= 0 {
            digit
                .checked_mul(
                    10i128
                        .checked_pow(exp10 as u32)
                        .ok_or("numeric out of range")?,
                )
                .ok_or("numeric out of range")?
        } else if exp10 > -5 {
            let div = 10i128.pow((-exp10) as u32);
            cut |= digit % div != 0;
            digit / div
        } else {
            cut |= digit != 0;
            0
        };
        acc = acc.checked_add(term).ok_or("numeric out of range")?;
    }
    Ok((if sign == 0x4000 { -acc } else { acc }, cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: &[u16], weight: i16, neg: bool, dscale: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((ndigits.len() as u16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend((if neg { 0x4000u16 } else { 0 }).to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in ndigits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    /// PostgreSQL's binary array: dimensions, flags, element type, each
    /// dimension's (length, lower bound), then the elements.
    fn array(dims: &[(i32, i32)], items: &[Option<&[u8]>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((dims.len() as i32).to_be_bytes());
        v.extend(0i32.to_be_bytes());
        v.extend(23u32.to_be_bytes());
        for (len, lower) in dims {
            v.extend(len.to_be_bytes());
            v.extend(lower.to_be_bytes());
        }
        for item in items {
            match item {
                None => v.extend((-1i32).to_be_bytes()),
                Some(b) => {
                    v.extend((b.len() as i32).to_be_bytes());
                    v.extend(*b);
                }
            }
        }
        v
    }

    #[test]
    fn arrays_decode_as_lists_of_one_dimension_from_one() {
        use datafusion::arrow::array::{Array, AsArray, Int32Array};
        let wire = Wire::Array(Box::new(Wire::Int4));
        let mut b = builder_for(&wire, &wire.arrow());
        let (one, two) = (7i32.to_be_bytes(), (-2i32).to_be_bytes());
        decode_value(
            &wire,
            &mut b,
            Some(&array(&[(3, 1)], &[Some(&one), None, Some(&two)])),
            true,
        )
        .unwrap();
        decode_value(&wire, &mut b, Some(&array(&[], &[])), true).unwrap();
        decode_value(&wire, &mut b, None, true).unwrap();
        let list = b.finish();
        let list = list.as_list::<i32>();
        assert_eq!(
            list.value(0)
                .as_primitive::<datafusion::arrow::datatypes::Int32Type>(),
            &Int32Array::from(vec![Some(7), None, Some(-2)])
        );
        assert_eq!(
            (list.value(1).len(), list.is_null(1), list.is_null(2)),
            (0, false, true)
        );
        // Two dimensions, a lower bound of 0, a cut-off element.
        let err = array_elements(&array(&[(1, 1), (1, 1)], &[Some(&one)])).unwrap_err();
        assert!(err.contains("of 2 dimensions"), "{err}");
        let err = array_elements(&array(&[(1, 0)], &[Some(&one)])).unwrap_err();
        assert!(err.contains("start at 0"), "{err}");
        let mut short = array(&[(2, 1)], &[Some(&one), Some(&two)]);
        short.truncate(short.len() - 1);
        assert!(array_elements(&short).is_err());
    }

    #[test]
    fn numerics_decode_at_the_column_scale() {
        // 1234.05 = [1234, 0500] weight 0
        assert_eq!(
            decode_numeric(&numeric(&[1234, 500], 0, false, 2), 2).unwrap(),
            (123_405, false)
        );
        // -0.07 = [0700] weight -1
        assert_eq!(
            decode_numeric(&numeric(&[700], -1, true, 2), 2).unwrap(),
            (-7, false)
        );
        // 12345678 = [1234, 5678] weight 1
        assert_eq!(
            decode_numeric(&numeric(&[1234, 5678], 1, false, 0), 2).unwrap(),
            (1_234_567_800, false)
        );
        assert_eq!(
            decode_numeric(&numeric(&[], 0, false, 0), 2).unwrap(),
            (0, false)
        );
        // 1.2345 read at scale 2 loses digits (issue 17: a column altered
        // from numeric(12,2) to numeric(14,4)); 1.2300 does not.
        assert_eq!(
            decode_numeric(&numeric(&[1, 2345], 0, false, 4), 2).unwrap(),
            (123, true)
        );
        assert_eq!(
            decode_numeric(&numeric(&[1, 2300], 0, false, 4), 2).unwrap(),
            (123, false)
        );
        // A whole base-10000 digit below the scale.
        assert_eq!(
            decode_numeric(&numeric(&[1, 0, 7], 0, false, 12), 2).unwrap(),
            (100, true)
        );
        assert!(fits_precision(99_999, 5) && !fits_precision(100_000, 5));
        assert!(fits_precision(-99_999, 5) && !fits_precision(-100_000, 5));
    }
}
