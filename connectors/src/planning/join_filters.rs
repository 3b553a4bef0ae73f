//! Sort-merge joins whose filter sees NULL-padded rows.
//!
//! DataFusion 55's sort-merge join evaluates a full join's `ON` filter over
//! a batch in which a row without a partner carries NULLs for the other
//! side, but builds that batch with the filter's own schema, which copies
//! the inputs' nullability. A filter on a column declared `NOT NULL`
//! (`FULL JOIN ... ON a.k = b.k AND b.line_no > 4`) then failed with
//! "Column 'line_no' is declared as non-nullable but contains null values"
//! (differential test, seed 1 query 4030, cluster only: Ballista plans
//! sort-merge joins). Every physical rule that rebuilds a join filter
//! derives its schema from the inputs again, so this rule runs last and
//! declares every field of a sort-merge join's filter nullable. Only the
//! declared nullability changes, not the expression or its inputs.
//! Upstream should build that batch with a nullable schema
//! (docs/upstream.md).
//!
//! **Projection pushdown.** DataFusion 55 pushes a projection above a
//! sort-merge join into the join's inputs but keeps the join's filter as
//! it was, its column indices pointing into the inputs as they were before
//! the projection narrowed them (apache/datafusion#24414): the filter then
//! reads other columns (a wrong answer) or past the last one (a panic in
//! `get_filter_columns`: seed 1 query 10030, `d2 FULL JOIN s3 USING (sku)
//! WHERE d2.n < s3.on_hand`, selecting only the keys; cluster only, where
//! Ballista plans sort-merge joins). [`MergeJoinProjections`] runs
//! DataFusion's projection pushdown with every filtered sort-merge join
//! fenced off, after pushing projections into such joins itself, with the
//! filter's indices remapped (or not at all where the filter reads a column
//! the projection drops).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::JoinType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::SortMergeJoinExec;
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::projection::{
    ProjectionExec, join_allows_pushdown, join_table_borders, new_join_children,
    physical_to_column_exprs, update_join_filter, update_join_on,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};

/// Declares the fields of every sort-merge join filter nullable.
#[derive(Debug, Default)]
pub struct NullableMergeJoinFilters;

impl PhysicalOptimizerRule for NullableMergeJoinFilters {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<SortMergeJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(filter) = join.filter() else {
                return Ok(Transformed::no(node));
            };
            if filter.schema().fields().iter().all(|f| f.is_nullable()) {
                return Ok(Transformed::no(node));
            }
            let fields: Vec<_> = filter
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect();
            let schema = Schema::new_with_metadata(fields, filter.schema().metadata().clone());
            let filter = JoinFilter::new(
                Arc::clone(filter.expression()),
                filter.column_indices().to_vec(),
                Arc::new(schema),
            );
            let rebuilt = SortMergeJoinExec::try_new(
                Arc::clone(join.left()),
                Arc::clone(join.right()),
                join.on().to_vec(),
                Some(filter),
                join.join_type(),
                join.sort_options().to_vec(),
                join.null_equality(),
            )?;
            Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "quipu_nullable_merge_join_filters"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// DataFusion's projection pushdown with sort-merge join filters kept
/// right (see the module doc).
#[derive(Debug)]
pub struct MergeJoinProjections(pub Arc<dyn PhysicalOptimizerRule + Send + Sync>);

impl PhysicalOptimizerRule for MergeJoinProjections {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let fenced = plan
            .transform_down(|node| {
                Ok(match projected_merge_join(&node)? {
                    Some(pushed) => Transformed::yes(pushed),
                    None => Transformed::no(node),
                })
            })?
            .data
            .transform_up(|node| {
                Ok(if filtered_merge_join(&node).is_some() {
                    Transformed::yes(Arc::new(MergeJoinFence {
                        properties: Arc::clone(node.properties()),
                        input: node,
                    }) as Arc<dyn ExecutionPlan>)
                } else {
                    Transformed::no(node)
                })
            })
            .data()?;
        self.0
            .optimize(fenced, config)?
            .transform_up(|node| {
                Ok(match node.downcast_ref::<MergeJoinFence>() {
                    Some(fence) => Transformed::new(
                        Arc::clone(&fence.input),
                        true,
                        TreeNodeRecursion::Continue,
                    ),
                    None => Transformed::no(node),
                })
            })
            .data()
    }

    fn name(&self) -> &str {
        self.0.name()
    }

    fn schema_check(&self) -> bool {
        self.0.schema_check()
    }
}

/// DataFusion's physical optimizer rules with both projection pushdown
/// runs replaced by [`MergeJoinProjections`].
pub fn guarded(
    rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    rules
        .into_iter()
        .map(|r| {
            if r.name() == "ProjectionPushdown" {
                Arc::new(MergeJoinProjections(r)) as Arc<_>
            } else {
                r
            }
        })
        .collect()
}

fn filtered_merge_join(node: &Arc<dyn ExecutionPlan>) -> Option<&SortMergeJoinExec> {
    node.downcast_ref::<SortMergeJoinExec>()
        .filter(|j| j.filter().is_some())
}

/// A projection of columns over a filtered sort-merge join whose output is
/// both inputs side by side, pushed into the join's inputs with the
/// filter's indices remapped: what DataFusion's own swap does, plus the
/// filter. `None` where the projection does not narrow each side to a
/// leading and a trailing run of columns, or drops a column the filter or
/// the join keys read.
fn projected_merge_join(node: &Arc<dyn ExecutionPlan>) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let Some(projection) = node.downcast_ref::<ProjectionExec>() else {
        return Ok(None);
    };
    let Some(join) = filtered_merge_join(projection.input()) else {
        return Ok(None);
    };
    let (Some(filter), JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full) =
        (join.filter(), join.join_type())
    else {
        return Ok(None);
    };
    let Some(columns) = physical_to_column_exprs(projection.expr()) else {
        return Ok(None);
    };
    let left_width = join.left().schema().fields().len();
    let (last_left, first_right) = join_table_borders(left_width, &columns);
    if !join_allows_pushdown(&columns, &join.schema(), last_left, first_right) {
        return Ok(None);
    }
    let (left_columns, right_columns) = columns.split_at(first_right as usize);
    let (Some(on), Some(filter)) = (
        update_join_on(left_columns, right_columns, join.on(), left_width),
        update_join_filter(left_columns, right_columns, filter, left_width),
    ) else {
        return Ok(None);
    };
    let (left, right) =
        new_join_children(&columns, last_left, first_right, join.left(), join.right())?;
    Ok(Some(Arc::new(SortMergeJoinExec::try_new(
        Arc::new(left),
        Arc::new(right),
        on,
        Some(filter),
        join.join_type(),
        join.sort_options().to_vec(),
        join.null_equality(),
    )?)))
}

/// A planning-time node over a filtered sort-merge join: a projection
/// above it stays there (its default `try_swapping_with_projection`
/// declines). It never runs: [`MergeJoinProjections`] removes it.
#[derive(Debug)]
struct MergeJoinFence {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl DisplayAs for MergeJoinFence {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "MergeJoinFence")
    }
}

impl ExecutionPlan for MergeJoinFence {
    fn name(&self) -> &str {
        "MergeJoinFence"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|_| DataFusionError::Internal("MergeJoinFence takes one input".into()))?;
        Ok(Arc::new(Self {
            properties: Arc::clone(input.properties()),
            input,
        }))
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        Err(DataFusionError::Internal(
            "MergeJoinFence is a planning-time node and never runs".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// The query selects only the keys; the filter reads the other columns.
    const QUERY: &str = "SELECT l.k AS lk, r.k AS rk FROM l JOIN r ON l.k = r.k AND l.a > r.b \
                         ORDER BY 1";

    async fn answer(rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>) -> String {
        let mut config = SessionConfig::new().with_target_partitions(2);
        config.options_mut().optimizer.prefer_hash_join = false;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        for sql in [
            "CREATE TABLE l (a INT, k INT) AS VALUES (100, 1), (0, 2)",
            "CREATE TABLE r (b INT, k INT) AS VALUES (10, 1), (10, 2)",
        ] {
            ctx.sql(sql).await.unwrap().collect().await.unwrap();
        }
        let rows = ctx.sql(QUERY).await.unwrap().collect().await;
        match rows {
            Ok(rows) => pretty_format_batches(&rows).unwrap().to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    /// DataFusion alone filters the narrowed inputs with the old indices
    /// (`l.a > r.b` reads `l.k > r.k` here: no row); guarded, the filter
    /// is remapped and row (1, 1) comes back.
    #[tokio::test]
    async fn a_projection_pushed_into_a_filtered_merge_join_keeps_its_filter() {
        let rows = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with("| ") && !l.contains("lk"))
                .map(str::to_string)
                .collect()
        };
        let unguarded = answer(PhysicalOptimizer::new().rules).await;
        assert!(
            !unguarded.starts_with("error") && rows(&unguarded).is_empty(),
            "DataFusion fixed this: {unguarded}"
        );
        let guarded = answer(guarded(PhysicalOptimizer::new().rules)).await;
        assert_eq!(rows(&guarded), ["| 1  | 1  |"], "{guarded}");
    }
}
