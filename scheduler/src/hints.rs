//! Per-statement freshness settings, for clients that cannot send `SET`
//! (BI tools that send one statement as the user wrote it, pooled
//! connections whose settings another user may have changed):
//!
//! ```sql
//! /*+ quipu.max_staleness = '5 minutes' quipu.stale_cache = 'error' */
//! SELECT ... FROM yachay.customer_360 WHERE customer_id = 42
//! ```
//!
//! A `/*+ ... */` comment before a statement's first word sets, for that
//! statement only, `quipu.max_staleness` and `quipu.stale_cache` over the
//! session's values. The comment is read by the one lexer
//! ([`crate::lexer::leading_comments`]), so a `/*+` inside a string or
//! after the first word is text or an ordinary comment. Anything else in
//! such a comment is an error naming it (a hint Quipu would silently
//! ignore is a freshness bound the user believes holds); a malformed value
//! is the error `SET` gives for it. Flight SQL calls may carry the same
//! settings as headers (`x-quipu-max-staleness`, `x-quipu-stale-cache`);
//! a hint in the statement wins over a header.

use datafusion::config::ExtensionOptions;
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::tokenizer::Token;
use quipu_connectors::QuipuOptions;

use crate::error::{Result, SchedulerError};

/// The settings a statement may set for itself.
pub const KEYS: [&str; 2] = ["max_staleness", "stale_cache"];

/// Settings for one statement: `(key, value)` pairs, keys without the
/// `quipu.` prefix, each value checked as `SET` checks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints(Vec<(String, String)>);

fn unknown(what: &str, place: &str) -> SchedulerError {
    SchedulerError::Query(DataFusionError::Plan(format!(
        "unknown hint {what} in {place}; a statement may set only quipu.max_staleness and quipu.stale_cache"
    )))
}

impl Hints {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `quipu.<key> = value` (`key` without the prefix); the value is
    /// checked as `SET` checks it, with the same error.
    pub fn set(&mut self, key: &str, value: &str, place: &str) -> Result<()> {
        let key = key.to_ascii_lowercase();
        if !KEYS.contains(&key.as_str()) {
            return Err(unknown(&format!("quipu.{key}"), place));
        }
        QuipuOptions::default()
            .set(&key, value)
            .map_err(SchedulerError::Query)?;
        self.0.retain(|(k, _)| *k != key);
        self.0.push((key, value.to_string()));
        Ok(())
    }

    /// These settings, with `under`'s for the keys these do not set.
    pub fn over(&self, under: &Hints) -> Hints {
        let mut out = under.clone();
        for (k, v) in &self.0 {
            out.0.retain(|(x, _)| x != k);
            out.0.push((k.clone(), v.clone()));
        }
        out
    }

    /// The session's options with these settings over them.
    pub fn apply(&self, opts: &mut QuipuOptions) -> Result<()> {
        for (k, v) in &self.0 {
            opts.set(k, v).map_err(SchedulerError::Query)?;
        }
        Ok(())
    }

    /// The settings of one `/*+ ... */` comment's text (after the `+`).
    fn parse_comment(&mut self, body: &str) -> Result<()> {
        const PLACE: &str = "a /*+ */ comment";
        let Some(tokens) = crate::lexer::tokens(body) else {
            return Err(unknown(&format!("`{}`", body.trim()), PLACE));
        };
        let mut code = tokens
            .into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_) | Token::EOF))
            .peekable();
        while let Some(first) = code.next() {
            if first == Token::Comma {
                continue;
            }
            // quipu . key = value
            let (Token::Word(prefix), Some(Token::Period), Some(Token::Word(key))) =
                (&first, code.next(), code.next())
            else {
                return Err(unknown(&format!("`{first}`"), PLACE));
            };
            if !prefix.value.eq_ignore_ascii_case("quipu") {
                return Err(unknown(&format!("{}.{}", prefix.value, key.value), PLACE));
            }
            let name = format!("quipu.{}", key.value);
            if !KEYS.contains(&key.value.to_ascii_lowercase().as_str()) {
                return Err(unknown(&name, PLACE));
            }
            if !matches!(code.next(), Some(Token::Eq)) {
                return Err(SchedulerError::Query(DataFusionError::Plan(format!(
                    "hint {name} in {PLACE}: expected {name} = 'value'"
                ))));
            }
            let value = match code.next() {
                Some(Token::SingleQuotedString(v)) => v.replace("''", "'"),
                Some(Token::Number(n, _)) => n,
                Some(Token::Word(w)) => w.value,
                _ => {
                    return Err(SchedulerError::Query(DataFusionError::Plan(format!(
                        "hint {name} in {PLACE}: expected {name} = 'value'"
                    ))));
                }
            };
            self.set(&key.value, &value, PLACE)?;
        }
        Ok(())
    }
}

/// The hints of each statement of `sql`, in order (one per statement the
/// parser will find; empty when a statement has none). Text that does
/// not tokenize gives none: the parser reports it.
pub fn of_text(sql: &str) -> Result<Vec<Hints>> {
    let Some(heads) = crate::lexer::leading_comments(sql) else {
        return Ok(vec![]);
    };
    heads
        .into_iter()
        .map(|comments| {
            let mut hints = Hints::default();
            for body in comments {
                if let Some(body) = body.strip_prefix('+') {
                    hints.parse_comment(body)?;
                }
            }
            Ok(hints)
        })
        .collect()
}

/// Statements paired with their hints ([`of_text`]); when the counts
/// differ (the lexer and the parser disagree on where statements end,
/// which a test would have to show), the statements get none but the
/// text's first, and only when it is one statement.
pub fn zip<S>(statements: Vec<S>, hints: Vec<Hints>) -> Vec<(S, Hints)> {
    if statements.len() == hints.len() {
        return statements.into_iter().zip(hints).collect();
    }
    statements
        .into_iter()
        .map(|s| (s, Hints::default()))
        .collect()
}

/// The hints of a Flight SQL call's headers (`x-quipu-max-staleness`,
/// `x-quipu-stale-cache`); other `x-quipu-` headers are an error naming
/// them.
pub fn of_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Hints> {
    let mut hints = Hints::default();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let Some(key) = name.strip_prefix("x-quipu-") else {
            continue;
        };
        let key = key.replace('-', "_");
        if !KEYS.contains(&key.as_str()) {
            return Err(SchedulerError::Query(DataFusionError::Plan(format!(
                "unknown header {name}; a call may set only x-quipu-max-staleness and x-quipu-stale-cache"
            ))));
        }
        hints.set(&key, value, "a header")?;
    }
    Ok(hints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(sql: &str) -> std::result::Result<Vec<Hints>, String> {
        of_text(sql).map_err(|e| e.to_string())
    }

    #[test]
    fn a_leading_hint_sets_freshness_for_its_statement_only() {
        let got = hints(
            "/*+ quipu.max_staleness = '5 minutes' quipu.stale_cache = 'error' */ SELECT 1; SELECT 2",
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        let mut opts = QuipuOptions::default();
        got[0].apply(&mut opts).unwrap();
        assert_eq!(
            opts.max_staleness,
            Some(std::time::Duration::from_secs(300))
        );
        assert_eq!(opts.stale_cache.to_string(), "error");
        assert!(got[1].is_empty());
        // Commas between settings, upper case, a number for '0'.
        let got =
            hints("/*+ QUIPU.MAX_STALENESS = 0, quipu.stale_cache = wait */ SELECT 1").unwrap();
        let mut opts = QuipuOptions::default();
        got[0].apply(&mut opts).unwrap();
        assert_eq!(opts.max_staleness, Some(std::time::Duration::ZERO));
        // An ordinary comment, or a /*+ after the first word, is a comment.
        assert!(hints("/* quipu.nonsense */ SELECT /*+ x */ 1").unwrap()[0].is_empty());
        assert!(hints("SELECT '/*+ quipu.x = 1 */'").unwrap()[0].is_empty());
    }

    #[test]
    fn anything_else_in_a_hint_is_one_error_naming_it() {
        let e = hints("/*+ quipu.execution = 'local' */ SELECT 1").unwrap_err();
        assert!(e.contains("unknown hint quipu.execution"), "{e}");
        let e = hints("/*+ INDEX(t idx) */ SELECT 1").unwrap_err();
        assert!(e.contains("unknown hint `INDEX`"), "{e}");
        let e = hints("/*+ datafusion.x = 1 */ SELECT 1").unwrap_err();
        assert!(e.contains("unknown hint datafusion.x"), "{e}");
        // A bad value: the error SET gives.
        let e = hints("/*+ quipu.max_staleness = 'soon' */ SELECT 1").unwrap_err();
        let set = QuipuOptions::default()
            .set("max_staleness", "soon")
            .unwrap_err()
            .to_string();
        assert!(e.contains(&set), "{e} / {set}");
        let e = hints("/*+ quipu.stale_cache = 'maybe' */ SELECT 1").unwrap_err();
        assert!(
            e.contains("invalid value `maybe` for quipu.stale_cache"),
            "{e}"
        );
    }

    #[test]
    fn headers_set_the_same_and_a_statement_hint_wins() {
        let h = of_headers([("x-quipu-max-staleness", "1 min"), ("authorization", "x")]).unwrap();
        let s = hints("/*+ quipu.max_staleness = '0' */ SELECT 1").unwrap();
        let mut opts = QuipuOptions::default();
        s[0].over(&h).apply(&mut opts).unwrap();
        assert_eq!(opts.max_staleness, Some(std::time::Duration::ZERO));
        let e = of_headers([("x-quipu-execution", "local")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown header x-quipu-execution"), "{e}");
        let e = of_headers([("x-quipu-stale-cache", "never")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid value `never`"), "{e}");
    }
}
