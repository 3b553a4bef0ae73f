//! A `UNION` or `VALUES` column where a `numeric` meets a double is a
//! double, as in PostgreSQL: `float8` is the preferred numeric type, and a
//! `real` beside a `numeric` is a `real` (the numeric casts to it
//! implicitly, not the other way). DataFusion 55 made such a column a
//! decimal, which printed `0.1::float8` as `0.100000000000000` and cut a
//! double below its 15 places to 0 (`1e-20`).
//!
//! Runs before DataFusion's type coercion (in
//! [`super::float_literals::FloatComparedWithDecimal`]): a `UNION`'s
//! inputs still have their own types there, and a `VALUES` list's rows
//! hold the casts to the decimal its planner chose.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, Result};
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, Projection, Union, Values};

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

fn is_decimal(t: &DataType) -> bool {
    matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
}

/// The double a column of these types is in PostgreSQL, when a numeric
/// meets a double there; None otherwise (DataFusion's type is right).
pub(super) fn float_of<'a>(types: impl Iterator<Item = &'a DataType> + Clone) -> Option<DataType> {
    let numbers = types
        .clone()
        .all(|t| t.is_null() || t.is_integer() || is_float(t) || is_decimal(t));
    let decimal = types.clone().any(is_decimal);
    let floats: Vec<&DataType> = types.filter(|t| is_float(t)).collect();
    if !numbers || !decimal || floats.is_empty() {
        return None;
    }
    Some(match floats.iter().all(|t| **t != DataType::Float64) {
        true => DataType::Float32,
        false => DataType::Float64,
    })
}

/// `node` with its numeric-and-double columns made doubles, if it is a
/// `UNION` or a `VALUES` list that has such a column.
pub fn float_columns(node: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    match node {
        LogicalPlan::Union(u) => union(u),
        LogicalPlan::Values(v) => values(v),
        node => Ok(Transformed::no(node)),
    }
}

/// The types column `i` of `plan` has before DataFusion's coercion: a
/// `UNION`'s are its own and its inputs', those of a `UNION` among them
/// included (through the projections and aliases that pass its column
/// on: Quipu's places for the front door put one over each input). Its
/// own type is its first input's as planned (DataFusion's coercion
/// starts from it), which may be a `UNION` made a double here already;
/// an inner `UNION` of an integer and a numeric says it is an integer
/// until it is coerced (`2 UNION ALL 1.5 UNION ALL 1e-20::float8`).
fn union_types(plan: &LogicalPlan, i: usize, types: &mut Vec<DataType>) {
    if let Some(f) = plan.schema().fields().get(i) {
        types.push(f.data_type().clone());
    }
    match plan {
        LogicalPlan::Union(u) => {
            for p in &u.inputs {
                union_types(p, i, types);
            }
        }
        LogicalPlan::SubqueryAlias(a) => union_types(&a.input, i, types),
        LogicalPlan::Projection(p) => {
            let passed = match p.expr.get(i) {
                Some(Expr::Column(c)) => Some(c),
                Some(Expr::Alias(a)) => match a.expr.as_ref() {
                    Expr::Column(c) => Some(c),
                    _ => None,
                },
                _ => None,
            };
            if let Some(at) = passed.and_then(|c| p.input.schema().maybe_index_of_column(c)) {
                union_types(&p.input, at, types);
            }
        }
        _ => {}
    }
}

fn union(u: Union) -> Result<Transformed<LogicalPlan>> {
    let width = u.schema.fields().len();
    let targets: Vec<Option<DataType>> = (0..width)
        .map(|i| {
            let mut types = vec![u.schema.field(i).data_type().clone()];
            for p in &u.inputs {
                union_types(p, i, &mut types);
            }
            float_of(types.iter())
        })
        .collect();
    if targets.iter().all(Option::is_none) {
        return Ok(Transformed::no(LogicalPlan::Union(u)));
    }
    let union = retyped_union(u.inputs, |_, i, t, c| match &targets[i] {
        Some(to) if t != to => Some(Expr::Cast(Cast::new(Box::new(c), to.clone()))),
        _ => None,
    })?;
    Ok(Transformed::yes(union))
}

/// A `UNION` of `inputs`, each column `i` of an input `p` of type `t`
/// replaced by `retyped(p, i, t, column)` where that is Some (under a
/// projection that keeps its name; an input with none is kept as it is).
pub fn retyped_union(
    inputs: Vec<Arc<LogicalPlan>>,
    mut retyped: impl FnMut(&LogicalPlan, usize, &DataType, Expr) -> Option<Expr>,
) -> Result<LogicalPlan> {
    let mut out = Vec::with_capacity(inputs.len());
    for p in inputs {
        let schema = p.schema().clone();
        let mut changed = false;
        let exprs: Vec<Expr> = schema
            .iter()
            .enumerate()
            .map(|(i, (q, f))| {
                let c = Expr::Column(Column::new(q.cloned(), f.name()));
                match retyped(&p, i, f.data_type(), c.clone()) {
                    Some(e) => {
                        changed = true;
                        e.alias_qualified(q.cloned(), f.name())
                    }
                    None => c,
                }
            })
            .collect();
        out.push(match changed {
            true => Arc::new(LogicalPlan::Projection(Projection::try_new(exprs, p)?)),
            false => p,
        });
    }
    Ok(LogicalPlan::Union(Union::try_new_with_loose_types(out)?))
}

fn values(mut v: Values) -> Result<Transformed<LogicalPlan>> {
    let empty = DFSchema::empty();
    let width = v.schema.fields().len();
    let mut changed = false;
    let mut fields = Vec::with_capacity(width);
    for (j, (q, field)) in v.schema.iter().enumerate() {
        let column = field.data_type();
        // A row's value before the planner's cast to the column's type:
        // a cast to exactly that type of a number (of a double, it may be
        // Quipu's `quipu_float_numeric` already, named as written). A
        // double's cast is told from one written in the statement by the
        // scale, which the planner widened to the double's 15 places (a
        // `real`'s 7): a bare `numeric` has 10, so `VALUES
        // (0.1::float8::numeric), (2.5)` stays numeric.
        let peel = |e: &Expr| -> Option<(Expr, DataType)> {
            let e = match e {
                Expr::Alias(a) => a.expr.as_ref(),
                e => e,
            };
            let Expr::Cast(Cast { expr, field }) = e else {
                return None;
            };
            if field.data_type() != column {
                return None;
            }
            let inner = match expr.as_ref() {
                Expr::ScalarFunction(f) if f.name() == super::float_numeric::FLOAT_NUMERIC => {
                    f.args.first()?
                }
                e => e,
            };
            let t = inner.get_type(&empty).ok()?;
            let written = t == DataType::Float64
                && !matches!(column, DataType::Decimal128(_, s) | DataType::Decimal256(_, s) if *s >= 15);
            (!written).then(|| (inner.clone(), t))
        };
        let own = |e: &Expr| match peel(e) {
            Some((_, t)) => Some(t),
            None => e.get_type(&empty).ok(),
        };
        let types: Vec<DataType> = v.values.iter().filter_map(|row| own(&row[j])).collect();
        let target = float_of(types.iter()).filter(|_| is_decimal(column));
        let Some(target) = target else {
            fields.push((q.cloned(), Arc::clone(field)));
            continue;
        };
        changed = true;
        for row in &mut v.values {
            // The planner's cast is dropped: the value is cast once.
            let inner = match peel(&row[j]) {
                Some((inner, _)) => inner,
                None => std::mem::take(&mut row[j]),
            };
            row[j] = inner.cast_to(&target, &empty)?;
        }
        let f = Field::new(field.name(), target, field.is_nullable())
            .with_metadata(field.metadata().clone());
        fields.push((q.cloned(), Arc::new(f)));
    }
    if !changed {
        return Ok(Transformed::no(LogicalPlan::Values(v)));
    }
    let schema = DFSchema::new_with_metadata(fields, v.schema.metadata().clone())?;
    v.schema = Arc::new(schema);
    Ok(Transformed::yes(LogicalPlan::Values(v)))
}
