//! What one round measures: a request (wrk's target), the status every answer must have, the
//! processes whose CPU time is recorded; and the single checked request made before wrk runs.

use std::collections::BTreeSet;

use anyhow::{bail, Context};
use portcullis_testkit::env::COOKIE_NAME;

use crate::wrk::Target;

pub struct Scenario {
    pub name: String,
    pub target: Target,
    /// Processes whose CPU time is recorded (name, pid).
    pub watch: Vec<(String, u32)>,
    /// For 2xx scenarios through portcullis: the user its identity header must name.
    pub user: Option<String>,
    /// The answer must carry the signed identity assertion (`UPSTREAM_JWT=true`).
    pub assertion: bool,
}

impl Scenario {
    pub fn new(
        name: &str,
        url: String,
        headers: Vec<(String, String)>,
        expect: u16,
        watch: Vec<(String, u32)>,
        user: Option<&str>,
    ) -> Scenario {
        Scenario {
            name: name.to_string(),
            target: Target {
                url,
                headers,
                expect,
            },
            watch,
            user: user.map(str::to_string),
            assertion: false,
        }
    }

    /// The same, whose answers must carry `X-Auth-Request-Jwt`.
    pub fn with_assertion(self) -> Scenario {
        Scenario {
            assertion: true,
            ..self
        }
    }
}

/// portcullis' forward-auth check (Traefik, Caddy) on `port`.
pub fn forward_auth_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/oauth2/forward-auth")
}

/// portcullis' status-only check (nginx auth_request) on `port`.
pub fn auth_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/oauth2/auth")
}

/// What Traefik sends to the forward-auth check for a visit to `http://host/`.
pub fn forward_auth_headers(host: &str, cookie: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("X-Forwarded-Proto".to_string(), "http".to_string()),
        ("X-Forwarded-Host".to_string(), host.to_string()),
        ("X-Forwarded-Uri".to_string(), "/".to_string()),
        ("Accept".to_string(), "application/json".to_string()),
    ];
    if let Some(cookie) = cookie {
        headers.push(("Cookie".to_string(), format!("{COOKIE_NAME}={cookie}")));
    }
    headers
}

/// What nginx sends to the status-only check for a visit to `http://host/`.
pub fn auth_headers(host: &str, cookie: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("X-Original-URL".to_string(), format!("http://{host}/")),
        ("Accept".to_string(), "application/json".to_string()),
    ];
    if let Some(cookie) = cookie {
        headers.push(("Cookie".to_string(), format!("{COOKIE_NAME}={cookie}")));
    }
    headers
}

/// The request wrk sends for `scenario`.
fn request(client: &reqwest::Client, scenario: &Scenario) -> reqwest::RequestBuilder {
    let mut request = client.get(&scenario.target.url);
    for (name, value) in &scenario.target.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request
}

/// The header names of `scenario`'s answer, without those every actix server adds itself.
async fn answer_header_names(
    client: &reqwest::Client,
    scenario: &Scenario,
) -> anyhow::Result<BTreeSet<String>> {
    let response = request(client, scenario)
        .send()
        .await
        .with_context(|| format!("headers of {}", scenario.name))?;
    Ok(response
        .headers()
        .keys()
        .map(|name| name.as_str().to_string())
        .filter(|name| name != "date" && name != "content-length")
        .collect())
}

/// Fails unless floor A (the null auth server) answers the same headers as portcullis' allowed
/// check. A proxy parses and copies every header of the auth answer: a floor answering fewer
/// would make the proxy's header work look like portcullis' cost (seen behind Traefik: four
/// headers fewer were 17 % more throughput).
pub async fn same_headers_as_floor(
    client: &reqwest::Client,
    floor: &Scenario,
    ours: &Scenario,
) -> anyhow::Result<()> {
    let floor_names = answer_header_names(client, floor).await?;
    let our_names = answer_header_names(client, ours).await?;
    if floor_names != our_names {
        let only_ours: Vec<&String> = our_names.difference(&floor_names).collect();
        let only_floor: Vec<&String> = floor_names.difference(&our_names).collect();
        bail!(
            "{} and {} answer different headers (only {}: {only_ours:?}; only {}: {only_floor:?}): update bench/floor/src/bin/floor.rs identity_headers()",
            floor.name,
            ours.name,
            ours.name,
            floor.name
        );
    }
    Ok(())
}

/// One request as wrk would send it; checks the status (and the identity for 2xx).
pub async fn preflight(client: &reqwest::Client, scenario: &Scenario) -> anyhow::Result<()> {
    let response = request(client, scenario)
        .send()
        .await
        .with_context(|| format!("preflight {}", scenario.name))?;
    let status = response.status().as_u16();
    if status != scenario.target.expect {
        let body = response.text().await.unwrap_or_default();
        bail!(
            "preflight {}: answered {status}, expected {}: {}",
            scenario.name,
            scenario.target.expect,
            body.chars().take(200).collect::<String>()
        );
    }
    if scenario.assertion && response.headers().get("x-auth-request-jwt").is_none() {
        bail!("preflight {}: no X-Auth-Request-Jwt", scenario.name);
    }
    if let Some(user) = &scenario.user {
        let seen = response
            .headers()
            .get("x-auth-request-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if seen != user {
            bail!(
                "preflight {}: X-Auth-Request-User is {seen:?}, expected {user:?}",
                scenario.name
            );
        }
    }
    Ok(())
}
