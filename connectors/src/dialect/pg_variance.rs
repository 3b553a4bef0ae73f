//! `variance`, `var_pop`, `stddev` and `stddev_pop` of integers and
//! numerics as PostgreSQL's: `numeric`, exact (issue 22).
//!
//! DataFusion 55 computes them as doubles, so `stddev(i)` of an integer
//! column was `915689828.4817219` where PostgreSQL answers `915689828`,
//! and `variance` of 1, 2, 4 `2.3333333333333335` for `2.3333333333333333`:
//! another type, and other digits. PostgreSQL sums the values and their
//! squares exactly and computes (`numeric_stddev_internal`)
//!
//! ```text
//! variance = (n·Σx² − (Σx)²) / (n·(n − 1))     (n·n for the population)
//! ```
//!
//! rounded at the places `select_div_scale` gives that quotient (16
//! significant digits, at least twice the input's places), and the
//! standard deviation as the square root of that rounded variance, at the
//! same places. Here the sums are kept in 256 bits and the same
//! arithmetic is done, so the value is PostgreSQL's. As for quotients
//! (`pg_numeric.rs`), an Arrow decimal has one scale per column: the
//! column's [`output_scale`] (16 to 20 places, as the integer digits
//! leave room), and the front door prints each value with PostgreSQL's
//! places from a hidden `quipu_*_places` aggregate beside it
//! (`scheduler/src/scales.rs`). A value PostgreSQL gives more places than
//! the column's (a variance below 10^-4) is rounded at the column's; one
//! too large for its column (the variance of `bigint`s past 10^22) is
//! `numeric field overflow`. A `numeric` without a scale
//! (`decimal(38,10)` here) is reckoned with the places its values show,
//! as PostgreSQL reckons with theirs (`CAST(i AS numeric)` has none). Of doubles, a double computed as
//! PostgreSQL's `float8_accum` does ([`FloatSums`]), so its last digits
//! are PostgreSQL's too.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Decimal256Type, Field, FieldRef, Int64Type, i256};
use datafusion::common::{Result, ScalarValue, exec_err, not_impl_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ReversedUDAF, Signature, Volatility,
};

use super::pg_numeric::{MIN_SIG_DIGITS, decimal_shape, fits, isqrt, overflow, rounded, unscaled};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    VarSamp,
    VarPop,
    StddevSamp,
    StddevPop,
}

const KINDS: [Kind; 4] = [
    Kind::VarSamp,
    Kind::VarPop,
    Kind::StddevSamp,
    Kind::StddevPop,
];

impl Kind {
    fn sample(self) -> bool {
        matches!(self, Kind::VarSamp | Kind::StddevSamp)
    }

    fn root(self) -> bool {
        matches!(self, Kind::StddevSamp | Kind::StddevPop)
    }

    /// DataFusion's name, which Quipu's replaces in the session.
    fn name(self) -> &'static str {
        match self {
            Kind::VarSamp => "var",
            Kind::VarPop => "var_pop",
            Kind::StddevSamp => "stddev",
            Kind::StddevPop => "stddev_pop",
        }
    }

    fn places_name(self) -> &'static str {
        match self {
            Kind::VarSamp => "quipu_var_samp_places",
            Kind::VarPop => "quipu_var_pop_places",
            Kind::StddevSamp => "quipu_stddev_samp_places",
            Kind::StddevPop => "quipu_stddev_pop_places",
        }
    }

    fn aliases(self) -> Vec<String> {
        let names: &[&str] = match self {
            Kind::VarSamp => &["var_sample", "var_samp"],
            Kind::VarPop => &["var_population"],
            Kind::StddevSamp => &["stddev_samp"],
            Kind::StddevPop => &[],
        };
        names.iter().map(|n| n.to_string()).collect()
    }
}

/// Whether `name` is one of the four aggregates as planned (a function's
/// name in a plan, not an alias).
pub fn is_variance(name: &str) -> bool {
    KINDS.iter().any(|k| k.name() == name)
}

/// The four aggregates and, for the front door, the four that give the
/// places PostgreSQL prints each with (an `integer`).
pub fn functions() -> Vec<AggregateUDF> {
    KINDS
        .iter()
        .flat_map(|&kind| {
            [false, true].map(|places| {
                AggregateUDF::new_from_impl(PgVariance {
                    kind,
                    places,
                    aliases: if places { vec![] } else { kind.aliases() },
                    signature: Signature::user_defined(Volatility::Immutable),
                })
            })
        })
        .collect()
}

/// The aggregate giving the places PostgreSQL prints the aggregate named
/// `name` with (`var`, `var_pop`, `stddev`, `stddev_pop`).
pub fn places_of(name: &str) -> Option<AggregateUDF> {
    let kind = KINDS.into_iter().find(|k| k.name() == name)?;
    Some(AggregateUDF::new_from_impl(PgVariance {
        kind,
        places: true,
        aliases: vec![],
        signature: Signature::user_defined(Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgVariance {
    kind: Kind,
    /// Gives the places, not the value.
    places: bool,
    aliases: Vec<String>,
    signature: Signature,
}

/// The column's places: PostgreSQL's least (16, or twice the input's) up
/// to 20 where the integer digits leave room in 38; 16 for a `numeric`
/// without a scale.
fn output_scale(shape: (u8, i8), root: bool) -> i8 {
    // A `numeric` without a scale is reckoned with its values' own
    // places (`Sums::bare`), mostly none: PostgreSQL's least.
    if shape == (38, 10) {
        return MIN_SIG_DIGITS as i8;
    }
    let int = shape.0 as i32 - shape.1 as i32;
    let int_digits = if root { int } else { 2 * int };
    let twice = 2 * shape.1 as i32;
    (twice.max(38 - int_digits)).clamp(MIN_SIG_DIGITS, 20) as i8
}

/// (input scale, output scale) when the aggregate of `input` is ours.
fn ours(input: &DataType, root: bool) -> Option<(i8, i8)> {
    let shape = decimal_shape(input)?;
    Some((shape.1, output_scale(shape, root)))
}

impl AggregateUDFImpl for PgVariance {
    fn name(&self) -> &str {
        if self.places {
            self.kind.places_name()
        } else {
            self.kind.name()
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        super::pg_numeric::one_number(self.kind.name(), args)
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if self.places {
            return Ok(DataType::Int32);
        }
        Ok(match ours(&args[0], self.kind.root()) {
            Some((_, scale)) => DataType::Decimal128(38, scale),
            None => DataType::Float64,
        })
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let sums = match ours(args.expr_fields[0].data_type(), self.kind.root()) {
            None if self.places => {
                return exec_err!("{} takes an integer or a numeric", self.name());
            }
            None => Summed::Float(FloatSums {
                kind: self.kind,
                n: 0.0,
                sx: 0.0,
                sxx: 0.0,
            }),
            Some((input, output)) => Summed::Exact(Sums {
                kind: self.kind,
                places: self.places,
                n: 0,
                sum: i256::ZERO,
                squares: i256::ZERO,
                input,
                output,
                bare: *args.expr_fields[0].data_type() == BARE_NUMERIC,
                most: 0,
            }),
        };
        Ok(match args.is_distinct {
            true => Box::new(DistinctValues {
                values: HashSet::new(),
                data_type: args.expr_fields[0].data_type().clone(),
                sums,
            }),
            false => sums.accumulator(),
        })
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let field = |what: &str, t: DataType| {
            Arc::new(Field::new(format_state_name(args.name, what), t, true))
        };
        if args.is_distinct {
            let t = args.input_fields[0].data_type().clone();
            return Ok(vec![field(
                "distinct",
                DataType::List(Arc::new(Field::new_list_field(t, true))),
            )]);
        }
        let Some((input, _)) = ours(args.input_fields[0].data_type(), self.kind.root()) else {
            return Ok(vec![
                field("count", DataType::Float64),
                field("sum", DataType::Float64),
                field("squares", DataType::Float64),
            ]);
        };
        Ok(vec![
            field("count", DataType::Int64),
            field("sum", DataType::Decimal256(76, input)),
            field("squares", DataType::Decimal256(76, 2 * input)),
            field("places", DataType::Int8),
        ])
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let float = ours(args.expr_fields[0].data_type(), self.kind.root()).is_none();
        if float && !self.places && !args.is_distinct {
            return Ok(Box::new(FloatFrame {
                kind: self.kind,
                values: VecDeque::new(),
            }));
        }
        self.accumulator(args)
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
}

fn ten(k: i32) -> Result<i256> {
    u32::try_from(k)
        .ok()
        .and_then(|k| i256::from_i128(10).checked_pow(k))
        .ok_or_else(overflow)
}

/// The weight (in base-10000 digits) of `v`'s first digit and that digit,
/// `v` unscaled at `scale`; (0, 0) for zero (`pg_numeric::first_digit` in
/// 256 bits).
fn first_digit(v: i256, scale: i32) -> Result<(i32, i256)> {
    if v == i256::ZERO {
        return Ok((0, i256::ZERO));
    }
    let v = v.wrapping_abs();
    let digits = v.to_string().len() as i32;
    let weight = (digits - 1 - scale).div_euclid(4);
    let shift = 4 * weight + scale;
    let digit = if shift >= 0 {
        v.wrapping_div(ten(shift)?)
    } else {
        v.wrapping_mul(ten(-shift)?)
    };
    Ok((weight, digit))
}

/// PostgreSQL's `select_div_scale` of `a / b` (unscaled at `sa`, `sb`).
fn div_scale(a: i256, sa: i32, b: i256, sb: i32) -> Result<i32> {
    let (w1, d1) = first_digit(a, sa)?;
    let (w2, d2) = first_digit(b, sb)?;
    let mut qweight = w1 - w2;
    if d1 <= d2 {
        qweight -= 1;
    }
    Ok((MIN_SIG_DIGITS - qweight * 4)
        .max(sa)
        .max(sb)
        .clamp(0, 1000))
}

/// PostgreSQL's variance or standard deviation of `n` values whose sum is
/// `sum` (unscaled at `scale`) and sum of squares `squares` (at twice
/// it), and its places; `None` where it is NULL.
fn statistic(
    kind: Kind,
    n: i64,
    sum: i256,
    squares: i256,
    scale: i8,
) -> Result<Option<(i256, i32)>> {
    if n == 0 || (kind.sample() && n == 1) {
        return Ok(None);
    }
    let count = i256::from_i128(n as i128);
    let numerator = count
        .checked_mul(squares)
        .zip(sum.checked_mul(sum))
        .and_then(|(a, b)| a.checked_sub(b))
        .ok_or_else(overflow)?;
    // Rounding cannot make it negative here (the sums are exact), but
    // PostgreSQL's zero has no places.
    if numerator <= i256::ZERO {
        return Ok(Some((i256::ZERO, 0)));
    }
    let denominator = if kind.sample() {
        count.wrapping_mul(count.wrapping_sub(i256::ONE))
    } else {
        count.wrapping_mul(count)
    };
    let twice = 2 * scale as i32;
    let places = div_scale(numerator, twice, denominator, 0)?;
    let scaled = numerator
        .checked_mul(ten(places - twice)?)
        .ok_or_else(overflow)?;
    let variance = rounded(scaled, denominator);
    if !kind.root() {
        return Ok(Some((variance, places)));
    }
    // The root of the rounded variance, at the same places, half away
    // from zero (`sqrt_var`).
    let square = variance.checked_mul(ten(places)?).ok_or_else(overflow)?;
    let mut root = isqrt(square);
    if square.wrapping_sub(root.wrapping_mul(root)) > root {
        root = root.wrapping_add(i256::ONE);
    }
    Ok(Some((root, places)))
}

/// `v` (unscaled at `places`) at the column's `scale`.
fn at_scale(v: i256, places: i32, scale: i8) -> Result<i128> {
    let scale = scale as i32;
    let v = if places <= scale {
        v.checked_mul(ten(scale - places)?).ok_or_else(overflow)?
    } else {
        rounded(v, ten(places - scale)?)
    };
    fits(v)
}

/// A `numeric` without a scale, as Quipu types it (`decimal(38,10)`).
const BARE_NUMERIC: DataType = DataType::Decimal128(38, 10);

/// The places `v` (unscaled at `scale`) shows without trailing zeros.
fn shown_places(v: i128, scale: i8) -> i8 {
    let mut places = scale;
    let mut v = v;
    while places > 0 && v % 10 == 0 {
        v /= 10;
        places -= 1;
    }
    places
}

/// `variance(DISTINCT x)` and the like: the group's distinct values,
/// summed by `sums` in ascending order when the statistic is asked for
/// (PostgreSQL sorts the values and drops the duplicates before its
/// aggregate sees them; the order matters to a double's last digits).
/// Partial groups pass their values on as a list.
#[derive(Debug)]
struct DistinctValues {
    values: HashSet<ScalarValue>,
    data_type: DataType,
    /// The sums of no values, cloned for each evaluation.
    sums: Summed,
}

/// The sums of integers and numerics, or of doubles, of no values yet.
#[derive(Debug, Clone)]
enum Summed {
    Exact(Sums),
    Float(FloatSums),
}

impl Summed {
    fn accumulator(self) -> Box<dyn Accumulator> {
        match self {
            Summed::Exact(s) => Box::new(s),
            Summed::Float(s) => Box::new(s),
        }
    }
}

impl Accumulator for DistinctValues {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let a = &values[0];
        for i in (0..a.len()).filter(|i| a.is_valid(*i)) {
            let v = match ScalarValue::try_from_array(a, i)? {
                // -0 is 0, as PostgreSQL's comparison has it.
                ScalarValue::Float64(Some(x)) => ScalarValue::Float64(Some(x + 0.0)),
                ScalarValue::Float32(Some(x)) => ScalarValue::Float32(Some(x + 0.0)),
                v => v,
            };
            self.values.insert(v);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for list in states[0].as_list::<i32>().iter().flatten() {
            self.update_batch(&[list])?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.values.iter().cloned().collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(
            &values,
            &self.data_type,
        ))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut sorted: Vec<ScalarValue> = self.values.iter().cloned().collect();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let mut sums = self.sums.clone().accumulator();
        if !sorted.is_empty() {
            sums.update_batch(&[ScalarValue::iter_to_array(sorted)?])?;
        }
        sums.evaluate()
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.iter().map(ScalarValue::size).sum::<usize>()
    }
}

/// The count, sum and sum of squares of a group's values.
#[derive(Debug, Clone)]
struct Sums {
    kind: Kind,
    places: bool,
    n: i64,
    sum: i256,
    squares: i256,
    input: i8,
    output: i8,
    /// The input is a `numeric` without a scale: PostgreSQL reckons with
    /// the places its values show (`CAST(i AS numeric)` has none), not
    /// with the 10 Quipu's type holds.
    bare: bool,
    /// The most places a value showed.
    most: i8,
}

impl Sums {
    /// The sums at the places PostgreSQL reckons with, and those places.
    fn reckoned(&self) -> Result<(i256, i256, i8)> {
        if !self.bare || self.most >= self.input {
            return Ok((self.sum, self.squares, self.input));
        }
        // Every value has at most `most` places: exact divisions.
        let cut = (self.input - self.most) as i32;
        Ok((
            self.sum.wrapping_div(ten(cut)?),
            self.squares.wrapping_div(ten(2 * cut)?),
            self.most,
        ))
    }

    fn add(&mut self, v: i128, sign: i64) -> Result<()> {
        if self.bare && sign > 0 {
            self.most = self.most.max(shown_places(v, self.input));
        }
        let v = i256::from_i128(v);
        let square = v.checked_mul(v).ok_or_else(overflow)?;
        let (sum, squares) = if sign > 0 {
            (self.sum.checked_add(v), self.squares.checked_add(square))
        } else {
            (self.sum.checked_sub(v), self.squares.checked_sub(square))
        };
        self.sum = sum.ok_or_else(overflow)?;
        self.squares = squares.ok_or_else(overflow)?;
        self.n += sign;
        Ok(())
    }
}

impl Accumulator for Sums {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in unscaled(&values[0], self.input)?.iter().flatten() {
            self.add(v, 1)?;
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in unscaled(&values[0], self.input)?.iter().flatten() {
            self.add(v, -1)?;
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let (sum, squares, scale) = self.reckoned()?;
        let value = statistic(self.kind, self.n, sum, squares, scale)?;
        if self.places {
            return Ok(ScalarValue::Int32(value.map(|(_, p)| p)));
        }
        let v = match value {
            Some((v, places)) => Some(at_scale(v, places, self.output)?),
            None => None,
        };
        Ok(ScalarValue::Decimal128(v, 38, self.output))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Int64(Some(self.n)),
            ScalarValue::Decimal256(Some(self.sum), 76, self.input),
            ScalarValue::Decimal256(Some(self.squares), 76, 2 * self.input),
            ScalarValue::Int8(Some(self.most)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let counts = states[0].as_primitive::<Int64Type>();
        let sums = states[1].as_primitive::<Decimal256Type>();
        let squares = states[2].as_primitive::<Decimal256Type>();
        let most = states[3].as_primitive::<datafusion::arrow::datatypes::Int8Type>();
        for (((c, s), q), m) in counts
            .iter()
            .zip(sums.iter())
            .zip(squares.iter())
            .zip(most.iter())
        {
            self.most = self.most.max(m.unwrap_or(0));
            self.n += c.unwrap_or(0);
            self.sum = self
                .sum
                .checked_add(s.unwrap_or(i256::ZERO))
                .ok_or_else(overflow)?;
            self.squares = self
                .squares
                .checked_add(q.unwrap_or(i256::ZERO))
                .ok_or_else(overflow)?;
        }
        Ok(())
    }
}

/// A double's variance as PostgreSQL's `float8_accum` computes it
/// (Youngs and Cramer: the count, the sum and the sum of squared
/// differences from the running mean), so its last digits are
/// PostgreSQL's; DataFusion's (Welford's) differed in them.
#[derive(Debug, Clone)]
struct FloatSums {
    kind: Kind,
    n: f64,
    sx: f64,
    sxx: f64,
}

impl FloatSums {
    fn add(&mut self, x: f64) {
        let before = self.n;
        self.n += 1.0;
        self.sx += x;
        if before > 0.0 {
            let tmp = x * self.n - self.sx;
            self.sxx += tmp * tmp / (self.n * before);
            if self.sx.is_infinite() || self.sxx.is_infinite() {
                self.sxx = f64::NAN;
            }
        } else if !x.is_finite() {
            self.sxx = f64::NAN;
        }
    }

    /// [`Self::add`] undone (a window's frame moving on).
    fn remove(&mut self, x: f64) {
        let tmp = x * self.n - self.sx;
        let before = self.n - 1.0;
        if before > 0.0 {
            self.sxx -= tmp * tmp / (self.n * before);
        } else {
            self.sxx = 0.0;
        }
        self.n = before;
        self.sx -= x;
    }
}

/// The values as doubles (an integer or numeric cast).
pub(super) fn doubles(values: &ArrayRef) -> Result<datafusion::arrow::array::Float64Array> {
    Ok(
        datafusion::arrow::compute::cast(values, &DataType::Float64)?
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
            .clone(),
    )
}

impl Accumulator for FloatSums {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        doubles(&values[0])?
            .iter()
            .flatten()
            .for_each(|x| self.add(x));
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        doubles(&values[0])?
            .iter()
            .flatten()
            .for_each(|x| self.remove(x));
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let divisor = if self.kind.sample() {
            self.n - 1.0
        } else {
            self.n
        };
        if divisor <= 0.0 {
            return Ok(ScalarValue::Float64(None));
        }
        let variance = self.sxx / divisor;
        Ok(ScalarValue::Float64(Some(if self.kind.root() {
            variance.sqrt()
        } else {
            variance
        })))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Float64(Some(self.n)),
            ScalarValue::Float64(Some(self.sx)),
            ScalarValue::Float64(Some(self.sxx)),
        ])
    }

    /// PostgreSQL's `float8_combine`.
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [n, sx, sxx] = [0, 1, 2]
            .map(|i| states[i].as_primitive::<datafusion::arrow::datatypes::Float64Type>());
        for k in 0..n.len() {
            let (n2, sx2, sxx2) = (n.value(k), sx.value(k), sxx.value(k));
            if n2 == 0.0 {
                continue;
            }
            if self.n == 0.0 {
                (self.n, self.sx, self.sxx) = (n2, sx2, sxx2);
                continue;
            }
            let n1 = self.n;
            let total = n1 + n2;
            let tmp = self.sx / n1 - sx2 / n2;
            self.sxx = self.sxx + sxx2 + n1 * n2 * tmp * tmp / total;
            self.n = total;
            self.sx += sx2;
        }
        Ok(())
    }
}

/// The doubles of a window's frame, their variance computed afresh for
/// each row as PostgreSQL does (it has no inverse for `float8_accum`):
/// taking values back out of the sums loses the small ones to the large
/// (3 for PostgreSQL's 3.0092592592592586 once 123456789.123456 left the
/// frame).
#[derive(Debug)]
struct FloatFrame {
    kind: Kind,
    values: VecDeque<f64>,
}

impl FloatFrame {
    fn sums(&self) -> FloatSums {
        let mut s = FloatSums {
            kind: self.kind,
            n: 0.0,
            sx: 0.0,
            sxx: 0.0,
        };
        self.values.iter().for_each(|x| s.add(*x));
        s
    }
}

impl Accumulator for FloatFrame {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.values.extend(doubles(&values[0])?.iter().flatten());
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for _ in doubles(&values[0])?.iter().flatten() {
            self.values.pop_front();
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.sums().evaluate()
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.values.capacity() * size_of::<f64>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.sums().state()
    }

    fn merge_batch(&mut self, _: &[ArrayRef]) -> Result<()> {
        not_impl_err!("merging the frames of a window's variance")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(kind: Kind, values: &[i128], scale: i8) -> Option<(String, i32)> {
        let mut s = Sums {
            kind,
            places: false,
            n: 0,
            sum: i256::ZERO,
            squares: i256::ZERO,
            input: scale,
            output: 20,
            bare: false,
            most: 0,
        };
        for v in values {
            s.add(*v, 1).unwrap();
        }
        statistic(kind, s.n, s.sum, s.squares, scale)
            .unwrap()
            .map(|(v, p)| (v.to_string(), p))
    }

    /// PostgreSQL 15's answers, digit for digit.
    #[test]
    fn variances_and_deviations_are_postgresqls() {
        // variance(x), stddev(x) FROM (VALUES (1), (2), (4)): 2.3333333333333333, 1.5275252316519467
        assert_eq!(
            of(Kind::VarSamp, &[1, 2, 4], 0),
            Some(("23333333333333333".into(), 16))
        );
        assert_eq!(
            of(Kind::StddevSamp, &[1, 2, 4], 0),
            Some(("15275252316519467".into(), 16))
        );
        // var_pop: 1.5555555555555556
        assert_eq!(
            of(Kind::VarPop, &[1, 2, 4], 0),
            Some(("15555555555555556".into(), 16))
        );
        // Equal values: 0, without places; one value: NULL (sample), 0 (population).
        assert_eq!(of(Kind::StddevSamp, &[5, 5], 0), Some(("0".into(), 0)));
        assert_eq!(of(Kind::VarSamp, &[5], 0), None);
        assert_eq!(of(Kind::VarPop, &[5], 0), Some(("0".into(), 0)));
        assert_eq!(of(Kind::VarPop, &[], 0), None);
        // numeric(20,6): 0.5, -0.5, 2.5 -> variance 2.3333333333333333 (at least 12 places: 16)
        assert_eq!(
            of(Kind::VarSamp, &[500000, -500000, 2500000], 6),
            Some(("23333333333333333".into(), 16))
        );
        // A numeric without a scale reckons with the places its values
        // show: var_samp(CAST(i AS numeric)) of 1, 2, 4 is PostgreSQL's
        // 2.3333333333333333, not rounded at 20 places.
        let mut s = Sums {
            kind: Kind::VarSamp,
            places: false,
            n: 0,
            sum: i256::ZERO,
            squares: i256::ZERO,
            input: 10,
            output: 20,
            bare: true,
            most: 0,
        };
        for v in [1, 2, 4] {
            s.add(v * 10_000_000_000, 1).unwrap();
        }
        assert_eq!(
            s.evaluate().unwrap(),
            ScalarValue::Decimal128(Some(233333333333333330000), 38, 20)
        );
        assert_eq!(shown_places(15_000_000_000, 10), 1);
        assert_eq!(shown_places(0, 10), 0);
    }
}
