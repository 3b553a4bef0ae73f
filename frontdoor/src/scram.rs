//! The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) against stored
//! verifiers: StoredKey and ServerKey, never the SaltedPassword.
//!
//! pgwire's own `ScramAuth` needs the SaltedPassword (it recomputes the
//! client's proof), which is a login credential; this one checks the proof
//! the way PostgreSQL does:
//!
//! ```text
//! AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
//! ClientSignature = HMAC(StoredKey, AuthMessage)
//! ClientKey       = ClientProof XOR ClientSignature
//! accept iff SHA-256(ClientKey) == StoredKey        (constant time)
//! ServerSignature = HMAC(ServerKey, AuthMessage)     (sent as v=)
//! ```
//!
//! Only `SCRAM-SHA-256` is offered: channel binding (`-PLUS`) was never
//! configured for this front door, so a client asking for it (`p=`) is
//! refused and `y` (client could, thinks the server cannot) is accepted.
//! The user name in the SCRAM messages is ignored, as PostgreSQL does: the
//! startup packet's `user` is authenticated. The message transport is in
//! [`crate::pg`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use quipu_catalog::secret::{constant_time_eq, hmac_sha256, sha256};

use crate::users::Verifier;

/// The one SASL mechanism offered.
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// Why an exchange stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// The client's message is not valid SCRAM (SQLSTATE 08P01).
    Protocol(String),
    /// Wrong password, or a user that does not exist (SQLSTATE 28P01).
    Failed,
}

fn protocol(what: &str) -> ScramError {
    ScramError::Protocol(format!("malformed SCRAM message ({what})"))
}

/// After the server-first message: what the client-final message is
/// checked against.
#[derive(Debug)]
pub struct Pending {
    verifier: Verifier,
    /// `client-first-bare "," server-first`, the start of AuthMessage.
    auth_prefix: String,
    /// The expected `c=` value: base64 of the client's GS2 header.
    channel_binding: String,
    /// Client nonce followed by ours.
    nonce: String,
}

/// Parses the client-first message and answers with the server-first
/// message (`r=<client nonce><server nonce>,s=<salt>,i=<iterations>`).
pub fn server_first(
    client_first: &[u8],
    verifier: Verifier,
) -> Result<(String, Pending), ScramError> {
    let msg = std::str::from_utf8(client_first).map_err(|_| protocol("not UTF-8"))?;
    // gs2-header = gs2-cbind-flag "," [authzid] ","
    let (flag, rest) = msg
        .split_once(',')
        .ok_or_else(|| protocol("no GS2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => {
            return Err(ScramError::Protocol(
                "client requires SCRAM channel binding, but it is not supported".into(),
            ));
        }
        _ => return Err(protocol("unexpected channel-binding flag")),
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or_else(|| protocol("no GS2 header"))?;
    if !authzid.is_empty() {
        return Err(ScramError::Protocol(
            "client uses authorization identity, but it is not supported".into(),
        ));
    }
    let gs2_header = &msg[..msg.len() - bare.len()];
    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    let mut attrs = bare.split(',');
    let user = attrs.next().unwrap_or_default();
    if user.starts_with("m=") {
        return Err(ScramError::Protocol(
            "unsupported SCRAM mandatory extension".into(),
        ));
    }
    if !user.starts_with("n=") {
        return Err(protocol("expected a user name attribute"));
    }
    let client_nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or_else(|| protocol("expected a nonce attribute"))?;
    if client_nonce.is_empty() || !client_nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(protocol("invalid nonce"));
    }
    let nonce = format!(
        "{client_nonce}{}",
        STANDARD.encode(quipu_catalog::secret::random_bytes::<18>())
    );
    let server_first = format!(
        "r={nonce},s={},i={}",
        STANDARD.encode(&verifier.salt),
        verifier.iterations
    );
    let pending = Pending {
        verifier,
        auth_prefix: format!("{bare},{server_first}"),
        channel_binding: STANDARD.encode(gs2_header),
        nonce,
    };
    Ok((server_first, pending))
}

impl Pending {
    /// Checks the client-final message (`c=...,r=...,p=<proof>`) and
    /// answers with the server-final message (`v=<ServerSignature>`).
    pub fn finish(&self, client_final: &[u8]) -> Result<String, ScramError> {
        let msg = std::str::from_utf8(client_final).map_err(|_| protocol("not UTF-8"))?;
        // The proof is the last attribute.
        let (without_proof, proof) = msg.rsplit_once(",p=").ok_or_else(|| protocol("no proof"))?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or_else(|| protocol("expected channel-binding attribute"))?;
        if binding != self.channel_binding {
            return Err(ScramError::Protocol(
                "SCRAM channel binding check failed".into(),
            ));
        }
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(|| protocol("expected nonce attribute"))?;
        if nonce != self.nonce {
            return Err(ScramError::Protocol(
                "invalid SCRAM response (nonce does not match)".into(),
            ));
        }
        let proof = STANDARD
            .decode(proof)
            .ok()
            .filter(|p| p.len() == 32)
            .ok_or_else(|| protocol("malformed proof in client-final-message"))?;
        let auth_message = format!("{},{without_proof}", self.auth_prefix);
        let v = &self.verifier;
        let signature = hmac_sha256(&v.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
        let matches = constant_time_eq(&sha256(&client_key), &v.stored_key);
        if !(matches && v.known) {
            return Err(ScramError::Failed);
        }
        let server_signature = hmac_sha256(&v.server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use quipu_catalog::CatalogStore;
    use quipu_catalog::secret::unhex;

    use super::*;
    use crate::users::{new_user, salted_password, verifier};

    /// The client's side, computed here from RFC 5802.
    struct Client {
        first_bare: String,
        gs2: &'static str,
    }

    impl Client {
        fn new() -> (Self, String) {
            let c = Client {
                first_bare: "n=,r=rOprNGfwEbeRWgbNEkqO".into(),
                gs2: "n,,",
            };
            let first = format!("{}{}", c.gs2, c.first_bare);
            (c, first)
        }

        fn parse_server_first(server_first: &str) -> (String, Vec<u8>, u32) {
            let mut nonce = None;
            let mut salt = None;
            let mut iterations = None;
            for a in server_first.split(',') {
                match a.split_at(2) {
                    ("r=", v) => nonce = Some(v.to_string()),
                    ("s=", v) => salt = Some(STANDARD.decode(v).unwrap()),
                    ("i=", v) => iterations = Some(v.parse().unwrap()),
                    _ => {}
                }
            }
            (nonce.unwrap(), salt.unwrap(), iterations.unwrap())
        }

        fn without_proof(&self, server_first: &str) -> String {
            let (nonce, _, _) = Self::parse_server_first(server_first);
            format!("c={},r={nonce}", STANDARD.encode(self.gs2))
        }

        fn auth_message(&self, server_first: &str) -> String {
            format!(
                "{},{server_first},{}",
                self.first_bare,
                self.without_proof(server_first)
            )
        }

        /// The client-final message for `password`, and the server
        /// signature the client expects back.
        fn finish(&self, server_first: &str, password: &str) -> (String, String) {
            let (_, salt, iterations) = Self::parse_server_first(server_first);
            let salted = salted_password(password, &salt, iterations);
            let client_key = hmac_sha256(&salted, b"Client Key");
            let stored_key = sha256(&client_key);
            let auth = self.auth_message(server_first);
            let signature = hmac_sha256(&stored_key, auth.as_bytes());
            let proof: Vec<u8> = client_key
                .iter()
                .zip(signature)
                .map(|(k, s)| k ^ s)
                .collect();
            let server_key = hmac_sha256(&salted, b"Server Key");
            (
                format!(
                    "{},p={}",
                    self.without_proof(server_first),
                    STANDARD.encode(proof)
                ),
                format!(
                    "v={}",
                    STANDARD.encode(hmac_sha256(&server_key, auth.as_bytes()))
                ),
            )
        }
    }

    fn store() -> (tempfile::TempDir, CatalogStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = CatalogStore::open(dir.path()).unwrap();
        store
            .put_user(&new_user("ana", "pencil", false, vec![]).unwrap())
            .unwrap();
        (dir, store)
    }

    fn exchange(store: &CatalogStore, user: &str, password: &str) -> Result<(), ScramError> {
        let (client, first) = Client::new();
        let (server_first, pending) =
            server_first(first.as_bytes(), verifier(store, user).unwrap().0)?;
        assert!(server_first.starts_with("r=rOprNGfwEbeRWgbNEkqO"));
        let (client_final, expected) = client.finish(&server_first, password);
        let server_final = pending.finish(client_final.as_bytes())?;
        assert_eq!(server_final, expected, "server signature");
        Ok(())
    }

    #[test]
    fn the_right_password_passes_and_the_server_proves_itself() {
        let (_dir, store) = store();
        exchange(&store, "ana", "pencil").unwrap();
    }

    #[test]
    fn a_wrong_password_and_an_unknown_user_fail_alike() {
        let (_dir, store) = store();
        assert_eq!(exchange(&store, "ana", "Pencil"), Err(ScramError::Failed));
        assert_eq!(
            exchange(&store, "nobody", "pencil"),
            Err(ScramError::Failed)
        );
    }

    /// What a reader of the catalog file has, StoredKey and ServerKey, does
    /// not make a proof. The best forgery from them, ClientProof =
    /// StoredKey XOR ClientSignature (pretending ClientKey = StoredKey),
    /// fails, and so does a proof of zeros.
    #[test]
    fn a_proof_forged_from_the_stored_keys_fails() {
        let (_dir, store) = store();
        let u = store.user("ana").unwrap().unwrap();
        let stored_key = unhex(&u.stored_key).unwrap();
        let server_key = unhex(&u.server_key).unwrap();
        for forge in [
            |stored: &[u8], _server: &[u8], sig: &[u8]| -> Vec<u8> {
                stored.iter().zip(sig).map(|(a, b)| a ^ b).collect()
            },
            |_stored: &[u8], server: &[u8], sig: &[u8]| -> Vec<u8> {
                server.iter().zip(sig).map(|(a, b)| a ^ b).collect()
            },
            |_: &[u8], _: &[u8], _: &[u8]| -> Vec<u8> { vec![0; 32] },
        ] {
            let (client, first) = Client::new();
            let (server_first, pending) =
                server_first(first.as_bytes(), verifier(&store, "ana").unwrap().0).unwrap();
            let auth = client.auth_message(&server_first);
            let signature = hmac_sha256(&stored_key, auth.as_bytes());
            let proof = forge(&stored_key, &server_key, &signature);
            let client_final = format!(
                "{},p={}",
                client.without_proof(&server_first),
                STANDARD.encode(proof)
            );
            assert_eq!(
                pending.finish(client_final.as_bytes()),
                Err(ScramError::Failed)
            );
        }
    }

    #[test]
    fn malformed_messages_are_protocol_errors() {
        let (_dir, store) = store();
        let v = || verifier(&store, "ana").unwrap().0;
        for bad in [
            &b"n,,n=,"[..],
            b"n,,n=,r=",
            b"x,,n=,r=abc",
            b"n,a=ana,n=,r=abc",
            b"p=tls-server-end-point,,n=,r=abc",
            b"n,,m=ext,n=,r=abc",
            b"\xff",
            b"",
        ] {
            assert!(
                matches!(server_first(bad, v()), Err(ScramError::Protocol(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let (client, first) = Client::new();
        let (sf, pending) = server_first(first.as_bytes(), v()).unwrap();
        let (good, _) = client.finish(&sf, "pencil");
        let proof = good.rsplit_once(",p=").unwrap().1;
        for bad in [
            format!("c=eSws,r={},p={proof}", Client::parse_server_first(&sf).0),
            format!("c=biws,r=other,p={proof}"),
            format!("c=biws,r={},p=AAAA", Client::parse_server_first(&sf).0),
            "c=biws".to_string(),
        ] {
            assert!(
                matches!(pending.finish(bad.as_bytes()), Err(ScramError::Protocol(_))),
                "{bad}"
            );
        }
        // Still usable after the refusals above? No state is kept: the
        // right answer passes.
        assert!(pending.finish(good.as_bytes()).is_ok());
    }
}
