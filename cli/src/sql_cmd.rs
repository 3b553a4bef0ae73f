//! `quipu sql`: one-shot queries and the interactive shell.

use std::io::{IsTerminal, Read};
use std::path::Path;

use quipu_scheduler::{ClientSession, Engine};
use tokio::runtime::Runtime;

use crate::args::{Execution, OutputFormat, SqlArgs};
use crate::output::{error_message, print};

/// Where `quipu sql` runs statements: this process's engine, or a server
/// (`--server`).
pub enum Runner {
    Local(ClientSession),
    Remote(Box<tokio::sync::Mutex<crate::remote::Remote>>),
}

/// Runs every statement of `sql`, printing each result; stops at the first
/// error.
pub async fn run_text(
    runner: &Runner,
    sql: &str,
    format: OutputFormat,
    verbose: bool,
) -> Result<(), String> {
    let client = match runner {
        Runner::Local(client) => client,
        Runner::Remote(remote) => return run_remote(remote, sql, format).await,
    };
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

/// Splits `sql` into statements here and runs each on the server.
async fn run_remote(
    remote: &tokio::sync::Mutex<crate::remote::Remote>,
    sql: &str,
    format: OutputFormat,
) -> Result<(), String> {
    let statements = datafusion::sql::parser::DFParserBuilder::new(sql)
        .with_dialect(&quipu_connectors::session::SQL_DIALECT)
        .build()
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| error_message(&e))?;
    if statements.is_empty() {
        return Err("empty query: nothing to run".into());
    }
    let mut remote = remote.lock().await;
    for statement in statements {
        let (schema, batches) = remote.query(&statement.to_string()).await?;
        crate::output::print_batches(schema, batches, format).await?;
    }
    Ok(())
}

/// `quipu --server ... sql`: the same statements, run by the server.
pub fn run_on_server(
    runtime: &Runtime,
    remote: crate::remote::Remote,
    data_dir: &Path,
    args: SqlArgs,
) -> Result<(), String> {
    if args.cluster.is_some() {
        return Err(
            "--cluster and --server do not go together: the server picks its cluster".into(),
        );
    }
    let runner = Runner::Remote(Box::new(tokio::sync::Mutex::new(remote)));
    execute(runtime, &runner, data_dir, args, false)
}

pub fn run(runtime: &Runtime, data_dir: &Path, args: SqlArgs, verbose: bool) -> Result<(), String> {
    let session = quipu_connectors::QuipuSession::open(data_dir).map_err(|e| error_message(&e))?;
    let engine = match &args.cluster {
        Some(url) => Engine::remote(session, url),
        None => Engine::new(session),
    };
    let runner = Runner::Local(engine.client());
    let result = execute(runtime, &runner, data_dir, args, verbose);
    runtime.block_on(engine.session().close());
    result
}

/// The `--execution` setting, then the statements of the query, the file,
/// stdin, or the interactive shell.
fn execute(
    runtime: &Runtime,
    client: &Runner,
    data_dir: &Path,
    args: SqlArgs,
    verbose: bool,
) -> Result<(), String> {
    if let Some(mode) = args.execution {
        let mode = match mode {
            Execution::Auto => "auto",
            Execution::Local => "local",
            Execution::Cluster => "cluster",
        };
        runtime.block_on(run_text(
            client,
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
    match text {
        Some(sql) => runtime.block_on(run_text(client, &sql, args.format, verbose)),
        None => crate::shell::run(runtime, client, data_dir, args.format, verbose),
    }
}
