//! The identity headers of an allowed request: their names, their values, and how groups are
//! encoded into one of them. Every 2xx sets all of them (empty when unknown), so a value sent
//! by the client can never reach the app.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::BytesMut;
use actix_web::HttpResponse;

use crate::claims;
use crate::session::SessionView;

/// Pairs of names for one value, in the order: user, email, preferred username, groups. The
/// `X-Auth-Request-*` names are oauth2-proxy's; the `Remote-*` ones Authelia's.
pub static NAMES: [[HeaderName; 2]; 4] = [
    [
        HeaderName::from_static("x-auth-request-user"),
        HeaderName::from_static("remote-user"),
    ],
    [
        HeaderName::from_static("x-auth-request-email"),
        HeaderName::from_static("remote-email"),
    ],
    [
        HeaderName::from_static("x-auth-request-preferred-username"),
        HeaderName::from_static("remote-name"),
    ],
    [
        HeaderName::from_static("x-auth-request-groups"),
        HeaderName::from_static("remote-groups"),
    ],
];

/// The provider the user signed in with (`OIDC_PROVIDERS`); empty with one unnamed provider.
/// Authelia has no `Remote-*` name for it.
pub const PROVIDER: HeaderName = HeaderName::from_static("x-auth-request-provider");

/// The signed identity assertion. Without `UPSTREAM_JWT` it is sent empty like any unknown
/// value: Caddy 2.6's `copy_headers` copies a header the answer lacks as the literal text of
/// its placeholder (`{http.reverse_proxy.header.X-Auth-Request-Jwt}`), and skips an empty one.
pub const JWT: HeaderName = HeaderName::from_static("x-auth-request-jwt");

/// The names as the proxy snippets write them (`X-Auth-Request-User`, ...): first every
/// `X-Auth-Request-*` (the provider, then the assertion, last), then every `Remote-*`.
pub const DISPLAY_NAMES: [&str; 10] = [
    "X-Auth-Request-User",
    "X-Auth-Request-Email",
    "X-Auth-Request-Preferred-Username",
    "X-Auth-Request-Groups",
    "X-Auth-Request-Provider",
    "X-Auth-Request-Jwt",
    "Remote-User",
    "Remote-Email",
    "Remote-Name",
    "Remote-Groups",
];

/// Who an allowed request is for, as the headers show it: a session's user, or a bearer token's.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    pub user: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub preferred_username: Option<&'a str>,
    pub provider: Option<&'a str>,
}

impl<'a> From<&'a SessionView<'a>> for Shown<'a> {
    fn from(session: &'a SessionView<'a>) -> Shown<'a> {
        Shown {
            user: session.user,
            email: session.email,
            email_verified: session.email_verified,
            preferred_username: session.preferred_username,
            provider: session.provider,
        }
    }
}

/// The 200 of an allowed request: `Cache-Control: no-store` and every identity header.
pub fn allowed(
    shown: Shown<'_>,
    upstream_groups: &[&str],
    allow_unverified_email: bool,
) -> HttpResponse {
    Rendered::new(shown, upstream_groups, allow_unverified_email).response()
}

/// The values of the identity headers of one identity, ready to answer with. Made once per
/// cached session (see `signed_in::Memo`): they depend only on the session and the
/// configuration, and a clone of a value is a reference count. Values, not a whole header map:
/// a map is about 3 KB, kept for every cached session, and inserting into the answer's own
/// (pooled) map costs no more than cloning one.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// User, email, preferred username, groups (each under both of its [`NAMES`]), provider.
    values: [HeaderValue; 5],
}

impl Rendered {
    pub fn new(
        shown: Shown<'_>,
        upstream_groups: &[&str],
        allow_unverified_email: bool,
    ) -> Rendered {
        let groups = encode_groups(upstream_groups);
        let email =
            claims::forwarded_email(shown.email, shown.email_verified, allow_unverified_email);
        let texts = [
            shown.user,
            email.unwrap_or(""),
            shown.preferred_username.unwrap_or(""),
            groups.as_str(),
            shown.provider.unwrap_or(""),
        ];
        // The values in one buffer that every header shares: one allocation where one per
        // header would be eight.
        let mut buffer = BytesMut::with_capacity(texts.iter().map(|v| v.len()).sum());
        for text in texts {
            buffer.extend_from_slice(text.as_bytes());
        }
        let buffer = buffer.freeze();
        let mut start = 0;
        let values = texts.map(|text| {
            let end = start + text.len();
            // A value that cannot be a header (control characters from a hostile IdP claim) is
            // sent empty rather than failing the whole check.
            let value = HeaderValue::from_maybe_shared(buffer.slice(start..end))
                .unwrap_or(HeaderValue::from_static(""));
            start = end;
            value
        });
        Rendered { values }
    }

    /// The 200: `Cache-Control: no-store` and every identity header.
    pub fn response(&self) -> HttpResponse {
        let mut response = HttpResponse::new(StatusCode::OK);
        let headers = response.headers_mut();
        // One more for the assertion, which the auth check may add, and the request id.
        headers.reserve(4 + 2 * NAMES.len());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (names, value) in NAMES.iter().zip(&self.values) {
            for name in names {
                headers.insert(name.clone(), value.clone());
            }
        }
        headers.insert(PROVIDER, self.values[NAMES.len()].clone());
        // Replaced by the auth check with the assertion when UPSTREAM_JWT is on.
        headers.insert(JWT, HeaderValue::from_static(""));
        response
    }
}

/// Renders groups as one header value: names joined with `,`.
///
/// Group names may themselves contain commas, so inside each name `%` becomes `%25` and
/// `,` becomes `%2C`; the upstream splits on `,` and percent-decodes each item. Control
/// characters (below 0x20, and 0x7f) are percent-encoded as well, so a group name can
/// never end the header line and inject another header. Everything else, including
/// non-ASCII text, is passed through unchanged as UTF-8.
pub fn encode_groups(groups: &[&str]) -> String {
    let mut header = String::with_capacity(groups.iter().map(|g| g.len() + 1).sum());
    for (i, name) in groups.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        encode_group_name(name, &mut header);
    }
    header
}

fn encode_group_name(name: &str, out: &mut String) {
    if !name.bytes().any(needs_escape) {
        out.push_str(name);
        return;
    }
    for character in name.chars() {
        if character.is_ascii() && needs_escape(character as u8) {
            out.push_str(&format!("%{:02X}", u32::from(character)));
        } else {
            out.push(character);
        }
    }
}

fn needs_escape(byte: u8) -> bool {
    byte == b'%' || byte == b',' || byte.is_ascii_control()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_the_header_names() {
        let lower: Vec<String> = DISPLAY_NAMES
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        let pairs = &NAMES;
        let column = |c: usize| pairs.iter().map(move |pair| pair[c].as_str().to_owned());
        let names: Vec<String> = column(0)
            .chain([PROVIDER.as_str().to_owned(), JWT.as_str().to_owned()])
            .chain(column(1))
            .collect();
        assert_eq!(lower, names);
    }

    #[test]
    fn groups_header_encoding() {
        let cases: &[(&[&str], &str)] = &[
            (&[], ""),
            (&["a"], "a"),
            (&["a", "b c", "Ünïcødé"], "a,b c,Ünïcødé"),
            (&["Smith, John", "100%"], "Smith%2C John,100%25"),
            (&["%2C"], "%252C"),
            (
                &["evil\r\nX-Forwarded-User: root"],
                "evil%0D%0AX-Forwarded-User: root",
            ),
            (
                &["tab\there", "nul\0", "del\x7f", "esc\x1b"],
                "tab%09here,nul%00,del%7F,esc%1B",
            ),
            (
                &["semi;colon", "quote\"", "slash/"],
                "semi;colon,quote\",slash/",
            ),
        ];
        for (groups, expected) in cases {
            assert_eq!(encode_groups(groups), *expected, "{groups:?}");
        }
    }

    #[test]
    fn groups_header_never_contains_control_characters() {
        let every_ascii: String = (0u8..=0x7f).map(char::from).collect();
        let header = encode_groups(&[every_ascii.as_str()]);
        assert!(!header.chars().any(|c| c.is_ascii_control()), "{header:?}");
        assert!(!header.contains(','));
    }
}
