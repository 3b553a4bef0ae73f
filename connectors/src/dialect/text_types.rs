//! `uuid`, `json` and `jsonb` as validated text.
//!
//! DataFusion 55 has none of the three ("Unsupported SQL type UUID"), so
//! `WHERE id = '...'::uuid` and `'{"a": 1}'::jsonb` failed to plan, while a
//! PostgreSQL source's `uuid` and `json` columns already reach Quipu as
//! text (docs/sources.md). A cast to one of them is read as PostgreSQL
//! reads its input, giving PostgreSQL's output text, or its error for text
//! that is not one (`22P02`):
//!
//! - `uuid`: 32 hex digits, a hyphen allowed after any group of four,
//!   optionally in braces, any case; printed in lower case as
//!   `8-4-4-4-12`.
//! - `json`: any JSON text, kept as written.
//! - `jsonb`: any JSON text, printed as PostgreSQL prints `jsonb`: one
//!   space after each `:` and `,`, object keys shorter first then in byte
//!   order, the last of repeated keys, numbers as `numeric`s (`1e-10` is
//!   `0.0000000001`, `-0` is `0`, `1.50` stays), strings with only `"`,
//!   `\` and control characters escaped.
//!
//! The values stay `text` for clients (OID 25), not `uuid` or `json`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

use crate::error::DataException;

/// The functions' names in plans, by the type they read.
pub const UUID_FN: &str = "quipu_uuid";
pub const JSON_FN: &str = "quipu_json";
pub const JSONB_FN: &str = "quipu_jsonb";

/// The function a cast to `type_name` (lower case) becomes, if any.
pub fn function_of(type_name: &str) -> Option<&'static str> {
    match type_name {
        "uuid" => Some(UUID_FN),
        "json" => Some(JSON_FN),
        "jsonb" => Some(JSONB_FN),
        _ => None,
    }
}

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        text_function(UUID_FN, "uuid", uuid_out),
        super::pg_text::marked_json(text_function(JSON_FN, "json", |s| {
            json_check(s).map(|_| s.to_string())
        })),
        super::pg_text::marked_json(text_function(JSONB_FN, "json", jsonb_out)),
    ]
}

/// A function of one text argument, `f` per value (NULL stays NULL).
fn text_function(
    name: &'static str,
    type_name: &'static str,
    f: fn(&str) -> Option<String>,
) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let utf8 = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
            let text = utf8
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| DataFusionError::Plan(format!("{name} takes text")))?;
            let mut out = Vec::with_capacity(text.len());
            for i in 0..text.len() {
                if text.is_null(i) {
                    out.push(None);
                    continue;
                }
                let value = text.value(i);
                match f(value) {
                    Some(v) => out.push(Some(v)),
                    None => {
                        return Err(DataException::error(
                            "22P02",
                            &format!("invalid input syntax for type {type_name}: \"{value}\""),
                        ));
                    }
                }
            }
            crate::dialect::pg_text::shaped_like(args, Arc::new(StringArray::from(out)))
        }),
    )
}

/// PostgreSQL's `uuid_in` then `uuid_out`.
fn uuid_out(s: &str) -> Option<String> {
    let inner = match (s.strip_prefix('{'), s.ends_with('}')) {
        (Some(rest), true) => &rest[..rest.len() - 1],
        (None, false) => s,
        _ => return None,
    };
    let mut digits = String::with_capacity(32);
    let mut hyphen_ok = false;
    for c in inner.chars() {
        if c == '-' {
            if !hyphen_ok {
                return None;
            }
            hyphen_ok = false;
        } else if c.is_ascii_hexdigit() {
            digits.push(c.to_ascii_lowercase());
            hyphen_ok = digits.len().is_multiple_of(4) && digits.len() < 32;
        } else {
            return None;
        }
    }
    if digits.len() != 32 || inner.ends_with('-') {
        return None;
    }
    Some(format!(
        "{}-{}-{}-{}-{}",
        &digits[..8],
        &digits[8..12],
        &digits[12..16],
        &digits[16..20],
        &digits[20..]
    ))
}

fn json_check(s: &str) -> Option<()> {
    serde_json::from_str::<serde::de::IgnoredAny>(s)
        .ok()
        .map(|_| ())
}

/// A JSON number as `jsonb` keeps it, a `numeric`: `1e-10` is
/// `0.0000000001`, `1.5e2` is `150`, `-0` is `0`, `1.50` stays `1.50` (the
/// places written less the exponent, none below zero).
fn numeric_text(number: &str) -> String {
    let (negative, unsigned) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => match e.trim_start_matches('+').parse::<i64>() {
            Ok(e) => (m, e),
            Err(_) => return number.to_string(),
        },
        None => (unsigned, 0),
    };
    // PostgreSQL's numeric holds 131072 digits before the point and 16383
    // after; beyond (where it refuses the value) the text is kept as
    // written rather than spelt out in as many zeros.
    if !(-16383..=131072).contains(&exponent) {
        return number.to_string();
    }
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let (whole, fraction) = super::syntax::shift_point(whole, fraction, exponent);
    let zero = whole == "0" && fraction.bytes().all(|b| b == b'0');
    let mut out = String::with_capacity(whole.len() + fraction.len() + 2);
    if negative && !zero {
        out.push('-');
    }
    out.push_str(&whole);
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(&fraction);
    }
    out
}

/// PostgreSQL's `jsonb` text of valid JSON. Written here rather than with
/// `serde_json::Value`, which would print `1.50` as `1.5`: `jsonb` keeps
/// a number as written.
fn jsonb_out(s: &str) -> Option<String> {
    json_check(s)?;
    let mut p = Json {
        s: s.as_bytes(),
        at: 0,
    };
    let v = p.value()?;
    let mut out = String::with_capacity(s.len());
    v.write(&mut out);
    Some(out)
}

enum Value<'a> {
    /// A number, `true`, `false` or `null`, as written.
    Atom(&'a str),
    /// A string, decoded.
    Text(String),
    Array(Vec<Value<'a>>),
    Object(Vec<(String, Value<'a>)>),
}

/// A string as `jsonb` prints it (serde_json escapes what PostgreSQL's
/// `escape_json` escapes).
fn quoted(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

impl Value<'_> {
    fn write(&self, out: &mut String) {
        match self {
            Value::Atom(a)
                if a.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) =>
            {
                out.push_str(&numeric_text(a))
            }
            Value::Atom(a) => out.push_str(a),
            Value::Text(t) => quoted(t, out),
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Value::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    quoted(k, out);
                    out.push_str(": ");
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// A reader of JSON already known to be valid.
struct Json<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Json<'a> {
    fn blank(&mut self) {
        while self.s.get(self.at).is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn text(&self, from: usize) -> &'a str {
        std::str::from_utf8(&self.s[from..self.at]).unwrap_or_default()
    }

    fn value(&mut self) -> Option<Value<'a>> {
        self.blank();
        let from = self.at;
        match *self.s.get(self.at)? {
            b'{' => {
                self.at += 1;
                let mut fields: Vec<(String, Value<'a>)> = vec![];
                loop {
                    self.blank();
                    if self.s.get(self.at) == Some(&b'}') {
                        self.at += 1;
                        break;
                    }
                    let Value::Text(key) = self.value()? else {
                        return None;
                    };
                    self.blank();
                    self.at += 1; // ':'
                    let v = self.value()?;
                    // The last of repeated keys.
                    fields.retain(|(k, _)| *k != key);
                    fields.push((key, v));
                    self.blank();
                    if self.s.get(self.at) == Some(&b',') {
                        self.at += 1;
                    }
                }
                // Shorter keys first, then byte order.
                fields.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then(a.cmp(b)));
                Some(Value::Object(fields))
            }
            b'[' => {
                self.at += 1;
                let mut items = vec![];
                loop {
                    self.blank();
                    if self.s.get(self.at) == Some(&b']') {
                        self.at += 1;
                        break;
                    }
                    items.push(self.value()?);
                    self.blank();
                    if self.s.get(self.at) == Some(&b',') {
                        self.at += 1;
                    }
                }
                Some(Value::Array(items))
            }
            b'"' => {
                self.at += 1;
                while *self.s.get(self.at)? != b'"' {
                    self.at += if self.s[self.at] == b'\\' { 2 } else { 1 };
                }
                self.at += 1;
                serde_json::from_str(self.text(from)).ok().map(Value::Text)
            }
            _ => {
                while self
                    .s
                    .get(self.at)
                    .is_some_and(|b| !matches!(b, b',' | b']' | b'}') && !b.is_ascii_whitespace())
                {
                    self.at += 1;
                }
                Some(Value::Atom(self.text(from)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_read_and_print_as_postgresql() {
        let canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        for input in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
        ] {
            assert_eq!(uuid_out(input).as_deref(), Some(canonical), "{input}");
        }
        for bad in [
            "",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
            "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
            "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "a0eeb-c99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "urn:uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        ] {
            assert_eq!(uuid_out(bad), None, "{bad}");
        }
    }

    #[test]
    fn jsonb_prints_as_postgresql() {
        for (input, want) in [
            (
                r#"{"b":1,"aa":[1.50, true,null],"a":"x\"y","b":2}"#,
                r#"{"a": "x\"y", "b": 2, "aa": [1.50, true, null]}"#,
            ),
            ("  [ ]  ", "[]"),
            ("{}", "{}"),
            (r#"{"k": {"z": 1, "y": {}}}"#, r#"{"k": {"y": {}, "z": 1}}"#),
            // Numbers are `numeric`s (checked against PostgreSQL 15).
            ("-1e5", "-100000"),
            ("[1e999999999]", "[1e999999999]"),
            (
                "[1.5e2, 1e-10, -0, -0.0, 2.5E-3, 1.50, 0.0001e4]",
                "[150, 0.0000000001, 0, 0.0, 0.0025, 1.50, 1]",
            ),
            (r#""\u00e9\/\n""#, r#""é/\n""#),
        ] {
            assert_eq!(jsonb_out(input).as_deref(), Some(want), "{input}");
        }
        for bad in ["", "{", "{'a': 1}", "[1,]", "nul"] {
            assert_eq!(jsonb_out(bad), None, "{bad}");
            assert_eq!(json_check(bad), None, "{bad}");
        }
    }
}
