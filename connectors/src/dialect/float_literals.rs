//! A decimal literal compared with a floating-point value is a double, as
//! in PostgreSQL (where `float8` is the preferred numeric type: `price =
//! 133.99` over a `float8` column compares doubles).
//!
//! Quipu reads bare decimal literals as `numeric` (PostgreSQL's meaning,
//! `parse_float_as_decimal`), and DataFusion 55 then compares a `Float64`
//! column with `IN (133.99, 69.49)` by casting the column to the literals'
//! decimal type, which cuts 133.98999999999999 to 133.98: no row matched.
//! This analyzer rule runs before DataFusion's type coercion and turns
//! such literals into doubles (rounded correctly from their text). A
//! decimal that is not a literal (a `numeric` column compared with an
//! `avg` of doubles, `COALESCE(double, numeric)`, a CASE with both) is
//! cast to a double, as PostgreSQL does: DataFusion cast the double to the
//! decimal and cut 130.98999999999999 to 130.98.
//!
//! A `real` meeting an integer or a numeric in arithmetic is a double, as
//! PostgreSQL reads it (it has no such `real` operator).
//!
//! A text literal compared with a boolean is a boolean, read as
//! PostgreSQL reads it (`active = 't'`, `'yes' = b`: DataFusion found no
//! common type for them).
//!
//! `ceil`/`floor` of a numeric have room for the carry (`ceil(0.5)`
//! overflowed a `numeric(1,1)`), and `to_hex` of an integer prints its
//! 32 bits.
//!
//! `sum` of a bigint is a `numeric`, as in PostgreSQL (its argument is
//! read as `numeric(19,0)`), and a quotient of numerics (or of a numeric
//! and an integer) is PostgreSQL's (`pg_numeric.rs`; DataFusion keeps the
//! dividend's scale + 4 and cuts).

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::{Cast, InList};
use datafusion::logical_expr::{Between, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct FloatComparedWithDecimal;

/// A text literal compared with a boolean, read as PostgreSQL's `boolin`
/// reads it (`b = 't'`, `'yes' = b`: DataFusion found no common type);
/// None when `e` is no such literal. Text `boolin` refuses is left as it
/// is, and the comparison is refused.
pub(super) fn boolean_literal(e: &Expr) -> Option<Expr> {
    let Expr::Literal(ScalarValue::Utf8(Some(text)), _) = e else {
        return None;
    };
    let word = text.trim().to_ascii_lowercase();
    // A prefix of the word, at least `least` letters long.
    let of = |whole: &str, least: usize| word.len() >= least && whole.starts_with(&word);
    let value = match () {
        _ if of("true", 1) || of("yes", 1) || of("on", 2) || word == "1" => true,
        _ if of("false", 1) || of("no", 1) || of("off", 2) || word == "0" => false,
        _ => return None,
    };
    Some(Expr::Literal(ScalarValue::Boolean(Some(value)), None))
}

impl AnalyzerRule for FloatComparedWithDecimal {
    fn name(&self) -> &str {
        "quipu_float_compared_with_decimal"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(super::transform_up_outside_recursion(plan, &mut |node| {
            let node = super::float_sets::float_columns(node)?.data;
            let schema = super::expression_schema(&node);
            // A rewrite may change a type the node passes on
            // (`sum(bigint)` is a decimal now): the schema must say so
            // before the nodes above read it.
            super::rewrite_keeping_names(node, |e| Ok(rewrite(e, &schema)))?
                .map_data(|node| node.recompute_schema())
        })?
        .data)
    }
}

fn rewrite(e: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let ty = |e: &Expr| e.get_type(schema).ok();
    let is_float = |e: &Expr| {
        matches!(
            ty(e),
            Some(DataType::Float16 | DataType::Float32 | DataType::Float64)
        )
    };
    let is_decimal = |e: &Expr| {
        matches!(
            ty(e),
            Some(DataType::Decimal128(..) | DataType::Decimal256(..))
        )
    };
    // A decimal as a double: a literal by its text, anything else cast.
    let to_double = |e: &Expr| -> Option<Expr> {
        as_double(e).or_else(|| {
            is_decimal(e).then(|| Expr::Cast(Cast::new(Box::new(e.clone()), DataType::Float64)))
        })
    };
    let doubled = |e: Expr| to_double(&e).unwrap_or(e);
    // PostgreSQL has no `real` operator with an integer or a numeric: it
    // reads the `real` as a double (`0.1::real * 3` is
    // 0.30000000447034836, a double; DataFusion's stayed `real`, 0.3).
    let is_real = |e: &Expr| matches!(ty(e), Some(DataType::Float16 | DataType::Float32));
    let is_exact = |e: &Expr| ty(e).is_some_and(|t| t.is_integer()) || is_decimal(e);
    let double = |e: Box<Expr>| Box::new(Expr::Cast(Cast::new(e, DataType::Float64)));
    match e {
        // `ceil`/`floor` of a numeric may carry into one more digit
        // (`ceil(0.5)` is 1, `floor(-0.5)` -1): DataFusion computed them
        // in the argument's precision and failed ("Decimal overflow while
        // applying ceil"). A cast written here is not widened again.
        Expr::ScalarFunction(mut f)
            if matches!(f.name(), "ceil" | "floor")
                && f.args.len() == 1
                && !matches!(f.args[0], Expr::Cast(_))
                && matches!(ty(&f.args[0]), Some(DataType::Decimal128(p, s)) if p < 38 && s > 0) =>
        {
            let Some(DataType::Decimal128(p, s)) = ty(&f.args[0]) else {
                unreachable!("matched above")
            };
            let x = f.args.remove(0);
            f.args.push(Expr::Cast(Cast::new(
                Box::new(x),
                DataType::Decimal128(p + 1, s),
            )));
            Transformed::yes(Expr::ScalarFunction(f))
        }
        // `ARRAY[x, ...]` where a numeric meets a double is of doubles
        // (of `real`s beside a `real`), as a `UNION` column is
        // (`float_sets`): DataFusion made it a `numeric[]` (`ARRAY[1.5 ::
        // float8, 2.5]` printed `{1.500000000000000,2.500000000000000}`).
        Expr::ScalarFunction(mut f) if f.name() == "make_array" => {
            let float = f
                .args
                .iter()
                .map(ty)
                .collect::<Option<Vec<DataType>>>()
                .and_then(|types| super::float_sets::float_of(types.iter()));
            let Some(float) = float else {
                return Transformed::no(Expr::ScalarFunction(f));
            };
            for a in f.args.iter_mut().filter(|a| !is_float(a)) {
                let x = std::mem::replace(a, Expr::Literal(ScalarValue::Null, None));
                *a = match (&float, as_double(&x)) {
                    (DataType::Float64, Some(double)) => double,
                    _ => Expr::Cast(Cast::new(Box::new(x), float.clone())),
                };
            }
            Transformed::yes(Expr::ScalarFunction(f))
        }
        // PostgreSQL's `to_hex(integer)` prints 32 bits (`ffffffff` for
        // -1), DataFusion's 64. Here, before the simplifier folds
        // `to_hex(-1)` of a literal the integer rule has made an integer.
        Expr::ScalarFunction(mut f)
            if f.name() == "to_hex"
                && f.args.len() == 1
                && matches!(
                    ty(&f.args[0]),
                    Some(DataType::Int32 | DataType::Int16 | DataType::Int8)
                ) =>
        {
            let x = f.args.remove(0);
            f.args.push(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(Expr::Cast(Cast::new(Box::new(x), DataType::Int64))),
                Operator::BitwiseAnd,
                Box::new(Expr::Literal(ScalarValue::Int64(Some(0xFFFF_FFFF)), None)),
            )));
            Transformed::yes(Expr::ScalarFunction(f))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(
                op,
                Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide
            ) && ((is_real(&left) && is_exact(&right))
                || (is_real(&right) && is_exact(&left))) =>
        {
            let (left, right) = match is_real(&left) {
                true => (double(left), right),
                false => (left, double(right)),
            };
            Transformed::yes(Expr::BinaryExpr(BinaryExpr { left, op, right }))
        }
        Expr::AggregateFunction(mut agg)
            if agg.func.name() == "sum"
                && agg.params.args.len() == 1
                && bigint_of_a_source(&agg.params.args[0], &ty) =>
        {
            let arg = agg.params.args.remove(0);
            agg.params.args.push(bigint_sum_argument(arg));
            Transformed::yes(Expr::AggregateFunction(agg))
        }
        Expr::WindowFunction(mut w)
            if w.fun.name() == "sum"
                && w.params.args.len() == 1
                && bigint_of_a_source(&w.params.args[0], &ty) =>
        {
            let arg = w.params.args.remove(0);
            w.params.args.push(bigint_sum_argument(arg));
            Transformed::yes(Expr::WindowFunction(w))
        }
        // `lag(x, k, d)` / `lead` of a numeric with a default of more
        // places: PostgreSQL's function is of `numeric`, so both keep
        // their places; DataFusion cast the default to `x`'s type and cut
        // it (`lead(total, 1, 1.123)` of a `numeric(12,2)` was 1.12). `x`
        // is widened to the default's places where both fit 38 digits.
        Expr::WindowFunction(mut w)
            if matches!(w.fun.name(), "lag" | "lead") && w.params.args.len() == 3 =>
        {
            let shape = |e: &Expr| ty(e).and_then(|t| super::pg_numeric::decimal_shape(&t));
            match (shape(&w.params.args[0]), shape(&w.params.args[2])) {
                (Some((p1, s1)), Some((p2, s2))) if s2 > s1 => {
                    let integer = (p1 as i16 - s1 as i16).max(p2 as i16 - s2 as i16);
                    let precision = integer + s2 as i16;
                    if precision > 38 {
                        return Transformed::no(Expr::WindowFunction(w));
                    }
                    let x = w.params.args.remove(0);
                    w.params.args.insert(
                        0,
                        Expr::Cast(Cast::new(
                            Box::new(x),
                            DataType::Decimal128(precision as u8, s2),
                        )),
                    );
                    Transformed::yes(Expr::WindowFunction(w))
                }
                _ => Transformed::no(Expr::WindowFunction(w)),
            }
        }
        // PostgreSQL's quotient of numerics (`pg_numeric.rs`); a double
        // operand makes it a double division, as in PostgreSQL.
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Divide,
            right,
        }) if (is_decimal(&left) || is_decimal(&right))
            && [&left, &right].iter().all(|e| {
                ty(e)
                    .as_ref()
                    .is_some_and(|t| super::pg_numeric::decimal_shape(t).is_some())
            }) =>
        {
            Transformed::yes(super::pg_numeric::numeric_div().call(vec![*left, *right]))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if comparison(op) => {
            let is_bool = |e: &Expr| ty(e) == Some(DataType::Boolean);
            if is_bool(&left) && boolean_literal(&right).is_some() {
                let right = Box::new(boolean_literal(&right).unwrap_or(*right));
                Transformed::yes(Expr::BinaryExpr(BinaryExpr { left, op, right }))
            } else if is_bool(&right) && boolean_literal(&left).is_some() {
                let left = Box::new(boolean_literal(&left).unwrap_or(*left));
                Transformed::yes(Expr::BinaryExpr(BinaryExpr { left, op, right }))
            } else if is_float(&left) && to_double(&right).is_some() {
                let right = Box::new(doubled(*right));
                Transformed::yes(Expr::BinaryExpr(BinaryExpr { left, op, right }))
            } else if is_float(&right) && to_double(&left).is_some() {
                let left = Box::new(doubled(*left));
                Transformed::yes(Expr::BinaryExpr(BinaryExpr { left, op, right }))
            } else {
                Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right }))
            }
        }
        // A double in a list that is not a column's among constants:
        // compared one by one, as `=` compares doubles (-0 is 0).
        // DataFusion's simplifier folded a list of constants by its
        // values' bits, and its `IN` of values that are not constants
        // compared them so, so `'-0'::float8 IN (0)` and `'-0'::float8 IN
        // (0, i)` were false. (A column among constants is matched as
        // PostgreSQL does, and keeps its set.)
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) if is_float(&expr)
            && list.len() <= 64
            && !expr.is_volatile()
            && !list.iter().any(Expr::is_volatile)
            && !(matches!(expr.as_ref(), Expr::Column(_))
                && list.iter().all(|x| x.column_refs().is_empty())) =>
        {
            let any = list
                .into_iter()
                .map(|x| expr.as_ref().clone().eq(doubled(x)))
                .reduce(Expr::or)
                .unwrap_or(Expr::Literal(ScalarValue::Boolean(Some(false)), None));
            Transformed::yes(match negated {
                true => Expr::Not(Box::new(any)),
                false => any,
            })
        }
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) if mixed(
            std::iter::once(expr.as_ref()).chain(list.iter()),
            &is_float,
            &to_double,
        ) =>
        {
            Transformed::yes(Expr::InList(InList {
                expr: Box::new(doubled(*expr)),
                list: list.into_iter().map(doubled).collect(),
                negated,
            }))
        }
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) if mixed(
            [expr.as_ref(), low.as_ref(), high.as_ref()],
            &is_float,
            &to_double,
        ) =>
        {
            Transformed::yes(Expr::Between(Between {
                expr: Box::new(doubled(*expr)),
                negated,
                low: Box::new(doubled(*low)),
                high: Box::new(doubled(*high)),
            }))
        }
        // One result type from doubles and decimals is a double in
        // PostgreSQL; DataFusion picks the decimal and cuts the doubles.
        Expr::ScalarFunction(mut f)
            if matches!(f.name(), "coalesce" | "nullif" | "greatest" | "least")
                && mixed(f.args.iter(), &is_float, &to_double) =>
        {
            f.args = std::mem::take(&mut f.args)
                .into_iter()
                .map(doubled)
                .collect();
            Transformed::yes(Expr::ScalarFunction(f))
        }
        Expr::Case(mut c)
            if mixed(
                c.when_then_expr
                    .iter()
                    .map(|(_, t)| t.as_ref())
                    .chain(c.else_expr.as_deref()),
                &is_float,
                &to_double,
            ) =>
        {
            for (_, then) in c.when_then_expr.iter_mut() {
                let t = std::mem::replace(then.as_mut(), Expr::Literal(ScalarValue::Null, None));
                **then = doubled(t);
            }
            if let Some(e) = c.else_expr.take() {
                c.else_expr = Some(Box::new(doubled(*e)));
            }
            Transformed::yes(Expr::Case(c))
        }
        other => Transformed::no(other),
    }
}

/// Whether some of `exprs` are doubles and some decimals: their common
/// type must be a double.
fn mixed<'a>(
    exprs: impl IntoIterator<Item = &'a Expr>,
    is_float: &impl Fn(&Expr) -> bool,
    to_double: &impl Fn(&Expr) -> Option<Expr>,
) -> bool {
    let (mut float, mut decimal) = (false, false);
    for e in exprs {
        float |= is_float(e);
        decimal |= to_double(e).is_some();
    }
    float && decimal
}

/// A bigint computed from data (a column, `x * y`, a cast): what
/// PostgreSQL sums as a `numeric`, and what DataFusion's bigint sum let
/// overflow silently (`sum(order_id * order_id)` came out negative, found
/// by the long differential run). Not a bigint whose values are all
/// literals: DataFusion's integer literals are bigints where PostgreSQL's
/// are integers, and `sum(CASE WHEN ... THEN 1 ELSE 0 END)` is a bigint in
/// both.
fn bigint_of_a_source(e: &Expr, ty: &impl Fn(&Expr) -> Option<DataType>) -> bool {
    ty(e) == Some(DataType::Int64) && !literal_valued(e) && !widened_integer(e, ty)
}

/// `CAST(x AS bigint)` of a narrower integer: DataFusion's own coercion
/// of `sum(integer)`, which a plan planned a second time shows (the
/// cluster's scheduler plans the plan it is sent again, and a `sum` of an
/// integer column became a numeric there: `sum(qty) / 3` gave 1.333).
/// PostgreSQL's sum of an integer is a bigint. (An explicit
/// `sum(i::bigint)` is made a numeric where it is written,
/// `syntax.rs`.)
fn widened_integer(e: &Expr, ty: &impl Fn(&Expr) -> Option<DataType>) -> bool {
    match e {
        Expr::Cast(c) => ty(&c.expr).is_some_and(|t| {
            matches!(
                t,
                DataType::Int8
                    | DataType::Int16
                    | DataType::Int32
                    | DataType::UInt8
                    | DataType::UInt16
                    | DataType::UInt32
            )
        }),
        _ => false,
    }
}

/// Whether every value `e` can take is one of its literals.
fn literal_valued(e: &Expr) -> bool {
    match e {
        Expr::Literal(..) => true,
        Expr::Alias(a) => literal_valued(&a.expr),
        Expr::Cast(c) => literal_valued(&c.expr),
        Expr::TryCast(c) => literal_valued(&c.expr),
        Expr::Negative(x) => literal_valued(x),
        Expr::Case(c) => {
            c.when_then_expr.iter().all(|(_, t)| literal_valued(t))
                && c.else_expr.as_deref().is_none_or(literal_valued)
        }
        _ => false,
    }
}

/// PostgreSQL's `sum(bigint)` is a `numeric` (DataFusion's a bigint, so
/// `sum(x) / 3` divided integers, and a sum pushed to PostgreSQL came back
/// as a numeric read as a bigint, rounded).
fn bigint_sum_argument(arg: Expr) -> Expr {
    // numeric(19,0) holds every bigint.
    Expr::Cast(Cast::new(Box::new(arg), DataType::Decimal128(19, 0)))
}

/// Whether `op` compares its operands (`=`, `<>`, `<`, ..., `IS [NOT]
/// DISTINCT FROM`).
pub fn comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

/// A decimal literal (or its negation) as a double literal.
fn as_double(e: &Expr) -> Option<Expr> {
    match e {
        Expr::Literal(v @ ScalarValue::Decimal128(..), _) => {
            let d = if v.is_null() {
                None
            } else {
                // The decimal's text, parsed: the double nearest to it.
                Some(v.to_string().parse::<f64>().ok()?)
            };
            Some(Expr::Literal(ScalarValue::Float64(d), None))
        }
        Expr::Negative(inner) => match as_double(inner)? {
            Expr::Literal(ScalarValue::Float64(d), m) => {
                Some(Expr::Literal(ScalarValue::Float64(d.map(|d| -d)), m))
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, RecordBatch};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::execution::SessionStateBuilder;
    use datafusion::optimizer::Analyzer;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use std::sync::Arc;

    #[tokio::test]
    async fn decimal_literals_meet_doubles_as_doubles() {
        let mut rules = Analyzer::new().rules;
        rules.insert(0, Arc::new(FloatComparedWithDecimal));
        let mut config = SessionConfig::new();
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_analyzer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        let schema = Arc::new(Schema::new(vec![Field::new("p", DataType::Float64, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Float64Array::from(vec![
                133.99, 69.49, 2.99, -1.5,
            ]))],
        )
        .unwrap();
        ctx.register_batch("t", batch).unwrap();
        for (sql, want) in [
            ("SELECT count(*) FROM t WHERE p IN (133.99, 69.49)", 2),
            ("SELECT count(*) FROM t WHERE p = 133.99 OR 2.99 = p", 2),
            ("SELECT count(*) FROM t WHERE p BETWEEN 2.99 AND 69.49", 2),
            ("SELECT count(*) FROM t WHERE p = -1.5", 1),
            ("SELECT count(*) FROM t WHERE p NOT IN (133.99)", 3),
            // Inside an aggregate the projection above names: kept.
            ("SELECT sum(CASE WHEN p > 60.5 THEN 1 ELSE 0 END) FROM t", 2),
            ("SELECT count(*) FILTER (WHERE p IN (2.99, 1.5)) FROM t", 1),
        ] {
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            let n = batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .unwrap()
                .value(0);
            assert_eq!(n, want, "{sql}");
        }
        // A decimal column against doubles; sums of bigints; quotients.
        let text_of = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
                datafusion::arrow::util::display::array_value_to_string(batches[0].column(0), 0)
                    .unwrap()
            }
        };
        for (sql, want) in [
            // 130.99 as a double is 130.98999999999999: cast to the
            // column's decimal it was 130.98, and matched nothing.
            (
                "SELECT count(*) FROM (VALUES (CAST(130.99 AS DECIMAL(12,2)), \
                 CAST(130.99 AS DOUBLE))) AS v(n, d) WHERE n = d",
                "1",
            ),
            (
                "SELECT count(*) FROM (VALUES (CAST(130.99 AS DECIMAL(12,2)), \
                 CAST(NULL AS DOUBLE))) AS v(n, d) WHERE COALESCE(d, n) = 130.99",
                "1",
            ),
            (
                "SELECT count(*) FROM (VALUES (CAST(130.99 AS DOUBLE))) AS v(d) \
                 WHERE CASE WHEN d > 0 THEN d ELSE CAST(1 AS DECIMAL(3,0)) END = 130.99",
                "1",
            ),
            (
                "SELECT CAST(sum(x) / 3 AS VARCHAR) FROM (VALUES (CAST(53 AS BIGINT))) AS v(x)",
                // PostgreSQL's 17.6666666666666667, at the column's 20 places.
                "17.66666666666666670000",
            ),
            (
                "SELECT arrow_typeof(sum(x)) FROM (VALUES (CAST(53 AS BIGINT))) AS v(x)",
                "Decimal128(29, 0)",
            ),
            // A product of bigints summed past the bigint range: exact,
            // where DataFusion's bigint sum wrapped to a negative number.
            (
                "SELECT CAST(sum(x * x) AS VARCHAR) FROM (VALUES (CAST(3037000000 AS BIGINT)), \
                 (CAST(3037000000 AS BIGINT))) AS v(x)",
                "18446738000000000000",
            ),
            // Counting with CASE stays a bigint, as in PostgreSQL.
            (
                "SELECT arrow_typeof(sum(CASE WHEN x > 0 THEN 1 ELSE 0 END)) \
                 FROM (VALUES (CAST(1 AS BIGINT))) AS v(x)",
                "Int64",
            ),
            (
                "SELECT CAST(n / 3 AS VARCHAR) FROM (VALUES (CAST(0.5 AS DECIMAL(12,2)))) AS v(n)",
                "0.16666666666666666667",
            ),
            (
                "SELECT CAST(n / 3 AS VARCHAR) FROM (VALUES (CAST(-0.5 AS DECIMAL(12,2)))) AS v(n)",
                "-0.16666666666666666667",
            ),
        ] {
            assert_eq!(text_of(sql).await, want, "{sql}");
        }
    }
}
