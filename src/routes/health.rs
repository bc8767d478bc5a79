//! Liveness, readiness and metrics for orchestrators and Prometheus.

use actix_web::{http::header, web, HttpResponse};
use diesel::connection::SimpleConnection;

use crate::state::AppState;

/// The process is up and answering.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The database answers a query; 503 with the reason otherwise.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let probe = state.db.run(|conn| conn.batch_execute("SELECT 1").map_err(crate::db::DbError::from)).await;
    match probe {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "unavailable", "reason": e.to_string() })),
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(state.metrics.render(state.db.pool_state()))
}
