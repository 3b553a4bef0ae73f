//! Semi-join pushdown: the keys of a join's small side sent to the source
//! of its other side, so that side does not read its whole table.
//!
//! DataFusion's hash join publishes a dynamic filter once its build side is
//! read: `key >= min AND key <= max AND key IN (...)` when the build side
//! has few distinct keys (`datafusion.optimizer.hash_join_inlist_pushdown_max_distinct_values`,
//! default 150, and `..._max_size`), a hash-table lookup otherwise, and in
//! partitioned joins a `CASE` over partitions of those. Our scans accept the
//! filter during physical planning and read its current value when they
//! start, which the join does only after its build side is complete. What
//! can be said remotely (IN lists, ranges on numbers and dates) goes into
//! the remote query as `= ANY`-style `IN (...)` / `$in`; the rest is
//! dropped, which only weakens the filter: the join itself still decides.
//!
//! Dynamic filters are not encoded by the codecs, so scans that run on the
//! cluster read without them.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, CaseExpr, Column, InListExpr, Literal};
use datafusion::physical_expr_common::physical_expr::snapshot_physical_expr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation, PushedDown,
};
use datafusion::physical_plan::joins::HashJoinExec;
use std::collections::HashSet;

/// Keeps on our scans only the dynamic filters that hash joins publish.
///
/// A scan waits for its filters to be complete before it starts; a TopK
/// sort or an aggregate also publishes dynamic filters, but completes them
/// only after reading the scan, so waiting on those would stall. This rule
/// runs after DataFusion's filter pushdown.
#[derive(Debug)]
pub struct JoinKeysOnly(pub super::ScanOf);

impl PhysicalOptimizerRule for JoinKeysOnly {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let mut joins = HashSet::new();
        plan.apply(|node| {
            if node.downcast_ref::<HashJoinExec>().is_some() {
                joins.extend(
                    node.dynamic_expressions_produced()
                        .iter()
                        .filter_map(|d| d.expression_id()),
                );
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let keep = |filters: &[Arc<dyn PhysicalExpr>]| -> Option<Vec<Arc<dyn PhysicalExpr>>> {
            let kept: Vec<_> = filters
                .iter()
                .filter(|f| f.expression_id().is_some_and(|id| joins.contains(&id)))
                .cloned()
                .collect();
            (kept.len() != filters.len()).then_some(kept)
        };
        plan.transform_up(|node| {
            if let Some(s) = (self.0)(node.as_ref())
                && let Some(kept) = keep(s.dynamic_filters())
            {
                return Ok(Transformed::yes(s.with_dynamic_filters(kept)));
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "quipu_join_keys_only"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A condition on the scan's output columns, from a dynamic filter.
#[derive(Debug, Clone)]
pub enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    In(usize, Vec<ScalarValue>),
    Cmp(usize, Operator, ScalarValue),
    False,
}

fn column(e: &Arc<dyn PhysicalExpr>) -> Option<usize> {
    e.downcast_ref::<Column>().map(Column::index)
}

fn literal(e: &Arc<dyn PhysicalExpr>) -> Option<&ScalarValue> {
    e.downcast_ref::<Literal>().map(Literal::value)
}

/// `None` means "no restriction that we can read" (true).
fn cond(e: &Arc<dyn PhysicalExpr>) -> Option<Cond> {
    if let Some(b) = e.downcast_ref::<BinaryExpr>() {
        let (l, r) = (b.left(), b.right());
        return match b.op() {
            Operator::And => match (cond(l), cond(r)) {
                (None, None) => None,
                (Some(a), None) | (None, Some(a)) => Some(a),
                (Some(a), Some(b)) => Some(Cond::And(vec![a, b])),
            },
            Operator::Or => Some(Cond::Or(vec![cond(l)?, cond(r)?])),
            op @ (Operator::Eq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq) => {
                if let (Some(c), Some(v)) = (column(l), literal(r)) {
                    Some(Cond::Cmp(c, *op, v.clone()))
                } else if let (Some(v), Some(c)) = (literal(l), column(r)) {
                    Some(Cond::Cmp(c, op.swap()?, v.clone()))
                } else {
                    None
                }
            }
            _ => None,
        };
    }
    if let Some(i) = e.downcast_ref::<InListExpr>() {
        if i.negated() {
            return None;
        }
        let c = column(i.expr())?;
        let values = i
            .list()
            .iter()
            .map(|v| literal(v).cloned())
            .collect::<Option<Vec<_>>>()?;
        return Some(Cond::In(c, values));
    }
    if let Some(case) = e.downcast_ref::<CaseExpr>() {
        // One branch per partition of a partitioned join: a row passes if
        // it passes any branch.
        let else_false = case
            .else_expr()
            .is_none_or(|e| literal(e) == Some(&ScalarValue::Boolean(Some(false))));
        if !else_false {
            return None;
        }
        let branches = case
            .when_then_expr()
            .iter()
            .map(|(_, then)| cond(then))
            .collect::<Option<Vec<_>>>()?;
        return Some(Cond::Or(branches));
    }
    match literal(e) {
        Some(ScalarValue::Boolean(Some(false))) => Some(Cond::False),
        _ => None,
    }
}

/// What a scan answers to a filter pushdown, and the join-key filters it
/// keeps.
pub type Accepted = (
    FilterPushdownPropagation<Arc<dyn ExecutionPlan>>,
    Vec<Arc<dyn PhysicalExpr>>,
);

/// Accepts the dynamic filters among those a parent pushes (in the phase
/// where the join's filters come; [`JoinKeysOnly`] later keeps the joins'
/// ones) and reports every filter as not applied,
/// so the plan keeps its own checks.
pub fn accept(phase: FilterPushdownPhase, result: &ChildPushdownResult) -> Accepted {
    let dynamic = if phase == FilterPushdownPhase::Post {
        result
            .parent_filters
            .iter()
            .map(|f| f.filter.clone())
            .filter(|f| f.downcast_ref::<DynamicFilterPhysicalExpr>().is_some())
            .collect()
    } else {
        vec![]
    };
    let none = vec![PushedDown::No; result.parent_filters.len()];
    (
        FilterPushdownPropagation::with_parent_pushdown_result(none),
        dynamic,
    )
}

/// Shows a scan's join-key filters to `ExecutionPlan::apply_expressions`
/// (a hash join fills its filter only when a scan below it holds it).
pub fn visit(
    filters: &[Arc<dyn PhysicalExpr>],
    f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::error::Result<TreeNodeRecursion>,
) -> datafusion::error::Result<TreeNodeRecursion> {
    for e in filters {
        if f(e)? == TreeNodeRecursion::Stop {
            return Ok(TreeNodeRecursion::Stop);
        }
    }
    Ok(TreeNodeRecursion::Continue)
}

/// How a scan shows its join-key filters in EXPLAIN.
pub fn fmt_keys(
    f: &mut std::fmt::Formatter,
    filters: &[Arc<dyn PhysicalExpr>],
) -> std::fmt::Result {
    if filters.is_empty() {
        return Ok(());
    }
    write!(f, " semi_join_keys_from=[")?;
    for (i, d) in filters.iter().enumerate() {
        write!(f, "{}{d}", if i > 0 { ", " } else { "" })?;
    }
    write!(f, "]")
}

/// Waits until the joins that publish these filters have read their build
/// sides (a probe side may be started early, e.g. by a repartition that
/// reads ahead). Bounded: after `WAIT` the scan goes on with what is known,
/// which is always correct, only less selective.
pub async fn settle(filters: &[Arc<dyn PhysicalExpr>]) {
    const WAIT: std::time::Duration = std::time::Duration::from_secs(60);
    for f in filters {
        if let Some(d) = f.downcast_ref::<DynamicFilterPhysicalExpr>()
            && tokio::time::timeout(WAIT, d.wait_complete()).await.is_err()
        {
            tracing::warn!("a join's key filter was not ready after {WAIT:?}; reading without it");
        }
    }
}

pub fn current(filters: &[Arc<dyn PhysicalExpr>]) -> Vec<Cond> {
    filters
        .iter()
        .filter_map(|f| snapshot_physical_expr(Arc::clone(f)).ok())
        .filter_map(|e| cond(&e))
        .collect()
}

/// Join-key filters as a hash join publishes them, for the sources' tests.
#[cfg(test)]
pub mod fixtures {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_expr::expressions::lit;

    /// `sku` (text) and `id` (bigint).
    pub fn schema() -> Schema {
        Schema::new(vec![
            Field::new("sku", DataType::Utf8, true),
            Field::new("id", DataType::Int64, true),
        ])
    }

    /// `c >= lo AND c <= hi` on column `i` of [`schema`].
    pub fn range(i: usize, lo: ScalarValue, hi: ScalarValue) -> Arc<dyn PhysicalExpr> {
        let c: Arc<dyn PhysicalExpr> = Arc::new(Column::new(schema().field(i).name(), i));
        Arc::new(BinaryExpr::new(
            Arc::new(BinaryExpr::new(c.clone(), Operator::GtEq, lit(lo))),
            Operator::And,
            Arc::new(BinaryExpr::new(c, Operator::LtEq, lit(hi))),
        ))
    }

    /// A text range (not sendable: collations differ) and an IN list with
    /// a quote in it.
    pub fn sku_range_and_list() -> Arc<dyn PhysicalExpr> {
        let s = schema();
        let sku: Arc<dyn PhysicalExpr> = Arc::new(Column::new("sku", 0));
        let in_list = Arc::new(
            InListExpr::try_new(sku, vec![lit("O'Brien"), lit("SKU-1")], false, &s).unwrap(),
        ) as Arc<dyn PhysicalExpr>;
        Arc::new(BinaryExpr::new(
            range(0, "A".into(), "Z".into()),
            Operator::And,
            in_list,
        ))
    }
}
