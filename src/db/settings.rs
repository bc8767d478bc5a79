//! Server-wide values kept in the database, shared by every node that uses it.

use diesel::prelude::*;

use super::schema::server_settings;
use super::{DbConnection, DbError};

pub fn get(conn: &mut DbConnection, name: &str) -> Result<Option<String>, DbError> {
    Ok(server_settings::table.find(name).select(server_settings::value).first(conn).optional()?)
}

/// Returns the stored value, storing `make()` first if there is none. When two nodes race,
/// the first insert wins and both return its value. The loser's insert does nothing rather than
/// fail: inside a PostgreSQL transaction (an archive export's key is first made in the
/// deletion's) a unique violation would abort the whole transaction.
pub fn get_or_insert(conn: &mut DbConnection, name: &str, make: impl FnOnce() -> String) -> Result<String, DbError> {
    if let Some(value) = get(conn, name)? {
        return Ok(value);
    }
    let value = make();
    on_backend!(conn, c => diesel::insert_into(server_settings::table)
        .values((server_settings::name.eq(name), server_settings::value.eq(&value)))
        .on_conflict_do_nothing()
        .execute(c))?;
    // Under READ COMMITTED each statement sees what committed before it: the winner's value.
    Ok(get(conn, name)?.expect("stored by this insert or the one that raced it"))
}

/// A 32-byte key generated once and kept under `name` (base64), so that every node sharing the
/// database uses the same one.
pub fn generated_key(conn: &mut DbConnection, name: &str) -> Result<[u8; 32], DbError> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let encoded = get_or_insert(conn, name, || STANDARD.encode(rand::random::<[u8; 32]>()))?;
    STANDARD.decode(encoded).ok().and_then(|bytes| <[u8; 32]>::try_from(bytes).ok()).ok_or_else(|| {
        DbError::from(diesel::result::Error::DeserializationError(
            format!("the stored {name} is not 32 bytes of base64").into(),
        ))
    })
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
