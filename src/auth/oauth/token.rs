//! The token endpoint (RFC 6749 §4.4, client credentials) and the revocation endpoint
//! (RFC 7009): client authentication by secret (`client_secret_basic`, `client_secret_post`,
//! RFC 6749 §2.3.1) or by JWT assertion (`private_key_jwt`, RFC 7523 §2.2), and the errors of
//! RFC 6749 §5.2.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::HttpResponse;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::NaiveDateTime;
use serde_json::json;

use super::assertion::{self, JWT_BEARER};
pub use super::error::{requested_scopes, OAuthError};
use crate::auth;
use crate::db::oauth::{self as store, AuditRecord, ClientRecord};
use crate::db::{self, tokens::TokenRecord, DbError};
use crate::state::AppState;

/// The form parameters of a request (`application/x-www-form-urlencoded`). RFC 6749 §3.2:
/// a parameter sent twice is an error, not a choice.
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn parse(body: &[u8]) -> Result<Form, OAuthError> {
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            if params.insert(name.to_string(), value.to_string()).is_some() {
                return Err(OAuthError::invalid_request(format!("the parameter {name:?} is given more than once")));
            }
        }
        Ok(Form(params))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        // RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// How the client says who it is.
pub enum Credentials {
    Secret { client_id: String, secret: String },
    Assertion { client_id: Option<String>, assertion: String },
}

impl Credentials {
    /// The client_id as presented, for the audit log (cut: it is the attacker's text).
    fn presented(&self) -> String {
        let id = match self {
            Credentials::Secret { client_id, .. } => client_id.as_str(),
            Credentials::Assertion { client_id: Some(id), .. } => id.as_str(),
            Credentials::Assertion { assertion, .. } => {
                return assertion::peek(assertion).map(|u| u.sub).unwrap_or_default().chars().take(128).collect()
            }
        };
        id.chars().take(128).collect()
    }
}

/// Reads the client's credentials from the Authorization header (`client_secret_basic`) or the
/// form (`client_secret_post`, `private_key_jwt`). RFC 6749 §2.3: one method per request.
pub fn credentials(authorization: Option<&str>, form: &Form) -> Result<Credentials, OAuthError> {
    let basic = match authorization {
        None => None,
        Some(value) => {
            let (scheme, encoded) = value.trim().split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::invalid_request(
                    "the token endpoint takes HTTP Basic client authentication only",
                ));
            }
            let decoded = STANDARD.decode(encoded.trim()).ok().and_then(|b| String::from_utf8(b).ok());
            let (id, secret) = decoded
                .as_deref()
                .and_then(|d| d.split_once(':'))
                .ok_or_else(|| OAuthError::invalid_request("the Basic credentials are not base64 of id:secret"))?;
            // RFC 6749 §2.3.1: both are form-urlencoded before they are joined.
            let unescape =
                |s: &str| form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
            Some((unescape(id).unwrap_or_default(), unescape(secret).unwrap_or_default()))
        }
    };
    let post = form.get("client_secret");
    let jwt = form.get("client_assertion");
    let methods = basic.is_some() as u8 + post.is_some() as u8 + jwt.is_some() as u8;
    if methods > 1 {
        return Err(OAuthError::invalid_request("use exactly one client authentication method (RFC 6749 §2.3)"));
    }
    if let Some((client_id, secret)) = basic {
        if form.get("client_id").is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_request("client_id differs from the one in the Authorization header"));
        }
        return Ok(Credentials::Secret { client_id, secret });
    }
    if let Some(secret) = post {
        let client_id = form.get("client_id").ok_or_else(|| OAuthError::invalid_request("client_id is missing"))?;
        return Ok(Credentials::Secret { client_id: client_id.to_owned(), secret: secret.to_owned() });
    }
    if let Some(assertion) = jwt {
        if form.get("client_assertion_type") != Some(JWT_BEARER) {
            return Err(OAuthError::invalid_request(format!("client_assertion_type must be {JWT_BEARER}")));
        }
        return Ok(Credentials::Assertion {
            client_id: form.get("client_id").map(str::to_owned),
            assertion: assertion.to_owned(),
        });
    }
    Err(OAuthError::invalid_client())
}

/// Where this server's endpoints are, as the client reached them: assertions must name one of
/// them as audience (RFC 7523 §3).
pub struct Endpoints {
    pub issuer: String,
    pub token: String,
}

/// A refused authentication, with what the audit log records of it.
struct Refusal {
    tenant_id: Option<String>,
    reason: String,
}

fn refuse(client: Option<&ClientRecord>, reason: impl Into<String>) -> Refusal {
    Refusal { tenant_id: client.map(|c| c.tenant_id.clone()), reason: reason.into() }
}

/// Authenticates the client, counting and auditing a failure. The caller has checked that
/// `peer` is not over its failures.
pub async fn authenticate(
    state: &AppState,
    peer: Option<std::net::IpAddr>,
    credentials: &Credentials,
    endpoints: &Endpoints,
) -> Result<ClientRecord, OAuthError> {
    let result = match credentials {
        Credentials::Secret { client_id, secret } => {
            let (client_id, hash) = (client_id.clone(), super::hash(secret));
            state.db.run(move |conn| by_secret(conn, &client_id, &hash, db::now())).await?
        }
        Credentials::Assertion { client_id, assertion } => {
            by_assertion(state, client_id.as_deref(), assertion, endpoints).await?
        }
    };
    match result {
        Ok(client) => Ok(client),
        Err(refusal) => {
            if let Some(peer) = peer {
                state.oauth.failures.failed(peer);
            }
            tracing::warn!(client_id = %credentials.presented(), reason = %refusal.reason, "client authentication refused");
            let entry = audit_entry(refusal.tenant_id, credentials.presented(), "refused", refusal.reason, peer);
            state.db.run(move |conn| store::audit(conn, &entry)).await?;
            Err(OAuthError::invalid_client())
        }
    }
}

fn by_secret(
    conn: &mut db::DbConnection,
    client_id: &str,
    hash: &str,
    now: NaiveDateTime,
) -> Result<Result<ClientRecord, Refusal>, DbError> {
    let Some(client) = store::client(conn, client_id)? else {
        return Ok(Err(refuse(None, "no such client")));
    };
    if client.revoked_at.is_some() {
        return Ok(Err(refuse(Some(&client), "the client is revoked")));
    }
    let Some(secret) = store::secret_by_hash(conn, &client.id, hash)? else {
        return Ok(Err(refuse(Some(&client), "wrong secret")));
    };
    if secret.revoked_at.is_some() {
        return Ok(Err(refuse(Some(&client), format!("secret {} is revoked", secret.id))));
    }
    if secret.expires_at.is_some_and(|at| at <= now) {
        return Ok(Err(refuse(Some(&client), format!("secret {} has expired", secret.id))));
    }
    Ok(Ok(client))
}

async fn by_assertion(
    state: &AppState,
    client_id: Option<&str>,
    assertion: &str,
    endpoints: &Endpoints,
) -> Result<Result<ClientRecord, Refusal>, OAuthError> {
    let unverified = match assertion::peek(assertion) {
        Ok(u) => u,
        Err(reason) => return Ok(Err(refuse(None, reason))),
    };
    let (id, iss, sub) = (client_id.map(str::to_owned), unverified.iss.clone(), unverified.sub.clone());
    let candidates = state
        .db
        .run(move |conn| match id {
            Some(id) => store::client(conn, &id).map(|c| c.into_iter().collect::<Vec<_>>()),
            None => store::client_by_assertion(conn, &iss, &sub),
        })
        .await?;
    let client = match candidates.as_slice() {
        [client] => client.clone(),
        [] => return Ok(Err(refuse(None, "no client takes assertions of this issuer and subject"))),
        _ => return Ok(Err(refuse(None, "several clients take this issuer and subject: send client_id"))),
    };
    if client.revoked_at.is_some() {
        return Ok(Err(refuse(Some(&client), "the client is revoked")));
    }
    let (Some(issuer), Some(subject)) = (&client.assertion_issuer, &client.assertion_subject) else {
        return Ok(Err(refuse(Some(&client), "the client takes no assertions")));
    };
    let key = match (&client.jwks, &client.jwks_url) {
        (Some(doc), _) => super::jwks::KeySet::parse(doc).and_then(|set| {
            set.key(unverified.kid.as_deref(), unverified.alg)
                .ok_or_else(|| "no key in the client's JWKS matches the assertion's kid and alg".to_owned())
        }),
        (None, Some(url)) => state.oauth.jwks.key(url, unverified.kid.as_deref(), unverified.alg).await,
        (None, None) => Err("the client has no keys".to_owned()),
    };
    let key = match key {
        Ok(key) => key,
        Err(reason) => return Ok(Err(refuse(Some(&client), reason))),
    };
    let audiences = match &client.assertion_audience {
        Some(aud) => vec![aud.clone()],
        None => vec![endpoints.token.clone(), endpoints.issuer.clone()],
    };
    let expected = assertion::Expected { issuer, subject, audiences: &audiences };
    let now = db::now();
    let verified = match assertion::verify(assertion, unverified.alg, &key, &expected, now.and_utc().timestamp()) {
        Ok(v) => v,
        Err(reason) => return Ok(Err(refuse(Some(&client), reason))),
    };
    // The jti is kept as long as the assertion is accepted: past exp by the leeway that
    // `assertion::verify` grants, or a replay within the leeway would find it forgotten.
    let accepted_until = verified.exp.saturating_add(assertion::LEEWAY_SECS as i64);
    let Some(expires_at) = chrono::DateTime::from_timestamp(accepted_until, 0).map(|t| t.naive_utc()) else {
        return Ok(Err(refuse(Some(&client), "the client assertion's exp is out of range")));
    };
    let (issuer, jti) = (issuer.clone(), verified.jti.unwrap_or_default());
    let first = state.db.run(move |conn| store::first_use_of_jti(conn, &issuer, &jti, expires_at, now)).await?;
    if !first {
        return Ok(Err(refuse(Some(&client), "the client assertion's jti was used before (replay)")));
    }
    Ok(Ok(client))
}

fn audit_entry(
    tenant_id: Option<String>,
    client_id: String,
    outcome: &str,
    detail: String,
    peer: Option<std::net::IpAddr>,
) -> AuditRecord {
    AuditRecord {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id,
        client_id,
        outcome: outcome.into(),
        detail,
        peer: peer.map(|p| p.to_string()),
        at: db::now(),
    }
}

/// What the client gives for a token: RFC 6749 §4.4.2, §4.1.3 and §6.
pub enum Grant {
    ClientCredentials { scope: Option<String> },
    Code { code: String, redirect_uri: Option<String>, verifier: Option<String> },
    Refresh { token: String, scope: Option<String> },
}

/// Issues an access token of the client's tenant and, for the authorization-code and refresh
/// grants, a refresh token. One transaction uses up the code or refresh token, records the
/// tokens and audits them, with the client's row locked: a client revoked meanwhile gets
/// `invalid_client`, never a live token. A refused grant still uses its code or refresh token
/// up (RFC 6749 §4.1.2: a code is used once).
pub async fn issue(
    state: &AppState,
    client: ClientRecord,
    grant: Grant,
    peer: Option<std::net::IpAddr>,
) -> Result<HttpResponse, OAuthError> {
    let lifetime = state.settings.oauth_token_secs;
    let keys = state.keys.clone();
    let with_refresh = !matches!(grant, Grant::ClientCredentials { .. });
    let issued = state
        .db
        .run(move |conn| {
            db::write_transaction(conn, |conn| {
                let now = db::now();
                if !store::lock_live_client(conn, &client.id)? {
                    let reason = "the client was revoked during the request".to_owned();
                    let entry = audit_entry(Some(client.tenant_id.clone()), client.id.clone(), "refused", reason, peer);
                    store::audit(conn, &entry)?;
                    return Ok(Err(OAuthError::invalid_client()));
                }
                let scopes = match &grant {
                    Grant::ClientCredentials { scope } => requested_scopes(&client.scope, scope.as_deref()),
                    Grant::Code { code, redirect_uri, verifier } => {
                        super::code::exchange(conn, &client, code, redirect_uri.as_deref(), verifier.as_deref(), now)?
                    }
                    Grant::Refresh { token, scope } => {
                        super::code::refresh(conn, &client, token, scope.as_deref(), now)?
                    }
                };
                let scopes = match scopes {
                    Ok(scopes) => scopes,
                    Err(refused) => return Ok(Err(refused)),
                };
                let record = TokenRecord {
                    jti: uuid::Uuid::new_v4().to_string(),
                    tenant_id: client.tenant_id.clone(),
                    name: client.name.clone(),
                    scope: scopes.to_string(),
                    issued_at: now,
                    expires_at: Some(now + chrono::Duration::seconds(lifetime as i64)),
                    revoked_at: None,
                    client_id: Some(client.id.clone()),
                };
                let issued = auth::record_and_sign(conn, &keys, record)?;
                let refresh = with_refresh.then(|| super::random_secret(super::REFRESH_PREFIX));
                if let Some(refresh) = &refresh {
                    store::insert_refresh_token(conn, &super::hash(refresh), &client.id, &issued.claims.scope, now)?;
                }
                let detail = format!("access token {} ({})", issued.claims.jti, issued.claims.scope);
                store::audit(
                    conn,
                    &audit_entry(Some(client.tenant_id.clone()), client.id.clone(), "issued", detail, peer),
                )?;
                Ok::<_, DbError>(Ok((issued, refresh)))
            })
        })
        .await?;
    let (issued, refresh) = issued?;
    let mut body = json!({
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": issued.claims.scope,
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body))
}

/// RFC 7009 §2.1: revokes `token` (an access token or a refresh token) when it was issued to
/// `client`. A token that is not one of Roster's, or has expired, needs no revoking (§2.2: 200
/// all the same).
pub async fn revoke(
    state: &AppState,
    client: ClientRecord,
    token: &str,
    peer: Option<std::net::IpAddr>,
) -> Result<HttpResponse, OAuthError> {
    let ok = || HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).finish();
    let Ok(claims) = state.keys.verify(token) else {
        let (hash, client_id) = (super::hash(token), client.id.clone());
        state.db.run(move |conn| store::take_refresh_token(conn, &hash, &client_id, db::now())).await?;
        return Ok(ok());
    };
    let (jti, tenant) = (claims.jti.clone(), claims.tenant.clone());
    let revoked = state
        .db
        .run(move |conn| {
            db::write_transaction(conn, |conn| {
                let Some(record) = db::tokens::record(conn, &jti, &tenant)? else { return Ok(Some(false)) };
                if record.client_id.as_deref() != Some(client.id.as_str()) {
                    return Ok::<_, DbError>(None);
                }
                db::tokens::revoke(conn, &jti)?;
                let entry = audit_entry(
                    Some(client.tenant_id.clone()),
                    client.id.clone(),
                    "revoked",
                    format!("access token {jti}"),
                    peer,
                );
                store::audit(conn, &entry)?;
                Ok(Some(true))
            })
        })
        .await?;
    match revoked {
        Some(_) => Ok(ok()),
        None => Err(OAuthError::invalid_request("the token was not issued to this client")),
    }
}
