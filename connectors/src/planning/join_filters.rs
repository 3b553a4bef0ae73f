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

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result as DfResult;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::SortMergeJoinExec;
use datafusion::physical_plan::joins::utils::JoinFilter;

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
