//! The SQL that differs between SQLite and PostgreSQL, one method per difference, so that the
//! queries ask the backend for a fragment instead of matching on it inline. Each method returns
//! exactly the text the backend runs; the rest of Roster's SQL is the same on both.

/// The backend a database runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Folds text in SQL the way `scim::fold::fold` does in Rust: SQLite calls Roster's own
    /// function (its `lower()` only knows ASCII, see `connection`); PostgreSQL composes the same
    /// steps from built-ins, with its own Unicode tables (so letters cased only in a newer
    /// Unicode than the server's fold apart).
    pub fn fold_sql(self, expr: &str) -> String {
        match self {
            Backend::Sqlite => format!("roster_fold({expr})"),
            // NFD, lowercase, NFC, final sigma as sigma: what `fold` does in Rust.
            Backend::Postgres => format!("replace(normalize(lower(normalize({expr}, NFD)), NFC), 'ς', 'σ')"),
        }
    }

    /// The text at a path of keys in a JSON document column (NULL when absent).
    pub fn json_text(self, column: &str, keys: &[&str]) -> String {
        match self {
            Backend::Sqlite => {
                let path: String = keys.iter().map(|k| format!(".\"{k}\"")).collect();
                format!("json_extract({column}, '${path}')")
            }
            Backend::Postgres => {
                let path: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
                format!("({column}::jsonb #>> '{{{}}}')", path.join(","))
            }
        }
    }

    /// A JSON boolean from [`Backend::json_text`] as an SQL condition: SQLite's json_extract
    /// gives 1/0 for true/false, PostgreSQL's #>> gives 'true'/'false'.
    pub fn json_bool(self, text: String) -> String {
        match self {
            Backend::Sqlite => format!("({text} = 1)"),
            Backend::Postgres => format!("({text} = 'true')"),
        }
    }

    /// A JSON number from [`Backend::json_text`] as an SQL number: SQLite's json_extract gives
    /// the number itself, PostgreSQL's #>> its text.
    pub fn json_number(self, text: String) -> String {
        match self {
            Backend::Sqlite => text,
            Backend::Postgres => format!("CAST({text} AS DOUBLE PRECISION)"),
        }
    }

    /// A sort key as text ordered byte-wise (RFC 7644 §3.4.2.3 leaves the order to the server):
    /// SQLite's TEXT compares bytes already, PostgreSQL's needs the "C" collation.
    pub fn sort_text(self, expr: &str) -> String {
        match self {
            Backend::Sqlite => format!("CAST({expr} AS TEXT)"),
            Backend::Postgres => format!("(CAST({expr} AS TEXT) COLLATE \"C\")"),
        }
    }

    /// Whether a prefix match (`sw`) also bounds the column by the prefix's index range. SQLite
    /// plans statements once for every bound value (see .cargo/config.toml), so it no longer
    /// derives this range from the LIKE pattern itself; PostgreSQL does not use the range.
    pub fn prefix_needs_range(self) -> bool {
        self == Backend::Sqlite
    }

    /// Whether a user's `meta.lastModified` is looked up through the side table `user_modified`
    /// (PostgreSQL, migration 000010: `users.updated_at` is not indexed there, so that updates of
    /// a user stay HOT updates) rather than through the indexed column (SQLite).
    pub fn user_modified_side_table(self) -> bool {
        self == Backend::Postgres
    }

    /// The groups a user row (`users.pk`) is a direct member of, as a JSON array of
    /// `[id, displayName]` pairs, as a subquery (see `users::GroupsOfUser`).
    pub fn groups_of_user(self) -> &'static str {
        match self {
            Backend::Sqlite => {
                "(SELECT json_group_array(json_array(g.id, g.display_name)) \
                 FROM group_members m JOIN scim_groups g ON g.pk = m.group_pk WHERE m.user_pk = users.pk)"
            }
            // Each group looked up by its primary key from the member row, rather than a join: a
            // join leaves the planner free to hash the groups (whose table is small), and on one
            // benchmark database the generic plan did, setting up a hash join over a bitmap scan
            // for every user read, most of whom are in no group (perf, get by id: plan set-up
            // 4.3 % of all samples against 10.3 % for running the statements).
            Backend::Postgres => {
                "(SELECT json_agg((SELECT json_build_array(g.id, g.display_name) FROM scim_groups g WHERE g.pk = m.group_pk))::text \
                 FROM group_members m WHERE m.user_pk = users.pk)"
            }
        }
    }
}

/// Runs `$query` holding the rows it reads until the transaction ends, with PostgreSQL's row
/// lock `$lock` (`for_update`, `for_key_share`); SQLite has no row locks and needs none, its
/// write transactions running one at a time, so there the query runs as it is. `$finish` loads
/// the rows from `$q` on the backend's connection `$c`.
macro_rules! with_row_lock {
    ($conn:expr, $query:expr, $lock:ident, |$q:ident, $c:ident| $finish:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgresql($c) => {
                let $q = $query.$lock();
                $finish
            }
            $crate::db::DbConnection::Sqlite($c) => {
                let $q = $query;
                $finish
            }
        }
    };
}
