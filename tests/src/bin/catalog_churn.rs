//! Test helper: changes the catalog in a tight loop until killed. Each
//! step `i` adds source `s{i}` with three tables in one change and then
//! drops `s{i-2}`, printing `i` after each committed step. The crash test
//! kills it with SIGKILL and checks that the catalog opens and holds whole
//! steps only.

use std::collections::BTreeMap;
use std::io::Write;

use quipu_catalog::{CatalogStore, SourceDef, SourceKind, TableDef, TableName, TableOrigin};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: catalog_churn DATA_DIR");
    let store = CatalogStore::open(&dir).expect("open catalog");
    let existing: Vec<u64> = store
        .sources()
        .expect("read sources")
        .iter()
        .filter_map(|s| s.name.trim_start_matches('s').parse::<u64>().ok())
        .collect();
    let newest = existing.iter().max().copied();
    // Finish the step a previous run was killed in: keep only the newest two.
    for old in &existing {
        if newest.is_some_and(|n| *old + 1 < n) {
            store.drop_source(&format!("s{old}")).expect("drop source");
        }
    }
    let mut i = newest.map(|m| m + 1).unwrap_or(0);
    let stdout = std::io::stdout();
    loop {
        let name = format!("s{i}");
        let mut options = BTreeMap::new();
        options.insert("url".to_string(), format!("file:///tmp/churn/{i}/"));
        let source = SourceDef::new(&name, SourceKind::Lake, options).expect("valid source");
        let tables: Vec<TableDef> = (0..3)
            .map(|t| TableDef {
                name: TableName::new(&name, "public", format!("t{t}")),
                origin: TableOrigin::Discovered,
                location: Some(format!("t{t}/")),
                format: None,
                file_extension: None,
                columns: vec![],
                partition_columns: vec![],
                declared_schema: false,
                partitions: None,
                primary_key: vec![],
            })
            .collect();
        store.add_source(&source, &tables).expect("add source");
        if i >= 2 {
            store
                .drop_source(&format!("s{}", i - 2))
                .expect("drop source");
        }
        let mut out = stdout.lock();
        writeln!(out, "{i}").expect("stdout");
        out.flush().expect("stdout");
        i += 1;
    }
}
