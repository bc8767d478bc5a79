//! The filter grammar (RFC 7644 §3.4.2.2) on arbitrary text.
//!
//! Checks, for every input that is UTF-8:
//! * `parse_filter` returns instead of panicking or overflowing the stack;
//! * an error's position lies within the input;
//! * whatever parses prints (Display) to text that parses back to the same AST (unless escaping
//!   made the text longer than the parser's length limit);
//! * a parsed filter compiles to SQL for Users and Groups on both backends, or is refused with a
//!   client error (4xx), never an internal one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use roster::db::query::{Compiler, Resource};
use roster::db::Backend;
use roster::scim::filter::{parse_filter, MAX_INPUT_CHARS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let filter = match parse_filter(text) {
        Ok(filter) => filter,
        Err(err) => {
            assert!(err.position <= text.chars().count(), "error position {} beyond {text:?}", err.position);
            return;
        }
    };
    let shown = filter.to_string();
    if shown.chars().count() > MAX_INPUT_CHARS {
        // Escaping can make the printed form longer than the input (a control character
        // prints as \u00XX), past the length limit; Display is only hashed for cursors, never
        // parsed again, so that is no fault.
        return;
    }
    match parse_filter(&shown) {
        Ok(again) => assert_eq!(again, filter, "{text:?} printed as {shown:?} parses differently"),
        Err(err) => panic!("{text:?} printed as {shown:?}, which does not parse: {err}"),
    }
    for backend in [Backend::Sqlite, Backend::Postgres] {
        for resource in [Resource::User, Resource::Group] {
            let compiler = Compiler { backend, tenant_id: "fuzz", resource };
            if let Err(err) = compiler.filter(&filter) {
                assert!(err.status.is_client_error(), "{text:?} on {resource:?}: {} {}", err.status, err.detail);
            }
        }
    }
});
