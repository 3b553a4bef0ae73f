//! PostgreSQL's meaning for what analysts type, on DataFusion: statement
//! rewrites ([`syntax`]), functions under PostgreSQL's names and output
//! forms ([`case_mapping`], [`concat`], [`pg_text`]), correlated scalar subqueries
//! ([`single_row`]), float literals compared with decimals
//! ([`float_literals`]), PostgreSQL's errors of double arithmetic
//! ([`float_errors`]), timestamp differences as intervals ([`intervals`]) and outer
//! references of subqueries ([`outer_refs`]), `AT TIME ZONE` both ways
//! ([`at_time_zone`]), ranking window functions' PostgreSQL types
//! ([`window_ranks`]).

pub mod at_time_zone;
pub mod case_mapping;
pub mod concat;
pub mod float_errors;
pub mod float_literals;
pub mod int_literals;
pub mod interval_scaling;
pub mod intervals;
pub mod outer_refs;
pub mod pg_functions;
pub mod pg_text;
pub mod single_row;
pub mod syntax;
pub mod window_ranks;

/// Whether a time zone name (a session's `TimeZone`, an Arrow timestamp's
/// zone) means UTC.
pub fn utc_zone(zone: &str) -> bool {
    matches!(
        zone.to_ascii_uppercase().as_str(),
        "UTC"
            | "Z"
            | "+00:00"
            | "+00"
            | "+0000"
            | "-00:00"
            | "ETC/UTC"
            | "GMT"
            | "ETC/GMT"
            | "UCT"
            | "ZULU"
    )
}
