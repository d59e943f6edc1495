//! The registers: `GET /api/v1/tasks` (manual tickets) with `POST /api/v1/tasks/{id}/done`,
//! `GET /api/v1/findings` (each target's latest reconciliation) and `GET /api/v1/exceptions`
//! (control debt).

use super::{P, Paging, Q, St, blocking, page_by_id, who};
use crate::error::{ApiError, ApiResult};
use crate::{Principal, ServerState};
use axum::Json;
use axum::extract::State;
use tenure_engine::{decisions, views};
use tenure_proto::{Exception, Finding, Page, TaskDoneRequest, Ticket};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn read_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(tasks)).routes(routes!(findings)).routes(routes!(exceptions))
}

pub fn operate_router() -> OpenApiRouter<ServerState> {
    OpenApiRouter::new().routes(routes!(task_done))
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AllFilter {
    /// Include finished (resolved) ones.
    #[serde(default)]
    pub all: bool,
}

/// Manual tickets, open ones or every one, each saying whether it is overdue. A read: it writes
/// nothing.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", params(AllFilter, Paging),
    responses((status = 200, body = Page<Ticket>), (status = 400, body = tenure_proto::ErrorBody)))]
async fn tasks(State(state): St, Q(f): Q<AllFilter>, Q(paging): Q<Paging>) -> ApiResult<Json<Page<Ticket>>> {
    let list = blocking(&state, move |app| Ok(views::tickets(app.store().as_ref(), !f.all)?)).await?;
    Ok(Json(page_by_id("tasks", list, |t| t.id, &paging)?))
}

/// Marks a ticket done with evidence; its operation counts as verified. Recorded with the
/// token's name.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/done", tag = "tasks", request_body = TaskDoneRequest,
    params(("id" = i64, Path, description = "The ticket's id")),
    responses((status = 200, body = Ticket), (status = 400, body = tenure_proto::ErrorBody),
        (status = 404, body = tenure_proto::ErrorBody), (status = 409, body = tenure_proto::ErrorBody)))]
async fn task_done(
    State(state): St,
    p: Principal,
    P(id): P<i64>,
    body: super::JsonBody<TaskDoneRequest>,
) -> ApiResult<Json<Ticket>> {
    let evidence = body.0.evidence;
    if evidence.trim().is_empty() {
        return Err(ApiError::invalid("`evidence` must say what was done"));
    }
    let by = who(&p);
    let t =
        blocking(&state, move |app| Ok(decisions::complete_ticket(app.store().as_ref(), id, &by, &evidence)?)).await?;
    Ok(Json(t))
}

/// The findings of each target's latest reconciliation run.
#[utoipa::path(get, path = "/api/v1/findings", tag = "findings", params(Paging),
    responses((status = 200, body = Page<Finding>), (status = 400, body = tenure_proto::ErrorBody)))]
async fn findings(State(state): St, Q(paging): Q<Paging>) -> ApiResult<Json<Page<Finding>>> {
    let list = blocking(&state, |app| {
        let store: &dyn tenure_store::Browse = app.store().as_ref();
        Ok(views::latest_findings(store)?)
    })
    .await?;
    // Findings have no id of their own: their place in the list is their key.
    let indexed: Vec<(i64, Finding)> =
        list.into_iter().enumerate().map(|(i, f)| (i64::try_from(i).unwrap_or(i64::MAX), f)).collect();
    let page = page_by_id("findings", indexed, |(i, _)| *i, &paging)?;
    Ok(Json(Page { items: page.items.into_iter().map(|(_, f)| f).collect(), next_cursor: page.next_cursor }))
}

/// The exceptions register, open ones or every one. A read: it writes nothing (the `overdue`
/// schedule records overdue tickets).
#[utoipa::path(get, path = "/api/v1/exceptions", tag = "exceptions", params(AllFilter, Paging),
    responses((status = 200, body = Page<Exception>), (status = 400, body = tenure_proto::ErrorBody)))]
async fn exceptions(State(state): St, Q(f): Q<AllFilter>, Q(paging): Q<Paging>) -> ApiResult<Json<Page<Exception>>> {
    let list = blocking(&state, move |app| Ok(views::exceptions(app.store().as_ref(), !f.all)?)).await?;
    Ok(Json(page_by_id("exceptions", list, |e| e.id, &paging)?))
}
