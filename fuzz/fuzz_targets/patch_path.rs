//! PATCH paths (RFC 7644 §3.5.2, `parse_path`) on arbitrary text: no panic, error positions
//! within the input, and Display round-trips to the same path (unless escaping made the text
//! longer than the parser's length limit).

#![no_main]

use libfuzzer_sys::fuzz_target;
use roster::scim::filter::{parse_path, MAX_INPUT_CHARS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = match parse_path(text) {
        Ok(path) => path,
        Err(err) => {
            assert!(err.position <= text.chars().count(), "error position {} beyond {text:?}", err.position);
            return;
        }
    };
    let shown = path.to_string();
    if shown.chars().count() > MAX_INPUT_CHARS {
        // Escaping can make the printed form longer than the input (a control character
        // prints as \u00XX), past the length limit; Display is only hashed for cursors, never
        // parsed again, so that is no fault.
        return;
    }
    match parse_path(&shown) {
        Ok(again) => assert_eq!(again, path, "{text:?} printed as {shown:?} parses differently"),
        Err(err) => panic!("{text:?} printed as {shown:?}, which does not parse: {err}"),
    }
});
