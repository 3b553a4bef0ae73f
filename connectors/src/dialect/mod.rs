//! PostgreSQL's meaning for what analysts type, on DataFusion: statement
//! rewrites ([`syntax`]), functions under PostgreSQL's names and output
//! forms ([`case_mapping`], [`concat`], [`pg_text`]), correlated scalar subqueries
//! ([`single_row`]), float literals compared with decimals
//! ([`float_literals`]), PostgreSQL's errors of double arithmetic
//! ([`float_errors`]) and timestamp differences as intervals ([`intervals`]).

pub mod case_mapping;
pub mod concat;
pub mod float_errors;
pub mod float_literals;
pub mod intervals;
pub mod pg_text;
pub mod single_row;
pub mod syntax;
