//! Webhooks (docs/webhooks.md): events delivered to real receiver processes on loopback
//! (tests/webhook_receiver.py), signed the Standard Webhooks way, at least once and in order per
//! account, through a receiver that fails, resets, answers too slowly or is down, and through
//! Roster itself killed with SIGKILL mid-delivery; outbound requests that refuse internal
//! addresses and redirects; tenants kept apart.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use roster::config::WebhookSettings;
use roster::db::deliveries::DeliveryRow;
use roster::delivery::webhooks::{self, NewWebhook, WebhookError};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{json as json_body, Backend, TestApp, TestDatabase, SECRET};

/// Retries within fractions of a second, so that the faults below pass in seconds.
pub fn fast() -> WebhookSettings {
    WebhookSettings {
        timeout_ms: 700,
        connect_timeout_ms: 300,
        retry_base_ms: 100,
        retry_max_ms: 400,
        max_attempts: 50,
        poll_ms: 50,
        concurrency: 8,
    }
}

/// One receiver process; killed when dropped.
pub struct Receiver {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    config: Value,
}

impl Receiver {
    pub fn start() -> Receiver {
        let log = std::env::temp_dir().join(format!("roster_receiver_{}.jsonl", uuid::Uuid::new_v4().simple()));
        let mut receiver = Receiver { child: None, port: 0, log, config: json!({}) };
        receiver.launch();
        receiver
    }

    fn launch(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhook_receiver.py");
        let mut child = Command::new("python3")
            .args([script, "--port", &self.port.to_string(), "--log", &self.log.to_string_lossy()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).expect("the receiver speaks");
        self.port = line.trim().strip_prefix("listening ").and_then(|p| p.parse().ok()).expect("listening PORT");
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Secrets, mode and delay; kept, so that a restarted receiver gets them again.
    pub async fn configure(&mut self, config: Value) {
        for (k, v) in config.as_object().expect("an object") {
            self.config[k] = v.clone();
        }
        let res = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/_config", self.port))
            .body(self.config.to_string())
            .send()
            .await
            .expect("the receiver takes its configuration");
        assert_eq!(res.status(), 204);
    }

    /// Down: the process stopped, the port closed.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.launch();
        let config = self.config.clone();
        self.configure(config).await;
    }

    /// Every request received, in the order received.
    pub fn records(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        // The receiver may be appending a line as it is read: only whole lines are records yet.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
    }

    /// The requests it answered with success.
    pub fn delivered(&self) -> Vec<Value> {
        self.records().into_iter().filter(|r| r["mode"] == "ok").collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}

pub async fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "waited {secs} s for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn add(
    app: &TestApp,
    tenant: &str,
    url: &str,
    events: &[&str],
    allow_private: bool,
) -> Result<(String, String), WebhookError> {
    let events: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    let added = webhooks::add(
        &mut app.connection(),
        &NewWebhook { tenant, url, event_types: &events, allow_private },
        roster::db::now(),
    )?;
    Ok((added.webhook.id, added.secret))
}

fn log_of(app: &TestApp, tenant: &str, webhook: &str) -> Vec<DeliveryRow> {
    webhooks::delivery_log(&mut app.connection(), tenant, Some(webhook), None, 10_000).expect("the delivery log")
}

/// The tenant's event feed, as `GET /api/v1/events` shows it.
async fn feed(address: &str, token: &str) -> Vec<Value> {
    let res = reqwest::Client::new()
        .get(format!("{address}/api/v1/events?after=0&limit=1000"))
        .bearer_auth(token)
        .send()
        .await
        .expect("feed read");
    json_body(res).await["events"].as_array().expect("events").clone()
}

async fn spawn(backend: Backend, settings: WebhookSettings) -> Option<TestApp> {
    let db = TestDatabase::create(backend)?;
    Some(TestApp::spawn_with(db, |s| s.webhooks = settings).await)
}

/// Accounts and their events: each user created, deactivated, reactivated, deactivated.
async fn churn(address: &str, token: &str, users: usize) {
    try_churn(address, token, users).await.expect("every request answered");
}

/// [`churn`] that stops at the first request without its expected answer (a node killed).
async fn try_churn(address: &str, token: &str, users: usize) -> Result<(), String> {
    let client = reqwest::Client::new();
    let send = |method: reqwest::Method, path: String, body: Value| {
        client
            .request(method, format!("{address}{path}"))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    for i in 0..users {
        let user_name = format!("hook{i}-{}", uuid::Uuid::new_v4().simple());
        let res = send(reqwest::Method::POST, "/scim/v2/Users".into(), json!({"userName": user_name}))
            .await
            .map_err(|e| e.to_string())?;
        if res.status() != 201 {
            return Err(format!("create answered {}", res.status()));
        }
        let id = json_body(res).await["id"].as_str().unwrap().to_owned();
        for active in [false, true, false] {
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": active}]});
            let res =
                send(reqwest::Method::PATCH, format!("/scim/v2/Users/{id}"), body).await.map_err(|e| e.to_string())?;
            if res.status() != 200 {
                return Err(format!("patch answered {}", res.status()));
            }
        }
    }
    Ok(())
}

/// Every record verified, and per account the events (first receipt of each) in feed order.
fn assert_signed_and_in_order(records: &[Value]) {
    let mut seen = BTreeSet::new();
    let mut last_of_account: BTreeMap<String, i64> = BTreeMap::new();
    for r in records {
        assert_eq!(r["valid"], true, "a signature that does not verify: {r}");
        let event = r["body"]["eventId"].as_i64().expect("eventId");
        assert_eq!(r["id"], json!(format!("evt_{}_{event}", tenant_of(r))), "webhook-id names the event: {r}");
        if !seen.insert(event) {
            continue;
        }
        if let Some(account) = r["body"]["userId"].as_str() {
            let last = last_of_account.insert(account.to_owned(), event);
            assert!(last.is_none_or(|l| l < event), "account {account}: event {event} arrived after {last:?}");
        }
    }
}

fn tenant_of(r: &Value) -> String {
    let id = r["id"].as_str().unwrap_or_default();
    id.strip_prefix("evt_").and_then(|rest| rest.rsplit_once('_')).map(|(t, _)| t.to_owned()).unwrap_or_default()
}

fn event_ids(records: &[Value]) -> BTreeSet<i64> {
    records.iter().filter_map(|r| r["body"]["eventId"].as_i64()).collect()
}

async fn events_reach_the_endpoint_signed_and_in_order(backend: Backend) {
    let Some(app) = spawn(backend, fast()).await else { return };
    let mut all = Receiver::start();
    let mut some = Receiver::start();
    let (_, secret) = add(&app, "default", &all.url(), &[], true).unwrap();
    all.configure(json!({"secrets": [secret]})).await;
    let (_, secret) = add(&app, "default", &some.url(), &["user.deactivated"], true).unwrap();
    some.configure(json!({"secrets": [secret]})).await;

    churn(&app.address, &app.token, 6).await;
    let reader = app.issue_token("default", "reader", "events");
    let feed = feed(&app.address, &reader).await;
    assert_eq!(feed.len(), 6 * 4);
    let ids: BTreeSet<i64> = feed.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    wait_for("every event at the first endpoint", 20, || event_ids(&all.delivered()) == ids).await;
    let deactivations: BTreeSet<i64> =
        feed.iter().filter(|e| e["type"] == "user.deactivated").map(|e| e["id"].as_i64().unwrap()).collect();
    wait_for("the deactivations at the second", 20, || event_ids(&some.delivered()) == deactivations).await;

    assert_signed_and_in_order(&all.delivered());
    assert_signed_and_in_order(&some.delivered());
    // The body is the feed's event: type, time, account and payload.
    for record in all.delivered() {
        let body = &record["body"];
        let event = feed.iter().find(|e| e["id"] == body["eventId"]).unwrap();
        assert_eq!(
            (&body["type"], &body["timestamp"], &body["userId"], &body["data"]),
            (&event["type"], &event["createdAt"], &event["userId"], &event["data"])
        );
    }
    assert_eq!(all.records().len(), feed.len(), "a healthy receiver gets each event once");

    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for series in [
        "roster_webhook_deliveries_total{outcome=\"delivered\"}",
        "roster_webhook_request_seconds_count",
        "roster_webhook_delivery_lag_seconds_count",
        "roster_webhook_backlog ",
    ] {
        assert!(metrics.contains(series), "/metrics lacks {series}");
    }
}

async fn faults_are_retried_until_delivered(backend: Backend) {
    let Some(app) = spawn(backend, fast()).await else { return };
    let mut receiver = Receiver::start();
    let (id, secret) = add(&app, "default", &receiver.url(), &[], true).unwrap();
    receiver.configure(json!({"secrets": [secret], "mode": "fail"})).await;
    churn(&app.address, &app.token, 2).await;
    let tried = |receiver: &Receiver, mode: &str| receiver.records().iter().filter(|r| r["mode"] == mode).count();
    wait_for("answers 500", 10, || tried(&receiver, "fail") >= 3).await;
    receiver.configure(json!({"mode": "reset"})).await;
    wait_for("connection resets", 10, || tried(&receiver, "reset") >= 2).await;
    // Past the 700 ms timeout.
    receiver.configure(json!({"mode": "slow", "delay_ms": 1500})).await;
    wait_for("answers too slow", 10, || tried(&receiver, "slow") >= 1).await;
    receiver.stop();
    churn(&app.address, &app.token, 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    receiver.restart().await;
    receiver.configure(json!({"mode": "ok", "delay_ms": 0})).await;

    let reader = app.issue_token("default", "reader", "events");
    let ids: BTreeSet<i64> = feed(&app.address, &reader).await.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 12);
    wait_for("every event delivered after the faults", 30, || event_ids(&receiver.delivered()) == ids).await;
    assert_signed_and_in_order(&receiver.delivered());
    wait_for("the log to say so", 10, || log_of(&app, "default", &id).iter().all(|d| d.status == "delivered")).await;
    let log = log_of(&app, "default", &id);
    assert_eq!(log.len(), 12);
    let first = log.iter().find(|d| d.event_seq == 1).unwrap();
    // Each account's first event is tried while the receiver fails, then resets, then succeeds
    // (the other account's first event shares the tries of each fault).
    assert!(first.attempts >= 3, "the first event was tried through the faults: {first:?}");
    assert_eq!(first.last_status, Some(204));
    assert!(log.iter().all(|d| d.last_duration_ms.is_some() && d.finished_at.is_some()));
}

async fn the_last_failure_is_a_dead_letter_that_replay_sends_again(backend: Backend) {
    let Some(app) = spawn(backend, WebhookSettings { max_attempts: 3, ..fast() }).await else { return };
    let mut receiver = Receiver::start();
    let (id, secret) = add(&app, "default", &receiver.url(), &[], true).unwrap();
    receiver.configure(json!({"secrets": [secret], "mode": "fail"})).await;
    churn(&app.address, &app.token, 1).await;
    wait_for("dead letters", 20, || {
        let log = log_of(&app, "default", &id);
        log.len() == 4 && log.iter().all(|d| d.status == "dead")
    })
    .await;
    let log = log_of(&app, "default", &id);
    assert!(log.iter().all(|d| d.attempts == 3 && d.last_status == Some(500)), "{log:?}");
    assert!(log[0].last_error.as_deref().is_some_and(|e| e.contains("500")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.records().len(), 12, "three tries of each of the four events, no more");

    receiver.configure(json!({"mode": "ok"})).await;
    let queued = webhooks::replay(&mut app.connection(), "default", &id, 2, roster::db::now()).unwrap();
    assert_eq!(queued, 3);
    wait_for("the replay", 10, || event_ids(&receiver.delivered()) == BTreeSet::from([2, 3, 4])).await;
    assert_signed_and_in_order(&receiver.delivered());
    assert_eq!(
        webhooks::replay(&mut app.connection(), "default", &id, 0, roster::db::now()).unwrap_err().to_string(),
        "event ids start at 1"
    );
}

async fn internal_addresses_and_redirects_are_refused(backend: Backend) {
    let Some(app) = spawn(backend, fast()).await else { return };
    let mut receiver = Receiver::start();
    receiver.configure(json!({"mode": "ok"})).await;
    for url in [
        receiver.url(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.8/hook".to_owned(),
        format!("http://[::1]:{}/hook", receiver.port),
    ] {
        let refused = add(&app, "default", &url, &[], false).unwrap_err().to_string();
        assert!(refused.contains("--allow-private"), "{url}: {refused}");
    }
    assert!(add(&app, "default", "file:///etc/passwd", &[], false).is_err());
    // Events carry personal data: a public endpoint is reached over https only.
    let plain = add(&app, "default", "http://hooks.example.com/roster", &[], false).unwrap_err().to_string();
    assert!(plain.contains("not https"), "{plain}");
    assert!(matches!(
        add(&app, "default", "https://x.example/", &["user.nope"], false),
        Err(WebhookError::UnknownEventType(_))
    ));

    // A host name is checked where it is resolved, at each connection: `localhost` is loopback.
    let (by_name, _) = add(&app, "default", &format!("https://localhost:{}/hook", receiver.port), &[], false).unwrap();
    // A receiver that redirects to another: the redirect is not followed.
    let mut target = Receiver::start();
    target.configure(json!({"mode": "ok"})).await;
    let (redirected, _) = add(&app, "default", &format!("http://127.0.0.1:{}/r", receiver.port), &[], true).unwrap();
    let mut redirector = Receiver::start();
    redirector.configure(json!({"mode": "redirect", "redirect_to": target.url()})).await;
    webhooks::remove(&mut app.connection(), "default", &redirected).unwrap();
    let (redirected, _) = add(&app, "default", &redirector.url(), &[], true).unwrap();

    churn(&app.address, &app.token, 1).await;
    wait_for("tries of both", 10, || {
        log_of(&app, "default", &by_name).iter().any(|d| d.attempts >= 2)
            && log_of(&app, "default", &redirected).iter().any(|d| d.attempts >= 2)
    })
    .await;
    // The log is newest first; the account's later events wait behind its first.
    let refused = log_of(&app, "default", &by_name).pop().unwrap();
    assert_eq!(refused.status, "pending");
    assert!(refused.last_error.as_deref().is_some_and(|e| e.contains("loopback")), "{refused:?}");
    assert!(receiver.records().is_empty(), "nothing reached the loopback receiver: {:?}", receiver.records());
    let redirect = log_of(&app, "default", &redirected).pop().unwrap();
    assert_eq!((redirect.status.as_str(), redirect.last_status), ("pending", Some(307)));
    assert!(!redirector.records().is_empty());
    assert!(target.records().is_empty(), "the redirect was followed: {:?}", target.records());
}

async fn rotation_signs_with_both_secrets_until_the_old_expires(backend: Backend) {
    let Some(app) = spawn(backend, fast()).await else { return };
    let mut receiver = Receiver::start();
    let (id, old) = add(&app, "default", &receiver.url(), &[], true).unwrap();
    let new =
        webhooks::rotate_secret(&mut app.connection(), "default", &id, Duration::from_secs(3600), roster::db::now())
            .unwrap();
    assert!(new.starts_with("whsec_") && new != old);
    // A receiver still on the old secret, then one already on the new: both verify.
    receiver.configure(json!({"secrets": [old]})).await;
    churn(&app.address, &app.token, 1).await;
    wait_for("deliveries", 10, || receiver.delivered().len() == 4).await;
    assert!(receiver.delivered().iter().all(|r| r["valid"] == true && r["signatures"] == 2));
    receiver.configure(json!({"secrets": [new]})).await;
    let sent = receiver.delivered().len();
    churn(&app.address, &app.token, 1).await;
    wait_for("more deliveries", 10, || receiver.delivered().len() == sent + 4).await;
    assert!(receiver.delivered().iter().all(|r| r["valid"] == true));

    // Once the old secret expired, only the new one signs.
    let newer =
        webhooks::rotate_secret(&mut app.connection(), "default", &id, Duration::from_secs(1), roster::db::now())
            .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    receiver.configure(json!({"secrets": [new]})).await;
    let sent = receiver.delivered().len();
    churn(&app.address, &app.token, 1).await;
    wait_for("deliveries after expiry", 10, || receiver.delivered().len() == sent + 4).await;
    let latest = &receiver.delivered()[sent..];
    assert!(latest.iter().all(|r| r["valid"] == false && r["signatures"] == 1), "the expired secret no longer signs");
    let stored: String = {
        use diesel::prelude::*;
        use roster::db::schema::webhooks::dsl;
        dsl::webhooks.filter(dsl::id.eq(&id)).select(dsl::secret).first(&mut *app.connection()).unwrap()
    };
    assert!(!stored.contains(newer.trim_start_matches("whsec_")), "the secret is stored sealed");
}

async fn a_purged_event_is_dropped_not_retried_forever(backend: Backend) {
    let Some(app) = spawn(backend, fast()).await else { return };
    let mut receiver = Receiver::start();
    let (id, secret) = add(&app, "default", &receiver.url(), &[], true).unwrap();
    receiver.configure(json!({"secrets": [secret], "mode": "fail"})).await;
    app.create_user(json!({"userName": "purged"})).await;
    wait_for("a failed try", 10, || log_of(&app, "default", &id).iter().any(|d| d.attempts >= 1)).await;
    {
        use diesel::prelude::*;
        use roster::db::schema::events::dsl;
        diesel::delete(dsl::events).execute(&mut *app.connection()).unwrap();
    }
    wait_for("the drop", 10, || log_of(&app, "default", &id)[0].status == "dropped").await;
    let before = receiver.records().len();
    receiver.configure(json!({"mode": "ok"})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.records().len(), before, "nothing is sent for a purged event");
}

async fn tenants_reach_only_their_own_webhooks(backend: Backend) {
    let Some(app) = spawn(backend, fast()).await else { return };
    roster::db::tenants::create(&mut app.connection(), "globex").unwrap();
    let mut receiver = Receiver::start();
    let (id, secret) = add(&app, "default", &receiver.url(), &[], true).unwrap();
    receiver.configure(json!({"secrets": [secret]})).await;
    let mut conn = app.connection();
    let now = roster::db::now();
    let unknown = |e: WebhookError| matches!(e, WebhookError::UnknownWebhook { .. });
    assert!(unknown(webhooks::remove(&mut conn, "globex", &id).unwrap_err()));
    assert!(unknown(webhooks::rotate_secret(&mut conn, "globex", &id, Duration::from_secs(60), now).unwrap_err()));
    assert!(unknown(webhooks::replay(&mut conn, "globex", &id, 1, now).unwrap_err()));
    assert!(unknown(webhooks::delivery_log(&mut conn, "globex", Some(&id), None, 10).unwrap_err()));
    assert!(unknown(webhooks::get(&mut conn, "globex", &id).unwrap_err()));
    assert!(webhooks::list(&mut conn, "globex").unwrap().is_empty());
    drop(conn);

    let globex = app.issue_token("globex", "idp", "scim");
    churn(&app.address, &globex, 2).await;
    churn(&app.address, &app.token, 1).await;
    wait_for("the default tenant's events", 10, || receiver.delivered().len() == 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tenants: BTreeSet<String> = receiver.records().iter().map(tenant_of).collect();
    assert_eq!(receiver.records().len(), 4, "globex's events went nowhere");
    assert_eq!(tenants.len(), 1);
}

/// One `roster serve` process with the `fast` webhook settings; killed (SIGKILL) when dropped.
struct Node {
    child: Child,
    address: String,
}

impl Node {
    fn start(database_url: &str, config: &std::path::Path) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ROSTER_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .env("ROSTER_DATABASE_URL", database_url)
            .env("ROSTER_TOKEN_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .args(["--config", &config.to_string_lossy(), "serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--workers", "2", "--pool-size", "4", "--sweep-interval-secs", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("roster serve starts");
        let stderr = child.stderr.take().expect("piped");
        let (listening, address) = std::sync::mpsc::channel();
        // Drains the log for as long as the node runs, so that a full pipe never stalls it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let entry: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                if entry["message"] == "roster starting" {
                    let _ = listening.send(entry["listen"].as_str().unwrap_or_default().to_owned());
                }
            }
        });
        let listen = address.recv_timeout(Duration::from_secs(30)).expect("roster serve listens");
        Node { child, address: format!("http://{listen}") }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `[webhooks]` settings of `fast`, as a settings file for `roster serve`.
fn fast_config() -> tempfile_path::TempPath {
    let s = fast();
    let path = std::env::temp_dir().join(format!("roster_webhooks_{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &path,
        format!(
            "[webhooks]\ntimeout_ms = {}\nconnect_timeout_ms = {}\nretry_base_ms = {}\nretry_max_ms = {}\n\
             max_attempts = {}\npoll_ms = {}\nconcurrency = {}\n",
            s.timeout_ms,
            s.connect_timeout_ms,
            s.retry_base_ms,
            s.retry_max_ms,
            s.max_attempts,
            s.poll_ms,
            s.concurrency
        ),
    )
    .expect("settings file written");
    tempfile_path::TempPath(path)
}

mod tempfile_path {
    /// A file removed when dropped.
    pub struct TempPath(pub std::path::PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn issue(database_url: &str, tenant: &str) -> String {
    let (db, _) = roster::db::Database::open(database_url, 1, Duration::from_secs(5)).expect("database opens");
    let scopes: roster::auth::Scopes = "scim events".parse().unwrap();
    roster::auth::issue(
        &mut db.conn().unwrap(),
        &roster::auth::Keys::from_secret(SECRET.as_bytes()),
        roster::auth::TokenRequest { tenant, name: "idp", scopes, expires_in: None },
    )
    .expect("token issued")
    .token
}

fn add_by_url(database_url: &str, url: &str) -> String {
    let (db, _) = roster::db::Database::open(database_url, 1, Duration::from_secs(5)).expect("database opens");
    let added = webhooks::add(
        &mut db.conn().unwrap(),
        &NewWebhook { tenant: "default", url, event_types: &[], allow_private: true },
        roster::db::now(),
    )
    .expect("webhook added");
    added.secret
}

/// Runs `roster webhook …` on the database; returns its standard output, or its error output
/// when it fails.
fn webhook_cli(database_url: &str, args: &[&str]) -> Result<String, String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ROSTER_") {
            command.env_remove(name);
        }
    }
    let out = command.env("ROSTER_DATABASE_URL", database_url).arg("webhook").args(args).output().expect("roster runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_owned();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

/// The commands an operator runs, end to end: add prints the secret once, test sends a signed
/// message, rotate-secret and deliveries and remove act on the tenant's own webhook only.
async fn the_webhook_commands_manage_a_tenants_endpoints(backend: Backend) {
    let Some(app) = spawn(backend, fast()).await else { return };
    roster::db::tenants::create(&mut app.connection(), "globex").unwrap();
    let url = &app.settings.database_url;
    let mut receiver = Receiver::start();
    let added = webhook_cli(url, &["add", "--tenant", "default", "--url", &receiver.url(), "--allow-private"]).unwrap();
    let field = |text: &str, name: &str| {
        text.lines().find_map(|l| l.strip_prefix(&format!("{name}\t"))).map(str::to_owned).expect(name)
    };
    let (id, secret) = (field(&added, "id"), field(&added, "secret"));
    assert!(secret.starts_with("whsec_"));
    receiver.configure(json!({"secrets": [secret]})).await;

    let listed = webhook_cli(url, &["list", "--tenant", "default"]).unwrap();
    assert!(listed.contains(&id) && listed.contains(&receiver.url()) && !listed.contains("whsec_"), "{listed}");
    assert!(webhook_cli(url, &["test", "--tenant", "default", &id]).unwrap().starts_with("204 in "));
    let test = receiver.records().pop().expect("the test message");
    assert_eq!((&test["body"]["type"], &test["valid"]), (&json!("webhook.test"), &json!(true)));

    let rotated = webhook_cli(url, &["rotate-secret", "--tenant", "default", &id, "--keep-old", "1h"]).unwrap();
    assert!(field(&rotated, "secret").starts_with("whsec_"));
    assert!(webhook_cli(url, &["list", "--tenant", "default"]).unwrap().contains("\t2\t"), "two live secrets");
    receiver.configure(json!({"mode": "fail"})).await;
    assert!(webhook_cli(url, &["test", "--tenant", "default", &id]).unwrap_err().contains("answered 500"));

    // Another tenant's name finds nothing; a bad status or event type is refused with the choices.
    for args in [
        vec!["remove", "--tenant", "globex", &id],
        vec!["test", "--tenant", "globex", &id],
        vec!["deliveries", "--tenant", "globex", "--webhook", &id],
    ] {
        let refused = webhook_cli(url, &args).unwrap_err();
        assert!(refused.contains("has no webhook"), "{args:?}: {refused}");
    }
    assert!(webhook_cli(url, &["deliveries", "--tenant", "default", "--status", "lost"]).unwrap_err().contains("dead"));
    let refused =
        webhook_cli(url, &["add", "--tenant", "default", "--url", "https://x.example/", "--events", "user.gone"]);
    assert!(refused.unwrap_err().contains("user.deactivated"));
    // The archive sink's alert is an event type like the others (docs/webhooks.md).
    let alert =
        webhook_cli(url, &["add", "--tenant", "default", "--url", "https://x.example/", "--events", "archive.expired"]);
    let alert = field(&alert.unwrap(), "id");
    webhook_cli(url, &["remove", "--tenant", "default", &alert]).unwrap();

    receiver.configure(json!({"mode": "ok"})).await;
    app.create_user(json!({"userName": "cli"})).await;
    wait_for("the delivery", 10, || receiver.delivered().iter().any(|r| r["body"]["type"] == "user.created")).await;
    wait_for("the log", 10, || {
        webhook_cli(url, &["deliveries", "--tenant", "default"])
            .unwrap()
            .lines()
            .any(|l| l.contains("\tdelivered\t1\t"))
    })
    .await;
    webhook_cli(url, &["remove", "--tenant", "default", &id]).unwrap();
    assert!(!webhook_cli(url, &["list", "--tenant", "default"]).unwrap().contains(&id));
}

/// Roster killed with SIGKILL while requests and deliveries are in flight, then started again:
/// every committed event arrives at least once, signed and in order per account, and nothing
/// arrives that did not commit.
async fn sigkill_mid_delivery_loses_nothing(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else { return };
    let config = fast_config();
    let mut node = Node::start(&db.url, &config.0);
    let token = issue(&db.url, "default");
    let mut receiver = Receiver::start();
    let secret = add_by_url(&db.url, &receiver.url());
    // Slow enough that deliveries are in flight when the node dies.
    receiver.configure(json!({"secrets": [secret], "delay_ms": 40})).await;

    let churning = tokio::spawn({
        let (address, token) = (node.address.clone(), token.clone());
        async move { try_churn(&address, &token, 40).await }
    });
    wait_for("deliveries under way", 30, || receiver.records().len() >= 12).await;
    node.kill();
    let _ = churning.await;
    let before_restart = receiver.records().len();

    let node = Node::start(&db.url, &config.0);
    churn(&node.address, &token, 2).await;
    let feed = feed(&node.address, &token).await;
    let committed: BTreeSet<i64> = feed.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(committed.len() >= 12, "the node was killed after some events committed");
    wait_for("every committed event delivered", 60, || event_ids(&receiver.delivered()).is_superset(&committed)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = receiver.delivered();
    assert_eq!(event_ids(&delivered), committed, "only committed events were delivered");
    assert_signed_and_in_order(&delivered);
    eprintln!(
        "{backend:?}: {} events committed, {} requests received ({before_restart} before the restart)",
        committed.len(),
        receiver.records().len()
    );
}

/// Two nodes on one PostgreSQL, both taking writes and both delivering: each event is
/// delivered once between them.
#[tokio::test]
async fn two_nodes_on_one_postgres_deliver_each_event_once() {
    let Some(db) = TestDatabase::create(Backend::Postgres) else { return };
    let config = fast_config();
    let first = Node::start(&db.url, &config.0);
    let second = Node::start(&db.url, &config.0);
    let token = issue(&db.url, "default");
    let mut receiver = Receiver::start();
    let secret = add_by_url(&db.url, &receiver.url());
    receiver.configure(json!({"secrets": [secret], "delay_ms": 5})).await;
    let (a, b) = tokio::join!(try_churn(&first.address, &token, 15), try_churn(&second.address, &token, 15));
    a.unwrap();
    b.unwrap();
    let feed = feed(&first.address, &token).await;
    assert_eq!(feed.len(), 30 * 4);
    let committed: BTreeSet<i64> = feed.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    wait_for("every event delivered", 60, || event_ids(&receiver.delivered()) == committed).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let delivered = receiver.delivered();
    assert_eq!(delivered.len(), committed.len(), "each event once between the two nodes");
    assert_signed_and_in_order(&delivered);
}

/// Two nodes whose first use of a server key (the webhook seal key, an archive export's key)
/// falls inside their own transactions: the second waits for the first, takes its key, and its
/// transaction goes on (a failed insert would abort it on PostgreSQL: a DELETE answering 500).
async fn a_key_first_made_in_two_transactions_at_once_is_one_key(backend: Backend) {
    use roster::db::{settings, write_transaction, DbError};
    let Some(app) = spawn(backend, fast()).await else { return };
    let (made, wait) = std::sync::mpsc::channel();
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| {
            write_transaction(&mut app.connection(), |conn| {
                let key = settings::generated_key(conn, "race_key")?;
                made.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(500));
                Ok::<_, DbError>(key)
            })
        });
        wait.recv().unwrap();
        let second = s.spawn(|| {
            write_transaction(&mut app.connection(), |conn| {
                let key = settings::generated_key(conn, "race_key")?;
                // A later statement of the same transaction still runs.
                settings::get(conn, "race_key")?;
                Ok::<_, DbError>(key)
            })
        });
        (first.join().unwrap(), second.join().unwrap())
    });
    assert_eq!(first.unwrap(), second.unwrap());
}

both_backends!(by_backend:
    a_key_first_made_in_two_transactions_at_once_is_one_key,
    the_webhook_commands_manage_a_tenants_endpoints,
    sigkill_mid_delivery_loses_nothing,
    events_reach_the_endpoint_signed_and_in_order,
    faults_are_retried_until_delivered,
    the_last_failure_is_a_dead_letter_that_replay_sends_again,
    internal_addresses_and_redirects_are_refused,
    rotation_signs_with_both_secrets_until_the_old_expires,
    a_purged_event_is_dropped_not_retried_forever,
    tenants_reach_only_their_own_webhooks,
);
