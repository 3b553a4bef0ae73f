//! An integer literal is an `integer` when it fits one, as in PostgreSQL.
//!
//! DataFusion reads every integer literal as a `bigint` (`Int64`), so
//! `i + 1` over an `integer` column was a `bigint`, `SELECT 1` answered a
//! `bigint` column, `CASE ... THEN 1 ELSE 0 END` too, and `i * 1000000`
//! did not fail where PostgreSQL says `integer out of range`. PostgreSQL
//! types a literal that fits 32 bits `integer`, a larger one `bigint`.
//! This analyzer rule runs before type coercion and gives such literals
//! the type `Int32`; coercion then widens them wherever the other side is
//! wider (`j + 1` over a `bigint` is still a `bigint`).
//!
//! A `VALUES` column whose every value is such a literal (or NULL) is an
//! `integer` column, and a `UNION`'s column whose every input gives an
//! `integer` is one: DataFusion settled both as `bigint` when it planned
//! them, so `sum(x) / count(*)` over `(VALUES (1), (2), (4)) t(x)` divided
//! a `numeric` (a `bigint`'s sum) and answered 2.33 where PostgreSQL's
//! `integer` sum divides as integers, 2; and `x * 1000000000` did not
//! overflow.
//!
//! Left as they are: `LIMIT`/`OFFSET` (DataFusion wants `Int64` there) and
//! the literal arguments of aggregate and window functions (`count(*)` is
//! `count(Int64(1))` to the planner and the SQL writer; `lag(x, 1)`'s
//! offset), whose result types do not depend on them.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::{Expr, LogicalPlan, Union, Values};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct IntegerLiterals;

impl AnalyzerRule for IntegerLiterals {
    fn name(&self) -> &str {
        "quipu_integer_literals"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        // An `INSERT`'s rows were cast to its table's types when it was
        // planned (no cast where they matched): they keep them.
        let narrow_rows = !matches!(plan, LogicalPlan::Dml(_));
        Ok(super::transform_up_outside_recursion(plan, &mut |node| {
            match node {
                LogicalPlan::Values(v) if narrow_rows => {
                    return integer_values(v).map(Transformed::yes);
                }
                LogicalPlan::Union(u) if narrow_rows => {
                    return integer_union(u).map(Transformed::yes);
                }
                _ => {}
            }
            if matches!(node, LogicalPlan::Limit(_) | LogicalPlan::Values(_)) {
                // A child may have changed: the schema must say so.
                return node.recompute_schema().map(Transformed::yes);
            }
            let node = super::rewrite_keeping_names(node, |e| Ok(narrow(e)))?;
            // Recomputed even when these expressions stayed: a child's
            // types may have changed.
            node.map_data(|node| node.recompute_schema())
        })?
        .data)
    }
}

/// One step of the bottom-up walk: a literal that fits 32 bits becomes an
/// `Int32`; an aggregate's or window function's own literal arguments go
/// back to `Int64` (their children were narrowed first).
fn narrow(e: Expr) -> Transformed<Expr> {
    match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), meta) => match i32::try_from(v) {
            Ok(v) => Transformed::yes(Expr::Literal(ScalarValue::Int32(Some(v)), meta)),
            Err(_) => Transformed::no(Expr::Literal(ScalarValue::Int64(Some(v)), meta)),
        },
        Expr::AggregateFunction(mut f) => {
            let changed = widen(&mut f.params.args);
            Transformed::new_transformed(Expr::AggregateFunction(f), changed)
        }
        Expr::WindowFunction(mut f) => {
            let changed = widen(&mut f.params.args);
            Transformed::new_transformed(Expr::WindowFunction(f), changed)
        }
        e => Transformed::no(e),
    }
}

/// A `VALUES` list with each column of `bigint` literals that all fit 32
/// bits (or are NULL) made an `integer` column.
fn integer_values(v: Values) -> Result<LogicalPlan> {
    let Values { schema, mut values } = v;
    let fits = |e: &Expr| match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => i32::try_from(*v).is_ok(),
        Expr::Literal(ScalarValue::Int64(None) | ScalarValue::Null, _) => true,
        _ => false,
    };
    let mut fields = Vec::with_capacity(schema.fields().len());
    for (j, (q, f)) in schema.iter().enumerate() {
        let integer = f.data_type() == &DataType::Int64
            && !values.is_empty()
            && values.iter().all(|row| row.get(j).is_some_and(fits));
        if !integer {
            fields.push((q.cloned(), f.clone()));
            continue;
        }
        for row in values.iter_mut() {
            if let Expr::Literal(value, meta) = &row[j] {
                let narrow = match value {
                    ScalarValue::Int64(Some(v)) => i32::try_from(*v).ok(),
                    _ => None,
                };
                row[j] = Expr::Literal(ScalarValue::Int32(narrow), meta.clone());
            }
        }
        fields.push((
            q.cloned(),
            Arc::new(f.as_ref().clone().with_data_type(DataType::Int32)),
        ));
    }
    let schema = DFSchema::new_with_metadata(fields, schema.metadata().clone())?;
    Ok(LogicalPlan::Values(Values {
        schema: Arc::new(schema),
        values,
    }))
}

/// A `UNION` whose column is `integer` in every input (a literal, a
/// `VALUES` column made one) made an `integer` column; DataFusion keeps a
/// union's planned types when its inputs change.
fn integer_union(u: Union) -> Result<LogicalPlan> {
    let Union { inputs, schema } = u;
    let integer = |j: usize| {
        schema.field(j).data_type() == &DataType::Int64
            && inputs.iter().all(|i| {
                i.schema().fields().get(j).map(|f| f.data_type()) == Some(&DataType::Int32)
            })
    };
    let fields = schema
        .iter()
        .enumerate()
        .map(|(j, (q, f))| match integer(j) {
            true => (
                q.cloned(),
                Arc::new(f.as_ref().clone().with_data_type(DataType::Int32)),
            ),
            false => (q.cloned(), f.clone()),
        })
        .collect();
    let schema = DFSchema::new_with_metadata(fields, schema.metadata().clone())?;
    Ok(LogicalPlan::Union(Union {
        inputs,
        schema: Arc::new(schema),
    }))
}

/// Turns the `Int32` literals among `args` back into `Int64`.
fn widen(args: &mut [Expr]) -> bool {
    let mut changed = false;
    for a in args {
        if let Expr::Literal(ScalarValue::Int32(Some(v)), meta) = a {
            *a = Expr::Literal(ScalarValue::Int64(Some(i64::from(*v))), meta.take());
            changed = true;
        }
    }
    changed
}
