//! The schema: the migrations this binary embeds, applied at start-up and checked by readiness.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::connection::{DbConnection, DbError};
use super::users;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Serialises migrations when several nodes start against one PostgreSQL at once.
const MIGRATION_LOCK_KEY: i64 = 0x526f_7374_6572; // "Roster"

/// What start-up found: whether this run created the database (no migration had been applied).
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    pub created: bool,
}

/// Applies pending migrations on whichever backend the connection is.
pub fn migrate(conn: &mut DbConnection) -> Result<Opened, DbError> {
    fn apply<C: MigrationHarness<B>, B: diesel::backend::Backend>(
        conn: &mut C,
        migrations: EmbeddedMigrations,
    ) -> Result<Opened, DbError> {
        let err = |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
        let created = conn.applied_migrations().map_err(err)?.is_empty();
        conn.run_pending_migrations(migrations).map_err(err)?;
        Ok(Opened { created })
    }
    let postgres = matches!(conn, DbConnection::Postgresql(_));
    if postgres {
        conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
    }
    let result = match &mut *conn {
        DbConnection::Sqlite(c) => apply(c, SQLITE_MIGRATIONS),
        DbConnection::Postgresql(c) => apply(c, POSTGRES_MIGRATIONS),
    };
    let result = result.and_then(|opened| users::refold_user_names(conn).map(|()| opened));
    if postgres {
        conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
    }
    result
}

/// Whether a migration this binary embeds has not been applied to the database: another node
/// may have started on it with an older binary, or it was restored from an older backup.
///
/// Only reads the migrations table: diesel's own `has_pending_migration` first runs `CREATE TABLE
/// IF NOT EXISTS` on it, DDL that a probe called every second has no business running.
pub fn migrations_pending(conn: &mut DbConnection) -> Result<bool, DbError> {
    use diesel::migration::MigrationSource;

    #[derive(QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    fn versions<B: diesel::backend::Backend>(source: impl MigrationSource<B>) -> Result<Vec<String>, DbError> {
        let migrations = source.migrations().map_err(|e| DbError::Migration(e.to_string()))?;
        Ok(migrations.iter().map(|m| m.name().version().to_string()).collect())
    }
    let embedded = match conn {
        DbConnection::Sqlite(_) => versions::<diesel::sqlite::Sqlite>(SQLITE_MIGRATIONS)?,
        DbConnection::Postgresql(_) => versions::<diesel::pg::Pg>(POSTGRES_MIGRATIONS)?,
    };
    let applied: std::collections::HashSet<String> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Applied>(conn)?
            .into_iter()
            .map(|a| a.version)
            .collect();
    Ok(embedded.iter().any(|version| !applied.contains(version)))
}
