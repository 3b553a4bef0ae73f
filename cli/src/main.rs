//! `quipu`: the command-line front end. It parses arguments and calls into
//! the library crates; all the work lives there.

mod args;
mod catalog_cmd;
mod gen_cmd;
mod output;
mod remote;
mod report;
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
    let filter = tracing_subscriber::EnvFilter::try_from_env("QUIPU_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // One JSON object per line for log collectors; otherwise text, coloured
    // only on a terminal (escape codes in a log file break grep).
    if std::env::var("QUIPU_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().init();
    } else {
        use std::io::IsTerminal;
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    // A panic is one log line (a malformed frame can make pgwire's decoder
    // panic in a connection's task, and a client could flood the log with
    // backtraces); the backtrace follows only when RUST_BACKTRACE asks.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        tracing::error!(%thread, %location, "panic: {}", message.replace('\n', " "));
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
    }));
    // The memory pool's size is read when a session opens: refuse a bad
    // value here, with one sentence, before anything starts.
    if let Err(e) = quipu_connectors::memory::limit_from_env() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
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
    let args::Cli {
        data_dir: data_dir_flag,
        verbose,
        server,
        user,
        user_password_file,
        server_ca,
        command,
    } = cli;
    let login = remote::Login {
        user,
        password_file: user_password_file,
        ca: server_ca,
    };
    // `quipu sql --url X` is `quipu --server X sql`.
    let server = match &command {
        args::Command::Sql(a) => a.url.clone().or(server),
        _ => server,
    };
    let result = match (server, command) {
        (Some(url), args::Command::Catalog(cmd)) => runtime.block_on(async {
            let mut r = remote::Remote::connect(&url, &login).await?;
            print!(
                "{}",
                r.admin(remote::AdminCommand::Catalog(cmd), None).await?
            );
            Ok(())
        }),
        (Some(url), args::Command::Users(cmd)) => runtime.block_on(async {
            let password = users_cmd::password_for(&cmd)?;
            let mut r = remote::Remote::connect(&url, &login).await?;
            print!(
                "{}",
                r.admin(remote::AdminCommand::Users(cmd), password).await?
            );
            Ok(())
        }),
        (Some(url), args::Command::Report(cmd)) => runtime.block_on(async {
            let remote = remote::Remote::connect(&url, &login).await?;
            report::run(report::Db::Remote(Box::new(remote), url.clone()), cmd).await
        }),
        (Some(url), args::Command::Sql(cmd)) => runtime
            .block_on(remote::Remote::connect(&url, &login))
            .and_then(|r| sql_cmd::run_on_server(&runtime, r, &data_dir, cmd)),
        // gen, scheduler, executor and serve run here whatever
        // QUIPU_SERVER says (it is for the client commands above).
        (_, command) => run_here(&runtime, verbose, data_dir_flag, data_dir, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

/// A command on this machine's catalog (or a cluster process).
fn run_here(
    runtime: &tokio::runtime::Runtime,
    verbose: bool,
    data_dir_flag: Option<std::path::PathBuf>,
    data_dir: std::path::PathBuf,
    command: args::Command,
) -> Result<(), String> {
    match command {
        args::Command::Catalog(cmd) => runtime.block_on(catalog_cmd::run(&data_dir, cmd)),
        args::Command::Sql(cmd) => {
            // One statement: reading a cache whole into memory first would
            // cost more than reading what the statement needs.
            quipu_connectors::catalog::cache_memory::none_by_default();
            sql_cmd::run(runtime, &data_dir, cmd, verbose)
        }
        args::Command::Gen(cmd) => runtime.block_on(gen_cmd::run(cmd)),
        args::Command::Scheduler(cmd) => {
            runtime.block_on(server_cmd::run_scheduler(data_dir_flag, cmd, false))
        }
        args::Command::Serve(cmd) => {
            runtime.block_on(server_cmd::run_scheduler(data_dir_flag, cmd, true))
        }
        args::Command::Executor(cmd) => runtime.block_on(server_cmd::run_executor(cmd)),
        args::Command::Users(cmd) => users_cmd::run(&data_dir, cmd),
        args::Command::Report(cmd) => report::run_local(runtime, &data_dir, cmd),
    }
}
