//! One connection's state after startup: its session (made at login, for
//! the authenticated user and the database it named), its slot among the
//! front door's limits, and the cancel key that reaches its running
//! statement; and the handler of cancel requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{ClientInfo, METADATA_DATABASE, METADATA_USER};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use quipu_connectors::Access;
use quipu_scheduler::ClientSession;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::auth::too_many_clients;
use super::errors::fatal;
use super::listener::Shared;

/// Cancel requests: stop the statement of the connection they name, both
/// while it plans (pgwire's connection handle) and while its rows stream.
pub(super) struct Cancel {
    pub(super) shared: Arc<Shared>,
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
pub(super) struct Conn {
    pub(super) shared: Arc<Shared>,
    pub(super) session: OnceCell<Arc<ClientSession>>,
    pub(super) statement_timeout: Mutex<Option<Duration>>,
    /// PostgreSQL settings that Quipu accepts but does not act on
    /// (`extra_float_digits`, `application_name`, ...), for `SHOW`.
    pub(super) settings: Arc<Mutex<HashMap<String, String>>>,
    pub(super) cancel_key: Mutex<Option<(i32, Vec<u8>)>>,
    pub(super) slot: Mutex<Slot>,
}

/// Which of the front door's limits a connection counts against.
pub(super) enum Slot {
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
    pub(super) fn authenticated(&self) -> bool {
        matches!(*self.slot.lock().unwrap(), Slot::Authenticated(_))
    }

    /// Takes an authenticated connection's slot (freeing the startup one),
    /// or refuses the login with 53300 when all are taken.
    pub(super) fn take_slot(&self) -> PgWireResult<()> {
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
    pub(super) async fn session<C: ClientInfo + ?Sized>(
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
                let session = self.shared.engine.client_for(access).with_numeric_places();
                // The connection's database is the session's default
                // catalog; one the user cannot read does not exist for them.
                let database = client.metadata().get(METADATA_DATABASE).cloned();
                let readable = session.context().catalog_names();
                let home = super::catalog::home_catalog(database.as_deref(), &readable)
                    .ok_or_else(|| {
                        fatal(
                            "3D000",
                            format!(
                                "database \"{}\" does not exist",
                                database.unwrap_or_default()
                            ),
                        )
                    })?;
                super::catalog::connect(
                    session.context(),
                    &home,
                    self.settings.clone(),
                    self.shared.store.clone(),
                )
                .await
                .map_err(|e| fatal("XX000", format!("cannot set up pg_catalog: {e}")))?;
                *self.cancel_key.lock().unwrap() = Some(key);
                // The settings a client sent when it connected (startup
                // parameters and `-c` options: `settings::startup_settings`),
                // where a `SET` before the first query did not set them
                // already, applied as `SET` applies them: `TimeZone` and
                // `statement_timeout` act, a bad value of one refuses the
                // connection as PostgreSQL does. Without a zone the
                // engine's default, UTC, holds. (`client_encoding` is
                // always UTF8 here; settings of the engine, with a dot in
                // their name, are left to `SET`.)
                for (name, value) in super::settings::startup_settings(client.metadata()) {
                    let set = self.settings.lock().unwrap().contains_key(&name);
                    if set || name == "client_encoding" || name.contains('.') {
                        continue;
                    }
                    let local = super::settings::Local::Set { name, value };
                    self.run_local(&local).map_err(|e| match e {
                        PgWireError::UserError(info) => fatal(&info.code, info.message),
                        e => e,
                    })?;
                }
                let zone = self.settings.lock().unwrap().get("timezone").cloned();
                if let Some(zone) = zone {
                    super::settings::engine_time_zone(&session, &zone);
                }
                let style = self.settings.lock().unwrap().get("datestyle").cloned();
                if let Some(style) = style {
                    let order = super::settings::order_shown(&style);
                    super::settings::engine_date_order(&session, order);
                }
                Ok::<_, PgWireError>(Arc::new(session))
            })
            .await
            .cloned()
    }

    /// A fresh cancel token for the next statement, reachable by the
    /// connection's cancel key.
    pub(super) fn new_token(&self) -> CancellationToken {
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

    pub(super) fn timeout(&self) -> Option<Duration> {
        *self.statement_timeout.lock().unwrap()
    }
}
