//! How each resource table is counted and paged for a listing: the statements behind
//! [`super::paginate`], the same for every resource type but for the table, its row type and
//! which of its rows are visible.

use diesel::prelude::*;
use diesel::QueryResult;

use crate::db::groups::GroupRow;
use crate::db::macros::on_backend;
use crate::db::query::Order;
use crate::db::schema::{scim_groups, users};
use crate::db::sql::Sql;
use crate::db::users::UserRead;
use crate::db::DbConnection;

/// How a resource type's storage counts and pages.
pub trait Store {
    type Row;
    fn count(conn: &mut DbConnection, tenant_id: &str, filter: Option<&Sql>) -> QueryResult<i64>;
    /// One page in `order`, walked backwards when `reverse`, each row with its sort key.
    #[allow(clippy::too_many_arguments)]
    fn page(
        conn: &mut DbConnection,
        tenant_id: &str,
        filter: Option<&Sql>,
        keyset: Option<&Sql>,
        order: &Order,
        reverse: bool,
        offset: i64,
        limit: i64,
    ) -> QueryResult<Vec<(Self::Row, Option<String>)>>;
    fn pk(row: &Self::Row) -> i64;
}

/// Orders a boxed listing query: by the sort key (missing keys last, on both backends) and then
/// the row key, or by the row key alone; walked backwards when `$reverse` (previous pages).
macro_rules! keyset_order {
    ($query:expr, $pk:expr, $order:expr, $reverse:expr) => {{
        use diesel::sql_types::{Bool, Text};
        let (query, order, reverse) = ($query, $order, $reverse);
        let descending = order.descending != reverse;
        match &order.key {
            None if descending => query.order($pk.desc()),
            None => query.order($pk.asc()),
            Some(key) => {
                let missing = diesel::dsl::sql::<Bool>(&format!("({key} IS NULL)"));
                let query = if reverse { query.order(missing.desc()) } else { query.order(missing.asc()) };
                let key = diesel::dsl::sql::<Text>(key);
                let query = if descending { query.then_order_by(key.desc()) } else { query.then_order_by(key.asc()) };
                if reverse {
                    query.then_order_by($pk.desc())
                } else {
                    query.then_order_by($pk.asc())
                }
            }
        }
    }};
}

/// Implements [`Store`] for a resource table: counting (all of a tenant's rows from the
/// `resource_counts` kept beside the rows, filtered ones by a query), and paging in any order.
/// `visible` is a condition every listed row meets besides its tenant (only such rows are
/// counted). A page past the start first finds its rows' keys (an index walk over the skipped
/// rows) and then reads just those rows, so a deep `startIndex` does not read every row it skips.
///
/// A macro rather than a function generic over the table: the two tables share no Diesel type
/// that their columns could be named through, and the statements must stay the ones each
/// backend keeps prepared.
macro_rules! resource_store {
    ($store:ident, $row:ty, $table:ident, $resource_type:literal, |$r:ident| $pk_of:expr $(, visible = $visible:expr)?) => {
        pub struct $store;

        impl Store for $store {
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
                let rows: Vec<$row> = match conn {
                    DbConnection::Sqlite(c) => $table::table
                        .filter(crate::db::sql::PksInJson::new(stringify!($table), &pks))
                        .select(<$row>::as_select())
                        .load::<$row>(c)?,
                    // `= ANY($1)`, one array: the same text for any number of pks.
                    DbConnection::Postgresql(c) => $table::table
                        .filter($table::pk.eq_any(&pks))
                        .select(<$row>::as_select())
                        .load::<$row>(c)?,
                };
                let mut rows: std::collections::HashMap<i64, $row> =
                    rows.into_iter().map(|row| (<$store as Store>::pk(&row), row)).collect();
                Ok(keys.into_iter().filter_map(|(pk, key)| rows.remove(&pk).map(|row| (row, key))).collect())
            }

            fn pk($r: &$row) -> i64 {
                $pk_of
            }
        }
    };
}

resource_store!(Users, UserRead, users, "User", |read| read.row.pk, visible = users::deleted_at.is_null());
resource_store!(Groups, GroupRow, scim_groups, "Group", |row| row.pk);
