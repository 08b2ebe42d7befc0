//! The userinfo request, made by hand and read as plain JSON: `openidconnect` would parse it into
//! typed standard claims, and one claim of an unexpected type (`"email_verified": "true"`, a
//! numeric `name`) would fail the login.

use openidconnect::reqwest;
use reqwest::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::{Map, Value};
use url::Url;

use super::error_chain;

/// Userinfo is a handful of claims; anything much larger is not one, and is not buffered.
const MAX_USERINFO_BYTES: usize = 1024 * 1024;

/// Why userinfo gave no claims, as a refresh must tell the cases apart: a refused token means
/// the user is signed out at the IdP, an unreachable IdP only that it must be asked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserinfoError {
    /// 401: the access token is no longer honoured.
    Refused(String),
    /// No answer, a timeout, or a 5xx.
    Unreachable(String),
    /// Any other answer (another 4xx, not JSON, another subject).
    Invalid(String),
}

impl std::fmt::Display for UserinfoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserinfoError::Refused(text)
            | UserinfoError::Unreachable(text)
            | UserinfoError::Invalid(text) => f.write_str(text),
        }
    }
}

/// GETs `endpoint` with the access token and returns its claims, which must be about `subject`
/// (the verified ID token's `sub`). The error text is for the log and never holds the token.
pub(crate) async fn fetch(
    http: &reqwest::Client,
    endpoint: &Url,
    access_token: &str,
    subject: &str,
) -> Result<Map<String, Value>, UserinfoError> {
    let mut response = http
        .get(endpoint.clone())
        .bearer_auth(access_token)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|err| {
            UserinfoError::Unreachable(format!("request failed: {}", error_chain(&err)))
        })?;
    let status = response.status();
    if !status.is_success() {
        // RFC 6750: the reason of a refused token is in WWW-Authenticate, not in the body.
        let reason = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(|v| format!(" ({v})"))
            .unwrap_or_default();
        let text = format!("HTTP {status}{reason}");
        return Err(match status.as_u16() {
            401 => UserinfoError::Refused(text),
            500..=599 => UserinfoError::Unreachable(text),
            _ => UserinfoError::Invalid(text),
        });
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| {
        UserinfoError::Unreachable(format!("reading the answer failed: {}", error_chain(&err)))
    })? {
        if body.len() + chunk.len() > MAX_USERINFO_BYTES {
            return Err(UserinfoError::Invalid(format!(
                "the answer is larger than {MAX_USERINFO_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    parse(content_type.as_deref(), &body, subject).map_err(UserinfoError::Invalid)
}

/// Reads a userinfo answer: a JSON object whose `sub` is `subject`. A signed (JWT) answer is
/// refused with a message saying so, rather than mistaken for malformed JSON.
pub(crate) fn parse(
    content_type: Option<&str>,
    body: &[u8],
    subject: &str,
) -> Result<Map<String, Value>, String> {
    let media_type = content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase());
    if media_type.as_deref() == Some("application/jwt") {
        return Err(
            "the provider answers userinfo as a signed JWT (application/jwt); portcullis \
                    reads JSON userinfo only: register the client without \
                    userinfo_signed_response_alg"
                .to_string(),
        );
    }
    let claims = match serde_json::from_slice(body) {
        Ok(Value::Object(claims)) => claims,
        Ok(_) => return Err("the answer is not a JSON object".to_string()),
        Err(err) => return Err(format!("the answer is not JSON: {err}")),
    };
    // OIDC Core 5.3.2: without this check, userinfo could describe someone else (a token
    // substitution), and its profile claims would be merged into this user's session.
    match claims.get("sub") {
        Some(Value::String(sub)) if sub == subject => Ok(claims),
        Some(_) => Err("its sub is not the ID token's sub".to_string()),
        None => Err("the answer has no sub".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use serde_json::json;

    #[test]
    fn userinfo_must_be_a_json_object_about_the_same_subject() {
        let ok = json!({"sub": "u1", "email_verified": "true", "name": 42}).to_string();
        let cases: &[(Option<&str>, &str, Result<(), &str>)] = &[
            (Some("application/json"), &ok, Ok(())),
            (Some("application/json; charset=utf-8"), &ok, Ok(())),
            // Some providers send no or a wrong content type; the body decides.
            (None, &ok, Ok(())),
            (Some("text/plain"), &ok, Ok(())),
            (
                Some("application/jwt"),
                "eyJhbGciOi.e30.sig",
                Err("signed JWT"),
            ),
            (
                Some("Application/JWT; charset=utf-8"),
                &ok,
                Err("signed JWT"),
            ),
            (
                Some("application/json"),
                r#"{"sub":"u2"}"#,
                Err("not the ID token's sub"),
            ),
            (
                Some("application/json"),
                r#"{"sub":1}"#,
                Err("not the ID token's sub"),
            ),
            (
                Some("application/json"),
                r#"{"email":"a@b.c"}"#,
                Err("no sub"),
            ),
            (
                Some("application/json"),
                r#"["sub","u1"]"#,
                Err("not a JSON object"),
            ),
            (Some("application/json"), "not json", Err("not JSON")),
            (Some("application/json"), "", Err("not JSON")),
        ];
        for (content_type, body, expected) in cases {
            let result = parse(*content_type, body.as_bytes(), "u1");
            match (expected, result) {
                (Ok(()), Ok(claims)) => {
                    assert_eq!(claims.get("email_verified"), Some(&json!("true")));
                    assert_eq!(claims.get("name"), Some(&json!(42)));
                }
                (Err(part), Err(message)) => {
                    assert!(
                        message.contains(part),
                        "{content_type:?} {body:?}: {message}"
                    )
                }
                (expected, result) => {
                    panic!("{content_type:?} {body:?}: expected {expected:?}, got {result:?}")
                }
            }
        }
    }
}
