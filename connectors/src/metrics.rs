//! Process-wide Prometheus metrics (rendered at `/metrics` by the scheduler
//! and the executors), and the per-scan row counter that feeds both
//! DataFusion's operator metrics and the per-source Prometheus counter.

use std::sync::OnceLock;

use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder};
use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Every metric Quipu exports, listed in docs/configuration.md (Metrics).
pub struct Metrics {
    pub registry: Registry,
    /// Statements run, by where they ran (`local`, `cluster`).
    pub queries: IntCounterVec,
    /// Statements that failed, by stage (`plan`, `execute`).
    pub query_errors: IntCounterVec,
    /// Wall time from planning to the last batch, by where they ran.
    pub query_seconds: HistogramVec,
    /// Rows read from each live source by this process's scans.
    pub rows_read: IntCounterVec,
    /// Executors registered with this scheduler.
    pub executors: IntGauge,
    /// Catalog generation this process holds.
    pub catalog_generation: IntGauge,
    /// PostgreSQL connections the front door closed before a login, by
    /// reason (`startup_slots_full`, `startup_timeout`, `decoder_panic`).
    pub connections_closed: IntCounterVec,
    /// Queries (or parts) answered from a materialized view, by cache.
    pub cache_hits: IntCounterVec,
    /// Materialized views that matched a query but were not used, by cache
    /// and reason (`too_old`, `no_data`).
    pub cache_misses: IntCounterVec,
    /// Refreshes, by cache and outcome (`ok`, `error`).
    pub cache_refreshes: IntCounterVec,
    /// How long refreshes took, by cache.
    pub cache_refresh_seconds: HistogramVec,
    /// Age in seconds of each cache's serving generation, as of the last
    /// query that considered it.
    pub cache_age_seconds: IntGaugeVec,
    /// Bytes of each cache's serving generation.
    pub cache_bytes: IntGaugeVec,
    /// Arrow bytes of each cache's generation held in this process's
    /// memory (0: read from its files).
    pub cache_memory_bytes: IntGaugeVec,
}

fn build() -> prometheus::Result<Metrics> {
    let registry = Registry::new();
    let queries = IntCounterVec::new(
        Opts::new("quipu_queries_total", "Statements run, by where they ran"),
        &["executed_on"],
    )?;
    let query_errors = IntCounterVec::new(
        Opts::new(
            "quipu_query_errors_total",
            "Statements that failed, by stage",
        ),
        &["stage"],
    )?;
    let query_seconds = HistogramVec::new(
        HistogramOpts::new(
            "quipu_query_seconds",
            "Time from planning to the last row, by where the statement ran",
        )
        .buckets(vec![
            0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
        ]),
        &["executed_on"],
    )?;
    let rows_read = IntCounterVec::new(
        Opts::new(
            "quipu_rows_read_total",
            "Rows read from live sources by this process, by source",
        ),
        &["source"],
    )?;
    let executors = IntGauge::new("quipu_executors", "Executors registered with the scheduler")?;
    let catalog_generation = IntGauge::new(
        "quipu_catalog_generation",
        "Generation of the catalog this process holds",
    )?;
    let connections_closed = IntCounterVec::new(
        Opts::new(
            "quipu_connections_closed_total",
            "PostgreSQL connections closed by the front door before or while logging in, by reason",
        ),
        &["reason"],
    )?;
    let cache_hits = IntCounterVec::new(
        Opts::new(
            "quipu_cache_hits_total",
            "Queries or parts of queries answered from a materialized view",
        ),
        &["cache"],
    )?;
    let cache_misses = IntCounterVec::new(
        Opts::new(
            "quipu_cache_misses_total",
            "Materialized views that could answer a query but were not used, by reason",
        ),
        &["cache", "reason"],
    )?;
    let cache_refreshes = IntCounterVec::new(
        Opts::new(
            "quipu_cache_refreshes_total",
            "Refreshes of materialized views, by outcome",
        ),
        &["cache", "outcome"],
    )?;
    let cache_refresh_seconds = HistogramVec::new(
        HistogramOpts::new(
            "quipu_cache_refresh_seconds",
            "How long refreshes of materialized views took",
        )
        .buckets(vec![0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0]),
        &["cache"],
    )?;
    let cache_age_seconds = IntGaugeVec::new(
        Opts::new(
            "quipu_cache_age_seconds",
            "Age of a materialized view's serving generation when a query last considered it",
        ),
        &["cache"],
    )?;
    let cache_bytes = IntGaugeVec::new(
        Opts::new(
            "quipu_cache_bytes",
            "Bytes of a materialized view's serving generation",
        ),
        &["cache"],
    )?;
    let cache_memory_bytes = IntGaugeVec::new(
        Opts::new(
            "quipu_cache_memory_bytes",
            "Arrow bytes of a materialized view's generation held in this process's memory",
        ),
        &["cache"],
    )?;
    registry.register(Box::new(cache_memory_bytes.clone()))?;
    for c in [&cache_hits, &cache_misses, &cache_refreshes] {
        registry.register(Box::new(c.clone()))?;
    }
    registry.register(Box::new(cache_refresh_seconds.clone()))?;
    registry.register(Box::new(cache_age_seconds.clone()))?;
    registry.register(Box::new(cache_bytes.clone()))?;
    registry.register(Box::new(connections_closed.clone()))?;
    registry.register(Box::new(queries.clone()))?;
    registry.register(Box::new(query_errors.clone()))?;
    registry.register(Box::new(query_seconds.clone()))?;
    registry.register(Box::new(rows_read.clone()))?;
    registry.register(Box::new(executors.clone()))?;
    registry.register(Box::new(catalog_generation.clone()))?;
    Ok(Metrics {
        registry,
        queries,
        query_errors,
        query_seconds,
        rows_read,
        executors,
        catalog_generation,
        connections_closed,
        cache_hits,
        cache_misses,
        cache_refreshes,
        cache_refresh_seconds,
        cache_age_seconds,
        cache_bytes,
        cache_memory_bytes,
    })
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    // The names and label sets above are fixed and valid: registering them
    // in a fresh registry cannot fail.
    METRICS.get_or_init(|| build().expect("static metric definitions are valid"))
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    if let Err(e) = encoder.encode(&metrics().registry.gather(), &mut out) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Rows one scan partition fetched from its source: the operator's
/// `rows_fetched` metric (EXPLAIN ANALYZE, tests) and the process-wide
/// per-source counter.
#[derive(Clone)]
pub struct RowsFetched {
    count: Count,
    source: prometheus::IntCounter,
}

impl RowsFetched {
    pub fn new(set: &ExecutionPlanMetricsSet, partition: usize, source: &str) -> Self {
        RowsFetched {
            count: MetricBuilder::new(set).counter("rows_fetched", partition),
            source: metrics().rows_read.with_label_values(&[source]),
        }
    }

    pub fn add(&self, rows: usize) {
        self.count.add(rows);
        self.source.inc_by(rows as u64);
    }
}
