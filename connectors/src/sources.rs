//! Administration of sources and tables: validate a source by contacting
//! it, discover its tables, and write the result in one catalog change.
//! Nothing is written when any step fails.

use std::sync::Arc;

use quipu_catalog::{ColumnDef, FileFormat, SourceDef, TableDef, TableName, TableOrigin};

use crate::connector::{Connector, TableRequest};
use crate::error::{ConnectorError, Result};
use crate::session::QuipuSession;

/// What a refresh found different from the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    pub added: Vec<TableName>,
    pub removed: Vec<TableName>,
    /// Tables whose columns changed, with a one-line description.
    pub changed: Vec<(TableName, String)>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

fn describe_columns(cols: &[ColumnDef]) -> Vec<String> {
    cols.iter()
        .map(|c| format!("{} {}", c.name, c.data_type))
        .collect()
}

/// Compares the old and new discovered tables of a source.
fn drift(old: &[TableDef], new: &[TableDef]) -> Drift {
    let mut d = Drift::default();
    for n in new {
        match old.iter().find(|o| o.name == n.name) {
            None => d.added.push(n.name.clone()),
            Some(o) => {
                let (oc, nc) = (describe_columns(&o.columns), describe_columns(&n.columns));
                if oc != nc || o.partition_columns != n.partition_columns {
                    let gone: Vec<_> = oc.iter().filter(|c| !nc.contains(c)).cloned().collect();
                    let came: Vec<_> = nc.iter().filter(|c| !oc.contains(c)).cloned().collect();
                    d.changed.push((
                        n.name.clone(),
                        format!(
                            "columns removed [{}], added [{}]",
                            gone.join(", "),
                            came.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    for o in old {
        if !new.iter().any(|n| n.name == o.name) {
            d.removed.push(o.name.clone());
        }
    }
    d
}

impl QuipuSession {
    fn connector(&self, source: &SourceDef) -> &Arc<dyn Connector> {
        self.catalogs().shared.connectors.of(source.kind)
    }

    /// Contacts the source and lists its tables, without writing anything.
    pub async fn discover(&self, source: &SourceDef) -> Result<Vec<TableDef>> {
        source.validate()?;
        let env = &self.catalogs().shared.env;
        self.connector(source).discover(env, source).await
    }

    /// Validates and adds a source with its discovered tables, its options
    /// as the connector stores them (a lake `url` given as a relative path
    /// is stored as an absolute `file://` URL, so the catalog means the
    /// same from any directory).
    pub async fn add_source(&self, source: &SourceDef) -> Result<Vec<TableDef>> {
        if self.store().source(&source.name)?.is_some() {
            return Err(quipu_catalog::CatalogError::DuplicateSource(source.name.clone()).into());
        }
        let mut source = source.clone();
        self.connector(&source).normalize(&mut source)?;
        let tables = self.discover(&source).await?;
        self.store().add_source(&source, &tables)?;
        self.catalogs().invalidate();
        Ok(tables)
    }

    /// Re-discovers a source's tables and reports what changed. Declared
    /// tables are kept as they are.
    pub async fn refresh_source(&self, name: &str) -> Result<Drift> {
        let source = self
            .store()
            .source(name)?
            .ok_or_else(|| quipu_catalog::CatalogError::UnknownSource(name.to_string()))?;
        let old: Vec<TableDef> = self
            .store()
            .tables(Some(name))?
            .into_iter()
            .filter(|t| t.origin == TableOrigin::Discovered)
            .collect();
        let new = self.discover(&source).await?;
        let d = drift(&old, &new);
        self.store().replace_discovered_tables(name, &new)?;
        self.catalogs().invalidate();
        Ok(d)
    }

    /// Sets how many partitions a live table's reads are split into (None:
    /// automatic, from the table's size), over its source's `partitions`.
    pub fn set_table_partitions(&self, name: &TableName, partitions: Option<u32>) -> Result<()> {
        if let Some(n) = partitions
            && !(1..=64).contains(&n)
        {
            return Err(ConnectorError::Table {
                table: name.to_string(),
                reason: format!("{n} is not a number of partitions from 1 to 64"),
            });
        }
        let source = self
            .store()
            .source(&name.source)?
            .ok_or_else(|| quipu_catalog::CatalogError::UnknownSource(name.source.clone()))?;
        if !self.connector(&source).splits_reads() {
            return Err(ConnectorError::Table {
                table: name.to_string(),
                reason: "partitions apply to PostgreSQL and MongoDB tables (a lake table is split by its files)".into(),
            });
        }
        self.store().set_table_partitions(name, partitions)?;
        self.catalogs().invalidate();
        Ok(())
    }

    /// Declares a lake table at `location` (relative to the source URL). With
    /// `columns` the schema is declared; without, it is inferred now.
    pub async fn add_table(
        &self,
        name: TableName,
        location: &str,
        format: Option<FileFormat>,
        columns: Option<Vec<ColumnDef>>,
        replace: bool,
    ) -> Result<TableDef> {
        let source = self
            .store()
            .source(&name.source)?
            .ok_or_else(|| quipu_catalog::CatalogError::UnknownSource(name.source.clone()))?;
        if !replace && self.store().table(&name)?.is_some() {
            return Err(quipu_catalog::CatalogError::DuplicateTable(name.to_string()).into());
        }
        let request = TableRequest {
            name,
            location: location.to_string(),
            format,
            declared: columns,
            origin: TableOrigin::Declared,
        };
        let env = &self.catalogs().shared.env;
        let def = self
            .connector(&source)
            .declare_table(env, &source, request)
            .await?;
        self.store().add_table(&def, replace)?;
        self.catalogs().invalidate();
        Ok(def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, cols: &[(&str, &str)]) -> TableDef {
        TableDef {
            name: TableName::new("l", "public", name),
            origin: TableOrigin::Discovered,
            location: None,
            format: None,
            file_extension: None,
            columns: cols
                .iter()
                .map(|(n, ty)| ColumnDef {
                    name: n.to_string(),
                    data_type: ty.to_string(),
                    nullable: true,
                    source_type: None,
                })
                .collect(),
            partition_columns: vec![],
            declared_schema: false,
            partitions: None,
            primary_key: vec![],
        }
    }

    #[test]
    fn drift_reports_added_removed_changed() {
        let old = vec![t("a", &[("x", "Int64")]), t("b", &[])];
        let new = vec![t("a", &[("x", "Utf8")]), t("c", &[])];
        let d = drift(&old, &new);
        assert_eq!(d.added, vec![TableName::new("l", "public", "c")]);
        assert_eq!(d.removed, vec![TableName::new("l", "public", "b")]);
        assert_eq!(d.changed.len(), 1);
        assert!(d.changed[0].1.contains("x Int64"), "{:?}", d.changed);
        assert!(drift(&new, &new).is_empty());
    }
}
