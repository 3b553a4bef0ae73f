//! A float8 as PostgreSQL prints it (issue 22), for `CAST(x AS text)`.
//!
//! PostgreSQL prints the shortest text that reads back as the same double,
//! in exponent form when the decimal exponent is below -4 or at least 15
//! (`1e+15`, `1e-10`, with a sign and at least two digits), and `-0`,
//! `NaN`, `Infinity`. DataFusion 55's cast prints `1000000000000000.0`
//! and `-0.0`. [`super::pg_out`] prints them so in every text of a value.
//!
//! Also `json_build_object(k1, v1, ...)`, PostgreSQL's `json` text of
//! key/value pairs (SQLAlchemy's column reflection builds one per column),
//! `json_build_array(v1, ...)`, of values,
//! and `to_json(x)`, one value's (`json_agg` is an `array_agg` of them:
//! `syntax.rs`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// `x` as PostgreSQL's `float8out` prints it.
pub fn float8_out(x: f64) -> String {
    if let Some(special) = special(x.is_nan(), x.is_infinite(), x) {
        return special;
    }
    let digits = shortest_digits(
        ryu_shortest(ryu::Buffer::new().format_finite(x)),
        x.abs() >= 2f64.powi(53),
        |p| format!("{x:.p$e}"),
        |t| t.parse::<f64>() == Ok(x),
    );
    render(digits, 15)
}

/// `x` as PostgreSQL's `float4out` prints it (the exponent form from
/// `1e+06` on: `FLT_DIG` is 6).
pub fn float4_out(x: f32) -> String {
    if let Some(special) = special(x.is_nan(), x.is_infinite(), x as f64) {
        return special;
    }
    let digits = shortest_digits(
        ryu_shortest(ryu::Buffer::new().format_finite(x)),
        x.abs() >= 2f32.powi(24),
        |p| format!("{x:.p$e}"),
        |t| t.parse::<f32>() == Ok(x),
    );
    render(digits, 6)
}

fn special(nan: bool, infinite: bool, x: f64) -> Option<String> {
    if nan {
        return Some("NaN".into());
    }
    if infinite {
        return Some(if x > 0.0 { "Infinity" } else { "-Infinity" }.into());
    }
    if x == 0.0 {
        return Some(if x.is_sign_negative() { "-0" } else { "0" }.into());
    }
    None
}

/// A value's digits: its sign, its significant digits and the decimal
/// exponent of the first (`-6.5e19`: `-`, `65`, 19).
struct Digits {
    negative: bool,
    digits: String,
    exp: i32,
}

fn digits_of(sci: &str) -> Digits {
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    Digits {
        negative,
        digits: if digits.is_empty() {
            "0".into()
        } else {
            digits.into()
        },
        exp: exp.parse().expect("an integer exponent"),
    }
}

/// The `ryu` crate's shortest text (`-199999999986930.12`, `1e15`,
/// `1.5e-7`) in the `{:e}` form [`digits_of`] reads (`-1.9999999998693012e14`).
/// Ryu is PostgreSQL's algorithm: where two shortest texts are equally
/// near the value it takes the even last digit (`-199999999986930.12`
/// for the double ...930.125), where Rust's own `{:e}` took the other
/// (`...930.13`).
fn ryu_shortest(text: &str) -> String {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
    let exp: i32 = exp.parse().expect("ryu writes an integer exponent");
    let int_len = mantissa.find('.').unwrap_or(mantissa.len()) as i32;
    let all: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let leading = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let (first, rest) = digits.split_at(1);
    let exp10 = int_len - 1 - leading as i32 + exp;
    let sign = if negative { "-" } else { "" };
    match rest.is_empty() {
        true => format!("{sign}{first}e{exp10}"),
        false => format!("{sign}{first}.{rest}e{exp10}"),
    }
}

/// The shortest digits that read back as the value and lie strictly
/// inside its rounding interval, as PostgreSQL's Ryu (`d2s.c`, bounds not
/// accepted) finds them. Rust's shortest form (`shortest`) may sit exactly
/// on the interval's edge and read back only by the parser's ties-to-even
/// (`6.5349375e+19`, where PostgreSQL prints `6.5349375000000004e+19`):
/// then the correctly rounded forms with more digits (`with(p)`, `p`
/// digits after the first) are tried.
///
/// An edge can hold only where the value's spacing (ulp) is 2 or more, at
/// and above 2^53 for a double (2^24 for a float): below, an edge, halfway
/// between two neighbours, has one decimal place more than any value of
/// its range, so more digits than the shortest form of the value can have.
/// `large` says whether the value is in that range; the wire prints every
/// float through here, and the check costs two parses.
fn shortest_digits(
    shortest: String,
    large: bool,
    with: impl Fn(usize) -> String,
    reads_back: impl Fn(&str) -> bool,
) -> Digits {
    let first = digits_of(&shortest);
    if !large {
        return first;
    }
    let inside = |d: &Digits| {
        // On an edge, a value a hair above or below reads as a neighbour.
        let scale = d.exp - (d.digits.len() as i32 - 1) - 30;
        let sign = if d.negative { "-" } else { "" };
        let above = format!("{sign}{}{}e{scale}", d.digits, "0".repeat(29) + "1");
        let below = format!("{sign}{}{}e{scale}", decremented(&d.digits), "9".repeat(30));
        reads_back(&above) && reads_back(&below)
    };
    if inside(&first) {
        return first;
    }
    for p in first.digits.len()..17 {
        let text = with(p);
        let d = digits_of(&text);
        if reads_back(&text) && inside(&d) {
            return d;
        }
    }
    digits_of(&with(16))
}

/// A string of decimal digits less one (`65349375` -> `65349374`,
/// `1` -> `0`).
fn decremented(digits: &str) -> String {
    let mut out: Vec<u8> = digits.bytes().collect();
    for b in out.iter_mut().rev() {
        if *b == b'0' {
            *b = b'9';
        } else {
            *b -= 1;
            break;
        }
    }
    String::from_utf8(out).expect("ASCII digits")
}

/// PostgreSQL's layout of the digits: an exponent (`1e+15`, `1e-05`: a
/// sign and at least two digits) when the decimal exponent is below -4
/// or at least `digits` (`DBL_DIG`/`FLT_DIG`), plain otherwise.
fn render(d: Digits, digits: i32) -> String {
    let sign = if d.negative { "-" } else { "" };
    let (first, rest) = d.digits.split_at(1);
    if !(-4..digits).contains(&d.exp) {
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if d.exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{exp_sign}{:02}", d.exp.abs());
    }
    if d.exp < 0 {
        let zeros = "0".repeat((-d.exp - 1) as usize);
        return format!("{sign}0.{zeros}{}", d.digits);
    }
    let int_len = d.exp as usize + 1;
    if d.digits.len() <= int_len {
        let zeros = "0".repeat(int_len - d.digits.len());
        format!("{sign}{}{zeros}", d.digits)
    } else {
        let (int, frac) = d.digits.split_at(int_len);
        format!("{sign}{int}.{frac}")
    }
}

/// A one-argument function's answer: `f` of the argument's values, one
/// value for one value (so the planner can fold it), an array for an array.
pub fn unary(
    value: &ColumnarValue,
    f: impl Fn(&ArrayRef) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    match value {
        ColumnarValue::Array(a) => Ok(ColumnarValue::Array(f(a)?)),
        ColumnarValue::Scalar(s) => Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &f(&s.to_array()?)?,
            0,
        )?)),
    }
}

/// A function's answer in the shape of its arguments: one value when each
/// argument is one (so the planner can fold it), else the array.
pub fn shaped_like(args: &[ColumnarValue], out: ArrayRef) -> Result<ColumnarValue> {
    Ok(
        if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        },
    )
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
    /// `json_build_array`: the values alone, in `[ ]`.
    array: bool,
}

/// Any arguments, or none (`json_build_array()` is `[]`,
/// `json_build_object()` `{}`).
fn any_or_none() -> Signature {
    use datafusion::logical_expr::TypeSignature;
    Signature::one_of(
        vec![TypeSignature::VariadicAny, TypeSignature::Nullary],
        Volatility::Immutable,
    )
}

/// `json_build_object(key, value, ...)`.
pub fn json_build_object() -> ScalarUDF {
    ScalarUDF::new_from_impl(JsonBuildObject {
        signature: any_or_none(),
        array: false,
    })
}

/// `json_build_array(value, ...)`: PostgreSQL's `json` text of the
/// values, each as `to_json` writes it (`[1, "a", null]`).
pub fn json_build_array() -> ScalarUDF {
    ScalarUDF::new_from_impl(JsonBuildObject {
        signature: any_or_none(),
        array: true,
    })
}

/// `to_json(x)`: one value as PostgreSQL's `json` text (NULL for NULL):
/// numbers and booleans bare, the rest a JSON string of its text.
pub fn to_json() -> ScalarUDF {
    ScalarUDF::new_from_impl(ToJson {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToJson {
    signature: Signature,
}

impl ScalarUDFImpl for ToJson {
    fn name(&self) -> &str {
        "to_json"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(json_field(self.name()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        unary(&args.args[0], |a| {
            let mut out = Vec::with_capacity(a.len());
            for row in 0..a.len() {
                out.push(match json_null(a, row) {
                    true => None,
                    false => {
                        let mut s = String::new();
                        json_value(a, row, &mut s)?;
                        Some(s)
                    }
                });
            }
            Ok(Arc::new(StringArray::from(out)) as ArrayRef)
        })
    }
}

/// The name `syntax.rs` writes `json_agg(x)` with.
pub const JSON_LIST: &str = "quipu_json_list";

/// `quipu_json_list(list)`: a list's elements as `json_agg` writes them
/// (`[1, "a", null]`), NULL for a NULL list. `json_agg(DISTINCT x)` is
/// this of the sorted distinct values (`syntax.rs`): PostgreSQL sorts
/// them to find the distinct ones, so they come in order.
pub fn json_list() -> ScalarUDF {
    ScalarUDF::new_from_impl(JsonOfList {
        signature: Signature::any(1, Volatility::Immutable),
        object: false,
    })
}

/// The name `syntax.rs` writes `json_object_agg(k, v)` with.
pub const JSON_OBJECT: &str = "quipu_json_object";

/// `quipu_json_object(list)`: the `"key" : value` members a
/// `json_object_agg` gathered, as PostgreSQL writes the object (`{ "a" :
/// 1, "b" : null }`), NULL for a NULL list (no rows). A NULL member is a
/// NULL key: PostgreSQL's `22023` "field name must not be null". The
/// members are made per row and checked here, after the aggregate's
/// `FILTER`: a key the filter leaves out is no error.
pub fn json_object() -> ScalarUDF {
    ScalarUDF::new_from_impl(JsonOfList {
        signature: Signature::any(1, Volatility::Immutable),
        object: true,
    })
}

/// A list as a JSON array of its elements, or (`object`) as an object
/// of its members' text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonOfList {
    signature: Signature,
    object: bool,
}

impl ScalarUDFImpl for JsonOfList {
    fn name(&self) -> &str {
        if self.object { JSON_OBJECT } else { JSON_LIST }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(json_field(self.name()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let (open, close) = if self.object {
            ("{ ", " }")
        } else {
            ("[", "]")
        };
        unary(&args.args[0], |a| {
            let Some(lists) = datafusion::arrow::array::AsArray::as_list_opt::<i32>(a.as_ref())
            else {
                return datafusion::common::plan_err!("{name} takes a list, not {}", a.data_type());
            };
            let mut out = Vec::with_capacity(a.len());
            for row in 0..lists.len() {
                if lists.is_null(row) {
                    out.push(None);
                    continue;
                }
                let values = lists.value(row);
                // An object's members are text, written as they are.
                let members = match self.object {
                    true => Some(
                        datafusion::arrow::array::AsArray::as_string_opt::<i32>(values.as_ref())
                            .ok_or_else(|| {
                                datafusion::common::DataFusionError::Plan(format!(
                                    "{name} takes a list of text, not {}",
                                    values.data_type()
                                ))
                            })?,
                    ),
                    false => None,
                };
                let mut s = String::from(open);
                // `json_agg` starts an array after the first on a line of
                // its own (`[[1,2], null, \n [3]]`).
                let nested = super::is_list(values.data_type());
                for i in 0..values.len() {
                    if i > 0 {
                        s.push_str(", ");
                        if nested && values.is_valid(i) {
                            s.push_str("\n ");
                        }
                    }
                    match members {
                        None => json_value(&values, i, &mut s)?,
                        Some(m) if m.is_null(i) => {
                            return Err(crate::error::DataException::error(
                                "22023",
                                "field name must not be null",
                            ));
                        }
                        Some(m) => s.push_str(m.value(i)),
                    }
                }
                s.push_str(close);
                out.push(Some(s));
            }
            Ok(Arc::new(StringArray::from(out)) as ArrayRef)
        })
    }
}

/// A JSON string literal.
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The field metadata that marks text as JSON (`json`, `jsonb`): what
/// `to_json`, `json_build_*`, `json_agg`, the casts to `json` and `jsonb`,
/// the JSON access operators and a PostgreSQL source's `json` / `jsonb`
/// column give. A JSON value inside JSON is written as it is, not as a
/// string: `json_build_object('b', json_build_array(1))` is `{"b" : [1]}`,
/// as in PostgreSQL (it was `{"b" : "[1]"}`). The mark follows a value
/// through columns, `UNION`s of JSON, the functions that make JSON and
/// a `CASE` or `COALESCE` of JSON (`json_arguments.rs`); an explicit cast
/// to text drops it.
pub const JSON_MARK: &str = "quipu.json";

/// A `text` result field marked as JSON.
pub fn json_field(name: &str) -> FieldRef {
    Arc::new(mark_json(Field::new(name, DataType::Utf8, true)))
}

/// `field`, marked as JSON (a PostgreSQL source's `json` column).
pub fn mark_json(field: Field) -> Field {
    let mut metadata = field.metadata().clone();
    metadata.insert(JSON_MARK.to_string(), "true".to_string());
    field.with_metadata(metadata)
}

/// Whether a field holds JSON text (see [`JSON_MARK`]).
pub fn is_json(f: &Field) -> bool {
    f.metadata().contains_key(JSON_MARK)
}

/// `f`, its result marked as JSON (a cast to `json` or `jsonb`).
pub fn marked_json(f: ScalarUDF) -> ScalarUDF {
    ScalarUDF::new_from_impl(MarkedJson(f))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MarkedJson(ScalarUDF);

impl ScalarUDFImpl for MarkedJson {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn signature(&self) -> &Signature {
        self.0.signature()
    }

    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        self.0.return_type(types)
    }

    fn return_field_from_args(&self, _: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(json_field(self.name()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.0.invoke_with_args(args)
    }
}

/// JSON text as an argument of a function that writes JSON: a struct of
/// one field named [`JSON_MARK`] (`json_arguments.rs` wraps such
/// arguments). A type rather than the field's metadata, which the
/// cluster's plans do not carry.
fn marked_text(a: &ArrayRef) -> Option<&ArrayRef> {
    use datafusion::arrow::array::AsArray;
    match a.data_type() {
        DataType::Struct(fields) if fields.len() == 1 && fields[0].name() == JSON_MARK => {
            Some(a.as_struct().column(0))
        }
        _ => None,
    }
}

/// Whether row `row` of `a` is NULL (a marked JSON value: its text).
fn json_null(a: &ArrayRef, row: usize) -> bool {
    // A NULL literal's array has no null buffer: `is_null` is false.
    match marked_text(a) {
        Some(text) => text.is_null(row) || a.is_null(row),
        None => a.is_null(row) || *a.data_type() == DataType::Null,
    }
}

/// One value as PostgreSQL's `to_json` writes it: numbers and booleans
/// bare (a float that is not finite quoted), text and the rest quoted,
/// JSON text as it is.
fn json_value(a: &ArrayRef, row: usize, out: &mut String) -> Result<()> {
    use datafusion::arrow::util::display::array_value_to_string;
    if json_null(a, row) {
        out.push_str("null");
        return Ok(());
    }
    if let Some(text) = marked_text(a) {
        out.push_str(&array_value_to_string(text, row)?);
        return Ok(());
    }
    let dt = a.data_type();
    if let Some(list) = list_elements(a, row) {
        // PostgreSQL's `array_to_json`: no space after the commas (it was
        // the list's text as a JSON string, `"[1, 2]"` for `[1,2]`).
        out.push('[');
        for i in 0..list.len() {
            if i > 0 {
                out.push(',');
            }
            json_value(&list, i, out)?;
        }
        out.push(']');
        return Ok(());
    }
    let text = array_value_to_string(a, row)?;
    if dt.is_floating() {
        let x: f64 = text.parse().unwrap_or(f64::NAN);
        if x.is_finite() {
            out.push_str(&float8_out(x));
        } else {
            json_string(&float8_out(x), out);
        }
    } else if dt.is_integer() || matches!(dt, DataType::Boolean | DataType::Decimal128(..)) {
        out.push_str(&text);
    } else if matches!(
        dt,
        DataType::Timestamp(..) | DataType::Interval(_) | DataType::Time64(_)
    ) {
        // PostgreSQL's text of the value (`1 day`, `10:00:00.5`; Arrow's
        // was `1 days`, `10:00:00.500`), a timestamp's in ISO 8601's form
        // (`T` between date and clock, an offset of hours and minutes).
        let pg = super::pg_out::text_of(&a.slice(row, 1))?;
        let pg = datafusion::arrow::array::AsArray::as_string::<i32>(&pg).value(0);
        json_string(&json_time(pg, dt), out);
    } else {
        json_string(&text, out);
    }
    Ok(())
}

/// The elements of row `row` of a list array, or None for another type.
fn list_elements(a: &ArrayRef, row: usize) -> Option<ArrayRef> {
    use datafusion::arrow::array::AsArray;
    match a.data_type() {
        DataType::List(_) => Some(a.as_list::<i32>().value(row)),
        DataType::LargeList(_) => Some(a.as_list::<i64>().value(row)),
        DataType::FixedSizeList(..) => Some(a.as_fixed_size_list().value(row)),
        _ => None,
    }
}

/// PostgreSQL's text of a time value as its JSON writes it: a timestamp's
/// date and clock joined by `T`, an offset of hours alone given its
/// minutes (`2024-03-10 07:30:00+00` is `2024-03-10T07:30:00+00:00`).
fn json_time(text: &str, dt: &DataType) -> String {
    let DataType::Timestamp(_, zone) = dt else {
        return text.to_string();
    };
    let t = text.replacen(' ', "T", 1);
    let b = t.as_bytes();
    match zone {
        // `+HH` at the end (not `+HH:MM`).
        Some(_) if b.len() > 3 && matches!(b[b.len() - 3], b'+' | b'-') => format!("{t}:00"),
        _ => t,
    }
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        match self.array {
            true => "json_build_array",
            false => "json_build_object",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(json_field(self.name()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !self.array && !args.args.len().is_multiple_of(2) {
            return datafusion::common::plan_err!(
                "json_build_object: argument list must have even number of elements"
            );
        }
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let rows = if scalar { 1 } else { args.number_rows };
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            if self.array {
                let mut s = String::from("[");
                for (i, a) in arrays.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    json_value(a, row, &mut s)?;
                }
                s.push(']');
                out.push(s);
                continue;
            }
            let mut s = String::from("{");
            for (i, pair) in arrays.chunks(2).enumerate() {
                if pair[0].is_null(row) || *pair[0].data_type() == DataType::Null {
                    return datafusion::common::exec_err!(
                        "json_build_object: null value not allowed for object key"
                    );
                }
                if i > 0 {
                    s.push_str(", ");
                }
                let key = datafusion::arrow::util::display::array_value_to_string(&pair[0], row)?;
                json_string(&key, &mut s);
                s.push_str(" : ");
                json_value(&pair[1], row, &mut s)?;
            }
            s.push('}');
            out.push(s);
        }
        shaped_like(&args.args, Arc::new(StringArray::from(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::float8_out;

    #[test]
    fn as_postgresql_prints() {
        for (x, pg) in [
            (1e15, "1e+15"),
            (123456789012345.0, "123456789012345"),
            (1e-10, "1e-10"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (-0.0, "-0"),
            (3.3333333333333335, "3.3333333333333335"),
            // The double -199999999986930.125 exactly, halfway between the
            // two shortest texts: Ryu's even digit.
            (-199999999986930.12, "-199999999986930.12"),
            (0.00123, "0.00123"),
            (1.5e-7, "1.5e-07"),
            (123.45, "123.45"),
            (1.5e300, "1.5e+300"),
            (f64::NEG_INFINITY, "-Infinity"),
            // Rust's shortest form lies on the rounding interval's edge
            // (read back by ties-to-even); PostgreSQL's does not.
            (65349.375 * 1e15, "6.5349375000000004e+19"),
            (-65349.375 * 1e15, "-6.5349375000000004e+19"),
            (100.0, "100"),
            (123.25, "123.25"),
            (0.001953125, "0.001953125"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
        ] {
            assert_eq!(float8_out(x), pg, "{x}");
        }
        assert_eq!(super::float4_out(1e6), "1e+06");
        assert_eq!(super::float4_out(0.1), "0.1");
        assert_eq!(super::float4_out(123456.0), "123456");
    }

    #[test]
    fn every_text_reads_back_as_its_value() {
        // Finite doubles and floats from spread bit patterns (a fixed
        // xorshift sequence).
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f64::from_bits(state);
            if x.is_finite() {
                let t = float8_out(x);
                let back: f64 = t.parse().unwrap_or_else(|_| panic!("{t}"));
                assert!(back == x, "{x:e} printed {t}");
            }
            let y = f32::from_bits(state as u32);
            if y.is_finite() {
                let t = super::float4_out(y);
                let back: f32 = t.parse().unwrap_or_else(|_| panic!("{t}"));
                assert!(back == y, "{y:e} printed {t}");
            }
        }
    }

    #[test]
    fn below_the_edge_range_the_shortest_form_is_already_inside() {
        // The edge check skipped below 2^53 (2^24) would change nothing:
        // for spread values and for integers and halves near the bound.
        let full64 = |x: f64| {
            super::shortest_digits(
                format!("{x:e}"),
                true,
                |p| format!("{x:.p$e}"),
                |t| t.parse::<f64>() == Ok(x),
            )
        };
        let full32 = |x: f32| {
            super::shortest_digits(
                format!("{x:e}"),
                true,
                |p| format!("{x:.p$e}"),
                |t| t.parse::<f32>() == Ok(x),
            )
        };
        let same = |a: super::Digits, b: super::Digits| {
            a.negative == b.negative && a.digits == b.digits && a.exp == b.exp
        };
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let bound = 2f64.powi(53);
        for i in 0..200_000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f64::from_bits(state);
            let near = bound - (i as f64) * 0.5 - 1.0;
            for x in [x, near, -near] {
                if x.is_finite() && x.abs() < bound {
                    assert!(
                        same(super::digits_of(&format!("{x:e}")), full64(x)),
                        "{x:e}"
                    );
                }
            }
            let y = f32::from_bits(state as u32);
            if y.is_finite() && y.abs() < 2f32.powi(24) {
                assert!(
                    same(super::digits_of(&format!("{y:e}")), full32(y)),
                    "{y:e}"
                );
            }
        }
    }
}
