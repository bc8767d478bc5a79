//! The product API under `/api/v1` (docs/lifecycle.md, "What the product does with each state"): sessions, content, search, the event feed,
//! the audit log, and an on-demand sweep — each behind its scope.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use validator::Validate;

use crate::auth::{Principal, Scope};
use crate::context::Ctx;
use crate::db::records;
use crate::error::{ScimError, ScimType};
use crate::http::body::JsonBody;
use crate::http::scim_json;
use crate::product::conversations::{self, NewConversation, MAX_MEMBERS};
use crate::product::{self, NewContent};
use crate::state::AppState;
use crate::sweep;
use crate::validation::{camel_case, describe};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/sessions", web::post().to(open_session))
        .route("/sessions/introspect", web::post().to(introspect))
        .route("/sessions/{id}", web::delete().to(end_session))
        .route("/content", web::post().to(create_content))
        .route("/content/{id}", web::get().to(get_content))
        .route("/conversations", web::post().to(create_conversation))
        .route("/conversations/{id}", web::get().to(get_conversation))
        .route("/conversations/{id}/members", web::post().to(add_member))
        .route("/conversations/{id}/members/{user_id}", web::delete().to(remove_member))
        .route("/conversations/{id}/messages", web::post().to(post_message))
        .route("/conversations/{id}/messages", web::get().to(messages))
        .route("/groups/{id}", web::get().to(get_group))
        .route("/search", web::get().to(search))
        .route("/events", web::get().to(events))
        .route("/audit", web::get().to(audit))
        .route("/admin/sweep", web::post().to(run_sweep));
}

fn ctx(state: &AppState, p: &Principal, scope: Scope) -> Result<Ctx, ScimError> {
    p.require(scope)?;
    Ok(Ctx { tenant_id: p.tenant_id.clone(), actor: p.subject.clone(), now: state.clock.now() })
}

/// Ids are UUIDs the server assigned (36 characters); room is left, but not for an essay.
const MAX_ID_CHARS: u64 = 64;

/// `POST /sessions`.
#[derive(Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
struct OpenSession {
    #[validate(length(min = 1, max = MAX_ID_CHARS))]
    user_id: String,
}

/// `POST /sessions/introspect`: RFC 7662 §2.1 requires the token; any other token, however
/// malformed, is simply not active (§2.2).
#[derive(Deserialize, Validate)]
struct Introspect {
    #[validate(length(min = 1))]
    token: String,
}

/// `POST /content`. `kind` and the ids are checked against the database by the product rules.
#[derive(Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
struct CreateContent {
    kind: String,
    #[validate(length(min = 1, max = MAX_ID_CHARS))]
    author_id: String,
    /// A post, comment or message is text a person wrote, not a document: as long as the
    /// longest message the common chat tools take.
    #[validate(length(min = 1, max = 40_000))]
    body: String,
    #[validate(length(min = 1, max = MAX_ID_CHARS))]
    parent_id: Option<String>,
    #[validate(length(min = 1, max = MAX_ID_CHARS))]
    recipient_id: Option<String>,
}

/// The request body as `T`, or 400 naming the member that is missing, of the wrong type or
/// outside its rule. Members the product API does not know are ignored, as SCIM bodies' are.
fn parse_body<T: DeserializeOwned + Validate>(body: JsonBody) -> Result<T, ScimError> {
    let parsed: T = serde_path_to_error::deserialize(body.0)
        .map_err(|e| ScimError::bad_request(ScimType::InvalidValue, format!("Invalid request body: {e}")))?;
    valid(parsed)
}

fn valid<T: Validate>(value: T) -> Result<T, ScimError> {
    value.validate().map_err(|e| ScimError::bad_request(ScimType::InvalidValue, describe(&e, camel_case)))?;
    Ok(value)
}

async fn open_session(state: web::Data<AppState>, p: Principal, body: JsonBody) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Sessions)?;
    let OpenSession { user_id } = parse_body(body)?;
    let (id, token, expires) = state.db.write(move |conn| product::open_session(conn, &ctx, &user_id)).await?;
    Ok(scim_json(StatusCode::CREATED, &json!({"id": id, "token": token, "expiresAt": crate::clock::time(expires)})))
}

async fn introspect(state: web::Data<AppState>, p: Principal, body: JsonBody) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Sessions)?;
    let Introspect { token } = parse_body(body)?;
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
    let CreateContent { kind, author_id, body, parent_id, recipient_id } = parse_body(body)?;
    let new = NewContent { kind, author_id, body, parent_id, recipient_id };
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

/// `GET /search`. A `limit` outside 1..=1000 is brought within it rather than refused.
#[derive(Deserialize, Validate)]
struct SearchQuery {
    /// What a person types into a search box.
    #[validate(length(min = 1, max = 256))]
    q: String,
    #[serde(default = "default_limit")]
    limit: i64,
}

/// `GET /events` and `GET /audit`: ids start at 1, so `after=0` is the beginning.
#[derive(Deserialize, Validate)]
struct FeedQuery {
    #[serde(default)]
    #[validate(range(min = 0))]
    after: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

fn query<T: DeserializeOwned + Validate>(req: &HttpRequest) -> Result<T, ScimError> {
    let parsed = web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ScimError::bad_request(ScimType::InvalidValue, format!("Invalid query: {e}")))?;
    valid(parsed)
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

/// `POST /conversations`. The title names a topic, so it is kept as given.
#[derive(Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
struct CreateConversation {
    #[validate(length(min = 1, max = 200))]
    title: Option<String>,
    #[validate(length(min = 1, max = MAX_MEMBERS))]
    member_ids: Vec<String>,
}

/// `POST /conversations/{id}/members`.
#[derive(Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
struct AddMember {
    #[validate(length(min = 1, max = MAX_ID_CHARS))]
    user_id: String,
}

/// `POST /conversations/{id}/messages`: as long as a direct message may be.
#[derive(Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
struct PostMessage {
    #[validate(length(min = 1, max = MAX_ID_CHARS))]
    sender_id: String,
    #[validate(length(min = 1, max = 40_000))]
    body: String,
}

async fn create_conversation(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Content)?;
    let CreateConversation { title, member_ids } = parse_body(body)?;
    if let Some(long) = member_ids.iter().find(|id| id.is_empty() || id.len() as u64 > MAX_ID_CHARS) {
        return Err(ScimError::bad_request(ScimType::InvalidValue, format!("memberIds: {long:?} is not a user id")));
    }
    let new = NewConversation { title, member_ids };
    let base = state.origin.scim_base(&req);
    let created = state.db.write(move |conn| conversations::create(conn, &ctx, new, &base)).await?;
    Ok(scim_json(StatusCode::CREATED, &created))
}

async fn get_conversation(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Content)?;
    let base = state.origin.scim_base(&req);
    let found = state.db.run(move |conn| conversations::get(conn, &ctx, &id, &base)).await?;
    Ok(scim_json(StatusCode::OK, &found))
}

async fn add_member(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Content)?;
    let AddMember { user_id } = parse_body(body)?;
    let base = state.origin.scim_base(&req);
    let found = state.db.write(move |conn| conversations::add_member(conn, &ctx, &id, &user_id, &base)).await?;
    Ok(scim_json(StatusCode::OK, &found))
}

async fn remove_member(
    state: web::Data<AppState>,
    p: Principal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Content)?;
    let (id, user_id) = path.into_inner();
    state.db.write(move |conn| conversations::remove_member(conn, &ctx, &id, &user_id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn post_message(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Content)?;
    let PostMessage { sender_id, body } = parse_body(body)?;
    let base = state.origin.scim_base(&req);
    let posted = state.db.write(move |conn| conversations::post(conn, &ctx, &id, &sender_id, &body, &base)).await?;
    Ok(scim_json(StatusCode::CREATED, &posted))
}

async fn messages(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Content)?;
    let FeedQuery { after, limit } = query(&req)?;
    let base = state.origin.scim_base(&req);
    let page =
        state.db.run(move |conn| conversations::messages(conn, &ctx, &id, after, limit.clamp(1, 1000), &base)).await?;
    Ok(scim_json(StatusCode::OK, &page))
}

async fn get_group(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let ctx = ctx(&state, &p, Scope::Content)?;
    let base = state.origin.scim_base(&req);
    let found = state.db.run(move |conn| product::groups::get(conn, &ctx, &id, &base)).await?;
    Ok(scim_json(StatusCode::OK, &found))
}
