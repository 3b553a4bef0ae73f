//! Orders DataFusion's sort enforcement leaves unmet.
//!
//! DataFusion 55 computes a union's output orders from each input's orders
//! *normalized* by that input's equivalences, and drops the equivalences
//! themselves: an input sorted on `[u0, u1 DESC]` where `u0 = u1` (the two
//! are one join key) shows the union only `[u0]`. `ORDER BY 1, 2 DESC`
//! over such a `UNION ALL` then has every input sorted as asked and still
//! fails `SanityCheckPlan` ("does not satisfy order requirements": seed 1
//! query 10057, `... UNION ALL SELECT p.price AS u0, p.price AS u1 ...`).
//!
//! [`MissingSorts`] runs just before the sanity check and puts a sort
//! (per partition) under every operator whose input does not show the
//! order it requires. A sort gives the rows the order the operator asks
//! for, so this can only cost time, never change an answer; where the
//! order was in fact there, the extra sort finds it so.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result as DfResult;
use datafusion::physical_expr::LexOrdering;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

#[derive(Debug, Default)]
pub struct MissingSorts;

impl PhysicalOptimizerRule for MissingSorts {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let mut changed = false;
            let children = node
                .children()
                .into_iter()
                .zip(node.required_input_ordering())
                .map(|(child, required)| {
                    let Some(required) = required.map(|r| r.into_single()) else {
                        return Ok(Arc::clone(child));
                    };
                    if child
                        .equivalence_properties()
                        .ordering_satisfy_requirement(required.clone())?
                    {
                        return Ok(Arc::clone(child));
                    }
                    changed = true;
                    let sort = SortExec::new(LexOrdering::from(required), Arc::clone(child))
                        .with_preserve_partitioning(
                            child.output_partitioning().partition_count() > 1,
                        );
                    Ok(Arc::new(sort) as Arc<dyn ExecutionPlan>)
                })
                .collect::<DfResult<Vec<_>>>()?;
            if !changed {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(
                datafusion::physical_plan::replace_children_if_necessary(node, children)?,
            ))
        })
        .data()
    }

    fn name(&self) -> &str {
        "quipu_missing_sorts"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// DataFusion's physical rules with [`MissingSorts`] just before the
/// sanity check.
pub fn before_sanity_check(
    mut rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let at = rules
        .iter()
        .position(|r| r.name() == "SanityCheckPlan")
        .unwrap_or(rules.len());
    rules.insert(at, Arc::new(MissingSorts));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Each branch's two columns are one join key.
    const QUERY: &str = "SELECT CAST(a.k AS DOUBLE) AS u0, CAST(b.k AS DOUBLE) AS u1 \
                         FROM a JOIN b ON a.k = b.k WHERE b.d > 0 UNION ALL \
                         SELECT CAST(a.k AS DOUBLE), CAST(b.k AS DOUBLE) \
                         FROM a JOIN b ON a.k = b.k WHERE b.d < 2 ORDER BY 1, 2 DESC";

    async fn answer(rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>) -> String {
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        for sql in [
            "CREATE TABLE a (k INT) AS VALUES (3), (1), (2)",
            "CREATE TABLE b (k INT, d INT) AS VALUES (1, 1), (2, 5), (3, 1)",
        ] {
            ctx.sql(sql).await.unwrap().collect().await.unwrap();
        }
        match ctx.sql(QUERY).await.unwrap().collect().await {
            Ok(rows) => pretty_format_batches(&rows).unwrap().to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[tokio::test]
    async fn an_order_a_union_hides_is_sorted_again() {
        let unguarded = answer(PhysicalOptimizer::new().rules).await;
        assert!(
            unguarded.contains("does not satisfy order requirements"),
            "DataFusion fixed this: {unguarded}"
        );
        let text = answer(before_sanity_check(PhysicalOptimizer::new().rules)).await;
        let firsts: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("| ") && !l.contains("u0"))
            .map(|l| l.split('|').nth(1).unwrap_or_default().trim())
            .collect();
        assert_eq!(firsts, ["1.0", "1.0", "2.0", "3.0", "3.0"], "{text}");
    }
}
