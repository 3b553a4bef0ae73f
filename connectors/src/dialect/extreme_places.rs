//! `quipu_max_places(x, places)` and `quipu_min_places(x, places)`: the
//! places of the greatest (least) `x`, for the PostgreSQL front door
//! (`scheduler/src/scales.rs`, issue 22). A PostgreSQL `numeric` keeps
//! each value's own scale, so `max(n / 3)` prints with the places of the
//! quotient that is greatest (`3.3333333333333333`), where an Arrow
//! decimal has its column's (`3.33333333333333330000`). Of equal values,
//! the later one's, as PostgreSQL's `max` and `min` keep (the order is
//! the rows' within a partition of the work).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int32Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

/// `quipu_max_places` (`max`: true) or `quipu_min_places`.
pub fn extreme_places(max: bool) -> AggregateUDF {
    AggregateUDF::new_from_impl(ExtremePlaces {
        signature: Signature::any(2, Volatility::Immutable),
        max,
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ExtremePlaces {
    signature: Signature,
    max: bool,
}

impl AggregateUDFImpl for ExtremePlaces {
    fn name(&self) -> &str {
        match self.max {
            true => "quipu_max_places",
            false => "quipu_min_places",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let value = args.expr_fields[0].data_type();
        Ok(Box::new(Extreme {
            max: self.max,
            best: ScalarValue::try_from(value)?,
            places: None,
        }))
    }

    /// Over a window frame whose start moves (`ROWS BETWEEN 1 PRECEDING
    /// AND CURRENT ROW`): one that keeps the frame's rows, so that rows
    /// leaving it can be taken back out.
    fn create_sliding_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SlidingExtreme {
            max: self.max,
            rows: std::collections::VecDeque::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let value = args.input_fields[0].data_type().clone();
        Ok(vec![
            Arc::new(Field::new(
                format_state_name(args.name, "value"),
                value,
                true,
            )),
            Arc::new(Field::new(
                format_state_name(args.name, "places"),
                DataType::Int32,
                true,
            )),
        ])
    }
}

#[derive(Debug)]
struct Extreme {
    max: bool,
    /// The greatest (least) value so far; NULL before the first.
    best: ScalarValue,
    places: Option<i32>,
}

impl Extreme {
    /// Each row of `values` and `places` (a value's places), kept where it
    /// is the greatest (least) so far.
    fn take(&mut self, values: &ArrayRef, places: &ArrayRef) -> Result<()> {
        let places = datafusion::arrow::compute::cast(places, &DataType::Int32)?;
        let places = places.as_primitive::<Int32Type>();
        for i in 0..values.len() {
            if values.is_null(i) {
                continue;
            }
            let v = ScalarValue::try_from_array(values, i)?;
            let p = places.is_valid(i).then(|| places.value(i));
            if beats(self.max, &v, &self.best) {
                self.best = v;
                self.places = p;
            }
        }
        Ok(())
    }
}

/// [`Extreme`] over a sliding window frame: the frame's rows in order (a
/// NULL value too, so that a retraction takes out as many as came in).
#[derive(Debug)]
struct SlidingExtreme {
    max: bool,
    rows: std::collections::VecDeque<(ScalarValue, Option<i32>)>,
}

impl Accumulator for SlidingExtreme {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let places = datafusion::arrow::compute::cast(&values[1], &DataType::Int32)?;
        let places = places.as_primitive::<Int32Type>();
        for i in 0..values[0].len() {
            let v = ScalarValue::try_from_array(&values[0], i)?;
            self.rows
                .push_back((v, places.is_valid(i).then(|| places.value(i))));
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let n = values[0].len().min(self.rows.len());
        self.rows.drain(..n);
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (value, places) = self.best();
        Ok(vec![value, ScalarValue::Int32(places)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int32(self.best().1))
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self
                .rows
                .iter()
                .map(|(v, _)| v.size() + size_of::<Option<i32>>())
                .sum::<usize>()
    }
}

impl SlidingExtreme {
    /// The frame's greatest (least) value and its places, the later of
    /// equal ones.
    fn best(&self) -> (ScalarValue, Option<i32>) {
        let mut best: Option<&(ScalarValue, Option<i32>)> = None;
        for row in self.rows.iter().filter(|(v, _)| !v.is_null()) {
            if best.is_none_or(|(b, _)| beats(self.max, &row.0, b)) {
                best = Some(row);
            }
        }
        best.cloned().unwrap_or((ScalarValue::Null, None))
    }
}

/// Whether a later value `v` (not NULL) takes the place of `best` (NULL
/// before the first) as the greatest (`max`) or least: of equal values the
/// later, as PostgreSQL's `numeric_larger` and `numeric_smaller` keep.
fn beats(max: bool, v: &ScalarValue, best: &ScalarValue) -> bool {
    if best.is_null() {
        return true;
    }
    match v.partial_cmp(best) {
        Some(o) if max => o != std::cmp::Ordering::Less,
        Some(o) => o != std::cmp::Ordering::Greater,
        None => false,
    }
}

impl Accumulator for Extreme {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.take(&values[0], &values[1])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.take(&states[0], &states[1])
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.best.clone(), ScalarValue::Int32(self.places)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int32(self.places))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.best.size()
    }
}
