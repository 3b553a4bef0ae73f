//! What both front doors do the same way before their first connection:
//! refuse to serve plaintext on a non-loopback address unless told to,
//! and bind the listener, naming the address when that fails.

use std::net::SocketAddr;

use crate::error::{FrontDoorError, Result};

/// The names one front door's messages use: the protocol's, and the
/// prefix of its settings (`pg_tls_cert`, `flight_allow_plaintext`, ...).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Door {
    pub name: &'static str,
    pub settings: &'static str,
}

pub(crate) const PG: Door = Door {
    name: "PostgreSQL",
    settings: "pg",
};
pub(crate) const FLIGHT: Door = Door {
    name: "Flight SQL",
    settings: "flight",
};

impl Door {
    /// Refuses to listen without TLS on an address that is not loopback,
    /// unless plaintext was allowed explicitly: credentials and rows would
    /// cross the network in the clear.
    pub(crate) fn refuse_plaintext(
        self,
        listen: SocketAddr,
        tls: bool,
        allow_plaintext: bool,
    ) -> Result<()> {
        if tls || listen.ip().is_loopback() || allow_plaintext {
            return Ok(());
        }
        let Door { name, settings } = self;
        Err(FrontDoorError::Config(format!(
            "refusing unencrypted {name} connections on {listen}, which is not a loopback address: \
             configure {settings}_tls_cert and {settings}_tls_key, or set {settings}_allow_plaintext"
        )))
    }
}

/// Binds a front door's listener, naming the address when it fails.
pub(crate) async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let err = |source| FrontDoorError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(err)?;
    let local = listener.local_addr().map_err(err)?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_is_refused_off_loopback_only() {
        let remote: SocketAddr = "0.0.0.0:15432".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:15432".parse().unwrap();
        let err = PG.refuse_plaintext(remote, false, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "refusing unencrypted PostgreSQL connections on 0.0.0.0:15432, which is not a \
             loopback address: configure pg_tls_cert and pg_tls_key, or set pg_allow_plaintext"
        );
        let err = FLIGHT.refuse_plaintext(remote, false, false).unwrap_err();
        assert!(err.to_string().contains("flight_allow_plaintext"), "{err}");
        assert!(PG.refuse_plaintext(remote, true, false).is_ok());
        assert!(PG.refuse_plaintext(remote, false, true).is_ok());
        assert!(FLIGHT.refuse_plaintext(local, false, false).is_ok());
        let v6: SocketAddr = "[::1]:15433".parse().unwrap();
        assert!(FLIGHT.refuse_plaintext(v6, false, false).is_ok());
    }
}
