//! Caches held in memory as Arrow, beside their Parquet files.
//!
//! A point query on a cache (one customer's 360 row) read from Parquet
//! decodes the pages of every column it selects; from memory it filters
//! batches already decoded. So a process keeps the generations it reads
//! in memory, up to a budget: `QUIPU_CACHE_MEMORY` (`512M`, `4G`, bytes;
//! `0`: none), by default a tenth of the memory the process may use. A
//! generation is loaded whole the first time a query of this process reads
//! it (that query reads the files), and dropped when the cache has a newer
//! generation or when the budget needs room for one read more recently. A
//! generation larger than half the budget stays on disk. A one-shot
//! `quipu sql` holds none unless the variable is set.
//!
//! Generations never change once written, so a copy in memory is always
//! the files' rows. Executors of the cluster read the files: memory is a
//! matter of the process that answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::Result as DfResult;
use datafusion::physical_plan::collect;
use tokio::sync::OnceCell;

/// The environment variable that sets the budget.
pub const CACHE_MEMORY_ENV: &str = "QUIPU_CACHE_MEMORY";

/// One generation in memory: its batches split into partitions, and
/// their Arrow size; None when it does not fit.
pub type Held = Option<(Arc<Vec<Vec<RecordBatch>>>, usize)>;

struct Entry {
    cache: String,
    held: Arc<OnceCell<Held>>,
    /// When a query last read it (a counter: the least recent goes first).
    used: u64,
}

#[derive(Default)]
struct Memory {
    entries: HashMap<String, Entry>,
    clock: u64,
}

fn memory() -> &'static Mutex<Memory> {
    static MEMORY: OnceLock<Mutex<Memory>> = OnceLock::new();
    MEMORY.get_or_init(Default::default)
}

static BUDGET: OnceLock<usize> = OnceLock::new();

/// Holds no cache in memory in this process unless `QUIPU_CACHE_MEMORY`
/// says otherwise: for one-shot processes (`quipu sql`), where loading a
/// whole generation would cost more than reading the columns one query
/// needs. Call before any query.
pub fn none_by_default() {
    if std::env::var_os(CACHE_MEMORY_ENV).is_none() {
        let _ = BUDGET.set(0);
    }
}

/// The budget of this process, in bytes (see the module docs).
pub fn budget() -> usize {
    *BUDGET.get_or_init(|| match std::env::var(CACHE_MEMORY_ENV) {
        Ok(v) => crate::memory::parse_size(&v).unwrap_or_else(|| {
            if v.trim() != "0" {
                tracing::warn!(
                    "{CACHE_MEMORY_ENV}: '{v}' is not a memory size (examples: 512M, 4G); no cache is held in memory"
                );
            }
            0
        }),
        Err(_) => crate::memory::usable_memory() / 10,
    })
}

/// The rows of the generation at `location` of cache `cache`, in
/// memory: loaded through `files` (its Parquet table) the first time.
/// None when it does not fit in the budget (read the files).
pub async fn held(
    cache: &str,
    location: &str,
    files: &dyn TableProvider,
    state: &dyn Session,
) -> DfResult<Held> {
    let budget = budget();
    if budget == 0 {
        return Ok(None);
    }
    let cell = {
        let mut m = memory().lock().unwrap();
        m.clock += 1;
        let now = m.clock;
        // An older generation of the same cache is not read any more.
        m.entries
            .retain(|at, e| e.cache != cache || at.as_str() == location);
        let e = m.entries.entry(location.to_string()).or_insert(Entry {
            cache: cache.to_string(),
            held: Arc::new(OnceCell::new()),
            used: now,
        });
        e.used = now;
        e.held.clone()
    };
    let held = cell
        .get_or_try_init(|| async {
            let plan = files.scan(state, None, &[], None).await?;
            let batches = collect(plan, state.task_ctx()).await?;
            let size: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
            if size > budget / 2 {
                tracing::info!(
                    cache,
                    bytes = size,
                    budget,
                    "cache generation too large to hold in memory"
                );
                return Ok::<Held, datafusion::error::DataFusionError>(None);
            }
            // Spread over the session's partitions, for parallel filters.
            let n = state.config().target_partitions().max(1);
            let mut parts = vec![Vec::new(); n];
            for (i, b) in batches.into_iter().enumerate() {
                parts[i % n].push(b);
            }
            parts.retain(|p| !p.is_empty());
            if parts.is_empty() {
                parts.push(Vec::new());
            }
            Ok(Some((Arc::new(parts), size)))
        })
        .await?
        .clone();
    if let Some((_, size)) = &held {
        crate::metrics::metrics()
            .cache_memory_bytes
            .with_label_values(&[cache])
            .set(*size as i64);
        make_room(location, budget);
    }
    Ok(held)
}

/// Drops the generations read least recently until those held fit in the
/// budget (never `keep`, the one just read).
fn make_room(keep: &str, budget: usize) {
    let mut m = memory().lock().unwrap();
    loop {
        let size = |e: &Entry| e.held.get().and_then(|h| h.as_ref()).map_or(0, |h| h.1);
        let total: usize = m.entries.values().map(size).sum();
        if total <= budget {
            return;
        }
        let Some(oldest) = m
            .entries
            .iter()
            .filter(|(at, e)| at.as_str() != keep && size(e) > 0)
            .min_by_key(|(_, e)| e.used)
            .map(|(at, _)| at.clone())
        else {
            return;
        };
        if let Some(e) = m.entries.remove(&oldest) {
            crate::metrics::metrics()
                .cache_memory_bytes
                .with_label_values(&[&e.cache])
                .set(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    fn held_here() -> Vec<String> {
        let m = memory().lock().unwrap();
        let mut out: Vec<String> = m
            .entries
            .iter()
            .filter(|(_, e)| e.held.get().is_some_and(|h| h.is_some()))
            .map(|(at, _)| at.clone())
            .collect();
        out.sort();
        out
    }

    /// The only test of this module: it sets the process's budget.
    #[tokio::test]
    async fn the_least_recently_read_generation_goes_first_and_a_newer_one_replaces_its_own() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let batch = |n: i64| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from_iter_values(0..n))],
            )
            .unwrap()
        };
        let size = batch(1000).get_array_memory_size();
        // Room for two small generations; a big one is over half of it.
        assert!(
            BUDGET.set(size * 5 / 2).is_ok(),
            "the budget was read before"
        );
        let small = MemTable::try_new(schema.clone(), vec![vec![batch(1000)]]).unwrap();
        let big = MemTable::try_new(schema.clone(), vec![vec![batch(2000)]]).unwrap();
        let state = SessionContext::new().state();
        let rows = |h: &Held| {
            h.as_ref()
                .map(|(p, _)| p.iter().flatten().map(|b| b.num_rows()).sum::<usize>())
        };

        let a = held("c.a", "a/g1", &small, &state).await.unwrap();
        assert_eq!(rows(&a), Some(1000));
        held("c.b", "b/g1", &small, &state).await.unwrap();
        assert_eq!(held_here(), ["a/g1", "b/g1"]);
        // a read again: b is now the least recently read, and goes.
        held("c.a", "a/g1", &small, &state).await.unwrap();
        held("c.c", "c/g1", &small, &state).await.unwrap();
        assert_eq!(held_here(), ["a/g1", "c/g1"]);
        // A newer generation of a replaces a/g1.
        held("c.a", "a/g2", &small, &state).await.unwrap();
        assert_eq!(held_here(), ["a/g2", "c/g1"]);
        // Over half the budget: read from its files, nothing dropped.
        assert!(held("c.d", "d/g1", &big, &state).await.unwrap().is_none());
        assert_eq!(held_here(), ["a/g2", "c/g1"]);
    }
}
