//! `bytea`'s lengths and concatenation as PostgreSQL's (issue 22).
//!
//! DataFusion 55 measured a `bytea` as text: `length('ñandú'::bytea)` was
//! 5 (its characters) where PostgreSQL counts 7 bytes, `length` of bytes
//! that are not UTF-8 failed ("Encountered non UTF-8 data"), and
//! `octet_length` and `bit_length` of a `bytea` did not exist. `a || b` of
//! two `bytea`s was the concatenation of their text forms (`\x0102\x03`
//! for PostgreSQL's `\x010203`). Found by probing function by function.
//!
//! - `length`, `octet_length` and `bit_length` wrap DataFusion's under
//!   their names: of a `bytea` its bytes (its bits), an `integer`; of
//!   anything else DataFusion's. (`char_length` and `character_length`,
//!   DataFusion's other names of `length`, take a `bytea` too, where
//!   PostgreSQL has no such function.)
//! - `quipu_bytea_concat(a, b)`: the bytes of `a`, then `b`'s; NULL where
//!   either is. `scheduler/src/text_forms.rs` plans `a || b` of two
//!   `bytea`s as it.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BinaryBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::{
    Coercion, ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TypeSignature, TypeSignatureClass, Volatility,
};

/// Whether `t` is a `bytea`.
pub fn is_bytea(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

/// `length`, `octet_length` and `bit_length`, which count a `bytea`'s
/// bytes (bits).
pub fn functions() -> Vec<ScalarUDF> {
    use datafusion::functions::{string, unicode};
    [
        (unicode::character_length(), 1),
        (string::octet_length(), 1),
        (string::bit_length(), 8),
    ]
    .into_iter()
    .map(|(inner, per_byte)| {
        let bytea = TypeSignature::Coercible(vec![Coercion::new_exact(TypeSignatureClass::Binary)]);
        ScalarUDF::new_from_impl(ByteLength {
            signature: super::pg_functions::signature_with(&inner, [bytea]),
            inner,
            per_byte,
        })
    })
    .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ByteLength {
    inner: Arc<ScalarUDF>,
    signature: Signature,
    /// 1 for bytes, 8 for bits.
    per_byte: i32,
}

impl ScalarUDFImpl for ByteLength {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.first() {
            Some(t) if is_bytea(t) || t.is_null() => Ok(DataType::Int32),
            _ => self.inner.return_type(args),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        match args.arg_fields.first().map(|f| f.data_type()) {
            Some(t) if is_bytea(t) || t.is_null() => {
                Ok(Arc::new(Field::new(self.name(), DataType::Int32, true)))
            }
            _ => self.inner.inner().return_field_from_args(args),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let t = args.args[0].data_type();
        // An untyped NULL (the optimizer evaluates a filter with NULL
        // columns to see whether it rejects them): NULL. DataFusion's
        // own panics on one ("entered unreachable code"), which the
        // `bytea` form of the signature now lets through.
        if t.is_null() {
            return Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::Int32(None),
            ));
        }
        if !is_bytea(&t) {
            return self.inner.invoke_with_args(args);
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let bytes = datafusion::arrow::compute::cast(&arrays[0], &DataType::LargeBinary)?;
        let out: datafusion::arrow::array::Int32Array = bytes
            .as_binary::<i64>()
            .iter()
            .map(|b| {
                b.and_then(|b| i32::try_from(b.len()).ok())
                    .map(|n| n * self.per_byte)
            })
            .collect();
        super::pg_text::shaped_like(&args.args[..1], Arc::new(out))
    }
}

/// The name of [`concat`].
pub const CONCAT: &str = "quipu_bytea_concat";

/// `quipu_bytea_concat(a, b)`: PostgreSQL's `bytea || bytea`.
pub fn concat() -> ScalarUDF {
    ScalarUDF::new_from_impl(Concat {
        signature: Signature::coercible(
            vec![
                Coercion::new_exact(TypeSignatureClass::Binary),
                Coercion::new_exact(TypeSignatureClass::Binary),
            ],
            Volatility::Immutable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Concat {
    signature: Signature,
}

impl ScalarUDFImpl for Concat {
    fn name(&self) -> &str {
        CONCAT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (a, b) = (
            datafusion::arrow::compute::cast(&arrays[0], &DataType::LargeBinary)?,
            datafusion::arrow::compute::cast(&arrays[1], &DataType::LargeBinary)?,
        );
        let (a, b) = (a.as_binary::<i64>(), b.as_binary::<i64>());
        let mut out = BinaryBuilder::new();
        for i in 0..a.len() {
            if a.is_null(i) || b.is_null(i) {
                out.append_null();
            } else {
                out.append_value([a.value(i), b.value(i)].concat());
            }
        }
        super::pg_text::shaped_like(&args.args, Arc::new(out.finish()))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, BinaryArray, Int32Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::common::ScalarValue;
    use datafusion::config::ConfigOptions;
    use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};
    use std::sync::Arc;

    fn call(f: &datafusion::logical_expr::ScalarUDF, arg: ColumnarValue) -> ColumnarValue {
        let t = arg.data_type();
        f.invoke_with_args(ScalarFunctionArgs {
            args: vec![arg],
            arg_fields: vec![Arc::new(Field::new("x", t.clone(), true))],
            number_rows: 2,
            return_field: Arc::new(Field::new("f", DataType::Int32, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
        .unwrap()
    }

    /// Bytes, not characters; text as DataFusion's; an untyped NULL (the
    /// optimizer's probe of a join filter) NULL, where DataFusion's
    /// `length` panicked once the signature let it through.
    #[test]
    fn lengths_count_bytes() {
        let [length, octets, bits] = <[_; 3]>::try_from(super::functions()).unwrap();
        let bytes = ColumnarValue::Array(Arc::new(BinaryArray::from(vec![
            Some("ñandú".as_bytes()),
            None,
        ])));
        let want = |v: Vec<Option<i32>>| Arc::new(Int32Array::from(v)) as Arc<dyn Array>;
        for (f, per) in [(&length, 1), (&octets, 1), (&bits, 8)] {
            let ColumnarValue::Array(got) = call(f, bytes.clone()) else {
                panic!("{}: not an array", f.name())
            };
            assert_eq!(&got, &want(vec![Some(7 * per), None]), "{}", f.name());
        }
        let text = ColumnarValue::Array(Arc::new(StringArray::from(vec![Some("ñandú"), None])));
        let ColumnarValue::Array(got) = call(&length, text) else {
            panic!("not an array")
        };
        assert_eq!(got.len(), 2);
        assert_eq!(
            got.as_any()
                .downcast_ref::<Int32Array>()
                .map(|a| a.value(0)),
            Some(5)
        );
        assert!(matches!(
            call(&length, ColumnarValue::Scalar(ScalarValue::Null)),
            ColumnarValue::Scalar(ScalarValue::Int32(None))
        ));
    }
}
