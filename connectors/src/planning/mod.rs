//! Fixes to DataFusion's logical and physical plans that are not about any
//! one source: mark joins over empty inputs ([`empty_mark`]), sort and
//! limit enforcement ([`ensure_requirements`]), filter pushdown through
//! projections with repeated names ([`projection_names`]) and plans run on
//! Ballista ([`cluster_plan`]).

pub mod cluster_plan;
pub mod empty_mark;
pub mod ensure_requirements;
pub mod projection_names;
