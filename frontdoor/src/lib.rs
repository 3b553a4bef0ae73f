//! Quipu's front doors: the PostgreSQL wire protocol and Arrow Flight SQL,
//! authenticated against the users of the catalog and
//! authorised per source.

mod column_names;
mod copy_out;
pub mod error;
mod error_codes;
pub mod flight;
#[doc(hidden)]
pub mod fuzzing;
pub mod pg;
mod pg_catalog;
pub mod scram;
mod text_out;
mod tls;
pub mod users;

pub use error::{FrontDoorError, Result};

/// Binds a front door's listener, naming the address when it fails.
pub(crate) async fn bind(
    addr: std::net::SocketAddr,
) -> Result<(tokio::net::TcpListener, std::net::SocketAddr)> {
    let err = |source| FrontDoorError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(err)?;
    let local = listener.local_addr().map_err(err)?;
    Ok((listener, local))
}
