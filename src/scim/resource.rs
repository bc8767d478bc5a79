//! Turning SCIM request bodies into Roster's canonical resource document
//! (RFC 7643 §2, RFC 7644 §3.3 and §3.5.1), and checking whole documents.
//!
//! A document is a JSON object that holds:
//! * core attributes at the top level under their canonical names (as spelled
//!   in `schema.rs`), plus `externalId`;
//! * each extension's attributes in an object under the extension's
//!   canonical URN;
//! * never `schemas`, `id`, `meta`, readOnly attributes or writeOnly ones
//!   (`password` is accepted and dropped);
//! * no nulls, empty strings, empty arrays or empty objects: absent means
//!   unassigned (RFC 7644 §3.5.2: null, "" and [] are all "unassigned").
//!
//! Input is read leniently where real clients need it: attribute names in any
//! case (RFC 7643 §2.1), fully qualified and dotted keys, unknown and readOnly
//! attributes ignored, `"True"`/`"False"` strings for booleans (Entra ID), and
//! a single value where a list is expected.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::scim::schema::{
    find_attribute, schema_by_urn, AttrType, Attribute, Found, Mutability, ResourceType, Schema, GROUP_SCHEMA,
    USER_SCHEMA,
};

/// A resource as Roster stores it; see the module documentation.
pub type Document = Map<String, Value>;

/// Longest single string value accepted, in bytes.
pub const MAX_STRING_BYTES: usize = 64 * 1024;

/// Most items accepted in one multi-valued attribute.
pub const MAX_VALUES: usize = 1000;

/// Most members accepted in one request: groups are meant to hold 10^5 members, and the body
/// limit bounds what one request can carry anyway.
pub const MAX_MEMBERS: usize = 100_000;

/// The cap on items of `attr`.
pub fn max_items(attr: &Attribute) -> usize {
    if attr.name == "members" {
        MAX_MEMBERS
    } else {
        MAX_VALUES
    }
}

/// Parses a POST or PUT body (RFC 7644 §3.3, §3.5.1) for the given resource type.
pub fn parse_resource(rt: &'static ResourceType, body: &Value) -> Result<Document, ScimError> {
    let Value::Object(input) = body else {
        return Err(ScimError::invalid_syntax(format!(
            "The request body must be a JSON object, got {}",
            type_name(body)
        )));
    };
    let mut builder = Builder::new(rt);
    let mut saw_schemas = false;
    for (key, value) in input {
        if key.eq_ignore_ascii_case("schemas") {
            if saw_schemas {
                return Err(ScimError::given_twice(key));
            }
            saw_schemas = true;
            check_schemas(rt, value)?;
        } else {
            builder.top_level(key, value)?;
        }
    }
    let mut doc = builder.doc;
    prune(&mut doc);
    validate(rt, &doc)?;
    Ok(doc)
}

/// Checks a whole document (after PATCH): required attributes, types, at
/// most one primary, size limits.
pub fn validate(rt: &'static ResourceType, doc: &Document) -> Result<(), ScimError> {
    for (key, value) in doc {
        if let Some(ext) = extension_of(rt, key) {
            let Value::Object(inner) = value else {
                return Err(ScimError::invalid_value(format!("{key:?} must be an object, got {}", describe(value))));
            };
            for (name, v) in inner {
                if let Some(attr) = ext.attribute(name) {
                    check_stored(attr, v)?;
                }
            }
        } else if let Some(attr) = rt.schema.attribute(key).or_else(|| crate::scim::schema::common_attribute(key)) {
            check_stored(attr, value)?;
        }
    }
    check_required(rt.schema.attributes, doc)?;
    for (ext, required) in rt.extensions {
        match doc.get(ext.id) {
            Some(Value::Object(inner)) => check_required(ext.attributes, inner)?,
            _ if *required => return Err(ScimError::invalid_value(format!("The extension {:?} is required", ext.id))),
            _ => {}
        }
    }
    if std::ptr::eq(rt.schema, &GROUP_SCHEMA) {
        if let Some(Value::Array(members)) = doc.get("members") {
            let blank = |item: &Value| item.get("value").and_then(Value::as_str).is_none_or(|v| v.trim().is_empty());
            if members.iter().any(blank) {
                return Err(ScimError::invalid_value(
                    "Each \"members\" item needs a non-empty \"value\" (the member's id)",
                ));
            }
        }
    }
    Ok(())
}

/// Canonicalises a value destined for one attribute (used by PATCH): coerces
/// and checks it against `attr`. `None` means unassigned (null, "" or []).
pub fn canonical_value(attr: &'static Attribute, value: &Value) -> Result<Option<Value>, ScimError> {
    canonical_value_named(attr, value, attr.name)
}

/// [`canonical_value`] with the name used for `attr` in error messages, e.g.
/// `"emails.value"` for a sub-attribute.
pub fn canonical_value_named(attr: &'static Attribute, value: &Value, label: &str) -> Result<Option<Value>, ScimError> {
    if attr.multi_valued {
        canonical_multi(attr, value, label)
    } else {
        canonical_single(attr, value, label)
    }
}

/// The extension of `rt` with this URN, compared case-insensitively.
pub fn extension_of(rt: &ResourceType, urn: &str) -> Option<&'static Schema> {
    rt.extensions.iter().map(|&(s, _)| s).find(|s| s.id.eq_ignore_ascii_case(urn))
}

/// Where a found attribute lives in a document: `None` for the top level
/// (core and common attributes), or the URN of the extension object.
pub fn placement(rt: &ResourceType, found: &Found) -> Option<&'static str> {
    found.schema_urn.filter(|urn| *urn != rt.schema.id)
}

/// True for values that mean "unassigned": null, "", [] and {}.
pub fn is_unassigned(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// Removes unassigned values from a document, its extension objects,
/// complex values and the items of multi-valued attributes; items and
/// objects left empty are removed too.
pub fn prune(doc: &mut Document) {
    doc.retain(|_, value| prune_value(value, 0));
}

/// Prunes inside `value`; returns whether anything is left.
fn prune_value(value: &mut Value, depth: usize) -> bool {
    // Documents nest at most extension → attribute → item → sub-attribute.
    if depth < 4 {
        match value {
            Value::Object(map) => map.retain(|_, v| prune_value(v, depth + 1)),
            Value::Array(items) => items.retain_mut(|v| prune_value(v, depth + 1)),
            _ => {}
        }
    }
    !is_unassigned(value)
}

/// A short rendering of a JSON value for error messages.
pub(crate) fn describe(value: &Value) -> String {
    const MAX_CHARS: usize = 60;
    let text = value.to_string();
    if text.chars().count() <= MAX_CHARS {
        text
    } else {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut}…")
    }
}

// ---------------------------------------------------------------------------
// Errors

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn expected(label: &str, what: &str, got: &Value) -> ScimError {
    ScimError::invalid_value(format!("{label:?} must be {what}, got {}", describe(got)))
}

// ---------------------------------------------------------------------------
// Body parsing

/// Schema identifiers that real clients send and that name nothing Roster needs: Microsoft's own
/// documentation of Entra's group provisioning still shows this one in "Create Group".
const TOLERATED_SCHEMAS: [&str; 1] = ["http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"];

/// `schemas` must list only the resource type's core schema and extensions.
fn check_schemas(rt: &ResourceType, value: &Value) -> Result<(), ScimError> {
    let accepted = || {
        std::iter::once(rt.schema.id)
            .chain(rt.extensions.iter().map(|(s, _)| s.id))
            .map(|id| format!("{id:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let items = match value {
        Value::Null => return Ok(()),
        Value::Array(items) => items,
        other => return Err(expected("schemas", "an array of schema URNs", other)),
    };
    for item in items {
        let Value::String(urn) = item else {
            return Err(expected("schemas", "an array of schema URNs", value));
        };
        let tolerated = TOLERATED_SCHEMAS.iter().any(|t| t.eq_ignore_ascii_case(urn));
        if !tolerated && !urn.eq_ignore_ascii_case(rt.schema.id) && extension_of(rt, urn).is_none() {
            return Err(ScimError::invalid_value(format!(
                "Unknown schema {urn:?} in \"schemas\": a {} resource accepts {}",
                rt.name,
                accepted()
            )));
        }
    }
    Ok(())
}

/// Splits a body key into (URN, attribute, sub-attribute) and looks it up.
/// `within` restricts the lookup to one extension (keys inside its object).
/// Unknown names give `None`: they are ignored.
fn resolve_key(
    rt: &'static ResourceType,
    key: &str,
    within: Option<&'static Schema>,
) -> Option<(Found, Option<&'static Attribute>)> {
    let qualified = key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
    let (urn, rest) = match key.rfind(':') {
        Some(colon) if qualified => (Some(&key[..colon]), &key[colon + 1..]),
        _ => (None, key),
    };
    let (name, sub) = match rest.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (rest, None),
    };
    let urn = match (within, urn) {
        (None, urn) => urn,
        (Some(ext), None) => Some(ext.id),
        (Some(ext), Some(urn)) if urn.eq_ignore_ascii_case(ext.id) => Some(ext.id),
        (Some(_), Some(_)) => return None,
    };
    let found = find_attribute(rt, urn, name)?;
    let sub = match sub {
        None => None,
        Some(sub) => Some(found.attr.sub_attribute(sub)?),
    };
    Some((found, sub))
}

/// Collects attributes into a document, refusing the same attribute twice.
struct Builder {
    rt: &'static ResourceType,
    doc: Document,
    /// Whole attributes assigned, by (extension, name).
    whole: HashSet<(Option<&'static str>, &'static str)>,
    /// Sub-attributes assigned through dotted keys, by (extension, name, sub).
    parts: HashSet<(Option<&'static str>, &'static str, &'static str)>,
    extensions: HashSet<&'static str>,
}

impl Builder {
    fn new(rt: &'static ResourceType) -> Self {
        Builder { rt, doc: Document::new(), whole: HashSet::new(), parts: HashSet::new(), extensions: HashSet::new() }
    }

    fn top_level(&mut self, key: &str, value: &Value) -> Result<(), ScimError> {
        if let Some(ext) = extension_of(self.rt, key) {
            if !self.extensions.insert(ext.id) {
                return Err(ScimError::given_twice(key));
            }
            return match value {
                Value::Null => Ok(()),
                Value::Object(inner) => {
                    for (k, v) in inner {
                        if let Some((found, sub)) = resolve_key(self.rt, k, Some(ext)) {
                            self.put(found, sub, k, v)?;
                        }
                    }
                    Ok(())
                }
                other => Err(expected(key, "an object holding the extension's attributes", other)),
            };
        }
        if let Some(schema) = schema_by_urn(key) {
            let why = if std::ptr::eq(schema, self.rt.schema) {
                "core attributes belong at the top level of the body".to_string()
            } else {
                format!("it is not an extension of the {} resource type", self.rt.name)
            };
            return Err(ScimError::invalid_value(format!("Unexpected schema object {key:?}: {why}")));
        }
        match resolve_key(self.rt, key, None) {
            Some((found, sub)) => self.put(found, sub, key, value),
            None => Ok(()),
        }
    }

    fn put(
        &mut self,
        found: Found,
        sub: Option<&'static Attribute>,
        key: &str,
        value: &Value,
    ) -> Result<(), ScimError> {
        let attr = found.attr;
        let place = placement(self.rt, &found);
        let duplicate = match sub {
            None => {
                !self.whole.insert((place, attr.name))
                    || self.parts.iter().any(|&(p, a, _)| p == place && a == attr.name)
            }
            Some(sub) => self.whole.contains(&(place, attr.name)) || !self.parts.insert((place, attr.name, sub.name)),
        };
        if duplicate {
            return Err(ScimError::given_twice(key));
        }
        // RFC 7644 §3.5.1: readOnly values in a request SHALL be ignored;
        // writeOnly `password` is accepted and never stored.
        let skipped = |m: Mutability| matches!(m, Mutability::ReadOnly | Mutability::WriteOnly);
        if skipped(attr.mutability) || sub.is_some_and(|s| skipped(s.mutability)) {
            return Ok(());
        }
        let container = match place {
            None => &mut self.doc,
            Some(ext) => object_entry(&mut self.doc, ext),
        };
        match sub {
            None => {
                if let Some(v) = canonical_value_named(attr, value, attr.name)? {
                    container.insert(attr.name.to_string(), v);
                }
            }
            Some(sub) => {
                let label = format!("{}.{}", attr.name, sub.name);
                if attr.multi_valued {
                    return Err(ScimError::invalid_value(format!(
                        "{label:?}: a sub-attribute of the multi-valued attribute {:?} cannot be given on its own; send {:?} as a list of objects",
                        attr.name, attr.name
                    )));
                }
                if let Some(v) = canonical_value_named(sub, value, &label)? {
                    object_entry(container, attr.name).insert(sub.name.to_string(), v);
                }
            }
        }
        Ok(())
    }
}

/// The object under `key`, created (or replacing a non-object) if needed.
pub(crate) fn object_entry<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let slot = map.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(inner) => inner,
        _ => unreachable!("just made an object"),
    }
}

// ---------------------------------------------------------------------------
// Values

fn canonical_multi(attr: &'static Attribute, value: &Value, label: &str) -> Result<Option<Value>, ScimError> {
    // Entra sometimes sends one value where the RFC wants a list.
    let items = match value {
        Value::Null => return Ok(None),
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    let max = max_items(attr);
    if items.len() > max {
        return Err(ScimError::invalid_value(format!(
            "{label:?} has {} values; at most {max} are accepted",
            items.len()
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some(v) = canonical_item(attr, item, label)? {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    if attr.kind == AttrType::Complex {
        let primaries = out.iter().filter(|item| item.get("primary") == Some(&Value::Bool(true))).count();
        if primaries > 1 {
            return Err(ScimError::invalid_value(format!(
                "{label:?} has {primaries} values with \"primary\": true; at most one may be primary"
            )));
        }
    }
    Ok(Some(Value::Array(out)))
}

/// A singular attribute; a one-element array stands for its element (Entra
/// sends the enterprise `manager` as `[{"value": ...}]`).
fn canonical_single(attr: &'static Attribute, value: &Value, label: &str) -> Result<Option<Value>, ScimError> {
    match value {
        Value::Array(items) => match items.as_slice() {
            [] => Ok(None),
            [only] => canonical_item(attr, only, label),
            _ => Err(ScimError::invalid_value(format!(
                "{label:?} is single-valued but got an array of {} values",
                items.len()
            ))),
        },
        other => canonical_item(attr, other, label),
    }
}

/// One value of `attr` (for a multi-valued attribute, one item).
fn canonical_item(attr: &'static Attribute, value: &Value, label: &str) -> Result<Option<Value>, ScimError> {
    if value.is_null() || value.as_str() == Some("") {
        return Ok(None);
    }
    match attr.kind {
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            let Value::String(s) = value else {
                return Err(expected(label, "a string", value));
            };
            check_string(attr, s, label)?;
            Ok(Some(value.clone()))
        }
        AttrType::Boolean => match value {
            Value::Bool(_) => Ok(Some(value.clone())),
            // Entra sends "True" and "False".
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(Value::Bool(true))),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(Value::Bool(false))),
            _ => Err(expected(label, "a boolean", value)),
        },
        AttrType::Integer => {
            let n = value.as_number().ok_or_else(|| expected(label, "an integer", value))?;
            if n.is_i64() || n.is_u64() {
                return Ok(Some(value.clone()));
            }
            // 3.0 is the integer 3.
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(Value::from(f as i64))),
                _ => Err(expected(label, "an integer", value)),
            }
        }
        AttrType::Decimal => match value {
            Value::Number(_) => Ok(Some(value.clone())),
            _ => Err(expected(label, "a decimal number", value)),
        },
        AttrType::DateTime => match value {
            Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => Ok(Some(value.clone())),
            _ => Err(expected(label, "a dateTime such as \"2024-05-01T09:30:00Z\" (RFC 3339)", value)),
        },
        AttrType::Complex => canonical_complex(attr, value, label),
    }
}

fn check_string(attr: &'static Attribute, s: &str, label: &str) -> Result<(), ScimError> {
    if s.len() > MAX_STRING_BYTES {
        return Err(ScimError::invalid_value(format!(
            "{label:?} is {} bytes long; at most {MAX_STRING_BYTES} bytes are accepted",
            s.len()
        )));
    }
    if is_user_name(attr) {
        if let Some(c) = s.chars().find(|&c| c.is_control() && c != '\t' && c != '\n') {
            return Err(ScimError::invalid_value(format!(
                "{label:?} must not contain control characters, found U+{:04X} in {:?}",
                c as u32,
                truncate(s)
            )));
        }
    }
    if s.contains('\0') {
        // PostgreSQL text cannot hold U+0000, nor can jsonb read it back: one stored NUL made
        // every filter and sort on the tenant's JSON attributes answer 500.
        return Err(ScimError::invalid_value(format!(
            "{label:?} must not contain U+0000 (NUL), found in {:?}",
            truncate(s)
        )));
    }
    Ok(())
}

fn canonical_complex(attr: &'static Attribute, value: &Value, label: &str) -> Result<Option<Value>, ScimError> {
    let input = match value {
        Value::Object(input) => input,
        // A bare id where a `{"value": ...}` object is expected (a plain
        // string manager id from Entra; member ids as strings).
        Value::String(_) | Value::Number(_) | Value::Bool(_) if attr.sub_attribute("value").is_some() => {
            let mut wrapped = Map::new();
            wrapped.insert("value".to_string(), value.clone());
            return canonical_complex(attr, &Value::Object(wrapped), label);
        }
        other => return Err(expected(label, "an object (a complex attribute)", other)),
    };
    let mut out = Map::new();
    let mut seen = HashSet::new();
    for (key, v) in input {
        let Some(sub) = attr.sub_attribute(key) else {
            continue; // unknown sub-attributes are ignored
        };
        if !seen.insert(sub.name) {
            return Err(ScimError::given_twice(&format!("{label}.{key}")));
        }
        if matches!(sub.mutability, Mutability::ReadOnly | Mutability::WriteOnly) {
            continue;
        }
        let sub_label = format!("{label}.{}", sub.name);
        if let Some(cv) = canonical_value_named(sub, v, &sub_label)? {
            out.insert(sub.name.to_string(), cv);
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

/// What a tenant with strict validation refuses although RFC 7643 §4.1.2 only says SHOULD: an
/// `emails.value` not shaped as an RFC 5321 address, a `phoneNumbers.value` not shaped as an
/// RFC 3966 `tel:` URI. None when the document has neither, apart from values `kept` has too.
pub fn strict_refusal(doc: &Document, kept: Option<&Document>) -> Option<ScimError> {
    let values_in = |doc: &Document, name: &str| -> Vec<String> {
        let items = doc.get(name).and_then(Value::as_array).into_iter().flatten();
        items.filter_map(|item| Some(item.get("value")?.as_str()?.to_owned())).collect()
    };
    let values = |name: &str| {
        let old = kept.map(|k| values_in(k, name)).unwrap_or_default();
        values_in(doc, name).into_iter().filter(move |v| !old.contains(v))
    };
    if let Some(bad) = values("emails").find(|v| !is_address(v)) {
        return Some(ScimError::invalid_value(format!(
            "emails.value {:?} is not an email address (this tenant refuses what RFC 5321 does not allow)",
            truncate(&bad)
        )));
    }
    values("phoneNumbers").find(|v| !is_tel_uri(v)).map(|bad| {
        ScimError::invalid_value(format!(
            "phoneNumbers.value {:?} is not an RFC 3966 number such as \"tel:+1-201-555-0123\" (this tenant refuses it)",
            truncate(&bad)
        ))
    })
}

/// The shape of an email address: exactly one `@` between a non-empty local part and a
/// non-empty domain, no whitespace or control characters.
fn is_address(address: &str) -> bool {
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// The shape of an RFC 3966 telephone URI: `tel:` and a global number (`+` and digits, with
/// visual separators `-.()`), or a local number (digits, `*`, `#`, separators) with a
/// `phone-context` parameter; parameters follow `;`.
fn is_tel_uri(value: &str) -> bool {
    let Some(rest) = value.get(..4).filter(|p| p.eq_ignore_ascii_case("tel:")).map(|_| &value[4..]) else {
        return false;
    };
    let (number, params) = rest.split_once(';').unwrap_or((rest, ""));
    let separator = |c: char| matches!(c, '-' | '.' | '(' | ')');
    let params_ok = params.is_empty() || !params.chars().any(|c| c.is_whitespace() || c.is_control());
    if let Some(global) = number.strip_prefix('+') {
        global.chars().any(|c| c.is_ascii_digit())
            && global.chars().all(|c| c.is_ascii_digit() || separator(c))
            && params_ok
    } else {
        let local_ok = number.chars().any(|c| c.is_ascii_hexdigit() || matches!(c, '*' | '#'))
            && number.chars().all(|c| c.is_ascii_hexdigit() || matches!(c, '*' | '#') || separator(c));
        local_ok && params.to_ascii_lowercase().split(';').any(|p| p.starts_with("phone-context="))
    }
}

fn truncate(s: &str) -> String {
    const MAX_CHARS: usize = 60;
    if s.chars().count() <= MAX_CHARS {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX_CHARS).collect();
        format!("{cut}…")
    }
}

fn is_user_name(attr: &'static Attribute) -> bool {
    USER_SCHEMA.attribute("userName").is_some_and(|a| std::ptr::eq(a, attr))
}

// ---------------------------------------------------------------------------
// Whole-document checks

/// A stored value must canonicalise without error (types, limits, primary,
/// limits). readOnly values, if a caller keeps any, are not checked.
fn check_stored(attr: &'static Attribute, value: &Value) -> Result<(), ScimError> {
    if attr.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    canonical_value_named(attr, value, attr.name).map(|_| ())
}

fn check_required(attributes: &'static [Attribute], doc: &Map<String, Value>) -> Result<(), ScimError> {
    for attr in attributes.iter().filter(|a| a.required && a.mutability != Mutability::ReadOnly) {
        let present = match doc.get(attr.name) {
            None => false,
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(other) => !is_unassigned(other),
        };
        if !present {
            return Err(ScimError::invalid_value(format!("{} is required", attr.name)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::scim::schema::{
        Returned, Uniqueness, COMMON_ATTRIBUTES, ENTERPRISE_USER, GROUP_RESOURCE, ROSTER_USER, ROSTER_USER_SCHEMA,
        USER_RESOURCE,
    };
    use serde_json::json;

    fn user(body: Value) -> Result<Document, ScimError> {
        parse_resource(&USER_RESOURCE, &body)
    }

    fn group(body: Value) -> Result<Document, ScimError> {
        parse_resource(&GROUP_RESOURCE, &body)
    }

    fn doc(value: Value) -> Document {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[track_caller]
    fn fails(result: Result<impl std::fmt::Debug, ScimError>, scim_type: ScimType, detail_part: &str) -> ScimError {
        let err = result.expect_err("expected an error");
        assert_eq!(err.scim_type, Some(scim_type), "{}", err.detail);
        assert!(err.detail.contains(detail_part), "detail {:?} lacks {detail_part:?}", err.detail);
        err
    }

    fn user_attr(name: &str) -> &'static Attribute {
        USER_SCHEMA.attribute(name).unwrap()
    }

    // -- rule 1: body and schemas ---------------------------------------------

    #[test]
    fn body_must_be_a_json_object() {
        for body in [json!([]), json!("x"), json!(null), json!(1)] {
            fails(user(body), ScimType::InvalidSyntax, "must be a JSON object");
        }
    }

    #[test]
    fn unknown_schema_urn_is_invalid_value_naming_it() {
        let body =
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:example:custom"], "userName": "a"});
        fails(user(body), ScimType::InvalidValue, "\"urn:example:custom\"");
        // The enterprise extension is not one of Group's.
        let body = json!({"schemas": [ENTERPRISE_USER], "displayName": "g"});
        fails(group(body), ScimType::InvalidValue, ENTERPRISE_USER);
    }

    #[test]
    fn schemas_must_be_an_array_of_strings() {
        fails(
            user(json!({"schemas": "urn:ietf:params:scim:schemas:core:2.0:User", "userName": "a"})),
            ScimType::InvalidValue,
            "schemas",
        );
        fails(user(json!({"schemas": [1], "userName": "a"})), ScimType::InvalidValue, "schemas");
    }

    #[test]
    fn schemas_are_compared_case_insensitively_and_may_be_missing() {
        let body = json!({
            "SCHEMAS": ["URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER", ENTERPRISE_USER.to_lowercase(), ROSTER_USER],
            "userName": "bjensen"
        });
        assert_eq!(user(body).unwrap(), doc(json!({"userName": "bjensen"})));
        assert_eq!(user(json!({"userName": "bjensen"})).unwrap(), doc(json!({"userName": "bjensen"})));
    }

    // -- rule 2: names ----------------------------------------------------------

    #[test]
    fn attribute_names_are_case_insensitive() {
        let body = json!({
            "USERNAME": "bjensen",
            "Name": {"FamilyName": "Jensen", "GIVENNAME": "Barbara"},
            "Emails": [{"VALUE": "bjensen@example.com", "Type": "work", "PRIMARY": true}],
            "externalid": "ext-1",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"EmployeeNumber": "701984"}
        });
        let expected = json!({
            "userName": "bjensen",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
            "externalId": "ext-1",
            ENTERPRISE_USER: {"employeeNumber": "701984"}
        });
        assert_eq!(user(body).unwrap(), doc(expected));
    }

    #[test]
    fn same_attribute_twice_in_different_case_is_invalid_syntax() {
        fails(user(json!({"userName": "a", "USERNAME": "b"})), ScimType::InvalidSyntax, "more than once");
        fails(
            user(json!({"userName": "a", "name": {"givenName": "x", "GivenName": "y"}})),
            ScimType::InvalidSyntax,
            "more than once",
        );
        // The same attribute, plain and fully qualified.
        fails(
            user(json!({"userName": "a", "urn:ietf:params:scim:schemas:core:2.0:User:userName": "b"})),
            ScimType::InvalidSyntax,
            "more than once",
        );
        // An extension attribute, qualified at the top level and in its object.
        fails(
            user(json!({
                "userName": "a",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "x",
                ENTERPRISE_USER: {"department": "y"}
            })),
            ScimType::InvalidSyntax,
            "more than once",
        );
        // A whole complex attribute and one of its sub-attributes.
        fails(
            user(json!({"userName": "a", "name": {"givenName": "x"}, "name.familyName": "y"})),
            ScimType::InvalidSyntax,
            "more than once",
        );
    }

    #[test]
    fn fully_qualified_keys_are_accepted() {
        let body = json!({
            "urn:ietf:params:scim:schemas:core:2.0:User:userName": "bjensen",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "26118915-6090-4610-87e4-49d8ca9f808d",
            "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName": "Barbara"
        });
        let expected = json!({
            "userName": "bjensen",
            "name": {"givenName": "Barbara"},
            ENTERPRISE_USER: {"department": "Sales", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}
        });
        assert_eq!(user(body).unwrap(), doc(expected));
    }

    #[test]
    fn dotted_keys_fill_sub_attributes() {
        let body = json!({"userName": "a", "name.givenName": "Barbara", "NAME.familyName": "Jensen"});
        assert_eq!(
            user(body).unwrap(),
            doc(json!({"userName": "a", "name": {"givenName": "Barbara", "familyName": "Jensen"}}))
        );
    }

    #[test]
    fn misspelled_and_unknown_attributes_are_ignored() {
        // Microsoft's reference test "PUT with a misspelled attribute".
        let body = json!({
            "userName": "a",
            "emails": [{"value": "a@example.com", "typo": "work"}],
            "displayNme": "Typo",
            "name.nosuch": "x",
            "urn:example:custom:2.0:User:thing": "x",
            "not a name": 1
        });
        assert_eq!(user(body).unwrap(), doc(json!({"userName": "a", "emails": [{"value": "a@example.com"}]})));
    }

    #[test]
    fn a_schema_object_that_is_not_an_extension_of_the_type_is_rejected() {
        fails(
            group(json!({"displayName": "g", ENTERPRISE_USER: {"department": "x"}})),
            ScimType::InvalidValue,
            "not an extension",
        );
        fails(
            user(json!({"userName": "a", "urn:ietf:params:scim:schemas:core:2.0:User": {"userName": "b"}})),
            ScimType::InvalidValue,
            "top level",
        );
    }

    // -- rule 3: readOnly and writeOnly -------------------------------------------

    #[test]
    fn read_only_attributes_are_ignored() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z"},
            "userName": "bjensen",
            "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}],
            ROSTER_USER: {"lifecycleState": "formerMember", "deactivatedAt": "2024-01-01T00:00:00Z", "formerMemberSince": "2024-02-01T00:00:00Z"},
            ENTERPRISE_USER: {"manager": {"value": "m1", "displayName": "John Smith"}}
        });
        let expected = json!({"userName": "bjensen", ENTERPRISE_USER: {"manager": {"value": "m1"}}});
        assert_eq!(user(body).unwrap(), doc(expected));
    }

    #[test]
    fn okta_create_body_with_password_and_empty_groups_is_accepted() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "isabell.prosacco@example.com",
            "name": {"givenName": "Isabell", "familyName": "Prosacco"},
            "emails": [{"primary": true, "value": "isabell.prosacco@example.com", "type": "work"}],
            "displayName": "Isabell Prosacco",
            "locale": "en-US",
            "externalId": "00u1dhhb1fkIGP7RL1d8",
            "groups": [],
            "password": "1mz050nq",
            "active": true
        });
        let parsed = user(body).unwrap();
        assert!(!parsed.contains_key("password"));
        assert!(!parsed.contains_key("groups"));
        assert_eq!(parsed["active"], json!(true));
        assert_eq!(
            parsed["emails"],
            json!([{"primary": true, "value": "isabell.prosacco@example.com", "type": "work"}])
        );
    }

    // -- rule 4: types --------------------------------------------------------------

    #[test]
    fn entra_string_booleans_are_coerced() {
        for (given, want) in [("True", true), ("False", false), ("true", true), ("FALSE", false)] {
            let parsed = user(json!({"userName": "a", "active": given})).unwrap();
            assert_eq!(parsed["active"], json!(want), "{given}");
        }
        let parsed = user(json!({"userName": "a", "emails": [{"value": "a@b.c", "primary": "True"}]})).unwrap();
        assert_eq!(parsed["emails"][0]["primary"], json!(true));
    }

    #[test]
    fn wrong_type_names_the_attribute_and_what_was_expected() {
        let err = fails(user(json!({"userName": "a", "active": "maybe"})), ScimType::InvalidValue, "");
        assert_eq!(err.detail, r#""active" must be a boolean, got "maybe""#);
        fails(user(json!({"userName": 5})), ScimType::InvalidValue, r#""userName" must be a string, got 5"#);
        fails(user(json!({"userName": "a", "name": "Barbara"})), ScimType::InvalidValue, r#""name" must be an object"#);
        fails(
            user(json!({"userName": "a", "emails": [{"value": "a@b.c", "primary": 1}]})),
            ScimType::InvalidValue,
            r#""emails.primary" must be a boolean"#,
        );
        fails(
            user(json!({"userName": "a", "profileUrl": {"x": 1}})),
            ScimType::InvalidValue,
            r#""profileUrl" must be a string"#,
        );
        fails(
            user(json!({"userName": "a", "x509Certificates": [{"value": 12}]})),
            ScimType::InvalidValue,
            r#""x509Certificates.value" must be a string"#,
        );
        fails(
            user(json!({"userName": "a", "emails": [[{"value": "a@b.c"}]]})),
            ScimType::InvalidValue,
            "\"emails\" must be an object",
        );
    }

    #[test]
    fn date_times_must_be_rfc3339_and_are_stored_as_given() {
        let attr = ROSTER_USER_SCHEMA.attribute("deactivatedAt").unwrap();
        let given = json!("2024-05-01T09:30:00.123+02:00");
        assert_eq!(canonical_value(attr, &given).unwrap(), Some(given.clone()));
        fails(canonical_value(attr, &json!("2024-05-01")), ScimType::InvalidValue, "dateTime");
        fails(canonical_value(attr, &json!("yesterday")), ScimType::InvalidValue, "dateTime");
        fails(canonical_value(attr, &json!(1714555800)), ScimType::InvalidValue, "dateTime");
    }

    static COUNT: Attribute = Attribute {
        name: "count",
        kind: AttrType::Integer,
        multi_valued: false,
        description: "test",
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    };

    static RATIO: Attribute = Attribute { name: "ratio", kind: AttrType::Decimal, ..COUNT };

    #[test]
    fn integers_and_decimals() {
        assert_eq!(canonical_value(&COUNT, &json!(42)).unwrap(), Some(json!(42)));
        assert_eq!(canonical_value(&COUNT, &json!(3.0)).unwrap(), Some(json!(3)));
        fails(canonical_value(&COUNT, &json!(3.5)), ScimType::InvalidValue, r#""count" must be an integer, got 3.5"#);
        fails(canonical_value(&COUNT, &json!("42")), ScimType::InvalidValue, "integer");
        assert_eq!(canonical_value(&RATIO, &json!(0.25)).unwrap(), Some(json!(0.25)));
        assert_eq!(canonical_value(&RATIO, &json!(2)).unwrap(), Some(json!(2)));
        fails(canonical_value(&RATIO, &json!(true)), ScimType::InvalidValue, "decimal");
    }

    #[test]
    fn complex_sub_attributes_are_case_insensitive_with_unknown_and_read_only_ignored() {
        let manager = crate::scim::schema::ENTERPRISE_USER_SCHEMA.attribute("manager").unwrap();
        let given =
            json!({"VALUE": "m1", "$REF": "https://example.com/v2/Users/m1", "displayname": "Boss", "extra": 1});
        assert_eq!(
            canonical_value(manager, &given).unwrap(),
            Some(json!({"value": "m1", "$ref": "https://example.com/v2/Users/m1"}))
        );
    }

    #[test]
    fn singular_attribute_accepts_a_one_element_array_only() {
        let manager = crate::scim::schema::ENTERPRISE_USER_SCHEMA.attribute("manager").unwrap();
        assert_eq!(
            canonical_value(manager, &json!([{"value": "m1", "$ref": null}])).unwrap(),
            Some(json!({"value": "m1"}))
        );
        assert_eq!(canonical_value(manager, &json!("m1")).unwrap(), Some(json!({"value": "m1"})));
        assert_eq!(canonical_value(manager, &json!([])).unwrap(), None);
        fails(
            canonical_value(manager, &json!([{"value": "a"}, {"value": "b"}])),
            ScimType::InvalidValue,
            "single-valued",
        );
    }

    // -- rule 5: multi-valued ----------------------------------------------------------

    #[test]
    fn a_single_value_for_a_multi_valued_attribute_is_wrapped() {
        let parsed = user(json!({"userName": "a", "emails": {"value": "a@example.com", "type": "work"}})).unwrap();
        assert_eq!(parsed["emails"], json!([{"value": "a@example.com", "type": "work"}]));
        let parsed = user(json!({"userName": "a", "emails": "a@example.com"})).unwrap();
        assert_eq!(parsed["emails"], json!([{"value": "a@example.com"}]));
    }

    #[test]
    fn at_most_one_primary_item() {
        let body = json!({"userName": "a", "emails": [
            {"value": "a@example.com", "primary": true},
            {"value": "b@example.com", "primary": "True"}
        ]});
        fails(user(body), ScimType::InvalidValue, "at most one may be primary");
        let body = json!({"userName": "a", "emails": [
            {"value": "a@example.com", "primary": true},
            {"value": "b@example.com", "primary": false}
        ]});
        assert!(user(body).is_ok());
    }

    #[test]
    fn items_that_end_up_empty_are_dropped() {
        let body = json!({"userName": "a", "emails": [{}, {"value": ""}, null, {"value": "a@example.com"}, {"display": null}]});
        assert_eq!(user(body).unwrap()["emails"], json!([{"value": "a@example.com"}]));
        let body = json!({"userName": "a", "phoneNumbers": [{"value": null}], "name": {"givenName": ""}});
        assert_eq!(user(body).unwrap(), doc(json!({"userName": "a"})));
    }

    // -- rule 6: unassigned ----------------------------------------------------------------

    #[test]
    fn null_empty_string_and_empty_array_are_unassigned() {
        let body = json!({
            "userName": "a",
            "nickName": null,
            "title": "",
            "emails": [],
            "active": null,
            ENTERPRISE_USER: {"department": "", "manager": null}
        });
        assert_eq!(user(body).unwrap(), doc(json!({"userName": "a"})));
        for empty in [json!(null), json!(""), json!([])] {
            assert_eq!(canonical_value(user_attr("nickName"), &empty).unwrap(), None);
            assert_eq!(canonical_value(user_attr("emails"), &empty).unwrap(), None);
        }
    }

    // -- rule 7: required ---------------------------------------------------------------------

    #[test]
    fn user_name_is_required_and_not_blank() {
        let err = fails(user(json!({"displayName": "x"})), ScimType::InvalidValue, "");
        assert_eq!(err.detail, "userName is required");
        fails(user(json!({"userName": "   "})), ScimType::InvalidValue, "userName is required");
        fails(user(json!({"userName": null})), ScimType::InvalidValue, "userName is required");
    }

    #[test]
    fn group_display_name_is_required_and_members_need_a_value() {
        fails(group(json!({"members": []})), ScimType::InvalidValue, "displayName is required");
        let body = json!({"displayName": "Tour Guides", "members": [{"display": "Babs"}]});
        fails(group(body), ScimType::InvalidValue, "\"members\" item needs a non-empty \"value\"");
        let body = json!({"displayName": "Tour Guides", "members": [
            {"value": "2819c223-7f76-453a-919d-413861904646", "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen"},
            "902c246b-6245-4190-8e05-00816be7344a"
        ]});
        let parsed = group(body).unwrap();
        assert_eq!(parsed["members"][1], json!({"value": "902c246b-6245-4190-8e05-00816be7344a"}));
    }

    // -- rule 8: emails -------------------------------------------------------------------------

    // RFC 7643 §4.1.2: an email value SHOULD be an RFC 5321 address; the IdP's value is kept.
    #[test]
    fn email_values_are_kept_as_sent() {
        for sent in ["plainaddress", "@example.com", "a b@example.com", "bjensen@example.com", "ünïcode@例え.jp"] {
            let parsed = user(json!({"userName": "a", "emails": [{"value": sent}]})).unwrap();
            assert_eq!(parsed["emails"][0]["value"], json!(sent));
        }
    }

    #[test]
    fn strict_validation_refuses_what_rfc_5321_and_3966_do_not_allow() {
        let with = |emails: &[&str], phones: &[&str]| {
            let mut d = Document::new();
            let list = |vs: &[&str]| Value::Array(vs.iter().map(|v| json!({"value": v})).collect());
            d.insert("emails".into(), list(emails));
            d.insert("phoneNumbers".into(), list(phones));
            strict_refusal(&d, None)
        };
        assert!(with(
            &["bjensen@example.com", "ünïcode@例え.jp"],
            &["tel:+1-201-555-0123", "tel:7042;phone-context=example.com"]
        )
        .is_none());
        for bad in ["plainaddress", "@example.com", "a@", "a@b@c", "a b@example.com"] {
            let err = with(&[bad], &[]).expect(bad);
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
            assert!(err.detail.contains(&format!("{bad:?}")), "{}", err.detail);
        }
        for bad in ["+1 201 555 0123", "555-0100", "tel:", "tel:+", "tel:555-0100", "tel:+1 201"] {
            let err = with(&[], &[bad]).expect(bad);
            assert!(err.detail.contains("phoneNumbers.value"), "{}", err.detail);
        }
    }

    // -- rule 9: strings and limits ---------------------------------------------------------------

    #[test]
    fn user_name_rejects_control_characters_but_not_tab_or_newline() {
        for bad in ["bob\u{0}", "bob\r", "\u{1b}[31mbob", "bob\u{7f}", "bob\u{85}"] {
            fails(user(json!({"userName": bad})), ScimType::InvalidValue, "control characters");
        }
        // Parsing keeps them; a new userName is then held to the userName profile (users.rs).
        assert!(user(json!({"userName": "bob\tsmith\n"})).is_ok());
        // Other attributes keep what they are given.
        assert!(user(json!({"userName": "bob", "displayName": "a\u{1}b"})).is_ok());
    }

    #[test]
    fn no_string_value_may_contain_nul() {
        // PostgreSQL cannot store U+0000: a nickName with one made every filter on JSON
        // attributes of the tenant answer 500.
        fails(user(json!({"userName": "bob", "nickName": "x\u{0}y"})), ScimType::InvalidValue, "U+0000");
        fails(
            user(json!({"userName": "bob", "emails": [{"value": "a@b.c", "type": "wo\u{0}rk"}]})),
            ScimType::InvalidValue,
            "U+0000",
        );
        fails(
            user(json!({"userName": "bob", ENTERPRISE_USER: {"department": "\u{0}"}})),
            ScimType::InvalidValue,
            "U+0000",
        );
        fails(group(json!({"displayName": "g\u{0}"})), ScimType::InvalidValue, "U+0000");
        assert!(canonical_value(user_attr("title"), &json!("t\u{0}")).is_err());
    }

    #[test]
    fn strings_over_64_kib_and_lists_over_1000_items_are_rejected() {
        let long = "x".repeat(MAX_STRING_BYTES + 1);
        fails(user(json!({"userName": "a", "displayName": long})), ScimType::InvalidValue, "at most 65536 bytes");
        let fits = "x".repeat(MAX_STRING_BYTES);
        assert!(user(json!({"userName": "a", "displayName": fits})).is_ok());

        let many: Vec<Value> = (0..=MAX_VALUES).map(|i| json!({"value": format!("r{i}")})).collect();
        fails(user(json!({"userName": "a", "roles": many})), ScimType::InvalidValue, "at most 1000");
        let enough: Vec<Value> = (0..MAX_VALUES).map(|i| json!({"value": format!("r{i}")})).collect();
        assert!(user(json!({"userName": "a", "roles": enough})).is_ok());
    }

    // -- rule 10: extensions -------------------------------------------------------------------------

    #[test]
    fn extension_objects_are_case_insensitive_must_be_objects_and_are_dropped_when_empty() {
        let body = json!({"userName": "a", "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"Department": "Sales", "costcenter": "4130"}});
        assert_eq!(user(body).unwrap()[ENTERPRISE_USER], json!({"department": "Sales", "costCenter": "4130"}));
        fails(user(json!({"userName": "a", ENTERPRISE_USER: "Sales"})), ScimType::InvalidValue, "must be an object");
        fails(user(json!({"userName": "a", ENTERPRISE_USER: ["Sales"]})), ScimType::InvalidValue, "must be an object");
        let parsed =
            user(json!({"userName": "a", ENTERPRISE_USER: {"department": "", "nosuch": 1}, ROSTER_USER: {}})).unwrap();
        assert_eq!(parsed, doc(json!({"userName": "a"})));
        // An attribute of another extension inside this one is not picked up.
        let parsed = user(json!({"userName": "a", ENTERPRISE_USER: {"formerMember": true}})).unwrap();
        assert_eq!(parsed, doc(json!({"userName": "a"})));
        fails(
            user(json!({"userName": "a", ENTERPRISE_USER: {}, ENTERPRISE_USER.to_uppercase(): {}})),
            ScimType::InvalidSyntax,
            "more than once",
        );
    }

    // -- rule 11: roster extension ------------------------------------------------------------------

    #[test]
    fn roster_former_member_is_kept() {
        let parsed =
            user(json!({"userName": "a", ROSTER_USER: {"formerMember": "True", "lifecycleState": "active"}})).unwrap();
        assert_eq!(parsed[ROSTER_USER], json!({"formerMember": true}));
        let parsed = user(
            json!({"userName": "a", "urn:ietf:params:scim:schemas:extension:roster:2.0:User:formerMember": false}),
        )
        .unwrap();
        assert_eq!(parsed[ROSTER_USER], json!({"formerMember": false}));
    }

    // -- a full body ------------------------------------------------------------------------------------

    #[test]
    fn full_enterprise_user_in_the_shape_of_rfc_7643_section_8_3() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "701984",
            "userName": "bjensen@example.com",
            "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara",
                     "middleName": "Jane", "honorificPrefix": "Ms.", "honorificSuffix": "III"},
            "displayName": "Babs Jensen",
            "nickName": "Babs",
            "profileUrl": "https://login.example.com/bjensen",
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                       {"value": "babs@jensen.org", "type": "home"}],
            "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood",
                           "region": "CA", "postalCode": "91608", "country": "USA",
                           "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA", "primary": true}],
            "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
            "ims": [{"value": "someaimhandle", "type": "aim"}],
            "photos": [{"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"}],
            "userType": "Employee",
            "title": "Tour Guide",
            "preferredLanguage": "en-US",
            "locale": "en-US",
            "timezone": "America/Los_Angeles",
            "active": true,
            "password": "t1meMa$heen",
            "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}],
            "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMC"}],
            ENTERPRISE_USER: {"employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
                              "division": "Theme Park", "department": "Tour Operations",
                              "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d",
                                          "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
                                          "displayName": "John Smith"}},
            "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "version": "W/\"3694e05e9dff591\""}
        });
        let parsed = user(body.clone()).unwrap();
        let mut expected = doc(body);
        for key in ["schemas", "id", "password", "groups", "meta"] {
            expected.remove(key);
        }
        expected[ENTERPRISE_USER]["manager"].as_object_mut().unwrap().remove("displayName");
        assert_eq!(parsed, expected);
        // A parsed document validates and parses back to itself.
        validate(&USER_RESOURCE, &parsed).unwrap();
        assert_eq!(user(Value::Object(parsed.clone())).unwrap(), parsed);
    }

    // -- validate -----------------------------------------------------------------------------------------

    #[test]
    fn validate_checks_required_types_primary_and_email_shape() {
        validate(&USER_RESOURCE, &doc(json!({"userName": "a"}))).unwrap();
        fails(
            validate(&USER_RESOURCE, &doc(json!({"displayName": "a"}))),
            ScimType::InvalidValue,
            "userName is required",
        );
        fails(
            validate(&USER_RESOURCE, &doc(json!({"userName": "a", "active": "maybe"}))),
            ScimType::InvalidValue,
            "\"active\"",
        );
        fails(
            validate(
                &USER_RESOURCE,
                &doc(
                    json!({"userName": "a", "emails": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]}),
                ),
            ),
            ScimType::InvalidValue,
            "primary",
        );
        fails(
            validate(&USER_RESOURCE, &doc(json!({"userName": "a", ENTERPRISE_USER: {"department": 7}}))),
            ScimType::InvalidValue,
            "\"department\" must be a string",
        );
        fails(
            validate(&GROUP_RESOURCE, &doc(json!({"members": [{"value": "x"}]}))),
            ScimType::InvalidValue,
            "displayName is required",
        );
        fails(
            validate(&GROUP_RESOURCE, &doc(json!({"displayName": "g", "members": [{"value": " "}]}))),
            ScimType::InvalidValue,
            "members",
        );
    }

    #[test]
    fn common_attributes_are_reachable() {
        // externalId is a common attribute stored at the top level; meta and id are not stored.
        assert!(COMMON_ATTRIBUTES.iter().any(|a| a.name == "externalId"));
        let parsed = user(json!({"userName": "a", "EXTERNALID": "x", "ID": "y", "Meta": {}})).unwrap();
        assert_eq!(parsed, doc(json!({"userName": "a", "externalId": "x"})));
    }
}
