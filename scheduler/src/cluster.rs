//! The embedded Ballista cluster: a scheduler and one executor inside this
//! process, both using Quipu's session so that they resolve the same
//! catalog and object stores. Started on first use.

use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::{
    BallistaCodec, BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec,
};
use datafusion::prelude::SessionConfig;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use quipu_connectors::QuipuSession;
use quipu_connectors::codec::{QuipuLogicalCodec, QuipuPhysicalCodec};
use quipu_connectors::session::quipu_config;

use crate::error::{Result, SchedulerError};

/// A running embedded cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `http://localhost:PORT` of the scheduler's gRPC service.
    pub scheduler_url: String,
}

/// The configuration jobs start from on the cluster: Ballista's extension
/// plus Quipu's, with Quipu's codecs.
pub fn cluster_config(session: &QuipuSession) -> SessionConfig {
    let base = session.config().clone().upgrade_for_ballista();
    with_codecs(quipu_config(base), session)
}

/// Quipu's logical codec (live-source tables) over Ballista's.
pub fn logical_codec(session: &QuipuSession) -> Arc<dyn LogicalExtensionCodec> {
    Arc::new(QuipuLogicalCodec::new(
        session.catalogs().clone(),
        Arc::new(BallistaLogicalExtensionCodec::default()),
    ))
}

/// Quipu's physical codec (live-source scans) over Ballista's.
pub fn physical_codec(session: &QuipuSession) -> Arc<dyn PhysicalExtensionCodec> {
    Arc::new(QuipuPhysicalCodec::new(
        session.catalogs().clone(),
        Arc::new(BallistaPhysicalExtensionCodec::default()),
    ))
}

fn codecs(session: &QuipuSession) -> BallistaCodec {
    BallistaCodec::new(logical_codec(session), physical_codec(session))
}

/// A configuration whose Ballista codecs are Quipu's.
pub fn with_codecs(config: SessionConfig, session: &QuipuSession) -> SessionConfig {
    config
        .with_ballista_logical_extension_codec(logical_codec(session))
        .with_ballista_physical_extension_codec(physical_codec(session))
}

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

    let mut attempts = 0;
    let client = loop {
        match SchedulerGrpcClient::connect(scheduler_url.clone()).await {
            Ok(c) => break c,
            Err(e) if attempts < 50 => {
                attempts += 1;
                tracing::debug!(error = %e, "waiting for the embedded scheduler");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => return Err(SchedulerError::ClusterStart(e.to_string())),
        }
    };
    let state = session.state_with_config(config);
    quipu_executor::start_embedded(client, vcores, &state)
        .await
        .map_err(|e| SchedulerError::ClusterStart(e.to_string()))?;
    tracing::info!(%scheduler_url, vcores, "embedded Ballista cluster started");
    Ok(Cluster { scheduler_url })
}
