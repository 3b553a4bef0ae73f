//! Empty relations that keep their columns on the way to the cluster.
//!
//! When the optimizer proves a part of a plan empty (a `FULL JOIN` whose
//! `ON` can never hold under a `WHERE` that needs a match), it replaces that
//! part with an `EmptyRelation` carrying the part's columns, and the nodes
//! above keep referring to them (`count(h2.unit_price_usd)`).
//! datafusion-proto 55 encodes an `EmptyRelation` without its schema, so
//! the Ballista scheduler could not decode the plan: "No field named
//! h2.unit_price_usd" (differential test, seed 1 query 2600).
//!
//! For plans planned for Ballista, this rule (the last logical rule) writes
//! such a relation as a filter that is never true over one row of typed
//! NULLs named like its columns, which the codec carries whole. It yields
//! the same zero rows and the same columns; the scheduler's optimizer
//! folds it back into an empty relation in memory. Upstream: encode the
//! schema of an `EmptyRelation` (docs/upstream.md).

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::Alias;
use datafusion::logical_expr::{EmptyRelation, Expr, Filter, LogicalPlan, Projection, lit};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use super::cluster_plan::on_ballista;

/// Rewrites empty relations with columns for plans sent to Ballista.
#[derive(Debug, Default)]
pub struct EmptyRelationsForTheCluster;

impl OptimizerRule for EmptyRelationsForTheCluster {
    fn name(&self) -> &str {
        "quipu_empty_relations_for_the_cluster"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        if !on_ballista(&config.options()) {
            return Ok(Transformed::no(plan));
        }
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::EmptyRelation(e)
                if !e.produce_one_row && !e.schema.fields().is_empty() =>
            {
                never_true(&e.schema).map(Transformed::yes)
            }
            other => Ok(Transformed::no(other)),
        })
    }
}

/// `SELECT NULL::t AS q.c, ... WHERE false`: no row, the same columns.
fn never_true(schema: &DFSchema) -> DfResult<LogicalPlan> {
    let one_row = Arc::new(LogicalPlan::EmptyRelation(EmptyRelation {
        produce_one_row: true,
        schema: Arc::new(DFSchema::empty()),
    }));
    let columns = schema
        .iter()
        .map(|(qualifier, field)| {
            let null = ScalarValue::try_from(field.data_type())?;
            Ok(Expr::Alias(Alias::new(
                Expr::Literal(null, None),
                qualifier.cloned(),
                field.name(),
            )))
        })
        .collect::<DfResult<Vec<_>>>()?;
    let nulls = Projection::try_new(columns, one_row)?;
    Ok(LogicalPlan::Filter(Filter::try_new(
        lit(false),
        Arc::new(LogicalPlan::Projection(nulls)),
    )?))
}
