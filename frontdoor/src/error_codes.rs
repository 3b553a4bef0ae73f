//! One mapping from the engine's errors to what each front door answers:
//! a PostgreSQL SQLSTATE and an Arrow Flight (gRPC) status code. Both come
//! from one [`Kind`], found from the errors' types (our error enums and
//! DataFusion's variants), never from their words: a missing table is
//! [`SchedulerError::TableNotFound`], which the engine tells from the
//! catalog, not a planning error whose message says "not found".

use std::error::Error;

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use quipu_connectors::error::{out_of_range, text_not_a_value};
use quipu_scheduler::SchedulerError;
use quipu_scheduler::limits::TooComplex;
use quipu_scheduler::streams::SCALAR_SUBQUERY_ROWS;

/// What kind of failure an engine error is, as far as a client cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A source not granted, or DDL by a user who is not an admin.
    PermissionDenied,
    /// The SQL text does not parse.
    Syntax,
    /// A table the session cannot see.
    UndefinedTable,
    /// A column that does not exist, or is ambiguous.
    UndefinedColumn,
    /// Any other statement the planner refuses.
    InvalidStatement,
    /// SQL that DataFusion does not implement.
    NotSupported,
    /// The memory pool could not hold the query, even spilling.
    OutOfMemory,
    /// Over a statement limit (`quipu_scheduler::limits`).
    TooComplex,
    /// A value an expression cannot compute: PostgreSQL's class 22 (data
    /// exception) with the code of what went wrong.
    DataException(&'static str),
    /// The cluster has no executor to run the query yet.
    NoExecutors,
    /// A column shown beside a grouping that neither groups nor
    /// aggregates it.
    Grouping,
    /// The embedded cluster did not start.
    ClusterStart,
    Internal,
}

impl Kind {
    pub(crate) fn of(e: &SchedulerError) -> Kind {
        match e {
            SchedulerError::PermissionDenied(_) | SchedulerError::NotAdmin(_) => {
                Kind::PermissionDenied
            }
            SchedulerError::TableNotFound { .. } => Kind::UndefinedTable,
            SchedulerError::Query(df) => Kind::of_datafusion(df),
            SchedulerError::ClusterStart(_) => Kind::ClusterStart,
            SchedulerError::NoExecutors { .. } => Kind::NoExecutors,
            SchedulerError::TooComplex(_) => Kind::TooComplex,
            SchedulerError::Connector(_) | SchedulerError::Catalog(_) => Kind::Internal,
        }
    }

    fn of_datafusion(e: &DataFusionError) -> Kind {
        // An error of ours carried through DataFusion (a cluster query
        // planned again while its rows stream) keeps its kind.
        let mut next: Option<&(dyn Error + 'static)> = Some(e);
        while let Some(err) = next {
            if let Some(ours) = err.downcast_ref::<SchedulerError>()
                && !matches!(ours, SchedulerError::Query(_))
            {
                return Kind::of(ours);
            }
            if let Some(data) = err.downcast_ref::<quipu_connectors::error::DataException>() {
                return Kind::DataException(data.sqlstate);
            }
            next = err.source();
        }
        match e.find_root() {
            DataFusionError::ArrowError(a, _) => match a.as_ref() {
                ArrowError::DivideByZero => Kind::DataException("22012"),
                ArrowError::ArithmeticOverflow(_) => Kind::DataException("22003"),
                ArrowError::CastError(m) | ArrowError::ParseError(m)
                    if let Some((code, _)) = text_not_a_value(m).or_else(|| out_of_range(m)) =>
                {
                    Kind::DataException(code)
                }
                ArrowError::InvalidArgumentError(m) | ArrowError::ComputeError(m)
                    if let Some((code, _)) = out_of_range(m) =>
                {
                    Kind::DataException(code)
                }
                ArrowError::ParseError(_) => Kind::DataException("22P02"),
                ArrowError::CastError(_) => Kind::DataException("22000"),
                _ => Kind::Internal,
            },
            DataFusionError::Execution(m) if m == SCALAR_SUBQUERY_ROWS => {
                Kind::DataException("21000")
            }
            // `to_date`/`to_timestamp` of text its format does not read.
            DataFusionError::Execution(m) if let Some((code, _)) = text_not_a_value(m) => {
                Kind::DataException(code)
            }
            DataFusionError::SQL(..) => Kind::Syntax,
            // DataFusion has no type of its own for it.
            DataFusionError::Plan(m) if ungrouped(m).is_some() => Kind::Grouping,
            DataFusionError::SchemaError(..) => Kind::UndefinedColumn,
            DataFusionError::Plan(_) => Kind::InvalidStatement,
            DataFusionError::NotImplemented(_) => Kind::NotSupported,
            DataFusionError::ResourcesExhausted(_) => Kind::OutOfMemory,
            _ => Kind::Internal,
        }
    }

    /// PostgreSQL's SQLSTATE for it.
    pub(crate) fn sqlstate(self) -> &'static str {
        match self {
            Kind::PermissionDenied => "42501",
            Kind::Syntax => "42601",
            Kind::UndefinedTable => "42P01",
            Kind::UndefinedColumn => "42703",
            Kind::InvalidStatement => "42000",
            Kind::NotSupported => "0A000",
            Kind::OutOfMemory => "53200",
            Kind::TooComplex => TooComplex::SQLSTATE,
            Kind::DataException(code) => code,
            // cannot_connect_now: the cluster has no executor to run it yet.
            Kind::NoExecutors => "57P03",
            Kind::Grouping => "42803",
            Kind::ClusterStart => "58000",
            Kind::Internal => "XX000",
        }
    }

    /// The gRPC status code Flight SQL clients get for it.
    pub(crate) fn grpc(self) -> tonic::Code {
        match self {
            Kind::PermissionDenied => tonic::Code::PermissionDenied,
            Kind::Syntax
            | Kind::UndefinedTable
            | Kind::UndefinedColumn
            | Kind::InvalidStatement
            | Kind::TooComplex
            | Kind::Grouping
            | Kind::DataException(_) => tonic::Code::InvalidArgument,
            Kind::OutOfMemory => tonic::Code::ResourceExhausted,
            Kind::NoExecutors => tonic::Code::Unavailable,
            Kind::NotSupported | Kind::ClusterStart | Kind::Internal => tonic::Code::Internal,
        }
    }
}

/// An engine error as a gRPC status, with the engine's message.
pub(crate) fn status(e: SchedulerError) -> tonic::Status {
    tonic::Status::new(Kind::of(&e).grpc(), message(&e))
}

/// The words a client is shown for an engine error: without the layers
/// that name DataFusion's machinery rather than the problem (an analyzer
/// or optimizer rule's context, `External error: `, `Arrow error: `), and
/// Arrow's words for a division by zero as PostgreSQL's. `SELECT 1 / 0`
/// said "Arrow error: Divide by zero error", `SELECT 100000 * 100000`
/// "quipu_constant_overflow caused by External error: integer out of
/// range ...", `CAST('abc' AS int)` "Optimizer rule 'simplify_expressions'
/// failed caused by Arrow error: Cast error: ...".
pub(crate) fn message(e: &SchedulerError) -> String {
    match e {
        SchedulerError::Query(df) => df_message(df),
        other => other.to_string(),
    }
}

fn df_message(e: &DataFusionError) -> String {
    if let DataFusionError::Plan(m) = e
        && let Some(said) = unmatched_call_message(m)
    {
        return said;
    }
    match e {
        // A rule's name (`quipu_constant_overflow`, `type_coercion`) or
        // "Optimizer rule 'x' failed": where, not what.
        DataFusionError::Context(label, inner)
            if !label.contains(' ') || label.starts_with("Optimizer rule '") =>
        {
            df_message(inner)
        }
        DataFusionError::ArrowError(a, _) => arrow_message(a),
        DataFusionError::External(inner) => {
            if let Some(df) = inner.downcast_ref::<DataFusionError>() {
                df_message(df)
            } else if let Some(a) = inner.downcast_ref::<ArrowError>() {
                arrow_message(a)
            } else {
                inner.to_string()
            }
        }
        DataFusionError::Shared(inner) => df_message(inner),
        // The words are the wrapped error's.
        DataFusionError::Diagnostic(_, inner) => df_message(inner),
        DataFusionError::Execution(m) if m == SCALAR_SUBQUERY_ROWS => {
            "more than one row returned by a subquery used as an expression".to_string()
        }
        DataFusionError::Execution(m) if let Some((_, said)) = text_not_a_value(m) => said,
        DataFusionError::Plan(m) if let Some(column) = ungrouped(m) => format!(
            "column \"{column}\" must appear in the GROUP BY clause or be used in an aggregate \
             function"
        ),
        DataFusionError::Plan(m) if m.contains("unnest() can only be applied to array") => {
            "unnest takes an array, and its argument is not one (a PostgreSQL source's \
             `char(n)[]`, `uuid[]`, `jsonb[]` or enum array column is read as its text: cast \
             it, `unnest(c::text[])`)"
                .to_string()
        }
        DataFusionError::NotImplemented(m)
            if m.contains("does not support logical expression ScalarSubquery")
                || m.contains("does not support logical expression Exists") =>
        {
            "a subquery that reads the outer query's columns in this place is not supported \
             (a correlation other than equalities of inner and outer columns, such as an \
             aggregate over `unnest` or `generate_series` of an outer column); join on the \
             column, or move the set into the FROM list (`FROM t, unnest(t.a) x ... GROUP BY`)"
                .to_string()
        }
        DataFusionError::NotImplemented(m) if let Some(column) = outer_reference(m) => format!(
            "a subquery that reads the outer query's column \"{column}\" in this place is not \
             supported (a correlation other than equalities of inner and outer columns, \
             under a LIMIT or an aggregate); join on the column, or rank with a window function"
        ),
        other => other.strip_backtrace(),
    }
}

/// The column (or expression) DataFusion's planning error for a column
/// shown beside a grouping names. Its words spoke of "expanding wildcard"
/// where the query had no `*`.
fn ungrouped(m: &str) -> Option<&str> {
    if let Some(rest) = m.split_once("While expanding wildcard, column \"") {
        return rest
            .1
            .split_once("\" must appear in the GROUP BY")
            .map(|(c, _)| c);
    }
    let rest = m.split_once("HAVING clause references: ")?.1;
    rest.split_once(" must appear in the GROUP BY clause")
        .map(|(c, _)| c)
}

/// The column DataFusion's "Physical plan does not support logical
/// expression OuterReferenceColumn(Field { name: \"x\", ...` names: a
/// correlated subquery it could not turn into a join. Its words named
/// the plan's machinery, not the query's problem.
fn outer_reference(m: &str) -> Option<&str> {
    let rest = m.split_once("OuterReferenceColumn(")?.1;
    let rest = rest.split_once("name: \"")?.1;
    rest.split_once('"').map(|(name, _)| name)
}

/// DataFusion's planning error for a call no form of a function takes
/// (see [`unmatched_call`]) or an operator no form of which takes its
/// operands ([`unmatched_operator`]), as PostgreSQL words it; None for
/// any other.
pub fn unmatched_call_message(m: &str) -> Option<String> {
    unmatched_call(m)
        .map(|call| {
            format!(
                "function {call} does not exist: no form of it takes these argument types \
                 (you might need to add explicit type casts)"
            )
        })
        .or_else(|| {
            unmatched_operator(m).map(|op| {
                format!(
                    "operator does not exist: {op}: no form of it takes these operand types \
                     (you might need to add explicit type casts)"
                )
            })
        })
}

/// The operation of DataFusion's "Cannot infer common argument type for
/// comparison operation Utf8 = Boolean", "Cannot coerce arithmetic
/// expression Utf8 + Int64 to valid types" and "Cannot get result type
/// for temporal operation Date32 * Int64: ...", with PostgreSQL's names
/// of the operand types, as PostgreSQL says it: `text = boolean`.
fn unmatched_operator(m: &str) -> Option<String> {
    const MARKS: [&str; 3] = [
        "Cannot infer common argument type for comparison operation ",
        "Cannot coerce arithmetic expression ",
        "Cannot get result type for temporal operation ",
    ];
    let (at, mark) = MARKS.iter().find_map(|k| m.find(k).map(|at| (at, *k)))?;
    let rest = &m[at + mark.len()..];
    let operation = rest
        .split(" to valid types")
        .next()
        .and_then(|r| r.split(": ").next())
        .unwrap_or(rest)
        .trim_end_matches('.');
    // The operator: the first word between spaces outside parentheses
    // that is no type's.
    let (mut depth, mut split) = (0i32, None);
    for (i, c) in operation.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ' ' if depth == 0 => {
                let after = &operation[i + 1..];
                let op = after.split(' ').next().unwrap_or_default();
                if !op.is_empty() && !op.chars().any(|c| c.is_ascii_alphanumeric()) {
                    split = Some((i, op));
                    break;
                }
            }
            _ => {}
        }
    }
    let (i, op) = split?;
    let left = &operation[..i];
    let right = operation[i + 1 + op.len()..].trim();
    Some(format!("{} {op} {}", pg_name(left), pg_name(right)))
}

/// Arrow's name of a type in DataFusion's words (`Decimal128(12, 2)`),
/// read back, as PostgreSQL names the type (`numeric`); the words as
/// they are where they name no type.
fn pg_name(t: &str) -> String {
    match t.parse::<datafusion::arrow::datatypes::DataType>() {
        Ok(t) => quipu_connectors::dialect::pg_functions::pg_type_name(&t),
        Err(_) => t.to_string(),
    }
}

/// The call of DataFusion's "Failed to coerce arguments to satisfy a call
/// to 'to_char' function: coercion from Decimal128(12, 2), Utf8 to the
/// signature OneOf(...) failed. No function matches the given name and
/// argument types 'to_char(Decimal128(12, 2), Utf8)'. ... Candidate
/// functions: ..." (two dozen lines), with PostgreSQL's names of the
/// argument types, as PostgreSQL says it: `to_char(numeric, text)`.
fn unmatched_call(m: &str) -> Option<String> {
    const MARK: &str = "No function matches the given name and argument types '";
    let rest = &m[m.find(MARK)? + MARK.len()..];
    let call = &rest[..rest.find("'.")?];
    let open = call.find('(')?;
    let args = call[open + 1..].strip_suffix(')')?;
    // The arguments, split at the commas outside parentheses.
    let (mut parts, mut depth, mut start) = (vec![], 0, 0);
    for (i, c) in args.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(args[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !args.trim().is_empty() {
        parts.push(args[start..].trim());
    }
    let mut types: Vec<String> = parts.into_iter().map(pg_name).collect();
    let name = match &call[..open] {
        quipu_connectors::dialect::ordered_sets::PERCENTILE_CONT => "percentile_cont",
        name => name,
    };
    // DataFusion passes an ordered-set aggregate its `WITHIN GROUP` key
    // first; PostgreSQL names the fraction first.
    if matches!(name, "percentile_cont" | "percentile_disc") && types.len() == 2 {
        types.swap(0, 1);
    }
    Some(format!("{name}({})", types.join(", ")))
}

fn arrow_message(a: &ArrowError) -> String {
    match a {
        ArrowError::DivideByZero => "division by zero".to_string(),
        ArrowError::CastError(m) | ArrowError::ParseError(m) => text_not_a_value(m)
            .or_else(|| out_of_range(m))
            .map_or_else(|| m.clone(), |(_, said)| said),
        ArrowError::InvalidArgumentError(m) | ArrowError::ComputeError(m)
            if let Some((_, said)) = out_of_range(m) =>
        {
            said
        }
        ArrowError::ExternalError(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::{Column, SchemaError};
    use datafusion::sql::sqlparser::parser::ParserError;

    fn plan(m: &str) -> DataFusionError {
        DataFusionError::Plan(m.to_string())
    }

    #[test]
    fn messages_name_the_problem_not_the_machinery() {
        let arrow = |a| DataFusionError::ArrowError(Box::new(a), None);
        let by_rule = DataFusionError::Context(
            "Optimizer rule 'simplify_expressions' failed".into(),
            Box::new(arrow(ArrowError::CastError(
                "Cannot cast string 'abc' to value of Int32 type".into(),
            ))),
        );
        assert_eq!(
            message(&SchedulerError::Query(by_rule)),
            "invalid input syntax for type integer: \"abc\""
        );
        let ours = DataFusionError::Context(
            "quipu_constant_overflow".into(),
            Box::new(DataFusionError::External(Box::new(arrow(
                ArrowError::DivideByZero,
            )))),
        );
        assert_eq!(message(&SchedulerError::Query(ours)), "division by zero");
        // A context that says something is kept; so is the class of a
        // planning error.
        let planning = plan("table 'x' not found");
        assert_eq!(
            message(&SchedulerError::Query(planning)),
            "Error during planning: table 'x' not found"
        );
        // A correlation DataFusion could not plan names the column.
        let outer = DataFusionError::NotImplemented(
            "Physical plan does not support logical expression OuterReferenceColumn(Field { \
             name: \"x\", data_type: Int64 }, Column { relation: Some(Bare { table: \"s\" }), \
             name: \"x\" })"
                .into(),
        );
        let said = message(&SchedulerError::Query(outer));
        assert!(
            said.starts_with("a subquery that reads the outer query's column \"x\""),
            "{said}"
        );
        // A column beside a grouping, in PostgreSQL's words (DataFusion's
        // spoke of a wildcard the query did not have).
        for m in [
            "Column in SELECT must be in GROUP BY or an aggregate function: While expanding \
             wildcard, column \"c.name\" must appear in the GROUP BY clause or must be part of \
             an aggregate function, currently only \"c.id\" appears in the SELECT clause \
             satisfies this requirement",
            "HAVING clause references: c.name must appear in the GROUP BY clause or be used in \
             an aggregate function",
        ] {
            let diagnosed = DataFusionError::Diagnostic(
                Box::new(datafusion::common::Diagnostic::new_error("x", None)),
                Box::new(plan(m)),
            );
            assert_eq!(
                message(&SchedulerError::Query(diagnosed)),
                "column \"c.name\" must appear in the GROUP BY clause or be used in an \
                 aggregate function"
            );
        }
    }

    #[test]
    fn a_call_no_function_takes_is_named_as_postgresql_names_it() {
        let datafusion = "Failed to coerce arguments to satisfy a call to 'to_char' function: \
            coercion from Decimal128(12, 2), Utf8 to the signature OneOf(Exact(Date32, Utf8), \
            Exact(Timestamp(µs, \"+TZ\"), Utf8)) failed. No function matches the given name and \
            argument types 'to_char(Decimal128(12, 2), Utf8)'. You might need to add explicit type \
            casts.\n\tCandidate functions:\n\tto_char(Date32, Utf8)";
        assert_eq!(
            message(&SchedulerError::Query(plan(datafusion))),
            "function to_char(numeric, text) does not exist: no form of it takes these argument \
             types (you might need to add explicit type casts)"
        );
        assert_eq!(
            unmatched_call("No function matches the given name and argument types 'f(Timestamp(µs, \"UTC\"), Int64, Struct(a Int32))'.").as_deref(),
            Some("f(timestamp with time zone, bigint, Struct(a Int32))")
        );
        assert_eq!(
            unmatched_call(
                "No function matches the given name and argument types \
                 'quipu_percentile_cont(Utf8, Decimal128(2, 1))'."
            )
            .as_deref(),
            Some("percentile_cont(numeric, text)")
        );
        assert_eq!(
            unmatched_call("No function matches the given name and argument types 'now()'.")
                .as_deref(),
            Some("now()")
        );
    }

    #[test]
    fn an_operator_no_form_takes_is_named_as_postgresql_names_it() {
        for (datafusion, said) in [
            (
                "Cannot infer common argument type for comparison operation Utf8View = Boolean",
                "text = boolean",
            ),
            (
                "Cannot coerce arithmetic expression Utf8 + Int64 to valid types",
                "text + bigint",
            ),
            (
                "Cannot get result type for temporal operation Date32 * Int64: Invalid \
                 argument error: Invalid date arithmetic operation: Date32 * \
                 Interval(MonthDayNano)",
                "date * bigint",
            ),
            (
                "Cannot infer common argument type for comparison operation \
                 Decimal128(38, 10) < Timestamp(ns)",
                "numeric < timestamp without time zone",
            ),
        ] {
            assert_eq!(
                message(&SchedulerError::Query(plan(datafusion))),
                format!(
                    "operator does not exist: {said}: no form of it takes these operand types \
                     (you might need to add explicit type casts)"
                ),
                "{datafusion}"
            );
        }
    }

    #[test]
    fn each_kind_has_one_sqlstate_and_one_grpc_code() {
        let cases: Vec<(SchedulerError, &str, tonic::Code)> = vec![
            (
                SchedulerError::PermissionDenied("crm".into()),
                "42501",
                tonic::Code::PermissionDenied,
            ),
            (
                SchedulerError::NotAdmin("CREATE VIEW".into()),
                "42501",
                tonic::Code::PermissionDenied,
            ),
            (
                SchedulerError::TableNotFound {
                    table: "nope".into(),
                    source: plan("table 'nope' not found"),
                },
                "42P01",
                tonic::Code::InvalidArgument,
            ),
            (
                DataFusionError::SQL(Box::new(ParserError::ParserError("x".into())), None).into(),
                "42601",
                tonic::Code::InvalidArgument,
            ),
            (
                DataFusionError::SchemaError(
                    Box::new(SchemaError::FieldNotFound {
                        field: Box::new(Column::from_name("b")),
                        valid_fields: vec![],
                    }),
                    Box::new(None),
                )
                .into(),
                "42703",
                tonic::Code::InvalidArgument,
            ),
            (
                DataFusionError::NotImplemented("x".into()).into(),
                "0A000",
                tonic::Code::Internal,
            ),
            (
                DataFusionError::ResourcesExhausted("x".into()).into(),
                "53200",
                tonic::Code::ResourceExhausted,
            ),
            (
                SchedulerError::NoExecutors {
                    scheduler: "s".into(),
                    waited: 1,
                },
                "57P03",
                tonic::Code::Unavailable,
            ),
            (
                SchedulerError::TooComplex(TooComplex {
                    what: "x".into(),
                    limit: 1,
                }),
                "54001",
                tonic::Code::InvalidArgument,
            ),
            (
                plan(
                    "Column in SELECT must be in GROUP BY or an aggregate function: While \
                     expanding wildcard, column \"o.total\" must appear in the GROUP BY clause \
                     or must be part of an aggregate function, currently only \"o.id\" appears \
                     in the SELECT clause satisfies this requirement",
                )
                .into(),
                "42803",
                tonic::Code::InvalidArgument,
            ),
            (
                SchedulerError::ClusterStart("x".into()),
                "58000",
                tonic::Code::Internal,
            ),
            (
                DataFusionError::Execution("x".into()).into(),
                "XX000",
                tonic::Code::Internal,
            ),
        ];
        for (e, sqlstate, code) in cases {
            let kind = Kind::of(&e);
            assert_eq!(kind.sqlstate(), sqlstate, "{e:?}");
            assert_eq!(kind.grpc(), code, "{e:?}");
            assert_eq!(status(e).code(), code);
        }
    }

    #[test]
    fn the_words_of_a_planning_error_do_not_make_it_a_missing_table() {
        // Only the engine's typed error is a missing table.
        let e: SchedulerError = plan("table 'x' not found").into();
        assert_eq!(Kind::of(&e), Kind::InvalidStatement);
        assert_eq!(Kind::of(&e).sqlstate(), "42000");
    }

    #[test]
    fn wrapped_errors_keep_their_kind() {
        // DataFusion's wrappers: the root decides.
        let wrapped = DataFusionError::Context(
            "planning".into(),
            Box::new(DataFusionError::ResourcesExhausted("x".into())),
        );
        assert_eq!(Kind::of(&wrapped.into()), Kind::OutOfMemory);
        // One of ours inside DataFusion's External.
        let ours = DataFusionError::External(Box::new(SchedulerError::NoExecutors {
            scheduler: "s".into(),
            waited: 1,
        }));
        assert_eq!(Kind::of(&ours.into()), Kind::NoExecutors);
    }

    #[test]
    fn values_that_cannot_be_computed_are_data_exceptions() {
        let arrow = |a: ArrowError| -> SchedulerError {
            DataFusionError::Context(
                "Optimizer rule 'simplify_expressions' failed".into(),
                Box::new(DataFusionError::ArrowError(Box::new(a), None)),
            )
            .into()
        };
        for (e, sqlstate) in [
            (arrow(ArrowError::DivideByZero), "22012"),
            (arrow(ArrowError::ArithmeticOverflow("x".into())), "22003"),
            (arrow(ArrowError::ParseError("x".into())), "22P02"),
            (arrow(ArrowError::CastError("x".into())), "22000"),
        ] {
            let kind = Kind::of(&e);
            assert_eq!(kind.sqlstate(), sqlstate, "{e:?}");
            assert_eq!(kind.grpc(), tonic::Code::InvalidArgument);
        }
        assert_eq!(
            Kind::of(&arrow(ArrowError::MemoryError("x".into()))),
            Kind::Internal
        );
    }
}
