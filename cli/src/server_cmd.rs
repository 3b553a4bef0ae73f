//! `quipu scheduler`, `quipu executor`, `quipu serve`: the long-running
//! processes of a cluster. Each setting comes from its flag, else its
//! `QUIPU_...` environment variable, else the TOML file of `--config`,
//! else the default (docs/configuration.md lists them).

use std::path::{Path, PathBuf};
use std::time::Duration;

use quipu_executor::process::ExecutorOptions;
use quipu_scheduler::process::SchedulerOptions;
use quipu_scheduler::process::TaskSchedulingPolicy;

use crate::args::{ExecutorArgs, SchedulerArgs};

/// Keys a scheduler's TOML file may hold.
pub const SCHEDULER_KEYS: &[&str] = &[
    "data_dir",
    "bind",
    "port",
    "http_port",
    "external_host",
    "token_file",
    "executor_timeout",
    "slots",
    "pg_listen",
    "pg_tls_cert",
    "pg_tls_key",
    "pg_allow_plaintext",
    "pg_max_connections",
    "pg_max_startup_connections",
    "pg_startup_timeout",
    "flight_listen",
    "flight_tls_cert",
    "flight_tls_key",
    "flight_allow_plaintext",
    "flight_max_sessions_per_user",
    "flight_session_idle_timeout",
    "flight_first_call_timeout",
    "flight_max_connection_age",
    "task_scheduling",
];

/// Keys an executor's TOML file may hold.
pub const EXECUTOR_KEYS: &[&str] = &[
    "scheduler",
    "catalog_url",
    "bind",
    "external_host",
    "port",
    "grpc_port",
    "http_port",
    "slots",
    "work_dir",
    "token_file",
    "heartbeat",
    "task_scheduling",
];

/// A parsed `--config` file, checked against the keys its process knows.
struct ConfigFile {
    path: PathBuf,
    table: toml::Table,
}

impl ConfigFile {
    fn load(path: Option<&Path>, allowed: &[&str]) -> Result<Option<Self>, String> {
        let Some(path) = path else { return Ok(None) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| format!("config file {} is not valid TOML: {e}", path.display()))?;
        for key in table.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(format!(
                    "config file {}: unknown key '{key}' (known: {})",
                    path.display(),
                    allowed.join(", ")
                ));
            }
        }
        Ok(Some(ConfigFile {
            path: path.to_path_buf(),
            table,
        }))
    }

    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!(
                "config file {}: '{key}' must be a string, got {}",
                self.path.display(),
                other.type_str()
            )),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(format!(
                "config file {}: '{key}' must be true or false, got {}",
                self.path.display(),
                other.type_str()
            )),
        }
    }

    fn int<T: TryFrom<i64>>(&self, key: &str) -> Result<Option<T>, String> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => T::try_from(*i).map(Some).map_err(|_| {
                format!(
                    "config file {}: '{key}' = {i} is out of range",
                    self.path.display()
                )
            }),
            Some(other) => Err(format!(
                "config file {}: '{key}' must be an integer, got {}",
                self.path.display(),
                other.type_str()
            )),
        }
    }
}

/// `task_scheduling`: `pull` (the default) or `push`.
fn task_scheduling(value: Option<String>) -> Result<TaskSchedulingPolicy, String> {
    match value.as_deref().map(str::trim) {
        None | Some("pull") => Ok(TaskSchedulingPolicy::PullStaged),
        Some("push") => Ok(TaskSchedulingPolicy::PushStaged),
        Some(other) => Err(format!(
            "task_scheduling must be 'pull' or 'push', not '{other}'"
        )),
    }
}

fn from_file<T>(
    flag: Option<T>,
    file: &Option<ConfigFile>,
    get: impl FnOnce(&ConfigFile) -> Result<Option<T>, String>,
) -> Result<Option<T>, String> {
    match (flag, file) {
        (Some(v), _) => Ok(Some(v)),
        (None, Some(f)) => get(f),
        (None, None) => Ok(None),
    }
}

/// The cluster token: `QUIPU_CLUSTER_TOKEN`, else the token file.
fn cluster_token(token_file: Option<PathBuf>) -> Result<String, String> {
    if let Ok(t) = std::env::var("QUIPU_CLUSTER_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let Some(path) = token_file else {
        return Err(
            "no cluster token: set QUIPU_CLUSTER_TOKEN or --token-file (the scheduler and \
             every executor need the same token)"
                .into(),
        );
    };
    let token = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(format!("token file {} is empty", path.display()));
    }
    Ok(token)
}

/// Waits for Ctrl-C or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `quipu scheduler` (and `quipu serve` with `embedded`).
pub async fn run_scheduler(
    data_dir: Option<PathBuf>,
    args: SchedulerArgs,
    embedded: bool,
) -> Result<(), String> {
    let file = ConfigFile::load(args.config.as_deref(), SCHEDULER_KEYS)?;
    let pg = pg_options(&args_pg(&args), &file)?;
    let flight = flight_options(&args, &file)?;
    let data_dir = from_file(data_dir, &file, |f| {
        f.string("data_dir").map(|s| s.map(PathBuf::from))
    })?
    .unwrap_or_else(|| PathBuf::from(crate::args::DEFAULT_DATA_DIR));
    let bind =
        from_file(args.bind, &file, |f| f.string("bind"))?.unwrap_or_else(|| "127.0.0.1".into());
    let port = from_file(args.port, &file, |f| f.int("port"))?.unwrap_or(50050);
    let http_port = from_file(args.http_port, &file, |f| f.int("http_port"))?.unwrap_or(50060);
    let external_host = from_file(args.external_host, &file, |f| f.string("external_host"))?;
    let token_file = from_file(args.token_file, &file, |f| {
        f.string("token_file").map(|s| s.map(PathBuf::from))
    })?;
    let executor_timeout =
        from_file(args.executor_timeout, &file, |f| f.int("executor_timeout"))?.unwrap_or(30u64);
    let slots = from_file(args.slots, &file, |f| f.int("slots"))?;
    let scheduling = task_scheduling(from_file(args.task_scheduling, &file, |f| {
        f.string("task_scheduling")
    })?)?;
    if embedded && matches!(scheduling, TaskSchedulingPolicy::PushStaged) {
        return Err(
            "task_scheduling = 'push' needs `quipu scheduler` and `quipu executor` \
                    processes: the executor inside `quipu serve` pulls its tasks"
                .into(),
        );
    }
    let token = cluster_token(token_file)?;
    let session = quipu_connectors::QuipuSession::open(&data_dir)
        .map_err(|e| format!("cannot open the catalog in {}: {e}", data_dir.display()))?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let opts = SchedulerOptions {
        bind,
        port,
        http_port,
        external_host,
        token,
        executor_timeout: Duration::from_secs(executor_timeout),
        scheduling,
        embedded_slots: embedded.then(|| slots.filter(|&s| s > 0).unwrap_or(cores)),
    };
    let running = quipu_scheduler::process::start(session.clone(), opts)
        .await
        .map_err(|e| e.to_string())?;
    let pg_server = match pg {
        Some(opts) => Some(
            quipu_frontdoor::pg::start(running.engine.clone(), opts)
                .await
                .map_err(|e| format!("PostgreSQL front door: {e}"))?,
        ),
        None => None,
    };
    let flight_server = match flight {
        Some(mut opts) => Some(
            quipu_frontdoor::flight::start(running.engine.clone(), {
                // Admin commands (`quipu --server ... catalog/users`) run on
                // the server's own catalog.
                opts.admin = Some(crate::remote::handler(running.engine.session().clone()));
                opts
            })
            .await
            .map_err(|e| format!("Flight SQL front door: {e}"))?,
        ),
        None => None,
    };
    eprintln!(
        "quipu {}: scheduler gRPC on {}, HTTP (catalog, /metrics, /health) on {}, PostgreSQL on {}, Flight SQL on {}, catalog in {}",
        if embedded { "serve" } else { "scheduler" },
        running.grpc_addr,
        running.http_addr,
        pg_server
            .as_ref()
            .map(|p| p.addr.to_string())
            .unwrap_or_else(|| "off".into()),
        flight_server
            .as_ref()
            .map(|f| f.addr.to_string())
            .unwrap_or_else(|| "off".into()),
        data_dir.display()
    );
    stopped().await;
    eprintln!("quipu: stopping");
    session.close().await;
    Ok(())
}

/// The PostgreSQL settings given as flags or environment.
struct PgArgs {
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    allow_plaintext: Option<bool>,
    max_connections: Option<usize>,
    max_startup_connections: Option<usize>,
    startup_timeout: Option<u64>,
}

fn args_pg(args: &SchedulerArgs) -> PgArgs {
    PgArgs {
        listen: args.pg_listen.clone(),
        tls_cert: args.pg_tls_cert.clone(),
        tls_key: args.pg_tls_key.clone(),
        allow_plaintext: args.pg_allow_plaintext,
        max_connections: args.pg_max_connections,
        max_startup_connections: args.pg_max_startup_connections,
        startup_timeout: args.pg_startup_timeout,
    }
}

/// The PostgreSQL front door's options, or `None` when it is `off`.
fn pg_options(
    args: &PgArgs,
    file: &Option<ConfigFile>,
) -> Result<Option<quipu_frontdoor::pg::PgOptions>, String> {
    let listen = from_file(args.listen.clone(), file, |f| f.string("pg_listen"))?
        .unwrap_or_else(|| quipu_frontdoor::pg::DEFAULT_LISTEN.to_string());
    if listen.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let listen = listen
        .parse()
        .map_err(|_| format!("pg_listen: '{listen}' is not an IP:PORT address (or `off`)"))?;
    let path =
        |key: &'static str| move |f: &ConfigFile| f.string(key).map(|s| s.map(PathBuf::from));
    let defaults = quipu_frontdoor::pg::PgOptions::default();
    Ok(Some(quipu_frontdoor::pg::PgOptions {
        listen,
        tls_cert: from_file(args.tls_cert.clone(), file, path("pg_tls_cert"))?,
        tls_key: from_file(args.tls_key.clone(), file, path("pg_tls_key"))?,
        allow_plaintext: from_file(args.allow_plaintext, file, |f| f.bool("pg_allow_plaintext"))?
            .unwrap_or(false),
        max_connections: from_file(args.max_connections, file, |f| f.int("pg_max_connections"))?
            .unwrap_or(defaults.max_connections),
        max_startup_connections: from_file(args.max_startup_connections, file, |f| {
            f.int("pg_max_startup_connections")
        })?
        .unwrap_or(defaults.max_startup_connections),
        startup_timeout: from_file(args.startup_timeout, file, |f| f.int("pg_startup_timeout"))?
            .map(Duration::from_secs)
            .unwrap_or(defaults.startup_timeout),
    }))
}

/// The Flight SQL front door's options, or `None` when it is `off`.
fn flight_options(
    args: &SchedulerArgs,
    file: &Option<ConfigFile>,
) -> Result<Option<quipu_frontdoor::flight::FlightOptions>, String> {
    let listen = from_file(args.flight_listen.clone(), file, |f| {
        f.string("flight_listen")
    })?
    .unwrap_or_else(|| quipu_frontdoor::flight::DEFAULT_LISTEN.to_string());
    if listen.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let listen = listen
        .parse()
        .map_err(|_| format!("flight_listen: '{listen}' is not an IP:PORT address (or `off`)"))?;
    let path =
        |key: &'static str| move |f: &ConfigFile| f.string(key).map(|s| s.map(PathBuf::from));
    Ok(Some(quipu_frontdoor::flight::FlightOptions {
        listen,
        tls_cert: from_file(args.flight_tls_cert.clone(), file, path("flight_tls_cert"))?,
        tls_key: from_file(args.flight_tls_key.clone(), file, path("flight_tls_key"))?,
        allow_plaintext: from_file(args.flight_allow_plaintext, file, |f| {
            f.bool("flight_allow_plaintext")
        })?
        .unwrap_or(false),
        admin: None,
        max_sessions_per_user: from_file(args.flight_max_sessions_per_user, file, |f| {
            f.int("flight_max_sessions_per_user")
        })?
        .unwrap_or(quipu_frontdoor::flight::DEFAULT_MAX_SESSIONS_PER_USER),
        session_idle_timeout: from_file(args.flight_session_idle_timeout, file, |f| {
            f.int("flight_session_idle_timeout")
        })?
        .map(Duration::from_secs)
        .unwrap_or(quipu_frontdoor::flight::DEFAULT_SESSION_IDLE_TIMEOUT),
        first_call_timeout: from_file(args.flight_first_call_timeout, file, |f| {
            f.int("flight_first_call_timeout")
        })?
        .map(Duration::from_secs)
        .unwrap_or(quipu_frontdoor::flight::DEFAULT_FIRST_CALL_TIMEOUT),
        max_connection_age: from_file(args.flight_max_connection_age, file, |f| {
            f.int("flight_max_connection_age")
        })?
        .map(Duration::from_secs)
        .unwrap_or(quipu_frontdoor::flight::DEFAULT_MAX_CONNECTION_AGE),
    }))
}

/// `quipu executor`.
pub async fn run_executor(args: ExecutorArgs) -> Result<(), String> {
    let file = ConfigFile::load(args.config.as_deref(), EXECUTOR_KEYS)?;
    let scheduler = from_file(args.scheduler, &file, |f| f.string("scheduler"))?.ok_or(
        "no scheduler: give --scheduler HOST:PORT (or QUIPU_SCHEDULER, or 'scheduler' in the \
         config file)",
    )?;
    let (host, port) = scheduler
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("--scheduler '{scheduler}' is not HOST:PORT"))?;
    let catalog_url = from_file(args.catalog_url, &file, |f| f.string("catalog_url"))?
        .unwrap_or_else(|| format!("http://{host}:50060"));
    if !catalog_url.starts_with("http://") && !catalog_url.starts_with("https://") {
        return Err(format!(
            "--catalog-url '{catalog_url}' must start with http:// or https://"
        ));
    }
    let token_file = from_file(args.token_file, &file, |f| {
        f.string("token_file").map(|s| s.map(PathBuf::from))
    })?;
    let opts = ExecutorOptions {
        scheduler_host: host,
        scheduler_port: port,
        catalog_url,
        token: cluster_token(token_file)?,
        bind: from_file(args.bind, &file, |f| f.string("bind"))?
            .unwrap_or_else(|| "127.0.0.1".into()),
        external_host: from_file(args.external_host, &file, |f| f.string("external_host"))?,
        port: from_file(args.port, &file, |f| f.int("port"))?.unwrap_or(50051),
        grpc_port: from_file(args.grpc_port, &file, |f| f.int("grpc_port"))?.unwrap_or(50052),
        http_port: from_file(args.http_port, &file, |f| f.int("http_port"))?.unwrap_or(50061),
        slots: from_file(args.slots, &file, |f| f.int("slots"))?.unwrap_or(0),
        work_dir: from_file(args.work_dir, &file, |f| {
            f.string("work_dir").map(|s| s.map(PathBuf::from))
        })?,
        heartbeat_seconds: from_file(args.heartbeat, &file, |f| f.int("heartbeat"))?.unwrap_or(5),
        scheduling: task_scheduling(from_file(args.task_scheduling, &file, |f| {
            f.string("task_scheduling")
        })?)?,
        scheduler_patience: Duration::from_secs(30),
    };
    tokio::select! {
        r = quipu_executor::process::run(opts) => r.map_err(|e| e.to_string()),
        _ = stopped() => {
            eprintln!("quipu executor: stopping");
            Ok(())
        }
    }
}
