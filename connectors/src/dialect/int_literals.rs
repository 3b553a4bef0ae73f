//! An integer literal is an `integer` when it fits one, as in PostgreSQL.
//!
//! DataFusion reads every integer literal as a `bigint` (`Int64`), so
//! `i + 1` over an `integer` column was a `bigint`, `SELECT 1` answered a
//! `bigint` column, `CASE ... THEN 1 ELSE 0 END` too, and `i * 1000000`
//! did not fail where PostgreSQL says `integer out of range`. PostgreSQL
//! types a literal that fits 32 bits `integer`, a larger one `bigint`.
//! This analyzer rule runs before type coercion and gives such literals
//! the type `Int32`; coercion then widens them wherever the other side is
//! wider (`j + 1` over a `bigint` is still a `bigint`).
//!
//! Left as they are: `LIMIT`/`OFFSET` (DataFusion wants `Int64` there),
//! `VALUES` lists (their column types were settled when they were planned) and
//! the literal arguments of aggregate and window functions (`count(*)` is
//! `count(Int64(1))` to the planner and the SQL writer; `lag(x, 1)`'s
//! offset), whose result types do not depend on them.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct IntegerLiterals;

impl AnalyzerRule for IntegerLiterals {
    fn name(&self) -> &str {
        "quipu_integer_literals"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(super::transform_up_outside_recursion(plan, &mut |node| {
            if matches!(node, LogicalPlan::Limit(_) | LogicalPlan::Values(_)) {
                // A child may have changed: the schema must say so.
                return node.recompute_schema().map(Transformed::yes);
            }
            let node = super::rewrite_keeping_names(node, |e| Ok(narrow(e)))?;
            // Recomputed even when these expressions stayed: a child's
            // types may have changed.
            node.map_data(|node| node.recompute_schema())
        })?
        .data)
    }
}

/// One step of the bottom-up walk: a literal that fits 32 bits becomes an
/// `Int32`; an aggregate's or window function's own literal arguments go
/// back to `Int64` (their children were narrowed first).
fn narrow(e: Expr) -> Transformed<Expr> {
    match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), meta) => match i32::try_from(v) {
            Ok(v) => Transformed::yes(Expr::Literal(ScalarValue::Int32(Some(v)), meta)),
            Err(_) => Transformed::no(Expr::Literal(ScalarValue::Int64(Some(v)), meta)),
        },
        Expr::AggregateFunction(mut f) => {
            let changed = widen(&mut f.params.args);
            Transformed::new_transformed(Expr::AggregateFunction(f), changed)
        }
        Expr::WindowFunction(mut f) => {
            let changed = widen(&mut f.params.args);
            Transformed::new_transformed(Expr::WindowFunction(f), changed)
        }
        e => Transformed::no(e),
    }
}

/// Turns the `Int32` literals among `args` back into `Int64`.
fn widen(args: &mut [Expr]) -> bool {
    let mut changed = false;
    for a in args {
        if let Expr::Literal(ScalarValue::Int32(Some(v)), meta) = a {
            *a = Expr::Literal(ScalarValue::Int64(Some(i64::from(*v))), meta.take());
            changed = true;
        }
    }
    changed
}
