//! `to_date` and `to_timestamp` formats as PostgreSQL means them (issue
//! 22).
//!
//! DataFusion 55 reads the format of these functions as a chrono format
//! (`%Y-%m-%d`), PostgreSQL as its own template patterns (`YYYY-MM-DD`):
//! `to_date(t, 'YYYY-MM-DD')` read the text through the format
//! 'YYYY-MM-DD' itself. Quipu rewrites a constant
//! PostgreSQL format into the chrono format that prints (or parses) the
//! same; a format with a pattern it cannot translate exactly (`Month`,
//! which PostgreSQL pads to nine characters, `Q`, `TZ`, ...) or a format
//! that is not a constant is refused with an error that names it, never
//! given DataFusion's meaning. None of these functions is pushed to a
//! source (`connectors/src/pushdown.rs` lists what is), so the rewritten
//! format is only ever read by DataFusion.

use datafusion::common::ScalarValue;
use datafusion::common::tree_node::Transformed;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, LogicalPlan};

/// The functions whose second argument is a template. `to_char` is
/// PostgreSQL's own (`connectors/src/dialect/pg_to_char.rs`), with every
/// pattern.
const FUNCTIONS: &[&str] = &["to_date", "to_timestamp"];

/// PostgreSQL template patterns Quipu translates, longest first (a pattern
/// is matched where it starts, so `YYYY` wins over `YY`): (pattern, chrono
/// format, chrono format after `FM`, which drops the padding).
const PATTERNS: &[(&str, &str, &str)] = &[
    ("HH24", "%H", "%-H"),
    ("HH12", "%I", "%-I"),
    ("YYYY", "%Y", "%Y"),
    ("IYYY", "%G", "%G"),
    ("DDD", "%j", "%-j"),
    ("Mon", "%b", "%b"),
    ("Dy", "%a", "%a"),
    ("HH", "%I", "%-I"),
    ("YY", "%y", "%y"),
    ("MM", "%m", "%-m"),
    ("DD", "%d", "%-d"),
    ("MI", "%M", "%-M"),
    ("SS", "%S", "%-S"),
    ("MS", "%3f", "%3f"),
    ("US", "%6f", "%6f"),
    ("AM", "%p", "%p"),
    ("PM", "%p", "%p"),
    ("IW", "%V", "%-V"),
    ("ID", "%u", "%u"),
];

/// `plan` with the constant formats of `to_date` and `to_timestamp`
/// translated (subqueries included).
/// Output columns keep the names they were planned with (a `GROUP BY
/// to_char(...)` is found by the projection above it by that name).
pub fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    crate::rounding::rewrite_typed(plan, |e, _| rewrite_expr(e))
}

fn rewrite_expr(e: Expr) -> Result<Transformed<Expr>> {
    let Expr::ScalarFunction(mut f) = e else {
        return Ok(Transformed::no(e));
    };
    let name = f.name().to_string();
    if !FUNCTIONS.contains(&name.as_str()) || f.args.len() < 2 {
        return Ok(Transformed::no(Expr::ScalarFunction(f)));
    }
    if f.args.len() > 2 {
        return Err(DataFusionError::NotImplemented(format!(
            "{name} with more than one format is not supported (PostgreSQL takes one)"
        )));
    }
    let format = match crate::similar::constant_text(&f.args[1]) {
        Some(format) => format,
        None => {
            let other = &f.args[1];
            return Err(DataFusionError::NotImplemented(format!(
                "{name} with a format that is not a constant string ({other}) is not supported"
            )));
        }
    };
    // A NULL format: DataFusion's NULL, as PostgreSQL's.
    let Some(format) = format else {
        return Ok(Transformed::no(Expr::ScalarFunction(f)));
    };
    let chrono = chrono_format(&format).map_err(|what| {
        DataFusionError::NotImplemented(format!(
            "{name} with format '{format}' is not supported ({what})"
        ))
    })?;
    f.args[1] = Expr::Literal(ScalarValue::Utf8(Some(chrono)), None);
    Ok(Transformed::yes(Expr::ScalarFunction(f)))
}

/// The chrono format that prints and parses what PostgreSQL's template
/// `format` does, or what in it has no exact translation.
pub fn chrono_format(format: &str) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = format;
    while let Some(c) = rest.chars().next() {
        // Double-quoted text is copied as it is.
        if c == '"' {
            let Some(end) = rest[1..].find('"') else {
                return Err("an unterminated quoted text".into());
            };
            push_literal(&mut out, &rest[1..1 + end]);
            rest = &rest[end + 2..];
            continue;
        }
        let (fm, after) = match rest.strip_prefix("FM") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        // Longer PostgreSQL patterns that begin like one translated above:
        // `Month` (not `Mon` + "th"), `SSSS` (seconds past midnight).
        if let Some(p) = ["Month", "SSSS"].iter().find(|p| after.starts_with(*p)) {
            return Err(format!("the pattern '{p}'"));
        }
        if let Some((p, plain, trimmed)) = PATTERNS.iter().find(|(p, ..)| after.starts_with(p)) {
            out.push_str(if fm { trimmed } else { plain });
            rest = &after[p.len()..];
            continue;
        }
        if fm {
            return Err("FM before a pattern Quipu does not translate".into());
        }
        // Letters PostgreSQL may read as a pattern (or as part of one) are
        // not guessed at; anything else is printed as it is.
        if c.is_ascii_alphabetic() || c == '\\' {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            return Err(format!("the pattern '{word}'"));
        }
        push_literal(&mut out, &c.to_string());
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

/// Text printed as it is: chrono reads `%` as the start of a specifier.
fn push_literal(out: &mut String, text: &str) {
    out.push_str(&text.replace('%', "%%"));
}

#[cfg(test)]
mod tests {
    use super::chrono_format;

    #[test]
    fn common_formats_translate() {
        for (pg, chrono) in [
            ("YYYY-MM-DD", "%Y-%m-%d"),
            ("YYYY-MM-DD HH24:MI:SS", "%Y-%m-%d %H:%M:%S"),
            ("DD/MM/YYYY", "%d/%m/%Y"),
            ("Mon DD, YYYY", "%b %d, %Y"),
            ("FMDD.FMMM.YY", "%-d.%-m.%y"),
            ("HH12:MI AM", "%I:%M %p"),
            ("YYYY\"Q\"MM 100%", "%YQ%m 100%%"),
            ("SS.US", "%S.%6f"),
        ] {
            assert_eq!(chrono_format(pg).as_deref(), Ok(chrono), "{pg}");
        }
    }

    #[test]
    fn untranslatable_patterns_are_named() {
        for (pg, named) in [
            ("Month DD", "'Month'"),
            ("YYYY-Q", "'Q'"),
            ("HH24:MI TZ", "'TZ'"),
            ("Day", "'Day'"),
            ("FMMonth", "'Month'"),
            ("SSSS", "'SSSS'"),
            ("YYYY \"unterminated", "unterminated"),
        ] {
            let e = chrono_format(pg).unwrap_err();
            assert!(e.contains(named), "{pg}: {e}");
        }
    }
}
