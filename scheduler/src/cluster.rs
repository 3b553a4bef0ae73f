//! The embedded Ballista cluster: a scheduler and one executor inside this
//! process, both using Quipu's session so that they resolve the same
//! catalog and object stores. Started on first use.

use std::sync::Arc;

use datafusion::prelude::SessionConfig;
use quipu_connectors::QuipuSession;

use crate::error::{Result, SchedulerError};

/// A running embedded cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `http://localhost:PORT` of the scheduler's gRPC service.
    pub scheduler_url: String,
}

pub use quipu_executor::{cluster_config, codecs, logical_codec, physical_codec, with_codecs};

/// Starts the scheduler and an executor with `vcores` task slots.
pub async fn start(session: &QuipuSession, vcores: usize) -> Result<Cluster> {
    let config = cluster_config(session);
    let builder_session = session.clone();
    let session_builder: ballista_scheduler::scheduler_server::SessionBuilder =
        Arc::new(move |config: SessionConfig| Ok(builder_session.state_with_config(config)));
    let producer_config = config.clone();
    let config_producer: ballista_core::ConfigProducer = Arc::new(move || producer_config.clone());
    let addr = ballista_scheduler::standalone::new_standalone_scheduler_with_builder(
        session_builder,
        config_producer,
        codecs(session),
    )
    .await
    .map_err(|e| SchedulerError::ClusterStart(e.to_string()))?;
    let scheduler_url = format!("http://localhost:{}", addr.port());

    let client = crate::process::connect(&scheduler_url).await?;
    let state = session.state_with_config(config);
    quipu_executor::start_embedded(client, vcores, &state)
        .await
        .map_err(|e| SchedulerError::ClusterStart(e.to_string()))?;
    tracing::info!(%scheduler_url, vcores, "embedded Ballista cluster started");
    Ok(Cluster { scheduler_url })
}
