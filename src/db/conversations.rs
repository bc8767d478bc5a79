//! Group conversations: their members and messages. Every function takes the conversation as
//! already found in the caller's tenant ([`find`]), so none of them can reach another tenant's.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{conversation_members, conversation_messages, conversations};
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = conversations)]
pub struct ConversationRow {
    pub id: String,
    pub tenant_id: String,
    pub title: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = conversation_messages)]
pub struct MessageRow {
    pub seq: i64,
    pub id: String,
    pub conversation_id: String,
    pub sender_pk: i64,
    pub body: String,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, row: &ConversationRow) -> QueryResult<()> {
    diesel::insert_into(conversations::table).values(row).execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<ConversationRow>> {
    conversations::table
        .filter(conversations::id.eq(id))
        .filter(conversations::tenant_id.eq(tenant_id))
        .select(ConversationRow::as_select())
        .first(conn)
        .optional()
}

/// The conversation `id` of the tenant, locked for a new message until the transaction ends:
/// one conversation's messages are written one at a time, so their `seq` follows the order in
/// which they commit and a reader paging with `after` misses none (PostgreSQL hands out sequence
/// values before commit; SQLite's writes are one at a time anyway). A member is added under the
/// same lock, so that two adds cannot both count the members below the cap and pass it together.
pub fn lock_for_message(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<ConversationRow>> {
    let held = conversations::table
        .filter(conversations::id.eq(id))
        .filter(conversations::tenant_id.eq(tenant_id))
        .select(conversations::id);
    let held: Option<String> = with_row_lock!(conn, held, for_no_key_update, |q, c| q.first(c).optional())?;
    held.map_or(Ok(None), |id| find(conn, tenant_id, &id))
}

/// Adds the account `user_pk`; false when it already was a member.
pub fn add_member(
    conn: &mut DbConnection,
    conversation_id: &str,
    user_pk: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    if is_member(conn, conversation_id, user_pk)? {
        return Ok(false);
    }
    diesel::insert_into(conversation_members::table)
        .values((
            conversation_members::conversation_id.eq(conversation_id),
            conversation_members::user_pk.eq(user_pk),
            conversation_members::added_at.eq(now),
        ))
        .execute(conn)?;
    Ok(true)
}

pub fn is_member(conn: &mut DbConnection, conversation_id: &str, user_pk: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        conversation_members::table
            .filter(conversation_members::conversation_id.eq(conversation_id))
            .filter(conversation_members::user_pk.eq(user_pk)),
    ))
    .get_result(conn)
}

/// The members' account keys, in the order they joined.
pub fn members(conn: &mut DbConnection, conversation_id: &str) -> QueryResult<Vec<i64>> {
    conversation_members::table
        .filter(conversation_members::conversation_id.eq(conversation_id))
        .order((conversation_members::added_at, conversation_members::user_pk))
        .select(conversation_members::user_pk)
        .load(conn)
}

/// False when `user_pk` was not a member.
pub fn remove_member(conn: &mut DbConnection, conversation_id: &str, user_pk: i64) -> QueryResult<bool> {
    let removed = diesel::delete(
        conversation_members::table
            .filter(conversation_members::conversation_id.eq(conversation_id))
            .filter(conversation_members::user_pk.eq(user_pk)),
    )
    .execute(conn)?;
    Ok(removed > 0)
}

/// Removes the account from every conversation it is a member of; their messages stay.
pub fn leave_all(conn: &mut DbConnection, user_pk: i64) -> QueryResult<usize> {
    diesel::delete(conversation_members::table.filter(conversation_members::user_pk.eq(user_pk))).execute(conn)
}

pub fn insert_message(
    conn: &mut DbConnection,
    id: &str,
    conversation_id: &str,
    sender_pk: i64,
    body: &str,
    now: NaiveDateTime,
) -> QueryResult<MessageRow> {
    diesel::insert_into(conversation_messages::table)
        .values((
            conversation_messages::id.eq(id),
            conversation_messages::conversation_id.eq(conversation_id),
            conversation_messages::sender_pk.eq(sender_pk),
            conversation_messages::body.eq(body),
            conversation_messages::created_at.eq(now),
        ))
        .execute(conn)?;
    conversation_messages::table.filter(conversation_messages::id.eq(id)).select(MessageRow::as_select()).first(conn)
}

/// Up to `limit` messages of the conversation after the cursor `after` (a `seq`), oldest first.
pub fn messages_after(
    conn: &mut DbConnection,
    conversation_id: &str,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<MessageRow>> {
    conversation_messages::table
        .filter(conversation_messages::conversation_id.eq(conversation_id))
        .filter(conversation_messages::seq.gt(after))
        .order(conversation_messages::seq)
        .limit(limit)
        .select(MessageRow::as_select())
        .load(conn)
}

/// Everything an account said in conversations, oldest first (for the archive export).
pub fn by_sender(conn: &mut DbConnection, sender_pk: i64) -> QueryResult<Vec<MessageRow>> {
    conversation_messages::table
        .filter(conversation_messages::sender_pk.eq(sender_pk))
        .order(conversation_messages::seq)
        .select(MessageRow::as_select())
        .load(conn)
}

/// Deletes every message an account sent, in every conversation.
pub fn delete_by_sender(conn: &mut DbConnection, sender_pk: i64) -> QueryResult<usize> {
    diesel::delete(conversation_messages::table.filter(conversation_messages::sender_pk.eq(sender_pk))).execute(conn)
}
