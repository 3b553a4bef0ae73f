//! JSON inside JSON: `json_build_object('b', json_build_array(1))` is
//! `{"b" : [1]}` in PostgreSQL, a `json` value written as it is. Quipu
//! holds JSON as text, and wrote it as a string (`{"b" : "[1]"}`).
//!
//! The functions that make JSON mark their result field
//! ([`super::pg_text::JSON_MARK`]), as do the casts to `json` and
//! `jsonb`; a column keeps its mark. This analyzer rule (after type
//! coercion) wraps each marked argument of a function that writes its
//! arguments as JSON (`json_build_object`'s values, `json_build_array`,
//! `to_json`, and so `json_object_agg`'s values) in a one-field struct
//! named by the mark, which the function writes as it is. A struct, not
//! the mark alone: the cluster's plans carry types but not field metadata.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result};
use datafusion::functions::core::expr_fn::named_struct;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, lit};
use datafusion::optimizer::AnalyzerRule;

use super::pg_text::{JSON_MARK, is_json};

#[derive(Debug, Default)]
pub struct JsonArguments;

impl AnalyzerRule for JsonArguments {
    fn name(&self) -> &str {
        "quipu_json_arguments"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(super::transform_up_outside_recursion(plan, &mut |node| {
            // Most nodes call none of them: no schema to build.
            let mut calls = false;
            node.apply_expressions(|e| {
                calls = e.exists(|x| {
                    Ok(matches!(x, Expr::ScalarFunction(f) if writes_json(f.func.name()).is_some()))
                })?;
                Ok(match calls {
                    true => TreeNodeRecursion::Stop,
                    false => TreeNodeRecursion::Continue,
                })
            })?;
            if !calls {
                return Ok(Transformed::no(node));
            }
            let schema = super::expression_schema(&node);
            let t = super::rewrite_keeping_names(node, |e| marked(e, &schema))?;
            match t.transformed {
                true => t.map_data(|node| node.recompute_schema()),
                false => Ok(t),
            }
        })?
        .data)
    }
}

/// For a function that writes its arguments as JSON: whether its
/// arguments alternate keys and values (`json_build_object`).
fn writes_json(name: &str) -> Option<bool> {
    match name {
        "json_build_object" => Some(true),
        "json_build_array" | "to_json" => Some(false),
        _ => None,
    }
}

/// A call of a function that writes JSON, its JSON arguments wrapped.
fn marked(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::ScalarFunction(mut f) = e else {
        return Ok(Transformed::no(e));
    };
    let Some(keys) = writes_json(f.func.name()) else {
        return Ok(Transformed::no(Expr::ScalarFunction(f)));
    };
    let mut changed = false;
    for (i, a) in f.args.iter_mut().enumerate() {
        if keys && i % 2 == 0 {
            continue;
        }
        if a.to_field(schema).is_ok_and(|(_, field)| is_json(&field)) {
            *a = named_struct(vec![lit(JSON_MARK), a.clone()]);
            changed = true;
        }
    }
    Ok(Transformed::new_transformed(
        Expr::ScalarFunction(f),
        changed,
    ))
}
