//! Rounding to an integer as PostgreSQL rounds (issue 22).
//!
//! DataFusion 55 truncates when it casts a decimal or a float to an integer
//! (`CAST(0.5 AS int)` is 0, `CAST(1.5::float8 AS int)` is 1); PostgreSQL
//! rounds: a numeric half away from zero (1), a float8 half to even (2, as
//! C's `rint`). And `round(float8)` rounds half to even in PostgreSQL
//! (`round(2.5::float8)` is 2), half away from zero in DataFusion (3).
//! Quipu rewrites these, with the argument's type known, into expressions
//! DataFusion evaluates exactly:
//!
//! - `CAST(x AS int)`, `x` numeric: `CASE WHEN x < 0 THEN CAST(x - 0.5 AS
//!   int) ELSE CAST(x + 0.5 AS int) END` (decimal addition is exact, the
//!   cast then truncates toward zero);
//! - `round(x)`, `x` float: `CASE WHEN abs(x - trunc(x)) = 0.5 THEN 2 *
//!   round(x / 2) ELSE round(x) END` (a half lies between an even and an
//!   odd integer, and the even one is twice the rounding of `x / 2`; every
//!   step is exact in binary floating point);
//! - `CAST(x AS int)`, `x` float: the cast of that rounding;
//! - `CAST(x AS numeric(p, s))`, `x` float: the cast of
//!   `quipu_float_numeric(x, s)`, PostgreSQL's 15 significant digits at
//!   `s` places (`connectors/src/dialect/float_numeric.rs`);
//! - a bare `numeric` of a float, or a quotient of numerics, that the
//!   query shows: exact, in a `decimal256` ([`exact_shown`]).
//!
//! The casts inside are decimal-to-integer casts, which the PostgreSQL
//! pushdown does not send (PostgreSQL would round them again), so the
//! rewritten expression is always evaluated by DataFusion.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, ScalarUDF, lit, when};
use quipu_connectors::dialect::{float_numeric, pg_numeric};

/// `plan` with casts to integers and float `round`s given PostgreSQL's
/// meaning (subqueries included).
pub fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    rewrite_typed(plan, rewrite_expr)
}

/// A query's plan with the numerics it shows exact ([`exact_outputs`]).
/// Applied to a statement's final plan, after the caches: a materialized
/// view's stored columns and the plans the cache matches keep the types
/// of `rewrite`.
pub(crate) fn exact_shown(plan: LogicalPlan) -> Result<LogicalPlan> {
    exact_outputs(plan, true)
}

/// `CAST(x AS numeric)` of a float `x`, planned as `quipu_float_numeric(x,
/// 10)` in a `decimal(38,10)`: its `x`.
fn unscaled_float_numeric(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::Cast(Cast { expr, field }) if *field.data_type() == DataType::Decimal128(38, 10) => {
            match expr.as_ref() {
                Expr::ScalarFunction(f)
                    if f.name() == float_numeric::FLOAT_NUMERIC
                        && f.args.len() == 2
                        && f.args[1] == lit(10i64) =>
                {
                    Some(&f.args[0])
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// `a / b` of numerics (or a numeric and an integer): its operands.
fn numeric_quotient(e: &Expr, schema: &DFSchema) -> Option<(Expr, Expr)> {
    let shape = |x: &Expr| {
        x.get_type(schema)
            .ok()
            .and_then(|t| pg_numeric::decimal_shape(&t))
    };
    let decimal = |x: &Expr| matches!(x.get_type(schema), Ok(DataType::Decimal128(..)));
    match e {
        Expr::BinaryExpr(b)
            if b.op == datafusion::logical_expr::Operator::Divide
                && shape(&b.left).is_some()
                && shape(&b.right).is_some()
                && (decimal(&b.left) || decimal(&b.right)) =>
        {
            Some((*b.left.clone(), *b.right.clone()))
        }
        Expr::ScalarFunction(f) if f.name() == pg_numeric::DIV && f.args.len() == 2 => {
            Some((f.args[0].clone(), f.args[1].clone()))
        }
        _ => None,
    }
}

/// A float cast to a bare `numeric` that a query shows as its column
/// keeps every place PostgreSQL gives it, or is refused
/// (`quipu_float_numeric(x, 38, true)`, a `decimal256(76,38)`), where
/// the `decimal(38,10)` a bare `numeric` is planned as rounded it
/// silently to 10 (`(1 / 3.0::float8)::numeric` is 0.333333333333333).
/// Only a column shown: the output of the top projection (under the
/// sorts, limits, `DISTINCT`s and subquery names above it), and of a
/// projection under it that only passes columns up (`plain`). Elsewhere
/// the value meets other decimals, whose arithmetic is Arrow's in 38
/// digits. A quotient of numerics shown likewise is exact at
/// PostgreSQL's places (`quipu_numeric_div(a, b, true)`).
fn exact_outputs(plan: LogicalPlan, plain: bool) -> Result<LogicalPlan> {
    match plan {
        LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Distinct(datafusion::logical_expr::Distinct::All(_)) => {
            let below = plan.inputs()[0].clone();
            let rewritten = exact_outputs(below, plain)?;
            plan.with_new_exprs(plan.expressions(), vec![rewritten])
        }
        LogicalPlan::Projection(p) if plain => {
            let passes = p
                .expr
                .iter()
                .all(|e| matches!(e.clone().unalias(), Expr::Column(_)));
            let input = Arc::new(exact_outputs(Arc::unwrap_or_clone(p.input), passes)?);
            let schema = input.schema().clone();
            let exprs = p
                .expr
                .into_iter()
                .zip(p.schema.iter())
                .map(|(e, (qualifier, field))| {
                    let bare = e.clone().unalias();
                    let exact = match (
                        unscaled_float_numeric(&bare),
                        numeric_quotient(&bare, &schema),
                    ) {
                        (Some(x), _) => float_numeric::float_numeric().call(vec![
                            x.clone(),
                            lit(38i64),
                            lit(true),
                        ]),
                        (None, Some((a, b))) => {
                            pg_numeric::numeric_div().call(vec![a, b, lit(true)])
                        }
                        (None, None) => return e,
                    };
                    exact.alias_qualified(qualifier.cloned(), field.name())
                })
                .collect();
            Ok(LogicalPlan::Projection(
                datafusion::logical_expr::Projection::try_new(exprs, input)?,
            ))
        }
        other => Ok(other),
    }
}

/// `plan` with `f` applied to every expression, bottom up (subqueries
/// included), `f` told the schema of the node's inputs so it can ask
/// expressions their types. Output columns keep their planned names.
pub(crate) fn rewrite_typed(
    plan: LogicalPlan,
    f: fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<LogicalPlan> {
    rewrite_each(plan, |e, schema| e.transform_up(|e| f(e, schema)))
}

/// [`rewrite_typed`] top down: `f` may stop the descent into what it
/// built (`TreeNodeRecursion::Jump`).
pub(crate) fn rewrite_typed_down(
    plan: LogicalPlan,
    f: fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<LogicalPlan> {
    rewrite_each(plan, |e, schema| e.transform_down(|e| f(e, schema)))
}

/// [`rewrite_typed`] for rewrites that change an expression's type: every
/// node's schema is computed again after its expressions, bottom up, so
/// the nodes above read the new types (they refer to columns by name, and
/// the names are kept). DataFusion's type coercion does the same.
pub(crate) fn rewrite_retyped(
    plan: LogicalPlan,
    f: impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let t = rewrite_node(node, |e, schema| e.transform_up(|e| f(e, schema)))?;
        let changed = t.transformed;
        let node = t.data.recompute_schema()?;
        Ok(if changed {
            Transformed::yes(node)
        } else {
            Transformed::no(node)
        })
    })
    .map(|t| t.data)
}

/// `plan` with `g` applied to every expression of every node.
fn rewrite_each(
    plan: LogicalPlan,
    g: impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| rewrite_node(node, &g))
        .map(|t| t.data)
}

/// One node with `g` applied to each of its expressions.
fn rewrite_node(
    node: LogicalPlan,
    g: impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<Transformed<LogicalPlan>> {
    // The expressions of a node read its inputs' columns.
    // (None for a node without inputs, such as VALUES.)
    let mut schema = DFSchema::empty();
    for i in node.inputs() {
        schema.merge(i.schema());
    }
    // Output columns keep the names they were planned with.
    let names = NamePreserver::new(&node);
    let t = node.map_expressions(|e| {
        quipu_connectors::dialect::keeping_name(&names, e, &mut |e| g(e, &schema))
    })?;
    if !t.transformed {
        return Ok(t);
    }
    t.map_data(values_keep_types)
}

/// A VALUES list whose rows were rewritten, each cast back to the list's
/// column types. DataFusion never computes a VALUES node's schema again,
/// and its rows' values are read at that schema's types: `VALUES
/// (1.5::numeric), (2::bigint)` typed its 2 as `numeric(38,0)` once the
/// integer's cast lost its places, and read it as 0.0000000002 at the
/// column's 10 places.
fn values_keep_types(node: LogicalPlan) -> Result<LogicalPlan> {
    let LogicalPlan::Values(mut v) = node else {
        return Ok(node);
    };
    let empty = DFSchema::empty();
    for row in &mut v.values {
        for (e, field) in row.iter_mut().zip(v.schema.fields()) {
            if e.get_type(&empty)? != *field.data_type() {
                *e = e.clone().cast_to(field.data_type(), &empty)?;
            }
        }
    }
    Ok(LogicalPlan::Values(v))
}

fn is_integer(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
    )
}

fn rewrite_expr(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match e {
        Expr::Cast(Cast { expr, field }) if is_integer(field.data_type()) => {
            // A type that cannot be told (an outer reference the schema
            // does not hold) leaves the cast as planned.
            let from = expr.get_type(schema).ok();
            let rounded = match from {
                Some(DataType::Decimal128(..) | DataType::Decimal256(..)) => {
                    let x = *expr;
                    let half = lit(ScalarValue::Decimal128(Some(5), 2, 1));
                    let to = field.data_type().clone();
                    return Ok(Transformed::yes(
                        when(
                            x.clone().lt(lit(0)),
                            (x.clone() - half.clone()).cast_to(&to, schema)?,
                        )
                        .otherwise((x + half).cast_to(&to, schema)?)?,
                    ));
                }
                Some(DataType::Float32 | DataType::Float64) => half_even(*expr),
                _ => return Ok(Transformed::no(Expr::Cast(Cast { expr, field }))),
            };
            Ok(Transformed::yes(Expr::Cast(Cast {
                expr: Box::new(rounded),
                field,
            })))
        }
        // A float cast to numeric: its 15 significant digits (6 of a
        // `real`), rounded at the scale
        // (`connectors/src/dialect/float_numeric.rs`); the cast around it
        // checks the precision. Not `extract`'s mark, `CAST(date_part(...)
        // AS numeric)`, which `crate::extract` reads next.
        Expr::Cast(Cast { expr, field })
            if matches!(field.data_type(), DataType::Decimal128(..))
                && expr.get_type(schema).is_ok_and(|t| t.is_floating())
                && !matches!(expr.as_ref(), Expr::ScalarFunction(f) if f.name() == "date_part") =>
        {
            let DataType::Decimal128(_, scale) = field.data_type() else {
                unreachable!("matched a decimal")
            };
            let exact = float_numeric::float_numeric().call(vec![*expr, lit(*scale as i64)]);
            Ok(Transformed::yes(Expr::Cast(Cast {
                expr: Box::new(exact),
                field,
            })))
        }
        // `round(CAST(x AS numeric), k)` of a float `x`: PostgreSQL rounds
        // the 15 significant digits once, at `k` places, where the
        // `decimal(38,10)` a bare numeric is planned as would round them
        // at 10 first (0.004999999999999 would be 0.01).
        Expr::ScalarFunction(mut f)
            if f.name() == "round"
                && f.args.len() == 2
                && unscaled_float_numeric(&f.args[0]).is_some()
                && crate::pg_types::literal_int(&f.args[1])
                    .is_some_and(|k| (0..10).contains(&k)) =>
        {
            let k = crate::pg_types::literal_int(&f.args[1]).expect("checked above");
            let x = unscaled_float_numeric(&f.args[0])
                .expect("checked above")
                .clone();
            let exact = float_numeric::float_numeric().call(vec![x, lit(k)]);
            f.args[0] = Expr::Cast(Cast::new(Box::new(exact), DataType::Decimal128(38, 10)));
            Ok(Transformed::yes(Expr::ScalarFunction(f)))
        }
        Expr::ScalarFunction(f) if f.name() == "round" && f.args.len() == 1 => {
            match f.args[0].get_type(schema).ok() {
                Some(DataType::Float32 | DataType::Float64) => {
                    Ok(Transformed::yes(half_even(f.args[0].clone())))
                }
                _ => Ok(Transformed::no(Expr::ScalarFunction(f))),
            }
        }
        _ => Ok(Transformed::no(e)),
    }
}

/// `x` (a float) rounded half to even, as PostgreSQL's `rint`.
fn half_even(x: Expr) -> Expr {
    let round = |e: Expr| call(datafusion::functions::math::round(), e);
    let trunc = |e: Expr| call(datafusion::functions::math::trunc(), e);
    let abs = |e: Expr| call(datafusion::functions::math::abs(), e);
    when(
        abs(x.clone() - trunc(x.clone())).eq(lit(0.5)),
        lit(2.0) * round(x.clone() / lit(2.0)),
    )
    .otherwise(round(x))
    .expect("a CASE with one WHEN")
}

fn call(f: Arc<ScalarUDF>, arg: Expr) -> Expr {
    f.call(vec![arg])
}
