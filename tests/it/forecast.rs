//! `forecast()` and `backtest()` (issue 21, item 3) over real front doors:
//! psycopg on the PostgreSQL wire and ADBC on Flight SQL, against the
//! `quipu scheduler` process of a one-executor cluster, locally and on the
//! cluster. The series are synthetic, with a known trend and season, so
//! the test knows what a forecast should find; the backtest's figures are
//! recomputed here from the data and from `forecast()` itself.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Date32Array, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::cluster::Procs;
use crate::common::quipu;
use crate::pgwire::{add_users, python_with, value, wait_port};

/// Monday 2022-01-03, days since 1970-01-01: the first week.
const FIRST_WEEK: i32 = 18_995;
const WEEKS: usize = 208;

/// The two seasonal series: level, weekly trend, yearly amplitude.
const SEASONAL: &[(&str, f64, f64, f64)] = &[("a", 500.0, 3.0, 200.0), ("b", 2000.0, -2.0, 300.0)];

fn truth(level: f64, slope: f64, amp: f64, t: usize) -> f64 {
    level + slope * t as f64 + amp * (2.0 * std::f64::consts::PI * t as f64 / 52.0).sin()
}

/// Small deterministic noise (-5..=5), so the fit has something to smooth.
fn noise(t: usize) -> f64 {
    ((t * 37) % 11) as f64 - 5.0
}

/// Every series' rows: (category, week index, revenue). `short` has 30
/// weeks (too short for a 52-week season: ETS), `tiny` 5 (naive).
fn series() -> Vec<(&'static str, usize, f64)> {
    let mut rows = vec![];
    for &(name, level, slope, amp) in SEASONAL {
        for t in 0..WEEKS {
            rows.push((name, t, truth(level, slope, amp, t) + noise(t)));
        }
    }
    for t in 0..30 {
        rows.push(("short", t, 100.0 + 2.0 * t as f64 + noise(t)));
    }
    for (t, v) in [10.0, 12.0, 11.0, 13.0, 12.0].into_iter().enumerate() {
        rows.push(("tiny", t, v));
    }
    rows
}

fn values_of(name: &str) -> Vec<f64> {
    series()
        .into_iter()
        .filter(|r| r.0 == name)
        .map(|r| r.2)
        .collect()
}

/// Writes `rows` as one Parquet file of table `table` under `root`.
async fn write_weekly(root: &Path, table: &str, rows: &[(&str, usize, f64)]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("week", DataType::Date32, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("revenue", DataType::Float64, false),
        Field::new("note", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Date32Array::from_iter_values(
                rows.iter().map(|r| FIRST_WEEK + 7 * r.1 as i32),
            )),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "x"))),
        ],
    )
    .unwrap();
    let ctx = SessionContext::new();
    ctx.register_table(
        "t",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()),
    )
    .unwrap();
    let dir = root.join(table);
    std::fs::create_dir_all(&dir).unwrap();
    ctx.sql(&format!(
        "COPY (SELECT * FROM t) TO '{}/part-0.parquet' STORED AS PARQUET",
        dir.display()
    ))
    .await
    .unwrap()
    .collect()
    .await
    .unwrap();
}

const PY: &str = r#"
import os, psycopg, json
import adbc_driver_flightsql.dbapi as fs
PG, FL = os.environ["PORT"], os.environ["FLIGHT"]
def pg(user, pw):
    return psycopg.connect(host="127.0.0.1", port=PG, user=user, password=pw, dbname="quipu", autocommit=True, connect_timeout=20)
def fl(user, pw):
    return fs.connect("grpc://127.0.0.1:" + FL, db_kwargs={"username": user, "password": pw}, autocommit=True)
def rows(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()
def err(fn):
    try:
        fn()
        return "none"
    except psycopg.Error as e:
        return (e.sqlstate or "-") + " " + str(e).strip().replace("\n", " ")
    except Exception as e:
        return type(e).__name__ + " " + str(e).strip().replace("\n", " ")[:400]
Q = "SELECT week, category, revenue FROM lake.public.weekly"
FC = "SELECT series, time, step, forecast, lower, upper, method FROM forecast('" + Q + "', 8) ORDER BY series, step"
def fc_rows(rs):
    return [[r[0], r[1].date().toordinal() - 719163, r[2], r[3], r[4], r[5], r[6]] for r in rs]
boss = pg("boss", os.environ["BOSS_PW"])
print("pg_local=" + json.dumps(fc_rows(rows(boss, FC))))
rows(boss, "SET quipu.execution = 'cluster'")
print("pg_cluster=" + json.dumps(fc_rows(rows(boss, FC))))
rows(boss, "SET quipu.execution = 'auto'")
cut = "SELECT week, category, revenue FROM lake.public.weekly WHERE (category <> ''short'' AND week < DATE ''2025-11-03'') OR (category = ''short'' AND week < DATE ''2022-06-06'')"
print("pg_cut=" + json.dumps(fc_rows(rows(boss, "SELECT series, time, step, forecast, lower, upper, method FROM forecast('" + cut + "', 8) ORDER BY series, step"))))
f = fl("boss", os.environ["BOSS_PW"])
BT = "SELECT series, method, training_periods, holdout, mape, seasonal_naive_mape, baseline FROM backtest('" + Q + "', 8) ORDER BY series"
print("flight_backtest=" + json.dumps([list(r) for r in rows(f, BT)]))
print("flight_forecast=" + json.dumps([[r[0], r[2], r[3], r[6]] for r in rows(f, FC)]))
bad = {
    "horizon_zero": "SELECT * FROM forecast('" + Q + "', 0)",
    "horizon_big": "SELECT * FROM forecast('" + Q + "', 521)",
    "horizon_negative": "SELECT * FROM forecast('" + Q + "', -3)",
    "holdout_zero": "SELECT * FROM backtest('" + Q + "', 0)",
    "text_value": "SELECT * FROM forecast('SELECT week, category, note FROM lake.public.weekly', 4)",
    "no_time": "SELECT * FROM forecast('SELECT category, revenue FROM lake.public.weekly', 4)",
    "not_a_query": "SELECT * FROM forecast('DROP VIEW public.vault_weekly', 4)",
    "level": "SELECT * FROM forecast('" + Q + "', 4, 1.5)",
}
for k, sql in bad.items():
    print("err_" + k + "=" + err(lambda: rows(boss, sql)))
ana = pg("ana", os.environ["ANA_PW"])
print("ana_own=" + str(len(rows(ana, FC))))
print("ana_direct=" + err(lambda: rows(ana, "SELECT * FROM forecast('SELECT week, category, revenue FROM vault.public.weekly', 4)")))
print("ana_select=" + err(lambda: rows(ana, "SELECT * FROM vault.public.weekly")))
print("ana_view=" + err(lambda: rows(ana, "SELECT * FROM forecast('SELECT week, category, revenue FROM public.vault_weekly', 4)")))
print("ana_flight_view=" + err(lambda: rows(fl("ana", os.environ["ANA_PW"]), "SELECT * FROM forecast('SELECT week, category, revenue FROM public.vault_weekly', 4)")))
print("boss_view=" + str(len(rows(boss, "SELECT * FROM forecast('SELECT week, category, revenue FROM public.vault_weekly', 4)"))))
"#;

type FcRow = (String, i64, i64, f64, Option<f64>, Option<f64>, String);
/// series, method, training periods, holdout, MAPE, seasonal-naive MAPE, baseline.
type BtRow = (String, String, i64, i64, Option<f64>, Option<f64>, String);

fn parse_fc(json: &str) -> Vec<FcRow> {
    serde_json::from_str::<Vec<FcRow>>(json).unwrap()
}

fn mape(actual: &[f64], forecast: &[f64]) -> f64 {
    let e: Vec<f64> = actual
        .iter()
        .zip(forecast)
        .filter(|(a, _)| **a != 0.0)
        .map(|(a, f)| ((a - f) / a).abs())
        .collect();
    100.0 * e.iter().sum::<f64>() / e.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecasts_and_backtests_over_both_front_doors() {
    let (dir, lake, data) = crate::common::lake_on_disk();
    write_weekly(&lake, "weekly", &series()).await;
    crate::common::add_lake_source(&data, &lake);
    let vault = dir.path().join("vault");
    write_weekly(&vault, "weekly", &series()[..2 * WEEKS]).await;
    let run = quipu(
        &data,
        &[
            "catalog",
            "add-source",
            "vault",
            "--kind",
            "lake",
            "--url",
            &format!("file://{}", vault.display()),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = quipu(
        &data,
        &[
            "sql",
            "CREATE VIEW public.vault_weekly AS SELECT week, category, revenue FROM vault.public.weekly",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    add_users(&data);
    let procs = Procs::start(&data, 1);
    wait_port(procs.pg);
    let flight = std::ffi::OsString::from(procs.flight.to_string());
    let out = python_with(procs.pg, PY, &[("FLIGHT", flight.as_os_str())]);
    assert!(out.ok, "{}\n{}\n{}", out.stdout, out.stderr, procs.logs());

    // The seasonal series: their trend and season are found (every point
    // of the next 8 weeks within 3% of the noiseless truth; the season
    // moves these weeks by up to 17%), inside the interval.
    let local = parse_fc(value(&out, "pg_local"));
    assert_eq!(local.len(), 4 * 8, "{local:?}");
    for &(name, level, slope, amp) in SEASONAL {
        let rows: Vec<&FcRow> = local.iter().filter(|r| r.0 == name).collect();
        for (k, r) in rows.iter().enumerate() {
            let t = WEEKS + k;
            let want = truth(level, slope, amp, t);
            assert_eq!(r.6, "mstl_ets", "{r:?}");
            assert_eq!(r.2, k as i64 + 1);
            assert_eq!(r.1, (FIRST_WEEK + 7 * t as i32) as i64, "{r:?}");
            assert!(
                (r.3 - want).abs() / want < 0.03,
                "{name} +{k}: {} vs {want}",
                r.3
            );
            let (lo, hi) = (r.4.unwrap(), r.5.unwrap());
            assert!(lo < r.3 && r.3 < hi, "{r:?}");
        }
    }
    // Fallbacks: too short for the season, and too short for ETS.
    let short: Vec<&FcRow> = local.iter().filter(|r| r.0 == "short").collect();
    assert!(short.iter().all(|r| r.6 == "ets"), "{short:?}");
    // ETS on a straight line continues it.
    let want = 100.0 + 2.0 * 30.0;
    assert!((short[0].3 - want).abs() < 0.05 * want, "{short:?}");
    let tiny: Vec<&FcRow> = local.iter().filter(|r| r.0 == "tiny").collect();
    assert!(
        tiny.iter().all(|r| r.6 == "naive" && r.3 == 12.0),
        "{tiny:?}"
    );
    // A random walk's interval widens with the horizon.
    assert!(tiny[7].5.unwrap() - tiny[7].4.unwrap() > tiny[0].5.unwrap() - tiny[0].4.unwrap());

    // The cluster answers the same.
    let cluster = parse_fc(value(&out, "pg_cluster"));
    assert_eq!(cluster.len(), local.len());
    for (c, l) in cluster.iter().zip(&local) {
        assert_eq!((&c.0, c.1, c.2, &c.6), (&l.0, l.1, l.2, &l.6));
        assert!(
            (c.3 - l.3).abs() < 1e-6 * l.3.abs().max(1.0),
            "{c:?} vs {l:?}"
        );
    }

    // The backtest, computed the documented way: the model fitted on all
    // but the last 8 weeks (what forecast() gives on the history cut
    // there), MAPE over the 8 held out; the seasonal-naive baseline
    // repeats the weeks 52 before.
    let cut = parse_fc(value(&out, "pg_cut"));
    let backtest: Vec<BtRow> = serde_json::from_str(value(&out, "flight_backtest")).unwrap();
    assert_eq!(backtest.len(), 4, "{backtest:?}");
    for b in &backtest {
        let y = values_of(&b.0);
        assert_eq!(b.3, 8);
        if b.0 == "tiny" {
            assert_eq!((b.1.as_str(), b.4, b.5), ("too_short", None, None), "{b:?}");
            continue;
        }
        let n = y.len();
        let (train, actual) = y.split_at(n - 8);
        assert_eq!(b.2, train.len() as i64);
        let model: Vec<f64> = cut.iter().filter(|r| r.0 == b.0).map(|r| r.3).collect();
        assert_eq!(model.len(), 8, "{b:?}");
        let method = &cut.iter().find(|r| r.0 == b.0).unwrap().6;
        assert_eq!(&b.1, method);
        let got = b.4.unwrap();
        assert!((got - mape(actual, &model)).abs() < 1e-6, "{b:?}");
        let (baseline, label) = if train.len() >= 52 {
            let m = train.len() - 52;
            (
                (0..8).map(|i| train[m + i]).collect::<Vec<_>>(),
                "seasonal_naive(52)",
            )
        } else {
            (vec![*train.last().unwrap(); 8], "naive")
        };
        assert_eq!(b.6, label);
        assert!(
            (b.5.unwrap() - mape(actual, &baseline)).abs() < 1e-9,
            "{b:?}"
        );
        if SEASONAL.iter().any(|s| s.0 == b.0) {
            // With a trend, the model beats last year's weeks.
            assert!(got < b.5.unwrap(), "{b:?}");
        }
    }
    // Flight SQL gives the same forecasts as the PostgreSQL wire.
    let over_flight: Vec<(String, i64, f64, String)> =
        serde_json::from_str(value(&out, "flight_forecast")).unwrap();
    assert_eq!(over_flight.len(), local.len());
    for (f, l) in over_flight.iter().zip(&local) {
        assert_eq!((&f.0, f.1, &f.3), (&l.0, l.2, &l.6));
        assert!((f.2 - l.3).abs() < 1e-6 * l.3.abs().max(1.0));
    }

    // Bad input: one clear error each.
    for (key, words) in [
        (
            "horizon_zero",
            "the horizon must be between 1 and 520 periods, got 0",
        ),
        (
            "horizon_big",
            "the horizon must be between 1 and 520 periods, got 521",
        ),
        (
            "horizon_negative",
            "the horizon must be between 1 and 520 periods, got -3",
        ),
        (
            "holdout_zero",
            "the holdout must be between 1 and 520 periods, got 0",
        ),
        (
            "text_value",
            "the value column (the query's last) must be a number; `note` is Utf8",
        ),
        ("no_time", "the query returns no date or timestamp column"),
        ("not_a_query", "its argument must be a query"),
        ("level", "the level must be a number between 0 and 1"),
    ] {
        let e = value(&out, &format!("err_{key}"));
        assert!(e.contains(words), "{key}: {e}");
        // A bad argument is no missing table (42P01).
        assert!(e.starts_with("42000 "), "{key}: {e}");
        assert_eq!(e.matches(words).count(), 1, "{key}: {e}");
    }

    // Grants: ana reads the lake, not the vault; forecast() does not
    // change that, directly or through a view.
    assert_eq!(value(&out, "ana_own"), (4 * 8).to_string());
    let direct = value(&out, "ana_direct");
    let select = value(&out, "ana_select");
    assert_eq!(&direct[..5], &select[..5], "{direct} / {select}");
    assert!(direct.contains("vault"), "{direct}");
    let view = value(&out, "ana_view");
    assert!(
        view.starts_with("42501") && view.contains("vault"),
        "{view}"
    );
    let view = value(&out, "ana_flight_view");
    assert!(
        view.contains("vault") && view.to_lowercase().contains("permission"),
        "{view}"
    );
    assert_eq!(value(&out, "boss_view"), (2 * 4).to_string());
}
