//! `trunc(x)` of a float keeps the sign of zero, as PostgreSQL's does
//! (issue 22): `trunc(-0.0)` and `trunc(-0.4)` are `-0`. DataFusion 55's
//! `trunc` keeps it for a constant but maps `-0.0` to `0.0` over a column
//! (its array path), so the same value printed `-0` in a literal and `0`
//! read from a table. This wrapper keeps DataFusion's function under its
//! name and computes the one-argument float form itself; with a precision,
//! or of a decimal, DataFusion's.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// `trunc` with PostgreSQL's sign of zero.
pub fn trunc() -> ScalarUDF {
    ScalarUDF::new_from_impl(PgTrunc {
        inner: datafusion::functions::math::trunc(),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTrunc {
    inner: Arc<ScalarUDF>,
}

impl ScalarUDFImpl for PgTrunc {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [ColumnarValue::Array(a)] = args.args.as_slice() {
            match a.data_type() {
                DataType::Float64 => {
                    let out = a
                        .as_primitive::<Float64Type>()
                        .unary::<_, Float64Type>(f64::trunc);
                    return Ok(ColumnarValue::Array(Arc::new(out) as Arc<dyn Array>));
                }
                DataType::Float32 => {
                    let out = a
                        .as_primitive::<Float32Type>()
                        .unary::<_, Float32Type>(f32::trunc);
                    return Ok(ColumnarValue::Array(Arc::new(out) as Arc<dyn Array>));
                }
                _ => {}
            }
        }
        self.inner.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Float64Array;
    use datafusion::arrow::datatypes::Field;
    use datafusion::config::ConfigOptions;

    #[test]
    fn a_column_keeps_the_sign_of_zero() {
        let column = Arc::new(Float64Array::from(vec![
            Some(-0.0),
            Some(-0.4),
            Some(2.7),
            None,
        ]));
        let out = trunc()
            .invoke_with_args(ScalarFunctionArgs {
                args: vec![ColumnarValue::Array(column)],
                arg_fields: vec![Arc::new(Field::new("x", DataType::Float64, true))],
                number_rows: 4,
                return_field: Arc::new(Field::new("t", DataType::Float64, true)),
                config_options: Arc::new(ConfigOptions::default()),
            })
            .unwrap()
            .into_array(4)
            .unwrap();
        let out = out.as_primitive::<Float64Type>();
        assert!(out.value(0) == 0.0 && out.value(0).is_sign_negative());
        assert!(out.value(1) == 0.0 && out.value(1).is_sign_negative());
        assert_eq!(out.value(2), 2.0);
        assert!(out.is_null(3));
    }
}
