//! Posts, comments and direct messages. Their authors and recipients are shown as they are now
//! (`super::people`), so an item stores who wrote it, not what they were called.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::content;
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = content)]
pub struct ContentRow {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub author_pk: i64,
    pub parent_id: Option<String>,
    pub recipient_pk: Option<i64>,
    pub body: String,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, row: &ContentRow) -> QueryResult<()> {
    diesel::insert_into(content::table).values(row).execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<ContentRow>> {
    content::table
        .filter(content::id.eq(id))
        .filter(content::tenant_id.eq(tenant_id))
        .select(ContentRow::as_select())
        .first(conn)
        .optional()
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
pub fn search(conn: &mut DbConnection, tenant_id: &str, like: &str, limit: i64) -> QueryResult<Vec<ContentRow>> {
    content::table
        .filter(content::tenant_id.eq(tenant_id))
        .filter(content::body.like(like).escape('\\'))
        .order(content::created_at.desc())
        .limit(limit)
        .select(ContentRow::as_select())
        .load(conn)
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
