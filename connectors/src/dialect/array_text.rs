//! PostgreSQL's array text (`{a,"b,c",NULL}`) of one dimension, read as
//! `array_in` reads it: by the PostgreSQL front door for array parameters
//! (`frontdoor/src/pg/array_param.rs`), by the JSON path operators
//! (`#>`, `#>>`, `dialect/json_access.rs`) and by `?|` and `?&`
//! (`dialect/json_contains.rs`), which also take a list ([`text_arrays`]),
//! and by a cast of text to an array ([`array_in`]).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListBuilder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{
    Coercion, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignatureClass, Volatility,
};

/// For each row of a `text[]` argument, its elements (None: the array is
/// NULL).
pub type TextArrays = Box<dyn Fn(usize) -> datafusion::common::Result<Option<Vec<Option<String>>>>>;

/// The rows of a `text[]` argument, a list (`ARRAY['a', 'b']`) or its
/// PostgreSQL text (`'{a,b}'`, `22P02` "malformed array literal" when it
/// is not one).
pub fn text_arrays(a: &ArrayRef) -> datafusion::common::Result<TextArrays> {
    if let DataType::List(_) = a.data_type() {
        let list = cast(a, &DataType::new_list(DataType::Utf8, true))?;
        return Ok(Box::new(move |i| {
            let list = list.as_list::<i32>();
            if list.is_null(i) {
                return Ok(None);
            }
            let items = list.value(i);
            let items = items.as_string::<i32>();
            Ok(Some(
                (0..items.len())
                    .map(|k| (!items.is_null(k)).then(|| items.value(k).to_string()))
                    .collect(),
            ))
        }));
    }
    let text = cast(a, &DataType::Utf8)?;
    Ok(Box::new(move |i| {
        let text = text.as_string::<i32>();
        if text.is_null(i) {
            return Ok(None);
        }
        let value = text.value(i);
        parse(value).map(Some).map_err(|_| {
            crate::error::DataException::error(
                "22P02",
                &format!("malformed array literal: \"{value}\""),
            )
        })
    }))
}

/// Why array text is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotArrayText {
    /// Malformed, with PostgreSQL's reason.
    Malformed(&'static str),
    /// An array of arrays (`{{1,2},{3,4}}`), which these readers do not take.
    Nested,
}

/// The elements of a one-dimensional array's text, NULL for an unquoted
/// `NULL`.
pub fn parse(text: &str) -> Result<Vec<Option<String>>, NotArrayText> {
    let malformed = NotArrayText::Malformed;
    let mut chars = text.trim().chars().peekable();
    if chars.next() != Some('{') {
        return Err(malformed("it must start with \"{\""));
    }
    let skip_space = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
    };
    let mut elements = Vec::new();
    skip_space(&mut chars);
    if chars.peek() == Some(&'}') {
        chars.next();
    } else {
        loop {
            skip_space(&mut chars);
            let mut element = String::new();
            // Whether any of it was quoted or escaped: then it is text,
            // even `"NULL"` or `""`.
            let mut literal = false;
            match chars.peek() {
                Some('"') => {
                    chars.next();
                    literal = true;
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some('\\') => match chars.next() {
                                Some(c) => element.push(c),
                                None => return Err(malformed("unexpected end of input")),
                            },
                            Some(c) => element.push(c),
                            None => return Err(malformed("unexpected end of input")),
                        }
                    }
                    skip_space(&mut chars);
                }
                Some('{') => return Err(NotArrayText::Nested),
                _ => {
                    // Unquoted: up to the next unescaped `,` or `}`,
                    // without the white space around it.
                    let mut kept = 0;
                    while let Some(&c) = chars.peek() {
                        match c {
                            ',' | '}' => break,
                            '"' | '{' => return Err(malformed("unexpected character")),
                            '\\' => {
                                chars.next();
                                match chars.next() {
                                    Some(c) => element.push(c),
                                    None => return Err(malformed("unexpected end of input")),
                                }
                                literal = true;
                                kept = element.len();
                            }
                            c => {
                                chars.next();
                                element.push(c);
                                if !c.is_whitespace() {
                                    kept = element.len();
                                }
                            }
                        }
                    }
                    element.truncate(kept);
                    if element.is_empty() && !literal {
                        return Err(malformed("an element is empty"));
                    }
                }
            }
            match literal || !element.eq_ignore_ascii_case("NULL") {
                true => elements.push(Some(element)),
                false => elements.push(None),
            }
            match chars.next() {
                Some(',') => continue,
                Some('}') => break,
                _ => return Err(malformed("expected \",\" or \"}\"")),
            }
        }
    }
    skip_space(&mut chars);
    match chars.next() {
        None => Ok(elements),
        Some(_) => Err(malformed("junk after closing right brace")),
    }
}

/// The name of [`array_in`].
pub const ARRAY_IN: &str = "quipu_array_in";

/// `quipu_array_in(text)`: the elements of PostgreSQL's array text, a
/// `text[]` (NULL for an unquoted `NULL`). `scheduler/src/text_forms.rs`
/// plans a cast of text to an array (`'{1,2}'::int[]`, `s::text[]`) as
/// this, cast to the array's type element by element: Arrow's cast read
/// the whole text as one element (`'{a,b}'::text[]` was `{"{a,b}"}`) or
/// failed (`Cannot cast string '{1,2}' to value of Int32 type`).
pub fn array_in() -> ScalarUDF {
    let text = Coercion::new_exact(TypeSignatureClass::Native(
        datafusion::common::types::logical_string(),
    ));
    ScalarUDF::new_from_impl(ArrayIn {
        signature: Signature::coercible(vec![text], Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayIn {
    signature: Signature,
}

impl ScalarUDFImpl for ArrayIn {
    fn name(&self) -> &str {
        ARRAY_IN
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::new_list(DataType::Utf8, true))
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let texts = cast(&arrays[0], &DataType::Utf8)?;
        let mut out = ListBuilder::new(StringBuilder::new());
        for text in texts.as_string::<i32>() {
            let Some(text) = text else {
                out.append_null();
                continue;
            };
            match parse(text) {
                Ok(elements) => {
                    for e in elements {
                        out.values().append_option(e);
                    }
                    out.append(true);
                }
                Err(NotArrayText::Nested) => {
                    return Err(crate::error::DataException::error(
                        "0A000",
                        &format!(
                            "array text of more than one dimension is not supported: \"{text}\""
                        ),
                    ));
                }
                Err(NotArrayText::Malformed(why)) => {
                    return Err(crate::error::DataException::error(
                        "22P02",
                        &format!("malformed array literal: \"{text}\" ({why})"),
                    ));
                }
            }
        }
        super::pg_text::shaped_like(&args.args, Arc::new(out.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn one_dimension_is_read_as_array_in_reads_it() {
        let some = |v: &[&str]| Some(v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>());
        assert_eq!(parse("{a,b}").ok(), some(&["a", "b"]));
        assert_eq!(
            parse(" { a , \"b c\" ,\"\\\"\"} ").ok(),
            some(&["a", "b c", "\""])
        );
        assert_eq!(parse("{}").ok(), Some(vec![]));
        assert_eq!(
            parse("{a,NULL,\"NULL\"}").ok(),
            Some(vec![Some("a".into()), None, Some("NULL".into())])
        );
        assert_eq!(parse("a,b").ok(), None);
        assert_eq!(parse("{a,,b}").ok(), None);
        assert_eq!(parse("{{a}}").ok(), None);
    }
}
