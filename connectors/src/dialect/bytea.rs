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
        let mut forms = match &inner.signature().type_signature {
            TypeSignature::OneOf(forms) => forms.clone(),
            other => vec![other.clone()],
        };
        forms.push(TypeSignature::Coercible(vec![Coercion::new_exact(
            TypeSignatureClass::Binary,
        )]));
        ScalarUDF::new_from_impl(ByteLength {
            signature: Signature::one_of(forms, Volatility::Immutable),
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
            Some(t) if is_bytea(t) => Ok(DataType::Int32),
            _ => self.inner.return_type(args),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        match args.arg_fields.first().map(|f| f.data_type()) {
            Some(t) if is_bytea(t) => Ok(Arc::new(Field::new(self.name(), DataType::Int32, true))),
            _ => self.inner.inner().return_field_from_args(args),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !is_bytea(&args.args[0].data_type()) {
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
