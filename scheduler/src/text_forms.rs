//! Values turned into text in PostgreSQL's text form (issue 22).
//!
//! DataFusion 55 turns values into text with Arrow's cast, which prints a
//! `timestamp` with a `T` (`2023-12-31T12:00:00.500`), a float8 as
//! `1000000000000000.0`, an interval as `1 days 2 hours`, an array as
//! `[1, 2]`; PostgreSQL prints `2023-12-31 12:00:00.5`, `1e+15`, `1 day
//! 02:00:00`, `{1,2}` (`connectors/src/dialect/pg_out.rs` lists them). Quipu
//! plans `CAST(x AS text)` of such a value, and each such operand of
//! `text || x` (which PostgreSQL defines as `text || x::text`), as
//! `quipu_text_out(x)`, PostgreSQL's output function. Text, integers,
//! numerics, dates and booleans (`true`: PostgreSQL's cast, unlike its
//! output function, spells it out), which Arrow prints as PostgreSQL's
//! cast does, are left to the cast (and so to pushdown). `quipu_text_out` is
//! not pushed to a source. A numeric whose places PostgreSQL chooses per
//! value (`n / 3`, `x::numeric`; `crate::scales`) is printed with them
//! (`quipu_numeric_places_text`), not with its column's; so is an
//! aggregate or window function whose places PostgreSQL chooses per value
//! (`avg(i)::text`, `'avg ' || avg(n)`: they printed the column's 20
//! places, `2.3333333333333333000` for `2.3333333333333333`), through a
//! hidden aggregate of its places beside it (`crate::scales`). Text cast
//! to `bytea` is read as PostgreSQL's bytea input (`quipu_bytea_in`), and
//! text cast to an array as its array input (`quipu_array_in`);
//! `array_to_string` joins elements printed so (`quipu_elements_text`).
//! This runs before
//! `crate::zones`, which gives a
//! `timestamptz` printed so the session's zone.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, Projection,
};
use quipu_connectors::dialect::pg_out::{cast_prints_as_postgresql, text_out};
use quipu_connectors::dialect::places_text::numeric_places_text;

/// `plan` with values turned into text printing as PostgreSQL's
/// (subqueries included).
pub fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = aggregates_as_text(plan)?;
    crate::rounding::rewrite_typed(plan, |e, schema| rewrite_expr(e, schema, &HashMap::new()))
}

/// Each projection over an aggregation or a window that turns an
/// aggregate (a window function) into text, with the aggregate's places
/// beside it (`crate::scales::aggregate_places`) and the text printed
/// with them.
fn aggregates_as_text(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::Projection(p) = &node else {
            return Ok(Transformed::no(node));
        };
        let over_aggregates = match p.input.as_ref() {
            LogicalPlan::Aggregate(_) | LogicalPlan::Window(_) => true,
            LogicalPlan::Filter(f) => matches!(f.input.as_ref(), LogicalPlan::Aggregate(_)),
            _ => false,
        };
        // (Every projection of every plan passes here: the others are
        // not walked.)
        if !over_aggregates {
            return Ok(Transformed::no(node));
        }
        let schema = p.input.schema();
        let mut referenced = vec![];
        for e in &p.expr {
            e.apply(|x| {
                referenced.extend(text_operands(x, schema));
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        if referenced.is_empty() {
            return Ok(Transformed::no(node));
        }
        let (input, found) = crate::scales::aggregate_places(&p.input, &referenced)?;
        if found.is_empty() {
            return Ok(Transformed::no(node));
        }
        let schema = input.schema().clone();
        let names = NamePreserver::new_for_projection();
        let exprs = p
            .expr
            .iter()
            .map(|e| {
                let saved = names.save(e);
                let text = e
                    .clone()
                    .transform_up(|x| rewrite_expr(x, &schema, &found))?
                    .data;
                Ok(saved.restore(text))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Transformed::yes(LogicalPlan::Projection(
            Projection::try_new(exprs, Arc::new(input))?,
        )))
    })
    .map(|t| t.data)
}

/// The names of the numeric columns `e` turns into text itself (a cast to
/// text, an operand of `||`).
fn text_operands(e: &Expr, schema: &DFSchema) -> Vec<String> {
    // (Through an alias: `var_samp(x)` is a column `var(x)` named so.)
    let numeric_column = |x: &Expr| match unaliased(x) {
        Expr::Column(c)
            if x.get_type(schema)
                .is_ok_and(|t| matches!(t, DataType::Decimal128(..))) =>
        {
            Some(c.name.clone())
        }
        _ => None,
    };
    match e {
        Expr::Cast(Cast { expr, field }) if field.data_type().is_string() => {
            numeric_column(expr).into_iter().collect()
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::StringConcat,
            right,
        }) => [left, right]
            .into_iter()
            .filter_map(|x| numeric_column(x))
            .collect(),
        _ => vec![],
    }
}

/// Whether PostgreSQL's cast of a `t` to text prints otherwise than
/// Arrow's: a boolean is `true` in both (its output function's `t` is for
/// `concat`), a date the same for years 1 to 9999 (left to the cast, which
/// can be pushed down).
fn cast_differs(t: &DataType) -> bool {
    !cast_prints_as_postgresql(t) && !matches!(t, DataType::Boolean | DataType::Date32)
}

fn unaliased(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unaliased(&a.expr),
        other => other,
    }
}

/// `x` as text with PostgreSQL's places per value, if `x` is a numeric
/// whose places can differ from its type's (`crate::scales`).
fn with_places(x: &Expr, schema: &DFSchema, found: &HashMap<String, Expr>) -> Option<Expr> {
    let t = x.get_type(schema).ok()?;
    // An `extract` has its places once `crate::extract` gives its type
    // (the epoch's 6: `25.000000`); it is printed by the pass after that.
    if !matches!(t, DataType::Decimal128(..)) || crate::extract::marked(x).is_some() {
        return None;
    }
    // A `numeric` without a precision whose places are not followed (a
    // source's column): its own `scale`, which a PostgreSQL source
    // computes where the query is pushed down.
    let places = crate::scales::value_places(x, schema, found).or_else(|| {
        (t == crate::scales::UNSCALED)
            .then(|| quipu_connectors::dialect::pg_numeric::scale().call(vec![x.clone()]))
    })?;
    Some(numeric_places_text().call(vec![x.clone(), places]))
}

/// `e` printed as PostgreSQL prints it, the places of the aggregates of
/// `found` followed.
fn rewrite_expr(
    e: Expr,
    schema: &DFSchema,
    found: &HashMap<String, Expr>,
) -> Result<Transformed<Expr>> {
    match e {
        // Text cast to `bytea`: read as PostgreSQL's bytea input (Arrow's
        // cast keeps the text's bytes, backslashes and all).
        Expr::Cast(Cast { expr, field })
            if quipu_connectors::dialect::bytea::is_bytea(field.data_type())
                && expr.get_type(schema).is_ok_and(|t| t.is_string()) =>
        {
            let read = quipu_connectors::dialect::bytea::bytea_in().call(vec![*expr]);
            Ok(Transformed::yes(read.cast_to(field.data_type(), schema)?))
        }
        // Text cast to an array: read as PostgreSQL's array text, then
        // each element cast (Arrow's cast made the text one element).
        Expr::Cast(Cast { expr, field })
            if matches!(
                field.data_type(),
                DataType::List(_) | DataType::LargeList(_)
            ) && expr.get_type(schema).is_ok_and(|t| t.is_string()) =>
        {
            let read = quipu_connectors::dialect::array_text::array_in().call(vec![*expr]);
            Ok(Transformed::yes(read.cast_to(field.data_type(), schema)?))
        }
        Expr::Cast(Cast { expr, field }) if field.data_type().is_string() => {
            if let Some(text) = with_places(&expr, schema, found) {
                return Ok(Transformed::yes(text.cast_to(field.data_type(), schema)?));
            }
            let printed = expr.get_type(schema).is_ok_and(|t| cast_differs(&t));
            if !printed {
                return Ok(Transformed::no(Expr::Cast(Cast { expr, field })));
            }
            let to = field.data_type().clone();
            Ok(Transformed::yes(
                text_out().call(vec![*expr]).cast_to(&to, schema)?,
            ))
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::StringConcat,
            right,
        }) => {
            let (lt, rt) = (left.get_type(schema).ok(), right.get_type(schema).ok());
            let (Some(lt), Some(rt)) = (lt, rt) else {
                return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op: Operator::StringConcat,
                    right,
                })));
            };
            // Two `bytea`s: their bytes joined (their text forms were).
            // A text literal beside a `bytea` is one, as PostgreSQL reads
            // an untyped literal there (`'\x01'::bytea || 'ab'` is
            // `\x016162`; it was the text `\x01ab`); a text column makes
            // the whole text, as in PostgreSQL.
            use quipu_connectors::dialect::bytea::{bytea_in, concat, is_bytea};
            let literal = |e: &Expr| matches!(e, Expr::Literal(v, _) if v.data_type().is_string());
            let bytes = |e: Box<Expr>, t: &DataType| {
                if is_bytea(t) {
                    *e
                } else {
                    bytea_in().call(vec![*e])
                }
            };
            if (is_bytea(&lt) || literal(&left))
                && (is_bytea(&rt) || literal(&right))
                && (is_bytea(&lt) || is_bytea(&rt))
            {
                let joined = concat().call(vec![bytes(left, &lt), bytes(right, &rt)]);
                return Ok(Transformed::yes(joined));
            }
            // An array on either side is array concatenation. Otherwise
            // each side not text is printed: a numeric with its places
            // per value, a type Arrow prints otherwise by PostgreSQL's
            // output function.
            let arrays = lt.is_list() || rt.is_list();
            let text = |e: &Expr, t: &DataType| {
                if arrays || t.is_string() {
                    return None;
                }
                with_places(e, schema, found)
                    .or_else(|| cast_differs(t).then(|| text_out().call(vec![e.clone()])))
            };
            let (tl, tr) = (text(&left, &lt), text(&right, &rt));
            let changed = tl.is_some() || tr.is_some();
            let e = Expr::BinaryExpr(BinaryExpr {
                left: tl.map_or(left, Box::new),
                op: Operator::StringConcat,
                right: tr.map_or(right, Box::new),
            });
            Ok(Transformed::new_transformed(e, changed))
        }
        // `array_to_string(a, ...)` joins the elements as PostgreSQL
        // prints them (`t|f`, not `true|false`; timestamps without a `T`).
        Expr::ScalarFunction(mut f)
            if f.func.name() == "array_to_string"
                && f.args.first().is_some_and(|a| {
                    a.get_type(schema).is_ok_and(|t| match t {
                        DataType::List(e)
                        | DataType::LargeList(e)
                        // Not only the types Arrow prints otherwise: an
                        // array of numerics may become one of doubles
                        // (`float_literals`, after this).
                        | DataType::FixedSizeList(e, _) => {
                            !(e.data_type().is_string() || e.data_type().is_integer())
                        }
                        _ => false,
                    })
                }) =>
        {
            let elements = quipu_connectors::dialect::pg_out::elements_text();
            f.args[0] = elements.call(vec![f.args[0].clone()]);
            Ok(Transformed::yes(Expr::ScalarFunction(f)))
        }
        e => Ok(Transformed::no(e)),
    }
}
