//! What can be done to a User through SCIM: create, read, list, replace, patch, delete.
//! Handlers parse the request; this module applies the rules and calls storage, one
//! transaction per request.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::clock::time;
use crate::db::query::{Compiler, Resource};
use crate::db::users::{self as store, UserRead, UserRow};
use crate::db::{single_statement_write, write_transaction, Backend, Database, DbConnection};
use crate::error::{ScimError, ScimType};
use crate::lifecycle::{self, Actor, Deleted, LifecycleError, Policy, State};
use crate::listing::store::Users as Stored;
use crate::listing::{self, paginate, projection, Anchors, Listed};
use crate::scim::list::{ListRequest, Page};
use crate::scim::patch::{self, PatchOp};
use crate::scim::projection::Projection;
use crate::scim::rendered::{self, Member, Members, Rendered, Written};
use crate::scim::resource::{self, Document};
use crate::scim::schema::{self, USER_RESOURCE};
use crate::scim::user_name;
use crate::scim::version::{check_version, etag};

pub use crate::context::Ctx;

fn tenant_gone() -> ScimError {
    LifecycleError::TenantGone.into()
}

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("No User with id {id:?}"))
}

/// How often a read-modify-write starts over after losing a race: each round one of the
/// contenders wins, so this many concurrent writers to one user all get through.
const MAX_ATTEMPTS: u32 = 64;

/// Runs a read-modify-write. When another request changed the user between the read and the
/// write and the client did not pin a version with If-Match, it starts over on fresh data; with
/// If-Match the client gets the 412 it asked for.
fn read_modify_write<T>(
    if_match: Option<&str>,
    mut attempt: impl FnMut() -> Result<T, ScimError>,
) -> Result<T, ScimError> {
    let mut attempts = 0;
    loop {
        match attempt() {
            Err(e) if e.is_changed() && if_match.is_none() && attempts < MAX_ATTEMPTS => attempts += 1,
            other => return other,
        }
    }
}

/// The tenant's lifecycle policy, read in the request's transaction.
pub fn policy(conn: &mut DbConnection, tenant_id: &str) -> Result<Policy, ScimError> {
    let tenant = crate::db::tenants::by_id(conn, tenant_id)?.ok_or_else(tenant_gone)?;
    Ok(Policy::of(&tenant))
}

fn actor<'a>(ctx: &'a Ctx, policy: &'a Policy) -> Actor<'a> {
    Actor { tenant_id: &ctx.tenant_id, name: &ctx.actor, policy, now: ctx.now }
}

/// Splits what the lifecycle owns off a parsed document: `active` and the Roster extension's
/// `formerMember` (its readOnly attributes were already dropped). An absent `active` is
/// `default`: true for a new user, the current state for a PUT — a state changes only when a
/// client says so.
fn take_state(doc: &mut Document, default: bool) -> (bool, Option<bool>) {
    let active = doc.remove("active").and_then(|v| v.as_bool()).unwrap_or(default);
    let former = doc.remove(schema::ROSTER_USER).and_then(|ext| ext.get("formerMember").and_then(Value::as_bool));
    (active, former)
}

/// A PATCH may set the lifecycle's attributes but not remove them: an account is always either
/// active or not (RFC 7644 §3.5.2.2 lets a provider refuse such a remove).
fn refuse_removed_state(patched: &Document) -> Result<(), ScimError> {
    let former = patched.get(schema::ROSTER_USER).and_then(|ext| ext.get("formerMember"));
    if patched.get("active").is_none() || former.is_none() {
        let name = if patched.get("active").is_none() { "active" } else { "formerMember" };
        return Err(ScimError::bad_request(
            ScimType::Mutability,
            format!(
                "\"{name}\" cannot be removed: it is the account's lifecycle state; set it to true or false instead"
            ),
        ));
    }
    Ok(())
}

pub fn get(conn: &mut DbConnection, ctx: &Ctx, id: &str) -> Result<UserRow, ScimError> {
    store::find(conn, &ctx.tenant_id, id)?.ok_or_else(|| not_found(id))
}

/// Holds a new userName to the profile (see [`user_name`]). A userName stored before the profile
/// existed is kept when a write leaves it unchanged, so that the identity provider can still
/// PUT the account back as it knows it, or deactivate it.
fn check_user_name(doc: &Document, stored: Option<&str>) -> Result<(), ScimError> {
    let Some(name) = doc.get("userName").and_then(Value::as_str) else { return Ok(()) };
    // A blank userName is left to the required check, which names it as missing.
    if Some(name) == stored || name.trim().is_empty() {
        return Ok(());
    }
    match user_name::refusal(name) {
        None => Ok(()),
        Some(why) => {
            // Debug-escaped, so that the refused character cannot reorder or hide the message.
            let shown: String = name.chars().take(60).collect();
            let more = if shown.len() < name.len() { "…" } else { "" };
            Err(ScimError::bad_request(ScimType::InvalidValue, format!("\"userName\" {why}, in {shown:?}{more}")))
        }
    }
}

/// Refuses what only a tenant with strict validation refuses (see [`resource::strict_refusal`]).
/// The tenant is read only when the document has such a value, so clean writes cost nothing more.
/// Values the user already had are kept: turning strictness on must not block the IdP from
/// deactivating an account stored before.
fn check_strict(
    conn: &mut DbConnection,
    tenant_id: &str,
    doc: &Document,
    stored: Option<&UserRow>,
) -> Result<(), ScimError> {
    if resource::strict_refusal(doc, None).is_none() {
        return Ok(());
    }
    let before = stored.map(UserRow::document);
    let Some(refusal) = resource::strict_refusal(doc, before.as_ref()) else { return Ok(()) };
    let tenant = crate::db::tenants::by_id(conn, tenant_id)?.ok_or_else(tenant_gone)?;
    if tenant.strict_validation {
        Err(refusal)
    } else {
        Ok(())
    }
}

/// Creates a user from `doc`. It reads only the document and the database, so it may run
/// again from the start (see [`crate::db::Database::write_replayable`]).
pub fn create(conn: &mut DbConnection, ctx: &Ctx, doc: &Document) -> Result<UserRow, ScimError> {
    let checked = check_create(conn, ctx, doc.clone())?;
    let create =
        |conn: &mut DbConnection| lifecycle::create(conn, &ctx.tenant_id, &ctx.actor, ctx.now, &checked.account());
    if !checked.becomes_former_member() {
        // A deleted tenant is caught by the row's foreign key (`LifecycleError::TenantGone`).
        return Ok(single_statement_write(conn, create)?);
    }
    write_transaction(conn, |conn| {
        let policy = policy(conn, &ctx.tenant_id)?;
        let row = create(conn)?;
        Ok(lifecycle::become_former_member(conn, &actor(ctx, &policy), &row)?)
    })
}

/// A new user that passed every check a create makes before writing, with its id and state:
/// what [`create`] writes, and what a Bulk request gathers for [`create_many`].
pub struct CheckedCreate {
    id: String,
    doc: Document,
    active: bool,
    former: Option<bool>,
}

impl CheckedCreate {
    /// Whether the account is to be a Former Member at once: a transition of its own after the
    /// insert, in a transaction, so never one of [`create_many`]'s users.
    pub fn becomes_former_member(&self) -> bool {
        self.former == Some(true)
    }

    fn account(&self) -> lifecycle::NewAccount<'_> {
        lifecycle::NewAccount { id: &self.id, doc: &self.doc, active: self.active }
    }
}

/// The checks of a create, which write nothing: the userName profile and, for a tenant that
/// asks for it, strict validation.
pub fn check_create(conn: &mut DbConnection, ctx: &Ctx, mut doc: Document) -> Result<CheckedCreate, ScimError> {
    check_user_name(&doc, None)?;
    check_strict(conn, &ctx.tenant_id, &doc, None)?;
    let (active, former) = take_state(&mut doc, true);
    Ok(CheckedCreate { id: crate::db::new_id(), doc, active, former })
}

/// Creates `users` as [`create`] creates each, none of which [`becomes a Former
/// Member`](CheckedCreate::becomes_former_member): on PostgreSQL all of them one statement, its
/// own transaction. Each has its own result (a taken userName fails only its own user); the
/// outer error fails them all, and then nothing of them was stored on PostgreSQL.
pub fn create_many(
    conn: &mut DbConnection,
    ctx: &Ctx,
    users: &[CheckedCreate],
) -> Result<Vec<Result<UserRow, ScimError>>, ScimError> {
    debug_assert!(!users.iter().any(CheckedCreate::becomes_former_member));
    let accounts: Vec<lifecycle::NewAccount<'_>> = users.iter().map(CheckedCreate::account).collect();
    let create = |conn: &mut DbConnection| lifecycle::create_many(conn, &ctx.tenant_id, &ctx.actor, ctx.now, &accounts);
    let rows = single_statement_write(conn, create)?;
    Ok(rows.into_iter().map(|row| row.map_err(ScimError::from)).collect())
}

/// What a read-modify-write starts from: the user as reads show it, and its tenant's policy.
fn for_write(conn: &mut DbConnection, ctx: &Ctx, id: &str) -> Result<(View, Policy), ScimError> {
    let (read, tenant) = store::read_with_tenant(conn, &ctx.tenant_id, id)?.ok_or_else(|| not_found(id))?;
    Ok((read_views(vec![read]).remove(0), Policy::of(&tenant)))
}

/// The user a write stored, with the groups read at its start: a user write changes no
/// membership except by making the account a Former Member, which removes them all.
fn written(row: UserRow, groups: Vec<(String, String)>) -> View {
    let groups = if row.lifecycle_state == State::FormerMember { Vec::new() } else { groups };
    View { row, groups }
}

/// A PUT or PATCH of one user: what the client sent, and the If-Match it pinned. It holds what
/// it needs, so [`Rewrite::run`] may run again from the start (see
/// [`crate::db::Database::write_replayable`]).
///
/// It runs as a read ([`Rewrite::plan`]: the user, its tenant's policy, the profile and state
/// the request asks for, and every check) and a write ([`Rewrite::write`]: the row, its index
/// and records). The read is not in the write's transaction: the write applies only to the
/// version read, and [`read_modify_write`] starts over when it lost a race. So on PostgreSQL a
/// write that is one statement is also its own transaction (a read and one statement, instead
/// of BEGIN, the read, two to four writes and COMMIT).
pub struct Rewrite {
    ctx: Ctx,
    id: String,
    if_match: Option<String>,
    change: Change,
}

/// What a [`Rewrite`] asks for.
enum Change {
    /// PUT: the body replaces every writable attribute (RFC 7644 §3.5.1).
    Put(Document),
    /// PATCH: every operation or none (RFC 7644 §3.5.2).
    Patch(Vec<PatchOp>),
}

/// A [`Rewrite`] read and checked, ready to write: the user as read (the write applies to its
/// version only), its groups and tenant policy, and what the request makes of it.
struct Planned {
    row: UserRow,
    groups: Vec<(String, String)>,
    policy: Policy,
    doc: Document,
    active: bool,
    former: Option<bool>,
}

impl Rewrite {
    /// PUT of the user `id`.
    pub fn put(ctx: Ctx, id: String, doc: Document, if_match: Option<String>) -> Rewrite {
        Rewrite { ctx, id, if_match, change: Change::Put(doc) }
    }

    /// PATCH of the user `id`.
    pub fn patch(ctx: Ctx, id: String, ops: Vec<PatchOp>, if_match: Option<String>) -> Rewrite {
        Rewrite { ctx, id, if_match, change: Change::Patch(ops) }
    }

    /// The id of the user it rewrites.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn method(&self) -> lifecycle::Method {
        match self.change {
            Change::Put(_) => lifecycle::Method::Put,
            Change::Patch(_) => lifecycle::Method::Patch,
        }
    }

    /// The profile, `active` and `formerMember` the request makes of `row`.
    fn next(&self, row: &UserRow) -> Result<(Document, bool, Option<bool>), ScimError> {
        match &self.change {
            Change::Put(doc) => {
                check_user_name(doc, Some(&row.user_name))?;
                let mut doc = doc.clone();
                let (active, former) = take_state(&mut doc, row.active);
                Ok((doc, active, former))
            }
            Change::Patch(ops) => {
                let mut current = row.document();
                current.insert("active".into(), Value::Bool(row.active));
                current.insert(
                    schema::ROSTER_USER.into(),
                    json!({"formerMember": row.lifecycle_state == State::FormerMember}),
                );
                let mut patched = patch::apply(&USER_RESOURCE, &current, ops)?;
                check_user_name(&patched, Some(&row.user_name))?;
                refuse_removed_state(&patched)?;
                let (active, former) = take_state(&mut patched, row.active);
                Ok((patched, active, former))
            }
        }
    }

    /// Reads the user and works out and checks the write, writing nothing.
    fn plan(&self, conn: &mut DbConnection) -> Result<Planned, ScimError> {
        let (View { row, groups }, policy) = for_write(conn, &self.ctx, &self.id)?;
        check_version("User", row.version, self.if_match.as_deref())?;
        let (doc, active, former) = self.next(&row)?;
        check_strict(conn, &self.ctx.tenant_id, &doc, Some(&row))?;
        Ok(Planned { row, groups, policy, doc, active, former })
    }

    /// The read and the write on one connection, started over after a lost race.
    pub fn run(&self, conn: &mut DbConnection) -> Result<View, ScimError> {
        read_modify_write(self.if_match.as_deref(), || {
            let planned = self.plan(conn)?;
            self.write(conn, planned)
        })
    }

    /// Writes what [`Rewrite::plan`] worked out, if the user is still at the version it read.
    fn write(&self, conn: &mut DbConnection, planned: Planned) -> Result<View, ScimError> {
        let Planned { row, groups, policy, doc, active, former } = planned;
        let actor = actor(&self.ctx, &policy);
        let method = self.method();
        let write = |conn: &mut DbConnection| lifecycle::update(conn, &actor, &row, method, &doc, active, former);
        let row = if lifecycle::update_is_one_statement(&row, former) {
            single_statement_write(conn, write)?
        } else {
            write_transaction(conn, write)?
        };
        Ok(written(row, groups))
    }
}

/// DELETE, under the tenant's delete policy. Ok(None) when the account is gone, Ok(Some) when
/// the policy only deactivated it.
pub fn delete(
    conn: &mut DbConnection,
    ctx: &Ctx,
    id: &str,
    if_match: Option<&str>,
) -> Result<Option<UserRow>, ScimError> {
    read_modify_write(if_match, || {
        write_transaction(conn, |conn| {
            let (View { row, .. }, policy) = for_write(conn, ctx, id)?;
            check_version("User", row.version, if_match)?;
            match lifecycle::delete(conn, &actor(ctx, &policy), &row)? {
                Deleted::Gone => Ok(None),
                Deleted::Deactivated(row) => Ok(Some(row)),
            }
        })
    })
}

/// A user ready to show: the row and the groups it belongs to directly, as (id, displayName).
pub struct View {
    pub row: UserRow,
    pub groups: Vec<(String, String)>,
}

/// Users as read with their groups (see [`store::UserRead`]).
pub fn read_views(rows: Vec<UserRead>) -> Vec<View> {
    rows.into_iter().map(|read| View { groups: read.groups(), row: read.row }).collect()
}

/// The user with this id, with its groups, as GET shows it.
pub fn read(conn: &mut DbConnection, ctx: &Ctx, id: &str) -> Result<View, ScimError> {
    let read = store::read(conn, &ctx.tenant_id, id)?.ok_or_else(|| not_found(id))?;
    Ok(read_views(vec![read]).remove(0))
}

/// A user just created, ready to show: a new account belongs to no group yet.
pub fn created_view(row: UserRow) -> View {
    View { row, groups: Vec::new() }
}

/// The full SCIM representation of a stored user (before attribute projection).
pub fn representation(view: &View, base: &str) -> Value {
    let mut out: Map<String, Value> = view.row.document();
    for (name, value) in added_members(view, base) {
        out.insert(name.into(), serde_json::to_value(value).expect("an added member is JSON"));
    }
    let schemas = schemas_of(|id| out.contains_key(id));
    out.insert("schemas".into(), serde_json::to_value(schemas).expect("schemas are JSON"));
    Value::Object(out)
}

/// The user as a response shows it under `projection`. With the default projection a canonical
/// stored document goes out as the text it is stored as, beside the members the server adds
/// (see [`crate::scim::rendered`]); that is the same JSON as projecting [`representation`]
/// (`text_and_value_agree` below holds the two together).
pub fn shown(view: &View, base: &str, projection: &Projection) -> Rendered {
    to_write(view, base, projection).render()
}

/// The user as [`shown`] shows it, not yet written.
fn to_write<'a>(view: &'a View, base: &str, projection: &Projection) -> Written<'a, Added<'a>> {
    if projection.is_default() {
        if let Some(members) = default_members(view, base) {
            return Written::Members(members);
        }
    }
    Written::Value(projection.apply(&USER_RESOURCE, representation(view, base)))
}

/// A member the server adds to the stored document, written as it is (no `serde_json::Value`
/// is built for a response written from the stored text). The structs' fields are in the order
/// of their names, as a `serde_json::Map` writes them.
#[derive(Serialize)]
#[serde(untagged)]
enum Added<'a> {
    Text(&'a str),
    Bool(bool),
    Groups(Vec<GroupItem<'a>>),
    Lifecycle(Lifecycle),
    Meta(Meta),
    Schemas(Vec<&'static str>),
}

/// An item of `groups`.
#[derive(Serialize)]
struct GroupItem<'a> {
    #[serde(rename = "$ref")]
    reference: String,
    display: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    value: &'a str,
}

/// The Roster extension: the account's lifecycle.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Lifecycle {
    #[serde(skip_serializing_if = "Option::is_none")]
    deactivated_at: Option<String>,
    former_member: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    former_member_since: Option<String>,
    lifecycle_state: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    created: String,
    last_modified: String,
    location: String,
    resource_type: &'static str,
    version: String,
}

/// The members the server adds to the stored document, in the order of their names: `active`,
/// `groups`, `id`, `meta` and the lifecycle extension (`schemas` follows from the extensions
/// present, [`schemas_of`]).
fn added_members<'a>(view: &'a View, base: &str) -> Vec<(&'static str, Added<'a>)> {
    let row = &view.row;
    let mut members = Vec::with_capacity(6);
    members.push(("active", Added::Bool(row.active)));
    // A user in no group has no `groups`: an empty list is unassigned (RFC 7643 §2.5).
    if !view.groups.is_empty() {
        let items = view.groups.iter().map(|(id, name)| GroupItem {
            reference: format!("{base}/Groups/{id}"),
            display: name,
            kind: "direct",
            value: id,
        });
        members.push(("groups", Added::Groups(items.collect())));
    }
    members.push(("id", Added::Text(&row.id)));
    let meta = Meta {
        created: time(row.created_at),
        last_modified: time(row.updated_at),
        location: format!("{base}/Users/{}", row.id),
        resource_type: "User",
        version: etag(row.version),
    };
    members.push(("meta", Added::Meta(meta)));
    let lifecycle = Lifecycle {
        deactivated_at: row.deactivated_at.map(time),
        former_member: row.lifecycle_state == State::FormerMember,
        former_member_since: row.former_member_since.map(time),
        lifecycle_state: row.lifecycle_state.as_str(),
    };
    members.push((schema::ROSTER_USER, Added::Lifecycle(lifecycle)));
    members
}

/// `schemas`: the core schema and each extension the representation holds (`holds`).
fn schemas_of(holds: impl Fn(&str) -> bool) -> Added<'static> {
    let extensions = USER_RESOURCE.extensions.iter().map(|(ext, _)| ext.id).filter(|id| holds(id));
    Added::Schemas(std::iter::once(schema::USER).chain(extensions).collect())
}

/// The default representation's members: the stored text's and the ones the server adds; `None`
/// when the stored document is not canonical or names a member the server adds, which
/// [`representation`] replaces.
fn default_members<'a>(view: &'a View, base: &str) -> Option<Members<'a, Added<'a>>> {
    // Both in the order of their names: merged, each member moved once.
    let stored = rendered::canonical_members(&view.row.data)?;
    if stored.iter().any(|(name, _)| ["schemas", "password"].iter().any(|n| n.eq_ignore_ascii_case(name))) {
        return None;
    }
    let mut added = added_members(view, base);
    if added.iter().any(|(name, _)| stored.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))) {
        return None;
    }
    let schemas = schemas_of(|id| stored.iter().any(|(n, _)| *n == id) || added.iter().any(|(n, _)| *n == id));
    let at = added.partition_point(|(name, _)| *name < "schemas");
    added.insert(at, ("schemas", schemas));
    let mut members: Vec<(&str, Member<'_, Added<'_>>)> = Vec::with_capacity(stored.len() + added.len());
    let mut added = added.into_iter().peekable();
    for (name, text) in stored {
        while let Some((added_name, value)) = added.next_if(|(added_name, _)| *added_name < name) {
            members.push((added_name, Member::Value(value)));
        }
        members.push((name, Member::Text(text)));
    }
    members.extend(added.map(|(name, value)| (name, Member::Value(value))));
    Some(Members::in_order(members))
}

/// A page of users and the paging facts of the ListResponse.
pub fn list(
    conn: &mut DbConnection,
    backend: Backend,
    ctx: &Ctx,
    anchors: &Anchors,
    req: &ListRequest,
) -> Result<(Vec<UserRead>, Page), ScimError> {
    let compiler = Compiler { backend, tenant_id: &ctx.tenant_id, resource: Resource::User };
    paginate::<Stored>(conn, &compiler, req, ctx.now, anchors)
}

/// The User resource type in lists and searches.
pub struct Users;

impl Listed for Users {
    const RESOURCE: &'static schema::ResourceType = &USER_RESOURCE;

    /// A lookup by a unique identifier takes the pool's short lane; the page is rendered after
    /// the connection is given back.
    async fn page(
        db: &Database,
        anchors: Arc<Anchors>,
        ctx: Ctx,
        req: ListRequest,
        base: String,
    ) -> Result<Page, ScimError> {
        let projection = projection(&USER_RESOURCE, req.attributes.as_deref(), req.excluded_attributes.as_deref())?;
        let (backend, short) = (db.backend(), listing::is_unique_lookup(&req));
        let list = move |conn: &mut DbConnection| list(conn, backend, &ctx, &anchors, &req);
        let (rows, mut page) = if short { db.run_short(list).await? } else { db.run(list).await? };
        let views = read_views(rows);
        let resources: Vec<_> = views.iter().map(|v| to_write(v, &base, &projection)).collect();
        page.resources = rendered::render_all(&resources);
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::scim::resource::parse_resource;

    fn view(body: Value, state: State, groups: &[(&str, &str)]) -> View {
        let doc = parse_resource(&USER_RESOURCE, &body).unwrap();
        view_of(Value::Object(doc).to_string(), state, groups)
    }

    fn view_of(data: String, state: State, groups: &[(&str, &str)]) -> View {
        let at = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap().and_hms_milli_opt(1, 2, 3, 45).unwrap();
        let row = UserRow {
            pk: 7,
            id: "0b6f…-id".into(),
            user_name: "ann".into(),
            external_id: None,
            active: state == State::Active,
            lifecycle_state: state,
            deactivated_at: (state != State::Active).then_some(at),
            former_member_since: (state == State::FormerMember).then_some(at),
            data,
            created_at: at,
            updated_at: at,
            version: 3,
        };
        View { row, groups: groups.iter().map(|(id, name)| (id.to_string(), name.to_string())).collect() }
    }

    /// The representation as the projection makes it, as text.
    fn through_a_value(view: &View, projection: &Projection) -> String {
        serde_json::to_string(&projection.apply(&USER_RESOURCE, representation(view, "https://h/scim/v2"))).unwrap()
    }

    #[test]
    fn text_and_value_agree() {
        let default = Projection::parse(&USER_RESOURCE, None, None).unwrap();
        let bodies = [
            json!({"userName": "ann"}),
            json!({
                "userName": "Ann.Lee@example.com", "externalId": "e-1", "displayName": "Ann \"Lee\" \\ Ö 日本",
                "name": {"givenName": "Ann", "familyName": "Lee", "formatted": "Ann Lee"},
                "emails": [{"value": "ann@example.com", "type": "work", "primary": true}, {"value": "a@home.example"}],
                "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
                "addresses": [{"streetAddress": "1 Main St\nFloor 2", "locality": "Springfield", "type": "work"}],
                "locale": "en-US", "timezone": "Europe/Berlin", "title": "Dr", "password": "never-shown",
                "groups": [], "nickName": "", "profileUrl": null,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "employeeNumber": "42", "manager": {"value": "m-1"}, "department": "R&D"
                }
            }),
        ];
        let groups: &[&[(&str, &str)]] = &[&[], &[("g-1", "Team \"A\""), ("g-2", "Ω")]];
        for body in &bodies {
            for state in [State::Active, State::Deactivated, State::FormerMember] {
                for these in groups {
                    let view = view(body.clone(), state, these);
                    let shown = shown(&view, "https://h/scim/v2", &default);
                    assert!(matches!(shown, Rendered::Text(_)), "a canonical document goes out as its text");
                    assert_eq!(serde_json::to_string(&shown).unwrap(), through_a_value(&view, &default), "{body}");
                }
            }
        }
    }

    /// `default_members` merges them with the stored members without sorting.
    #[test]
    fn the_added_members_come_in_the_order_of_their_names() {
        for state in [State::Active, State::Deactivated, State::FormerMember] {
            for groups in [&[][..], &[("g-1", "Team")][..]] {
                let view = view(json!({"userName": "ann"}), state, groups);
                let names: Vec<&str> = added_members(&view, "https://h/scim/v2").iter().map(|(n, _)| *n).collect();
                assert!(names.is_sorted(), "{names:?}");
                assert!(!names.contains(&"schemas"), "schemas goes in by name in default_members");
            }
        }
    }

    #[test]
    fn a_document_that_is_not_canonical_goes_through_a_value() {
        let default = Projection::parse(&USER_RESOURCE, None, None).unwrap();
        for data in [
            r#"{"userName":"ann","nickName":""}"#,
            r#"{"userName":"ann","emails":[]}"#,
            r#"{"userName":"ann","id":"forged"}"#,
            r#"{"userName":"ann","META":{"location":"x"}}"#,
        ] {
            let view = view_of(data.into(), State::Active, &[]);
            let shown = shown(&view, "https://h/scim/v2", &default);
            assert!(matches!(shown, Rendered::Value(_)), "{data}");
            assert_eq!(serde_json::to_string(&shown).unwrap(), through_a_value(&view, &default));
        }
    }

    #[test]
    fn a_page_is_its_resources_written_one_after_the_other() {
        let default = Projection::parse(&USER_RESOURCE, None, None).unwrap();
        let views = [
            view(json!({"userName": "ann", "title": "Dr"}), State::Active, &[("g-1", "Team")]),
            view_of(r#"{"userName":"bob","nickName":""}"#.into(), State::Deactivated, &[]),
        ];
        let page: Vec<_> = views.iter().map(|v| to_write(v, "https://h/scim/v2", &default)).collect();
        let resources = rendered::render_all(&page);
        assert_eq!(resources.len(), 2);
        let one_by_one: Vec<Rendered> = views.iter().map(|v| shown(v, "https://h/scim/v2", &default)).collect();
        assert_eq!(serde_json::to_string(&resources).unwrap(), serde_json::to_string(&one_by_one).unwrap());
    }

    #[test]
    fn a_projection_other_than_the_default_goes_through_a_value() {
        let some = Projection::parse(&USER_RESOURCE, Some("userName"), None).unwrap();
        let view = view(json!({"userName": "ann", "title": "Dr"}), State::Active, &[]);
        let shown = shown(&view, "https://h/scim/v2", &some);
        assert!(matches!(shown, Rendered::Value(_)));
        assert_eq!(serde_json::to_string(&shown).unwrap(), through_a_value(&view, &some));
    }
}
