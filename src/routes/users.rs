//! `/scim/v2/Users` (RFC 7644 §3.2–3.6).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth::{Principal, Scope};
use crate::db;
use crate::error::{ScimError, ScimType};
use crate::http::body::JsonBody;
use crate::http::{etag, if_match, scim_base, scim_json};
use crate::scim::list::ListRequest;
use crate::scim::patch::parse_patch;
use crate::scim::projection::Projection;
use crate::scim::resource::parse_resource;
use crate::scim::schema::USER_RESOURCE;
use crate::state::AppState;
use crate::users::{self, Ctx};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/Users").route(web::get().to(list)).route(web::post().to(create)))
        .route("/Users/.search", web::post().to(search))
        // Root search (RFC 7644 §3.4.3) covers every served resource type: Users for now.
        .route("/.search", web::post().to(search))
        .service(
            web::resource("/Users/{id}")
                .route(web::get().to(get))
                .route(web::put().to(replace))
                .route(web::patch().to(patch))
                .route(web::delete().to(delete)),
        );
}

fn ctx(principal: &Principal) -> Ctx<'_> {
    Ctx { tenant_id: &principal.tenant_id, actor: &principal.subject, now: db::now() }
}

/// `attributes`/`excludedAttributes` from the query string (RFC 7644 §3.9).
fn projection(req: &HttpRequest) -> Result<Projection, ScimError> {
    let (mut attributes, mut excluded) = (None, None);
    for (name, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
        match name.to_ascii_lowercase().as_str() {
            "attributes" => attributes = Some(value.into_owned()),
            "excludedattributes" => excluded = Some(value.into_owned()),
            _ => {}
        }
    }
    Projection::parse(&USER_RESOURCE, attributes.as_deref(), excluded.as_deref())
        .map_err(|e| ScimError::bad_request(ScimType::InvalidValue, e))
}

/// One user as the client asked to see it, with its ETag.
fn respond(status: StatusCode, row: &db::users::UserRow, base: &str, projection: &Projection) -> HttpResponse {
    let body = projection.apply(&USER_RESOURCE, &users::representation(row, base));
    let mut res = scim_json(status, &body);
    res.headers_mut().insert(header::ETAG, header::HeaderValue::from_str(&etag(row.version)).expect("ASCII etag"));
    res
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::Scim)?;
    let projection = projection(&req)?;
    let doc = parse_resource(&USER_RESOURCE, &body.0)?;
    let row = state.db.run(move |conn| users::create(conn, &ctx(&principal), doc)).await?;
    let base = scim_base(&req, state.settings.public_url.as_deref());
    let mut res = respond(StatusCode::CREATED, &row, &base, &projection);
    let location = format!("{base}/Users/{}", row.id);
    res.headers_mut().insert(header::LOCATION, header::HeaderValue::from_str(&location).map_err(ScimError::internal)?);
    Ok(res)
}

async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::ScimRead)?;
    let projection = projection(&req)?;
    let row = state.db.run(move |conn| users::get(conn, &ctx(&principal), &id)).await?;
    let tag = etag(row.version);
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|list| crate::http::etag_listed(list, &tag));
    if unchanged {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, tag)).finish());
    }
    Ok(respond(StatusCode::OK, &row, &scim_base(&req, state.settings.public_url.as_deref()), &projection))
}

async fn replace(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::Scim)?;
    let projection = projection(&req)?;
    let doc = parse_resource(&USER_RESOURCE, &body.0)?;
    let expected = if_match(&req);
    let row = state.db.run(move |conn| users::replace(conn, &ctx(&principal), &id, doc, expected.as_deref())).await?;
    Ok(respond(StatusCode::OK, &row, &scim_base(&req, state.settings.public_url.as_deref()), &projection))
}

async fn patch(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::Scim)?;
    let projection = projection(&req)?;
    let ops = parse_patch(&body.0)?;
    let expected = if_match(&req);
    let row = state.db.run(move |conn| users::patch(conn, &ctx(&principal), &id, &ops, expected.as_deref())).await?;
    Ok(respond(StatusCode::OK, &row, &scim_base(&req, state.settings.public_url.as_deref()), &projection))
}

async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::Scim)?;
    let expected = if_match(&req);
    state.db.run(move |conn| users::delete(conn, &ctx(&principal), &id, expected.as_deref())).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list(req: HttpRequest, state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::ScimRead)?;
    let request = ListRequest::from_query(req.query_string())?;
    respond_list(&req, state, principal, request).await
}

async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    principal.require(Scope::ScimRead)?;
    let request = ListRequest::from_search_body(&body.0)?;
    respond_list(&req, state, principal, request).await
}

pub async fn respond_list(
    req: &HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    request: ListRequest,
) -> Result<HttpResponse, ScimError> {
    let projection =
        Projection::parse(&USER_RESOURCE, request.attributes.as_deref(), request.excluded_attributes.as_deref())
            .map_err(|e| ScimError::bad_request(ScimType::InvalidValue, e))?;
    let backend = state.db.backend();
    let (rows, mut page) = state.db.run(move |conn| users::list(conn, backend, &ctx(&principal), &request)).await?;
    let base = scim_base(req, state.settings.public_url.as_deref());
    page.resources =
        rows.iter().map(|row| projection.apply(&USER_RESOURCE, &users::representation(row, &base))).collect();
    Ok(scim_json(StatusCode::OK, &page.to_json()))
}
