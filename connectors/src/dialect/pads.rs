//! `lpad` and `rpad` as PostgreSQL's (issue 22), in place of DataFusion's
//! under the same names.
//!
//! DataFusion 55's panicked ("capacity overflow") on a negative length
//! over a column with an empty string, which closed the client's
//! connection. PostgreSQL's: a negative length is 0; a string longer than
//! the length is cut to its first `length` characters (for `rpad` too);
//! an empty fill pads nothing; a length whose text could not be held is
//! "requested length too large".

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::DataException;

/// The longest padded text, in characters: four bytes each would be more
/// than an Arrow string column is given room for here (256 MB a value).
const MAX_LENGTH: i64 = (256 << 20) / 4;

/// `lpad` and `rpad`, for the session's registry.
pub fn functions() -> Vec<ScalarUDF> {
    [false, true]
        .into_iter()
        .map(|right| {
            ScalarUDF::new_from_impl(Pad {
                right,
                signature: Signature::user_defined(Volatility::Immutable),
            })
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Pad {
    right: bool,
    signature: Signature,
}

/// `s` padded to `length` characters with `fill`, as PostgreSQL's
/// `lpad` (`right`: `rpad`).
fn pad(s: &str, length: i64, fill: &str, right: bool) -> Result<String> {
    if length > MAX_LENGTH {
        return Err(DataException::error("54000", "requested length too large"));
    }
    let length = length.max(0) as usize;
    let kept: String = s.chars().take(length).collect();
    let missing = match fill.is_empty() {
        true => 0,
        false => length - kept.chars().count(),
    };
    let padding: String = fill.chars().cycle().take(missing).collect();
    Ok(match right {
        true => kept + &padding,
        false => padding + &kept,
    })
}

impl ScalarUDFImpl for Pad {
    fn name(&self) -> &str {
        if self.right { "rpad" } else { "lpad" }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let text = |t: &DataType| t.is_string() || t.is_null();
        let int = |t: &DataType| t.is_integer() || t.is_null();
        match args {
            [s, n] if text(s) && int(n) => Ok(vec![DataType::Utf8, DataType::Int64]),
            [s, n, f] if text(s) && int(n) && text(f) => {
                Ok(vec![DataType::Utf8, DataType::Int64, DataType::Utf8])
            }
            _ => super::pg_functions::no_function(self.name(), args),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let s = cast(&arrays[0], &DataType::Utf8)?;
        let s: &StringArray = s.as_string();
        let n = cast(&arrays[1], &DataType::Int64)?;
        let n = n.as_primitive::<Int64Type>();
        let fill = match arrays.get(2) {
            Some(f) => Some(cast(f, &DataType::Utf8)?),
            None => None,
        };
        let fill: Option<&StringArray> = fill.as_ref().map(|f| f.as_string());
        let out = (0..s.len())
            .map(|r| {
                let f = match fill {
                    Some(f) if f.is_null(r) => return Ok(None),
                    Some(f) => f.value(r),
                    None => " ",
                };
                if s.is_null(r) || n.is_null(r) {
                    return Ok(None);
                }
                pad(s.value(r), n.value(r), f, self.right).map(Some)
            })
            .collect::<Result<StringArray>>()?;
        super::pg_text::shaped_like(&args.args, Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::pad;

    /// Expected values from PostgreSQL 15 (psql).
    #[test]
    fn pads_as_postgresql() {
        for (s, n, f, right, want) in [
            ("hi", 5, " ", false, "   hi"),
            ("hi", 5, "xy", false, "xyxhi"),
            ("hi", 5, "xy", true, "hixyx"),
            ("hello", 2, "x", false, "he"),
            ("hello", 2, "x", true, "he"),
            ("", -1, " ", false, ""),
            ("abc", -3, "", true, ""),
            ("ab", 5, "", false, "ab"),
            ("ñandú", 7, "ß", false, "ßßñandú"),
        ] {
            assert_eq!(pad(s, n, f, right).unwrap(), want, "{s} {n} {f} {right}");
        }
        assert!(pad("a", i64::from(i32::MAX), " ", false).is_err());
    }
}
