//! Prometheus metrics, through the `metrics` facade and its Prometheus exporter.
//!
//! Why these crates rather than the `prometheus` crate: a `metrics` handle (`Counter`,
//! `Histogram`) is a few atomics once registered, so a request that reuses handles its worker
//! already holds takes no lock at all, where the `prometheus` crate looks each labelled child up
//! behind a shared `RwLock` on every call; and services and storage count with a one-line macro
//! without knowing who renders.
//!
//! Two recorders feed `/metrics`:
//!
//! - each [`Metrics`] (one per running application) holds the HTTP series: requests by route,
//!   per tenant and connection, latency, the pool and the SQLite WAL. Each HTTP worker keeps the
//!   handles it has used ([`WorkerSeries`]), so the hot path is a map lookup in memory only that
//!   worker touches, then atomic adds.
//! - the process-wide recorder ([`install`]) takes what services and storage count with the
//!   facade's macros (lifecycle transitions, sweeps, pool waits, checkpoints, time limits).
//!
//! Labels are bounded: routes are the patterns actix matched (`/scim/v2/Users/{id}`, or
//! `unmatched`), never paths; tenants only those named by a verified token, that is tenants that
//! exist; connections the first [`MAX_CONNECTIONS`] (tenant, token name) pairs seen, then
//! `other`; `scim_type` the fixed RFC 7644 §3.12 set.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use actix_web::http::Method;
use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::error::ScimType;

/// Upper bounds of the latency buckets, in seconds (unchanged since the first `/metrics`, so
/// dashboards keep their quantiles).
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Distinct (tenant, connection) pairs that get their own label; later ones count as `other`.
pub const MAX_CONNECTIONS: usize = 100;

/// How often recorded histogram samples are folded into their buckets between scrapes, so that
/// memory does not grow with the traffic of a server nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// The label value of a connection beyond [`MAX_CONNECTIONS`].
const OTHER: &str = "other";

const METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The process-wide recorder behind the facade's macros, installed on first use; what services
/// and storage count before it is installed (a CLI command) is dropped.
pub fn install() -> &'static PrometheusHandle {
    static GLOBAL: OnceLock<PrometheusHandle> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        describe_process_series(&recorder);
        // Fails only when another recorder was installed first; its series are then not ours.
        let _ = metrics::set_global_recorder(recorder);
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            })
            .expect("a thread can be started");
        handle
    })
}

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new().set_buckets(&BUCKETS).expect("the buckets are not empty")
}

fn describe_process_series(recorder: &PrometheusRecorder) {
    for (name, help) in [
        ("roster_lifecycle_transitions_total", "Account lifecycle transitions, by kind."),
        ("roster_sweep_runs_total", "Background sweeps, by result."),
        ("roster_db_pool_waits_total", "Database jobs that found no idle pooled connection and waited for one."),
        ("roster_db_pool_timeouts_total", "Requests answered 503 because no pooled connection came in time."),
        (
            "roster_db_statement_timeouts_total",
            "Requests stopped by statement_timeout_ms (PostgreSQL SQLSTATE 57014, SQLite interrupt).",
        ),
        ("roster_sqlite_checkpoints_total", "WAL checkpoints Roster ran on SQLite, by result."),
        (
            "roster_webhook_deliveries_total",
            "Webhook delivery tries and their outcome (delivered, retry, dead, dropped).",
        ),
    ] {
        recorder.describe_counter(name.into(), Some(Unit::Count), help.into());
    }
    recorder.describe_histogram(
        "roster_db_pool_wait_seconds".into(),
        Some(Unit::Seconds),
        "Time a database job waited for a pooled connection, when it had to.".into(),
    );
    recorder.describe_histogram(
        "roster_sweep_duration_seconds".into(),
        Some(Unit::Seconds),
        "Time one background sweep took.".into(),
    );
    recorder.describe_gauge(
        "roster_sweep_last_run_timestamp_seconds".into(),
        Some(Unit::Seconds),
        "When the last background sweep finished (Unix time); its lag is now minus this.".into(),
    );
    recorder.describe_histogram(
        "roster_webhook_request_seconds".into(),
        Some(Unit::Seconds),
        "Time one webhook request took (its count is the number of tries).".into(),
    );
    recorder.describe_histogram(
        "roster_webhook_delivery_lag_seconds".into(),
        Some(Unit::Seconds),
        "Time from an event's commit to its delivery to a webhook.".into(),
    );
    recorder.describe_gauge(
        "roster_webhook_backlog".into(),
        Some(Unit::Count),
        "Webhook deliveries pending (the outbox not yet delivered).".into(),
    );
    recorder.describe_gauge(
        "roster_webhook_backlog_age_seconds".into(),
        Some(Unit::Seconds),
        "Age of the oldest pending webhook delivery: how far delivery lags behind the outbox.".into(),
    );
}

/// One account lifecycle transition (`deactivation`, `reactivation`, `former_member`,
/// `deletion`, ...). Inside [`holding`] (a write that commits later), it is held and counted
/// only when that write commits; elsewhere at once.
pub fn lifecycle_transition(kind: &'static str) {
    let held = HELD.with_borrow_mut(|held| held.as_mut().map(|held| held.push(kind)).is_some());
    if !held {
        count_transition(kind);
    }
}

fn count_transition(kind: &'static str) {
    metrics::counter!("roster_lifecycle_transitions_total", "kind" => kind).increment(1);
}

thread_local! {
    /// The transitions of the write [`holding`] runs on this thread, not counted yet.
    static HELD: RefCell<Option<Vec<&'static str>>> = const { RefCell::new(None) };
}

/// Transitions a write made, to be counted once it commits ([`Held::count`]); dropped
/// uncounted when it fails, rolls back or runs again.
#[must_use = "held transitions are counted only by `count`"]
#[derive(Debug, Default)]
pub struct Held(Vec<&'static str>);

impl Held {
    /// Their write committed: counted now.
    pub fn count(self) {
        self.0.into_iter().for_each(count_transition);
    }

    /// Their write is part of an enclosing one (a savepoint released in its transaction): held
    /// with that one's when it is [`holding`] on this thread, else counted now.
    pub fn keep(self) {
        let left = HELD.with_borrow_mut(|held| match held {
            Some(outer) => {
                outer.extend(&self.0);
                None
            }
            None => Some(self),
        });
        left.into_iter().for_each(Held::count);
    }
}

/// Runs `write` with the transitions it makes held instead of counted, and returns them: a
/// write's transitions count when it commits, not when it runs (a batch of the SQLite writer can
/// run a write twice, and roll back one that succeeded).
pub fn holding<T>(write: impl FnOnce() -> T) -> (T, Held) {
    /// Puts back the enclosing write's transitions, also when `write` unwinds.
    struct Restore(Option<Vec<&'static str>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            HELD.set(self.0.take());
        }
    }
    let restore = Restore(HELD.replace(Some(Vec::new())));
    let result = write();
    let held = HELD.take().unwrap_or_default();
    drop(restore);
    (result, Held(held))
}

/// A database job found no idle pooled connection and waited `waited` for one (or for its
/// timeout).
pub fn pool_wait(waited: Duration) {
    metrics::counter!("roster_db_pool_waits_total").increment(1);
    metrics::histogram!("roster_db_pool_wait_seconds").record(waited.as_secs_f64());
}

/// A request refused with 503 for want of a pooled connection.
pub fn pool_timeout() {
    metrics::counter!("roster_db_pool_timeouts_total").increment(1);
}

/// A request whose database work `statement_timeout_ms` stopped.
pub fn statement_timeout() {
    metrics::counter!("roster_db_statement_timeouts_total").increment(1);
}

/// A WAL checkpoint Roster ran on SQLite; `complete` is false when a reader held it back.
pub fn sqlite_checkpoint(complete: bool) {
    metrics::counter!("roster_sqlite_checkpoints_total", "result" => if complete { "complete" } else { "busy" })
        .increment(1);
}

/// One sweep finished (`ok` or `failed`) after `took`.
pub fn sweep_run(result: &'static str, took: Duration) {
    metrics::counter!("roster_sweep_runs_total", "result" => result).increment(1);
    metrics::histogram!("roster_sweep_duration_seconds").record(took.as_secs_f64());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    metrics::gauge!("roster_sweep_last_run_timestamp_seconds").set(now.as_secs_f64());
}

/// One webhook delivery try: its new `status` (a pending one is a `retry`), whether a request
/// went out and how long it took, and for a delivery the time since the event's commit.
pub fn webhook_delivery(status: &'static str, tried: bool, took_ms: Option<i64>, lag_secs: Option<f64>) {
    let outcome = if status == "pending" { "retry" } else { status };
    metrics::counter!("roster_webhook_deliveries_total", "outcome" => outcome).increment(1);
    if let (true, Some(ms)) = (tried, took_ms) {
        metrics::histogram!("roster_webhook_request_seconds").record(ms as f64 / 1000.0);
    }
    if let Some(lag) = lag_secs {
        metrics::histogram!("roster_webhook_delivery_lag_seconds").record(lag);
    }
}

/// The pending webhook deliveries after a round of sending, and the age of the oldest.
pub fn webhook_backlog(pending: i64, oldest_secs: f64) {
    metrics::gauge!("roster_webhook_backlog").set(pending as f64);
    metrics::gauge!("roster_webhook_backlog_age_seconds").set(oldest_secs);
}

/// The HTTP series of one running application, and the gauges read at scrape time.
#[derive(Clone)]
pub struct Metrics {
    shared: Arc<Shared>,
}

struct Shared {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// The (tenant, connection) pairs that have a label of their own. Only a worker meeting a
    /// pair for the first time looks here.
    connections: Mutex<HashSet<(Box<str>, Box<str>)>>,
    pool: [Gauge; 4],
    /// Registered on the first scrape that finds a WAL file: PostgreSQL has none to report.
    wal_bytes: OnceLock<Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        for (name, help) in [
            ("roster_http_requests_total", "HTTP requests answered, by route, method and status."),
            ("roster_requests_total", "Authenticated requests answered, by tenant and connection (token name)."),
            (
                "roster_request_errors_total",
                "Authenticated requests answered with an error, by tenant, connection, status and scimType.",
            ),
        ] {
            recorder.describe_counter(name.into(), Some(Unit::Count), help.into());
        }
        recorder.describe_histogram(
            "roster_http_request_duration_seconds".into(),
            Some(Unit::Seconds),
            "Time to answer a request, by route.".into(),
        );
        recorder.describe_gauge(
            "roster_db_pool_connections".into(),
            Some(Unit::Count),
            "Database pool connections by state.".into(),
        );
        recorder.describe_gauge(
            "roster_sqlite_wal_bytes".into(),
            Some(Unit::Bytes),
            "Size of the SQLite write-ahead log file at scrape time.".into(),
        );
        let pool = ["max", "open", "idle", "in_use"].map(|state| {
            recorder.register_gauge(&Key::from_parts("roster_db_pool_connections", &[("state", state)]), &METADATA)
        });
        let shared =
            Arc::new(Shared { recorder, handle, connections: Mutex::default(), pool, wal_bytes: OnceLock::new() });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || upkeep(weak))
            .expect("a thread can be started");
        Metrics { shared }
    }

    /// The text exposition format: this application's series, the pool's (max, open, idle)
    /// connections, the SQLite WAL's size when there is one, then the process-wide series.
    pub fn render(&self, pool: (u32, u32, u32), wal_bytes: Option<u64>) -> String {
        let (max, open, idle) = pool;
        let [g_max, g_open, g_idle, g_in_use] = &self.shared.pool;
        g_max.set(max);
        g_open.set(open);
        g_idle.set(idle);
        g_in_use.set(open.saturating_sub(idle));
        if let Some(bytes) = wal_bytes {
            let shared = &self.shared;
            let gauge = shared.wal_bytes.get_or_init(|| {
                shared.recorder.register_gauge(&Key::from_static_name("roster_sqlite_wal_bytes"), &METADATA)
            });
            gauge.set(bytes as f64);
        }
        let mut text = self.shared.handle.render();
        text.push_str(&install().render());
        text
    }

    /// The handles one HTTP worker uses; give each worker its own.
    pub fn worker(&self) -> WorkerSeries {
        WorkerSeries { metrics: self.clone(), routes: RefCell::default(), callers: RefCell::default() }
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.shared.recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    /// The connection label of `(tenant, name)`: its name while fewer than [`MAX_CONNECTIONS`]
    /// pairs have one, then `other`.
    fn connection_label(&self, tenant: &str, name: &str) -> String {
        let mut seen = self.shared.connections.lock().unwrap_or_else(|p| p.into_inner());
        let key = (Box::from(tenant), Box::from(name));
        if seen.contains(&key) || seen.len() < MAX_CONNECTIONS {
            seen.insert(key);
            name.to_owned()
        } else {
            OTHER.to_owned()
        }
    }
}

fn upkeep(shared: Weak<Shared>) {
    loop {
        std::thread::sleep(UPKEEP);
        match shared.upgrade() {
            Some(shared) => shared.handle.run_upkeep(),
            None => return,
        }
    }
}

/// Who made a request, as the metrics label it: set by authentication on the request's
/// extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Arc<str>,
    pub connection: Arc<str>,
}

/// One finished request, as the middleware saw it.
pub struct Answered<'a> {
    pub method: &'a Method,
    /// The route pattern actix matched, or `unmatched`.
    pub route: &'a str,
    pub status: u16,
    pub elapsed: Duration,
    pub caller: Option<&'a Caller>,
    pub scim_type: Option<ScimType>,
}

/// The handles one HTTP worker has used, registered on first use. Each worker has its own (actix
/// builds the app once per worker thread), so nothing here is shared between threads.
pub struct WorkerSeries {
    metrics: Metrics,
    routes: RefCell<FastMap<Box<str>, RouteSeries>>,
    /// By tenant, then by connection.
    callers: RefCell<FastMap<Arc<str>, ByConnection>>,
}

struct RouteSeries {
    latency: Histogram,
    /// By method and status: a route answers a handful of them.
    answered: Vec<((&'static str, u16), Counter)>,
}

type ByConnection = FastMap<Arc<str>, CallerSeries>;

/// Maps keyed by strings the server chose (route patterns, tenant ids, token names), looked up on
/// every request: a fast hash is enough, as no client picks a key.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

struct CallerSeries {
    requests: Counter,
    errors: Vec<((u16, Option<ScimType>), Counter)>,
    /// The label values, kept for the error series registered later.
    labels: [Label; 2],
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl WorkerSeries {
    pub fn record(&self, answered: &Answered<'_>) {
        let (method, status) = (method_label(answered.method), answered.status);
        let mut routes = self.routes.borrow_mut();
        match routes.get_mut(answered.route) {
            Some(series) => series.count(&self.metrics, answered.route, method, answered),
            None => {
                let latency = self.metrics.shared.recorder.register_histogram(
                    &Key::from_parts("roster_http_request_duration_seconds", &[("route", answered.route.to_owned())]),
                    &METADATA,
                );
                let mut series = RouteSeries { latency, answered: Vec::new() };
                series.count(&self.metrics, answered.route, method, answered);
                routes.insert(answered.route.into(), series);
            }
        }
        if let Some(caller) = answered.caller {
            let mut callers = self.callers.borrow_mut();
            match callers.get_mut(&*caller.tenant).and_then(|by| by.get_mut(&*caller.connection)) {
                Some(series) => series.count(&self.metrics, status, answered.scim_type),
                None => {
                    let connection = self.metrics.connection_label(&caller.tenant, &caller.connection);
                    let labels =
                        [Label::new("tenant", caller.tenant.to_string()), Label::new("connection", connection)];
                    let requests = self.metrics.counter("roster_requests_total", labels.to_vec());
                    let mut series = CallerSeries { requests, errors: Vec::new(), labels };
                    series.count(&self.metrics, status, answered.scim_type);
                    callers.entry(caller.tenant.clone()).or_default().insert(caller.connection.clone(), series);
                }
            }
        }
    }
}

impl RouteSeries {
    fn count(&mut self, metrics: &Metrics, route: &str, method: &'static str, answered: &Answered<'_>) {
        let status = answered.status;
        self.latency.record(answered.elapsed.as_secs_f64());
        match self.answered.iter().find(|(key, _)| *key == (method, status)) {
            Some((_, counter)) => counter.increment(1),
            None => {
                let counter = metrics.counter(
                    "roster_http_requests_total",
                    vec![
                        Label::new("route", route.to_owned()),
                        Label::from_static_parts("method", method),
                        Label::new("status", status.to_string()),
                    ],
                );
                counter.increment(1);
                self.answered.push(((method, status), counter));
            }
        }
    }
}

impl CallerSeries {
    fn count(&mut self, metrics: &Metrics, status: u16, scim_type: Option<ScimType>) {
        self.requests.increment(1);
        if status < 400 {
            return;
        }
        match self.errors.iter().find(|(key, _)| *key == (status, scim_type)) {
            Some((_, counter)) => counter.increment(1),
            None => {
                let mut labels = self.labels.to_vec();
                labels.push(Label::new("status", status.to_string()));
                labels.push(Label::from_static_parts("scim_type", scim_type.map_or("none", ScimType::as_str)));
                let counter = metrics.counter("roster_request_errors_total", labels);
                counter.increment(1);
                self.errors.push(((status, scim_type), counter));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered<'a>(method: &'a Method, route: &'a str, status: u16, millis: f64) -> Answered<'a> {
        Answered {
            method,
            route,
            status,
            elapsed: Duration::from_secs_f64(millis / 1000.0),
            caller: None,
            scim_type: None,
        }
    }

    #[test]
    fn transitions_a_write_made_count_only_when_it_commits() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let counted = |kind: &str| {
            let series = format!("roster_lifecycle_transitions_total{{kind=\"{kind}\"}} ");
            let text = handle.render();
            text.lines().find_map(|l| l.strip_prefix(&series).map(|n| n.parse::<u64>().unwrap())).unwrap_or(0)
        };
        metrics::with_local_recorder(&recorder, || {
            // Outside a write: at once.
            lifecycle_transition("deactivate");
            assert_eq!(counted("deactivate"), 1);
            // A write's, held: a first run rolled back, and a write within one that failed, never count.
            let ((), first) = holding(|| lifecycle_transition("deactivate"));
            let ((), again) = holding(|| {
                lifecycle_transition("deactivate");
                let ((), failed) = holding(|| lifecycle_transition("reactivate"));
                drop(failed);
                let ((), released) = holding(|| lifecycle_transition("delete"));
                released.keep();
            });
            assert_eq!(counted("deactivate"), 1, "nothing counted before the commit");
            drop(first);
            again.count();
            assert_eq!((counted("deactivate"), counted("delete"), counted("reactivate")), (2, 1, 0));
            // Kept outside any write: counted at once.
            let ((), alone) = holding(|| lifecycle_transition("former_member"));
            alone.keep();
            assert_eq!(counted("former_member"), 1);
            // A write that unwinds leaves nothing held: what follows outside a write counts at once.
            let unwound = std::panic::catch_unwind(|| {
                holding(|| -> () {
                    lifecycle_transition("delete");
                    panic!("a write")
                })
            });
            assert!(unwound.is_err());
            lifecycle_transition("delete");
            assert_eq!(counted("delete"), 2);
        });
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_counts_add_up() {
        let m = Metrics::new();
        let worker = m.worker();
        worker.record(&answered(&Method::GET, "/healthz", 200, 0.5));
        worker.record(&answered(&Method::GET, "/healthz", 200, 30.0));
        worker.record(&answered(&Method::POST, "/scim/v2/Users", 401, 2.0));
        let text = m.render((8, 2, 1), None);
        assert!(
            text.contains("roster_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("roster_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.001\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("roster_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.05\"} 2"),
            "{text}"
        );
        assert!(text.contains("roster_db_pool_connections{state=\"in_use\"} 1"), "{text}");
    }

    #[test]
    fn two_workers_count_into_the_same_series() {
        let m = Metrics::new();
        let (a, b) = (m.worker(), m.worker());
        a.record(&answered(&Method::GET, "/readyz", 200, 1.0));
        b.record(&answered(&Method::GET, "/readyz", 200, 1.0));
        let text = m.render((1, 0, 0), None);
        assert!(
            text.contains("roster_http_requests_total{route=\"/readyz\",method=\"GET\",status=\"200\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn errors_are_counted_per_tenant_and_connection_with_their_scim_type() {
        let m = Metrics::new();
        let worker = m.worker();
        let caller = Caller { tenant: "acme".into(), connection: "okta-prod".into() };
        let mut request = answered(&Method::POST, "/scim/v2/Users", 409, 3.0);
        request.caller = Some(&caller);
        request.scim_type = Some(ScimType::Uniqueness);
        worker.record(&request);
        request.status = 201;
        request.scim_type = None;
        worker.record(&request);
        let text = m.render((1, 0, 0), None);
        assert!(text.contains("roster_requests_total{tenant=\"acme\",connection=\"okta-prod\"} 2"), "{text}");
        assert!(
            text.contains(
                "roster_request_errors_total{tenant=\"acme\",connection=\"okta-prod\",status=\"409\",\
                 scim_type=\"uniqueness\"} 1"
            ),
            "{text}"
        );
        assert!(!text.contains("status=\"201\",scim_type"), "a success is no error: {text}");
    }

    #[test]
    fn connections_beyond_the_cap_share_one_label() {
        let m = Metrics::new();
        let worker = m.worker();
        for i in 0..=MAX_CONNECTIONS {
            let caller = Caller { tenant: "acme".into(), connection: format!("token-{i}").into() };
            let mut request = answered(&Method::GET, "/scim/v2/Users", 200, 1.0);
            request.caller = Some(&caller);
            worker.record(&request);
        }
        let text = m.render((1, 0, 0), None);
        assert!(text.contains("connection=\"token-0\"} 1"), "{text}");
        assert!(text.contains(&format!("connection=\"token-{}\"}} 1", MAX_CONNECTIONS - 1)), "{text}");
        assert!(!text.contains(&format!("connection=\"token-{MAX_CONNECTIONS}\"")), "{text}");
        assert!(text.contains("roster_requests_total{tenant=\"acme\",connection=\"other\"} 1"), "{text}");
    }

    #[test]
    fn the_wal_size_is_exported_when_there_is_one() {
        let m = Metrics::new();
        assert!(m.render((1, 0, 0), Some(4096)).contains("roster_sqlite_wal_bytes 4096"));
    }
}
