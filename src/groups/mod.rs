//! What can be done to a Group through SCIM. Member changes go straight to the members table
//! (never through a loaded copy of the membership), so a PATCH costs what it changes.

pub mod batches;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::clock::time;
use crate::context::Ctx;
use crate::db::groups::{self as store, GroupRow, MemberRow};
use crate::db::query::{Compiler, Resource};
use crate::db::{write_transaction, Backend, Database, DbConnection};
use crate::error::ScimError;
use crate::listing::store::Groups as Stored;
use crate::listing::{paginate, projection, Anchors, Listed};
use crate::scim::list::{ListRequest, Page};
use crate::scim::members::{Member, MemberChange};
use crate::scim::patch::{self, PatchOp};
use crate::scim::projection::Projection;
use crate::scim::rendered::Resources;
use crate::scim::resource::Document;
use crate::scim::schema::{self, ResourceType, GROUP_RESOURCE};
use crate::scim::version::{check_version, etag};

pub fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("No Group with id {id:?}"))
}

/// The members a document lists.
fn members_of(doc: &Document) -> Vec<Member> {
    let text = |m: &Value, key: &str| m.get(key).and_then(Value::as_str).map(str::to_owned);
    match doc.get("members") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|m| {
                Some(Member { value: text(m, "value")?, display: text(m, "display"), kind: text(m, "type") })
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub fn get(conn: &mut DbConnection, ctx: &Ctx, id: &str) -> Result<GroupRow, ScimError> {
    store::find(conn, &ctx.tenant_id, id)?.ok_or_else(|| not_found(id))
}

/// The group as it is now, held against concurrent writers until the transaction ends: every
/// write derives the next version and document from it (see [`store::lock`]).
fn locked(conn: &mut DbConnection, ctx: &Ctx, id: &str) -> Result<GroupRow, ScimError> {
    store::lock(conn, &ctx.tenant_id, id)?.ok_or_else(|| not_found(id))
}

pub fn create(conn: &mut DbConnection, ctx: &Ctx, doc: &Document) -> Result<GroupRow, ScimError> {
    let id = crate::db::new_id();
    let members = members_of(doc);
    write_transaction(conn, |conn| {
        let resolved = store::resolve(conn, &ctx.tenant_id, &members)?;
        let row = store::insert(conn, &ctx.tenant_id, &id, doc, ctx.now)?;
        store::add_members(conn, &ctx.tenant_id, &row, &members, &resolved)?;
        Ok(row)
    })
}

/// PUT: new attributes and, when `members` is given, exactly those members.
pub fn replace(
    conn: &mut DbConnection,
    ctx: &Ctx,
    id: &str,
    doc: &Document,
    if_match: Option<&str>,
) -> Result<GroupRow, ScimError> {
    let members = members_of(doc);
    write_transaction(conn, |conn| {
        let resolved = store::resolve(conn, &ctx.tenant_id, &members)?;
        let row = locked(conn, ctx, id)?;
        check_version("Group", row.version, if_match)?;
        let row = store::update(conn, &row, doc, ctx.now)?;
        store::remove_all_members(conn, &row)?;
        store::add_members(conn, &ctx.tenant_id, &row, &members, &resolved)?;
        Ok(row)
    })
}

/// PATCH, its operations split by [`crate::scim::members::split_member_ops`]: attribute operations on the
/// document, member operations on the members table, all in one transaction and in the order
/// given.
pub fn patch(
    conn: &mut DbConnection,
    ctx: &Ctx,
    id: &str,
    attribute_ops: &[PatchOp],
    member_changes: &[MemberChange],
    if_match: Option<&str>,
) -> Result<GroupRow, ScimError> {
    write_transaction(conn, |conn| {
        let resolved = store::resolve(conn, &ctx.tenant_id, member_changes.iter().flat_map(MemberChange::added))?;
        let row = if attribute_ops.is_empty() {
            // The version bump is the lock (see [`store::touch`]); If-Match names the version
            // before it, and a mismatch rolls the bump back.
            let row = store::touch(conn, &ctx.tenant_id, id, ctx.now, 1)?.ok_or_else(|| not_found(id))?;
            check_version("Group", row.version - 1, if_match)?;
            row
        } else {
            let row = locked(conn, ctx, id)?;
            check_version("Group", row.version, if_match)?;
            let patched = patch::apply(&GROUP_RESOURCE, &row.document(), attribute_ops)?;
            store::update(conn, &row, &patched, ctx.now)?
        };
        for change in member_changes {
            match change {
                MemberChange::Add(members) => store::add_members(conn, &ctx.tenant_id, &row, members, &resolved)?,
                MemberChange::Remove(ids) => store::remove_members(conn, &row, ids)?,
                MemberChange::RemoveAll => store::remove_all_members(conn, &row)?,
                MemberChange::Replace(members) => {
                    store::remove_all_members(conn, &row)?;
                    store::add_members(conn, &ctx.tenant_id, &row, members, &resolved)?;
                }
            }
        }
        Ok(row)
    })
}

pub fn delete(conn: &mut DbConnection, ctx: &Ctx, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
    write_transaction(conn, |conn| {
        let row = locked(conn, ctx, id)?;
        check_version("Group", row.version, if_match)?;
        Ok(store::delete(conn, row.pk)?)
    })
}

pub fn list(
    conn: &mut DbConnection,
    backend: Backend,
    ctx: &Ctx,
    anchors: &Anchors,
    req: &ListRequest,
) -> Result<(Vec<GroupRow>, Page), ScimError> {
    let compiler = Compiler { backend, tenant_id: &ctx.tenant_id, resource: Resource::Group };
    paginate::<Stored>(conn, &compiler, req, ctx.now, anchors)
}

/// The Group resource type in lists and searches.
pub struct Groups;

impl Listed for Groups {
    const RESOURCE: &'static ResourceType = &GROUP_RESOURCE;

    /// Read and rendered on one connection: the members, when shown, are loaded for the page.
    async fn page(
        db: &Database,
        anchors: Arc<Anchors>,
        ctx: Ctx,
        req: ListRequest,
        base: String,
    ) -> Result<Page, ScimError> {
        let projection = projection(&GROUP_RESOURCE, req.attributes.as_deref(), req.excluded_attributes.as_deref())?;
        let backend = db.backend();
        db.run(move |conn| {
            let (rows, mut page) = list(conn, backend, &ctx, &anchors, &req)?;
            page.resources =
                Resources::Each(show(conn, &rows, &projection, &base)?.into_iter().map(Into::into).collect());
            Ok(page)
        })
        .await
    }
}

/// Renders groups as `projection` shows them, loading members only when it keeps them.
pub fn show(
    conn: &mut DbConnection,
    rows: &[GroupRow],
    projection: &Projection,
    base: &str,
) -> Result<Vec<Value>, ScimError> {
    let mut members = if projection.includes("members") { Some(members(conn, rows)?) } else { None };
    Ok(rows
        .iter()
        .map(|row| {
            let these = members.as_mut().map(|m| m.remove(&row.pk).unwrap_or_default());
            projection.apply(&GROUP_RESOURCE, representation(row, these.as_deref(), base))
        })
        .collect())
}

/// Members of the given groups, loaded only when the response shows them.
pub fn members(conn: &mut DbConnection, rows: &[GroupRow]) -> Result<HashMap<i64, Vec<MemberRow>>, ScimError> {
    let pks: Vec<i64> = rows.iter().map(|r| r.pk).collect();
    Ok(store::members_of(conn, &pks)?)
}

/// The SCIM representation of a group; `members` is None when they were not loaded.
pub fn representation(row: &GroupRow, members: Option<&[MemberRow]>, base: &str) -> Value {
    let mut out: Map<String, Value> = row.document();
    out.insert("schemas".into(), json!([schema::GROUP]));
    out.insert("id".into(), json!(row.id));
    if let Some(members) = members.filter(|m| !m.is_empty()) {
        let items: Vec<Value> = members
            .iter()
            .map(|m| {
                let endpoint = if m.kind == store::MemberKind::Group { "Groups" } else { "Users" };
                let mut item =
                    json!({"value": m.id, "$ref": format!("{base}/{endpoint}/{}", m.id), "type": m.kind.as_str()});
                if let Some(display) = &m.display {
                    item["display"] = json!(display);
                }
                item
            })
            .collect();
        out.insert("members".into(), Value::Array(items));
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": time(row.created_at),
            "lastModified": time(row.updated_at),
            "location": format!("{base}/Groups/{}", row.id),
            "version": etag(row.version),
        }),
    );
    Value::Object(out)
}
