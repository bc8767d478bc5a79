//! The SCIM protocol, apart from storage: schemas, the filter grammar, PATCH, resources.

pub mod filter;
pub mod schema;
