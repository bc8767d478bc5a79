//! Member-only PATCHes of one group, applied together on PostgreSQL.
//!
//! Every change to a group's members moves the group's version on, so changes to one group
//! queue on its row: on PostgreSQL each held the row for its statements and for its commit's
//! WAL flush, and an IdP adding people to one group, a PATCH each and several at once, got
//! about 1 400 changes per second however many it sent. Here the changes that arrive for a
//! group while a transaction runs on it wait for that transaction, and the next one applies all
//! of them in the order they arrived, with one version bump and one commit. Each change still
//! answers with the version it would have had alone and only once the commit is durable. (On
//! SQLite the writer thread already commits concurrent writes together.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDateTime;
use tokio::sync::oneshot;

use crate::context::Ctx;
use crate::db::{Backend, Database, DbConnection};
use crate::error::ScimError;
use crate::scim::members::{Member, MemberChange};
use crate::scim::patch::PatchOp;

/// A tenant's id and the group's id.
type GroupKey = (String, String);

/// The changes waiting for each group that has a batch running. A group is in the map exactly
/// while a task is applying its batches; that task removes it when it finds nothing waiting.
#[derive(Default)]
pub struct MemberBatches {
    waiting: Mutex<HashMap<GroupKey, Vec<Waiting>>>,
}

/// One request's changes, and where its outcome goes: the group's version after them.
struct Waiting {
    ctx: Ctx,
    changes: Vec<MemberChange>,
    reply: oneshot::Sender<Result<i64, ScimError>>,
}

impl MemberBatches {
    /// Applies a PATCH whose answer does not show the group: with other requests' changes to
    /// the group when [`MemberBatches::takes`] it, else alone in a write transaction (see
    /// [`super::patch`]). The group's version after it.
    pub async fn patch(
        self: &Arc<Self>,
        db: &Database,
        ctx: Ctx,
        id: String,
        attribute_ops: Vec<PatchOp>,
        member_changes: Vec<MemberChange>,
        if_match: Option<String>,
    ) -> Result<i64, ScimError> {
        if Self::takes(db.backend(), &attribute_ops, &member_changes, if_match.as_deref()) {
            return self.apply(db, ctx, id, member_changes).await;
        }
        let patch = move |conn: &mut DbConnection| {
            super::patch(conn, &ctx, &id, &attribute_ops, &member_changes, if_match.as_deref())
        };
        Ok(db.write_replayable(patch).await?.version)
    }

    /// Whether a PATCH may be applied with others: on PostgreSQL, only adding or removing
    /// members by id, and without If-Match, whose check needs the version just before the change
    /// (such a PATCH goes through [`super::patch`] alone, and still takes the group's row lock
    /// in turn with the batches).
    fn takes(backend: Backend, attribute_ops: &[PatchOp], changes: &[MemberChange], if_match: Option<&str>) -> bool {
        backend == Backend::Postgres
            && attribute_ops.is_empty()
            && if_match.is_none()
            && !changes.is_empty()
            && changes.iter().all(|c| matches!(c, MemberChange::Add(_) | MemberChange::Remove(_)))
    }

    /// Applies `changes` to group `id` of the context's tenant, in one transaction with the
    /// changes other requests make to it meanwhile; the group's version after these changes.
    async fn apply(
        self: &Arc<Self>,
        db: &Database,
        ctx: Ctx,
        id: String,
        changes: Vec<MemberChange>,
    ) -> Result<i64, ScimError> {
        let (reply, outcome) = oneshot::channel();
        let key = (ctx.tenant_id.clone(), id);
        let starts_batches = {
            let mut waiting = self.waiting.lock().expect("no panics while the map is held");
            let queue = waiting.entry(key.clone());
            let starts = matches!(queue, std::collections::hash_map::Entry::Vacant(_));
            queue.or_default().push(Waiting { ctx, changes, reply });
            starts
        };
        // A task of its own, not this request's: if this client goes away, the requests waiting
        // behind it are still answered.
        if starts_batches {
            actix_web::rt::spawn(run_batches(self.clone(), db.clone(), key));
        }
        outcome.await.unwrap_or_else(|_| Err(ScimError::internal("a batch of member changes stopped unanswered")))
    }
}

/// Applies the group's waiting changes, batch after batch, until none is waiting.
async fn run_batches(batches: Arc<MemberBatches>, db: Database, key: GroupKey) {
    loop {
        let batch = {
            let mut waiting = batches.waiting.lock().expect("no panics while the map is held");
            let batch = waiting.get_mut(&key).map(std::mem::take).unwrap_or_default();
            if batch.is_empty() {
                waiting.remove(&key);
                return;
            }
            batch
        };
        // Handed to the blocking thread through a slot, so that if it never runs (no thread or
        // connection in time) the requests still get the reason.
        let slot = Arc::new(Mutex::new(Some(batch)));
        let taken = slot.clone();
        let group_id = key.1.clone();
        let ran = db
            .run(move |conn| {
                if let Some(batch) = taken.lock().expect("held only to take the batch").take() {
                    apply_batch(conn, &group_id, batch);
                }
                Ok::<(), ScimError>(())
            })
            .await;
        if let Err(e) = ran {
            for w in slot.lock().expect("held only to take the batch").take().into_iter().flatten() {
                let _ = w.reply.send(Err(e.clone()));
            }
        }
    }
}

/// Applies a batch and answers each of its requests. Its one write is one statement, which is
/// its own transaction. When it fails (a change names an unknown member, say), each change is
/// applied in a transaction of its own, so that it fails alone.
fn apply_batch(conn: &mut DbConnection, id: &str, batch: Vec<Waiting>) {
    match together(conn, id, &batch) {
        Ok(outcomes) => {
            for (w, outcome) in batch.into_iter().zip(outcomes) {
                let _ = w.reply.send(outcome);
            }
        }
        Err(e) => {
            tracing::debug!(error = %e.detail, changes = batch.len(), "a batch of member changes failed; applying each alone");
            for w in batch {
                let alone = super::patch(conn, &w.ctx, id, &[], &w.changes, None).map(|row| row.version);
                let _ = w.reply.send(alone);
            }
        }
    }
}

/// The batch's one statement: the version moved on once for every change, and what the changes
/// come to applied (see [`NetChange`] and [`crate::db::write::change_members`]). The outcome of each
/// request, in the batch's order. A change naming an unknown member fails the statement, and
/// [`apply_batch`] then applies each change alone, so that it fails alone.
fn together(conn: &mut DbConnection, id: &str, batch: &[Waiting]) -> Result<Vec<Result<i64, ScimError>>, ScimError> {
    let tenant_id = &batch[0].ctx.tenant_id;
    let now: NaiveDateTime = batch.iter().map(|w| w.ctx.now).max().expect("a batch is never empty");
    let mut net = NetChange::default();
    batch.iter().flat_map(|w| &w.changes).for_each(|change| net.then(change));
    let (removed, added, readded) = net.statements();
    let changes = batch.len() as i64;
    let Some(row) = crate::db::write::change_members(conn, tenant_id, id, now, changes, &removed, &added, &readded)?
    else {
        return Ok(batch.iter().map(|_| Err(super::not_found(id))).collect());
    };
    // Each change gets the version after it, as if it had been applied alone.
    Ok((1..=changes).map(|k| Ok(row.version - changes + k)).collect())
}

/// What a sequence of adds and removes comes to, member by member, so that a batch costs two
/// statements however many changes it holds. Applied one after the other, the changes to one
/// member end in one of three ways:
/// - the last is a remove: the member is gone;
/// - the last is an add and some remove came before it: the member was gone after that remove,
///   so it is a member again with the display name of the first add after the last remove;
/// - only adds: it is a member, with the display name it had, or else that of the first add
///   (adding someone who is already a member changes nothing).
///
/// So the members with a remove are deleted first, then those whose last change is an add are
/// inserted, skipping those already there.
#[derive(Default)]
struct NetChange<'a> {
    /// Member ids in the order first named, so that statements are the same for the same changes.
    order: Vec<&'a str>,
    members: HashMap<&'a str, Net<'a>>,
}

#[derive(Default)]
struct Net<'a> {
    removed: bool,
    /// The first add since the last remove.
    added: Option<&'a Member>,
}

impl<'a> NetChange<'a> {
    fn net(&mut self, id: &'a str) -> &mut Net<'a> {
        let order = &mut self.order;
        self.members.entry(id).or_insert_with(|| {
            order.push(id);
            Net::default()
        })
    }

    fn then(&mut self, change: &'a MemberChange) {
        match change {
            MemberChange::Add(members) => {
                for member in members {
                    self.net(&member.value).added.get_or_insert(member);
                }
            }
            MemberChange::Remove(ids) => {
                for id in ids {
                    *self.net(id) = Net { removed: true, added: None };
                }
            }
            MemberChange::RemoveAll | MemberChange::Replace(_) => {
                unreachable!("MemberBatches::takes admits adds and removes only")
            }
        }
    }

    /// The ids that end removed; the members that end added; and of those, the ids that were
    /// removed first, whose display name becomes that of the first add after the last remove
    /// (see [`crate::db::write::change_members`]).
    fn statements(&self) -> (Vec<String>, Vec<Member>, Vec<&'a str>) {
        let nets = || self.order.iter().map(|id| (*id, &self.members[id]));
        let removed = nets().filter(|(_, n)| n.removed && n.added.is_none()).map(|(id, _)| id.to_owned()).collect();
        let added = nets().filter_map(|(_, n)| n.added.cloned()).collect();
        let readded = nets().filter(|(_, n)| n.removed && n.added.is_some()).map(|(id, _)| id).collect();
        (removed, added, readded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(members: &[(&str, Option<&str>)]) -> MemberChange {
        MemberChange::Add(
            members
                .iter()
                .map(|(id, display)| Member { value: (*id).into(), display: display.map(Into::into), kind: None })
                .collect(),
        )
    }

    fn remove(ids: &[&str]) -> MemberChange {
        MemberChange::Remove(ids.iter().map(|id| (*id).to_owned()).collect())
    }

    /// A member added: its id and display name.
    type Added = (String, Option<String>);

    /// (removed, added, readded) for changes applied in order.
    fn net(changes: &[MemberChange]) -> (Vec<String>, Vec<Added>, Vec<String>) {
        let mut net = NetChange::default();
        changes.iter().for_each(|c| net.then(c));
        let (removed, added, readded) = net.statements();
        let added = added.into_iter().map(|m| (m.value, m.display)).collect();
        (removed, added, readded.into_iter().map(str::to_owned).collect())
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn the_last_change_to_a_member_decides_whether_it_stays() {
        let (removed, added, readded) = net(&[add(&[("a", None), ("b", None)]), remove(&["a"]), remove(&["c"])]);
        assert_eq!(removed, s(&["a", "c"]));
        assert_eq!(added, vec![("b".to_owned(), None)]);
        assert!(readded.is_empty());
    }

    #[test]
    fn a_member_added_again_after_a_remove_takes_the_first_display_name_since() {
        let changes =
            [add(&[("a", Some("first"))]), remove(&["a"]), add(&[("a", Some("second"))]), add(&[("a", Some("third"))])];
        let (removed, added, readded) = net(&changes);
        assert!(removed.is_empty(), "re-added members are replaced, not deleted");
        assert_eq!(added, vec![("a".to_owned(), Some("second".to_owned()))]);
        assert_eq!(readded, s(&["a"]));
    }

    #[test]
    fn adds_alone_keep_the_first_display_name() {
        let (removed, added, readded) = net(&[add(&[("a", Some("one")), ("a", Some("two"))]), add(&[("a", None)])]);
        assert!(removed.is_empty() && readded.is_empty());
        assert_eq!(added, vec![("a".to_owned(), Some("one".to_owned()))]);
    }

    #[test]
    fn members_come_out_in_the_order_first_named() {
        let (removed, added, _) = net(&[add(&[("z", None)]), remove(&["y"]), add(&[("x", None), ("z", None)])]);
        assert_eq!(removed, s(&["y"]));
        assert_eq!(added.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["z", "x"]);
    }

    #[test]
    fn only_adds_and_removes_of_a_group_s_members_are_batched_and_only_on_postgres() {
        let adds = [add(&[("a", None)])];
        assert!(MemberBatches::takes(Backend::Postgres, &[], &adds, None));
        assert!(!MemberBatches::takes(Backend::Sqlite, &[], &adds, None));
        assert!(
            !MemberBatches::takes(Backend::Postgres, &[], &adds, Some("W/\"3\"")),
            "If-Match needs the version before"
        );
        assert!(!MemberBatches::takes(Backend::Postgres, &[], &[MemberChange::RemoveAll], None));
        assert!(!MemberBatches::takes(Backend::Postgres, &[], &[], None));
    }
}
