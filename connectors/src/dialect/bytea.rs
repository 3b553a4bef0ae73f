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
//! - `encode(bytes, format)` and `decode(text, format)` are PostgreSQL's
//!   (`encode.c`), in place of DataFusion's under the same names: `hex`,
//!   `base64` (padded, a line break after every 76 characters, blanks
//!   skipped when decoding) and `escape` (`\ooo` for a zero or high byte,
//!   `\\` for a backslash), the format's name in any case, PostgreSQL's
//!   errors (`22023`). DataFusion's `base64` left out the padding
//!   (`encode('ab', 'base64')` was `YWI` for `YWI=`), did not break lines,
//!   decoded text PostgreSQL refuses as truncated, and had no `escape`.
//!   The text of `encode`'s first argument is read as bytea input, as
//!   PostgreSQL reads a literal there (`encode('\x00ff', 'hex')`).
//! - `quipu_bytea_in(text)`: text cast to `bytea` at run time, read as
//!   PostgreSQL's `byteain` reads it (its cast is the type's input), the
//!   `\x` hex form or the escape form (`CAST(s AS bytea)` of `back\\slash`
//!   is 9 bytes, one backslash; Arrow's cast kept the text's 10 bytes).
//!   `scheduler/src/text_forms.rs` plans such a cast as it.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;

use crate::error::DataException;
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
    let bytes = || Coercion::new_exact(TypeSignatureClass::Binary);
    ScalarUDF::new_from_impl(Bytes {
        name: CONCAT,
        signature: Signature::coercible(vec![bytes(), bytes()], Volatility::Immutable),
    })
}

/// The name of [`bytea_in`].
pub const BYTEA_IN: &str = "quipu_bytea_in";

/// `quipu_bytea_in(text)`: the bytes PostgreSQL's `byteain` reads.
pub fn bytea_in() -> ScalarUDF {
    let text = Coercion::new_exact(TypeSignatureClass::Native(
        datafusion::common::types::logical_string(),
    ));
    ScalarUDF::new_from_impl(Bytes {
        name: BYTEA_IN,
        signature: Signature::coercible(vec![text], Volatility::Immutable),
    })
}

/// [`concat`] or [`bytea_in`], by name.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Bytes {
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for Bytes {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut out = BinaryBuilder::new();
        if self.name == BYTEA_IN {
            let texts = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
            for text in texts.as_string::<i32>() {
                match text {
                    Some(t) => out.append_value(read_bytea(t)?),
                    None => out.append_null(),
                }
            }
        } else {
            let (a, b) = (
                datafusion::arrow::compute::cast(&arrays[0], &DataType::LargeBinary)?,
                datafusion::arrow::compute::cast(&arrays[1], &DataType::LargeBinary)?,
            );
            let (a, b) = (a.as_binary::<i64>(), b.as_binary::<i64>());
            for i in 0..a.len() {
                if a.is_null(i) || b.is_null(i) {
                    out.append_null();
                } else {
                    out.append_value([a.value(i), b.value(i)].concat());
                }
            }
        }
        super::pg_text::shaped_like(&args.args, Arc::new(out.finish()))
    }
}

/// Bytea input text's bytes, or PostgreSQL's error with its SQLSTATE.
fn read_bytea(text: &str) -> Result<Vec<u8>> {
    super::syntax::bytea_input(text).map_err(|m| {
        let code = if m.contains("hexadecimal") {
            "22023"
        } else {
            "22P02"
        };
        DataException::error(code, &m)
    })
}

/// `encode` and `decode`, for the session's registry.
pub fn codings() -> Vec<ScalarUDF> {
    [false, true]
        .into_iter()
        .map(|decode| {
            ScalarUDF::new_from_impl(Coding {
                decode,
                signature: Signature::user_defined(Volatility::Immutable),
            })
        })
        .collect()
}

/// PostgreSQL's three formats.
#[derive(Clone, Copy)]
enum Format {
    Hex,
    Base64,
    Escape,
}

impl Format {
    fn named(name: &str) -> Result<Format> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "hex" => Format::Hex,
            "base64" => Format::Base64,
            "escape" => Format::Escape,
            _ => {
                return Err(DataException::error(
                    "22023",
                    &format!("unrecognized encoding: \"{name}\""),
                ));
            }
        })
    }

    fn encode(self, bytes: &[u8]) -> String {
        match self {
            Format::Hex => bytes.iter().map(|b| format!("{b:02x}")).collect(),
            Format::Base64 => {
                use base64::Engine;
                let flat = base64::engine::general_purpose::STANDARD.encode(bytes);
                // PostgreSQL's `pg_base64_encode` breaks the line once 76
                // characters are out, checked after each byte read: after
                // the last one too when the bytes fill whole lines.
                let mut out = String::with_capacity(flat.len() + flat.len() / 76 + 1);
                for (i, line) in flat.as_bytes().chunks(76).enumerate() {
                    if i > 0 {
                        out.push('\n');
                    }
                    out.push_str(std::str::from_utf8(line).unwrap_or_default());
                }
                if !bytes.is_empty() && bytes.len().is_multiple_of(57) {
                    out.push('\n');
                }
                out
            }
            Format::Escape => {
                let mut out = String::with_capacity(bytes.len());
                for &b in bytes {
                    match b {
                        0 | 0x80.. => out.push_str(&format!("\\{b:03o}")),
                        b'\\' => out.push_str("\\\\"),
                        _ => out.push(b as char),
                    }
                }
                out
            }
        }
    }

    fn decode(self, text: &str) -> Result<Vec<u8>> {
        match self {
            Format::Hex => {
                super::syntax::hex_bytes(text).map_err(|m| DataException::error("22023", &m))
            }
            Format::Base64 => base64_decode(text),
            Format::Escape => {
                super::syntax::escaped_bytes(text).map_err(|m| DataException::error("22P02", &m))
            }
        }
    }
}

/// PostgreSQL's `pg_base64_decode`, quirks and words: blanks anywhere are
/// skipped; `=` may end a group after two or three symbols and stands
/// for zero bits, and once seen every later group gives as many bytes as
/// that first padded one did. Hand-written because the `base64` crate
/// refuses blanks and padding in the middle, and words its errors
/// otherwise.
fn base64_decode(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buf, mut pos, mut end) = (0u32, 0, 0);
    for c in text.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        let bits = match c {
            '=' => {
                if end == 0 {
                    end = match pos {
                        2 => 1,
                        3 => 2,
                        _ => {
                            return Err(DataException::error(
                                "22023",
                                "unexpected \"=\" while decoding base64 sequence",
                            ));
                        }
                    };
                }
                0
            }
            'A'..='Z' => c as u32 - 'A' as u32,
            'a'..='z' => c as u32 - 'a' as u32 + 26,
            '0'..='9' => c as u32 - '0' as u32 + 52,
            '+' => 62,
            '/' => 63,
            _ => {
                return Err(DataException::error(
                    "22023",
                    &format!("invalid symbol \"{c}\" found while decoding base64 sequence"),
                ));
            }
        };
        buf = (buf << 6) | bits;
        pos += 1;
        if pos == 4 {
            out.push((buf >> 16) as u8);
            if end == 0 || end > 1 {
                out.push((buf >> 8) as u8);
            }
            if end == 0 || end > 2 {
                out.push(buf as u8);
            }
            (buf, pos) = (0, 0);
        }
    }
    if pos != 0 {
        return Err(DataException::error("22023", "invalid base64 end sequence"));
    }
    Ok(out)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Coding {
    /// `decode(text, format)`, else `encode(bytes, format)`.
    decode: bool,
    signature: Signature,
}

impl ScalarUDFImpl for Coding {
    fn name(&self) -> &str {
        if self.decode { "decode" } else { "encode" }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        let [value, format] = types else {
            return datafusion::common::plan_err!(
                "function {}() takes 2 arguments, not {}",
                self.name(),
                types.len()
            );
        };
        let text = |t: &DataType| {
            matches!(
                t,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
            )
        };
        let value_ok = text(value) || (!self.decode && is_bytea(value));
        if !value_ok || !text(format) {
            return datafusion::common::plan_err!(
                "function {}({}, {}) does not exist",
                self.name(),
                super::pg_functions::pg_type_name(value),
                super::pg_functions::pg_type_name(format)
            );
        }
        let value = if is_bytea(value) {
            DataType::LargeBinary
        } else {
            DataType::Utf8
        };
        Ok(vec![value, DataType::Utf8])
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(if self.decode {
            DataType::Binary
        } else {
            DataType::Utf8
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let formats = datafusion::arrow::compute::cast(&arrays[1], &DataType::Utf8)?;
        let formats = formats.as_string::<i32>();
        let out: ArrayRef = if self.decode {
            let texts = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
            let texts = texts.as_string::<i32>();
            let mut out = BinaryBuilder::new();
            for (text, format) in texts.iter().zip(formats.iter()) {
                match (text, format) {
                    (Some(t), Some(f)) => out.append_value(Format::named(f)?.decode(t)?),
                    _ => out.append_null(),
                }
            }
            Arc::new(out.finish())
        } else {
            let mut out = StringBuilder::new();
            for i in 0..arrays[0].len() {
                if arrays[0].is_null(i) || formats.is_null(i) {
                    out.append_null();
                    continue;
                }
                let format = Format::named(formats.value(i))?;
                let bytes = match arrays[0].data_type() {
                    DataType::Utf8 => read_bytea(arrays[0].as_string::<i32>().value(i))?,
                    _ => arrays[0].as_binary::<i64>().value(i).to_vec(),
                };
                out.append_value(format.encode(&bytes));
            }
            Arc::new(out.finish())
        };
        super::pg_text::shaped_like(&args.args, out)
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

    /// Each checked against PostgreSQL 15 by psql.
    #[test]
    fn encodings_are_postgresqls() {
        use super::Format;
        let x57 = "x".repeat(57);
        let base64 = Format::named("base64").unwrap();
        assert_eq!(
            base64.encode(x57.as_bytes()),
            format!("{}\n", "eHh4".repeat(19))
        );
        assert_eq!(
            base64.encode(format!("{x57}x").as_bytes()),
            format!("{}\neA==", "eHh4".repeat(19))
        );
        assert_eq!(base64.encode(b"ab"), "YWI=");
        assert_eq!(base64.encode(b""), "");
        assert_eq!(
            Format::named("escape").unwrap().encode(b"\n\0\xff\\\x7f"),
            "\n\\000\\377\\\\\x7f"
        );
        assert_eq!(Format::named("HEX").unwrap().encode(b"ab"), "6162");
        assert_eq!(base64.decode("YQ==YWI=").unwrap(), b"aa");
        assert_eq!(base64.decode(" YW\nJj ZA== ").unwrap(), b"abcd");
        assert_eq!(
            Format::named("hex").unwrap().decode(" 61 62 ").unwrap(),
            b"ab"
        );
        assert_eq!(
            Format::named("escape")
                .unwrap()
                .decode("a\\000\\\\")
                .unwrap(),
            b"a\0\\"
        );
        let err = |r: datafusion::common::Result<Vec<u8>>| r.unwrap_err().to_string();
        for (got, want) in [
            (
                err(Format::named("hex").unwrap().decode("6")),
                "invalid hexadecimal data: odd number of digits",
            ),
            (
                err(Format::named("hex").unwrap().decode("6g")),
                "invalid hexadecimal digit: \"g\"",
            ),
            (
                err(base64.decode("Y*")),
                "invalid symbol \"*\" found while decoding base64 sequence",
            ),
            (
                err(base64.decode("Y=")),
                "unexpected \"=\" while decoding base64 sequence",
            ),
            (err(base64.decode("YWJjZA")), "invalid base64 end sequence"),
            (
                err(Format::named("escape").unwrap().decode("\\x61")),
                "invalid input syntax for type bytea",
            ),
        ] {
            assert!(got.contains(want), "{got}");
        }
        assert!(
            Format::named("foo")
                .is_err_and(|e| e.to_string().contains("unrecognized encoding: \"foo\""))
        );
    }
}
