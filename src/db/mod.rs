//! Storage: one Diesel code path over SQLite (the embedded default) and PostgreSQL.
//!
//! The backend is chosen from the URL scheme (`url`) rather than by `MultiConnection::establish`,
//! which tries each backend in turn and reports only the last failure. Each file has one job:
//! `url` parses where the database lives, `connection` sets a connection up, `pool` runs work on
//! the pool, `migrate` applies the schema, `transaction` opens writes, `dialect` holds the SQL
//! that differs between the backends, and `sqlite/write.rs` and `postgres/write.rs` each hold
//! one backend's write path of users and group members.

#[macro_use]
mod macros;
#[macro_use]
mod dialect;

/// Implements [`crate::listing::Store`] for a resource table: counting (all of a tenant's rows from
/// the `resource_counts` the triggers keep, filtered ones by a query), and paging in any order.
/// `visible` is a condition every listed row meets besides its tenant (the triggers count only
/// such rows).
/// A page past the start first finds its rows' keys (an index walk over the skipped rows) and
/// then reads just those rows, so a deep `startIndex` does not read every row it skips.
macro_rules! resource_store {
    ($store:ident, $row:ty, $table:ident, $resource_type:literal, |$r:ident| $pk_of:expr $(, visible = $visible:expr)?) => {
        pub struct $store;

        impl crate::listing::Store for $store {
            type Row = $row;

            fn count(conn: &mut DbConnection, tenant_id: &str, filter: Option<&Sql>) -> QueryResult<i64> {
                let Some(filter) = filter else {
                    return crate::db::tenants::resource_count(conn, tenant_id, $resource_type);
                };
                on_backend!(conn, c => $table::table
                    .filter($table::tenant_id.eq(tenant_id))
                    .filter(filter.clone())
                    $(.filter($visible))?
                    .select(diesel::dsl::count_star())
                    .first(c))
            }

            fn page(
                conn: &mut DbConnection,
                tenant_id: &str,
                filter: Option<&Sql>,
                keyset: Option<&Sql>,
                order: &Order,
                reverse: bool,
                offset: i64,
                limit: i64,
            ) -> QueryResult<Vec<($row, Option<String>)>> {
                use diesel::sql_types::{Nullable, Text};
                // Without a sort key the selected key is a constant NULL: the statement's text
                // is then fixed and may be kept prepared.
                let key = crate::db::sql::Known::<Nullable<Text>>::new(
                    order.key.clone().unwrap_or_else(|| "NULL".to_owned()),
                    order.key.is_none(),
                );
                // Each statement runs on the backend's own connection (see `on_backend!`): a
                // boxed query's text is rendered to find its prepared statement either way,
                // but not twice more as the wrapper would.
                if offset == 0 {
                    return on_backend!(conn, c => {
                        let mut query = $table::table
                            .select((<$row>::as_select(), key.clone()))
                            .filter($table::tenant_id.eq(tenant_id))
                            $(.filter($visible))?
                            .into_boxed();
                        for condition in [filter, keyset].into_iter().flatten() {
                            query = query.filter(condition.clone());
                        }
                        keyset_order!(query, $table::pk, order, reverse).limit(limit).load(c)
                    });
                }
                let keys: Vec<(i64, Option<String>)> = on_backend!(conn, c => {
                    let mut keys = $table::table
                        .select(($table::pk, key.clone()))
                        .filter($table::tenant_id.eq(tenant_id))
                        $(.filter($visible))?
                        .into_boxed();
                    for condition in [filter, keyset].into_iter().flatten() {
                        keys = keys.filter(condition.clone());
                    }
                    keyset_order!(keys, $table::pk, order, reverse).offset(offset).limit(limit).load(c)
                })?;
                let pks: Vec<i64> = keys.iter().map(|(pk, _)| *pk).collect();
                let rows: Vec<$row> = on_backend!(conn, c => $table::table
                    .filter($table::pk.eq_any(&pks))
                    .select(<$row>::as_select())
                    .load::<$row>(c))?;
                let mut rows: std::collections::HashMap<i64, $row> = rows
                    .into_iter()
                    .map(|row| (<$store as crate::listing::Store>::pk(&row), row))
                    .collect();
                Ok(keys.into_iter().filter_map(|(pk, key)| rows.remove(&pk).map(|row| (row, key))).collect())
            }

            fn pk($r: &$row) -> i64 {
                $pk_of
            }
        }
    };
}

mod connection;
mod migrate;
mod pool;
mod stamp;
mod transaction;
mod url;

pub mod content;
pub mod groups;
pub mod query;
pub mod records;
pub mod schema;
pub mod scrub;
pub mod sessions;
pub mod settings;
pub mod share;
pub mod sql;
pub mod tenants;
pub mod tokens;
pub mod users;
mod writer;

/// Each backend's write path of users and group members, readable whole.
mod postgres {
    pub(super) mod write;
}
mod sqlite {
    pub(super) mod write;
}

pub use connection::{Backend, DbConnection, DbError, MultiBackend};
pub use migrate::{migrate, migrations_pending, Opened};
pub use pool::{Database, Manager};
pub use stamp::{new_id, now};
pub use transaction::{is_unique_violation, single_statement_write, write_transaction};
pub use url::DatabaseUrl;
