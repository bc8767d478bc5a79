//! End-to-end tests through the public HTTP API, each on SQLite and PostgreSQL.

mod helpers;

mod auth;
mod groups;
mod hostile;
mod lifecycle;
mod operations;
mod overload;
mod storage;
mod users;
mod writes;
