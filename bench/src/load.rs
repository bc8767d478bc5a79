//! The load driver: C workers, each with its own connection, run one scenario's operation in a
//! closed loop until the time or request budget is spent, and record one latency sample per
//! operation into their own histograms, merged at the end.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use crate::client::{encode, Client, Conn, Response};
use crate::hist::Histogram;
use crate::scim::{eq_filter, okta_user, patch_body, ListCount, ListCursor, Names, Rng, SeedUser, BULK_REQUEST};

/// What one scenario's workers do, with the data prepared for it.
pub enum Job {
    Get,
    FilterUserName,
    FilterExternalId,
    PatchActive,
    ListIndex {
        total: usize,
    },
    ListCursor,
    /// GETs of one fixed path: list-cursor-deep's page, select-1's URL.
    GetPath {
        path: String,
    },
    GetPut,
    /// Admin Panel: the people list searched by a random seeded user's userName.
    PanelSearch,
    /// Admin Panel: a random seeded user's page.
    PanelPerson,
    /// `members[w]` is the user worker `w` adds to and removes from the group.
    GroupAdd {
        group_id: String,
        members: Vec<String>,
    },
    Create {
        names: Names,
        run: String,
        seq: AtomicU64,
    },
    EntraSync {
        names: Names,
        run: String,
        seq: AtomicU64,
        count: u64,
    },
    /// One RFC 7644 §3.7 BulkRequest of `size` user creates per operation.
    BulkCreate {
        names: Names,
        run: String,
        seq: AtomicU64,
        size: u64,
    },
    Ceiling,
}

/// How long a scenario runs.
pub struct Plan {
    /// Operations started before this much time has passed are not recorded.
    pub warmup: Duration,
    /// Measure for this long, or…
    pub duration: Option<Duration>,
    /// …for this many operations (also the end of a job that runs out of work, like entra-sync).
    pub ops: Option<u64>,
    /// Stop regardless once this much time has passed after the warm-up.
    pub hard_cap: Duration,
    /// Seeds the workers' random choices, so that a run can be repeated request for request;
    /// `None`: from the clock.
    pub seed: Option<u64>,
}

#[derive(Default)]
pub struct Measured {
    pub hist: Histogram,
    pub ops: u64,
    pub requests: u64,
    pub failures: u64,
    /// Failed operations by kind ("HTTP 409", "timeout", …).
    pub failure_kinds: BTreeMap<String, u64>,
    /// From the end of the warm-up to the last worker's end.
    pub elapsed: Duration,
    /// CPU time this process used while the scenario ran (warm-up included), as a share of one
    /// core: how much of the machine the load generator itself took from the server.
    pub client_cpu: Option<f64>,
}

impl Measured {
    pub fn requests_per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

struct Failure {
    kind: String,
    detail: String,
}

pub struct Worker {
    index: usize,
    conn: Conn,
    rng: Rng,
    /// list-cursor: where this worker's walk continues (`None`: from the start).
    cursor: Option<String>,
    /// patch-active: the user this worker deactivated last, to reactivate next.
    pending_reactivation: Option<usize>,
    /// group-add-*: whether this worker's member is in the group now.
    member_added: bool,
    /// Requests sent by the current operation.
    requests: u32,
}

impl Worker {
    async fn call(&mut self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Response, Failure> {
        self.requests += 1;
        self.conn.send(method, path, body.map(Bytes::from)).await.map_err(|e| {
            let detail = format!("{e:#}");
            let kind = if detail.contains("timed out") { "timeout" } else { "connection error" };
            Failure { kind: kind.to_owned(), detail }
        })
    }

    fn random<'a>(&mut self, users: &'a [SeedUser]) -> (usize, &'a SeedUser) {
        let i = self.rng.below(users.len());
        (i, &users[i])
    }
}

/// The answer if its status is `want` (or any 2xx when `want` is 0), otherwise a failure.
fn expect(res: Response, want: u16) -> Result<Response, Failure> {
    let good = if want == 0 { res.ok() } else { res.status == want };
    if good {
        Ok(res)
    } else {
        Err(Failure { kind: format!("HTTP {}", res.status), detail: res.snippet() })
    }
}

fn parse<T: serde::de::DeserializeOwned>(res: &Response) -> Result<T, Failure> {
    serde_json::from_slice(&res.body)
        .map_err(|e| Failure { kind: "unreadable answer".into(), detail: format!("{e}: {}", res.snippet()) })
}

fn active_patch(active: bool) -> Vec<u8> {
    patch_body(json!([{"op": "replace", "value": {"active": active}}]))
}

fn membership_patch(add: bool, member: &str) -> Vec<u8> {
    if add {
        patch_body(json!([{"op": "add", "path": "members", "value": [{"value": member}]}]))
    } else {
        patch_body(json!([{"op": "remove", "path": format!("members[value eq \"{member}\"]")}]))
    }
}

/// One operation. `Ok(false)`: the job has no work left.
async fn operate(job: &Job, users: &[SeedUser], w: &mut Worker) -> Result<bool, Failure> {
    match job {
        Job::Get => {
            let (_, user) = w.random(users);
            expect(w.call(Method::GET, &format!("/Users/{}", user.id), None).await?, 200)?;
        }
        Job::FilterUserName | Job::FilterExternalId => {
            let (_, user) = w.random(users);
            let query = match job {
                Job::FilterUserName => eq_filter("userName", &user.user_name),
                _ => eq_filter("externalId", &user.external_id),
            };
            let res = expect(w.call(Method::GET, &format!("/Users?{query}"), None).await?, 200)?;
            let found = parse::<ListCount>(&res)?.total_results;
            if found != 1 {
                return Err(Failure {
                    kind: "wrong result".into(),
                    detail: format!("the filter for {} found {found} users, not 1", user.user_name),
                });
            }
        }
        Job::PatchActive => {
            let (i, active) = match w.pending_reactivation.take() {
                Some(i) => (i, true),
                None => (w.random(users).0, false),
            };
            if !active {
                w.pending_reactivation = Some(i);
            }
            let path = format!("/Users/{}", users[i].id);
            expect(w.call(Method::PATCH, &path, Some(active_patch(active))).await?, 0)?;
        }
        Job::ListIndex { total } => {
            let start = 1 + w.rng.below(total.saturating_sub(100) + 1);
            expect(w.call(Method::GET, &format!("/Users?startIndex={start}&count=100"), None).await?, 200)?;
        }
        Job::ListCursor => {
            let cursor = w.cursor.take().map(|c| encode(&c)).unwrap_or_default();
            let res = expect(w.call(Method::GET, &format!("/Users?count=100&cursor={cursor}"), None).await?, 200)?;
            w.cursor = parse::<ListCursor>(&res)?.next_cursor;
        }
        Job::GetPath { path } => {
            expect(w.call(Method::GET, path, None).await?, 200)?;
        }
        Job::PanelSearch | Job::PanelPerson => {
            let (_, user) = w.random(users);
            let path = match job {
                Job::PanelSearch => format!("/people?q={}", encode(&user.user_name)),
                _ => format!("/people/{}", user.id),
            };
            let res = expect(w.call(Method::GET, &path, None).await?, 200)?;
            if !String::from_utf8_lossy(&res.body).contains(&user.user_name) {
                return Err(Failure {
                    kind: "wrong result".into(),
                    detail: format!("GET {path} does not show {}", user.user_name),
                });
            }
        }
        Job::GetPut => {
            let (_, user) = w.random(users);
            let path = format!("/Users/{}", user.id);
            let res = expect(w.call(Method::GET, &path, None).await?, 200)?;
            let mut body: Value = parse(&res)?;
            if let Some(object) = body.as_object_mut() {
                object.remove("meta");
            }
            let family = body.pointer("/name/familyName").and_then(Value::as_str).unwrap_or("Doe");
            let changed = match family.strip_suffix("-edited") {
                Some(original) => original.to_owned(),
                None => format!("{family}-edited"),
            };
            body["name"]["familyName"] = Value::String(changed);
            let bytes = serde_json::to_vec(&body).expect("JSON serialises");
            expect(w.call(Method::PUT, &path, Some(bytes)).await?, 0)?;
        }
        Job::GroupAdd { group_id, members } => {
            let add = !w.member_added;
            let body = membership_patch(add, &members[w.index]);
            expect(w.call(Method::PATCH, &format!("/Groups/{group_id}"), Some(body)).await?, 0)?;
            w.member_added = add;
        }
        Job::Create { names, run, seq } => {
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let (user_name, external_id) = names.created(run, n);
            expect(w.call(Method::POST, "/Users", Some(okta_user(&user_name, &external_id, n))).await?, 0)?;
        }
        Job::BulkCreate { names, run, seq, size } => {
            let first = seq.fetch_add(*size, Ordering::Relaxed);
            let operations: Vec<Value> = (first..first + size)
                .map(|n| {
                    let (user_name, external_id) = names.created(run, n);
                    let data: Value =
                        serde_json::from_slice(&okta_user(&user_name, &external_id, n)).expect("okta_user is JSON");
                    json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"), "data": data})
                })
                .collect();
            let body = json!({"schemas": [BULK_REQUEST], "Operations": operations});
            let bytes = serde_json::to_vec(&body).expect("JSON serialises");
            let res = expect(w.call(Method::POST, "/Bulk", Some(bytes)).await?, 200)?;
            let answer: Value = parse(&res)?;
            let results = answer["Operations"].as_array().map(Vec::as_slice).unwrap_or_default();
            let created = results.iter().filter(|op| op["status"] == "201").count() as u64;
            if created != *size {
                let failed = results.iter().find(|op| op["status"] != "201");
                return Err(Failure {
                    kind: "bulk operation failed".into(),
                    detail: format!("{created} of {size} created; first failure: {failed:?}"),
                });
            }
        }
        Job::EntraSync { names, run, seq, count } => {
            let n = seq.fetch_add(1, Ordering::Relaxed);
            if n >= *count {
                return Ok(false);
            }
            let (user_name, external_id) = names.synced(run, n);
            let query = eq_filter("userName", &user_name);
            let res = expect(w.call(Method::GET, &format!("/Users?{query}"), None).await?, 200)?;
            let found = parse::<ListCount>(&res)?.total_results;
            if found != 0 {
                return Err(Failure {
                    kind: "wrong result".into(),
                    detail: format!("{user_name} is new, yet the filter found {found} users"),
                });
            }
            expect(w.call(Method::POST, "/Users", Some(okta_user(&user_name, &external_id, n))).await?, 0)?;
        }
        Job::Ceiling => {
            let path = match users.is_empty() {
                true => "/Users/2819c223-7f76-453a-919d-413861904646".to_owned(),
                false => format!("/Users/{}", w.random(users).1.id),
            };
            expect(w.call(Method::GET, &path, None).await?, 200)?;
        }
    }
    Ok(true)
}

/// Leaves the server as the scenario found it: reactivates the last user a worker deactivated and
/// takes its member out of the group again. Not timed.
async fn tidy(job: &Job, users: &[SeedUser], w: &mut Worker) {
    let result = match job {
        Job::PatchActive => match w.pending_reactivation.take() {
            Some(i) => Some(w.call(Method::PATCH, &format!("/Users/{}", users[i].id), Some(active_patch(true))).await),
            None => None,
        },
        Job::GroupAdd { group_id, members } if w.member_added => {
            let body = membership_patch(false, &members[w.index]);
            Some(w.call(Method::PATCH, &format!("/Groups/{group_id}"), Some(body)).await)
        }
        _ => None,
    };
    if let Some(failure) = result.and_then(|r| r.and_then(|res| expect(res, 0)).err()) {
        eprintln!("  tidying up failed: {}: {}", failure.kind, failure.detail);
    }
}

/// Runs `job` with `concurrency` workers according to `plan`.
pub async fn drive(
    name: &str,
    job: Arc<Job>,
    users: Arc<Vec<SeedUser>>,
    client: &Client,
    concurrency: usize,
    plan: &Plan,
) -> Measured {
    let started = Instant::now();
    let cpu_before = process_cpu_seconds();
    let measure_from = started + plan.warmup;
    let stop_at = measure_from + plan.duration.unwrap_or(plan.hard_cap).min(plan.hard_cap);
    let budget = Arc::new(AtomicI64::new(plan.ops.map_or(i64::MAX, |n| n.min(i64::MAX as u64) as i64)));
    let reported: Arc<Mutex<HashSet<String>>> = Arc::default();
    let seed =
        plan.seed.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64));
    let mut tasks = Vec::with_capacity(concurrency);
    for index in 0..concurrency {
        let (job, users, budget, reported) = (job.clone(), users.clone(), budget.clone(), reported.clone());
        let name = name.to_owned();
        let mut w = Worker {
            index,
            conn: client.conn(),
            rng: Rng::new(seed ^ (index as u64).wrapping_mul(0x9e37_79b9)),
            cursor: None,
            pending_reactivation: None,
            member_added: false,
            requests: 0,
        };
        tasks.push(tokio::spawn(async move {
            let mut m = Measured::default();
            loop {
                let begin = Instant::now();
                if begin >= stop_at {
                    break;
                }
                let measured = begin >= measure_from;
                if measured && budget.fetch_sub(1, Ordering::Relaxed) <= 0 {
                    break;
                }
                w.requests = 0;
                let result = operate(&job, &users, &mut w).await;
                let micros = begin.elapsed().as_micros() as u64;
                let failure = match result {
                    Ok(false) => break,
                    Ok(true) => None,
                    Err(failure) => Some(failure),
                };
                if !measured {
                    continue;
                }
                m.ops += 1;
                m.requests += u64::from(w.requests);
                match failure {
                    None => m.hist.record(micros),
                    Some(failure) => {
                        m.failures += 1;
                        *m.failure_kinds.entry(failure.kind.clone()).or_default() += 1;
                        if reported.lock().expect("not poisoned").insert(failure.kind.clone()) {
                            eprintln!("  {name}: first {}: {}", failure.kind, failure.detail);
                        }
                    }
                }
            }
            let ended = Instant::now();
            tidy(&job, &users, &mut w).await;
            (m, ended)
        }));
    }
    let mut total = Measured::default();
    let mut last_end = measure_from;
    for task in tasks {
        let (m, ended) = task.await.expect("a worker panicked");
        last_end = last_end.max(ended);
        total.hist.merge(&m.hist);
        total.ops += m.ops;
        total.requests += m.requests;
        total.failures += m.failures;
        for (kind, n) in m.failure_kinds {
            *total.failure_kinds.entry(kind).or_default() += n;
        }
    }
    total.elapsed = last_end.saturating_duration_since(measure_from);
    let wall = last_end.saturating_duration_since(started).as_secs_f64();
    if let (Some(before), Some(after)) = (cpu_before, process_cpu_seconds()) {
        total.client_cpu = Some((after - before) / wall.max(1e-9));
    }
    total
}

/// User plus system CPU seconds of this process, all threads (Linux `/proc/self/stat`, in clock
/// ticks of 1/100 s).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
