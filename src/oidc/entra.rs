//! Microsoft Entra ID's groups overage, free of I/O. A user in more groups than a token holds
//! gets an ID token without `groups` but with a marker saying where they are
//! (`_claim_names.groups` naming a source in `_claim_sources`); the groups are then read from
//! Microsoft Graph (`graph.rs` makes the requests). The marker's own endpoint is the retired
//! Azure AD Graph and is never called: `/v1.0/me/transitiveMemberOf` answers with the same
//! groups (nested ones included, as the token would have listed them) for the login's access
//! token.
//!
//! What is decided here: whether the marker is there, what one page of Graph's answer says
//! (its groups, the next page, or Graph's error), whether a next page may be asked for with
//! the access token (only on Graph's own origin, and only so many), and what replaces the
//! groups claim.

use serde_json::{Map, Value};
use url::Url;

/// The groups of a user: the first page's path under `ENTRA_GRAPH_URL`, group objects only
/// (the cast leaves out directory roles and administrative units), with the two properties
/// portcullis reads.
pub const GROUPS_PATH: &str = "/v1.0/me/transitiveMemberOf/microsoft.graph.group";
pub const GROUPS_QUERY: &str = "$select=id,displayName";

/// At most this many pages are read: Graph pages by 100 objects, so 10,000 groups, far beyond
/// the 200 that overflow a token. A Graph that keeps sending next pages fails the read rather
/// than running on.
pub const MAX_PAGES: usize = 100;

/// One page is a few hundred bytes per group; anything much larger is not one.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// Graph's error text quoted in logs is cut here (it is Graph's words, not a token).
const MAX_ERROR_TEXT: usize = 300;

/// Whether `claims` (the ID token's, with userinfo merged) carry the groups overage marker:
/// `_claim_names.groups` names a source that `_claim_sources` has (OpenID Connect Core 5.6.2,
/// distributed claims, as Entra ID sends them).
pub fn has_groups_overage(claims: &Map<String, Value>) -> bool {
    let Some(source) = claims
        .get("_claim_names")
        .and_then(|names| names.get("groups"))
        .and_then(Value::as_str)
    else {
        return false;
    };
    claims
        .get("_claim_sources")
        .and_then(|sources| sources.get(source))
        .is_some_and(Value::is_object)
}

/// A group the user is a member of, directly or through other groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphGroup {
    /// The object id, the value tokens carry in `groups`.
    pub id: String,
    pub display_name: Option<String>,
}

/// One page of Graph's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphPage {
    pub groups: Vec<GraphGroup>,
    /// `@odata.nextLink`: the next page, if any.
    pub next_link: Option<String>,
}

/// Why the groups could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// No answer, a timeout, a throttled (429) or failing (5xx) Graph.
    Unreachable(String),
    /// 401 or 403: Graph does not accept this access token for reading groups (an expired
    /// token, a token for another resource, the permission not granted).
    Refused(String),
    /// Any other answer: another status, not Graph's JSON, a next page elsewhere or too many.
    Invalid(String),
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::Unreachable(text) => write!(f, "Microsoft Graph unreachable: {text}"),
            GraphError::Refused(text) => write!(f, "Microsoft Graph refused: {text}"),
            GraphError::Invalid(text) => write!(f, "Microsoft Graph answer not usable: {text}"),
        }
    }
}

/// Reads one answer of Graph: a 2xx with `{"value": [...], "@odata.nextLink": ...}`, or an
/// error with Graph's `{"error": {"code", "message"}}`.
pub fn parse_page(status: u16, body: &[u8]) -> Result<GraphPage, GraphError> {
    if !(200..300).contains(&status) {
        let text = format!("HTTP {status}{}", error_text(body));
        return Err(match status {
            401 | 403 => GraphError::Refused(text),
            429 | 500..=599 => GraphError::Unreachable(text),
            _ => GraphError::Invalid(text),
        });
    }
    let page = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(page)) => page,
        Ok(_) => {
            return Err(GraphError::Invalid(
                "the answer is not a JSON object".into(),
            ))
        }
        Err(err) => {
            return Err(GraphError::Invalid(format!(
                "the answer is not JSON: {err}"
            )))
        }
    };
    let Some(Value::Array(items)) = page.get("value") else {
        return Err(GraphError::Invalid("the answer has no value list".into()));
    };
    let next_link = match page.get("@odata.nextLink") {
        None | Some(Value::Null) => None,
        Some(Value::String(link)) => Some(link.clone()),
        // A next page that cannot be followed would leave the list incomplete without saying.
        Some(_) => {
            return Err(GraphError::Invalid(
                "@odata.nextLink is not a string".into(),
            ))
        }
    };
    let groups = items.iter().filter_map(group).collect();
    Ok(GraphPage { groups, next_link })
}

/// A group of `value`; anything else (no id, another type of object) is left out.
fn group(item: &Value) -> Option<GraphGroup> {
    let item = item.as_object()?;
    if let Some(kind) = item.get("@odata.type") {
        if kind.as_str() != Some("#microsoft.graph.group") {
            return None;
        }
    }
    let id = item.get("id")?.as_str().filter(|id| !id.is_empty())?;
    let display_name = item
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .map(str::to_string);
    Some(GraphGroup {
        id: id.to_string(),
        display_name,
    })
}

/// `: <code>: <message>` from Graph's error body, or nothing when it has none.
fn error_text(body: &[u8]) -> String {
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let error = &answer["error"];
    let parts: Vec<&str> = [&error["code"], &error["message"]]
        .into_iter()
        .filter_map(Value::as_str)
        .filter(|part| !part.is_empty())
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    let text = parts.join(": ");
    let cut: String = text.chars().take(MAX_ERROR_TEXT).collect();
    format!(": {cut}")
}

/// The first page: `<ENTRA_GRAPH_URL>/v1.0/me/transitiveMemberOf/microsoft.graph.group`.
pub fn first_page_url(graph_url: &Url) -> Url {
    let mut url = graph_url.clone();
    let path = format!("{}{GROUPS_PATH}", graph_url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(Some(GROUPS_QUERY));
    url
}

/// The next page to ask for with the access token: `next_link` only while it stays on the
/// origin of `graph_url` (scheme, host and port), since the token must not go anywhere else.
pub fn next_page_url(graph_url: &Url, next_link: &str) -> Result<Url, GraphError> {
    let url = Url::parse(next_link)
        .map_err(|e| GraphError::Invalid(format!("@odata.nextLink is not a URL ({e})")))?;
    let credentials = !url.username().is_empty() || url.password().is_some();
    if url.origin() != graph_url.origin() || credentials {
        return Err(GraphError::Invalid(format!(
            "@odata.nextLink leads away from {} (to {}): not followed with the access token",
            graph_url.origin().ascii_serialization(),
            url.origin().ascii_serialization()
        )));
    }
    Ok(url)
}

/// The groups read so far, page by page, and where to read next.
#[derive(Debug, Default)]
pub struct Pages {
    pub groups: Vec<GraphGroup>,
    pub read: usize,
}

impl Pages {
    /// Takes one more page; returns the next page's address, or `None` when this was the last.
    pub fn add(&mut self, graph_url: &Url, page: GraphPage) -> Result<Option<Url>, GraphError> {
        self.read += 1;
        self.groups.extend(page.groups);
        let Some(link) = page.next_link else {
            return Ok(None);
        };
        if self.read >= MAX_PAGES {
            return Err(GraphError::Invalid(format!(
                "more than {MAX_PAGES} pages of groups: not read further"
            )));
        }
        next_page_url(graph_url, &link).map(Some)
    }
}

/// What the groups claim becomes: each group's object id, or its `displayName` with
/// `ENTRA_GROUP_NAMES` (`names`). Also the ids of groups that had to keep their id for want of a
/// name, so that the caller can say so.
pub fn group_values(groups: &[GraphGroup], names: bool) -> (Vec<String>, Vec<String>) {
    let mut values = Vec::with_capacity(groups.len());
    let mut unnamed = Vec::new();
    for group in groups {
        match (&group.display_name, names) {
            (Some(name), true) => values.push(name.clone()),
            (None, true) => {
                unnamed.push(group.id.clone());
                values.push(group.id.clone());
            }
            (_, false) => values.push(group.id.clone()),
        }
    }
    // A group reached through several paths is listed once.
    let mut seen = std::collections::HashSet::new();
    values.retain(|value| seen.insert(value.clone()));
    (values, unnamed)
}

/// Puts `groups` where the provider's groups claim (`OIDC_GROUPS_CLAIM`) is read: as a key of
/// that exact name at the top, which `claims::lookup` tries before any nesting.
pub fn replace_groups(claims: &mut Map<String, Value>, groups_claim: &str, groups: Vec<String>) {
    claims.insert(
        groups_claim.to_string(),
        Value::Array(groups.into_iter().map(Value::String).collect()),
    );
}

#[cfg(test)]
#[path = "entra_tests.rs"]
mod tests;
