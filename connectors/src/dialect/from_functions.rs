//! Set-returning functions in `FROM` that read rows: `FROM items i,
//! unnest(i.tags) t`, `CROSS JOIN LATERAL generate_series(1, o.qty) g`,
//! `generate_series((SELECT min(day) FROM sales), ...)`, and `WITH
//! ORDINALITY`.
//!
//! DataFusion 55 evaluates a table function's arguments while it plans, so
//! it refused each of these: "unnest() can only be applied to array,
//! struct and null" for a column, "Arguments must be literals" for a
//! subquery, "UNNEST with ordinality is not supported yet". PostgreSQL
//! reads such a call as a `LATERAL` subquery that returns a row per value,
//! and that is how it is written here: `LATERAL (SELECT unnest(i.tags)
//! AS t) AS t`, with the ordinal `unnest(generate_series(1,
//! cardinality(...)))` zipped beside it. `planning::lateral_rows` then
//! plans the subquery over the outer rows. Calls whose arguments are
//! constants keep DataFusion's table functions.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, Ident, ObjectNamePart, Query, SelectItem, TableAlias,
    TableFactor, TableWithJoins, VisitorMut,
};

use super::syntax::{any_within, filled, normalized, one_select, query_of, selects_of};

/// The rewrite, over every `SELECT`'s `FROM` list.
pub(super) struct FromFunctions;

impl VisitorMut for FromFunctions {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        let mut values: Vec<(String, Expr)> = vec![];
        selects_of(&mut q.body, &mut |select| {
            let mut named = vec![];
            for (k, from) in select.from.iter_mut().enumerate() {
                // The first table of a FROM list has no table before it to
                // read; the others may read those before them.
                named.extend(rewrite(&mut from.relation, k > 0));
                for join in &mut from.joins {
                    named.extend(rewrite(&mut join.relation, true));
                }
            }
            lateral_reach(&mut select.from);
            let named: Vec<(String, Expr)> = named
                .into_iter()
                .map(|a| {
                    let value = Expr::CompoundIdentifier(vec![a.clone(), Ident::new("value")]);
                    (normalized(&a), value)
                })
                .collect();
            // A JSON array's values in `FROM` are a column `value`, and
            // the table's alias alone means it too (`FROM
            // jsonb_array_elements(j) e WHERE e ->> 'k' = ...`, as in
            // PostgreSQL): each bare `e` is `e.value`, shown as `e`.
            super::using_joins::substitute_select(select, &named);
            values.extend(named);
        });
        if let Some(order) = &mut q.order_by
            && let datafusion::sql::sqlparser::ast::OrderByKind::Expressions(keys) = &mut order.kind
        {
            for key in keys {
                super::using_joins::substitute(&mut key.expr, &values);
            }
        }
        ControlFlow::Continue(())
    }
}

/// `FROM a, b LEFT JOIN LATERAL (...) x ON ...`, whose subquery may read
/// `a` (PostgreSQL lets a `LATERAL` item read every item before it), as
/// `FROM a CROSS JOIN b LEFT JOIN LATERAL ...`: DataFusion 55 decorrelates
/// a lateral join only against its own left side, and a reference to `a`
/// failed ("Physical plan does not support logical expression
/// OuterReferenceColumn"; differential seed 80, query 31). The same rows:
/// a comma is a cross join, and crossing `a` in before `b`'s inner and
/// left joins keeps each `b` row's matches (not before a right or full
/// join, whose unmatched rows would then be repeated per `a` row: those
/// are left as written).
fn lateral_reach(from: &mut Vec<TableWithJoins>) {
    use datafusion::sql::sqlparser::ast::{Join, JoinConstraint, JoinOperator};
    let lateral = |j: &Join| {
        matches!(
            j.relation,
            TableFactor::Derived { lateral: true, .. }
                | TableFactor::Function { lateral: true, .. }
        )
    };
    let crossable = |j: &Join| {
        matches!(
            j.join_operator,
            JoinOperator::Join(_)
                | JoinOperator::Inner(_)
                | JoinOperator::Left(_)
                | JoinOperator::LeftOuter(_)
                | JoinOperator::CrossJoin(_)
        )
    };
    let Some(last) = from
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, f)| f.joins.iter().any(lateral) && f.joins.iter().all(crossable))
        .map(|(k, _)| k)
        .next_back()
    else {
        return;
    };
    if !from[1..last].iter().all(|f| f.joins.iter().all(crossable)) {
        return;
    }
    let rest = from.split_off(last + 1);
    let mut items = std::mem::take(from).into_iter();
    let mut merged = items.next().expect("a FROM list before a later item");
    for item in items {
        merged.joins.push(Join {
            relation: item.relation,
            global: false,
            join_operator: JoinOperator::CrossJoin(JoinConstraint::None),
        });
        merged.joins.extend(item.joins);
    }
    from.push(merged);
    from.extend(rest);
}

/// Whether an argument reads something other than constants: a column
/// (of a table before it, or of an outer query) or a subquery.
fn reads_rows(e: &Expr) -> bool {
    any_within(e, |x| {
        matches!(
            x,
            Expr::Identifier(_)
                | Expr::CompoundIdentifier(_)
                | Expr::Subquery(_)
                | Expr::Exists { .. }
                | Expr::InSubquery { .. }
        )
    })
}

/// The set-returning function a table factor names: `generate_series`,
/// `unnest`, or one of [`SPLITS`].
fn set_function(name: &datafusion::sql::sqlparser::ast::ObjectName) -> Option<&'static str> {
    let Some(ObjectNamePart::Identifier(i)) = name.0.last() else {
        return None;
    };
    ["unnest", "generate_series"]
        .into_iter()
        .chain(SPLITS.iter().map(|(f, _)| *f))
        .find(|f| i.value.eq_ignore_ascii_case(f))
}

/// Set-returning functions that are the rows of an array function's
/// value, in a select list (`syntax.rs`) and in `FROM` (`FROM
/// regexp_split_to_table(s, ',') AS w`, DataFusion: "table function
/// 'regexp_split_to_table' not found"): that array unnested.
pub(super) const SPLITS: &[(&str, &str)] = &[
    ("string_to_table", "string_to_array"),
    ("regexp_split_to_table", "regexp_split_to_array"),
    ("json_array_elements", super::json_access::ELEMENTS),
    ("jsonb_array_elements", super::json_access::ELEMENTS),
    (
        "json_array_elements_text",
        super::json_access::ELEMENTS_TEXT,
    ),
    (
        "jsonb_array_elements_text",
        super::json_access::ELEMENTS_TEXT,
    ),
];

/// The arguments of a call, if all are plain (not named) expressions.
fn plain(args: &[FunctionArg]) -> Option<Vec<Expr>> {
    args.iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x.clone()),
            _ => None,
        })
        .collect()
}

/// `name(args)`.
fn call(name: &str, args: Vec<Expr>) -> Expr {
    let mut call = filled(
        &format!("{name}(quipu_operand)"),
        vec![Expr::value(datafusion::sql::sqlparser::ast::Value::Null)],
    );
    if let Expr::Function(f) = &mut call
        && let datafusion::sql::sqlparser::ast::FunctionArguments::List(list) = &mut f.args
    {
        list.args = args
            .into_iter()
            .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
            .collect();
    }
    call
}

/// Whether the function's one output column is named `value`, whatever
/// the alias (which names the table: `FROM json_array_elements(j) AS e`,
/// `e.value`): the JSON array functions'.
fn value_column(function: &str) -> bool {
    function.starts_with("json")
}

/// Rewrites a set-returning function in `FROM`; returns the alias whose
/// bare name means its value (`value`, below).
fn rewrite(t: &mut TableFactor, lateral: bool) -> Option<Ident> {
    let (function, args, alias, ordinality, always) = match t {
        TableFactor::Table {
            name,
            args: Some(args),
            alias,
            with_ordinality,
            ..
        } if set_function(name).is_some_and(|f| f != "unnest") => {
            let f = set_function(name).unwrap_or_default();
            (
                f,
                plain(&args.args),
                alias,
                *with_ordinality,
                f != "generate_series",
            )
        }
        // `LATERAL f(...)`: DataFusion has no form for it, constants or
        // not.
        TableFactor::Function {
            name,
            args,
            alias,
            with_ordinality,
            ..
        } if set_function(name).is_some() => (
            set_function(name).unwrap_or_default(),
            plain(args),
            alias,
            *with_ordinality,
            true,
        ),
        TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset: false,
            with_ordinality,
            ..
        } => (
            "unnest",
            Some(array_exprs.clone()),
            alias,
            *with_ordinality,
            false,
        ),
        _ => return None,
    };
    let args = args?;
    if args.is_empty() || !(always || ordinality || args.iter().any(reads_rows)) {
        return None;
    }
    let alias = alias.clone();
    let value = alias
        .as_ref()
        .filter(|a| value_column(function) && a.columns.is_empty() && !ordinality)
        .map(|a| a.name.clone());
    match SPLITS.iter().find(|(f, _)| *f == function) {
        Some((f, array)) => replace(t, f, vec![call(array, args)], alias, ordinality, lateral),
        None => replace(t, function, args, alias, ordinality, lateral),
    }
    value
}

/// `t` as the lateral subquery that computes `function(args)`.
fn replace(
    t: &mut TableFactor,
    function: &'static str,
    args: Vec<Expr>,
    alias: Option<TableAlias>,
    ordinality: bool,
    lateral: bool,
) {
    // The lists the set's columns come from: each array of `unnest`, or
    // the series (`generate_series(...)` in a select list becomes
    // `unnest(...)` in `syntax::SetReturning`).
    let (lists, mut items): (Vec<Expr>, Vec<Expr>) = if function != "generate_series" {
        let items = args
            .iter()
            .map(|a| filled("unnest(quipu_operand)", vec![a.clone()]))
            .collect();
        (args, items)
    } else {
        let series = call("generate_series", args);
        (vec![series.clone()], vec![series])
    };
    let mut names: Vec<String> = match (&alias, items.len()) {
        (_, 1) if value_column(function) => vec!["value".to_string()],
        (Some(a), 1) => vec![normalized(&a.name)],
        _ => (1..=items.len())
            .map(|i| match i {
                1 => function.to_string(),
                i => format!("{function}_{i}"),
            })
            .collect(),
    };
    if ordinality {
        // The values' positions, zipped beside them: the longest list's
        // length (several sets are padded with NULLs to it).
        let lengths: Vec<Expr> = lists
            .into_iter()
            .map(|list| filled("coalesce(cardinality(quipu_operand), 0)", vec![list]))
            .collect();
        let longest = match lengths.len() {
            1 => lengths[0].clone(),
            _ => call("greatest", lengths),
        };
        items.push(filled(
            "unnest(generate_series(1, CAST(quipu_operand AS BIGINT)))",
            vec![longest],
        ));
        names.push("ordinality".to_string());
    }
    if let Some(a) = &alias {
        for (name, column) in names.iter_mut().zip(&a.columns) {
            *name = normalized(&column.name);
        }
    }
    let mut select = one_select();
    select.projection = items
        .into_iter()
        .zip(&names)
        .map(|(expr, name)| SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', name),
        })
        .collect();
    let alias = TableAlias {
        name: alias
            .as_ref()
            .map_or_else(|| Ident::with_quote('"', function), |a| a.name.clone()),
        columns: vec![],
        explicit: true,
        at: None,
    };
    *t = TableFactor::Derived {
        lateral,
        subquery: Box::new(query_of(select)),
        alias: Some(alias),
        sample: None,
    };
}
