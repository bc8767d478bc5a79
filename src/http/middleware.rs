//! Cross-cutting request handling: request ids, tracing spans, metrics, and the body limit.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};
use tracing::Instrument;

use crate::error::ScimError;
use crate::metrics::{Answered, Caller, WorkerSeries};
use crate::state::AppState;
use crate::telemetry;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Accepts a caller's request id when it is short and plain, so ids can be followed across
/// systems without letting a client inject text into logs.
fn incoming_request_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(REQUEST_ID)?.to_str().ok()?;
    let plain = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plain.then(|| value.to_owned())
}

/// Gives each request its id and its span (a child of the caller's W3C `traceparent` when traces
/// are exported), and counts it once answered.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let request_id = incoming_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().clone();
    // Field names follow OpenTelemetry's HTTP semantic conventions, which tracing backends know.
    let span = tracing::info_span!(
        "request",
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        request_id = %request_id,
        http.request.method = %method,
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        roster.tenant = tracing::field::Empty,
        scim.type = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    let mut early_route = None;
    if telemetry::exporting() {
        // A span's name is fixed once it starts, before routing: the pattern is matched here
        // (only while exporting, as it costs a walk of the routes). A path the tolerant-path
        // rewrite still has to fix matches nothing yet, and the span is named by its method
        // alone, as OpenTelemetry's HTTP conventions name a span without a route.
        early_route = req.match_pattern();
        match &early_route {
            Some(route) => span.record("otel.name", format!("{method} {route}")),
            None => span.record("otel.name", method.as_str()),
        };
        telemetry::continue_trace(&span, req.headers());
    }
    let mut res = next.call(req).instrument(span.clone()).await?;
    let elapsed = started.elapsed();
    // Asked after routing, when the matched resource is known (unless it was matched above);
    // before it, actix would match the path against every route pattern a second time.
    let route = early_route.or_else(|| res.request().match_pattern());
    let route = route.as_deref().unwrap_or("unmatched");
    let status = res.status().as_u16();
    let scim_type = res.response().error().and_then(|e| e.as_error::<ScimError>()).and_then(|e| e.scim_type);
    let caller = res.request().extensions().get::<Caller>().cloned();
    if !span.is_disabled() {
        span.record("http.route", route);
        span.record("http.response.status_code", status);
        if let Some(caller) = &caller {
            span.record("roster.tenant", &*caller.tenant);
        }
        if let Some(scim_type) = scim_type {
            span.record("scim.type", scim_type.as_str());
        }
    }
    if let Some(series) = res.request().app_data::<WorkerSeries>() {
        series.record(&Answered { method: &method, route, status, elapsed, caller: caller.as_ref(), scim_type });
    }
    span.in_scope(|| tracing::info!(status, latency_ms = elapsed.as_secs_f64() * 1000.0, "request finished"));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

/// Refuses, before any handler runs, what no route accepts: a body whose declared length is over
/// the limit (bodies without a length are cut off by the body extractor as they stream in), and
/// a URL carrying a NUL character.
pub async fn screen_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, Error> {
    let limit = req.app_data::<web::Data<AppState>>().map(|s| s.settings.body_limit).unwrap_or(usize::MAX);
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Ok(req.error_response(ScimError::payload_too_large(limit)));
    }
    // No id, filter or search term of Roster's contains U+0000, and PostgreSQL text cannot
    // hold it: refuse it at the door rather than deep inside a query.
    let raw = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
    if raw.to_ascii_lowercase().contains("%00") {
        return Ok(req.error_response(ScimError::bad_request(
            crate::error::ScimType::InvalidValue,
            "The request URL contains a NUL character (%00), which no identifier or filter may contain",
        )));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}
