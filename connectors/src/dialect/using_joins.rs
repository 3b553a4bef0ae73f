//! `JOIN ... USING (k)` as PostgreSQL joins it (issue 22): one column `k`
//! in place of the two, which is the left side's `k` in an inner or left
//! join, the right side's in a right join and `COALESCE(l.k, r.k)` in a
//! full join; `SELECT *` lists the `USING` columns first.
//!
//! DataFusion 55 keeps both columns and reads an unqualified `k` as the
//! left one (the one whose qualifier sorts first in `SELECT *`):
//!
//! - `SELECT * FROM a FULL JOIN b USING (id)` and `RIGHT JOIN` answered
//!   NULL for `id` in the rows only `b` has, and `GROUP BY id` put them
//!   in one group: silent wrong answers;
//! - `SELECT * FROM z LEFT JOIN b USING (id)` took `b.id` (`b` sorts
//!   before `z`), NULL in the rows `b` lacks, and listed it after `z`'s
//!   columns;
//! - `WHERE id > 4` was refused ("Ambiguous reference to unqualified field
//!   id"), and `SELECT id, a.id, b.id` too ("Projections require unique
//!   expression names").
//!
//! [`UsingJoins`] writes the joined column out where the query names it
//! unqualified (its select list, `WHERE`, `GROUP BY`, `HAVING`, later
//! joins' `ON`, and an `ORDER BY` that is not of a result column), and
//! spells `SELECT *` over one such join as PostgreSQL lists it: `<k> AS
//! k, l.* EXCLUDE (k), r.* EXCLUDE (k)`. It needs to know which relation
//! each side is: where the left side is itself a join (`a JOIN b ON ...
//! FULL JOIN c USING (k)`), its `k` is the chain's one column of that
//! name, which DataFusion reads unqualified (`COALESCE(k, c.k)`), and
//! `SELECT *` is spelt out only over one join: over a chain with an outer
//! `USING` join it is refused (`0A000`), since DataFusion's may show a
//! column the join left NULL. A `NATURAL` join's columns only the schemas
//! know: an inner one
//! is left to DataFusion (its values are the same), an outer one is
//! refused (`0A000`), where DataFusion answered NULL for the joined
//! column as above.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    ExcludeSelectItem, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, GroupByExpr, Ident, JoinConstraint, JoinOperator, ObjectName,
    ObjectNamePart, OrderByKind, Query, Select, SelectItem, SelectItemQualifiedWildcardKind,
    SetExpr, TableFactor, VisitMut, VisitorMut, WildcardAdditionalOptions,
};

use super::syntax::normalized;

#[derive(Default)]
pub struct UsingJoins {
    /// The refusal of a `NATURAL` outer join, if the statement has one.
    pub refused: Option<datafusion::error::DataFusionError>,
}

impl VisitorMut for UsingJoins {
    type Break = ();

    fn post_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        let natural_outer = select.from.iter_mut().flat_map(|f| &mut f.joins).any(|j| {
            matches!(
                kind_of(&mut j.join_operator),
                Some((
                    Kind::Left | Kind::Right | Kind::Full,
                    JoinConstraint::Natural
                ))
            )
        });
        if natural_outer && names_unqualified(select) {
            self.refused = Some(crate::error::DataException::error(
                "0A000",
                "a NATURAL LEFT, RIGHT or FULL join is supported only with every column named \
                 by its table (`a.x`, no `*`): write the join with USING (the columns both \
                 sides share)",
            ));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        let SetExpr::Select(select) = q.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        let joined = match rewrite(select) {
            Ok(joined) => joined,
            Err(e) => {
                self.refused = Some(e);
                return ControlFlow::Break(());
            }
        };
        // An `ORDER BY k` that is not of a result column named `k`.
        if !joined.is_empty()
            && let Some(order) = &mut q.order_by
            && let OrderByKind::Expressions(keys) = &mut order.kind
        {
            let shown: Vec<String> = select.projection.iter().filter_map(shown_name).collect();
            let joined: Vec<(String, Expr)> = joined
                .into_iter()
                .filter(|(k, _)| !shown.contains(k))
                .collect();
            for key in keys {
                substitute(&mut key.expr, &joined);
            }
        }
        ControlFlow::Continue(())
    }
}

/// Whether a `SELECT` names a column without its table (or lists `*`)
/// in its own clauses: over a `NATURAL` join, Quipu cannot tell such a
/// name from the joined columns, which only the schemas know.
fn names_unqualified(select: &mut Select) -> bool {
    let mut found = false;
    let mut bare = |e: &mut Expr| found |= matches!(e, Expr::Identifier(_));
    for item in &mut select.projection {
        match item {
            SelectItem::Wildcard(_) => return true,
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                own_exprs(e, &mut bare)
            }
            _ => {}
        }
    }
    for e in select.selection.iter_mut().chain(select.having.iter_mut()) {
        own_exprs(e, &mut bare);
    }
    if let GroupByExpr::Expressions(keys, _) = &mut select.group_by {
        for k in keys {
            own_exprs(k, &mut bare);
        }
    }
    found
}

/// The name a select item shows (lower-cased as PostgreSQL folds it).
fn shown_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(normalized(alias)),
        SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(normalized(i)),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last().map(normalized),
        _ => None,
    }
}

/// The name a relation's columns are qualified by (its alias, or the
/// table's name); None for a nested join or an unnamed relation.
fn qualifier(t: &TableFactor) -> Option<Vec<Ident>> {
    match t {
        TableFactor::Table { alias: Some(a), .. }
        | TableFactor::Derived { alias: Some(a), .. }
        | TableFactor::Function { alias: Some(a), .. }
        | TableFactor::UNNEST { alias: Some(a), .. } => Some(vec![a.name.clone()]),
        TableFactor::Table {
            name, alias: None, ..
        } => name
            .0
            .iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(i) => Some(i.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn column(of: &[Ident], k: &Ident) -> Expr {
    let mut parts = of.to_vec();
    parts.push(k.clone());
    Expr::CompoundIdentifier(parts)
}

fn coalesce(a: Expr, b: Expr) -> Expr {
    let arg = |e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e));
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new("coalesce")]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![arg(a), arg(b)],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// Rewrites one `SELECT`; returns the joined columns (name, expression).
fn rewrite(select: &mut Select) -> datafusion::error::Result<Vec<(String, Expr)>> {
    // Each FROM item's joined columns, and its wildcard form when it is
    // one USING join of two named relations.
    let mut joined: Vec<(String, Expr)> = Vec::new();
    let mut star: Option<Vec<SelectItem>> = None;
    // An outer USING join `*` is not spelt out for.
    let mut outer = false;
    let single = select.from.len() == 1;
    for from in &mut select.from {
        let mut left = qualifier(&from.relation);
        let mut chain: Vec<(String, Expr)> = Vec::new();
        let one_join = from.joins.len() == 1;
        for join in &mut from.joins {
            let right = qualifier(&join.relation);
            let (kind, keys) = match kind_of(&mut join.join_operator) {
                // Later joins' ON conditions see the joined columns.
                Some((_, JoinConstraint::On(on))) => {
                    substitute(on, &chain);
                    left = None;
                    continue;
                }
                Some((kind, JoinConstraint::Using(keys))) => (
                    kind,
                    keys.iter()
                        .filter_map(|k| match k.0.as_slice() {
                            [ObjectNamePart::Identifier(i)] => Some(i.clone()),
                            _ => None,
                        })
                        .collect::<Vec<Ident>>(),
                ),
                _ => {
                    left = None;
                    continue;
                }
            };
            outer |= !matches!(kind, Kind::Inner);
            let mut merged_all = true;
            for k in &keys {
                let name = normalized(k);
                let before = chain.iter().position(|(n, _)| *n == name);
                let l = match (&before, &left) {
                    (Some(i), _) => Some(chain[*i].1.clone()),
                    (None, Some(l)) => Some(column(l, k)),
                    _ => None,
                };
                let r = right.as_ref().map(|r| column(r, k));
                let merged = match (kind, l, r) {
                    (Kind::Inner | Kind::Left, Some(l), _) => l,
                    (Kind::Right, _, Some(r)) => r,
                    (Kind::Full, Some(l), Some(r)) => coalesce(l, r),
                    // The left side is a chain of joins: its `k` is the one
                    // column of that name there, which DataFusion reads
                    // unqualified as the left one.
                    (Kind::Full, None, Some(r)) => coalesce(Expr::Identifier(k.clone()), r),
                    _ => {
                        merged_all = false;
                        continue;
                    }
                };
                match before {
                    Some(i) => chain[i].1 = merged,
                    None => chain.push((name, merged)),
                }
            }
            if single
                && one_join
                && merged_all
                && !keys.is_empty()
                && let (Some(l), Some(r)) = (&left, &right)
            {
                let exclude = || WildcardAdditionalOptions {
                    opt_exclude: Some(ExcludeSelectItem::Multiple(
                        keys.iter()
                            .map(|k| ObjectName::from(vec![k.clone()]))
                            .collect(),
                    )),
                    ..Default::default()
                };
                let mut items: Vec<SelectItem> = chain
                    .iter()
                    .zip(&keys)
                    .map(|((_, e), k)| SelectItem::ExprWithAlias {
                        expr: e.clone(),
                        alias: k.clone(),
                    })
                    .collect();
                for side in [l, r] {
                    items.push(SelectItem::QualifiedWildcard(
                        SelectItemQualifiedWildcardKind::ObjectName(ObjectName::from(side.clone())),
                        exclude(),
                    ));
                }
                star = Some(items);
                outer = false;
            }
            left = None;
        }
        joined.extend(chain);
    }
    let wildcard = select
        .projection
        .iter()
        .any(|i| matches!(i, SelectItem::Wildcard(_)));
    if wildcard && outer && star.is_none() {
        // DataFusion's `*` keeps the column whose qualifier sorts first,
        // which an outer join may have left NULL.
        return Err(crate::error::DataException::error(
            "0A000",
            "SELECT * over a chain of joins with a LEFT, RIGHT or FULL JOIN ... USING is not \
             supported: name the columns (the USING column unqualified, the others by their \
             table)",
        ));
    }
    if joined.is_empty() {
        return Ok(joined);
    }
    substitute_select(select, &joined);
    if let Some(star) = star {
        let mut projection = Vec::with_capacity(select.projection.len() + star.len());
        for item in std::mem::take(&mut select.projection) {
            match item {
                SelectItem::Wildcard(options)
                    if options == WildcardAdditionalOptions::default() =>
                {
                    projection.extend(star.iter().cloned())
                }
                other => projection.push(other),
            }
        }
        select.projection = projection;
    }
    Ok(joined)
}

#[derive(Clone, Copy)]
enum Kind {
    Inner,
    Left,
    Right,
    Full,
}

/// A join's kind and its constraint (`ON`, `USING`, `NATURAL`), for the
/// kinds a `USING` or `NATURAL` join can have.
fn kind_of(op: &mut JoinOperator) -> Option<(Kind, &mut JoinConstraint)> {
    Some(match op {
        JoinOperator::Join(c) | JoinOperator::Inner(c) => (Kind::Inner, c),
        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (Kind::Left, c),
        JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (Kind::Right, c),
        JoinOperator::FullOuter(c) => (Kind::Full, c),
        _ => return None,
    })
}

/// Puts `names`' expressions in place of the unqualified names in a
/// `SELECT`'s own clauses: its select list (an item that is the bare name
/// keeps it as its column's name), `WHERE`, `HAVING`, `QUALIFY` and `GROUP
/// BY`. `ORDER BY` is the query's, left to the caller.
pub(super) fn substitute_select(select: &mut Select, names: &[(String, Expr)]) {
    for item in &mut select.projection {
        match item {
            SelectItem::UnnamedExpr(Expr::Identifier(i))
                if let Some((_, e)) = names.iter().find(|(n, _)| *n == normalized(i)) =>
            {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: i.clone(),
                };
            }
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                substitute(e, names)
            }
            _ => {}
        }
    }
    for e in select
        .selection
        .iter_mut()
        .chain(select.having.iter_mut())
        .chain(select.qualify.iter_mut())
    {
        substitute(e, names);
    }
    if let GroupByExpr::Expressions(keys, _) = &mut select.group_by {
        for k in keys {
            substitute(k, names);
        }
    }
}

/// Puts the joined columns' expressions in place of their unqualified
/// names in `e`, not inside its subqueries (whose names are their own).
pub(super) fn substitute(e: &mut Expr, joined: &[(String, Expr)]) {
    if joined.is_empty() {
        return;
    }
    own_exprs(e, &mut |x| {
        if let Expr::Identifier(i) = x
            && let Some((_, j)) = joined.iter().find(|(n, _)| *n == normalized(i))
        {
            *x = j.clone();
        }
    });
}

/// Calls `f` on each expression of `e`, bottom up, but not on those inside
/// its subqueries, which have names of their own.
fn own_exprs(e: &mut Expr, f: &mut impl FnMut(&mut Expr)) {
    struct Own<'a, F> {
        f: &'a mut F,
        depth: usize,
    }
    impl<F: FnMut(&mut Expr)> VisitorMut for Own<'_, F> {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if self.depth == 0 {
                (self.f)(e);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = e.visit(&mut Own { f, depth: 0 });
}
