//! asyncpg's type introspection, answered by the front door.
//!
//! asyncpg decodes every type it does not know by itself (the arrays of
//! anything but `text` and `oid`, among them `integer[]`, `bigint[]`,
//! `numeric[]`) after asking the server about it with one query
//! (`asyncpg/introspection.py`, `INTRO_LOOKUP_TYPES`): a recursive CTE over
//! `pg_type` with, in a `CASE`, a correlated recursive CTE for domains and
//! correlated `array_agg` subqueries for composite types. DataFusion cannot
//! run it ("Physical plan does not support logical expression
//! ScalarSubquery"), and its `array_agg(atttypid)` column would be an
//! `integer[]`, itself unknown to asyncpg, so asyncpg asked again and again
//! and `SELECT ARRAY[1, 2]` never returned. Quipu has no domain, composite,
//! range or enum types, so the answer is short: each asked type, and the
//! element type of an array, from PostgreSQL's built-in types
//! (`postgres_types::Type`), in the columns and order (deepest first) the
//! query gives.

use std::sync::Arc;

use pgwire::api::Type;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::results::{DataRowEncoder, FieldInfo, QueryResponse, Response};
use pgwire::error::PgWireResult;
use postgres_types::Kind;

/// Whether SQL text is asyncpg's type introspection query (the same
/// shape in every asyncpg release since 0.18: a CTE `typeinfo_tree` over
/// these columns).
pub(super) fn is_asyncpg_type_lookup(sql: &str) -> bool {
    ["typeinfo_tree", "attrtypoids", "range_subtype", "elemdelim"]
        .iter()
        .all(|w| sql.contains(w))
}

/// The parameter: the OIDs asked about.
pub(super) fn parameter_types() -> Vec<Type> {
    vec![Type::OID_ARRAY]
}

/// The columns asyncpg reads, with types it decodes without asking:
/// `kind` as bytes (asyncpg compares it with `b'c'`).
pub(super) fn fields(format: &Format) -> Vec<FieldInfo> {
    [
        ("oid", Type::OID),
        ("ns", Type::TEXT),
        ("name", Type::TEXT),
        ("kind", Type::BYTEA),
        ("basetype", Type::OID),
        ("elemtype", Type::OID),
        ("elemdelim", Type::TEXT),
        ("range_subtype", Type::OID),
        ("attrtypoids", Type::OID_ARRAY),
        ("attrnames", Type::TEXT_ARRAY),
        ("depth", Type::INT4),
        ("basetype_name", Type::TEXT),
        ("elemtype_name", Type::TEXT),
        ("range_subtype_name", Type::TEXT),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, t))| FieldInfo::new(name.into(), None, None, t, format.format_for(i)))
    .collect()
}

/// One row: a type at a depth of the walk from the asked types.
struct Row {
    ty: Type,
    depth: i32,
}

/// The rows for the OIDs asked: each known type at depth 0, an array's
/// element at depth 1, deepest first, each type once (its deepest).
fn rows(oids: &[u32]) -> Vec<Row> {
    let mut rows: Vec<Row> = vec![];
    let add = |ty: Type, depth: i32, rows: &mut Vec<Row>| {
        match rows.iter_mut().find(|r| r.ty == ty) {
            Some(r) => r.depth = r.depth.max(depth),
            None => rows.push(Row { ty, depth }),
        };
    };
    for oid in oids {
        let Some(ty) = Type::from_oid(*oid) else {
            continue;
        };
        if let Kind::Array(elem) = ty.kind() {
            add(elem.clone(), 1, &mut rows);
        }
        add(ty, 0, &mut rows);
    }
    rows.sort_by_key(|r| -r.depth);
    rows
}

/// The kind letter of `pg_type.typtype`.
fn kind_letter(ty: &Type) -> &'static [u8] {
    match ty.kind() {
        Kind::Pseudo => b"p",
        Kind::Enum(_) => b"e",
        Kind::Range(_) => b"r",
        Kind::Multirange(_) => b"m",
        Kind::Domain(_) => b"d",
        Kind::Composite(_) => b"c",
        _ => b"b",
    }
}

/// Answers the query for a bound portal.
pub(super) fn answer<S: Clone>(portal: &Portal<S>) -> PgWireResult<Response> {
    let oids: Vec<Option<u32>> = portal
        .parameter::<Vec<Option<u32>>>(0, &Type::OID_ARRAY)?
        .unwrap_or_default();
    let oids: Vec<u32> = oids.into_iter().flatten().collect();
    let fields = Arc::new(fields(&portal.result_column_format));
    let mut encoder = DataRowEncoder::new(fields.clone());
    let mut out = vec![];
    for row in rows(&oids) {
        let elem = match row.ty.kind() {
            Kind::Array(elem) => Some(elem.clone()),
            _ => None,
        };
        encoder.encode_field(&row.ty.oid())?;
        encoder.encode_field(&row.ty.schema().to_string())?;
        encoder.encode_field(&row.ty.name().to_string())?;
        encoder.encode_field(&kind_letter(&row.ty).to_vec())?;
        encoder.encode_field(&None::<u32>)?;
        encoder.encode_field(&elem.as_ref().map_or(0, |e| e.oid()))?;
        encoder.encode_field(&elem.as_ref().map(|_| ",".to_string()))?;
        encoder.encode_field(&None::<u32>)?;
        encoder.encode_field(&None::<Vec<u32>>)?;
        encoder.encode_field(&None::<Vec<String>>)?;
        encoder.encode_field(&row.depth)?;
        encoder.encode_field(&None::<String>)?;
        encoder.encode_field(&elem.as_ref().map(|e| e.name().to_string()))?;
        encoder.encode_field(&None::<String>)?;
        out.push(Ok(encoder.take_row()));
    }
    Ok(Response::Query(QueryResponse::new(
        fields,
        futures::stream::iter(out),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_bring_their_element_first() {
        let rows = rows(&[Type::INT4_ARRAY.oid(), Type::INT8_ARRAY.oid(), 999_999]);
        let seen: Vec<(u32, i32)> = rows.iter().map(|r| (r.ty.oid(), r.depth)).collect();
        assert_eq!(seen, vec![(23, 1), (20, 1), (1007, 0), (1016, 0)]);
        assert_eq!(kind_letter(&Type::INT4_ARRAY), b"b");
        assert!(is_asyncpg_type_lookup(
            "WITH RECURSIVE typeinfo_tree(oid, ns, name, kind, basetype, elemtype, elemdelim, \
             range_subtype, attrtypoids, attrnames, depth) AS (...)"
        ));
        assert!(!is_asyncpg_type_lookup("SELECT typname FROM pg_type"));
    }
}
