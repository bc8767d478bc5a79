//! Listing requests and responses: filter, sort, index paging (RFC 7644 §3.4.2) and cursor
//! paging (RFC 9865), from a query string or a `.search` body (RFC 7644 §3.4.3).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::filter::{parse_filter, parse_path, AttrPath, Filter};
use super::rendered::Resources;
use crate::error::{ScimError, ScimType};

pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const DEFAULT_PAGE_SIZE: i64 = 100;
/// Also advertised as `filter.maxResults` and `pagination.maxPageSize`.
pub const MAX_PAGE_SIZE: i64 = 1000;
/// Seconds a cursor stays valid (`pagination.cursorTimeout`).
pub const CURSOR_TIMEOUT_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone, PartialEq)]
pub enum Paging {
    /// 1-based `startIndex` and `count` (RFC 7644 §3.4.2.4).
    Index { start: i64, count: i64 },
    /// RFC 9865: `cursor` absent or empty for the first page; otherwise its sealed text, opened
    /// (and checked against the query) where the tenant and the key are known (`listing`).
    Cursor { cursor: Option<String>, count: i64 },
}

/// A parsed listing request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRequest {
    pub filter: Option<Filter>,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    pub paging: Paging,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

/// Where a cursor continues: after (or, for a previous-page cursor, before) a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// true: the page after the position; false: the page before it.
    #[serde(rename = "f")]
    pub forward: bool,
    #[serde(rename = "k")]
    pub key: Option<String>,
    #[serde(rename = "p")]
    pub pk: i64,
    /// The query the cursor belongs to; a cursor replayed with another filter or sort is refused.
    #[serde(rename = "q")]
    pub query: String,
    /// Unix time the cursor was made.
    #[serde(rename = "t")]
    pub issued: i64,
}

impl Cursor {
    /// The cursor when it belongs to `query` and has not expired (RFC 9865 §2).
    pub fn check(self, query: &str, now: i64) -> Result<Cursor, ScimError> {
        if self.query != query {
            return Err(ScimError::bad_request(
                ScimType::InvalidCursor,
                "The cursor belongs to a request with another filter or sort order",
            ));
        }
        if now - self.issued > CURSOR_TIMEOUT_SECS {
            return Err(ScimError::bad_request(
                ScimType::ExpiredCursor,
                format!("The cursor has expired; cursors are valid for {CURSOR_TIMEOUT_SECS} seconds"),
            ));
        }
        Ok(self)
    }
}

/// The raw parameters, from either a query string or a SearchRequest body.
#[derive(Default)]
struct Params {
    filter: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    start_index: Option<String>,
    count: Option<String>,
    cursor: Option<String>,
    attributes: Option<String>,
    excluded_attributes: Option<String>,
}

impl ListRequest {
    /// Parses `?filter=…&sortBy=…&startIndex=…&count=…&cursor=…&attributes=…`. Parameter names
    /// are matched case-insensitively, as clients vary in how they spell them.
    pub fn from_query(query: &str) -> Result<ListRequest, ScimError> {
        let mut p = Params::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.to_ascii_lowercase().as_str() {
                "filter" => &mut p.filter,
                "sortby" => &mut p.sort_by,
                "sortorder" => &mut p.sort_order,
                "startindex" => &mut p.start_index,
                "count" => &mut p.count,
                "cursor" => &mut p.cursor,
                "attributes" => &mut p.attributes,
                "excludedattributes" => &mut p.excluded_attributes,
                _ => continue,
            };
            *slot = Some(value.into_owned());
        }
        ListRequest::from_params(p)
    }

    /// Parses a `POST …/.search` body (RFC 7644 §3.4.3).
    pub fn from_search_body(body: &Value) -> Result<ListRequest, ScimError> {
        let Value::Object(map) = body else {
            return Err(ScimError::invalid_syntax("A SearchRequest must be a JSON object"));
        };
        let mut p = Params::default();
        for (name, value) in map {
            let text = |v: &Value| -> Result<Option<String>, ScimError> {
                match v {
                    Value::Null => Ok(None),
                    Value::String(s) => Ok(Some(s.clone())),
                    Value::Number(n) => Ok(Some(n.to_string())),
                    // `attributes` and `excludedAttributes` are arrays of strings in the body.
                    Value::Array(items) => {
                        let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                        Ok(Some(
                            names
                                .ok_or_else(|| ScimError::invalid_value(format!("{name:?} must be a list of strings")))?
                                .join(","),
                        ))
                    }
                    _ => Err(ScimError::invalid_value(format!("{name:?} has an unexpected type"))),
                }
            };
            match name.to_ascii_lowercase().as_str() {
                "schemas" => {
                    let ok = value.as_array().is_some_and(|s| s.iter().any(|u| u.as_str() == Some(SEARCH_REQUEST)));
                    if !ok {
                        return Err(ScimError::invalid_value(format!(
                            "A SearchRequest's schemas must contain {SEARCH_REQUEST:?}"
                        )));
                    }
                }
                "filter" => p.filter = text(value)?,
                "sortby" => p.sort_by = text(value)?,
                "sortorder" => p.sort_order = text(value)?,
                "startindex" => p.start_index = text(value)?,
                "count" => p.count = text(value)?,
                "cursor" => p.cursor = text(value)?,
                "attributes" => p.attributes = text(value)?,
                "excludedattributes" => p.excluded_attributes = text(value)?,
                _ => {}
            }
        }
        ListRequest::from_params(p)
    }

    fn from_params(p: Params) -> Result<ListRequest, ScimError> {
        let filter = match p.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
            Some(text) => {
                let invalid = |e: String| ScimError::invalid_filter(format!("Invalid filter {text:?}: {e}"));
                let filter = parse_filter(text).map_err(|e| invalid(e.to_string()))?;
                super::filter::check_cost(&filter).map_err(invalid)?;
                Some(filter)
            }
            None => None,
        };
        let sort_by = match p.sort_by.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(text) => {
                let path =
                    parse_path(text).map_err(|e| ScimError::invalid_value(format!("Invalid sortBy {text:?}: {e}")))?;
                if path.filter.is_some() {
                    return Err(ScimError::invalid_value("sortBy cannot contain a value filter"));
                }
                Some(path.attr)
            }
            None => None,
        };
        let descending = match p.sort_order.as_deref().map(str::trim) {
            None | Some("") => false,
            Some(o) if o.eq_ignore_ascii_case("ascending") => false,
            Some(o) if o.eq_ignore_ascii_case("descending") => true,
            Some(o) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder must be \"ascending\" or \"descending\", not {o:?}"
                )))
            }
        };
        let number = |name: &str, v: &str| -> Result<i64, ScimError> {
            let v = v.trim();
            v.parse::<i64>()
                .or_else(|_| v.parse::<f64>().map(|f| f.clamp(i64::MIN as f64, i64::MAX as f64) as i64))
                .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer, not {v:?}")))
        };
        let paging = match (p.cursor, p.start_index) {
            (Some(_), Some(_)) => {
                return Err(ScimError::invalid_value("Use either startIndex or cursor, not both (RFC 9865)"))
            }
            (Some(cursor), None) => {
                let count = match p.count {
                    None => DEFAULT_PAGE_SIZE,
                    Some(c) => {
                        let n = number("count", &c)
                            .map_err(|e| ScimError::bad_request(ScimType::InvalidCount, e.detail))?;
                        if n < 0 {
                            return Err(ScimError::bad_request(ScimType::InvalidCount, "count must not be negative"));
                        }
                        n.min(MAX_PAGE_SIZE)
                    }
                };
                let cursor = Some(cursor.trim().to_owned()).filter(|c| !c.is_empty());
                Paging::Cursor { cursor, count }
            }
            (None, start) => {
                // RFC 7644 §3.4.2.4: startIndex < 1 is 1, count < 0 is 0; larger than the
                // maximum is the maximum.
                let start = match start {
                    Some(s) => number("startIndex", &s)?.max(1),
                    None => 1,
                };
                let count = match p.count {
                    Some(c) => number("count", &c)?.clamp(0, MAX_PAGE_SIZE),
                    None => DEFAULT_PAGE_SIZE,
                };
                Paging::Index { start, count }
            }
        };
        Ok(ListRequest {
            filter,
            sort_by,
            descending,
            paging,
            attributes: p.attributes,
            excluded_attributes: p.excluded_attributes,
        })
    }

    /// The filter and sort in canonical form (see [`canonical_query`]).
    pub fn canonical(&self) -> String {
        canonical_query(self.filter.as_ref(), self.sort_by.as_ref(), self.descending)
    }

    /// Identifies the query a cursor belongs to.
    pub fn fingerprint(&self) -> String {
        query_fingerprint(self.filter.as_ref(), self.sort_by.as_ref(), self.descending)
    }
}

/// The filter and sort in canonical form: equal for requests that ask for the same rows in the
/// same order, however they were spelled.
fn canonical_query(filter: Option<&Filter>, sort_by: Option<&AttrPath>, descending: bool) -> String {
    format!(
        "{}|{}|{descending}",
        filter.map(|f| f.to_string()).unwrap_or_default(),
        sort_by.map(|s| s.to_string().to_ascii_lowercase()).unwrap_or_default()
    )
}

fn query_fingerprint(filter: Option<&Filter>, sort_by: Option<&AttrPath>, descending: bool) -> String {
    // FNV-1a over the canonical filter and sort: short, stable across nodes and versions.
    let text = canonical_query(filter, sort_by, descending);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// A ListResponse (RFC 7644 §3.4.2); numbers are JSON integers, as Okta requires.
pub struct Page {
    pub resources: Resources,
    pub total: i64,
    pub start_index: Option<i64>,
    pub next_cursor: Option<String>,
    pub previous_cursor: Option<String>,
}

impl Page {
    pub fn empty() -> Page {
        Page {
            resources: Resources::Each(Vec::new()),
            total: 0,
            start_index: None,
            next_cursor: None,
            previous_cursor: None,
        }
    }

    /// The ListResponse body; the resources move into it rather than being copied.
    pub fn into_body(self) -> ListBody {
        ListBody {
            items_per_page: self.resources.len(),
            resources: self.resources,
            next_cursor: self.next_cursor,
            previous_cursor: self.previous_cursor,
            schemas: [LIST_RESPONSE],
            start_index: self.start_index,
            total_results: self.total,
        }
    }
}

/// A ListResponse as it is written out. The members are in the order of their names, as a
/// response built as a `serde_json::Value` has them.
#[derive(Serialize)]
pub struct ListBody {
    #[serde(rename = "Resources")]
    resources: Resources,
    #[serde(rename = "itemsPerPage")]
    items_per_page: usize,
    #[serde(rename = "nextCursor", skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    #[serde(rename = "previousCursor", skip_serializing_if = "Option::is_none")]
    previous_cursor: Option<String>,
    schemas: [&'static str; 1],
    #[serde(rename = "startIndex", skip_serializing_if = "Option::is_none")]
    start_index: Option<i64>,
    #[serde(rename = "totalResults")]
    total_results: i64,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parameters_are_case_insensitive_and_default_to_the_first_hundred() {
        let req = ListRequest::from_query("Filter=userName%20eq%20%22bjensen%22&STARTINDEX=0").unwrap();
        assert!(req.filter.is_some());
        assert_eq!(req.paging, Paging::Index { start: 1, count: DEFAULT_PAGE_SIZE });
    }

    #[test]
    fn count_is_clamped_between_zero_and_the_maximum() {
        let req = ListRequest::from_query("count=-5").unwrap();
        assert_eq!(req.paging, Paging::Index { start: 1, count: 0 });
        let req = ListRequest::from_query("count=100000&startIndex=99999999999999999999").unwrap();
        assert_eq!(req.paging, Paging::Index { start: i64::MAX, count: MAX_PAGE_SIZE });
    }

    #[test]
    fn an_invalid_filter_says_where_it_went_wrong() {
        let err = ListRequest::from_query("filter=userName%20eq").unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
        assert!(err.detail.contains("position"), "{}", err.detail);
    }

    #[test]
    fn cursor_and_start_index_together_are_refused() {
        let err = ListRequest::from_query("cursor=&startIndex=1").unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn an_empty_cursor_asks_for_the_first_page() {
        let req = ListRequest::from_query("cursor=&count=10").unwrap();
        assert_eq!(req.paging, Paging::Cursor { cursor: None, count: 10 });
        let err = ListRequest::from_query("cursor=&count=-1").unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidCount));
    }

    #[test]
    fn cursors_refuse_other_queries_and_age() {
        let req = ListRequest::from_query("filter=active%20eq%20true&cursor=abc").unwrap();
        assert_eq!(req.paging, Paging::Cursor { cursor: Some("abc".into()), count: DEFAULT_PAGE_SIZE });
        let now = chrono::Utc::now().timestamp();
        let cursor = Cursor { forward: true, key: None, pk: 42, query: req.fingerprint(), issued: now };
        assert_eq!(cursor.clone().check(&req.fingerprint(), now).unwrap(), cursor);
        let other = ListRequest::from_query("filter=active%20eq%20false").unwrap();
        let err = cursor.clone().check(&other.fingerprint(), now).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidCursor));
        let old = Cursor { issued: now - CURSOR_TIMEOUT_SECS - 1, ..cursor };
        assert_eq!(old.check(&req.fingerprint(), now).unwrap_err().scim_type, Some(ScimType::ExpiredCursor));
    }

    #[test]
    fn search_bodies_take_attribute_lists_and_numbers() {
        let body = json!({
            "schemas": [SEARCH_REQUEST],
            "attributes": ["displayName", "userName"],
            "filter": "displayName sw \"smith\"",
            "startIndex": 1,
            "count": 10
        });
        let req = ListRequest::from_search_body(&body).unwrap();
        assert_eq!(req.attributes.as_deref(), Some("displayName,userName"));
        assert_eq!(req.paging, Paging::Index { start: 1, count: 10 });
        assert!(ListRequest::from_search_body(&json!({"schemas": ["urn:x"]})).is_err());
    }

    #[test]
    fn list_numbers_are_integers() {
        let page = Page {
            resources: Resources::Each(vec![json!({}).into()]),
            total: 7,
            start_index: Some(1),
            next_cursor: None,
            previous_cursor: None,
        };
        let body = serde_json::to_value(page.into_body()).unwrap();
        assert!(body["totalResults"].is_i64() && body["itemsPerPage"].is_u64() && body["startIndex"].is_i64());
    }
}
