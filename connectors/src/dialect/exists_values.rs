//! `EXISTS (subquery)` as a value: in a select list, a `CASE`, an
//! `ORDER BY`, a `GROUP BY` key.
//!
//! DataFusion 55 decorrelates `EXISTS` only in a filter (`WHERE`, `HAVING`);
//! anywhere else the physical planner refused it ("Physical plan does not
//! support logical expression Exists"), so `SELECT c.name, EXISTS (SELECT
//! 1 FROM orders o WHERE o.customer_id = c.id) AS has_orders` failed. This
//! analyzer rule reads such an `EXISTS` as `(SELECT count(*) FROM
//! subquery) > 0` (`NOT EXISTS` as `= 0`), a scalar subquery DataFusion
//! decorrelates, correlated or not (the count of no rows is 0, not NULL:
//! DataFusion handles that case of a correlated count). The value is the
//! same: `EXISTS` is never NULL, neither is a count.
//!
//! Filters are left as they are: DataFusion's own rewrite of `EXISTS` there
//! (a semi or mark join) stops at the first matching row.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::expr::Exists;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Subquery, lit};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct ExistsAsValues;

impl AnalyzerRule for ExistsAsValues {
    fn name(&self) -> &str {
        "quipu_exists_as_values"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(plan
            .transform_up_with_subqueries(|node| {
                if matches!(node, LogicalPlan::Filter(_)) {
                    return Ok(Transformed::no(node));
                }
                super::rewrite_keeping_names(node, counted)
            })?
            .data)
    }
}

/// `EXISTS (q)` as `(SELECT count(*) FROM q) > 0`.
fn counted(e: Expr) -> Result<Transformed<Expr>> {
    let Expr::Exists(Exists { subquery, negated }) = e else {
        return Ok(Transformed::no(e));
    };
    let plan = LogicalPlanBuilder::from(subquery.subquery.as_ref().clone())
        .aggregate(Vec::<Expr>::new(), vec![count(lit(1))])?
        .build()?;
    let n = Expr::ScalarSubquery(Subquery {
        subquery: Arc::new(plan),
        outer_ref_columns: subquery.outer_ref_columns,
        spans: subquery.spans,
    });
    Ok(Transformed::yes(if negated {
        n.eq(lit(0i64))
    } else {
        n.gt(lit(0i64))
    }))
}
