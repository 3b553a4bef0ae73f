//! Connections to MongoDB sources: one client per source and process,
//! its options, and one line for a failed call.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use mongodb::options::ClientOptions;
use quipu_catalog::{SourceDef, secret};

use crate::error::{ConnectorError, Result};

pub(super) const MAX_POOL: u32 = 8;

/// Option `monitor_timeout` (seconds, default 30): how long the driver
/// waits for a heartbeat answer (and a new connection) before it declares
/// the server unreachable and interrupts the queries in flight.
/// (The catalog checked the value when the source was added.)
pub(super) fn monitor_timeout(source: &SourceDef) -> Duration {
    let secs = source
        .options
        .get("monitor_timeout")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(30);
    Duration::from_secs(secs)
}

pub(super) fn bad(source: &SourceDef, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::Source {
        source_name: source.name.clone(),
        reason: reason.into(),
    }
}

/// One driver client (it pools connections itself) per source.
#[derive(Default)]
pub struct MongoClients {
    clients: Mutex<HashMap<String, (String, mongodb::Client)>>,
}

impl fmt::Debug for MongoClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MongoClients")
    }
}

pub(super) fn database_name(source: &SourceDef) -> Result<String> {
    source
        .options
        .get("database")
        .cloned()
        .ok_or_else(|| bad(source, "missing option `database`"))
}

impl MongoClients {
    /// Shuts every client down (see `QuipuSession::close`).
    pub async fn shutdown(&self) {
        let clients: Vec<mongodb::Client> = self
            .clients
            .lock()
            .unwrap()
            .drain()
            .map(|(_, (_, c))| c)
            .collect();
        for c in clients {
            c.shutdown().immediate(true).await;
        }
    }

    pub fn database(&self, source: &SourceDef) -> Result<mongodb::Database> {
        let key = crate::remote::options_key(source);
        let db = database_name(source)?;
        let mut clients = self.clients.lock().unwrap();
        if let Some((k, c)) = clients.get(&source.name)
            && *k == key
        {
            return Ok(c.database(&db));
        }
        let o = |k: &str| source.options.get(k).map(String::as_str);
        let host = o("host").unwrap_or("localhost").to_string();
        let port: u16 = o("port")
            .unwrap_or("27017")
            .parse()
            .map_err(|_| bad(source, "option `port` must be a number"))?;
        let mut options = ClientOptions::builder()
            .hosts(vec![mongodb::options::ServerAddress::Tcp {
                host,
                port: Some(port),
            }])
            .app_name("quipu".to_string())
            // The driver also uses the connect timeout as the deadline of
            // its heartbeat to a server that does not stream them, and a
            // heartbeat timeout interrupts every query in flight. A busy
            // server (SecantusDB is single-threaded: one long find blocks
            // the hello) must not fail queries that way, so this is long;
            // server selection still reports a down source within seconds.
            // It waits for the server's next `hello` after any error on a
            // connection marks the server unknown, and a busy SecantusDB
            // answered that `hello` later than 5 s (32 clients beside
            // other queries on it: "Server selection timeout"), so 10 s.
            .connect_timeout(monitor_timeout(source))
            .server_selection_timeout(Duration::from_secs(10))
            .max_pool_size(MAX_POOL)
            .build();
        options.direct_connection =
            Some(o("direct_connection").map(|v| v != "false").unwrap_or(true));
        if o("tls").is_some_and(|v| v == "true") {
            options.tls = Some(mongodb::options::Tls::Enabled(Default::default()));
        }
        if let Some(user) = o("user") {
            let password = o("password")
                .map(secret::resolve)
                .transpose()
                .map_err(|e| bad(source, e.to_string()))?;
            options.credential = Some(
                mongodb::options::Credential::builder()
                    .username(user.to_string())
                    .password(password)
                    .source(o("auth_source").map(str::to_string))
                    .build(),
            );
        }
        let client = mongodb::Client::with_options(options)
            .map_err(|e| bad(source, format!("cannot connect to MongoDB: {e}")))?;
        clients.insert(source.name.clone(), (key, client.clone()));
        Ok(client.database(&db))
    }
}

pub(super) fn mongo_reason(e: &mongodb::error::Error) -> String {
    e.to_string().replace('\n', " ")
}

// ---- schema inference ------------------------------------------------------
