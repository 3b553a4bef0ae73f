//! `forecast(sql, horizon [, level])` and `backtest(sql, holdout)`: table
//! functions that run a query, cut its rows into time series and forecast
//! each with Grafana's `augurs` crates (docs/sql.md, Forecasts).
//!
//! The query's columns are read by position and type: its first date or
//! timestamp column is the time, its last column the value (any number),
//! every other column a key naming the series. DataFusion's table
//! functions are synchronous, so [`ForecastTable`] only holds the SQL; its
//! `scan` plans and runs the query with the session that plans the outer
//! one (the client's, so its grants apply; the scheduler's on the
//! cluster, where the client checked the query first), fits, and returns
//! the answer as an in-memory plan, which the cluster's codecs carry
//! natively. The table itself travels as its SQL and arguments
//! ([`encode`], [`decode`]).
//!
//! Methods, per series (the `method` column says which one ran):
//! - `mstl_ets`: MSTL decomposition with the seasons the time step implies
//!   (weekly data: 52; daily: 7 and 365; monthly: 12; hourly: 24 and 168)
//!   that the series covers at least twice, and AutoETS (exponential
//!   smoothing, model chosen by AICc) on the seasonally adjusted series:
//!   augurs' own seasonal method (its ETS has no seasonal models yet);
//! - `ets`: AutoETS without a season, for a series shorter than two of
//!   its seasons (or with none) but with at least 10 periods;
//! - `naive`: the last value, with a random-walk interval, for shorter
//!   series (or when a model fails to fit).

use std::collections::BTreeMap;
use std::sync::Arc;

use augurs_core::{Fit, Predict};
use augurs_ets::AutoETS;
use augurs_ets::trend::AutoETSTrendModel;
use augurs_mstl::MSTLModel;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, Float64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableType, source_as_provider};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

/// The longest horizon (and holdout): ten years of weeks.
pub const MAX_HORIZON: i64 = 520;
/// The interval's level when none is given.
pub const DEFAULT_LEVEL: f64 = 0.95;
/// Series shorter than this get the naive forecast (AutoETS with a trend
/// needs more than 8 points).
const MIN_ETS: usize = 10;

/// Which function, with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Spec {
    Forecast { horizon: usize, level: f64 },
    Backtest { holdout: usize },
}

/// The table function `forecast` or `backtest`.
#[derive(Debug)]
pub struct ForecastFunction {
    backtest: bool,
}

/// The two functions, to register in a session.
pub fn functions() -> [(&'static str, Arc<dyn TableFunctionImpl>); 2] {
    [
        ("forecast", Arc::new(ForecastFunction { backtest: false })),
        ("backtest", Arc::new(ForecastFunction { backtest: true })),
    ]
}

fn literal<'a>(name: &str, what: &str, e: Option<&'a Expr>) -> Result<&'a ScalarValue> {
    match e {
        Some(Expr::Literal(v, _)) if !v.is_null() => Ok(v),
        Some(other) => plan_err!("{name}(): the {what} must be a constant, got {other}"),
        None => plan_err!("{name}(): missing the {what}"),
    }
}

fn periods(name: &str, what: &str, e: Option<&Expr>) -> Result<usize> {
    let v = literal(name, what, e)?;
    let n = match v.cast_to(&DataType::Int64) {
        Ok(ScalarValue::Int64(Some(n))) if v.data_type().is_integer() => n,
        _ => return plan_err!("{name}(): the {what} must be an integer, got {v}"),
    };
    if !(1..=MAX_HORIZON).contains(&n) {
        return plan_err!(
            "{name}(): the {what} must be between 1 and {MAX_HORIZON} periods, got {n}"
        );
    }
    Ok(n as usize)
}

impl TableFunctionImpl for ForecastFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let args = args.exprs();
        let name = if self.backtest {
            "backtest"
        } else {
            "forecast"
        };
        let usage = if self.backtest {
            "backtest('SELECT time, key, value FROM ...', holdout)"
        } else {
            "forecast('SELECT time, key, value FROM ...', horizon [, level])"
        };
        let most = if self.backtest { 2 } else { 3 };
        if args.len() < 2 || args.len() > most {
            return plan_err!("{name}() takes {usage}; got {} argument(s)", args.len());
        }
        let sql = match literal(name, "query", args.first())? {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => s.clone(),
            other => return plan_err!("{name}(): the query must be a text literal, got {other}"),
        };
        let spec = if self.backtest {
            Spec::Backtest {
                holdout: periods(name, "holdout", args.get(1))?,
            }
        } else {
            let level = match args.get(2) {
                None => DEFAULT_LEVEL,
                Some(e) => {
                    let v = literal(name, "level", Some(e))?;
                    match v.cast_to(&DataType::Float64) {
                        Ok(ScalarValue::Float64(Some(l))) if l > 0.0 && l < 1.0 => l,
                        _ => {
                            return plan_err!(
                                "{name}(): the level must be a number between 0 and 1 (0.95 for 95%), got {v}"
                            );
                        }
                    }
                }
            };
            Spec::Forecast {
                horizon: periods(name, "horizon", args.get(1))?,
                level,
            }
        };
        Ok(Arc::new(ForecastTable::new(sql, spec)))
    }
}

/// The rows of one call: the query, run and fitted when scanned.
#[derive(Debug, Clone)]
pub struct ForecastTable {
    sql: String,
    spec: Spec,
    schema: SchemaRef,
}

fn output_schema(spec: &Spec) -> SchemaRef {
    let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
    Arc::new(Schema::new(match spec {
        Spec::Forecast { .. } => vec![
            f("series", DataType::Utf8, true),
            f(
                "time",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            f("step", DataType::Int64, false),
            f("forecast", DataType::Float64, false),
            f("lower", DataType::Float64, true),
            f("upper", DataType::Float64, true),
            f("method", DataType::Utf8, false),
        ],
        Spec::Backtest { .. } => vec![
            f("series", DataType::Utf8, true),
            f("method", DataType::Utf8, false),
            f("training_periods", DataType::Int64, false),
            f("holdout", DataType::Int64, false),
            f("mape", DataType::Float64, true),
            f("seasonal_naive_mape", DataType::Float64, true),
            f("baseline", DataType::Utf8, false),
        ],
    }))
}

impl ForecastTable {
    pub fn new(sql: String, spec: Spec) -> Self {
        let schema = output_schema(&spec);
        ForecastTable { sql, spec, schema }
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    pub fn spec(&self) -> Spec {
        self.spec
    }

    /// Runs the query with `state` and computes the answer.
    async fn compute(&self, state: &SessionState) -> Result<RecordBatch> {
        let name = self.name();
        let plan = state.create_logical_plan(&self.sql).await.map_err(|e| {
            DataFusionError::Plan(format!("{name}(): its query does not plan: {e}"))
        })?;
        if !is_query(&plan) {
            return plan_err!("{name}(): its argument must be a query (SELECT ...)");
        }
        // The session's catalog list hides the sources its user is not
        // granted; a view over one still plans, so check what it reads.
        let defaults = &state.config_options().catalog;
        for source in crate::catalog::access::sources_read(
            &plan,
            &defaults.default_catalog,
            &defaults.default_schema,
        ) {
            if state.catalog_list().catalog(&source).is_none() {
                return plan_err!("{name}(): permission denied for source {source}");
            }
        }
        let physical = state.create_physical_plan(&plan).await?;
        let batches = datafusion::physical_plan::collect(physical, state.task_ctx()).await?;
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let series = read_series(name, &schema, &batches)?;
        match self.spec {
            Spec::Forecast { horizon, level } => {
                forecast_batch(&self.schema, &series, horizon, level)
            }
            Spec::Backtest { holdout } => backtest_batch(&self.schema, &series, holdout),
        }
    }

    fn name(&self) -> &'static str {
        match self.spec {
            Spec::Forecast { .. } => "forecast",
            Spec::Backtest { .. } => "backtest",
        }
    }
}

fn is_query(plan: &LogicalPlan) -> bool {
    !matches!(
        plan,
        LogicalPlan::Ddl(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Explain(_)
            | LogicalPlan::Analyze(_)
            | LogicalPlan::DescribeTable(_)
    )
}

#[async_trait::async_trait]
impl TableProvider for ForecastTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(state) = state.as_any().downcast_ref::<SessionState>() else {
            return plan_err!("{}() needs a DataFusion session state", self.name());
        };
        let batch = self.compute(state).await?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}

/// The queries of every `forecast()` / `backtest()` a plan reads, through
/// views and subqueries (the scheduler checks them against the grants).
pub fn inner_queries(plan: &LogicalPlan) -> Vec<String> {
    let mut out = vec![];
    collect_queries(plan, &mut out, 0);
    out
}

fn collect_queries(plan: &LogicalPlan, out: &mut Vec<String>, depth: usize) {
    if depth > 32 {
        return;
    }
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
        {
            if let Some(f) = provider.downcast_ref::<ForecastTable>() {
                out.push(f.sql.clone());
            } else if let Some(view) = provider.get_logical_plan() {
                collect_queries(&view, out, depth + 1);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

/// The encoded form of a [`ForecastTable`] (the cluster's logical codec).
#[derive(Serialize, Deserialize)]
struct Wire {
    sql: String,
    spec: Spec,
}

/// The table as bytes, or `None` when it is not a forecast table.
pub fn encode(table: &dyn TableProvider) -> Option<Result<Vec<u8>>> {
    let t = table.downcast_ref::<ForecastTable>()?;
    Some(
        serde_json::to_vec(&Wire {
            sql: t.sql.clone(),
            spec: t.spec,
        })
        .map_err(|e| DataFusionError::External(Box::new(e))),
    )
}

pub fn decode(buf: &[u8]) -> Result<Arc<dyn TableProvider>> {
    let w: Wire = serde_json::from_slice(buf)
        .map_err(|e| DataFusionError::Plan(format!("cannot decode a forecast table: {e}")))?;
    Ok(Arc::new(ForecastTable::new(w.sql, w.spec)))
}

// ---- the series ---------------------------------------------------------

const DAY: i64 = 86_400_000_000;

/// The spacing of a series' times.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// A fixed number of microseconds.
    Fixed(i64),
    /// Calendar months.
    Month,
}

impl Step {
    /// The seasons a retailer's data at this step has.
    fn seasons(self) -> &'static [usize] {
        match self {
            Step::Fixed(DAY) => &[7, 365],
            Step::Fixed(s) if s == 7 * DAY => &[52],
            Step::Fixed(3_600_000_000) => &[24, 168],
            Step::Month => &[12],
            Step::Fixed(_) => &[],
        }
    }

    fn add(self, t: i64, k: i64) -> i64 {
        match self {
            Step::Fixed(s) => t + s * k,
            Step::Month => {
                let dt = chrono_like::from_micros(t);
                chrono_like::to_micros(chrono_like::add_months(dt, k))
            }
        }
    }
}

/// Calendar arithmetic on microseconds since the epoch (civil-from-days,
/// as in gen/src/rng.rs: Howard Hinnant's algorithms).
mod chrono_like {
    pub struct Civil {
        pub y: i64,
        pub m: i64,
        pub d: i64,
        pub micros_of_day: i64,
    }
    const DAY: i64 = super::DAY;
    pub fn from_micros(t: i64) -> Civil {
        let days = t.div_euclid(DAY);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        Civil {
            y,
            m,
            d,
            micros_of_day: t.rem_euclid(DAY),
        }
    }
    pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
    pub fn to_micros(c: Civil) -> i64 {
        days_from_civil(c.y, c.m, c.d) * DAY + c.micros_of_day
    }
    pub fn add_months(c: Civil, k: i64) -> Civil {
        let months = c.y * 12 + (c.m - 1) + k;
        Civil {
            y: months.div_euclid(12),
            m: months.rem_euclid(12) + 1,
            ..c
        }
    }
    pub fn month_index(t: i64) -> (i64, i64) {
        let c = from_micros(t);
        (c.y * 12 + c.m - 1, c.d * DAY + c.micros_of_day)
    }
}

/// One series: its key, first time, step and values (missing periods 0).
#[derive(Debug)]
struct Series {
    key: Option<String>,
    start: i64,
    step: Step,
    values: Vec<f64>,
}

fn read_series(name: &str, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<Series>> {
    let columns = || {
        schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(time) = schema.fields().iter().position(|f| {
        matches!(
            f.data_type(),
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
        )
    }) else {
        return plan_err!(
            "{name}(): the query returns no date or timestamp column to use as the time (it returns {})",
            columns()
        );
    };
    let value = schema.fields().len() - 1;
    let vf = schema.field(value);
    if value == time || !(vf.data_type().is_numeric()) {
        return plan_err!(
            "{name}(): the value column (the query's last) must be a number; `{}` is {}",
            vf.name(),
            vf.data_type()
        );
    }
    let keys: Vec<usize> = (0..value).filter(|&i| i != time).collect();
    // Rows with the same series and time are added; NULL times or values
    // are left out.
    let mut by_key: BTreeMap<Option<String>, BTreeMap<i64, f64>> = BTreeMap::new();
    for batch in batches {
        let t = cast(
            batch.column(time),
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        let t = t.as_primitive::<TimestampMicrosecondType>();
        let v = cast(batch.column(value), &DataType::Float64)?;
        let v = v.as_primitive::<Float64Type>();
        let ks: Vec<ArrayRef> = keys
            .iter()
            .map(|&i| cast(batch.column(i), &DataType::Utf8))
            .collect::<std::result::Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            if t.is_null(row) || v.is_null(row) {
                continue;
            }
            let key = (!ks.is_empty()).then(|| {
                ks.iter()
                    .map(|k| {
                        if k.is_null(row) {
                            "NULL".to_string()
                        } else {
                            k.as_string::<i32>().value(row).to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" / ")
            });
            *by_key
                .entry(key)
                .or_default()
                .entry(t.value(row))
                .or_insert(0.0) += v.value(row);
        }
    }
    by_key
        .into_iter()
        .map(|(key, points)| regular(name, key, points))
        .collect()
}

/// Places a series' points on its time grid; missing periods count 0 (the
/// functions are meant for sums: a week with no sales sold nothing).
fn regular(name: &str, key: Option<String>, points: BTreeMap<i64, f64>) -> Result<Series> {
    let times: Vec<i64> = points.keys().copied().collect();
    let start = times[0];
    let min_gap = times.windows(2).map(|w| w[1] - w[0]).min();
    let step = match min_gap {
        None => Step::Fixed(7 * DAY),
        Some(g) if (28 * DAY..=31 * DAY).contains(&g) => Step::Month,
        Some(g) => Step::Fixed(g),
    };
    let label = key.as_deref().unwrap_or("(all rows)");
    let index = |t: i64| -> Result<usize> {
        let i = match step {
            Step::Fixed(s) => {
                if (t - start) % s != 0 {
                    return plan_err!(
                        "{name}(): the times of series {label} are not evenly spaced ({} is not a multiple of the smallest gap, {} s, after the first)",
                        t,
                        s / 1_000_000
                    );
                }
                (t - start) / s
            }
            Step::Month => {
                let (m0, off0) = chrono_like::month_index(start);
                let (m, off) = chrono_like::month_index(t);
                if off != off0 {
                    return plan_err!(
                        "{name}(): the times of series {label} are months apart but not on the same day of the month"
                    );
                }
                m - m0
            }
        };
        Ok(i as usize)
    };
    let n = index(*times.last().unwrap())? + 1;
    if n > 1_000_000 {
        return plan_err!("{name}(): series {label} spans {n} periods; at most 1,000,000");
    }
    let mut values = vec![0.0; n];
    for (t, v) in points {
        values[index(t)?] = v;
    }
    Ok(Series {
        key,
        start,
        step,
        values,
    })
}

// ---- the models ---------------------------------------------------------

/// A forecast of one series: points, interval and the method used.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub method: &'static str,
    pub point: Vec<f64>,
    pub lower: Vec<Option<f64>>,
    pub upper: Vec<Option<f64>>,
}

fn with_intervals(method: &'static str, f: augurs_core::Forecast) -> Option<Fitted> {
    let h = f.point.len();
    let (lower, upper) = match f.intervals {
        Some(i) => (
            i.lower.into_iter().map(Some).collect(),
            i.upper.into_iter().map(Some).collect(),
        ),
        None => (vec![None; h], vec![None; h]),
    };
    let finite = f.point.iter().all(|p| p.is_finite());
    finite.then_some(Fitted {
        method,
        point: f.point,
        lower,
        upper,
    })
}

/// Forecasts `y` `horizon` periods ahead with the first method that fits
/// (module docs): MSTL + ETS, ETS, naive.
pub fn fit_series(y: &[f64], seasons: &[usize], horizon: usize, level: f64) -> Fitted {
    let n = y.len();
    let fit_seasons: Vec<usize> = seasons.iter().copied().filter(|&p| n >= 2 * p).collect();
    if !fit_seasons.is_empty() {
        let model = MSTLModel::new(
            fit_seasons,
            AutoETSTrendModel::from(AutoETS::non_seasonal()),
        );
        if let Some(f) = model
            .fit(y)
            .ok()
            .and_then(|m| m.predict(horizon, level).ok())
            .and_then(|f| with_intervals("mstl_ets", f))
        {
            return f;
        }
    }
    if n >= MIN_ETS
        && let Some(f) = AutoETS::non_seasonal()
            .fit(y)
            .ok()
            .and_then(|m| m.predict(horizon, level).ok())
            .and_then(|f| with_intervals("ets", f))
    {
        return f;
    }
    naive(y, horizon, level)
}

/// The last value; the interval of a random walk whose steps have the
/// spread of the series' differences (none from a single point).
fn naive(y: &[f64], horizon: usize, level: f64) -> Fitted {
    let last = y.last().copied().unwrap_or(0.0);
    let diffs: Vec<f64> = y.windows(2).map(|w| w[1] - w[0]).collect();
    let sigma = (!diffs.is_empty())
        .then(|| (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt());
    let z = normal_quantile(0.5 + level / 2.0);
    let band = |k: usize| sigma.map(|s| z * s * (k as f64).sqrt());
    Fitted {
        method: "naive",
        point: vec![last; horizon],
        lower: (1..=horizon).map(|k| band(k).map(|b| last - b)).collect(),
        upper: (1..=horizon).map(|k| band(k).map(|b| last + b)).collect(),
    }
}

fn normal_quantile(p: f64) -> f64 {
    use distrs::Normal;
    Normal::ppf(p, 0.0, 1.0)
}

/// The seasonal-naive forecast (each period repeats the same period of the
/// last season) with the longest season the training data covers once;
/// the naive one (last value) when it covers none.
pub fn seasonal_naive(y: &[f64], seasons: &[usize], horizon: usize) -> (Vec<f64>, String) {
    let n = y.len();
    match seasons.iter().copied().filter(|&m| n >= m).max() {
        Some(m) => (
            (0..horizon).map(|i| y[n - m + i % m]).collect(),
            format!("seasonal_naive({m})"),
        ),
        None => (
            vec![y.last().copied().unwrap_or(0.0); horizon],
            "naive".into(),
        ),
    }
}

/// Mean absolute percentage error, in percent, over the periods whose
/// actual value is not 0 (`None` if there is none).
pub fn mape(actual: &[f64], forecast: &[f64]) -> Option<f64> {
    let errors: Vec<f64> = actual
        .iter()
        .zip(forecast)
        .filter(|(a, _)| **a != 0.0)
        .map(|(a, f)| ((a - f) / a).abs())
        .collect();
    (!errors.is_empty()).then(|| 100.0 * errors.iter().sum::<f64>() / errors.len() as f64)
}

fn forecast_batch(
    schema: &SchemaRef,
    series: &[Series],
    horizon: usize,
    level: f64,
) -> Result<RecordBatch> {
    let mut key = StringBuilder::new();
    let mut time = TimestampMicrosecondBuilder::new();
    let mut step = Int64Builder::new();
    let (mut point, mut lower, mut upper) = (
        Float64Builder::new(),
        Float64Builder::new(),
        Float64Builder::new(),
    );
    let mut method = StringBuilder::new();
    for s in series {
        let f = fit_series(&s.values, s.step.seasons(), horizon, level);
        let last = s.step.add(s.start, s.values.len() as i64 - 1);
        for k in 0..horizon {
            key.append_option(s.key.as_deref());
            time.append_value(s.step.add(last, k as i64 + 1));
            step.append_value(k as i64 + 1);
            point.append_value(f.point[k]);
            lower.append_option(f.lower[k]);
            upper.append_option(f.upper[k]);
            method.append_value(f.method);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(key.finish()),
        Arc::new(time.finish()),
        Arc::new(step.finish()),
        Arc::new(point.finish()),
        Arc::new(lower.finish()),
        Arc::new(upper.finish()),
        Arc::new(method.finish()),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn backtest_batch(schema: &SchemaRef, series: &[Series], holdout: usize) -> Result<RecordBatch> {
    let mut key = StringBuilder::new();
    let mut method = StringBuilder::new();
    let mut training = Int64Builder::new();
    let mut held = Int64Builder::new();
    let mut model_mape = Float64Builder::new();
    let mut naive_mape = Float64Builder::new();
    let mut baseline = StringBuilder::new();
    for s in series {
        let n = s.values.len();
        key.append_option(s.key.as_deref());
        held.append_value(holdout as i64);
        if n <= holdout {
            method.append_value("too_short");
            training.append_value(0);
            model_mape.append_null();
            naive_mape.append_null();
            baseline.append_value("none");
            continue;
        }
        let (train, actual) = s.values.split_at(n - holdout);
        let f = fit_series(train, s.step.seasons(), holdout, DEFAULT_LEVEL);
        let (sn, which) = seasonal_naive(train, s.step.seasons(), holdout);
        method.append_value(f.method);
        training.append_value(train.len() as i64);
        model_mape.append_option(mape(actual, &f.point));
        naive_mape.append_option(mape(actual, &sn));
        baseline.append_value(which);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(key.finish()),
        Arc::new(method.finish()),
        Arc::new(training.finish()),
        Arc::new(held.finish()),
        Arc::new(model_mape.finish()),
        Arc::new(naive_mape.finish()),
        Arc::new(baseline.finish()),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_trend_and_season_are_recovered() {
        let truth = |t: usize| {
            500.0 + 3.0 * t as f64 + 80.0 * (2.0 * std::f64::consts::PI * t as f64 / 52.0).sin()
        };
        let y: Vec<f64> = (0..208).map(truth).collect();
        let f = fit_series(&y, &[52], 8, 0.95);
        assert_eq!(f.method, "mstl_ets");
        for (k, p) in f.point.iter().enumerate() {
            let want = truth(208 + k);
            assert!((p - want).abs() / want < 0.03, "step {k}: {p} vs {want}");
            assert!(f.lower[k].unwrap() <= *p && *p <= f.upper[k].unwrap());
        }
    }

    #[test]
    fn short_series_fall_back() {
        let y: Vec<f64> = (0..30).map(|t| 10.0 + t as f64).collect();
        assert_eq!(fit_series(&y, &[52], 4, 0.95).method, "ets");
        let f = fit_series(&[5.0, 7.0, 6.0], &[52], 2, 0.95);
        assert_eq!(f.method, "naive");
        assert_eq!(f.point, vec![6.0, 6.0]);
        let f = fit_series(&[5.0], &[52], 1, 0.95);
        assert_eq!((f.lower[0], f.upper[0]), (None, None));
    }

    #[test]
    fn seasonal_naive_repeats_the_last_season() {
        let y = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(
            seasonal_naive(&y, &[3], 4),
            (vec![3.0, 4.0, 5.0, 3.0], "seasonal_naive(3)".into())
        );
        assert_eq!(seasonal_naive(&y, &[52], 2).0, vec![5.0, 5.0]);
        // (10% + 20%) / 2; the period whose actual is 0 is left out.
        let m = mape(&[100.0, 0.0, 50.0], &[90.0, 3.0, 60.0]).unwrap();
        assert!((m - 15.0).abs() < 1e-9, "{m}");
        assert_eq!(mape(&[0.0], &[1.0]), None);
    }

    #[test]
    fn months_step_by_the_calendar() {
        let jan31 = chrono_like::days_from_civil(2025, 1, 15) * DAY;
        let c = chrono_like::from_micros(Step::Month.add(jan31, 13));
        assert_eq!((c.y, c.m, c.d), (2026, 2, 15));
    }
}
