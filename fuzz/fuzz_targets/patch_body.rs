//! PATCH request bodies, as the server handles them: the raw bytes through `body::parse`, then
//! `parse_patch`, then `apply` on a realistic user (and, for member changes, `split_member_ops`
//! and `apply` on a group).
//!
//! Checks: no panic for any input; every refusal is a client error (4xx); a successful PATCH
//! yields a document that `validate` accepts; and `apply` leaves its input untouched.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use roster::http::body;
use roster::scim::members::split_member_ops;
use roster::scim::patch::{apply, parse_patch};
use roster::scim::resource::{parse_resource, validate, Document};
use roster::scim::schema::{ResourceType, GROUP_RESOURCE, USER_RESOURCE};

/// Barbara Jensen as RFC 7643 §8.2 and RFC 7644 §3.5.2 show her, in canonical form.
fn user() -> &'static Document {
    static USER: OnceLock<Document> = OnceLock::new();
    USER.get_or_init(|| {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
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
                           "region": "CA", "postalCode": "91608", "country": "USA", "primary": true},
                          {"type": "home", "streetAddress": "456 Hollywood Blvd", "locality": "Hollywood",
                           "region": "CA", "postalCode": "91608", "country": "USA"}],
            "phoneNumbers": [{"value": "555-555-5555", "type": "work"}, {"value": "555-555-4444", "type": "mobile"}],
            "ims": [{"value": "someaimhandle", "type": "aim"}],
            "photos": [{"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"}],
            "userType": "Employee",
            "title": "Tour Guide",
            "preferredLanguage": "en-US",
            "locale": "en-US",
            "timezone": "America/Los_Angeles",
            "active": true,
            "password": "t1meMa$heen",
            "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
                "division": "Theme Park", "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d",
                            "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d"}
            }
        });
        parse_resource(&USER_RESOURCE, &body).expect("the sample user is valid")
    })
}

fn group() -> &'static Document {
    static GROUP: OnceLock<Document> = OnceLock::new();
    GROUP.get_or_init(|| {
        let body = serde_json::json!({
            "displayName": "Tour Guides",
            "externalId": "tg-1",
            "members": [{"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen", "type": "User"},
                        {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge"}]
        });
        parse_resource(&GROUP_RESOURCE, &body).expect("the sample group is valid")
    })
}

fn check_apply(rt: &'static ResourceType, start: &Document, ops: &[roster::scim::patch::PatchOp]) {
    let before = start.clone();
    match apply(rt, start, ops) {
        Ok(doc) => {
            if let Err(err) = validate(rt, &doc) {
                panic!("apply produced a document that validate refuses: {}: {doc:?}", err.detail);
            }
        }
        Err(err) => assert!(err.status.is_client_error(), "apply: {} {}", err.status, err.detail),
    }
    assert_eq!(&before, start, "apply changed its input");
}

fuzz_target!(|data: &[u8]| {
    let value = match body::parse(data) {
        Ok(value) => value,
        Err(err) => {
            assert!(err.status.is_client_error(), "body::parse: {} {}", err.status, err.detail);
            return;
        }
    };
    let ops = match parse_patch(&value) {
        Ok(ops) => ops,
        Err(err) => {
            assert!(err.status.is_client_error(), "parse_patch: {} {}", err.status, err.detail);
            return;
        }
    };
    check_apply(&USER_RESOURCE, user(), &ops);
    // Groups: membership changes go to storage, the rest is applied to the document.
    match split_member_ops(ops) {
        Ok((rest, _members)) => check_apply(&GROUP_RESOURCE, group(), &rest),
        Err(err) => assert!(err.status.is_client_error(), "split_member_ops: {} {}", err.status, err.detail),
    }
});
