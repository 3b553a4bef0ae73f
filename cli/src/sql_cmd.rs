//! `quipu sql`: one-shot queries and the interactive shell.

use std::io::{IsTerminal, Read};
use std::path::Path;

use quipu_scheduler::{ClientSession, Engine};
use tokio::runtime::Runtime;

use crate::args::{Execution, OutputFormat, SqlArgs};
use crate::output::{error_message, print};

/// Runs every statement of `sql`, printing each result; stops at the first
/// error.
pub async fn run_text(
    client: &ClientSession,
    sql: &str,
    format: OutputFormat,
    verbose: bool,
) -> Result<(), String> {
    let statements = client.parse(sql).map_err(|e| error_message(&e))?;
    if statements.is_empty() {
        return Err("empty query: nothing to run".into());
    }
    for statement in statements {
        let out = client.run(statement).await.map_err(|e| error_message(&e))?;
        if verbose {
            eprintln!("-- ran {} ({})", out.executed_on, out.reason);
        }
        print(out, format).await?;
    }
    Ok(())
}

pub fn run(runtime: &Runtime, data_dir: &Path, args: SqlArgs, verbose: bool) -> Result<(), String> {
    let session = quipu_connectors::QuipuSession::open(data_dir).map_err(|e| error_message(&e))?;
    let engine = match &args.cluster {
        Some(url) => Engine::remote(session, url),
        None => Engine::new(session),
    };
    let client = engine.client();
    if let Some(mode) = args.execution {
        let mode = match mode {
            Execution::Auto => "auto",
            Execution::Local => "local",
            Execution::Cluster => "cluster",
        };
        runtime.block_on(run_text(
            &client,
            &format!("SET quipu.execution = '{mode}'"),
            args.format,
            false,
        ))?;
    }
    let text = match (&args.query, &args.file) {
        (Some(q), _) => Some(q.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?,
        ),
        (None, None) if !std::io::stdin().is_terminal() => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            Some(s)
        }
        (None, None) => None,
    };
    let result = match text {
        Some(sql) => runtime.block_on(run_text(&client, &sql, args.format, verbose)),
        None => crate::shell::run(runtime, &client, data_dir, args.format, verbose),
    };
    runtime.block_on(engine.session().close());
    result
}
