//! What a kind of source implements to be read by Quipu. The catalog, the
//! source administration and the codecs work through [`Connector`] and
//! never name a source; `crate::registry` lists the connectors.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionState;
use datafusion::optimizer::OptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use object_store::memory::InMemory;
use quipu_catalog::{
    ColumnDef, FileFormat, SourceDef, SourceKind, TableDef, TableName, TableOrigin,
};

use crate::error::Result;
use crate::remote::ScanOf;

/// What the engine lends a connector: the process's runtime (object
/// stores, memory pool), its `memory://` stores and the session
/// configuration.
#[derive(Clone)]
pub struct Env {
    pub runtime: Arc<RuntimeEnv>,
    pub memory: Arc<MemoryStores>,
    pub config: SessionConfig,
}

/// In-memory object stores by host (`memory://HOST/`), shared by every
/// session of an engine so tests and embedders can put files into them.
#[derive(Debug, Default)]
pub struct MemoryStores {
    stores: Mutex<HashMap<String, Arc<InMemory>>>,
}

impl MemoryStores {
    pub fn get(&self, host: &str) -> Arc<InMemory> {
        let mut stores = self.stores.lock().unwrap();
        stores
            .entry(host.to_string())
            .or_insert_with(|| Arc::new(InMemory::new()))
            .clone()
    }
}

/// How a kind of source is registered (`crate::registry` lists one of
/// these per kind).
pub struct Registration {
    /// Its connector, made once per process.
    pub connector: fn() -> Arc<dyn Connector>,
    /// Recognises its scan operators, if it has remote scans.
    pub remote_scan: Option<ScanOf>,
    /// Its logical optimizer rules (pushdown into the source).
    pub logical_rules: fn() -> Vec<Arc<dyn OptimizerRule + Send + Sync>>,
}

impl Env {
    /// A plain DataFusion state over the process's runtime, for listing and
    /// inferring files.
    pub fn state(&self) -> SessionState {
        SessionStateBuilder::new()
            .with_config(self.config.clone())
            .with_runtime_env(self.runtime.clone())
            .with_default_features()
            .build()
    }
}

/// A table an admin declares (`quipu catalog add-table`), before the
/// source is asked about it.
#[derive(Debug, Clone)]
pub struct TableRequest {
    pub name: TableName,
    /// Folder, file or collection, relative to the source.
    pub location: String,
    /// Overrides the format file names imply (lake).
    pub format: Option<FileFormat>,
    /// Kept instead of the inferred schema when given.
    pub declared: Option<Vec<ColumnDef>>,
    pub origin: TableOrigin,
}

/// One node of a source in an encoded plan: the source it reads, by name
/// (the decoding process connects with its own catalog and pools), and
/// what the connector needs to rebuild it. Never options or credentials.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Encoded {
    pub source: String,
    pub node: serde_json::Value,
}

impl Encoded {
    /// `node` as JSON under the source's name.
    pub fn new(source: &SourceDef, node: impl serde::Serialize) -> DfResult<Self> {
        Ok(Encoded {
            source: source.name.clone(),
            node: serde_json::to_value(node).map_err(|e| DataFusionError::External(Box::new(e)))?,
        })
    }

    /// The node as the connector's own type.
    pub fn node<T: serde::de::DeserializeOwned>(self) -> DfResult<T> {
        serde_json::from_value(self.node)
            .map_err(|e| DataFusionError::Plan(format!("cannot decode a Quipu plan node: {e}")))
    }
}

/// A kind of source: how its tables are found, declared and read, and how
/// its tables and scans travel to executors.
#[async_trait]
pub trait Connector: Send + Sync + fmt::Debug {
    /// The kind of source it reads.
    fn kind(&self) -> SourceKind;

    /// The source's options as they are stored (a lake's relative path
    /// becomes an absolute URL).
    fn normalize(&self, _source: &mut SourceDef) -> Result<()> {
        Ok(())
    }

    /// Contacts the source and lists its tables.
    async fn discover(&self, env: &Env, source: &SourceDef) -> Result<Vec<TableDef>>;

    /// The definition of a declared table.
    async fn declare_table(
        &self,
        env: &Env,
        source: &SourceDef,
        request: TableRequest,
    ) -> Result<TableDef>;

    /// Whether its tables' reads can be split into `partitions`.
    fn splits_reads(&self) -> bool;

    /// The DataFusion provider of one of its tables.
    async fn table_provider(
        &self,
        env: &Env,
        source: &SourceDef,
        def: &TableDef,
    ) -> DfResult<Arc<dyn TableProvider>>;

    /// Closes its connections while the runtime still runs (the MongoDB
    /// driver otherwise ends its sessions from a drop handler that can race
    /// the runtime's shutdown).
    async fn close(&self) {}

    /// Its part of the logical codec: `Some` for its own table providers.
    fn encode_table(&self, _table: &dyn TableProvider) -> Option<DfResult<Encoded>> {
        None
    }

    /// Rebuilds a table provider it encoded.
    fn decode_table(
        &self,
        encoded: Encoded,
        _schema: SchemaRef,
        _source: SourceDef,
    ) -> DfResult<Arc<dyn TableProvider>> {
        Err(not_encoded_by(self.kind(), &encoded))
    }

    /// Its part of the physical codec: `Some` for its own scan operators.
    fn encode_exec(&self, _plan: &dyn ExecutionPlan) -> Option<DfResult<Encoded>> {
        None
    }

    /// Rebuilds a scan operator it encoded.
    fn decode_exec(
        &self,
        encoded: Encoded,
        _source: SourceDef,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(not_encoded_by(self.kind(), &encoded))
    }
}

fn not_encoded_by(kind: SourceKind, encoded: &Encoded) -> DataFusionError {
    DataFusionError::Plan(format!(
        "a plan node of source `{}` was not encoded by the {kind} connector",
        encoded.source
    ))
}
