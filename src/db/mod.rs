//! Storage: one Diesel code path over SQLite (the embedded default) and PostgreSQL.
//!
//! The backend is chosen from the URL scheme (`url`) rather than by `MultiConnection::establish`,
//! which tries each backend in turn and reports only the last failure. Each file has one job:
//! `url` parses where the database lives, `connection` sets a connection up, `pool` runs work on
//! the pool, `migrate` applies the schema, `transaction` opens writes, `dialect` holds the SQL
//! that differs between the backends, and `sqlite/write.rs` and `postgres/write.rs` each hold
//! one backend's write path of users and group members.

#[macro_use]
pub(crate) mod macros;
#[macro_use]
mod dialect;

mod connection;
mod migrate;
mod pool;
mod stamp;
mod timestamp;
mod transaction;
mod txn;
mod url;

pub mod archive;
pub mod connections;
pub mod content;
pub mod conversations;
pub mod deliveries;
pub mod groups;
pub mod lifecycle_state;
pub mod oauth;
pub mod people;
pub mod query;
pub mod records;
pub mod schema;
pub mod scrub;
pub mod sessions;
pub mod settings;
pub mod share;
pub mod signing_keys;
pub mod sql;
pub mod tenants;
pub mod tokens;
pub mod users;
pub mod webhooks;
pub mod write;
mod writer;

/// Each backend's write path of users and group members, readable whole.
mod postgres {
    pub(super) mod write;
}
mod sqlite {
    pub(super) mod write;
}

pub use connection::{DbConnection, DbError, MultiBackend};
pub use dialect::Backend;
pub use migrate::{migrate, migrations_pending, Opened};
pub use pool::{Database, Manager};
pub use stamp::{new_id, now};
pub use transaction::{is_contention, is_unique_violation, single_statement_write, write_transaction};
pub use url::DatabaseUrl;
