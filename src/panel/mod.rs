//! The Admin Panel at `/admin` (docs/admin-panel.md): server-rendered pages for identity teams,
//! signed in by one-time links. Every lifecycle action goes through [`crate::admin::apply_as`],
//! and so through the lifecycle module, under the admin's name.

mod assets;
mod audit;
pub mod cli;
mod connections;
mod connections_views;
mod groups;
mod pages;
pub mod people;
mod settings;
pub mod signin;
pub mod store;
mod views;
mod webhooks;
mod webhooks_views;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpResponse, ResponseError};

use crate::db::DbError;
use signin::SignInError;

/// What every panel response carries: no script but Roster's own, no framing, no sniffing, and
/// no referrer to other sites (a sign-in link's secret is in its URL). Same-origin requests keep
/// theirs: under `no-referrer` browsers send `Origin: null` on form posts, which the origin
/// check could not tell from a forged one.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .wrap(from_fn(security_headers))
            .route("", web::get().to(pages::home))
            .route("/", web::get().to(pages::home))
            .route("/assets/panel.css", web::get().to(pages::css))
            .route("/assets/panel.js", web::get().to(pages::js))
            .route("/signin", web::get().to(pages::signin_form))
            .route("/signin", web::post().to(pages::signin))
            .route("/signout", web::post().to(pages::signout))
            .route("/tenant", web::post().to(pages::switch_tenant))
            .route("/people", web::get().to(pages::people))
            .route("/people/{id}", web::get().to(pages::person))
            .route("/people/{id}/{action}", web::post().to(pages::act))
            .route("/assets/connections.css", web::get().to(connections::css))
            .route("/assets/connections.js", web::get().to(connections::js))
            .route("/connections", web::get().to(connections::list))
            .route("/connections", web::post().to(connections::issue))
            .route("/connections/{id}", web::get().to(connections::show))
            .route("/connections/{id}/revoke", web::post().to(connections::revoke))
            .route("/sessions", web::get().to(pages::sessions))
            .route("/sessions/{id}/revoke", web::post().to(pages::revoke_session))
            .route("/groups", web::get().to(groups::list))
            .route("/groups/{id}", web::get().to(groups::group))
            .route("/settings", web::get().to(settings::show))
            .route("/settings", web::post().to(settings::save))
            .route("/webhooks", web::get().to(webhooks::list))
            .route("/webhooks", web::post().to(webhooks::add))
            .route("/webhooks/{id}", web::get().to(webhooks::show))
            .route("/webhooks/{id}/remove", web::post().to(webhooks::remove))
            .route("/webhooks/{id}/test", web::post().to(webhooks::test))
            .route("/webhooks/{id}/rotate", web::post().to(webhooks::rotate))
            .route("/webhooks/{id}/replay", web::post().to(webhooks::replay))
            .route("/audit", web::get().to(audit::page))
            .route("/audit.jsonl", web::get().to(audit::download))
            .default_service(web::to(pages::not_found)),
    );
}

async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .insert(header::HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    // Pages show personal data: never stored by a browser or a proxy. Assets set their own.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

/// Why a panel request was not served; shown as a page that says so in words.
#[derive(Debug, thiserror::Error)]
pub enum PanelError {
    #[error(transparent)]
    SignIn(#[from] SignInError),
    #[error("{0}")]
    NotFound(String),
    /// A form without this session's CSRF token, or from another origin.
    #[error("This form was not sent from this panel (its security token or origin does not match), so nothing was changed. Reload the page and try again.")]
    Forged,
    #[error("{0}")]
    BadRequest(String),
    #[error("Roster could not reach its database; nothing was changed. Try again shortly.")]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for PanelError {
    fn from(err: diesel::result::Error) -> Self {
        PanelError::Db(err.into())
    }
}

impl ResponseError for PanelError {
    fn status_code(&self) -> StatusCode {
        match self {
            // Not 401: that needs a `WWW-Authenticate` challenge (RFC 9110 §15.5.2), and the
            // panel's only way in is a sign-in link.
            PanelError::SignIn(SignInError::SignedOut) => StatusCode::SEE_OTHER,
            PanelError::SignIn(SignInError::BadLink) | PanelError::Forged => StatusCode::FORBIDDEN,
            PanelError::SignIn(SignInError::Db(_)) | PanelError::Db(_) => StatusCode::SERVICE_UNAVAILABLE,
            PanelError::SignIn(_) | PanelError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PanelError::NotFound(_) => StatusCode::NOT_FOUND,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let PanelError::SignIn(SignInError::SignedOut) = self {
            return HttpResponse::SeeOther().insert_header((header::LOCATION, pages::SIGNED_OUT)).finish();
        }
        if let PanelError::Db(e) | PanelError::SignIn(SignInError::Db(e)) = self {
            tracing::warn!(error = %e, "admin panel request failed");
        }
        let title = match self {
            PanelError::SignIn(SignInError::BadLink) => "Sign-in link not valid",
            PanelError::Forged => "Request refused",
            PanelError::NotFound(_) => "Not found",
            _ => "Something went wrong",
        };
        let body = views::page(title, None, views::Section::None, views::problem(title, &self.to_string()));
        pages::html(self.status_code(), body)
    }
}
