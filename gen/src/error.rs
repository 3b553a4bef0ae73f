//! Errors of the generator: each names the system and target it is about
//! (never with a password) and what to do.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum GenError {
    #[error("{0}")]
    BadScale(String),
    #[error(
        "nothing to generate: give at least one of --crm-url, --pos-url, --mongodb-url, --lake"
    )]
    NoTargets,
    #[error("{system} ({target}): {reason}")]
    Target {
        system: &'static str,
        target: String,
        reason: String,
    },
    #[error("a load task stopped: {0}")]
    Task(String),
    #[error("{0}")]
    Secret(#[from] quipu_catalog::CatalogError),
}

pub type Result<T> = std::result::Result<T, GenError>;
