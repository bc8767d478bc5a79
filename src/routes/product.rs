//! The product API under `/api/v1` (DESIGN.md §3): sessions, content, search, the event feed,
//! the audit log, and an on-demand sweep — each behind its scope.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Principal, Scope};
use crate::db::records;
use crate::error::{ScimError, ScimType};
use crate::http::body::JsonBody;
use crate::http::scim_json;
use crate::product::{self, NewContent};
use crate::state::AppState;
use crate::sweep;
use crate::users::Ctx;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/sessions", web::post().to(open_session))
        .route("/sessions/introspect", web::post().to(introspect))
        .route("/sessions/{id}", web::delete().to(end_session))
        .route("/content", web::post().to(create_content))
        .route("/content/{id}", web::get().to(get_content))
        .route("/search", web::get().to(search))
        .route("/events", web::get().to(events))
        .route("/audit", web::get().to(audit))
        .route("/admin/sweep", web::post().to(run_sweep));
}

fn ctx(state: &AppState, p: &Principal, scope: Scope) -> Result<Ctx, ScimError> {
    p.require(scope)?;
    Ok(Ctx { tenant_id: p.tenant_id.clone(), actor: p.subject.clone(), now: state.clock.now() })
}

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, ScimError> {
    body.get(name).and_then(Value::as_str).ok_or_else(|| {
        ScimError::bad_request(ScimType::InvalidValue, format!("{name:?} is required and must be a string"))
    })
}

fn optional(body: &Value, name: &str) -> Option<String> {
    body.get(name).and_then(Value::as_str).map(str::to_owned)
}

async fn open_session(state: web::Data<AppState>, p: Principal, body: JsonBody) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Sessions)?;
    let user_id = field(&body.0, "userId")?.to_owned();
    let (id, token, expires) = state.db.write(move |conn| product::open_session(conn, &ctx, &user_id)).await?;
    Ok(scim_json(StatusCode::CREATED, &json!({"id": id, "token": token, "expiresAt": crate::users::time(expires)})))
}

async fn introspect(state: web::Data<AppState>, p: Principal, body: JsonBody) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Sessions)?;
    let token = field(&body.0, "token")?.to_owned();
    let answer = state.db.run(move |conn| product::introspect(conn, &ctx, &token)).await?;
    Ok(HttpResponse::Ok().json(answer))
}

async fn end_session(
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Sessions)?;
    state.db.write(move |conn| product::end_session(conn, &ctx, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn create_content(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Content)?;
    let new = NewContent {
        kind: field(&body.0, "kind")?.to_owned(),
        author_id: field(&body.0, "authorId")?.to_owned(),
        body: field(&body.0, "body")?.to_owned(),
        parent_id: optional(&body.0, "parentId"),
        recipient_id: optional(&body.0, "recipientId"),
    };
    let base = state.origin.scim_base(&req);
    let created = state.db.write(move |conn| product::create_content(conn, &ctx, new, &base)).await?;
    Ok(scim_json(StatusCode::CREATED, &created))
}

async fn get_content(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Content)?;
    let base = state.origin.scim_base(&req);
    let found = state.db.run(move |conn| product::get_content(conn, &ctx, &id, &base)).await?;
    Ok(scim_json(StatusCode::OK, &found))
}

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
    #[serde(default = "default_limit")]
    limit: i64,
}

#[derive(Deserialize)]
struct FeedQuery {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ScimError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ScimError::bad_request(ScimType::InvalidValue, format!("Invalid query: {e}")))
}

async fn search(req: HttpRequest, state: web::Data<AppState>, p: Principal) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Content)?;
    let SearchQuery { q, limit } = query(&req)?;
    let base = state.origin.scim_base(&req);
    let found = state.db.run(move |conn| product::search(conn, &ctx, &q, limit.clamp(1, 1000), &base)).await?;
    Ok(scim_json(StatusCode::OK, &found))
}

async fn events(req: HttpRequest, state: web::Data<AppState>, p: Principal) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Events)?;
    let FeedQuery { after, limit } = query(&req)?;
    let feed = state.db.run(move |conn| product::events(conn, &ctx, after, limit.clamp(1, 1000))).await?;
    Ok(scim_json(StatusCode::OK, &feed))
}

async fn audit(req: HttpRequest, state: web::Data<AppState>, p: Principal) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Admin)?;
    let FeedQuery { after, limit } = query(&req)?;
    let rows = state
        .db
        .run(move |conn| Ok::<_, ScimError>(records::audit_after(conn, &ctx.tenant_id, after, limit.clamp(1, 1000))?))
        .await?;
    let entries: Vec<Value> = rows.iter().map(product::audit_json).collect();
    Ok(scim_json(StatusCode::OK, &json!({"entries": entries})))
}

/// Runs one sweep of the caller's tenant now, as `roster sweep` does; for operators and tests.
async fn run_sweep(state: web::Data<AppState>, p: Principal) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Admin)?;
    let report = state.db.write(move |conn| sweep::run(conn, ctx.now, Some(&ctx.tenant_id))).await?;
    Ok(scim_json(StatusCode::OK, &serde_json::to_value(report).map_err(ScimError::internal)?))
}
