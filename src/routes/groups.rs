//! `/scim/v2/Groups` (RFC 7644 §3.2–3.6). Members are read only when the response shows them:
//! Entra always asks with `excludedAttributes=members`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::resource;
use super::scim::{created, not_modified, projection, respond, Request};
use crate::auth::{Principal, Scope};
use crate::db::groups::GroupRow;
use crate::error::ScimError;
use crate::groups;
use crate::groups::batches::MemberBatches;
use crate::http::body::JsonBody;
use crate::http::scim_json;
use crate::scim::list::ListRequest;
use crate::scim::patch::{parse_patch, split_member_ops};
use crate::scim::resource::parse_resource;
use crate::scim::schema::GROUP_RESOURCE;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/Groups", "GET, POST").route(web::get().to(list)).route(web::post().to(create)))
        .service(resource("/Groups/.search", "POST").route(web::post().to(search)))
        .service(
            resource("/Groups/{id}", "GET, PUT, PATCH, DELETE")
                .route(web::get().to(get))
                .route(web::put().to(replace))
                .route(web::patch().to(patch))
                .route(web::delete().to(delete)),
        );
}

/// Renders groups, loading members only when the projection keeps them.
fn show(
    r: &Request,
    conn: &mut crate::db::DbConnection,
    rows: &[GroupRow],
) -> Result<Vec<serde_json::Value>, ScimError> {
    let mut members = if r.projection.includes("members") { Some(groups::members(conn, rows)?) } else { None };
    Ok(rows
        .iter()
        .map(|row| {
            let these = members.as_mut().map(|m| m.remove(&row.pk).unwrap_or_default());
            r.projection.apply(&GROUP_RESOURCE, groups::representation(row, these.as_deref(), &r.base))
        })
        .collect())
}

/// Runs `work`, then renders the group it returns, in one trip to the database pool; `writes`
/// says whether `work` changes anything.
async fn one(
    state: &AppState,
    r: Request,
    writes: bool,
    work: impl FnOnce(&mut crate::db::DbConnection, &Request) -> Result<GroupRow, ScimError> + Send + 'static,
) -> Result<(Request, GroupRow, serde_json::Value), ScimError> {
    let task = move |conn: &mut crate::db::DbConnection| {
        let row = work(conn, &r)?;
        let body = show(&r, conn, std::slice::from_ref(&row))?.remove(0);
        Ok((r, row, body))
    };
    if writes {
        state.db.write(task).await
    } else {
        state.db.run(task).await
    }
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    let r = Request::new(&req, &state, &p, Scope::Scim, &GROUP_RESOURCE)?;
    let doc = parse_resource(&GROUP_RESOURCE, &body.0)?;
    let (r, row, body) = one(&state, r, true, move |conn, r| groups::create(conn, &r.ctx, doc)).await?;
    Ok(created(body, &format!("{}/Groups/{}", r.base, row.id), row.version))
}

async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let r = Request::new(&req, &state, &p, Scope::ScimRead, &GROUP_RESOURCE)?;
    let (_, row, body) = one(&state, r, false, move |conn, r| groups::get(conn, &r.ctx, &id)).await?;
    if let Some(res) = not_modified(&req, row.version) {
        return Ok(res);
    }
    Ok(respond(StatusCode::OK, body, row.version))
}

async fn replace(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    let r = Request::new(&req, &state, &p, Scope::Scim, &GROUP_RESOURCE)?;
    let doc = parse_resource(&GROUP_RESOURCE, &body.0)?;
    let (_, row, body) =
        one(&state, r, true, move |conn, r| groups::replace(conn, &r.ctx, &id, doc, r.if_match.as_deref())).await?;
    Ok(respond(StatusCode::OK, body, row.version))
}

/// 204 unless `attributes` or `excludedAttributes` asks for the group back (RFC 7644 §3.5.2;
/// Entra expects 204, and answering with the members of a large group would cost what the
/// member table exists to avoid).
async fn patch(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    let r = Request::new(&req, &state, &p, Scope::Scim, &GROUP_RESOURCE)?;
    let (attribute_ops, member_changes) = split_member_ops(parse_patch(&body.0)?)?;
    if !r.projected() {
        let (ctx, expected) = (r.ctx.clone(), r.if_match.clone());
        let version =
            if MemberBatches::takes(state.db.backend(), &attribute_ops, &member_changes, r.if_match.as_deref()) {
                state.member_batches.apply(&state.db, ctx, id.into_inner(), member_changes).await?
            } else {
                let patch = move |conn: &mut _| {
                    groups::patch(conn, &ctx, &id, &attribute_ops, &member_changes, expected.as_deref())
                };
                state.db.write(patch).await?.version
            };
        let mut res = HttpResponse::NoContent().finish();
        res.headers_mut().insert(
            actix_web::http::header::ETAG,
            actix_web::http::header::HeaderValue::from_str(&crate::http::etag(version)).expect("an ASCII etag"),
        );
        return Ok(res);
    }
    let (_, row, body) = one(&state, r, true, move |conn, r| {
        groups::patch(conn, &r.ctx, &id, &attribute_ops, &member_changes, r.if_match.as_deref())
    })
    .await?;
    Ok(respond(StatusCode::OK, body, row.version))
}

async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let r = Request::new(&req, &state, &p, Scope::Scim, &GROUP_RESOURCE)?;
    let (ctx, expected) = (r.ctx.clone(), r.if_match.clone());
    state.db.write(move |conn| groups::delete(conn, &ctx, &id, expected.as_deref())).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list(req: HttpRequest, state: web::Data<AppState>, p: Principal) -> Result<HttpResponse, ScimError> {
    let request = ListRequest::from_query(req.query_string())?;
    respond_list(&req, state, &p, request).await
}

async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    let request = ListRequest::from_search_body(&body.0)?;
    respond_list(&req, state, &p, request).await
}

async fn respond_list(
    req: &HttpRequest,
    state: web::Data<AppState>,
    p: &Principal,
    request: ListRequest,
) -> Result<HttpResponse, ScimError> {
    let mut r = Request::new(req, &state, p, Scope::ScimRead, &GROUP_RESOURCE)?;
    r.projection = projection(&GROUP_RESOURCE, request.attributes.as_deref(), request.excluded_attributes.as_deref())?;
    let backend = state.db.backend();
    let page = state
        .db
        .run(move |conn| {
            let (rows, mut page) = groups::list(conn, backend, &r.ctx, &request)?;
            page.resources = show(&r, conn, &rows)?;
            Ok::<_, ScimError>(page)
        })
        .await?;
    Ok(scim_json(StatusCode::OK, &page.into_json()))
}
