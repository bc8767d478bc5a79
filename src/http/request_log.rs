//! The middleware that feeds the Admin Panel's request log (`crate::requestlog`): every answered
//! request on an identified connection goes to the log's buffer, off the request's path.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};

use crate::error::ScimError;
use crate::requestlog::{Entry, Identified};
use crate::state::AppState;

/// Adds each answered request of an identified connection to the log's buffer; counts the
/// refused ones no token was identified on.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let res = next.call(req).await?;
    let who = res.request().extensions().get::<Identified>().cloned();
    let status = res.status().as_u16();
    let Some(who) = who else {
        if status == 401 {
            metrics::counter!("roster_requests_unidentified_total").increment(1);
        }
        return Ok(res);
    };
    let Some(state) = res.request().app_data::<web::Data<AppState>>() else { return Ok(res) };
    let error = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ScimError>())
        .map(|e| (e.scim_type.map(|t| t.as_str()), e.detail.clone()));
    let uri = res.request().uri();
    let entry = Entry {
        who,
        at: state.clock.now(),
        method: res.request().method().clone(),
        path_and_query: uri.path_and_query().map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
        status,
        duration: started.elapsed(),
        error,
    };
    state.request_log.push(entry);
    Ok(res)
}
