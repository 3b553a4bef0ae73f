//! BSON documents as Arrow batches, by the inferred (or declared) schema.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, NullArray, StringArray,
    StructArray, TimestampMillisecondArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::error::Result as DfResult;
use mongodb::bson::{Bson, Document};

pub(super) fn json_text(v: &Bson) -> String {
    match v {
        Bson::String(s) => s.clone(),
        Bson::ObjectId(o) => o.to_hex(),
        Bson::Decimal128(d) => d.to_string(),
        other => other.clone().into_relaxed_extjson().to_string(),
    }
}

/// The doubles that convert to i64 exactly: [-2^63, 2^63).
pub(crate) const I64_MIN_F: f64 = -9_223_372_036_854_775_808.0;
pub(crate) const I64_END_F: f64 = 9_223_372_036_854_775_808.0;

pub(super) fn as_i64(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(x) => Some(*x as i64),
        Bson::Int64(x) => Some(*x),
        // An integral double in range; `as` would saturate 1e300 to i64::MAX.
        Bson::Double(x) if x.fract() == 0.0 && (I64_MIN_F..I64_END_F).contains(x) => {
            Some(*x as i64)
        }
        _ => None,
    }
}

pub(super) fn as_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(x) => Some(*x as f64),
        Bson::Int64(x) => Some(*x as f64),
        Bson::Double(x) => Some(*x),
        _ => None,
    }
}

pub(super) fn present(v: Option<&Bson>) -> Option<&Bson> {
    v.filter(|b| !matches!(b, Bson::Null | Bson::Undefined))
}

/// One column of `t` from the values of a field across documents.
pub(super) fn build(t: &DataType, values: &[Option<&Bson>]) -> DfResult<ArrayRef> {
    let values: Vec<Option<&Bson>> = values.iter().map(|v| present(*v)).collect();
    Ok(match t {
        DataType::Int64 => Arc::new(
            values
                .iter()
                .map(|v| v.and_then(as_i64))
                .collect::<Int64Array>(),
        ),
        DataType::Float64 => Arc::new(
            values
                .iter()
                .map(|v| v.and_then(as_f64))
                .collect::<Float64Array>(),
        ),
        DataType::Boolean => Arc::new(
            values
                .iter()
                .map(|v| v.and_then(|b| b.as_bool()))
                .collect::<BooleanArray>(),
        ),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => Arc::new(
            values
                .iter()
                .map(|v| {
                    v.and_then(|b| b.as_datetime())
                        .map(|d| d.timestamp_millis())
                })
                .collect::<TimestampMillisecondArray>()
                .with_timezone_opt(tz.clone()),
        ),
        DataType::Struct(fields) => {
            let docs: Vec<Option<&Document>> = values
                .iter()
                .map(|v| v.and_then(|b| b.as_document()))
                .collect();
            let children = fields
                .iter()
                .map(|f| {
                    let vals: Vec<Option<&Bson>> = docs
                        .iter()
                        .map(|d| d.and_then(|d| d.get(f.name())))
                        .collect();
                    build(f.data_type(), &vals)
                })
                .collect::<DfResult<Vec<_>>>()?;
            let nulls = NullBuffer::from(docs.iter().map(|d| d.is_some()).collect::<Vec<_>>());
            Arc::new(StructArray::try_new(fields.clone(), children, Some(nulls))?)
        }
        DataType::List(field) => {
            let arrays: Vec<Option<&Vec<Bson>>> = values
                .iter()
                .map(|v| v.and_then(|b| b.as_array()))
                .collect();
            let mut offsets = vec![0i32];
            let mut items: Vec<Option<&Bson>> = Vec::new();
            for a in &arrays {
                if let Some(a) = a {
                    items.extend(a.iter().map(Some));
                }
                offsets.push(items.len() as i32);
            }
            let child = build(field.data_type(), &items)?;
            let nulls = NullBuffer::from(arrays.iter().map(|a| a.is_some()).collect::<Vec<_>>());
            Arc::new(ListArray::try_new(
                field.clone(),
                OffsetBuffer::new(offsets.into()),
                child,
                Some(nulls),
            )?)
        }
        DataType::Null => Arc::new(NullArray::new(values.len())),
        _ => Arc::new(
            values
                .iter()
                .map(|v| v.map(json_text))
                .collect::<StringArray>(),
        ),
    })
}

pub(super) fn to_batch(schema: &SchemaRef, docs: &[Document]) -> DfResult<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            let vals: Vec<Option<&Bson>> = docs.iter().map(|d| d.get(f.name())).collect();
            build(f.data_type(), &vals)
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(docs.len())),
    )?)
}

// ---- filters ---------------------------------------------------------------
