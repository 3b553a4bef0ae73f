//! Authentication: the checks before the password (TLS for remote
//! clients, the connection limit), the SCRAM-SHA-256 exchange
//! ([`crate::scram`]) against the users of the catalog, and PostgreSQL's
//! wording of a failed login.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use pgwire::api::{
    ClientInfo, ConnectionGuard, ConnectionHandle, METADATA_USER, PgWireConnectionState,
    PidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::connection::Conn;
use super::errors::fatal;

/// Where one connection's SCRAM exchange is.
pub(super) enum AuthState {
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
pub(super) struct Startup {
    pub(super) params: DefaultServerParameterProvider,
    pub(super) state: tokio::sync::Mutex<AuthState>,
    pub(super) conn: Arc<Conn>,
}

/// The error of a wrong password, worded as PostgreSQL words it, with the
/// startup packet's user name. An unknown user gets the same.
pub(super) fn too_many_clients() -> PgWireError {
    fatal("53300", "sorry, too many clients already")
}

fn auth_failed(user: &str) -> PgWireError {
    fatal(
        "28P01",
        format!("password authentication failed for user \"{user}\""),
    )
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
