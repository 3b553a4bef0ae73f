//! `quipu users ...`: users of the PostgreSQL and Flight SQL front doors,
//! kept in the catalog with their SCRAM-SHA-256 hash, never the password.

use std::io::BufRead;
use std::path::Path;

use quipu_catalog::CatalogStore;

use crate::args::UsersCommand;

/// A password from `file`, else from the environment variable `env`
/// (line ends trimmed); `None` when neither is given.
pub fn password_from(file: Option<&Path>, env: &str) -> Result<Option<String>, String> {
    let raw = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read password file {}: {e}", path.display()))?,
        None => match std::env::var(env) {
            Ok(p) => p,
            Err(_) => return Ok(None),
        },
    };
    Ok(Some(raw.trim_end_matches(['\n', '\r']).to_string()))
}

/// The new password: --password-file, else QUIPU_PASSWORD, else stdin.
pub fn read_password(file: Option<&Path>) -> Result<String, String> {
    let password = match password_from(file, "QUIPU_PASSWORD")? {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
    };
    if password.is_empty() {
        return Err(
            "no password: give --password-file, set QUIPU_PASSWORD, or type it on stdin".into(),
        );
    }
    Ok(password)
}

fn check_sources(store: &CatalogStore, sources: &[String]) -> Result<(), String> {
    for s in sources {
        if s != "*" && store.source(s).map_err(|e| e.to_string())?.is_none() {
            return Err(format!("source `{s}` does not exist"));
        }
    }
    Ok(())
}

/// The password `users add` needs, read where the CLI runs (never by a
/// server): `None` for the other commands.
pub fn password_for(cmd: &UsersCommand) -> Result<Option<String>, String> {
    match cmd {
        UsersCommand::Add { password_file, .. } => {
            read_password(password_file.as_deref()).map(Some)
        }
        _ => Ok(None),
    }
}

/// `quipu users ...` on the catalog in `data_dir`.
pub fn run(data_dir: &Path, cmd: UsersCommand) -> Result<(), String> {
    let store = CatalogStore::open(data_dir).map_err(|e| e.to_string())?;
    let password = password_for(&cmd)?;
    print!("{}", execute(&store, cmd, password)?);
    Ok(())
}

/// Runs one users command on `store`; `password` is the new password of
/// `users add`. Returns what to show.
pub fn execute(
    store: &CatalogStore,
    cmd: UsersCommand,
    password: Option<String>,
) -> Result<String, String> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let user = |name: &str| {
        store
            .user(name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("user `{name}` does not exist"))
    };
    match cmd {
        UsersCommand::Add {
            name,
            admin,
            grants,
            ..
        } => {
            check_sources(store, &grants)?;
            let password = password.ok_or("users add needs the new user's password")?;
            let def = quipu_frontdoor::users::new_user(&name, &password, admin, grants)
                .map_err(|e| e.to_string())?;
            store.put_user(&def).map_err(|e| e.to_string())?;
            let _ = writeln!(out, "user {name} saved");
        }
        UsersCommand::Grant { name, sources } => {
            check_sources(store, &sources)?;
            let mut def = user(&name)?;
            for s in sources {
                if !def.sources.contains(&s) {
                    def.sources.push(s);
                }
            }
            store.put_user(&def).map_err(|e| e.to_string())?;
        }
        UsersCommand::Revoke { name, sources } => {
            let mut def = user(&name)?;
            def.sources.retain(|s| !sources.contains(s));
            store.put_user(&def).map_err(|e| e.to_string())?;
        }
        UsersCommand::Drop { name } => store.drop_user(&name).map_err(|e| e.to_string())?,
        UsersCommand::List => {
            for u in store.users().map_err(|e| e.to_string())? {
                let reads = if u.readable_sources().is_none() {
                    "all sources".to_string()
                } else if u.sources.is_empty() {
                    "nothing".to_string()
                } else {
                    u.sources.join(", ")
                };
                let _ = writeln!(
                    out,
                    "{}\t{}\treads {reads}",
                    u.name,
                    if u.admin { "admin" } else { "user" }
                );
            }
        }
    }
    Ok(out)
}
