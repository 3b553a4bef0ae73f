//! Checked `+`, `-` and `*` in a form that survives the trip to the
//! executors.
//!
//! [`super::checked_arithmetic`] marks arithmetic as failing on overflow
//! with [`BinaryExpr::with_fail_on_overflow`], a flag DataFusion's protobuf
//! form drops; executors put it back on the operators they run
//! ([`super::checked_arithmetic::checked_plan`]). That cannot reach
//! arithmetic DataFusion merged into a Parquet or CSV scan's projection
//! (`SELECT qty * 9223372036854775807 FROM lake...`): a scan cannot be
//! rebuilt with other expressions once planned, so on the cluster such
//! arithmetic wrapped around where in-process it failed with `22003`.
//!
//! [`CheckedBinary`] is that flagged `BinaryExpr` as an expression of our
//! own: it evaluates, orders and bounds exactly as the flagged `BinaryExpr`
//! does, and, being unknown to DataFusion's protobuf, travels through
//! Quipu's codec ([`encode`], [`decode`]), so a scan merged with it still
//! checks on the executor. Projections use it (they are what DataFusion
//! merges into scans); other operators keep the flag.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::datatypes::{FieldRef, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::BinaryExpr;

/// `left op right` failing on overflow (op one of `+`, `-`, `*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckedBinary {
    inner: BinaryExpr,
}

impl CheckedBinary {
    pub fn new(left: Arc<dyn PhysicalExpr>, op: Operator, right: Arc<dyn PhysicalExpr>) -> Self {
        CheckedBinary {
            inner: BinaryExpr::new(left, op, right).with_fail_on_overflow(true),
        }
    }

    pub fn op(&self) -> &Operator {
        self.inner.op()
    }
}

impl fmt::Display for CheckedBinary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl PhysicalExpr for CheckedBinary {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.inner.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        self.inner.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![self.inner.left(), self.inner.right()]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let [left, right] = operands(children)?;
        Ok(Arc::new(CheckedBinary::new(left, *self.op(), right)))
    }

    fn evaluate_bounds(&self, children: &[&Interval]) -> Result<Interval> {
        self.inner.evaluate_bounds(children)
    }

    fn propagate_constraints(
        &self,
        interval: &Interval,
        children: &[&Interval],
    ) -> Result<Option<Vec<Interval>>> {
        self.inner.propagate_constraints(interval, children)
    }

    fn get_properties(&self, children: &[ExprProperties]) -> Result<ExprProperties> {
        self.inner.get_properties(children)
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }
}

/// The two operands of a binary operator of Quipu's own.
pub(crate) fn operands(children: Vec<Arc<dyn PhysicalExpr>>) -> Result<[Arc<dyn PhysicalExpr>; 2]> {
    children
        .try_into()
        .map_err(|_| DataFusionError::Internal("a binary operator takes two operands".into()))
}

/// Builds a binary operator of Quipu's own from its operands.
pub(crate) type MakeBinary =
    fn(Arc<dyn PhysicalExpr>, Operator, Arc<dyn PhysicalExpr>) -> Arc<dyn PhysicalExpr>;

/// Starts the codec's buffer of a [`CheckedBinary`]; the operator follows.
/// A zero byte cannot start a protobuf message, so the inner codec's buffers
/// never collide with it.
const MAGIC: &[u8] = b"\0quipu-checked\0";

/// `expr`'s buffer for the codec, when it is a [`CheckedBinary`] (its
/// operands travel as the extension node's inputs).
pub fn encode(expr: &Arc<dyn PhysicalExpr>) -> Option<Vec<u8>> {
    let c = expr.downcast_ref::<CheckedBinary>()?;
    let op: &[u8] = match c.op() {
        Operator::Plus => b"+",
        Operator::Minus => b"-",
        Operator::Multiply => b"*",
        _ => return None,
    };
    Some([MAGIC, op].concat())
}

/// The [`CheckedBinary`] of a buffer [`encode`] wrote, over its decoded
/// operands; `None` when the buffer is not one.
pub fn decode(
    buf: &[u8],
    inputs: &[Arc<dyn PhysicalExpr>],
) -> Option<Result<Arc<dyn PhysicalExpr>>> {
    decode_binary(
        buf,
        inputs,
        MAGIC,
        &[
            (b"+", Operator::Plus),
            (b"-", Operator::Minus),
            (b"*", Operator::Multiply),
        ],
        |l, op, r| Arc::new(CheckedBinary::new(l, op, r)),
    )
}

/// A binary operator of Quipu's own from a codec's buffer: `magic`, then
/// one of `ops`' names; its two operands are `inputs`. `None` when the
/// buffer does not start with `magic`.
pub(crate) fn decode_binary(
    buf: &[u8],
    inputs: &[Arc<dyn PhysicalExpr>],
    magic: &[u8],
    ops: &[(&[u8], Operator)],
    make: MakeBinary,
) -> Option<Result<Arc<dyn PhysicalExpr>>> {
    let name = buf.strip_prefix(magic)?;
    let Some((_, op)) = ops.iter().find(|(n, _)| *n == name) else {
        return Some(Err(DataFusionError::Plan(format!(
            "cannot decode the operator {:?}",
            String::from_utf8_lossy(name)
        ))));
    };
    Some(match inputs {
        [left, right] => Ok(make(Arc::clone(left), *op, Arc::clone(right))),
        _ => Err(DataFusionError::Plan(format!(
            "a binary operator has two operands, not {}",
            inputs.len()
        ))),
    })
}
