//! Listing any resource type: filter and sort compiled to SQL, then index or cursor paging
//! (RFC 7644 §3.4.2, RFC 9865), the same for Users and Groups. The services say how a page of
//! their type is read and shown ([`Listed`]); the HTTP layer has one handler for all of them.

mod anchors;
mod cursor;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use chrono::NaiveDateTime;

pub use anchors::Anchors;
pub use cursor::CursorKey;

use crate::context::Ctx;
use crate::db::query::{Compiler, Order, Position};
use crate::db::sql::Sql;
use crate::db::{Database, DbConnection};
use crate::error::{ScimError, ScimType};
use crate::scim::filter::{CompareOp, Filter};
use crate::scim::list::{Cursor, ListRequest, Page, Paging};
use crate::scim::projection::Projection;
use crate::scim::schema::ResourceType;
use store::Store;

/// A resource type that lists and searches serve (RFC 7644 §3.4.2, §3.4.3): its schema, and
/// how a page of it is read and shown. Implemented by the services that own the types, which
/// also choose how the read runs (which pool lane, whether rendering needs the connection).
pub trait Listed {
    /// The schema the request's own `attributes` are read against.
    const RESOURCE: &'static ResourceType;

    /// The page `req` asks for, its resources shown as `req` asks (RFC 7644 §3.9), their
    /// locations under `base`.
    fn page(
        db: &Database,
        anchors: Arc<Anchors>,
        ctx: Ctx,
        req: ListRequest,
        base: String,
    ) -> impl Future<Output = Result<Page, ScimError>>;
}

/// `attributes`/`excludedAttributes` (RFC 7644 §3.9), from a query or a search body.
pub fn projection(
    rt: &'static ResourceType,
    attributes: Option<&str>,
    excluded: Option<&str>,
) -> Result<Projection, ScimError> {
    Projection::parse(rt, attributes, excluded).map_err(|e| ScimError::bad_request(ScimType::InvalidValue, e))
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

/// Runs `req` against storage `S`, returning the rows of the page and the ListResponse facts
/// (without the resources, which the caller renders).
pub fn paginate<S: Store>(
    conn: &mut DbConnection,
    compiler: &Compiler<'_>,
    req: &ListRequest,
    now: NaiveDateTime,
    anchors: &Anchors,
) -> Result<(Vec<S::Row>, Page), ScimError> {
    let cursor_key = anchors.cursor_key();
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
