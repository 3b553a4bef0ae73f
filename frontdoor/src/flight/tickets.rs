//! Tickets and statement handles: random server-side handles tied to the
//! token that asked for them. A prepared statement's handle lives until
//! closed; a statement's result streams, started at `GetFlightInfo`, wait
//! for one `DoGet` each (at most [`MAX_PENDING_STREAMS`] per session). A
//! forged handle, a used one or another token's is refused as unknown.

use arrow_flight::sql::{ProstMessageExt, TicketStatementQuery};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use prost::Message;
use quipu_scheduler::QueryOutput;
use tonic::Status;

use super::service::QuipuFlightSql;

/// A prepared statement, until closed.
pub(super) struct Handle {
    pub(super) token: String,
    pub(super) plan: LogicalPlan,
    pub(super) params: Option<ParamValues>,
}

/// Endpoints asked for and not yet read, per session.
pub(super) const MAX_PENDING_STREAMS: usize = 256;

/// One endpoint of a statement: its stream, started when the client
/// asked for the statement and read by one `DoGet`.
pub(super) struct Part {
    pub(super) token: String,
    pub(super) schema: SchemaRef,
    pub(super) stream: datafusion::execution::SendableRecordBatchStream,
}

pub(super) fn random_hex<const N: usize>() -> String {
    use quipu_catalog::secret::{hex, random_bytes};
    hex(&random_bytes::<N>())
}

pub(super) fn not_found() -> Status {
    Status::not_found(
        "unknown ticket or statement handle (forged, already used, or another user's)",
    )
}

impl QuipuFlightSql {
    pub(super) fn new_handle(&self, handle: Handle) -> Vec<u8> {
        let id = random_hex::<16>().into_bytes();
        self.handles.lock().unwrap().insert(id.clone(), handle);
        id
    }

    /// The plan of a prepared statement, only for the token that made it.
    pub(super) fn handle(
        &self,
        id: &[u8],
        token: &str,
    ) -> std::result::Result<(LogicalPlan, Option<ParamValues>), Status> {
        let handles = self.handles.lock().unwrap();
        match handles.get(id) {
            Some(h)
                if quipu_catalog::secret::constant_time_eq(
                    h.token.as_bytes(),
                    token.as_bytes(),
                ) =>
            {
                Ok((h.plan.clone(), h.params.clone()))
            }
            _ => Err(not_found()),
        }
    }

    /// Takes the stream of a statement's endpoint, only for the token that
    /// asked for the statement, and only once.
    pub(super) fn take_part(&self, id: &[u8], token: &str) -> std::result::Result<Part, Status> {
        let mut parts = self.parts.lock().unwrap();
        let owned = parts.get(id).is_some_and(|p| {
            quipu_catalog::secret::constant_time_eq(p.token.as_bytes(), token.as_bytes())
        });
        if !owned {
            return Err(not_found());
        }
        Ok(parts.remove(id).expect("checked above"))
    }

    /// Keeps a statement's started streams for their `DoGet`s, refusing
    /// them when the session already has too many waiting; answers their
    /// tickets.
    pub(super) fn park(
        &self,
        token: &str,
        outs: Vec<QueryOutput>,
    ) -> std::result::Result<Vec<Vec<u8>>, Status> {
        let mut tickets = Vec::with_capacity(outs.len());
        let mut parts = self.parts.lock().unwrap();
        // Started statements wait for their DoGets; a client that asks
        // and never reads must not pile them up.
        let pending = parts.values().filter(|p| p.token == token).count();
        if pending + outs.len() > MAX_PENDING_STREAMS {
            return Err(Status::resource_exhausted(format!(
                "{pending} result streams of this session are waiting for their DoGet \
                     (at most {MAX_PENDING_STREAMS}): read them, or sign in again for a new \
                     session (they go with the token when it expires)"
            )));
        }
        for out in outs {
            let id = random_hex::<16>().into_bytes();
            parts.insert(
                id.clone(),
                Part {
                    token: token.to_string(),
                    schema: out.schema,
                    stream: out.stream,
                },
            );
            let ticket = TicketStatementQuery {
                statement_handle: id.into(),
            };
            tickets.push(ticket.as_any().encode_to_vec());
        }
        Ok(tickets)
    }
}
