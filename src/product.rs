//! The product side of the lifecycle (docs/lifecycle.md, "What the product does with each state"): sign-in sessions, content, and search,
//! each honouring account states through [`crate::lifecycle`]; group conversations
//! ([`conversations`]); people shown one way everywhere ([`person`]).

pub mod conversations;
pub mod groups;
pub mod person;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, NaiveDateTime};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::clock::time;
use crate::context::Ctx;
use crate::db::content::{self as content_store, ContentRow};
use crate::db::records;
use crate::db::sql::like_literal;
use crate::db::users::{self as user_store, UserRow};
use crate::db::{sessions, write_transaction, DbConnection, DbError};
use crate::lifecycle::State;
use crate::scim::fold::fold;
use crate::scim::user_name::user_name_key;
use person::People;

/// How long a session lasts unless ended or revoked.
pub const SESSION_TTL: Duration = Duration::hours(12);

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Why the product refused a request. The SCIM status of each is chosen where it becomes a
/// response (`crate::routes::errors`).
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    /// The account's state forbids it: only active accounts sign in, write and receive messages.
    #[error("{what}: the account {user_id} {}", refusal(*.state))]
    Refused { what: &'static str, user_id: String, state: State },
    #[error("No User with id {0:?}")]
    NoSuchUser(String),
    /// The recipient of a message was deleted while it was being written.
    #[error("No user with id {0:?}")]
    RecipientGone(String),
    #[error("No session with id {0:?}")]
    NoSuchSession(String),
    #[error("No post with id {0:?}")]
    NoSuchPost(String),
    #[error("No content with id {0:?}")]
    NoSuchContent(String),
    #[error("No conversation with id {0:?}")]
    NoSuchConversation(String),
    /// Only members post in a conversation.
    #[error("The account {user_id} is not a member of the conversation {conversation_id}")]
    NotAMember { user_id: String, conversation_id: String },
    #[error("The account {user_id} is not a member of the conversation {conversation_id}")]
    NoSuchMember { user_id: String, conversation_id: String },
    #[error("No Group with id {0:?}")]
    NoSuchGroup(String),
    /// A request value the product does not take.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] DbError),
}

impl From<diesel::result::Error> for ProductError {
    fn from(err: diesel::result::Error) -> Self {
        ProductError::Storage(err.into())
    }
}

fn refusal(state: State) -> &'static str {
    match state {
        State::FormerMember => "is a Former Member",
        _ => "is deactivated",
    }
}

fn refused(row: &UserRow, what: &'static str) -> ProductError {
    ProductError::Refused { what, user_id: row.id.clone(), state: row.lifecycle_state }
}

/// The account with this SCIM id in the caller's tenant.
fn account(conn: &mut DbConnection, ctx: &Ctx, id: &str) -> Result<UserRow, ProductError> {
    user_store::find(conn, &ctx.tenant_id, id)?.ok_or_else(|| ProductError::NoSuchUser(id.to_owned()))
}

/// Opens a session for an active user and returns (session id, token, expiry). The user row is
/// locked first, so a deactivation running at the same moment either comes before (and this is
/// refused) or after (and revokes this session).
pub fn open_session(
    conn: &mut DbConnection,
    ctx: &Ctx,
    user_id: &str,
) -> Result<(String, String, NaiveDateTime), ProductError> {
    write_transaction(conn, |conn| {
        let row = account(conn, ctx, user_id)?;
        if !user_store::lock_if_active(conn, row.pk)? {
            return Err(refused(&row, "No session can be opened"));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let expires = ctx.now + SESSION_TTL;
        sessions::insert(conn, &ctx.tenant_id, &id, row.pk, &hash(&token), ctx.now, expires)?;
        Ok((id, token, expires))
    })
}

/// RFC 7662 introspection: `{"active": false}` for anything not currently valid.
pub fn introspect(conn: &mut DbConnection, ctx: &Ctx, token: &str) -> Result<Value, ProductError> {
    let Some((session, user_id, user_name, state)) = sessions::by_token(conn, &ctx.tenant_id, &hash(token))? else {
        return Ok(json!({"active": false}));
    };
    let valid = session.revoked_at.is_none() && session.expires_at > ctx.now && state == State::Active;
    if !valid {
        return Ok(json!({"active": false}));
    }
    Ok(json!({
        "active": true,
        "token_type": "session",
        "sub": user_id,
        "username": user_name,
        "sid": session.id,
        "iat": session.created_at.and_utc().timestamp(),
        "exp": session.expires_at.and_utc().timestamp(),
    }))
}

pub fn end_session(conn: &mut DbConnection, ctx: &Ctx, id: &str) -> Result<(), ProductError> {
    if sessions::revoke(conn, &ctx.tenant_id, id, ctx.now)? {
        Ok(())
    } else {
        Err(ProductError::NoSuchSession(id.to_owned()))
    }
}

/// A post, comment or message to write.
pub struct NewContent {
    pub kind: String,
    pub author_id: String,
    pub body: String,
    pub parent_id: Option<String>,
    pub recipient_id: Option<String>,
}

pub fn create_content(conn: &mut DbConnection, ctx: &Ctx, new: NewContent, base: &str) -> Result<Value, ProductError> {
    let invalid = |detail: &str| ProductError::Invalid(detail.to_owned());
    if new.body.trim().is_empty() {
        return Err(invalid("body must not be empty"));
    }
    let id = crate::db::new_id();
    let view = write_transaction(conn, |conn| {
        let author = account(conn, ctx, &new.author_id)?;
        // Locked like a session opening: a deactivated account writes nothing.
        if !user_store::lock_if_active(conn, author.pk)? {
            return Err(refused(&author, "The author cannot write"));
        }
        let (parent_id, recipient_pk) = match new.kind.as_str() {
            "post" => (None, None),
            "comment" => {
                let parent = new.parent_id.as_deref().ok_or_else(|| invalid("a comment needs parentId"))?;
                // Locked, not just read: a deletion of the post's author committing between
                // the read and the insert would otherwise fail the insert's foreign key (500).
                let post = content_store::lock_post(conn, &ctx.tenant_id, parent)?
                    .ok_or_else(|| ProductError::NoSuchPost(parent.to_owned()))?;
                (Some(post), None)
            }
            "message" => {
                let to = new.recipient_id.as_deref().ok_or_else(|| invalid("a message needs recipientId"))?;
                let recipient = account(conn, ctx, to)?;
                if recipient.lifecycle_state != State::Active {
                    return Err(refused(&recipient, "New direct messages are refused"));
                }
                // Held, not just read: a deletion of the recipient committing between the read
                // and the insert would otherwise fail the insert's foreign key (500).
                if !user_store::hold_key(conn, recipient.pk)? {
                    return Err(ProductError::RecipientGone(to.to_owned()));
                }
                (None, Some(recipient.pk))
            }
            other => return Err(invalid(&format!("kind must be post, comment or message, not {other:?}"))),
        };
        let row = ContentRow {
            id: id.clone(),
            tenant_id: ctx.tenant_id.clone(),
            kind: new.kind.clone(),
            author_pk: author.pk,
            parent_id,
            recipient_pk,
            body: new.body.clone(),
            created_at: ctx.now,
        };
        content_store::insert(conn, &row)?;
        Ok(row)
    })?;
    Ok(content_page(conn, &[view], base)?.remove(0))
}

pub fn get_content(conn: &mut DbConnection, ctx: &Ctx, id: &str, base: &str) -> Result<Value, ProductError> {
    let row =
        content_store::find(conn, &ctx.tenant_id, id)?.ok_or_else(|| ProductError::NoSuchContent(id.to_owned()))?;
    Ok(content_page(conn, &[row], base)?.remove(0))
}

/// Content items as the API shows them, their authors and recipients as people
/// ([`person::person`]) loaded in one query for all of them.
fn content_page(conn: &mut DbConnection, rows: &[ContentRow], base: &str) -> Result<Vec<Value>, ProductError> {
    let people = People::load(conn, rows.iter().flat_map(|r| [Some(r.author_pk), r.recipient_pk]).flatten())?;
    Ok(rows.iter().map(|row| content_json(row, &people, base)).collect())
}

fn content_json(row: &ContentRow, people: &People, base: &str) -> Value {
    let author = people.get(Some(row.author_pk), base);
    let mut out =
        json!({"id": row.id, "kind": row.kind, "body": row.body, "author": author, "createdAt": time(row.created_at)});
    if let Some(parent) = &row.parent_id {
        out["parentId"] = json!(parent);
    }
    if row.kind == "message" {
        // A message keeps its recipient after the recipient's deletion (ON DELETE SET NULL):
        // the sender then sees the deleted placeholder.
        let recipient = people.recipient(row.recipient_pk, base);
        if let Some(id) = &recipient.id {
            out["recipientId"] = json!(id);
        }
        out["recipient"] = json!(recipient);
    }
    out
}

/// Search across people and content; deleted accounts and their content are simply gone.
pub fn search(conn: &mut DbConnection, ctx: &Ctx, query: &str, limit: i64, base: &str) -> Result<Value, ProductError> {
    let query = query.trim();
    if query.is_empty() {
        return Err(ProductError::Invalid("q must not be empty".to_owned()));
    }
    let user_name = format!("%{}%", like_literal(&user_name_key(query)));
    let folded = format!("%{}%", like_literal(&fold(query)));
    let found = user_store::search(conn, &ctx.tenant_id, &user_name, &folded, limit)?;
    let people = People::load(conn, found.iter().map(|p| p.pk))?.as_profiles();
    let literal = format!("%{}%", like_literal(query));
    let content = content_store::search(conn, &ctx.tenant_id, &literal, limit)?;
    Ok(json!({
        "people": found.iter().map(|p| people.get(Some(p.pk), base)).collect::<Vec<_>>(),
        "content": content_page(conn, &content, base)?,
    }))
}

/// The event feed (docs/lifecycle.md, "What the product does with each state"): events after `after`, oldest first.
pub fn events(conn: &mut DbConnection, ctx: &Ctx, after: i64, limit: i64) -> Result<Value, ProductError> {
    let rows = records::events_after(conn, &ctx.tenant_id, after, limit)?;
    let next = rows.last().map(|r| r.tenant_seq).unwrap_or(after);
    let events: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let data: Value = serde_json::from_str(&r.payload).unwrap_or(Value::Null);
            json!({"id": r.tenant_seq, "type": r.kind, "userId": r.user_id, "data": data, "createdAt": time(r.created_at)})
        })
        .collect();
    Ok(json!({"events": events, "next": next}))
}

/// Audit entries, as `GET /api/v1/audit` and `roster audit` show them.
pub fn audit_json(row: &records::AuditRow) -> Value {
    json!({
        "id": row.tenant_seq,
        "tenantId": row.tenant_id,
        "actor": row.actor,
        "action": row.action,
        "userId": row.user_id,
        "before": row.state_before,
        "after": row.state_after,
        "at": time(row.at),
    })
}
