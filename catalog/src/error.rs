//! Errors of the catalog crate. Messages name the source, table or option at
//! fault and never contain a resolved secret.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// Everything that can go wrong reading or changing the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot open catalog at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "catalog file {} is empty (0 bytes): it is not a Quipu catalog; move it away or restore a backup",
        path.display()
    )]
    EmptyFile { path: PathBuf },
    #[error(
        "catalog at {path} has format version {found}, newer than this Quipu understands ({supported}); upgrade Quipu"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("catalog storage error: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("corrupt catalog entry {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("source `{0}` already exists")]
    DuplicateSource(String),
    #[error("source `{0}` does not exist")]
    UnknownSource(String),
    #[error("table `{0}` already exists")]
    DuplicateTable(String),
    #[error("table `{0}` does not exist")]
    UnknownTable(String),
    #[error("user `{0}` does not exist")]
    UnknownUser(String),
    #[error("view `{0}` does not exist")]
    UnknownView(String),
    #[error("materialized view `{0}` does not exist")]
    UnknownCache(String),
    #[error("{kind} `{name}` already exists")]
    NameTaken { kind: &'static str, name: String },
    #[error("invalid name `{name}`: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("source `{source_name}` ({kind}): unknown option `{option}`; known options: {known}")]
    UnknownOption {
        source_name: String,
        kind: String,
        option: String,
        known: String,
    },
    #[error("source `{source_name}`: missing required option `{option}`")]
    MissingOption { source_name: String, option: String },
    #[error("source `{source_name}`: invalid value for option `{option}`: {reason}")]
    InvalidOption {
        source_name: String,
        option: String,
        reason: String,
    },
    #[error(
        "source `{source_name}`: option `{option}` is a secret and must be a reference (`env:NAME` or `file:/path`), not a literal value"
    )]
    PlaintextSecret { source_name: String, option: String },
    #[error("secret reference `{reference}`: {reason}")]
    Secret { reference: String, reason: String },
    #[error("unknown source kind `{0}`; expected one of: lake, postgres, mongodb")]
    UnknownKind(String),
    #[error("invalid column type `{ty}` for column `{column}`: {reason}")]
    InvalidType {
        column: String,
        ty: String,
        reason: String,
    },
}

impl CatalogError {
    pub(crate) fn storage(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        CatalogError::Storage(Box::new(e))
    }
}
