//! PostgreSQL's meaning for what analysts type, on DataFusion: statement
//! rewrites ([`syntax`]), functions under PostgreSQL's names and output
//! forms ([`case_mapping`], [`concat`], [`pg_text`]), correlated scalar subqueries
//! ([`single_row`]), `EXISTS` outside a filter ([`exists_values`]), float literals compared with decimals
//! ([`float_literals`]), PostgreSQL's errors of double arithmetic
//! ([`float_errors`]), timestamp differences as intervals ([`intervals`]) and outer
//! references of subqueries ([`outer_refs`]), `AT TIME ZONE` both ways
//! ([`at_time_zone`]), ranking window functions' PostgreSQL types
//! ([`window_ranks`]).

pub mod array_order;
pub mod array_sets;
pub mod array_text;
pub mod arrays;
pub mod at_time_zone;
pub mod bytea;
pub mod case_mapping;
pub mod column_names;
pub mod concat;
pub mod correlated_limit;
pub mod datetime_input;
pub mod exists_values;
pub mod extreme_places;
pub mod float_errors;
pub mod float_literals;
pub mod float_numeric;
pub mod float_sets;
pub mod from_functions;
pub mod int_literals;
pub mod interval_input;
pub mod interval_parts;
pub mod interval_scaling;
pub mod interval_trunc;
pub mod intervals;
pub mod json_access;
pub mod json_arguments;
pub mod json_contains;
pub mod mixed_text;
pub mod ordered_sets;
pub mod outer_refs;
pub mod pads;
pub mod pg_builtins;
pub mod pg_format;
pub mod pg_functions;
pub mod pg_numeric;
pub mod pg_numeric_log;
pub mod pg_out;
pub mod pg_regression;
pub mod pg_text;
pub mod pg_to_char;
pub mod pg_trunc;
pub mod pg_variance;
pub mod places_text;
pub mod set_all;
pub mod single_row;
pub mod string_agg;
pub mod syntax;
pub mod text_order;
pub mod text_types;
pub mod time_text;
pub mod unknown_literals;
pub mod using_joins;
pub mod window_ranks;
pub mod year_preimage;

/// Whether a time zone name (a session's `TimeZone`, an Arrow timestamp's
/// zone) means UTC.
pub fn utc_zone(zone: &str) -> bool {
    matches!(
        zone.to_ascii_uppercase().as_str(),
        "UTC"
            | "Z"
            | "+00:00"
            | "+00"
            | "+0000"
            | "-00:00"
            | "ETC/UTC"
            | "GMT"
            | "ETC/GMT"
            | "UCT"
            | "ZULU"
    )
}

/// `transform_up_with_subqueries` for the analyzer rules that change a
/// type (`int_literals`, `float_literals`, `window_ranks`), leaving
/// recursive queries (`WITH RECURSIVE`) as they were planned: the work
/// table a recursive term reads has the schema the planner gave it, so a
/// type changed in either term would no longer match it (`WITH RECURSIVE
/// t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t ...)` failed to plan,
/// "Cannot project plan column ... field data type differs").
pub fn transform_up_outside_recursion<F>(
    plan: datafusion::logical_expr::LogicalPlan,
    f: &mut F,
) -> datafusion::common::Result<
    datafusion::common::tree_node::Transformed<datafusion::logical_expr::LogicalPlan>,
>
where
    F: FnMut(
        datafusion::logical_expr::LogicalPlan,
    ) -> datafusion::common::Result<
        datafusion::common::tree_node::Transformed<datafusion::logical_expr::LogicalPlan>,
    >,
{
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::LogicalPlan;
    if matches!(plan, LogicalPlan::RecursiveQuery(_)) {
        return Ok(Transformed::no(plan));
    }
    plan.map_subqueries(|sub| transform_up_outside_recursion(sub, f))?
        .transform_children(|node| node.map_children(|c| transform_up_outside_recursion(c, f)))?
        .transform_parent(f)
}

/// Whether `t` is an array (a list of any kind).
pub fn is_list(t: &datafusion::arrow::datatypes::DataType) -> bool {
    use datafusion::arrow::datatypes::DataType;
    matches!(
        t,
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
    )
}

/// Each output column of `plan`, as an expression over it (to keep them
/// all in a projection that adds some).
pub fn columns_of(
    plan: &datafusion::logical_expr::LogicalPlan,
) -> Vec<datafusion::logical_expr::Expr> {
    plan.schema()
        .columns()
        .into_iter()
        .map(datafusion::logical_expr::Expr::Column)
        .collect()
}

/// The most rows `plan` can return whatever its filters keep, or None.
/// DataFusion's `max_rows` also bounds a filter on an equality with a
/// source's primary key to one row; the rewrites of correlated
/// subqueries (`correlated_limit`, `single_row`) must treat such a lookup
/// as any other, since DataFusion decorrelates a subquery only in the
/// shapes they make of it (a limit kept as a rank, an aggregate).
pub fn rows_at_most(plan: &datafusion::logical_expr::LogicalPlan) -> Option<usize> {
    use datafusion::logical_expr::{FetchType, LogicalPlan};
    let min = |a: Option<usize>, b: Option<usize>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    match plan {
        LogicalPlan::Projection(p) => rows_at_most(&p.input),
        LogicalPlan::SubqueryAlias(a) => rows_at_most(&a.input),
        LogicalPlan::Filter(f) => rows_at_most(&f.input),
        LogicalPlan::Window(w) => rows_at_most(&w.input),
        LogicalPlan::Sort(s) => min(s.fetch, rows_at_most(&s.input)),
        LogicalPlan::Limit(l) => match l.get_fetch_type() {
            Ok(FetchType::Literal(fetch)) => min(fetch, rows_at_most(&l.input)),
            _ => rows_at_most(&l.input),
        },
        LogicalPlan::Aggregate(a) if a.group_expr.is_empty() => Some(1),
        LogicalPlan::Values(v) => Some(v.values.len()),
        LogicalPlan::EmptyRelation(e) => Some(usize::from(e.produce_one_row)),
        _ => None,
    }
}

/// The schema the expressions of `node` are typed against before type
/// coercion: its inputs' columns, and a scan's own table's.
pub fn expression_schema(
    node: &datafusion::logical_expr::LogicalPlan,
) -> datafusion::common::DFSchema {
    use datafusion::logical_expr::LogicalPlan;
    let mut schema = datafusion::logical_expr::utils::merge_schema(&node.inputs());
    if let LogicalPlan::TableScan(scan) = node
        && let Ok(own) = datafusion::common::DFSchema::try_from_qualified_schema(
            scan.table_name.clone(),
            &scan.source.schema(),
        )
    {
        schema.merge(&own);
    }
    schema
}

/// Rewrites each expression of `node` bottom-up with `f`, keeping the name
/// each expression was planned with: the nodes above refer to a node's
/// outputs by name (`Int64(1)` stays the name of `SELECT 1`'s column after
/// the literal becomes an `Int32`).
pub fn rewrite_keeping_names(
    node: datafusion::logical_expr::LogicalPlan,
    mut f: impl FnMut(
        datafusion::logical_expr::Expr,
    ) -> datafusion::common::Result<
        datafusion::common::tree_node::Transformed<datafusion::logical_expr::Expr>,
    >,
) -> datafusion::common::Result<
    datafusion::common::tree_node::Transformed<datafusion::logical_expr::LogicalPlan>,
> {
    use datafusion::common::tree_node::TreeNode;
    let names = datafusion::logical_expr::expr_rewriter::NamePreserver::new(&node);
    node.map_expressions(|e| keeping_name(&names, e, &mut |e| e.transform_up(&mut f)))
}

/// `e` rewritten by `f` under the name it was planned with. A grouping
/// set's expressions keep theirs one by one: they are the aggregate's
/// columns, and an alias around the whole set is none (`GROUP BY ROLLUP
/// (i % 2)` lost its column `i % 2`).
pub fn keeping_name(
    names: &datafusion::logical_expr::expr_rewriter::NamePreserver,
    e: datafusion::logical_expr::Expr,
    f: &mut impl FnMut(
        datafusion::logical_expr::Expr,
    ) -> datafusion::common::Result<
        datafusion::common::tree_node::Transformed<datafusion::logical_expr::Expr>,
    >,
) -> datafusion::common::Result<
    datafusion::common::tree_node::Transformed<datafusion::logical_expr::Expr>,
> {
    use datafusion::common::tree_node::TreeNode;
    if let datafusion::logical_expr::Expr::GroupingSet(_) = e {
        return e.map_children(|c| keeping_name(names, c, f));
    }
    let saved = names.save(&e);
    Ok(f(e)?.update_data(|e| saved.restore(e)))
}

/// The text of a non-NULL text literal.
pub fn text_literal(e: &datafusion::logical_expr::Expr) -> Option<&str> {
    use datafusion::common::ScalarValue;
    match e {
        datafusion::logical_expr::Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
            _,
        ) => Some(s),
        _ => None,
    }
}

/// The values a `CASE` can give: each `THEN`'s, then the `ELSE`'s.
pub fn case_values_mut(
    case: &mut datafusion::logical_expr::expr::Case,
) -> Vec<&mut datafusion::logical_expr::Expr> {
    case.when_then_expr
        .iter_mut()
        .map(|(_, then)| then.as_mut())
        .chain(case.else_expr.as_deref_mut())
        .collect()
}
