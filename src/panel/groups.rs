//! The Groups pages: a tenant's groups with their member counts, searchable by displayName or
//! externalId, and a group's members with their lifecycle state. Groups are read only here: the
//! IdP that provisions them owns them (RFC 7644 §3), so the panel shows them and changes nothing.
//!
//! Every read is bounded and served by an index of the groups migration: the list walks
//! `scim_groups_tenant_pk`, a search reads a range of `scim_groups_tenant_name` and one key of
//! `scim_groups_tenant_external_id`, and a group's members are a range of `group_members`' primary
//! key `(group_pk, member_id)` from the last member shown, so a page of a group of 10^5 members
//! reads 51 members.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use maud::{html, Markup};
use serde::Deserialize;

use super::pages::{render, signed_in};
use super::views::{badges, display_name, when, Section};
use super::PanelError;
use crate::db::groups::GroupRow;
use crate::db::query::prefix_successor;
use crate::db::schema::{group_members, scim_groups, users};
use crate::db::sql::like_literal;
use crate::db::tenants;
use crate::db::users::UserRow;
use crate::db::DbConnection;
use crate::lifecycle::{Policy, State};
use crate::scim::fold::fold;
use crate::state::AppState;

/// Groups, or members, per page.
const PAGE: i64 = 50;

/// Where a page of the group list starts: after a group's key when browsing, after a folded
/// displayName when searching (unique in a tenant, so a name is a cursor of its own).
enum Cursor<'a> {
    Browse(i64),
    Search { query: &'a str, after: Option<&'a str> },
}

/// One page of a tenant's groups: `limit` groups after the cursor. A search's first page also
/// holds the groups whose externalId is the query exactly, ahead of the displayName matches.
fn groups_page(
    conn: &mut DbConnection,
    tenant_id: &str,
    cursor: &Cursor<'_>,
    limit: i64,
) -> QueryResult<Vec<GroupRow>> {
    let base = || scim_groups::table.filter(scim_groups::tenant_id.eq(tenant_id.to_owned())).into_boxed();
    match cursor {
        Cursor::Browse(after) => base()
            .filter(scim_groups::pk.gt(*after))
            .order(scim_groups::pk)
            .limit(limit)
            .select(GroupRow::as_select())
            .load(conn),
        Cursor::Search { query, after } => {
            let folded = fold(query);
            let mut found = Vec::new();
            if after.is_none() {
                found = base()
                    .filter(scim_groups::external_id.eq(query.to_string()))
                    .order(scim_groups::pk)
                    .limit(limit)
                    .select(GroupRow::as_select())
                    .load(conn)?;
            }
            let like = format!("{}%", like_literal(&folded));
            let mut q = base()
                .filter(scim_groups::display_name_folded.ge(folded.clone()))
                .filter(scim_groups::display_name_folded.like(like).escape('\\'));
            if let Some(end) = prefix_successor(&folded) {
                q = q.filter(scim_groups::display_name_folded.lt(end));
            }
            if let Some(after) = after {
                q = q.filter(scim_groups::display_name_folded.gt(after.to_string()));
            }
            let named: Vec<GroupRow> =
                q.order(scim_groups::display_name_folded).limit(limit).select(GroupRow::as_select()).load(conn)?;
            for row in named {
                if !found.iter().any(|g: &GroupRow| g.pk == row.pk) {
                    found.push(row);
                }
            }
            Ok(found)
        }
    }
}

/// The number of direct members of each group, counted on `group_members`' primary key.
fn member_counts(conn: &mut DbConnection, group_pks: &[i64]) -> QueryResult<Vec<(i64, i64)>> {
    group_members::table
        .filter(group_members::group_pk.eq_any(group_pks))
        .group_by(group_members::group_pk)
        .select((group_members::group_pk, diesel::dsl::count_star()))
        .load(conn)
}

/// A member of a group as its page shows it: a person with their account, or a nested group.
pub struct Member {
    pub id: String,
    pub kind: String,
    /// The name the IdP sent with the membership, or the member's own.
    pub display: Option<String>,
    pub user: Option<UserRow>,
}

type MemberListing = (String, String, Option<String>, Option<i64>);

/// Up to `limit` members of a group after the member id `after`, in id order: a range of the
/// primary key, whatever the group's size; then the accounts of the people among them, by key.
fn members_page(conn: &mut DbConnection, group_pk: i64, after: &str, limit: i64) -> QueryResult<Vec<Member>> {
    let rows: Vec<MemberListing> = group_members::table
        .filter(group_members::group_pk.eq(group_pk))
        .filter(group_members::member_id.gt(after))
        .order(group_members::member_id)
        .limit(limit)
        .select((
            group_members::member_id,
            group_members::member_type,
            sql::<Nullable<Text>>(
                "COALESCE(group_members.display, \
                 (SELECT mg.display_name FROM scim_groups mg WHERE mg.pk = group_members.member_group_pk))",
            ),
            group_members::user_pk,
        ))
        .load(conn)?;
    let pks: Vec<i64> = rows.iter().filter_map(|r| r.3).collect();
    let mut accounts: Vec<UserRow> =
        users::table.filter(users::pk.eq_any(&pks)).select(UserRow::as_select()).load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, kind, display, user_pk)| {
            let user = user_pk.and_then(|pk| accounts.iter().position(|u| u.pk == pk)).map(|i| accounts.swap_remove(i));
            Member { id, kind, display, user }
        })
        .collect())
}

fn member_count(conn: &mut DbConnection, group_pk: i64) -> QueryResult<i64> {
    group_members::table.filter(group_members::group_pk.eq(group_pk)).count().get_result(conn)
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    after: Option<i64>,
    after_name: Option<String>,
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let query = query.into_inner();
    let q = query.q.as_deref().unwrap_or("").trim().to_owned();
    let tenant_id = admin.tenant.id.clone();
    let (q_db, after_name) = (q.clone(), query.after_name.clone());
    let after = query.after.unwrap_or(0);
    let (total, mut rows, counts) = state
        .db
        .run(move |conn| {
            let cursor = if q_db.is_empty() {
                Cursor::Browse(after)
            } else {
                Cursor::Search { query: &q_db, after: after_name.as_deref() }
            };
            let total = tenants::resource_count(conn, &tenant_id, "Group")?;
            let rows = groups_page(conn, &tenant_id, &cursor, PAGE + 1)?;
            let pks: Vec<i64> = rows.iter().map(|g| g.pk).collect();
            Ok::<_, PanelError>((total, rows, member_counts(conn, &pks)?))
        })
        .await?;
    // A search's first page may hold externalId matches beyond the page: the next page goes
    // on from the last displayName match shown.
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let next = more.then(|| {
        let mut url = form_urlencoded::Serializer::new(String::new());
        match rows.last() {
            Some(last) if !q.is_empty() => {
                url.append_pair("q", &q).append_pair("after_name", &fold(&last.display_name));
            }
            last => {
                url.append_pair("after", &last.map_or(0, |g| g.pk).to_string());
            }
        }
        format!("/admin/groups?{}", url.finish())
    });
    let count = |pk: i64| counts.iter().find(|(g, _)| *g == pk).map_or(0, |(_, n)| *n);
    let paged = query.after.is_some() || query.after_name.is_some();
    let first_page =
        if q.is_empty() { "/admin/groups".to_owned() } else { format!("/admin/groups?q={}", encode_query(&q)) };
    let body = html! {
        h1 { "Groups" }
        p.lead { (total) " groups in tenant " strong { (admin.tenant.name) } ". Groups are provisioned by the tenant's identity provider over SCIM; change them there." }
        form.search method="get" action="/admin/groups" role="search" {
            div.field {
                label for="q" { "Search" }
                input id="q" name="q" type="search" value=(q) autocomplete="off" aria-describedby="q-help"
                    placeholder="displayName or externalId";
                small id="q-help" { "A displayName matches from its start, in any case; an externalId matches exactly." }
            }
            button type="submit" { "Search" }
        }
        @if rows.is_empty() {
            p.empty { @if q.is_empty() { "No groups." } @else { "No group matches." } }
        } @else {
            div.table-wrap {
                table.groups {
                    caption.visually-hidden { "Groups" }
                    thead { tr { th scope="col" { "displayName" } th scope="col" { "externalId" } th.num scope="col" { "Members" } th scope="col" { "Changed" } } }
                    tbody {
                        @for g in &rows {
                            tr {
                                td { a href={ "/admin/groups/" (g.id) } { (g.display_name) } }
                                td.mono { (g.external_id.as_deref().unwrap_or("—")) }
                                td.num { (count(g.pk)) }
                                td { (when(g.updated_at)) }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if paged {
                a href=(first_page) { "← First page" }
            }
            @if let Some(next) = &next {
                a rel="next" href=(next) { "Next page →" }
            }
        }
    };
    render(&state, &admin, StatusCode::OK, "Groups", Section::Groups, body).await
}

fn encode_query(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[derive(Deserialize)]
pub struct GroupQuery {
    after: Option<String>,
}

pub async fn group(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<GroupQuery>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let id = path.into_inner();
    let after = query.into_inner().after.unwrap_or_default();
    let (tenant_id, lookup, from) = (admin.tenant.id.clone(), id.clone(), after.clone());
    let found = state
        .db
        .run(move |conn| {
            let Some(group) = crate::db::groups::find(conn, &tenant_id, &lookup)? else {
                return Ok::<_, PanelError>(None);
            };
            let total = member_count(conn, group.pk)?;
            let members = members_page(conn, group.pk, &from, PAGE + 1)?;
            Ok(Some((group, total, members)))
        })
        .await?;
    let Some((group, total, mut members)) = found else {
        return Err(PanelError::NotFound(format!("Tenant {} has no group with id {id:?}.", admin.tenant.name)));
    };
    let more = members.len() as i64 > PAGE;
    members.truncate(PAGE as usize);
    let next = members
        .last()
        .filter(|_| more)
        .map(|last| format!("/admin/groups/{}?after={}", group.id, encode_query(&last.id)));
    let policy = Policy::of(&admin.tenant);
    let body = group_page(&group, total, &members, &policy, state.clock.now(), !after.is_empty(), next);
    render(&state, &admin, StatusCode::OK, &group.display_name, Section::Groups, body).await
}

fn group_page(
    group: &GroupRow,
    total: i64,
    members: &[Member],
    policy: &Policy,
    now: NaiveDateTime,
    paged: bool,
    next: Option<String>,
) -> Markup {
    html! {
        p.crumbs { a href="/admin/groups" { "← Groups" } }
        h1 { (group.display_name) }
        section aria-labelledby="group-details" {
            h2 id="group-details" { "Group" }
            dl {
                dt { "displayName" } dd { (group.display_name) }
                dt { "id" } dd.mono { (group.id) }
                dt { "externalId" } dd.mono { (group.external_id.as_deref().unwrap_or("—")) }
                dt { "Created" } dd { (when(group.created_at)) }
                dt { "Last changed" } dd { (when(group.updated_at)) " (version " (group.version) ")" }
                dt { "Direct members" } dd { (total) }
            }
        }
        section aria-labelledby="members" {
            h2 id="members" { "Members " span.count { "(" (total) ")" } }
            p.lead { "A deactivated person stays a member for the tenant's " (policy.grace.num_days())
                "-day grace period; the background sweep then removes the membership." }
            @if members.is_empty() {
                p.empty { @if paged { "No more members." } @else { "No members." } }
            } @else {
                div.table-wrap {
                    table.members {
                        caption.visually-hidden { "Members of " (group.display_name) }
                        thead { tr { th scope="col" { "Name" } th scope="col" { "userName" } th scope="col" { "State" } th scope="col" { "Membership" } } }
                        tbody { @for m in members { (member_row(m, policy, now)) } }
                    }
                }
            }
            nav.pager aria-label="Member pages" {
                @if paged { a href={ "/admin/groups/" (group.id) } { "← First page" } }
                @if let Some(next) = &next { a rel="next" href=(next) { "Next page →" } }
            }
        }
    }
}

fn member_row(m: &Member, policy: &Policy, now: NaiveDateTime) -> Markup {
    html! {
        tr {
            @match &m.user {
                Some(user) => {
                    td { a href={ "/admin/people/" (user.id) } { (display_name(user)) } }
                    td.mono { (user.user_name) }
                    td { (badges(user, policy)) }
                    td { (membership(user, policy, now)) }
                }
                None if m.kind == "Group" => {
                    td { a href={ "/admin/groups/" (m.id) } { (m.display.as_deref().unwrap_or(&m.id)) } }
                    td { "—" }
                    td { span.badge { "Group" } }
                    td { "Nested group" }
                }
                None => {
                    td { (m.display.as_deref().unwrap_or(&m.id)) }
                    td.mono { (m.id) }
                    td { span.badge { "Unknown account" } }
                    td { "—" }
                }
            }
        }
    }
}

/// When a member's membership ends: for a deactivated person (whose badge says since when), at
/// deactivation plus the grace period (as on the person's page, see `people::dates`).
fn membership(user: &UserRow, policy: &Policy, now: NaiveDateTime) -> Markup {
    let dates = super::people::dates(user, policy);
    html! {
        @match (user.lifecycle_state, dates.deactivated_at, dates.memberships_removed_at) {
            (State::Active, _, _) => { "Member" }
            (_, Some(_), Some(removed)) => {
                span.removal {
                    @if removed <= now { "Removal due since " (when(removed)) "; the next sweep removes it" }
                    @else { "Removed at " (when(removed)) }
                }
            }
            _ => { "Removed by the next sweep" }
        }
    }
}
