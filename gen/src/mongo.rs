//! The inventory system in MongoDB: products with semi-structured
//! attributes, one stock document per SKU per location, stock movements.
//! Loaded with unordered bulk inserts; `_id`s are derived from the seed so
//! two runs give the same documents.

use std::hash::Hasher;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use mongodb::bson::{Bson, DateTime, Document, doc, oid::ObjectId};
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};
use twox_hash::XxHash64;

use crate::error::{GenError, Result};
use crate::model::{Spec, T_MOVE, T_PRODUCT, T_STOCK, WAREHOUSE_ID_BASE, as_of_day, sku};
use crate::rng::{ChunkRng, h, unit};
use crate::{System, TableReport};

pub const COLLECTIONS: &[&str] = &["products", "stock", "movements"];
/// Marker collection: its presence says the database is ours to replace.
const MARKER: &str = "_quipu_gen";
/// Documents per insert_many call (the driver splits further if needed).
const BATCH: u64 = 5000;
/// Products per stock chunk (each gives one document per location).
const STOCK_PRODUCTS: u64 = 100;

fn object_id(secs: i64, x: u64) -> ObjectId {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&(secs as u32).to_be_bytes());
    bytes[4..].copy_from_slice(&x.to_be_bytes());
    ObjectId::from_bytes(bytes)
}

fn millis(secs: i64) -> DateTime {
    DateTime::from_millis(secs * 1000)
}

/// `{ type, id }` of location `l`: stores first, then warehouses.
fn location(spec: &Spec, l: u64) -> Document {
    if l < spec.stores {
        doc! { "type": "store", "id": (l + 1) as i64 }
    } else {
        doc! { "type": "warehouse", "id": (WAREHOUSE_ID_BASE + 1 + l - spec.stores) as i64 }
    }
}

fn attributes(category: &str, x: u64) -> Document {
    let pick = |items: &[&str], shift: u32| {
        items[((x >> shift) % items.len() as u64) as usize].to_string()
    };
    let colors = ["black", "white", "red", "blue", "green", "ochre", "grey"];
    match category {
        "apparel" => doc! {
            "size": pick(&["XS", "S", "M", "L", "XL"], 3),
            "color": pick(&colors, 7),
            "material": pick(&["alpaca", "cotton", "polyester", "wool"], 11),
        },
        "footwear" => doc! {
            "size_eu": 36 + ((x >> 3) % 11) as i32,
            "color": pick(&colors, 7),
            "waterproof": (x >> 13) & 1 == 1,
        },
        "electronics" => {
            let connectivity: Vec<Bson> = ["bluetooth", "usb-c", "wifi"]
                [..1 + ((x >> 5) % 3) as usize]
                .iter()
                .map(|s| Bson::String(s.to_string()))
                .collect();
            let warranty = [6, 12, 24][((x >> 3) % 3) as usize];
            let mut d = doc! {
                "warranty_months": warranty,
                "voltage": "220V",
                "connectivity": connectivity,
            };
            if (x >> 9).is_multiple_of(3) {
                d.insert("battery_mah", 1000 + ((x >> 12) % 9000) as i32);
            }
            d
        }
        "home" => doc! {
            "dimensions_cm": {
                "w": 10 + ((x >> 3) % 190) as i32,
                "h": 5 + ((x >> 11) % 120) as i32,
                "d": 5 + ((x >> 19) % 80) as i32,
            },
            "material": pick(&["wood", "ceramic", "cotton", "steel", "glass"], 27),
        },
        "beauty" => doc! {
            "volume_ml": 15 + ((x >> 3) % 500) as i32,
            "skin_type": pick(&["all", "dry", "oily", "sensitive"], 13),
        },
        "grocery" => doc! {
            "weight_g": 100 + ((x >> 3) % 1900) as i32,
            "organic": (x >> 15) & 1 == 1,
            "origin": pick(&["Cusco", "Puno", "Junin", "Amazonas", "Piura"], 17),
        },
        "toys" => doc! {
            "age_min": ((x >> 3) % 12) as i32,
            "batteries_required": (x >> 9).is_multiple_of(4),
        },
        _ => doc! {
            "weight_kg": (((x >> 3) % 2000) as f64) / 100.0 + 0.1,
            "color": pick(&colors, 7),
        },
    }
}

pub fn products(spec: &Spec, chunk: u64) -> Vec<Document> {
    let range = chunk * BATCH..((chunk + 1) * BATCH).min(spec.products);
    range
        .map(|k| {
            let p = spec.product(k);
            let x = h(spec.seed, T_PRODUCT, k, 2);
            let tags: Vec<Bson> = ["new", "bestseller", "eco", "sale", "handmade", "imported"]
                .iter()
                .enumerate()
                .filter(|(i, _)| (x >> (i * 3)).is_multiple_of(4))
                .map(|(_, t)| Bson::String(t.to_string()))
                .collect();
            let mut d = doc! {
                "_id": object_id(1_600_000_000 + k as i64, x),
                "sku": &p.sku,
                "name": &p.name,
                "category": p.category,
            };
            // A few products were entered without a brand.
            if !x.is_multiple_of(50) {
                d.insert("brand", p.brand);
            }
            d.insert("price_usd", p.price_cents as f64 / 100.0);
            d.insert(
                "attributes",
                attributes(p.category, h(spec.seed, T_PRODUCT, k, 3)),
            );
            d.insert("tags", tags);
            d.insert("active", unit(x) > 0.03);
            d
        })
        .collect()
}

pub fn stock_chunks(spec: &Spec) -> u64 {
    spec.products.div_ceil(STOCK_PRODUCTS)
}

pub fn stock(spec: &Spec, chunk: u64) -> Vec<Document> {
    let now = as_of_day() * 86_400;
    let range = chunk * STOCK_PRODUCTS..((chunk + 1) * STOCK_PRODUCTS).min(spec.products);
    let mut docs = Vec::with_capacity((STOCK_PRODUCTS * spec.locations()) as usize);
    for k in range {
        // Popular products (low indexes) sell faster and run lower.
        let popularity = 1.0 - (k as f64 / spec.products as f64);
        for l in 0..spec.locations() {
            let x = h(spec.seed, T_STOCK, k, l);
            let warehouse = l >= spec.stores;
            let (cap, reorder) = if warehouse {
                (2000, 200)
            } else {
                (60, 5 + (x % 16) as i64)
            };
            let mut on_hand = ((unit(x) * (1.0 - 0.6 * popularity)) * cap as f64) as i64;
            // Inventory systems drift: a few counts went negative.
            if (x >> 20).is_multiple_of(300) {
                on_hand = -(((x >> 30) % 5) as i64) - 1;
            }
            let mut d = doc! {
                "_id": object_id(now - 86_400, x),
                "sku": sku(k),
                "location": location(spec, l),
                "on_hand": on_hand,
            };
            if !(x >> 40).is_multiple_of(100) {
                d.insert(
                    "reserved",
                    (on_hand.max(0) as u64 * ((x >> 44) % 20) / 100) as i64,
                );
            }
            d.insert("reorder_point", reorder);
            d.insert(
                "updated_at",
                millis(now - 1 - ((x >> 8) % (7 * 86_400)) as i64),
            );
            docs.push(d);
        }
    }
    docs
}

pub fn movements(spec: &Spec, chunk: u64) -> Vec<Document> {
    let mut rng = ChunkRng::new(spec.seed, T_MOVE, chunk);
    let start = (as_of_day() - 90) * 86_400;
    let range = chunk * BATCH..((chunk + 1) * BATCH).min(spec.movements);
    range
        .map(|m| {
            let k = rng.skewed(spec.products, 1.6);
            let l = rng.below(spec.locations());
            let u = rng.unit();
            let (kind, qty) = if u < 0.6 {
                ("sale", -(1 + rng.below(3) as i64))
            } else if u < 0.8 {
                ("receipt", 10 + rng.below(200) as i64)
            } else if u < 0.9 {
                (
                    "transfer",
                    if rng.chance(0.5) { 1 } else { -1 } * (1 + rng.below(40) as i64),
                )
            } else {
                ("adjustment", rng.range(-5, 5))
            };
            let ts = start + rng.range(0, 90 * 86_400 - 1);
            doc! {
                "_id": object_id(ts, h(spec.seed, T_MOVE, m, 0)),
                "sku": sku(k),
                "location": location(spec, l),
                "kind": kind,
                "qty": qty,
                "ts": millis(ts),
            }
        })
        .collect()
}

pub fn expected_docs(spec: &Spec) -> u64 {
    spec.products + spec.products * spec.locations() + spec.movements
}

pub struct MongoTarget {
    options: ClientOptions,
    database: String,
    pub display: String,
}

impl MongoTarget {
    pub async fn parse(uri: &str) -> Result<MongoTarget> {
        let display = redact_url(uri);
        let bad = |reason: String| GenError::Target {
            system: System::Inventory.name(),
            target: display.clone(),
            reason,
        };
        let mut options = ClientOptions::parse(uri)
            .await
            .map_err(|e| bad(format!("invalid connection URL: {e}")))?;
        let database = options
            .default_database
            .clone()
            .unwrap_or_else(|| "inventory".to_string());
        options.app_name = Some("quipu gen".into());
        options
            .connect_timeout
            .get_or_insert(Duration::from_secs(5));
        options
            .server_selection_timeout
            .get_or_insert(Duration::from_secs(10));
        // One host and no replica set named: talk to that server directly.
        if options.hosts.len() == 1 && options.repl_set_name.is_none() {
            options.direct_connection.get_or_insert(true);
        }
        Ok(MongoTarget {
            options,
            database,
            display,
        })
    }

    fn error(&self, reason: impl Into<String>) -> GenError {
        GenError::Target {
            system: System::Inventory.name(),
            target: self.display.clone(),
            reason: reason.into(),
        }
    }

    pub async fn connect(&self) -> Result<Database> {
        let client = Client::with_options(self.options.clone())
            .map_err(|e| self.error(format!("cannot connect: {e}")))?;
        let db = client.database(&self.database);
        db.run_command(doc! { "ping": 1 })
            .await
            .map_err(|e| self.error(format!("cannot connect: {}", mongo_reason(&e))))?;
        Ok(db)
    }

    /// Refuses a database that holds collections we did not create.
    pub async fn check(&self, db: &Database) -> Result<()> {
        let names = db
            .list_collection_names()
            .await
            .map_err(|e| self.error(format!("cannot list collections: {}", mongo_reason(&e))))?;
        let marked = names.iter().any(|n| n == MARKER);
        let foreign: Vec<&String> = names
            .iter()
            .filter(|n| {
                n.as_str() != MARKER
                    && !n.starts_with("system.")
                    && !(marked && COLLECTIONS.contains(&n.as_str()))
            })
            .collect();
        if !foreign.is_empty() {
            let shown: Vec<&str> = foreign.iter().take(3).map(|s| s.as_str()).collect();
            return Err(self.error(format!(
                "database `{}` already holds {} collection(s) that quipu gen did not create ({}); \
                 give an empty database",
                self.database,
                foreign.len(),
                shown.join(", ")
            )));
        }
        Ok(())
    }

    pub async fn load(
        &self,
        db: &Database,
        spec: &Spec,
        bar: &ProgressBar,
    ) -> Result<Vec<TableReport>> {
        let fail = |what: String, e: mongodb::error::Error| {
            self.error(format!("{what}: {}", mongo_reason(&e)))
        };
        // Marker first: a run that dies half-way can still be replaced.
        db.collection::<Document>(MARKER)
            .delete_many(doc! {})
            .await
            .map_err(|e| fail("cannot write the marker".into(), e))?;
        db.collection::<Document>(MARKER)
            .insert_one(
                doc! { "generator": "quipu gen", "scale": spec.scale, "seed": spec.seed as i64 },
            )
            .await
            .map_err(|e| fail("cannot write the marker".into(), e))?;
        let mut reports = Vec::new();
        type DocsFn = fn(&Spec, u64) -> Vec<Document>;
        let jobs: [(&str, u64, DocsFn); 3] = [
            ("products", spec.products.div_ceil(BATCH), products),
            ("stock", stock_chunks(spec), stock),
            ("movements", spec.movements.div_ceil(BATCH), movements),
        ];
        for (name, chunks, make) in jobs {
            bar.set_message(format!("inventory {name}"));
            let started = Instant::now();
            let coll = db.collection::<Document>(name);
            coll.drop()
                .await
                .map_err(|e| fail(format!("cannot drop {name}"), e))?;
            let mut hasher = XxHash64::with_seed(0);
            let mut rows = 0;
            let mut buf = Vec::new();
            for c in 0..chunks {
                let docs = make(spec, c);
                for d in &docs {
                    buf.clear();
                    d.to_writer(&mut buf)
                        .map_err(|e| self.error(format!("cannot encode a {name} document: {e}")))?;
                    hasher.write(&buf);
                }
                let n = docs.len() as u64;
                let result = coll
                    .insert_many(docs)
                    .ordered(false)
                    .await
                    .map_err(|e| fail(format!("insert into {name} failed"), e))?;
                if result.inserted_ids.len() as u64 != n {
                    return Err(self.error(format!(
                        "insert into {name} stored {} of {n} documents",
                        result.inserted_ids.len()
                    )));
                }
                rows += n;
                bar.inc(n);
            }
            reports.push(TableReport {
                system: System::Inventory.name(),
                table: name.to_string(),
                rows,
                checksum: format!("{:016x}", hasher.finish()),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        bar.set_message("inventory indexes");
        let indexes = [
            ("products", doc! { "sku": 1 }, true),
            ("products", doc! { "category": 1 }, false),
            ("stock", doc! { "sku": 1, "location.id": 1 }, true),
            ("movements", doc! { "sku": 1, "ts": 1 }, false),
        ];
        for (coll, keys, unique) in indexes {
            let model = mongodb::IndexModel::builder()
                .keys(keys)
                .options(
                    mongodb::options::IndexOptions::builder()
                        .unique(unique)
                        .build(),
                )
                .build();
            db.collection::<Document>(coll)
                .create_index(model)
                .await
                .map_err(|e| fail(format!("cannot index {coll}"), e))?;
        }
        Ok(reports)
    }
}

pub fn mongo_reason(e: &mongodb::error::Error) -> String {
    // The driver's text is already specific; keep it to one line.
    e.to_string().replace('\n', " ")
}

/// A URL with its password replaced, for messages.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "the given connection string".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_has_one_document_per_sku_and_location() {
        let spec = Spec::new(0.01, 1).unwrap();
        let docs: Vec<Document> = (0..stock_chunks(&spec))
            .flat_map(|c| stock(&spec, c))
            .collect();
        assert_eq!(docs.len() as u64, spec.products * spec.locations());
        let mut keys = std::collections::HashSet::new();
        for d in &docs {
            let loc = d.get_document("location").unwrap();
            assert!(keys.insert((
                d.get_str("sku").unwrap().to_string(),
                loc.get_i64("id").unwrap()
            )));
        }
        assert_eq!(products(&spec, 0), products(&spec, 0));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("mongodb://u:s3cret@h:1/db"),
            "mongodb://u:***@h:1/db"
        );
        assert!(!redact_url("not a url s3cret").contains("s3cret"));
    }
}
