//! PostgreSQL syntax the SQL parser (sqlparser 0.62) does not read,
//! rewritten in the text to what it reads with the same meaning, before
//! either front door or the engine parses a statement. Comments, quoted
//! strings and case are PostgreSQL's: every rewrite reads the text
//! through the one lexer (`crate::lexer`).

use std::borrow::Cow;

use datafusion::sql::sqlparser::tokenizer::Token;

use quipu_connectors::dialect::syntax::BETWEEN_SYMMETRIC_MARKER;

use crate::lexer::Lexeme;

/// Every rewrite of this module: `REFRESH MATERIALIZED VIEW` as the cache
/// reads it (`crate::cache::desugar`), `trim` without characters
/// ([`trim_without_characters`]) and `BETWEEN SYMMETRIC`
/// ([`between_symmetric`]).
pub fn desugar(sql: &str) -> Cow<'_, str> {
    match crate::cache::desugar(sql) {
        Cow::Borrowed(sql) => match trim_without_characters(sql) {
            Cow::Borrowed(sql) => between_symmetric(sql),
            Cow::Owned(sql) => Cow::Owned(between_symmetric(&sql).into_owned()),
        },
        // A `CALL` of the cache's procedure: nothing else to rewrite.
        refresh @ Cow::Owned(_) => refresh,
    }
}

/// `x BETWEEN SYMMETRIC a AND b` with `SYMMETRIC` written as a marker
/// sqlparser reads, `x BETWEEN quipu_between_symmetric * a AND b`, which
/// `quipu_connectors::dialect::syntax` makes PostgreSQL's `(x BETWEEN a
/// AND b OR x BETWEEN b AND a)` (sqlparser 0.62 failed: "Expected: AND,
/// found: ..."). `BETWEEN ASYMMETRIC`, the default, loses its word.
pub fn between_symmetric(sql: &str) -> Cow<'_, str> {
    let Some(code) = code(sql) else {
        return Cow::Borrowed(sql);
    };
    let word = |l: &Lexeme, w: &str| is_word(l, &[w]);
    let marker = format!("{BETWEEN_SYMMETRIC_MARKER} *");
    let mut edits = Vec::new();
    for pair in code.windows(2) {
        if !word(&pair[0], "between") {
            continue;
        }
        if word(&pair[1], "symmetric") {
            edits.push((pair[1].start, pair[1].end, marker.as_str()));
        } else if word(&pair[1], "asymmetric") {
            edits.push((pair[1].start, pair[1].end, ""));
        }
    }
    spliced(sql, &edits)
}

/// `sql` with each byte range `start..end` of `edits` (in order, not
/// overlapping) replaced by its text; borrowed when there is none.
fn spliced<'a>(sql: &'a str, edits: &[(usize, usize, &str)]) -> Cow<'a, str> {
    if edits.is_empty() {
        return Cow::Borrowed(sql);
    }
    let extra: usize = edits.iter().map(|(_, _, with)| with.len()).sum();
    let mut out = String::with_capacity(sql.len() + extra);
    let mut copied = 0;
    for &(start, end, with) in edits {
        out.push_str(&sql[copied..start]);
        out.push_str(with);
        copied = end;
    }
    out.push_str(&sql[copied..]);
    Cow::Owned(out)
}

/// The tokens of `sql` that are code, with their places (None: it does not
/// tokenize; the parser will say why).
fn code(sql: &str) -> Option<Vec<Lexeme>> {
    let lexemes = crate::lexer::lex(sql)?;
    Some(
        lexemes
            .into_iter()
            .filter(|l| !matches!(l.token, Token::Whitespace(_)))
            .collect(),
    )
}

/// Whether `l` is one of `words`, unquoted, in any case.
fn is_word(l: &Lexeme, words: &[&str]) -> bool {
    matches!(&l.token, Token::Word(w)
        if w.quote_style.is_none() && words.iter().any(|x| w.value.eq_ignore_ascii_case(x)))
}

/// `trim([BOTH | LEADING | TRAILING] FROM s)` as `trim(... ' ' FROM s)`:
/// PostgreSQL trims spaces when no character is given, and sqlparser
/// wants the characters before `FROM` (it failed with "Expected: an
/// expression, found: FROM").
pub fn trim_without_characters(sql: &str) -> Cow<'_, str> {
    let Some(code) = code(sql) else {
        return Cow::Borrowed(sql);
    };
    let word = |i: usize, words: &[&str]| code.get(i).is_some_and(|l| is_word(l, words));
    // Where each `FROM` that wants a `' '` before it starts.
    let mut at = Vec::new();
    for i in 0..code.len() {
        // `trim` as a function, not a qualified name's last part.
        let qualified = i > 0 && code[i - 1].token == Token::Period;
        if qualified
            || !word(i, &["trim"])
            || code.get(i + 1).map(|l| &l.token) != Some(&Token::LParen)
        {
            continue;
        }
        let mut from = i + 2;
        if word(from, &["both", "leading", "trailing"]) {
            from += 1;
        }
        if word(from, &["from"]) {
            let a = code[from].start;
            at.push((a, a, "' ' "));
        }
    }
    spliced(sql, &at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_symmetric_becomes_a_marker_in_code_only() {
        assert_eq!(
            between_symmetric("SELECT x BETWEEN SYMMETRIC 10 AND 1, 'between symmetric' FROM t"),
            "SELECT x BETWEEN quipu_between_symmetric * 10 AND 1, 'between symmetric' FROM t"
        );
        assert_eq!(
            between_symmetric("SELECT x NOT BETWEEN asymmetric 1 AND 10"),
            "SELECT x NOT BETWEEN  1 AND 10"
        );
        assert_eq!(
            between_symmetric("SELECT symmetric FROM t"),
            "SELECT symmetric FROM t"
        );
    }

    #[test]
    fn trim_without_characters_trims_spaces() {
        let cases = [
            (
                "SELECT trim(trailing from s)",
                "SELECT trim(trailing ' ' from s)",
            ),
            (
                "SELECT TRIM(LEADING FROM s)",
                "SELECT TRIM(LEADING ' ' FROM s)",
            ),
            (
                "SELECT trim ( both\nfrom s)",
                "SELECT trim ( both\n' ' from s)",
            ),
            (
                "SELECT trim(from s), trim(from t)",
                "SELECT trim(' ' from s), trim(' ' from t)",
            ),
            (
                "SELECT trim(/* c */ both from s)",
                "SELECT trim(/* c */ both ' ' from s)",
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(trim_without_characters(sql), want, "{sql}");
        }
    }

    #[test]
    fn trim_with_characters_strings_and_other_names_stay() {
        for sql in [
            "SELECT trim(both 'x' from s)",
            "SELECT trim(s)",
            "SELECT 'trim(trailing from s)'",
            "SELECT \"trim\"(trailing from s)",
            "SELECT x.trim(trailing from s)",
            "SELECT trim -- (trailing from s)\n(s)",
            "SELECT trim(trailing s)",
        ] {
            assert!(
                matches!(trim_without_characters(sql), Cow::Borrowed(_)),
                "{sql}"
            );
        }
    }

    #[test]
    fn rewritten_text_parses_as_postgresql_means_it() {
        use datafusion::sql::sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
        let parse =
            |sql: &str| Parser::parse_sql(&PostgreSqlDialect {}, sql).map(|s| s[0].to_string());
        assert!(
            parse("SELECT trim(trailing from s)").is_err(),
            "sqlparser now reads it: drop the rewrite"
        );
        assert_eq!(
            parse(&desugar("SELECT trim(trailing from s)")).unwrap(),
            parse("SELECT trim(TRAILING ' ' FROM s)").unwrap()
        );
        // The cache's rewrite still applies.
        assert!(desugar("REFRESH MATERIALIZED VIEW m.v").starts_with("CALL "));
    }
}
