//! An aggregation's functional dependencies as they hold (issue 22).
//!
//! DataFusion 55 maps each dependency of an aggregation's input whose
//! columns it groups by onto *every* column of its output
//! (`aggregate_functional_dependencies`). Over a join that is wrong: in
//! `... FROM (SELECT DISTINCT k ...) s CROSS JOIN (SELECT DISTINCT status
//! ...) o GROUP BY s.k, o.status`, `s.k` determines `s`'s columns, not
//! `o.status`, yet the output claimed `s.k` determines `status`. Its rules
//! then answered wrongly:
//!
//! - `eliminate_duplicated_expr` dropped `ORDER BY 1, 2`'s second key as
//!   determined by the first (the rows came out in any `status` order);
//! - `optimize_projections` dropped `status` from an outer `GROUP BY k,
//!   status` that did not show it (7 groups where PostgreSQL has 28);
//! - `DISTINCT k, status` over it kept one row per `k`.
//!
//! An `unnest` (a set-returning function in the select list,
//! `string_to_table`, `unnest(tags)`) kept its input's dependencies as
//! they were, so a source's primary key `id` still "determined" every
//! column, the unnested one too, though each row now repeats: `ORDER BY
//! id, w` sorted by `id` alone.
//!
//! [`SoundDependencies`] gives each such aggregation dependency only the
//! grouped columns its input's dependency determines (and the grouping
//! itself back as a key of the output, which DataFusion leaves out beside
//! another dependency), and an `unnest` none. It runs after the analyzer
//! and before each of DataFusion's rules that read dependencies, since
//! each rebuilt node has DataFusion's again.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::{
    DFSchemaRef, Dependency, FunctionalDependence, FunctionalDependencies, config::ConfigOptions,
};
use datafusion::error::Result;
use datafusion::logical_expr::{Aggregate, LogicalPlan};
use datafusion::optimizer::{AnalyzerRule, OptimizerConfig, OptimizerRule};

#[derive(Debug, Default)]
pub struct SoundDependencies;

impl AnalyzerRule for SoundDependencies {
    fn name(&self) -> &str {
        "quipu_sound_dependencies"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(sound(plan)?.data)
    }
}

impl OptimizerRule for SoundDependencies {
    fn name(&self) -> &str {
        "quipu_sound_dependencies"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        sound(plan)
    }
}

/// The plan with every aggregation's dependencies sound, the nodes above
/// one that changed with their schemas built again; the plan itself when
/// none claims more than holds.
pub fn sound(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let mut unsound = false;
    plan.apply_with_subqueries(|p| {
        if holding(p).is_some() {
            unsound = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if !unsound {
        return Ok(Transformed::no(plan));
    }
    plan.transform_up_with_subqueries(|p| {
        // Its inputs' dependencies may have changed.
        let p = p.recompute_schema()?;
        Ok(Transformed::yes(match holding(&p) {
            Some(deps) => with_dependencies(p, deps)?,
            None => p,
        }))
    })
}

/// The dependencies that hold of a node whose own are other than those:
/// an aggregation's [`dependencies`], an `unnest`'s none. None where they
/// agree, and for every other node.
fn holding(p: &LogicalPlan) -> Option<FunctionalDependencies> {
    let (claimed, holds) = match p {
        LogicalPlan::Aggregate(a) => (a.schema.functional_dependencies(), dependencies(a)),
        LogicalPlan::Unnest(u) => (
            u.schema.functional_dependencies(),
            FunctionalDependencies::empty(),
        ),
        _ => return None,
    };
    (normalized(claimed) != normalized(&holds)).then_some(holds)
}

fn normalized(deps: &FunctionalDependencies) -> Vec<(Vec<usize>, Vec<usize>, bool, bool)> {
    let mut all: Vec<_> = deps
        .iter()
        .map(|d| {
            let mut targets = d.target_indices.clone();
            targets.sort_unstable();
            (
                d.source_indices.clone(),
                targets,
                d.nullable,
                d.mode == Dependency::Single,
            )
        })
        .collect();
    all.sort();
    all
}

/// An aggregation or an `unnest` with `deps` as its dependencies.
fn with_dependencies(p: LogicalPlan, deps: FunctionalDependencies) -> Result<LogicalPlan> {
    let with = |schema: &DFSchemaRef| -> Result<DFSchemaRef> {
        Ok(Arc::new(
            schema.as_ref().clone().with_functional_dependencies(deps)?,
        ))
    };
    Ok(match p {
        LogicalPlan::Aggregate(mut a) => {
            a.schema = with(&a.schema)?;
            LogicalPlan::Aggregate(a)
        }
        LogicalPlan::Unnest(mut u) => {
            u.schema = with(&u.schema)?;
            LogicalPlan::Unnest(u)
        }
        other => other,
    })
}

/// The dependencies of an aggregation's output: for each of its input's
/// whose columns it groups by, the grouped columns that dependency
/// determines (all of them: a key of the output); and the grouping, a
/// key of the output, unless one of those is. DataFusion's gave such a
/// dependency every column, and took it for a key when the grouped
/// columns no dependency covers were left out of its test.
fn dependencies(a: &Aggregate) -> FunctionalDependencies {
    let fields = a.schema.fields();
    let group_names: Vec<String> = a
        .group_expr
        .iter()
        .map(|e| e.schema_name().to_string())
        .collect();
    let count = group_names.len();
    // A grouping set's rows are not unique in its columns (DataFusion's
    // has none either).
    if count == 0
        || a.group_expr
            .iter()
            .any(|e| matches!(e, datafusion::logical_expr::Expr::GroupingSet(_)))
    {
        return FunctionalDependencies::empty();
    }
    let position = |name: &str| group_names.iter().position(|g| g == name);
    let input = a.input.schema();
    let input_names = input.field_names();
    let mut deps = Vec::new();
    for from in input.functional_dependencies().iter() {
        let Some(source) = from
            .source_indices
            .iter()
            .map(|&i| position(&input_names[i]))
            .collect::<Option<Vec<usize>>>()
        else {
            continue;
        };
        let mut targets: Vec<usize> = from
            .target_indices
            .iter()
            .filter_map(|&i| position(&input_names[i]))
            .chain(source.iter().copied())
            .collect();
        targets.sort_unstable();
        targets.dedup();
        if targets.len() == count {
            deps.push(
                FunctionalDependence::new(source, (0..fields.len()).collect(), from.nullable)
                    .with_mode(Dependency::Single),
            );
        } else if targets.len() > source.len() {
            deps.push(
                FunctionalDependence::new(source, targets, from.nullable)
                    .with_mode(Dependency::Multi),
            );
        }
    }
    if !deps.iter().any(|d| d.mode == Dependency::Single) {
        deps.push(
            FunctionalDependence::new(
                (0..count).collect(),
                (0..fields.len()).collect(),
                fields[..count].iter().any(|f| f.is_nullable()),
            )
            .with_mode(Dependency::Single),
        );
    }
    FunctionalDependencies::new(deps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::tree_node::TreeNode;
    use datafusion::prelude::SessionContext;

    async fn plan(ctx: &SessionContext, sql: &str) -> LogicalPlan {
        ctx.state().create_logical_plan(sql).await.unwrap()
    }

    fn aggregates(p: &LogicalPlan) -> Vec<Aggregate> {
        let mut found = Vec::new();
        p.apply(|p| {
            if let LogicalPlan::Aggregate(a) = p {
                found.push(a.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        found
    }

    #[tokio::test]
    async fn a_grouping_over_a_join_claims_only_what_holds() {
        let ctx = SessionContext::new();
        for t in ["a", "b"] {
            ctx.sql(&format!(
                "CREATE TABLE {t} (k INT, v INT) AS VALUES (1, 1), (1, 2)"
            ))
            .await
            .unwrap();
        }
        let sql = "SELECT s.k, o.v FROM (SELECT k FROM a GROUP BY k) s CROSS JOIN \
                   (SELECT v FROM b GROUP BY v) o GROUP BY s.k, o.v";
        let before = plan(&ctx, sql).await;
        let outer = |p: &LogicalPlan| aggregates(p).into_iter().next().unwrap();
        // DataFusion's: `s.k` (the first grouped column) determines all.
        assert!(holding(&LogicalPlan::Aggregate(outer(&before))).is_some());
        let after = sound(before).unwrap();
        assert!(after.transformed);
        let a = outer(&after.data);
        assert!(holding(&LogicalPlan::Aggregate(a.clone())).is_none());
        let deps = a.schema.functional_dependencies();
        // `s.k` and `o.v` each determine only themselves: what is left is
        // the grouping, a key of the whole output.
        assert_eq!(deps.iter().count(), 1, "{deps:?}");
        let key = deps.iter().next().unwrap();
        assert_eq!(key.source_indices, vec![0, 1]);
        assert_eq!(key.mode, Dependency::Single);
        // Sound already: nothing to do.
        assert!(!sound(after.data).unwrap().transformed);

        // DataFusion took `s.k` for a key of the output, as it determines
        // `s.n`, the only other grouped column a dependency covers.
        let sql = "SELECT s.k, o.v FROM (SELECT k, count(*) n FROM a GROUP BY k) s CROSS JOIN \
                   b o GROUP BY s.k, o.v, s.n";
        let before = plan(&ctx, sql).await;
        let claimed = outer(&before);
        let key = claimed
            .schema
            .functional_dependencies()
            .iter()
            .next()
            .unwrap();
        assert_eq!(
            (key.source_indices.clone(), key.mode),
            (vec![0], Dependency::Single)
        );
        let a = outer(&sound(before).unwrap().data);
        let mut deps: Vec<_> = a.schema.functional_dependencies().iter().cloned().collect();
        deps.sort_by_key(|d| d.source_indices.len());
        assert_eq!(deps.len(), 2, "{deps:?}");
        // `s.k` determines itself and `s.n`, and is not a key.
        assert_eq!(deps[0].source_indices, vec![0]);
        assert_eq!(deps[0].target_indices, vec![0, 2]);
        assert_eq!(deps[0].mode, Dependency::Multi);
        assert_eq!(deps[1].source_indices, vec![0, 1, 2]);
        assert_eq!(deps[1].mode, Dependency::Single);
    }

    #[tokio::test]
    async fn an_unnest_claims_nothing() {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE a (k INT, v INT) AS VALUES (1, 1), (1, 2)")
            .await
            .unwrap();
        let sql = "SELECT s.k, unnest(s.vs) AS w FROM (SELECT k, array_agg(v) AS vs FROM a \
                   GROUP BY k) s ORDER BY s.k, w";
        let unnest_deps = |p: &LogicalPlan| {
            let mut n = None;
            p.apply(|p| {
                if let LogicalPlan::Unnest(u) = p {
                    n = Some(u.schema.functional_dependencies().len());
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .unwrap();
            n.expect("an unnest")
        };
        let before = plan(&ctx, sql).await;
        // DataFusion's: the grouping's key `k` still "determines" `w`.
        assert_eq!(unnest_deps(&before), 1);
        let after = sound(before).unwrap();
        assert!(after.transformed);
        assert_eq!(unnest_deps(&after.data), 0);
    }
}
