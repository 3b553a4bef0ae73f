//! Quipu's own session options, settable with `SET quipu.<name> = ...`.

use std::fmt;
use std::str::FromStr;

use std::any::Any;

use datafusion::common::Result as DfResult;
use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::DataFusionError;

use crate::dialect::datetime_input::DateOrder;

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

/// What a query does when a materialized view that could answer it is older
/// than the query allows (`quipu.stale_cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StaleCache {
    /// Compute the answer from the sources (as Trino's `WHEN STALE INLINE`).
    #[default]
    Live,
    /// Fail the query, naming the cache and its age.
    Error,
    /// Refresh the cache, then answer from it.
    Wait,
}

impl fmt::Display for StaleCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StaleCache::Live => "live",
            StaleCache::Error => "error",
            StaleCache::Wait => "wait",
        })
    }
}

impl FromStr for StaleCache {
    type Err = DataFusionError;
    fn from_str(s: &str) -> DfResult<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "live" => Ok(StaleCache::Live),
            "error" => Ok(StaleCache::Error),
            "wait" => Ok(StaleCache::Wait),
            other => Err(DataFusionError::Configuration(format!(
                "invalid value `{other}` for quipu.stale_cache; expected 'live', 'error' or 'wait'"
            ))),
        }
    }
}

/// Parses a duration written as PostgreSQL writes intervals: `0`, `30 s`,
/// `5 min`, `10 minutes`, `1 hour 30 minutes`, `2 days`, `500 ms`. A bare
/// number is seconds.
pub fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let bad =
        || format!("`{text}` is not an interval (e.g. '0', '30 seconds', '5 min', '2 hours')");
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_prefix("every ").unwrap_or(&lower).trim();
    if lower.is_empty() {
        return Err(bad());
    }
    // Split "5min" and "5 min" alike: a number, then letters.
    let mut total_ms: u128 = 0;
    let mut rest = lower;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let letters = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..letters];
        rest = rest[letters..].trim_start_matches([' ', ',']);
        let ms_per = match unit {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1_000.0,
            "ms" | "msec" | "millisecond" | "milliseconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000.0,
            "h" | "hour" | "hours" => 3_600_000.0,
            "d" | "day" | "days" => 86_400_000.0,
            "w" | "week" | "weeks" => 604_800_000.0,
            _ => return Err(bad()),
        };
        total_ms += (n * ms_per).round() as u128;
    }
    Ok(std::time::Duration::from_millis(
        u64::try_from(total_ms).map_err(|_| bad())?,
    ))
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
    /// The oldest cached data a query accepts; None: each materialized
    /// view's own `max_staleness` (unbounded when it has none).
    pub max_staleness: Option<std::time::Duration>,
    /// What to do when a cache that could answer is older than allowed.
    pub stale_cache: StaleCache,
    /// The order ambiguous date text (`05/01/2024`) is read in:
    /// PostgreSQL's `DateStyle` order, which the PostgreSQL door's `SET
    /// DateStyle` sets.
    pub date_order: DateOrder,
}

impl Default for QuipuOptions {
    fn default() -> Self {
        QuipuOptions {
            execution: ExecutionMode::Auto,
            cluster_min_bytes: 256 * 1024 * 1024,
            cluster_min_rows: 20_000_000,
            max_staleness: None,
            stale_cache: StaleCache::Live,
            date_order: DateOrder::Mdy,
        }
    }
}

const DESCRIPTIONS: [(&str, &str); 6] = [
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
    (
        "max_staleness",
        "The oldest materialized-view data a query accepts ('0': always live; 'default': each view's own max_staleness).",
    ),
    (
        "stale_cache",
        "When a materialized view is older than allowed: 'live' (compute from the sources), 'error' or 'wait' (refresh first).",
    ),
    (
        "date_order",
        "How date text whose form does not settle its order ('05/01/2024') is read: 'MDY' (default), 'DMY' or 'YMD', as PostgreSQL's DateStyle.",
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
            "max_staleness" => {
                self.max_staleness = match value.trim().to_ascii_lowercase().as_str() {
                    "default" | "" => None,
                    _ => Some(parse_duration(value).map_err(|e| {
                        DataFusionError::Configuration(format!(
                            "invalid value for quipu.max_staleness: {e}"
                        ))
                    })?),
                }
            }
            "stale_cache" => self.stale_cache = value.parse()?,
            "date_order" => {
                self.date_order = DateOrder::named(value).ok_or_else(|| {
                    DataFusionError::Configuration(format!(
                        "invalid value `{}` for quipu.date_order; expected 'MDY', 'DMY' or 'YMD'",
                        value.trim()
                    ))
                })?
            }
            other => {
                return Err(DataFusionError::Configuration(format!(
                    "unknown setting quipu.{other}; known: quipu.execution, quipu.cluster_min_bytes, quipu.cluster_min_rows, quipu.max_staleness, quipu.stale_cache, quipu.date_order"
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
            match self.max_staleness {
                None => "default".to_string(),
                Some(d) => format!("{} ms", d.as_millis()),
            },
            self.stale_cache.to_string(),
            self.date_order.name().to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn intervals_read_as_postgresql_writes_them() {
        for (text, ms) in [
            ("0", 0),
            ("30", 30_000),
            ("30 s", 30_000),
            ("5 min", 300_000),
            ("10 minutes", 600_000),
            ("every 5 minutes", 300_000),
            ("1 hour 30 minutes", 5_400_000),
            ("2 days", 172_800_000),
            ("500 ms", 500),
            ("1.5h", 5_400_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in ["", "soon", "5 fortnights", "min", "-1 s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("is not an interval"), "{bad}: {e}");
        }
    }

    #[test]
    fn staleness_settings_are_checked() {
        let mut o = QuipuOptions::default();
        o.set("max_staleness", "5 min").unwrap();
        assert_eq!(o.max_staleness, Some(Duration::from_secs(300)));
        o.set("max_staleness", "default").unwrap();
        assert_eq!(o.max_staleness, None);
        assert!(o.set("max_staleness", "later").is_err());
        o.set("stale_cache", "WAIT").unwrap();
        assert_eq!(o.stale_cache, StaleCache::Wait);
        let e = o.set("stale_cache", "maybe").unwrap_err().to_string();
        assert!(e.contains("'live', 'error' or 'wait'"), "{e}");
        o.set("date_order", "european").unwrap();
        assert_eq!(o.date_order, DateOrder::Dmy);
        let e = o.set("date_order", "DYM").unwrap_err().to_string();
        assert!(e.contains("`DYM` for quipu.date_order"), "{e}");
    }
}
