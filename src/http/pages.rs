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
const PAGE_HEADERS: [(HeaderName, HeaderValue); 4] = [
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
    for (name, value) in PAGE_HEADERS {
        headers.insert(name, value);
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
    secure(
        HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(format!("{message}\n")),
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
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · portcullis</title><style>{STYLE}</style></head>\
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
