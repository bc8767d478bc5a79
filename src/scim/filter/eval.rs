//! The in-memory filter evaluator (RFC 7644 §3.4.2.2): [`matches`] tests a filter against a
//! resource as a client sees it, [`matches_item`] tests a value filter against one item of a
//! multi-valued attribute (the `[...]` of a PATCH path such as `emails[type eq "work"]`).
//!
//! Listings do not call it: storage compiles the same AST to SQL (`db::query`). This is the
//! reference that SQL is held to: a property test (tests/properties.rs) checks that both select
//! the same users for random users and random filters, on SQLite and on PostgreSQL.
//!
//! Comparison follows each attribute's type and caseExact: textual values fold case unless
//! caseExact (userName folds to its key, as uniqueness does), numbers compare numerically,
//! dateTimes as instants, booleans only with `eq`/`ne` (and `pr`). A comparison on a
//! multi-valued attribute holds when it holds for any item, and `emails co "x"` compares the
//! items' `value`.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::scim::fold::fold;
use crate::scim::resource::{is_unassigned, placement};
use crate::scim::schema::{find_attribute, AttrType, Attribute, ResourceType, Returned, USER_SCHEMA};
use crate::scim::user_name::user_name_key;

/// Evaluates a filter against one resource in its served form: `id`, `externalId` and `meta` at
/// the top level, extension attributes in an object under the extension's URN.
pub fn matches(rt: &'static ResourceType, resource: &Value, filter: &Filter) -> Result<bool, ScimError> {
    logical(filter, &|leaf| matches_leaf(rt, resource, leaf))
}

/// `and`, `or` and `not` over `leaf`, the evaluation of every other filter. Both sides are always
/// evaluated so that an invalid filter fails whatever the resource or item holds.
fn logical(filter: &Filter, leaf: &dyn Fn(&Filter) -> Result<bool, ScimError>) -> Result<bool, ScimError> {
    match filter {
        Filter::And(left, right) => {
            let l = logical(left, leaf)?;
            let r = logical(right, leaf)?;
            Ok(l && r)
        }
        Filter::Or(left, right) => {
            let l = logical(left, leaf)?;
            let r = logical(right, leaf)?;
            Ok(l || r)
        }
        Filter::Not(inner) => Ok(!logical(inner, leaf)?),
        _ => leaf(filter),
    }
}

/// A filter other than `and`, `or` and `not` against a whole resource.
fn matches_leaf(rt: &'static ResourceType, resource: &Value, filter: &Filter) -> Result<bool, ScimError> {
    match filter {
        Filter::And(..) | Filter::Or(..) | Filter::Not(..) => matches(rt, resource, filter),
        Filter::Present(path) => match select(rt, resource, path)? {
            Selected::One(_, actual) => Ok(actual.is_some_and(|v| !is_unassigned(v))),
            Selected::Items(_, items, None) => Ok(!items.is_empty()),
            Selected::Items(attr, items, Some(sub)) => {
                let present = Filter::Present(relative(sub));
                any_item(attr, items, &present)
            }
        },
        Filter::Compare { path, op, value } => match select(rt, resource, path)? {
            Selected::One(attr, actual) => compare(attr, path, actual, *op, value),
            // `emails co "x"` compares the items' `value` (RFC 7644 §3.4.2.2, multi-valued attributes).
            Selected::Items(attr, items, sub) => {
                let sub = sub.or_else(|| attr.sub_attribute("value")).ok_or_else(|| not_comparable(path))?;
                let comparison = Filter::Compare { path: relative(sub), op: *op, value: value.clone() };
                any_item(attr, items, &comparison)
            }
        },
        Filter::ValuePath { attr: path, filter: inner } => {
            if path.sub.is_some() {
                return Err(ScimError::invalid_filter(format!("\"{path}\" cannot take a value filter")));
            }
            match select(rt, resource, path)? {
                Selected::Items(attr, items, _) => any_item(attr, items, inner),
                // A value filter on a singular complex attribute, e.g. `name[givenName eq "x"]`:
                // an absent `name` is an item with nothing assigned.
                Selected::One(attr, actual) if attr.kind == AttrType::Complex => {
                    let empty = Value::Object(Map::new());
                    matches_item(attr, actual.unwrap_or(&empty), inner)
                }
                Selected::One(..) => Err(ScimError::invalid_filter(format!("\"{path}\" is not a complex attribute"))),
            }
        }
    }
}

/// What a top-level filter path selects in a resource.
enum Selected<'v> {
    /// One value (absent when unassigned), compared as the attribute's definition says.
    One(&'static Attribute, Option<&'v Value>),
    /// The items of a multi-valued complex attribute, and the sub-attribute the path names.
    Items(&'static Attribute, &'v [Value], Option<&'static Attribute>),
}

fn select<'v>(rt: &'static ResourceType, resource: &'v Value, path: &AttrPath) -> Result<Selected<'v>, ScimError> {
    let unknown = || ScimError::invalid_filter(format!("\"{path}\" is not an attribute of {}", rt.name));
    let found = find_attribute(rt, path.urn.as_deref(), &path.attr).ok_or_else(unknown)?;
    let attr = found.attr;
    let sub = match &path.sub {
        Some(name) => Some(attr.sub_attribute(name).ok_or_else(unknown)?),
        None => None,
    };
    // RFC 7644 §3.4.2.2: attributes never returned (a password) cannot be filtered on either.
    if attr.returned == Returned::Never || sub.is_some_and(|s| s.returned == Returned::Never) {
        return Err(ScimError::invalid_filter(format!("\"{}\" cannot be used in a filter", attr.name)));
    }
    let container = match placement(rt, &found) {
        Some(urn) => get(resource, urn),
        None => Some(resource),
    };
    let value = container.and_then(|c| get(c, attr.name));
    if attr.multi_valued && attr.kind == AttrType::Complex {
        let items = value.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        return Ok(Selected::Items(attr, items, sub));
    }
    Ok(match sub {
        Some(sub) => Selected::One(sub, value.and_then(|v| get(v, sub.name))),
        // The enterprise manager is compared on its id (`manager eq "id"`), RFC 7643 §4.3.
        None if attr.kind == AttrType::Complex && attr.name == "manager" => {
            let id = attr.sub_attribute("value").ok_or_else(unknown)?;
            Selected::One(id, value.and_then(|v| get(v, "value")))
        }
        None => Selected::One(attr, value),
    })
}

/// A member of a JSON object by attribute name, case-insensitively (RFC 7643 §2.1); null is absent.
fn get<'v>(object: &'v Value, name: &str) -> Option<&'v Value> {
    let fields = object.as_object()?;
    fields
        .get(name)
        .or_else(|| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
        .filter(|v| !v.is_null())
}

fn relative(sub: &Attribute) -> AttrPath {
    AttrPath { urn: None, attr: sub.name.to_owned(), sub: None }
}

fn any_item(attr: &'static Attribute, items: &[Value], filter: &Filter) -> Result<bool, ScimError> {
    // An invalid filter fails even when there is no item to test it on.
    let mut found = matches_item(attr, &Value::Object(Map::new()), filter).map(|_| false)?;
    for item in items {
        found = found || matches_item(attr, item, filter)?;
    }
    Ok(found)
}

fn not_comparable(path: &AttrPath) -> ScimError {
    ScimError::invalid_filter(format!("\"{path}\" is complex and cannot be compared with a value"))
}

/// Evaluates a value filter (`emails[type eq "work"]`) against one item of
/// a multi-valued complex attribute. Paths in the filter are relative to
/// `attr`. Each sub-attribute's caseExact and type are honoured: textual
/// values fold case unless caseExact, numbers compare numerically,
/// dateTimes as instants, booleans only with `eq`/`ne` (and `pr`).
pub fn matches_item(attr: &'static Attribute, item: &Value, filter: &Filter) -> Result<bool, ScimError> {
    logical(filter, &|leaf| item_leaf(attr, item, leaf))
}

/// A filter other than `and`, `or` and `not` against one item.
fn item_leaf(attr: &'static Attribute, item: &Value, filter: &Filter) -> Result<bool, ScimError> {
    match filter {
        Filter::And(..) | Filter::Or(..) | Filter::Not(..) => matches_item(attr, item, filter),
        Filter::Present(path) => {
            let (_, actual) = lookup(attr, item, path)?;
            Ok(actual.is_some_and(|v| !is_unassigned(v)))
        }
        Filter::Compare { path, op, value } => {
            let (sub, actual) = lookup(attr, item, path)?;
            compare(sub, path, actual, *op, value)
        }
        Filter::ValuePath { attr: inner, .. } => Err(ScimError::invalid_filter(format!(
            "\"{inner}[...]\": value filters cannot be nested inside {:?}",
            attr.name
        ))),
    }
}

/// The sub-attribute a relative filter path names, and the item's value of it.
fn lookup<'v>(
    attr: &'static Attribute,
    item: &'v Value,
    path: &AttrPath,
) -> Result<(&'static Attribute, Option<&'v Value>), ScimError> {
    if path.urn.is_some() || path.sub.is_some() {
        return Err(ScimError::invalid_filter(format!(
            "\"{path}\": inside {:?}[...] name a sub-attribute of {:?}, such as \"type\"",
            attr.name, attr.name
        )));
    }
    if attr.kind != AttrType::Complex {
        // A multi-valued simple attribute: `value` is the item itself.
        return if path.attr.eq_ignore_ascii_case("value") {
            Ok((attr, Some(item)))
        } else {
            Err(ScimError::invalid_filter(format!("{:?} has no sub-attribute {:?}", attr.name, path.attr)))
        };
    }
    let Some(sub) = attr.sub_attribute(&path.attr) else {
        return Err(ScimError::invalid_filter(format!("{:?} has no sub-attribute {:?}", attr.name, path.attr)));
    };
    let actual = item.as_object().and_then(|fields| {
        fields.get(sub.name).or_else(|| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(sub.name)).map(|(_, v)| v))
    });
    Ok((sub, actual.filter(|v| !v.is_null())))
}

fn compare(
    sub: &'static Attribute,
    path: &AttrPath,
    actual: Option<&Value>,
    op: CompareOp,
    expected: &CompValue,
) -> Result<bool, ScimError> {
    use std::cmp::Ordering;
    let ordered = |ord: Ordering| match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    };
    let textual_op = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    if *expected == CompValue::Null {
        return match op {
            CompareOp::Eq => Ok(actual.is_none()),
            CompareOp::Ne => Ok(actual.is_some()),
            _ => Err(ScimError::invalid_filter(format!("\"{path} {op} null\": only eq and ne compare with null"))),
        };
    }
    let mismatch =
        || ScimError::invalid_filter(format!("\"{path} {op} {expected}\": {path} is a {}", sub.kind.as_str()));
    match sub.kind {
        AttrType::Boolean => {
            if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                return Err(ScimError::invalid_filter(format!(
                    "\"{path} {op} {expected}\": {path} is a boolean, so only eq, ne and pr apply"
                )));
            }
            let want = match expected {
                CompValue::Bool(b) => *b,
                CompValue::Str(s) if s.eq_ignore_ascii_case("true") => true,
                CompValue::Str(s) if s.eq_ignore_ascii_case("false") => false,
                _ => return Err(mismatch()),
            };
            let have = match actual {
                Some(Value::Bool(b)) => Some(*b),
                Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
                Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
                _ => None,
            };
            Ok((have == Some(want)) == (op == CompareOp::Eq))
        }
        AttrType::Integer | AttrType::Decimal => {
            if textual_op {
                return Err(ScimError::invalid_filter(format!(
                    "\"{path} {op} {expected}\": {path} is a number, so co, sw and ew do not apply"
                )));
            }
            let want = match expected {
                CompValue::Number(n) => n.clone(),
                CompValue::Str(s) => s.trim().parse::<serde_json::Number>().map_err(|_| mismatch())?,
                _ => return Err(mismatch()),
            };
            match actual.and_then(Value::as_number) {
                Some(have) => Ok(ordered(compare_numbers(have, &want))),
                None => Ok(op == CompareOp::Ne),
            }
        }
        AttrType::DateTime => {
            let CompValue::Str(text) = expected else { return Err(mismatch()) };
            let want = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| {
                ScimError::invalid_filter(format!("\"{path} {op} {expected}\": expected an RFC 3339 dateTime"))
            })?;
            let Some(have_text) = actual.and_then(Value::as_str) else { return Ok(op == CompareOp::Ne) };
            if textual_op {
                return Ok(text_op(op, have_text, text));
            }
            match chrono::DateTime::parse_from_rfc3339(have_text) {
                Ok(have) => Ok(ordered(have.cmp(&want))),
                Err(_) => Ok(op == CompareOp::Ne),
            }
        }
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            let want = match expected {
                CompValue::Str(s) => s.clone(),
                // Entra sends unquoted ids: `value eq 12345`.
                CompValue::Number(n) => n.to_string(),
                CompValue::Bool(b) => b.to_string(),
                CompValue::Null => unreachable!("handled above"),
            };
            let have = match actual {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => return Ok(op == CompareOp::Ne),
            };
            // userName compares by the key its uniqueness uses (width and compatibility forms
            // too), the key storage indexes it by.
            let key: fn(&str) -> String = if is_user_name(sub) { user_name_key } else { fold };
            let (have, want) = if sub.case_exact { (have, want) } else { (key(&have), key(&want)) };
            if textual_op {
                Ok(text_op(op, &have, &want))
            } else {
                Ok(ordered(have.cmp(&want)))
            }
        }
        AttrType::Complex => {
            Err(ScimError::invalid_filter(format!("\"{path}\" is complex and cannot be compared with a value")))
        }
    }
}

fn text_op(op: CompareOp, have: &str, want: &str) -> bool {
    match op {
        CompareOp::Co => have.contains(want),
        CompareOp::Sw => have.starts_with(want),
        CompareOp::Ew => have.ends_with(want),
        _ => false,
    }
}

fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> std::cmp::Ordering {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x.cmp(&y);
    }
    let (x, y) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
    x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
}

fn is_user_name(attr: &'static Attribute) -> bool {
    USER_SCHEMA.attribute("userName").is_some_and(|a| std::ptr::eq(a, attr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::scim::schema::{Mutability, Uniqueness, COMMON_ATTRIBUTES};
    use serde_json::json;

    #[track_caller]
    fn fails<T: std::fmt::Debug>(result: Result<T, ScimError>, scim_type: ScimType, detail_part: &str) -> ScimError {
        let err = result.expect_err("expected an error");
        assert_eq!(err.scim_type, Some(scim_type), "{}", err.detail);
        assert!(err.detail.contains(detail_part), "detail {:?} lacks {detail_part:?}", err.detail);
        err
    }

    fn filter(text: &str) -> Filter {
        crate::scim::filter::parse_filter(text).unwrap()
    }

    fn emails() -> &'static Attribute {
        USER_SCHEMA.attribute("emails").unwrap()
    }

    fn meta() -> &'static Attribute {
        COMMON_ATTRIBUTES.iter().find(|a| a.name == "meta").unwrap()
    }

    #[test]
    fn matches_folds_case_unless_case_exact() {
        let item = json!({"value": "BJensen@Example.com", "type": "Work"});
        assert!(matches_item(emails(), &item, &filter("type eq \"work\"")).unwrap());
        assert!(matches_item(emails(), &item, &filter("value sw \"bjensen@\"")).unwrap());
        assert!(matches_item(emails(), &item, &filter("VALUE EW \"EXAMPLE.COM\"")).unwrap());
        // meta.resourceType and meta.version are caseExact.
        let meta_item = json!({"resourceType": "User", "version": "W/\"abc\""});
        assert!(matches_item(meta(), &meta_item, &filter("resourceType eq \"User\"")).unwrap());
        assert!(!matches_item(meta(), &meta_item, &filter("resourceType eq \"user\"")).unwrap());
        assert!(matches_item(meta(), &meta_item, &filter("version co \"abc\"")).unwrap());
        assert!(!matches_item(meta(), &meta_item, &filter("version co \"ABC\"")).unwrap());
    }

    #[test]
    fn matches_compares_unicode_case_insensitively() {
        let item = json!({"value": "ÉCOLE@example.com"});
        assert!(matches_item(emails(), &item, &filter("value sw \"e\u{301}cole\"")).unwrap());
    }

    #[test]
    fn matches_compares_date_times_as_instants() {
        let item = json!({"created": "2024-05-01T10:00:00+02:00", "lastModified": "2024-05-01T08:00:00Z"});
        assert!(matches_item(meta(), &item, &filter("created eq \"2024-05-01T08:00:00Z\"")).unwrap());
        assert!(matches_item(meta(), &item, &filter("created lt \"2024-05-01T08:00:01Z\"")).unwrap());
        assert!(matches_item(meta(), &item, &filter("created ge 2024-05-01T08:59:59+01:00")).unwrap());
        assert!(!matches_item(meta(), &item, &filter("created gt \"2024-05-01T08:00:00.000Z\"")).unwrap());
        fails(matches_item(meta(), &item, &filter("created gt \"yesterday\"")), ScimType::InvalidFilter, "RFC 3339");
    }

    static SCORE_SUBS: [Attribute; 2] = [
        Attribute {
            name: "value",
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
        },
        Attribute {
            name: "weight",
            kind: AttrType::Decimal,
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
        },
    ];

    static SCORES: Attribute = Attribute {
        name: "scores",
        kind: AttrType::Complex,
        multi_valued: true,
        description: "test",
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &SCORE_SUBS,
    };

    #[test]
    fn matches_compares_numbers_numerically() {
        let item = json!({"value": 10, "weight": 2.5});
        assert!(matches_item(&SCORES, &item, &filter("value gt 9")).unwrap());
        assert!(matches_item(&SCORES, &item, &filter("value eq 10.0")).unwrap());
        assert!(!matches_item(&SCORES, &item, &filter("value lt 9")).unwrap());
        assert!(matches_item(&SCORES, &item, &filter("weight le 2.5 and weight gt 2")).unwrap());
        // Lexically "10" < "9"; numerically it is not.
        assert!(!matches_item(&SCORES, &item, &filter("value le 9")).unwrap());
        fails(matches_item(&SCORES, &item, &filter("value co 1")), ScimType::InvalidFilter, "number");
        fails(matches_item(&SCORES, &item, &filter("value eq \"ten\"")), ScimType::InvalidFilter, "integer");
    }

    #[test]
    fn matches_booleans_only_with_eq_and_ne() {
        let item = json!({"value": "a@example.com", "primary": true});
        assert!(matches_item(emails(), &item, &filter("primary eq true")).unwrap());
        assert!(matches_item(emails(), &item, &filter("primary ne false")).unwrap());
        assert!(matches_item(emails(), &item, &filter("primary eq \"True\"")).unwrap());
        assert!(matches_item(emails(), &json!({"value": "x@y"}), &filter("primary ne true")).unwrap());
        for op in ["gt", "ge", "lt", "le", "co"] {
            fails(
                matches_item(emails(), &item, &filter(&format!("primary {op} true"))),
                ScimType::InvalidFilter,
                "boolean",
            );
        }
    }

    #[test]
    fn matches_present_null_not_and_or() {
        let item = json!({"value": "a@example.com", "type": "work"});
        assert!(matches_item(emails(), &item, &filter("type pr")).unwrap());
        assert!(!matches_item(emails(), &item, &filter("display pr")).unwrap());
        assert!(matches_item(emails(), &item, &filter("display eq null")).unwrap());
        assert!(matches_item(emails(), &item, &filter("type ne null")).unwrap());
        assert!(matches_item(emails(), &item, &filter("not (type eq \"home\") and (value co \"@\" or display pr)"))
            .unwrap());
        assert!(matches_item(emails(), &item, &filter("display ne \"x\"")).unwrap());
        assert!(!matches_item(emails(), &item, &filter("display eq \"x\"")).unwrap());
    }

    #[test]
    fn matches_rejects_unknown_sub_attributes_and_nested_filters() {
        let item = json!({"value": "a@example.com"});
        fails(matches_item(emails(), &item, &filter("nosuch eq \"x\"")), ScimType::InvalidFilter, "nosuch");
        fails(matches_item(emails(), &item, &filter("value.x eq \"x\"")), ScimType::InvalidFilter, "sub-attribute");
        fails(matches_item(emails(), &item, &filter("emails[type eq \"work\"]")), ScimType::InvalidFilter, "nested");
    }
}
