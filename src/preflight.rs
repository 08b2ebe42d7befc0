//! `portcullis check`, the preflight: everything startup would verify, plus what to register at
//! the IdP and ready proxy snippets, without serving.

use std::fmt::Write;

use crate::config::{Config, ProviderSettings, TokenAuthMethod};
use crate::http::identity_headers::DISPLAY_NAMES;
use crate::oidc::{BackchannelSupport, Oidc};
use crate::session::Store;

pub struct Report {
    pub ok: bool,
    pub text: String,
}

pub async fn run(config: Config) -> Report {
    let mut text = String::new();
    let mut ok = true;
    let _ = writeln!(text, "configuration: ok");
    for warning in &config.warnings {
        let _ = writeln!(text, "  warning: {warning}");
    }

    // What each provider's discovery says about back-channel logout, once it answered.
    let mut supports: Vec<Option<Result<BackchannelSupport, String>>> = Vec::new();
    for settings in &config.providers {
        let label = match &settings.name {
            None => "identity provider".to_string(),
            Some(name) => format!("identity provider {name} ({})", settings.display_name),
        };
        let mut backchannel = None;
        match Oidc::new(settings, &config.redirect_url) {
            Ok(oidc) => match oidc.discover().await {
                Ok(()) => {
                    backchannel = Some(
                        oidc.backchannel_support()
                            .await
                            .map_err(|err| err.to_string()),
                    );
                    let _ = writeln!(text, "{label}: ok, issuer {}", settings.issuer_url);
                    if let Some(summary) = oidc.describe() {
                        let _ = writeln!(
                            text,
                            "  authorization endpoint {}\n  token endpoint {}\n  userinfo endpoint {}\n  signing keys in JWKS: {}",
                            summary.authorization_endpoint,
                            summary.token_endpoint,
                            summary.userinfo_endpoint.as_deref().unwrap_or("(none)"),
                            summary.signing_keys
                        );
                        if summary.signing_keys == 0 {
                            ok = false;
                            let _ = writeln!(text, "  problem: the JWKS has no keys");
                        }
                        if let Some(warning) = auth_method_warning(
                            settings.client_auth.method(),
                            summary.token_auth_methods.as_deref(),
                        ) {
                            let _ = writeln!(text, "  warning: {warning}");
                        }
                    }
                    if let Some(graph) = &settings.entra {
                        let _ =
                            writeln!(
                            text,
                            "  kind entra: a groups overage is read from Microsoft Graph at {} \
                             (as {}); the app needs GroupMember.Read.All, admin-consented",
                            graph.graph_url.as_str().trim_end_matches('/'),
                            if graph.group_names { "display names" } else { "object ids" }
                        );
                    }
                }
                Err(err) => {
                    ok = false;
                    let _ = writeln!(text, "{label}: FAILED: {err}");
                }
            },
            Err(err) => {
                ok = false;
                let _ = writeln!(text, "{label}: FAILED: {err}");
            }
        }
        supports.push(backchannel);
    }

    let store = Store::from_config(&config);
    match store {
        Ok(store) => match store.ping().await {
            Ok(()) => {
                let _ = writeln!(
                    text,
                    "session store: ok ({}{})",
                    store.kind(),
                    store_tls(&config)
                );
            }
            Err(err) => {
                ok = false;
                let _ = writeln!(text, "session store: FAILED: {err}");
            }
        },
        Err(err) => {
            ok = false;
            let _ = writeln!(text, "session store: FAILED: {err}");
        }
    }

    text.push_str(&assertion_line(&config));
    text.push_str(&bearer_line(&config));
    for (settings, support) in config.providers.iter().zip(&supports) {
        text.push_str(&registration(&config, settings, support.as_ref()));
    }
    text.push_str(&snippets(&config));
    let _ = writeln!(
        text,
        "\n{}",
        if ok { "check passed" } else { "check FAILED" }
    );
    Report { ok, text }
}

/// `UPSTREAM_JWT`: which key signs, and where apps find the JWKS.
fn assertion_line(config: &Config) -> String {
    match &config.upstream_jwt {
        None => "signed identity assertion: off (UPSTREAM_JWT=false)\n".to_string(),
        Some(jwt) => format!(
            "signed identity assertion: on, X-Auth-Request-Jwt signed by kid {}{}; apps verify \
             it with {}/oauth2/jwks (iss {}){}\n",
            jwt.key.kid(),
            if jwt.key_from_file {
                " (UPSTREAM_JWT_KEY_FILE)"
            } else {
                " (derived from COOKIE_SECRET)"
            },
            origin(config),
            origin(config),
            jwt.previous_key
                .as_ref()
                .map(|k| format!("; previous key kid {} still listed", k.kid()))
                .unwrap_or_default(),
        ),
    }
}

/// What the store's TLS connections trust and present, when `REDIS_CA_FILE` or a client
/// certificate is set (`rediss://` alone says nothing here: the web roots, no certificate).
fn store_tls(config: &Config) -> String {
    let Some(tls) = config.store.redis.as_ref().map(|r| &r.tls) else {
        return String::new();
    };
    match (tls.ca.is_some(), tls.client.is_some()) {
        (false, false) => String::new(),
        (true, false) => ", TLS trusting REDIS_CA_FILE".to_string(),
        (false, true) => ", TLS with a client certificate".to_string(),
        (true, true) => ", TLS trusting REDIS_CA_FILE, with a client certificate".to_string(),
    }
}

/// `BEARER_TOKENS`: whose access tokens pass, for which audiences, and what the proxy must do.
fn bearer_line(config: &Config) -> String {
    match &config.bearer {
        None => "bearer tokens: off (BEARER_TOKENS=false; an Authorization header changes \
                 nothing)\n"
            .to_string(),
        Some(bearer) => {
            let issuers: Vec<&str> = config
                .providers
                .iter()
                .map(|p| p.issuer_url.as_str())
                .collect();
            format!(
                "bearer tokens: on, JWT access tokens of {} with aud one of {} pass without a \
                 session (refused: 401 invalid_token); the proxies pass Authorization on the auth \
                 request by default; the nginx snippet below keeps a refused token's 401 a 401\n",
                issuers.join(", "),
                bearer.audiences.join(", "),
            )
        }
    }
}

fn origin(config: &Config) -> String {
    config.redirect_url.origin().ascii_serialization()
}

/// The back-channel logout URL to register: on the origin of `OIDC_REDIRECT_URL`, where the
/// proxy already routes `/oauth2/` to portcullis.
fn backchannel_logout_url(config: &Config) -> String {
    format!("{}/oauth2/backchannel-logout", origin(config))
}

/// The line under the back-channel logout URI: whether the provider will call it at all.
fn backchannel_support_line(support: Option<&Result<BackchannelSupport, String>>) -> String {
    match support {
        None => "unknown (the provider's discovery document could not be loaded)".to_string(),
        Some(Err(err)) => format!("unknown (the discovery document could not be read: {err})"),
        Some(Ok(BackchannelSupport {
            supported: true,
            session_supported: true,
        })) => "supported, with session ids (discovery: backchannel_logout_supported and \
backchannel_logout_session_supported are true); also turn on \"session required\" for this client"
            .to_string(),
        Some(Ok(BackchannelSupport {
            supported: true,
            session_supported: false,
        })) => "supported without session ids (backchannel_logout_session_supported is not \
true): its logout tokens may name only the user, and then end all of that user's sessions"
            .to_string(),
        Some(Ok(BackchannelSupport {
            supported: false, ..
        })) => "not advertised (backchannel_logout_supported is not true in the discovery \
document): the provider may never call it, and its logouts then leave portcullis \
sessions running"
            .to_string(),
    }
}

fn registration(
    config: &Config,
    provider: &ProviderSettings,
    backchannel: Option<&Result<BackchannelSupport, String>>,
) -> String {
    let which = match &provider.name {
        None => "your identity provider".to_string(),
        Some(name) => format!("{} (provider {name})", provider.display_name),
    };
    format!(
        "\nRegister at {which} (client {client}):\n  \
redirect URI:             {redirect}\n  \
post-logout redirect URI: {post_logout}\n  \
back-channel logout URI:  {backchannel_url}\n    \
back-channel logout at this provider: {backchannel_support}\n  \
grant type: authorization_code with PKCE S256; client authentication: {auth}\n",
        client = provider.client_id,
        backchannel_url = backchannel_logout_url(config),
        backchannel_support = backchannel_support_line(backchannel),
        redirect = provider.callback_url(&config.redirect_url),
        post_logout = config
            .post_logout_redirect_url
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or_else(|| {
                "none (OIDC_POST_LOGOUT_REDIRECT_URL unset: sign-out ends the portcullis session only)"
                    .to_string()
            }),
        auth = provider.client_auth.method().as_str(),
    ) + &client_key_registration(provider)
}

/// A warning when the provider's discovery does not list the client authentication method in
/// use (a warning only: some providers accept more than they advertise).
fn auth_method_warning(method: TokenAuthMethod, listed: Option<&[String]>) -> Option<String> {
    let name = method.as_str();
    match listed {
        Some(methods) if methods.iter().any(|m| m == name) => None,
        // Unlisted means client_secret_basic only (OpenID Connect Discovery 1.0, section 3).
        None if method == TokenAuthMethod::ClientSecretBasic => None,
        Some(methods) => Some(format!(
            "the provider's discovery lists token_endpoint_auth_methods_supported {}, without \
             {name}: the code exchange may be refused",
            methods.join(", ")
        )),
        None => Some(format!(
            "the provider's discovery does not list token_endpoint_auth_methods_supported \
             (which means client_secret_basic only): {name} may be refused"
        )),
    }
}

/// With `private_key_jwt`: the public key to register at the IdP, as one JWK on its own line.
fn client_key_registration(provider: &ProviderSettings) -> String {
    let Some(key) = provider.client_auth.key() else {
        return String::new();
    };
    let prefix = crate::config::provider_prefix(provider.name.as_deref());
    format!(
        "  client's public key ({alg}{kid}, from {prefix}PRIVATE_KEY_FILE), as a JWK:\n{jwk}\n  \
register it at the IdP as this client's public key, where the client's credentials take a JWK \
or a JWKS (a JWKS is {{\"keys\": [<the JWK>]}}); docs/providers/ says where for each IdP\n",
        alg = key.algorithm_name(),
        kid = key
            .kid()
            .map(|kid| format!(", kid {kid:?}"))
            .unwrap_or_default(),
        jwk = key.public_jwk(),
    ) + &key
        .certificate()
        .map(|c| {
            format!(
                "  with its certificate ({prefix}PRIVATE_KEY_CERT_FILE): assertions carry x5t {} \
                 and x5t#S256 {}; where the IdP takes a certificate (Entra ID: Certificates & \
                 secrets), upload that file instead of the JWK\n",
                c.sha1, c.sha256
            )
        })
        .unwrap_or_default()
}

fn snippets(config: &Config) -> String {
    let port = config.listen_addr.port();
    let upstream = format!("portcullis:{port}");
    let list = DISPLAY_NAMES.join(", ");
    let spaced = DISPLAY_NAMES.join(" ");
    let mut nginx_headers = String::new();
    let mut caddy_removals = String::new();
    for name in DISPLAY_NAMES {
        let var = name.to_ascii_lowercase().replace('-', "_");
        let _ = write!(
            nginx_headers,
            "\n    auth_request_set $pc_{var} $upstream_http_{var}; proxy_set_header {name} $pc_{var};"
        );
        let _ = write!(caddy_removals, "\n    request_header -{name}");
    }
    format!(
        r#"
(Replace {upstream} with the address your proxy reaches portcullis at.)

Traefik (dynamic configuration):
  http:
    middlewares:
      portcullis:
        forwardAuth:
          address: "http://{upstream}/oauth2/forward-auth"
          trustForwardHeader: false
          authResponseHeaders: [{list}]
  (and route {origin}/oauth2/ to http://{upstream} without the middleware)

nginx (inside your server block):
  location /oauth2/ {{ proxy_pass http://{upstream}; proxy_set_header Host $host; proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Forwarded-Host $http_host; }}
  location = /_oauth2_auth {{ internal; proxy_pass http://{upstream}/oauth2/auth; proxy_pass_request_body off; proxy_set_header Content-Length ""; proxy_set_header X-Original-URL $scheme://$http_host$request_uri; proxy_set_header X-Original-Method $request_method; }}
  location @oauth2_signin {{ if ($auth_www_authenticate) {{ return 401 "invalid bearer token\n"; }} return 302 /oauth2/start?rd=$scheme://$http_host$request_uri; }}
  location / {{
    auth_request /_oauth2_auth;
    auth_request_set $auth_www_authenticate $upstream_http_www_authenticate;
    error_page 401 = @oauth2_signin;{nginx_headers}
    proxy_pass http://your-app;
  }}

Caddy:
  handle /oauth2/* {{ reverse_proxy {upstream} }}
  route {{
    # copy_headers skips empty values: remove client-sent identity headers first.{caddy_removals}
    forward_auth {upstream} {{
      # The trailing "?" stops Caddy from copying the visited page's query onto the auth URL.
      uri /oauth2/forward-auth?
      copy_headers {spaced}
    }}
    reverse_proxy your-app:80
  }}
"#,
        origin = origin(config),
    )
}

#[cfg(test)]
mod tests {

    use super::*;

    fn config() -> Config {
        crate::config::for_tests(&[(
            "OIDC_REDIRECT_URL",
            "https://app.example.com:8443/oauth2/callback",
        )])
    }

    #[test]
    fn a_method_the_providers_discovery_does_not_list_is_warned_about() {
        use TokenAuthMethod::{ClientSecretBasic, ClientSecretPost, PrivateKeyJwt};
        let both = [
            "client_secret_basic".to_string(),
            "private_key_jwt".to_string(),
        ];
        let basic = ["client_secret_basic".to_string()];
        let cases: &[(TokenAuthMethod, Option<&[String]>, bool)] = &[
            (ClientSecretBasic, None, false),
            (ClientSecretBasic, Some(&basic), false),
            (PrivateKeyJwt, Some(&both), false),
            (PrivateKeyJwt, Some(&basic), true),
            (PrivateKeyJwt, None, true),
            (ClientSecretPost, None, true),
            (ClientSecretPost, Some(&both), true),
        ];
        for (method, listed, warned) in cases {
            let warning = auth_method_warning(*method, *listed);
            assert_eq!(
                warning.is_some(),
                *warned,
                "{method:?} {listed:?}: {warning:?}"
            );
            if let Some(warning) = warning {
                assert!(warning.contains(method.as_str()), "{warning}");
            }
        }
    }

    #[test]
    fn the_store_line_says_what_its_tls_trusts_and_presents() {
        let testdata = |f: &str| format!("{}/src/oidc/testdata/{f}", env!("CARGO_MANIFEST_DIR"));
        let (cert, key) = (
            testdata("ec-p256-test-cert.pem"),
            testdata("ec-p256-test-key.pem"),
        );
        assert_eq!(store_tls(&config()), "");
        let plain_tls = crate::config::for_tests(&[("REDIS_URL", "rediss://redis.example:6380")]);
        assert_eq!(store_tls(&plain_tls), "");
        let both = crate::config::for_tests(&[
            ("REDIS_URL", "rediss://redis.example:6380"),
            ("REDIS_CA_FILE", &cert),
            ("REDIS_CLIENT_CERT_FILE", &cert),
            ("REDIS_CLIENT_KEY_FILE", &key),
        ]);
        assert_eq!(
            store_tls(&both),
            ", TLS trusting REDIS_CA_FILE, with a client certificate"
        );
    }

    #[test]
    fn the_check_says_whether_bearer_tokens_pass_and_for_which_audiences() {
        assert!(bearer_line(&config()).starts_with("bearer tokens: off"));
        let on = crate::config::for_tests(&[
            ("BEARER_TOKENS", "true"),
            ("BEARER_AUDIENCES", "https://api.example.com/,billing"),
        ]);
        let line = bearer_line(&on);
        let issuer = &on.providers[0].issuer_url;
        for expected in [
            "bearer tokens: on",
            issuer.as_str(),
            "aud one of https://api.example.com/, billing",
            "pass Authorization",
            "refused token's 401",
        ] {
            assert!(line.contains(expected), "{expected:?} in {line}");
        }
    }

    #[test]
    fn the_check_says_which_key_signs_assertions_and_the_snippets_pass_them() {
        assert_eq!(
            assertion_line(&config()),
            "signed identity assertion: off (UPSTREAM_JWT=false)\n"
        );
        let on = crate::config::for_tests(&[("UPSTREAM_JWT", "true")]);
        let kid = on.upstream_jwt.as_ref().map(|j| j.key.kid().to_string());
        let line = assertion_line(&on);
        assert!(
            line.contains(&format!(
                "kid {} (derived from COOKIE_SECRET)",
                kid.unwrap_or_default()
            )),
            "{line}"
        );
        assert!(
            line.contains("https://auth.example.com/oauth2/jwks"),
            "{line}"
        );
        let snippets = snippets(&on);
        for expected in [
            "X-Auth-Request-Provider, X-Auth-Request-Jwt, Remote-User",
            "proxy_set_header X-Auth-Request-Jwt $pc_x_auth_request_jwt;",
            "request_header -X-Auth-Request-Jwt",
        ] {
            assert!(snippets.contains(expected), "{expected:?} in {snippets}");
        }
    }

    #[test]
    fn a_private_key_jwt_provider_is_told_its_public_jwk_on_a_line_of_its_own() {
        let key_file = format!(
            "{}/src/oidc/testdata/ec-p256-test-key.pem",
            env!("CARGO_MANIFEST_DIR")
        );
        let config = crate::config::for_tests_with_providers(
            &["corp", "partner"],
            &[
                ("OIDC_CORP_CLIENT_SECRET", ""),
                ("OIDC_CORP_TOKEN_AUTH_METHOD", "private_key_jwt"),
                ("OIDC_CORP_PRIVATE_KEY_FILE", &key_file),
                ("OIDC_CORP_PRIVATE_KEY_ID", "corp-1"),
            ],
        );
        let corp = registration(&config, &config.providers[0], None);
        assert!(
            corp.contains("client authentication: private_key_jwt\n"),
            "{corp}"
        );
        assert!(
            corp.contains("(ES256, kid \"corp-1\", from OIDC_CORP_PRIVATE_KEY_FILE)"),
            "{corp}"
        );
        let jwk_lines: Vec<&str> = corp.lines().filter(|l| l.starts_with('{')).collect();
        assert_eq!(jwk_lines.len(), 1, "{corp}");
        let jwk: serde_json::Value = serde_json::from_str(jwk_lines[0]).unwrap();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["kid"], "corp-1");
        assert!(
            corp.contains("register it at the IdP as this client's public key"),
            "{corp}"
        );
        // The provider with a secret is told no key.
        let partner = registration(&config, &config.providers[1], None);
        assert!(
            partner.contains("client authentication: client_secret_basic\n"),
            "{partner}"
        );
        assert!(!partner.contains("JWK"), "{partner}");
        assert!(!corp.contains("x5t"), "{corp}");
        let with_certificate = crate::config::for_tests(&[
            ("OIDC_CLIENT_SECRET", ""),
            ("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt"),
            ("OIDC_PRIVATE_KEY_FILE", &key_file),
            (
                "OIDC_PRIVATE_KEY_CERT_FILE",
                &key_file.replace("ec-p256-test-key.pem", "ec-p256-test-cert.pem"),
            ),
        ]);
        let text = registration(&with_certificate, &with_certificate.providers[0], None);
        let thumbprints = with_certificate.providers[0]
            .client_auth
            .key()
            .and_then(|k| k.certificate().cloned())
            .unwrap();
        assert!(
            text.contains(&format!(
                "OIDC_PRIVATE_KEY_CERT_FILE): assertions carry x5t {} and x5t#S256 {}",
                thumbprints.sha1, thumbprints.sha256
            )),
            "{text}"
        );
    }

    #[test]
    fn each_provider_is_told_its_own_callback_and_client() {
        let config = crate::config::for_tests_with_providers(
            &["keycloak", "google"],
            &[("OIDC_GOOGLE_DISPLAY_NAME", "Google Workspace")],
        );
        let text: String = config
            .providers
            .iter()
            .map(|provider| registration(&config, provider, None))
            .collect();
        for expected in [
            "Register at keycloak (provider keycloak) (client portcullis-keycloak):",
            "redirect URI:             https://auth.example.com/oauth2/callback/keycloak\n",
            "Register at Google Workspace (provider google) (client portcullis-google):",
            "redirect URI:             https://auth.example.com/oauth2/callback/google\n",
        ] {
            assert!(text.contains(expected), "{expected:?} in {text}");
        }
    }

    #[test]
    fn registration_names_the_back_channel_logout_url_and_what_the_provider_says() {
        let supported = |supported, session_supported| {
            Ok(BackchannelSupport {
                supported,
                session_supported,
            })
        };
        let cases: &[(Option<Result<BackchannelSupport, String>>, &str)] = &[
            (Some(supported(true, true)), "supported, with session ids"),
            (
                Some(supported(true, false)),
                "supported without session ids",
            ),
            (Some(supported(false, true)), "not advertised"),
            (Some(supported(false, false)), "not advertised"),
            (
                Some(Err("HTTP 500".into())),
                "unknown (the discovery document could not be read: HTTP 500)",
            ),
            (
                None,
                "unknown (the provider's discovery document could not be loaded)",
            ),
        ];
        for (support, says) in cases {
            let config = config();
            let text = registration(&config, config.first_provider(), support.as_ref());
            assert!(
                text.contains(
                    "back-channel logout URI:  https://app.example.com:8443/oauth2/backchannel-logout\n"
                ),
                "{text}"
            );
            assert!(
                text.contains(&format!("back-channel logout at this provider: {says}")),
                "{support:?}: {text}"
            );
        }
    }
}
