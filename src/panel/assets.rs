//! The panel's stylesheet and script, compiled into the binary and served by Roster itself with
//! a content hash: in the URL (so a new release is fetched at once) and as the ETag.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

pub struct Asset {
    path: &'static str,
    body: &'static str,
    content_type: &'static str,
    hash: String,
}

impl Asset {
    fn new(path: &'static str, body: &'static str, content_type: &'static str) -> Asset {
        let hash = Sha256::digest(body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        Asset { path, body, content_type, hash }
    }

    fn hash(&self) -> &str {
        &self.hash
    }

    /// Where pages link to it.
    pub fn url(&self) -> String {
        format!("{}?v={}", self.path, &self.hash()[..16])
    }

    pub fn respond(&self, req: &HttpRequest) -> HttpResponse {
        let etag = format!("\"{}\"", self.hash());
        let fresh = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
        let mut res = if fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
        res.insert_header((header::ETAG, etag))
            // Versioned URLs: a day in caches, revalidated by ETag after that.
            .insert_header((header::CACHE_CONTROL, "public, max-age=86400"));
        if fresh {
            return res.finish();
        }
        res.content_type(self.content_type).body(self.body)
    }
}

pub static CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new("/admin/assets/panel.css", include_str!("../../assets/panel.css"), "text/css; charset=utf-8")
});

pub static CONNECTIONS_CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new("/admin/assets/connections.css", include_str!("../../assets/connections.css"), "text/css; charset=utf-8")
});

pub static CONNECTIONS_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "/admin/assets/connections.js",
        include_str!("../../assets/connections.js"),
        "text/javascript; charset=utf-8",
    )
});

pub static JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new("/admin/assets/panel.js", include_str!("../../assets/panel.js"), "text/javascript; charset=utf-8")
});
