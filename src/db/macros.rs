//! Macros the storage modules share (`#[macro_use]` in `db/mod.rs`, declared before their users).

/// Runs a statement on the backend's own connection rather than through [`DbConnection`],
/// whose wrapper renders the statement's SQL text on every execution, twice, even when the
/// statement is already prepared. For hot statements with a fixed text (a static query id),
/// which the backend's connection then finds in its cache by type alone. `$body` is compiled
/// once per backend.
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($c) => $body,
            $crate::db::DbConnection::Postgresql($c) => $body,
        }
    };
}
pub(crate) use on_backend;
