//! Turns catalog entries into DataFusion tables, and builds the one session
//! (catalog, rules, functions, options) that plans every Quipu query.
//!
//! - [`lake`]: discovery and `ListingTable`s over an object store
//!   (`file://`, `s3://`, `memory://`) in Parquet, CSV and NDJSON, with
//!   hive-style partition columns.
//! - [`catalog_provider`]: the catalog store exposed through DataFusion's
//!   `CatalogProviderList`, so three-part names, `information_schema`,
//!   `SHOW TABLES` and `CREATE VIEW` work as DataFusion users expect.
//! - [`session`]: the session state shared by the scheduler (planning) and
//!   the executors.

pub mod access;
pub mod case_mapping;
pub mod catalog_provider;
pub mod cluster_plan;
pub mod codec;
pub mod empty_mark;
pub mod ensure_requirements;
pub mod error;
pub mod float_literals;
pub mod lake;
pub mod memory;
pub mod metrics;
pub mod mongo;
pub mod mongo_pushdown;
pub mod object_stores;
pub mod options;
pub mod pg_text;
pub mod postgres;
pub mod projection_names;
pub mod pushdown;
pub mod remote_sql;
pub mod semijoin;
pub mod session;
pub mod single_row;
pub mod sources;
pub mod syntax;

pub use access::{Access, SessionCatalogList};
pub use catalog_provider::QuipuCatalogList;
pub use error::{ConnectorError, Result};
pub use options::{ExecutionMode, QuipuOptions};
pub use session::QuipuSession;
