//! Schema inference: a collection's fields and their Arrow types, from a
//! sample of its documents.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use quipu_catalog::{ColumnDef, SourceDef, TableDef, TableName, TableOrigin};

use super::client::{MongoClients, bad, mongo_reason};
use crate::error::Result;

/// Documents sampled per collection to infer its schema.
pub(super) const SAMPLE: i64 = 1000;

/// What a sample says about one field.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Null,
    Int,
    Float,
    Str,
    Bool,
    Date,
    Doc(BTreeMap<String, Kind>),
    List(Box<Kind>),
    Mixed,
}

pub(super) fn kind_of(v: &Bson) -> Kind {
    match v {
        Bson::Null | Bson::Undefined => Kind::Null,
        Bson::Int32(_) | Bson::Int64(_) => Kind::Int,
        Bson::Double(_) => Kind::Float,
        Bson::String(_) | Bson::ObjectId(_) | Bson::Decimal128(_) | Bson::Symbol(_) => Kind::Str,
        Bson::Boolean(_) => Kind::Bool,
        Bson::DateTime(_) => Kind::Date,
        Bson::Document(d) => Kind::Doc(d.iter().map(|(k, v)| (k.clone(), kind_of(v))).collect()),
        Bson::Array(items) => {
            Kind::List(Box::new(items.iter().map(kind_of).fold(Kind::Null, merge)))
        }
        _ => Kind::Mixed,
    }
}

pub(super) fn merge(a: Kind, b: Kind) -> Kind {
    use Kind::*;
    match (a, b) {
        (Null, x) | (x, Null) => x,
        (Int, Float) | (Float, Int) => Float,
        (Doc(mut x), Doc(y)) => {
            for (k, v) in y {
                let merged = match x.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                x.insert(k, merged);
            }
            Doc(x)
        }
        (List(x), List(y)) => List(Box::new(merge(*x, *y))),
        (x, y) if x == y => x,
        _ => Mixed,
    }
}

pub(super) fn arrow_type(k: &Kind) -> DataType {
    match k {
        Kind::Int => DataType::Int64,
        Kind::Float => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::Date => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        Kind::Doc(fields) if !fields.is_empty() => DataType::Struct(
            fields
                .iter()
                .map(|(n, k)| Field::new(n, arrow_type(k), true))
                .collect(),
        ),
        Kind::List(inner)
            if matches!(
                **inner,
                Kind::Int | Kind::Float | Kind::Str | Kind::Bool | Kind::Date
            ) =>
        {
            DataType::List(Arc::new(Field::new("item", arrow_type(inner), true)))
        }
        _ => DataType::Utf8,
    }
}

/// A collection's key as its columns show it: `_id` (every document has
/// one, unique in its collection) when it is one of them.
pub fn primary_key<'a>(mut columns: impl Iterator<Item = &'a str>) -> Vec<String> {
    match columns.any(|c| c == "_id") {
        true => vec!["_id".to_string()],
        false => vec![],
    }
}

/// Lists the collections (or the `collections` allow-list) and infers each
/// one's schema from a sample. Empty collections are skipped with a
/// warning: they need a declared schema.
pub async fn discover(clients: &MongoClients, source: &SourceDef) -> Result<Vec<TableDef>> {
    let db = clients.database(source)?;
    let allow: Vec<String> = source
        .options
        .get("collections")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut names = db.list_collection_names().await.map_err(|e| {
        bad(
            source,
            format!("cannot list collections: {}", mongo_reason(&e)),
        )
    })?;
    names.retain(|n| !n.starts_with("system.") && !n.starts_with('_'));
    if !allow.is_empty() {
        names.retain(|n| allow.contains(n));
    }
    names.sort();
    let mut tables = Vec::new();
    for name in names {
        let coll = db.collection::<Document>(&name);
        let docs: Vec<Document> = coll
            .find(doc! {})
            .limit(SAMPLE)
            .await
            .map_err(|e| {
                bad(
                    source,
                    format!("cannot sample {name}: {}", mongo_reason(&e)),
                )
            })?
            .try_collect()
            .await
            .map_err(|e| {
                bad(
                    source,
                    format!("cannot sample {name}: {}", mongo_reason(&e)),
                )
            })?;
        if docs.is_empty() {
            tracing::warn!(source = %source.name, "collection {name} is empty: declare its schema with `quipu catalog add-table`");
            continue;
        }
        // Field order: first seen.
        let mut order: Vec<String> = Vec::new();
        let mut kinds: HashMap<String, Kind> = HashMap::new();
        for d in &docs {
            for (k, v) in d {
                let kind = kind_of(v);
                match kinds.remove(k) {
                    Some(old) => {
                        kinds.insert(k.clone(), merge(old, kind));
                    }
                    None => {
                        order.push(k.clone());
                        kinds.insert(k.clone(), kind);
                    }
                }
            }
        }
        let primary_key = primary_key(order.iter().map(String::as_str));
        let columns = order
            .iter()
            .map(|k| ColumnDef {
                name: k.clone(),
                data_type: arrow_type(&kinds[k]).to_string(),
                nullable: true,
                source_type: None,
            })
            .collect();
        tables.push(TableDef {
            name: TableName {
                source: source.name.clone(),
                schema: "public".into(),
                table: name.clone(),
            },
            origin: TableOrigin::Discovered,
            location: Some(name),
            format: None,
            file_extension: None,
            columns,
            partition_columns: vec![],
            declared_schema: false,
            partitions: None,
            primary_key,
        });
    }
    Ok(tables)
}

// ---- BSON to Arrow ---------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Fields};
    use mongodb::bson::doc;

    #[test]
    fn inference_merges_and_widens() {
        let a = kind_of(&Bson::Document(
            doc! { "n": 1, "loc": { "id": 1 }, "tags": ["a"] },
        ));
        let b = kind_of(&Bson::Document(
            doc! { "n": 1.5, "loc": { "type": "store" }, "tags": [] },
        ));
        let Kind::Doc(m) = merge(a, b) else { panic!() };
        assert_eq!(arrow_type(&m["n"]), DataType::Float64);
        assert_eq!(
            arrow_type(&m["loc"]),
            DataType::Struct(Fields::from(vec![
                Field::new("id", DataType::Int64, true),
                Field::new("type", DataType::Utf8, true)
            ]))
        );
        assert!(matches!(arrow_type(&m["tags"]), DataType::List(_)));
        assert_eq!(merge(Kind::Str, Kind::Int), Kind::Mixed);
    }
}
