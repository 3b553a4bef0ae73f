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
    let sql = format!(
        "SELECT series, method, training_periods, mape, seasonal_naive_mape, baseline \
         FROM backtest('{}', {holdout}) ORDER BY series",
        WEEKLY.replace('\'', "''")
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
