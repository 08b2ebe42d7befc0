//! The few HTML pages portcullis shows. Every dynamic value is HTML-escaped.

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_values_are_escaped() {
        let html = forbidden("<script>alert(1)</script>");
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!login_error("<b>x</b>").contains("<b>"));
    }
}
