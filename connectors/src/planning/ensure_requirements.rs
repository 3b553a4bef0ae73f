//! DataFusion's `EnsureRequirements` (distribution and sort enforcement),
//! with two of its wrong answers taken out.
//!
//! **Constants of a padded side.** DataFusion 55 keeps, above an outer join, what it knew below it about
//! the side the join pads with NULLs: `EquivalenceGroup::join` copies the
//! nullable side's constants into the join's output. In
//! `a LEFT JOIN (SELECT ... WHERE store_id = 1) b ... ORDER BY x, b.store_id`
//! the planner then takes `store_id` for the constant 1, although unmatched
//! rows carry NULL, and `EnsureRequirements` drops it from the sort (a
//! constant cannot change an order): rows tied on `x` come out in any order
//! and `LIMIT`/`OFFSET` picks the wrong ones (found by the differential
//! test, seed 1 query 6681).
//!
//! [`FencedEnsureRequirements`] runs DataFusion's rule with every outer join
//! under a [`NullPaddedFence`] that shows the join's properties without the
//! nullable side's constants, and takes the fences out again afterwards, so
//! no other rule, and no codec, ever sees them.
//!
//! **A limit pushed into a join's input.** With sort-merge joins (Ballista's
//! default: `prefer_hash_join = false`), a `TopK` above a join whose output
//! is already ordered becomes a `TopK` of the same `fetch` on each input:
//! `a EXCEPT b ORDER BY 1 LIMIT 5` kept only the first five rows of `b`, so
//! the anti join removed too little (seed 2 query 5670, cluster only). A
//! limit may go into a join's input only where each input row gives at
//! least one output row in the same order: the preserved side of a left or
//! right join. Elsewhere the rule turns such a `TopK` back into a sort, and
//! the limit stays above the join. A `TopK` that was below a join before
//! the rule ran is the query's own and is kept ([`own_limits`]).

use std::fmt;
use std::sync::Arc;

use datafusion::common::JoinType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::equivalence::{EquivalenceClass, EquivalenceGroup};
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::{HashJoinExec, NestedLoopJoinExec, SortMergeJoinExec};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};

/// `EnsureRequirements` run with outer joins fenced and join inputs kept
/// whole (see the module doc).
#[derive(Debug)]
pub struct FencedEnsureRequirements(pub Arc<dyn PhysicalOptimizerRule + Send + Sync>);

impl PhysicalOptimizerRule for FencedEnsureRequirements {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let fenced = plan
            .transform_up(|node| {
                Ok(match NullPaddedFence::over(&node) {
                    Some(fence) => Transformed::yes(Arc::new(fence) as Arc<dyn ExecutionPlan>),
                    None => Transformed::no(node),
                })
            })
            .data()?;
        let own = own_limits(&fenced);
        let optimized = self.0.optimize(fenced, config)?;
        optimized
            .transform_up(|node| {
                if let Some((join_type, _, _)) = join_shape(&node) {
                    return unlimited_inputs(node, join_type, &own);
                }
                Ok(match node.downcast_ref::<NullPaddedFence>() {
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

/// DataFusion's physical optimizer rules with `EnsureRequirements`
/// replaced by [`FencedEnsureRequirements`].
pub fn fenced(
    rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    rules
        .into_iter()
        .map(|r| {
            if r.name() == "EnsureRequirements" {
                Arc::new(FencedEnsureRequirements(r)) as Arc<_>
            } else {
                r
            }
        })
        .collect()
}

/// A planning-time node over an outer join: the join's output with its
/// true properties. It never runs (the rule removes it), and it stops sort
/// requirements from being pushed past it to the join, whose properties are
/// the wrong ones.
#[derive(Debug)]
pub struct NullPaddedFence {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl NullPaddedFence {
    /// A fence over `node` if it is an outer join that claims a constant
    /// on a side it pads with NULLs.
    fn over(node: &Arc<dyn ExecutionPlan>) -> Option<Self> {
        let (join_type, left_width, projection) = join_shape(node)?;
        let padded = |unprojected: usize| match join_type {
            JoinType::Left => unprojected >= left_width,
            JoinType::Right => unprojected < left_width,
            JoinType::Full => true,
            _ => false,
        };
        let padded_output: Vec<bool> = (0..node.schema().fields().len())
            .map(|i| padded(projection.as_ref().map_or(i, |p| p[i])))
            .collect();
        if !padded_output.contains(&true) {
            return None;
        }
        let reads_padded = |expr: &Arc<dyn PhysicalExpr>| {
            let mut found = false;
            let _ = expr.apply(|e| {
                if let Some(c) = e.downcast_ref::<Column>()
                    && padded_output.get(c.index()).copied().unwrap_or(false)
                {
                    found = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            });
            found
        };
        let claimed = &node.properties().eq_properties;
        let constants = claimed.constants();
        if !constants.iter().any(|c| reads_padded(&c.expr)) {
            return None;
        }
        // A constant's class holds the literal itself (`{s@1, 1}`): the
        // padded columns leave it, and the class keeps only what still
        // holds (two padded columns equal below stay equal, NULL and NULL).
        let mut group = EquivalenceGroup::new(claimed.eq_group().iter().map(|class| {
            EquivalenceClass::new(
                class
                    .iter()
                    .filter(|e| e.downcast_ref::<Literal>().is_none())
                    .cloned(),
            )
        }));
        for constant in constants {
            if !reads_padded(&constant.expr) {
                group.add_constant(constant);
            }
        }
        let mut true_properties = EquivalenceProperties::new(node.schema())
            .with_constraints(claimed.constraints().clone());
        true_properties.add_equivalence_group(group).ok()?;
        true_properties.add_orderings(claimed.oeq_class().iter().cloned());
        let properties = node
            .properties()
            .as_ref()
            .clone()
            .with_eq_properties(true_properties);
        Some(Self {
            input: Arc::clone(node),
            properties: Arc::new(properties),
        })
    }
}

/// The join with each `TopK` input that must not be limited turned back
/// into a full sort (see the module doc).
/// The last physical rule: a partitioned join whose inputs are not
/// co-partitioned gets both inputs hashed on its keys again. In `FROM
/// stock s LEFT JOIN lines l ON s.sku = l.sku FULL JOIN products p ON
/// l.sku = p.sku WHERE s.sku = 'X' AND lower(l.sku) = 'y'` (constant keys)
/// `EnsureRequirements` left co-partitioned inputs that the rules after it
/// (a join taking in its projection, filters rebuilt) no longer were:
/// "HashJoinExec requires children [0, 1] to be co-partitioned"
/// (differential seed 62, query 26, in one process and on the cluster).
#[derive(Debug)]
pub struct CoPartitionedJoins;

impl PhysicalOptimizerRule for CoPartitionedJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let partitions = config.execution.target_partitions;
        plan.transform_up(|node| co_partitioned(node, partitions))
            .data()
    }

    fn name(&self) -> &str {
        "quipu_co_partitioned_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node` with its inputs hashed on its keys if it is a partitioned join
/// whose inputs are not co-partitioned (a sort-merge join's keep their
/// order).
fn co_partitioned(
    node: Arc<dyn ExecutionPlan>,
    partitions: usize,
) -> DfResult<Transformed<Arc<dyn ExecutionPlan>>> {
    use datafusion::physical_plan::Partitioning;
    use datafusion::physical_plan::execution_plan::InvariantLevel;
    use datafusion::physical_plan::joins::PartitionMode;
    use datafusion::physical_plan::repartition::RepartitionExec;
    if node.check_invariants(InvariantLevel::Executable).is_ok() {
        return Ok(Transformed::no(node));
    }
    let (on, ordered) = if let Some(j) = node.downcast_ref::<HashJoinExec>()
        && *j.partition_mode() == PartitionMode::Partitioned
    {
        (j.on().to_vec(), false)
    } else if let Some(j) = node.downcast_ref::<SortMergeJoinExec>() {
        (j.on().to_vec(), true)
    } else {
        return Ok(Transformed::no(node));
    };
    let (left, right): (Vec<_>, Vec<_>) = on.into_iter().unzip();
    let children = node.children();
    let hashed = |child: &Arc<dyn ExecutionPlan>, keys: Vec<Arc<dyn PhysicalExpr>>| {
        let child = match child.downcast_ref::<RepartitionExec>() {
            Some(r) if matches!(r.partitioning(), Partitioning::Hash(..)) => Arc::clone(r.input()),
            _ => Arc::clone(child),
        };
        let repartition = RepartitionExec::try_new(child, Partitioning::Hash(keys, partitions))?;
        Ok::<_, datafusion::error::DataFusionError>(Arc::new(match ordered {
            true => repartition.with_preserve_order(),
            false => repartition,
        }) as Arc<dyn ExecutionPlan>)
    };
    let inputs = vec![hashed(children[0], left)?, hashed(children[1], right)?];
    Ok(Transformed::yes(
        datafusion::physical_plan::replace_children_if_necessary(node, inputs)?,
    ))
}

/// A `TopK`'s limit and keys, as [`own_limits`] and [`unlimited_inputs`]
/// compare them.
fn limit_key(sort: &SortExec) -> Option<String> {
    sort.fetch().map(|n| format!("{n} {}", sort.expr()))
}

/// The `TopK`s below a join before `EnsureRequirements` runs: the query's
/// own `ORDER BY ... LIMIT` in a subquery (`x IN (SELECT id FROM t ORDER
/// BY id LIMIT 5)`), which [`unlimited_inputs`] keeps. It took their limit
/// away too, and the subquery read every row (300 orders where PostgreSQL
/// counts 25).
fn own_limits(plan: &Arc<dyn ExecutionPlan>) -> std::collections::HashSet<String> {
    let mut own = std::collections::HashSet::new();
    let _ = plan.apply(|node| {
        if join_shape(node).is_none() {
            return Ok(TreeNodeRecursion::Continue);
        }
        let _ = node.apply(|below| {
            if let Some(key) = below.downcast_ref::<SortExec>().and_then(limit_key) {
                own.insert(key);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        // Its subtree is read, joins below it included.
        Ok(TreeNodeRecursion::Jump)
    });
    own
}

fn unlimited_inputs(
    join: Arc<dyn ExecutionPlan>,
    join_type: JoinType,
    own: &std::collections::HashSet<String>,
) -> DfResult<Transformed<Arc<dyn ExecutionPlan>>> {
    let mut changed = false;
    let children = join
        .children()
        .into_iter()
        .enumerate()
        .map(|(i, child)| {
            let preserved = matches!((join_type, i), (JoinType::Left, 0) | (JoinType::Right, 1));
            match child.downcast_ref::<SortExec>() {
                Some(sort)
                    if sort.fetch().is_some()
                        && !preserved
                        && !limit_key(sort).is_some_and(|k| own.contains(&k)) =>
                {
                    changed = true;
                    Arc::new(sort.with_fetch(None)) as Arc<dyn ExecutionPlan>
                }
                _ => Arc::clone(child),
            }
        })
        .collect();
    if !changed {
        return Ok(Transformed::no(join));
    }
    Ok(Transformed::yes(
        datafusion::physical_plan::replace_children_if_necessary(join, children)?,
    ))
}

/// Join type, width of the left input and output projection of a join.
type JoinShape = (JoinType, usize, Option<Arc<[usize]>>);

fn join_shape(node: &Arc<dyn ExecutionPlan>) -> Option<JoinShape> {
    if let Some(j) = node.downcast_ref::<HashJoinExec>() {
        Some((
            j.join_type,
            j.left.schema().fields().len(),
            j.projection.clone().map(|p| Arc::from(&p[..])),
        ))
    } else if let Some(j) = node.downcast_ref::<NestedLoopJoinExec>() {
        Some((
            *j.join_type(),
            j.left().schema().fields().len(),
            j.projection().clone().map(|p| Arc::from(&p[..])),
        ))
    } else {
        node.downcast_ref::<SortMergeJoinExec>()
            .map(|j| (j.join_type(), j.left.schema().fields().len(), None))
    }
}

impl DisplayAs for NullPaddedFence {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "NullPaddedFence")
    }
}

impl ExecutionPlan for NullPaddedFence {
    fn name(&self) -> &str {
        "NullPaddedFence"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    /// Sort requirements stop here: below is the join with its wrong
    /// constants.
    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children).map_err(|_| {
            datafusion::error::DataFusionError::Internal("NullPaddedFence takes one input".into())
        })?;
        // Keep our properties only while the input is still the join we
        // fenced; anything else gets its own properties.
        match Self::over(&input) {
            Some(fence) => Ok(Arc::new(fence)),
            None => Ok(Arc::new(Self {
                properties: Arc::clone(input.properties()),
                input,
            })),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
    use datafusion::prelude::{SessionConfig, SessionContext};

    const QUERY: &str = "SELECT l.x, r2.s FROM l LEFT JOIN (SELECT * FROM r WHERE s = 1) r2 \
                         ON l.k = r2.k ORDER BY 1, 2 LIMIT 1";

    async fn context(fence: bool) -> SessionContext {
        let rules = PhysicalOptimizer::new().rules;
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_default_features()
            .with_physical_optimizer_rules(if fence { fenced(rules) } else { rules })
            .build();
        let ctx = SessionContext::new_with_state(state);
        for sql in [
            "CREATE TABLE l AS SELECT value AS k, 1 AS x FROM generate_series(1, 50)",
            "CREATE TABLE r (k BIGINT, s INT) AS VALUES (50, 1), (49, 2)",
        ] {
            ctx.sql(sql).await.unwrap().collect().await.unwrap();
        }
        ctx
    }

    async fn sort_line(ctx: &SessionContext) -> String {
        let plan = ctx.sql(&format!("EXPLAIN {QUERY}")).await.unwrap();
        let text = pretty_format_batches(&plan.collect().await.unwrap())
            .unwrap()
            .to_string();
        text.lines()
            .find(|l| l.contains("SortExec"))
            .unwrap_or_default()
            .to_string()
    }

    /// DataFusion alone drops `s` from the sort; fenced, the sort keeps it
    /// and the first row is the matched one (NULLs sort last).
    #[tokio::test]
    async fn a_sort_on_a_padded_constant_column_is_kept() {
        let unfenced = sort_line(&context(false).await).await;
        assert!(
            !unfenced.contains("s@"),
            "DataFusion fixed this: {unfenced}"
        );
        let ctx = context(true).await;
        let fenced = sort_line(&ctx).await;
        assert!(fenced.contains("s@"), "{fenced}");
        let rows = ctx.sql(QUERY).await.unwrap().collect().await.unwrap();
        let text = pretty_format_batches(&rows).unwrap().to_string();
        assert!(text.contains("| 1 | 1 |"), "{text}");
    }

    /// With sort-merge joins, `EXCEPT ... ORDER BY ... LIMIT` keeps its
    /// whole right side: no `TopK` below the anti join.
    #[tokio::test]
    async fn a_limit_does_not_reach_the_inputs_of_an_anti_join() {
        let mut config = SessionConfig::new().with_target_partitions(2);
        config.options_mut().optimizer.prefer_hash_join = false;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_physical_optimizer_rules(fenced(PhysicalOptimizer::new().rules))
            .build();
        let ctx = SessionContext::new_with_state(state);
        for sql in [
            "CREATE TABLE l AS SELECT CAST(value AS INT) AS u FROM generate_series(1, 50)",
            "CREATE TABLE r AS SELECT CAST(value % 3 + 1 AS INT) AS u FROM generate_series(1, 50)",
        ] {
            ctx.sql(sql).await.unwrap().collect().await.unwrap();
        }
        let q = "SELECT u FROM l EXCEPT SELECT u FROM r ORDER BY 1 LIMIT 5";
        let rows = ctx.sql(q).await.unwrap().collect().await.unwrap();
        let text = pretty_format_batches(&rows).unwrap().to_string();
        let got: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("| "))
            .map(|l| l.trim_end_matches(" |").trim())
            .filter(|v| v.parse::<i32>().is_ok())
            .collect();
        assert_eq!(got, ["4", "5", "6", "7", "8"], "{text}");
    }

    /// A subquery's own `ORDER BY ... LIMIT` below a join keeps its limit:
    /// `IN (SELECT k FROM r ORDER BY k LIMIT 5)` read all of `r` (the
    /// rule took it for a limit DataFusion had pushed down).
    #[tokio::test]
    async fn a_subquerys_own_limit_below_a_join_is_kept() {
        let ctx = context(true).await;
        for q in [
            "SELECT count(*) AS n FROM l WHERE k IN (SELECT value FROM generate_series(1, 50) \
             ORDER BY value LIMIT 5)",
            "SELECT count(*) AS n FROM l WHERE EXISTS (SELECT 1 FROM (SELECT k FROM l \
             ORDER BY k DESC LIMIT 5) s WHERE s.k = l.k)",
        ] {
            let rows = ctx.sql(q).await.unwrap().collect().await.unwrap();
            let text = pretty_format_batches(&rows).unwrap().to_string();
            assert!(text.contains("| 5 |"), "{q}: {text}");
        }
    }
}
