//! Errors of the scheduler crate.

use datafusion::error::DataFusionError;

pub type Result<T, E = SchedulerError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Connector(#[from] quipu_connectors::ConnectorError),
    #[error(transparent)]
    Catalog(#[from] quipu_catalog::CatalogError),
    #[error("cannot start the cluster: {0}")]
    ClusterStart(String),
    #[error(transparent)]
    Query(#[from] DataFusionError),
    /// Planning stopped at a table the session cannot see (absent, or in
    /// a source its user is not granted). The message is the planner's.
    #[error("{source}")]
    TableNotFound {
        table: String,
        #[source]
        source: DataFusionError,
    },
    #[error("permission denied for source `{0}`")]
    PermissionDenied(String),
    #[error(
        "no executor is registered with the scheduler at {scheduler} (waited {waited} s): start \
         `quipu executor --scheduler HOST:PORT`, or run the query in-process with \
         SET quipu.execution = 'local'"
    )]
    NoExecutors { scheduler: String, waited: u64 },
    #[error(transparent)]
    TooComplex(#[from] crate::limits::TooComplex),
    #[error("permission denied: only admins change the catalog ({0})")]
    NotAdmin(String),
}
