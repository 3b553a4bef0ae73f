//! The report's SQL over the `yachay.*` views, and the answers as tables.
//!
//! Every literal in these queries is a date this module formatted itself
//! (`DATE 'YYYY-MM-DD'` from a `NaiveDate`) or a column name the server
//! listed in information_schema and that passed [`is_plain_name`]: no text
//! from the command line reaches the SQL.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, SchemaRef};
use chrono::{Days, NaiveDate};

use super::{Db, Progress, Window};

/// Queries `gather` runs (for the progress count).
pub const STEPS: usize = 9;

/// One query's answer, written as `<file>.csv`.
pub struct Table {
    pub file: &'static str,
    pub sql: String,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    fn column(&self, name: &str, to: &DataType) -> Vec<arrow::array::ArrayRef> {
        let Ok(i) = self.schema.index_of(name) else {
            return Vec::new();
        };
        self.batches
            .iter()
            .map(|b| arrow::compute::cast(b.column(i), to).expect("castable column"))
            .collect()
    }

    /// A column as text (NULL as the empty string).
    pub fn strings(&self, name: &str) -> Vec<String> {
        let mut out = Vec::with_capacity(self.rows());
        for a in self.column(name, &DataType::Utf8) {
            let a = a.as_string::<i32>();
            for i in 0..a.len() {
                out.push(if a.is_null(i) {
                    String::new()
                } else {
                    a.value(i).to_string()
                });
            }
        }
        out
    }

    /// A numeric column as f64 (NULL as None).
    pub fn floats(&self, name: &str) -> Vec<Option<f64>> {
        let mut out = Vec::with_capacity(self.rows());
        for a in self.column(name, &DataType::Float64) {
            let a = a.as_primitive::<Float64Type>();
            for i in 0..a.len() {
                out.push((!a.is_null(i)).then(|| a.value(i)));
            }
        }
        out
    }
}

/// Everything the report shows.
pub struct ReportData {
    /// Units and revenue of the period and the one before.
    pub summary: Table,
    pub channels: Table,
    pub categories: Table,
    pub stores: Table,
    pub campaigns: Table,
    pub low_stock: Table,
    pub forecast: Table,
    pub forecast_history: Table,
    /// The forecast's interval columns, when the view has them.
    pub interval: Option<(String, String)>,
}

impl ReportData {
    pub fn tables(&self) -> Vec<&Table> {
        vec![
            &self.summary,
            &self.channels,
            &self.categories,
            &self.stores,
            &self.campaigns,
            &self.low_stock,
            &self.forecast,
            &self.forecast_history,
        ]
    }
}

fn date(d: NaiveDate) -> String {
    format!("DATE '{}'", d.format("%Y-%m-%d"))
}

/// A column name safe to put in SQL unquoted.
fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Runs `sql` for the step `what`; an error names the step and keeps the
/// engine's message (which names the source that failed).
async fn run(
    db: &mut Db,
    progress: &mut Progress,
    what: &str,
    file: &'static str,
    sql: String,
) -> Result<Table, String> {
    let (schema, batches) = db.query(&sql).await.map_err(|e| {
        format!("the report's query for {what} failed, so no report was written: {e}")
    })?;
    let t = Table {
        file,
        sql,
        schema,
        batches,
    };
    progress.line(&format!(
        "{what}: {} row{}",
        t.rows(),
        if t.rows() == 1 { "" } else { "s" }
    ));
    Ok(t)
}

/// The day of the newest sale (`--date latest`).
pub async fn newest_sale(db: &mut Db) -> Result<NaiveDate, String> {
    let (_, batches) = db
        .query("SELECT CAST(max(day) AS VARCHAR) AS day FROM yachay.sales_daily")
        .await
        .map_err(|e| format!("cannot find the newest sale: {e}"))?;
    let t = Table {
        file: "",
        sql: String::new(),
        schema: batches
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| std::sync::Arc::new(arrow::datatypes::Schema::empty())),
        batches,
    };
    let day = t.strings("day").into_iter().next().unwrap_or_default();
    if day.is_empty() {
        return Err("yachay.sales_daily holds no sales at all: no report written".into());
    }
    NaiveDate::parse_from_str(&day, "%Y-%m-%d")
        .map_err(|e| format!("yachay.sales_daily's newest day {day} is not a date: {e}"))
}

pub async fn gather(
    db: &mut Db,
    w: &Window,
    progress: &mut Progress,
) -> Result<ReportData, String> {
    let (view, col) = w.view();
    let (start, prev) = (date(w.start), date(w.previous));
    let summary = run(
        db,
        progress,
        "period totals",
        "summary",
        format!(
            "SELECT {col}, sum(units) AS units, sum(revenue_usd) AS revenue_usd \
             FROM {view} WHERE {col} IN ({prev}, {start}) GROUP BY {col} ORDER BY {col}"
        ),
    )
    .await?;
    let start_text = w.start.format("%Y-%m-%d").to_string();
    if !summary.strings(col).contains(&start_text) {
        return Err(no_data(db, w).await);
    }
    let channels = run(
        db,
        progress,
        "revenue by channel",
        "revenue_by_channel",
        format!(
            "SELECT {col}, channel, sum(revenue_usd) AS revenue_usd FROM {view} \
             WHERE {col} BETWEEN {} AND {start} GROUP BY {col}, channel ORDER BY {col}, channel",
            date(w.trend_start)
        ),
    )
    .await?;
    let categories = run(
        db,
        progress,
        "top categories",
        "top_categories",
        format!(
            "SELECT coalesce(category, '(unknown)') AS category, sum(units) AS units, \
             sum(revenue_usd) AS revenue_usd FROM {view} WHERE {col} = {start} \
             GROUP BY coalesce(category, '(unknown)') ORDER BY revenue_usd DESC, category"
        ),
    )
    .await?;
    let stores = run(
        db,
        progress,
        "store ranking",
        "store_ranking",
        format!(
            "SELECT store, sum(units) AS units, sum(revenue_usd) AS revenue_usd FROM {view} \
             WHERE {col} = {start} AND channel = 'store' GROUP BY store \
             ORDER BY revenue_usd DESC, store"
        ),
    )
    .await?;
    let campaigns = run(
        db,
        progress,
        "campaign return on spend",
        "campaign_return",
        format!(
            "SELECT campaign_id, name, channel, start_date, end_date, spend_usd, \
             online_revenue_usd, store_revenue_usd, return_on_spend \
             FROM yachay.marketing_effectiveness \
             WHERE start_date < {} AND end_date >= {} \
             ORDER BY return_on_spend DESC NULLS LAST, campaign_id",
            date(w.end),
            date(w.campaigns_since())
        ),
    )
    .await?;
    let low_stock = run(
        db,
        progress,
        "low-stock list",
        "low_stock",
        "SELECT sku, name, category, available, reorder_point, \
         reorder_point - available AS shortfall, locations_at_or_below_reorder \
         FROM yachay.inventory_live WHERE low_stock_alert \
         ORDER BY shortfall DESC, sku"
            .to_string(),
    )
    .await?;
    // The forecast's interval columns exist once the view has them
    // (lower / upper bounds); without them only the line is drawn.
    let columns = run(
        db,
        progress,
        "forecast columns",
        "",
        "SELECT column_name FROM information_schema.columns \
         WHERE table_schema = 'yachay' AND table_name = 'sales_forecast' \
         ORDER BY ordinal_position"
            .to_string(),
    )
    .await?
    .strings("column_name");
    if columns.is_empty() {
        return Err(
            "the view yachay.sales_forecast does not exist: create the yachay views \
             (quipu sql -f examples/yachay/views.sql); no report was written"
                .into(),
        );
    }
    let interval = interval_columns(&columns);
    let extra = match &interval {
        Some((lo, hi)) => format!(", {lo}, {hi}"),
        None => String::new(),
    };
    let forecast = run(
        db,
        progress,
        "forecast",
        "forecast",
        format!(
            "SELECT category, week, weeks_ahead, forecast_revenue_usd{extra} \
             FROM yachay.sales_forecast ORDER BY category, week"
        ),
    )
    .await?;
    // History for the forecast chart: the twelve complete weeks before the
    // week the forecast starts from (its first week, less one).
    let first = forecast
        .strings("week")
        .into_iter()
        .filter_map(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
        .min()
        .unwrap_or(w.start);
    let current = first - Days::new(7);
    let forecast_history = run(
        db,
        progress,
        "forecast history",
        "forecast_history",
        format!(
            "SELECT category, week, sum(revenue_usd) AS revenue_usd FROM yachay.sales_weekly \
             WHERE category IS NOT NULL AND week >= {} AND week < {} \
             GROUP BY category, week ORDER BY category, week",
            date(current - Days::new(7 * 12)),
            date(current)
        ),
    )
    .await?;
    Ok(ReportData {
        summary,
        channels,
        categories,
        stores,
        campaigns,
        low_stock,
        forecast,
        forecast_history,
        interval,
    })
}

/// The lower and upper bound columns among the forecast view's columns:
/// `lower`/`upper`, or names holding those words (`lower_usd`,
/// `forecast_upper_usd`, ...).
pub fn interval_columns(columns: &[String]) -> Option<(String, String)> {
    let find = |word: &str| {
        columns
            .iter()
            .find(|c| c.eq_ignore_ascii_case(word))
            .or_else(|| columns.iter().find(|c| c.to_lowercase().contains(word)))
            .filter(|c| is_plain_name(c))
            .cloned()
    };
    Some((find("lower")?, find("upper")?))
}

/// The error of a period without sales, with the days the view does hold.
async fn no_data(db: &mut Db, w: &Window) -> String {
    let (view, col) = w.view();
    let held = db
        .query(&format!(
            "SELECT CAST(min({col}) AS VARCHAR) AS first, CAST(max({col}) AS VARCHAR) AS last FROM {view}"
        ))
        .await
        .ok()
        .map(|(schema, batches)| {
            let t = Table {
                file: "",
                sql: String::new(),
                schema,
                batches,
            };
            let (first, last) = (t.strings("first"), t.strings("last"));
            match (first.first(), last.first()) {
                (Some(f), Some(l)) if !f.is_empty() => format!("{view} holds {col}s {f} to {l}"),
                _ => format!("{view} holds no sales at all"),
            }
        })
        .unwrap_or_default();
    format!(
        "no sales in {} ({col} {}): {held}; no report written",
        w.describe(),
        w.start,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_columns_are_found_or_not() {
        let cols = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            interval_columns(&cols(&["category", "week", "forecast_revenue_usd"])),
            None
        );
        assert_eq!(
            interval_columns(&cols(&[
                "category",
                "forecast_revenue_usd",
                "lower",
                "upper"
            ])),
            Some(("lower".into(), "upper".into()))
        );
        assert_eq!(
            interval_columns(&cols(&["lower_revenue_usd", "upper_revenue_usd"])),
            Some(("lower_revenue_usd".into(), "upper_revenue_usd".into()))
        );
        assert_eq!(interval_columns(&cols(&["lower"])), None);
        assert_eq!(interval_columns(&cols(&["lower", "upper bound"])), None);
    }
}
