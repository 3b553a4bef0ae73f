//! The errors the PostgreSQL front door sends: PostgreSQL's severities
//! and the SQLSTATE of every engine error (from the one mapping of both
//! front doors, [`crate::error_codes`]).

use pgwire::error::{ErrorInfo, PgWireError};
use quipu_scheduler::SchedulerError;

pub(super) fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message.into(),
    )))
}

pub(super) fn error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message.into(),
    )))
}

/// An engine error as a PostgreSQL error with its SQLSTATE.
pub(crate) fn engine_error(e: SchedulerError) -> PgWireError {
    error(
        crate::error_codes::Kind::of(&e).sqlstate(),
        crate::error_codes::message(&e),
    )
}

pub(super) fn canceled(timeout: bool) -> PgWireError {
    error(
        "57014",
        if timeout {
            "canceling statement due to statement timeout"
        } else {
            "canceling statement due to user request"
        },
    )
}
