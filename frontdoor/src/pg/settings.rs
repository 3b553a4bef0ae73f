//! Session settings and the statements the front door answers itself,
//! as PostgreSQL would: `SET`/`SHOW` of PostgreSQL's settings (clients send
//! `extra_float_digits`, `application_name`, `DateStyle`, ...; only
//! `statement_timeout`, `TimeZone` and `DateStyle`'s order act, an unknown name is refused, and
//! so is a value asking for output Quipu does not write), the defaults
//! `SHOW` and `current_setting`
//! answer, and transaction statements (Quipu only reads). Settings under
//! `datafusion.`, `quipu.` and `ballista.` go to the engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::sql::sqlparser::ast::{Expr, Set, Statement, Value};
use pgwire::api::Type;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::PgWireResult;

use quipu_connectors::dialect::datetime_input::{self, DateOrder};

use super::connection::Conn;
use super::errors::error;

#[derive(Clone, Debug)]
pub(super) enum Local {
    Set {
        name: String,
        value: String,
    },
    Show(String),
    Begin,
    Commit,
    Rollback,
    /// Accepted and ignored (`SET ROLE`, `DISCARD ALL`, ...).
    Ignore(String),
}

/// `statement_timeout` values: a number of milliseconds or a number with
/// a unit (`ms`, `s`, `min`, `h`), as PostgreSQL takes them; 0 turns it off.
fn parse_timeout(value: &str) -> Option<Option<Duration>> {
    let v = value.trim().trim_matches('\'').trim().to_ascii_lowercase();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n.checked_mul(1000)?,
        "min" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some((ms > 0).then(|| Duration::from_millis(ms)))
}

fn setting_value(values: &[Expr]) -> String {
    values
        .iter()
        .map(|v| match v {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                other => other.to_string(),
            },
            Expr::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a setting belongs to DataFusion / Quipu / Ballista (passed to
/// the engine's session) rather than to PostgreSQL.
fn engine_setting(name: &str) -> bool {
    ["datafusion.", "quipu.", "ballista."]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Sorts a parsed statement into what the front door answers itself and
/// what goes to the engine.
pub(super) fn classify(stmt: &Statement) -> Option<Local> {
    match stmt {
        Statement::Set(Set::SingleAssignment {
            variable, values, ..
        }) => {
            let name = variable.to_string().to_ascii_lowercase();
            (!engine_setting(&name)).then(|| Local::Set {
                name,
                value: setting_value(values),
            })
        }
        Statement::Set(Set::SetTimeZone { value, .. }) => Some(Local::Set {
            name: "timezone".into(),
            value: setting_value(std::slice::from_ref(value)),
        }),
        Statement::Set(other) => Some(Local::Ignore(other.to_string())),
        Statement::ShowVariable { variable } => {
            let name = variable
                .iter()
                .map(|i| i.value.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(".");
            (!engine_setting(&name)).then_some(Local::Show(name))
        }
        Statement::StartTransaction { .. } => Some(Local::Begin),
        Statement::Commit { .. } => Some(Local::Commit),
        // Quipu reads only: a savepoint has nothing to undo.
        Statement::Rollback {
            savepoint: Some(_), ..
        } => Some(Local::Ignore("ROLLBACK".into())),
        Statement::Rollback { .. } => Some(Local::Rollback),
        Statement::Savepoint { .. } => Some(Local::Ignore("SAVEPOINT".into())),
        Statement::ReleaseSavepoint { .. } => Some(Local::Ignore("RELEASE".into())),
        Statement::Discard { .. } | Statement::Deallocate { .. } => {
            Some(Local::Ignore(stmt.to_string()))
        }
        _ => None,
    }
}

fn text_response(name: &str, value: &str) -> PgWireResult<Response> {
    let fields = Arc::new(vec![FieldInfo::new(
        name.to_string(),
        None,
        None,
        Type::TEXT,
        FieldFormat::Text,
    )]);
    let mut encoder = DataRowEncoder::new(fields.clone());
    encoder.encode_field(&Some(value.to_string()))?;
    let row = encoder.take_row();
    Ok(Response::Query(QueryResponse::new(
        fields,
        futures::stream::iter([Ok(row)]),
    )))
}

impl Conn {
    pub(super) fn run_local(&self, local: &Local) -> PgWireResult<Response> {
        match local {
            Local::Set { name, value } => {
                if name == "statement_timeout" {
                    let t = parse_timeout(value).ok_or_else(|| {
                        error(
                            "22023",
                            format!(
                                "invalid value for parameter \"statement_timeout\": \"{value}\""
                            ),
                        )
                    })?;
                    *self.statement_timeout.lock().unwrap() = t;
                    let shown = match t {
                        None => "0".to_string(),
                        Some(d) => format!("{}ms", d.as_millis()),
                    };
                    self.settings.lock().unwrap().insert(name.clone(), shown);
                } else if name == "timezone" {
                    let zone = time_zone(value).ok_or_else(|| {
                        error(
                            "22023",
                            format!("invalid value for parameter \"TimeZone\": \"{value}\""),
                        )
                    })?;
                    if let Some(session) = self.session.get() {
                        engine_time_zone(session, &zone);
                    }
                    self.settings.lock().unwrap().insert(name.clone(), zone);
                } else if name == "datestyle" {
                    let now = setting(&self.settings, name).unwrap_or_default();
                    let (shown, order) = date_style(value, &now)?;
                    if let Some(session) = self.session.get() {
                        engine_date_order(session, order);
                    }
                    self.settings.lock().unwrap().insert(name.clone(), shown);
                } else {
                    if !known_setting(name) {
                        return Err(error(
                            "42704",
                            format!("unrecognized configuration parameter \"{name}\""),
                        ));
                    }
                    if let Some(why) = unsupported_value(name, value) {
                        return Err(error("0A000", why));
                    }
                    let mut settings = self.settings.lock().unwrap();
                    // `SET x TO DEFAULT`: `SHOW` answers the default again.
                    match value.trim().eq_ignore_ascii_case("default") {
                        true => settings.remove(name),
                        false => settings.insert(name.clone(), value.clone()),
                    };
                }
                Ok(Response::Execution(Tag::new("SET")))
            }
            Local::Show(name) => {
                let value = setting(&self.settings, name).ok_or_else(|| {
                    error(
                        "42704",
                        format!("unrecognized configuration parameter \"{name}\""),
                    )
                })?;
                text_response(name, &value)
            }
            Local::Begin => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            Local::Commit => Ok(Response::TransactionEnd(Tag::new("COMMIT"))),
            Local::Rollback => Ok(Response::TransactionEnd(Tag::new("ROLLBACK"))),
            Local::Ignore(what) => {
                let tag = what
                    .split_whitespace()
                    .next()
                    .unwrap_or("SET")
                    .to_ascii_uppercase();
                Ok(Response::Execution(Tag::new(&tag)))
            }
        }
    }
}

/// Whether `name` (lower case) is one of PostgreSQL's settings, or a
/// custom one (a name with a dot, `myapp.user_id`), which `SET` takes: any
/// other is PostgreSQL's error (42704). Quipu took any name, so a
/// misspelt `SET statment_timeout = '5s'` said `SET` and did nothing.
fn known_setting(name: &str) -> bool {
    name.contains('.')
        || include_str!("setting_names.txt")
            .lines()
            .any(|n| !n.starts_with('#') && n == name)
}

/// Why a value of a PostgreSQL setting that changes how values are
/// written or read is refused: Quipu writes them one way, so `SET
/// DateStyle = 'German'` and the like were accepted and printed ISO dates
/// all the same. None for a value that asks for what Quipu does (or a
/// setting that does not change values).
fn unsupported_value(name: &str, value: &str) -> Option<String> {
    let v = value.trim().trim_matches('\'').trim().to_ascii_lowercase();
    let refused = match name {
        "intervalstyle" => !matches!(v.as_str(), "postgres" | "default"),
        // 1 to 3 (and PostgreSQL's default, 1) ask for the shortest
        // text that reads back as the same value, which Quipu writes;
        // 0 and below ask for fewer digits.
        "extra_float_digits" => !v.parse::<i32>().is_ok_and(|n| n > 0) && v != "default",
        "bytea_output" => !matches!(v.as_str(), "hex" | "default"),
        // Off, a backslash in '...' escapes the next character.
        "standard_conforming_strings" => {
            !matches!(v.as_str(), "on" | "true" | "yes" | "1" | "default")
        }
        _ => false,
    };
    refused.then(|| {
        let does = match name {
            "intervalstyle" => {
                "writes intervals in PostgreSQL's default form (IntervalStyle postgres)"
            }
            "extra_float_digits" => {
                "writes floats as the shortest text that reads back as the same value \
                 (extra_float_digits 1 to 3)"
            }
            "bytea_output" => "writes bytea in hex (bytea_output hex)",
            _ => "reads a backslash in a string literal as itself (standard_conforming_strings on)",
        };
        format!("{name} = {value} is not supported: Quipu {does}")
    })
}

/// A `TimeZone` value Arrow reads (an IANA name such as `America/Lima`,
/// `UTC`, or an offset such as `+05:30`), as it is kept; `DEFAULT` and
/// `LOCAL` are the server's, UTC.
pub(crate) fn time_zone(value: &str) -> Option<String> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("default") || v.eq_ignore_ascii_case("local") {
        return Some("UTC".into());
    }
    // `'+05:30'` is a POSIX zone to PostgreSQL (west of UTC: it shows
    // `-05:30`); a whole number of hours (`'+05'`) is an ISO offset.
    if v.contains(':')
        && let Some(east) = quipu_connectors::dialect::at_time_zone::posix_offset(v)
    {
        return Some(east);
    }
    v.parse::<datafusion::arrow::array::timezone::Tz>()
        .is_ok()
        .then(|| v.to_string())
}

/// The settings a client asked for when it connected, names in lower
/// case: each startup parameter that is one (all but `user`, `database`,
/// `options` and `replication`), then each `-c name=value` /
/// `--name=value` of `options`, a parameter over an option of the same
/// name, as PostgreSQL applies them.
pub(crate) fn startup_settings(metadata: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = vec![];
    let mut put = |name: &str, value: String| {
        let name = name.to_ascii_lowercase();
        found.retain(|(n, _)| *n != name);
        found.push((name, value));
    };
    if let Some(options) = metadata.get("options") {
        let mut words = option_words(options).into_iter();
        while let Some(w) = words.next() {
            let setting = match w.strip_prefix("--") {
                Some(rest) => Some(rest.to_string()),
                None if w == "-c" => words.next(),
                None => w.strip_prefix("-c").map(str::to_string),
            };
            if let Some((name, value)) = setting.as_deref().and_then(|s| s.split_once('=')) {
                // `--search-path=x` is `search_path`.
                put(&name.replace('-', "_"), value.to_string());
            }
        }
    }
    const NOT_SETTINGS: &[&str] = &["user", "database", "options", "replication"];
    let mut parameters: Vec<(&String, &String)> = metadata
        .iter()
        .filter(|(k, _)| !NOT_SETTINGS.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .collect();
    parameters.sort_by_key(|(k, _)| k.to_ascii_lowercase());
    for (k, v) in parameters {
        put(k, v.clone());
    }
    found
}

/// The words of a startup `options` value: split at unescaped blanks, a
/// backslash taking the next character as it is (PostgreSQL's
/// `pg_split_opts`).
fn option_words(options: &str) -> Vec<String> {
    let mut words = vec![];
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `DateStyle` as PostgreSQL reads it (`datetime_input::date_style`),
/// from the value `now` shows: the value `SHOW` answers (`ISO, DMY`) and
/// the order. Before, the order was accepted and ignored (`05/01/2024`
/// read month first under `DMY`). Output styles other than ISO are
/// refused: Quipu writes ISO dates.
fn date_style(value: &str, now: &str) -> PgWireResult<(String, DateOrder)> {
    use datetime_input::StyleError;
    match datetime_input::date_style(value, order_shown(now)) {
        Ok(order) => Ok((format!("ISO, {}", order.name()), order)),
        Err(StyleError::Style(_)) => Err(error(
            "0A000",
            format!(
                "datestyle = {value} is not supported: Quipu writes dates and times in ISO form \
                 (DateStyle ISO)"
            ),
        )),
        Err(e) => {
            let mut info = pgwire::error::ErrorInfo::new(
                "ERROR".into(),
                "22023".into(),
                format!("invalid value for parameter \"DateStyle\": \"{value}\""),
            );
            info.detail = Some(e.to_string());
            Err(pgwire::error::PgWireError::UserError(Box::new(info)))
        }
    }
}

/// The order of a `DateStyle` as `SHOW` shows it (`ISO, DMY`).
pub(super) fn order_shown(shown: &str) -> DateOrder {
    shown
        .split(',')
        .find_map(DateOrder::named)
        .unwrap_or_default()
}

/// The engine session reads ambiguous date text (`05/01/2024`) in the
/// connection's `DateStyle` order (`quipu.date_order`).
pub(crate) fn engine_date_order(session: &quipu_scheduler::ClientSession, order: DateOrder) {
    if let Some(o) = session
        .context()
        .state_ref()
        .write()
        .config_mut()
        .options_mut()
        .extensions
        .get_mut::<quipu_connectors::QuipuOptions>()
    {
        o.date_order = order;
    }
}

/// The engine session computes in the connection's time zone: casts to
/// `timestamptz` read a `timestamp` there and `now()` is stamped with it,
/// as PostgreSQL's `TimeZone` does.
pub(crate) fn engine_time_zone(session: &quipu_scheduler::ClientSession, zone: &str) {
    session
        .context()
        .state_ref()
        .write()
        .config_mut()
        .options_mut()
        .execution
        .time_zone = Some(zone.to_string());
}

/// What `SHOW` answers for PostgreSQL settings a client did not set.
/// A PostgreSQL setting of the connection (`SHOW`, `current_setting`):
/// its `SET` value, or the default.
pub(crate) fn setting(settings: &Mutex<HashMap<String, String>>, name: &str) -> Option<String> {
    if let Some(v) = settings.lock().unwrap().get(name) {
        return Some(v.clone());
    }
    default_setting(name).map(str::to_string)
}

fn default_setting(name: &str) -> Option<&'static str> {
    Some(match name {
        "statement_timeout" => "0",
        "default_table_access_method" => "heap",
        // asyncpg turns JIT off around its type introspection.
        "jit" => "off",
        "server_version" => super::PG_VERSION,
        "server_version_num" => super::PG_VERSION_NUM,
        "server_encoding" | "client_encoding" => "UTF8",
        "standard_conforming_strings" | "integer_datetimes" => "on",
        "transaction.isolation.level"
        | "transaction_isolation"
        | "default_transaction_isolation" => "read committed",
        "transaction_read_only" | "default_transaction_read_only" => "off",
        "search_path" => quipu_catalog::DEFAULT_SCHEMA,
        "timezone" | "time.zone" => "UTC",
        "datestyle" => "ISO, MDY",
        "intervalstyle" => "postgres",
        "max_identifier_length" => "63",
        "lc_collate" | "lc_ctype" => "C",
        "application_name" => "",
        "is_superuser" => "off",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_startup_time_zone_is_read_as_postgresql_reads_it() {
        use super::{startup_settings, time_zone};
        let settings = |pairs: &[(&str, &str)]| {
            let metadata = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            startup_settings(&metadata)
        };
        let of = |pairs: &[(&str, &str)]| {
            settings(pairs)
                .into_iter()
                .find(|(n, _)| n == "timezone")
                .and_then(|(_, z)| time_zone(&z))
        };
        // Every setting, names in lower case; a parameter over an option.
        assert_eq!(
            settings(&[
                ("user", "ana"),
                ("database", "crm"),
                (
                    "options",
                    "-c statement_timeout=5s --search-path=sales -c DateStyle=ISO"
                ),
                ("application_name", "psql"),
                ("DateStyle", "ISO, MDY"),
            ]),
            vec![
                ("statement_timeout".to_string(), "5s".to_string()),
                ("search_path".to_string(), "sales".to_string()),
                ("application_name".to_string(), "psql".to_string()),
                ("datestyle".to_string(), "ISO, MDY".to_string()),
            ]
        );
        assert_eq!(
            of(&[("TimeZone", "America/Lima")]).as_deref(),
            Some("America/Lima")
        );
        assert_eq!(
            of(&[("timezone", "Asia/Kolkata")]).as_deref(),
            Some("Asia/Kolkata")
        );
        assert_eq!(
            of(&[(
                "options",
                "-c statement_timeout=5s -c TimeZone=Europe/Berlin"
            )])
            .as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(of(&[("options", "-ctimezone=UTC")]).as_deref(), Some("UTC"));
        assert_eq!(
            of(&[("options", "--timezone=Asia/Tokyo")]).as_deref(),
            Some("Asia/Tokyo")
        );
        assert_eq!(of(&[("options", "-c search_path=x")]), None);
        assert_eq!(of(&[("timezone", "Mars/Olympus")]), None);
        assert_eq!(of(&[("user", "ana")]), None);
    }

    use super::super::parse_sql;
    use super::*;

    #[test]
    fn statement_timeout_values() {
        assert_eq!(parse_timeout("0"), Some(None));
        assert_eq!(parse_timeout("250"), Some(Some(Duration::from_millis(250))));
        assert_eq!(parse_timeout("'2s'"), Some(Some(Duration::from_secs(2))));
        assert_eq!(parse_timeout("1min"), Some(Some(Duration::from_secs(60))));
        assert_eq!(parse_timeout("soon"), None);
        assert_eq!(parse_timeout("5 fortnights"), None);
    }

    #[test]
    fn postgres_settings_stay_in_the_front_door() {
        let stmts = parse_sql("SET extra_float_digits = 3; SET datafusion.execution.batch_size = 10; SHOW statement_timeout; BEGIN").unwrap();
        assert!(
            matches!(classify(&stmts[0]), Some(Local::Set { ref name, ref value }) if name == "extra_float_digits" && value == "3")
        );
        assert!(classify(&stmts[1]).is_none());
        assert!(
            matches!(classify(&stmts[2]), Some(Local::Show(ref n)) if n == "statement_timeout")
        );
        assert!(matches!(classify(&stmts[3]), Some(Local::Begin)));
    }

    #[test]
    fn show_answers_what_was_set_or_the_default() {
        let settings = Mutex::new(HashMap::new());
        assert_eq!(
            setting(&settings, "server_version").as_deref(),
            Some(super::super::PG_VERSION)
        );
        assert_eq!(
            setting(&settings, "search_path").as_deref(),
            Some(quipu_catalog::DEFAULT_SCHEMA)
        );
        assert_eq!(setting(&settings, "jit").as_deref(), Some("off"));
        assert_eq!(setting(&settings, "no_such_setting"), None);
        settings
            .lock()
            .unwrap()
            .insert("application_name".into(), "psql".into());
        assert_eq!(
            setting(&settings, "application_name").as_deref(),
            Some("psql")
        );
    }

    #[test]
    fn transaction_and_session_statements_are_answered_here() {
        let stmts = parse_sql(
            "SET TIME ZONE 'UTC'; ROLLBACK TO SAVEPOINT s; ROLLBACK; DISCARD ALL; COMMIT; \
             SHOW quipu.execution",
        )
        .unwrap();
        assert!(
            matches!(classify(&stmts[0]), Some(Local::Set { ref name, ref value }) if name == "timezone" && value == "UTC")
        );
        // Quipu only reads: a savepoint has nothing to undo.
        assert!(matches!(classify(&stmts[1]), Some(Local::Ignore(ref t)) if t == "ROLLBACK"));
        assert!(matches!(classify(&stmts[2]), Some(Local::Rollback)));
        assert!(
            matches!(classify(&stmts[3]), Some(Local::Ignore(ref t)) if t.starts_with("DISCARD"))
        );
        assert!(matches!(classify(&stmts[4]), Some(Local::Commit)));
        // The engine's settings are the engine's to show.
        assert!(classify(&stmts[5]).is_none());
    }
}
