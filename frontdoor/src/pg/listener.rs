//! The PostgreSQL front door's listener: options, the accept loop with
//! its startup slots and timeout, and the handlers every accepted socket
//! gets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{
    ClientInfo, ConnectionManager, ErrorHandler, PgWireServerHandlers, RandomPidSecretKeyGenerator,
};
use pgwire::error::PgWireError;
use quipu_catalog::CatalogStore;
use quipu_scheduler::Engine;
use tokio::sync::{OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;

use super::auth::{AuthState, Startup};
use super::connection::{Cancel, Conn, Slot};
use super::extended::QuipuParser;
use super::query::QueryHandler;
use crate::error::{FrontDoorError, Result};

/// The default address: loopback only, a port PostgreSQL itself does not use.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:15432";

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
    let door = crate::listener::PG;
    let tls = crate::tls::identity(opts.tls_cert.as_ref(), opts.tls_key.as_ref(), door)?
        .map(|id| pgwire::tokio::TlsAcceptor::from(Arc::new(id.config)));
    door.refuse_plaintext(opts.listen, tls.is_some(), opts.allow_plaintext)?;
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
    let (listener, addr) = crate::listener::bind(opts.listen).await?;
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
pub(super) struct Shared {
    pub(super) engine: Arc<Engine>,
    pub(super) store: Arc<CatalogStore>,
    pub(super) connections: Arc<ConnectionManager>,
    /// Running statements by (backend pid, secret key), for cancel requests
    /// that arrive while rows are already streaming.
    pub(super) cancels: Mutex<HashMap<(i32, Vec<u8>), CancellationToken>>,
    pub(super) require_tls_remote: bool,
    /// Slots of authenticated connections.
    pub(super) limit: Arc<Semaphore>,
    /// Slots of connections that have not logged in yet.
    pub(super) startup_limit: Arc<Semaphore>,
    /// Backend pids and cancel secret keys, one sequence for the front door.
    pub(super) pids: RandomPidSecretKeyGenerator,
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
        params.server_version = super::server_version();
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
