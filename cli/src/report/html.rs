//! The report page: one HTML file with its style and charts inline, so it
//! opens anywhere (a mail attachment, a file share) without fetching
//! anything. Links point only at the CSV files beside it.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{Days, Months, NaiveDate};

use super::Window;
use super::charts::{self, Bars, PALETTE, Panel};
use super::queries::{ReportData, Table};
use crate::args::ReportPeriod;

/// The charts, in page order: (section id, title). Tests look for these.
pub const CHARTS: [(&str, &str); 6] = [
    ("revenue-by-channel", "Revenue by channel"),
    ("top-categories", "Top categories"),
    ("store-ranking", "Store ranking"),
    ("campaign-return", "Campaign return on spend"),
    ("low-stock", "Low stock"),
    ("forecast", "Revenue forecast"),
];

/// Bars drawn at most; the CSV holds every row.
const MAX_BARS: usize = 15;
/// Low-stock rows listed in the page's table.
const MAX_TABLE_ROWS: usize = 25;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// $12,345.67
fn dollars(v: f64) -> String {
    let cents = (v.abs() * 100.0).round() as u128;
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!(
        "{}${grouped}.{:02}",
        if v < 0.0 { "-" } else { "" },
        cents % 100
    )
}

fn count(v: f64) -> String {
    let s = format!("{}", v.round() as i64);
    let mut out = String::new();
    let digits = s.trim_start_matches('-');
    if s.starts_with('-') {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn times(v: f64) -> String {
    if v.abs() >= 10.0 {
        format!("{v:.0}×")
    } else {
        format!("{v:.2}×")
    }
}

/// The period starts from the trend's first to the report's period.
fn periods(w: &Window) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut d = w.trend_start;
    while d <= w.start {
        out.push(d);
        d = match w.period {
            ReportPeriod::Daily => d + Days::new(1),
            ReportPeriod::Weekly => d + Days::new(7),
            ReportPeriod::Monthly => d + Months::new(1),
        };
    }
    out
}

fn section(out: &mut String, index: usize, note: &str, svg: &str, tables: &[&Table], extra: &str) {
    let (id, title) = CHARTS[index];
    let _ = write!(
        out,
        "<section id=\"{id}\">\n<h2>{}</h2>\n<p class=\"note\">{note}</p>\n<figure>{svg}</figure>\n{extra}",
        escape(title)
    );
    out.push_str("<p class=\"data\">Data:");
    for t in tables {
        let _ = write!(
            out,
            " <a href=\"{0}.csv\">{0}.csv</a> ({1} row{2})",
            t.file,
            t.rows(),
            if t.rows() == 1 { "" } else { "s" }
        );
    }
    out.push_str("</p>\n<details><summary>SQL</summary>");
    for t in tables {
        let _ = write!(out, "<pre>{}</pre>", escape(&t.sql));
    }
    out.push_str("</details>\n</section>\n");
}

pub fn render(w: &Window, d: &ReportData, origin: &str) -> Result<String, String> {
    let (view, col) = w.view();
    let generated = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let start = w.start.format("%Y-%m-%d").to_string();
    let mut body = String::new();

    // Headline figures.
    let days = d.summary.strings(col);
    let revenue = d.summary.floats("revenue_usd");
    let units = d.summary.floats("units");
    let this = days.iter().position(|s| *s == start);
    let prev = days.iter().position(|s| *s != start);
    let rev = this.and_then(|i| revenue[i]).unwrap_or(0.0);
    let change = prev
        .and_then(|i| revenue[i])
        .filter(|p| *p > 0.0)
        .map(|p| format!("{:+.1}% on the period before", (rev / p - 1.0) * 100.0))
        .unwrap_or_else(|| "no sales the period before".into());
    let top_category = d.categories.strings("category").into_iter().next();
    let _ = write!(
        body,
        "<div class=\"tiles\">\
         <div class=\"tile\"><span>Revenue</span><b>{}</b><small>{}</small></div>\
         <div class=\"tile\"><span>Units sold</span><b>{}</b><small>all channels</small></div>\
         <div class=\"tile\"><span>Top category</span><b>{}</b><small>by revenue</small></div>\
         <div class=\"tile\"><span>Low-stock SKUs</span><b>{}</b><small>now, all locations</small></div>\
         </div>",
        dollars(rev),
        escape(&change),
        count(this.and_then(|i| units[i]).unwrap_or(0.0)),
        escape(top_category.as_deref().unwrap_or("none")),
        count(d.low_stock.rows() as f64),
    );
    body.push('\n');

    // 1. Revenue by channel over the trend window.
    let starts = periods(w);
    let label = |p: &NaiveDate| match w.period {
        ReportPeriod::Monthly => p.format("%Y-%m").to_string(),
        _ => p.format("%m-%d").to_string(),
    };
    let index: BTreeMap<String, usize> = starts
        .iter()
        .enumerate()
        .map(|(i, p)| (p.format("%Y-%m-%d").to_string(), i))
        .collect();
    let mut by_channel: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for ((p, channel), v) in d
        .channels
        .strings(col)
        .into_iter()
        .zip(d.channels.strings("channel"))
        .zip(d.channels.floats("revenue_usd"))
    {
        if let Some(&i) = index.get(&p) {
            by_channel
                .entry(channel)
                .or_insert_with(|| vec![None; starts.len()])[i] = v;
        }
    }
    let series: Vec<(String, Vec<Option<f64>>)> = by_channel.into_iter().collect();
    let svg = charts::lines(
        CHARTS[0].1,
        &starts.iter().map(label).collect::<Vec<_>>(),
        &series,
    )?;
    let unit = match w.period {
        ReportPeriod::Daily => "day",
        ReportPeriod::Weekly => "week (from Monday)",
        ReportPeriod::Monthly => "month",
    };
    section(
        &mut body,
        0,
        &format!(
            "Revenue per {unit} and channel from {} to the report's period ({view}).",
            w.trend_start
        ),
        &svg,
        &[&d.summary, &d.channels],
        "",
    );

    // 2. Categories.
    let (_, svg) = revenue_bars(
        &d.categories,
        "category",
        1,
        "No sales with a category in this period",
        PALETTE[0],
    )?;
    section(
        &mut body,
        1,
        "Revenue by product category in the period, all channels.",
        &svg,
        &[&d.categories],
        "",
    );

    // 3. Stores.
    let (stores, svg) = revenue_bars(
        &d.stores,
        "store",
        2,
        "No store sales in this period",
        PALETTE[4],
    )?;
    section(
        &mut body,
        2,
        &format!(
            "Stores by revenue at the till in the period{}.",
            if stores.len() > MAX_BARS {
                format!(
                    " (the best {MAX_BARS} of {}; the CSV has them all)",
                    stores.len()
                )
            } else {
                String::new()
            }
        ),
        &svg,
        &[&d.stores],
        "",
    );

    // 4. Campaigns.
    let campaign_labels: Vec<String> = d
        .campaigns
        .strings("name")
        .into_iter()
        .zip(d.campaigns.strings("channel"))
        .map(|(n, c)| format!("{n} ({c})"))
        .collect();
    let svg = if campaign_labels.is_empty() {
        charts::empty(
            CHARTS[3].1,
            &format!(
                "No campaign ran between {} and {}",
                w.campaigns_since(),
                w.end - Days::new(1)
            ),
        )?
    } else {
        charts::bars(Bars {
            title: CHARTS[3].1,
            labels: campaign_labels.iter().take(MAX_BARS).cloned().collect(),
            values: values(&d.campaigns, "return_on_spend", MAX_BARS),
            format: times,
            color: PALETTE[6],
            legend: None,
            behind: None,
            reference: Some((1.0, "break-even (1×)")),
        })?
    };
    section(
        &mut body,
        3,
        &format!(
            "Campaigns running at some point from {} to the end of the period, by revenue \
             (online orders with the campaign's tag, and store purchases of contacted \
             customers) per dollar spent, over each campaign's whole run \
             (yachay.marketing_effectiveness).",
            w.campaigns_since()
        ),
        &svg,
        &[&d.campaigns],
        "",
    );

    // 5. Low stock.
    let skus = d.low_stock.strings("sku");
    let svg = if skus.is_empty() {
        charts::empty(CHARTS[4].1, "No SKU is at or below its reorder point")?
    } else {
        let labels: Vec<String> = skus
            .iter()
            .zip(d.low_stock.strings("name"))
            .take(MAX_BARS)
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        charts::bars(Bars {
            title: CHARTS[4].1,
            labels,
            values: values(&d.low_stock, "available", MAX_BARS),
            format: count,
            color: PALETTE[2],
            legend: Some(("available", "reorder point")),
            behind: Some(values(&d.low_stock, "reorder_point", MAX_BARS)),
            reference: None,
        })?
    };
    let mut table = String::new();
    if !skus.is_empty() {
        table.push_str(
            "<table><thead><tr><th>SKU</th><th>Product</th><th>Category</th>\
             <th>Available</th><th>Reorder point</th><th>Short by</th>\
             <th>Locations at or below</th></tr></thead><tbody>\n",
        );
        let cols = [
            d.low_stock.strings("sku"),
            d.low_stock.strings("name"),
            d.low_stock.strings("category"),
            d.low_stock.strings("available"),
            d.low_stock.strings("reorder_point"),
            d.low_stock.strings("shortfall"),
            d.low_stock.strings("locations_at_or_below_reorder"),
        ];
        for r in 0..skus.len().min(MAX_TABLE_ROWS) {
            table.push_str("<tr>");
            for (c, col) in cols.iter().enumerate() {
                let class = if c >= 3 { " class=\"n\"" } else { "" };
                let _ = write!(table, "<td{class}>{}</td>", escape(&col[r]));
            }
            table.push_str("</tr>\n");
        }
        table.push_str("</tbody></table>\n");
        if skus.len() > MAX_TABLE_ROWS {
            let _ = writeln!(
                table,
                "<p class=\"note\">{} more in low_stock.csv.</p>",
                skus.len() - MAX_TABLE_ROWS
            );
        }
    }
    section(
        &mut body,
        4,
        &format!(
            "SKUs whose stock available everywhere is at or below the sum of their \
             locations' reorder points, read from the inventory system when the report \
             ran (yachay.inventory_live): {} SKU{}, the most short first.",
            skus.len(),
            if skus.len() == 1 { "" } else { "s" }
        ),
        &svg,
        &[&d.low_stock],
        &table,
    );

    // 6. Forecast.
    let panels = forecast_panels(d);
    let svg = if panels.is_empty() {
        charts::empty(CHARTS[5].1, "yachay.sales_forecast gave no rows")?
    } else {
        charts::forecast(CHARTS[5].1, &panels)?
    };
    let interval_note = match &d.interval {
        Some((lo, hi)) => format!(
            " The shaded band is the prediction interval ({} to {}).",
            escape(lo),
            escape(hi)
        ),
        None => " The view gives no prediction interval, so only the line is drawn.".into(),
    };
    section(
        &mut body,
        5,
        &format!(
            "Weekly revenue per category over the last twelve complete weeks (yachay.sales_weekly) \
             and the forecast of yachay.sales_forecast, which starts after the newest data \
             whatever the report's date.{interval_note}"
        ),
        &svg,
        &[&d.forecast, &d.forecast_history],
        "",
    );

    let title = format!("Yachay-Shop {} report: {}", w.kind(), escape(&w.describe()));
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n<h1>{title}</h1>\n\
         <p class=\"meta\">Generated {generated} by <code>quipu report</code> from {} \
         (the yachay.* views over the CRM, POS, inventory and the lake).</p>\n</header>\n\
         <main>\n{body}</main>\n</body>\n</html>\n",
        escape(origin)
    ))
}

/// The first `n` values of a column (NULL as 0).
/// Chart `CHARTS[chart]`: the revenue of the first [`MAX_BARS`] rows of
/// `t` as bars labelled by column `label`, or `empty` said when it has no
/// row; and all of the labels.
fn revenue_bars(
    t: &Table,
    label: &str,
    chart: usize,
    empty: &str,
    color: plotters::style::RGBColor,
) -> Result<(Vec<String>, String), String> {
    let labels = t.strings(label);
    let svg = if labels.is_empty() {
        charts::empty(CHARTS[chart].1, empty)?
    } else {
        charts::bars(Bars {
            title: CHARTS[chart].1,
            labels: labels.iter().take(MAX_BARS).cloned().collect(),
            values: values(t, "revenue_usd", MAX_BARS),
            format: charts::money,
            color,
            legend: None,
            behind: None,
            reference: None,
        })?
    };
    Ok((labels, svg))
}

fn values(t: &Table, col: &str, n: usize) -> Vec<f64> {
    t.floats(col)
        .into_iter()
        .take(n)
        .map(|v| v.unwrap_or(0.0))
        .collect()
}

fn forecast_panels(d: &ReportData) -> Vec<Panel> {
    let mut panels: BTreeMap<String, Panel> = BTreeMap::new();
    let f = &d.forecast;
    let (lo, hi) = match &d.interval {
        Some((lo, hi)) => (f.floats(lo), f.floats(hi)),
        None => (Vec::new(), Vec::new()),
    };
    for (i, ((category, week), v)) in f
        .strings("category")
        .into_iter()
        .zip(f.strings("week"))
        .zip(f.floats("forecast_revenue_usd"))
        .enumerate()
    {
        let interval = match (lo.get(i).copied().flatten(), hi.get(i).copied().flatten()) {
            (Some(l), Some(h)) => Some((l, h)),
            _ => None,
        };
        if let Some(week) = day(&week) {
            panel(&mut panels, &category)
                .forecast
                .push((week, v.unwrap_or(0.0), interval));
        }
    }
    let h = &d.forecast_history;
    for ((category, week), v) in h
        .strings("category")
        .into_iter()
        .zip(h.strings("week"))
        .zip(h.floats("revenue_usd"))
    {
        if let (Some(p), Some(week)) = (panels.get_mut(&category), day(&week)) {
            p.history.push((week, v.unwrap_or(0.0)));
        }
    }
    panels.into_values().collect()
}

fn day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn panel<'a>(panels: &'a mut BTreeMap<String, Panel>, category: &str) -> &'a mut Panel {
    panels.entry(category.to_string()).or_insert_with(|| Panel {
        name: category.to_string(),
        history: Vec::new(),
        forecast: Vec::new(),
    })
}

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #222;
       margin: 0; background: #f6f6f4; }
header { background: #2b3a4a; color: #fff; padding: 20px 32px; }
header h1 { margin: 0 0 6px; font-size: 24px; font-weight: 600; }
header .meta { margin: 0; color: #cdd6df; font-size: 13px; }
header code { color: #fff; }
main { max-width: 1000px; margin: 0 auto; padding: 16px 24px 48px; }
.tiles { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: 8px 0 16px; }
.tile { background: #fff; border-radius: 6px; padding: 12px 16px; box-shadow: 0 1px 2px #0002; }
.tile span { display: block; font-size: 13px; color: #666; }
.tile b { display: block; font-size: 22px; margin: 4px 0; overflow-wrap: anywhere; }
.tile small { color: #777; }
section { background: #fff; border-radius: 6px; padding: 12px 20px 16px; margin: 16px 0;
          box-shadow: 0 1px 2px #0002; }
section h2 { font-size: 19px; margin: 6px 0 4px; }
figure { margin: 8px 0; }
figure svg { width: 100%; height: auto; display: block; }
.note { color: #555; font-size: 14px; margin: 4px 0; }
.data { font-size: 13px; color: #555; margin: 6px 0 0; }
details { font-size: 12px; color: #555; }
pre { white-space: pre-wrap; background: #f3f3f3; padding: 6px 8px; border-radius: 4px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e4e4e4; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
@media (max-width: 700px) { .tiles { grid-template-columns: repeat(2, 1fr); } }
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(dollars(1234567.891), "$1,234,567.89");
        assert_eq!(dollars(-5.5), "-$5.50");
        assert_eq!(count(1234.0), "1,234");
        assert_eq!(count(-1234.0), "-1,234");
        assert_eq!(
            escape("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
