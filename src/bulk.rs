//! `/Bulk` (RFC 7644 §3.7): many writes to Users and Groups in one request.
//!
//! Each operation goes through the same service function as its single-resource endpoint
//! ([`users`], [`groups`]), so it follows the same lifecycle rules and leaves the same events and
//! audit entries, and each is atomic on its own: the Bulk request is not one transaction
//! (§3.7: "the service provider MAY continue processing … after an error").
//!
//! **Chunks.** What costs a write is its commit (a sync to disk), not its statements. So the
//! operations run in chunks: consecutive operations, in the order they are run, share one
//! database transaction, each inside a savepoint of its own. An operation that fails rolls back
//! to its savepoint only — nothing it wrote stays, its error is reported, the others of the chunk
//! stand — and the chunk commits once. A chunk ends after [`CHUNK_OPERATIONS`] operations or
//! [`CHUNK_TIME`], so that one large request holds neither SQLite's writer nor its tenant's share
//! of the pool for long. The response is sent only once every chunk is durable; when a chunk's
//! commit fails, every operation of that chunk is reported failed, none as done.
//!
//! On PostgreSQL a chunk holds only creates (POSTs): an operation's row locks last until its
//! chunk commits, and any other operation runs in a chunk of its own, so that a Bulk never holds
//! locks in an order the single-resource writes do not take them in. An operation that loses to
//! a concurrent transaction (a deadlock, a serialization failure, a busy SQLite) ends its chunk
//! and runs once more, alone, after that chunk commits; losing again, it fails with 503.
//!
//! **Waves, on PostgreSQL.** There a create written in a savepoint costs three round trips (the
//! savepoint, the write, its release) and a subtransaction, and the database has cores to
//! spare. So creates that are ready (every `bulkId` they refer to resolved) and independent
//! (none refers to another, no two create the same userName or Group displayName) run as a
//! wave: up to [`CHUNK_OPERATIONS`] for each of [`lanes`] chunks, the chunks at the same time,
//! each on a pooled connection of its own. A chunk's users' creates are checked one by one and
//! written by one statement, its own transaction ([`users::create_many`]): a userName found
//! taken fails only its own operation, and the statement writes for each user what a single
//! POST writes. Its other creates (Groups, Users made Former Members at once) run in one
//! transaction, each in a savepoint, at most [`CHUNK_OPERATIONS_POSTGRES`] of them a chunk
//! (see [`run_apart`]). An operation that refers to a `bulkId` created in a wave runs only
//! after the wave has committed; any other operation ends the wave and runs after it, as
//! above. A chunk of a wave that fails fails its own operations only: the other chunks of the
//! wave committed on their own, as §3.7 allows ("the service provider MAY continue processing
//! … after an error"). Results are listed in the request's order whatever order the chunks
//! ended in. A request with `failOnErrors` runs no waves, one chunk at a time, each operation
//! in its savepoint, so that no operation after the last error allowed has run.
//!
//! `bulkId` references (§3.7.2): a `bulkId:<id>` in an operation's `path` or anywhere in its
//! `data` (a group's `members[].value`, a PATCH `path` filter or `value`) names the resource
//! another POST of the same request creates. Operations run in the order given, except that an
//! operation waits until every operation it refers to has run, so a group may list users that
//! are declared after it. An operation that refers to a `bulkId` no POST declares, or to one
//! whose POST failed, fails with 409.
//!
//! Circular references (§3.7.1: the provider "MUST try to resolve circular cross-references
//! between resources in a single bulk job"): when every operation left waits on another one, the
//! first POST of a Group among them is created without the members that are still unresolved
//! (whether written `{"value": …}`, in another case, or as bare strings), and those members are
//! added once every chunk has committed, by the member PATCH a Group PATCH takes
//! ([`MemberBatches::patch`]) — the order RFC 7644's own example (two groups that are members of
//! each other) shows. A cycle that no Group POST can break (e.g. through a user's `manager`)
//! fails its operations with 409, as §3.7.1 allows.
//!
//! Rate: the request was counted once against its tenant's rate when it was admitted; every
//! further operation takes a place of its own before its chunk runs, so a Bulk of N operations
//! costs the tenant what N requests do (see [`run`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::{json, Map, Value};

use crate::context::Ctx;
use crate::db::{write_transaction, Backend, Database, DbConnection};
use crate::error::{ScimError, ScimType};
use crate::groups::{self, batches::MemberBatches};
use crate::scim::members::{split_member_ops, Member, MemberChange};
use crate::scim::patch::parse_patch;
use crate::scim::resource::parse_resource;
use crate::scim::schema::{GROUP_RESOURCE, ROSTER_USER, USER_RESOURCE};
use crate::scim::version::etag;
use crate::users;

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// The most operations one Bulk request may hold (`bulk.maxOperations`, RFC 7644 §3.7.4). The
/// IPSIE SCIM profile asks for loads of thousands of accounts; a thousand per request keeps one
/// request's work within the server's time limits.
pub const MAX_OPERATIONS: usize = 1000;

/// The most operations one chunk (one commit) holds.
pub const CHUNK_OPERATIONS: usize = 250;

/// On PostgreSQL, the most operations in savepoints a chunk holds (a wave's users' creates,
/// written together without any, do not count): each savepoint that writes takes a
/// subtransaction id, and a backend caches only 64 of them (`PGPROC_MAX_CACHED_SUBXIDS`); past
/// that, every other session's visibility checks must consult `pg_subtrans` while the chunk is
/// open, which slows the whole server down, other tenants included. An operation takes up to
/// two: its own savepoint, and the one a Group's write (or a User's delete) opens inside it.
pub const CHUNK_OPERATIONS_POSTGRES: usize = 30;

/// How long a chunk takes on more operations: past it, the chunk commits and the next one
/// starts in a new transaction. Other writers wait at most about this long for SQLite's writer,
/// and the request gives its connection back to its tenant's share as often.
pub const CHUNK_TIME: Duration = Duration::from_millis(50);

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

/// One operation of the request (§3.7: `method`, `bulkId`, `version`, `path`, `data`), its
/// `method` and `path` parsed once.
#[derive(Debug)]
struct Operation {
    /// The `method` as sent, echoed in the response.
    method_name: String,
    method: Option<Method>,
    bulk_id: Option<String>,
    /// An entity tag the resource must still have (the If-Match of a single request).
    version: Option<String>,
    /// The `path` as sent, for error messages.
    path: String,
    /// The endpoint and id `path` names; the id may be a `bulkId:` reference.
    target: Option<(Kind, Option<String>)>,
    /// The request's own `data`, moved out of it (never copied) and taken when the operation
    /// runs.
    data: Option<Value>,
    /// The `bulkId`s the path and data refer to.
    refs: HashSet<String>,
}

impl Operation {
    fn is_post(&self) -> bool {
        self.method == Some(Method::Post)
    }
}

/// A parsed BulkRequest.
#[derive(Debug)]
pub struct BulkRequest {
    fail_on_errors: Option<usize>,
    operations: Vec<Operation>,
}

/// The key of a JSON object's member whose name matches in any case (RFC 7643 §2.1: attribute
/// names are case-insensitive).
fn key_of(object: &Map<String, Value>, name: &str) -> Option<String> {
    if object.contains_key(name) {
        return Some(name.to_owned());
    }
    object.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

fn take_field(object: &mut Map<String, Value>, name: &str) -> Option<Value> {
    key_of(object, name).and_then(|key| object.remove(&key))
}

/// Reads the request's top level, taking the body over so that each operation's `data` is moved
/// rather than copied. A malformed top level fails the whole request with 400 `invalidSyntax`;
/// more than [`MAX_OPERATIONS`] operations with 413 (§3.7.4). A malformed operation fails only
/// itself, when it is run.
pub fn parse(body: Value) -> Result<BulkRequest, ScimError> {
    let Value::Object(mut top) = body else {
        return Err(ScimError::invalid_syntax("A BulkRequest must be a JSON object"));
    };
    if let Some(schemas) = field(&top, "schemas") {
        let named = schemas.as_array().is_some_and(|s| s.iter().any(|s| s.as_str() == Some(BULK_REQUEST)));
        if !named {
            return Err(ScimError::invalid_syntax(format!("\"schemas\" must name {BULK_REQUEST}")));
        }
    }
    let fail_on_errors = match field(&top, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => return Err(ScimError::invalid_syntax("\"failOnErrors\" must be a positive integer")),
        },
    };
    let Some(Value::Array(items)) = take_field(&mut top, "Operations") else {
        return Err(ScimError::invalid_syntax("A BulkRequest needs an \"Operations\" array"));
    };
    if items.len() > MAX_OPERATIONS {
        return Err(ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The request holds {} operations; bulk.maxOperations is {MAX_OPERATIONS} (RFC 7644 §3.7.4)",
                items.len()
            ),
        ));
    }
    let operations = items
        .into_iter()
        .map(|item| {
            let mut item = match item {
                Value::Object(item) => item,
                _ => Map::new(),
            };
            let text =
                |item: &Map<String, Value>, name: &str| field(item, name).and_then(Value::as_str).map(str::to_owned);
            let method_name = text(&item, "method").unwrap_or_default();
            let path = text(&item, "path").unwrap_or_default();
            let data = take_field(&mut item, "data");
            let mut refs = HashSet::new();
            references_in(&path, &mut refs);
            if let Some(data) = &data {
                references_in_value(data, &mut refs);
            }
            Operation {
                method: Method::parse(&method_name),
                method_name,
                bulk_id: text(&item, "bulkId"),
                version: text(&item, "version"),
                target: target(&path).map(|(kind, id)| (kind, id.map(str::to_owned))),
                path,
                data,
                refs,
            }
        })
        .collect();
    Ok(BulkRequest { fail_on_errors, operations })
}

/// Where a `bulkId` reference that starts a text ends.
fn reference_end(after: &str) -> usize {
    after.find(|c: char| c.is_whitespace() || "\"'/,()[]{}".contains(c)).unwrap_or(after.len())
}

/// The `bulkId`s a text refers to.
fn references_in(text: &str, out: &mut HashSet<String>) {
    let mut rest = text;
    while let Some(at) = rest.find(REFERENCE) {
        let after = &rest[at + REFERENCE.len()..];
        let end = reference_end(after);
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

/// `text` with every `bulkId:<id>` whose resource exists replaced by that resource's id.
fn substitute(text: &str, ids: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(REFERENCE) {
        out.push_str(&rest[..at]);
        let after = &rest[at + REFERENCE.len()..];
        let end = reference_end(after);
        match ids.get(&after[..end]) {
            Some(id) => out.push_str(id),
            None => out.push_str(&rest[at..at + REFERENCE.len() + end]),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces, in place, every resolved `bulkId` reference in the strings of `value`.
fn substitute_value(value: &mut Value, ids: &HashMap<String, String>) {
    match value {
        Value::String(s) if s.contains(REFERENCE) => *s = substitute(s, ids),
        Value::Array(items) => items.iter_mut().for_each(|v| substitute_value(v, ids)),
        Value::Object(fields) => fields.values_mut().for_each(|v| substitute_value(v, ids)),
        _ => {}
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

/// The member id a group's `members` item names: `{"value": …}` in any case of `value`, or a
/// bare string, which Group POSTs accept too.
fn member_value(item: &Value) -> Option<&str> {
    match item {
        Value::String(s) => Some(s),
        Value::Object(m) => field(m, "value").and_then(Value::as_str),
        _ => None,
    }
}

/// The `bulkId` a `members` item refers to, when it is one of `pending`.
fn pending_id<'a>(item: &'a Value, pending: &HashSet<String>) -> Option<&'a str> {
    member_value(item).and_then(|v| v.strip_prefix(REFERENCE)).filter(|id| pending.contains(*id))
}

/// What a performed operation answers.
struct Done {
    status: StatusCode,
    id: String,
    kind: Kind,
    version: Option<i64>,
}

/// An operation checked and parsed, ready to write.
enum Write {
    Create(Kind, crate::scim::resource::Document),
    Replace(Kind, String, crate::scim::resource::Document),
    PatchUser(String, Vec<crate::scim::patch::PatchOp>),
    PatchGroup(String, Vec<crate::scim::patch::PatchOp>, Vec<MemberChange>),
    Delete(Kind, String),
}

/// What [`prepare`] reads of an operation besides its target and data.
#[derive(Debug, Clone)]
struct Head {
    method: Option<Method>,
    method_name: String,
    path: String,
    version: Option<String>,
}

impl Operation {
    fn head(&self) -> Head {
        Head {
            method: self.method,
            method_name: self.method_name.clone(),
            path: self.path.clone(),
            version: self.version.clone(),
        }
    }
}

/// Checks and parses an operation whose references are resolved: what it fails with here, it
/// fails with before writing anything.
fn prepare(op: &Head, target: Option<(Kind, Option<String>)>, data: Option<Value>) -> Result<Write, ScimError> {
    let method = op.method.ok_or_else(|| {
        ScimError::invalid_syntax(format!("\"method\" must be POST, PUT, PATCH or DELETE; got {:?}", op.method_name))
    })?;
    let (kind, id) = target.ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "\"path\" must be /Users, /Groups, /Users/{{id}} or /Groups/{{id}}; got {:?}",
            op.path
        ))
    })?;
    let data = || data.ok_or_else(|| ScimError::invalid_syntax(format!("{} needs \"data\"", op.method_name)));
    let rt = if kind == Kind::Users { &USER_RESOURCE } else { &GROUP_RESOURCE };
    match (method, id) {
        (Method::Post, None) => Ok(Write::Create(kind, parse_resource(rt, &data()?)?)),
        (Method::Put, Some(id)) => Ok(Write::Replace(kind, id, parse_resource(rt, &data()?)?)),
        (Method::Patch, Some(id)) => {
            let ops = parse_patch(&data()?)?;
            match kind {
                Kind::Users => Ok(Write::PatchUser(id, ops)),
                Kind::Groups => {
                    let (attribute_ops, member_changes) = split_member_ops(ops)?;
                    Ok(Write::PatchGroup(id, attribute_ops, member_changes))
                }
            }
        }
        (Method::Delete, Some(id)) => Ok(Write::Delete(kind, id)),
        (Method::Post, Some(_)) => {
            Err(ScimError::invalid_syntax("POST creates a resource: its \"path\" is /Users or /Groups"))
        }
        (_, None) => Err(ScimError::invalid_syntax(format!("{} needs the resource's id in \"path\"", op.method_name))),
    }
}

/// Writes one prepared operation through its resource's service, in the transaction open on
/// `conn`; the caller holds it in a savepoint of its own.
fn apply(conn: &mut DbConnection, ctx: &Ctx, write: Write, expected: Option<&str>) -> Result<Done, ScimError> {
    let done = |status, kind, id: String, version| Done { status, id, kind, version };
    match write {
        Write::Create(Kind::Users, doc) => {
            let row = users::create(conn, ctx, &doc)?;
            Ok(done(StatusCode::CREATED, Kind::Users, row.id, Some(row.version)))
        }
        Write::Create(Kind::Groups, doc) => {
            let row = groups::create(conn, ctx, &doc)?;
            Ok(done(StatusCode::CREATED, Kind::Groups, row.id, Some(row.version)))
        }
        Write::Replace(Kind::Users, id, doc) => {
            let put = users::Rewrite::put(ctx.clone(), id, doc, expected.map(str::to_owned));
            let (id, version) = (put.id().to_owned(), put.run(conn)?.row.version);
            Ok(done(StatusCode::OK, Kind::Users, id, Some(version)))
        }
        Write::Replace(Kind::Groups, id, doc) => {
            let version = groups::replace(conn, ctx, &id, &doc, expected)?.version;
            Ok(done(StatusCode::OK, Kind::Groups, id, Some(version)))
        }
        Write::PatchUser(id, ops) => {
            let patch = users::Rewrite::patch(ctx.clone(), id, ops, expected.map(str::to_owned));
            let (id, version) = (patch.id().to_owned(), patch.run(conn)?.row.version);
            Ok(done(StatusCode::OK, Kind::Users, id, Some(version)))
        }
        Write::PatchGroup(id, attribute_ops, member_changes) => {
            let version = groups::patch(conn, ctx, &id, &attribute_ops, &member_changes, expected)?.version;
            Ok(done(StatusCode::OK, Kind::Groups, id, Some(version)))
        }
        Write::Delete(Kind::Users, id) => {
            users::delete(conn, ctx, &id, expected)?;
            Ok(done(StatusCode::NO_CONTENT, Kind::Users, id, None))
        }
        Write::Delete(Kind::Groups, id) => {
            groups::delete(conn, ctx, &id, expected)?;
            Ok(done(StatusCode::NO_CONTENT, Kind::Groups, id, None))
        }
    }
}

/// An operation ready to run, its references resolved, apart from the request: what a chunk
/// on another connection needs of it.
struct Job {
    i: usize,
    head: Head,
    target: Option<(Kind, Option<String>)>,
    /// Kept (the write parses a copy) for a second run, should this one lose to a concurrent
    /// transaction.
    data: Option<Value>,
}

impl Job {
    /// Checks, parses and writes the operation in a savepoint of the transaction open on `conn`.
    fn run(&self, conn: &mut DbConnection, ctx: &Ctx) -> Result<Done, ScimError> {
        let write = prepare(&self.head, self.target.clone(), self.data.clone())?;
        write_transaction(conn, |conn| apply(conn, ctx, write, self.head.version.as_deref()))
    }

    /// For a User POST, the create checked and ready for [`users::create_many`]; None for any
    /// other operation.
    fn checked_user(&self, conn: &mut DbConnection, ctx: &Ctx) -> Option<Result<users::CheckedCreate, ScimError>> {
        if self.target != Some((Kind::Users, None)) {
            return None;
        }
        match prepare(&self.head, self.target.clone(), self.data.clone()) {
            Ok(Write::Create(Kind::Users, doc)) => Some(users::check_create(conn, ctx, doc)),
            Ok(_) => None,
            Err(err) => Some(Err(err)),
        }
    }

    /// Whether the operation is written without a savepoint, with the other users' creates of
    /// its chunk ([`run_apart`]): a User POST that does not touch the Roster extension (through
    /// which a create may make a Former Member at once, a transition of its own). Read from the
    /// data as sent, before parsing, so it errs towards the savepoint.
    fn batched(&self) -> bool {
        let roster = ROSTER_USER.to_ascii_lowercase();
        let touches_roster =
            |data: &Map<String, Value>| data.keys().any(|k| k.to_ascii_lowercase().starts_with(&roster));
        self.target == Some((Kind::Users, None))
            && self.head.method == Some(Method::Post)
            && self.data.as_ref().and_then(Value::as_object).is_some_and(|data| !touches_roster(data))
    }

    /// The value a POST must not share with another create of the same wave: the userName of a
    /// User, the displayName of a Group, folded as their unique indexes fold them.
    fn unique_key(&self) -> Option<String> {
        let (kind, name, key): (_, _, fn(&str) -> String) = match self.target {
            Some((Kind::Users, None)) => ("u", "userName", crate::scim::user_name::user_name_key),
            Some((Kind::Groups, None)) => ("g", "displayName", crate::scim::fold::fold),
            _ => return None,
        };
        let value = self.data.as_ref()?.as_object().and_then(|d| field(d, name)).and_then(Value::as_str)?;
        Some(format!("{kind}:{}", key(value)))
    }
}

/// What a chunk run apart from the runner did with one of its operations.
enum Ran {
    /// Done in the chunk's transaction: it stands only if that commits.
    Result(Result<Done, ScimError>),
    /// Done by a statement of its own (the chunk's users' creates), which committed or wrote
    /// nothing whatever becomes of the chunk's transaction.
    Settled(Result<Done, ScimError>),
    /// It lost to a concurrent transaction: it runs again, alone, after the wave.
    Contended(Job),
}

/// Runs the creates of one chunk of a wave (see [`run`]), putting what each did in `out` as it
/// goes, so that what ran is known even when a commit fails.
///
/// The users' creates are checked one by one and then written by one statement, its own
/// transaction ([`users::create_many`]): one round trip for them all instead of three each (a
/// savepoint, the write, its release), and no subtransaction. A user whose userName is taken
/// fails alone, as its savepoint would have had it. Should the statement fail as a whole (the
/// tenant deleted meanwhile, or its commit refused), it wrote nothing, and each of its creates
/// fails as the operations of a chunk whose commit failed do. The other creates (Groups, and
/// Users made Former Members at once) run in one transaction, each in a savepoint of its own.
fn run_apart(
    conn: &mut DbConnection,
    ctx: &Ctx,
    jobs: Vec<Job>,
    out: &Mutex<Vec<(usize, Ran)>>,
) -> Result<(), ScimError> {
    let report = |i: usize, ran: Ran| out.lock().unwrap_or_else(PoisonError::into_inner).push((i, ran));
    let (mut batch, mut checked, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for job in jobs {
        match job.checked_user(conn, ctx) {
            Some(Ok(create)) if !create.becomes_former_member() => {
                batch.push(job);
                checked.push(create);
            }
            Some(Err(err)) => report(job.i, Ran::Settled(Err(err))),
            _ => rest.push(job),
        }
    }
    if !batch.is_empty() {
        match users::create_many(conn, ctx, &checked) {
            Ok(rows) => {
                for (job, row) in batch.into_iter().zip(rows) {
                    let done = row.map(|row| Done {
                        status: StatusCode::CREATED,
                        id: row.id,
                        kind: Kind::Users,
                        version: Some(row.version),
                    });
                    report(job.i, Ran::Settled(done));
                }
            }
            Err(err) if err.is_contended() => batch.into_iter().for_each(|job| report(job.i, Ran::Contended(job))),
            Err(err) => batch.into_iter().for_each(|job| report(job.i, Ran::Settled(Err(not_committed(&err))))),
        }
    }
    if rest.is_empty() {
        return Ok(());
    }
    write_transaction(conn, |conn| {
        for job in rest {
            let i = job.i;
            let result = job.run(conn, ctx);
            let ran = if result.as_ref().is_err_and(ScimError::is_contended) {
                Ran::Contended(job)
            } else {
                Ran::Result(result)
            };
            report(i, ran);
        }
        Ok(())
    })
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
            if let Some((kind, Some(id))) = &op.target {
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

/// For a Group POST whose unresolved references are all members' ids: the `bulkId`s of the
/// members it must leave out to be created now (§3.7.1). None when it is no such POST.
fn pending_members(op: &Operation, pending: &HashSet<String>) -> Option<Vec<String>> {
    if !op.is_post() || !matches!(op.target, Some((Kind::Groups, None))) {
        return None;
    }
    let data = op.data.as_ref()?.as_object()?;
    let members_key = key_of(data, "members")?;
    let members = data.get(&members_key)?.as_array()?;
    let deferred: Vec<String> = members.iter().filter_map(|m| pending_id(m, pending)).map(str::to_owned).collect();
    // Everything else the POST names must be resolved already.
    let mut left = HashSet::new();
    for (key, value) in data {
        if *key == members_key {
            members.iter().filter(|m| pending_id(m, pending).is_none()).for_each(|m| references_in_value(m, &mut left));
        } else {
            references_in_value(value, &mut left);
        }
    }
    if deferred.is_empty() || left.iter().any(|id| pending.contains(id)) {
        return None;
    }
    Some(deferred)
}

/// What to do next, in the order the request's operations are run.
enum Step {
    /// Fail the operation without writing anything.
    Refuse(usize, ScimError),
    /// Perform the operation; when it breaks a circular reference, with the members (their
    /// `bulkId`s) it leaves to be added afterwards.
    Perform(usize, Option<Vec<String>>),
    Done,
}

/// A Bulk request being run: its operations, what has been done, and what comes next. It is
/// handed to the database thread for each chunk and back.
#[derive(Default)]
struct Runner {
    ops: Vec<Operation>,
    results: Vec<Option<Result<Done, ScimError>>>,
    /// The id of each resource a POST with a `bulkId` created.
    ids: HashMap<String, String>,
    /// The `bulkId`s whose POST failed.
    failed: HashSet<String>,
    /// The operation that declares each `bulkId`: the first POST naming it.
    declarer: HashMap<String, usize>,
    /// POSTs that declare a `bulkId` an earlier POST declared.
    duplicate: HashSet<usize>,
    errors: usize,
    fail_on_errors: usize,
    /// `failOnErrors` errors have been seen: nothing more runs.
    stopped: bool,
    /// The operations of the current pass over those still waiting, the next one's place in
    /// it, those that must wait for another pass, and whether this pass did anything.
    pass: Vec<usize>,
    at: usize,
    still: Vec<usize>,
    moved: bool,
    /// A cycle no Group POST can break was found: its operations are being refused.
    unbreakable: bool,
    /// Groups created without some members, and those members' `bulkId`s.
    deferred: Vec<(usize, Vec<String>)>,
    /// The operations done in the chunk being run, in order.
    chunk: Vec<usize>,
    /// An operation due to run that must start a chunk of its own (see [`run`]).
    held: Option<(usize, Option<Vec<String>>)>,
    /// Operations that lost to a concurrent transaction, each to run once more, alone, once
    /// their chunk has committed.
    retries: VecDeque<(usize, Option<Vec<String>>)>,
    /// Operations of a wave are being gathered: no new pass may start (see [`Runner::gather`]).
    in_flight: bool,
}

impl Runner {
    fn new(request: BulkRequest) -> Runner {
        let ops = request.operations;
        // The bulkIds POSTs declare; a second POST with the same one fails.
        let mut declarer = HashMap::new();
        let mut duplicate = HashSet::new();
        for (i, op) in ops.iter().enumerate() {
            if let Some(bulk_id) = op.bulk_id.as_ref().filter(|_| op.is_post()) {
                if declarer.contains_key(bulk_id) {
                    duplicate.insert(i);
                } else {
                    declarer.insert(bulk_id.clone(), i);
                }
            }
        }
        Runner {
            results: (0..ops.len()).map(|_| None).collect(),
            pass: (0..ops.len()).collect(),
            ops,
            ids: HashMap::new(),
            failed: HashSet::new(),
            declarer,
            duplicate,
            errors: 0,
            fail_on_errors: request.fail_on_errors.unwrap_or(usize::MAX),
            stopped: false,
            at: 0,
            still: Vec::new(),
            moved: false,
            unbreakable: false,
            deferred: Vec::new(),
            chunk: Vec::new(),
            held: None,
            retries: VecDeque::new(),
            in_flight: false,
        }
    }

    /// Operations neither done nor given up.
    fn left(&self) -> usize {
        if self.stopped {
            0
        } else {
            self.results.iter().filter(|r| r.is_none()).count()
        }
    }

    /// The next step: operations in the order given, each once every operation it refers to
    /// has run; then, pass after pass, those that waited; then the breaking of a cycle.
    fn next(&mut self) -> Step {
        loop {
            if let Some(&i) = self.pass.get(self.at) {
                self.at += 1;
                if self.unbreakable {
                    let err = ScimError::conflict(
                        Some(ScimType::InvalidValue),
                        "The operation is part of a circular bulkId reference that only a Group's members can break",
                    );
                    return Step::Refuse(i, err);
                }
                let op = &self.ops[i];
                if self.duplicate.contains(&i) {
                    let bulk_id = op.bulk_id.as_deref().unwrap_or_default();
                    let err =
                        ScimError::invalid_syntax(format!("bulkId {bulk_id:?} is declared by an earlier operation"));
                    return Step::Refuse(i, err);
                }
                if let Some(id) = op.refs.iter().find(|id| !self.declarer.contains_key(*id)) {
                    return Step::Refuse(i, unresolved_bulk_id(id, "is not declared by any POST of this request"));
                }
                if let Some(id) = op.refs.iter().find(|id| self.failed.contains(*id)) {
                    return Step::Refuse(i, unresolved_bulk_id(id, "names a resource whose operation failed"));
                }
                if op.refs.iter().all(|id| self.ids.contains_key(id)) {
                    self.moved = true;
                    return Step::Perform(i, None);
                }
                self.still.push(i);
                continue;
            }
            // A new pass must see the results of the operations gathered so far.
            if self.still.is_empty() || self.in_flight {
                return Step::Done;
            }
            self.pass = std::mem::take(&mut self.still);
            self.at = 0;
            if std::mem::take(&mut self.moved) {
                continue;
            }
            // Every operation left waits on another one: a circular reference (§3.7.1).
            let pending: HashSet<String> = self.pass.iter().filter_map(|&i| self.ops[i].bulk_id.clone()).collect();
            let breakable = self.pass.iter().find_map(|&i| pending_members(&self.ops[i], &pending).map(|m| (i, m)));
            match breakable {
                Some((i, later)) => {
                    self.pass.retain(|&w| w != i);
                    self.leave_out(i, &pending);
                    return Step::Perform(i, Some(later));
                }
                None => self.unbreakable = true,
            }
        }
    }

    /// Takes the still unresolved members out of a Group POST's data (see [`pending_members`]).
    fn leave_out(&mut self, i: usize, pending: &HashSet<String>) {
        let op = &mut self.ops[i];
        let Some(Value::Object(data)) = op.data.as_mut() else { return };
        let Some(key) = key_of(data, "members") else { return };
        if let Some(Value::Array(members)) = data.get_mut(&key) {
            members.retain(|m| pending_id(m, pending).is_none());
        }
        op.refs.retain(|id| !pending.contains(id));
    }

    /// Records an operation's result; stops once `failOnErrors` errors have been seen.
    fn record(&mut self, i: usize, result: Result<Done, ScimError>) {
        let op = &self.ops[i];
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
            self.stopped |= self.errors >= self.fail_on_errors;
        }
        self.results[i] = Some(result);
    }

    /// Operation `i` ready to run: its data taken out of the request, its references resolved.
    fn job(&mut self, i: usize) -> Job {
        let op = &mut self.ops[i];
        let mut data = op.data.take();
        let mut target = op.target.clone();
        if !op.refs.is_empty() {
            if let Some(data) = &mut data {
                substitute_value(data, &self.ids);
            }
            if let Some((_, Some(id))) = &mut target {
                *id = substitute(id, &self.ids);
            }
        }
        Job { i, head: self.ops[i].head(), target, data }
    }

    /// Performs operation `i`, its references resolved, in a savepoint of the open transaction.
    fn perform(&mut self, conn: &mut DbConnection, ctx: &Ctx, i: usize) -> Result<Done, ScimError> {
        let job = self.job(i);
        let result = job.run(conn, ctx);
        if result.as_ref().is_err_and(ScimError::is_contended) {
            // Kept for a second run.
            self.ops[i].data = job.data;
        }
        result
    }

    /// Performs operation `i` in the chunk and records its result. Returns false when it lost to
    /// a concurrent transaction and, `may_retry`, waits to run again instead.
    fn perform_and_record(
        &mut self,
        conn: &mut DbConnection,
        ctx: &Ctx,
        (i, later): (usize, Option<Vec<String>>),
        may_retry: bool,
    ) -> bool {
        self.chunk.push(i);
        let result = self.perform(conn, ctx, i);
        if may_retry && result.as_ref().is_err_and(ScimError::is_contended) {
            self.retries.push_back((i, later));
            return false;
        }
        if let (Ok(_), Some(later)) = (&result, later) {
            self.deferred.push((i, later));
        }
        self.record(i, result);
        true
    }

    /// Runs the next operations in one transaction, open on `conn`: at most `most`, for at most
    /// [`CHUNK_TIME`]; with `creates_only`, several only while they are POSTs, any other
    /// operation in a chunk of its own. Returns how many it did.
    fn chunk(&mut self, conn: &mut DbConnection, ctx: &Ctx, most: usize, creates_only: bool) -> usize {
        let started = Instant::now();
        self.chunk.clear();
        if let Some(step) = self.retries.pop_front() {
            self.perform_and_record(conn, ctx, step, false);
            return self.chunk.len();
        }
        while !self.stopped && self.chunk.len() < most && (self.chunk.is_empty() || started.elapsed() < CHUNK_TIME) {
            let step = match self.held.take() {
                Some((i, later)) => Step::Perform(i, later),
                None => self.next(),
            };
            match step {
                Step::Done => break,
                Step::Refuse(i, err) => {
                    self.chunk.push(i);
                    self.record(i, Err(err));
                }
                Step::Perform(i, later) => {
                    let alone = creates_only && !self.ops[i].is_post();
                    if alone && !self.chunk.is_empty() {
                        self.held = Some((i, later));
                        break;
                    }
                    // An operation that lost to a concurrent transaction ends its chunk: the
                    // operations after it may refer to it.
                    if !self.perform_and_record(conn, ctx, (i, later), true) || alone {
                        break;
                    }
                }
            }
        }
        self.chunk.len()
    }

    /// The chunk's transaction did not commit: none of its writes is stored, so each of its
    /// operations that had succeeded is failed, and what they declared with it.
    fn chunk_failed(&mut self, err: &ScimError) {
        for i in std::mem::take(&mut self.chunk) {
            if !matches!(self.results[i], Some(Ok(_))) {
                continue;
            }
            if let Some(bulk_id) = self.ops[i].bulk_id.as_ref().filter(|b| self.declarer.get(*b) == Some(&i)) {
                self.ids.remove(bulk_id);
            }
            self.results[i] = None;
            self.record(i, Err(not_committed(err)));
        }
    }

    /// Whether the next operations may be gathered into a wave: none is held back to run in a
    /// chunk of its own or to run again.
    fn may_gather(&self) -> bool {
        !self.stopped && self.held.is_none() && self.retries.is_empty()
    }

    /// Takes the next operations that may run at the same time, at most `most`, as at most
    /// `lanes` chunks: creates, in the order they are run, each ready (every `bulkId` it refers
    /// to resolved), none of them referring to another, and no two of them creating the same
    /// userName or Group displayName (which one a unique index lets through would otherwise
    /// depend on timing, not on the request's order). The wave ends before the first operation
    /// that is no such create — it is held and runs next, the way [`Runner::chunk`] runs them —
    /// before a new pass over waiting operations, which must see this wave's results, and once
    /// its creates that take a savepoint (all but [`Job::batched`] ones) fill every chunk's
    /// [`CHUNK_OPERATIONS_POSTGRES`]. Operations refused without writing are recorded at once.
    /// Returns the chunks, the creates spread evenly over them, and how many operations were
    /// taken in all.
    fn gather(&mut self, most: usize, lanes: usize) -> (Vec<Vec<Job>>, usize) {
        let mut jobs: Vec<Job> = Vec::new();
        let mut keys = HashSet::new();
        let mut refused = 0;
        let mut savepoints = 0;
        while jobs.len() + refused < most && self.may_gather() {
            self.in_flight = !jobs.is_empty();
            let step = self.next();
            self.in_flight = false;
            match step {
                Step::Done => break,
                Step::Refuse(i, err) => {
                    refused += 1;
                    self.record(i, Err(err));
                }
                Step::Perform(i, later) => {
                    let op = &self.ops[i];
                    if later.is_some() || !op.is_post() {
                        self.held = Some((i, later));
                        break;
                    }
                    let job = self.job(i);
                    let full = !job.batched() && savepoints == CHUNK_OPERATIONS_POSTGRES * lanes;
                    if full || job.unique_key().is_some_and(|key| !keys.insert(key)) {
                        self.ops[i].data = job.data;
                        self.held = Some((i, None));
                        break;
                    }
                    savepoints += usize::from(!job.batched());
                    jobs.push(job);
                }
            }
        }
        let taken = jobs.len() + refused;
        // The batched creates and the others each cut into `lanes` runs of consecutive
        // operations, so that every chunk has its share of both and none more savepoints than
        // it may take.
        let (batched, other): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(Job::batched);
        let size = |n: usize| n.div_ceil(lanes).max(1);
        let (batched_size, other_size) = (size(batched.len()), size(other.len()));
        let mut chunks: Vec<Vec<Job>> = (0..lanes).map(|_| Vec::new()).collect();
        for (n, job) in batched.into_iter().enumerate() {
            chunks[n / batched_size].push(job);
        }
        for (n, job) in other.into_iter().enumerate() {
            chunks[n / other_size].push(job);
        }
        chunks.retain(|chunk| !chunk.is_empty());
        (chunks, taken)
    }

    /// Records what a chunk of a wave did: when it committed, each operation's result; when it
    /// did not, every operation of it that had succeeded fails (nothing of it is stored), and
    /// those it never ran fail with its error. An operation that lost to a concurrent
    /// transaction waits to run again, alone.
    fn record_apart(&mut self, indices: Vec<usize>, ran: Vec<(usize, Ran)>, outcome: Result<(), ScimError>) {
        let mut seen = HashSet::new();
        for (i, ran) in ran {
            seen.insert(i);
            match (ran, &outcome) {
                (Ran::Contended(job), _) => {
                    self.ops[i].data = job.data;
                    self.retries.push_back((i, None));
                }
                (Ran::Settled(result), _) | (Ran::Result(result), Ok(())) => self.record(i, result),
                (Ran::Result(Ok(_)), Err(err)) => self.record(i, Err(not_committed(err))),
                (Ran::Result(Err(own)), Err(_)) => self.record(i, Err(own)),
            }
        }
        if let Err(err) = &outcome {
            for i in indices.into_iter().filter(|i| !seen.contains(i)) {
                self.record(i, Err(err.clone()));
            }
        }
    }

    /// Fails every operation not yet done with `err`, in order, as far as `failOnErrors` lets
    /// them be listed.
    fn refuse_rest(&mut self, err: &ScimError) {
        for i in 0..self.ops.len() {
            if self.stopped {
                return;
            }
            if self.results[i].is_none() {
                self.record(i, Err(err.clone()));
            }
        }
        self.stopped = true;
    }
}

/// An operation's error when it was applied but its chunk's transaction did not commit.
fn not_committed(err: &ScimError) -> ScimError {
    let mut failure = err.clone();
    failure.detail = format!(
        "The operation was applied, but the transaction it shared with other operations of this request did not \
         commit, so nothing of it was stored: {}",
        err.detail
    );
    failure
}

fn lock(runner: &Mutex<Runner>) -> std::sync::MutexGuard<'_, Runner> {
    runner.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs a Bulk request for the tenant of `ctx` and returns the BulkResponse.
///
/// The request was counted once against its tenant's rate when it was admitted; before each
/// chunk, `pace(n)` takes the places of the chunk's `n` further operations, at most `burst` at
/// once (the tenant's bucket holds no more), and a chunk never runs more operations than it took
/// places for. When `pace` refuses (the wait would be too long), the operations not yet done fail
/// with its error, each counting for `failOnErrors`.
pub async fn run<P, F>(
    db: &Database,
    batches: &Arc<MemberBatches>,
    ctx: &Ctx,
    base: &str,
    request: BulkRequest,
    burst: Option<usize>,
    mut pace: P,
) -> Value
where
    P: FnMut(usize) -> F,
    F: Future<Output = Result<(), ScimError>>,
{
    let lanes = lanes(db, &request);
    let runner = Arc::new(Mutex::new(Runner::new(request)));
    // Places taken and not yet used: the request's own admission pays for its first operation.
    let mut places = 1;
    loop {
        let left = lock(&runner).left();
        if left == 0 {
            break;
        }
        if let Some(lanes) = lanes.filter(|_| lock(&runner).may_gather()) {
            let most = left.min(CHUNK_OPERATIONS * lanes).min(burst.unwrap_or(usize::MAX).max(1));
            if places < most {
                if let Err(err) = pace(most - places).await {
                    lock(&runner).refuse_rest(&err);
                    break;
                }
                places = most;
            }
            let (chunks, taken) = lock(&runner).gather(most, lanes);
            if taken > 0 {
                run_wave(db, ctx, &runner, chunks).await;
                places -= taken;
                continue;
            }
            // The next operation is held to run in a chunk of its own, or none is left.
        }
        // On PostgreSQL, operations of one chunk hold their row locks until it commits, in the
        // request's order rather than the fixed orders every other write takes them in (groups
        // by key, users by id): only creates, which lock no row another request holds, share a
        // chunk. SQLite has a single writer and no such locks.
        let (chunk, creates_only) = match db.backend() {
            Backend::Postgres => (CHUNK_OPERATIONS_POSTGRES, true),
            Backend::Sqlite => (CHUNK_OPERATIONS, false),
        };
        let most = left.min(chunk).min(burst.unwrap_or(usize::MAX).max(1));
        if places < most {
            if let Err(err) = pace(most - places).await {
                lock(&runner).refuse_rest(&err);
                break;
            }
            places = most;
        }
        let (shared, ctx) = (runner.clone(), ctx.clone());
        let outcome = db
            .write(move |conn| {
                write_transaction(conn, |conn| Ok::<_, ScimError>(lock(&shared).chunk(conn, &ctx, most, creates_only)))
            })
            .await;
        let mut runner = lock(&runner);
        match outcome {
            // Nothing was left to run after all (not expected: every operation ends with a result).
            Ok(0) => break,
            Ok(done) => {
                runner.chunk.clear();
                places -= done;
            }
            Err(err) => {
                let done = runner.chunk.len();
                runner.chunk_failed(&err);
                if done == 0 {
                    // The chunk never ran (no connection, say): neither will the next one.
                    runner.refuse_rest(&err);
                    break;
                }
                places -= done;
            }
        }
    }

    // Every chunk has ended: the runner is this request's alone again.
    let mut runner = std::mem::take(&mut *lock(&runner));
    let runner = &mut runner;
    add_deferred(db, batches, ctx, runner).await;
    let operations: Vec<Value> = runner
        .results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().map(|r| entry(&runner.ops[i], base, r)))
        .collect();
    json!({"schemas": [BULK_RESPONSE], "Operations": operations})
}

/// How many chunks of creates run at the same time, each on a connection of its own, or None
/// where creates do not run in waves. On PostgreSQL a chunk's users are one statement (see
/// [`run_apart`]) and its other creates a round trip after the other; the database has a core
/// free meanwhile, and Roster checks the next chunk's users: several chunks keep both busy. At
/// most four, and at most half the pool, so that one tenant's Bulk leaves connections to the
/// others (the tenant's share, when set, bounds it further). SQLite has one writer: no waves,
/// one chunk at a time. With `failOnErrors` there are no waves either: §3.7.3 counts errors in
/// the order operations are processed, and the operations after the last error allowed must
/// not have run, while a chunk's users are written all at once.
fn lanes(db: &Database, request: &BulkRequest) -> Option<usize> {
    match (db.backend(), request.fail_on_errors) {
        (Backend::Postgres, None) => Some((db.pool_state().0 as usize / 2).clamp(1, 4)),
        _ => None,
    }
}

/// Runs the chunks of a wave (see [`Runner::gather`]) at the same time, each in a transaction
/// of its own on a connection of its own, and records what they did once all have ended.
async fn run_wave(db: &Database, ctx: &Ctx, runner: &Mutex<Runner>, chunks: Vec<Vec<Job>>) {
    let runs = chunks.into_iter().map(|jobs| {
        let indices: Vec<usize> = jobs.iter().map(|job| job.i).collect();
        let out = Arc::new(Mutex::new(Vec::new()));
        let (shared, ctx) = (out.clone(), ctx.clone());
        let write = db.write(move |conn| run_apart(conn, &ctx, jobs, &shared));
        async move {
            let outcome = write.await;
            let ran = std::mem::take(&mut *out.lock().unwrap_or_else(PoisonError::into_inner));
            (indices, ran, outcome)
        }
    });
    let outcomes = futures_util::future::join_all(runs).await;
    let mut runner = lock(runner);
    for (indices, ran, outcome) in outcomes {
        runner.record_apart(indices, ran, outcome);
    }
}

/// Adds the members the Group POSTs that broke circular references left out (§3.7.1), now that
/// the resources they name are stored, as a Group PATCH adding them would: through
/// [`MemberBatches::patch`].
async fn add_deferred(db: &Database, batches: &Arc<MemberBatches>, ctx: &Ctx, runner: &mut Runner) {
    for (i, later) in std::mem::take(&mut runner.deferred) {
        let Some(Ok(done)) = &runner.results[i] else { continue };
        let group_id = done.id.clone();
        let members: Option<Vec<Member>> = later
            .iter()
            .map(|b| runner.ids.get(b).map(|id| Member { value: id.clone(), display: None, kind: None }))
            .collect();
        let outcome = match members {
            Some(members) => {
                let changes = vec![MemberChange::Add(members)];
                batches.patch(db, ctx.clone(), group_id.clone(), Vec::new(), changes, None).await
            }
            None => Err(ScimError::conflict(
                Some(ScimType::InvalidValue),
                format!(
                    "The group {group_id} was created, but members {later:?} were not added: their operations \
                     failed or were not run"
                ),
            )),
        };
        match (outcome, &mut runner.results[i]) {
            (Ok(version), Some(Ok(done))) => done.version = Some(version),
            (Err(err), result) => *result = Some(Err(err)),
            _ => {}
        }
    }
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
        let mut data = json!({"members": [{"value": "bulkId:a"}, "bulkId:a", "bulkId:b"]});
        substitute_value(&mut data, &ids);
        assert_eq!(data, json!({"members": [{"value": "id-a"}, "id-a", "bulkId:b"]}));
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
        let err = parse(json!({"schemas": [BULK_REQUEST], "Operations": ops})).unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        for bad in [json!([]), json!({"schemas": [BULK_REQUEST]}), json!({"Operations": [], "failOnErrors": 0})] {
            assert_eq!(parse(bad.clone()).unwrap_err().scim_type, Some(ScimType::InvalidSyntax), "{bad}");
        }
    }

    #[test]
    fn a_group_post_leaves_out_pending_members_however_they_are_written() {
        let pending = HashSet::from(["a".to_owned(), "b".to_owned(), "c".to_owned()]);
        let request = parse(json!({"Operations": [{"method": "POST", "path": "/Groups", "bulkId": "g", "data": {
            "displayName": "G",
            "Members": [{"value": "bulkId:a"}, {"Value": "bulkId:b"}, "bulkId:c", {"value": "kept"}]
        }}]}))
        .unwrap();
        let mut runner = Runner::new(request);
        let later = pending_members(&runner.ops[0], &pending).expect("breakable");
        assert_eq!(later, ["a", "b", "c"]);
        runner.leave_out(0, &pending);
        assert_eq!(runner.ops[0].data.as_ref().unwrap()["Members"], json!([{"value": "kept"}]));
        assert!(runner.ops[0].refs.is_empty());
    }

    #[test]
    fn a_group_post_naming_a_pending_resource_elsewhere_cannot_break_a_cycle() {
        let pending = HashSet::from(["a".to_owned()]);
        let request = parse(json!({"Operations": [{"method": "POST", "path": "/Groups", "data": {
            "displayName": "bulkId:a", "members": ["bulkId:a"]
        }}]}))
        .unwrap();
        assert!(pending_members(&request.operations[0], &pending).is_none());
    }
}
