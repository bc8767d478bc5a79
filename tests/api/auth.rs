//! Every way a bearer token can be wrong is a 401 with a SCIM error body; a missing scope is a
//! 403; one tenant's token never reaches another tenant (docs/storage.md, "Tokens and scopes").

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use roster::auth::{Claims, Keys};

use crate::both_backends;
use crate::helpers::{assert_scim_error, Backend, TestApp, TestDatabase};

const PROTECTED: &str = "/scim/v2/ServiceProviderConfig";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sign(claims: &Claims, alg: Algorithm, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

async fn rejected(app: &TestApp, token: &str, detail_part: &str) {
    let body = assert_scim_error(app.get_with(PROTECTED, token).await, 401).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(detail_part), "{detail:?} should mention {detail_part:?}");
}

async fn a_valid_token_reaches_a_protected_route(app: TestApp) {
    let res = app.get(PROTECTED).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/scim+json");
}

async fn a_missing_or_malformed_authorization_header_is_401(app: TestApp) {
    let res = app.client.get(app.url(PROTECTED)).send().await.unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"roster\"");
    let body = assert_scim_error(res, 401).await;
    assert!(body["detail"].as_str().unwrap().contains("no Authorization header"));
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", &app.token, "Bearer not.a.jwt", "Bearer abc"] {
        let res = app.client.get(app.url(PROTECTED)).header("authorization", header).send().await.unwrap();
        assert_scim_error(res, 401).await;
    }
    // The scheme is case-insensitive (RFC 7235 §2.1).
    let res = app
        .client
        .get(app.url(PROTECTED))
        .header("authorization", format!("bearer {}", app.token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn a_token_signed_with_another_key_is_401(app: TestApp) {
    let claims = app.claims_of(&app.token);
    rejected(&app, &sign(&claims, Algorithm::HS256, b"another-secret-of-thirty-two-bytes!!"), "signature").await;
}

async fn a_tampered_payload_is_401(app: TestApp) {
    let mut parts: Vec<String> = app.token.split('.').map(str::to_owned).collect();
    let mut claims = app.claims_of(&app.token);
    claims.scope = "scim admin".into();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    rejected(&app, &parts.join("."), "signature").await;
}

async fn alg_none_and_other_algorithms_are_401(app: TestApp) {
    let claims = app.claims_of(&app.token);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    for alg in ["none", "None", "NONE"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        rejected(&app, &format!("{header}.{payload}."), "").await;
    }
    // Same secret, stronger HMAC: still not the configured algorithm.
    rejected(
        &app,
        &sign(&claims, Algorithm::HS512, app.settings.token_secret.as_ref().unwrap().as_bytes()),
        "algorithm",
    )
    .await;
    // Algorithm confusion: an RS256 header over an HMAC signature made with the shared secret.
    let hs = sign(&claims, Algorithm::HS256, app.settings.token_secret.as_ref().unwrap().as_bytes());
    let rs_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let forged = format!("{rs_header}.{}", hs.split_once('.').unwrap().1);
    rejected(&app, &forged, "algorithm").await;
}

async fn expired_and_not_yet_valid_tokens_are_401(app: TestApp) {
    let keys = app.keys();
    let mut claims = app.claims_of(&app.token);
    claims.exp = Some(now() - 3600);
    rejected(&app, &keys.sign(&claims), "expired").await;
    claims.exp = None;
    claims.nbf = Some(now() + 3600);
    rejected(&app, &keys.sign(&claims), "not valid yet").await;
    // A token still inside its lifetime works.
    claims.nbf = None;
    claims.exp = Some(now() + 3600);
    assert_eq!(app.get_with(PROTECTED, &keys.sign(&claims)).await.status(), 200);
}

async fn wrong_audience_or_issuer_is_401(app: TestApp) {
    let keys = app.keys();
    let mut claims = app.claims_of(&app.token);
    claims.aud = "someone-else".into();
    rejected(&app, &keys.sign(&claims), "audience").await;
    let mut claims = app.claims_of(&app.token);
    claims.iss = "https://sts.windows.net/x/".into();
    rejected(&app, &keys.sign(&claims), "issuer").await;
}

async fn a_revoked_token_is_401(app: TestApp) {
    let token = app.issue_token("default", "okta-prod", "scim");
    assert_eq!(app.get_with(PROTECTED, &token).await.status(), 200);
    let jti = app.claims_of(&token).jti;
    assert!(roster::db::tokens::revoke(&mut app.connection(), &jti).unwrap());
    rejected(&app, &token, "revoked").await;
    // Revoking twice is harmless.
    assert!(roster::db::tokens::revoke(&mut app.connection(), &jti).unwrap());
}

async fn a_correctly_signed_but_unrecorded_token_is_401(app: TestApp) {
    let mut claims = app.claims_of(&app.token);
    claims.jti = uuid::Uuid::new_v4().to_string();
    rejected(&app, &app.keys().sign(&claims), "not known").await;
}

async fn a_token_naming_an_unknown_or_deleted_tenant_is_401(app: TestApp) {
    let mut claims = app.claims_of(&app.token);
    claims.tenant = uuid::Uuid::new_v4().to_string();
    rejected(&app, &app.keys().sign(&claims), "not known").await;

    roster::db::tenants::create(&mut app.connection(), "acme").unwrap();
    let token = app.issue_token("acme", "entra", "scim");
    assert_eq!(app.get_with(PROTECTED, &token).await.status(), 200);
    assert!(roster::db::tenants::delete(&mut app.connection(), "acme").unwrap());
    rejected(&app, &token, "not known").await;
}

async fn a_token_cannot_be_moved_to_another_tenant(app: TestApp) {
    // Re-pointing a valid token's tenant claim (even with the signing key) fails: its jti is on
    // record for the tenant it was issued to.
    let other = roster::db::tenants::create(&mut app.connection(), "globex").unwrap();
    let mut claims = app.claims_of(&app.token);
    claims.tenant = other.id;
    rejected(&app, &app.keys().sign(&claims), "not known").await;
}

async fn a_token_without_the_needed_scope_is_403(app: TestApp) {
    let token = app.issue_token("default", "events-reader", "events");
    let body = assert_scim_error(app.get_with(PROTECTED, &token).await, 403).await;
    assert!(body["detail"].as_str().unwrap().contains("scim:read"));
    let reader = app.issue_token("default", "auditor", "scim:read");
    assert_eq!(app.get_with(PROTECTED, &reader).await.status(), 200);
}

async fn the_generated_signing_key_is_kept_and_shared(app: TestApp) {
    // Without a configured secret, every opening of the database yields the same key.
    let mut settings = app.settings.clone();
    settings.token_secret = None;
    let (_, first, _) = roster::startup::open_database(&settings).unwrap();
    let (_, second, _) = roster::startup::open_database(&settings).unwrap();
    let claims = app.claims_of(&app.token);
    assert!(second.verify(&first.sign(&claims)).is_ok());
    assert!(Keys::from_secret(b"different-secret-different-secret").verify(&first.sign(&claims)).is_err());
}

/// The stored record is the authority (docs/storage.md, "Tokens and scopes"): a token signed with the real key (as a
/// leaked key would allow) cannot claim more than the token issued under its jti.
async fn claims_beyond_the_token_record_are_401(app: TestApp) {
    let keys = app.keys();
    let reader = app.issue_token("default", "auditor", "scim:read");
    for (scope, sub) in [("scim:read admin", "auditor"), ("scim", "auditor"), ("scim:read", "okta-prod")] {
        let mut claims = app.claims_of(&reader);
        claims.scope = scope.into();
        claims.sub = sub.into();
        rejected(&app, &keys.sign(&claims), "do not match").await;
    }
    // Narrower claims are honoured as they are: `scim` on record, `scim:read` claimed.
    let mut claims = app.claims_of(&app.token);
    claims.scope = "scim:read".into();
    let narrowed = keys.sign(&claims);
    assert_eq!(app.get_with("/scim/v2/Users", &narrowed).await.status(), 200);
    let res = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&narrowed)
        .header("content-type", "application/scim+json")
        .body(r#"{"userName":"narrowed"}"#)
        .send()
        .await
        .unwrap();
    assert_scim_error(res, 403).await;
}

/// A record's expiry holds even when re-signed claims leave `exp` out.
async fn a_token_record_past_its_expiry_is_401_whatever_the_claims_say(app: TestApp) {
    use diesel::prelude::*;
    use roster::db::schema::tokens;
    let token = app.issue_token("default", "okta-prod", "scim");
    let mut claims = app.claims_of(&token);
    let past = chrono::Utc::now().naive_utc() - chrono::Duration::hours(1);
    let mut conn = app.connection();
    diesel::update(tokens::table.find(&claims.jti)).set(tokens::expires_at.eq(Some(past))).execute(&mut *conn).unwrap();
    claims.exp = None;
    rejected(&app, &app.keys().sign(&claims), "expired").await;
}

/// A jti on record for one tenant, re-signed as another tenant's, reaches neither.
async fn a_recorded_jti_signed_for_another_tenant_is_401(app: TestApp) {
    let other = roster::db::tenants::create(&mut app.connection(), "initech").unwrap();
    let theirs = app.issue_token("initech", "entra", "scim admin");
    let mut claims = app.claims_of(&theirs);
    claims.tenant = app.claims_of(&app.token).tenant;
    rejected(&app, &app.keys().sign(&claims), "not known").await;
    assert_ne!(other.id, claims.tenant);
}

/// RFC 9110 §11.6.2: one credential. Two headers (even the same token twice) are refused.
async fn duplicate_authorization_headers_are_401(app: TestApp) {
    let reader = app.issue_token("default", "auditor", "scim:read");
    for second in [&app.token, &reader] {
        let res = app
            .client
            .get(app.url(PROTECTED))
            .header("authorization", format!("Bearer {}", app.token))
            .header("authorization", format!("Bearer {second}"))
            .send()
            .await
            .unwrap();
        let body = assert_scim_error(res, 401).await;
        assert!(body["detail"].as_str().unwrap().contains("more than one Authorization"), "{body}");
    }
}

both_backends!(
    claims_beyond_the_token_record_are_401,
    a_token_record_past_its_expiry_is_401_whatever_the_claims_say,
    a_recorded_jti_signed_for_another_tenant_is_401,
    duplicate_authorization_headers_are_401,
);

both_backends!(
    a_valid_token_reaches_a_protected_route,
    a_missing_or_malformed_authorization_header_is_401,
    a_token_signed_with_another_key_is_401,
    a_tampered_payload_is_401,
    alg_none_and_other_algorithms_are_401,
    expired_and_not_yet_valid_tokens_are_401,
    wrong_audience_or_issuer_is_401,
    a_revoked_token_is_401,
    a_correctly_signed_but_unrecorded_token_is_401,
    a_token_naming_an_unknown_or_deleted_tenant_is_401,
    a_token_cannot_be_moved_to_another_tenant,
    a_token_without_the_needed_scope_is_403,
    the_generated_signing_key_is_kept_and_shared,
);

/// With the token cache on, a token's check is remembered for `token_cache_ms`: a revocation
/// takes effect once that lifetime has passed, not before it ends and not later.
async fn revocation_takes_effect_within_the_token_cache_lifetime(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |s| s.token_cache_ms = 1500).await;
    let token = app.issue_token("default", "okta-prod", "scim");
    assert_eq!(app.get_with(PROTECTED, &token).await.status(), 200);
    let revoked_at = std::time::Instant::now();
    assert!(roster::db::tokens::revoke(&mut app.connection(), &app.claims_of(&token).jti).unwrap());
    let served = app.get_with(PROTECTED, &token).await.status();
    if revoked_at.elapsed() < std::time::Duration::from_millis(1000) {
        assert_eq!(served, 200, "the remembered check answered");
    }
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    rejected(&app, &token, "revoked").await;
    // Forged tokens never reach the cache: a bad signature is refused however often it comes.
    let mut claims = app.claims_of(&app.token);
    claims.sub = "intruder".into();
    let forged = Keys::from_secret(b"another-secret-another-secret-xx").sign(&claims);
    for _ in 0..2 {
        assert_eq!(app.get_with(PROTECTED, &forged).await.status(), 401);
    }
}

/// A remembered token is still held to its expiry, and remembering one token does not let a
/// variant of it in: the cache is keyed by the token's exact text.
async fn a_remembered_token_still_expires_and_its_variants_are_checked_afresh(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else { return };
    let app = TestApp::spawn_with(db, |s| s.token_cache_ms = 60_000).await;
    let keys = app.keys();
    let mut claims = app.claims_of(&app.token);
    // Inside the 5 s leeway for about one more second.
    claims.exp = Some(now() - 4);
    let short = keys.sign(&claims);
    assert_eq!(app.get_with(PROTECTED, &short).await.status(), 200);
    // The same signature over a payload with more scopes.
    let mut parts: Vec<String> = short.split('.').map(str::to_owned).collect();
    claims.scope = "scim admin".into();
    claims.exp = None;
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    rejected(&app, &parts.join("."), "signature").await;
    rejected(&app, &format!("{short}x"), "").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    rejected(&app, &short, "expired").await;
}

/// The token printed on first start stops working after a day unless configured otherwise: a
/// copy left in a terminal or a ticket does not stay a key to the tenant.
async fn the_bootstrap_token_expires_after_a_day_by_default(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else { return };
    let app = roster::startup::Application::build(crate::helpers::test_settings(&db.url)).unwrap();
    let bootstrap = app.bootstrap.as_ref().expect("a new database prints a bootstrap token");
    let (token, address) = (bootstrap.token.clone(), format!("http://127.0.0.1:{}", app.port()));
    tokio::spawn(app.run_until_stopped());
    let claims = Keys::from_secret(crate::helpers::SECRET.as_bytes()).verify(&token).unwrap();
    let exp = claims.exp.expect("the bootstrap token carries an exp");
    assert!((exp - now() - 24 * 3600).abs() <= 60, "exp {exp} is a day from now {}", now());
    let res = reqwest::Client::new().get(format!("{address}{PROTECTED}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200);

    let Some(db) = TestDatabase::create(backend) else { return };
    let mut settings = crate::helpers::test_settings(&db.url);
    settings.bootstrap_token_secs = 600;
    let app = roster::startup::Application::build(settings).unwrap();
    let claims = Keys::from_secret(crate::helpers::SECRET.as_bytes()).verify(&app.bootstrap.unwrap().token).unwrap();
    assert!((claims.exp.unwrap() - now() - 600).abs() <= 60);
}

both_backends!(
    by_backend: the_bootstrap_token_expires_after_a_day_by_default,
    a_remembered_token_still_expires_and_its_variants_are_checked_afresh,
    revocation_takes_effect_within_the_token_cache_lifetime,
);
