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

/// A search that keeps its connection busy: 300 `co` comparisons of a folded JSON attribute for
/// every user, all of it inside the database.
async fn slow_search(app: &TestApp) -> (reqwest::Response, Duration) {
    let filter: Vec<String> = (0..300).map(|i| format!("nickName co \"zz{i}\"")).collect();
    let started = Instant::now();
    let res = app
        .client
        .get(app.url("/scim/v2/Users"))
        .query(&[("filter", filter.join(" or ").as_str()), ("count", "1")])
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("request sent");
    (res, started.elapsed())
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
async fn a_burst_beyond_the_pool_gets_503_within_the_pool_timeout(app: TestApp) {
    // Users for the slow search to go through, row by row.
    let bodies: Vec<Value> = (0..200)
        .map(|i| {
            json!({
                "userName": format!("burst.{i}"),
                "name": {"givenName": "Burst", "familyName": format!("Reader {i}")},
                "title": "Load",
                "emails": [{"value": format!("burst.{i}@example.com"), "type": "work", "primary": true}],
                "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Springfield"}],
            })
        })
        .collect();
    let creates = bodies.iter().map(|body| app.post("/scim/v2/Users", body));
    for res in futures_util::future::join_all(creates).await {
        assert_eq!(res.status(), 201);
    }
    let mut one = Duration::MAX;
    for _ in 0..3 {
        let (res, elapsed) = slow_search(&app).await;
        assert_eq!(res.status(), 200);
        one = one.min(elapsed);
    }
    let timeout = Duration::from_secs(app.settings.pool_timeout_secs);
    let n = ((4 * timeout).as_secs_f64() / one.as_secs_f64().max(0.001)).ceil().clamp(16.0, 400.0) as usize;

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
