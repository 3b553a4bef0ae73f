//! Front-door users: SCRAM-SHA-256 verifiers kept in the catalog.
//!
//! `quipu users add` derives `SaltedPassword = PBKDF2-HMAC-SHA-256(password,
//! salt, 4096)` (RFC 5802, what PostgreSQL's SCRAM uses) and stores only the
//! salt, the iteration count and the two keys derived from it,
//! `StoredKey = SHA-256(HMAC(SaltedPassword, "Client Key"))` and
//! `ServerKey = HMAC(SaltedPassword, "Server Key")`, like PostgreSQL's
//! `SCRAM-SHA-256$iter:salt$StoredKey:ServerKey`. Those check a client's
//! proof but cannot make one, so a copy of the catalog file does not log
//! anyone in. The PostgreSQL front door runs the SCRAM exchange against
//! them ([`crate::scram`]); Flight SQL's basic handshake derives the
//! StoredKey from the password it is given and compares.
//!
//! A user name that does not exist gets a [`Verifier`] too, with a salt
//! derived from the name and a per-catalog secret (`HMAC(secret, name)`,
//! like PostgreSQL's mock authentication): the same salt on every attempt,
//! as for a real user, and the same PBKDF2 work on Flight SQL, so neither
//! the salt nor the time tells which names exist.

use std::collections::BTreeSet;

use quipu_catalog::secret::{constant_time_eq, hex, hmac_sha256, random_bytes, scram_keys, unhex};
use quipu_catalog::{CatalogStore, UserDef};

use crate::error::{FrontDoorError, Result};

/// PBKDF2 iterations: PostgreSQL's default and the RFC 7677 minimum.
pub const SCRAM_ITERATIONS: u32 = 4096;

/// Length of a user's random salt, and so of a mock salt.
const SALT_LEN: usize = 16;

/// The SCRAM salted password of `password` (SASLprep-normalised, as
/// clients do).
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
    let salt = random_bytes::<SALT_LEN>();
    let (stored_key, server_key) = scram_keys(&salted_password(password, &salt, SCRAM_ITERATIONS));
    Ok(UserDef {
        name: name.to_string(),
        salt: hex(&salt),
        iterations: SCRAM_ITERATIONS,
        stored_key: hex(&stored_key),
        server_key: hex(&server_key),
        admin,
        sources,
    })
}

/// What a SCRAM exchange needs to know about one user name: a real user's
/// stored verifier, or a mock one for a name that does not exist.
#[derive(Clone)]
pub struct Verifier {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    /// False for a mock verifier: the exchange runs to the end and fails.
    pub known: bool,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("iterations", &self.iterations)
            .field("known", &self.known)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    fn of(user: &UserDef) -> Option<Self> {
        let v = Verifier {
            salt: unhex(&user.salt)?,
            iterations: user.iterations,
            stored_key: unhex(&user.stored_key)?,
            server_key: unhex(&user.server_key)?,
            known: true,
        };
        (v.iterations > 0 && v.stored_key.len() == 32 && !v.salt.is_empty()).then_some(v)
    }

    /// The verifier of a name that does not exist: a salt that depends only
    /// on the name and the catalog's secret (stable across attempts, like
    /// a real one), the real users' iteration count, random keys.
    fn mock(secret: &[u8], name: &str) -> Self {
        let mac = hmac_sha256(secret, format!("mock salt\0{name}").as_bytes());
        Verifier {
            salt: mac[..SALT_LEN].to_vec(),
            iterations: SCRAM_ITERATIONS,
            stored_key: random_bytes::<32>().to_vec(),
            server_key: random_bytes::<32>().to_vec(),
            known: false,
        }
    }
}

/// The verifier of `name` and its user definition (`None` for a name that
/// does not exist, or whose record cannot be used: such a name gets a mock
/// verifier).
pub fn verifier(store: &CatalogStore, name: &str) -> Result<(Verifier, Option<UserDef>)> {
    let user = store.user(name)?;
    if let Some(v) = user.as_ref().and_then(Verifier::of) {
        return Ok((v, user));
    }
    if user.is_some() {
        tracing::warn!(user = name, "unusable SCRAM verifier in the catalog");
    }
    Ok((Verifier::mock(&store.mock_salt_secret()?, name), None))
}

/// Checks a password against the stored StoredKey (Flight SQL basic auth),
/// in time independent of where the bytes differ. Unknown users cost the
/// same PBKDF2 work as known ones (their mock salt, the same iterations).
pub fn verify(store: &CatalogStore, name: &str, password: &str) -> Result<Option<UserDef>> {
    let (v, user) = verifier(store, name)?;
    let (stored_key, _) = scram_keys(&salted_password(password, &v.salt, v.iterations));
    let same = constant_time_eq(&stored_key, &v.stored_key);
    Ok(if same && v.known { user } else { None })
}

/// The sources a user may read: `None` for all.
pub fn grants(user: &UserDef) -> Option<BTreeSet<String>> {
    user.readable_sources()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn store_with_ana() -> (tempfile::TempDir, CatalogStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = CatalogStore::open(dir.path()).unwrap();
        store
            .put_user(&new_user("ana", "s3cret", false, vec!["lake".into()]).unwrap())
            .unwrap();
        (dir, store)
    }

    #[test]
    fn verify_accepts_the_password_only() {
        let (_dir, store) = store_with_ana();
        assert_eq!(
            verify(&store, "ana", "s3cret").unwrap().unwrap().name,
            "ana"
        );
        assert!(verify(&store, "ana", "S3cret").unwrap().is_none());
        assert!(verify(&store, "nobody", "s3cret").unwrap().is_none());
        assert!(new_user("x", "", false, vec![]).is_err());
    }

    #[test]
    fn the_catalog_holds_stored_and_server_keys_not_the_salted_password() {
        let (_dir, store) = store_with_ana();
        let u = store.user("ana").unwrap().unwrap();
        let salt = unhex(&u.salt).unwrap();
        let salted = salted_password("s3cret", &salt, u.iterations);
        let (stored, server) = scram_keys(&salted);
        assert_eq!(u.stored_key, hex(&stored));
        assert_eq!(u.server_key, hex(&server));
        let json = serde_json::to_string(&u).unwrap();
        assert!(!json.contains(&hex(&salted)), "{json}");
        assert!(!json.contains("s3cret"));
        assert!(!json.contains("salted"), "{json}");
    }

    #[test]
    fn an_unknown_name_gets_a_stable_salt_like_a_real_user() {
        let (_dir, store) = store_with_ana();
        let salt = |name: &str| verifier(&store, name).unwrap().0.salt;
        // Two attempts each: a real user's salt is stable, so must an
        // unknown name's be (a fresh random salt per attempt gave it away).
        assert_eq!(salt("ana"), salt("ana"));
        assert_eq!(salt("nobody"), salt("nobody"));
        assert_ne!(salt("nobody"), salt("somebody"));
        assert_eq!(salt("nobody").len(), salt("ana").len());
        let (mock, user) = verifier(&store, "nobody").unwrap();
        assert!(user.is_none() && !mock.known);
        assert_eq!(mock.iterations, SCRAM_ITERATIONS);
        // The mock salt depends on the catalog's secret, not only the name.
        let (_other_dir, other) = store_with_ana();
        assert_ne!(verifier(&other, "nobody").unwrap().0.salt, salt("nobody"));
    }

    fn median_time(mut f: impl FnMut()) -> Duration {
        let mut times: Vec<Duration> = (0..9)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    }

    #[test]
    fn flight_verify_costs_the_same_for_unknown_users() {
        let (_dir, store) = store_with_ana();
        let known = median_time(|| assert!(verify(&store, "ana", "wrong").unwrap().is_none()));
        let unknown = median_time(|| assert!(verify(&store, "nobody", "wrong").unwrap().is_none()));
        // PBKDF2 with 4096 iterations dominates both; skipping it for an
        // unknown name would make that path orders of magnitude faster.
        assert!(
            unknown * 3 > known && known * 3 > unknown,
            "known {known:?}, unknown {unknown:?}"
        );
    }
}
