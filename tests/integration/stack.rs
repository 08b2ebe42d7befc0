//! A whole deployment for one test: echo app, proxy, IdP, optional Redis, portcullis.

use std::collections::HashMap;

use crate::support::idp::{Extras, ResourceServer, PASSWORD};
use crate::support::portcullis::{test_env, Portcullis, COOKIE_NAME};
use crate::support::Browser;
use crate::support::{Caddy, Idp, Nginx, Proxy, ProxyKind, RedisServer, Traefik, Upstream};

pub struct Stack {
    // Field order is drop order: portcullis first, then what it talks to.
    pub portcullis: Portcullis,
    pub proxy: Proxy,
    pub idp: Idp,
    pub redis: Option<RedisServer>,
    pub upstream: Upstream,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Redis,
    Memory,
}

pub struct Options<'a> {
    pub proxy: ProxyKind,
    pub store: StoreKind,
    pub env: &'a [(&'a str, &'a str)],
    /// Caddy only: the snippet most guides show, whose `uri` has no `?`.
    pub naive_caddy: bool,
    /// Use the IdP's second client, which authenticates with client_secret_post.
    pub client_secret_post: bool,
    /// Sign-out also ends the IdP session (OIDC_POST_LOGOUT_REDIRECT_URL).
    pub idp_logout: bool,
    /// The IdP's client registers portcullis' `/oauth2/backchannel-logout` (reached directly,
    /// not through the proxy) with "session required", so its ID tokens carry `sid`.
    pub backchannel_logout: bool,
    /// More clients at the IdP (e.g. `private_key_jwt` ones); not with `backchannel_logout`.
    pub idp_extras: Extras,
    /// The IdP issues JWT access tokens for this API (and has a machine client for it).
    pub resource_server: Option<ResourceServer>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            proxy: ProxyKind::Traefik,
            store: StoreKind::Redis,
            env: &[],
            naive_caddy: false,
            client_secret_post: false,
            idp_logout: false,
            backchannel_logout: false,
            idp_extras: Extras::default(),
            resource_server: None,
        }
    }
}

impl Stack {
    pub fn start(options: Options<'_>) -> Stack {
        let upstream = Upstream::start();
        let mut portcullis = Portcullis::reserve();
        let proxy = match options.proxy {
            ProxyKind::Traefik => Traefik::start(&portcullis.base_url(), &upstream.url()),
            ProxyKind::Nginx => Nginx::start(&portcullis.hostport(), &upstream.addr()),
            ProxyKind::Caddy => Caddy::start(
                &portcullis.hostport(),
                &upstream.addr(),
                options.naive_caddy,
            ),
        };
        let post_logout = format!("{}/oauth2/signed_out", proxy.base_url());
        let callbacks = [format!("{}/oauth2/callback", proxy.base_url())];
        let idp = if let Some(resource) = options.resource_server {
            assert!(
                options.idp_extras.private_key_jwt_clients.is_empty(),
                "Stack: idp_extras are not passed with resource_server"
            );
            Idp::start_with_resource(&callbacks, std::slice::from_ref(&post_logout), resource)
        } else if options.backchannel_logout {
            assert!(
                options.idp_extras.private_key_jwt_clients.is_empty(),
                "Stack: idp_extras are not passed with backchannel_logout"
            );
            Idp::start_with_backchannel_logout(
                &callbacks,
                std::slice::from_ref(&post_logout),
                &format!("{}/oauth2/backchannel-logout", portcullis.base_url()),
            )
        } else {
            Idp::start_with_extras(
                &callbacks,
                std::slice::from_ref(&post_logout),
                options.idp_extras,
            )
        };
        let redis = (options.store == StoreKind::Redis).then(RedisServer::start);
        let mut env = test_env(
            &idp,
            &proxy.base_url(),
            redis.as_ref().map(|r| r.url()).as_deref(),
        );
        if options.idp_logout {
            env.insert("OIDC_POST_LOGOUT_REDIRECT_URL".into(), post_logout);
        }
        if options.client_secret_post {
            env.insert("OIDC_CLIENT_ID".into(), idp.client_id_post());
            env.insert("OIDC_TOKEN_AUTH_METHOD".into(), "client_secret_post".into());
        }
        for (k, v) in options.env {
            env.insert(k.to_string(), v.to_string());
        }
        portcullis.start(env);
        Stack {
            portcullis,
            proxy,
            idp,
            redis,
            upstream,
        }
    }

    pub fn traefik() -> Stack {
        Stack::start(Options::default())
    }

    pub fn base(&self) -> String {
        self.proxy.base_url()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base(), path)
    }

    /// portcullis directly, not through the proxy.
    pub fn direct(&self, path: &str) -> String {
        format!("{}{}", self.portcullis.base_url(), path)
    }
}

/// Header values the echo app received, lower-case names.
pub fn seen_headers(echo: &serde_json::Value) -> HashMap<String, String> {
    echo["headers"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.to_lowercase(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// A fresh browser signed in as `user` through the stack's proxy, and its session cookie's value.
pub async fn signed_in(stack: &Stack, user: &str) -> (Browser, String) {
    let browser = Browser::new();
    browser
        .sign_in_through(&stack.base(), "/", user, PASSWORD)
        .await;
    let cookie = browser.cookie(&stack.base(), COOKIE_NAME).expect("cookie");
    (browser, cookie)
}

/// The auth check (status mode) of the portcullis at `instance`, for the page `/app` of the
/// stack, with `cookie_header` as the whole `Cookie` header.
pub async fn auth_status_with_header(instance: &str, stack: &Stack, cookie_header: &str) -> u16 {
    Browser::new()
        .get_with_headers(
            &format!("{instance}/oauth2/auth"),
            &[
                ("X-Original-URL", &format!("{}/app", stack.base())),
                ("Cookie", cookie_header),
            ],
        )
        .await
        .status
}

/// The same for the session cookie `cookie` (its value) alone.
pub async fn auth_status_at(instance: &str, stack: &Stack, cookie: &str) -> u16 {
    auth_status_with_header(instance, stack, &format!("{COOKIE_NAME}={cookie}")).await
}
