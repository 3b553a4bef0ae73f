//! Certificates of the two front doors, loaded the same way and failing
//! closed: a configured but unusable TLS setup is an error naming the file
//! at fault, never a silent fallback to plaintext.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls;

use crate::error::{FrontDoorError, Result};
use crate::listener::Door;

/// A certificate chain and its private key, checked to belong together.
pub(crate) struct Identity {
    /// The files as read, for libraries that parse PEM themselves (tonic).
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// A server configuration built from them (used by the PostgreSQL
    /// front door; building it is also what proves the key fits).
    pub config: rustls::ServerConfig,
}

/// The identity of a front door from its `*_tls_cert` and `*_tls_key`
/// settings (for example `pg_tls_cert` / `pg_tls_key`): `None` when
/// neither is set, an error when only one is.
pub(crate) fn identity(
    cert: Option<&PathBuf>,
    key: Option<&PathBuf>,
    door: Door,
) -> Result<Option<Identity>> {
    match (cert, key) {
        (Some(c), Some(k)) => load(c, k).map(Some),
        (None, None) => Ok(None),
        _ => Err(FrontDoorError::Config(format!(
            "{} TLS needs both a certificate and a private key ({1}_tls_cert, {1}_tls_key)",
            door.name, door.settings
        ))),
    }
}

fn load(cert: &Path, key: &Path) -> Result<Identity> {
    let read = |p: &Path, what: &str| {
        std::fs::read(p).map_err(|e| {
            FrontDoorError::Tls(format!("cannot read the {what} {}: {e}", p.display()))
        })
    };
    let cert_pem = read(cert, "certificate")?;
    let key_pem = read(key, "private key")?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| FrontDoorError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(FrontDoorError::Tls(format!(
            "{} holds no PEM certificate",
            cert.display()
        )));
    }
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| FrontDoorError::Tls(format!("{}: {e}", key.display())))?
        .ok_or_else(|| {
            FrontDoorError::Tls(format!("{} holds no PEM private key", key.display()))
        })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| FrontDoorError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key_der)
    .map_err(|e| {
        FrontDoorError::Tls(format!(
            "{} and {} do not make a usable certificate: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    Ok(Identity {
        cert_pem,
        key_pem,
        config,
    })
}
