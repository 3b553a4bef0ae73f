//! Client catalog queries that datafusion-pg-catalog's parser leaves in a
//! form DataFusion cannot plan, rewritten after it:
//!
//! - A column compared with an array literal, `polroles <> '{0}'` (psql's
//!   `\dp`): PostgreSQL reads the literal as the column's array type,
//!   DataFusion cannot compare a list with text. A literal of integers
//!   compared with a column becomes `ARRAY[0]` ([`array_literals`]).
//! - Scalar subqueries in the select list of a query that reads no
//!   system table ([`parse_user_sql`]): datafusion-pg-catalog's parser
//!   replaced a correlated one with NULL and cut an uncorrelated one to its
//!   first row.
//! - `'name'::regproc` compared with a `regproc` column of `pg_type`
//!   ([`regproc_names`]). datafusion-pg-catalog keeps `pg_type.typinput` (and the other `regproc`
//!   columns) as the function's name, which is how PostgreSQL shows them,
//!   while its parser turns `'pg_catalog.array_in'::regproc` into a lookup of
//!   `pg_proc.oid` by `proname` (an integer, and none at all for a
//!   schema-qualified name). The JDBC driver's type lookup, behind
//!   `getTypeInfo`, `getVersionColumns` and every `ResultSetMetaData` of an
//!   unknown type, asks `typinput = 'pg_catalog.array_in'::regproc`; it
//!   failed ("Cannot cast string 'boolin' to value of Int32 type"). Compared
//!   with such a column, the cast operand is compared as the name it is,
//!   without its `pg_catalog.` schema (all of them are there).
//! - `ARRAY(SELECT ... FROM pg_policy ...)`, psql's `\dp` "Policies"
//!   column ([`empty_policies`]). Quipu has no row security policies, so
//!   the array is empty; but psql's subquery nests another, correlated by
//!   `oid = ANY (polroles)`, which DataFusion 55 cannot decorrelate, and
//!   `\dp` failed with `0A000`. The array is written as the empty one.

use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock};

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_pg_catalog::sql::rules::{self as pg_rules, SqlStatementRewriteRule};

use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, BinaryOperator, CastKind, DataType, Expr, FunctionArguments, ObjectNamePart,
    Query, SelectItem, SetExpr, Statement, TableFactor, Value, visit_expressions_mut,
};

/// `pg_catalog` views Quipu adds to datafusion-pg-catalog's (see
/// `catalog.rs`), which its parser does not know to qualify.
const QUIPU_SYSTEM_VIEWS: &[&str] = &["pg_indexes"];

/// An unqualified name of [`QUIPU_SYSTEM_VIEWS`] as `pg_catalog.` it: in
/// PostgreSQL `pg_catalog` comes first in every search path (DuckDB's
/// postgres extension reads `FROM pg_indexes`, which was "table
/// 'quipu.public.pg_indexes' not found").
pub(super) fn system_views(stmt: &mut Statement) {
    let _ = datafusion::sql::sqlparser::ast::visit_relations_mut(stmt, |name| {
        if let [ObjectNamePart::Identifier(table)] = name.0.as_slice()
            && QUIPU_SYSTEM_VIEWS.contains(&table.value.to_ascii_lowercase().as_str())
        {
            name.0.insert(
                0,
                ObjectNamePart::Identifier(datafusion::sql::sqlparser::ast::Ident::new(
                    "pg_catalog",
                )),
            );
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Rewrites `column op '{1,2}'` (either side, any comparison) to
/// `column op ARRAY[1, 2]` when the literal is an array of integers.
pub(super) fn array_literals(stmt: &mut Statement) {
    let _ = visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::BinaryOp {
            left,
            op:
                BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq,
            right,
        } = e
        {
            let column = |e: &Expr| matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
            if column(left)
                && let Some(array) = int_array(right)
            {
                **right = array;
            } else if column(right)
                && let Some(array) = int_array(left)
            {
                **left = array;
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `'{1,-2}'` as `ARRAY[1, -2]`; None for any other expression (`'{}'`
/// included: its element type is not known).
fn int_array(e: &Expr) -> Option<Expr> {
    let Expr::Value(v) = e else {
        return None;
    };
    let Value::SingleQuotedString(text) = &v.value else {
        return None;
    };
    let items = text.strip_prefix('{')?.strip_suffix('}')?;
    let items: Vec<i64> = items
        .split(',')
        .map(|i| i.trim().parse().ok())
        .collect::<Option<_>>()?;
    Some(Expr::Array(datafusion::sql::sqlparser::ast::Array {
        elem: items
            .into_iter()
            .map(|i| Expr::Value(Value::Number(i.to_string(), false).into()))
            .collect(),
        named: true,
    }))
}

/// Every `ARRAY(subquery)` whose subquery reads only `pg_policy` as the
/// empty text array (see the module doc). Text, because the one client
/// query known to ask (psql's `\dp`) builds each element by concatenating
/// text.
pub(super) fn empty_policies(stmt: &mut Statement) {
    let _ = visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::Function(f) = e
            && f.name.to_string().eq_ignore_ascii_case("array")
            && let FunctionArguments::Subquery(query) = &f.args
            && reads_only_policies(query)
        {
            *e = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(Expr::Array(datafusion::sql::sqlparser::ast::Array {
                    elem: vec![],
                    named: true,
                })),
                data_type: DataType::Array(ArrayElemTypeDef::SquareBracket(
                    Box::new(DataType::Text),
                    None,
                )),
                array: false,
                format: None,
            };
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Whether a query is one `SELECT` from `pg_policy` alone.
fn reads_only_policies(query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let [from] = select.from.as_slice() else {
        return false;
    };
    let TableFactor::Table { name, .. } = &from.relation else {
        return false;
    };
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|part| part.to_string().to_ascii_lowercase())
        .collect();
    from.joins.is_empty()
        && matches!(
            parts
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice(),
            ["pg_policy"] | ["pg_catalog", "pg_policy"]
        )
}

/// The `regproc` columns of `pg_type`, which hold function names here.
const REGPROC_COLUMNS: &[&str] = &[
    "typinput",
    "typoutput",
    "typreceive",
    "typsend",
    "typmodin",
    "typmodout",
    "typanalyze",
    "typsubscript",
];

/// Rewrites the statement's comparisons of a `regproc` column with a
/// `'name'::regproc` (as datafusion-pg-catalog's parser left it) to
/// comparisons of names.
pub(super) fn regproc_names(stmt: &mut Statement) {
    let _ = visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq | BinaryOperator::NotEq,
            right,
        } = e
        {
            if is_regproc_column(left)
                && let Some(n) = proc_lookup(right)
            {
                **right = Expr::Value(Value::SingleQuotedString(n).into());
            } else if is_regproc_column(right)
                && let Some(n) = proc_lookup(left)
            {
                **left = Expr::Value(Value::SingleQuotedString(n).into());
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

fn is_regproc_column(e: &Expr) -> bool {
    let name = match e {
        Expr::Identifier(i) => i,
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => i,
            None => return false,
        },
        _ => return false,
    };
    REGPROC_COLUMNS
        .iter()
        .any(|c| name.value.eq_ignore_ascii_case(c))
}

/// The name in `(SELECT oid FROM pg_catalog.pg_proc WHERE proname = 'name')`,
/// datafusion-pg-catalog's spelling of `'name'::regproc`, without a
/// `pg_catalog.` schema.
fn proc_lookup(e: &Expr) -> Option<String> {
    let Expr::Subquery(q) = e else {
        return None;
    };
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    let projects_oid = matches!(select.projection.as_slice(),
        [SelectItem::UnnamedExpr(Expr::Identifier(i))] if i.value.eq_ignore_ascii_case("oid"));
    let from_pg_proc = matches!(select.from.as_slice(), [t] if t.joins.is_empty()
        && matches!(&t.relation, TableFactor::Table { name, .. }
            if name.0.last().and_then(ObjectNamePart::as_ident)
                .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_proc"))));
    if !projects_oid || !from_pg_proc {
        return None;
    }
    let Some(Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    }) = &select.selection
    else {
        return None;
    };
    let (Expr::Identifier(column), Expr::Value(v)) = (left.as_ref(), right.as_ref()) else {
        return None;
    };
    let Value::SingleQuotedString(name) = &v.value else {
        return None;
    };
    if !column.value.eq_ignore_ascii_case("proname") {
        return None;
    }
    Some(name.strip_prefix("pg_catalog.").unwrap_or(name).to_string())
}

/// The rewrites of datafusion-pg-catalog's parser, without
/// `RemoveSubqueryFromProjection`. That rule exists for client catalog
/// queries DataFusion could not plan: it replaces a correlated scalar
/// subquery of a select list with NULL and adds `LIMIT 1` to an
/// uncorrelated one. On an analyst's query it gave wrong answers: `SELECT
/// c.name, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) FROM
/// customers c` answered NULL counts over the PostgreSQL front door (the
/// engine runs it: `quipu_connectors::dialect::single_row`), and a
/// subquery of two rows answered its first row where PostgreSQL fails
/// (`21000`, as Quipu now does too). Nor `StripCollate`, which dropped
/// every `COLLATE` unread: the engine keeps the byte-order ones and
/// refuses the others by name (`quipu_connectors::dialect::syntax`). Nor
/// `FixArrayLiteral` and `RewriteArrayAnyAllOperation`, which split array
/// text at every comma: `'{a,"b,c"}'::text[]` had four elements, `NULL`
/// was the text `NULL`, `'{t,f}'::bool[]` failed ("Cannot parse t as
/// BigDecimal"), and `'x' = ANY ('{a,NULL}')` was false where PostgreSQL
/// says NULL. The engine reads array text as `array_in` does
/// (`quipu_connectors::dialect::array_text`).
static USER_RULES: LazyLock<Vec<Arc<dyn SqlStatementRewriteRule>>> = LazyLock::new(|| {
    vec![
        Arc::new(pg_rules::AliasDuplicatedProjectionRewrite),
        Arc::new(pg_rules::ResolveUnqualifiedIdentifier),
        Arc::new(pg_rules::PrependUnqualifiedPgTableName),
        Arc::new(pg_rules::StripCallableQualifier),
        Arc::new(pg_rules::CurrentUserVariableToSessionUserFunctionCall),
        Arc::new(pg_rules::RewritePgCatalogOperator),
        Arc::new(pg_rules::RewriteRegCastToSubquery::new()),
        Arc::new(pg_rules::FixVersionColumnName),
    ]
});

/// Statements that read no system table, parsed with [`USER_RULES`]; None
/// when the text reads one (`pg_catalog`, `information_schema`, a `pg_*`
/// table) or does not parse as it is: datafusion-pg-catalog's parser then
/// reads it whole, with its substitutions of client catalog queries.
pub(super) fn parse_user_sql(sql: &str) -> Option<Vec<Statement>> {
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let system = statements.iter().any(|s| {
        datafusion::sql::sqlparser::ast::visit_relations(s, |name| {
            let parts: Vec<String> = name
                .0
                .iter()
                .filter_map(|p| p.as_ident())
                .map(|i| i.value.to_ascii_lowercase())
                .collect();
            let system_schema = parts
                .iter()
                .any(|p| p == "pg_catalog" || p == "information_schema");
            let pg_table = parts.len() == 1 && parts[0].starts_with("pg_");
            if system_schema || pg_table {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .is_break()
    });
    if system {
        return None;
    }
    Some(
        statements
            .into_iter()
            .map(|mut s| {
                quipu_connectors::dialect::syntax::quantified_subqueries(&mut s);
                USER_RULES.iter().fold(s, |s, rule| rule.rewrite(s))
            })
            .collect(),
    )
}

/// `pg_get_indexdef(oid [, column, pretty])` of a primary key's index
/// (see `catalog.rs`): the whole definition (column 0, or none given,
/// `pg_catalog.quipu_indexdefs`), or the key's `column`-th column
/// (`quipu_indexcols`), NULL for any other oid or column. psql's `\d
/// table` prints what follows `USING` in the first; the JDBC driver's
/// `getIndexInfo` reads each column's name from the second. A subquery
/// correlated by equalities, which DataFusion decorrelates into a join;
/// the function itself cannot read the catalog.
pub(super) fn index_definitions(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr};
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::Function(f) = e
            && f.name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_get_indexdef"))
            && let FunctionArguments::List(list) = &f.args
            && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(oid))) = list.args.first()
        {
            let whole = || {
                format!(
                    "(SELECT d.indexdef FROM pg_catalog.{} AS d WHERE d.indexrelid = {oid})",
                    super::catalog::INDEXDEFS_TABLE
                )
            };
            let sql = match list.args.get(1) {
                None => Some(whole()),
                Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(column)))
                    if column.to_string() == "0" =>
                {
                    Some(whole())
                }
                // A column given by a parameter (SQLAlchemy's `ord + $2`,
                // asked only of expression columns) is left to the
                // function, NULL: inside the subquery the parameter's type
                // would not be inferred.
                Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(column)))
                    if !column.to_string().contains('$') =>
                {
                    Some(format!(
                        "(SELECT d.coldef FROM pg_catalog.{} AS d \
                         WHERE d.indexrelid = {oid} AND d.n = {column})",
                        super::catalog::INDEXCOLS_TABLE
                    ))
                }
                Some(_) => None,
            };
            if let Some(sub) = sql.and_then(|sql| {
                Parser::new(&PostgreSqlDialect {})
                    .try_with_sql(&sql)
                    .and_then(|mut p| p.parse_expr())
                    .ok()
            }) {
                *e = sub;
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let parser = datafusion_pg_catalog::sql::PostgresCompatibilityParser::new();
        let mut stmt = parser.parse(sql).unwrap().remove(0);
        regproc_names(&mut stmt);
        stmt.to_string()
    }

    #[test]
    fn subqueries_of_a_user_select_list_are_kept() {
        let sql = "SELECT c.id, (SELECT count(*) FROM orders o WHERE o.cid = c.id), \
                   (SELECT max(x) FROM t) FROM customers c";
        let kept = parse_user_sql(sql).unwrap().remove(0).to_string();
        assert!(
            kept.contains("(SELECT count(*) FROM orders o WHERE o.cid = c.id)"),
            "{kept}"
        );
        assert!(kept.contains("(SELECT max(x) FROM t)"), "{kept}");
        assert!(!kept.contains("NULL") && !kept.contains("LIMIT"), "{kept}");
        // What the library's parser does with it.
        let theirs = datafusion_pg_catalog::sql::PostgresCompatibilityParser::new()
            .parse(sql)
            .unwrap()
            .remove(0)
            .to_string();
        assert!(
            theirs.contains("NULL") && theirs.contains("LIMIT 1"),
            "{theirs}"
        );
        // Client catalog queries keep the library's parsing.
        for system in [
            "SELECT (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.oid) FROM t",
            "SELECT * FROM information_schema.tables",
            "SELECT * FROM pg_type",
        ] {
            assert!(parse_user_sql(system).is_none(), "{system}");
        }
    }

    #[test]
    fn arrays_of_policies_are_empty() {
        let mut stmt = datafusion_pg_catalog::sql::PostgresCompatibilityParser::new()
            .parse(
                "SELECT array_to_string(ARRAY(SELECT polname || (SELECT string_agg(rolname, ',') \
                 FROM pg_catalog.pg_roles WHERE oid = ANY (polroles)) \
                 FROM pg_catalog.pg_policy pol WHERE polrelid = c.oid), ','), \
                 ARRAY(SELECT relname FROM pg_class), \
                 ARRAY(SELECT polname FROM pg_policy JOIN pg_class ON true) FROM pg_class c",
            )
            .unwrap()
            .remove(0);
        empty_policies(&mut stmt);
        assert_eq!(
            stmt.to_string(),
            "SELECT array_to_string(CAST(ARRAY[] AS TEXT[]), ','), \
             ARRAY(SELECT relname FROM pg_catalog.pg_class), \
             ARRAY(SELECT polname FROM pg_catalog.pg_policy JOIN pg_catalog.pg_class ON true) \
             FROM pg_catalog.pg_class c"
        );
    }

    #[test]
    fn integer_array_literals_compared_with_columns_are_arrays() {
        let mut stmt = datafusion_pg_catalog::sql::PostgresCompatibilityParser::new()
            .parse("SELECT polroles <> '{0}', '{1, -2}' = p.k, a = '{x}', a = '{}', '{1}' FROM p")
            .unwrap()
            .remove(0);
        array_literals(&mut stmt);
        assert_eq!(
            stmt.to_string(),
            "SELECT polroles <> ARRAY[0], ARRAY[1, -2] = p.k, a = '{x}', a = '{}', '{1}' FROM p"
        );
    }

    #[test]
    fn regproc_casts_compared_with_pg_type_columns_are_names() {
        let sql = rewritten(
            "SELECT typinput='pg_catalog.array_in'::regproc AS is_array, typname \
             FROM pg_catalog.pg_type WHERE t.typoutput <> 'boolout'::pg_catalog.regproc",
        );
        assert!(
            sql.contains("typinput = 'array_in' AS is_array")
                && sql.contains("t.typoutput <> 'boolout'"),
            "{sql}"
        );
        // Anything else keeps datafusion-pg-catalog's lookup of the oid.
        let sql = rewritten("SELECT p.oid = 'array_in'::regproc FROM pg_catalog.pg_proc p");
        assert!(sql.contains("pg_proc WHERE proname = 'array_in'"), "{sql}");
    }
}
