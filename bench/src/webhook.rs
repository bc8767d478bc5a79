//! A webhook receiver for measuring event delivery while a scenario runs (`--webhook-listen`):
//! it answers every POST with 204 at once and notes when each arrived and how long after the
//! event's commit (the `timestamp` of a Roster webhook body, in milliseconds).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::hist::Histogram;

#[derive(Default)]
struct Seen {
    arrivals: Vec<Instant>,
    /// Commit to receipt, in microseconds (the histogram's unit).
    lag: Histogram,
}

#[derive(Clone, Default)]
pub struct Receiver(Arc<Mutex<Seen>>);

/// What arrived between [`Receiver::reset`] and the end of the delivery backlog.
pub struct Deliveries {
    pub count: usize,
    /// From the first arrival to the last.
    pub span: Duration,
    /// From `after` (the end of the scenario) to the last arrival.
    pub drained_after: Duration,
    pub lag_p50_ms: f64,
    pub lag_p99_ms: f64,
    pub lag_max_ms: f64,
}

impl Receiver {
    pub async fn listen(addr: SocketAddr) -> Result<Receiver> {
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("webhook receiver on {addr}"))?;
        let receiver = Receiver::default();
        let seen = receiver.0.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            note(&seen, &body);
                            let mut answer = Response::new(Empty::<Bytes>::new());
                            *answer.status_mut() = StatusCode::NO_CONTENT;
                            Ok::<_, Infallible>(answer)
                        }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(receiver)
    }

    pub fn count(&self) -> usize {
        self.0.lock().unwrap().arrivals.len()
    }

    /// Waits until nothing has arrived for `quiet` (at most `limit` in all): the backlog of
    /// earlier scenarios delivered.
    pub async fn settle(&self, quiet: Duration, limit: Duration) {
        let started = Instant::now();
        let mut last = (self.count(), Instant::now());
        while started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.count();
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() >= quiet {
                return;
            }
        }
    }

    pub fn reset(&self) {
        *self.0.lock().unwrap() = Seen::default();
    }

    /// Waits for the backlog to drain (nothing new for `quiet`, or `limit`), then sums up.
    pub async fn drained(&self, after: Instant, quiet: Duration, limit: Duration) -> Deliveries {
        self.settle(quiet, limit).await;
        let seen = self.0.lock().unwrap();
        let first = seen.arrivals.first().copied().unwrap_or(after);
        let last = seen.arrivals.last().copied().unwrap_or(after);
        let ms = |micros: u64| micros as f64 / 1000.0;
        Deliveries {
            count: seen.arrivals.len(),
            span: last.saturating_duration_since(first),
            drained_after: last.saturating_duration_since(after),
            lag_p50_ms: ms(seen.lag.quantile(0.5)),
            lag_p99_ms: ms(seen.lag.quantile(0.99)),
            lag_max_ms: ms(seen.lag.max()),
        }
    }
}

fn note(seen: &Mutex<Seen>, body: &[u8]) {
    let committed = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["timestamp"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()));
    let now = chrono::Utc::now();
    let mut seen = seen.lock().unwrap();
    seen.arrivals.push(Instant::now());
    if let Some(committed) = committed {
        let lag = (now - committed.with_timezone(&chrono::Utc)).num_microseconds().unwrap_or(0).max(0);
        seen.lag.record(lag as u64);
    }
}
