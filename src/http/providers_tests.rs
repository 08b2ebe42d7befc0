//! In-process tests of several providers (`OIDC_PROVIDERS`): the sign-in page, `provider=`
//! on a route, users named `provider:user`, and sessions of a provider no longer configured.
//! A child of the handler tests, sharing their requests and helpers. Discovery is refused
//! (port 9), so nothing here reaches an IdP; the real logins are the integration tests'.

use super::*;

/// The handler tests' environment with two named providers instead of the unnamed one.
fn two_providers_env(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = env(&[]);
    for name in ["OIDC_ISSUER_URL", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"] {
        env.remove(name);
    }
    for (key, value) in [
        ("OIDC_PROVIDERS", "keycloak,google"),
        ("ALLOWED_REDIRECT_DOMAINS", "app.example.com"),
        ("OIDC_KEYCLOAK_ISSUER_URL", "http://127.0.0.1:9/realms/acme"),
        ("OIDC_KEYCLOAK_CLIENT_ID", "portcullis"),
        ("OIDC_KEYCLOAK_CLIENT_SECRET", "keycloak-secret"),
        ("OIDC_KEYCLOAK_DISPLAY_NAME", "Acme <Staff> & \"Friends\""),
        ("OIDC_GOOGLE_ISSUER_URL", "http://127.0.0.1:9/google"),
        ("OIDC_GOOGLE_CLIENT_ID", "portcullis-google"),
        ("OIDC_GOOGLE_CLIENT_SECRET", "google-secret"),
    ] {
        env.insert(key.to_string(), value.to_string());
    }
    for (key, value) in extra {
        env.insert(key.to_string(), value.to_string());
    }
    env
}

async fn two_providers(extra: &[(&str, &str)]) -> web::Data<AppState> {
    let config = crate::config::Config::from_env_map(two_providers_env(extra)).unwrap();
    crate::build_state(config).await.unwrap()
}

fn of(provider: &str, session: Session) -> Session {
    Session {
        provider: Some(provider.to_string()),
        ..session
    }
}

fn browser_navigation(query: &str) -> TestRequest {
    redirect_check(query, "/reports/q3?year=2024").insert_header((header::ACCEPT, BROWSER_ACCEPT))
}

#[actix_web::test]
async fn a_session_names_its_provider_to_the_app_and_in_userinfo() {
    let state = two_providers(&[]).await;
    let cookie = sign_in(&state, &of("keycloak", alice())).await;
    let (status, headers, _) =
        read(send(&state, with_cookie(status_check(""), &cookie)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, PROVIDER_HEADER), "keycloak");
    assert_eq!(header(&headers, "x-auth-request-user"), "alice");
    let req = with_cookie(TestRequest::get().uri("/oauth2/userinfo"), &cookie);
    let (status, _, body) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["provider"], "keycloak");
}

#[actix_web::test]
async fn a_session_of_a_provider_no_longer_configured_signs_nobody_in() {
    let state = two_providers(&[]).await;
    for provider in [None, Some("okta")] {
        let session = Session {
            provider: provider.map(str::to_string),
            ..alice()
        };
        let cookie = sign_in(&state, &session).await;
        let (status, headers, _) =
            read(send(&state, with_cookie(status_check(""), &cookie)).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{provider:?}");
        assert_no_identity(&headers);
    }
}

#[actix_web::test]
async fn start_without_a_provider_shows_the_sign_in_page_with_every_provider() {
    let state = two_providers(&[
        ("SIGN_IN_TITLE", "Acme <intranet>"),
        (
            "SIGN_IN_LOGO_URL",
            "https://cdn.example.com/logo.png?a=1&b=2",
        ),
    ])
    .await;
    let rd = "https://app.example.com/reports?q=1&x=%3Cy%3E";
    let uri = format!("/oauth2/start?rd={}", urlencoding(rd));
    let (status, headers, body) = read(send(&state, TestRequest::get().uri(&uri)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    assert_page_headers(&headers);
    let csp = header(&headers, "content-security-policy");
    assert!(csp.contains("img-src https://cdn.example.com;"), "{csp}");
    // Everything escaped: the title, the display names, the links' query.
    assert!(body.contains("<h1>Acme &lt;intranet&gt;</h1>"), "{body}");
    assert!(
        body.contains("<title>Acme &lt;intranet&gt; · portcullis</title>"),
        "{body}"
    );
    assert!(
        body.contains("Sign in with Acme &lt;Staff&gt; &amp; \"Friends\""),
        "{body}"
    );
    assert!(body.contains("Sign in with google</a>"), "{body}");
    assert!(
        body.contains("src=\"https://cdn.example.com/logo.png?a=1&amp;b=2\""),
        "{body}"
    );
    let keycloak = format!(
        "href=\"/oauth2/start?provider=keycloak&amp;rd={}\"",
        urlencoding(rd)
    );
    assert!(body.contains(&keycloak), "{keycloak} in {body}");
    assert!(!body.contains("<y>"), "{body}");
    assert!(!body.contains("<script"), "{body}");
    // No logo: nothing but styles may load.
    let state = two_providers(&[]).await;
    let (status, headers, _) =
        read(send(&state, TestRequest::get().uri("/oauth2/start")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!header(&headers, "content-security-policy").contains("img-src"));
}

/// `application/x-www-form-urlencoded`, as the page writes its links.
fn urlencoding(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[actix_web::test]
async fn start_with_providers_narrows_the_page_or_goes_to_the_one() {
    let state = two_providers(&[]).await;
    // One named provider: straight to it (its discovery is down here, so 503, not the page).
    let req = TestRequest::get().uri("/oauth2/start?provider=google&rd=/x");
    let (status, _, body) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // Both: the page, with both.
    let req = TestRequest::get().uri("/oauth2/start?provider=google,keycloak");
    let (status, _, body) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("provider=google&amp;"), "{body}");
    assert!(body.contains("provider=keycloak&amp;"), "{body}");
    // nginx's unencoded rd after the route's provider: the whole rest is the address.
    let req = TestRequest::get()
        .uri("/oauth2/start?provider=google,keycloak&rd=https://app.example.com/a?b=1&c=2");
    let (status, _, body) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("provider=google&amp;rd=https%3A%2F%2Fapp.example.com%2Fa%3Fb%3D1%26c%3D2\""),
        "{body}"
    );
    // A provider that is not configured: 400, never a guess.
    for query in ["provider=okta", "provider=google,okta", "provider="] {
        let req = TestRequest::get().uri(&format!("/oauth2/start?{query}"));
        let (status, _, body) = read(send(&state, req).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
}

#[actix_web::test]
async fn an_anonymous_browser_goes_to_the_sign_in_page_with_its_return_address() {
    let state = two_providers(&[]).await;
    let (status, headers, _) = read(send(&state, browser_navigation("")).await).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = url::Url::parse(header(&headers, "location")).unwrap();
    assert_eq!(
        location.origin().ascii_serialization(),
        "https://auth.example.com"
    );
    assert_eq!(location.path(), "/oauth2/start");
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        [("rd".to_string(), PAGE_URL.to_string())],
        "{location}"
    );
    // A route that pins both lists only those; pinning one would go to that IdP at once.
    let (status, headers, _) =
        read(send(&state, browser_navigation("?provider=google,keycloak")).await).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = url::Url::parse(header(&headers, "location")).unwrap();
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        [
            ("provider".to_string(), "google,keycloak".to_string()),
            ("rd".to_string(), PAGE_URL.to_string())
        ]
    );
}

#[actix_web::test]
async fn a_route_pinned_to_a_provider_refuses_sessions_of_another() {
    let state = two_providers(&[("ADMINS", "google:alice")]).await;
    let keycloak = sign_in(&state, &of("keycloak", alice())).await;
    let google = sign_in(&state, &of("google", alice())).await;
    let cases = [
        ("?provider=keycloak", &keycloak, StatusCode::OK),
        ("?provider=keycloak", &google, StatusCode::FORBIDDEN),
        ("?provider=google,keycloak", &google, StatusCode::OK),
        ("?provider=google", &google, StatusCode::OK),
        // Not configured, or not a name: the rule is refused like an unknown one.
        ("?provider=okta", &google, StatusCode::BAD_REQUEST),
        ("?provider=Google", &google, StatusCode::BAD_REQUEST),
    ];
    for (query, cookie, expected) in cases {
        let (status, _, body) =
            read(send(&state, with_cookie(status_check(query), cookie)).await).await;
        assert_eq!(status, expected, "{query}: {body}");
    }
}

#[actix_web::test]
async fn the_same_user_at_two_providers_is_two_users() {
    let state = two_providers(&[("ADMINS", "keycloak:alice"), ("REQUIRE_GROUP", "admins")]).await;
    // alice is not in `admins`: only the admin entry lets her in, and only keycloak's alice.
    let keycloak = sign_in(&state, &of("keycloak", alice())).await;
    let google = sign_in(&state, &of("google", alice())).await;
    let (status, _, _) = read(send(&state, with_cookie(status_check(""), &keycloak)).await).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = read(send(&state, with_cookie(status_check(""), &google)).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let state = two_providers(&[]).await;
    let keycloak = sign_in(&state, &of("keycloak", alice())).await;
    let google = sign_in(&state, &of("google", alice())).await;
    // A google user whose name looks qualified is still not keycloak's alice.
    let impostor = sign_in(
        &state,
        &of(
            "google",
            Session {
                user: "keycloak:alice".to_string(),
                ..alice()
            },
        ),
    )
    .await;
    let cases = [
        ("?allowed_users=keycloak:alice", &keycloak, StatusCode::OK),
        (
            "?allowed_users=keycloak:alice",
            &google,
            StatusCode::FORBIDDEN,
        ),
        (
            "?allowed_users=keycloak:alice",
            &impostor,
            StatusCode::FORBIDDEN,
        ),
        (
            "?allowed_users=google:bob,google:alice",
            &google,
            StatusCode::OK,
        ),
        // A bare user names nobody with several providers: refused, not guessed.
        ("?allowed_users=alice", &keycloak, StatusCode::BAD_REQUEST),
        (
            "?allowed_users=okta:alice",
            &keycloak,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (query, cookie, expected) in cases {
        let (status, _, body) =
            read(send(&state, with_cookie(status_check(query), cookie)).await).await;
        assert_eq!(status, expected, "{query}: {body}");
    }
}

#[actix_web::test]
async fn a_provider_group_map_replaces_the_global_one_for_its_users() {
    let state = two_providers(&[
        ("GROUP_MAP", r#"{"ops": "operators"}"#),
        ("OIDC_KEYCLOAK_GROUP_MAP", r#"{"/acme/ops": "operators"}"#),
        ("REQUIRE_GROUP", "GroupMap"),
    ])
    .await;
    let keycloak = sign_in(
        &state,
        &of(
            "keycloak",
            Session {
                groups: vec!["/acme/ops".to_string()],
                ..alice()
            },
        ),
    )
    .await;
    // google's alice is in "ops", which only the global map knows.
    let google = sign_in(&state, &of("google", alice())).await;
    let keycloak_ops = sign_in(&state, &of("keycloak", alice())).await;
    for (cookie, expected, groups) in [
        (&keycloak, StatusCode::OK, Some("operators")),
        (
            &google,
            StatusCode::OK,
            Some("operators,Engineering%2C EMEA"),
        ),
        (&keycloak_ops, StatusCode::FORBIDDEN, None),
    ] {
        let (status, headers, _) =
            read(send(&state, with_cookie(status_check(""), cookie)).await).await;
        assert_eq!(status, expected);
        if let Some(groups) = groups {
            assert_eq!(header(&headers, "x-auth-request-groups"), groups);
        }
    }
}

#[actix_web::test]
async fn a_callback_path_names_its_provider() {
    let state = two_providers(&[]).await;
    // An unknown provider's callback: the error page, before anything is looked at.
    let req = TestRequest::get().uri("/oauth2/callback/okta?state=s&code=c");
    let (status, headers, body) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_page_headers(&headers);
    assert!(body.contains("unexpected identity provider"), "{body}");
    // With several providers the bare callback belongs to none of them.
    let req = TestRequest::get().uri("/oauth2/callback?state=s&code=c");
    let (status, _, body) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("unexpected identity provider"), "{body}");
}

#[actix_web::test]
async fn the_sessions_page_shows_and_ends_only_the_providers_own_user() {
    let state = two_providers(&[]).await;
    let keycloak = sign_in(&state, &of("keycloak", alice())).await;
    let google = sign_in(&state, &of("google", alice())).await;
    let (status, _, body) = read(send(&state, sessions_page(&keycloak)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body.matches("<tr").count(),
        2,
        "a header and one session: {body}"
    );
    // "Sign out everywhere else" ends none of google's alice's sessions.
    let id = state.keys.verify(&keycloak).unwrap().to_string();
    let csrf = state.keys.csrf_token(&id);
    let req = sessions_post(&keycloak, &[("csrf", &csrf), ("session", "others")]);
    let (status, _, _) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = read(send(&state, with_cookie(status_check(""), &google)).await).await;
    assert_eq!(status, StatusCode::OK, "google's alice was signed out");
}

#[actix_web::test]
async fn the_assertion_names_the_provider_and_its_mapped_groups() {
    let state = two_providers(&[
        ("UPSTREAM_JWT", "true"),
        ("OIDC_KEYCLOAK_GROUP_MAP", r#"{"ops": ["Operations"]}"#),
        ("GROUP_MAP_STRICT", "true"),
    ])
    .await;
    let cookie = sign_in(&state, &of("keycloak", alice())).await;
    let (status, headers, _) =
        read(send(&state, with_cookie(status_check(""), &cookie)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-auth-request-groups"), "Operations");
    let token = header(&headers, "x-auth-request-jwt").to_string();
    let claims = verified_claims(&state, &token, "https://app.example.com").await;
    assert_eq!(claims["provider"], "keycloak");
    assert_eq!(claims["groups"], serde_json::json!(["Operations"]));
}
