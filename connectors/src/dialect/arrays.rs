//! `array_remove` as PostgreSQL's (issue 22), in place of DataFusion's
//! under the same name.
//!
//! PostgreSQL removes every element not distinct from the value: all the
//! matches (`array_remove(ARRAY[1, 2, 1], 1)` is `{2}`), and the NULLs
//! when the value is NULL. DataFusion 55's removed the first match only
//! (`{2,1}`), and gave NULL for a NULL value. (`array_replace` is
//! DataFusion's `array_replace_all`: `syntax.rs` renames it.)

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, Scalar};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::kernels::cmp::distinct;
use datafusion::arrow::compute::{concat, filter};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `array_remove`, for the session's registry.
pub fn functions() -> Vec<ScalarUDF> {
    vec![ScalarUDF::new_from_impl(ArrayRemove {
        signature: Signature::user_defined(Volatility::Immutable),
        aliases: vec!["list_remove".into()],
    })]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayRemove {
    signature: Signature,
    aliases: Vec<String>,
}

impl ScalarUDFImpl for ArrayRemove {
    fn name(&self) -> &str {
        "array_remove"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let [list, _] = args else {
            return plan_err!("array_remove takes an array and a value");
        };
        let element = match list {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                f.data_type().clone()
            }
            DataType::Null => DataType::Null,
            other => return plan_err!("array_remove takes an array, not {other}"),
        };
        let list = match list {
            DataType::LargeList(f) | DataType::FixedSizeList(f, _) => DataType::List(f.clone()),
            other => other.clone(),
        };
        Ok(vec![list, element])
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let lists = args.args[0].to_array(rows)?;
        if lists.data_type() == &DataType::Null {
            return Ok(ColumnarValue::Array(lists));
        }
        let values = args.args[1].to_array(rows)?;
        let lists = lists.as_list::<i32>();
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0i32);
        let mut kept: Vec<ArrayRef> = Vec::with_capacity(rows);
        for row in 0..rows {
            let last = *offsets.last().expect("starts with 0");
            if lists.is_null(row) {
                offsets.push(last);
                continue;
            }
            let elements = lists.value(row);
            // PostgreSQL compares with IS DISTINCT FROM: a NULL value
            // removes the NULLs.
            let one = Scalar::new(values.slice(row, 1));
            let keep = distinct(&elements, &one)?;
            let left = filter(&elements, &keep)?;
            offsets.push(last + left.len() as i32);
            kept.push(left);
        }
        let field = match lists.data_type() {
            DataType::List(f) => Arc::clone(f),
            other => return plan_err!("array_remove takes an array, not {other}"),
        };
        let flat = match kept.is_empty() {
            true => lists.values().slice(0, 0),
            false => concat(&kept.iter().map(|a| a.as_ref()).collect::<Vec<_>>())?,
        };
        let out = ListArray::try_new(
            field,
            OffsetBuffer::new(offsets.into()),
            flat,
            lists.nulls().cloned(),
        )?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
