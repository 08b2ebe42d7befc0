//! A real sign-in against the test IdP, as a browser without JavaScript would do it:
//! /oauth2/start -> IdP -> login form -> POST user/password -> IdP -> /oauth2/callback.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use url::Url;

const MAX_HOPS: usize = 12;
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

struct Page {
    url: Url,
    status: u16,
    location: Option<Url>,
    headers: HeaderMap,
    body: String,
}

async fn fetch(
    client: &reqwest::Client,
    url: &Url,
    form: Option<&[(String, String)]>,
) -> anyhow::Result<Page> {
    let mut request = match form {
        Some(fields) => client.post(url.clone()).form(fields),
        None => client.get(url.clone()),
    };
    request = request.header("accept", BROWSER_ACCEPT);
    let response = request
        .send()
        .await
        .with_context(|| format!("request to {url} failed"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let location = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| url.join(l))
        .transpose()
        .with_context(|| format!("bad Location from {url}"))?;
    let body = response.text().await.unwrap_or_default();
    Ok(Page {
        url: url.clone(),
        status,
        location,
        headers,
        body,
    })
}

/// The value of our session cookie if this response sets it.
fn session_cookie(page: &Page, cookie_name: &str) -> Option<String> {
    page.headers.get_all(SET_COOKIE).iter().find_map(|value| {
        let text = value.to_str().ok()?;
        let pair = text.split(';').next()?;
        let (name, value) = pair.split_once('=')?;
        (name.trim() == cookie_name && !value.is_empty()).then(|| value.to_string())
    })
}

/// The action and the named inputs of the first `<form>` of a page.
fn first_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<form")?;
    let tag_end = start + lower[start..].find('>')?;
    let action = attribute(&html[start..=tag_end], "action").unwrap_or_default();
    let end = lower[tag_end..]
        .find("</form")
        .map_or(html.len(), |i| tag_end + i);
    let mut fields = Vec::new();
    let mut cursor = tag_end;
    while let Some(found) = lower[cursor..end].find("<input") {
        let open = cursor + found;
        let close = open + lower[open..].find('>')?;
        let tag = &html[open..=close];
        let kind = attribute(tag, "type").unwrap_or_default();
        if let Some(name) = attribute(tag, "name") {
            if !kind.eq_ignore_ascii_case("submit") {
                fields.push((name, attribute(tag, "value").unwrap_or_default()));
            }
        }
        cursor = close + 1;
    }
    Some((action, fields))
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut search = 0;
    while let Some(found) = lower[search..].find(name) {
        let at = search + found;
        search = at + name.len();
        let preceded = at > 0 && lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = lower[at + name.len()..].trim_start();
        if !preceded || !rest.starts_with('=') {
            continue;
        }
        let value_part = tag[tag.len() - rest.len() + 1..].trim_start();
        let value = match value_part.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let inner = &value_part[1..];
                &inner[..inner.find(quote).unwrap_or(inner.len())]
            }
            _ => {
                let stop = value_part
                    .find(|c: char| c.is_ascii_whitespace() || c == '>')
                    .unwrap_or(value_part.len());
                &value_part[..stop]
            }
        };
        return Some(
            value
                .replace("&quot;", "\"")
                .replace("&#x2F;", "/")
                .replace("&amp;", "&"),
        );
    }
    None
}

/// Signs `user` in through portcullis at `base` (http://127.0.0.1:PORT) and returns the value
/// of its session cookie `cookie_name`.
pub async fn sign_in(
    base: &str,
    cookie_name: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .build()?;
    let start = Url::parse(&format!("{base}/oauth2/start?rd={base}/"))?;
    let mut trace = Vec::new();
    let mut page = fetch(&client, &start, None).await?;
    let mut submitted = false;
    for _ in 0..MAX_HOPS {
        trace.push(format!(
            "{} {} -> {}",
            page.url,
            page.status,
            page.location.as_ref().map(Url::as_str).unwrap_or("")
        ));
        if let Some(cookie) = session_cookie(&page, cookie_name) {
            return Ok(cookie);
        }
        if let (300..=399, Some(next)) = (page.status, page.location.clone()) {
            page = fetch(&client, &next, None).await?;
            continue;
        }
        if page.status == 200 && page.body.contains("name=\"password\"") && !submitted {
            let (action, mut fields) =
                first_form(&page.body).ok_or_else(|| anyhow!("no form on the IdP login page"))?;
            for (name, value) in [("login", user), ("password", password)] {
                match fields.iter_mut().find(|(n, _)| n == name) {
                    Some(field) => field.1 = value.to_string(),
                    None => fields.push((name.to_string(), value.to_string())),
                }
            }
            let action = page.url.join(&action)?;
            submitted = true;
            page = fetch(&client, &action, Some(&fields)).await?;
            continue;
        }
        break;
    }
    bail!(
        "signing in as {user} through {base} did not end with a {cookie_name} cookie:\n{}\nlast body: {}",
        trace.join("\n"),
        page.body.chars().take(300).collect::<String>()
    )
}
