//! SQL as MongoDB filters: the one place a literal becomes BSON (and a
//! text column learns it may hold ObjectIds), for filters, join keys and
//! pipelines.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, expr::InList};
use datafusion::physical_expr::PhysicalExpr;
use mongodb::bson::{Bson, Document, doc};

/// A value as BSON for a field of type `t` (None: not comparable there).
pub(crate) fn bson_value(v: &ScalarValue, t: &DataType) -> Option<Bson> {
    use ScalarValue::*;
    let numeric = matches!(t, DataType::Int64 | DataType::Float64);
    Some(match v {
        _ if v.is_null() => return None,
        Int8(Some(x)) if numeric => Bson::Int64(*x as i64),
        Int16(Some(x)) if numeric => Bson::Int64(*x as i64),
        Int32(Some(x)) if numeric => Bson::Int64(*x as i64),
        Int64(Some(x)) if numeric => Bson::Int64(*x),
        Float64(Some(x)) if numeric && x.is_finite() => Bson::Double(*x),
        Boolean(Some(b)) if *t == DataType::Boolean => Bson::Boolean(*b),
        // Strings compare as strings: `{"$gt": ""}` given as a value stays a value.
        Utf8(Some(s)) | LargeUtf8(Some(s)) | Utf8View(Some(s)) if *t == DataType::Utf8 => {
            Bson::String(s.clone())
        }
        TimestampMillisecond(Some(ms), _) if matches!(t, DataType::Timestamp(_, _)) => {
            Bson::DateTime(mongodb::bson::DateTime::from_millis(*ms))
        }
        TimestampMicrosecond(Some(us), _)
            if matches!(t, DataType::Timestamp(_, _)) && us % 1000 == 0 =>
        {
            Bson::DateTime(mongodb::bson::DateTime::from_millis(us / 1000))
        }
        _ => return None,
    })
}

/// BSON types a text column's values may have besides strings, ObjectIds
/// and null: the reader gives each of them as text (`json_text`), so a
/// query on the column's text must not drop them at the source. Listed
/// positively so that an index on the field still bounds the scan.
pub(super) const TEXT_OTHER_TYPES: [&str; 16] = [
    "double",
    "object",
    "array",
    "binData",
    "bool",
    "date",
    "regex",
    "javascript",
    "int",
    "timestamp",
    "long",
    "decimal",
    "minKey",
    "maxKey",
    "symbol",
    "dbPointer",
];

/// MongoDB's name for a SQL comparison operator, in queries and in
/// aggregation expressions alike.
pub(crate) fn comparison_op(op: Operator) -> Option<&'static str> {
    Some(match op {
        Operator::Eq => "$eq",
        Operator::NotEq => "$ne",
        Operator::Lt => "$lt",
        Operator::LtEq => "$lte",
        Operator::Gt => "$gt",
        Operator::GtEq => "$gte",
        _ => return None,
    })
}

/// The ObjectId a text value names: the reader gives an ObjectId as its 24
/// lower-case hex digits, so only such text can equal one.
pub(super) fn object_id_of(text: &str) -> Option<mongodb::bson::oid::ObjectId> {
    let hex = text.len() == 24
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex.then(|| mongodb::bson::oid::ObjectId::parse_str(text).ok())
        .flatten()
}

/// The query document for SQL's `name <op> value` on field `name` of Arrow
/// type `t`: every row where the SQL predicate is TRUE matches (Quipu
/// re-checks what comes back, so more may match). The one place a SQL
/// comparison becomes a MongoDB query condition, for filters and for join
/// keys: MongoDB compares values of one BSON type only, while a Quipu text
/// column also holds ObjectIds (as hex), decimals and other values as
/// text, which a plain string condition would drop at the source.
pub(crate) fn field_condition(
    name: &str,
    op: Operator,
    value: &ScalarValue,
    t: &DataType,
) -> Option<Document> {
    let mop = comparison_op(op)?;
    let v = bson_value(value, t)?;
    let plain = |mop: &str, v: Bson| {
        let mut d = Document::new();
        d.insert(name, doc! { mop: v });
        d
    };
    let Bson::String(text) = &v else {
        return Some(plain(mop, v));
    };
    // `$ne` matches every value of another type already.
    if op == Operator::NotEq {
        return Some(plain(mop, v));
    }
    let object_ids = match op {
        Operator::Eq => match object_id_of(text) {
            Some(oid) => plain("$eq", Bson::ObjectId(oid)),
            None => return Some(any_of(vec![plain(mop, v.clone()), other_types(name)])),
        },
        // A range over hex text: every ObjectId, settled by the re-check.
        _ => plain("$type", Bson::String("objectId".into())),
    };
    Some(any_of(vec![
        plain(mop, v.clone()),
        object_ids,
        other_types(name),
    ]))
}

/// The query document for SQL's `name IN (values)` (no NULL among them),
/// a superset as [`field_condition`].
pub(crate) fn field_in(name: &str, values: &[&ScalarValue], t: &DataType) -> Option<Document> {
    let mut items = values
        .iter()
        .map(|v| bson_value(v, t))
        .collect::<Option<Vec<_>>>()?;
    if *t != DataType::Utf8 {
        return Some(doc! { name: { "$in": items } });
    }
    let ids: Vec<Bson> = items
        .iter()
        .filter_map(|v| match v {
            Bson::String(s) => object_id_of(s).map(Bson::ObjectId),
            _ => None,
        })
        .collect();
    items.extend(ids);
    Some(any_of(vec![
        doc! { name: { "$in": items } },
        other_types(name),
    ]))
}

pub(super) fn other_types(name: &str) -> Document {
    doc! { name: { "$type": TEXT_OTHER_TYPES.to_vec() } }
}

pub(super) fn any_of(parts: Vec<Document>) -> Document {
    doc! { "$or": parts }
}

/// A filter as a MongoDB query document on top-level fields. Mongo returns a
/// superset where SQL and Mongo semantics differ (NULL vs missing, text
/// columns holding other types), and DataFusion re-applies every filter.
pub fn filter_to_mongo(e: &Expr, schema: &Schema) -> Option<Document> {
    let field = |e: &Expr| match e {
        Expr::Column(c) => schema
            .field_with_name(&c.name)
            .ok()
            .map(|f| (f.name().clone(), f.data_type().clone())),
        _ => None,
    };
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => Some(
                doc! { "$and": [filter_to_mongo(left, schema)?, filter_to_mongo(right, schema)?] },
            ),
            Operator::Or => Some(
                doc! { "$or": [filter_to_mongo(left, schema)?, filter_to_mongo(right, schema)?] },
            ),
            _ => {
                let ((name, t), op, lit) = match (field(left), field(right)) {
                    (Some(f), None) => (f, *op, right.as_ref()),
                    (None, Some(f)) => (f, op.swap()?, left.as_ref()),
                    _ => return None,
                };
                let Expr::Literal(v, _) = lit else {
                    return None;
                };
                field_condition(&name, op, v, &t)
            }
        },
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            let (name, t) = field(expr)?;
            let items = list
                .iter()
                .map(|i| match i {
                    Expr::Literal(v, _) => Some(v),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            field_in(&name, &items, &t)
        }
        Expr::IsNotNull(inner) => {
            let (name, _) = field(inner)?;
            let mut d = Document::new();
            d.insert(name, doc! { "$ne": Bson::Null });
            Some(d)
        }
        _ => None,
    }
}

// ---- table and scan ----------------------------------------------------------

/// The join keys a hash join published (`crate::remote::join_keys`), as
/// MongoDB query documents on the
/// scan's fields.
pub fn join_keys_filter(filters: &[Arc<dyn PhysicalExpr>], schema: &Schema) -> Vec<Document> {
    fn render(c: &crate::remote::join_keys::Cond, schema: &Schema) -> Option<Document> {
        match c {
            crate::remote::join_keys::Cond::False => Some(doc! { "_id": { "$exists": false } }),
            crate::remote::join_keys::Cond::And(parts) => {
                let parts: Vec<Bson> = parts
                    .iter()
                    .filter_map(|p| render(p, schema))
                    .map(Bson::Document)
                    .collect();
                (!parts.is_empty()).then(|| doc! { "$and": parts })
            }
            crate::remote::join_keys::Cond::Or(parts) => {
                let parts = parts
                    .iter()
                    .map(|p| render(p, schema).map(Bson::Document))
                    .collect::<Option<Vec<_>>>()?;
                Some(doc! { "$or": parts })
            }
            crate::remote::join_keys::Cond::In(i, values) => {
                let f = schema.fields().get(*i)?;
                let values: Vec<&ScalarValue> = values.iter().filter(|v| !v.is_null()).collect();
                field_in(f.name(), &values, f.data_type())
            }
            crate::remote::join_keys::Cond::Cmp(i, op, v) => {
                let f = schema.fields().get(*i)?;
                field_condition(f.name(), *op, v, f.data_type())
            }
        }
    }
    crate::remote::join_keys::current(filters)
        .iter()
        .filter_map(|c| render(c, schema))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn string_values_stay_values() {
        let schema = Schema::new(vec![
            Field::new("sku", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]);
        let f = filter_to_mongo(&col("sku").eq(lit("{\"$gt\": \"\"}")), &schema).unwrap();
        assert_eq!(
            f,
            doc! { "$or": [
                { "sku": { "$eq": "{\"$gt\": \"\"}" } },
                { "sku": { "$type": TEXT_OTHER_TYPES.to_vec() } },
            ] }
        );
        // A type mismatch is left to DataFusion.
        assert!(filter_to_mongo(&col("sku").eq(lit(5i64)), &schema).is_none());
        assert_eq!(
            filter_to_mongo(&col("n").lt_eq(lit(5i64)), &schema).unwrap(),
            doc! { "n": { "$lte": 5i64 } }
        );
    }

    /// Text columns hold ObjectIds as hex: a comparison with text reaches
    /// them as ObjectIds (equality) or lets every ObjectId through for the
    /// re-check (ranges), never as a string comparison that drops them.
    #[test]
    fn text_conditions_reach_object_ids() {
        let schema = Schema::new(vec![Field::new("_id", DataType::Utf8, true)]);
        let hex = "65a1b2c3d4e5f60718293a4b";
        let oid = mongodb::bson::oid::ObjectId::parse_str(hex).unwrap();
        let f = filter_to_mongo(&col("_id").eq(lit(hex)), &schema).unwrap();
        assert_eq!(
            f,
            doc! { "$or": [
                { "_id": { "$eq": hex } },
                { "_id": { "$eq": oid } },
                { "_id": { "$type": TEXT_OTHER_TYPES.to_vec() } },
            ] }
        );
        // Upper-case hex is not how the reader gives an ObjectId.
        let f = filter_to_mongo(&col("_id").eq(lit(hex.to_uppercase())), &schema).unwrap();
        assert!(!format!("{f:?}").contains("ObjectId"), "{f:?}");
        let f = filter_to_mongo(&col("_id").gt(lit("0")), &schema).unwrap();
        assert_eq!(
            f,
            doc! { "$or": [
                { "_id": { "$gt": "0" } },
                { "_id": { "$type": "objectId" } },
                { "_id": { "$type": TEXT_OTHER_TYPES.to_vec() } },
            ] }
        );
        let f = filter_to_mongo(
            &col("_id").in_list(vec![lit(hex), lit("x")], false),
            &schema,
        )
        .unwrap();
        assert_eq!(
            f,
            doc! { "$or": [
                { "_id": { "$in": [hex, "x", oid] } },
                { "_id": { "$type": TEXT_OTHER_TYPES.to_vec() } },
            ] }
        );
    }

    #[test]
    fn join_key_in_lists_become_in_filters() {
        use crate::remote::join_keys::fixtures;
        let m = join_keys_filter(&[fixtures::sku_range_and_list()], &fixtures::schema());
        assert_eq!(m.len(), 1);
        assert!(m[0].to_string().contains("$in"), "{}", m[0]);
    }
}
