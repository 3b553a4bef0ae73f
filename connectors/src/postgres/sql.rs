//! DataFusion filters as PostgreSQL SQL, for the filters a remote query can
//! evaluate exactly as DataFusion would. Anything else returns `None` and
//! stays in DataFusion. Identifiers and literals are quoted here and only
//! here.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, expr::InList};
use datafusion::physical_expr::PhysicalExpr;

use crate::remote::join_keys::Cond;

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An escape-string literal (`E'...'`), safe whatever the server's
/// `standard_conforming_strings`. `None` for strings PostgreSQL cannot hold.
pub fn quote_literal(s: &str) -> Option<String> {
    if s.contains('\0') {
        return None;
    }
    Some(format!(
        "E'{}'",
        s.replace('\\', "\\\\").replace('\'', "''")
    ))
}

/// Renders a statement or expression made by DataFusion's SQL unparser with
/// every string literal quoted by [`quote_literal`] instead of by
/// sqlparser's `Display`.
///
/// sqlparser's escaping leaves a quote that follows a backslash alone (it
/// assumes the text is already escaped), so `'x\'' UNION ...'` broke out of
/// its literal in a pushed `GROUP BY` (issue 16). Each string literal is
/// swapped for a placeholder identifier, the statement is rendered, checked
/// to hold no quote, dollar, backslash, semicolon or comment outside
/// double-quoted identifiers, and each placeholder, found exactly once, is
/// replaced by its `E'...'` literal (a name in the query that spells a
/// placeholder makes the count differ and the push is refused). `None`: a
/// literal PostgreSQL cannot hold (NUL), or anything the check does not
/// accept; the caller then keeps the work in DataFusion.
///
/// Identifiers must be checked by the caller with [`ident_ok`]: sqlparser
/// renders them with the same escaping.
pub fn render_unparsed<T>(mut statement: T) -> Option<String>
where
    T: datafusion::sql::sqlparser::ast::VisitMut + std::fmt::Display,
{
    use datafusion::sql::sqlparser::ast::{self, Value};
    use std::ops::ControlFlow;

    let placeholder = |i: usize| format!("__quipu_lit_{i}");
    let string_of = |v: &Value| -> Option<String> {
        match v {
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::NationalStringLiteral(s)
            | Value::UnicodeStringLiteral(s)
            | Value::TripleSingleQuotedString(s)
            | Value::TripleDoubleQuotedString(s)
            | Value::DoubleQuotedString(s) => Some(s.clone()),
            Value::DollarQuotedString(d) => Some(d.value.clone()),
            _ => None,
        }
    };
    let mut literals: Vec<String> = Vec::new();
    let visited = ast::visit_expressions_mut(&mut statement, |e: &mut ast::Expr| {
        // DataFusion's unparser writes `IsNull(Not(c))` as `NOT c IS NULL`,
        // which PostgreSQL reads as `NOT (c IS NULL)` (IS binds tighter than
        // NOT): a wrong answer. Every operand of a postfix IS test that is not
        // a plain term gets its parentheses.
        if let ast::Expr::IsNull(x)
        | ast::Expr::IsNotNull(x)
        | ast::Expr::IsTrue(x)
        | ast::Expr::IsNotTrue(x)
        | ast::Expr::IsFalse(x)
        | ast::Expr::IsNotFalse(x)
        | ast::Expr::IsUnknown(x)
        | ast::Expr::IsNotUnknown(x) = e
            && !matches!(
                x.as_ref(),
                ast::Expr::Identifier(_)
                    | ast::Expr::CompoundIdentifier(_)
                    | ast::Expr::Value(_)
                    | ast::Expr::Nested(_)
                    | ast::Expr::Function(_)
                    | ast::Expr::Cast { .. }
            )
        {
            let inner = std::mem::replace(x.as_mut(), ast::Expr::Value(Value::Null.into()));
            **x = ast::Expr::Nested(Box::new(inner));
        }
        // DataFusion sums a smallint or integer column as bigint and writes
        // `sum(CAST(c AS BIGINT))`; PostgreSQL's sum of a bigint is
        // numeric, so `sum(...) / 3` became a numeric division, rounded
        // back to bigint (2 / 3 gave 1). The sum is cast back to bigint,
        // the type PostgreSQL gives `sum(integer)` and DataFusion planned.
        if let ast::Expr::Function(f) = e
            && f.name.to_string().eq_ignore_ascii_case("sum")
            && let ast::FunctionArguments::List(list) = &f.args
            && let [
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::Cast {
                    data_type: ast::DataType::BigInt(_) | ast::DataType::Int8(_),
                    ..
                })),
            ] = list.args.as_slice()
        {
            let sum = std::mem::replace(e, ast::Expr::Value(Value::Null.into()));
            *e = ast::Expr::Cast {
                kind: ast::CastKind::Cast,
                expr: Box::new(sum),
                data_type: ast::DataType::BigInt(None),
                array: false,
                format: None,
            };
            return ControlFlow::Continue(());
        }
        // The literal's text, and the type of a typed string (`DATE '...'`).
        let (text, data_type) = match e {
            ast::Expr::Value(v) => (string_of(&v.value), None),
            ast::Expr::TypedString(t) => (string_of(&t.value.value), Some(t.data_type.clone())),
            _ => (None, None),
        };
        let Some(text) = text else {
            return ControlFlow::Continue(());
        };
        let Some(quoted) = quote_literal(&text) else {
            return ControlFlow::Break(());
        };
        let id = ast::Expr::Identifier(ast::Ident::new(placeholder(literals.len())));
        literals.push(quoted);
        *e = match data_type {
            None => id,
            Some(data_type) => ast::Expr::Cast {
                kind: ast::CastKind::Cast,
                expr: Box::new(id),
                data_type,
                array: false,
                format: None,
            },
        };
        ControlFlow::Continue(())
    });
    if visited.is_break() {
        return None;
    }
    let text = statement.to_string();
    if !plain_outside_identifiers(&text) {
        tracing::debug!("not pushing a query whose rendering is not plain: {text}");
        return None;
    }
    // Substitute from the highest index down, so `_1` never matches the
    // start of `_10`.
    let mut out = text;
    for (i, quoted) in literals.iter().enumerate().rev() {
        let name = placeholder(i);
        if out.matches(&name).count() != 1 {
            return None;
        }
        out = out.replace(&name, quoted);
    }
    Some(out)
}

/// Whether SQL text holds nothing but plain tokens outside double-quoted
/// identifiers: no string or dollar quoting, no escapes, no statement
/// separator, no comments.
pub fn plain_outside_identifiers(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // A quoted identifier ends at a quote not followed by one.
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return false,
                        Some(b'"') if bytes.get(i + 1) == Some(&b'"') => i += 2,
                        Some(b'"') => break,
                        Some(0) => return false,
                        Some(_) => i += 1,
                    }
                }
            }
            b'\'' | b'$' | b'\\' | b';' | 0 => return false,
            b'-' if bytes.get(i + 1) == Some(&b'-') => return false,
            b'/' if bytes.get(i + 1) == Some(&b'*') => return false,
            _ => {}
        }
        i += 1;
    }
    true
}

/// Whether a name is rendered exactly as a quoted identifier by sqlparser.
/// Its escaping doubles a lone quote, but leaves a quote after a backslash
/// alone (PostgreSQL then ends the identifier there: an injection) and
/// prints two quotes in a row as they are (a different name). Names with
/// a backslash, two quotes in a row or NUL are not pushed inside unparsed
/// queries; a single quote, as in DataFusion's own `Utf8("x")` column
/// names, is fine.
pub fn ident_ok(name: &str) -> bool {
    !name.contains(['\\', '\0']) && !name.contains("\"\"")
}

fn column<'a>(e: &'a Expr, schema: &'a Schema) -> Option<(&'a str, &'a DataType)> {
    match e {
        Expr::Column(c) => schema
            .field_with_name(&c.name)
            .ok()
            .map(|f| (f.name().as_str(), f.data_type())),
        _ => None,
    }
}

/// A value as a PostgreSQL literal (None: not expressible, or NULL).
pub fn sql_literal(v: &ScalarValue) -> Option<String> {
    use ScalarValue::*;
    Some(match v {
        _ if v.is_null() => return None,
        Boolean(Some(b)) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Int8(Some(x)) => x.to_string(),
        Int16(Some(x)) => x.to_string(),
        Int32(Some(x)) => x.to_string(),
        Int64(Some(x)) => x.to_string(),
        UInt8(Some(x)) => x.to_string(),
        UInt16(Some(x)) => x.to_string(),
        UInt32(Some(x)) => x.to_string(),
        UInt64(Some(x)) => x.to_string(),
        Float32(Some(x)) if x.is_finite() => format!("{x:?}::float8"),
        Float64(Some(x)) if x.is_finite() => format!("{x:?}::float8"),
        Utf8(Some(s)) | LargeUtf8(Some(s)) | Utf8View(Some(s)) => quote_literal(s)?,
        Decimal128(Some(x), _, s) => {
            let s = *s as u32;
            let sign = if *x < 0 { "-" } else { "" };
            let a = x.unsigned_abs();
            let p = 10u128.pow(s);
            if s == 0 {
                format!("{sign}{a}")
            } else {
                format!("{sign}{}.{:0width$}", a / p, a % p, width = s as usize)
            }
        }
        Date32(Some(d)) => {
            let date = chrono_date(*d)?;
            format!("'{date}'::date")
        }
        TimestampSecond(Some(t), tz) => ts(*t as i128 * 1_000_000, tz.is_some())?,
        TimestampMillisecond(Some(t), tz) => ts(*t as i128 * 1_000, tz.is_some())?,
        TimestampMicrosecond(Some(t), tz) => ts(*t as i128, tz.is_some())?,
        TimestampNanosecond(Some(t), tz) => {
            if t % 1000 != 0 {
                return None;
            }
            ts(*t as i128 / 1000, tz.is_some())?
        }
        _ => return None,
    })
}

fn chrono_date(days: i32) -> Option<String> {
    let d = datafusion::arrow::temporal_conversions::date32_to_datetime(days)?;
    Some(d.format("%Y-%m-%d").to_string())
}

fn ts(micros: i128, tz: bool) -> Option<String> {
    let m: i64 = micros.try_into().ok()?;
    let t = datafusion::arrow::temporal_conversions::timestamp_us_to_datetime(m)?;
    let text = t.format("%Y-%m-%d %H:%M:%S%.6f");
    Some(if tz {
        format!("'{text}+00'::timestamptz")
    } else {
        format!("'{text}'::timestamp")
    })
}

fn comparable(t: &DataType, op: Operator) -> bool {
    match t {
        // Text order depends on the server's collation: only (in)equality.
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            matches!(op, Operator::Eq | Operator::NotEq)
        }
        DataType::Binary => false,
        _ => true,
    }
}

fn flip(op: Operator) -> Option<Operator> {
    Some(match op {
        Operator::Eq | Operator::NotEq => op,
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        _ => return None,
    })
}

fn sql_op(op: Operator) -> Option<&'static str> {
    Some(match op {
        Operator::Eq => "=",
        Operator::NotEq => "<>",
        Operator::Lt => "<",
        Operator::LtEq => "<=",
        Operator::Gt => ">",
        Operator::GtEq => ">=",
        _ => return None,
    })
}

/// The filter as a PostgreSQL boolean expression over the table's columns.
/// A column as a comparison's operand. Text columns are compared as
/// `text`, the type they are read as: a `citext` column compared as itself
/// ignores case, and `WHERE c <> 'a'` dropped the row `'A'` DataFusion
/// keeps (the cast is free for `text` and `varchar`).
fn operand((name, t): (&str, &DataType), schema: &Schema) -> String {
    match (t, schema.field_with_name(name)) {
        (DataType::Utf8, Ok(f)) => text_read(&quote_ident(name), f),
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, _) => {
            format!("{}::text", quote_ident(name))
        }
        _ => quote_ident(name),
    }
}

/// `column` (SQL) of a column Quipu reads as text, as the text Quipu
/// reads: `column::text`, but for an `inet` (its field marked so,
/// `dialect::text_order`) `abbrev(column)`, the text PostgreSQL prints;
/// its cast to text adds the netmask of one address (`10.0.0.2/32` where
/// PostgreSQL prints `10.0.0.2`, and a pushed `ip = '10.0.0.2'` matched
/// nothing).
pub fn text_read(column: &str, field: &datafusion::arrow::datatypes::Field) -> String {
    let of = field.metadata().get(crate::dialect::text_order::TEXT_OF);
    match of.map(String::as_str) {
        Some("inet") => format!("abbrev({column})"),
        _ => format!("{column}::text"),
    }
}

pub fn filter_to_sql(e: &Expr, schema: &Schema) -> Option<String> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And | Operator::Or => {
                let (l, r) = (filter_to_sql(left, schema)?, filter_to_sql(right, schema)?);
                Some(format!(
                    "({l} {} {r})",
                    if *op == Operator::And { "AND" } else { "OR" }
                ))
            }
            _ => {
                let (col, op, lit) = match (column(left, schema), column(right, schema)) {
                    (Some(c), None) => (c, *op, right.as_ref()),
                    (None, Some(c)) => (c, flip(*op)?, left.as_ref()),
                    _ => return None,
                };
                let Expr::Literal(v, _) = lit else {
                    return None;
                };
                if !comparable(col.1, op) {
                    return None;
                }
                Some(format!(
                    "{} {} {}",
                    operand(col, schema),
                    sql_op(op)?,
                    sql_literal(v)?
                ))
            }
        },
        Expr::Not(inner) => Some(format!("NOT ({})", filter_to_sql(inner, schema)?)),
        Expr::IsNull(inner) => Some(format!("{} IS NULL", quote_ident(column(inner, schema)?.0))),
        Expr::IsNotNull(inner) => Some(format!(
            "{} IS NOT NULL",
            quote_ident(column(inner, schema)?.0)
        )),
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) => {
            let col = column(expr, schema)?;
            let items = list
                .iter()
                .map(|i| match i {
                    Expr::Literal(v, _) => sql_literal(v),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            if items.is_empty() {
                return None;
            }
            Some(format!(
                "{} {}IN ({})",
                operand(col, schema),
                if *negated { "NOT " } else { "" },
                items.join(", ")
            ))
        }
        _ => None,
    }
}

/// The join keys a hash join published (`crate::remote::join_keys`), as
/// SQL conditions on `f."cN"` (the
/// scan's output columns by position).
pub fn join_keys_sql(filters: &[Arc<dyn PhysicalExpr>], schema: &Schema) -> Vec<String> {
    fn render(c: &Cond, schema: &Schema) -> Option<String> {
        let col = |i: usize| format!("f.\"c{i}\"");
        match c {
            Cond::False => Some("FALSE".into()),
            Cond::And(parts) => {
                let parts: Vec<String> = parts.iter().filter_map(|p| render(p, schema)).collect();
                (!parts.is_empty()).then(|| format!("({})", parts.join(" AND ")))
            }
            Cond::Or(parts) => {
                let parts = parts
                    .iter()
                    .map(|p| render(p, schema))
                    .collect::<Option<Vec<_>>>()?;
                Some(format!("({})", parts.join(" OR ")))
            }
            Cond::In(i, values) => {
                schema.fields().get(*i)?;
                // NULL keys never match an equi-join.
                let values: Vec<String> = values
                    .iter()
                    .filter(|v| !v.is_null())
                    .map(sql_literal)
                    .collect::<Option<Vec<_>>>()?;
                if values.is_empty() {
                    return Some("FALSE".into());
                }
                Some(format!("{} IN ({})", col(*i), values.join(", ")))
            }
            Cond::Cmp(i, op, v) => {
                let t = schema.fields().get(*i)?.data_type();
                // String order depends on the remote collation.
                if !(t.is_integer()
                    || t.is_floating()
                    || matches!(
                        t,
                        DataType::Decimal128(..) | DataType::Date32 | DataType::Timestamp(..)
                    ))
                {
                    return None;
                }
                let sql_op = match op {
                    Operator::Eq => "=",
                    Operator::Lt => "<",
                    Operator::LtEq => "<=",
                    Operator::Gt => ">",
                    Operator::GtEq => ">=",
                    _ => return None,
                };
                Some(format!("{} {sql_op} {}", col(*i), sql_literal(v)?))
            }
        }
    }
    crate::remote::join_keys::current(filters)
        .iter()
        .filter_map(|c| render(c, schema))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use datafusion::logical_expr::{col, lit};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("a\"b", DataType::Utf8, true),
        ])
    }

    fn parsed(sql: &str) -> datafusion::sql::sqlparser::ast::Statement {
        use datafusion::sql::sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    /// Sets every string literal of a statement to `text`, as the unparser
    /// would hold a user's literal.
    fn with_literal(
        mut st: datafusion::sql::sqlparser::ast::Statement,
        text: &str,
    ) -> datafusion::sql::sqlparser::ast::Statement {
        use datafusion::sql::sqlparser::ast::{self, Value};
        let _ = ast::visit_expressions_mut(&mut st, |e: &mut ast::Expr| {
            if let ast::Expr::Value(v) = e
                && let Value::SingleQuotedString(s) = &mut v.value
            {
                *s = text.to_string();
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        st
    }

    #[test]
    fn is_tests_keep_their_operand_together() {
        use datafusion::sql::sqlparser::ast::{self, Expr as A};
        // The AST the unparser builds for `(NOT c) IS NULL` prints without
        // parentheses; rendered, it must keep them.
        let mut st = parsed("SELECT 1 FROM t WHERE c IS NULL");
        let _ = ast::visit_expressions_mut(&mut st, |e: &mut A| {
            if let A::IsNull(x) = e
                && matches!(x.as_ref(), A::Identifier(_))
            {
                let c = std::mem::replace(x.as_mut(), A::Value(ast::Value::Null.into()));
                **x = A::UnaryOp {
                    op: ast::UnaryOperator::Not,
                    expr: Box::new(c),
                };
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        assert!(st.to_string().ends_with("WHERE NOT c IS NULL"), "{st}");
        assert_eq!(
            render_unparsed(st).unwrap(),
            "SELECT 1 FROM t WHERE (NOT c) IS NULL"
        );
    }

    #[test]
    fn unparsed_literals_are_quoted_by_our_rules() {
        let evil = "x\\') UNION ALL SELECT secret FROM hidden.payroll --";
        let st = with_literal(
            parsed("SELECT a, count(*) FROM t WHERE b = 'p' GROUP BY a"),
            evil,
        );
        // sqlparser's own rendering leaves the quote after the backslash.
        assert!(st.to_string().contains("'x\\') UNION ALL"), "{st}");
        let sql = render_unparsed(st).unwrap();
        assert_eq!(
            sql,
            "SELECT a, count(*) FROM t WHERE b = E'x\\\\'') UNION ALL SELECT secret FROM hidden.payroll --' GROUP BY a"
        );
        // Many literals, substituted without one clobbering another.
        let st = parsed("SELECT 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l' FROM t");
        assert_eq!(
            render_unparsed(st).unwrap(),
            "SELECT E'a', E'b', E'c', E'd', E'e', E'f', E'g', E'h', E'i', E'j', E'k', E'l' FROM t"
        );
        // A typed string keeps its type.
        let st = parsed("SELECT a FROM t WHERE d = DATE '2026-01-02'");
        assert_eq!(
            render_unparsed(st).unwrap(),
            "SELECT a FROM t WHERE d = CAST(E'2026-01-02' AS DATE)"
        );
        // NUL cannot be held by PostgreSQL text: not pushed.
        let st = with_literal(parsed("SELECT a FROM t WHERE b = 'p'"), "a\0b");
        assert_eq!(render_unparsed(st), None);
        // A literal or a name that spells a placeholder cannot fool the
        // substitution: the push is refused.
        let st = parsed("SELECT 'x', '__quipu_lit_0' FROM t");
        assert_eq!(render_unparsed(st), None);
        let st = parsed("SELECT 'x' AS \"__quipu_lit_0\" FROM t");
        assert_eq!(render_unparsed(st), None);
    }

    #[test]
    fn plain_text_check_finds_every_escape_route() {
        assert!(plain_outside_identifiers(
            "SELECT \"a\"\"b\" FROM \"t;--\" WHERE x = 1"
        ));
        for bad in [
            "SELECT 'a'",
            "SELECT $$a$$",
            "SELECT a; DROP TABLE t",
            "SELECT a -- c",
            "SELECT a /* c */",
            "SELECT E\\'a",
            "SELECT \"unterminated",
            "SELECT \"a\0\"",
        ] {
            assert!(!plain_outside_identifiers(bad), "{bad}");
        }
        assert!(ident_ok("customer_id") && ident_ok("sum(Utf8(\"x\"))"));
        assert!(!ident_ok("a\\\"b") && !ident_ok("a\"\"b") && !ident_ok("a\0"));
        // What sqlparser prints for the names ident_ok accepts is exactly
        // PostgreSQL's quoting; for the others it is not.
        use datafusion::sql::sqlparser::ast::Ident;
        let pg = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
        for n in ["a\"b", "Utf8(\"x\")", "\"", "x\"y\"z"] {
            assert_eq!(Ident::with_quote('"', n).to_string(), pg(n), "{n}");
        }
        for n in ["a\\\"b", "a\"\"b"] {
            assert_ne!(Ident::with_quote('"', n).to_string(), pg(n), "{n}");
        }
    }

    #[test]
    fn quoting_is_safe() {
        let s = schema();
        let e = col("a\"b").eq(lit("O'Brien \\' OR 1=1 --"));
        assert_eq!(
            filter_to_sql(&e, &s).unwrap(),
            "\"a\"\"b\"::text = E'O''Brien \\\\'' OR 1=1 --'"
        );
        assert_eq!(filter_to_sql(&col("a\"b").eq(lit("x\0y")), &s), None);
        let e = col("id")
            .gt(lit(5i64))
            .and(col("id").in_list(vec![lit(1i64), lit(2i64)], true));
        assert_eq!(
            filter_to_sql(&e, &s).unwrap(),
            "(\"id\" > 5 AND \"id\" NOT IN (1, 2))"
        );
        // Text ranges depend on collation: not pushed.
        assert_eq!(filter_to_sql(&col("a\"b").lt(lit("m")), &s), None);
        assert_eq!(
            filter_to_sql(&lit(3i64).lt(col("id")), &s).unwrap(),
            "\"id\" > 3"
        );
    }

    #[test]
    fn join_keys_in_lists_and_numeric_ranges_are_sent_string_ranges_are_not() {
        use crate::remote::join_keys::fixtures;
        let s = fixtures::schema();
        assert_eq!(
            join_keys_sql(&[fixtures::sku_range_and_list()], &s),
            vec!["(f.\"c0\" IN (E'O''Brien', E'SKU-1'))".to_string()]
        );
        let r = fixtures::range(1, ScalarValue::Int64(Some(3)), ScalarValue::Int64(Some(9)));
        assert_eq!(
            join_keys_sql(&[r], &s),
            vec!["(f.\"c1\" >= 3 AND f.\"c1\" <= 9)".to_string()]
        );
    }

    /// `sum(integer)` is bigint in PostgreSQL and DataFusion; DataFusion's
    /// `sum(CAST(c AS BIGINT))` is numeric in PostgreSQL unless cast back.
    #[test]
    fn sums_of_integers_stay_bigint_at_the_source() {
        use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
        use datafusion::sql::sqlparser::parser::Parser;
        let parse = |sql: &str| {
            Parser::parse_sql(&PostgreSqlDialect {}, sql)
                .unwrap()
                .remove(0)
        };
        let sql = render_unparsed(parse(
            "SELECT sum(CAST(c AS BIGINT)) / 3, sum(n), sum(CAST(c AS BIGINT)) OVER () FROM t",
        ))
        .unwrap();
        assert_eq!(
            sql,
            "SELECT CAST(sum(CAST(c AS BIGINT)) AS BIGINT) / 3, sum(n), \
             CAST(sum(CAST(c AS BIGINT)) OVER () AS BIGINT) FROM t"
        );
    }
}
