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

use datafusion::arrow::datatypes::{DataType, Schema};
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
use mongodb::bson::{Bson, Document, doc};
use std::collections::HashSet;

/// Keeps on our scans only the dynamic filters that hash joins publish.
///
/// A scan waits for its filters to be complete before it starts; a TopK
/// sort or an aggregate also publishes dynamic filters, but completes them
/// only after reading the scan, so waiting on those would stall. This rule
/// runs after DataFusion's filter pushdown.
#[derive(Debug, Default)]
pub struct JoinKeysOnly;

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
            if let Some(s) = node.downcast_ref::<crate::postgres::PgScanExec>()
                && let Some(kept) = keep(s.dynamic_filters())
            {
                return Ok(Transformed::yes(Arc::new(s.with_dynamic_filters(kept)) as _));
            }
            if let Some(s) = node.downcast_ref::<crate::mongo::MongoScanExec>()
                && let Some(kept) = keep(s.dynamic_filters())
            {
                return Ok(Transformed::yes(Arc::new(s.with_dynamic_filters(kept)) as _));
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
enum Cond {
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

fn current(filters: &[Arc<dyn PhysicalExpr>]) -> Vec<Cond> {
    filters
        .iter()
        .filter_map(|f| snapshot_physical_expr(Arc::clone(f)).ok())
        .filter_map(|e| cond(&e))
        .collect()
}

/// The dynamic filters' current value as SQL conditions on `f."cN"` (the
/// scan's output columns by position).
pub fn to_sql(filters: &[Arc<dyn PhysicalExpr>], schema: &Schema) -> Vec<String> {
    fn render(c: &Cond, schema: &Schema) -> Option<String> {
        let col = |i: usize| format!("f.\"c{i}\"");
        match c {
            Cond::False => Some("FALSE".into()),
            Cond::And(parts) => {
                let parts: Vec<String> = parts.iter().filter_map(|p| render(p, schema)).collect();
                (!parts.is_empty()).then(|| format!("({})", parts.join(" AND ")))
            }
            Cond::Or(parts) => {
                let parts = parts
                    .iter()
                    .map(|p| render(p, schema))
                    .collect::<Option<Vec<_>>>()?;
                Some(format!("({})", parts.join(" OR ")))
            }
            Cond::In(i, values) => {
                schema.fields().get(*i)?;
                // NULL keys never match an equi-join.
                let values: Vec<String> = values
                    .iter()
                    .filter(|v| !v.is_null())
                    .map(crate::remote_sql::sql_literal)
                    .collect::<Option<Vec<_>>>()?;
                if values.is_empty() {
                    return Some("FALSE".into());
                }
                Some(format!("{} IN ({})", col(*i), values.join(", ")))
            }
            Cond::Cmp(i, op, v) => {
                let t = schema.fields().get(*i)?.data_type();
                // String order depends on the remote collation.
                if !(t.is_integer()
                    || t.is_floating()
                    || matches!(
                        t,
                        DataType::Decimal128(..) | DataType::Date32 | DataType::Timestamp(..)
                    ))
                {
                    return None;
                }
                let sql_op = match op {
                    Operator::Eq => "=",
                    Operator::Lt => "<",
                    Operator::LtEq => "<=",
                    Operator::Gt => ">",
                    Operator::GtEq => ">=",
                    _ => return None,
                };
                Some(format!(
                    "{} {sql_op} {}",
                    col(*i),
                    crate::remote_sql::sql_literal(v)?
                ))
            }
        }
    }
    current(filters)
        .iter()
        .filter_map(|c| render(c, schema))
        .collect()
}

/// The dynamic filters' current value as MongoDB query documents on the
/// scan's fields.
pub fn to_mongo(filters: &[Arc<dyn PhysicalExpr>], schema: &Schema) -> Vec<Document> {
    fn render(c: &Cond, schema: &Schema) -> Option<Document> {
        match c {
            Cond::False => Some(doc! { "_id": { "$exists": false } }),
            Cond::And(parts) => {
                let parts: Vec<Bson> = parts
                    .iter()
                    .filter_map(|p| render(p, schema))
                    .map(Bson::Document)
                    .collect();
                (!parts.is_empty()).then(|| doc! { "$and": parts })
            }
            Cond::Or(parts) => {
                let parts = parts
                    .iter()
                    .map(|p| render(p, schema).map(Bson::Document))
                    .collect::<Option<Vec<_>>>()?;
                Some(doc! { "$or": parts })
            }
            Cond::In(i, values) => {
                let f = schema.fields().get(*i)?;
                let values: Vec<&ScalarValue> = values.iter().filter(|v| !v.is_null()).collect();
                crate::mongo::field_in(f.name(), &values, f.data_type())
            }
            Cond::Cmp(i, op, v) => {
                let f = schema.fields().get(*i)?;
                crate::mongo::field_condition(f.name(), *op, v, f.data_type())
            }
        }
    }
    current(filters)
        .iter()
        .filter_map(|c| render(c, schema))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::lit;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("sku", DataType::Utf8, true),
            Field::new("id", DataType::Int64, true),
        ])
    }

    #[test]
    fn in_lists_and_numeric_ranges_are_sent_string_ranges_are_not() {
        let s = schema();
        let sku: Arc<dyn PhysicalExpr> = Arc::new(Column::new("sku", 0));
        let id: Arc<dyn PhysicalExpr> = Arc::new(Column::new("id", 1));
        let range = |c: &Arc<dyn PhysicalExpr>, lo: ScalarValue, hi: ScalarValue| {
            Arc::new(BinaryExpr::new(
                Arc::new(BinaryExpr::new(c.clone(), Operator::GtEq, lit(lo))),
                Operator::And,
                Arc::new(BinaryExpr::new(c.clone(), Operator::LtEq, lit(hi))),
            )) as Arc<dyn PhysicalExpr>
        };
        let in_list = Arc::new(
            InListExpr::try_new(sku.clone(), vec![lit("O'Brien"), lit("SKU-1")], false, &s)
                .unwrap(),
        ) as Arc<dyn PhysicalExpr>;
        let f: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            range(&sku, "A".into(), "Z".into()),
            Operator::And,
            in_list,
        ));
        assert_eq!(
            to_sql(std::slice::from_ref(&f), &s),
            vec!["(f.\"c0\" IN (E'O''Brien', E'SKU-1'))".to_string()]
        );
        let m = to_mongo(&[f], &s);
        assert_eq!(m.len(), 1);
        assert!(m[0].to_string().contains("$in"), "{}", m[0]);
        let r = range(
            &id,
            ScalarValue::Int64(Some(3)),
            ScalarValue::Int64(Some(9)),
        );
        assert_eq!(
            to_sql(&[r], &s),
            vec!["(f.\"c1\" >= 3 AND f.\"c1\" <= 9)".to_string()]
        );
    }
}
