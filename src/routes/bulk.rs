//! `/scim/v2/Bulk` (RFC 7644 §3.7). The operations run in [`crate::bulk`]; this handler checks
//! the scope, holds the request to its tenant's rate, and answers 200 with the BulkResponse.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::resource;
use crate::auth::{Principal, Scope};
use crate::bulk;
use crate::context::Ctx;
use crate::error::ScimError;
use crate::http::body::JsonBody;
use crate::http::scim_json;
use crate::state::AppState;

/// The longest a Bulk request waits, in all, for its tenant's request rate to allow its
/// operations; the operations that would come later are answered 429 instead.
pub const MAX_RATE_WAIT: Duration = Duration::from_secs(5);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/Bulk", "POST").route(web::post().to(run)));
}

/// The body limit (`body_limit`) is the advertised `maxPayloadSize`: a larger body is refused
/// with 413 and a SCIM error before it is read whole (§3.7.4).
async fn run(
    req: HttpRequest,
    state: web::Data<AppState>,
    p: Principal,
    body: JsonBody,
) -> Result<HttpResponse, ScimError> {
    p.require(Scope::Scim)?;
    let request = bulk::parse(body.0)?;
    let ctx = Ctx { tenant_id: p.tenant_id.clone(), actor: p.subject.clone(), now: state.clock.now() };
    let base = state.origin.scim_base(&req);
    // The request was counted once against its tenant's rate when it was admitted; its further
    // operations take places of their own, chunk by chunk, so a Bulk of N operations costs the
    // tenant what N single requests would, and cannot be used to get around the limit.
    let deadline = Instant::now() + MAX_RATE_WAIT;
    let fairness = state.fairness.clone();
    let burst = fairness.tenant_burst().map(|b| b as usize);
    let tenant = p.tenant_id.clone();
    let pace = |n: usize| {
        let (fairness, tenant) = (fairness.clone(), tenant.clone());
        async move { fairness.take_for_tenant(&tenant, u32::try_from(n).unwrap_or(u32::MAX), deadline).await }
    };
    let answer = bulk::run(&state.db, &state.member_batches, &ctx, &base, request, burst, pace).await;
    Ok(scim_json(StatusCode::OK, &answer))
}
