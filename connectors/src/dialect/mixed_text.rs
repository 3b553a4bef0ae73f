//! Text meeting a number, a boolean, a date or a timestamp, refused as
//! PostgreSQL refuses it (issue 22). PostgreSQL has no `text = integer`
//! operator and no common type of `text` and `integer`: `nt = 42`,
//! `nt + 1`, `nt IN (1, 2)` fail with 42883, and `CASE ... THEN s ELSE 1
//! END`, `COALESCE(s, 1)`, `GREATEST(s, 1)` and `SELECT s UNION SELECT 1`
//! with 42804. DataFusion 55 cast the text to the number and answered
//! (`' 7 ' < 5` was false), or cast the number to text.
//!
//! Only text that has a type counts: a column, a function's result, a
//! cast. A text literal is PostgreSQL's `unknown` and takes the other
//! side's type (`i = '42'`, `d > '2024-01-01'`), as it does here; a
//! parameter (`$1`) is left to its bound type. Text meeting an interval or
//! a time is left alone: a PostgreSQL source's `interval` and `time`
//! columns are read as text (`postgres/types.rs`), and compare with them.
//!
//! Runs before DataFusion's type coercion, which would have cast the two
//! sides to one type; it changes nothing it lets through.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

use super::pg_functions::pg_type_name;
use crate::error::DataException;

#[derive(Debug, Default)]
pub struct TextWithOtherTypes;

impl AnalyzerRule for TextWithOtherTypes {
    fn name(&self) -> &str {
        "quipu_text_with_other_types"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::Union(u) = node {
                union_columns(&u.inputs)?;
            }
            let schema = super::expression_schema(node);
            node.apply_expressions(|e| {
                e.apply(|x| {
                    check(x, &schema)?;
                    Ok(TreeNodeRecursion::Continue)
                })
            })?;
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(plan)
    }
}

/// What a value's type is, as PostgreSQL resolves operators and common
/// types: typed text, a type text has no operator with, or neither.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Text,
    Other,
    Free,
}

fn side_of(t: Option<DataType>, literal: bool) -> Side {
    match t {
        Some(t) if t.is_string() => match literal {
            true => Side::Free,
            false => Side::Text,
        },
        Some(DataType::Boolean | DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)) => {
            Side::Other
        }
        Some(t) if t.is_numeric() => Side::Other,
        _ => Side::Free,
    }
}

/// Whether `e` is a literal (PostgreSQL's `unknown` when it is text) or a
/// parameter.
fn untyped(e: &Expr) -> bool {
    match e {
        Expr::Literal(..) | Expr::Placeholder(_) => true,
        Expr::Alias(a) => untyped(&a.expr),
        _ => false,
    }
}

fn side(e: &Expr, schema: &DFSchema) -> (Side, Option<DataType>) {
    let t = e.get_type(schema).ok();
    (side_of(t.clone(), untyped(e)), integer_literal(e).or(t))
}

/// An integer literal's type as PostgreSQL's: `integer` where it fits,
/// for the message (the rule runs before `int_literals` narrows them).
fn integer_literal(e: &Expr) -> Option<DataType> {
    match e {
        Expr::Literal(datafusion::scalar::ScalarValue::Int64(Some(v)), _) => {
            i32::try_from(*v).is_ok().then_some(DataType::Int32)
        }
        Expr::Alias(a) => integer_literal(&a.expr),
        _ => None,
    }
}

fn name(t: &Option<DataType>) -> String {
    t.as_ref().map_or_else(|| "unknown".into(), pg_type_name)
}

fn no_operator(
    op: &str,
    l: &Option<DataType>,
    r: &Option<DataType>,
) -> datafusion::error::DataFusionError {
    DataException::error(
        "42883",
        &format!("operator does not exist: {} {op} {}", name(l), name(r)),
    )
}

fn unmatched(
    what: &str,
    a: &Option<DataType>,
    b: &Option<DataType>,
) -> datafusion::error::DataFusionError {
    DataException::error(
        "42804",
        &format!("{what} types {} and {} cannot be matched", name(a), name(b)),
    )
}

/// Whether `op` is one PostgreSQL has for text with text only: a
/// comparison or arithmetic (`||` takes any type).
fn checked_operator(op: Operator) -> bool {
    super::float_literals::comparison(op)
        || matches!(
            op,
            Operator::Plus
                | Operator::Minus
                | Operator::Multiply
                | Operator::Divide
                | Operator::Modulo
        )
}

/// `left op right`, refused where typed text meets another type.
fn operands(op: &str, left: &Expr, right: &Expr, schema: &DFSchema) -> Result<()> {
    let (l, lt) = side(left, schema);
    let (r, rt) = side(right, schema);
    match (l, r) {
        (Side::Text, Side::Other) | (Side::Other, Side::Text) => Err(no_operator(op, &lt, &rt)),
        _ => Ok(()),
    }
}

fn check(e: &Expr, schema: &DFSchema) -> Result<()> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if checked_operator(*op) => {
            operands(&op.to_string(), left, right, schema)?
        }
        Expr::InList(InList { expr, list, .. }) => {
            for item in list {
                operands("=", expr, item, schema)?;
            }
        }
        Expr::Between(Between {
            expr, low, high, ..
        }) => {
            operands(">=", expr, low, schema)?;
            operands("<=", expr, high, schema)?;
        }
        // PostgreSQL resolves a CASE's type from its ELSE first.
        Expr::Case(c) => common(
            "CASE",
            c.else_expr
                .as_deref()
                .into_iter()
                .chain(c.when_then_expr.iter().map(|(_, t)| t.as_ref())),
            schema,
        )?,
        Expr::ScalarFunction(f) => match f.name() {
            "coalesce" => common("COALESCE", f.args.iter(), schema)?,
            "greatest" => common("GREATEST", f.args.iter(), schema)?,
            "least" => common("LEAST", f.args.iter(), schema)?,
            "nullif" if f.args.len() == 2 => operands("=", &f.args[0], &f.args[1], schema)?,
            _ => {}
        },
        _ => {}
    }
    Ok(())
}

/// The common type of `values` (a CASE's results, COALESCE's arguments):
/// refused where typed text meets a type it has none with.
fn common<'a>(what: &str, values: impl Iterator<Item = &'a Expr>, schema: &DFSchema) -> Result<()> {
    matched(what, values.map(|v| side(v, schema)))
}

/// The first two of `sides` that cannot meet, refused in `what`'s words
/// (untyped values take any side's type).
fn matched(what: &str, sides: impl Iterator<Item = (Side, Option<DataType>)>) -> Result<()> {
    let mut first: Option<(Side, Option<DataType>)> = None;
    for (s, t) in sides.filter(|(s, _)| *s != Side::Free) {
        match &first {
            None => first = Some((s, t)),
            Some((f, ft)) if *f != s => return Err(unmatched(what, ft, &t)),
            Some(_) => {}
        }
    }
    Ok(())
}

/// A `UNION`'s columns: typed text in one input and a number, boolean,
/// date or timestamp in another are refused (a literal in a `SELECT`
/// list is untyped).
fn union_columns(inputs: &[std::sync::Arc<LogicalPlan>]) -> Result<()> {
    let Some(width) = inputs.first().map(|i| i.schema().fields().len()) else {
        return Ok(());
    };
    for column in 0..width {
        let sides = inputs.iter().filter_map(|input| {
            let field = input.schema().fields().get(column)?;
            let written = match input.as_ref() {
                LogicalPlan::Projection(p) => p.expr.get(column),
                _ => None,
            };
            let t = written
                .and_then(integer_literal)
                .or_else(|| Some(field.data_type().clone()));
            Some((side_of(t.clone(), written.is_some_and(untyped)), t))
        });
        matched("UNION", sides)?;
    }
    Ok(())
}
