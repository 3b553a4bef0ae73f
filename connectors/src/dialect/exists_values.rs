//! `EXISTS (subquery)` as a value: in a select list, a `CASE`, an
//! `ORDER BY`, a `GROUP BY` key.
//!
//! DataFusion 55 decorrelates `EXISTS` only in a filter (`WHERE`, `HAVING`);
//! anywhere else the physical planner refused it ("Physical plan does not
//! support logical expression Exists"), so `SELECT c.name, EXISTS (SELECT
//! 1 FROM orders o WHERE o.customer_id = c.id) AS has_orders` failed. This
//! analyzer rule reads such an `EXISTS` as `(SELECT count(*) FROM
//! subquery) > 0` (`NOT EXISTS` as `= 0`), a scalar subquery DataFusion
//! decorrelates, correlated or not (the count of no rows is 0, not NULL:
//! DataFusion handles that case of a correlated count). The value is the
//! same: `EXISTS` is never NULL, neither is a count.
//!
//! `x [NOT] IN (subquery)` and `x op ANY | ALL (subquery)` as values were
//! refused alike ("Physical plan does not support logical expression
//! InSubquery"; an `ALL` failed inside DataFusion's own rewrite, which
//! renamed the column). They are read as `EXISTS` tests, with SQL's NULLs:
//!
//! ```sql
//! x op ANY (q)  =  EXISTS (q WHERE x op v)
//!                  OR (((x IS NULL AND EXISTS (q)) OR EXISTS (q WHERE v IS NULL)) AND NULL)
//! x op ALL (q)  =  NOT (x negated-op ANY (q))
//! x IN (q)      =  x = ANY (q)
//! ```
//!
//! where `v` is the subquery's one column: a miss is unknown when `x` or
//! one of the values is NULL, and an empty subquery makes `ANY` FALSE and
//! `ALL` TRUE. For `=` (and the pattern operators) `x` moves into the
//! subquery as an outer reference, so the first test is correlated by `x
//! = v`, which DataFusion decorrelates (a join on the value). `<`, `<=`,
//! `>`, `>=` and `<>` compare `x` with the values' least or greatest
//! instead: DataFusion decorrelates no `x > v` (a pattern operator's
//! correlation is refused so, by name).
//!
//! Filters are left as they are: DataFusion's own rewrite of `EXISTS` there
//! (a semi or mark join) stops at the first matching row.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, ExprSchema, Result, ScalarValue, plan_err};
use datafusion::functions_aggregate::expr_fn::{count, max, min};
use datafusion::logical_expr::expr::{Exists, InSubquery, SetComparison, SetQuantifier};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, Operator, Subquery, binary_expr, lit,
};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct ExistsAsValues;

impl AnalyzerRule for ExistsAsValues {
    fn name(&self) -> &str {
        "quipu_exists_as_values"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(plan
            .transform_up_with_subqueries(|node| match node {
                LogicalPlan::Filter(_) => Ok(Transformed::no(node)),
                LogicalPlan::Aggregate(_) | LogicalPlan::Sort(_) if holds(&node, is_subquery) => {
                    Ok(Transformed::yes(pre_projected(node)?))
                }
                node => as_values(node),
            })?
            .data)
    }
}

/// A node's subquery tests as values ([`quantified`], [`counted`]).
fn as_values(node: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    // The columns `x` reads, merged only for a node that compares a value
    // with a subquery (every node of every plan comes through here).
    let quantified_here = holds(&node, |e| {
        matches!(e, Expr::InSubquery(_) | Expr::SetComparison(_))
    });
    let outer = match quantified_here {
        true => outer_schema(&node),
        false => DFSchema::empty(),
    };
    super::rewrite_keeping_names(node, |e| match e {
        Expr::InSubquery(InSubquery {
            expr,
            subquery,
            negated,
        }) => quantified(&outer, *expr, subquery, Operator::Eq, negated),
        Expr::SetComparison(SetComparison {
            expr,
            subquery,
            op,
            quantifier,
        }) => match (quantifier, op.negate()) {
            (SetQuantifier::Any, _) if is_comparison(op) => {
                quantified(&outer, *expr, subquery, op, false)
            }
            (SetQuantifier::All, Some(negated)) if is_comparison(op) => {
                quantified(&outer, *expr, subquery, negated, true)
            }
            (quantifier, _) => Ok(Transformed::no(Expr::SetComparison(SetComparison::new(
                expr, subquery, op, quantifier,
            )))),
        },
        e => counted(e),
    })
}

/// A subquery of an expression of the node's own (not one inside a
/// subquery).
fn is_subquery(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Exists(_) | Expr::InSubquery(_) | Expr::SetComparison(_) | Expr::ScalarSubquery(_)
    )
}

/// Whether the node's own expressions (not its subqueries') hold one
/// `found_by` picks.
fn holds(node: &LogicalPlan, found_by: impl Fn(&Expr) -> bool) -> bool {
    let mut found = false;
    let _ = node.apply_expressions(|e| {
        found |= e.exists(|x| Ok(found_by(x)))?;
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// An aggregate or a sort whose expressions hold subqueries, with those
/// computed first, in a projection below it, as columns it reads.
/// DataFusion decorrelates a subquery in a projection or a filter only:
/// `sum(CASE WHEN x IN (SELECT ...) THEN 1 END)`, `count(*) FILTER (WHERE
/// EXISTS (...))`, `GROUP BY x IN (...)` and `ORDER BY x IN (...)` were
/// refused ("Physical plan does not support logical expression").
/// A sort gets a projection above too, which drops those columns again.
fn pre_projected(node: LogicalPlan) -> Result<LogicalPlan> {
    let input = node.inputs()[0].clone();
    let names = NamePreserver::new(&node);
    let mut computed = Vec::new();
    let node = node
        .map_expressions(|e| {
            let saved = names.save(&e);
            Ok(e.transform_down(|x| {
                if !is_subquery(&x) {
                    return Ok(Transformed::no(x));
                }
                let name = format!("__quipu_subquery_{}", computed.len());
                computed.push(x.alias(&name));
                Ok(Transformed::new(
                    Expr::Column(Column::from_name(name)),
                    true,
                    TreeNodeRecursion::Jump,
                ))
            })?
            .update_data(|e| saved.restore(e)))
        })?
        .data;
    let columns: Vec<Expr> = super::columns_of(&input);
    let below = LogicalPlanBuilder::from(input)
        .project(columns.iter().cloned().chain(computed))?
        .build()?;
    let below = as_values(below)?.data;
    let node = node.with_new_exprs(node.expressions(), vec![below])?;
    match node {
        LogicalPlan::Sort(_) => LogicalPlanBuilder::from(node).project(columns)?.build(),
        node => node.recompute_schema(),
    }
}

/// The columns a node's expressions read: its inputs' (a `TableScan`'s
/// own for its filters).
fn outer_schema(node: &LogicalPlan) -> DFSchema {
    let mut schema = DFSchema::empty();
    for input in node.inputs() {
        schema.merge(input.schema());
    }
    if node.inputs().is_empty() {
        schema.merge(node.schema());
    }
    schema
}

fn is_comparison(op: Operator) -> bool {
    use Operator::*;
    matches!(
        op,
        Eq | NotEq
            | Lt
            | LtEq
            | Gt
            | GtEq
            | LikeMatch
            | ILikeMatch
            | NotLikeMatch
            | NotILikeMatch
            | RegexMatch
            | RegexIMatch
            | RegexNotMatch
            | RegexNotIMatch
    )
}

/// `x op ANY (q)`, or with `negated` `NOT (x op ANY (q))`, as `EXISTS`
/// tests (the module's formula), each then [`counted`].
fn quantified(
    outer: &DFSchema,
    x: Expr,
    q: Subquery,
    op: Operator,
    negated: bool,
) -> Result<Transformed<Expr>> {
    if q.subquery.schema().fields().len() != 1 {
        return plan_err!("a subquery compared with a value must return one column");
    }
    // The value under a name of its own: `x IN (SELECT qty FROM o)` over
    // `o` is correlated by `o.qty = o.qty`, which DataFusion's
    // decorrelation read as the inner table's own filter (every row
    // matched). (An alias of the whole subquery hid the columns a
    // correlated one's own filter reads.)
    // The name follows from the test alone (not a counter), so the same
    // query plans alike each time (the cache and EXPLAIN read plans).
    let name = {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        (q.subquery.as_ref(), &x, op).hash(&mut h);
        format!("__quipu_value_{:x}", h.finish() & 0xffff_ffff)
    };
    let inner = q.subquery.as_ref().clone();
    let value = Expr::Column(Column::from(inner.schema().qualified_field(0)));
    let plan = LogicalPlanBuilder::from(inner)
        .project(vec![value.alias(&name)])?
        .build()?;
    let v = Expr::Column(Column::from_name(name));
    // `x`'s columns are the node's; inside the subquery they are outer
    // references.
    let x_outer = x
        .clone()
        .transform(|e| match e {
            Expr::Column(c) => {
                let field = outer.field_from_column(&c)?;
                Ok(Transformed::yes(Expr::OuterReferenceColumn(
                    Arc::clone(field),
                    c,
                )))
            }
            e => Ok(Transformed::no(e)),
        })?
        .data;
    let test = |predicate: Option<Expr>| -> Result<Expr> {
        let rows = match predicate {
            Some(p) => LogicalPlanBuilder::from(plan.clone()).filter(p)?.build()?,
            None => plan.clone(),
        };
        let outer_ref_columns = rows.all_out_ref_exprs();
        let exists = Expr::Exists(Exists {
            subquery: Subquery {
                subquery: Arc::new(rows),
                outer_ref_columns,
                spans: q.spans.clone(),
            },
            negated: false,
        });
        Ok(counted(exists)?.data)
    };
    // An order's test reads the least or the greatest value, a subquery
    // of its own: correlated by `x > v`, it would be a join DataFusion does
    // not decorrelate.
    let extreme = |greatest: bool| -> Result<Expr> {
        let value = if greatest {
            max(v.clone())
        } else {
            min(v.clone())
        };
        let rows = LogicalPlanBuilder::from(plan.clone())
            .aggregate(Vec::<Expr>::new(), vec![value])?
            .build()?;
        Ok(Expr::ScalarSubquery(Subquery {
            outer_ref_columns: rows.all_out_ref_exprs(),
            subquery: Arc::new(rows),
            spans: q.spans.clone(),
        }))
    };
    let hit = match op {
        Operator::Gt | Operator::GtEq => binary_expr(x.clone(), op, extreme(false)?).is_true(),
        Operator::Lt | Operator::LtEq => binary_expr(x.clone(), op, extreme(true)?).is_true(),
        Operator::NotEq => x
            .clone()
            .not_eq(extreme(false)?)
            .is_true()
            .or(x.clone().not_eq(extreme(true)?).is_true()),
        _ => test(Some(binary_expr(x_outer, op, v.clone())))?,
    };
    let unknown = x.is_null().and(test(None)?).or(test(Some(v.is_null()))?);
    let value = hit.or(unknown.and(lit(ScalarValue::Boolean(None))));
    Ok(Transformed::yes(if negated { !value } else { value }))
}

/// `EXISTS (q)` as `(SELECT count(*) FROM q) > 0`.
fn counted(e: Expr) -> Result<Transformed<Expr>> {
    let Expr::Exists(Exists { subquery, negated }) = e else {
        return Ok(Transformed::no(e));
    };
    let plan = LogicalPlanBuilder::from(subquery.subquery.as_ref().clone())
        .aggregate(Vec::<Expr>::new(), vec![count(lit(1))])?
        .build()?;
    let n = Expr::ScalarSubquery(Subquery {
        subquery: Arc::new(plan),
        outer_ref_columns: subquery.outer_ref_columns,
        spans: subquery.spans,
    });
    Ok(Transformed::yes(if negated {
        n.eq(lit(0i64))
    } else {
        n.gt(lit(0i64))
    }))
}
