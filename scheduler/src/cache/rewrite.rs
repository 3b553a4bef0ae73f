//! Answering a query from a materialized view without being asked to.
//!
//! After a statement is planned, every part of its plan is compared with
//! the plan of each cache's query. The comparison is by meaning, not by
//! names: both plans are analyzed (views expanded, types coerced), then
//! written in a canonical form ([`Canon`]) where a column is its position
//! in the node's input, aliases and subquery names are gone, the AND-ed
//! conditions of a filter and the equalities of a join are sorted, and
//! projections that only pass their input through are skipped. A part
//! whose canonical form is the cache's is replaced by a scan of the
//! cache's files; a projection over the cache query's body is answered
//! from the cache when each of its expressions is one the cache keeps.
//! Filters, joins and aggregates above the replaced part run on the cache
//! as they would have on the live rows.
//!
//! Nothing else is rewritten: a plan with a subquery expression, a
//! volatile function, an outer reference or a node this module does not
//! know stays live. When in doubt the answer is computed from the
//! sources.
//!
//! Freshness: a cache is used only when its serving generation is no older
//! than the query allows (`quipu.max_staleness`, else the cache's own
//! `max_staleness`, else any age). A cache that could answer but is too
//! old is handled by `quipu.stale_cache`: `live` answers from the
//! sources and says so in EXPLAIN, `error` fails, `wait` refreshes first.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchemaRef, ScalarValue, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionState;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    BinaryExpr, Cast, Distinct, Expr, ExprSchemable, JoinType, LogicalPlan, LogicalPlanBuilder,
    Operator, Projection,
};
use quipu_catalog::{CacheDef, DEFAULT_CATALOG, DEFAULT_SCHEMA, ReadWith};
use quipu_connectors::catalog::cache::CacheTable;
use quipu_connectors::dialect::datetime_input::DateOrder;
use quipu_connectors::{Access, QuipuOptions, StaleCache};

use super::{human, now_ms};
use crate::error::{Result, SchedulerError};

/// What [`apply`] did to a plan.
pub(crate) enum Outcome {
    /// Nothing: plan it as it is.
    Unchanged(LogicalPlan),
    /// Parts are read from caches (or marked as not read from a stale one).
    Rewritten(LogicalPlan),
    /// A stale cache was refreshed (`stale_cache = 'wait'`): plan the
    /// statement again.
    Refreshed,
}

/// What is kept of a cache between statements: everything about it that
/// depends only on the catalog and on the session's planning settings
/// (the default catalog and schema, the time zone). Planning a cache's
/// query and writing it canonically took most of a cached statement's
/// time (about 50 ms per statement in a debug build), so it is done once
/// per catalog generation ([`Memo`]).
pub(crate) struct Prepared {
    def: CacheDef,
    provider: Arc<dyn TableProvider>,
    /// Canonical form of the cache's analyzed query.
    whole: String,
    /// When the query is a projection: the canonical form of its input and
    /// of each of its expressions.
    body: Option<(String, Vec<String>)>,
    /// What the projection's input is, when it is one the finer rules
    /// read (a filtered scan or join, or a GROUP BY).
    shape: Option<Shape>,
    /// The tables the query reads: a part of a query over the same tables
    /// is one the cache was considered for (EXPLAIN says why not).
    tables: BTreeSet<String>,
    /// The query's joins: the tables under each and its type.
    joins: Vec<(BTreeSet<String>, JoinType)>,
}

/// The caches of one catalog generation, prepared ([`Prepared`]), per
/// planning fingerprint (default catalog, default schema, time zone).
/// Any change to the catalog (a refresh, a drop, a new source, ...) bumps
/// its generation, and the next statement prepares the caches again.
#[derive(Default)]
pub(crate) struct Memo {
    entries: Mutex<HashMap<Fingerprint, Generation>>,
    /// How many times the caches were prepared (tests and benchmarks).
    preparations: std::sync::atomic::AtomicU64,
}

impl Memo {
    pub(crate) fn preparations(&self) -> u64 {
        self.preparations.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn clear(&self) {
        self.entries.lock().unwrap().clear();
    }
}

type Fingerprint = (String, String, Option<String>);

/// The caches prepared at one catalog generation.
type Generation = (u64, Arc<Vec<Prepared>>);

/// A cache a query may be answered from, as this statement sees it.
struct Candidate<'a> {
    p: &'a Prepared,
    age: Duration,
    bound: Option<Duration>,
    /// A setting that changes answers which this session has otherwise
    /// than the cache's refresh had it: the cache must not answer.
    setting: Option<String>,
}

impl Candidate<'_> {
    fn fresh(&self) -> bool {
        self.bound.is_none_or(|b| self.age <= b)
    }

    fn name(&self) -> String {
        self.p.def.qualified()
    }
}

/// Why a cache over the same tables as (a part of) a query did not
/// answer it. Listed from the least to the most telling ([`Miss::rank`]):
/// of the reasons found at the parts of a query, EXPLAIN shows the most
/// telling.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Miss {
    /// Nothing more precise is known.
    Differs,
    /// The query lacks a condition of the cache's.
    NotImplied,
    /// The query reads a column the cache does not keep as it is
    /// (`true`: in a condition).
    Column(String, bool),
    /// A GROUP BY on an expression the cache does not group by.
    GroupKey(String),
    /// An aggregate that cannot be computed again from the cache's.
    Rollup(String),
    /// A join of another type than the cache's over the same tables.
    Join(JoinType, JoinType),
    /// A setting that changes answers differs from the refresh's.
    Setting(String),
}

impl Miss {
    fn rank(&self) -> u8 {
        match self {
            Miss::Differs => 0,
            Miss::NotImplied => 1,
            Miss::Column(..) => 2,
            Miss::GroupKey(_) => 3,
            Miss::Rollup(_) => 4,
            Miss::Join(..) => 5,
            Miss::Setting(_) => 6,
        }
    }

    /// The `reason` label of `quipu_cache_misses_total`.
    fn label(&self) -> &'static str {
        match self {
            Miss::Differs => "differs",
            Miss::NotImplied => "not_implied",
            Miss::Column(..) => "column_not_kept",
            Miss::GroupKey(_) => "group_key",
            Miss::Rollup(_) => "no_rollup",
            Miss::Join(..) => "join_type",
            Miss::Setting(_) => "setting",
        }
    }

    fn text(&self) -> String {
        match self {
            Miss::Differs => "its query differs".into(),
            Miss::NotImplied => "a condition not implied by the cache's".into(),
            Miss::Column(c, true) => format!("a filter on column {c} it does not keep"),
            Miss::Column(c, false) => format!("column {c}, which it does not keep"),
            Miss::GroupKey(k) => format!("a GROUP BY on {k}, which it does not group by"),
            Miss::Rollup(a) => format!("aggregate {a} cannot be rolled up"),
            Miss::Join(q, c) if *c == JoinType::Inner && *q != JoinType::Inner => {
                format!(
                    "{} outer join where the cache has an inner one",
                    join_word(*q)
                )
            }
            Miss::Join(q, c) => format!(
                "{} join where the cache has {} one",
                join_word(*q),
                join_word(*c)
            ),
            Miss::Setting(s) => s.clone(),
        }
    }
}

fn join_word(t: JoinType) -> String {
    match t {
        JoinType::Inner => "an inner".into(),
        JoinType::Left => "a left".into(),
        JoinType::Right => "a right".into(),
        JoinType::Full => "a full".into(),
        other => format!("a {}", other.to_string().to_ascii_lowercase()),
    }
}

/// The settings that change answers, as `state` has them (recorded with
/// each generation by the refresh).
pub(crate) fn read_with(state: &SessionState) -> ReadWith {
    let order = crate::session::options_of(state).date_order;
    ReadWith {
        time_zone: state.config_options().execution.time_zone.clone(),
        date_order: (order != DateOrder::Mdy).then(|| order.name().to_string()),
    }
}

/// The order the date text of a cache's query was read in when its
/// generation was computed: its defining query is given the same meaning
/// to be matched, so a query whose date text this session reads
/// otherwise (`'05/01/2024'` under `DateStyle` DMY) does not match it.
fn order_read_with(then: Option<&ReadWith>) -> DateOrder {
    then.and_then(|r| r.date_order.as_deref())
        .and_then(DateOrder::named)
        .unwrap_or_default()
}

/// Why a session with `now` may not read a generation computed with
/// `then`, if it may not.
fn setting_differs(then: Option<&ReadWith>, now: &ReadWith) -> Option<String> {
    let shown = |tz: &Option<String>| match tz {
        Some(tz) => format!("'{tz}'"),
        None => "unset (UTC)".to_string(),
    };
    match then {
        None => Some(
            "its generation was refreshed before Quipu recorded the time zone it was computed in; refresh it"
                .to_string(),
        ),
        Some(then) if then.time_zone != now.time_zone => Some(format!(
            "computed with datafusion.execution.time_zone {}, this session has {}",
            shown(&then.time_zone),
            shown(&now.time_zone)
        )),
        Some(_) => None,
    }
}

/// The bound on a cache's age for this query.
fn bound(opts: &QuipuOptions, def: &CacheDef) -> Option<Duration> {
    opts.max_staleness
        .or(def.max_staleness_secs.map(Duration::from_secs))
}

fn stale_message(name: &str, age: Duration, bound: Option<Duration>) -> String {
    format!(
        "materialized view {name} is {} old, older than this query allows ({}; quipu.stale_cache = 'error')",
        human(age),
        human(bound.unwrap_or_default())
    )
}

fn stale_error(name: &str, age: Duration, bound: Option<Duration>) -> SchedulerError {
    SchedulerError::Query(DataFusionError::Execution(stale_message(name, age, bound)))
}

/// What EXPLAIN shows for a cache too old for the query.
fn too_old(name: &str, age: Duration, bound: Option<Duration>) -> String {
    format!(
        "not from cache {name}: too old for max_staleness (age {} > {})",
        human(age),
        human(bound.unwrap_or_default())
    )
}

/// `node` under a name that EXPLAIN shows (`note`), its output unchanged.
fn noted(node: LogicalPlan, note: String) -> DfResult<LogicalPlan> {
    let like = node.clone();
    renamed_like(
        LogicalPlanBuilder::from(node)
            .alias(TableReference::bare(note))?
            .build()?,
        &like,
        &every(&like),
    )
}

/// The tables a plan reads (resolved names), subqueries included.
fn tables_of(plan: &LogicalPlan, canon: &Canon) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let _ = plan.apply_with_subqueries(|n| {
        if let LogicalPlan::TableScan(t) = n {
            out.insert(
                t.table_name
                    .clone()
                    .resolve(canon.catalog, canon.schema)
                    .to_string(),
            );
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

/// The joins of a plan: the tables under each, and its type.
fn joins_of(plan: &LogicalPlan, canon: &Canon) -> Vec<(BTreeSet<String>, JoinType)> {
    let mut out = Vec::new();
    let _ = plan.apply(|n| {
        if let LogicalPlan::Join(j) = n {
            out.push((tables_of(n, canon), j.join_type));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

/// The caches of the catalog, prepared for this session's planning
/// settings: from the memo when the catalog has not changed since.
async fn prepared(
    engine: &Arc<crate::engine::Engine>,
    state: &SessionState,
    canon: &Canon<'_>,
) -> Arc<Vec<Prepared>> {
    let generation = engine.session().store().generation().ok();
    let key: Fingerprint = (
        canon.catalog.to_string(),
        canon.schema.to_string(),
        state.config_options().execution.time_zone.clone(),
    );
    let memo = engine.cache_memo();
    if let Some(g) = generation
        && let Some((at, entry)) = memo.entries.lock().unwrap().get(&key)
        && *at == g
    {
        return entry.clone();
    }
    memo.preparations
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut out = Vec::new();
    for def in engine.session().catalogs().caches() {
        if def.state.location.is_none() {
            continue;
        }
        let Some(provider) = table(state, &def).await else {
            continue;
        };
        let Some(cache) = (provider.as_ref() as &dyn std::any::Any).downcast_ref::<CacheTable>()
        else {
            continue;
        };
        // The defining query as a query reading the view is planned:
        // with PostgreSQL's meaning (a double cast to numeric is
        // `quipu_float_numeric` there), or the two would never match.
        let zone = state.config_options().execution.time_zone.clone();
        let order = order_read_with(def.state.read_with.as_ref());
        let Ok(view) =
            crate::session::postgresql_meaning(cache.defining.clone(), zone.as_deref(), order)
                .and_then(|v| crate::session::analyzed(state, v))
                .and_then(|v| super::join_order::in_canonical_order(v, canon))
        else {
            continue;
        };
        let Some(whole) = canon.plan(&view) else {
            continue;
        };
        let body = match strip_aliases(&view) {
            LogicalPlan::Projection(p) => canon.plan(&p.input).and_then(|input| {
                let exprs = p
                    .expr
                    .iter()
                    .map(|e| canon.expr(e, &[p.input.schema()]))
                    .collect::<Option<Vec<_>>>()?;
                Some((input, exprs))
            }),
            _ => None,
        };
        let shape = match strip_aliases(&view) {
            LogicalPlan::Projection(p) => Shape::of(canon, &p.input),
            _ => None,
        };
        tracing::trace!(cache = %def.qualified(), canonical = %whole, "materialized view prepared");
        out.push(Prepared {
            def,
            tables: tables_of(&view, canon),
            joins: joins_of(&view, canon),
            provider,
            whole,
            body,
            shape,
        });
    }
    // Where several caches can answer, the smallest does.
    out.sort_by_key(|p| p.def.state.rows);
    let out = Arc::new(out);
    if let Some(g) = generation {
        let mut entries = memo.entries.lock().unwrap();
        entries.retain(|_, (at, _)| *at == g);
        entries.insert(key, (g, out.clone()));
    }
    out
}

/// Rewrites `plan` to read the caches it may, as described in the module
/// documentation. `waited`: the statement is planned again after the
/// refreshes it waited for (`stale_cache = 'wait'`), and reads the new
/// generations whatever their age by now. `opts`: the session's `quipu.`
/// settings with the statement's own hints over them.
pub(crate) async fn apply(
    engine: &Arc<crate::engine::Engine>,
    state: &SessionState,
    access: &Access,
    plan: LogicalPlan,
    waited: bool,
    opts: &QuipuOptions,
) -> Result<Outcome> {
    if engine.session().catalogs().caches().is_empty() {
        return Ok(Outcome::Unchanged(plan));
    }
    if matches!(
        plan,
        LogicalPlan::Ddl(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::DescribeTable(_)
    ) {
        return Ok(Outcome::Unchanged(plan));
    }
    // Caches read by name: too old for this query, they are read live (or
    // refused, or refreshed first).
    let mut to_refresh = Vec::new();
    let named =
        plan.clone()
            .transform_up_with_subqueries(|node| {
                let LogicalPlan::TableScan(scan) = &node else {
                    return Ok(Transformed::no(node));
                };
                let Some(provider) = cache_of(&scan.source) else {
                    return Ok(Transformed::no(node));
                };
                let Some(cache) =
                    (provider.as_ref() as &dyn std::any::Any).downcast_ref::<CacheTable>()
                else {
                    return Ok(Transformed::no(node));
                };
                let age = Duration::from_millis(cache.age_ms(now_ms()));
                let limit = bound(opts, &cache.def);
                if waited || limit.is_none_or(|b| age <= b) {
                    return Ok(Transformed::no(node));
                }
                let key = cache.def.qualified();
                quipu_connectors::metrics::metrics()
                    .cache_misses
                    .with_label_values(&[&key, "too_old"])
                    .inc();
                match opts.stale_cache {
                    StaleCache::Error => {
                        Err(DataFusionError::Execution(stale_message(&key, age, limit)))
                    }
                    StaleCache::Wait => {
                        to_refresh.push((cache.def.schema.clone(), cache.def.name.clone()));
                        Ok(Transformed::no(node))
                    }
                    StaleCache::Live => {
                        let mut live = LogicalPlanBuilder::from(cache.defining.clone())
                            .alias(scan.table_name.clone())?;
                        if let Some(columns) = &scan.projection {
                            let schema = live.schema().clone();
                            live =
                                live.project(columns.iter().map(|&i| {
                                    Expr::Column(Column::from(schema.qualified_field(i)))
                                }))?;
                        }
                        Ok(Transformed::yes(live.build()?))
                    }
                }
            })
            .map_err(SchedulerError::Query)?;
    if !to_refresh.is_empty() {
        for (schema, name) in to_refresh {
            super::refresh::refresh(engine, &schema, &name).await?;
        }
        return Ok(Outcome::Refreshed);
    }
    let named_changed = named.transformed;
    let plan = named.data;

    let catalog = state.config_options().catalog.clone();
    let canon = Canon {
        catalog: &catalog.default_catalog,
        schema: &catalog.default_schema,
    };
    let all = prepared(engine, state, &canon).await;
    let session_settings = read_with(state);
    let mut candidates = Vec::new();
    for p in all.iter() {
        // A user who may not read what the cache reads is not answered
        // from it (the grant check would refuse the plan anyway).
        let Some(cache) = (p.provider.as_ref() as &dyn std::any::Any).downcast_ref::<CacheTable>()
        else {
            continue;
        };
        if access
            .first_denied(&cache.defining, DEFAULT_CATALOG, DEFAULT_SCHEMA)
            .is_some()
        {
            continue;
        }
        let age = Duration::from_millis(cache.age_ms(now_ms()));
        quipu_connectors::metrics::metrics()
            .cache_age_seconds
            .with_label_values(&[&p.def.qualified()])
            .set(age.as_secs() as i64);
        candidates.push(Candidate {
            // A query that waited for a refresh reads what it waited for.
            bound: if waited { None } else { bound(opts, &p.def) },
            setting: setting_differs(p.def.state.read_with.as_ref(), &session_settings),
            p,
            age,
        });
    }
    if candidates.is_empty() {
        return Ok(if named_changed {
            Outcome::Rewritten(plan)
        } else {
            Outcome::Unchanged(plan)
        });
    }
    let Ok(analyzed) = crate::session::analyzed(state, plan.clone())
        .and_then(|p| super::join_order::in_canonical_order(p, &canon))
    else {
        // The planner reports the error with its own words.
        return Ok(Outcome::Unchanged(plan));
    };
    let mut stale: Option<SchedulerError> = None;
    let mut wait = Vec::new();
    // Per candidate: whether it answered (or was too old, which EXPLAIN
    // says where it would have answered), and the most telling reason it
    // did not answer a part of the query over its tables.
    let mut used = vec![false; candidates.len()];
    let mut missed: Vec<Option<Miss>> = vec![None; candidates.len()];
    let rewritten = analyzed
        .transform_down(|node| {
            if !rewritable(&node) {
                return Ok(Transformed::no(node));
            }
            let tables = tables_of(&node, &canon);
            // The first cache that could answer but is too old: used only
            // when no fresh one answers.
            let mut too_old_match: Option<usize> = None;
            for (i, c) in candidates.iter().enumerate() {
                if c.p.tables != tables {
                    continue;
                }
                let miss = match answer(&canon, c, &node)? {
                    Ok(_) | Err(_) if c.setting.is_some() => {
                        Miss::Setting(c.setting.clone().unwrap_or_default())
                    }
                    Ok(read) if c.fresh() => {
                        quipu_connectors::metrics::metrics()
                            .cache_hits
                            .with_label_values(&[&c.name()])
                            .inc();
                        used[i] = true;
                        return Ok(Transformed::new(read, true, TreeNodeRecursion::Jump));
                    }
                    Ok(_) => {
                        too_old_match.get_or_insert(i);
                        continue;
                    }
                    Err(miss) => join_miss(c, &node, &canon).unwrap_or(miss),
                };
                if missed[i].as_ref().is_none_or(|m| m.rank() < miss.rank()) {
                    missed[i] = Some(miss);
                }
            }
            if let Some(i) = too_old_match {
                let c = &candidates[i];
                used[i] = true;
                quipu_connectors::metrics::metrics()
                    .cache_misses
                    .with_label_values(&[&c.name(), "too_old"])
                    .inc();
                return match opts.stale_cache {
                    StaleCache::Error => {
                        stale.get_or_insert_with(|| stale_error(&c.name(), c.age, c.bound));
                        Ok(Transformed::new(node, false, TreeNodeRecursion::Jump))
                    }
                    StaleCache::Wait => {
                        let key = (c.p.def.schema.clone(), c.p.def.name.clone());
                        if !wait.contains(&key) {
                            wait.push(key);
                        }
                        Ok(Transformed::new(node, false, TreeNodeRecursion::Jump))
                    }
                    StaleCache::Live => {
                        let marked = noted(node, too_old(&c.name(), c.age, c.bound))?;
                        Ok(Transformed::new(marked, true, TreeNodeRecursion::Jump))
                    }
                };
            }
            Ok(Transformed::no(node))
        })
        .map_err(SchedulerError::Query)?;
    if let Some(e) = stale {
        return Err(e);
    }
    if !wait.is_empty() {
        for (schema, name) in wait {
            super::refresh::refresh(engine, &schema, &name).await?;
        }
        return Ok(Outcome::Refreshed);
    }
    // Caches considered and not used: EXPLAIN says why, on the highest
    // part of the plan over the cache's tables that is still there.
    let notes: Vec<(usize, Miss)> = missed
        .into_iter()
        .enumerate()
        .filter_map(|(i, m)| Some((i, m?)))
        .filter(|(i, _)| !used[*i])
        .collect();
    let mut changed = rewritten.transformed;
    let mut plan_out = rewritten.data;
    if !notes.is_empty() {
        let mut pending = notes;
        let marked = plan_out
            .transform_down(|node| {
                if pending.is_empty() || !rewritable(&node) {
                    return Ok(Transformed::no(node));
                }
                let tables = tables_of(&node, &canon);
                let (here, rest): (Vec<_>, Vec<_>) = pending
                    .drain(..)
                    .partition(|(i, _)| candidates[*i].p.tables == tables);
                pending = rest;
                if here.is_empty() {
                    return Ok(Transformed::no(node));
                }
                note_misses(node, here, &candidates).map(Transformed::yes)
            })
            .map_err(SchedulerError::Query)?;
        changed |= marked.transformed;
        plan_out = marked.data;
        // Caches over tables another cache now answers for: noted at the
        // top of the query.
        if !pending.is_empty() {
            let marked = plan_out
                .transform_down(|node| {
                    if pending.is_empty() || !rewritable(&node) {
                        return Ok(Transformed::no(node));
                    }
                    let here = std::mem::take(&mut pending);
                    note_misses(node, here, &candidates)
                        .map(|n| Transformed::new(n, true, TreeNodeRecursion::Stop))
                })
                .map_err(SchedulerError::Query)?;
            changed |= marked.transformed;
            plan_out = marked.data;
        }
    }
    Ok(if changed {
        Outcome::Rewritten(plan_out)
    } else if named_changed {
        Outcome::Rewritten(plan)
    } else {
        Outcome::Unchanged(plan)
    })
}

/// `node` under the notes of the caches `misses` names (EXPLAIN shows
/// them), each counted in `quipu_cache_misses_total` by reason.
fn note_misses(
    mut node: LogicalPlan,
    misses: Vec<(usize, Miss)>,
    candidates: &[Candidate],
) -> DfResult<LogicalPlan> {
    for (i, miss) in misses {
        let c = &candidates[i];
        quipu_connectors::metrics::metrics()
            .cache_misses
            .with_label_values(&[&c.name(), miss.label()])
            .inc();
        node = noted(
            node,
            format!("not from cache {}: {}", c.name(), miss.text()),
        )?;
    }
    Ok(node)
}

/// Whether a node is one a cache may answer (or be noted at): a part of
/// a query, not a statement around it (EXPLAIN, DML, ...).
fn rewritable(node: &LogicalPlan) -> bool {
    matches!(
        node,
        LogicalPlan::Projection(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::Aggregate(_)
            | LogicalPlan::Join(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Distinct(_)
            | LogicalPlan::Window(_)
            | LogicalPlan::Union(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::TableScan(_)
    )
}

/// A join of the query whose tables are those of a join of the cache's,
/// of another type: the reason the cache cannot answer.
fn join_miss(c: &Candidate, node: &LogicalPlan, canon: &Canon) -> Option<Miss> {
    let ours = joins_of(node, canon);
    ours.iter().find_map(|(tables, t)| {
        c.p.joins
            .iter()
            .find(|(theirs, ct)| theirs == tables && ct != t)
            .map(|(_, ct)| Miss::Join(*t, *ct))
    })
}

/// The cache table behind a scan's source, if it is one.
fn cache_of(
    source: &Arc<dyn datafusion::logical_expr::TableSource>,
) -> Option<Arc<dyn TableProvider>> {
    let provider = datafusion::datasource::source_as_provider(source).ok()?;
    (provider.as_ref() as &dyn std::any::Any)
        .downcast_ref::<CacheTable>()
        .is_some()
        .then_some(provider)
}

/// The cache's table as this session sees it.
async fn table(state: &SessionState, def: &CacheDef) -> Option<Arc<dyn TableProvider>> {
    let schema = state
        .catalog_list()
        .catalog(DEFAULT_CATALOG)?
        .schema(&def.schema)?;
    schema.table(&def.name).await.ok().flatten()
}

fn strip_aliases(plan: &LogicalPlan) -> &LogicalPlan {
    match plan {
        LogicalPlan::SubqueryAlias(a) => strip_aliases(&a.input),
        other => other,
    }
}

/// What [`answer`] and its rules give: the part read from the cache, or
/// why the cache cannot answer it.
type Try = DfResult<std::result::Result<LogicalPlan, Miss>>;

/// `node` read from the cache `c`, when the cache can answer it: the
/// whole of it, a projection of the cache's input, a projection or
/// aggregate over the cache's filtered input with more conditions, or a
/// coarser GROUP BY over the cache's. Why not when it cannot.
fn answer(canon: &Canon, c: &Candidate, node: &LogicalPlan) -> Try {
    let p = c.p;
    if canon.plan(node).as_deref() == Some(p.whole.as_str()) {
        return renamed_like(cache_scan(c)?, node, &every(node)).map(Ok);
    }
    if let (Some((body, exprs)), LogicalPlan::Projection(proj)) = (&p.body, node)
        && canon.plan(&proj.input).as_deref() == Some(body.as_str())
    {
        let columns = proj
            .expr
            .iter()
            .map(|e| {
                let e = canon.expr(e, &[proj.input.schema()])?;
                exprs.iter().position(|x| *x == e)
            })
            .collect::<Option<Vec<_>>>();
        if let Some(columns) = columns {
            let columns: Vec<Option<usize>> = columns.into_iter().map(Some).collect();
            return renamed_like(cache_scan(c)?, node, &columns).map(Ok);
        }
    }
    match &p.shape {
        Some(Shape::Select { filter, base }) => select(canon, c, filter, base, node),
        Some(Shape::Grouped { group, aggs, base }) => rollup(canon, c, group, aggs, base, node),
        None => Ok(Err(Miss::Differs)),
    }
}

/// What a cache query's projection reads.
enum Shape {
    /// Rows of `base` (a scan, a join, ...) kept by the AND-ed `filter`.
    Select { filter: Vec<String>, base: String },
    /// `GROUP BY group` with aggregates `aggs` over `base`.
    Grouped {
        group: Vec<String>,
        aggs: Vec<String>,
        base: String,
    },
}

impl Shape {
    fn of(canon: &Canon, input: &LogicalPlan) -> Option<Shape> {
        match strip_aliases(input) {
            LogicalPlan::Filter(f) => Some(Shape::Select {
                filter: canon.conjuncts(&f.predicate, &[f.input.schema()])?,
                base: canon.plan(&f.input)?,
            }),
            LogicalPlan::Aggregate(a) => {
                if a.group_expr
                    .iter()
                    .any(|g| matches!(g, Expr::GroupingSet(_)))
                {
                    return None;
                }
                let inputs = [a.input.schema()];
                Some(Shape::Grouped {
                    group: a
                        .group_expr
                        .iter()
                        .map(|g| canon.expr(g, &inputs))
                        .collect::<Option<_>>()?,
                    aggs: a
                        .aggr_expr
                        .iter()
                        .map(|g| canon.expr(g, &inputs))
                        .collect::<Option<_>>()?,
                    base: canon.plan(&a.input)?,
                })
            }
            other => Some(Shape::Select {
                filter: vec![],
                base: canon.plan(other)?,
            }),
        }
    }
}

/// The cache's column that is its query's input column `position` as it
/// is, if it keeps it.
fn kept(c: &Candidate, position: usize) -> Option<usize> {
    let (_, exprs) = c.p.body.as_ref()?;
    let want = format!("#{position}");
    exprs.iter().position(|e| *e == want)
}

/// Positions in `schema` of the columns `exprs` read; None when one is not
/// in it or an expression holds a subquery.
fn positions(exprs: &[Expr], schema: &DFSchemaRef) -> Option<std::collections::BTreeSet<usize>> {
    let mut out = std::collections::BTreeSet::new();
    for e in exprs {
        let mut ok = true;
        let _ = e.apply(|x| {
            match x {
                Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::OuterReferenceColumn(..) => ok = false,
                Expr::Column(col) => match schema.index_of_column(col) {
                    Ok(i) => {
                        out.insert(i);
                    }
                    Err(_) => ok = false,
                },
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
        if !ok {
            return None;
        }
    }
    Some(out)
}

/// A projection or aggregate over the cache query's input with the
/// cache's conditions and maybe more: the input is read from the cache
/// (the columns the node and the extra conditions use; the others, unused,
/// as NULLs) and the extra conditions run on it.
fn select(canon: &Canon, c: &Candidate, filter: &[String], base: &str, node: &LogicalPlan) -> Try {
    if !matches!(node, LogicalPlan::Projection(_) | LogicalPlan::Aggregate(_)) {
        return Ok(Err(Miss::Differs));
    }
    let input = node.inputs()[0];
    let (conditions, below) = match strip_aliases(input) {
        LogicalPlan::Filter(f) => (split_conjunction(&f.predicate), f.input.as_ref()),
        other => (vec![], other),
    };
    if canon.plan(below).as_deref() != Some(base) {
        return Ok(Err(Miss::Differs));
    }
    let below_schema = below.schema();
    let mut extra = Vec::new();
    let mut have = std::collections::BTreeSet::new();
    for cond in &conditions {
        let Some(k) = canon.expr(cond, &[below_schema]) else {
            return Ok(Err(Miss::Differs));
        };
        if !filter.contains(&k) {
            extra.push((*cond).clone());
        }
        have.insert(k);
    }
    // Every condition of the cache must be among the query's (as a set:
    // the same condition twice counts once).
    if !filter.iter().all(|w| have.contains(w)) {
        return Ok(Err(Miss::NotImplied));
    }
    let Some(mut used) = positions(&node.expressions(), input.schema()) else {
        return Ok(Err(Miss::Differs));
    };
    let Some(in_extra) = positions(&extra, below_schema) else {
        return Ok(Err(Miss::Differs));
    };
    let in_conditions = in_extra.clone();
    used.extend(in_extra);
    let mut columns = Vec::with_capacity(below_schema.fields().len());
    for j in 0..below_schema.fields().len() {
        if used.contains(&j) {
            match kept(c, j) {
                Some(k) => columns.push(Some(k)),
                None => {
                    return Ok(Err(Miss::Column(
                        below_schema.field(j).name().clone(),
                        in_conditions.contains(&j),
                    )));
                }
            }
        } else {
            columns.push(None);
        }
    }
    let mut rows = renamed_like(cache_scan(c)?, below, &columns)?;
    if let Some(condition) = datafusion::logical_expr::utils::conjunction(extra) {
        rows = LogicalPlanBuilder::from(rows).filter(condition)?.build()?;
    }
    let rows = renamed_like(rows, input, &every(input))?;
    Ok(Ok(node.with_new_exprs(node.expressions(), vec![rows])?))
}

/// A GROUP BY over the cache query's input whose keys are among the
/// cache's keys and whose aggregates can be computed again from the
/// cache's: `sum` of sums, `sum` of counts, `min` of minimums, `max` of
/// maximums, and `avg` of a float or integer column as the sum of its sums
/// over the sum of its counts. Anything else (`count(DISTINCT ...)`, an
/// average of averages, a decimal average whose rounding would differ)
/// is not rewritten.
fn rollup(
    canon: &Canon,
    c: &Candidate,
    group: &[String],
    aggs: &[String],
    base: &str,
    node: &LogicalPlan,
) -> Try {
    use datafusion::functions_aggregate::expr_fn::{max, min, sum};
    use datafusion::logical_expr::expr::AggregateFunction;
    let LogicalPlan::Aggregate(a) = node else {
        return Ok(Err(Miss::Differs));
    };
    // The cache's input as it is (its own conditions and no more), or
    // conditions on the query's rows before they are grouped, kept when
    // they read only columns the cache groups by.
    let (conditions, below) = match strip_aliases(&a.input) {
        _ if canon.plan(&a.input).as_deref() == Some(base) => (vec![], a.input.as_ref()),
        LogicalPlan::Filter(f) => (split_conjunction(&f.predicate), f.input.as_ref()),
        other => (vec![], other),
    };
    if canon.plan(below).as_deref() != Some(base) {
        return Ok(Err(Miss::Differs));
    }
    let inputs = [a.input.schema()];
    let mut scan = cache_scan(c)?;
    let scan_schema = scan.schema().clone();
    let cache_col = |k: usize| Expr::Column(Column::from(scan_schema.qualified_field(k)));
    // The cache's column holding its query's output `position` as it is.
    let output = |position: usize| kept(c, position);
    // The cache's column holding input column `j` of the query, when the
    // cache groups by it as it is.
    let key_column = |j: usize| {
        let want = format!("#{j}");
        group.iter().position(|g| *g == want).and_then(&output)
    };
    if !conditions.is_empty() {
        let below_schema = below.schema();
        let mut moved = Vec::new();
        for cond in conditions {
            if positions(std::slice::from_ref(cond), below_schema).is_none() {
                return Ok(Err(Miss::Differs));
            }
            let mut ok = true;
            let mut not_kept = String::new();
            let on_cache = cond
                .clone()
                .transform_up(|e| {
                    Ok(match e {
                        Expr::Column(col) => match below_schema
                            .index_of_column(&col)
                            .ok()
                            .and_then(&key_column)
                        {
                            Some(k) => Transformed::yes(cache_col(k)),
                            None => {
                                ok = false;
                                not_kept = col.name.clone();
                                Transformed::no(Expr::Column(col))
                            }
                        },
                        other => Transformed::no(other),
                    })
                })?
                .data;
            if !ok {
                return Ok(Err(Miss::Column(not_kept, true)));
            }
            moved.push(on_cache);
        }
        if let Some(condition) = datafusion::logical_expr::utils::conjunction(moved) {
            scan = LogicalPlanBuilder::from(scan).filter(condition)?.build()?;
        }
    }
    let mut keys = Vec::new();
    for g in &a.group_expr {
        let Some(k) = canon.expr(g, &inputs) else {
            return Ok(Err(Miss::Differs));
        };
        let no_key = || {
            Miss::GroupKey(match g {
                Expr::Column(c) => c.name.clone(),
                other => other.schema_name().to_string(),
            })
        };
        let Some(i) = group.iter().position(|x| *x == k) else {
            return Ok(Err(no_key()));
        };
        let Some(col) = output(i) else {
            return Ok(Err(no_key()));
        };
        keys.push(cache_col(col));
    }
    let find_agg = |text: &str| {
        aggs.iter()
            .position(|x| x == text)
            .and_then(|m| output(group.len() + m))
    };
    let mut new_aggs: Vec<Expr> = Vec::new();
    // Per aggregate of the query: how to compute it from the new
    // aggregate's outputs (indices into `new_aggs`).
    enum Out {
        Same(usize),
        Count(usize),
        /// The columns of the sum and the count, and whether the average
        /// is a numeric (of integers or decimals) or a double.
        Avg(usize, usize, bool),
    }
    let mut outs = Vec::new();
    for e in &a.aggr_expr {
        let inner = match e {
            Expr::Alias(al) => al.expr.as_ref(),
            other => other,
        };
        let Expr::AggregateFunction(AggregateFunction { func, params }) = inner else {
            return Ok(Err(Miss::Differs));
        };
        let no_rollup = || Miss::Rollup(aggregate_name(func.name(), params));
        if params.distinct
            || params.filter.is_some()
            || !params.order_by.is_empty()
            || params.null_treatment.is_some()
            || params.args.len() != 1
        {
            return Ok(Err(no_rollup()));
        }
        let Some(text) = canon.expr(inner, &inputs) else {
            return Ok(Err(Miss::Differs));
        };
        let arg = &params.args[0];
        let name = func.name().to_ascii_lowercase();
        let out = match name.as_str() {
            "sum" | "min" | "max" | "count" => {
                let Some(col) = find_agg(&text) else {
                    return Ok(Err(no_rollup()));
                };
                let re = match name.as_str() {
                    "sum" | "count" => sum(cache_col(col)),
                    "min" => min(cache_col(col)),
                    _ => max(cache_col(col)),
                };
                let at = push_once(&mut new_aggs, re);
                if name == "count" {
                    Out::Count(at)
                } else {
                    Out::Same(at)
                }
            }
            "avg" => {
                // The planner casts a `real` column to a double first.
                let arg = match arg {
                    Expr::Cast(cast) if cast.field.data_type() == &DataType::Float64 => {
                        cast.expr.as_ref()
                    }
                    other => other,
                };
                let Ok(t) = arg.get_type(a.input.schema().as_ref()) else {
                    return Ok(Err(Miss::Differs));
                };
                if !(t.is_integer() || t.is_floating()) {
                    return Ok(Err(no_rollup()));
                }
                let numeric = t.is_integer();
                let Some(arg_text) = canon.expr(arg, &inputs) else {
                    return Ok(Err(Miss::Differs));
                };
                // Sums of integers are numeric (as in PostgreSQL): planned,
                // the cache's sum reads a cast of the column.
                let sum_of = [
                    format!("sum({arg_text})"),
                    format!("sum(CAST({arg_text} AS Int64))"),
                    format!("sum(CAST({arg_text} AS Decimal128(19, 0)))"),
                ]
                .iter()
                .find_map(|t| find_agg(t));
                let (Some(s), Some(n)) = (sum_of, find_agg(&format!("count({arg_text})"))) else {
                    return Ok(Err(no_rollup()));
                };
                let s = push_once(&mut new_aggs, sum(cache_col(s)));
                let n = push_once(&mut new_aggs, sum(cache_col(n)));
                Out::Avg(s, n, numeric)
            }
            _ => return Ok(Err(no_rollup())),
        };
        outs.push(out);
    }
    let n_keys = keys.len();
    let regrouped = LogicalPlanBuilder::from(scan)
        .aggregate(keys, new_aggs)?
        .build()?;
    let schema = regrouped.schema().clone();
    let col = |i: usize| Expr::Column(Column::from(schema.qualified_field(i)));
    let mut exprs: Vec<Expr> = (0..n_keys).map(col).collect();
    let global = n_keys == 0;
    for out in outs {
        exprs.push(match out {
            Out::Same(i) => col(n_keys + i),
            Out::Count(i) if global => datafusion::functions::expr_fn::coalesce(vec![
                col(n_keys + i),
                datafusion::logical_expr::lit(0i64),
            ]),
            Out::Count(i) => col(n_keys + i),
            // PostgreSQL's average of integers is the numeric quotient of
            // their sum and count (`pg_numeric.rs`), rounded where it is.
            Out::Avg(s, n, true) => quipu_connectors::dialect::pg_numeric::numeric_div()
                .call(vec![col(n_keys + s), col(n_keys + n)]),
            Out::Avg(s, n, false) => {
                Expr::Cast(Cast::new(Box::new(col(n_keys + s)), DataType::Float64))
                    / Expr::Cast(Cast::new(Box::new(col(n_keys + n)), DataType::Float64))
            }
        });
    }
    // Cast each to the query's own type: planned again, a sum of counts
    // is a sum of bigints, which is numeric (as in PostgreSQL).
    let exprs = exprs
        .into_iter()
        .zip(node.schema().fields())
        .map(|(e, f)| Expr::Cast(Cast::new(Box::new(e), f.data_type().clone())))
        .collect();
    let computed = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(regrouped))?);
    renamed_like(computed, node, &every(node)).map(Ok)
}

/// An aggregate as EXPLAIN names it: `count(DISTINCT customer_id)`.
fn aggregate_name(
    func: &str,
    params: &datafusion::logical_expr::expr::AggregateFunctionParams,
) -> String {
    let args = params
        .args
        .iter()
        .map(|e| match e {
            Expr::Column(c) => c.name.clone(),
            Expr::Cast(Cast { expr, .. }) => match expr.as_ref() {
                Expr::Column(c) => c.name.clone(),
                other => other.schema_name().to_string(),
            },
            other => other.schema_name().to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let distinct = if params.distinct { "DISTINCT " } else { "" };
    format!("{func}({distinct}{args})")
}

/// The index of `e` in `exprs`, pushed there first if it is not yet.
fn push_once(exprs: &mut Vec<Expr>, e: Expr) -> usize {
    match exprs.iter().position(|x| *x == e) {
        Some(i) => i,
        None => {
            exprs.push(e);
            exprs.len() - 1
        }
    }
}

/// A scan of the cache's files, under a name that tells EXPLAIN's reader
/// which cache, which generation and how old.
fn cache_scan(c: &Candidate) -> DfResult<LogicalPlan> {
    let note = format!(
        "cache {}, generation {}, {} old",
        c.name(),
        c.p.def.state.generation,
        human(c.age)
    );
    LogicalPlanBuilder::scan(
        TableReference::partial(c.p.def.schema.as_str(), c.p.def.name.as_str()),
        provider_as_source(c.p.provider.clone()),
        None,
    )?
    .alias(TableReference::bare(note))?
    .build()
}

/// Every output column of `plan`, in order, for [`renamed_like`].
fn every(plan: &LogicalPlan) -> Vec<Option<usize>> {
    (0..plan.schema().fields().len()).map(Some).collect()
}

/// `input`'s columns `columns` under the names, qualifiers and types of
/// `like`'s output; a `None` column is a typed NULL (a column of `like`
/// that nothing above reads).
fn renamed_like(
    input: LogicalPlan,
    like: &LogicalPlan,
    columns: &[Option<usize>],
) -> DfResult<LogicalPlan> {
    let from = input.schema().clone();
    let exprs = like
        .schema()
        .iter()
        .zip(columns)
        .map(|((qualifier, field), k)| {
            let e = match *k {
                Some(i) => {
                    let e = Expr::Column(Column::from(from.qualified_field(i)));
                    if from.field(i).data_type() != field.data_type() {
                        Expr::Cast(Cast::new(Box::new(e), field.data_type().clone()))
                    } else {
                        e
                    }
                }
                None => datafusion::logical_expr::lit(ScalarValue::try_from(field.data_type())?),
            };
            Ok(e.alias_qualified(qualifier.cloned(), field.name()))
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(input),
    )?))
}

/// Plans and expressions written without names: see the module docs.
pub(crate) struct Canon<'a> {
    catalog: &'a str,
    schema: &'a str,
}

impl Canon<'_> {
    pub(crate) fn plan(&self, plan: &LogicalPlan) -> Option<String> {
        Some(match plan {
            LogicalPlan::SubqueryAlias(a) => return self.plan(&a.input),
            LogicalPlan::Projection(p) => {
                if is_identity(p) {
                    return self.plan(&p.input);
                }
                format!(
                    "P[{}]({})",
                    self.exprs(&p.expr, &[p.input.schema()])?,
                    self.plan(&p.input)?
                )
            }
            LogicalPlan::Filter(f) => format!(
                "F[{}]({})",
                self.conjunction(&f.predicate, &[f.input.schema()])?,
                self.plan(&f.input)?
            ),
            LogicalPlan::TableScan(t) => {
                if !t.filters.is_empty() {
                    return None;
                }
                let name = t.table_name.clone().resolve(self.catalog, self.schema);
                let fields: Vec<String> = t
                    .source
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| format!("{}:{}", f.name(), f.data_type()))
                    .collect();
                format!(
                    "T({name}|{}|{:?}|{:?})",
                    fields.join(","),
                    t.projection,
                    t.fetch
                )
            }
            LogicalPlan::Join(j) => {
                let inputs = [j.left.schema(), j.right.schema()];
                let mut on =
                    j.on.iter()
                        .map(|(l, r)| {
                            Some(format!(
                                "{}={}",
                                self.expr(l, &inputs)?,
                                self.expr(r, &inputs)?
                            ))
                        })
                        .collect::<Option<Vec<_>>>()?;
                on.sort();
                let filter = match &j.filter {
                    Some(f) => self.conjunction(f, &inputs)?,
                    None => String::new(),
                };
                format!(
                    "J{:?}{:?}[{}][{filter}]({})({})",
                    j.join_type,
                    j.null_equality,
                    on.join(","),
                    self.plan(&j.left)?,
                    self.plan(&j.right)?
                )
            }
            LogicalPlan::Aggregate(a) => format!(
                "A[{}][{}]({})",
                self.exprs(&a.group_expr, &[a.input.schema()])?,
                self.exprs(&a.aggr_expr, &[a.input.schema()])?,
                self.plan(&a.input)?
            ),
            LogicalPlan::Sort(s) => {
                let keys = s
                    .expr
                    .iter()
                    .map(|k| {
                        Some(format!(
                            "{} {} {}",
                            self.expr(&k.expr, &[s.input.schema()])?,
                            k.asc,
                            k.nulls_first
                        ))
                    })
                    .collect::<Option<Vec<_>>>()?;
                format!(
                    "S[{}]{:?}({})",
                    keys.join(","),
                    s.fetch,
                    self.plan(&s.input)?
                )
            }
            LogicalPlan::Limit(l) => format!(
                "L[{}][{}]({})",
                l.skip.as_ref().map(|e| e.to_string()).unwrap_or_default(),
                l.fetch.as_ref().map(|e| e.to_string()).unwrap_or_default(),
                self.plan(&l.input)?
            ),
            LogicalPlan::Distinct(Distinct::All(input)) => format!("D({})", self.plan(input)?),
            LogicalPlan::Union(u) => format!(
                "U({})",
                u.inputs
                    .iter()
                    .map(|i| self.plan(i))
                    .collect::<Option<Vec<_>>>()?
                    .join(")(")
            ),
            LogicalPlan::Window(w) => format!(
                "W[{}]({})",
                self.exprs(&w.window_expr, &[w.input.schema()])?,
                self.plan(&w.input)?
            ),
            LogicalPlan::Values(v) => {
                let rows: Vec<String> = v
                    .values
                    .iter()
                    .map(|row| {
                        row.iter()
                            .map(|e| format!("{e}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .collect();
                let types: Vec<String> = v
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.data_type().to_string())
                    .collect();
                format!("V[{}][{}]", types.join(","), rows.join(";"))
            }
            LogicalPlan::EmptyRelation(e) => {
                format!("E{}{}", e.produce_one_row, e.schema.fields().len())
            }
            _ => return None,
        })
    }

    fn exprs(&self, exprs: &[Expr], inputs: &[&DFSchemaRef]) -> Option<String> {
        Some(
            exprs
                .iter()
                .map(|e| self.expr(e, inputs))
                .collect::<Option<Vec<_>>>()?
                .join(","),
        )
    }

    /// AND-ed conditions in a canonical order.
    fn conjunction(&self, predicate: &Expr, inputs: &[&DFSchemaRef]) -> Option<String> {
        Some(self.conjuncts(predicate, inputs)?.join(" AND "))
    }

    /// The AND-ed conditions, each canonical, sorted, each once.
    fn conjuncts(&self, predicate: &Expr, inputs: &[&DFSchemaRef]) -> Option<Vec<String>> {
        let mut parts = split_conjunction(predicate)
            .into_iter()
            .map(|e| self.expr(e, inputs))
            .collect::<Option<Vec<_>>>()?;
        parts.sort();
        parts.dedup();
        Some(parts)
    }

    /// An expression with its columns as `#position` in `inputs` (one
    /// input, or a join's two), its aliases dropped and its equalities'
    /// sides in a canonical order.
    fn expr(&self, expr: &Expr, inputs: &[&DFSchemaRef]) -> Option<String> {
        if expr.is_volatile() {
            return None;
        }
        let mut ok = true;
        let out = expr
            .clone()
            .transform_up(|e| {
                Ok(match e {
                    Expr::Column(c) => {
                        let mut offset = 0;
                        let mut found = None;
                        for schema in inputs {
                            if let Ok(i) = schema.index_of_column(&c) {
                                found = Some(offset + i);
                                break;
                            }
                            offset += schema.fields().len();
                        }
                        match found {
                            Some(i) => {
                                Transformed::yes(Expr::Column(Column::from_name(format!("#{i}"))))
                            }
                            None => {
                                ok = false;
                                Transformed::no(Expr::Column(c))
                            }
                        }
                    }
                    Expr::Alias(a) => Transformed::yes(*a.expr),
                    Expr::ScalarSubquery(_)
                    | Expr::Exists(_)
                    | Expr::InSubquery(_)
                    | Expr::OuterReferenceColumn(..) => {
                        ok = false;
                        Transformed::no(e)
                    }
                    Expr::BinaryExpr(b) if b.op == Operator::Eq => {
                        if b.left.to_string() > b.right.to_string() {
                            Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                                b.right,
                                Operator::Eq,
                                b.left,
                            )))
                        } else {
                            Transformed::no(Expr::BinaryExpr(b))
                        }
                    }
                    other => Transformed::no(other),
                })
            })
            .ok()?
            .data;
        ok.then(|| format!("{out}"))
    }
}

/// A projection that passes its input's columns through in order.
fn is_identity(p: &Projection) -> bool {
    let input = p.input.schema();
    p.expr.len() == input.fields().len()
        && p.expr.iter().enumerate().all(|(i, e)| {
            let e = match e {
                Expr::Alias(a) => a.expr.as_ref(),
                other => other,
            };
            matches!(e, Expr::Column(c) if input.index_of_column(c).ok() == Some(i))
        })
}
