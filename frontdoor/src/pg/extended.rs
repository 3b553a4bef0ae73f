//! The extended query protocol: Parse plans the statement once (its
//! parameters still open, typed from the plan, from their casts or as the
//! client declares them), Bind fills the parameters in, Execute runs it.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr, Statement, Value};
use futures::Sink;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{FieldFormat, FieldInfo, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use quipu_scheduler::{SchedulerError, Work};

use super::connection::Conn;
use super::errors::{engine_error, error};
use super::query::{QueryHandler, bounded, parse_sql, renamed};
use super::settings::{Local, classify};

/// A statement as the extended protocol keeps it between Parse and
/// Execute.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub(super) kind: Kind,
}

#[derive(Clone, Debug)]
pub(super) enum Kind {
    /// A query planned at Parse time (parameters still open), with
    /// PostgreSQL's names for its columns (`quipu_connectors::dialect::column_names`) and the
    /// schema its rows will have (see [`described_schema`]).
    Query(
        Box<LogicalPlan>,
        Option<Vec<Option<String>>>,
        datafusion::arrow::datatypes::SchemaRef,
    ),
    /// Handled by the front door itself (SET/SHOW of PostgreSQL settings,
    /// transaction statements).
    Local(Local),
    /// A statement of no rows (a view's, a materialized view's), run when
    /// executed, with its tag.
    Command(Box<Statement>, &'static str),
    /// asyncpg's type introspection (`super::type_lookup`).
    TypeLookup,
}

/// Parses and plans statements of the extended protocol.
pub(super) struct QuipuParser {
    pub(super) conn: Arc<Conn>,
}

#[async_trait]
impl QueryParser for QuipuParser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = self.conn.session(client).await?;
        if super::type_lookup::is_asyncpg_type_lookup(sql) {
            return Ok(Some(Prepared {
                kind: Kind::TypeLookup,
            }));
        }
        let mut statements = parse_sql(sql)?;
        // The statement's `/*+ quipu.max_staleness = ... */` settings,
        // applied when it is planned (here, once).
        let hints = quipu_scheduler::hints::of_text(sql)
            .map_err(super::errors::engine_error)?
            .into_iter()
            .next()
            .unwrap_or_default();
        if statements.is_empty() {
            return Ok(None);
        }
        if statements.len() > 1 {
            return Err(error(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let stmt = statements.remove(0);
        if let Some(local) = classify(&stmt) {
            return Ok(Some(Prepared {
                kind: Kind::Local(local),
            }));
        }
        if let Some(tag) = super::query::command_tag(&stmt) {
            return Ok(Some(Prepared {
                kind: Kind::Command(Box::new(stmt), tag),
            }));
        }
        let mut stmt = stmt;
        let declared = declared_parameters(&mut stmt, types);
        let names = quipu_connectors::dialect::column_names::result_names(&stmt);
        let casts = cast_parameters(&stmt);
        let token = self.conn.new_token();
        let deadline = self.conn.timeout().map(|t| tokio::time::Instant::now() + t);
        let planning = session.clone();
        let plan = bounded(&token, deadline, async move {
            planning
                .plan_hinted(DfStatement::Statement(Box::new(stmt)), &hints)
                .await
        })
        .await?;
        let plan = typed_by_casts(plan, &casts, types, &declared)?;
        let schema = described_schema(&session, &plan);
        Ok(Some(Prepared {
            kind: Kind::Query(Box::new(plan), names, schema),
        }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        let plan = match &stmt.kind {
            Kind::Query(plan, _, _) => plan,
            Kind::TypeLookup => return Ok(super::type_lookup::parameter_types()),
            _ => return Ok(vec![]),
        };
        ordered_param_types(plan)?
            .into_iter()
            .map(|t| match t {
                Some(t) => arrow_pg::datatypes::into_pg_type(&t),
                None => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match &stmt.kind {
            Kind::Query(plan, names, schema)
                if !matches!(
                    **plan,
                    LogicalPlan::Ddl(_) | LogicalPlan::Statement(_) | LogicalPlan::Dml(_)
                ) =>
            {
                super::text_out::pg_fields(schema, format.unwrap_or(&Format::UnifiedText), None)
                    .map(|fields| renamed(fields, names.as_deref()))
            }
            Kind::TypeLookup => Ok(super::type_lookup::fields(
                format.unwrap_or(&Format::UnifiedText),
            )),
            Kind::Local(Local::Show(name)) => Ok(vec![FieldInfo::new(
                name.clone(),
                None,
                None,
                Type::TEXT,
                FieldFormat::Text,
            )]),
            _ => Ok(vec![]),
        }
    }
}

/// The schema a query's rows will have, which a statement's Describe must
/// announce: the analyzer (type coercion and Quipu's own rules, such as
/// `sum(bigint)` as numeric, `date_part` as double precision, numeric
/// beside double as double) changes the types of the plan Parse made, and
/// the rows are encoded from the analyzed plan. Announcing the unanalyzed
/// types broke binary clients: asyncpg read a `date_part` announced as
/// `int4` from eight bytes ("unexpected trailing 4 bytes"). A plan the
/// analyzer cannot take yet (an untyped parameter) keeps its own schema.
fn described_schema(
    session: &quipu_scheduler::ClientSession,
    plan: &LogicalPlan,
) -> datafusion::arrow::datatypes::SchemaRef {
    let analyzed = session.analyze(plan.clone());
    let schema = analyzed
        .as_ref()
        .unwrap_or(plan)
        .schema()
        .as_arrow()
        .clone();
    // Without the hidden columns of numerics' places.
    std::sync::Arc::new(match super::text_out::Places::of(&schema) {
        Some(p) => p.schema(&schema),
        None => schema,
    })
}

/// Casts each parameter whose type the client declared (Parse's type
/// OIDs) to that type, where it is one of SQL's plain types, and gives
/// their names (`$1`). In PostgreSQL a declared type is the parameter's
/// type: psycopg sends a `Decimal` declared `numeric`, and `SELECT $1 + 1`
/// of `1.2345` is `2.2345`. DataFusion instead infers `$1` from the other
/// operand (`bigint`) and the value was read as one: `2`, or from its
/// binary form, garbage.
fn declared_parameters(
    stmt: &mut Statement,
    types: &[Option<Type>],
) -> std::collections::HashSet<String> {
    use datafusion::sql::sqlparser::ast::{
        CastKind, DataType as Sql, TimezoneInfo, visit_expressions_mut,
    };
    let scalar_type = |t: &Type| {
        Some(match *t {
            Type::INT2 => Sql::SmallInt(None),
            Type::INT4 => Sql::Int(None),
            Type::INT8 => Sql::BigInt(None),
            Type::FLOAT4 => Sql::Real,
            Type::FLOAT8 => Sql::DoublePrecision,
            Type::NUMERIC => Sql::Numeric(datafusion::sql::sqlparser::ast::ExactNumberInfo::None),
            Type::BOOL => Sql::Boolean,
            Type::TEXT => Sql::Text,
            Type::VARCHAR => Sql::Varchar(None),
            Type::DATE => Sql::Date,
            Type::TIMESTAMP => Sql::Timestamp(None, TimezoneInfo::WithoutTimeZone),
            Type::TIMESTAMPTZ => Sql::Timestamp(None, TimezoneInfo::WithTimeZone),
            Type::BYTEA => Sql::Bytea,
            _ => return None,
        })
    };
    // An array of one of those (psycopg declares a list of integers
    // `int2[]`, `int8[]`): `SELECT %s` is then described as that array,
    // as PostgreSQL describes it, where it was of unknown type and came
    // back as text.
    let sql_type = |t: &Type| {
        use datafusion::sql::sqlparser::ast::ArrayElemTypeDef;
        let element = match *t {
            Type::INT2_ARRAY => Type::INT2,
            Type::INT4_ARRAY => Type::INT4,
            Type::INT8_ARRAY => Type::INT8,
            Type::FLOAT4_ARRAY => Type::FLOAT4,
            Type::FLOAT8_ARRAY => Type::FLOAT8,
            Type::NUMERIC_ARRAY => Type::NUMERIC,
            Type::BOOL_ARRAY => Type::BOOL,
            Type::TEXT_ARRAY => Type::TEXT,
            Type::VARCHAR_ARRAY => Type::VARCHAR,
            _ => return scalar_type(t),
        };
        Some(Sql::Array(ArrayElemTypeDef::SquareBracket(
            Box::new(scalar_type(&element)?),
            None,
        )))
    };
    let mut wrapped = std::collections::HashSet::new();
    let _ = visit_expressions_mut(stmt, |e: &mut Expr| {
        if let Expr::Value(v) = e
            && let Value::Placeholder(id) = &v.value
            && let Some(i) = id.strip_prefix('$').and_then(|i| i.parse::<usize>().ok())
            && let Some(Some(t)) = i.checked_sub(1).and_then(|i| types.get(i))
            && let Some(data_type) = sql_type(t)
        {
            wrapped.insert(id.clone());
            *e = Expr::Cast {
                kind: CastKind::DoubleColon,
                expr: Box::new(e.clone()),
                data_type,
                array: false,
                format: None,
            };
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    wrapped
}

/// The parameters a statement casts only to plain SQL types (`$1::bigint`,
/// `CAST($2 AS numeric)`): types whose text and binary forms clients send
/// as such; not `regclass` and its kin, whose text is a name (SQLAlchemy
/// sends `CAST($1 AS REGCLASS)` with a table name).
fn cast_parameters(stmt: &Statement) -> std::collections::HashSet<String> {
    use datafusion::sql::sqlparser::ast::visit_expressions;
    let mut found: HashMap<String, bool> = HashMap::new();
    let _ = visit_expressions(stmt, |e: &Expr| {
        if let Expr::Cast {
            expr, data_type, ..
        } = e
            && let Expr::Value(v) = expr.as_ref()
            && let Value::Placeholder(id) = &v.value
        {
            let plain = plain_type(data_type);
            *found.entry(id.clone()).or_insert(true) &= plain;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
        .into_iter()
        .filter_map(|(id, plain)| plain.then_some(id))
        .collect()
}

/// Whether a cast's SQL type is one whose forms clients send as such: the
/// numbers, text, booleans, dates, timestamps, bytes, and arrays of them
/// (`$1::int[]`: asyncpg encodes a list as the array type it is told).
fn plain_type(t: &datafusion::sql::sqlparser::ast::DataType) -> bool {
    use datafusion::sql::sqlparser::ast::{ArrayElemTypeDef, DataType as Sql};
    match t {
        Sql::Array(
            ArrayElemTypeDef::SquareBracket(inner, _)
            | ArrayElemTypeDef::AngleBracket(inner)
            | ArrayElemTypeDef::Parenthesis(inner),
        ) => plain_type(inner),
        _ => matches!(
            t,
            Sql::SmallInt(_)
                | Sql::Int2(_)
                | Sql::Int(_)
                | Sql::Integer(_)
                | Sql::Int4(_)
                | Sql::BigInt(_)
                | Sql::Int8(_)
                | Sql::Real
                | Sql::Float4
                | Sql::DoublePrecision
                | Sql::Double(_)
                | Sql::Float8
                | Sql::Numeric(_)
                | Sql::Decimal(_)
                | Sql::Text
                | Sql::Varchar(_)
                | Sql::CharacterVarying(_)
                | Sql::String(_)
                | Sql::Boolean
                | Sql::Bool
                | Sql::Date
                | Sql::Timestamp(..)
                | Sql::Bytea
        ),
    }
}

/// Gives a parameter whose type DataFusion did not infer, and the client
/// did not declare, the type of its cast (as planned): in
/// `SELECT $1::bigint + 1` the parameter is then described to the client
/// as a bigint, and asyncpg (which encodes each parameter as described)
/// sends one. A type the client declares wins, as in PostgreSQL: those of
/// `wrapped` are cast to it (`declared_parameters`), others it declares
/// are left as DataFusion typed them.
fn typed_by_casts(
    plan: LogicalPlan,
    casts: &std::collections::HashSet<String>,
    declared: &[Option<Type>],
    wrapped: &std::collections::HashSet<String>,
) -> PgWireResult<LogicalPlan> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::Expr as DfExpr;
    use datafusion::logical_expr::expr::{Cast, Placeholder};
    if casts.is_empty() {
        return Ok(plan);
    }
    let undeclared = |id: &str| {
        let i = id.trim_start_matches('$').parse::<usize>().ok();
        wrapped.contains(id)
            || i.and_then(|i| declared.get(i.checked_sub(1)?))
                .is_none_or(|t| t.as_ref().is_none_or(|t| *t == Type::UNKNOWN))
    };
    // The type each such parameter is cast to; one cast to two types
    // leaves the parameter untyped.
    let mut types: HashMap<String, Option<datafusion::arrow::datatypes::DataType>> = HashMap::new();
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|x| {
                if let DfExpr::Cast(Cast { expr, field }) = x
                    && let DfExpr::Placeholder(p) = expr.as_ref()
                    && p.field.is_none()
                    && casts.contains(&p.id)
                    && undeclared(&p.id)
                {
                    let data_type = field.data_type();
                    let t = types.entry(p.id.clone()).or_insert(Some(data_type.clone()));
                    if t.as_ref() != Some(data_type) {
                        *t = None;
                    }
                }
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            })
        })
    })
    .map_err(|e| engine_error(SchedulerError::Query(e)))?;
    if types.values().all(Option::is_none) {
        return Ok(plan);
    }
    plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|e| {
            e.transform(|e| match e {
                DfExpr::Placeholder(p) if p.field.is_none() => {
                    match types.get(&p.id).cloned().flatten() {
                        Some(t) => Ok(Transformed::yes(DfExpr::Placeholder(
                            Placeholder::new_with_field(
                                p.id,
                                Some(Arc::new(datafusion::arrow::datatypes::Field::new(
                                    "", t, true,
                                ))),
                            ),
                        ))),
                        None => Ok(Transformed::no(DfExpr::Placeholder(p))),
                    }
                }
                other => Ok(Transformed::no(other)),
            })
        })
    })
    .map(|t| t.data)
    .map_err(|e| engine_error(SchedulerError::Query(e)))
}

/// The plan with each `quipu_param_scale($n)` (the places of a parameter
/// cast to `numeric` without a scale, `scheduler/src/scales.rs`) replaced
/// by the places the client sent `$n` with: `SELECT $1::numeric + 1` of
/// `1.2345` prints `2.2345`, as in PostgreSQL, not the column's
/// `2.2345000000`. Where they cannot be told it is left to give the
/// column's.
fn with_parameter_places(
    plan: LogicalPlan,
    portal: &Portal<Prepared>,
    types: &[Option<datafusion::arrow::datatypes::DataType>],
) -> PgWireResult<LogicalPlan> {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::{Expr as DfExpr, lit};
    use quipu_connectors::dialect::pg_numeric::{PARAM_SCALE, param_places};
    let places = |id: &str| -> Option<i32> {
        let i = id
            .trim_start_matches('$')
            .parse::<usize>()
            .ok()?
            .checked_sub(1)?;
        let Some(bytes) = portal.parameters.get(i)? else {
            return Some(0); // NULL: no value to print
        };
        let declared = portal.statement.parameter_types.get(i).cloned().flatten();
        let oid = match (declared, types.get(i).cloned().flatten()) {
            (Some(t), _) if t != Type::UNKNOWN => t.oid(),
            (_, Some(DataType::Decimal128(..))) => Type::NUMERIC.oid(),
            (_, Some(DataType::Int16)) => Type::INT2.oid(),
            (_, Some(DataType::Int32)) => Type::INT4.oid(),
            (_, Some(DataType::Int64)) => Type::INT8.oid(),
            _ => Type::UNKNOWN.oid(),
        };
        param_places(bytes, portal.parameter_format.is_binary(i), oid)
    };
    plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|e| {
            e.transform(|e| match &e {
                DfExpr::ScalarFunction(f) if f.name() == PARAM_SCALE => match f.args.as_slice() {
                    [DfExpr::Placeholder(p)] => match places(&p.id) {
                        Some(n) => Ok(Transformed::yes(lit(n))),
                        None => Ok(Transformed::no(e)),
                    },
                    _ => Ok(Transformed::no(e)),
                },
                _ => Ok(Transformed::no(e)),
            })
        })
    })
    .map(|t| t.data)
    .map_err(|e| engine_error(SchedulerError::Query(e)))
}

/// The portal's parameters with those the client declared as a type
/// Quipu reads as text (`uuid`, `json`, `jsonb`: a source's such columns
/// are text here) as text, their binary forms written out; None when
/// there is none. psycopg sends a `uuid.UUID` declared `uuid`, and
/// `WHERE id = %s` failed: "Cannot convert postgres type uuid to given
/// rust type".
fn as_text_parameters(portal: &Portal<Prepared>) -> PgWireResult<Option<Portal<()>>> {
    let declared = &portal.statement.parameter_types;
    let text_read = |t: &Option<Type>| matches!(t, Some(t) if *t == Type::UUID || *t == Type::JSON || *t == Type::JSONB);
    if !declared.iter().any(text_read) {
        return Ok(None);
    }
    let mut types = declared.clone();
    let mut values = portal.parameters.clone();
    let mut formats: Vec<i16> = (0..values.len())
        .map(|i| i16::from(portal.parameter_format.is_binary(i)))
        .collect();
    for (i, value) in values.iter_mut().enumerate() {
        let Some(t) = types.get(i).filter(|t| text_read(t)).cloned().flatten() else {
            continue;
        };
        if let (Some(bytes), Some(1)) = (value.as_ref(), formats.get(i)) {
            let text = match t {
                // 16 bytes, written as PostgreSQL's `uuid_out` does.
                t if t == Type::UUID => {
                    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                    if hex.len() != 32 {
                        return Err(error("22P03", "incorrect binary data format for a uuid"));
                    }
                    format!(
                        "{}-{}-{}-{}-{}",
                        &hex[..8],
                        &hex[8..12],
                        &hex[12..16],
                        &hex[16..20],
                        &hex[20..]
                    )
                }
                // A version byte (1), then the text.
                t if t == Type::JSONB => match bytes.split_first() {
                    Some((1, rest)) => String::from_utf8_lossy(rest).into_owned(),
                    _ => return Err(error("22P03", "unsupported jsonb version number")),
                },
                _ => String::from_utf8_lossy(bytes).into_owned(),
            };
            *value = Some(bytes::Bytes::from(text));
        }
        formats[i] = 0;
        types[i] = Some(Type::TEXT);
    }
    let mut text = Portal::<()>::default();
    text.statement = Arc::new(pgwire::api::stmt::StoredStatement::new(
        portal.statement.id.clone(),
        (),
        types,
    ));
    text.parameter_format = Format::Individual(formats);
    text.parameters = values;
    Ok(Some(text))
}

/// The parameter types of a plan in `$1, $2, ...` order.
fn ordered_param_types(
    plan: &LogicalPlan,
) -> PgWireResult<Vec<Option<datafusion::arrow::datatypes::DataType>>> {
    let types = plan
        .get_parameter_types()
        .map_err(|e| engine_error(SchedulerError::Query(e)))?;
    let mut ordered: Vec<(usize, Option<datafusion::arrow::datatypes::DataType>)> = types
        .into_iter()
        .filter_map(|(id, t)| Some((id.trim_start_matches('$').parse::<usize>().ok()?, t)))
        .collect();
    ordered.sort_by_key(|(i, _)| *i);
    Ok(ordered.into_iter().map(|(_, t)| t).collect())
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = Prepared;
    type QueryParser = QuipuParser;

    fn query_parser(&self) -> Arc<QuipuParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self.conn.session(client).await?;
        let prepared = &portal.statement.statement;
        match &prepared.kind {
            Kind::Local(local) => self.conn.run_local(local),
            Kind::TypeLookup => super::type_lookup::answer(portal),
            Kind::Command(stmt, tag) => {
                self.conn
                    .run_command(client, &session, Statement::clone(stmt), tag)
                    .await
            }
            Kind::Query(plan, names, _) => {
                let types = ordered_param_types(plan)?;
                let refs: Vec<Option<&datafusion::arrow::datatypes::DataType>> =
                    types.iter().map(|t| t.as_ref()).collect();
                let params: ParamValues = match as_text_parameters(portal)? {
                    Some(text) => arrow_pg::datatypes::df::deserialize_parameters(&text, &refs)?,
                    None => arrow_pg::datatypes::df::deserialize_parameters(portal, &refs)?,
                };
                let params = super::array_param::with_array_text(portal, &types, params)?;
                let plan = with_parameter_places(LogicalPlan::clone(plan), portal, &types)?
                    .replace_params_with_values(&params)
                    .map_err(|e| engine_error(SchedulerError::Query(e)))?;
                self.conn
                    .run_query(
                        client,
                        &session,
                        Work::Plan(plan),
                        &portal.result_column_format,
                        names.as_deref(),
                    )
                    .await
            }
        }
    }
}
