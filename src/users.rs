//! What can be done to a User through SCIM: create, read, list, replace, patch, delete.
//! Handlers parse the request; this module applies the rules and calls storage, one
//! transaction per request.

use std::collections::HashMap;

use chrono::{NaiveDateTime, SecondsFormat};
use serde_json::{json, Map, Value};

use crate::db::query::{Compiler, Resource};
use crate::db::users::{self as store, UserRow, UserWrite, WriteError};
use crate::db::{write_transaction, Backend, DbConnection};
use crate::error::{ScimError, ScimType};
use crate::http::{etag, etag_listed};
use crate::listing::paginate;
use crate::scim::list::{ListRequest, Page};
use crate::scim::patch::{self, PatchOp};
use crate::scim::resource::Document;
use crate::scim::schema::{self, USER_RESOURCE};

/// Who acts, where, and when.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub tenant_id: String,
    /// The token's subject, recorded in audit entries.
    pub actor: String,
    pub now: NaiveDateTime,
}

impl From<WriteError> for ScimError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::UserNameTaken(name) => ScimError::conflict(
                Some(ScimType::Uniqueness),
                format!("A user with userName {name:?} already exists (userName is unique regardless of case)"),
            ),
            WriteError::Db(e) => e.into(),
        }
    }
}

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("No User with id {id:?}"))
}

/// 412 unless `if_match` (when given) names the current version (RFC 7644 §3.14).
fn check_version(row: &UserRow, if_match: Option<&str>) -> Result<(), ScimError> {
    match if_match {
        Some(list) if !etag_listed(list, &etag(row.version)) => Err(ScimError::new(
            actix_web::http::StatusCode::PRECONDITION_FAILED,
            format!("The User has changed: its version is {}, the request expected {list}", etag(row.version)),
        )),
        _ => Ok(()),
    }
}

/// `active` is kept as a column, not in the document; absent means active.
fn take_active(doc: &mut Document) -> bool {
    doc.remove("active").and_then(|v| v.as_bool()).unwrap_or(true)
}

/// The Roster extension's attributes are the lifecycle's to set; the document never keeps them.
fn strip_lifecycle(doc: &mut Document) {
    doc.remove(schema::ROSTER_USER);
}

fn state_for(active: bool) -> &'static str {
    if active {
        "active"
    } else {
        "deactivated"
    }
}

pub fn get(conn: &mut DbConnection, ctx: &Ctx, id: &str) -> Result<UserRow, ScimError> {
    store::find(conn, &ctx.tenant_id, id)?.ok_or_else(|| not_found(id))
}

pub fn create(conn: &mut DbConnection, ctx: &Ctx, mut doc: Document) -> Result<UserRow, ScimError> {
    let active = take_active(&mut doc);
    strip_lifecycle(&mut doc);
    let write = UserWrite {
        doc: &doc,
        active,
        lifecycle_state: state_for(active),
        deactivated_at: (!active).then_some(ctx.now),
        former_member_since: None,
    };
    let id = uuid::Uuid::new_v4().to_string();
    write_transaction(conn, |conn| Ok(store::insert(conn, &ctx.tenant_id, &id, &write, ctx.now)?))
}

/// Stores `doc` (with `active` inside) as the new content of `row`.
fn store_update(conn: &mut DbConnection, ctx: &Ctx, row: &UserRow, mut doc: Document) -> Result<UserRow, ScimError> {
    let active = take_active(&mut doc);
    strip_lifecycle(&mut doc);
    let deactivated_at = match (row.active, active) {
        (true, false) => Some(ctx.now),
        (false, false) => row.deactivated_at,
        (_, true) => None,
    };
    let write = UserWrite {
        doc: &doc,
        active,
        lifecycle_state: state_for(active),
        deactivated_at,
        former_member_since: row.former_member_since,
    };
    Ok(store::update(conn, &ctx.tenant_id, row, &write, ctx.now)?)
}

/// PUT: the body replaces every writable attribute (RFC 7644 §3.5.1).
pub fn replace(
    conn: &mut DbConnection,
    ctx: &Ctx,
    id: &str,
    doc: Document,
    if_match: Option<&str>,
) -> Result<UserRow, ScimError> {
    write_transaction(conn, |conn| {
        let row = get(conn, ctx, id)?;
        check_version(&row, if_match)?;
        store_update(conn, ctx, &row, doc)
    })
}

/// PATCH: every operation or none (RFC 7644 §3.5.2).
pub fn patch(
    conn: &mut DbConnection,
    ctx: &Ctx,
    id: &str,
    ops: &[PatchOp],
    if_match: Option<&str>,
) -> Result<UserRow, ScimError> {
    write_transaction(conn, |conn| {
        let row = get(conn, ctx, id)?;
        check_version(&row, if_match)?;
        let mut current = row.document();
        current.insert("active".into(), Value::Bool(row.active));
        let patched = patch::apply(&USER_RESOURCE, &current, ops)?;
        store_update(conn, ctx, &row, patched)
    })
}

pub fn delete(conn: &mut DbConnection, ctx: &Ctx, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
    write_transaction(conn, |conn| {
        let row = get(conn, ctx, id)?;
        check_version(&row, if_match)?;
        Ok(store::delete(conn, row.pk)?)
    })
}

/// RFC 3339 in UTC with milliseconds, as `meta` shows times.
pub fn time(t: NaiveDateTime) -> String {
    t.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A user ready to show: the row and the groups it belongs to directly, as (id, displayName).
pub struct View {
    pub row: UserRow,
    pub groups: Vec<(String, String)>,
}

/// Attaches the readOnly `groups` attribute's data to each row, when the response shows it.
pub fn views(
    conn: &mut DbConnection,
    ctx: &Ctx,
    rows: Vec<UserRow>,
    with_groups: bool,
) -> Result<Vec<View>, ScimError> {
    let mut groups: HashMap<String, Vec<(String, String)>> = if with_groups && !rows.is_empty() {
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        crate::db::groups::groups_of_users(conn, &ctx.tenant_id, &ids)?
    } else {
        HashMap::new()
    };
    Ok(rows.into_iter().map(|row| View { groups: groups.remove(&row.id).unwrap_or_default(), row }).collect())
}

/// The full SCIM representation of a stored user (before attribute projection).
pub fn representation(view: &View, base: &str) -> Value {
    let (row, groups) = (&view.row, &view.groups);
    let mut out: Map<String, Value> = row.document();
    out.insert("id".into(), json!(row.id));
    if !groups.is_empty() {
        let items: Vec<Value> = groups
            .iter()
            .map(|(id, name)| json!({"value": id, "$ref": format!("{base}/Groups/{id}"), "display": name, "type": "direct"}))
            .collect();
        out.insert("groups".into(), Value::Array(items));
    }
    out.insert("active".into(), json!(row.active));
    let mut lifecycle = json!({
        "lifecycleState": row.lifecycle_state,
        "formerMember": row.lifecycle_state == "formerMember",
    });
    if let Some(t) = row.deactivated_at {
        lifecycle["deactivatedAt"] = json!(time(t));
    }
    if let Some(t) = row.former_member_since {
        lifecycle["formerMemberSince"] = json!(time(t));
    }
    out.insert(schema::ROSTER_USER.into(), lifecycle);
    let mut schemas = vec![json!(schema::USER)];
    for (ext, _) in USER_RESOURCE.extensions {
        if out.contains_key(ext.id) {
            schemas.push(json!(ext.id));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": time(row.created_at),
            "lastModified": time(row.updated_at),
            "location": format!("{base}/Users/{}", row.id),
            "version": etag(row.version),
        }),
    );
    Value::Object(out)
}

/// A page of users and the paging facts of the ListResponse.
pub fn list(
    conn: &mut DbConnection,
    backend: Backend,
    ctx: &Ctx,
    req: &ListRequest,
) -> Result<(Vec<UserRow>, Page), ScimError> {
    let compiler = Compiler { backend, tenant_id: &ctx.tenant_id, resource: Resource::User };
    paginate::<store::Users>(conn, &compiler, req, ctx.now)
}
