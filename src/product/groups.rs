//! A group as the product shows it: its members as people (docs/product.md, "People"), so a
//! deactivated member is marked as everywhere else.

use serde_json::{json, Value};

use super::person::People;
use super::ProductError;
use crate::context::Ctx;
use crate::db::{people, DbConnection};

pub fn get(conn: &mut DbConnection, ctx: &Ctx, id: &str, base: &str) -> Result<Value, ProductError> {
    let (name, users, groups) =
        people::group_members(conn, &ctx.tenant_id, id)?.ok_or_else(|| ProductError::NoSuchGroup(id.to_owned()))?;
    let people = People::load(conn, users.iter().copied())?;
    let members: Vec<_> = users.iter().map(|pk| people.get(Some(*pk), base)).collect();
    let groups: Vec<Value> = groups.into_iter().map(|(id, name)| json!({"id": id, "displayName": name})).collect();
    Ok(json!({"id": id, "displayName": name, "members": members, "groups": groups}))
}
