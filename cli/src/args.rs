//! Command-line arguments. Usage errors exit with code 2 (clap's default),
//! query and user errors with 1.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "quipu",
    version,
    about = "Quipu: one SQL database over Yachay-Shop's CRM, POS, inventory and lake",
    after_help = "Examples:\n  quipu catalog add-source lake --kind lake --url file:///data/lake\n  quipu sql \"SELECT count(*) FROM lake.public.reviews\"\n  quipu sql            # interactive shell"
)]
pub struct Cli {
    /// Where the catalog is stored.
    #[arg(
        long,
        global = true,
        env = "QUIPU_DATA_DIR",
        default_value = "./quipu-data"
    )]
    pub data_dir: PathBuf,
    /// Log more (where each query ran and why); QUIPU_LOG=debug for more still.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
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

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    Lake,
    Postgres,
    Mongodb,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Parquet,
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
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
}
