//! The Audit log page: the tenant's audit entries newest first, filtered by actor, action, target
//! account and time, paged by entry number; and the same entries as a JSON Lines download, read
//! and sent a batch at a time so that a long log is never held whole.
//!
//! Entries are paged by their number in the tenant (`tenant_seq`, the `id` of `roster audit` and
//! of the product API's audit feed), never by the shared sequence, whose gaps would tell one tenant
//! how busy the others are. A page walks `audit_log_tenant_number` backwards from the last entry
//! shown; a target filter reads `audit_log_tenant_user`.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text};
use maud::{html, Markup};
use serde::Deserialize;

use super::pages::{render, signed_in};
use super::views::{when, Section};
use super::PanelError;
use crate::db::records::{self, AuditRow};
use crate::db::schema::{audit_log, users};
use crate::db::{DbConnection, MultiBackend};
use crate::scim::user_name::user_name_key;
use crate::state::AppState;

/// Entries per page.
const PAGE: i64 = 50;
/// Entries per read of a download.
const BATCH: i64 = 500;

/// The filters as typed in the form (and carried by the page links and the download link).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    actor: String,
    action: String,
    target: String,
    from: String,
    to: String,
    before: Option<i64>,
}

impl AuditQuery {
    /// The query string of these filters, without the cursor.
    fn filters(&self) -> String {
        let mut url = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.trim().is_empty() {
                url.append_pair(name, value.trim());
            }
        }
        url.finish()
    }
}

/// The filters, parsed: prefixes of the actor and the action, the target account's id, and a
/// time range `[from, until)`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
}

/// A time typed as a date (`2026-12-05`) or a date and time (`2026-12-05T14:30`, what a browser's
/// date-time field sends), in UTC. `end` makes it the end of the day or minute it names, so that a
/// range "to 2026-12-05" includes that whole day.
fn moment(label: &str, text: &str, end: bool) -> Result<Option<NaiveDateTime>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let start = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        return Ok(Some(if end { start + Duration::days(1) } else { start }));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(Some(if end { t + Duration::minutes(1) } else { t }));
        }
    }
    Err(format!("{label}: {text:?} is not a date (2026-12-05) or a date and time (2026-12-05T14:30), in UTC."))
}

impl Filter {
    /// Parses the typed filters; the target is left as typed (see [`resolve_target`]).
    fn parse(query: &AuditQuery) -> Result<Filter, String> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let from = moment("From", &query.from, false);
        let until = moment("To", &query.to, true);
        let (from, until) = match (from, until) {
            (Ok(from), Ok(until)) => (from, until),
            (from, until) => {
                let problems: Vec<String> = [from.err(), until.err()].into_iter().flatten().collect();
                return Err(problems.join(" "));
            }
        };
        if let (Some(from), Some(until)) = (from, until) {
            if until <= from {
                return Err("The time range ends before it starts: To must be at or after From.".into());
            }
        }
        Ok(Filter { actor: text(&query.actor), action: text(&query.action), target: text(&query.target), from, until })
    }
}

/// A target typed as a userName of the tenant is that account's id; anything else is taken as an
/// id, which also finds the entries of deleted accounts (their ids stay in the log).
fn resolve_target(conn: &mut DbConnection, tenant_id: &str, filter: &mut Filter) -> QueryResult<()> {
    let Some(target) = &filter.target else { return Ok(()) };
    let id: Option<String> = users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::user_name_folded.eq(user_name_key(target)))
        .filter(users::deleted_at.is_null())
        .select(users::id)
        .first(conn)
        .optional()?;
    if let Some(id) = id {
        filter.target = Some(id);
    }
    Ok(())
}

/// Whether `column` starts with `prefix`, compared character by character as both backends
/// compare `=`: case-sensitive on both, where `LIKE` is not on SQLite.
fn starts_with(
    column: &str,
    prefix: &str,
) -> Box<dyn BoxableExpression<audit_log::table, MultiBackend, SqlType = Bool>> {
    let length = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
    Box::new(
        sql::<Bool>(&format!("substr({column}, 1, "))
            .bind::<Integer, _>(length)
            .sql(") = ")
            .bind::<Text, _>(prefix.to_owned()),
    )
}

/// Up to `limit` of the tenant's entries that pass the filter, numbered below `before` (from the
/// newest when None), newest first. The tenant's committed entries are numbered first.
pub fn entries(
    conn: &mut DbConnection,
    tenant_id: &str,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut q = audit_log::table
        .filter(audit_log::tenant_id.eq(tenant_id.to_owned()))
        .filter(audit_log::tenant_seq.is_not_null())
        .into_boxed();
    if let Some(before) = before {
        q = q.filter(audit_log::tenant_seq.lt(before));
    }
    if let Some(actor) = &filter.actor {
        q = q.filter(starts_with("audit_log.actor", actor));
    }
    if let Some(action) = &filter.action {
        q = q.filter(starts_with("audit_log.action", action));
    }
    if let Some(target) = &filter.target {
        q = q.filter(audit_log::user_id.eq(target.clone()));
    }
    if let Some(from) = filter.from {
        q = q.filter(audit_log::at.ge(from));
    }
    if let Some(until) = filter.until {
        q = q.filter(audit_log::at.lt(until));
    }
    q.order(audit_log::tenant_seq.desc()).limit(limit).select(AuditRow::as_select()).load(conn)
}

/// Reads a page (or a download's first batch): numbers the tenant's entries, resolves the target.
fn first_read(
    conn: &mut DbConnection,
    tenant_id: &str,
    mut filter: Filter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<(Filter, Vec<AuditRow>)> {
    records::number_audit(conn, tenant_id)?;
    resolve_target(conn, tenant_id, &mut filter)?;
    let rows = entries(conn, tenant_id, &filter, before, limit)?;
    Ok((filter, rows))
}

pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let query = query.into_inner();
    let filter = match Filter::parse(&query) {
        Ok(filter) => filter,
        Err(why) => {
            let body = audit_page(&query, &[], None, Some(&why));
            return render(&state, &admin, StatusCode::BAD_REQUEST, "Audit log", Section::Audit, body).await;
        }
    };
    let (tenant_id, before) = (admin.tenant.id.clone(), query.before);
    let (_, mut rows) =
        state.db.run(move |conn| Ok::<_, PanelError>(first_read(conn, &tenant_id, filter, before, PAGE + 1)?)).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let next = rows.last().filter(|_| more).map(|last| {
        let filters = query.filters();
        let sep = if filters.is_empty() { "" } else { "&" };
        format!("/admin/audit?{filters}{sep}before={}", last.tenant_seq)
    });
    let body = audit_page(&query, &rows, next, None);
    render(&state, &admin, StatusCode::OK, "Audit log", Section::Audit, body).await
}

/// The entries as JSON Lines, one `roster audit` object a line, newest first, read `BATCH`
/// entries at a time while the response is sent.
pub async fn download(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let query = query.into_inner();
    let filter = Filter::parse(&query).map_err(PanelError::BadRequest)?;
    let tenant_id = admin.tenant.id.clone();
    // The first batch is read before the response starts, so that a failure is an error page.
    let (filter, first) = state
        .db
        .run({
            let tenant_id = tenant_id.clone();
            move |conn| Ok::<_, PanelError>(first_read(conn, &tenant_id, filter, None, BATCH)?)
        })
        .await?;
    let db = state.db.clone();
    let batches = futures_util::stream::unfold(Some(first), move |batch| {
        let (db, tenant_id, filter) = (db.clone(), tenant_id.clone(), filter.clone());
        async move {
            let rows = batch?;
            if rows.is_empty() {
                return None;
            }
            let mut text = String::new();
            for row in &rows {
                text.push_str(&crate::product::audit_json(row).to_string());
                text.push('\n');
            }
            let next = match rows.last().filter(|_| rows.len() as i64 == BATCH) {
                None => Ok(None),
                Some(last) => {
                    let before = last.tenant_seq;
                    db.run(move |conn| Ok::<_, PanelError>(entries(conn, &tenant_id, &filter, Some(before), BATCH)?))
                        .await
                        .map(Some)
                }
            };
            match next {
                // A failed read ends the download short; the log says why.
                Err(e) => {
                    tracing::warn!(error = %e, "audit download stopped");
                    Some((Ok::<_, PanelError>(Bytes::from(text)), None))
                }
                Ok(next) => Some((Ok(Bytes::from(text)), next)),
            }
        }
    });
    let name = format!("roster-audit-{}-{}.jsonl", admin.tenant.name, state.clock.now().format("%Y%m%dT%H%M%SZ"));
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/jsonl; charset=utf-8"))
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .streaming(batches))
}

fn audit_page(query: &AuditQuery, rows: &[AuditRow], next: Option<String>, refused: Option<&str>) -> Markup {
    let filters = query.filters();
    let download =
        if filters.is_empty() { "/admin/audit.jsonl".to_owned() } else { format!("/admin/audit.jsonl?{filters}") };
    let field = |name: &str, label: &str, value: &str, kind: &str, help: &str| {
        let help_id = format!("{name}-help");
        html! {
            div.field {
                label for=(name) { (label) }
                input id=(name) name=(name) type=(kind) value=(value) autocomplete="off" aria-describedby=(help_id);
                small id=(help_id) { (help) }
            }
        }
    };
    html! {
        h1 { "Audit log" }
        p.lead { "Who did what, and when: lifecycle changes from SCIM, the command line and this panel, sign-ins, "
            "and changes of the settings. Newest first. Entries never hold removed personal data." }
        @if let Some(refused) = refused {
            div.refusal role="alert" { h2 { "Filter not understood" } p { (refused) } }
        }
        form.search.filters method="get" action="/admin/audit" role="search" aria-label="Filter the audit log" {
            (field("actor", "Actor", &query.actor, "text", "Starts with, e.g. panel:alice or okta"))
            (field("action", "Action", &query.action, "text", "Starts with, e.g. deactivate or admin."))
            (field("target", "Person", &query.target, "text", "An account's id or userName"))
            (field("from", "From (UTC)", &query.from, "date", "On or after this day"))
            (field("to", "To (UTC)", &query.to, "date", "Up to the end of this day"))
            div.buttons {
                button type="submit" { "Filter" }
                @if !filters.is_empty() { a href="/admin/audit" { "Clear" } }
            }
        }
        p.download {
            a href=(download) download { "Download as JSON Lines" }
            " — every entry that passes these filters, newest first, one JSON object a line (as "
            code { "roster audit" } " prints them)."
        }
        @if rows.is_empty() {
            p.empty { @if refused.is_some() { "" } @else if filters.is_empty() { "Nothing recorded yet." } @else { "No entry passes these filters." } }
        } @else {
            div.table-wrap {
                table.audit {
                    caption.visually-hidden { "Audit entries, newest first" }
                    thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Actor" } th scope="col" { "Action" } th scope="col" { "Person" } th scope="col" { "Change" } } }
                    tbody {
                        @for row in rows {
                            tr {
                                td.num { (row.tenant_seq) }
                                td { (when(row.at)) }
                                td.mono { (row.actor) }
                                td.mono { (row.action) }
                                td.mono {
                                    @if row.user_id.is_empty() { "—" }
                                    @else { a href={ "/admin/people/" (row.user_id) } { (row.user_id) } }
                                }
                                td {
                                    @if row.state_before.is_some() || row.state_after.is_some() {
                                        (row.state_before.as_deref().unwrap_or("—")) " → " (row.state_after.as_deref().unwrap_or("—"))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if query.before.is_some() {
                a href=(if filters.is_empty() { "/admin/audit".to_owned() } else { format!("/admin/audit?{filters}") }) { "← Newest" }
            }
            @if let Some(next) = &next { a rel="next" href=(next) { "Older entries →" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn a_day_range_includes_the_whole_last_day() {
        let query = AuditQuery { from: "2026-12-01".into(), to: "2026-12-05".into(), ..Default::default() };
        let filter = Filter::parse(&query).unwrap();
        assert_eq!(filter.from, Some(at("2026-12-01 00:00")));
        assert_eq!(filter.until, Some(at("2026-12-06 00:00")));
        let minutes =
            AuditQuery { from: "2026-12-05T14:30".into(), to: "2026-12-05T14:30".into(), ..Default::default() };
        let filter = Filter::parse(&minutes).unwrap();
        assert_eq!(filter.until, Some(at("2026-12-05 14:31")));
    }

    #[test]
    fn bad_times_and_backward_ranges_are_refused_in_words() {
        let query = AuditQuery { from: "yesterday".into(), to: "2026-13-01".into(), ..Default::default() };
        let why = Filter::parse(&query).unwrap_err();
        assert!(why.starts_with("From: \"yesterday\" is not a date") && why.contains("To: \"2026-13-01\""), "{why}");
        let backward = AuditQuery { from: "2026-12-05".into(), to: "2026-12-01".into(), ..Default::default() };
        assert!(Filter::parse(&backward).unwrap_err().contains("ends before it starts"));
    }

    #[test]
    fn filters_are_carried_trimmed_and_without_the_cursor() {
        let query = AuditQuery {
            actor: " panel:alice ".into(),
            action: "admin.".into(),
            before: Some(7),
            ..Default::default()
        };
        assert_eq!(query.filters(), "actor=panel%3Aalice&action=admin.");
        assert_eq!(Filter::parse(&query).unwrap().actor.as_deref(), Some("panel:alice"));
    }
}
