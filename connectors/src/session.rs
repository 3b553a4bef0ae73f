//! The one session every Quipu query is planned by: the catalog, DataFusion's
//! default functions and rules, Quipu's options, and the object stores of
//! the lake sources. The scheduler builds client sessions from it, and the
//! executors run with the same state, so planning and execution agree.

use std::sync::Arc;

use datafusion::catalog::CatalogProviderList;
use datafusion::common::tree_node::Transformed;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{FunctionRegistry, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::optimizer::{ApplyOrder, Optimizer, OptimizerConfig, OptimizerRule};
use datafusion::optimizer::{Analyzer, AnalyzerRule};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::prelude::SessionConfig;
use object_store::memory::InMemory;
use quipu_catalog::{CatalogStore, DEFAULT_CATALOG, DEFAULT_SCHEMA};

use crate::catalog::QuipuCatalogList;
use crate::connector::{Env, MemoryStores};
use crate::error::Result;
use crate::options::QuipuOptions;

/// PostgreSQL's errors of doubles computed from constants alone, then
/// DataFusion's logical optimizer rules, then ours: mark joins over empty
/// inputs, then each source's pushdown, then PostgreSQL's errors of what
/// Quipu computes in doubles, then the cluster's empty relations.
fn optimizer_rules() -> Vec<Arc<dyn datafusion::optimizer::OptimizerRule + Send + Sync>> {
    let mut rules: Vec<Arc<dyn datafusion::optimizer::OptimizerRule + Send + Sync>> =
        vec![Arc::new(crate::dialect::float_errors::FloatErrors {
            constants_only: true,
        })];
    rules.extend(datafusion_rules());
    rules.push(Arc::new(
        crate::planning::repeated_sort_keys::RepeatedSortKeys,
    ));
    rules.push(Arc::new(crate::planning::empty_mark::EmptyMarkJoin));
    rules.push(Arc::new(
        crate::planning::uncorrelated_lateral::UncorrelatedLateral,
    ));
    rules.push(Arc::new(
        crate::planning::uncorrelated_mark::UncorrelatedMarkJoin,
    ));
    rules.extend(crate::registry::logical_rules());
    rules.push(Arc::new(crate::dialect::float_errors::FloatErrors {
        constants_only: false,
    }));
    rules.push(Arc::new(
        crate::planning::empty_relations::EmptyRelationsForTheCluster,
    ));
    rules
}

/// Builds a session state over a catalog list. Used for client sessions and
/// for planning views (whose catalog list carries the nesting depth).
pub(crate) fn build_state(
    list: Arc<dyn CatalogProviderList>,
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
) -> SessionState {
    let mut builder = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_catalog_list(list)
        .with_analyzer_rules(analyzer_rules())
        .with_optimizer_rules(optimizer_rules())
        .with_physical_optimizer_rules(crate::planning::ensure_requirements::fenced(
            crate::planning::projection_names::guarded(crate::planning::join_filters::guarded(
                crate::planning::missing_sorts::before_sanity_check(checked_first(
                    datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules,
                )),
            )),
        ))
        .with_physical_optimizer_rule(Arc::new(crate::remote::join_keys::JoinKeysOnly(
            crate::registry::remote_scan,
        )))
        .with_physical_optimizer_rule(Arc::new(crate::planning::cluster_plan::ForTheCluster))
        .with_physical_optimizer_rule(Arc::new(
            crate::planning::join_filters::NullableMergeJoinFilters,
        ))
        .with_physical_optimizer_rule(Arc::new(
            crate::planning::checked_arithmetic::CheckedArithmetic,
        ))
        .with_physical_optimizer_rule(Arc::new(crate::planning::short_circuit::ShortCircuitRule {
            filters: true,
        }))
        // Last: what the rules before left of partitioned joins.
        .with_physical_optimizer_rule(Arc::new(
            crate::planning::ensure_requirements::CoPartitionedJoins,
        ));
    // First, before DataFusion's: its own plans `@>` and `<@` of arrays
    // with other NULL rules.
    builder
        .expr_planners()
        .get_or_insert_with(Vec::new)
        .insert(0, Arc::new(crate::dialect::array_sets::ArrayOperators));
    let mut state = builder.build();
    for f in scalar_functions() {
        state
            .register_udf(Arc::clone(f))
            .expect("registering a function cannot fail");
    }
    for f in aggregate_functions() {
        state
            .register_udaf(Arc::clone(f))
            .expect("registering a function cannot fail");
    }
    datafusion::execution::FunctionRegistry::register_expr_planner(
        &mut state,
        Arc::new(crate::dialect::interval_scaling::IntervalTimesNumber),
    )
    .expect("registering a planner cannot fail");
    datafusion::execution::FunctionRegistry::register_expr_planner(
        &mut state,
        Arc::new(crate::dialect::json_access::JsonOperators),
    )
    .expect("registering a planner cannot fail");
    for (name, f) in crate::forecast::functions() {
        state.register_udtf(name, f);
    }
    state
}

/// DataFusion's physical rules with checked arithmetic first: projection
/// pushdown merges a projection's expressions into a file scan (Parquet,
/// CSV), where the last run of the rule no longer sees them; merged once
/// checked, they stay checked (`planning/checked_arithmetic.rs`).
fn checked_first(
    mut rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    rules.insert(
        0,
        Arc::new(crate::planning::checked_arithmetic::CheckedArithmetic),
    );
    // Likewise the guarding `AND`s and `OR`s of projections.
    rules.insert(
        1,
        Arc::new(crate::planning::short_circuit::ShortCircuitRule { filters: false }),
    );
    rules
}

/// The registered scalar function `name` (one of [`scalar_functions`]),
/// for a rule that writes a call of it.
pub fn scalar_function(name: &str) -> Arc<datafusion::logical_expr::ScalarUDF> {
    scalar_functions()
        .iter()
        .find(|f| f.name() == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} is registered in every session"))
}

/// Quipu's scalar functions, registered in every session: PostgreSQL's
/// meaning under DataFusion's names (`upper`, `concat`, ...) and its own
/// (`quipu_*`). The cluster codecs carry them by name
/// ([`crate::codec`]), so executors use these and not DataFusion's. Built
/// once per process.
pub fn scalar_functions() -> &'static [Arc<datafusion::logical_expr::ScalarUDF>] {
    static FUNCTIONS: std::sync::LazyLock<Vec<Arc<datafusion::logical_expr::ScalarUDF>>> =
        std::sync::LazyLock::new(|| {
            crate::dialect::case_mapping::functions()
                .into_iter()
                .chain(crate::dialect::concat::functions())
                .chain(crate::dialect::float_errors::functions())
                .chain(crate::dialect::pg_functions::functions())
                .chain(crate::dialect::pg_format::functions())
                .chain(crate::dialect::pg_builtins::functions())
                .chain(crate::dialect::text_types::functions())
                .chain(crate::dialect::interval_scaling::functions())
                .chain(crate::dialect::json_access::functions())
                .chain(crate::dialect::json_arguments::functions())
                .chain(crate::dialect::json_contains::functions())
                .chain(crate::dialect::pg_numeric_log::functions())
                .chain(crate::dialect::pads::functions())
                .chain(crate::dialect::arrays::functions())
                .chain(crate::dialect::bytea::functions())
                .chain(crate::dialect::bytea::codings())
                .chain(crate::dialect::array_sets::functions())
                .chain([crate::dialect::unknown_literals::coalesce()])
                .chain([
                    crate::dialect::pg_out::text_out(),
                    crate::dialect::pg_out::elements_text(),
                    crate::dialect::pg_to_char::to_char(),
                    crate::dialect::pg_trunc::trunc(),
                    crate::dialect::interval_trunc::date_trunc(),
                    crate::dialect::interval_trunc::years_into(),
                    crate::dialect::bytea::concat(),
                    crate::dialect::bytea::bytea_in(),
                    crate::dialect::array_text::array_in(),
                    crate::dialect::array_order::key(),
                    crate::dialect::pg_numeric::numeric_div(),
                    crate::dialect::pg_numeric::power(),
                    crate::dialect::pg_numeric::div_scale_udf(),
                    crate::dialect::pg_numeric::text_scale(),
                    crate::dialect::float_numeric::float_numeric(),
                    crate::dialect::places_text::numeric_places_text(),
                    crate::dialect::pg_numeric::param_scale(),
                    crate::dialect::pg_numeric::scale(),
                    crate::dialect::time_text::time_text(),
                    crate::dialect::pg_numeric::numeric_text(),
                    crate::dialect::pg_numeric::numeric_plain(),
                    crate::dialect::pg_numeric::sqrt(),
                    crate::dialect::pg_numeric::sqrt_scale_udf(),
                    crate::dialect::intervals::interval_of_duration(),
                    crate::dialect::interval_parts::interval_part(),
                    crate::dialect::interval_parts::interval_key(),
                    crate::dialect::at_time_zone::at_time_zone(),
                    crate::dialect::pg_text::json_build_object(),
                    crate::dialect::pg_text::json_build_array(),
                    crate::dialect::pg_text::to_json(),
                    crate::dialect::pg_text::json_list(),
                    crate::dialect::pg_text::json_object(),
                    crate::dialect::syntax::like_pattern_udf(),
                    crate::dialect::syntax::expand_array_udf(),
                    crate::dialect::syntax::cast_label_udf(),
                ])
                .map(Arc::new)
                .collect()
        });
    &FUNCTIONS
}

/// Quipu's aggregates, registered in every session and carried by name
/// by the cluster codecs, as [`scalar_functions`] are.
pub fn aggregate_functions() -> &'static [Arc<datafusion::logical_expr::AggregateUDF>] {
    static FUNCTIONS: std::sync::LazyLock<Vec<Arc<datafusion::logical_expr::AggregateUDF>>> =
        std::sync::LazyLock::new(|| {
            [
                crate::dialect::single_row::single(),
                crate::dialect::pg_numeric::avg(),
                crate::dialect::pg_numeric::avg_scale(),
                // The places of a `max` / `min` of values whose places
                // vary (`crate::scales`): a query planned with them on
                // the cluster failed ("LogicalExtensionCodec is not
                // provided for aggregate function quipu_max_places").
                crate::dialect::extreme_places::extreme_places(true),
                crate::dialect::extreme_places::extreme_places(false),
                crate::dialect::string_agg::string_agg(),
                // PostgreSQL's `every` is the SQL standard's `bool_and`.
                datafusion::functions_aggregate::bool_and_or::bool_and_udaf()
                    .as_ref()
                    .clone()
                    .with_aliases(["every"]),
            ]
            .into_iter()
            .chain(crate::dialect::ordered_sets::aggregates())
            .chain(crate::dialect::pg_variance::functions())
            .chain(crate::dialect::pg_regression::functions())
            .map(Arc::new)
            .collect()
        });
    &FUNCTIONS
}

type Rule = Arc<dyn OptimizerRule + Send + Sync>;

/// DataFusion's analyzer rules, with Quipu's integer- and decimal-literal
/// rules and ranking functions' types before type coercion
/// (`int_literals`, `float_literals`, `window_ranks`), and first of all a
/// name of its own for each table function's scan (`table_functions`).
fn analyzer_rules() -> Vec<Arc<dyn AnalyzerRule + Send + Sync>> {
    let mut rules = Analyzer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "type_coercion")
        .unwrap_or(0);
    rules.insert(
        at,
        Arc::new(crate::dialect::float_literals::FloatComparedWithDecimal),
    );
    rules.insert(at, Arc::new(crate::dialect::int_literals::IntegerLiterals));
    rules.insert(at, Arc::new(crate::dialect::mixed_text::TextWithOtherTypes));
    rules.insert(at, Arc::new(crate::dialect::text_order::TextOrder));
    rules.insert(at, Arc::new(crate::dialect::window_ranks::WindowRanks));
    rules.insert(
        0,
        Arc::new(crate::dialect::single_row::AggregateScalarSubqueries),
    );
    rules.insert(0, Arc::new(crate::dialect::exists_values::ExistsAsValues));
    rules.insert(
        0,
        Arc::new(crate::dialect::correlated_limit::CorrelatedLimits),
    );
    rules.insert(
        0,
        Arc::new(crate::planning::table_functions::DistinctTableFunctionScans),
    );
    // Just before type coercion, after the integer literals' types are
    // PostgreSQL's: text literals among typed values take their type.
    let coercion = rules
        .iter()
        .position(|r| r.name() == "type_coercion")
        .unwrap_or(0);
    rules.insert(
        coercion,
        Arc::new(crate::dialect::unknown_literals::UnknownLiterals),
    );
    // After type coercion (now one further on): the casts it put on text
    // literals.
    rules.insert(
        coercion + 2,
        Arc::new(crate::dialect::unknown_literals::TimeLiterals),
    );
    // After type coercion: it evaluates the constants as planned.
    rules.push(Arc::new(
        crate::planning::checked_arithmetic::ConstantOverflow,
    ));
    rules.push(Arc::new(
        crate::planning::checked_arithmetic::WindowArguments,
    ));
    rules.push(Arc::new(crate::dialect::json_arguments::JsonArguments));
    rules.push(Arc::new(crate::dialect::year_preimage::YearPreimage));
    rules.push(Arc::new(crate::dialect::array_order::ArrayOrder));
    rules.push(Arc::new(
        crate::planning::sound_dependencies::SoundDependencies,
    ));
    rules
}

/// DataFusion's own optimizer rules, with `eliminate_group_by_constant`
/// made optional: in DataFusion 55 it fails the whole query on `GROUP BY
/// x, CAST(x AS TEXT)` ("Projections require unique expression names": the
/// cast is named like `x` in the projection it builds). The rule only
/// drops redundant group keys, so where it fails the plan stays as it was.
fn datafusion_rules() -> Vec<Rule> {
    Optimizer::new()
        .rules
        .into_iter()
        .flat_map(|rule| -> Vec<Rule> {
            match rule.name() {
                "eliminate_group_by_constant" => vec![Arc::new(Guarded(rule, Keep::Succeeded))],
                "single_distinct_aggregation_to_group_by" => {
                    vec![Arc::new(Guarded(rule, Keep::SameTypes))]
                }
                // Each reads an aggregation's dependencies, which each
                // rebuilt aggregation has as DataFusion wrongly gives them.
                "replace_distinct_aggregate"
                | "eliminate_join"
                | "eliminate_duplicated_expr"
                | "optimize_projections" => vec![
                    Arc::new(crate::planning::sound_dependencies::SoundDependencies),
                    rule,
                ],
                "decorrelate_lateral_join" => vec![
                    Arc::new(crate::planning::lateral_rows::LateralRows),
                    rule,
                    Arc::new(crate::planning::uncorrelated_lateral::LateralJoinSchemas),
                ],
                _ => vec![rule],
            }
        })
        .collect()
}

/// A DataFusion rewrite whose result is kept only when it passes a check;
/// otherwise the node stays as it was.
#[derive(Debug)]
struct Guarded(Rule, Keep);

#[derive(Debug)]
enum Keep {
    /// A rewrite that fails is skipped (the node is kept as it was).
    Succeeded,
    /// A rewrite is kept only when the node's column types stay what
    /// they were. DataFusion 55's single-distinct rewrite (`count(DISTINCT
    /// a), sum(d)` as a group by `a` under `sum(sum(d))`) turns a `sum` of
    /// a `numeric(22,2)` into a `numeric(32,2)` under a `HAVING sum(d) <=
    /// 25.50` already typed for the first: "Invalid comparison operation:
    /// Decimal128(32, 2) <= Decimal128(22, 2)" (found by the long
    /// differential run). DataFusion runs the distinct aggregate itself
    /// instead.
    SameTypes,
}

/// Whether `plan` is an aggregation with a `variance(DISTINCT x)` (or a
/// standard deviation) of doubles: PostgreSQL adds the distinct values in
/// ascending order, and a double's last digits depend on the order, so
/// the single-distinct rewrite (a grouping by `x` under the aggregate,
/// which adds them in its hash table's order) is left out for it
/// (`dialect::pg_variance` sorts them).
fn distinct_doubles(plan: &LogicalPlan) -> bool {
    let LogicalPlan::Aggregate(a) = plan else {
        return false;
    };
    a.aggr_expr.iter().any(|e| {
        let e = match e {
            datafusion::logical_expr::Expr::Alias(a) => a.expr.as_ref(),
            e => e,
        };
        matches!(e, datafusion::logical_expr::Expr::AggregateFunction(f)
        if f.params.distinct
            && crate::dialect::pg_variance::is_variance(f.func.name())
            && f.params.args.first().is_some_and(|x| {
                datafusion::logical_expr::ExprSchemable::get_type(x, a.input.schema())
                    .is_ok_and(|t| t.is_floating())
            }))
    })
}

impl OptimizerRule for Guarded {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn apply_order(&self) -> Option<ApplyOrder> {
        self.0.apply_order()
    }
    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> datafusion::error::Result<Transformed<LogicalPlan>> {
        if self.0.name() == "single_distinct_aggregation_to_group_by" && distinct_doubles(&plan) {
            return Ok(Transformed::no(plan));
        }
        let kept = plan.clone();
        let out = match (self.0.rewrite(plan, config), &self.1) {
            (Ok(out), _) => out,
            (Err(_), Keep::Succeeded) => return Ok(Transformed::no(kept)),
            (Err(e), Keep::SameTypes) => return Err(e),
        };
        let types = |p: &LogicalPlan| -> Vec<datafusion::arrow::datatypes::DataType> {
            p.schema()
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect()
        };
        if matches!(self.1, Keep::SameTypes) && out.transformed && types(&out.data) != types(&kept)
        {
            return Ok(Transformed::no(kept));
        }
        Ok(out)
    }
}

/// The dialect Quipu parses SQL in: PostgreSQL's, whichever door it came
/// through (Flight SQL, `quipu sql`, a stored view; the PostgreSQL front
/// door's parser reads it too). DataFusion's default is its generic
/// dialect, which does not read `|/ x`, `||/ x` or `@ x`. The session's
/// `sql_parser.dialect` stays generic: `datafusion-pg-catalog` parses its
/// own views with it, and they do not parse as PostgreSQL's.
pub const SQL_DIALECT: datafusion::sql::sqlparser::dialect::PostgreSqlDialect =
    datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};

/// Adds Quipu's settings to a base configuration (which may carry other
/// extensions, e.g. Ballista's).
pub fn quipu_config(base: SessionConfig) -> SessionConfig {
    let mut config = base
        .with_default_catalog_and_schema(DEFAULT_CATALOG, DEFAULT_SCHEMA)
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(true);
    // PostgreSQL reads `66.01` and `1e3` as numeric, not as a double: a
    // double literal compared with a decimal column became
    // 66.010000000000005 and matched nothing.
    config.options_mut().sql_parser.parse_float_as_decimal = true;
    // DataFusion 55 proves `CASE WHEN x IN ('a', 'b') AND ... THEN x ELSE
    // 'z' END` never NULL in the logical plan but not in the physical one,
    // and a DISTINCT over it failed ("Physical input schema should be the
    // same ... nullability"). The logical plan is right; the check only
    // compares the two.
    config
        .options_mut()
        .execution
        .skip_physical_aggregate_schema_check = true;
    // Every session computes in a time zone, UTC unless it sets another
    // (`SET TimeZone` over the PostgreSQL wire): `CAST(x AS timestamptz)`
    // and `now()` are then `timestamptz` as in PostgreSQL, and a cache
    // refreshed by the scheduler and a client session agree on the zone
    // (DataFusion's default is none: naive timestamps).
    if config.options().execution.time_zone.is_none() {
        config.options_mut().execution.time_zone = Some("UTC".into());
    }
    if config.options().extensions.get::<QuipuOptions>().is_none() {
        config = config.with_option_extension(QuipuOptions::default());
    }
    config
}

/// The catalog, runtime and configuration shared by all sessions of one
/// Quipu process.
#[derive(Debug, Clone)]
pub struct QuipuSession {
    store: Arc<CatalogStore>,
    runtime: Arc<RuntimeEnv>,
    memory: Arc<MemoryStores>,
    catalogs: QuipuCatalogList,
    config: SessionConfig,
}

impl QuipuSession {
    /// Opens the catalog in `data_dir` with the default configuration.
    pub fn open(data_dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let store = Arc::new(CatalogStore::open(data_dir)?);
        Ok(Self::new(store, SessionConfig::new()))
    }

    /// A session over an open catalog; `base` may carry extra config
    /// extensions (the scheduler adds Ballista's).
    pub fn new(store: Arc<CatalogStore>, base: SessionConfig) -> Self {
        // No listing cache: DataFusion 55 keeps a table's file list until
        // the process ends, and files that land in a lake folder (a new
        // day of clickstream) were never read by a running server. A query
        // lists the folders it reads; Parquet footers stay cached (by path
        // and version, so a rewritten file is read again).
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(crate::memory::pool(crate::memory::pool_size()))
            .with_object_list_cache_limit(0)
            .build_arc()
            .expect("a runtime with the default disk manager");
        let memory = Arc::new(MemoryStores::default());
        let config = quipu_config(base);
        let env = Env {
            runtime: runtime.clone(),
            memory: memory.clone(),
            config: config.clone(),
        };
        let catalogs = QuipuCatalogList::new(store.clone(), env, build_state);
        QuipuSession {
            store,
            runtime,
            memory,
            catalogs,
            config,
        }
    }

    /// A fresh session state (one per client session: `SET` stays local to it).
    pub fn state(&self) -> SessionState {
        self.state_with_config(self.config.clone())
    }

    /// A session state with a given configuration (Ballista's scheduler
    /// builds one per job from the client's settings).
    pub fn state_with_config(&self, config: SessionConfig) -> SessionState {
        build_state(
            Arc::new(self.catalogs.clone()),
            config,
            self.runtime.clone(),
        )
    }

    /// A session state for a client with limited access: other sources are
    /// hidden from its catalogs (see [`crate::catalog::access`]).
    pub fn state_for(&self, access: crate::catalog::access::Access) -> SessionState {
        build_state(
            Arc::new(
                crate::catalog::access::SessionCatalogList::new(
                    Arc::new(self.catalogs.clone()),
                    access,
                )
                .listing_views_by(self.catalogs.clone()),
            ),
            self.config.clone(),
            self.runtime.clone(),
        )
    }

    /// The configuration sessions start from.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<CatalogStore> {
        &self.store
    }

    pub fn runtime(&self) -> &Arc<RuntimeEnv> {
        &self.runtime
    }

    /// Closes live-source connections while the runtime still runs (the
    /// MongoDB driver otherwise ends its sessions from a drop handler that
    /// can race the runtime's shutdown).
    pub async fn close(&self) {
        for connector in self.catalogs.shared.connectors.iter() {
            connector.close().await;
        }
    }

    pub fn catalogs(&self) -> &QuipuCatalogList {
        &self.catalogs
    }

    /// The in-memory object store behind `memory://HOST/` URLs of this
    /// process, for embedders and tests.
    pub fn memory_store(&self, host: &str) -> Arc<InMemory> {
        self.memory.get(host)
    }
}
