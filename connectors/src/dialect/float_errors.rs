//! PostgreSQL's errors of double-precision arithmetic and functions
//! (issue 22).
//!
//! PostgreSQL refuses what IEEE arithmetic answers with an infinity, a NaN
//! or a zero it did not mean:
//! - `x / 0` (22012 "division by zero", unless `x` is NaN);
//! - `+`, `-`, `*`, `/` and `exp`, `power` of finite values whose result is
//!   infinite (22003 "value out of range: overflow"), and `*`, `/`, `exp`,
//!   `power` whose result is zero from values that are not (22003 "value
//!   out of range: underflow");
//! - `ln`, `log10`, `log` of zero or of a negative number (2201E), `sqrt`
//!   of a negative number and `power` of zero to a negative exponent or of a
//!   negative number to a fraction (2201F);
//! - `acos`, `asin` beyond [-1, 1], `atanh` beyond it, `acosh` below 1, and
//!   `sin`, `cos`, `tan` of an infinity (22003 "input is out of range");
//! - text read as a double that is beyond its range, either way
//!   (`'1e400'`, `'1e-400'`: 22003 "... is out of range for type double
//!   precision").
//!
//! DataFusion 55 answers the IEEE values (`Infinity`, `NaN`, `0`), so a
//! query Quipu computed gave a number where the same query pushed to
//! PostgreSQL failed (found by the wire check in tests/it/expressions.rs).
//!
//! This logical rule runs last, after each source's pushdown, so it sees
//! only what Quipu itself computes (a pushed division is PostgreSQL's
//! already): each of those operators and functions over doubles becomes a
//! `quipu_float8_*` function that computes the same value and refuses
//! PostgreSQL's cases (float.c's `float8_pl`/`_mi`/`_mul`/`_div`, `dexp`,
//! `dpow`, `dsqrt`, `dacos` and the rest). The functions are registered in
//! every session, so executors know them.
//!
//! And PostgreSQL's order of doubles: `-0` equals `0` (float8_cmp), where
//! Arrow's sorts and distinct sets tell them apart (`ORDER BY x` put every
//! `-0` first, `rank()` gave them another rank, `count(DISTINCT x)`
//! counted two, a hash join on doubles did not match `-0` with `0`).
//! `quipu_float8_key(x)` is `x` with `-0` as `0`; the engine sorts,
//! partitions and counts distinct doubles by it
//! (`scheduler/src/pg_types.rs`), and joins by it (here).
//!
//! Left as DataFusion's: `sum` and `avg` of doubles (PostgreSQL's overflow
//! check runs at each addition; an own aggregate would cost every `sum` of
//! a double its grouped fast path) and `real` (float4) arithmetic.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, StringArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, lit,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::error::DataException;

/// The checked operators, by the operator they replace.
const OPERATORS: [(Operator, &str); 4] = [
    (Operator::Divide, "quipu_float8_div"),
    (Operator::Multiply, "quipu_float8_mul"),
    (Operator::Plus, "quipu_float8_pl"),
    (Operator::Minus, "quipu_float8_mi"),
];
/// `quipu_float8_fn(name, x)`: the one-argument functions below.
const FUNCTION: &str = "quipu_float8_fn";
/// The one-argument functions checked, as `quipu_float8_fn`'s first
/// argument (`log` of one argument is `log10`).
const FUNCTIONS: [&str; 11] = [
    "ln", "log10", "exp", "sqrt", "acos", "asin", "atanh", "acosh", "sin", "cos", "tan",
];
const POWER: &str = "quipu_float8_power";
const INPUT: &str = "quipu_float8_in";
/// `real`'s input (float.c's `float4in`), its value as a double.
const INPUT4: &str = "quipu_float4_in";
/// The sort key of a double (see the module doc).
pub const KEY: &str = "quipu_float8_key";
/// `GREATEST` and `LEAST` of doubles, as PostgreSQL's: of equal values
/// (`-0` and `0`) the first; DataFusion's took the larger in Arrow's total
/// order (`greatest(-0, 0)` was `0`, PostgreSQL's `-0`).
pub const GREATEST: &str = "quipu_float8_greatest";
pub const LEAST: &str = "quipu_float8_least";

/// The functions, for the session's registry.
pub fn functions() -> Vec<ScalarUDF> {
    let two = || {
        Signature::exact(
            vec![DataType::Float64, DataType::Float64],
            Volatility::Immutable,
        )
    };
    let mut out: Vec<ScalarUDF> = OPERATORS
        .iter()
        .chain([(Operator::BitwiseXor, POWER)].iter())
        .map(|(_, name)| {
            ScalarUDF::new_from_impl(Checked {
                name,
                signature: two(),
            })
        })
        .collect();
    out.push(ScalarUDF::new_from_impl(Checked {
        name: FUNCTION,
        signature: Signature::exact(
            vec![DataType::Utf8, DataType::Float64],
            Volatility::Immutable,
        ),
    }));
    out.push(ScalarUDF::new_from_impl(Checked {
        name: KEY,
        signature: Signature::exact(vec![DataType::Float64], Volatility::Immutable),
    }));
    for name in [GREATEST, LEAST] {
        out.push(ScalarUDF::new_from_impl(Checked {
            name,
            signature: Signature::variadic(vec![DataType::Float64], Volatility::Immutable),
        }));
    }
    for name in [INPUT, INPUT4] {
        out.push(ScalarUDF::new_from_impl(Checked {
            name,
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        }));
    }
    out
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Checked {
    name: &'static str,
    signature: Signature,
}

pub(super) fn overflow() -> datafusion::error::DataFusionError {
    DataException::error("22003", "value out of range: overflow")
}

fn underflow() -> datafusion::error::DataFusionError {
    DataException::error("22003", "value out of range: underflow")
}

fn out_of_range() -> datafusion::error::DataFusionError {
    DataException::error("22003", "input is out of range")
}

/// float.c's `float8_pl`, `float8_mi`, `float8_mul`, `float8_div`.
fn operate(name: &str, a: f64, b: f64) -> Result<f64> {
    let (r, zero_from_nonzero) = match name {
        "quipu_float8_pl" => (a + b, false),
        "quipu_float8_mi" => (a - b, false),
        "quipu_float8_mul" => (a * b, a != 0.0 && b != 0.0),
        _ => {
            if b == 0.0 && !a.is_nan() {
                return Err(DataException::error("22012", "division by zero"));
            }
            (a / b, a != 0.0 && !b.is_infinite())
        }
    };
    let divides = name == "quipu_float8_div";
    if r.is_infinite() && !a.is_infinite() && (divides || !b.is_infinite()) {
        return Err(overflow());
    }
    if r == 0.0 && zero_from_nonzero {
        return Err(underflow());
    }
    Ok(r)
}

/// float.c's `dpow`: its errors, then the C library's `pow` (whose
/// infinities and NaNs Rust's `powf` shares).
fn power(a: f64, b: f64) -> Result<f64> {
    let complex = "a negative number raised to a non-integer power yields a complex result";
    if a == 0.0 && b < 0.0 {
        return Err(DataException::error(
            "2201F",
            "zero raised to a negative power is undefined",
        ));
    }
    if a < 0.0 && b.floor() != b && !b.is_nan() {
        return Err(DataException::error("2201F", complex));
    }
    let r = a.powf(b);
    if a.is_finite() && b.is_finite() {
        if r.is_infinite() {
            return Err(overflow());
        }
        if r == 0.0 && a != 0.0 {
            return Err(underflow());
        }
    }
    Ok(r)
}

/// float.c's one-argument functions: their domains and ranges.
fn apply(name: &str, v: f64) -> Result<f64> {
    let nan = v.is_nan();
    match name {
        "ln" | "log10" if v == 0.0 => Err(DataException::error(
            "2201E",
            "cannot take logarithm of zero",
        )),
        "ln" | "log10" if v < 0.0 => Err(DataException::error(
            "2201E",
            "cannot take logarithm of a negative number",
        )),
        "ln" => Ok(v.ln()),
        "log10" => Ok(v.log10()),
        "sqrt" if v < 0.0 => Err(DataException::error(
            "2201F",
            "cannot take square root of a negative number",
        )),
        "sqrt" => Ok(v.sqrt()),
        "exp" => {
            let r = v.exp();
            match () {
                _ if !v.is_finite() => Ok(r),
                _ if r.is_infinite() => Err(overflow()),
                _ if r == 0.0 => Err(underflow()),
                _ => Ok(r),
            }
        }
        "acos" | "asin" if !nan && !(-1.0..=1.0).contains(&v) => Err(out_of_range()),
        "acos" => Ok(v.acos()),
        "asin" => Ok(v.asin()),
        "atanh" if !nan && !(-1.0..=1.0).contains(&v) => Err(out_of_range()),
        "atanh" => Ok(v.atanh()),
        "acosh" if v < 1.0 => Err(out_of_range()),
        "acosh" => Ok(v.acosh()),
        "sin" | "cos" | "tan" if v.is_infinite() => Err(out_of_range()),
        "sin" => Ok(v.sin()),
        "cos" => Ok(v.cos()),
        _ => Ok(v.tan()),
    }
}

/// float.c's `float8in` (`type_name` "double precision") or `float4in`
/// ("real", `v` the value read as one): text that is no number
/// (DataFusion's cast, as Arrow's safe cast, reads `'12abc'` and `''` as
/// NULL), or whose value is beyond the type's range (`1e400` read as
/// Infinity, `1e-400` as 0; a `real`'s `1e39` and `1e-50`). A spelled
/// infinity and a zero written with zeros only stay.
fn read(text: &str, v: Option<f64>, type_name: &str) -> Result<f64> {
    let number = text.trim();
    if let Some(v) = v.is_none().then(|| hex_float(number)).flatten() {
        return hex_in_range(v, number, type_name);
    }
    let Some(v) = v else {
        return Err(DataException::error(
            "22P02",
            &format!("invalid input syntax for type {type_name}: \"{text}\""),
        ));
    };
    let mantissa = number.split(['e', 'E']).next().unwrap_or_default();
    let spelled_infinity = number.trim_start_matches(['+', '-']).to_ascii_lowercase();
    let beyond = (v.is_infinite() && !spelled_infinity.starts_with("inf"))
        || (v == 0.0 && mantissa.chars().any(|c| ('1'..='9').contains(&c)));
    if beyond {
        return Err(DataException::error(
            "22003",
            &format!("\"{number}\" is out of range for type {type_name}"),
        ));
    }
    Ok(v)
}

/// A hexadecimal number as C's `strtod` reads it, which PostgreSQL's
/// `float8in` and `float4in` call (`0x1F` is 31, `-0x1.8p3` -12,
/// `0x.8` 0.5); Arrow's cast refused it. Its digits are kept to 120 bits
/// and the rest marks the last of them (enough to round a double's 53
/// once); the exponent is a power of two. None for other text.
fn hex_float(number: &str) -> Option<f64> {
    let (negative, body) = match number.as_bytes().first()? {
        b'-' => (true, &number[1..]),
        b'+' => (false, &number[1..]),
        _ => (false, number),
    };
    let body = body
        .strip_prefix("0x")
        .or_else(|| body.strip_prefix("0X"))?;
    let (digits, exponent) = match body.find(['p', 'P']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut mantissa: u128 = 0;
    let mut shift: i64 = 0;
    let mut sticky = false;
    for (i, c) in whole.chars().chain(fraction.chars()).enumerate() {
        let d = c.to_digit(16)?;
        if mantissa >> 116 == 0 {
            mantissa = (mantissa << 4) | u128::from(d);
            if i >= whole.len() {
                shift -= 4;
            }
        } else {
            sticky |= d != 0;
            if i < whole.len() {
                shift += 4;
            }
        }
    }
    let power: i64 = match exponent {
        Some(e) => {
            let digits = e.trim_start_matches(['+', '-']);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let p = digits.parse::<i64>().unwrap_or(i64::MAX / 4).min(1 << 20);
            if e.starts_with('-') { -p } else { p }
        }
        None => 0,
    };
    let mut v = (mantissa | u128::from(sticky)) as f64;
    let mut e = shift + power;
    while e > 0 && v.is_finite() {
        let step = e.min(1000);
        v *= 2f64.powi(step as i32);
        e -= step;
    }
    while e < 0 && v != 0.0 {
        let step = (-e).min(1000);
        v /= 2f64.powi(step as i32);
        e += step;
    }
    Some(if negative { -v } else { v })
}

/// A hexadecimal number's value, or PostgreSQL's error where `strtod`
/// reports it out of range (overflow, or digits that are not all zero
/// read as zero).
fn hex_in_range(v: f64, number: &str, type_name: &str) -> Result<f64> {
    let digits = number.trim_start_matches(['+', '-'])[2..]
        .split(['p', 'P'])
        .next()
        .unwrap_or_default();
    let v = match type_name {
        "real" => f64::from(v as f32),
        _ => v,
    };
    if v.is_infinite() || (v == 0.0 && digits.chars().any(|c| c.is_ascii_hexdigit() && c != '0')) {
        return Err(DataException::error(
            "22003",
            &format!("\"{number}\" is out of range for type {type_name}"),
        ));
    }
    Ok(v)
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<_>>()?;
        let out: Float64Array = match self.name {
            // `-0 + 0` is `0`; every other value (NaN too) is itself.
            KEY => float(&arrays[0]).unary(|v| v + 0.0),
            INPUT | INPUT4 => {
                let (values, type_name) = match self.name {
                    INPUT => (cast(&arrays[0], &DataType::Float64)?, "double precision"),
                    _ => {
                        let reals = cast(&arrays[0], &DataType::Float32)?;
                        (cast(&reals, &DataType::Float64)?, "real")
                    }
                };
                let (values, texts) = (float(&values), arrays[0].as_any());
                let texts = texts
                    .downcast_ref::<StringArray>()
                    .expect("the signature makes it text");
                (0..n)
                    .map(|i| {
                        (!texts.is_null(i))
                            .then(|| {
                                let v = (!values.is_null(i)).then(|| values.value(i));
                                read(texts.value(i), v, type_name)
                            })
                            .transpose()
                    })
                    .collect::<Result<_>>()?
            }
            GREATEST | LEAST => {
                let floats: Vec<&Float64Array> = arrays.iter().map(float).collect();
                let replaces = |v: f64, kept: f64| match self.name {
                    GREATEST => pg_order(v, kept).is_gt(),
                    _ => pg_order(v, kept).is_lt(),
                };
                (0..n)
                    .map(|i| {
                        floats
                            .iter()
                            .filter(|a| a.is_valid(i))
                            .map(|a| a.value(i))
                            .reduce(|kept, v| if replaces(v, kept) { v } else { kept })
                    })
                    .collect()
            }
            FUNCTION => {
                let name = match &args.args[0] {
                    ColumnarValue::Scalar(ScalarValue::Utf8(Some(s))) => s.clone(),
                    _ => "ln".into(),
                };
                let x = float(&arrays[1]);
                (0..n)
                    .map(|i| {
                        (!x.is_null(i))
                            .then(|| apply(&name, x.value(i)))
                            .transpose()
                    })
                    .collect::<Result<_>>()?
            }
            name => {
                // A loop over the values, not an iterator of `Result`s: the
                // sums and products of a lake's doubles pass through here.
                let (a, b) = (float(&arrays[0]), float(&arrays[1]));
                let nulls = NullBuffer::union(a.nulls(), b.nulls());
                let mut values = Vec::with_capacity(n);
                for i in 0..n {
                    let valid = nulls.as_ref().is_none_or(|m| m.is_valid(i));
                    values.push(match (valid, name) {
                        (false, _) => 0.0,
                        (true, POWER) => power(a.value(i), b.value(i))?,
                        (true, _) => operate(name, a.value(i), b.value(i))?,
                    });
                }
                Float64Array::new(values.into(), nulls)
            }
        };
        let out: ArrayRef = Arc::new(out);
        crate::dialect::pg_text::shaped_like(&args.args, out)
    }
}

/// float.c's `float8_cmp_internal`: NaN above every number and equal to
/// itself, `-0` equal to `0`.
fn pg_order(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        (false, false) => a.partial_cmp(&b).expect("numbers compare"),
    }
}

fn float(a: &ArrayRef) -> &Float64Array {
    a.as_any()
        .downcast_ref::<Float64Array>()
        .expect("the signature makes it float64")
}

/// Rewrites what Quipu computes (see the module doc).
#[derive(Debug, Default)]
pub struct FloatErrors {
    /// Only expressions of constants: the rule then runs first, before
    /// DataFusion's simplifier folds them (`ln(0)` was `-Infinity`, and
    /// `WHERE ln(0) < x`, folded and pushed to PostgreSQL, failed there).
    /// They read no source, so nothing that could be pushed is lost.
    pub constants_only: bool,
}

impl OptimizerRule for FloatErrors {
    fn name(&self) -> &str {
        if self.constants_only {
            "quipu_float_errors_of_constants"
        } else {
            "quipu_float_errors"
        }
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        // A call of one of the session's registered functions.
        let call = |name: &str, args: Vec<Expr>| {
            Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                crate::session::scalar_function(name),
                args,
            )))
        };
        plan.transform_up_with_subqueries(|node| {
            // A hash join matches keys by their bits: `-0` and `0` are
            // PostgreSQL's equal doubles, so double keys are joined by
            // `quipu_float8_key`.
            let node = match node {
                LogicalPlan::Join(mut join) if !self.constants_only => {
                    let (l, r) = (
                        Arc::clone(join.left.schema()),
                        Arc::clone(join.right.schema()),
                    );
                    let double = |x: &Expr, s: &datafusion::common::DFSchema| {
                        matches!(x.get_type(s), Ok(DataType::Float64))
                    };
                    for (a, b) in &mut join.on {
                        if double(a, &l) && double(b, &r) {
                            *a = call(KEY, vec![a.clone()]).data;
                            *b = call(KEY, vec![b.clone()]).data;
                        }
                    }
                    LogicalPlan::Join(join)
                }
                node => node,
            };
            // An expression of a node reads its inputs' columns (a join's
            // condition both sides'): typed against each, a double in any.
            let schemas: Vec<_> = node
                .inputs()
                .iter()
                .map(|i| Arc::clone(i.schema()))
                .chain([Arc::clone(node.schema())])
                .collect();
            // Output names stay the same (`a / b`, not the function's).
            let names = NamePreserver::new(&node);
            node.map_expressions(|e| {
                super::keeping_name(&names, e, &mut |e| {
                    e.transform_up(|e| {
                        let is_double = |x: &Expr| {
                            (!self.constants_only || x.column_refs().is_empty())
                                && schemas
                                    .iter()
                                    .any(|s| matches!(x.get_type(s), Ok(DataType::Float64)))
                        };
                        let is_text = |x: &Expr| {
                            schemas.iter().any(|s| {
                                matches!(
                                    x.get_type(s),
                                    Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
                                )
                            })
                        };
                        match &e {
                            Expr::BinaryExpr(BinaryExpr { left, op, right })
                                if is_double(left) && is_double(right) =>
                            {
                                match OPERATORS.iter().find(|(o, _)| o == op) {
                                    Some((_, name)) => Ok(call(
                                        name,
                                        vec![left.as_ref().clone(), right.as_ref().clone()],
                                    )),
                                    None => Ok(Transformed::no(e)),
                                }
                            }
                            Expr::ScalarFunction(f)
                                if f.args.len() == 2
                                    && f.name() == "power"
                                    && f.args.iter().all(is_double) =>
                            {
                                Ok(call(POWER, f.args.clone()))
                            }
                            Expr::ScalarFunction(f)
                                if f.args.len() == 1
                                    && (FUNCTIONS.contains(&f.name()) || f.name() == "log")
                                    && is_double(&f.args[0]) =>
                            {
                                let name = if f.name() == "log" { "log10" } else { f.name() };
                                Ok(call(FUNCTION, vec![lit(name), f.args[0].clone()]))
                            }
                            Expr::Cast(Cast { expr, field })
                                if matches!(
                                    field.data_type(),
                                    DataType::Float64 | DataType::Float32
                                ) && (!self.constants_only || expr.column_refs().is_empty())
                                    && is_text(expr) =>
                            {
                                let utf8 = schemas
                                    .iter()
                                    .any(|s| matches!(expr.get_type(s), Ok(DataType::Utf8)));
                                let text = match utf8 {
                                    true => expr.as_ref().clone(),
                                    false => Expr::Cast(Cast::new(expr.clone(), DataType::Utf8)),
                                };
                                match field.data_type() {
                                    DataType::Float64 => Ok(call(INPUT, vec![text])),
                                    // A double holds each `real` exactly.
                                    _ => Ok(call(INPUT4, vec![text]).map_data(|x| {
                                        Ok(Expr::Cast(Cast::new(Box::new(x), DataType::Float32)))
                                    })?),
                                }
                            }
                            _ => Ok(Transformed::no(e)),
                        }
                    })
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{apply, operate, power, read};

    /// Each case as PostgreSQL 15 answers it: a value, or the error's
    /// words.
    fn answer(r: datafusion::common::Result<f64>) -> String {
        match r {
            Ok(v) => v.to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn arithmetic_refuses_what_float_c_refuses() {
        let overflow = |r| answer(r).contains("value out of range: overflow");
        let underflow = |r| answer(r).contains("value out of range: underflow");
        assert!(overflow(operate("quipu_float8_mul", 1e308, 10.0)));
        assert!(overflow(operate("quipu_float8_pl", 1e308, 1e308)));
        assert!(overflow(operate("quipu_float8_mi", -1e308, 1e308)));
        assert!(overflow(operate("quipu_float8_div", 1e308, 1e-10)));
        assert!(underflow(operate("quipu_float8_mul", 1e-300, 1e-300)));
        assert!(underflow(operate("quipu_float8_div", 5e-324, 2.0)));
        assert!(answer(operate("quipu_float8_div", 1.0, 0.0)).contains("division by zero"));
        // Infinities and NaN given are no overflow; a subnormal result is
        // a value.
        assert_eq!(answer(operate("quipu_float8_div", f64::NAN, 0.0)), "NaN");
        assert_eq!(
            answer(operate("quipu_float8_pl", f64::INFINITY, 1.0)),
            "inf"
        );
        assert_eq!(
            answer(operate("quipu_float8_mi", f64::INFINITY, f64::INFINITY)),
            "NaN"
        );
        assert!(operate("quipu_float8_mul", 1e-310, 0.5).is_ok_and(|v| v > 0.0));
        assert_eq!(answer(operate("quipu_float8_div", 1.0, f64::INFINITY)), "0");
    }

    #[test]
    fn functions_refuse_their_domains_and_ranges() {
        assert!(answer(power(10.0, 400.0)).contains("overflow"));
        assert_eq!(answer(power(10.0, -310.0)), (1e-310f64).to_string());
        assert!(answer(power(0.0, -1.0)).contains("zero raised to a negative power"));
        assert!(answer(power(-8.0, 1.0 / 3.0)).contains("complex result"));
        assert_eq!(answer(power(-8.0, 3.0)), "-512");
        assert_eq!(answer(power(f64::NAN, 0.0)), "1");
        assert!(answer(apply("exp", 1000.0)).contains("overflow"));
        assert!(answer(apply("exp", -1000.0)).contains("underflow"));
        assert_eq!(answer(apply("exp", f64::NEG_INFINITY)), "0");
        assert!(answer(apply("sqrt", -1.0)).contains("square root of a negative"));
        assert!(answer(apply("ln", 0.0)).contains("logarithm of zero"));
        assert!(answer(apply("log10", -1.0)).contains("logarithm of a negative"));
        assert!(answer(apply("acos", 2.0)).contains("input is out of range"));
        assert!(answer(apply("acosh", 0.5)).contains("input is out of range"));
        assert!(answer(apply("sin", f64::INFINITY)).contains("input is out of range"));
        assert_eq!(answer(apply("atanh", 1.0)), "inf");
        assert_eq!(answer(apply("acos", f64::NAN)), "NaN");
    }

    /// Each as PostgreSQL 15 (glibc's `strtod`) reads it.
    #[test]
    fn hexadecimal_text_is_read_as_strtod_reads_it() {
        let d = "double precision";
        for (text, want) in [
            ("0x1F", 31.0),
            ("-0x1.8p3", -12.0),
            (" 0x.8 ", 0.5),
            ("0x1p-1074", 5e-324),
            ("0X1P+10", 1024.0),
            ("0x1fffffffffffff", 9.007199254740991e15),
            ("0x123456789abcdef0123456789", 9.014404268289631e28),
        ] {
            assert_eq!(read(text, None, d).unwrap(), want, "{text}");
        }
        assert_eq!(
            read("0x1p127", None, "real").unwrap(),
            1.7014118346046923e38
        );
        for text in ["0x1p1024", "0x1p-1080"] {
            assert!(
                answer(read(text, None, d)).contains("out of range"),
                "{text}"
            );
        }
        assert!(answer(read("0x1p200", None, "real")).contains("out of range for type real"));
        for text in ["0x", "0x1p", "0x1g", "0x.", "0x1p+"] {
            assert!(
                answer(read(text, None, d)).contains("invalid input syntax"),
                "{text}"
            );
        }
    }

    #[test]
    fn text_out_of_range_or_no_number_is_refused() {
        let d = "double precision";
        assert!(
            answer(read(" 1e400 ", Some(f64::INFINITY), d)).contains("\"1e400\" is out of range")
        );
        assert!(answer(read("1e-400", Some(0.0), d)).contains("out of range"));
        assert!(answer(read("12abc", None, d)).contains("invalid input syntax"));
        assert_eq!(
            answer(read("-Infinity", Some(f64::NEG_INFINITY), d)),
            "-inf"
        );
        assert_eq!(answer(read("0e-500", Some(0.0), d)), "0");
        assert_eq!(answer(read("-0.000", Some(-0.0), d)), "-0");
        // A real's range: 1e39 and 1e-50 read as Infinity and 0.
        assert!(answer(read("1e39", Some(f64::INFINITY), "real")).contains("for type real"));
        assert!(answer(read("1e-50", Some(0.0), "real")).contains("out of range for type real"));
    }
}
