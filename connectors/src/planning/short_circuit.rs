//! `AND` and `OR` that evaluate their right side only where it decides
//! the answer, as PostgreSQL's do (issue 22).
//!
//! PostgreSQL evaluates `a AND b` left to right and stops where `a` is
//! false, so a guard protects what follows it: `WHERE qty <> 0 AND
//! revenue / qty > 10` never divides by zero. DataFusion 55 evaluates both
//! sides of its `AND` over the whole batch (unless the left is false on
//! every row), so that filter failed with "division by zero" on any batch
//! holding a row with `qty = 0`. Its simplifier also turns a boolean
//! `CASE WHEN qty = 0 THEN false ELSE revenue / qty > 10 END` into such an
//! `AND`, so PostgreSQL's other way of writing the guard failed too.
//!
//! [`ShortCircuit`] is an `AND` or `OR` that evaluates its right side
//! only on the rows whose left side does not decide the answer (not false
//! for `AND`, not true for `OR`) and combines them with three-valued
//! logic. The physical rule [`ShortCircuitRule`] puts it in place of the
//! `AND`s and `OR`s of filters and projections whose right side can fail
//! (a division, a cast, a function call, checked arithmetic); others are
//! left as DataFusion's. It travels to executors through Quipu's codec
//! ([`encode`], [`decode`]).

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::kernels::boolean::{and_kleene, is_null, not, or, or_kleene};
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::ProjectionExec;

/// `left AND right` or `left OR right`, the right evaluated only where it
/// decides the answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShortCircuit {
    inner: BinaryExpr,
}

impl ShortCircuit {
    /// `op` is `AND` or `OR`.
    pub fn new(left: Arc<dyn PhysicalExpr>, op: Operator, right: Arc<dyn PhysicalExpr>) -> Self {
        ShortCircuit {
            inner: BinaryExpr::new(left, op, right),
        }
    }

    fn is_and(&self) -> bool {
        *self.inner.op() == Operator::And
    }
}

impl fmt::Display for ShortCircuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

/// A boolean value as an array of `rows`.
fn booleans(v: ColumnarValue, rows: usize) -> Result<BooleanArray> {
    let a = v.into_array(rows)?;
    match a.as_any().downcast_ref::<BooleanArray>() {
        Some(b) => Ok(b.clone()),
        None if a.data_type() == &DataType::Null => Ok(BooleanArray::new_null(rows)),
        None => Err(DataFusionError::Internal(format!(
            "AND/OR of a {} operand",
            a.data_type()
        ))),
    }
}

impl PhysicalExpr for ShortCircuit {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.inner.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let rows = batch.num_rows();
        let left = self.inner.left().evaluate(batch)?;
        // The value of the left side that decides the answer alone.
        let decides = !self.is_and();
        if let ColumnarValue::Scalar(ScalarValue::Boolean(Some(b))) = &left
            && *b == decides
        {
            return Ok(left);
        }
        let left = booleans(left, rows)?;
        // The rows the right side is needed on: the left is NULL or not
        // the deciding value.
        // The left side's values, false where it is NULL.
        let known = match left.nulls() {
            Some(n) => BooleanArray::new(left.values() & n.inner(), None),
            None => BooleanArray::new(left.values().clone(), None),
        };
        let known = if decides { not(&known)? } else { known };
        let needed = or(&is_null(&left)?, &known)?;
        let count = needed.true_count();
        let right = if count == 0 {
            BooleanArray::new_null(rows)
        } else if count == rows {
            booleans(self.inner.right().evaluate(batch)?, rows)?
        } else {
            let part = filter_record_batch(batch, &needed)?;
            let r = self
                .inner
                .right()
                .evaluate(&part)?
                .into_array(part.num_rows())?;
            let scattered = datafusion::physical_expr_common::utils::scatter(&needed, &r)?;
            booleans(ColumnarValue::Array(scattered), rows)?
        };
        // Where the right side was not evaluated (NULL here) the left
        // decides: false AND NULL is false, true OR NULL is true.
        let out = if self.is_and() {
            and_kleene(&left, &right)?
        } else {
            or_kleene(&left, &right)?
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![self.inner.left(), self.inner.right()]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let [left, right] = super::checked_expr::operands(children)?;
        Ok(Arc::new(ShortCircuit::new(left, *self.inner.op(), right)))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }
}

/// Whether evaluating `e` can fail on a row a guard would have left out:
/// it divides, casts or calls a function.
fn can_fail(e: &Arc<dyn PhysicalExpr>) -> bool {
    use datafusion::physical_expr::ScalarFunctionExpr;
    use datafusion::physical_expr::expressions::{CastExpr, TryCastExpr};
    let mut found = false;
    let _ = e.apply(|node| {
        found = node.downcast_ref::<ScalarFunctionExpr>().is_some()
            || node.downcast_ref::<CastExpr>().is_some()
            || node.downcast_ref::<TryCastExpr>().is_some()
            || node
                .downcast_ref::<BinaryExpr>()
                .is_some_and(|b| matches!(b.op(), Operator::Divide | Operator::Modulo));
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// `e` with each `AND`/`OR` whose right side [`can_fail`] a
/// [`ShortCircuit`]; `None` when it has none.
fn short_circuited(e: &Arc<dyn PhysicalExpr>) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let t = Arc::clone(e).transform_up(|node| {
        if let Some(b) = node.downcast_ref::<BinaryExpr>()
            && matches!(b.op(), Operator::And | Operator::Or)
            && can_fail(b.right())
        {
            let s = ShortCircuit::new(Arc::clone(b.left()), *b.op(), Arc::clone(b.right()));
            return Ok(Transformed::yes(Arc::new(s) as Arc<dyn PhysicalExpr>));
        }
        Ok(Transformed::no(node))
    })?;
    Ok(t.transformed.then_some(t.data))
}

fn node(plan: &Arc<dyn ExecutionPlan>, filters: bool) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(f) = plan.downcast_ref::<FilterExec>()
        && filters
    {
        let Some(predicate) = short_circuited(f.predicate())? else {
            return Ok(None);
        };
        let rebuilt = FilterExecBuilder::from(f)
            .with_predicate(predicate)
            .build()?;
        return Ok(Some(Arc::new(rebuilt)));
    }
    if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        let mut any = false;
        for e in p.expr() {
            any |= short_circuited(&e.expr)?.is_some();
        }
        if !any {
            return Ok(None);
        }
        return Ok(Some(super::checked_arithmetic::projection_with(
            p,
            short_circuited,
        )?));
    }
    Ok(None)
}

/// `plan` with the `AND`s and `OR`s of its projections (and of its
/// filters, with `filters`) short-circuited where their right side can
/// fail.
pub fn short_circuit_plan(
    plan: Arc<dyn ExecutionPlan>,
    filters: bool,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|n| match node(&n, filters)? {
        Some(rebuilt) => Ok(Transformed::yes(rebuilt)),
        None => Ok(Transformed::no(n)),
    })
    .map(|t| t.data)
}

/// The physical rule of [`short_circuit_plan`]. Run first over
/// projections only (DataFusion may merge a projection into a file scan,
/// where the last run no longer sees it) and last over filters too: a
/// filter's conjunctions must stay DataFusion's `AND`s while its rules
/// split them for pushdown into scans and for row-group pruning.
#[derive(Debug, Default)]
pub struct ShortCircuitRule {
    pub filters: bool,
}

impl PhysicalOptimizerRule for ShortCircuitRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        short_circuit_plan(plan, self.filters)
    }

    fn name(&self) -> &str {
        "quipu_short_circuit"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Starts the codec's buffer of a [`ShortCircuit`]; the operator follows.
/// A zero byte cannot start a protobuf message, so the inner codec's
/// buffers never collide with it.
const MAGIC: &[u8] = b"\0quipu-short\0";

/// `expr`'s buffer for the codec, when it is a [`ShortCircuit`] (its
/// operands travel as the extension node's inputs).
pub fn encode(expr: &Arc<dyn PhysicalExpr>) -> Option<Vec<u8>> {
    let s = expr.downcast_ref::<ShortCircuit>()?;
    let op: &[u8] = if s.is_and() { b"and" } else { b"or" };
    Some([MAGIC, op].concat())
}

/// The [`ShortCircuit`] of a buffer [`encode`] wrote, over its decoded
/// operands; `None` when the buffer is not one.
pub fn decode(
    buf: &[u8],
    inputs: &[Arc<dyn PhysicalExpr>],
) -> Option<Result<Arc<dyn PhysicalExpr>>> {
    super::checked_expr::decode_binary(
        buf,
        inputs,
        MAGIC,
        &[(b"and", Operator::And), (b"or", Operator::Or)],
        |l, op, r| Arc::new(ShortCircuit::new(l, op, r)),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::prelude::SessionContext;

    /// The guard keeps the division from the rows it would fail on, in a
    /// filter and in a select list, written with `AND`, `OR` or `CASE`.
    #[tokio::test]
    async fn a_guard_keeps_the_right_side_from_the_rows_it_excludes() {
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(super::ShortCircuitRule { filters: true }))
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.sql("CREATE TABLE t (i INT) AS VALUES (0), (1), (2), (NULL), (50), (200)")
            .await
            .unwrap();
        for (sql, want) in [
            ("SELECT count(*) FROM t WHERE i <> 0 AND 100 / i > 1", 3),
            ("SELECT count(*) FROM t WHERE i = 0 OR 100 / i > 1", 4),
            (
                "SELECT count(*) FROM t WHERE CASE WHEN i = 0 THEN false ELSE 100 / i > 1 END",
                3,
            ),
            (
                "SELECT count(*) FROM (SELECT i <> 0 AND 100 / i > 1 AS x FROM t) WHERE x",
                3,
            ),
            (
                "SELECT count(*) FROM (SELECT i <> 0 AND 100 / i > 1 AS x FROM t) WHERE NOT x",
                2,
            ),
        ] {
            let batches = ctx.sql(sql).await.unwrap().collect().await;
            let batches = batches.unwrap_or_else(|e| panic!("{sql}: {e}"));
            let n = batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .unwrap()
                .value(0);
            assert_eq!(n, want, "{sql}");
        }
        // Without the guard, the division still fails.
        let unguarded = ctx
            .sql("SELECT count(*) FROM t WHERE 100 / i > 1")
            .await
            .unwrap()
            .collect()
            .await;
        assert!(
            unguarded
                .unwrap_err()
                .to_string()
                .contains("Divide by zero error")
        );
    }
}
