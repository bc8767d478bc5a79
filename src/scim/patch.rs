//! The PATCH engine (RFC 7644 §3.5.2), applied in memory to a canonical
//! [`Document`].
//!
//! Beyond the RFC it accepts what Okta and Microsoft Entra ID send:
//! * `op` in any case (`"Replace"`, `"ADD"`), `Operations` in any case;
//! * path-less values with dotted or fully qualified keys
//!   (`{"name.givenName": "y", "urn:…:enterprise:2.0:User:employeeNumber": "z"}`);
//! * readOnly attributes in a path-less value (Okta's group push sends `id`),
//!   which are ignored;
//! * `"True"`/`"False"` strings for booleans, null or `""` to unassign;
//! * a filtered path that matches nothing, such as `emails[type eq "work"].value`
//!   on a user without emails: when the filter is a conjunction of `eq`
//!   comparisons, the item is created from them;
//! * `{"op": "Remove", "path": "members", "value": [{"value": "id"}]}`, which
//!   removes only the listed items, never the whole attribute;
//! * the enterprise `manager` as `[{"value": "id"}]` or as a plain id.
//!
//! Group membership changes are split off first by
//! [`split_member_ops`](crate::scim::members::split_member_ops) so storage can apply them to very
//! large groups without loading the membership. Value filters in paths are evaluated by
//! [`filter::matches_item`](crate::scim::filter::matches_item).

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::scim::filter::{matches_item, parse_path, AttrPath, CompValue, CompareOp, Filter, PatchPath};
use crate::scim::fold::fold;
use crate::scim::resource::{
    canonical_value_named, describe, extension_of, is_unassigned, object_entry, placement, prune, validate, Document,
};
use crate::scim::schema::{find_attribute, AttrType, Attribute, Mutability, ResourceType, Schema, GROUP_SCHEMA};

/// URN of a PATCH request body (RFC 7644 §3.5.2).
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Most operations accepted in one PATCH request.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Add => "add",
            OpKind::Remove => "remove",
            OpKind::Replace => "replace",
        }
    }
}

/// One operation of a PatchOp request.
#[derive(Debug, Clone)]
pub struct PatchOp {
    pub op: OpKind,
    pub path: Option<PatchPath>,
    /// As sent; `Some(Value::Null)` when the request had `"value": null`.
    pub value: Option<Value>,
}

// ---------------------------------------------------------------------------
// Parsing

/// Parses a PatchOp request body (RFC 7644 §3.5.2).
///
/// `schemas`, when present, may hold only the PatchOp URN; `Operations` (any
/// case) must be a non-empty array of at most [`MAX_OPERATIONS`] operations;
/// `op` is case-insensitive; `path` is parsed with [`parse_path`]; `value`
/// is kept as sent.
pub fn parse_patch(body: &Value) -> Result<Vec<PatchOp>, ScimError> {
    let Value::Object(fields) = body else {
        return Err(ScimError::invalid_syntax(format!("The PATCH body must be a JSON object, got {}", describe(body))));
    };
    let mut schemas = None;
    let mut operations = None;
    for (key, value) in fields {
        let slot = if key.eq_ignore_ascii_case("schemas") {
            &mut schemas
        } else if key.eq_ignore_ascii_case("operations") {
            &mut operations
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            return Err(ScimError::given_twice(key));
        }
    }
    match schemas {
        None | Some(Value::Null) => {}
        // Some clients name the resource's schema beside PatchOp; the request is still plainly a
        // PatchOp (RFC 7644 §3.5.2), so the extra URNs are ignored. Without PatchOp it is not one.
        Some(Value::Array(urns)) => {
            let patch_op = |urn: &Value| urn.as_str().is_some_and(|u| u.eq_ignore_ascii_case(PATCH_OP_URN));
            if let Some(first) = urns.first().filter(|_| !urns.iter().any(patch_op)) {
                return Err(ScimError::invalid_value(format!(
                    "\"schemas\" of a PATCH request must include \"{PATCH_OP_URN}\"; got {}",
                    describe(first)
                )));
            }
        }
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "\"schemas\" must be [\"{PATCH_OP_URN}\"], got {}",
                describe(other)
            )))
        }
    }
    let ops = match operations {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        Some(Value::Array(_)) => {
            return Err(ScimError::invalid_syntax("\"Operations\" must hold at least one operation"))
        }
        Some(other) => {
            return Err(ScimError::invalid_syntax(format!(
                "\"Operations\" must be an array of operations, got {}",
                describe(other)
            )))
        }
        None => {
            return Err(ScimError::invalid_syntax("A PATCH request needs an \"Operations\" array (RFC 7644 §3.5.2)"))
        }
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_value(format!(
            "A PATCH request may hold at most {MAX_OPERATIONS} operations, got {}",
            ops.len()
        )));
    }
    ops.iter().enumerate().map(|(i, op)| parse_op(i, op)).collect()
}

fn parse_op(index: usize, op: &Value) -> Result<PatchOp, ScimError> {
    let at = format!("Operations[{index}]");
    let Value::Object(fields) = op else {
        return Err(ScimError::invalid_syntax(format!("{at} must be an object, got {}", describe(op))));
    };
    let (mut kind, mut path, mut value) = (None, None, None);
    for (key, v) in fields {
        let slot = if key.eq_ignore_ascii_case("op") {
            &mut kind
        } else if key.eq_ignore_ascii_case("path") {
            &mut path
        } else if key.eq_ignore_ascii_case("value") {
            &mut value
        } else {
            continue;
        };
        if slot.replace(v).is_some() {
            return Err(ScimError::given_twice(&format!("{at}.{key}")));
        }
    }
    let kind = match kind.and_then(Value::as_str).map(str::trim) {
        Some(word) if word.eq_ignore_ascii_case("add") => OpKind::Add,
        Some(word) if word.eq_ignore_ascii_case("remove") => OpKind::Remove,
        Some(word) if word.eq_ignore_ascii_case("replace") => OpKind::Replace,
        _ => {
            let got = kind.map_or("nothing".to_string(), describe);
            return Err(ScimError::invalid_syntax(format!(
                "{at}.op must be \"add\", \"remove\" or \"replace\", got {got}"
            )));
        }
    };
    let path = match path {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        Some(Value::String(text)) => Some(
            parse_path(text)
                .map_err(|e| ScimError::invalid_path(format!("{at}.path {:?} is not a valid path: {e}", text)))?,
        ),
        Some(other) => {
            return Err(ScimError::invalid_path(format!("{at}.path must be a string, got {}", describe(other))))
        }
    };
    Ok(PatchOp { op: kind, path, value: value.cloned() })
}

// ---------------------------------------------------------------------------
// Applying

/// Applies the operations in order to a copy of `doc` and returns it, after
/// checking the result with [`validate`]. Any failure leaves nothing
/// applied: the caller's document is never touched.
pub fn apply(rt: &'static ResourceType, doc: &Document, ops: &[PatchOp]) -> Result<Document, ScimError> {
    let mut work = doc.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_op(rt, &mut work, op).map_err(|e| {
            let scim_type = e.scim_type.unwrap_or(ScimType::InvalidValue);
            ScimError::bad_request(scim_type, format!("Operations[{i}] ({}): {}", op.op.as_str(), e.detail))
        })?;
    }
    prune(&mut work);
    validate(rt, &work)?;
    Ok(work)
}

/// A resolved attribute path.
struct Target<'p> {
    /// The extension object holding the attribute; `None` for the top level.
    ext: Option<&'static str>,
    attr: &'static Attribute,
    /// From `attr.sub` or, after a filter, `attr[...].sub`.
    sub: Option<&'static Attribute>,
    filter: Option<&'p Filter>,
    /// The path as written, for messages.
    text: String,
}

impl Target<'_> {
    fn label(&self) -> String {
        match self.sub {
            Some(sub) => format!("{}.{}", self.attr.name, sub.name),
            None => self.attr.name.to_string(),
        }
    }
}

enum Resolved<'p> {
    /// A whole extension, e.g. `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    Extension(&'static Schema),
    Attr(Target<'p>),
}

fn resolve<'p>(rt: &'static ResourceType, path: &'p PatchPath) -> Result<Resolved<'p>, ScimError> {
    if path.filter.is_none() && path.attr.sub.is_none() {
        if let Some(urn) = &path.attr.urn {
            if let Some(ext) = extension_of(rt, &format!("{urn}:{}", path.attr.attr)) {
                return Ok(Resolved::Extension(ext));
            }
        }
    }
    let Some(found) = find_attribute(rt, path.attr.urn.as_deref(), &path.attr.attr) else {
        return Err(ScimError::invalid_path(format!("\"{path}\" does not name an attribute of a {}", rt.name)));
    };
    let attr = found.attr;
    let sub = match path.attr.sub.as_deref().or(path.value_sub.as_deref()) {
        None => None,
        Some(name) => match attr.sub_attribute(name) {
            Some(sub) => Some(sub),
            None if attr.kind != AttrType::Complex => {
                return Err(ScimError::invalid_path(format!("\"{path}\": {:?} has no sub-attributes", attr.name)))
            }
            None => {
                return Err(ScimError::invalid_path(format!(
                    "\"{path}\": {:?} has no sub-attribute {name:?}",
                    attr.name
                )))
            }
        },
    };
    if path.filter.is_some() && !attr.multi_valued {
        return Err(ScimError::invalid_path(format!(
            "\"{path}\": a value filter applies only to a multi-valued attribute, and {:?} is single-valued",
            attr.name
        )));
    }
    Ok(Resolved::Attr(Target {
        ext: placement(rt, &found),
        attr,
        sub,
        filter: path.filter.as_ref(),
        text: path.to_string(),
    }))
}

fn apply_op(rt: &'static ResourceType, doc: &mut Document, op: &PatchOp) -> Result<(), ScimError> {
    let Some(path) = &op.path else {
        if op.op == OpKind::Remove {
            return Err(ScimError::bad_request(
                ScimType::NoTarget,
                "A remove operation needs a \"path\" (RFC 7644 §3.5.2.2)",
            ));
        }
        return apply_pathless(rt, doc, op.op, op.value.as_ref());
    };
    match resolve(rt, path)? {
        Resolved::Extension(ext) => apply_extension(rt, doc, op.op, ext, op.value.as_ref()),
        Resolved::Attr(target) => {
            check_mutability(&target)?;
            apply_target(doc, op.op, &target, op.value.as_ref())
        }
    }
}

/// An explicit path may not name a readOnly attribute, nor change an
/// immutable sub-attribute in place.
fn check_mutability(t: &Target) -> Result<(), ScimError> {
    let read_only = |a: &Attribute| a.mutability == Mutability::ReadOnly;
    if read_only(t.attr) || t.sub.is_some_and(read_only) {
        return Err(ScimError::bad_request(
            ScimType::Mutability,
            format!("\"{}\" is readOnly and cannot be changed", t.text),
        ));
    }
    let immutable = |a: &Attribute| a.mutability == Mutability::Immutable;
    if immutable(t.attr) || t.sub.is_some_and(immutable) {
        return Err(ScimError::bad_request(
            ScimType::Mutability,
            format!("\"{}\" is immutable and cannot be changed in place", t.text),
        ));
    }
    Ok(())
}

/// Attributes a path-less value may name but that are silently skipped.
fn ignored_in_value(t: &Target) -> bool {
    let read_only = |a: &Attribute| a.mutability == Mutability::ReadOnly;
    read_only(t.attr) || t.sub.is_some_and(read_only)
}

/// `add`/`replace` without a path: each key of the value object is a path
/// (plain, dotted, fully qualified or an extension URN holding an object).
fn apply_pathless(
    rt: &'static ResourceType,
    doc: &mut Document,
    kind: OpKind,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let Some(Value::Object(fields)) = value else {
        let got = value.map_or("nothing".to_string(), describe);
        return Err(ScimError::invalid_value(format!(
            "An {} without a \"path\" needs an object of attributes as its value, got {got}",
            kind.as_str()
        )));
    };
    let mut seen = HashSet::new();
    for (key, v) in fields {
        if !seen.insert(key.to_ascii_lowercase()) {
            return Err(ScimError::given_twice(key));
        }
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = extension_of(rt, key) {
            apply_extension(rt, doc, kind, ext, Some(v))?;
            continue;
        }
        // Unknown or malformed keys are ignored, as in a POST body.
        let Ok(path) = parse_path(key) else { continue };
        match resolve(rt, &path) {
            Ok(Resolved::Attr(target)) if !ignored_in_value(&target) => apply_target(doc, kind, &target, Some(v))?,
            Ok(Resolved::Extension(ext)) => apply_extension(rt, doc, kind, ext, Some(v))?,
            _ => {}
        }
    }
    Ok(())
}

/// An operation on a whole extension: its attributes are merged one by one
/// (remove drops the extension object).
fn apply_extension(
    rt: &'static ResourceType,
    doc: &mut Document,
    kind: OpKind,
    ext: &'static Schema,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let fields = match (kind, value) {
        (OpKind::Remove, _) => {
            doc.remove(ext.id);
            return Ok(());
        }
        (_, None | Some(Value::Null)) => {
            if kind == OpKind::Replace {
                doc.remove(ext.id);
            }
            return Ok(());
        }
        (_, Some(Value::Object(fields))) => fields,
        (_, Some(other)) => {
            return Err(ScimError::invalid_value(format!(
                "{:?} must be given an object of the extension's attributes, got {}",
                ext.id,
                describe(other)
            )))
        }
    };
    let mut seen = HashSet::new();
    for (key, v) in fields {
        if !seen.insert(key.to_ascii_lowercase()) {
            return Err(ScimError::given_twice(key));
        }
        let Ok(mut path) = parse_path(key) else { continue };
        if path.attr.urn.is_none() {
            path.attr.urn = Some(ext.id.to_string());
        }
        if let Ok(Resolved::Attr(target)) = resolve(rt, &path) {
            if target.ext == Some(ext.id) && !ignored_in_value(&target) {
                apply_target(doc, kind, &target, Some(v))?;
            }
        }
    }
    Ok(())
}

fn apply_target(doc: &mut Document, kind: OpKind, t: &Target, value: Option<&Value>) -> Result<(), ScimError> {
    // writeOnly (`password`) is accepted and never stored.
    let write_only = |a: &Attribute| a.mutability == Mutability::WriteOnly;
    if write_only(t.attr) || t.sub.is_some_and(write_only) {
        return Ok(());
    }
    let container = match t.ext {
        None => doc,
        Some(ext) => object_entry(doc, ext),
    };
    match kind {
        OpKind::Remove => remove_target(container, t, value),
        OpKind::Add | OpKind::Replace => set_target(container, kind, t, value.unwrap_or(&Value::Null)),
    }
}

// -- add / replace ------------------------------------------------------------

fn set_target(c: &mut Map<String, Value>, kind: OpKind, t: &Target, value: &Value) -> Result<(), ScimError> {
    let attr = t.attr;
    if let Some(filter) = t.filter {
        // RFC 7644 §3.5.2.1: with a value filter, add acts as replace.
        return set_filtered(c, t, filter, value);
    }
    if attr.multi_valued {
        if let Some(sub) = t.sub {
            return set_sub_on_every_item(c, t, sub, value);
        }
        let new_items = match canonical_value_named(attr, value, attr.name)? {
            Some(Value::Array(items)) => items,
            Some(single) => vec![single],
            None => Vec::new(),
        };
        if kind == OpKind::Replace {
            put_list(c, attr, new_items);
            return Ok(());
        }
        let mut list = take_list(c, attr);
        let mut touched = Vec::new();
        for item in new_items {
            // RFC 7644 §3.5.2.1: a value already present is not added again.
            if !list.iter().any(|existing| same_item(attr, existing, &item)) {
                list.push(item);
                touched.push(list.len() - 1);
            }
        }
        demote_other_primaries(&mut list, &touched);
        put_list(c, attr, list);
        return Ok(());
    }
    if attr.kind == AttrType::Complex {
        return match t.sub {
            Some(sub) => set_sub_of_singular(c, attr, sub, value),
            None => merge_singular(c, attr, value),
        };
    }
    let canonical = canonical_value_named(attr, value, attr.name)?;
    set_or_remove(c, attr.name, canonical);
    Ok(())
}

/// `attr[filter]` or `attr[filter].sub`: replaces (merges into) the matching
/// items, or sets `sub` on them. With no match, an `eq`-only filter creates
/// the item (Entra's `emails[type eq "work"].value` on a user without one);
/// any other filter is 400 noTarget (RFC 7644 §3.5.2.3).
fn set_filtered(c: &mut Map<String, Value>, t: &Target, filter: &Filter, value: &Value) -> Result<(), ScimError> {
    let attr = t.attr;
    check_filter(attr, filter)?;
    let label = t.label();
    // What to do to each matching item, worked out once.
    let change = match t.sub {
        Some(sub) => ItemChange::Sub(sub, canonical_value_named(sub, value, &label)?),
        None => match sub_changes(attr, value, &label)? {
            Some(changes) => ItemChange::Merge(changes),
            None => ItemChange::Unassign,
        },
    };
    let mut list = take_list(c, attr);
    let matched = matching_indices(attr, &list, filter)?;
    if matched.is_empty() {
        let created = match eq_conjunction(filter) {
            Some(eqs) => new_item_from(attr, &eqs, &change, &label)?,
            None => {
                return Err(ScimError::bad_request(
                    ScimType::NoTarget,
                    format!(
                        "\"{}\" matches no value (only a filter of eq comparisons joined by and can create one)",
                        t.text
                    ),
                ))
            }
        };
        if let Some(item) = created {
            list.push(item);
            let last = list.len() - 1;
            demote_other_primaries(&mut list, &[last]);
        }
        put_list(c, attr, list);
        return Ok(());
    }
    for &i in &matched {
        let item = &mut list[i];
        match &change {
            ItemChange::Unassign => *item = Value::Null,
            ItemChange::Sub(sub, v) => {
                let fields = item_object(item);
                set_or_remove(fields, sub.name, v.clone());
            }
            ItemChange::Merge(changes) => {
                let fields = item_object(item);
                for (name, v) in changes {
                    set_or_remove(fields, name, v.clone());
                }
            }
        }
    }
    demote_other_primaries(&mut list, &matched);
    put_list(c, attr, list);
    Ok(())
}

/// Sub-attributes to set (`Some`) or unassign (`None`), by canonical name.
type SubChanges = Vec<(&'static str, Option<Value>)>;

enum ItemChange {
    /// Set (`Some`) or unassign (`None`) one sub-attribute.
    Sub(&'static Attribute, Option<Value>),
    /// Set or unassign each named sub-attribute, leaving the others.
    Merge(SubChanges),
    /// Remove the item (the value was null).
    Unassign,
}

/// The item a filtered add/replace creates when nothing matched: the
/// filter's `eq` values plus the operation's value, canonicalised. `None`
/// when the value assigns nothing (e.g. null).
fn new_item_from(
    attr: &'static Attribute,
    eqs: &[(&AttrPath, &CompValue)],
    change: &ItemChange,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    let mut item = Map::new();
    let assigns = match change {
        ItemChange::Unassign => false,
        ItemChange::Sub(_, v) => v.is_some(),
        ItemChange::Merge(changes) => changes.iter().any(|(_, v)| v.is_some()),
    };
    if !assigns {
        return Ok(None);
    }
    for (path, value) in eqs {
        // check_filter has resolved every name already.
        let (Some(sub), Some(json)) = (attr.sub_attribute(&path.attr), comp_to_json(value)) else { continue };
        item.insert(sub.name.to_string(), json);
    }
    match change {
        ItemChange::Sub(sub, v) => set_or_remove(&mut item, sub.name, v.clone()),
        ItemChange::Merge(changes) => {
            for (name, v) in changes {
                set_or_remove(&mut item, name, v.clone());
            }
        }
        ItemChange::Unassign => {}
    }
    // The filter's values are checked like any other input ("primary eq
    // \"true\"" becomes a boolean; a bad email is refused).
    match canonical_value_named(attr, &Value::Array(vec![Value::Object(item)]), label)? {
        Some(Value::Array(mut items)) if items.len() == 1 => Ok(items.pop()),
        _ => Ok(None),
    }
}

/// `attr.sub` on a multi-valued attribute without a filter: sets `sub` on
/// every item, or creates one item if there is none.
fn set_sub_on_every_item(
    c: &mut Map<String, Value>,
    t: &Target,
    sub: &'static Attribute,
    value: &Value,
) -> Result<(), ScimError> {
    let canonical = canonical_value_named(sub, value, &t.label())?;
    let mut list = take_list(c, t.attr);
    if list.is_empty() {
        if let Some(v) = canonical {
            let mut item = Map::new();
            item.insert(sub.name.to_string(), v);
            list.push(Value::Object(item));
        }
    } else {
        for item in &mut list {
            set_or_remove(item_object(item), sub.name, canonical.clone());
        }
    }
    put_list(c, t.attr, list);
    Ok(())
}

/// The sub-attribute changes a value object asks for, canonicalised:
/// `Some(name, None)` unassigns that sub-attribute. Returns `None` when the
/// whole value is unassigned (null, "", []).
fn sub_changes(attr: &'static Attribute, value: &Value, label: &str) -> Result<Option<SubChanges>, ScimError> {
    let fields = match value {
        Value::Object(fields) => fields,
        Value::Array(items) => {
            return match items.as_slice() {
                [] => Ok(None),
                [only] => sub_changes(attr, only, label),
                _ => Err(ScimError::invalid_value(format!(
                    "{label:?} takes a single object here, got an array of {} values",
                    items.len()
                ))),
            }
        }
        v if is_unassigned(v) => return Ok(None),
        // A bare id for an attribute with a `value` (Entra's manager id).
        Value::String(_) | Value::Number(_) | Value::Bool(_) if attr.sub_attribute("value").is_some() => {
            let mut wrapped = Map::new();
            wrapped.insert("value".to_string(), value.clone());
            return sub_changes(attr, &Value::Object(wrapped), label);
        }
        other => return Err(ScimError::invalid_value(format!("{label:?} must be an object, got {}", describe(other)))),
    };
    let mut changes = Vec::with_capacity(fields.len());
    let mut seen = HashSet::new();
    for (key, v) in fields {
        let Some(sub) = attr.sub_attribute(key) else { continue };
        if !seen.insert(sub.name) {
            return Err(ScimError::given_twice(&format!("{label}.{key}")));
        }
        if matches!(sub.mutability, Mutability::ReadOnly | Mutability::WriteOnly) {
            continue;
        }
        let canonical = canonical_value_named(sub, v, &format!("{label}.{}", sub.name))?;
        changes.push((sub.name, canonical));
    }
    Ok(Some(changes))
}

/// A singular complex attribute: sub-attributes given replace or add to
/// the stored ones, the others are left unchanged (RFC 7644 §3.5.2.3).
/// When an attribute with a `value` (the enterprise `manager`) gets a
/// different `value`, it refers to something else, so its other
/// sub-attributes (a stale `$ref`) are dropped.
fn merge_singular(c: &mut Map<String, Value>, attr: &'static Attribute, value: &Value) -> Result<(), ScimError> {
    let Some(changes) = sub_changes(attr, value, attr.name)? else {
        c.remove(attr.name);
        return Ok(());
    };
    let mut fields = match c.remove(attr.name) {
        Some(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    if let Some((_, new_value)) = changes.iter().find(|(name, _)| *name == "value") {
        if fields.get("value") != new_value.as_ref() {
            fields.clear();
        }
    }
    for (name, v) in changes {
        set_or_remove(&mut fields, name, v);
    }
    if !fields.is_empty() {
        c.insert(attr.name.to_string(), Value::Object(fields));
    }
    Ok(())
}

fn set_sub_of_singular(
    c: &mut Map<String, Value>,
    attr: &'static Attribute,
    sub: &'static Attribute,
    value: &Value,
) -> Result<(), ScimError> {
    let canonical = canonical_value_named(sub, value, &format!("{}.{}", attr.name, sub.name))?;
    let mut fields = match c.remove(attr.name) {
        Some(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    if sub.name == "value" && fields.get("value") != canonical.as_ref() {
        fields.clear();
    }
    set_or_remove(&mut fields, sub.name, canonical);
    if !fields.is_empty() {
        c.insert(attr.name.to_string(), Value::Object(fields));
    }
    Ok(())
}

// -- remove ---------------------------------------------------------------------

fn remove_target(c: &mut Map<String, Value>, t: &Target, value: Option<&Value>) -> Result<(), ScimError> {
    let attr = t.attr;
    if let Some(filter) = t.filter {
        check_filter(attr, filter)?;
        let mut list = take_list(c, attr);
        // No match is not an error: the values are already absent.
        for i in matching_indices(attr, &list, filter)? {
            match t.sub {
                Some(sub) => {
                    item_object(&mut list[i]).remove(sub.name);
                }
                None => list[i] = Value::Null,
            }
        }
        put_list(c, attr, list);
        return Ok(());
    }
    if attr.multi_valued {
        if let Some(sub) = t.sub {
            let mut list = take_list(c, attr);
            for item in &mut list {
                item_object(item).remove(sub.name);
            }
            put_list(c, attr, list);
            return Ok(());
        }
        return match value {
            // Entra: {"op":"Remove","path":"members","value":[{"value":"id"}]}
            // removes the listed values only.
            Some(listed) if !listed.is_null() => remove_listed(c, attr, listed),
            _ => {
                c.remove(attr.name);
                Ok(())
            }
        };
    }
    match t.sub {
        // Without its `value` a reference (manager) refers to nothing.
        Some(sub) if sub.name != "value" => {
            if let Some(Value::Object(fields)) = c.get_mut(attr.name) {
                fields.remove(sub.name);
                if fields.is_empty() {
                    c.remove(attr.name);
                }
            }
        }
        _ => {
            c.remove(attr.name);
        }
    }
    Ok(())
}

/// Removes the items of a multi-valued attribute listed in a remove's
/// value: matched by their `value` sub-attribute (honouring its caseExact),
/// or, for attributes without one (addresses), as whole items.
fn remove_listed(c: &mut Map<String, Value>, attr: &'static Attribute, listed: &Value) -> Result<(), ScimError> {
    let listed = match listed {
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    let mut list = take_list(c, attr);
    match attr.sub_attribute("value") {
        Some(value_sub) => {
            let key = |s: &str| if value_sub.case_exact { s.to_string() } else { fold(s) };
            let mut doomed = HashSet::new();
            for entry in listed {
                let id = match entry {
                    Value::Object(fields) => {
                        fields.iter().find(|(k, _)| k.eq_ignore_ascii_case("value")).map(|(_, v)| v)
                    }
                    other => Some(other),
                };
                match id {
                    Some(Value::String(s)) if !s.is_empty() => doomed.insert(key(s)),
                    Some(Value::Number(n)) => doomed.insert(n.to_string()),
                    _ => {
                        return Err(ScimError::invalid_value(format!(
                            "Each value to remove from {:?} needs a \"value\", got {}",
                            attr.name,
                            describe(entry)
                        )))
                    }
                };
            }
            list.retain(|item| match item.get("value") {
                Some(Value::String(s)) => !doomed.contains(&key(s)),
                _ => true,
            });
        }
        None => {
            let doomed = match canonical_value_named(attr, &Value::Array(listed.to_vec()), attr.name)? {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            list.retain(|item| !doomed.contains(item));
        }
    }
    put_list(c, attr, list);
    Ok(())
}

// -- helpers ----------------------------------------------------------------------

/// The items of a multi-valued attribute, taken out of the container.
fn take_list(c: &mut Map<String, Value>, attr: &Attribute) -> Vec<Value> {
    match c.remove(attr.name) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => vec![other],
    }
}

/// Puts the items back (replacing any), dropping empty ones; an empty list
/// is unassigned.
fn put_list(c: &mut Map<String, Value>, attr: &Attribute, mut list: Vec<Value>) {
    list.retain(|item| !is_unassigned(item));
    if list.is_empty() {
        c.remove(attr.name);
    } else {
        c.insert(attr.name.to_string(), Value::Array(list));
    }
}

fn item_object(item: &mut Value) -> &mut Map<String, Value> {
    if !item.is_object() {
        *item = Value::Object(Map::new());
    }
    match item {
        Value::Object(fields) => fields,
        _ => unreachable!("just made an object"),
    }
}

fn set_or_remove(c: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            c.insert(name.to_string(), v);
        }
        None => {
            c.remove(name);
        }
    }
}

/// Identical items are not added twice; a group member is the same member
/// whatever its `display`.
fn same_item(attr: &'static Attribute, a: &Value, b: &Value) -> bool {
    let is_members = GROUP_SCHEMA.attribute("members").is_some_and(|m| std::ptr::eq(m, attr));
    a == b || (is_members && a.get("value").is_some() && a.get("value") == b.get("value"))
}

/// RFC 7644 §3.5.2: setting one value's `primary` to true sets it to false
/// on the others.
fn demote_other_primaries(list: &mut [Value], touched: &[usize]) {
    let is_primary = |item: &Value| item.get("primary") == Some(&Value::Bool(true));
    if !touched.iter().any(|&i| list.get(i).is_some_and(is_primary)) {
        return;
    }
    for (i, item) in list.iter_mut().enumerate() {
        if !touched.contains(&i) && is_primary(item) {
            item_object(item).insert("primary".to_string(), Value::Bool(false));
        }
    }
}

fn matching_indices(attr: &'static Attribute, list: &[Value], filter: &Filter) -> Result<Vec<usize>, ScimError> {
    let mut matched = Vec::new();
    for (i, item) in list.iter().enumerate() {
        if matches_item(attr, item, filter)? {
            matched.push(i);
        }
    }
    Ok(matched)
}

/// Checks a value filter against the schema even when there is no item to
/// test it on, so a bad filter fails the same way on an empty list.
fn check_filter(attr: &'static Attribute, filter: &Filter) -> Result<(), ScimError> {
    matches_item(attr, &Value::Object(Map::new()), filter).map(|_| ())
}

/// The `eq` comparisons of a filter made only of `eq` joined by `and`.
fn eq_conjunction(filter: &Filter) -> Option<Vec<(&AttrPath, &CompValue)>> {
    match filter {
        Filter::Compare { path, op: CompareOp::Eq, value } if path.urn.is_none() && path.sub.is_none() => {
            Some(vec![(path, value)])
        }
        Filter::And(left, right) => {
            let mut eqs = eq_conjunction(left)?;
            eqs.extend(eq_conjunction(right)?);
            Some(eqs)
        }
        _ => None,
    }
}

fn comp_to_json(value: &CompValue) -> Option<Value> {
    match value {
        CompValue::Str(s) => Some(Value::String(s.clone())),
        CompValue::Bool(b) => Some(Value::Bool(*b)),
        CompValue::Number(n) => Some(Value::Number(n.clone())),
        CompValue::Null => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::members::{split_member_ops, MemberChange};
    use crate::scim::resource::parse_resource;
    use crate::scim::schema::{ENTERPRISE_USER, GROUP_RESOURCE, ROSTER_USER, USER_RESOURCE};
    use serde_json::json;

    const BABS: &str = "2819c223-7f76-453a-919d-413861904646";
    const JAMES: &str = "08e1d05d-121c-4561-8b96-473d93df9210";
    const GROUP_ID: &str = "acbf3ae7-8463-4692-b4fd-9b4da3f908ce";

    fn doc(value: Value) -> Document {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn body(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP_URN], "Operations": ops})
    }

    /// Parses and applies one PatchOp body.
    fn patch(rt: &'static ResourceType, start: &Document, ops: Value) -> Result<Document, ScimError> {
        let ops = parse_patch(&body(ops))?;
        apply(rt, start, &ops)
    }

    fn patch_user(start: Value, ops: Value) -> Result<Document, ScimError> {
        patch(&USER_RESOURCE, &doc(start), ops)
    }

    fn patch_group(start: Value, ops: Value) -> Result<Document, ScimError> {
        patch(&GROUP_RESOURCE, &doc(start), ops)
    }

    #[track_caller]
    fn fails<T: std::fmt::Debug>(result: Result<T, ScimError>, scim_type: ScimType, detail_part: &str) -> ScimError {
        let err = result.expect_err("expected an error");
        assert_eq!(err.scim_type, Some(scim_type), "{}", err.detail);
        assert!(err.detail.contains(detail_part), "detail {:?} lacks {detail_part:?}", err.detail);
        err
    }

    fn member(id: &str, display: &str) -> Value {
        json!({"display": display, "$ref": format!("https://example.com/v2/Users/{id}"), "value": id})
    }

    /// The user the RFC 7644 §3.5.2 examples act on, in canonical form.
    fn bjensen() -> Value {
        json!({
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"},
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "addresses": [
                {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "region": "CA",
                 "postalCode": "91608", "country": "USA", "primary": true},
                {"type": "home", "streetAddress": "456 Hollywood Blvd", "locality": "Hollywood", "region": "CA",
                 "postalCode": "91608", "country": "USA"}
            ],
            "active": true,
            ENTERPRISE_USER: {"employeeNumber": "701984", "department": "Tour Operations",
                              "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d",
                                          "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d"}}
        })
    }

    fn tour_guides(members: &[(&str, &str)]) -> Value {
        let members: Vec<Value> = members.iter().map(|(id, name)| member(id, name)).collect();
        json!({"displayName": "Tour Guides", "members": members})
    }

    // -- parse_patch ------------------------------------------------------------------

    #[test]
    fn parse_accepts_any_case_for_op_and_operations() {
        let ops = parse_patch(&json!({
            "schemas": ["URN:IETF:PARAMS:SCIM:API:MESSAGES:2.0:PATCHOP"],
            "operations": [
                {"op": "Replace", "path": "active", "value": "False"},
                {"Op": "ADD", "Path": "emails", "Value": {"value": "a@b.c"}},
                {"op": "remove", "path": "nickName"}
            ]
        }))
        .unwrap();
        assert_eq!(ops.iter().map(|o| o.op).collect::<Vec<_>>(), [OpKind::Replace, OpKind::Add, OpKind::Remove]);
        // The value is kept as sent.
        assert_eq!(ops[0].value, Some(json!("False")));
        assert_eq!(ops[1].path.as_ref().unwrap().to_string(), "emails");
        assert_eq!(ops[2].value, None);
    }

    #[test]
    fn parse_tolerates_missing_schemas_and_keeps_explicit_null_values() {
        let ops = parse_patch(&json!({"Operations": [{"op": "replace", "path": "nickName", "value": null}]})).unwrap();
        assert_eq!(ops[0].value, Some(Value::Null));
        assert!(parse_patch(&json!({"schemas": [], "Operations": [{"op": "remove", "path": "x"}]})).is_ok());
    }

    #[test]
    fn parse_rejects_other_schemas() {
        let other = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": [{"op": "remove", "path": "nickName"}]});
        fails(parse_patch(&other), ScimType::InvalidValue, "urn:ietf:params:scim:schemas:core:2.0:User");
        let not_array = json!({"schemas": PATCH_OP_URN, "Operations": [{"op": "remove", "path": "nickName"}]});
        fails(parse_patch(&not_array), ScimType::InvalidValue, "schemas");
    }

    #[test]
    fn parse_requires_a_non_empty_operations_array_of_bounded_size() {
        fails(parse_patch(&json!([])), ScimType::InvalidSyntax, "JSON object");
        fails(parse_patch(&json!({"schemas": [PATCH_OP_URN]})), ScimType::InvalidSyntax, "Operations");
        fails(parse_patch(&body(json!([]))), ScimType::InvalidSyntax, "at least one");
        fails(parse_patch(&body(json!({"op": "add"}))), ScimType::InvalidSyntax, "array");
        let many: Vec<Value> = (0..=MAX_OPERATIONS).map(|_| json!({"op": "remove", "path": "nickName"})).collect();
        fails(parse_patch(&body(Value::Array(many))), ScimType::InvalidValue, "at most 1000");
        let enough: Vec<Value> = (0..MAX_OPERATIONS).map(|_| json!({"op": "remove", "path": "nickName"})).collect();
        assert_eq!(parse_patch(&body(Value::Array(enough))).unwrap().len(), MAX_OPERATIONS);
        fails(
            parse_patch(&json!({"Operations": [], "operations": [{"op": "remove", "path": "x"}]})),
            ScimType::InvalidSyntax,
            "more than once",
        );
    }

    #[test]
    fn parse_rejects_unknown_ops_and_non_object_operations() {
        fails(parse_patch(&body(json!([{"op": "move", "path": "x"}]))), ScimType::InvalidSyntax, "\"move\"");
        fails(parse_patch(&body(json!([{"path": "x"}]))), ScimType::InvalidSyntax, "Operations[0].op");
        fails(parse_patch(&body(json!(["remove"]))), ScimType::InvalidSyntax, "Operations[0] must be an object");
    }

    #[test]
    fn parse_reports_bad_paths_as_invalid_path_with_the_parser_message() {
        let err = fails(
            parse_patch(&body(json!([{"op": "remove", "path": "emails[type eq \"work\""}]))),
            ScimType::InvalidPath,
            "Operations[0].path",
        );
        assert!(err.detail.contains("expected \"]\" to close the value filter"), "{}", err.detail);
        fails(parse_patch(&body(json!([{"op": "remove", "path": 5}]))), ScimType::InvalidPath, "must be a string");
    }

    // -- RFC 7644 §3.5.2.1 add ------------------------------------------------------------

    #[test]
    fn rfc_add_member_to_group() {
        let start = tour_guides(&[(JAMES, "James Smith")]);
        let out = patch_group(start, json!([{"op": "add", "path": "members", "value": [member(BABS, "Babs Jensen")]}]))
            .unwrap();
        assert_eq!(out["members"], json!([member(JAMES, "James Smith"), member(BABS, "Babs Jensen")]));
    }

    #[test]
    fn rfc_add_without_path_appends_emails_and_sets_nickname() {
        let start = json!({"userName": "bjensen", "emails": [{"value": "bjensen@example.com", "type": "work"}]});
        // The RFC spells it "nickname": attribute names are case-insensitive.
        let out = patch_user(
            start,
            json!([{"op": "add", "value": {"emails": [{"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"}}]),
        )
        .unwrap();
        assert_eq!(
            out,
            doc(json!({
                "userName": "bjensen",
                "emails": [{"value": "bjensen@example.com", "type": "work"}, {"value": "babs@jensen.org", "type": "home"}],
                "nickName": "Babs"
            }))
        );
    }

    // -- RFC 7644 §3.5.2.2 remove --------------------------------------------------------

    #[test]
    fn rfc_remove_single_member() {
        let start = tour_guides(&[(BABS, "Babs Jensen"), (JAMES, "James Smith")]);
        let out =
            patch_group(start, json!([{"op": "remove", "path": format!("members[value eq \"{BABS}\"]")}])).unwrap();
        assert_eq!(out["members"], json!([member(JAMES, "James Smith")]));
    }

    #[test]
    fn rfc_remove_all_members() {
        let start = tour_guides(&[(BABS, "Babs Jensen"), (JAMES, "James Smith")]);
        let out = patch_group(start, json!([{"op": "remove", "path": "members"}])).unwrap();
        assert_eq!(out, doc(json!({"displayName": "Tour Guides"})));
    }

    #[test]
    fn rfc_remove_work_email_ending_in_example_com() {
        let start = json!({"userName": "bjensen", "emails": [
            {"value": "bjensen@example.com", "type": "work"},
            {"value": "bjensen@example.org", "type": "work"},
            {"value": "babs@example.com", "type": "home"}
        ]});
        let out = patch_user(
            start,
            json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
        )
        .unwrap();
        assert_eq!(
            out["emails"],
            json!([{"value": "bjensen@example.org", "type": "work"}, {"value": "babs@example.com", "type": "home"}])
        );
    }

    #[test]
    fn rfc_remove_all_members_then_add_new_ones() {
        let start = tour_guides(&[(BABS, "Babs Jensen")]);
        let out = patch_group(
            start,
            json!([
                {"op": "remove", "path": "members"},
                {"op": "add", "path": "members", "value": [member(BABS, "Babs Jensen"), member(JAMES, "James Smith")]}
            ]),
        )
        .unwrap();
        assert_eq!(out["members"], json!([member(BABS, "Babs Jensen"), member(JAMES, "James Smith")]));
    }

    // -- RFC 7644 §3.5.2.3 replace ---------------------------------------------------------

    #[test]
    fn rfc_replace_all_members() {
        let start = tour_guides(&[("6c5bb468-14b2-4183-baf2-06d523e03bd3", "Old Member")]);
        let new = json!([member(BABS, "Babs Jensen"), member(JAMES, "James Smith")]);
        let out = patch_group(start, json!([{"op": "replace", "path": "members", "value": new}])).unwrap();
        assert_eq!(out["members"], new);
    }

    #[test]
    fn rfc_replace_work_address() {
        let new_address = json!({
            "type": "work",
            "streetAddress": "911 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "US",
            "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
            "primary": true
        });
        let start = bjensen();
        let out = patch_user(
            start.clone(),
            json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": new_address}]),
        )
        .unwrap();
        assert_eq!(out["addresses"], json!([new_address, start["addresses"][1]]));
    }

    #[test]
    fn rfc_replace_street_address_of_work_address() {
        let start = bjensen();
        let out = patch_user(
            start.clone(),
            json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1010 Broadway Ave"}]),
        )
        .unwrap();
        assert_eq!(out["addresses"][0]["streetAddress"], "1010 Broadway Ave");
        assert_eq!(out["addresses"][0]["locality"], "Hollywood");
        assert_eq!(out["addresses"][1], start["addresses"][1]);
    }

    #[test]
    fn rfc_replace_without_path_replaces_emails_and_nickname() {
        let start = json!({"userName": "bjensen", "emails": [{"value": "old@example.com"}], "nickName": "B"});
        let emails = json!([
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ]);
        let out =
            patch_user(start, json!([{"op": "replace", "value": {"emails": emails, "nickname": "Babs"}}])).unwrap();
        assert_eq!(out, doc(json!({"userName": "bjensen", "emails": emails, "nickName": "Babs"})));
    }

    // -- paths -----------------------------------------------------------------------------

    #[test]
    fn paths_resolve_case_insensitively() {
        let out = patch_user(
            bjensen(),
            json!([
                {"op": "replace", "path": "NAME.GIVENNAME", "value": "Babs"},
                {"op": "replace", "path": "Emails[TYPE eq \"WORK\"].VALUE", "value": "babs@example.com"},
                {"op": "replace", "path": "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:Department", "value": "Sales"},
                {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:nickName", "value": "B"}
            ]),
        )
        .unwrap();
        assert_eq!(out["name"]["givenName"], "Babs");
        assert_eq!(out["emails"][0]["value"], "babs@example.com");
        assert_eq!(out[ENTERPRISE_USER]["department"], "Sales");
        assert_eq!(out["nickName"], "B");
    }

    #[test]
    fn unknown_attribute_path_is_invalid_path() {
        fails(
            patch_user(bjensen(), json!([{"op": "replace", "path": "nickNme", "value": "x"}])),
            ScimType::InvalidPath,
            "nickNme",
        );
        fails(
            patch_user(bjensen(), json!([{"op": "replace", "path": "name.nosuch", "value": "x"}])),
            ScimType::InvalidPath,
            "nosuch",
        );
        fails(
            patch_user(bjensen(), json!([{"op": "replace", "path": "userName.x", "value": "x"}])),
            ScimType::InvalidPath,
            "no sub-attributes",
        );
        fails(
            patch_user(bjensen(), json!([{"op": "replace", "path": "name[givenName eq \"x\"]", "value": {}}])),
            ScimType::InvalidPath,
            "single-valued",
        );
        fails(
            patch_group(tour_guides(&[]), json!([{"op": "replace", "path": "userName", "value": "x"}])),
            ScimType::InvalidPath,
            "Group",
        );
    }

    #[test]
    fn explicit_path_to_read_only_attribute_is_mutability() {
        for path in [
            "id",
            "meta.created",
            "groups",
            "urn:ietf:params:scim:schemas:extension:roster:2.0:User:lifecycleState",
            "manager.displayName",
        ] {
            fails(
                patch_user(bjensen(), json!([{"op": "replace", "path": path, "value": "x"}])),
                ScimType::Mutability,
                "readOnly",
            );
            fails(patch_user(bjensen(), json!([{"op": "remove", "path": path}])), ScimType::Mutability, "readOnly");
        }
        fails(
            patch_group(
                tour_guides(&[(BABS, "Babs")]),
                json!([{"op": "replace", "path": format!("members[value eq \"{BABS}\"].display"), "value": "B"}]),
            ),
            ScimType::Mutability,
            "immutable",
        );
    }

    #[test]
    fn okta_group_push_pathless_replace_ignores_id() {
        let start = tour_guides(&[(BABS, "Babs Jensen")]);
        let out = patch_group(
            start.clone(),
            json!([{"op": "replace", "value": {"id": GROUP_ID, "displayName": "Tour Guides (EMEA)"}}]),
        )
        .unwrap();
        assert_eq!(out["displayName"], "Tour Guides (EMEA)");
        assert!(!out.contains_key("id"));
        assert_eq!(out["members"], start["members"]);
    }

    #[test]
    fn read_only_keys_in_a_pathless_value_are_ignored() {
        let out = patch_user(
            bjensen(),
            json!([{"op": "replace", "value": {
                "meta": {"created": "2020-01-01T00:00:00Z"},
                "groups": [{"value": "g"}],
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                ROSTER_USER: {"lifecycleState": "formerMember", "formerMember": true},
                "nickName": "Babs"
            }}]),
        )
        .unwrap();
        assert_eq!(out["nickName"], "Babs");
        assert_eq!(out[ROSTER_USER], json!({"formerMember": true}));
        assert!(!out.contains_key("groups") && !out.contains_key("meta"));
    }

    // -- add ---------------------------------------------------------------------------------

    #[test]
    fn add_without_path_needs_an_object() {
        for value in [json!("x"), json!([{"nickName": "x"}]), json!(null)] {
            fails(patch_user(bjensen(), json!([{"op": "add", "value": value}])), ScimType::InvalidValue, "object");
        }
        fails(patch_user(bjensen(), json!([{"op": "replace"}])), ScimType::InvalidValue, "got nothing");
    }

    #[test]
    fn add_does_not_duplicate_an_identical_item() {
        let start = bjensen();
        let out = patch_user(
            start.clone(),
            json!([{"op": "add", "path": "emails", "value": {"value": "babs@jensen.org", "type": "home"}}]),
        )
        .unwrap();
        assert_eq!(out["emails"], start["emails"]);
        // A member already present (whatever its display) is not added twice.
        let group = tour_guides(&[(BABS, "Babs Jensen")]);
        let out = patch_group(group, json!([{"op": "add", "path": "members", "value": [{"value": BABS}]}])).unwrap();
        assert_eq!(out["members"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn add_merges_complex_and_sets_simple_attributes() {
        let out = patch_user(
            bjensen(),
            json!([{"op": "add", "value": {"name": {"honorificPrefix": "Ms."}, "title": "Tour Guide", "name.familyName": "Jensen-Smith"}}]),
        )
        .unwrap();
        assert_eq!(
            out["name"],
            json!({"givenName": "Barbara", "familyName": "Jensen-Smith", "middleName": "Jane", "honorificPrefix": "Ms."})
        );
        assert_eq!(out["title"], "Tour Guide");
        let out =
            patch_user(bjensen(), json!([{"op": "add", "path": "name.honorificSuffix", "value": "III"}])).unwrap();
        assert_eq!(out["name"]["honorificSuffix"], "III");
        let out = patch_user(json!({"userName": "a"}), json!([{"op": "add", "path": "name.givenName", "value": "A"}]))
            .unwrap();
        assert_eq!(out["name"], json!({"givenName": "A"}));
    }

    #[test]
    fn add_with_primary_true_demotes_the_other_primary() {
        let out = patch_user(
            bjensen(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "new@example.com", "type": "other", "primary": true}]}]),
        )
        .unwrap();
        let primaries: Vec<_> = out["emails"].as_array().unwrap().iter().map(|e| e.get("primary").cloned()).collect();
        assert_eq!(primaries, [Some(json!(false)), None, Some(json!(true))]);
        let out = patch_user(
            bjensen(),
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
        )
        .unwrap();
        assert_eq!(out["emails"][0]["primary"], false);
        assert_eq!(out["emails"][1]["primary"], true);
    }

    // -- replace -------------------------------------------------------------------------------

    #[test]
    fn replace_without_path_merges_complex_singular_attributes() {
        let out = patch_user(
            bjensen(),
            json!([{"op": "replace", "value": {"name": {"givenName": "Babs", "middleName": null}}}]),
        )
        .unwrap();
        // familyName is kept, middleName unassigned by null.
        assert_eq!(out["name"], json!({"givenName": "Babs", "familyName": "Jensen"}));
        let out = patch_user(bjensen(), json!([{"op": "replace", "path": "name", "value": {"familyName": "Smith"}}]))
            .unwrap();
        assert_eq!(out["name"], json!({"givenName": "Barbara", "familyName": "Smith", "middleName": "Jane"}));
    }

    #[test]
    fn replace_multi_valued_without_filter_replaces_the_list() {
        let out =
            patch_user(bjensen(), json!([{"op": "replace", "path": "emails", "value": {"value": "only@example.com"}}]))
                .unwrap();
        assert_eq!(out["emails"], json!([{"value": "only@example.com"}]));
        let out = patch_user(bjensen(), json!([{"op": "replace", "value": {"emails": []}}])).unwrap();
        assert!(!out.contains_key("emails"));
    }

    #[test]
    fn filtered_replace_merges_into_every_matching_item() {
        let start = json!({"userName": "a", "phoneNumbers": [
            {"value": "555-0100", "type": "work"},
            {"value": "555-0101", "type": "WORK", "display": "desk"},
            {"value": "555-0199", "type": "home"}
        ]});
        let out = patch_user(
            start,
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"work\"]", "value": {"display": "office"}}]),
        )
        .unwrap();
        assert_eq!(
            out["phoneNumbers"],
            json!([
                {"value": "555-0100", "type": "work", "display": "office"},
                {"value": "555-0101", "type": "WORK", "display": "office"},
                {"value": "555-0199", "type": "home"}
            ])
        );
    }

    #[test]
    fn filtered_replace_on_absent_email_creates_it() {
        // Entra ID's update of a user who has no work email (SSOReady PR 249, SCIM-SDK #416).
        let out = patch_user(
            json!({"userName": "a"}),
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "a@example.com"}]),
        )
        .unwrap();
        assert_eq!(out["emails"], json!([{"type": "work", "value": "a@example.com"}]));
        // Add behaves the same, and all eq values of a conjunction are used.
        let out = patch_user(
            json!({"userName": "a"}),
            json!([{"op": "Add", "path": "addresses[type eq \"work\" and primary eq true].formatted", "value": "1 Main St"}]),
        )
        .unwrap();
        assert_eq!(out["addresses"], json!([{"type": "work", "primary": true, "formatted": "1 Main St"}]));
        // A value object is merged into the new item.
        let out = patch_user(
            json!({"userName": "a", "phoneNumbers": [{"value": "1", "type": "home"}]}),
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\"]", "value": {"value": "2"}}]),
        )
        .unwrap();
        assert_eq!(out["phoneNumbers"], json!([{"value": "1", "type": "home"}, {"type": "mobile", "value": "2"}]));
        // Nothing to assign: nothing is created.
        let out = patch_user(
            json!({"userName": "a"}),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": null}]),
        )
        .unwrap();
        assert_eq!(out, doc(json!({"userName": "a"})));
    }

    #[test]
    fn created_item_is_validated() {
        fails(
            patch_user(
                json!({"userName": "a"}),
                json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": 5}]),
            ),
            ScimType::InvalidValue,
            "must be a string",
        );
    }

    #[test]
    fn filtered_replace_without_match_and_without_plain_eq_is_no_target() {
        for path in [
            "emails[type ne \"work\"].value",
            "emails[value co \"@\"].value",
            "emails[type eq \"work\" or type eq \"home\"].value",
        ] {
            fails(
                patch_user(
                    json!({"userName": "a"}),
                    json!([{"op": "replace", "path": path, "value": "a@example.com"}]),
                ),
                ScimType::NoTarget,
                "matches no value",
            );
        }
    }

    #[test]
    fn entra_pathless_dotted_and_qualified_keys() {
        let out = patch_user(
            bjensen(),
            json!([{"op": "Replace", "value": {
                "name.givenName": "y",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "z",
                "active": false,
                "emails[type eq \"work\"].value": "y@example.com"
            }}]),
        )
        .unwrap();
        assert_eq!(out["name"]["givenName"], "y");
        assert_eq!(out["name"]["familyName"], "Jensen");
        assert_eq!(out[ENTERPRISE_USER]["employeeNumber"], "z");
        assert_eq!(out[ENTERPRISE_USER]["department"], "Tour Operations");
        assert_eq!(out["active"], false);
        assert_eq!(out["emails"][0], json!({"value": "y@example.com", "type": "work", "primary": true}));
    }

    #[test]
    fn extension_urn_key_in_a_pathless_value_merges_into_the_extension() {
        let out = patch_user(
            bjensen(),
            json!([{"op": "replace", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"Department": "Sales", "costCenter": "4130"}}}]),
        )
        .unwrap();
        assert_eq!(out[ENTERPRISE_USER]["department"], "Sales");
        assert_eq!(out[ENTERPRISE_USER]["costCenter"], "4130");
        assert_eq!(out[ENTERPRISE_USER]["employeeNumber"], "701984");
        // With a path to the whole extension too.
        let out =
            patch_user(bjensen(), json!([{"op": "add", "path": ENTERPRISE_USER, "value": {"division": "Theme Park"}}]))
                .unwrap();
        assert_eq!(out[ENTERPRISE_USER]["division"], "Theme Park");
        assert_eq!(out[ENTERPRISE_USER]["employeeNumber"], "701984");
        let out = patch_user(bjensen(), json!([{"op": "remove", "path": ENTERPRISE_USER}])).unwrap();
        assert!(!out.contains_key(ENTERPRISE_USER));
        fails(
            patch_user(bjensen(), json!([{"op": "replace", "value": {ENTERPRISE_USER: "Sales"}}])),
            ScimType::InvalidValue,
            "object",
        );
    }

    #[test]
    fn unknown_keys_in_a_pathless_value_are_ignored() {
        let out = patch_user(
            bjensen(),
            json!([{"op": "replace", "value": {"nickNme": "x", "name.nosuch": "y", "bad key!": 1, "title": "T"}}]),
        )
        .unwrap();
        let mut expected = doc(bjensen());
        expected.insert("title".into(), json!("T"));
        assert_eq!(out, expected);
    }

    #[test]
    fn same_key_twice_in_a_pathless_value_is_invalid_syntax() {
        fails(
            patch_user(bjensen(), json!([{"op": "replace", "value": {"nickName": "a", "NICKNAME": "b"}}])),
            ScimType::InvalidSyntax,
            "more than once",
        );
    }

    // -- remove ---------------------------------------------------------------------------------

    #[test]
    fn remove_without_path_is_no_target() {
        fails(patch_user(bjensen(), json!([{"op": "remove", "value": {"nickName": "x"}}])), ScimType::NoTarget, "path");
    }

    #[test]
    fn remove_attribute_sub_attribute_and_filtered_values() {
        let out = patch_user(bjensen(), json!([{"op": "remove", "path": "active"}])).unwrap();
        assert!(!out.contains_key("active"));
        let out = patch_user(bjensen(), json!([{"op": "remove", "path": "name.middleName"}])).unwrap();
        assert_eq!(out["name"], json!({"givenName": "Barbara", "familyName": "Jensen"}));
        let out = patch_user(
            bjensen(),
            json!([{"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.familyName"}, {"op": "remove", "path": "name.middleName"}]),
        )
        .unwrap();
        assert!(!out.contains_key("name"), "an emptied complex attribute is unassigned");
        let out = patch_user(bjensen(), json!([{"op": "remove", "path": "emails[type eq \"home\"]"}])).unwrap();
        assert_eq!(out["emails"], json!([{"value": "bjensen@example.com", "type": "work", "primary": true}]));
        let out = patch_user(bjensen(), json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}])).unwrap();
        assert_eq!(out["emails"][0], json!({"value": "bjensen@example.com", "type": "work"}));
        let out = patch_user(
            bjensen(),
            json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}]),
        )
        .unwrap();
        assert_eq!(out[ENTERPRISE_USER].get("department"), None);
        let out = patch_user(bjensen(), json!([{"op": "remove", "path": "emails"}])).unwrap();
        assert!(!out.contains_key("emails"));
    }

    #[test]
    fn remove_with_filter_matching_nothing_is_a_no_op() {
        let out = patch_user(bjensen(), json!([{"op": "remove", "path": "emails[type eq \"other\"]"}])).unwrap();
        assert_eq!(out, doc(bjensen()));
        let out = patch_user(
            json!({"userName": "a"}),
            json!([{"op": "remove", "path": "phoneNumbers[type eq \"fax\"].value"}]),
        )
        .unwrap();
        assert_eq!(out, doc(json!({"userName": "a"})));
    }

    #[test]
    fn entra_remove_with_value_list_removes_only_listed_members() {
        let start = tour_guides(&[
            (BABS, "Babs Jensen"),
            (JAMES, "James Smith"),
            ("6c5bb468-14b2-4183-baf2-06d523e03bd3", "Kim"),
        ]);
        let out = patch_group(
            start,
            json!([{"op": "Remove", "path": "members", "value": [{"value": BABS}, {"value": "not-a-member"}]}]),
        )
        .unwrap();
        assert_eq!(
            out["members"],
            json!([member(JAMES, "James Smith"), member("6c5bb468-14b2-4183-baf2-06d523e03bd3", "Kim")])
        );
        // And through split_member_ops, which storage uses for groups.
        let ops = parse_patch(&body(json!([{"op": "Remove", "path": "members", "value": [{"value": BABS}]}]))).unwrap();
        let (rest, changes) = split_member_ops(ops).unwrap();
        assert!(rest.is_empty());
        assert_eq!(changes, [MemberChange::Remove(vec![BABS.to_string()])]);
    }

    #[test]
    fn remove_with_value_list_on_other_multi_valued_attributes() {
        let out =
            patch_user(bjensen(), json!([{"op": "remove", "path": "emails", "value": [{"value": "BABS@jensen.org"}]}]))
                .unwrap();
        assert_eq!(out["emails"], json!([{"value": "bjensen@example.com", "type": "work", "primary": true}]));
        let out =
            patch_user(bjensen(), json!([{"op": "remove", "path": "emails", "value": "babs@jensen.org"}])).unwrap();
        assert_eq!(out["emails"].as_array().unwrap().len(), 1);
        // Addresses have no "value": whole items are matched.
        let start = bjensen();
        let home = start["addresses"][1].clone();
        let out = patch_user(start.clone(), json!([{"op": "remove", "path": "addresses", "value": [home]}])).unwrap();
        assert_eq!(out["addresses"], json!([start["addresses"][0]]));
        fails(
            patch_user(bjensen(), json!([{"op": "remove", "path": "emails", "value": [{"type": "home"}]}])),
            ScimType::InvalidValue,
            "needs a \"value\"",
        );
    }

    // -- values ------------------------------------------------------------------------------------

    #[test]
    fn entra_string_boolean_is_coerced() {
        let out = patch_user(bjensen(), json!([{"op": "Replace", "path": "active", "value": "False"}])).unwrap();
        assert_eq!(out["active"], false);
        let out = patch_user(bjensen(), json!([{"op": "replace", "value": {"active": "True"}}])).unwrap();
        assert_eq!(out["active"], true);
        fails(
            patch_user(bjensen(), json!([{"op": "replace", "path": "active", "value": "maybe"}])),
            ScimType::InvalidValue,
            r#""active" must be a boolean, got "maybe""#,
        );
    }

    #[test]
    fn null_update_clears_an_optional_attribute() {
        // Microsoft's reference test: replace with "" and then with null must clear the attribute.
        let start = json!({"userName": "a", "nickName": "Babs", "title": "Guide"});
        let out = patch_user(start.clone(), json!([{"op": "replace", "path": "nickName", "value": ""}])).unwrap();
        assert!(!out.contains_key("nickName"));
        let out = patch_user(start.clone(), json!([{"op": "replace", "path": "nickName", "value": null}])).unwrap();
        assert!(!out.contains_key("nickName"));
        let out = patch_user(start, json!([{"op": "replace", "value": {"nickName": "", "title": null}}])).unwrap();
        assert_eq!(out, doc(json!({"userName": "a"})));
    }

    #[test]
    fn sub_attribute_keys_in_values_are_case_insensitive() {
        let out = patch_user(
            json!({"userName": "a"}),
            json!([{"op": "add", "path": "emails", "value": [{"VALUE": "a@example.com", "Type": "work", "PRIMARY": "true"}]}]),
        )
        .unwrap();
        assert_eq!(out["emails"], json!([{"value": "a@example.com", "type": "work", "primary": true}]));
    }

    #[test]
    fn entra_manager_as_array_of_refs_or_plain_id() {
        let start = json!({"userName": "a"});
        let out = patch_user(
            start.clone(),
            json!([{"op": "Add", "path": "manager", "value": [{"$ref": null, "value": "m1"}]}]),
        )
        .unwrap();
        assert_eq!(out[ENTERPRISE_USER]["manager"], json!({"value": "m1"}));
        let out = patch_user(
            start.clone(),
            json!([{"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m2"}]),
        )
        .unwrap();
        assert_eq!(out[ENTERPRISE_USER]["manager"], json!({"value": "m2"}));
        // A new manager id drops the old manager's $ref.
        let out =
            patch_user(bjensen(), json!([{"op": "replace", "path": "manager", "value": {"value": "m3"}}])).unwrap();
        assert_eq!(out[ENTERPRISE_USER]["manager"], json!({"value": "m3"}));
        let out = patch_user(bjensen(), json!([{"op": "replace", "path": "manager.value", "value": "m4"}])).unwrap();
        assert_eq!(out[ENTERPRISE_USER]["manager"], json!({"value": "m4"}));
        // The same id keeps the $ref.
        let same = "26118915-6090-4610-87e4-49d8ca9f808d";
        let out =
            patch_user(bjensen(), json!([{"op": "replace", "path": "manager", "value": {"value": same}}])).unwrap();
        assert_eq!(out[ENTERPRISE_USER]["manager"], doc(bjensen())[ENTERPRISE_USER]["manager"]);
        // Empty or null removes the manager.
        for empty in [json!(""), json!(null), json!([]), json!({"value": ""})] {
            let out = patch_user(bjensen(), json!([{"op": "Replace", "path": "manager", "value": empty}])).unwrap();
            assert_eq!(out[ENTERPRISE_USER].get("manager"), None, "{empty}");
        }
        let out =
            patch_user(bjensen(), json!([{"op": "Remove", "path": "manager", "value": [{"value": same}]}])).unwrap();
        assert_eq!(out[ENTERPRISE_USER].get("manager"), None);
    }

    #[test]
    fn password_is_accepted_and_dropped() {
        let out = patch_user(bjensen(), json!([{"op": "replace", "path": "password", "value": "s3cret!"}])).unwrap();
        assert_eq!(out, doc(bjensen()));
        let out = patch_user(bjensen(), json!([{"op": "replace", "value": {"password": "s3cret!", "nickName": "B"}}]))
            .unwrap();
        assert!(!out.contains_key("password"));
        assert_eq!(out["nickName"], "B");
    }

    #[test]
    fn roster_former_member_can_be_patched() {
        let out = patch_user(
            bjensen(),
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:roster:2.0:User:formerMember", "value": "True"}]),
        )
        .unwrap();
        assert_eq!(out[ROSTER_USER], json!({"formerMember": true}));
        let out = patch_user(bjensen(), json!([{"op": "replace", "path": "formerMember", "value": true}])).unwrap();
        assert_eq!(out[ROSTER_USER], json!({"formerMember": true}));
    }

    // -- whole-document checks and atomicity -----------------------------------------------------

    #[test]
    fn removing_user_name_fails_validation() {
        fails(
            patch_user(bjensen(), json!([{"op": "remove", "path": "userName"}])),
            ScimType::InvalidValue,
            "userName is required",
        );
        fails(
            patch_user(bjensen(), json!([{"op": "replace", "path": "userName", "value": ""}])),
            ScimType::InvalidValue,
            "userName is required",
        );
        fails(
            patch_group(tour_guides(&[]), json!([{"op": "remove", "path": "displayName"}])),
            ScimType::InvalidValue,
            "displayName is required",
        );
    }

    #[test]
    fn failing_op_leaves_document_unchanged() {
        let start = doc(bjensen());
        let before = start.clone();
        let ops = parse_patch(&body(json!([
            {"op": "replace", "path": "nickName", "value": "Babs"},
            {"op": "remove", "path": "emails"},
            {"op": "replace", "path": "active", "value": "maybe"}
        ])))
        .unwrap();
        let err = fails(apply(&USER_RESOURCE, &start, &ops), ScimType::InvalidValue, "Operations[2]");
        assert!(err.detail.contains("\"active\" must be a boolean"), "{}", err.detail);
        assert_eq!(start, before);
        // A failure found only by the final validation leaves it unchanged too.
        let ops = parse_patch(&body(json!([
            {"op": "replace", "path": "nickName", "value": "Babs"},
            {"op": "add", "path": "emails", "value": [{"value": "x@example.com", "primary": true}, {"value": "y@example.com", "primary": true}]}
        ])))
        .unwrap();
        fails(apply(&USER_RESOURCE, &start, &ops), ScimType::InvalidValue, "primary");
        assert_eq!(start, before);
    }

    #[test]
    fn result_of_apply_is_canonical_and_parses_back_to_itself() {
        let out = patch_user(
            bjensen(),
            json!([
                {"op": "add", "value": {"Emails": [{"value": "x@example.com", "Display": ""}], "title": "T"}},
                {"op": "remove", "path": "addresses[type eq \"home\"]"},
                {"op": "replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "555-0100"}
            ]),
        )
        .unwrap();
        let reparsed = parse_resource(&USER_RESOURCE, &Value::Object(out.clone())).unwrap();
        assert_eq!(reparsed, out);
    }

    #[test]
    fn long_or_chain_in_a_path_is_evaluated_without_overflow() {
        let chain = vec!["type eq \"x\""; 500].join(" or ");
        let path = format!("emails[{chain} or type eq \"home\"]");
        let out = patch_user(bjensen(), json!([{"op": "remove", "path": path}])).unwrap();
        assert_eq!(out["emails"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn an_invalid_value_filter_fails_even_with_no_items_to_test() {
        fails(
            patch_user(json!({"userName": "a"}), json!([{"op": "remove", "path": "emails[primary gt false]"}])),
            ScimType::InvalidFilter,
            "boolean",
        );
    }
}
