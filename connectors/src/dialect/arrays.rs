//! `array_remove` as PostgreSQL's (issue 22), in place of DataFusion's
//! under the same name; and `quipu_quantified`, PostgreSQL's `x op ANY
//! (array)` and `x op ALL (array)`.
//!
//! PostgreSQL removes every element not distinct from the value: all the
//! matches (`array_remove(ARRAY[1, 2, 1], 1)` is `{2}`), and the NULLs
//! when the value is NULL. DataFusion 55's removed the first match only
//! (`{2,1}`), and gave NULL for a NULL value. (`array_replace` is
//! DataFusion's `array_replace_all`: `syntax.rs` renames it.)

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Datum, ListArray, Scalar,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::kernels::cmp::{self, distinct};
use datafusion::arrow::compute::{concat, filter};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `array_remove` and `quipu_quantified`, for the session's registry.
pub fn functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(ArrayRemove {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: vec!["list_remove".into()],
        }),
        ScalarUDF::new_from_impl(Quantified {
            signature: Signature::user_defined(Volatility::Immutable),
        }),
    ]
}

/// The name `syntax.rs` writes `x op ANY (array)` as:
/// `quipu_quantified(x, array, 'op', all)`.
pub const QUANTIFIED: &str = "quipu_quantified";

/// `x op ANY (array)` (`all` false) and `x op ALL (array)` (`all` true)
/// for an array that is not written out in the query (a column, a
/// function's result, a parameter), with PostgreSQL's three-valued
/// answer: `ANY` is TRUE when some element's comparison is, else NULL
/// when one is NULL (a NULL `x` or a NULL element), else FALSE; `ALL` is
/// FALSE when some comparison is, else NULL when one is NULL, else TRUE.
/// An empty array is FALSE for `ANY` and TRUE for `ALL` whatever `x` is;
/// a NULL array is NULL. DataFusion's `array_has` and `array_max` tests
/// skipped NULL elements: `0 < ANY (ARRAY[0, NULL])` read from a column
/// was FALSE where PostgreSQL says NULL, and `<> ANY`, `= ALL` were
/// refused.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Quantified {
    signature: Signature,
}

impl Quantified {
    /// `x op element` over one row's elements.
    fn compare(op: &str, x: &dyn Datum, elements: &dyn Datum) -> Result<BooleanArray> {
        Ok(match op {
            "=" => cmp::eq(x, elements)?,
            "<>" | "!=" => cmp::neq(x, elements)?,
            "<" => cmp::lt(x, elements)?,
            "<=" => cmp::lt_eq(x, elements)?,
            ">" => cmp::gt(x, elements)?,
            ">=" => cmp::gt_eq(x, elements)?,
            other => return plan_err!("operator {other} is not supported with ANY or ALL"),
        })
    }
}

impl ScalarUDFImpl for Quantified {
    fn name(&self) -> &str {
        QUANTIFIED
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let [x, list, _, _] = args else {
            return plan_err!("{QUANTIFIED} takes a value, an array, an operator and a flag");
        };
        let element = match list {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                f.data_type().clone()
            }
            DataType::Null => x.clone(),
            // Refused by `return_type`, whose error reaches the user
            // (DataFusion replaces this one's with "no form of it").
            other => {
                return Ok(vec![
                    x.clone(),
                    other.clone(),
                    DataType::Utf8,
                    DataType::Boolean,
                ]);
            }
        };
        let Some(common) = comparison_coercion(x, &element) else {
            return plan_err!("op ANY/ALL (array) cannot compare {x} with elements of {element}");
        };
        let list = match list {
            DataType::Null => DataType::Null,
            _ => DataType::List(Arc::new(Field::new_list_field(common.clone(), true))),
        };
        Ok(vec![common, list, DataType::Utf8, DataType::Boolean])
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match &args[1] {
            DataType::List(_) | DataType::Null => Ok(DataType::Boolean),
            other => plan_err!(
                "op ANY/ALL (array) takes an array on its right, not {other} (a PostgreSQL \
                 source's `char(n)[]`, `uuid[]`, `jsonb[]` or enum array column is read as its \
                 text: cast it, x = ANY (c::text[]))"
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let (
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(op))),
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(all))),
        ) = (&args.args[2], &args.args[3])
        else {
            return plan_err!("{QUANTIFIED} takes a literal operator and flag");
        };
        let xs = args.args[0].to_array(rows)?;
        let lists = args.args[1].to_array(rows)?;
        if lists.data_type() == &DataType::Null {
            return Ok(ColumnarValue::Array(Arc::new(BooleanArray::new_null(rows))));
        }
        let lists = lists.as_list::<i32>();
        let mut out = BooleanBuilder::with_capacity(rows);
        for row in 0..rows {
            if lists.is_null(row) {
                out.append_null();
                continue;
            }
            let elements = lists.value(row);
            if elements.is_empty() {
                out.append_value(*all);
                continue;
            }
            let x = Scalar::new(xs.slice(row, 1));
            let tests = Self::compare(op, &x, &elements)?;
            // The comparison that decides: FALSE for ALL, TRUE for ANY.
            let decided = tests.iter().any(|t| t == Some(!*all));
            match (decided, tests.null_count() > 0) {
                (true, _) => out.append_value(!*all),
                (false, true) => out.append_null(),
                (false, false) => out.append_value(*all),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
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
