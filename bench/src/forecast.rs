//! Benchmark: `backtest()` on the Yachay-Shop history (issue 21, item 3).
//! Weekly revenue per category over every complete week of live and
//! archived sales, the last 8 weeks held out; prints each category's MAPE
//! beside the seasonal-naive MAPE and the ratio of their means (target
//! <= 0.85). Not a test: the figure goes in docs/benchmarks.md.
//!
//! ```sh
//! QUIPU_DEMO_DIR=DIR deploy/demo.sh --scale 1 --setup-only   # the data
//! cargo run --profile bench-fast -p quipu-bench --bin forecast -- DIR/data [HOLDOUT]
//! ```
//!
//! It runs in-process over the catalog in DIR/data (the sources must be
//! up: the demo's servers stay up after `--setup-only`).

use std::time::Instant;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use futures::TryStreamExt;
use quipu_scheduler::Engine;

/// The history `yachay.sales_forecast` forecasts from: complete weeks.
pub const WEEKLY: &str = "SELECT week, category, CAST(sum(revenue_usd) AS DOUBLE) AS revenue \
     FROM yachay.sales_weekly WHERE category IS NOT NULL \
     AND week > (SELECT min(week) FROM yachay.sales_weekly) \
     AND week < (SELECT max(week) FROM yachay.sales_weekly) \
     GROUP BY week, category";

/// The same weekly revenue per category from the lake's archive alone
/// (complete weeks). The live window holds store sales beside online
/// orders, and its online orders are more than the archive's, so a
/// seasonal-naive forecast whose year-ago weeks are archived ones misses by
/// that step; inside the archive both methods see one kind of week.
pub const ARCHIVE_WEEKLY: &str = "WITH w AS (\
     SELECT CAST(date_trunc('week', l.sold_at) AS DATE) AS week, p.category, \
            CAST(sum(l.revenue_usd) AS DOUBLE) AS revenue \
     FROM yachay.sales_lines l JOIN inventory.public.products p ON p.sku = l.sku \
     WHERE l.layer = 'archive' GROUP BY 1, 2) \
     SELECT week, category, revenue FROM w \
     WHERE week > (SELECT min(week) FROM w) AND week < (SELECT max(week) FROM w)";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let data = args.next().expect("usage: forecast DATA_DIR [HOLDOUT]");
    let holdout: usize = args
        .next()
        .map(|a| a.parse().expect("HOLDOUT"))
        .unwrap_or(8);
    let engine = Engine::open(&data).unwrap_or_else(|e| panic!("{data}: {e}"));
    let c = engine.client();
    for (what, series) in [
        (
            "every complete week, live and archived (what yachay.sales_forecast reads)",
            WEEKLY,
        ),
        (
            "the archive alone: one regime (online orders, 36 months)",
            ARCHIVE_WEEKLY,
        ),
    ] {
        println!("\n== {what}");
        backtest(&c, series, holdout).await;
    }
}

/// Runs `backtest()` over `series` and prints each category's figures and
/// the ratio of the means.
async fn backtest(c: &quipu_scheduler::session::ClientSession, series: &str, holdout: usize) {
    let sql = format!(
        "SELECT series, method, training_periods, mape, seasonal_naive_mape, baseline \
         FROM backtest('{}', {holdout}) ORDER BY series",
        series.replace('\'', "''")
    );
    let t = Instant::now();
    let out = c.sql_one(&sql).await.unwrap_or_else(|e| panic!("{e}"));
    let batches: Vec<_> = out.stream.try_collect().await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{:<14} {:>9} {:>8} {:>8} {:>12}  baseline",
        "category", "method", "weeks", "MAPE %", "s.naive %"
    );
    let (mut sum_model, mut sum_naive, mut n) = (0.0, 0.0, 0);
    for b in &batches {
        let series = b.column(0).as_string::<i32>();
        let method = b.column(1).as_string::<i32>();
        let weeks = b.column(2).as_primitive::<Int64Type>();
        let model = b.column(3).as_primitive::<Float64Type>();
        let naive = b.column(4).as_primitive::<Float64Type>();
        let baseline = b.column(5).as_string::<i32>();
        for i in 0..b.num_rows() {
            println!(
                "{:<14} {:>9} {:>8} {:>8.2} {:>12.2}  {}",
                series.value(i),
                method.value(i),
                weeks.value(i),
                model.value(i),
                naive.value(i),
                baseline.value(i)
            );
            if !model.is_null(i) && !naive.is_null(i) {
                sum_model += model.value(i);
                sum_naive += naive.value(i);
                n += 1;
            }
        }
    }
    let (m, s) = (sum_model / n as f64, sum_naive / n as f64);
    println!(
        "mean over {n} categories: MAPE {m:.2} %, seasonal-naive MAPE {s:.2} %, ratio {:.3} (target <= 0.85); {holdout} weeks held out; {secs:.1} s",
        m / s
    );
}
