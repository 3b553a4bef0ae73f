//! Values cast to text in PostgreSQL's text form (issue 22).
//!
//! DataFusion 55 casts a `timestamp` to text with a `T` and the fraction's
//! trailing zeros (`2023-12-31T12:00:00.500`), a float8 as
//! `1000000000000000.0` or `-0.0`; PostgreSQL prints `2023-12-31
//! 12:00:00.5`, `1e+15` and `-0`. Quipu plans `CAST(ts AS text)` (a
//! timestamp without time zone) as the cast with the `T` made a space and
//! the fraction cut to its significant digits, and `CAST(x AS text)` of a
//! float8 as `quipu_float8_text(x)` (`connectors/src/pg_text.rs`). Neither
//! is pushed to a source.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, lit};

/// `plan` with casts of timestamps and float8s to text printing as
/// PostgreSQL's (subqueries included).
pub fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    crate::rounding::rewrite_typed(plan, rewrite_expr)
}

fn rewrite_expr(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr, field }) = e else {
        return Ok(Transformed::no(e));
    };
    let to = field.data_type().clone();
    if !matches!(
        to,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
    ) {
        return Ok(Transformed::no(Expr::Cast(Cast { expr, field })));
    }
    match expr.get_type(schema).ok() {
        Some(DataType::Timestamp(_, None)) => {
            let text = Expr::Cast(Cast { expr, field });
            let spaced =
                datafusion::functions::string::replace().call(vec![text, lit("T"), lit(" ")]);
            // `.500` -> `.5`, `.000` -> nothing.
            let cut = datafusion::functions::regex::regexp_replace().call(vec![
                spaced,
                lit("(\\.[0-9]*[1-9])0+$|\\.0+$"),
                lit("\\1"),
            ]);
            Ok(Transformed::yes(cut.cast_to(&to, schema)?))
        }
        Some(DataType::Float64) => {
            let text = quipu_connectors::dialect::pg_text::float8_text().call(vec![*expr]);
            Ok(Transformed::yes(text.cast_to(&to, schema)?))
        }
        _ => Ok(Transformed::no(Expr::Cast(Cast { expr, field }))),
    }
}
