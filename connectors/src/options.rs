//! Quipu's own session options, settable with `SET quipu.<name> = ...`.

use std::fmt;
use std::str::FromStr;

use datafusion::common::config::{ConfigExtension, ConfigField, Visit};
use datafusion::common::{Result as DfResult, extensions_options};
use datafusion::error::DataFusionError;

/// Where a query runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionMode {
    /// Chosen per query from an estimate of the work.
    #[default]
    Auto,
    /// In-process on DataFusion's executor.
    Local,
    /// On the Ballista cluster.
    Cluster,
}

impl fmt::Display for ExecutionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExecutionMode::Auto => "auto",
            ExecutionMode::Local => "local",
            ExecutionMode::Cluster => "cluster",
        })
    }
}

impl FromStr for ExecutionMode {
    type Err = DataFusionError;
    fn from_str(s: &str) -> DfResult<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(ExecutionMode::Auto),
            "local" => Ok(ExecutionMode::Local),
            "cluster" => Ok(ExecutionMode::Cluster),
            other => Err(DataFusionError::Configuration(format!(
                "invalid value `{other}` for quipu.execution; expected 'auto', 'local' or 'cluster'"
            ))),
        }
    }
}

impl ConfigField for ExecutionMode {
    fn visit<V: Visit>(&self, v: &mut V, key: &str, description: &'static str) {
        v.some(key, self, description)
    }

    fn set(&mut self, _key: &str, value: &str) -> DfResult<()> {
        *self = value.parse()?;
        Ok(())
    }
}

extensions_options! {
    /// Options under the `quipu.` prefix.
    pub struct QuipuOptions {
        /// 'auto' (default): run in-process unless the estimated scan is
        /// large; 'local': always in-process; 'cluster': always on Ballista.
        pub execution: ExecutionMode, default = ExecutionMode::Auto
        /// In 'auto' mode, queries whose scans add up to at least this many
        /// bytes run on the cluster.
        pub cluster_min_bytes: u64, default = 256 * 1024 * 1024
        /// In 'auto' mode, queries whose scans add up to at least this many
        /// rows (where sources know their row counts) run on the cluster.
        pub cluster_min_rows: u64, default = 20_000_000
    }
}

impl ConfigExtension for QuipuOptions {
    const PREFIX: &'static str = "quipu";
}
