//! Parsed statements brought to PostgreSQL's meaning before planning, where
//! the parser or the planner would otherwise answer differently (issue 17's
//! differential test found both):
//!
//! - sqlparser 0.62 parses the right operand of `IS [NOT] DISTINCT FROM`
//!   with the lowest precedence, so `a IS DISTINCT FROM TRUE AND b < 5` was
//!   `a IS DISTINCT FROM (TRUE AND b < 5)` (618 rows where PostgreSQL gives
//!   3; fixed upstream in apache/datafusion-sqlparser-rs#2436). The
//!   swallowed `AND`/`OR` chain is given back: the comparison takes only
//!   the chain's leftmost operand, as PostgreSQL's precedence says.
//! - DataFusion 55 plans `x IN (subquery)` anywhere but a plain filter as
//!   a mark join whose mark is never NULL, so a value missing from a
//!   subquery that holds a NULL (or a NULL `x`) gives FALSE where SQL says
//!   NULL: `NOT (x IN ...)`, `(x IN ...) IS NULL` and `a OR x NOT IN ...`
//!   answered wrongly. Where NULL and FALSE differ, the test is spelt out
//!   in three-valued logic ([`three_valued_in`]).
//! - PostgreSQL reads a field of a composite value as `(x).field`;
//!   DataFusion 55 refuses that dot ("Dot access not supported") but has
//!   the same access as `x['field']`, which it becomes (MongoDB
//!   sub-documents are structs).
//! - A subquery's `a.b` that means an outer query's table `a` is kept
//!   from DataFusion's search of the subquery's own columns
//!   ([`super::outer_refs`]).

use std::ops::ControlFlow;

use super::datetime_input::DateOrder;
use datafusion::error::{DataFusionError, Result};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, Expr, GroupByExpr, Query, Select, SelectItem, SetExpr, Subscript,
    TableFactor, UnaryOperator, Value, Visit, VisitMut, Visitor, VisitorMut, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// The statement with PostgreSQL's meaning, or a clear error; date text
/// read while planning (`generate_series` bounds) is read in `order`,
/// the session's.
pub fn fix(mut statement: DfStatement, order: DateOrder) -> Result<DfStatement> {
    fix_in_place(&mut statement, order)?;
    Ok(statement)
}

/// Marks each `EXTRACT` of a statement (see `extract_as_numeric`), for
/// the engine's rewrite of `extract` and `date_part`, which runs on
/// statements (not on stored views, whose plans it does not see).
pub fn mark_extracts(mut statement: DfStatement) -> DfStatement {
    fn mark(statement: &mut DfStatement) {
        match statement {
            DfStatement::Statement(s) => {
                let _ = visit_expressions_mut(s.as_mut(), |e: &mut Expr| {
                    extract_as_numeric(e);
                    ControlFlow::<()>::Continue(())
                });
            }
            DfStatement::Explain(e) => mark(&mut e.statement),
            _ => {}
        }
    }
    mark(&mut statement);
    statement
}

fn fix_in_place(statement: &mut DfStatement, order: DateOrder) -> Result<()> {
    match statement {
        DfStatement::Statement(s) => fix_sql(s.as_mut(), order),
        DfStatement::Explain(e) => fix_in_place(&mut e.statement, order),
        _ => Ok(()),
    }
}

fn fix_sql<T: VisitMut + Visit>(s: &mut T, order: DateOrder) -> Result<()> {
    super::outer_refs::rename(s);
    // Before `pg_functions` makes calls of the prefix operators.
    let _ = visit_expressions_mut(s, |e: &mut Expr| {
        prefix_operand(e);
        minus_before_power(e);
        ControlFlow::<()>::Continue(())
    });
    let mut failed = None;
    let _ = visit_expressions_mut(s, |e: &mut Expr| {
        if let Err(err) = bytea_literal(e) {
            failed = Some(err);
            return ControlFlow::Break(());
        }
        reassociate(e);
        field_by_name(e);
        mod_as_operator(e);
        starts_with_operator(e);
        if let Err(err) = regex_literals(e)
            .and_then(|_| collation(e))
            .and_then(|_| like_trailing_escape(e))
        {
            failed = Some(err);
            return ControlFlow::Break(());
        }
        null_in_list(e);
        open_slice(e);
        bitwise_not(e);
        type_name_call(e);
        overlaps(e);
        date_trunc_long(e);
        explicit_bigint_sum(e);
        quantified_subquery(e);
        like_any(e);
        like_escape(e);
        between_symmetric(e);
        local_time(e);
        pg_functions(e);
        make_interval(e);
        make_timestamptz(e);
        jsonb_builders(e);
        json_agg(e);
        json_object_agg(e);
        shift_default(e);
        text_types(e);
        plain_number(e);
        float_literal(e);
        timestamp_precision(e);
        if let Err(err) = interval_literal(e)
            .and_then(|_| year_zero(e))
            .and_then(|_| chained_comparison(e))
        {
            failed = Some(err);
            return ControlFlow::Break(());
        }
        negated_interval(e);
        at_time_zone(e);
        ControlFlow::<()>::Continue(())
    });
    if let Some(err) = failed {
        return Err(err);
    }
    // Before the derived tables are named: it writes some.
    let _ = VisitMut::visit(s, &mut super::from_functions::FromFunctions);
    // After the FROM functions are named: a USING join's sides are read
    // by their names.
    let mut using = super::using_joins::UsingJoins::default();
    let _ = VisitMut::visit(s, &mut using);
    if let Some(err) = using.refused {
        return Err(err);
    }
    // After the re-association, so the filters' shapes are PostgreSQL's.
    let _ = VisitMut::visit(s, &mut SubqueryColumnNames);
    let _ = VisitMut::visit(s, &mut NullAwareIn);
    let _ = VisitMut::visit(s, &mut RepeatedColumns);
    let _ = VisitMut::visit(s, &mut SetReturning(order));
    let _ = VisitMut::visit(s, &mut FetchAsLimit);
    let _ = VisitMut::visit(s, &mut EmptyGroup);
    let _ = VisitMut::visit(s, &mut OrdinalWindows);
    Ok(())
}

/// Rewrites, in every query's filters (`WHERE`, `HAVING`), each
/// `x [NOT] IN (subquery)` whose NULL would differ from FALSE. Post-order,
/// so the subqueries are already rewritten when their copies are made.
struct NullAwareIn;

impl VisitorMut for NullAwareIn {
    type Break = ();
    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        selects_of(&mut q.body, &mut |select| {
            for filter in [select.selection.as_mut(), select.having.as_mut()]
                .into_iter()
                .flatten()
            {
                in_filter(filter, true, true);
            }
        });
        ControlFlow::Continue(())
    }
}

/// `GROUP BY ()`, the one group of all rows, which DataFusion 55 refused
/// ("Empty tuple not supported yet"): beside other keys it adds nothing,
/// alone it is `GROUPING SETS (())` (one row, over no rows too).
struct EmptyGroup;

impl VisitorMut for EmptyGroup {
    type Break = ();
    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        selects_of(&mut q.body, &mut |select| {
            let GroupByExpr::Expressions(keys, _) = &mut select.group_by else {
                return;
            };
            let empty = |k: &Expr| matches!(k, Expr::Tuple(t) if t.is_empty());
            if !keys.iter().any(empty) {
                return;
            }
            keys.retain(|k| !empty(k));
            if keys.is_empty() {
                keys.push(Expr::GroupingSets(vec![vec![]]));
            }
        });
        ControlFlow::Continue(())
    }
}

/// PostgreSQL lets a select list repeat a column (`SELECT NULL, NULL`, the
/// JDBC driver's `getProcedures`; `SELECT a, a`; `SELECT 1, 1::bigint`,
/// which DataFusion names alike, see [`name_key`]); DataFusion refuses
/// "Projections require unique expression names". A repeat without an
/// alias gets one: its text and its position (`NULL:5`). The PostgreSQL
/// front door names the columns as PostgreSQL does anyway.
struct RepeatedColumns;

impl VisitorMut for RepeatedColumns {
    type Break = ();
    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        selects_of(&mut q.body, &mut |select| {
            let mut seen = std::collections::HashSet::new();
            for (i, item) in select.projection.iter_mut().enumerate() {
                let SelectItem::UnnamedExpr(e) = item else {
                    continue;
                };
                if !seen.insert(name_key(e)) {
                    let name = e.to_string();
                    *item = positional(e.clone(), &name, i);
                }
            }
        });
        ControlFlow::Continue(())
    }
}

/// `ORDER BY k` where the k-th item of the select list is an unnamed
/// window function of an aggregate (`SELECT s, count(*) / sum(count(*))
/// OVER () ... GROUP BY s ORDER BY 2`, a share of the total): DataFusion
/// 55 looked the position up among the grouped columns and refused it
/// ("Column in ORDER BY must be in GROUP BY"), though the same query
/// ordered by an alias answers. The item is named by its own text and
/// the query ordered by that name.
///
/// Any other computed item so ordered (`SELECT s, sum(i) / count(*) ...
/// GROUP BY s ORDER BY 2`, `SELECT upper(s) ... GROUP BY s ORDER BY 1`,
/// `SELECT count(*) + 1 FROM t ORDER BY 1`) was refused the same way by
/// DataFusion 55.2 ("Column in ORDER BY must be in GROUP BY or an
/// aggregate function: While expanding wildcard ..."), though ordering by
/// the expression itself answers. The position is replaced by a copy of
/// the expression, which keeps the column's name. Where the copy could
/// mean something else (a volatile call or a subquery, computed twice; a
/// name a select item's alias hides, which an `ORDER BY` expression may
/// read), and for a literal of a grouped query, the item is named as a
/// window function is. A bare name, and a literal of a query that does
/// not group, are left as they are: their positions work.
struct OrdinalWindows;

impl VisitorMut for OrdinalWindows {
    type Break = ();
    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::{Ident, OrderByKind};
        let (Some(order), SetExpr::Select(select)) = (&mut q.order_by, q.body.as_mut()) else {
            return ControlFlow::Continue(());
        };
        let OrderByKind::Expressions(exprs) = &mut order.kind else {
            return ControlFlow::Continue(());
        };
        let grouped = select.having.is_some()
            || !matches!(&select.group_by, GroupByExpr::Expressions(g, _) if g.is_empty())
            || select.projection.iter().any(|item| match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    has_aggregate(e)
                }
                _ => false,
            });
        let aliases: Vec<String> = select
            .projection
            .iter()
            .filter_map(|item| match item {
                SelectItem::ExprWithAlias { alias, .. } => Some(normalized(alias)),
                _ => None,
            })
            .collect();
        for o in exprs {
            let Expr::Value(v) = &o.expr else { continue };
            let Value::Number(text, _) = &v.value else {
                continue;
            };
            let Some(item) = text
                .parse::<usize>()
                .ok()
                .and_then(|k| k.checked_sub(1))
                .and_then(|i| select.projection.get_mut(i))
            else {
                continue;
            };
            let SelectItem::UnnamedExpr(e) = item else {
                continue;
            };
            // Other items only where DataFusion refuses them: in a query
            // that aggregates, without DISTINCT (whose ORDER BY must name
            // an item), not a set-returning call (a row per value).
            let window = has_window(e);
            if !window
                && (!grouped
                    || select.distinct.is_some()
                    || matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
                    || returns_sets(e))
            {
                continue;
            }
            // (Never a literal: `ORDER BY 2` would be a position again.)
            if !matches!(e, Expr::Value(_)) && !window && copied_safely(e, &aliases) {
                o.expr = e.clone();
                continue;
            }
            let name = Ident::with_quote('"', e.to_string());
            *item = SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias: name.clone(),
            };
            o.expr = Expr::Identifier(name);
        }
        ControlFlow::Continue(())
    }
}

/// Whether `ORDER BY e` means what `ORDER BY k` of the computed select
/// item `e` means: `e` computed alike a second time (no volatile call, no
/// subquery), and reading no name an alias of the select list hides.
fn copied_safely(e: &Expr, aliases: &[String]) -> bool {
    !any_within(e, |x| match x {
        Expr::Function(f) => matches!(
            called(f).as_str(),
            "random"
                | "random_normal"
                | "setseed"
                | "uuid"
                | "gen_random_uuid"
                | "nextval"
                | "clock_timestamp"
                | "timeofday"
        ),
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => true,
        Expr::Identifier(i) => aliases.contains(&normalized(i)),
        Expr::Value(v) => matches!(v.value, Value::Placeholder(_)),
        _ => false,
    })
}

/// A name as PostgreSQL folds it: unquoted in lower case.
pub(super) fn normalized(i: &datafusion::sql::sqlparser::ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// Whether some expression within `e` (itself included) is `found`.
pub(super) fn any_within(e: &Expr, mut found: impl FnMut(&Expr) -> bool) -> bool {
    datafusion::sql::sqlparser::ast::visit_expressions(e, |x: &Expr| {
        if found(x) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// The PostgreSQL function `f` calls ([`function_name`]), in lower case;
/// empty for another schema's.
fn called(f: &datafusion::sql::sqlparser::ast::Function) -> String {
    function_name(&f.name).map_or_else(String::new, str::to_ascii_lowercase)
}

/// Whether `e` calls an aggregate (one of the usual ones by name, or
/// any call with `FILTER`, `WITHIN GROUP` or an argument's `ORDER BY`)
/// outside a window.
fn has_aggregate(e: &Expr) -> bool {
    use datafusion::sql::sqlparser::ast::FunctionArguments;
    any_within(e, |x| {
        let Expr::Function(f) = x else {
            return false;
        };
        let name = called(f);
        let shaped = f.filter.is_some()
            || !f.within_group.is_empty()
            || matches!(&f.args, FunctionArguments::List(l) if !l.clauses.is_empty());
        let named = matches!(
            name.as_str(),
            "count"
                | "sum"
                | "avg"
                | "min"
                | "max"
                | "string_agg"
                | "array_agg"
                | "bool_and"
                | "bool_or"
                | "every"
                | "stddev"
                | "stddev_samp"
                | "stddev_pop"
                | "variance"
                | "var_samp"
                | "var_pop"
                | "json_agg"
                | "json_object_agg"
                | "corr"
                | "covar_samp"
                | "covar_pop"
                | "bit_and"
                | "bit_or"
                | "median"
        ) || name.starts_with("regr_");
        f.over.is_none() && (named || shaped)
    })
}

/// Whether `e` calls a set-returning function.
fn returns_sets(e: &Expr) -> bool {
    any_within(e, |x| {
        matches!(x, Expr::Function(f) if matches!(
            called(f).as_str(),
            "generate_series"
                | "unnest"
                | "regexp_matches"
                | "regexp_split_to_table"
                | "string_to_table"
                | "json_array_elements"
                | "json_array_elements_text"
                | "jsonb_array_elements"
                | "jsonb_array_elements_text"
                | "json_each"
                | "json_each_text"
                | "jsonb_each"
                | "jsonb_each_text"
                | "json_object_keys"
                | "jsonb_object_keys"
        ))
    })
}

/// Whether `e` calls a window function.
fn has_window(e: &Expr) -> bool {
    any_within(e, |x| matches!(x, Expr::Function(f) if f.over.is_some()))
}

/// `FETCH FIRST n ROWS ONLY` (the standard's `LIMIT`, which SQL
/// generators and some BI tools write) as `LIMIT n`: DataFusion 55
/// refused it ("FETCH clause is not supported yet"). `FETCH FIRST ROW
/// ONLY` is one row; `WITH TIES` and `PERCENT` stay refused.
struct FetchAsLimit;

impl VisitorMut for FetchAsLimit {
    type Break = ();
    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::{Fetch, LimitClause};
        whole_counts(q);
        with_ties(q);
        let Some(Fetch {
            with_ties: false,
            percent: false,
            quantity,
        }) = &q.fetch
        else {
            return ControlFlow::Continue(());
        };
        let n = quantity.clone().unwrap_or_else(|| parse_expr("1"));
        match &mut q.limit_clause {
            None => {
                q.limit_clause = Some(LimitClause::LimitOffset {
                    limit: Some(n),
                    offset: None,
                    limit_by: vec![],
                })
            }
            Some(LimitClause::LimitOffset {
                limit: limit @ None,
                ..
            }) => *limit = Some(n),
            // `LIMIT` and `FETCH` both: PostgreSQL's parser refuses that.
            Some(_) => return ControlFlow::Continue(()),
        }
        q.fetch = None;
        ControlFlow::Continue(())
    }
}

/// `ORDER BY k FETCH FIRST n ROWS WITH TIES` (with `OFFSET m` or not)
/// of a `SELECT` without `DISTINCT`, which DataFusion 55 refused ("FETCH
/// clause is not supported yet"): the rows ranked within the first `m +
/// n` by `rank() OVER (ORDER BY k)`, so the last row's equals come along,
/// and past the first `m` by `row_number()`, as
///
/// ```sql
/// SELECT * EXCLUDE (__quipu_ties_rank, __quipu_ties_row) FROM
///   (SELECT ..., rank() OVER (ORDER BY k) AS __quipu_ties_rank,
///           row_number() OVER (ORDER BY k) AS __quipu_ties_row FROM ...) AS __quipu_ties
/// WHERE __quipu_ties_rank <= m + n AND __quipu_ties_row > m ORDER BY __quipu_ties_rank
/// ```
///
/// A key that names an output column (`ORDER BY total`, an alias) or its
/// position (`ORDER BY 2`) is that column's expression in the windows.
/// Other shapes (`DISTINCT`, whose duplicates the ranks would count; a
/// `UNION`) are left to DataFusion's refusal.
fn with_ties(q: &mut Query) {
    use datafusion::sql::sqlparser::ast::{
        ExcludeSelectItem, Fetch, Ident, LimitClause, ObjectName, OrderByKind, WindowType,
    };
    let Some(Fetch {
        with_ties: true,
        percent: false,
        quantity,
    }) = &q.fetch
    else {
        return;
    };
    let n = quantity.clone().unwrap_or_else(|| parse_expr("1"));
    let offset = match &q.limit_clause {
        None => None,
        Some(LimitClause::LimitOffset {
            limit: None,
            offset,
            limit_by,
        }) if limit_by.is_empty() => offset.as_ref().map(|o| o.value.clone()),
        Some(_) => return,
    };
    let SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    let Some(OrderByKind::Expressions(keys)) = q.order_by.as_ref().map(|o| &o.kind) else {
        return;
    };
    if select.distinct.is_some() {
        return;
    }
    let mut keys = keys.clone();
    // The name of the output column each key names (its alias, or a
    // column's own), if it names one.
    let mut aliases: Vec<Option<Ident>> = vec![];
    for key in &mut keys {
        let output = match &key.expr {
            Expr::Value(v) => match &v.value {
                Value::Number(p, _) => p
                    .parse::<usize>()
                    .ok()
                    .and_then(|p| select.projection.get(p.wrapping_sub(1))),
                _ => None,
            },
            Expr::Identifier(id) => select.projection.iter().find(|item| {
                matches!(item, SelectItem::ExprWithAlias { alias, .. }
                if if id.quote_style.is_some() || alias.quote_style.is_some() {
                    alias.value == id.value
                } else {
                    alias.value.eq_ignore_ascii_case(&id.value)
                })
            }),
            _ => None,
        };
        // A column keeps its name (`ORDER BY o.id` of an output `o.id`).
        let column_name = |e: &Expr| match e {
            Expr::Identifier(column) => Some(column.clone()),
            Expr::CompoundIdentifier(parts) => parts.last().cloned(),
            _ => None,
        };
        aliases.push(match output {
            Some(SelectItem::ExprWithAlias { alias, .. }) => Some(alias.clone()),
            Some(SelectItem::UnnamedExpr(e)) => column_name(e),
            Some(_) => None,
            None => select
                .projection
                .iter()
                .any(|item| matches!(item, SelectItem::UnnamedExpr(e) if *e == key.expr))
                .then(|| column_name(&key.expr))
                .flatten(),
        });
        match output {
            Some(SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) => {
                key.expr = e.clone()
            }
            Some(_) => return,
            None => {}
        }
    }
    // A key that is a subquery's value cannot be a window's sort key
    // ("Correlated scalar subquery can only be used in Projection, Filter,
    // Aggregate plan nodes"): the SELECT is read as a derived table, and
    // the windows sort by its columns' names (a key that is no named
    // output column is a hidden column of its own).
    let by_subquery = keys.iter().any(|k| {
        any_within(&k.expr, |e| {
            matches!(
                e,
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. }
            )
        })
    });
    let mut hidden: Vec<String> = vec![];
    let select = match by_subquery {
        false => select,
        true => {
            for (i, (key, alias)) in keys.iter_mut().zip(&aliases).enumerate() {
                let name = match alias {
                    Some(name) => name.clone(),
                    // A key that is no output column is one of the derived
                    // table's, hidden at the end.
                    None => {
                        let name = Ident::new(format!("__quipu_ties_k{i}"));
                        select.projection.push(SelectItem::ExprWithAlias {
                            expr: key.expr.clone(),
                            alias: name.clone(),
                        });
                        hidden.push(name.value.clone());
                        name
                    }
                };
                key.expr = Expr::Identifier(name);
            }
            let mut wrapper = parse("SELECT * FROM (SELECT 1) AS __quipu_ties_in");
            if let SetExpr::Select(w) = wrapper.body.as_mut()
                && let Some(TableFactor::Derived { subquery, .. }) =
                    w.from.first_mut().map(|t| &mut t.relation)
            {
                *subquery.body = SetExpr::Select(select.clone());
            }
            *select = match *wrapper.body {
                SetExpr::Select(w) => w,
                _ => return,
            };
            select
        }
    };
    let window = |function: &str, name: &str| {
        let mut e = parse_expr(&format!("{function}() OVER ()"));
        if let Expr::Function(f) = &mut e
            && let Some(WindowType::WindowSpec(spec)) = &mut f.over
        {
            spec.order_by = keys.clone();
        }
        SelectItem::ExprWithAlias {
            expr: e,
            alias: Ident::new(name),
        }
    };
    select.projection.push(window("rank", "__quipu_ties_rank"));
    hidden.push("__quipu_ties_rank".into());
    let mut filter = vec![Expr::Nested(Box::new(n))];
    let template = match offset {
        Some(m) => {
            select
                .projection
                .push(window("row_number", "__quipu_ties_row"));
            hidden.push("__quipu_ties_row".into());
            // `n + m`, then `m`.
            filter.extend([Expr::Nested(Box::new(m.clone())), Expr::Nested(Box::new(m))]);
            "__quipu_ties_rank <= quipu_operand + quipu_operand AND __quipu_ties_row > quipu_operand"
        }
        None => "__quipu_ties_rank <= quipu_operand",
    };
    let mut outer =
        parse("SELECT * FROM (SELECT 1) AS __quipu_ties WHERE true ORDER BY __quipu_ties_rank");
    let inner = Query {
        order_by: None,
        fetch: None,
        limit_clause: None,
        with: None,
        ..q.clone()
    };
    if let SetExpr::Select(s) = outer.body.as_mut() {
        s.selection = Some(filled(template, filter));
        if let Some(SelectItem::Wildcard(options)) = s.projection.first_mut() {
            options.opt_exclude = Some(ExcludeSelectItem::Multiple(
                hidden
                    .iter()
                    .map(|h| ObjectName::from(vec![Ident::new(h)]))
                    .collect(),
            ));
        }
        if let Some(TableFactor::Derived { subquery, .. }) =
            s.from.first_mut().map(|t| &mut t.relation)
        {
            **subquery = inner;
        }
    }
    outer.with = q.with.take();
    *q = outer;
}

/// PostgreSQL's `generate_series` is a set-returning function. In a
/// select list it gives one row per value (`SELECT generate_series(1, 3)`
/// is three rows); DataFusion 55's scalar `generate_series` gives one
/// array there (`{1,2,3}` in one row, a silent difference, and
/// `generate_series(1, 3) * 2` failed to plan), so there it becomes
/// `unnest(generate_series(...))`, whose rows DataFusion makes as
/// PostgreSQL 10 and later do (several in one list zip, the shorter padded
/// with NULLs). In `FROM`, `generate_series` and `unnest` of one array
/// aliased without column names name their one column after the alias
/// (`FROM generate_series(1, 3) AS x` selects `x`; DataFusion named it
/// `x.value`: "No field named x").
struct SetReturning(DateOrder);

impl VisitorMut for SetReturning {
    type Break = ();
    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        selects_of(&mut q.body, &mut |select| {
            for item in select.projection.iter_mut() {
                let (SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) = item
                else {
                    continue;
                };
                let _ = visit_expressions_mut(e, |x: &mut Expr| {
                    series_rows(x, self.0);
                    ControlFlow::<()>::Continue(())
                });
            }
        });
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::{ObjectNamePart, TableAliasColumnDef};
        if let TableFactor::Table {
            name,
            args: Some(args),
            ..
        } = t
            && matches!(name.0.last(), Some(ObjectNamePart::Identifier(i))
                if i.value.eq_ignore_ascii_case("generate_series"))
        {
            series_arguments(&mut args.args, self.0);
        }
        let (alias, function) = match t {
            TableFactor::Table {
                name,
                args: Some(_),
                alias,
                ..
            } if matches!(name.0.last(), Some(ObjectNamePart::Identifier(i))
                if i.value.eq_ignore_ascii_case("generate_series")) =>
            {
                (alias, "generate_series")
            }
            TableFactor::UNNEST {
                alias,
                array_exprs,
                with_offset: false,
                with_ordinality: false,
                ..
            } if array_exprs.len() == 1 => (alias, "unnest"),
            _ => return ControlFlow::Continue(()),
        };
        // Unaliased, the table and its column are named after the
        // function, as in PostgreSQL (`SELECT unnest FROM unnest(...)`;
        // DataFusion named the column `value` or after the call).
        let alias = alias.get_or_insert_with(|| datafusion::sql::sqlparser::ast::TableAlias {
            explicit: true,
            name: datafusion::sql::sqlparser::ast::Ident::with_quote('"', function),
            columns: vec![],
            at: None,
        });
        if alias.columns.is_empty() {
            alias.columns = vec![TableAliasColumnDef::from_name(alias.name.value.clone())];
        }
        ControlFlow::Continue(())
    }
}

/// A `generate_series` call as `unnest(generate_series(...))`, once: the
/// walk goes up from the leaves, so a call already under `unnest` was
/// wrapped a second time just before its parent is seen here.
fn series_rows(e: &mut Expr, order: DateOrder) {
    if call_args(e, "generate_series").is_some() {
        if let Expr::Function(f) = e
            && let datafusion::sql::sqlparser::ast::FunctionArguments::List(list) = &mut f.args
        {
            series_arguments(&mut list.args, order);
        }
        *e = around("unnest(quipu_operand)", e.clone());
    } else if let Some([arg]) = call_args(e, "unnest").as_deref()
        && let Some([inner]) = call_args(arg, "unnest").as_deref()
        && call_args(inner, "generate_series").is_some()
    {
        *e = arg.clone();
    } else if let Some([arg]) = call_args(e, "cardinality").as_deref()
        && let Some([inner]) = call_args(arg, "unnest").as_deref()
        && call_args(inner, "generate_series").is_some()
    {
        // The length of a series (`WITH ORDINALITY`, `from_functions`)
        // counts the list, not each of its rows.
        *e = filled("cardinality(quipu_operand)", vec![inner.clone()]);
    }
}

/// The arguments of `generate_series(from, to, step)` as PostgreSQL
/// types them: a step written as text (`'1 month'`) is an `interval`
/// (DataFusion: "Third argument must be an interval"), and dates written
/// as such (`'2024-01-31'::date`, `DATE '2024-01-31'`) are the
/// `timestamptz` of their midnights in the session's zone, so the series
/// is of `timestamptz` (DataFusion's was of `timestamp`). A date column
/// is read so by `scheduler/src/zones.rs`.
fn series_arguments(args: &mut [datafusion::sql::sqlparser::ast::FunctionArg], order: DateOrder) {
    use datafusion::sql::sqlparser::ast::{DataType, FunctionArg, FunctionArgExpr, Value};
    let mut exprs: Vec<&mut Expr> = args
        .iter_mut()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x),
            _ => None,
        })
        .collect();
    exprs.iter_mut().for_each(|x| whole_number(x));
    let [from, to, step] = exprs.as_mut_slice() else {
        return;
    };
    if let Expr::Value(v) = &**step
        && let Value::SingleQuotedString(text) = &v.value
        && text.trim().parse::<f64>().is_err()
    {
        **step = around("CAST(quipu_operand AS INTERVAL)", (**step).clone());
    }
    // A bound written as bare text is of the other bound's type, as
    // PostgreSQL resolves an unknown literal (`generate_series(ts,
    // '2024-05-31', '1 month')`; DataFusion: "Second argument must be a
    // timestamp").
    let typed = |e: &Expr| match e {
        Expr::Cast { data_type, .. } => Some(data_type.clone()),
        Expr::TypedString(t) => Some(t.data_type.clone()),
        _ => None,
    };
    let text =
        |e: &Expr| matches!(e, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)));
    if text(from)
        && let Some(t) = typed(to)
    {
        **from = around(&format!("CAST(quipu_operand AS {t})"), (**from).clone());
    } else if text(to)
        && let Some(t) = typed(from)
    {
        **to = around(&format!("CAST(quipu_operand AS {t})"), (**to).clone());
    }
    // DataFusion evaluates the bounds while it plans, before
    // `scheduler/src/zones.rs` sees a literal: a timestamp's text is read
    // as PostgreSQL reads it here (`TIMESTAMP '2024-01-31 06:00'`: Arrow's
    // parser wants seconds).
    for x in [&mut **from, &mut **to] {
        timestamp_text(x, order);
    }
    let is_date = |e: &Expr| match e {
        Expr::Cast { data_type, .. } => matches!(data_type, DataType::Date),
        Expr::TypedString(t) => matches!(t.data_type, DataType::Date),
        _ => false,
    };
    if is_date(from) || is_date(to) {
        for x in [from, to] {
            **x = around(
                "CAST(CAST(quipu_operand AS TIMESTAMP) AS TIMESTAMPTZ)",
                (**x).clone(),
            );
        }
    }
}

/// A date or timestamp written as typed text (`DATE '...'`, `TIMESTAMP
/// '...'`, `'...'::timestamp`, with time zone or not) with its text as
/// PostgreSQL reads it (`super::time_text::read_as`; a `timestamptz`
/// without a zone keeps its wall clock, and text PostgreSQL refuses is
/// left for the cast's error).
fn timestamp_text(e: &mut Expr, order: DateOrder) {
    use datafusion::arrow::datatypes::{DataType as Arrow, TimeUnit};
    use datafusion::sql::sqlparser::ast::{DataType, TimezoneInfo, Value};
    let arrow = |t: &DataType| match t {
        DataType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            Some(Arrow::Timestamp(TimeUnit::Microsecond, None))
        }
        DataType::Timestamp(..) => {
            Some(Arrow::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))
        }
        DataType::Date => Some(Arrow::Date32),
        _ => None,
    };
    let (text, to) = match e {
        Expr::TypedString(t) => (&mut t.value.value, arrow(&t.data_type)),
        Expr::Cast {
            expr, data_type, ..
        } => match expr.as_mut() {
            Expr::Value(v) => (&mut v.value, arrow(data_type)),
            _ => return,
        },
        _ => return,
    };
    if let (Value::SingleQuotedString(text), Some(to)) = (text, to)
        && let Ok(Some(read)) = super::time_text::read_as(text, &to, None, order)
    {
        *text = read;
    }
}

/// PostgreSQL lets a query's result columns share a name (`SELECT
/// c.customer_id, 1 AS customer_id`, `SELECT 1 AS a, 2 AS a`, a column
/// beside a scalar subquery that selects a column of that name);
/// DataFusion refuses them ("Schema contains qualified field name
/// c.customer_id and unqualified field name customer_id which would be
/// ambiguous", "Projections require unique expression names"). In the
/// statement's own select list, where nothing refers to them but an
/// `ORDER BY`, a named item whose name a column item or an earlier named
/// item already has gets a name of its own (`customer_id:2`); the
/// PostgreSQL front door still names the column as PostgreSQL does. Names
/// an `ORDER BY` uses are left as they are: PostgreSQL finds them
/// ambiguous, and DataFusion says so too. Only for a statement a client
/// runs: a view's or a materialized view's query names its columns, and
/// PostgreSQL refuses repeated names there.
pub fn distinct_result_names(mut statement: DfStatement) -> DfStatement {
    if let DfStatement::Statement(s) = &mut statement
        && let datafusion::sql::sqlparser::ast::Statement::Query(q) = s.as_mut()
    {
        clashing_names(q);
    }
    statement
}

fn clashing_names(q: &mut Query) {
    use datafusion::sql::sqlparser::ast::Ident;
    let fold = |i: &Ident| match i.quote_style {
        Some(_) => i.value.clone(),
        None => i.value.to_lowercase(),
    };
    let column = |e: &Expr| match e {
        Expr::Identifier(i) => Some(fold(i)),
        Expr::CompoundIdentifier(parts) => parts.last().map(fold),
        _ => None,
    };
    // The name DataFusion gives an item with no qualifier: its alias, or a
    // scalar subquery's by the subquery's first column.
    let named = |item: &SelectItem| match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(fold(alias)),
        SelectItem::UnnamedExpr(Expr::Subquery(sub)) => match sub.body.as_ref() {
            SetExpr::Select(inner) => match inner.projection.first() {
                Some(SelectItem::ExprWithAlias { alias, .. }) => Some(fold(alias)),
                Some(SelectItem::UnnamedExpr(e)) => column(e),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    };
    let mut ordered_by = std::collections::HashSet::new();
    if let Some(order) = &q.order_by
        && let datafusion::sql::sqlparser::ast::OrderByKind::Expressions(exprs) = &order.kind
    {
        for o in exprs {
            if let Some(name) = column(&o.expr) {
                ordered_by.insert(name);
            }
        }
    }
    selects_of(&mut q.body, &mut |select| {
        let mut taken: std::collections::HashSet<String> = select
            .projection
            .iter()
            .filter_map(|item| match item {
                SelectItem::UnnamedExpr(e) => column(e),
                _ => None,
            })
            .collect();
        for (i, item) in select.projection.iter_mut().enumerate() {
            let Some(name) = named(item) else {
                continue;
            };
            if ordered_by.contains(&name) || taken.insert(name.clone()) {
                continue;
            }
            let expr = match item {
                SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) => {
                    expr.clone()
                }
                _ => continue,
            };
            *item = positional(expr, &name, i);
        }
    });
}

/// The statement with a name of its own for every select item that has
/// none and is not a column (`position('a' IN s) AS "position('a' IN
/// s):1"`), in every query: for when DataFusion named two different items
/// alike after all ("Projections require unique expression names":
/// `position('a' IN s)` and `strpos(s, 'a')` are both `strpos(s, 'a')`),
/// which [`RepeatedColumns`] cannot foresee. The PostgreSQL front door
/// names the columns from the statement as written.
pub fn name_every_item(mut statement: DfStatement) -> DfStatement {
    struct NameAll;
    impl VisitorMut for NameAll {
        type Break = ();
        fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            selects_of(&mut q.body, &mut |select| {
                for (i, item) in select.projection.iter_mut().enumerate() {
                    let SelectItem::UnnamedExpr(e) = item else {
                        continue;
                    };
                    if matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                        continue;
                    }
                    let name = e.to_string();
                    *item = positional(e.clone(), &name, i);
                }
            });
            ControlFlow::Continue(())
        }
    }
    fn name(statement: &mut DfStatement) {
        match statement {
            DfStatement::Statement(s) => {
                let _ = VisitMut::visit(s.as_mut(), &mut NameAll);
            }
            DfStatement::Explain(e) => name(&mut e.statement),
            _ => {}
        }
    }
    name(&mut statement);
    statement
}

/// The name of the identity function [`label_casts`] wraps casts in.
pub const CAST_LABEL_FN: &str = "quipu_cast_label";

/// The statement with each cast that is an argument of a function call
/// labelled with its type (`sum(CAST(x AS numeric))` is
/// `sum(quipu_cast_label(CAST(x AS numeric), 'NUMERIC'))`): DataFusion
/// names a cast as its operand, so `sum(x)` and `sum(CAST(x AS numeric))`
/// were two columns of one name in an aggregation ("Schema contains
/// duplicate unqualified field name"), where PostgreSQL answers both. The
/// function is the identity and is simplified away before anything runs;
/// the PostgreSQL front door names the columns from the statement.
pub fn label_casts(mut statement: DfStatement) -> DfStatement {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    fn label(s: &mut datafusion::sql::sqlparser::ast::Statement) {
        let _ = visit_expressions_mut(s, |e: &mut Expr| {
            if let Expr::Function(f) = e
                && let FunctionArguments::List(list) = &mut f.args
            {
                for arg in &mut list.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = arg
                        && let Expr::Cast { data_type, .. } = x
                    {
                        let name = data_type.to_string().replace('\'', "''");
                        let cast = std::mem::replace(x, Expr::value(Value::Null));
                        *x = around(&format!("{CAST_LABEL_FN}(quipu_operand, '{name}')"), cast);
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    match &mut statement {
        DfStatement::Statement(s) => label(s.as_mut()),
        DfStatement::Explain(e) => {
            if let DfStatement::Statement(s) = e.statement.as_mut() {
                label(s.as_mut());
            }
        }
        _ => {}
    }
    statement
}

/// `quipu_cast_label(x, label)`: `x` ([`label_casts`]).
pub fn cast_label_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
    use datafusion::logical_expr::{
        ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
    };
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct CastLabel(Signature);
    impl ScalarUDFImpl for CastLabel {
        fn name(&self) -> &str {
            CAST_LABEL_FN
        }
        fn signature(&self) -> &Signature {
            &self.0
        }
        fn return_type(&self, args: &[DataType]) -> Result<DataType> {
            Ok(args[0].clone())
        }
        fn simplify(
            &self,
            mut args: Vec<datafusion::logical_expr::Expr>,
            _: &SimplifyContext,
        ) -> Result<ExprSimplifyResult> {
            Ok(ExprSimplifyResult::Simplified(args.swap_remove(0)))
        }
        fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
            Ok(args.args[0].clone())
        }
    }
    datafusion::logical_expr::ScalarUDF::new_from_impl(CastLabel(Signature::any(
        2,
        Volatility::Immutable,
    )))
}

/// `expr AS "name:n"`, select item `i` (from 0) under a name of its own
/// (`NULL:5`, `id:2`): the PostgreSQL front door names the column from
/// the statement as written.
fn positional(expr: Expr, name: &str, i: usize) -> SelectItem {
    SelectItem::ExprWithAlias {
        expr,
        alias: datafusion::sql::sqlparser::ast::Ident::with_quote('"', format!("{name}:{}", i + 1)),
    }
}

/// The name DataFusion gives an unnamed select item, near enough to tell
/// which items it would name alike: a cast is not part of its name
/// (`1` and `1::bigint` are both `Int64(1)`), nor are parentheses, and
/// unquoted names are folded to lower case. Items that only look alike here
/// get an alias they did not need, which is harmless.
fn name_key(e: &Expr) -> String {
    let mut e = e.clone();
    let _ = visit_expressions_mut(&mut e, |x: &mut Expr| {
        while let Expr::Cast { expr, .. } | Expr::Nested(expr) = x {
            let inner = std::mem::replace(expr.as_mut(), Expr::Value(Value::Null.into()));
            *x = inner;
        }
        ControlFlow::<()>::Continue(())
    });
    e.to_string().to_lowercase()
}

/// The `SELECT`s of a query body, not those of nested queries (the
/// visitor reaches those on its own).
pub(super) fn selects_of(body: &mut SetExpr, f: &mut impl FnMut(&mut Select)) {
    match body {
        SetExpr::Select(s) => f(s),
        SetExpr::SetOperation { left, right, .. } => {
            selects_of(left, f);
            selects_of(right, f);
        }
        _ => {}
    }
}

/// Walks a filter. `positive`: reached from the top through `AND`, `OR`
/// and parentheses only, where a NULL filters a row out just as FALSE
/// does; DataFusion's semi and mark joins are right there. `conjunct`:
/// through `AND` and parentheses only, where `NOT IN` becomes a null-aware
/// anti join (right). Everywhere else an `IN` subquery is rewritten.
fn in_filter(e: &mut Expr, positive: bool, conjunct: bool) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            in_filter(left, positive, conjunct);
            in_filter(right, positive, conjunct);
        }
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Or,
            right,
        } => {
            in_filter(left, positive, false);
            in_filter(right, positive, false);
        }
        Expr::Nested(inner) => in_filter(inner, positive, conjunct),
        Expr::InSubquery {
            expr,
            subquery,
            negated: false,
        } if positive && matches!(expr.as_ref(), Expr::Tuple(items) if items.len() > 1) => {
            if let Some(test) = row_in(expr, subquery) {
                *e = test;
            }
        }
        Expr::InSubquery { negated, .. } if (!*negated && positive) || conjunct => {}
        other => in_value(other),
    }
}

/// Rewrites every `IN` subquery of an expression whose value matters,
/// leaving nested queries (their own filters are theirs).
fn in_value(e: &mut Expr) {
    struct Values(usize);
    impl VisitorMut for Values {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.0 += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.0 -= 1;
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if self.0 == 0
                && let Expr::InSubquery {
                    expr,
                    subquery,
                    negated,
                } = e
            {
                let mark = three_valued_in(expr, subquery);
                *e = if *negated { not(mark) } else { mark };
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(e, &mut Values(0));
}

/// `x IN (q)` with SQL's NULLs, from tests DataFusion answers right:
///
/// ```sql
/// (x IN (q)) IS TRUE
///   OR (((x IS NULL AND EXISTS (q)) OR EXISTS (<q's rows whose value is NULL>)) AND NULL)
/// ```
///
/// A NULL `x` or a NULL among the subquery's values makes a miss unknown;
/// an empty subquery makes it FALSE even for a NULL `x`. Each test is
/// written once: as a `CASE`, DataFusion's simplifier spelt the cases out
/// in boolean logic with the `IN` repeated, and each copy became a join
/// of its own (a `NOT` over two such tests planned 11 subqueries, and the
/// long run's query 10194 timed out).
fn three_valued_in(x: &Expr, q: &Query) -> Expr {
    let binary = |left: Expr, op: BinaryOperator, right: Expr| Expr::BinaryOp {
        left: Box::new(left),
        op,
        right: Box::new(right),
    };
    let nested = |e: Expr| Expr::Nested(Box::new(e));
    let hit = Expr::IsTrue(Box::new(nested(Expr::InSubquery {
        expr: Box::new(x.clone()),
        subquery: Box::new(distinct_values(q)),
        negated: false,
    })));
    let unknown = binary(
        nested(binary(
            Expr::IsNull(Box::new(x.clone())),
            BinaryOperator::And,
            exists(q.clone()),
        )),
        BinaryOperator::Or,
        exists(null_rows(q)),
    );
    nested(binary(
        hit,
        BinaryOperator::Or,
        nested(binary(
            nested(unknown),
            BinaryOperator::And,
            Expr::value(Value::Null),
        )),
    ))
}

/// `(a, b) IN (SELECT x, y ...)` where a NULL filters a row out as FALSE
/// does: `EXISTS (SELECT 1 FROM (q) AS __quipu_row (c0, c1) WHERE
/// __quipu_row.c0 = a AND __quipu_row.c1 = b)`. DataFusion 55 refused
/// it ("Too many columns! The subquery should only return one column").
/// Under `NOT` (or as a value) its NULLs would matter, and it stays
/// refused. The subquery is a derived table, so a correlated one is not
/// read (DataFusion's error names the column).
fn row_in(x: &Expr, q: &Query) -> Option<Expr> {
    let Expr::Tuple(items) = x else {
        return None;
    };
    let names: Vec<String> = (0..items.len()).map(|i| format!("c{i}")).collect();
    let tests: Vec<String> = names
        .iter()
        .map(|n| format!("__quipu_row.{n} = quipu_operand"))
        .collect();
    let mut rows = parse(&format!(
        "SELECT 1 FROM (SELECT 1) AS __quipu_row ({})",
        names.join(", ")
    ));
    if let SetExpr::Select(s) = rows.body.as_mut() {
        if let Some(TableFactor::Derived { subquery, .. }) =
            s.from.first_mut().map(|t| &mut t.relation)
        {
            **subquery = q.clone();
        }
        s.selection = Some(filled(
            &tests.join(" AND "),
            items
                .iter()
                .map(|item| Expr::Nested(Box::new(item.clone())))
                .collect(),
        ));
    }
    Some(exists(rows))
}

fn exists(q: Query) -> Expr {
    Expr::Exists {
        subquery: Box::new(q),
        negated: false,
    }
}

fn not(e: Expr) -> Expr {
    Expr::UnaryOp {
        op: UnaryOperator::Not,
        expr: Box::new(Expr::Nested(Box::new(e))),
    }
}

/// The rows of `q` whose one value is NULL. A plain `SELECT y FROM ...
/// WHERE p` keeps its FROM and gains `AND y IS NULL` (so a correlated
/// subquery stays one DataFusion can decorrelate); anything else is read
/// as a derived table.
fn null_rows(q: &Query) -> Query {
    if let Some(rows) = plain_null_rows(q) {
        return rows;
    }
    let mut rows = parse("SELECT 1 FROM (SELECT 1) AS __quipu_in (v) WHERE __quipu_in.v IS NULL");
    if let SetExpr::Select(s) = rows.body.as_mut()
        && let Some(TableFactor::Derived { subquery, .. }) =
            s.from.first_mut().map(|t| &mut t.relation)
    {
        **subquery = q.clone();
    }
    rows
}

/// The one select and value of a plain `SELECT y FROM ... [WHERE p]`: no
/// grouping, limit, window or call (a call may be an aggregate).
fn plain_value(q: &Query) -> Option<(&Select, &Expr)> {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    let plain_group =
        matches!(&s.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    if q.with.is_some()
        || q.limit_clause.is_some()
        || q.fetch.is_some()
        || !plain_group
        || s.having.is_some()
        || s.qualify.is_some()
        || s.top.is_some()
        || !s.named_window.is_empty()
        || s.projection.len() != 1
    {
        return None;
    }
    let value = match &s.projection[0] {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return None,
    };
    // A function may be an aggregate, which a WHERE cannot hold.
    if any_within(value, |e| matches!(e, Expr::Function(_))) {
        return None;
    }
    Some((s, value))
}

/// A plain `q` with `DISTINCT`: the mark join DataFusion plans for `x IN
/// (q)` under `OR` or `NOT` visits every matching row of `q`, so a value
/// repeated 900 times cost 900 probes per row (the long run's query 10194
/// matched 51 million pairs for 77 thousand rows and timed out).
fn distinct_values(q: &Query) -> Query {
    let mut q = q.clone();
    if plain_value(&q).is_some()
        && let SetExpr::Select(s) = q.body.as_mut()
        && s.distinct.is_none()
    {
        s.distinct = Some(datafusion::sql::sqlparser::ast::Distinct::Distinct);
    }
    q
}

fn plain_null_rows(q: &Query) -> Option<Query> {
    let (s, value) = plain_value(q)?;
    let is_null = Expr::IsNull(Box::new(value.clone()));
    let mut select = one_select();
    select.from = s.from.clone();
    select.selection = Some(match &s.selection {
        Some(p) => Expr::BinaryOp {
            left: Box::new(Expr::Nested(Box::new(p.clone()))),
            op: BinaryOperator::And,
            right: Box::new(is_null),
        },
        None => is_null,
    });
    Some(query_of(select))
}

/// `SELECT 1` (to be given a FROM and a WHERE).
pub(super) fn one_select() -> Select {
    match *parse("SELECT 1").body {
        SetExpr::Select(s) => *s,
        _ => unreachable!("SELECT 1 is a SELECT"),
    }
}

pub(super) fn query_of(select: Select) -> Query {
    let mut q = parse("SELECT 1");
    q.body = Box::new(SetExpr::Select(Box::new(select)));
    q
}

/// A query written here (always valid).
fn parse(sql: &str) -> Query {
    *Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_query())
        .expect("Quipu's own query parses")
}

/// `EXTRACT(timezone | timezone_hour | timezone_minute FROM x)` of a
/// `timestamptz`: the session zone's offset from UTC at `x` (seconds;
/// its hours, its minutes, both toward zero as PostgreSQL's: `-03:30` is
/// -3 and -30), the wall clock's epoch less the instant's, as a
/// `numeric`. DataFusion 55 refused the field ("Date part 'timezone' not
/// supported").
fn zone_offset(field: &datafusion::sql::sqlparser::ast::DateTimeField, x: &mut Box<Expr>) -> Expr {
    use datafusion::sql::sqlparser::ast::DateTimeField as F;
    let unit = match field {
        F::TimezoneHour => "timezone_hour",
        F::TimezoneMinute => "timezone_minute",
        _ => "timezone",
    };
    let x = std::mem::replace(x.as_mut(), Expr::value(Value::Null));
    zone_offset_as(unit, x, "NUMERIC")
}

/// The offset [`zone_offset`] describes, of the `unit` (`timezone`,
/// `timezone_hour`, `timezone_minute`), as `sql_type`; `date_part` gives
/// the same as a double.
fn zone_offset_as(unit: &str, x: Expr, sql_type: &str) -> Expr {
    let offset = "CAST(date_part('epoch', CAST(quipu_operand AS timestamp)) \
                  - date_part('epoch', quipu_operand) AS bigint)";
    let part = match unit {
        "timezone_hour" => format!("{offset} / 3600"),
        "timezone_minute" => format!("({offset} / 60) % 60"),
        _ => offset.to_string(),
    };
    let x = Expr::Nested(Box::new(x));
    filled(&format!("CAST({part} AS {sql_type})"), vec![x.clone(), x])
}

/// `EXTRACT(field FROM x)` is PostgreSQL's `numeric`, `date_part` its
/// `double precision`; DataFusion plans both as one `date_part` (an
/// integer for most fields). The extract is marked here as
/// `CAST(date_part('field', x) AS NUMERIC)`, which the engine's
/// `extract` rewrite turns into PostgreSQL's value and scale for the field;
/// a `date_part` left unmarked becomes a double there.
fn extract_as_numeric(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::DateTimeField as F;
    let Expr::Extract { field, expr, .. } = e else {
        return;
    };
    let name = match field {
        F::Year | F::Years => "year",
        F::Month | F::Months => "month",
        F::Day | F::Days => "day",
        F::Hour | F::Hours => "hour",
        F::Minute | F::Minutes => "minute",
        F::Second | F::Seconds => "second",
        F::Dow => "dow",
        F::Doy => "doy",
        F::Isodow => "isodow",
        F::Isoyear => "isoyear",
        F::Week(None) => "week",
        F::Quarter => "quarter",
        F::Epoch => "epoch",
        F::Millisecond | F::Milliseconds => "millisecond",
        F::Microsecond | F::Microseconds => "microsecond",
        F::Decade => "decade",
        F::Century => "century",
        F::Millennium => "millennium",
        F::Timezone | F::TimezoneHour | F::TimezoneMinute => {
            *e = zone_offset(&field.clone(), expr);
            return;
        }
        _ => return,
    };
    let mut marked = parse_expr(&format!(
        "CAST(date_part('{name}', quipu_extract_argument) AS NUMERIC)"
    ));
    let argument = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
    let mut argument = Some(argument);
    let _ = visit_expressions_mut(&mut marked, |x: &mut Expr| {
        if matches!(x, Expr::Identifier(i) if i.value == "quipu_extract_argument")
            && let Some(a) = argument.take()
        {
            *x = Expr::Nested(Box::new(a));
        }
        ControlFlow::<()>::Continue(())
    });
    *e = marked;
}

/// An expression written here (always valid).
fn parse_expr(sql: &str) -> Expr {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .expect("Quipu's own expression parses")
}

/// `(x).field` becomes `(x)['field']`. Only after parentheses: `t.c[1]`
/// is a qualified column (DataFusion resolves that dot itself).
fn field_by_name(e: &mut Expr) {
    if let Expr::CompoundFieldAccess { root, access_chain } = e
        && matches!(root.as_ref(), Expr::Nested(_))
    {
        for access in access_chain.iter_mut() {
            if let AccessExpr::Dot(Expr::Identifier(field)) = access {
                let name = Expr::value(Value::SingleQuotedString(field.value.clone()));
                *access = AccessExpr::Subscript(Subscript::Index { index: name });
            }
        }
    }
}

/// `a IS [NOT] DISTINCT FROM (x AND/OR ...)` as parsed without parentheses
/// becomes `(a IS [NOT] DISTINCT FROM x) AND/OR ...`.
fn reassociate(e: &mut Expr) {
    let (a, b, negated) = match e {
        Expr::IsDistinctFrom(a, b) => (a, b, false),
        Expr::IsNotDistinctFrom(a, b) => (a, b, true),
        _ => return,
    };
    if !is_chain(b) {
        return;
    }
    let a = std::mem::replace(
        a.as_mut(),
        Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
    );
    let b = std::mem::replace(
        b.as_mut(),
        Expr::value(datafusion::sql::sqlparser::ast::Value::Null),
    );
    *e = graft(a, b, negated);
}

fn is_chain(e: &Expr) -> bool {
    matches!(
        e,
        Expr::BinaryOp {
            op: BinaryOperator::And | BinaryOperator::Or,
            ..
        }
    )
}

fn graft(a: Expr, b: Expr, negated: bool) -> Expr {
    match b {
        Expr::BinaryOp {
            left,
            op: op @ (BinaryOperator::And | BinaryOperator::Or),
            right,
        } => Expr::BinaryOp {
            left: Box::new(graft(a, *left, negated)),
            op,
            right,
        },
        leaf if negated => Expr::IsNotDistinctFrom(Box::new(a), Box::new(leaf)),
        leaf => Expr::IsDistinctFrom(Box::new(a), Box::new(leaf)),
    }
}

/// `x AT TIME ZONE zone` as `quipu_at_time_zone(x, zone)`, which reads
/// it both ways as PostgreSQL does (`dialect/at_time_zone.rs`).
fn at_time_zone(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    let Expr::AtTimeZone {
        timestamp,
        time_zone,
    } = e
    else {
        return;
    };
    let mut call = parse_expr(&format!(
        "{}(NULL, NULL)",
        super::at_time_zone::AT_TIME_ZONE
    ));
    if let Expr::Function(f) = &mut call
        && let FunctionArguments::List(list) = &mut f.args
    {
        let take = |x: &mut Box<Expr>| {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(std::mem::replace(
                x.as_mut(),
                Expr::value(Value::Null),
            )))
        };
        list.args = vec![take(timestamp), take(time_zone)];
        *e = call;
    }
}

/// `-INTERVAL '1 mon 1 day'` negates every field (`-1 mons -1 days`).
/// DataFusion 55 puts the minus before the literal's text, which negates
/// only the first field (`-1 mons 1 day`); in parentheses it is a
/// negation of the value.
fn negated_interval(e: &mut Expr) {
    if let Expr::UnaryOp {
        op: UnaryOperator::Minus,
        expr,
    } = e
        && matches!(expr.as_ref(), Expr::Interval(_))
    {
        let inner = std::mem::replace(expr.as_mut(), Expr::Value(Value::Null.into()));
        **expr = Expr::Nested(Box::new(inner));
    }
}

/// An interval literal (`INTERVAL '1 day 02:03:04.5'`, `CAST('1-2' AS
/// interval)`, `'P1Y2M'::interval`) read as PostgreSQL reads it
/// (`interval_input.rs`) and written as the months, days and
/// microseconds it is, which Arrow's parser (DataFusion 55) reads
/// exactly: it refused much of what PostgreSQL reads and read some of
/// the rest otherwise. An interval whose time is beyond 64-bit
/// nanoseconds (about 292 years) is refused by name.
fn interval_literal(e: &mut Expr) -> Result<()> {
    let text = match e {
        Expr::Interval(i) if i.leading_field.is_none() && i.last_field.is_none() => {
            match i.value.as_mut() {
                Expr::Value(v) => &mut v.value,
                _ => return Ok(()),
            }
        }
        Expr::Cast {
            data_type: datafusion::sql::sqlparser::ast::DataType::Interval { fields: None, .. },
            expr,
            ..
        } => match expr.as_mut() {
            Expr::Value(v) => &mut v.value,
            _ => return Ok(()),
        },
        _ => return Ok(()),
    };
    if let Value::SingleQuotedString(s) = text {
        *s = super::interval_input::arrow_text(s)?;
    }
    Ok(())
}

/// PostgreSQL's comparison operators do not associate: `1 < 2 = true` and
/// `a = b = c` are syntax errors there (parentheses say what is meant).
/// The parser here read them left to right, and answered.
fn chained_comparison(e: &Expr) -> Result<()> {
    use datafusion::sql::sqlparser::ast::BinaryOperator as B;
    let comparison = |op: &B| matches!(op, B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq);
    if let Expr::BinaryOp { left, op, right } = e
        && comparison(op)
        && [left, right]
            .iter()
            .any(|x| matches!(x.as_ref(), Expr::BinaryOp { op, .. } if comparison(op)))
    {
        return Err(crate::error::DataException::error(
            "42601",
            &format!(
                "syntax error at or near \"{op}\": comparison operators do not associate; \
                 add parentheses"
            ),
        ));
    }
    Ok(())
}

/// A date or timestamp literal in year 0 (`'0000-01-01'::date`,
/// `DATE '0000-12-31'`): PostgreSQL has no year 0 (1 BC comes before
/// 1 AD) and refuses it; Arrow's parser read it as the proleptic year 0.
fn year_zero(e: &Expr) -> Result<()> {
    use datafusion::sql::sqlparser::ast::DataType as T;
    let dated = |t: &T| matches!(t, T::Date | T::Timestamp(..) | T::Datetime(_));
    let text = match e {
        Expr::Cast {
            data_type, expr, ..
        } if dated(data_type) => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) => s.as_str(),
                _ => return Ok(()),
            },
            _ => return Ok(()),
        },
        Expr::TypedString(t) if dated(&t.data_type) => match &t.value.value {
            Value::SingleQuotedString(s) => s.as_str(),
            _ => return Ok(()),
        },
        _ => return Ok(()),
    };
    let year = text.trim_start().split('-').next().unwrap_or("");
    if year.len() >= 4 && year.bytes().all(|b| b == b'0') {
        return Err(crate::error::DataException::error(
            "22008",
            &format!("date/time field value out of range: \"{text}\""),
        ));
    }
    Ok(())
}

/// A number written with an exponent (`1e15`, `2.5E-3`) as its digits
/// (`1000000000000000.`, `0.0025`). PostgreSQL reads both as the same
/// `numeric`; DataFusion 55 reads `1e15` as a decimal of scale -15, and
/// Arrow's cast of a negative scale to a double divides by an inexact
/// `1e-15`, so `f * 1e15` over a `float8` column gave 499999999999999.94
/// for 0.5 (found by the expression test). Numbers of more than 38 digits
/// written out stay as they are.
fn plain_number(e: &mut Expr) {
    if let Expr::Value(v) = e
        && let Value::Number(text, long) = &v.value
        && let Some(plain) = expand_exponent(text)
    {
        v.value = Value::Number(plain, *long);
    }
}

/// A number literal cast to a floating-point type is read as text:
/// `1e308::float8` is a double in PostgreSQL (a `numeric` literal cast),
/// where DataFusion reads the literal as a decimal first, which holds no
/// more than 38 digits ("Decimal scale -308 exceeds the minimum supported
/// scale"). Text is read as PostgreSQL reads a numeric into a double:
/// correctly rounded, and out of its range an error (`float_errors.rs`).
fn float_literal(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::DataType as T;
    if let Expr::Cast {
        data_type:
            T::Float(_)
            | T::Float4
            | T::Float64
            | T::Real
            | T::Float8
            | T::Double(_)
            | T::DoublePrecision,
        expr,
        ..
    } = e
        && let Expr::Value(v) = expr.as_mut()
        && let Value::Number(text, _) = &v.value
    {
        v.value = Value::SingleQuotedString(text.clone());
    }
}

/// A cast to `timestamp(p)` or `timestamptz(p)`: the cast without its
/// precision, rounded to `p` fractional digits as PostgreSQL rounds
/// (`pg_builtins.rs`). DataFusion 55 truncated `timestamp(0)` (a cast to
/// seconds: `'10:00:00.5'` was 10:00:00, PostgreSQL's 10:00:01) and
/// refused 1 to 5 ("Unsupported SQL type"). PostgreSQL reads a
/// precision above 6 as 6.
fn timestamp_precision(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::DataType as T;
    let Expr::Cast {
        data_type: T::Timestamp(precision, _),
        ..
    } = e
    else {
        return;
    };
    let Some(places) = precision.take() else {
        return;
    };
    if places < 6 {
        let cast = std::mem::replace(e, Expr::value(Value::Null));
        *e = around(
            &format!(
                "{}(quipu_operand, {places})",
                super::pg_builtins::TIMESTAMP_ROUND
            ),
            cast,
        );
    }
}

/// A whole number [`plain_number`] wrote with its point (`1e3` as
/// `1000.`) back without it, where DataFusion 55 takes integers only and
/// PostgreSQL's `numeric` means the same rows: the bounds of
/// `generate_series` (`generate_series(1, 1e3)`: "Argument #2 must be an
/// INTEGER"; [`series_arguments`]) and `LIMIT`, `OFFSET` and `FETCH`
/// ([`whole_counts`]).
fn whole_number(e: &mut Expr) {
    if let Expr::Value(v) = e
        && let Value::Number(text, long) = &v.value
        && let Some(whole) = text.strip_suffix('.')
        && !whole.is_empty()
    {
        v.value = Value::Number(whole.to_string(), *long);
    }
}

/// [`whole_number`] of a query's `LIMIT`, `OFFSET` and `FETCH` counts
/// (`LIMIT 1e1`: "Expected LIMIT to be an integer").
fn whole_counts(q: &mut Query) {
    use datafusion::sql::sqlparser::ast::LimitClause;
    match &mut q.limit_clause {
        Some(LimitClause::LimitOffset { limit, offset, .. }) => {
            limit.iter_mut().for_each(whole_number);
            offset.iter_mut().for_each(|o| whole_number(&mut o.value));
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
            whole_number(offset);
            whole_number(limit);
        }
        None => {}
    }
    if let Some(fetch) = &mut q.fetch {
        fetch.quantity.iter_mut().for_each(whole_number);
    }
}

/// The digits `int.frac` with the point moved `exponent` places right:
/// the whole part without leading zeros (`0` for none) and the fraction.
pub(super) fn shift_point(int: &str, frac: &str, exponent: i64) -> (String, String) {
    let digits = format!("{int}{frac}");
    let point = int.len() as i64 + exponent;
    let (int, frac) = if point <= 0 {
        (
            String::new(),
            format!("{}{digits}", "0".repeat(point.unsigned_abs() as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        (
            digits[..point as usize].to_string(),
            digits[point as usize..].to_string(),
        )
    };
    let int = match int.trim_start_matches('0') {
        "" => "0".to_string(),
        rest => rest.to_string(),
    };
    (int, frac)
}

pub(super) fn expand_exponent(text: &str) -> Option<String> {
    let (mantissa, exponent) = text.split_once(['e', 'E'])?;
    let exponent: i32 = exponent.parse().ok()?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if exponent.abs() > 38 || !format!("{int}{frac}").bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (int, frac) = shift_point(int, frac, exponent as i64);
    let int = int.as_str();
    if int.trim_start_matches('0').len() + frac.len() > 38 {
        return None;
    }
    // A whole number keeps its point: `1e3` is a `numeric` in PostgreSQL
    // (`1e3 / 7` is 142.857...), and `1000` would be an integer (`142`).
    Some(format!("{int}.{frac}"))
}

/// `mod(a, b)`, which DataFusion 55 does not have ("Invalid function
/// 'mod'"), as `(a % b)`: PostgreSQL's `mod` is its `%` (the remainder
/// takes the dividend's sign in both), for integers and numerics alike.
fn mod_as_operator(e: &mut Expr) {
    let Some(Ok([a, b])) = call_args(e, "mod").map(<[Expr; 2]>::try_from) else {
        return;
    };
    *e = Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(Expr::Nested(Box::new(a))),
        op: BinaryOperator::Modulo,
        right: Box::new(Expr::Nested(Box::new(b))),
    }));
}

/// `a ^@ b` is `starts_with(a, b)`, as in PostgreSQL; DataFusion 55
/// parses the operator but cannot plan it ("Unsupported binary operator:
/// PGStartsWith").
fn starts_with_operator(e: &mut Expr) {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::PGStartsWith,
        right,
    } = e
    else {
        return;
    };
    *e = filled(
        "starts_with(quipu_operand, quipu_operand)",
        vec![Expr::Nested(left.clone()), Expr::Nested(right.clone())],
    );
}

/// `(a, b) OVERLAPS (c, d)`, which DataFusion 55 refused ("Only
/// identifiers and literals are supported in tuples"), as PostgreSQL's
/// `timestamp_overlaps` decides it: each pair ordered (its earlier value
/// the start), a pair's second value an interval (written as one) its
/// length, half-open periods, and its NULLs: a NULL start or end is
/// unknown only where the answer depends on it.
fn overlaps(e: &mut Expr) {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Overlaps,
        right,
    } = &*e
    else {
        return;
    };
    let pair = |t: &Expr| -> Option<(Expr, Expr)> {
        let Expr::Tuple(items) = t else {
            return None;
        };
        let [a, b] = items.as_slice() else {
            return None;
        };
        let length = matches!(b, Expr::Interval(_))
            || matches!(b, Expr::Cast { data_type, .. }
                if matches!(data_type, datafusion::sql::sqlparser::ast::DataType::Interval { .. }));
        let b = match length {
            true => filled(
                "(quipu_operand + quipu_operand)",
                vec![a.clone(), b.clone()],
            ),
            false => b.clone(),
        };
        // The earlier one starts the period; a NULL one is the end.
        Some((
            filled(
                "least(quipu_operand, quipu_operand)",
                vec![a.clone(), b.clone()],
            ),
            filled(
                "CASE WHEN quipu_operand IS NULL OR quipu_operand IS NULL THEN NULL \
                 ELSE greatest(quipu_operand, quipu_operand) END",
                vec![a.clone(), b.clone(), a.clone(), b],
            ),
        ))
    };
    let (Some((s1, e1)), Some((s2, e2))) = (pair(left), pair(right)) else {
        return;
    };
    let mut call = parse_expr(
        "CASE WHEN s1 IS NULL OR s2 IS NULL THEN NULL \
         WHEN s1 > s2 THEN CASE WHEN e2 IS NULL THEN NULL WHEN s1 < e2 THEN true \
           WHEN e1 IS NULL THEN NULL ELSE false END \
         WHEN s1 < s2 THEN CASE WHEN e1 IS NULL THEN NULL WHEN s2 < e1 THEN true \
           WHEN e2 IS NULL THEN NULL ELSE false END \
         ELSE CASE WHEN e1 IS NULL OR e2 IS NULL THEN NULL ELSE true END END",
    );
    let _ = visit_expressions_mut(&mut call, |x: &mut Expr| {
        if let Expr::Identifier(i) = x {
            let by = match i.value.as_str() {
                "s1" => &s1,
                "e1" => &e1,
                "s2" => &s2,
                "e2" => &e2,
                _ => return ControlFlow::<()>::Continue(()),
            };
            *x = Expr::Nested(Box::new(by.clone()));
        }
        ControlFlow::<()>::Continue(())
    });
    *e = Expr::Nested(Box::new(call));
}

/// A type's name called as a function, PostgreSQL's other spelling of a
/// cast: `date(ts)` is `CAST(ts AS date)`, as are `text(x)`, `int2`,
/// `int4`, `int8`, `float4`, `float8`, `bool` and `timestamptz`.
/// DataFusion has no such functions ("Invalid function 'date'").
fn type_name_call(e: &mut Expr) {
    const TYPES: [(&str, &str); 9] = [
        ("date", "date"),
        ("text", "text"),
        ("int2", "smallint"),
        ("int4", "int"),
        ("int8", "bigint"),
        ("float4", "real"),
        ("float8", "double precision"),
        ("bool", "boolean"),
        ("timestamptz", "timestamptz"),
    ];
    let Expr::Function(f) = &*e else {
        return;
    };
    let Some(name) = function_name(&f.name) else {
        return;
    };
    let Some((name, ty)) = TYPES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) else {
        return;
    };
    let Some([x]) = call_args(e, name).and_then(|a| <[Expr; 1]>::try_from(a).ok()) else {
        return;
    };
    *e = around(
        &format!("CAST(quipu_operand AS {ty})"),
        Expr::Nested(Box::new(x)),
    );
}

/// `date_trunc(unit, x)` with the unit written as PostgreSQL reads it
/// (`'microseconds'`, `'hrs'`, `'qtr'`, `'centuries'`:
/// `interval_input::trunc_unit`) in DataFusion's word for it, which
/// refused the others ("Unsupported date_trunc granularity"); and
/// `'decade'`, `'century'` and `'millennium'`, which DataFusion 55
/// refused too, as the year's truncation less the years since the
/// decade's (century's, millennium's) first: PostgreSQL's centuries and
/// millennia start with a year ending in 1 (`date_trunc('century', DATE
/// '2000-05-01')` is 1901-01-01).
fn date_trunc_long(e: &mut Expr) {
    let Some([unit, x]) = call_args(e, "date_trunc").and_then(|a| <[Expr; 2]>::try_from(a).ok())
    else {
        return;
    };
    let Expr::Value(v) = &unit else {
        return;
    };
    let Value::SingleQuotedString(written) = &v.value else {
        return;
    };
    let Some(unit) = super::interval_input::trunc_unit(written) else {
        return;
    };
    // (`quipu_trunc_years`: counted from year 1 for a timestamp, from
    // zero for an interval, `interval_trunc.rs`.)
    let years = match unit {
        "decade" => "quipu_trunc_years(quipu_operand, extract(year FROM quipu_operand), 10)",
        "century" => "quipu_trunc_years(quipu_operand, extract(year FROM quipu_operand), 100)",
        "millennium" => "quipu_trunc_years(quipu_operand, extract(year FROM quipu_operand), 1000)",
        unit if unit != written => {
            if let Expr::Function(f) = e
                && let datafusion::sql::sqlparser::ast::FunctionArguments::List(list) = &mut f.args
                && let Some(datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                    datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(Expr::Value(v)),
                )) = list.args.first_mut()
            {
                v.value = Value::SingleQuotedString(unit.to_string());
            }
            return;
        }
        _ => return,
    };
    let x = Expr::Nested(Box::new(x));
    *e = filled(
        &format!("(date_trunc('year', quipu_operand) - ({years}) * INTERVAL '1 year')"),
        vec![x.clone(), x.clone(), x],
    );
}

/// `sum(x::bigint)`: PostgreSQL's `sum` of a `bigint` is a `numeric`.
/// `float_literals.rs` gives a bigint's sum that type, but cannot tell a
/// cast written here from the one DataFusion's coercion puts on an
/// `integer` it sums (whose sum is a `bigint` in both), which a plan
/// planned again (on the cluster) shows; so the cast written here gets
/// its sum's type at once: `CAST(CAST(x AS bigint) AS numeric)` (a sum of
/// them has no places, as PostgreSQL's). `sum(i::bigint) / 3` divided
/// integers (17 for PostgreSQL's 17.6666666666666667).
fn explicit_bigint_sum(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{
        DataType, FunctionArg, FunctionArgExpr, FunctionArguments,
    };
    let Expr::Function(f) = e else {
        return;
    };
    if !function_name(&f.name).is_some_and(|n| n.eq_ignore_ascii_case("sum")) {
        return;
    }
    let FunctionArguments::List(list) = &mut f.args else {
        return;
    };
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] = list.args.as_mut_slice() else {
        return;
    };
    if matches!(
        arg,
        Expr::Cast {
            data_type: DataType::BigInt(_) | DataType::Int8(_),
            ..
        }
    ) {
        *arg = around("CAST(quipu_operand AS NUMERIC)", arg.clone());
    }
}

/// The name of a function of PostgreSQL's own: unqualified or in
/// `pg_catalog` (another schema's function of that name is not it).
fn function_name(name: &datafusion::sql::sqlparser::ast::ObjectName) -> Option<&str> {
    use datafusion::sql::sqlparser::ast::ObjectNamePart;
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(i)] => Some(&i.value),
        [ObjectNamePart::Identifier(s), ObjectNamePart::Identifier(i)]
            if s.value.eq_ignore_ascii_case("pg_catalog") =>
        {
            Some(&i.value)
        }
        _ => None,
    }
}

/// The arguments of a plain call of the function `name` (unqualified, or
/// `pg_catalog.name`): no FILTER, OVER, DISTINCT or named arguments.
fn call_args(e: &Expr, name: &str) -> Option<Vec<Expr>> {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    let Expr::Function(f) = e else {
        return None;
    };
    let named = function_name(&f.name).is_some_and(|n| n.eq_ignore_ascii_case(name));
    if !named || f.filter.is_some() || f.over.is_some() || !f.within_group.is_empty() {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x.clone()),
            _ => None,
        })
        .collect()
}

/// `@ a + b` as PostgreSQL reads it, `@ (a + b)`: its prefix operators
/// (`@`, `|/`, `||/`) bind less tightly than arithmetic, sqlparser's more
/// (`(@ a) + b`). Seen from the leaves up, an arithmetic operation whose
/// left operand is such an operator, not in parentheses, takes the
/// operator outside.
fn prefix_operand(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, UnaryOperator};
    let Expr::BinaryOp { left, op, .. } = e else {
        return;
    };
    let arithmetic = matches!(
        op,
        BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide
            | BinaryOperator::Modulo
            | BinaryOperator::PGExp
    );
    let prefix = matches!(
        left.as_ref(),
        Expr::UnaryOp {
            op: UnaryOperator::PGAbs | UnaryOperator::PGSquareRoot | UnaryOperator::PGCubeRoot,
            ..
        }
    );
    if !(arithmetic && prefix) {
        return;
    }
    let Expr::BinaryOp { left, op, right } = std::mem::replace(e, Expr::value(Value::Null)) else {
        unreachable!("matched above")
    };
    let Expr::UnaryOp { op: prefix, expr } = *left else {
        unreachable!("matched above")
    };
    *e = Expr::UnaryOp {
        op: prefix,
        expr: Box::new(Expr::BinaryOp {
            left: expr,
            op,
            right,
        }),
    };
}

/// `-a ^ b` as PostgreSQL reads it, `(-a) ^ b`: its unary minus binds
/// tighter than `^`, sqlparser's looser (`-2 ^ 2` was -4, PostgreSQL's 4).
/// The minus goes to the leftmost operand of a chain of `^` (which is
/// left-associative: `-2 ^ 3 ^ 2` is `((-2) ^ 3) ^ 2`).
fn minus_before_power(e: &mut Expr) {
    fn power(e: &Expr) -> bool {
        matches!(
            e,
            Expr::BinaryOp {
                op: BinaryOperator::PGExp,
                ..
            }
        )
    }
    fn negate_leftmost(e: Expr) -> Expr {
        match e {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::PGExp,
                right,
            } => Expr::BinaryOp {
                left: Box::new(negate_leftmost(*left)),
                op: BinaryOperator::PGExp,
                right,
            },
            other => Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr: Box::new(other),
            },
        }
    }
    let negated_power =
        matches!(e, Expr::UnaryOp { op: UnaryOperator::Minus, expr } if power(expr));
    if !negated_power {
        return;
    }
    let Expr::UnaryOp { expr, .. } = std::mem::replace(e, Expr::value(Value::Null)) else {
        return;
    };
    *e = negate_leftmost(*expr);
}

/// `ARRAY(SELECT x FROM ... [ORDER BY o])` (psql's `\du`) as
/// `(SELECT array_agg(x [ORDER BY o]) FROM ...)`, a scalar subquery
/// DataFusion plans and decorrelates. A query with GROUP BY, DISTINCT,
/// LIMIT or more than one column is left alone (and refused as before).
/// No row gives NULL where PostgreSQL gives an empty array.
/// The `ORDER BY` of an `ARRAY(SELECT ...)`'s aggregate, whose argument
/// `item` is the select list's column: `ORDER BY 1` names it. With
/// `only_position`, a key other than `1` gives None.
fn positional_order(
    order_by: Option<&datafusion::sql::sqlparser::ast::OrderBy>,
    item: &Expr,
    only_position: bool,
) -> Option<String> {
    use datafusion::sql::sqlparser::ast::OrderByKind;
    let position =
        |e: &Expr| matches!(e, Expr::Value(v) if v.value == Value::Number("1".into(), false));
    match order_by.map(|o| &o.kind) {
        None => Some(String::new()),
        Some(OrderByKind::Expressions(list)) => {
            if only_position && !list.iter().all(|o| position(&o.expr)) {
                return None;
            }
            let list: Vec<String> = list
                .iter()
                .map(|o| {
                    let mut o = o.clone();
                    if position(&o.expr) {
                        o.expr = item.clone();
                    }
                    o.to_string()
                })
                .collect();
            Some(format!(" ORDER BY {}", list.join(", ")))
        }
        Some(OrderByKind::All(_)) => None,
    }
}

fn array_of_subquery(e: &Expr) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{FunctionArguments, ObjectNamePart};
    let Expr::Function(f) = e else {
        return None;
    };
    let named = matches!(f.name.0.as_slice(),
        [ObjectNamePart::Identifier(i)] if i.value.eq_ignore_ascii_case("array"));
    let FunctionArguments::Subquery(q) = &f.args else {
        return None;
    };
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    if !named {
        return None;
    }
    if let Some(mapped) = array_of_unnest(q, select) {
        return Some(mapped);
    }
    let plain = named
        && q.with.is_none()
        && q.limit_clause.is_none()
        && q.fetch.is_none()
        && select.distinct.is_none()
        && select.having.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(g, _) if g.is_empty())
        && select.projection.len() == 1;
    if !plain {
        return None;
    }
    let item = match &select.projection[0] {
        // A set-returning item (`ARRAY(SELECT generate_series(1, 3))`)
        // gives its rows to the aggregate from a derived table: inside
        // `array_agg` it has no rows ("Unnest should be rewritten to
        // LogicalPlan::Unnest before type coercion").
        SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. }
            if returns_sets(x) =>
        {
            let mut inner = q.clone();
            if let SetExpr::Select(s) = inner.body.as_mut() {
                s.projection = vec![SelectItem::ExprWithAlias {
                    expr: x.clone(),
                    alias: datafusion::sql::sqlparser::ast::Ident::new("quipu_element"),
                }];
            }
            // Only by the column itself: the select list's other columns
            // are not in the aggregate.
            let order = positional_order(
                inner.order_by.take().as_ref(),
                &parse_expr("quipu_element"),
                true,
            )?;
            return Some(Expr::Subquery(Box::new(parse(&format!(
                "SELECT array_agg(quipu_element{order}) FROM ({inner}) AS quipu_elements"
            )))));
        }
        SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. } => x,
        _ => return None,
    };
    let order = positional_order(q.order_by.as_ref(), item, false)?;
    let mut q = q.clone();
    q.order_by = None;
    let SetExpr::Select(select) = q.body.as_mut() else {
        unreachable!("checked above")
    };
    select.projection = vec![SelectItem::UnnamedExpr(parse_expr(&format!(
        "array_agg({item}{order})"
    )))];
    Some(Expr::Subquery(q))
}

/// `ARRAY(SELECT f(x) FROM unnest(a) [AS] x [WHERE p(x)])` (psql's `\d+`
/// over `reloptions`), which DataFusion cannot plan (`unnest` of an outer
/// column in `FROM`), as `array_transform(array_filter(a, x -> p(x)),
/// x -> f(x))`: the same elements in the same order. A NULL `a` gives NULL
/// where PostgreSQL gives an empty array.
fn array_of_unnest(q: &Query, select: &Select) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{
        FunctionArg, FunctionArgExpr, LambdaFunction, LambdaFunctionParameter, LambdaSyntax,
        ObjectNamePart, OneOrManyWithParens,
    };
    let plain = q.with.is_none()
        && q.limit_clause.is_none()
        && q.fetch.is_none()
        && q.order_by.is_none()
        && select.distinct.is_none()
        && select.having.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(g, _) if g.is_empty())
        && select.projection.len() == 1
        && select.from.len() == 1
        && select.from[0].joins.is_empty();
    if !plain {
        return None;
    }
    let (array, alias) = match &select.from[0].relation {
        TableFactor::UNNEST {
            alias: Some(alias),
            array_exprs,
            with_offset: false,
            with_ordinality: false,
            ..
        } if array_exprs.len() == 1 => (array_exprs[0].clone(), alias),
        TableFactor::Table {
            name,
            alias: Some(alias),
            args: Some(args),
            with_ordinality: false,
            ..
        } if matches!(name.0.last().and_then(ObjectNamePart::as_ident),
                Some(i) if i.value.eq_ignore_ascii_case("unnest"))
            && (name.0.len() == 1
                || matches!(name.0.first().and_then(ObjectNamePart::as_ident),
                    Some(s) if s.value.eq_ignore_ascii_case("pg_catalog") && name.0.len() == 2)) =>
        {
            match args.args.as_slice() {
                [FunctionArg::Unnamed(FunctionArgExpr::Expr(a))] if args.settings.is_none() => {
                    (a.clone(), alias)
                }
                _ => return None,
            }
        }
        _ => return None,
    };
    if !alias.columns.is_empty() {
        return None;
    }
    let item = match &select.projection[0] {
        SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. } => x.clone(),
        _ => return None,
    };
    let lambda = |body: Expr| {
        Expr::Lambda(LambdaFunction {
            params: OneOrManyWithParens::One(LambdaFunctionParameter {
                name: alias.name.clone(),
                data_type: None,
            }),
            body: Box::new(body),
            syntax: LambdaSyntax::Arrow,
        })
    };
    let call = |name: &str, args: Vec<Expr>| {
        let mut f = match parse_expr(&format!("{name}(1, 2)")) {
            Expr::Function(f) => f,
            _ => unreachable!("a call parses as a function"),
        };
        if let datafusion::sql::sqlparser::ast::FunctionArguments::List(list) = &mut f.args {
            list.args = args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect();
        }
        Expr::Function(f)
    };
    let mut array = array;
    if let Some(filter) = &select.selection {
        array = call("array_filter", vec![array, lambda(filter.clone())]);
    }
    Some(call("array_transform", vec![array, lambda(item)]))
}

/// The name that marks `BETWEEN SYMMETRIC` ([`between_symmetric`]).
pub const BETWEEN_SYMMETRIC_MARKER: &str = "quipu_between_symmetric";

/// `x BETWEEN quipu_between_symmetric * a AND b` (PostgreSQL's `x BETWEEN
/// SYMMETRIC a AND b`, marked so by `quipu_scheduler::sugar`): `(x
/// BETWEEN a AND b OR x BETWEEN b AND a)`, as PostgreSQL expands it (`x`
/// is written twice, as there); `NOT BETWEEN SYMMETRIC` is the negation.
fn between_symmetric(e: &mut Expr) {
    let Expr::Between {
        expr,
        negated,
        low,
        high,
    } = e
    else {
        return;
    };
    // The marker multiplies `low`'s first operand, wherever the parser put
    // that product (`quipu_between_symmetric * a + 1` is `(marker * a) + 1`).
    let mut marked = false;
    let _ = visit_expressions_mut(low.as_mut(), |x: &mut Expr| {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Multiply,
            right,
        } = x
            && matches!(left.as_ref(), Expr::Identifier(i)
                if i.quote_style.is_none() && i.value == BETWEEN_SYMMETRIC_MARKER)
        {
            *x = right.as_ref().clone();
            marked = true;
        }
        ControlFlow::<()>::Continue(())
    });
    if !marked {
        return;
    }
    let one = Expr::Between {
        expr: expr.clone(),
        negated: *negated,
        low: low.clone(),
        high: high.clone(),
    };
    let other = Expr::Between {
        expr: expr.clone(),
        negated: *negated,
        low: high.clone(),
        high: low.clone(),
    };
    let op = if *negated {
        BinaryOperator::And
    } else {
        BinaryOperator::Or
    };
    *e = Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(one),
        op,
        right: Box::new(other),
    }));
}

/// `LOCALTIMESTAMP` and `LOCALTIME` (keywords in PostgreSQL, names to
/// sqlparser: "No field named localtimestamp"): the session's wall clock
/// now, as a `timestamp` and a `time` (`scheduler/src/zones.rs` reads
/// `now()` in the session's zone for the cast).
fn local_time(e: &mut Expr) {
    // sqlparser reads them as calls without parentheses.
    let name = match e {
        Expr::Identifier(i) if i.quote_style.is_none() => i.value.to_ascii_lowercase(),
        Expr::Function(f)
            if matches!(
                f.args,
                datafusion::sql::sqlparser::ast::FunctionArguments::None
            ) =>
        {
            match function_name(&f.name) {
                Some(n) => n.to_ascii_lowercase(),
                None => return,
            }
        }
        _ => return,
    };
    let to = match name.as_str() {
        "localtimestamp" => "timestamp",
        "localtime" => "time",
        _ => return,
    };
    *e = parse_expr(&format!("CAST(now() AS {to})"));
}

/// PostgreSQL functions DataFusion lacks, spelt with what it has:
/// - `generate_subscripts(a, dim)`, a set-returning function SQLAlchemy
///   zips with `unnest(a)` to number index columns: `unnest` of
///   `generate_series(1, array_length(a, dim))` (DataFusion zips the
///   `unnest`s of one select as PostgreSQL does);
/// - `pg_get_viewdef(oid [, pretty])`: the view's SQL, from `pg_views`
///   or `pg_matviews` (the PostgreSQL front door's `pg_catalog`).
fn pg_functions(e: &mut Expr) {
    // `date_part('timezone', x)` (and `timezone_hour`, `timezone_minute`):
    // the offset as `extract` gives it, a double.
    if let Some([unit, x]) = call_args(e, "date_part").and_then(|a| <[Expr; 2]>::try_from(a).ok())
        && let Expr::Value(v) = &unit
        && let Value::SingleQuotedString(unit) = &v.value
        && ["timezone", "timezone_hour", "timezone_minute"]
            .contains(&unit.to_ascii_lowercase().as_str())
    {
        *e = zone_offset_as(&unit.to_ascii_lowercase(), x, "double precision");
        return;
    }
    // `|/ x`, `||/ x` and `@ x`: PostgreSQL's square root, cube root and
    // absolute value operators (DataFusion 55: "Unsupported SQL unary
    // operator").
    if let Expr::UnaryOp { op, expr } = e {
        use datafusion::sql::sqlparser::ast::UnaryOperator;
        let template = match op {
            UnaryOperator::PGSquareRoot => Some("sqrt(quipu_operand)"),
            UnaryOperator::PGCubeRoot => Some("cbrt(quipu_operand)"),
            UnaryOperator::PGAbs => Some("abs(quipu_operand)"),
            _ => None,
        };
        if let Some(t) = template {
            *e = around(t, expr.as_ref().clone());
            return;
        }
    }
    // `array_replace` changes every match in PostgreSQL; DataFusion's
    // changes the first only (`{9,1,1}` for PostgreSQL's `{9,9,9}`). Its
    // `_all` form is PostgreSQL's. (`array_remove` is Quipu's own:
    // `dialect/arrays.rs`.)
    if let Expr::Function(f) = e
        && let [datafusion::sql::sqlparser::ast::ObjectNamePart::Identifier(i)] =
            f.name.0.as_mut_slice()
        && i.value.eq_ignore_ascii_case("array_replace")
    {
        i.value = format!("{}_all", i.value.to_ascii_lowercase());
        i.quote_style = None;
        return;
    }
    // `string_agg(DISTINCT x, ...)` and `array_agg(DISTINCT x)` without
    // an `ORDER BY`: PostgreSQL finds the distinct values by sorting, so
    // they come in `x`'s order; DataFusion's come in its hash table's.
    if let Expr::Function(f) = e
        && function_name(&f.name).is_some_and(|n| {
            n.eq_ignore_ascii_case("string_agg") || n.eq_ignore_ascii_case("array_agg")
        })
        && f.over.is_none()
        && f.within_group.is_empty()
        && let datafusion::sql::sqlparser::ast::FunctionArguments::List(list) = &mut f.args
        && list.duplicate_treatment
            == Some(datafusion::sql::sqlparser::ast::DuplicateTreatment::Distinct)
        && list.clauses.is_empty()
        && let Some(datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
            datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(x),
        )) = list.args.first()
    {
        use datafusion::sql::sqlparser::ast::{FunctionArgumentClause, OrderByExpr};
        list.clauses
            .push(FunctionArgumentClause::OrderBy(vec![OrderByExpr {
                expr: x.clone(),
                options: Default::default(),
                with_fill: None,
            }]));
        return;
    }
    // `array_length` of an empty array (or of a dimension it lacks) is
    // NULL in PostgreSQL, whose arrays have no empty dimension;
    // DataFusion's is 0.
    if call_args(e, "array_length").is_some_and(|a| !a.is_empty()) {
        *e = around("nullif(quipu_operand, 0)", e.clone());
        return;
    }
    // `ROW(a, b) IS NULL` is true when every field is NULL, `IS NOT
    // NULL` when none is (so a row can be neither); DataFusion asked
    // whether the row itself is NULL, which a row constructor never is.
    if let Expr::IsNull(x) | Expr::IsNotNull(x) = e
        && let Some(fields) = row_fields(x)
        && !fields.is_empty()
    {
        let test = if matches!(e, Expr::IsNull(_)) {
            "IS NULL"
        } else {
            "IS NOT NULL"
        };
        let terms: Vec<String> = fields.iter().map(|f| format!("({f}) {test}")).collect();
        *e = parse_expr(&format!("({})", terms.join(" AND ")));
        return;
    }
    // `percentile_cont(ARRAY[f1, f2]) WITHIN GROUP (...)` (and
    // `percentile_disc`): the array of each fraction's percentile, as
    // PostgreSQL's array form; DataFusion has no such form ("function
    // percentile_cont(numeric[], numeric) does not exist").
    if let Expr::Function(f) = e
        && !f.within_group.is_empty()
        && function_name(&f.name).is_some_and(|n| {
            n.eq_ignore_ascii_case("percentile_cont") || n.eq_ignore_ascii_case("percentile_disc")
        })
        && let datafusion::sql::sqlparser::ast::FunctionArguments::List(list) = &f.args
        && let [
            datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(Expr::Array(fractions)),
            ),
        ] = list.args.as_slice()
    {
        let one = |fraction: &Expr| {
            let mut call = f.clone();
            if let datafusion::sql::sqlparser::ast::FunctionArguments::List(list) = &mut call.args {
                list.args = vec![datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                    datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(fraction.clone()),
                )];
            }
            let mut call = Expr::Function(call);
            pg_functions(&mut call);
            call
        };
        *e = Expr::Array(datafusion::sql::sqlparser::ast::Array {
            elem: fractions.elem.iter().map(one).collect(),
            named: true,
        });
        return;
    }
    // `percentile_cont(f) WITHIN GROUP (...)` is Quipu's
    // (`dialect/ordered_sets.rs`) under a name of its own: under
    // DataFusion's name the cluster's scheduler found DataFusion's in its
    // registry (a weight rounded to millionths: 9.099999 for 9.1).
    if let Expr::Function(f) = e
        && !f.within_group.is_empty()
        && let [datafusion::sql::sqlparser::ast::ObjectNamePart::Identifier(i)] =
            f.name.0.as_mut_slice()
        && i.value.eq_ignore_ascii_case("percentile_cont")
    {
        i.value = super::ordered_sets::PERCENTILE_CONT.into();
        i.quote_style = None;
        return;
    }
    // `num_nulls(a, b, ...)` and `num_nonnulls(...)`: the count of
    // arguments that are (not) NULL, an `integer`.
    for (name, test) in [("num_nulls", "IS NULL"), ("num_nonnulls", "IS NOT NULL")] {
        if let Some(args) = call_args(e, name)
            && !args.is_empty()
        {
            let terms: Vec<String> = args
                .iter()
                .map(|a| format!("CASE WHEN ({a}) {test} THEN 1 ELSE 0 END"))
                .collect();
            *e = parse_expr(&format!("CAST(({}) AS integer)", terms.join(" + ")));
            return;
        }
    }
    // `regexp_split_to_table(s, p)`: the rows of `regexp_split_to_array`;
    // `string_to_table`, of `string_to_array`; `regexp_matches`, of
    // `quipu_regexp_matches` (`pg_builtins.rs`); `json[b]_array_elements`
    // and their `_text` forms, of `quipu_json_elements[_text]`
    // (`json_access.rs`).
    for &(name, array) in super::from_functions::SPLITS
        .iter()
        .chain([&("regexp_matches", super::pg_builtins::REGEXP_MATCHES)])
    {
        if let Some(args) = call_args(e, name) {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            *e = parse_expr(&format!("unnest({array}({}))", args.join(", ")));
            return;
        }
    }
    // PostgreSQL's name of the sample variance (DataFusion 55 knows it as
    // `var_samp` and `var`); `gen_random_uuid()` is DataFusion's `uuid()`
    // (a version 4 UUID, as text).
    if let Some(args) = call_args(e, "gen_random_uuid")
        && args.is_empty()
    {
        *e = parse_expr("uuid()");
        return;
    }
    if let Expr::Function(f) = e
        && let Some(name) = function_name(&f.name)
        && name.eq_ignore_ascii_case("variance")
    {
        f.name = datafusion::sql::sqlparser::ast::ObjectName::from(vec![
            datafusion::sql::sqlparser::ast::Ident::new("var_samp"),
        ]);
        return;
    }
    // `substring(s FROM 'pattern')` and `substring(s, 'pattern')` (not
    // `substr`): PostgreSQL's POSIX regular expression
    // substring, the first parenthesized group's match or else the whole
    // match, which is what `regexp_match` gives as its first element
    // (DataFusion read the pattern as a start position and failed: "substr
    // requires Int64").
    if let Expr::Substring {
        expr,
        substring_from: Some(from),
        substring_for: None,
        shorthand: false,
        ..
    } = e
        && matches!(from.as_ref(), Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_) | Value::EscapedStringLiteral(_)))
    {
        let mut call = parse_expr("(regexp_match(quipu_operand, quipu_pattern))[1]");
        let (mut operand, mut pattern) = (Some(expr.as_ref().clone()), Some(from.as_ref().clone()));
        let _ = visit_expressions_mut(&mut call, |x: &mut Expr| {
            if let Expr::Identifier(i) = x {
                let value = match i.value.as_str() {
                    "quipu_operand" => operand.take(),
                    "quipu_pattern" => pattern.take(),
                    _ => None,
                };
                if let Some(v) = value {
                    *x = v;
                }
            }
            ControlFlow::<()>::Continue(())
        });
        *e = call;
        return;
    }
    if let Some(aggregated) = array_of_subquery(e) {
        *e = aggregated;
        return;
    }
    if let Some(expanded) = expand_array(e) {
        *e = expanded;
        return;
    }
    if let Some([a, dim]) = call_args(e, "generate_subscripts").as_deref() {
        *e = parse_expr(&format!(
            "unnest(generate_series(1, array_length({a}, {dim})))"
        ));
        return;
    }
    let view = call_args(e, "pg_get_viewdef");
    if let Some([oid] | [oid, _]) = view.as_deref() {
        *e = parse_expr(&format!(
            "(SELECT max(quipu_v.definition) FROM (SELECT schemaname, viewname, definition \
             FROM pg_catalog.pg_views UNION ALL SELECT schemaname, matviewname, definition \
             FROM pg_catalog.pg_matviews) AS quipu_v \
             JOIN pg_catalog.pg_class AS quipu_c ON quipu_c.relname = quipu_v.viewname \
             JOIN pg_catalog.pg_namespace AS quipu_n ON quipu_n.oid = quipu_c.relnamespace \
             AND quipu_n.nspname = quipu_v.schemaname WHERE quipu_c.oid = ({oid}))"
        ));
    }
}

/// A cast to a text type DataFusion 55 reads otherwise than PostgreSQL,
/// as a call that gives PostgreSQL's text: `uuid`, `json` or `jsonb`,
/// which DataFusion does not have (`super::text_types`), and text of a
/// fixed length ([`fixed_length`]).
fn text_types(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::CastKind;
    let Expr::Cast {
        kind,
        expr,
        data_type,
        ..
    } = e
    else {
        return;
    };
    if matches!(kind, CastKind::TryCast | CastKind::SafeCast) {
        return;
    }
    let template = match super::text_types::function_of(&data_type.to_string().to_lowercase()) {
        Some(function) => format!("{function}(CAST(quipu_operand AS TEXT))"),
        None => match fixed_length(data_type) {
            Some(template) => template,
            None => return,
        },
    };
    let operand = std::mem::replace(expr.as_mut(), Expr::Value(Value::Null.into()));
    *e = around(&template, operand);
}

/// `jsonb_build_object`, `jsonb_build_array`, `to_jsonb`, `jsonb_agg` and
/// `jsonb_object_agg` as their `json` forms read as `jsonb`
/// (`quipu_jsonb`: PostgreSQL's `jsonb` text, keys ordered, the last of
/// repeated keys). DataFusion has none of them ("Invalid function
/// 'jsonb_build_object'").
fn jsonb_builders(e: &mut Expr) {
    let Expr::Function(f) = e else {
        return;
    };
    let json = match function_name(&f.name).map(str::to_lowercase).as_deref() {
        Some("jsonb_build_object") => "json_build_object",
        Some("jsonb_build_array") => "json_build_array",
        Some("to_jsonb") => "to_json",
        Some("jsonb_agg") => "json_agg",
        Some("jsonb_object_agg") => "json_object_agg",
        _ => return,
    };
    f.name = datafusion::sql::sqlparser::ast::ObjectName::from(vec![
        datafusion::sql::sqlparser::ast::Ident::new(json),
    ]);
    json_agg(e);
    json_object_agg(e);
    let call = std::mem::replace(e, Expr::Value(Value::Null.into()));
    *e = around(
        &format!(
            "{}(CAST(quipu_operand AS TEXT))",
            super::text_types::JSONB_FN
        ),
        call,
    );
}

/// `template`, an expression written here, with `operand` where it names
/// `quipu_operand`: the template is parsed around the placeholder, then
/// given the operand itself, whose text need not parse back. (Each
/// template has it as a whole argument, so no precedence is lost.)
/// The fields of a row constructor, `ROW(a, b)` or `(a, b)`.
fn row_fields(e: &Expr) -> Option<Vec<Expr>> {
    match e {
        Expr::Tuple(items) => Some(items.clone()),
        Expr::Nested(inner) => row_fields(inner),
        _ => call_args(e, "row"),
    }
}

/// `make_interval(years, months, weeks, days, hours, mins, secs)`, each
/// argument optional and given by position or by name
/// (`make_interval(days => 3)`), as the sum of its parts:
/// `CAST(days AS integer) * INTERVAL '1 day' + ...` (the seconds a double),
/// so its months, days and time stay apart as PostgreSQL's do. DataFusion
/// 55 has no such function, and its named arguments cannot leave out the
/// ones before (`Missing required parameter 'years'`). Arguments it does
/// not know (a name that is none of these, `*`) leave the call as it is,
/// and the planner refuses it.
fn make_interval(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    const PARTS: [(&str, &str); 7] = [
        (
            "years",
            "CAST(quipu_operand AS integer) * INTERVAL '1 year'",
        ),
        (
            "months",
            "CAST(quipu_operand AS integer) * INTERVAL '1 month'",
        ),
        (
            "weeks",
            "CAST(quipu_operand AS integer) * INTERVAL '7 days'",
        ),
        ("days", "CAST(quipu_operand AS integer) * INTERVAL '1 day'"),
        (
            "hours",
            "CAST(quipu_operand AS integer) * INTERVAL '1 hour'",
        ),
        (
            "mins",
            "CAST(quipu_operand AS integer) * INTERVAL '1 minute'",
        ),
        (
            "secs",
            "CAST(quipu_operand AS double precision) * INTERVAL '1 second'",
        ),
    ];
    let Expr::Function(f) = e else {
        return;
    };
    if !function_name(&f.name).is_some_and(|n| n.eq_ignore_ascii_case("make_interval"))
        || f.over.is_some()
        || f.filter.is_some()
    {
        return;
    }
    let args = match &f.args {
        FunctionArguments::List(list)
            if list.duplicate_treatment.is_none() && list.clauses.is_empty() =>
        {
            list.args.clone()
        }
        FunctionArguments::None => vec![],
        _ => return,
    };
    let mut terms: Vec<Option<Expr>> = vec![None; PARTS.len()];
    for (k, a) in args.into_iter().enumerate() {
        let (slot, x) = match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => (Some(k), x),
            FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(x),
                ..
            }
            | FunctionArg::ExprNamed {
                name: Expr::Identifier(name),
                arg: FunctionArgExpr::Expr(x),
                ..
            } => (
                PARTS
                    .iter()
                    .position(|(p, _)| p.eq_ignore_ascii_case(&name.value)),
                x,
            ),
            _ => return,
        };
        match slot.and_then(|i| terms.get_mut(i)) {
            Some(t @ None) => *t = Some(around(PARTS[slot.unwrap_or(0)].1, x)),
            _ => return,
        }
    }
    let sum = terms
        .into_iter()
        .flatten()
        .reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: datafusion::sql::sqlparser::ast::BinaryOperator::Plus,
            right: Box::new(b),
        })
        .unwrap_or_else(|| parse_expr("INTERVAL '0 seconds'"));
    *e = Expr::Nested(Box::new(sum));
}

/// `make_timestamptz(year, month, day, hour, min, sec [, zone])`: the
/// wall clock `make_timestamp` makes, read in the session's zone (its cast
/// to `timestamptz`) or in `zone` (`AT TIME ZONE zone`), as PostgreSQL
/// reads it. DataFusion 55 has no such function.
fn make_timestamptz(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{FunctionArgumentList, FunctionArguments, Ident};
    let Expr::Function(f) = e else {
        return;
    };
    if !function_name(&f.name).is_some_and(|n| n.eq_ignore_ascii_case("make_timestamptz"))
        || f.over.is_some()
    {
        return;
    }
    let FunctionArguments::List(FunctionArgumentList { args, .. }) = &f.args else {
        return;
    };
    if !matches!(args.len(), 6 | 7) {
        return;
    }
    let mut wall = f.clone();
    wall.name =
        datafusion::sql::sqlparser::ast::ObjectName::from(vec![Ident::new("make_timestamp")]);
    let zone = match &mut wall.args {
        FunctionArguments::List(list) if list.args.len() == 7 => list.args.pop(),
        _ => None,
    };
    let wall = Expr::Function(wall);
    *e = match zone {
        Some(datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
            datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(zone),
        )) => Expr::AtTimeZone {
            timestamp: Box::new(wall),
            time_zone: Box::new(zone),
        },
        Some(_) => return,
        None => around("CAST(quipu_operand AS timestamptz)", wall),
    };
}

/// `lag(x, k, d) OVER w` (and `lead`) whose default `d` reads a column:
/// DataFusion 55 takes only a constant there ("There is only support
/// Literal types for field at idx: 2 in Window Function"); PostgreSQL any
/// expression (`lag(price, 1, price)`, a first difference of zero). It is
/// `CASE WHEN lag(1, k) OVER w IS NULL THEN d ELSE lag(x, k) OVER w END`:
/// the constant's shift is NULL exactly where no row is `k` away.
fn shift_default(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    let Expr::Function(f) = &*e else {
        return;
    };
    let Some(name) = function_name(&f.name).map(|n| n.to_ascii_lowercase()) else {
        return;
    };
    if !matches!(name.as_str(), "lag" | "lead") || f.over.is_none() || f.filter.is_some() {
        return;
    }
    let FunctionArguments::List(list) = &f.args else {
        return;
    };
    let [_, _, FunctionArg::Unnamed(FunctionArgExpr::Expr(d))] = list.args.as_slice() else {
        return;
    };
    let reads = any_within(d, |x| {
        matches!(
            x,
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Subquery(_)
        )
    });
    if !reads {
        return;
    }
    let d = d.clone();
    let mut shifted = f.clone();
    let mut probe = f.clone();
    for (call, first) in [(&mut shifted, None), (&mut probe, Some(parse_expr("1")))] {
        if let FunctionArguments::List(list) = &mut call.args {
            list.args.truncate(2);
            if let Some(one) = first {
                list.args[0] = FunctionArg::Unnamed(FunctionArgExpr::Expr(one));
            }
        }
    }
    *e = filled(
        "CASE WHEN quipu_operand IS NULL THEN quipu_operand ELSE quipu_operand END",
        vec![
            Expr::Function(probe),
            Expr::Nested(Box::new(d)),
            Expr::Function(shifted),
        ],
    );
}

/// `json_agg(x ...)`: PostgreSQL's `json` array of the values, `[1, -7,
/// null]`, as `quipu_json_list(array_agg(x ...))` with the call's own
/// `DISTINCT`, `ORDER BY`, `FILTER` and window (NULL over no rows, as
/// PostgreSQL's). DataFusion 55 has no such aggregate. (Joined as text
/// with `', '`, an array after the first lost the line PostgreSQL starts
/// it on.) `json_agg(DISTINCT x)` without an `ORDER BY` is
/// `quipu_json_list(array_sort(array_agg(DISTINCT x), 'ASC', 'NULLS
/// LAST'))`: PostgreSQL sorts the values to find the distinct ones, so
/// they come in order (they came in hash order), and the sort is the
/// values', not their JSON text's (`10` after `9`).
fn json_agg(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{
        DuplicateTreatment, FunctionArg, FunctionArgExpr, FunctionArguments, Ident,
    };
    let Expr::Function(f) = e else {
        return;
    };
    if !function_name(&f.name).is_some_and(|n| n.eq_ignore_ascii_case("json_agg")) {
        return;
    }
    let mut agg = f.clone();
    let FunctionArguments::List(list) = &mut agg.args else {
        return;
    };
    let sorted_distinct =
        list.duplicate_treatment == Some(DuplicateTreatment::Distinct) && list.clauses.is_empty();
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(x))] = list.args.as_slice() else {
        return;
    };
    // A JSON value is written as it is (`json_arguments.rs`, which
    // refuses one with `DISTINCT`).
    if list.duplicate_treatment != Some(DuplicateTreatment::Distinct) {
        let x = around(
            &format!("{}(quipu_operand)", super::json_arguments::JSON_ELEMENT),
            Expr::Nested(Box::new(x.clone())),
        );
        list.args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(x))];
    }
    agg.name = datafusion::sql::sqlparser::ast::ObjectName::from(vec![Ident::new("array_agg")]);
    let list = match sorted_distinct {
        true => "array_sort(quipu_operand, 'ASC', 'NULLS LAST')",
        false => "quipu_operand",
    };
    *e = around(
        &format!("{}({list})", super::pg_text::JSON_LIST),
        Expr::Function(agg),
    );
}

/// `json_object_agg(k, v ...)`, which DataFusion 55 does not have:
/// `quipu_json_object(array_agg(<k's JSON as a string> || ' : ' ||
/// COALESCE(to_json(v), 'null') ...))` with the call's own `ORDER BY`,
/// `FILTER` and window: PostgreSQL's `{ "k" : v, ... }`, keys as JSON
/// strings, members in the order of the rows, repeated keys kept, NULL
/// over no rows, and `22023` for a NULL key (`pg_text::json_object`).
fn json_object_agg(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments, Ident};
    let Expr::Function(f) = e else {
        return;
    };
    if !function_name(&f.name).is_some_and(|n| n.eq_ignore_ascii_case("json_object_agg")) {
        return;
    }
    let mut agg = f.clone();
    let FunctionArguments::List(list) = &mut agg.args else {
        return;
    };
    if list.duplicate_treatment.is_some() {
        return;
    }
    let [
        FunctionArg::Unnamed(FunctionArgExpr::Expr(k)),
        FunctionArg::Unnamed(FunctionArgExpr::Expr(v)),
    ] = list.args.as_slice()
    else {
        return;
    };
    // The key is its JSON as a string (PostgreSQL's key of a timestamp is
    // its ISO 8601 form, `"2024-01-02T13:00:00+00:00"`; its text was
    // `2024-01-02 13:00:00+00`), a bare number or boolean quoted.
    let key = Expr::Nested(Box::new(k.clone()));
    let member = filled(
        "CASE WHEN starts_with(to_json(quipu_operand), '\"') THEN to_json(quipu_operand) \
         ELSE '\"' || to_json(quipu_operand) || '\"' END || ' : ' || \
         COALESCE(to_json(quipu_operand), 'null')",
        vec![
            key.clone(),
            key.clone(),
            key,
            Expr::Nested(Box::new(v.clone())),
        ],
    );
    list.args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(member))];
    agg.name = datafusion::sql::sqlparser::ast::ObjectName::from(vec![Ident::new("array_agg")]);
    *e = around(
        &format!("{}(quipu_operand)", super::pg_text::JSON_OBJECT),
        Expr::Function(agg),
    );
}

fn around(template: &str, operand: Expr) -> Expr {
    filled(template, vec![operand])
}

/// The expression `template` (written here) with its `quipu_operand`s
/// replaced by `operands`, in order.
pub(super) fn filled(template: &str, operands: Vec<Expr>) -> Expr {
    let mut call = parse_expr(template);
    let mut operands = operands.into_iter();
    let _ = visit_expressions_mut(&mut call, |x: &mut Expr| {
        if matches!(x, Expr::Identifier(i) if i.value == "quipu_operand")
            && let Some(operand) = operands.next()
        {
            *x = operand;
        }
        ControlFlow::<()>::Continue(())
    });
    call
}

/// The template of an explicit cast to text of a fixed length, if it is
/// one. A cast to `varchar(n)` cuts the text to `n` characters, and
/// one to `char(n)` (`char` alone is `char(1)`) also drops the trailing
/// spaces, as PostgreSQL's casts do: DataFusion 55 ignores the length
/// (`CAST('abcdef' AS varchar(3))` was `abcdef`, PostgreSQL's `abc`).
/// A `char(n)` value is text without its padding here: PostgreSQL's
/// `bpchar` ignores trailing spaces in comparisons, `length`, `LIKE` and
/// `||`, as text without them does; only its display differs (`ab` where
/// PostgreSQL prints `ab  `). A PostgreSQL source's `char(n)` columns
/// read the same: its scans and pushed filters read every text column as
/// `c::text` (`postgres::table`, `postgres::sql::operand`).
fn fixed_length(data_type: &datafusion::sql::sqlparser::ast::DataType) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{CharacterLength, DataType as SqlType};
    let length = |l: &Option<CharacterLength>| match l {
        Some(CharacterLength::IntegerLength { length, .. }) => Some(*length),
        _ => None,
    };
    match data_type {
        SqlType::Varchar(l) | SqlType::CharacterVarying(l) | SqlType::CharVarying(l) => {
            Some(format!("left(CAST(quipu_operand AS TEXT), {})", length(l)?))
        }
        SqlType::Char(l) | SqlType::Character(l) => {
            let n = if l.is_none() { 1 } else { length(l)? };
            Some(format!(
                "rtrim(left(CAST(quipu_operand AS TEXT), {n}), ' ')"
            ))
        }
        _ => None,
    }
}

/// A text literal cast to `bytea` (`'\\x0102'::bytea`, `CAST('a\\000b' AS
/// BYTEA)`) is read as PostgreSQL reads bytea input: DataFusion's cast keeps
/// the text's bytes. It becomes a hex literal (`X'0102'`, DataFusion's
/// binary literal) of the bytes PostgreSQL decodes, or PostgreSQL's error.
fn bytea_literal(e: &mut Expr) -> Result<()> {
    use datafusion::sql::sqlparser::ast::DataType;
    let Expr::Cast {
        expr, data_type, ..
    } = e
    else {
        return Ok(());
    };
    let is_bytea = match data_type {
        DataType::Bytea => true,
        DataType::Custom(name, mods) => {
            mods.is_empty()
                && name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("bytea"))
        }
        _ => false,
    };
    let Expr::Value(v) = expr.as_ref() else {
        return Ok(());
    };
    let (Value::SingleQuotedString(text) | Value::EscapedStringLiteral(text)) = &v.value else {
        return Ok(());
    };
    if !is_bytea {
        return Ok(());
    }
    let bytes = bytea_input(text).map_err(DataFusionError::Execution)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    *e = Expr::Value(Value::HexStringLiteral(hex).into());
    Ok(())
}

/// The bytes of PostgreSQL's bytea input text (its `byteain`): the hex
/// format `\x0102` (pairs of hex digits, blanks between pairs allowed) or
/// the escape format (`\\` a backslash, `\ooo` an octal byte, any other
/// character its UTF-8 bytes). Errors are PostgreSQL's words. Hand-written:
/// the `hex` crate takes no blanks and words its errors otherwise, and the
/// escape format is PostgreSQL's own.
pub fn bytea_input(text: &str) -> std::result::Result<Vec<u8>, String> {
    match text
        .strip_prefix("\\x")
        .or_else(|| text.strip_prefix("\\X"))
    {
        Some(hex) => hex_bytes(hex),
        None => escaped_bytes(text),
    }
}

/// Pairs of hex digits, blanks between pairs allowed: bytea input after
/// its `\x`, and `decode(text, 'hex')` (PostgreSQL's `hex_decode`).
pub fn hex_bytes(hex: &str) -> std::result::Result<Vec<u8>, String> {
    let digit = |c: char| {
        c.to_digit(16)
            .map(|d| d as u8)
            .ok_or_else(|| format!("invalid hexadecimal digit: \"{c}\""))
    };
    let mut out = Vec::with_capacity(hex.len() / 2);
    let mut chars = hex.chars();
    while let Some(c) = chars.next() {
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        let high = digit(c)?;
        let low = match chars.next() {
            Some(l) => digit(l)?,
            None => return Err("invalid hexadecimal data: odd number of digits".into()),
        };
        out.push(high << 4 | low);
    }
    Ok(out)
}

/// The escape format: `\\` a backslash, `\ooo` an octal byte, any other
/// character its UTF-8 bytes. Bytea input without `\x`, and
/// `decode(text, 'escape')` (PostgreSQL's `esc_decode`).
pub fn escaped_bytes(text: &str) -> std::result::Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if let Some(&[a, b, c]) = bytes.get(i + 1..i + 4)
            && (b'0'..=b'3').contains(&a)
            && (b'0'..=b'7').contains(&b)
            && (b'0'..=b'7').contains(&c)
        {
            out.push((a - b'0') << 6 | (b - b'0') << 3 | (c - b'0'));
            i += 4;
        } else {
            return Err("invalid input syntax for type bytea".into());
        }
    }
    Ok(out)
}

/// `information_schema._pg_expandarray(a)`, the set-returning function the
/// JDBC driver's `getPrimaryKeys`, `getIndexInfo` and
/// `getBestRowIdentifier` call on `pg_index.indkey`: one row per element,
/// a struct `(x, n)` of the element and its position, as
/// `unnest(quipu_pg_expandarray(a))`. A field of it,
/// `(information_schema._pg_expandarray(a)).n`, is then that struct's
/// field (`field_by_name`); DataFusion zips the `unnest`s of one select as
/// PostgreSQL zips set-returning functions.
fn expand_array(e: &Expr) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{
        FunctionArg, FunctionArgExpr, FunctionArguments, ObjectNamePart,
    };
    let call = |e: &Expr| -> Option<Expr> {
        let Expr::Function(f) = e else {
            return None;
        };
        // datafusion-pg-catalog's parser drops the schema.
        let named = match f.name.0.as_slice() {
            [ObjectNamePart::Identifier(s), ObjectNamePart::Identifier(i)] => {
                s.value.eq_ignore_ascii_case("information_schema")
                    && i.value.eq_ignore_ascii_case("_pg_expandarray")
            }
            [ObjectNamePart::Identifier(i)] => i.value.eq_ignore_ascii_case("_pg_expandarray"),
            _ => false,
        };
        let FunctionArguments::List(list) = &f.args else {
            return None;
        };
        match (named, list.args.as_slice()) {
            (true, [FunctionArg::Unnamed(FunctionArgExpr::Expr(a))]) => Some(a.clone()),
            _ => None,
        }
    };
    let a = call(e)?;
    Some(parse_expr(&format!("unnest({EXPAND_ARRAY_FN}({a}))")))
}

/// `x NOT IN (a, NULL)` is never true in SQL; DataFusion 55's IN-list
/// simplifier drops it next to `x IN (b, c)` as if the NULL were not there
/// (0 rows expected, 30 got, found by the long differential run). The NULL
/// is taken out of the list and kept outside it, with the same three-valued
/// meaning: `(x NOT IN (a)) AND NULL`. (`x IN (a, NULL)` is left as it is:
/// the simplifier reads it right, and MongoDB pushdown takes it.)
fn null_in_list(e: &mut Expr) {
    let Expr::InList {
        expr,
        list,
        negated: negated @ true,
    } = e
    else {
        return;
    };
    let is_null = |x: &Expr| matches!(x, Expr::Value(v) if v.value == Value::Null);
    if !list.iter().any(is_null) {
        return;
    }
    let null = parse_expr("CAST(NULL AS BOOLEAN)");
    let rest: Vec<Expr> = list.iter().filter(|x| !is_null(x)).cloned().collect();
    let negated = *negated;
    *e = if rest.is_empty() {
        null
    } else {
        let test = Expr::InList {
            expr: expr.clone(),
            list: rest,
            negated,
        };
        Expr::Nested(Box::new(Expr::BinaryOp {
            left: Box::new(Expr::Nested(Box::new(test))),
            op: if negated {
                BinaryOperator::And
            } else {
                BinaryOperator::Or
            },
            right: Box::new(null),
        }))
    };
}

/// Regular expressions run in Rust's `regex` (regex operators are never
/// pushed to a source), which reads some of PostgreSQL's (Spencer's
/// "advanced" regular expressions) otherwise. A literal pattern of `~`,
/// `~*`, `!~`, `!~*` and the `regexp_*` functions is rewritten to Rust's
/// spelling of PostgreSQL's meaning ([`pg_regex`]), and a `regexp_replace`
/// replacement to Rust's ([`pg_replacement`]). A pattern that is not a
/// literal keeps Rust's reading (docs/sql.md).
fn regex_literals(e: &mut Expr) -> Result<()> {
    use datafusion::sql::sqlparser::ast::{
        FunctionArg, FunctionArgExpr, FunctionArguments, ObjectNamePart,
    };
    let mut replacement = None;
    let operator = matches!(e, Expr::BinaryOp { .. });
    let pattern = match e {
        Expr::BinaryOp {
            op:
                BinaryOperator::PGRegexMatch
                | BinaryOperator::PGRegexIMatch
                | BinaryOperator::PGRegexNotMatch
                | BinaryOperator::PGRegexNotIMatch,
            right,
            ..
        } => Some(right.as_mut()),
        Expr::Function(f) => {
            let name = match f.name.0.as_slice() {
                [ObjectNamePart::Identifier(i)] => i.value.to_ascii_lowercase(),
                _ => return Ok(()),
            };
            if !name.starts_with("regexp_") {
                return Ok(());
            }
            match &mut f.args {
                FunctionArguments::List(list) => {
                    let mut args = list.args.iter_mut().skip(1);
                    let pattern = match args.next() {
                        Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(p))) => Some(p),
                        _ => None,
                    };
                    if name == "regexp_replace"
                        && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(r))) = args.next()
                    {
                        replacement = Some(r);
                    }
                    pattern
                }
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(Expr::Value(v)) = pattern
        && let Value::SingleQuotedString(text) | Value::EscapedStringLiteral(text) = &mut v.value
    {
        let backslash = text.contains("\\\\");
        *text = pg_regex(text).map_err(DataFusionError::NotImplemented)?;
        // DataFusion 55 turns a match of a literal text into a `LIKE`,
        // where a backslash is the escape character: `s ~ '\\'` (a
        // backslash) was `s LIKE '%\%'` (a percent sign). An empty group
        // (which matches the empty text) keeps it a regular expression.
        if operator && backslash {
            text.push_str("()");
        }
    }
    if let Some(Expr::Value(v)) = replacement
        && let Value::SingleQuotedString(text) | Value::EscapedStringLiteral(text) = &mut v.value
    {
        *text = pg_replacement(text).map_err(DataFusionError::NotImplemented)?;
    }
    Ok(())
}

/// A PostgreSQL regular expression spelt for Rust's `regex` with the same
/// meaning, or why it cannot be:
///
/// - `.` matches a newline in PostgreSQL (without the `n` flag): `(?s)`;
/// - `\b` is a backspace and `\B` a backslash there (Rust: word
///   boundaries); `\Z` is the end of the text (Rust: `\z`);
/// - `\d` is an ASCII digit there (Rust: any Unicode digit, `'١' ~ '\d'`);
/// - POSIX classes in brackets are Unicode's there under a UTF-8 locale
///   (Rust: ASCII), so `[[:upper:]]` is `\p{Uppercase}`;
/// - PostgreSQL gives a whole expression the preference (greedy or not)
///   of its first quantifier, which Rust does not: `(a.*?)(.*)` of `abcd`
///   is `{a,""}` there. An expression mixing greedy and non-greedy
///   quantifiers is refused.
pub fn pg_regex(p: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(p.len() + 8);
    out.push_str("(?s)");
    let mut chars = p.chars().peekable();
    let (mut greedy, mut lazy) = (false, false);
    let mut in_bracket = false;
    // After an atom a quantifier can follow.
    while let Some(c) = chars.next() {
        if in_bracket {
            match c {
                '[' if chars.peek() == Some(&':') => {
                    let rest: String = chars.clone().collect();
                    let classes = [
                        (":upper:]", "\\p{Uppercase}"),
                        (":lower:]", "\\p{Lowercase}"),
                        (":alpha:]", "\\p{Alphabetic}"),
                        (":alnum:]", "\\p{Alphabetic}\\p{Nd}"),
                        (":space:]", "\\s"),
                    ];
                    match classes.iter().find(|(posix, _)| rest.starts_with(posix)) {
                        Some((posix, unicode)) => {
                            out.push_str(unicode);
                            for _ in 0..posix.chars().count() {
                                chars.next();
                            }
                        }
                        None => out.push('['),
                    }
                }
                '\\' => match chars.next() {
                    Some('d') => out.push_str("0-9"),
                    Some('b') => out.push_str("\\x08"),
                    Some(n) => {
                        out.push('\\');
                        out.push(n);
                    }
                    None => out.push_str("\\\\"),
                },
                ']' => {
                    in_bracket = false;
                    out.push(']');
                }
                c => out.push(c),
            }
            continue;
        }
        match c {
            '[' => {
                in_bracket = true;
                out.push('[');
                // `[]...]` and `[^]...]`: a leading `]` is a member.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            '\\' => match chars.next() {
                Some('b') => out.push_str("\\x08"),
                Some('B') => out.push_str("\\\\"),
                Some('Z') => out.push_str("\\z"),
                Some('d') => out.push_str("[0-9]"),
                Some('D') => out.push_str("[^0-9]"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push_str("\\\\"),
            },
            '*' | '+' | '?' => {
                out.push(c);
                if chars.peek() == Some(&'?') {
                    chars.next();
                    out.push('?');
                    lazy = true;
                } else {
                    greedy = true;
                }
            }
            '{' => {
                // A bound `{m}`, `{m,}`, `{m,n}` (else a literal brace).
                let rest: String = chars.clone().take_while(|c| *c != '}').collect();
                let bound = !rest.is_empty()
                    && rest.chars().all(|c| c.is_ascii_digit() || c == ',')
                    && rest.chars().next().is_some_and(|c| c.is_ascii_digit())
                    && chars.clone().nth(rest.chars().count()) == Some('}');
                if !bound {
                    out.push_str("\\{");
                    continue;
                }
                out.push('{');
                out.push_str(&rest);
                out.push('}');
                for _ in 0..=rest.chars().count() {
                    chars.next();
                }
                if chars.peek() == Some(&'?') {
                    chars.next();
                    out.push('?');
                    lazy = true;
                } else {
                    greedy = true;
                }
            }
            c => out.push(c),
        }
    }
    if greedy && lazy {
        return Err(format!(
            "the regular expression '{p}' mixes greedy and non-greedy quantifiers, which is \
             not supported: PostgreSQL gives the whole expression the preference of its \
             first quantifier, Quipu's regex engine each quantifier its own; use only one kind"
        ));
    }
    Ok(out)
}

/// A `regexp_replace` replacement in PostgreSQL's spelling (`\\1` to `\\9`
/// a group, `\\&` the whole match, `\\\\` a backslash, anything else
/// itself, `$` included) in the spelling DataFusion hands to Rust's
/// `regex` (`${1}`, `${0}`, `$$` a dollar; DataFusion itself turns a
/// backslash and digits into a group). A backslash written before a
/// digit (`\\1`, PostgreSQL's literal `\1`) is refused: DataFusion
/// would read it as a group, and its replacement has no escape for it.
pub fn pg_replacement(r: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(r.len() + 4);
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d @ '1'..='9') => {
                    chars.next();
                    out.push_str(&format!("${{{d}}}"));
                }
                Some('&') => {
                    chars.next();
                    out.push_str("${0}");
                }
                Some('\\') => {
                    chars.next();
                    if chars.peek().is_some_and(char::is_ascii_digit) {
                        return Err(format!(
                            "regexp_replace with a backslash before a digit in its \
                             replacement ('{r}') is not supported"
                        ));
                    }
                    out.push('\\');
                }
                // `\0` is itself in PostgreSQL, the whole match here.
                Some('0') => {
                    return Err(format!(
                        "regexp_replace with \\0 in its replacement ('{r}') is not supported"
                    ));
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

/// A derived table's and a `WITH` query's unaliased expressions take
/// PostgreSQL's names (`super::column_names`): DataFusion named them
/// after the expression, so `SELECT count FROM (SELECT count(*) FROM t) q`
/// found no column `count`, and `SELECT * FROM (...) q` (as BI tools wrap
/// a query) showed `count(*)`, `avg(t.i)`. A name two columns would share
/// is left as DataFusion's (its names must be unique).
struct SubqueryColumnNames;

impl SubqueryColumnNames {
    fn name(q: &mut Query) {
        let mut body = q.body.as_mut();
        loop {
            match body {
                SetExpr::SetOperation { left, .. } => body = left.as_mut(),
                SetExpr::Query(inner) => body = inner.body.as_mut(),
                SetExpr::Select(select) => {
                    let named = |item: &SelectItem| match item {
                        SelectItem::UnnamedExpr(e) => {
                            let (name, strength) = super::column_names::figure(e);
                            (strength > 0).then_some(name)
                        }
                        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_lowercase()),
                        _ => None,
                    };
                    let names: Vec<Option<String>> = select.projection.iter().map(named).collect();
                    for (item, name) in select.projection.iter_mut().zip(&names) {
                        let Some(name) = name else { continue };
                        let SelectItem::UnnamedExpr(e) = item else {
                            continue;
                        };
                        let plain = matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
                        let unique = names.iter().filter(|n| n.as_ref() == Some(name)).count() == 1;
                        if plain || !unique {
                            continue;
                        }
                        *item = SelectItem::ExprWithAlias {
                            expr: e.clone(),
                            alias: datafusion::sql::sqlparser::ast::Ident::with_quote('"', name),
                        };
                    }
                    return;
                }
                _ => return,
            }
        }
    }
}

impl SubqueryColumnNames {
    /// Column aliases fewer than the query's columns (`(SELECT a, b, c
    /// ...) q(x)`, `WITH w(x) AS (...)`) rename the first columns and
    /// leave the rest their names, as PostgreSQL does; DataFusion refused
    /// them ("Source table contains 2 columns but only 1 names given as
    /// column alias"). The list is completed with the rest's PostgreSQL
    /// names (`column2` of a `VALUES`), where the query's columns can be
    /// counted (no `*`) and every name comes out different.
    fn complete(
        columns: &mut Vec<datafusion::sql::sqlparser::ast::TableAliasColumnDef>,
        q: &Query,
    ) {
        use datafusion::sql::sqlparser::ast::{Ident, TableAliasColumnDef};
        if columns.is_empty() {
            return;
        }
        let mut body = q.body.as_ref();
        let names: Vec<Option<String>> = loop {
            match body {
                SetExpr::SetOperation { left, .. } => body = left.as_ref(),
                SetExpr::Query(inner) => body = inner.body.as_ref(),
                SetExpr::Select(select) => {
                    break select
                        .projection
                        .iter()
                        .map(|item| match item {
                            SelectItem::UnnamedExpr(e) => Some(super::column_names::figure(e).0),
                            SelectItem::ExprWithAlias { alias, .. } => Some(normalized(alias)),
                            _ => None,
                        })
                        .collect();
                }
                SetExpr::Values(v) => {
                    let n = v.rows.first().map_or(0, |r| r.len());
                    break (1..=n).map(|i| Some(format!("column{i}"))).collect();
                }
                _ => return,
            }
        };
        if names.len() <= columns.len() {
            return;
        }
        let Some(rest) = names[columns.len()..]
            .iter()
            .cloned()
            .collect::<Option<Vec<String>>>()
        else {
            return;
        };
        let mut all: Vec<String> = columns.iter().map(|c| normalized(&c.name)).collect();
        all.extend(rest.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        if !all.iter().all(|n| seen.insert(n.clone())) {
            return;
        }
        columns.extend(rest.into_iter().map(|name| TableAliasColumnDef {
            name: Ident::with_quote('"', name),
            data_type: None,
        }));
    }
}

impl VisitorMut for SubqueryColumnNames {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let Some(with) = q.with.as_mut() {
            for cte in &mut with.cte_tables {
                if cte.alias.columns.is_empty() {
                    Self::name(&mut cte.query);
                } else {
                    Self::complete(&mut cte.alias.columns, &cte.query);
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Derived {
            subquery, alias, ..
        } = t
        {
            match alias.as_mut() {
                Some(a) if !a.columns.is_empty() => Self::complete(&mut a.columns, subquery),
                _ => Self::name(subquery),
            }
        }
        ControlFlow::Continue(())
    }
}

/// [`quantified_subquery`] over a whole statement, for the PostgreSQL
/// front door: its catalog rewrites (datafusion-pg-catalog's
/// `RewriteArrayAnyAllOperation`) would make `x = ANY (subquery)` an
/// array test of the subquery before Quipu saw it.
pub fn quantified_subqueries<T: VisitMut>(s: &mut T) {
    let _ = visit_expressions_mut(s, |e: &mut Expr| {
        quantified_subquery(e);
        ControlFlow::<()>::Continue(())
    });
}

/// `x COLLATE "C"` (or `"POSIX"`, `"default"`, `ucs_basic`) is `x`: Quipu
/// compares and orders text by its bytes, as these collations do. Any
/// other collation is refused by name; it was ignored, so `'a' < 'B'
/// COLLATE "und-x-icu"` answered false where PostgreSQL answers true.
fn collation(e: &mut Expr) -> Result<()> {
    let Expr::Collate { expr, collation } = e else {
        return Ok(());
    };
    let name = collation.to_string();
    let bare = name.trim_matches('"');
    if ![
        "C",
        "POSIX",
        "default",
        "ucs_basic",
        "pg_catalog.\"C\"",
        "pg_catalog.\"default\"",
    ]
    .iter()
    .any(|c| c.trim_matches('"') == bare || *c == name)
    {
        return Err(DataFusionError::NotImplemented(format!(
            "COLLATE {name} is not supported: Quipu compares and orders text by its bytes, \
             as COLLATE \"C\" does"
        )));
    }
    let inner = std::mem::replace(expr.as_mut(), Expr::Value(Value::Null.into()));
    *e = Expr::Nested(Box::new(inner));
    Ok(())
}

/// A literal `LIKE` / `ILIKE` pattern that ends with its escape character
/// (the backslash, none given) is PostgreSQL's error (22025); DataFusion
/// answered false (`'ab' LIKE 'a\\'`).
fn like_trailing_escape(e: &Expr) -> Result<()> {
    let (Expr::Like {
        pattern,
        escape_char: None,
        ..
    }
    | Expr::ILike {
        pattern,
        escape_char: None,
        ..
    }) = e
    else {
        return Ok(());
    };
    if let Expr::Value(v) = pattern.as_ref()
        && let Value::SingleQuotedString(text) = &v.value
        && text.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
    {
        return Err(crate::error::DataException::error(
            "22025",
            "LIKE pattern must not end with escape character",
        ));
    }
    Ok(())
}

/// `x op ANY (ARRAY[a, b, ...])` as `(x op a OR x op b OR ...)`, and `ALL`
/// with `AND`: PostgreSQL's three-valued answer, NULL where no element
/// decides and one is NULL (FALSE for `ANY` of an empty array, TRUE for
/// `ALL`). The front door's catalog rewrites made them `array_contains`
/// and `array_max`/`array_min` tests, which skip NULL elements: `2 <> ALL
/// (ARRAY[1, NULL])` and `i < ANY (ARRAY[0, NULL])` where `i` is 0 were
/// TRUE and FALSE where PostgreSQL says NULL.
fn quantified_list(left: &Expr, op: &BinaryOperator, elems: &[Expr], all: bool) -> Expr {
    let joiner = match all {
        true => BinaryOperator::And,
        false => BinaryOperator::Or,
    };
    let tests = elems.iter().map(|x| Expr::BinaryOp {
        left: Box::new(Expr::Nested(Box::new(left.clone()))),
        op: op.clone(),
        right: Box::new(Expr::Nested(Box::new(x.clone()))),
    });
    let chain = tests.reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: joiner.clone(),
        right: Box::new(b),
    });
    Expr::Nested(Box::new(
        chain.unwrap_or_else(|| Expr::Value(Value::Boolean(all).into())),
    ))
}

/// `~x` (bitwise NOT of an integer) as `(x # -1)`: DataFusion 55 refused
/// it ("Unsupported SQL unary operator BitwiseNot").
fn bitwise_not(e: &mut Expr) {
    if let Expr::UnaryOp {
        op: UnaryOperator::BitwiseNot,
        expr,
    } = e
    {
        let operand = std::mem::replace(expr.as_mut(), Expr::Value(Value::Null.into()));
        *e = Expr::Nested(Box::new(Expr::BinaryOp {
            left: Box::new(Expr::Nested(Box::new(operand))),
            op: BinaryOperator::PGBitwiseXor,
            right: Box::new(parse_expr("-1")),
        }));
    }
}

/// A slice with a bound left out (`a[:2]`, `a[3:]`, `a[:]`) from the
/// array's first element or to its last, as PostgreSQL reads it (a
/// one-dimensional array's bounds are 1 and its cardinality); DataFusion
/// refused it ("Slice subscript requires a lower bound").
fn open_slice(e: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{AccessExpr, Subscript};
    let Expr::CompoundFieldAccess { root, access_chain } = e else {
        return;
    };
    let [
        AccessExpr::Subscript(Subscript::Slice {
            lower_bound,
            upper_bound,
            stride: None,
        }),
    ] = access_chain.as_mut_slice()
    else {
        return;
    };
    if lower_bound.is_none() {
        *lower_bound = Some(parse_expr("1"));
    }
    if upper_bound.is_none() {
        *upper_bound = Some(around(
            "CAST(cardinality(quipu_operand) AS BIGINT)",
            (**root).clone(),
        ));
    }
}

/// `x op ANY (array)` and `x op ALL (array)` for an array that is not
/// written out (a column, a function's result, a cast, a parameter) as
/// `quipu_quantified(x, array, 'op', all)` (`arrays.rs`), PostgreSQL's
/// three-valued answer. A quoted literal (`= ANY ('{a,b}')`) is read by
/// [`quantified_subquery`].
fn quantified_array(left: &Expr, op: &BinaryOperator, right: &Expr, all: bool) -> Option<Expr> {
    if let Expr::Value(v) = right
        && !matches!(v.value, Value::Placeholder(_))
    {
        return None;
    }
    Some(filled(
        &format!(
            "{}(quipu_operand, quipu_operand, '{op}', {all})",
            crate::dialect::arrays::QUANTIFIED
        ),
        vec![left.clone(), right.clone()],
    ))
}

/// `x op ANY (subquery)` and `x op ALL (subquery)` as PostgreSQL reads
/// them. DataFusion 55 turns them into correlated `EXISTS` tests that put
/// `x` inside the subquery, where a table of the same name captured it:
/// `i > ANY (SELECT i FROM t WHERE id = 2)` over `t` compared the
/// subquery's `i` with itself (the remote SQL said `t2.i > t2.i`) and
/// answered no rows. The subquery is read from a derived table of its
/// own (`SELECT * FROM (subquery) AS quipu_any`), whose columns no name
/// outside it can mean, unless it is correlated. `x = ANY (subquery)` is
/// `x IN (subquery)` and
/// `x <> ALL (subquery)` is `x NOT IN (subquery)` (DataFusion refused
/// both: "function array_has(integer, integer) does not exist").
fn quantified_subquery(e: &mut Expr) {
    let (left, op, right, all) = match e {
        Expr::AnyOp {
            left,
            compare_op,
            right,
            ..
        } => (left, compare_op, right, false),
        Expr::AllOp {
            left,
            compare_op,
            right,
        } => (left, compare_op, right, true),
        _ => return,
    };
    if let Expr::Array(array) = right.as_ref() {
        *e = quantified_list(left, op, &array.elem, all);
        return;
    }
    // Array text (`= ANY ('{a,b}')`): its elements are literals of the
    // other side's type, as PostgreSQL reads the literal as an array of
    // it. Text that is not an array's is left to `quipu_array_in`'s error.
    if let Expr::Value(v) = right.as_ref()
        && let Value::SingleQuotedString(text) = &v.value
    {
        *e = match super::array_text::parse(text) {
            Ok(elements) => {
                let elements: Vec<Expr> = elements
                    .into_iter()
                    .map(|x| match x {
                        Some(x) => Expr::Value(Value::SingleQuotedString(x).into()),
                        None => Expr::Value(Value::Null.into()),
                    })
                    .collect();
                quantified_list(left, op, &elements, all)
            }
            Err(_) => filled(
                &format!(
                    "{}(quipu_operand, CAST(quipu_operand AS TEXT[]), '{op}', {all})",
                    crate::dialect::arrays::QUANTIFIED
                ),
                vec![left.as_ref().clone(), right.as_ref().clone()],
            ),
        };
        return;
    }
    let Expr::Subquery(q) = right.as_ref() else {
        if let Some(call) = quantified_array(left, op, right, all) {
            *e = call;
        }
        return;
    };
    if matches!(
        (op.clone(), all),
        (BinaryOperator::Eq, false) | (BinaryOperator::NotEq, true)
    ) {
        *e = Expr::Nested(Box::new(Expr::InSubquery {
            expr: left.clone(),
            subquery: q.clone(),
            negated: all,
        }));
        return;
    }
    // A subquery that reads a table of the query around it (a correlated
    // one: `t__q1.id`, named by `outer_refs`) cannot be a derived table,
    // which sees no outer table; it is left as written.
    if !self_contained(q) {
        return;
    }
    let mut wrapped = Parser::new(&PostgreSqlDialect {})
        .try_with_sql("SELECT * FROM (SELECT 1) AS quipu_any")
        .and_then(|mut p| p.parse_query())
        .expect("Quipu's own query parses");
    if let SetExpr::Select(select) = wrapped.body.as_mut()
        && let Some(datafusion::sql::sqlparser::ast::TableWithJoins {
            relation: TableFactor::Derived { subquery, .. },
            ..
        }) = select.from.first_mut()
    {
        *subquery = q.clone();
    }
    **right = Expr::Subquery(wrapped);
}

/// Whether every qualified name in `q` starts with a table or alias that
/// `q` itself defines (no reference to an outer query's table).
fn self_contained(q: &Query) -> bool {
    #[derive(Default)]
    struct Names {
        defined: std::collections::HashSet<String>,
        used: std::collections::HashSet<String>,
    }
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
            match t {
                // An alias hides the table's own name, as in PostgreSQL.
                TableFactor::Table { name, alias, .. } => match alias {
                    Some(a) => {
                        self.defined.insert(a.name.value.to_lowercase());
                    }
                    None => {
                        if let Some(last) = name.0.last().and_then(|p| p.as_ident()) {
                            self.defined.insert(last.value.to_lowercase());
                        }
                    }
                },
                TableFactor::Derived { alias: Some(a), .. } => {
                    self.defined.insert(a.name.value.to_lowercase());
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::CompoundIdentifier(parts) = e
                && parts.len() > 1
                && let Some(table) = parts.get(parts.len() - 2)
            {
                self.used.insert(table.value.to_lowercase());
            }
            ControlFlow::Continue(())
        }
    }
    let mut names = Names::default();
    let _ = Visit::visit(q, &mut names);
    names.used.is_subset(&names.defined)
}

/// `x [NOT] [I]LIKE ANY (ARRAY[p, q])` as `(x LIKE p OR x LIKE q)`, which
/// has its three-valued meaning (no element: false), and `ALL` with `AND`
/// (no element: true). DataFusion 55 refused them ("ANY in LIKE
/// expression", "Invalid function 'all'"); an array that is not written
/// out element by element stays refused.
fn like_any(e: &mut Expr) {
    let (Expr::Like { any, pattern, .. } | Expr::ILike { any, pattern, .. }) = e else {
        return;
    };
    // `LIKE ALL (...)` (and `SOME`) comes as a call of a function `all`.
    let quantified = |name: &str| match call_args(pattern, name).as_deref() {
        Some([x]) => Some(x.clone()),
        _ => None,
    };
    let (all, mut list) = if *any {
        (false, pattern.as_ref().clone())
    } else if let Some(x) = quantified("all") {
        (true, x)
    } else if let Some(x) = quantified("some").or_else(|| quantified("any")) {
        (false, x)
    } else {
        return;
    };
    while let Expr::Nested(inner) = list {
        list = *inner;
    }
    let elems = match list {
        Expr::Array(a) => a.elem,
        Expr::Tuple(t) => t,
        _ => return,
    };
    let one = |p: Expr| {
        let mut x = e.clone();
        if let Expr::Like { any, pattern, .. } | Expr::ILike { any, pattern, .. } = &mut x {
            *any = false;
            **pattern = p;
        }
        like_escape(&mut x);
        x
    };
    let mut tests = elems.into_iter().map(one);
    let Some(first) = tests.next() else {
        *e = Expr::Value(Value::Boolean(all).into());
        return;
    };
    let chain = tests.fold(first, |a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: if all {
            BinaryOperator::And
        } else {
            BinaryOperator::Or
        },
        right: Box::new(b),
    });
    *e = Expr::Nested(Box::new(chain));
}

/// The function `x LIKE p ESCAPE 'c'` is rewritten to call: DataFusion
/// takes only the backslash as `LIKE`'s escape character, and SQLAlchemy
/// lists schemas with `nspname NOT LIKE $1 || '%' ESCAPE '/'`.
pub const LIKE_PATTERN_FN: &str = "quipu_like_pattern";

/// `x [NOT] [I]LIKE p ESCAPE 'c'`, with `c` not the backslash, becomes
/// `x [NOT] [I]LIKE quipu_like_pattern(p, 'c')`: the same pattern spelt
/// with backslash escapes ([`like_pattern`]), so any pattern works (a
/// literal one is folded when planned). `ESCAPE ''` (no escape character)
/// is the same function.
fn like_escape(e: &mut Expr) {
    let (Expr::Like {
        pattern,
        escape_char,
        ..
    }
    | Expr::ILike {
        pattern,
        escape_char,
        ..
    }) = e
    else {
        return;
    };
    let Some(escape) = escape_char.as_ref() else {
        return;
    };
    if matches!(&escape.value, Value::SingleQuotedString(c) if c == "\\") {
        return;
    }
    let escape = escape_char.take().expect("checked above").value;
    let p = std::mem::replace(pattern.as_mut(), Expr::value(Value::Null));
    **pattern = Expr::Function(datafusion::sql::sqlparser::ast::Function {
        name: datafusion::sql::sqlparser::ast::ObjectName::from(vec![
            datafusion::sql::sqlparser::ast::Ident::new(LIKE_PATTERN_FN),
        ]),
        uses_odbc_syntax: false,
        parameters: datafusion::sql::sqlparser::ast::FunctionArguments::None,
        args: datafusion::sql::sqlparser::ast::FunctionArguments::List(
            datafusion::sql::sqlparser::ast::FunctionArgumentList {
                duplicate_treatment: None,
                args: vec![
                    datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                        datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(p),
                    ),
                    datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                        datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(Expr::value(escape)),
                    ),
                ],
                clauses: vec![],
            },
        ),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    });
}

/// A `LIKE` pattern whose escape character is `escape` (none when empty),
/// spelt with backslash escapes as DataFusion reads them: `escape` then a
/// character is that character taken literally; a backslash is literal.
/// `None` when the pattern ends in the escape character, which PostgreSQL
/// refuses too.
pub fn like_pattern(pattern: &str, escape: Option<char>) -> Option<String> {
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            let next = chars.next()?;
            out.push('\\');
            out.push(next);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `quipu_like_pattern(pattern, escape)`, see [`like_escape`]; PostgreSQL's
/// errors for an escape of more than one character and for a pattern
/// ending in it.
pub fn like_pattern_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{Array, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    create_udf(
        LIKE_PATTERN_FN,
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        std::sync::Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let text = |i: usize| {
                arrays[i]
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| DataFusionError::Plan(format!("{LIKE_PATTERN_FN} takes text")))
            };
            let (patterns, escapes) = (text(0)?, text(1)?);
            let mut out = Vec::with_capacity(patterns.len());
            for i in 0..patterns.len() {
                if patterns.is_null(i) || escapes.is_null(i) {
                    out.push(None);
                    continue;
                }
                let mut escape = escapes.value(i).chars();
                let (first, more) = (escape.next(), escape.next());
                if more.is_some() {
                    return Err(DataFusionError::Execution(
                        "invalid escape string: it must be empty or one character".into(),
                    ));
                }
                out.push(Some(like_pattern(patterns.value(i), first).ok_or_else(
                    || {
                        DataFusionError::Execution(
                            "LIKE pattern must not end with escape character".into(),
                        )
                    },
                )?));
            }
            crate::dialect::pg_text::shaped_like(args, std::sync::Arc::new(StringArray::from(out)))
        }),
    )
}

/// The function `information_schema._pg_expandarray(a)` is rewritten to
/// call (see [`pg_functions`]).
pub const EXPAND_ARRAY_FN: &str = "quipu_pg_expandarray";

/// `quipu_pg_expandarray(a)`: the list of `(x, n)` structs of PostgreSQL's
/// `information_schema._pg_expandarray(a)`, each element with its 1-based
/// position, for `unnest` to make rows of. Hand-written: DataFusion's
/// `arrays_zip` names its fields `1`, `2`, and clients read `.x` and `.n`.
pub fn expand_array_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{Array, ArrayRef, Int32Array, ListArray, StructArray};
    use datafusion::arrow::buffer::OffsetBuffer;
    use datafusion::arrow::datatypes::{DataType, Field, Fields};
    use datafusion::logical_expr::{
        ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
    };
    use std::sync::Arc;
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct ExpandArray(Signature);
    fn fields(element: &DataType) -> Fields {
        Fields::from(vec![
            Field::new("x", element.clone(), true),
            Field::new("n", DataType::Int32, false),
        ])
    }
    fn element(t: &DataType) -> Result<&DataType> {
        match t {
            DataType::List(f) => Ok(f.data_type()),
            DataType::Null => Ok(&DataType::Null),
            other => Err(DataFusionError::Plan(format!(
                "_pg_expandarray takes an array, not {other}"
            ))),
        }
    }
    impl ScalarUDFImpl for ExpandArray {
        fn name(&self) -> &str {
            EXPAND_ARRAY_FN
        }
        fn signature(&self) -> &Signature {
            &self.0
        }
        fn return_type(&self, args: &[DataType]) -> Result<DataType> {
            let element = element(&args[0])?;
            Ok(DataType::List(Arc::new(Field::new_list_field(
                DataType::Struct(fields(element)),
                true,
            ))))
        }
        fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
            let arrays = ColumnarValue::values_to_arrays(&args.args)?;
            let out_type = self.return_type(&[arrays[0].data_type().clone()])?;
            let Some(list) = arrays[0].as_any().downcast_ref::<ListArray>() else {
                // NULL (an untyped NULL argument): no elements.
                return Ok(ColumnarValue::Array(
                    datafusion::arrow::array::new_null_array(&out_type, arrays[0].len()),
                ));
            };
            let offsets = list.value_offsets();
            let (first, last) = (offsets[0] as usize, offsets[list.len()] as usize);
            let values = list.values().slice(first, last - first);
            let positions: Int32Array = (0..list.len())
                .flat_map(|i| 1..=(offsets[i + 1] - offsets[i]))
                .collect();
            let element = element(list.data_type())?;
            let structs = StructArray::try_new(
                fields(element),
                vec![values, Arc::new(positions) as ArrayRef],
                None,
            )?;
            let rebased = OffsetBuffer::new(offsets.iter().map(|o| o - offsets[0]).collect());
            let DataType::List(item) = out_type else {
                unreachable!("return_type is a list")
            };
            let out = ListArray::try_new(item, rebased, Arc::new(structs), list.nulls().cloned())?;
            crate::dialect::pg_text::shaped_like(&args.args, Arc::new(out))
        }
    }
    datafusion::logical_expr::ScalarUDF::new_from_impl(ExpandArray(Signature::any(
        1,
        Volatility::Immutable,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn fixed(sql: &str) -> std::result::Result<String, String> {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        fix_sql(&mut s, DateOrder::Mdy).map_err(|e| e.to_string())?;
        Ok(s.to_string())
    }

    /// Fewer column aliases than columns rename the first ones.
    #[test]
    fn short_column_alias_lists_keep_the_other_names() {
        for (sql, want) in [
            (
                "SELECT x FROM (SELECT i, rank() OVER (ORDER BY i) FROM t) q(x)",
                "q (x, \"rank\")",
            ),
            (
                "SELECT * FROM (VALUES (1, 2, 3)) t(a)",
                "t (a, \"column2\", \"column3\")",
            ),
            (
                "WITH w(x) AS (SELECT 1, 2 AS y) SELECT * FROM w",
                "w (x, \"y\")",
            ),
            // A name met twice, or columns not counted, are left.
            ("SELECT * FROM (SELECT 1, 2, 3) q(x)", "q (x)"),
            ("SELECT * FROM (SELECT a, b AS x FROM t) q(x)", "q (x)"),
            ("SELECT * FROM (SELECT * FROM t) q(x)", "q (x)"),
        ] {
            let got = fixed(sql).unwrap();
            assert!(got.contains(want), "{sql}: {got}");
        }
    }

    /// A position of a computed item becomes the item (its name kept);
    /// where a copy could read otherwise, the item is named instead.
    #[test]
    fn positions_of_computed_items_are_ordered_by_the_items() {
        let cases = [
            (
                "SELECT s, sum(i) / count(*) FROM t GROUP BY s ORDER BY 2 DESC, 1",
                "SELECT s, sum(i) / count(*) FROM t GROUP BY s ORDER BY sum(i) / count(*) DESC, 1",
            ),
            (
                "SELECT count(*) + 1 FROM t ORDER BY 1",
                "SELECT count(*) + 1 FROM t ORDER BY count(*) + 1",
            ),
            // Where DataFusion answers, as written.
            (
                "SELECT DISTINCT i / 3 FROM t ORDER BY 1",
                "SELECT DISTINCT i / 3 FROM t ORDER BY 1",
            ),
            (
                "SELECT upper(s) FROM t ORDER BY 1",
                "SELECT upper(s) FROM t ORDER BY 1",
            ),
            (
                "SELECT s, generate_series(1, count(*)) FROM t GROUP BY s ORDER BY 2",
                "SELECT s, unnest(generate_series(1, count(*))) FROM t GROUP BY s ORDER BY 2",
            ),
            (
                "SELECT i AS s, upper(s) FROM t GROUP BY i, s ORDER BY 2",
                "SELECT i AS s, upper(s) AS \"upper(s)\" FROM t GROUP BY i, s ORDER BY \"upper(s)\"",
            ),
            (
                "SELECT s, count(*) * random() FROM t GROUP BY s ORDER BY 2",
                "SELECT s, count(*) * random() AS \"count(*) * random()\" FROM t GROUP BY s \
                 ORDER BY \"count(*) * random()\"",
            ),
            (
                "SELECT 2, s FROM t GROUP BY s ORDER BY 1",
                "SELECT 2 AS \"2\", s FROM t GROUP BY s ORDER BY \"2\"",
            ),
            (
                "SELECT 2, s FROM t ORDER BY 1",
                "SELECT 2, s FROM t ORDER BY 1",
            ),
            (
                "SELECT s, i FROM t ORDER BY 2",
                "SELECT s, i FROM t ORDER BY 2",
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(fixed(sql).unwrap(), want, "{sql}");
        }
    }

    #[test]
    fn fetch_with_ties_ranks_by_the_sort_keys() {
        assert_eq!(
            fixed(
                "SELECT store, count(*) AS n FROM o GROUP BY 1 \
                 ORDER BY n DESC, 1 FETCH FIRST 2 ROWS WITH TIES"
            )
            .unwrap(),
            "SELECT * EXCLUDE (__quipu_ties_rank) FROM (SELECT store, count(*) AS n, \
             rank() OVER (ORDER BY count(*) DESC, store) AS __quipu_ties_rank FROM o GROUP BY 1) \
             AS __quipu_ties WHERE __quipu_ties_rank <= (2) ORDER BY __quipu_ties_rank"
        );
        assert_eq!(
            fixed("WITH w AS (SELECT 1 AS x) SELECT x FROM w ORDER BY x OFFSET 1 ROWS FETCH NEXT ROW WITH TIES")
                .unwrap(),
            "WITH w AS (SELECT 1 AS x) SELECT * EXCLUDE (__quipu_ties_rank, __quipu_ties_row) \
             FROM (SELECT x, rank() OVER (ORDER BY x) AS __quipu_ties_rank, \
             row_number() OVER (ORDER BY x) AS __quipu_ties_row FROM w) AS __quipu_ties \
             WHERE __quipu_ties_rank <= (1) + (1) AND __quipu_ties_row > (1) \
             ORDER BY __quipu_ties_rank"
        );
        // Duplicates removed after the ranks would be counted in them.
        assert!(
            fixed("SELECT DISTINCT x FROM t ORDER BY x FETCH FIRST 2 ROWS WITH TIES")
                .unwrap()
                .contains("WITH TIES")
        );
    }

    #[test]
    fn a_shift_whose_default_reads_a_column_tests_a_constant_shift() {
        assert_eq!(
            fixed("SELECT lag(p, 1, p) OVER (ORDER BY d), lead(p, 2, 0) OVER w FROM t").unwrap(),
            "SELECT CASE WHEN lag(1, 1) OVER (ORDER BY d) IS NULL THEN (p) \
             ELSE lag(p, 1) OVER (ORDER BY d) END, lead(p, 2, 0) OVER w FROM t"
        );
    }

    #[test]
    fn json_object_agg_gathers_members() {
        assert_eq!(
            fixed("SELECT json_object_agg(k, v ORDER BY k) FILTER (WHERE k > 0) FROM t").unwrap(),
            "SELECT quipu_json_object(array_agg(CASE WHEN starts_with(to_json((k)), '\"') \
             THEN to_json((k)) ELSE '\"' || to_json((k)) || '\"' END || ' : ' || \
             COALESCE(to_json((v)), 'null') ORDER BY k) FILTER (WHERE k > 0)) FROM t"
        );
    }

    #[test]
    fn overlaps_orders_each_pair() {
        let sql = fixed("SELECT (a, INTERVAL '1 day') OVERLAPS (c, d) FROM t").unwrap();
        assert!(sql.starts_with(
            "SELECT (CASE WHEN (least(a, (a + INTERVAL '0 mons 1 days 0 microseconds'))) IS NULL \
             OR (least(c, d)) IS NULL THEN NULL WHEN (least(a, (a + INTERVAL '0 mons 1 days 0 \
             microseconds'))) > (least(c, d)) THEN CASE WHEN \
             (CASE WHEN c IS NULL OR d IS NULL THEN NULL ELSE greatest(c, d) END) IS NULL THEN NULL"
        ), "{sql}");
    }

    #[test]
    fn a_row_in_a_subquery_is_exists_where_null_is_false() {
        assert_eq!(
            fixed("SELECT 1 FROM t WHERE (a, b) IN (SELECT x, max(y) FROM u GROUP BY x)").unwrap(),
            "SELECT 1 FROM t WHERE EXISTS (SELECT 1 FROM (SELECT x, max(y) FROM u GROUP BY x) \
             AS __quipu_row (c0, c1) WHERE __quipu_row.c0 = (a) AND __quipu_row.c1 = (b))"
        );
        // Under NOT its NULLs would matter: left to DataFusion's refusal.
        assert!(
            fixed("SELECT 1 FROM t WHERE NOT (a, b) IN (SELECT x, y FROM u)")
                .unwrap()
                .contains("(a, b) IN (SELECT")
        );
    }

    #[test]
    fn an_empty_group_is_one_grouping_set() {
        assert_eq!(
            fixed("SELECT count(*) FROM t GROUP BY ()").unwrap(),
            "SELECT count(*) FROM t GROUP BY GROUPING SETS (())"
        );
        assert_eq!(
            fixed("SELECT a FROM t GROUP BY (), a").unwrap(),
            "SELECT a FROM t GROUP BY a"
        );
    }

    #[test]
    fn type_names_called_are_casts() {
        assert_eq!(
            fixed("SELECT date(ts), pg_catalog.text(i), INT8(s), date_part('day', d) FROM t")
                .unwrap(),
            "SELECT CAST((ts) AS DATE), CAST((i) AS TEXT), CAST((s) AS BIGINT), \
             date_part('day', d) FROM t"
        );
    }

    #[test]
    fn posix_classes_of_literal_patterns_are_unicode() {
        assert_eq!(
            fixed("SELECT s ~ '[[:upper:]]x', regexp_like(s, '^[[:alpha:][:space:]]+$') FROM t")
                .unwrap(),
            "SELECT s ~ '(?s)[\\p{Uppercase}]x', regexp_like(s, '(?s)^[\\p{Alphabetic}\\s]+$') FROM t"
        );
        // A pattern from a column is left alone, as is `[:digit:]`
        // (ASCII digits in both).
        assert_eq!(
            fixed("SELECT s ~ p, s ~ '[[:digit:]]' FROM t").unwrap(),
            "SELECT s ~ p, s ~ '(?s)[[:digit:]]' FROM t"
        );
    }

    /// PostgreSQL's meanings, each checked in psql (PostgreSQL 15).
    #[test]
    fn patterns_are_spelt_with_postgresqls_meaning() {
        for (pg, rust) in [
            // `.` matches a newline: E'a\nb' ~ 'a.b' is true.
            ("a.b", "(?s)a.b"),
            // `\b` is a backspace, `\B` a backslash, `\d` an ASCII digit.
            ("\\bgreen\\b", "(?s)\\x08green\\x08"),
            ("a\\Bb", "(?s)a\\\\b"),
            ("\\d+[\\d.]", "(?s)[0-9]+[0-9.]"),
            // A leading `]` in brackets is a member; a brace that is no
            // bound is itself.
            ("[]a]{2}x{", "(?s)[\\]a]{2}x\\{"),
            ("(a+?)b*?", "(?s)(a+?)b*?"),
        ] {
            assert_eq!(pg_regex(pg).unwrap(), rust, "{pg}");
        }
        // `(a.*?)(.*)` of `abcd` is {a,""} in PostgreSQL (the first
        // quantifier's preference for the whole), {a,bcd} in Rust.
        let refused = pg_regex("(a.*?)(.*)").unwrap_err();
        assert!(refused.contains("mixes greedy and non-greedy"), "{refused}");
        // regexp_replace('price 5', '(\d)', '$\1') is `price $5`;
        // '[\&]' the whole match in brackets, '\\' one backslash.
        assert_eq!(pg_replacement("$\\1").unwrap(), "$$${1}");
        assert_eq!(pg_replacement("[\\&]").unwrap(), "[${0}]");
        assert_eq!(pg_replacement("a\\\\b\\x").unwrap(), "a\\b\\x");
        assert!(pg_replacement("\\\\1\\1").is_err());
        assert!(pg_replacement("<\\0>").is_err());
        // A backslash in a `~` pattern keeps it a regular expression
        // (DataFusion made `s ~ '\\'` a LIKE reading `\` as its escape).
        assert_eq!(
            fixed("SELECT s ~ '\\\\', s ~ 'a', regexp_like(s, '\\\\') FROM t").unwrap(),
            "SELECT s ~ '(?s)\\\\()', s ~ '(?s)a', regexp_like(s, '(?s)\\\\') FROM t"
        );
        assert_eq!(
            fixed("SELECT -INTERVAL '1 mon 1 day'").unwrap(),
            "SELECT -(INTERVAL '1 mons 1 days 0 microseconds')"
        );
        assert_eq!(
            fixed("SELECT string_agg(DISTINCT s, ','), array_agg(DISTINCT i) FILTER (WHERE b), array_agg(i) FROM t").unwrap(),
            "SELECT string_agg(DISTINCT s, ',' ORDER BY s), array_agg(DISTINCT i ORDER BY i) FILTER (WHERE b), array_agg(i) FROM t"
        );
        assert_eq!(
            fixed("SELECT array_length(a, 1), ROW(a, b) IS NULL, (a, b) IS NOT NULL").unwrap(),
            "SELECT nullif(array_length(a, 1), 0), ((a) IS NULL AND (b) IS NULL), \
             ((a) IS NOT NULL AND (b) IS NOT NULL)"
        );
        assert_eq!(
            fixed("SELECT array_remove(a, 1), ARRAY_REPLACE(a, 1, 9)").unwrap(),
            "SELECT array_remove(a, 1), array_replace_all(a, 1, 9)"
        );
    }

    #[test]
    fn quantified_subqueries_read_their_own_tables() {
        // Uncorrelated: read from a derived table of its own.
        assert_eq!(
            fixed("SELECT id FROM t WHERE i > ANY (SELECT i FROM t WHERE id = 2)").unwrap(),
            "SELECT id FROM t WHERE i > ANY(SELECT * FROM (SELECT i FROM t WHERE id = 2) AS quipu_any)"
        );
        // Correlated (the outer `t` is renamed by `outer_refs`): as written.
        assert_eq!(
            fixed("SELECT id FROM t WHERE i > ALL (SELECT x.i FROM t x WHERE x.id < t.id)")
                .unwrap(),
            "SELECT id FROM t AS \"t__q1\" WHERE i > ALL(SELECT x.i FROM t x WHERE x.id < \"t__q1\".id)"
        );
        // `= ANY` is `IN`, `<> ALL` is `NOT IN`, correlated or not.
        assert_eq!(
            fixed("SELECT 1 FROM t WHERE a = ANY (SELECT b FROM u) AND a <> ALL (SELECT b FROM u)")
                .unwrap(),
            "SELECT 1 FROM t WHERE (a IN (SELECT b FROM u)) AND (a NOT IN (SELECT b FROM u))"
        );
    }

    #[test]
    fn extract_is_marked_numeric() {
        let marked = |sql: &str| {
            let s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
                .unwrap()
                .remove(0);
            mark_extracts(DfStatement::Statement(Box::new(s))).to_string()
        };
        assert_eq!(
            marked(
                "SELECT EXTRACT(YEAR FROM d), extract(epoch from t.ts + INTERVAL '1' DAY), date_part('year', d) FROM t"
            ),
            "SELECT CAST(date_part('year', (d)) AS NUMERIC), \
             CAST(date_part('epoch', (t.ts + INTERVAL '1' DAY)) AS NUMERIC), date_part('year', d) FROM t"
        );
    }

    #[test]
    fn a_null_in_an_in_list_is_kept_outside_it() {
        assert_eq!(
            fixed("SELECT 1 FROM t WHERE a IN (1, 2) AND a NOT IN (3, NULL) OR b IN (NULL, 'x') OR c NOT IN (NULL)").unwrap(),
            "SELECT 1 FROM t WHERE a IN (1, 2) AND ((a NOT IN (3)) AND CAST(NULL AS BOOLEAN)) \
             OR b IN (NULL, 'x') OR CAST(NULL AS BOOLEAN)"
        );
    }

    #[test]
    fn like_escape_characters_become_backslashes() {
        assert_eq!(like_pattern("pg/_%", Some('/')).unwrap(), "pg\\_%");
        assert_eq!(like_pattern("a//b", Some('/')).unwrap(), "a\\/b");
        assert_eq!(like_pattern("a\\b_", Some('/')).unwrap(), "a\\\\b_");
        assert_eq!(like_pattern("100#%", Some('#')).unwrap(), "100\\%");
        assert_eq!(like_pattern("a\\%", None).unwrap(), "a\\\\%");
        assert_eq!(like_pattern("abc/", Some('/')), None);
        assert_eq!(
            fixed(
                "SELECT 1 FROM t WHERE a NOT LIKE $1 || '%' ESCAPE '/' AND b ILIKE 'x' ESCAPE '#'"
            )
            .unwrap(),
            "SELECT 1 FROM t WHERE a NOT LIKE quipu_like_pattern($1 || '%', '/') \
             AND b ILIKE quipu_like_pattern('x', '#')"
        );
        // The backslash is DataFusion's own.
        assert_eq!(
            fixed("SELECT 1 FROM t WHERE a LIKE 'x' ESCAPE '\\'").unwrap(),
            "SELECT 1 FROM t WHERE a LIKE 'x' ESCAPE '\\'"
        );
    }

    #[test]
    fn prefix_operators_take_the_arithmetic_after_them() {
        assert_eq!(
            fixed("SELECT @ a + b * 2, (@ a) + b, @ a = b").unwrap(),
            "SELECT abs(a + b * 2), (abs(a)) + b, abs(a) = b"
        );
        assert_eq!(
            fixed("SELECT |/ a * 2 + 1").unwrap(),
            "SELECT sqrt(a * 2 + 1)"
        );
    }

    #[test]
    fn postgresql_functions_datafusion_lacks() {
        assert_eq!(
            fixed("SELECT unnest(k) AS a, generate_subscripts(k, $1::INTEGER) AS o FROM i")
                .unwrap(),
            "SELECT unnest(k) AS a, unnest(generate_series(1, array_length(k, $1::INTEGER))) AS o FROM i"
        );
        let view = fixed("SELECT pg_catalog.pg_get_viewdef(c.oid, true) FROM pg_class c").unwrap();
        assert!(
            view.starts_with(
                "SELECT (SELECT max(quipu_v.definition) FROM (SELECT schemaname, viewname, \
                 definition FROM pg_catalog.pg_views UNION ALL SELECT schemaname, matviewname, \
                 definition FROM pg_catalog.pg_matviews) AS quipu_v"
            ) && view.ends_with("WHERE quipu_c.oid = (c.oid)) FROM pg_class c"),
            "{view}"
        );
    }

    #[test]
    fn array_of_a_subquery_is_an_aggregate() {
        assert_eq!(
            fixed("SELECT ARRAY(SELECT b.n FROM m JOIN b ON m.r = b.o WHERE m.m = r.oid ORDER BY 1) FROM r")
                .unwrap(),
            // (`r`, reached from the subquery, is renamed: `outer_refs`.)
            "SELECT (SELECT array_agg(b.n ORDER BY b.n) FROM m JOIN b ON m.r = b.o \
             WHERE m.m = \"r__q1\".oid) FROM r AS \"r__q1\""
        );
        let kept = "SELECT ARRAY(SELECT a FROM t LIMIT 2) FROM r";
        assert_eq!(fixed(kept).unwrap(), kept);
    }

    #[test]
    fn repeated_columns_get_an_alias() {
        assert_eq!(
            fixed("SELECT NULL, NULL, a, a AS b, a FROM t").unwrap(),
            "SELECT NULL, NULL AS \"NULL:2\", a, a AS b, a AS \"a:5\" FROM t"
        );
    }

    #[test]
    fn result_columns_may_share_a_name_with_a_column() {
        let statement = |sql: &str| {
            let s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
                .unwrap()
                .remove(0);
            distinct_result_names(fix(DfStatement::Statement(Box::new(s)), DateOrder::Mdy).unwrap())
                .to_string()
        };
        assert_eq!(
            statement(
                "SELECT c.id, 1 AS id, 2 AS Id, (SELECT o.id FROM o WHERE o.n = 1), \
                 (SELECT max(o.n) AS m FROM o) FROM c"
            ),
            "SELECT c.id, 1 AS \"id:2\", 2 AS \"id:3\", (SELECT o.id FROM o WHERE o.n = 1) \
             AS \"id:4\", (SELECT max(o.n) AS m FROM o) FROM c"
        );
        // A name an ORDER BY uses stays ambiguous, as in PostgreSQL.
        let ordered = "SELECT c.id, 1 AS id FROM c ORDER BY id";
        assert_eq!(statement(ordered), ordered);
        // Nested queries are left alone: a clash there is PostgreSQL's
        // error when the outer query uses the name.
        let nested = "SELECT t.n FROM (SELECT c.id, 1 AS id, 2 AS n FROM c) AS t";
        assert_eq!(statement(nested), nested);
    }

    #[test]
    fn every_item_but_columns_can_be_named() {
        let s = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT a, t.b, position('x' IN a), (SELECT strpos(a, 'x') FROM u) AS named FROM t",
        )
        .unwrap()
        .remove(0);
        assert_eq!(
            name_every_item(DfStatement::Statement(Box::new(s))).to_string(),
            "SELECT a, t.b, POSITION('x' IN a) AS \"POSITION('x' IN a):3\", (SELECT strpos(a, 'x') \
             AS \"strpos(a, 'x'):1\" FROM u) AS named FROM t"
        );
    }

    #[test]
    fn columns_datafusion_names_alike_get_an_alias() {
        assert_eq!(
            fixed("SELECT 1, 1::bigint, CAST(a AS TEXT), (a), A FROM t").unwrap(),
            "SELECT 1, 1::BIGINT AS \"1::BIGINT:2\", CAST(a AS TEXT), (a) AS \"(a):4\", A AS \"A:5\" FROM t"
        );
    }

    #[test]
    fn array_of_an_unnest_maps_the_array() {
        assert_eq!(
            fixed(
                "SELECT array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), \
                   ARRAY(SELECT y * 2 FROM unnest(a) AS y WHERE y > 1) FROM tc"
            )
            .unwrap(),
            "SELECT array_transform(\"tc__q1\".reloptions, x -> 'toast.' || x), \
             array_transform(array_filter(a, y -> y > 1), y -> y * 2) FROM tc AS \"tc__q1\""
        );
    }

    #[tokio::test]
    async fn array_of_an_unnest_keeps_postgresql_elements() {
        let ctx = datafusion::prelude::SessionContext::new();
        let mut s = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT array_to_string(ARRAY(SELECT y * 2 FROM unnest(a) AS y WHERE y > 1), ',') \
             FROM (VALUES ([3, 1, 2])) AS t(a)",
        )
        .unwrap()
        .remove(0);
        fix_sql(&mut s, DateOrder::Mdy).unwrap();
        let plan = ctx
            .state()
            .statement_to_plan(DfStatement::Statement(Box::new(s)))
            .await
            .unwrap();
        let batches = ctx
            .execute_logical_plan(plan)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(text.contains("| 6,4 "), "{text}");
    }

    #[test]
    fn pg_expandarray_is_unnest() {
        assert_eq!(
            fixed("SELECT (information_schema._pg_expandarray(i.indkey)).n AS k, information_schema._pg_expandarray(i.indkey) AS keys FROM i").unwrap(),
            "SELECT (unnest(quipu_pg_expandarray(i.indkey)))['n'] AS k, \
             unnest(quipu_pg_expandarray(i.indkey)) AS keys FROM i"
        );
    }

    #[tokio::test]
    async fn pg_expandarray_numbers_the_elements() {
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_udf(expand_array_udf());
        let batches = ctx
            .sql(
                // As the JDBC driver's `getPrimaryKeys` reads it, rewritten.
                "SELECT k, u['x'] AS x, n FROM (SELECT k, (unnest(quipu_pg_expandarray(a)))['n'] AS n, \
                 unnest(quipu_pg_expandarray(a)) AS u \
                 FROM (VALUES (1, [7, 8, 9]), (2, []), (3, [5])) AS t(k, a)) WHERE u['n'] = n \
                 ORDER BY k, n",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("| "))
            .skip(1)
            .collect();
        assert_eq!(
            rows,
            [
                "| 1 | 7 | 1 |",
                "| 1 | 8 | 2 |",
                "| 1 | 9 | 3 |",
                "| 3 | 5 | 1 |"
            ],
            "{text}"
        );
    }

    #[test]
    fn bytea_literals_are_read_as_postgresql_reads_them() {
        assert_eq!(
            fixed("SELECT '\\x0102'::bytea, CAST('\\xDE ad' AS BYTEA), 'a\\\\000b\\001'::pg_catalog.bytea, '\\x'::bytea, 'x'::text").unwrap(),
            "SELECT X'0102', X'DEAD', X'615C3030306201', X'', 'x'::TEXT"
        );
        assert_eq!(bytea_input("a\\000b").unwrap(), b"a\0b");
        assert_eq!(bytea_input("a\\\\b").unwrap(), b"a\\b");
        for (bad, err) in [
            ("\\x0g", "invalid hexadecimal digit: \"g\""),
            ("\\x012", "invalid hexadecimal data: odd number of digits"),
            ("a\\9", "invalid input syntax for type bytea"),
        ] {
            assert_eq!(bytea_input(bad).unwrap_err(), err);
        }
        let err = fixed("SELECT '\\xzz'::bytea").unwrap_err();
        assert!(err.contains("invalid hexadecimal digit: \"z\""), "{err}");
    }

    #[test]
    fn mod_is_the_remainder_operator() {
        assert_eq!(
            fixed("SELECT mod(a + 1, 3), MOD(b, -2) FROM t WHERE mod(a, 2) = 1").unwrap(),
            "SELECT ((a + 1) % (3)), ((b) % (-2)) FROM t WHERE ((a) % (2)) = 1"
        );
        // Another function of that name (a schema's) is left alone.
        assert_eq!(
            fixed("SELECT s.mod(a, 3) FROM t").unwrap(),
            "SELECT s.mod(a, 3) FROM t"
        );
    }

    #[test]
    fn casts_to_fixed_length_text_cut_it() {
        assert_eq!(
            fixed("SELECT CAST(s AS varchar(3)), i::character varying(2), s::char(4), CAST(s AS CHARACTER), CAST(s AS varchar) FROM t").unwrap(),
            "SELECT left(CAST(s AS TEXT), 3), left(CAST(i AS TEXT), 2), rtrim(left(CAST(s AS TEXT), 4), ' '), rtrim(left(CAST(s AS TEXT), 1), ' '), CAST(s AS VARCHAR) FROM t"
        );
        // TRY_CAST keeps its own meaning.
        assert_eq!(
            fixed("SELECT TRY_CAST(s AS varchar(3)) FROM t").unwrap(),
            "SELECT TRY_CAST(s AS VARCHAR(3)) FROM t"
        );
    }

    #[test]
    fn generate_series_gives_rows() {
        assert_eq!(
            fixed("SELECT generate_series(1, 3) * 2, unnest(generate_series(1, 2)) AS u, (SELECT max(generate_series(1, a))) FROM t").unwrap(),
            "SELECT unnest(generate_series(1, 3)) * 2, unnest(generate_series(1, 2)) AS u, (SELECT max(unnest(generate_series(1, a)))) FROM t"
        );
        assert_eq!(
            fixed("SELECT x, y.y FROM generate_series(1, 3) AS x, generate_series(1, 2) y, generate_series(1, 2) AS z(n), unnest(a) AS u, unnest(a, b) AS v WHERE x IN (SELECT generate_series(1, 2))").unwrap(),
            "SELECT x, y.y FROM generate_series(1, 3) AS x (x), generate_series(1, 2) y (y), generate_series(1, 2) AS z (n), LATERAL (SELECT unnest(a) AS \"u\") AS u, LATERAL (SELECT unnest(a) AS \"unnest\", unnest(b) AS \"unnest_2\") AS v WHERE x IN (SELECT unnest(generate_series(1, 2)))"
        );
        // Unaliased, a constant set is named after its function.
        assert_eq!(
            fixed("SELECT * FROM generate_series(1, 3), UNNEST(ARRAY[1])").unwrap(),
            "SELECT * FROM generate_series(1, 3) AS \"generate_series\" (generate_series), UNNEST(ARRAY[1]) AS \"unnest\" (unnest)"
        );
    }

    #[test]
    fn percentiles_of_an_array_of_fractions_are_an_array() {
        assert_eq!(
            fixed("SELECT percentile_cont(ARRAY[0.25, 0.5]) WITHIN GROUP (ORDER BY x), percentile_disc(ARRAY[0.9]) WITHIN GROUP (ORDER BY y DESC) FROM t").unwrap(),
            format!(
                "SELECT ARRAY[{p}(0.25) WITHIN GROUP (ORDER BY x), {p}(0.5) WITHIN GROUP (ORDER BY x)], ARRAY[percentile_disc(0.9) WITHIN GROUP (ORDER BY y DESC)] FROM t",
                p = super::super::ordered_sets::PERCENTILE_CONT
            )
        );
    }

    #[test]
    fn open_slices_run_from_the_first_element_to_the_last() {
        assert_eq!(
            fixed("SELECT a[:2], a[3:], (ARRAY[1, 2])[:] FROM t").unwrap(),
            "SELECT a[1:2], a[3:CAST(cardinality(a) AS BIGINT)], (ARRAY[1, 2])[1:CAST(cardinality((ARRAY[1, 2])) AS BIGINT)] FROM t"
        );
    }

    #[test]
    fn lateral_joins_reach_the_items_before_them() {
        // A lateral join after a comma reads the items before it: they
        // are crossed in before its own left side.
        assert_eq!(
            fixed("SELECT * FROM a, b LEFT JOIN LATERAL (SELECT c.v FROM c WHERE c.k = a.k LIMIT 1) x ON true, d").unwrap(),
            "SELECT * FROM a AS \"a__q1\" CROSS JOIN b LEFT JOIN LATERAL (SELECT c.v FROM c WHERE c.k = \"a__q1\".k LIMIT 1) x ON true, d"
        );
        // Not across a right join, whose unmatched rows would repeat.
        assert_eq!(
            fixed("SELECT * FROM a, b RIGHT JOIN e ON true JOIN LATERAL (SELECT a.k) x ON true")
                .unwrap(),
            "SELECT * FROM a AS \"a__q1\", b RIGHT JOIN e ON true JOIN LATERAL (SELECT \"a__q1\".k) x ON true"
        );
    }

    #[test]
    fn sets_that_read_rows_are_lateral_subqueries() {
        // A column, a subquery, `LATERAL f(...)` and `WITH ORDINALITY`;
        // the first table of a FROM list is not lateral.
        assert_eq!(
            fixed(
                "SELECT * FROM t, generate_series(1, t.n) g, LATERAL generate_series(1, 2) AS h(x)"
            )
            .unwrap(),
            "SELECT * FROM t, LATERAL (SELECT unnest(generate_series(1, t.n)) AS \"g\") AS g, LATERAL (SELECT unnest(generate_series(1, 2)) AS \"x\") AS h"
        );
        assert_eq!(
            fixed("SELECT * FROM generate_series((SELECT min(n) FROM t), 3)").unwrap(),
            "SELECT * FROM (SELECT unnest(generate_series((SELECT min(n) FROM t), 3)) AS \"generate_series\") AS \"generate_series\""
        );
        assert_eq!(
            fixed("SELECT * FROM t JOIN unnest(t.a) WITH ORDINALITY AS u(v, n) ON true").unwrap(),
            "SELECT * FROM t JOIN LATERAL (SELECT unnest(t.a) AS \"v\", unnest(generate_series(1, CAST(coalesce(cardinality(t.a), 0) AS BIGINT))) AS \"n\") AS u ON true"
        );
        // Unquoted names are folded to lower case, as PostgreSQL folds them.
        assert_eq!(
            fixed("SELECT * FROM t, unnest(t.a) AS U(X)").unwrap(),
            "SELECT * FROM t, LATERAL (SELECT unnest(t.a) AS \"x\") AS U"
        );
        assert_eq!(
            fixed("SELECT * FROM generate_series(5, 7) WITH ORDINALITY").unwrap(),
            "SELECT * FROM (SELECT unnest(generate_series(5, 7)) AS \"generate_series\", unnest(generate_series(1, CAST(coalesce(cardinality(generate_series(5, 7)), 0) AS BIGINT))) AS \"ordinality\") AS \"generate_series\""
        );
    }

    #[test]
    fn using_joins_name_one_column() {
        // A full join's column is both sides'; `*` lists it first.
        assert_eq!(
            fixed("SELECT * FROM a FULL JOIN b USING (id) WHERE id > 4").unwrap(),
            "SELECT coalesce(a.id, b.id) AS id, a.* EXCLUDE (id), b.* EXCLUDE (id) FROM a FULL JOIN b USING(id) WHERE coalesce(a.id, b.id) > 4"
        );
        // A right join's is the right side's; a qualified name is kept,
        // and so is an ORDER BY of the result column.
        assert_eq!(
            fixed("SELECT id, a.id FROM t AS a RIGHT JOIN u b USING (id) GROUP BY id, a.id ORDER BY id").unwrap(),
            "SELECT b.id AS id, a.id FROM t AS a RIGHT JOIN u b USING(id) GROUP BY b.id, a.id ORDER BY id"
        );
        // Down a chain, a later join's ON and USING see the joined column;
        // a subquery's own names are its own.
        assert_eq!(
            fixed("SELECT k FROM a JOIN b USING (k) FULL JOIN c USING (k) JOIN d ON d.x = k WHERE EXISTS (SELECT 1 FROM e WHERE k = 1)").unwrap(),
            "SELECT coalesce(a.k, c.k) AS k FROM a JOIN b USING(k) FULL JOIN c USING(k) JOIN d ON d.x = coalesce(a.k, c.k) WHERE EXISTS (SELECT 1 FROM e WHERE k = 1)"
        );
        // A full join whose left side is a chain: the chain's own `k`.
        assert_eq!(
            fixed("SELECT m FROM a JOIN b ON a.x = b.x FULL JOIN c USING (m)").unwrap(),
            "SELECT coalesce(m, c.m) AS m FROM a JOIN b ON a.x = b.x FULL JOIN c USING(m)"
        );
        assert!(
            fixed("SELECT * FROM a JOIN b USING (k) LEFT JOIN c USING (k)")
                .unwrap_err()
                .to_string()
                .contains("SELECT * over a chain of joins")
        );
        assert!(
            fixed("SELECT * FROM a NATURAL FULL JOIN b")
                .unwrap_err()
                .to_string()
                .contains(
                    "a NATURAL LEFT, RIGHT or FULL join is supported only with every column named"
                )
        );
        assert!(fixed("SELECT a.x, b.y FROM a NATURAL LEFT JOIN b WHERE a.x > 1").is_ok());
        assert!(fixed("SELECT a.x FROM a NATURAL RIGHT JOIN b WHERE x > 1").is_err());
    }

    #[test]
    fn postgresql_forms_datafusion_refuses() {
        assert_eq!(
            fixed("SELECT variance(a), pg_catalog.VARIANCE(a) OVER (), s.variance(a), substring(s FROM '[0-9]+'), substring(s, 'a(b)'), substring(s FROM 2), substr(s, '2') FROM t FETCH FIRST 3 ROWS ONLY").unwrap(),
            "SELECT var_samp(a), var_samp(a) OVER (), s.variance(a), (regexp_match(s, '[0-9]+'))[1], (regexp_match(s, 'a(b)'))[1], SUBSTRING(s FROM 2), SUBSTR(s, '2') FROM t LIMIT 3"
        );
        assert_eq!(
            fixed("SELECT 1 FROM t WHERE s ILIKE ANY (ARRAY['%a%', 'b#_%']) OR s NOT LIKE ANY (ARRAY[]) OFFSET 2 ROWS FETCH FIRST ROW ONLY").unwrap_or_else(|e| e),
            "SELECT 1 FROM t WHERE (s ILIKE '%a%' OR s ILIKE 'b#_%') OR false LIMIT 1 OFFSET 2 ROWS"
        );
        assert_eq!(
            fixed("SELECT 1 FROM t WHERE s NOT ILIKE ALL (ARRAY['a%', 'b%']) AND s LIKE ALL (ARRAY[]) AND s LIKE SOME (ARRAY['c'])").unwrap(),
            "SELECT 1 FROM t WHERE (s NOT ILIKE 'a%' AND s NOT ILIKE 'b%') AND true AND (s LIKE 'c')"
        );
        // WITH TIES of a UNION stays DataFusion's refusal (a SELECT's is
        // ranked: `fetch_with_ties_ranks_by_the_sort_keys`).
        assert!(
            fixed("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1 FETCH FIRST 2 ROWS WITH TIES")
                .unwrap()
                .contains("WITH TIES")
        );
    }

    #[test]
    fn interval_literals_are_written_as_what_postgresql_reads() {
        assert_eq!(
            fixed("SELECT INTERVAL '02:30', CAST('1 day 01:00:00' AS INTERVAL), '1-2'::interval")
                .unwrap(),
            "SELECT INTERVAL '0 mons 0 days 9000000000 microseconds', \
             CAST('0 mons 1 days 3600000000 microseconds' AS INTERVAL), \
             '14 mons 0 days 0 microseconds'::INTERVAL"
        );
        let err = fixed("SELECT INTERVAL '10:60'").unwrap_err().to_string();
        assert!(err.contains("interval field value out of range"), "{err}");
        let err = fixed("SELECT INTERVAL '300 years 2600000 hours'")
            .unwrap_err()
            .to_string();
        assert!(err.contains("292 years"), "{err}");
    }

    #[test]
    fn numbers_with_an_exponent_are_written_out() {
        for (text, plain) in [
            ("1e15", Some("1000000000000000.")),
            ("2.5E-3", Some("0.0025")),
            (".5e2", Some("50.")),
            ("1.25e1", Some("12.5")),
            ("12e-2", Some("0.12")),
            ("1e+2", Some("100.")),
            ("0e5", Some("0.")),
            ("1e39", None),
            ("1.5", None),
        ] {
            assert_eq!(expand_exponent(text).as_deref(), plain, "{text}");
        }
        assert_eq!(
            fixed("SELECT f * 1e15 FROM t").unwrap(),
            "SELECT f * 1000000000000000. FROM t"
        );
    }

    #[test]
    fn is_distinct_from_takes_only_its_operand() {
        assert_eq!(
            fixed("SELECT 1 FROM t WHERE a IS DISTINCT FROM TRUE AND b < 5").unwrap(),
            "SELECT 1 FROM t WHERE a IS DISTINCT FROM true AND b < 5"
        );
        // The printed text looks the same; the tree is what changed.
        let mut s = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT 1 FROM t WHERE a IS NOT DISTINCT FROM 1 AND b OR c",
        )
        .unwrap()
        .remove(0);
        fix_sql(&mut s, DateOrder::Mdy).unwrap();
        let mut top = None;
        let _ = visit_expressions_mut(&mut s, |e: &mut Expr| {
            if top.is_none()
                && matches!(
                    e,
                    Expr::BinaryOp {
                        op: BinaryOperator::Or,
                        ..
                    }
                )
            {
                top = Some(e.clone());
            }
            ControlFlow::<()>::Continue(())
        });
        let Some(Expr::BinaryOp { left, .. }) = top else {
            panic!("no OR at the top")
        };
        let Expr::BinaryOp { left, op, .. } = *left else {
            panic!("no AND under the OR")
        };
        assert_eq!(op, BinaryOperator::And);
        assert!(matches!(*left, Expr::IsNotDistinctFrom(_, _)), "{left:?}");
        // Parentheses are kept.
        let mut s = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT 1 FROM t WHERE a IS DISTINCT FROM (TRUE AND b)",
        )
        .unwrap()
        .remove(0);
        let before = format!("{s:?}");
        fix_sql(&mut s, DateOrder::Mdy).unwrap();
        assert_eq!(format!("{s:?}"), before);
    }

    #[test]
    fn in_subqueries_whose_null_matters_are_spelt_out() {
        // Plain filters are DataFusion's semi / null-aware anti joins: kept.
        for sql in [
            "SELECT 1 FROM t WHERE a IN (SELECT b FROM u) AND c > 1",
            "SELECT 1 FROM t WHERE a NOT IN (SELECT b FROM u) AND c > 1",
            "SELECT 1 FROM t WHERE c > 1 OR (a IN (SELECT b FROM u))",
            "SELECT 1 FROM t GROUP BY a HAVING a IN (SELECT b FROM u)",
        ] {
            assert_eq!(fixed(sql).unwrap(), sql);
        }
        // A plain subquery gains `AND b IS NULL`.
        assert_eq!(
            fixed("SELECT 1 FROM t WHERE (a IN (SELECT b FROM u WHERE u.k = t.k)) IS NULL")
                .unwrap(),
            "SELECT 1 FROM t AS \"t__q1\" WHERE (((a IN (SELECT DISTINCT b FROM u WHERE u.k = \"t__q1\".k)) IS TRUE \
             OR (((a IS NULL AND EXISTS (SELECT b FROM u WHERE u.k = \"t__q1\".k)) \
             OR EXISTS (SELECT 1 FROM u WHERE (u.k = \"t__q1\".k) AND b IS NULL)) AND NULL))) IS NULL"
        );
        // NOT IN under OR, NOT (IN): negated; an aggregate is a derived table.
        assert_eq!(
            fixed("SELECT 1 FROM t WHERE c OR a NOT IN (SELECT max(b) FROM u)").unwrap(),
            "SELECT 1 FROM t WHERE c OR NOT (((a IN (SELECT max(b) FROM u)) IS TRUE \
             OR (((a IS NULL AND EXISTS (SELECT max(b) FROM u)) \
             OR EXISTS (SELECT 1 FROM (SELECT max(b) FROM u) AS __quipu_in (v) \
             WHERE __quipu_in.v IS NULL)) AND NULL)))"
        );
        let nested = fixed("SELECT 1 FROM t WHERE NOT (a IN (SELECT b FROM u))").unwrap();
        assert!(
            nested.starts_with("SELECT 1 FROM t WHERE NOT (((a IN"),
            "{nested}"
        );
        // Inside a subquery's own filter, its own context counts.
        let inner = fixed(
            "SELECT 1 FROM t WHERE a IN (SELECT b FROM u WHERE NOT (b IN (SELECT c FROM v)))",
        )
        .unwrap();
        assert!(
            inner.starts_with("SELECT 1 FROM t WHERE a IN (SELECT b FROM u WHERE NOT (((b IN"),
            "{inner}"
        );
    }

    #[test]
    fn composite_fields_by_dot_become_subscripts() {
        assert_eq!(
            fixed("SELECT (d.addr).city FROM t d WHERE (d.addr).zip = '1'").unwrap(),
            "SELECT (d.addr)['city'] FROM t d WHERE (d.addr)['zip'] = '1'"
        );
        let sql = "SELECT d.tags[1] FROM t d";
        assert_eq!(fixed(sql).unwrap(), sql);
    }
}
