//! `/oauth2/sign_out` and `/oauth2/signed_out`: the session is deleted from the store, not only
//! forgotten by the browser; with `OIDC_POST_LOGOUT_REDIRECT_URL` the IdP session ends too.
//! Another site cannot sign a user out: its links get a confirmation page, its forms a 403.

use actix_web::http::header::{self, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use url::Url;

use super::{pages, query_param, session_cookie, signed_in, AppState};
use crate::config::Config;
use crate::http::error::AppError;
use crate::metrics::EndedBy;

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// What to do with a sign-out request, from where it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignOutDecision {
    SignOut,
    /// A GET from another site: show a page whose button signs out (a same-origin POST).
    Confirm,
    /// A POST from another site, or from an origin we do not know.
    Refuse,
}

/// Browsers say where a request comes from (`Sec-Fetch-Site`, `Origin`); clients that send
/// neither (older browsers, scripts) sign out as they always did. `origin_allowed` is whether
/// `Origin` names our own origin or one of the allowed redirect hosts.
pub fn decide(
    is_post: bool,
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
    origin_allowed: impl Fn(&str) -> bool,
) -> SignOutDecision {
    let cross_site = sec_fetch_site.is_some_and(|site| site.eq_ignore_ascii_case("cross-site"));
    if !is_post {
        return if cross_site {
            SignOutDecision::Confirm
        } else {
            SignOutDecision::SignOut
        };
    }
    let same_origin = sec_fetch_site.is_some_and(|site| site.eq_ignore_ascii_case("same-origin"));
    let origin_ok = match origin {
        None => true,
        // Our pages send `Referrer-Policy: no-referrer`, under which browsers send the
        // `Origin` of a form POST as `null`, even to the same origin. Only then is `null` ours:
        // elsewhere it comes from sandboxed frames and the like.
        Some("null") => same_origin,
        Some(origin) => origin_allowed(origin),
    };
    if cross_site || !origin_ok {
        SignOutDecision::Refuse
    } else {
        SignOutDecision::SignOut
    }
}

/// Our own origin, or one of the allowed redirect hosts: where a form of ours may post from.
pub(crate) fn origin_allowed(config: &Config, origin: &str) -> bool {
    let own = config.redirect_url.origin().ascii_serialization();
    origin == own
        || config
            .allowed_redirects
            .resolve(origin, &config.redirect_url)
            // An Origin is scheme, host and port only; anything more is not an origin.
            .is_some_and(|url| url.path() == "/" && url.query().is_none())
}

/// The tokens stored with a session, to name the user to the IdP at logout.
async fn id_token_of(state: &AppState, id: &str) -> Option<String> {
    let sealed = state.store.get_sealed_tokens(id).await.ok()??;
    let plain = state.keys.decrypt(&sealed).ok()?;
    let tokens: serde_json::Value = serde_json::from_slice(&plain).ok()?;
    tokens["id_token"].as_str().map(str::to_string)
}

/// The name of the provider session `id` signed in with (`None`: the unnamed one, or unknown).
async fn provider_of(state: &AppState, id: &str) -> Option<String> {
    let stored = state.store.get_session(id).await.ok()??;
    let view = stored.view().ok()?;
    view.provider.map(str::to_string)
}

fn header_str<'r>(req: &'r HttpRequest, name: &HeaderName) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let config = &state.config;
    let decision = decide(
        req.method() == Method::POST,
        header_str(&req, &SEC_FETCH_SITE),
        header_str(&req, &header::ORIGIN),
        |origin| origin_allowed(config, origin),
    );
    match decision {
        SignOutDecision::SignOut => {}
        SignOutDecision::Confirm => {
            let action = match req.query_string() {
                "" => "/oauth2/sign_out".to_string(),
                query => format!("/oauth2/sign_out?{query}"),
            };
            return Ok(pages::html(
                StatusCode::OK,
                pages::confirm_sign_out(&action),
            ));
        }
        SignOutDecision::Refuse => {
            tracing::info!("sign-out refused: the request came from another site");
            return Ok(pages::plain(
                StatusCode::FORBIDDEN,
                "sign-out from another site refused",
            ));
        }
    }
    let mut id_token = None;
    // The provider the session signed in with ends its own session there.
    let mut provider: Option<String> = None;
    if let Ok(id) = signed_in::session_id(&req, config, &state.keys) {
        id_token = id_token_of(&state, id).await;
        provider = provider_of(&state, id).await;
        if state.store.end_session(id).await? {
            state.metrics.sessions_ended(EndedBy::SignOut, 1);
            tracing::info!("session ended: signed out");
        }
    }
    let rd = query_param(req.query_string(), "rd")
        .and_then(|rd| config.allowed_redirects.resolve(&rd, &config.redirect_url));
    let at_idp = config.post_logout_redirect_url.as_ref().and_then(|back| {
        let carried = rd.as_ref().map(Url::as_str).unwrap_or("");
        state.providers.get(provider.as_deref())?.end_session_url(
            id_token.as_deref(),
            back,
            carried,
        )
    });
    Ok(leave(&state, at_idp.or(rd)))
}

/// Where the IdP sends the browser after its own logout; `state` carries the `rd` of the
/// sign-out, checked again because it made a round trip through the browser.
pub async fn signed_out(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let config = &state.config;
    let rd = query_param(req.query_string(), "state")
        .and_then(|rd| config.allowed_redirects.resolve(&rd, &config.redirect_url));
    leave(&state, rd)
}

fn leave(state: &AppState, next: Option<Url>) -> HttpResponse {
    let clear = session_cookie::clear_session_cookie(&state.config);
    let mut response = match next {
        Some(url) => HttpResponse::Found()
            .insert_header((header::LOCATION, url.to_string()))
            .finish(),
        None => pages::html(StatusCode::OK, pages::signed_out()),
    };
    // Adding a cookie to a built response cannot fail for a cookie we built ourselves.
    let _ = response.add_cookie(&clear);
    pages::secure(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_site_sign_out_is_confirmed_or_refused() {
        let known = |origin: &str| origin == "https://app.example.com";
        let cases = [
            // (POST?, Sec-Fetch-Site, Origin, decision)
            (false, None, None, SignOutDecision::SignOut),
            (false, Some("same-origin"), None, SignOutDecision::SignOut),
            (false, Some("same-site"), None, SignOutDecision::SignOut),
            (false, Some("none"), None, SignOutDecision::SignOut),
            (false, Some("cross-site"), None, SignOutDecision::Confirm),
            (false, Some("Cross-Site"), None, SignOutDecision::Confirm),
            (true, None, None, SignOutDecision::SignOut),
            (
                true,
                Some("same-origin"),
                Some("https://app.example.com"),
                SignOutDecision::SignOut,
            ),
            (
                true,
                None,
                Some("https://app.example.com"),
                SignOutDecision::SignOut,
            ),
            (true, Some("cross-site"), None, SignOutDecision::Refuse),
            (
                true,
                Some("cross-site"),
                Some("https://app.example.com"),
                SignOutDecision::Refuse,
            ),
            (
                true,
                None,
                Some("https://evil.example.com"),
                SignOutDecision::Refuse,
            ),
            (
                true,
                Some("same-site"),
                Some("https://evil.example.com"),
                SignOutDecision::Refuse,
            ),
            (true, None, Some("null"), SignOutDecision::Refuse),
            (
                true,
                Some("same-site"),
                Some("null"),
                SignOutDecision::Refuse,
            ),
            (
                true,
                Some("cross-site"),
                Some("null"),
                SignOutDecision::Refuse,
            ),
            (
                true,
                Some("same-origin"),
                Some("null"),
                SignOutDecision::SignOut,
            ),
        ];
        for (post, site, origin, expected) in cases {
            assert_eq!(
                decide(post, site, origin, known),
                expected,
                "post={post} site={site:?} origin={origin:?}"
            );
        }
    }
}
