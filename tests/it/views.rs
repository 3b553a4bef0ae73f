//! The Yachay-Shop business views (examples/yachay/views.sql) over the live
//! servers of the harness, checked against answers computed independently:
//! SQL run by PostgreSQL itself, aggregates run by the MongoDB server, and
//! identity rules re-implemented here.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::common::quipu;
use crate::servers::{Yachay, yachay};

/// Registers database `db` of the harness's PostgreSQL on `port` as `name`.
pub(crate) fn add_pg_source(dir: &std::path::Path, name: &str, port: u16, db: &str) {
    add_pg_source_with(dir, name, port, db, &[], &[]);
}

/// [`add_pg_source`] with more `--option`s (`key=value`) and environment.
pub(crate) fn add_pg_source_with(
    dir: &std::path::Path,
    name: &str,
    port: u16,
    db: &str,
    options: &[&str],
    env: &[(&str, &str)],
) {
    let port = format!("port={port}");
    let db = format!("dbname={db}");
    let mut args = vec![
        "catalog",
        "add-source",
        name,
        "--kind",
        "postgres",
        "--option",
        "host=127.0.0.1",
        "--option",
        &port,
        "--option",
        "user=postgres",
        "--option",
        &db,
    ];
    for o in options {
        args.extend(["--option", o]);
    }
    let run = quipu(dir, &args, env);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Registers MongoDB database `db` on loopback port `port` as source `name`.
pub(crate) fn add_mongo_source(dir: &std::path::Path, name: &str, port: u16, db: &str) {
    let (port, db) = (format!("port={port}"), format!("database={db}"));
    let run = quipu(
        dir,
        &[
            "catalog",
            "add-source",
            name,
            "--kind",
            "mongodb",
            "--option",
            "host=127.0.0.1",
            "--option",
            &port,
            "--option",
            &db,
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// A catalog with crm, pos, inventory and the lake registered and the views
/// created, as deploy/demo.sh does.
pub(crate) fn catalog(y: &Yachay) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    add_pg_source(dir.path(), "crm", y.crm.port, "crm");
    add_pg_source(dir.path(), "pos", y.pos.port, "pos");
    add_mongo_source(dir.path(), "inventory", y.mongo.port, "inventory");
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
    dir
}

/// Rows of a query as CSV fields (header dropped).
fn rows(dir: &tempfile::TempDir, sql: &str) -> Vec<Vec<String>> {
    let run = quipu(dir.path(), &["sql", "--format", "csv", sql], &[]);
    assert_eq!(run.code, 0, "{sql}: {}", run.stderr);
    run.stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn psql_rows(out: String) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

#[test]
fn business_views_match_independent_answers() {
    let y = yachay();
    let dir = catalog(&y);

    // Identity: card owners re-derived here from both databases.
    let crm_cards: HashMap<String, String> = psql_rows(y.crm.psql(
        "crm",
        "SELECT customer_id, coalesce(loyalty_card_id, ''), coalesce(email, '') FROM customers",
    ))
    .into_iter()
    .flat_map(|r| {
        let card = r[1].trim().to_uppercase();
        (!card.is_empty()).then(|| (card, r[0].clone()))
    })
    .collect();
    let by_email: HashMap<String, String> = psql_rows(y.crm.psql(
        "crm",
        "SELECT min(customer_id), lower(btrim(email)) FROM customers WHERE email IS NOT NULL GROUP BY 2",
    ))
    .into_iter()
    .map(|r| (r[1].clone(), r[0].clone()))
    .collect();
    let mut owner: HashMap<String, String> = crm_cards.clone();
    for r in psql_rows(y.pos.psql(
        "pos",
        "SELECT card_id, coalesce(email, '') FROM loyalty_cards",
    )) {
        let email = r[1].trim().to_lowercase();
        if !owner.contains_key(&r[0])
            && let Some(c) = by_email.get(&email)
        {
            owner.insert(r[0].clone(), c.clone());
        }
    }
    let view_owners: HashMap<String, String> =
        rows(&dir, "SELECT card_id, customer_id FROM yachay.card_owner")
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
    assert_eq!(view_owners, owner);
    assert!(
        owner.len() > crm_cards.len(),
        "email matching linked no card"
    );

    // Customer 360: one row per customer; in-store purchases through the
    // resolved cards, online orders straight from PostgreSQL.
    let c360 = rows(
        &dir,
        "SELECT customer_id, online_orders, store_purchases FROM yachay.customer_360 ORDER BY customer_id",
    );
    assert_eq!(c360.len(), 1000);
    let ids: HashSet<&String> = c360.iter().map(|r| &r[0]).collect();
    assert_eq!(ids.len(), 1000);
    let online: HashMap<String, String> = psql_rows(y.crm.psql(
        "crm",
        "SELECT customer_id, count(*) FROM orders WHERE status NOT IN ('cancelled', 'returned') GROUP BY 1",
    ))
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect();
    let mut store: HashMap<String, u64> = HashMap::new();
    for r in psql_rows(y.pos.psql("pos", "SELECT loyalty_card_id, count(*) FROM transactions WHERE loyalty_card_id IS NOT NULL GROUP BY 1")) {
        if let Some(c) = owner.get(&r[0]) {
            *store.entry(c.clone()).or_default() += r[1].parse::<u64>().unwrap();
        }
    }
    for r in &c360 {
        assert_eq!(
            r[1],
            online.get(&r[0]).cloned().unwrap_or("0".into()),
            "online orders of {}",
            r[0]
        );
        assert_eq!(
            r[2],
            store.get(&r[0]).copied().unwrap_or(0).to_string(),
            "store purchases of {}",
            r[0]
        );
    }

    // Inventory: the server's own aggregation.
    let mongo = y.mongo.pymongo(
        "inventory",
        "rows = db.stock.aggregate([{'$group': {'_id': '$sku', 'a': {'$sum': {'$subtract': ['$on_hand', {'$ifNull': ['$reserved', 0]}]}}}}])\n\
         print('\\n'.join(sorted('%s,%d' % (r['_id'], r['a']) for r in rows)))",
    );
    let view: Vec<String> = rows(
        &dir,
        "SELECT sku, available FROM yachay.inventory_live ORDER BY sku",
    )
    .into_iter()
    .map(|r| r.join(","))
    .collect();
    assert_eq!(view, mongo.lines().map(str::to_string).collect::<Vec<_>>());

    // Monthly sales: store and online revenue per month from PostgreSQL,
    // the archive from the generator's Parquet files summed by Quipu's
    // lake table (checked against its own tests elsewhere).
    let month_rev =
        |sql: &str, server: &crate::servers::PgServer, db: &str| -> BTreeMap<String, String> {
            psql_rows(server.psql(db, sql))
                .into_iter()
                .map(|r| (r[0].clone(), r[1].clone()))
                .collect()
        };
    let store_pg = month_rev(
        "SELECT to_char(date_trunc('month', t.ts AT TIME ZONE 'UTC'), 'YYYY-MM-DD'), sum(l.qty * l.unit_price_usd - l.discount_usd)
         FROM transactions t JOIN transaction_lines l USING (txn_id) GROUP BY 1",
        &y.pos,
        "pos",
    );
    let web_pg = month_rev(
        "SELECT to_char(date_trunc('month', o.ordered_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD'), sum(i.qty * i.unit_price_usd)
         FROM orders o JOIN order_items i USING (order_id)
         WHERE o.status NOT IN ('cancelled', 'returned') AND o.channel = 'web' GROUP BY 1",
        &y.crm,
        "crm",
    );
    let view_rev = |channel: &str| -> BTreeMap<String, String> {
        rows(&dir, &format!("SELECT CAST(month AS VARCHAR), sum(revenue_usd) FROM yachay.sales_monthly WHERE channel = '{channel}' AND month >= DATE '2025-11-01' GROUP BY 1"))
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect()
    };
    assert_eq!(view_rev("store"), store_pg);
    assert_eq!(view_rev("web"), web_pg);

    // Marketing: online orders per campaign from PostgreSQL.
    let per_campaign = psql_rows(y.crm.psql(
        "crm",
        "SELECT c.campaign_id, count(o.order_id) FROM campaigns c LEFT JOIN orders o
           ON o.utm_campaign = c.utm_campaign AND o.status NOT IN ('cancelled', 'returned')
         GROUP BY 1 ORDER BY 1",
    ));
    let view = rows(
        &dir,
        "SELECT campaign_id, online_orders FROM yachay.marketing_effectiveness ORDER BY campaign_id",
    );
    assert_eq!(view, per_campaign);

    // Forecast: four weeks for every category that sold.
    let forecast = rows(
        &dir,
        "SELECT count(*), count(DISTINCT category), min(forecast_revenue_usd) > 0 FROM yachay.sales_forecast",
    );
    assert_eq!(
        forecast,
        vec![vec!["32".to_string(), "8".into(), "true".into()]]
    );
}
