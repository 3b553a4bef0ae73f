//! `extract(second FROM ts)` with its fraction (issue 22).
//!
//! DataFusion 55's `date_part('second', ts)` is the whole seconds (`59` for
//! `23:59:59.999999`); PostgreSQL's `extract(second ...)` is numeric with
//! the microseconds (`59.999999`), `date_part` a double with the same
//! value. Quipu plans the seconds of a timestamp as `date_part('microsecond',
//! ts)` (seconds and microseconds, as in PostgreSQL) times 0.000001,
//! as a `numeric(8,6)`: the value and scale of PostgreSQL's `extract`.
//! (The result type of `date_part` remains a difference: docs/sql.md.)

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, lit};

/// `plan` with the seconds of timestamps keeping their fraction.
pub fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    crate::rounding::rewrite_typed(plan, rewrite_expr)
}

fn rewrite_expr(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::ScalarFunction(f) = &e else {
        return Ok(Transformed::no(e));
    };
    let seconds = f.name() == "date_part"
        && f.args.len() == 2
        && matches!(&f.args[0], Expr::Literal(ScalarValue::Utf8(Some(p)), _)
            if p.eq_ignore_ascii_case("second") || p.eq_ignore_ascii_case("seconds"))
        && matches!(f.args[1].get_type(schema), Ok(DataType::Timestamp(..)));
    if !seconds {
        return Ok(Transformed::no(e));
    }
    let ts = f.args[1].clone();
    let micros = datafusion::functions::datetime::date_part()
        .call(vec![lit("microsecond"), ts])
        .cast_to(&DataType::Decimal128(12, 0), schema)?;
    // Times 0.000001 (exact: the product's scale is 6), not divided by a
    // million (a decimal quotient has only 4 more places than the
    // dividend).
    let millionth = lit(ScalarValue::Decimal128(Some(1), 7, 6));
    Ok(Transformed::yes(
        (micros * millionth).cast_to(&DataType::Decimal128(8, 6), schema)?,
    ))
}
