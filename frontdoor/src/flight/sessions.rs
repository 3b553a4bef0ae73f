//! Token sessions: the handshake checks Basic credentials (slowed after
//! failures, `super::limits::LoginBackoff`) and answers with a bearer
//! token; each token has its own Quipu session with its user's grants,
//! until it expires unused, its user is dropped, or the user's cap makes
//! room for a new one (`super::limits::SessionTable`).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use arrow_flight::HandshakeRequest;
use arrow_flight::HandshakeResponse;
use futures::Stream;
use quipu_connectors::Access;
use quipu_scheduler::ClientSession;
use tonic::{Request, Response, Status, Streaming};

use super::limits::{Lookup, flight_metrics};
use super::service::QuipuFlightSql;
use super::tickets::random_hex;

/// One authenticated client.
pub(super) struct UserSession {
    pub(super) user: String,
    pub(super) session: ClientSession,
}

/// The answer of a handshake: the token, in the body and as a header.
pub(super) type HandshakeStream =
    Pin<Box<dyn Stream<Item = std::result::Result<HandshakeResponse, Status>> + Send>>;

impl QuipuFlightSql {
    /// The session of the bearer token on the request.
    pub(super) fn user<T>(
        &self,
        req: &Request<T>,
    ) -> std::result::Result<(String, Arc<UserSession>), Status> {
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
    pub(super) fn forget(&self, token: &str) {
        self.handles.lock().unwrap().retain(|_, h| h.token != token);
        self.parts.lock().unwrap().retain(|_, p| p.token != token);
        self.count_sessions();
    }

    pub(super) fn count_sessions(&self) {
        let n = self.sessions.lock().unwrap().len();
        flight_metrics().sessions.set(n as i64);
    }

    /// Drops the sessions idle longer than the expiry, with what they
    /// held (periodically, so abandoned tokens do not pile up).
    pub(super) fn sweep(&self) {
        let expired = self.sessions.lock().unwrap().expire(Instant::now());
        for token in expired {
            flight_metrics()
                .sessions_closed
                .with_label_values(&["idle"])
                .inc();
            self.forget(&token);
        }
    }

    pub(super) async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> std::result::Result<Response<HandshakeStream>, Status> {
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
}
