//! `quipu`: the command-line front end. It parses arguments and calls into
//! the library crates; all the work lives there.

mod args;
mod catalog_cmd;
mod gen_cmd;
mod output;
mod server_cmd;
mod shell;
mod sql_cmd;
mod users_cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let filter = if cli.verbose {
        "warn,quipu_scheduler=debug,quipu_connectors=info"
    } else if matches!(
        cli.command,
        args::Command::Scheduler(_) | args::Command::Executor(_) | args::Command::Serve(_)
    ) {
        // Long-running processes log their lifecycle by default.
        "warn,quipu_scheduler=info,quipu_executor=info,quipu_connectors=info,quipu_frontdoor=info"
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
        // Planning and (de)serialising deep plans (views over views, long
        // IN lists) recurses; 2 MiB worker stacks overflow in debug builds.
        .thread_stack_size(16 << 20)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let data_dir = cli.data_dir();
    let result = match cli.command {
        args::Command::Catalog(cmd) => runtime.block_on(catalog_cmd::run(&data_dir, cmd)),
        args::Command::Sql(cmd) => sql_cmd::run(&runtime, &data_dir, cmd, cli.verbose),
        args::Command::Gen(cmd) => runtime.block_on(gen_cmd::run(cmd)),
        args::Command::Scheduler(cmd) => {
            runtime.block_on(server_cmd::run_scheduler(cli.data_dir, cmd, false))
        }
        args::Command::Serve(cmd) => {
            runtime.block_on(server_cmd::run_scheduler(cli.data_dir, cmd, true))
        }
        args::Command::Executor(cmd) => runtime.block_on(server_cmd::run_executor(cmd)),
        args::Command::Users(cmd) => users_cmd::run(&data_dir, cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}
