//! The PostgreSQL front door: psql, psycopg, JDBC, pgbench and BI tools
//! speak the PostgreSQL wire protocol to the scheduler process.
//!
//! Built on pgwire (protocol, TLS negotiation, cancel keys; the SCRAM-SHA-256
//! exchange is our own, [`crate::scram`], against stored verifiers),
//! arrow-pg (Arrow types and batches to PostgreSQL types and rows) and
//! datafusion-pg-catalog (the `pg_catalog` tables and functions that psql's
//! `\d` commands, SQLAlchemy reflection and JDBC `DatabaseMetaData` query).
//! datafusion-postgres glues the same crates to one shared
//! `SessionContext`; Quipu needs a session per connection (its own `SET`s,
//! its user's grants, the engine that routes to the cluster), so the glue
//! is here.
//!
//! Each accepted socket gets its own handlers: the SASL state machine keeps
//! per-connection state, and so does the Quipu session
//! (created after authentication, for the authenticated user).

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr, Set, Statement, Value};
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionGuard, ConnectionHandle, ConnectionManager,
    ErrorHandler, METADATA_DATABASE, METADATA_USER, PgWireConnectionState, PgWireServerHandlers,
    PidSecretKeyGenerator, RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::data::DataRow;
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::types::format::FormatOptions;
use quipu_catalog::CatalogStore;
use quipu_connectors::Access;
use quipu_scheduler::engine::{ClientSession, Engine, Work};
use quipu_scheduler::error::SchedulerError;
use tokio::sync::{OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::{FrontDoorError, Result};

/// The default address: loopback only, a port PostgreSQL itself does not use.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:15432";

/// The version reported to clients: PostgreSQL 16 protocol and catalog
/// conventions (psql and JDBC parse the leading number).
pub(crate) const SERVER_VERSION: &str = concat!("16.6 (Quipu ", env!("CARGO_PKG_VERSION"), ")");

/// How the PostgreSQL front door listens.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub listen: SocketAddr,
    /// PEM certificate chain and private key; TLS is offered when set.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Accept connections without TLS on a non-loopback address.
    pub allow_plaintext: bool,
    /// Authenticated connections served at once; the next login gets
    /// SQLSTATE 53300.
    pub max_connections: usize,
    /// Connections still starting up (TLS, authentication), counted apart
    /// from `max_connections` so silent sockets cannot lock users out;
    /// more are closed at once.
    pub max_startup_connections: usize,
    /// How long a connection may take to authenticate before it is closed.
    pub startup_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            tls_cert: None,
            tls_key: None,
            allow_plaintext: false,
            max_connections: 100,
            max_startup_connections: 32,
            startup_timeout: Duration::from_secs(10),
        }
    }
}

/// A running PostgreSQL front door.
pub struct PgServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl PgServer {
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds the front door and serves connections until stopped.
pub async fn start(engine: Arc<Engine>, opts: PgOptions) -> Result<PgServer> {
    let tls = crate::tls::identity(
        opts.tls_cert.as_ref(),
        opts.tls_key.as_ref(),
        "PostgreSQL",
        "pg_tls_cert",
        "pg_tls_key",
    )?
    .map(|id| pgwire::tokio::TlsAcceptor::from(Arc::new(id.config)));
    let loopback = opts.listen.ip().is_loopback();
    if tls.is_none() && !loopback && !opts.allow_plaintext {
        return Err(FrontDoorError::Config(format!(
            "refusing unencrypted PostgreSQL connections on {}, which is not a loopback address: \
             configure pg_tls_cert and pg_tls_key, or set pg_allow_plaintext",
            opts.listen
        )));
    }
    if opts.max_connections == 0 {
        return Err(FrontDoorError::Config(
            "pg_max_connections must be at least 1".into(),
        ));
    }
    if opts.max_startup_connections == 0 {
        return Err(FrontDoorError::Config(
            "pg_max_startup_connections must be at least 1".into(),
        ));
    }
    if opts.startup_timeout.is_zero() {
        return Err(FrontDoorError::Config(
            "pg_startup_timeout must be more than 0 seconds".into(),
        ));
    }
    let (listener, addr) = crate::bind(opts.listen).await?;
    let shared = Arc::new(Shared {
        store: engine.session().store().clone(),
        engine,
        connections: Arc::new(ConnectionManager::new()),
        cancels: Default::default(),
        // TLS is required of clients that are not on loopback, unless
        // plaintext was allowed explicitly.
        require_tls_remote: tls.is_some() && !opts.allow_plaintext,
        limit: Arc::new(Semaphore::new(opts.max_connections)),
        startup_limit: Arc::new(Semaphore::new(opts.max_startup_connections)),
        pids: RandomPidSecretKeyGenerator::default(),
    });
    let startup_timeout = opts.startup_timeout;
    if shared.store.users().map(|u| u.is_empty()).unwrap_or(true) {
        tracing::warn!(
            "no users in the catalog: nobody can log in over PostgreSQL; add one with `quipu users add`"
        );
    }
    tracing::info!(%addr, tls = tls.is_some(), "PostgreSQL front door listening");
    let task = tokio::spawn(async move {
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a PostgreSQL connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // A connection that has not logged in holds a startup slot, not
            // one of the authenticated users' slots; with none free it is
            // closed before a byte is read.
            let Ok(starting) = shared.startup_limit.clone().try_acquire_owned() else {
                tracing::debug!(%peer, "too many connections starting up: closed");
                closed("startup_slots_full");
                drop(socket);
                continue;
            };
            let _ = socket.set_nodelay(true);
            let handlers = ConnHandlers::new(shared.clone(), starting);
            let conn = handlers.conn.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                // pgwire 0.41's decoder panics on some malformed frames
                // (fuzz/): the panic ends this connection only, logged as
                // one line by the process's panic hook and counted here.
                let serve = std::panic::AssertUnwindSafe(pgwire::tokio::process_socket(
                    socket, tls, handlers,
                ))
                .catch_unwind()
                .map(|r| match r {
                    Ok(r) => r,
                    Err(_) => {
                        closed("decoder_panic");
                        Ok(())
                    }
                });
                tokio::pin!(serve);
                let result = tokio::select! {
                    r = &mut serve => r,
                    _ = tokio::time::sleep(startup_timeout) => {
                        if conn.authenticated() {
                            serve.await
                        } else {
                            tracing::debug!(%peer, "no login within the startup timeout: closed");
                            closed("startup_timeout");
                            return;
                        }
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "PostgreSQL connection ended with an error");
                }
            });
        }
    });
    Ok(PgServer { addr, task })
}

/// Counts a connection the front door closed before a login.
fn closed(reason: &str) {
    quipu_connectors::metrics::metrics()
        .connections_closed
        .with_label_values(&[reason])
        .inc();
}

/// What every connection of one front door shares.
struct Shared {
    engine: Arc<Engine>,
    store: Arc<CatalogStore>,
    connections: Arc<ConnectionManager>,
    /// Running statements by (backend pid, secret key), for cancel requests
    /// that arrive while rows are already streaming.
    cancels: Mutex<HashMap<(i32, Vec<u8>), CancellationToken>>,
    require_tls_remote: bool,
    /// Slots of authenticated connections.
    limit: Arc<Semaphore>,
    /// Slots of connections that have not logged in yet.
    startup_limit: Arc<Semaphore>,
    /// Backend pids and cancel secret keys, one sequence for the front door.
    pids: RandomPidSecretKeyGenerator,
}

/// The handlers of one connection.
struct ConnHandlers {
    startup: Arc<Startup>,
    query: Arc<QueryHandler>,
    cancel: Arc<Cancel>,
    conn: Arc<Conn>,
}

impl ConnHandlers {
    fn new(shared: Arc<Shared>, starting: tokio::sync::OwnedSemaphorePermit) -> Self {
        let mut params = DefaultServerParameterProvider::default();
        params.server_version = SERVER_VERSION.to_string();
        params.is_superuser = false;
        let conn = Arc::new(Conn {
            shared: shared.clone(),
            session: OnceCell::new(),
            statement_timeout: Mutex::new(None),
            settings: Default::default(),
            cancel_key: Mutex::new(None),
            slot: Mutex::new(Slot::Starting(starting)),
        });
        ConnHandlers {
            startup: Arc::new(Startup {
                params,
                state: tokio::sync::Mutex::new(AuthState::Initial),
                conn: conn.clone(),
            }),
            query: Arc::new(QueryHandler {
                parser: Arc::new(QuipuParser { conn: conn.clone() }),
                conn: conn.clone(),
            }),
            cancel: Arc::new(Cancel { shared }),
            conn,
        }
    }
}

impl PgWireServerHandlers for ConnHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.query.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.query.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogErrors)
    }
}

struct LogErrors;

impl ErrorHandler for LogErrors {
    fn on_error<C: ClientInfo>(&self, client: &C, error: &mut PgWireError) {
        tracing::debug!(peer = %client.socket_addr(), %error, "PostgreSQL error sent");
    }
}

/// Where one connection's SCRAM exchange is.
enum AuthState {
    /// Before the startup packet.
    Initial,
    /// `AuthenticationSASL` sent; waiting for the client-first message.
    ClientFirst,
    /// `AuthenticationSASLContinue` sent; waiting for the client-final one.
    ClientFinal(Box<crate::scram::Pending>),
    Done,
}

/// Startup: two checks of our own (the connection limit and TLS for remote
/// clients), then SCRAM-SHA-256 against the users of the catalog
/// ([`crate::scram`]), then pgwire's parameter status and backend key.
struct Startup {
    params: DefaultServerParameterProvider,
    state: tokio::sync::Mutex<AuthState>,
    conn: Arc<Conn>,
}

/// The error of a wrong password, worded as PostgreSQL words it, with the
/// startup packet's user name. An unknown user gets the same.
fn too_many_clients() -> PgWireError {
    fatal("53300", "sorry, too many clients already")
}

fn auth_failed(user: &str) -> PgWireError {
    fatal(
        "28P01",
        format!("password authentication failed for user \"{user}\""),
    )
}

fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message.into(),
    )))
}

fn error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message.into(),
    )))
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(_) = &message {
            if self.conn.shared.require_tls_remote
                && !client.is_secure()
                && !client.socket_addr().ip().is_loopback()
            {
                return Err(fatal(
                    "28000",
                    "this server requires TLS (sslmode=require) for connections that are not from loopback",
                ));
            }
            // All logged-in slots taken: refuse at once, as PostgreSQL
            // does, rather than after the password exchange (the slot
            // itself is taken when the login succeeds, below).
            if self.conn.shared.limit.available_permits() == 0 {
                return Err(too_many_clients());
            }
        }
        let mut state = self.state.lock().await;
        match message {
            PgWireFrontendMessage::Startup(startup) => {
                if !matches!(*state, AuthState::Initial) {
                    return Err(PgWireError::InvalidSASLState);
                }
                pgwire::api::auth::protocol_negotiation(client, &startup).await?;
                pgwire::api::auth::save_startup_parameters_to_metadata(client, &startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                        vec![crate::scram::MECHANISM.to_string()],
                    )))
                    .await?;
                *state = AuthState::ClientFirst;
            }
            PgWireFrontendMessage::PasswordMessageFamily(msg) => {
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                let scram_err = |e: crate::scram::ScramError| match e {
                    crate::scram::ScramError::Protocol(m) => fatal("08P01", m),
                    crate::scram::ScramError::Failed => auth_failed(&user),
                };
                match std::mem::replace(&mut *state, AuthState::Done) {
                    AuthState::ClientFirst => {
                        let first = msg.into_sasl_initial_response()?;
                        if first.auth_method != crate::scram::MECHANISM {
                            return Err(PgWireError::UnsupportedSASLAuthMethod(first.auth_method));
                        }
                        let data = first.data.unwrap_or_default();
                        let (verifier, _) = crate::users::verifier(&self.conn.shared.store, &user)
                            .map_err(|e| {
                                tracing::warn!(error = %e, "reading users from the catalog failed");
                                auth_failed(&user)
                            })?;
                        let (server_first, pending) =
                            crate::scram::server_first(&data, verifier).map_err(scram_err)?;
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLContinue(server_first.into()),
                            ))
                            .await?;
                        *state = AuthState::ClientFinal(Box::new(pending));
                    }
                    AuthState::ClientFinal(pending) => {
                        let last = msg.into_sasl_response()?;
                        let server_final = pending.finish(&last.data).map_err(scram_err)?;
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLFinal(server_final.into()),
                            ))
                            .await?;
                        let (pid, secret_key) = self.conn.shared.pids.generate(client);
                        client.set_pid_and_secret_key(pid, secret_key.clone());
                        let (handle, guard) =
                            self.conn.shared.connections.register(pid, secret_key);
                        client
                            .session_extensions()
                            .insert::<Arc<ConnectionHandle>>(handle);
                        client.session_extensions().insert::<ConnectionGuard>(guard);
                        // Logged in: trade the startup slot for an
                        // authenticated one, or refuse before the client
                        // is told it is in.
                        self.conn.take_slot()?;
                        // The session, made now so that a database that
                        // does not exist is refused at login, as
                        // PostgreSQL refuses it.
                        self.conn.session(&*client).await?;
                        pgwire::api::auth::finish_authentication(client, &self.params).await?;
                    }
                    AuthState::Initial | AuthState::Done => {
                        return Err(PgWireError::InvalidSASLState);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Cancel requests: stop the statement of the connection they name, both
/// while it plans (pgwire's connection handle) and while its rows stream.
struct Cancel {
    shared: Arc<Shared>,
}

#[async_trait]
impl CancelHandler for Cancel {
    async fn on_cancel_request(&self, req: CancelRequest) {
        let key = (req.pid, req.secret_key.to_bytes().to_vec());
        let token = self.shared.cancels.lock().unwrap().get(&key).cloned();
        if let Some(token) = token {
            tracing::info!(pid = req.pid, "statement cancelled by the client");
            token.cancel();
        }
        self.shared
            .connections
            .cancel(req.pid, &req.secret_key)
            .await;
    }
}

/// One connection's Quipu state.
struct Conn {
    shared: Arc<Shared>,
    session: OnceCell<Arc<ClientSession>>,
    statement_timeout: Mutex<Option<Duration>>,
    /// PostgreSQL settings that Quipu accepts but does not act on
    /// (`extra_float_digits`, `application_name`, ...), for `SHOW`.
    settings: Arc<Mutex<HashMap<String, String>>>,
    cancel_key: Mutex<Option<(i32, Vec<u8>)>>,
    slot: Mutex<Slot>,
}

/// Which of the front door's limits a connection counts against.
enum Slot {
    Starting(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit),
    Authenticated(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit),
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(key) = self.cancel_key.lock().unwrap().take() {
            self.shared.cancels.lock().unwrap().remove(&key);
        }
    }
}

impl Conn {
    fn authenticated(&self) -> bool {
        matches!(*self.slot.lock().unwrap(), Slot::Authenticated(_))
    }

    /// Takes an authenticated connection's slot (freeing the startup one),
    /// or refuses the login with 53300 when all are taken.
    fn take_slot(&self) -> PgWireResult<()> {
        let mut slot = self.slot.lock().unwrap();
        if matches!(*slot, Slot::Authenticated(_)) {
            return Ok(());
        }
        match self.shared.limit.clone().try_acquire_owned() {
            Ok(permit) => {
                *slot = Slot::Authenticated(permit);
                Ok(())
            }
            Err(_) => Err(too_many_clients()),
        }
    }

    /// The session of the authenticated user, made on first use.
    async fn session<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
    ) -> PgWireResult<Arc<ClientSession>> {
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        let key = {
            let (pid, secret) = client.pid_and_secret_key();
            (pid, secret.to_bytes().to_vec())
        };
        self.session
            .get_or_try_init(|| async {
                let def = self
                    .shared
                    .store
                    .user(&user)
                    .map_err(|e| fatal("XX000", e.to_string()))?
                    .ok_or_else(|| fatal("28000", format!("user \"{user}\" no longer exists")))?;
                let access = Access::new(def.readable_sources(), def.admin);
                let session = self.shared.engine.client_for(access);
                // The connection's database is the session's default
                // catalog; one the user cannot read does not exist for them.
                let database = client.metadata().get(METADATA_DATABASE).cloned();
                let readable = session.context().catalog_names();
                let home = crate::pg_catalog::home_catalog(database.as_deref(), &readable)
                    .ok_or_else(|| {
                        fatal(
                            "3D000",
                            format!(
                                "database \"{}\" does not exist",
                                database.unwrap_or_default()
                            ),
                        )
                    })?;
                crate::pg_catalog::connect(
                    session.context(),
                    &home,
                    self.settings.clone(),
                    self.shared.store.clone(),
                )
                .await
                .map_err(|e| fatal("XX000", format!("cannot set up pg_catalog: {e}")))?;
                *self.cancel_key.lock().unwrap() = Some(key);
                Ok::<_, PgWireError>(Arc::new(session))
            })
            .await
            .cloned()
    }

    /// A fresh cancel token for the next statement, reachable by the
    /// connection's cancel key.
    fn new_token(&self) -> CancellationToken {
        let token = CancellationToken::new();
        if let Some(key) = self.cancel_key.lock().unwrap().clone() {
            self.shared
                .cancels
                .lock()
                .unwrap()
                .insert(key, token.clone());
        }
        token
    }

    fn timeout(&self) -> Option<Duration> {
        *self.statement_timeout.lock().unwrap()
    }
}

/// A statement as the extended protocol keeps it between Parse and
/// Execute.
#[derive(Clone, Debug)]
pub struct Prepared {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// A query planned at Parse time (parameters still open), with
    /// PostgreSQL's names for its columns (`crate::column_names`).
    Query(Box<LogicalPlan>, Option<Vec<String>>),
    /// Handled by the front door itself (SET/SHOW of PostgreSQL settings,
    /// transaction statements).
    Local(Local),
}

#[derive(Clone, Debug)]
enum Local {
    Set {
        name: String,
        value: String,
    },
    Show(String),
    Begin,
    Commit,
    Rollback,
    /// Accepted and ignored (`SET ROLE`, `DISCARD ALL`, ...).
    Ignore(String),
}

/// An engine error as a PostgreSQL error with its SQLSTATE.
fn engine_error(e: SchedulerError) -> PgWireError {
    error(crate::error_codes::Kind::of(&e).sqlstate(), e.to_string())
}

fn canceled(timeout: bool) -> PgWireError {
    error(
        "57014",
        if timeout {
            "canceling statement due to statement timeout"
        } else {
            "canceling statement due to user request"
        },
    )
}

/// `statement_timeout` values: a number of milliseconds or a number with
/// a unit (`ms`, `s`, `min`, `h`), as PostgreSQL takes them; 0 turns it off.
fn parse_timeout(value: &str) -> Option<Option<Duration>> {
    let v = value.trim().trim_matches('\'').trim().to_ascii_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n.checked_mul(1000)?,
        "min" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some((ms > 0).then(|| Duration::from_millis(ms)))
}

fn setting_value(values: &[Expr]) -> String {
    values
        .iter()
        .map(|v| match v {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                other => other.to_string(),
            },
            Expr::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a setting belongs to DataFusion / Quipu / Ballista (passed to
/// the engine's session) rather than to PostgreSQL.
fn engine_setting(name: &str) -> bool {
    ["datafusion.", "quipu.", "ballista."]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Sorts a parsed statement into what the front door answers itself and
/// what goes to the engine.
fn classify(stmt: &Statement) -> Option<Local> {
    match stmt {
        Statement::Set(Set::SingleAssignment {
            variable, values, ..
        }) => {
            let name = variable.to_string().to_ascii_lowercase();
            (!engine_setting(&name)).then(|| Local::Set {
                name,
                value: setting_value(values),
            })
        }
        Statement::Set(Set::SetTimeZone { value, .. }) => Some(Local::Set {
            name: "timezone".into(),
            value: setting_value(std::slice::from_ref(value)),
        }),
        Statement::Set(other) => Some(Local::Ignore(other.to_string())),
        Statement::ShowVariable { variable } => {
            let name = variable
                .iter()
                .map(|i| i.value.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(".");
            (!engine_setting(&name)).then_some(Local::Show(name))
        }
        Statement::StartTransaction { .. } => Some(Local::Begin),
        Statement::Commit { .. } => Some(Local::Commit),
        // Quipu reads only: a savepoint has nothing to undo.
        Statement::Rollback {
            savepoint: Some(_), ..
        } => Some(Local::Ignore("ROLLBACK".into())),
        Statement::Rollback { .. } => Some(Local::Rollback),
        Statement::Savepoint { .. } => Some(Local::Ignore("SAVEPOINT".into())),
        Statement::ReleaseSavepoint { .. } => Some(Local::Ignore("RELEASE".into())),
        Statement::Discard { .. } | Statement::Deallocate { .. } => {
            Some(Local::Ignore(stmt.to_string()))
        }
        _ => None,
    }
}

fn text_response(name: &str, value: &str) -> PgWireResult<Response> {
    let fields = Arc::new(vec![FieldInfo::new(
        name.to_string(),
        None,
        None,
        Type::TEXT,
        FieldFormat::Text,
    )]);
    let mut encoder = DataRowEncoder::new(fields.clone());
    encoder.encode_field(&Some(value.to_string()))?;
    let row = encoder.take_row();
    Ok(Response::Query(QueryResponse::new(
        fields,
        futures::stream::iter([Ok(row)]),
    )))
}

impl Conn {
    fn run_local(&self, local: &Local) -> PgWireResult<Response> {
        match local {
            Local::Set { name, value } => {
                if name == "statement_timeout" {
                    let t = parse_timeout(value).ok_or_else(|| {
                        error(
                            "22023",
                            format!(
                                "invalid value for parameter \"statement_timeout\": \"{value}\""
                            ),
                        )
                    })?;
                    *self.statement_timeout.lock().unwrap() = t;
                    let shown = match t {
                        None => "0".to_string(),
                        Some(d) => format!("{}ms", d.as_millis()),
                    };
                    self.settings.lock().unwrap().insert(name.clone(), shown);
                } else {
                    self.settings
                        .lock()
                        .unwrap()
                        .insert(name.clone(), value.clone());
                }
                Ok(Response::Execution(Tag::new("SET")))
            }
            Local::Show(name) => {
                let value = setting(&self.settings, name).ok_or_else(|| {
                    error(
                        "42704",
                        format!("unrecognized configuration parameter \"{name}\""),
                    )
                })?;
                text_response(name, &value)
            }
            Local::Begin => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            Local::Commit => Ok(Response::TransactionEnd(Tag::new("COMMIT"))),
            Local::Rollback => Ok(Response::TransactionEnd(Tag::new("ROLLBACK"))),
            Local::Ignore(what) => {
                let tag = what
                    .split_whitespace()
                    .next()
                    .unwrap_or("SET")
                    .to_ascii_uppercase();
                Ok(Response::Execution(Tag::new(&tag)))
            }
        }
    }

    /// Runs a query through the engine and turns its batches into rows,
    /// honouring cancel requests and `statement_timeout` until the last
    /// row is sent.
    async fn run_query<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        session: &Arc<ClientSession>,
        work: Work,
        format: &Format,
        names: Option<&[String]>,
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
            out = session.launch(planned) => out.and_then(quipu_scheduler::engine::one).map_err(engine_error)?,
        };
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let fields = Arc::new(renamed(
            arrow_pg::datatypes::arrow_schema_to_pg_fields(&out.schema, format, Some(options))?,
            names,
        ));
        let batches = guarded(out.stream, token, deadline);
        let rows_fields = fields.clone();
        let mended = crate::text_out::time_columns(&fields);
        let rows = batches
            .map(
                move |b| -> Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send + Sync> {
                    match b {
                        Ok(batch) => {
                            let rows =
                                arrow_pg::datatypes::encode_recordbatch(rows_fields.clone(), batch);
                            if mended.is_empty() {
                                rows
                            } else {
                                let mended = mended.clone();
                                Box::new(
                                    rows.map(move |r| {
                                        r.map(|row| crate::text_out::mend(row, &mended))
                                    }),
                                )
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

/// The fields under PostgreSQL's names for them, when there is one per
/// field.
fn renamed(fields: Vec<FieldInfo>, names: Option<&[String]>) -> Vec<FieldInfo> {
    match names {
        Some(names) if names.len() == fields.len() => fields
            .into_iter()
            .zip(names)
            .map(|(f, name)| {
                FieldInfo::new(
                    name.clone(),
                    f.table_id(),
                    f.column_id(),
                    f.datatype().clone(),
                    f.format(),
                )
            })
            .collect(),
        _ => fields,
    }
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
async fn bounded<T: Send + 'static>(
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

/// What `SHOW` answers for PostgreSQL settings a client did not set.
/// A PostgreSQL setting of the connection (`SHOW`, `current_setting`):
/// its `SET` value, or the default.
pub(crate) fn setting(settings: &Mutex<HashMap<String, String>>, name: &str) -> Option<String> {
    if let Some(v) = settings.lock().unwrap().get(name) {
        return Some(v.clone());
    }
    default_setting(name).map(str::to_string)
}

fn default_setting(name: &str) -> Option<&'static str> {
    Some(match name {
        "statement_timeout" => "0",
        "default_table_access_method" => "heap",
        // asyncpg turns JIT off around its type introspection.
        "jit" => "off",
        "server_version" => "16.6",
        "server_version_num" => "160006",
        "server_encoding" | "client_encoding" => "UTF8",
        "standard_conforming_strings" | "integer_datetimes" => "on",
        "transaction.isolation.level"
        | "transaction_isolation"
        | "default_transaction_isolation" => "read committed",
        "transaction_read_only" | "default_transaction_read_only" => "off",
        "search_path" => "public",
        "timezone" | "time.zone" => "UTC",
        "datestyle" => "ISO, MDY",
        "intervalstyle" => "postgres",
        "max_identifier_length" => "63",
        "lc_collate" | "lc_ctype" => "C",
        "application_name" => "",
        "is_superuser" => "off",
        _ => return None,
    })
}

/// Parses SQL text with the PostgreSQL-compatibility rewrites of
/// datafusion-pg-catalog (casts to `regclass`, `OPERATOR(pg_catalog.~)`,
/// ... that psql and JDBC send), refusing text over the statement limits
/// (`quipu_scheduler::limits`) before the parser sees it.
pub(crate) fn parse_sql(sql: &str) -> PgWireResult<Vec<Statement>> {
    quipu_scheduler::limits::check_sql_text(sql)
        .map_err(|e| error(quipu_scheduler::limits::TooComplex::SQLSTATE, e.to_string()))?;
    // Built once: `new()` tokenizes the parser's whole rewrite table, which
    // cost more than the rest of a `SELECT 1` (measured with perf).
    static PARSER: std::sync::LazyLock<datafusion_pg_catalog::sql::PostgresCompatibilityParser> =
        std::sync::LazyLock::new(datafusion_pg_catalog::sql::PostgresCompatibilityParser::new);
    PARSER.parse(sql).map_err(|e| error("42601", e.to_string()))
}

struct QueryHandler {
    conn: Arc<Conn>,
    parser: Arc<QuipuParser>,
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
        let mut out = Vec::with_capacity(statements.len());
        for stmt in statements {
            let copy = crate::copy_out::copy_out(&stmt);
            let resp = match classify(&stmt) {
                Some(local) => self.conn.run_local(&local),
                None if copy.is_some() => match copy.expect("checked") {
                    Err(why) => Err(error("0A000", why)),
                    Ok(copy) => {
                        let names = crate::column_names::result_names(&copy.query);
                        let work =
                            Work::Statement(DfStatement::Statement(Box::new(copy.query.clone())));
                        match self
                            .conn
                            .run_query(
                                client,
                                &session,
                                work,
                                &Format::UnifiedText,
                                names.as_deref(),
                            )
                            .await
                        {
                            Ok(Response::Query(answer)) => Ok(copy.response(answer)),
                            other => other,
                        }
                    }
                },
                None => {
                    let names = crate::column_names::result_names(&stmt);
                    self.conn
                        .run_query(
                            client,
                            &session,
                            Work::Statement(DfStatement::Statement(Box::new(stmt))),
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

/// Parses and plans statements of the extended protocol.
struct QuipuParser {
    conn: Arc<Conn>,
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
        let mut statements = parse_sql(sql)?;
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
        let names = crate::column_names::result_names(&stmt);
        let casts = cast_parameters(&stmt);
        let token = self.conn.new_token();
        let deadline = self.conn.timeout().map(|t| tokio::time::Instant::now() + t);
        let plan = bounded(&token, deadline, async move {
            session.plan(DfStatement::Statement(Box::new(stmt))).await
        })
        .await?;
        let plan = typed_by_casts(plan, &casts, types)?;
        Ok(Some(Prepared {
            kind: Kind::Query(Box::new(plan), names),
        }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        let Kind::Query(plan, _) = &stmt.kind else {
            return Ok(vec![]);
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
            Kind::Query(plan, names)
                if !matches!(**plan, LogicalPlan::Ddl(_) | LogicalPlan::Statement(_)) =>
            {
                arrow_pg::datatypes::arrow_schema_to_pg_fields(
                    plan.schema().as_arrow(),
                    format.unwrap_or(&Format::UnifiedText),
                    None,
                )
                .map(|fields| renamed(fields, names.as_deref()))
            }
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

/// The parameters a statement casts only to plain SQL types (`$1::bigint`,
/// `CAST($2 AS numeric)`): types whose text and binary forms clients send
/// as such; not `regclass` and its kin, whose text is a name (SQLAlchemy
/// sends `CAST($1 AS REGCLASS)` with a table name).
fn cast_parameters(stmt: &Statement) -> std::collections::HashSet<String> {
    use datafusion::sql::sqlparser::ast::{DataType as Sql, visit_expressions};
    let mut found: HashMap<String, bool> = HashMap::new();
    let _ = visit_expressions(stmt, |e: &Expr| {
        if let Expr::Cast {
            expr, data_type, ..
        } = e
            && let Expr::Value(v) = expr.as_ref()
            && let Value::Placeholder(id) = &v.value
        {
            let plain = matches!(
                data_type,
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
            );
            *found.entry(id.clone()).or_insert(true) &= plain;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
        .into_iter()
        .filter_map(|(id, plain)| plain.then_some(id))
        .collect()
}

/// Gives a parameter whose type DataFusion did not infer, and the client
/// did not declare, the type of its cast (as planned): in
/// `SELECT $1::bigint + 1` the parameter is then described to the client
/// as a bigint, and asyncpg (which encodes each parameter as described)
/// sends one. A type the client declares wins, as in PostgreSQL.
fn typed_by_casts(
    plan: LogicalPlan,
    casts: &std::collections::HashSet<String>,
    declared: &[Option<Type>],
) -> PgWireResult<LogicalPlan> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::Expr as DfExpr;
    use datafusion::logical_expr::expr::{Cast, Placeholder};
    if casts.is_empty() {
        return Ok(plan);
    }
    let undeclared = |id: &str| {
        let i = id.trim_start_matches('$').parse::<usize>().ok();
        i.and_then(|i| declared.get(i.checked_sub(1)?))
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
            Kind::Query(plan, names) => {
                let types = ordered_param_types(plan)?;
                let refs: Vec<Option<&datafusion::arrow::datatypes::DataType>> =
                    types.iter().map(|t| t.as_ref()).collect();
                let params: ParamValues =
                    arrow_pg::datatypes::df::deserialize_parameters(portal, &refs)?;
                let plan = LogicalPlan::clone(plan)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_timeout_values() {
        assert_eq!(parse_timeout("0"), Some(None));
        assert_eq!(parse_timeout("250"), Some(Some(Duration::from_millis(250))));
        assert_eq!(parse_timeout("'2s'"), Some(Some(Duration::from_secs(2))));
        assert_eq!(parse_timeout("1min"), Some(Some(Duration::from_secs(60))));
        assert_eq!(parse_timeout("soon"), None);
        assert_eq!(parse_timeout("5 fortnights"), None);
    }

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

    #[test]
    fn postgres_settings_stay_in_the_front_door() {
        let stmts = parse_sql("SET extra_float_digits = 3; SET datafusion.execution.batch_size = 10; SHOW statement_timeout; BEGIN").unwrap();
        assert!(
            matches!(classify(&stmts[0]), Some(Local::Set { ref name, ref value }) if name == "extra_float_digits" && value == "3")
        );
        assert!(classify(&stmts[1]).is_none());
        assert!(
            matches!(classify(&stmts[2]), Some(Local::Show(ref n)) if n == "statement_timeout")
        );
        assert!(matches!(classify(&stmts[3]), Some(Local::Begin)));
    }
}
