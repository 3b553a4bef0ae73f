//! Materialized views ("caches" of federated queries, docs/caching.md):
//! the statements that declare, refresh and drop them ([`statement`]), the
//! refresh that writes a generation of Parquet files and flips the
//! catalog's pointer to it ([`refresh`]), the periodic refresher, and the
//! rewrite that answers a query from a cache its freshness bound accepts
//! ([`rewrite`]).

mod join_order;
mod lake_files;
pub mod refresh;
pub mod rewrite;
pub mod statement;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use quipu_catalog::{CacheDef, CacheState, CatalogError};

pub use statement::{CacheStatement, desugar};

use crate::engine::Engine;
use crate::error::{Result, SchedulerError};
use crate::session::ClientSession;

fn plan_error(msg: String) -> SchedulerError {
    SchedulerError::Query(DataFusionError::Plan(msg))
}

/// The first function of `plan` whose answer may change between two calls
/// with the same arguments (`now()`, `random()`, ...): a cache of such a
/// query would be wrong the moment it is written.
fn first_volatile(plan: &LogicalPlan) -> Option<String> {
    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        for e in node.expressions() {
            let _ = e.apply(|x| {
                if let Expr::ScalarFunction(f) = x
                    && f.func.signature().volatility != Volatility::Immutable
                {
                    found = Some(f.func.name().to_string());
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// Runs a materialized-view statement (the session's user is an admin:
/// checked before).
pub async fn execute(
    engine: &Arc<Engine>,
    session: &ClientSession,
    statement: CacheStatement,
) -> Result<()> {
    let store = engine.session().store();
    match statement {
        CacheStatement::Create {
            schema,
            name,
            query,
            if_not_exists,
            refresh_every,
            max_staleness,
            storage,
            append_column,
        } => {
            let qualified = format!("{schema}.{name}");
            if store.cache(&schema, &name)?.is_some() {
                if if_not_exists {
                    return Ok(());
                }
                return Err(CatalogError::NameTaken {
                    kind: "materialized view",
                    name: qualified,
                }
                .into());
            }
            // It must plan, read only what this user may read, and give
            // the same answer twice.
            let mut parsed = session.parse(&query)?;
            if parsed.len() != 1 {
                return Err(plan_error(format!(
                    "materialized view {qualified}: its query must be one SELECT"
                )));
            }
            let plan = session
                .plan_definition(parsed.remove(0))
                .await
                .map_err(|e| {
                    plan_error(format!(
                        "materialized view {qualified}: its query does not plan: {e}"
                    ))
                })?;
            if !matches!(
                plan,
                LogicalPlan::Projection(_)
                    | LogicalPlan::Aggregate(_)
                    | LogicalPlan::Sort(_)
                    | LogicalPlan::Limit(_)
                    | LogicalPlan::Distinct(_)
                    | LogicalPlan::Union(_)
                    | LogicalPlan::Filter(_)
                    | LogicalPlan::Window(_)
                    | LogicalPlan::SubqueryAlias(_)
            ) {
                return Err(plan_error(format!(
                    "materialized view {qualified}: its query must be a SELECT"
                )));
            }
            session.check(&plan)?;
            if let Some(c) = &append_column {
                refresh::check_append_column(&qualified, &plan, c)?;
            }
            let analyzed = session.analyze(plan)?;
            if let Some(f) = first_volatile(&analyzed) {
                return Err(plan_error(format!(
                    "materialized view {qualified}: its query calls {f}(), whose answer changes from one call to the next; a cache of it would be wrong when read"
                )));
            }
            let def = CacheDef {
                schema: schema.clone(),
                name: name.clone(),
                sql: query,
                refresh_every_secs: refresh_every.map(|d| d.as_secs().max(1)),
                max_staleness_secs: max_staleness.map(|d| d.as_secs()),
                storage,
                append_column,
                state: CacheState::default(),
            };
            refresh::check_storage(engine, &def).await?;
            store.create_cache(&def)?;
            // Populated at once, as PostgreSQL's CREATE MATERIALIZED VIEW
            // is; if that fails, nothing is left declared.
            if let Err(e) = refresh::refresh(engine, &schema, &name).await {
                if let Ok(def) = store.drop_cache(&schema, &name) {
                    refresh::remove_all(engine, &def).await;
                }
                return Err(e);
            }
            Ok(())
        }
        CacheStatement::Refresh { schema, name } => {
            if store.cache(&schema, &name)?.is_none() {
                return Err(CatalogError::UnknownCache(format!("{schema}.{name}")).into());
            }
            refresh::refresh(engine, &schema, &name).await.map(|_| ())
        }
        CacheStatement::Drop {
            schema,
            name,
            if_exists,
        } => {
            let Some(def) = store.cache(&schema, &name)? else {
                if if_exists {
                    return Ok(());
                }
                return Err(CatalogError::UnknownCache(format!("{schema}.{name}")).into());
            };
            if refresh::busy(&def) {
                return Err(SchedulerError::Query(DataFusionError::Execution(format!(
                    "materialized view {} is being refreshed; drop it when the refresh is done",
                    def.qualified()
                ))));
            }
            let def = store.drop_cache(&schema, &name)?;
            refresh::remove_all(engine, &def).await;
            Ok(())
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A duration as people read it: `850 ms`, `12 s`, `5 min 3 s`, `2 h 5 min`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    let s = ms / 1_000;
    match s {
        0..60 => format!("{s} s"),
        60..3_600 if s.is_multiple_of(60) => format!("{} min", s / 60),
        60..3_600 => format!("{} min {} s", s / 60, s % 60),
        _ if s.is_multiple_of(3_600) => format!("{} h", s / 3_600),
        _ => format!("{} h {} min", s / 3_600, (s % 3_600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_millis(850)), "850 ms");
        assert_eq!(human(Duration::from_secs(12)), "12 s");
        assert_eq!(human(Duration::from_secs(300)), "5 min");
        assert_eq!(human(Duration::from_secs(303)), "5 min 3 s");
        assert_eq!(human(Duration::from_secs(7_500)), "2 h 5 min");
    }
}
