//! DataFusion 55's physical filter pushdown maps a filter through a
//! projection by column *name* (`ProjectionExec::collect_reverse_alias`
//! keys each output by the first field of its name). A projection with two
//! outputs of one name, as `JoinSelection` builds above a swapped join of
//! `p1.sku = h2.sku`, sends a filter on the second `sku` to the first: a
//! filter above a right join on the row-preserving side's key was pushed
//! into the other side, a wrong answer (found by the differential test,
//! where the two keys' types differed and it failed instead). Dynamic join
//! filters pass through the same code.
//!
//! [`GuardedFilterPushdown`] runs DataFusion's rule only on plans whose
//! projections name each output once; other plans keep their filters where
//! the logical optimizer put them (which already pushes them into scans).

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::filter_pushdown::FilterPushdown;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;

#[derive(Debug)]
pub struct GuardedFilterPushdown(pub FilterPushdown);

impl PhysicalOptimizerRule for GuardedFilterPushdown {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        if has_ambiguous_projection(&plan)? {
            return Ok(plan);
        }
        self.0.optimize(plan, config)
    }

    fn name(&self) -> &str {
        self.0.name()
    }

    fn schema_check(&self) -> bool {
        self.0.schema_check()
    }
}

/// Whether a projection in the plan gives two outputs one name.
fn has_ambiguous_projection(plan: &Arc<dyn ExecutionPlan>) -> datafusion::error::Result<bool> {
    let mut found = false;
    plan.apply(|node| {
        if node.downcast_ref::<ProjectionExec>().is_some() {
            let mut seen = HashSet::new();
            if !node
                .schema()
                .fields()
                .iter()
                .all(|f| seen.insert(f.name().clone()))
            {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(found)
}

/// DataFusion's physical optimizer rules with both filter pushdown phases
/// guarded.
pub fn guarded(
    rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    rules
        .into_iter()
        .map(|r| match r.name() {
            "FilterPushdown" => Arc::new(GuardedFilterPushdown(FilterPushdown::new())) as Arc<_>,
            "FilterPushdown(Post)" => Arc::new(GuardedFilterPushdown(
                FilterPushdown::new_post_optimization(),
            )) as Arc<_>,
            _ => r,
        })
        .collect()
}
