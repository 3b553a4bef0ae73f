//! A `LATERAL` subquery that computes its rows from the outer row alone,
//! planned over the outer rows.
//!
//! `FROM items i, unnest(i.tags) t` (written as `LATERAL (SELECT
//! unnest(i.tags) AS t)` by `dialect::from_functions`), `CROSS JOIN
//! LATERAL generate_series(1, o.qty)`, `CROSS JOIN LATERAL (SELECT o.a * 2
//! AS x)`: the subquery has no table, only projections, filters and
//! unnests over one empty row, each reading the outer row. DataFusion 55
//! decorrelates only subqueries that join their own tables to the outer
//! ones, and refused these ("Physical plan does not support logical
//! expression OuterReferenceColumn"). Such a subquery is the same
//! operators run over the outer rows themselves, each keeping the outer
//! columns beside its own: the outer references become plain columns and
//! the empty row becomes the join's left side.
//!
//! A `LEFT JOIN LATERAL ... ON true` keeps an outer row whose set is empty
//! with NULLs, as PostgreSQL does; that is DataFusion's unnest option
//! `PreserveAndExpandEmpty`, so only a subquery that is an unnest and
//! names of its values (no filter, no computed column that a NULL row
//! would fill in) is planned so. Anything else is left to DataFusion.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, NullHandling, ScalarValue};
use datafusion::logical_expr::builder::unnest_with_options;
use datafusion::logical_expr::{
    Expr, Filter, JoinType, LogicalPlan, LogicalPlanBuilder, Projection,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

#[derive(Debug, Default)]
pub struct LateralRows;

impl OptimizerRule for LateralRows {
    fn name(&self) -> &str {
        "quipu_lateral_rows"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> datafusion::error::Result<Transformed<LogicalPlan>> {
        match over_outer_rows(&plan) {
            Some(rewritten) => Ok(Transformed::yes(rewritten)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// The join planned over its left side's rows, if it is such a join.
fn over_outer_rows(plan: &LogicalPlan) -> Option<LogicalPlan> {
    let LogicalPlan::Join(join) = plan else {
        return None;
    };
    let always = match &join.filter {
        None => true,
        Some(Expr::Literal(ScalarValue::Boolean(Some(true)), _)) => true,
        Some(_) => false,
    };
    let keep_empty = match join.join_type {
        JoinType::Inner => false,
        JoinType::Left if always => true,
        _ => return None,
    };
    if !join.on.is_empty() {
        return None;
    }
    // The right side: aliases over the subquery.
    let mut right = join.right.as_ref();
    while let LogicalPlan::SubqueryAlias(a) = right {
        right = a.input.as_ref();
    }
    let LogicalPlan::Subquery(subquery) = right else {
        return None;
    };
    if subquery.outer_ref_columns.is_empty() {
        return None;
    }
    if keep_empty && !only_unnested(&subquery.subquery) {
        return None;
    }
    let grafted = graft(&subquery.subquery, &join.left, keep_empty)?;
    // The join's columns: the left's, then the subquery's under the
    // join's names for them.
    let left = join.left.schema().fields().len();
    let exprs = join
        .schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            let own = Expr::Column(Column::from(grafted.schema().qualified_field(i)));
            if i < left {
                own
            } else {
                own.alias_qualified(qualifier.cloned(), field.name())
            }
        })
        .collect::<Vec<_>>();
    let mut out = LogicalPlanBuilder::from(grafted).project(exprs).ok()?;
    if !always {
        out = out.filter(join.filter.clone()?).ok()?;
    }
    let out = out.build().ok()?;
    (out.schema().fields().len() == join.schema.fields().len()).then_some(out)
}

/// Whether a subquery is names of unnested values over one empty row
/// (what `unnest(x) AS t` and `generate_series(...) AS g` become).
fn only_unnested(plan: &LogicalPlan) -> bool {
    let LogicalPlan::Projection(p) = plan else {
        return false;
    };
    let named = p
        .expr
        .iter()
        .all(|e| matches!(e.clone().unalias_nested().data, Expr::Column(_)));
    let LogicalPlan::Unnest(u) = p.input.as_ref() else {
        return false;
    };
    let LogicalPlan::Projection(below) = u.input.as_ref() else {
        return false;
    };
    named && matches!(below.input.as_ref(), LogicalPlan::EmptyRelation(e) if e.produce_one_row)
}

/// `plan` with its one empty row replaced by `left`'s rows and its outer
/// references by `left`'s columns, each projection keeping `left`'s
/// columns first. `None` where a node is not one that works row by row,
/// or reads what `left` does not have.
fn graft(plan: &LogicalPlan, left: &Arc<LogicalPlan>, keep_empty: bool) -> Option<LogicalPlan> {
    match plan {
        LogicalPlan::EmptyRelation(e) if e.produce_one_row => Some(left.as_ref().clone()),
        LogicalPlan::Projection(p) => {
            let input = graft(&p.input, left, keep_empty)?;
            let mut exprs: Vec<Expr> = crate::dialect::columns_of(left);
            for (e, (q, f)) in p.expr.iter().zip(p.schema.iter()) {
                let (plain, changed) = inner_columns(e, left)?;
                exprs.push(match changed {
                    true => plain.unalias().alias_qualified(q.cloned(), f.name()),
                    false => plain,
                });
            }
            Projection::try_new(exprs, Arc::new(input))
                .ok()
                .map(LogicalPlan::Projection)
        }
        LogicalPlan::Filter(f) if !keep_empty => {
            let input = graft(&f.input, left, keep_empty)?;
            let (predicate, _) = inner_columns(&f.predicate, left)?;
            Filter::try_new(predicate, Arc::new(input))
                .ok()
                .map(LogicalPlan::Filter)
        }
        LogicalPlan::Unnest(u) if u.struct_type_columns.is_empty() => {
            let input = graft(&u.input, left, keep_empty)?;
            let mut options = u.options.clone();
            if keep_empty {
                options.null_handling = NullHandling::PreserveAndExpandEmpty;
            }
            unnest_with_options(input, u.exec_columns.clone(), options).ok()
        }
        _ => None,
    }
}

/// `e` with its outer references as columns of `left`, and whether it had
/// any; `None` if it reads a subquery or an outer column `left` lacks.
fn inner_columns(e: &Expr, left: &LogicalPlan) -> Option<(Expr, bool)> {
    let mut foreign = false;
    let done = e
        .clone()
        .transform(|x| match x {
            Expr::OuterReferenceColumn(field, column) => {
                let Ok((_, own)) = left.schema().qualified_field_from_column(&column) else {
                    foreign = true;
                    return Ok(Transformed::no(Expr::OuterReferenceColumn(field, column)));
                };
                // The reference keeps the type it was planned with: an
                // analyzer rule may have retyped the column since
                // (`VALUES (1)` is an `integer` now, its reference a
                // `bigint`), and the expressions around it are typed for
                // the reference.
                let plain = match own.data_type() == field.data_type() {
                    true => Expr::Column(column),
                    false => Expr::Cast(datafusion::logical_expr::expr::Cast::new(
                        Box::new(Expr::Column(column)),
                        field.data_type().clone(),
                    )),
                };
                Ok(Transformed::yes(plain))
            }
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => {
                foreign = true;
                Ok(Transformed::no(x))
            }
            x => Ok(Transformed::no(x)),
        })
        .ok()?;
    (!foreign).then_some((done.data, done.transformed))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;

    /// Sets computed from each outer row, in a whole Quipu session:
    /// PostgreSQL's rows, where DataFusion refused the outer reference.
    #[tokio::test]
    async fn sets_of_the_outer_row_are_computed_over_the_outer_rows() {
        let state = crate::session::build_state(
            std::sync::Arc::new(datafusion::catalog::MemoryCatalogProviderList::new()),
            datafusion::prelude::SessionConfig::new(),
            std::sync::Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()),
        );
        let ctx = SessionContext::new_with_state(state);
        let outer = "(VALUES (1, [7]), (2, []), (0, NULL)) AS c(k, a)";
        for (sql, want) in [
            (
                format!(
                    "SELECT c.k, s.g FROM {outer} CROSS JOIN LATERAL \
                     (SELECT unnest(generate_series(1, c.k)) AS g) s ORDER BY 1, 2"
                ),
                "1 1|2 1|2 2",
            ),
            // An empty or NULL set keeps its row, with NULL.
            (
                format!(
                    "SELECT c.k, s.x FROM {outer} LEFT JOIN LATERAL \
                     (SELECT unnest(c.a) AS x) s ON true ORDER BY 1"
                ),
                "0 |1 7|2 ",
            ),
            // A projection of the outer row alone, under a filter.
            (
                format!(
                    "SELECT c.k, s.y FROM {outer} CROSS JOIN LATERAL \
                     (SELECT c.k * 10 AS y WHERE c.k > 0) s ORDER BY 1"
                ),
                "1 10|2 20",
            ),
        ] {
            let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
            let text = pretty_format_batches(&batches).unwrap().to_string();
            let rows: Vec<String> = text
                .lines()
                .filter(|l| l.starts_with("| ") && !l.contains(" k "))
                .map(|l| {
                    l.trim_matches('|')
                        .split('|')
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            assert_eq!(rows.join("|"), want, "{sql}");
        }
    }
}
