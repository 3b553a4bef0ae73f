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

/// HMAC-SHA-256 of `msg` under `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::hmac::sign(&key, msg).as_ref());
    out
}

/// SHA-256 of `msg`.
pub fn sha256(msg: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, msg).as_ref());
    out
}

/// SCRAM-SHA-256's `(StoredKey, ServerKey)` of a SaltedPassword (RFC 5802):
/// `ClientKey = HMAC(SaltedPassword, "Client Key")`,
/// `StoredKey = SHA-256(ClientKey)`,
/// `ServerKey = HMAC(SaltedPassword, "Server Key")`. Knowing them verifies
/// a proof but does not make one: that takes ClientKey.
pub fn scram_keys(salted_password: &[u8]) -> ([u8; 32], [u8; 32]) {
    let client_key = hmac_sha256(salted_password, b"Client Key");
    (
        sha256(&client_key),
        hmac_sha256(salted_password, b"Server Key"),
    )
}

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .expect("the operating system's random source failed");
    out
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a hex string, `None` if it is not one.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
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

    #[test]
    fn scram_keys_match_rfc_7677() {
        // RFC 7677's example: user "user", password "pencil", salt
        // W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations. Its SaltedPassword
        // and keys, computed independently with Python's hashlib/hmac.
        let salted =
            unhex("c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d").unwrap();
        let (stored, server) = scram_keys(&salted);
        assert_eq!(
            hex(&stored),
            "586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6"
        );
        assert_eq!(
            hex(&server),
            "c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5"
        );
    }
}
