//! `corr`, `covar_pop`, `covar_samp` and the `regr_*` statistics of two
//! doubles as PostgreSQL computes them (issue 22): its `float8_regr_accum`
//! keeps the count, both sums and the sums of squared and crossed
//! differences from the running means (Youngs and Cramer), its
//! `float8_regr_combine` merges two such states, and each function reads
//! its answer from them (`float8_corr`, `float8_regr_slope`, ...).
//! DataFusion 55 computes them otherwise, so their last digits differed
//! (`regr_avgx` of 0.1, 0.2, ..., 100 was `50.049999999999294`,
//! PostgreSQL's `50.05`; `covar_samp` `1430.5000000000002` for
//! `1430.5000000000007`).
//!
//! The arguments are read as doubles, as PostgreSQL casts integers and
//! numerics to `float8` for them; a row where either is NULL is left out.
//! `regr_count` is DataFusion's (a count, the same).

use std::collections::VecDeque;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Float64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, not_impl_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ReversedUDAF, Signature, Volatility,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Corr,
    CovarPop,
    CovarSamp,
    Slope,
    Intercept,
    R2,
    Sxx,
    Syy,
    Sxy,
    AvgX,
    AvgY,
}

const KINDS: [Kind; 11] = [
    Kind::Corr,
    Kind::CovarPop,
    Kind::CovarSamp,
    Kind::Slope,
    Kind::Intercept,
    Kind::R2,
    Kind::Sxx,
    Kind::Syy,
    Kind::Sxy,
    Kind::AvgX,
    Kind::AvgY,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Corr => "corr",
            Kind::CovarPop => "covar_pop",
            Kind::CovarSamp => "covar_samp",
            Kind::Slope => "regr_slope",
            Kind::Intercept => "regr_intercept",
            Kind::R2 => "regr_r2",
            Kind::Sxx => "regr_sxx",
            Kind::Syy => "regr_syy",
            Kind::Sxy => "regr_sxy",
            Kind::AvgX => "regr_avgx",
            Kind::AvgY => "regr_avgy",
        }
    }
}

/// The aggregates, for the session's registry (in place of DataFusion's
/// of the same names).
pub fn functions() -> Vec<AggregateUDF> {
    KINDS
        .iter()
        .map(|&kind| {
            AggregateUDF::new_from_impl(PgRegression {
                kind,
                aliases: match kind {
                    Kind::CovarSamp => vec!["covar".to_string()],
                    _ => vec![],
                },
                signature: Signature::user_defined(Volatility::Immutable),
            })
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgRegression {
    kind: Kind,
    aliases: Vec<String>,
    signature: Signature,
}

impl AggregateUDFImpl for PgRegression {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [y, x] if [y, x].iter().all(|t| t.is_numeric() || t.is_null()) => {
                Ok(vec![DataType::Float64, DataType::Float64])
            }
            _ => super::pg_functions::no_function(self.name(), args),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.is_distinct {
            return not_impl_err!("{}(DISTINCT ...) is not supported", self.name());
        }
        Ok(Box::new(Regression {
            kind: self.kind,
            sums: Sums::default(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(["n", "sx", "sxx", "sy", "syy", "sxy"]
            .iter()
            .map(|what| {
                Arc::new(Field::new(
                    format_state_name(args.name, what),
                    DataType::Float64,
                    true,
                ))
            })
            .collect())
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.is_distinct {
            return self.accumulator(args);
        }
        Ok(Box::new(Frame {
            kind: self.kind,
            pairs: VecDeque::new(),
        }))
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
}

/// PostgreSQL's transition state: N, Sx, Sxx, Sy, Syy, Sxy.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    n: f64,
    sx: f64,
    sxx: f64,
    sy: f64,
    syy: f64,
    sxy: f64,
}

impl Sums {
    /// `float8_regr_accum` of one pair (`y`, `x`).
    fn add(&mut self, y: f64, x: f64) -> Result<()> {
        let before = *self;
        self.n += 1.0;
        self.sx += x;
        self.sy += y;
        if before.n > 0.0 {
            let tmp_x = x * self.n - self.sx;
            let tmp_y = y * self.n - self.sy;
            let scale = 1.0 / (self.n * before.n);
            self.sxx += tmp_x * tmp_x * scale;
            self.syy += tmp_y * tmp_y * scale;
            self.sxy += tmp_x * tmp_y * scale;
            // Overflow, unless an input or an earlier sum was infinite.
            let overflowed =
                |now: f64, was: f64, input: bool| now.is_infinite() && !was.is_infinite() && !input;
            let inf_x = x.is_infinite();
            let inf_y = y.is_infinite();
            if overflowed(self.sx, before.sx, inf_x)
                || overflowed(self.sxx, before.sxx, inf_x)
                || overflowed(self.sy, before.sy, inf_y)
                || overflowed(self.syy, before.syy, inf_y)
                || (self.sxy.is_infinite() && !before.sxy.is_infinite() && !inf_x && !inf_y)
            {
                return Err(super::float_errors::overflow());
            }
        } else {
            // The first pair: an infinite or NaN value makes the sums of
            // differences NaN.
            if !x.is_finite() {
                self.sxx = f64::NAN;
                self.sxy = f64::NAN;
            }
            if !y.is_finite() {
                self.syy = f64::NAN;
                self.sxy = f64::NAN;
            }
        }
        Ok(())
    }

    /// `float8_regr_combine`.
    fn merge(&mut self, other: Sums) {
        if other.n == 0.0 {
            return;
        }
        if self.n == 0.0 {
            *self = other;
            return;
        }
        let (n1, n2) = (self.n, other.n);
        let n = n1 + n2;
        let tmp1 = self.sx / n1 - other.sx / n2;
        let tmp2 = self.sy / n1 - other.sy / n2;
        self.sxx = self.sxx + other.sxx + n1 * n2 * tmp1 * tmp1 / n;
        self.syy = self.syy + other.syy + n1 * n2 * tmp2 * tmp2 / n;
        self.sxy = self.sxy + other.sxy + n1 * n2 * tmp1 * tmp2 / n;
        self.n = n;
        self.sx += other.sx;
        self.sy += other.sy;
    }

    /// The state DataFusion passes between partial aggregates.
    fn state(&self) -> Vec<ScalarValue> {
        [self.n, self.sx, self.sxx, self.sy, self.syy, self.sxy]
            .into_iter()
            .map(|v| ScalarValue::Float64(Some(v)))
            .collect()
    }

    /// The statistic PostgreSQL's final function reads (None: NULL).
    fn of(&self, kind: Kind) -> Option<f64> {
        let Sums {
            n,
            sx,
            sxx,
            sy,
            syy,
            sxy,
        } = *self;
        if n < 1.0 {
            return None;
        }
        Some(match kind {
            Kind::Sxx => sxx,
            Kind::Syy => syy,
            Kind::Sxy => sxy,
            Kind::AvgX => sx / n,
            Kind::AvgY => sy / n,
            Kind::CovarPop => sxy / n,
            Kind::CovarSamp if n < 2.0 => return None,
            Kind::CovarSamp => sxy / (n - 1.0),
            // Horizontal and vertical lines have none.
            Kind::Corr if sxx == 0.0 || syy == 0.0 => return None,
            Kind::Corr => sxy / (sxx * syy).sqrt(),
            Kind::R2 if sxx == 0.0 => return None,
            Kind::R2 if syy == 0.0 => 1.0,
            Kind::R2 => (sxy * sxy) / (sxx * syy),
            Kind::Slope if sxx == 0.0 => return None,
            Kind::Slope => sxy / sxx,
            Kind::Intercept if sxx == 0.0 => return None,
            Kind::Intercept => (sy - sx * sxy / sxx) / n,
        })
    }
}

/// The pairs of a batch where neither value is NULL.
fn pairs(values: &[ArrayRef]) -> Result<Vec<(f64, f64)>> {
    let doubles = super::pg_variance::doubles;
    let (y, x) = (doubles(&values[0])?, doubles(&values[1])?);
    Ok(y.iter()
        .zip(x.iter())
        .filter_map(|(y, x)| y.zip(x))
        .collect())
}

#[derive(Debug)]
struct Regression {
    kind: Kind,
    sums: Sums,
}

impl Accumulator for Regression {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for (y, x) in pairs(values)? {
            self.sums.add(y, x)?;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.sums.of(self.kind)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.sums.state())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let cols: Vec<&Float64Array> = states.iter().map(|s| s.as_primitive()).collect();
        for k in 0..cols[0].len() {
            let v = |i: usize| cols[i].value(k);
            self.sums.merge(Sums {
                n: v(0),
                sx: v(1),
                sxx: v(2),
                sy: v(3),
                syy: v(4),
                sxy: v(5),
            });
        }
        Ok(())
    }
}

/// The pairs of a window's frame, the sums computed afresh for each row
/// as PostgreSQL does (it has no inverse transition for these).
#[derive(Debug)]
struct Frame {
    kind: Kind,
    pairs: VecDeque<(f64, f64)>,
}

impl Frame {
    fn sums(&self) -> Result<Sums> {
        let mut s = Sums::default();
        for (y, x) in &self.pairs {
            s.add(*y, *x)?;
        }
        Ok(s)
    }
}

impl Accumulator for Frame {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.pairs.extend(pairs(values)?);
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for _ in pairs(values)? {
            self.pairs.pop_front();
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.sums()?.of(self.kind)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.pairs.capacity() * size_of::<(f64, f64)>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.sums()?.state())
    }

    fn merge_batch(&mut self, _: &[ArrayRef]) -> Result<()> {
        not_impl_err!("merging the frames of a window's regression")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(pairs: &[(f64, f64)]) -> Sums {
        let mut s = Sums::default();
        for (y, x) in pairs {
            s.add(*y, *x).expect("no overflow");
        }
        s
    }

    #[test]
    fn statistics_are_postgresqls() {
        // SELECT regr_avgx(y, x), covar_samp(y, x), regr_slope(y, x),
        // regr_intercept(y, x), regr_r2(y, x), corr(y, x)
        //   FROM (SELECT g::float8 x, (g * 1.7 + (g % 3))::float8 y
        //   FROM generate_series(1, 100) g) q;
        // `g * 1.7` is a numeric in PostgreSQL: exact, then one rounding
        // to a double, as `n / 10.0` of the exact tenths is.
        let pairs: Vec<(f64, f64)> = (1..=100)
            .map(|g| (f64::from(g * 17 + 10 * (g % 3)) / 10.0, f64::from(g)))
            .collect();
        let s = sums(&pairs);
        assert_eq!(s.of(Kind::CovarSamp), Some(1430.5000000000007));
        assert_eq!(s.of(Kind::Slope), Some(1.6996039603960402));
        assert_eq!(s.of(Kind::Intercept), Some(1.0199999999999454));
        assert_eq!(s.of(Kind::R2), Some(0.9997259258399789));
        assert_eq!(s.of(Kind::Corr), Some(0.9998629535291218));
        // regr_avgx of 0.1, 0.2, ..., 100 (x = g * 0.1): 50.05.
        let tenths: Vec<(f64, f64)> = (1..=1000).map(|g| (0.0, g as f64 * 0.1)).collect();
        assert_eq!(sums(&tenths).of(Kind::AvgX), Some(50.05));
    }

    #[test]
    fn lines_and_too_few_rows_have_none() {
        assert_eq!(Sums::default().of(Kind::AvgX), None);
        let one = sums(&[(1.0, 2.0)]);
        assert_eq!(one.of(Kind::CovarSamp), None);
        assert_eq!(one.of(Kind::CovarPop), Some(0.0));
        let vertical = sums(&[(1.0, 2.0), (3.0, 2.0)]);
        assert_eq!(vertical.of(Kind::Slope), None);
        assert_eq!(vertical.of(Kind::Corr), None);
        let horizontal = sums(&[(1.0, 2.0), (1.0, 3.0)]);
        assert_eq!(horizontal.of(Kind::R2), Some(1.0));
        assert_eq!(horizontal.of(Kind::Corr), None);
    }

    #[test]
    fn merged_halves_are_postgresqls_combine() {
        let pairs: Vec<(f64, f64)> = (1..=10).map(|g| (g as f64 * 2.5, g as f64)).collect();
        let mut left = sums(&pairs[..4]);
        left.merge(sums(&pairs[4..]));
        let whole = sums(&pairs);
        assert_eq!(left.n, whole.n);
        assert!((left.of(Kind::Slope).unwrap() - 2.5).abs() < 1e-12);
        let mut empty = Sums::default();
        empty.merge(whole);
        assert_eq!(empty.of(Kind::Slope), whole.of(Kind::Slope));
    }
}
