//! The SCIM protocol, apart from storage: schemas, the filter grammar, resources, PATCH,
//! projection and list paging.

pub mod filter;
pub mod list;
pub mod patch;
pub mod projection;
pub mod resource;
pub mod schema;
pub mod user_name;
