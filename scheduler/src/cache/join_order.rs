//! Inner joins in one order, so that a query joining its tables in
//! another order than a cache's query is still the cache's query.
//!
//! The canonical form of [`super::rewrite`] names a column by its
//! position, so `a JOIN b` and `b JOIN a` differ there. Before the two
//! are compared, each tree of inner joins (inner joins directly under
//! inner joins) is rebuilt the same way whatever order it was written in:
//! its inputs sorted by their own canonical form and joined left-deep; of
//! its conditions (`ON` and the `WHERE` right over it), those that read
//! two or more inputs AND-ed on the top join, the others in one filter
//! over the tree. Inner joins commute and associate, and a condition of
//! an inner join means the same in `ON` or in `WHERE`, so the rows are the
//! same; only the order of the tree's output columns changes. Conditions
//! are moved only when none holds a volatile function or a subquery.
//!
//! That is safe only where nothing above reads the tree's columns by
//! position. DataFusion's expressions name columns (qualifier and name),
//! so a projection or an aggregate above re-establishes its own order,
//! and filters, sorts, limits, aliases, windows and other joins between
//! them pass columns on by name. A tree under anything else (a union, an
//! unnest, a node this module does not know) is left as written. Inputs
//! with the same canonical form (a self-join) keep their written order
//! among themselves, so such a tree matches only a cache that wrote it
//! the same way: a missed match, never a wrong one.

use std::sync::Arc;

use datafusion::common::NullEquality;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::utils::{conjunction, split_conjunction_owned};
use datafusion::logical_expr::{
    Distinct, Expr, Filter, Join, JoinConstraint, JoinType, LogicalPlan,
};

use super::rewrite::Canon;

/// `plan` with its trees of inner joins rebuilt in canonical order, where
/// nothing reads their columns by position. The output of `plan` itself
/// keeps its columns' order: a tree at the top is left as written.
pub(crate) fn in_canonical_order(plan: LogicalPlan, canon: &Canon) -> DfResult<LogicalPlan> {
    Ok(reorder(plan, canon, false)?.data)
}

/// `free`: whatever reads `plan`'s output reads it by name, so the order
/// of its columns may change.
fn reorder(plan: LogicalPlan, canon: &Canon, free: bool) -> DfResult<Transformed<LogicalPlan>> {
    let children_free = match &plan {
        // These set their own output from named expressions.
        LogicalPlan::Projection(_) | LogicalPlan::Aggregate(_) => true,
        // These pass their input's columns on, by name.
        LogicalPlan::Filter(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Distinct(Distinct::All(_))
        | LogicalPlan::Window(_)
        | LogicalPlan::Join(_) => free,
        _ => false,
    };
    let plan = plan.map_children(|c| reorder(c, canon, children_free))?;
    let (plan, changed) = if plan.transformed {
        (plan.data.recompute_schema()?, true)
    } else {
        (plan.data, false)
    };
    let out = match &plan {
        LogicalPlan::Join(j) if free && reorderable(j) => rebuilt(&plan, vec![], canon)?,
        LogicalPlan::Filter(_) if free => {
            // The conditions of the filters over the tree (ours included,
            // when the tree below was rebuilt already).
            let mut over = Vec::new();
            let mut below = &plan;
            while let LogicalPlan::Filter(f) = below
                && plain(&f.predicate)
            {
                over.extend(split_conjunction_owned(f.predicate.clone()));
                below = f.input.as_ref();
            }
            match below {
                LogicalPlan::Join(j) if reorderable(j) => rebuilt(below, over, canon)?,
                _ => None,
            }
        }
        _ => None,
    };
    Ok(match out {
        Some(p) => Transformed::yes(p),
        None => Transformed::new_transformed(plan, changed),
    })
}

/// An inner join of rows whose conditions are plain filters (no `NULL =
/// NULL` keys, no null-aware anti join semantics).
fn reorderable(j: &Join) -> bool {
    j.join_type == JoinType::Inner
        && j.null_equality == NullEquality::NullEqualsNothing
        && !j.null_aware
        && [&j.filter]
            .into_iter()
            .flatten()
            .chain(j.on.iter().flat_map(|(l, r)| [l, r]))
            .all(plain)
}

/// A condition that may move between `WHERE` and `ON` and between joins:
/// one that gives the same answer wherever it runs (no volatile function,
/// no subquery).
fn plain(e: &Expr) -> bool {
    !e.is_volatile()
        && !e
            .exists(|x| {
                Ok(matches!(
                    x,
                    Expr::ScalarSubquery(_)
                        | Expr::Exists(_)
                        | Expr::InSubquery(_)
                        | Expr::OuterReferenceColumn(..)
                ))
            })
            .unwrap_or(true)
}

/// The inputs of the tree of inner joins under (and including) `plan`,
/// and its conditions.
fn gather(plan: &LogicalPlan, inputs: &mut Vec<LogicalPlan>, conditions: &mut Vec<Expr>) {
    match plan {
        LogicalPlan::Join(j) if reorderable(j) => {
            conditions.extend(j.on.iter().map(|(l, r)| l.clone().eq(r.clone())));
            conditions.extend(
                j.filter
                    .iter()
                    .flat_map(|f| split_conjunction_owned(f.clone())),
            );
            gather(&j.left, inputs, conditions);
            gather(&j.right, inputs, conditions);
        }
        other => inputs.push(other.clone()),
    }
}

/// The tree of inner joins `tree`, with the conditions `over` it (a
/// `WHERE` on it), rebuilt in canonical order: its inputs sorted by their
/// canonical form and joined left-deep, the conditions that read two or
/// more of them on the top join, the others in a filter over it. None when
/// an input has no canonical form.
fn rebuilt(tree: &LogicalPlan, over: Vec<Expr>, canon: &Canon) -> DfResult<Option<LogicalPlan>> {
    let mut inputs = Vec::new();
    let mut conditions = over;
    gather(tree, &mut inputs, &mut conditions);
    let Some(keys) = inputs
        .iter()
        .map(|i| canon.plan(i))
        .collect::<Option<Vec<String>>>()
    else {
        return Ok(None);
    };
    let (joining, filtering): (Vec<Expr>, Vec<Expr>) = conditions.into_iter().partition(|c| {
        let columns = c.column_refs();
        inputs
            .iter()
            .filter(|i| columns.iter().any(|col| i.schema().has_column(col)))
            .count()
            > 1
    });
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    // Stable: inputs with the same form keep their written order.
    order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
    let mut inputs: Vec<Option<LogicalPlan>> = inputs.into_iter().map(Some).collect();
    let mut take = |i: usize| Arc::new(inputs[i].take().expect("each input once"));
    let mut out = take(order[0]);
    let mut joining = Some(joining);
    let last = order.len() - 1;
    for (n, &i) in order.iter().enumerate().skip(1) {
        let filter = if n == last {
            conjunction(joining.take().unwrap_or_default())
        } else {
            None
        };
        out = Arc::new(LogicalPlan::Join(Join::try_new(
            out,
            take(i),
            vec![],
            filter,
            JoinType::Inner,
            JoinConstraint::On,
            NullEquality::NullEqualsNothing,
            false,
        )?));
    }
    Ok(Some(match conjunction(filtering) {
        Some(predicate) => LogicalPlan::Filter(Filter::try_new(predicate, out)?),
        None => Arc::unwrap_or_clone(out),
    }))
}
