//! A float8 as PostgreSQL prints it (issue 22), for `CAST(x AS text)`.
//!
//! PostgreSQL prints the shortest text that reads back as the same double,
//! in exponent form when the decimal exponent is below -4 or at least 15
//! (`1e+15`, `1e-10`, with a sign and at least two digits), and `-0`,
//! `NaN`, `Infinity`. DataFusion 55's cast prints `1000000000000000.0`
//! and `-0.0`. `scheduler/src/text_forms.rs` plans such casts as this
//! function, which is registered in every session (so executors know it).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The function's name in plans.
pub const FLOAT8_TEXT: &str = "quipu_float8_text";

#[derive(Debug, PartialEq, Eq, Hash)]
struct Float8Text {
    signature: Signature,
}

/// `quipu_float8_text(x)`: a float8's PostgreSQL text.
pub fn float8_text() -> ScalarUDF {
    ScalarUDF::new_from_impl(Float8Text {
        signature: Signature::exact(vec![DataType::Float64], Volatility::Immutable),
    })
}

/// `x` as PostgreSQL's `float8out` prints it.
pub fn float8_out(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` is the shortest round-trip mantissa and its exponent.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    if !(-4..15).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        // Shortest round-trip digits, without an exponent.
        format!("{x}")
    }
}

impl ScalarUDFImpl for Float8Text {
    fn name(&self) -> &str {
        FLOAT8_TEXT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let one = |a: &ArrayRef| -> Result<ArrayRef> {
            let a = cast(a, &DataType::Float64)?;
            let f = a
                .as_any()
                .downcast_ref::<Float64Array>()
                .expect("cast to Float64 gives a Float64Array");
            let out: StringArray = f.iter().map(|v| v.map(float8_out)).collect();
            Ok(Arc::new(out))
        };
        match &args.args[0] {
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(one(a)?)),
            ColumnarValue::Scalar(s) => {
                let out = one(&s.to_array()?)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::float8_out;

    #[test]
    fn as_postgresql_prints() {
        for (x, pg) in [
            (1e15, "1e+15"),
            (123456789012345.0, "123456789012345"),
            (1e-10, "1e-10"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (-0.0, "-0"),
            (3.3333333333333335, "3.3333333333333335"),
            (1.5e300, "1.5e+300"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(float8_out(x), pg, "{x}");
        }
    }
}
