//! `row_number()`, `rank()` and `dense_rank()` are `bigint` and `ntile()`
//! an `integer`, as in PostgreSQL.
//!
//! DataFusion 55 gives all four as unsigned 64-bit integers, which the
//! PostgreSQL front door can only describe as `numeric` (asyncpg read
//! `rank()` as `Decimal('12')`; found by the expression test). This
//! analyzer rule runs before type coercion and casts them where a
//! projection reads them, so the projection and everything above it (and
//! its coercion: `row_number() OVER () - 1` is `bigint` arithmetic) see
//! PostgreSQL's types.
//!
//! The cast is not a projection of its own right above each window node:
//! between two stacked windows one hides the order the upper window needs
//! from the lower one, and the cluster refused such plans ("Expects
//! PARTITION BY expression to be ordered"). Windows, and the filters,
//! sorts and limits between a window and the projection that reads it,
//! keep DataFusion's types; only the projection changes.
//!
//! The array functions PostgreSQL types `integer` and DataFusion unsigned
//! (`cardinality`, `array_length`, `array_ndims`, `array_position`) are
//! cast to `Int32` wherever they are called (asyncpg read `cardinality`
//! as `Decimal('3')`).

use std::collections::HashMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result};
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct WindowRanks;

impl AnalyzerRule for WindowRanks {
    fn name(&self) -> &str {
        "quipu_window_ranks"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(super::transform_up_outside_recursion(plan, &mut |node| {
            // A projection reads the ranking outputs of the windows below.
            let mut ranks = HashMap::new();
            if let LogicalPlan::Projection(p) = &node {
                ranking_outputs(&p.input, &mut ranks);
            }
            // Recomputed even when these expressions stayed: a child's
            // types may have changed.
            super::rewrite_keeping_names(node, |e| Ok(pg_integer(e, &ranks)))?
                .map_data(|node| node.recompute_schema())
        })?
        .data)
    }
}

/// The unsigned outputs of the window nodes a projection reads from
/// `plan` (through filters, sorts and limits, and through the windows
/// stacked below a window), each with PostgreSQL's type for it.
fn ranking_outputs(plan: &LogicalPlan, out: &mut HashMap<Column, DataType>) {
    match plan {
        LogicalPlan::Window(w) => {
            let input_len = w.input.schema().fields().len();
            for (k, e) in w.window_expr.iter().enumerate() {
                let (q, f) = w.schema.qualified_field(input_len + k);
                if f.data_type() == &DataType::UInt64 {
                    out.insert(Column::new(q.cloned(), f.name()), pg_type(e));
                }
            }
            ranking_outputs(&w.input, out);
        }
        LogicalPlan::Filter(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Repartition(_) => {
            for input in plan.inputs() {
                ranking_outputs(input, out);
            }
        }
        _ => {}
    }
}

/// PostgreSQL's type of a ranking window function: `ntile` an integer,
/// the others a bigint.
fn pg_type(e: &Expr) -> DataType {
    let mut ntile = false;
    let _ = e.apply(|sub| {
        use datafusion::common::tree_node::TreeNodeRecursion;
        Ok(match sub {
            Expr::WindowFunction(f) => {
                ntile = f.fun.name() == "ntile";
                TreeNodeRecursion::Stop
            }
            _ => TreeNodeRecursion::Continue,
        })
    });
    if ntile {
        DataType::Int32
    } else {
        DataType::Int64
    }
}

/// DataFusion's array functions with an unsigned result that PostgreSQL
/// types `integer`.
const INTEGER_ARRAY_FUNCTIONS: &[&str] = &[
    "cardinality",
    "array_length",
    "array_ndims",
    "array_position",
];

/// Casts a ranking output in `ranks` to its PostgreSQL type, and a call of
/// one of [`INTEGER_ARRAY_FUNCTIONS`] to `Int32`.
fn pg_integer(e: Expr, ranks: &HashMap<Column, DataType>) -> Transformed<Expr> {
    let to = match &e {
        Expr::Column(c) => ranks.get(c).cloned(),
        Expr::ScalarFunction(f) if INTEGER_ARRAY_FUNCTIONS.contains(&f.name()) => {
            Some(DataType::Int32)
        }
        _ => None,
    };
    match to {
        Some(to) => Transformed::yes(Expr::Cast(Cast::new(Box::new(e), to))),
        None => Transformed::no(e),
    }
}
