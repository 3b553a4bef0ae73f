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
//!
//! One file per role, as GreptimeDB's `servers/src/postgres/`:
//! - [`listener`]: options, the accept loop, the per-socket handlers;
//! - [`auth`]: TLS and slot checks, the SCRAM exchange, a failed login's
//!   words;
//! - [`connection`]: a connection's session, slot and cancel key, and
//!   cancel requests;
//! - [`settings`]: `SET`/`SHOW` of PostgreSQL settings and their defaults,
//!   transaction statements;
//! - [`query`]: the simple protocol and running a query to its last row;
//! - [`extended`]: Parse/Bind/Execute, parameter types; [`array_param`],
//!   array parameters sent as text;
//! - [`errors`], the SQLSTATEs sent;
//! - what clients call and see: [`catalog`] (databases, `pg_catalog`),
//!   [`functions`] (`version()`, `current_setting`, `pg_size_pretty`, ...),
//!   `quipu_connectors::dialect::column_names` (PostgreSQL's result column
//!   names), [`copy_out`]
//!   (`COPY ... TO STDOUT`), [`text_out`] (timestamps in PostgreSQL's text),
//!   [`catalog_sql`] (catalog queries rewritten after
//!   datafusion-pg-catalog's parser), [`type_lookup`] (asyncpg's type
//!   introspection).

mod array_param;
mod auth;
mod binary_numeric;
pub(crate) mod catalog;
mod catalog_sql;
mod connection;
mod copy_out;
mod errors;
mod extended;
pub(crate) mod functions;
mod listener;
mod query;
mod settings;
mod text_out;
mod type_lookup;

pub use extended::Prepared;
pub use listener::{DEFAULT_LISTEN, PgOptions, PgServer, start};
pub(crate) use query::parse_sql;
pub(crate) use settings::setting;

/// The PostgreSQL release whose protocol and catalog conventions Quipu
/// follows: what `server_version`, `SHOW server_version`, `pg_settings`
/// and `version()` report (psql and JDBC parse the leading number).
pub(crate) const PG_VERSION: &str = "16.6";
/// [`PG_VERSION`] as `server_version_num` (major * 10000 + minor).
pub(crate) const PG_VERSION_NUM: &str = "160006";

/// The version reported to clients at startup: [`PG_VERSION`] and Quipu's.
pub(crate) fn server_version() -> String {
    format!("{PG_VERSION} (Quipu {})", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_number_is_the_version() {
        let (major, minor) = PG_VERSION.split_once('.').unwrap();
        let num: u32 = major.parse::<u32>().unwrap() * 10_000 + minor.parse::<u32>().unwrap();
        assert_eq!(PG_VERSION_NUM, num.to_string());
        assert!(server_version().starts_with(&format!("{PG_VERSION} (Quipu ")));
    }
}
