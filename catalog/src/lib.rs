//! The Quipu catalog: what sources exist, which tables and views they expose,
//! and how to reach them, persisted in an embedded crash-safe store.
//!
//! The catalog is pure metadata. It never holds a secret: connection options
//! that are secret (passwords, keys) must be *references* (`env:NAME`,
//! `file:/path`) that are resolved only at the moment a connection is made,
//! by [`secret::resolve`]. Turning entries into DataFusion table providers is
//! the job of `quipu-connectors`.

pub mod error;
pub mod model;
pub mod secret;
pub mod store;
pub mod types;

pub use error::{CatalogError, Result};
pub use model::{
    CacheDef, CacheState, ColumnDef, FileFormat, ReadWith, Refreshing, Retired, SourceDef,
    SourceFile, SourceKind, TableDef, TableName, TableOrigin, UserDef, ViewDef,
};
pub use store::{CatalogSnapshot, CatalogStore};

/// Name of the catalog that holds views and the default schema.
pub const DEFAULT_CATALOG: &str = "quipu";
/// Default schema inside every catalog.
pub const DEFAULT_SCHEMA: &str = "public";
