//! `quipu --server grpc://HOST:PORT ...`: the CLI as a client of a running
//! server's Flight SQL front door. `sql` runs statements there; `catalog`
//! and `users` are sent as the `quipu.admin` action, which the server
//! runs on its own catalog with the same code as the offline commands
//! ([`handler`]), for admins only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::Action;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use quipu_connectors::QuipuSession;
use quipu_frontdoor::flight::{ADMIN_ACTION, AdminHandler};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::args::{CatalogCommand, UsersCommand};

/// An admin command as it travels to the server.
#[derive(Debug, Serialize, Deserialize)]
pub enum AdminCommand {
    Catalog(CatalogCommand),
    Users(UsersCommand),
}

#[derive(Debug, Serialize, Deserialize)]
struct AdminRequest {
    command: AdminCommand,
    /// The new password of `users add`, read on the client.
    password: Option<String>,
}

/// The server side of `quipu.admin`: runs the command on `session`'s
/// catalog (the one the server's queries see).
pub fn handler(session: QuipuSession) -> AdminHandler {
    Arc::new(move |body: bytes::Bytes| {
        let session = session.clone();
        Box::pin(async move {
            let req: AdminRequest = serde_json::from_slice(&body).map_err(|e| {
                format!("not a quipu admin request ({e}): is the CLI the server's version?")
            })?;
            match req.command {
                AdminCommand::Catalog(cmd) => crate::catalog_cmd::execute(&session, cmd).await,
                AdminCommand::Users(cmd) => {
                    let store = session.store().clone();
                    tokio::task::spawn_blocking(move || {
                        crate::users_cmd::execute(&store, cmd, req.password)
                    })
                    .await
                    .map_err(|e| format!("the users command failed: {e}"))?
                }
            }
        })
    })
}

/// Who signs in to a server, and what to trust.
pub struct Login {
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Extra PEM roots for a TLS server (`--server-ca`).
    pub ca: Option<PathBuf>,
}

/// The system's roots plus `ca`.
fn client_tls(ca: Option<&Path>) -> Result<tonic::transport::ClientTlsConfig, String> {
    let mut config = tonic::transport::ClientTlsConfig::new().with_native_roots();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca)
            .map_err(|e| format!("cannot read --server-ca {}: {e}", ca.display()))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!(
                "--server-ca {} holds no PEM certificate",
                ca.display()
            ));
        }
        config = config.ca_certificate(tonic::transport::Certificate::from_pem(pem));
    }
    Ok(config)
}

/// An error with its causes: tonic's "transport error" alone says nothing
/// (the certificate problem is in the source chain).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A signed-in client of a server's Flight SQL front door.
pub struct Remote {
    client: FlightSqlServiceClient<Channel>,
    url: String,
}

/// The password of `--user`: `--user-password-file`, else
/// QUIPU_USER_PASSWORD.
fn login_password(file: Option<&Path>) -> Result<String, String> {
    crate::users_cmd::password_from(file, "QUIPU_USER_PASSWORD")?.ok_or_else(|| {
        "--server needs the password of --user: set QUIPU_USER_PASSWORD or --user-password-file"
            .to_string()
    })
}

impl Remote {
    /// Connects to `url` (`grpc://HOST:PORT`, or `grpc+tls://HOST:PORT`
    /// for a server with TLS) and signs in.
    pub async fn connect(url: &str, login: &Login) -> Result<Remote, String> {
        let user = login
            .user
            .as_deref()
            .ok_or("--server needs --user (or QUIPU_USER) to sign in as")?;
        let password = login_password(login.password_file.as_deref())?;
        let (endpoint, tls) = match url.split_once("://") {
            Some(("grpc" | "grpc+tcp" | "http", rest)) => (format!("http://{rest}"), false),
            Some(("grpc+tls" | "https", rest)) => (format!("https://{rest}"), true),
            Some((scheme, _)) => {
                return Err(format!(
                    "--server {url}: scheme `{scheme}` is not supported (use grpc://HOST:PORT, or grpc+tls://HOST:PORT for a server with TLS)"
                ));
            }
            None => (format!("http://{url}"), false),
        };
        let mut endpoint = tonic::transport::Endpoint::from_shared(endpoint)
            .map_err(|e| format!("--server {url} is not a valid address: {e}"))?
            .connect_timeout(std::time::Duration::from_secs(10));
        if tls {
            endpoint = endpoint
                .tls_config(client_tls(login.ca.as_deref())?)
                .map_err(|e| format!("--server {url}: {e}"))?;
        } else if login.ca.is_some() {
            return Err(format!(
                "--server-ca is set but {url} is not a TLS address (use grpc+tls://)"
            ));
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {url}: {}", error_chain(&e)))?;
        let mut client = FlightSqlServiceClient::new(channel);
        client
            .handshake(user, &password)
            .await
            .map_err(|e| format!("cannot sign in to {url} as {user}: {}", flight_message(&e)))?;
        Ok(Remote {
            client,
            url: url.to_string(),
        })
    }

    /// Runs a catalog or users command on the server; returns its text.
    pub async fn admin(
        &mut self,
        command: AdminCommand,
        password: Option<String>,
    ) -> Result<String, String> {
        let body = serde_json::to_vec(&AdminRequest { command, password })
            .map_err(|e| format!("cannot encode the command: {e}"))?;
        let mut results = self
            .client
            .do_action(Action {
                r#type: ADMIN_ACTION.to_string(),
                body: body.into(),
            })
            .await
            .map_err(|e| flight_message(&e))?;
        let mut text = String::new();
        while let Some(r) = results
            .message()
            .await
            .map_err(|e| e.message().to_string())?
        {
            text.push_str(&String::from_utf8_lossy(&r.body));
        }
        Ok(text)
    }

    /// Runs one SQL statement on the server; returns its rows.
    pub async fn query(&mut self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
        let info = self
            .client
            .execute(sql.to_string(), None)
            .await
            .map_err(|e| flight_message(&e))?;
        let mut schema = info
            .clone()
            .try_decode_schema()
            .map(std::sync::Arc::new)
            .map_err(|e| format!("{}: bad schema in the answer: {e}", self.url))?;
        let mut batches = Vec::new();
        for endpoint in info.endpoint {
            let ticket = endpoint
                .ticket
                .ok_or_else(|| format!("{}: an endpoint without a ticket", self.url))?;
            let stream = self
                .client
                .do_get(ticket)
                .await
                .map_err(|e| flight_message(&e))?;
            let got: Vec<RecordBatch> =
                stream.try_collect().await.map_err(|e| flight_message(&e))?;
            if let Some(b) = got.first() {
                schema = b.schema();
            }
            batches.extend(got);
        }
        Ok((schema, batches))
    }
}

/// The server's message without gRPC's wrapping.
fn flight_message(e: &arrow_flight::error::FlightError) -> String {
    match e {
        arrow_flight::error::FlightError::Tonic(status) => status.message().to_string(),
        other => other.to_string(),
    }
}
