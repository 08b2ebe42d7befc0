//! Reading and writing portcullis' cookies.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::HttpRequest;

use crate::config::Config;
use crate::crypto::Keys;

/// The session id in the request's session cookie, if the cookie is present and its signature
/// holds. Which of the two failed is returned for the debug log.
pub fn session_id<'r>(
    req: &'r HttpRequest,
    config: &Config,
    keys: &Keys,
) -> Result<&'r str, &'static str> {
    let value = cookie_value(req, &config.cookie_name).ok_or("no session cookie")?;
    keys.verify(value).map_err(|_| "session cookie not valid")
}

/// The raw value of one cookie, borrowed from the request. `HttpRequest::cookie` parses and
/// stores every cookie of the request on each call; the auth check needs one, and its value
/// is checked byte for byte by the signature, so no cookie parser is needed to read it (a
/// quoted or encoded value simply fails the signature).
fn cookie_value<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|header| header.to_str().ok())
        .flat_map(|header| header.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| value.trim())
        })
}

fn base<'c>(config: &Config, name: String, value: String, path: &'static str) -> Cookie<'c> {
    let mut cookie = Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .secure(config.cookie_secure)
        .same_site(SameSite::Lax)
        .finish();
    if let Some(domain) = &config.cookie_domain {
        cookie.set_domain(domain.trim_start_matches('.').to_string());
    }
    cookie
}

pub fn session_cookie<'c>(config: &Config, keys: &Keys, id: &str) -> Cookie<'c> {
    let mut cookie = base(config, config.cookie_name.clone(), keys.sign(id), "/");
    cookie.set_max_age(CookieDuration::seconds(
        config.session_lifetime.as_secs() as i64
    ));
    cookie
}

pub fn clear_session_cookie<'c>(config: &Config) -> Cookie<'c> {
    let mut cookie = base(config, config.cookie_name.clone(), String::new(), "/");
    cookie.make_removal();
    cookie
}

/// Each login in progress has its own cookie, named after its `state`, so that two tabs can
/// sign in at the same time without overwriting each other's binding.
pub fn login_cookie_name(config: &Config, state: &str) -> String {
    let suffix: String = state
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    format!("{}_login_{suffix}", config.cookie_name)
}

pub fn login_cookie<'c>(config: &Config, state: &str, binding: String) -> Cookie<'c> {
    let mut cookie = base(
        config,
        login_cookie_name(config, state),
        binding,
        "/oauth2/",
    );
    cookie.set_max_age(CookieDuration::seconds(
        crate::http::login::LOGIN_TTL.as_secs() as i64,
    ));
    cookie
}

pub fn clear_login_cookie<'c>(config: &Config, state: &str) -> Cookie<'c> {
    let mut cookie = base(
        config,
        login_cookie_name(config, state),
        String::new(),
        "/oauth2/",
    );
    cookie.make_removal();
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &[(&str, &str)]) -> Config {
        let mut env: std::collections::HashMap<String, String> = [
            ("OIDC_ISSUER_URL", "https://idp.example.com"),
            ("OIDC_CLIENT_ID", "portcullis"),
            ("OIDC_CLIENT_SECRET", "secret"),
            (
                "OIDC_REDIRECT_URL",
                "https://auth.example.com/oauth2/callback",
            ),
            ("COOKIE_SECRET", "0123456789abcdef0123456789abcdef"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        Config::from_env_map(env).expect("valid config")
    }

    #[test]
    fn session_cookie_is_secure_http_only_lax_by_default() {
        let config = config(&[]);
        let keys = Keys::derive(b"0123456789abcdef0123456789abcdef").expect("keys");
        let cookie = session_cookie(&config, &keys, &crate::crypto::random_id());
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.same_site(), Some(SameSite::Lax));
        assert_eq!(cookie.path(), Some("/"));
        assert_eq!(cookie.domain(), None);
        assert!(keys.verify(cookie.value()).is_ok());
    }

    #[test]
    fn cookie_domain_and_insecure_mode_apply() {
        let config = config(&[
            ("COOKIE_DOMAIN", ".example.com"),
            ("COOKIE_SECURE", "false"),
        ]);
        let cookie = clear_session_cookie(&config);
        assert_eq!(cookie.secure(), Some(false));
        assert_eq!(cookie.domain(), Some("example.com"));
        let login = login_cookie(&config, "state-value-1234567890", "binding".into());
        assert_eq!(login.path(), Some("/oauth2/"));
        assert_eq!(login.name(), "_portcullis_login_statevalue123456");
    }
}
