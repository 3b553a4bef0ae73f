//! PostgreSQL's result types for date arithmetic and numeric rounding
//! (issue 22), where DataFusion 55 answers the same value in another type
//! or another form:
//!
//! - `date ± interval` is a `timestamp` (`2024-03-29 00:00:00`), not a
//!   `date`: the date is cast to a timestamp first, so an interval with a
//!   time part keeps it (`d + INTERVAL '12 hours'` is noon, not `d`);
//! - `timestamp - timestamp` is an `interval` (`9563 days 02:30:00`), not
//!   an Arrow duration no client knows (`quipu_interval_of_duration`,
//!   `connectors/src/dialect/intervals.rs`);
//! - `date - date` is an `integer`, not a `bigint`;
//! - `ceil`, `floor` and `trunc` of a `numeric` have scale 0 (`trunc(n, k)`
//!   scale `k`), not the argument's (`1`, not `1.000000`);
//! - `to_hex` of an `integer` prints its 32 bits (`ffffffff`), not 64;
//! - `regexp_count` is an `integer`, not a `bigint`;
//! - intervals compare and sort by PostgreSQL's span (`quipu_interval_key`:
//!   a month is 30 days, a day 24 hours), not field by field;
//! - text cast to `numeric` without a scale keeps its places or is
//!   refused (`quipu_numeric_text`), not rounded to 10.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::scalar::ScalarValue;

/// `plan` with PostgreSQL's result types (subqueries included).
pub fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = crate::rounding::rewrite_retyped(plan, rewrite_expr)?;
    interval_sorts(plan)
}

fn is_interval(t: &Option<DataType>) -> bool {
    matches!(t, Some(DataType::Interval(_)))
}

/// `ORDER BY` an interval sorts by PostgreSQL's span
/// (`quipu_interval_key`), not field by field.
fn interval_sorts(plan: LogicalPlan) -> Result<LogicalPlan> {
    use quipu_connectors::dialect::interval_parts::interval_key;
    plan.transform_up_with_subqueries(|node| match node {
        LogicalPlan::Sort(mut sort) => {
            let schema = sort.input.schema().clone();
            let mut changed = false;
            for s in &mut sort.expr {
                if is_interval(&s.expr.get_type(&schema).ok()) {
                    s.expr = interval_key().call(vec![s.expr.clone()]);
                    changed = true;
                }
            }
            Ok(match changed {
                true => Transformed::yes(LogicalPlan::Sort(sort)),
                false => Transformed::no(LogicalPlan::Sort(sort)),
            })
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

fn is_date(t: &Option<DataType>) -> bool {
    matches!(t, Some(DataType::Date32 | DataType::Date64))
}

fn cast(e: Expr, to: DataType) -> Expr {
    Expr::Cast(Cast::new(Box::new(e), to))
}

fn rewrite_expr(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let ty = |e: &Expr| e.get_type(schema).ok();
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(op, Operator::Plus | Operator::Minus) =>
        {
            let (lt, rt) = (ty(&left), ty(&right));
            let interval = |t: &Option<DataType>| matches!(t, Some(DataType::Interval(_)));
            let timestamp = DataType::Timestamp(TimeUnit::Nanosecond, None);
            if is_date(&lt) && interval(&rt) {
                let left = Box::new(cast(*left, timestamp));
                return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op,
                    right,
                })));
            }
            if op == Operator::Plus && interval(&lt) && is_date(&rt) {
                let right = Box::new(cast(*right, timestamp));
                return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op,
                    right,
                })));
            }
            let e = Expr::BinaryExpr(BinaryExpr { left, op, right });
            match ty(&e) {
                Some(DataType::Duration(_)) if op == Operator::Minus => {
                    let f = quipu_connectors::session::scalar_functions()
                        .iter()
                        .find(|f| {
                            f.name() == quipu_connectors::dialect::intervals::INTERVAL_OF_DURATION
                        })
                        .expect("Quipu's functions include quipu_interval_of_duration");
                    Ok(Transformed::yes(f.call(vec![e])))
                }
                Some(DataType::Int64) if op == Operator::Minus && is_date(&lt) && is_date(&rt) => {
                    // Days between two dates fit an integer (PostgreSQL's
                    // dates span 5.9 million years).
                    Ok(Transformed::yes(cast(e, DataType::Int32)))
                }
                _ => Ok(Transformed::no(e)),
            }
        }
        Expr::ScalarFunction(f) if matches!(f.name(), "ceil" | "floor" | "trunc") => {
            let Some(DataType::Decimal128(p, s)) = f.args.first().and_then(ty) else {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            };
            // The places kept: `trunc(n, k)`'s literal k (none below 0),
            // else none. A k that is not a literal leaves the type as is.
            let places: i8 = match f.args.get(1) {
                None => 0,
                Some(Expr::Literal(v, _)) => match v.cast_to(&DataType::Int64) {
                    Ok(ScalarValue::Int64(Some(k))) => k.clamp(0, 38) as i8,
                    _ => return Ok(Transformed::no(Expr::ScalarFunction(f))),
                },
                Some(_) => return Ok(Transformed::no(Expr::ScalarFunction(f))),
            };
            if places == s {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            }
            // Integer digits, one more for a carry (`ceil(9.5)` is 10).
            let integer = p as i16 - s as i16 + 1;
            let precision = (integer + places as i16).min(38) as u8;
            if precision as i16 - (places as i16) < integer {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            }
            Ok(Transformed::yes(cast(
                Expr::ScalarFunction(f),
                DataType::Decimal128(precision, places),
            )))
        }
        // Intervals compare by PostgreSQL's span (a month is 30 days, a
        // day 24 hours), not field by field.
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if quipu_connectors::dialect::float_literals::comparison(op)
                && is_interval(&ty(&left))
                && is_interval(&ty(&right)) =>
        {
            use quipu_connectors::dialect::interval_parts::interval_key;
            Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                left: Box::new(interval_key().call(vec![*left])),
                op,
                right: Box::new(interval_key().call(vec![*right])),
            })))
        }
        Expr::Between(b) if is_interval(&ty(&b.expr)) => {
            use quipu_connectors::dialect::interval_parts::interval_key;
            let key = |e: Box<Expr>| Box::new(interval_key().call(vec![*e]));
            Ok(Transformed::yes(Expr::Between(
                datafusion::logical_expr::expr::Between {
                    expr: key(b.expr),
                    negated: b.negated,
                    low: key(b.low),
                    high: key(b.high),
                },
            )))
        }
        // Text to a `numeric` without a scale (`decimal(38,10)`) keeps its
        // places or is refused (`quipu_numeric_text`), never rounded.
        Expr::Cast(Cast { expr, field })
            if *field.data_type() == DataType::Decimal128(38, 10)
                && ty(&expr).is_some_and(|t| t.is_string()) =>
        {
            let checked = quipu_connectors::dialect::pg_numeric::numeric_text().call(vec![*expr]);
            Ok(Transformed::yes(Expr::Cast(Cast {
                expr: Box::new(checked),
                field,
            })))
        }
        // PostgreSQL's `regexp_count` is an `integer`, DataFusion's a
        // `bigint`.
        Expr::ScalarFunction(f)
            if f.name() == "regexp_count"
                && ty(&Expr::ScalarFunction(f.clone())) == Some(DataType::Int64) =>
        {
            Ok(Transformed::yes(cast(
                Expr::ScalarFunction(f),
                DataType::Int32,
            )))
        }
        // PostgreSQL's `to_hex(integer)` prints 32 bits (`ffffffff` for
        // -1), DataFusion's 64.
        Expr::ScalarFunction(mut f)
            if f.name() == "to_hex"
                && matches!(
                    f.args.first().and_then(ty),
                    Some(DataType::Int32 | DataType::Int16 | DataType::Int8)
                ) =>
        {
            let x = f.args.remove(0);
            let low = Expr::BinaryExpr(BinaryExpr::new(
                Box::new(cast(x, DataType::Int64)),
                Operator::BitwiseAnd,
                Box::new(datafusion::logical_expr::lit(0xFFFF_FFFFi64)),
            ));
            f.args.insert(0, low);
            Ok(Transformed::yes(Expr::ScalarFunction(f)))
        }
        _ => Ok(Transformed::no(e)),
    }
}
