//! The kinds of source Quipu reads, registered in one place: a new kind is
//! a folder with a `Connector` and one line in [`KINDS`].

use std::sync::Arc;

use datafusion::optimizer::OptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use quipu_catalog::SourceKind;

use crate::connector::{Connector, Registration};
use crate::remote::{RemoteScan, ScanFetched};

/// Every kind of source.
const KINDS: &[&Registration] = &[
    &crate::lake::REGISTRATION,
    &crate::postgres::REGISTRATION,
    &crate::mongo::REGISTRATION,
];

/// The connectors of one process, one per kind.
#[derive(Debug)]
pub struct Connectors {
    list: Vec<Arc<dyn Connector>>,
}

impl Default for Connectors {
    fn default() -> Self {
        Connectors {
            list: KINDS.iter().map(|k| (k.connector)()).collect(),
        }
    }
}

impl Connectors {
    /// The connector of a kind of source.
    pub fn of(&self, kind: SourceKind) -> &Arc<dyn Connector> {
        self.list
            .iter()
            .find(|c| c.kind() == kind)
            .unwrap_or_else(|| panic!("no connector registered for {kind} sources"))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Connector>> {
        self.list.iter()
    }
}

/// The scan operator of any live source, as the shared code sees it.
pub fn remote_scan(node: &dyn ExecutionPlan) -> Option<&dyn RemoteScan> {
    KINDS
        .iter()
        .filter_map(|k| k.remote_scan)
        .find_map(|scan_of| scan_of(node))
}

/// Every source's logical optimizer rules (their pushdown).
pub fn logical_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    KINDS.iter().flat_map(|k| (k.logical_rules)()).collect()
}

/// The rows each live-source scan of an executed plan fetched.
pub fn rows_fetched(plan: &Arc<dyn ExecutionPlan>) -> Vec<ScanFetched> {
    crate::remote::rows_fetched(plan, remote_scan)
}
