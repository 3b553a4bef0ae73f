//! `concat` and `concat_ws` with PostgreSQL's text of each argument
//! (issue 22).
//!
//! PostgreSQL's `concat` and `concat_ws` print each argument with its
//! type's output function: a boolean is `t` / `f` and a float8 is the
//! shortest text that reads back (`1e+15`). DataFusion 55 casts the
//! arguments to text first, which prints `true` and `1000000000000000.0`,
//! so `concat_ws('-', s, i, b)` answered `a-1-true` where PostgreSQL (and a
//! pushed query) answers `a-1-t`. These wrappers keep DataFusion's
//! functions under the same names and turn booleans and doubles into
//! PostgreSQL's text before calling them. Everything else goes through as
//! DataFusion coerces it.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::pg_text::float8_out;

/// `concat` and `concat_ws` printing booleans and doubles as PostgreSQL.
pub fn functions() -> Vec<ScalarUDF> {
    [
        datafusion::functions::string::concat(),
        datafusion::functions::string::concat_ws(),
    ]
    .into_iter()
    .map(|inner| {
        ScalarUDF::new_from_impl(PgTextArgs {
            inner,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    })
    .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTextArgs {
    inner: Arc<ScalarUDF>,
    signature: Signature,
}

/// Whether an argument of this type is printed here rather than cast.
fn printed_here(t: &DataType) -> bool {
    matches!(t, DataType::Boolean | DataType::Float64 | DataType::Float32)
}

/// The types the wrapped function sees: text where this one prints.
fn as_inner(types: &[DataType]) -> Vec<DataType> {
    types
        .iter()
        .map(|t| match printed_here(t) {
            true => DataType::Utf8,
            false => t.clone(),
        })
        .collect()
}

/// PostgreSQL's output text of a boolean or double array.
fn pg_text(a: &ArrayRef) -> Result<ArrayRef> {
    let out: StringArray = match a.data_type() {
        DataType::Boolean => {
            let b = a.as_any().downcast_ref::<BooleanArray>().expect("boolean");
            b.iter()
                .map(|v| v.map(|v| if v { "t" } else { "f" }))
                .collect()
        }
        _ => {
            let f = cast(a, &DataType::Float64)?;
            let f = f.as_any().downcast_ref::<Float64Array>().expect("float64");
            f.iter().map(|v| v.map(float8_out)).collect()
        }
    };
    Ok(Arc::new(out))
}

impl ScalarUDFImpl for PgTextArgs {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let inner = self.inner.coerce_types(&as_inner(arg_types))?;
        Ok(arg_types
            .iter()
            .zip(inner)
            .map(|(t, c)| match printed_here(t) {
                true => t.clone(),
                false => c,
            })
            .collect())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let inner = self.inner.coerce_types(&as_inner(arg_types))?;
        self.inner.return_type(&inner)
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let targets = self.inner.coerce_types(&as_inner(&types))?;
        for (i, target) in targets.iter().enumerate() {
            if !printed_here(&types[i]) {
                continue;
            }
            args.args[i] = match &args.args[i] {
                ColumnarValue::Array(a) => ColumnarValue::Array(cast(&pg_text(a)?, target)?),
                ColumnarValue::Scalar(s) => {
                    let text = pg_text(&s.to_array()?)?;
                    ColumnarValue::Scalar(ScalarValue::try_from_array(&cast(&text, target)?, 0)?)
                }
            };
            let field = args.arg_fields[i]
                .as_ref()
                .clone()
                .with_data_type(target.clone());
            args.arg_fields[i] = Arc::new(field);
        }
        self.inner.invoke_with_args(args)
    }
}
