//! The Flight SQL service: every call checks the bearer token
//! (`super::sessions`), then plans and starts statements with the token's
//! session, hands out their streams by ticket (`super::tickets`), answers
//! metadata (`super::metadata`) and the admin action (`super::admin`).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandStatementQuery, DoPutPreparedStatementResult,
    ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    ActionType, FlightDescriptor, FlightInfo, HandshakeRequest, IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::scalar::ScalarValue;
use futures::{Stream, TryStreamExt};
use prost::Message;
use quipu_catalog::CatalogStore;
use quipu_scheduler::hints::Hints;
use quipu_scheduler::{ClientSession, Engine, SchedulerError};
use tonic::{Request, Response, Status, Streaming};

use super::admin::AdminHandler;
use super::limits::{LoginBackoff, SessionTable};
use super::sessions::{HandshakeStream, UserSession};
use super::tickets::{Handle, Part};
use crate::error_codes::status;

pub(super) struct QuipuFlightSql {
    pub(super) engine: Arc<Engine>,
    pub(super) admin: Option<AdminHandler>,
    pub(super) store: Arc<CatalogStore>,
    pub(super) sessions: Mutex<SessionTable<UserSession>>,
    pub(super) logins: Mutex<LoginBackoff>,
    pub(super) handles: Mutex<HashMap<Vec<u8>, Handle>>,
    pub(super) parts: Mutex<HashMap<Vec<u8>, Part>>,
}

/// The schema a statement's rows will have: its plan's after analysis
/// (type coercion and Quipu's rules give `SELECT 7` an `Int32`, the plan as
/// written says `Int64`; ADBC refuses a stream whose schema differs from
/// the one announced: "endpoint 0 returned inconsistent schema").
fn announced_schema(session: &ClientSession, plan: &LogicalPlan) -> Schema {
    match session.analyze(plan.clone()) {
        Ok(analyzed) => analyzed.schema().as_arrow().clone(),
        Err(_) => plan.schema().as_arrow().clone(),
    }
}

fn schema_ipc(schema: &Schema) -> std::result::Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

pub(super) type DoGetStream =
    Pin<Box<dyn Stream<Item = std::result::Result<arrow_flight::FlightData, Status>> + Send>>;

/// Batches as a `DoGet` stream.
fn flight_stream(
    schema: SchemaRef,
    batches: impl Stream<Item = std::result::Result<RecordBatch, FlightError>> + Send + 'static,
) -> Response<DoGetStream> {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(batches)
        .map_err(Status::from);
    Response::new(Box::pin(stream))
}

fn one_batch<E: Into<FlightError> + Send + 'static>(
    schema: SchemaRef,
    batch: std::result::Result<RecordBatch, E>,
) -> Response<DoGetStream> {
    flight_stream(
        schema,
        futures::stream::once(async move { batch.map_err(Into::into) }),
    )
}

/// The first row of a parameter batch, as `$1, $2, ...`.
fn params_of(batches: &[RecordBatch]) -> std::result::Result<ParamValues, Status> {
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(ParamValues::List(vec![]));
    };
    let values = batch
        .columns()
        .iter()
        .map(|c| ScalarValue::try_from_array(c, 0).map(Into::into))
        .collect::<datafusion::error::Result<Vec<_>>>()
        .map_err(|e| Status::invalid_argument(format!("bad parameter values: {e}")))?;
    Ok(ParamValues::List(values))
}

/// The freshness settings of a call's headers (`x-quipu-max-staleness`,
/// `x-quipu-stale-cache`: `quipu_scheduler::hints`), for the statement
/// the call plans.
fn header_hints<T>(request: &Request<T>) -> std::result::Result<Hints, Status> {
    let pairs: Vec<(String, String)> = request
        .metadata()
        .iter()
        .filter_map(|kv| match kv {
            tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                Some((k.as_str().to_string(), v.to_str().ok()?.to_string()))
            }
            tonic::metadata::KeyAndValueRef::Binary(..) => None,
        })
        .collect();
    quipu_scheduler::hints::of_headers(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(status)
}

impl QuipuFlightSql {
    /// Plans one statement; `headers`: the call's freshness settings (a
    /// `/*+ */` hint in the statement wins over them).
    async fn plan(
        &self,
        session: &ClientSession,
        sql: &str,
        headers: &Hints,
    ) -> std::result::Result<LogicalPlan, Status> {
        let sql = quipu_scheduler::lexer::number_placeholders(sql);
        let mut statements = session.parse_hinted(&sql).map_err(status)?;
        if statements.len() != 1 {
            return Err(Status::invalid_argument(format!(
                "expected exactly one statement, got {}",
                statements.len()
            )));
        }
        let (statement, hints) = statements.remove(0);
        let hints = hints.over(headers);
        if quipu_scheduler::cache::statement::of(&statement).is_some() {
            // A materialized-view statement acts when it runs; its answer
            // has no rows.
            let out = session.run(statement).await.map_err(status)?;
            out.stream
                .try_collect::<Vec<_>>()
                .await
                .map_err(|e| status(SchedulerError::Query(e)))?;
            return Ok(LogicalPlan::EmptyRelation(
                datafusion::logical_expr::EmptyRelation {
                    produce_one_row: false,
                    schema: Arc::new(datafusion::common::DFSchema::empty()),
                },
            ));
        }
        let plan = session
            .plan_hinted(statement, &hints)
            .await
            .map_err(status)?;
        session.check(&plan).map_err(status)?;
        if matches!(plan, LogicalPlan::Statement(_)) {
            // `SET ...` takes effect when it is planned (or prepared):
            // clients such as ADBC's driver may never fetch the empty
            // result of a statement without rows. (A statement answers
            // with no endpoint; a prepared one runs it again at `DoGet`,
            // which is harmless.)
            let out = session.run_plan(plan.clone()).await.map_err(status)?;
            out.stream
                .try_collect::<Vec<_>>()
                .await
                .map_err(|e| status(SchedulerError::Query(e)))?;
        }
        Ok(plan)
    }

    async fn run(
        &self,
        session: &ClientSession,
        plan: LogicalPlan,
        params: Option<ParamValues>,
    ) -> std::result::Result<Response<DoGetStream>, Status> {
        // The schema announced in `GetFlightInfo` is the prepared plan's;
        // with its parameters bound, a column can become non-nullable
        // (`CAST($1 AS BIGINT) + 1`), and ADBC refuses a stream whose
        // schema differs ("endpoint 0 returned inconsistent schema").
        let announced: SchemaRef = Arc::new(announced_schema(session, &plan));
        let bound = params.is_some();
        let plan = match params {
            Some(p) => plan
                .replace_params_with_values(&p)
                .map_err(|e| status(SchedulerError::Query(e)))?,
            None => plan,
        };
        let out = session.run_plan(plan).await.map_err(status)?;
        let batches = out
            .stream
            .map_err(|e| FlightError::ExternalError(Box::new(e)));
        let same_types = out.schema.fields().len() == announced.fields().len()
            && out
                .schema
                .fields()
                .iter()
                .zip(announced.fields())
                .all(|(a, b)| a.data_type() == b.data_type());
        if out.schema == announced || (!bound && same_types) {
            return Ok(flight_stream(out.schema, batches));
        }
        let schema = announced.clone();
        let batches = batches.and_then(move |batch| {
            let schema = schema.clone();
            async move {
                let columns = batch
                    .columns()
                    .iter()
                    .zip(schema.fields())
                    .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok(RecordBatch::try_new(schema, columns)?)
            }
        });
        Ok(flight_stream(announced, batches))
    }
}

#[tonic::async_trait]
impl FlightSqlService for QuipuFlightSql {
    type FlightService = QuipuFlightSql;

    /// `quipu.admin` (`super::admin`).
    async fn do_action_fallback(
        &self,
        request: Request<arrow_flight::Action>,
    ) -> std::result::Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        self.admin(request).await
    }

    async fn list_custom_actions(&self) -> Option<Vec<std::result::Result<ActionType, Status>>> {
        Some(super::admin::actions())
    }

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> std::result::Result<Response<HandshakeStream>, Status> {
        self.handshake(request).await
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        _message: Any,
    ) -> std::result::Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.user(&request)?;
        Err(Status::invalid_argument("unknown ticket type"))
    }

    /// Starts the statement and answers with one endpoint per stream: one,
    /// or one per partition when the plan runs in-process with
    /// independent partitions (a client such as ADBC then reads them in
    /// parallel). Nothing is read before the `DoGet`s.
    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let (token, user) = self.user(&request)?;
        let headers = header_hints(&request)?;
        let plan = self.plan(&user.session, &query.query, &headers).await?;
        let schema = announced_schema(&user.session, &plan);
        if matches!(plan, LogicalPlan::Statement(_)) {
            // Done while planning (`SET ...`); no rows, so no endpoint to
            // leave unread.
            return self.info_endpoints(&schema, vec![], request.into_inner());
        }
        let outs = user
            .session
            .run_plan_partitions(plan)
            .await
            .map_err(status)?;
        let tickets = self.park(&token, outs)?;
        self.info_endpoints(&schema, tickets, request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let (token, _) = self.user(&request)?;
        let part = self.take_part(&ticket.statement_handle, &token)?;
        let batches = part
            .stream
            .map_err(|e| FlightError::ExternalError(Box::new(e)));
        Ok(flight_stream(part.schema, batches))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> std::result::Result<ActionCreatePreparedStatementResult, Status> {
        let (token, user) = self.user(&request)?;
        let headers = header_hints(&request)?;
        let plan = self.plan(&user.session, &query.query, &headers).await?;
        let dataset_schema = schema_ipc(&announced_schema(&user.session, &plan))?;
        let mut params: Vec<(usize, Option<DataType>)> = plan
            .get_parameter_types()
            .map_err(|e| status(SchedulerError::Query(e)))?
            .into_iter()
            .filter_map(|(id, t)| Some((id.trim_start_matches('$').parse().ok()?, t)))
            .collect();
        params.sort_by_key(|(i, _)| *i);
        let parameter_schema = Schema::new(
            params
                .into_iter()
                .map(|(i, t)| Field::new(format!("${i}"), t.unwrap_or(DataType::Utf8), true))
                .collect::<Vec<_>>(),
        );
        let handle = self.new_handle(Handle {
            token,
            plan,
            params: None,
        });
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema,
            parameter_schema: schema_ipc(&parameter_schema)?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> std::result::Result<DoPutPreparedStatementResult, Status> {
        let (token, _) = self.user(&request)?;
        self.handle(&query.prepared_statement_handle, &token)?;
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
                request.into_inner().map_err(FlightError::from),
            )
            .try_collect()
            .await
            .map_err(|e| Status::invalid_argument(format!("bad parameter batch: {e}")))?;
        let params = params_of(&batches)?;
        if let Some(h) = self
            .handles
            .lock()
            .unwrap()
            .get_mut(query.prepared_statement_handle.as_ref())
        {
            h.params = Some(params);
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let (token, user) = self.user(&request)?;
        let (plan, _) = self.handle(&cmd.prepared_statement_handle, &token)?;
        let schema = announced_schema(&user.session, &plan);
        self.info(&schema, cmd.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let (token, user) = self.user(&request)?;
        let (plan, params) = self.handle(&cmd.prepared_statement_handle, &token)?;
        self.run(&user.session, plan, params).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> std::result::Result<(), Status> {
        let (token, _) = self.user(&request)?;
        self.handle(&query.prepared_statement_handle, &token)?;
        self.handles
            .lock()
            .unwrap()
            .remove(query.prepared_statement_handle.as_ref());
        Ok(())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.describe(request, &schema, &query)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let (_, user) = self.user(&request)?;
        let (schema, batch) = super::metadata::catalogs(user.session.context(), query);
        Ok(one_batch(schema, batch))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.describe(request, &schema, &query)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let (_, user) = self.user(&request)?;
        let (schema, batch) = super::metadata::schemas(user.session.context(), query);
        Ok(one_batch(schema, batch))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.describe(request, &schema, &query)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let (_, user) = self.user(&request)?;
        let (schema, batch) = super::metadata::tables(user.session.context(), query).await?;
        Ok(one_batch(schema, batch))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.describe(request, &schema, &query)
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.user(&request)?;
        let mut b = query.into_builder();
        for t in ["LOCAL TEMPORARY", "TABLE", "VIEW"] {
            b.append(t);
        }
        Ok(one_batch(b.schema(), b.build()))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let schema = query
            .clone()
            .into_builder(super::metadata::sql_info())
            .schema();
        self.describe(request, &schema, &query)
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.user(&request)?;
        let b = query.into_builder(super::metadata::sql_info());
        Ok(one_batch(b.schema(), b.build()))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(super::metadata::xdbc_info()).schema();
        self.describe(request, &schema, &query)
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.user(&request)?;
        let b = query.into_builder(super::metadata::xdbc_info());
        Ok(one_batch(b.schema(), b.build()))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
