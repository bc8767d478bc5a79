//! The Settings page: the tenant's lifecycle policy, each setting explained, changed by a form.
//! A change goes through [`tenants::set_policy`], the function `roster tenant set` calls, so the
//! panel and the command line accept and refuse the same values; each setting changed is an
//! audit entry under the admin's name, in the same transaction as the change.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::pages::{check_form, render, see_other, signed_in};
use super::signin::Admin;
use super::views::Section;
use super::PanelError;
use crate::db::records::{self, Audit};
use crate::db::tenants::{self, PolicyChange, Tenant, TenantError, DELETE_POLICIES};
use crate::db::DbError;
use crate::state::AppState;

/// The audit action of a changed setting; `before` and `after` hold `name=value`.
pub const ACTION: &str = "admin.set_policy";

/// The form as sent: text as typed, checkboxes present only when ticked.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SettingsForm {
    csrf: String,
    grace_days: String,
    delete_policy: String,
    former_member_after_days: String,
    delete_after_days: String,
    event_retention_days: String,
    archive_export: Option<String>,
    archive_dir: String,
    archive_hold_hours: String,
    strict_validation: Option<String>,
}

impl SettingsForm {
    /// The form filled with the tenant's settings as they are.
    fn of(tenant: &Tenant) -> SettingsForm {
        let days = |d: Option<i32>| d.map(|d| d.to_string()).unwrap_or_default();
        let tick = |on: bool| on.then(|| "on".to_owned());
        SettingsForm {
            csrf: String::new(),
            grace_days: tenant.grace_days.to_string(),
            delete_policy: tenant.delete_policy.clone(),
            former_member_after_days: days(tenant.former_member_after_days),
            delete_after_days: days(tenant.delete_after_days),
            event_retention_days: days(tenant.event_retention_days),
            archive_export: tick(tenant.archive_export),
            archive_dir: tenant.archive_dir.clone().unwrap_or_default(),
            archive_hold_hours: tenant.archive_hold_hours.to_string(),
            strict_validation: tick(tenant.strict_validation),
        }
    }
}

/// A whole number typed in a field; `label` names the field in the refusal.
fn number(label: &str, text: &str) -> Result<i32, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{label} needs a number."));
    }
    text.parse().map_err(|_| format!("{label}: {text:?} is not a whole number."))
}

/// A number of days, or empty for "off".
fn optional_days(label: &str, text: &str) -> Result<Option<i32>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    number(label, text).map(Some)
}

/// One setting that the form changes, before and after, as the audit log records it:
/// `name=value`, the name as `roster tenant list` prints it.
#[derive(Debug, PartialEq)]
struct Changed {
    before: String,
    after: String,
}

/// What the form asks to change against `tenant`: only the settings whose value differs, so that
/// a tenant whose export waits for a destination can still change its other settings (the rule
/// `set_policy` applies only to changes about the archive). Refuses text that is not a number,
/// naming the field; the ranges and the other rules are `set_policy`'s.
fn change_of(form: &SettingsForm, tenant: &Tenant) -> Result<(PolicyChange, Vec<Changed>), String> {
    let grace = number("Grace period", &form.grace_days);
    let former = optional_days("Former Member after", &form.former_member_after_days);
    let delete = optional_days("Delete after", &form.delete_after_days);
    let events = optional_days("Keep events", &form.event_retention_days);
    let hold = number("Archive hold", &form.archive_hold_hours);
    let problems: Vec<&str> = [grace.as_ref().err(), former.as_ref().err(), delete.as_ref().err()]
        .into_iter()
        .chain([events.as_ref().err(), hold.as_ref().err()])
        .flatten()
        .map(String::as_str)
        .collect();
    if !problems.is_empty() {
        return Err(problems.join(" "));
    }
    let (grace, former, delete, events, hold) = (
        grace.unwrap_or_default(),
        former.unwrap_or_default(),
        delete.unwrap_or_default(),
        events.unwrap_or_default(),
        hold.unwrap_or_default(),
    );
    let export = form.archive_export.is_some();
    let strict = form.strict_validation.is_some();
    let dir = Some(form.archive_dir.trim().to_owned()).filter(|d| !d.is_empty());
    let policy = form.delete_policy.trim().to_owned();

    let mut change = PolicyChange::default();
    let mut changed = Vec::new();
    let mut note = |name: &'static str, before: String, after: String| {
        changed.push(Changed { before: format!("{name}={before}"), after: format!("{name}={after}") });
    };
    let days = |d: Option<i32>| d.map_or("off".to_owned(), |d| d.to_string());
    if grace != tenant.grace_days {
        note("grace_days", tenant.grace_days.to_string(), grace.to_string());
        change.grace_days = Some(grace);
    }
    if policy != tenant.delete_policy {
        note("delete_policy", tenant.delete_policy.clone(), policy.clone());
        change.delete_policy = Some(policy);
    }
    if former != tenant.former_member_after_days {
        note("former_member_after_days", days(tenant.former_member_after_days), days(former));
        change.former_member_after_days = Some(former);
    }
    if delete != tenant.delete_after_days {
        note("delete_after_days", days(tenant.delete_after_days), days(delete));
        change.delete_after_days = Some(delete);
    }
    if events != tenant.event_retention_days {
        note("event_retention_days", days(tenant.event_retention_days), days(events));
        change.event_retention_days = Some(events);
    }
    if dir != tenant.archive_dir {
        let shown = |d: &Option<String>| d.clone().unwrap_or_else(|| "none".to_owned());
        note("archive_dir", shown(&tenant.archive_dir), shown(&dir));
        change.archive_dir = Some(dir);
    }
    if export != tenant.archive_export {
        note("archive_export", tenant.archive_export.to_string(), export.to_string());
        change.archive_export = Some(export);
    }
    if hold != tenant.archive_hold_hours {
        note("archive_hold_hours", tenant.archive_hold_hours.to_string(), hold.to_string());
        change.archive_hold_hours = Some(hold);
    }
    if strict != tenant.strict_validation {
        note("strict_validation", tenant.strict_validation.to_string(), strict.to_string());
        change.strict_validation = Some(strict);
    }
    Ok((change, changed))
}

/// Why a change was not saved.
#[derive(Debug, thiserror::Error)]
enum SaveError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Panel(#[from] PanelError),
}

impl From<DbError> for SaveError {
    fn from(e: DbError) -> Self {
        SaveError::Panel(e.into())
    }
}

impl From<diesel::result::Error> for SaveError {
    fn from(e: diesel::result::Error) -> Self {
        SaveError::Panel(e.into())
    }
}

impl From<TenantError> for SaveError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::Db(e) => e.into(),
            // The command line's words name its flag; the panel's name its field.
            TenantError::ArchiveWithoutDestination => SaveError::Refused(
                "Archive export needs a destination: fill in the archive directory (an existing directory on the \
                 server) to turn export on. Exports are written there before a deleted account's data leaves \
                 Roster."
                    .to_owned(),
            ),
            other => SaveError::Refused(other.to_string()),
        }
    }
}

#[derive(Deserialize)]
pub struct SettingsQuery {
    done: Option<String>,
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<SettingsQuery>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let notice = match query.done.as_deref() {
        Some("saved") => Some("Saved. The new policy applies from the next request and the next sweep."),
        Some("unchanged") => Some("Nothing was changed: the form held the settings as they were."),
        _ => None,
    };
    let body = settings_page(&admin, &SettingsForm::of(&admin.tenant), notice, None);
    render(&state, &admin, StatusCode::OK, "Settings", Section::Settings, body).await
}

pub async fn save(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    check_form(&req, &state, Some(&admin), &form.csrf)?;
    let form = form.into_inner();
    let (tenant_id, actor, now, sent) = (admin.tenant.id.clone(), admin.actor(), state.clock.now(), form.clone());
    let saved = state
        .db
        .write(move |conn| {
            // Compared with the policy as it is inside the transaction, not as the page showed it.
            let tenant = tenants::by_id(conn, &tenant_id)?
                .ok_or_else(|| PanelError::NotFound("This tenant no longer exists.".into()))?;
            let (change, changed) = change_of(&sent, &tenant).map_err(SaveError::Refused)?;
            if changed.is_empty() {
                return Ok(false);
            }
            tenants::set_policy(conn, &tenant.name, &change)?;
            for c in &changed {
                let entry = Audit {
                    tenant_id: &tenant.id,
                    actor: &actor,
                    action: ACTION,
                    user_id: "",
                    before: Some(&c.before),
                    after: Some(&c.after),
                    at: now,
                };
                records::audit(conn, &entry)?;
            }
            Ok::<_, SaveError>(true)
        })
        .await;
    match saved {
        Ok(true) => Ok(see_other("/admin/settings?done=saved")),
        Ok(false) => Ok(see_other("/admin/settings?done=unchanged")),
        Err(SaveError::Refused(why)) => {
            let body = settings_page(&admin, &form, None, Some(&why));
            render(&state, &admin, StatusCode::UNPROCESSABLE_ENTITY, "Settings", Section::Settings, body).await
        }
        Err(SaveError::Panel(e)) => Err(e),
    }
}

/// A number field with its explanation, read out with it (`aria-describedby`).
fn number_field(name: &str, label: &str, value: &str, unit: &str, help: Markup) -> Markup {
    let help_id = format!("{name}-help");
    html! {
        div.setting {
            label for=(name) { (label) " " code.setting-name { (name) } }
            div.with-unit {
                input id=(name) name=(name) type="text" inputmode="numeric" value=(value) size="6"
                    autocomplete="off" aria-describedby=(help_id);
                span { (unit) }
            }
            p.help id=(help_id) { (help) }
        }
    }
}

fn checkbox(name: &str, label: &str, checked: bool, help: Markup) -> Markup {
    let help_id = format!("{name}-help");
    html! {
        div.setting {
            div.check {
                input id=(name) name=(name) type="checkbox" checked[checked] aria-describedby=(help_id);
                label for=(name) { (label) " " code.setting-name { (name) } }
            }
            p.help id=(help_id) { (help) }
        }
    }
}

fn delete_policy_explanation(policy: &str) -> &'static str {
    match policy {
        "require-deactivated" => {
            "An active account cannot be deleted: it must be deactivated first (SCIM DELETE answers 409), as the \
             product's own admin panel behaves."
        }
        "deactivate-only" => {
            "Deleting only deactivates: the account disappears from SCIM and from this panel, but its profile and \
             content stay (a soft delete)."
        }
        _ => {
            "Deleting an active account deactivates it and deletes it at once, with everything it wrote. Only a \
             tombstone without personal data remains."
        }
    }
}

fn settings_page(admin: &Admin, values: &SettingsForm, notice: Option<&str>, refused: Option<&str>) -> Markup {
    let tenant = &admin.tenant;
    html! {
        h1 { "Settings" }
        p.lead { "The lifecycle policy of tenant " strong { (tenant.name) } ". The same settings as "
            code { "roster tenant set " (tenant.name) } "; every change is recorded in the audit log under your name." }
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        @if let Some(refused) = refused {
            div.refusal role="alert" { h2 { "Not saved" } p { (refused) } p { "Nothing was changed." } }
        }
        form.settings method="post" action="/admin/settings" {
            input type="hidden" name="csrf" value=(admin.csrf);
            fieldset {
                legend { "Deactivation" }
                (number_field("grace_days", "Grace period", &values.grace_days, "days", html! {
                    "How long a deactivated person keeps their group memberships, and the earliest time their "
                    "profile fields may be removed. Reactivating within it restores everything. 0 to 36500 days."
                }))
            }
            fieldset {
                legend { "Deletion" }
                p.help { "What deleting an active account does (SCIM DELETE, the panel's Delete, retention)." }
                @for policy in DELETE_POLICIES {
                    @let id = format!("delete_policy-{policy}");
                    div.radio {
                        input id=(id) type="radio" name="delete_policy" value=(policy)
                            checked[values.delete_policy == policy] aria-describedby={ (id) "-help" };
                        label for=(id) { code { (policy) } }
                        p.help id={ (id) "-help" } { (delete_policy_explanation(policy)) }
                    }
                }
            }
            fieldset {
                legend { "Retention" }
                p.help { "Steps the background sweep takes by itself, counted from deactivation. Leave a field empty to turn its step off." }
                (number_field("former_member_after_days", "Former Member after", &values.former_member_after_days, "days", html! {
                    "Removes the profile fields of accounts deactivated this long: they become Former Members, "
                    "irreversibly. Never before the grace period is over. Empty: never by itself."
                }))
                (number_field("delete_after_days", "Delete after", &values.delete_after_days, "days", html! {
                    "Deletes accounts deactivated this long, with everything they wrote (an archive export first "
                    "when it is on). Empty: never by itself."
                }))
                (number_field("event_retention_days", "Keep events", &values.event_retention_days, "days", html! {
                    "How long lifecycle events stay in the feed before the sweep purges them; readers of the feed "
                    "need at least a day. Empty: kept for good."
                }))
            }
            fieldset {
                legend { "Archive export" }
                (checkbox("archive_export", "Export before deleting", values.archive_export.is_some(), html! {
                    "Before an account is deleted, its full profile and everything it wrote are exported to the "
                    "archive destination (a directory or a URL), after which the data leaves Roster. Needs one."
                }))
                div.setting {
                    label for="archive_dir" { "Archive directory " code.setting-name { "archive_dir" } }
                    input id="archive_dir" name="archive_dir" type="text" value=(values.archive_dir)
                        autocomplete="off" spellcheck="false" aria-describedby="archive_dir-help";
                    p.help id="archive_dir-help" { "An absolute path to an existing directory on the server; one "
                        "JSON Lines file per deleted account is written there. Setting one replaces an archive URL. "
                        "Empty: no directory (refused while export is on and no URL is set)." }
                }
                @if let Some(url) = &admin.tenant.archive_url {
                    div.setting {
                        p { "Archive URL " code.setting-name { "archive_url" } ": " code { (url) } }
                        p.help { "Exports are POSTed there, signed, and leave Roster once it answers 2xx. It is set "
                            "with " code { "roster tenant set --archive-url" } ", which prints its signing secret once." }
                    }
                }
                (number_field("archive_hold_hours", "Archive hold", &values.archive_hold_hours, "hours", html! {
                    "How long an export may wait for its destination (unreachable, full) before it is "
                    "destroyed and an archive.expired event raised. 1 to 8760 hours (a year)."
                }))
            }
            fieldset {
                legend { "Validation" }
                (checkbox("strict_validation", "Strict validation", values.strict_validation.is_some(), html! {
                    "Refuses, with 400, values that break only a SHOULD of RFC 7643 (an email that is not an "
                    "address, a phone number that is not a tel: URI). Off: such values are stored as sent, which "
                    "is what identity providers expect."
                }))
            }
            button.primary type="submit" { "Save changes" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        Tenant {
            id: "t".into(),
            name: "acme".into(),
            created_at: chrono::NaiveDateTime::default(),
            grace_days: 4,
            delete_policy: "deactivate-then-delete".into(),
            former_member_after_days: None,
            delete_after_days: Some(30),
            archive_export: false,
            strict_validation: false,
            event_retention_days: Some(90),
            archive_dir: None,
            archive_hold_hours: 168,
            archive_url: None,
            archive_allow_private: false,
            archive_secret: None,
        }
    }

    #[test]
    fn an_unchanged_form_changes_nothing() {
        let (change, changed) = change_of(&SettingsForm::of(&tenant()), &tenant()).unwrap();
        assert!(changed.is_empty());
        assert!(change.grace_days.is_none() && change.archive_export.is_none() && change.archive_dir.is_none());
    }

    #[test]
    fn only_the_settings_that_differ_are_changed_and_named() {
        let form =
            SettingsForm { grace_days: " 0 ".into(), delete_after_days: String::new(), ..SettingsForm::of(&tenant()) };
        let (change, changed) = change_of(&form, &tenant()).unwrap();
        assert_eq!(change.grace_days, Some(0));
        assert_eq!(change.delete_after_days, Some(None), "an empty field turns the step off");
        assert!(change.delete_policy.is_none() && change.archive_hold_hours.is_none());
        assert_eq!(
            changed,
            vec![
                Changed { before: "grace_days=4".into(), after: "grace_days=0".into() },
                Changed { before: "delete_after_days=30".into(), after: "delete_after_days=off".into() },
            ]
        );
    }

    #[test]
    fn text_that_is_not_a_number_is_refused_naming_each_field() {
        let form = SettingsForm {
            grace_days: "four".into(),
            archive_hold_hours: String::new(),
            ..SettingsForm::of(&tenant())
        };
        assert_eq!(
            change_of(&form, &tenant()).unwrap_err(),
            "Grace period: \"four\" is not a whole number. Archive hold needs a number."
        );
    }
}
