//! A `double precision` or `real` cast to `numeric` as PostgreSQL casts
//! it (issue 22).
//!
//! PostgreSQL's `float8_numeric` prints the double with 15 significant
//! digits (`%.15g`; a `real` with 6, `float4_numeric`) and reads that text
//! as a numeric, which a typmod then rounds half away from zero:
//! `1e15::float8::numeric` is 1000000000000000, `3.3333333333333335` is
//! 3.33333333333333, `123456789012345678::float8` is 123456789012346000.
//! Arrow's cast multiplies the double by a power of ten in floating point
//! and rounds that: 1e15 became 1000000000000000.0905969664 at the ten
//! places of a bare `numeric`, `(f * 1.1)::numeric(20,4)` ended in .2048,
//! and a `real` kept its binary noise (`1.1::real` was 1.1000000238).
//!
//! `quipu_float_numeric(x, scale)` gives the value at `scale` places
//! (a constant), a `decimal(38, scale)`; the cast to the typmod's
//! precision around it checks the integer digits. NaN and infinities have
//! no numeric here (PostgreSQL's `numeric` holds them): they are refused
//! by name. `scheduler/src/rounding.rs` plans the casts this way.
//!
//! `quipu_float_numeric(x, scale, true)` is a `decimal256(76, scale)`
//! that holds each value exactly or refuses it (by name, never rounded):
//! a bare `numeric`, whose places are the value's own in PostgreSQL,
//! shown as a query's column (`(1 / 3.0::float8)::numeric` is
//! 0.333333333333333, 15 places, more than the 10 of the `decimal(38,10)`
//! a bare `numeric` is planned as elsewhere).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Decimal256Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, i256};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::error::DataException;

/// The name of [`float_numeric`].
pub const FLOAT_NUMERIC: &str = "quipu_float_numeric";

/// `quipu_float_numeric(x, scale[, exact])`: see the module's comment.
pub fn float_numeric() -> ScalarUDF {
    ScalarUDF::new_from_impl(FloatNumeric {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FloatNumeric {
    signature: Signature,
}

/// The scale argument, a constant integer.
fn scale_argument(v: Option<&ScalarValue>) -> Result<i8> {
    match v.and_then(|v| v.cast_to(&DataType::Int64).ok()) {
        Some(ScalarValue::Int64(Some(s))) if (-38..=38).contains(&s) => Ok(s as i8),
        _ => plan_err!("{FLOAT_NUMERIC} takes a constant scale from -38 to 38"),
    }
}

impl ScalarUDFImpl for FloatNumeric {
    fn name(&self) -> &str {
        FLOAT_NUMERIC
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            // The scale keeps its type: a cast around it would hide the
            // constant from `return_field_from_args`.
            [x, s] if (x.is_floating() || *x == DataType::Null) && s.is_integer() => {
                Ok(vec![x.clone(), s.clone()])
            }
            [x, s, DataType::Boolean]
                if (x.is_floating() || *x == DataType::Null) && s.is_integer() =>
            {
                Ok(vec![x.clone(), s.clone(), DataType::Boolean])
            }
            _ => plan_err!("{FLOAT_NUMERIC} takes a float and a scale, not {args:?}"),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        plan_err!("{FLOAT_NUMERIC}: the return type is read from its arguments")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let scale = scale_argument(args.scalar_arguments.get(1).copied().flatten())?;
        let exact = matches!(
            args.scalar_arguments.get(2).copied().flatten(),
            Some(ScalarValue::Boolean(Some(true)))
        );
        let t = match exact {
            true => DataType::Decimal256(WIDE, scale),
            false => DataType::Decimal128(38, scale),
        };
        Ok(Arc::new(Field::new(self.name(), t, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let x = args.args[0].to_array(args.number_rows)?;
        let digits = digits_of(x.data_type());
        let x = cast(&x, &DataType::Float64)?;
        let x = x.as_primitive::<Float64Type>();
        let out: ArrayRef = match args.return_field.data_type() {
            DataType::Decimal128(_, scale) => Arc::new(
                x.iter()
                    .map(|v| v.map(|v| numeric_of(v, digits, *scale)).transpose())
                    .collect::<Result<Decimal128Array>>()?
                    .with_precision_and_scale(38, *scale)?,
            ),
            DataType::Decimal256(_, scale) => Arc::new(
                x.iter()
                    .map(|v| v.map(|v| exact_numeric_of(v, digits, *scale)).transpose())
                    .collect::<Result<Decimal256Array>>()?
                    .with_precision_and_scale(WIDE, *scale)?,
            ),
            other => return plan_err!("{FLOAT_NUMERIC} returns a decimal, not {other}"),
        };
        super::pg_text::shaped_like(&args.args[..1], out)
    }
}

/// The significant digits PostgreSQL keeps of a float of type `t` cast to
/// `numeric`: `FLT_DIG` of a `real`, `DBL_DIG` of a double.
pub fn digits_of(t: &DataType) -> usize {
    match t {
        DataType::Float16 | DataType::Float32 => 6,
        _ => 15,
    }
}

/// `v` (finite) with `digits` significant digits: the digits as an
/// integer (`digits` of them, the first not zero unless `v` is) and the
/// power of ten of the first. Rust rounds the exact binary value to the
/// nearest, ties to even, as glibc's printf does.
fn significant(v: f64, digits: usize) -> (i128, i32) {
    let text = format!("{:.*e}", digits - 1, v.abs());
    let (mantissa, exponent) = text.split_once('e').expect("exponent form");
    let mantissa = mantissa.replace('.', "").parse().expect("digits");
    (mantissa, exponent.parse().expect("an exponent"))
}

/// The places PostgreSQL prints `v::numeric` with (`v` of a type of
/// `digits` significant digits): 0.30000000000000004 has 1.
pub fn places(v: f64, digits: usize) -> i32 {
    if !v.is_finite() || v == 0.0 {
        return 0;
    }
    let (mut mantissa, exponent) = significant(v, digits);
    let mut frac = digits as i32 - 1;
    while frac > 0 && mantissa % 10 == 0 {
        mantissa /= 10;
        frac -= 1;
    }
    (frac - exponent).max(0)
}

/// The precision of the exact numeric ([`float_numeric`]'s third
/// argument).
const WIDE: u8 = 76;

/// NaN and the infinities, which Quipu's numeric does not hold.
fn finite(v: f64) -> Result<()> {
    if v.is_finite() {
        return Ok(());
    }
    let what = if v.is_nan() { "NaN" } else { "infinity" };
    Err(DataException::error(
        "0A000",
        &format!("cannot cast {what} to numeric: Quipu's numeric holds no {what}"),
    ))
}

/// `v` with `digits` significant digits (as C's `%.{digits}g`), unscaled
/// at `scale` places: exactly, or refused where it has more places or
/// more than `WIDE - scale` integer digits.
fn exact_numeric_of(v: f64, digits: usize, scale: i8) -> Result<i256> {
    finite(v)?;
    let needed = places(v, digits);
    if needed > scale as i32 {
        return Err(DataException::error(
            "0A000",
            &format!(
                "{v:e} as numeric has {needed} places, and Quipu's numeric holds {scale}: \
                 keep it a double precision, or give the numeric fewer places (numeric(38, s))"
            ),
        ));
    }
    let (mut mantissa, exponent) = significant(v, digits);
    let mut shift = exponent - (digits as i32 - 1) + scale as i32;
    // The digits dropped here are zeros (the places were checked).
    while shift < 0 {
        mantissa /= 10;
        shift += 1;
    }
    let limit = i256::from_i128(10).wrapping_pow(WIDE as u32);
    let unscaled = i256::from_i128(10)
        .checked_pow(shift as u32)
        .and_then(|p| i256::from_i128(mantissa).checked_mul(p))
        .filter(|u| *u < limit)
        .ok_or_else(|| DataException::error("22003", "numeric field overflow"))?;
    Ok(if v < 0.0 {
        unscaled.wrapping_neg()
    } else {
        unscaled
    })
}

/// `v` with `digits` significant digits (as C's `%.{digits}g`), unscaled
/// at `scale` places, rounded half away from zero.
fn numeric_of(v: f64, digits: usize, scale: i8) -> Result<i128> {
    finite(v)?;
    let (mantissa, exponent) = significant(v, digits);
    // v = mantissa * 10^(exponent - digits + 1); at `scale` places:
    let shift = exponent - (digits as i32 - 1) + scale as i32;
    let overflow = || DataException::error("22003", "numeric field overflow");
    let unscaled = if shift >= 0 {
        10i128
            .checked_pow(shift as u32)
            .and_then(|p| mantissa.checked_mul(p))
            .filter(|u| *u < 10i128.pow(38))
            .ok_or_else(overflow)?
    } else if -shift > 38 {
        0
    } else {
        let p = 10i128.pow(-shift as u32);
        let (q, r) = (mantissa / p, mantissa % p);
        if 2 * r >= p { q + 1 } else { q }
    };
    Ok(if v < 0.0 { -unscaled } else { unscaled })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: f64, digits: usize, scale: i8) -> String {
        let u = numeric_of(v, digits, scale).unwrap();
        let d = ScalarValue::Decimal128(Some(u), 38, scale);
        d.to_string()
    }

    #[test]
    fn doubles_keep_fifteen_significant_digits() {
        assert_eq!(text(1e15, 15, 10), "1000000000000000.0000000000");
        assert_eq!(text(3.3333333333333335, 15, 10), "3.3333333333");
        assert_eq!(text(3.3333333333333335, 15, 14), "3.33333333333333");
        assert_eq!(text(123456789012345678.0, 15, 0), "123456789012346000");
        assert_eq!(text(0.1 + 0.2, 15, 20), "0.30000000000000000000");
        assert_eq!(text(1.1e15 * 1.1, 15, 4), "1210000000000000.0000");
        assert_eq!(text(-2.5, 15, 0), "-3");
        assert_eq!(text(0.125, 15, 2), "0.13");
        assert_eq!(text(1e-12, 15, 10), "0.0000000000");
        assert_eq!(text(-0.0, 15, 2), "0.00");
        // A real: 6 digits.
        assert_eq!(text(1.1f32 as f64, 6, 10), "1.1000000000");
        assert_eq!(text(16777216.0, 6, 0), "16777200");
    }

    /// The places of `f::numeric` in PostgreSQL 15 (`%.15g`, `%.6g`).
    #[test]
    fn places_are_those_of_the_significant_digits() {
        for (f, want) in [
            (0.5, 1),
            (0.1 + 0.2, 1),
            (3.3333333333333335, 14),
            (123456789.123456, 6),
            (1e-10, 10),
            (1e20, 0),
            (-2.5, 1),
            (-0.0, 0),
            (f64::INFINITY, 0),
        ] {
            assert_eq!(places(f, 15), want, "{f}");
        }
        assert_eq!(places(1.1f32 as f64, 6), 1);
        assert_eq!(places(0.1234567f32 as f64, 6), 6);
    }

    #[test]
    fn the_exact_numeric_keeps_every_place_or_refuses() {
        let text = |v: f64| {
            let u = exact_numeric_of(v, 15, 38).unwrap();
            ScalarValue::Decimal256(Some(u), WIDE, 38).to_string()
        };
        assert!(text(1.0 / 3.0).starts_with("0.333333333333333000"));
        assert!(text(-2.5e37).starts_with("-25000000000000000000000000000000000000.0"));
        assert!(text(1e-23).starts_with("0.00000000000000000000001000"));
        assert_eq!(exact_numeric_of(0.5, 15, 1).unwrap(), i256::from_i128(5));
        let e = exact_numeric_of(1.0 / 3.0 * 1e-30, 15, 38)
            .unwrap_err()
            .to_string();
        assert!(e.contains("has 45 places"), "{e}");
        let e = exact_numeric_of(1e38, 15, 38).unwrap_err().to_string();
        assert!(e.contains("numeric field overflow"), "{e}");
        assert!(exact_numeric_of(f64::NAN, 15, 38).is_err());
    }

    #[test]
    fn what_numeric_cannot_hold_is_refused() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = numeric_of(v, 15, 10).unwrap_err().to_string();
            assert!(e.contains("cannot cast"), "{e}");
        }
        let e = numeric_of(1e300, 15, 10).unwrap_err().to_string();
        assert!(e.contains("numeric field overflow"), "{e}");
    }
}
