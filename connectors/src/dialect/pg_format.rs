//! PostgreSQL's `format`, `quote_literal`, `quote_nullable` and
//! `quote_ident` (issue 22; DataFusion 55 has none of them: `Invalid
//! function`).
//!
//! - `format(template, args...)`: `%s` (the value's text, as its output
//!   function prints it: [`super::pg_out`]; NULL is empty), `%I` (quoted
//!   as an identifier; NULL is refused), `%L` (quoted as a literal; NULL
//!   is `NULL`), `%%`, an argument's position (`%2$s`), `-` and a width
//!   (`%-10s`, `%*s`, `%*2$s`); anything else is PostgreSQL's error.
//! - `quote_literal(x)`: `x::text` in single quotes, quotes doubled, and
//!   backslashes doubled behind an `E` when there are any; NULL for NULL.
//!   `quote_nullable` answers `NULL` (the text) for NULL.
//! - `quote_ident(s)`: `s` in double quotes unless it is lower case
//!   letters, digits and underscores, starts with a letter or underscore
//!   and is not a keyword PostgreSQL reserves in any way.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::pg_out::{cast_text_of, text_of};
use crate::error::DataException;

/// The functions, for the session's registry.
pub fn functions() -> Vec<ScalarUDF> {
    [Kind::Format, Kind::Literal, Kind::Nullable, Kind::Ident]
        .into_iter()
        .map(|kind| {
            ScalarUDF::new_from_impl(Quoting {
                kind,
                signature: Signature::user_defined(Volatility::Immutable),
            })
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Kind {
    Format,
    Literal,
    Nullable,
    Ident,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Quoting {
    kind: Kind,
    signature: Signature,
}

/// The keywords PostgreSQL (16) quotes as identifiers: every keyword but
/// the unreserved ones (`SELECT word FROM pg_get_keywords() WHERE catcode
/// <> 'U'`).
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

/// `s` as PostgreSQL's `quote_ident` gives it.
pub fn quote_ident(s: &str) -> String {
    let safe = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && RESERVED.binary_search(&s).is_err();
    if safe {
        return s.to_string();
    }
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `s` as PostgreSQL's `quote_literal` gives it.
pub fn quote_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 3);
    if s.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// PostgreSQL's error for a bad `format` call (22023).
fn value(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn format_error(message: String) -> DataFusionError {
    DataException::error("22023", &message)
}

/// The longest text one `format` call gives: an Arrow string column
/// holds at most 2 GB, and a longer value was a panic that closed the
/// client's connection (PostgreSQL's own limit is 1 GB).
const MAX_FORMATTED: usize = 256 << 20;

/// One row of `format`: `template` with `args` (each value's text, None
/// for NULL) filled in.
fn format_row(template: &str, args: &[Option<&str>]) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    // The next argument a specifier without a position takes (0-based).
    let mut next = 0usize;
    let unterminated = || format_error("unterminated format() type specifier".into());
    let take = |i: usize| -> Result<Option<&str>> {
        match args.get(i) {
            Some(v) => Ok(*v),
            None => Err(format_error("too few arguments for format()".into())),
        }
    };
    // Digits then `$`: a position (1-based); digits alone: a width.
    // PostgreSQL reads them as an `int`: a larger one is "number is out
    // of range" (and was a 2 GB allocation, then a panic, here).
    fn number(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<Option<usize>> {
        let mut n: Option<usize> = None;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            let v = n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize);
            if v > i32::MAX as usize {
                return Err(format_error("number is out of range".into()));
            }
            n = Some(v);
            chars.next();
        }
        Ok(n)
    }
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        // %[position$][-][width|*|*position$]type
        let mut position = None;
        let mut left = false;
        let mut width: Option<i64> = None;
        let mut probe = chars.clone();
        if let Some(n) = number(&mut probe)?
            && probe.peek() == Some(&'$')
        {
            probe.next();
            if n == 0 {
                return Err(format_error(
                    "format specifies argument 0, but arguments are numbered from 1".into(),
                ));
            }
            position = Some(n - 1);
            chars = probe;
        }
        while chars.peek() == Some(&'-') {
            left = true;
            chars.next();
        }
        if chars.peek() == Some(&'*') {
            chars.next();
            let mut probe = chars.clone();
            let at = match number(&mut probe)? {
                Some(n) if probe.peek() == Some(&'$') => {
                    probe.next();
                    chars = probe;
                    if n == 0 {
                        return Err(format_error(
                            "format specifies argument 0, but arguments are numbered from 1".into(),
                        ));
                    }
                    n - 1
                }
                _ => {
                    let at = next;
                    next += 1;
                    at
                }
            };
            width = match take(at)? {
                None => None,
                Some(w) => Some(w.trim().parse::<i32>().map_err(|_| {
                    format_error(format!("invalid input syntax for type integer: \"{w}\""))
                })? as i64),
            };
        } else if let Some(n) = number(&mut chars)? {
            width = Some(n as i64);
        }
        let Some(kind) = chars.next() else {
            return Err(unterminated());
        };
        if !matches!(kind, 's' | 'I' | 'L') {
            return Err(format_error(format!(
                "unrecognized format() type specifier \"{kind}\""
            )));
        }
        let at = match position {
            Some(p) => p,
            None => next,
        };
        next = at + 1;
        let value = take(at)?;
        let text = match (kind, value) {
            ('s', v) => v.unwrap_or("").to_string(),
            ('L', None) => "NULL".to_string(),
            ('L', Some(v)) => quote_literal(v),
            (_, None) => {
                return Err(DataException::error(
                    "22004",
                    "null values cannot be formatted as an SQL identifier",
                ));
            }
            (_, Some(v)) => quote_ident(v),
        };
        let (left, width) = match width {
            Some(w) if w < 0 => (true, w.unsigned_abs() as usize),
            Some(w) => (left, w as usize),
            None => (left, 0),
        };
        let pad = width.saturating_sub(text.chars().count());
        if out.len() + text.len() + pad > MAX_FORMATTED {
            return Err(DataException::error(
                "54000",
                &format!(
                    "format() result would be longer than {} MB",
                    MAX_FORMATTED >> 20
                ),
            ));
        }
        if left {
            out.push_str(&text);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&text);
        }
    }
    Ok(out)
}

impl ScalarUDFImpl for Quoting {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Format => "format",
            Kind::Literal => "quote_literal",
            Kind::Nullable => "quote_nullable",
            Kind::Ident => "quote_ident",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let ok = match self.kind {
            Kind::Format => !args.is_empty(),
            Kind::Literal | Kind::Nullable | Kind::Ident => args.len() == 1,
        };
        if !ok {
            return super::pg_functions::no_function(self.name(), args);
        }
        // The template of `format` and the argument of `quote_ident` are
        // text; other values are printed here.
        Ok(args
            .iter()
            .enumerate()
            .map(|(i, t)| match (self.kind, i) {
                (Kind::Format, 0) | (Kind::Ident, _) => DataType::Utf8,
                _ => t.clone(),
            })
            .collect())
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        // `quote_literal(x)` is PostgreSQL's `quote_literal(x::text)`;
        // `format` prints with the output function.
        let texts: Vec<ArrayRef> = arrays
            .iter()
            .map(|a| match self.kind {
                Kind::Format => text_of(a),
                _ => cast_text_of(a),
            })
            .collect::<Result<_>>()?;
        let texts: Vec<&StringArray> = texts.iter().map(|a| a.as_string::<i32>()).collect();
        let out: StringArray = match self.kind {
            Kind::Literal => texts[0].iter().map(|v| v.map(quote_literal)).collect(),
            Kind::Nullable => texts[0]
                .iter()
                .map(|v| Some(v.map(quote_literal).unwrap_or_else(|| "NULL".into())))
                .collect(),
            Kind::Ident => texts[0].iter().map(|v| v.map(quote_ident)).collect(),
            Kind::Format => {
                let mut out = Vec::with_capacity(rows);
                for i in 0..texts[0].len() {
                    let Some(template) = value(texts[0], i) else {
                        out.push(None);
                        continue;
                    };
                    let values: Vec<Option<&str>> =
                        texts[1..].iter().map(|a| value(a, i)).collect();
                    out.push(Some(format_row(template, &values)?));
                }
                StringArray::from(out)
            }
        };
        super::pg_text::shaped_like(&args.args, Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_words_are_sorted() {
        assert!(RESERVED.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn format_fills_in_as_postgresql() {
        // Each as PostgreSQL 16 answers.
        let row = |t: &str, a: &[Option<&str>]| format_row(t, a).expect("formats");
        assert_eq!(
            row(
                "%s|%L|%I|%5s|%-5s|",
                &[Some("t"), Some("t"), Some("Foo"), Some("ab"), Some("cd")]
            ),
            "t|'t'|\"Foo\"|   ab|cd   |"
        );
        assert_eq!(
            row("%2$s %1$s %s", &[Some("a"), Some("b"), Some("c")]),
            "b a b"
        );
        assert_eq!(
            row("%*s|%*s|", &[Some("4"), Some("x"), Some("-4"), Some("x")]),
            "   x|x   |"
        );
        assert_eq!(row("%L %s.", &[None, None]), "NULL .");
        assert_eq!(row("100%% %I", &[Some("select")]), "100% \"select\"");
        assert!(format_row("%s %s", &[Some("a")]).is_err());
        assert!(format_row("%d", &[Some("1")]).is_err());
        assert!(format_row("%I", &[None]).is_err());
        assert!(format_row("abc %", &[]).is_err());
    }

    #[test]
    fn quoting_is_postgresqls() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b'c"), "E'a\\\\b''c'");
        assert_eq!(quote_ident("foo_1"), "foo_1");
        assert_eq!(quote_ident("Foo"), "\"Foo\"");
        assert_eq!(quote_ident("1a"), "\"1a\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("name"), "name");
        assert_eq!(quote_ident("ñandú"), "\"ñandú\"");
    }
}
