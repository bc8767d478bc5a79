//! `/scim/v2/Groups` (RFC 7644 §3.2–3.6). Members are read only when the response shows them:
//! Entra always asks with `excludedAttributes=members`.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::list::{list, search};
use super::resource;
use super::scim::{created, not_modified, respond, Request};
use crate::auth::{Principal, Scope};
use crate::db::groups::GroupRow;
use crate::error::ScimError;
use crate::groups::{self, Groups};
use crate::http::body::JsonBody;
use crate::scim::members::split_member_ops;
use crate::scim::patch::parse_patch;
use crate::scim::resource::parse_resource;
use crate::scim::schema::GROUP_RESOURCE;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/Groups", "GET, POST").route(web::get().to(list::<Groups>)).route(web::post().to(create)))
        .service(resource("/Groups/.search", "POST").route(web::post().to(search::<Groups>)))
        .service(
            resource("/Groups/{id}", "GET, PUT, PATCH, DELETE")
                .route(web::get().to(get))
                .route(web::put().to(replace))
                .route(web::patch().to(patch))
                .route(web::delete().to(delete)),
        );
}

/// Runs `work`, then renders the group it returns, in one trip to the database pool; `writes`
/// says whether `work` changes anything. A write may run again from the start (see
/// [`crate::db::Database::write_replayable`]).
async fn one(
    state: &AppState,
    r: Request,
    writes: bool,
    mut work: impl FnMut(&mut crate::db::DbConnection, &Request) -> Result<GroupRow, ScimError> + Send + 'static,
) -> Result<(GroupRow, serde_json::Value), ScimError> {
    let request = Arc::new(r);
    let task = move |conn: &mut crate::db::DbConnection| {
        let row = work(conn, &request)?;
        let body = groups::show(conn, std::slice::from_ref(&row), &request.projection, &request.base)?.remove(0);
        Ok((row, body))
    };
    if writes {
        state.db.write_replayable(task).await
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
    let base = r.base.clone();
    let (row, body) = one(&state, r, true, move |conn, r| groups::create(conn, &r.ctx, &doc)).await?;
    Ok(created(body, &format!("{base}/Groups/{}", row.id), row.version))
}

async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let r = Request::new(&req, &state, &p, Scope::ScimRead, &GROUP_RESOURCE)?;
    let (row, body) = one(&state, r, false, move |conn, r| groups::get(conn, &r.ctx, &id)).await?;
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
    let (row, body) =
        one(&state, r, true, move |conn, r| groups::replace(conn, &r.ctx, &id, &doc, r.if_match.as_deref())).await?;
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
        let (ctx, expected, id) = (r.ctx.clone(), r.if_match.clone(), id.into_inner());
        let version = state.member_batches.patch(&state.db, ctx, id, attribute_ops, member_changes, expected).await?;
        let mut res = HttpResponse::NoContent().finish();
        res.headers_mut().insert(
            actix_web::http::header::ETAG,
            actix_web::http::header::HeaderValue::from_str(&crate::scim::version::etag(version))
                .expect("an ASCII etag"),
        );
        return Ok(res);
    }
    let (row, body) = one(&state, r, true, move |conn, r| {
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
