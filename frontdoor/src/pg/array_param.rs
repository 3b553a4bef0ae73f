//! Array parameters sent as PostgreSQL's array text (`{a,"b,c",NULL}`)
//! with no type (psycopg sends a list of `str` so) or as `text[]`.
//!
//! arrow-pg read an untyped one by cutting the text at every comma: a
//! quoted element with a comma became two, `NULL` became the string
//! `"NULL"` and `{}` an array of one empty string, so `s = ANY (%s)` with
//! `['a,b', None]` or `[]` silently answered otherwise than PostgreSQL.
//! pgwire's `text[]` reader took a quoted `"NULL"` and `""` for NULL.
//! [`parse`] reads the text as PostgreSQL's `array_in` does, for one
//! dimension.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{ParamValues, ScalarValue};
use pgwire::api::Type;
use pgwire::api::portal::Portal;
use pgwire::error::PgWireResult;

use super::errors::error;

/// The elements of a one-dimensional array's text, NULL for an unquoted
/// `NULL` ([`quipu_connectors::dialect::array_text::parse`]); PostgreSQL's
/// 22P02 for a malformed one.
pub(super) fn parse(text: &str) -> PgWireResult<Vec<Option<String>>> {
    use quipu_connectors::dialect::array_text::{NotArrayText, parse};
    parse(text).map_err(|e| match e {
        NotArrayText::Malformed(why) => error(
            "22P02",
            format!("malformed array literal: \"{text}\" ({why})"),
        ),
        NotArrayText::Nested => error(
            "0A000",
            "multidimensional array parameters are not supported",
        ),
    })
}

/// `params` with each array parameter sent as text, typed `text[]`,
/// `varchar[]` or not at all, read by [`parse`]: a list of text, cast to
/// the plan's element type where the plan gives one. An untyped
/// parameter the plan reads as a scalar is left as it is.
pub(super) fn with_array_text(
    portal: &Portal<impl Clone>,
    planned: &[Option<DataType>],
    mut params: ParamValues,
) -> PgWireResult<ParamValues> {
    let ParamValues::List(values) = &mut params else {
        return Ok(params);
    };
    for (i, value) in values.iter_mut().enumerate() {
        let declared = portal.statement.parameter_types.get(i).cloned().flatten();
        let as_text = declared
            .as_ref()
            .is_none_or(|t| [Type::UNKNOWN, Type::TEXT_ARRAY, Type::VARCHAR_ARRAY].contains(t));
        let element = match planned.get(i).cloned().flatten() {
            Some(DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)) => {
                Some(f.data_type().clone())
            }
            Some(_) => continue,
            None => None,
        };
        let Some(Some(bytes)) = portal.parameters.get(i) else {
            continue;
        };
        if !as_text || portal.parameter_format.is_binary(i) || !bytes.starts_with(b"{") {
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        let elements: Vec<ScalarValue> = parse(&text)?.into_iter().map(ScalarValue::Utf8).collect();
        let list = ScalarValue::List(ScalarValue::new_list_nullable(&elements, &DataType::Utf8));
        value.value = match element {
            Some(e) if e != DataType::Utf8 => list
                .cast_to(&DataType::List(Arc::new(Field::new_list_field(e, true))))
                .map_err(|e| error("22P02", format!("array parameter ${}: {e}", i + 1)))?,
            _ => list,
        };
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn elements(text: &str) -> Vec<Option<String>> {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn some(items: &[&str]) -> Vec<Option<String>> {
        items.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn reads_array_text_as_postgresql() {
        assert_eq!(elements("{}"), Vec::<Option<String>>::new());
        assert_eq!(elements(" { } "), Vec::<Option<String>>::new());
        assert_eq!(elements("{a,b}"), some(&["a", "b"]));
        assert_eq!(elements("{ a b , c }"), some(&["a b", "c"]));
        assert_eq!(elements(r#"{"a,b","q\"x"}"#), some(&["a,b", "q\"x"]));
        assert_eq!(
            elements(r#"{NULL,"NULL",null,""}"#),
            vec![None, Some("NULL".into()), None, Some(String::new())]
        );
        assert_eq!(elements(r#"{a\,b,\ c}"#), some(&["a,b", " c"]));
        assert_eq!(elements(r#"{"{x}"}"#), some(&["{x}"]));
    }

    #[test]
    fn refuses_malformed_array_text() {
        for bad in ["{", "{a", "{a,}", "{,a}", "{a}x", r#"{"a}"#, "{a\"b}", "a"] {
            assert!(parse(bad).is_err(), "{bad} was read");
        }
        assert!(
            parse("{{1,2},{3,4}}")
                .unwrap_err()
                .to_string()
                .contains("multidimensional")
        );
    }
}
