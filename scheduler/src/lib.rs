//! The Quipu scheduler: plans every query once and runs it either
//! in-process on DataFusion (interactive questions) or on the Ballista
//! cluster (big scans), chosen per query from an estimate of the work.
//!
//! Measured on this machine, Ballista 55 standalone pays ~100 ms for
//! `SELECT 1` and ~0.8 s for a filtered count that DataFusion answers in
//! milliseconds, so the cluster is only worth its floor for large scans.
//! `SET quipu.execution = 'local' | 'cluster' | 'auto'` forces the choice.
//!
//! The engine by role: [`engine`] (process-wide: catalog session, cluster),
//! [`session`] (a client's statements from text to started streams),
//! `placement` (in-process or cluster, and why), [`streams`] (what a
//! statement hands back), [`lexer`] (the one SQL lexer of the limits and
//! both front doors), [`limits`]; [`cluster`], [`process`] and [`rerun`]
//! for the Ballista side.

pub mod cache;
pub mod cluster;
pub mod engine;
pub mod error;
mod extract;
mod formats;
pub mod hints;
mod interval_groups;
mod lake_write;
pub use lake_write::{WRITE_CTAS, WRITE_INSERT};
pub mod lexer;
pub mod limits;
mod pg_types;
mod placement;
pub mod process;
pub mod rerun;
mod rounding;
pub mod scales;
pub mod session;
pub mod similar;
pub mod streams;
pub mod sugar;
mod text_forms;
mod zones;

pub use engine::Engine;
pub use error::{Result, SchedulerError};
pub use session::{ClientSession, Planned, Work};
pub use streams::{ExecutedOn, QueryOutput};
