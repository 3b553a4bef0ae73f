//! The Quipu executor: a Ballista executor that runs with the same session
//! state (catalog, object stores, functions) as the planner, so the scans
//! the scheduler hands it resolve to the same sources.
//!
//! Two ways to run one: inside the `quipu` process ([`start_embedded`], the
//! embedded cluster of `quipu serve` and the CLI) or as its own process,
//! `quipu executor` ([`process::run`]), which keeps a replica of the
//! scheduler's catalog fetched over the cluster's authenticated HTTP channel.

pub mod catalog_sync;
pub mod process;

use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::{
    BallistaCodec, BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::prelude::SessionConfig;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use quipu_connectors::QuipuSession;
use quipu_connectors::codec::{QuipuLogicalCodec, QuipuPhysicalCodec};
use quipu_connectors::session::quipu_config;

/// Starts an executor in this process that registers with `scheduler` and
/// offers `vcores` task slots.
pub async fn start_embedded(
    scheduler: SchedulerGrpcClient<tonic::transport::Channel>,
    vcores: usize,
    state: &SessionState,
) -> Result<()> {
    ballista_executor::new_standalone_executor_from_state(scheduler, vcores, state)
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))
}

/// The configuration jobs start from on the cluster: Ballista's extension
/// plus Quipu's, with Quipu's codecs.
pub fn cluster_config(session: &QuipuSession) -> SessionConfig {
    let base = static_planner(session.config().clone());
    with_codecs(quipu_config(base), session)
}

/// Ballista's settings with its static distributed planner. Ballista 55's
/// adaptive planner (the default) loses jobs when an executor dies mid-query:
/// after it rolls back the lost stages, the survivors' task updates fail
/// with "Can't find active stage to update stage outputs" and the job never
/// ends (tests/it/cluster.rs). The static planner re-runs the lost tasks.
pub fn static_planner(config: SessionConfig) -> SessionConfig {
    config.upgrade_for_ballista().set_bool(
        ballista_core::config::BALLISTA_ADAPTIVE_PLANNER_ENABLED,
        false,
    )
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

/// Both codecs, as the scheduler wants them.
pub fn codecs(session: &QuipuSession) -> BallistaCodec {
    BallistaCodec::new(logical_codec(session), physical_codec(session))
}

/// A configuration whose Ballista codecs are Quipu's.
pub fn with_codecs(config: SessionConfig, session: &QuipuSession) -> SessionConfig {
    config
        .with_ballista_logical_extension_codec(logical_codec(session))
        .with_ballista_physical_extension_codec(physical_codec(session))
}
