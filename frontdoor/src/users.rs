//! Front-door users: SCRAM-SHA-256 salted hashes kept in the catalog.
//!
//! `quipu users add` derives `SaltedPassword = PBKDF2-HMAC-SHA-256(password,
//! salt, 4096)` (RFC 5802, what PostgreSQL's SCRAM uses) and stores only
//! that and the salt. The PostgreSQL front door runs the SCRAM exchange
//! against it (pgwire's `ScramAuth`), and Flight SQL's basic handshake
//! derives the same hash from the password it is given.

use std::collections::BTreeSet;

use quipu_catalog::{CatalogStore, UserDef};

use crate::error::{FrontDoorError, Result};

/// PBKDF2 iterations: PostgreSQL's default and the RFC 7677 minimum.
pub const SCRAM_ITERATIONS: u32 = 4096;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .expect("the operating system's random source failed");
    out
}

/// The SCRAM salted password of `password`.
pub fn salted_password(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    pgwire::api::auth::sasl::scram::gen_salted_password(password, salt, iterations as usize)
}

/// A user definition for `name` with a fresh salt.
pub fn new_user(name: &str, password: &str, admin: bool, sources: Vec<String>) -> Result<UserDef> {
    if password.is_empty() {
        return Err(FrontDoorError::Config(format!(
            "user `{name}`: the password is empty"
        )));
    }
    let salt = random_bytes::<16>();
    Ok(UserDef {
        name: name.to_string(),
        salt: hex(&salt),
        salted_password: hex(&salted_password(password, &salt, SCRAM_ITERATIONS)),
        iterations: SCRAM_ITERATIONS,
        admin,
        sources,
    })
}

/// Checks a password against the stored hash (Flight SQL basic auth), in
/// time independent of where the bytes differ. Unknown users cost the same
/// PBKDF2 work as known ones.
pub fn verify(store: &CatalogStore, name: &str, password: &str) -> Result<Option<UserDef>> {
    let user = store.user(name)?;
    let (salt, expected) = match &user {
        Some(u) => (
            unhex(&u.salt).unwrap_or_default(),
            unhex(&u.salted_password).unwrap_or_default(),
        ),
        None => (random_bytes::<16>().to_vec(), random_bytes::<32>().to_vec()),
    };
    let got = salted_password(password, &salt, SCRAM_ITERATIONS);
    let same = quipu_catalog::secret::constant_time_eq(&got, &expected);
    Ok(if same { user } else { None })
}

/// The sources a user may read: `None` for all.
pub fn grants(user: &UserDef) -> Option<BTreeSet<String>> {
    user.readable_sources()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let bytes = random_bytes::<16>();
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes.to_vec());
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }

    #[test]
    fn verify_accepts_the_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = CatalogStore::open(dir.path()).unwrap();
        store
            .put_user(&new_user("ana", "s3cret", false, vec!["lake".into()]).unwrap())
            .unwrap();
        assert_eq!(
            verify(&store, "ana", "s3cret").unwrap().unwrap().name,
            "ana"
        );
        assert!(verify(&store, "ana", "S3cret").unwrap().is_none());
        assert!(verify(&store, "nobody", "s3cret").unwrap().is_none());
        let stored = store.user("ana").unwrap().unwrap();
        assert!(!stored.salted_password.contains("s3cret"));
        assert!(new_user("x", "", false, vec![]).is_err());
    }
}
