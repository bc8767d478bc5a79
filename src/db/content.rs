//! Posts, comments and direct messages, with their authors.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::lifecycle_state::LifecycleState;
use super::schema::{content, users};
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = content)]
pub struct ContentRow {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub author_pk: i64,
    pub author_name: String,
    pub parent_id: Option<String>,
    pub recipient_pk: Option<i64>,
    pub body: String,
    pub created_at: NaiveDateTime,
}

/// An item with its author's user id and lifecycle state, and its recipient's user id.
pub struct ContentView {
    pub row: ContentRow,
    pub author_id: String,
    pub author_state: LifecycleState,
    /// The author was deleted for SCIM while the content stayed (`deactivate-only`).
    pub author_hidden: bool,
    pub recipient_id: Option<String>,
}

pub fn insert(conn: &mut DbConnection, row: &ContentRow) -> QueryResult<()> {
    diesel::insert_into(content::table).values(row).execute(conn)?;
    Ok(())
}

fn views(
    conn: &mut DbConnection,
    rows: Vec<(ContentRow, String, LifecycleState, bool)>,
) -> QueryResult<Vec<ContentView>> {
    let mut out = Vec::with_capacity(rows.len());
    for (row, author_id, author_state, author_hidden) in rows {
        let recipient_id = match row.recipient_pk {
            Some(pk) => users::table.find(pk).select(users::id).first::<String>(conn).optional()?,
            None => None,
        };
        out.push(ContentView { row, author_id, author_state, author_hidden, recipient_id });
    }
    Ok(out)
}

pub fn find(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<ContentView>> {
    let rows = content::table
        .inner_join(users::table.on(users::pk.eq(content::author_pk)))
        .filter(content::id.eq(id))
        .filter(content::tenant_id.eq(tenant_id))
        .select((ContentRow::as_select(), users::id, users::lifecycle_state, users::deleted_at.is_not_null()))
        .load(conn)?;
    Ok(views(conn, rows)?.pop())
}

/// The post `id` of the tenant, held until the transaction ends so that it cannot be deleted
/// before a comment on it is written: on PostgreSQL with the lock a foreign key check takes
/// (`FOR KEY SHARE`), which waits for a deletion in progress and then finds no row; SQLite's
/// write transactions run one at a time, so what it reads stays as read. None when there is
/// no such post.
pub fn lock_post(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<String>> {
    let post = content::table
        .filter(content::id.eq(id))
        .filter(content::tenant_id.eq(tenant_id))
        .filter(content::kind.eq("post"))
        .select(content::id);
    with_row_lock!(conn, post, for_key_share, |q, c| q.first(c).optional())
}

/// Items whose text contains `needle` (already escaped for LIKE), newest first.
pub fn search(conn: &mut DbConnection, tenant_id: &str, like: &str, limit: i64) -> QueryResult<Vec<ContentView>> {
    let rows = content::table
        .inner_join(users::table.on(users::pk.eq(content::author_pk)))
        .filter(content::tenant_id.eq(tenant_id))
        .filter(content::body.like(like).escape('\\'))
        .order(content::created_at.desc())
        .limit(limit)
        .select((ContentRow::as_select(), users::id, users::lifecycle_state, users::deleted_at.is_not_null()))
        .load(conn)?;
    views(conn, rows)
}

/// Everything a user wrote, oldest first (for the archive export).
pub fn by_author(conn: &mut DbConnection, author_pk: i64) -> QueryResult<Vec<ContentRow>> {
    content::table
        .filter(content::author_pk.eq(author_pk))
        .order(content::created_at)
        .select(ContentRow::as_select())
        .load(conn)
}

/// Deletes everything a user wrote (comments of others on their posts go with the posts).
pub fn delete_by_author(conn: &mut DbConnection, author_pk: i64) -> QueryResult<usize> {
    diesel::delete(content::table.filter(content::author_pk.eq(author_pk))).execute(conn)
}
