//! A `numeric` turned into text with PostgreSQL's places (issue 22).
//!
//! An Arrow decimal has one scale per column; a PostgreSQL numeric its own
//! per value (`scheduler/src/scales.rs` computes them). The front door
//! prints result columns with [`places_text`]; `quipu_numeric_places_text(x,
//! places)` is the same for a numeric turned into text inside a statement
//! (`(i / 3.0)::text`, `'avg ' || n / 2`), which printed the column's
//! places (`100::numeric::text` was `100.0000000000`, PostgreSQL's `100`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::arrow::error::ArrowError;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Decimals as text with each value's places: the column's, less the
/// trailing zeros beyond `places` (never a digit that is not a zero).
pub fn places_text(
    column: &ArrayRef,
    places: &ArrayRef,
    scale: i8,
) -> Result<ArrayRef, ArrowError> {
    let text = cast(column, &DataType::Utf8)?;
    let places = cast(places, &DataType::Int32)?;
    let places = places.as_primitive::<Int32Type>();
    let out: StringArray = text
        .as_string::<i32>()
        .iter()
        .enumerate()
        .map(|(r, t)| {
            let t = t?;
            if places.is_null(r) || scale <= 0 {
                return Some(t.to_string());
            }
            let keep = places.value(r).max(0) as usize;
            let mut t = t.as_bytes();
            let mut frac = scale as usize;
            while frac > keep && t.last() == Some(&b'0') {
                t = &t[..t.len() - 1];
                frac -= 1;
            }
            if frac == 0 && t.last() == Some(&b'.') {
                t = &t[..t.len() - 1];
            }
            Some(String::from_utf8_lossy(t).into_owned())
        })
        .collect();
    Ok(Arc::new(out))
}

/// The name of [`numeric_places_text`].
pub const NUMERIC_PLACES_TEXT: &str = "quipu_numeric_places_text";

/// `quipu_numeric_places_text(x, places)`: the numeric `x` as text with
/// `places` places (per value; NULL: the column's).
pub fn numeric_places_text() -> ScalarUDF {
    ScalarUDF::new_from_impl(NumericPlacesText {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericPlacesText {
    signature: Signature,
}

impl ScalarUDFImpl for NumericPlacesText {
    fn name(&self) -> &str {
        NUMERIC_PLACES_TEXT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [x @ DataType::Decimal128(..), p] if p.is_integer() || *p == DataType::Null => {
                Ok(vec![x.clone(), DataType::Int32])
            }
            _ => plan_err!("{NUMERIC_PLACES_TEXT} takes a numeric and its places, not {args:?}"),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let x = args.args[0].to_array(n)?;
        let places = args.args[1].to_array(n)?;
        let DataType::Decimal128(_, scale) = x.data_type() else {
            return plan_err!("{NUMERIC_PLACES_TEXT} takes a numeric");
        };
        let out = places_text(&x, &places, *scale)?;
        super::pg_text::shaped_like(&args.args, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Decimal128Array, Int32Array};

    #[test]
    fn trailing_zeros_go_down_to_the_places() {
        let x: ArrayRef = Arc::new(
            Decimal128Array::from(vec![
                Some(1_000_000),
                Some(1_500_000),
                Some(1_234_567),
                None,
            ])
            .with_precision_and_scale(38, 6)
            .unwrap(),
        );
        let places: ArrayRef = Arc::new(Int32Array::from(vec![Some(0), Some(2), Some(0), Some(1)]));
        let out = places_text(&x, &places, 6).unwrap();
        let out: Vec<_> = out.as_string::<i32>().iter().collect();
        assert_eq!(out, [Some("1"), Some("1.50"), Some("1.234567"), None]);
    }
}
