//! The order of arrays, as PostgreSQL's (issue 22). PostgreSQL compares
//! two arrays element by element, a NULL element after every value and
//! equal to another NULL, and a shorter array that is a prefix of the
//! other first: `ARRAY[NULL] > ARRAY[2]`, `ARRAY[1, NULL] > ARRAY[1, 2]`.
//!
//! DataFusion 55 puts a NULL element first in `<`, `<=`, `>` and `>=`
//! (`ARRAY[NULL::int] < ARRAY[2]` was true), and in an `ORDER BY` puts
//! it where the `NULLS FIRST` / `LAST` of the whole value says, so
//! `ORDER BY a NULLS FIRST` put `{NULL}` before `{1}`. `=` and `<>` were
//! PostgreSQL's already, as are `min` and `max`. Found by probing a
//! PostgreSQL source's array columns, read as lists since this change.
//!
//! The same held for a window's `ORDER BY` (`rank() OVER (ORDER BY a DESC
//! NULLS LAST)`) and an ordered aggregate's.
//!
//! [`ArrayOrder`] compares and sorts arrays by [`key`]: the array in
//! Arrow's row format, ascending with NULL elements last, whose bytes
//! order as PostgreSQL orders the arrays, written in hexadecimal digits
//! (text orders by its bytes here; a binary key was refused in a
//! window's `RANGE` frame: "Cannot run range queries on datatype:
//! Binary"). A sort by the key keeps the
//! query's own `NULLS FIRST` / `LAST` for a NULL array.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, StringBuilder};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, SortExpr, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use super::is_list;

/// The key's name in plans.
pub const KEY: &str = "quipu_array_key";

#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayKey {
    signature: Signature,
}

/// `quipu_array_key(a)`: text that orders as PostgreSQL orders the arrays
/// (NULL for a NULL array).
pub fn key() -> ScalarUDF {
    ScalarUDF::new_from_impl(ArrayKey {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

impl ScalarUDFImpl for ArrayKey {
    fn name(&self) -> &str {
        KEY
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        match types {
            [t] if is_list(t) => Ok(DataType::Utf8),
            _ => plan_err!("{KEY} takes an array"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let a = &arrays[0];
        // Ascending, NULLs last at every depth: PostgreSQL's `array_cmp`.
        let options = SortOptions {
            descending: false,
            nulls_first: false,
        };
        let converter = RowConverter::new(vec![SortField::new_with_options(
            a.data_type().clone(),
            options,
        )])?;
        let rows = converter.convert_columns(std::slice::from_ref(a))?;
        let mut out = StringBuilder::with_capacity(a.len(), 2 * rows.size());
        let mut hex = String::new();
        for i in 0..a.len() {
            match a.is_null(i) {
                true => out.append_null(),
                false => {
                    hex.clear();
                    for byte in rows.row(i).as_ref() {
                        let _ = write!(hex, "{byte:02x}");
                    }
                    out.append_value(&hex);
                }
            }
        }
        super::pg_text::shaped_like(&args.args, Arc::new(out.finish()))
    }
}

/// Compares and sorts arrays by [`key`] (after type coercion, so both
/// sides of a comparison have one type).
#[derive(Debug, Default)]
pub struct ArrayOrder;

impl AnalyzerRule for ArrayOrder {
    fn name(&self) -> &str {
        "quipu_array_order"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let schema = super::expression_schema(&node);
            let list = |e: &Expr| e.get_type(&schema).is_ok_and(|t| is_list(&t));
            let keyed = |e: Expr| {
                Expr::ScalarFunction(ScalarFunction::new_udf(
                    crate::session::scalar_function(KEY),
                    vec![e],
                ))
            };
            let sorts = |keys: &mut Vec<SortExpr>| {
                let mut changed = false;
                for k in keys.iter_mut() {
                    if list(&k.expr) {
                        *k = k.with_expr(keyed(k.expr.clone()));
                        changed = true;
                    }
                }
                changed
            };
            let node = match node {
                LogicalPlan::Sort(mut s) => {
                    let changed = sorts(&mut s.expr);
                    Transformed::new_transformed(LogicalPlan::Sort(s), changed)
                }
                node => Transformed::no(node),
            };
            node.transform_data(|node| {
                // A projection's column keeps the name of what was written.
                let names = NamePreserver::new(&node);
                node.map_expressions(|e| {
                    let name = names.save(&e);
                    let keyed = e.transform_up(|x| match x {
                        Expr::BinaryExpr(BinaryExpr { left, op, right })
                            if matches!(
                                op,
                                Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
                            ) && list(&left)
                                && list(&right) =>
                        {
                            Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                                Box::new(keyed(*left)),
                                op,
                                Box::new(keyed(*right)),
                            ))))
                        }
                        // A window's and an ordered aggregate's ORDER BY.
                        Expr::WindowFunction(mut w) => {
                            let changed = sorts(&mut w.params.order_by);
                            Ok(Transformed::new_transformed(
                                Expr::WindowFunction(w),
                                changed,
                            ))
                        }
                        Expr::AggregateFunction(mut a) => {
                            let changed = sorts(&mut a.params.order_by);
                            Ok(Transformed::new_transformed(
                                Expr::AggregateFunction(a),
                                changed,
                            ))
                        }
                        x => Ok(Transformed::no(x)),
                    })?;
                    Ok(keyed.update_data(|e| name.restore(e)))
                })
            })
        })
        .map(|t| t.data)
    }
}

#[cfg(test)]
mod tests {
    use crate::dialect::array_sets::tests::one;

    /// Each checked against PostgreSQL 15 by psql.
    #[tokio::test]
    async fn arrays_order_with_null_elements_last() {
        let got = one(
            "SELECT ARRAY[NULL::int] < ARRAY[2] AS a, ARRAY[1, NULL] > ARRAY[1, 2] AS b, \
             ARRAY[1] < ARRAY[1, 2] AS c, ARRAY[]::int[] < ARRAY[1] AS d, \
             ARRAY[1, 2] >= ARRAY[1, NULL] AS e, ARRAY[NULL::int] <= ARRAY[NULL::int] AS f",
        )
        .await;
        assert!(
            got.contains("| false | true | true | true | false | true |"),
            "{got}"
        );
        let rows = |dir: &str| {
            format!(
                "SELECT id FROM (VALUES ('1N', ARRAY[1, NULL]), ('12', ARRAY[1, 2]), \
                 ('N', ARRAY[NULL::int]), ('-', ARRAY[]::int[]), ('1', ARRAY[1]), ('null', NULL)) \
                 v(id, x) ORDER BY x {dir}"
            )
        };
        let order = |t: String| {
            t.lines()
                .skip(3)
                .filter(|l| l.starts_with('|'))
                .map(|l| l.trim_matches(|c| c == '|' || c == ' ').to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            order(one(&rows("NULLS FIRST")).await),
            ["null", "-", "1", "12", "1N", "N"]
        );
        assert_eq!(
            order(one(&rows("DESC NULLS LAST")).await),
            ["N", "1N", "12", "1", "-", "null"]
        );
        let got = one(
            "SELECT string_agg(id || ':' || r, ' ' ORDER BY id) AS r FROM (SELECT id, \
             rank() OVER (ORDER BY x DESC NULLS LAST) AS r FROM (VALUES ('12', ARRAY[1, 2]), \
             ('N', ARRAY[NULL::int]), ('1', ARRAY[1])) v(id, x))",
        )
        .await;
        assert!(got.contains("| 1:3 12:2 N:1 |"), "{got}");
    }
}
