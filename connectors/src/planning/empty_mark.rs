//! A mark join against an empty relation, made a constant.
//!
//! DataFusion plans a subquery that turns out empty (`x IN (SELECT ... WHERE
//! FALSE)`, or one of the `EXISTS` tests `dialect/syntax.rs` spells out for NOT IN
//! under OR) as a `LeftMark` join whose right side is an `EmptyRelation`.
//! The mark column is named after the right side's one qualifier; an
//! `EmptyRelation` crosses datafusion-proto 55 without its schema, so the
//! Ballista scheduler rebuilt the join with an unqualified `mark` and
//! refused the plan ("Schema contains qualified field name
//! __correlated_sq_1.mark and unqualified field name mark"). No row matches
//! an empty relation, so the mark is FALSE for every row: a projection says
//! so, in one process and on the cluster alike, and is cheaper than a join.

use datafusion::common::Column;
use datafusion::common::tree_node::Transformed;
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, LogicalPlanBuilder, lit};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

#[derive(Debug, Default)]
pub struct EmptyMarkJoin;

impl OptimizerRule for EmptyMarkJoin {
    fn name(&self) -> &str {
        "quipu_empty_mark_join"
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
        let empty = matches!(
            join.right.as_ref(),
            LogicalPlan::EmptyRelation(e) if !e.produce_one_row
        );
        if join.join_type != JoinType::LeftMark || !empty {
            return Ok(Transformed::no(plan));
        }
        let (qualifier, mark) = join.schema.qualified_field(join.schema.fields().len() - 1);
        let columns = join
            .left
            .schema()
            .iter()
            .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name())));
        let projection = LogicalPlanBuilder::from(join.left.as_ref().clone())
            .project(columns.chain([lit(false).alias_qualified(qualifier.cloned(), mark.name())]))?
            .build()?;
        Ok(Transformed::yes(projection))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Int64Array;
    use datafusion::prelude::SessionContext;

    /// The shape the optimizer leaves for `OR NOT (x IN (empty))`: the
    /// answer, and no join against the empty side.
    #[tokio::test]
    async fn in_an_empty_subquery_is_false() {
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_default_features()
            .with_optimizer_rule(std::sync::Arc::new(super::EmptyMarkJoin))
            .build();
        let ctx = SessionContext::new_with_state(state);
        let sql = "SELECT count(*) FROM (VALUES (1), (2), (NULL)) AS t(x) \
                   WHERE x = 1 OR NOT (x IN (SELECT y FROM (VALUES (1)) AS u(y) WHERE FALSE))";
        let df = ctx.sql(sql).await.unwrap();
        let plan = format!(
            "{}",
            df.clone().into_optimized_plan().unwrap().display_indent()
        );
        let batches = df.collect().await.unwrap();
        let n = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0);
        // x = 1, and 2 (NOT IN an empty set is true); NULL NOT IN () is true too.
        assert_eq!(n, 3, "{plan}");
        assert!(!plan.contains("LeftMark"), "{plan}");
    }
}
