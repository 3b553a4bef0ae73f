//! Intervals group as PostgreSQL groups them (issue 22): by their span, a
//! month 30 days and a day 24 hours (`interval_cmp_value`), so `GROUP BY`
//! and `DISTINCT` put `1 day` and `24 hours` in one group, as `=` does.
//! Arrow hashes an interval field by field, which made them two.
//!
//! A grouping by an interval `x` becomes a grouping by its span
//! (`quipu_interval_key(x)`) that shows one of the group's values
//! (`first_value(x)`): PostgreSQL shows the first its hash table met, so
//! which of equal intervals is shown is the engine's choice in both. A
//! projection above gives the node its columns back under their names, so
//! the nodes above it read them as before.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Distinct, Expr, ExprSchemable, LogicalPlan, Projection, col,
};
use quipu_connectors::dialect::interval_parts::interval_key;
use std::sync::Arc;

/// `plan` with its groupings by intervals made by span (subqueries
/// included).
pub fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| match node {
        LogicalPlan::Distinct(Distinct::All(input)) if has_interval(&input) => {
            let groups = input.schema().columns().into_iter().map(Expr::Column);
            let aggregate = Aggregate::try_new(input, groups.collect(), vec![])?;
            by_span(aggregate).map(Transformed::yes)
        }
        LogicalPlan::Aggregate(a) => {
            let schema = a.input.schema().clone();
            let any = !a
                .group_expr
                .iter()
                .any(|g| matches!(g, Expr::GroupingSet(_)))
                && a.group_expr
                    .iter()
                    .any(|g| matches!(g.get_type(&schema), Ok(DataType::Interval(_))));
            match any {
                true => by_span(a).map(Transformed::yes),
                false => Ok(Transformed::no(LogicalPlan::Aggregate(a))),
            }
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

fn has_interval(plan: &LogicalPlan) -> bool {
    plan.schema()
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Interval(_)))
}

/// `a` grouped by its intervals' spans, under a projection that names its
/// columns as `a` named them.
fn by_span(a: Aggregate) -> Result<LogicalPlan> {
    let schema = a.input.schema().clone();
    let original = a.schema.clone();
    let mut groups = Vec::with_capacity(a.group_expr.len());
    let mut shown = Vec::new();
    // Each output column of `a`, as the column of the new node that holds it.
    let mut outputs = Vec::with_capacity(original.fields().len());
    for (i, g) in a.group_expr.iter().enumerate() {
        if matches!(g.get_type(&schema)?, DataType::Interval(_)) {
            let key = format!("__quipu_interval_span_{i}");
            let value = format!("__quipu_interval_value_{i}");
            groups.push(interval_key().call(vec![g.clone()]).alias(&key));
            let first = Expr::AggregateFunction(AggregateFunction::new_udf(
                datafusion::functions_aggregate::first_last::first_value_udaf(),
                vec![g.clone()],
                false,
                None,
                vec![],
                None,
            ));
            shown.push(first.alias(&value));
            outputs.push(col(value));
        } else {
            groups.push(g.clone());
            outputs.push(Expr::Column(column_of(&a, i)));
        }
    }
    let group_count = a.group_expr.len();
    let mut aggregates = a.aggr_expr.clone();
    for (j, _) in a.aggr_expr.iter().enumerate() {
        outputs.push(Expr::Column(column_of(&a, group_count + j)));
    }
    aggregates.extend(shown);
    let node = Aggregate::try_new(a.input.clone(), groups, aggregates)?;
    let node = LogicalPlan::Aggregate(node);
    let exprs = outputs
        .into_iter()
        .zip(original.iter())
        .map(|(e, (qualifier, field))| e.alias_qualified(qualifier.cloned(), field.name()))
        .collect();
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(node),
    )?))
}

/// The column of `a`'s output `i`, as a node built from `a`'s expressions
/// names it.
fn column_of(a: &Aggregate, i: usize) -> datafusion::common::Column {
    let (qualifier, field) = a.schema.qualified_field(i);
    datafusion::common::Column::new(qualifier.cloned(), field.name())
}
