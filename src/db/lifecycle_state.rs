//! The lifecycle state of an account as the `users.lifecycle_state` column stores it: one of
//! three texts, read into a typed value on both backends so that no code compares strings. The
//! rules that move an account between the states are in [`crate::lifecycle`].

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum LifecycleState {
    Active,
    Deactivated,
    FormerMember,
}

impl LifecycleState {
    /// The stored text, which is also the Roster extension's `lifecycleState` value.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleState::Active => "active",
            LifecycleState::Deactivated => "deactivated",
            LifecycleState::FormerMember => "formerMember",
        }
    }
}

impl std::fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a lifecycle state")]
pub struct UnknownState(String);

impl std::str::FromStr for LifecycleState {
    type Err = UnknownState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "active" => Ok(LifecycleState::Active),
            "deactivated" => Ok(LifecycleState::Deactivated),
            "formerMember" => Ok(LifecycleState::FormerMember),
            other => Err(UnknownState(other.to_owned())),
        }
    }
}

// One impl per trait serves SQLite, PostgreSQL and the `MultiBackend` of `DbConnection`: each
// reads or binds the state as the backend's own text.
impl<DB> FromSql<Text, DB> for LifecycleState
where
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(String::from_sql(bytes)?.parse()?)
    }
}

impl<DB> ToSql<Text, DB> for LifecycleState
where
    DB: Backend,
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.as_str().to_sql(out)
    }
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::IntoSql;

    use super::*;
    use crate::db::DbConnection;

    const EVERY_STATE: [LifecycleState; 3] =
        [LifecycleState::Active, LifecycleState::Deactivated, LifecycleState::FormerMember];

    #[test]
    fn every_state_reads_back_from_the_text_it_is_stored_as() {
        for state in EVERY_STATE {
            assert_eq!(state.as_str().parse::<LifecycleState>().unwrap(), state);
        }
    }

    #[test]
    fn the_connection_binds_a_state_as_its_text_and_reads_it_back() {
        let mut conn = DbConnection::Sqlite(diesel::SqliteConnection::establish(":memory:").unwrap());
        for state in EVERY_STATE {
            let text: String = diesel::select(state.into_sql::<Text>()).get_result(&mut conn).unwrap();
            assert_eq!(text, state.as_str());
            let read: LifecycleState = diesel::select(state.as_str().into_sql::<Text>()).get_result(&mut conn).unwrap();
            assert_eq!(read, state);
        }
    }

    #[test]
    fn an_unknown_text_is_refused_rather_than_taken_for_active() {
        assert!("formermember".parse::<LifecycleState>().is_err());
        assert!("".parse::<LifecycleState>().is_err());
    }
}
