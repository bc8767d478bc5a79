//! End-to-end tests through the public HTTP API, each on SQLite and PostgreSQL.

mod helpers;

mod archive;
mod auth;
mod backup;
mod bulk;
mod groups;
mod hostile;
mod integrity;
mod lifecycle;
mod metrics;
mod nodes;
mod oauth;
mod operations;
mod overload;
mod panel;
mod panel_connections;
mod panel_webhooks;
mod product;
mod readiness;
mod retention;
mod security_events;
mod storage;
mod tolerance;
mod tracing;
mod trust;
mod upgrade;
mod users;
mod webhooks;
mod write_paths;
mod writes;
