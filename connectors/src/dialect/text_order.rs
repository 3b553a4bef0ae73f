//! Columns read as text whose values PostgreSQL orders otherwise (issue
//! 22). A PostgreSQL source's enum, `money`, array, `jsonb`, `inet`,
//! `timetz`, ... columns are read as their text (`postgres/types.rs`); equal
//! values have equal text, so `=`, `GROUP BY` and `DISTINCT` mean what
//! they mean in PostgreSQL, but their order does not: an enum orders by
//! its labels' order (`'sad' < 'ok' < 'happy'`), `money` as a number
//! (`$3.50 < $20.00`), an array element by element. `ORDER BY status`,
//! `status > 'paid'` and `max(status)` ordered the text and answered
//! otherwise than PostgreSQL, without a word.
//!
//! The discovery marks such a column (`ColumnDef::source_type`, a field's
//! [`TEXT_OF`] metadata, which DataFusion carries through projections,
//! aliases, groupings and subqueries), and this rule refuses to order one
//! (`0A000`), naming the column, its type and what to write instead: an
//! explicit `c::text` orders the text, as the user then asks
//! ([`casts_unmarked`]).

use datafusion::arrow::datatypes::Field;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::{Distinct, Expr, LogicalPlan, Operator, SortExpr};
use datafusion::optimizer::AnalyzerRule;

use crate::error::DataException;

/// The metadata key of a field read as text from a type PostgreSQL orders
/// otherwise; its value is the type's name at the source.
pub const TEXT_OF: &str = "quipu.text_of";

/// `field`, marked as the text of a value of the source's type `of`.
pub fn text_of(field: Field, of: &str) -> Field {
    let mut metadata = field.metadata().clone();
    metadata.insert(TEXT_OF.to_string(), of.to_string());
    field.with_metadata(metadata)
}

#[derive(Debug, Default)]
pub struct TextOrder;

impl AnalyzerRule for TextOrder {
    fn name(&self) -> &str {
        "quipu_text_order"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        let plan = casts_unmarked(plan)?;
        plan.apply_with_subqueries(|node| {
            let schema = super::expression_schema(node);
            let keys: &[SortExpr] = match node {
                LogicalPlan::Sort(s) => &s.expr,
                LogicalPlan::Distinct(Distinct::On(on)) => on.sort_expr.as_deref().unwrap_or(&[]),
                _ => &[],
            };
            for k in keys {
                refuse(&k.expr, &schema, "ORDER BY")?;
            }
            node.apply_expressions(|e| {
                e.apply(|x| {
                    check(x, &schema)?;
                    Ok(TreeNodeRecursion::Continue)
                })
            })?;
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(plan)
    }
}

/// `plan` with each explicit cast of a marked column to text (`c::text`)
/// unmarked: the user asks for the text's order (and of JSON, for its
/// text: a JSON string inside JSON). DataFusion carries a
/// field's metadata through a cast to a type alone, so the cast's field
/// is given the mark's key with an empty value ([`source_type`] reads it
/// as unmarked), and the schemas above it are computed again.
fn casts_unmarked(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::common::tree_node::Transformed;
    use datafusion::logical_expr::ExprSchemable;
    use datafusion::logical_expr::expr::Cast;
    let mut any = false;
    let plan = plan.transform_up_with_subqueries(|node| {
        let schema = super::expression_schema(&node);
        // A marked cast's name shows its metadata: a window or an
        // aggregate over it keeps the name the plan above reads it by
        // (`... ORDER BY json_object_agg(k, v)::text FETCH FIRST 1 ROWS
        // WITH TIES` failed, "No field named rank() ORDER BY ...").
        let names = datafusion::logical_expr::expr_rewriter::NamePreserver::new(&node);
        let t = node.map_expressions(|e| {
            let name = names.save(&e);
            let t = e.transform_up(|x| match x {
                Expr::Cast(Cast { expr, field }) if field.data_type().is_string() => {
                    let marked = expr.to_field(&schema).is_ok_and(|(_, f)| {
                        f.metadata().get(TEXT_OF).is_some_and(|v| !v.is_empty())
                            || super::pg_text::is_json(&f)
                    });
                    if !marked {
                        return Ok(Transformed::no(Expr::Cast(Cast { expr, field })));
                    }
                    // Explicit metadata replaces the input's: the JSON
                    // mark goes too (`json_build_array(1)::text` inside
                    // JSON is a string again, `json_arguments.rs`).
                    let mut metadata = field.metadata().clone();
                    metadata.insert(TEXT_OF.to_string(), String::new());
                    let field = std::sync::Arc::new(field.as_ref().clone().with_metadata(metadata));
                    Ok(Transformed::yes(Expr::Cast(Cast { expr, field })))
                }
                x => Ok(Transformed::no(x)),
            })?;
            Ok(match t.transformed {
                true => t.update_data(|e| name.restore(e)),
                false => t,
            })
        })?;
        any |= t.transformed;
        match any {
            true => Ok(Transformed::yes(t.data.recompute_schema()?)),
            false => Ok(t),
        }
    })?;
    Ok(plan.data)
}

/// Refuses `x` where it orders a marked column.
fn check(x: &Expr, schema: &DFSchema) -> Result<()> {
    match x {
        Expr::BinaryExpr(b)
            if matches!(
                b.op,
                Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
            ) =>
        {
            let op = format!("`{}`", b.op);
            refuse(&b.left, schema, &op)?;
            refuse(&b.right, schema, &op)
        }
        Expr::Between(b) => {
            for e in [&b.expr, &b.low, &b.high] {
                refuse(e, schema, "BETWEEN")?;
            }
            Ok(())
        }
        Expr::AggregateFunction(f) => {
            let name = f.func.name();
            let order = format!("{name}(... ORDER BY)");
            aggregate(name, &f.params.args, &f.params.order_by, &order, schema)
        }
        Expr::WindowFunction(w) => {
            let name = w.fun.name();
            aggregate(
                name,
                &w.params.args,
                &w.params.order_by,
                "OVER (ORDER BY)",
                schema,
            )
        }
        Expr::ScalarFunction(f) if matches!(f.name(), "greatest" | "least") => {
            for a in &f.args {
                refuse(a, schema, &format!("{}()", f.name()))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Refuses `min`/`max` of a marked column, and an `ORDER BY` of one in an
/// aggregate's arguments or a window (`order`, the words for it).
fn aggregate(
    name: &str,
    args: &[Expr],
    order_by: &[SortExpr],
    order: &str,
    schema: &DFSchema,
) -> Result<()> {
    if matches!(name, "min" | "max") {
        for a in args {
            refuse(a, schema, &format!("{name}()"))?;
        }
    }
    for o in order_by {
        refuse(&o.expr, schema, order)?;
    }
    Ok(())
}

/// The source's type of `e` when it is a marked column (under aliases).
fn source_type(e: &Expr, schema: &DFSchema) -> Option<String> {
    match e {
        Expr::Alias(a) => source_type(&a.expr, schema),
        Expr::Column(c) => schema
            .qualified_field_from_column(c)
            .ok()?
            .1
            .metadata()
            .get(TEXT_OF)
            .filter(|of| !of.is_empty())
            .cloned(),
        _ => None,
    }
}

fn refuse(e: &Expr, schema: &DFSchema, what: &str) -> Result<()> {
    let Some(of) = source_type(e, schema) else {
        return Ok(());
    };
    let column = match e {
        Expr::Alias(a) => a.name.clone(),
        Expr::Column(c) => c.name.clone(),
        _ => e.schema_name().to_string(),
    };
    Err(DataException::error(
        "0A000",
        &format!(
            "{what} of `{column}` is not supported: it is a PostgreSQL `{of}`, which Quipu \
             reads as text, and PostgreSQL orders a `{of}` otherwise than its text (an enum \
             by its labels' order, money and inet as numbers, arrays element by element); \
             write `{column}::text` to order the text, or order by an expression of your \
             own (for an enum, `array_position(ARRAY['first', 'second', ...], {column})`)"
        ),
    ))
}
