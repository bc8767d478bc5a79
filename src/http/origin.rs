//! The base URL written into `Location` and `meta.location` (RFC 7644 §3.1, §3.3). Without a
//! configured `public_url` it comes from the request, but only from what cannot be forged: the
//! `Host` header when it names an allowed host, and `Forwarded`/`X-Forwarded-*` (RFC 7239) only
//! from a configured trusted proxy. Anything else falls back to the listen address, so a client
//! cannot make Roster hand out links to a host of its choosing.

use std::net::SocketAddr;

use actix_web::http::header;
use actix_web::HttpRequest;
use ipnet::IpNet;

use crate::config::Settings;

#[derive(Debug, Clone)]
pub struct Origin {
    public_url: Option<String>,
    trusted_proxies: Vec<IpNet>,
    /// Lowercased `host` or `host:port` entries.
    allowed_hosts: Vec<String>,
    /// `host:port` used when the request names no allowed host.
    fallback: String,
}

impl Origin {
    /// `listen` is the bound address: it and its loopback forms are always allowed.
    pub fn new(settings: &Settings, listen: SocketAddr) -> Origin {
        let port = listen.port();
        let mut allowed: Vec<String> = settings.allowed_hosts.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        allowed.extend([
            listen.to_string(),
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ]);
        // 0.0.0.0 is no address a client can use in a link.
        let fallback = if listen.ip().is_unspecified() { format!("localhost:{port}") } else { listen.to_string() };
        Origin {
            public_url: settings.public_url.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            allowed_hosts: allowed,
            fallback,
        }
    }

    fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        // An entry without a port allows the host on any port.
        let bare = match host.rsplit_once(':') {
            Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host.as_str(),
        };
        self.allowed_hosts.iter().any(|a| *a == host || *a == bare)
    }

    /// The base URL of the SCIM API as the client sees it.
    pub fn scim_base(&self, req: &HttpRequest) -> String {
        if let Some(url) = &self.public_url {
            return format!("{url}/scim/v2");
        }
        let trusted =
            req.peer_addr().is_some_and(|peer| self.trusted_proxies.iter().any(|net| net.contains(&peer.ip())));
        let (scheme, host) = if trusted {
            // actix reads `Forwarded`, then `X-Forwarded-Proto`/`-Host`, then `Host`.
            let info = req.connection_info();
            (info.scheme().to_owned(), info.host().to_owned())
        } else {
            let scheme = if req.app_config().secure() { "https" } else { "http" };
            let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned);
            (scheme.to_owned(), host.or_else(|| req.uri().authority().map(|a| a.to_string())).unwrap_or_default())
        };
        let scheme = if scheme == "https" { "https" } else { "http" };
        let host = if self.allows(&host) { host } else { self.fallback.clone() };
        format!("{scheme}://{host}/scim/v2")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts_match_without_case_and_with_or_without_a_port() {
        let settings = Settings { allowed_hosts: vec!["SCIM.example.com".into()], ..Settings::default() };
        let origin = Origin::new(&settings, "127.0.0.1:8080".parse().unwrap());
        for host in ["scim.example.com", "scim.EXAMPLE.com:443", "localhost:8080", "127.0.0.1:8080", "[::1]:8080"] {
            assert!(origin.allows(host), "{host}");
        }
        for host in ["evil.example", "localhost:9999", "scim.example.com.evil", "", "scim.example.com:x"] {
            assert!(!origin.allows(host), "{host}");
        }
    }
}
