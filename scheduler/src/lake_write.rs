//! Write statements into the lake, as the session sees them: the `WITH
//! (partition_by = ...)` option of `CREATE TABLE ... AS` taken off the
//! statement before DataFusion plans it (DataFusion refuses table options),
//! the planned `CREATE TABLE ... AS` into a source turned into a
//! `DmlStatement` (`WriteOp::Ctas`) that carries the option, the refusal
//! of writes Quipu does not do, and the write itself
//! (`quipu_connectors::lake::write`).

use std::sync::Arc;

use datafusion::arrow::array::UInt64Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::TableReference;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{DdlStatement, DmlStatement, LogicalPlan, WriteOp};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{
    CreateTableOptions, Expr, SqlOption, Statement as SqlStatement, Value,
};
use quipu_catalog::{DEFAULT_CATALOG, TableName};
use quipu_connectors::QuipuSession;
use quipu_connectors::lake::write::{CtasTarget, LakeWrite};

use crate::error::Result;
use crate::streams::{ExecutedOn, QueryOutput};

/// The `reason` of the output of an `INSERT` into the lake (the front doors
/// answer it with PostgreSQL's `INSERT 0 n`).
pub const WRITE_INSERT: &str = "a write to the lake (INSERT)";
/// The `reason` of the output of a `CREATE TABLE ... AS` into the lake
/// (answered `SELECT n`, as PostgreSQL does).
pub const WRITE_CTAS: &str = "a write to the lake (CREATE TABLE AS)";

/// What `WITH (...)` said on a `CREATE TABLE ... AS`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct WriteOptions {
    pub(crate) partition_by: Option<Vec<String>>,
}

fn bad(msg: String) -> DataFusionError {
    DataFusionError::Plan(msg)
}

/// Takes Quipu's options off a `CREATE TABLE ... WITH (...) AS` statement.
/// The only option is `partition_by = 'col'` (or `'a, b'`, outermost
/// folder first); any other is an error naming it.
pub(crate) fn take_options(mut statement: Statement) -> Result<(Statement, WriteOptions)> {
    let mut out = WriteOptions::default();
    let Statement::Statement(inner) = &mut statement else {
        return Ok((statement, out));
    };
    let SqlStatement::CreateTable(create) = inner.as_mut() else {
        return Ok((statement, out));
    };
    let options = match std::mem::take(&mut create.table_options) {
        CreateTableOptions::With(options) => options,
        CreateTableOptions::None => return Ok((statement, out)),
        other => {
            create.table_options = other;
            return Ok((statement, out));
        }
    };
    if create.query.is_none() {
        return Err(bad(
            "WITH (...) options apply to CREATE TABLE ... AS SELECT into the lake".into(),
        )
        .into());
    }
    for option in options {
        let SqlOption::KeyValue { key, value } = &option else {
            return Err(bad(format!(
                "unknown CREATE TABLE option `{option}`; Quipu knows partition_by = 'column'"
            ))
            .into());
        };
        if !key.value.eq_ignore_ascii_case("partition_by") {
            return Err(bad(format!(
                "unknown CREATE TABLE option `{}`; Quipu knows partition_by = 'column'",
                key.value
            ))
            .into());
        }
        let text = match value {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                _ => String::new(),
            },
            Expr::Identifier(i) => i.value.clone(),
            _ => String::new(),
        };
        let columns: Vec<String> = text
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        if columns.is_empty() {
            return Err(bad(format!(
                "partition_by = {value}: give the column names as text, e.g. partition_by = 'month'"
            ))
            .into());
        }
        out.partition_by = Some(columns);
    }
    Ok((statement, out))
}

/// An `INSERT`'s target and query, kept to explain DataFusion's "Column
/// count doesn't match insert query!" (which names neither).
pub(crate) struct InsertShape {
    table: String,
    columns: Vec<String>,
    source: Box<datafusion::sql::sqlparser::ast::Query>,
}

/// The parts of an `INSERT INTO ... SELECT` statement, if it is one.
pub(crate) fn insert_shape(statement: &Statement) -> Option<InsertShape> {
    use datafusion::sql::sqlparser::ast::TableObject;
    let Statement::Statement(inner) = statement else {
        return None;
    };
    let SqlStatement::Insert(insert) = inner.as_ref() else {
        return None;
    };
    let TableObject::TableName(name) = &insert.table else {
        return None;
    };
    Some(InsertShape {
        table: name.to_string(),
        columns: insert.columns.iter().map(|c| c.to_string()).collect(),
        source: insert.source.clone()?,
    })
}

/// DataFusion's column-count error of an `INSERT` said again with the
/// table, the columns the table wants and the ones the query gives.
pub(crate) async fn column_count_error(
    state: &SessionState,
    shape: Option<InsertShape>,
    e: &DataFusionError,
) -> Option<DataFusionError> {
    let shape = shape?;
    if !e.to_string().contains("Column count doesn't match") {
        return None;
    }
    let query = state
        .statement_to_plan(Statement::Statement(Box::new(SqlStatement::Query(
            shape.source,
        ))))
        .await
        .ok()?;
    let given: Vec<String> = query
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let wanted = if shape.columns.is_empty() {
        let reference = TableReference::from(shape.table.as_str());
        let table = state
            .schema_for_ref(reference.clone())
            .ok()?
            .table(reference.table())
            .await
            .ok()??;
        table
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    } else {
        shape.columns
    };
    Some(DataFusionError::Plan(format!(
        "INSERT INTO {}: the query gives {} column(s) ({}) but {} are to be filled ({}); \
         give one value per column, in that order, or name the columns: INSERT INTO {} (col, ...) SELECT ...",
        shape.table,
        given.len(),
        given.join(", "),
        wanted.len(),
        wanted.join(", "),
        shape.table
    )))
}

/// The catalog, schema and table a write names, with the session's
/// defaults filled in.
fn resolve(state: &SessionState, name: &TableReference) -> TableName {
    let defaults = &state.config_options().catalog;
    let r = name
        .clone()
        .resolve(&defaults.default_catalog, &defaults.default_schema);
    TableName::new(r.catalog.as_ref(), r.schema.as_ref(), r.table.as_ref())
}

/// A planned `CREATE TABLE ... AS` into a source becomes a write
/// (`WriteOp::Ctas`); one into the `quipu` catalog stays what it was
/// (refused where it is registered: Quipu stores no table data).
pub(crate) fn ctas_into_source(
    state: &SessionState,
    plan: LogicalPlan,
    options: WriteOptions,
) -> Result<LogicalPlan> {
    let LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) = &plan else {
        if options.partition_by.is_some() {
            return Err(bad("partition_by applies to CREATE TABLE ... AS SELECT".into()).into());
        }
        return Ok(plan);
    };
    let name = resolve(state, &create.name);
    if name.source == DEFAULT_CATALOG {
        if options.partition_by.is_some() {
            return Err(bad(format!(
                "partition_by applies to tables of a lake source, not to {name}"
            ))
            .into());
        }
        return Ok(plan);
    }
    if create.or_replace {
        return Err(DataFusionError::NotImplemented(format!(
            "CREATE OR REPLACE TABLE {name}: Quipu does not replace lake tables; write into a new name, or INSERT INTO it"
        ))
        .into());
    }
    if create.temporary {
        return Err(DataFusionError::NotImplemented(format!(
            "CREATE TEMPORARY TABLE {name}: Quipu writes lasting lake tables only"
        ))
        .into());
    }
    let target = CtasTarget {
        schema: Arc::new(create.input.schema().as_arrow().clone()),
        partition_by: options.partition_by.unwrap_or_default(),
        if_not_exists: create.if_not_exists,
    };
    Ok(LogicalPlan::Dml(DmlStatement::new(
        TableReference::full(name.source, name.schema, name.table),
        Arc::new(target),
        WriteOp::Ctas,
        create.input.clone(),
    )))
}

/// What a write plan asks for, or why Quipu does not do it.
pub(crate) fn write_of(state: &SessionState, dml: &DmlStatement) -> Result<(TableName, LakeWrite)> {
    let name = resolve(state, &dml.table_name);
    let op = match &dml.op {
        WriteOp::Insert(InsertOp::Append) => LakeWrite::Insert,
        WriteOp::Ctas => {
            let any: &dyn std::any::Any = dml.target.as_ref();
            let target = any.downcast_ref::<CtasTarget>().ok_or_else(|| {
                DataFusionError::Internal("CREATE TABLE AS without its target".into())
            })?;
            LakeWrite::Create {
                partition_by: target.partition_by.clone(),
                if_not_exists: target.if_not_exists,
            }
        }
        other => {
            return Err(DataFusionError::NotImplemented(format!(
                "{other} on {name} is not supported: Quipu writes to the lake only with \
                 CREATE TABLE ... AS SELECT and INSERT INTO ... SELECT"
            ))
            .into());
        }
    };
    if name.source == DEFAULT_CATALOG {
        return Err(DataFusionError::NotImplemented(format!(
            "cannot write into {name}: it is a view; Quipu writes only to lake tables"
        ))
        .into());
    }
    Ok((name, op))
}

/// Runs a write and answers like DataFusion's DML: one row, the number of
/// rows written, in a column `count`.
pub(crate) async fn run(
    session: &QuipuSession,
    state: &SessionState,
    dml: &DmlStatement,
) -> Result<QueryOutput> {
    let (name, op) = write_of(state, dml)?;
    let reason = match op {
        LakeWrite::Insert => WRITE_INSERT,
        LakeWrite::Create { .. } => WRITE_CTAS,
    };
    let rows = session
        .write_lake(state, &name, op, dml.input.as_ref().clone())
        .await?;
    let schema = Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(UInt64Array::from(vec![rows]))],
    )
    .map_err(DataFusionError::from)?;
    Ok(QueryOutput {
        schema: schema.clone(),
        stream: Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(vec![Ok(batch)]),
        )),
        executed_on: ExecutedOn::Local,
        reason: reason.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParserBuilder;

    fn parse(sql: &str) -> Statement {
        DFParserBuilder::new(sql)
            .build()
            .unwrap()
            .parse_statements()
            .unwrap()
            .pop_front()
            .unwrap()
    }

    #[test]
    fn partition_by_is_taken_off_the_statement() {
        let (statement, options) = take_options(parse(
            "CREATE TABLE lake.a.t WITH (partition_by = 'month, day') AS SELECT 1 AS x",
        ))
        .unwrap();
        assert_eq!(
            options.partition_by,
            Some(vec!["month".to_string(), "day".to_string()])
        );
        assert!(
            !statement.to_string().contains("partition_by"),
            "{statement}"
        );
        for (sql, says) in [
            (
                "CREATE TABLE lake.a.t WITH (format = 'csv') AS SELECT 1",
                "unknown CREATE TABLE option `format`",
            ),
            (
                "CREATE TABLE lake.a.t WITH (partition_by = '') AS SELECT 1",
                "give the column names",
            ),
            (
                "CREATE TABLE lake.a.t (x int) WITH (partition_by = 'x')",
                "CREATE TABLE ... AS SELECT",
            ),
        ] {
            let err = take_options(parse(sql)).unwrap_err().to_string();
            assert!(err.contains(says), "{sql}: {err}");
        }
    }
}
