//! HTTP handlers, one file per area; they parse, call in, and shape the answer.

mod discovery;
mod groups;
mod health;
mod product;
mod scim;
mod search;
mod users;

use actix_web::{web, HttpRequest};

use crate::error::ScimError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .service(
            web::scope("/scim/v2")
                .configure(discovery::configure)
                .configure(users::configure)
                .configure(groups::configure)
                .configure(search::configure),
        )
        .service(web::scope("/api/v1").configure(product::configure))
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ScimError> {
    Err(ScimError::not_found(format!("No endpoint at {} {}", req.method(), req.path())))
}
