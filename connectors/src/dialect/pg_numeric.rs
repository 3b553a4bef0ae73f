//! PostgreSQL's `numeric` quotients and averages (issue 22).
//!
//! PostgreSQL divides two numerics to a scale it chooses per value
//! (`select_div_scale` in its `numeric.c`): at least 16 significant digits
//! (`NUMERIC_MIN_SIG_DIGITS`), reckoned from the weights of the operands'
//! first base-10000 digits, never fewer places than either operand has,
//! and rounds the exact quotient there, half away from zero. Its `avg` of
//! integers and numerics is such a quotient of the sum and the count, and
//! a `numeric`. DataFusion cuts a decimal quotient at a scale fixed by the
//! types, and averages integers as doubles: `avg(i)` gave
//! 1.3636363636363635 where PostgreSQL gives 1.3636363636363636, and
//! `n / 3` kept 20 places where PostgreSQL keeps 16 (its value differed
//! in the last places).
//!
//! Here the quotient is computed exactly (in 256 bits) and rounded where
//! PostgreSQL rounds it, so the value is PostgreSQL's. An Arrow decimal
//! has one scale per column, though: the column's is [`quotient_scale`]
//! (20 places where the integer digits leave room), and a value PostgreSQL
//! gives fewer places prints with trailing zeros here (`33.3333333333333333`
//! is `33.33333333333333330000`). A quotient PostgreSQL gives more places
//! than the column's (one below 0.0001) is rounded at the column's scale.
//!
//! - `quipu_numeric_div(a, b)`: what `a / b` of two numerics (or a numeric
//!   and an integer) is planned as (`float_literals.rs`).
//! - `avg(x)`: for integers and decimals, PostgreSQL's average as above;
//!   for other types DataFusion's `avg`, which it replaces in the session.
//! - `sqrt(x)`, replacing DataFusion's: of a numeric, PostgreSQL's
//!   `numeric`, the exact root rounded at its places (16 significant
//!   digits by the weight of `x`, or `x`'s places if more); of anything
//!   else a double. Of a negative number PostgreSQL's error (DataFusion
//!   gave NaN).
//! - `power(x, y)` (`pow`), replacing DataFusion's: of a numeric (and a
//!   numeric or an integer), PostgreSQL's `numeric`, exact and rounded to
//!   16 places (or the base's, if more) for an integer exponent, as
//!   PostgreSQL's `power_var_int`; for an exponent that is not an integer,
//!   `exp(y ln x)` in fixed point at PostgreSQL's places (16 significant
//!   digits, or the arguments' places if more:
//!   `pg_numeric_log::fractional_power`; a double does not match
//!   PostgreSQL's last digits). Otherwise, as in
//!   PostgreSQL, a `double precision` (DataFusion gave `power(n, 2)` a
//!   double: 0.25 where PostgreSQL prints 0.2500000000000000).

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Decimal256Array, Float64Array,
    Int32Array, Int64Array, ListArray, StringArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field, FieldRef, Float64Type, Int64Type, IntervalUnit, i256,
};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::functions_aggregate::average::Avg;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, EmitTo, GroupsAccumulator,
    ReversedUDAF, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::DataException;

/// `NUMERIC_MIN_SIG_DIGITS`: the significant digits a quotient has at least.
pub(super) const MIN_SIG_DIGITS: i32 = 16;
/// The places a quotient column keeps where its integer digits leave room.
const QUOTIENT_SCALE: i16 = 20;

/// The name `a / b` of numerics is planned as.
pub const DIV: &str = "quipu_numeric_div";

/// An integer or decimal type as (precision, scale) of the decimal that
/// holds it exactly; `None` for other types.
pub fn decimal_shape(t: &DataType) -> Option<(u8, i8)> {
    Some(match t {
        DataType::Int8 | DataType::UInt8 => (3, 0),
        DataType::Int16 | DataType::UInt16 => (5, 0),
        DataType::Int32 | DataType::UInt32 => (10, 0),
        DataType::Int64 => (19, 0),
        DataType::UInt64 => (20, 0),
        DataType::Decimal128(p, s) => (*p, *s),
        _ => return None,
    })
}

/// The scale of a column of quotients: 20 places (or more, when an
/// operand has more), as far as the quotient's integer digits leave room
/// in 38. `int_digits` bounds the quotient's integer digits; a decimal
/// typed wider than 18 integer digits (a sum is typed 10 digits wider than
/// its column) is given 18, and a larger quotient is refused when it
/// comes (`numeric field overflow`) rather than every quotient cut short.
pub(super) fn quotient_scale(int_digits: i16, scales: i16) -> i8 {
    QUOTIENT_SCALE
        .max(scales)
        .min(38 - int_digits.clamp(0, 38))
        .max(0) as i8
}

/// The type of `a / b`.
fn div_type(a: (u8, i8), b: (u8, i8)) -> DataType {
    let int_digits = (a.0 as i16 - a.1 as i16 + b.1 as i16).min(18);
    DataType::Decimal128(38, quotient_scale(int_digits, (a.1 as i16).max(b.1 as i16)))
}

/// The type of `avg` of a column of `shape`: its integer digits are the
/// column's (18 at most for a decimal, as for quotients).
fn avg_type(shape: (u8, i8), integer: bool) -> DataType {
    let digits = shape.0 as i16 - shape.1 as i16;
    let digits = if integer { digits } else { digits.min(18) };
    DataType::Decimal128(38, quotient_scale(digits, shape.1 as i16))
}

/// The weight (in base-10000 digits, as PostgreSQL stores a numeric) of a
/// value's first digit and that digit; (0, 0) for zero.
fn first_digit(v: i128, scale: i8) -> (i32, i128) {
    let v = v.unsigned_abs();
    if v == 0 {
        return (0, 0);
    }
    let exponent = v.ilog10() as i32 - scale as i32;
    let weight = exponent.div_euclid(4);
    let shift = 4 * weight + scale as i32;
    let digit = if shift >= 0 {
        v / 10u128.pow(shift as u32)
    } else {
        // At most three places: a value with fewer digits than its scale.
        v * 10u128.pow((-shift) as u32)
    };
    (weight, digit as i128)
}

/// PostgreSQL's `select_div_scale`: the places of `a / b`.
pub fn div_scale(a: i128, sa: i8, b: i128, sb: i8) -> i32 {
    quotient_places(a, sa, b, sb)
        .max(sa as i32)
        .max(sb as i32)
        .clamp(0, 1000)
}

/// The places `select_div_scale` gives `a / b` for 16 significant
/// digits, before it takes the operands' own places if they are more.
fn quotient_places(a: i128, sa: i8, b: i128, sb: i8) -> i32 {
    let (w1, d1) = first_digit(a, sa);
    let (w2, d2) = first_digit(b, sb);
    let mut qweight = w1 - w2;
    if d1 <= d2 {
        qweight -= 1;
    }
    MIN_SIG_DIGITS - qweight * 4
}

pub(super) fn overflow() -> datafusion::error::DataFusionError {
    DataException::error(
        "22003",
        "numeric field overflow: a quotient or average has more than 38 digits at its scale",
    )
}

/// `a / b` (unscaled values at scales `sa`, `sb`) as PostgreSQL computes
/// it, at `scale` places: rounded, half away from zero, at PostgreSQL's
/// places or at `scale` when that is fewer.
pub fn quotient(a: i128, sa: i8, b: i128, sb: i8, scale: i8) -> Result<i128> {
    fits(wide_quotient(a, sa, b, sb, scale)?)
}

/// [`quotient`] in 256 bits, unchecked for 38 digits.
fn wide_quotient(a: i128, sa: i8, b: i128, sb: i8, scale: i8) -> Result<i256> {
    if b == 0 {
        return Err(DataException::error("22012", "division by zero"));
    }
    let places = div_scale(a, sa, b, sb).min(scale as i32);
    let ten = |k: i32| {
        i256::from_i128(10)
            .checked_pow(k as u32)
            .ok_or_else(overflow)
    };
    // a / b * 10^places = (A * 10^(places + sb - sa)) / B.
    let k = places + sb as i32 - sa as i32;
    let (mut n, mut d) = (i256::from_i128(a), i256::from_i128(b));
    if k >= 0 {
        n = n.checked_mul(ten(k)?).ok_or_else(overflow)?;
    } else {
        d = d.checked_mul(ten(-k)?).ok_or_else(overflow)?;
    }
    rounded(n, d)
        .checked_mul(ten(scale as i32 - places)?)
        .ok_or_else(overflow)
}

/// The precision of an exact quotient (`quipu_numeric_div(a, b, true)`).
const EXACT: u8 = 76;
/// The scale of an exact quotient.
const EXACT_SCALE: i8 = 38;

/// `a / b` exactly at PostgreSQL's places, unscaled at [`EXACT_SCALE`],
/// or refused by name where those places are more.
fn exact_quotient(a: i128, sa: i8, b: i128, sb: i8) -> Result<i256> {
    let places = div_scale(a, sa, b, sb);
    if b != 0 && places > EXACT_SCALE as i32 {
        return Err(DataException::error(
            "0A000",
            &format!(
                "a quotient of {places} places: Quipu's numeric holds {EXACT_SCALE} \
                 (divide a numeric of fewer places, or doubles)"
            ),
        ));
    }
    let q = wide_quotient(a, sa, b, sb, EXACT_SCALE)?;
    let limit = i256::from_i128(10).wrapping_pow(EXACT as u32);
    match q.wrapping_abs() < limit {
        true => Ok(q),
        false => Err(overflow()),
    }
}

/// `n / d` rounded half away from zero (`d` is not zero).
pub(super) fn rounded(n: i256, d: i256) -> i256 {
    let (q, r) = (n.wrapping_div(d), n.wrapping_rem(d));
    let twice = r.wrapping_abs().wrapping_mul(i256::from_i128(2));
    if twice < d.wrapping_abs() {
        q
    } else if (n < i256::ZERO) == (d < i256::ZERO) {
        q.wrapping_add(i256::ONE)
    } else {
        q.wrapping_add(i256::MINUS_ONE)
    }
}

/// `q` as a value of a decimal of 38 digits, or the overflow error.
pub(super) fn fits(q: i256) -> Result<i128> {
    match q.to_i128() {
        Some(q) if q.unsigned_abs() < 10u128.pow(38) => Ok(q),
        _ => Err(overflow()),
    }
}

/// `f` of each pair of values of two decimal arrays (NULL where either
/// is), at `scale`.
pub(super) fn decimal_pairs(
    a: &ArrayRef,
    b: &ArrayRef,
    scale: i8,
    f: impl Fn(i128, i128) -> Result<i128>,
) -> Result<Decimal128Array> {
    let (x, y) = (
        a.as_primitive::<Decimal128Type>(),
        b.as_primitive::<Decimal128Type>(),
    );
    Ok(x.iter()
        .zip(y.iter())
        .map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => f(x, y).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<Decimal128Array>>()?
        .with_precision_and_scale(38, scale)?)
}

/// The scalar function `a / b` of numerics is planned as.
pub fn numeric_div() -> ScalarUDF {
    ScalarUDF::new_from_impl(NumericDiv {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericDiv {
    signature: Signature,
}

impl ScalarUDFImpl for NumericDiv {
    fn name(&self) -> &str {
        DIV
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let (operands, flag) = args.split_at(args.len().min(2));
        let coerced: Option<Vec<DataType>> = operands
            .iter()
            .map(|t| match t {
                DataType::Null => Some(DataType::Decimal128(1, 0)),
                t => decimal_shape(t).map(|(p, s)| DataType::Decimal128(p, s)),
            })
            .collect();
        match (coerced, flag) {
            (Some(c), []) if c.len() == 2 => Ok(c),
            // `quipu_numeric_div(a, b, true)`: the exact quotient, a
            // `decimal256(76,38)` at PostgreSQL's places or refused
            // (a quotient a query shows: `scheduler/src/rounding.rs`).
            (Some(mut c), [DataType::Boolean]) if c.len() == 2 => {
                c.push(DataType::Boolean);
                Ok(c)
            }
            _ => super::pg_functions::no_function("numeric division", args),
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [a, b] => match (decimal_shape(a), decimal_shape(b)) {
                (Some(a), Some(b)) => Ok(div_type(a, b)),
                _ => exec_err!("{DIV} takes two numerics"),
            },
            [_, _, DataType::Boolean] => Ok(DataType::Decimal256(EXACT, EXACT_SCALE)),
            _ => exec_err!("{DIV} takes two numerics"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (a, b) = (&arrays[0], &arrays[1]);
        let (sa, sb) = (scale_of(a), scale_of(b));
        let out: ArrayRef = match *args.return_field.data_type() {
            DataType::Decimal128(_, scale) => Arc::new(decimal_pairs(a, b, scale, |x, y| {
                quotient(x, sa, y, sb, scale)
            })?),
            DataType::Decimal256(..) => {
                let (x, y) = (
                    a.as_primitive::<Decimal128Type>(),
                    b.as_primitive::<Decimal128Type>(),
                );
                Arc::new(
                    x.iter()
                        .zip(y.iter())
                        .map(|(x, y)| match (x, y) {
                            (Some(x), Some(y)) => exact_quotient(x, sa, y, sb).map(Some),
                            _ => Ok(None),
                        })
                        .collect::<Result<Decimal256Array>>()?
                        .with_precision_and_scale(EXACT, EXACT_SCALE)?,
                )
            }
            _ => return exec_err!("{DIV} returns a decimal"),
        };
        super::pg_text::shaped_like(&args.args[..2], out)
    }
}

/// The scale of a decimal array (0 for any other).
pub(super) fn scale_of(a: &ArrayRef) -> i8 {
    match a.data_type() {
        DataType::Decimal128(_, s) => *s,
        _ => 0,
    }
}

/// The name of [`div_scale_udf`].
pub const DIV_SCALE: &str = "quipu_div_scale";
/// The name of [`text_scale`].
pub const TEXT_SCALE: &str = "quipu_text_scale";
/// The name of [`sqrt_scale_udf`].
pub const SQRT_SCALE: &str = "quipu_sqrt_scale";
/// The name of [`param_scale`].
pub const PARAM_SCALE: &str = "quipu_param_scale";

/// `quipu_sqrt_scale(x, places_x)`: the places PostgreSQL prints
/// `sqrt(x)` with, for the front door.
pub fn sqrt_scale_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Places {
        of: PlacesOf::Root,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// `quipu_div_scale(a, b, places_a, places_b)`: the places PostgreSQL
/// prints `a / b` with, the operands printed with `places_a` and
/// `places_b` (an `integer`; NULL where the quotient is), for the front
/// door (`scheduler/src/scales.rs`).
pub fn div_scale_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Places {
        of: PlacesOf::Quotient,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// `quipu_text_scale(t)`: the places PostgreSQL's `numeric` reads from
/// the text `t` (`'1.50'` 2, `'1.5e-3'` 4, `'42'` 0; NULL for NULL or
/// what is not a number), or gives a double `t`
/// ([`super::float_numeric::places`]), for
/// the front door.
pub fn text_scale() -> ScalarUDF {
    ScalarUDF::new_from_impl(Places {
        of: PlacesOf::Text,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// `quipu_param_scale($n)`: the places of a query parameter cast to
/// `numeric` without a scale. The PostgreSQL front door replaces it, when
/// it binds the parameters, with the places the client sent the value
/// with (`param_places`); where it cannot tell (or anywhere else) it
/// gives the places of the value's type.
pub fn param_scale() -> ScalarUDF {
    ScalarUDF::new_from_impl(Places {
        of: PlacesOf::Parameter,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// The places PostgreSQL's `numeric` keeps of a parameter as the client
/// sent it: its text's, or a binary `numeric`'s display scale (the
/// fourth 16-bit field), or none for a binary integer. `None` where that
/// cannot be told (another binary type): the column's are printed.
pub fn param_places(bytes: &[u8], binary: bool, pg_type_oid: u32) -> Option<i32> {
    const INT2: u32 = 21;
    const INT4: u32 = 23;
    const INT8: u32 = 20;
    const NUMERIC: u32 = 1700;
    match (binary, pg_type_oid) {
        (false, _) => text_places(std::str::from_utf8(bytes).ok()?),
        (true, NUMERIC) => Some(u16::from_be_bytes(bytes.get(6..8)?.try_into().ok()?) as i32),
        (true, INT2 | INT4 | INT8) => Some(0),
        _ => None,
    }
}

/// PostgreSQL's `scale(numeric)`: the places a value keeps. Quipu's
/// decimals keep their column's, so here it is the type's; a
/// PostgreSQL source computes its own (it is pushed down as it is), where
/// a `numeric` without a precision keeps each value's (`1.50` has 2), and
/// the front door prints such a column with them (`scheduler`'s
/// `scales`).
pub fn scale() -> ScalarUDF {
    ScalarUDF::new_from_impl(Places {
        of: PlacesOf::Scale,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// The name of [`numeric_text`].
pub const NUMERIC_TEXT: &str = "quipu_numeric_text";

/// The places a `numeric` without a scale holds here: DataFusion plans it
/// as `decimal(38,10)`.
const UNSCALED_PLACES: i32 = 10;

/// `quipu_numeric_text(t)`: the text `t`, checked on its way to a
/// `numeric` without a scale (`CAST(t AS numeric)`, planned as
/// `decimal(38,10)`): a value with more places than 10 that are not
/// zeros is refused by name, where the cast rounded it silently
/// (`'1.50000000001'::numeric = 1.5` was true). A number written with
/// an exponent is written out, as in [`numeric_plain`].
pub fn numeric_text() -> ScalarUDF {
    ScalarUDF::new_from_impl(NumericText {
        signature: Signature::user_defined(Volatility::Immutable),
        check: true,
    })
}

/// The name of [`numeric_plain`].
pub const NUMERIC_PLAIN: &str = "quipu_numeric_plain";

/// `quipu_numeric_plain(t)`: the text `t` on its way to a `numeric` of a
/// scale, a number written with an exponent written out (`'1.5e3'` as
/// `1500`, `'1E-2'` as `0.01`): Arrow's cast reads no exponent, and
/// `'1e3'::numeric` was "numeric field overflow" where PostgreSQL reads
/// 1000. `NaN` and the infinities are refused by name (both forms).
pub fn numeric_plain() -> ScalarUDF {
    ScalarUDF::new_from_impl(NumericText {
        signature: Signature::user_defined(Volatility::Immutable),
        check: false,
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericText {
    signature: Signature,
    /// Whether the places a `numeric` without a scale holds are checked.
    check: bool,
}

/// The text of a number `t` as Arrow's cast to a decimal reads it: an
/// exponent written out (`' -1.5e3 '` as `-1500`), or None where there is
/// none, or too many digits to write out.
fn without_exponent(t: &str) -> Option<String> {
    let t = t.trim();
    if !t.contains(['e', 'E']) {
        return None;
    }
    let (sign, digits) = match t.strip_prefix(['-', '+']) {
        Some(rest) => (&t[..1], rest),
        None => ("", t),
    };
    let plain = super::syntax::expand_exponent(digits)?;
    let plain = plain.strip_suffix('.').unwrap_or(&plain);
    Some(format!("{}{plain}", if sign == "-" { "-" } else { "" }))
}

/// Whether `t` is a number as PostgreSQL's `numeric_in` reads one:
/// spaces, a sign, digits with a point among or before them, an exponent
/// of digits, spaces. (`'  e5'` was read as 0, `'1e'` and `'.'` failed
/// in Arrow's words.)
fn numeric_syntax(t: &str) -> bool {
    let t = t.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'));
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(at) => (&t[..at], Some(&t[at + 1..])),
        None => (t, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    !(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction) && exponent_ok
}

/// The places of a numeric's text that are not trailing zeros.
fn significant_places(t: &str) -> Option<i32> {
    let t = t.trim();
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(at) => (&t[..at], &t[at..]),
        None => (t, ""),
    };
    let mantissa = match mantissa.contains('.') {
        true => mantissa.trim_end_matches('0'),
        false => mantissa,
    };
    text_places(&format!("{mantissa}{exponent}"))
}

impl ScalarUDFImpl for NumericText {
    fn name(&self) -> &str {
        match self.check {
            true => NUMERIC_TEXT,
            false => NUMERIC_PLAIN,
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [t] if t.is_string() || t.is_null() => Ok(vec![DataType::Utf8]),
            _ => super::pg_functions::no_function(self.name(), args),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let t = cast(&arrays[0], &DataType::Utf8)?;
        let texts: &StringArray = t.as_string();
        for v in texts.iter().flatten() {
            // Arrow's decimals hold no NaN or infinity, PostgreSQL's
            // `numeric` does: refused by name (it was "numeric field
            // overflow").
            // (A word: `1e400` is a double's infinity too, but a number
            // with too many digits, refused as such by the cast.)
            let word = v.trim().trim_start_matches(['+', '-']);
            if word.chars().all(|c| c.is_ascii_alphabetic())
                && word.parse::<f64>().is_ok_and(|x| !x.is_finite())
            {
                return Err(DataException::error(
                    "0A000",
                    &format!(
                        "a numeric \"{}\" is not supported: Quipu's numeric holds finite values \
                         only (cast to float8 for NaN and infinities)",
                        v.trim()
                    ),
                ));
            }
            if !numeric_syntax(v) {
                return Err(DataException::error(
                    "22P02",
                    &format!("invalid input syntax for type numeric: \"{v}\""),
                ));
            }
            if let Some(places) = significant_places(v)
                && places > UNSCALED_PLACES
                && self.check
            {
                return Err(DataException::error(
                    "0A000",
                    &format!(
                        "numeric without a scale holds {UNSCALED_PLACES} places in Quipu, and \
                         '{}' has {places}: cast it to numeric(38, {places}) to keep them",
                        v.trim()
                    ),
                ));
            }
        }
        let t: ArrayRef = match texts.iter().flatten().any(|v| v.contains(['e', 'E'])) {
            true => Arc::new(
                texts
                    .iter()
                    .map(|v| v.map(|v| without_exponent(v).unwrap_or_else(|| v.to_string())))
                    .collect::<StringArray>(),
            ),
            false => t,
        };
        super::pg_text::shaped_like(&args.args, t)
    }
}

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum PlacesOf {
    Quotient,
    Text,
    Root,
    Parameter,
    Scale,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Places {
    of: PlacesOf,
    signature: Signature,
}

impl ScalarUDFImpl for Places {
    fn name(&self) -> &str {
        match self.of {
            PlacesOf::Quotient => DIV_SCALE,
            PlacesOf::Text => TEXT_SCALE,
            PlacesOf::Root => SQRT_SCALE,
            PlacesOf::Parameter => PARAM_SCALE,
            PlacesOf::Scale => "scale",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let decimal = |t: &DataType| match t {
            DataType::Null => Some(DataType::Decimal128(1, 0)),
            t => decimal_shape(t).map(|(p, s)| DataType::Decimal128(p, s)),
        };
        let coerced = match (self.of, args) {
            (PlacesOf::Quotient, [a, b, _, _]) => decimal(a)
                .zip(decimal(b))
                .map(|(a, b)| vec![a, b, DataType::Int32, DataType::Int32]),
            // A `real` keeps its type: it has 6 significant digits.
            (PlacesOf::Text, [t @ DataType::Float32]) => Some(vec![t.clone()]),
            (PlacesOf::Text, [t]) if t.is_floating() => Some(vec![DataType::Float64]),
            (PlacesOf::Text, [_]) => Some(vec![DataType::Utf8]),
            (PlacesOf::Root, [x, _]) => decimal(x).map(|x| vec![x, DataType::Int32]),
            (PlacesOf::Parameter | PlacesOf::Scale, [x]) => decimal(x).map(|x| vec![x]),
            _ => None,
        };
        match coerced {
            Some(c) => Ok(c),
            None => super::pg_functions::no_function(self.name(), args),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: Int32Array = match self.of {
            PlacesOf::Quotient => {
                let (sa, sb) = (scale_of(&arrays[0]), scale_of(&arrays[1]));
                let a = arrays[0].as_primitive::<Decimal128Type>();
                let b = arrays[1].as_primitive::<Decimal128Type>();
                let pa = arrays[2].as_primitive::<datafusion::arrow::datatypes::Int32Type>();
                let pb = arrays[3].as_primitive::<datafusion::arrow::datatypes::Int32Type>();
                (0..a.len())
                    .map(|r| {
                        (a.is_valid(r) && b.is_valid(r) && b.value(r) != 0).then(|| {
                            // The operands' own places, not their type's: a
                            // numeric without a scale is decimal(38,10)
                            // here, and `i::numeric / 3` has PostgreSQL's
                            // 8 places for 715827666.66666667, not 10.
                            let places = quotient_places(a.value(r), sa, b.value(r), sb);
                            let operand = |p: &datafusion::arrow::array::Int32Array, s: i8| {
                                if p.is_valid(r) { p.value(r) } else { s as i32 }
                            };
                            places
                                .max(operand(pa, sa))
                                .max(operand(pb, sb))
                                .clamp(0, 1000)
                        })
                    })
                    .collect()
            }
            PlacesOf::Root => {
                let sx = scale_of(&arrays[0]);
                let x = arrays[0].as_primitive::<Decimal128Type>();
                let px = arrays[1].as_primitive::<datafusion::arrow::datatypes::Int32Type>();
                (0..x.len())
                    .map(|r| {
                        x.is_valid(r).then(|| {
                            let own = if px.is_valid(r) {
                                px.value(r)
                            } else {
                                sx as i32
                            };
                            sqrt_scale(x.value(r), sx).max(own)
                        })
                    })
                    .collect()
            }
            PlacesOf::Parameter | PlacesOf::Scale => {
                let s = scale_of(&arrays[0]) as i32;
                (0..arrays[0].len())
                    .map(|r| arrays[0].is_valid(r).then_some(s))
                    .collect()
            }
            PlacesOf::Text if arrays[0].data_type().is_floating() => {
                let digits = super::float_numeric::digits_of(arrays[0].data_type());
                cast(&arrays[0], &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|f| f.map(|f| super::float_numeric::places(f, digits)))
                    .collect()
            }
            PlacesOf::Text => {
                let t = cast(&arrays[0], &DataType::Utf8)?;
                let t: &StringArray = t.as_string();
                t.iter().map(|t| t.and_then(text_places)).collect()
            }
        };
        super::pg_text::shaped_like(&args.args, Arc::new(out))
    }
}

/// The display scale PostgreSQL's `numeric_in` gives a text.
fn text_places(t: &str) -> Option<i32> {
    let t = t.trim();
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    if t.eq_ignore_ascii_case("nan") {
        return Some(0);
    }
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(at) => (&t[..at], t[at + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = int.bytes().chain(frac.bytes());
    if int.len() + frac.len() == 0 || !digits.clone().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((frac.len() as i32 - exponent).max(0))
}

/// PostgreSQL's places for `sqrt` of a value (`numeric_sqrt`): 16
/// significant digits from the weight of its first base-10000 digit, at
/// least the argument's places.
pub fn sqrt_scale(x: i128, scale: i8) -> i32 {
    let (weight, _) = first_digit(x, scale);
    let sweight = (weight + 1) * 4 / 2 - 1;
    (MIN_SIG_DIGITS - sweight).max(scale as i32).clamp(0, 1000)
}

/// `sqrt(x)` (unscaled at `sx`) at `scale` places: rounded half away from
/// zero at PostgreSQL's places, or at `scale` when that is fewer.
pub(super) fn numeric_sqrt(x: i128, sx: i8, scale: i8) -> Result<i128> {
    if x < 0 {
        return Err(DataException::error(
            "2201F",
            "cannot take square root of a negative number",
        ));
    }
    let places = sqrt_scale(x, sx).min(scale as i32);
    // The root's floor at `wide` places, enough for every digit of `x`
    // (fewer cut `x` before its root: `sqrt(0.99999999)` at 0 places was
    // 0), then rounded at `places`.
    let wide = places.max((sx as i32 + 1) / 2);
    // sqrt(x / 10^sx) * 10^wide = sqrt(x * 10^(2 wide - sx)).
    let k = 2 * wide - sx as i32;
    let ten = |k: i32| {
        i256::from_i128(10)
            .checked_pow(k as u32)
            .ok_or_else(overflow)
    };
    let n = if k >= 0 {
        i256::from_i128(x)
            .checked_mul(ten(k)?)
            .ok_or_else(overflow)?
    } else {
        i256::from_i128(x).wrapping_div(ten(-k)?)
    };
    let mut root = isqrt(n);
    if wide > places {
        // The floor's cut digits decide as the exact root's would.
        root = rounded(root, ten(wide - places)?);
    } else if n.wrapping_sub(root.wrapping_mul(root)) > root {
        // Half away from zero: up when n > root^2 + root (n is an integer).
        root = root.wrapping_add(i256::ONE);
    }
    let root = root
        .checked_mul(ten(scale as i32 - places)?)
        .ok_or_else(overflow)?;
    fits(root)
}

/// The integer square root (floor) of `n` >= 0, by Newton's method from
/// above.
pub(super) fn isqrt(n: i256) -> i256 {
    if n < i256::from_i128(2) {
        return n;
    }
    // 2^ceil(bits / 2) is at least the root.
    let bits = 256 - n.leading_zeros();
    let mut x = i256::ONE << (bits.div_ceil(2) as u8);
    loop {
        let y = x.wrapping_add(n.wrapping_div(x)) >> 1u8;
        if y >= x {
            return x;
        }
        x = y;
    }
}

/// `sqrt`, replacing DataFusion's in the session.
pub fn sqrt() -> ScalarUDF {
    ScalarUDF::new_from_impl(Sqrt {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Sqrt {
    signature: Signature,
}

impl ScalarUDFImpl for Sqrt {
    fn name(&self) -> &str {
        "sqrt"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [t @ DataType::Decimal128(..)] => Ok(vec![t.clone()]),
            [t] if t.is_numeric() || *t == DataType::Null => Ok(vec![DataType::Float64]),
            _ => super::pg_functions::no_function("sqrt", args),
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match args {
            [DataType::Decimal128(p, s)] => {
                let int_digits = (*p as i16 - *s as i16 + 1) / 2;
                DataType::Decimal128(38, quotient_scale(int_digits, *s as i16))
            }
            _ => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = match args.return_field.data_type() {
            DataType::Decimal128(_, scale) => {
                let sx = scale_of(&arrays[0]);
                let out = arrays[0]
                    .as_primitive::<Decimal128Type>()
                    .iter()
                    .map(|x| x.map(|x| numeric_sqrt(x, sx, *scale)).transpose())
                    .collect::<Result<Decimal128Array>>()?
                    .with_precision_and_scale(38, *scale)?;
                Arc::new(out)
            }
            _ => {
                let x = cast(&arrays[0], &DataType::Float64)?;
                let out = x
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|x| match x {
                        Some(x) if x < 0.0 => Err(DataException::error(
                            "2201F",
                            "cannot take square root of a negative number",
                        )),
                        x => Ok(x.map(f64::sqrt)),
                    })
                    .collect::<Result<Float64Array>>()?;
                Arc::new(out)
            }
        };
        super::pg_text::shaped_like(&args.args, out)
    }
}

/// `power`, replacing DataFusion's in the session.
pub fn power() -> ScalarUDF {
    ScalarUDF::new_from_impl(Power {
        signature: Signature::user_defined(Volatility::Immutable),
        aliases: vec!["pow".into()],
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Power {
    signature: Signature,
    aliases: Vec<String>,
}

/// The column's places of `power(numeric, numeric)`: for an integer
/// exponent (of no places) PostgreSQL's `rscale`, 16 or the base's if
/// more; for one that may not be an integer, 20 or the base's if more, as
/// a quotient's (PostgreSQL gives a power below 0.1 more than 16 places,
/// and `x ^ (1 / 3.0)` the exponent's 20). The front door prints each
/// value with its own (`pg_numeric_log::power_scale`).
fn power_scale(base_scale: i8, exponent_scale: i8) -> i8 {
    match exponent_scale {
        0 => (MIN_SIG_DIGITS as i8).max(base_scale),
        _ => 20.max(base_scale),
    }
}

impl ScalarUDFImpl for Power {
    fn name(&self) -> &str {
        "power"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let numeric = |t: &DataType| matches!(t, DataType::Decimal128(..));
        match args {
            [a, b]
                if (numeric(a) || numeric(b))
                    && decimal_shape(a).is_some()
                    && decimal_shape(b).is_some() =>
            {
                args.iter()
                    .map(|t| {
                        let (p, s) = decimal_shape(t).expect("checked");
                        Ok(DataType::Decimal128(p, s))
                    })
                    .collect()
            }
            [a, b]
                if [a, b]
                    .iter()
                    .all(|t| t.is_numeric() || **t == DataType::Null) =>
            {
                Ok(vec![DataType::Float64, DataType::Float64])
            }
            _ => super::pg_functions::no_function("power", args),
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match args {
            [DataType::Decimal128(_, s), DataType::Decimal128(_, t)] => {
                DataType::Decimal128(38, power_scale(*s, *t))
            }
            _ => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = match args.return_field.data_type() {
            DataType::Decimal128(_, scale) => {
                let (sa, sb) = (scale_of(&arrays[0]), scale_of(&arrays[1]));
                Arc::new(decimal_pairs(&arrays[0], &arrays[1], *scale, |x, y| {
                    numeric_power(x, sa, y, sb, *scale)
                })?)
            }
            _ => {
                let (x, y) = (
                    cast(&arrays[0], &DataType::Float64)?,
                    cast(&arrays[1], &DataType::Float64)?,
                );
                let out = x
                    .as_primitive::<Float64Type>()
                    .iter()
                    .zip(y.as_primitive::<Float64Type>().iter())
                    .map(|(x, y)| match (x, y) {
                        (Some(x), Some(y)) => float_power(x, y).map(Some),
                        _ => Ok(None),
                    })
                    .collect::<Result<Float64Array>>()?;
                Arc::new(out)
            }
        };
        super::pg_text::shaped_like(&args.args, out)
    }
}

/// PostgreSQL's `dpow`: C's `pow`, with its errors for a zero to a
/// negative power and a negative number to a fractional one.
fn float_power(x: f64, y: f64) -> Result<f64> {
    if x == 0.0 && y < 0.0 {
        return Err(DataException::error(
            "2201F",
            "zero raised to a negative power is undefined",
        ));
    }
    if x < 0.0 && y.is_finite() && y.floor() != y {
        return Err(DataException::error(
            "2201F",
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    Ok(x.powf(y))
}

/// `x ^ y` of numerics (unscaled at `sx`, `sy`) at `scale` places.
pub(super) fn numeric_power(x: i128, sx: i8, y: i128, sy: i8, scale: i8) -> Result<i128> {
    let unit = 10i128.pow(sy as u32);
    let integer = y % unit == 0;
    if x == 0 && y < 0 {
        return Err(DataException::error(
            "2201F",
            "zero raised to a negative power is undefined",
        ));
    }
    if x < 0 && !integer {
        return Err(DataException::error(
            "2201F",
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    match integer {
        // `exp(y ln x)` as PostgreSQL's `power_var` computes it.
        false => super::pg_numeric_log::fractional_power(x, sx, y, sy, scale),
        true => super::pg_numeric_log::integer_power(x, sx, y / unit, scale),
    }
}

/// `avg`, replacing DataFusion's in the session (same name, so the
/// pushdown, the cache's rollups and the cluster codecs know it).
pub fn avg() -> AggregateUDF {
    AggregateUDF::new_from_impl(PgAvg {
        signature: Signature::user_defined(Volatility::Immutable),
        inner: Avg::new(),
        aliases: vec!["mean".into()],
        gives: Gives::Average,
    })
}

/// The name of [`avg_scale`].
pub const AVG_SCALE: &str = "quipu_avg_scale";

/// `quipu_avg_scale(x)`: the places PostgreSQL prints `avg(x)` with (an
/// `integer`; NULL where the average is), for the front door
/// (`scheduler/src/scales.rs`). Of integers and decimals only.
pub fn avg_scale() -> AggregateUDF {
    AggregateUDF::new_from_impl(PgAvg {
        signature: Signature::user_defined(Volatility::Immutable),
        inner: Avg::new(),
        aliases: vec![],
        gives: Gives::Places,
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgAvg {
    signature: Signature,
    /// DataFusion's, for doubles and durations.
    inner: Avg,
    aliases: Vec<String>,
    gives: Gives,
}

/// The input's scale and the result's, when `avg` of `input` is ours.
fn ours(input: &DataType) -> Option<(i8, i8)> {
    let shape = decimal_shape(input)?;
    match avg_type(shape, !matches!(input, DataType::Decimal128(..))) {
        DataType::Decimal128(_, s) => Some((shape.1, s)),
        _ => None,
    }
}

impl AggregateUDFImpl for PgAvg {
    fn name(&self) -> &str {
        match self.gives {
            Gives::Average => "avg",
            Gives::Places => AVG_SCALE,
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [DataType::Duration(_)] => Ok(args.to_vec()),
            [DataType::Interval(_)] if self.gives == Gives::Average => {
                Ok(vec![DataType::Interval(IntervalUnit::MonthDayNano)])
            }
            _ => one_number("avg", args),
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            _ if self.gives == Gives::Places => Ok(DataType::Int32),
            [DataType::Interval(_)] => Ok(DataType::Interval(IntervalUnit::MonthDayNano)),
            [t] if ours(t).is_some() => Ok(avg_type(
                decimal_shape(t).expect("ours"),
                !matches!(t, DataType::Decimal128(..)),
            )),
            _ => self.inner.return_type(args),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if matches!(args.expr_fields[0].data_type(), DataType::Interval(_)) {
            if args.is_distinct {
                return Err(DataException::error(
                    "0A000",
                    "avg(DISTINCT interval) is not supported",
                ));
            }
            return Ok(Box::new(super::interval_scaling::IntervalAvg::default()));
        }
        let Some((input, output)) = ours(args.expr_fields[0].data_type()) else {
            if self.gives == Gives::Places {
                return exec_err!("{AVG_SCALE} takes an integer or a numeric");
            }
            return self.inner.accumulator(args);
        };
        Ok(if args.is_distinct {
            Box::new(DistinctAvg {
                values: HashSet::new(),
                input,
                output,
                gives: self.gives,
            })
        } else {
            Box::new(PgAvgAccumulator {
                sum: 0,
                count: 0,
                input,
                output,
                gives: self.gives,
            })
        })
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        if matches!(args.input_fields[0].data_type(), DataType::Interval(_)) {
            return Ok(super::interval_scaling::IntervalAvg::state_fields(
                args.name,
            ));
        }
        let Some((input, _)) = ours(args.input_fields[0].data_type()) else {
            return self.inner.state_fields(args);
        };
        let sum = DataType::Decimal128(38, input);
        Ok(if args.is_distinct {
            vec![Arc::new(Field::new_list(
                format_state_name(args.name, "avg distinct"),
                Field::new_list_field(sum, true),
                false,
            ))]
        } else {
            vec![
                Arc::new(Field::new(
                    format_state_name(args.name, "count"),
                    DataType::Int64,
                    true,
                )),
                Arc::new(Field::new(format_state_name(args.name, "sum"), sum, true)),
            ]
        })
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        if matches!(args.expr_fields[0].data_type(), DataType::Interval(_)) {
            return false;
        }
        match ours(args.expr_fields[0].data_type()) {
            Some(_) => !args.is_distinct,
            None => self.inner.groups_accumulator_supported(args),
        }
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let Some((input, output)) = ours(args.expr_fields[0].data_type()) else {
            return self.inner.create_groups_accumulator(args);
        };
        Ok(Box::new(PgAvgGroups {
            sums: vec![],
            counts: vec![],
            input,
            output,
            gives: self.gives,
        }))
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
}

/// The argument of an aggregate of one number (`avg`, `variance`):
/// integers and decimals as they are (a narrower decimal as a
/// `Decimal128`), floats as doubles.
pub(super) fn one_number(name: &str, args: &[DataType]) -> Result<Vec<DataType>> {
    match args {
        [t] if decimal_shape(t).is_some() => Ok(args.to_vec()),
        [DataType::Decimal32(p, s) | DataType::Decimal64(p, s)] => {
            Ok(vec![DataType::Decimal128(*p, *s)])
        }
        [t] if t.is_floating() || *t == DataType::Null => Ok(vec![DataType::Float64]),
        _ => super::pg_functions::no_function(name, args),
    }
}

/// The values of an input batch as unscaled decimals at scale `scale`.
pub(super) fn unscaled(values: &ArrayRef, scale: i8) -> Result<Decimal128Array> {
    Ok(cast(values, &DataType::Decimal128(38, scale))?
        .as_primitive::<Decimal128Type>()
        .clone())
}

/// The places PostgreSQL prints an average with (`None` for no values).
fn places(sum: i128, count: i64, input: i8) -> Option<i32> {
    (count > 0).then(|| div_scale(sum, input, count as i128, 0))
}

/// PostgreSQL's average of `count` values summing to `sum`.
fn average(sum: i128, count: i64, input: i8, output: i8) -> Result<ScalarValue> {
    let value = match count {
        0 => None,
        n => Some(quotient(sum, input, n as i128, 0, output)?),
    };
    Ok(ScalarValue::Decimal128(value, 38, output))
}

fn add(a: i128, b: i128) -> Result<i128> {
    a.checked_add(b).ok_or_else(overflow)
}

/// What an average accumulator gives: the average, or the places
/// PostgreSQL prints it with ([`avg_scale`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Gives {
    Average,
    Places,
}

#[derive(Debug)]
struct PgAvgAccumulator {
    sum: i128,
    count: i64,
    input: i8,
    output: i8,
    gives: Gives,
}

impl Accumulator for PgAvgAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in unscaled(&values[0], self.input)?.iter().flatten() {
            self.sum = add(self.sum, v)?;
            self.count += 1;
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in unscaled(&values[0], self.input)?.iter().flatten() {
            self.sum = self.sum.checked_sub(v).ok_or_else(overflow)?;
            self.count -= 1;
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        match self.gives {
            Gives::Average => average(self.sum, self.count, self.input, self.output),
            Gives::Places => Ok(ScalarValue::Int32(places(self.sum, self.count, self.input))),
        }
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Int64(Some(self.count)),
            ScalarValue::Decimal128(Some(self.sum), 38, self.input),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let counts = states[0].as_primitive::<Int64Type>();
        let sums = states[1].as_primitive::<Decimal128Type>();
        for (c, s) in counts.iter().zip(sums.iter()) {
            self.count += c.unwrap_or(0);
            self.sum = add(self.sum, s.unwrap_or(0))?;
        }
        Ok(())
    }
}

/// `avg(DISTINCT x)`: the distinct values, averaged at the end.
#[derive(Debug)]
struct DistinctAvg {
    values: HashSet<i128>,
    input: i8,
    output: i8,
    gives: Gives,
}

impl Accumulator for DistinctAvg {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.values
            .extend(unscaled(&values[0], self.input)?.iter().flatten());
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let sum = self.values.iter().try_fold(0i128, |s, v| add(s, *v))?;
        let count = self.values.len() as i64;
        match self.gives {
            Gives::Average => average(sum, count, self.input, self.output),
            Gives::Places => Ok(ScalarValue::Int32(places(sum, count, self.input))),
        }
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.values.capacity() * size_of::<i128>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Decimal128Array = self.values.iter().map(|v| Some(*v)).collect();
        let values = values.with_precision_and_scale(38, self.input)?;
        let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
        let list = ListArray::new(
            field,
            OffsetBuffer::from_lengths([values.len()]),
            Arc::new(values),
            None,
        );
        Ok(vec![ScalarValue::List(Arc::new(list))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for list in states[0].as_list::<i32>().iter().flatten() {
            self.values
                .extend(list.as_primitive::<Decimal128Type>().iter().flatten());
        }
        Ok(())
    }
}

/// `avg` per group (`GROUP BY`): a sum and a count per group.
#[derive(Debug)]
struct PgAvgGroups {
    sums: Vec<i128>,
    counts: Vec<i64>,
    input: i8,
    output: i8,
    gives: Gives,
}

impl PgAvgGroups {
    fn grow(&mut self, groups: usize) {
        self.sums.resize(groups, 0);
        self.counts.resize(groups, 0);
    }
}

impl GroupsAccumulator for PgAvgGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.grow(total_num_groups);
        let values = unscaled(&values[0], self.input)?;
        for (row, &g) in group_indices.iter().enumerate() {
            if opt_filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) || values.is_null(row)
            {
                continue;
            }
            self.sums[g] = add(self.sums[g], values.value(row))?;
            self.counts[g] += 1;
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let sums = emit_to.take_needed(&mut self.sums);
        let counts = emit_to.take_needed(&mut self.counts);
        if self.gives == Gives::Places {
            let out: Int32Array = sums
                .into_iter()
                .zip(counts)
                .map(|(s, n)| places(s, n, self.input))
                .collect();
            return Ok(Arc::new(out));
        }
        let out = sums
            .into_iter()
            .zip(counts)
            .map(|(s, n)| match n {
                0 => Ok(None),
                n => quotient(s, self.input, n as i128, 0, self.output).map(Some),
            })
            .collect::<Result<Decimal128Array>>()?
            .with_precision_and_scale(38, self.output)?;
        Ok(Arc::new(out))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let sums = emit_to.take_needed(&mut self.sums);
        let counts = emit_to.take_needed(&mut self.counts);
        let sums = Decimal128Array::from(sums).with_precision_and_scale(38, self.input)?;
        Ok(vec![Arc::new(Int64Array::from(counts)), Arc::new(sums)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.grow(total_num_groups);
        let counts = values[0].as_primitive::<Int64Type>();
        let sums = values[1].as_primitive::<Decimal128Type>();
        for (row, &g) in group_indices.iter().enumerate() {
            if counts.is_valid(row) {
                self.counts[g] += counts.value(row);
            }
            if sums.is_valid(row) {
                self.sums[g] = add(self.sums[g], sums.value(row))?;
            }
        }
        Ok(())
    }

    /// Each row as a group of its own (a partial aggregation that skips
    /// grouping): a count of 1 and its value, or 0 and 0.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let values = unscaled(&values[0], self.input)?;
        let kept = |row: usize| {
            values.is_valid(row) && opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row))
        };
        let counts: Int64Array = (0..values.len()).map(|r| Some(kept(r) as i64)).collect();
        let sums: Decimal128Array = (0..values.len())
            .map(|r| Some(if kept(r) { values.value(r) } else { 0 }))
            .collect();
        let sums = sums.with_precision_and_scale(38, self.input)?;
        Ok(vec![Arc::new(counts), Arc::new(sums)])
    }

    fn size(&self) -> usize {
        self.sums.capacity() * size_of::<i128>() + self.counts.capacity() * size_of::<i64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a / b` of decimal texts at the column scale `scale`, as text.
    fn div(a: &str, b: &str, scale: i8) -> String {
        let parse = |t: &str| -> (i128, i8) {
            let s = t.split_once('.').map_or(0, |(_, f)| f.len()) as i8;
            (t.replace('.', "").parse().unwrap(), s)
        };
        let ((x, sx), (y, sy)) = (parse(a), parse(b));
        let q = quotient(x, sx, y, sy, scale).unwrap();
        ScalarValue::Decimal128(Some(q), 38, scale).to_string()
    }

    #[test]
    fn numeric_text_is_read_as_numeric_in_reads_it() {
        for ok in [
            "1",
            " -1.5 ",
            "+.5",
            "5.",
            "1e3",
            "1.5E-3",
            "\t7\n",
            "00012e+141",
        ] {
            assert!(numeric_syntax(ok), "{ok}");
        }
        for bad in [
            "", " ", "e5", "  e5", "1e", ".", "-", "1.5.2", "1,5", "1_000", "- 1", "++1", "0x1F",
        ] {
            assert!(!numeric_syntax(bad), "{bad}");
        }
    }

    /// PostgreSQL 15's answers (psql), at PostgreSQL's own places.
    #[test]
    fn quotients_are_postgresqls() {
        for (a, b, places, pg) in [
            ("15", "11", 16, "1.3636363636363636"),
            ("0.500000", "3", 20, "0.16666666666666666667"),
            ("100.000000", "4", 16, "25.0000000000000000"),
            ("123456789.123456", "4", 12, "30864197.280864000000"),
            ("0", "3.0", 20, "0.00000000000000000000"),
            ("2147483000", "3.0", 8, "715827666.66666667"),
            ("-2147483000", "3.0", 8, "-715827666.66666667"),
            ("-2", "3.0", 20, "-0.66666666666666666667"),
            ("1", "1", 20, "1.00000000000000000000"),
            ("3", "2", 16, "1.5000000000000000"),
            ("15000", "10000", 20, "1.50000000000000000000"),
            ("1", "-8", 20, "-0.12500000000000000000"),
        ] {
            assert_eq!(div(a, b, places), pg, "{a} / {b}");
        }
    }

    /// `sqrt` of decimal texts at PostgreSQL's places (psql).
    #[test]
    fn roots_are_postgresqls() {
        for (x, pg) in [
            ("2.0", "1.414213562373095"),
            ("0.000001", "0.0010000000000000000"),
            ("0.000000", "0.000000000000000"),
            ("123456789.123456", "11111.11106611108"),
            ("100", "10.000000000000000"),
            ("0.5", "0.70710678118654752"),
        ] {
            let s = x.split_once('.').map_or(0, |(_, f)| f.len()) as i8;
            let v: i128 = x.replace('.', "").parse().unwrap();
            let places = sqrt_scale(v, s) as i8;
            let got = numeric_sqrt(v, s, places).unwrap();
            assert_eq!(
                ScalarValue::Decimal128(Some(got), 38, places).to_string(),
                pg,
                "sqrt({x})"
            );
        }
        assert!(numeric_sqrt(-1, 0, 16).is_err());
    }

    /// `power(x, y)` of decimal texts, as text (PostgreSQL 15's answers).
    #[test]
    fn powers_are_postgresqls() {
        let parse = |t: &str| -> (i128, i8) {
            let s = t.split_once('.').map_or(0, |(_, f)| f.len()) as i8;
            (t.replace('.', "").parse().unwrap(), s)
        };
        for (x, y, pg) in [
            ("1.5", "3", "3.3750000000000000"),
            ("2.0", "-3", "0.1250000000000000"),
            ("1.5", "2.0", "2.25000000000000000000"),
            ("0.000001", "3", "0.0000000000000000"),
            ("10.0", "20", "100000000000000000000.0000000000000000"),
            ("0.500000", "2", "0.2500000000000000"),
            ("-3.0", "3", "-27.0000000000000000"),
            ("3.0", "-2", "0.1111111111111111"),
            ("2.0", "0", "1.0000000000000000"),
            // Exponents that are not integers (PostgreSQL 15's values, at
            // the column's places where it prints fewer or more).
            ("2.0", "0.5", "1.41421356237309500000"),
            ("10.0", "1.5", "31.62277660168379300000"),
            ("0.5", "0.5", "0.70710678118654750000"),
            ("100", "2.5", "100000.00000000000000000000"),
            ("1.5", "0.00001", "1.00000405465930120000"),
            ("0.01", "3.5", "0.00000010000000000000"),
            ("2.5", "-3.5", "0.04047715405015526000"),
            ("123456.789", "1.5", "43378293.78605335200000000000"),
            ("7", "0.25000", "1.62657656169778570000"),
            (
                "1.2100000000000000",
                "0.33333333333333333333",
                "1.06560223676661071240",
            ),
            ("8", "0.33333333333333333333", "1.99999999999999999999"),
            ("0", "0.5", "0.00000000000000000000"),
            ("0.9", "1000.5", "0.00000000000000000000"),
        ] {
            let ((a, sa), (b, sb)) = (parse(x), parse(y));
            let scale = power_scale(sa, sb);
            let got = numeric_power(a, sa, b, sb, scale).unwrap();
            assert_eq!(
                ScalarValue::Decimal128(Some(got), 38, scale).to_string(),
                pg,
                "{x} ^ {y}"
            );
        }
        assert!(numeric_power(-8, 0, 5, 1, 16).is_err(), "a complex result");
        assert!(numeric_power(0, 0, -1, 0, 16).is_err());
        // The places PostgreSQL prints them with.
        for (x, y, places) in [
            ("10.0", "1.5", 15),
            ("100", "2.5", 11),
            ("0.01", "3.5", 23),
            ("1.5", "100.5", 1),
            ("2.0", "2.000000000000000000000", 16),
            ("0", "0.5", 16),
        ] {
            let ((a, sa), (b, sb)) = (parse(x), parse(y));
            assert_eq!(
                super::super::pg_numeric_log::power_scale((a, sa, sa as i32), (b, sb, sb as i32)),
                places,
                "{x} ^ {y}"
            );
        }
    }

    /// `avg` in a session: PostgreSQL's values (psql), at the column's
    /// places; per group, of sums, distinct, and as a window.
    #[tokio::test]
    async fn averages_are_postgresqls() {
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_udaf(avg());
        let text_of = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
                let b = datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches)
                    .unwrap();
                (0..b.num_rows())
                    .map(|r| {
                        datafusion::arrow::util::display::array_value_to_string(b.column(0), r)
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        for (sql, want) in [
            // 1.6666666666666667 in PostgreSQL; a bigint column (the
            // literals make it one) has 19 places.
            (
                "SELECT avg(x) FROM (VALUES (CAST(1 AS INT)), (2), (2)) AS v(x)",
                "1.6666666666666667000",
            ),
            (
                "SELECT avg(x) FROM (VALUES (CAST(1 AS INT)), (NULL), (2)) AS v(x)",
                "1.5000000000000000000",
            ),
            (
                "SELECT avg(x) FROM (VALUES (CAST(NULL AS INT))) AS v(x)",
                "",
            ),
            // 59.3333333333333333 and 0.5000000000000000 per group.
            (
                "SELECT avg(x) FROM (VALUES (1, CAST(59 AS DECIMAL(29,0))), (1, 59), (1, 60), \
                 (2, 0.5)) AS v(g, x) GROUP BY g ORDER BY g",
                "59.33333333333333330000 0.50000000000000000000",
            ),
            // 1.5000000000000000.
            (
                "SELECT avg(DISTINCT x) FROM (VALUES (CAST(1 AS INT)), (2), (2)) AS v(x)",
                "1.5000000000000000000",
            ),
            // 1.00000000000000000000, 1.5000000000000000, 2.0000000000000000.
            (
                "SELECT avg(x) OVER (ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) \
                 FROM (VALUES (CAST(1 AS INT)), (2), (2)) AS v(x)",
                "1.0000000000000000000 1.5000000000000000000 2.0000000000000000000",
            ),
            // Doubles stay DataFusion's.
            (
                "SELECT avg(x) FROM (VALUES (CAST(1.5 AS DOUBLE)), (2)) AS v(x)",
                "1.75",
            ),
        ] {
            assert_eq!(text_of(sql).await, want, "{sql}");
        }
    }

    /// The places PostgreSQL reads from a text (`SELECT '1.5e-3'::numeric`).
    #[test]
    fn text_places_are_numeric_ins() {
        for (t, want) in [
            ("42", Some(0)),
            (" 1.50 ", Some(2)),
            ("-0.000", Some(3)),
            ("1.5e-3", Some(4)),
            ("1.5E3", Some(0)),
            (".5", Some(1)),
            ("NaN", Some(0)),
            ("abc", None),
            ("", None),
        ] {
            assert_eq!(text_places(t), want, "{t:?}");
        }
    }

    /// A column of fewer places rounds there; of more, pads with zeros.
    #[test]
    fn the_column_scale_bounds_the_places() {
        assert_eq!(div("1", "3", 4), "0.3333");
        assert_eq!(div("2", "3", 4), "0.6667");
        assert_eq!(div("100", "4", 20), "25.00000000000000000000");
        assert!(quotient(1, 0, 0, 0, 20).is_err());
    }
}
