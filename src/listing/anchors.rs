//! The memory of where index-paged walks left off, shared by the server's requests.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::cursor::CursorKey;
use crate::db::query::Position;
use crate::scim::list::ListRequest;

/// Where index-paged walks left off: after a page of `startIndex = s` showing `n` rows, the
/// position of its last row is kept for `startIndex = s + n` of the same query (resource type,
/// filter and sort, per tenant). The next page of the walk — Okta's import pages through every
/// user with `startIndex` — then starts from that row through the index, as a cursor would,
/// instead of skipping `s + n - 1` rows: a page deep in a million users costs what the first
/// does. A walk also continues after the row it last saw when rows before it were added or
/// removed in between, where a plain offset would skip or repeat one (RFC 7644 §3.4.2.4 leaves
/// consistency across pages to the service provider). Bounded: entries expire, and past
/// [`Anchors::MAX`] the memory starts afresh.
///
/// The same shared value carries the key that seals cursor-paged walks' cursors, loaded from the
/// database ([`Anchors::with_cursor_key`]).
#[derive(Debug)]
pub struct Anchors {
    entries: std::sync::Mutex<HashMap<(String, i64), (Position, Instant)>>,
    cursor_key: CursorKey,
}

impl Anchors {
    pub fn with_cursor_key(cursor_key: CursorKey) -> Anchors {
        Anchors { entries: Default::default(), cursor_key }
    }

    pub(super) fn cursor_key(&self) -> &CursorKey {
        &self.cursor_key
    }

    const MAX: usize = 4096;
    const TTL: Duration = Duration::from_secs(600);
    /// Queries with longer text (filters can be 8 KiB) are not anchored, to bound the memory.
    const MAX_QUERY: usize = 512;

    pub(super) fn query(tenant: &str, resource: &str, req: &ListRequest) -> Option<String> {
        let text = format!("{tenant}|{resource}|{}", req.canonical());
        (text.len() <= Self::MAX_QUERY).then_some(text)
    }

    pub(super) fn get(&self, query: &str, start: i64) -> Option<Position> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (position, at) = entries.get(&(query.to_owned(), start))?;
        (at.elapsed() < Self::TTL).then(|| position.clone())
    }

    pub(super) fn put(&self, query: String, start: i64, position: Position) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= Self::MAX {
            entries.clear();
        }
        entries.insert((query, start), (position, Instant::now()));
    }
}
