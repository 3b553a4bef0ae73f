//! The Arrow Flight SQL front door: BI tools (ADBC, JDBC) and
//! `pyarrow.flight` get Arrow batches straight from the engine, without
//! the row-by-row text encoding of the PostgreSQL protocol.
//!
//! Authentication: the handshake takes HTTP Basic credentials (checked
//! against the SCRAM hashes of the catalog's users) and answers with a
//! bearer token; every other call must carry that token, and each token
//! has its own Quipu session with its user's grants. Tickets and prepared
//! statement handles are random server-side handles bound to the token
//! that made them: a forged ticket, or one presented by another user, is
//! refused.
//!
//! Limits ([`limits`]): at most `max_sessions_per_user` tokens per user
//! (the least recently used one not serving a call makes room for a new
//! one), tokens expire after `session_idle_timeout` unused, failed
//! sign-ins slow further attempts with the same user name, a connection
//! that starts no call within `first_call_timeout` is closed, and older
//! ones than `max_connection_age` are asked to close (HTTP/2 GOAWAY).

mod limits;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandStatementQuery, DoPutPreparedStatementResult, Nullable,
    ProstMessageExt, Searchable, SqlInfo, TicketStatementQuery, XdbcDataType,
};
use arrow_flight::{
    ActionType, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::ParamValues;
use datafusion::datasource::TableType;
use datafusion::logical_expr::LogicalPlan;
use datafusion::scalar::ScalarValue;
use futures::{Stream, TryStreamExt};
use prost::Message;
use quipu_catalog::CatalogStore;
use quipu_connectors::Access;
use quipu_scheduler::engine::{ClientSession, Engine};
use quipu_scheduler::error::SchedulerError;
use tonic::{Request, Response, Status, Streaming};

use crate::error::{FrontDoorError, Result};
use crate::error_codes::status;
use limits::{LoginBackoff, Lookup, MarkCalls, SessionTable, SilentIo, flight_metrics};

/// The default address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:15433";

/// How the Flight SQL front door listens.
#[derive(Clone)]
pub struct FlightOptions {
    pub listen: SocketAddr,
    /// PEM certificate chain and private key; with them every connection
    /// is TLS (`grpc+tls://`), without them none is.
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve a non-loopback address without TLS.
    pub allow_plaintext: bool,
    /// Runs the admin commands of the `quipu.admin` action (the CLI's
    /// `catalog` and `users` commands, sent by `quipu --server ...`); `None`
    /// refuses the action.
    pub admin: Option<AdminHandler>,
    /// Token sessions one user may hold at once.
    pub max_sessions_per_user: usize,
    /// A token unused this long expires.
    pub session_idle_timeout: Duration,
    /// A connection that has not started a call this long after it
    /// opened is closed.
    pub first_call_timeout: Duration,
    /// A connection this old is asked to close (HTTP/2 GOAWAY): its calls
    /// finish, and the client opens a new one for the next.
    pub max_connection_age: Duration,
}

/// The defaults of the limits in [`FlightOptions`].
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 64;
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_FIRST_CALL_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_CONNECTION_AGE: Duration = Duration::from_secs(60 * 60);

/// HTTP/2 pings on every connection at this interval: a peer that does
/// not answer one within [`KEEPALIVE_TIMEOUT`] is gone, and its
/// connection (and the streams on it) is closed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The action type of admin commands.
pub const ADMIN_ACTION: &str = "quipu.admin";

/// Runs one admin command: its request body in, the text to show out.
pub type AdminHandler = Arc<
    dyn Fn(bytes::Bytes) -> futures::future::BoxFuture<'static, std::result::Result<String, String>>
        + Send
        + Sync,
>;

impl std::fmt::Debug for FlightOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightOptions")
            .field("listen", &self.listen)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("allow_plaintext", &self.allow_plaintext)
            .field("admin", &self.admin.is_some())
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("session_idle_timeout", &self.session_idle_timeout)
            .field("first_call_timeout", &self.first_call_timeout)
            .field("max_connection_age", &self.max_connection_age)
            .finish()
    }
}

impl Default for FlightOptions {
    fn default() -> Self {
        FlightOptions {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            tls_cert: None,
            tls_key: None,
            allow_plaintext: false,
            admin: None,
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            first_call_timeout: DEFAULT_FIRST_CALL_TIMEOUT,
            max_connection_age: DEFAULT_MAX_CONNECTION_AGE,
        }
    }
}

/// A running Flight SQL front door.
pub struct FlightServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl Drop for FlightServer {
    fn drop(&mut self) {
        self.task.abort();
        self.sweeper.abort();
    }
}

/// Binds the Flight SQL front door and serves until dropped.
pub async fn start(engine: Arc<Engine>, opts: FlightOptions) -> Result<FlightServer> {
    let door = crate::listener::FLIGHT;
    let tls = crate::tls::identity(opts.tls_cert.as_ref(), opts.tls_key.as_ref(), door)?;
    door.refuse_plaintext(opts.listen, tls.is_some(), opts.allow_plaintext)?;
    for (name, d) in [
        ("flight_session_idle_timeout", opts.session_idle_timeout),
        ("flight_first_call_timeout", opts.first_call_timeout),
        ("flight_max_connection_age", opts.max_connection_age),
    ] {
        if d.is_zero() {
            return Err(FrontDoorError::Config(format!(
                "{name} must be at least 1 second"
            )));
        }
    }
    if opts.max_sessions_per_user == 0 {
        return Err(FrontDoorError::Config(
            "flight_max_sessions_per_user must be at least 1".into(),
        ));
    }
    // Dead peers: HTTP/2 pings (answered by any gRPC client) and TCP
    // keepalive. Live but idle connections: the maximum age, a graceful
    // close (no forced one after it, so a long result stream finishes).
    // Connections that never call: `SilentIo` below.
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .max_connection_age(opts.max_connection_age);
    if let Some(id) = &tls {
        let identity = tonic::transport::Identity::from_pem(&id.cert_pem, &id.key_pem);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| FrontDoorError::Tls(format!("Flight SQL: {e}")))?;
    }
    let (listener, addr) = crate::listener::bind(opts.listen).await?;
    let service = Arc::new(QuipuFlightSql {
        store: engine.session().store().clone(),
        admin: opts.admin.clone(),
        engine,
        sessions: Mutex::new(SessionTable::new(
            opts.max_sessions_per_user,
            opts.session_idle_timeout,
        )),
        logins: Default::default(),
        handles: Default::default(),
        parts: Default::default(),
    });
    let first_call = opts.first_call_timeout;
    let incoming = tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(KEEPALIVE_INTERVAL))
        .map_ok(move |tcp| {
            let (local, remote) = (tcp.local_addr().ok(), tcp.peer_addr().ok());
            SilentIo::new(tcp, first_call, local, remote)
        });
    tracing::info!(%addr, tls = tls.is_some(), "Flight SQL front door listening");
    // Expired tokens go with their statements even when nobody signs in.
    let sweep_every =
        (opts.session_idle_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let weak = Arc::downgrade(&service);
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(sweep_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(service) = weak.upgrade() else {
                return;
            };
            service.sweep();
        }
    });
    let task = tokio::spawn(async move {
        if let Err(e) = builder
            .add_service(MarkCalls {
                inner: FlightServiceServer::from_arc(service),
            })
            .serve_with_incoming(incoming)
            .await
        {
            tracing::error!(error = %e, "the Flight SQL front door stopped");
        }
    });
    Ok(FlightServer {
        addr,
        task,
        sweeper,
    })
}

/// One authenticated client.
struct UserSession {
    user: String,
    session: ClientSession,
}

/// A prepared statement, until closed.
struct Handle {
    token: String,
    plan: LogicalPlan,
    params: Option<ParamValues>,
}

/// Endpoints asked for and not yet read, per session.
const MAX_PENDING_STREAMS: usize = 256;

/// One endpoint of a statement: its stream, started when the client
/// asked for the statement and read by one `DoGet`.
struct Part {
    token: String,
    schema: SchemaRef,
    stream: datafusion::execution::SendableRecordBatchStream,
}

struct QuipuFlightSql {
    engine: Arc<Engine>,
    admin: Option<AdminHandler>,
    store: Arc<CatalogStore>,
    sessions: Mutex<SessionTable<UserSession>>,
    logins: Mutex<LoginBackoff>,
    handles: Mutex<HashMap<Vec<u8>, Handle>>,
    parts: Mutex<HashMap<Vec<u8>, Part>>,
}

fn random_hex<const N: usize>() -> String {
    use quipu_catalog::secret::{hex, random_bytes};
    hex(&random_bytes::<N>())
}

fn not_found() -> Status {
    Status::not_found(
        "unknown ticket or statement handle (forged, already used, or another user's)",
    )
}

fn schema_ipc(schema: &Schema) -> std::result::Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

type DoGetStream =
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

impl QuipuFlightSql {
    /// The session of the bearer token on the request.
    fn user<T>(&self, req: &Request<T>) -> std::result::Result<(String, Arc<UserSession>), Status> {
        let token = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("no bearer token: authenticate with the handshake first")
            })?
            .trim()
            .to_string();
        let looked_up = self.sessions.lock().unwrap().get(&token, Instant::now());
        let session = match looked_up {
            Lookup::Live(s) => s,
            Lookup::Expired => {
                self.forget(&token);
                flight_metrics()
                    .sessions_closed
                    .with_label_values(&["idle"])
                    .inc();
                return Err(Status::unauthenticated(
                    "unknown or expired bearer token: authenticate again",
                ));
            }
            Lookup::Unknown => {
                return Err(Status::unauthenticated("unknown or expired bearer token"));
            }
        };
        // A token does not outlive its user.
        if matches!(self.store.user(&session.user), Ok(None)) {
            self.sessions.lock().unwrap().remove(&token);
            self.forget(&token);
            return Err(Status::unauthenticated(
                "unknown or expired bearer token: authenticate again",
            ));
        }
        Ok((token, session))
    }

    /// Frees what a token held (its session is already out of the
    /// table): its statement handles and unread streams.
    fn forget(&self, token: &str) {
        self.handles.lock().unwrap().retain(|_, h| h.token != token);
        self.parts.lock().unwrap().retain(|_, p| p.token != token);
        self.count_sessions();
    }

    fn count_sessions(&self) {
        let n = self.sessions.lock().unwrap().len();
        flight_metrics().sessions.set(n as i64);
    }

    /// Drops the sessions idle longer than the expiry, with what they
    /// held (periodically, so abandoned tokens do not pile up).
    fn sweep(&self) {
        let expired = self.sessions.lock().unwrap().expire(Instant::now());
        for token in expired {
            flight_metrics()
                .sessions_closed
                .with_label_values(&["idle"])
                .inc();
            self.forget(&token);
        }
    }

    async fn plan(
        &self,
        session: &ClientSession,
        sql: &str,
    ) -> std::result::Result<LogicalPlan, Status> {
        let sql = quipu_scheduler::lexer::number_placeholders(sql);
        let mut statements = session.parse(&sql).map_err(status)?;
        if statements.len() != 1 {
            return Err(Status::invalid_argument(format!(
                "expected exactly one statement, got {}",
                statements.len()
            )));
        }
        let plan = session.plan(statements.remove(0)).await.map_err(status)?;
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

    fn new_handle(&self, handle: Handle) -> Vec<u8> {
        let id = random_hex::<16>().into_bytes();
        self.handles.lock().unwrap().insert(id.clone(), handle);
        id
    }

    /// The plan of a prepared statement, only for the token that made it.
    fn handle(
        &self,
        id: &[u8],
        token: &str,
    ) -> std::result::Result<(LogicalPlan, Option<ParamValues>), Status> {
        let handles = self.handles.lock().unwrap();
        match handles.get(id) {
            Some(h)
                if quipu_catalog::secret::constant_time_eq(
                    h.token.as_bytes(),
                    token.as_bytes(),
                ) =>
            {
                Ok((h.plan.clone(), h.params.clone()))
            }
            _ => Err(not_found()),
        }
    }

    /// Takes the stream of a statement's endpoint, only for the token that
    /// asked for the statement, and only once.
    fn take_part(&self, id: &[u8], token: &str) -> std::result::Result<Part, Status> {
        let mut parts = self.parts.lock().unwrap();
        let owned = parts.get(id).is_some_and(|p| {
            quipu_catalog::secret::constant_time_eq(p.token.as_bytes(), token.as_bytes())
        });
        if !owned {
            return Err(not_found());
        }
        Ok(parts.remove(id).expect("checked above"))
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
        let announced: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
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
        if !bound || out.schema == announced {
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

    /// The `FlightInfo` of a metadata command: its ticket is the command.
    fn describe<M: ProstMessageExt>(
        &self,
        request: Request<FlightDescriptor>,
        schema: &Schema,
        command: &M,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.user(&request)?;
        self.info(
            schema,
            command.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    fn info(
        &self,
        schema: &Schema,
        ticket: Vec<u8>,
        descriptor: FlightDescriptor,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.info_endpoints(schema, vec![ticket], descriptor)
    }

    /// A `FlightInfo` with one endpoint per ticket.
    fn info_endpoints(
        &self,
        schema: &Schema,
        tickets: Vec<Vec<u8>>,
        descriptor: FlightDescriptor,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let mut info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_descriptor(descriptor);
        for ticket in tickets {
            info = info.with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)));
        }
        Ok(Response::new(info))
    }
}

fn sql_info() -> &'static SqlInfoData {
    static DATA: std::sync::OnceLock<SqlInfoData> = std::sync::OnceLock::new();
    DATA.get_or_init(|| {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "Quipu");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
        b.append(SqlInfo::FlightSqlServerReadOnly, true);
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        b.build().expect("static SQL info")
    })
}

fn xdbc_info() -> &'static XdbcTypeInfoData {
    static DATA: std::sync::OnceLock<XdbcTypeInfoData> = std::sync::OnceLock::new();
    DATA.get_or_init(|| {
        let mut b = XdbcTypeInfoDataBuilder::new();
        for (name, t, size) in [
            ("BOOLEAN", XdbcDataType::XdbcBit, Some(1)),
            ("INTEGER", XdbcDataType::XdbcInteger, Some(32)),
            ("BIGINT", XdbcDataType::XdbcBigint, Some(64)),
            ("DOUBLE", XdbcDataType::XdbcDouble, Some(64)),
            ("DECIMAL", XdbcDataType::XdbcDecimal, Some(38)),
            ("VARCHAR", XdbcDataType::XdbcVarchar, None),
            ("DATE", XdbcDataType::XdbcDate, None),
            ("TIMESTAMP", XdbcDataType::XdbcTimestamp, None),
        ] {
            b.append(XdbcTypeInfo {
                type_name: name.into(),
                data_type: t,
                column_size: size,
                literal_prefix: matches!(t, XdbcDataType::XdbcVarchar).then(|| "'".into()),
                literal_suffix: matches!(t, XdbcDataType::XdbcVarchar).then(|| "'".into()),
                create_params: None,
                nullable: Nullable::NullabilityNullable,
                case_sensitive: matches!(t, XdbcDataType::XdbcVarchar),
                searchable: Searchable::Full,
                unsigned_attribute: Some(false),
                fixed_prec_scale: matches!(t, XdbcDataType::XdbcDecimal),
                auto_increment: Some(false),
                local_type_name: Some(name.into()),
                minimum_scale: None,
                maximum_scale: None,
                sql_data_type: t,
                datetime_subcode: None,
                num_prec_radix: Some(10),
                interval_precision: None,
            });
        }
        b.build().expect("static type info")
    })
}

#[tonic::async_trait]
impl FlightSqlService for QuipuFlightSql {
    type FlightService = QuipuFlightSql;

    /// `quipu.admin`: an admin's catalog or users command, run by the
    /// server on its own catalog (the body is the CLI's request; the
    /// answer is the text the CLI prints).
    async fn do_action_fallback(
        &self,
        request: Request<arrow_flight::Action>,
    ) -> std::result::Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let (_, session) = self.user(&request)?;
        let action = request.into_inner();
        if action.r#type != ADMIN_ACTION {
            return Err(Status::invalid_argument(format!(
                "unknown action `{}` (known: {ADMIN_ACTION} and the Flight SQL actions)",
                action.r#type
            )));
        }
        let is_admin = self
            .store
            .user(&session.user)
            .map_err(|e| Status::internal(e.to_string()))?
            .is_some_and(|u| u.admin);
        if !is_admin {
            return Err(Status::permission_denied(format!(
                "permission denied: only admins change the catalog and users (`{}` is not an admin)",
                session.user
            )));
        }
        let Some(handler) = &self.admin else {
            return Err(Status::unimplemented(
                "this server does not take admin commands",
            ));
        };
        let text = handler(action.body)
            .await
            .map_err(Status::invalid_argument)?;
        tracing::info!(user = %session.user, "admin command run");
        let reply = arrow_flight::Result {
            body: text.into_bytes().into(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(reply)]))))
    }

    async fn list_custom_actions(&self) -> Option<Vec<std::result::Result<ActionType, Status>>> {
        Some(vec![Ok(ActionType {
            r#type: ADMIN_ACTION.to_string(),
            description: "run a `quipu catalog` or `quipu users` command (admins only)".into(),
        })])
    }

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> std::result::Result<
        Response<
            Pin<Box<dyn Stream<Item = std::result::Result<HandshakeResponse, Status>> + Send>>,
        >,
        Status,
    > {
        use base64::Engine as _;
        let basic = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .ok_or_else(|| Status::unauthenticated("the handshake needs Basic credentials"))?;
        // With or without `=` padding (Go clients such as ADBC's driver
        // send it unpadded).
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let decoded = engine
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Status::unauthenticated("malformed Basic credentials"))?;
        let (name, password) = decoded
            .split_once(':')
            .ok_or_else(|| Status::unauthenticated("malformed Basic credentials"))?;
        // After failed sign-ins with this name (whether or not such a
        // user exists), the attempt waits: only this call sleeps.
        let admitted = self.logins.lock().unwrap().admit(name, Instant::now());
        let start = admitted.map_err(|_| {
            flight_metrics().logins_refused.inc();
            Status::resource_exhausted(
                "too many failed sign-ins with this user name: try again later",
            )
        })?;
        if start > Instant::now() {
            flight_metrics().logins_delayed.inc();
            tokio::time::sleep_until(start.into()).await;
        }
        let store = self.store.clone();
        let (name_owned, password_owned) = (name.to_string(), password.to_string());
        // PBKDF2 takes milliseconds: off the async workers.
        let user = tokio::task::spawn_blocking(move || {
            crate::users::verify(&store, &name_owned, &password_owned)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::internal(e.to_string()))?;
        let Some(user) = user else {
            self.logins.lock().unwrap().failed(name, Instant::now());
            flight_metrics().login_failures.inc();
            return Err(Status::unauthenticated("invalid user name or password"));
        };
        self.logins.lock().unwrap().succeeded(name);
        let session = self
            .engine
            .client_for(Access::new(user.readable_sources(), user.admin));
        let token = random_hex::<32>();
        let opened = self.sessions.lock().unwrap().open(
            token.clone(),
            &user.name,
            Arc::new(UserSession {
                user: user.name.clone(),
                session,
            }),
            Instant::now(),
        );
        let opened = opened.map_err(|_| {
            flight_metrics().sessions_refused.inc();
            Status::resource_exhausted(format!(
                "`{}` has {} Flight SQL sessions, each serving a call: \
                 try again when one is done",
                user.name,
                self.sessions.lock().unwrap().max_per_user()
            ))
        })?;
        let m = flight_metrics();
        for token in &opened.expired {
            m.sessions_closed.with_label_values(&["idle"]).inc();
            self.forget(token);
        }
        if let Some(token) = &opened.evicted {
            m.sessions_closed.with_label_values(&["user_cap"]).inc();
            tracing::info!(user = %user.name, "Flight SQL session limit reached: closed the least recently used session");
            self.forget(token);
        }
        self.count_sessions();
        tracing::info!(user = %user.name, "Flight SQL session opened");
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(futures::stream::iter([Ok(reply)])));
        let header = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("token is not a valid header"))?;
        response.metadata_mut().insert("authorization", header);
        Ok(response)
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
        let plan = self.plan(&user.session, &query.query).await?;
        let schema = plan.schema().as_arrow().clone();
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
        let mut tickets = Vec::with_capacity(outs.len());
        {
            let mut parts = self.parts.lock().unwrap();
            // Started statements wait for their DoGets; a client that asks
            // and never reads must not pile them up.
            let pending = parts.values().filter(|p| p.token == token).count();
            if pending + outs.len() > MAX_PENDING_STREAMS {
                return Err(Status::resource_exhausted(format!(
                    "{pending} result streams of this session are waiting for their DoGet \
                     (at most {MAX_PENDING_STREAMS}): read them, or sign in again for a new \
                     session (they go with the token when it expires)"
                )));
            }
            for out in outs {
                let id = random_hex::<16>().into_bytes();
                parts.insert(
                    id.clone(),
                    Part {
                        token: token.clone(),
                        schema: out.schema,
                        stream: out.stream,
                    },
                );
                let ticket = TicketStatementQuery {
                    statement_handle: id.into(),
                };
                tickets.push(ticket.as_any().encode_to_vec());
            }
        }
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
        let plan = self.plan(&user.session, &query.query).await?;
        let dataset_schema = schema_ipc(plan.schema().as_arrow())?;
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
        let (token, _) = self.user(&request)?;
        let (plan, _) = self.handle(&cmd.prepared_statement_handle, &token)?;
        let schema = plan.schema().as_arrow().clone();
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
        let mut b = query.into_builder();
        for c in user.session.context().catalog_names() {
            b.append(c);
        }
        Ok(one_batch(b.schema(), b.build()))
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
        let ctx = user.session.context();
        let mut b = query.into_builder();
        for c in ctx.catalog_names() {
            if let Some(cat) = ctx.catalog(&c) {
                for s in cat.schema_names() {
                    b.append(&c, s);
                }
            }
        }
        Ok(one_batch(b.schema(), b.build()))
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
        let ctx = user.session.context();
        let wanted_catalog = query.catalog.clone();
        let mut b = query.into_builder();
        for c in ctx.catalog_names() {
            if wanted_catalog.as_ref().is_some_and(|w| w != &c) {
                continue;
            }
            let Some(cat) = ctx.catalog(&c) else { continue };
            for s in cat.schema_names() {
                let Some(schema) = cat.schema(&s) else {
                    continue;
                };
                for t in schema.table_names() {
                    let table: Option<Arc<dyn TableProvider>> =
                        schema.table(&t).await.ok().flatten();
                    let Some(table) = table else { continue };
                    let kind = match table.table_type() {
                        TableType::View => "VIEW",
                        TableType::Temporary => "LOCAL TEMPORARY",
                        TableType::Base => "TABLE",
                    };
                    b.append(&c, &s, &t, kind, table.schema().as_ref())
                        .map_err(Status::from)?;
                }
            }
        }
        Ok(one_batch(b.schema(), b.build()))
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
        let schema = query.clone().into_builder(sql_info()).schema();
        self.describe(request, &schema, &query)
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.user(&request)?;
        let b = query.into_builder(sql_info());
        Ok(one_batch(b.schema(), b.build()))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(xdbc_info()).schema();
        self.describe(request, &schema, &query)
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.user(&request)?;
        let b = query.into_builder(xdbc_info());
        Ok(one_batch(b.schema(), b.build()))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

