//! Fixes to DataFusion's logical and physical plans that are not about any
//! one source: integer arithmetic that fails on overflow
//! ([`checked_arithmetic`]), mark joins over empty inputs ([`empty_mark`]) or
//! independent of the outer row ([`uncorrelated_mark`]), sort and
//! limit enforcement ([`ensure_requirements`]), orders a union hides
//! ([`missing_sorts`]), sort-merge join filters over NULL-padded rows and
//! under pushed projections ([`join_filters`]), filter pushdown through
//! projections with repeated names ([`projection_names`]), `AND` and `OR`
//! that guard their right side ([`short_circuit`]), `LATERAL` subqueries
//! that no longer read the outer row ([`uncorrelated_lateral`]) or read
//! only the outer row ([`lateral_rows`]) and plans run on
//! Ballista ([`cluster_plan`], [`empty_relations`]), and an aggregation's
//! functional dependencies ([`sound_dependencies`]).

pub mod checked_arithmetic;
pub mod checked_expr;
pub mod cluster_plan;
pub mod empty_mark;
pub mod empty_relations;
pub mod ensure_requirements;
pub mod join_filters;
pub mod lateral_rows;
pub mod missing_sorts;
pub mod projection_names;
pub mod repeated_sort_keys;
pub mod short_circuit;
pub mod sound_dependencies;
pub mod table_functions;
pub mod uncorrelated_lateral;
pub mod uncorrelated_mark;
