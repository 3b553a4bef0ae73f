//! SQL behaviour as sqllogictest files (`tests/slt/*.slt`), each run twice:
//! once with `quipu.execution = 'local'` and once with 'cluster', against
//! a fresh catalog holding the test lake as source `lake`.
//! Labels `local` / `cluster` let a record run on one path only. The lake's
//! absolute path is shown as `$LAKE` in results (EXPLAIN prints paths).

use std::path::PathBuf;
use std::sync::Arc;

use futures::TryStreamExt;
use quipu_scheduler::{ClientSession, Engine};
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::common::*;

#[derive(Debug)]
struct SltError(String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

struct QuipuDb {
    client: ClientSession,
    lake: String,
    _engine: Arc<Engine>,
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for QuipuDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let out = self
            .client
            .sql_one(sql)
            .await
            .map_err(|e| SltError(e.to_string()))?;
        let schema = out.schema.clone();
        let batches: Vec<_> = out
            .stream
            .try_collect()
            .await
            .map_err(|e| SltError(e.to_string()))?;
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let mut rows = rows_of(&batches);
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        if names == ["plan_type", "plan"] {
            rows = explain_rows(rows);
        }
        let rows = rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| {
                        let v = v.replace(&self.lake, "$LAKE");
                        if v.is_empty() {
                            "(empty)".to_string()
                        } else {
                            v
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; schema.fields().len()],
            rows,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "quipu"
    }
}

/// EXPLAIN cells hold indented multi-line plans; show them as one row per
/// line, numbered, with indentation as dashes (DataFusion's own .slt style),
/// since sqllogictest collapses whitespace.
fn explain_rows(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for row in rows {
        out.push(vec![row[0].clone()]);
        for (i, line) in row[1].lines().enumerate() {
            let body = line.trim_start();
            let indent = line.len() - body.len();
            out.push(vec![format!("{:02}){}{}", i + 1, "-".repeat(indent), body)]);
        }
    }
    out
}

fn slt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqllogictest_files_pass_on_both_paths() {
    let mut failures = Vec::new();
    for file in slt_files() {
        for mode in ["local", "cluster"] {
            let env = lake_env().await;
            let client = client(&env.engine, mode).await;
            // Fixed so that EXPLAIN output does not depend on the machine.
            client
                .sql("SET datafusion.execution.target_partitions = 2")
                .await
                .unwrap();
            let lake = std::fs::canonicalize(env.lake_dir())
                .unwrap()
                .display()
                .to_string();
            let db = QuipuDb {
                client,
                lake: lake.trim_start_matches('/').to_string(),
                _engine: env.engine.clone(),
            };
            let mut db = Some(db);
            let mut runner = sqllogictest::Runner::new(move || {
                let db = db.take().expect("one connection per file");
                async move { Ok(db) }
            });
            runner.add_label(mode);
            if let Err(e) = runner.run_file_async(&file).await {
                failures.push(format!("{} [{mode}]: {e}", file.display()));
            }
            drop(env);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
