//! Quipu's own session options, settable with `SET quipu.<name> = ...`.

use std::fmt;
use std::str::FromStr;

use std::any::Any;

use datafusion::common::Result as DfResult;
use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
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

/// Options under the `quipu.` prefix.
///
/// Written by hand rather than with DataFusion's `extensions_options!`
/// because that macro reports its entries without the prefix, so `SHOW
/// quipu.execution` and `information_schema.df_settings` would not find them.
#[derive(Debug, Clone)]
pub struct QuipuOptions {
    /// 'auto' (default): run in-process unless the estimated scan is large;
    /// 'local': always in-process; 'cluster': always on Ballista.
    pub execution: ExecutionMode,
    /// In 'auto' mode, queries whose scans add up to at least this many
    /// bytes run on the cluster.
    pub cluster_min_bytes: u64,
    /// In 'auto' mode, queries whose scans add up to at least this many
    /// rows (where files record their row counts) run on the cluster.
    pub cluster_min_rows: u64,
}

impl Default for QuipuOptions {
    fn default() -> Self {
        QuipuOptions {
            execution: ExecutionMode::Auto,
            cluster_min_bytes: 256 * 1024 * 1024,
            cluster_min_rows: 20_000_000,
        }
    }
}

const DESCRIPTIONS: [(&str, &str); 3] = [
    (
        "execution",
        "Where queries run: 'auto' (by estimated work), 'local' (in-process) or 'cluster' (Ballista).",
    ),
    (
        "cluster_min_bytes",
        "In 'auto' mode, scans of at least this many bytes run on the cluster.",
    ),
    (
        "cluster_min_rows",
        "In 'auto' mode, scans of at least this many rows run on the cluster.",
    ),
];

impl ExtensionOptions for QuipuOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> DfResult<()> {
        let number = |v: &str| {
            v.trim().parse::<u64>().map_err(|_| {
                DataFusionError::Configuration(format!(
                    "invalid value `{v}` for quipu.{key}; expected a non-negative integer"
                ))
            })
        };
        match key {
            "execution" => self.execution = value.parse()?,
            "cluster_min_bytes" => self.cluster_min_bytes = number(value)?,
            "cluster_min_rows" => self.cluster_min_rows = number(value)?,
            other => {
                return Err(DataFusionError::Configuration(format!(
                    "unknown setting quipu.{other}; known: quipu.execution, quipu.cluster_min_bytes, quipu.cluster_min_rows"
                )));
            }
        }
        Ok(())
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        let values = [
            self.execution.to_string(),
            self.cluster_min_bytes.to_string(),
            self.cluster_min_rows.to_string(),
        ];
        DESCRIPTIONS
            .iter()
            .zip(values)
            .map(|((key, description), value)| ConfigEntry {
                key: format!("quipu.{key}"),
                value: Some(value),
                description,
            })
            .collect()
    }
}

impl ConfigExtension for QuipuOptions {
    const PREFIX: &'static str = "quipu";
}
