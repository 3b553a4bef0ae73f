//! The Quipu executor: a Ballista executor that runs with the same session
//! state (catalog, object stores, functions) as the planner, so the scans
//! the scheduler hands it resolve to the same sources.
//!
//! Two ways to run one: inside the `quipu` process ([`start_embedded`], the
//! embedded cluster of `quipu serve` and the CLI) or as its own process,
//! `quipu executor` ([`process::run`]), which keeps a replica of the
//! scheduler's catalog fetched over the cluster's authenticated HTTP channel.

pub mod catalog_sync;
pub mod engine;
pub mod process;

use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::protobuf::ExecutorRegistration;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::scheduler::{
    ExecutorOperatingSystemSpecification, ExecutorSpecification,
};
use ballista_core::serde::{
    BallistaCodec, BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec,
};
use ballista_executor::executor::Executor;
use ballista_executor::flight_service::BallistaFlightService;
use ballista_executor::metrics::LoggingMetricsCollector;
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
///
/// Ballista's `new_standalone_executor_from_state`, with Quipu's
/// [`engine::CheckedEngine`] in place of the default engine (which that function
/// cannot be given): the same codecs, configuration and runtime as
/// `state`, a Flight service for its shuffle outputs on a free loopback
/// port, and a work directory removed when the executor stops.
pub async fn start_embedded(
    scheduler: SchedulerGrpcClient<tonic::transport::Channel>,
    vcores: usize,
    state: &SessionState,
) -> Result<()> {
    let external = |e: std::io::Error| DataFusionError::External(Box::new(e));
    let codec: BallistaCodec = BallistaCodec::new(
        state.config().ballista_logical_extension_codec(),
        state.config().ballista_physical_extension_codec(),
    );
    let config = state.config().clone().upgrade_for_ballista();
    let max_message_size = config.ballista_grpc_client_max_message_size();
    let runtime = state.runtime_env().clone();
    let config_producer: ballista_core::ConfigProducer = Arc::new(move || config.clone());
    let runtime_producer: ballista_core::RuntimeProducer = Arc::new(move |_| Ok(runtime.clone()));

    let listener = tokio::net::TcpListener::bind("localhost:0")
        .await
        .map_err(external)?;
    let address = listener.local_addr().map_err(external)?;
    let work = tempfile::Builder::new()
        .prefix("quipu-executor-")
        .tempdir()
        .map_err(external)?;
    let work_dir = work.path().to_string_lossy().into_owned();
    let registration = ExecutorRegistration {
        id: ballista_core::ids::new_instance_id(),
        host: Some("localhost".to_string()),
        port: address.port() as u32,
        // Not served: the embedded executor takes its tasks by polling.
        grpc_port: 50020,
        specification: Some(
            ExecutorSpecification::default()
                .with_vcores(vcores as u32)
                .into(),
        ),
        os_info: Some(ExecutorOperatingSystemSpecification::default().into()),
        ballista_protocol_version: ballista_core::BALLISTA_PROTOCOL_VERSION,
    };
    let executor = Arc::new(Executor::new(
        registration,
        &work_dir,
        runtime_producer,
        config_producer,
        Arc::new(state.into()),
        Arc::new(LoggingMetricsCollector::default()),
        vcores,
        engine::checked_engine(),
    ));
    let flight = FlightServiceServer::new(BallistaFlightService::new(work_dir))
        .max_decoding_message_size(max_message_size)
        .max_encoding_message_size(max_message_size);
    tokio::spawn(
        ballista_core::utils::create_grpc_server(&ballista_core::utils::GrpcServerConfig::default())
            .add_service(flight)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    tokio::spawn(async move {
        let result = ballista_executor::execution_loop::poll_loop(
            scheduler,
            executor,
            codec,
            None,
            None,
            ballista_executor::health::ExecutorHealth::new(),
        )
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "the embedded executor stopped");
        }
        drop(work);
    });
    Ok(())
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
