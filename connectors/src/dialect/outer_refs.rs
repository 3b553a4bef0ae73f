//! A qualified name in a subquery that means a table of an outer query,
//! as PostgreSQL reads it.
//!
//! PostgreSQL reads `a.b` as column `b` of the nearest table named `a`,
//! in the subquery or in any query around it; a field of a composite
//! column is written `(a).b`. DataFusion 55
//! (`sql_compound_identifier_to_expr`) first looks for a *column* named
//! `a` in the subquery's own tables and reads `b` as its field, before it
//! looks at the outer query: `EXISTS (SELECT 1 FROM kinds k WHERE k.id =
//! d2.n)` over an outer `... AS d2` failed with "could not parse compound
//! identifier" when `kinds` has a column `d2` (issue 17's differential
//! test), and would read a MongoDB sub-document's field where it has one.
//!
//! Each table name that a subquery reaches outward for is renamed, where
//! it is defined and everywhere it is referred to, to a name no column
//! has (`d2__q1`); the meaning is unchanged and DataFusion's search finds
//! it only in the outer query. Names used only where they are defined are
//! left as the user wrote them.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, Expr, Ident, ObjectName, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, TableAlias, TableFactor, TableWithJoins, VisitMut, VisitorMut,
};

/// Renames the tables that subqueries of `s` refer to from inside.
pub fn rename<T: VisitMut>(s: &mut T) {
    let mut find = Scopes::default();
    let _ = s.visit(&mut find);
    if find.outer.is_empty() {
        return;
    }
    let mut apply = Scopes {
        renames: find
            .outer
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let new = format!("{}__q{}", key.1, i + 1);
                (key, new)
            })
            .collect(),
        ..Scopes::default()
    };
    let _ = s.visit(&mut apply);
}

/// A table as a FROM clause names it: the path a qualified column may
/// start with (`crm.public.customers`, `customers` or an alias), normalised
/// as DataFusion normalises identifiers.
struct Defined {
    path: Vec<String>,
}

enum Frame {
    /// A query starts: its selects are siblings (branches of a set
    /// operation), and the last one stays visible to the query's ORDER BY.
    Query,
    /// A select's FROM clause: its pre-order number and its tables.
    Select(usize, Vec<Defined>),
}

#[derive(Default)]
struct Scopes {
    stack: Vec<Frame>,
    /// Selects seen so far (pre-order), numbering them alike in both passes.
    selects: usize,
    /// Found by the first pass: (select, table name) reached from inside.
    outer: Vec<(usize, String)>,
    seen: HashSet<(usize, String)>,
    /// The second pass: the new name of each such table.
    renames: HashMap<(usize, String), String>,
}

fn norm(id: &Ident) -> String {
    match id.quote_style {
        Some(_) => id.value.clone(),
        None => id.value.to_lowercase(),
    }
}

fn path_of(name: &ObjectName) -> Option<Vec<String>> {
    name.0
        .iter()
        .map(|p| p.as_ident().map(norm))
        .collect::<Option<Vec<_>>>()
}

/// The tables a FROM item makes visible, with a mutable handle on each
/// one's alias (to rename it).
fn defined<'a>(t: &'a mut TableFactor, out: &mut Vec<(Vec<String>, AliasSlot<'a>)>) {
    match t {
        TableFactor::Table { name, alias, .. } => {
            let path = match alias {
                Some(a) => vec![norm(&a.name)],
                None => match path_of(name) {
                    Some(p) => p,
                    None => return,
                },
            };
            out.push((path, AliasSlot(alias)));
        }
        TableFactor::NestedJoin {
            table_with_joins,
            alias: None,
        } => from_item(table_with_joins, out),
        TableFactor::Derived { alias, .. }
        | TableFactor::TableFunction { alias, .. }
        | TableFactor::Function { alias, .. }
        | TableFactor::UNNEST { alias, .. }
        | TableFactor::JsonTable { alias, .. }
        | TableFactor::OpenJsonTable { alias, .. }
        | TableFactor::NestedJoin { alias, .. }
        | TableFactor::Pivot { alias, .. }
        | TableFactor::Unpivot { alias, .. }
        | TableFactor::MatchRecognize { alias, .. }
        | TableFactor::XmlTable { alias, .. }
        | TableFactor::SemanticView { alias, .. } => {
            if let Some(a) = alias {
                out.push((vec![norm(&a.name)], AliasSlot(alias)));
            }
        }
    }
}

fn from_item<'a>(t: &'a mut TableWithJoins, out: &mut Vec<(Vec<String>, AliasSlot<'a>)>) {
    defined(&mut t.relation, out);
    for j in &mut t.joins {
        defined(&mut j.relation, out);
    }
}

struct AliasSlot<'a>(&'a mut Option<TableAlias>);

/// How many leading parts of `ids` name the table `path` (a suffix of its
/// path: `customers.x` and `public.customers.x` both name
/// `crm.public.customers`), leaving at least a column.
fn matches(path: &[String], ids: &[String]) -> Option<usize> {
    (1..=path.len())
        .rev()
        .find(|&k| ids.len() > k && ids[..k] == path[path.len() - k..])
}

impl Scopes {
    /// The select (pre-order number) whose table `ids` starts with, the
    /// table's reference name and how many parts name it; and whether that
    /// select is an outer one.
    fn resolve(&self, ids: &[String]) -> Option<(usize, String, usize, bool)> {
        let mut innermost = true;
        for frame in self.stack.iter().rev() {
            let Frame::Select(n, tables) = frame else {
                continue;
            };
            for t in tables {
                if let Some(k) = matches(&t.path, ids) {
                    let name = t.path.last().cloned().unwrap_or_default();
                    return Some((*n, name, k, !innermost));
                }
            }
            innermost = false;
        }
        None
    }

    fn enter_select(&mut self, select: &mut Select) {
        // Siblings of a set operation are done: only the query's frame and
        // those around it stay visible.
        while matches!(self.stack.last(), Some(Frame::Select(..))) {
            self.stack.pop();
        }
        let n = self.selects;
        self.selects += 1;
        let mut slots = Vec::new();
        for t in &mut select.from {
            from_item(t, &mut slots);
        }
        let mut tables = Vec::with_capacity(slots.len());
        let mut renamed = Vec::new();
        for (path, slot) in slots {
            let name = path.last().cloned().unwrap_or_default();
            if let Some(new) = self.renames.get(&(n, name.clone())) {
                let ident = Ident::with_quote('"', new.clone());
                if let Some(alias) = slot.0.as_mut() {
                    alias.name = ident;
                } else {
                    *slot.0 = Some(TableAlias {
                        explicit: true,
                        name: ident,
                        columns: vec![],
                        at: None,
                    });
                }
                renamed.push((path.clone(), new.clone()));
            }
            tables.push(Defined { path });
        }
        // `t.*` of a renamed table in this select's own list.
        for item in &mut select.projection {
            if let SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(o), _) =
                item
                && let Some(p) = path_of(o)
                && let Some((_, new)) = renamed.iter().find(|(path, _)| path.ends_with(&p))
            {
                *o = ObjectName::from(vec![Ident::with_quote('"', new.clone())]);
            }
        }
        self.stack.push(Frame::Select(n, tables));
    }
}

impl VisitorMut for Scopes {
    type Break = ();

    fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.stack.push(Frame::Query);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        while let Some(Frame::Select(..)) = self.stack.pop() {}
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        self.enter_select(select);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        // `t.a[1]`: sqlparser reads it as an access chain from `t`, the
        // table being the root (the JDBC driver's `getIndexInfo` writes
        // `tmp.I_INDOPTION[...]`, with `tmp` renamed).
        if let Expr::CompoundFieldAccess { root, access_chain } = e
            && let Expr::Identifier(table) = root.as_mut()
            && let Some(AccessExpr::Dot(Expr::Identifier(column))) = access_chain.first()
        {
            let names = vec![norm(table), norm(column)];
            if let Some((n, name, 1, outer)) = self.resolve(&names) {
                let key = (n, name);
                if self.renames.is_empty() {
                    if outer && self.seen.insert(key.clone()) {
                        self.outer.push(key);
                    }
                } else if let Some(new) = self.renames.get(&key) {
                    *table = Ident::with_quote('"', new.clone());
                }
            }
            return ControlFlow::Continue(());
        }
        let Expr::CompoundIdentifier(ids) = e else {
            return ControlFlow::Continue(());
        };
        let names: Vec<String> = ids.iter().map(norm).collect();
        let Some((n, name, k, outer)) = self.resolve(&names) else {
            return ControlFlow::Continue(());
        };
        let key = (n, name);
        if self.renames.is_empty() {
            if outer && self.seen.insert(key.clone()) {
                self.outer.push(key);
            }
        } else if let Some(new) = self.renames.get(&key) {
            ids.drain(..k);
            ids.insert(0, Ident::with_quote('"', new.clone()));
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn renamed(sql: &str) -> String {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        super::rename(&mut s);
        s[0].to_string()
    }

    /// An array element of a renamed table's column is renamed too (it
    /// was left as `tmp.a[1]`: "No field named tmp.a").
    #[test]
    fn subscripts_of_a_renamed_tables_columns_follow_it() {
        assert_eq!(
            renamed(
                "SELECT (SELECT 1 FROM k WHERE k.id = tmp.n), tmp.a[tmp.n - 1] \
                 FROM (SELECT 1 AS n, ARRAY[1] AS a) AS tmp"
            ),
            "SELECT (SELECT 1 FROM k WHERE k.id = \"tmp__q1\".n), \"tmp__q1\".a[\"tmp__q1\".n - 1] \
             FROM (SELECT 1 AS n, ARRAY[1] AS a) AS \"tmp__q1\""
        );
    }

    #[test]
    fn an_outer_alias_reached_from_a_subquery_is_renamed_everywhere() {
        assert_eq!(
            renamed(
                "SELECT d2.n, d2.* FROM (SELECT 1 AS n) AS d2 WHERE EXISTS \
                 (SELECT 1 FROM kinds k WHERE k.id = d2.n) ORDER BY d2.n"
            ),
            "SELECT \"d2__q1\".n, \"d2__q1\".* FROM (SELECT 1 AS n) AS \"d2__q1\" WHERE EXISTS \
             (SELECT 1 FROM kinds k WHERE k.id = \"d2__q1\".n) ORDER BY \"d2__q1\".n"
        );
    }

    #[test]
    fn unaliased_tables_and_ctes_get_an_alias() {
        assert_eq!(
            renamed(
                "WITH d2 AS (SELECT 1 AS n) SELECT count(*) FROM d2, crm.public.orders \
                 WHERE orders.id IN (SELECT k.id FROM kinds k WHERE k.n = d2.n \
                 AND k.o = public.orders.id)"
            ),
            "WITH d2 AS (SELECT 1 AS n) SELECT count(*) FROM d2 AS \"d2__q1\", \
             crm.public.orders AS \"orders__q2\" WHERE \"orders__q2\".id IN (SELECT k.id \
             FROM kinds k WHERE k.n = \"d2__q1\".n AND k.o = \"orders__q2\".id)"
        );
    }

    #[test]
    fn local_names_shadowing_and_set_operations_are_left_alone() {
        // `k` is the subquery's own; the inner `d2` hides the outer one;
        // the union's second branch cannot see the first's `a`.
        for sql in [
            "SELECT a.x FROM t a WHERE a.x IN (SELECT k.y FROM kinds k)",
            "SELECT d2.x FROM t d2 WHERE EXISTS (SELECT 1 FROM u d2 WHERE d2.y = 1)",
            "SELECT a.x FROM t a UNION SELECT a.x FROM u a",
        ] {
            let parsed = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap()[0].to_string();
            assert_eq!(renamed(sql), parsed, "{sql}");
        }
    }
}
