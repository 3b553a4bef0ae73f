//! Secret references. The catalog stores `env:NAME` or `file:/path`; the
//! value is read only where a connection is made, and never logged.

use crate::error::{CatalogError, Result};

/// A parsed reference to a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// Read from an environment variable of the process that connects.
    Env(String),
    /// Read from a file (trailing newline stripped), e.g. a mounted secret.
    File(String),
}

/// Whether a value is written as a secret reference.
pub fn is_reference(value: &str) -> bool {
    value.starts_with("env:") || value.starts_with("file:")
}

/// Parses a reference; the value itself is not looked at.
pub fn parse(value: &str) -> Result<SecretRef> {
    let bad = |reason: &str| CatalogError::Secret {
        reference: value.to_string(),
        reason: reason.to_string(),
    };
    if let Some(name) = value.strip_prefix("env:") {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad(
                "an env: reference names a variable (letters, digits, `_`)",
            ));
        }
        Ok(SecretRef::Env(name.to_string()))
    } else if let Some(path) = value.strip_prefix("file:") {
        if !path.starts_with('/') {
            return Err(bad("a file: reference needs an absolute path"));
        }
        Ok(SecretRef::File(path.to_string()))
    } else {
        Err(bad("expected env:NAME or file:/path"))
    }
}

/// Reads the secret a reference points at. Errors name the reference (which
/// is not secret), never the value.
pub fn resolve(reference: &str) -> Result<String> {
    match parse(reference)? {
        SecretRef::Env(name) => std::env::var(&name).map_err(|_| CatalogError::Secret {
            reference: reference.to_string(),
            reason: format!("environment variable {name} is not set"),
        }),
        SecretRef::File(path) => std::fs::read_to_string(&path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| CatalogError::Secret {
                reference: reference.to_string(),
                reason: format!("cannot read {path}: {}", e.kind()),
            }),
    }
}

/// Compares two secrets in time independent of where they differ (a plain
/// `==` stops at the first different byte).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in b.iter().enumerate() {
        diff |= (*x ^ a.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        assert_eq!(
            parse("env:CRM_PW").unwrap(),
            SecretRef::Env("CRM_PW".into())
        );
        assert_eq!(
            parse("file:/run/secrets/crm").unwrap(),
            SecretRef::File("/run/secrets/crm".into())
        );
        assert!(parse("hunter2").is_err());
        assert!(parse("env:").is_err());
        assert!(parse("env:A B").is_err());
        assert!(parse("file:relative").is_err());
    }

    #[test]
    fn resolve_errors_do_not_leak_and_name_the_reference() {
        let err = resolve("env:QUIPU_TEST_SURELY_UNSET_VAR")
            .unwrap_err()
            .to_string();
        assert!(err.contains("QUIPU_TEST_SURELY_UNSET_VAR"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cr3t\n").unwrap();
        let reference = format!("file:{}", path.display());
        assert_eq!(resolve(&reference).unwrap(), "s3cr3t");
    }
}
