//! The simple query protocol, and what both protocols share to run a
//! query: parsing with PostgreSQL's compatibility rewrites under the
//! statement limits, planning where a cancel or `statement_timeout` can
//! stop waiting for it, and rows encoded as PostgreSQL's (names, text
//! forms) until the last one is sent.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures::{Sink, Stream, StreamExt, TryStreamExt};
use pgwire::api::portal::Format;
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;
use quipu_scheduler::{ClientSession, SchedulerError, Work};
use tokio_util::sync::CancellationToken;

use super::connection::Conn;
use super::errors::{canceled, engine_error, error};
use super::extended::QuipuParser;
use super::settings::classify;

impl Conn {
    /// Runs a query through the engine and turns its batches into rows,
    /// honouring cancel requests and `statement_timeout` until the last
    /// row is sent.
    pub(super) async fn run_query<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        session: &Arc<ClientSession>,
        work: Work,
        format: &Format,
        names: Option<&[Option<String>]>,
    ) -> PgWireResult<Response> {
        let token = self.new_token();
        let deadline = self.timeout().map(|t| tokio::time::Instant::now() + t);
        let planning = session.clone();
        let planned = bounded(&token, deadline, async move {
            planning.prepare(work, false).await
        })
        .await?;
        // The start is not on a thread of its own (see `bounded`): a
        // statement cancelled while it starts must drop its remote queries
        // here, and with the start on another task one was seen still
        // running on its source.
        let out = tokio::select! {
            biased;
            _ = token.cancelled() => return Err(canceled(false)),
            _ = sleep_until(deadline) => return Err(canceled(true)),
            out = session.launch(planned) => out.and_then(quipu_scheduler::streams::one).map_err(engine_error)?,
        };
        // A write to the lake has already happened when `launch` returns:
        // answered as PostgreSQL does, `INSERT 0 n` / `SELECT n`.
        if out.reason == quipu_scheduler::WRITE_INSERT || out.reason == quipu_scheduler::WRITE_CTAS
        {
            let batches: Vec<RecordBatch> = out
                .stream
                .try_collect()
                .await
                .map_err(|e| engine_error(SchedulerError::from(e)))?;
            let rows: u64 = batches
                .iter()
                .filter_map(|b| {
                    b.column(0)
                        .as_any()
                        .downcast_ref::<datafusion::arrow::array::UInt64Array>()
                        .map(|a| a.iter().flatten().sum::<u64>())
                })
                .sum();
            let tag = if out.reason == quipu_scheduler::WRITE_INSERT {
                Tag::new("INSERT").with_oid(0).with_rows(rows as usize)
            } else {
                Tag::new("SELECT").with_rows(rows as usize)
            };
            return Ok(Response::Execution(tag));
        }
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        // The hidden columns of numerics' places come off
        // (`quipu_scheduler::scales`).
        let places = super::text_out::Places::of(&out.schema);
        let schema = match &places {
            Some(p) => Arc::new(p.schema(&out.schema)),
            None => out.schema.clone(),
        };
        let fields = Arc::new(renamed(
            super::text_out::pg_fields(&schema, format, Some(options))?,
            names,
        ));
        let batches = guarded(out.stream, token, deadline);
        let rows_fields = fields.clone();
        let mending = super::text_out::Mending::of(&fields);
        let encoding = super::text_out::encoding_fields(&fields);
        let zone =
            super::settings::setting(&self.settings, "timezone").unwrap_or_else(|| "UTC".into());
        let rows = batches
            .map(
                move |b| -> Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send + Sync> {
                    let b = b.and_then(|batch| {
                        let batch = super::text_out::overflowed_decimals(batch)
                            .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
                        let batch = match &places {
                            Some(p) => p.apply(batch, &rows_fields),
                            None => Ok(batch),
                        };
                        batch
                            .and_then(|batch| {
                                super::text_out::pg_text_batch(batch, &rows_fields, &zone)
                            })
                            .map_err(|e| PgWireError::ApiError(Box::new(e)))
                    });
                    match b {
                        Ok(batch) => {
                            let nulls = super::text_out::interval_nulls(&batch);
                            let rows =
                                arrow_pg::datatypes::encode_recordbatch(encoding.clone(), batch);
                            let rows = super::text_out::with_interval_nulls(rows, nulls);
                            match mending.is_empty() {
                                true => rows,
                                false => {
                                    let mending = mending.clone();
                                    Box::new(rows.map(move |r| r.map(|row| mending.apply(row))))
                                }
                            }
                        }
                        Err(e) => Box::new(std::iter::once(Err(e))),
                    }
                },
            )
            .flat_map(futures::stream::iter);
        Ok(Response::Query(QueryResponse::new(fields, rows)))
    }
}

/// The fields under PostgreSQL's names for them, where the select list
/// tells them (`column_names::fitted`).
pub(super) fn renamed(fields: Vec<FieldInfo>, names: Option<&[Option<String>]>) -> Vec<FieldInfo> {
    let Some(names) =
        names.and_then(|n| quipu_connectors::dialect::column_names::fitted(n, fields.len()))
    else {
        return fields;
    };
    fields
        .into_iter()
        .zip(names)
        .map(|(f, name)| match name {
            Some(name) => FieldInfo::new(
                name,
                f.table_id(),
                f.column_id(),
                f.datatype().clone(),
                f.format(),
            ),
            None => f,
        })
        .collect()
}

/// Runs a statement's planning on a thread of its own, so that a cancel
/// request or `statement_timeout` answers the client on time even while
/// the planner is busy: planning is CPU work that does not yield, so a
/// `select!` beside it in the same task only woke once it was done, and on
/// a runtime worker it also held up every other connection served by that
/// worker. The thread is a blocking-pool thread driving the planning
/// future; on cancel or timeout the future is dropped at its next yield
/// (the statement limits, `quipu_scheduler::limits`, bound how long that
/// can take) and the client has its answer at once. Only planning runs
/// there: it starts nothing on the sources but the planner's statistics
/// lookups.
pub(super) async fn bounded<T: Send + 'static>(
    token: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
    work: impl std::future::Future<Output = quipu_scheduler::Result<T>> + Send + 'static,
) -> PgWireResult<T> {
    let stop = token.child_token();
    let stopped = stop.clone();
    let runtime = tokio::runtime::Handle::current();
    let task = tokio::task::spawn_blocking(move || {
        runtime.block_on(async move {
            tokio::select! {
                biased;
                _ = stopped.cancelled() => None,
                out = work => Some(out),
            }
        })
    });
    let out = tokio::select! {
        biased;
        _ = token.cancelled() => Err(canceled(false)),
        _ = sleep_until(deadline) => Err(canceled(true)),
        out = task => match out {
            Ok(Some(out)) => out.map_err(engine_error),
            Ok(None) => Err(canceled(false)),
            Err(e) => Err(error("XX000", format!("statement planning failed: {e}"))),
        },
    };
    stop.cancel();
    out
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The batches of a running statement, ended by an error when the client
/// cancels or the statement timeout passes (dropping the stream stops the
/// scans and the cluster job).
fn guarded(
    stream: datafusion::execution::SendableRecordBatchStream,
    token: CancellationToken,
    deadline: Option<tokio::time::Instant>,
) -> impl Stream<Item = PgWireResult<RecordBatch>> + Send {
    futures::stream::unfold(Some(stream), move |state| {
        let token = token.clone();
        async move {
            let mut stream = state?;
            tokio::select! {
                biased;
                _ = token.cancelled() => Some((Err(canceled(false)), None)),
                _ = sleep_until(deadline) => Some((Err(canceled(true)), None)),
                item = stream.next() => match item {
                    None => None,
                    Some(Ok(batch)) => Some((Ok(batch), Some(stream))),
                    Some(Err(e)) => Some((
                        Err(engine_error(SchedulerError::Query(e))),
                        None,
                    )),
                },
            }
        }
    })
}

/// Parses SQL text with the PostgreSQL-compatibility rewrites of
/// datafusion-pg-catalog (casts to `regclass`, `OPERATOR(pg_catalog.~)`,
/// ... that psql and JDBC send), refusing text over the statement limits
/// (`quipu_scheduler::limits`) before the parser sees it. Statements that
/// read no system table skip the one rewrite that changes answers
/// ([`super::catalog_sql::parse_user_sql`]).
pub(crate) fn parse_sql(sql: &str) -> PgWireResult<Vec<Statement>> {
    quipu_scheduler::limits::check_sql_text(sql)
        .map_err(|e| error(quipu_scheduler::limits::TooComplex::SQLSTATE, e.to_string()))?;
    // Built once: `new()` tokenizes the parser's whole rewrite table, which
    // cost more than the rest of a `SELECT 1` (measured with perf).
    static PARSER: std::sync::LazyLock<datafusion_pg_catalog::sql::PostgresCompatibilityParser> =
        std::sync::LazyLock::new(datafusion_pg_catalog::sql::PostgresCompatibilityParser::new);
    // PostgreSQL syntax sqlparser lacks (`REFRESH MATERIALIZED VIEW`,
    // `trim(trailing FROM s)`), as the engine reads it.
    let sql = quipu_scheduler::sugar::desugar(sql);
    let mut statements = match super::catalog_sql::parse_user_sql(&sql) {
        Some(statements) => statements,
        None => PARSER
            .parse(&sql)
            .map_err(|e| error("42601", e.to_string()))?,
    };
    for s in &mut statements {
        super::catalog_sql::regproc_names(s);
        super::catalog_sql::array_literals(s);
        super::catalog_sql::system_views(s);
        super::catalog_sql::empty_policies(s);
        super::catalog_sql::index_definitions(s);
    }
    Ok(statements)
}

/// The command tag of a statement that returns no rows, as PostgreSQL
/// answers it: a materialized-view statement (`CREATE MATERIALIZED
/// VIEW`, ...), `CREATE VIEW`, `DROP VIEW`, `CREATE SCHEMA`. None for any
/// other statement (a view's statement was answered as an empty result
/// of no columns: psql printed `--` and `(0 rows)`).
pub(super) fn command_tag(stmt: &Statement) -> Option<&'static str> {
    use datafusion::sql::sqlparser::ast::ObjectType;
    match stmt {
        Statement::CreateView(v) if !v.materialized => return Some("CREATE VIEW"),
        Statement::Drop {
            object_type: ObjectType::View,
            ..
        } => return Some("DROP VIEW"),
        Statement::CreateSchema { .. } => return Some("CREATE SCHEMA"),
        _ => {}
    }
    match quipu_scheduler::cache::statement::of_sql(stmt)? {
        Ok(statement) => Some(statement.tag()),
        // The engine reports the error when it runs the statement.
        Err(_) => Some("SELECT"),
    }
}

impl Conn {
    /// Runs a statement of no rows (a view's, a materialized view's): its
    /// work is done when it starts; the client gets PostgreSQL's command
    /// tag.
    pub(super) async fn run_command<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        session: &Arc<ClientSession>,
        stmt: Statement,
        tag: &str,
    ) -> PgWireResult<Response> {
        let work = Work::Statement(DfStatement::Statement(Box::new(stmt)));
        self.run_query(client, session, work, &Format::UnifiedText, None)
            .await
            .map(|_| Response::Execution(Tag::new(tag)))
    }
}

pub(super) struct QueryHandler {
    pub(super) conn: Arc<Conn>,
    pub(super) parser: Arc<QuipuParser>,
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self.conn.session(client).await?;
        let statements = parse_sql(query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        // Each statement's `/*+ quipu.max_staleness = ... */` settings.
        let hints = quipu_scheduler::hints::of_text(query).map_err(engine_error)?;
        let mut out = Vec::with_capacity(statements.len());
        for (stmt, hints) in quipu_scheduler::hints::zip(statements, hints) {
            let copy = super::copy_out::copy_out(&stmt);
            let command = command_tag(&stmt);
            let resp = match classify(&stmt) {
                Some(local) => self.conn.run_local(&local),
                None if let Some(tag) = command => {
                    self.conn.run_command(client, &session, stmt, tag).await
                }
                None if copy.is_some() => match copy.expect("checked") {
                    Err(why) => Err(error("0A000", why)),
                    Ok(copy) => {
                        let names =
                            quipu_connectors::dialect::column_names::result_names(&copy.query);
                        let work = Work::Hinted(
                            DfStatement::Statement(Box::new(copy.query.clone())),
                            hints,
                        );
                        let format = match copy.binary {
                            true => Format::UnifiedBinary,
                            false => Format::UnifiedText,
                        };
                        match self
                            .conn
                            .run_query(client, &session, work, &format, names.as_deref())
                            .await
                        {
                            Ok(Response::Query(answer)) => Ok(copy.response(answer)),
                            other => other,
                        }
                    }
                },
                None => {
                    let names = quipu_connectors::dialect::column_names::result_names(&stmt);
                    self.conn
                        .run_query(
                            client,
                            &session,
                            Work::Hinted(DfStatement::Statement(Box::new(stmt)), hints),
                            &Format::UnifiedText,
                            names.as_deref(),
                        )
                        .await
                }
            };
            match resp {
                Ok(r) => out.push(r),
                // Later statements of the same text do not run after an
                // error, as in PostgreSQL.
                Err(PgWireError::UserError(info)) => {
                    out.push(Response::Error(info));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let sql = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
        let err = parse_sql(&sql).unwrap_err().to_string();
        assert!(err.contains("levels of parentheses"), "{err}");
        let ors: Vec<String> = (0..20_000).map(|i| format!("a = {i}")).collect();
        let err = parse_sql(&format!("SELECT 1 WHERE {}", ors.join(" OR ")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("operators"), "{err}");
    }
}
