//! Listing any resource type: filter and sort compiled to SQL, then index or cursor paging
//! (RFC 7644 §3.4.2, RFC 9865), the same for Users and Groups.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::NaiveDateTime;
use diesel::QueryResult;

use crate::db::query::{Compiler, Order, Position};
use crate::db::sql::Sql;
use crate::db::DbConnection;
use crate::error::{ScimError, ScimType};
use crate::scim::filter::{CompareOp, Filter};
use crate::scim::list::{Cursor, ListRequest, Page, Paging};

/// How a resource type's storage counts and pages (`users`, `groups` storage modules).
pub trait Store {
    type Row;
    fn count(conn: &mut DbConnection, tenant_id: &str, filter: Option<&Sql>) -> QueryResult<i64>;
    /// One page in `order`, walked backwards when `reverse`, each row with its sort key.
    #[allow(clippy::too_many_arguments)]
    fn page(
        conn: &mut DbConnection,
        tenant_id: &str,
        filter: Option<&Sql>,
        keyset: Option<&Sql>,
        order: &Order,
        reverse: bool,
        offset: i64,
        limit: i64,
    ) -> QueryResult<Vec<(Self::Row, Option<String>)>>;
    fn pk(row: &Self::Row) -> i64;
}

/// The lookups identity providers repeat all day (`userName eq`, `externalId eq`, …) keep their
/// statements prepared: one `eq` per schema attribute, in the default order, is a small fixed
/// set of statement texts. Any other filter is prepared afresh each time.
fn keeps_statement(req: &ListRequest) -> bool {
    matches!(req.filter, Some(Filter::Compare { op: CompareOp::Eq, .. })) && req.sort_by.is_none()
}

/// A lookup by an attribute that is indexed per tenant and names at most a handful of users —
/// `userName eq`, `externalId eq`, `id eq`, what identity providers send before every create —
/// in the default order: a read that costs the same at any size (see `Database::run_short`).
pub fn is_unique_lookup(req: &ListRequest) -> bool {
    let Some(Filter::Compare { path, .. }) = &req.filter else { return false };
    let core = path.urn.as_deref().is_none_or(|urn| urn.eq_ignore_ascii_case(crate::scim::schema::USER_SCHEMA.id));
    let attr = path.attr.to_ascii_lowercase();
    keeps_statement(req) && core && path.sub.is_none() && matches!(attr.as_str(), "username" | "externalid" | "id")
}

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
/// The same shared value carries the key that seals cursor-paged walks' cursors: by default a
/// random one, for a context that never pages (the admin commands); the server's is loaded from
/// the database ([`Anchors::with_cursor_key`]).
#[derive(Debug, Default)]
pub struct Anchors {
    entries: std::sync::Mutex<HashMap<(String, i64), (Position, Instant)>>,
    cursor_key: CursorKey,
}

impl Anchors {
    pub fn with_cursor_key(cursor_key: CursorKey) -> Anchors {
        Anchors { entries: Default::default(), cursor_key }
    }

    const MAX: usize = 4096;
    const TTL: Duration = Duration::from_secs(600);
    /// Queries with longer text (filters can be 8 KiB) are not anchored, to bound the memory.
    const MAX_QUERY: usize = 512;

    fn query(tenant: &str, resource: &str, req: &ListRequest) -> Option<String> {
        let text = format!("{tenant}|{resource}|{}", req.canonical());
        (text.len() <= Self::MAX_QUERY).then_some(text)
    }

    fn get(&self, query: &str, start: i64) -> Option<Position> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (position, at) = entries.get(&(query.to_owned(), start))?;
        (at.elapsed() < Self::TTL).then(|| position.clone())
    }

    fn put(&self, query: String, start: i64, position: Position) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= Self::MAX {
            entries.clear();
        }
        entries.insert((query, start), (position, Instant::now()));
    }
}

/// Name of the generated cursor key in the `server_settings` table.
const CURSOR_KEY_SETTING: &str = "cursor_key";

/// Seals cursors (RFC 9865) so that they are opaque and cannot be forged or edited: the row
/// position, sort key (an email, say) and issue time inside are encrypted and authenticated
/// with XChaCha20-Poly1305, the tenant's id bound in as associated data, so a cursor only opens
/// for the tenant it was made for. The key is generated once and kept in the database, so every
/// node sharing it opens every other node's cursors.
#[derive(Clone)]
pub struct CursorKey(XChaCha20Poly1305);

impl Default for CursorKey {
    fn default() -> CursorKey {
        CursorKey::from_bytes(&rand::random::<[u8; 32]>())
    }
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    pub fn load(conn: &mut DbConnection) -> Result<CursorKey, crate::db::DbError> {
        Ok(CursorKey::from_bytes(&crate::db::settings::generated_key(conn, CURSOR_KEY_SETTING)?))
    }

    fn from_bytes(bytes: &[u8]) -> CursorKey {
        CursorKey(XChaCha20Poly1305::new_from_slice(bytes).expect("a 32-byte key"))
    }

    /// URL-safe text: a random 24-byte nonce, then the sealed cursor.
    pub fn seal(&self, cursor: &Cursor, tenant_id: &str) -> String {
        let nonce: [u8; 24] = rand::random();
        let mut msg = serde_json::to_vec(cursor).expect("a cursor serialises");
        // Padded (JSON allows trailing spaces) so that the length tells little about the sort key.
        msg.resize(msg.len().next_multiple_of(64), b' ');
        let sealed = self
            .0
            .encrypt(&XNonce::from(nonce), Payload { msg: &msg, aad: tenant_id.as_bytes() })
            .expect("encryption into memory cannot fail");
        URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat())
    }

    /// The cursor inside `text` when this server sealed it for this tenant, unaltered.
    pub fn open(&self, text: &str, tenant_id: &str) -> Result<Cursor, ScimError> {
        let invalid = || {
            ScimError::bad_request(
                ScimType::InvalidCursor,
                "The cursor is not valid: it was altered, or made by another server or for another tenant",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let (nonce, sealed) = bytes.split_first_chunk::<24>().ok_or_else(invalid)?;
        let msg = self
            .0
            .decrypt(&XNonce::from(*nonce), Payload { msg: sealed, aad: tenant_id.as_bytes() })
            .map_err(|_| invalid())?;
        serde_json::from_slice(&msg).map_err(|_| invalid())
    }
}

/// Runs `req` against storage `S`, returning the rows of the page and the ListResponse facts
/// (without the resources, which the caller renders).
pub fn paginate<S: Store>(
    conn: &mut DbConnection,
    compiler: &Compiler<'_>,
    req: &ListRequest,
    now: NaiveDateTime,
    anchors: &Anchors,
) -> Result<(Vec<S::Row>, Page), ScimError> {
    let cursor_key = &anchors.cursor_key;
    let tenant = compiler.tenant_id;
    let filter = req.filter.as_ref().map(|f| compiler.filter(f)).transpose()?;
    let filter = if keeps_statement(req) { filter.map(Sql::cached) } else { filter };
    let order =
        Order { key: req.sort_by.as_ref().map(|p| compiler.sort_key(p)).transpose()?, descending: req.descending };
    // Opened even for `count=0`: a forged cursor is refused whatever else the request asks.
    let opened = match &req.paging {
        Paging::Cursor { cursor: Some(text), .. } => {
            Some(cursor_key.open(text, tenant)?.check(&req.fingerprint(), now.and_utc().timestamp())?)
        }
        _ => None,
    };
    let mut page = Page::empty();
    // The page is read first: when it is the first page and not full, it holds every match and
    // the count needs no query of its own — the case of every lookup an IdP makes.
    let (rows, first_and_complete) = match &req.paging {
        Paging::Index { start, count } => {
            page.start_index = Some(*start);
            // The anchor's key is the query's canonical text, needed only past the first page
            // or after a full page: not for a lookup's short first page.
            let anchor_query = || Anchors::query(tenant, &format!("{:?}", compiler.resource), req);
            let query = (*start > 1 && *count > 0).then(anchor_query).flatten();
            let anchor = query.as_deref().and_then(|q| anchors.get(q, *start));
            let rows = match (&anchor, *count) {
                (_, 0) => Vec::new(),
                (Some(position), count) => {
                    let after = compiler.keyset(&order, position, true);
                    S::page(conn, tenant, filter.as_ref(), Some(&after), &order, false, 0, count)?
                }
                (None, count) => S::page(conn, tenant, filter.as_ref(), None, &order, false, start - 1, count)?,
            };
            // A full page may have a next one, which can then start from where this one ended.
            let full = *count > 0 && rows.len() as i64 == *count;
            if let (true, Some(query), Some((row, key))) = (full, query.or_else(anchor_query), rows.last()) {
                anchors.put(query, start + rows.len() as i64, Position { key: key.clone(), pk: S::pk(row) });
            }
            // A short page holds the rest of the matches; counting them needs the exact offset,
            // which an anchored page does not know.
            let complete =
                *count > 0 && (rows.len() as i64) < *count && (*start == 1 || !rows.is_empty()) && anchor.is_none();
            let known = complete.then(|| start - 1 + rows.len() as i64);
            (rows, known)
        }
        Paging::Cursor { count: 0, .. } => (Vec::new(), None),
        Paging::Cursor { count, .. } => {
            let cursor = opened;
            let forward = cursor.as_ref().is_none_or(|c| c.forward);
            let keyset =
                cursor.as_ref().map(|c| compiler.keyset(&order, &Position { key: c.key.clone(), pk: c.pk }, c.forward));
            // One row more than asked tells whether another page follows.
            let mut rows = S::page(conn, tenant, filter.as_ref(), keyset.as_ref(), &order, !forward, 0, count + 1)?;
            let more = rows.len() as i64 > *count;
            rows.truncate(*count as usize);
            if !forward {
                rows.reverse();
            }
            // Walking forward, more rows mean a next page and a cursor means an earlier page
            // exists; walking backward it is the other way round.
            let (has_next, has_previous) = if forward { (more, cursor.is_some()) } else { (true, more) };
            if has_next || has_previous {
                // One fingerprint for both cursors of the page.
                let query = req.fingerprint();
                let make = |(row, key): &(S::Row, Option<String>), forward| {
                    let cursor = Cursor {
                        forward,
                        key: key.clone(),
                        pk: S::pk(row),
                        query: query.clone(),
                        issued: now.and_utc().timestamp(),
                    };
                    cursor_key.seal(&cursor, tenant)
                };
                if has_next {
                    page.next_cursor = rows.last().map(|r| make(r, true));
                }
                if has_previous {
                    page.previous_cursor = rows.first().map(|r| make(r, false));
                }
            }
            let known = (cursor.is_none() && !more).then_some(rows.len() as i64);
            (rows, known)
        }
    };
    page.total = match first_and_complete {
        Some(total) => total,
        None => S::count(conn, tenant, filter.as_ref())?,
    };
    Ok((rows.into_iter().map(|(row, _)| row).collect(), page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_eq_lookups_in_default_order_keep_their_statements() {
        let kept = |query: &str| keeps_statement(&ListRequest::from_query(query).unwrap());
        assert!(kept("filter=userName%20eq%20%22a%22"));
        assert!(kept("filter=emails.value%20eq%20%22a%40b%22&count=5"));
        assert!(!kept(""));
        assert!(!kept("filter=userName%20eq%20%22a%22&sortBy=displayName"));
        assert!(!kept("filter=userName%20sw%20%22a%22"));
        assert!(!kept("filter=userName%20eq%20%22a%22%20or%20userName%20eq%20%22b%22"));
        assert!(!kept("filter=emails%5Btype%20eq%20%22work%22%5D"));
    }

    #[test]
    fn sealed_cursors_open_only_unaltered_with_their_key_and_tenant() {
        let key = CursorKey::from_bytes(&[9; 32]);
        let cursor = Cursor { forward: true, key: Some("a@example.com".into()), pk: 7, query: "q".into(), issued: 1 };
        let text = key.seal(&cursor, "t1");
        assert_eq!(key.open(&text, "t1").unwrap(), cursor);
        assert_ne!(key.seal(&cursor, "t1"), text, "a fresh nonce each time: equal cursors do not look equal");
        let refused = |text: &str, key: &CursorKey, tenant: &str| {
            key.open(text, tenant).unwrap_err().scim_type == Some(ScimType::InvalidCursor)
        };
        assert!(refused(&text, &key, "t2"));
        assert!(refused(&text, &CursorKey::from_bytes(&[8; 32]), "t1"));
        let mut bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
        for i in [0, 24, bytes.len() - 1] {
            bytes[i] ^= 1;
            assert!(refused(&URL_SAFE_NO_PAD.encode(&bytes), &key, "t1"), "byte {i} flipped");
            bytes[i] ^= 1;
        }
        let short = key.seal(&Cursor { key: Some("a@b.c".into()), ..cursor.clone() }, "t1");
        assert_eq!(short.len(), text.len(), "padded: the sort key's length does not show");
        assert!(refused("", &key, "t1"));
        assert!(refused("%%%", &key, "t1"));
        assert!(refused(&URL_SAFE_NO_PAD.encode([0u8; 23]), &key, "t1"));
    }

    #[test]
    fn only_lookups_by_indexed_identifiers_count_as_unique_lookups() {
        let unique = |query: &str| is_unique_lookup(&ListRequest::from_query(query).unwrap());
        assert!(unique("filter=userName%20eq%20%22a%22"));
        assert!(unique("filter=externalId%20eq%20%22a%22"));
        assert!(unique("filter=urn%3Aietf%3Aparams%3Ascim%3Aschemas%3Acore%3A2.0%3AUser%3AuserName%20eq%20%22a%22"));
        assert!(!unique("filter=title%20eq%20%22a%22"), "not indexed: scans every user");
        assert!(!unique("filter=userName%20co%20%22a%22"));
        assert!(!unique("filter=name.familyName%20eq%20%22a%22"));
        assert!(!unique("filter=userName%20eq%20%22a%22&sortBy=title"));
        assert!(!unique(""));
    }
}
