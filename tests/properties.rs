//! Property tests of the parsers, of the text folding and escaping that filters rely on, and of
//! filters themselves: storage's SQL selects what the in-memory evaluator selects, on both
//! backends. `cargo test` runs them with a bounded number of cases.
//!
//! The fuzzers under `fuzz/` explore the same ground for as long as one cares to run them; these
//! keep a fixed, fast slice of it in CI. A failure prints the smallest input proptest found, and
//! proptest saves its seed in `tests/properties.proptest-regressions` so later runs try it first.

#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::collections::BTreeSet;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use proptest::prelude::*;
use proptest::test_runner::Config;
use roster::db::sql::like_literal;
use roster::db::{Backend, DatabaseUrl, DbConnection};
use roster::http::body;
use roster::scim::filter::{matches, parse_filter, parse_path, AttrPath, CompValue, CompareOp, Filter};
use roster::scim::fold::fold;
use roster::scim::members::split_member_ops;
use roster::scim::patch::{apply, parse_patch, PatchOp, PATCH_OP_URN};
use roster::scim::resource::{parse_resource, validate, Document};
use roster::scim::schema::{ResourceType, GROUP_RESOURCE, USER_RESOURCE};
use roster::scim::user_name::user_name_key;
use serde_json::{json, Value};
use unicode_normalization::UnicodeNormalization;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// `cases` per property, or `PROPTEST_CASES` when set, for a longer run by hand.
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    Config { cases, ..Config::default() }
}

// ---------------------------------------------------------------------------
// Strategies: filter text and filter ASTs

/// `ATTRNAME = ALPHA *(nameChar)`, `$ref`, and names that are also keywords of the grammar.
fn attr_name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z][a-zA-Z0-9_-]{0,8}",
        1 => Just("$ref".to_string()),
        2 => prop::sample::select(vec!["not", "and", "or", "pr", "eq", "Co", "urn", "true", "null", "NOT"])
            .prop_map(String::from),
    ]
}

/// A schema URN: `urn:` and printable ASCII without delimiters, as the parser takes it.
fn urn() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:Group",
            ENTERPRISE,
            "urn:ietf:params:scim:schemas:extension:roster:2.0:User",
        ])
        .prop_map(String::from),
        1 => ("(urn|URN|Urn):", "[a-zA-Z0-9:._-]{1,20}").prop_map(|(prefix, rest)| format!("{prefix}{rest}")),
    ]
}

/// `$ref` is a sub-attribute (`members.$ref`), so it has no sub-attribute of its own.
fn attr_path(with_sub: bool) -> impl Strategy<Value = AttrPath> {
    let sub = if with_sub { prop::option::of(attr_name()).boxed() } else { Just(None).boxed() };
    (prop::option::weighted(0.2, urn()), attr_name(), sub).prop_map(|(urn, attr, sub)| {
        let sub = if attr == "$ref" { None } else { sub };
        AttrPath { urn, attr, sub }
    })
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

fn comp_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        4 => any::<String>().prop_map(CompValue::Str),
        1 => prop::sample::select(vec!["and", "or", "true", "12", "null", "a b", "\"", "\\", "]", ")"])
            .prop_map(|s| CompValue::Str(s.to_string())),
        1 => any::<bool>().prop_map(CompValue::Bool),
        1 => Just(CompValue::Null),
        1 => any::<i64>().prop_map(|n| CompValue::Number(n.into())),
        1 => any::<u64>().prop_map(|n| CompValue::Number(n.into())),
        1 => any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(CompValue::Number)),
    ]
}

fn attr_expr() -> impl Strategy<Value = Filter> {
    prop_oneof![
        3 => (attr_path(true), compare_op(), comp_value()).prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
        1 => attr_path(true).prop_map(Filter::Present),
    ]
}

/// `and`, `or` and `not` over `leaf`.
fn logic(leaf: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
    leaf.prop_recursive(5, 40, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
    .boxed()
}

/// Any filter the grammar can express: value paths (`emails[...]`) hold no value path, and their
/// attribute has no sub-attribute.
fn filter_ast() -> impl Strategy<Value = Filter> {
    let value_path = (attr_path(false), logic(attr_expr().boxed()))
        .prop_map(|(attr, filter)| Filter::ValuePath { attr, filter: Box::new(filter) });
    logic(prop_oneof![3 => attr_expr(), 1 => value_path].boxed())
}

/// Text made of grammar pieces, both well-formed and broken, so that many inputs parse.
fn filter_soup() -> impl Strategy<Value = String> {
    let pieces = vec![
        "userName eq \"bjensen\"",
        "title pr",
        "name.familyName co O'Malley",
        "emails[",
        "type eq \"work\"",
        "]",
        "].value eq x@y",
        "(",
        ")",
        "not (",
        "not",
        " and ",
        " or ",
        " AND ",
        " Or ",
        " ",
        "\t",
        "\n",
        "urn:ietf:params:scim:schemas:core:2.0:User:userName sw J",
        "meta.lastModified gt 2011-05-13T04:42:34Z",
        "x Gt -1.5e3",
        "y le 99999999999999999999999",
        "active eq TRUE",
        "members[value eq \"2819c223\"]",
        "$ref pr",
        "\"",
        "\\",
        "\"\\u00e9\"",
        "é",
        ".",
        ":",
        "[",
        "pr",
        "eq",
        "null",
    ];
    prop::collection::vec(prop::sample::select(pieces), 1..12).prop_map(|parts| parts.concat())
}

/// Mostly well-formed filter text in the spellings clients use (any case, extra white space,
/// unquoted values), with a broken piece now and then.
fn filter_text() -> impl Strategy<Value = String> {
    let clause = prop_oneof![
        9 => prop::sample::select(vec![
            "userName eq \"bjensen\"",
            "title pr",
            "name.familyName co \"O'Malley\"",
            "userName Sw J",
            "externalId eq 5f3c0a64",
            "meta.lastModified GT 2011-05-13T04:42:34Z",
            "x le -1.5e3",
            "y ge 26e66",
            "z eq 99999999999999999999999",
            "active eq TRUE",
            "nickName ne null",
            "urn:ietf:params:scim:schemas:core:2.0:User:userName ew \"@example.com\"",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"m\"",
            "emails[type eq \"work\"].value co \"@\"",
            "members.$ref pr",
            "not pr",
            "and eq \"x\"",
            "type eq \"\\u00e9\\n\"",
        ]),
        1 => prop::sample::select(vec!["(", ")", "[", "]", "\"", "not", "and", "eq", "a..b", "urn:", "$", "é", "\\"]),
    ]
    .prop_map(String::from);
    let connector = prop::sample::select(vec![" and ", " or ", " AND ", " Or ", "\tand\n", "  or  "]);
    let attr = prop::sample::select(vec!["emails", "members", "addresses", "urn:x:y:z", "not", "name.givenName"]);
    clause.prop_recursive(4, 24, 2, move |inner| {
        prop_oneof![
            3 => (inner.clone(), connector.clone(), inner.clone()).prop_map(|(a, c, b)| format!("{a}{c}{b}")),
            1 => inner.clone().prop_map(|a| format!("({a})")),
            1 => inner.clone().prop_map(|a| format!("not ({a})")),
            1 => inner.clone().prop_map(|a| format!("NOT({a})")),
            1 => (attr.clone(), inner).prop_map(|(at, a)| format!("{at}[{a}]")),
        ]
    })
}

/// PATCH path text: `attr`, `attr.sub`, `attr[filter]` and `attr[filter].sub`.
fn path_text() -> impl Strategy<Value = String> {
    let attr = prop::sample::select(vec![
        "emails",
        "members",
        "name.familyName",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "x509Certificates",
    ]);
    let sub = prop::option::of(prop::sample::select(vec!["value", "display", "$ref", "primary"]));
    (attr, prop::option::of(filter_text()), sub).prop_map(|(attr, filter, sub)| {
        let filter = filter.map(|f| format!("[{f}]")).unwrap_or_default();
        let sub = sub.map(|s| format!(".{s}")).unwrap_or_default();
        format!("{attr}{filter}{sub}")
    })
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![2 => any::<String>(), 2 => filter_soup(), 4 => filter_text(), 1 => "[ -~]{0,40}"]
}

// ---------------------------------------------------------------------------
// Strategies: JSON bodies

/// Keys Roster looks for, in several spellings, plus arbitrary ones.
fn json_key() -> impl Strategy<Value = String> {
    let known = vec![
        "schemas",
        "Operations",
        "operations",
        "op",
        "path",
        "value",
        "userName",
        "USERNAME",
        "name",
        "givenName",
        "familyName",
        "name.givenName",
        "displayName",
        "nickName",
        "emails",
        "type",
        "primary",
        "display",
        "active",
        "members",
        "$ref",
        "externalId",
        "id",
        "meta",
        "password",
        "addresses",
        "phoneNumbers",
        "groups",
        "manager",
        "employeeNumber",
        ENTERPRISE,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "urn:ietf:params:scim:schemas:extension:roster:2.0:User",
        "urn:ietf:params:scim:schemas:extension:roster:2.0:User:formerMember",
    ];
    prop_oneof![4 => prop::sample::select(known).prop_map(String::from), 1 => any::<String>()]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        prop::sample::select(vec![
            "",
            "x",
            "True",
            "false",
            "add",
            "Replace",
            "remove",
            "emails[type eq \"work\"].value",
            "name.familyName",
            "members[value eq \"a\"]",
            "a@example.com",
            PATCH_OP_URN,
            "urn:ietf:params:scim:schemas:core:2.0:User",
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------------------
// Sample documents

/// Equal JSON, where floats may differ in their last digits: serde_json, as built here (without
/// its `float_roundtrip` feature), may read a float a few units in the last place off.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            x == y || (x - y).abs() <= 1e-14 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

fn sample_user() -> Document {
    let body = json!({
        "userName": "bjensen@example.com",
        "externalId": "701984",
        "name": {"familyName": "Jensen", "givenName": "Barbara", "middleName": "Jane"},
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "title": "Tour Guide",
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                   {"value": "babs@jensen.org", "type": "home"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood",
                       "region": "CA", "postalCode": "91608", "country": "USA", "primary": true}],
        "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
        "active": true,
        ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations",
                     "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}
    });
    parse_resource(&USER_RESOURCE, &body).expect("the sample user is valid")
}

fn sample_group() -> Document {
    let body = json!({"displayName": "Tour Guides", "members": [{"value": "2819c223-7f76-453a-919d-413861904646"}]});
    parse_resource(&GROUP_RESOURCE, &body).expect("the sample group is valid")
}

/// One PATCH operation as JSON, from pieces Okta, Entra and the RFC use, valid or not.
fn patch_op_json() -> impl Strategy<Value = Value> {
    let ops = prop::sample::select(vec!["add", "replace", "remove", "Replace", "ADD", "Remove"]);
    let paths = prop::option::weighted(
        0.8,
        prop::sample::select(vec![
            "nickName",
            "title",
            "displayName",
            "userName",
            "active",
            "name",
            "name.givenName",
            "name.familyName",
            "emails",
            "emails[type eq \"work\"]",
            "emails[type eq \"work\"].value",
            "emails[type eq \"other\"].value",
            "emails[value co \"@\"].primary",
            "addresses[type eq \"work\"].locality",
            "phoneNumbers",
            "roles",
            "x509Certificates",
            "id",
            "meta.created",
            "groups",
            "unknownAttribute",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:extension:roster:2.0:User:formerMember",
            "members",
            "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]",
        ]),
    );
    let values = prop::option::weighted(
        0.85,
        prop_oneof![
            3 => prop::sample::select(vec![
                json!(null),
                json!(""),
                json!("Babs"),
                json!("a@example.com"),
                json!(true),
                json!("False"),
                json!(42),
                json!([]),
                json!([{"value": "w@example.com", "type": "work"}]),
                json!([{"value": "a@example.com", "primary": true}, {"value": "b@example.com", "primary": true}]),
                json!({"givenName": "Z", "familyName": "Q"}),
                json!({"value": "26118915-6090-4610-87e4-49d8ca9f808d"}),
                json!({"nickName": "n", "name.familyName": "F", ENTERPRISE: {"department": "D"}}),
                json!({"userName": ""}),
                json!([{"value": "2819c223-7f76-453a-919d-413861904646"}]),
            ]),
            1 => json_value(),
        ],
    );
    (ops, paths, values).prop_map(|(op, path, value)| {
        let mut out = json!({"op": op});
        if let Some(path) = path {
            out["path"] = json!(path);
        }
        if let Some(value) = value {
            out["value"] = value;
        }
        out
    })
}

fn patch_ops() -> impl Strategy<Value = Vec<PatchOp>> {
    prop::collection::vec(patch_op_json(), 1..6).prop_filter_map("a well-formed PatchOp body", |ops| {
        parse_patch(&json!({"schemas": [PATCH_OP_URN], "Operations": ops})).ok()
    })
}

/// Applies `ops` and checks what holds whatever the outcome: the input is untouched, a success
/// validates, a failure is a client error. Returns whether it succeeded.
fn apply_checked(rt: &'static ResourceType, start: &Document, ops: &[PatchOp]) -> Result<bool, TestCaseError> {
    let before = start.clone();
    let outcome = apply(rt, start, ops);
    prop_assert_eq!(&before, start, "apply changed its input");
    match outcome {
        Ok(doc) => {
            prop_assert!(validate(rt, &doc).is_ok(), "apply produced an invalid document: {:?}", doc);
            Ok(true)
        }
        Err(err) => {
            prop_assert!(err.status.is_client_error(), "{} {}", err.status, err.detail);
            Ok(false)
        }
    }
}

// ---------------------------------------------------------------------------
// Filters and paths

proptest! {
    #![proptest_config(config(4000))]

    /// Whatever the parser accepts prints to text that parses back to the same AST; whatever it
    /// refuses is refused at a position inside the input.
    #[test]
    fn accepted_filters_round_trip_through_display(text in any_text()) {
        match parse_filter(&text) {
            Ok(filter) => {
                let shown = filter.to_string();
                prop_assert_eq!(parse_filter(&shown), Ok(filter), "{:?} printed as {:?}", text, shown);
            }
            Err(err) => prop_assert!(err.position <= text.chars().count(), "{:?}: {}", text, err),
        }
    }

    #[test]
    fn accepted_paths_round_trip_through_display(text in prop_oneof![any_text(), path_text()]) {
        match parse_path(&text) {
            Ok(path) => {
                let shown = path.to_string();
                prop_assert_eq!(parse_path(&shown), Ok(path), "{:?} printed as {:?}", text, shown);
            }
            Err(err) => prop_assert!(err.position <= text.chars().count(), "{:?}: {}", text, err),
        }
    }
}

proptest! {
    #![proptest_config(config(3000))]

    /// Every filter the grammar can express renders to text that parses back to it.
    #[test]
    fn generated_filters_render_to_text_that_parses_back(filter in filter_ast()) {
        let shown = filter.to_string();
        prop_assert_eq!(parse_filter(&shown), Ok(filter), "rendered as {:?}", shown);
    }

    /// A PATCH path built from a generated value filter round-trips too.
    #[test]
    fn generated_value_paths_round_trip(attr in attr_path(false), filter in logic(attr_expr().boxed()), sub in prop::option::of(attr_name())) {
        let text = format!("{attr}[{filter}]{}", sub.as_ref().map(|s| format!(".{s}")).unwrap_or_default());
        let path = parse_path(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(&path.attr, &attr);
        prop_assert_eq!(path.filter.as_ref(), Some(&filter));
        prop_assert_eq!(&path.value_sub, &sub);
        prop_assert_eq!(parse_path(&path.to_string()), Ok(path));
    }
}

// ---------------------------------------------------------------------------
// Bodies: no panic, only client errors

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn request_bodies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64), value in json_value()) {
        if let Err(err) = body::parse(&bytes) {
            prop_assert!(err.status.is_client_error());
        }
        // Valid JSON text reads back as its value, unless a string holds U+0000 (refused with
        // 400: PostgreSQL cannot store it).
        let text = value.to_string();
        match body::parse(text.as_bytes()) {
            Ok(parsed) => prop_assert!(same_json(&parsed, &value), "{} read as {}", text, parsed),
            Err(err) => prop_assert!(text.contains("\\u0000") && err.status == 400, "{} refused: {}", text, err.detail),
        }
    }

    #[test]
    fn parse_resource_never_panics(value in json_value()) {
        for rt in [&USER_RESOURCE, &GROUP_RESOURCE] {
            match parse_resource(rt, &value) {
                Ok(doc) => prop_assert!(validate(rt, &doc).is_ok(), "{}: {:?}", rt.name, doc),
                Err(err) => prop_assert!(err.status.is_client_error(), "{} {}", err.status, err.detail),
            }
        }
    }

    /// Objects with a `userName` and realistic keys reach far deeper into the resource parser.
    #[test]
    fn parse_resource_never_panics_on_user_shaped_bodies(
        fields in prop::collection::vec((json_key(), json_value()), 0..8),
        user_name in "[a-z]{1,8}",
    ) {
        let mut body: serde_json::Map<String, Value> = fields.into_iter().collect();
        body.insert("userName".into(), json!(user_name));
        match parse_resource(&USER_RESOURCE, &Value::Object(body)) {
            Ok(doc) => prop_assert!(validate(&USER_RESOURCE, &doc).is_ok(), "{:?}", doc),
            Err(err) => prop_assert!(err.status.is_client_error(), "{} {}", err.status, err.detail),
        }
    }

    #[test]
    fn parse_patch_never_panics_and_apply_only_refuses(value in json_value(), ops in prop::collection::vec(patch_op_json(), 0..4)) {
        let user = sample_user();
        let group = sample_group();
        for body in [value, json!({"schemas": [PATCH_OP_URN], "Operations": ops})] {
            match parse_patch(&body) {
                Ok(ops) => {
                    apply_checked(&USER_RESOURCE, &user, &ops)?;
                    if let Ok((rest, _members)) = split_member_ops(ops) {
                        apply_checked(&GROUP_RESOURCE, &group, &rest)?;
                    }
                }
                Err(err) => prop_assert!(err.status.is_client_error(), "{} {}", err.status, err.detail),
            }
        }
    }

    /// PATCH is all or nothing: an operation that fails, wherever it stands among operations
    /// that would succeed, fails the whole request and leaves the document as it was.
    #[test]
    fn patch_is_all_or_nothing(ops in patch_ops(), at in any::<prop::sample::Index>()) {
        let user = sample_user();
        apply_checked(&USER_RESOURCE, &user, &ops)?;
        let failing = parse_patch(&json!({"Operations": [{"op": "remove"}]})).expect("parses");
        let mut with_failure = ops.clone();
        with_failure.insert(at.index(ops.len() + 1), failing[0].clone());
        let before = user.clone();
        prop_assert!(apply(&USER_RESOURCE, &user, &with_failure).is_err());
        prop_assert_eq!(before, user);
    }
}

// ---------------------------------------------------------------------------
// Folding (uniqueness and caseExact=false comparisons)

/// Letters with simple, reversible case mappings in several scripts, combining marks, and
/// precomposed letters that NFD splits.
fn foldable_text() -> impl Strategy<Value = Vec<char>> {
    let chars = prop_oneof![
        4 => prop::char::range('a', 'z'),
        2 => prop::char::range('A', 'Z'),
        2 => prop::char::range('\u{C0}', '\u{FF}'),
        2 => prop::char::range('\u{391}', '\u{3C9}'),
        2 => prop::char::range('\u{410}', '\u{44F}'),
        1 => prop::char::range('\u{300}', '\u{36F}'),
        1 => prop::sample::select(vec![' ', '.', '-', '@', '1', 'ǅ', 'Ǆ', 'ǆ', 'Å', 'Å', 'K', 'ẞ', 'ß', 'İ']),
    ];
    prop::collection::vec(chars, 0..12)
}

/// `c` in the other case, when that is a single character that maps straight back to `c`
/// (so not `ß` → `SS`, nor `µ` → `Μ` → `μ`).
fn other_case(c: char) -> char {
    fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
        match (chars.next(), chars.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }
    [single(c.to_uppercase()), single(c.to_lowercase())]
        .into_iter()
        .flatten()
        .find(|&d| d != c && (single(d.to_lowercase()) == Some(c) || single(d.to_uppercase()) == Some(c)))
        .unwrap_or(c)
}

/// The text in one of three forms: as it is, NFD or NFC.
fn in_form(text: &str, form: u8) -> String {
    match form {
        0 => text.to_owned(),
        1 => text.nfd().collect(),
        _ => text.nfc().collect(),
    }
}

proptest! {
    #![proptest_config(config(5000))]

    #[test]
    fn fold_is_idempotent(s in prop_oneof![any::<String>(), foldable_text().prop_map(String::from_iter)]) {
        let once = fold(&s);
        prop_assert_eq!(fold(&once), once.clone(), "{:?}", s);
    }

    /// Two spellings that differ only in letter case (character by character) or in Unicode
    /// normalisation form fold to the same text, so they are one userName.
    #[test]
    fn fold_ignores_case_and_normalisation_form(
        chars in foldable_text(),
        flips in prop::collection::vec(any::<bool>(), 12),
        forms in (0..3u8, 0..3u8),
    ) {
        let flipped: String = chars.iter().zip(&flips).map(|(&c, &flip)| if flip { other_case(c) } else { c }).collect();
        let a = in_form(&String::from_iter(&chars), forms.0);
        let b = in_form(&flipped, forms.1);
        prop_assert_eq!(fold(&a), fold(&b), "{:?} and {:?}", a, b);
    }
}

// ---------------------------------------------------------------------------
// userName keys (RFC 8265 usernames under compatibility caseless matching)

/// `c` as a full-width form when it is printable ASCII (U+FF01..U+FF5E are U+0021..U+007E).
fn full_width(c: char) -> char {
    match c {
        '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
        _ => c,
    }
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn user_name_key_is_idempotent(s in prop_oneof![any::<String>(), foldable_text().prop_map(String::from_iter)]) {
        let once = user_name_key(&s);
        prop_assert_eq!(user_name_key(&once), once.clone(), "{:?}", s);
    }

    /// Spellings that differ in letter case, normalisation form or full-width forms are one
    /// userName.
    #[test]
    fn user_name_key_ignores_case_width_and_normalisation_form(
        chars in foldable_text(),
        flips in prop::collection::vec(any::<bool>(), 12),
        widths in prop::collection::vec(any::<bool>(), 12),
        forms in (0..3u8, 0..3u8),
    ) {
        let changed: String = chars
            .iter()
            .zip(flips.iter().zip(&widths))
            .map(|(&c, (&flip, &wide))| {
                let c = if flip { other_case(c) } else { c };
                if wide { full_width(c) } else { c }
            })
            .collect();
        let a = in_form(&String::from_iter(&chars), forms.0);
        let b = in_form(&changed, forms.1);
        prop_assert_eq!(user_name_key(&a), user_name_key(&b), "{:?} and {:?}", a, b);
    }

    /// The userName comparison only merges: what the general fold called the same userName
    /// still is, so no `userName eq` filter stops matching what it matched.
    #[test]
    fn user_name_key_equates_whatever_fold_equates(
        chars in foldable_text(),
        flips in prop::collection::vec(any::<bool>(), 12),
        forms in (0..3u8, 0..3u8),
    ) {
        let flipped: String = chars.iter().zip(&flips).map(|(&c, &flip)| if flip { other_case(c) } else { c }).collect();
        let a = in_form(&String::from_iter(&chars), forms.0);
        let b = in_form(&flipped, forms.1);
        prop_assert_eq!(fold(&a), fold(&b));
        prop_assert_eq!(user_name_key(&a), user_name_key(&b), "{:?} and {:?}", a, b);
    }
}

// ---------------------------------------------------------------------------
// The fold in SQL (JSON attributes) against the fold in Rust, on both backends

#[derive(QueryableByName)]
struct Folded {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    folded: Option<String>,
}

fn fold_in_sql(conn: &mut DbConnection, backend: Backend, text: &str) -> Option<String> {
    let sql = format!("SELECT {} AS folded", backend.fold_sql("CAST(? AS TEXT)"));
    let sql = if backend == Backend::Postgres { sql.replace('?', "$1") } else { sql };
    diesel::sql_query(sql).bind::<Text, _>(text).get_result::<Folded>(conn).expect("the fold runs").folded
}

/// Roster's SQLite connection (with `roster_fold` registered), and a PostgreSQL one unless
/// PostgreSQL is unreachable and not required (ROSTER_REQUIRE_POSTGRES=1).
fn fold_connections() -> Vec<(Backend, DbConnection)> {
    let sqlite = DatabaseUrl::parse(":memory:").unwrap().establish().expect("in-memory SQLite");
    let mut out = vec![(Backend::Sqlite, sqlite)];
    let url =
        std::env::var("ROSTER_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    match DatabaseUrl::parse(&url).unwrap().establish() {
        Ok(pg) => out.push((Backend::Postgres, pg)),
        Err(e) if std::env::var("ROSTER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("ROSTER_REQUIRE_POSTGRES=1 but PostgreSQL cannot be reached: {e}")
        }
        Err(e) => eprintln!("NOTICE: PostgreSQL fold not checked, it cannot be reached: {e}"),
    }
    out
}

/// Text from scripts with case, compatibility forms and combining marks, drawn from blocks whose
/// letters all predate Unicode 14 (PostgreSQL 15 on glibc 2.36 folds with Unicode 14 tables).
fn cased_text() -> impl Strategy<Value = String> {
    let chars = prop_oneof![
        2 => prop::char::range('\u{20}', '\u{7E}'),
        2 => prop::char::range('\u{A0}', '\u{24F}'),
        1 => prop::char::range('\u{300}', '\u{36F}'),
        2 => prop::char::range('\u{370}', '\u{3FF}'),
        2 => prop::char::range('\u{400}', '\u{52F}'),
        1 => prop::char::range('\u{531}', '\u{587}'),
        1 => prop::char::range('\u{10A0}', '\u{10FF}'),
        1 => prop::char::range('\u{13A0}', '\u{13F5}'),
        2 => prop::char::range('\u{1E00}', '\u{1FFF}'),
        1 => prop::char::range('\u{2160}', '\u{2188}'),
        1 => prop::char::range('\u{24B6}', '\u{24E9}'),
        1 => prop::char::range('\u{FB00}', '\u{FB06}'),
        1 => prop::char::range('\u{FF01}', '\u{FF5E}'),
        1 => prop::char::range('\u{10400}', '\u{1044F}'),
        1 => prop::char::range('\u{3041}', '\u{30FF}'),
    ];
    prop::collection::vec(chars, 0..16).prop_map(String::from_iter)
}

proptest! {
    #![proptest_config(config(300))]

    /// Filters on JSON attributes fold in SQL (`roster_fold` on SQLite, built-ins on
    /// PostgreSQL) what uniqueness and indexed columns fold in Rust: the two must agree.
    #[test]
    fn the_databases_fold_as_rust_does(texts in prop::collection::vec(cased_text(), 1..8), any_text in any::<String>()) {
        let mut conns = fold_connections();
        for (backend, conn) in &mut conns {
            for text in &texts {
                prop_assert_eq!(fold_in_sql(conn, *backend, text), Some(fold(text)), "{:?} on {:?}", text, backend);
            }
            // SQLite runs Roster's own function, so any text at all (but NUL, which ends C strings).
            if *backend == Backend::Sqlite {
                let text = any_text.replace('\0', "");
                prop_assert_eq!(fold_in_sql(conn, *backend, &text), Some(fold(&text)), "{:?}", text);
            }
        }
    }
}

/// The letters folding is known to get wrong, each checked by name: ß (lowercase already, no
/// single-letter uppercase), İ (lowercases to i and a combining dot), final and capital sigma,
/// fullwidth Latin, and an accent both combining and precomposed.
#[test]
fn the_databases_fold_the_hard_letters_as_rust_does() {
    let hard =
        ["Straße", "STRASSE", "İstanbul", "ıI", "ΟΔΟΣ", "οδος", "ΣΊΣΥΦΟΣ", "ＡＢＣ", "ａｂｃ", "E\u{301}COLE", "École"];
    for (backend, mut conn) in fold_connections() {
        for text in hard {
            assert_eq!(fold_in_sql(&mut conn, backend, text), Some(fold(text)), "{text:?} on {backend:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// LIKE escaping, checked by SQLite itself

#[derive(QueryableByName)]
struct Matched {
    #[diesel(sql_type = Bool)]
    matched: bool,
}

fn sqlite() -> SqliteConnection {
    let mut conn = SqliteConnection::establish(":memory:").expect("in-memory SQLite");
    // As Roster's own connections: LIKE compares case-sensitively, filters fold values themselves.
    conn.batch_execute("PRAGMA case_sensitive_like = ON").expect("pragma");
    conn
}

fn like(conn: &mut SqliteConnection, text: &str, pattern: &str) -> bool {
    diesel::sql_query("SELECT (? LIKE ? ESCAPE '\\') AS matched")
        .bind::<Text, _>(text)
        .bind::<Text, _>(pattern)
        .get_result::<Matched>(conn)
        .expect("LIKE runs")
        .matched
}

/// Text rich in LIKE's special characters. (NUL is left out: SQLite compares text as C
/// strings, so it ends both the value and the pattern.)
fn like_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(vec!['a', 'A', '%', '_', '\\', 'é', '\'', '"', ' ']), 0..6)
            .prop_map(String::from_iter),
        1 => any::<String>().prop_map(|s| s.replace('\0', "")),
    ]
}

proptest! {
    #![proptest_config(config(1500))]

    /// `like_literal(s)` matches exactly `s`; inside `%…%`, `…%` and `%…` (co, sw, ew) it matches
    /// exactly the texts that contain, start with or end with `s`.
    #[test]
    fn like_literal_matches_literally(s in like_text(), t in like_text(), u in like_text()) {
        let mut conn = sqlite();
        let lit = like_literal(&s);
        prop_assert!(like(&mut conn, &s, &lit), "{:?} does not match its own pattern {:?}", s, lit);
        prop_assert_eq!(like(&mut conn, &t, &lit), t == s, "eq: {:?} against {:?}", t, lit);
        let joined = format!("{t}{s}{u}");
        prop_assert!(like(&mut conn, &joined, &format!("%{lit}%")), "co: {:?} in {:?}", s, joined);
        prop_assert_eq!(like(&mut conn, &t, &format!("%{lit}%")), t.contains(&s), "co: {:?} in {:?}", s, t);
        prop_assert_eq!(like(&mut conn, &t, &format!("{lit}%")), t.starts_with(&s), "sw: {:?} in {:?}", s, t);
        prop_assert_eq!(like(&mut conn, &t, &format!("%{lit}")), t.ends_with(&s), "ew: {:?} in {:?}", s, t);
    }
}

// ---------------------------------------------------------------------------
// Filters: what storage's SQL selects is what the in-memory evaluator selects

/// Words with the cases folding must get right: ß, dotted İ, final and capital sigma, fullwidth
/// letters, a combining accent against its precomposed form, LIKE wildcards and a quote.
const WORDS: &[&str] = &[
    "ann",
    "Ann",
    "ANNA",
    "bob",
    "Bo",
    "straße",
    "STRASSE",
    "İris",
    "iris",
    "ΣΟΦΙΑ",
    "σοφια",
    "ΟΔΟΣ",
    "ｂｏｂ",
    "ＢＯＢ",
    "e\u{301}mile",
    "Émile",
    "o'neil",
    "50%",
    "a_b",
    "zoë",
    "0",
    "10",
    "9",
];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_owned)
}

/// One or two words: values share prefixes, suffixes and middles often enough for co/sw/ew.
fn words() -> impl Strategy<Value = String> {
    (word(), prop::option::of(word())).prop_map(|(a, b)| format!("{a}{}", b.unwrap_or_default()))
}

fn random_email() -> impl Strategy<Value = Value> {
    let kind = prop::option::of(prop::sample::select(vec!["work", "Work", "home", "other"]));
    (words(), prop::sample::select(vec!["example.com", "Example.ORG"]), kind, prop::option::of(any::<bool>())).prop_map(
        |(local, domain, kind, primary)| {
            let mut email = json!({"value": format!("{local}@{domain}")});
            if let Some(kind) = kind {
                email["type"] = json!(kind);
            }
            if let Some(primary) = primary {
                email["primary"] = json!(primary);
            }
            email
        },
    )
}

/// A user body as an IdP might send it; some are refused (a taken or invalid userName) and are
/// then simply not part of the population.
fn random_user() -> impl Strategy<Value = Value> {
    let optional = || prop::option::of(words());
    (
        words(),
        (optional(), optional()),
        (optional(), optional(), optional(), optional()),
        prop::option::of(any::<bool>()),
        prop::collection::vec(random_email(), 0..3),
        optional(),
    )
        .prop_map(
            |(user_name, (given, family), (display, nick, title, external), active, mut emails, department)| {
                // At most one email may be primary (RFC 7643 §2.4).
                let mut seen_primary = false;
                for email in &mut emails {
                    if email["primary"] == json!(true) {
                        if seen_primary {
                            email["primary"] = json!(false);
                        }
                        seen_primary = true;
                    }
                }
                let mut user = json!({"userName": user_name, "emails": emails});
                let mut set = |key: &str, value: Option<Value>| {
                    if let Some(value) = value {
                        user[key] = value;
                    }
                };
                set("name", Some(json!({"givenName": given, "familyName": family})));
                set("displayName", display.map(Value::from));
                set("nickName", nick.map(Value::from));
                set("title", title.map(Value::from));
                set("externalId", external.map(Value::from));
                set("active", active.map(Value::from));
                set(ENTERPRISE, department.map(|d| json!({"department": d})));
                user
            },
        )
}

fn path(text: &str) -> AttrPath {
    parse_path(text).expect("a valid path").attr
}

/// The textual attributes of the population, in several spellings.
fn text_path() -> impl Strategy<Value = AttrPath> {
    prop::sample::select(vec![
        "userName",
        "USERNAME",
        "urn:ietf:params:scim:schemas:core:2.0:User:userName",
        "name.givenName",
        "name.familyName",
        "displayName",
        "nickName",
        "title",
        "externalId",
        "emails",
        "emails.value",
        "emails.type",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    ])
    .prop_map(path)
}

fn text_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        6 => words().prop_map(CompValue::Str),
        1 => Just(CompValue::Str(String::new())),
        1 => Just(CompValue::Null),
        1 => (0i64..20).prop_map(|n| CompValue::Number(n.into())),
    ]
}

fn bool_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        3 => any::<bool>().prop_map(CompValue::Bool),
        1 => prop::sample::select(vec!["True", "false"]).prop_map(|s| CompValue::Str(s.into())),
        1 => Just(CompValue::Null),
    ]
}

/// A dateTime placeholder: far past, far future, or the `meta.created` of the n-th user of the
/// population, filled in once the population exists (see [`with_times`]).
fn time_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        1 => Just(CompValue::Str("2001-01-01T00:00:00Z".into())),
        1 => Just(CompValue::Str("2999-01-01T00:00:00Z".into())),
        4 => (0usize..8).prop_map(|n| CompValue::Str(format!("created:{n}"))),
    ]
}

fn ordering_op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne, CompareOp::Gt, CompareOp::Ge, CompareOp::Lt, CompareOp::Le])
}

fn equality_op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne])
}

fn compare((path, op, value): (AttrPath, CompareOp, CompValue)) -> Filter {
    Filter::Compare { path, op, value }
}

/// Filters on one item of `emails`, for value paths: paths relative to the item.
fn email_filter() -> BoxedStrategy<Filter> {
    let leaf = prop_oneof![
        3 => (prop::sample::select(vec!["type", "value"]).prop_map(path), compare_op(), text_value()).prop_map(compare),
        1 => (Just(path("primary")), equality_op(), bool_value()).prop_map(compare),
        1 => prop::sample::select(vec!["type", "primary", "display"]).prop_map(|p| Filter::Present(path(p))),
    ];
    leaf.boxed()
        .prop_recursive(2, 6, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                inner.prop_map(|f| Filter::Not(Box::new(f))),
            ]
        })
        .boxed()
}

/// Filters the population can answer: every operator on every attribute type it holds, value
/// paths on `emails` and `name`, joined by `and`, `or` and `not`.
fn population_filter() -> BoxedStrategy<Filter> {
    let leaf = prop_oneof![
        6 => (text_path(), compare_op(), text_value()).prop_map(compare),
        2 => text_path().prop_map(Filter::Present),
        2 => (prop::sample::select(vec!["active", "emails.primary"]).prop_map(path), equality_op(), bool_value())
            .prop_map(compare),
        2 => (Just(path("meta.created")), ordering_op(), time_value()).prop_map(compare),
        2 => email_filter().prop_map(|f| Filter::ValuePath { attr: path("emails"), filter: Box::new(f) }),
        1 => (prop::sample::select(vec!["givenName", "familyName"]).prop_map(path), compare_op(), text_value())
            .prop_map(|c| Filter::ValuePath { attr: path("name"), filter: Box::new(compare(c)) }),
    ];
    logic_shallow(leaf.boxed())
}

fn logic_shallow(leaf: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
    .boxed()
}

/// Fills the `created:n` placeholders with the population's own `meta.created` values.
fn with_times(filter: &Filter, created: &[String]) -> Filter {
    let fill = |value: &CompValue| match value {
        CompValue::Str(s) if s.starts_with("created:") && !created.is_empty() => {
            let n: usize = s["created:".len()..].parse().expect("a placeholder");
            CompValue::Str(created[n % created.len()].clone())
        }
        CompValue::Str(s) if s.starts_with("created:") => CompValue::Str("2001-01-01T00:00:00Z".into()),
        other => other.clone(),
    };
    match filter {
        Filter::Compare { path, op, value } => Filter::Compare { path: path.clone(), op: *op, value: fill(value) },
        Filter::Present(path) => Filter::Present(path.clone()),
        Filter::And(a, b) => Filter::And(Box::new(with_times(a, created)), Box::new(with_times(b, created))),
        Filter::Or(a, b) => Filter::Or(Box::new(with_times(a, created)), Box::new(with_times(b, created))),
        Filter::Not(a) => Filter::Not(Box::new(with_times(a, created))),
        Filter::ValuePath { attr, filter } => {
            Filter::ValuePath { attr: attr.clone(), filter: Box::new(with_times(filter, created)) }
        }
    }
}

/// One running app per backend for the whole property, a tenant of its own per case.
struct Population {
    runtime: tokio::runtime::Runtime,
    app: helpers::TestApp,
    cases: std::sync::atomic::AtomicUsize,
}

impl Population {
    fn start(backend: helpers::Backend) -> Option<Population> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let app = runtime.block_on(helpers::TestApp::spawn(backend))?;
        Some(Population { runtime, app, cases: Default::default() })
    }

    /// Creates `users` in a new tenant, then checks each filter: a listing with the filter answers
    /// exactly the users [`matches`] selects from the whole population, or both refuse it.
    fn check(&self, users: &[Value], filters: &[Filter]) -> Result<(), TestCaseError> {
        let case = self.cases.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tenant = format!("filters-{case}");
        let token = {
            let mut conn = self.app.connection();
            roster::db::tenants::create(&mut conn, &tenant).expect("tenant created");
            let request = roster::auth::TokenRequest {
                tenant: &tenant,
                name: "filters",
                scopes: "scim".parse().expect("a scope"),
                expires_in: None,
            };
            roster::auth::issue(&mut conn, &self.app.keys(), request).expect("token issued").token
        };
        let app = &self.app;
        self.runtime.block_on(async {
            let client = &app.client;
            for user in users {
                let res = client
                    .post(app.url("/scim/v2/Users"))
                    .bearer_auth(&token)
                    .header("content-type", "application/scim+json")
                    .body(user.to_string())
                    .send()
                    .await
                    .expect("request sent");
                let status = res.status().as_u16();
                // A taken or refused userName leaves the user out of the population.
                prop_assert!([201, 400, 409].contains(&status), "{status} for {user}: {}", res.text().await.unwrap());
            }
            let list = |query: String| {
                let token = token.clone();
                async move {
                    let res = client
                        .get(app.url(&format!("/scim/v2/Users?count=1000&{query}")))
                        .bearer_auth(token)
                        .send()
                        .await
                        .expect("request sent");
                    let status = res.status().as_u16();
                    (status, helpers::json(res).await)
                }
            };
            let (status, all) = list(String::new()).await;
            prop_assert_eq!(status, 200, "{}", all);
            let all = all["Resources"].as_array().cloned().unwrap_or_default();
            let created: Vec<String> =
                all.iter().filter_map(|u| u["meta"]["created"].as_str().map(str::to_owned)).collect();
            for filter in filters {
                let filter = with_times(filter, &created);
                let expected: Result<BTreeSet<String>, _> = all
                    .iter()
                    .filter_map(|user| match matches(&USER_RESOURCE, user, &filter) {
                        Ok(true) => Some(Ok(user["id"].as_str().expect("an id").to_owned())),
                        Ok(false) => None,
                        Err(e) => Some(Err(e)),
                    })
                    .collect();
                let text = filter.to_string();
                let query: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("filter", &text)
                    .append_pair("attributes", "id")
                    .finish();
                let (status, body) = list(query).await;
                match expected {
                    Ok(ids) => {
                        prop_assert_eq!(status, 200, "{} was refused: {}", text, body);
                        let listed: BTreeSet<String> = body["Resources"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|u| u["id"].as_str().expect("an id").to_owned())
                            .collect();
                        let name = |id: &String| {
                            let user = all.iter().find(|u| u["id"] == json!(id));
                            user.map_or_else(|| format!("{id}, which the unfiltered listing lacks"), Value::to_string)
                        };
                        prop_assert!(
                            listed == ids,
                            "{}: SQL alone selects {:?}, the evaluator alone {:?}",
                            text,
                            listed.difference(&ids).map(name).collect::<Vec<_>>(),
                            ids.difference(&listed).map(name).collect::<Vec<_>>()
                        );
                    }
                    Err(e) => {
                        prop_assert_eq!(status, 400, "{} is invalid ({}) but was answered: {}", text, e.detail, body);
                        prop_assert_eq!(&body["scimType"], &json!("invalidFilter"), "{}", body);
                    }
                }
            }
            Ok(())
        })
    }
}

fn storage_agrees_with_the_evaluator(backend: helpers::Backend) {
    let Some(population) = Population::start(backend) else { return };
    let mut runner = proptest::test_runner::TestRunner::new(config(64));
    let strategy = (prop::collection::vec(random_user(), 1..8), prop::collection::vec(population_filter(), 1..8));
    let result = runner.run(&strategy, |(users, filters)| population.check(&users, &filters));
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// RFC 7644 §3.4.2.2 as storage runs it (SQL over columns, JSON and side tables) and as the
/// evaluator reads it from the served resource: the same users for every filter, on SQLite.
#[test]
fn sqlite_selects_what_the_evaluator_selects() {
    storage_agrees_with_the_evaluator(helpers::Backend::Sqlite);
}

/// The same on PostgreSQL, whose fold, JSON operators and side tables differ from SQLite's.
#[test]
fn postgres_selects_what_the_evaluator_selects() {
    storage_agrees_with_the_evaluator(helpers::Backend::Postgres);
}

fn filters(texts: &[&str]) -> Vec<Filter> {
    texts.iter().map(|text| parse_filter(text).expect("a valid filter")).collect()
}

/// Regression: an `or` filter was spliced into the listing's SQL unparenthesised, so
/// `tenant AND a OR b` listed every tenant's users matching `b`.
fn an_or_filter_lists_only_the_tenants_own_users(backend: helpers::Backend) {
    let Some(population) = Population::start(backend) else { return };
    let elsewhere = [json!({"userName": "ann", "title": "Boss"})];
    population.check(&elsewhere, &[]).unwrap();
    let here = [json!({"userName": "bob", "title": "Boss"})];
    population.check(&here, &filters(&["userName eq \"nobody\" or title pr", "title pr or userName pr"])).unwrap();
}

/// Regression: storage matched an email without `primary` for `primary eq false` and
/// `primary pr`; an unassigned attribute matches neither (RFC 7644 §3.4.2.2).
fn an_unassigned_primary_is_neither_true_nor_false(backend: helpers::Backend) {
    let Some(population) = Population::start(backend) else { return };
    let users = [
        json!({"userName": "unassigned", "emails": [{"value": "a@example.com"}]}),
        json!({"userName": "false", "emails": [{"value": "b@example.com", "primary": false}]}),
        json!({"userName": "true", "emails": [{"value": "c@example.com", "primary": true}]}),
    ];
    let texts = ["emails[primary eq false]", "emails[primary pr]", "emails[primary ne true]", "emails.primary eq true"];
    population.check(&users, &filters(&texts)).unwrap();
}

#[test]
fn an_or_filter_lists_only_the_tenants_own_users_on_sqlite() {
    an_or_filter_lists_only_the_tenants_own_users(helpers::Backend::Sqlite);
}

#[test]
fn an_or_filter_lists_only_the_tenants_own_users_on_postgres() {
    an_or_filter_lists_only_the_tenants_own_users(helpers::Backend::Postgres);
}

#[test]
fn an_unassigned_primary_is_neither_true_nor_false_on_sqlite() {
    an_unassigned_primary_is_neither_true_nor_false(helpers::Backend::Sqlite);
}

#[test]
fn an_unassigned_primary_is_neither_true_nor_false_on_postgres() {
    an_unassigned_primary_is_neither_true_nor_false(helpers::Backend::Postgres);
}
