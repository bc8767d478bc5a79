//! The panel's storage: sign-in links, admin sessions, and the reads its pages make. Every query
//! here is bounded and served by an index (see the migration `000017_admin_panel`), so a page
//! costs the same at a thousand accounts as at a million.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::lifecycle_state::LifecycleState;
use crate::db::query::prefix_successor;
use crate::db::schema::{admin_links, admin_sessions, audit_log, content, events, sessions, user_values, users};
use crate::db::sql::like_literal;
use crate::db::users::UserRow;
use crate::db::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = admin_links)]
pub struct LinkRow {
    pub home_tenant_id: String,
    pub name: String,
    pub all_tenants: bool,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

pub struct NewLink<'a> {
    pub token_hash: &'a str,
    pub home_tenant_id: &'a str,
    pub name: &'a str,
    pub all_tenants: bool,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert_link(conn: &mut DbConnection, link: &NewLink<'_>) -> QueryResult<()> {
    diesel::insert_into(admin_links::table)
        .values((
            admin_links::token_hash.eq(link.token_hash),
            admin_links::home_tenant_id.eq(link.home_tenant_id),
            admin_links::name.eq(link.name),
            admin_links::all_tenants.eq(link.all_tenants),
            admin_links::created_at.eq(link.created_at),
            admin_links::expires_at.eq(link.expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether an unused, unexpired link has this hash.
pub fn usable_link(conn: &mut DbConnection, token_hash: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let found: Option<String> = admin_links::table
        .filter(admin_links::token_hash.eq(token_hash))
        .filter(admin_links::used_at.is_null())
        .filter(admin_links::expires_at.gt(now))
        .select(admin_links::token_hash)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Marks the unused, unexpired link with this hash as used and returns it; None when there is
/// no such link. One conditional UPDATE: of two nodes redeeming the same link at once, one wins.
pub fn redeem_link(conn: &mut DbConnection, token_hash: &str, now: NaiveDateTime) -> QueryResult<Option<LinkRow>> {
    let usable = admin_links::table
        .filter(admin_links::token_hash.eq(token_hash))
        .filter(admin_links::used_at.is_null())
        .filter(admin_links::expires_at.gt(now));
    let taken = diesel::update(usable).set(admin_links::used_at.eq(now)).execute(conn)?;
    if taken == 0 {
        return Ok(None);
    }
    admin_links::table.find(token_hash).select(LinkRow::as_select()).first(conn).optional()
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = admin_sessions)]
pub struct AdminSessionRow {
    pub id: String,
    pub home_tenant_id: String,
    pub tenant_id: String,
    pub name: String,
    pub all_tenants: bool,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn insert_session(
    conn: &mut DbConnection,
    id: &str,
    token_hash: &str,
    link: &LinkRow,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(admin_sessions::table)
        .values((
            admin_sessions::id.eq(id),
            admin_sessions::token_hash.eq(token_hash),
            admin_sessions::home_tenant_id.eq(&link.home_tenant_id),
            admin_sessions::tenant_id.eq(&link.home_tenant_id),
            admin_sessions::name.eq(&link.name),
            admin_sessions::all_tenants.eq(link.all_tenants),
            admin_sessions::created_at.eq(now),
            admin_sessions::last_seen_at.eq(now),
            admin_sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn session_by_token(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<AdminSessionRow>> {
    admin_sessions::table
        .filter(admin_sessions::token_hash.eq(token_hash))
        .select(AdminSessionRow::as_select())
        .first(conn)
        .optional()
}

pub fn session_by_id(conn: &mut DbConnection, id: &str) -> QueryResult<Option<AdminSessionRow>> {
    admin_sessions::table.find(id).select(AdminSessionRow::as_select()).first(conn).optional()
}

pub fn touch_session(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(admin_sessions::table.find(id)).set(admin_sessions::last_seen_at.eq(now)).execute(conn)?;
    Ok(())
}

pub fn switch_tenant(conn: &mut DbConnection, id: &str, tenant_id: &str) -> QueryResult<()> {
    diesel::update(admin_sessions::table.find(id)).set(admin_sessions::tenant_id.eq(tenant_id)).execute(conn)?;
    Ok(())
}

/// Sessions made from links of `home_tenant_id` (every tenant's when None), newest first.
pub fn list_sessions(
    conn: &mut DbConnection,
    home_tenant_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AdminSessionRow>> {
    let mut query = admin_sessions::table.into_boxed();
    if let Some(home) = home_tenant_id {
        query = query.filter(admin_sessions::home_tenant_id.eq(home.to_owned()));
    }
    query
        .order((admin_sessions::created_at.desc(), admin_sessions::id))
        .limit(limit)
        .select(AdminSessionRow::as_select())
        .load(conn)
}

/// Revokes the session `id`, if it belongs to `home_tenant_id` (any when None); false when
/// there is no such open session.
pub fn revoke_session(
    conn: &mut DbConnection,
    id: &str,
    home_tenant_id: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let mut target = diesel::update(admin_sessions::table)
        .filter(admin_sessions::id.eq(id))
        .filter(admin_sessions::revoked_at.is_null())
        .into_boxed();
    if let Some(home) = home_tenant_id {
        target = target.filter(admin_sessions::home_tenant_id.eq(home.to_owned()));
    }
    Ok(target.set(admin_sessions::revoked_at.eq(now)).execute(conn)? == 1)
}

/// One page of a tenant's people in creation order, after the account numbered `after`,
/// optionally in one state: a walk of `users_tenant_pk` or `users_tenant_state_pk`.
pub fn people_page(
    conn: &mut DbConnection,
    tenant_id: &str,
    state: Option<LifecycleState>,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    let mut query = users::table
        .filter(users::tenant_id.eq(tenant_id.to_owned()))
        .filter(users::pk.gt(after))
        .filter(users::deleted_at.is_null())
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(users::lifecycle_state.eq(state));
    }
    query.order(users::pk).limit(limit).select(UserRow::as_select()).load(conn)
}

/// What a search term is compared with: the folded prefix of the userName key, the
/// displayName and the email values, and the externalId exactly.
pub struct Search<'a> {
    pub user_name_key: &'a str,
    pub folded: &'a str,
    pub exact: &'a str,
}

/// What a search found: the matching accounts, and whether any lookup stopped at its limit (then
/// more may match than were found).
pub struct Found {
    pub rows: Vec<UserRow>,
    pub more: bool,
}

/// Up to `limit` accounts from each of four index lookups, each bounded: a prefix is a range of
/// its index (and, for collations that order otherwise, LIKE checks each row the range gives),
/// never a scan of the tenant. The tenant, state and deletion filters apply inside each lookup,
/// before its limit, so hidden accounts never take the places of matching ones.
pub fn search_people(
    conn: &mut DbConnection,
    tenant_id: &str,
    search: &Search<'_>,
    state: Option<LifecycleState>,
    limit: i64,
) -> QueryResult<Found> {
    let mut found = Found { rows: Vec::new(), more: false };
    let add = |found: &mut Found, rows: Vec<UserRow>| {
        found.more |= rows.len() as i64 >= limit;
        found.rows.extend(rows);
    };
    let tenant = tenant_id.to_owned();
    let base = || {
        let mut q =
            users::table.filter(users::tenant_id.eq(tenant.clone())).filter(users::deleted_at.is_null()).into_boxed();
        if let Some(state) = state {
            q = q.filter(users::lifecycle_state.eq(state));
        }
        q
    };
    if !search.user_name_key.is_empty() {
        let (from, like) = (search.user_name_key.to_owned(), format!("{}%", like_literal(search.user_name_key)));
        let mut q =
            base().filter(users::user_name_folded.ge(from)).filter(users::user_name_folded.like(like).escape('\\'));
        if let Some(end) = prefix_successor(search.user_name_key) {
            q = q.filter(users::user_name_folded.lt(end));
        }
        let rows =
            q.order((users::user_name_folded, users::pk)).limit(limit).select(UserRow::as_select()).load(conn)?;
        add(&mut found, rows);
    }
    if !search.folded.is_empty() {
        let (from, like) = (search.folded.to_owned(), format!("{}%", like_literal(search.folded)));
        let mut q = base()
            .filter(users::display_name_folded.ge(from.clone()))
            .filter(users::display_name_folded.like(like.clone()).escape('\\'));
        if let Some(end) = prefix_successor(search.folded) {
            q = q.filter(users::display_name_folded.lt(end));
        }
        let rows =
            q.order((users::display_name_folded, users::pk)).limit(limit).select(UserRow::as_select()).load(conn)?;
        add(&mut found, rows);
        let mut emails = user_values::table
            .inner_join(users::table.on(users::pk.eq(user_values::user_pk)))
            .filter(user_values::tenant_id.eq(tenant.clone()))
            .filter(user_values::attr.eq("emails"))
            .filter(user_values::value_folded.ge(from))
            .filter(user_values::value_folded.like(like).escape('\\'))
            .filter(users::tenant_id.eq(tenant.clone()))
            .filter(users::deleted_at.is_null())
            .into_boxed();
        if let Some(end) = prefix_successor(search.folded) {
            emails = emails.filter(user_values::value_folded.lt(end));
        }
        if let Some(state) = state {
            emails = emails.filter(users::lifecycle_state.eq(state));
        }
        let rows = emails
            .order((user_values::value_folded, users::pk))
            .limit(limit)
            .select(UserRow::as_select())
            .load(conn)?;
        add(&mut found, rows);
    }
    if !search.exact.is_empty() {
        let rows = base()
            .filter(users::external_id.eq(search.exact.to_owned()))
            .order(users::pk)
            .limit(limit)
            .select(UserRow::as_select())
            .load(conn)?;
        add(&mut found, rows);
    }
    found.rows.sort_by_key(|row| row.pk);
    found.rows.dedup_by_key(|row| row.pk);
    Ok(found)
}

/// The number of a user's sessions still open at `now`.
pub fn open_sessions(conn: &mut DbConnection, user_pk: i64, now: NaiveDateTime) -> QueryResult<i64> {
    sessions::table
        .filter(sessions::user_pk.eq(user_pk))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .count()
        .get_result(conn)
}

/// How many posts, comments and messages a user wrote, by kind.
pub fn content_counts(conn: &mut DbConnection, user_pk: i64) -> QueryResult<Vec<(String, i64)>> {
    content::table
        .filter(content::author_pk.eq(user_pk))
        .group_by(content::kind)
        .select((content::kind, diesel::dsl::count_star()))
        .order(content::kind)
        .load(conn)
}

#[derive(Debug, Clone, Queryable)]
pub struct ContentItem {
    pub kind: String,
    pub body: String,
    pub created_at: NaiveDateTime,
}

/// A user's latest content, newest first.
pub fn latest_content(conn: &mut DbConnection, user_pk: i64, limit: i64) -> QueryResult<Vec<ContentItem>> {
    content::table
        .filter(content::author_pk.eq(user_pk))
        .order(content::created_at.desc())
        .limit(limit)
        .select((content::kind, content::body, content::created_at))
        .load(conn)
}

/// A user's latest events (kind and time only: payloads may hold profile data), newest first.
pub fn events_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    user_id: &str,
    limit: i64,
) -> QueryResult<Vec<(String, NaiveDateTime)>> {
    events::table
        .filter(events::tenant_id.eq(tenant_id))
        .filter(events::user_id.eq(user_id))
        .order(events::seq.desc())
        .limit(limit)
        .select((events::kind, events::created_at))
        .load(conn)
}

#[derive(Debug, Clone, Queryable)]
pub struct AuditItem {
    pub actor: String,
    pub action: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub at: NaiveDateTime,
}

/// A user's latest audit entries, newest first.
pub fn audit_of(conn: &mut DbConnection, tenant_id: &str, user_id: &str, limit: i64) -> QueryResult<Vec<AuditItem>> {
    audit_log::table
        .filter(audit_log::tenant_id.eq(tenant_id))
        .filter(audit_log::user_id.eq(user_id))
        .order(audit_log::seq.desc())
        .limit(limit)
        .select((audit_log::actor, audit_log::action, audit_log::state_before, audit_log::state_after, audit_log::at))
        .load(conn)
}
