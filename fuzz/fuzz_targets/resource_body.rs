//! POST/PUT bodies, as the server handles them: the raw bytes through `body::parse`, then
//! `parse_resource` for a User and for a Group.
//!
//! Checks: no panic for any input; every refusal is a client error (4xx); an accepted document
//! passes `validate`; and reading an accepted document back as a request body gives the same
//! document (the canonical form is a fixed point).

#![no_main]

use libfuzzer_sys::fuzz_target;
use roster::http::body;
use roster::scim::resource::{parse_resource, validate};
use roster::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let value = match body::parse(data) {
        Ok(value) => value,
        Err(err) => {
            assert!(err.status.is_client_error(), "body::parse: {} {}", err.status, err.detail);
            return;
        }
    };
    for rt in [&USER_RESOURCE, &GROUP_RESOURCE] {
        match parse_resource(rt, &value) {
            Ok(doc) => {
                if let Err(err) = validate(rt, &doc) {
                    panic!("{}: accepted {value} as {doc:?}, which validate refuses: {}", rt.name, err.detail);
                }
                match parse_resource(rt, &Value::Object(doc.clone())) {
                    Ok(again) => assert_eq!(again, doc, "{}: the canonical form of {value} is not stable", rt.name),
                    Err(err) => panic!("{}: the canonical form {doc:?} of {value} is refused: {}", rt.name, err.detail),
                }
            }
            Err(err) => assert!(err.status.is_client_error(), "{}: {} {}", rt.name, err.status, err.detail),
        }
    }
});
