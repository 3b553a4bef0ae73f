//! `quipu report`: on the harness's generated Yachay-Shop data, every CSV
//! of the report equals the same question asked of the views through
//! `quipu sql` (and the store ranking equals PostgreSQL's own sum), the
//! page holds one titled <svg> per chart and nothing external, the report
//! through a server equals the local one, a day without sales and a source
//! that is down fail with one sentence and leave no report behind.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::quipu;
use crate::servers::yachay;

/// The charts, as `quipu report` titles them (cli/src/report/html.rs).
const CHARTS: [(&str, &str); 6] = [
    ("revenue-by-channel", "Revenue by channel"),
    ("top-categories", "Top categories"),
    ("store-ranking", "Store ranking"),
    ("campaign-return", "Campaign return on spend"),
    ("low-stock", "Low stock"),
    ("forecast", "Revenue forecast"),
];

/// The generator's data is "as of" this day.
const DAY: &str = "2026-10-31";

/// One CSV line's fields (quoted fields may hold commas and quotes).
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// A CSV's header and rows.
fn csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = fields(lines.next().unwrap_or_default());
    (header, lines.map(fields).collect())
}

/// Rows keyed by their first `key` fields.
fn keyed(rows: &[Vec<String>], key: usize) -> BTreeMap<Vec<String>, Vec<String>> {
    rows.iter()
        .map(|r| (r[..key].to_vec(), r[key..].to_vec()))
        .collect()
}

/// Two fields are the same value: equal text, or numbers equal to 1e-9
/// relative (a ratio of double sums may differ in its last bits with the
/// order the engine added them in).
fn same_value(a: &str, b: &str) -> bool {
    a == b
        || match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => false,
        }
}

/// The same rows (keyed by their first `key` fields), values compared by
/// [`same_value`].
fn assert_same_rows(got: &[Vec<String>], want: &[Vec<String>], key: usize, what: &str) {
    let (got, want) = (keyed(got, key), keyed(want, key));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (k, g) in &got {
        let w = &want[k];
        assert!(
            g.len() == w.len() && g.iter().zip(w).all(|(a, b)| same_value(a, b)),
            "{what}: {k:?} has {g:?}, expected {w:?}"
        );
    }
}

fn sql_csv(dir: &Path, sql: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let run = quipu(dir, &["sql", "--format", "csv", sql], &[]);
    assert_eq!(run.code, 0, "{sql}: {}", run.stderr);
    csv(&run.stdout)
}

/// The report's `file` equals `sql`'s answer (same columns, same rows keyed
/// by the first `key` columns); returns the report's rows.
fn same_as_views(
    report: &Path,
    file: &str,
    key: usize,
    catalog: &Path,
    sql: &str,
) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(report.join(file)).unwrap();
    let (header, rows) = csv(&text);
    let (want_header, want) = sql_csv(catalog, sql);
    assert_eq!(header, want_header, "{file}");
    assert_same_rows(&rows, &want, key, &format!("{file} against {sql}"));
    assert_eq!(rows.len(), want.len(), "{file}: duplicate keys?");
    rows
}

fn run_report(catalog: &Path, out: &Path, args: &[&str]) -> crate::common::Run {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    all.extend(["--out", out.to_str().unwrap()]);
    quipu(catalog, &all, &[])
}

/// Names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn report_numbers_equal_the_views_and_the_page_stands_alone() {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    let cat = dir.path();
    let out = tempfile::tempdir().unwrap();
    let run = run_report(cat, out.path(), &["daily", "--date", DAY]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = out.path().join(format!("daily-{DAY}"));
    assert_eq!(
        run.stdout.trim(),
        report.join("index.html").display().to_string()
    );
    // Progress: one line per step, then where it went.
    assert!(
        run.stderr.contains("[1/10] period totals"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("[10/10] wrote"), "{}", run.stderr);
    // Nothing but the report folder in --out (the temporary one is gone).
    assert_eq!(entries(out.path()), vec![format!("daily-{DAY}")]);

    // Every table equals the views' answer to the same question.
    let summary = same_as_views(
        &report,
        "summary.csv",
        1,
        cat,
        "SELECT day, sum(units) AS units, sum(revenue_usd) AS revenue_usd FROM yachay.sales_daily \
         WHERE day IN (DATE '2026-10-30', DATE '2026-10-31') GROUP BY day",
    );
    assert_eq!(summary.len(), 2);
    let channels = same_as_views(
        &report,
        "revenue_by_channel.csv",
        2,
        cat,
        "SELECT day, channel, sum(revenue_usd) AS revenue_usd FROM yachay.sales_daily \
         WHERE day >= DATE '2026-10-02' AND day <= DATE '2026-10-31' GROUP BY day, channel",
    );
    // Thirty days of sales.
    let days: std::collections::BTreeSet<&String> = channels.iter().map(|r| &r[0]).collect();
    assert_eq!(days.len(), 30, "{days:?}");
    let categories = same_as_views(
        &report,
        "top_categories.csv",
        1,
        cat,
        "SELECT coalesce(category, '(unknown)') AS category, sum(units) AS units, \
         sum(revenue_usd) AS revenue_usd FROM yachay.sales_daily WHERE day = DATE '2026-10-31' \
         GROUP BY coalesce(category, '(unknown)')",
    );
    assert!(categories.len() >= 3, "{categories:?}");
    let revenue = |rows: &[Vec<String>], i: usize| -> Vec<f64> {
        rows.iter().map(|r| r[i].parse().unwrap()).collect()
    };
    let by_revenue = revenue(&categories, 2);
    assert!(
        by_revenue.windows(2).all(|w| w[0] >= w[1]),
        "{by_revenue:?}"
    );
    let stores = same_as_views(
        &report,
        "store_ranking.csv",
        1,
        cat,
        "SELECT store, sum(units) AS units, sum(revenue_usd) AS revenue_usd FROM yachay.sales_daily \
         WHERE day = DATE '2026-10-31' AND channel = 'store' GROUP BY store",
    );
    let ranked = revenue(&stores, 2);
    assert!(ranked.windows(2).all(|w| w[0] >= w[1]), "{ranked:?}");
    // ... and PostgreSQL's own sum of that day's till lines per store.
    let pg: BTreeMap<String, f64> = y
        .pos
        .psql(
            "pos",
            "SELECT s.name, sum(l.qty * l.unit_price_usd - l.discount_usd) \
             FROM transactions t JOIN transaction_lines l ON l.txn_id = t.txn_id \
             JOIN stores s ON s.store_id = t.store_id \
             WHERE (t.ts AT TIME ZONE 'UTC')::date = DATE '2026-10-31' GROUP BY s.name",
        )
        .lines()
        .map(|l| {
            let (name, sum) = l.split_once('|').unwrap();
            (name.to_string(), sum.parse().unwrap())
        })
        .collect();
    let ours: BTreeMap<String, f64> = stores
        .iter()
        .map(|r| (r[0].clone(), r[2].parse().unwrap()))
        .collect();
    assert!(!pg.is_empty());
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        pg.keys().collect::<Vec<_>>()
    );
    for (store, sum) in &pg {
        assert!(
            (ours[store] - sum).abs() < 0.005,
            "{store}: {} vs {sum}",
            ours[store]
        );
    }
    let campaigns = same_as_views(
        &report,
        "campaign_return.csv",
        1,
        cat,
        "SELECT campaign_id, name, channel, start_date, end_date, spend_usd, online_revenue_usd, \
         store_revenue_usd, return_on_spend FROM yachay.marketing_effectiveness \
         WHERE start_date <= DATE '2026-10-31' AND end_date >= DATE '2025-11-01'",
    );
    assert!(!campaigns.is_empty());
    let low = same_as_views(
        &report,
        "low_stock.csv",
        1,
        cat,
        "SELECT sku, name, category, available, reorder_point, reorder_point - available AS shortfall, \
         locations_at_or_below_reorder FROM yachay.inventory_live WHERE low_stock_alert",
    );
    // The forecast: the view's columns as they are (with the interval
    // when the view has one).
    let (forecast_header, _) = csv(&std::fs::read_to_string(report.join("forecast.csv")).unwrap());
    let forecast = same_as_views(
        &report,
        "forecast.csv",
        2,
        cat,
        &format!(
            "SELECT {} FROM yachay.sales_forecast",
            forecast_header.join(", ")
        ),
    );
    assert!(forecast.len() >= 4, "{forecast:?}");
    let (view_columns, _) = sql_csv(cat, "SELECT * FROM yachay.sales_forecast LIMIT 1");
    let has_interval = view_columns.iter().any(|c| c.contains("lower"))
        && view_columns.iter().any(|c| c.contains("upper"));
    assert_eq!(
        forecast_header.iter().any(|c| c.contains("lower")),
        has_interval,
        "{forecast_header:?} against the view's {view_columns:?}"
    );
    // History: the twelve weeks before the week the forecast starts from.
    let first = forecast.iter().map(|r| r[1].clone()).min().unwrap();
    let history = same_as_views(
        &report,
        "forecast_history.csv",
        2,
        cat,
        &format!(
            "SELECT category, week, sum(revenue_usd) AS revenue_usd FROM yachay.sales_weekly \
             WHERE category IS NOT NULL AND week >= DATE '{first}' - INTERVAL '91 days' \
             AND week < DATE '{first}' - INTERVAL '7 days' GROUP BY category, week"
        ),
    );
    assert!(!history.is_empty());

    // The page: one titled <svg> per chart, in its section.
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        CHARTS.len(),
        "one <svg> per chart"
    );
    for (id, title) in CHARTS {
        let section = html
            .split(&format!("<section id=\"{id}\">"))
            .nth(1)
            .unwrap_or_else(|| panic!("no section {id}"))
            .split("</section>")
            .next()
            .unwrap();
        assert!(section.contains(&format!("<h2>{title}</h2>")), "{id}");
        assert_eq!(section.matches("<svg").count(), 1, "{id}");
        assert!(section.contains(&format!("<title>{title}</title>")), "{id}");
    }
    // The headline revenue is the summary's.
    let day_revenue: f64 = summary.iter().find(|r| r[0] == DAY).unwrap()[2]
        .parse()
        .unwrap();
    let cents = (day_revenue * 100.0).round() as u64;
    let whole = (cents / 100).to_string();
    let grouped: String = whole
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            ((i > 0 && (whole.len() - i).is_multiple_of(3)).then_some(','))
                .into_iter()
                .chain([c])
        })
        .collect();
    assert!(
        html.contains(&format!("<b>${grouped}.{:02}</b>", cents % 100)),
        "headline revenue ${grouped} missing"
    );
    // Every low-stock SKU of the first rows is in the page's table.
    for r in low.iter().take(25) {
        assert!(html.contains(&format!("<td>{}</td>", r[0])), "{}", r[0]);
    }
    // Self-contained: no URL, no script, no stylesheet or image from
    // elsewhere; every link is a file of the report folder.
    for needle in [
        "http://", "https://", "<script", "url(", "@import", "<img", "<link",
    ] {
        assert!(!html.contains(needle), "the page holds {needle}");
    }
    let files = entries(&report);
    for attr in ["href=\"", "src=\""] {
        for part in html.split(attr).skip(1) {
            let target = part.split('"').next().unwrap();
            assert!(
                files.contains(&target.to_string()),
                "{attr}{target}\" is not a file of the report ({files:?})"
            );
        }
    }
    assert_eq!(html.matches("href=\"").count(), 8, "one link per CSV");
}

#[test]
fn report_without_sales_or_with_a_bad_date_says_so() {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    let out = tempfile::tempdir().unwrap();
    let run = run_report(dir.path(), out.path(), &["daily", "--date", "2030-01-01"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let err = run.stderr.lines().last().unwrap();
    assert!(
        err.starts_with("error: no sales in Tuesday 1 January 2030 (day 2030-01-01)"),
        "{err}"
    );
    // It says which days there are.
    assert!(err.contains(&format!("to {DAY}")), "{err}");
    assert!(err.ends_with("no report written"), "{err}");
    assert!(entries(out.path()).is_empty(), "{:?}", entries(out.path()));
    // A month without sales too.
    let run = run_report(dir.path(), out.path(), &["monthly", "--date", "2031-05-20"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("no sales in May 2031 (month 2031-05-01)"),
        "{}",
        run.stderr
    );
    assert!(entries(out.path()).is_empty());
    // Dates that are not dates.
    for bad in ["2026-02-30", "yesterday", "31/10/2026"] {
        let run = run_report(dir.path(), out.path(), &["weekly", "--date", bad]);
        assert_eq!(run.code, 1, "{bad}");
        assert!(
            run.stderr.contains(&format!("--date {bad}: not a date")),
            "{bad}: {}",
            run.stderr
        );
    }
    let run = quipu(dir.path(), &["report", "hourly", "--out", "x"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("'hourly'"), "{}", run.stderr);
    // --out that is a file.
    let file = out.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let run = quipu(
        dir.path(),
        &[
            "report",
            "daily",
            "--date",
            DAY,
            "--out",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--out"), "{}", run.stderr);
}

/// A TCP relay to a server, which can be cut (as a server going down).
struct Relay {
    port: u16,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn to(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (s, o) = (stop.clone(), open.clone());
        let thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                o.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay {
            port,
            stop,
            open,
            thread: Some(thread),
        }
    }

    /// Closes every connection and the listening port.
    fn cut(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn report_with_a_source_down_names_it_and_keeps_the_last_report() {
    let y = yachay();
    // The views' catalog, with pos reached through a relay.
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::to(y.pos.port);
    crate::views::add_pg_source(dir.path(), "crm", y.crm.port, "crm");
    crate::views::add_pg_source(dir.path(), "pos", relay.port, "pos");
    crate::views::add_mongo_source(dir.path(), "inventory", y.mongo.port, "inventory");
    let lake = y.lake_path();
    let run = quipu(
        dir.path(),
        &[
            "catalog",
            "add-source",
            "lake",
            "--kind",
            "lake",
            "--url",
            lake.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let views = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/yachay/views.sql");
    let run = quipu(dir.path(), &["sql", "-f", views], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let out = tempfile::tempdir().unwrap();
    let run = run_report(dir.path(), out.path(), &["weekly", "--date", DAY]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = out.path().join("weekly-2026-10-26");
    let before: Vec<(String, Vec<u8>)> = entries(&report)
        .into_iter()
        .map(|f| (f.clone(), std::fs::read(report.join(&f)).unwrap()))
        .collect();
    assert_eq!(before.len(), 9);

    // pos goes down: the report fails naming it, and the week's earlier
    // report stays as it was, with no partial folder beside it.
    relay.cut();
    let run = run_report(dir.path(), out.path(), &["weekly", "--date", DAY]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let err = run.stderr.lines().last().unwrap();
    assert!(err.starts_with("error: the report's query for "), "{err}");
    assert!(err.contains("source `pos`"), "{err}");
    assert!(err.contains("no report was written"), "{err}");
    assert_eq!(entries(out.path()), vec!["weekly-2026-10-26".to_string()]);
    let after: Vec<(String, Vec<u8>)> = entries(&report)
        .into_iter()
        .map(|f| (f.clone(), std::fs::read(report.join(&f)).unwrap()))
        .collect();
    assert!(before == after, "the earlier report changed");
    // In a fresh folder nothing at all is written.
    let fresh = tempfile::tempdir().unwrap();
    let run = run_report(dir.path(), fresh.path(), &["monthly", "--date", DAY]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("source `pos`"), "{}", run.stderr);
    assert!(
        entries(fresh.path()).is_empty(),
        "{:?}",
        entries(fresh.path())
    );
}

#[test]
fn report_through_a_server_equals_the_local_one() {
    let y = yachay();
    let dir = crate::views::catalog(&y);
    let pw = "rep-pw-4Kx";
    let run = quipu(
        dir.path(),
        &[
            "users",
            "add",
            "reports",
            "--grant",
            "crm",
            "--grant",
            "pos",
            "--grant",
            "inventory",
            "--grant",
            "lake",
        ],
        &[("QUIPU_PASSWORD", pw)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let local = tempfile::tempdir().unwrap();
    let run = run_report(
        dir.path(),
        local.path(),
        &["monthly", "--date", DAY, "--quiet"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "--quiet printed {}", run.stderr);

    let procs = crate::cluster::Procs::start(dir.path(), 1);
    crate::pgwire::wait_port(procs.flight);
    let url = format!("grpc://127.0.0.1:{}", procs.flight);
    let elsewhere = tempfile::tempdir().unwrap();
    let remote = tempfile::tempdir().unwrap();
    let run = quipu(
        elsewhere.path(),
        &[
            "--server",
            &url,
            "--user",
            "reports",
            "report",
            "monthly",
            "--date",
            DAY,
            "--out",
            remote.path().to_str().unwrap(),
        ],
        &[("QUIPU_USER_PASSWORD", pw)],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, procs.logs());
    let (a, b) = (
        local.path().join("monthly-2026-10"),
        remote.path().join("monthly-2026-10"),
    );
    let files = entries(&a);
    assert_eq!(files, entries(&b));
    for f in files.iter().filter(|f| f.ends_with(".csv")) {
        // Low stock is read live: equal unless the stock moved between
        // the runs, which nothing in this harness does.
        let (ha, ra) = csv(&std::fs::read_to_string(a.join(f)).unwrap());
        let (hb, rb) = csv(&std::fs::read_to_string(b.join(f)).unwrap());
        assert_eq!(ha, hb, "{f}");
        assert_eq!(ra.len(), rb.len(), "{f}");
        // Row by row: the order is the report's too.
        for (x, y) in ra.iter().zip(&rb) {
            assert!(
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q)),
                "{f}: {x:?} locally, {y:?} through the server"
            );
        }
    }
    let html = std::fs::read_to_string(b.join("index.html")).unwrap();
    assert!(
        html.contains(&format!("from the server {url}")),
        "origin missing"
    );
    assert_eq!(html.matches("<svg").count(), CHARTS.len());
}
