//! JWKS documents (RFC 7517 §5): the public keys JWT assertions and external access tokens are
//! checked with. Fetched over https only (plain http only to a loopback address, and only when
//! `oauth_allow_http_loopback` is set), with timeouts and a size bound, cached by URL and `kid`,
//! and fetched again when a token names a `kid` the cache lacks, at most once per
//! [`MIN_REFRESH`] per URL, so made-up `kid`s cannot turn Roster into a request flood.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};

/// The shortest time between two fetches of one URL.
pub const MIN_REFRESH: Duration = Duration::from_secs(2);
/// A fetched document is used this long before it is fetched again.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// JWKS documents are a few kilobytes; anything far larger is not one.
const MAX_BYTES: usize = 256 * 1024;

/// The usable keys of one JWKS document: RSA and P-256 keys, by `kid`. Symmetric (`oct`) keys
/// are never taken, so a public key can never serve as an HMAC secret.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

impl KeySet {
    pub fn parse(doc: &str) -> Result<KeySet, String> {
        let set: JwkSet = serde_json::from_str(doc).map_err(|e| format!("not a JWKS document (RFC 7517 §5): {e}"))?;
        let keys: Vec<Jwk> = set
            .keys
            .into_iter()
            .filter(|k| match &k.algorithm {
                AlgorithmParameters::RSA(_) => true,
                AlgorithmParameters::EllipticCurve(ec) => ec.curve == EllipticCurve::P256,
                _ => false,
            })
            .collect();
        if keys.is_empty() {
            return Err("the JWKS document has no RSA or P-256 key".into());
        }
        Ok(KeySet { keys })
    }

    /// The key `kid` names, checked to suit `alg`: RS256 wants an RSA key, ES256 a P-256 key,
    /// and a key that names its own `alg` must name this one. Without a `kid`, the only key.
    pub fn key(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let jwk = match kid {
            Some(kid) => self.keys.iter().find(|k| k.common.key_id.as_deref() == Some(kid))?,
            None if self.keys.len() == 1 => &self.keys[0],
            None => return None,
        };
        let suits = matches!(
            (&jwk.algorithm, alg),
            (AlgorithmParameters::RSA(_), Algorithm::RS256) | (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
        );
        let named = jwk.common.key_algorithm.map(|a| a.to_string());
        if !suits || named.is_some_and(|n| n != format!("{alg:?}")) {
            return None;
        }
        DecodingKey::from_jwk(jwk).ok()
    }

    fn has(&self, kid: Option<&str>) -> bool {
        match kid {
            Some(kid) => self.keys.iter().any(|k| k.common.key_id.as_deref() == Some(kid)),
            None => self.keys.len() == 1,
        }
    }
}

/// A JWKS URL Roster will fetch: https, or http to a loopback address when allowed.
pub fn check_url(url: &str, allow_http_loopback: bool) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or("");
    let loopback =
        host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(parsed),
        "http" if allow_http_loopback && loopback => Ok(parsed),
        "http" if loopback => Err(format!(
            "{url:?} is plain http: allowed only with oauth_allow_http_loopback (local testing); use https"
        )),
        _ => Err(format!("a JWKS URL must be https://; got {url:?}")),
    }
}

struct Cached {
    keys: Option<KeySet>,
    fetched: Instant,
    attempted: Instant,
}

pub struct JwksCache {
    client: reqwest::Client,
    allow_http_loopback: bool,
    entries: Mutex<HashMap<String, Cached>>,
}

impl JwksCache {
    pub fn new(allow_http_loopback: bool) -> JwksCache {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            // A redirect could lead off https or to an internal address.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with rustls builds");
        JwksCache { client, allow_http_loopback, entries: Mutex::default() }
    }

    /// The key for `kid` from the document at `url`: from the cache when it has the `kid`,
    /// otherwise from a fresh fetch if the last one is at least [`MIN_REFRESH`] old.
    pub async fn key(&self, url: &str, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, String> {
        let fetch = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            match entries.get_mut(url) {
                Some(c) if c.keys.as_ref().is_some_and(|k| k.has(kid)) && c.fetched.elapsed() < MAX_AGE => false,
                Some(c) if c.attempted.elapsed() < MIN_REFRESH => false,
                Some(c) => {
                    c.attempted = Instant::now();
                    true
                }
                None => {
                    let now = Instant::now();
                    entries.insert(url.to_owned(), Cached { keys: None, fetched: now, attempted: now });
                    true
                }
            }
        };
        if fetch {
            match self.fetch(url).await {
                Ok(keys) => {
                    let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                    let now = Instant::now();
                    entries.insert(url.to_owned(), Cached { keys: Some(keys), fetched: now, attempted: now });
                }
                Err(e) => tracing::warn!(jwks_url = url, error = %e, "JWKS fetch failed"),
            }
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let keys = entries.get(url).and_then(|c| c.keys.as_ref()).ok_or("the JWKS document could not be fetched")?;
        keys.key(kid, alg).ok_or_else(|| "no key in the JWKS document matches the token's kid and alg".to_owned())
    }

    async fn fetch(&self, url: &str) -> Result<KeySet, String> {
        let url = check_url(url, self.allow_http_loopback)?;
        let mut res = self.client.get(url).send().await.map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("status {}", res.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                return Err(format!("larger than {MAX_BYTES} bytes"));
            }
        }
        KeySet::parse(&String::from_utf8_lossy(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_urls_are_https_unless_loopback_http_is_allowed() {
        assert!(check_url("https://login.microsoftonline.com/t/discovery/v2.0/keys", false).is_ok());
        assert!(check_url("http://127.0.0.1:9000/jwks", false).unwrap_err().contains("oauth_allow_http_loopback"));
        assert!(check_url("http://127.0.0.1:9000/jwks", true).is_ok());
        assert!(check_url("http://[::1]:9000/jwks", true).is_ok());
        assert!(check_url("http://keys.example.com/jwks", true).is_err());
        assert!(check_url("http://10.0.0.1/jwks", true).is_err());
        assert!(check_url("file:///etc/passwd", true).is_err());
        assert!(check_url("jwks", true).is_err());
    }

    #[test]
    fn symmetric_keys_are_never_taken() {
        let doc = r#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#;
        assert!(KeySet::parse(doc).unwrap_err().contains("no RSA or P-256 key"));
    }
}
