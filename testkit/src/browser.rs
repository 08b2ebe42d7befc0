//! A scripted browser: a cookie store, NO automatic redirects (each hop is
//! recorded so tests can assert on every Location), 5 s per request.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, HeaderValue, LOCATION};
use reqwest::Method;
use url::Url;

use crate::html;
use crate::wait::excerpt;

/// What a desktop browser sends when navigating to a page.
pub const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Enough for proxy -> portcullis -> IdP -> interaction -> callback -> app.
pub const MAX_HOPS: usize = 12;

/// One request and its response.
#[derive(Debug, Clone)]
pub struct Hop {
    pub method: String,
    pub url: Url,
    pub status: u16,
    /// `Location`, resolved against `url`, on any response that has one.
    pub location: Option<Url>,
    pub headers: HeaderMap,
    pub body: String,
}

impl Hop {
    pub fn is_redirect(&self) -> bool {
        (300..400).contains(&self.status) && self.location.is_some()
    }

    /// First value of header `name`, if it is valid text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Every value of header `name` (e.g. each Set-Cookie).
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string())
            .collect()
    }

    /// The raw `Set-Cookie` lines of this response (attributes included).
    pub fn set_cookies(&self) -> Vec<String> {
        self.header_all("set-cookie")
    }

    /// The body as JSON; panics showing the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {} -> {}: body is not JSON ({e}): {}",
                self.method, self.url, self.status, self.body
            )
        })
    }

    /// A query parameter of the Location (e.g. `code`, `state`, `error`).
    pub fn location_param(&self, name: &str) -> Option<String> {
        let location = self.location.as_ref()?;
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// "GET url -> 302 -> location" per hop, for assertion messages.
pub fn describe(hops: &[Hop]) -> String {
    hops.iter()
        .map(|hop| match &hop.location {
            Some(location) => format!(
                "{} {} -> {} -> {}",
                hop.method, hop.url, hop.status, location
            ),
            None => format!(
                "{} {} -> {} {}",
                hop.method,
                hop.url,
                hop.status,
                excerpt(&hop.body)
            ),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// reqwest's Jar cannot be emptied; swapping the whole jar can.
#[derive(Default)]
struct SwappableJar {
    inner: RwLock<Arc<Jar>>,
}

impl SwappableJar {
    fn jar(&self) -> Arc<Jar> {
        Arc::clone(&self.inner.read().unwrap_or_else(|p| p.into_inner()))
    }
}

impl CookieStore for SwappableJar {
    fn set_cookies(&self, cookie_headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        self.jar().set_cookies(cookie_headers, url);
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        self.jar().cookies(url)
    }
}

pub struct Browser {
    client: reqwest::Client,
    cookies: Arc<SwappableJar>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A fresh browser: no cookies.
    pub fn new() -> Browser {
        let cookies = Arc::new(SwappableJar::default());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(Arc::clone(&cookies))
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            // Loopback only: never route through an HTTP(S)_PROXY from the environment.
            .no_proxy()
            .user_agent("portcullis-test-browser")
            .build()
            .expect("build reqwest client");
        Browser { client, cookies }
    }

    /// The underlying client (same cookies, no redirects) for unusual requests.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// GET as a browser navigating to a page (Accept: text/html...).
    pub async fn get(&self, url: &str) -> Hop {
        self.get_with_accept(url, BROWSER_ACCEPT).await
    }

    /// GET with a chosen Accept, e.g. "application/json" for an API client.
    pub async fn get_with_accept(&self, url: &str, accept: &str) -> Hop {
        self.request(Method::GET, url, &[("accept", accept)], None)
            .await
    }

    /// GET with extra headers (they replace the browser's Accept if they set one).
    pub async fn get_with_headers(&self, url: &str, headers: &[(&str, &str)]) -> Hop {
        let mut all = vec![("accept", BROWSER_ACCEPT)];
        all.extend_from_slice(headers);
        self.request(Method::GET, url, &all, None).await
    }

    /// POST application/x-www-form-urlencoded.
    pub async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Hop {
        self.request(
            Method::POST,
            url,
            &[("accept", BROWSER_ACCEPT)],
            Some(fields),
        )
        .await
    }

    /// Any method, headers (later ones replace earlier ones of the same name)
    /// and an optional form body. Panics if no response arrives within 5 s.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
    ) -> Hop {
        let parsed = Url::parse(url).unwrap_or_else(|e| panic!("bad URL {url}: {e}"));
        let mut header_map = HeaderMap::new();
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .unwrap_or_else(|e| panic!("bad header name {name}: {e}"));
            let value = HeaderValue::from_str(value)
                .unwrap_or_else(|e| panic!("bad header value {value:?}: {e}"));
            header_map.insert(name, value);
        }
        let mut builder = self
            .client
            .request(method.clone(), parsed.clone())
            .headers(header_map);
        if let Some(fields) = form {
            builder = builder.form(fields);
        }
        let response = builder
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| {
                parsed
                    .join(l)
                    .unwrap_or_else(|e| panic!("{method} {url}: bad Location {l:?}: {e}"))
            });
        let body = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: reading body failed: {e}"));
        Hop {
            method: method.to_string(),
            url: parsed,
            status,
            location,
            headers,
            body,
        }
    }

    /// GET `url`, then follow each 3xx Location (as GET) until a non-3xx or
    /// `max_hops` requests; every hop is returned, the last one last.
    pub async fn follow(&self, url: &str, max_hops: usize) -> Vec<Hop> {
        let first = self.get(url).await;
        self.follow_from(first, max_hops).await
    }

    /// Continue following redirects from an already received response.
    /// 307/308 are followed as GET too (no flow here re-POSTs).
    pub async fn follow_from(&self, first: Hop, max_hops: usize) -> Vec<Hop> {
        let mut hops = vec![first];
        while hops.len() < max_hops {
            let last = hops.last().expect("at least one hop");
            let Some(next) = last.location.clone().filter(|_| last.is_redirect()) else {
                break;
            };
            hops.push(self.get(next.as_str()).await);
        }
        hops
    }

    /// Submits the first form of `page` like a browser without JavaScript:
    /// its own fields, with `overrides` replacing or adding values; then
    /// follows redirects. Panics if the page has no form.
    pub async fn submit_form_once(&self, page: &Hop, overrides: &[(&str, &str)]) -> Hop {
        let form = html::first_form(&page.body).unwrap_or_else(|| {
            panic!(
                "no <form> in {} ({}): {}",
                page.url,
                page.status,
                excerpt(&page.body)
            )
        });
        let action = if form.action.is_empty() {
            page.url.clone()
        } else {
            page.url
                .join(&form.action)
                .unwrap_or_else(|e| panic!("bad form action {:?}: {e}", form.action))
        };
        let mut fields: Vec<(String, String)> = form.fields.clone();
        for (name, value) in overrides {
            match fields.iter_mut().find(|(n, _)| n == name) {
                Some(field) => field.1 = value.to_string(),
                None => fields.push((name.to_string(), value.to_string())),
            }
        }
        let borrowed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if form.method == "post" {
            self.post_form(action.as_str(), &borrowed).await
        } else {
            let mut url = action.clone();
            url.query_pairs_mut().clear().extend_pairs(&borrowed);
            self.get(url.as_str()).await
        }
    }

    /// Submits the first form of `page` (see [`Browser::submit_form_once`]), then follows
    /// redirects.
    pub async fn submit_form(&self, page: &Hop, overrides: &[(&str, &str)]) -> Vec<Hop> {
        let response = self.submit_form_once(page, overrides).await;
        self.follow_from(response, MAX_HOPS).await
    }

    /// On the IdP's login page: submit `user`/`password`, then follow the
    /// redirects (IdP -> portcullis callback -> ...). Returns those hops.
    pub async fn login_at_idp(&self, login_page: &Hop, user: &str, password: &str) -> Vec<Hop> {
        assert!(
            login_page.status == 200 && login_page.body.contains("name=\"password\""),
            "expected the IdP login page, got {} {}: {}",
            login_page.status,
            login_page.url,
            excerpt(&login_page.body)
        );
        self.submit_form(login_page, &[("login", user), ("password", password)])
            .await
    }

    /// The whole sign-in, every hop: GET base+path as a browser -> redirects to
    /// the IdP login page -> submit the form -> redirects back. No assertion
    /// on where it ends (use this for sign-ins expected to fail).
    pub async fn sign_in_trace(
        &self,
        proxy_base_url: &str,
        path: &str,
        user: &str,
        password: &str,
    ) -> Vec<Hop> {
        let mut hops = self
            .follow(&format!("{proxy_base_url}{path}"), MAX_HOPS)
            .await;
        let login_page = hops.last().expect("at least one hop").clone();
        if !(login_page.status == 200 && login_page.body.contains("name=\"password\"")) {
            panic!(
                "signing in through {proxy_base_url}{path} did not reach the IdP login page (already signed in? use a fresh Browser or clear_cookies()):\n{}",
                describe(&hops)
            );
        }
        hops.extend(self.login_at_idp(&login_page, user, password).await);
        hops
    }

    /// Signs in as `user` and returns the final response, which must be a
    /// 200 from beyond the IdP (normally the echo app's JSON).
    pub async fn sign_in_through(
        &self,
        proxy_base_url: &str,
        path: &str,
        user: &str,
        password: &str,
    ) -> Hop {
        let hops = self
            .sign_in_trace(proxy_base_url, path, user, password)
            .await;
        let last = hops.last().expect("at least one hop").clone();
        let still_at_login = last.body.contains("name=\"password\"");
        if last.status != 200 || still_at_login {
            panic!(
                "sign-in as {user} through {proxy_base_url}{path} did not land on the app:\n{}",
                describe(&hops)
            );
        }
        last
    }

    /// Forget every cookie (a new browser profile, same client).
    pub fn clear_cookies(&self) {
        *self
            .cookies
            .inner
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(Jar::default());
    }

    /// The cookies this browser would send to `url`, as (name, value).
    pub fn cookies(&self, url: &str) -> Vec<(String, String)> {
        let url = Url::parse(url).unwrap_or_else(|e| panic!("bad URL {url}: {e}"));
        let Some(header) = self.cookies.cookies(&url) else {
            return Vec::new();
        };
        String::from_utf8_lossy(header.as_bytes())
            .split("; ")
            .filter_map(|pair| pair.split_once('='))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// The value of cookie `name` that would be sent to `url`.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.cookies(url)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Store a cookie as if `url` had answered `Set-Cookie: <set_cookie>`,
    /// e.g. `set_cookie(base, "_portcullis=forged; Path=/")`.
    pub fn set_cookie(&self, url: &str, set_cookie: &str) {
        let url = Url::parse(url).unwrap_or_else(|e| panic!("bad URL {url}: {e}"));
        self.cookies.jar().add_cookie_str(set_cookie, &url);
    }

    /// Drop cookie `name` (path `/`) for `url`, by storing an expired one.
    pub fn remove_cookie(&self, url: &str, name: &str) {
        self.set_cookie(url, &format!("{name}=; Path=/; Max-Age=0"));
    }
}

/// `Accept` of a plain API client (for 401-instead-of-redirect checks).
pub const API_ACCEPT: &str = "application/json";
