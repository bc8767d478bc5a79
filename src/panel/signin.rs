//! Who is signed in to the panel: one-time sign-in links made on the command line, the
//! sessions they open, and the CSRF token of each session. Only SHA-256 hashes of links and
//! session secrets are stored; links, sessions and their revocation live in the database, so
//! every node sharing it agrees.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, NaiveDateTime};
use sha2::{Digest, Sha256};

use super::store::{self, AdminSessionRow, LinkRow, NewLink};
use crate::db::records::{self, Audit};
use crate::db::tenants::{self, Tenant};
use crate::db::{write_transaction, DbConnection, DbError};

/// A session ends this long after its last request.
pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
/// A session ends this long after sign-in, however busy.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(12);
/// How long a sign-in link works unless `--expires` says otherwise, and the most it may say.
pub const LINK_LIFETIME: Duration = Duration::minutes(15);
pub const LINK_LIFETIME_MAX: Duration = Duration::hours(24);
/// `last_seen_at` is written at most this often, so that reading pages is not a write each.
const TOUCH_EVERY: Duration = Duration::seconds(60);

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("no tenant named {0:?}")]
    UnknownTenant(String),
    #[error("a sign-in link lives at most {} hours", LINK_LIFETIME_MAX.num_hours())]
    LinkTooLong,
    #[error("an admin name is 1 to 64 printable characters")]
    BadName,
    /// Unknown, used or expired: one answer, so a guess learns nothing.
    #[error("This sign-in link is not valid: it has expired, has already been used, or was never issued. Ask for a new one (roster admin link).")]
    BadLink,
    #[error("You are not signed in, or your session has ended. Sign in with a new link (roster admin link).")]
    SignedOut,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for SignInError {
    fn from(err: diesel::result::Error) -> Self {
        SignInError::Db(err.into())
    }
}

fn secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The CSRF token of the session whose secret is `session_secret`: derived, not stored, and
/// useless without the cookie it comes from.
pub fn csrf_of(session_secret: &str) -> String {
    hash(&format!("csrf:{session_secret}"))
}

/// Compares two tokens in time that does not depend on where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who did something in the panel, as the audit log names them.
pub fn actor_name(name: &str) -> String {
    format!("panel:{name}")
}

/// An audit entry for what an admin did that concerns no account (sign-in, sign-out, revoking
/// a session, switching tenants): its `userId` is empty.
pub fn audit(
    conn: &mut DbConnection,
    tenant_id: &str,
    actor: &str,
    action: &str,
    at: NaiveDateTime,
) -> Result<(), DbError> {
    records::audit(conn, &Audit { tenant_id, actor, action, user_id: "", before: None, after: None, at })?;
    Ok(())
}

/// Audits that `actor`, an admin of `actor_tenant_id`, revoked `session`: in the session's home
/// tenant, naming the session, so that its tenant's log tells whose session ended; and in the
/// revoker's tenant too when that is another (an all-tenants admin's).
pub fn audit_revocation(
    conn: &mut DbConnection,
    session: &AdminSessionRow,
    actor: &str,
    actor_tenant_id: &str,
    at: NaiveDateTime,
) -> Result<(), DbError> {
    let what = format!("session {} revoked", session.id);
    let mut tenants = vec![session.home_tenant_id.as_str()];
    if actor_tenant_id != session.home_tenant_id {
        tenants.push(actor_tenant_id);
    }
    for tenant_id in tenants {
        let entry = Audit {
            tenant_id,
            actor,
            action: "admin.revoke_session",
            user_id: "",
            before: None,
            after: Some(&what),
            at,
        };
        records::audit(conn, &entry)?;
    }
    Ok(())
}

pub struct LinkRequest<'a> {
    pub tenant: &'a str,
    pub name: &'a str,
    pub all_tenants: bool,
    pub lifetime: Duration,
}

/// Records a new link with its audit entry, in one transaction; returns its secret (shown once)
/// and when it expires.
pub fn issue_link(
    conn: &mut DbConnection,
    req: &LinkRequest<'_>,
    now: NaiveDateTime,
) -> Result<(String, NaiveDateTime), SignInError> {
    if req.lifetime > LINK_LIFETIME_MAX || req.lifetime <= Duration::zero() {
        return Err(SignInError::LinkTooLong);
    }
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(SignInError::BadName);
    }
    let tenant =
        tenants::by_name(conn, req.tenant)?.ok_or_else(|| SignInError::UnknownTenant(req.tenant.to_owned()))?;
    let token = secret();
    let expires_at = now + req.lifetime;
    let link = NewLink {
        token_hash: &hash(&token),
        home_tenant_id: &tenant.id,
        name,
        all_tenants: req.all_tenants,
        created_at: now,
        expires_at,
    };
    write_transaction(conn, |conn| {
        store::insert_link(conn, &link)?;
        // Made on the command line, by whoever runs it there.
        audit(conn, &tenant.id, crate::admin::ACTOR, "admin.link_issued", now)?;
        Ok::<_, SignInError>(())
    })?;
    Ok((token, expires_at))
}

/// Whether `token` is a link that [`redeem`] would spend at `now`: a read, so that made-up
/// tokens never reach the writer.
pub fn usable(conn: &mut DbConnection, token: &str, now: NaiveDateTime) -> Result<bool, SignInError> {
    Ok(store::usable_link(conn, &hash(token), now)?)
}

/// Spends a link: a new session, its secret for the cookie, in one transaction with the audit
/// entry.
pub fn redeem(conn: &mut DbConnection, token: &str, now: NaiveDateTime) -> Result<String, SignInError> {
    write_transaction(conn, |conn| {
        let link: LinkRow = store::redeem_link(conn, &hash(token), now)?.ok_or(SignInError::BadLink)?;
        let session_secret = secret();
        let id = uuid::Uuid::new_v4().to_string();
        store::insert_session(conn, &id, &hash(&session_secret), &link, now, now + ABSOLUTE_TIMEOUT)?;
        audit(conn, &link.home_tenant_id, &actor_name(&link.name), "admin.sign_in", now)?;
        Ok(session_secret)
    })
}

/// A signed-in admin, as each request finds them.
#[derive(Debug, Clone)]
pub struct Admin {
    pub session: AdminSessionRow,
    /// The tenant the admin is looking at.
    pub tenant: Tenant,
    pub csrf: String,
}

impl Admin {
    pub fn actor(&self) -> String {
        actor_name(&self.session.name)
    }

    /// Whether its session's `last_seen_at` is due a write: at most once a minute, so that
    /// reading pages is not a write each.
    pub fn stale(&self, now: NaiveDateTime) -> bool {
        now - self.session.last_seen_at >= TOUCH_EVERY
    }
}

/// The session whose cookie holds `session_secret`, if it is open at `now`: not revoked, within
/// its absolute lifetime, and used within the idle timeout. Only reads: when [`Admin::stale`]
/// says so, the caller marks the session used with [`touch`].
pub fn authenticate(conn: &mut DbConnection, session_secret: &str, now: NaiveDateTime) -> Result<Admin, SignInError> {
    let session = store::session_by_token(conn, &hash(session_secret))?.ok_or(SignInError::SignedOut)?;
    let open = session.revoked_at.is_none() && now < session.expires_at && now < session.last_seen_at + IDLE_TIMEOUT;
    if !open {
        return Err(SignInError::SignedOut);
    }
    // A session limited to its tenant never looks elsewhere, whatever its row says.
    let tenant_id = if session.all_tenants { &session.tenant_id } else { &session.home_tenant_id };
    let tenant = tenants::by_id(conn, tenant_id)?.ok_or(SignInError::SignedOut)?;
    Ok(Admin { session, tenant, csrf: csrf_of(session_secret) })
}

/// Marks the admin's session used at `now`.
pub fn touch(conn: &mut DbConnection, admin: &Admin, now: NaiveDateTime) -> Result<(), SignInError> {
    Ok(store::touch_session(conn, &admin.session.id, now)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_equal_only_when_equal() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
        assert!(!same_token("", "a"));
    }

    #[test]
    fn a_sessions_csrf_token_depends_on_its_secret() {
        assert_eq!(csrf_of("one"), csrf_of("one"));
        assert_ne!(csrf_of("one"), csrf_of("two"));
        assert_ne!(csrf_of("one"), hash("one"), "the CSRF token is not the session's stored hash");
    }
}
