//! Errors of the front doors. Messages name the setting or file at fault
//! and never contain a password.

pub type Result<T, E = FrontDoorError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum FrontDoorError {
    #[error("{0}")]
    Config(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Catalog(#[from] quipu_catalog::CatalogError),
}
