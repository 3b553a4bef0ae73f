//! JSON inside JSON: `json_build_object('b', json_build_array(1))` is
//! `{"b" : [1]}` in PostgreSQL, a `json` value written as it is. Quipu
//! holds JSON as text, and wrote it as a string (`{"b" : "[1]"}`).
//!
//! The functions that make JSON mark their result field
//! ([`super::pg_text::JSON_MARK`]), as do the casts to `json` and
//! `jsonb` and a PostgreSQL source's `json` and `jsonb` columns; a column
//! keeps its mark, an explicit cast to text drops it
//! (`text_order::casts_unmarked`). This analyzer rule (after type
//! coercion), bottom up:
//!
//! - marks a `CASE`, `COALESCE` or `NULLIF` whose values are all JSON
//!   (or NULL), as PostgreSQL types it `json`: it becomes
//!   `quipu_as_json(...)`, the value itself, its field marked. A text
//!   literal among such values is JSON in PostgreSQL (`COALESCE(j,
//!   '{}')`): it is read as `json` (`jsonb` beside a `jsonb` column).
//! - wraps each marked argument of a function that writes its arguments
//!   as JSON (`json_build_object`'s values, `json_build_array`,
//!   `to_json`, and so `json_object_agg`'s values, and `json_agg`'s
//!   `quipu_json_element`) in a one-field struct named by the mark, which
//!   the function writes as it is. A struct, not the mark alone: the
//!   cluster's plans carry types but not field metadata.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::functions::core::expr_fn::named_struct;
use datafusion::logical_expr::expr::{Case, ScalarFunction};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility, lit,
};
use datafusion::optimizer::AnalyzerRule;

use super::pg_text::{JSON_MARK, is_json, json_field};
use super::text_order::TEXT_OF;
use super::text_types::{JSON_FN, JSONB_FN};

/// `quipu_json_element(x)`: `x` itself. `json_agg(x)` gathers it
/// (`syntax.rs`), so that a JSON `x` is wrapped as `to_json`'s argument
/// is, and written as it is.
pub const JSON_ELEMENT: &str = "quipu_json_element";

/// `quipu_as_json(x)`: the JSON text `x` itself, its field marked.
pub const AS_JSON: &str = "quipu_as_json";

/// The two functions, for the session.
pub fn functions() -> Vec<ScalarUDF> {
    [JSON_ELEMENT, AS_JSON]
        .into_iter()
        .map(|name| {
            ScalarUDF::new_from_impl(Same {
                name,
                signature: Signature::any(1, Volatility::Immutable),
            })
        })
        .collect()
}

/// A function that gives its argument.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Same {
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for Same {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        Ok(types[0].clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let arg = &args.arg_fields[0];
        Ok(match self.name {
            AS_JSON => json_field(self.name),
            _ => Arc::new(Field::new(
                self.name,
                arg.data_type().clone(),
                arg.is_nullable(),
            )),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(args.args[0].clone())
    }
}

#[derive(Debug, Default)]
pub struct JsonArguments;

impl AnalyzerRule for JsonArguments {
    fn name(&self) -> &str {
        "quipu_json_arguments"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(super::transform_up_outside_recursion(plan, &mut |node| {
            // Most nodes have none of them: no schema to build.
            let mut any = false;
            node.apply_expressions(|e| {
                any = e.exists(|x| {
                    Ok(writes_json(x).is_some()
                        || chooses(x).is_some()
                        || compares_text(x)
                        || distinct_list(x).is_some())
                })?;
                Ok(match any {
                    true => TreeNodeRecursion::Stop,
                    false => TreeNodeRecursion::Continue,
                })
            })?;
            if !any {
                return Ok(Transformed::no(node));
            }
            let schema = super::expression_schema(&node);
            let t = super::rewrite_keeping_names(node, |e| marked(e, &schema))?;
            match t.transformed {
                true => t.map_data(|node| node.recompute_schema()),
                false => Ok(t),
            }
        })?
        .data)
    }
}

/// For a call of a function that writes its arguments as JSON: whether
/// its arguments alternate keys and values (`json_build_object`).
fn writes_json(e: &Expr) -> Option<bool> {
    let Expr::ScalarFunction(f) = e else {
        return None;
    };
    match f.func.name() {
        "json_build_object" => Some(true),
        "json_build_array" | "to_json" | JSON_ELEMENT => Some(false),
        _ => None,
    }
}

/// The values of a `CASE`, `COALESCE` or `NULLIF` (its first argument),
/// one of which it gives.
fn chooses(e: &Expr) -> Option<Vec<&Expr>> {
    match e {
        Expr::Case(c) => Some(
            c.when_then_expr
                .iter()
                .map(|(_, then)| then.as_ref())
                .chain(c.else_expr.as_deref())
                .collect(),
        ),
        Expr::ScalarFunction(f) => match f.func.name() {
            "coalesce" | "nvl" => Some(f.args.iter().collect()),
            "nullif" => f.args.first().map(|a| vec![a]),
            _ => None,
        },
        _ => None,
    }
}

/// What a value of a `CASE` or `COALESCE` is: JSON (of type `jsonb`?),
/// NULL, a text literal, or other.
#[derive(PartialEq)]
enum Kind {
    Json { jsonb: bool },
    Null,
    Text,
    Other,
}

fn kind(e: &Expr, schema: &DFSchema) -> Kind {
    match e {
        Expr::Literal(v, _) if v.is_null() => Kind::Null,
        Expr::Literal(ScalarValue::Utf8(_) | ScalarValue::Utf8View(_), _) => Kind::Text,
        Expr::Cast(c) if matches!(c.expr.as_ref(), Expr::Literal(v, _) if v.is_null()) => {
            Kind::Null
        }
        Expr::ScalarFunction(f) if f.func.name() == JSONB_FN => Kind::Json { jsonb: true },
        e => match e.to_field(schema) {
            Ok((_, f)) if is_json(&f) => Kind::Json {
                jsonb: f.metadata().get(TEXT_OF).is_some_and(|t| t == "jsonb"),
            },
            _ => Kind::Other,
        },
    }
}

/// The argument of an `array_agg(DISTINCT x)` (so of `json_agg(DISTINCT
/// x)`, `syntax.rs`).
fn distinct_list(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::AggregateFunction(f) if f.func.name() == "array_agg" && f.params.distinct => {
            f.params.args.first()
        }
        _ => None,
    }
}

/// Whether `e` compares values for equality, a text literal among them.
fn compares_text(e: &Expr) -> bool {
    let text = |e: &Expr| {
        matches!(
            e,
            Expr::Literal(
                ScalarValue::Utf8(Some(_)) | ScalarValue::Utf8View(Some(_)),
                _
            )
        )
    };
    match e {
        Expr::BinaryExpr(b) => {
            matches!(
                b.op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::IsDistinctFrom
                    | Operator::IsNotDistinctFrom
            ) && (text(&b.left) || text(&b.right))
        }
        Expr::InList(l) => l.list.iter().any(text),
        _ => false,
    }
}

/// A comparison of a `jsonb` with text literals, the literals read as
/// `jsonb`, as PostgreSQL reads them: `j = '{"b": 1, "a": 2}'` is true
/// of the `jsonb` `{"a": 2, "b": 1}` (a comparison pushed to the source
/// said so, Quipu's own of the texts did not).
fn jsonb_compared(e: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let jsonb = |e: &Expr| kind(e, schema) == Kind::Json { jsonb: true };
    let read = |e: Box<Expr>| match kind(&e, schema) {
        Kind::Text => Box::new(cast_json(*e, true)),
        _ => e,
    };
    match e {
        Expr::BinaryExpr(mut b) if jsonb(&b.left) || jsonb(&b.right) => {
            b.left = read(b.left);
            b.right = read(b.right);
            Transformed::yes(Expr::BinaryExpr(b))
        }
        Expr::InList(mut l) if jsonb(&l.expr) => {
            l.list = l.list.into_iter().map(|v| *read(Box::new(v))).collect();
            Transformed::yes(Expr::InList(l))
        }
        e => Transformed::no(e),
    }
}

/// A call of a function that writes JSON, its JSON arguments wrapped; a
/// `CASE` or `COALESCE` of JSON values, marked; a comparison of a `jsonb`
/// with text, the text read as `jsonb`.
fn marked(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    if let Some(x) = distinct_list(&e)
        && matches!(kind(x, schema), Kind::Json { .. })
    {
        let x = match x {
            Expr::Column(c) => c.name.clone(),
            x => x.schema_name().to_string(),
        };
        return Err(crate::error::DataException::error(
            "0A000",
            &format!(
                "`json_agg(DISTINCT ...)` and `array_agg(DISTINCT ...)` of the JSON value `{x}` \
                 are not supported: PostgreSQL compares and orders `jsonb` by its own rules, \
                 not by its text (and `json` not at all); write `{x}::text` to gather its text"
            ),
        ));
    }
    if compares_text(&e) {
        return Ok(jsonb_compared(e, schema));
    }
    if let Some(values) = chooses(&e) {
        return Ok(match json_choice(&values, schema) {
            Some(jsonb) => Transformed::yes(as_json(texts_read(e, jsonb))),
            None => Transformed::no(e),
        });
    }
    let Some(keys) = writes_json(&e) else {
        return Ok(Transformed::no(e));
    };
    let Expr::ScalarFunction(mut f) = e else {
        unreachable!("writes_json takes only function calls")
    };
    let mut changed = false;
    for (i, a) in f.args.iter_mut().enumerate() {
        if keys && i % 2 == 0 {
            continue;
        }
        if a.to_field(schema).is_ok_and(|(_, field)| is_json(&field)) {
            *a = named_struct(vec![lit(JSON_MARK), a.clone()]);
            changed = true;
        }
    }
    Ok(Transformed::new_transformed(
        Expr::ScalarFunction(f),
        changed,
    ))
}

/// Whether values chosen among are JSON: all JSON, NULL or text literals,
/// one of them JSON; and whether one is a `jsonb`.
fn json_choice(values: &[&Expr], schema: &DFSchema) -> Option<bool> {
    let kinds: Vec<Kind> = values.iter().map(|v| kind(v, schema)).collect();
    if kinds.contains(&Kind::Other) {
        return None;
    }
    let jsons: Vec<bool> = kinds
        .iter()
        .filter_map(|k| match k {
            Kind::Json { jsonb } => Some(*jsonb),
            _ => None,
        })
        .collect();
    match jsons.is_empty() {
        true => None,
        false => Some(jsons.contains(&true)),
    }
}

/// `e` (a `CASE`, `COALESCE` or `NULLIF` of JSON), its text literals read
/// as `json` (or `jsonb`), as PostgreSQL reads them there.
fn texts_read(e: Expr, jsonb: bool) -> Expr {
    let read = |v: Box<Expr>| match v.as_ref() {
        Expr::Literal(ScalarValue::Utf8(Some(_)) | ScalarValue::Utf8View(Some(_)), _) => {
            Box::new(cast_json(*v, jsonb))
        }
        _ => v,
    };
    match e {
        Expr::Case(Case {
            expr,
            when_then_expr,
            else_expr,
        }) => Expr::Case(Case {
            expr,
            when_then_expr: when_then_expr
                .into_iter()
                .map(|(when, then)| (when, read(then)))
                .collect(),
            else_expr: else_expr.map(read),
        }),
        // Both of `NULLIF`'s: it compares them as JSON.
        Expr::ScalarFunction(mut f) => {
            f.args = f.args.into_iter().map(|a| *read(Box::new(a))).collect();
            Expr::ScalarFunction(f)
        }
        e => e,
    }
}

fn cast_json(e: Expr, jsonb: bool) -> Expr {
    let name = if jsonb { JSONB_FN } else { JSON_FN };
    Expr::ScalarFunction(ScalarFunction::new_udf(
        crate::session::scalar_function(name),
        vec![e],
    ))
}

fn as_json(e: Expr) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        crate::session::scalar_function(AS_JSON),
        vec![e],
    ))
}
