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
//!
//! One file per role: [`server`] (options, the listener and its
//! connection limits), `service` (the Flight SQL calls and statements),
//! `sessions` (the handshake and the bearer tokens' sessions), `tickets`
//! (prepared statement handles and result streams waiting for their
//! `DoGet`), `metadata` (catalogs, schemas, tables, SQL and type info) and
//! [`admin`] (the `quipu.admin` action); [`limits`] holds the limits'
//! bookkeeping.

pub mod admin;
mod limits;
mod metadata;
pub mod server;
mod service;
mod sessions;
mod tickets;

pub use admin::{ADMIN_ACTION, AdminHandler};
pub use server::{
    DEFAULT_FIRST_CALL_TIMEOUT, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTION_AGE,
    DEFAULT_MAX_SESSIONS_PER_USER, DEFAULT_SESSION_IDLE_TIMEOUT, FlightOptions, FlightServer,
    start,
};
