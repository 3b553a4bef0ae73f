//! `quipu`: the command-line front end. It parses arguments and calls into
//! the library crates; all the work lives there.

mod args;
mod catalog_cmd;
mod gen_cmd;
mod output;
mod shell;
mod sql_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let filter = if cli.verbose {
        "warn,quipu_scheduler=debug,quipu_connectors=info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QUIPU_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match cli.command {
        args::Command::Catalog(cmd) => runtime.block_on(catalog_cmd::run(&cli.data_dir, cmd)),
        args::Command::Sql(cmd) => sql_cmd::run(&runtime, &cli.data_dir, cmd, cli.verbose),
        args::Command::Gen(cmd) => runtime.block_on(gen_cmd::run(cmd)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}
