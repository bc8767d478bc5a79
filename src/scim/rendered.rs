//! A resource on its way out: either a JSON value built and projected in memory, or JSON text
//! written straight from the stored document.
//!
//! Building a stored document back into a `serde_json::Value`, projecting it and serialising it
//! was most of what a list page cost: a page of 100 users spent more on making, walking and
//! freeing those trees than on reading the rows. Without `attributes` or `excludedAttributes`,
//! the default projection leaves a canonical document (see [`crate::scim::resource`]) as it is,
//! so its members can go out as the text they are stored as, beside the few members the server
//! adds (`id`, `meta`, …). [`canonical_members`] says when a stored text may be used so: only
//! when it holds nothing the default projection would remove. A document stored otherwise (by a
//! release before the canonical form, or edited by hand) takes the way through a value.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// One resource of a response.
#[derive(Debug)]
pub enum Rendered {
    Value(Value),
    Text(Box<RawValue>),
}

impl Serialize for Rendered {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Rendered::Value(value) => value.serialize(serializer),
            Rendered::Text(text) => text.serialize(serializer),
        }
    }
}

impl From<Value> for Rendered {
    fn from(value: Value) -> Rendered {
        Rendered::Value(value)
    }
}

/// A member of an object being written out: stored text, or a value the server adds.
pub enum Member<'a, T> {
    Text(&'a RawValue),
    Value(T),
}

impl<T: Serialize> Serialize for Member<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Member::Text(text) => text.serialize(serializer),
            Member::Value(value) => value.serialize(serializer),
        }
    }
}

/// An object written from its members in the order of their names, as a `serde_json::Map`
/// writes its own: a resource written this way reads like one built as a value.
pub struct Members<'a, T>(Vec<(&'a str, Member<'a, T>)>);

impl<T: Serialize> Serialize for Members<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, member) in &self.0 {
            map.serialize_entry(name, member)?;
        }
        map.end()
    }
}

impl<'a, T: Serialize> Members<'a, T> {
    /// Members already in the order of their names, each name once: no sort (checked in debug
    /// builds).
    pub fn in_order(members: Vec<(&'a str, Member<'a, T>)>) -> Members<'a, T> {
        debug_assert!(members.is_sorted_by(|a, b| a.0 < b.0));
        Members(members)
    }
}

/// A resource ready to be written: its members, or (for a projection other than the default,
/// or a document that is not canonical) the value the projection made.
pub enum Written<'a, T> {
    Members(Members<'a, T>),
    Value(Value),
}

impl<T: Serialize> Serialize for Written<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Written::Members(members) => members.serialize(serializer),
            Written::Value(value) => value.serialize(serializer),
        }
    }
}

impl<T: Serialize> Written<'_, T> {
    /// The resource as it goes out on its own (`to_raw_value` keeps the text it wrote without
    /// parsing it again).
    pub fn render(self) -> Rendered {
        match self {
            Written::Members(members) => {
                Rendered::Text(serde_json::value::to_raw_value(&members).expect("members always serialise"))
            }
            Written::Value(value) => Rendered::Value(value),
        }
    }
}

/// The resources of a page, written one after the other into one text: one buffer that grows a
/// few times for the whole page, where a text per resource would grow each one from scratch.
pub fn render_all<T: Serialize>(resources: &[Written<'_, T>]) -> Resources {
    let text = serde_json::value::to_raw_value(resources).expect("resources always serialise");
    Resources::Written { text, count: resources.len() }
}

/// The resources of a ListResponse.
#[derive(Debug)]
pub enum Resources {
    Each(Vec<Rendered>),
    /// A JSON array of `count` resources, already written.
    Written {
        text: Box<RawValue>,
        count: usize,
    },
}

impl Resources {
    pub fn len(&self) -> usize {
        match self {
            Resources::Each(resources) => resources.len(),
            Resources::Written { count, .. } => *count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Serialize for Resources {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Resources::Each(resources) => resources.serialize(serializer),
            Resources::Written { text, .. } => text.serialize(serializer),
        }
    }
}

/// The top-level members of a stored document's text, in the order of their names, when the
/// text is a canonical document's: an object whose member names need no unescaping and appear
/// once, holding no `null`, no empty string, no empty array and no empty object at any depth
/// (what the default projection would remove). `None` for anything else.
pub fn canonical_members(text: &str) -> Option<Vec<(&str, &RawValue)>> {
    if !holds_no_empty_value(text.as_bytes()) {
        return None;
    }
    let Stored(mut members) = serde_json::from_str(text).ok()?;
    // Written from a map, a stored document is in order already.
    if !members.is_sorted_by(|a, b| a.0 < b.0) {
        members.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if members.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return None;
        }
    }
    Some(members)
}

/// A JSON object's members as they come, borrowed from its text.
struct Stored<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> Deserialize<'de> for Stored<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;

        impl<'de> Visitor<'de> for Visit {
            type Value = Stored<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Stored<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(member) = map.next_entry::<&'de str, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Stored(members))
            }
        }

        deserializer.deserialize_map(Visit)
    }
}

/// Whether JSON text has no `null`, `""`, `[]` or `{}` outside its strings (whitespace inside
/// the brackets included). It looks at tokens only; the parse that follows checks the syntax.
fn holds_no_empty_value(text: &[u8]) -> bool {
    let mut i = 0;
    // The last byte outside a string that was not whitespace.
    let mut previous = 0u8;
    while i < text.len() {
        match text[i] {
            b'"' => {
                if text.get(i + 1) == Some(&b'"') {
                    return false;
                }
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                previous = b'"';
            }
            b']' if previous == b'[' => return false,
            b'}' if previous == b'{' => return false,
            b'n' if text[i..].starts_with(b"null") => return false,
            b' ' | b'\n' | b'\r' | b'\t' => {}
            byte => previous = byte,
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_texts_without_empty_values_are_canonical() {
        assert!(canonical_members(r#"{"a":"x","b":{"c":[1,{"d":true}]}}"#).is_some());
        assert!(canonical_members(r#"{"a":"say \"{}\" and [] or null, \\"}"#).is_some());
        for empty in [
            r#"{"a":""}"#,
            r#"{"a":null}"#,
            r#"{"a":[]}"#,
            r#"{"a":[ ]}"#,
            r#"{"a":{}}"#,
            r#"{"a":{ }}"#,
            r#"{"a":[{"b":[]}]}"#,
            r#"{"a":"x","b":{"c":null}}"#,
            r#"{}"#,
        ] {
            assert!(canonical_members(empty).is_none(), "{empty}");
        }
        // Not an object, or not JSON at all.
        assert!(canonical_members("[1]").is_none());
        assert!(canonical_members(r#"{"a":"x""#).is_none());
        // A member name with an escape cannot be borrowed from the text.
        assert!(canonical_members(r#"{"a\"b":"x"}"#).is_none());
        // A name given twice, which a map would have kept once.
        assert!(canonical_members(r#"{"b":"x","a":"y","b":"z"}"#).is_none());
        // Out of order is put in order.
        let members = canonical_members(r#"{"b":"x","a":"y"}"#).unwrap();
        assert_eq!(members.iter().map(|m| m.0).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn members_are_written_in_the_order_a_map_writes_them() {
        let stored = canonical_members(r#"{"name":{"givenName":"Ann"},"emails":[{"value":"a@x"}]}"#).unwrap();
        let mut members: Vec<(&str, Member<'_, Value>)> =
            stored.into_iter().map(|(k, v)| (k, Member::Text(v))).collect();
        members.insert(0, ("active", Member::Value(Value::from(true))));
        members.insert(2, ("id", Member::Value(Value::from("1"))));
        let text = serde_json::to_string(&Written::Members(Members::in_order(members)).render()).unwrap();
        let value: Value =
            serde_json::json!({"id": "1", "active": true, "name": {"givenName": "Ann"}, "emails": [{"value": "a@x"}]});
        assert_eq!(text, value.to_string());
    }
}
