//! The one SQL lexer of the front doors and the engine: what is code and
//! what is a comment, a quoted string, a quoted identifier or a
//! dollar-quoted body, as PostgreSQL reads the text.
//!
//! It is DataFusion's own tokenizer (sqlparser, PostgreSQL dialect) with
//! each token's place in the text as byte offsets. Everything that reads
//! SQL text before the parser goes through it, so no two of them disagree
//! about where a comment ends:
//! - the statement limits (`crate::limits::check_sql_text`, both front
//!   doors and in-process) count parentheses and operators of code only
//!   ([`tokens`]: they need no places, so nothing but the tokenizer can
//!   make them let a text through);
//! - the Flight SQL front door numbers the `?` parameters of code only
//!   ([`number_placeholders`]). (It had a lexer of its own that knew `--`
//!   comments and single and double quotes, but not `/* */` comments,
//!   dollar quotes nor `E'...\'...'` strings.)
//! - the per-statement settings written as a leading `/*+ ... */` comment
//!   (`crate::hints`) are read from [`leading_comments`];
//! - PostgreSQL syntax sqlparser lacks (`REFRESH MATERIALIZED VIEW`,
//!   `trim(trailing FROM s)`) is rewritten over [`lex`] (`crate::sugar`).

use std::fmt::Write as _;

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer};

/// One token and the bytes of the text it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Lexeme {
    pub token: Token,
    pub start: usize,
    pub end: usize,
}

static DIALECT: PostgreSqlDialect = PostgreSqlDialect {};

fn tokenizer(sql: &str) -> Tokenizer<'_> {
    Tokenizer::new(&DIALECT, sql).with_unescape(false)
}

/// The tokens of `sql`, comments and whitespace included, in order.
/// `None` when the text cannot be tokenized (an unterminated string or
/// comment): the parser reports that with its own message.
pub fn tokens(sql: &str) -> Option<Vec<Token>> {
    tokenizer(sql).tokenize().ok()
}

/// [`tokens`] with the bytes of the text each was read from: they cover
/// the whole text, in order.
pub fn lex(sql: &str) -> Option<Vec<Lexeme>> {
    let tokens = tokenizer(sql).tokenize_with_location().ok()?;
    let mut at = Cursor::new(sql);
    tokens
        .into_iter()
        .map(|t| {
            let start = at.seek(t.span.start)?;
            let end = at.seek(t.span.end)?;
            Some(Lexeme {
                token: t.token,
                start,
                end,
            })
        })
        .collect()
}

/// ODBC/JDBC-style `?` parameters (what ADBC and JDBC send) become
/// DataFusion's `$1, $2, ...`, in code only: a `?` in a comment, a quoted
/// string or identifier, or a dollar-quoted body stays. PostgreSQL's
/// tokenizer reads `?|`, `?&`, `?-`, `?#` as operators; here the `?` of
/// such a token is a parameter too, followed by the rest of the token, as
/// a client that sends `?` for parameters means it. Text that cannot be
/// tokenized is returned as it is, for the parser to refuse.
pub fn number_placeholders(sql: &str) -> String {
    let Some(lexemes) = lex(sql) else {
        return sql.to_string();
    };
    let mut out = String::with_capacity(sql.len() + 8);
    let (mut copied, mut n) = (0, 0);
    for l in lexemes
        .iter()
        .filter(|l| starts_with_question_mark(&l.token))
    {
        out.push_str(&sql[copied..l.start]);
        n += 1;
        let _ = write!(out, "${n}");
        copied = l.start + 1;
    }
    out.push_str(&sql[copied..]);
    out
}

/// For each statement of `sql` (`;`-separated, empty ones skipped), the
/// text inside the `/* */` comments before its first token of code, in
/// order. `None` when the text cannot be tokenized (the parser reports
/// that).
pub fn leading_comments(sql: &str) -> Option<Vec<Vec<String>>> {
    use datafusion::sql::sqlparser::tokenizer::Whitespace;
    let mut out = Vec::new();
    let mut comments = Vec::new();
    let mut in_code = false;
    for token in tokens(sql)? {
        match token {
            Token::SemiColon => {
                in_code = false;
                comments.clear();
            }
            Token::Whitespace(Whitespace::MultiLineComment(body)) if !in_code => {
                comments.push(body)
            }
            Token::Whitespace(_) | Token::EOF => {}
            _ if !in_code => {
                in_code = true;
                out.push(std::mem::take(&mut comments));
            }
            _ => {}
        }
    }
    Some(out)
}

fn starts_with_question_mark(token: &Token) -> bool {
    match token {
        Token::Question
        | Token::QuestionAnd
        | Token::QuestionPipe
        | Token::QuestionMarkDash
        | Token::QuestionMarkDashVerticalBar
        | Token::QuestionMarkDoubleVerticalBar
        | Token::QuestionMarkSharp => true,
        Token::Placeholder(p) => p.starts_with('?'),
        _ => false,
    }
}

/// Turns the tokenizer's locations (line and column, counted in
/// characters from 1) into byte offsets, moving forward only: the tokens
/// come in order, so the whole text is walked once.
struct Cursor<'a> {
    sql: &'a str,
    byte: usize,
    line: u64,
    column: u64,
}

impl<'a> Cursor<'a> {
    fn new(sql: &'a str) -> Self {
        Cursor {
            sql,
            byte: 0,
            line: 1,
            column: 1,
        }
    }

    fn seek(&mut self, to: Location) -> Option<usize> {
        while (self.line, self.column) < (to.line, to.column) {
            let c = self.sql[self.byte..].chars().next()?;
            self.byte += c.len_utf8();
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        Some(self.byte)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cover_the_text_byte_for_byte() {
        for sql in [
            "SELECT 1",
            "SELECT 'ñandú', \"día\" -- comentário ¿?\nFROM t /* ∑ */ WHERE a = ?",
            "SELECT $$a\nb$$, $q$ ' $q$, E'it\\'s', 'o''k'\r\n;\tSELECT 2",
            "",
        ] {
            let lexemes = lex(sql).unwrap();
            let rebuilt: String = lexemes.iter().map(|l| &sql[l.start..l.end]).collect();
            assert_eq!(rebuilt, sql);
            assert!(lexemes.windows(2).all(|w| w[0].end == w[1].start));
            let plain: Vec<Token> = lexemes.into_iter().map(|l| l.token).collect();
            assert_eq!(Some(plain), tokens(sql));
        }
    }

    #[test]
    fn question_marks_become_numbered_in_code_only() {
        assert_eq!(
            number_placeholders(
                "SELECT a FROM t WHERE a = ? AND b = '?' AND \"c?\" = ? -- ?\nAND d = ?"
            ),
            "SELECT a FROM t WHERE a = $1 AND b = '?' AND \"c?\" = $2 -- ?\nAND d = $3"
        );
        assert_eq!(number_placeholders("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn block_comments_hide_question_marks_nested_too() {
        assert_eq!(
            number_placeholders("SELECT /* ? */ ?, /* a /* ? */ ? */ ?"),
            "SELECT /* ? */ $1, /* a /* ? */ ? */ $2"
        );
    }

    #[test]
    fn quoted_text_hides_question_marks() {
        assert_eq!(
            number_placeholders("SELECT 'it''s ?', \"a\"\"?\", E'\\'?', ?"),
            "SELECT 'it''s ?', \"a\"\"?\", E'\\'?', $1"
        );
        assert_eq!(
            number_placeholders("SELECT $$ ? $$, $tag$ '?' $tag$, ?"),
            "SELECT $$ ? $$, $tag$ '?' $tag$, $1"
        );
    }

    #[test]
    fn a_question_mark_glued_to_an_operator_is_still_a_parameter() {
        assert_eq!(
            number_placeholders("SELECT ?||'x', ?-1, (?)"),
            "SELECT $1||'x', $2-1, ($3)"
        );
    }

    #[test]
    fn places_are_bytes_after_multibyte_text_and_newlines() {
        assert_eq!(
            number_placeholders("SELECT 'ñ' AS \"ü\",\n  ?\n, ?"),
            "SELECT 'ñ' AS \"ü\",\n  $1\n, $2"
        );
    }

    #[test]
    fn leading_comments_belong_to_the_statement_they_open() {
        assert_eq!(
            leading_comments(
                "/*+ a */ /* b */ SELECT /* not */ 1; ; -- x\n/*+ c ; d */ SELECT ';/*+ e */'"
            ),
            Some(vec![
                vec!["+ a ".to_string(), " b ".to_string()],
                vec!["+ c ; d ".to_string()],
            ])
        );
        assert_eq!(leading_comments("SELECT 1"), Some(vec![vec![]]));
    }

    #[test]
    fn text_that_does_not_tokenize_is_left_to_the_parser() {
        assert!(lex("SELECT 'open").is_none());
        assert_eq!(number_placeholders("SELECT ?, 'open"), "SELECT ?, 'open");
        assert!(lex("SELECT /* open").is_none());
    }
}
