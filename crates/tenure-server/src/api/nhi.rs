//! Non-human identities' credential rotation (issue 10): `POST /api/v1/identities/{id}/rotate`
//! (operator or admin) plans it as `tenure rotate` does, audited as `token:NAME`. The answer
//! names the operations; the secret is made by the executor and goes only to the secret sink,
//! never into an answer.

use super::{P, Q, St, blocking, who};
use crate::error::ApiResult;
use crate::{Principal, ServerState};
use axum::Json;
use axum::extract::State;
use tenure_proto::Rotation;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn operate_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(rotate))
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RotateFilter {
    /// Only the account in this target.
    #[serde(default)]
    pub target: Option<String>,
}

/// Plans the rotation of a service or bot identity's credentials (one `rotate_credential` per
/// enabled account in a target that can rotate them, or only `target`'s). An identity that is
/// not an active NHI, or has nothing to rotate there, is a 400; an unknown identity or target a
/// 404; neither plans anything.
#[utoipa::path(post, path = "/api/v1/identities/{id}/rotate", tag = "identities", params(("id" = String, Path, description = "The identity's id"), RotateFilter),
    responses((status = 200, body = Vec<Rotation>), (status = 400, body = tenure_proto::ErrorBody),
        (status = 404, body = tenure_proto::ErrorBody)))]
async fn rotate(
    State(state): St,
    p: Principal,
    P(id): P<String>,
    Q(f): Q<RotateFilter>,
) -> ApiResult<Json<Vec<Rotation>>> {
    let by = who(&p);
    let planned = blocking(&state, move |app| {
        let (actor, why) = (format!("token:{by}"), format!("requested by {by}"));
        Ok(tenure_engine::nhi::rotate(app.config(), app.store().as_ref(), &id, f.target.as_deref(), &actor, &why)?)
    })
    .await?;
    Ok(Json(planned))
}
