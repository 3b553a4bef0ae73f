//! Errors of the connectors crate. Each names the source or table involved.

use datafusion::error::DataFusionError;

pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error(transparent)]
    Catalog(#[from] quipu_catalog::CatalogError),
    #[error("source `{source_name}`: {reason}")]
    Source { source_name: String, reason: String },
    #[error("source `{source_name}`: cannot list {url}: {reason}")]
    List {
        source_name: String,
        url: String,
        reason: String,
    },
    #[error("table `{table}`: {reason}")]
    Table { table: String, reason: String },
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

impl From<ConnectorError> for DataFusionError {
    fn from(e: ConnectorError) -> Self {
        match e {
            ConnectorError::DataFusion(e) => e,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

/// A value an expression cannot compute, with PostgreSQL's SQLSTATE for it
/// (class 22, or 21000 for a scalar subquery of more than one row): what
/// the front doors answer for it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DataException {
    pub sqlstate: &'static str,
    pub message: String,
}

impl DataException {
    pub fn error(sqlstate: &'static str, message: &str) -> DataFusionError {
        DataFusionError::External(Box::new(DataException {
            sqlstate,
            message: message.into(),
        }))
    }
}
