//! Live PostgreSQL tables, one file per role: connections (`pool`), the
//! type table (`types`), discovery from `information_schema`
//! (`discovery`), the table provider (`table`), the scan operator that runs
//! remote queries as `COPY (SELECT ...) TO STDOUT (FORMAT binary)`
//! (`scan`) and decodes the binary rows straight into Arrow arrays
//! (`copy`), SQL rendering (`sql`), the pushdown of whole subtrees
//! (`pushdown`) and the connector the registry lists (`connector`).
//!
//! Filters and projections are pushed into the remote query; the filters we
//! push are re-checked by DataFusion (`Inexact`), which removes rows the
//! source kept but cannot bring back rows it dropped: a pushed filter must
//! mean at the source what it means here (text is compared as text,
//! `sql::filter_to_sql`).

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
