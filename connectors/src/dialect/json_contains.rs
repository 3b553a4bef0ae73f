//! `jsonb`'s containment and existence operators over JSON text: `a @>
//! b`, `a <@ b`, `j ? 'key'`, `j ?| ARRAY[...]`, `j ?& ARRAY[...]`, and
//! the functions behind them (`jsonb_contains`, `jsonb_contained`,
//! `jsonb_exists`, `jsonb_exists_any`, `jsonb_exists_all`). DataFusion 55
//! refused them ("Binary operator 'AtArrow' is not supported in the
//! physical expr", "Operator ? is not yet supported").
//!
//! They follow PostgreSQL's `JsonbDeepContains`: an object contains an
//! object whose every key it has with a value that contains that key's
//! value; an array contains an array whose every element it has (a
//! scalar equal, a container contained by one of its containers),
//! however ordered and repeated; a top-level array contains a scalar it
//! has; scalars contain equal scalars. Numbers are equal by value (`1.0`
//! and `1`), strings by their characters. `?` asks for a top-level key of
//! an object, a string element of an array, or a string scalar itself.
//! A repeated key is its last value, as `jsonb` keeps it. Text that is
//! not JSON is `22P02`, as the cast to `jsonb` says.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;
use serde_json::value::RawValue;

use crate::error::DataException;

/// What a function asks.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Ask {
    /// `a @> b`.
    Contains,
    /// `a <@ b`.
    Contained,
    /// `j ? k`.
    Exists,
    /// `j ?| keys`.
    ExistsAny,
    /// `j ?& keys`.
    ExistsAll,
}

impl Ask {
    fn name(self) -> &'static str {
        match self {
            Ask::Contains => "jsonb_contains",
            Ask::Contained => "jsonb_contained",
            Ask::Exists => "jsonb_exists",
            Ask::ExistsAny => "jsonb_exists_any",
            Ask::ExistsAll => "jsonb_exists_all",
        }
    }
}

/// The functions, for the session's registry.
pub fn functions() -> Vec<ScalarUDF> {
    [
        Ask::Contains,
        Ask::Contained,
        Ask::Exists,
        Ask::ExistsAny,
        Ask::ExistsAll,
    ]
    .into_iter()
    .map(|ask| {
        ScalarUDF::new_from_impl(JsonbTest {
            ask,
            signature: Signature::any(2, Volatility::Immutable),
        })
    })
    .collect()
}

/// The function an operator with JSON text on its left is, if it is one
/// of these; `right_text`: whether its right side is text too (`@>` and
/// `<@` of arrays are DataFusion's).
pub fn operator(op: &BinaryOperator, right_text: bool) -> Option<&'static str> {
    Some(match op {
        BinaryOperator::AtArrow if right_text => Ask::Contains.name(),
        BinaryOperator::ArrowAt if right_text => Ask::Contained.name(),
        BinaryOperator::Question => Ask::Exists.name(),
        BinaryOperator::QuestionPipe => Ask::ExistsAny.name(),
        BinaryOperator::QuestionAnd => Ask::ExistsAll.name(),
        _ => return None,
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonbTest {
    ask: Ask,
    signature: Signature,
}

impl ScalarUDFImpl for JsonbTest {
    fn name(&self) -> &str {
        self.ask.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let docs = cast(&arrays[0], &DataType::Utf8)?;
        let docs = docs.as_string::<i32>();
        let mut out = Vec::with_capacity(docs.len());
        match self.ask {
            Ask::Contains | Ask::Contained => {
                let other = cast(&arrays[1], &DataType::Utf8)?;
                let other = other.as_string::<i32>();
                for i in 0..docs.len() {
                    if docs.is_null(i) || other.is_null(i) {
                        out.push(None);
                        continue;
                    }
                    let (a, b) = (parse(docs.value(i))?, parse(other.value(i))?);
                    out.push(Some(match self.ask {
                        Ask::Contains => contains_top(&a, &b),
                        _ => contains_top(&b, &a),
                    }));
                }
            }
            Ask::Exists | Ask::ExistsAny | Ask::ExistsAll => {
                let keys = key_reader(&arrays[1], self.ask)?;
                for i in 0..docs.len() {
                    let (false, Some(keys)) = (docs.is_null(i), keys(i)?) else {
                        out.push(None);
                        continue;
                    };
                    let doc = parse(docs.value(i))?;
                    let has = |k: &String| exists(&doc, k);
                    out.push(Some(match self.ask {
                        Ask::ExistsAll => keys.iter().flatten().all(has),
                        _ => keys.iter().flatten().any(has),
                    }));
                }
            }
        }
        let out: ArrayRef = Arc::new(BooleanArray::from(out));
        super::pg_text::shaped_like(&args.args, out)
    }
}

/// For each row, the keys asked for (None: NULL, so the answer is NULL):
/// one text for `?`, a text array (a list, or its PostgreSQL text
/// `'{a,b}'`) for `?|` and `?&`, whose NULL elements are skipped.
fn key_reader(a: &ArrayRef, ask: Ask) -> Result<super::array_text::TextArrays> {
    if matches!(a.data_type(), DataType::List(_)) || ask != Ask::Exists {
        return super::array_text::text_arrays(a);
    }
    let text = cast(a, &DataType::Utf8)?;
    Ok(Box::new(move |i| {
        let text = text.as_string::<i32>();
        Ok((!text.is_null(i)).then(|| vec![Some(text.value(i).to_string())]))
    }))
}

/// A JSON value as `jsonb` compares it.
#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

/// A number by its value: sign, significant digits without leading or
/// trailing zeros, and the power of ten of the last of them (0 is no
/// digits). `1.50`, `1.5` and `15e-1` are one number.
#[derive(Debug, PartialEq)]
struct Number {
    negative: bool,
    digits: String,
    exponent: i64,
}

fn not_json(s: &str) -> datafusion::error::DataFusionError {
    DataException::error(
        "22P02",
        &format!("invalid input syntax for type json: \"{s}\""),
    )
}

/// `doc` read as `jsonb` reads it. The whole text is checked first
/// (serde_json's limit of 128 levels of nesting holds the reading's
/// depth).
fn parse(doc: &str) -> Result<Json> {
    let raw: &RawValue = serde_json::from_str(doc).map_err(|_| not_json(doc))?;
    value(raw.get(), doc)
}

fn value(raw: &str, doc: &str) -> Result<Json> {
    let bad = |_| not_json(doc);
    Ok(match raw.as_bytes().first() {
        Some(b'{') => {
            // A map keeps the last of repeated keys, as `jsonb` does.
            let fields: BTreeMap<String, &RawValue> = serde_json::from_str(raw).map_err(bad)?;
            Json::Object(
                fields
                    .into_iter()
                    .map(|(k, v)| Ok((k, value(v.get(), doc)?)))
                    .collect::<Result<_>>()?,
            )
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(raw).map_err(bad)?;
            Json::Array(
                items
                    .into_iter()
                    .map(|v| value(v.get(), doc))
                    .collect::<Result<_>>()?,
            )
        }
        Some(b'"') => Json::String(serde_json::from_str(raw).map_err(bad)?),
        Some(b't') => Json::Bool(true),
        Some(b'f') => Json::Bool(false),
        Some(b'n') => Json::Null,
        _ => Json::Number(number(raw).ok_or_else(|| not_json(doc))?),
    })
}

/// A JSON number's text (already checked) by its value.
fn number(text: &str) -> Option<Number> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all: String = format!("{whole}{fraction}");
    let exponent = exp - fraction.len() as i64;
    let trimmed_end = all.trim_end_matches('0');
    let exponent = exponent + (all.len() - trimmed_end.len()) as i64;
    let digits = trimmed_end.trim_start_matches('0').to_string();
    Some(match digits.is_empty() {
        // Zero, of either sign.
        true => Number {
            negative: false,
            digits,
            exponent: 0,
        },
        false => Number {
            negative,
            digits,
            exponent,
        },
    })
}

fn is_container(j: &Json) -> bool {
    matches!(j, Json::Array(_) | Json::Object(_))
}

/// `a @> b` at the top: an object only contains an object (and only an
/// object one); a top-level array also contains a scalar it has, and a
/// scalar no array.
fn contains_top(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Object(_), _) | (_, Json::Object(_)) => contains(a, b),
        (Json::Array(items), b) if !is_container(b) => items.contains(b),
        (a, Json::Array(_)) if !is_container(a) => false,
        _ => contains(a, b),
    }
}

/// `a @> b` below the top (PostgreSQL's `JsonbDeepContains`).
fn contains(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Object(a), Json::Object(b)) => b.iter().all(|(k, bv)| {
            a.get(k)
                .is_some_and(|av| match (is_container(av), is_container(bv)) {
                    (true, true) => contains(av, bv),
                    (false, false) => av == bv,
                    _ => false,
                })
        }),
        (Json::Array(a), Json::Array(b)) => b.iter().all(|bv| match is_container(bv) {
            false => a.contains(bv),
            true => a.iter().any(|av| is_container(av) && contains(av, bv)),
        }),
        (a, b) if !is_container(a) && !is_container(b) => a == b,
        _ => false,
    }
}

/// `j ? k`: a top-level key of an object, a string element of an array,
/// or a string scalar that is `k`.
fn exists(j: &Json, k: &str) -> bool {
    match j {
        Json::Object(fields) => fields.contains_key(k),
        Json::Array(items) => items.iter().any(|v| matches!(v, Json::String(s) if s == k)),
        Json::String(s) => s == k,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(a: &str, b: &str) -> bool {
        contains_top(&parse(a).unwrap(), &parse(b).unwrap())
    }

    #[test]
    fn containment_is_postgresqls() {
        // Cases from PostgreSQL's documentation (8.14.3) and its
        // regression tests.
        assert!(has(r#""foo""#, r#""foo""#));
        assert!(has("[1, 2, 3]", "[1, 3]"));
        assert!(has("[1, 2, 3]", "[3, 1]"));
        assert!(has("[1, 2, 3]", "[1, 2, 2]"));
        assert!(has(
            r#"{"product": "PostgreSQL", "version": 9.4, "jsonb": true}"#,
            r#"{"version": 9.4}"#
        ));
        assert!(!has("[1, 2, [1, 3]]", "[1, 3]"));
        assert!(has("[1, 2, [1, 3]]", "[[1, 3]]"));
        assert!(has(r#"{"foo": {"bar": "baz"}}"#, r#"{"foo": {}}"#));
        assert!(!has(r#"{"foo": {"bar": "baz"}}"#, r#"{"bar": "baz"}"#));
        assert!(has(r#"["foo", "bar"]"#, r#""foo""#));
        assert!(!has(r#""foo""#, r#"["foo"]"#));
        assert!(has("[1.0, 2]", "[1]"));
        assert!(has(r#"{"a": 1.50}"#, r#"{"a": 15e-1}"#));
        assert!(!has(r#"{"a": [1, 2]}"#, r#"{"a": 1}"#));
        assert!(has(r#"{"a": [1, 2]}"#, r#"{"a": [2]}"#));
        assert!(!has(r#"{"a": {"b": 1}}"#, r#"{"a": [1]}"#));
        assert!(!has("[1]", "{}"));
        assert!(!has("{}", "[]"));
        assert!(has("[]", "[]"));
        assert!(has("{}", "{}"));
        assert!(has("[null]", "null"));
        assert!(has("0", "-0.0e5"));
        assert!(!has("1", "true"));
        // The last of repeated keys.
        assert!(has(r#"{"a": 1, "a": 2}"#, r#"{"a": 2}"#));
        assert!(!has(r#"{"a": 1, "a": 2}"#, r#"{"a": 1}"#));
        assert!(parse("{").is_err());
        assert!(parse("nope").is_err());
    }

    #[test]
    fn keys_exist_as_postgresql_finds_them() {
        let j = |s: &str| parse(s).unwrap();
        assert!(exists(&j(r#"{"a": 1, "b": null}"#), "b"));
        assert!(!exists(&j(r#"{"a": {"c": 1}}"#), "c"));
        assert!(exists(&j(r#"["a", "b"]"#), "b"));
        assert!(!exists(&j(r#"[1, ["b"]]"#), "b"));
        assert!(!exists(&j("[1]"), "1"));
        assert!(exists(&j(r#""a""#), "a"));
        assert!(!exists(&j("null"), "null"));
    }

    #[test]
    fn numbers_are_equal_by_value() {
        let n = |s: &str| number(s).unwrap();
        assert_eq!(n("1.50"), n("1.5"));
        assert_eq!(n("15e-1"), n("1.5"));
        assert_eq!(n("100"), n("1e2"));
        assert_eq!(n("-0"), n("0.000"));
        assert_ne!(n("-1"), n("1"));
        assert_ne!(n("10"), n("1"));
    }
}
