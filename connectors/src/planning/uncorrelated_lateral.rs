//! A `LATERAL` subquery that no longer reads the outer row, made a plain
//! join input.
//!
//! DataFusion plans `CROSS JOIN LATERAL (SELECT ... WHERE s.city = c.city
//! AND false)` as a join over a `Subquery` node, which only
//! `decorrelate_lateral_join` takes apart, and only while the subquery
//! reads an outer column. When simplification removes the condition that
//! did (a filter that is false whatever the row: `AND false`, `name NOT
//! LIKE '%'`), the node stays, and the physical planner refused the query
//! ("Physical plan does not support undecorrelated Subquery"; the
//! differential run, seed 76). Such a subquery is the same relation for
//! every outer row, so it is joined as any table is; PostgreSQL's answer
//! (here no rows) follows.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

#[derive(Debug, Default)]
pub struct UncorrelatedLateral;

impl OptimizerRule for UncorrelatedLateral {
    fn name(&self) -> &str {
        "quipu_uncorrelated_lateral"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> datafusion::error::Result<Transformed<LogicalPlan>> {
        // A child, not the node itself: the optimizer also hands an
        // expression's subquery (`EXISTS (...)`) to the rule as a
        // `Subquery` node, and wants one back.
        plan.map_children(|child| match child {
            LogicalPlan::Subquery(s) if s.subquery.all_out_ref_exprs().is_empty() => Ok(
                Transformed::yes(std::sync::Arc::unwrap_or_clone(s.subquery)),
            ),
            child => Ok(Transformed::no(child)),
        })
    }
}

/// After `decorrelate_lateral_join`: each join's schema recomputed from
/// its inputs where they no longer match. The rule turns a `LEFT JOIN
/// LATERAL` into a join whose right side gained the correlated columns
/// (`l.store_id`) without the join's schema saying so; the projection
/// pruning after it then counted columns off by one and dropped a needed
/// one ("No field named __scalar_sq_1.count(...)", an `IN (subquery)`
/// value beside a `LEFT JOIN LATERAL`; the differential run, seed 76).
#[derive(Debug, Default)]
pub struct LateralJoinSchemas;

impl OptimizerRule for LateralJoinSchemas {
    fn name(&self) -> &str {
        "quipu_lateral_join_schemas"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> datafusion::error::Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(join) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let before = join.schema.fields().len();
        let fresh = plan.recompute_schema()?;
        let changed = fresh.schema().fields().len() != before;
        Ok(Transformed::new_transformed(fresh, changed))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Int64Array;
    use datafusion::prelude::SessionContext;

    /// A lateral subquery whose only correlation is simplified away:
    /// PostgreSQL's answer (no rows), not a refusal. In a whole session.
    #[tokio::test]
    async fn a_lateral_subquery_without_outer_columns_is_joined() {
        let state = crate::session::build_state(
            std::sync::Arc::new(datafusion::catalog::MemoryCatalogProviderList::new()),
            datafusion::prelude::SessionConfig::new(),
            std::sync::Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()),
        );
        let ctx = SessionContext::new_with_state(state);
        for (sql, want) in [
            (
                "SELECT count(*) FROM (VALUES (1), (2)) AS c(k) CROSS JOIN LATERAL \
                 (SELECT s.v FROM (VALUES (1, 10)) AS s(k, v) WHERE s.k = c.k AND false) l",
                0,
            ),
            (
                "SELECT count(*) FROM (VALUES (1), (2)) AS c(k) CROSS JOIN LATERAL \
                 (SELECT s.v FROM (VALUES (1, 10), (2, 20)) AS s(k, v) WHERE s.k = c.k OR true) l",
                4,
            ),
            // An `IN` value beside a LEFT JOIN LATERAL (the join's schema
            // after the decorrelation; `session::datafusion_rules`).
            (
                "SELECT count(*) FILTER (WHERE q.v) FROM (SELECT c.k IN (SELECT u.k FROM \
                 (VALUES (1), (3)) AS u(k)) AS v FROM (VALUES (1), (2), (3)) AS c(k) \
                 LEFT JOIN LATERAL (SELECT s.v FROM (VALUES (1, 10), (2, 20)) AS s(k, v) \
                 WHERE s.k = c.k) l ON true) q",
                2,
            ),
            // An expression's subquery is left as it is.
            (
                "SELECT count(*) FROM (VALUES (1), (2)) AS c(k) \
                 WHERE EXISTS (SELECT 1 FROM (VALUES (1)) AS s(k) WHERE s.k = 1)",
                2,
            ),
        ] {
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            let n = batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0);
            assert_eq!(n, want, "{sql}");
        }
    }
}
