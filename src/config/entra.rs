//! Microsoft Entra ID: which providers are of that kind (`OIDC_PROVIDER_KIND`, or detected from
//! the issuer) and where their users' groups are read from when the ID token cannot hold them
//! (`ENTRA_GRAPH_URL`, `ENTRA_GROUP_NAMES`).

use url::Url;

use super::values::is_loopback_host;
use super::variables::DEFAULT_ENTRA_GRAPH_URL;
use super::Findings;

/// What a provider sends beyond the standard claims, so what portcullis must do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Generic,
    /// Microsoft Entra ID: the groups overage marker is followed to Microsoft Graph.
    Entra,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Generic => "generic",
            ProviderKind::Entra => "entra",
        }
    }
}

/// Where an Entra provider's groups are read from, and how they are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraGraph {
    /// `ENTRA_GRAPH_URL`: Graph's base, requests go to `<base>/v1.0/...`.
    pub graph_url: Url,
    /// `ENTRA_GROUP_NAMES`: send `displayName` instead of the object id.
    pub group_names: bool,
}

/// Where Entra ID's sign-in lives (the public cloud); other clouds set `OIDC_PROVIDER_KIND`.
const ENTRA_LOGIN_HOST: &str = "login.microsoftonline.com";

/// The kind an unset `OIDC_PROVIDER_KIND` means: `entra` for an issuer under
/// `https://login.microsoftonline.com/`.
pub(super) fn detected_kind(issuer: &str) -> ProviderKind {
    match Url::parse(issuer) {
        Ok(url) if url.scheme() == "https" && url.host_str() == Some(ENTRA_LOGIN_HOST) => {
            ProviderKind::Entra
        }
        _ => ProviderKind::Generic,
    }
}

pub(super) fn parse_kind(value: &str) -> Result<ProviderKind, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "generic" => Ok(ProviderKind::Generic),
        "entra" => Ok(ProviderKind::Entra),
        other => Err(format!("expected generic or entra, got {other:?}")),
    }
}

/// `ENTRA_GRAPH_URL`: an http(s) base without query, fragment or credentials, since the access
/// token is sent there and to nothing but its origin.
pub(super) fn parse_graph_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| format!("{value:?} is not a URL ({e})"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(format!("{value:?} must be an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{value:?} must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{value:?} must not have a user name or password"));
    }
    Ok(url)
}

impl Findings {
    /// A provider's kind (`var` is its `OIDC_PROVIDER_KIND`), detected from its issuer when unset.
    pub(super) fn provider_kind(&mut self, var: &str, issuer: Option<&str>) -> ProviderKind {
        match self.parsed(var, parse_kind) {
            Some(kind) => kind,
            None => issuer.map_or(ProviderKind::Generic, detected_kind),
        }
    }

    /// `ENTRA_GRAPH_URL` and `ENTRA_GROUP_NAMES` (`None`: the URL is wrong, already a
    /// problem), and whether either was set, which means nothing without an Entra provider.
    pub(super) fn entra_graph(&mut self) -> (Option<EntraGraph>, bool) {
        let is_set =
            |found: &Findings, name: &str| found.untaken.get(name).is_some_and(Option::is_some);
        let set = is_set(self, "ENTRA_GRAPH_URL") || is_set(self, "ENTRA_GROUP_NAMES");
        let graph_url = match self.take("ENTRA_GRAPH_URL") {
            Some(value) => self.parse_value("ENTRA_GRAPH_URL", Some(value), parse_graph_url),
            None => Url::parse(DEFAULT_ENTRA_GRAPH_URL).ok(),
        };
        if let Some(url) = &graph_url {
            if url.scheme() == "http" && !is_loopback_host(url) {
                self.warn(format!(
                    "ENTRA_GRAPH_URL {} is plain http: access tokens travel unprotected; use \
                     https",
                    url.as_str().trim_end_matches('/')
                ));
            }
        }
        let group_names = self.boolean("ENTRA_GROUP_NAMES", false);
        let graph = graph_url.map(|graph_url| EntraGraph {
            graph_url,
            group_names,
        });
        (graph, set)
    }
}
