//! Server-wide values kept in the database, shared by every node that uses it.

use diesel::prelude::*;

use super::schema::server_settings;
use super::{is_unique_violation, DbConnection, DbError};

pub fn get(conn: &mut DbConnection, name: &str) -> Result<Option<String>, DbError> {
    Ok(server_settings::table.find(name).select(server_settings::value).first(conn).optional()?)
}

/// Returns the stored value, storing `make()` first if there is none. When two nodes race,
/// the first insert wins and both return its value.
pub fn get_or_insert(conn: &mut DbConnection, name: &str, make: impl FnOnce() -> String) -> Result<String, DbError> {
    if let Some(value) = get(conn, name)? {
        return Ok(value);
    }
    let value = make();
    match diesel::insert_into(server_settings::table)
        .values((server_settings::name.eq(name), server_settings::value.eq(&value)))
        .execute(conn)
    {
        Ok(_) => Ok(value),
        Err(e) if is_unique_violation(&e) => Ok(get(conn, name)?.expect("the racing insert committed")),
        Err(e) => Err(e.into()),
    }
}

/// Stores `value` under `name`, replacing any value there. Callers serialise among themselves
/// (start-up runs it under the migration lock).
pub fn put(conn: &mut DbConnection, name: &str, value: &str) -> Result<(), DbError> {
    let updated =
        diesel::update(server_settings::table.find(name)).set(server_settings::value.eq(value)).execute(conn)?;
    if updated == 0 {
        diesel::insert_into(server_settings::table)
            .values((server_settings::name.eq(name), server_settings::value.eq(value)))
            .execute(conn)?;
    }
    Ok(())
}
