//! `roster-bench`: a load generator for SCIM 2.0 service providers. It seeds users, runs the
//! request patterns identity providers produce (Okta's and Entra's), and reports throughput and
//! latency per scenario, next to the ceiling of the load generator itself.

mod ceiling;
mod client;
mod hist;
mod load;
mod panel;
mod report;
mod scim;
mod seed;
mod webhook;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use hyper::Method;
use serde_json::json;

use crate::client::{encode, Client, ClientKind, HttpUrl};
use crate::load::{drive, Job, Plan};
use crate::report::{Facts, Header, Outcome, Row};
use crate::scim::{create_or_find, Created, ListCursor, Names, SeedUser, GROUP_SCHEMA};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// GETs of --select1-url: the server's floor for a request that touches the database.
    #[value(name = "select-1")]
    Select1,
    Create,
    Get,
    FilterUsername,
    FilterExternalid,
    PatchActive,
    ListIndex,
    /// Also measures one page deep in the list, reported as `list-cursor-deep`.
    ListCursor,
    GetPut,
    #[value(name = "group-add-10")]
    GroupAdd10,
    #[value(name = "group-add-100k")]
    GroupAdd100k,
    EntraSync,
    /// --bulk-size user creates three ways: one /Bulk request, then as many POSTs at
    /// concurrency 1 and at --concurrency; rows `bulk-request`, `bulk-posts-c1`, `bulk-posts-cN`.
    Bulk,
    /// Only Bulk requests of --bulk-size user creates each (with --requests N: N creates, in
    /// requests of at most --bulk-size), so that a run of it can be set against `create` at the
    /// same number of users (bench/instructions.sh).
    BulkCreates,
    /// The p99 of a well-behaved tenant (--fair-token) alone, then while the seeded tenant runs
    /// the costliest filters flat out; two rows, `-alone` and `-with-hostile`.
    NoisyNeighbour,
    /// Roster's Admin Panel people list (needs --admin-link): the first page, a page
    /// --panel-pages deep by its Next links, a search by a userName, the first page of active
    /// accounts; rows `panel-people-first`, `-later`, `-search`, `-state`.
    PanelPeople,
    /// Roster's Admin Panel page of a random seeded person (needs --admin-link).
    PanelPerson,
    Ceiling,
}

/// The order scenarios run and are reported in: reads first, while the server holds exactly the
/// seeded users, starting with select-1, their yardstick; then the writes that add users; the
/// client's own ceiling last.
const RUN_ORDER: [Scenario; 18] = [
    Scenario::Select1,
    Scenario::Get,
    Scenario::FilterUsername,
    Scenario::FilterExternalid,
    Scenario::ListIndex,
    Scenario::ListCursor,
    Scenario::PanelPeople,
    Scenario::PanelPerson,
    Scenario::GetPut,
    Scenario::PatchActive,
    Scenario::GroupAdd10,
    Scenario::GroupAdd100k,
    Scenario::Create,
    Scenario::EntraSync,
    Scenario::Bulk,
    Scenario::BulkCreates,
    Scenario::NoisyNeighbour,
    Scenario::Ceiling,
];

impl Scenario {
    /// Whether the scenario works on seeded users.
    fn needs_users(self) -> bool {
        !matches!(
            self,
            Scenario::Select1
                | Scenario::Create
                | Scenario::EntraSync
                | Scenario::Bulk
                | Scenario::BulkCreates
                | Scenario::Ceiling
        )
    }
}

/// Load generator for SCIM 2.0 servers: seeds users, then measures what identity providers do.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2 (plain HTTP).
    #[arg(long, env = "SCIM_BASE_URL")]
    base_url: String,
    /// Bearer token with read and write access.
    #[arg(long, env = "SCIM_TOKEN", hide_env_values = true)]
    token: String,
    /// Users to have on the server before measuring; existing ones from earlier runs are reused.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Concurrent requests (workers) per scenario.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Users the bulk scenario creates per way (one Bulk request; as many POSTs).
    #[arg(long, default_value_t = 1000)]
    bulk_size: u64,
    /// Seconds each scenario is measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Measure this many operations per scenario instead of a duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Seconds each scenario runs before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seed of the workers' random choices (which user, which offset): with --concurrency 1 and
    /// --requests, two runs send the same requests (default: seeded from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Scenarios to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = RUN_ORDER)]
    scenarios: Vec<Scenario>,
    /// Append the results as a Markdown table to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Append the results as one line of JSON to this file (JSON Lines).
    #[arg(long)]
    json: Option<PathBuf>,
    /// KEY=VALUE stored with the JSON record, e.g. --tag backend=sqlite --tag size=10000; repeatable.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// Absolute http:// URL the select-1 scenario GETs: a trivial handler that runs SELECT 1
    /// through the server's database pool (Roster: http://HOST:PORT/readyz).
    #[arg(long, value_name = "URL")]
    select1_url: Option<HttpUrl>,
    /// Report the peak (VmHWM) and current (VmRSS) memory of this server process.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Names the run in the tables (backend and size, say); defaults to the base URL.
    #[arg(long)]
    label: Option<String>,
    /// New users the entra-sync scenario provisions.
    #[arg(long, default_value_t = 10_000)]
    sync_users: u64,
    /// Concurrent requests while seeding.
    #[arg(long, default_value_t = 16)]
    seed_concurrency: usize,
    /// Prefix of every userName, externalId and group name the benchmark creates.
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// HTTP client: reqwest (pooled) or hyper (one connection per worker).
    #[arg(long, value_enum, default_value_t = ClientKind::Reqwest)]
    client: ClientKind,
    /// Threads of the load generator's runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Threads of the trivial server the ceiling scenario measures.
    #[arg(long, default_value_t = 2)]
    ceiling_threads: usize,
    /// Seconds before one request counts as failed.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Hard limit in seconds on any one scenario (with --requests, and for entra-sync).
    #[arg(long, default_value_t = 600)]
    max_time: u64,
    /// Receive the server's webhooks on this address (e.g. 127.0.0.1:9099) and report, with
    /// entra-sync, the events delivered per second and their lag from commit to receipt.
    #[arg(long, value_name = "ADDR")]
    webhook_listen: Option<std::net::SocketAddr>,
    /// noisy-neighbour: a token of another tenant, the well-behaved one.
    #[arg(long, env = "SCIM_FAIR_TOKEN", hide_env_values = true)]
    fair_token: Option<String>,
    /// noisy-neighbour: concurrent requests of the hostile (seeded) tenant.
    #[arg(long, default_value_t = 32)]
    hostile_concurrency: usize,
    /// noisy-neighbour: lookups per second of the well-behaved tenant, one at a time (twice
    /// the 25 requests/s the OpenID IPSIE SCIM profile asks a provider to take per tenant).
    #[arg(long, default_value_t = 50.0)]
    fair_rate: f64,
    /// panel-people and panel-person: a one-time sign-in link of Roster's Admin Panel for the
    /// seeded tenant (`roster admin link --tenant … --expires 1h`), spent after seeding.
    #[arg(long, value_name = "URL")]
    admin_link: Option<String>,
    /// panel-people: how many Next links to follow to the later page it measures.
    #[arg(long, default_value_t = 100)]
    panel_pages: usize,
}

fn parse_tag(tag: &str) -> Result<(String, String), String> {
    match tag.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{tag:?} is not KEY=VALUE")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("roster-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roster-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

/// VmHWM and VmRSS of a process, in kB.
fn memory_of(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The 1-minute load average: other work on the machine skews every number.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

struct Bench {
    args: Args,
    client: Client,
    names: Names,
    run_id: String,
    users: Arc<Vec<SeedUser>>,
    on_server: u64,
    webhooks: Option<webhook::Receiver>,
    /// Signed in to the Admin Panel with --admin-link, or why not.
    panel: Result<Client, String>,
}

impl Bench {
    fn plan(&self) -> Plan {
        Plan {
            warmup: Duration::from_secs_f64(self.args.warmup.max(0.0)),
            duration: match self.args.requests {
                Some(_) => None,
                None => Some(Duration::from_secs_f64(self.args.duration.max(0.0))),
            },
            ops: self.args.requests,
            hard_cap: Duration::from_secs(self.args.max_time),
            seed: self.args.seed,
        }
    }

    async fn measure(&self, name: &str, job: Job, notes: Vec<String>) -> Row {
        self.measure_with(&self.client, name, job, notes).await
    }

    async fn measure_with(&self, client: &Client, name: &str, job: Job, notes: Vec<String>) -> Row {
        eprintln!("{name}: running");
        let m = drive(name, Arc::new(job), self.users.clone(), client, self.args.concurrency, &self.plan()).await;
        Row::ran(name, m, notes)
    }

    /// A client like the main one for another server or origin.
    async fn client_for(&self, base_url: &str) -> Result<Client> {
        Client::new(self.client.kind(), base_url, &self.args.token, Duration::from_secs(self.args.timeout)).await
    }

    /// Runs one scenario; list-cursor makes two rows.
    async fn scenario(&self, scenario: Scenario) -> Vec<Row> {
        let name = scenario.to_possible_value().expect("no skipped variants").get_name().to_owned();
        if scenario.needs_users() && self.users.is_empty() {
            return vec![Row::skipped(&name, "no seeded users (--users 0)")];
        }
        match scenario {
            Scenario::Select1 => vec![self.select_1(&name).await],
            Scenario::Get => vec![self.measure(&name, Job::Get, vec![]).await],
            Scenario::FilterUsername => vec![self.measure(&name, Job::FilterUserName, vec![]).await],
            Scenario::FilterExternalid => vec![self.measure(&name, Job::FilterExternalId, vec![]).await],
            Scenario::PatchActive => {
                vec![self.measure(&name, Job::PatchActive, vec!["alternately false and true".into()]).await]
            }
            Scenario::ListIndex => {
                let total = self.on_server.max(self.users.len() as u64) as usize;
                let note = format!("random startIndex in 1..={}, count=100", total.saturating_sub(100) + 1);
                vec![self.measure(&name, Job::ListIndex { total }, vec![note]).await]
            }
            Scenario::ListCursor => {
                let walk =
                    self.measure(&name, Job::ListCursor, vec!["count=100, each worker walks from the start".into()]);
                let mut rows = vec![walk.await];
                rows.push(match self.seek_deep().await {
                    Ok(Ok((job, note))) => self.measure("list-cursor-deep", job, vec![note]).await,
                    Ok(Err(reason)) => Row::skipped("list-cursor-deep", reason),
                    Err(e) => Row::failed("list-cursor-deep", format!("{e:#}")),
                });
                rows
            }
            Scenario::GetPut => {
                vec![self.measure(&name, Job::GetPut, vec!["latency per GET+PUT pair".into()]).await]
            }
            Scenario::GroupAdd10 | Scenario::GroupAdd100k => {
                let size = if scenario == Scenario::GroupAdd10 { 10 } else { 100_000 };
                vec![self.group_add(&name, size).await]
            }
            Scenario::Create => vec![self.measure(&name, self.create_job(), vec![]).await],
            Scenario::EntraSync => vec![self.entra_sync(&name).await],
            Scenario::Bulk => self.bulk(&name).await,
            Scenario::BulkCreates => vec![self.bulk_creates(&name).await],
            Scenario::NoisyNeighbour => self.noisy_neighbour(&name).await,
            Scenario::PanelPeople => self.panel_people(&name).await,
            Scenario::PanelPerson => match &self.panel {
                Ok(panel) => vec![self.measure_with(panel, &name, Job::PanelPerson, vec![]).await],
                Err(reason) => vec![Row::skipped(&name, reason)],
            },
            Scenario::Ceiling => vec![self.ceiling(&name).await],
        }
    }

    async fn panel_people(&self, name: &str) -> Vec<Row> {
        let rows = ["first", "later", "search", "state"].map(|row| format!("{name}-{row}"));
        let panel = match &self.panel {
            Ok(panel) => panel,
            Err(reason) => return rows.iter().map(|row| Row::skipped(row, reason)).collect(),
        };
        let page = |path: &str| Job::GetPath { path: path.to_owned() };
        let mut out =
            vec![self.measure_with(panel, &rows[0], page("/people"), vec!["50 accounts a page".into()]).await];
        out.push(match panel::later_page(panel, self.args.panel_pages).await {
            Ok((path, note)) => self.measure_with(panel, &rows[1], page(&path), vec![note]).await,
            Err(e) => Row::failed(&rows[1], format!("{e:#}")),
        });
        let note = "a random seeded userName".to_owned();
        out.push(self.measure_with(panel, &rows[2], Job::PanelSearch, vec![note]).await);
        let note = "first page of active accounts".to_owned();
        out.push(self.measure_with(panel, &rows[3], page("/people?state=active"), vec![note]).await);
        out
    }

    fn create_job(&self) -> Job {
        Job::Create { names: self.names.clone(), run: self.run_id.clone(), seq: AtomicU64::new(0) }
    }

    /// Walks cursor pages (untimed) to one 90 % of the way into the list.
    async fn seek_deep(&self) -> Result<Result<(Job, String), String>> {
        let total = self.on_server.max(self.users.len() as u64);
        let pages = total.div_ceil(100).max(1);
        let target = (pages * 9 / 10).max(1);
        eprintln!("list-cursor-deep: seeking page {} of {pages}", target + 1);
        let started = Instant::now();
        let mut conn = self.client.conn();
        let mut cursor = String::new();
        for page in 0..target {
            let res = conn.get(&format!("/Users?count=100&cursor={}", encode(&cursor))).await?;
            if res.status != 200 {
                bail!("seeking: page {} answered HTTP {}: {}", page + 1, res.status, res.snippet());
            }
            match serde_json::from_slice::<ListCursor>(&res.body)?.next_cursor {
                Some(next) => cursor = next,
                None if page == 0 => return Ok(Err("the first page has no nextCursor (no cursor paging?)".into())),
                None => break,
            }
        }
        let path = format!("/Users?count=100&cursor={}", encode(&cursor));
        let note = format!("page {} of {pages}, reached in {:.1} s", target + 1, started.elapsed().as_secs_f64());
        Ok(Ok((Job::GetPath { path }, note)))
    }

    async fn group_add(&self, name: &str, size: usize) -> Row {
        let size = size.min(self.users.len());
        eprintln!("{name}: creating a group of {size} members");
        let started = Instant::now();
        let (group_id, members) = match self.setup_group(name, size).await {
            Ok(Ok(group)) => group,
            Ok(Err(reason)) => return Row::skipped(name, reason),
            Err(e) => return Row::failed(name, format!("{e:#}")),
        };
        let note =
            format!("{size} members (set up in {:.1} s), add/remove alternately", started.elapsed().as_secs_f64());
        let row = self.measure(name, Job::GroupAdd { group_id: group_id.clone(), members }, vec![note]).await;
        let mut conn = self.client.conn();
        match conn.send(Method::DELETE, &format!("/Groups/{group_id}"), None).await {
            Ok(res) if res.ok() => {}
            Ok(res) => eprintln!("{name}: deleting the group answered HTTP {}: {}", res.status, res.snippet()),
            Err(e) => eprintln!("{name}: deleting the group: {e:#}"),
        }
        row
    }

    /// Creates the group with `size` seeded members and one spare user per worker to add and
    /// remove. `Ok(Err(reason))` when the server has no /Groups.
    async fn setup_group(&self, name: &str, size: usize) -> Result<Result<(String, Vec<String>), String>> {
        const CHUNK: usize = 1000;
        let mut conn = self.client.conn();
        let member_list =
            |users: &[SeedUser]| -> Vec<serde_json::Value> { users.iter().map(|u| json!({"value": u.id})).collect() };
        let first = &self.users[..size.min(CHUNK)];
        let body = json!({
            "schemas": [GROUP_SCHEMA],
            "displayName": format!("{}-{name}-{}", self.names.prefix, self.run_id),
            "members": member_list(first),
        });
        let res = conn.post("/Groups?excludedAttributes=members", serde_json::to_vec(&body)?).await?;
        if res.status == 404 {
            return Ok(Err(format!("POST /Groups answered 404: {}", res.detail())));
        }
        if !res.ok() {
            bail!("POST /Groups answered HTTP {}: {}", res.status, res.snippet());
        }
        let group_id = serde_json::from_slice::<Created>(&res.body).context("reading the new group's id")?.id;
        for (k, chunk) in self.users[first.len()..size].chunks(CHUNK).enumerate() {
            let body = scim::patch_body(json!([{"op": "add", "path": "members", "value": member_list(chunk)}]));
            let path = format!("/Groups/{group_id}?excludedAttributes=members");
            let res = conn.send(Method::PATCH, &path, Some(body.into())).await?;
            if !res.ok() {
                bail!("adding members {}.. answered HTTP {}: {}", first.len() + k * CHUNK, res.status, res.snippet());
            }
        }
        let mut spares = Vec::new();
        for worker in 0..self.args.concurrency {
            let (user_name, external_id) = self.names.member(worker);
            spares.push(create_or_find(&mut conn, &user_name, &external_id, worker as u64).await?);
        }
        Ok(Ok((group_id, spares)))
    }

    async fn entra_sync(&self, name: &str) -> Row {
        let count = self.args.sync_users;
        eprintln!("{name}: provisioning {count} new users");
        let job = Job::EntraSync { names: self.names.clone(), run: self.run_id.clone(), seq: AtomicU64::new(0), count };
        if let Some(receiver) = &self.webhooks {
            // The deliveries of earlier scenarios' events first, so that only the sync's count.
            receiver.settle(Duration::from_secs(2), Duration::from_secs(600)).await;
            receiver.reset();
        }
        let plan = Plan {
            warmup: Duration::ZERO,
            duration: None,
            ops: None,
            hard_cap: Duration::from_secs(self.args.max_time),
            seed: self.args.seed,
        };
        let m = drive(name, Arc::new(job), self.users.clone(), &self.client, self.args.concurrency, &plan).await;
        let mut notes = vec![format!(
            "{} users in {:.1} s = {:.0} users/s; latency per user (filter GET + POST)",
            m.ops,
            m.elapsed.as_secs_f64(),
            m.ops_per_sec()
        )];
        if m.ops < count {
            notes.push(format!("stopped by --max-time after {} of {count} users", m.ops));
        }
        if let Some(receiver) = &self.webhooks {
            let during = receiver.count();
            let d = receiver.drained(Instant::now(), Duration::from_secs(2), Duration::from_secs(600)).await;
            notes.push(format!(
                "webhooks: {} events delivered, {during} during the sync ({:.0}/s), all {:.1} s after it ended; \
                 {:.0} events/s from first to last; lag from commit to receipt p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                d.count,
                during as f64 / m.elapsed.as_secs_f64().max(0.001),
                d.drained_after.as_secs_f64(),
                d.count as f64 / d.span.as_secs_f64().max(0.001),
                d.lag_p50_ms,
                d.lag_p99_ms,
                d.lag_max_ms
            ));
        }
        Row::ran(name, m, notes)
    }

    /// The same --bulk-size creates as one Bulk request (RFC 7644 §3.7) and as single POSTs, at
    /// concurrency 1 and at --concurrency. Each row creates new users of its own.
    async fn bulk(&self, name: &str) -> Vec<Row> {
        let size = self.args.bulk_size;
        let once = |ops| Plan {
            warmup: Duration::ZERO,
            duration: None,
            ops: Some(ops),
            hard_cap: Duration::from_secs(self.args.max_time),
            seed: self.args.seed,
        };
        let users_per_sec = |m: &crate::load::Measured, users: u64| {
            format!(
                "{users} users in {:.2} s = {:.0} users/s",
                m.elapsed.as_secs_f64(),
                users as f64 / m.elapsed.as_secs_f64().max(1e-9)
            )
        };
        let mut rows = Vec::new();
        let row = format!("{name}-request");
        eprintln!("{row}: running");
        let job = Job::BulkCreate {
            names: self.names.clone(),
            run: format!("{}-bulk", self.run_id),
            seq: AtomicU64::new(0),
            size,
        };
        let m = drive(&row, Arc::new(job), self.users.clone(), &self.client, 1, &once(1)).await;
        let note = format!("one BulkRequest of {size} POSTs; {}", users_per_sec(&m, size));
        rows.push(Row::ran(&row, m, vec![note]));
        for concurrency in [1, self.args.concurrency] {
            let row = format!("{name}-posts-c{concurrency}");
            eprintln!("{row}: running");
            let job = Job::Create {
                names: self.names.clone(),
                run: format!("{}-bulk-c{concurrency}", self.run_id),
                seq: AtomicU64::new(0),
            };
            let m = drive(&row, Arc::new(job), self.users.clone(), &self.client, concurrency, &once(size)).await;
            let note = format!("{size} POST /Users at concurrency {concurrency}; {}", users_per_sec(&m, size));
            rows.push(Row::ran(&row, m, vec![note]));
        }
        rows
    }

    /// Bulk requests of --bulk-size creates, for --duration or, with --requests N, until N users
    /// are created (requests of at most --bulk-size: N rounded up to whole requests).
    async fn bulk_creates(&self, name: &str) -> Row {
        let size = match self.args.requests {
            Some(users) => self.args.bulk_size.min(users).max(1),
            None => self.args.bulk_size.max(1),
        };
        let mut plan = self.plan();
        plan.ops = self.args.requests.map(|users| users.div_ceil(size));
        let job = Job::BulkCreate {
            names: self.names.clone(),
            run: format!("{}-bulk-creates", self.run_id),
            seq: AtomicU64::new(0),
            size,
        };
        eprintln!("{name}: running");
        let m = drive(name, Arc::new(job), self.users.clone(), &self.client, self.args.concurrency, &plan).await;
        let users = m.ops * size;
        let note = format!(
            "{} BulkRequests of {size} POSTs: {users} users in {:.2} s = {:.0} users/s",
            m.ops,
            m.elapsed.as_secs_f64(),
            users as f64 / m.elapsed.as_secs_f64().max(1e-9)
        );
        Row::ran(name, m, vec![note])
    }

    /// The floor under every read: how fast the server answers a request that only borrows a
    /// pooled connection and runs `SELECT 1`, with the same client and concurrency.
    async fn select_1(&self, name: &str) -> Row {
        let Some(url) = &self.args.select1_url else {
            return Row::skipped(name, "no --select1-url given");
        };
        let client = match self.client_for(&url.origin).await {
            Ok(client) => client,
            Err(e) => return Row::failed(name, format!("{e:#}")),
        };
        let note = format!("GET {}: trivial handler running SELECT 1 through the server's pool", url.path);
        self.measure_with(&client, name, Job::GetPath { path: url.path.clone() }, vec![note]).await
    }

    /// The well-behaved tenant looks one of its users up by userName, as an IdP does before
    /// every change: measured alone, then while the seeded tenant sends the costliest filter
    /// Roster accepts (100 comparisons, 10 of them `co`, on attributes no index serves) from
    /// --hostile-concurrency workers without pause.
    async fn noisy_neighbour(&self, name: &str) -> Vec<Row> {
        let (alone, with) = (format!("{name}-alone"), format!("{name}-with-hostile"));
        let Some(token) = &self.args.fair_token else {
            return vec![Row::skipped(&alone, "no --fair-token given"), Row::skipped(&with, "no --fair-token given")];
        };
        let timeout = Duration::from_secs(self.args.timeout);
        let fair = match Client::new(self.client.kind(), &self.args.base_url, token, timeout).await {
            Ok(client) => client,
            Err(e) => return vec![Row::failed(&alone, format!("{e:#}")), Row::failed(&with, format!("{e:#}"))],
        };
        let probe = format!("{}-fair-probe", self.args.prefix);
        let body = serde_json::to_vec(&json!({"schemas": [scim::USER_SCHEMA], "userName": probe})).expect("JSON");
        match fair.conn().post("/Users", body).await {
            Ok(res) if res.status == 201 || res.status == 409 => {}
            Ok(res) => {
                let reason = format!("creating the probe user answered HTTP {}: {}", res.status, res.snippet());
                return vec![Row::failed(&alone, reason.clone()), Row::failed(&with, reason)];
            }
            Err(e) => return vec![Row::failed(&alone, format!("{e:#}")), Row::failed(&with, format!("{e:#}"))],
        }
        let lookup = format!("/Users?filter={}", encode(&format!("userName eq \"{probe}\"")));
        let paced = format!("{} lookups/s, one at a time", self.args.fair_rate);
        let alone_row = self.paced(&fair, &alone, &lookup, vec![paced.clone(), "no other traffic".into()]).await;

        let filter = (0..100)
            .map(|i| if i < 10 { format!("title co \"zz{i}\"") } else { format!("nickName eq \"zz{i}\"") })
            .collect::<Vec<_>>()
            .join(" or ");
        let path = format!("/Users?count=1&filter={}", encode(&filter));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Answers of the hostile tenant: 200, 429, 503, anything else.
        let counts: Arc<[AtomicU64; 4]> = Arc::default();
        let hostile: Vec<_> = (0..self.args.hostile_concurrency)
            .map(|_| {
                let (mut conn, path, stop, counts) = (self.client.conn(), path.clone(), stop.clone(), counts.clone());
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let slot = match conn.get(&path).await.map(|r| r.status) {
                            Ok(200) => 0,
                            Ok(429) => 1,
                            Ok(503) => 2,
                            _ => 3,
                        };
                        counts[slot].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let mut with_row = self.paced(&fair, &with, &lookup, vec![paced]).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for task in hostile {
            let _ = task.await;
        }
        let [served, limited, unavailable, other] =
            [0, 1, 2, 3].map(|i| counts[i].load(std::sync::atomic::Ordering::Relaxed));
        with_row.notes.push(format!(
            "hostile: {} workers of the costliest filter; {served} served, {limited} 429, {unavailable} 503, {other} other",
            self.args.hostile_concurrency
        ));
        vec![alone_row, with_row]
    }

    /// GETs of `path`, one at a time at --fair-rate per second, for the warm-up and duration,
    /// as a client that stays within its rate does (a closed loop would measure the rate limit).
    async fn paced(&self, client: &Client, name: &str, path: &str, notes: Vec<String>) -> Row {
        eprintln!("{name}: running");
        let every = Duration::from_secs_f64(1.0 / self.args.fair_rate.max(0.1));
        let plan = self.plan();
        let started = Instant::now();
        let (measure_from, stop_at) =
            (started + plan.warmup, started + plan.warmup + plan.duration.unwrap_or(plan.hard_cap));
        let mut conn = client.conn();
        let mut m = load::Measured::default();
        let mut next = started;
        while Instant::now() < stop_at {
            tokio::time::sleep_until(next.into()).await;
            let begin = Instant::now();
            let result = conn.get(path).await;
            if begin >= measure_from {
                m.ops += 1;
                m.requests += 1;
                m.hist.record(begin.elapsed().as_micros() as u64);
                let failure = match result {
                    Ok(res) if res.status == 200 => None,
                    Ok(res) => Some(format!("HTTP {}", res.status)),
                    Err(e) => Some(format!("{e:#}")),
                };
                if let Some(kind) = failure {
                    m.failures += 1;
                    *m.failure_kinds.entry(kind).or_default() += 1;
                }
            }
            // A lookup slower than the interval delays the next one, rather than bunching them.
            next = (next + every).max(Instant::now());
        }
        m.elapsed = stop_at.saturating_duration_since(measure_from);
        Row::ran(name, m, notes)
    }

    async fn ceiling(&self, name: &str) -> Row {
        let threads = self.args.ceiling_threads;
        let server = match ceiling::CeilingServer::start(threads) {
            Ok(server) => server,
            Err(e) => return Row::failed(name, format!("starting the trivial server: {e:#}")),
        };
        let client = match self.client_for(&format!("http://{}/scim/v2", server.addr)).await {
            Ok(client) => client,
            Err(e) => return Row::failed(name, format!("{e:#}")),
        };
        let note = format!(
            "trivial in-process server ({threads} threads, its CPU counted as client CPU), same client and concurrency"
        );
        let row = self.measure_with(&client, name, Job::Ceiling, vec![note]).await;
        drop(server);
        row
    }
}

async fn run(args: Args) -> Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let timeout = Duration::from_secs(args.timeout);
    let client = Client::new(args.client, &args.base_url, &args.token, timeout).await?;
    let names = Names { prefix: args.prefix.clone() };
    let run_id = format!("{:x}", chrono::Utc::now().timestamp_millis());
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();

    let load_before = load_average();
    let mut conn = client.conn();
    let before = scim::count_users(&mut conn).await.context("reaching the server")?;
    eprintln!("server at {} holds {before} users", args.base_url);

    let wants_users = args.scenarios.iter().any(|s| s.needs_users());
    let (users, seed_note) = if wants_users && args.users > 0 {
        let seeded = seed::seed(&client, &names, args.users, args.seed_concurrency).await?;
        let rate = match seeded.created {
            0 => String::new(),
            n => format!(
                " in {:.1} s ({:.0} users/s)",
                seeded.elapsed.as_secs_f64(),
                n as f64 / seeded.elapsed.as_secs_f64()
            ),
        };
        let note =
            format!("{} seeded users ({} found, {} created{rate})", seeded.users.len(), seeded.found, seeded.created);
        (seeded.users, note)
    } else {
        (Vec::new(), "no seeding".to_owned())
    };
    eprintln!("seed: {seed_note}");
    let on_server = scim::count_users(&mut conn).await?;

    let label = args.label.clone().unwrap_or_else(|| args.base_url.clone());
    let webhooks = match args.webhook_listen {
        Some(addr) => Some(webhook::Receiver::listen(addr).await?),
        None => None,
    };
    let wants_panel = args.scenarios.iter().any(|s| matches!(s, Scenario::PanelPeople | Scenario::PanelPerson));
    let panel = match &args.admin_link {
        // Spent after seeding, so that the session is fresh (it ends after 30 idle minutes).
        Some(link) if wants_panel => {
            panel::sign_in(args.client, link, &args.token, timeout).await.map_err(|e| format!("{e:#}"))
        }
        _ => Err("no --admin-link given".to_owned()),
    };
    let bench = Bench { args, client, names, run_id, users: Arc::new(users), on_server, webhooks, panel };
    let mut rows = Vec::new();
    for scenario in RUN_ORDER.into_iter().filter(|s| bench.args.scenarios.contains(s)) {
        for row in bench.scenario(scenario).await {
            if let Outcome::Ran(m) = &row.outcome {
                eprintln!(
                    "{}: {} requests, {:.0} req/s, {} errors",
                    row.name,
                    m.requests,
                    m.requests_per_sec(),
                    m.failures
                );
            }
            rows.push(row);
        }
    }

    let args = &bench.args;
    let budget = match args.requests {
        Some(n) => format!("{n} operations per scenario"),
        None => format!("{} s per scenario", args.duration),
    };
    let mut lines = vec![
        format!("concurrency {}", args.concurrency),
        format!("{budget} after {} s warm-up", args.warmup),
        format!("client {}", args.client.name()),
        format!("load average {load_before} at the start, {} at the end ({} cores)", load_average(), cores()),
        format!("{on_server} users on the server when measuring began; {seed_note}"),
    ];
    let memory = args.server_pid.and_then(memory_of);
    if let Some(pid) = args.server_pid {
        lines.push(match memory {
            Some((peak, now)) => format!("server RSS peak {} (now {})", mib(peak), mib(now)),
            None => format!("server RSS unknown (no /proc/{pid}/status)"),
        });
    }
    let facts = Facts {
        tags: args.tags.iter().cloned().collect(),
        concurrency: args.concurrency,
        client: args.client.name(),
        duration_s: args.requests.is_none().then_some(args.duration),
        ops_per_scenario: args.requests,
        warmup_s: args.warmup,
        sync_users: args.sync_users,
        users_on_server: on_server,
        server_rss_peak_kb: memory.map(|(peak, _)| peak),
        server_rss_kb: memory.map(|(_, now)| now),
    };
    let header = Header { label, date, lines, facts };
    print!("{}", report::text(&header, &rows));
    if let Some(path) = &args.markdown {
        append(path, &report::markdown(&header, &rows))?;
    }
    if let Some(path) = &args.json {
        append(path, &report::json(&header, &rows))?;
    }
    Ok(())
}

/// Appends to a file that runs share, creating it if need be.
fn append(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}
