//! The HTTP client under the benchmark: reqwest (pooled connections, the default) or hyper's
//! HTTP/1.1 connection API with one dedicated keep-alive connection per worker.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use clap::ValueEnum;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const SCIM_JSON: &str = "application/scim+json";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClientKind {
    Reqwest,
    Hyper,
}

impl ClientKind {
    pub fn name(self) -> &'static str {
        match self {
            ClientKind::Reqwest => "reqwest",
            ClientKind::Hyper => "hyper",
        }
    }
}

/// An answer, read in full.
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl Response {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `detail` of a SCIM error body, or else the body as text.
    pub fn detail(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
            .unwrap_or_else(|| self.snippet())
    }

    /// The body as text for error reports, cut short.
    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(300) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_owned(),
        }
    }
}

/// Everything needed to open connections to one SCIM base URL; cheap to clone.
#[derive(Clone)]
pub struct Client {
    kind: ClientKind,
    /// `http://host:port` without a trailing slash.
    origin: String,
    /// The base path, e.g. `/scim/v2`, without a trailing slash.
    base_path: String,
    host: HeaderValue,
    addr: SocketAddr,
    auth: HeaderValue,
    /// The Admin Panel's session cookie (`name=value`), sent instead of following redirects.
    cookie: Option<HeaderValue>,
    timeout: Duration,
    pooled: reqwest::Client,
}

/// reqwest's pooled client with the headers every request of a [`Client`] carries. With a
/// cookie it follows no redirect: the panel answers a request without a valid session with one
/// to its sign-in page, which must count as a failure, not as a page.
fn pooled(auth: &HeaderValue, cookie: Option<&HeaderValue>, timeout: Duration) -> Result<reqwest::Client> {
    let mut defaults = reqwest::header::HeaderMap::new();
    defaults.insert(AUTHORIZATION, auth.clone());
    defaults.insert(ACCEPT, HeaderValue::from_static(SCIM_JSON));
    let mut builder = reqwest::Client::builder();
    if let Some(cookie) = cookie {
        defaults.insert(COOKIE, cookie.clone());
        builder = builder.redirect(reqwest::redirect::Policy::none());
    }
    builder
        .default_headers(defaults)
        .tcp_nodelay(true)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(3))
        .build()
        .context("building the HTTP client")
}

impl Client {
    pub async fn new(kind: ClientKind, base_url: &str, token: &str, timeout: Duration) -> Result<Client> {
        let (authority, path) = split_http_url(base_url.trim_end_matches('/')).map_err(|e| anyhow!(e))?;
        let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .with_context(|| format!("resolving {with_port}"))?
            .next()
            .ok_or_else(|| anyhow!("{with_port} resolves to no address"))?;
        let auth =
            HeaderValue::from_str(&format!("Bearer {token}")).context("the token is not a valid header value")?;
        let pooled = pooled(&auth, None, timeout)?;
        Ok(Client {
            kind,
            origin: format!("http://{authority}"),
            base_path: path.to_owned(),
            host: HeaderValue::from_str(authority)?,
            addr,
            auth,
            cookie: None,
            timeout,
            pooled,
        })
    }

    /// The same client sending `cookie` (`name=value`) with every request.
    pub fn with_cookie(&self, cookie: &str) -> Result<Client> {
        let cookie = HeaderValue::from_str(cookie).context("the cookie is not a valid header value")?;
        let pooled = pooled(&self.auth, Some(&cookie), self.timeout)?;
        Ok(Client { cookie: Some(cookie), pooled, ..self.clone() })
    }

    pub fn kind(&self) -> ClientKind {
        self.kind
    }

    /// A handle for one worker. With hyper it owns one connection, opened on first use.
    pub fn conn(&self) -> Conn {
        Conn { client: self.clone(), sender: None }
    }
}

/// Splits a plain `http://` URL into its authority (`host:port`) and the rest (path and query,
/// empty when there is none).
fn split_http_url(url: &str) -> Result<(&str, &str), String> {
    let rest =
        url.strip_prefix("http://").ok_or_else(|| format!("only plain http:// URLs are supported, not {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    Ok((authority, path))
}

/// An absolute URL cut where a [`Client`] wants it: the origin becomes the client's base URL and
/// the path (with any query) the path each request sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    pub origin: String,
    pub path: String,
}

impl std::str::FromStr for HttpUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<HttpUrl, String> {
        let (authority, path) = split_http_url(url)?;
        let path = if path.is_empty() { "/" } else { path };
        Ok(HttpUrl { origin: format!("http://{authority}"), path: path.to_owned() })
    }
}

pub struct Conn {
    client: Client,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub async fn get(&mut self, path: &str) -> Result<Response> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&mut self, path: &str, body: Vec<u8>) -> Result<Response> {
        self.send(Method::POST, path, Some(Bytes::from(body))).await
    }

    /// Sends `method` to the base URL + `path` (which starts with `/` and may carry a query) and
    /// reads the whole answer.
    pub async fn send(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<Response> {
        match self.client.kind {
            ClientKind::Reqwest => self.send_reqwest(method, path, body).await,
            ClientKind::Hyper => {
                let timeout = self.client.timeout;
                match tokio::time::timeout(timeout, self.send_hyper(method, path, body)).await {
                    Ok(result) => result,
                    Err(_) => {
                        self.sender = None;
                        bail!("timed out after {timeout:?}")
                    }
                }
            }
        }
    }

    async fn send_reqwest(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<Response> {
        let url = format!("{}{}{}", self.client.origin, self.client.base_path, path);
        let mut request = self.client.pooled.request(method, url);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, SCIM_JSON).body(body);
        }
        let response = request.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(describe)?;
        Ok(Response { status, body })
    }

    async fn send_hyper(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<Response> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.client.base_path, path))
            .header(HOST, self.client.host.clone())
            .header(AUTHORIZATION, self.client.auth.clone())
            .header(ACCEPT, HeaderValue::from_static(SCIM_JSON));
        if let Some(cookie) = &self.client.cookie {
            request = request.header(COOKIE, cookie.clone());
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
        }
        let request = request.body(Full::new(body.unwrap_or_default())).context("building the request")?;
        let sender = self.ready_sender().await?;
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(e) => {
                self.sender = None;
                return Err(e).context("sending the request");
            }
        };
        let status = response.status().as_u16();
        let body = match response.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                self.sender = None;
                return Err(e).context("reading the answer");
            }
        };
        Ok(Response { status, body })
    }

    /// The worker's connection, reopened when the server closed it (e.g. after its keep-alive
    /// timeout between scenarios).
    async fn ready_sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        if let Some(sender) = self.sender.as_mut() {
            if sender.ready().await.is_err() {
                self.sender = None;
            }
        }
        if self.sender.is_none() {
            let stream = TcpStream::connect(self.client.addr)
                .await
                .with_context(|| format!("connecting to {}", self.client.addr))?;
            stream.set_nodelay(true)?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                // The connection ends when the server closes it or the sender is dropped.
                let _ = connection.await;
            });
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("just set"))
    }
}

/// reqwest's errors print only their outermost layer; keep the cause too.
fn describe(e: reqwest::Error) -> anyhow::Error {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    anyhow!(text)
}

/// Percent-encodes a query parameter value: everything but RFC 3986 unreserved characters, so a
/// space is `%20` (never `+`, which some servers take literally).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 / 2);
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{encode, HttpUrl};

    #[test]
    fn urls_split_into_origin_and_path() {
        let url: HttpUrl = "http://127.0.0.1:8080/readyz?deep=1".parse().unwrap();
        assert_eq!(url, HttpUrl { origin: "http://127.0.0.1:8080".into(), path: "/readyz?deep=1".into() });
        assert_eq!("http://localhost".parse::<HttpUrl>().unwrap().path, "/");
        assert!("https://example.com/readyz".parse::<HttpUrl>().is_err());
        assert!("http:///readyz".parse::<HttpUrl>().is_err());
    }

    #[test]
    fn filters_are_percent_encoded() {
        assert_eq!(encode(r#"userName eq "a.b+c@x.org""#), "userName%20eq%20%22a.b%2Bc%40x.org%22");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
