//! Quipu's front doors: the PostgreSQL wire protocol and Arrow Flight SQL,
//! authenticated against the users of the catalog and
//! authorised per source.
//!
//! One folder per door, split by role ([`pg`], [`flight`]); beside them
//! what both share: the users and their SCRAM verifiers ([`users`],
//! [`scram`]), certificates (`tls`), the plaintext refusal and the bind
//! (`listener`), and the one mapping of engine errors to SQLSTATEs and
//! gRPC codes (`error_codes`). The one SQL lexer both doors read text
//! with is the engine's (`quipu_scheduler::lexer`).

pub mod error;
mod error_codes;
pub mod flight;
#[doc(hidden)]
pub mod fuzzing;
mod listener;
pub mod pg;
pub mod scram;
mod tls;
pub mod users;

pub use error::{FrontDoorError, Result};
pub use error_codes::unmatched_call_message;
