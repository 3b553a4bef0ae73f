//! Quipu's front doors: the PostgreSQL wire protocol and Arrow Flight SQL,
//! authenticated against the users of the catalog and
//! authorised per source.

pub mod error;
pub mod flight;
pub mod pg;
pub mod users;

pub use error::{FrontDoorError, Result};
