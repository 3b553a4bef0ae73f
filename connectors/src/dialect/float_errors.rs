//! Double-precision division by zero and logarithms of zero or of a
//! negative number as PostgreSQL's errors (issue 22).
//!
//! PostgreSQL refuses `x / 0` for `double precision` (22012 "division by
//! zero") and `ln(0)`, `ln(-1)`, `log(0)` (2201E "cannot take logarithm of
//! zero" / "of a negative number"). DataFusion 55 answers IEEE values:
//! `Infinity`, `NaN`, `-Infinity`, so a query Quipu computed gave a number
//! where the same query pushed to PostgreSQL failed (found by the wire
//! check in tests/it/expressions.rs).
//!
//! This logical rule runs last, after each source's pushdown, so it sees
//! only what Quipu itself computes (a pushed division is PostgreSQL's
//! already): `a / b` over doubles becomes `quipu_float8_div(a, b)`, and
//! `ln`, `log10` and one-argument `log` of a double become
//! `quipu_float8_log(name, x)`, which compute the same values and refuse
//! PostgreSQL's cases. The functions are registered in every session, so
//! executors know them.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility, lit,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::error::DataException;

const DIV: &str = "quipu_float8_div";
const LOG: &str = "quipu_float8_log";

/// The two functions, for the session's registry.
pub fn functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(Checked {
            name: DIV,
            signature: Signature::exact(
                vec![DataType::Float64, DataType::Float64],
                Volatility::Immutable,
            ),
        }),
        ScalarUDF::new_from_impl(Checked {
            name: LOG,
            signature: Signature::exact(
                vec![DataType::Utf8, DataType::Float64],
                Volatility::Immutable,
            ),
        }),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Checked {
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<_>>()?;
        let out: Float64Array = if self.name == DIV {
            let (a, b) = (float(&arrays[0]), float(&arrays[1]));
            (0..n)
                .map(|i| match (a.is_null(i), b.is_null(i)) {
                    (false, false) if b.value(i) == 0.0 => {
                        Err(DataException::error("22012", "division by zero"))
                    }
                    (false, false) => Ok(Some(a.value(i) / b.value(i))),
                    _ => Ok(None),
                })
                .collect::<Result<_>>()?
        } else {
            let name = match &args.args[0] {
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(s))) => s.clone(),
                _ => "ln".into(),
            };
            let x = float(&arrays[1]);
            (0..n)
                .map(|i| {
                    if x.is_null(i) {
                        return Ok(None);
                    }
                    let v = x.value(i);
                    if v == 0.0 {
                        return Err(DataException::error(
                            "2201E",
                            "cannot take logarithm of zero",
                        ));
                    }
                    if v < 0.0 {
                        return Err(DataException::error(
                            "2201E",
                            "cannot take logarithm of a negative number",
                        ));
                    }
                    Ok(Some(if name == "ln" { v.ln() } else { v.log10() }))
                })
                .collect::<Result<_>>()?
        };
        let out: ArrayRef = Arc::new(out);
        crate::dialect::pg_text::shaped_like(&args.args, out)
    }
}

fn float(a: &ArrayRef) -> &Float64Array {
    a.as_any()
        .downcast_ref::<Float64Array>()
        .expect("the signature makes it float64")
}

/// Rewrites what Quipu computes (see the module doc).
#[derive(Debug, Default)]
pub struct FloatErrors {
    /// Only expressions of constants: the rule then runs first, before
    /// DataFusion's simplifier folds them (`ln(0)` was `-Infinity`, and
    /// `WHERE ln(0) < x`, folded and pushed to PostgreSQL, failed there).
    /// They read no source, so nothing that could be pushed is lost.
    pub constants_only: bool,
}

impl OptimizerRule for FloatErrors {
    fn name(&self) -> &str {
        if self.constants_only {
            "quipu_float_errors_of_constants"
        } else {
            "quipu_float_errors"
        }
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        // The session's registered functions, built once per process.
        let registered = |name: &str| {
            crate::session::scalar_functions()
                .iter()
                .find(|f| f.name() == name)
                .cloned()
                .expect("registered in every session")
        };
        let (div, log) = (registered(DIV), registered(LOG));
        plan.transform_up_with_subqueries(|node| {
            // An expression of a node reads its inputs' columns (a join's
            // condition both sides'): typed against each, a double in any.
            let schemas: Vec<_> = node
                .inputs()
                .iter()
                .map(|i| Arc::clone(i.schema()))
                .chain([Arc::clone(node.schema())])
                .collect();
            // Output names stay the same (`a / b`, not the function's).
            let names = NamePreserver::new(&node);
            node.map_expressions(|e| {
                let saved = names.save(&e);
                let rewritten = e.transform_up(|e| {
                    let is_double = |x: &Expr| {
                        (!self.constants_only || x.column_refs().is_empty())
                            && schemas
                                .iter()
                                .any(|s| matches!(x.get_type(s), Ok(DataType::Float64)))
                    };
                    match &e {
                        Expr::BinaryExpr(BinaryExpr {
                            left,
                            op: Operator::Divide,
                            right,
                        }) if is_double(left) && is_double(right) => Ok(Transformed::yes(
                            Expr::ScalarFunction(ScalarFunction::new_udf(
                                Arc::clone(&div),
                                vec![left.as_ref().clone(), right.as_ref().clone()],
                            )),
                        )),
                        Expr::ScalarFunction(f)
                            if matches!(f.name(), "ln" | "log10" | "log")
                                && f.args.len() == 1
                                && is_double(&f.args[0]) =>
                        {
                            let name = if f.name() == "ln" { "ln" } else { "log10" };
                            Ok(Transformed::yes(Expr::ScalarFunction(
                                ScalarFunction::new_udf(
                                    Arc::clone(&log),
                                    vec![lit(name), f.args[0].clone()],
                                ),
                            )))
                        }
                        _ => Ok(Transformed::no(e)),
                    }
                })?;
                Ok(rewritten.update_data(|e| saved.restore(e)))
            })
        })
    }
}
