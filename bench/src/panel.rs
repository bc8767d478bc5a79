//! Roster's Admin Panel (`/admin`), for the `panel-people` and `panel-person` scenarios: signing
//! in with a one-time link that `roster admin link` printed, and finding a page of the people
//! list deep in it. The pages are HTML; the scenarios time whole pages as a browser fetches them.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::client::{encode, Client, ClientKind};

/// Spends the link (`http://HOST:PORT/admin/signin?token=…`) as the panel's Sign in button does
/// and returns a client for `http://HOST:PORT/admin` carrying the session cookie.
pub async fn sign_in(kind: ClientKind, link: &str, token: &str, timeout: Duration) -> Result<Client> {
    let (page, secret) = link.split_once("?token=").ok_or_else(|| anyhow!("{link:?} is not a sign-in link"))?;
    let base = page.strip_suffix("/signin").ok_or_else(|| anyhow!("{link:?} is not a sign-in link"))?;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(timeout).build()?;
    let res = http
        .post(page)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", encode(secret)))
        .send()
        .await
        .with_context(|| format!("signing in at {page}"))?;
    if res.status().as_u16() != 303 {
        bail!("signing in answered HTTP {} (a link works once, for a short time)", res.status());
    }
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow!("signing in set no cookie"))?
        .to_owned();
    Client::new(kind, base, token, timeout).await?.with_cookie(&cookie)
}

/// Follows the people list's "Next page" links (untimed) `pages` times from the first page and
/// returns the path of the page reached (relative to `/admin`) and a note on how.
pub async fn later_page(panel: &Client, pages: usize) -> Result<(String, String)> {
    let started = Instant::now();
    let mut conn = panel.conn();
    let mut path = "/people".to_owned();
    for page in 0..pages {
        let res = conn.get(&path).await?;
        if res.status != 200 {
            bail!("page {} of the people list answered HTTP {}", page + 1, res.status);
        }
        let html = String::from_utf8_lossy(&res.body);
        let Some(next) = next_link(&html) else {
            bail!("page {} of the people list has no next page: fewer than {} pages", page + 1, pages + 1);
        };
        path = next.strip_prefix("/admin").unwrap_or(&next).to_owned();
    }
    Ok((path, format!("page {} of the list, reached in {:.1} s", pages + 1, started.elapsed().as_secs_f64())))
}

/// The `href` of the page's `rel="next"` link, unescaped.
fn next_link(html: &str) -> Option<String> {
    let at = html.find(r#"rel="next""#)?;
    let rest = &html[at..];
    let start = rest.find(r#"href=""#)? + r#"href=""#.len();
    let end = rest[start..].find('"')?;
    Some(rest[start..start + end].replace("&amp;", "&"))
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn the_next_link_is_read_from_the_pager() {
        let html = r#"<nav class="pager"><a rel="next" href="/admin/people?after=50&amp;state=active">Next</a></nav>"#;
        assert_eq!(next_link(html).as_deref(), Some("/admin/people?after=50&state=active"));
        assert_eq!(next_link("<nav></nav>"), None);
    }
}
