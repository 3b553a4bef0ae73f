//! Incremental refresh of a cache over one lake table by the table's new
//! files (docs/caching.md, "Incremental refresh").
//!
//! A lake table grows by files; files are written once and not changed.
//! A refresh records the files its generation read (path, size, last
//! modification). The next refresh lists the table again: when every
//! recorded file is still there as it was, only the files not recorded
//! are read and their rows added to the generation's; when one changed or
//! went, everything is read again.
//!
//! A full refresh reads the table as any query does (on the cluster when
//! it is big), so it does not choose its files: it lists them before and
//! after reading, and records them only when the two listings are the
//! same (a file that appeared meanwhile may or may not have been read). An
//! incremental refresh reads exactly the new files it listed, through
//! [`NewFiles`], in this process.

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Statistics;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableType, provider_as_source, source_as_provider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use futures::TryStreamExt;
use quipu_catalog::SourceFile;

/// The lake table the plan reads, when it reads exactly one table and
/// that is a lake (listing) table.
pub(crate) fn lake_table(plan: &LogicalPlan) -> Option<Arc<dyn TableProvider>> {
    let mut found = Vec::new();
    let _ = plan.apply_with_subqueries(|n| {
        if let LogicalPlan::TableScan(scan) = n {
            found.push(source_as_provider(&scan.source).ok());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match found.as_slice() {
        [Some(p)] if (p.as_ref() as &dyn Any).is::<ListingTable>() => Some(p.clone()),
        _ => None,
    }
}

/// The table's files now, sorted.
pub(crate) async fn list(
    state: &dyn Session,
    table: &Arc<dyn TableProvider>,
) -> DfResult<Vec<SourceFile>> {
    let Some(listing) = (table.as_ref() as &dyn Any).downcast_ref::<ListingTable>() else {
        return Err(DataFusionError::Internal("not a lake table".into()));
    };
    let extension = &listing.options().file_extension;
    let mut out = Vec::new();
    for url in listing.table_paths() {
        let store = state.runtime_env().object_store(url)?;
        let files: Vec<_> = url
            .list_all_files(state, store.as_ref(), extension)
            .await?
            .try_collect()
            .await?;
        out.extend(files.into_iter().map(|f| SourceFile {
            path: f.location.to_string(),
            size: f.size,
            modified_ms: f.last_modified.timestamp_millis(),
        }));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Of `now`, the files not in `read`; None when a file of `read` is no
/// longer in `now` as it was (changed or removed).
pub(crate) fn added(read: &[SourceFile], now: &[SourceFile]) -> Option<Vec<SourceFile>> {
    let now_set: HashSet<&SourceFile> = now.iter().collect();
    if !read.iter().all(|f| now_set.contains(f)) {
        return None;
    }
    let read_paths: HashSet<&str> = read.iter().map(|f| f.path.as_str()).collect();
    Some(
        now.iter()
            .filter(|f| !read_paths.contains(f.path.as_str()))
            .cloned()
            .collect(),
    )
}

/// `plan` with its lake table reading only the files `keep`.
pub(crate) fn only(plan: LogicalPlan, keep: &[SourceFile]) -> DfResult<LogicalPlan> {
    let keep: Arc<HashSet<String>> = Arc::new(keep.iter().map(|f| f.path.clone()).collect());
    plan.transform_up_with_subqueries(|n| {
        let LogicalPlan::TableScan(mut scan) = n else {
            return Ok(Transformed::no(n));
        };
        let inner = source_as_provider(&scan.source)?;
        scan.source = provider_as_source(Arc::new(NewFiles {
            inner,
            keep: keep.clone(),
        }));
        Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
    })
    .map(|t| t.data)
}

/// A lake table read through only some of its files (an incremental
/// refresh's new ones). Used in-process only: the cluster's codec does not
/// know it.
#[derive(Debug)]
struct NewFiles {
    inner: Arc<dyn TableProvider>,
    keep: Arc<HashSet<String>>,
}

#[async_trait]
impl TableProvider for NewFiles {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, projection, filters, limit).await?;
        let Some(config) = plan
            .downcast_ref::<DataSourceExec>()
            .and_then(|e| e.data_source().downcast_ref::<FileScanConfig>())
        else {
            // No file to read at all: nothing new either.
            if plan.is::<EmptyExec>() {
                return Ok(plan);
            }
            return Err(DataFusionError::Internal(format!(
                "an incremental refresh cannot choose the files of a {} scan",
                plan.name()
            )));
        };
        let groups: Vec<FileGroup> = config
            .file_groups
            .iter()
            .map(|g| {
                FileGroup::new(
                    g.iter()
                        .filter(|f| self.keep.contains(f.object_meta.location.as_ref()))
                        .cloned()
                        .collect(),
                )
            })
            .filter(|g| !g.is_empty())
            .collect();
        let schema = config.file_schema().clone();
        let config = FileScanConfigBuilder::from(config.clone())
            .with_file_groups(groups)
            .with_statistics(Statistics::new_unknown(&schema))
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
