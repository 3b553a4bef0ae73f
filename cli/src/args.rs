//! Command-line arguments. Usage errors exit with code 2 (clap's default),
//! query and user errors with 1.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

#[derive(Debug, Parser)]
#[command(
    name = "quipu",
    version,
    about = "Quipu: one SQL database over Yachay-Shop's CRM, POS, inventory and lake",
    after_help = "Examples:\n  quipu catalog add-source lake --kind lake --url file:///data/lake\n  quipu sql \"SELECT count(*) FROM lake.public.reviews\"\n  quipu sql            # interactive shell"
)]
pub struct Cli {
    /// Where the catalog is stored [default: ./quipu-data].
    #[arg(long, global = true, env = "QUIPU_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log more (where each query ran and why); QUIPU_LOG=debug for more still.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// A running server's Flight SQL address (grpc://HOST:15433): `sql`,
    /// `catalog` and `users` then run there, as --user, instead of on the
    /// catalog in --data-dir.
    #[arg(long, global = true, env = "QUIPU_SERVER")]
    pub server: Option<String>,
    /// The user to sign in as with --server; the password comes from
    /// QUIPU_USER_PASSWORD or --user-password-file.
    #[arg(long, global = true, env = "QUIPU_USER")]
    pub user: Option<String>,
    /// File holding the --user's password.
    #[arg(long, global = true)]
    pub user_password_file: Option<PathBuf>,
    /// PEM certificate(s) to trust for a grpc+tls:// --server, besides the
    /// system's roots (for a self-signed server certificate).
    #[arg(long, global = true, env = "QUIPU_SERVER_CA")]
    pub server_ca: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The data directory when neither flag, environment nor config file name one.
pub const DEFAULT_DATA_DIR: &str = "./quipu-data";

impl Cli {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage sources, tables and views.
    #[command(
        subcommand,
        after_help = "Examples:\n  quipu catalog add-source lake --kind lake --url file:///data/lake\n  quipu catalog list --tables\n  quipu catalog describe lake.public.orders"
    )]
    Catalog(CatalogCommand),
    /// Run SQL: one-shot with a query, an interactive shell without.
    Sql(SqlArgs),
    /// Generate the Yachay-Shop dataset and load it into live systems.
    #[command(
        after_help = "Examples:\n  quipu gen --scale 0.1 --seed 42 --lake ./lake\n  quipu gen --scale 1 --crm-url postgres://quipu@127.0.0.1:5432/crm \\\n      --pos-url postgres://quipu@127.0.0.1:5433/pos \\\n      --mongodb-url mongodb://127.0.0.1:27017/inventory --lake s3://bucket/lake\n\nConnection URLs may be references (env:NAME, file:/path) to keep passwords off\nthe command line. Each database must be empty or hold a previous generation,\nwhich is replaced. PostgreSQL is loaded in one transaction per database."
    )]
    Gen(GenArgs),
    /// Run a cluster scheduler: plans queries, owns the catalog, hands tasks to executors.
    #[command(
        after_help = "Examples:\n  QUIPU_CLUSTER_TOKEN=... quipu scheduler --bind 0.0.0.0 --data-dir /var/lib/quipu\n  quipu scheduler --config /etc/quipu/scheduler.toml\n\nExecutors register on --port (gRPC) and fetch the catalog from --http-port with\nthe cluster token; /metrics and /health are served there too."
    )]
    Scheduler(SchedulerArgs),
    /// Run a cluster executor that registers with a scheduler and runs its tasks.
    #[command(
        after_help = "Examples:\n  QUIPU_CLUSTER_TOKEN=... quipu executor --scheduler sched.internal:50050\n  quipu executor --config /etc/quipu/executor.toml\n\nSource passwords are resolved by each executor from its own environment and files\n(the catalog holds env:/file: references only)."
    )]
    Executor(ExecutorArgs),
    /// Manage the users of the PostgreSQL and Flight SQL front doors.
    #[command(
        subcommand,
        after_help = "Examples:\n  QUIPU_PASSWORD=... quipu users add ana --grant lake --grant pos\n  quipu users add admin --admin --password-file /run/secrets/admin\n  quipu users list"
    )]
    Users(UsersCommand),
    /// Run a scheduler with an executor inside it: a one-machine cluster.
    #[command(
        after_help = "Example:\n  QUIPU_CLUSTER_TOKEN=... quipu serve --data-dir ./quipu-data"
    )]
    Serve(SchedulerArgs),
    /// Write a daily, weekly or monthly sales report (HTML with charts, and
    /// the CSV tables behind them) from the yachay.* views.
    #[command(
        after_help = "Examples:\n  quipu report daily --out /var/lib/quipu/reports            # yesterday (UTC)\n  quipu report weekly --date 2026-10-31 --out reports         # the week holding that day\n  quipu report monthly --date latest --out reports            # the month of the newest sale\n  quipu --server grpc://quipu:15433 --user reports report daily --out reports\n\nThe report goes to OUT/PERIOD-DATE/ (index.html and one CSV per chart), built\nunder a hidden temporary name and renamed into place when complete. A period\nwith no sales is an error (exit 1, nothing written)."
    )]
    Report(ReportArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportPeriod {
    Daily,
    Weekly,
    Monthly,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The period the report covers.
    #[arg(value_enum)]
    pub period: ReportPeriod,
    /// A day of the period to report (YYYY-MM-DD), or `latest` for the
    /// period of the newest sale [default: the last complete period before
    /// today, UTC].
    #[arg(long)]
    pub date: Option<String>,
    /// Folder that receives the report folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// TOML file with any of the settings below (flags and QUIPU_* win).
    #[arg(long, env = "QUIPU_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "QUIPU_BIND")]
    pub bind: Option<String>,
    /// gRPC port: executors register and queries are submitted here [default: 50050].
    #[arg(long, env = "QUIPU_SCHEDULER_PORT")]
    pub port: Option<u16>,
    /// HTTP port: catalog for executors, /metrics, /health [default: 50060].
    #[arg(long, env = "QUIPU_HTTP_PORT")]
    pub http_port: Option<u16>,
    /// Host name executors and clients use to reach this scheduler [default: the bind address].
    #[arg(long, env = "QUIPU_EXTERNAL_HOST")]
    pub external_host: Option<String>,
    /// File holding the cluster token (QUIPU_CLUSTER_TOKEN wins).
    #[arg(long, env = "QUIPU_CLUSTER_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Seconds without news before an executor counts as lost [default: 30].
    #[arg(long, env = "QUIPU_EXECUTOR_TIMEOUT")]
    pub executor_timeout: Option<u64>,
    /// Task slots of the in-process executor (serve only) [default: cores].
    #[arg(long, env = "QUIPU_SLOTS")]
    pub slots: Option<usize>,
    /// PostgreSQL wire protocol address, or `off` [default: 127.0.0.1:15432].
    #[arg(long, env = "QUIPU_PG_LISTEN")]
    pub pg_listen: Option<String>,
    /// PEM certificate chain for PostgreSQL TLS (with --pg-tls-key).
    #[arg(long, env = "QUIPU_PG_TLS_CERT")]
    pub pg_tls_cert: Option<PathBuf>,
    /// PEM private key for PostgreSQL TLS.
    #[arg(long, env = "QUIPU_PG_TLS_KEY")]
    pub pg_tls_key: Option<PathBuf>,
    /// Accept unencrypted PostgreSQL connections on a non-loopback address.
    #[arg(long, env = "QUIPU_PG_ALLOW_PLAINTEXT")]
    pub pg_allow_plaintext: Option<bool>,
    /// PostgreSQL connections served at once; more get SQLSTATE 53300 [default: 100].
    #[arg(long, env = "QUIPU_PG_MAX_CONNECTIONS")]
    pub pg_max_connections: Option<usize>,
    /// PostgreSQL connections still logging in, apart from the above; more are closed [default: 32].
    #[arg(long, env = "QUIPU_PG_MAX_STARTUP_CONNECTIONS")]
    pub pg_max_startup_connections: Option<usize>,
    /// Seconds a PostgreSQL connection may take to log in before it is closed [default: 10].
    #[arg(long, env = "QUIPU_PG_STARTUP_TIMEOUT")]
    pub pg_startup_timeout: Option<u64>,
    /// Arrow Flight SQL address, or `off` [default: 127.0.0.1:15433].
    #[arg(long, env = "QUIPU_FLIGHT_LISTEN")]
    pub flight_listen: Option<String>,
    /// PEM certificate chain for Flight SQL TLS (with --flight-tls-key).
    #[arg(long, env = "QUIPU_FLIGHT_TLS_CERT")]
    pub flight_tls_cert: Option<PathBuf>,
    /// PEM private key for Flight SQL TLS.
    #[arg(long, env = "QUIPU_FLIGHT_TLS_KEY")]
    pub flight_tls_key: Option<PathBuf>,
    /// Serve Flight SQL without TLS on a non-loopback address.
    #[arg(long, env = "QUIPU_FLIGHT_ALLOW_PLAINTEXT")]
    pub flight_allow_plaintext: Option<bool>,
    /// Flight SQL sessions (tokens) one user holds at once; at the cap a sign-in closes that user's least recently used one [default: 64].
    #[arg(long, env = "QUIPU_FLIGHT_MAX_SESSIONS_PER_USER")]
    pub flight_max_sessions_per_user: Option<usize>,
    /// Seconds a Flight SQL token may go unused before it expires [default: 1800].
    #[arg(long, env = "QUIPU_FLIGHT_SESSION_IDLE_TIMEOUT")]
    pub flight_session_idle_timeout: Option<u64>,
    /// Seconds a new Flight SQL connection has to start its first call before it is closed [default: 60].
    #[arg(long, env = "QUIPU_FLIGHT_FIRST_CALL_TIMEOUT")]
    pub flight_first_call_timeout: Option<u64>,
    /// Seconds after which a Flight SQL connection is asked to close (HTTP/2 GOAWAY; clients reconnect) [default: 3600].
    #[arg(long, env = "QUIPU_FLIGHT_MAX_CONNECTION_AGE")]
    pub flight_max_connection_age: Option<u64>,
    /// How tasks reach executors: `pull` (executors poll) or `push` (scheduler only) [default: pull].
    #[arg(long, env = "QUIPU_TASK_SCHEDULING")]
    pub task_scheduling: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// TOML file with any of the settings below (flags and QUIPU_* win).
    #[arg(long, env = "QUIPU_CONFIG")]
    pub config: Option<PathBuf>,
    /// The scheduler's gRPC address, HOST:PORT.
    #[arg(long, env = "QUIPU_SCHEDULER")]
    pub scheduler: Option<String>,
    /// The scheduler's HTTP address [default: http://SCHEDULER_HOST:50060].
    #[arg(long, env = "QUIPU_CATALOG_URL")]
    pub catalog_url: Option<String>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "QUIPU_BIND")]
    pub bind: Option<String>,
    /// Host name the scheduler and other executors use to reach this one.
    #[arg(long, env = "QUIPU_EXTERNAL_HOST")]
    pub external_host: Option<String>,
    /// Arrow Flight port: shuffle data and results [default: 50051].
    #[arg(long, env = "QUIPU_EXECUTOR_PORT")]
    pub port: Option<u16>,
    /// gRPC port for the scheduler's task calls [default: 50052].
    #[arg(long, env = "QUIPU_EXECUTOR_GRPC_PORT")]
    pub grpc_port: Option<u16>,
    /// HTTP port: /metrics, /health [default: 50061].
    #[arg(long, env = "QUIPU_HTTP_PORT")]
    pub http_port: Option<u16>,
    /// Concurrent tasks [default: cores].
    #[arg(long, env = "QUIPU_SLOTS")]
    pub slots: Option<usize>,
    /// Shuffle files and the catalog replica [default: a folder under the temp dir].
    #[arg(long, env = "QUIPU_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// File holding the cluster token (QUIPU_CLUSTER_TOKEN wins).
    #[arg(long, env = "QUIPU_CLUSTER_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Seconds between reports to the scheduler [default: 5].
    #[arg(long, env = "QUIPU_HEARTBEAT")]
    pub heartbeat: Option<u64>,
    /// `pull` or `push`: must match the scheduler's [default: pull].
    #[arg(long, env = "QUIPU_TASK_SCHEDULING")]
    pub task_scheduling: Option<String>,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Scale factor: 1 means 100k customers, 1M online orders, 2M store sales.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub scale: f64,
    /// Random seed: the same seed and scale give the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// PostgreSQL database for the CRM (URL or key=value string).
    #[arg(long, env = "QUIPU_GEN_CRM_URL")]
    pub crm_url: Option<String>,
    /// PostgreSQL database for the POS.
    #[arg(long, env = "QUIPU_GEN_POS_URL")]
    pub pos_url: Option<String>,
    /// MongoDB database for the inventory (mongodb://host:port/inventory).
    #[arg(long, env = "QUIPU_GEN_MONGODB_URL")]
    pub mongodb_url: Option<String>,
    /// The lake: a local folder, file:///path or s3://bucket/prefix.
    #[arg(long, env = "QUIPU_GEN_LAKE")]
    pub lake: Option<String>,
    /// Print the report as JSON (rows, seconds and checksum per table).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, Serialize, Deserialize)]
pub enum Kind {
    Lake,
    Postgres,
    Mongodb,
}

#[derive(Debug, Clone, Copy, ValueEnum, Serialize, Deserialize)]
pub enum Format {
    Parquet,
    Csv,
    Json,
}

#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum CatalogCommand {
    /// Register a source, check that it answers, and discover its tables.
    #[command(
        after_help = "Examples:\n  quipu catalog add-source lake --kind lake --url file:///data/lake\n  quipu catalog add-source exports --kind lake --url s3://bucket/exports --format csv \\\n      --option region=us-east-1 --option secret_access_key=env:AWS_SECRET_ACCESS_KEY\n  quipu catalog add-source crm --kind postgres --option host=db --option dbname=crm \\\n      --option user=quipu --option password=env:CRM_PASSWORD\n\nSecret options (password, secret_access_key, session_token) must be references:\nenv:NAME or file:/path. They are read only when connecting and never stored or printed."
    )]
    AddSource {
        /// Source name; it becomes the first part of table names (NAME.schema.table).
        name: String,
        #[arg(long, value_enum)]
        kind: Kind,
        /// Lake location: file:///path, a local path, s3://bucket/prefix or memory://host/.
        #[arg(long)]
        url: Option<String>,
        /// Lake file format when file names do not tell.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Connection option KEY=VALUE (repeatable).
        #[arg(long = "option", short = 'o', value_name = "KEY=VALUE")]
        options: Vec<String>,
    },
    /// List sources and their table counts.
    #[command(after_help = "Example:\n  quipu catalog list --tables")]
    List {
        /// List every table too.
        #[arg(long)]
        tables: bool,
    },
    /// Show a source (options, tables) or a table (columns).
    #[command(
        after_help = "Examples:\n  quipu catalog describe lake\n  quipu catalog describe lake.clickstream.events"
    )]
    Describe {
        /// A source name or source.schema.table.
        name: String,
    },
    /// Remove a source (with its tables) or one table.
    #[command(
        after_help = "Examples:\n  quipu catalog drop lake\n  quipu catalog drop lake.public.old_exports"
    )]
    Drop {
        /// A source name or source.schema.table.
        name: String,
    },
    /// Re-discover a source's tables and report what changed.
    #[command(after_help = "Example:\n  quipu catalog refresh lake")]
    Refresh { name: String },
    /// Split reads of a PostgreSQL or MongoDB table into N partitions (key or
    /// _id ranges read in parallel), or `auto` (from the table's size).
    #[command(
        after_help = "Examples:\n  quipu catalog set-partitions pos.public.transaction_lines 4\n  quipu catalog set-partitions inventory.public.stock auto\n\nThe table's setting wins over its source's `partitions` option; 1 turns splitting off."
    )]
    SetPartitions {
        /// source.schema.table
        name: String,
        /// 1 to 64, or auto.
        partitions: String,
    },
    /// Declare a table at a lake path, optionally with its columns.
    #[command(
        after_help = "Examples:\n  quipu catalog add-table lake.clickstream.events --path clickstream/\n  quipu catalog add-table lake.marketing.ga --path marketing/ga/ --format csv \\\n      --column date:date --column utm_campaign:text --column sessions:bigint"
    )]
    AddTable {
        /// source.schema.table (or source.table for schema public).
        name: String,
        /// Folder or file, relative to the source URL.
        #[arg(long)]
        path: String,
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Declared column NAME:TYPE (repeatable); without it the schema is inferred.
        #[arg(long = "column", short = 'c', value_name = "NAME:TYPE")]
        columns: Vec<String>,
        /// Replace an existing table of that name.
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Execution {
    Auto,
    Local,
    Cluster,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  quipu sql \"SELECT * FROM lake.public.reviews LIMIT 5\"\n  quipu sql --format csv \"SELECT ...\" > out.csv\n  quipu sql -f report.sql\n  quipu sql            # interactive: end statements with ';', \\q to quit"
)]
pub struct SqlArgs {
    /// SQL to run (several statements separated by ';'). Omit for a shell.
    pub query: Option<String>,
    /// Read the SQL from a file.
    #[arg(long, short = 'f', conflicts_with = "query")]
    pub file: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Where to run: shorthand for SET quipu.execution.
    #[arg(long, value_enum)]
    pub execution: Option<Execution>,
    /// Send cluster work to this running scheduler (http://HOST:50050)
    /// instead of an embedded one.
    #[arg(long, env = "QUIPU_CLUSTER")]
    pub cluster: Option<String>,
    /// Run on the server at this Flight SQL address (grpc://HOST:15433):
    /// the same as the global --server.
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum UsersCommand {
    /// Create a user, or replace one's password and grants. The password
    /// comes from --password-file, else QUIPU_PASSWORD, else one line of stdin.
    Add {
        name: String,
        /// May read every source and change the catalog and users.
        #[arg(long)]
        admin: bool,
        /// A source this user may read (repeat; `*` for all).
        #[arg(long = "grant", value_name = "SOURCE")]
        grants: Vec<String>,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Let a user read more sources.
    Grant {
        name: String,
        #[arg(required = true)]
        sources: Vec<String>,
    },
    /// Take sources away from a user.
    Revoke {
        name: String,
        #[arg(required = true)]
        sources: Vec<String>,
    },
    /// Remove a user.
    Drop { name: String },
    /// List users and what they may read (never their password hashes).
    List,
}
