//! `POST /.search` (RFC 7644 §3.4.3): one search over every resource type. Users come first,
//! then Groups; a filter naming an attribute one type lacks simply matches none of that type.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::resource;
use super::scim::{projection, Request};
use crate::auth::{Principal, Scope};
use crate::error::{ScimError, ScimType};
use crate::http::body::JsonBody;
use crate::http::scim_json;
use crate::scim::list::{ListRequest, Page, Paging};
use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
use crate::state::AppState;
use crate::{groups, users};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/.search", "POST").route(web::post().to(search)));
}

/// A type whose schema lacks an attribute of the filter contributes nothing; other errors stand.
fn unless_unknown<T>(result: Result<T, ScimError>, empty: impl FnOnce() -> T) -> Result<T, ScimError> {
    match result {
        Err(e) if e.scim_type == Some(ScimType::InvalidFilter) && e.detail.contains("is not an attribute") => {
            Ok(empty())
        }
        other => other,
    }
}

async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    let request = ListRequest::from_search_body(&body.0)?;
    let r = Request::new(&req, &state, &p, Scope::ScimRead, &USER_RESOURCE)?;
    let Paging::Index { start, count } = request.paging else {
        return Err(ScimError::bad_request(
            ScimType::InvalidValue,
            "Cursor paging is not available for a search across resource types; search /Users or /Groups",
        ));
    };
    let (attrs, excluded) = (request.attributes.clone(), request.excluded_attributes.clone());
    let user_projection = projection(&USER_RESOURCE, attrs.as_deref(), excluded.as_deref())?;
    let group_projection = projection(&GROUP_RESOURCE, attrs.as_deref(), excluded.as_deref())?;
    let backend = state.db.backend();
    let (base, anchors) = (r.base.clone(), state.anchors.clone());
    let page = state
        .db
        .run(move |conn| {
            let ctx = &r.ctx;
            // Users fill the window [start, start + count) first; Groups continue where they end.
            let (user_rows, user_page) =
                unless_unknown(users::list(conn, backend, ctx, &anchors, &request), || (Vec::new(), Page::empty()))?;
            let group_start = (start - user_page.total).max(1);
            let group_count = (count - user_rows.len() as i64).max(0);
            let group_request =
                ListRequest { paging: Paging::Index { start: group_start, count: group_count }, ..request.clone() };
            let (group_rows, group_page) =
                unless_unknown(groups::list(conn, backend, ctx, &anchors, &group_request), || {
                    (Vec::new(), Page::empty())
                })?;
            let mut resources: Vec<serde_json::Value> = users::read_views(user_rows)
                .iter()
                .map(|v| user_projection.apply(&USER_RESOURCE, users::representation(v, &base)))
                .collect();
            let mut members =
                if group_projection.includes("members") { Some(groups::members(conn, &group_rows)?) } else { None };
            resources.extend(group_rows.iter().map(|row| {
                let these = members.as_mut().map(|m| m.remove(&row.pk).unwrap_or_default());
                group_projection.apply(&GROUP_RESOURCE, groups::representation(row, these.as_deref(), &base))
            }));
            Ok::<_, ScimError>(Page {
                resources,
                total: user_page.total + group_page.total,
                start_index: Some(start),
                next_cursor: None,
                previous_cursor: None,
            })
        })
        .await?;
    Ok(scim_json(StatusCode::OK, &page.into_json()))
}
