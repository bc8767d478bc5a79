//! Who acts, where, and when: what every service call is given, whichever door the request came
//! through (SCIM, the product API, the command line, the sweep).

use chrono::NaiveDateTime;

#[derive(Debug, Clone)]
pub struct Ctx {
    pub tenant_id: String,
    /// The token's subject, recorded in audit entries.
    pub actor: String,
    pub now: NaiveDateTime,
}
