//! `quipu gen` against real servers: determinism, counts and links per the
//! spec (DATASET.md), clean replacement, and refusals before anything is
//! written.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::quipu;
use crate::servers::{MongoServer, PgServer, report_rows, run_gen, yachay};

const CRM_TABLES: &[&str] = &[
    "customers",
    "campaigns",
    "orders",
    "order_items",
    "campaign_contacts",
];
const POS_TABLES: &[&str] = &[
    "stores",
    "loyalty_cards",
    "transactions",
    "transaction_lines",
];

/// md5 of every row of every table, computed by PostgreSQL itself.
fn pg_digest(server: &PgServer, db: &str, tables: &[&str]) -> BTreeMap<String, String> {
    tables
        .iter()
        .map(|t| {
            let sql = format!("SELECT count(*) || ':' || md5(string_agg(x::text, E'\\n' ORDER BY x::text)) FROM {t} x");
            (t.to_string(), server.psql(db, &sql))
        })
        .collect()
}

/// Every document of the inventory, BSON-encoded in `_id` order, hashed by pymongo.
fn mongo_digest(server: &MongoServer, db: &str) -> String {
    server.pymongo(
        db,
        "import hashlib, bson\n\
         out = []\n\
         for name in ['products', 'stock', 'movements']:\n\
         \x20   h = hashlib.md5(); n = 0\n\
         \x20   for d in db[name].find().sort('_id', 1):\n\
         \x20       h.update(bson.encode(d)); n += 1\n\
         \x20   out.append('%s:%d:%s' % (name, n, h.hexdigest()))\n\
         print(' '.join(out))",
    )
}

/// Relative path -> bytes of every file under a lake folder.
fn lake_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn checksums(report: &serde_json::Value) -> BTreeMap<String, String> {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                format!(
                    "{}.{}",
                    t["system"].as_str().unwrap(),
                    t["table"].as_str().unwrap()
                ),
                t["checksum"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn same_seed_same_data_other_seed_other_data_and_reruns_replace() {
    let y = yachay();
    // A second copy of everything, with the same seed, in other databases.
    y.crm.psql("postgres", "CREATE DATABASE crm_b");
    y.pos.psql("postgres", "CREATE DATABASE pos_b");
    let lake_b = tempfile::tempdir().unwrap();
    let args = |seed: &'static str| {
        vec![
            "--scale".to_string(),
            "0.01".into(),
            "--seed".into(),
            seed.into(),
            "--crm-url".into(),
            y.crm.url("crm_b"),
            "--pos-url".into(),
            y.pos.url("pos_b"),
            "--mongodb-url".into(),
            y.mongo.db_uri("inventory_b"),
            "--lake".into(),
            lake_b.path().display().to_string(),
        ]
    };
    let run = |seed| {
        let a = args(seed);
        run_gen(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>())
    };
    let b = run("42");
    assert_eq!(
        checksums(&y.report),
        checksums(&b),
        "generator checksums differ for the same seed"
    );
    assert_eq!(
        pg_digest(&y.crm, "crm", CRM_TABLES),
        pg_digest(&y.crm, "crm_b", CRM_TABLES)
    );
    assert_eq!(
        pg_digest(&y.pos, "pos", POS_TABLES),
        pg_digest(&y.pos, "pos_b", POS_TABLES)
    );
    assert_eq!(
        mongo_digest(&y.mongo, "inventory"),
        mongo_digest(&y.mongo, "inventory_b")
    );
    let files_a = lake_files(&y.lake_path());
    let files_b = lake_files(lake_b.path());
    assert!(
        files_a.len() > 100 && files_a == files_b,
        "lake files differ for the same seed"
    );

    // Another seed over the same targets: every table changes, and nothing
    // of the previous generation is left behind.
    let c = run("43");
    let (before, after) = (checksums(&b), checksums(&c));
    for (table, sum) in &before {
        assert_ne!(
            Some(sum),
            after.get(table),
            "{table} did not change with the seed"
        );
    }
    let digest_c = pg_digest(&y.crm, "crm_b", CRM_TABLES);
    assert_ne!(pg_digest(&y.crm, "crm", CRM_TABLES), digest_c);
    assert_eq!(
        digest_c["orders"].split(':').next().unwrap(),
        report_rows(&c, "crm", "orders").to_string()
    );
    assert_eq!(
        y.crm.psql(
            "crm_b",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "5"
    );
    let files_c = lake_files(lake_b.path());
    // Same days of clickstream, other events; no file of the old generation
    // left (GA and ads files depend on the campaign calendar).
    let days = |files: &BTreeMap<String, Vec<u8>>| {
        files
            .keys()
            .filter(|k| k.starts_with("clickstream/"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(days(&files_b), days(&files_c));
    assert!(
        files_b
            .iter()
            .filter(|(k, _)| k.starts_with("clickstream/"))
            .all(|(k, v)| files_c[k] != *v)
    );
    let ga_days =
        |files: &BTreeMap<String, Vec<u8>>| files.keys().filter(|k| k.contains("/ga/")).count();
    assert_eq!(
        ga_days(&files_c),
        std::fs::read_dir(lake_b.path().join("marketing/ga"))
            .unwrap()
            .count()
    );
}

#[test]
fn counts_and_links_follow_the_spec() {
    let y = yachay();
    let q = |server: &PgServer, db: &str, sql: &str| server.psql(db, sql);
    let num = |s: String| {
        s.parse::<f64>()
            .unwrap_or_else(|_| panic!("not a number: {s}"))
    };
    // SF 0.01: 1,000 customers, 10,000 orders of about 2.5 lines, 20,000 POS
    // transactions, 200 SKUs in 3 stores + 5 warehouses.
    assert_eq!(q(&y.crm, "crm", "SELECT count(*) FROM customers"), "1000");
    assert_eq!(q(&y.crm, "crm", "SELECT count(*) FROM orders"), "10000");
    let lines_per_order = num(q(
        &y.crm,
        "crm",
        "SELECT count(*)::float / 10000 FROM order_items",
    ));
    assert!((2.3..2.7).contains(&lines_per_order), "{lines_per_order}");
    assert_eq!(
        q(&y.pos, "pos", "SELECT count(*) FROM transactions"),
        "20000"
    );
    assert_eq!(q(&y.pos, "pos", "SELECT count(*) FROM stores"), "3");
    assert_eq!(y.rows("inventory", "products"), 200);
    assert_eq!(y.rows("inventory", "stock"), 200 * 8);
    assert_eq!(y.rows("lake", "clickstream"), 50_000);
    assert_eq!(
        y.mongo.pymongo(
            "inventory",
            "print(db.stock.count_documents({}), db.products.count_documents({}))"
        ),
        "1600 200"
    );
    // Totals agree with their lines; keys and foreign keys are declared.
    assert_eq!(
        q(
            &y.crm,
            "crm",
            "SELECT count(*) FROM orders o WHERE total_usd <> \
           (SELECT sum(qty * unit_price_usd) FROM order_items i WHERE i.order_id = o.order_id)"
        ),
        "0"
    );
    assert_eq!(
        q(
            &y.pos,
            "pos",
            "SELECT count(*) FROM pg_constraint WHERE contype IN ('p', 'f') AND connamespace = 'public'::regnamespace"
        ),
        "7"
    );
    // 60% of customers have a card in the CRM; 750 cards in the stores, of
    // which 150 the CRM does not know; some CRM card ids typed sloppily.
    assert_eq!(
        q(
            &y.crm,
            "crm",
            "SELECT count(loyalty_card_id) FROM customers"
        ),
        "600"
    );
    assert_eq!(
        q(&y.pos, "pos", "SELECT count(*) FROM loyalty_cards"),
        "750"
    );
    let crm_cards = q(
        &y.crm,
        "crm",
        "SELECT string_agg(upper(btrim(loyalty_card_id)), ',') FROM customers",
    );
    let sloppy = num(q(
        &y.crm,
        "crm",
        "SELECT count(*) FROM customers WHERE loyalty_card_id <> upper(btrim(loyalty_card_id))",
    ));
    assert!((5.0..60.0).contains(&sloppy), "{sloppy} sloppy card ids");
    let pos_cards = q(
        &y.pos,
        "pos",
        "SELECT string_agg(card_id, ',') FROM loyalty_cards",
    );
    let crm_set: std::collections::HashSet<&str> = crm_cards.split(',').collect();
    let unknown = pos_cards
        .split(',')
        .filter(|c| !crm_set.contains(c))
        .count();
    assert_eq!(unknown, 150);
    // Messy emails: some mixed case or padded, the same people in both systems.
    let messy = num(q(
        &y.crm,
        "crm",
        "SELECT count(*) FROM customers WHERE email <> lower(btrim(email))",
    ));
    assert!((20.0..300.0).contains(&messy), "{messy} messy CRM emails");
    let with_card = num(q(
        &y.pos,
        "pos",
        "SELECT avg((loyalty_card_id IS NOT NULL)::int) FROM transactions",
    ));
    assert!((0.5..0.6).contains(&with_card), "{with_card}");

    // Clickstream: unknown SKUs and late events exist but are rare; some
    // sessions log in half-way (the same session id with and without a
    // customer).
    let products: std::collections::HashSet<String> =
        (1..=200).map(|k| format!("SKU-{k:06}")).collect();
    let (mut with_sku, mut unknown_sku, mut late, mut total) = (0, 0, 0, 0);
    let mut sessions: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for (path, bytes) in lake_files(&y.lake_path().join("clickstream")) {
        let day = path
            .split('/')
            .next()
            .unwrap()
            .trim_start_matches("date=")
            .to_string();
        for line in String::from_utf8(bytes).unwrap().lines() {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            total += 1;
            if let Some(sku) = e["sku"].as_str() {
                with_sku += 1;
                unknown_sku += usize::from(!products.contains(sku));
            }
            late += usize::from(!e["ts"].as_str().unwrap().starts_with(&day));
            let s = sessions
                .entry(e["session_id"].as_str().unwrap().to_string())
                .or_default();
            if e["customer_id"].is_null() {
                s.0 = true
            } else {
                s.1 = true
            }
        }
    }
    assert_eq!(total, 50_000);
    let unknown_share = unknown_sku as f64 / with_sku as f64;
    assert!((0.01..0.06).contains(&unknown_share), "{unknown_share}");
    let late_share = late as f64 / total as f64;
    assert!((0.005..0.04).contains(&late_share), "{late_share}");
    let logged_in_half_way = sessions
        .values()
        .filter(|(anon, known)| *anon && *known)
        .count();
    assert!(logged_in_half_way > 100, "{logged_in_half_way}");
}

#[test]
fn bad_targets_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A server that does not answer (with a password that must not leak).
    let url = format!("postgres://postgres:s3cretpw@127.0.0.1:{closed}/crm");
    let started = std::time::Instant::now();
    let run = quipu(
        dir.path(),
        &[
            "gen",
            "--scale",
            "0.01",
            "--crm-url",
            &url,
            "--lake",
            lake.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("crm (postgres://postgres@127.0.0.1:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("cannot connect"), "{}", run.stderr);
    assert!(!run.stderr.contains("s3cretpw") && !run.stdout.contains("s3cretpw"));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // The lake was not touched.
    assert!(!lake.exists() || std::fs::read_dir(&lake).unwrap().next().is_none());

    // Scale factors that make no sense.
    for sf in ["0", "-1", "nan"] {
        let run = quipu(
            dir.path(),
            &["gen", "--scale", sf, "--lake", lake.to_str().unwrap()],
            &[],
        );
        assert_ne!(run.code, 0);
        assert!(
            run.stderr.contains("scale factor") || run.stderr.contains("--scale"),
            "{sf}: {}",
            run.stderr
        );
    }
    let run = quipu(dir.path(), &["gen", "--scale", "0.01"], &[]);
    assert!(run.stderr.contains("nothing to generate"), "{}", run.stderr);

    // A lake path that cannot be written (under a regular file).
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let bad_lake = file.join("lake");
    let run = quipu(
        dir.path(),
        &[
            "gen",
            "--scale",
            "0.01",
            "--lake",
            bad_lake.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("lake (") && run.stderr.contains("cannot create"),
        "{}",
        run.stderr
    );

    // A database and a lake that hold someone else's data are left alone.
    let pg = PgServer::start();
    pg.psql("postgres", "CREATE DATABASE crm");
    pg.psql(
        "crm",
        "CREATE TABLE payroll (id int); INSERT INTO payroll VALUES (1)",
    );
    let run = quipu(
        dir.path(),
        &[
            "gen",
            "--scale",
            "0.01",
            "--crm-url",
            &pg.url("crm"),
            "--lake",
            lake.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("public.payroll") && run.stderr.contains("did not create"),
        "{}",
        run.stderr
    );
    assert_eq!(
        pg.psql(
            "crm",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "1"
    );
    let foreign_lake = dir.path().join("foreign");
    std::fs::create_dir_all(foreign_lake.join("clickstream")).unwrap();
    std::fs::write(foreign_lake.join("clickstream/theirs.ndjson"), "{}\n").unwrap();
    let run = quipu(
        dir.path(),
        &[
            "gen",
            "--scale",
            "0.01",
            "--lake",
            foreign_lake.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("did not write"), "{}", run.stderr);
    assert!(foreign_lake.join("clickstream/theirs.ndjson").exists());
}
