//! A person as others see them (docs/product.md, "People"): the one shape in which the product
//! API shows an account, wherever it appears — a content item's author or recipient, a
//! conversation's member or message sender, a search result, a group's member.

use std::collections::HashMap;

use serde::Serialize;

use crate::clock::time;
use crate::db::people::{self, Seen};
use crate::db::{DbConnection, DbError};
use crate::lifecycle::{State, FORMER_MEMBER_NAME};

/// What is shown where an account that no longer exists once appeared (a message sent to a
/// person deleted since).
pub const DELETED_NAME: &str = "Deleted account";

/// A person as others see them. `id` and `profile` are there only while the account exists
/// for SCIM and is not a Former Member: they are the link to the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// `active`, `deactivated`, `formerMember` or `deleted`.
    pub state: &'static str,
    /// The indication that the profile has been deactivated, while it can still be visited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deactivated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<String>,
}

/// How `seen` appears to others; `None` is an account deleted since. `base` is the SCIM base
/// URL the profile link starts with.
pub fn person(seen: Option<&Seen>, base: &str) -> Person {
    let Some(seen) = seen else {
        return Person {
            id: None,
            name: DELETED_NAME.to_owned(),
            profile: None,
            state: "deleted",
            deactivated: None,
            deactivated_at: None,
        };
    };
    let current = || seen.name();
    let unlinked = |name: String, state: &'static str| Person {
        id: None,
        name,
        profile: None,
        state,
        deactivated: None,
        deactivated_at: None,
    };
    match seen.lifecycle_state {
        // Content keeps the name the person had when they became a Former Member, without a
        // link; one who left nothing to sign is simply "Former Member".
        State::FormerMember => unlinked(
            seen.frozen_name.clone().unwrap_or_else(|| FORMER_MEMBER_NAME.to_owned()),
            State::FormerMember.as_str(),
        ),
        // Deleted for SCIM (`deactivate-only`) but kept for the product: what they wrote keeps
        // their name, without a link to a profile that answers 404 (RFC 7644 §3.6).
        _ if seen.deleted_at.is_some() => unlinked(current(), "deleted"),
        state => Person {
            id: Some(seen.id.clone()),
            name: current(),
            profile: Some(format!("{base}/Users/{}", seen.id)),
            state: state.as_str(),
            deactivated: Some(state == State::Deactivated),
            deactivated_at: seen.deactivated_at.filter(|_| state == State::Deactivated).map(time),
        },
    }
}

/// The people with these account keys, loaded at once: what [`person`] is built from.
pub struct People {
    seen: HashMap<i64, Seen>,
}

impl People {
    pub fn load(conn: &mut DbConnection, pks: impl IntoIterator<Item = i64>) -> Result<People, DbError> {
        Ok(People { seen: people::load(conn, pks)? })
    }

    /// As people search shows them: a Former Member's profile has no name left, so there they
    /// appear as "Former Member"; the frozen name signs only what they wrote.
    pub fn as_profiles(mut self) -> People {
        for seen in self.seen.values_mut() {
            seen.frozen_name = None;
        }
        self
    }

    /// The person with key `pk`, or the deleted placeholder for `None` or a key loaded in vain.
    pub fn get(&self, pk: Option<i64>, base: &str) -> Person {
        person(pk.and_then(|pk| self.seen.get(&pk)), base)
    }

    /// The recipient with key `pk` of a message: the frozen name signs only what a Former Member
    /// wrote, so as a recipient they are "Former Member".
    pub fn recipient(&self, pk: Option<i64>, base: &str) -> Person {
        match pk.and_then(|pk| self.seen.get(&pk)) {
            Some(seen) if seen.frozen_name.is_some() => person(Some(&Seen { frozen_name: None, ..seen.clone() }), base),
            seen => person(seen, base),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn seen(state: State) -> Seen {
        Seen {
            id: "u1".into(),
            user_name: "ann".into(),
            data: r#"{"displayName": "Ann Example"}"#.into(),
            lifecycle_state: state,
            deactivated_at: (state != State::Active)
                .then(|| NaiveDate::from_ymd_opt(2026, 12, 1).unwrap().and_hms_opt(9, 30, 0).unwrap()),
            deleted_at: None,
            frozen_name: None,
        }
    }

    fn shown(seen: Option<&Seen>) -> serde_json::Value {
        serde_json::to_value(person(seen, "https://r.example/scim/v2")).unwrap()
    }

    #[test]
    fn an_active_person_links_to_the_profile_under_the_current_name() {
        assert_eq!(
            shown(Some(&seen(State::Active))),
            serde_json::json!({"id": "u1", "name": "Ann Example", "profile": "https://r.example/scim/v2/Users/u1",
                "state": "active", "deactivated": false})
        );
        let named = |data: &str| shown(Some(&Seen { data: data.into(), ..seen(State::Active) }))["name"].clone();
        assert_eq!(named(r#"{"name": {"formatted": "Ann F. Example", "givenName": "Ann"}}"#), "Ann F. Example");
        assert_eq!(named(r#"{"displayName": " ", "name": {"givenName": "Ann", "familyName": "Ex"}}"#), "Ann Ex");
        assert_eq!(named(r#"{"name": {"familyName": "Example"}}"#), "Example");
        assert_eq!(named("{}"), "ann", "the userName only when the document names no one");
    }

    #[test]
    fn a_deactivated_person_is_marked_with_the_time_since_when() {
        let out = shown(Some(&seen(State::Deactivated)));
        assert_eq!(out["deactivated"], true);
        assert_eq!(out["state"], "deactivated");
        assert!(out["deactivatedAt"].as_str().unwrap().starts_with("2026-12-01T09:30:00"));
        assert!(out["profile"].is_string());
    }

    #[test]
    fn a_former_member_shows_the_frozen_name_without_a_link() {
        let former = Seen { frozen_name: Some("Ann Before".into()), ..seen(State::FormerMember) };
        assert_eq!(shown(Some(&former)), serde_json::json!({"name": "Ann Before", "state": "formerMember"}));
        let silent = seen(State::FormerMember);
        assert_eq!(shown(Some(&silent)), serde_json::json!({"name": FORMER_MEMBER_NAME, "state": "formerMember"}));
    }

    #[test]
    fn a_deleted_person_is_a_neutral_placeholder_and_a_soft_deleted_one_keeps_the_name_unlinked() {
        assert_eq!(shown(None), serde_json::json!({"name": DELETED_NAME, "state": "deleted"}));
        let hidden = Seen { deleted_at: Some(chrono::NaiveDateTime::MIN), ..seen(State::Deactivated) };
        assert_eq!(shown(Some(&hidden)), serde_json::json!({"name": "Ann Example", "state": "deleted"}));
    }
}
