//! Integer arithmetic that fails on overflow, as PostgreSQL's does.
//!
//! DataFusion 55 plans every `+`, `-` and `*` as a wrapping operation: its
//! physical planner never sets [`BinaryExpr::with_fail_on_overflow`], and
//! no setting does. `SELECT 9223372036854775807 + 1` answered
//! `-9223372036854775808`, `2147483647::int * 2::int` answered `-2` and
//! `x - 1` at the smallest `bigint` wrapped to the largest, where
//! PostgreSQL fails with `22003 bigint out of range`: silent wrong answers.
//!
//! [`CheckedArithmetic`] runs last among the physical rules and marks every
//! `+`, `-` and `*` in the expressions of the operators that evaluate them
//! (projections, filters, aggregates, joins, sorts) as failing on overflow;
//! Arrow's checked kernels then raise `ArithmeticOverflow`, which both
//! front doors report as SQLSTATE 22003. Float arithmetic is unchanged
//! (the checked kernels do not check floats). The flag is not part of
//! DataFusion's protobuf form, so executors apply [`checked_plan`] again to
//! every task's plan (`quipu-executor`'s execution engine).
//!
//! DataFusion also folds constant arithmetic while it plans, with the same
//! wrapping operators (`SELECT 9223372036854775807 + 1` never reaches an
//! operator): [`ConstantOverflow`], the last analyzer rule, evaluates each
//! constant `+`, `-` and `*` with the checked kernels first and fails the
//! statement where one overflows, as PostgreSQL's constant folding does.
//!
//! A window operator cannot be rebuilt with new expressions, so
//! [`WindowArguments`] (an analyzer rule, last) computes window functions'
//! arithmetic arguments and `PARTITION BY` / `ORDER BY` keys in a
//! projection below the window, where the
//! physical rule checks them (`sum(x * 3) OVER ()` reads `sum(w) OVER ()`
//! over `x * 3 AS w`, under the window's own column names). Upstream should plan checked arithmetic or carry the flag in protobuf
//! (docs/upstream.md).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::Column;
use datafusion::common::DFSchema;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::error::Result as DfResult;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::Operator;
use datafusion::logical_expr::{Expr, LogicalPlan, Projection, Window};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, PhysicalGroupBy};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::joins::{
    HashJoinExec, NestedLoopJoinExec, NestedLoopJoinExecBuilder, SortMergeJoinExec,
};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;

use super::checked_expr::CheckedBinary;
use crate::error::DataException;

/// Fails a statement whose constant arithmetic overflows, before
/// DataFusion's simplifier folds it with wrapping operators.
#[derive(Debug, Default)]
pub struct ConstantOverflow;

impl AnalyzerRule for ConstantOverflow {
    fn name(&self) -> &str {
        "quipu_constant_overflow"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.apply_with_subqueries(|node| {
            node.apply_expressions(|e| {
                e.apply(|sub| {
                    if let Expr::BinaryExpr(b) = sub
                        && arithmetic(&b.op)
                        && is_constant(sub)
                    {
                        overflow_of(sub)?;
                        // Its operands were checked on the way up.
                        return Ok(TreeNodeRecursion::Jump);
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })?;
        Ok(plan)
    }
}

/// Moves window functions' arithmetic arguments into a projection below
/// the window, so the physical rule sees them.
#[derive(Debug, Default)]
pub struct WindowArguments;

/// The name of the `n`th argument moved below a window.
fn moved_name(n: usize) -> String {
    format!("__quipu_window_arg_{n}")
}

/// Whether `e` holds `+`, `-` or `*` over something not constant.
fn has_arithmetic(e: &Expr) -> bool {
    let mut found = false;
    let _ = e.apply(|sub| {
        if let Expr::BinaryExpr(b) = sub
            && arithmetic(&b.op)
            && !is_constant(sub)
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

impl AnalyzerRule for WindowArguments {
    fn name(&self) -> &str {
        "quipu_window_arguments"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let LogicalPlan::Window(w) = &node else {
                return Ok(Transformed::no(node));
            };
            let mut moved: Vec<(Expr, String)> = vec![];
            let mut window_expr = Vec::with_capacity(w.window_expr.len());
            for e in &w.window_expr {
                let rewritten = e.clone().transform_down(|sub| {
                    let Expr::WindowFunction(mut f) = sub else {
                        return Ok(Transformed::no(sub));
                    };
                    // Its arguments, and its PARTITION BY and ORDER BY
                    // keys (`PARTITION BY x * 3` wrapped around and put
                    // rows in one partition that are not). One column per
                    // distinct expression: window functions of one node
                    // share their keys, and must still share them.
                    let keys = f
                        .params
                        .partition_by
                        .iter_mut()
                        .chain(f.params.order_by.iter_mut().map(|s| &mut s.expr));
                    for e in f.params.args.iter_mut().chain(keys) {
                        if !has_arithmetic(e) {
                            continue;
                        }
                        let at = match moved.iter().position(|(m, _)| m == e) {
                            Some(at) => at,
                            None => {
                                let name = moved_name(moved.len());
                                moved.push((e.clone(), name));
                                moved.len() - 1
                            }
                        };
                        *e = Expr::Column(Column::from_name(moved[at].1.clone()));
                    }
                    Ok(Transformed::new(
                        Expr::WindowFunction(f),
                        true,
                        TreeNodeRecursion::Jump,
                    ))
                })?;
                window_expr.push(rewritten.data);
            }
            if moved.is_empty() {
                return Ok(Transformed::no(node));
            }
            let input_len = w.input.schema().fields().len();
            let moved_len = moved.len();
            let mut below: Vec<Expr> = crate::dialect::columns_of(&w.input);
            below.extend(moved.into_iter().map(|(e, name)| e.alias(name)));
            let below = LogicalPlan::Projection(Projection::try_new(below, Arc::clone(&w.input))?);
            let window = LogicalPlan::Window(Window::try_new(window_expr, Arc::new(below))?);
            // The window's columns under their names, the moved ones left
            // out.
            let new_schema = Arc::clone(window.schema());
            let above: Vec<Expr> = (0..w.schema.fields().len())
                .map(|i| {
                    let (qualifier, field) = w.schema.qualified_field(i);
                    let at = if i < input_len { i } else { i + moved_len };
                    let (q, f) = new_schema.qualified_field(at);
                    Expr::Column(Column::new(q.cloned(), f.name()))
                        .alias_qualified(qualifier.cloned(), field.name())
                })
                .collect();
            let above = Projection::try_new(above, Arc::new(window))?;
            Ok(Transformed::yes(LogicalPlan::Projection(above)))
        })
        .data()
    }
}

/// Whether `e` is made of literals, casts and operators only.
fn is_constant(e: &Expr) -> bool {
    let mut constant = true;
    let _ = e.apply(|sub| {
        constant &= matches!(
            sub,
            Expr::Literal(..)
                | Expr::BinaryExpr(_)
                | Expr::Cast(_)
                | Expr::TryCast(_)
                | Expr::Negative(_)
        );
        Ok(if constant {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    constant
}

/// Evaluates constant `e` with checked arithmetic: an overflow is the
/// statement's error; anything else (a type DataFusion's coercion has not
/// settled, a division by zero left for run time) is left to DataFusion.
fn overflow_of(e: &Expr) -> DfResult<()> {
    let Ok(physical) = datafusion::physical_expr::create_physical_expr(
        e,
        &DFSchema::empty(),
        &ExecutionProps::new(),
        &Default::default(),
    ) else {
        return Ok(());
    };
    let one_row = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    match checked(&physical)?.evaluate(&one_row) {
        Err(err) if is_overflow(&err) => {
            // PostgreSQL's words, named by the type that overflowed.
            let ty = match physical.data_type(&Schema::empty()) {
                Ok(DataType::Int16) => "smallint",
                Ok(DataType::Int32) => "integer",
                Ok(DataType::Int64) => "bigint",
                _ => "value",
            };
            Err(DataException::error(
                "22003",
                &format!("{ty} out of range ({})", err.find_root()),
            ))
        }
        _ => Ok(()),
    }
}

fn is_overflow(e: &DataFusionError) -> bool {
    matches!(
        e.find_root(),
        DataFusionError::ArrowError(err, _) if matches!(**err, ArrowError::ArithmeticOverflow(_))
    )
}

/// Marks the integer arithmetic of a plan as failing on overflow.
#[derive(Debug, Default)]
pub struct CheckedArithmetic;

impl PhysicalOptimizerRule for CheckedArithmetic {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        checked_plan(plan)
    }

    fn name(&self) -> &str {
        "quipu_checked_arithmetic"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn arithmetic(op: &Operator) -> bool {
    matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply)
}

/// Whether `e` holds a `+`, `-` or `*` that wraps on overflow.
fn wraps(e: &Arc<dyn PhysicalExpr>) -> bool {
    let mut found = false;
    let _ = e.apply(|node| {
        if let Some(b) = node.downcast_ref::<BinaryExpr>()
            && arithmetic(b.op())
            && *b != checked_copy(b)
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

fn checked_copy(b: &BinaryExpr) -> BinaryExpr {
    BinaryExpr::new(Arc::clone(b.left()), *b.op(), Arc::clone(b.right()))
        .with_fail_on_overflow(true)
}

/// `e` with every `+`, `-` and `*` failing on overflow.
fn checked(e: &Arc<dyn PhysicalExpr>) -> DfResult<Arc<dyn PhysicalExpr>> {
    if !wraps(e) {
        return Ok(Arc::clone(e));
    }
    Arc::clone(e)
        .transform_up(|node| {
            if let Some(b) = node.downcast_ref::<BinaryExpr>()
                && arithmetic(b.op())
            {
                let c = checked_copy(b);
                if *b != c {
                    return Ok(Transformed::yes(Arc::new(c) as Arc<dyn PhysicalExpr>));
                }
            }
            Ok(Transformed::no(node))
        })
        .data()
}

/// `e` with every `+`, `-` and `*` a [`CheckedBinary`]: the form for
/// projections, which DataFusion may merge into a file scan that executors
/// cannot re-check (`checked_expr.rs`).
fn portable(e: &Arc<dyn PhysicalExpr>) -> DfResult<Arc<dyn PhysicalExpr>> {
    Arc::clone(e)
        .transform_up(|node| {
            if let Some(b) = node.downcast_ref::<BinaryExpr>()
                && arithmetic(b.op())
            {
                let c = CheckedBinary::new(Arc::clone(b.left()), *b.op(), Arc::clone(b.right()));
                return Ok(Transformed::yes(Arc::new(c) as Arc<dyn PhysicalExpr>));
            }
            Ok(Transformed::no(node))
        })
        .data()
}

fn any_wraps<'a>(mut exprs: impl Iterator<Item = &'a Arc<dyn PhysicalExpr>>) -> bool {
    exprs.any(wraps)
}

type KeyPair = (Arc<dyn PhysicalExpr>, Arc<dyn PhysicalExpr>);
type JoinOn = [KeyPair];

fn join_wraps(on: &JoinOn, filter: Option<&JoinFilter>) -> bool {
    on.iter().any(|(l, r)| wraps(l) || wraps(r)) || filter.is_some_and(|f| wraps(f.expression()))
}

fn checked_on(on: &JoinOn) -> DfResult<Vec<KeyPair>> {
    on.iter()
        .map(|(l, r)| Ok((checked(l)?, checked(r)?)))
        .collect()
}

fn checked_filter(f: &JoinFilter) -> DfResult<JoinFilter> {
    Ok(JoinFilter::new(
        checked(f.expression())?,
        f.column_indices().to_vec(),
        Arc::clone(f.schema()),
    ))
}

fn checked_ordering(o: &LexOrdering) -> DfResult<Option<LexOrdering>> {
    let exprs = o
        .iter()
        .map(|s| {
            Ok(PhysicalSortExpr {
                expr: checked(&s.expr)?,
                options: s.options,
            })
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(LexOrdering::new(exprs))
}

fn checked_aggregate(a: &Arc<AggregateFunctionExpr>) -> DfResult<Arc<AggregateFunctionExpr>> {
    let args = a.expressions();
    let order_bys: Vec<_> = a.order_bys().iter().map(|s| Arc::clone(&s.expr)).collect();
    if !any_wraps(args.iter().chain(order_bys.iter())) {
        return Ok(Arc::clone(a));
    }
    let args = args.iter().map(checked).collect::<DfResult<Vec<_>>>()?;
    let order_bys = order_bys
        .iter()
        .map(checked)
        .collect::<DfResult<Vec<_>>>()?;
    Ok(Arc::new(
        a.with_new_expressions(args, order_bys).ok_or_else(|| {
            datafusion::error::DataFusionError::Internal(format!(
                "cannot rebuild aggregate {} with checked arithmetic",
                a.name()
            ))
        })?,
    ))
}

/// `p` with each expression `f` rewrites (`None`: kept as it is), under
/// the same names and schema.
pub(crate) fn projection_with(
    p: &ProjectionExec,
    f: impl Fn(&Arc<dyn PhysicalExpr>) -> DfResult<Option<Arc<dyn PhysicalExpr>>>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let exprs = p
        .expr()
        .iter()
        .map(|e| {
            let x = f(&e.expr)?.unwrap_or_else(|| Arc::clone(&e.expr));
            Ok(ProjectionExpr::new(x, e.alias.clone()))
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(Arc::new(ProjectionExec::try_new_with_schema_metadata(
        exprs,
        Arc::clone(p.input()),
        &p.schema(),
    )?))
}

/// One operator with its arithmetic checked, or `None` when it holds none
/// that wraps (or is not one this module rebuilds).
fn checked_node(node: &Arc<dyn ExecutionPlan>) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(p) = node.downcast_ref::<ProjectionExec>() {
        if !any_wraps(p.expr().iter().map(|e| &e.expr)) {
            return Ok(None);
        }
        return Ok(Some(projection_with(p, |e| portable(e).map(Some))?));
    }
    if let Some(f) = node.downcast_ref::<FilterExec>() {
        if !wraps(f.predicate()) {
            return Ok(None);
        }
        let rebuilt = FilterExecBuilder::from(f)
            .with_predicate(checked(f.predicate())?)
            .build()?;
        return Ok(Some(Arc::new(rebuilt)));
    }
    if let Some(a) = node.downcast_ref::<AggregateExec>() {
        let group = a.group_expr();
        let group_wraps = any_wraps(group.expr().iter().map(|(e, _)| e))
            || any_wraps(group.null_expr().iter().map(|(e, _)| e));
        let filter_wraps = any_wraps(a.filter_expr().iter().flatten());
        let aggr_wraps = a.aggr_expr().iter().any(|f| {
            any_wraps(
                f.expressions()
                    .iter()
                    .chain(f.order_bys().iter().map(|s| &s.expr)),
            )
        });
        if !(group_wraps || filter_wraps || aggr_wraps) {
            return Ok(None);
        }
        let aggr = a
            .aggr_expr()
            .iter()
            .map(checked_aggregate)
            .collect::<DfResult<Vec<_>>>()?;
        if !(group_wraps || filter_wraps) {
            return Ok(Some(Arc::new(a.with_new_aggr_exprs(aggr))));
        }
        let pairs = |v: &[(Arc<dyn PhysicalExpr>, String)]| {
            v.iter()
                .map(|(e, n)| Ok((checked(e)?, n.clone())))
                .collect::<DfResult<Vec<_>>>()
        };
        let group_by = PhysicalGroupBy::new(
            pairs(group.expr())?,
            pairs(group.null_expr())?,
            group.groups().to_vec(),
            group.has_grouping_set(),
        );
        let filters = a
            .filter_expr()
            .iter()
            .map(|f| f.as_ref().map(checked).transpose())
            .collect::<DfResult<Vec<_>>>()?;
        let rebuilt = AggregateExec::try_new(
            *a.mode(),
            group_by,
            aggr,
            filters,
            Arc::clone(a.input()),
            a.input_schema(),
        )?
        .with_limit_options(a.limit_options());
        return Ok(Some(Arc::new(rebuilt)));
    }
    if let Some(j) = node.downcast_ref::<HashJoinExec>() {
        if !join_wraps(j.on(), j.filter()) {
            return Ok(None);
        }
        let filter = j.filter().map(checked_filter).transpose()?;
        let rebuilt = j
            .builder()
            .with_on(checked_on(j.on())?)
            .with_filter(filter)
            .build()?;
        return Ok(Some(Arc::new(rebuilt)));
    }
    if let Some(j) = node.downcast_ref::<NestedLoopJoinExec>() {
        let Some(filter) = j.filter().filter(|f| wraps(f.expression())) else {
            return Ok(None);
        };
        let rebuilt = NestedLoopJoinExecBuilder::new(
            Arc::clone(j.left()),
            Arc::clone(j.right()),
            *j.join_type(),
        )
        .with_filter(Some(checked_filter(filter)?))
        .with_projection_ref(j.projection().clone())
        .build()?;
        return Ok(Some(Arc::new(rebuilt)));
    }
    if let Some(j) = node.downcast_ref::<SortMergeJoinExec>() {
        if !join_wraps(j.on(), j.filter().as_ref()) {
            return Ok(None);
        }
        let rebuilt = SortMergeJoinExec::try_new(
            Arc::clone(j.left()),
            Arc::clone(j.right()),
            checked_on(j.on())?,
            j.filter().as_ref().map(checked_filter).transpose()?,
            j.join_type(),
            j.sort_options().to_vec(),
            j.null_equality(),
        )?;
        return Ok(Some(Arc::new(rebuilt)));
    }
    if let Some(s) = node.downcast_ref::<SortExec>() {
        if !any_wraps(s.expr().iter().map(|e| &e.expr)) {
            return Ok(None);
        }
        let Some(ordering) = checked_ordering(s.expr())? else {
            return Ok(None);
        };
        let rebuilt = SortExec::new(ordering, Arc::clone(s.input()))
            .with_preserve_partitioning(s.preserve_partitioning())
            .with_fetch(s.fetch());
        return Ok(Some(Arc::new(rebuilt)));
    }
    Ok(None)
}

/// `plan` with the integer arithmetic of its operators failing on
/// overflow. Plans without wrapping arithmetic come back as they were.
pub fn checked_plan(plan: Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| match checked_node(&node)? {
        Some(rebuilt) => Ok(Transformed::yes(rebuilt)),
        None => Ok(Transformed::no(node)),
    })
    .data()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn answer(ctx: &SessionContext, sql: &str) -> Result<String, String> {
        let df = ctx.sql(sql).await.map_err(|e| e.to_string())?;
        let batches = df.collect().await.map_err(|e| e.to_string())?;
        Ok(
            datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .map_err(|e| e.to_string())?
                .to_string(),
        )
    }

    fn session() -> SessionContext {
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(CheckedArithmetic))
            .with_analyzer_rule(Arc::new(WindowArguments))
            .build();
        let ctx = SessionContext::new_with_state(state);
        // Values from a table, so no constant folding decides the answer.
        ctx
    }

    #[tokio::test]
    async fn overflow_fails_in_every_operator_and_in_range_values_answer() {
        let ctx = session();
        ctx.sql(
            "CREATE TABLE t(b BIGINT, i INT, s SMALLINT, f DOUBLE) AS VALUES \
             (9223372036854775807, 2147483647, 32767, 1e308), (1, 1, 1, 1.0)",
        )
        .await
        .unwrap();
        for sql in [
            "SELECT b + 1 FROM t",
            "SELECT b * 2 FROM t",
            "SELECT -b - 2 FROM t",
            "SELECT i * i FROM t",
            "SELECT s + s FROM t",
            "SELECT count(*) FROM t WHERE b + 1 > 0",
            "SELECT sum(b * 2) FROM t",
            "SELECT b + 1, count(*) FROM t GROUP BY b + 1",
            "SELECT count(*) FILTER (WHERE i + i > 0) FROM t",
            "SELECT count(*) FROM t x JOIN t y ON x.b + 1 = y.b",
            "SELECT count(*) FROM t x JOIN t y ON x.b = y.b AND x.b * 2 > y.i",
            "SELECT count(*) FROM t x JOIN t y ON x.b * 2 > y.b",
            "SELECT b FROM t ORDER BY b + 1",
            "SELECT sum(b + 1) OVER () FROM t",
            "SELECT max(b * 2) OVER (ORDER BY i) FROM t",
            "SELECT lag(b + b) OVER (ORDER BY i) FROM t",
        ] {
            let err = answer(&ctx, sql)
                .await
                .expect_err(&format!("{sql}: an overflow cannot answer"));
            assert!(err.contains("Overflow"), "{sql}: {err}");
        }
        // In range, the same shapes answer; floats are not checked.
        let ok = answer(&ctx, "SELECT b - 1, i - 1, s - 1 FROM t ORDER BY b - 1")
            .await
            .unwrap();
        assert!(ok.contains("9223372036854775806"), "{ok}");
        assert!(ok.contains("2147483646"), "{ok}");
        // A window over moved arguments answers, under its own names.
        let w = answer(
            &ctx,
            "SELECT i, sum(s - 1) OVER (ORDER BY i) AS run, lag(i * 2) OVER (ORDER BY i) \
             FROM t ORDER BY i",
        )
        .await
        .unwrap();
        assert!(w.contains("32766"), "{w}");
        assert!(w.contains("lag(t.i * Int64(2))"), "{w}");
        assert!(!w.contains("__quipu"), "{w}");
        let f = answer(&ctx, "SELECT f * 10 FROM t WHERE f > 2")
            .await
            .unwrap();
        assert!(f.contains("inf"), "{f}");
    }

    #[test]
    fn plans_without_arithmetic_come_back_unchanged() {
        let e: Arc<dyn PhysicalExpr> =
            Arc::new(datafusion::physical_expr::expressions::Column::new("a", 0));
        assert!(!wraps(&e));
        let plus: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::clone(&e),
            Operator::Plus,
            Arc::clone(&e),
        ));
        assert!(wraps(&plus));
        assert!(!wraps(&checked(&plus).unwrap()));
        let eq: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(Arc::clone(&e), Operator::Eq, e));
        assert!(!wraps(&eq));
        assert!(Arc::ptr_eq(&checked(&eq).unwrap(), &eq));
    }
}
