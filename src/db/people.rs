//! People as others see them: what the product shows of an account wherever it appears (an
//! author, a sender, a recipient, a member, a search result), loaded for many at once.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::lifecycle_state::LifecycleState;
use super::schema::{content, conversation_messages, former_member_names, users};
use super::users::UserRow;
use super::DbConnection;
use crate::scim::resource::Document;

/// The columns of an account the product shows, and a Former Member's frozen name.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct Seen {
    pub id: String,
    pub user_name: String,
    /// The SCIM document, the name is taken from (see [`Seen::name`]).
    pub data: String,
    pub lifecycle_state: LifecycleState,
    pub deactivated_at: Option<NaiveDateTime>,
    /// Deleted for SCIM under the `deactivate-only` policy, kept for the product.
    pub deleted_at: Option<NaiveDateTime>,
    #[diesel(select_expression = former_member_names::name.nullable())]
    #[diesel(select_expression_type = diesel::dsl::Nullable<former_member_names::name>)]
    pub frozen_name: Option<String>,
}

impl Seen {
    /// What the person is called: [`name_of`] their document, else their userName.
    pub fn name(&self) -> String {
        let doc = match serde_json::from_str(&self.data) {
            Ok(serde_json::Value::Object(doc)) => doc,
            _ => Document::new(),
        };
        name_of(&doc).unwrap_or_else(|| self.user_name.clone())
    }
}

/// What a person is called, by their SCIM document: the displayName, else `name.formatted`, else
/// `name.givenName` and `name.familyName`; None when it has none of them (the userName, often an
/// email address or UPN, is not a name to show in its place when it can be helped).
pub fn name_of(doc: &Document) -> Option<String> {
    fn text(v: Option<&serde_json::Value>) -> Option<&str> {
        v.and_then(|v| v.as_str()).map(str::trim).filter(|t| !t.is_empty())
    }
    let name = doc.get("name");
    if let Some(shown) = text(doc.get("displayName")).or_else(|| text(name.and_then(|n| n.get("formatted")))) {
        return Some(shown.to_owned());
    }
    let parts: Vec<&str> =
        ["givenName", "familyName"].iter().filter_map(|part| text(name.and_then(|n| n.get(*part)))).collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The accounts with these primary keys, by key, in one query. A key with no account (deleted
/// since) is absent from the answer.
pub fn load(conn: &mut DbConnection, pks: impl IntoIterator<Item = i64>) -> QueryResult<HashMap<i64, Seen>> {
    let mut pks: Vec<i64> = pks.into_iter().collect();
    pks.sort_unstable();
    pks.dedup();
    if pks.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, Seen)> = users::table
        .left_join(former_member_names::table.on(former_member_names::user_pk.eq(users::pk)))
        .filter(users::pk.eq_any(&pks))
        .select((users::pk, Seen::as_select()))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// At the Former Member transition (in its transaction): keeps the name `row` shows now as the
/// one the content and conversation messages they wrote show from then on. A person who wrote
/// nothing, or who has no name but their userName, leaves no name behind: they show as
/// "Former Member" everywhere.
pub fn freeze_name(conn: &mut DbConnection, row: &UserRow) -> QueryResult<()> {
    let Some(name) = name_of(&row.document()) else { return Ok(()) };
    let wrote = diesel::select(diesel::dsl::exists(content::table.filter(content::author_pk.eq(row.pk))))
        .get_result::<bool>(conn)?;
    let sent = wrote
        || diesel::select(diesel::dsl::exists(
            conversation_messages::table.filter(conversation_messages::sender_pk.eq(row.pk)),
        ))
        .get_result::<bool>(conn)?;
    if !sent {
        return Ok(());
    }
    diesel::delete(former_member_names::table.find(row.pk)).execute(conn)?;
    diesel::insert_into(former_member_names::table)
        .values((former_member_names::user_pk.eq(row.pk), former_member_names::name.eq(name)))
        .execute(conn)?;
    Ok(())
}

/// The group `id` of the tenant: its displayName, the keys of the accounts in it and the ids and
/// names of the groups in it (nested), or None when there is no such group.
#[allow(clippy::type_complexity)]
pub fn group_members(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> QueryResult<Option<(String, Vec<i64>, Vec<(String, String)>)>> {
    use super::schema::{group_members, scim_groups};
    let Some((pk, name)) = scim_groups::table
        .filter(scim_groups::tenant_id.eq(tenant_id))
        .filter(scim_groups::id.eq(id))
        .select((scim_groups::pk, scim_groups::display_name))
        .first::<(i64, String)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let users: Vec<i64> = group_members::table
        .filter(group_members::group_pk.eq(pk))
        .filter(group_members::user_pk.is_not_null())
        .order(group_members::user_pk)
        .select(group_members::user_pk.assume_not_null())
        .load(conn)?;
    let nested = group_members::table.filter(group_members::group_pk.eq(pk)).select(group_members::member_group_pk);
    let groups: Vec<(String, String)> = scim_groups::table
        .filter(scim_groups::pk.nullable().eq_any(nested))
        .order(scim_groups::display_name)
        .select((scim_groups::id, scim_groups::display_name))
        .load(conn)?;
    Ok(Some((name, users, groups)))
}
