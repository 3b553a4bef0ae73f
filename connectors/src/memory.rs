//! The memory every query of one Quipu process may use together.
//!
//! Without a pool DataFusion tracks nothing and spills nothing: a user's
//! `GROUP BY` with 40 M groups grew to 4.3 GB and the process was killed
//! (issue 16). Every process (scheduler, executor, `serve`, the CLI) runs
//! its queries under one fair spilling pool: sorts, aggregates and joins
//! that can spill write to the operating system's temp directory once
//! their share is used, and an operator that cannot spill fails its query
//! with `ResourcesExhausted` (SQLSTATE 53200), never the process.
//!
//! The size is `QUIPU_MEMORY_LIMIT` (`512M`, `4G`, bytes) when set, else
//! 60% of the memory this process may use: the smaller of the machine's
//! (`/proc/meminfo`) and its cgroup's limit (`memory.max`).

use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};

/// The environment variable that sets the pool's size.
pub const MEMORY_LIMIT_ENV: &str = "QUIPU_MEMORY_LIMIT";

/// Share of the usable memory the pool takes by default.
const DEFAULT_SHARE: f64 = 0.6;

/// When nothing can be read about the machine.
const FALLBACK: usize = 2 << 30;

/// A size such as `512M`, `4G`, `1.5g`, `300MB` or a number of bytes.
pub fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim().to_ascii_uppercase();
    let t = t.strip_suffix('B').unwrap_or(&t);
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit.trim() {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        "T" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = n * scale;
    (bytes.is_finite() && bytes >= 1.0 && bytes < usize::MAX as f64).then_some(bytes as usize)
}

/// The pool size set by [`MEMORY_LIMIT_ENV`]: `Ok(None)` when unset, an
/// error sentence naming the variable when it is not a size.
pub fn limit_from_env() -> Result<Option<usize>, String> {
    match std::env::var(MEMORY_LIMIT_ENV) {
        Err(_) => Ok(None),
        Ok(v) => parse_size(&v).map(Some).ok_or_else(|| {
            format!("{MEMORY_LIMIT_ENV}: '{v}' is not a memory size (examples: 512M, 4G)")
        }),
    }
}

/// Memory this process may use: the machine's, or its cgroup's if lower.
pub fn usable_memory() -> usize {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        })
        .map(|kb| kb * 1024);
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|p| {
        std::fs::read_to_string(p)
            .ok()?
            .trim()
            .parse::<usize>()
            .ok()
    });
    match (machine, cgroup) {
        (Some(m), Some(c)) => m.min(c),
        (Some(m), None) => m,
        (None, Some(c)) => c,
        (None, None) => FALLBACK,
    }
}

/// The pool size this process uses (see the module documentation). An
/// invalid `QUIPU_MEMORY_LIMIT` is refused by the CLI before any session
/// opens; here it falls back to the default with a warning.
pub fn pool_size() -> usize {
    match limit_from_env() {
        Ok(Some(n)) => n,
        Ok(None) => (usable_memory() as f64 * DEFAULT_SHARE) as usize,
        Err(e) => {
            tracing::warn!("{e}; using the default");
            (usable_memory() as f64 * DEFAULT_SHARE) as usize
        }
    }
}

/// The process's pool: fair between spilling operators, and naming the
/// largest consumers when a query runs out.
pub fn pool(size: usize) -> Arc<dyn MemoryPool> {
    Arc::new(TrackConsumersPool::new(
        FairSpillPool::new(size),
        NonZeroUsize::new(5).expect("non-zero"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_the_docs_say() {
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("4G"), Some(4 << 30));
        assert_eq!(parse_size("300mb"), Some(300 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        for bad in ["", "lots", "-1G", "0", "4X", "G"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_default_is_a_share_of_this_machine() {
        let usable = usable_memory();
        assert!(usable > 0);
        if std::env::var(MEMORY_LIMIT_ENV).is_err() {
            let size = pool_size();
            assert!(size < usable && size > usable / 2, "{size} of {usable}");
        }
    }
}
