//! Macros the storage modules share (`#[macro_use]` in `db/mod.rs`, declared before their users).

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
