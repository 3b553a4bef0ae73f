//! Connections to PostgreSQL sources: one pool per source and process,
//! the connection settings, and one line for a failed call.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use quipu_catalog::{SourceDef, secret};
use tokio_postgres::NoTls;

use crate::error::{ConnectorError, Result};

/// Connections per source per process: one query cannot swamp a production
/// database.
pub(super) const MAX_CONNECTIONS: usize = 8;
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a query waits for one of the pool's connections to be free.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Connection pools, one per source (keyed by name and options so that a
/// changed source gets a new pool).
#[derive(Default)]
pub struct PgPools {
    pools: Mutex<HashMap<String, (String, deadpool_postgres::Pool)>>,
}

impl fmt::Debug for PgPools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PgPools")
    }
}

pub(super) fn bad(source: &SourceDef, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::Source {
        source_name: source.name.clone(),
        reason: reason.into(),
    }
}

/// The libpq-style configuration of a source; the password is resolved
/// here, at connection time, and kept only inside the driver's config.
pub(super) fn pg_config(source: &SourceDef) -> Result<tokio_postgres::Config> {
    let o = |k: &str| source.options.get(k).map(String::as_str);
    let mut c = tokio_postgres::Config::new();
    c.host(o("host").unwrap_or("localhost"));
    let port = o("port").unwrap_or("5432");
    c.port(port.parse().map_err(|_| {
        bad(
            source,
            format!("option `port` must be a number, got `{port}`"),
        )
    })?);
    c.user(o("user").unwrap_or("postgres"));
    if let Some(p) = o("password") {
        // Named after the source: an executor that lacks the secret says
        // which source it cannot open.
        c.password(secret::resolve(p).map_err(|e| bad(source, e.to_string()))?);
    }
    c.dbname(o("dbname").ok_or_else(|| bad(source, "missing option `dbname`"))?);
    match o("sslmode").unwrap_or("disable") {
        "disable" | "prefer" | "allow" => {}
        other => {
            return Err(bad(
                source,
                format!(
                    "sslmode `{other}` is not supported yet: this build connects to PostgreSQL without TLS (use sslmode=disable on a trusted network)"
                ),
            ));
        }
    }
    c.connect_timeout(CONNECT_TIMEOUT);
    c.application_name("quipu");
    // Dates of timestamptz values (casts, date_trunc in pushed queries) are
    // taken in UTC, as DataFusion does.
    // The server ends a remote query that runs past `query_timeout`.
    // Literals are rendered as `E''` strings whatever this setting, but a
    // server configured with it off would read backslashes in any other
    // string as escapes: pin it.
    c.options(format!(
        "-c TimeZone=UTC -c standard_conforming_strings=on -c statement_timeout={}",
        source.query_timeout().as_millis()
    ));
    Ok(c)
}

impl PgPools {
    pub fn pool(&self, source: &SourceDef) -> Result<deadpool_postgres::Pool> {
        let key = crate::remote::options_key(source);
        let mut pools = self.pools.lock().unwrap();
        if let Some((k, p)) = pools.get(&source.name)
            && *k == key
        {
            return Ok(p.clone());
        }
        let manager = deadpool_postgres::Manager::from_config(
            pg_config(source)?,
            NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(MAX_CONNECTIONS)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT + Duration::from_secs(1)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| bad(source, format!("cannot build a connection pool: {e}")))?;
        pools.insert(source.name.clone(), (key, pool.clone()));
        Ok(pool)
    }
}

/// One line for a failed PostgreSQL call: the server's message when there
/// is one, else the driver's chain of causes.
pub fn pg_reason(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

/// A connection from the source's pool. Connection failures that may pass
/// (refused or reset while the server restarts) are retried twice; a
/// timeout is not, so a source that does not answer is reported within the
/// connect timeout.
pub(super) async fn connect(
    pools: &PgPools,
    source: &SourceDef,
) -> Result<deadpool_postgres::Object> {
    let pool = pools.pool(source)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match pool.get().await {
            Ok(c) => return Ok(c),
            Err(deadpool_postgres::PoolError::Backend(e))
                if attempt < 3
                    && e.as_db_error().is_none()
                    && !e.to_string().contains("timed out") =>
            {
                tracing::debug!(source = %source.name, error = %pg_reason(&e), attempt, "retrying a PostgreSQL connection");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => {
                let reason = match &e {
                    deadpool_postgres::PoolError::Backend(e) => pg_reason(e),
                    deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
                        format!(
                            "timed out waiting for a connection: all {MAX_CONNECTIONS} of this process's connections to the source stayed busy for {} s",
                            WAIT_TIMEOUT.as_secs()
                        )
                    }
                    deadpool_postgres::PoolError::Timeout(_) => format!(
                        "timed out waiting for a connection: the server did not accept one within {} s (it does not answer, or it or this machine is overloaded)",
                        CONNECT_TIMEOUT.as_secs() + 1
                    ),
                    other => other.to_string(),
                };
                return Err(bad(
                    source,
                    format!("cannot connect to PostgreSQL: {reason}"),
                ));
            }
        }
    }
}
