//! SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): the AST ([`ast`]), the parser
//! that builds it from text ([`parse`]) and the in-memory evaluator that tests it against a
//! resource or an item of a multi-valued attribute ([`eval`]). Storage translates the same AST
//! to SQL (`db::query`); a property test holds the evaluator and the SQL to the same answers.
//!
//! Beyond the RFC grammar the parser accepts what real clients send (Microsoft Entra
//! ID and its reference tests in particular):
//! * unquoted values (`externalId eq jyoung`, `meta.created gt 2015-10-10T14:38:21Z`),
//! * `attr[filter].sub op value` as a filter, folded into the value path,
//! * any letter case for operators and keywords, and any run of spaces/tabs
//!   (or line breaks, as in the RFC's wrapped examples) between tokens.
//!
//! Every input is bounded ([`MAX_INPUT_CHARS`], [`MAX_NESTING_DEPTH`]) so a
//! hostile filter yields a [`ParseError`] instead of a stack overflow. Note
//! for code that walks the AST recursively: a flat chain such as
//! `a pr and a pr and ...` is left-deep, up to roughly 900 nodes within the
//! length limit.

pub mod ast;
pub mod eval;
pub mod parse;

pub use ast::{
    check_cost, AttrPath, CompValue, CompareOp, Filter, PatchPath, MAX_COMPARISONS, MAX_SUBSTRING_COMPARISONS,
};
pub use eval::{matches, matches_item};
pub use parse::{parse_filter, parse_path, ParseError, MAX_INPUT_CHARS, MAX_NESTING_DEPTH};
