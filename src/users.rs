//! What can be done to a User through SCIM: create, read, list, replace, patch, delete.
//! Handlers parse the request; this module applies the rules and calls storage, one
//! transaction per request.

use chrono::{NaiveDateTime, SecondsFormat};
use serde_json::{json, Map, Value};

use crate::db::query::{Compiler, Order, Position, Resource};
use crate::db::users::{self as store, UserRow, UserWrite, WriteError};
use crate::db::{write_transaction, Backend, DbConnection};
use crate::error::{ScimError, ScimType};
use crate::http::{etag, etag_listed};
use crate::scim::list::{Cursor, ListRequest, Page, Paging};
use crate::scim::patch::{self, PatchOp};
use crate::scim::resource::Document;
use crate::scim::schema::{self, USER_RESOURCE};

/// Who acts, where, and when.
pub struct Ctx<'a> {
    pub tenant_id: &'a str,
    pub actor: &'a str,
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

pub fn get(conn: &mut DbConnection, ctx: &Ctx<'_>, id: &str) -> Result<UserRow, ScimError> {
    store::find(conn, ctx.tenant_id, id)?.ok_or_else(|| not_found(id))
}

pub fn create(conn: &mut DbConnection, ctx: &Ctx<'_>, mut doc: Document) -> Result<UserRow, ScimError> {
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
    write_transaction(conn, |conn| Ok(store::insert(conn, ctx.tenant_id, &id, &write, ctx.now)?))
}

/// Stores `doc` (with `active` inside) as the new content of `row`.
fn store_update(
    conn: &mut DbConnection,
    ctx: &Ctx<'_>,
    row: &UserRow,
    mut doc: Document,
) -> Result<UserRow, ScimError> {
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
    Ok(store::update(conn, ctx.tenant_id, row, &write, ctx.now)?)
}

/// PUT: the body replaces every writable attribute (RFC 7644 §3.5.1).
pub fn replace(
    conn: &mut DbConnection,
    ctx: &Ctx<'_>,
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
    ctx: &Ctx<'_>,
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

pub fn delete(conn: &mut DbConnection, ctx: &Ctx<'_>, id: &str, if_match: Option<&str>) -> Result<(), ScimError> {
    write_transaction(conn, |conn| {
        let row = get(conn, ctx, id)?;
        check_version(&row, if_match)?;
        Ok(store::delete(conn, row.pk)?)
    })
}

fn time(t: NaiveDateTime) -> String {
    t.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The full SCIM representation of a stored user (before attribute projection).
pub fn representation(row: &UserRow, base: &str) -> Value {
    let mut out: Map<String, Value> = row.document();
    out.insert("id".into(), json!(row.id));
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

/// A page of users and the paging facts of the ListResponse (RFC 7644 §3.4.2, RFC 9865).
pub fn list(
    conn: &mut DbConnection,
    backend: Backend,
    ctx: &Ctx<'_>,
    req: &ListRequest,
) -> Result<(Vec<UserRow>, Page), ScimError> {
    let compiler = Compiler { backend, tenant_id: ctx.tenant_id, resource: Resource::User };
    let filter = req.filter.as_ref().map(|f| compiler.filter(f)).transpose()?;
    let order =
        Order { key: req.sort_by.as_ref().map(|p| compiler.sort_key(p)).transpose()?, descending: req.descending };
    let total = store::count(conn, ctx.tenant_id, filter.as_ref())?;
    let mut page = Page { resources: Vec::new(), total, start_index: None, next_cursor: None, previous_cursor: None };
    let rows = match &req.paging {
        Paging::Index { start, count } => {
            page.start_index = Some(*start);
            if *count == 0 || *start > total {
                Vec::new()
            } else {
                store::page(conn, ctx.tenant_id, filter.as_ref(), None, &order, false, start - 1, *count)?
            }
        }
        Paging::Cursor { count: 0, .. } => Vec::new(),
        Paging::Cursor { cursor, count } => {
            let forward = cursor.as_ref().is_none_or(|c| c.forward);
            let keyset =
                cursor.as_ref().map(|c| compiler.keyset(&order, &Position { key: c.key.clone(), pk: c.pk }, c.forward));
            let mut rows =
                store::page(conn, ctx.tenant_id, filter.as_ref(), keyset.as_ref(), &order, !forward, 0, count + 1)?;
            let more = rows.len() as i64 > *count;
            rows.truncate(*count as usize);
            if !forward {
                rows.reverse();
            }
            let make = |(row, key): &(UserRow, Option<String>), forward| {
                Cursor {
                    forward,
                    key: key.clone(),
                    pk: row.pk,
                    query: req.fingerprint(),
                    issued: ctx.now.and_utc().timestamp(),
                }
                .encode()
            };
            // Walking forward, more rows means a next page; a cursor means we came from an
            // earlier page. Walking backward it is the other way round.
            let (has_next, has_previous) = if forward { (more, cursor.is_some()) } else { (true, more) };
            if has_next {
                page.next_cursor = rows.last().map(|r| make(r, true));
            }
            if has_previous {
                page.previous_cursor = rows.first().map(|r| make(r, false));
            }
            rows
        }
    };
    Ok((rows.into_iter().map(|(row, _)| row).collect(), page))
}
