//! Live PostgreSQL tables: discovery from `information_schema`, the type
//! mapping to Arrow, and `PgScanExec`, which runs one remote query as
//! `COPY (SELECT ...) TO STDOUT (FORMAT binary)` and decodes the binary rows
//! straight into Arrow arrays (no per-row allocation, no text parsing).
//!
//! Filters and projections are pushed into the remote query; the filters we
//! push are re-checked by DataFusion (`Inexact`), so a dialect difference can
//! only cost speed, never a wrong row.

pub mod connector;
mod copy;
mod discovery;
mod pool;
pub mod pushdown;
mod scan;
pub mod sql;
mod table;
pub(crate) mod types;

pub use connector::{Postgres, REGISTRATION};

pub use discovery::discover;
pub use pool::{PgPools, pg_reason};
pub use scan::{PgScanExec, remote_scan};
pub use table::PgTable;
