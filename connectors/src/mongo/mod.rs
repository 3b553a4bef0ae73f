//! Live MongoDB collections, one file per role: clients (`client`), schema
//! inference from a sample, stored in the catalog once and editable
//! (`schema`), BSON to Arrow (`arrow`), SQL filters as MongoDB filters, the
//! one place a literal becomes BSON (`filter`), the table provider
//! (`table`), `MongoScanExec`, which runs one `find` with the pushed
//! filter, projection and limit, or an aggregation pipeline built by
//! `pushdown`, possibly split into ranges of `_id` (`scan`), and the
//! connector the registry lists (`connector`).
//!
//! Mapping: integers -> Int64, doubles (or mixed numbers) -> Float64,
//! strings -> Utf8, booleans -> Boolean, dates -> Timestamp(ms, UTC),
//! ObjectId -> Utf8 (hex), Decimal128 -> Utf8, sub-documents -> Struct
//! (fields merged over the sample), arrays of one scalar kind -> List,
//! anything mixed -> Utf8 holding relaxed extended JSON. A missing field
//! is NULL.

mod arrow;
mod client;
pub mod connector;
mod filter;
pub mod pushdown;
mod scan;
mod schema;
mod table;

pub(crate) use arrow::{I64_END_F, I64_MIN_F};
pub use client::MongoClients;
pub use connector::{Mongo, REGISTRATION};
pub(crate) use filter::{bson_value, comparison_op};
pub use filter::{filter_to_mongo, join_keys_filter};
pub use scan::{MongoScanExec, remote_scan};
pub use schema::discover;
pub use table::MongoTable;
pub(crate) use table::projection_of;
