//! The base URL written into `Location` and `meta.location` (RFC 7644 §3.1, §3.3). Without a
//! configured `public_url` it comes from the request, but only from what cannot be forged: the
//! `Host` header when it names an allowed host, and `Forwarded`/`X-Forwarded-*` (RFC 7239) only
//! from a configured trusted proxy. Anything else falls back to the listen address, so a client
//! cannot make Roster hand out links to a host of its choosing.

use std::net::{IpAddr, SocketAddr};

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

    /// Whether `ip` is a configured trusted proxy, whose forwarding headers are believed.
    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The address of the client: the peer's, or, when the peer is a trusted proxy, the nearest
    /// forwarded address that is not itself a trusted proxy (`Forwarded: for=`, RFC 7239 §5.2,
    /// else `X-Forwarded-For`). Read from the right: entries left of the first untrusted one
    /// were written by the client and could be anything.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let mut client = req.peer_addr()?.ip();
        if !self.trusts(client) {
            return Some(client);
        }
        let values = |name: &str| -> Vec<String> {
            let all = req.headers().get_all(name).filter_map(|v| v.to_str().ok());
            all.flat_map(|v| v.split(',')).map(|hop| hop.trim().to_owned()).collect()
        };
        let forwarded: Vec<String> = values("forwarded")
            .iter()
            .filter_map(|hop| {
                let pair = hop.split(';').find(|p| p.trim().to_ascii_lowercase().starts_with("for="))?;
                Some(pair.trim()[4..].to_owned())
            })
            .collect();
        let hops = if forwarded.is_empty() { values("x-forwarded-for") } else { forwarded };
        for hop in hops.iter().rev() {
            // An address hidden ("unknown", an obfuscated name) ends what can be known.
            let Some(ip) = node_ip(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Some(client)
    }

    /// This server's own base URL, whatever a request says: `public_url`, or the listen address.
    /// What names that must not vary with the request use (a SET's issuer).
    pub fn base(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.fallback))
    }

    /// The base URL of the SCIM API as the client sees it.
    pub fn scim_base(&self, req: &HttpRequest) -> String {
        if let Some(url) = &self.public_url {
            return format!("{url}/scim/v2");
        }
        let (scheme, host) = if req.peer_addr().is_some_and(|peer| self.trusts(peer.ip())) {
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

/// The address of a forwarded node: `192.0.2.1`, `192.0.2.1:80`, `"[2001:db8::1]:80"`.
fn node_ip(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.parse().ok().or_else(|| node.rsplit_once(':')?.0.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_is_forwarded_only_by_a_trusted_proxy() {
        let settings = Settings { trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()], ..Settings::default() };
        let origin = Origin::new(&settings, "127.0.0.1:8080".parse().unwrap());
        let ip = |peer: &str, headers: &[(&str, &str)]| {
            let mut req = actix_web::test::TestRequest::default().peer_addr(peer.parse().unwrap());
            for (name, value) in headers {
                req = req.insert_header((*name, *value));
            }
            origin.client_ip(&req.to_http_request()).unwrap().to_string()
        };
        // From a stranger, forwarding headers are its own words.
        assert_eq!(ip("192.0.2.9:5000", &[("x-forwarded-for", "198.51.100.1")]), "192.0.2.9");
        // Behind the balancer: the nearest untrusted hop, not what the client prepended.
        assert_eq!(ip("10.0.0.2:5000", &[("x-forwarded-for", "203.0.113.7, 198.51.100.1, 10.0.0.3")]), "198.51.100.1");
        assert_eq!(ip("10.0.0.2:5000", &[("forwarded", "for=\"[2001:db8::1]:4711\";proto=https")]), "2001:db8::1");
        assert_eq!(ip("10.0.0.2:5000", &[("forwarded", "for=192.0.2.60:80, for=10.0.0.3")]), "192.0.2.60");
        assert_eq!(ip("10.0.0.2:5000", &[]), "10.0.0.2");
        assert_eq!(ip("10.0.0.2:5000", &[("x-forwarded-for", "unknown")]), "10.0.0.2");
    }

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
