//! Where a statement runs: in this process or on the Ballista cluster.
//!
//! The policy, apart from the machinery that acts on it
//! ([`crate::session`]), so that each decision can be tested on a plan
//! without a server:
//! - [`local_only`]: statements that can only run here (not a query, no
//!   scan, system tables only), whatever `quipu.execution` says: Ballista
//!   would ship them to the cluster and fail;
//! - [`estimate`]: what the physical plan's file scans will read after
//!   partition pruning (live-source scans count for nothing: the source
//!   does their work);
//! - [`place`]: the choice from the mode, the estimate and whether the
//!   plan only forwards rows ([`forwards_rows`]);
//! - [`independent_partitions`]: when an in-process plan may be read as
//!   several streams (Flight SQL endpoints).

use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use quipu_connectors::{ExecutionMode, QuipuOptions};

/// Where a query the cluster could run goes, and why (for logs and
/// `--verbose`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement {
    Local(String),
    Cluster(String),
}

/// Whether a logical plan can only run in this process: it is not a query
/// (DDL, SET, EXPLAIN), scans nothing, reads system tables, or is a
/// recursive query (`WITH RECURSIVE`: Ballista 55's plan codec has no
/// form for DataFusion's `RecursiveQueryExec`, the cluster refused it with
/// "Unsupported plan node"), or reads `generate_series` or `range` in
/// `FROM` (DataFusion 55's logical plan codec has no form for their
/// table: "failed to serialize logical plan ... LogicalExtensionCodec is
/// not provided").
pub(crate) fn local_only(plan: &LogicalPlan) -> Option<&'static str> {
    match plan {
        LogicalPlan::Ddl(_)
        | LogicalPlan::Statement(_)
        | LogicalPlan::Dml(_)
        | LogicalPlan::Copy(_)
        | LogicalPlan::Explain(_)
        | LogicalPlan::Analyze(_)
        | LogicalPlan::DescribeTable(_) => return Some("not a query"),
        _ => {}
    }
    let mut scans = 0;
    let mut system = false;
    let mut recursive = false;
    let mut series = false;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::RecursiveQuery(_) = node {
            recursive = true;
        }
        if let LogicalPlan::TableScan(scan) = node {
            scans += 1;
            if matches!(
                scan.table_name.schema(),
                Some("information_schema" | "pg_catalog")
            ) {
                system = true;
            }
            series |= datafusion::datasource::source_as_provider(&scan.source).is_ok_and(|p| {
                (p.as_ref() as &dyn std::any::Any)
                    .is::<datafusion::functions_table::generate_series::GenerateSeriesTable>()
            });
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if recursive {
        Some("a recursive query, which the cluster cannot run")
    } else if series {
        Some("reads generate_series in FROM, which the cluster cannot run")
    } else if scans == 0 {
        Some("scans no table")
    } else if system {
        Some("reads system tables")
    } else {
        None
    }
}

/// The placement `quipu.execution` forces before any physical planning:
/// `'cluster'` sends every query that may go there.
pub(crate) fn forced(opts: &QuipuOptions) -> Option<Placement> {
    (opts.execution == ExecutionMode::Cluster)
        .then(|| Placement::Cluster("quipu.execution = 'cluster'".to_string()))
}

/// Where a query goes once its physical plan is known: in `auto` mode, a
/// scan of at least `quipu.cluster_min_bytes` or `quipu.cluster_min_rows`
/// goes to the cluster, unless the plan only forwards rows (every row it
/// reads would come back through this process anyway).
pub(crate) fn place(opts: &QuipuOptions, est: &WorkEstimate, forwards_rows: bool) -> Placement {
    if let Some(forced) = forced(opts) {
        return forced;
    }
    let scan = est.to_string();
    let large = est.bytes >= opts.cluster_min_bytes || est.rows >= opts.cluster_min_rows;
    if opts.execution == ExecutionMode::Auto && large && !forwards_rows {
        return Placement::Cluster(format!("large scan: {scan}"));
    }
    Placement::Local(match opts.execution {
        ExecutionMode::Local => "quipu.execution = 'local'".to_string(),
        _ if large => format!("rows only forwarded to the client: {scan}"),
        _ => format!("small scan: {scan}"),
    })
}

/// What the planner estimates a query will read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WorkEstimate {
    pub bytes: u64,
    pub rows: u64,
    pub files: usize,
}

impl std::fmt::Display for WorkEstimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes, {} rows in {} files",
            self.bytes, self.rows, self.files
        )
    }
}

/// The files a physical plan's scans will read, with their sizes and the
/// row counts their footers give.
pub(crate) fn estimate(plan: &Arc<dyn ExecutionPlan>) -> WorkEstimate {
    let mut est = WorkEstimate::default();
    // A file split into byte ranges (one per core) sits in several file
    // groups, each range carrying the whole file's statistics: count each
    // file once (counting ranges doubled the rows of a one-file table and
    // sent a 10 M-row table to the cluster as if it had 20 M).
    let mut seen = std::collections::HashSet::new();
    let _ = plan.apply(|node| {
        if let Some(ds) = node.downcast_ref::<DataSourceExec>()
            && let Some(scan) = ds.data_source().downcast_ref::<FileScanConfig>()
        {
            for group in &scan.file_groups {
                for file in group.files() {
                    if !seen.insert(file.object_meta.location.clone()) {
                        continue;
                    }
                    est.bytes += file.object_meta.size;
                    est.files += 1;
                    if let Some(rows) = file
                        .statistics
                        .as_ref()
                        .and_then(|s| s.num_rows.get_value())
                    {
                        est.rows += *rows as u64;
                    }
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    est
}

/// Whether a plan only reads and forwards rows: scans, projections,
/// limits and the operators that move batches between partitions. Every
/// row it reads goes to the client through this process, so the cluster
/// would only add a shuffle write and a fetch per row (4x slower for a
/// 10 M-row export, measured); such plans run in-process whatever their
/// size. A filter, join, aggregate, sort or window makes work worth
/// spreading.
pub(crate) fn forwards_rows(plan: &Arc<dyn ExecutionPlan>) -> bool {
    use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
    use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
    use datafusion::physical_plan::projection::ProjectionExec;
    use datafusion::physical_plan::repartition::RepartitionExec;
    every_node(plan, |node| {
        node.is::<DataSourceExec>()
            || node.is::<ProjectionExec>()
            || node.is::<CoalescePartitionsExec>()
            || node.is::<RepartitionExec>()
            || node.is::<GlobalLimitExec>()
            || node.is::<LocalLimitExec>()
    })
}

/// Whether `holds` is true of every node of `plan` (it stops at the
/// first that fails).
fn every_node(
    plan: &Arc<dyn ExecutionPlan>,
    holds: impl Fn(&Arc<dyn ExecutionPlan>) -> bool,
) -> bool {
    let mut all = true;
    let _ = plan.apply(|node| {
        all = holds(node);
        Ok(if all {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    all
}

/// The node whose output partitions can be read as separate streams, and
/// their number: the plan under its final merge when every node below
/// works partition by partition (at most one child, the same partition
/// count, no repartitioning), and there are at least two.
pub(crate) fn independent_partitions(
    plan: &Arc<dyn ExecutionPlan>,
) -> Option<(Arc<dyn ExecutionPlan>, usize)> {
    use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
    use datafusion::physical_plan::repartition::RepartitionExec;
    let top = if plan.is::<CoalescePartitionsExec>() {
        plan.children().first().map(|c| (*c).clone())?
    } else {
        plan.clone()
    };
    let n = top.output_partitioning().partition_count();
    if n < 2 {
        return None;
    }
    let independent = every_node(&top, |node| {
        node.children().len() <= 1
            && node.output_partitioning().partition_count() == n
            && !node.is::<RepartitionExec>()
    });
    independent.then_some((top, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    fn options(execution: ExecutionMode) -> QuipuOptions {
        QuipuOptions {
            execution,
            cluster_min_bytes: 1_000,
            cluster_min_rows: 100,
            ..QuipuOptions::default()
        }
    }

    fn scan(bytes: u64, rows: u64) -> WorkEstimate {
        WorkEstimate {
            bytes,
            rows,
            files: 1,
        }
    }

    #[test]
    fn auto_sends_large_work_to_the_cluster_and_keeps_the_rest() {
        let auto = options(ExecutionMode::Auto);
        assert_eq!(
            place(&auto, &scan(10, 1), false),
            Placement::Local("small scan: 10 bytes, 1 rows in 1 files".into())
        );
        // Either threshold is enough.
        assert!(
            matches!(place(&auto, &scan(1_000, 1), false), Placement::Cluster(r) if r.starts_with("large scan"))
        );
        assert!(matches!(
            place(&auto, &scan(10, 100), false),
            Placement::Cluster(_)
        ));
        // A large read that only forwards rows stays here.
        assert!(matches!(
            place(&auto, &scan(1_000_000, 1_000_000), true),
            Placement::Local(r) if r.starts_with("rows only forwarded")
        ));
        assert_eq!(forced(&auto), None);
    }

    #[test]
    fn the_mode_forces_the_choice() {
        let local = options(ExecutionMode::Local);
        assert_eq!(
            place(&local, &scan(u64::MAX, u64::MAX), false),
            Placement::Local("quipu.execution = 'local'".into())
        );
        assert_eq!(forced(&local), None);
        let cluster = options(ExecutionMode::Cluster);
        let expected = Placement::Cluster("quipu.execution = 'cluster'".into());
        assert_eq!(forced(&cluster), Some(expected.clone()));
        assert_eq!(place(&cluster, &scan(0, 0), true), expected);
    }

    async fn logical(ctx: &SessionContext, sql: &str) -> LogicalPlan {
        ctx.state().create_logical_plan(sql).await.unwrap()
    }

    #[tokio::test]
    async fn statements_the_cluster_cannot_run_stay_here() {
        let ctx = SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new().with_information_schema(true),
        );
        ctx.sql("CREATE TABLE t (a BIGINT) AS VALUES (1), (2)")
            .await
            .unwrap();
        assert_eq!(
            local_only(&logical(&ctx, "SELECT 1 + 1").await),
            Some("scans no table")
        );
        assert_eq!(
            local_only(&logical(&ctx, "SELECT * FROM information_schema.tables").await),
            Some("reads system tables")
        );
        assert_eq!(
            local_only(&logical(&ctx, "CREATE VIEW v AS SELECT a FROM t").await),
            Some("not a query")
        );
        assert_eq!(
            local_only(&logical(&ctx, "SET datafusion.execution.batch_size = 10").await),
            Some("not a query")
        );
        assert_eq!(local_only(&logical(&ctx, "SELECT a FROM t").await), None);
        let recursive = "WITH RECURSIVE r(n) AS (SELECT a FROM t UNION ALL \
                         SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r";
        assert_eq!(
            local_only(&logical(&ctx, recursive).await),
            Some("a recursive query, which the cluster cannot run")
        );
        let series = "SELECT a, g FROM t CROSS JOIN generate_series(1, 3) AS g(g)";
        assert_eq!(
            local_only(&logical(&ctx, series).await),
            Some("reads generate_series in FROM, which the cluster cannot run")
        );
        // A system table in a subquery is enough.
        let mixed = "SELECT a FROM t WHERE a IN (SELECT 1 FROM information_schema.tables)";
        assert_eq!(
            local_only(&logical(&ctx, mixed).await),
            Some("reads system tables")
        );
    }

    /// A Parquet file split into byte ranges (one per partition) is one
    /// file for the estimate, with its rows counted once.
    #[tokio::test]
    async fn a_file_split_into_ranges_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let ctx = SessionContext::new();
        ctx.sql(&format!(
            "COPY (SELECT value AS v FROM range(200000)) TO '{}' STORED AS PARQUET",
            path.display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        let config = datafusion::prelude::SessionConfig::new()
            .with_target_partitions(4)
            .with_repartition_file_min_size(1);
        let ctx = SessionContext::new_with_config(config);
        ctx.register_parquet("t", path.to_str().unwrap(), Default::default())
            .await
            .unwrap();
        let physical = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                ctx.sql(sql)
                    .await
                    .unwrap()
                    .create_physical_plan()
                    .await
                    .unwrap()
            }
        };
        let plan = physical("SELECT sum(v) FROM t").await;
        let mut ranges = 0;
        let _ = plan.apply(|node| {
            if let Some(ds) = node.downcast_ref::<DataSourceExec>()
                && let Some(scan) = ds.data_source().downcast_ref::<FileScanConfig>()
            {
                ranges += scan.file_groups.iter().map(|g| g.len()).sum::<usize>();
            }
            Ok(TreeNodeRecursion::Continue)
        });
        assert!(ranges > 1, "the file was not split: {ranges} range(s)");
        let est = estimate(&plan);
        assert_eq!(est.files, 1);
        assert_eq!(est.rows, 200_000);
        assert_eq!(est.bytes, std::fs::metadata(&path).unwrap().len());
        assert!(!forwards_rows(&plan), "an aggregate is work to spread");
        assert!(
            independent_partitions(&plan).is_none(),
            "an aggregate's partitions meet in its final step"
        );
        let read = physical("SELECT v FROM t LIMIT 10").await;
        assert!(forwards_rows(&read));
        // A filtered read of the ranges can be read as one stream each.
        let filtered = physical("SELECT v FROM t WHERE v % 7 = 0").await;
        let (_, n) = independent_partitions(&filtered).expect("independent partitions");
        assert_eq!(n, ranges);
    }
}
