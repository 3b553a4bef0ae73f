//! A mark join whose condition does not read its left side, made a join
//! with one row.
//!
//! `dialect/syntax.rs` spells `x IN (q)` out with SQL's NULLs where the
//! NULL matters (`NOT IN` under `OR`, `CASE`, `NOT`): among its tests are
//! `EXISTS (q)` and `EXISTS (<q's NULL rows>)`, which for an uncorrelated
//! `q` do not depend on the outer row. DataFusion still plans each as a
//! `LeftMark` join with no keys, a nested loop over every outer row and
//! every row of `q` (found timing out the TLP check of seed 1 query
//! 10194; `... WHERE order_id = 1 OR NOT EXISTS (SELECT 1 FROM
//! transaction_lines WHERE qty > 0)` over the lake's sales took about 110 s
//! and takes about 4 s with this rule, debug build).
//!
//! Such a mark is the same for every row, whether `q` (filtered by the
//! join's condition) has a row: [`UncorrelatedMarkJoin`] computes it once,
//! as `count(*) > 0` over at most one row of `q`, and joins that single row
//! to the left side. The mark keeps its name, type and qualifier.

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, JoinType};
use datafusion::functions_aggregate::count::count;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, lit};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

#[derive(Debug, Default)]
pub struct UncorrelatedMarkJoin;

impl OptimizerRule for UncorrelatedMarkJoin {
    fn name(&self) -> &str {
        "quipu_uncorrelated_mark_join"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> datafusion::error::Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(join) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let reads_left = join.filter.as_ref().is_some_and(|f| {
            f.column_refs()
                .iter()
                .any(|c| !join.right.schema().has_column(c))
        });
        if join.join_type != JoinType::LeftMark || !join.on.is_empty() || reads_left {
            return Ok(Transformed::no(plan));
        }
        let (qualifier, mark) = join.schema.qualified_field(join.schema.fields().len() - 1);
        let mut rows = LogicalPlanBuilder::from(join.right.as_ref().clone());
        if let Some(filter) = &join.filter {
            rows = rows.filter(filter.clone())?;
        }
        let marked = rows
            .limit(0, Some(1))?
            .aggregate(Vec::<Expr>::new(), [count(lit(1)).alias("__quipu_rows")])?
            .project([Expr::Column(Column::from_name("__quipu_rows"))
                .gt(lit(0i64))
                .alias_qualified(qualifier.cloned(), mark.name())])?
            .build()?;
        let columns = join
            .schema
            .iter()
            .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name())));
        let joined = LogicalPlanBuilder::from(join.left.as_ref().clone())
            .cross_join(marked)?
            .project(columns)?
            .build()?;
        Ok(Transformed::yes(joined))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;

    async fn context(rule: bool) -> SessionContext {
        let mut state = datafusion::execution::SessionStateBuilder::new().with_default_features();
        if rule {
            state = state.with_optimizer_rule(std::sync::Arc::new(super::UncorrelatedMarkJoin));
        }
        let ctx = SessionContext::new_with_state(state.build());
        for sql in [
            "CREATE TABLE t (x INT) AS VALUES (1), (2), (NULL)",
            "CREATE TABLE u (y INT) AS VALUES (1), (9)",
            "CREATE TABLE n (y INT) AS VALUES (1), (NULL)",
        ] {
            ctx.sql(sql).await.unwrap().collect().await.unwrap();
        }
        ctx
    }

    /// `NOT IN`'s tests as `dialect/syntax.rs` spells them, under `OR`
    /// (where DataFusion plans mark joins): the answers DataFusion gives
    /// with nested loops, and no mark join without keys left.
    #[tokio::test]
    async fn uncorrelated_exists_tests_are_computed_once() {
        let with = context(true).await;
        let without = context(false).await;
        for (sql, expected) in [
            (
                "SELECT x FROM t WHERE x IN (SELECT y FROM u) \
                 OR (x IS NULL AND EXISTS (SELECT y FROM u)) ORDER BY x",
                vec!["| 1 |", "|   |"],
            ),
            (
                "SELECT x FROM t WHERE x = 2 OR EXISTS (SELECT 1 FROM n WHERE y IS NULL) ORDER BY x",
                vec!["| 1 |", "| 2 |", "|   |"],
            ),
            (
                "SELECT x FROM t WHERE x = 2 OR EXISTS (SELECT 1 FROM u WHERE y IS NULL) ORDER BY x",
                vec!["| 2 |"],
            ),
            (
                "SELECT x FROM t WHERE x = 2 OR NOT EXISTS (SELECT 1 FROM u WHERE y > 5) ORDER BY x",
                vec!["| 2 |"],
            ),
        ] {
            let mut answers = vec![];
            for ctx in [&with, &without] {
                let df = ctx.sql(sql).await.unwrap();
                let plan = format!(
                    "{}",
                    df.clone().into_optimized_plan().unwrap().display_indent()
                );
                let text = pretty_format_batches(&df.collect().await.unwrap())
                    .unwrap()
                    .to_string();
                let rows: Vec<String> = text
                    .lines()
                    .filter(|l| l.starts_with("| ") && !l.contains(" x "))
                    .map(str::to_string)
                    .collect();
                answers.push((plan, rows));
            }
            let [(plan, rows), (plain, plain_rows)] = <[_; 2]>::try_from(answers).unwrap();
            assert_eq!(rows, expected, "{sql}\n{plan}");
            assert_eq!(plain_rows, expected, "{sql}\n{plain}");
            assert!(
                plain.contains("LeftMark Join: \n") || plain.contains("LeftMark Join:\n"),
                "{plain}"
            );
            assert!(
                !plan.contains("LeftMark Join: \n") && !plan.contains("LeftMark Join:\n"),
                "{plan}"
            );
        }
    }
}
