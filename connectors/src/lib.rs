//! Turns catalog entries into DataFusion tables, and builds the one session
//! (catalog, rules, functions, options) that plans every Quipu query.
//!
//! One folder per kind of source, each owning its connection, type
//! mapping, discovery, table provider, scan and pushdown:
//!
//! - [`lake`]: discovery, `ListingTable`s and Parquet writes ([`lake::write`]) over an object store
//!   (`file://`, `s3://`, `memory://`) in Parquet, CSV and NDJSON, with
//!   hive-style partition columns.
//! - [`postgres`]: `PgTable`, whose `PgScanExec` runs remote queries as
//!   binary COPY, and the pushdown of whole subtrees as one remote query.
//! - [`mongo`]: `MongoTable`, whose `MongoScanExec` runs one `find` or one
//!   aggregation pipeline, and the pushdown of sorts and aggregates.
//!
//! Beside them, what they share and what the engine adds, none of which
//! names a source:
//!
//! - [`remote`]: what every live source's scan shares (plan properties,
//!   merged partitions, join keys from hash joins, rows fetched).
//! - [`catalog`]: the catalog store exposed through DataFusion's
//!   `CatalogProviderList`, and per-session grants ([`catalog::access`]).
//! - [`dialect`]: PostgreSQL's meaning for what analysts type (syntax
//!   rewrites, functions, correlated subqueries, float literals).
//! - [`planning`]: fixes to DataFusion's plans (sorts, filters, cluster
//!   plans).
//! - [`registry`]: where the kinds of source are registered.
//! - [`session`]: the session state shared by the scheduler (planning) and
//!   the executors; [`sources`]: validate, discover and refresh sources;
//!   [`codec`]: the Ballista codecs; [`forecast`]: the `forecast()` and
//!   `backtest()` table functions.

pub mod catalog;
pub mod codec;
pub mod connector;
pub mod dialect;
pub mod error;
pub mod forecast;
pub mod lake;
pub mod memory;
pub mod metrics;
pub mod mongo;
pub mod options;
pub mod planning;
pub mod postgres;
pub mod registry;
pub mod remote;
pub mod session;
pub mod sources;

pub use catalog::QuipuCatalogList;
pub use catalog::access::{Access, SessionCatalogList};
pub use error::{ConnectorError, Result};
pub use options::{ExecutionMode, QuipuOptions, StaleCache, parse_duration};
pub use session::QuipuSession;
