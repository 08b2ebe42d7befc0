//! Reading and writing portcullis' cookies: the session cookie and the chunked login cookies.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::HttpRequest;

use crate::config::Config;
use crate::crypto::Keys;
use crate::login::{LOGIN_TTL_SECS, MAX_COOKIE_CHUNKS};

pub(crate) enum CookieValue<'r> {
    Missing,
    Once(&'r str),
    /// Sent more than once: a sibling subdomain may have planted one (cookie tossing), and
    /// which of them the browser sent first is not ours to guess.
    Repeated,
}

/// The raw value of one cookie, borrowed from the request. `HttpRequest::cookie` parses and
/// stores every cookie of the request on each call; the auth check needs one, and its value
/// is checked byte for byte by the signature, so no cookie parser is needed to read it (a
/// quoted or encoded value simply fails the signature).
pub(crate) fn cookie_value<'r>(req: &'r HttpRequest, name: &str) -> CookieValue<'r> {
    let mut found = CookieValue::Missing;
    let pairs = req
        .headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|header| visible_text(header.as_bytes()))
        .flat_map(|header| header.split(';'));
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        if key.trim() == name {
            found = match found {
                CookieValue::Missing => CookieValue::Once(value.trim()),
                _ => return CookieValue::Repeated,
            };
        }
    }
    found
}

/// The header as text when it is what `HeaderValue::to_str` accepts (visible ASCII and tabs),
/// else nothing: the same answer, eight bytes at a time (this scan was the larger part of
/// reading the cookie, on every check).
fn visible_text(bytes: &[u8]) -> Option<&str> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Exact as a yes or no: a borrow can only spread upwards from a byte that already counts.
    let plain_word = |w: u64| {
        let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let del = w ^ (ONES * 0x7f);
        let has_del = del.wrapping_sub(ONES) & !del & HIGH;
        w & HIGH == 0 && below_space == 0 && has_del == 0
    };
    let visible = |b: &u8| (b' '..=b'~').contains(b) || *b == b'\t';
    let (words, rest) = bytes.as_chunks::<8>();
    let valid = words
        .iter()
        .all(|word| plain_word(u64::from_ne_bytes(*word)) || word.iter().all(visible))
        && rest.iter().all(visible);
    if !valid {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// `__Host-` names are only kept by browsers when Secure, Path=/ and without Domain.
fn host_prefixed(config: &Config) -> bool {
    config.cookie_name.starts_with("__Host-")
}

fn base<'c>(config: &Config, name: String, value: String, path: &'static str) -> Cookie<'c> {
    let host_only = host_prefixed(config);
    let mut cookie = Cookie::build(name, value)
        .path(if host_only { "/" } else { path })
        .http_only(true)
        .secure(config.cookie_secure || host_only)
        .same_site(SameSite::Lax)
        .finish();
    if let (Some(domain), false) = (&config.cookie_domain, host_only) {
        cookie.set_domain(domain.trim_start_matches('.').to_string());
    }
    cookie
}

pub fn session_cookie<'c>(config: &Config, keys: &Keys, id: &str) -> Cookie<'c> {
    let mut cookie = base(config, config.cookie_name.clone(), keys.sign(id), "/");
    cookie.set_max_age(CookieDuration::seconds(
        i64::try_from(config.session_lifetime.as_secs()).unwrap_or(i64::MAX),
    ));
    cookie
}

pub fn clear_session_cookie<'c>(config: &Config) -> Cookie<'c> {
    let mut cookie = base(config, config.cookie_name.clone(), String::new(), "/");
    cookie.make_removal();
    cookie
}

/// Each login in progress has its own cookie, named after its `state`, so that two tabs can
/// sign in at the same time without overwriting each other's login.
pub fn login_cookie_name(config: &Config, state: &str) -> String {
    let suffix: String = state
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    format!("{}_login_{suffix}", config.cookie_name)
}

/// The name of chunk `index` of a login cookie: the first keeps the plain name.
fn chunk_name(base_name: &str, index: usize) -> String {
    match index {
        0 => base_name.to_string(),
        n => format!("{base_name}_{n}"),
    }
}

/// The cookies that carry a sealed login, one per chunk.
pub fn login_cookies<'c>(config: &Config, state: &str, chunks: Vec<String>) -> Vec<Cookie<'c>> {
    let name = login_cookie_name(config, state);
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, chunk)| {
            let mut cookie = base(config, chunk_name(&name, index), chunk, "/oauth2/");
            cookie.set_max_age(CookieDuration::seconds(LOGIN_TTL_SECS as i64));
            cookie
        })
        .collect()
}

/// The chunks of the login cookie for `state`, in order; empty when the first is missing or
/// any chunk was sent twice.
pub fn login_chunks<'r>(req: &'r HttpRequest, config: &Config, state: &str) -> Vec<&'r str> {
    let name = login_cookie_name(config, state);
    let mut chunks = Vec::new();
    for index in 0..MAX_COOKIE_CHUNKS {
        match cookie_value(req, &chunk_name(&name, index)) {
            CookieValue::Once(value) => chunks.push(value),
            CookieValue::Missing => break,
            CookieValue::Repeated => return Vec::new(),
        }
    }
    chunks
}

/// Removes every chunk a login cookie may have had.
pub fn clear_login_cookies<'c>(config: &Config, state: &str) -> Vec<Cookie<'c>> {
    let name = login_cookie_name(config, state);
    (0..MAX_COOKIE_CHUNKS)
        .map(|index| {
            let mut cookie = base(config, chunk_name(&name, index), String::new(), "/oauth2/");
            cookie.make_removal();
            cookie
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_header_is_text_exactly_when_to_str_says_so() {
        use actix_web::http::header::HeaderValue;
        // Every byte value at every place of two words and a tail.
        for at in 0..19 {
            for byte in 0..=255u8 {
                let mut bytes = b"_portcullis=abc.def".to_vec();
                bytes[at] = byte;
                let expected = HeaderValue::from_bytes(&bytes)
                    .ok()
                    .and_then(|value| value.to_str().ok().map(str::to_owned));
                assert_eq!(
                    visible_text(&bytes).map(str::to_owned),
                    expected,
                    "byte {byte:#04x} at {at}"
                );
            }
        }
        assert_eq!(visible_text(b""), Some(""));
        assert_eq!(visible_text(b"\t\t\t\t\t\t\t\t"), Some("\t\t\t\t\t\t\t\t"));
        assert_eq!(visible_text("caf\u{e9}=1".as_bytes()), None);
    }

    fn config(extra: &[(&str, &str)]) -> Config {
        crate::config::for_tests(extra)
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
        let login = login_cookies(
            &config,
            "state-value-1234567890",
            vec!["a".into(), "b".into()],
        );
        assert_eq!(login[0].path(), Some("/oauth2/"));
        assert_eq!(login[0].name(), "_portcullis_login_statevalue123456");
        assert_eq!(login[1].name(), "_portcullis_login_statevalue123456_1");
        assert_eq!(login[1].domain(), Some("example.com"));
    }

    #[test]
    fn host_prefixed_names_make_every_cookie_secure_host_only_and_root_wide() {
        let config = config(&[("COOKIE_NAME", "__Host-portcullis")]);
        let keys = Keys::derive(b"0123456789abcdef0123456789abcdef").expect("keys");
        let mut cookies = vec![
            session_cookie(&config, &keys, &crate::crypto::random_id()),
            clear_session_cookie(&config),
        ];
        cookies.extend(login_cookies(
            &config,
            "state",
            vec!["a".into(), "b".into()],
        ));
        cookies.extend(clear_login_cookies(&config, "state"));
        for cookie in cookies {
            assert!(cookie.name().starts_with("__Host-"), "{cookie}");
            assert_eq!(cookie.secure(), Some(true), "{cookie}");
            assert_eq!(cookie.path(), Some("/"), "{cookie}");
            assert_eq!(cookie.domain(), None, "{cookie}");
        }
    }

    fn request_with_cookies(header: &str) -> HttpRequest {
        actix_web::test::TestRequest::default()
            .insert_header((actix_web::http::header::COOKIE, header))
            .to_http_request()
    }

    #[test]
    fn a_session_cookie_sent_twice_is_no_session() {
        use crate::http::signed_in::{session_id, NotSignedIn};
        let config = config(&[]);
        let keys = Keys::derive(b"0123456789abcdef0123456789abcdef").expect("keys");
        let id = crate::crypto::random_id();
        let signed = keys.sign(&id);
        let once = request_with_cookies(&format!("a=1; _portcullis={signed}; b=2"));
        assert_eq!(session_id(&once, &config, &keys), Ok(id.as_str()));
        let twice = request_with_cookies(&format!("_portcullis={signed}; _portcullis={signed}"));
        assert_eq!(
            session_id(&twice, &config, &keys),
            Err(NotSignedIn::CookieRepeated)
        );
        let planted = request_with_cookies(&format!("_portcullis=planted; _portcullis={signed}"));
        assert!(session_id(&planted, &config, &keys).is_err());
        // Login cookies share the prefix, not the name.
        let with_login =
            request_with_cookies(&format!("_portcullis_login_abc=x; _portcullis={signed}"));
        assert_eq!(session_id(&with_login, &config, &keys), Ok(id.as_str()));
        let none = request_with_cookies("other=1");
        assert_eq!(
            session_id(&none, &config, &keys),
            Err(NotSignedIn::NoCookie)
        );
    }

    #[test]
    fn login_chunks_are_read_in_order_and_refused_when_repeated() {
        let config = config(&[]);
        let name = login_cookie_name(&config, "state");
        let req = request_with_cookies(&format!("{name}_1=second; x=1; {name}=first"));
        assert_eq!(
            login_chunks(&req, &config, "state"),
            vec!["first", "second"]
        );
        let req = request_with_cookies(&format!("{name}=first; {name}=again"));
        assert!(login_chunks(&req, &config, "state").is_empty());
        let req = request_with_cookies(&format!("{name}_1=second"));
        assert!(login_chunks(&req, &config, "state").is_empty());
    }
}
