//! PostgreSQL's ordered-set aggregates DataFusion 55 lacks (issue 22; they
//! were `Invalid function`): `percentile_disc(f) WITHIN GROUP (ORDER BY x)`
//! and `mode() WITHIN GROUP (ORDER BY x)`, of any type that sorts, in the
//! order asked (`DESC` too), NULLs left out:
//!
//! - `percentile_disc(f)`: the first value whose position in the ordering
//!   reaches the fraction `f` of the rows (`ceil(f * n)`, the first for 0),
//!   a constant from 0 to 1 (else PostgreSQL's `22003`);
//! - `mode()`: the most frequent value, the first in the ordering among
//!   equally frequent ones;
//! - `percentile_cont(f)` (as `quipu_percentile_cont`, in place of
//!   DataFusion's, which rounded the interpolation weight to millionths:
//!   9.099999 for PostgreSQL's 9.1):
//!   a `double precision` between the values at `floor` and `ceil` of
//!   `f * (n - 1)`, `lo + (hi - lo) * fraction` as PostgreSQL's
//!   `float8_lerp`.
//!
//! All three keep a group's values and sort them once at the end (their state,
//! between the cluster's partial and final aggregations, is the list of
//! values, as `percentile_cont`'s is). The form with an array of fractions
//! is not here (refused: no such function).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{SortOptions, concat, sort_to_indices};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::physical_plan::expressions::Literal;

use crate::error::DataException;

/// The name `percentile_cont(f) WITHIN GROUP (...)` is planned under
/// (`dialect/syntax.rs` renames the call): a name DataFusion's registry
/// does not have, so the cluster's scheduler cannot take DataFusion's.
pub const PERCENTILE_CONT: &str = "quipu_percentile_cont";

/// The aggregates, for the session's registry.
pub fn aggregates() -> Vec<AggregateUDF> {
    [Kind::PercentileDisc, Kind::PercentileCont, Kind::Mode]
        .into_iter()
        .map(|kind| {
            AggregateUDF::new_from_impl(OrderedSet {
                kind,
                signature: Signature::user_defined(Volatility::Immutable),
            })
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Kind {
    PercentileDisc,
    PercentileCont,
    Mode,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct OrderedSet {
    kind: Kind,
    signature: Signature,
}

impl AggregateUDFImpl for OrderedSet {
    fn name(&self) -> &str {
        match self.kind {
            Kind::PercentileDisc => "percentile_disc",
            Kind::PercentileCont => PERCENTILE_CONT,
            Kind::Mode => "mode",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The ordered value first (DataFusion puts the `WITHIN GROUP` key
    /// there), then the fraction of `percentile_disc`.
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let ok = match (self.kind, args) {
            (Kind::Mode, [_]) => true,
            (Kind::PercentileDisc, [_, f]) => f.is_numeric() || *f == DataType::Null,
            (Kind::PercentileCont, [x, f]) => {
                (x.is_numeric() || *x == DataType::Null) && (f.is_numeric() || *f == DataType::Null)
            }
            _ => false,
        };
        if !ok {
            // Without WITHIN GROUP the arguments are the call's own.
            return super::pg_functions::no_function(self.name(), args);
        }
        Ok(match self.kind {
            Kind::Mode => vec![args[0].clone()],
            Kind::PercentileDisc => vec![args[0].clone(), DataType::Float64],
            Kind::PercentileCont => vec![DataType::Float64, DataType::Float64],
        })
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn supports_within_group_clause(&self) -> bool {
        true
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Field::new_list_field(args.input_fields[0].data_type().clone(), true);
        Ok(vec![Arc::new(Field::new(
            format!("{}[values]", args.name),
            DataType::List(Arc::new(item)),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.order_bys.is_empty() {
            return Err(DataException::error(
                "42809",
                &format!(
                    "WITHIN GROUP is required for ordered-set aggregate {}",
                    self.name()
                ),
            ));
        }
        let descending = args
            .order_bys
            .first()
            .is_some_and(|sort| sort.options.descending);
        let fraction = match self.kind {
            Kind::Mode => None,
            Kind::PercentileDisc | Kind::PercentileCont => Some(fraction(self.name(), &args)?),
        };
        Ok(Box::new(OrderedSetAccumulator {
            kind: self.kind,
            fraction,
            descending,
            data_type: args.expr_fields[0].data_type().clone(),
            values: Vec::new(),
        }))
    }
}

/// The constant fraction of `percentile_disc` or `percentile_cont`,
/// checked as PostgreSQL does.
fn fraction(name: &str, args: &AccumulatorArgs) -> Result<f64> {
    let Some(literal) = args.exprs.get(1).and_then(|e| e.downcast_ref::<Literal>()) else {
        return Err(DataException::error(
            "0A000",
            &format!("{name} with a fraction that is not a constant is not supported"),
        ));
    };
    let f: f64 = match literal.value() {
        ScalarValue::Float64(Some(f)) => *f,
        ScalarValue::Float64(None) | ScalarValue::Null => f64::NAN,
        other => {
            return exec_err!("{name}: the fraction is a {}", other.data_type());
        }
    };
    if !(0.0..=1.0).contains(&f) {
        return Err(DataException::error(
            "22003",
            &format!(
                "percentile value {} is not between 0 and 1",
                super::pg_text::float8_out(f)
            ),
        ));
    }
    Ok(f)
}

#[derive(Debug)]
struct OrderedSetAccumulator {
    kind: Kind,
    fraction: Option<f64>,
    descending: bool,
    data_type: DataType,
    /// The group's values, NULLs left out.
    values: Vec<ArrayRef>,
}

impl OrderedSetAccumulator {
    fn keep(&mut self, values: &ArrayRef) -> Result<()> {
        let kept = match values.null_count() {
            0 => values.clone(),
            _ => datafusion::arrow::compute::filter(
                values,
                &datafusion::arrow::compute::is_not_null(values)?,
            )?,
        };
        if !kept.is_empty() {
            self.values.push(kept);
        }
        Ok(())
    }

    fn all(&self) -> Result<ArrayRef> {
        let parts: Vec<&dyn Array> = self.values.iter().map(|a| a.as_ref()).collect();
        Ok(match parts.is_empty() {
            true => datafusion::arrow::array::new_empty_array(&self.data_type),
            false => concat(&parts)?,
        })
    }
}

impl Accumulator for OrderedSetAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.keep(&values[0])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                self.keep(&lists.value(i))?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let all = self.all()?;
        let field = Arc::new(Field::new_list_field(self.data_type.clone(), true));
        let list = ListArray::new(field, OffsetBuffer::from_lengths([all.len()]), all, None);
        Ok(vec![ScalarValue::List(Arc::new(list))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let all = self.all()?;
        if all.is_empty() {
            return ScalarValue::try_from(&self.data_type);
        }
        let options = SortOptions {
            descending: self.descending,
            nulls_first: false,
        };
        let order = sort_to_indices(&all, Some(options), None)?;
        let at = |k: usize| order.value(k) as usize;
        let pick = match self.kind {
            Kind::PercentileDisc => {
                let n = all.len();
                let f = self.fraction.unwrap_or(0.0);
                let row = ((f * n as f64).ceil() as usize).clamp(1, n);
                at(row - 1)
            }
            Kind::PercentileCont => {
                let x = all.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
                let index = self.fraction.unwrap_or(0.0) * (all.len() - 1) as f64;
                let (first, second) = (index.floor(), index.ceil());
                let lo = x.value(at(first as usize));
                if first == second {
                    return Ok(ScalarValue::Float64(Some(lo)));
                }
                let hi = x.value(at(second as usize));
                return Ok(ScalarValue::Float64(Some(lo + (hi - lo) * (index - first))));
            }
            Kind::Mode => {
                // Runs of equal values in sorted order (Arrow's
                // `partition`); the first longest.
                let sorted = datafusion::arrow::compute::take(&all, &order, None)?;
                let runs = datafusion::arrow::compute::partition(&[sorted])?.ranges();
                let first_longest =
                    runs.iter()
                        .fold(&runs[0], |best, r| match r.len() > best.len() {
                            true => r,
                            false => best,
                        });
                at(first_longest.start)
            }
        };
        ScalarValue::try_from_array(&all, pick)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .values
                .iter()
                .map(|a| a.get_array_memory_size())
                .sum::<usize>()
    }
}
