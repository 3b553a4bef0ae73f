//! `LIMIT` / `OFFSET` inside a correlated subquery: "the latest order of
//! each customer".
//!
//! ```sql
//! SELECT c.id, (SELECT o.total FROM orders o WHERE o.customer_id = c.id
//!               ORDER BY o.placed_at DESC LIMIT 1) FROM customers c;
//! SELECT c.id, x.* FROM customers c CROSS JOIN LATERAL
//!     (SELECT o.id FROM orders o WHERE o.customer_id = c.id
//!      ORDER BY o.id DESC LIMIT 2) x;
//! ```
//!
//! PostgreSQL runs the subquery once per outer row. DataFusion 55
//! decorrelates a subquery into a join, and cannot take a limit along:
//! these failed as "Physical plan does not support logical expression
//! ScalarSubquery" / "OuterReferenceColumn" / "InSubquery". This analyzer
//! rule (before Quipu's other subquery rules and DataFusion's) turns the
//! limit into a rank over the rows of each outer value:
//!
//! ```sql
//! ... WHERE o.customer_id = c.id ORDER BY k LIMIT n OFFSET m
//! =   ... WHERE o.customer_id = c.id AND __quipu_rn > m AND __quipu_rn <= m + n
//!     with __quipu_rn = row_number() OVER (PARTITION BY o.customer_id ORDER BY k)
//! ```
//!
//! Once DataFusion lifts the correlation out as the join's condition, the
//! rows of one outer value are exactly one partition, so each outer row
//! sees the same rows PostgreSQL's per-row run gives (among ties in `k`
//! either picks one; without `ORDER BY`, any `n`).
//!
//! Only a subquery correlated by equalities of inner expressions with
//! outer ones (the shape DataFusion decorrelates anyway) is rewritten, and
//! only when the inner expressions can be carried up to the sort through
//! projections, filters and groupings; any other shape is left as it was
//! and keeps its error.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Result};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::expr::Sort as SortExpr;
use datafusion::logical_expr::logical_plan::{FetchType, SkipType};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Distinct, Expr, ExprFunctionExt, Filter, Limit, LogicalPlan,
    LogicalPlanBuilder, Operator, Projection, lit,
};
use datafusion::optimizer::AnalyzerRule;

/// The rank's column; projected away again right above its filter.
const RANK: &str = "__quipu_rn";

#[derive(Debug, Default)]
pub struct CorrelatedLimits;

impl AnalyzerRule for CorrelatedLimits {
    fn name(&self) -> &str {
        "quipu_correlated_limits"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| match node {
            // A shape the rewrite cannot build (a name the added key would
            // make ambiguous) keeps the plan, and its error, as it was.
            LogicalPlan::Limit(limit) => match ranked(&limit) {
                Ok(Some(plan)) => Ok(Transformed::yes(plan)),
                _ => Ok(Transformed::no(LogicalPlan::Limit(limit))),
            },
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }
}

/// The limit as a rank filter, or None where it is not correlated (or not
/// in a shape this rule rewrites).
fn ranked(limit: &Limit) -> Result<Option<LogicalPlan>> {
    let (SkipType::Literal(skip), FetchType::Literal(fetch)) =
        (limit.get_skip_type()?, limit.get_fetch_type()?)
    else {
        return Ok(None);
    };
    if skip == 0 && fetch.is_none() {
        return Ok(None);
    }
    // A limit no larger than what it limits can ever be (`SELECT count(*)
    // ... LIMIT 1`) limits nothing.
    if skip == 0
        && let (Some(n), Some(max)) = (fetch, super::rows_at_most(&limit.input))
        && max <= n
        && correlated(&limit.input)?
    {
        return Ok(Some(limit.input.as_ref().clone()));
    }
    // The select list above the sort (DataFusion projects the sort keys
    // the select list lacks below the sort and drops them above).
    let mut above = vec![];
    let mut node = limit.input.as_ref();
    while let LogicalPlan::Projection(p) = node {
        above.push(p);
        node = p.input.as_ref();
    }
    let (order, rows): (Vec<SortExpr>, &LogicalPlan) = match node {
        LogicalPlan::Sort(s) if s.fetch.is_none() => (s.expr.clone(), s.input.as_ref()),
        _ => {
            above.clear();
            (vec![], limit.input.as_ref())
        }
    };
    let Some(keys) = inner_keys(rows)? else {
        return Ok(None);
    };
    let mut columns: Vec<Column> = vec![];
    for key in &keys {
        for c in key.column_refs() {
            if !columns.contains(c) {
                columns.push(c.clone());
            }
        }
    }
    let Some(exposed) = exposed(rows, &columns)? else {
        return Ok(None);
    };
    let mut range = vec![];
    if skip > 0 {
        range.push(Expr::Column(Column::from_name(RANK)).gt(lit(skip as u64)));
    }
    if let Some(n) = fetch {
        range.push(Expr::Column(Column::from_name(RANK)).lt_eq(lit((skip + n) as u64)));
    }
    // An empty ORDER BY would make DataFusion pick a RANGE frame, which it
    // then refuses without a key.
    let rank = row_number().partition_by(keys);
    let rank = if order.is_empty() {
        rank
    } else {
        rank.order_by(order)
    };
    let rank = rank.build()?.alias(RANK);
    let restored: Vec<Expr> = super::columns_of(rows);
    let mut plan = LogicalPlanBuilder::from(exposed)
        .window(vec![rank])?
        .filter(
            range
                .into_iter()
                .reduce(Expr::and)
                .expect("a skip or a fetch"),
        )?
        .project(restored)?
        .build()?;
    for p in above.into_iter().rev() {
        plan = LogicalPlan::Projection(Projection::try_new(p.expr.clone(), Arc::new(plan))?);
    }
    Ok(Some(plan))
}

/// The inner sides of the equalities that correlate `plan` with its outer
/// query, or None where it is not correlated or is correlated otherwise
/// (an outer column anywhere else: a select list, a join condition, a
/// comparison that is not `=`). Nested subqueries are their own scope.
fn inner_keys(plan: &LogicalPlan) -> Result<Option<Vec<Expr>>> {
    let mut keys = vec![];
    let mut other = false;
    plan.apply(|node| {
        if matches!(node, LogicalPlan::Subquery(_)) {
            return Ok(TreeNodeRecursion::Jump);
        }
        if let LogicalPlan::Filter(f) = node {
            for p in split_conjunction(&f.predicate) {
                if !p.contains_outer() {
                    continue;
                }
                match inner_side(p) {
                    Some(inner) => {
                        if !keys.contains(inner) {
                            keys.push(inner.clone());
                        }
                    }
                    None => other = true,
                }
            }
        } else if node.contains_outer_reference() {
            other = true;
        }
        Ok(if other {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    Ok((!other && !keys.is_empty()).then_some(keys))
}

/// Whether `plan` reads its outer query's columns (in its own scope).
fn correlated(plan: &LogicalPlan) -> Result<bool> {
    let mut found = false;
    plan.apply(|node| {
        if matches!(node, LogicalPlan::Subquery(_)) {
            return Ok(TreeNodeRecursion::Jump);
        }
        found = node.contains_outer_reference();
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    Ok(found)
}

/// `inner = outer` or `outer = inner`: the inner expression.
fn inner_side(p: &Expr) -> Option<&Expr> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Eq,
        right,
    }) = p
    else {
        return None;
    };
    let outer_only = |e: &Expr| e.contains_outer() && e.column_refs().is_empty();
    let inner_only = |e: &Expr| !e.contains_outer() && !e.column_refs().is_empty();
    if inner_only(left) && outer_only(right) {
        Some(left)
    } else if outer_only(left) && inner_only(right) {
        Some(right)
    } else {
        None
    }
}

/// The `columns` not in `schema`, as expressions.
fn missing<'a>(
    columns: &'a [Column],
    schema: &'a datafusion::common::DFSchema,
) -> impl Iterator<Item = Expr> + 'a {
    columns
        .iter()
        .filter(|c| !schema.has_column(c))
        .map(|c| Expr::Column(c.clone()))
}

/// `plan` with `columns` in its output: projections between it and the
/// filter that reads them pass them up, groupings group by them too and
/// `DISTINCT` keeps them. None where another node (a join's other side, a
/// derived table's new name, an aggregate without GROUP BY) hides them.
fn exposed(plan: &LogicalPlan, columns: &[Column]) -> Result<Option<LogicalPlan>> {
    let schema = plan.schema();
    if columns.iter().all(|c| schema.has_column(c)) {
        return Ok(Some(plan.clone()));
    }
    match plan {
        LogicalPlan::Projection(p) => {
            let Some(input) = exposed(&p.input, columns)? else {
                return Ok(None);
            };
            let mut exprs = p.expr.clone();
            exprs.extend(missing(columns, schema));
            Ok(Some(LogicalPlan::Projection(Projection::try_new(
                exprs,
                Arc::new(input),
            )?)))
        }
        LogicalPlan::Filter(f) => {
            let Some(input) = exposed(&f.input, columns)? else {
                return Ok(None);
            };
            Ok(Some(LogicalPlan::Filter(Filter::try_new(
                f.predicate.clone(),
                Arc::new(input),
            )?)))
        }
        // Likewise rows made distinct: the keys are the same on all.
        LogicalPlan::Distinct(Distinct::All(input)) => Ok(exposed(input, columns)?
            .map(|input| LogicalPlan::Distinct(Distinct::All(Arc::new(input))))),
        // A grouping below the correlation's filter groups rows of one outer
        // value only, on which the keys are constant: grouping by them too
        // makes the same groups. (Not an aggregate without GROUP BY: it
        // has a row even where no row matches, a grouped one has none.)
        LogicalPlan::Aggregate(a)
            if !a.group_expr.is_empty()
                && !a
                    .group_expr
                    .iter()
                    .any(|e| matches!(e, Expr::GroupingSet(_))) =>
        {
            let Some(input) = exposed(&a.input, columns)? else {
                return Ok(None);
            };
            let mut group = a.group_expr.clone();
            group.extend(missing(columns, schema));
            Ok(Some(LogicalPlan::Aggregate(Aggregate::try_new(
                Arc::new(input),
                group,
                a.aggr_expr.clone(),
            )?)))
        }
        _ => Ok(None),
    }
}
