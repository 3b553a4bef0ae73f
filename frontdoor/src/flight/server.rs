//! The Flight SQL front door's listener: its options, TLS, the HTTP/2
//! keepalive and connection age, the first-call timeout of new
//! connections (`super::limits::SilentIo`) and the sweep of expired tokens.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use futures::TryStreamExt;
use quipu_scheduler::Engine;

use super::admin::AdminHandler;
use super::limits::{MarkCalls, SessionTable, SilentIo};
use super::service::QuipuFlightSql;
use crate::error::{FrontDoorError, Result};

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
