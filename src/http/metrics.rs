//! Prometheus metrics: requests by route and status, a latency histogram by route, pool use.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, &'static str, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let method = match method {
            "GET" => "GET",
            "POST" => "POST",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "DELETE" => "DELETE",
            "HEAD" => "HEAD",
            _ => "OTHER",
        };
        let secs = elapsed.as_secs_f64();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.requests.entry((route.to_owned(), method, status)).or_default() += 1;
        let h = inner.latency.entry(route.to_owned()).or_default();
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            h.counts[i] += 1;
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The text exposition format, with the pool's (max, open, idle) connections.
    pub fn render(&self, pool: (u32, u32, u32)) -> String {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str("# HELP roster_http_requests_total HTTP requests answered, by route, method and status.\n");
        out.push_str("# TYPE roster_http_requests_total counter\n");
        for ((route, method, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "roster_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str("# HELP roster_http_request_duration_seconds Time to answer a request, by route.\n");
        out.push_str("# TYPE roster_http_request_duration_seconds histogram\n");
        for (route, h) in &inner.latency {
            let route = escape(route);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "roster_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "roster_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "roster_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "roster_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        let (max, open, idle) = pool;
        out.push_str("# HELP roster_db_pool_connections Database pool connections by state.\n");
        out.push_str("# TYPE roster_db_pool_connections gauge\n");
        let _ = writeln!(out, "roster_db_pool_connections{{state=\"max\"}} {max}");
        let _ = writeln!(out, "roster_db_pool_connections{{state=\"open\"}} {open}");
        let _ = writeln!(out, "roster_db_pool_connections{{state=\"idle\"}} {idle}");
        let _ = writeln!(out, "roster_db_pool_connections{{state=\"in_use\"}} {}", open.saturating_sub(idle));
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_counts_add_up() {
        let m = Metrics::default();
        m.record("GET", "/healthz", 200, Duration::from_micros(500));
        m.record("GET", "/healthz", 200, Duration::from_millis(30));
        m.record("POST", "/scim/v2/Users", 401, Duration::from_millis(2));
        let text = m.render((8, 2, 1));
        assert!(text.contains("roster_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2"));
        assert!(text.contains("roster_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.001\"} 1"));
        assert!(text.contains("roster_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.05\"} 2"));
        assert!(text.contains("roster_db_pool_connections{state=\"in_use\"} 1"));
    }
}
