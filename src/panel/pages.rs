//! The panel's handlers: each finds the signed-in admin, checks a form's CSRF token and origin,
//! calls one service, and renders a page or redirects.

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::Markup;
use serde::Deserialize;

use super::people;
use super::signin::{self, Admin, SignInError};
use super::store::{self, Search};
use super::views::{self, Outcome, Section};
use super::{assets, PanelError};
use crate::admin::{self, AdminError, Transition};
use crate::db::tenants::{self, Tenant};
use crate::lifecycle::{LifecycleError, State};
use crate::scim::fold::fold;
use crate::scim::user_name::user_name_key;
use crate::state::AppState;

pub(super) type Shared = web::Data<AppState>;

/// People per page of the list.
const PAGE: i64 = 50;

pub fn html(status: StatusCode, body: Markup) -> HttpResponse {
    HttpResponse::build(status).content_type(ContentType::html()).body(body.into_string())
}

pub(super) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

/// Whether cookies must be Secure: when clients reach Roster over https.
fn secure(state: &AppState) -> bool {
    state.settings.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
}

/// The session cookie's name; over https the `__Host-` prefix binds it to this host and path `/`.
fn cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        "__Host-roster_admin"
    } else {
        "roster_admin"
    }
}

/// The `Set-Cookie` value of the session: HttpOnly, SameSite=Strict, Secure over https; no
/// Max-Age, so it ends with the browser too (the server ends it sooner, see `signin`).
fn session_cookie(state: &AppState, value: &str) -> String {
    let secure = if secure(state) { "; Secure" } else { "" };
    format!("{}={value}; Path=/; HttpOnly; SameSite=Strict{secure}", cookie_name(state))
}

/// The session secret from the request's `Cookie` header.
fn session_secret(req: &HttpRequest, state: &AppState) -> Option<String> {
    let name = cookie_name(state);
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// The admin whose session cookie came with the request. Found by a read: a made-up cookie
/// never queues on the writer (on SQLite, the one SCIM writes wait for); only an open session
/// is marked used, at most once a minute.
pub(super) async fn signed_in(req: &HttpRequest, state: &Shared) -> Result<Admin, PanelError> {
    let secret = session_secret(req, state).ok_or(SignInError::SignedOut)?;
    let now = state.clock.now();
    let admin = state.db.run_short(move |conn| signin::authenticate(conn, &secret, now)).await?;
    if admin.stale(now) {
        let touched = admin.clone();
        state.db.write(move |conn| signin::touch(conn, &touched, now)).await?;
    }
    Ok(admin)
}

/// The origin of a URL (RFC 6454 §4): its scheme and host in lower case and its port, the
/// scheme's default when none is written; so `https://Roster.example:443/base` is the origin a
/// browser sends as `https://roster.example`.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn parse(url: &str) -> Option<Origin> {
        let uri: actix_web::http::Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let port = match (uri.port_u16(), scheme.as_str()) {
            (Some(port), _) => port,
            (None, "https") => 443,
            (None, "http") => 80,
            (None, _) => return None,
        };
        Some(Origin { host: uri.host()?.to_ascii_lowercase(), scheme, port })
    }
}

/// A form post is the admin's own when it carries the session's CSRF token and, when the browser
/// says where it comes from (`Origin`, which every current browser sends on a POST, and
/// `Sec-Fetch-Site`), it comes from this panel.
pub(super) fn check_form(
    req: &HttpRequest,
    state: &AppState,
    admin: Option<&Admin>,
    csrf: &str,
) -> Result<(), PanelError> {
    let site = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|site| site != "same-origin" && site != "none") {
        return Err(PanelError::Forged);
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let sent = origin.to_str().ok().and_then(Origin::parse);
        if sent.is_none() || sent != Origin::parse(&state.origin.scim_base(req)) {
            return Err(PanelError::Forged);
        }
    }
    match admin {
        Some(admin) if signin::same_token(csrf, &admin.csrf) => Ok(()),
        Some(_) => Err(PanelError::Forged),
        None => Ok(()),
    }
}

/// The tenants an all-tenants admin may switch between (none for the others).
async fn switchable(state: &Shared, admin: &Admin) -> Result<Vec<Tenant>, PanelError> {
    if !admin.session.all_tenants {
        return Ok(Vec::new());
    }
    Ok(state.db.run(tenants::list).await?)
}

pub(super) async fn render(
    state: &Shared,
    admin: &Admin,
    status: StatusCode,
    title: &str,
    section: Section,
    body: Markup,
) -> Result<HttpResponse, PanelError> {
    let tenants = switchable(state, admin).await?;
    Ok(html(status, views::page(title, Some((admin, &tenants)), section, body)))
}

pub async fn home() -> HttpResponse {
    see_other("/admin/people")
}

pub async fn css(req: HttpRequest) -> HttpResponse {
    assets::CSS.respond(&req)
}

pub async fn js(req: HttpRequest) -> HttpResponse {
    assets::JS.respond(&req)
}

pub async fn not_found() -> Result<HttpResponse, PanelError> {
    Err(PanelError::NotFound("There is no page at this address.".into()))
}

#[derive(Deserialize)]
pub struct TokenForm {
    token: Option<String>,
}

/// Where a request without an open session is sent.
pub const SIGNED_OUT: &str = "/admin/signin?ended=1";

#[derive(Deserialize)]
pub struct SigninQuery {
    token: Option<String>,
    ended: Option<String>,
}

/// The page a sign-in link opens: a button that spends the link. Following the link alone does
/// not, so a link preview or a scanner that fetches it cannot use it up. Without a link, how to
/// get one, and after a session ended, that it did.
pub async fn signin_form(query: web::Query<SigninQuery>) -> HttpResponse {
    let token = query.token.as_deref().filter(|t| !t.is_empty());
    let ended = token.is_none() && query.ended.is_some();
    let signed_out = SignInError::SignedOut.to_string();
    let (title, notice) = if ended { ("Signed out", Some(signed_out.as_str())) } else { ("Sign in", None) };
    html(StatusCode::OK, views::page(title, None, Section::None, views::signin_page(token, notice)))
}

pub async fn signin(req: HttpRequest, state: Shared, form: web::Form<TokenForm>) -> Result<HttpResponse, PanelError> {
    check_form(&req, &state, None, "")?;
    let token = form.into_inner().token.unwrap_or_default();
    let now = state.clock.now();
    // A read first, so that made-up tokens never queue on the writer.
    let probe = token.clone();
    if !state.db.run_short(move |conn| signin::usable(conn, &probe, now)).await? {
        return Err(SignInError::BadLink.into());
    }
    let secret = state.db.write(move |conn| signin::redeem(conn, &token, now)).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin/people"))
        .insert_header((header::SET_COOKIE, session_cookie(&state, &secret)))
        .finish())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

fn signed_out_response(state: &AppState) -> HttpResponse {
    let gone = format!("{}; Max-Age=0", session_cookie(state, ""));
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin/signin"))
        .insert_header((header::SET_COOKIE, gone))
        .finish()
}

pub async fn signout(req: HttpRequest, state: Shared, form: web::Form<CsrfForm>) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    check_form(&req, &state, Some(&admin), &form.csrf)?;
    let now = state.clock.now();
    state
        .db
        .write(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                store::revoke_session(conn, &admin.session.id, None, now)?;
                signin::audit(conn, &admin.session.home_tenant_id, &admin.actor(), "admin.sign_out", now)?;
                Ok::<_, PanelError>(())
            })
        })
        .await?;
    Ok(signed_out_response(&state))
}

#[derive(Deserialize)]
pub struct TenantForm {
    csrf: String,
    tenant: String,
}

pub async fn switch_tenant(
    req: HttpRequest,
    state: Shared,
    form: web::Form<TenantForm>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    check_form(&req, &state, Some(&admin), &form.csrf)?;
    if !admin.session.all_tenants {
        return Err(PanelError::BadRequest(
            "This session was opened with a link for one tenant; switching needs a link made with --all-tenants."
                .into(),
        ));
    }
    let name = form.into_inner().tenant;
    let now = state.clock.now();
    state
        .db
        .write(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                let tenant = tenants::by_name(conn, &name)?
                    .ok_or_else(|| PanelError::NotFound(format!("There is no tenant named {name:?}.")))?;
                store::switch_tenant(conn, &admin.session.id, &tenant.id)?;
                signin::audit(conn, &tenant.id, &admin.actor(), "admin.switch_tenant", now)?;
                Ok::<_, PanelError>(())
            })
        })
        .await?;
    Ok(see_other("/admin/people"))
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    state: Option<String>,
    after: Option<i64>,
    done: Option<String>,
}

pub async fn people(req: HttpRequest, state: Shared, query: web::Query<ListQuery>) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let query = query.into_inner();
    let filter: Option<State> = match query.state.as_deref().unwrap_or("") {
        "" => None,
        s => Some(s.parse().map_err(|_| PanelError::BadRequest(format!("{s:?} is not a lifecycle state.")))?),
    };
    let q = query.q.as_deref().unwrap_or("").trim().to_owned();
    let tenant_id = admin.tenant.id.clone();
    let after = query.after.unwrap_or(0);
    let searching = !q.is_empty();
    let q_for_db = q.clone();
    let (total, mut rows, limited) = state
        .db
        .run(move |conn| {
            let total = tenants::resource_count(conn, &tenant_id, "User")?;
            if searching {
                let (key, folded) = (user_name_key(&q_for_db), fold(&q_for_db));
                let search = Search { user_name_key: &key, folded: &folded, exact: &q_for_db };
                let found = store::search_people(conn, &tenant_id, &search, filter, PAGE + 1)?;
                Ok::<_, PanelError>((total, found.rows, found.more))
            } else {
                Ok((total, store::people_page(conn, &tenant_id, filter, after, PAGE + 1)?, false))
            }
        })
        .await?;
    let more = limited || rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let next = (more && !searching).then(|| {
        let mut url = form_urlencoded::Serializer::new(String::new());
        if let Some(state) = filter {
            url.append_pair("state", state.as_str());
        }
        url.append_pair("after", &rows.last().map_or(0, |r| r.pk).to_string());
        format!("/admin/people?{}", url.finish())
    });
    let notice = match query.done.as_deref() {
        Some("deleted") => Some("The account was deleted."),
        Some("deleted-deactivate-only") => Some(
            "Deleted under the tenant's deactivate-only policy: the account is deactivated and gone from SCIM and \
             from this list; its content stays.",
        ),
        _ => None,
    };
    let list = views::PeopleList {
        tenant: &admin.tenant,
        total,
        query: &q,
        state: filter,
        rows: &rows,
        next,
        more: more && searching,
        notice,
    };
    render(&state, &admin, StatusCode::OK, "People", Section::People, views::people_list(&list)).await
}

#[derive(Deserialize)]
pub struct PersonQuery {
    done: Option<String>,
}

fn done_message(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "deactivate" => "Deactivated: every session was revoked and sign-in is blocked.",
        "reactivate" => "Reactivated.",
        "remove-profile-fields" => "Profile fields removed: the account is now a Former Member.",
        _ => return None,
    })
}

async fn person_page(
    state: &Shared,
    admin: &Admin,
    id: String,
    status: StatusCode,
    outcome: Outcome<'_>,
) -> Result<HttpResponse, PanelError> {
    let now = state.clock.now();
    let tenant_id = admin.tenant.id.clone();
    let shown = id.clone();
    let person = state.db.run(move |conn| people::person(conn, &tenant_id, &id, now)).await?.ok_or_else(|| {
        PanelError::NotFound(format!("Tenant {} has no account with id {shown:?}.", admin.tenant.name))
    })?;
    let title = if person.row.lifecycle_state == State::FormerMember {
        crate::lifecycle::FORMER_MEMBER_NAME.to_owned()
    } else {
        person.row.user_name.clone()
    };
    let body = views::person_page(admin, &person, now, &outcome);
    render(state, admin, status, &title, Section::People, body).await
}

pub async fn person(
    req: HttpRequest,
    state: Shared,
    path: web::Path<String>,
    query: web::Query<PersonQuery>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let outcome = Outcome { done: done_message(query.done.as_deref()), refused: None };
    person_page(&state, &admin, path.into_inner(), StatusCode::OK, outcome).await
}

#[derive(Deserialize)]
pub struct ActionForm {
    csrf: String,
    confirm: Option<String>,
}

pub async fn act(
    req: HttpRequest,
    state: Shared,
    path: web::Path<(String, String)>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    check_form(&req, &state, Some(&admin), &form.csrf)?;
    let (id, action) = path.into_inner();
    let (transition, confirmed) = match action.as_str() {
        "deactivate" => (Transition::Deactivate, false),
        "reactivate" => (Transition::Reactivate, false),
        "remove-profile-fields" => (Transition::FormerMember, true),
        "delete" => (Transition::Delete, true),
        _ => return Err(PanelError::NotFound(format!("There is no action {action:?}."))),
    };
    if confirmed {
        let tenant_id = admin.tenant.id.clone();
        let lookup = id.clone();
        let row =
            state.db.run(move |conn| Ok::<_, PanelError>(crate::db::users::find(conn, &tenant_id, &lookup)?)).await?;
        let typed = form.confirm.as_deref().unwrap_or("").trim();
        if let Some(row) = row.filter(|row| typed != row.user_name) {
            let refused = format!("Type the userName {:?} exactly to confirm; nothing was changed.", row.user_name);
            let outcome = Outcome { done: None, refused: Some(&refused) };
            return person_page(&state, &admin, id, StatusCode::UNPROCESSABLE_ENTITY, outcome).await;
        }
    }
    let (tenant, actor, now, target) = (admin.tenant.clone(), admin.actor(), state.clock.now(), id.clone());
    let applied = state.db.write(move |conn| admin::apply_as(conn, &tenant, &actor, now, &target, transition)).await;
    match applied {
        // Under `deactivate-only` the account stays, deactivated, but is hidden like a deleted
        // one: its page would answer 404, so the list says what happened.
        Ok(Some(_)) if action == "delete" => Ok(see_other("/admin/people?done=deleted-deactivate-only")),
        Ok(Some(_)) => Ok(see_other(&format!("/admin/people/{}?done={action}", encode(&id)))),
        Ok(None) => Ok(see_other("/admin/people?done=deleted")),
        Err(AdminError::Refused(LifecycleError::Storage(e)) | AdminError::Db(e)) => Err(e.into()),
        Err(AdminError::Refused(e)) => {
            let refused = e.to_string();
            let outcome = Outcome { done: None, refused: Some(&refused) };
            person_page(&state, &admin, id, StatusCode::CONFLICT, outcome).await
        }
        Err(AdminError::NoSuchUser(_) | AdminError::UnknownTenant(_)) => {
            Err(PanelError::NotFound(format!("Tenant {} has no account with id {id:?}.", admin.tenant.name)))
        }
    }
}

fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[derive(Deserialize)]
pub struct SessionsQuery {
    done: Option<String>,
}

/// The sessions an admin may see: those of links for its tenant, or every one for an
/// all-tenants admin.
fn visible_home(admin: &Admin) -> Option<String> {
    (!admin.session.all_tenants).then(|| admin.session.home_tenant_id.clone())
}

pub async fn sessions(
    req: HttpRequest,
    state: Shared,
    query: web::Query<SessionsQuery>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    let home = visible_home(&admin);
    let rows = state.db.run(move |conn| Ok::<_, PanelError>(store::list_sessions(conn, home.as_deref(), 200)?)).await?;
    let notice = (query.done.as_deref() == Some("revoked")).then_some("The session was revoked.");
    let body = views::sessions_page(&admin, &rows, state.clock.now(), notice);
    render(&state, &admin, StatusCode::OK, "Admin sessions", Section::Sessions, body).await
}

pub async fn revoke_session(
    req: HttpRequest,
    state: Shared,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PanelError> {
    let admin = signed_in(&req, &state).await?;
    check_form(&req, &state, Some(&admin), &form.csrf)?;
    let id = path.into_inner();
    let (home, now, actor) = (visible_home(&admin), state.clock.now(), admin.actor());
    let (target, audit_tenant) = (id.clone(), admin.session.home_tenant_id.clone());
    let revoked = state
        .db
        .write(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                let revoked = store::revoke_session(conn, &target, home.as_deref(), now)?;
                if revoked {
                    if let Some(session) = store::session_by_id(conn, &target)? {
                        signin::audit_revocation(conn, &session, &actor, &audit_tenant, now)?;
                    }
                }
                Ok::<_, PanelError>(revoked)
            })
        })
        .await?;
    if !revoked {
        return Err(PanelError::NotFound("There is no open session with this id among yours.".into()));
    }
    if id == admin.session.id {
        return Ok(signed_out_response(&state));
    }
    Ok(see_other("/admin/sessions?done=revoked"))
}

#[cfg(test)]
mod tests {
    use super::Origin;

    #[test]
    fn origins_compare_by_scheme_host_and_port_with_defaults() {
        let panel = Origin::parse("https://Roster.Example:443/idp/scim/v2");
        assert!(panel.is_some());
        assert_eq!(Origin::parse("https://roster.example"), panel);
        assert_ne!(Origin::parse("http://roster.example"), panel);
        assert_ne!(Origin::parse("https://roster.example:8443"), panel);
        assert_ne!(Origin::parse("https://evil.example"), panel);
        assert_eq!(Origin::parse("http://127.0.0.1:8080"), Origin::parse("http://127.0.0.1:8080/scim/v2"));
        assert_eq!(Origin::parse("null"), None);
    }
}
