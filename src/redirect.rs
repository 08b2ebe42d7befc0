//! "May we send the browser here?" — validation of post-login redirect targets.
//!
//! A forward-auth service redirects the browser twice: to the identity provider and,
//! after the callback, back to wherever the user was going. The second target comes
//! from attacker-reachable input (a query parameter or a value stored in the login
//! state), so it is the classic open-redirect sink that oauth2-proxy, vouch-proxy,
//! Authelia and traefik-forward-auth all had advisories for. Every bypass in those
//! advisories abused a gap between what the validator looked at (a string prefix, a
//! regex, a lenient parser) and what the browser did with the bytes. The rules here
//! therefore are:
//!
//! * refuse, before parsing, every byte a browser would silently strip or rewrite
//!   (whitespace, control characters, backslashes, non-ASCII, percent-encoded
//!   control characters), so that our parser and the browser's see the same URL;
//! * decide on the parsed [`Url`], never on the raw string;
//! * hand back the parsed URL so the caller emits *its* canonical serialisation,
//!   not the attacker's spelling of it.

use url::{Host, Url};

use crate::url_text::{hex_value, is_plain_url_byte, parse_port};

/// Longest candidate we look at. Real return-to URLs are far shorter; longer ones are
/// either junk or an attempt to push the interesting part past some log or header
/// limit, and browsers cap `Location` lengths anyway.
const MAX_CANDIDATE_LEN: usize = 4096;

/// Which hosts one allow-list entry covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    /// Exactly this host (a normalised domain or an IP literal).
    Exact(Host<String>),
    /// This ASCII domain and any subdomain of it, on a label boundary.
    Subdomains(String),
}

/// Which ports one allow-list entry covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortRule {
    /// A bare host: only the scheme's default port (443 for https, 80 for http), so that an
    /// allowed name does not also allow whatever else listens on another port of it.
    Default,
    /// `host:8443`: that port only.
    Exact(u16),
    /// `host:*`: any port.
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    host: HostRule,
    port: PortRule,
}

/// The hosts (and optionally ports) that absolute redirect targets may point at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedRedirects {
    entries: Vec<Entry>,
}

impl AllowedRedirects {
    /// Parses a comma-separated list such as
    /// `app.example.com, app.example.com:8443, .example.org, 127.0.0.1:8080`.
    ///
    /// A blank list yields an empty allow-list (only relative paths will pass), because
    /// the config loader adds its own defaults with [`AllowedRedirects::add_host`].
    /// Every bad entry is reported, each by name, so an operator fixes them in one go.
    pub fn parse(list: &str) -> Result<AllowedRedirects, String> {
        let mut allowed = AllowedRedirects::default();
        if list.trim().is_empty() {
            return Ok(allowed);
        }
        let mut problems = Vec::new();
        for raw in list.split(',') {
            match parse_entry(raw.trim()) {
                Ok(entry) => allowed.push(entry),
                Err(why) => problems.push(why),
            }
        }
        if problems.is_empty() {
            Ok(allowed)
        } else {
            Err(format!(
                "invalid allowed redirect list: {}",
                problems.join("; ")
            ))
        }
    }

    /// Adds one host, e.g. the host of our own callback URL or the cookie domain, with its
    /// port (`None`: the scheme's default port, as a URL without a port means).
    ///
    /// A leading `.` means "this domain and its subdomains", as in the list syntax.
    /// The caller has already validated these values as part of other settings, so
    /// this cannot fail: a host that does not parse is skipped, which fails closed
    /// (nothing can match it).
    pub fn add_host(&mut self, host: &str, port: Option<u16>) {
        let host = host.trim();
        let rule = match host.strip_prefix('.') {
            Some(domain) => parse_subdomain_rule(domain).ok(),
            None => parse_exact_rule(host).ok(),
        };
        if let Some(host) = rule {
            let port = port.map_or(PortRule::Default, PortRule::Exact);
            self.push(Entry { host, port });
        }
    }

    /// True when no absolute URL can pass (relative paths still can).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the URL to send the browser to, or `None` when `candidate` is not a
    /// safe target (the caller then falls back to `/` or its own page).
    ///
    /// `base` is our own callback URL: a candidate that is a plain absolute path
    /// (`/foo?bar`) is resolved against its origin and needs no allow-list entry.
    /// Anything else must be an absolute `http`/`https` URL without userinfo whose host
    /// and port match an entry.
    pub fn resolve(&self, candidate: &str, base: &Url) -> Option<Url> {
        if candidate.is_empty() || candidate.len() > MAX_CANDIDATE_LEN {
            return None;
        }
        // Browsers strip tabs and newlines anywhere in a URL and treat `\` as `/`;
        // the `url` crate does the same, but a check written against the raw string
        // elsewhere (logs, the IdP, a later hop) may not. Refusing these bytes
        // outright keeps every reader of this value in agreement.
        if !candidate.bytes().all(is_plain_url_byte) || has_encoded_control(candidate) {
            return None;
        }
        match candidate.as_bytes().first() {
            Some(b'/') => resolve_relative(candidate, base),
            _ => self.resolve_absolute(candidate),
        }
    }

    fn resolve_absolute(&self, candidate: &str) -> Option<Url> {
        let raw_authority = raw_authority(candidate)?;
        let url = Url::parse(candidate).ok()?;
        if !is_http_scheme(url.scheme()) || has_userinfo(&url) {
            return None;
        }
        // The parser percent-decodes and IDNA-maps hosts and rewrites numeric IPv4
        // forms. Insisting the raw authority is already canonical means the host we
        // compare is literally the host that was written, which is what a human
        // reviewing logs or an allow-list expects.
        if !authority_is_canonical(raw_authority, &url) {
            return None;
        }
        // As for relative targets: dot segments can leave a path that starts with `//`
        // (`https://app.example.com/..//evil.com`), which an app later handed only the path
        // reads as another host.
        if url.path().starts_with("//") {
            return None;
        }
        let host = url.host()?.to_owned();
        // The parser drops a port written as the scheme's default: `None` is the default port.
        let port = (url.port(), url.port_or_known_default()?);
        self.entries
            .iter()
            .any(|entry| entry_matches(entry, &host, port))
            .then_some(url)
    }

    fn push(&mut self, entry: Entry) {
        if !self.entries.contains(&entry) {
            self.entries.push(entry);
        }
    }
}

/// Resolves `/path?query#fragment` against our own origin.
fn resolve_relative(candidate: &str, base: &Url) -> Option<Url> {
    let after_slash = candidate.get(1..)?;
    // `//host` is protocol-relative: it names another host, not a path.
    if after_slash.starts_with('/') {
        return None;
    }
    // `/%2F/evil.com` and `/%5C/evil.com` are a decode away from `//evil.com` and
    // `/\evil.com`; some frameworks behind us do decode once and redirect again.
    let lowered = after_slash.get(..3).map(str::to_ascii_lowercase);
    if matches!(lowered.as_deref(), Some("%2f" | "%5c")) {
        return None;
    }
    if !is_http_scheme(base.scheme()) || base.host().is_none() {
        return None;
    }
    let resolved = base.join(candidate).ok()?;
    // Dot segments can collapse `/..//evil.com` into a path starting with `//`. The
    // URL we return is absolute so the browser is safe, but an application that is
    // later handed only the path would read it as protocol-relative.
    if resolved.path().starts_with("//") {
        return None;
    }
    (resolved.origin() == base.origin() && !has_userinfo(&resolved)).then_some(resolved)
}

/// Returns the raw `host[:port]` text of an absolute candidate, if it is written as
/// `scheme://authority` followed by nothing or `/`, `?` or `#`.
///
/// For `http`/`https` the WHATWG parser accepts `https:evil.com` and `https:///evil.com`
/// as if they had two slashes, yet a browser resolving `https:evil.com` against an
/// https page treats it as a relative *path*. Requiring exactly two slashes removes
/// that disagreement.
fn raw_authority(candidate: &str) -> Option<&str> {
    let (scheme, rest) = candidate.split_once(':')?;
    if !is_http_scheme(&scheme.to_ascii_lowercase()) {
        return None;
    }
    let rest = rest.strip_prefix("//")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    // Empty: `https:///evil.com`. `@`: userinfo, the oldest trick in the book
    // (`https://good.com@evil.com`). `%`: the parser decodes it, so the raw text would
    // no longer be what we compared (`good.com%2eevil.com`).
    if authority.is_empty() || authority.contains(['@', '%']) {
        return None;
    }
    Some(authority)
}

/// True when the raw authority text equals the parsed one, ignoring ASCII case and an
/// explicitly written default port.
fn authority_is_canonical(raw_authority: &str, url: &Url) -> bool {
    let Some((raw_host, raw_port)) = split_host_port(raw_authority) else {
        return false;
    };
    let Some(parsed_host) = url.host_str() else {
        return false;
    };
    if !raw_host.eq_ignore_ascii_case(parsed_host) {
        return false;
    }
    match raw_port {
        None => true,
        // `host:` with nothing after it is legal but pointless; refuse it.
        Some(text) => parse_port(text).is_some_and(|p| Some(p) == url.port_or_known_default()),
    }
}

/// `port` is the URL's explicit port (`None` for the scheme's default) and its effective port.
fn entry_matches(entry: &Entry, host: &Host<String>, port: (Option<u16>, u16)) -> bool {
    let (explicit, effective) = port;
    let port_ok = match entry.port {
        PortRule::Default => explicit.is_none(),
        PortRule::Exact(wanted) => effective == wanted,
        PortRule::Any => true,
    };
    if !port_ok {
        return false;
    }
    match (&entry.host, host) {
        (HostRule::Exact(want), got) => want == got,
        (HostRule::Subdomains(domain), Host::Domain(name)) => is_same_or_subdomain(name, domain),
        (HostRule::Subdomains(_), _) => false,
    }
}

/// `name` is `domain` or ends in `.domain` — on a label boundary, so that
/// `evilexample.com` is not a subdomain of `example.com`.
fn is_same_or_subdomain(name: &str, domain: &str) -> bool {
    match name.strip_suffix(domain) {
        Some("") => true,
        Some(prefix) => prefix.len() > 1 && prefix.ends_with('.'),
        None => false,
    }
}

fn parse_entry(raw: &str) -> Result<Entry, String> {
    let fail = |why: &str| format!("entry {raw:?} {why}");
    if raw.is_empty() {
        return Err("an entry is empty (check for doubled or trailing commas)".to_owned());
    }
    if raw.contains("://") {
        return Err(fail("has a scheme; list hosts only"));
    }
    if raw.contains(['/', '\\', '?', '#']) {
        return Err(fail("has a path; list hosts only"));
    }
    if raw.contains('@') {
        return Err(fail("has a user name; list hosts only"));
    }
    let (raw_host_port, any_port) = match raw.strip_suffix(":*") {
        Some(host) => (host, true),
        None => (raw, false),
    };
    if raw_host_port.contains('*') {
        return Err(fail(
            "has a wildcard; write .example.com for a domain and its subdomains, host:* for any port",
        ));
    }
    if raw
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '%')
    {
        return Err(fail("has spaces, control or percent characters"));
    }
    let (host, port) =
        split_host_port(raw_host_port).ok_or_else(|| fail("is not host or host:port"))?;
    let port = match (port, any_port) {
        (None, true) => PortRule::Any,
        (Some(_), true) => return Err(fail("has two ports")),
        (None, false) => PortRule::Default,
        (Some(text), false) => {
            PortRule::Exact(parse_port(text).ok_or_else(|| fail("has an invalid port"))?)
        }
    };
    let host = match host.strip_prefix('.') {
        Some(domain) => parse_subdomain_rule(domain),
        None => parse_exact_rule(host),
    }
    .map_err(fail)?;
    Ok(Entry { host, port })
}

fn parse_exact_rule(host: &str) -> Result<HostRule, &'static str> {
    match Host::parse(host) {
        Ok(Host::Domain(domain)) => {
            check_domain_labels(&domain).map(|()| HostRule::Exact(Host::Domain(domain)))
        }
        Ok(ip) => Ok(HostRule::Exact(ip)),
        Err(_) => Err("is not a valid host name or IP address"),
    }
}

fn parse_subdomain_rule(domain: &str) -> Result<HostRule, &'static str> {
    match Host::parse(domain) {
        Ok(Host::Domain(domain)) => {
            check_domain_labels(&domain).map(|()| HostRule::Subdomains(domain))
        }
        Ok(_) => Err("puts a leading dot on an IP address"),
        Err(_) => Err("is not a valid domain"),
    }
}

/// Refuses `a..b`, `.a`, `a.` (after the subdomain dot was removed): the parser keeps
/// empty labels, and a rule with one would never match what the operator meant.
fn check_domain_labels(domain: &str) -> Result<(), &'static str> {
    if domain.split('.').any(str::is_empty) {
        Err("has an empty label (a stray dot)")
    } else {
        Ok(())
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`; `None` for anything else
/// (such as a bare IPv6 address, whose colons are ambiguous).
fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if text.starts_with('[') {
        let close = text.find(']')?;
        let (host, rest) = text.split_at(close + 1);
        return match rest {
            "" => Some((host, None)),
            _ => Some((host, Some(rest.strip_prefix(':')?))),
        };
    }
    match text.split_once(':') {
        None => Some((text, None)),
        Some((_, port)) if port.contains(':') => None,
        Some((host, port)) => Some((host, Some(port))),
    }
}

fn is_http_scheme(scheme: &str) -> bool {
    scheme == "http" || scheme == "https"
}

fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// `%00`–`%1F` and `%7F` anywhere: the encoded forms of the bytes refused above, which
/// an application decoding the path once would turn back into them (`/%09/evil.com`).
fn has_encoded_control(candidate: &str) -> bool {
    candidate.as_bytes().windows(3).any(|window| match window {
        [b'%', hi, lo] => match (hex_value(*hi), hex_value(*lo)) {
            (Some(hi), Some(lo)) => {
                let byte = hi * 16 + lo;
                byte < 0x20 || byte == 0x7f
            }
            _ => false,
        },
        _ => false,
    })
}

#[cfg(test)]
#[path = "redirect_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "redirect_props.rs"]
mod props;
