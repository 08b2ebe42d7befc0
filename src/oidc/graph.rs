//! The requests to Microsoft Graph for a user's groups, page after page, with the login's
//! access token. What the answers mean is decided in `entra.rs`; this only asks.

use openidconnect::reqwest;
use reqwest::header::ACCEPT;
use url::Url;

use super::entra::{first_page_url, parse_page, GraphError, GraphGroup, Pages, MAX_PAGE_BYTES};
use super::error_chain;

/// Every group of the user the access token is for, following `@odata.nextLink` on Graph's
/// origin for at most `entra::MAX_PAGES` pages. `http` is the provider's client: its timeouts,
/// and no redirects (a redirect would take the token elsewhere). Errors never hold the token.
pub(crate) async fn fetch_groups(
    http: &reqwest::Client,
    graph_url: &Url,
    access_token: &str,
) -> Result<(Vec<GraphGroup>, usize), GraphError> {
    let mut pages = Pages::default();
    let mut next = Some(first_page_url(graph_url));
    while let Some(url) = next {
        let (status, body) = get_page(http, url, access_token).await?;
        next = pages.add(graph_url, parse_page(status, &body)?)?;
    }
    Ok((pages.groups, pages.read))
}

async fn get_page(
    http: &reqwest::Client,
    url: Url,
    access_token: &str,
) -> Result<(u16, Vec<u8>), GraphError> {
    let mut response = http
        .get(url)
        .bearer_auth(access_token)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|err| GraphError::Unreachable(format!("request failed: {}", error_chain(&err))))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| {
        GraphError::Unreachable(format!("reading the answer failed: {}", error_chain(&err)))
    })? {
        if body.len() + chunk.len() > MAX_PAGE_BYTES {
            return Err(GraphError::Invalid(format!(
                "a page is larger than {MAX_PAGE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}
