//! Several nodes on one PostgreSQL (docs/storage.md, "Several nodes on one PostgreSQL"): three real `roster serve` processes share a
//! fresh database, start at once, and take an Entra-style sync, lifecycle transitions and their
//! own background sweeps, spread across them. Cursors, token revocation and session revocation
//! must hold across nodes, every sweep effect and every event must be written once, and the
//! final state must be what one node alone makes of the same script.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{json as json_body, Backend, TestApp, TestDatabase};

/// How long a node remembers a token check: the documented bound on revocation propagation.
const TOKEN_CACHE_MS: u64 = 300;
/// Requests the script keeps in flight at once, spread over the nodes.
const CONCURRENCY: usize = 12;
const SYNC_USERS: usize = 160;
const RETENTION_USERS: usize = 24;
const GROUPS: usize = 4;
const ROSTER_USER: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";

/// One `roster serve` process; killed when dropped, also when a test panics.
struct Node {
    address: String,
    child: Child,
    /// The node's warnings and errors, shown when the test fails.
    complaints: Arc<Mutex<Vec<String>>>,
    /// How many of its background sweeps changed something.
    sweeps_applied: Arc<AtomicUsize>,
}

impl Node {
    /// Starts `roster serve` on a free loopback port (the node picks it and logs it) with a
    /// one-second sweep and a short token cache. No token secret: the nodes share the key the
    /// first of them stores in the database.
    fn start(database_url: &str) -> Node {
        let mut child = roster_command(database_url)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--workers", "2", "--pool-size", "4"])
            .args(["--sweep-interval-secs", "1", "--token-cache-ms", &TOKEN_CACHE_MS.to_string()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("roster serve starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let complaints = Arc::new(Mutex::new(Vec::new()));
        let (listening, address) = mpsc::channel();
        let sweeps_applied = Arc::new(AtomicUsize::new(0));
        let (kept, swept) = (complaints.clone(), sweeps_applied.clone());
        // Drains the log for as long as the node runs, so a full pipe never stalls it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let entry: Value = serde_json::from_str(&line).unwrap_or_else(|_| json!({"message": line}));
                if entry["message"] == "roster starting" {
                    let _ = listening.send(entry["listen"].as_str().unwrap_or_default().to_owned());
                }
                if entry["message"] == "sweep applied lifecycle effects" {
                    swept.fetch_add(1, Ordering::Relaxed);
                }
                if entry["level"] != "INFO" && entry["level"] != "DEBUG" {
                    kept.lock().unwrap().push(line);
                }
            }
        });
        let mut node = Node { address: String::new(), child, complaints, sweeps_applied };
        match address.recv_timeout(Duration::from_secs(30)) {
            Ok(listen) => node.address = format!("http://{listen}"),
            Err(_) => panic!("roster serve did not start: {:?}", node.complaints.lock().unwrap()),
        }
        node
    }

    /// Three nodes started at once, as after a deployment.
    fn start_three(database_url: &str) -> Vec<Node> {
        std::thread::scope(|s| {
            let starting: Vec<_> = (0..3).map(|_| s.spawn(|| Node::start(database_url))).collect();
            starting.into_iter().map(|n| n.join().expect("a node starts")).collect()
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            for line in self.complaints.lock().unwrap().iter() {
                eprintln!("{} said: {line}", self.address);
            }
        }
    }
}

/// The built `roster` binary on `database_url`, with none of this environment's Roster settings.
fn roster_command(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ROSTER_") {
            command.env_remove(name);
        }
    }
    command.env("ROSTER_DATABASE_URL", database_url);
    command
}

/// Runs a `roster` command to completion and returns its standard output.
fn cli(database_url: &str, args: &[&str]) -> String {
    let out = roster_command(database_url).args(args).output().expect("roster runs");
    assert!(out.status.success(), "roster {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output").trim().to_owned()
}

fn jti_of(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("JSON claims");
    claims["jti"].as_str().expect("a jti").to_owned()
}

/// The tenants the script uses. `default` syncs from an IdP with a grace period of 0, so
/// deactivated members lose their groups at the next sweep; `retire` and `purge` run the
/// retention steps (Former Member, deletion) at once.
const TENANTS: [&str; 3] = ["default", "retire", "purge"];

/// Creates the tenants, their policies and one token each, through the CLI.
fn prepare(database_url: &str) -> HashMap<&'static str, String> {
    cli(database_url, &["tenant", "create", "retire"]);
    cli(database_url, &["tenant", "create", "purge"]);
    cli(database_url, &["tenant", "set", "default", "--grace-days", "0"]);
    cli(database_url, &["tenant", "set", "retire", "--grace-days", "0", "--former-member-after-days", "0"]);
    cli(database_url, &["tenant", "set", "purge", "--grace-days", "0", "--delete-after-days", "0"]);
    TENANTS
        .iter()
        .map(|&tenant| {
            let args =
                ["token", "issue", "--tenant", tenant, "--name", "entra", "--scope", "scim,sessions,events,admin"];
            (tenant, cli(database_url, &args))
        })
        .collect()
}

/// The nodes a script spreads its requests over, their database, and the script's tokens.
struct Cluster {
    nodes: Vec<String>,
    database_url: String,
    tokens: HashMap<&'static str, String>,
    client: reqwest::Client,
}

impl Cluster {
    /// The nodes, with the tenants and tokens of [`prepare`] in their database.
    fn of(nodes: &[Node], database_url: &str) -> Cluster {
        Cluster {
            nodes: nodes.iter().map(|n| n.address.clone()).collect(),
            database_url: database_url.to_owned(),
            tokens: prepare(database_url),
            client: reqwest::Client::new(),
        }
    }

    /// Node `i` modulo the number of nodes: A is 0, B is 1, C is 2.
    fn node(&self, i: usize) -> &str {
        &self.nodes[i % self.nodes.len()]
    }

    /// Sends a request as an IdP would: a 429 is retried after its `Retry-After`, since the
    /// script is faster than the per-tenant rate a real IdP keeps to.
    async fn call(&self, node: usize, tenant: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        loop {
            let mut request = self
                .client
                .request(method.clone(), format!("{}{path}", self.node(node)))
                .bearer_auth(&self.tokens[tenant]);
            if let Some(body) = &body {
                request = request.header("content-type", "application/scim+json").body(body.to_string());
            }
            let res = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            let status = res.status().as_u16();
            if status == 429 {
                let wait = res.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            let text = res.text().await.expect("body");
            return (status, serde_json::from_str(&text).unwrap_or(Value::Null));
        }
    }

    /// A request that must answer `expected`; returns the body.
    async fn must(
        &self,
        node: usize,
        tenant: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Value {
        let (status, answer) = self.call(node, tenant, method.clone(), path, body).await;
        assert_eq!(status, expected, "{method} {path} on {}: {answer}", self.node(node));
        answer
    }

    async fn patch_user(&self, node: usize, tenant: &str, id: &str, ops: Value) -> Value {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        self.must(node, tenant, Method::PATCH, &format!("/scim/v2/Users/{id}"), Some(body), 200).await
    }

    /// One page of a tenant's event feed from `after` on, and the position to go on from,
    /// handed back as the feed gave it, whatever its type.
    async fn events_page(&self, node: usize, tenant: &str, after: &str) -> (Vec<Value>, String) {
        let path = format!("/api/v1/events?after={after}&limit=100");
        let feed = self.must(node, tenant, Method::GET, &path, None, 200).await;
        let next = match &feed["next"] {
            Value::String(next) => next.clone(),
            next => next.to_string(),
        };
        (feed["events"].as_array().cloned().expect("events"), next)
    }

    /// A tenant's whole event feed, its pages read from `node`, `node + 1`, and so on; the ids
    /// must strictly increase.
    async fn all_events(&self, node: usize, tenant: &str) -> Vec<Value> {
        let (mut events, mut after) = (Vec::<Value>::new(), String::from("0"));
        for turn in node.. {
            let (page, next) = self.events_page(turn, tenant, &after).await;
            if page.is_empty() {
                break;
            }
            events.extend(page);
            after = next;
        }
        for pair in events.windows(2) {
            let (a, b) = (position(&pair[0]["id"]), position(&pair[1]["id"]));
            assert!(a < b, "event ids strictly increase: {b} after {a}");
        }
        events
    }

    async fn introspect(&self, node: usize, session_token: &str) -> bool {
        let body = json!({"token": session_token});
        let answer = self.must(node, "default", Method::POST, "/api/v1/sessions/introspect", Some(body), 200).await;
        answer["active"].as_bool().expect("active is a boolean")
    }
}

/// What each synced user of `default` goes through, by its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Deactivated on A with an open session, reactivated on B; in no group, so that no sweep
    /// (the grace period is 0) races the reactivation and the outcome does not depend on timing.
    Returns,
    /// Deactivated on A and left so: the sweeps remove its memberships.
    StaysAway,
    /// Deactivated on A, made a Former Member on C.
    Leaves,
    /// Deactivated on A, made a Former Member on C, deleted on B.
    LeavesAndGoes,
    /// Deleted on C while active (the default `deactivate-then-delete` policy).
    Deleted,
    /// Has a session opened on A and ended on C.
    SignsOut,
    /// Nothing after the sync.
    Stays,
}

fn fate(i: usize) -> Fate {
    match i % 8 {
        0 => Fate::Returns,
        1 => Fate::StaysAway,
        2 => Fate::Leaves,
        3 => Fate::LeavesAndGoes,
        4 => Fate::Deleted,
        5 => Fate::SignsOut,
        _ => Fate::Stays,
    }
}

/// The group a synced user joins: every user but those who return and one in eight others.
fn group_of(i: usize) -> Option<usize> {
    (fate(i) != Fate::Returns && i % 8 != 7).then_some(i % GROUPS)
}

/// Runs the whole script against the cluster's nodes and returns the canonical summary of
/// what the database holds afterwards.
async fn script(cluster: &Cluster) -> BTreeMap<String, Value> {
    // Entra's initial sync: check, create, then an update, spread round-robin over the nodes.
    let created: Vec<(usize, String)> = stream::iter(0..SYNC_USERS)
        .map(|i| async move {
            let user_name = format!("user{i}@example.com");
            let filter = format!("/scim/v2/Users?filter=userName+eq+%22user{i}%40example.com%22");
            let found = cluster.must(i, "default", Method::GET, &filter, None, 200).await;
            assert_eq!(found["totalResults"], 0, "{user_name} is not there yet");
            let body = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": user_name,
                "externalId": format!("ext-{i}"),
                "active": true,
                "displayName": format!("User {i}"),
                "name": {"givenName": "User", "familyName": format!("Number{i}")},
                "emails": [{"value": user_name, "type": "work", "primary": true}],
            });
            let user = cluster.must(i, "default", Method::POST, "/scim/v2/Users", Some(body), 201).await;
            let id = user["id"].as_str().expect("an id").to_owned();
            let title = json!([{"op": "Replace", "path": "title", "value": format!("Engineer {}", i % 5)}]);
            cluster.patch_user(i + 1, "default", &id, title).await;
            (i, id)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut ids = vec![String::new(); SYNC_USERS];
    let mut keys: HashMap<String, String> = HashMap::new();
    for (i, id) in created {
        keys.insert(id.clone(), format!("user{i}"));
        ids[i] = id;
    }

    let mut groups = Vec::new();
    for g in 0..GROUPS {
        let name = format!("team-{g}");
        let filter = format!("/scim/v2/Groups?filter=displayName+eq+%22{name}%22");
        assert_eq!(cluster.must(g, "default", Method::GET, &filter, None, 200).await["totalResults"], 0);
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name});
        let group = cluster.must(g, "default", Method::POST, "/scim/v2/Groups", Some(body), 201).await;
        groups.push(group["id"].as_str().expect("an id").to_owned());
    }
    // Member adds one by one, as Entra sends them, racing on the same groups from every node.
    let (ids_ref, groups_ref) = (&ids, &groups);
    stream::iter((0..SYNC_USERS).filter_map(|i| group_of(i).map(|g| (i, g))))
        .for_each_concurrent(CONCURRENCY, |(i, g)| async move {
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Add", "path": "members", "value": [{"value": ids_ref[i]}]}],
            });
            let path = format!("/scim/v2/Groups/{}", groups_ref[g]);
            let (status, answer) = cluster.call(i + 2, "default", Method::PATCH, &path, Some(body)).await;
            assert!(status == 200 || status == 204, "member add: {status} {answer}");
        })
        .await;

    // Lifecycle transitions, each user's in order, users at once, nodes A, B and C taking turns.
    let (a, b, c) = (0, 1, 2);
    stream::iter(0..SYNC_USERS)
        .for_each_concurrent(CONCURRENCY, |i| async move {
            let id = &ids_ref[i];
            let deactivate = json!([{"op": "Replace", "path": "active", "value": "False"}]);
            let former_member =
                json!([{"op": "replace", "path": format!("{ROSTER_USER}:formerMember"), "value": true}]);
            let user_path = format!("/scim/v2/Users/{id}");
            match fate(i) {
                Fate::Returns => {
                    let session = json!({"userId": id});
                    let opened = cluster.must(b, "default", Method::POST, "/api/v1/sessions", Some(session), 201).await;
                    let token = opened["token"].as_str().expect("a session token");
                    for node in [a, b, c] {
                        assert!(cluster.introspect(node, token).await, "the session is active everywhere");
                    }
                    cluster.patch_user(a, "default", id, deactivate).await;
                    for node in [a, b, c] {
                        assert!(!cluster.introspect(node, token).await, "deactivation on A ends the session on {node}");
                    }
                    cluster.patch_user(b, "default", id, json!([{"op": "replace", "value": {"active": true}}])).await;
                    assert!(!cluster.introspect(c, token).await, "reactivation does not revive the session");
                }
                Fate::StaysAway => {
                    cluster.patch_user(a, "default", id, deactivate).await;
                }
                Fate::Leaves | Fate::LeavesAndGoes => {
                    cluster.patch_user(a, "default", id, deactivate).await;
                    cluster.patch_user(c, "default", id, former_member).await;
                    if fate(i) == Fate::LeavesAndGoes {
                        cluster.must(b, "default", Method::DELETE, &user_path, None, 204).await;
                    }
                }
                Fate::Deleted => {
                    cluster.must(c, "default", Method::DELETE, &user_path, None, 204).await;
                    cluster.must(a, "default", Method::GET, &user_path, None, 404).await;
                }
                Fate::SignsOut => {
                    let session = json!({"userId": id});
                    let opened = cluster.must(a, "default", Method::POST, "/api/v1/sessions", Some(session), 201).await;
                    let (sid, token) = (opened["id"].as_str().unwrap(), opened["token"].as_str().unwrap());
                    cluster.must(c, "default", Method::DELETE, &format!("/api/v1/sessions/{sid}"), None, 204).await;
                    for node in [a, b] {
                        assert!(!cluster.introspect(node, token).await, "a session ended on C is over on {node}");
                    }
                }
                Fate::Stays => {}
            }
        })
        .await;

    // The retention tenants: every member of one group, then two in three deactivated at once
    // and swept at once by every node (on request and in the background) and by `roster sweep`:
    // their memberships go and they become Former Members or are deleted.
    for tenant in ["retire", "purge"] {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "everyone"});
        let group = cluster.must(0, tenant, Method::POST, "/scim/v2/Groups", Some(body), 201).await;
        let group = group["id"].as_str().expect("an id").to_owned();
        let made: Vec<(usize, String)> = stream::iter(0..RETENTION_USERS)
            .map(|i| {
                let group = group.clone();
                async move {
                    let body =
                        json!({"userName": format!("{tenant}{i}@example.com"), "externalId": format!("{tenant}-{i}")});
                    let user = cluster.must(i, tenant, Method::POST, "/scim/v2/Users", Some(body), 201).await;
                    let id = user["id"].as_str().expect("an id").to_owned();
                    let add = json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}],
                    });
                    let path = format!("/scim/v2/Groups/{group}");
                    let (status, answer) = cluster.call(i + 1, tenant, Method::PATCH, &path, Some(add)).await;
                    assert!(status == 200 || status == 204, "member add: {status} {answer}");
                    (i, id)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        stream::iter(made.iter().filter(|(i, _)| i % 3 != 0))
            .for_each_concurrent(CONCURRENCY, |(i, id)| async move {
                let deactivate = json!([{"op": "replace", "path": "active", "value": false}]);
                cluster.patch_user(i + 2, tenant, id, deactivate).await;
            })
            .await;
        let database_url = cluster.database_url.clone();
        let sweep_command = std::thread::spawn(move || cli(&database_url, &["sweep"]));
        let sweeps = (0..3).map(|n| cluster.must(n, tenant, Method::POST, "/api/v1/admin/sweep", None, 200));
        futures_util::future::join_all(sweeps).await;
        sweep_command.join().expect("roster sweep succeeds beside the nodes' sweeps");
        for (i, id) in made {
            keys.insert(id, format!("{tenant}{i}"));
        }
    }

    settle(cluster, &ids, &groups).await;
    walk_across_nodes(cluster, &ids).await;
    summary(cluster, &keys).await
}

/// Waits until the sweeps have done their work: deactivated members of `default` out of their
/// groups, and no deactivated account left in `retire` or `purge`.
async fn settle(cluster: &Cluster, ids: &[String], groups: &[String]) {
    let away: BTreeSet<&str> =
        (0..SYNC_USERS).filter(|&i| fate(i) == Fate::StaysAway).map(|i| ids[i].as_str()).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut pending = 0;
        for (g, group) in groups.iter().enumerate() {
            let found = cluster.must(g, "default", Method::GET, &format!("/scim/v2/Groups/{group}"), None, 200).await;
            let members = found["members"].as_array().cloned().unwrap_or_default();
            pending += members.iter().filter(|m| away.contains(m["value"].as_str().unwrap_or_default())).count();
        }
        for (n, tenant) in ["retire", "purge"].into_iter().enumerate() {
            let filter = "/scim/v2/Users?filter=active+eq+false+and+not+(urn%3Aietf%3Aparams%3Ascim%3Aschemas%3Aextension%3Aroster%3A2.0%3AUser%3AformerMember+eq+true)&count=0";
            pending += cluster.must(n, tenant, Method::GET, filter, None, 200).await["totalResults"].as_u64().unwrap()
                as usize;
        }
        if pending == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the sweeps left {pending} effects undone");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Walks of `default`'s users whose every page comes from the next node see every user once:
/// by RFC 9865 cursor (a cursor one node made works on the others) and by index, as Okta's
/// import pages (a node that did not serve the page before finds its place all the same).
async fn walk_across_nodes(cluster: &Cluster, ids: &[String]) {
    let gone: BTreeSet<&String> =
        (0..SYNC_USERS).filter(|&i| matches!(fate(i), Fate::Deleted | Fate::LeavesAndGoes)).map(|i| &ids[i]).collect();
    let expected: BTreeSet<&String> = ids.iter().filter(|id| !gone.contains(id)).collect();
    let page_ids = |answer: &Value| -> Vec<String> {
        let users = answer["Resources"].as_array().cloned().unwrap_or_default();
        users.iter().map(|u| u["id"].as_str().expect("an id").to_owned()).collect()
    };

    let (mut by_cursor, mut cursor) = (Vec::new(), String::new());
    for page in 0.. {
        let path = format!("/scim/v2/Users?cursor={cursor}&count=17&attributes=id");
        let answer = cluster.must(page, "default", Method::GET, &path, None, 200).await;
        by_cursor.extend(page_ids(&answer));
        match answer["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let (mut by_index, mut start) = (Vec::new(), 1);
    for page in 0.. {
        let path = format!("/scim/v2/Users?startIndex={start}&count=17&attributes=id");
        let found = page_ids(&cluster.must(page, "default", Method::GET, &path, None, 200).await);
        if found.is_empty() {
            break;
        }
        start += found.len();
        by_index.extend(found);
    }
    for (walk, seen) in [("cursor", by_cursor), ("index", by_index)] {
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "a {walk} walk across nodes repeats no user");
        assert_eq!(unique, expected, "a {walk} walk across nodes sees every user");
    }
}

/// What the database holds, in terms that do not depend on which node did what or when: each
/// account (by the script's name for it) with its state, profile and groups, each group with
/// its members, and each account's events and audit actions. Also checks that the event feed
/// and the audit log are in order and free of duplicates.
async fn summary(cluster: &Cluster, keys: &HashMap<String, String>) -> BTreeMap<String, Value> {
    let key = |id: &Value| id.as_str().and_then(|id| keys.get(id)).cloned().unwrap_or_else(|| format!("?{id}"));
    let mut out = BTreeMap::new();
    for (n, tenant) in TENANTS.into_iter().enumerate() {
        let users = cluster.must(n, tenant, Method::GET, "/scim/v2/Users?count=1000", None, 200).await;
        for user in users["Resources"].as_array().expect("Resources") {
            let former = user[ROSTER_USER]["formerMember"] == true;
            let mut groups: Vec<String> = user["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| g["display"].as_str().unwrap_or_default().to_owned())
                .collect();
            groups.sort();
            out.insert(
                format!("{tenant}/user/{}", key(&user["id"])),
                json!({
                    "active": user["active"],
                    "formerMember": former,
                    "userName": if former { Value::Null } else { user["userName"].clone() },
                    "externalId": user["externalId"],
                    "title": user["title"],
                    "displayName": user["displayName"],
                    "groups": groups,
                }),
            );
        }
        let found = cluster.must(n + 1, tenant, Method::GET, "/scim/v2/Groups?count=1000", None, 200).await;
        for group in found["Resources"].as_array().expect("Resources") {
            let mut members: Vec<String> =
                group["members"].as_array().into_iter().flatten().map(|m| key(&m["value"])).collect();
            members.sort();
            out.insert(format!("{tenant}/group/{}", group["displayName"].as_str().unwrap()), json!(members));
        }

        let mut events: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for event in cluster.all_events(n + 2, tenant).await {
            let kind = event["type"].as_str().expect("a type").to_owned();
            events.entry(key(&event["userId"])).or_default().push(kind);
        }
        let mut audit: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut after = 0;
        loop {
            let path = format!("/api/v1/audit?after={after}&limit=50");
            let log = cluster.must(n, tenant, Method::GET, &path, None, 200).await;
            let Some(last) = log["entries"].as_array().expect("entries").last() else { break };
            let last = position(&last["id"]);
            assert!(last > after, "audit ids increase");
            for entry in log["entries"].as_array().unwrap() {
                let action = format!("{} by {}", entry["action"].as_str().unwrap(), entry["actor"].as_str().unwrap());
                audit.entry(key(&entry["userId"])).or_default().push(action);
            }
            after = last;
        }
        for (user, mut kinds) in events {
            kinds.sort();
            out.insert(format!("{tenant}/events/{user}"), json!(kinds));
        }
        for (user, mut actions) in audit {
            actions.sort();
            out.insert(format!("{tenant}/audit/{user}"), json!(actions));
        }
    }
    out
}

/// A position in the event feed or the audit log, as a number or a string of digits.
fn position(value: &Value) -> i64 {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("a position: {value}"))
}

/// The entries in which two summaries differ, at most a screenful.
fn differences(left: &BTreeMap<String, Value>, right: &BTreeMap<String, Value>) -> Vec<String> {
    let keys: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    keys.into_iter()
        .filter(|k| left.get(*k) != right.get(*k))
        .take(20)
        .map(|k| format!("{k}: {:?} vs {:?}", left.get(k), right.get(k)))
        .collect()
}

/// The events each account must have, exactly once each, whichever node or sweep wrote them,
/// and the audit entry of each transition, also once, naming who made it.
fn expected_events(summary: &BTreeMap<String, Value>) {
    let kinds = |key: &str| -> Vec<String> {
        summary
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect()
    };
    let audited = |events: &[&str], sweeper: &str| {
        let mut actions: Vec<String> = events
            .iter()
            .filter_map(|kind| match *kind {
                "user.created" => Some("create by entra"),
                "user.deactivated" => Some("deactivate by entra"),
                "user.reactivated" => Some("reactivate by entra"),
                "user.former_member" if sweeper == "former_member" => Some("former_member by retention-policy"),
                "user.former_member" => Some("former_member by entra"),
                "user.deleted" if sweeper == "delete" => Some("delete by retention-policy"),
                "user.deleted" => Some("delete by entra"),
                _ => None,
            })
            .map(str::to_owned)
            .collect();
        actions.sort();
        actions
    };
    let sorted = |mut v: Vec<&str>| {
        v.sort();
        v.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    for i in 0..SYNC_USERS {
        let removed = if group_of(i).is_some() { vec!["membership.removed"] } else { vec![] };
        let mut expected = vec!["user.created", "user.updated"];
        match fate(i) {
            Fate::Returns => expected.extend(["user.deactivated", "user.reactivated"]),
            Fate::StaysAway => expected.push("user.deactivated"),
            Fate::Leaves => expected.extend(["user.deactivated", "user.former_member"]),
            Fate::LeavesAndGoes => expected.extend(["user.deactivated", "user.former_member", "user.deleted"]),
            Fate::Deleted => expected.extend(["user.deactivated", "user.deleted"]),
            Fate::SignsOut | Fate::Stays => {}
        }
        if !matches!(fate(i), Fate::Returns | Fate::SignsOut | Fate::Stays) {
            expected.extend(&removed);
        }
        assert_eq!(
            kinds(&format!("default/events/user{i}")),
            sorted(expected.clone()),
            "events of user{i} ({:?})",
            fate(i)
        );
        assert_eq!(
            kinds(&format!("default/audit/user{i}")),
            audited(&expected, "-"),
            "audit of user{i} ({:?})",
            fate(i)
        );
    }
    for (tenant, last, sweeper) in
        [("retire", "user.former_member", "former_member"), ("purge", "user.deleted", "delete")]
    {
        for i in 0..RETENTION_USERS {
            let mut expected = vec!["user.created"];
            if i % 3 != 0 {
                expected.extend(["user.deactivated", "membership.removed", last]);
            }
            assert_eq!(
                kinds(&format!("{tenant}/events/{tenant}{i}")),
                sorted(expected.clone()),
                "events of {tenant}{i}"
            );
            assert_eq!(
                kinds(&format!("{tenant}/audit/{tenant}{i}")),
                audited(&expected, sweeper),
                "audit of {tenant}{i}"
            );
        }
    }
}

/// A token revoked through the CLI is refused by every node within `token_cache_ms`, even by
/// nodes that had just accepted it (and so remember it).
async fn revocation_reaches_every_node(cluster: &Cluster) {
    let (database_url, nodes, client) = (&cluster.database_url, &cluster.nodes, &cluster.client);
    let token =
        cli(database_url, &["token", "issue", "--tenant", "default", "--name", "reader", "--scope", "scim:read"]);
    let status = |node: &String| {
        let request = client.get(format!("{node}/scim/v2/Users?count=1")).bearer_auth(&token);
        async move { request.send().await.expect("request sent").status().as_u16() }
    };
    for node in nodes {
        assert_eq!(status(node).await, 200, "the token works on {node} before its revocation");
    }
    cli(database_url, &["token", "revoke", &jti_of(&token)]);
    // Every node remembered the token before the revocation committed, so once the cache's
    // lifetime has passed since then, no node may still accept it.
    tokio::time::sleep(Duration::from_millis(TOKEN_CACHE_MS)).await;
    for node in nodes {
        assert_eq!(status(node).await, 401, "{node} accepts a token revoked {TOKEN_CACHE_MS} ms ago");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_postgresql_behave_as_one() {
    let Some(shared) = TestDatabase::create(Backend::Postgres) else { return };
    let Some(single) = TestDatabase::create(Backend::Postgres) else { return };

    // Three nodes start at once on an empty database: migrations, the default tenant, the
    // signing key and the bootstrap token are made once, and every node signs and checks with
    // the same key.
    let nodes = Node::start_three(&shared.url);
    let tokens = cli(&shared.url, &["token", "list"]);
    assert_eq!(tokens.lines().filter(|l| l.contains("\tbootstrap\t")).count(), 1, "one bootstrap token: {tokens}");
    let cluster = Cluster::of(&nodes, &shared.url);
    let together = script(&cluster).await;
    revocation_reaches_every_node(&cluster).await;
    let sweeping: Vec<usize> = nodes.iter().map(|n| n.sweeps_applied.load(Ordering::Relaxed)).collect();
    eprintln!("sweeps that changed something, by node: {sweeping:?}");
    for node in &nodes {
        // A sweep that lost a race to another node's must skip the account, not fail.
        let complaints = node.complaints.lock().unwrap();
        let failures: Vec<&String> =
            complaints.iter().filter(|l| l.contains("\"level\":\"ERROR\"") || l.contains("sweep failed")).collect();
        assert!(failures.is_empty(), "{} logged failures: {failures:#?}", node.address);
    }

    let alone_node = [Node::start(&single.url)];
    let alone = Cluster::of(&alone_node, &single.url);
    let by_one = script(&alone).await;

    expected_events(&together);
    assert!(
        together == by_one,
        "three nodes and one node end in different states:\n{}",
        differences(&together, &by_one).join("\n")
    );
}

/// A client that follows the event feed through every node in turn, while writers on every
/// node deactivate and reactivate accounts, sees every event (docs/storage.md, "Event and audit numbering": gap-free and
/// at-least-once for readers), whichever node wrote it and whichever node it asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_followed_through_every_node_misses_no_event_of_writers_on_every_node() {
    const WRITERS: usize = 4;
    const USERS_EACH: usize = 6;
    const FLIPS: usize = 12;
    let Some(shared) = TestDatabase::create(Backend::Postgres) else { return };
    let nodes = Node::start_three(&shared.url);
    let cluster = &Cluster::of(&nodes, &shared.url);
    let mut ids = Vec::new();
    for i in 0..WRITERS * USERS_EACH {
        let body = json!({"userName": format!("flipper{i}@example.com")});
        let user = cluster.must(i, "default", Method::POST, "/scim/v2/Users", Some(body), 201).await;
        ids.push(user["id"].as_str().expect("an id").to_owned());
    }

    let writing = AtomicBool::new(true);
    let writers = futures_util::future::join_all(ids.chunks(USERS_EACH).enumerate().map(|(w, mine)| async move {
        for flip in 0..FLIPS {
            for (u, id) in mine.iter().enumerate() {
                let active = if flip % 2 == 0 { "False" } else { "True" };
                let ops = json!([{"op": "Replace", "path": "active", "value": active}]);
                cluster.patch_user(w + u + flip, "default", id, ops).await;
            }
        }
    }));
    let follower = async {
        let (mut seen, mut after) = (BTreeSet::new(), String::from("0"));
        // Follows until the writers are done and a last read finds nothing new.
        for turn in 0.. {
            let done = !writing.load(Ordering::SeqCst);
            let (page, next) = cluster.events_page(turn, "default", &after).await;
            if page.is_empty() && done {
                break;
            }
            seen.extend(page.iter().map(|e| position(&e["id"])));
            after = if page.is_empty() { after } else { next };
        }
        seen
    };
    let writers = async {
        writers.await;
        writing.store(false, Ordering::SeqCst);
    };
    let (_, seen) = futures_util::join!(writers, follower);

    let all: BTreeSet<i64> = cluster.all_events(0, "default").await.iter().map(|e| position(&e["id"])).collect();
    assert_eq!(all.len(), WRITERS * USERS_EACH * (1 + FLIPS), "one event per creation and per flip");
    let missed: Vec<&i64> = all.difference(&seen).collect();
    assert!(missed.is_empty(), "the follower missed {} of {} events: {missed:?}", missed.len(), all.len());
}

/// Requests to delete one deactivated account that race (an IdP retrying through another
/// node, or the same request twice) delete it once: one 204, then 404 (RFC 7644 §3.6), never a 500.
async fn racing_deletes_of_one_account_delete_it_once(app: TestApp) {
    for round in 0..5 {
        let user = app.create_user(json!({"userName": format!("racer{round}@example.com")})).await;
        let path = format!("/scim/v2/Users/{}", user["id"].as_str().unwrap());
        let deactivate = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}],
        });
        assert_eq!(app.patch(&path, &deactivate).await.status(), 200);
        let answers = futures_util::future::join_all((0..4).map(|_| app.delete(&path))).await;
        let mut statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
        statuses.sort();
        assert_eq!(statuses, [204, 404, 404, 404], "round {round}");
    }
}

/// Sweeps that run at once (on several nodes, or `roster sweep` beside a server) apply each
/// retention deletion once and all answer 200.
async fn racing_sweeps_delete_each_account_once(app: TestApp) {
    let change = roster::db::tenants::PolicyChange {
        grace_days: Some(0),
        delete_after_days: Some(Some(0)),
        ..Default::default()
    };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let admin = app.issue_token("default", "operator", "admin,events");
    for round in 0..3 {
        for i in 0..8 {
            let user = app.create_user(json!({"userName": format!("leaver{round}-{i}@example.com")})).await;
            let id = user["id"].as_str().unwrap();
            let deactivate = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}],
            });
            assert_eq!(app.patch(&format!("/scim/v2/Users/{id}"), &deactivate).await.status(), 200);
        }
        let sweep = || app.client.post(app.url("/api/v1/admin/sweep")).bearer_auth(&admin).send();
        let mut deleted = 0;
        for answer in futures_util::future::join_all((0..4).map(|_| sweep())).await {
            let answer = answer.expect("request sent");
            assert_eq!(answer.status(), 200, "round {round}");
            deleted += json_body(answer).await["deleted"].as_u64().unwrap();
        }
        assert_eq!(deleted, 8, "round {round}: the sweeps together report each deletion once");
    }
    let feed = json_body(app.get_with("/api/v1/events?limit=1000", &admin).await).await;
    let deletions = feed["events"].as_array().unwrap().iter().filter(|e| e["type"] == "user.deleted").count();
    assert_eq!(deletions, 24, "one user.deleted event per account");
}

/// The sweep's removal of a deactivated account's memberships racing the deletion of that
/// account (which locks the account, then removes its memberships) never deadlocks into a 500:
/// both lock the account's row first.
async fn a_sweep_racing_deletions_of_members_never_fails(app: TestApp) {
    let app = &app;
    let change = roster::db::tenants::PolicyChange { grace_days: Some(0), ..Default::default() };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let admin = &app.issue_token("default", "operator", "admin");
    let deactivate = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}],
    });
    for round in 0..10 {
        let mut ids = Vec::new();
        for i in 0..12 {
            let user = app.create_user(json!({"userName": format!("member{round}-{i}@example.com")})).await;
            ids.push(user["id"].as_str().unwrap().to_owned());
        }
        for g in 0..3 {
            let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
            let group = json!({"displayName": format!("team {round}-{g}"), "members": members});
            assert_eq!(app.post("/scim/v2/Groups", &group).await.status(), 201);
        }
        for id in &ids {
            assert_eq!(app.patch(&format!("/scim/v2/Users/{id}"), &deactivate).await.status(), 200);
        }
        let sweeps = (0..3).map(|_| async move {
            let answer = app.client.post(app.url("/api/v1/admin/sweep")).bearer_auth(admin).send().await.unwrap();
            answer.status().as_u16()
        });
        let deletions = ids
            .iter()
            .rev()
            .map(|id| async move { app.delete(&format!("/scim/v2/Users/{id}")).await.status().as_u16() });
        let (sweeps, deletions) = futures_util::future::join(
            futures_util::future::join_all(sweeps),
            futures_util::future::join_all(deletions),
        )
        .await;
        assert!(sweeps.iter().all(|s| *s == 200), "round {round}: sweeps answered {sweeps:?}");
        assert!(deletions.iter().all(|s| *s == 204), "round {round}: deletions answered {deletions:?}");
    }
}

crate::both_backends!(
    racing_deletes_of_one_account_delete_it_once,
    racing_sweeps_delete_each_account_once,
    a_sweep_racing_deletions_of_members_never_fails
);

/// Under the `require-deactivated` policy a DELETE that races a reactivation either deletes
/// the deactivated account (and the reactivation finds nothing: 404) or finds it active (409):
/// never both a reactivation that succeeded and a deletion of what it reactivated.
async fn a_deletion_racing_a_reactivation_never_deletes_the_active_account(app: TestApp) {
    let change =
        roster::db::tenants::PolicyChange { delete_policy: Some("require-deactivated".into()), ..Default::default() };
    roster::db::tenants::set_policy(&mut app.connection(), "default", &change).unwrap();
    let flip = |active: bool| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": active}],
        })
    };
    for round in 0..40 {
        let user = app.create_user(json!({"userName": format!("wavering{round}@example.com")})).await;
        let path = format!("/scim/v2/Users/{}", user["id"].as_str().unwrap());
        assert_eq!(app.patch(&path, &flip(false)).await.status(), 200);
        let reactivation = flip(true);
        let (reactivated, deleted) = futures_util::join!(app.patch(&path, &reactivation), app.delete(&path));
        let outcome = (reactivated.status().as_u16(), deleted.status().as_u16());
        assert!(outcome == (404, 204) || outcome == (200, 409), "round {round}: (PATCH, DELETE) answered {outcome:?}");
    }
}

crate::both_backends!(a_deletion_racing_a_reactivation_never_deletes_the_active_account);
