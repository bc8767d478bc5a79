//! `/scim/v2/Users` (RFC 7644 §3.2–3.6).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::list::{list, search};
use super::resource;
use super::scim::{created, not_modified, respond, Request};
use crate::auth::{Principal, Scope};
use crate::error::ScimError;
use crate::http::body::JsonBody;
use crate::scim::patch::parse_patch;
use crate::scim::rendered::Rendered;
use crate::scim::resource::parse_resource;
use crate::scim::schema::USER_RESOURCE;
use crate::state::AppState;
use crate::users::{self, Users};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/Users", "GET, POST").route(web::get().to(list::<Users>)).route(web::post().to(create)))
        .service(resource("/Users/.search", "POST").route(web::post().to(search::<Users>)))
        .service(
            resource("/Users/{id}", "GET, PUT, PATCH, DELETE")
                .route(web::get().to(get))
                .route(web::put().to(replace))
                .route(web::patch().to(patch))
                .route(web::delete().to(delete)),
        );
}

fn show(r: &Request, view: &users::View) -> Rendered {
    users::shown(view, &r.base, &r.projection)
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    let r = Request::new(&req, &state, &p, Scope::Scim, &USER_RESOURCE)?;
    let doc = parse_resource(&USER_RESOURCE, &body.0)?;
    let ctx = r.ctx.clone();
    let row = state.db.write_replayable(move |conn| users::create(conn, &ctx, &doc)).await?;
    let view = users::created_view(row);
    Ok(created(show(&r, &view), &format!("{}/Users/{}", r.base, view.row.id), view.row.version))
}

async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let r = Request::new(&req, &state, &p, Scope::ScimRead, &USER_RESOURCE)?;
    let ctx = r.ctx.clone();
    let view = state.db.run_short(move |conn| users::read(conn, &ctx, &id)).await?;
    if let Some(res) = not_modified(&req, view.row.version) {
        return Ok(res);
    }
    Ok(respond(StatusCode::OK, show(&r, &view), view.row.version))
}

async fn replace(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    let r = Request::new(&req, &state, &p, Scope::Scim, &USER_RESOURCE)?;
    let doc = parse_resource(&USER_RESOURCE, &body.0)?;
    let put = users::Rewrite::put(r.ctx.clone(), id.into_inner(), doc, r.if_match.clone());
    let view = state.db.write_replayable(move |conn| put.run(conn)).await?;
    Ok(respond(StatusCode::OK, show(&r, &view), view.row.version))
}

async fn patch(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    let r = Request::new(&req, &state, &p, Scope::Scim, &USER_RESOURCE)?;
    let ops = parse_patch(&body.0)?;
    let patch = users::Rewrite::patch(r.ctx.clone(), id.into_inner(), ops, r.if_match.clone());
    let view = state.db.write_replayable(move |conn| patch.run(conn)).await?;
    Ok(respond(StatusCode::OK, show(&r, &view), view.row.version))
}

async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let r = Request::new(&req, &state, &p, Scope::Scim, &USER_RESOURCE)?;
    let (ctx, expected) = (r.ctx.clone(), r.if_match.clone());
    state.db.write(move |conn| users::delete(conn, &ctx, &id, expected.as_deref())).await?;
    Ok(HttpResponse::NoContent().finish())
}
