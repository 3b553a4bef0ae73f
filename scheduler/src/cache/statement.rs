//! The statements of materialized views, as PostgreSQL spells them:
//!
//! ```sql
//! CREATE MATERIALIZED VIEW [IF NOT EXISTS] schema.name
//!     [WITH (refresh = 'manual' | 'every 5 minutes',
//!            max_staleness = '10 minutes',
//!            storage = 'file:///path' | 's3://bucket/prefix',
//!            append_column = 'column')]
//!     AS query;
//! REFRESH MATERIALIZED VIEW schema.name;
//! DROP MATERIALIZED VIEW [IF EXISTS] schema.name;
//! ```
//!
//! sqlparser reads the first and the last; it has no `REFRESH`, so
//! [`desugar`] turns that one into a `CALL` of a name no function has
//! before the parser sees it.

use std::borrow::Cow;
use std::time::Duration;

use datafusion::error::DataFusionError;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    CreateTableOptions, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectName,
    ObjectNamePart, ObjectType, SqlOption, Statement, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Whitespace};
use quipu_catalog::{DEFAULT_CATALOG, DEFAULT_SCHEMA};

use crate::error::{Result, SchedulerError};

/// What `REFRESH MATERIALIZED VIEW x` is parsed as (see [`desugar`]).
pub const REFRESH_CALL: &str = "quipu_refresh_materialized_view";

/// The options `WITH (...)` of `CREATE MATERIALIZED VIEW` understands.
const OPTIONS: &str = "refresh, max_staleness, storage, append_column";

/// One statement about a materialized view.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheStatement {
    Create {
        schema: String,
        name: String,
        /// The defining query, as sqlparser prints it.
        query: String,
        if_not_exists: bool,
        /// None: refreshed by hand only.
        refresh_every: Option<Duration>,
        max_staleness: Option<Duration>,
        storage: Option<String>,
        /// A column whose value grows with every added row (incremental
        /// refreshes).
        append_column: Option<String>,
    },
    Refresh {
        schema: String,
        name: String,
    },
    Drop {
        schema: String,
        name: String,
        if_exists: bool,
    },
}

impl CacheStatement {
    /// The command tag PostgreSQL answers it with.
    pub fn tag(&self) -> &'static str {
        match self {
            CacheStatement::Create { .. } => "CREATE MATERIALIZED VIEW",
            CacheStatement::Refresh { .. } => "REFRESH MATERIALIZED VIEW",
            CacheStatement::Drop { .. } => "DROP MATERIALIZED VIEW",
        }
    }
}

fn invalid(msg: impl Into<String>) -> SchedulerError {
    SchedulerError::Query(DataFusionError::Plan(msg.into()))
}

/// `REFRESH MATERIALIZED VIEW [CONCURRENTLY] name [;]` as a `CALL` the
/// parser reads; any other text as it is. Comments and case are
/// PostgreSQL's (the one lexer, `crate::lexer`).
pub fn desugar(sql: &str) -> Cow<'_, str> {
    let Some(lexemes) = crate::lexer::lex(sql) else {
        return Cow::Borrowed(sql);
    };
    let code: Vec<_> = lexemes
        .iter()
        .filter(|l| !matches!(l.token, Token::Whitespace(_)))
        .collect();
    let word = |i: usize, w: &str| {
        code.get(i)
            .is_some_and(|l| matches!(&l.token, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w)))
    };
    if !(word(0, "refresh") && word(1, "materialized") && word(2, "view")) {
        return Cow::Borrowed(sql);
    }
    let mut first = 3;
    if word(first, "concurrently") {
        first += 1;
    }
    let mut last = code.len();
    if last > first && code[last - 1].token == Token::SemiColon {
        last -= 1;
    }
    if last <= first
        || code[first..last]
            .iter()
            .any(|l| l.token == Token::SemiColon)
    {
        return Cow::Borrowed(sql);
    }
    let name = &sql[code[first].start..code[last - 1].end];
    // Comments inside the name are dropped with the rest of the text.
    if lexemes.iter().any(|l| {
        l.start >= code[first].start
            && l.end <= code[last - 1].end
            && matches!(
                l.token,
                Token::Whitespace(Whitespace::SingleLineComment { .. })
                    | Token::Whitespace(Whitespace::MultiLineComment(_))
            )
    }) {
        return Cow::Borrowed(sql);
    }
    Cow::Owned(format!(
        "CALL {REFRESH_CALL}('{}')",
        name.replace('\'', "''")
    ))
}

/// The statement as a materialized-view statement; None for any other.
pub fn of(statement: &DfStatement) -> Option<Result<CacheStatement>> {
    match statement {
        DfStatement::Statement(statement) => of_sql(statement),
        _ => None,
    }
}

/// [`of`] for a statement as sqlparser reads it (the PostgreSQL front
/// door's).
pub fn of_sql(statement: &Statement) -> Option<Result<CacheStatement>> {
    match statement {
        Statement::CreateView(view) if view.materialized => Some(create(view)),
        Statement::Drop {
            object_type: ObjectType::MaterializedView,
            if_exists,
            names,
            ..
        } => Some(match names.as_slice() {
            [name] => split_name(name).map(|(schema, name)| CacheStatement::Drop {
                schema,
                name,
                if_exists: *if_exists,
            }),
            _ => Err(invalid(
                "DROP MATERIALIZED VIEW drops one materialized view at a time",
            )),
        }),
        Statement::Call(f) if is_refresh_call(&f.name) => Some(refresh(&f.args)),
        _ => None,
    }
}

fn is_refresh_call(name: &ObjectName) -> bool {
    matches!(name.0.as_slice(), [ObjectNamePart::Identifier(i)] if i.value.eq_ignore_ascii_case(REFRESH_CALL))
}

fn refresh(args: &FunctionArguments) -> Result<CacheStatement> {
    let text = match args {
        FunctionArguments::List(list) => match list.args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))] => match &v.value {
                Value::SingleQuotedString(s) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    };
    let text = text.ok_or_else(|| invalid("REFRESH MATERIALIZED VIEW needs a name"))?;
    let name = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_object_name(false))
        .map_err(|e| invalid(format!("REFRESH MATERIALIZED VIEW {text}: {e}")))?;
    let (schema, name) = split_name(&name)?;
    Ok(CacheStatement::Refresh { schema, name })
}

/// `name`, `schema.name` or `quipu.schema.name` as (schema, name);
/// unquoted parts lowercased as PostgreSQL does.
fn split_name(name: &ObjectName) -> Result<(String, String)> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) if i.quote_style.is_some() => Ok(i.value.clone()),
            ObjectNamePart::Identifier(i) => Ok(i.value.to_lowercase()),
            _ => Err(invalid(format!("invalid materialized view name {name}"))),
        })
        .collect::<Result<_>>()?;
    match parts.as_slice() {
        [n] => Ok((DEFAULT_SCHEMA.to_string(), n.clone())),
        [s, n] => Ok((s.clone(), n.clone())),
        [c, s, n] if c == DEFAULT_CATALOG => Ok((s.clone(), n.clone())),
        _ => Err(invalid(format!(
            "materialized view {name}: materialized views live in the `{DEFAULT_CATALOG}` catalog (name them schema.name)"
        ))),
    }
}

fn create(view: &datafusion::sql::sqlparser::ast::CreateView) -> Result<CacheStatement> {
    let (schema, name) = split_name(&view.name)?;
    let qualified = format!("{schema}.{name}");
    if view.or_replace {
        return Err(invalid(format!(
            "materialized view {qualified}: CREATE OR REPLACE MATERIALIZED VIEW is not supported; DROP it first"
        )));
    }
    if !view.columns.is_empty() {
        return Err(invalid(format!(
            "materialized view {qualified}: name the columns in the query (AS ...), not after the view's name"
        )));
    }
    let options = match &view.options {
        CreateTableOptions::None => vec![],
        CreateTableOptions::With(options) => options.clone(),
        _ => {
            return Err(invalid(format!(
                "materialized view {qualified}: options go in WITH (...): {OPTIONS}"
            )));
        }
    };
    let mut refresh_every = None;
    let mut max_staleness = None;
    let mut storage = None;
    let mut append_column = None;
    for option in options {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(invalid(format!(
                "materialized view {qualified}: options are key = 'value' pairs: {OPTIONS}"
            )));
        };
        let key = key.value.to_lowercase();
        let text = match &value {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) => s.clone(),
                Value::Number(n, _) => n.clone(),
                other => other.to_string(),
            },
            other => other.to_string(),
        };
        let interval = |what: &str| {
            quipu_connectors::parse_duration(&text)
                .map_err(|e| invalid(format!("materialized view {qualified}: {what}: {e}")))
        };
        match key.as_str() {
            "refresh" => {
                refresh_every = if text.trim().eq_ignore_ascii_case("manual") {
                    None
                } else {
                    let every = interval("refresh must be 'manual' or 'every <interval>'")?;
                    if every < Duration::from_secs(1) {
                        return Err(invalid(format!(
                            "materialized view {qualified}: refresh every {text} is too often (at least 1 second)"
                        )));
                    }
                    Some(every)
                }
            }
            "max_staleness" => max_staleness = Some(interval("max_staleness")?),
            "storage" => storage = Some(text),
            "append_column" => append_column = Some(text),
            other => {
                return Err(invalid(format!(
                    "materialized view {qualified}: unknown option `{other}`; known: {OPTIONS}"
                )));
            }
        }
    }
    Ok(CacheStatement::Create {
        schema,
        name,
        query: view.query.to_string(),
        if_not_exists: view.if_not_exists,
        refresh_every,
        max_staleness,
        storage,
        append_column,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Option<Result<CacheStatement>> {
        let sql = desugar(sql);
        let mut statements = datafusion::sql::parser::DFParserBuilder::new(&*sql)
            .build()
            .unwrap()
            .parse_statements()
            .unwrap();
        of(&statements.pop_front().unwrap())
    }

    #[test]
    fn create_reads_its_options() {
        let got = parse(
            "CREATE MATERIALIZED VIEW Yachay.C360 WITH (refresh = 'every 5 minutes', max_staleness = '10 min', append_column = 'x') AS SELECT 1 AS x",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            got,
            CacheStatement::Create {
                schema: "yachay".into(),
                name: "c360".into(),
                query: "SELECT 1 AS x".into(),
                if_not_exists: false,
                refresh_every: Some(Duration::from_secs(300)),
                max_staleness: Some(Duration::from_secs(600)),
                storage: None,
                append_column: Some("x".into()),
            }
        );
    }

    #[test]
    fn bad_options_are_named() {
        let e = parse("CREATE MATERIALIZED VIEW s.m WITH (max_staleness = 'soon') AS SELECT 1")
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.m") && e.contains("soon"), "{e}");
        let e = parse("CREATE MATERIALIZED VIEW s.m WITH (colour = 'red') AS SELECT 1")
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown option `colour`"), "{e}");
    }

    #[test]
    fn refresh_and_drop_are_read() {
        assert_eq!(
            parse("refresh materialized view \"Odd\".m;")
                .unwrap()
                .unwrap(),
            CacheStatement::Refresh {
                schema: "Odd".into(),
                name: "m".into()
            }
        );
        assert_eq!(
            parse("/* c */ REFRESH MATERIALIZED VIEW m")
                .unwrap()
                .unwrap(),
            CacheStatement::Refresh {
                schema: "public".into(),
                name: "m".into()
            }
        );
        assert_eq!(
            parse("DROP MATERIALIZED VIEW IF EXISTS quipu.s.m")
                .unwrap()
                .unwrap(),
            CacheStatement::Drop {
                schema: "s".into(),
                name: "m".into(),
                if_exists: true
            }
        );
        assert!(parse("SELECT 1").is_none());
        assert!(parse("CREATE VIEW v AS SELECT 1").is_none());
        // Not a refresh: a string that looks like one.
        assert_eq!(
            desugar("SELECT 'REFRESH MATERIALIZED VIEW m'"),
            "SELECT 'REFRESH MATERIALIZED VIEW m'"
        );
    }
}
