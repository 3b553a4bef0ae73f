//! An aggregate's `ORDER BY` without its repeated keys.
//!
//! `array_agg(x ORDER BY x, x)` (also `string_agg`, `json_agg` and
//! `json_object_agg`, which are `array_agg` underneath, and `ORDER BY x *
//! 1, x` once simplified) failed while it ran in DataFusion 55: "column
//! types must match schema types, expected List(Struct(x, x)) but found
//! List(Struct(x))": the aggregate's state kept a field per key, its
//! ordering one per distinct key. A key equal to an earlier one orders
//! nothing the earlier did not (whatever its direction), so it is dropped,
//! after DataFusion's simplification has made equal keys equal.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

#[derive(Debug, Default)]
pub struct RepeatedSortKeys;

impl OptimizerRule for RepeatedSortKeys {
    fn name(&self) -> &str {
        "quipu_repeated_sort_keys"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> datafusion::error::Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(mut agg) = plan else {
            return Ok(Transformed::no(plan));
        };
        let mut changed = false;
        for e in agg.aggr_expr.iter_mut() {
            // The column keeps its name (it names the keys): the nodes
            // above read it by that name.
            let name = e.schema_name().to_string();
            let out = e.clone().transform_up(|e| Ok(without_repeats(e)))?;
            if out.transformed {
                changed = true;
                *e = match out.data {
                    Expr::Alias(a) => Expr::Alias(a),
                    other => other.alias(name),
                };
            }
        }
        Ok(Transformed::new_transformed(
            LogicalPlan::Aggregate(agg),
            changed,
        ))
    }
}

/// `e` without the repeated keys of its `ORDER BY`, if it is an aggregate
/// call that has some.
fn without_repeats(e: Expr) -> Transformed<Expr> {
    let Expr::AggregateFunction(mut f) = e else {
        return Transformed::no(e);
    };
    let keys = &mut f.params.order_by;
    let before = keys.len();
    let mut seen: Vec<Expr> = Vec::with_capacity(before);
    keys.retain(|k| {
        let repeated = seen.contains(&k.expr);
        if !repeated {
            seen.push(k.expr.clone());
        }
        !repeated
    });
    let changed = keys.len() != before;
    Transformed::new_transformed(Expr::AggregateFunction(f), changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::functions_aggregate::array_agg::array_agg_udaf;
    use datafusion::logical_expr::expr::AggregateFunction;
    use datafusion::prelude::col;

    #[test]
    fn a_repeated_key_is_dropped_and_the_first_direction_kept() {
        let call = Expr::AggregateFunction(AggregateFunction::new_udf(
            array_agg_udaf(),
            vec![col("x")],
            false,
            None,
            vec![
                col("x").sort(false, true),
                col("y").sort(true, false),
                col("x").sort(true, false),
            ],
            None,
        ));
        let out = without_repeats(call);
        assert!(out.transformed);
        let Expr::AggregateFunction(f) = out.data else {
            panic!("not an aggregate");
        };
        let keys: Vec<String> = f.params.order_by.iter().map(|k| k.to_string()).collect();
        assert_eq!(keys, ["x DESC NULLS FIRST", "y ASC NULLS LAST"]);
    }
}
