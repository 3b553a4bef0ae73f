//! `INTERSECT ALL` and `EXCEPT ALL` as PostgreSQL answers them: a row
//! that occurs `m` times on the left and `n` times on the right occurs
//! `min(m, n)` times in `INTERSECT ALL` and `max(m - n, 0)` times in
//! `EXCEPT ALL`.
//!
//! DataFusion 55 plans them as a semi (anti) join of the two sides on all
//! their columns, NULLs equal, which keeps every left copy of a row found
//! on the right (drops every one found there), however often it occurs
//! there (apache/datafusion#12955, #12956): `SELECT 1 FROM t INTERSECT ALL
//! SELECT 1` gave as many rows as `t` has, PostgreSQL one. This rewrite
//! numbers the copies of each row on both sides (`row_number()`
//! partitioned by all the columns) and joins on the number too: the
//! `k`-th copy on the left meets the `k`-th on the right, so `INTERSECT
//! ALL` keeps the first `min(m, n)` and `EXCEPT ALL` the copies past `n`.
//!
//! The joins it rewrites are those the SQL planner builds for the set
//! operations: a semi or anti join on every column of its left side,
//! NULLs equal, with no filter, over a left side that is not a `DISTINCT`
//! (the plain `INTERSECT` and `EXCEPT` have one there, and with a
//! distinct left side the two readings agree). [`rewrite`] runs once on
//! a plan fresh from the SQL planner (a client's statement, a view's
//! query), before any optimizer rule: there a semi or anti join with
//! NULLs equal is a set operation's (one written in SQL, `LEFT SEMI JOIN
//! ... ON`, compares NULLs as unequal; `EXISTS` and `IN` become joins in
//! the optimizer). It is not an analyzer rule: the cluster's scheduler
//! analyzes the optimized plan again, where a plain `INTERSECT`'s
//! `DISTINCT` has become an aggregation and `IS NOT DISTINCT FROM`
//! correlations may have become such joins.

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, NullEquality, Result};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{ExprFunctionExt, JoinType, LogicalPlan, LogicalPlanBuilder, col};

/// The column numbering the copies of a row, on each side.
const COPY: &str = "__quipu_copy";

/// `plan`, fresh from the SQL planner, with each `INTERSECT ALL` and
/// `EXCEPT ALL` counting copies (in subqueries too).
pub fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    Ok(plan.transform_up_with_subqueries(numbered_copies)?.data)
}

/// The join of an `INTERSECT ALL` or `EXCEPT ALL` on its columns and the
/// copies' numbers, without the numbers.
fn numbered_copies(node: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let LogicalPlan::Join(join) = &node else {
        return Ok(Transformed::no(node));
    };
    let set_operation = matches!(join.join_type, JoinType::LeftSemi | JoinType::LeftAnti)
        && join.null_equality == NullEquality::NullEqualsNull
        && join.filter.is_none()
        && join.on.len() == join.left.schema().fields().len()
        && !matches!(join.left.as_ref(), LogicalPlan::Distinct(_))
        // Not one this made.
        && join.left.schema().field_with_unqualified_name(COPY).is_err();
    if !set_operation {
        return Ok(Transformed::no(node));
    }
    let Some((mut left_keys, mut right_keys)) = join
        .on
        .iter()
        .map(|(l, r)| Some((l.try_as_col()?.clone(), r.try_as_col()?.clone())))
        .collect::<Option<(Vec<Column>, Vec<Column>)>>()
    else {
        return Ok(Transformed::no(node));
    };
    let number = |plan: &LogicalPlan, name: &str| -> Result<LogicalPlan> {
        let keys = plan.schema().columns().into_iter().map(col).collect();
        let copy = row_number().partition_by(keys).build()?.alias(name);
        LogicalPlanBuilder::from(plan.clone())
            .window(vec![copy])?
            .build()
    };
    let right_copy = format!("{COPY}_right");
    let left = number(&join.left, COPY)?;
    let right = number(&join.right, &right_copy)?;
    left_keys.push(Column::from_name(COPY));
    right_keys.push(Column::from_name(right_copy));
    let columns = join.left.schema().columns();
    let plan = LogicalPlanBuilder::from(left)
        .join_detailed(
            right,
            join.join_type,
            (left_keys, right_keys),
            None,
            NullEquality::NullEqualsNull,
        )?
        .project(columns.into_iter().map(col))?
        .build()?;
    Ok(Transformed::yes(plan))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;

    use super::rewrite;

    async fn rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        let batches = ctx
            .execute_logical_plan(rewrite(plan).unwrap())
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        let mut rows: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with('|'))
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        rows.sort();
        rows
    }

    /// PostgreSQL's answers: `min(m, n)` and `max(m - n, 0)` copies of
    /// each row, NULLs equal; the plain operations stay distinct.
    #[tokio::test]
    async fn all_set_operations_count_copies() {
        let ctx = SessionContext::new();
        ctx.sql(
            "CREATE VIEW a AS SELECT * FROM (VALUES (1, 'x'), (1, 'x'), (1, 'x'), (2, 'y'), \
             (NULL, 'z'), (NULL, 'z')) v(k, s)",
        )
        .await
        .unwrap();
        ctx.sql(
            "CREATE VIEW b AS SELECT * FROM (VALUES (1, 'x'), (1, 'x'), (3, 'w'), (NULL, 'z')) \
             v(k, s)",
        )
        .await
        .unwrap();
        let cases = [
            (
                "SELECT k, s FROM a INTERSECT ALL SELECT k, s FROM b",
                vec!["| 1 | x |", "| 1 | x |", "| | z |"],
            ),
            (
                "SELECT k, s FROM a EXCEPT ALL SELECT k, s FROM b",
                vec!["| 1 | x |", "| 2 | y |", "| | z |"],
            ),
            ("SELECT k FROM b EXCEPT ALL SELECT k FROM a", vec!["| 3 |"]),
            (
                "SELECT k, s FROM a INTERSECT SELECT k, s FROM b",
                vec!["| 1 | x |", "| | z |"],
            ),
            (
                "SELECT count(*) FROM (SELECT k FROM a INTERSECT ALL SELECT k FROM a) x",
                vec!["| 6 |"],
            ),
        ];
        for (sql, want) in cases {
            let mut want: Vec<String> = want.into_iter().map(String::from).collect();
            want.sort();
            assert_eq!(rows(&ctx, sql).await, want, "{sql}");
        }
        // Rewritten twice, the plan is the same.
        let plan = ctx
            .state()
            .create_logical_plan("SELECT k FROM a EXCEPT ALL SELECT k FROM b")
            .await
            .unwrap();
        let once = rewrite(plan.clone()).unwrap();
        assert_ne!(once, plan);
        assert_eq!(rewrite(once.clone()).unwrap(), once);
    }
}
