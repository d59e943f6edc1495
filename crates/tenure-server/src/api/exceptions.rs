//! The exceptions register's decisions (issue 10): `POST /api/v1/exceptions/{id}/resolve` and
//! `POST /api/v1/exceptions/{id}/accept` (operator or admin). Who decided is the token's name,
//! never a name from the body; the audit trail records it as `token:NAME`. The listing is
//! `GET /api/v1/exceptions` in `registers`.

use super::{P, St, blocking, who};
use crate::error::ApiResult;
use crate::{Principal, ServerState};
use axum::Json;
use axum::extract::State;
use tenure_engine::decisions::{self, ExceptionDecision};
use tenure_proto::{Exception, ExceptionDecision as Body};
use tenure_store::Closing;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn operate_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(resolve)).routes(routes!(accept))
}

async fn decide(state: ServerState, p: &Principal, id: i64, closing: Closing, body: Body) -> ApiResult<Exception> {
    let by = who(p);
    let actor = format!("token:{by}");
    blocking(&state, move |app| {
        let d =
            ExceptionDecision { id, closing, by: &by, actor: &actor, reason: &body.reason, due: body.due.as_deref() };
        Ok(decisions::close_exception(app.store().as_ref(), &app.config().schema, &d)?)
    })
    .await
}

/// Resolves an open exception: the deviation is gone. Needs a reason; audited with the token's
/// name. An unknown id is a 404, one already resolved or accepted a 409; neither changes
/// anything.
#[utoipa::path(post, path = "/api/v1/exceptions/{id}/resolve", tag = "exceptions", request_body = Body,
    params(("id" = i64, Path, description = "The exception's id")),
    responses((status = 200, body = Exception), (status = 400, body = tenure_proto::ErrorBody),
        (status = 404, body = tenure_proto::ErrorBody), (status = 409, body = tenure_proto::ErrorBody)))]
async fn resolve(
    State(state): St,
    p: Principal,
    P(id): P<i64>,
    body: super::JsonBody<Body>,
) -> ApiResult<Json<Exception>> {
    Ok(Json(decide(state, &p, id, Closing::Resolve, body.0).await?))
}

/// Accepts an open exception: the deviation stays, knowingly, until `due` (optional, a future
/// date). A failed operation's exception makes the operation `excepted`, so its case can close.
/// Audited with the token's name; an unknown id is a 404, one already closed a 409.
#[utoipa::path(post, path = "/api/v1/exceptions/{id}/accept", tag = "exceptions", request_body = Body,
    params(("id" = i64, Path, description = "The exception's id")),
    responses((status = 200, body = Exception), (status = 400, body = tenure_proto::ErrorBody),
        (status = 404, body = tenure_proto::ErrorBody), (status = 409, body = tenure_proto::ErrorBody)))]
async fn accept(
    State(state): St,
    p: Principal,
    P(id): P<i64>,
    body: super::JsonBody<Body>,
) -> ApiResult<Json<Exception>> {
    Ok(Json(decide(state, &p, id, Closing::Accept, body.0).await?))
}
