//! `SIMILAR TO` as PostgreSQL means it (issue 22).
//!
//! DataFusion 55 reads a `SIMILAR TO` pattern as a POSIX regular expression
//! (`'dark green' SIMILAR TO '%(green|blue)%'` was false, PostgreSQL says
//! true), so Quipu rewrites every `SIMILAR TO` with a constant pattern into
//! a regular-expression match on the pattern PostgreSQL itself would build
//! (`similar_escape` in PostgreSQL's `utils/adt/regexp.c`): the whole
//! string must match; `%` is `.*` and `_` is `.` outside bracket
//! expressions; `.`, `^`, `$` and `\` are literal; the escape character
//! (default `\`, none with `ESCAPE ''`) makes the next character literal;
//! `|`, `*`, `+`, `?`, `{m,n}`, `( )` and `[ ]` keep their regex meaning. A
//! pattern that is not a constant is refused with a clear error rather
//! than given DataFusion's meaning.

use datafusion::common::ScalarValue;
use datafusion::common::tree_node::Transformed;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::Like;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};

/// `plan` with every `SIMILAR TO` rewritten (subqueries included).
/// Output columns keep the names they were planned with: a `GROUP BY s
/// SIMILAR TO ...` is found by the projection above it by that name (it
/// failed with "type_coercion" when the rewrite renamed it).
pub fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    crate::rounding::rewrite_typed(plan, |e, _| rewrite_expr(e))
}

/// A constant text argument: `Some(text)`, `Some(None)` for a NULL, `None`
/// when it is not a constant (shared with `crate::formats`).
pub(crate) fn constant_text(e: &Expr) -> Option<Option<String>> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(p) | ScalarValue::LargeUtf8(p) | ScalarValue::Utf8View(p),
            _,
        ) => Some(p.clone()),
        Expr::Literal(v, _) if v.is_null() => Some(None),
        _ => None,
    }
}

fn rewrite_expr(e: Expr) -> Result<Transformed<Expr>> {
    let Expr::SimilarTo(Like {
        negated,
        expr,
        pattern,
        escape_char,
        case_insensitive,
    }) = e
    else {
        return Ok(Transformed::no(e));
    };
    let text = match constant_text(pattern.as_ref()) {
        Some(text) => text,
        None => {
            let other = pattern.as_ref();
            return Err(DataFusionError::NotImplemented(format!(
                "SIMILAR TO with a pattern that is not a constant string ({other}) is not \
                 supported; use a constant pattern or a regular expression (~)"
            )));
        }
    };
    let Some(text) = text else {
        // NULL pattern: NULL, as in PostgreSQL.
        return Ok(Transformed::yes(Expr::Literal(
            ScalarValue::Boolean(None),
            None,
        )));
    };
    let regex = similar_to_regex(&text, escape_char.or(Some('\\')))?;
    let op = match (negated, case_insensitive) {
        (false, false) => Operator::RegexMatch,
        (true, false) => Operator::RegexNotMatch,
        (false, true) => Operator::RegexIMatch,
        (true, true) => Operator::RegexNotIMatch,
    };
    Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
        expr,
        op,
        Box::new(Expr::Literal(ScalarValue::Utf8(Some(regex)), None)),
    ))))
}

/// The regular expression PostgreSQL matches for `SIMILAR TO pattern`
/// (`escape`: the escape character, None for none), in the syntax of
/// Rust's `regex` crate, which DataFusion uses: `(?s)` makes `.` match a
/// newline as PostgreSQL's does, and an escaped letter or digit is written
/// bare (the crate refuses unknown escapes such as `\q`).
pub fn similar_to_regex(pattern: &str, escape: Option<char>) -> Result<String> {
    let mut out = String::from("(?s)^(?:");
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            let Some(next) = chars.next() else {
                return Err(DataFusionError::Plan(
                    "invalid SIMILAR TO pattern: it ends with the escape character".into(),
                ));
            };
            if next == '"' {
                return Err(DataFusionError::NotImplemented(
                    "SIMILAR TO with the substring separator (escape followed by \") is not \
                     supported"
                        .into(),
                ));
            }
            push_literal(&mut out, next);
            continue;
        }
        if in_class {
            if c == ']' {
                in_class = false;
            }
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                // A `]` or `^]` right after `[` is a member, not the end.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap());
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
            }
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '(' => out.push_str("(?:"),
            '.' | '^' | '$' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push_str(")$");
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    if c.is_alphanumeric() || c == '_' || c == ' ' || !c.is_ascii() {
        out.push(c);
    } else {
        out.push('\\');
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(text: &str, pattern: &str) -> bool {
        let re = regex::Regex::new(&similar_to_regex(pattern, Some('\\')).unwrap()).unwrap();
        re.is_match(text)
    }

    /// PostgreSQL's answers (psql 16) for the same pairs.
    #[test]
    fn patterns_mean_what_postgresql_means() {
        for (text, pattern, want) in [
            ("dark green", "%(green|blue)%", true),
            ("dark green", ".*green.*", false),
            ("abc", "abc", true),
            ("abc", "a", false),
            ("abc", "_b_", true),
            ("abc", "%(b|d)%", true),
            ("abc", "(b|c)%", false),
            ("a.c", "a.c", true),
            ("abc", "a.c", false),
            ("a%c", "a\\%c", true),
            ("abc", "a\\%c", false),
            ("aaa", "a*", true),
            ("aab", "a+b", true),
            ("ab", "a{2}b", false),
            ("aab", "a{2}b", true),
            ("b", "[a-c]", true),
            ("d", "[a-c]", false),
            ("%", "[%]", true),
            ("x", "[%]", false),
            ("line\nbreak", "line%", true),
            ("$5", "$5", true),
            ("a^b", "a^b", true),
        ] {
            assert_eq!(
                matches(text, pattern),
                want,
                "{text:?} SIMILAR TO {pattern:?}"
            );
        }
    }

    #[test]
    fn escape_characters() {
        let re = similar_to_regex("a#%b", Some('#')).unwrap();
        let re = regex::Regex::new(&re).unwrap();
        assert!(re.is_match("a%b") && !re.is_match("axb"));
        // No escape character: a backslash is literal.
        let re = regex::Regex::new(&similar_to_regex("a\\%", None).unwrap()).unwrap();
        assert!(re.is_match("a\\xyz"));
        assert!(similar_to_regex("abc\\", Some('\\')).is_err());
    }
}
