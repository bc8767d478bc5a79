//! Listing and searching, one handler for every resource type: `GET /Users`,
//! `POST /Users/.search`, the same for Groups, and `POST /.search` across types (RFC 7644
//! §3.4.2, §3.4.3). The query or the search body becomes a [`ListRequest`]; the type's service
//! reads and renders the page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::scim::Request;
use crate::auth::{Principal, Scope};
use crate::error::ScimError;
use crate::http::body::JsonBody;
use crate::http::scim_json;
use crate::listing::Listed;
use crate::scim::list::ListRequest;
use crate::state::AppState;

/// `GET /{Type}` with the request in the query string (RFC 7644 §3.4.2).
pub async fn list<L: Listed>(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
) -> Result<HttpResponse, ScimError> {
    let request = ListRequest::from_query(req.query_string())?;
    respond::<L>(&req, &state, &p, request).await
}

/// `POST /{Type}/.search` with the request in the body (RFC 7644 §3.4.3).
pub async fn search<L: Listed>(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    let request = ListRequest::from_search_body(&body.0)?;
    respond::<L>(&req, &state, &p, request).await
}

async fn respond<L: Listed>(
    req: &HttpRequest,
    state: &AppState,
    p: &Principal,
    request: ListRequest,
) -> Result<HttpResponse, ScimError> {
    let r = Request::new(req, state, p, Scope::ScimRead, L::RESOURCE)?;
    let page = L::page(&state.db, state.anchors.clone(), r.ctx, request, r.base).await?;
    Ok(scim_json(StatusCode::OK, &page.into_body()))
}
