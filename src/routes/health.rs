//! Liveness, readiness and metrics for orchestrators and Prometheus.

use actix_web::{http::header, web, HttpResponse};

use crate::state::AppState;

/// The process is up and answering.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// This node can serve (see [`crate::readiness`]): 200 with each check, or 503 naming the
/// checks that failed.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (ready, body) = state.readiness.check(&state.db).await;
    let mut response = if ready { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    response.content_type("application/json").body(body)
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(state.metrics.render(state.db.pool_state(), state.db.wal_bytes()))
}
