//! `ln`, `log`, `log10` and `exp` of a `numeric` as PostgreSQL computes
//! them (issue 22).
//!
//! PostgreSQL computes these of a `numeric` in arbitrary precision, to
//! places it chooses per value (`numeric_ln`, `numeric_log`,
//! `numeric_exp`): at least 16 significant digits, estimated from the
//! argument, and never fewer places than the argument has. DataFusion
//! computes doubles: `exp(1.0)` was `2.718281828459045` where PostgreSQL
//! gives `2.7182818284590452`, and `log(2, 8)` was `3` where PostgreSQL
//! gives `3.0000000000000000`.
//!
//! Here a numeric argument is computed in fixed point over big integers
//! (num-bigint: DataFusion has no arbitrary-precision decimal), with at
//! least twelve guard digits beyond PostgreSQL's places, and rounded half
//! away from zero at those places (or at the column's, when it keeps
//! fewer). The logarithm is `k ln 2 + 2 atanh((m - 1) / (m + 1))` with
//! `m` in [0.5, 1); the exponential is `2^k exp(r)` with `|r| <= ln 2 / 2`,
//! by its series. Doubles and integers (one argument) stay DataFusion's
//! doubles, as PostgreSQL computes them as `double precision`;
//! `log(b, x)` of integers is a numeric, as PostgreSQL has only
//! `log(numeric, numeric)`.
//!
//! The result column is a `numeric(38, 28)` for `ln` and one-argument
//! `log` ([`LOG_SCALE`]), a `numeric(38, 20)` for `exp` and `log(b, x)`,
//! as for quotients: a value needing more places is rounded at the
//! column's, and one needing more than 18 integer digits (`exp(42)`) is
//! refused (`numeric field overflow`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Int32Array};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Int32Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use num_bigint::BigInt;
use num_traits::{Signed, ToPrimitive, Zero};

use super::pg_numeric::{decimal_shape, quotient_scale, scale_of};
use crate::error::DataException;

/// `NUMERIC_MIN_SIG_DIGITS`.
const MIN_SIG_DIGITS: i32 = 16;
/// The places of a column of `ln` or one-argument `log` (more, when the
/// argument has more, up to 35): PostgreSQL gives a logarithm near zero
/// as many places as it needs for 16 significant digits (`ln(1.000001)`
/// has 22), and these have at most two integer digits; ten are left, so
/// that `ln(x) * 1000` still fits.
const LOG_SCALE: i16 = 28;
/// Digits computed beyond the places a value is rounded at.
const GUARD: i32 = 12;

/// Which function.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
pub enum Kind {
    Ln,
    /// `log(x)`, `log10(x)`: PostgreSQL's `log(10, x)`.
    Log10,
    /// `log(b, x)`.
    Log,
    Exp,
    /// `power(x, y)` (the function is `pg_numeric::power`; here its
    /// places, and its value for an exponent that is not an integer).
    Power,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ln => "ln",
            Kind::Log10 => "log10",
            Kind::Log => "log",
            Kind::Exp => "exp",
            Kind::Power => "power",
        }
    }
}

/// `ln`, `log`, `log10` and `exp`, replacing DataFusion's in the session,
/// and their places for the front door ([`places_udf`]).
pub fn functions() -> Vec<ScalarUDF> {
    use datafusion::functions::math;
    let kinds = [
        (Kind::Ln, math::ln()),
        (Kind::Log10, math::log10()),
        (Kind::Log, math::log()),
        (Kind::Exp, math::exp()),
    ];
    let places = kinds
        .iter()
        .map(|(kind, _)| places_udf(*kind))
        .chain([places_udf(Kind::Power)]);
    kinds
        .iter()
        .map(|(kind, doubles)| {
            ScalarUDF::new_from_impl(NumericLog {
                kind: *kind,
                doubles: Arc::clone(doubles),
                signature: Signature::user_defined(Volatility::Immutable),
            })
        })
        .chain(places)
        .collect()
}

/// The function of this name computing numerics, if it is one of these.
pub fn kind_of(name: &str) -> Option<Kind> {
    [Kind::Ln, Kind::Log10, Kind::Log, Kind::Exp, Kind::Power]
        .into_iter()
        .find(|k| k.name() == name)
}

/// `quipu_ln_scale(x, places_x)` (and of `log10`, `log`, `exp`, `power`): the
/// places PostgreSQL prints the function of a numeric with, its arguments
/// shown with `places_*` (NULL: the column's), for the front door
/// (`scheduler/src/scales.rs`).
pub fn places_udf(kind: Kind) -> ScalarUDF {
    ScalarUDF::new_from_impl(PlacesUdf {
        kind,
        name: format!("quipu_{}_scale", kind.name()),
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PlacesUdf {
    kind: Kind,
    name: String,
    signature: Signature,
}

impl ScalarUDFImpl for PlacesUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let n = args.len() / 2;
        let values = args[..n].iter().map(|t| match decimal_shape(t) {
            Some((p, s)) => Some(DataType::Decimal128(p, s)),
            None if *t == DataType::Null => Some(DataType::Decimal128(1, 0)),
            None => None,
        });
        match values.collect::<Option<Vec<_>>>() {
            Some(mut v) if matches!(n, 1 | 2) && args.len() == 2 * n => {
                v.extend(std::iter::repeat_n(DataType::Int32, n));
                Ok(v)
            }
            _ => super::pg_functions::no_function(self.name(), args),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = Arc::new(places_of(self.kind, &arrays)?);
        super::pg_text::shaped_like(&args.args, out)
    }
}

#[derive(Debug)]
struct NumericLog {
    kind: Kind,
    /// DataFusion's function, for doubles.
    doubles: Arc<ScalarUDF>,
    signature: Signature,
}

impl PartialEq for NumericLog {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl Eq for NumericLog {}

impl std::hash::Hash for NumericLog {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
    }
}

/// Whether arguments of these types are computed as numerics: a decimal
/// argument (one of two may be an integer), or `log(b, x)` of integers.
fn numeric_args(name: &str, args: &[DataType]) -> bool {
    let decimal = |t: &DataType| matches!(t, DataType::Decimal128(..));
    let exact = |t: &DataType| decimal_shape(t).is_some() || *t == DataType::Null;
    match args {
        [x] => decimal(x),
        [b, x] if name == "log" => {
            exact(b) && exact(x) && (b, x) != (&DataType::Null, &DataType::Null)
        }
        _ => false,
    }
}

impl ScalarUDFImpl for NumericLog {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if numeric_args(self.name(), args) {
            return Ok(args
                .iter()
                .map(|t| match decimal_shape(t) {
                    Some((p, s)) => DataType::Decimal128(p, s),
                    None => DataType::Decimal128(1, 0),
                })
                .collect());
        }
        let arity_ok = match self.kind {
            Kind::Log => matches!(args.len(), 1 | 2),
            _ => args.len() == 1,
        };
        if arity_ok && args.iter().all(|t| t.is_numeric() || *t == DataType::Null) {
            return Ok(vec![DataType::Float64; args.len()]);
        }
        super::pg_functions::no_function(self.name(), args)
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let scales = |args: &[DataType]| {
            args.iter()
                .filter_map(decimal_shape)
                .map(|(_, s)| s as i16)
                .max()
                .unwrap_or(0)
        };
        Ok(match (self.kind, args) {
            (_, args) if args.iter().all(|t| matches!(t, DataType::Decimal128(..))) => {
                let scale = match (self.kind, args.len()) {
                    (Kind::Ln | Kind::Log10, _) | (Kind::Log, 1) => {
                        LOG_SCALE.max(scales(args)).min(35) as i8
                    }
                    _ => quotient_scale(18, scales(args)),
                };
                DataType::Decimal128(38, scale)
            }
            _ => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let DataType::Decimal128(_, scale) = *args.return_field.data_type() else {
            return self.doubles.invoke_with_args(args);
        };
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let kind = match (self.kind, arrays.len()) {
            (Kind::Log, 1) => Kind::Log10,
            (k, _) => k,
        };
        let out = match arrays.as_slice() {
            [x] => {
                let sx = scale_of(x);
                x.as_primitive::<Decimal128Type>()
                    .iter()
                    .map(|x| {
                        x.map(|x| match kind {
                            Kind::Exp => exp(x, sx, scale),
                            _ => log(kind, None, (x, sx), scale),
                        })
                        .transpose()
                    })
                    .collect::<Result<Decimal128Array>>()?
            }
            [b, x] => {
                let (sb, sx) = (scale_of(b), scale_of(x));
                super::pg_numeric::decimal_pairs(b, x, scale, |b, x| {
                    log(Kind::Log, Some((b, sb)), (x, sx), scale)
                })?
            }
            _ => {
                return datafusion::common::internal_err!(
                    "{} of {} arguments",
                    self.name(),
                    arrays.len()
                );
            }
        };
        let out: ArrayRef = Arc::new(out.with_precision_and_scale(38, scale)?);
        super::pg_text::shaped_like(&args.args, out)
    }
}

/// PostgreSQL's `estimate_ln_dweight`: the decimal weight of `ln(x)`
/// (`x` unscaled at `scale`, positive), from the first two base-10000
/// digits of `x`, or from `x - 1` when `x` is within 0.1 of 1.
fn estimate_ln_dweight(x: i128, scale: i8) -> i32 {
    let one = ten(scale as i32);
    let x_big = BigInt::from(x);
    let tenth = &one / 10;
    if x_big >= &one - &tenth && x_big <= &one + &tenth {
        let y = (&x_big - &one).abs();
        return match y.is_zero() {
            true => 0,
            false => decimal_exponent(&y) - scale as i32,
        };
    }
    if x <= 0 {
        return 0;
    }
    // The first two base-10000 digits, as `digits * 10^dweight` (a
    // second digit that is zero changes nothing).
    let exponent = decimal_exponent(&x_big) - scale as i32;
    let dweight = 4 * (exponent.div_euclid(4) - 1);
    let shift = dweight + scale as i32;
    let digits = if shift >= 0 {
        &x_big / ten(shift)
    } else {
        &x_big * ten(-shift)
    };
    let digits = digits.to_f64().unwrap_or(1.0);
    let ln = digits.ln() + dweight as f64 * std::f64::consts::LN_10;
    ln.abs().log10() as i32
}

/// The position of the first digit of `v` (> 0): 0 for 1..9, 1 for 10..99.
fn decimal_exponent(v: &BigInt) -> i32 {
    v.to_string().trim_start_matches('-').len() as i32 - 1
}

/// PostgreSQL's places for `ln(x)` (`numeric_ln`), `x` shown with
/// `places` places.
pub fn ln_scale(x: i128, scale: i8, places: i32) -> i32 {
    (MIN_SIG_DIGITS - estimate_ln_dweight(x, scale))
        .max(places)
        .clamp(0, 1000)
}

/// PostgreSQL's places for `log(b, x)` (`log_var`): each argument as
/// (unscaled value, scale, places shown).
pub fn log_scale(b: (i128, i8, i32), x: (i128, i8, i32)) -> i32 {
    let (weight_b, weight_x) = (estimate_ln_dweight(b.0, b.1), estimate_ln_dweight(x.0, x.1));
    log_places(weight_b, weight_x, b.2, x.2)
}

/// [`log_scale`] from the estimated decimal weights of `ln(b)` and
/// `ln(x)`.
fn log_places(weight_b: i32, weight_x: i32, places_b: i32, places_x: i32) -> i32 {
    (MIN_SIG_DIGITS - (weight_x - weight_b))
        .max(places_b)
        .max(places_x)
        .clamp(0, 1000)
}

/// PostgreSQL's places for `exp(x)` (`numeric_exp`): 16 significant
/// digits from the double estimate of the result's weight.
pub fn exp_scale(x: i128, scale: i8, places: i32) -> i32 {
    let value = x as f64 / 10f64.powi(scale as i32);
    // PostgreSQL's constant for log10(e), shorter than LOG10_E: the same
    // digits decide the same truncation.
    #[allow(clippy::approx_constant)]
    let log10_e = 0.434294481903252;
    let weight = (value * log10_e).clamp(-2000.0, 2000.0);
    (MIN_SIG_DIGITS - weight as i32).max(places).clamp(0, 1000)
}

/// `10^k` as a big integer.
fn ten(k: i32) -> BigInt {
    BigInt::from(10).pow(k.max(0) as u32)
}

/// `x` (unscaled at `scale`) in fixed point at `w` places.
fn fixed(x: i128, scale: i8, w: i32) -> BigInt {
    let x = BigInt::from(x);
    let shift = w - scale as i32;
    if shift >= 0 {
        x * ten(shift)
    } else {
        x / ten(-shift)
    }
}

/// `atanh(z)` of `z` at `w` places (`|z| <= 1/3`), by its series.
fn atanh(z: &BigInt, one: &BigInt) -> BigInt {
    let z2 = z * z / one;
    let mut power = z.clone();
    let mut sum = z.clone();
    let mut n = 1u32;
    loop {
        power = &power * &z2 / one;
        n += 2;
        let term = &power / n;
        if term.is_zero() {
            return sum;
        }
        sum += term;
    }
}

/// The places [`ln2`] is computed at once per process.
const LN2_PLACES: i32 = 160;

/// `ln 2` at `w` places: `2 atanh(1/3)`, computed once at
/// [`LN2_PLACES`] and cut to `w` (each logarithm and exponential needs
/// it; its series was half of a logarithm's work).
fn ln2(w: i32) -> BigInt {
    static LN2: std::sync::LazyLock<BigInt> = std::sync::LazyLock::new(|| ln2_series(LN2_PLACES));
    match w <= LN2_PLACES {
        true => &*LN2 / ten(LN2_PLACES - w),
        false => ln2_series(w),
    }
}

fn ln2_series(w: i32) -> BigInt {
    let one = ten(w);
    let third = &one / 3;
    atanh(&third, &one) * 2
}

/// `ln(x)` of `x` > 0 at `w` places, `x` in fixed point at `w` places.
fn ln_fixed(x: &BigInt, w: i32) -> BigInt {
    let one = ten(w);
    // Callers pass a positive `x`; for any other the loops below would
    // never end, so that is answered too (with a value never shown).
    if x.sign() != num_bigint::Sign::Plus {
        return BigInt::zero();
    }
    // x = m 2^k with m in [0.5, 1).
    let mut k = x.bits() as i64 - one.bits() as i64;
    let mut m = if k >= 0 {
        x >> (k as usize)
    } else {
        x << ((-k) as usize)
    };
    while m >= one {
        m >>= 1;
        k += 1;
    }
    while &m * 2 < one {
        m <<= 1;
        k -= 1;
    }
    let z = (&m - &one) * &one / (&m + &one);
    ln2(w) * k + atanh(&z, &one) * 2
}

/// `ln(x)` of `x` > 0 (unscaled at `scale`) at `w` places, from all of
/// `x`'s significant digits: `x` at `w` places lost those beyond, and
/// all of a value below `10^-w` (`power(1e-21, 0.5)` at 16 places took
/// the logarithm of 0).
fn ln_at(x: i128, scale: i8, w: i32) -> BigInt {
    let zeros = (scale as i32 - decimal_exponent(&BigInt::from(x)) - 1).max(0);
    let wide = w + zeros;
    ln_fixed(&fixed(x, scale, wide), wide) / ten(zeros)
}

/// `v` at `w` places rounded half away from zero to `places` places.
fn round_fixed(v: &BigInt, w: i32, places: i32) -> BigInt {
    let d = ten(w - places);
    let (q, r) = (v / &d, v % &d);
    if r.abs() * 2 >= d {
        if v.is_negative() { q - 1 } else { q + 1 }
    } else {
        q
    }
}

/// `v` rounded at `places` as a value of a decimal at `scale` (38
/// digits), or the overflow error.
fn as_decimal(v: BigInt, places: i32, scale: i8) -> Result<i128> {
    let v = v * ten(scale as i32 - places);
    match v.to_i128() {
        Some(v) if v.unsigned_abs() < 10u128.pow(38) => Ok(v),
        _ => Err(DataException::error("22003", "numeric field overflow")),
    }
}

fn log_of_nonpositive(x: i128) -> datafusion::error::DataFusionError {
    let what = if x == 0 { "zero" } else { "a negative number" };
    DataException::error("2201E", &format!("cannot take logarithm of {what}"))
}

/// `ln(x)`, `log(x)` or `log(b, x)` at `scale`, rounded at PostgreSQL's
/// places (the column's, when fewer).
fn log(kind: Kind, base: Option<(i128, i8)>, x: (i128, i8), scale: i8) -> Result<i128> {
    let base = match kind {
        Kind::Log10 => Some((10, 0)),
        _ => base,
    };
    for v in base.iter().chain([&x]) {
        if v.0 <= 0 {
            return Err(log_of_nonpositive(v.0));
        }
    }
    // ln(1) is zero: PostgreSQL's division of ln(x) by it fails.
    if base.is_some_and(|(b, sb)| BigInt::from(b) == ten(sb as i32)) {
        return Err(DataException::error("22012", "division by zero"));
    }
    let (value, places) = match base {
        None => {
            let places = ln_scale(x.0, x.1, x.1 as i32).min(scale as i32);
            let w = places + GUARD;
            let value = round_fixed(&ln_at(x.0, x.1, w), w, places);
            (value, places)
        }
        Some(b) => {
            let (weight_b, weight_x) =
                (estimate_ln_dweight(b.0, b.1), estimate_ln_dweight(x.0, x.1));
            let places = log_places(weight_b, weight_x, b.1 as i32, x.1 as i32).min(scale as i32);
            // The quotient's error is the logarithms' over ln(b), and as
            // large as the quotient's integer digits.
            let small_base = (-weight_b).max(0);
            let large = (weight_x - weight_b + 1).max(0);
            let w = places + GUARD + small_base + large;
            let ln_b = ln_at(b.0, b.1, w);
            if ln_b.is_zero() {
                return Err(DataException::error("22012", "division by zero"));
            }
            let ln_x = ln_at(x.0, x.1, w);
            (round_fixed(&(ln_x * ten(w) / ln_b), w, places), places)
        }
    };
    as_decimal(value, places, scale)
}

/// `exp(x)` at `scale`, rounded at PostgreSQL's places (the column's,
/// when fewer).
fn exp(x: i128, sx: i8, scale: i8) -> Result<i128> {
    let value = x as f64 / 10f64.powi(sx as i32);
    if value > 90.0 {
        return Err(DataException::error("22003", "numeric field overflow"));
    }
    let places = exp_scale(x, sx, sx as i32).min(scale as i32);
    // Below half a unit of the last place: zero.
    if value < -(places as f64 + 2.0) * std::f64::consts::LN_10 {
        return as_decimal(BigInt::zero(), places, scale);
    }
    // As many digits again as the result has integer digits.
    let w = places + GUARD + (value * std::f64::consts::LOG10_E).ceil().max(0.0) as i32 + 3;
    let value = exp_fixed(&fixed(x, sx, w), w);
    as_decimal(round_fixed(&value, w, places), places, scale)
}

/// `exp(x)` of `x` in fixed point at `w` places (`x` at most about 90).
fn exp_fixed(xf: &BigInt, w: i32) -> BigInt {
    let one = ten(w);
    let ln2 = ln2(w);
    // x = k ln 2 + r, |r| <= ln 2 / 2.
    let k = round_fixed(&(xf * ten(w) / &ln2), w, 0);
    let r = xf - &ln2 * &k;
    let mut term = one.clone();
    let mut sum = one.clone();
    let mut n = 0u32;
    loop {
        n += 1;
        term = &term * &r / (&one * n);
        if term.is_zero() {
            break;
        }
        sum += &term;
    }
    let k = k.to_i64().unwrap_or(0);
    if k >= 0 {
        sum << (k as usize)
    } else {
        sum >> ((-k) as usize)
    }
}

/// Whether `y` (unscaled at `sy`) is an integer.
fn integer(y: i128, sy: i8) -> bool {
    BigInt::from(y) % ten(sy as i32) == BigInt::zero()
}

/// PostgreSQL's low-precision estimate of `y ln(x)` (`power_var`): `ln x`
/// rounded at `8 - weight` places (at least 0), times `y` rounded there.
fn power_estimate(x: (i128, i8), y: (i128, i8)) -> f64 {
    // No logarithm: `ln_fixed` of a negative number never ended (`power(-8,
    // 0.5)` hung the server while it planned the query; the value is an
    // error anyway, see `numeric_power`).
    if x.0 <= 0 {
        return 0.0;
    }
    let places = (8 - estimate_ln_dweight(x.0, x.1)).max(0);
    let w = places + GUARD;
    let ln = round_fixed(&ln_at(x.0, x.1, w), w, places);
    let product = round_fixed(&(ln * BigInt::from(y.0)), places + y.1 as i32, places);
    product.to_f64().unwrap_or(f64::MAX) / 10f64.powi(places)
}

/// PostgreSQL 15's places for `x ^ y` of numerics, each as (unscaled
/// value, scale, places shown): for a 32-bit integer `y`, 16 or `x`'s if
/// more (`power_var_int`); otherwise 16 significant digits by the estimated
/// weight of the result, or the arguments' places if more; 16 for a zero
/// `x`.
pub fn power_scale(x: (i128, i8, i32), y: (i128, i8, i32)) -> i32 {
    let integer = integer(y.0, y.1);
    if integer && i32::try_from(y.0 / 10i128.pow(y.1 as u32)).is_ok() {
        return (MIN_SIG_DIGITS.max(x.2)).clamp(0, 1000);
    }
    if x.0 == 0 {
        return MIN_SIG_DIGITS;
    }
    // A larger integer power of a negative number is its absolute
    // value's, with its sign (`power_var`).
    let x = match integer {
        true => (x.0.abs(), x.1, x.2),
        false => x,
    };
    // PostgreSQL's constant for log10(e), as in `exp_scale`.
    #[allow(clippy::approx_constant)]
    let log10_e = 0.434294481903252;
    let weight = (power_estimate((x.0, x.1), (y.0, y.1)) * log10_e).clamp(-2000.0, 2000.0);
    (MIN_SIG_DIGITS - weight as i32)
        .max(x.2)
        .max(y.2)
        .clamp(0, 1000)
}

/// `x ^ y` of numerics, `y` not an integer (or too large for one), at
/// `scale`, rounded at PostgreSQL's places (the column's, when fewer):
/// `exp(y ln x)` in fixed point. `x` is positive or zero (the caller
/// refuses a negative one).
pub fn fractional_power(x: i128, sx: i8, y: i128, sy: i8, scale: i8) -> Result<i128> {
    let places = power_scale((x, sx, sx as i32), (y, sy, sy as i32)).min(scale as i32);
    if x == 0 {
        return as_decimal(BigInt::zero(), places, scale);
    }
    let estimate = power_estimate((x, sx), (y, sy));
    if estimate > 90.0 {
        return Err(DataException::error("22003", "numeric field overflow"));
    }
    // Below half a unit of the last place: zero.
    if estimate < -(places as f64 + 2.0) * std::f64::consts::LN_10 {
        return as_decimal(BigInt::zero(), places, scale);
    }
    // The result's digits, and as many again for `ln x` as `y` has
    // integer digits (its error is multiplied by `y`).
    let w = places + GUARD + (estimate * std::f64::consts::LOG10_E).ceil().max(0.0) as i32 + 3;
    let y_digits = decimal_exponent(&(BigInt::from(y) / ten(sy as i32) + 1)).max(0) + 1;
    let wl = w + y_digits;
    let ln = ln_at(x, sx, wl);
    // y ln x at `w` places.
    let exponent = ln * BigInt::from(y) / ten(sy as i32 + y_digits);
    // The estimate is `ln x` at few places: the exponent itself decides
    // (beyond 90, `exp_fixed` shifted by more bits than memory holds).
    if exponent > ten(w) * 90 {
        return Err(DataException::error("22003", "numeric field overflow"));
    }
    as_decimal(
        round_fixed(&exp_fixed(&exponent, w), w, places),
        places,
        scale,
    )
}

/// `x ^ e` of a numeric `x` (unscaled at `sx`) and an integer `e`, at
/// `scale`, rounded half away from zero at PostgreSQL's places
/// ([`power_scale`]), or the column's when fewer.
///
/// Exact while `x^|e|` has at most [`EXACT_POWER_DIGITS`] digits; beyond,
/// the value is below the last place (0), too large (the overflow error),
/// or `exp(e ln |x|)` with its sign. A power by repeated multiplication
/// took `|e|` steps: `power(-1::numeric, 2147483647)` held a core for
/// minutes, and `power(1.00000001, 123456789)` was refused as too large.
pub fn integer_power(x: i128, sx: i8, e: i128, scale: i8) -> Result<i128> {
    let places = power_scale((x, sx, sx as i32), (e, 0, 0)).min(scale as i32);
    if x == 0 {
        let v = if e == 0 { ten(places) } else { BigInt::zero() };
        return as_decimal(v, places, scale);
    }
    let negative = x < 0 && e % 2 != 0;
    // log10 |x^e|, to within a little.
    let log10 = e as f64 * ((x.unsigned_abs() as f64).log10() - sx as f64);
    if log10 < -(places as f64) - 2.0 {
        return as_decimal(BigInt::zero(), places, scale);
    }
    if log10 > 40.0 {
        return Err(DataException::error("22003", "numeric field overflow"));
    }
    let digits = decimal_exponent(&BigInt::from(x)) as u128 + 1;
    let magnitude = if e.unsigned_abs().saturating_mul(digits) <= EXACT_POWER_DIGITS {
        // |x|^|e| exactly, at `sx |e|` places.
        let n = e.unsigned_abs() as u32;
        let exact = BigInt::from(x.unsigned_abs()).pow(n);
        let exact_scale = sx as i32 * n as i32;
        match e >= 0 {
            true if exact_scale >= places => round_fixed(&exact, exact_scale, places),
            true => exact * ten(places - exact_scale),
            // 1 / |x|^|e| = 10^exact_scale / exact.
            false => {
                let n = ten(exact_scale + places);
                (n * 2 + &exact) / (exact * 2)
            }
        }
    } else {
        let v = fractional_power(x.abs(), sx, e, 0, scale)?;
        BigInt::from(v) / ten(scale as i32 - places)
    };
    as_decimal(if negative { -magnitude } else { magnitude }, places, scale)
}

/// The digits of the largest power [`integer_power`] computes exactly.
const EXACT_POWER_DIGITS: u128 = 2000;

/// The places PostgreSQL prints a result with, for the front door: of
/// `kind` over the arguments' values and their places (NULL: the
/// column's scale).
fn places_of(kind: Kind, arrays: &[ArrayRef]) -> Result<Int32Array> {
    let n = arrays.len() / 2;
    let values: Vec<_> = arrays[..n]
        .iter()
        .map(|a| (a.as_primitive::<Decimal128Type>(), scale_of(a)))
        .collect();
    let places: Vec<_> = arrays[n..]
        .iter()
        .map(|a| a.as_primitive::<Int32Type>())
        .collect();
    let rows = arrays.first().map_or(0, |a| a.len());
    Ok((0..rows)
        .map(|r| {
            let mut args = vec![];
            for ((a, s), p) in values.iter().zip(&places) {
                if a.is_null(r) || a.value(r) <= 0 && !matches!(kind, Kind::Exp | Kind::Power) {
                    return None;
                }
                let own = if p.is_valid(r) { p.value(r) } else { *s as i32 };
                args.push((a.value(r), *s, own));
            }
            Some(match (kind, args.as_slice()) {
                (Kind::Exp, [x]) => exp_scale(x.0, x.1, x.2),
                (Kind::Power, [x, y]) => power_scale(*x, *y),
                (Kind::Ln, [x]) => ln_scale(x.0, x.1, x.2),
                (Kind::Log10 | Kind::Log, [x]) => log_scale((10, 0, 0), *x),
                (_, [b, x]) => log_scale(*b, *x),
                _ => return None,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decimal's text as (unscaled, scale).
    fn dec(t: &str) -> (i128, i8) {
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        (format!("{int}{frac}").parse().unwrap(), frac.len() as i8)
    }

    /// `v` at `scale` with `places` places, as PostgreSQL prints it.
    fn text(v: i128, scale: i8, places: i32) -> String {
        let v = v / 10i128.pow((scale as i32 - places) as u32);
        let s = v.unsigned_abs().to_string();
        let s = format!("{:0>width$}", s, width = places as usize + 1);
        let (i, f) = s.split_at(s.len() - places as usize);
        let sign = if v < 0 { "-" } else { "" };
        match places {
            0 => format!("{sign}{i}"),
            _ => format!("{sign}{i}.{f}"),
        }
    }

    /// A negative base to a fraction is an error (`numeric_power`); its
    /// places were computed first, through a logarithm of the negative
    /// number that never ended (`SELECT power(-8, 0.5)` hung the server).
    #[test]
    fn a_negative_base_has_places_and_no_endless_logarithm() {
        assert_eq!(power_scale((-8, 0, 0), (5, 1, 1)), MIN_SIG_DIGITS);
        assert_eq!(power_scale((-80, 1, 1), (1, 1, 1)), MIN_SIG_DIGITS);
        assert_eq!(ln_fixed(&BigInt::from(-5), 10), BigInt::zero());
        assert_eq!(ln_fixed(&BigInt::zero(), 10), BigInt::zero());
    }

    /// Each expected value is PostgreSQL 15's (psql), with its places.
    #[test]
    fn logarithms_and_exponentials_are_postgresqls() {
        // At 30 places, or fewer where the value has more integer digits.
        let one = |kind: Kind, x: &str, want: &str| {
            let (v, s) = dec(x);
            let int_digits = want.split('.').next().unwrap().len() as i8;
            let scale = (37 - int_digits).min(30);
            let got = match kind {
                Kind::Exp => exp(v, s, scale),
                k => log(k, None, (v, s), scale),
            }
            .unwrap();
            let places = match kind {
                Kind::Exp => exp_scale(v, s, s as i32),
                Kind::Ln => ln_scale(v, s, s as i32),
                _ => log_scale((10, 0, 0), (v, s, s as i32)),
            };
            text(got, scale, places.min(scale as i32))
        };
        for (kind, x, want) in [
            (Kind::Ln, "2.5", "0.9162907318741551"),
            (Kind::Log10, "2.5", "0.3979400086720376"),
            (Kind::Exp, "2.5", "12.182493960703473"),
            (Kind::Exp, "1.0", "2.7182818284590452"),
            (Kind::Ln, "1.0000000001", "0.00000000009999999999500000"),
            (Kind::Exp, "-10.0", "0.00004539992976248485"),
            (Kind::Exp, "41.5", "1054923577702081418.5"),
            (
                Kind::Ln,
                "123456789012345678901234567890.5",
                "66.985688719142977",
            ),
        ] {
            assert_eq!(one(kind, x, want), want, "{kind:?}({x})");
        }
        let (b, sb) = dec("1.5");
        let (x, sx) = dec("2.25");
        let got = log(Kind::Log, Some((b, sb)), (x, sx), 30).unwrap();
        let places = log_scale((b, sb, sb as i32), (x, sx, sx as i32));
        assert_eq!(text(got, 30, places), "2.0000000000000000");
        let got = log(Kind::Log, Some((2, 0)), dec("8.0"), 30).unwrap();
        assert_eq!(text(got, 30, 16), "3.0000000000000000");
    }

    /// Each expected value is PostgreSQL 15's (psql). A power by
    /// repeated multiplication took `|e|` steps (the first held a core for
    /// minutes) and refused the next four as too large; a base below
    /// `10^-w` was the logarithm of 0 (the last gave 1).
    #[test]
    fn large_exponents_and_tiny_bases_are_postgresqls() {
        for (x, y, want) in [
            ("-1", "2147483647", "-1.0000000000000000"),
            ("1.00000001", "123456789.0", "3.4368930627063112"),
            ("0.99999999", "1234567890", "0.0000043485027752"),
            // Beyond 32 bits, PostgreSQL's places are `power_var`'s.
            ("1.000000000001", "12345678901234", "229964.194851438419"),
            ("-1.000000000001", "12345678901235", "-229964.194851668383"),
            ("1.0", "2000000000", "1.0000000000000000"),
            ("-1.1", "77", "-1538.9933993880284734"),
            ("0.5", "2000000000", "0.0000000000000000"),
            (
                "0.000000000000000000001",
                "0.5",
                "0.00000000003162277660168379",
            ),
        ] {
            let ((vx, sx), (vy, sy)) = (dec(x), dec(y));
            let got = super::super::pg_numeric::numeric_power(vx, sx, vy, sy, 30).unwrap();
            let places = power_scale((vx, sx, sx as i32), (vy, sy, sy as i32));
            assert_eq!(text(got, 30, places), want, "{x} ^ {y}");
        }
        let (v, s) = dec("0.000000000000000000001");
        let got = log(Kind::Ln, None, (v, s), 30).unwrap();
        assert_eq!(text(got, 30, 21), "-48.354286952874959364378");
    }

    #[test]
    fn logarithms_of_zero_and_of_one_as_a_base_are_errors() {
        for (base, x, want) in [
            (None, 0, "cannot take logarithm of zero"),
            (None, -5, "cannot take logarithm of a negative number"),
            (Some((10, 1)), 5, "division by zero"),
        ] {
            let kind = if base.is_some() { Kind::Log } else { Kind::Ln };
            let e = log(kind, base, (x, 0), 20).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    /// A decimal drawn for [`the_numeric_functions_end_and_agree_with_doubles`]:
    /// the extremes of 38 digits, values next to 1, 0 and small integers
    /// as often as any other.
    fn extreme(rng: &mut impl rand::Rng) -> (i128, i8) {
        let scale = rng.random_range(0..=38i8);
        let unit = 10i128.pow(scale as u32);
        let max = 10i128.pow(38) - 1;
        let digits = |rng: &mut dyn rand::RngCore, n: u32| -> i128 {
            (0..n).fold(0i128, |v, _| v * 10 + (rng.next_u32() % 10) as i128)
        };
        let v = match rng.random_range(0..8) {
            0 => 0,
            1 => unit.saturating_mul(rng.random_range(1..=3)),
            2 => max,
            3 => 1,
            // Next to 1: 1 +- a unit of some place.
            4 => unit.saturating_add(
                10i128.pow(rng.random_range(0..=scale as u32)) * rng.random_range(-1..=1),
            ),
            5 => 10i128.pow(rng.random_range(0..38)),
            _ => {
                let n = rng.random_range(1..=38);
                digits(rng, n)
            }
        };
        let v = v.clamp(0, max);
        match rng.random_bool(0.2) {
            true => (-v, scale),
            false => (v, scale),
        }
    }

    fn as_f64((v, s): (i128, i8)) -> f64 {
        v as f64 / 10f64.powi(s as i32)
    }

    /// Each of `ln`, `log`, `log(b, x)`, `exp`, `power` and `sqrt` of
    /// drawn extreme numerics (`QUIPU_NUMERIC_CASES`, 20,000 by default)
    /// ends, and answers what doubles do to within their precision and
    /// the result's places, or fails with PostgreSQL's SQLSTATE for its
    /// input: `2201E`/`2201F`/`22012` exactly where PostgreSQL's domain
    /// says, `22003` only where doubles say the result has more than 38
    /// digits. `power(-8, 0.5)` looped for ever, `power(-1::numeric,
    /// 2147483647)` for minutes and `power(1.00000001, 123456789)` was
    /// refused: none had a case here.
    #[test]
    fn the_numeric_functions_end_and_agree_with_doubles() {
        use rand::{Rng, SeedableRng};
        let cases: usize = std::env::var("QUIPU_NUMERIC_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(20_000);
        let seed: u64 = std::env::var("QUIPU_NUMERIC_SEED")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(5);
        // A hang detector, not a timing assert: each case takes well
        // under a second; one that takes a minute is a loop.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let worker = std::thread::spawn(move || {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let (mut failures, mut seen) = (vec![], std::collections::BTreeMap::new());
            for _ in 0..cases {
                let op = rng.random_range(0..6);
                let (x, y) = (extreme(&mut rng), extreme(&mut rng));
                // An integer exponent as often as not, some beyond 32 bits.
                let y = match (op, rng.random_range(0..3)) {
                    (4, 0) => (y.0 / 10i128.pow(y.1 as u32) * 10i128.pow(y.1 as u32), y.1),
                    (4, 1) => (rng.random_range(-3_000_000_000i128..3_000_000_000), 0),
                    _ => y,
                };
                let scale = rng.random_range(0..=38i8);
                let case = format!("op {op} x {x:?} y {y:?} scale {scale}");
                tx.send(case.clone()).unwrap();
                match check(op, x, y, scale) {
                    Ok(what) => *seen.entry(what).or_insert(0usize) += 1,
                    Err(why) => failures.push(format!("{case}: {why}")),
                }
            }
            (failures, seen)
        });
        let mut last = String::new();
        loop {
            match rx.recv_timeout(std::time::Duration::from_secs(60)) {
                Ok(case) => last = case,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(_) => panic!("no answer in a minute for {last}"),
            }
        }
        let (failures, seen) = worker.join().unwrap();
        eprintln!("{cases} numeric cases (seed {seed}): {seen:?}");
        assert!(
            failures.is_empty(),
            "{} of {cases} cases differ, the first: {:#?}",
            failures.len(),
            &failures[..failures.len().min(10)]
        );
        // A third of the draws or more are answers the doubles check.
        assert!(
            seen.get("value").is_some_and(|&n| n * 2 > cases),
            "{seen:?}"
        );
    }

    /// What `op` of `x` (and `y`) at `scale` was (a value the double
    /// checked, a domain error, an overflow, or what the double could not
    /// decide), or what is wrong with it.
    fn check(op: u32, x: (i128, i8), y: (i128, i8), scale: i8) -> Result<&'static str, String> {
        // An integer exponent exactly (3.0 as 2.9999999999999996 made a
        // negative base's power NaN).
        let yf = match integer(y.0, y.1) {
            true => (y.0 / 10i128.pow(y.1 as u32)) as f64,
            false => as_f64(y),
        };
        let xf = as_f64(x);
        let shown = |(v, s): (i128, i8)| (v, s, s as i32);
        // The result, the double's, PostgreSQL's places, the relative
        // error the double's inputs carry, and the domain's SQLSTATE.
        let (got, want, places, error, domain) = match op {
            0 => (
                log(Kind::Ln, None, x, scale),
                xf.ln(),
                ln_scale(x.0, x.1, x.1 as i32),
                1e-15 / xf.ln().abs().max(1e-300),
                (x.0 <= 0).then_some("2201E"),
            ),
            1 => (
                log(Kind::Log10, None, x, scale),
                xf.log10(),
                log_scale((10, 0, 0), shown(x)),
                1e-15 / xf.ln().abs().max(1e-300),
                (x.0 <= 0).then_some("2201E"),
            ),
            2 => {
                let b_is_one = y.0 > 0 && BigInt::from(y.0) == ten(y.1 as i32);
                (
                    log(Kind::Log, Some(y), x, scale),
                    xf.ln() / yf.ln(),
                    log_scale(shown(y), shown(x)),
                    1e-15 / xf.ln().abs().max(1e-300) + 1e-15 / yf.ln().abs().max(1e-300),
                    match (x.0 <= 0 || y.0 <= 0, b_is_one) {
                        (true, _) => Some("2201E"),
                        (false, true) => Some("22012"),
                        _ => None,
                    },
                )
            }
            3 => (
                exp(x.0, x.1, scale),
                xf.exp(),
                exp_scale(x.0, x.1, x.1 as i32),
                1e-15 * xf.abs().max(1.0),
                None,
            ),
            4 => {
                let integer = integer(y.0, y.1);
                (
                    super::super::pg_numeric::numeric_power(x.0, x.1, y.0, y.1, scale),
                    xf.powf(yf),
                    power_scale(shown(x), shown(y)),
                    1e-15 * (2.0 + yf.abs() * (1.0 + xf.abs().ln().abs())),
                    match (x.0 == 0 && y.0 < 0, x.0 < 0 && !integer) {
                        (false, false) => None,
                        _ => Some("2201F"),
                    },
                )
            }
            _ => (
                super::super::pg_numeric::numeric_sqrt(x.0, x.1, scale),
                xf.sqrt(),
                super::super::pg_numeric::sqrt_scale(x.0, x.1),
                1e-15,
                (x.0 < 0).then_some("2201F"),
            ),
        };
        let places = places.min(scale as i32);
        let state = |e: &datafusion::error::DataFusionError| match e {
            datafusion::error::DataFusionError::External(b) => b
                .downcast_ref::<DataException>()
                .map_or("?", |d| d.sqlstate),
            _ => "?",
        };
        // Too large for 38 digits at `scale`, by the double (a margin of
        // a tenth either way is the double's to decide, not ours).
        let limit = 10f64.powi(38 - scale as i32);
        // Whether the double's result fits `limit` by a `margin` (false
        // for NaN).
        let fits = |margin: f64| want.abs() < limit * margin;
        // Where the double's inputs leave it unsure (a base of 1 - 1e-30
        // is 1.0), it decides nothing but the domain.
        let unsure = error.is_nan() || error >= 1e-6;
        match (got, domain) {
            (Err(e), Some(d)) if state(&e) == d => Ok("domain"),
            (got, Some(d)) => Err(format!("want {d}, got {got:?}")),
            (Err(e), None) if unsure && state(&e) == "22003" => Ok("unsure"),
            (Ok(_), None) if unsure => Ok("unsure"),
            (Err(e), None) if state(&e) == "22003" && !fits(0.9) => Ok("overflow"),
            (Err(e), None) => Err(format!("want {want}, got {e}")),
            (Ok(_), None) if !fits(1.1) => {
                Err(format!("want {want}: more than 38 digits at {scale}"))
            }
            (Ok(v), None) => {
                let got = v as f64 / 10f64.powi(scale as i32);
                // Half a unit of the last place, and the double's error.
                let tolerance = 0.5 * 10f64.powi(-places) + want.abs() * (error + 1e-14) + 1e-300;
                match (got - want).abs() > tolerance * 1.01 {
                    true => Err(format!("want {want}, got {got} (places {places})")),
                    false => Ok("value"),
                }
            }
        }
    }
}
