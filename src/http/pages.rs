//! The few HTML pages portcullis shows, and the headers every one of them carries. Every
//! dynamic value is HTML-escaped.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

/// Sent with every page and with the callback: our URLs (with `state`, `rd`) stay here.
pub const REFERRER_POLICY: (HeaderName, HeaderValue) = (
    header::REFERRER_POLICY,
    HeaderValue::from_static("no-referrer"),
);

/// Our pages hold buttons (sign out, try again): no other site may frame them (clickjacking),
/// and no browser may read them as anything but what they say they are.
static PAGE_HEADERS: [(HeaderName, HeaderValue); 4] = [
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ),
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    REFERRER_POLICY,
];

/// Adds the page headers (and `Cache-Control: no-store`) to a response.
pub fn secure(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    for (name, value) in &PAGE_HEADERS {
        headers.insert(name.clone(), value.clone());
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An HTML page with the page headers.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    secure(
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
    )
}

/// A one-line plain-text answer with the page headers.
pub fn plain(status: StatusCode, message: &str) -> HttpResponse {
    // Without `format!` and a parsed content type: every anonymous check answers this way.
    let mut body = String::with_capacity(message.len() + 1);
    body.push_str(message);
    body.push('\n');
    secure(
        HttpResponse::build(status)
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ))
            .body(body),
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1c1e21;\
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}\
main{background:#fff;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15);padding:2rem 2.5rem;\
max-width:32rem}h1{font-size:1.4rem;margin-top:0}a.button,button{display:inline-block;\
background:#1a56db;color:#fff;border:0;border-radius:4px;padding:.6rem 1.2rem;font-size:1rem;\
text-decoration:none;cursor:pointer}a.button:focus,button:focus{outline:3px solid #f59e0b;\
outline-offset:2px}p.small{color:#4b5563;font-size:.9rem}";

fn page(title: &str, body: &str) -> String {
    styled_page(title, "", body)
}

/// A page with style rules of its own after the common ones (constants only: never values).
fn styled_page(title: &str, style: &'static str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · portcullis</title><style>{STYLE}{style}</style></head>\
<body><main>{body}</main></body></html>",
        title = text(title),
    )
}

pub fn forbidden(user: &str) -> String {
    page(
        "Access denied",
        &format!(
            "<h1>Access denied</h1><p>You are signed in as <strong>{user}</strong>, \
but this account may not open this page.</p>\
<form method=\"post\" action=\"/oauth2/sign_out\"><button type=\"submit\">Sign out</button></form>\
<p class=\"small\">Ask your administrator for access, or sign in with another account.</p>",
            user = text(user)
        ),
    )
}

pub fn login_error(message: &str) -> String {
    page(
        "Sign-in failed",
        &format!(
            "<h1>Sign-in failed</h1><p>{message}</p>\
<p><a class=\"button\" href=\"{retry}\">Try again</a></p>",
            message = text(message),
            retry = attr("/oauth2/start"),
        ),
    )
}

/// One button of the sign-in page: the provider's display name and where it starts a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderChoice {
    pub display_name: String,
    pub start_url: String,
}

const SIGN_IN_STYLE: &str = "ul.providers{list-style:none;padding:0;margin:1.5rem 0 0}\
ul.providers li{margin:.6rem 0}ul.providers a.button{display:block;text-align:center}\
img.logo{display:block;max-width:12rem;max-height:4rem;margin:0 auto 1rem}";

/// The sign-in page of several providers: one link per provider (no script, no form: a link
/// works in every browser and to every screen reader).
pub fn sign_in(title: &str, logo_url: Option<&str>, choices: &[ProviderChoice]) -> String {
    let logo = logo_url
        .map(|url| format!("<img class=\"logo\" src=\"{}\" alt=\"\">", attr(url)))
        .unwrap_or_default();
    let buttons: String = choices
        .iter()
        .map(|choice| {
            format!(
                "<li><a class=\"button\" href=\"{href}\">Sign in with {name}</a></li>",
                href = attr(&choice.start_url),
                name = text(&choice.display_name),
            )
        })
        .collect();
    styled_page(
        title,
        SIGN_IN_STYLE,
        &format!(
            "{logo}<h1>{title}</h1><p>Choose how to sign in.</p>\
<nav aria-label=\"Identity providers\"><ul class=\"providers\">{buttons}</ul></nav>",
            title = text(title),
        ),
    )
}

/// The sign-in page's answer: the page headers, and an image source for the logo's origin
/// only (the page loads nothing else).
pub fn sign_in_response(body: String, logo_origin: Option<&str>) -> HttpResponse {
    let mut response = html(StatusCode::OK, body);
    let policy = match logo_origin {
        Some(origin) => format!(
            "default-src 'none'; style-src 'unsafe-inline'; img-src {origin}; \
             frame-ancestors 'none'; base-uri 'none'"
        ),
        None => return response,
    };
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

pub fn signed_out() -> String {
    page(
        "Signed out",
        "<h1>Signed out</h1><p>You have been signed out.</p>\
<p><a class=\"button\" href=\"/oauth2/start\">Sign in again</a></p>",
    )
}

/// Asked of a sign-out link followed from another site: the user confirms with a POST from
/// our own page, which another site cannot forge.
pub fn confirm_sign_out(action: &str) -> String {
    page(
        "Sign out?",
        &format!(
            "<h1>Sign out?</h1><p>Another site sent you here to sign out.</p>\
<form method=\"post\" action=\"{action}\"><button type=\"submit\">Sign out</button></form>",
            action = attr(action),
        ),
    )
}

/// One of the user's sessions as the sessions page shows it. Values are escaped by the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow<'a> {
    /// What the row's form posts to name the session: never its id.
    pub handle: &'a str,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; `None` until a check has recorded one.
    pub last_seen: Option<u64>,
    pub user_agent: Option<&'a str>,
    pub address: Option<&'a str>,
    /// The session of the browser looking at the page.
    pub this_browser: bool,
}

const SESSIONS_STYLE: &str = "main{max-width:56rem}table{border-collapse:collapse;width:100%;\
margin:1rem 0}th,td{text-align:left;padding:.5rem;border-bottom:1px solid #e5e7eb;\
vertical-align:middle}td.agent{word-break:break-word}tr.this{background:#eff6ff}\
td form{margin:0}button.quiet{background:#4b5563}";

/// Where the sessions page's buttons post.
pub const SESSIONS_SIGN_OUT_ACTION: &str = "/oauth2/sessions/sign-out";

/// The `session` value of "Sign out everywhere else" (a handle is 43 characters: never this).
pub const ALL_OTHER_SESSIONS: &str = "others";

/// A time as the sessions page shows it: `2023-11-14 22:13:20 UTC`.
pub fn utc(unix: u64) -> String {
    // humantime formats up to the year 9999 only; a stored value beyond it is shown raw.
    const YEAR_10000: u64 = 253_402_300_800;
    match std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(unix)) {
        Some(time) if unix < YEAR_10000 => {
            let rfc3339 = humantime::format_rfc3339_seconds(time).to_string();
            format!(
                "{} UTC",
                rfc3339.trim_end_matches('Z').replacen('T', " ", 1)
            )
        }
        _ => unix.to_string(),
    }
}

/// A form that posts to the sessions page's sign-out with the CSRF token and one target.
fn sign_out_form(csrf: &str, target: &str, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"session\" value=\"{target}\">\
<button type=\"submit\">{label}</button></form>",
        action = attr(SESSIONS_SIGN_OUT_ACTION),
        csrf = attr(csrf),
        target = attr(target),
        label = text(label),
    )
}

/// The signed-in user's live sessions, oldest first, this browser's marked; every other one
/// with a button that signs it out, and one for all of them. Plain forms: no JavaScript.
pub fn own_sessions(user: &str, rows: &[SessionRow<'_>], csrf: &str) -> String {
    let mut table = String::from(
        "<table><thead><tr><th>Signed in</th><th>Last seen</th><th>Browser</th>\
<th>Address</th><th></th></tr></thead><tbody>",
    );
    for row in rows {
        let action = if row.this_browser {
            "<strong>this browser</strong>".to_string()
        } else {
            sign_out_form(csrf, row.handle, "Sign out")
        };
        table.push_str(&format!(
            "<tr{class}><td>{created}</td><td>{seen}</td><td class=\"agent\">{agent}</td>\
<td>{address}</td><td>{action}</td></tr>",
            class = if row.this_browser {
                " class=\"this\""
            } else {
                ""
            },
            created = text(&utc(row.created_at)),
            seen = text(
                &row.last_seen
                    .map(utc)
                    .unwrap_or_else(|| "not yet".to_string())
            ),
            agent = text(row.user_agent.unwrap_or("unknown")),
            address = text(row.address.unwrap_or("unknown")),
        ));
    }
    table.push_str("</tbody></table>");
    let others = rows.iter().filter(|row| !row.this_browser).count();
    let everywhere = match others {
        0 => "<p>No other browser is signed in to your account.</p>".to_string(),
        _ => sign_out_form(csrf, ALL_OTHER_SESSIONS, "Sign out everywhere else"),
    };
    styled_page(
        "Your sessions",
        SESSIONS_STYLE,
        &format!(
            "<h1>Your sessions</h1><p>Signed in as <strong>{user}</strong>. These browsers are \
signed in to your account; sign out any you do not recognise.</p>{table}{everywhere}\
<p class=\"small\">Last seen is updated at most once a minute.</p>\
<form method=\"post\" action=\"/oauth2/sign_out\">\
<button type=\"submit\" class=\"quiet\">Sign out this browser</button></form>",
            user = text(user),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_values_are_escaped() {
        let html = forbidden("<script>alert(1)</script>");
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!login_error("<b>x</b>").contains("<b>"));
        let confirm = confirm_sign_out("/oauth2/sign_out?rd=\"><script>");
        assert!(!confirm.contains("\"><script>"));
        let row = SessionRow {
            handle: "\"><script>h</script>",
            created_at: 0,
            last_seen: None,
            user_agent: Some("<img src=x onerror=alert(1)>"),
            address: Some("<b>1.2.3.4</b>"),
            this_browser: false,
        };
        let sessions = own_sessions("<i>alice</i>", &[row], "\"><script>c</script>");
        for raw in ["<script>", "<img", "<b>", "<i>"] {
            assert!(!sessions.contains(raw), "{raw} in {sessions}");
        }
        assert!(
            sessions.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{sessions}"
        );
    }

    #[test]
    fn the_sessions_page_marks_this_browser_and_offers_the_others_a_button() {
        let rows = [
            SessionRow {
                handle: "handle-this",
                created_at: 1_700_000_000,
                last_seen: Some(1_700_000_600),
                user_agent: Some("Firefox"),
                address: Some("192.0.2.1"),
                this_browser: true,
            },
            SessionRow {
                handle: "handle-other",
                created_at: 1_700_000_100,
                last_seen: None,
                user_agent: None,
                address: None,
                this_browser: false,
            },
        ];
        let html = own_sessions("alice", &rows, "token");
        assert_eq!(html.matches("<strong>this browser</strong>").count(), 1);
        assert!(html.contains("2023-11-14 22:13:20 UTC"), "{html}");
        assert!(html.contains("2023-11-14 22:23:20 UTC"), "{html}");
        assert!(html.contains("not yet"), "{html}");
        // This browser's row has no sign-out form of its own: only the other one and "others".
        assert!(!html.contains("value=\"handle-this\""), "{html}");
        assert_eq!(html.matches("value=\"handle-other\"").count(), 1);
        assert_eq!(html.matches("name=\"csrf\" value=\"token\"").count(), 2);
        assert!(html.contains("name=\"session\" value=\"others\""), "{html}");
        // Alone: no "everywhere else" button.
        let alone = own_sessions("alice", &rows[..1], "token");
        assert!(!alone.contains("value=\"others\""), "{alone}");
        assert!(!alone.contains(SESSIONS_SIGN_OUT_ACTION), "{alone}");
    }

    #[test]
    fn times_are_shown_in_utc_and_never_panic() {
        for (unix, shown) in [
            (0, "1970-01-01 00:00:00 UTC"),
            (1_700_000_000, "2023-11-14 22:13:20 UTC"),
            (253_402_300_799, "9999-12-31 23:59:59 UTC"),
            (253_402_300_800, "253402300800"),
            (u64::MAX, "18446744073709551615"),
        ] {
            assert_eq!(utc(unix), shown, "{unix}");
        }
    }

    #[test]
    fn pages_cannot_be_framed_or_sniffed() {
        for response in [
            html(StatusCode::OK, signed_out()),
            plain(StatusCode::BAD_REQUEST, "no"),
        ] {
            let headers = response.headers();
            assert_eq!(headers.get("x-frame-options").unwrap(), "DENY");
            assert!(headers
                .get("content-security-policy")
                .unwrap()
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"));
            assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff");
            assert_eq!(headers.get("referrer-policy").unwrap(), "no-referrer");
            assert_eq!(headers.get("cache-control").unwrap(), "no-store");
        }
    }
}
