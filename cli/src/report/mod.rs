//! `quipu report daily|weekly|monthly`: a self-contained HTML report (charts
//! as inline SVG drawn by plotters) and the CSV table behind each chart,
//! from the `yachay.*` views, run on this machine's catalog or on a server.
//!
//! The report is built in a hidden folder of `--out` and renamed into place
//! only when every query has answered and every file is written, so a
//! failed run (a source down, a period without sales) leaves no report.

mod charts;
mod html;
mod queries;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{Datelike, Days, Months, NaiveDate};
use futures::TryStreamExt;
use quipu_scheduler::{ClientSession, Engine};

use crate::args::{ReportArgs, ReportPeriod};
use crate::output::error_message;

pub use queries::Table;

/// Where the report's queries run.
pub enum Db {
    /// This process's engine on the catalog in --data-dir.
    Local(ClientSession, PathBuf),
    /// A server's Flight SQL front door (--server), and its address.
    Remote(Box<crate::remote::Remote>, String),
}

impl Db {
    /// One SELECT's schema and rows.
    async fn query(&mut self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
        match self {
            Db::Local(client, _) => {
                let mut statements = client.parse(sql).map_err(|e| error_message(&e))?;
                if statements.len() != 1 {
                    return Err(format!("expected one statement, got {}", statements.len()));
                }
                let out = client
                    .run(statements.remove(0))
                    .await
                    .map_err(|e| error_message(&e))?;
                let schema = out.schema.clone();
                let batches: Vec<RecordBatch> = out
                    .stream
                    .try_collect()
                    .await
                    .map_err(|e| error_message(&e))?;
                Ok((schema, batches))
            }
            Db::Remote(remote, _) => remote.query(sql).await,
        }
    }

    /// Where the data came from, for the report's header.
    fn origin(&self) -> String {
        match self {
            Db::Local(_, dir) => format!("the catalog in {}", dir.display()),
            Db::Remote(_, url) => format!("the server {url}"),
        }
    }
}

/// `quipu report` on the catalog in `data_dir`.
pub fn run_local(
    runtime: &tokio::runtime::Runtime,
    data_dir: &Path,
    args: ReportArgs,
) -> Result<(), String> {
    let session = quipu_connectors::QuipuSession::open(data_dir).map_err(|e| error_message(&e))?;
    let engine = Engine::new(session);
    let db = Db::Local(engine.client(), data_dir.to_path_buf());
    let result = runtime.block_on(run(db, args));
    runtime.block_on(engine.session().close());
    result
}

/// The days a report covers and the trend window its time chart shows.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub period: ReportPeriod,
    /// First day of the period.
    pub start: NaiveDate,
    /// First day after it.
    pub end: NaiveDate,
    /// First period of the trend chart (the report's period is the last).
    pub trend_start: NaiveDate,
    /// The period before this one (for the change in revenue).
    pub previous: NaiveDate,
}

impl Window {
    /// The period of `period` that holds `day`.
    pub fn holding(period: ReportPeriod, day: NaiveDate) -> Window {
        match period {
            ReportPeriod::Daily => Window {
                period,
                start: day,
                end: day + Days::new(1),
                trend_start: day - Days::new(29),
                previous: day - Days::new(1),
            },
            ReportPeriod::Weekly => {
                // Monday, as date_trunc('week', ..) in the views.
                let start = day - Days::new(day.weekday().num_days_from_monday().into());
                Window {
                    period,
                    start,
                    end: start + Days::new(7),
                    trend_start: start - Days::new(7 * 11),
                    previous: start - Days::new(7),
                }
            }
            ReportPeriod::Monthly => {
                let start = day.with_day(1).expect("day 1 exists");
                Window {
                    period,
                    start,
                    end: start + Months::new(1),
                    trend_start: start - Months::new(11),
                    previous: start - Months::new(1),
                }
            }
        }
    }

    /// The last complete period before `today`.
    pub fn last_complete(period: ReportPeriod, today: NaiveDate) -> Window {
        let day = match period {
            ReportPeriod::Daily => today - Days::new(1),
            ReportPeriod::Weekly => today - Days::new(7),
            ReportPeriod::Monthly => today.with_day(1).expect("day 1 exists") - Days::new(1),
        };
        Window::holding(period, day)
    }

    /// Campaigns shown are those running at some point in the year up to
    /// the period's end (campaigns are few and weeks long: a 30-day window
    /// would often hold none).
    pub fn campaigns_since(&self) -> NaiveDate {
        self.end - Days::new(365)
    }

    /// `daily`, `weekly`, `monthly`.
    pub fn kind(&self) -> &'static str {
        match self.period {
            ReportPeriod::Daily => "daily",
            ReportPeriod::Weekly => "weekly",
            ReportPeriod::Monthly => "monthly",
        }
    }

    /// The view with one row per period, channel, store and category, and
    /// its period column.
    pub fn view(&self) -> (&'static str, &'static str) {
        match self.period {
            ReportPeriod::Daily => ("yachay.sales_daily", "day"),
            ReportPeriod::Weekly => ("yachay.sales_weekly", "week"),
            ReportPeriod::Monthly => ("yachay.sales_monthly", "month"),
        }
    }

    /// The report folder's name: daily-2026-10-31, weekly-2026-10-26
    /// (the Monday), monthly-2026-10.
    pub fn folder(&self) -> String {
        match self.period {
            ReportPeriod::Monthly => format!("monthly-{}", self.start.format("%Y-%m")),
            _ => format!("{}-{}", self.kind(), self.start),
        }
    }

    /// The period in words: "Saturday 31 October 2026", "week of Monday 26
    /// October 2026", "October 2026".
    pub fn describe(&self) -> String {
        match self.period {
            ReportPeriod::Daily => self.start.format("%A %-d %B %Y").to_string(),
            ReportPeriod::Weekly => format!(
                "the week of {} to {}",
                self.start.format("%A %-d %B %Y"),
                (self.end - Days::new(1)).format("%A %-d %B %Y")
            ),
            ReportPeriod::Monthly => self.start.format("%B %Y").to_string(),
        }
    }
}

/// Parses `--date`: YYYY-MM-DD or `latest` (None).
fn parse_date(text: &str) -> Result<Option<NaiveDate>, String> {
    if text.eq_ignore_ascii_case("latest") {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(Some)
        .map_err(|e| format!("--date {text}: not a date ({e}); use YYYY-MM-DD or latest"))
}

/// Progress lines on stderr: `[3/9] store ranking: 12 rows in 0.4 s`.
pub struct Progress {
    quiet: bool,
    step: usize,
    steps: usize,
    started: Instant,
}

impl Progress {
    fn new(quiet: bool, steps: usize) -> Progress {
        Progress {
            quiet,
            step: 0,
            steps,
            started: Instant::now(),
        }
    }

    fn line(&mut self, what: &str) {
        if self.quiet {
            return;
        }
        self.step += 1;
        eprintln!(
            "[{}/{}] {what} ({:.1} s)",
            self.step,
            self.steps,
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// Builds the report and prints the path of its index.html.
pub async fn run(mut db: Db, args: ReportArgs) -> Result<(), String> {
    let date = match &args.date {
        Some(text) => parse_date(text)?,
        None => Some(chrono::Utc::now().date_naive()),
    };
    // Refuse an unusable --out before any query runs.
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("--out {}: cannot create it: {e}", args.out.display()))?;
    if !args.out.is_dir() {
        return Err(format!("--out {} is not a folder", args.out.display()));
    }
    let mut progress = Progress::new(args.quiet, queries::STEPS + 1);
    if !args.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "quipu report {}: querying {}",
            kind_name(args.period),
            db.origin()
        );
    }
    let window = match (args.date.is_some(), date) {
        (false, Some(today)) => Window::last_complete(args.period, today),
        (true, Some(day)) => Window::holding(args.period, day),
        (_, None) => {
            let day = queries::newest_sale(&mut db).await?;
            Window::holding(args.period, day)
        }
    };
    let data = queries::gather(&mut db, &window, &mut progress).await?;
    let page = html::render(&window, &data, &db.origin())?;
    let path = write_atomically(&args.out, &window.folder(), &page, &data.tables())?;
    progress.line(&format!("wrote {}", path.display()));
    println!("{}", path.join("index.html").display());
    Ok(())
}

fn kind_name(p: ReportPeriod) -> &'static str {
    match p {
        ReportPeriod::Daily => "daily",
        ReportPeriod::Weekly => "weekly",
        ReportPeriod::Monthly => "monthly",
    }
}

/// Writes `index.html` and the CSVs to a hidden `.NAME.partial-PID` folder
/// of `out`, then renames it to `out/NAME` (replacing an earlier report of
/// the same period). Readers see the old report or the new one, never a
/// part of one.
fn write_atomically(
    out: &Path,
    name: &str,
    page: &str,
    tables: &[&Table],
) -> Result<PathBuf, String> {
    let pid = std::process::id();
    // A run killed before its rename leaves its hidden folder behind; the
    // next run of the same report clears it.
    if let Ok(entries) = std::fs::read_dir(out) {
        let prefix = format!(".{name}.");
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let tmp = out.join(format!(".{name}.partial-{pid}"));
    let write = || -> Result<(), String> {
        std::fs::create_dir(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        for t in tables {
            let path = tmp.join(format!("{}.csv", t.file));
            let file = std::fs::File::create(&path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(std::io::BufWriter::new(file));
            if t.batches.is_empty() {
                w.write(&RecordBatch::new_empty(t.schema.clone()))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            for b in &t.batches {
                w.write(b)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            let mut inner = w.into_inner();
            std::io::Write::flush(&mut inner)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        let index = tmp.join("index.html");
        std::fs::write(&index, page).map_err(|e| format!("cannot write {}: {e}", index.display()))
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let target = out.join(name);
    let old = out.join(format!(".{name}.old-{pid}"));
    let had_old = target.exists();
    if had_old {
        std::fs::rename(&target, &old).map_err(|e| {
            let _ = std::fs::remove_dir_all(&tmp);
            format!("cannot move the earlier {} aside: {e}", target.display())
        })?;
    }
    if let Err(e) = std::fs::rename(&tmp, &target) {
        let _ = std::fs::remove_dir_all(&tmp);
        if had_old {
            let _ = std::fs::rename(&old, &target);
        }
        return Err(format!(
            "cannot rename the report to {}: {e}",
            target.display()
        ));
    }
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn periods_hold_the_date() {
        let w = Window::holding(ReportPeriod::Weekly, d("2026-11-01"));
        assert_eq!((w.start, w.end), (d("2026-10-26"), d("2026-11-02")));
        assert_eq!(w.trend_start, d("2026-08-10"));
        let m = Window::holding(ReportPeriod::Monthly, d("2026-03-31"));
        assert_eq!((m.start, m.end), (d("2026-03-01"), d("2026-04-01")));
        assert_eq!(
            (m.trend_start, m.previous),
            (d("2025-04-01"), d("2026-02-01"))
        );
        assert_eq!(m.folder(), "monthly-2026-03");
        let day = Window::last_complete(ReportPeriod::Daily, d("2026-03-01"));
        assert_eq!(day.start, d("2026-02-28"));
        let month = Window::last_complete(ReportPeriod::Monthly, d("2026-03-01"));
        assert_eq!(month.start, d("2026-02-01"));
        let week = Window::last_complete(ReportPeriod::Weekly, d("2026-11-30"));
        assert_eq!(week.start, d("2026-11-23"));
    }

    #[test]
    fn dates_are_checked() {
        assert_eq!(parse_date("latest").unwrap(), None);
        assert_eq!(parse_date("2026-10-31").unwrap(), Some(d("2026-10-31")));
        let e = parse_date("2026-02-30").unwrap_err();
        assert!(e.starts_with("--date 2026-02-30: not a date"), "{e}");
    }
}
