//! Loading the CRM and POS databases: one transaction per database (drop
//! the previous generation, create, COPY, keys and indexes, commit), so a
//! failed run leaves the database as it was and a re-run replaces it whole.

use std::hash::Hasher;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::SinkExt;
use indicatif::ProgressBar;
use tokio_postgres::{Client, Config, NoTls};
use twox_hash::XxHash64;

use crate::error::{GenError, Result};
use crate::model::Spec;
use crate::relational as rel;
use crate::{System, TableReport};

/// Marker put on every table we create; tables without it are someone
/// else's and make us stop.
const MARKER: &str = "quipu gen";

/// A generator of one table's COPY chunks: `(bytes, rows)` for chunk `n`.
type ChunkFn = Arc<dyn Fn(&Spec, u64) -> (Vec<u8>, u64) + Send + Sync>;

struct CopyJob {
    table: &'static str,
    rows: u64,
    chunks: u64,
    chunk: ChunkFn,
}

fn job(
    table: &'static str,
    rows: u64,
    chunks: u64,
    chunk: impl Fn(&Spec, u64) -> (Vec<u8>, u64) + Send + Sync + 'static,
) -> CopyJob {
    CopyJob {
        table,
        rows,
        chunks,
        chunk: Arc::new(chunk),
    }
}

const CRM_TABLES: &[&str] = &[
    "order_items",
    "orders",
    "campaign_contacts",
    "campaigns",
    "customers",
];
const POS_TABLES: &[&str] = &[
    "transaction_lines",
    "transactions",
    "loyalty_cards",
    "stores",
];

pub fn tables(system: System) -> &'static [&'static str] {
    match system {
        System::Crm => CRM_TABLES,
        _ => POS_TABLES,
    }
}

const CRM_DDL: &str = "
CREATE TABLE customers (
    customer_id bigint NOT NULL, first_name text NOT NULL, last_name text NOT NULL,
    email text, phone text, city text, province text, segment text NOT NULL,
    loyalty_card_id text, created_at timestamptz NOT NULL);
CREATE TABLE campaigns (
    campaign_id integer NOT NULL, name text NOT NULL,
    channel text NOT NULL CHECK (channel IN ('email', 'facebook', 'google', 'instagram')),
    utm_campaign text NOT NULL, start_date date NOT NULL, end_date date NOT NULL,
    budget_usd numeric(12,2) NOT NULL);
CREATE TABLE orders (
    order_id bigint NOT NULL, customer_id bigint NOT NULL,
    channel text NOT NULL CHECK (channel IN ('web', 'app')),
    ordered_at timestamptz NOT NULL, status text NOT NULL,
    total_usd numeric(12,2) NOT NULL, utm_campaign text);
CREATE TABLE order_items (
    order_id bigint NOT NULL, line_no integer NOT NULL, sku text NOT NULL,
    qty integer NOT NULL, unit_price_usd numeric(10,2) NOT NULL);
CREATE TABLE campaign_contacts (
    campaign_id integer NOT NULL, customer_id bigint NOT NULL,
    sent_at timestamptz NOT NULL, opened boolean NOT NULL, clicked boolean NOT NULL);
";

/// Keys and indexes are built after the load (faster than maintaining them
/// row by row), still inside the transaction.
const CRM_KEYS: &str = "
ALTER TABLE customers ADD PRIMARY KEY (customer_id);
ALTER TABLE campaigns ADD PRIMARY KEY (campaign_id);
ALTER TABLE campaigns ADD UNIQUE (utm_campaign);
ALTER TABLE orders ADD PRIMARY KEY (order_id);
ALTER TABLE order_items ADD PRIMARY KEY (order_id, line_no);
ALTER TABLE campaign_contacts ADD PRIMARY KEY (campaign_id, customer_id);
ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers;
ALTER TABLE order_items ADD FOREIGN KEY (order_id) REFERENCES orders;
ALTER TABLE campaign_contacts ADD FOREIGN KEY (campaign_id) REFERENCES campaigns;
ALTER TABLE campaign_contacts ADD FOREIGN KEY (customer_id) REFERENCES customers;
CREATE INDEX customers_email_idx ON customers (lower(btrim(email)));
CREATE INDEX customers_loyalty_card_idx ON customers (loyalty_card_id);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE INDEX orders_ordered_at_idx ON orders (ordered_at);
CREATE INDEX orders_utm_campaign_idx ON orders (utm_campaign);
CREATE INDEX order_items_sku_idx ON order_items (sku);
CREATE INDEX campaign_contacts_customer_idx ON campaign_contacts (customer_id);
";

const POS_DDL: &str = "
CREATE TABLE stores (
    store_id integer NOT NULL, name text NOT NULL, city text NOT NULL,
    province text NOT NULL, opened_at date NOT NULL);
CREATE TABLE loyalty_cards (
    card_id text NOT NULL, tier text NOT NULL, issued_at timestamptz NOT NULL, email text);
CREATE TABLE transactions (
    txn_id bigint NOT NULL, store_id integer NOT NULL, terminal_id text NOT NULL,
    loyalty_card_id text, ts timestamptz NOT NULL, payment_method text,
    total_usd numeric(12,2) NOT NULL);
CREATE TABLE transaction_lines (
    txn_id bigint NOT NULL, line_no integer NOT NULL, sku text NOT NULL,
    qty integer NOT NULL, unit_price_usd numeric(10,2) NOT NULL,
    discount_usd numeric(10,2) NOT NULL DEFAULT 0);
";

const POS_KEYS: &str = "
ALTER TABLE stores ADD PRIMARY KEY (store_id);
ALTER TABLE loyalty_cards ADD PRIMARY KEY (card_id);
ALTER TABLE transactions ADD PRIMARY KEY (txn_id);
ALTER TABLE transaction_lines ADD PRIMARY KEY (txn_id, line_no);
ALTER TABLE transactions ADD FOREIGN KEY (store_id) REFERENCES stores;
ALTER TABLE transactions ADD FOREIGN KEY (loyalty_card_id) REFERENCES loyalty_cards;
ALTER TABLE transaction_lines ADD FOREIGN KEY (txn_id) REFERENCES transactions;
CREATE INDEX transactions_store_ts_idx ON transactions (store_id, ts);
CREATE INDEX transactions_loyalty_card_idx ON transactions (loyalty_card_id);
CREATE INDEX transaction_lines_sku_idx ON transaction_lines (sku);
CREATE INDEX loyalty_cards_email_idx ON loyalty_cards (lower(btrim(email)));
";

fn crm_jobs(spec: &Spec) -> Vec<CopyJob> {
    let order_chunks = rel::chunks(spec.orders);
    vec![
        job(
            "customers",
            spec.customers,
            rel::chunks(spec.customers),
            rel::customers,
        ),
        job("campaigns", spec.campaigns, 1, |s, _| rel::campaigns(s)),
        // Orders and their lines are drawn together; each COPY keeps its half.
        job("orders", spec.orders, order_chunks, |s, c| {
            let o = rel::orders(s, c);
            (o.orders, o.order_rows)
        }),
        job("order_items", spec.orders * 5 / 2, order_chunks, |s, c| {
            let o = rel::orders(s, c);
            (o.items, o.item_rows)
        }),
        job(
            "campaign_contacts",
            spec.customers * spec.campaigns / 5,
            spec.campaigns,
            rel::campaign_contacts,
        ),
    ]
}

fn pos_jobs(spec: &Spec) -> Vec<CopyJob> {
    let txn_chunks = rel::chunks(spec.transactions);
    vec![
        job("stores", spec.stores, 1, |s, _| rel::stores(s)),
        job(
            "loyalty_cards",
            spec.cards(),
            rel::chunks(spec.cards()),
            rel::loyalty_cards,
        ),
        job("transactions", spec.transactions, txn_chunks, |s, c| {
            let t = rel::transactions(s, c);
            (t.txns, t.txn_rows)
        }),
        job(
            "transaction_lines",
            spec.transactions * 5 / 2,
            txn_chunks,
            |s, c| {
                let t = rel::transactions(s, c);
                (t.lines, t.line_rows)
            },
        ),
    ]
}

/// Rows a system is expected to hold (for the progress bar).
pub fn expected_rows(system: System, spec: &Spec) -> u64 {
    let jobs = match system {
        System::Crm => crm_jobs(spec),
        _ => pos_jobs(spec),
    };
    jobs.iter().map(|j| j.rows).sum()
}

/// A PostgreSQL target as given by the user, with a printable form that
/// never contains the password.
pub struct PgTarget {
    pub system: System,
    config: Config,
    pub display: String,
}

impl PgTarget {
    pub fn parse(system: System, url: &str) -> Result<PgTarget> {
        let bad = |reason: String| GenError::Target {
            system: system.name(),
            target: "the given connection string".into(),
            reason,
        };
        let mut config =
            Config::from_str(url).map_err(|e| bad(format!("invalid connection URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config.get_dbname().unwrap_or("(default)").to_string();
        let user = config.get_user().unwrap_or("(default)").to_string();
        let display = format!("postgres://{user}@{host}:{port}/{db}");
        Ok(PgTarget {
            system,
            config,
            display,
        })
    }

    fn error(&self, reason: impl Into<String>) -> GenError {
        GenError::Target {
            system: self.system.name(),
            target: self.display.clone(),
            reason: reason.into(),
        }
    }

    pub async fn connect(&self) -> Result<Client> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| self.error(format!("cannot connect: {}", pg_reason(&e))))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("postgres connection ended: {e}");
            }
        });
        Ok(client)
    }

    /// Refuses a database that holds tables we did not create.
    pub async fn check(&self, client: &Client) -> Result<()> {
        let rows = client
            .query(
                "SELECT n.nspname, c.relname, coalesce(obj_description(c.oid, 'pg_class'), '')
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
                 ORDER BY 1, 2",
                &[],
            )
            .await
            .map_err(|e| self.error(format!("cannot list tables: {}", pg_reason(&e))))?;
        let ours = tables(self.system);
        let foreign: Vec<String> = rows
            .iter()
            .filter(|r| {
                let (schema, name, comment): (String, String, String) =
                    (r.get(0), r.get(1), r.get(2));
                !(schema == "public"
                    && ours.contains(&name.as_str())
                    && comment.starts_with(MARKER))
            })
            .map(|r| format!("{}.{}", r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect();
        if !foreign.is_empty() {
            let shown: Vec<_> = foreign.iter().take(3).cloned().collect();
            return Err(self.error(format!(
                "the database already holds {} table(s) that quipu gen did not create ({}{}); \
                 give an empty database",
                foreign.len(),
                shown.join(", "),
                if foreign.len() > 3 { ", ..." } else { "" }
            )));
        }
        Ok(())
    }

    /// Loads the whole system in one transaction.
    pub async fn load(
        &self,
        client: &mut Client,
        spec: &Spec,
        bar: &ProgressBar,
    ) -> Result<Vec<TableReport>> {
        let (ddl, keys, jobs) = match self.system {
            System::Crm => (CRM_DDL, CRM_KEYS, crm_jobs(spec)),
            _ => (POS_DDL, POS_KEYS, pos_jobs(spec)),
        };
        let fail =
            |what: &str, e: tokio_postgres::Error| self.error(format!("{what}: {}", pg_reason(&e)));
        let tx = client
            .transaction()
            .await
            .map_err(|e| fail("cannot begin", e))?;
        let drop = format!(
            "SET LOCAL synchronous_commit = off; DROP TABLE IF EXISTS {} CASCADE;",
            tables(self.system).join(", ")
        );
        tx.batch_execute(&drop)
            .await
            .map_err(|e| fail("cannot drop the previous generation", e))?;
        tx.batch_execute(ddl)
            .await
            .map_err(|e| fail("cannot create tables", e))?;
        let mut reports = Vec::new();
        for job in &jobs {
            bar.set_message(format!("{} {}", self.system.name(), job.table));
            let started = Instant::now();
            let sink = tx
                .copy_in::<_, Bytes>(&format!("COPY {} FROM STDIN", job.table))
                .await
                .map_err(|e| fail(&format!("cannot start COPY into {}", job.table), e))?;
            futures::pin_mut!(sink);
            let mut hasher = XxHash64::with_seed(0);
            let mut rows = 0;
            for c in 0..job.chunks {
                let (bytes, n) = (job.chunk)(spec, c);
                hasher.write(&bytes);
                rows += n;
                sink.send(Bytes::from(bytes))
                    .await
                    .map_err(|e| fail(&format!("COPY into {} failed", job.table), e))?;
                bar.inc(n);
            }
            let loaded = sink
                .finish()
                .await
                .map_err(|e| fail(&format!("COPY into {} failed", job.table), e))?;
            if loaded != rows {
                return Err(self.error(format!(
                    "COPY into {} stored {loaded} rows, expected {rows}",
                    job.table
                )));
            }
            reports.push(TableReport {
                system: self.system.name(),
                table: job.table.to_string(),
                rows,
                checksum: format!("{:016x}", hasher.finish()),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        bar.set_message(format!("{} keys and indexes", self.system.name()));
        let started = Instant::now();
        tx.batch_execute(keys)
            .await
            .map_err(|e| fail("cannot build keys and indexes", e))?;
        let comments: String = tables(self.system)
            .iter()
            .map(|t| {
                format!(
                    "COMMENT ON TABLE {t} IS '{MARKER}: Yachay-Shop {} (scale {}, seed {})';",
                    self.system.name(),
                    spec.scale,
                    spec.seed
                )
            })
            .collect();
        tx.batch_execute(&comments)
            .await
            .map_err(|e| fail("cannot mark tables", e))?;
        tx.commit().await.map_err(|e| fail("cannot commit", e))?;
        // Fresh statistics: planners (ours included) read them.
        client
            .batch_execute("ANALYZE")
            .await
            .map_err(|e| fail("cannot analyze", e))?;
        tracing::info!(
            system = self.system.name(),
            "keys, indexes and statistics in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        Ok(reports)
    }
}

pub use quipu_connectors::postgres::pg_reason;
