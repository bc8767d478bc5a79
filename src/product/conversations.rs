//! Group conversations (docs/product.md, "Conversations"). "Group chat conversations won't be
//! disrupted, but no one would be able to send new messages directly to that person": a
//! deactivated member stays a member, their messages stay, the others keep posting, and only
//! they cannot post. Their membership ends with the sweep after the grace period, as their
//! group memberships do (`lifecycle::remove_memberships`); their messages stay until deletion.

use serde_json::{json, Value};

use super::person::People;
use super::{account, refused, ProductError};
use crate::clock::time;
use crate::context::Ctx;
use crate::db::conversations::{self as store, ConversationRow, MessageRow};
use crate::db::users::{self as user_store, UserRow};
use crate::db::{write_transaction, DbConnection};

/// A conversation is for a team, not a tenant-wide broadcast list.
pub const MAX_MEMBERS: u64 = 500;

/// A conversation to start: its title (not personal data: it names a topic) and its members.
pub struct NewConversation {
    pub title: Option<String>,
    pub member_ids: Vec<String>,
}

fn conversation(conn: &mut DbConnection, ctx: &Ctx, id: &str) -> Result<ConversationRow, ProductError> {
    store::find(conn, &ctx.tenant_id, id)?.ok_or_else(|| no_such(id))
}

fn no_such(id: &str) -> ProductError {
    ProductError::NoSuchConversation(id.to_owned())
}

/// The account `id`, locked while it is active: a deactivation at the same moment comes either
/// before (and it is refused) or after. Only active people join conversations and post.
fn active_account(conn: &mut DbConnection, ctx: &Ctx, id: &str, what: &'static str) -> Result<UserRow, ProductError> {
    let row = account(conn, ctx, id)?;
    if !user_store::lock_if_active(conn, row.pk)? {
        return Err(refused(&row, what));
    }
    Ok(row)
}

fn conversation_json(conn: &mut DbConnection, row: &ConversationRow, base: &str) -> Result<Value, ProductError> {
    let members = store::members(conn, &row.id)?;
    let people = People::load(conn, members.iter().copied())?;
    let members: Vec<_> = members.iter().map(|pk| people.get(Some(*pk), base)).collect();
    Ok(json!({"id": row.id, "title": row.title, "members": members, "createdAt": time(row.created_at)}))
}

fn message_json(row: &MessageRow, people: &People, base: &str) -> Value {
    json!({
        "id": row.id,
        "conversationId": row.conversation_id,
        "sender": people.get(Some(row.sender_pk), base),
        "body": row.body,
        "createdAt": time(row.created_at),
    })
}

pub fn create(conn: &mut DbConnection, ctx: &Ctx, new: NewConversation, base: &str) -> Result<Value, ProductError> {
    let mut ids = new.member_ids;
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() || ids.len() as u64 > MAX_MEMBERS {
        return Err(ProductError::Invalid(format!("memberIds must name 1 to {MAX_MEMBERS} people")));
    }
    if new.title.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(ProductError::Invalid("title must not be blank; leave it out for none".to_owned()));
    }
    write_transaction(conn, |conn| {
        // Accounts are locked in one order (by id), so two creations cannot wait on each other.
        let members = ids
            .iter()
            .map(|id| active_account(conn, ctx, id, "Only active people join a conversation"))
            .collect::<Result<Vec<_>, _>>()?;
        let row = ConversationRow {
            id: crate::db::new_id(),
            tenant_id: ctx.tenant_id.clone(),
            title: new.title.clone(),
            created_at: ctx.now,
        };
        store::insert(conn, &row)?;
        for member in &members {
            store::add_member(conn, &row.id, member.pk, ctx.now)?;
        }
        conversation_json(conn, &row, base)
    })
}

pub fn get(conn: &mut DbConnection, ctx: &Ctx, id: &str, base: &str) -> Result<Value, ProductError> {
    let row = conversation(conn, ctx, id)?;
    conversation_json(conn, &row, base)
}

/// Adds an active account; adding a member again changes nothing.
pub fn add_member(
    conn: &mut DbConnection,
    ctx: &Ctx,
    id: &str,
    user_id: &str,
    base: &str,
) -> Result<Value, ProductError> {
    write_transaction(conn, |conn| {
        // The account first, then the conversation: the order every write to an account takes.
        // The conversation is locked as for a message, not only held: the count below must stay
        // true until this member is written.
        let user = active_account(conn, ctx, user_id, "Only active people join a conversation")?;
        let row = store::lock_for_message(conn, &ctx.tenant_id, id)?.ok_or_else(|| no_such(id))?;
        if store::members(conn, &row.id)?.len() as u64 >= MAX_MEMBERS && !store::is_member(conn, &row.id, user.pk)? {
            return Err(ProductError::Invalid(format!("A conversation has at most {MAX_MEMBERS} members")));
        }
        store::add_member(conn, &row.id, user.pk, ctx.now)?;
        conversation_json(conn, &row, base)
    })
}

/// Removes a member, whatever their state; their messages stay.
pub fn remove_member(conn: &mut DbConnection, ctx: &Ctx, id: &str, user_id: &str) -> Result<(), ProductError> {
    write_transaction(conn, |conn| {
        let row = conversation(conn, ctx, id)?;
        let user = account(conn, ctx, user_id)?;
        if store::remove_member(conn, &row.id, user.pk)? {
            Ok(())
        } else {
            Err(ProductError::NoSuchMember { user_id: user_id.to_owned(), conversation_id: row.id })
        }
    })
}

/// A message from a member who is active.
pub fn post(
    conn: &mut DbConnection,
    ctx: &Ctx,
    id: &str,
    sender_id: &str,
    body: &str,
    base: &str,
) -> Result<Value, ProductError> {
    if body.trim().is_empty() {
        return Err(ProductError::Invalid("body must not be empty".to_owned()));
    }
    write_transaction(conn, |conn| {
        let sender = active_account(conn, ctx, sender_id, "The sender cannot post")?;
        let row = store::lock_for_message(conn, &ctx.tenant_id, id)?.ok_or_else(|| no_such(id))?;
        if !store::is_member(conn, &row.id, sender.pk)? {
            return Err(ProductError::NotAMember { user_id: sender.id, conversation_id: row.id });
        }
        let message = store::insert_message(conn, &crate::db::new_id(), &row.id, sender.pk, body, ctx.now)?;
        let people = People::load(conn, [sender.pk])?;
        Ok(message_json(&message, &people, base))
    })
}

/// Up to `limit` messages after the cursor `after` (0: from the first), oldest first, and the
/// cursor to continue from.
pub fn messages(
    conn: &mut DbConnection,
    ctx: &Ctx,
    id: &str,
    after: i64,
    limit: i64,
    base: &str,
) -> Result<Value, ProductError> {
    let row = conversation(conn, ctx, id)?;
    let messages = store::messages_after(conn, &row.id, after, limit)?;
    let people = People::load(conn, messages.iter().map(|m| m.sender_pk))?;
    let next = messages.last().map_or(after, |m| m.seq);
    let messages: Vec<Value> = messages.iter().map(|m| message_json(m, &people, base)).collect();
    Ok(json!({"messages": messages, "next": next}))
}
