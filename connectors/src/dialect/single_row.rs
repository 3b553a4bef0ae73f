//! Correlated scalar subqueries that are not aggregated.
//!
//! PostgreSQL runs `(SELECT d.adbin FROM pg_attrdef d WHERE d.adrelid =
//! a.attrelid)` per outer row and fails only if it returns more than one
//! row. DataFusion 55 refuses to plan it ("Correlated scalar subquery must
//! be aggregated to return at most one row"), so SQLAlchemy's column
//! reflection, the JDBC driver's `getTypeInfo` and plenty of hand-written
//! lookups did not run. This analyzer rule aggregates such a subquery with
//! `quipu_single(x)`: NULL for no row, the value for one, PostgreSQL's
//! error for more. DataFusion then decorrelates it as it does `max(x)`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Result, ScalarValue, not_impl_err};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{conjunction, split_conjunction_owned};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Expr, Filter, LogicalPlan, LogicalPlanBuilder,
    Operator, Signature, Subquery, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// The aggregate's name in plans.
pub const SINGLE: &str = "quipu_single";

#[derive(Debug, Default)]
pub struct AggregateScalarSubqueries;

impl AnalyzerRule for AggregateScalarSubqueries {
    fn name(&self) -> &str {
        "quipu_aggregate_scalar_subqueries"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        let mut lifted = 0;
        plan.transform_up_with_subqueries(|node| {
            // A `LATERAL` subquery (a join's input) that aggregates fails
            // the same way ("Schema error: No field named z.id").
            let node = match node {
                LogicalPlan::Join(_) => node.map_children(keyed_lateral)?.data,
                node => node,
            };
            if let LogicalPlan::Join(join) = &node {
                for input in [&join.left, &join.right] {
                    let mut input = input.as_ref();
                    while let LogicalPlan::SubqueryAlias(a) = input {
                        input = a.input.as_ref();
                    }
                    if let LogicalPlan::Subquery(sq) = input
                        && sq.subquery.exists(|n| Ok(n.contains_outer_reference()))?
                        && sq
                            .subquery
                            .exists(|n| Ok(matches!(n, LogicalPlan::Aggregate(_))))?
                    {
                        equalities_only(&sq.subquery, false, "a LATERAL subquery")?;
                    }
                }
            }
            // A renamed subquery (`distinct_output`) names its expression
            // differently: the node's columns keep their names.
            let names = NamePreserver::new(&node);
            let node = node.map_expressions(|e| {
                super::keeping_name(&names, e, &mut |e| {
                    e.transform_up(|e| {
                        let Expr::ScalarSubquery(sq) = e else {
                            return Ok(Transformed::no(e));
                        };
                        let mut sq = keyed(sq)?.data;
                        let aggregate = needs_aggregate(&sq);
                        equalities_only(&sq.subquery, aggregate, "a scalar subquery")?;
                        if aggregate {
                            let (plan, outer) = hoisted(sq.subquery.as_ref().clone())?;
                            let (plan, outside) = outer_refs_outside(plan)?;
                            let plan = distinct_output(aggregated(plan)?)?;
                            sq.outer_ref_columns = plan.all_out_ref_exprs();
                            sq.subquery = Arc::new(plan);
                            let e = match outside {
                                None => Expr::ScalarSubquery(sq),
                                Some(select) => select(Expr::ScalarSubquery(sq))?,
                            };
                            return Ok(Transformed::yes(match conjunction(outer) {
                                None => e,
                                Some(when) => when_then(when, e)?,
                            }));
                        }
                        if sq.outer_ref_columns.is_empty() {
                            return Ok(Transformed::no(Expr::ScalarSubquery(sq)));
                        }
                        let plan = sq.subquery.as_ref().clone();
                        let renamed = distinct_output(plan.clone())?;
                        if renamed == plan {
                            return Ok(Transformed::no(Expr::ScalarSubquery(sq)));
                        }
                        sq.subquery = Arc::new(renamed);
                        Ok(Transformed::yes(Expr::ScalarSubquery(sq)))
                    })
                })
            })?;
            node.transform_data(|node| lift_nested(node, &mut lifted))
        })
        .map(|t| t.data)
    }
}

/// Correlated subqueries inside another expression of a projection
/// (`CASE WHEN c THEN (SELECT ...) END`) are computed by a projection of
/// their own just below and referred to by name: DataFusion 55
/// decorrelates `CASE WHEN a.attidentity != '' THEN (SELECT f(a.attidentity,
/// s.seqstart) FROM s WHERE s.k = a.k) END` (SQLAlchemy 2.1's column
/// reflection) only when the subquery stands alone. The subquery is then
/// computed for every row, not only where the CASE reaches it.
fn lift_nested(node: LogicalPlan, lifted: &mut usize) -> Result<Transformed<LogicalPlan>> {
    let LogicalPlan::Projection(p) = node else {
        return Ok(Transformed::no(node));
    };
    let nested = |e: &Expr| {
        let inner = match e {
            Expr::Alias(a) => a.expr.as_ref(),
            other => other,
        };
        !matches!(inner, Expr::ScalarSubquery(_))
            && inner
                .exists(|x| {
                    Ok(matches!(x, Expr::ScalarSubquery(sq) if !sq.outer_ref_columns.is_empty()))
                })
                .unwrap_or(false)
    };
    if !p.expr.iter().any(nested) {
        return Ok(Transformed::no(LogicalPlan::Projection(p)));
    }
    let mut below: Vec<Expr> = p
        .input
        .schema()
        .iter()
        .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name())))
        .collect();
    let mut exprs = Vec::with_capacity(p.expr.len());
    let mut seen: Vec<(Expr, String)> = vec![];
    for e in p.expr {
        if !nested(&e) {
            exprs.push(e);
            continue;
        }
        let name = e.schema_name().to_string();
        let e = e
            .transform_up(|x| match x {
                Expr::ScalarSubquery(sq) if !sq.outer_ref_columns.is_empty() => {
                    let sq = Expr::ScalarSubquery(sq);
                    // One column for each distinct subquery (see
                    // `outer_refs_outside`, which repeats it).
                    let alias = match seen.iter().find(|(s, _)| *s == sq) {
                        Some((_, a)) => a.clone(),
                        None => {
                            *lifted += 1;
                            let alias = format!("__quipu_subquery_{lifted}");
                            below.push(sq.clone().alias(alias.clone()));
                            seen.push((sq, alias.clone()));
                            alias
                        }
                    };
                    Ok(Transformed::yes(Expr::Column(Column::from_name(alias))))
                }
                other => Ok(Transformed::no(other)),
            })?
            .data;
        exprs.push(match e {
            Expr::Alias(_) => e,
            other => other.alias(name),
        });
    }
    let input = LogicalPlanBuilder::from(Arc::unwrap_or_clone(p.input))
        .project(below)?
        .build()?;
    Ok(Transformed::yes(
        LogicalPlanBuilder::from(input).project(exprs)?.build()?,
    ))
}

/// A correlated subquery DataFusion would refuse: no aggregate on top and
/// not known to return at most one row.
fn needs_aggregate(sq: &Subquery) -> bool {
    let plan = sq.subquery.as_ref();
    // Its correlation may be deep below (`correlated_limit.rs` puts a
    // rank's filter and window above it).
    let correlated = !sq.outer_ref_columns.is_empty()
        || plan.contains_outer_reference()
        || plan.inputs().iter().any(|p| p.contains_outer_reference());
    if !correlated || plan.schema().fields().len() != 1 {
        return false;
    }
    let mut top = plan;
    while let LogicalPlan::Projection(p) = top {
        top = p.input.as_ref();
        if let LogicalPlan::SubqueryAlias(a) = top {
            top = a.input.as_ref();
        }
    }
    let aggregated = match top {
        LogicalPlan::Aggregate(_) => true,
        LogicalPlan::Filter(f) => matches!(f.input.as_ref(), LogicalPlan::Aggregate(_)),
        _ => false,
    };
    // A lookup by a source's primary key is aggregated as any other,
    // which is what lets its conditions on outer columns alone be hoisted.
    !aggregated && super::rows_at_most(plan).is_none_or(|n| n > 1)
}

/// The subquery's filter without its conjuncts on outer columns alone
/// (`WHERE a.atthasdef AND d.adrelid = a.attrelid`), and those conjuncts
/// as expressions of the outer query. DataFusion decorrelates an
/// aggregated subquery only through equalities between inner and outer
/// columns; the subquery returns no row, so NULL, where they are not true,
/// which `CASE WHEN them THEN (subquery) END` says outside.
fn hoisted(plan: LogicalPlan) -> Result<(LogicalPlan, Vec<Expr>)> {
    let mut outer = vec![];
    let plan = plan
        .transform_down(|node| match node {
            LogicalPlan::Projection(_) | LogicalPlan::SubqueryAlias(_) => Ok(Transformed::no(node)),
            LogicalPlan::Filter(f) => {
                let (only_outer, inner): (Vec<Expr>, Vec<Expr>) =
                    split_conjunction_owned(f.predicate)
                        .into_iter()
                        .partition(|p| p.contains_outer() && p.column_refs().is_empty());
                outer = only_outer;
                let input = Arc::unwrap_or_clone(f.input);
                let node = match conjunction(inner) {
                    Some(p) => LogicalPlan::Filter(Filter::try_new(p, Arc::new(input))?),
                    None => input,
                };
                Ok(Transformed::new(node, true, TreeNodeRecursion::Stop))
            }
            other => Ok(Transformed::new(other, false, TreeNodeRecursion::Stop)),
        })?
        .data;
    let outer = outer
        .into_iter()
        .map(|p| {
            p.transform(|e| match e {
                Expr::OuterReferenceColumn(_, c) => Ok(Transformed::yes(Expr::Column(c))),
                other => Ok(Transformed::no(other)),
            })
            .map(|t| t.data)
        })
        .collect::<Result<_>>()?;
    Ok((plan.recompute_schema()?, outer))
}

type Select = Box<dyn FnOnce(Expr) -> Result<Expr>>;

/// DataFusion 55 does not decorrelate a subquery whose select list reads
/// outer columns (`SELECT json_build_object('always', a.attidentity = 'a',
/// 'start', s.seqstart) FROM pg_sequence s WHERE ...`). Such a subquery
/// selects the inner columns it needs as one struct instead, and the select
/// expression is computed outside from the struct's fields and the outer
/// columns: NULL when the struct is (no row), as the subquery would be.
fn outer_refs_outside(plan: LogicalPlan) -> Result<(LogicalPlan, Option<Select>)> {
    use datafusion::functions::core::expr_fn::{get_field, named_struct};
    let LogicalPlan::Projection(p) = &plan else {
        return Ok((plan, None));
    };
    let [select] = p.expr.as_slice() else {
        return Ok((plan, None));
    };
    if !select.contains_outer() {
        return Ok((plan, None));
    }
    let (select, name) = match select.clone() {
        Expr::Alias(a) => (*a.expr, a.name),
        other => {
            let name = other.schema_name().to_string();
            (other, name)
        }
    };
    let columns: Vec<Column> = select.column_refs().into_iter().cloned().collect();
    let mut fields = vec![];
    for (i, c) in columns.iter().enumerate() {
        fields.push(datafusion::logical_expr::lit(format!("c{i}")));
        fields.push(Expr::Column(c.clone()));
    }
    // A struct with no field cannot be made: a constant marks the row.
    fields.push(datafusion::logical_expr::lit("row"));
    fields.push(datafusion::logical_expr::lit(true));
    let input = Arc::clone(&p.input);
    let plan = LogicalPlanBuilder::from(Arc::unwrap_or_clone(input))
        .project(vec![named_struct(fields).alias(name.clone())])?
        .build()?;
    let outside: Select = Box::new(move |subquery: Expr| {
        let e = select
            .transform(|e| match e {
                Expr::OuterReferenceColumn(_, c) => Ok(Transformed::yes(Expr::Column(c))),
                Expr::Column(c) => {
                    let i = columns.iter().position(|x| *x == c).expect("listed above");
                    Ok(Transformed::yes(get_field(
                        subquery.clone(),
                        format!("c{i}"),
                    )))
                }
                other => Ok(Transformed::no(other)),
            })?
            .data;
        Ok(Expr::Case(datafusion::logical_expr::expr::Case::new(
            None,
            vec![(Box::new(subquery.clone().is_not_null()), Box::new(e))],
            None,
        ))
        .alias(name))
    });
    Ok((plan, Some(outside)))
}

fn when_then(when: Expr, then: Expr) -> Result<Expr> {
    Ok(Expr::Case(datafusion::logical_expr::expr::Case::new(
        None,
        vec![(Box::new(when), Box::new(then))],
        None,
    )))
}

/// Checks that each condition of a subquery on its outer query's columns is an
/// equality (`o.customer_id = c.customer_id`), or, where the subquery is
/// `hoisted`, only on them; an error naming the first that is not.
/// (An aggregate's condition on outer columns alone cannot be taken out:
/// `count(*)` is 0 where it is false, not NULL.) DataFusion 55
/// decorrelates a scalar subquery only through equalities: with
/// `o.order_id < c.customer_id * 5` it failed as "Physical plan does not
/// support logical expression ScalarSubquery", over a derived table with
/// "Optimizer rule 'scalar_subquery_to_join' failed ... No field named
/// v.order_id", and so does its `LATERAL` join.
fn equalities_only(plan: &LogicalPlan, hoisted: bool, what: &str) -> Result<()> {
    let mut other = None;
    plan.apply(|node| {
        if let LogicalPlan::Filter(f) = node {
            other = split_conjunction_owned(f.predicate.clone())
                .into_iter()
                .find(|p| {
                    p.contains_outer()
                        && !(hoisted && p.column_refs().is_empty())
                        && !matches!(p, Expr::BinaryExpr(b) if b.op == Operator::Eq)
                });
            if other.is_some() {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let Some(condition) = other else {
        return Ok(());
    };
    // As the statement wrote it: outer columns without their marks, and
    // without the suffix `outer_refs` gives an outer alias (`c__q1`).
    let condition = condition
        .transform(|e| match e {
            Expr::OuterReferenceColumn(_, c) | Expr::Column(c) => {
                let relation = c.relation.as_ref().map(|r| {
                    let table = r.table();
                    let table = match table.rsplit_once("__q") {
                        Some((alias, n)) if n.parse::<u32>().is_ok() => alias,
                        _ => table,
                    };
                    datafusion::common::TableReference::bare(table)
                });
                Ok(Transformed::yes(Expr::Column(Column::new(
                    relation, c.name,
                ))))
            }
            other => Ok(Transformed::no(other)),
        })?
        .data;
    not_impl_err!(
        "{what} correlated by `{condition}` is not supported: DataFusion 55 \
         decorrelates a subquery only through equalities with the outer query's columns \
         (`inner = outer`); write it as a join with GROUP BY"
    )
}

/// A `LATERAL` join input (under its aliases) with its subquery's
/// correlations keyed ([`keyed_correlations`]).
fn keyed_lateral(input: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    match input {
        LogicalPlan::SubqueryAlias(_) => input.map_children(keyed_lateral),
        LogicalPlan::Subquery(sq)
            if sq.subquery.exists(|n| Ok(n.contains_outer_reference()))? =>
        {
            Ok(keyed(sq)?.update_data(LogicalPlan::Subquery))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// `sq` with its correlations keyed ([`keyed_correlations`]) and its outer
/// references listed again.
fn keyed(mut sq: Subquery) -> Result<Transformed<Subquery>> {
    let keyed = keyed_correlations(sq.subquery.as_ref().clone())?;
    if !keyed.transformed {
        return Ok(Transformed::no(sq));
    }
    sq.subquery = Arc::new(keyed.data);
    sq.outer_ref_columns = sq.subquery.all_out_ref_exprs();
    Ok(Transformed::yes(sq))
}

/// A subquery whose equalities with the outer query compare an
/// expression of its own columns (`CAST(o.ordered_at AS date) = d.day`,
/// `lower(o.email) = c.email`, `o.customer_id + 0 = c.id`), with each such
/// expression computed as a column of its own just below the filter
/// (`__quipu_key_1`). DataFusion 55 decorrelates an aggregated subquery by
/// grouping it on the inner *columns* a correlation reads (`o.ordered_at`)
/// and joining each group on the condition: a day with two orders at two
/// times answered two rows of `count` 1 where PostgreSQL answers one row
/// of 2, without a word. Grouped on the key, it answers PostgreSQL's.
fn keyed_correlations(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let mut keys = 0;
    plan.transform_up(|node| {
        let LogicalPlan::Filter(f) = &node else {
            return Ok(Transformed::no(node));
        };
        // An expression of the subquery's own columns, not a column alone.
        let own = |e: &Expr| {
            !matches!(e, Expr::Column(_))
                && !e.contains_outer()
                && !e.column_refs().is_empty()
                && !e
                    .exists(|x| {
                        Ok(matches!(
                            x,
                            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
                        ))
                    })
                    .unwrap_or(true)
                && !e.is_volatile()
        };
        let outer = |e: &Expr| e.contains_outer() && e.column_refs().is_empty();
        let mut added = vec![];
        let conjuncts = split_conjunction_owned(f.predicate.clone())
            .into_iter()
            .map(|p| match p {
                Expr::BinaryExpr(b)
                    if b.op == Operator::Eq
                        && ((own(&b.left) && outer(&b.right))
                            || (own(&b.right) && outer(&b.left))) =>
                {
                    keys += 1;
                    let name = format!("__quipu_key_{keys}");
                    let key = Expr::Column(Column::from_name(&name));
                    let (left, right) = match own(&b.left) {
                        true => {
                            added.push(b.left.as_ref().clone().alias(&name));
                            (key, *b.right)
                        }
                        false => {
                            added.push(b.right.as_ref().clone().alias(&name));
                            (*b.left, key)
                        }
                    };
                    left.eq(right)
                }
                p => p,
            })
            .collect::<Vec<_>>();
        if added.is_empty() {
            return Ok(Transformed::no(node));
        }
        let mut exprs: Vec<Expr> = super::columns_of(&f.input);
        exprs.extend(added);
        let input = LogicalPlanBuilder::from(f.input.as_ref().clone())
            .project(exprs)?
            .build()?;
        let Some(predicate) = conjunction(conjuncts) else {
            return Ok(Transformed::no(node));
        };
        Ok(Transformed::yes(LogicalPlan::Filter(Filter::try_new(
            predicate,
            Arc::new(input),
        )?)))
    })
}

/// The name a correlated subquery's value takes when its own would clash.
const VALUE: &str = "__quipu_value";

/// A correlated subquery whose value has the name of a column it is
/// correlated on (`(SELECT max(v.x) AS x FROM v WHERE v.x = w.y)`, or the
/// bare `v.x` of such a subquery, aggregated above) with its value renamed
/// [`VALUE`]: DataFusion 55 decorrelates it by grouping on `v.x` beside the
/// value and fails ("Schema contains qualified field name v.x and
/// unqualified field name x which would be ambiguous"), where PostgreSQL
/// answers. Other subqueries come back as they were.
fn distinct_output(plan: LogicalPlan) -> Result<LogicalPlan> {
    let name = plan.schema().field(0).name().clone();
    let mut correlated_on = vec![];
    plan.apply(|node| {
        if let LogicalPlan::Filter(f) = node {
            for p in split_conjunction_owned(f.predicate.clone()) {
                if p.contains_outer() {
                    correlated_on.extend(p.column_refs().into_iter().map(|c| c.name.clone()));
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if !correlated_on.contains(&name) {
        return Ok(plan);
    }
    let renamed = |e: &Expr| match e {
        Expr::Alias(a) => a.expr.as_ref().clone().alias(VALUE),
        other => other.clone().alias(VALUE),
    };
    match &plan {
        LogicalPlan::Projection(p) if p.expr.len() == 1 => {
            let expr = vec![renamed(&p.expr[0])];
            LogicalPlanBuilder::from(p.input.as_ref().clone())
                .project(expr)?
                .build()
        }
        LogicalPlan::Aggregate(a) if a.group_expr.is_empty() && a.aggr_expr.len() == 1 => {
            LogicalPlanBuilder::from(a.input.as_ref().clone())
                .aggregate(Vec::<Expr>::new(), vec![renamed(&a.aggr_expr[0])])?
                .build()
        }
        _ => Ok(plan),
    }
}

/// `SELECT quipu_single(x) FROM (plan)`, keeping the column's name.
fn aggregated(plan: LogicalPlan) -> Result<LogicalPlan> {
    let (qualifier, field) = plan.schema().qualified_field(0);
    let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
    let name = field.name().clone();
    LogicalPlanBuilder::from(plan)
        .aggregate(
            Vec::<Expr>::new(),
            vec![single().call(vec![column]).alias(name)],
        )?
        .build()
}

/// `quipu_single(x)`.
pub fn single() -> AggregateUDF {
    AggregateUDF::new_from_impl(Single {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Single {
    signature: Signature,
}

impl AggregateUDFImpl for Single {
    fn name(&self) -> &str {
        SINGLE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SingleAccumulator {
            value: ScalarValue::try_from(args.return_field.data_type())?,
            rows: 0,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(
                args.return_field
                    .as_ref()
                    .clone()
                    .with_name(format!("{}[value]", args.name))
                    .with_nullable(true),
            ),
            Arc::new(Field::new(
                format!("{}[rows]", args.name),
                DataType::UInt64,
                true,
            )),
        ])
    }
}

#[derive(Debug)]
struct SingleAccumulator {
    value: ScalarValue,
    rows: u64,
}

impl SingleAccumulator {
    fn add(&mut self, values: &ArrayRef, row: usize, rows: u64) -> Result<()> {
        if rows == 0 {
            return Ok(());
        }
        self.rows += rows;
        if self.rows > 1 {
            // PostgreSQL's error, SQLSTATE 21000 (cardinality_violation).
            return Err(crate::error::DataException::error(
                "21000",
                "more than one row returned by a subquery used as an expression",
            ));
        }
        self.value = ScalarValue::try_from_array(values, row)?;
        Ok(())
    }
}

impl Accumulator for SingleAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for row in 0..values[0].len() {
            self.add(&values[0], row, 1)?;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let rows = states[1]
            .as_any()
            .downcast_ref::<UInt64Array>()
            .expect("the row count state is a UInt64");
        for row in 0..rows.len() {
            let n = if rows.is_null(row) {
                0
            } else {
                rows.value(row)
            };
            self.add(&states[0], row, n)?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            self.value.clone(),
            ScalarValue::UInt64(Some(self.rows)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size() - std::mem::size_of_val(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn ctx() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.add_analyzer_rule(Arc::new(AggregateScalarSubqueries));
        ctx.register_udaf(single());
        ctx.sql("CREATE TABLE o AS VALUES (1), (2), (3)")
            .await
            .unwrap();
        ctx.sql("CREATE TABLE i (k INT, v TEXT) AS VALUES (1, 'a'), (2, NULL), (3, 'c'), (3, 'd')")
            .await
            .unwrap();
        ctx
    }

    /// The table lines of a query's answer.
    async fn rows(sql: &str) -> Vec<String> {
        let batches = ctx().await.sql(sql).await.unwrap().collect().await.unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        text.lines()
            .filter(|l| l.starts_with("| "))
            .map(str::to_string)
            .collect()
    }

    #[tokio::test]
    async fn one_row_or_none_is_the_value_or_null() {
        let rows = rows(
            "SELECT o.column1, (SELECT i.v FROM i WHERE i.k = o.column1 AND i.v <> 'd' \
             AND o.column1 <> 3) AS v FROM o ORDER BY 1",
        )
        .await;
        assert_eq!(
            rows,
            [
                "| column1 | v |",
                "| 1       | a |",
                "| 2       |   |",
                "| 3       |   |"
            ]
        );
    }

    #[tokio::test]
    async fn a_subquery_inside_case_with_outer_columns_in_its_select() {
        let rows = rows(
            "SELECT o.column1, CASE WHEN o.column1 <> 2 THEN \
             (SELECT concat(i.v, o.column1) FROM i WHERE i.k = o.column1 AND i.v <> 'd') \
             END AS v FROM o ORDER BY 1",
        )
        .await;
        assert_eq!(
            rows,
            [
                "| column1 | v  |",
                "| 1       | a1 |",
                "| 2       |    |",
                "| 3       | c3 |"
            ]
        );
    }

    /// A subquery whose value has the name of the column it is correlated
    /// on: DataFusion failed to decorrelate it ("ambiguous"); the answer
    /// keeps the value's name.
    #[tokio::test]
    async fn a_value_named_as_its_correlated_column() {
        for sql in [
            "SELECT o.column1, (SELECT i.k FROM i WHERE i.k = o.column1 AND i.v <> 'd') FROM o \
             ORDER BY 1",
            "SELECT o.column1, (SELECT max(i.k) AS k FROM i WHERE i.k = o.column1 AND i.v <> 'd') \
             FROM o ORDER BY 1",
        ] {
            assert_eq!(
                rows(sql).await,
                [
                    "| column1 | k |",
                    "| 1       | 1 |",
                    "| 2       |   |",
                    "| 3       | 3 |"
                ],
                "{sql}"
            );
        }
    }

    /// Correlated through an expression of the inner columns (`i.k / 2`,
    /// which 2, 3 and 3 share): one row per outer row, counting all
    /// three. DataFusion grouped by `i.k` and answered two rows for
    /// `column1` 1 (counts 1 and 2).
    #[tokio::test]
    async fn a_correlation_through_an_expression_groups_by_the_expression() {
        let want = [
            "| column1 | n |",
            "| 1       | 3 |",
            "| 2       | 0 |",
            "| 3       | 0 |",
        ];
        for sql in [
            "SELECT o.column1, (SELECT count(*) FROM i WHERE i.k / 2 = o.column1) AS n FROM o \
             ORDER BY 1",
            "SELECT o.column1, l.n FROM o CROSS JOIN LATERAL (SELECT count(*) AS n FROM i \
             WHERE i.k / 2 = o.column1) l ORDER BY 1",
        ] {
            assert_eq!(rows(sql).await, want, "{sql}");
        }
    }

    /// Correlated by other than an equality: a clear "not supported"
    /// naming the condition, where DataFusion failed in its planner.
    #[tokio::test]
    async fn inequalities_with_the_outer_query_are_named_as_not_supported() {
        let ctx = ctx().await;
        for sql in [
            "SELECT o.column1, (SELECT count(*) FROM i WHERE i.k < o.column1) FROM o",
            "SELECT o.column1, (SELECT max(i.v) FROM i WHERE i.k = o.column1 AND i.k < o.column1 + 1) FROM o",
            "SELECT o.column1, (SELECT max(x.v) FROM (SELECT i.v, i.k AS kk FROM i) x \
             WHERE x.kk <= o.column1) FROM o",
        ] {
            let err = ctx
                .sql(sql)
                .await
                .unwrap()
                .collect()
                .await
                .expect_err(sql)
                .to_string();
            assert!(
                err.contains("a scalar subquery correlated by `")
                    && err.contains("is not supported"),
                "{sql}: {err}"
            );
        }
        let err = ctx
            .sql("SELECT (SELECT count(*) FROM i WHERE i.k < o.column1) FROM o")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err()
            .to_string();
        // (This session coerces types before the rule: `CAST(i.k AS Int64)`.)
        assert!(err.contains("i.k AS Int64) < o.column1` is not"), "{err}");
        // An equality, and a condition on the outer query alone of a
        // subquery that is not aggregated, still run.
        let ok = ctx
            .sql(
                "SELECT (SELECT i.v FROM i WHERE i.k = o.column1 AND o.column1 < 3 \
                 AND i.v <> 'd') FROM o",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(ok.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    }

    /// A `LATERAL` subquery that aggregates over an inequality failed as
    /// "Schema error: No field named ..."; without an aggregate, or over
    /// an equality, it runs.
    #[tokio::test]
    async fn a_lateral_aggregate_over_an_inequality_is_named_as_not_supported() {
        let ctx = ctx().await;
        let run = |sql: &'static str| {
            let ctx = ctx.clone();
            async move { ctx.sql(sql).await?.collect().await }
        };
        let err = run("SELECT o.column1, y.m FROM o CROSS JOIN LATERAL              (SELECT max(i.v) AS m FROM i WHERE i.k < o.column1) y")
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("a LATERAL subquery correlated by `") && err.contains("not supported"),
            "{err}"
        );
        let rows = |b: Vec<datafusion::arrow::array::RecordBatch>| {
            b.iter().map(|b| b.num_rows()).sum::<usize>()
        };
        let plain = run("SELECT o.column1, y.v FROM o CROSS JOIN LATERAL              (SELECT i.v FROM i WHERE i.k < o.column1) y")
        .await
        .unwrap();
        assert_eq!(rows(plain), 3);
        let equal = run("SELECT o.column1, y.m FROM o CROSS JOIN LATERAL              (SELECT max(i.v) AS m FROM i WHERE i.k = o.column1) y")
        .await
        .unwrap();
        assert_eq!(rows(equal), 3);
    }

    #[tokio::test]
    async fn more_than_one_row_is_postgresqls_error() {
        let ctx = ctx().await;
        let err = ctx
            .sql("SELECT (SELECT i.v FROM i WHERE i.k = o.column1) FROM o")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("more than one row returned by a subquery used as an expression"),
            "{err}"
        );
    }
}
