//! HTTP handlers, one file per area; they parse, call in, and shape the answer.

mod bulk;
mod discovery;
mod errors;
mod groups;
mod health;
mod list;
mod oauth;
mod product;
mod scim;
mod search;
mod security_events;
mod users;

use actix_web::{web, HttpRequest};

use crate::error::ScimError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        // Resources are tried in order and each one with a path parameter is a regex match:
        // the busiest come first. No two patterns match the same path, except `/Users/.search`
        // and `/Users/{id}` (and the same for Groups), which keep their order inside.
        .service(
            web::scope("/scim/v2")
                .configure(users::configure)
                .configure(groups::configure)
                .configure(discovery::configure)
                .configure(search::configure)
                .configure(bulk::configure),
        )
        .service(web::scope("/api/v1").configure(product::configure).configure(security_events::configure_api))
        .configure(security_events::configure)
        .configure(crate::panel::configure)
        .configure(oauth::configure)
        .default_service(web::to(not_found));
}

/// A resource whose other methods answer 405 with `Allow` and a SCIM error body (RFC 9110
/// §15.5.6), rather than falling through to 404.
pub fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        let err = ScimError::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not allowed on {}; allowed: {allow}", req.method(), req.path()),
        );
        let mut res = actix_web::ResponseError::error_response(&err);
        res.headers_mut()
            .insert(actix_web::http::header::ALLOW, actix_web::http::header::HeaderValue::from_static(allow));
        res
    }))
}

async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ScimError> {
    Err(ScimError::not_found(format!("No endpoint at {} {}", req.method(), req.path())))
}
