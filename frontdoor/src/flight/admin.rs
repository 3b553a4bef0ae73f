//! The `quipu.admin` action: an admin's `quipu catalog` or `quipu users`
//! command, sent by the CLI with `--server`, run by the server on its own
//! catalog with the same code as the offline CLI.

use std::sync::Arc;

use arrow_flight::ActionType;
use arrow_flight::flight_service_server::FlightService;
use tonic::{Request, Response, Status};

use super::service::QuipuFlightSql;

/// The action type of admin commands.
pub const ADMIN_ACTION: &str = "quipu.admin";

/// Runs one admin command: its request body in, the text to show out.
pub type AdminHandler = Arc<
    dyn Fn(bytes::Bytes) -> futures::future::BoxFuture<'static, std::result::Result<String, String>>
        + Send
        + Sync,
>;

impl QuipuFlightSql {
    /// `quipu.admin`: an admin's catalog or users command, run by the
    /// server on its own catalog (the body is the CLI's request; the
    /// answer is the text the CLI prints).
    pub(super) async fn admin(
        &self,
        request: Request<arrow_flight::Action>,
    ) -> std::result::Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let (_, session) = self.user(&request)?;
        let action = request.into_inner();
        if action.r#type != ADMIN_ACTION {
            return Err(Status::invalid_argument(format!(
                "unknown action `{}` (known: {ADMIN_ACTION} and the Flight SQL actions)",
                action.r#type
            )));
        }
        let is_admin = self
            .store
            .user(&session.user)
            .map_err(|e| Status::internal(e.to_string()))?
            .is_some_and(|u| u.admin);
        if !is_admin {
            return Err(Status::permission_denied(format!(
                "permission denied: only admins change the catalog and users (`{}` is not an admin)",
                session.user
            )));
        }
        let Some(handler) = &self.admin else {
            return Err(Status::unimplemented(
                "this server does not take admin commands",
            ));
        };
        let text = handler(action.body)
            .await
            .map_err(Status::invalid_argument)?;
        tracing::info!(user = %session.user, "admin command run");
        let reply = arrow_flight::Result {
            body: text.into_bytes().into(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(reply)]))))
    }
}

/// The actions besides Flight SQL's own, for `ListActions`.
pub(super) fn actions() -> Vec<std::result::Result<ActionType, Status>> {
    vec![Ok(ActionType {
        r#type: ADMIN_ACTION.to_string(),
        description: "run a `quipu catalog` or `quipu users` command (admins only)".into(),
    })]
}
