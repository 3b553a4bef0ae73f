//! Parsed statements brought to PostgreSQL's meaning before planning, where
//! the parser or the planner would otherwise answer differently (issue 17's
//! differential test found both):
//!
//! - sqlparser 0.62 parses the right operand of `IS [NOT] DISTINCT FROM`
//!   with the lowest precedence, so `a IS DISTINCT FROM TRUE AND b < 5` was
//!   `a IS DISTINCT FROM (TRUE AND b < 5)` (618 rows where PostgreSQL gives
//!   3; fixed upstream in apache/datafusion-sqlparser-rs#2436). The
//!   swallowed `AND`/`OR` chain is given back: the comparison takes only
//!   the chain's leftmost operand, as PostgreSQL's precedence says.
//! - DataFusion 55 answers `INTERSECT ALL` and `EXCEPT ALL` wrongly
//!   (apache/datafusion#12955, #12956): they are refused as not supported.

use std::ops::ControlFlow;

use datafusion::error::{DataFusionError, Result};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Query, SetExpr, SetOperator, SetQuantifier, Visit, VisitMut, Visitor,
    visit_expressions_mut,
};

/// The statement with PostgreSQL's meaning, or a clear error.
pub fn fix(mut statement: DfStatement) -> Result<DfStatement> {
    fix_in_place(&mut statement)?;
    Ok(statement)
}

fn fix_in_place(statement: &mut DfStatement) -> Result<()> {
    match statement {
        DfStatement::Statement(s) => fix_sql(s.as_mut()),
        DfStatement::Explain(e) => fix_in_place(&mut e.statement),
        _ => Ok(()),
    }
}

fn fix_sql<T: VisitMut + Visit>(s: &mut T) -> Result<()> {
    let _ = visit_expressions_mut(s, |e: &mut Expr| {
        reassociate(e);
        ControlFlow::<()>::Continue(())
    });
    struct SetOps(Option<String>);
    impl Visitor for SetOps {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(op) = all_set_op(&q.body) {
                self.0 = Some(op);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut found = SetOps(None);
    let _ = Visit::visit(&*s, &mut found);
    if let Some(op) = found.0 {
        return Err(DataFusionError::NotImplemented(format!(
            "{op} ALL is not supported (DataFusion 55 answers it wrongly: \
             apache/datafusion#12955, #12956); use {op} (without ALL) or rewrite it \
             with a join"
        )));
    }
    Ok(())
}

fn all_set_op(body: &SetExpr) -> Option<String> {
    match body {
        SetExpr::SetOperation {
            left,
            op,
            set_quantifier,
            right,
        } => {
            if matches!(
                op,
                SetOperator::Intersect | SetOperator::Except | SetOperator::Minus
            ) && matches!(
                set_quantifier,
                SetQuantifier::All | SetQuantifier::AllByName
            ) {
                return Some(match op {
                    SetOperator::Intersect => "INTERSECT".into(),
                    _ => "EXCEPT".into(),
                });
            }
            all_set_op(left).or_else(|| all_set_op(right))
        }
        _ => None,
    }
}

/// `a IS [NOT] DISTINCT FROM (x AND/OR ...)` as parsed without parentheses
/// becomes `(a IS [NOT] DISTINCT FROM x) AND/OR ...`.
fn reassociate(e: &mut Expr) {
    let (a, b, negated) = match e {
        Expr::IsDistinctFrom(a, b) => (a, b, false),
        Expr::IsNotDistinctFrom(a, b) => (a, b, true),
        _ => return,
    };
    if !is_chain(b) {
        return;
    }
    let a = std::mem::replace(
        a.as_mut(),
        Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
    );
    let b = std::mem::replace(
        b.as_mut(),
        Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
    );
    *e = graft(a, b, negated);
}

fn is_chain(e: &Expr) -> bool {
    matches!(
        e,
        Expr::BinaryOp {
            op: BinaryOperator::And | BinaryOperator::Or,
            ..
        }
    )
}

fn graft(a: Expr, b: Expr, negated: bool) -> Expr {
    match b {
        Expr::BinaryOp {
            left,
            op: op @ (BinaryOperator::And | BinaryOperator::Or),
            right,
        } => Expr::BinaryOp {
            left: Box::new(graft(a, *left, negated)),
            op,
            right,
        },
        leaf if negated => Expr::IsNotDistinctFrom(Box::new(a), Box::new(leaf)),
        leaf => Expr::IsDistinctFrom(Box::new(a), Box::new(leaf)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn fixed(sql: &str) -> std::result::Result<String, String> {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        fix_sql(&mut s).map_err(|e| e.to_string())?;
        Ok(s.to_string())
    }

    #[test]
    fn is_distinct_from_takes_only_its_operand() {
        assert_eq!(
            fixed("SELECT 1 FROM t WHERE a IS DISTINCT FROM TRUE AND b < 5").unwrap(),
            "SELECT 1 FROM t WHERE a IS DISTINCT FROM true AND b < 5"
        );
        // The printed text looks the same; the tree is what changed.
        let mut s = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT 1 FROM t WHERE a IS NOT DISTINCT FROM 1 AND b OR c",
        )
        .unwrap()
        .remove(0);
        fix_sql(&mut s).unwrap();
        let mut top = None;
        let _ = visit_expressions_mut(&mut s, |e: &mut Expr| {
            if top.is_none()
                && matches!(
                    e,
                    Expr::BinaryOp {
                        op: BinaryOperator::Or,
                        ..
                    }
                )
            {
                top = Some(e.clone());
            }
            ControlFlow::<()>::Continue(())
        });
        let Some(Expr::BinaryOp { left, .. }) = top else {
            panic!("no OR at the top")
        };
        let Expr::BinaryOp { left, op, .. } = *left else {
            panic!("no AND under the OR")
        };
        assert_eq!(op, BinaryOperator::And);
        assert!(matches!(*left, Expr::IsNotDistinctFrom(_, _)), "{left:?}");
        // Parentheses are kept.
        let mut s = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT 1 FROM t WHERE a IS DISTINCT FROM (TRUE AND b)",
        )
        .unwrap()
        .remove(0);
        let before = format!("{s:?}");
        fix_sql(&mut s).unwrap();
        assert_eq!(format!("{s:?}"), before);
    }

    #[test]
    fn intersect_and_except_all_are_refused() {
        for sql in [
            "SELECT a FROM t INTERSECT ALL SELECT a FROM u",
            "SELECT a FROM t EXCEPT ALL SELECT a FROM u",
            "SELECT * FROM (SELECT a FROM t EXCEPT ALL SELECT a FROM u) x",
        ] {
            let e = fixed(sql).unwrap_err();
            assert!(e.contains("ALL is not supported"), "{sql}: {e}");
        }
        assert!(fixed("SELECT a FROM t INTERSECT SELECT a FROM u").is_ok());
        assert!(fixed("SELECT a FROM t UNION ALL SELECT a FROM u").is_ok());
    }
}
