//! Traces: a server started with `--otlp-endpoint` exports the spans of each request over
//! OTLP/HTTP (protobuf), continuing a caller's W3C `traceparent`, and its logs carry the trace id.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::helpers::{Backend, TestDatabase, SECRET};

/// A collector that keeps every span POSTed to `/v1/traces` on loopback.
struct Receiver {
    port: u16,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().unwrap().port();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let kept = kept.clone();
                std::thread::spawn(move || serve_exports(stream, &kept));
            }
        });
        Receiver { port, spans }
    }

    /// Waits until a span satisfying `found` has arrived.
    fn wait_for(&self, what: &str, found: impl Fn(&Span) -> bool) -> Span {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(span) = self.spans.lock().unwrap().iter().find(|s| found(s)) {
                return span.clone();
            }
            assert!(Instant::now() < deadline, "no span {what} arrived");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// OTLP/HTTP export requests on one connection (HTTP/1.1 with Content-Length, kept alive),
/// each answered 200 with an empty `ExportTraceServiceResponse`.
fn serve_exports(stream: TcpStream, spans: &Mutex<Vec<Span>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("stream"));
    let mut writer = stream;
    loop {
        let mut length = 0;
        let mut path = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(target) = line.strip_prefix("POST ") {
                path = target.split(' ').next().unwrap_or_default().to_owned();
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("a length");
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("the body");
        assert_eq!(path, "/v1/traces", "spans are sent to the OTLP/HTTP traces path");
        let export = ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP protobuf export");
        let mut kept = spans.lock().unwrap();
        for resource in export.resource_spans {
            for scope in resource.scope_spans {
                kept.extend(scope.spans);
            }
        }
        drop(kept);
        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(answer).is_err() {
            return;
        }
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|a| a.key == key)?.value.as_ref()?.value.as_ref()?;
    Some(match value {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

fn roster(db: &TestDatabase) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    command.env("ROSTER_DATABASE_URL", &db.url).env("ROSTER_TOKEN_SECRET", SECRET).env_remove("ROSTER_CONFIG");
    command
}

struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &TestDatabase, receiver: &Receiver) -> Server {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = roster(db)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--workers", "1", "--log-format", "json"])
        .args(["--sweep-interval-secs", "0", "--otlp-endpoint", &format!("http://127.0.0.1:{}", receiver.port)])
        // Batches go out every 100 ms rather than every 5 s (the SDK's default).
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("roster serve starts");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    Server { child, base: format!("http://127.0.0.1:{port}"), log }
}

async fn wait_until_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_spans_of_a_scim_request_reach_the_collector_with_their_parent(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else { return };
    let receiver = Receiver::start();
    let server = serve(&db, &receiver);
    let client = reqwest::Client::new();
    wait_until_ready(&client, &server.base).await;
    let token =
        roster(&db).args(["token", "issue", "--tenant", "default", "--name", "okta-prod", "--scope", "scim"]).output();
    let token = String::from_utf8(token.expect("token issue runs").stdout).unwrap().trim().to_owned();
    let tenants = String::from_utf8(roster(&db).args(["tenant", "list"]).output().unwrap().stdout).unwrap();
    let default_tenant = tenants.lines().find_map(|l| l.strip_prefix("default\t")).unwrap().split('\t').next().unwrap();

    // A caller's trace (W3C Trace Context §3.2: version-traceid-parentid-flags).
    let (trace_id, parent_id) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let res = client
        .get(format!("{}/scim/v2/Users/no-such-user", server.base))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let request =
        receiver.wait_for("for the GET", |s| attribute(s, "http.route").as_deref() == Some("/scim/v2/Users/{id}"));
    assert_eq!(hex(&request.trace_id), trace_id, "the request continues the caller's trace");
    assert_eq!(hex(&request.parent_span_id), parent_id, "the request span's parent is the caller's span");
    assert_eq!(request.name, "GET /scim/v2/Users/{id}");
    assert_eq!(attribute(&request, "http.response.status_code").as_deref(), Some("404"));
    assert_eq!(attribute(&request, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attribute(&request, "roster.tenant").as_deref(), Some(default_tenant));

    // Without a traceparent a request starts a trace; its database work is a child span, and a
    // refusal carries its scimType (RFC 7644 §3.12).
    let res = client
        .get(format!("{}/scim/v2/Users?filter=userName%20zz%20%22x%22", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let refused = receiver.wait_for("for the invalid filter", |s| attribute(s, "scim.type").is_some());
    assert_eq!(attribute(&refused, "scim.type").as_deref(), Some("invalidFilter"));
    assert_eq!(attribute(&refused, "http.response.status_code").as_deref(), Some("400"));
    assert!(refused.parent_span_id.is_empty(), "a request without traceparent is a root span");

    let res = client
        .post(format!("{}/scim/v2/Users", server.base))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"traced@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created = receiver.wait_for("for the POST", |s| {
        s.name == "POST /scim/v2/Users" && attribute(s, "http.response.status_code").as_deref() == Some("201")
    });
    let write = receiver.wait_for("for the write", |s| s.name == "db.write" && s.trace_id == created.trace_id);
    assert_eq!(write.parent_span_id, created.span_id, "the database write is a child of its request");
    let system = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    assert_eq!(attribute(&write, "db.system").as_deref(), Some(system));

    // Every log line of a request names its trace.
    let finished = |trace: &str| {
        server.log.lock().unwrap().iter().any(|line| line.contains("request finished") && line.contains(trace))
    };
    assert!(finished(trace_id), "{:?}", server.log.lock().unwrap());
    assert!(finished(&hex(&created.trace_id)));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

crate::both_backends!(by_backend: the_spans_of_a_scim_request_reach_the_collector_with_their_parent);
