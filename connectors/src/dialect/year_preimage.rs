//! `date_part('year', x)` compared with a year outside what `x`'s type
//! can hold.
//!
//! DataFusion 55's simplifier rewrites `date_part('year', ts) > 1500`
//! (and `extract(year FROM ts) ...`) into a range of `ts` (its
//! "preimage"), so a scan can prune by it. The range's ends are the
//! years' first instants in `ts`'s type; a `timestamp` is nanoseconds
//! there, which stop at 1677 and 2262, and a year past them made an end
//! NULL, which the rewrite read as a comparison with NULL: `WHERE
//! extract(year FROM ts) > 1500` kept no row, and `date_part('century',
//! ts)` (`scheduler/src/extract.rs`, which asks whether the year is at
//! least 1) was NULL's branch, 19 for 2024. Found by
//! `tests/tools/datetime_fuzz.py`.
//!
//! [`YearPreimage`] puts [`date_part`] in place of DataFusion's in every
//! plan: the same function, whose range is kept only when both ends are
//! values (the comparison is evaluated as written otherwise).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::preimage::PreimageResult;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, PartialEq, Eq, Hash)]
struct DatePart {
    inner: ScalarUDF,
}

/// DataFusion's `date_part`, without a preimage whose ends are not values.
pub fn date_part() -> ScalarUDF {
    ScalarUDF::new_from_impl(DatePart {
        inner: datafusion::functions::datetime::date_part()
            .as_ref()
            .clone(),
    })
}

impl ScalarUDFImpl for DatePart {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn preimage(
        &self,
        args: &[Expr],
        lit_expr: &Expr,
        info: &SimplifyContext,
    ) -> Result<PreimageResult> {
        Ok(match self.inner.preimage(args, lit_expr, info)? {
            PreimageResult::Range { interval, .. }
                if interval.lower().is_null() || interval.upper().is_null() =>
            {
                PreimageResult::None
            }
            other => other,
        })
    }
}

/// Puts [`date_part`] in place of DataFusion's in a plan (its subqueries
/// too), before the optimizer's simplifier reads it.
#[derive(Debug, Default)]
pub struct YearPreimage;

impl AnalyzerRule for YearPreimage {
    fn name(&self) -> &str {
        "quipu_year_preimage"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        // Built once: every plan of every session is analyzed here.
        static OURS: std::sync::LazyLock<Arc<ScalarUDF>> =
            std::sync::LazyLock::new(|| Arc::new(date_part()));
        let ours = &*OURS;
        plan.transform_up_with_subqueries(|node| {
            node.map_expressions(|e| {
                e.transform_up(|x| match x {
                    Expr::ScalarFunction(ScalarFunction { func, args })
                        if func.name() == "date_part" && func.as_ref() != ours.as_ref() =>
                    {
                        Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                            func: Arc::clone(ours),
                            args,
                        })))
                    }
                    x => Ok(Transformed::no(x)),
                })
            })
        })
        .map(|t| t.data)
    }
}
