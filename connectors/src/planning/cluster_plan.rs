//! Physical plans run on Ballista, made right where DataFusion's plan is
//! right in one process but not once split into stages and encoded.
//!
//! Sort orders do not survive a Ballista shuffle (`sort_after_shuffle`).
//! DataFusion lets a hash `RepartitionExec` with one input partition keep
//! its input's order (each output partition receives its rows in input
//! order), and plans a window over it in sorted mode with no sort above the
//! repartition. On Ballista that repartition is a shuffle: a reduce task
//! reads its partition from the map tasks' files in whatever order they
//! arrive, and the window failed ("Expects PARTITION BY expression to be
//! ordered") or numbered rows of one partition apart. This rule, for plans
//! run on Ballista, puts the order back after every repartition that
//! claims one: a sort of each partition, which Ballista's stage split
//! leaves above the shuffle reader.
//!
//! A window function evaluated in reverse loses its direction in
//! datafusion-proto 55 (`forwards_window`).
//!
//! A sort leaves out keys the planner knows constant (`PARTITION BY
//! txn_id` under `WHERE ... txn_id = 16001`), and the operator above it
//! counts on that knowledge, which a shuffle reader on an executor does not
//! have: the window failed there with "Expects PARTITION BY expression to
//! be ordered" (seed 1 query 11270). On Ballista a sort under an operator
//! that requires an order sorts by all of it (`whole_sorts`).

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{InputOrderMode, WindowExpr};

/// Whether a configuration is a Ballista session's (it carries Ballista's
/// settings).
pub fn on_ballista(config: &ConfigOptions) -> bool {
    config
        .entries()
        .iter()
        .any(|e| e.key.starts_with("ballista."))
}

/// The fixes below, in one pass over a plan planned for Ballista.
#[derive(Debug, Default)]
pub struct ForTheCluster;

impl PhysicalOptimizerRule for ForTheCluster {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        if !on_ballista(config) {
            return Ok(plan);
        }
        Ok(plan
            .transform_up(|node| {
                let sorted = sort_after_shuffle(node);
                let before = Arc::clone(&sorted.data);
                let node = whole_sorts(forwards_window(sorted.data)?)?;
                // The flag must be set: `transform_up` keeps the old node
                // where it is not.
                Ok(match sorted.transformed || !Arc::ptr_eq(&before, &node) {
                    true => Transformed::yes(node),
                    false => Transformed::no(node),
                })
            })?
            .data)
    }

    fn name(&self) -> &str {
        "quipu_for_the_cluster"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Sort orders do not survive a Ballista shuffle: the order a
/// repartition claims is restored by a sort of each partition above it.
fn sort_after_shuffle(node: Arc<dyn ExecutionPlan>) -> Transformed<Arc<dyn ExecutionPlan>> {
    if node.downcast_ref::<RepartitionExec>().is_some()
        && let Some(order) = node.properties().output_ordering()
    {
        let sort = SortExec::new(order.clone(), node.clone()).with_preserve_partitioning(true);
        return Transformed::yes(Arc::new(sort));
    }
    Transformed::no(node)
}

/// Window functions such as `lag` may be planned in reverse over an input
/// sorted the other way (`lag` ascending as `lead` with `is_reversed` over
/// a descending sort, sharing the sort of another window). datafusion-proto
/// 55 encodes the function but not `is_reversed`, so executors computed
/// `lag` as the next row: a wrong answer. On Ballista such a window is
/// planned forwards again, over a sort of its own.
fn forwards_window(
    node: Arc<dyn ExecutionPlan>,
) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    let (exprs, bounded) = if let Some(w) = node.downcast_ref::<BoundedWindowAggExec>() {
        (w.window_expr(), true)
    } else if let Some(w) = node.downcast_ref::<WindowAggExec>() {
        (w.window_expr(), false)
    } else {
        return Ok(node);
    };
    if !exprs.iter().any(reversed) {
        return Ok(node);
    }
    // Every expression of one window node shares its input order: all are
    // turned forwards, or the query is refused.
    let Some(forwards) = exprs
        .iter()
        .map(|e| e.get_reverse_expr())
        .collect::<Option<Vec<_>>>()
        .filter(|f| !f.iter().any(reversed))
    else {
        return Err(datafusion::error::DataFusionError::NotImplemented(
            "this combination of window functions on the cluster \
             (a window evaluated in reverse next to one that cannot be)"
                .into(),
        ));
    };
    let first = &forwards[0];
    let order: Vec<_> = first
        .partition_by()
        .iter()
        .map(|e| datafusion::physical_expr::PhysicalSortExpr::new_default(e.clone()))
        .chain(first.order_by().iter().cloned())
        .collect();
    let input = node.children()[0].clone();
    let input = match datafusion::physical_expr::LexOrdering::new(order) {
        Some(order) => Arc::new(
            SortExec::new(order, input).with_preserve_partitioning(input_partitions(&node) > 1),
        ) as Arc<dyn ExecutionPlan>,
        None => input,
    };
    let can_repartition = !first.partition_by().is_empty();
    let new: Arc<dyn ExecutionPlan> = if bounded {
        Arc::new(BoundedWindowAggExec::try_new(
            forwards,
            input,
            InputOrderMode::Sorted,
            can_repartition,
        )?)
    } else {
        Arc::new(WindowAggExec::try_new(forwards, input, can_repartition)?)
    };
    Ok(new)
}

/// The node with each input sort that leaves out a key the node requires
/// (one the planner knew constant) sorting by the whole requirement first,
/// then by its own remaining keys.
fn whole_sorts(node: Arc<dyn ExecutionPlan>) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    let mut changed = false;
    let children = node
        .children()
        .into_iter()
        .zip(node.required_input_ordering())
        .map(|(child, required)| {
            let (Some(sort), Some(required)) = (child.downcast_ref::<SortExec>(), required) else {
                return Arc::clone(child);
            };
            let mut order: Vec<PhysicalSortExpr> = required
                .into_single()
                .into_iter()
                .map(PhysicalSortExpr::from)
                .collect();
            for e in sort.expr().iter() {
                if !order.iter().any(|o| o.expr.eq(&e.expr)) {
                    order.push(e.clone());
                }
            }
            let same = order.len() == sort.expr().len()
                && order
                    .iter()
                    .zip(sort.expr().iter())
                    .all(|(a, b)| a.expr.eq(&b.expr));
            let Some(order) = LexOrdering::new(order).filter(|_| !same) else {
                return Arc::clone(child);
            };
            changed = true;
            Arc::new(
                SortExec::new(order, Arc::clone(sort.input()))
                    .with_preserve_partitioning(sort.preserve_partitioning())
                    .with_fetch(sort.fetch()),
            ) as Arc<dyn ExecutionPlan>
        })
        .collect();
    if !changed {
        return Ok(node);
    }
    datafusion::physical_plan::replace_children_if_necessary(node, children)
}

/// Output partitions of a node's input.
fn input_partitions(node: &Arc<dyn ExecutionPlan>) -> usize {
    node.children()[0]
        .properties()
        .output_partitioning()
        .partition_count()
}

/// Whether a window expression is a window function evaluated in reverse.
/// `WindowUDFExpr` does not expose the flag; its `Debug` form does.
fn reversed(e: &Arc<dyn WindowExpr>) -> bool {
    e.as_any()
        .downcast_ref::<datafusion::physical_expr::window::StandardWindowExpr>()
        .and_then(|s| {
            s.get_standard_func_expr()
                .as_any()
                .downcast_ref::<WindowUDFExpr>()
        })
        .is_some_and(|u| format!("{u:?}").contains("is_reversed: true"))
}
