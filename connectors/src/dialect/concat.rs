//! `concat` and `concat_ws` with PostgreSQL's text of each argument
//! (issue 22).
//!
//! PostgreSQL's `concat` and `concat_ws` print each argument with its
//! type's output function: a boolean is `t` / `f`, a float8 the shortest
//! text that reads back (`1e+15`), a timestamp `2024-01-01 10:00:00`.
//! DataFusion 55 casts the arguments to text first, which prints `true`,
//! `1000000000000000.0` and `2024-01-01T10:00:00`, so `concat_ws('-', s,
//! i, b)` answered `a-1-true` where PostgreSQL (and a pushed query)
//! answers `a-1-t`. These wrappers keep DataFusion's functions under the
//! same names and turn every argument Arrow's cast would print otherwise
//! into PostgreSQL's text ([`super::pg_out`]) before calling them. Text,
//! integers and numerics go through as DataFusion coerces them.

use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::pg_out::{cast_prints_as_postgresql, text_of};

/// `concat` and `concat_ws` printing their arguments as PostgreSQL.
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
    !cast_prints_as_postgresql(t)
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
                ColumnarValue::Array(a) => ColumnarValue::Array(cast(&text_of(a)?, target)?),
                ColumnarValue::Scalar(s) => {
                    let text = text_of(&s.to_array()?)?;
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
