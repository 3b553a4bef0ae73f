//! The lake: clickstream NDJSON by day, Google-Analytics-style CSV by day,
//! Facebook-Ads-style JSON exports by month, the archived sales history as
//! Parquet by year/month, and free-text reviews. Written through
//! `object_store`, so a local directory and an S3 bucket take the same path;
//! every file is streamed in bounded pieces.

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    ArrayRef, Decimal128Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use futures::TryStreamExt;
use indicatif::ProgressBar;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;
use twox_hash::XxHash64;

use crate::error::{GenError, Result};
use crate::model::{
    CATEGORIES, CLICK_DAYS, HISTORY_MONTHS, HISTORY_ORDER_ID_BASE, LIVE_DAYS, Spec, T_CLICK, T_FB,
    T_GA, T_HISTORY, T_REVIEW, T_VISITOR, sku,
};
use crate::rng::{ChunkRng, civil, days_from_civil, h, push_cents, push_date, push_int, push_ts};
use crate::{System, TableReport};

/// Top-level folders we own in the lake.
pub const PREFIXES: &[&str] = &["clickstream", "marketing", "sales_history", "reviews"];
const MARKER: &str = "_quipu_gen.json";
/// Flush file buffers to the store at this size.
const FLUSH: usize = 1 << 20;
/// Lines per sales history Parquet file (more files per month beyond it).
const HISTORY_FILE_ROWS: usize = 200_000;
const HISTORY_BATCH_ROWS: usize = 65_536;
const REVIEWS_PER_FILE: u64 = 100_000;

pub struct LakeTarget {
    pub display: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

/// A file being written: bytes go to the store in pieces and into the
/// table's checksum.
struct Out<'a> {
    writer: BufWriter,
    buf: Vec<u8>,
    hasher: &'a mut XxHash64,
}

impl<'a> Out<'a> {
    fn new(target: &LakeTarget, path: &str, hasher: &'a mut XxHash64) -> Self {
        Out {
            // 5 MiB parts (S3's minimum), two in flight: memory stays flat
            // however big a day of clickstream gets.
            writer: BufWriter::with_capacity(target.store.clone(), target.path(path), 5 << 20)
                .with_max_concurrency(2),
            buf: Vec::with_capacity(FLUSH + 4096),
            hasher,
        }
    }
    async fn maybe_flush(&mut self, target: &LakeTarget) -> Result<()> {
        if self.buf.len() >= FLUSH {
            self.flush(target).await?;
        }
        Ok(())
    }
    async fn flush(&mut self, target: &LakeTarget) -> Result<()> {
        self.hasher.write(&self.buf);
        self.writer
            .write_all(&self.buf)
            .await
            .map_err(|e| target.error(format!("cannot write: {e}")))?;
        self.buf.clear();
        Ok(())
    }
    async fn finish(mut self, target: &LakeTarget) -> Result<()> {
        self.flush(target).await?;
        self.writer
            .shutdown()
            .await
            .map_err(|e| target.error(format!("cannot write: {e}")))
    }
}

impl LakeTarget {
    pub fn parse(raw: &str) -> Result<LakeTarget> {
        let display = crate::mongo::redact_url(raw);
        let bad = |reason: String| GenError::Target {
            system: System::Lake.name(),
            target: if raw.contains("://") {
                display.clone()
            } else {
                raw.to_string()
            },
            reason,
        };
        // A local lake may not exist yet: create it.
        let local = if raw.contains("://") {
            raw.strip_prefix("file://").map(std::path::PathBuf::from)
        } else {
            Some(std::path::PathBuf::from(raw))
        };
        if let Some(path) = &local {
            std::fs::create_dir_all(path)
                .map_err(|e| bad(format!("cannot create {}: {e}", path.display())))?;
        }
        let mut options = std::collections::BTreeMap::new();
        options.insert("url".to_string(), raw.to_string());
        let source = quipu_catalog::SourceDef {
            name: "lake".into(),
            kind: quipu_catalog::SourceKind::Lake,
            options,
        };
        let runtime = datafusion::execution::runtime_env::RuntimeEnv::default();
        let root = quipu_connectors::lake::object_stores::lake_root(
            &source,
            &runtime,
            &quipu_connectors::connector::MemoryStores::default(),
        )
        .map_err(|e| bad(e.to_string()))?;
        Ok(LakeTarget {
            display: if local.is_some() {
                raw.to_string()
            } else {
                display
            },
            store: root.store,
            prefix: root.prefix,
        })
    }

    fn path(&self, rel: &str) -> ObjectPath {
        let mut p = self.prefix.clone();
        for part in rel.split('/') {
            p = p.join(part);
        }
        p
    }

    fn error(&self, reason: impl Into<String>) -> GenError {
        GenError::Target {
            system: System::Lake.name(),
            target: self.display.clone(),
            reason: reason.into(),
        }
    }

    /// Checks we can write, and that the folders we would replace are ours.
    pub async fn check(&self) -> Result<()> {
        let marker = self.store.head(&self.path(MARKER)).await.is_ok();
        if !marker {
            for prefix in PREFIXES {
                let mut listing = self.store.list(Some(&self.path(prefix)));
                if let Some(meta) = listing
                    .try_next()
                    .await
                    .map_err(|e| self.error(format!("cannot list: {e}")))?
                {
                    return Err(self.error(format!(
                        "the lake already holds {} that quipu gen did not write; \
                         give an empty folder or bucket prefix",
                        meta.location
                    )));
                }
            }
        }
        // Probe: write a file, the marker, and keep it.
        self.store
            .put(
                &self.path(MARKER),
                b"{\"generator\": \"quipu gen\"}\n".to_vec().into(),
            )
            .await
            .map_err(|e| self.error(format!("cannot write: {e}")))?;
        Ok(())
    }

    async fn clear(&self) -> Result<()> {
        for prefix in PREFIXES {
            let files: Vec<_> = self
                .store
                .list(Some(&self.path(prefix)))
                .map_ok(|m| m.location)
                .try_collect()
                .await
                .map_err(|e| self.error(format!("cannot list {prefix}: {e}")))?;
            for f in files {
                self.store
                    .delete(&f)
                    .await
                    .map_err(|e| self.error(format!("cannot delete {f}: {e}")))?;
            }
            // Local folders left empty would still show up as tables.
            if let Some(dir) = self.local_dir(prefix) {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        Ok(())
    }

    fn local_dir(&self, rel: &str) -> Option<std::path::PathBuf> {
        self.display
            .strip_prefix("file://")
            .map(std::path::PathBuf::from)
            .or_else(|| (!self.display.contains("://")).then(|| self.display.clone().into()))
            .map(|p| p.join(rel))
    }

    pub async fn load(&self, spec: &Spec, bar: &ProgressBar) -> Result<Vec<TableReport>> {
        self.clear().await?;
        let mut reports = Vec::new();
        let started = Instant::now();
        bar.set_message("lake clickstream");
        let (rows, sum, ga) = self.clickstream(spec, bar).await?;
        reports.push(report("clickstream", rows, sum, started));
        let started = Instant::now();
        bar.set_message("lake marketing");
        let (rows, sum) = self.ga(spec, &ga).await?;
        reports.push(report("marketing.ga", rows, sum, started));
        let started = Instant::now();
        let (rows, sum) = self.fb_ads(spec).await?;
        reports.push(report("marketing.fb_ads", rows, sum, started));
        let started = Instant::now();
        bar.set_message("lake sales_history");
        let (rows, sum) = self.sales_history(spec, bar).await?;
        reports.push(report("sales_history", rows, sum, started));
        let started = Instant::now();
        bar.set_message("lake reviews");
        let (rows, sum) = self.reviews(spec, bar).await?;
        reports.push(report("reviews", rows, sum, started));
        Ok(reports)
    }

    // ---- clickstream -----------------------------------------------------

    async fn clickstream(
        &self,
        spec: &Spec,
        bar: &ProgressBar,
    ) -> Result<(u64, XxHash64, BTreeMap<(i64, String), GaDay>)> {
        let mut hasher = XxHash64::with_seed(0);
        let mut ga: BTreeMap<(i64, String), GaDay> = BTreeMap::new();
        let first = spec.click_start_day();
        // Traffic grows over the window: day weights 0.8 .. 1.2.
        let weight = |d: i64| 0.8 + 0.4 * d as f64 / CLICK_DAYS as f64;
        let total_w: f64 = (0..CLICK_DAYS).map(weight).sum();
        let mut cum = 0.0;
        let mut late: Vec<u8> = Vec::new();
        let mut rows = 0;
        for d in 0..CLICK_DAYS {
            let before = (spec.click_events as f64 * cum / total_w).round() as u64;
            cum += weight(d);
            let after = (spec.click_events as f64 * cum / total_w).round() as u64;
            let day = first + d;
            let mut path = Vec::new();
            path.extend_from_slice(b"clickstream/date=");
            push_date(&mut path, day);
            path.extend_from_slice(b"/part-00000.ndjson");
            let mut out = Out::new(self, std::str::from_utf8(&path).unwrap(), &mut hasher);
            // Events that arrived late were filed with the next day.
            out.buf.append(&mut late);
            let mut day_gen = DayGen::new(spec, day);
            let mut emitted = 0;
            while emitted < after - before {
                let budget = after - before - emitted;
                emitted += day_gen.session(budget, &mut out.buf, &mut late, &mut ga);
                out.maybe_flush(self).await?;
            }
            if d == CLICK_DAYS - 1 {
                out.buf.append(&mut late);
            }
            out.finish(self).await?;
            rows += emitted;
            bar.inc(emitted);
        }
        Ok((rows, hasher, ga))
    }

    // ---- marketing -------------------------------------------------------

    async fn ga(
        &self,
        spec: &Spec,
        clicks: &BTreeMap<(i64, String), GaDay>,
    ) -> Result<(u64, XxHash64)> {
        let mut hasher = XxHash64::with_seed(0);
        let mut rows = 0;
        let click_start = spec.click_start_day();
        for day in spec.live_start_day()..crate::model::as_of_day() {
            let campaigns = spec.campaigns_on(day);
            if campaigns.is_empty() {
                continue;
            }
            let mut path = Vec::new();
            path.extend_from_slice(b"marketing/ga/date=");
            push_date(&mut path, day);
            path.extend_from_slice(b"/ga_export.csv");
            let mut out = Out::new(self, std::str::from_utf8(&path).unwrap(), &mut hasher);
            out.buf
                .extend_from_slice(b"date,utm_campaign,sessions,users,conversions,revenue_usd\n");
            for c in campaigns {
                let x = h(spec.seed, T_GA, day as u64, c.id);
                // GA samples: within a few percent of the clickstream where
                // we have it, a budget-driven guess before that.
                let (sessions, conversions, revenue) = if day >= click_start {
                    let agg = clicks
                        .get(&(day, c.utm.clone()))
                        .cloned()
                        .unwrap_or_default();
                    let f = 0.95 + (x % 100) as f64 / 1000.0;
                    (
                        (agg.sessions as f64 * f).round() as i64,
                        agg.purchases as i64,
                        agg.revenue_cents,
                    )
                } else {
                    let days = (c.end_day - c.start_day + 1) as f64;
                    let s = (c.budget_cents as f64 / 100.0 / days
                        * spec.scale.max(0.01)
                        * 0.5
                        * (0.7 + (x % 60) as f64 / 100.0)) as i64;
                    let conv = s * (2 + (x >> 8) % 4) as i64 / 100;
                    (s, conv, conv * (3000 + ((x >> 16) % 6000) as i64))
                };
                push_date(&mut out.buf, day);
                out.buf.push(b',');
                out.buf.extend_from_slice(c.utm.as_bytes());
                out.buf.push(b',');
                push_int(&mut out.buf, sessions);
                out.buf.push(b',');
                push_int(&mut out.buf, (sessions as f64 * 0.85).round() as i64);
                out.buf.push(b',');
                push_int(&mut out.buf, conversions);
                out.buf.push(b',');
                push_cents(&mut out.buf, revenue);
                out.buf.push(b'\n');
                rows += 1;
            }
            out.finish(self).await?;
        }
        Ok((rows, hasher))
    }

    async fn fb_ads(&self, spec: &Spec) -> Result<(u64, XxHash64)> {
        let mut hasher = XxHash64::with_seed(0);
        let mut rows = 0;
        let campaigns: Vec<_> = (0..spec.campaigns)
            .map(|c| spec.campaign(c))
            .filter(|c| matches!(c.channel, "facebook" | "instagram"))
            .collect();
        // One export file per month.
        let mut by_month: BTreeMap<(i64, u32), Vec<u8>> = BTreeMap::new();
        for c in &campaigns {
            let days = c.end_day - c.start_day + 1;
            for day in c.start_day..=c.end_day {
                let x = h(spec.seed, T_FB, day as u64, c.id);
                let spend = c.budget_cents / days * (80 + (x % 40) as i64) / 100;
                let impressions = spend / 100 * (150 + ((x >> 8) % 100) as i64);
                let clicks = impressions * (8 + ((x >> 16) % 20) as i64) / 1000;
                let (y, m, _) = civil(day);
                let buf = by_month.entry((y, m)).or_default();
                buf.extend_from_slice(b"{\"date\":\"");
                push_date(buf, day);
                buf.extend_from_slice(b"\",\"campaign_name\":");
                json_str(
                    buf,
                    &format!(
                        "{} - {}",
                        c.name,
                        if c.channel == "facebook" { "FB" } else { "IG" }
                    ),
                );
                buf.extend_from_slice(b",\"utm_campaign\":");
                // Hand-typed in the ads manager: sometimes in capitals.
                let utm = if x.is_multiple_of(33) {
                    c.utm.to_uppercase()
                } else {
                    c.utm.clone()
                };
                json_str(buf, &utm);
                buf.extend_from_slice(b",\"impressions\":");
                push_int(buf, impressions);
                buf.extend_from_slice(b",\"clicks\":");
                push_int(buf, clicks);
                buf.extend_from_slice(b",\"spend_usd\":");
                push_cents(buf, spend);
                buf.extend_from_slice(b"}\n");
                rows += 1;
            }
        }
        for ((y, m), bytes) in by_month {
            let mut out = Out::new(
                self,
                &format!("marketing/fb_ads/fb_ads_{y}_{m:02}.json"),
                &mut hasher,
            );
            out.buf = bytes;
            out.finish(self).await?;
        }
        Ok((rows, hasher))
    }

    // ---- sales history ---------------------------------------------------

    async fn sales_history(&self, spec: &Spec, bar: &ProgressBar) -> Result<(u64, XxHash64)> {
        let mut hasher = XxHash64::with_seed(0);
        let first_month = {
            let (y, m, _) = civil(spec.live_start_day());
            y * 12 + m as i64 - 1 - HISTORY_MONTHS
        };
        // Growth over the years and the season of `day_weight`: busy
        // Novembers and Decembers, a quiet January.
        let weight = |i: i64| {
            let month = (first_month + i) % 12 + 1;
            let season = match month {
                11 => 1.15,
                12 => 1.6,
                1 => 0.8,
                _ => 1.0,
            };
            (0.7 + 0.3 * i as f64 / HISTORY_MONTHS as f64) * season
        };
        let total_w: f64 = (0..HISTORY_MONTHS).map(weight).sum();
        let mut cum = 0.0;
        let mut lines_total = 0u64;
        let mut next_id = HISTORY_ORDER_ID_BASE;
        for i in 0..HISTORY_MONTHS {
            let before = (spec.history_orders as f64 * cum / total_w).round() as u64;
            cum += weight(i);
            let after = (spec.history_orders as f64 * cum / total_w).round() as u64;
            let (y, m) = ((first_month + i) / 12, ((first_month + i) % 12 + 1) as u32);
            let start = days_from_civil(y, m, 1);
            let end = if m == 12 {
                days_from_civil(y + 1, 1, 1)
            } else {
                days_from_civil(y, m + 1, 1)
            };
            let mut rng = ChunkRng::new(spec.seed, T_HISTORY, i as u64);
            let mut file = 0;
            let mut batch = HistoryBatch::default();
            let mut writer: Option<ArrowWriter<Vec<u8>>> = None;
            let mut file_rows = 0;
            for _ in before..after {
                next_id += 1;
                let customer = 1 + rng.skewed(spec.customers, 1.3) as i64;
                let channel = if rng.chance(0.55) { "web" } else { "app" };
                // Within the month, weekends and paydays are busier.
                let day = loop {
                    let day = start + rng.range(0, end - start - 1);
                    if rng.unit() * crate::model::MAX_DAY_WEIGHT
                        < crate::model::day_weight(day, false)
                    {
                        break day;
                    }
                };
                let secs = day * 86_400 + rng.range(0, 86_399);
                let status = if rng.chance(0.93) {
                    "delivered"
                } else if rng.chance(0.5) {
                    "cancelled"
                } else {
                    "returned"
                };
                let lines = 1 + rng.below(4);
                let items: Vec<(u64, i64, i64)> = (0..lines)
                    .map(|_| {
                        let k = rng.skewed(spec.products, 1.6);
                        (
                            k,
                            1 + rng.skewed(3, 2.0) as i64,
                            spec.price_cents(k) * 95 / 100,
                        )
                    })
                    .collect();
                let total: i64 = items.iter().map(|(_, q, p)| q * p).sum();
                for (n, (k, qty, price)) in items.into_iter().enumerate() {
                    lines_total += 1;
                    batch.push(
                        next_id,
                        customer,
                        channel,
                        secs,
                        status,
                        n as i32 + 1,
                        &sku(k),
                        qty,
                        price,
                        total,
                    );
                }
                if batch.len() >= HISTORY_BATCH_ROWS {
                    file_rows += batch.len();
                    self.write_batch(&mut writer, &mut batch)?;
                    if file_rows >= HISTORY_FILE_ROWS {
                        self.put_parquet(&mut writer, y, m, file, &mut hasher)
                            .await?;
                        file += 1;
                        file_rows = 0;
                    }
                }
            }
            if !batch.is_empty() {
                self.write_batch(&mut writer, &mut batch)?;
            }
            self.put_parquet(&mut writer, y, m, file, &mut hasher)
                .await?;
            bar.inc(after - before);
        }
        Ok((lines_total, hasher))
    }

    fn write_batch(
        &self,
        writer: &mut Option<ArrowWriter<Vec<u8>>>,
        batch: &mut HistoryBatch,
    ) -> Result<()> {
        let rb = batch.finish();
        let fail = |e: datafusion::parquet::errors::ParquetError| {
            self.error(format!("cannot encode Parquet: {e}"))
        };
        if writer.is_none() {
            let props = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_max_row_group_row_count(Some(HISTORY_BATCH_ROWS))
                .build();
            *writer =
                Some(ArrowWriter::try_new(Vec::new(), rb.schema(), Some(props)).map_err(fail)?);
        }
        writer.as_mut().unwrap().write(&rb).map_err(fail)
    }

    async fn put_parquet(
        &self,
        writer: &mut Option<ArrowWriter<Vec<u8>>>,
        y: i64,
        m: u32,
        file: u32,
        hasher: &mut XxHash64,
    ) -> Result<()> {
        let Some(w) = writer.take() else {
            return Ok(());
        };
        let bytes = w
            .into_inner()
            .map_err(|e| self.error(format!("cannot encode Parquet: {e}")))?;
        hasher.write(&bytes);
        let path = self.path(&format!(
            "sales_history/year={y}/month={m:02}/part-{file:05}.parquet"
        ));
        self.store
            .put(&path, bytes.into())
            .await
            .map_err(|e| self.error(format!("cannot write {path}: {e}")))?;
        Ok(())
    }

    // ---- reviews ---------------------------------------------------------

    async fn reviews(&self, spec: &Spec, bar: &ProgressBar) -> Result<(u64, XxHash64)> {
        let mut hasher = XxHash64::with_seed(0);
        let start = spec.live_start_day() - 365;
        for f in 0..spec.reviews.div_ceil(REVIEWS_PER_FILE) {
            let mut rng = ChunkRng::new(spec.seed, T_REVIEW, f);
            let mut out = Out::new(self, &format!("reviews/part-{f:05}.ndjson"), &mut hasher);
            let range = f * REVIEWS_PER_FILE..((f + 1) * REVIEWS_PER_FILE).min(spec.reviews);
            let n = range.end - range.start;
            for r in range {
                let k = rng.skewed(spec.products, 1.6);
                let p = spec.product(k);
                let rating = *rng.pick(&[5, 5, 5, 4, 4, 4, 3, 2, 1, 5]);
                let b = &mut out.buf;
                b.extend_from_slice(b"{\"review_id\":");
                push_int(b, r as i64 + 1);
                b.extend_from_slice(b",\"sku\":");
                json_str(b, &p.sku);
                b.extend_from_slice(b",\"customer_id\":");
                if rng.chance(0.05) {
                    b.extend_from_slice(b"null");
                } else {
                    push_int(b, 1 + rng.skewed(spec.customers, 1.3) as i64);
                }
                b.extend_from_slice(b",\"rating\":");
                push_int(b, rating);
                b.extend_from_slice(b",\"body\":");
                let body = review_body(&p.name, p.category, rating, &mut rng);
                json_str(b, &body);
                b.extend_from_slice(b",\"ts\":\"");
                let secs = (start + rng.range(0, LIVE_DAYS + 364)) * 86_400 + rng.range(0, 86_399);
                push_ts(b, secs, b'T');
                b.extend_from_slice(b"Z\"}\n");
                out.maybe_flush(self).await?;
            }
            out.finish(self).await?;
            bar.inc(n);
        }
        Ok((spec.reviews, hasher))
    }
}

fn report(table: &str, rows: u64, hasher: XxHash64, started: Instant) -> TableReport {
    TableReport {
        system: System::Lake.name(),
        table: table.to_string(),
        rows,
        checksum: format!("{:016x}", hasher.finish()),
        seconds: started.elapsed().as_secs_f64(),
    }
}

pub fn expected_rows(spec: &Spec) -> u64 {
    spec.click_events + spec.history_orders + spec.reviews
}

/// A JSON string with the escapes JSON requires.
fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn review_body(name: &str, category: &str, rating: i64, rng: &mut ChunkRng) -> String {
    let opening = match rating {
        5 => *rng.pick(&[
            "Excellent!",
            "Love it.",
            "Muy bueno, 100% recomendado.",
            "Best purchase this year",
        ]),
        4 => *rng.pick(&["Pretty good.", "Good value for money.", "Bueno."]),
        3 => *rng.pick(&["It's OK.", "Average.", "Cumple, nada más."]),
        2 => *rng.pick(&["Disappointed.", "Not what I expected.", "Meh"]),
        _ => *rng.pick(&["Terrible.", "Do NOT buy.", "Pésimo \"producto\"."]),
    };
    let detail = match category {
        "apparel" | "footwear" => *rng.pick(&[
            "The size runs small.",
            "Fits perfectly.",
            "Colour faded after one wash.",
        ]),
        "electronics" => *rng.pick(&[
            "Battery lasts all day.",
            "Stopped working after a week.",
            "Setup took 2 minutes.",
        ]),
        "grocery" => *rng.pick(&[
            "Fresh and tasty.",
            "Arrived close to expiry.",
            "Great aroma ☕.",
        ]),
        _ => *rng.pick(&[
            "Arrived on time.",
            "Packaging was damaged.",
            "Exactly as pictured.",
        ]),
    };
    if rng.chance(0.3) {
        format!("{opening} {detail}\nBought the {name} for my family.")
    } else {
        format!("{opening} {detail}")
    }
}

/// Per (day, utm_campaign) totals of the clickstream, for the GA export.
#[derive(Debug, Clone, Default)]
pub struct GaDay {
    pub sessions: u64,
    pub purchases: u64,
    pub revenue_cents: i64,
}

/// Generates one day's sessions.
struct DayGen<'a> {
    spec: &'a Spec,
    day: i64,
    rng: ChunkRng,
    campaigns: Vec<crate::model::Campaign>,
    session: u64,
}

const DEVICES: &[&str] = &["web", "ios", "android"];

impl<'a> DayGen<'a> {
    fn new(spec: &'a Spec, day: i64) -> Self {
        DayGen {
            spec,
            day,
            rng: ChunkRng::new(spec.seed, T_CLICK, day as u64),
            campaigns: spec.campaigns_on(day),
            session: 0,
        }
    }

    /// Writes one session of at most `budget` events; returns how many.
    fn session(
        &mut self,
        budget: u64,
        out: &mut Vec<u8>,
        late: &mut Vec<u8>,
        ga: &mut BTreeMap<(i64, String), GaDay>,
    ) -> u64 {
        let spec = self.spec;
        let rng = &mut self.rng;
        self.session += 1;
        let session_id = format!(
            "s{:015x}",
            h(spec.seed, T_CLICK, self.day as u64, self.session) >> 4
        );
        let device_ix = rng.below(3);
        let device = DEVICES[device_ix as usize];
        // Known customers browse from their own devices (a stable cookie per
        // device); others are anonymous visitors who never log in.
        let (customer, anon, login_at) = if rng.chance(0.65) {
            let i = rng.skewed(spec.customers, 1.3);
            let anon = format!(
                "a{:012x}",
                h(spec.seed, T_VISITOR, i, device_ix) & 0xffff_ffff_ffff
            );
            let u = rng.unit();
            let login_at = if u < 0.5 {
                0
            } else if u < 0.7 {
                1 + rng.below(2)
            } else {
                u64::MAX
            };
            (Some(i + 1), anon, login_at)
        } else {
            let v = rng.below(spec.customers * 2);
            let anon = format!(
                "a{:012x}",
                h(spec.seed, T_VISITOR, v + (1 << 40), 9) & 0xffff_ffff_ffff
            );
            (None, anon, u64::MAX)
        };
        let utm = if !self.campaigns.is_empty() && rng.chance(0.2) {
            let c = rng.pick(&self.campaigns).clone();
            Some(c)
        } else {
            None
        };
        // The funnel: landing, product views, maybe cart, checkout, purchase.
        let mut events: Vec<(&str, Option<String>)> = Vec::new();
        let category = crate::rng::weighted(CATEGORIES, rng.unit());
        events.push(("page_view", None));
        let views = 1 + rng.below(4);
        let mut viewed = Vec::new();
        for _ in 0..views {
            let sku = if rng.chance(0.03) {
                // Unknown SKUs: retired products, typos in tracking tags.
                format!("SKU-9{:05}", rng.below(100_000))
            } else {
                sku(rng.skewed(spec.products, 1.6))
            };
            viewed.push(sku.clone());
            events.push(("product_view", Some(sku)));
        }
        let mut cart_value = 0;
        if rng.chance(0.3) {
            let sku = viewed[rng.below(viewed.len() as u64) as usize].clone();
            if let Some(k) = sku
                .strip_prefix("SKU-")
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|k| *k >= 1 && *k <= spec.products)
            {
                cart_value = spec.price_cents(k - 1);
            }
            events.push(("add_to_cart", Some(sku)));
            if rng.chance(0.5) {
                events.push(("checkout", None));
                if rng.chance(0.7) {
                    events.push(("purchase", None));
                }
            }
        }
        events.truncate(budget as usize);
        let purchased = events.iter().any(|(t, _)| *t == "purchase");
        if let Some(c) = &utm {
            let agg = ga.entry((self.day, c.utm.clone())).or_default();
            agg.sessions += 1;
            if purchased {
                agg.purchases += 1;
                agg.revenue_cents += cart_value;
            }
        }
        let hour = crate::rng::weighted(
            &[
                (8i64, 4),
                (10, 8),
                (12, 10),
                (14, 9),
                (16, 9),
                (18, 12),
                (20, 14),
                (22, 8),
                (0, 3),
                (4, 1),
            ],
            rng.unit(),
        );
        let mut ms = (self.day * 86_400 + hour * 3600 + rng.range(0, 7199)) * 1000;
        let n = events.len() as u64;
        for (e, (kind, sku)) in events.into_iter().enumerate() {
            let duration = 2_000 + rng.below(90_000) as i64;
            let is_late = rng.chance(0.02);
            let b: &mut Vec<u8> = if is_late { &mut *late } else { &mut *out };
            b.extend_from_slice(b"{\"event_id\":\"");
            b.extend_from_slice(
                format!(
                    "{:016x}",
                    h(
                        spec.seed,
                        T_CLICK,
                        ((self.day as u64) << 32) | self.session,
                        e as u64 + 1
                    )
                )
                .as_bytes(),
            );
            b.extend_from_slice(b"\",\"ts\":\"");
            push_ts(b, ms / 1000, b'T');
            b.push(b'.');
            let frac = (ms % 1000) as u32;
            b.extend_from_slice(format!("{frac:03}").as_bytes());
            b.extend_from_slice(b"Z\",\"session_id\":");
            json_str(b, &session_id);
            b.extend_from_slice(b",\"customer_id\":");
            match customer.filter(|_| (e as u64) >= login_at) {
                Some(c) => push_int(b, c as i64),
                None => b.extend_from_slice(b"null"),
            }
            b.extend_from_slice(b",\"anonymous_id\":");
            json_str(b, &anon);
            b.extend_from_slice(b",\"device\":\"");
            b.extend_from_slice(device.as_bytes());
            b.extend_from_slice(b"\",\"event_type\":\"");
            b.extend_from_slice(kind.as_bytes());
            b.extend_from_slice(b"\",\"sku\":");
            match &sku {
                Some(s) => json_str(b, s),
                None => b.extend_from_slice(b"null"),
            }
            b.extend_from_slice(b",\"page\":");
            let page = match (kind, &sku) {
                _ if e == 0 && rng.chance(0.01) => None,
                ("page_view", _) => Some(format!("/c/{category}")),
                (_, Some(s)) => Some(format!("/p/{s}")),
                ("checkout", _) => Some("/checkout".to_string()),
                _ => Some("/thank-you".to_string()),
            };
            match page {
                Some(p) => json_str(b, &p),
                None => b.extend_from_slice(b"null"),
            }
            b.extend_from_slice(b",\"duration_ms\":");
            push_int(b, duration);
            b.extend_from_slice(b",\"utm_source\":");
            match &utm {
                Some(c) => json_str(b, c.channel),
                None => b.extend_from_slice(b"null"),
            }
            b.extend_from_slice(b",\"utm_campaign\":");
            match &utm {
                Some(c) if rng.chance(0.02) => json_str(b, &c.utm.to_uppercase()),
                Some(c) => json_str(b, &c.utm),
                None => b.extend_from_slice(b"null"),
            }
            b.extend_from_slice(b"}\n");
            ms += duration;
        }
        n
    }
}

/// Arrow builders for one batch of sales history lines.
#[derive(Default)]
struct HistoryBatch {
    order_id: Int64Builder,
    customer_id: Int64Builder,
    channel: StringBuilder,
    ordered_at: TimestampMicrosecondBuilder,
    status: StringBuilder,
    line_no: Int32Builder,
    sku: StringBuilder,
    qty: Int32Builder,
    unit_price: Decimal128Builder,
    total: Decimal128Builder,
    len: usize,
}

impl HistoryBatch {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        order_id: u64,
        customer: i64,
        channel: &str,
        secs: i64,
        status: &str,
        line_no: i32,
        sku: &str,
        qty: i64,
        price: i64,
        total: i64,
    ) {
        self.order_id.append_value(order_id as i64);
        self.customer_id.append_value(customer);
        self.channel.append_value(channel);
        self.ordered_at.append_value(secs * 1_000_000);
        self.status.append_value(status);
        self.line_no.append_value(line_no);
        self.sku.append_value(sku);
        self.qty.append_value(qty as i32);
        self.unit_price.append_value(price as i128);
        self.total.append_value(total as i128);
        self.len += 1;
    }
    fn len(&self) -> usize {
        self.len
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn finish(&mut self) -> RecordBatch {
        let utc: Arc<str> = "UTC".into();
        let schema = Arc::new(Schema::new(vec![
            Field::new("order_id", DataType::Int64, false),
            Field::new("customer_id", DataType::Int64, false),
            Field::new("channel", DataType::Utf8, false),
            Field::new(
                "ordered_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some(utc.clone())),
                false,
            ),
            Field::new("status", DataType::Utf8, false),
            Field::new("line_no", DataType::Int32, false),
            Field::new("sku", DataType::Utf8, false),
            Field::new("qty", DataType::Int32, false),
            Field::new("unit_price_usd", DataType::Decimal128(10, 2), false),
            Field::new("order_total_usd", DataType::Decimal128(12, 2), false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.order_id.finish()),
            Arc::new(self.customer_id.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.ordered_at.finish().with_timezone(utc)),
            Arc::new(self.status.finish()),
            Arc::new(self.line_no.finish()),
            Arc::new(self.sku.finish()),
            Arc::new(self.qty.finish()),
            Arc::new(
                self.unit_price
                    .finish()
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(self.total.finish().with_precision_and_scale(12, 2).unwrap()),
        ];
        self.len = 0;
        RecordBatch::try_new(schema, columns).expect("history batch matches its schema")
    }
}
