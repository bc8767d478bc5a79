//! The `attributes` and `excludedAttributes` query parameters (RFC 7644
//! §3.4.2.5, §3.9) and the `returned` characteristic (RFC 7643 §2.4, §7),
//! applied to a full resource representation.
//!
//! A [`Projection`] is parsed once from the query string against the resource
//! type being served, then applied to each representation on the way out.
//!
//! Rules:
//!
//! * `returned: always` attributes (`id`) are always present and cannot be
//!   excluded; `schemas`, which is not an attribute, is always kept too.
//!   `returned: never` attributes (`password`) never appear, even when named.
//!   `returned: request` attributes appear only when named in `attributes`.
//!   `returned: default` attributes appear unless excluded, and with
//!   `attributes` only when named.
//! * The same rules apply one level down to sub-attributes, with one
//!   addition: a `returned: request` sub-attribute appears only when named
//!   itself (`parent.sub`); naming its parent is not enough.
//! * With `attributes`, `name.givenName` keeps the `name` object with only
//!   `givenName`, and `emails.value` keeps every email item with only `value`.
//!   Naming a sub-attribute and its parent selects the whole parent.
//! * With `excludedAttributes`, `name.givenName` removes only that
//!   sub-attribute and `emails.value` removes `value` from every item.
//! * An empty complex value (`{}`), an empty item of a multi-valued complex
//!   attribute, a multi-valued complex attribute without items (`[]`) and an
//!   empty extension object are removed, whether projection emptied them or
//!   they came in empty: RFC 7643 §2.5 treats them as unassigned. When the
//!   input has `schemas`, the output lists the core schema URN and, in the
//!   resource type's order, the URN of each extension still present.
//!
//! Choices where the RFC is silent or clients stray from it:
//!
//! * Both parameters given: RFC 7644 §3.9 presents them as alternatives, so
//!   rather than fail the request `attributes` wins and `excludedAttributes` is
//!   ignored. A parameter whose list has no entries (`attributes=`) counts as
//!   absent.
//! * A bare schema URN names the whole schema: an extension URN its whole
//!   extension object; the core URN every core and common attribute.
//! * `emails[type eq "work"]` (sent by Microsoft's reference Postman
//!   collection, not in the RFC) is treated as `emails`, and
//!   `emails[type eq "work"].value` as `emails.value`; the filter is not
//!   evaluated. Commas inside the brackets do not split the list.
//! * Names resolve as [`find_attribute`] resolves them: case-insensitively,
//!   and an unqualified name that is not a core or common attribute falls
//!   through to the extensions (`employeeNumber`). Names that resolve to
//!   nothing, including unknown sub-attributes, are ignored. An entry that is
//!   not an attribute path at all (`name..givenName`, `a.b.c`) is an error.
//! * Keys of the representation that no schema defines are kept unless
//!   `attributes` is given (they cannot be named), in which case they are kept
//!   only inside a schema named by its bare URN.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use super::filter::parse_path;
use super::schema::{all_resource_types, find_attribute, Attribute, ResourceType, Returned, Schema};

/// The key every resource carries, listing the schemas it uses (RFC 7643 §3).
const SCHEMAS: &str = "schemas";

/// Canonical sub-attribute names, as spelled in the schema tables.
type SubNames = BTreeSet<&'static str>;

static NO_SUBS: SubNames = BTreeSet::new();
static WHOLE: Part = Part::Whole;

/// What a parameter says about one top-level attribute.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// The attribute itself was named.
    Whole,
    /// Only these sub-attributes were named.
    Subs(SubNames),
}

/// What a parameter names within one schema (the core schema together with
/// the common attributes, or one extension).
#[derive(Debug, Clone, Default, PartialEq)]
struct Names {
    /// The schema was named by its bare URN: every attribute in it.
    whole: bool,
    /// Named attributes, by canonical name.
    attrs: BTreeMap<&'static str, Part>,
}

impl Names {
    fn add(&mut self, attr: &'static str, sub: Option<&'static str>) {
        let part = self.attrs.entry(attr).or_insert_with(|| Part::Subs(SubNames::new()));
        match (part, sub) {
            (part, None) => *part = Part::Whole,
            (Part::Whole, Some(_)) => {}
            (Part::Subs(subs), Some(sub)) => {
                subs.insert(sub);
            }
        }
    }

    fn part(&self, attr: &str) -> Option<&Part> {
        if self.whole {
            Some(&WHOLE)
        } else {
            self.attrs.get(attr)
        }
    }

    fn is_empty(&self) -> bool {
        !self.whole && self.attrs.is_empty()
    }
}

/// Everything one parameter names, resolved against a resource type.
#[derive(Debug, Clone, Default, PartialEq)]
struct Selection {
    /// Core-schema and common attributes.
    core: Names,
    /// Extension attributes, by canonical extension URN.
    extensions: BTreeMap<&'static str, Names>,
}

impl Selection {
    fn is_empty(&self) -> bool {
        self.core.is_empty() && self.extensions.values().all(Names::is_empty)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
enum Mode {
    /// Neither parameter: the default representation.
    #[default]
    Default,
    /// `attributes`: only what is named, plus `returned: always`.
    Attributes(Selection),
    /// `excludedAttributes`: the default representation minus what is named.
    Excluded(Selection),
}

/// The resource type a projection was parsed for. Compared by identity, and
/// shown by id only, to keep `Debug` output short.
#[derive(Clone, Copy)]
struct Served(&'static ResourceType);

impl PartialEq for Served {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl fmt::Debug for Served {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.id)
    }
}

/// Parsed once at the edge from the query string.
///
/// `Projection::default()` asks for the default representation of any
/// resource type. It is not `==` to [`Projection::parse`] without parameters,
/// which remembers the resource type; use [`Projection::is_default`] to ask
/// whether a projection is the plain default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    rt: Option<Served>,
    mode: Mode,
}

/// How much of one attribute's value survives.
#[derive(Debug, Clone, Copy)]
enum Keep<'a> {
    Drop,
    /// Only these sub-attributes (and `returned: always` ones).
    Only(&'a SubNames),
    /// All `returned: default` and `always` sub-attributes except these.
    Except(&'a SubNames),
}

impl Keep<'_> {
    fn keeps(self, sub: &Attribute) -> bool {
        match (sub.returned, self) {
            (Returned::Never, _) | (_, Keep::Drop) => false,
            (Returned::Always, _) => true,
            (_, Keep::Only(named)) => named.contains(sub.name),
            (returned, Keep::Except(named)) => returned == Returned::Default && !named.contains(sub.name),
        }
    }

    /// Whether content the schema does not describe survives: only when no
    /// particular sub-attributes were asked for.
    fn keeps_unknown(self) -> bool {
        matches!(self, Keep::Except(_))
    }
}

impl Projection {
    /// `attributes` and `excludedAttributes` as given in the query
    /// (comma-separated lists; either may be absent).
    ///
    /// If both are given, `attributes` wins and `excludedAttributes` is
    /// ignored: RFC 7644 §3.9 presents them as alternatives. A list without
    /// entries counts as absent.
    ///
    /// Each entry is an attribute path (`userName`, `name.givenName`,
    /// `emails.value`, `urn:…:enterprise:2.0:User:manager.value`,
    /// `urn:…:core:2.0:User:userName`) or a bare schema URN, compared
    /// case-insensitively. Whitespace around entries is trimmed and empty
    /// entries are skipped. Names that resolve to no attribute are ignored;
    /// `emails[type eq "work"]` is taken as `emails`.
    ///
    /// The error, meant for a 400 response, names the parameter and the entry
    /// that is not an attribute path.
    pub fn parse(
        rt: &'static ResourceType,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Projection, String> {
        let served = Some(Served(rt));
        if let Some(selection) = attributes.map(|list| select(rt, list, "attributes")).transpose()?.flatten() {
            return Ok(Projection { rt: served, mode: Mode::Attributes(selection) });
        }
        let mode = match excluded.map(|list| select(rt, list, "excludedAttributes")).transpose()?.flatten() {
            // Excluding only unknown names leaves the default representation.
            Some(selection) if !selection.is_empty() => Mode::Excluded(selection),
            _ => Mode::Default,
        };
        Ok(Projection { rt: served, mode })
    }

    /// True when a plain default representation is asked for (fast path for
    /// callers). [`Projection::apply`] still enforces `returned` (it removes
    /// `password`), so the fast path is for work such as loading, not for
    /// skipping `apply`.
    pub fn is_default(&self) -> bool {
        self.mode == Mode::Default
    }

    /// True when the named top-level attribute (a core or common attribute,
    /// case-insensitive) will appear in the output, provided it has a value,
    /// so storage can skip loading e.g. Group `members` when
    /// `excludedAttributes=members` (Entra always sends that) or
    /// `attributes=displayName`. A bare extension URN asks the same about the
    /// extension object.
    ///
    /// Errs towards `true`: `excludedAttributes=name.givenName` still
    /// includes `name`, and a name no schema defines is included unless
    /// `attributes` is given.
    pub fn includes(&self, attr: &str) -> bool {
        let types: Vec<&'static ResourceType> = match self.rt {
            Some(Served(rt)) => vec![rt],
            None => all_resource_types().to_vec(),
        };
        let extension = types.iter().flat_map(|rt| rt.extensions.iter()).find(|(s, _)| s.id.eq_ignore_ascii_case(attr));
        if let Some(&(ext, _)) = extension {
            return self.extension_survives(ext);
        }
        match types.iter().find_map(|rt| find_attribute(rt, Some(rt.schema.id), attr)) {
            Some(found) => !matches!(self.decide(None, found.attr), Keep::Drop),
            None => self.keeps_unknown(None),
        }
    }

    /// Applies the projection and the `returned` rules to a full
    /// representation. Anything but a JSON object is returned unchanged.
    ///
    /// The object is trimmed where it stands rather than copied into a new one: a list page
    /// projects a hundred resources, and the keys and values that survive (most of them) are
    /// then never moved or reallocated.
    pub fn apply(&self, rt: &'static ResourceType, resource: Value) -> Value {
        let mut object = match resource {
            Value::Object(object) => object,
            other => return other,
        };
        let mut schemas_key: Option<String> = None;
        let mut present = Vec::new();
        object.retain(|key, value| {
            if key.eq_ignore_ascii_case(SCHEMAS) {
                // Filled in once the extensions are known; a second spelling of the key is
                // dropped.
                if schemas_key.is_some() {
                    return false;
                }
                schemas_key = Some(key.clone());
                return true;
            }
            if let Some(&(ext, _)) = rt.extensions.iter().find(|(s, _)| s.id.eq_ignore_ascii_case(key)) {
                let kept = self.project_extension(ext, value);
                if kept {
                    present.push(ext.id);
                }
                return kept;
            }
            match find_attribute(rt, Some(rt.schema.id), key) {
                Some(found) => project(found.attr, self.decide(None, found.attr), value),
                None => self.keeps_unknown(None),
            }
        });
        if let Some(key) = schemas_key {
            let extensions = rt.extensions.iter().map(|(s, _)| s.id).filter(|id| present.contains(id));
            let urns = std::iter::once(rt.schema.id).chain(extensions).map(Value::from);
            object.insert(key, Value::Array(urns.collect()));
        }
        Value::Object(object)
    }

    /// What the parameters name in the core scope (`ext == None`) or in one
    /// extension; `None` when nothing is named there.
    fn names(&self, ext: Option<&str>) -> Option<&Names> {
        match &self.mode {
            Mode::Default => None,
            Mode::Attributes(sel) | Mode::Excluded(sel) => match ext {
                None => Some(&sel.core),
                Some(urn) => sel.extensions.get(urn),
            },
        }
    }

    /// How much of a top-level attribute of the given scope survives.
    fn decide(&self, ext: Option<&str>, attr: &Attribute) -> Keep<'_> {
        let part = self.names(ext).and_then(|names| names.part(attr.name));
        let attributes = matches!(self.mode, Mode::Attributes(_));
        match attr.returned {
            Returned::Never => Keep::Drop,
            // `attributes` can only add to an always-returned attribute, but
            // its sub-attributes keep their own `returned` characteristic.
            Returned::Always => match part {
                Some(Part::Subs(named)) if !attributes => Keep::Except(named),
                _ => Keep::Except(&NO_SUBS),
            },
            _ if attributes => match part {
                None => Keep::Drop,
                Some(Part::Whole) => Keep::Except(&NO_SUBS),
                Some(Part::Subs(named)) => Keep::Only(named),
            },
            Returned::Request => Keep::Drop,
            Returned::Default => match part {
                None => Keep::Except(&NO_SUBS),
                Some(Part::Whole) => Keep::Drop,
                Some(Part::Subs(named)) => Keep::Except(named),
            },
        }
    }

    /// Whether keys no schema defines survive in the given scope: only
    /// within a schema named by its bare URN when `attributes` is given, and
    /// unless so named otherwise.
    fn keeps_unknown(&self, ext: Option<&str>) -> bool {
        let whole = self.names(ext).is_some_and(|names| names.whole);
        match self.mode {
            Mode::Attributes(_) => whole,
            Mode::Default | Mode::Excluded(_) => !whole,
        }
    }

    /// Whether anything of an extension object can survive.
    fn extension_survives(&self, ext: &'static Schema) -> bool {
        let scope = Some(ext.id);
        self.keeps_unknown(scope) || ext.attributes.iter().any(|attr| !matches!(self.decide(scope, attr), Keep::Drop))
    }

    /// Projects an extension object where it stands; false when nothing of it is left.
    fn project_extension(&self, ext: &'static Schema, value: &mut Value) -> bool {
        let scope = Some(ext.id);
        let Value::Object(object) = value else { return self.keeps_unknown(scope) };
        object.retain(|key, item| match ext.attribute(key) {
            Some(attr) => project(attr, self.decide(scope, attr), item),
            None => self.keeps_unknown(scope),
        });
        !object.is_empty()
    }
}

/// Parses one parameter's list; `None` when it has no entries.
fn select(rt: &'static ResourceType, list: &str, parameter: &str) -> Result<Option<Selection>, String> {
    let mut selection = Selection::default();
    let mut any = false;
    for entry in split_entries(list).into_iter().map(str::trim).filter(|e| !e.is_empty()) {
        any = true;
        if entry.eq_ignore_ascii_case(rt.schema.id) {
            selection.core.whole = true;
            continue;
        }
        if let Some((ext, _)) = rt.extensions.iter().find(|(s, _)| s.id.eq_ignore_ascii_case(entry)) {
            selection.extensions.entry(ext.id).or_default().whole = true;
            continue;
        }
        let path = parse_path(entry).map_err(|e| format!("{parameter}: {entry:?} is not an attribute path ({e})"))?;
        // Any value filter is dropped: `emails[...]` is `emails`, and
        // `emails[...].value` is `emails.value`.
        let sub = path.value_sub.as_deref().or(path.attr.sub.as_deref());
        let Some(found) = find_attribute(rt, path.attr.urn.as_deref(), &path.attr.attr) else {
            continue;
        };
        let sub = match sub {
            None => None,
            Some(sub) => match found.attr.sub_attribute(sub) {
                Some(sub) => Some(sub.name),
                None => continue,
            },
        };
        let names = match found.schema_urn {
            Some(urn) if urn != rt.schema.id => selection.extensions.entry(urn).or_default(),
            _ => &mut selection.core,
        };
        names.add(found.attr.name, sub);
    }
    Ok(any.then_some(selection))
}

/// Splits a list at the commas that are outside brackets and quoted strings,
/// so that `emails[type eq "a,b"]` stays one entry.
fn split_entries(list: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in list.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                entries.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    entries.push(&list[start..]);
    entries
}

/// Projects one attribute's value where it stands; false when nothing of it is left.
fn project(attr: &'static Attribute, keep: Keep<'_>, value: &mut Value) -> bool {
    if matches!(keep, Keep::Drop) {
        return false;
    }
    if attr.sub_attributes.is_empty() {
        return true;
    }
    match value {
        Value::Object(item) => project_item(attr, keep, item),
        Value::Array(items) => {
            items.retain_mut(|item| match item {
                Value::Object(item) => project_item(attr, keep, item),
                _ => keep.keeps_unknown(),
            });
            !items.is_empty()
        }
        _ => keep.keeps_unknown(),
    }
}

/// Keeps only the surviving sub-attributes of one complex value; false when none is left.
fn project_item(attr: &'static Attribute, keep: Keep<'_>, item: &mut Map<String, Value>) -> bool {
    item.retain(|key, _| match attr.sub_attribute(key) {
        Some(sub) => keep.keeps(sub),
        None => keep.keeps_unknown(),
    });
    !item.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{
        AttrType, Mutability, Uniqueness, ENTERPRISE_USER, GROUP, GROUP_RESOURCE, ROSTER_USER, USER, USER_RESOURCE,
    };
    use serde_json::json;

    const ID: &str = "2819c223-7f76-453a-919d-413861904646";

    /// A full User representation in the style of RFC 7643 §8.2, with both
    /// extensions and a stored password (which must never come out).
    fn bjensen() -> Value {
        json!({
            "schemas": [USER, ENTERPRISE_USER, ROSTER_USER],
            "id": ID,
            "externalId": "701984",
            "userName": "bjensen@example.com",
            "name": {
                "formatted": "Ms. Barbara J Jensen, III",
                "familyName": "Jensen",
                "givenName": "Barbara",
                "middleName": "Jane",
                "honorificPrefix": "Ms.",
                "honorificSuffix": "III"
            },
            "displayName": "Babs Jensen",
            "nickName": "Babs",
            "active": true,
            "password": "t1meMa$heen",
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
            "groups": [
                {
                    "value": "e9e30dba-f08f-4109-8486-d5c6a331660a",
                    "$ref": "https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a",
                    "display": "Tour Guides"
                }
            ],
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z",
                "version": "W/\"3694e05e9dff591\"",
                "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"
            },
            ENTERPRISE_USER: {
                "employeeNumber": "701984",
                "costCenter": "4130",
                "organization": "Universal Studios",
                "division": "Theme Park",
                "department": "Tour Operations",
                "manager": {
                    "value": "26118915-6090-4610-87e4-49d8ca9f808d",
                    "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
                    "displayName": "John Smith"
                }
            },
            ROSTER_USER: {
                "lifecycleState": "active",
                "formerMember": false
            }
        })
    }

    fn tour_guides() -> Value {
        json!({
            "schemas": [GROUP],
            "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
            "displayName": "Tour Guides",
            "members": [
                {
                    "value": ID,
                    "$ref": format!("https://example.com/v2/Users/{ID}"),
                    "display": "Babs Jensen",
                    "type": "User"
                },
                {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge", "type": "User"}
            ],
            "meta": {
                "resourceType": "Group",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z",
                "version": "W/\"3694e05e9dff592\"",
                "location": "https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a"
            }
        })
    }

    fn projection(rt: &'static ResourceType, attributes: Option<&str>, excluded: Option<&str>) -> Projection {
        Projection::parse(rt, attributes, excluded).expect("valid projection")
    }

    fn user_with(attributes: &str) -> Value {
        projection(&USER_RESOURCE, Some(attributes), None).apply(&USER_RESOURCE, bjensen())
    }

    fn user_without(excluded: &str) -> Value {
        projection(&USER_RESOURCE, None, Some(excluded)).apply(&USER_RESOURCE, bjensen())
    }

    fn keys(value: &Value) -> Vec<&str> {
        value.as_object().expect("object").keys().map(String::as_str).collect()
    }

    /// The full representation without the never-returned password.
    fn bjensen_default() -> Value {
        let mut expected = bjensen();
        expected.as_object_mut().unwrap().remove("password");
        expected
    }

    // -- RFC examples ---------------------------------------------------------

    #[test]
    fn rfc_7644_3_9_attributes_user_name_returns_schemas_id_and_user_name() {
        assert_eq!(
            user_with("userName"),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": "2819c223-7f76-453a-919d-413861904646",
                "userName": "bjensen@example.com"
            })
        );
    }

    #[test]
    fn rfc_7644_3_4_3_search_attributes_display_name_and_user_name() {
        // The SearchRequest example asks for ["displayName", "userName"].
        assert_eq!(
            user_with("displayName,userName"),
            json!({
                "schemas": [USER],
                "id": ID,
                "userName": "bjensen@example.com",
                "displayName": "Babs Jensen"
            })
        );
    }

    #[test]
    fn rfc_7644_3_4_2_5_excluded_attributes_have_no_effect_on_always_returned_ones() {
        let out = user_without("id,schemas,userName");
        assert_eq!(out["id"], ID);
        assert_eq!(out["schemas"], json!([USER, ENTERPRISE_USER, ROSTER_USER]));
        assert!(out.get("userName").is_none());
    }

    // -- default representation and `returned` ----------------------------------

    #[test]
    fn default_representation_is_everything_but_the_password() {
        let out = Projection::parse(&USER_RESOURCE, None, None).unwrap().apply(&USER_RESOURCE, bjensen());
        assert_eq!(out, bjensen_default());
        assert_eq!(Projection::default().apply(&USER_RESOURCE, bjensen()), bjensen_default());
        assert_eq!(Projection::default().apply(&GROUP_RESOURCE, tour_guides()), tour_guides());
    }

    #[test]
    fn password_is_never_returned_even_when_named() {
        let out = user_with("password,userName");
        assert_eq!(keys(&out), ["id", "schemas", "userName"]);
        let out = user_with("urn:ietf:params:scim:schemas:core:2.0:User:password");
        assert_eq!(keys(&out), ["id", "schemas"]);
        let out = user_with(USER);
        assert!(out.get("password").is_none());
        assert!(user_without("userName").get("password").is_none());
    }

    #[test]
    fn id_is_kept_when_attributes_do_not_name_it() {
        let out = user_with("displayName");
        assert_eq!(out["id"], ID);
        let out = user_with("id");
        assert_eq!(out, json!({"schemas": [USER], "id": ID}));
    }

    // -- attributes ------------------------------------------------------------

    #[test]
    fn attributes_keeps_only_named_sub_attributes() {
        let out = user_with("name.givenName");
        assert_eq!(out, json!({"schemas": [USER], "id": ID, "name": {"givenName": "Barbara"}}));
        let out = user_with("name.givenName,name.familyName");
        assert_eq!(out["name"], json!({"givenName": "Barbara", "familyName": "Jensen"}));
    }

    #[test]
    fn attributes_sub_attribute_of_a_multi_valued_attribute_applies_to_every_item() {
        let out = user_with("emails.value");
        assert_eq!(out["emails"], json!([{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]));
    }

    #[test]
    fn attributes_drops_items_and_values_lacking_the_named_sub_attribute() {
        let out = user_with("emails.primary,name.nickName,phoneNumbers.display");
        assert_eq!(out["emails"], json!([{"primary": true}]));
        // nickName is no sub-attribute of name: ignored; display is one of
        // phoneNumbers but no item has it.
        assert_eq!(keys(&out), ["emails", "id", "schemas"]);
    }

    #[test]
    fn attributes_parent_and_sub_attribute_together_keep_the_whole_parent() {
        let full_name = bjensen()["name"].clone();
        assert_eq!(user_with("name.givenName,name")["name"], full_name);
        assert_eq!(user_with("name,name.givenName")["name"], full_name);
        assert_eq!(user_with("emails,emails.value")["emails"], bjensen()["emails"]);
    }

    #[test]
    fn attributes_meta_works_like_any_complex_attribute() {
        let out = user_with("meta.lastModified");
        assert_eq!(out, json!({"schemas": [USER], "id": ID, "meta": {"lastModified": "2011-05-13T04:42:34Z"}}));
        assert_eq!(user_with("meta")["meta"], bjensen()["meta"]);
        assert!(user_with("userName").get("meta").is_none());
    }

    #[test]
    fn attributes_select_common_attributes() {
        let out = user_with("externalId");
        assert_eq!(out, json!({"schemas": [USER], "id": ID, "externalId": "701984"}));
    }

    #[test]
    fn core_urn_qualified_names_select_core_and_common_attributes() {
        let out = user_with(&format!(
            "{USER}:userName,{USER}:name.givenName, urn:ietf:params:scim:schemas:core:2.0:User:meta.version"
        ));
        assert_eq!(
            out,
            json!({
                "schemas": [USER],
                "id": ID,
                "userName": "bjensen@example.com",
                "name": {"givenName": "Barbara"},
                "meta": {"version": "W/\"3694e05e9dff591\""}
            })
        );
    }

    #[test]
    fn bare_core_urn_selects_every_core_attribute_but_no_extension() {
        let out = user_with(USER);
        let mut expected = bjensen_default();
        let obj = expected.as_object_mut().unwrap();
        obj.remove(ENTERPRISE_USER);
        obj.remove(ROSTER_USER);
        obj["schemas"] = json!([USER]);
        assert_eq!(out, expected);
    }

    #[test]
    fn names_are_case_insensitive() {
        let out = user_with("USERNAME,Name.GIVENNAME,EMAILS.Value");
        assert_eq!(
            out,
            json!({
                "schemas": [USER],
                "id": ID,
                "userName": "bjensen@example.com",
                "name": {"givenName": "Barbara"},
                "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]
            })
        );
        let upper = user_with(&format!("{}:DEPARTMENT", ENTERPRISE_USER.to_ascii_uppercase()));
        assert_eq!(upper[ENTERPRISE_USER], json!({"department": "Tour Operations"}));
        let upper = user_with(&ENTERPRISE_USER.to_ascii_lowercase());
        assert_eq!(upper[ENTERPRISE_USER], bjensen()[ENTERPRISE_USER]);
    }

    #[test]
    fn bracket_filter_entries_are_treated_as_the_plain_attribute() {
        assert_eq!(user_with(r#"emails[type eq "work"]"#)["emails"], bjensen()["emails"]);
        let out = user_with(r#"emails[type eq "work"].value,userName"#);
        assert_eq!(keys(&out), ["emails", "id", "schemas", "userName"]);
        assert_eq!(out["emails"], json!([{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]));
        // A comma inside the brackets does not split the list.
        let out = user_with(r#"emails[value co "a,b" or type eq "x]"],displayName"#);
        assert_eq!(keys(&out), ["displayName", "emails", "id", "schemas"]);
        let out = user_with("emails[value eq a,b],displayName");
        assert_eq!(keys(&out), ["displayName", "emails", "id", "schemas"]);
        let out = user_with(r#"emails[value eq "x],y"],displayName"#);
        assert_eq!(keys(&out), ["displayName", "emails", "id", "schemas"]);
    }

    #[test]
    fn unknown_names_are_ignored() {
        let out = user_with("userName,nonsense,name.nonsense,userName.value,urn:example:nothing:userName,members");
        assert_eq!(out, json!({"schemas": [USER], "id": ID, "userName": "bjensen@example.com"}));
        // Group URN on a User, User attribute on a Group.
        let out = user_with("urn:ietf:params:scim:schemas:core:2.0:Group:displayName");
        assert_eq!(keys(&out), ["id", "schemas"]);
        let group = projection(&GROUP_RESOURCE, Some(&format!("{ENTERPRISE_USER},userName,displayName")), None)
            .apply(&GROUP_RESOURCE, tour_guides());
        assert_eq!(keys(&group), ["displayName", "id", "schemas"]);
    }

    #[test]
    fn attributes_naming_only_unknown_attributes_return_only_id_and_schemas() {
        let p = projection(&USER_RESOURCE, Some("nothing,whatever"), Some("userName"));
        assert!(!p.is_default());
        assert_eq!(p.apply(&USER_RESOURCE, bjensen()), json!({"schemas": [USER], "id": ID}));
    }

    #[test]
    fn whitespace_and_empty_entries_are_ignored() {
        let out = user_with(" userName , ,\tdisplayName ,,");
        assert_eq!(keys(&out), ["displayName", "id", "schemas", "userName"]);
        let out = user_without(" emails ,, meta ");
        assert!(out.get("emails").is_none() && out.get("meta").is_none());
        assert_eq!(out["userName"], "bjensen@example.com");
    }

    #[test]
    fn empty_parameters_mean_the_default_representation() {
        for list in ["", " ", " , ,"] {
            let p = projection(&USER_RESOURCE, Some(list), Some(list));
            assert!(p.is_default(), "{list:?}");
            assert_eq!(p.apply(&USER_RESOURCE, bjensen()), bjensen_default());
        }
    }

    #[test]
    fn attributes_win_over_excluded_attributes() {
        let p = projection(&USER_RESOURCE, Some("userName,emails"), Some("userName,emails.value"));
        let out = p.apply(&USER_RESOURCE, bjensen());
        assert_eq!(keys(&out), ["emails", "id", "schemas", "userName"]);
        assert_eq!(out["emails"], bjensen()["emails"]);
        assert_eq!(p, projection(&USER_RESOURCE, Some("userName,emails"), None));
    }

    #[test]
    fn empty_attributes_let_excluded_attributes_apply() {
        let p = projection(&USER_RESOURCE, Some(" "), Some("userName"));
        let out = p.apply(&USER_RESOURCE, bjensen());
        assert!(out.get("userName").is_none());
        assert_eq!(out["displayName"], "Babs Jensen");
    }

    #[test]
    fn malformed_paths_are_errors_naming_the_parameter() {
        for bad in ["name..givenName", "name.givenName.x", "emails[", "emails[type eq]", "1abc", "urn:x", "a b"] {
            let err = Projection::parse(&USER_RESOURCE, Some(&format!("userName,{bad}")), None).unwrap_err();
            assert!(err.starts_with("attributes: "), "{err}");
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            let err = Projection::parse(&USER_RESOURCE, None, Some(bad)).unwrap_err();
            assert!(err.starts_with("excludedAttributes: "), "{err}");
        }
        // The ignored parameter is not even parsed.
        assert!(Projection::parse(&USER_RESOURCE, Some("userName"), Some("name..x")).is_ok());
    }

    // -- extensions --------------------------------------------------------------

    #[test]
    fn extension_attribute_selection_prunes_schemas() {
        let out = user_with("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department");
        assert_eq!(
            out,
            json!({
                "schemas": [USER, ENTERPRISE_USER],
                "id": ID,
                ENTERPRISE_USER: {"department": "Tour Operations"}
            })
        );
    }

    #[test]
    fn bare_extension_urn_selects_the_whole_extension() {
        let out = user_with(&format!("userName,{ENTERPRISE_USER}"));
        assert_eq!(
            out,
            json!({
                "schemas": [USER, ENTERPRISE_USER],
                "id": ID,
                "userName": "bjensen@example.com",
                ENTERPRISE_USER: bjensen()[ENTERPRISE_USER].clone()
            })
        );
        // Naming one attribute too still selects the whole extension.
        let out = user_with(&format!("{ENTERPRISE_USER}:department,{ENTERPRISE_USER}"));
        assert_eq!(out[ENTERPRISE_USER], bjensen()[ENTERPRISE_USER]);
    }

    #[test]
    fn extension_sub_attribute_selection_is_nested() {
        let out = user_with(&format!("{ENTERPRISE_USER}:manager.value,{ROSTER_USER}:lifecycleState"));
        assert_eq!(
            out,
            json!({
                "schemas": [USER, ENTERPRISE_USER, ROSTER_USER],
                "id": ID,
                ENTERPRISE_USER: {"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
                ROSTER_USER: {"lifecycleState": "active"}
            })
        );
    }

    #[test]
    fn attributes_without_extension_names_leave_extensions_out_of_schemas() {
        let out = user_with("userName,name");
        assert_eq!(out["schemas"], json!([USER]));
        assert!(out.get(ENTERPRISE_USER).is_none() && out.get(ROSTER_USER).is_none());
    }

    #[test]
    fn selecting_an_extension_attribute_the_resource_lacks_leaves_no_empty_object() {
        let out = user_with(&format!("{ROSTER_USER}:deactivatedAt,{ENTERPRISE_USER}:manager.displayName"));
        assert_eq!(
            out,
            json!({
                "schemas": [USER, ENTERPRISE_USER],
                "id": ID,
                ENTERPRISE_USER: {"manager": {"displayName": "John Smith"}}
            })
        );
    }

    #[test]
    fn unqualified_extension_names_fall_through_like_find_attribute() {
        let out = user_with("employeeNumber");
        assert_eq!(
            out,
            json!({"schemas": [USER, ENTERPRISE_USER], "id": ID, ENTERPRISE_USER: {"employeeNumber": "701984"}})
        );
    }

    #[test]
    fn excluding_a_bare_extension_urn_removes_it_and_its_schema() {
        let out = user_without(ENTERPRISE_USER);
        let mut expected = bjensen_default();
        expected.as_object_mut().unwrap().remove(ENTERPRISE_USER);
        expected["schemas"] = json!([USER, ROSTER_USER]);
        assert_eq!(out, expected);
    }

    #[test]
    fn excluding_every_attribute_of_an_extension_removes_the_emptied_extension() {
        let out = user_without(&format!("{ROSTER_USER}:lifecycleState,{ROSTER_USER}:formerMember"));
        assert!(out.get(ROSTER_USER).is_none());
        assert_eq!(out["schemas"], json!([USER, ENTERPRISE_USER]));
        let out = user_without(&format!("{ENTERPRISE_USER}:manager.value,{ENTERPRISE_USER}:department"));
        assert_eq!(
            out[ENTERPRISE_USER]["manager"],
            json!({"$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"})
        );
        assert!(out[ENTERPRISE_USER].get("department").is_none());
    }

    #[test]
    fn schemas_are_rebuilt_in_resource_type_order_with_canonical_urns() {
        let mut resource = bjensen();
        resource["schemas"] = json!([ROSTER_USER.to_ascii_uppercase(), "urn:example:stale", USER]);
        let out = Projection::default().apply(&USER_RESOURCE, resource.clone());
        assert_eq!(out["schemas"], json!([USER, ENTERPRISE_USER, ROSTER_USER]));
        // An empty extension object is removed, and so is its URN.
        resource[ROSTER_USER] = json!({});
        let out = Projection::default().apply(&USER_RESOURCE, resource.clone());
        assert!(out.get(ROSTER_USER).is_none());
        assert_eq!(out["schemas"], json!([USER, ENTERPRISE_USER]));
        // A second spelling of the key does not leave a stray placeholder.
        resource["Schemas"] = json!([USER]);
        let out = Projection::default().apply(&USER_RESOURCE, resource.clone());
        assert_eq!(out["Schemas"], json!([USER, ENTERPRISE_USER]));
        assert!(out.get("schemas").is_none());
        resource.as_object_mut().unwrap().remove("Schemas");
        // No `schemas` in, none invented.
        resource.as_object_mut().unwrap().remove("schemas");
        assert!(Projection::default().apply(&USER_RESOURCE, resource.clone()).get("schemas").is_none());
    }

    // -- excludedAttributes --------------------------------------------------------

    #[test]
    fn excluded_members_are_left_out_but_id_stays() {
        let p = projection(&GROUP_RESOURCE, None, Some("members"));
        let out = p.apply(&GROUP_RESOURCE, tour_guides());
        let mut expected = tour_guides();
        expected.as_object_mut().unwrap().remove("members");
        assert_eq!(out, expected);
        assert_eq!(out["id"], "e9e30dba-f08f-4109-8486-d5c6a331660a");
    }

    #[test]
    fn excluded_sub_attribute_removes_only_that_sub_attribute() {
        let out = user_without("name.givenName");
        let mut expected = bjensen_default();
        expected["name"].as_object_mut().unwrap().remove("givenName");
        assert_eq!(out, expected);
    }

    #[test]
    fn excluded_sub_attribute_of_a_multi_valued_attribute_is_removed_from_every_item() {
        let out = user_without("emails.value");
        assert_eq!(out["emails"], json!([{"type": "work", "primary": true}, {"type": "home"}]));
        let group = projection(&GROUP_RESOURCE, None, Some("members.$ref,members.display"))
            .apply(&GROUP_RESOURCE, tour_guides());
        assert_eq!(
            group["members"],
            json!([
                {"value": ID, "type": "User"},
                {"value": "902c246b-6245-4190-8e05-00816be7344a", "type": "User"}
            ])
        );
    }

    #[test]
    fn excluded_sub_attributes_that_empty_a_complex_attribute_remove_it() {
        let mut resource = bjensen();
        resource["name"] = json!({"givenName": "Barbara"});
        resource["emails"] = json!([{"value": "a@example.com"}, {"value": "b@example.com", "type": "home"}]);
        let p =
            projection(&USER_RESOURCE, None, Some("name.givenName,emails.value,phoneNumbers.value,phoneNumbers.type"));
        let out = p.apply(&USER_RESOURCE, resource.clone());
        assert!(out.get("name").is_none());
        assert!(out.get("phoneNumbers").is_none());
        assert_eq!(out["emails"], json!([{"type": "home"}]));
    }

    #[test]
    fn excluded_parent_and_sub_attribute_remove_the_whole_parent() {
        let out = user_without("name.givenName,name,meta.version");
        assert!(out.get("name").is_none());
        let mut meta = bjensen()["meta"].clone();
        meta.as_object_mut().unwrap().remove("version");
        assert_eq!(out["meta"], meta);
    }

    #[test]
    fn excluding_the_core_urn_leaves_id_and_extensions() {
        let out = user_without(USER);
        assert_eq!(keys(&out), ["id", "schemas", ENTERPRISE_USER, ROSTER_USER]);
    }

    // -- Group ---------------------------------------------------------------

    #[test]
    fn group_attributes_display_name_skips_members() {
        let p = projection(&GROUP_RESOURCE, Some("displayName"), None);
        assert!(!p.includes("members"));
        assert_eq!(
            p.apply(&GROUP_RESOURCE, tour_guides()),
            json!({"schemas": [GROUP], "id": "e9e30dba-f08f-4109-8486-d5c6a331660a", "displayName": "Tour Guides"})
        );
    }

    #[test]
    fn group_members_value_selects_only_member_ids() {
        let p = projection(&GROUP_RESOURCE, Some("members.value"), None);
        assert!(p.includes("members"));
        let out = p.apply(&GROUP_RESOURCE, tour_guides());
        assert_eq!(out["members"], json!([{"value": ID}, {"value": "902c246b-6245-4190-8e05-00816be7344a"}]));
    }

    #[test]
    fn group_member_value_is_returned_default_so_it_can_be_excluded() {
        // schema.rs marks no sub-attribute `always`; only `id` is.
        let out = projection(&GROUP_RESOURCE, None, Some("members.value,members.$ref,members.display"))
            .apply(&GROUP_RESOURCE, tour_guides());
        assert_eq!(out["members"], json!([{"type": "User"}, {"type": "User"}]));
    }

    // -- includes / is_default ----------------------------------------------------

    #[test]
    fn includes_tells_storage_which_top_level_attributes_to_load() {
        let entra = projection(&GROUP_RESOURCE, None, Some("members"));
        assert!(!entra.includes("members"));
        assert!(!entra.includes("MEMBERS"));
        assert!(entra.includes("displayName"));
        assert!(entra.includes("id"));
        assert!(entra.includes("meta"));

        let default = projection(&GROUP_RESOURCE, None, None);
        assert!(default.includes("members") && default.includes("displayName"));
        assert!(Projection::default().includes("members"));
        assert!(!Projection::default().includes("password"));

        let user = projection(&USER_RESOURCE, Some("name.givenName"), None);
        assert!(user.includes("name"));
        assert!(user.includes("id"));
        assert!(!user.includes("emails"));
        assert!(!user.includes("password"));
        assert!(!user.includes("meta"));
        assert!(!user.includes("unknownThing"));

        let partial = projection(&USER_RESOURCE, None, Some("name.givenName,id"));
        assert!(partial.includes("name"));
        assert!(partial.includes("id"));
        assert!(!partial.includes("password"));
        assert!(partial.includes("unknownThing"));
    }

    #[test]
    fn includes_answers_for_bare_extension_urns() {
        let only_core = projection(&USER_RESOURCE, Some("userName"), None);
        assert!(!only_core.includes(ENTERPRISE_USER));
        let department = projection(&USER_RESOURCE, Some(&format!("{ENTERPRISE_USER}:department")), None);
        assert!(department.includes(&ENTERPRISE_USER.to_ascii_lowercase()));
        assert!(!department.includes(ROSTER_USER));
        let without = projection(&USER_RESOURCE, None, Some(ROSTER_USER));
        assert!(!without.includes(ROSTER_USER));
        assert!(without.includes(ENTERPRISE_USER));
        assert!(Projection::default().includes(ENTERPRISE_USER));
    }

    #[test]
    fn is_default_only_for_plain_requests() {
        assert!(Projection::default().is_default());
        assert!(projection(&USER_RESOURCE, None, None).is_default());
        assert!(projection(&USER_RESOURCE, None, Some("nonsense,name.nonsense")).is_default());
        assert!(!projection(&USER_RESOURCE, None, Some("emails")).is_default());
        assert!(!projection(&USER_RESOURCE, Some("userName"), None).is_default());
        assert_eq!(projection(&USER_RESOURCE, None, None), projection(&USER_RESOURCE, Some(""), None));
        assert_ne!(projection(&USER_RESOURCE, None, None), projection(&GROUP_RESOURCE, None, None));
    }

    // -- odd input --------------------------------------------------------------------

    #[test]
    fn non_object_resources_are_returned_unchanged() {
        let projections = [
            Projection::default(),
            projection(&USER_RESOURCE, Some("userName"), None),
            projection(&USER_RESOURCE, None, Some("name.givenName")),
        ];
        for p in &projections {
            for odd in [json!(null), json!("text"), json!(42), json!([1, {"id": "x"}]), json!(true)] {
                assert_eq!(p.apply(&USER_RESOURCE, odd.clone()), odd);
            }
        }
    }

    #[test]
    fn odd_shapes_never_panic() {
        let odd = json!({
            "schemas": "not an array",
            "id": {"nested": true},
            "name": "just a string",
            "emails": {"value": "single@example.com", "type": "work"},
            "phoneNumbers": ["555-1234", null, {"value": "555-0000"}, {}],
            "addresses": [],
            "meta": null,
            ENTERPRISE_USER: "not an object",
            ROSTER_USER: [1, 2]
        });
        let lists = [
            (None, None),
            (Some("name.givenName,emails.value,phoneNumbers.value,addresses,meta.created"), None),
            (None, Some("name.givenName,emails.value,phoneNumbers.value,meta.created")),
            (Some(ENTERPRISE_USER), None),
            (None, Some(ENTERPRISE_USER)),
        ];
        for (attributes, excluded) in lists {
            let out = projection(&USER_RESOURCE, attributes, excluded).apply(&USER_RESOURCE, odd.clone());
            assert_eq!(out["id"], json!({"nested": true}), "{attributes:?} {excluded:?}");
        }
        let picked = projection(&USER_RESOURCE, Some("name.givenName,emails.value,phoneNumbers.value,addresses"), None)
            .apply(&USER_RESOURCE, odd.clone());
        assert_eq!(
            picked,
            json!({
                "schemas": [USER],
                "id": {"nested": true},
                "emails": {"value": "single@example.com"},
                "phoneNumbers": [{"value": "555-0000"}]
            })
        );
        let default = Projection::default().apply(&USER_RESOURCE, odd.clone());
        assert_eq!(default["name"], "just a string");
        // Empty complex values are unassigned (RFC 7643 §2.5) and go.
        assert_eq!(default["phoneNumbers"], json!(["555-1234", null, {"value": "555-0000"}]));
        assert!(default.get("addresses").is_none());
        assert_eq!(default[ENTERPRISE_USER], "not an object");
        assert_eq!(default["schemas"], json!([USER, ENTERPRISE_USER, ROSTER_USER]));
    }

    #[test]
    fn keys_no_schema_defines_are_kept_unless_attributes_are_given() {
        let mut resource = bjensen();
        resource["x-internal"] = json!("kept by default");
        resource[ENTERPRISE_USER]["x-extra"] = json!(1);
        let default = Projection::default().apply(&USER_RESOURCE, resource.clone());
        assert_eq!(default["x-internal"], "kept by default");
        assert_eq!(default[ENTERPRISE_USER]["x-extra"], 1);
        let excluded = projection(&USER_RESOURCE, None, Some("userName")).apply(&USER_RESOURCE, resource.clone());
        assert_eq!(excluded["x-internal"], "kept by default");
        let picked = projection(&USER_RESOURCE, Some("userName"), None).apply(&USER_RESOURCE, resource.clone());
        assert!(picked.get("x-internal").is_none());
        let whole = projection(&USER_RESOURCE, Some(ENTERPRISE_USER), None).apply(&USER_RESOURCE, resource.clone());
        assert_eq!(whole[ENTERPRISE_USER]["x-extra"], 1);
        let part = projection(&USER_RESOURCE, Some(&format!("{ENTERPRISE_USER}:department")), None)
            .apply(&USER_RESOURCE, resource.clone());
        assert_eq!(part[ENTERPRISE_USER], json!({"department": "Tour Operations"}));
    }

    // -- `returned` rules the served schemas do not exercise ------------------------
    //
    // Roster's schemas mark only `id` always and `password` never, so these
    // rules are checked against a made-up resource type.

    const fn test_attr(name: &'static str, returned: Returned, subs: &'static [Attribute]) -> Attribute {
        Attribute {
            name,
            kind: if subs.is_empty() { AttrType::String } else { AttrType::Complex },
            multi_valued: !subs.is_empty(),
            description: "test attribute",
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: subs,
        }
    }

    const WIDGET: &str = "urn:example:params:scim:schemas:core:2.0:Widget";
    const PROBE: &str = "urn:example:params:scim:schemas:extension:probe:2.0:Widget";

    static WIDGET_SCHEMA: Schema = Schema {
        id: WIDGET,
        name: "Widget",
        description: "A resource exercising every returned characteristic",
        attributes: &[
            test_attr("label", Returned::Default, &[]),
            test_attr("serial", Returned::Always, &[]),
            test_attr("secret", Returned::Never, &[]),
            test_attr("audit", Returned::Request, &[]),
            test_attr(
                "parts",
                Returned::Default,
                &[
                    test_attr("value", Returned::Default, &[]),
                    test_attr("code", Returned::Always, &[]),
                    test_attr("hidden", Returned::Never, &[]),
                    test_attr("extra", Returned::Request, &[]),
                ],
            ),
            test_attr(
                "badges",
                Returned::Always,
                &[test_attr("color", Returned::Default, &[]), test_attr("shape", Returned::Default, &[])],
            ),
            test_attr(
                "history",
                Returned::Request,
                &[test_attr("at", Returned::Default, &[]), test_attr("by", Returned::Request, &[])],
            ),
        ],
    };

    static PROBE_SCHEMA: Schema = Schema {
        id: PROBE,
        name: "Probe",
        description: "An extension with an always-returned attribute",
        attributes: &[test_attr("note", Returned::Default, &[]), test_attr("tag", Returned::Always, &[])],
    };

    static WIDGET_RESOURCE: ResourceType = ResourceType {
        id: "Widget",
        name: "Widget",
        endpoint: "/Widgets",
        description: "Widget",
        schema: &WIDGET_SCHEMA,
        extensions: &[(&PROBE_SCHEMA, false)],
    };

    fn widget() -> Value {
        json!({
            "schemas": [WIDGET, PROBE],
            "id": "w1",
            "label": "Sprocket",
            "serial": "SN-1",
            "secret": "hunter2",
            "audit": "created by import",
            "parts": [
                {"value": "gear", "code": "G", "hidden": "x", "extra": "e1"},
                {"value": "axle", "code": "A"}
            ],
            "badges": [{"color": "red", "shape": "star"}],
            "history": [{"at": "2024-01-01T00:00:00Z", "by": "admin"}],
            "meta": {"resourceType": "Widget"},
            PROBE: {"note": "n", "tag": "t"}
        })
    }

    fn widget_with(attributes: Option<&str>, excluded: Option<&str>) -> Value {
        projection(&WIDGET_RESOURCE, attributes, excluded).apply(&WIDGET_RESOURCE, widget())
    }

    #[test]
    fn default_widget_omits_never_and_request_attributes_and_sub_attributes() {
        assert_eq!(
            widget_with(None, None),
            json!({
                "schemas": [WIDGET, PROBE],
                "id": "w1",
                "label": "Sprocket",
                "serial": "SN-1",
                "parts": [{"value": "gear", "code": "G"}, {"value": "axle", "code": "A"}],
                "badges": [{"color": "red", "shape": "star"}],
                "meta": {"resourceType": "Widget"},
                PROBE: {"note": "n", "tag": "t"}
            })
        );
    }

    #[test]
    fn request_attributes_appear_only_when_named() {
        let out = widget_with(Some("audit"), None);
        assert_eq!(
            out,
            json!({
                "schemas": [WIDGET, PROBE],
                "id": "w1",
                "serial": "SN-1",
                "audit": "created by import",
                "badges": [{"color": "red", "shape": "star"}],
                PROBE: {"tag": "t"}
            })
        );
        assert!(widget_with(None, Some("label")).get("audit").is_none());
        // Naming a request attribute brings its default sub-attributes, not
        // its request ones.
        assert_eq!(widget_with(Some("history"), None)["history"], json!([{"at": "2024-01-01T00:00:00Z"}]));
        assert_eq!(widget_with(Some("history.by"), None)["history"], json!([{"by": "admin"}]));
        let p = projection(&WIDGET_RESOURCE, Some("audit"), None);
        assert!(p.includes("audit") && !p.includes("history"));
        assert!(!projection(&WIDGET_RESOURCE, None, None).includes("audit"));
    }

    #[test]
    fn always_attributes_cannot_be_excluded_or_left_out() {
        let out = widget_with(None, Some("serial,id,parts.code,label"));
        assert_eq!(out["serial"], "SN-1");
        assert_eq!(out["parts"], json!([{"value": "gear", "code": "G"}, {"value": "axle", "code": "A"}]));
        assert!(out.get("label").is_none());
        let out = widget_with(Some("label"), None);
        assert_eq!(keys(&out), ["badges", "id", "label", "schemas", "serial", PROBE]);
        // An always attribute keeps an extension alive even when its URN is excluded.
        let out = widget_with(None, Some(PROBE));
        assert_eq!(out[PROBE], json!({"tag": "t"}));
        assert_eq!(out["schemas"], json!([WIDGET, PROBE]));
        assert!(projection(&WIDGET_RESOURCE, None, Some(PROBE)).includes(PROBE));
    }

    #[test]
    fn always_complex_attributes_stay_but_their_default_sub_attributes_can_be_excluded() {
        let whole = json!([{"color": "red", "shape": "star"}]);
        assert_eq!(widget_with(None, Some("badges"))["badges"], whole);
        assert_eq!(widget_with(Some("badges.shape"), None)["badges"], whole);
        assert_eq!(widget_with(None, Some("badges.color"))["badges"], json!([{"shape": "star"}]));
        assert!(projection(&WIDGET_RESOURCE, None, Some("badges")).includes("badges"));
    }

    #[test]
    fn always_sub_attributes_accompany_selected_siblings() {
        let out = widget_with(Some("parts.value"), None);
        assert_eq!(out["parts"], json!([{"value": "gear", "code": "G"}, {"value": "axle", "code": "A"}]));
        let out = widget_with(None, Some("parts.value"));
        assert_eq!(out["parts"], json!([{"code": "G"}, {"code": "A"}]));
    }

    #[test]
    fn never_sub_attributes_never_appear_and_request_ones_only_when_named() {
        let out = widget_with(Some("parts.hidden,secret"), None);
        assert_eq!(out["parts"], json!([{"code": "G"}, {"code": "A"}]));
        assert!(out.get("secret").is_none());
        let out = widget_with(Some("parts"), None);
        assert_eq!(out["parts"], json!([{"value": "gear", "code": "G"}, {"value": "axle", "code": "A"}]));
        let out = widget_with(Some("parts.extra"), None);
        assert_eq!(out["parts"], json!([{"code": "G", "extra": "e1"}, {"code": "A"}]));
    }
}
