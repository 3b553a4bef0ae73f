//! PostgreSQL's JSON access operators and functions over JSON text:
//! `j -> 'key'`, `j -> 2`, `j ->> 'key'`, `j #> '{a,0}'`, `j #>> '{a,0}'`,
//! `json[b]_extract_path[_text](j, 'a', '0')`, `json[b]_array_length(j)`
//! and `json[b]_typeof(j)`.
//!
//! Quipu holds `json` and `jsonb` values as text (a PostgreSQL source's
//! columns, and `'...'::jsonb`, `dialect/text_types.rs`); DataFusion 55
//! refused the operators ("Operator -> is not yet supported"). An
//! expression planner plans them over text as these functions.
//!
//! What `->` and `#>` give is the value's text as it stands in the input:
//! PostgreSQL's for both types, since a `json` value keeps its text as
//! written and a `jsonb` value's text is already `jsonb`'s. `->>` and `#>>`
//! give a string without its quotes and escapes, JSON `null` as NULL, any
//! other value as its text. A key of an array, an index of an object, a
//! missing key or index: NULL. An index below 0 counts from the end. A
//! repeated key is its last value, as PostgreSQL's processing functions
//! read `json`. Text that is not JSON is `22P02` "invalid input syntax for
//! type json".

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DFSchema, Result, plan_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;
use serde_json::value::RawValue;

use crate::error::DataException;

/// What a function does.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Access {
    /// `->` / `->>`: one key (text) or index (integer).
    Field,
    /// `#>` / `#>>`: a path written as a text array, `'{a,0}'`.
    Path,
    /// `json_extract_path[_text]`: the path's steps as arguments.
    Steps,
    ArrayLength,
    TypeOf,
    /// `json[b]_array_elements[_text]`'s values, as a list the caller
    /// unnests (`syntax.rs`, `from_functions.rs`).
    Elements,
}

/// The list of a JSON array's values (`json_array_elements`).
pub const ELEMENTS: &str = "quipu_json_elements";
/// The same, each as `->>` gives it (`json_array_elements_text`).
pub const ELEMENTS_TEXT: &str = "quipu_json_elements_text";

const FIELD: &str = "quipu_json_field";
const FIELD_TEXT: &str = "quipu_json_field_text";
const PATH: &str = "quipu_json_path";
const PATH_TEXT: &str = "quipu_json_path_text";

/// One of the functions.
fn function(name: &'static str, access: Access, text: bool) -> ScalarUDF {
    ScalarUDF::new_from_impl(JsonAccess {
        name,
        access,
        text,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// The functions, for the session's registry.
pub fn functions() -> Vec<ScalarUDF> {
    let f = |name, access, text, aliases: &[&'static str]| {
        function(name, access, text).with_aliases(aliases.iter().copied())
    };
    vec![
        f(FIELD, Access::Field, false, &[]),
        f(FIELD_TEXT, Access::Field, true, &[]),
        f(PATH, Access::Path, false, &[]),
        f(PATH_TEXT, Access::Path, true, &[]),
        f(
            "json_extract_path",
            Access::Steps,
            false,
            &["jsonb_extract_path"],
        ),
        f(
            "json_extract_path_text",
            Access::Steps,
            true,
            &["jsonb_extract_path_text"],
        ),
        f(
            "json_array_length",
            Access::ArrayLength,
            false,
            &["jsonb_array_length"],
        ),
        f("json_typeof", Access::TypeOf, false, &["jsonb_typeof"]),
        f(ELEMENTS, Access::Elements, false, &[]),
        f(ELEMENTS_TEXT, Access::Elements, true, &[]),
    ]
}

/// Plans `->`, `->>`, `#>` and `#>>` with text on the left, and `@>`,
/// `<@`, `?`, `?|`, `?&` (`json_contains.rs`): an expression planner,
/// consulted before DataFusion's own.
#[derive(Debug, Default)]
pub struct JsonOperators;

impl ExprPlanner for JsonOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let text = |e: &Expr| {
            e.get_type(schema)
                .is_ok_and(|t| is_text(&t) || t == DataType::Null)
        };
        if !text(&expr.left) {
            return Ok(PlannerResult::Original(expr));
        }
        let udf = match expr.op {
            BinaryOperator::Arrow => Arc::new(function(FIELD, Access::Field, false)),
            BinaryOperator::LongArrow => Arc::new(function(FIELD_TEXT, Access::Field, true)),
            BinaryOperator::HashArrow => Arc::new(function(PATH, Access::Path, false)),
            BinaryOperator::HashLongArrow => Arc::new(function(PATH_TEXT, Access::Path, true)),
            ref op => match super::json_contains::operator(op, text(&expr.right)) {
                Some(name) => crate::session::scalar_function(name),
                None => return Ok(PlannerResult::Original(expr)),
            },
        };
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(udf, vec![expr.left, expr.right]),
        )))
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonAccess {
    name: &'static str,
    access: Access,
    /// `->>`, `#>>`, `..._text`: a string without its quotes.
    text: bool,
    signature: Signature,
}

impl ScalarUDFImpl for JsonAccess {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.access {
            Access::ArrayLength => DataType::Int32,
            Access::Elements => DataType::new_list(DataType::Utf8, true),
            _ => DataType::Utf8,
        })
    }

    /// What `->`, `#>` and `json_extract_path` give is JSON itself.
    fn return_field_from_args(&self, _: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(match self.access {
            Access::ArrayLength => Arc::new(Field::new(self.name, DataType::Int32, true)),
            Access::TypeOf => Arc::new(Field::new(self.name, DataType::Utf8, true)),
            // Each value's text ([`element_field`]).
            Access::Elements => {
                Arc::new(Field::new(self.name, DataType::List(element_field()), true))
            }
            _ if self.text => Arc::new(Field::new(self.name, DataType::Utf8, true)),
            _ => super::pg_text::json_field(self.name),
        })
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        let json = |t: &DataType| is_text(t) || *t == DataType::Null;
        let step = |t: &DataType| is_text(t) || *t == DataType::Null || t.is_integer();
        let ok = match (self.access, types) {
            (Access::ArrayLength | Access::TypeOf | Access::Elements, [j]) => json(j),
            (Access::Field, [j, k]) => json(j) && step(k),
            (Access::Path, [j, p]) => json(j) && (json(p) || matches!(p, DataType::List(_))),
            (Access::Steps, [j, steps @ ..]) => json(j) && steps.iter().all(json),
            _ => false,
        };
        if !ok {
            let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
            return plan_err!(
                "function {}({}) does not exist: it takes json text{}",
                self.name,
                types.join(", "),
                match self.access {
                    Access::Field => " and a key (text) or an index (integer)",
                    Access::Path => " and a path (a text array)",
                    Access::Steps => " and the path's keys (text)",
                    Access::ArrayLength | Access::TypeOf | Access::Elements => "",
                }
            );
        }
        Ok(types
            .iter()
            .map(|t| match t {
                DataType::List(_) => DataType::new_list(DataType::Utf8, true),
                t if t.is_integer() => DataType::Int64,
                _ => DataType::Utf8,
            })
            .collect())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let docs = cast(&arrays[0], &DataType::Utf8)?;
        let docs = docs.as_string::<i32>();
        let rows = docs.len();
        let mut steps_of: Vec<Steps> = vec![];
        for a in &arrays[1..] {
            steps_of.push(step_reader(a, self.access)?);
        }
        let steps = |i: usize| -> Result<Option<Vec<Step>>> {
            let mut all = vec![];
            for read in &steps_of {
                match read(i)? {
                    Some(s) => all.extend(s),
                    None => return Ok(None),
                }
            }
            Ok(Some(all))
        };
        let out: ArrayRef = match self.access {
            Access::ArrayLength => {
                let mut out = Vec::with_capacity(rows);
                for i in 0..rows {
                    out.push(match docs.is_null(i) {
                        true => None,
                        false => array_length(docs.value(i))?,
                    });
                }
                Arc::new(Int32Array::from(out))
            }
            Access::TypeOf => {
                let mut out = Vec::with_capacity(rows);
                for i in 0..rows {
                    out.push(match docs.is_null(i) {
                        true => None,
                        false => Some(type_of(docs.value(i))?),
                    });
                }
                Arc::new(StringArray::from(out))
            }
            Access::Elements => {
                let mut out = datafusion::arrow::array::ListBuilder::new(
                    datafusion::arrow::array::StringBuilder::new(),
                );
                out = out.with_field(element_field());
                for i in 0..rows {
                    if docs.is_null(i) {
                        out.append(false);
                        continue;
                    }
                    for raw in elements(docs.value(i))? {
                        out.values().append_option(match self.text {
                            true => as_text(raw)?,
                            false => Some(raw.trim().to_string()),
                        });
                    }
                    out.append(true);
                }
                Arc::new(out.finish())
            }
            _ => {
                let mut out: Vec<Option<String>> = Vec::with_capacity(rows);
                for i in 0..rows {
                    let (false, Some(path)) = (docs.is_null(i), steps(i)?) else {
                        out.push(None);
                        continue;
                    };
                    let found = walk(docs.value(i), &path)?;
                    out.push(match (found, self.text) {
                        (None, _) => None,
                        (Some(raw), false) => Some(raw.to_string()),
                        (Some(raw), true) => as_text(raw)?,
                    });
                }
                Arc::new(StringArray::from(out))
            }
        };
        super::pg_text::shaped_like(&args.args, out)
    }
}

/// One step: `-> 'k'` a key (of an object only), `-> 2` an index (of an
/// array only), a path's step text read as either (an array reads it as
/// an integer).
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(i64),
    Either(String),
}

type Steps = Box<dyn Fn(usize) -> Result<Option<Vec<Step>>>>;

/// For each row, the steps an argument gives (None: a NULL, so the
/// result is NULL).
fn step_reader(a: &ArrayRef, access: Access) -> Result<Steps> {
    let a = Arc::clone(a);
    Ok(match a.data_type() {
        t if t.is_integer() => {
            let ints = cast(&a, &DataType::Int64)?;
            Box::new(move |i| {
                let ints = ints.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                Ok((!ints.is_null(i)).then(|| vec![Step::Index(ints.value(i))]))
            })
        }
        // A path: a text array, a NULL element making it NULL.
        t if matches!(t, DataType::List(_)) || access == Access::Path => {
            let arrays = super::array_text::text_arrays(&a)?;
            Box::new(move |i| {
                Ok(arrays(i)?.and_then(|elements| {
                    elements.into_iter().map(|s| s.map(Step::Either)).collect()
                }))
            })
        }
        _ => {
            let text = cast(&a, &DataType::Utf8)?;
            Box::new(move |i| {
                let text = text.as_string::<i32>();
                if text.is_null(i) {
                    return Ok(None);
                }
                let value = text.value(i).to_string();
                Ok(Some(vec![match access {
                    Access::Steps => Step::Either(value),
                    _ => Step::Key(value),
                }]))
            })
        }
    })
}

fn not_json(s: &str) -> datafusion::error::DataFusionError {
    DataException::error(
        "22P02",
        &format!("invalid input syntax for type json: \"{s}\""),
    )
}

/// The raw text of the value at `path` in the JSON text `doc`, None where
/// there is none.
fn walk<'a>(doc: &'a str, path: &[Step]) -> Result<Option<&'a str>> {
    let mut here: &'a str = doc;
    // The whole text is checked, as PostgreSQL checks its input: by the
    // first step's reading of an object or an array, else here.
    if path.is_empty() || !matches!(doc.trim_start().as_bytes().first(), Some(b'{' | b'[')) {
        let _: &RawValue = serde_json::from_str(doc).map_err(|_| not_json(doc))?;
    }
    for step in path {
        let next = match here.trim_start().as_bytes().first() {
            Some(b'{') => {
                let fields: BTreeMap<String, &'a RawValue> =
                    serde_json::from_str(here).map_err(|_| not_json(doc))?;
                match step {
                    Step::Key(key) | Step::Either(key) => fields.get(key.as_str()).map(|v| v.get()),
                    Step::Index(_) => None,
                }
            }
            Some(b'[') => {
                let items: Vec<&'a RawValue> =
                    serde_json::from_str(here).map_err(|_| not_json(doc))?;
                let index = match step {
                    Step::Index(n) => Some(*n),
                    Step::Key(_) => None,
                    // A path's step is text; an array reads it as an integer.
                    Step::Either(k) => k.trim().parse::<i64>().ok(),
                };
                index
                    .map(|n| if n < 0 { items.len() as i64 + n } else { n })
                    .and_then(|at| usize::try_from(at).ok())
                    .and_then(|at| items.get(at))
                    .map(|v| v.get())
            }
            _ => None,
        };
        match next {
            Some(v) => here = v,
            None => return Ok(None),
        }
    }
    Ok(Some(here.trim()))
}

/// `->>`'s text of a value: a string unquoted, `null` as NULL, others as
/// they are written.
fn as_text(raw: &str) -> Result<Option<String>> {
    if raw.starts_with('"') {
        return serde_json::from_str::<String>(raw)
            .map(Some)
            .map_err(|_| not_json(raw));
    }
    Ok((raw != "null").then(|| raw.to_string()))
}

/// `json_array_length`: PostgreSQL refuses a scalar (22023) and an object.
fn array_length(doc: &str) -> Result<Option<i32>> {
    if doc.trim_start().starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(doc).map_err(|_| not_json(doc))?;
        return Ok(Some(items.len() as i32));
    }
    match type_of(doc)? {
        "object" => Err(DataException::error(
            "22023",
            "cannot get array length of a non-array",
        )),
        _ => Err(DataException::error(
            "22023",
            "cannot get array length of a scalar",
        )),
    }
}

/// The field of `json_array_elements`' values: their text. (Not marked
/// as JSON: a list's element marks are lost where DataFusion makes a
/// constant of it, and its type check then fails.)
fn element_field() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Utf8, true))
}

/// The raw text of each value of a JSON array; PostgreSQL's error for a
/// scalar or an object (22023).
fn elements(doc: &str) -> Result<Vec<&str>> {
    if doc.trim_start().starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(doc).map_err(|_| not_json(doc))?;
        return Ok(items.into_iter().map(RawValue::get).collect());
    }
    Err(DataException::error(
        "22023",
        match type_of(doc)? {
            "object" => "cannot extract elements from an object",
            _ => "cannot extract elements from a scalar",
        },
    ))
}

/// `json_typeof`: object, array, string, number, boolean or null.
fn type_of(doc: &str) -> Result<&'static str> {
    let _: &RawValue = serde_json::from_str(doc).map_err(|_| not_json(doc))?;
    Ok(match doc.trim_start().as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(doc: &str, path: &[Step]) -> Option<String> {
        walk(doc, path).unwrap().map(str::to_string)
    }

    #[test]
    fn values_are_found_as_postgresql_finds_them() {
        let doc = r#"{"a": {"b": [10, {"c": "x\"y"}, null]}, "a2": 1.50, "a": {"b": [1]}}"#;
        let k = |s: &str| Step::Key(s.to_string());
        let e = |s: &str| Step::Either(s.to_string());
        // The last of repeated keys.
        assert_eq!(at(doc, &[k("a")]).as_deref(), Some(r#"{"b": [1]}"#));
        assert_eq!(at(doc, &[k("a2")]).as_deref(), Some("1.50"));
        assert_eq!(at(doc, &[k("zz")]), None);
        assert_eq!(at(doc, &[Step::Index(0)]), None);
        let arr = r#"[10, {"c": "x\"y"}, null]"#;
        assert_eq!(at(arr, &[Step::Index(-1)]).as_deref(), Some("null"));
        assert_eq!(at(arr, &[Step::Index(-4)]), None);
        assert_eq!(at(arr, &[Step::Index(3)]), None);
        assert_eq!(at(arr, &[e("1"), e("c")]).as_deref(), Some(r#""x\"y""#));
        assert_eq!(at(arr, &[k("1")]), None);
        assert_eq!(at(arr, &[e("c")]), None);
        assert_eq!(as_text(r#""x\"y""#).unwrap().as_deref(), Some("x\"y"));
        assert_eq!(as_text("null").unwrap(), None);
        assert_eq!(at("5", &[]).as_deref(), Some("5"));
        assert!(walk("{\"a\":", &[k("a")]).is_err());
        // Refused whatever the step asks of it.
        assert!(walk("{\"a\":", &[Step::Index(0)]).is_err());
        assert!(walk("[1,", &[k("a")]).is_err());
        assert!(walk("nope", &[k("a")]).is_err());
        assert!(walk("nope", &[]).is_err());
    }

    #[test]
    fn lengths_and_types() {
        assert_eq!(array_length("[1, [2, 3]]").unwrap(), Some(2));
        assert!(array_length("{}").is_err());
        assert!(array_length("3").is_err());
        assert_eq!(type_of(" true").unwrap(), "boolean");
        assert_eq!(type_of("-1e3").unwrap(), "number");
        assert!(type_of("nope").is_err());
    }
}
