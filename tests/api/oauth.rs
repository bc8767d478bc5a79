//! OAuth 2.0 for IdP connections (docs/oauth.md), from the client's and the attacker's side:
//! the token endpoint with client secrets (RFC 6749 §2.3.1, §4.4, §5.2), JWT assertions of
//! private_key_jwt and federated clients (RFC 7523) with real key pairs and a JWKS served on
//! loopback, revocation (RFC 7009) and the metadata (RFC 8414).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use roster::auth::oauth::{self, AssertionTrust, NewClient};
use roster::db::schema::oauth_client_secrets;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, json, Backend, TestApp, TestDatabase};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const ENTRA_AUDIENCE: &str = "api://AzureADTokenExchange";

struct Client {
    id: String,
    secret: String,
}

fn create_client(app: &TestApp, tenant: &str, name: &str, scope: &str) -> Client {
    let mut conn = app.connection();
    let created = oauth::create(
        &mut conn,
        NewClient {
            tenant,
            name,
            scopes: scope.parse().unwrap(),
            secret: Some(Some(Duration::from_secs(365 * 86_400))),
            trust: AssertionTrust::default(),
            redirect_uris: Vec::new(),
        },
        true,
    )
    .expect("client created");
    Client { id: created.client.id, secret: created.secret.expect("a first secret").secret }
}

fn create_tenant(app: &TestApp, name: &str) {
    roster::db::tenants::create(&mut app.connection(), name).expect("tenant created");
}

async fn token_request(app: &TestApp, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> reqwest::Response {
    let mut req = app.client.post(app.url("/oauth/token")).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.expect("request sent")
}

/// An RFC 6749 §5.2 error: its status, `error` code, and no caching.
async fn oauth_error(res: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    assert_eq!(res.headers()["cache-control"], "no-store");
    if status == 401 {
        assert_eq!(res.headers()["www-authenticate"], "Basic realm=\"roster\"");
    }
    let body = json(res).await;
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    body
}

async fn access_token(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = json(res).await;
    assert_eq!(body["token_type"], "Bearer", "{body}");
    body
}

async fn token_by_secret(app: &TestApp, client: &Client) -> String {
    let res = token_request(app, &[("grant_type", "client_credentials")], Some((&client.id, &client.secret))).await;
    access_token(res).await["access_token"].as_str().unwrap().to_owned()
}

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})
}

async fn client_credentials_by_basic_or_post_give_a_bearer_token_for_scim(app: TestApp) {
    let client = create_client(&app, "default", "entra-prod", "scim");
    let basic = token_request(&app, &[("grant_type", "client_credentials")], Some((&client.id, &client.secret))).await;
    let basic = access_token(basic).await;
    assert_eq!(basic["expires_in"], 3600, "1 hour by default");
    assert_eq!(basic["scope"], "scim");
    let post = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
            ("scope", "scim"),
        ],
        None,
    )
    .await;
    let post = access_token(post).await;
    for token in [&basic["access_token"], &post["access_token"]] {
        let token = token.as_str().unwrap();
        let claims = app.claims_of(token);
        assert_eq!(claims.sub, "entra-prod");
        assert!(claims.exp.unwrap() - claims.iat == 3600);
        let created = app
            .client
            .post(app.url("/scim/v2/Users"))
            .bearer_auth(token)
            .json(&user(&format!("u{}", &claims.jti[..8])))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let id = json(created).await["id"].as_str().unwrap().to_owned();
        let audit = app
            .client
            .get(app.url("/api/v1/audit"))
            .bearer_auth(app.issue_token("default", "auditor", "admin"))
            .send()
            .await
            .unwrap();
        let audit = json(audit).await;
        let entry = audit["entries"].as_array().unwrap().iter().find(|e| e["userId"] == id.as_str()).cloned();
        assert_eq!(entry.expect("audited")["actor"], "entra-prod", "audited as the client");
    }
}

async fn a_client_holds_several_live_secrets_and_refuses_revoked_or_expired_ones(app: TestApp) {
    let first = create_client(&app, "default", "okta", "scim");
    let mut conn = app.connection();
    let second = oauth::add_secret(&mut conn, "default", "okta", Some(Duration::from_secs(86_400))).unwrap();
    let second = Client { id: first.id.clone(), secret: second.secret };
    token_by_secret(&app, &first).await;
    token_by_secret(&app, &second).await;
    let secrets = roster::db::oauth::secrets(&mut conn, &first.id).unwrap();
    assert_eq!(secrets.len(), 2);
    for s in &secrets {
        assert!(s.secret_hash.len() == 64 && !s.secret_hash.contains(&first.secret[5..]), "only the hash is kept");
    }
    // Rotation: the old secret is revoked, the new one goes on working.
    assert!(roster::db::oauth::revoke_secret(&mut conn, &first.id, &secrets[0].id, roster::db::now()).unwrap());
    let res = token_request(&app, &[("grant_type", "client_credentials")], Some((&first.id, &first.secret))).await;
    oauth_error(res, 401, "invalid_client").await;
    token_by_secret(&app, &second).await;
    // An expired secret is refused.
    diesel::update(oauth_client_secrets::table.filter(oauth_client_secrets::id.eq(&secrets[1].id)))
        .set(oauth_client_secrets::expires_at.eq(roster::db::now() - chrono::Duration::seconds(1)))
        .execute(&mut *conn)
        .unwrap();
    let res = token_request(&app, &[("grant_type", "client_credentials")], Some((&second.id, &second.secret))).await;
    oauth_error(res, 401, "invalid_client").await;
}

async fn another_clients_or_tenants_secret_is_invalid_client(app: TestApp) {
    create_tenant(&app, "other");
    let ours = create_client(&app, "default", "ours", "scim");
    let same_tenant = create_client(&app, "default", "neighbour", "scim");
    let theirs = create_client(&app, "other", "theirs", "scim");
    for (id, secret) in [
        (&ours.id, &same_tenant.secret),
        (&ours.id, &theirs.secret),
        (&theirs.id, &ours.secret),
        (&"no-such-client".to_owned(), &ours.secret),
        (&ours.id, &format!("{}x", ours.secret)),
        (&ours.id, &String::new()),
    ] {
        let res = token_request(&app, &[("grant_type", "client_credentials")], Some((id, secret))).await;
        let body = oauth_error(res, 401, "invalid_client").await;
        assert_eq!(body["error_description"], "Client authentication failed", "no hint for a guesser");
    }
    // One tenant's token never sees another tenant's users.
    let theirs_token = token_by_secret(&app, &theirs).await;
    let ann = app.create_user(user("ann")).await;
    let res = app.get_with(&format!("/scim/v2/Users/{}", ann["id"].as_str().unwrap()), &theirs_token).await;
    assert_scim_error(res, 404).await;
    let list = json(app.get_with("/scim/v2/Users", &theirs_token).await).await;
    assert_eq!(list["totalResults"], 0);
}

async fn the_token_endpoint_answers_rfc6749_errors(app: TestApp) {
    let client = create_client(&app, "default", "entra", "scim:read,events");
    let basic = Some((client.id.as_str(), client.secret.as_str()));
    oauth_error(token_request(&app, &[], basic).await, 400, "invalid_request").await;
    oauth_error(token_request(&app, &[("grant_type", "password")], basic).await, 400, "unsupported_grant_type").await;
    let twice = [("grant_type", "client_credentials"), ("grant_type", "client_credentials")];
    oauth_error(token_request(&app, &twice, basic).await, 400, "invalid_request").await;
    let wider = [("grant_type", "client_credentials"), ("scope", "scim")];
    oauth_error(token_request(&app, &wider, basic).await, 400, "invalid_scope").await;
    let unknown = [("grant_type", "client_credentials"), ("scope", "root")];
    oauth_error(token_request(&app, &unknown, basic).await, 400, "invalid_scope").await;
    let both = [("grant_type", "client_credentials"), ("client_id", &client.id), ("client_secret", &client.secret)];
    oauth_error(token_request(&app, &both, basic).await, 400, "invalid_request").await;
    oauth_error(token_request(&app, &[("grant_type", "client_credentials")], None).await, 401, "invalid_client").await;
    let as_json = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    oauth_error(as_json, 400, "invalid_request").await;
    // A narrower scope is granted, and the scope checks of SCIM hold it to that.
    let narrow = [("grant_type", "client_credentials"), ("scope", "scim:read")];
    let token = access_token(token_request(&app, &narrow, basic).await).await;
    assert_eq!(token["scope"], "scim:read");
    let token = token["access_token"].as_str().unwrap();
    assert_eq!(app.get_with("/scim/v2/Users", token).await.status(), 200);
    let res = app.client.post(app.url("/scim/v2/Users")).bearer_auth(token).json(&user("bo")).send().await.unwrap();
    assert_scim_error(res, 403).await;
    let res = app.client.get(app.url("/oauth/token")).send().await.unwrap();
    assert_eq!(res.status(), 405);
}

async fn revocation_ends_a_token_and_only_its_client_may_revoke_it(app: TestApp) {
    let ours = create_client(&app, "default", "ours", "scim");
    let other = create_client(&app, "default", "other", "scim");
    let token = token_by_secret(&app, &ours).await;
    let revoke = |client: &Client, token: &str| {
        app.client
            .post(app.url("/oauth/revoke"))
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
    };
    oauth_error(revoke(&other, &token).await.unwrap(), 400, "invalid_request").await;
    assert_eq!(app.get_with("/scim/v2/Users", &token).await.status(), 200, "another client cannot revoke it");
    assert_eq!(revoke(&ours, &token).await.unwrap().status(), 200);
    assert_scim_error(app.get_with("/scim/v2/Users", &token).await, 401).await;
    // RFC 7009 §2.2: an unknown or already revoked token is answered 200 as well.
    assert_eq!(revoke(&ours, &token).await.unwrap().status(), 200);
    assert_eq!(revoke(&ours, "not.a.token").await.unwrap().status(), 200);
    let wrong = Client { id: ours.id.clone(), secret: "wrong".into() };
    oauth_error(revoke(&wrong, &token).await.unwrap(), 401, "invalid_client").await;
}

async fn revoking_a_client_ends_its_tokens_and_secrets(app: TestApp) {
    let client = create_client(&app, "default", "entra", "scim");
    let token = token_by_secret(&app, &client).await;
    assert_eq!(app.get_with("/scim/v2/Users", &token).await.status(), 200);
    assert!(roster::db::oauth::revoke_client(&mut app.connection(), &client.id, roster::db::now()).unwrap());
    assert_scim_error(app.get_with("/scim/v2/Users", &token).await, 401).await;
    let res = token_request(&app, &[("grant_type", "client_credentials")], Some((&client.id, &client.secret))).await;
    oauth_error(res, 401, "invalid_client").await;
    assert_eq!(app.get("/scim/v2/Users").await.status(), 200, "CLI tokens are untouched");
}

async fn failed_authentications_are_rate_limited_and_audited(app: TestApp) {
    let client = create_client(&app, "default", "entra", "scim");
    for i in 0..roster::auth::oauth::limiter::MAX_FAILURES {
        let guess = format!("guess-{i}");
        let res = token_request(&app, &[("grant_type", "client_credentials")], Some((&client.id, &guess))).await;
        oauth_error(res, 401, "invalid_client").await;
    }
    // From here even the right secret is refused without being looked at.
    let res = token_request(&app, &[("grant_type", "client_credentials")], Some((&client.id, &client.secret))).await;
    assert!(res.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    oauth_error(res, 429, "invalid_client").await;
    let revoke = app.client.post(app.url("/oauth/revoke")).form(&[("token", "x")]).send().await.unwrap();
    assert_eq!(revoke.status(), 429);
    let tenant = roster::db::tenants::by_name(&mut app.connection(), "default").unwrap().unwrap();
    let audit = roster::db::oauth::audit_entries(&mut app.connection(), Some(&tenant.id), 100).unwrap();
    let refused: Vec<_> = audit.iter().filter(|e| e.outcome == "refused").collect();
    assert_eq!(refused.len(), roster::auth::oauth::limiter::MAX_FAILURES as usize, "{audit:?}");
    assert!(refused.iter().all(|e| e.client_id == client.id && e.detail == "wrong secret"));
    assert_eq!(refused[0].peer.as_deref(), Some("127.0.0.1"));
}

async fn metadata_and_service_provider_config_tell_the_truth(app: TestApp) {
    let res = app.client.get(app.url("/.well-known/oauth-authorization-server")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let meta = json(res).await;
    assert_eq!(meta["issuer"], app.address.as_str(), "RFC 8414 §3.3: the URL the metadata came from");
    assert_eq!(meta["token_endpoint"], format!("{}/oauth/token", app.address));
    assert_eq!(meta["revocation_endpoint"], format!("{}/oauth/revoke", app.address));
    assert_eq!(meta["grant_types_supported"], json!(["client_credentials", "authorization_code", "refresh_token"]));
    assert_eq!(meta["authorization_endpoint"], format!("{}/oauth/authorize", app.address));
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
    );
    assert_eq!(meta["token_endpoint_auth_signing_alg_values_supported"], json!(["RS256", "ES256"]));
    let config = app.get_ok("/scim/v2/ServiceProviderConfig").await;
    let types: Vec<&str> =
        config["authenticationSchemes"].as_array().unwrap().iter().map(|s| s["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["oauth2", "oauthbearertoken"]);
}

async fn the_access_token_lifetime_is_configured(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |s| s.oauth_token_secs = 6 * 3600).await;
    let client = create_client(&app, "default", "entra", "scim");
    let res = token_request(&app, &[("grant_type", "client_credentials")], Some((&client.id, &client.secret))).await;
    let body = access_token(res).await;
    assert_eq!(body["expires_in"], 21_600);
    let claims = app.claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims.exp.unwrap() - claims.iat, 21_600);
}

both_backends!(
    client_credentials_by_basic_or_post_give_a_bearer_token_for_scim,
    a_client_holds_several_live_secrets_and_refuses_revoked_or_expired_ones,
    another_clients_or_tenants_secret_is_invalid_client,
    the_token_endpoint_answers_rfc6749_errors,
    revocation_ends_a_token_and_only_its_client_may_revoke_it,
    revoking_a_client_ends_its_tokens_and_secrets,
    failed_authentications_are_rate_limited_and_audited,
    metadata_and_service_provider_config_tell_the_truth,
);
both_backends!(by_backend: the_access_token_lifetime_is_configured);

// -- JWT client assertions (RFC 7523 §2.2) -------------------------------------------------------

/// A signing key of the kind an IdP holds, with the public JWK Roster is given.
#[derive(Clone)]
struct Signer {
    alg: Algorithm,
    kid: String,
    key: EncodingKey,
    jwk: Jwk,
}

impl Signer {
    fn rsa(kid: &str) -> Signer {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        // 2048-bit generation is slow in a debug build: one key serves every test.
        static DER: OnceLock<Vec<u8>> = OnceLock::new();
        let der = DER.get_or_init(|| {
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
            key.to_pkcs1_der().unwrap().as_bytes().to_vec()
        });
        Signer::new(Algorithm::RS256, kid, EncodingKey::from_rsa_der(der))
    }

    fn ec(kid: &str) -> Signer {
        use p256::pkcs8::EncodePrivateKey;
        let key = p256::SecretKey::random(&mut rand_core::OsRng);
        Signer::new(Algorithm::ES256, kid, EncodingKey::from_ec_der(key.to_pkcs8_der().unwrap().as_bytes()))
    }

    fn new(alg: Algorithm, kid: &str, key: EncodingKey) -> Signer {
        let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        Signer { alg, kid: kid.into(), key, jwk }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

fn jwks(signers: &[&Signer]) -> String {
    serde_json::to_string(&JwkSet { keys: signers.iter().map(|s| s.jwk.clone()).collect() }).unwrap()
}

/// A JWKS document served on loopback, as an IdP serves its keys; it can rotate, and counts
/// how often it is fetched.
struct JwksServer {
    url: String,
    doc: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(doc: String) -> JwksServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/discovery/v2.0/keys", listener.local_addr().unwrap());
        let doc = Arc::new(Mutex::new(doc));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (doc.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let body = served.lock().unwrap().clone();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        JwksServer { url, doc, fetches }
    }

    fn rotate(&self, doc: String) {
        *self.doc.lock().unwrap() = doc;
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of an assertion valid for five minutes.
fn assertion_claims(iss: &str, sub: &str, aud: &str) -> Value {
    json!({"iss": iss, "sub": sub, "aud": aud, "iat": now(), "exp": now() + 300,
           "jti": uuid::Uuid::new_v4().to_string()})
}

fn create_assertion_client(app: &TestApp, name: &str, trust: AssertionTrust) -> String {
    let created = oauth::create(
        &mut app.connection(),
        NewClient {
            tenant: "default",
            name,
            scopes: "scim".parse().unwrap(),
            secret: None,
            trust,
            redirect_uris: Vec::new(),
        },
        true,
    )
    .expect("client created");
    assert!(created.secret.is_none());
    created.client.id
}

async fn assertion_request(app: &TestApp, client_id: Option<&str>, assertion: &str) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("scope", "scim"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    if let Some(id) = client_id {
        form.push(("client_id", id));
    }
    token_request(app, &form, None).await
}

async fn refused(app: &TestApp, client_id: Option<&str>, assertion: &str, reason: &str) {
    oauth_error(assertion_request(app, client_id, assertion).await, 401, "invalid_client").await;
    let audit = roster::db::oauth::audit_entries(&mut app.connection(), None, 1).unwrap();
    assert!(audit[0].detail.contains(reason), "{:?} should say {reason:?}", audit[0].detail);
}

async fn private_key_jwt_assertions_are_checked_claim_by_claim(app: TestApp) {
    let signer = Signer::rsa("k1");
    let id = create_assertion_client(
        &app,
        "private-key",
        AssertionTrust { jwks: Some(jwks(&[&signer])), ..AssertionTrust::default() },
    );
    let aud = format!("{}/oauth/token", app.address);
    let good = signer.sign(&assertion_claims(&id, &id, &aud));
    let token = access_token(assertion_request(&app, Some(&id), &good).await).await;
    assert_eq!(app.get_with("/scim/v2/Users", token["access_token"].as_str().unwrap()).await.status(), 200);
    // The issuer URL is an audience RFC 7523 §3 allows too; client_id may be left out.
    let by_issuer = signer.sign(&assertion_claims(&id, &id, &app.address));
    access_token(assertion_request(&app, None, &by_issuer).await).await;

    refused(&app, Some(&id), &good, "replay").await;
    let with = |change: Value| {
        let mut claims = assertion_claims(&id, &id, &aud);
        claims.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
        signer.sign(&claims)
    };
    refused(&app, Some(&id), &with(json!({"iss": "someone-else"})), "another issuer").await;
    refused(&app, Some(&id), &with(json!({"sub": "someone-else"})), "another subject").await;
    refused(&app, Some(&id), &with(json!({"aud": "https://elsewhere.example/token"})), "another audience").await;
    refused(&app, Some(&id), &with(json!({"exp": now() - 120})), "expired").await;
    // An assertion expired less than the leeway ago is still accepted once, and never twice.
    let late = with(json!({"exp": now() - 30}));
    access_token(assertion_request(&app, Some(&id), &late).await).await;
    refused(&app, Some(&id), &late, "replay").await;
    refused(&app, Some(&id), &with(json!({"nbf": now() + 600})), "not valid yet").await;
    refused(&app, Some(&id), &with(json!({"exp": now() + 30 * 86_400})), "too long").await;
    let mut no_jti = assertion_claims(&id, &id, &aud);
    no_jti.as_object_mut().unwrap().remove("jti");
    refused(&app, Some(&id), &signer.sign(&no_jti), "no jti").await;
    // Signed by a key the client does not hold.
    let stranger = Signer::ec("k1");
    refused(&app, Some(&id), &stranger.sign(&assertion_claims(&id, &id, &aud)), "").await;
}

async fn alg_none_and_hmac_with_the_public_key_are_refused(app: TestApp) {
    let signer = Signer::rsa("k1");
    let id = create_assertion_client(
        &app,
        "private-key",
        AssertionTrust { jwks: Some(jwks(&[&signer])), ..AssertionTrust::default() },
    );
    let aud = format!("{}/oauth/token", app.address);
    let claims = assertion_claims(&id, &id, &aud);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    for alg in ["none", "None"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"k1"}}"#));
        refused(&app, Some(&id), &format!("{header}.{payload}."), "not a JWT").await;
    }
    // The classic confusion: HS256 keyed with the public key's own bytes.
    let public = serde_json::to_vec(&signer.jwk).unwrap();
    let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &signer.jwk.algorithm else { unreachable!() };
    for secret in [public, rsa.n.as_bytes().to_vec()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        refused(&app, Some(&id), &forged, "only RS256 and ES256").await;
    }
    // ES256 named in the header, but the kid is an RSA key.
    let ec = Signer::ec("k1");
    refused(&app, Some(&id), &ec.sign(&claims), "no key").await;
    // The IPSIE suite's forgery: an assertion nobody can verify is invalid_client.
    refused(&app, None, &format!("{payload}.{payload}.c2ln"), "").await;
}

/// Entra's workload identity federation, as Microsoft documents it: Entra signs a token for
/// the identity (issuer `https://login.microsoftonline.com/{tenant}/v2.0`, the audience the
/// admin configured), the provisioning service sends it as `client_assertion` with the
/// client_id, gets an access token, and provisions with it.
async fn entra_workload_identity_federation_end_to_end(app: TestApp) {
    let entra = Signer::ec("entra-2026");
    let server = JwksServer::start(jwks(&[&entra])).await;
    let issuer = "https://login.microsoftonline.com/8eaef023-2b34-4da1-9baa-8bc8c9d6a490/v2.0";
    let subject = "5c0b3b7e-6c1a-4a3c-9f0e-0d6a4b1f2e11";
    let id = create_assertion_client(
        &app,
        "entra-federated",
        AssertionTrust {
            issuer: Some(issuer.into()),
            subject: Some(subject.into()),
            audience: Some(ENTRA_AUDIENCE.into()),
            jwks_url: Some(server.url.clone()),
            jwks: None,
        },
    );
    let assertion = entra.sign(&assertion_claims(issuer, subject, ENTRA_AUDIENCE));
    let token = access_token(assertion_request(&app, Some(&id), &assertion).await).await;
    let token = token["access_token"].as_str().unwrap();
    let created = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(token)
        .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann@example.com",
                      "externalId": "e-1", "active": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let found = json(app.get_with("/scim/v2/Users?filter=externalId%20eq%20%22e-1%22", token).await).await;
    assert_eq!(found["totalResults"], 1);
    // Another subject of the same Entra tenant is not this client.
    let other = entra.sign(&assertion_claims(issuer, "someone-else", ENTRA_AUDIENCE));
    refused(&app, Some(&id), &other, "another subject").await;
    refused(&app, None, &other, "no client takes").await;
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1, "the JWKS is cached");
}

async fn an_unknown_kid_refetches_the_jwks_at_a_bounded_rate(app: TestApp) {
    let old = Signer::ec("old");
    let new = Signer::ec("new");
    let server = JwksServer::start(jwks(&[&old])).await;
    let issuer = "https://login.microsoftonline.com/tenant-x/v2.0";
    let id = create_assertion_client(
        &app,
        "rotating",
        AssertionTrust {
            issuer: Some(issuer.into()),
            subject: Some("sp".into()),
            audience: Some(ENTRA_AUDIENCE.into()),
            jwks_url: Some(server.url.clone()),
            jwks: None,
        },
    );
    let claims = || assertion_claims(issuer, "sp", ENTRA_AUDIENCE);
    access_token(assertion_request(&app, Some(&id), &old.sign(&claims())).await).await;
    // Not yet published: refused, and a flood of made-up kids costs one fetch at most.
    for _ in 0..5 {
        refused(&app, Some(&id), &new.sign(&claims()), "no key").await;
    }
    assert!(server.fetches.load(Ordering::SeqCst) <= 2, "fetches: {}", server.fetches.load(Ordering::SeqCst));
    // The IdP rotates; once the refresh interval has passed the new key is found.
    server.rotate(jwks(&[&new]));
    tokio::time::sleep(roster::auth::oauth::jwks::MIN_REFRESH + Duration::from_millis(200)).await;
    access_token(assertion_request(&app, Some(&id), &new.sign(&claims())).await).await;
    // The old key is gone from the document, but stays cached while it is fresh: only kids the
    // cache lacks trigger a fetch. Its signatures still check against the published key.
    let before = server.fetches.load(Ordering::SeqCst);
    refused(&app, Some(&id), &Signer::ec("new").sign(&claims()), "signature").await;
    assert_eq!(server.fetches.load(Ordering::SeqCst), before, "a known kid needs no fetch");
}

async fn jwks_urls_must_be_https_unless_loopback_http_is_allowed(app: TestApp) {
    let refused = oauth::create(
        &mut app.connection(),
        NewClient {
            tenant: "default",
            name: "plain",
            scopes: "scim".parse().unwrap(),
            secret: None,
            trust: AssertionTrust { jwks_url: Some("http://127.0.0.1:9/keys".into()), ..AssertionTrust::default() },
            redirect_uris: Vec::new(),
        },
        false,
    );
    assert!(refused.err().unwrap().to_string().contains("oauth_allow_http_loopback"));
}

both_backends!(
    private_key_jwt_assertions_are_checked_claim_by_claim,
    alg_none_and_hmac_with_the_public_key_are_refused,
    entra_workload_identity_federation_end_to_end,
    an_unknown_kid_refetches_the_jwks_at_a_bounded_rate,
    jwks_urls_must_be_https_unless_loopback_http_is_allowed,
);

// -- External authorization servers a tenant trusts ---------------------------------------------

const CORP_ISSUER: &str = "https://as.corp.example";
const CORP_AUDIENCE: &str = "https://scim.example.com";

fn external_claims(sub: &str, scope: &str) -> Value {
    json!({"iss": CORP_ISSUER, "aud": CORP_AUDIENCE, "sub": sub, "scope": scope, "iat": now(),
           "exp": now() + 600, "jti": uuid::Uuid::new_v4().to_string()})
}

async fn trust_corp(app: &TestApp, tenant: &str, scope: &str) -> (Signer, JwksServer) {
    let corp = Signer::rsa("as-1");
    let server = JwksServer::start(jwks(&[&corp])).await;
    oauth::external::add(
        &mut app.connection(),
        oauth::external::NewIssuer {
            tenant,
            name: "corp-as",
            issuer: CORP_ISSUER,
            audience: CORP_AUDIENCE,
            jwks_url: &server.url,
            scopes: scope.parse().unwrap(),
        },
        true,
    )
    .expect("issuer trusted");
    (corp, server)
}

async fn a_trusted_servers_tokens_reach_scim_for_its_tenant_only(app: TestApp) {
    create_tenant(&app, "other");
    let (corp, _server) = trust_corp(&app, "other", "scim").await;
    let token = corp.sign(&external_claims("svc-provisioner", "openid scim"));
    let res = app.client.post(app.url("/scim/v2/Users")).bearer_auth(&token).json(&user("ext")).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let id = json(res).await["id"].as_str().unwrap().to_owned();
    let audit = app
        .client
        .get(app.url("/api/v1/audit"))
        .bearer_auth(app.issue_token("other", "auditor", "admin"))
        .send()
        .await
        .unwrap();
    let audit = json(audit).await;
    let entry = audit["entries"].as_array().unwrap().iter().find(|e| e["userId"] == id.as_str()).cloned();
    assert_eq!(entry.expect("audited")["actor"], "svc-provisioner", "audited with the token's subject");
    // Mapped to its tenant: the default tenant's users are not there.
    let ann = app.create_user(user("ann")).await;
    let res = app.get_with(&format!("/scim/v2/Users/{}", ann["id"].as_str().unwrap()), &token).await;
    assert_scim_error(res, 404).await;
    assert_eq!(app.get_with(&format!("/scim/v2/Users/{id}"), &token).await.status(), 200);
    assert_scim_error(app.get(&format!("/scim/v2/Users/{id}")).await, 404).await;
    // A read scope reads only; scopes beyond the tenant's ceiling are never granted.
    let read = corp.sign(&external_claims("reader", "scim:read"));
    assert_eq!(app.get_with("/scim/v2/Users", &read).await.status(), 200);
    let res = app.client.post(app.url("/scim/v2/Users")).bearer_auth(&read).json(&user("r")).send().await.unwrap();
    assert_scim_error(res, 403).await;
    let admin = corp.sign(&external_claims("root", "admin events"));
    let body = assert_scim_error(app.get_with("/scim/v2/Users", &admin).await, 401).await;
    assert!(body["detail"].as_str().unwrap().contains("none of the scopes"), "{body}");
}

async fn external_tokens_are_refused_when_anything_is_off(app: TestApp) {
    let (corp, _server) = trust_corp(&app, "default", "scim").await;
    let with = |change: Value| {
        let mut claims = external_claims("svc", "scim");
        claims.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
        corp.sign(&claims)
    };
    for (token, detail) in [
        (with(json!({"aud": "https://elsewhere.example"})), "no tenant trusts"),
        (with(json!({"iss": "https://evil.example"})), "no tenant trusts"),
        (with(json!({"exp": now() - 300})), "expired"),
        (with(json!({"nbf": now() + 600})), "not valid yet"),
        (Signer::ec("as-1").sign(&external_claims("svc", "scim")), "cannot be checked"),
        (Signer::ec("unknown").sign(&external_claims("svc", "scim")), "cannot be checked"),
    ] {
        let body = assert_scim_error(app.get_with("/scim/v2/Users", &token).await, 401).await;
        assert!(body["detail"].as_str().unwrap().contains(detail), "{body} should say {detail:?}");
    }
    // HS256 with the public key as the secret is one of Roster's own tokens, and fails as such.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("as-1".into());
    let public = serde_json::to_vec(&corp.jwk).unwrap();
    let forged =
        jsonwebtoken::encode(&header, &external_claims("svc", "scim"), &EncodingKey::from_secret(&public)).unwrap();
    assert_scim_error(app.get_with("/scim/v2/Users", &forged).await, 401).await;
    // Trust removed: its tokens stop working; Roster's own keep working.
    let good = with(json!({}));
    assert_eq!(app.get_with("/scim/v2/Users", &good).await.status(), 200);
    let tenant = roster::db::tenants::by_name(&mut app.connection(), "default").unwrap().unwrap();
    assert!(roster::db::oauth::remove_issuer(&mut app.connection(), &tenant.id, "corp-as").unwrap());
    assert_scim_error(app.get_with("/scim/v2/Users", &good).await, 401).await;
    assert_eq!(app.get("/scim/v2/Users").await.status(), 200);
}

both_backends!(
    a_trusted_servers_tokens_reach_scim_for_its_tenant_only,
    external_tokens_are_refused_when_anything_is_off
);

// -- Okta's authorization-code grant with PKCE (RFC 6749 §4.1, RFC 7636) -------------------------

const OKTA_CALLBACK: &str = "https://system-admin.okta.com/admin/app/cpc/roster_1/oauth/callback";

fn okta_client(app: &TestApp, name: &str) -> Client {
    let created = oauth::create(
        &mut app.connection(),
        NewClient {
            tenant: "default",
            name,
            scopes: "scim".parse().unwrap(),
            secret: Some(Some(Duration::from_secs(86_400))),
            trust: AssertionTrust::default(),
            redirect_uris: vec![OKTA_CALLBACK.into()],
        },
        false,
    )
    .expect("client created");
    Client { id: created.client.id, secret: created.secret.unwrap().secret }
}

/// The admin opens the link `roster client approve` prints; the browser keeps the cookie.
async fn approve_in_browser(app: &TestApp, name: &str) -> String {
    let ticket = oauth::code::approval(&mut app.connection(), "default", name, oauth::code::APPROVAL_LIFETIME).unwrap();
    let res = app.client.get(app.url(&format!("/oauth/approve/{ticket}"))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    set_cookie.split(';').next().unwrap().to_owned()
}

fn pkce() -> (String, String) {
    use sha2::Digest;
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Okta sends the admin's browser to the authorization endpoint; Roster answers with a redirect
/// that the browser would follow.
async fn authorize(app: &TestApp, cookie: Option<&str>, client_id: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", OKTA_CALLBACK),
        ("state", "okta-state-1"),
        ("scope", "scim"),
    ];
    query.retain(|(name, _)| !extra.iter().any(|(other, _)| other == name));
    query.extend_from_slice(extra);
    let mut req = browser.get(app.url("/oauth/authorize")).query(&query);
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    req.send().await.unwrap()
}

/// The code in the redirect to Okta's callback, after checking the state came back.
fn code_of(res: &reqwest::Response) -> String {
    assert_eq!(res.status(), 302);
    let location = reqwest::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(OKTA_CALLBACK), "{location}");
    let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs.get("state").map(String::as_str), Some("okta-state-1"));
    pairs.get("code").cloned().unwrap_or_else(|| panic!("no code in {location}"))
}

async fn exchange(app: &TestApp, client: &Client, code: &str, verifier: &str) -> reqwest::Response {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", OKTA_CALLBACK),
        ("code_verifier", verifier),
    ];
    token_request(app, &form, Some((&client.id, &client.secret))).await
}

async fn refresh(app: &TestApp, client: &Client, refresh_token: &str) -> reqwest::Response {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    token_request(app, &form, Some((&client.id, &client.secret))).await
}

async fn okta_authorization_code_end_to_end(app: TestApp) {
    let okta = okta_client(&app, "okta-prod");
    let (verifier, challenge) = pkce();
    let pkce_params = [("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")];
    // Not approved yet: a page for the admin, no redirect.
    let res = authorize(&app, None, &okta.id, &pkce_params).await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("roster client approve"));
    let cookie = approve_in_browser(&app, "okta-prod").await;
    let code = code_of(&authorize(&app, Some(&cookie), &okta.id, &pkce_params).await);
    // The approval is used up.
    assert_eq!(authorize(&app, Some(&cookie), &okta.id, &pkce_params).await.status(), 403);
    let tokens = access_token(exchange(&app, &okta, &code, &verifier).await).await;
    assert_eq!(tokens["scope"], "scim");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    // A code is exchanged once.
    oauth_error(exchange(&app, &okta, &code, &verifier).await, 400, "invalid_grant").await;
    let res =
        app.client.post(app.url("/scim/v2/Users")).bearer_auth(&access).json(&user("okta-u")).send().await.unwrap();
    assert_eq!(res.status(), 201);
    // Refresh: a new access token and a new refresh token; the old one is used up.
    let renewed = access_token(refresh(&app, &okta, &refresh_token).await).await;
    let renewed_refresh = renewed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(renewed_refresh, refresh_token);
    oauth_error(refresh(&app, &okta, &refresh_token).await, 400, "invalid_grant").await;
    let renewed_access = renewed["access_token"].as_str().unwrap();
    assert_eq!(app.get_with("/scim/v2/Users?filter=userName%20eq%20%22okta-u%22", renewed_access).await.status(), 200);
    // Revoking the connection ends its refresh tokens and access tokens.
    let client = roster::db::oauth::client(&mut app.connection(), &okta.id).unwrap().unwrap();
    assert!(roster::db::oauth::revoke_client(&mut app.connection(), &client.id, roster::db::now()).unwrap());
    oauth_error(refresh(&app, &okta, &renewed_refresh).await, 401, "invalid_client").await;
    assert_scim_error(app.get_with("/scim/v2/Users", renewed_access).await, 401).await;
    let hash = roster::auth::oauth::hash(&renewed_refresh);
    let revoked: Option<chrono::NaiveDateTime> = roster::db::schema::oauth_refresh_tokens::table
        .find(hash)
        .select(roster::db::schema::oauth_refresh_tokens::revoked_at)
        .first(&mut *app.connection())
        .unwrap();
    assert!(revoked.is_some(), "the refresh token itself is revoked");
}

async fn authorization_codes_and_refresh_tokens_resist_misuse(app: TestApp) {
    let okta = okta_client(&app, "okta");
    let thief = okta_client(&app, "thief");
    let (verifier, challenge) = pkce();
    let pkce_params = [("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")];
    // A wrong verifier uses the code up without a token.
    let cookie = approve_in_browser(&app, "okta").await;
    let code = code_of(&authorize(&app, Some(&cookie), &okta.id, &pkce_params).await);
    oauth_error(exchange(&app, &okta, &code, &pkce().0).await, 400, "invalid_grant").await;
    oauth_error(exchange(&app, &okta, &code, &verifier).await, 400, "invalid_grant").await;
    // Another client cannot exchange the code; the approval of one client does not serve another.
    let cookie = approve_in_browser(&app, "okta").await;
    assert_eq!(authorize(&app, Some(&cookie), &thief.id, &pkce_params).await.status(), 403);
    let code = code_of(&authorize(&app, Some(&cookie), &okta.id, &pkce_params).await);
    oauth_error(exchange(&app, &thief, &code, &verifier).await, 400, "invalid_grant").await;
    // A redirect URI that is not registered gets a page, never a redirect.
    let cookie = approve_in_browser(&app, "okta").await;
    let res = authorize(&app, Some(&cookie), &okta.id, &[("redirect_uri", "https://evil.example/cb")]).await;
    assert!(res.headers().get("location").is_none());
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("is not a redirect URI of this client"));
    // PKCE's plain method is refused, at the client's redirect URI.
    let res =
        authorize(&app, Some(&cookie), &okta.id, &[("code_challenge", &challenge), ("code_challenge_method", "plain")])
            .await;
    assert_eq!(res.status(), 302);
    assert!(res.headers()["location"].to_str().unwrap().contains("error=invalid_request"));
    // PKCE is required, and a challenge without its method would mean plain (RFC 7636 §4.3).
    for params in [vec![], vec![("code_challenge", challenge.as_str())]] {
        let res = authorize(&app, Some(&cookie), &okta.id, &params).await;
        assert_eq!(res.status(), 302);
        assert!(res.headers()["location"].to_str().unwrap().contains("error=invalid_request"));
    }
    // RFC 6749 §4.1.3: the exchange names the redirect URI the code was issued for.
    let code = code_of(&authorize(&app, Some(&cookie), &okta.id, &pkce_params).await);
    let form = [("grant_type", "authorization_code"), ("code", &code), ("code_verifier", &verifier)];
    let res = token_request(&app, &form, Some((&okta.id, &okta.secret))).await;
    oauth_error(res, 400, "invalid_grant").await;
    // A refresh token works for its own client only.
    let cookie = approve_in_browser(&app, "okta").await;
    let code = code_of(&authorize(&app, Some(&cookie), &okta.id, &pkce_params).await);
    let tokens = access_token(exchange(&app, &okta, &code, &verifier).await).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    oauth_error(refresh(&app, &thief, refresh_token).await, 400, "invalid_grant").await;
    // RFC 7009 revokes a refresh token too.
    let res = app
        .client
        .post(app.url("/oauth/revoke"))
        .basic_auth(&okta.id, Some(&okta.secret))
        .form(&[("token", refresh_token), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    oauth_error(refresh(&app, &okta, refresh_token).await, 400, "invalid_grant").await;
    // An approval link works once.
    let ticket = oauth::code::approval(&mut app.connection(), "default", "okta", Duration::from_secs(60)).unwrap();
    let cookie = format!("{}={ticket}", oauth::code::APPROVAL_COOKIE);
    code_of(&authorize(&app, Some(&cookie), &okta.id, &pkce_params).await);
    assert_eq!(app.client.get(app.url(&format!("/oauth/approve/{ticket}"))).send().await.unwrap().status(), 404);
    // A revoked client's row cannot be locked to issue a token under it.
    let mut conn = app.connection();
    assert!(roster::db::oauth::lock_live_client(&mut conn, &okta.id).unwrap());
    roster::db::oauth::revoke_client(&mut conn, &okta.id, roster::db::now()).unwrap();
    assert!(!roster::db::oauth::lock_live_client(&mut conn, &okta.id).unwrap());
}

both_backends!(okta_authorization_code_end_to_end, authorization_codes_and_refresh_tokens_resist_misuse);
