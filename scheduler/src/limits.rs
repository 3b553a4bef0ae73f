//! Limits on statement text, checked before anything parses it, on both
//! front doors and in-process (issue 16: a `WHERE` with 20,000 `OR`ed terms
//! overflowed the stack and killed the server; 12,000 took 32 s to plan,
//! because planning cost grows faster than the expression).
//!
//! The check tokenizes the text once (linear, no recursion) with the one
//! lexer of the front doors ([`crate::lexer`], DataFusion's SQL tokenizer),
//! so comments, quoted text and dollar-quoted bodies never count, and
//! counts three things:
//! - bytes of the statement text ([`MAX_STATEMENT_BYTES`]);
//! - parenthesis depth ([`MAX_NESTING`]);
//! - expression operators (`AND`, `OR`, `NOT`, comparisons, arithmetic,
//!   `IS`, `IN`, `LIKE`, `BETWEEN`, `CASE ... WHEN`: [`MAX_OPERATORS`]).
//!   A long `IN (...)` list is flat and costs little, so its items do not
//!   count; a chain of `OR`s becomes a tree as deep as it is long.
//!
//! The text is not the whole statement: a common table expression or a
//! view is planned once and copied into every place that names it, so ten
//! references to one 1,000-term `WHERE` took 17 s to plan from text well
//! inside the limits. [`check_plan`] therefore weighs the logical plan too,
//! views and CTEs expanded, before it is analysed and optimized: every
//! expression node costs its depth in its expression tree
//! ([`MAX_PLAN_WEIGHT`]), which is how the analyzer's cost grows (it
//! recomputes the types below each node of a chain).
//!
//! Each limit answers SQLSTATE 54001 (`statement_too_complex`) naming the
//! limit, and the connection stays usable.

use datafusion::common::Result as DfResult;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion, TreeNodeVisitor};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;

/// The largest statement text accepted (1 MiB).
pub const MAX_STATEMENT_BYTES: usize = 1 << 20;
/// The deepest parenthesis nesting accepted.
pub const MAX_NESTING: usize = 200;
/// The most expression operators one statement text may hold. Planning
/// cost grows with the square of a chain's length; measured on the 2-core
/// machine (debug build, `count(*)` of a lake table with `id = i OR ...`):
/// 500 terms 0.4 s, 1,000 terms 1.6 s, 2,000 terms 8.8 s. 2,000 operators
/// is a 1,000-term chain of comparisons.
pub const MAX_OPERATORS: usize = 2_000;

/// The most a logical plan may weigh: the sum over every expression node
/// of its depth in its expression tree. A left-deep chain of `n` terms
/// `a = i OR ...` weighs about `2 n²`, so a 1,000-term chain (the longest
/// the text limit lets through) weighs 2 M; this allows two of them,
/// while a 50,000-item `IN` list weighs 150 k and the demo's business
/// views a few thousand each.
pub const MAX_PLAN_WEIGHT: u64 = 4_000_000;

/// A statement text over one of the limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("statement too complex: {what} (the limit is {limit})")]
pub struct TooComplex {
    pub what: String,
    pub limit: usize,
}

impl TooComplex {
    /// PostgreSQL's SQLSTATE for it.
    pub const SQLSTATE: &'static str = "54001";
}

/// Checks SQL text against the limits. Text the tokenizer cannot read is
/// let through: the parser reports it with its own message.
pub fn check_sql_text(sql: &str) -> Result<(), TooComplex> {
    if sql.len() > MAX_STATEMENT_BYTES {
        return Err(TooComplex {
            what: format!("{} bytes of SQL text", sql.len()),
            limit: MAX_STATEMENT_BYTES,
        });
    }
    let Some(tokens) = crate::lexer::tokens(sql) else {
        return Ok(());
    };
    let (mut depth, mut deepest, mut operators) = (0usize, 0usize, 0usize);
    for t in &tokens {
        match t {
            Token::LParen => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            Token::RParen => depth = depth.saturating_sub(1),
            // A statement separator starts the count again.
            Token::SemiColon => operators = 0,
            Token::Word(w)
                if w.quote_style.is_none()
                    && matches!(
                        w.keyword,
                        Keyword::AND
                            | Keyword::OR
                            | Keyword::NOT
                            | Keyword::IS
                            | Keyword::IN
                            | Keyword::LIKE
                            | Keyword::ILIKE
                            | Keyword::SIMILAR
                            | Keyword::BETWEEN
                            | Keyword::WHEN
                    ) =>
            {
                operators += 1;
            }
            Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Caret
            | Token::Ampersand
            | Token::Pipe
            | Token::Tilde
            | Token::TildeAsterisk
            | Token::ExclamationMarkTilde
            | Token::ExclamationMarkTildeAsterisk
            | Token::ShiftLeft
            | Token::ShiftRight
            | Token::DoubleColon
            | Token::Arrow
            | Token::LongArrow => operators += 1,
            _ => {}
        }
        if deepest > MAX_NESTING {
            return Err(TooComplex {
                what: format!("more than {MAX_NESTING} levels of parentheses"),
                limit: MAX_NESTING,
            });
        }
        if operators > MAX_OPERATORS {
            return Err(TooComplex {
                what: format!("more than {MAX_OPERATORS} operators in one statement"),
                limit: MAX_OPERATORS,
            });
        }
    }
    Ok(())
}

/// Weighs a logical plan (subqueries and expanded views included) and
/// refuses it over [`MAX_PLAN_WEIGHT`]. The walk stops as soon as the limit
/// is passed, so it costs at most that many steps.
pub fn check_plan(plan: &LogicalPlan) -> Result<(), TooComplex> {
    struct Weigh {
        depth: u64,
        total: u64,
    }
    impl<'n> TreeNodeVisitor<'n> for Weigh {
        type Node = Expr;
        fn f_down(&mut self, _: &'n Expr) -> DfResult<TreeNodeRecursion> {
            self.depth += 1;
            self.total += self.depth;
            Ok(if self.total > MAX_PLAN_WEIGHT {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        }
        fn f_up(&mut self, _: &'n Expr) -> DfResult<TreeNodeRecursion> {
            self.depth -= 1;
            Ok(TreeNodeRecursion::Continue)
        }
    }
    let mut w = Weigh { depth: 0, total: 0 };
    // The visitor never fails.
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            w.depth = 0;
            e.visit(&mut w)
        })?;
        Ok(if w.total > MAX_PLAN_WEIGHT {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    if w.total > MAX_PLAN_WEIGHT {
        return Err(TooComplex {
            what: "the expressions of the planned statement (views and common table \
                   expressions expanded) are too large"
                .to_string(),
            limit: MAX_PLAN_WEIGHT as usize,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ors(n: usize) -> String {
        let terms: Vec<String> = (0..n).map(|i| format!("a = {i}")).collect();
        format!("SELECT * FROM t WHERE {}", terms.join(" OR "))
    }

    #[test]
    fn long_or_chains_are_refused_by_count() {
        assert!(check_sql_text(&ors(900)).is_ok());
        let e = check_sql_text(&ors(20_000)).unwrap_err();
        assert_eq!(e.limit, MAX_OPERATORS);
        assert!(e.to_string().contains("operators"), "{e}");
        // Arithmetic counts too (`SELECT 1+1+...`).
        let sum = format!("SELECT {}", vec!["1"; 5_000].join("+"));
        assert!(check_sql_text(&sum).is_err());
    }

    #[test]
    fn flat_lists_and_quoted_text_do_not_count() {
        let list: Vec<String> = (0..50_000).map(|i| i.to_string()).collect();
        let sql = format!("SELECT * FROM t WHERE a IN ({})", list.join(", "));
        assert!(check_sql_text(&sql).is_ok());
        // Operators inside a string, an identifier or a comment are text.
        let quoted = format!(
            "SELECT '{}' AS \"{}\" -- {}",
            "+".repeat(9_000),
            "-".repeat(9_000),
            "OR ".repeat(9_000)
        );
        assert!(check_sql_text(&quoted).is_ok());
        // Each statement of a script has its own budget.
        let script = format!("{};{}", ors(900), ors(900));
        assert!(check_sql_text(&script).is_ok());
    }

    #[test]
    fn nesting_and_size_are_bounded() {
        let deep = format!("SELECT {}1{}", "(".repeat(300), ")".repeat(300));
        assert_eq!(check_sql_text(&deep).unwrap_err().limit, MAX_NESTING);
        // Parentheses in a comment, a string or a dollar-quoted body are
        // not nesting (the old check counted them).
        let open = "(".repeat(1_000);
        for text in [
            format!("SELECT 1 -- {open}"),
            format!("SELECT 1 /* {open} */"),
            format!("SELECT '{open}', E'\\'{open}'"),
            format!("SELECT $q${open}$q$"),
        ] {
            assert!(check_sql_text(&text).is_ok(), "{text}");
        }
        let big = format!("SELECT '{}'", "x".repeat(MAX_STATEMENT_BYTES));
        assert_eq!(check_sql_text(&big).unwrap_err().limit, MAX_STATEMENT_BYTES);
    }

    async fn planned(sql: &str) -> LogicalPlan {
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.sql("CREATE TABLE t (a BIGINT) AS VALUES (1), (2)")
            .await
            .unwrap();
        ctx.state().create_logical_plan(sql).await.unwrap()
    }

    #[tokio::test]
    async fn copies_of_a_long_chain_are_refused_by_plan_weight() {
        // One 900-term chain passes both checks.
        let one = ors(900);
        assert!(check_sql_text(&one).is_ok());
        assert!(check_plan(&planned(&one).await).is_ok());
        // Ten references to it through a CTE pass the text check (the
        // chain is written once) but not the plan's weight.
        let terms: Vec<String> = (0..900).map(|i| format!("a = {i}")).collect();
        let cte = format!(
            "WITH c AS (SELECT a FROM t WHERE {}) SELECT count(*) FROM ({}) x",
            terms.join(" OR "),
            ["SELECT a FROM c"; 10].join(" UNION ALL ")
        );
        assert!(check_sql_text(&cte).is_ok());
        let e = check_plan(&planned(&cte).await).unwrap_err();
        assert_eq!(e.limit as u64, MAX_PLAN_WEIGHT);
        assert!(e.to_string().contains("common table"), "{e}");
        // A long flat IN list is light.
        let list: Vec<String> = (0..50_000).map(|i| i.to_string()).collect();
        let sql = format!("SELECT * FROM t WHERE a IN ({})", list.join(", "));
        assert!(check_plan(&planned(&sql).await).is_ok());
    }
}
