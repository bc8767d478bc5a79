//! SCIM's search across every resource type (`POST /.search`, RFC 7644 §3.4.3): Users come
//! first, then Groups; a filter naming an attribute one type lacks simply matches none of that
//! type.

use std::sync::Arc;

use crate::context::Ctx;
use crate::db::Database;
use crate::error::{ScimError, ScimType};
use crate::groups;
use crate::listing::{projection, Anchors, Listed};
use crate::scim::list::{ListRequest, Page, Paging};
use crate::scim::rendered::{Rendered, Resources};
use crate::scim::schema::{ResourceType, GROUP_RESOURCE, USER_RESOURCE};
use crate::users;

/// Every resource type, in one list.
pub struct AllTypes;

/// Whether the filter names an attribute this type's schema lacks: the type then contributes
/// nothing, unless no type has the attribute (then the filter is invalid for the search).
fn is_unknown_attribute(e: &ScimError) -> bool {
    e.scim_type == Some(ScimType::InvalidFilter) && e.detail.contains("is not an attribute")
}

impl Listed for AllTypes {
    const RESOURCE: &'static ResourceType = &USER_RESOURCE;

    /// Index paging only: a cursor would have to hold a position in each type.
    async fn page(
        db: &Database,
        anchors: Arc<Anchors>,
        ctx: Ctx,
        request: ListRequest,
        base: String,
    ) -> Result<Page, ScimError> {
        let Paging::Index { start, count } = request.paging else {
            return Err(ScimError::bad_request(
                ScimType::InvalidValue,
                "Cursor paging is not available for a search across resource types; search /Users or /Groups",
            ));
        };
        let (attrs, excluded) = (request.attributes.clone(), request.excluded_attributes.clone());
        let user_projection = projection(&USER_RESOURCE, attrs.as_deref(), excluded.as_deref())?;
        let group_projection = projection(&GROUP_RESOURCE, attrs.as_deref(), excluded.as_deref())?;
        let backend = db.backend();
        db.run(move |conn| {
            let ctx = &ctx;
            // Users fill the window [start, start + count) first; Groups continue where they end.
            let (user_rows, user_page, users_lack) = match users::list(conn, backend, ctx, &anchors, &request) {
                Ok((rows, page)) => (rows, page, None),
                Err(e) if is_unknown_attribute(&e) => (Vec::new(), Page::empty(), Some(e)),
                Err(e) => return Err(e),
            };
            let group_start = (start - user_page.total).max(1);
            let group_count = (count - user_rows.len() as i64).max(0);
            let group_request =
                ListRequest { paging: Paging::Index { start: group_start, count: group_count }, ..request.clone() };
            let (group_rows, group_page) =
                match (groups::list(conn, backend, ctx, &anchors, &group_request), users_lack) {
                    (Ok(listed), _) => listed,
                    // An attribute neither Users nor Groups have: 400, as /Users would answer.
                    (Err(e), Some(users_error)) if is_unknown_attribute(&e) => return Err(users_error),
                    (Err(e), None) if is_unknown_attribute(&e) => (Vec::new(), Page::empty()),
                    (Err(e), _) => return Err(e),
                };
            let mut resources: Vec<Rendered> =
                users::read_views(user_rows).iter().map(|v| users::shown(v, &base, &user_projection)).collect();
            resources
                .extend(groups::show(conn, &group_rows, &group_projection, &base)?.into_iter().map(Rendered::from));
            Ok(Page {
                resources: Resources::Each(resources),
                total: user_page.total + group_page.total,
                start_index: Some(start),
                next_cursor: None,
                previous_cursor: None,
            })
        })
        .await
    }
}
