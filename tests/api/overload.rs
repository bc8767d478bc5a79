//! Overload, end to end: an exhausted database pool answers 503 with a SCIM error and
//! Retry-After within the pool timeout instead of hanging, and a tenant beyond its in-flight
//! bound gets 429 while other tenants are served. Afterwards the server serves again.
//!
//! The tests occupy the app's own pool through the public API only:
//! * PostgreSQL: the test locks the users table from its own connection (`LOCK TABLE users IN
//!   EXCLUSIVE MODE`, which still lets reads through) and sends a PATCH. Its handler checks out a
//!   pooled connection and waits on the lock while holding it, like a handler stuck behind a slow
//!   transaction in production; releasing the lock lets it finish.
//! * SQLite: no lock makes a pooled connection wait there. Writes go to the writer thread, which
//!   has a connection of its own, and WAL readers never wait for a lock. So the test sends a
//!   burst of reads at a pool of one, sized from a measured read so that the burst needs the
//!   connection about four times as long as the pool timeout, on a fast machine and a slow one
//!   alike; the requests at the back of the queue must give up with 503.
//! * The in-flight bound: a write held back by the test's lock (the PostgreSQL PATCH above; on
//!   SQLite a PATCH waiting for the writer thread, which waits for the test's `BEGIN IMMEDIATE`)
//!   is the tenant's one request in flight.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use serde_json::{json, Value};

use crate::helpers::{assert_scim_error, json, Backend, TestApp, TestDatabase};

/// The longest any request may take to be answered while the pool is exhausted: well over the
/// one-second pool timeout the tests set, well under "hanging".
const PATIENCE: Duration = Duration::from_secs(8);

/// A write lock on the users table, held from outside the app until released.
struct UsersLock {
    conn: diesel::r2d2::PooledConnection<roster::db::Manager>,
}

impl UsersLock {
    fn take(app: &TestApp, backend: Backend) -> UsersLock {
        let mut conn = app.connection();
        let sql = match backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN; LOCK TABLE users IN EXCLUSIVE MODE",
        };
        conn.batch_execute(sql).expect("the users table is locked");
        UsersLock { conn }
    }

    fn release(mut self) {
        self.conn.batch_execute("COMMIT").expect("the lock is released");
    }
}

/// Sends a PATCH of `id` in the background; it waits for the test's lock.
fn patch_in_background(app: &TestApp, id: &str, nick_name: &str) -> tokio::task::JoinHandle<(u16, Value)> {
    let request = app
        .client
        .patch(app.url(&format!("/scim/v2/Users/{id}")))
        .bearer_auth(&app.token)
        .header("content-type", "application/scim+json")
        .body(
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "nickName", "value": nick_name}]
            })
            .to_string(),
        );
    tokio::spawn(async move {
        let res = request.send().await.expect("PATCH sent");
        let status = res.status().as_u16();
        (status, json(res).await)
    })
}

async fn finished(patch: tokio::task::JoinHandle<(u16, Value)>) -> (u16, Value) {
    tokio::time::timeout(Duration::from_secs(15), patch).await.expect("the PATCH finished").expect("PATCH task")
}

/// The pool's connections in use, from `/metrics`.
async fn connections_in_use(app: &TestApp) -> u32 {
    let text = app.client.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix("roster_db_pool_connections{state=\"in_use\"} "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the pool gauge is exported")
}

/// Waits until the PATCH holds a pooled connection while it waits on the lock.
async fn wait_for_connections_in_use(app: &TestApp, in_use: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while connections_in_use(app).await < in_use {
        assert!(Instant::now() < deadline, "the PATCH never took a connection");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get_users(app: &TestApp, token: &str, count: u32) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let res = app.get_with(&format!("/scim/v2/Users?count={count}"), token).await;
    (res, started.elapsed())
}

/// The most expensive filter the cost bound allows: every comparison it may hold, as many of
/// them substring comparisons as it may, each on a folded JSON attribute that no index serves.
fn costliest_filter() -> String {
    use roster::scim::filter::{MAX_COMPARISONS, MAX_SUBSTRING_COMPARISONS};
    let substring = (0..MAX_SUBSTRING_COMPARISONS).map(|i| format!("nickName co \"zz{i}\""));
    let rest = (MAX_SUBSTRING_COMPARISONS..MAX_COMPARISONS).map(|i| format!("nickName eq \"zz{i}\""));
    substring.chain(rest).collect::<Vec<_>>().join(" or ")
}

/// A search that keeps its connection busy: [`costliest_filter`] for every user, all of it
/// inside the database.
async fn slow_search_with(app: &TestApp, token: &str) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let res = app
        .client
        .get(app.url("/scim/v2/Users"))
        .query(&[("filter", costliest_filter().as_str()), ("count", "1")])
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent");
    (res, started.elapsed())
}

async fn slow_search(app: &TestApp) -> (reqwest::Response, Duration) {
    slow_search_with(app, &app.token).await
}

fn retry_after(res: &reqwest::Response) -> Option<String> {
    res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// A 503 as RFC 7644 §3.12 and the brief ask: SCIM error body, Retry-After in seconds.
async fn assert_unavailable(res: reqwest::Response) {
    let retry = retry_after(&res);
    assert!(retry.as_deref().is_some_and(|s| s.parse::<u32>().is_ok()), "Retry-After: {retry:?}");
    assert_scim_error(res, 503).await;
}

async fn spawn(backend: Backend, adjust: impl FnOnce(&mut roster::config::Settings)) -> Option<TestApp> {
    let db = TestDatabase::create(backend)?;
    Some(TestApp::spawn_with(db, adjust).await)
}

fn one_connection(s: &mut roster::config::Settings) {
    s.pool_size = 1;
    s.pool_timeout_secs = 1;
}

/// `n` GETs sent at once; their answers with how long each took.
async fn burst(app: &TestApp, n: usize, count: u32) -> Vec<(u16, Duration, reqwest::Response)> {
    let requests = (0..n).map(|_| async {
        let (res, elapsed) = get_users(app, &app.token, count).await;
        (res.status().as_u16(), elapsed, res)
    });
    futures_util::future::join_all(requests).await
}

// ---------------------------------------------------------------------------

/// PostgreSQL: a PATCH stuck behind a lock holds the only connection; a request answers 503 after
/// waiting the pool timeout for it, and everything is served once the lock goes.
async fn an_exhausted_pool_answers_503_within_the_pool_timeout(app: TestApp) {
    let user = app.create_user(json!({"userName": "held.up"})).await;
    let id = user["id"].as_str().expect("id").to_owned();

    let lock = UsersLock::take(&app, Backend::Postgres);
    let patch = patch_in_background(&app, &id, "after the wait");
    wait_for_connections_in_use(&app, 1).await;

    let (res, elapsed) = get_users(&app, &app.token, 1).await;
    assert_eq!(res.status(), 503, "{}", res.text().await.unwrap_or_default());
    assert!(elapsed >= Duration::from_millis(500), "it waited for the pool first ({elapsed:?})");
    assert!(elapsed < PATIENCE, "it did not hang ({elapsed:?})");
    assert_unavailable(res).await;

    lock.release();
    let (status, body) = finished(patch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.get_ok(&format!("/scim/v2/Users/{id}")).await["nickName"], "after the wait");
    assert_eq!(get_users(&app, &app.token, 1).await.0.status(), 200);
}

/// PostgreSQL: many requests at once at an exhausted pool each get their 503 within the pool
/// timeout (and some slack), not one pool timeout after another.
async fn a_burst_at_a_held_pool_is_refused_within_the_pool_timeout(app: TestApp) {
    let user = app.create_user(json!({"userName": "held.down"})).await;
    let id = user["id"].as_str().expect("id").to_owned();
    let lock = UsersLock::take(&app, Backend::Postgres);
    let patch = patch_in_background(&app, &id, "after the burst");
    wait_for_connections_in_use(&app, 1).await;

    let answers = burst(&app, 40, 1).await;
    let slowest = answers.iter().map(|(_, elapsed, _)| *elapsed).max().unwrap_or_default();
    for (status, elapsed, res) in answers {
        assert_eq!(status, 503, "the pool is held: nothing can be served");
        assert!(elapsed < PATIENCE, "a 503 took {elapsed:?}");
        assert_unavailable(res).await;
    }
    assert!(slowest < PATIENCE, "slowest answer {slowest:?}");

    lock.release();
    let (status, body) = finished(patch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get_users(&app, &app.token, 1).await.0.status(), 200);
}

/// SQLite: a burst that needs the one connection about four times the pool timeout; the
/// requests at the back give up with 503 within the pool timeout, the rest are served, and the
/// server serves normally afterwards.
/// `n` users for slow searches to go through, row by row.
async fn create_users(app: &TestApp, prefix: &str, n: usize) {
    let bodies: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "userName": format!("{prefix}.{i}"),
                "name": {"givenName": "Burst", "familyName": format!("Reader {i}")},
                "title": "Load",
                // Long, so that each comparison of the costliest filter has work to do.
                "nickName": format!("{}{i}", "n".repeat(1000)),
                "emails": [{"value": format!("{prefix}.{i}@example.com"), "type": "work", "primary": true}],
                "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Springfield"}],
            })
        })
        .collect();
    for chunk in bodies.chunks(20) {
        for status in futures_util::future::join_all(chunk.iter().map(|body| create_waiting(app, body))).await {
            assert_eq!(status, 201);
        }
    }
}

/// Creates a user, waiting out the tenant's rate limit where it is on.
async fn create_waiting(app: &TestApp, body: &Value) -> reqwest::StatusCode {
    loop {
        let res = app.post("/scim/v2/Users", body).await;
        if res.status() != 429 {
            return res.status();
        }
        let wait = retry_after(&res).and_then(|s| s.parse().ok()).unwrap_or(1);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

async fn a_burst_beyond_the_pool_gets_503_within_the_pool_timeout(app: TestApp) {
    create_users(&app, "burst", 600).await;
    let mut one = Duration::MAX;
    for _ in 0..3 {
        let (res, elapsed) = slow_search(&app).await;
        assert_eq!(res.status(), 200);
        one = one.min(elapsed);
    }
    let timeout = Duration::from_secs(app.settings.pool_timeout_secs);
    let n = ((4 * timeout).as_secs_f64() / one.as_secs_f64().max(0.001)).ceil().clamp(16.0, 1000.0) as usize;

    let searches = (0..n).map(|_| async {
        let (res, elapsed) = slow_search(&app).await;
        (res.status().as_u16(), elapsed, res)
    });
    let answers = futures_util::future::join_all(searches).await;
    let mut refused = 0;
    for (status, elapsed, res) in answers {
        assert!(elapsed < PATIENCE, "an answer took {elapsed:?} (a burst of {n}, one read takes {one:?})");
        match status {
            200 => {}
            503 => {
                refused += 1;
                assert_unavailable(res).await;
            }
            other => panic!("unexpected {other}: {}", res.text().await.unwrap_or_default()),
        }
    }
    assert!(refused > 0, "a burst of {n} reads of {one:?} each at one connection got no 503");
    assert_eq!(get_users(&app, &app.token, 1).await.0.status(), 200);
}

/// With one request in flight allowed per tenant: while a PATCH waits on the test's lock, the
/// tenant's next request gets 429 with Retry-After, another tenant is served, and the place
/// comes back once the PATCH is done.
async fn a_tenant_beyond_its_in_flight_bound_gets_429_and_others_are_served(app: TestApp, backend: Backend) {
    roster::db::tenants::create(&mut app.connection(), "other").expect("tenant created");
    let other = app.issue_token("other", "other-idp", "scim");
    let user = app.create_user(json!({"userName": "in.flight"})).await;
    let id = user["id"].as_str().expect("id").to_owned();
    assert_eq!(get_users(&app, &other, 1).await.0.status(), 200);

    let lock = UsersLock::take(&app, backend);
    let mut patch = patch_in_background(&app, &id, "served later");
    let mut refused = None;
    for _ in 0..100 {
        // Give the PATCH time to take the tenant's one place; it keeps it while it waits.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if patch.is_finished() {
            // It can only end early by finding the place taken by one of the GETs below.
            let (status, body) = patch.await.expect("PATCH task");
            assert_eq!(status, 429, "{body}");
            patch = patch_in_background(&app, &id, "served later");
            continue;
        }
        let (res, _) = get_users(&app, &app.token, 1).await;
        if res.status() == 429 {
            refused = Some(res);
            break;
        }
        assert_eq!(res.status(), 200);
    }
    assert!(!patch.is_finished(), "the PATCH still holds the place");
    let res = refused.expect("a second request of the tenant answered 429");
    assert_eq!(retry_after(&res).as_deref(), Some("1"));
    assert_scim_error(res, 429).await;

    let (res, elapsed) = get_users(&app, &other, 1).await;
    assert_eq!(res.status(), 200, "the other tenant is served");
    assert!(elapsed < PATIENCE, "{elapsed:?}");

    lock.release();
    let (status, body) = finished(patch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get_users(&app, &app.token, 1).await.0.status(), 200, "the place came back");
}

// ---------------------------------------------------------------------------

mod pool_exhaustion {
    use super::*;

    #[tokio::test]
    async fn postgres() {
        if let Some(app) = spawn(Backend::Postgres, one_connection).await {
            an_exhausted_pool_answers_503_within_the_pool_timeout(app).await;
        }
    }
}

mod pool_burst {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        // The burst is meant for the pool, not for the tenant's in-flight bound.
        let adjust = |s: &mut roster::config::Settings| {
            one_connection(s);
            s.max_in_flight_per_tenant = 1000;
        };
        let app = spawn(Backend::Sqlite, adjust).await.expect("sqlite");
        a_burst_beyond_the_pool_gets_503_within_the_pool_timeout(app).await;
    }

    #[tokio::test]
    async fn postgres() {
        if let Some(app) = spawn(Backend::Postgres, one_connection).await {
            a_burst_at_a_held_pool_is_refused_within_the_pool_timeout(app).await;
        }
    }
}

mod in_flight_bound {
    use super::*;

    fn one_in_flight(s: &mut roster::config::Settings) {
        s.pool_size = 2;
        s.max_in_flight_per_tenant = 1;
    }

    #[tokio::test]
    async fn sqlite() {
        let app = spawn(Backend::Sqlite, one_in_flight).await.expect("sqlite");
        a_tenant_beyond_its_in_flight_bound_gets_429_and_others_are_served(app, Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres() {
        if let Some(app) = spawn(Backend::Postgres, one_in_flight).await {
            a_tenant_beyond_its_in_flight_bound_gets_429_and_others_are_served(app, Backend::Postgres).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Fair sharing: what one tenant's (or one client's) worst traffic may take from the others.

/// A raw HTTP/1.1 request whose body stops after its first bytes, as a slow or hostile upload
/// does; the body is never finished while the returned stream is kept.
fn stalled_upload(app: &TestApp, path: &str, token: &str) -> std::net::TcpStream {
    use std::io::Write;
    let host = app.address.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).expect("connected");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: 1000\r\n\r\n{{\"userName\": "
    )
    .expect("request head sent");
    stream
}

/// The status line's code and the body of the answer to a [`stalled_upload`], waiting at most
/// `patience` for it.
async fn answer_to(stream: std::net::TcpStream, patience: Duration) -> (u16, String, Duration) {
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let started = Instant::now();
        let mut stream = stream;
        stream.set_read_timeout(Some(patience)).expect("read timeout set");
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        // Until the server closes the connection, or the answer is complete.
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok());
                if length.is_some_and(|len| body.len() >= len) {
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body, started.elapsed())
    })
    .await
    .expect("read task")
}

/// A body that does not arrive within `body_read_timeout_secs` gets 408 with a SCIM error,
/// and the server serves on.
async fn a_body_that_never_finishes_gets_408(app: TestApp) {
    let upload = stalled_upload(&app, "/scim/v2/Users", &app.token);
    let (status, body, elapsed) = answer_to(upload, PATIENCE).await;
    assert_eq!(status, 408, "answer after {elapsed:?}: {body}");
    let body: Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    assert_eq!(body["status"], "408");
    assert!(body["detail"].as_str().unwrap_or("").contains("1 s"), "{body}");
    app.create_user(json!({"userName": "after.the.stall"})).await;
}

/// Requests of a token that lacks the scope a route needs take none of its tenant's places:
/// stalled uploads with an `events` token do not make the tenant's `scim` token get 429, and
/// neither does a flood of the `events` token's refused requests.
async fn a_token_without_the_scope_takes_none_of_its_tenants_places(app: TestApp) {
    let events = app.issue_token("default", "events-reader", "events");
    let bound = app.settings.max_in_flight_per_tenant;
    let stalled: Vec<_> = (0..2 * bound).map(|_| stalled_upload(&app, "/scim/v2/Users", &events)).collect();
    // Each stalled request has been authenticated and waits for the rest of its body.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..3 * app.settings.rate_burst_per_tenant {
        let res = app.get_with("/scim/v2/Users?count=1", &events).await;
        assert_eq!(res.status(), 403, "the events token may not read users");
    }
    for i in 0..bound {
        let (res, _) = get_users(&app, &app.token, 1).await;
        assert_eq!(res.status(), 200, "request {i} of the scim token: {}", res.text().await.unwrap_or_default());
    }
    app.create_user(json!({"userName": "not.locked.out"})).await;
    drop(stalled);
}

/// Beyond its burst and sustained rate, a tenant gets 429 with Retry-After while another tenant
/// is served; beyond the per-client rate, so does any request from that address.
async fn requests_beyond_the_rate_limits_get_429_with_retry_after(app: TestApp) {
    roster::db::tenants::create(&mut app.connection(), "other").expect("tenant created");
    let other = app.issue_token("other", "other-idp", "scim");
    let burst = app.settings.rate_burst_per_tenant as usize;
    let mut refused = None;
    for _ in 0..4 * burst {
        let (res, _) = get_users(&app, &app.token, 1).await;
        match res.status().as_u16() {
            200 => {}
            429 => {
                refused = Some(res);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let res = refused.expect("the tenant beyond its rate got 429");
    let retry = retry_after(&res).and_then(|s| s.parse::<u64>().ok());
    assert!(retry.is_some_and(|s| s >= 1), "Retry-After in whole seconds: {retry:?}");
    assert!(assert_scim_error(res, 429).await["detail"].as_str().unwrap_or("").contains("tenant"));
    assert_eq!(get_users(&app, &other, 1).await.0.status(), 200, "the other tenant has its own bucket");
}

async fn a_client_beyond_its_rate_gets_429(app: TestApp) {
    let burst = app.settings.rate_burst_per_client as usize;
    let answers: Vec<u16> = futures_util::future::join_all(
        (0..4 * burst)
            .map(|_| async { app.client.get(app.url("/healthz")).send().await.expect("sent").status().as_u16() }),
    )
    .await;
    assert!(answers.iter().all(|s| *s == 200 || *s == 429), "{answers:?}");
    assert!(answers.contains(&429), "a burst of {} from one address was not limited: {answers:?}", 4 * burst);
}

/// A filter beyond the cost bound answers 400 invalidFilter naming the limit.
async fn a_filter_beyond_the_cost_bound_is_refused(app: TestApp) {
    let filter = (0..=roster::scim::filter::MAX_SUBSTRING_COMPARISONS)
        .map(|i| format!("nickName co \"zz{i}\""))
        .collect::<Vec<_>>()
        .join(" or ");
    let res = app.client.get(app.url("/scim/v2/Users")).query(&[("filter", filter.as_str())]).bearer_auth(&app.token);
    let body = assert_scim_error(res.send().await.expect("sent"), 400).await;
    assert_eq!(body["scimType"], "invalidFilter");
    let limit = roster::scim::filter::MAX_SUBSTRING_COMPARISONS.to_string();
    assert!(body["detail"].as_str().unwrap_or("").contains(&format!("at most {limit}")), "{body}");
    let res = slow_search(&app).await.0;
    assert_eq!(res.status(), 200, "the costliest filter within the bound is served");
}

/// A hostile tenant runs flat out for a while — four times as many of the costliest legal
/// filters at once as the pool has connections; stalled uploads; a flood of cheap requests — while a
/// well-behaved tenant makes its IdP's usual requests one after another, within its rate: every
/// one of those succeeds. The hostile tenant is held to its share of the pool, its rate (429 where its
/// flood reaches it) and the body deadline.
async fn a_hostile_tenant_flat_out_leaves_a_well_behaved_tenant_served(app: TestApp) {
    create_users(&app, "hostile", 600).await;
    let hostile = app.issue_token("default", "hostile", "scim:read");
    roster::db::tenants::create(&mut app.connection(), "good").expect("tenant created");
    let good = app.issue_token("good", "good-idp", "scim");
    let as_good = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = app.client.request(method, app.url(&path)).bearer_auth(&good);
        if let Some(body) = body {
            request = request.header("content-type", "application/scim+json").body(body.to_string());
        }
        async move { request.send().await.expect("request sent") }
    };
    let created = as_good(reqwest::Method::POST, "/scim/v2/Users".into(), Some(json!({"userName": "good.one"}))).await;
    assert_eq!(created.status(), 201);
    let id = json(created).await["id"].as_str().expect("id").to_owned();

    let until = Instant::now() + Duration::from_secs(6);
    let stop = || Instant::now() >= until;
    let searches = (0..4 * app.settings.pool_size).map(|_| async {
        let mut answers = Vec::new();
        while !stop() {
            answers.push(slow_search_with(&app, &hostile).await.0.status().as_u16());
        }
        answers
    });
    let flood = (0..8).map(|_| async {
        let mut answers = Vec::new();
        while !stop() {
            answers.push(app.get_with("/scim/v2/Users?count=1", &hostile).await.status().as_u16());
        }
        answers
    });
    let uploads = (0..32).map(|_| async {
        let mut answers = Vec::new();
        while !stop() {
            answers.push(answer_to(stalled_upload(&app, "/scim/v2/Users", &app.token), PATIENCE).await.0);
        }
        answers
    });
    let well_behaved = async {
        // Let the hostile traffic get going first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut answers = Vec::new();
        let mut i = 0;
        while !stop() {
            i += 1;
            let lookup = format!("/scim/v2/Users?filter=userName%20eq%20%22good.one%22&i={i}");
            answers.push(("lookup", as_good(reqwest::Method::GET, lookup, None).await.status().as_u16()));
            let read = as_good(reqwest::Method::GET, format!("/scim/v2/Users/{id}"), None).await;
            answers.push(("read", read.status().as_u16()));
            let patch = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": format!("Title {i}")}]
            });
            let patched = as_good(reqwest::Method::PATCH, format!("/scim/v2/Users/{id}"), Some(patch)).await;
            answers.push(("patch", patched.status().as_u16()));
            let body = json!({"userName": format!("good.{i}")});
            let created = as_good(reqwest::Method::POST, "/scim/v2/Users".into(), Some(body)).await;
            answers.push(("create", created.status().as_u16()));
            // Within its rate, as a well-behaved IdP is: at most 40 requests/s.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        answers
    };
    let (searches, flood, uploads, good_answers) = tokio::join!(
        futures_util::future::join_all(searches),
        futures_util::future::join_all(flood),
        futures_util::future::join_all(uploads),
        well_behaved,
    );
    let failed: Vec<_> = good_answers.iter().filter(|(_, s)| !(200..300).contains(s)).collect();
    assert!(good_answers.len() >= 8, "the well-behaved tenant was barely served: {good_answers:?}");
    assert!(
        failed.is_empty(),
        "{} of {} requests of the well-behaved tenant failed: {failed:?}",
        failed.len(),
        good_answers.len()
    );
    let (searches, flood): (Vec<u16>, Vec<u16>) =
        (searches.into_iter().flatten().collect(), flood.into_iter().flatten().collect());
    let served = |answers: &[u16]| answers.iter().filter(|s| **s == 200).count();
    assert!(!searches.is_empty() && !flood.is_empty(), "the hostile tenant ran");
    // Served, or held back: by its rate (429), its share of the pool or the time limit (503).
    let expected = |s: &u16| matches!(s, 200 | 429 | 503);
    assert!(searches.iter().chain(&flood).all(expected), "the hostile tenant's answers: {searches:?} {flood:?}");
    assert!(searches.iter().chain(&flood).any(|s| *s != 200), "the hostile tenant was never held back");
    let uploads: Vec<u16> = uploads.into_iter().flatten().collect();
    assert!(!uploads.is_empty() && uploads.iter().all(|s| *s == 408), "stalled uploads end in 408: {uploads:?}");
    eprintln!(
        "hostile: {} searches ({} served), {} cheap requests ({} served, {} got 429), {} stalled uploads; \
         well-behaved: {} requests, all served",
        searches.len(),
        served(&searches),
        flood.len(),
        served(&flood),
        flood.iter().filter(|s| **s == 429).count(),
        uploads.len(),
        good_answers.len()
    );
}

/// A request whose database work runs past `statement_timeout_ms` is stopped and answered 503
/// with Retry-After, and the server serves on. PostgreSQL: a write waiting on a lock the test
/// holds; SQLite: the costliest legal filter over enough users to outlast the limit.
async fn work_past_the_statement_time_limit_is_stopped_with_503(app: TestApp, backend: Backend) {
    let timeouts = "roster_db_statement_timeouts_total";
    let before = crate::metrics::value(&crate::metrics::scrape(&app).await, timeouts);
    match backend {
        Backend::Postgres => {
            let user = app.create_user(json!({"userName": "limited"})).await;
            let id = user["id"].as_str().expect("id").to_owned();
            let lock = UsersLock::take(&app, backend);
            let started = Instant::now();
            let (status, body) = finished(patch_in_background(&app, &id, "never")).await;
            assert_eq!(status, 503, "{body}");
            assert!(started.elapsed() < PATIENCE, "stopped at the limit, not at the lock's release");
            assert!(body["detail"].as_str().unwrap_or("").contains("time limit"), "{body}");
            lock.release();
        }
        Backend::Sqlite => {
            create_users(&app, "limited", 600).await;
            let (res, elapsed) = slow_search(&app).await;
            let status = res.status();
            let retry = retry_after(&res);
            let body = json(res).await;
            assert_eq!(
                status, 503,
                "a search of {elapsed:?} under a limit of {} ms: {body}",
                app.settings.statement_timeout_ms
            );
            assert!(retry.is_some(), "Retry-After");
            assert!(body["detail"].as_str().unwrap_or("").contains("time limit"), "{body}");
        }
    }
    // Operators see it: the counter of statements stopped at the limit moved (the recorder is
    // shared by the tests of this process, so it may have moved by more than one).
    let after = crate::metrics::value(&crate::metrics::scrape(&app).await, timeouts);
    assert!(after > before, "{timeouts}: {before} before, {after} after");
    app.create_user(json!({"userName": "served.on"})).await;
}

mod body_deadline {
    use super::*;

    fn one_second(s: &mut roster::config::Settings) {
        s.body_read_timeout_secs = 1;
    }

    #[tokio::test]
    async fn sqlite() {
        a_body_that_never_finishes_gets_408(spawn(Backend::Sqlite, one_second).await.expect("sqlite")).await;
    }

    #[tokio::test]
    async fn postgres() {
        if let Some(app) = spawn(Backend::Postgres, one_second).await {
            a_body_that_never_finishes_gets_408(app).await;
        }
    }
}

mod scope_before_slot {
    use super::*;

    fn few_places(s: &mut roster::config::Settings) {
        s.max_in_flight_per_tenant = 4;
        s.rate_limit_per_tenant = 1;
        s.rate_burst_per_tenant = 10;
        s.body_read_timeout_secs = 30;
    }

    #[tokio::test]
    async fn sqlite() {
        a_token_without_the_scope_takes_none_of_its_tenants_places(
            spawn(Backend::Sqlite, few_places).await.expect("sqlite"),
        )
        .await;
    }

    #[tokio::test]
    async fn postgres() {
        if let Some(app) = spawn(Backend::Postgres, few_places).await {
            a_token_without_the_scope_takes_none_of_its_tenants_places(app).await;
        }
    }
}

mod rate_limits {
    use super::*;

    fn tenant_limit(s: &mut roster::config::Settings) {
        s.rate_limit_per_tenant = 2;
        s.rate_burst_per_tenant = 5;
    }

    fn client_limit(s: &mut roster::config::Settings) {
        s.rate_limit_per_client = 2;
        s.rate_burst_per_client = 5;
    }

    #[tokio::test]
    async fn sqlite() {
        requests_beyond_the_rate_limits_get_429_with_retry_after(
            spawn(Backend::Sqlite, tenant_limit).await.expect("sqlite"),
        )
        .await;
        a_client_beyond_its_rate_gets_429(spawn(Backend::Sqlite, client_limit).await.expect("sqlite")).await;
    }

    #[tokio::test]
    async fn postgres() {
        if let Some(app) = spawn(Backend::Postgres, tenant_limit).await {
            requests_beyond_the_rate_limits_get_429_with_retry_after(app).await;
        }
        if let Some(app) = spawn(Backend::Postgres, client_limit).await {
            a_client_beyond_its_rate_gets_429(app).await;
        }
    }
}

mod filter_cost {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        a_filter_beyond_the_cost_bound_is_refused(spawn(Backend::Sqlite, |_| {}).await.expect("sqlite")).await;
    }

    #[tokio::test]
    async fn postgres() {
        if let Some(app) = spawn(Backend::Postgres, |_| {}).await {
            a_filter_beyond_the_cost_bound_is_refused(app).await;
        }
    }
}

mod hostile_tenant {
    use super::*;

    /// The defaults, but a rate low enough for the test's flood to reach, and a short body
    /// deadline and pool timeout so that the test is short and a starved request shows.
    fn fair(s: &mut roster::config::Settings) {
        s.pool_size = 4;
        s.pool_timeout_secs = 1;
        s.rate_limit_per_tenant = 100;
        s.rate_burst_per_tenant = 100;
        s.body_read_timeout_secs = 2;
        s.statement_timeout_ms = 2_000;
    }

    #[tokio::test]
    async fn sqlite() {
        a_hostile_tenant_flat_out_leaves_a_well_behaved_tenant_served(
            spawn(Backend::Sqlite, fair).await.expect("sqlite"),
        )
        .await;
    }

    #[tokio::test]
    async fn postgres() {
        if let Some(app) = spawn(Backend::Postgres, fair).await {
            a_hostile_tenant_flat_out_leaves_a_well_behaved_tenant_served(app).await;
        }
    }
}

mod statement_limit {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        let app = spawn(Backend::Sqlite, |s| s.statement_timeout_ms = 1).await.expect("sqlite");
        work_past_the_statement_time_limit_is_stopped_with_503(app, Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres() {
        if let Some(app) = spawn(Backend::Postgres, |s| s.statement_timeout_ms = 1_000).await {
            work_past_the_statement_time_limit_is_stopped_with_503(app, Backend::Postgres).await;
        }
    }
}
