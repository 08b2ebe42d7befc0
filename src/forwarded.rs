//! "Where did the proxied request want to go?" — reconstructing the original request
//! from the headers a reverse proxy sends to a forward-auth endpoint.
//!
//! Traefik and Caddy send `X-Forwarded-Proto`, `-Host`, `-Uri` and `-Method`; nginx's
//! `auth_request` is usually configured to send `X-Original-URL` and
//! `X-Original-Method`. These headers are only meaningful when they come from a proxy
//! we trust (see [`TrustedProxies`]); even then their values partly come from the
//! client (the `Host` header, the request target), so every value is validated
//! strictly and anything odd is an error rather than a best guess. Authelia's
//! GHSA-68wm-pfjf-wqp6 (CVE-2021-32637) was exactly a best guess: a malformed
//! `X-Original-URL` led to "allow". Here a malformed value can only lead to an error.
//!
//! The path is also refused when it could mean one thing to the proxy's router and another to
//! the app: dot segments and encoded slashes (see [`check_path`]). Traefik routed `/x/../ops/`
//! and `/x/%2e%2e/ops/` by their raw text (CVE-2025-32431, GHSA-vrch-868g-9jx5) while the app
//! served `/ops/`, so a per-route rule on `/ops/` was skipped.
//!
//! `X-Forwarded-Port` and `X-Forwarded-Prefix` are deliberately not read: the port is
//! taken from `X-Forwarded-Host` and the path from `X-Forwarded-Uri`, because Traefik
//! has had advisories (GHSA-6384-m2mw-rf54, GHSA-3q9r-p662-5j8m) where those two
//! headers were passed through from the client.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use crate::url_text::{is_plain_url_byte, parse_port};
use url::{Host, Url};

const PROTO: &str = "X-Forwarded-Proto";
const HOST: &str = "X-Forwarded-Host";
const URI: &str = "X-Forwarded-Uri";
const METHOD: &str = "X-Forwarded-Method";
const ORIGINAL_URL: &str = "X-Original-URL";
const ORIGINAL_METHOD: &str = "X-Original-Method";

/// Longest method name we accept. Real ones are at most 17 characters
/// (`VERSION-CONTROL`-style WebDAV extensions); this only bounds junk.
const MAX_METHOD_LEN: usize = 32;

/// Peers whose forwarded headers we believe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of CIDRs (`10.0.0.0/8`, `fd00::/8`) or bare
    /// addresses (`192.168.1.5`, `::1`).
    ///
    /// A blank list means "trust no peer". Empty items (`a,,b`) are errors, since they
    /// usually mean a value went missing while editing. Every bad entry is named.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        if list.trim().is_empty() {
            return Ok(TrustedProxies(Vec::new()));
        }
        let mut nets = Vec::new();
        let mut bad = Vec::new();
        for item in list.split(',').map(str::trim) {
            match parse_net(item) {
                Some(net) => nets.push(net),
                None => bad.push(format!("{item:?}")),
            }
        }
        if bad.is_empty() {
            Ok(TrustedProxies(nets))
        } else {
            Err(format!(
                "invalid trusted proxy entries (expected IP addresses or CIDRs): {}",
                bad.join(", ")
            ))
        }
    }

    /// Loopback and private ranges: where a reverse proxy on the same host, in the same
    /// container network or in the same VPC usually sits.
    ///
    /// Link-local `fe80::/10` is left out on purpose: every interface has such an
    /// address, so on a shared L2 segment any neighbour could claim to be a proxy.
    pub fn default_private() -> TrustedProxies {
        let nets = [
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7",
        ];
        TrustedProxies(nets.iter().filter_map(|n| n.parse().ok()).collect())
    }

    /// True when `ip` lies in one of the ranges. An IPv4-mapped IPv6 peer
    /// (`::ffff:10.0.0.1`, as a dual-stack socket reports IPv4 clients) is treated as
    /// its IPv4 address, so IPv4 ranges work on dual-stack listeners.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The peer, if it is one whose forwarded headers we believe (an unknown peer never is).
    pub fn require_trusted(&self, peer: Option<IpAddr>) -> Result<IpAddr, ForwardedError> {
        match peer {
            Some(ip) if self.contains(ip) => Ok(ip),
            _ => Err(ForwardedError::UntrustedPeer),
        }
    }
}

/// Parses one entry; IPv4-mapped IPv6 entries become IPv4 networks so that they match
/// the canonicalised peers in [`TrustedProxies::contains`].
fn parse_net(item: &str) -> Option<IpNet> {
    let net = match item.parse::<IpNet>() {
        Ok(net) => net.trunc(),
        Err(_) => IpNet::from(item.parse::<IpAddr>().ok()?),
    };
    Some(match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => IpNet::V4(Ipv4Net::new(v4, v6.prefix_len() - 96).ok()?),
            None => net,
        },
        _ => net,
    })
}

/// The request the user's browser actually made to the proxy.
///
/// Every part is validated when it is built; the [`Url`] itself is only parsed when a caller
/// needs it (a login redirect, a log line), because the auth check's allow path never does and
/// URL parsing (with IDNA) was a third of its cost.
/// It borrows every part from the request's headers: the allow path copies nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRequest<'r> {
    scheme: &'static str,
    /// `host[:port]`, exactly as validated.
    authority: &'r str,
    /// `/path[?query]`, exactly as validated.
    target: &'r str,
    host: &'r str,
    port: Option<u16>,
    pub method: &'r str,
}

impl OriginalRequest<'_> {
    /// The query of the original request, without parsing the whole URL.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// `host[:port]`, as validated.
    pub fn authority(&self) -> &str {
        self.authority
    }

    /// `scheme://host[:port]` as a browser writes the page's origin: the host in lower case,
    /// the port only when it is not the scheme's default. The signed assertion's `aud`.
    pub fn origin(&self) -> String {
        let mut origin = String::with_capacity(self.scheme.len() + 3 + self.authority.len());
        origin.push_str(self.scheme);
        origin.push_str("://");
        origin.push_str(self.host);
        origin.make_ascii_lowercase();
        if let Some(port) = self.port.filter(|&p| Some(p) != default_port(self.scheme)) {
            origin.push(':');
            origin.push_str(&port.to_string());
        }
        origin
    }

    /// The path without the query, which is what logs may show: a query can carry tokens.
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target, |(path, _)| path)
    }

    /// `scheme://host[:port]/path`: the page without its query, for log lines.
    pub fn page(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.path())
    }

    /// The parsed URL. It must name exactly the authority that was validated: if the parser
    /// reinterpreted any of it (a different host, a moved port, userinfo), it is refused.
    pub fn url(&self) -> Result<Url, ForwardedError> {
        let text = format!("{}://{}{}", self.scheme, self.authority, self.target);
        let url = Url::parse(&text).map_err(|_| ForwardedError::Invalid("URL"))?;
        if same_authority(&url, self.host, self.port) {
            Ok(url)
        } else {
            Err(ForwardedError::Invalid("host"))
        }
    }
}

/// Why the forwarded headers could not be trusted or understood.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ForwardedError {
    /// The named header was absent (or empty).
    #[error("the {0} header is missing")]
    Missing(&'static str),
    /// The named header was present but not acceptable.
    #[error("the {0} header is not valid")]
    Invalid(&'static str),
    /// The request did not come from a trusted proxy, so its headers mean nothing.
    #[error("the request did not come from a trusted proxy")]
    UntrustedPeer,
    /// The named header's path could be read as another path than the one written.
    #[error("the {0} header's path has {1}")]
    HiddenPath(&'static str, PathProblem),
}

/// What the original request's path may contain beyond plain segments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathRules {
    /// `ALLOW_ENCODED_SLASHES`: let `%2F`/`%5C` through (GitLab's API names projects
    /// `group%2Fproject`). Dot segments are refused whatever it says.
    pub allow_encoded_slashes: bool,
}

/// Why [`check_path`] refused a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    /// A `.` or `..` segment, literal or percent-encoded, possibly followed by `;params`.
    #[error("a dot segment")]
    DotSegment,
    /// `%2F` or `%5C`.
    #[error("an encoded slash or backslash (ALLOW_ENCODED_SLASHES=true lets them through)")]
    EncodedSlash,
    /// A literal `\`.
    #[error("a backslash")]
    Backslash,
}

/// Rebuilds the original request from Traefik/Caddy `X-Forwarded-*` headers.
///
/// Pass each header's value (or `None` when absent). Comma lists in `X-Forwarded-Proto`
/// and `X-Forwarded-Host`, which appear when proxies are chained, are reduced to their
/// first element: the value set by the proxy nearest the client. The path must pass
/// [`check_path`] under `rules`.
pub fn from_forwarded_headers<'r>(
    proto: Option<&'r str>,
    host: Option<&'r str>,
    uri: Option<&'r str>,
    method: Option<&'r str>,
    rules: PathRules,
) -> Result<OriginalRequest<'r>, ForwardedError> {
    let scheme = parse_proto(proto)?;
    let host = first_of_list(present(host).ok_or(ForwardedError::Missing(HOST))?, HOST)?;
    let uri = present(uri).ok_or(ForwardedError::Missing(URI))?;
    let (host_text, port) = validate_host_port(host).ok_or(ForwardedError::Invalid(HOST))?;
    validate_request_target(uri).ok_or(ForwardedError::Invalid(URI))?;
    check_path(uri, rules).map_err(|problem| ForwardedError::HiddenPath(URI, problem))?;
    let method = parse_method(method, METHOD)?;

    Ok(OriginalRequest {
        scheme,
        authority: host,
        target: uri,
        host: host_text,
        port,
        method,
    })
}

/// Rebuilds the original request from nginx's `X-Original-URL` (and optional
/// `X-Original-Method`). The URL must be absolute `http`/`https`, written as
/// `scheme://host[:port]/path[?query]`, without userinfo or fragment, and its path must pass
/// [`check_path`] under `rules`.
pub fn from_original_url<'r>(
    value: Option<&'r str>,
    method: Option<&'r str>,
    rules: PathRules,
) -> Result<OriginalRequest<'r>, ForwardedError> {
    let invalid = || ForwardedError::Invalid(ORIGINAL_URL);
    let value = present(value).ok_or(ForwardedError::Missing(ORIGINAL_URL))?;
    if !value.bytes().all(is_plain_url_byte) {
        return Err(invalid());
    }
    let (scheme, rest) = value.split_once("://").ok_or_else(invalid)?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        "https"
    } else if scheme.eq_ignore_ascii_case("http") {
        "http"
    } else {
        return Err(invalid());
    };
    // nginx builds this as `$scheme://$http_host$request_uri`, and `$http_host` is the
    // client's Host header. A Host of `app.example.com?x` or `app.example.com#x` would
    // push the real path into the query or fragment and have the policy judged on `/`.
    // So the authority must be followed directly by the `/` that starts `$request_uri`.
    let slash = rest.find('/').ok_or_else(invalid)?;
    let (authority, target) = rest.split_at(slash);
    let (host_text, port) = validate_host_port(authority).ok_or_else(invalid)?;
    validate_request_target(target).ok_or_else(invalid)?;
    check_path(target, rules)
        .map_err(|problem| ForwardedError::HiddenPath(ORIGINAL_URL, problem))?;
    let method = parse_method(method, ORIGINAL_METHOD)?;

    Ok(OriginalRequest {
        scheme,
        authority,
        target,
        host: host_text,
        port,
        method,
    })
}

/// An empty header value carries no information; treat it as absent.
fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// The first element of a comma list, trimmed. Control characters anywhere in the raw
/// value (CR/LF injection attempts) make the whole header invalid rather than being
/// cut away with the rest of the list.
fn first_of_list<'a>(value: &'a str, header: &'static str) -> Result<&'a str, ForwardedError> {
    // One pass for the check and the first comma: these values come with every auth check.
    let mut comma = None;
    for (i, &b) in value.as_bytes().iter().enumerate() {
        if (b.is_ascii_control() && b != b'\t') || !b.is_ascii() {
            return Err(ForwardedError::Invalid(header));
        }
        if b == b',' && comma.is_none() {
            comma = Some(i);
        }
    }
    let first = comma
        .and_then(|comma| value.get(..comma))
        .unwrap_or(value)
        .trim_matches([' ', '\t']);
    if first.is_empty() {
        return Err(ForwardedError::Invalid(header));
    }
    Ok(first)
}

fn parse_proto(proto: Option<&str>) -> Result<&'static str, ForwardedError> {
    let proto = first_of_list(present(proto).ok_or(ForwardedError::Missing(PROTO))?, PROTO)?;
    if proto.eq_ignore_ascii_case("https") {
        Ok("https")
    } else if proto.eq_ignore_ascii_case("http") {
        Ok("http")
    } else {
        Err(ForwardedError::Invalid(PROTO))
    }
}

/// Absent means GET (nginx and older Traefik do not always send it); present must be an
/// upper-case token, because methods are case-sensitive and a lower-case `get` is a
/// different (unknown) method that policy rules written for `GET` would not cover.
fn parse_method<'r>(
    method: Option<&'r str>,
    header: &'static str,
) -> Result<&'r str, ForwardedError> {
    let Some(method) = present(method) else {
        return Ok("GET");
    };
    let is_upper_tchar =
        |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    if method.len() <= MAX_METHOD_LEN
        && method.bytes().all(is_upper_tchar)
        && method.bytes().any(|b| b.is_ascii_uppercase())
    {
        Ok(method)
    } else {
        Err(ForwardedError::Invalid(header))
    }
}

/// Checks `host[:port]` character by character and splits it. Allowed: letters, digits,
/// `-`, `.`, `_` for names and IPv4; `[hex:.]` for IPv6. That excludes `/ @ \ ? # %`,
/// whitespace, controls and non-ASCII, every one of which would let the URL parser
/// read a different authority than the one written.
fn validate_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if text.starts_with('[') {
        let close = text.find(']')?;
        let (host, rest) = text.split_at(close + 1);
        let inner = host.get(1..host.len() - 1)?;
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let port = match rest {
            "" => None,
            _ => Some(rest.strip_prefix(':')?),
        };
        (host, port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        };
        let name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_';
        if host.is_empty() || !host.bytes().all(name_byte) {
            return None;
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p)?),
    };
    // The host must already be in the form the URL parser would give it (IDNA, IPv4
    // shorthands like `127.1`, IPv6 compression): otherwise the URL built later would name
    // another host than the one checked here. A plain DNS name is already in that form, and
    // the parser (IDNA) was the largest single cost of the auth check, so it is skipped then.
    if !is_plain_dns_name(host) && !is_dotted_decimal_ipv4(host) {
        let canonical = Host::parse(host).ok()?.to_string();
        if !canonical.eq_ignore_ascii_case(host) {
            return None;
        }
    }
    Some((host, port))
}

/// `a.b.c.d` in decimal without leading zeros (the standard library's parser refuses them), the
/// form the URL parser writes an IPv4 address in.
fn is_dotted_decimal_ipv4(host: &str) -> bool {
    // What `Ipv4Addr::from_str` accepts (four decimal octets up to 255, no leading zero), by
    // pattern: about 70 instructions fewer than the general parser, on every check.
    let octet = |part: &[u8]| match *part {
        [a] => a.is_ascii_digit(),
        [b'1'..=b'9', b] => b.is_ascii_digit(),
        [b'1', b, c] => b.is_ascii_digit() && c.is_ascii_digit(),
        [b'2', b'0'..=b'4', c] => c.is_ascii_digit(),
        [b'2', b'5', b'0'..=b'5'] => true,
        _ => false,
    };
    let mut parts = 0;
    for part in host.as_bytes().split(|&b| b == b'.') {
        parts += 1;
        if parts > 4 || !octet(part) {
            return false;
        }
    }
    parts == 4
}

/// A name the URL parser keeps as it is, up to letter case: ASCII letters, digits, `-` and
/// `_` in non-empty labels, no IDNA label (`xn--`), and a last label that starts with a
/// letter, so it can never be read as an IPv4 number (`127.1`, `0x7f`). Anything else goes
/// through the parser.
fn is_plain_dns_name(host: &str) -> bool {
    let mut last = None;
    for label in host.as_bytes().split(|&b| b == b'.') {
        let plain = !label.is_empty()
            && label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            && !label
                .get(..4)
                .is_some_and(|start| start.eq_ignore_ascii_case(b"xn--"));
        if !plain {
            return false;
        }
        last = Some(label);
    }
    last.and_then(|label| label.first())
        .is_some_and(u8::is_ascii_alphabetic)
}

/// An origin-form request target: starts with a single `/`, and consists of bytes that
/// may appear in one. A fragment can never be part of a request, so `#` is refused too.
fn validate_request_target(target: &str) -> Option<()> {
    let rest = target.strip_prefix('/')?;
    if rest.starts_with('/') || !target.bytes().all(is_plain_url_byte) || target.contains('#') {
        return None;
    }
    Some(())
}

/// Refuses a request target whose path (the part before `?`; the query is not looked at) a
/// router and an app could read as two different paths:
///
/// - a dot segment: `.` or `..`, each dot literal or `%2E` in either case, anywhere (also
///   last, `/a/..`), also with Tomcat-style parameters (`/..;x/`, `/..%3B/`). Browsers resolve
///   dot segments before sending, so only crafted requests have them. Names that merely
///   contain dots (`/v1.2/`, `/..a/`, `/...`, `/.well-known/`) pass.
/// - `%2F` or `%5C` (an app that decodes them sees other segments than the router did), unless
///   `rules` allow encoded slashes. They still end a segment when looking for dot segments,
///   so `/x/..%2Fops/` is a dot segment either way.
/// - a literal `\`, which some servers and URL parsers read as `/`.
///
/// One pass over the path's bytes, no allocation: this runs on every auth check.
pub fn check_path(target: &str, rules: PathRules) -> Result<(), PathProblem> {
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let mut rest = path.as_bytes();
    let mut segment = Segment::default();
    while let Some((unit, width)) = path_unit(rest) {
        rest = rest.get(width..).unwrap_or_default();
        match unit {
            PathUnit::Slash => segment.end()?,
            PathUnit::EncodedSlash => {
                // The segment it ends is judged first: `..%2F` is a dot segment whatever
                // ALLOW_ENCODED_SLASHES says.
                segment.end()?;
                if !rules.allow_encoded_slashes {
                    return Err(PathProblem::EncodedSlash);
                }
            }
            PathUnit::Backslash => return Err(PathProblem::Backslash),
            PathUnit::Dot => segment.dot(),
            PathUnit::Params => segment.params = true,
            PathUnit::Other => segment.other(),
        }
    }
    segment.end()
}

/// One step of [`check_path`]'s scan: a byte, or a `%XX` escape that matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathUnit {
    /// `/`: ends a segment.
    Slash,
    /// `%2F` or `%5C`: a separator once the app decodes it.
    EncodedSlash,
    /// `\`.
    Backslash,
    /// `.` or `%2E`.
    Dot,
    /// `;` or `%3B`: the rest of the segment is parameters (Tomcat, Jetty and Spring drop
    /// them before resolving dot segments).
    Params,
    Other,
}

/// The unit at the start of `bytes` and how many bytes it takes; `None` at the end. Any other
/// `%` counts as one ordinary byte, so that every escape that could decode to a dot or a
/// separator is seen, however a decoder would read the bytes before it.
fn path_unit(bytes: &[u8]) -> Option<(PathUnit, usize)> {
    let unit = match bytes {
        [] => return None,
        [b'/', ..] => (PathUnit::Slash, 1),
        [b'\\', ..] => (PathUnit::Backslash, 1),
        [b'.', ..] => (PathUnit::Dot, 1),
        [b';', ..] => (PathUnit::Params, 1),
        [b'%', high, low, ..] => match (high, low.to_ascii_lowercase()) {
            (b'2', b'e') => (PathUnit::Dot, 3),
            (b'2', b'f') | (b'5', b'c') => (PathUnit::EncodedSlash, 3),
            (b'3', b'b') => (PathUnit::Params, 3),
            _ => (PathUnit::Other, 1),
        },
        _ => (PathUnit::Other, 1),
    };
    Some(unit)
}

/// What [`check_path`] has seen of the current segment's name (the part before any `;`).
#[derive(Debug, Default)]
struct Segment {
    dots: usize,
    other: bool,
    params: bool,
}

impl Segment {
    fn dot(&mut self) {
        if !self.params {
            self.dots = self.dots.saturating_add(1);
        }
    }

    fn other(&mut self) {
        if !self.params {
            self.other = true;
        }
    }

    /// At a separator or the end of the path: refuses a name of one or two dots and nothing
    /// else, then starts the next segment.
    fn end(&mut self) -> Result<(), PathProblem> {
        let dot_segment = !self.other && (self.dots == 1 || self.dots == 2);
        *self = Segment::default();
        if dot_segment {
            Err(PathProblem::DotSegment)
        } else {
            Ok(())
        }
    }
}

/// True when `url` has no userinfo, its host is the given host text (up to ASCII case)
/// and its effective port is the given one (or the scheme default when none was given).
fn same_authority(url: &Url, host: &str, port: Option<u16>) -> bool {
    let no_userinfo = url.username().is_empty() && url.password().is_none();
    let same_host = url.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host));
    let expected_port = port.or_else(|| default_port(url.scheme()));
    no_userinfo
        && same_host
        && url.port_or_known_default() == expected_port
        && url.fragment().is_none()
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
#[path = "forwarded_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "forwarded_props.rs"]
mod props;
