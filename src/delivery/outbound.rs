//! Outbound requests that cannot be turned against the network Roster runs in: bounded in
//! time, TLS verified by rustls, no redirects followed, no proxy from the environment, and —
//! unless the webhook was added with `--allow-private` — HTTPS only and no connection to a loopback, private,
//! link-local (cloud metadata), shared, multicast or otherwise internal address. The address
//! is checked where the connection is made: host names are resolved by [`PublicOnly`], whose
//! answer is what the client connects to, so a name that resolves to a public address when the
//! webhook is added and to 127.0.0.1 later (DNS rebinding) still reaches nothing internal.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

use crate::config::WebhookSettings;

/// Why a webhook may not reach `ip` without `--allow-private`, or None when it may.
pub fn internal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return internal_v4(v4);
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private (unique local) address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if first & 0xffc0 == 0xfec0 {
                Some("a site-local address")
            } else if v6.segments()[..3] == [0x64, 0xff9b, 1] {
                // RFC 8215: for NAT64 inside one network, never routed between networks.
                Some("a local-use NAT64 address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else {
                None
            }
        }
    }
}

/// The IPv4 address an IPv6 address carries to an IPv4 host, which then decides: IPv4-mapped
/// (::ffff:0:0/96), IPv4-compatible (::/96, deprecated but still routed by some stacks), NAT64
/// (64:ff9b::/96), 6to4 (2002::/16, RFC 3056) and Teredo
/// (2001::/32, RFC 4380, the client's address inverted in the last 32 bits).
fn embedded_v4(v6: std::net::Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = v6.to_ipv4_mapped() {
        Some(v4)
    } else if (s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified()) || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(v4(s[6], s[7]))
    } else if s[0] == 0x2002 {
        Some(v4(s[1], s[2]))
    } else if s[..2] == [0x2001, 0] {
        Some(v4(!s[6], !s[7]))
    } else {
        None
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address (cloud metadata services live there)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an address of this network")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("a broadcast, multicast or reserved address")
    } else if (a, b, c) == (192, 0, 0) {
        Some("an IETF protocol assignment address")
    } else if a == 198 && (18..20).contains(&b) {
        Some("a benchmarking address")
    } else {
        None
    }
}

/// Resolves host names to the addresses a webhook may reach, dropping the others; a name with
/// none left is an error that names why.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| match internal(addr.ip()) {
                    Some(why) => {
                        refused = Some(why);
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                let why = refused.unwrap_or("no address");
                return Err(format!("{host} resolves to {why}; webhooks reach only public addresses").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The two clients: one for public endpoints only, one for webhooks allowed to reach private
/// addresses.
#[derive(Clone)]
pub struct Outbound {
    public: reqwest::Client,
    any: reqwest::Client,
}

impl Outbound {
    pub fn new(settings: &WebhookSettings) -> Outbound {
        let builder = || {
            reqwest::Client::builder()
                .timeout(Duration::from_millis(settings.timeout_ms))
                .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent(concat!("Roster-Webhooks/", env!("CARGO_PKG_VERSION")))
        };
        Outbound {
            public: builder()
                .https_only(true)
                .dns_resolver(Arc::new(PublicOnly))
                .build()
                .expect("the HTTP client builds"),
            any: builder().https_only(false).build().expect("the HTTP client builds"),
        }
    }

    /// The client for a webhook, after checking its scheme and an address written in its URL
    /// (which no resolver sees).
    pub fn client(&self, url: &Url, allow_private: bool) -> Result<&reqwest::Client, String> {
        if allow_private {
            return Ok(&self.any);
        }
        check_public(url)?;
        Ok(&self.public)
    }
}

/// Refuses, for a webhook without `--allow-private`, a URL that is not https (plain http to a
/// public endpoint would carry the events, personal data included, readable by any hop) or
/// whose host is an IP address a webhook may not reach.
pub fn check_public(url: &Url) -> Result<(), String> {
    if url.scheme() != "https" {
        return Err(format!("{url} is not https; only a webhook added with --allow-private may use http"));
    }
    // `host_str` writes an IPv6 address in brackets; a name does not parse as an address.
    let Some(ip) = url.host_str().and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok())
    else {
        return Ok(());
    };
    match internal(ip) {
        Some(why) => Err(format!("{ip} is {why}; add the webhook with --allow-private to reach it")),
        None => Ok(()),
    }
}

/// A webhook URL: http or https (http only with `--allow-private`: [`check_public`]), with a
/// host, no user or password in it.
pub fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} must be an http:// or https:// URL"));
    }
    if url.host().is_none() {
        return Err(format!("{text:?} names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a webhook URL may not carry a user name or password; receivers check the signature".into());
    }
    Ok(url)
}

/// Addresses the checks above must refuse, for the tests (IPv4 and IPv6).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_and_public_ones_pass() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "64:ff9b:1::a9fe:a9fe",
            "::127.0.0.1",
            "::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "fec0::1",
            "192.0.0.1",
            "198.18.0.1",
            "198.19.255.254",
        ] {
            assert!(internal(ip.parse().unwrap()).is_some(), "{ip} must be refused");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "2001:0:4136:e378:8000:63bf:a247:2ddd",
            "198.20.0.1",
        ] {
            assert_eq!(internal(ip.parse().unwrap()), None, "{ip} is public");
        }
    }

    #[test]
    fn urls_with_internal_literals_or_credentials_are_refused() {
        assert!(check_public(&parse_url("https://169.254.169.254/latest/meta-data").unwrap()).is_err());
        assert!(check_public(&parse_url("https://[::1]:8080/").unwrap()).is_err());
        assert!(check_public(&parse_url("https://hooks.example.com/x").unwrap()).is_ok());
        assert!(parse_url("ftp://example.com/").is_err());
        assert!(parse_url("https://user:pw@example.com/").is_err());
        assert!(parse_url("not a url").is_err());
    }

    #[test]
    fn plain_http_reaches_only_webhooks_allowed_private_addresses() {
        let refused = check_public(&parse_url("http://hooks.example.com/x").unwrap()).unwrap_err();
        assert!(refused.contains("--allow-private"), "{refused}");
        let outbound = Outbound::new(&WebhookSettings::default());
        assert!(outbound.client(&parse_url("http://hooks.example.com/x").unwrap(), false).is_err());
        assert!(outbound.client(&parse_url("http://127.0.0.1:8080/x").unwrap(), true).is_ok());
    }
}
