//! The SCIM protocol, apart from storage: schemas, the filter grammar and its evaluator,
//! resources, PATCH, the membership changes IdPs send, projection, a resource's way out, list
//! paging, the Unicode fold and the version (ETag) rules.

pub mod filter;
pub mod fold;
pub mod list;
pub mod members;
pub mod patch;
pub mod projection;
pub mod rendered;
pub mod resource;
pub mod schema;
pub mod user_name;
pub mod version;
