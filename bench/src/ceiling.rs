//! A trivial HTTP/1.1 server answering every request with the same small SCIM-looking JSON body.
//! Hammering it with the same client and concurrency shows what the load generator itself can
//! reach on this machine: the ceiling above which no server can be measured.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const BODY: &str = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"2819c223-7f76-453a-919d-413861904646","userName":"bjensen@example.com","active":true}"#;

/// A running ceiling server; dropping it stops it.
pub struct CeilingServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CeilingServer {
    /// Starts the server on 127.0.0.1, on a port of the system's choosing, on a runtime of its own
    /// with `threads` threads, as a separate server process would have.
    pub fn start(threads: usize) -> Result<CeilingServer> {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(threads.max(1)).enable_all().build()?;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("ceiling-server".into()).spawn(move || {
            runtime.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("a listener for the runtime");
                tokio::select! {
                    _ = stopped => {}
                    _ = accept_loop(listener) => {}
                }
            });
            runtime.shutdown_background();
        })?;
        Ok(CeilingServer { addr, stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for CeilingServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_request: Request<hyper::body::Incoming>| async {
                let mut response = Response::new(Full::new(Bytes::from_static(BODY.as_bytes())));
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/scim+json"),
                );
                Ok::<_, Infallible>(response)
            });
            let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
