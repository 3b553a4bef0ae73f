//! Each call of a table function its own scan name.
//!
//! DataFusion names the scan of a table function after the function
//! (`generate_series`), and two `TableScan`s are equal when their names
//! and schemas are: the arguments live in the table provider, which the
//! comparison does not look at. Its common-subexpression rule then took
//! two scalar subqueries over different calls for one:
//! `SELECT (SELECT count(*) FROM generate_series(1, 10, 1)), (SELECT
//! count(*) FROM generate_series(1, 10, 5))` answered 10 and 10, not 10
//! and 2 (found by `tests/tools/datetime_fuzz.py`). Every call after the
//! first is scanned under a name of its own (`generate_series#2`) behind
//! an alias of the function's name, so the plan above it reads the same
//! columns and no two calls compare equal. Numbered in plan order, so the
//! same statement plans the same names (the cache matches views by
//! their plans).

use std::sync::Arc;

use datafusion::common::TableReference;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::functions_table::generate_series::GenerateSeriesTable;
use datafusion::logical_expr::{LogicalPlan, SubqueryAlias, TableScan, TableScanBuilder};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct DistinctTableFunctionScans;

/// Whether `scan` reads a table function's table (`generate_series`,
/// `range`, Quipu's forecasts).
fn table_function(scan: &TableScan) -> bool {
    datafusion::datasource::source_as_provider(&scan.source).is_ok_and(|p| {
        let any = p.as_ref() as &dyn std::any::Any;
        any.is::<GenerateSeriesTable>() || any.is::<crate::forecast::ForecastTable>()
    })
}

impl AnalyzerRule for DistinctTableFunctionScans {
    fn name(&self) -> &str {
        "quipu_distinct_table_function_scans"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        let mut calls = 0usize;
        plan.transform_up_with_subqueries(|node| {
            let LogicalPlan::TableScan(scan) = node else {
                return Ok(Transformed::no(node));
            };
            if !table_function(&scan) {
                return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
            }
            calls += 1;
            if calls == 1 {
                return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
            }
            let name = scan.table_name.clone();
            let own = TableReference::bare(format!("{}#{calls}", name.table()));
            let renamed = TableScanBuilder::new(own, scan.source)
                .with_projection(scan.projection)
                .with_filters(scan.filters)
                .with_fetch(scan.fetch)
                .with_statistics_requests(scan.statistics_requests)
                .build()?;
            let alias = SubqueryAlias::try_new(Arc::new(LogicalPlan::TableScan(renamed)), name)?;
            Ok(Transformed::yes(LogicalPlan::SubqueryAlias(alias)))
        })
        .map(|t| t.data)
    }
}
