//! The names PostgreSQL gives a query's result columns.
//!
//! DataFusion names an unaliased column after its expression:
//! `count(*)`, `Int64(1)`, `$1 || Utf8("x")`. PostgreSQL names it after the
//! function (`count`), the cast's type (`int4`), the column, or else
//! `?column?` (its parser's FigureColname), and clients read those names:
//! pandas' `read_sql` columns, psql's headers, `row["count"]` in psycopg
//! and asyncpg. The PostgreSQL front door names the fields it describes to
//! the client by these rules; the plan keeps DataFusion's (unique) names,
//! since PostgreSQL's may repeat (`SELECT 1, 2`: both `?column?`). Inside
//! a query, a derived table's or a `WITH` query's columns take these names
//! where they are unique (`crate::dialect::syntax`), so `SELECT count FROM
//! (SELECT count(*) FROM t) q` finds its column as in PostgreSQL.

use datafusion::sql::sqlparser::ast::{
    CastKind, DataType, Expr, Function, Ident, ObjectNamePart, Query, SelectItem, SetExpr,
    Statement, TableFactor, TrimWhereField,
};

/// PostgreSQL's names for the result columns of `statement`, when it is a
/// query: one per select item, None for a `*` or `t.*`, whose columns only
/// the plan knows (and name as PostgreSQL does). [`fitted`] spreads them
/// over the result's columns.
pub fn result_names(statement: &Statement) -> Option<Vec<Option<String>>> {
    let Statement::Query(q) = statement else {
        return None;
    };
    query_names(q)
}

fn query_names(q: &Query) -> Option<Vec<Option<String>>> {
    let mut body = q.body.as_ref();
    // A set operation's columns are named by its first branch.
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left,
            SetExpr::Query(q) => return query_names(q),
            SetExpr::Select(s) => {
                // `SELECT * FROM (subquery) q`, as BI tools wrap a query:
                // the subquery's names.
                if let [SelectItem::Wildcard(_)] = s.projection.as_slice()
                    && let [from] = s.from.as_slice()
                    && from.joins.is_empty()
                    && let TableFactor::Derived {
                        subquery, alias, ..
                    } = &from.relation
                    && alias.as_ref().is_none_or(|a| a.columns.is_empty())
                {
                    return query_names(subquery);
                }
                return Some(
                    s.projection
                        .iter()
                        .map(|item| match item {
                            SelectItem::UnnamedExpr(e) => Some(figure(e).0),
                            SelectItem::ExprWithAlias { alias, .. } => Some(ident(alias)),
                            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => None,
                            // `AS (a, b)`: one name per column it makes.
                            SelectItem::ExprWithAliases { .. } => None,
                        })
                        .collect(),
                );
            }
            _ => return None,
        }
    }
}

/// The names of a result of `columns` columns: the select items' before
/// the first `*` name the first columns, those after the last `*` the
/// last ones; the columns a `*` lists (and any item between two of them)
/// keep the plan's names (None). None when the items cannot be the
/// columns (more named items than columns, or no `*` and another count).
pub fn fitted(names: &[Option<String>], columns: usize) -> Option<Vec<Option<String>>> {
    let first = names.iter().position(Option::is_none);
    let Some(first) = first else {
        return (names.len() == columns).then(|| names.to_vec());
    };
    let last = names.iter().rposition(Option::is_none).expect("one is");
    let after = &names[last + 1..];
    if first + after.len() > columns {
        return None;
    }
    let mut out = names[..first].to_vec();
    out.resize(columns - after.len(), None);
    out.extend_from_slice(after);
    Some(out)
}

/// An identifier as PostgreSQL keeps it: folded to lower case unless quoted.
fn ident(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// PostgreSQL's FigureColnameInternal: a name and how strong it is (2: a
/// column or function name, 1: a type name or `case`, 0: `?column?`).
pub fn figure(e: &Expr) -> (String, u8) {
    let named = |s: &str| (s.to_string(), 2);
    match e {
        Expr::Identifier(i) => (ident(i), 2),
        Expr::CompoundIdentifier(parts) => parts.last().map_or(unnamed(), |i| (ident(i), 2)),
        Expr::CompoundFieldAccess { root, access_chain } => match access_chain.last() {
            Some(datafusion::sql::sqlparser::ast::AccessExpr::Dot(Expr::Identifier(i))) => {
                (ident(i), 2)
            }
            _ => figure(root),
        },
        Expr::Nested(inner) | Expr::Collate { expr: inner, .. } => figure(inner),
        Expr::Function(f) => function(f),
        Expr::Cast {
            kind,
            expr,
            data_type,
            ..
        } => {
            let (name, strength) = figure(expr);
            if strength > 1 || matches!(kind, CastKind::TryCast | CastKind::SafeCast) {
                (name, strength)
            } else {
                (type_name(data_type), 1)
            }
        }
        Expr::TypedString(t) => (type_name(&t.data_type), 1),
        Expr::Interval(_) => ("interval".into(), 1),
        Expr::Case { else_result, .. } => match else_result.as_deref().map(figure) {
            Some((name, strength)) if strength > 1 => (name, strength),
            _ => ("case".into(), 1),
        },
        Expr::Exists { .. } => named("exists"),
        Expr::Subquery(q) => match query_names(q).and_then(|n| n.into_iter().next().flatten()) {
            Some(name) if name != "?column?" => (name, 2),
            _ => unnamed(),
        },
        Expr::Array(_) => named("array"),
        Expr::Tuple(_) => named("row"),
        Expr::Extract { .. } => named("extract"),
        Expr::Ceil { .. } => named("ceil"),
        Expr::Floor { .. } => named("floor"),
        Expr::Position { .. } => named("position"),
        // `substr(s, 2, 3)` is its own function in PostgreSQL.
        Expr::Substring {
            shorthand: true, ..
        } => named("substr"),
        Expr::Substring { .. } => named("substring"),
        Expr::Overlay { .. } => named("overlay"),
        Expr::AtTimeZone { .. } => named("timezone"),
        Expr::Trim { trim_where, .. } => named(match trim_where {
            Some(TrimWhereField::Leading) => "ltrim",
            Some(TrimWhereField::Trailing) => "rtrim",
            _ => "btrim",
        }),
        _ => unnamed(),
    }
}

fn unnamed() -> (String, u8) {
    ("?column?".into(), 0)
}

fn function(f: &Function) -> (String, u8) {
    let last = f.name.0.last().and_then(|p| match p {
        ObjectNamePart::Identifier(i) => Some(ident(i)),
        _ => None,
    });
    match last.as_deref() {
        // Keywords PostgreSQL's grammar turns into other nodes.
        Some("coalesce") => ("coalesce".into(), 2),
        Some("greatest" | "least" | "nullif") => (last.unwrap_or_default(), 2),
        // `x = ANY (array)`, which PostgreSQL leaves unnamed.
        Some(super::arrays::QUANTIFIED) => unnamed(),
        Some(name) => (name.to_string(), 2),
        None => unnamed(),
    }
}

/// A type's internal PostgreSQL name, as a cast's column is named.
fn type_name(t: &DataType) -> String {
    let text = t.to_string().to_lowercase();
    let base = text
        .trim_end_matches("[]")
        .split('(')
        .next()
        .unwrap_or_default()
        .trim();
    match base {
        "bigint" | "int8" => "int8",
        "int" | "integer" | "int4" => "int4",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "double precision" | "double" | "float" | "float8" => "float8",
        "boolean" | "bool" => "bool",
        "decimal" | "numeric" => "numeric",
        "character varying" | "varchar" => "varchar",
        "character" | "char" => "bpchar",
        "timestamp with time zone" | "timestamptz" => "timestamptz",
        "timestamp without time zone" | "timestamp" => "timestamp",
        "time without time zone" | "time" => "time",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Option<Vec<String>> {
        all_names(sql)?.into_iter().collect()
    }

    fn all_names(sql: &str) -> Option<Vec<Option<String>>> {
        use datafusion::sql::sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        result_names(&statements[0])
    }

    #[test]
    fn as_postgresql_names_them() {
        // Each expected name is what PostgreSQL 16 answers.
        let cases = [
            (
                "SELECT count(*), 1, 'x', 1 + 2",
                vec!["count", "?column?", "?column?", "?column?"],
            ),
            (
                "SELECT a, t.b, \"Mixed\", Upper(c) FROM t",
                vec!["a", "b", "Mixed", "upper"],
            ),
            (
                "SELECT 1::bigint, CAST(2 AS INTEGER), a::text, '2024-01-01'::date",
                vec!["int8", "int4", "a", "date"],
            ),
            (
                "SELECT DATE '2024-01-01', CAST(1.5 AS NUMERIC(10, 2)), 2.5::double precision",
                vec!["date", "numeric", "float8"],
            ),
            (
                "SELECT CASE WHEN a THEN 1 END, CASE WHEN a THEN 1 ELSE b END",
                vec!["case", "b"],
            ),
            (
                "SELECT EXTRACT(YEAR FROM d), COALESCE(a, 0), (SELECT max(x) FROM u), EXISTS (SELECT 1)",
                vec!["extract", "coalesce", "max", "exists"],
            ),
            (
                "SELECT trim(' a '), substring('abc' FROM 1 FOR 2), a IS NULL, pg_catalog.version(), substr('abc', 2)",
                vec!["btrim", "substring", "?column?", "version", "substr"],
            ),
            ("SELECT 1 AS One, 2 AS \"Two\"", vec!["one", "Two"]),
            ("SELECT a FROM t UNION SELECT count(*) FROM u", vec!["a"]),
        ];
        for (sql, want) in cases {
            assert_eq!(
                names(sql),
                Some(want.iter().map(|s| s.to_string()).collect()),
                "{sql}"
            );
        }
        // A `*` expands to columns only the plan knows: DataFusion's names
        // for those, PostgreSQL's for the items around.
        let some = |s: &str| Some(s.to_string());
        let star = all_names("SELECT a + 1, *, 1, count(*) FROM t").unwrap();
        assert_eq!(
            star,
            vec![some("?column?"), None, some("?column?"), some("count")]
        );
        assert_eq!(
            fitted(&star, 5),
            Some(vec![
                some("?column?"),
                None,
                None,
                some("?column?"),
                some("count")
            ])
        );
        assert_eq!(fitted(&star, 2), None);
        let two = all_names("SELECT t.*, 1, u.*, u.x FROM t, u").unwrap();
        assert_eq!(
            fitted(&two, 5),
            Some(vec![None, None, None, None, some("x")])
        );
        assert_eq!(fitted(&[some("a")], 2), None);
        // Over one derived table, its names (PostgreSQL 15: count, count,
        // ?column?).
        assert_eq!(
            names("SELECT * FROM (SELECT count(*), count(i), i + 1 FROM t) q"),
            Some(vec!["count".into(), "count".into(), "?column?".into()])
        );
        assert_eq!(names("SHOW ALL"), None);
    }
}
