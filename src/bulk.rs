//! `/Bulk` (RFC 7644 §3.7): many writes to Users and Groups in one request.
//!
//! Each operation goes through the same service function as its single-resource endpoint
//! ([`users`], [`groups`]), so it follows the same lifecycle rules and leaves the same events and
//! audit entries, and each is atomic on its own: the Bulk request is not one transaction
//! (§3.7: "the service provider MAY continue processing … after an error").
//!
//! `bulkId` references (§3.7.2): a `bulkId:<id>` in an operation's `path` or anywhere in its
//! `data` (a group's `members[].value`, a PATCH `path` filter or `value`) names the resource
//! another POST of the same request creates. Operations run in the order given, except that an
//! operation waits until every operation it refers to has run, so a group may list users that
//! are declared after it. An operation that refers to a `bulkId` no POST declares, or to one
//! whose POST failed, fails with 409. Consecutive creates run together (see
//! [`CONCURRENT_CREATES`]).
//!
//! Circular references (§3.7.1: the provider "MUST try to resolve circular cross-references
//! between resources in a single bulk job"): when every operation left waits on another one, the
//! first POST of a Group among them is created without the members that are still unresolved,
//! and those members are added by a PATCH of the same group once the resources they name exist
//! — the order RFC 7644's own example (two groups that are members of each other) shows. A cycle
//! that no Group POST can break (e.g. through a user's `manager`) fails its operations with 409,
//! as §3.7.1 allows.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use actix_web::http::StatusCode;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};

use crate::context::Ctx;
use crate::db::Database;
use crate::error::{ScimError, ScimType};
use crate::groups;
use crate::scim::fold::fold;
use crate::scim::members::{split_member_ops, Member, MemberChange};
use crate::scim::patch::parse_patch;
use crate::scim::resource::parse_resource;
use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
use crate::scim::user_name::user_name_key;
use crate::scim::version::etag;
use crate::users;

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// The most operations one Bulk request may hold (`bulk.maxOperations`, RFC 7644 §3.7.4). The
/// IPSIE SCIM profile asks for loads of thousands of accounts; a thousand per request keeps one
/// request's work within the server's time limits.
pub const MAX_OPERATIONS: usize = 1000;

const REFERENCE: &str = "bulkId:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn parse(s: &str) -> Option<Method> {
        // HTTP method names are case-sensitive (RFC 9110 §9.1), but the operation's `method` is
        // a JSON string clients spell variously; nothing is lost by reading it in any case.
        match s.to_ascii_uppercase().as_str() {
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "PATCH" => Some(Method::Patch),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Users,
    Groups,
}

impl Kind {
    fn endpoint(self) -> &'static str {
        match self {
            Kind::Users => "Users",
            Kind::Groups => "Groups",
        }
    }
}

/// One operation of the request, as sent (§3.7: `method`, `bulkId`, `version`, `path`, `data`).
#[derive(Debug, Clone)]
struct Operation {
    /// The `method` as sent, echoed in the response.
    method_name: String,
    bulk_id: Option<String>,
    /// An entity tag the resource must still have (the If-Match of a single request).
    version: Option<String>,
    path: String,
    data: Option<Value>,
}

/// A parsed BulkRequest.
#[derive(Debug)]
pub struct BulkRequest {
    fail_on_errors: Option<usize>,
    operations: Vec<Operation>,
}

/// A member of a JSON object whose name matches in any case (RFC 7643 §2.1: attribute names are
/// case-insensitive).
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// Reads the request's top level. A malformed top level fails the whole request with 400
/// `invalidSyntax`; more than [`MAX_OPERATIONS`] operations with 413 (§3.7.4). A malformed
/// operation fails only itself, when it is run.
pub fn parse(body: &Value) -> Result<BulkRequest, ScimError> {
    let top = body.as_object().ok_or_else(|| ScimError::invalid_syntax("A BulkRequest must be a JSON object"))?;
    if let Some(schemas) = field(top, "schemas") {
        let named = schemas.as_array().is_some_and(|s| s.iter().any(|s| s.as_str() == Some(BULK_REQUEST)));
        if !named {
            return Err(ScimError::invalid_syntax(format!("\"schemas\" must name {BULK_REQUEST}")));
        }
    }
    let fail_on_errors = match field(top, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => return Err(ScimError::invalid_syntax("\"failOnErrors\" must be a positive integer")),
        },
    };
    let items = field(top, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("A BulkRequest needs an \"Operations\" array"))?;
    if items.len() > MAX_OPERATIONS {
        return Err(ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The request holds {} operations; bulk.maxOperations is {MAX_OPERATIONS} (RFC 7644 §3.7.4)",
                items.len()
            ),
        ));
    }
    let text = |item: &Map<String, Value>, name: &str| field(item, name).and_then(Value::as_str).map(str::to_owned);
    let operations = items
        .iter()
        .map(|item| {
            let empty = Map::new();
            let item = item.as_object().unwrap_or(&empty);
            Operation {
                method_name: text(item, "method").unwrap_or_default(),
                bulk_id: text(item, "bulkId"),
                version: text(item, "version"),
                path: text(item, "path").unwrap_or_default(),
                data: field(item, "data").cloned(),
            }
        })
        .collect();
    Ok(BulkRequest { fail_on_errors, operations })
}

/// The `bulkId`s a text refers to.
fn references_in(text: &str, out: &mut HashSet<String>) {
    let mut rest = text;
    while let Some(at) = rest.find(REFERENCE) {
        let after = &rest[at + REFERENCE.len()..];
        let end = after.find(|c: char| c.is_whitespace() || "\"'/,()[]{}".contains(c)).unwrap_or(after.len());
        if end > 0 {
            out.insert(after[..end].to_owned());
        }
        rest = &after[end..];
    }
}

fn references_in_value(value: &Value, out: &mut HashSet<String>) {
    match value {
        Value::String(s) => references_in(s, out),
        Value::Array(items) => items.iter().for_each(|v| references_in_value(v, out)),
        Value::Object(fields) => fields.values().for_each(|v| references_in_value(v, out)),
        _ => {}
    }
}

fn references(op: &Operation) -> HashSet<String> {
    let mut out = HashSet::new();
    references_in(&op.path, &mut out);
    if let Some(data) = &op.data {
        references_in_value(data, &mut out);
    }
    out
}

/// `text` with every `bulkId:<id>` whose resource exists replaced by that resource's id.
fn substitute(text: &str, ids: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(REFERENCE) {
        out.push_str(&rest[..at]);
        let after = &rest[at + REFERENCE.len()..];
        let end = after.find(|c: char| c.is_whitespace() || "\"'/,()[]{}".contains(c)).unwrap_or(after.len());
        match ids.get(&after[..end]) {
            Some(id) => out.push_str(id),
            None => out.push_str(&rest[at..at + REFERENCE.len() + end]),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn substitute_value(value: &Value, ids: &HashMap<String, String>) -> Value {
    match value {
        Value::String(s) if s.contains(REFERENCE) => Value::String(substitute(s, ids)),
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute_value(v, ids)).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), substitute_value(v, ids))).collect())
        }
        other => other.clone(),
    }
}

/// The endpoint and id an operation's `path` names: `/Users`, `/Groups/{id}`, … Endpoint names
/// match in any case and a trailing slash is ignored, as on the single-resource endpoints.
fn target(path: &str) -> Option<(Kind, Option<&str>)> {
    let path = path.strip_prefix('/')?.trim_end_matches('/');
    let (name, id) = match path.split_once('/') {
        Some((name, id)) if !id.is_empty() && !id.contains('/') => (name, Some(id)),
        Some(_) => return None,
        None => (path, None),
    };
    let kind = if name.eq_ignore_ascii_case("Users") {
        Kind::Users
    } else if name.eq_ignore_ascii_case("Groups") {
        Kind::Groups
    } else {
        return None;
    };
    Some((kind, id))
}

/// What a performed operation answers.
struct Done {
    status: StatusCode,
    id: String,
    kind: Kind,
    version: Option<i64>,
}

/// Performs one operation whose references are resolved, in its own transaction.
async fn perform(db: &Database, ctx: &Ctx, op: &Operation, data: Option<Value>) -> Result<Done, ScimError> {
    let method = Method::parse(&op.method_name).ok_or_else(|| {
        ScimError::invalid_syntax(format!("\"method\" must be POST, PUT, PATCH or DELETE; got {:?}", op.method_name))
    })?;
    let (kind, id) = target(&op.path).ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "\"path\" must be /Users, /Groups, /Users/{{id}} or /Groups/{{id}}; got {:?}",
            op.path
        ))
    })?;
    let data = || data.clone().ok_or_else(|| ScimError::invalid_syntax(format!("{} needs \"data\"", op.method_name)));
    let (ctx, expected) = (ctx.clone(), op.version.clone());
    let owned = id.map(str::to_owned);
    let done = |status, id: String, version| Done { status, id, kind, version };
    match (method, owned) {
        (Method::Post, None) => {
            let rt = if kind == Kind::Users { &USER_RESOURCE } else { &GROUP_RESOURCE };
            let doc = parse_resource(rt, &data()?)?;
            let (id, version) = match kind {
                Kind::Users => db.write(move |conn| users::create(conn, &ctx, doc)).await.map(|r| (r.id, r.version))?,
                Kind::Groups => {
                    db.write(move |conn| groups::create(conn, &ctx, doc)).await.map(|r| (r.id, r.version))?
                }
            };
            Ok(done(StatusCode::CREATED, id, Some(version)))
        }
        (Method::Put, Some(id)) => {
            let rt = if kind == Kind::Users { &USER_RESOURCE } else { &GROUP_RESOURCE };
            let doc = parse_resource(rt, &data()?)?;
            let target = id.clone();
            let version = match kind {
                Kind::Users => {
                    db.write(move |conn| users::replace(conn, &ctx, &target, doc, expected.as_deref()))
                        .await?
                        .row
                        .version
                }
                Kind::Groups => {
                    db.write(move |conn| groups::replace(conn, &ctx, &target, doc, expected.as_deref())).await?.version
                }
            };
            Ok(done(StatusCode::OK, id, Some(version)))
        }
        (Method::Patch, Some(id)) => {
            let ops = parse_patch(&data()?)?;
            let target = id.clone();
            let version = match kind {
                Kind::Users => {
                    db.write(move |conn| users::patch(conn, &ctx, &target, &ops, expected.as_deref()))
                        .await?
                        .row
                        .version
                }
                Kind::Groups => {
                    let (attribute_ops, member_changes) = split_member_ops(ops)?;
                    db.write(move |conn| {
                        groups::patch(conn, &ctx, &target, &attribute_ops, &member_changes, expected.as_deref())
                    })
                    .await?
                    .version
                }
            };
            Ok(done(StatusCode::OK, id, Some(version)))
        }
        (Method::Delete, Some(id)) => {
            let target = id.clone();
            match kind {
                Kind::Users => {
                    db.write(move |conn| users::delete(conn, &ctx, &target, expected.as_deref())).await?;
                }
                Kind::Groups => db.write(move |conn| groups::delete(conn, &ctx, &target, expected.as_deref())).await?,
            }
            Ok(done(StatusCode::NO_CONTENT, id, None))
        }
        (Method::Post, Some(_)) => {
            Err(ScimError::invalid_syntax("POST creates a resource: its \"path\" is /Users or /Groups"))
        }
        (_, None) => Err(ScimError::invalid_syntax(format!("{} needs the resource's id in \"path\"", op.method_name))),
    }
}

/// Adds the members a Group POST left out to break a circular reference (§3.7.1), once the
/// resources they name exist.
async fn add_deferred(db: &Database, ctx: &Ctx, group_id: &str, members: Vec<Member>) -> Result<i64, ScimError> {
    let (ctx, id) = (ctx.clone(), group_id.to_owned());
    let changes = vec![MemberChange::Add(members)];
    let row = db.write(move |conn| groups::patch(conn, &ctx, &id, &[], &changes, None)).await?;
    Ok(row.version)
}

fn unresolved_bulk_id(id: &str, detail: &str) -> ScimError {
    // §3.7.3: a bulkId that cannot be resolved is a 409 with `invalidValue`.
    ScimError::conflict(Some(ScimType::InvalidValue), format!("bulkId {id:?} {detail}"))
}

/// The response entry of one operation (§3.7.3): `status` as a string, `location` and `version`
/// of the resource, and the SCIM error as `response` when it failed.
fn entry(op: &Operation, base: &str, result: &Result<Done, ScimError>) -> Value {
    let mut out = json!({"method": op.method_name});
    if let Some(bulk_id) = &op.bulk_id {
        out["bulkId"] = json!(bulk_id);
    }
    match result {
        Ok(done) => {
            out["location"] = json!(format!("{base}/{}/{}", done.kind.endpoint(), done.id));
            if let Some(version) = done.version {
                out["version"] = json!(etag(version));
            }
            out["status"] = json!(done.status.as_str());
        }
        Err(err) => {
            if let Some((kind, Some(id))) = target(&op.path) {
                if !id.contains(REFERENCE) {
                    out["location"] = json!(format!("{base}/{}/{id}", kind.endpoint()));
                }
            }
            out["status"] = json!(err.status.as_str());
            out["response"] = err.body();
        }
    }
    out
}

/// A Group POST whose unresolved references are all `members[].value`: what it creates first, and
/// the members it adds once they exist.
fn without_pending_members(op: &Operation, pending: &HashSet<String>) -> Option<(Value, Vec<String>)> {
    if Method::parse(&op.method_name) != Some(Method::Post) || target(&op.path) != Some((Kind::Groups, None)) {
        return None;
    }
    let mut data = op.data.clone()?;
    let object = data.as_object_mut()?;
    let key = object.keys().find(|k| k.eq_ignore_ascii_case("members"))?.clone();
    let members = object.get_mut(&key)?.as_array_mut()?;
    let mut deferred = Vec::new();
    members.retain(|m| {
        let bulk_id = m.get("value").and_then(Value::as_str).and_then(|v| v.strip_prefix(REFERENCE));
        match bulk_id {
            Some(id) if pending.contains(id) => {
                deferred.push(id.to_owned());
                false
            }
            _ => true,
        }
    });
    let mut left = HashSet::new();
    references_in_value(&data, &mut left);
    if deferred.is_empty() || left.iter().any(|id| pending.contains(id)) {
        return None;
    }
    Some((data, deferred))
}

/// How many creates of one Bulk request are in flight at once. Consecutive POSTs that refer to nothing
/// still pending are independent (each makes a new resource), so they are sent together: on
/// both backends their commits then share the disk's flushes, as concurrent single requests'
/// do. Everything else runs one at a time, in order.
const CONCURRENT_CREATES: usize = 8;

/// The unique name a create claims, as its unique index compares it (a User's `userName` by
/// its RFC 8265 key, a Group's `displayName` folded): two creates that may clash are not run
/// together, so the request's order decides which one wins.
fn claimed_name(op: &Operation) -> Option<String> {
    let data = op.data.as_ref()?.as_object()?;
    if let Some(name) = field(data, "userName").and_then(Value::as_str) {
        return Some(format!("User:{}", user_name_key(name)));
    }
    let name = field(data, "displayName")?.as_str()?;
    Some(format!("Group:{}", fold(name)))
}

/// Creates gathered to run together, with what they claim, for the checks of [`run`].
#[derive(Default)]
struct Batch<'a> {
    items: Vec<usize>,
    /// Their `bulkId`s.
    bulk_ids: HashSet<&'a str>,
    /// The names they claim (see [`claimed_name`]).
    names: HashSet<String>,
}

impl<'a> Batch<'a> {
    fn push(&mut self, i: usize, op: &'a Operation) {
        self.items.push(i);
        self.bulk_ids.extend(op.bulk_id.as_deref());
        self.names.extend(claimed_name(op));
    }

    fn take(&mut self) -> Vec<usize> {
        self.bulk_ids.clear();
        self.names.clear();
        std::mem::take(&mut self.items)
    }
}

/// What has been done so far.
struct Progress {
    results: Vec<Option<Result<Done, ScimError>>>,
    /// The id of each resource a POST with a `bulkId` created.
    ids: HashMap<String, String>,
    /// The `bulkId`s whose POST failed.
    failed: HashSet<String>,
    /// The operation that declares each `bulkId`: the first POST naming it.
    declarer: HashMap<String, usize>,
    errors: usize,
    fail_on_errors: usize,
}

impl Progress {
    /// Records an operation's result; true once `failOnErrors` errors have been seen.
    fn record(&mut self, op: &Operation, i: usize, result: Result<Done, ScimError>) -> bool {
        let declares = op.bulk_id.as_ref().filter(|b| self.declarer.get(*b) == Some(&i));
        match (&result, declares) {
            (Ok(done), Some(bulk_id)) => {
                self.ids.insert(bulk_id.clone(), done.id.clone());
            }
            (Err(_), Some(bulk_id)) => {
                self.failed.insert(bulk_id.clone());
            }
            _ => {}
        }
        if result.is_err() {
            self.errors += 1;
        }
        self.results[i] = Some(result);
        self.errors >= self.fail_on_errors
    }

    /// How many creates may be gathered into one batch now. Without `failOnErrors`, a whole run
    /// of them (up to [`CONCURRENT_CREATES`] in flight at any time); with it, never more than
    /// the errors it still allows, so that no operation runs that the request's order would have
    /// stopped before.
    fn batch_size(&self) -> usize {
        if self.fail_on_errors == usize::MAX {
            MAX_OPERATIONS
        } else {
            CONCURRENT_CREATES.min(self.fail_on_errors - self.errors)
        }
    }

    /// Performs the operations of `batch` together, with their references resolved, and records
    /// their results in order; true once `failOnErrors` errors have been seen. Every operation
    /// performed is listed, even past that point.
    async fn flush(&mut self, db: &Database, ctx: &Ctx, ops: &[Operation], batch: &mut Batch<'_>) -> bool {
        let items = batch.take();
        let ids = &self.ids;
        let work = items.iter().map(|&i| {
            let op = &ops[i];
            let data = op.data.as_ref().map(|d| substitute_value(d, ids));
            let resolved = Operation { path: substitute(&op.path, ids), ..op.clone() };
            async move { perform(db, ctx, &resolved, data).await }
        });
        let done: Vec<_> = futures_util::stream::iter(work).buffered(CONCURRENT_CREATES).collect().await;
        let mut stop = false;
        for (&i, result) in items.iter().zip(done) {
            stop |= self.record(&ops[i], i, result);
        }
        stop
    }
}

/// Runs a Bulk request for the tenant of `ctx` and returns the BulkResponse. `pace` is awaited
/// before every operation performed but the first: it holds the request to the tenant's request
/// rate, so that a Bulk of N operations costs what N requests do.
pub async fn run<P, F>(db: &Database, ctx: &Ctx, base: &str, request: BulkRequest, mut pace: P) -> Value
where
    P: FnMut() -> F,
    F: Future<Output = ()>,
{
    let ops = &request.operations;
    let is_post = |op: &Operation| Method::parse(&op.method_name) == Some(Method::Post);
    // The bulkIds POSTs declare; a second POST with the same one fails.
    let mut declarer: HashMap<String, usize> = HashMap::new();
    let mut duplicate = HashSet::new();
    for (i, op) in ops.iter().enumerate() {
        if let Some(bulk_id) = op.bulk_id.as_ref().filter(|_| is_post(op)) {
            if declarer.contains_key(bulk_id) {
                duplicate.insert(i);
            } else {
                declarer.insert(bulk_id.clone(), i);
            }
        }
    }
    let mut progress = Progress {
        results: (0..ops.len()).map(|_| None).collect(),
        ids: HashMap::new(),
        failed: HashSet::new(),
        declarer,
        errors: 0,
        fail_on_errors: request.fail_on_errors.unwrap_or(usize::MAX),
    };
    let refs: Vec<HashSet<String>> = ops.iter().map(references).collect();
    let mut waiting: Vec<usize> = (0..ops.len()).collect();
    let mut deferred: Vec<(usize, Vec<String>)> = Vec::new();
    let mut performed = 0;
    let mut batch = Batch::default();

    'passes: while !waiting.is_empty() {
        let mut moved = false;
        let mut still = Vec::new();
        for &i in &waiting {
            let op = &ops[i];
            // What this operation names must be created before it is judged.
            let names_batch = refs[i].iter().any(|id| batch.bulk_ids.contains(id.as_str()));
            if (names_batch || batch.items.len() >= progress.batch_size())
                && progress.flush(db, ctx, ops, &mut batch).await
            {
                break 'passes;
            }
            let missing = refs[i].iter().find(|id| !progress.declarer.contains_key(*id));
            let broken = refs[i].iter().find(|id| progress.failed.contains(*id));
            let ready = refs[i].iter().all(|id| progress.ids.contains_key(id));
            let refused = if duplicate.contains(&i) {
                Some(ScimError::invalid_syntax(format!(
                    "bulkId {:?} is declared by an earlier operation",
                    op.bulk_id.as_deref().unwrap_or_default()
                )))
            } else if let Some(id) = missing {
                Some(unresolved_bulk_id(id, "is not declared by any POST of this request"))
            } else {
                broken.map(|id| unresolved_bulk_id(id, "names a resource whose operation failed"))
            };
            moved = moved || refused.is_some() || ready;
            if let Some(err) = refused {
                if progress.flush(db, ctx, ops, &mut batch).await || progress.record(op, i, Err(err)) {
                    break 'passes;
                }
                continue;
            }
            if !ready {
                still.push(i);
                continue;
            }
            // Only creates run together, and never two that claim the same name, so that which
            // of two such creates wins stays the request's order.
            let create = is_post(op) && target(&op.path).is_some_and(|(_, id)| id.is_none());
            let clashes = create && claimed_name(op).is_some_and(|name| batch.names.contains(&name));
            if (!create || clashes) && progress.flush(db, ctx, ops, &mut batch).await {
                break 'passes;
            }
            if performed > 0 {
                pace().await;
            }
            performed += 1;
            batch.push(i, op);
            if !create && progress.flush(db, ctx, ops, &mut batch).await {
                break 'passes;
            }
        }
        if progress.flush(db, ctx, ops, &mut batch).await {
            break 'passes;
        }
        waiting = still;
        if moved || waiting.is_empty() {
            continue;
        }
        // Every operation left waits on another one: a circular reference (§3.7.1).
        let pending: HashSet<String> = waiting.iter().filter_map(|&i| ops[i].bulk_id.clone()).collect();
        let breakable = waiting.iter().find_map(|&i| without_pending_members(&ops[i], &pending).map(|b| (i, b)));
        match breakable {
            Some((i, (data, later))) => {
                if performed > 0 {
                    pace().await;
                }
                performed += 1;
                let data = substitute_value(&data, &progress.ids);
                let result = perform(db, ctx, &ops[i], Some(data)).await;
                if result.is_ok() {
                    deferred.push((i, later));
                }
                waiting.retain(|&w| w != i);
                if progress.record(&ops[i], i, result) {
                    break 'passes;
                }
            }
            None => {
                for i in std::mem::take(&mut waiting) {
                    let err = ScimError::conflict(
                        Some(ScimType::InvalidValue),
                        "The operation is part of a circular bulkId reference that only a Group's members can break",
                    );
                    if progress.record(&ops[i], i, Err(err)) {
                        break 'passes;
                    }
                }
            }
        }
    }

    for (i, later) in deferred {
        let Some(Ok(done)) = &progress.results[i] else { continue };
        let group_id = done.id.clone();
        let members: Option<Vec<Member>> = later
            .iter()
            .map(|b| progress.ids.get(b).map(|id| Member { value: id.clone(), display: None, kind: None }))
            .collect();
        let outcome = match members {
            Some(members) => add_deferred(db, ctx, &group_id, members).await,
            None => Err(ScimError::conflict(
                Some(ScimType::InvalidValue),
                format!(
                    "The group {group_id} was created, but members {later:?} were not added: their operations \
                     failed or were not run"
                ),
            )),
        };
        match outcome {
            Ok(version) => {
                if let Some(Ok(done)) = &mut progress.results[i] {
                    done.version = Some(version);
                }
            }
            Err(err) => progress.results[i] = Some(Err(err)),
        }
    }

    let operations: Vec<Value> =
        progress.results.iter().enumerate().filter_map(|(i, r)| r.as_ref().map(|r| entry(&ops[i], base, r))).collect();
    json!({"schemas": [BULK_RESPONSE], "Operations": operations})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_in_paths_filters_and_values() {
        let mut out = HashSet::new();
        references_in("members[value eq \"bulkId:qwerty\"]", &mut out);
        references_in("/Users/bulkId:ytrewq", &mut out);
        references_in("no reference", &mut out);
        assert_eq!(out, HashSet::from(["qwerty".to_owned(), "ytrewq".to_owned()]));
    }

    #[test]
    fn substitution_replaces_only_resolved_references() {
        let ids = HashMap::from([("a".to_owned(), "id-a".to_owned())]);
        assert_eq!(substitute("members[value eq \"bulkId:a\"]", &ids), "members[value eq \"id-a\"]");
        assert_eq!(substitute("bulkId:b", &ids), "bulkId:b");
        assert_eq!(substitute("/Groups/bulkId:a", &ids), "/Groups/id-a");
    }

    #[test]
    fn paths_name_an_endpoint_in_any_case_and_at_most_one_id() {
        assert_eq!(target("/Users"), Some((Kind::Users, None)));
        assert_eq!(target("/groups/"), Some((Kind::Groups, None)));
        assert_eq!(target("/Groups/g1"), Some((Kind::Groups, Some("g1"))));
        assert_eq!(target("/Schemas"), None);
        assert_eq!(target("Users"), None);
        assert_eq!(target("/Users/a/b"), None);
    }

    #[test]
    fn too_many_operations_is_413_and_a_malformed_top_level_is_invalid_syntax() {
        let ops: Vec<Value> = (0..=MAX_OPERATIONS).map(|_| json!({"method": "DELETE", "path": "/Users/x"})).collect();
        let err = parse(&json!({"schemas": [BULK_REQUEST], "Operations": ops})).unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        for bad in [json!([]), json!({"schemas": [BULK_REQUEST]}), json!({"Operations": [], "failOnErrors": 0})] {
            assert_eq!(parse(&bad).unwrap_err().scim_type, Some(ScimType::InvalidSyntax), "{bad}");
        }
    }
}
