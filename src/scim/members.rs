//! The membership changes IdPs send in a Group PATCH (RFC 7644 §3.5.2), split off the other
//! operations so storage can apply them to very large groups without loading the membership.
//!
//! Okta and Microsoft Entra ID send the same change in several forms: `add`/`replace` with path
//! `members` or a path-less value holding `members`, `remove` with `members[value eq "id"]`
//! filters joined by `or`, and (Entra) `remove` with path `members` and a value list, which
//! removes only the listed members. Members are objects `{value, display, type, $ref}` or bare
//! id strings.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
use crate::scim::patch::{OpKind, PatchOp};
use crate::scim::resource::{describe, MAX_MEMBERS};
use crate::scim::schema::GROUP;

/// A group member named in a membership change.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub value: String,
    pub display: Option<String>,
    /// `"User"` or `"Group"` when known.
    pub kind: Option<String>,
}

/// A change to a group's membership, split off by [`split_member_ops`].
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    Add(Vec<Member>),
    Remove(Vec<String>),
    RemoveAll,
    Replace(Vec<Member>),
}

impl MemberChange {
    /// The members this change adds, if any.
    pub fn added(&self) -> &[Member] {
        match self {
            MemberChange::Add(members) | MemberChange::Replace(members) => members,
            MemberChange::Remove(_) | MemberChange::RemoveAll => &[],
        }
    }
}

/// Splits off the operations that target a Group's `members`, in order, as
/// member changes, so storage can apply them without loading the whole
/// membership. The other operations are returned, in order, for [`apply`].
///
/// * `add` with path `members` (or a path-less value holding `members`) → [`MemberChange::Add`];
/// * `replace` with path `members` (or path-less) → [`MemberChange::Replace`] (the full list);
/// * `remove` with path `members` and no value → [`MemberChange::RemoveAll`];
/// * `remove` with path `members` and a value list (Entra) → [`MemberChange::Remove`] of those values;
/// * `remove` with `members[value eq "x" or value eq "y"]` → [`MemberChange::Remove`].
pub fn split_member_ops(ops: Vec<PatchOp>) -> Result<(Vec<PatchOp>, Vec<MemberChange>), ScimError> {
    let mut rest = Vec::new();
    let mut changes = Vec::new();
    for op in ops {
        match &op.path {
            Some(path) if is_members_path(&path.attr) => {
                if let Some(change) = member_change(&op, path)? {
                    changes.push(change);
                }
            }
            Some(_) => rest.push(op),
            None => {
                let Some(Value::Object(fields)) = &op.value else {
                    rest.push(op);
                    continue;
                };
                if op.op == OpKind::Remove || !fields.keys().any(|k| is_members_key(k)) {
                    rest.push(op);
                    continue;
                }
                let mut remaining = Map::new();
                for (key, value) in fields {
                    if !is_members_key(key) {
                        remaining.insert(key.clone(), value.clone());
                        continue;
                    }
                    let members = parse_members(Some(value))?;
                    match op.op {
                        OpKind::Add if members.is_empty() => {}
                        OpKind::Add => changes.push(MemberChange::Add(members)),
                        _ => changes.push(MemberChange::Replace(members)),
                    }
                }
                if !remaining.is_empty() {
                    rest.push(PatchOp { op: op.op, path: None, value: Some(Value::Object(remaining)) });
                }
            }
        }
    }
    Ok((rest, changes))
}

fn is_members_path(path: &AttrPath) -> bool {
    path.attr.eq_ignore_ascii_case("members") && path.urn.as_deref().is_none_or(|urn| urn.eq_ignore_ascii_case(GROUP))
}

fn is_members_key(key: &str) -> bool {
    key.eq_ignore_ascii_case("members")
        || key.len() == GROUP.len() + ":members".len()
            && key.get(..GROUP.len()).is_some_and(|urn| urn.eq_ignore_ascii_case(GROUP))
            && key[GROUP.len()..].eq_ignore_ascii_case(":members")
}

fn member_change(op: &PatchOp, path: &PatchPath) -> Result<Option<MemberChange>, ScimError> {
    if path.attr.sub.is_some() || path.value_sub.is_some() {
        return Err(ScimError::bad_request(
            ScimType::Mutability,
            format!("\"{path}\": a member's sub-attributes are immutable; add or remove the member instead"),
        ));
    }
    if let Some(filter) = &path.filter {
        if op.op != OpKind::Remove {
            return Err(ScimError::invalid_path(format!(
                "\"{path}\": a filter on members is supported only with remove; use add or replace with path \"members\""
            )));
        }
        return Ok(Some(MemberChange::Remove(member_filter_ids(filter)?)));
    }
    let change = match op.op {
        OpKind::Add => {
            let members = parse_members(op.value.as_ref())?;
            (!members.is_empty()).then_some(MemberChange::Add(members))
        }
        OpKind::Replace => Some(MemberChange::Replace(parse_members(op.value.as_ref())?)),
        OpKind::Remove => match &op.value {
            None | Some(Value::Null) => Some(MemberChange::RemoveAll),
            // Entra: remove with a value list removes only those members.
            Some(listed) => {
                let ids: Vec<String> = parse_members(Some(listed))?.into_iter().map(|m| m.value).collect();
                (!ids.is_empty()).then_some(MemberChange::Remove(ids))
            }
        },
    };
    Ok(change)
}

/// The ids of `value eq "x"`, alone or joined with `or`.
fn member_filter_ids(filter: &Filter) -> Result<Vec<String>, ScimError> {
    let unsupported = || {
        ScimError::invalid_filter(format!(
            "Unsupported members filter \"{filter}\": only value eq \"id\" is supported for members, optionally joined with or"
        ))
    };
    match filter {
        Filter::Compare { path, op: CompareOp::Eq, value }
            if path.urn.is_none() && path.sub.is_none() && path.attr.eq_ignore_ascii_case("value") =>
        {
            let id = match value {
                CompValue::Str(s) => s.trim().to_string(),
                CompValue::Number(n) => n.to_string(),
                _ => return Err(unsupported()),
            };
            if id.is_empty() {
                return Err(ScimError::invalid_value("A member filter needs a non-empty value"));
            }
            Ok(vec![id])
        }
        Filter::Or(left, right) => {
            let mut ids = member_filter_ids(left)?;
            ids.extend(member_filter_ids(right)?);
            Ok(ids)
        }
        _ => Err(unsupported()),
    }
}

/// Members from an operation's value: an array of (or a single) object
/// `{value, display, type, $ref}` or bare id string. Duplicates are dropped.
fn parse_members(value: Option<&Value>) -> Result<Vec<Member>, ScimError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.as_slice(),
        Some(single) => std::slice::from_ref(single),
    };
    if items.len() > MAX_MEMBERS {
        return Err(ScimError::invalid_value(format!(
            "One operation may name at most {MAX_MEMBERS} members, got {}; split it into several operations",
            items.len()
        )));
    }
    let mut members = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    for item in items {
        let member = parse_member(item)?;
        if seen.insert(member.value.clone()) {
            members.push(member);
        }
    }
    Ok(members)
}

fn parse_member(item: &Value) -> Result<Member, ScimError> {
    let missing = || {
        ScimError::invalid_value(format!(
            "Each member needs a non-empty \"value\" (the member's id), got {}",
            describe(item)
        ))
    };
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let fields = match item {
        Value::Object(fields) => fields,
        Value::String(_) | Value::Number(_) => {
            let value = text(item).filter(|v| !v.is_empty()).ok_or_else(missing)?;
            return Ok(Member { value, display: None, kind: None });
        }
        _ => return Err(missing()),
    };
    let get = |name: &str| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    let value = get("value").and_then(text).filter(|v| !v.is_empty()).ok_or_else(missing)?;
    let display = get("display").and_then(Value::as_str).map(str::to_string).filter(|d| !d.is_empty());
    let kind = match get("type") {
        None | Some(Value::Null) => kind_from_ref(get("$ref")),
        Some(Value::String(s)) if s.is_empty() => kind_from_ref(get("$ref")),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("user") => Some("User".to_string()),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("group") => Some("Group".to_string()),
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "A member's \"type\" must be \"User\" or \"Group\", got {}",
                describe(other)
            )))
        }
    };
    Ok(Member { value, display, kind })
}

/// `.../Users/{id}` or `.../Groups/{id}` tells the member's type.
fn kind_from_ref(reference: Option<&Value>) -> Option<String> {
    let reference = reference?.as_str()?;
    let mut segments = reference.rsplit('/').skip(1);
    match segments.next() {
        Some(s) if s.eq_ignore_ascii_case("users") => Some("User".to_string()),
        Some(s) if s.eq_ignore_ascii_case("groups") => Some("Group".to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::patch::{apply, parse_patch, PATCH_OP_URN};
    use crate::scim::resource::Document;
    use crate::scim::schema::GROUP_RESOURCE;
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

    fn tour_guides(members: &[(&str, &str)]) -> Value {
        let members: Vec<Value> = members.iter().map(|(id, name)| member(id, name)).collect();
        json!({"displayName": "Tour Guides", "members": members})
    }

    fn split(ops: Value) -> Result<(Vec<PatchOp>, Vec<MemberChange>), ScimError> {
        split_member_ops(parse_patch(&body(ops))?)
    }

    fn m(value: &str) -> Member {
        Member { value: value.to_string(), display: None, kind: None }
    }

    #[test]
    fn split_member_add_replace_and_remove_all() {
        let (rest, changes) = split(json!([
            {"op": "add", "path": "members", "value": [member(BABS, "Babs Jensen")]},
            {"op": "replace", "path": "members", "value": [{"value": JAMES, "type": "user"}]},
            {"op": "remove", "path": "members"},
            {"op": "replace", "path": "members", "value": []}
        ]))
        .unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            changes,
            [
                MemberChange::Add(vec![Member {
                    value: BABS.into(),
                    display: Some("Babs Jensen".into()),
                    kind: Some("User".into())
                }]),
                MemberChange::Replace(vec![Member { value: JAMES.into(), display: None, kind: Some("User".into()) }]),
                MemberChange::RemoveAll,
                MemberChange::Replace(vec![]),
            ]
        );
    }

    #[test]
    fn split_member_remove_by_value_eq_filters() {
        let (_, changes) = split(json!([
            {"op": "remove", "path": format!("members[value eq \"{BABS}\"]")},
            {"op": "Remove", "path": "members[value eq \"a\" or VALUE EQ \"b\" or value eq c]"},
            {"op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members[value eq 42]"}
        ]))
        .unwrap();
        assert_eq!(
            changes,
            [
                MemberChange::Remove(vec![BABS.into()]),
                MemberChange::Remove(vec!["a".into(), "b".into(), "c".into()]),
                MemberChange::Remove(vec!["42".into()]),
            ]
        );
    }

    #[test]
    fn split_member_filter_other_than_value_eq_is_invalid_filter() {
        for path in [
            "members[display eq \"Babs\"]",
            "members[value ne \"x\"]",
            "members[value eq \"a\" and type eq \"User\"]",
            "members[value sw \"a\"]",
        ] {
            fails(split(json!([{"op": "remove", "path": path}])), ScimType::InvalidFilter, "only value eq");
        }
        fails(
            split(json!([{"op": "replace", "path": "members[value eq \"a\"]", "value": {"value": "b"}}])),
            ScimType::InvalidPath,
            "only with remove",
        );
        fails(
            split(json!([{"op": "replace", "path": "members[value eq \"a\"].display", "value": "b"}])),
            ScimType::Mutability,
            "immutable",
        );
    }

    #[test]
    fn split_pathless_replace_with_members_keeps_the_rest_as_an_op() {
        let (rest, changes) = split(json!([
            {"op": "replace", "value": {"id": GROUP_ID, "displayName": "Tour Guides", "members": [{"value": BABS, "display": "Babs Jensen"}]}},
            {"op": "add", "value": {"Members": [BABS, JAMES]}}
        ]))
        .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].op, OpKind::Replace);
        assert_eq!(rest[0].value, Some(json!({"id": GROUP_ID, "displayName": "Tour Guides"})));
        assert_eq!(
            changes,
            [
                MemberChange::Replace(vec![Member {
                    value: BABS.into(),
                    display: Some("Babs Jensen".into()),
                    kind: None
                }]),
                MemberChange::Add(vec![m(BABS), m(JAMES)]),
            ]
        );
        // What is left applies as usual.
        let out = apply(&GROUP_RESOURCE, &doc(tour_guides(&[])), &rest).unwrap();
        assert_eq!(out, doc(json!({"displayName": "Tour Guides"})));
    }

    #[test]
    fn split_keeps_other_ops_in_order() {
        let (rest, changes) = split(json!([
            {"op": "replace", "path": "displayName", "value": "A"},
            {"op": "add", "path": "members", "value": {"value": BABS}},
            {"op": "replace", "path": "externalId", "value": "x"},
            {"op": "remove", "path": "members", "value": [{"value": BABS}]}
        ]))
        .unwrap();
        let paths: Vec<String> = rest.iter().map(|op| op.path.as_ref().unwrap().to_string()).collect();
        assert_eq!(paths, ["displayName", "externalId"]);
        assert_eq!(changes, [MemberChange::Add(vec![m(BABS)]), MemberChange::Remove(vec![BABS.into()])]);
    }

    #[test]
    fn microsoft_reference_bare_string_member_values() {
        let (_, changes) = split(json!([
            {"op": "Add", "path": "members", "value": [{"value": "string id 1"}, "string id 2", {"value": "string id 1"}]}
        ]))
        .unwrap();
        assert_eq!(changes, [MemberChange::Add(vec![m("string id 1"), m("string id 2")])]);
    }

    #[test]
    fn blank_or_missing_member_value_is_invalid_value() {
        for value in [
            json!([{"display": "Babs"}]),
            json!([{"value": "  "}]),
            json!([""]),
            json!([{"value": null}]),
            json!([true]),
        ] {
            fails(
                split(json!([{"op": "add", "path": "members", "value": value}])),
                ScimType::InvalidValue,
                "non-empty \"value\"",
            );
        }
        fails(
            split(json!([{"op": "add", "path": "members", "value": [{"value": "a", "type": "Robot"}]}])),
            ScimType::InvalidValue,
            "\"User\" or \"Group\"",
        );
    }

    #[test]
    fn member_type_is_taken_from_ref_when_missing() {
        let (_, changes) = split(json!([{"op": "add", "path": "members", "value": [
            {"value": "g1", "$ref": "https://example.com/v2/Groups/g1"},
            {"value": "u1", "$ref": "https://example.com/v2/Users/u1"}
        ]}]))
        .unwrap();
        let MemberChange::Add(members) = &changes[0] else { panic!("{changes:?}") };
        assert_eq!(members[0].kind.as_deref(), Some("Group"));
        assert_eq!(members[1].kind.as_deref(), Some("User"));
    }
}
