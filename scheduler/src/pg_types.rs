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
//! - `regexp_count` is an `integer`, not a `bigint`.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::scalar::ScalarValue;

/// `plan` with PostgreSQL's result types (subqueries included).
pub fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    crate::rounding::rewrite_retyped(plan, rewrite_expr)
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
