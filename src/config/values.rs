//! Parsers and checks of single values, free of the environment: each says what is wrong
//! with a value in words the validators put after the variable's name.

use std::time::Duration;

use url::Url;

pub(super) const MIN_COOKIE_SECRET_BYTES: usize = 32;

pub(super) const SECRET_HOWTO: &str = "openssl rand -base64 32 | tr -d '\\n'";

pub(super) fn comma_list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(super) fn parse_scopes(value: &str) -> Vec<String> {
    let mut scopes: Vec<String> = value
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    // Without `openid` the provider would run plain OAuth 2.0 and send no ID token.
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".to_string());
    }
    scopes
}

/// Accepts the issuer or its full discovery URL; returns the issuer as the provider must name it.
pub(super) fn parse_issuer(value: &str) -> Result<String, String> {
    let issuer = value
        .trim()
        .strip_suffix("/.well-known/openid-configuration")
        .unwrap_or(value.trim());
    let url = Url::parse(issuer).map_err(|e| format!("{issuer:?} is not a URL ({e})"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(format!("{issuer:?} must be an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{issuer:?} must not have a query or fragment"));
    }
    Ok(issuer.to_string())
}

/// One of portcullis' own addresses as registered at the IdP: exact path, nothing else.
pub(super) fn parse_own_url(value: &str, path: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| format!("{value:?} is not a URL ({e})"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(format!("{value:?} must be an http(s) URL"));
    }
    if url.path() != path {
        return Err(format!(
            "{value:?} must end in the path {path} (the address portcullis answers)"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "{value:?} must not have a query, fragment or user name"
        ));
    }
    Ok(url)
}

/// Browsers cap a cookie's lifetime at 400 days (RFC 6265bis); a longer session would
/// outlive its cookie, and every duration below this bound is far from overflowing.
const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(400 * 24 * 3600);

pub(super) fn parse_lifetime(value: &str) -> Result<Duration, String> {
    let lifetime = humantime::parse_duration(value.trim())
        .map_err(|_| format!("{value:?} is not a duration like 30m or 12h"))?;
    if lifetime < Duration::from_secs(60) {
        return Err(format!("{value:?} is shorter than one minute"));
    }
    if lifetime > MAX_SESSION_LIFETIME {
        return Err(format!(
            "{value:?} is longer than 400 days, the longest cookie lifetime browsers keep"
        ));
    }
    Ok(lifetime)
}

/// A revalidation interval or grace: seconds are fine (tests and strict setups use `10s`), `0`
/// is off (or no grace), and nothing longer than a session can live.
pub(super) fn parse_refresh_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    let duration = humantime::parse_duration(value)
        .map_err(|_| format!("{value:?} is not a duration like 30s or 5m (or 0)"))?;
    if duration > MAX_SESSION_LIFETIME {
        return Err(format!("{value:?} is longer than 400 days"));
    }
    // Whole seconds: the decisions count in seconds, and `1500ms` must not become `1s` silently.
    if duration.subsec_nanos() != 0 {
        return Err(format!("{value:?} is not a whole number of seconds"));
    }
    Ok(duration)
}

/// A shutdown delay longer than this is refused: an instance that takes it to stop holds up every
/// rollout, so a value past it is more likely a slip (`2h` for `2s`) than meant.
const MAX_SHUTDOWN_DELAY: Duration = Duration::from_secs(3600);

/// `SHUTDOWN_DELAY`: written like the revalidation durations (`0`, `2s`, `1m`).
pub(super) fn parse_shutdown_delay(value: &str) -> Result<Duration, String> {
    let delay = parse_refresh_duration(value)?;
    if delay > MAX_SHUTDOWN_DELAY {
        return Err(format!("{:?} is longer than an hour", value.trim()));
    }
    Ok(delay)
}

/// Plain http to an IdP is only private on this machine.
pub(super) fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(super) fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
