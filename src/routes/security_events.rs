//! Security Event Tokens (docs/security-events.md): a tenant's JWKS, public, and the RFC 8936
//! poll endpoint of its poll streams, for a token with the `events` scope.

use std::time::{Duration, Instant};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse, ResponseError};
use serde_json::json;

use crate::auth::{Principal, Scope};
use crate::db::{tenants, write_transaction};
use crate::delivery::signing::SealKey;
use crate::delivery::streams::{self, Poll, Polled, StreamError};
use crate::delivery::{keys, Wake};
use crate::error::ScimError;
use crate::state::AppState;

/// The longest a poll waits for SETs when the receiver allows it to (`returnImmediately`
/// false): below the idle timeouts of the usual proxies and load balancers.
const LONG_POLL: Duration = Duration::from_secs(20);

/// `/tenants/{tenant}/.well-known/jwks.json`, at the root.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/tenants/{tenant}/.well-known/jwks.json", "GET").route(web::get().to(jwks)));
}

/// `/streams/{id}/poll`, under `/api/v1`.
pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/streams/{id}/poll", "POST").route(web::post().to(poll)));
}

/// The tenant's signing keys as a JWK Set (RFC 7517 §5): the current key and those replaced
/// less than their grace period ago. An unknown tenant is a 404, as everywhere.
async fn jwks(state: web::Data<AppState>, tenant: web::Path<String>) -> Result<HttpResponse, ScimError> {
    let now = state.clock.now();
    let name = tenant.into_inner();
    let set = state
        .db
        .run(move |conn| {
            let tenant = tenants::by_name(conn, &name)?.ok_or_else(|| ScimError::not_found("No such tenant"))?;
            keys::jwks(conn, &tenant.id, now).map_err(ScimError::internal)
        })
        .await?;
    // Short: receivers fetch the new key soon after a rotation.
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "max-age=300")).json(set))
}

/// An error of the poll endpoint. RFC 8936 defines no error body for a poll request itself (its
/// `err`/`description` pair, §2.6, is what a receiver reports about a SET in `setErrs`), so
/// Roster answers what the request got wrong in the same shape — RFC 8935 §2.3's JSON
/// `{"err", "description"}` with a code of the RFC 8935 §2.4 registry —, and SCIM errors for the
/// rest (unknown stream, server trouble).
#[derive(Debug)]
enum PollError {
    /// A code of the "Security Event Token Error Codes" registry (RFC 8935 §2.4).
    Request {
        status: StatusCode,
        err: &'static str,
        description: String,
    },
    Scim(ScimError),
}

impl std::fmt::Display for PollError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PollError::Request { err, description, .. } => write!(f, "{err}: {description}"),
            PollError::Scim(e) => e.fmt(f),
        }
    }
}

impl ResponseError for PollError {
    fn status_code(&self) -> StatusCode {
        match self {
            PollError::Request { status, .. } => *status,
            PollError::Scim(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PollError::Request { status, err, description } => {
                HttpResponse::build(*status).json(json!({"err": err, "description": description}))
            }
            PollError::Scim(e) => e.error_response(),
        }
    }
}

impl From<ScimError> for PollError {
    fn from(e: ScimError) -> Self {
        PollError::Scim(e)
    }
}

/// RFC 8936 §2.2–§2.4: acknowledges what the request acknowledges (`ack`, `setErrs`), then
/// answers (§2.3: `sets` by jti, `moreAvailable`) the stream's oldest unacknowledged SETs, up to
/// `maxEvents`. With none waiting and
/// `returnImmediately` false it waits — woken by this node's writes, and looking again every
/// `poll_ms` for other nodes' — until SETs come or [`LONG_POLL`] has passed.
async fn poll(
    state: web::Data<AppState>,
    wake: web::Data<Wake>,
    p: Principal,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PollError> {
    if !p.scopes.grants(Scope::Events) {
        let description = "the token lacks the \"events\" scope polling needs".to_owned();
        return Err(PollError::Request { status: StatusCode::FORBIDDEN, err: "access_denied", description });
    }
    p.require(Scope::Events)?;
    let poll = Poll::parse(&body).map_err(|description| PollError::Request {
        status: StatusCode::BAD_REQUEST,
        err: "invalid_request",
        description,
    })?;
    let deadline = Instant::now() + LONG_POLL;
    let recheck = Duration::from_millis(state.settings.webhooks.poll_ms.max(10));
    let mut acknowledged = false;
    loop {
        // Registered before the look, so that a write committing after it still wakes this poll.
        let woken = wake.next_write();
        let polled = poll_once(&state, &p.tenant_id, &id, &poll, !acknowledged).await?;
        acknowledged = true;
        let now = Instant::now();
        if !polled.sets.is_empty() || poll.return_immediately || poll.max_events == 0 || now >= deadline {
            return Ok(HttpResponse::Ok().json(json!({"sets": polled.sets, "moreAvailable": polled.more_available})));
        }
        let wait = recheck.min(deadline - now);
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One look, as one transaction: the acknowledgements (on the first look only), the stream's
/// new events, and the SETs returned.
async fn poll_once(
    state: &AppState,
    tenant_id: &str,
    id: &str,
    poll: &Poll,
    acknowledge: bool,
) -> Result<Polled, ScimError> {
    let (tenant_id, id, poll) = (tenant_id.to_owned(), id.to_owned(), poll.clone());
    let (now, base) = (state.clock.now(), state.origin.base());
    state
        .db
        .write(move |conn| {
            let seal = SealKey::load(conn)?;
            write_transaction(conn, |conn| {
                let stream = streams::poll_stream(conn, &tenant_id, &id)?
                    .ok_or_else(|| ScimError::not_found(format!("No poll stream {id}")))?;
                if acknowledge {
                    streams::acknowledge(conn, &stream, &poll, now)?;
                }
                streams::take(conn, &seal, &base, &stream, poll.max_events, now).map_err(|e| match e {
                    StreamError::Db(e) => ScimError::from(e),
                    other => ScimError::internal(other),
                })
            })
        })
        .await
}
