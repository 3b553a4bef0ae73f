//! `quipu gen`: the Yachay-Shop data generator (../shared/yachay-shop/DATASET.md).
//!
//! Deterministic for a seed and scale factor, streaming (memory does not grow
//! with the scale factor), and loading each system the way its owner would:
//! PostgreSQL by COPY in one transaction per database, MongoDB by unordered
//! bulk inserts, the lake through `object_store`. Every target is connected
//! to and checked before anything is written.

pub mod error;
pub mod lake;
pub mod model;
pub mod mongo;
pub mod pg;
pub mod relational;
pub mod rng;

use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

pub use error::{GenError, Result};
pub use model::Spec;

/// The four systems of Yachay-Shop that the generator fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Crm,
    Pos,
    Inventory,
    Lake,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Crm => "crm",
            System::Pos => "pos",
            System::Inventory => "inventory",
            System::Lake => "lake",
        }
    }
}

/// What to generate and where. Connection strings may be `env:NAME` or
/// `file:/path` references so that passwords stay off command lines.
#[derive(Debug, Clone, Default)]
pub struct GenConfig {
    pub scale: f64,
    pub seed: u64,
    pub crm_url: Option<String>,
    pub pos_url: Option<String>,
    pub mongodb_url: Option<String>,
    pub lake: Option<String>,
    /// Draw progress bars on stderr (only shown on a terminal).
    pub progress: bool,
}

#[derive(Debug, Clone)]
pub struct TableReport {
    pub system: &'static str,
    pub table: String,
    pub rows: u64,
    /// xxHash64 of the bytes generated for the table, in order.
    pub checksum: String,
    pub seconds: f64,
}

#[derive(Debug, Clone)]
pub struct SystemReport {
    pub system: &'static str,
    pub rows: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone)]
pub struct GenReport {
    pub scale: f64,
    pub seed: u64,
    pub tables: Vec<TableReport>,
    pub systems: Vec<SystemReport>,
    pub seconds: f64,
    /// Peak resident memory of this process (Linux), bytes.
    pub peak_rss_bytes: Option<u64>,
}

impl GenReport {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "scale": self.scale,
            "seed": self.seed,
            "seconds": self.seconds,
            "peak_rss_bytes": self.peak_rss_bytes,
            "systems": self.systems.iter().map(|s| json!({
                "system": s.system, "rows": s.rows, "seconds": s.seconds,
                "rows_per_second": s.rows as f64 / s.seconds.max(1e-9),
            })).collect::<Vec<_>>(),
            "tables": self.tables.iter().map(|t| json!({
                "system": t.system, "table": t.table, "rows": t.rows,
                "checksum": t.checksum, "seconds": t.seconds,
            })).collect::<Vec<_>>(),
        })
    }
}

fn resolve(value: &Option<String>) -> Result<Option<String>> {
    value
        .as_ref()
        .map(|v| {
            if quipu_catalog::secret::is_reference(v) {
                Ok(quipu_catalog::secret::resolve(v)?)
            } else {
                Ok(v.clone())
            }
        })
        .transpose()
}

fn bar(multi: &MultiProgress, system: System, total: u64) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(total));
    bar.set_style(
        ProgressStyle::with_template("{msg:28} [{bar:30}] {human_pos}/{human_len} rows {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(system.name());
    bar
}

/// Generates and loads every system given in `config`.
pub async fn run(config: &GenConfig) -> Result<GenReport> {
    let spec = Spec::new(config.scale, config.seed)?;
    let crm = resolve(&config.crm_url)?;
    let pos = resolve(&config.pos_url)?;
    let mongodb = resolve(&config.mongodb_url)?;
    if crm.is_none() && pos.is_none() && mongodb.is_none() && config.lake.is_none() {
        return Err(GenError::NoTargets);
    }
    let started = Instant::now();

    // 1. Connect to and check every target before writing anything.
    let pg_targets = [(System::Crm, crm), (System::Pos, pos)]
        .into_iter()
        .filter_map(|(s, url)| url.map(|u| pg::PgTarget::parse(s, &u)))
        .collect::<Result<Vec<_>>>()?;
    let mut pg_clients = Vec::new();
    for t in &pg_targets {
        let client = t.connect().await?;
        t.check(&client).await?;
        pg_clients.push(client);
    }
    let mongo = match &mongodb {
        Some(uri) => {
            let target = mongo::MongoTarget::parse(uri).await?;
            let db = target.connect().await?;
            target.check(&db).await?;
            Some((target, db))
        }
        None => None,
    };
    let lake = match &config.lake {
        Some(raw) => {
            let target = lake::LakeTarget::parse(raw)?;
            target.check().await?;
            Some(target)
        }
        None => None,
    };

    // 2. Load them all at once: each system is bound by a different server.
    let multi = MultiProgress::with_draw_target(if config.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    // Each load is its own task so that generation runs on every core.
    let spec = std::sync::Arc::new(spec);
    let mut loads = tokio::task::JoinSet::new();
    for (t, mut client) in pg_targets.into_iter().zip(pg_clients) {
        let b = bar(&multi, t.system, pg::expected_rows(t.system, &spec));
        let spec = spec.clone();
        loads.spawn(async move {
            let s = Instant::now();
            let r = t.load(&mut client, &spec, &b).await?;
            b.finish_with_message(format!("{} done", t.system.name()));
            Ok::<_, GenError>((t.system, r, s.elapsed().as_secs_f64()))
        });
    }
    if let Some((target, db)) = mongo {
        let b = bar(&multi, System::Inventory, mongo::expected_docs(&spec));
        let spec = spec.clone();
        loads.spawn(async move {
            let s = Instant::now();
            let r = target.load(&db, &spec, &b).await?;
            b.finish_with_message("inventory done");
            Ok((System::Inventory, r, s.elapsed().as_secs_f64()))
        });
    }
    if let Some(target) = lake {
        let b = bar(&multi, System::Lake, lake::expected_rows(&spec));
        let spec = spec.clone();
        loads.spawn(async move {
            let s = Instant::now();
            let r = target.load(&spec, &b).await?;
            b.finish_with_message("lake done");
            Ok((System::Lake, r, s.elapsed().as_secs_f64()))
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = loads.join_next().await {
        match joined {
            Ok(Ok(r)) => results.push(r),
            // The first failure stops the others (PostgreSQL rolls back).
            Ok(Err(e)) => return Err(e),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => return Err(GenError::Task(e.to_string())),
        }
    }
    let order = |s: &str| {
        ["crm", "pos", "inventory", "lake"]
            .iter()
            .position(|x| *x == s)
    };
    results.sort_by_key(|(s, _, _)| order(s.name()));
    let mut tables = Vec::new();
    let mut systems = Vec::new();
    for (system, reports, seconds) in results {
        systems.push(SystemReport {
            system: system.name(),
            rows: reports.iter().map(|r| r.rows).sum(),
            seconds,
        });
        tables.extend(reports);
    }
    Ok(GenReport {
        scale: spec.scale,
        seed: spec.seed,
        tables,
        systems,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss(),
    })
}

/// VmHWM from /proc/self/status.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
