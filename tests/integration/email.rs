//! An unverified email is not an identity: headers and userinfo carry only verified emails, and
//! claims of unexpected types never fail a login.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

use crate::stack::{seen_headers, Options, Stack};
use crate::support::browser::{API_ACCEPT, MAX_HOPS};
use crate::support::idp::PASSWORD;
use crate::support::portcullis::COOKIE_NAME;
use crate::support::{Browser, Idp};

const EMAIL_HEADERS: [&str; 2] = ["x-auth-request-email", "remote-email"];

/// What the app received in `name`; a header the proxy left out counts as empty.
fn header<'a>(headers: &'a std::collections::HashMap<String, String>, name: &str) -> &'a str {
    headers.get(name).map_or("", String::as_str)
}

/// `/oauth2/userinfo` of a signed-in browser, which must answer 200 with JSON.
async fn userinfo(browser: &Browser, stack: &Stack) -> Value {
    let hop = browser
        .get_with_accept(&stack.url("/oauth2/userinfo"), API_ACCEPT)
        .await;
    assert_eq!(hop.status, 200, "userinfo: {}", hop.body);
    hop.json()
}

/// The payload of a compact JWS, unverified (the test only looks at what the IdP put in it).
fn jwt_payload(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

/// The claims of the `cognito` account as the test IdP itself sends them, in the ID token and in
/// userinfo: a code flow run by the test (its own PKCE verifier, a callback that is never
/// contacted), without portcullis. This is what portcullis receives in the tests below.
#[tokio::test]
async fn the_test_idp_sends_cognito_claims_with_their_odd_types() {
    let callback = "http://127.0.0.1:9/never-contacted".to_string();
    let idp = Idp::start(std::slice::from_ref(&callback), &[]);
    let browser = Browser::new();
    let discovery = browser
        .get_with_accept(&idp.discovery_url(), API_ACCEPT)
        .await
        .json();
    let endpoint = |name: &str| {
        discovery[name]
            .as_str()
            .unwrap_or_else(|| panic!("discovery has no {name}: {discovery}"))
            .to_string()
    };

    let verifier = "a-pkce-verifier-for-the-cognito-claims-test-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut authorize = Url::parse(&endpoint("authorization_endpoint")).expect("URL");
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &idp.client_id())
        .append_pair("redirect_uri", &callback)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email groups")
        .append_pair("state", "state-1")
        .append_pair("nonce", "nonce-1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let hops = browser.follow(authorize.as_str(), MAX_HOPS).await;
    let login_page = hops.last().expect("hops");
    assert!(
        login_page.body.contains("name=\"password\""),
        "no login page: {}",
        login_page.body
    );
    let mut hop = browser
        .submit_form_once(login_page, &[("login", "cognito"), ("password", PASSWORD)])
        .await;
    // Follow the IdP's own redirects up to the callback, which is not fetched.
    let mut code = None;
    for _ in 0..MAX_HOPS {
        let location = hop
            .location
            .clone()
            .unwrap_or_else(|| panic!("the IdP stopped at {} {}", hop.status, hop.body));
        if location.as_str().starts_with(&callback) {
            code = hop.location_param("code");
            break;
        }
        hop = browser.get(location.as_str()).await;
    }
    let code = code.expect("the IdP redirected to the callback with a code");

    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let tokens: Value = http
        .post(endpoint("token_endpoint"))
        .basic_auth(idp.client_id(), Some(idp.client_secret()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", callback.as_str()),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token response JSON");
    let id_token = jwt_payload(tokens["id_token"].as_str().expect("an ID token"));
    let access_token = tokens["access_token"].as_str().expect("an access token");
    let userinfo: Value = http
        .get(endpoint("userinfo_endpoint"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo request")
        .json()
        .await
        .expect("userinfo JSON");

    for (source, claims) in [("ID token", &id_token), ("userinfo", &userinfo)] {
        let expected = [
            ("sub", json!("cognito")),
            ("email", json!("cognito@example.com")),
            ("email_verified", json!("true")),
            ("phone_number_verified", json!("false")),
            ("name", json!(42)),
            ("given_name", json!(["Cog", "Nito"])),
            ("updated_at", json!("yesterday")),
            ("address", json!("1 Main Street")),
            ("groups", json!("cognito-users")),
        ];
        for (name, value) in expected {
            assert_eq!(claims[name], value, "{source} claim {name}: {claims}");
        }
    }
}

#[tokio::test]
async fn only_verified_emails_reach_the_app_and_userinfo() {
    let stack = Stack::traefik();

    // Cognito's "email_verified": "true" (a string) is verified, and its other odd claim types
    // (a numeric name, a string address...) do not fail the login.
    let cognito = Browser::new();
    let landed = cognito
        .sign_in_through(&stack.base(), "/", "cognito", PASSWORD)
        .await;
    let headers = seen_headers(&landed.json());
    assert_eq!(headers["x-auth-request-user"], "cognito");
    for name in EMAIL_HEADERS {
        assert_eq!(header(&headers, name), "cognito@example.com", "{name}");
    }
    assert_eq!(headers["x-auth-request-groups"], "cognito-users");
    let info = userinfo(&cognito, &stack).await;
    assert_eq!(info["email"], "cognito@example.com", "{info}");
    assert_eq!(info["groups"], json!(["cognito-users"]), "{info}");

    // dave's email is not verified: the headers are there, empty (a value the client sends
    // itself is replaced), and userinfo says null.
    let dave = Browser::new();
    dave.sign_in_through(&stack.base(), "/", "dave", PASSWORD)
        .await;
    let spoofed = dave
        .get_with_headers(
            &stack.url("/page"),
            &[
                ("X-Auth-Request-Email", "dave@example.com"),
                ("Remote-Email", "dave@example.com"),
            ],
        )
        .await;
    assert_eq!(spoofed.status, 200, "{}", spoofed.body);
    let headers = seen_headers(&spoofed.json());
    assert_eq!(headers["x-auth-request-user"], "dave");
    for name in EMAIL_HEADERS {
        assert_eq!(header(&headers, name), "", "{name}");
    }
    let info = userinfo(&dave, &stack).await;
    assert_eq!(info["user"], "dave", "{info}");
    assert!(
        info.get("email").is_some_and(Value::is_null),
        "email must be present and null: {info}"
    );
}

/// `OIDC_ALLOW_UNVERIFIED_EMAIL=true` forwards dave's unverified email; with
/// `OIDC_USERNAME_CLAIM=email` it also lets him sign in by it.
#[tokio::test]
async fn allow_unverified_email_forwards_it() {
    let stack = Stack::start(Options {
        env: &[
            ("OIDC_ALLOW_UNVERIFIED_EMAIL", "true"),
            ("OIDC_USERNAME_CLAIM", "email"),
        ],
        ..Options::default()
    });
    let dave = Browser::new();
    let landed = dave
        .sign_in_through(&stack.base(), "/", "dave", PASSWORD)
        .await;
    let headers = seen_headers(&landed.json());
    assert_eq!(headers["x-auth-request-user"], "dave@example.com");
    for name in EMAIL_HEADERS {
        assert_eq!(header(&headers, name), "dave@example.com", "{name}");
    }
    let info = userinfo(&dave, &stack).await;
    assert_eq!(info["email"], "dave@example.com", "{info}");
}

/// `OIDC_USERNAME_CLAIM=email`: a verified email (a boolean, or Cognito's string) signs in by
/// it; an unverified one is refused at login with a 403 page, and no session is created.
#[tokio::test]
async fn username_claim_email_refuses_an_unverified_email() {
    let stack = Stack::start(Options {
        env: &[("OIDC_USERNAME_CLAIM", "email")],
        ..Options::default()
    });
    for (user, email) in [
        ("alice", "alice@example.com"),
        ("cognito", "cognito@example.com"),
    ] {
        let browser = Browser::new();
        let landed = browser
            .sign_in_through(&stack.base(), "/", user, PASSWORD)
            .await;
        let headers = seen_headers(&landed.json());
        assert_eq!(headers["x-auth-request-user"], email, "{user}");
    }

    let dave = Browser::new();
    let hops = dave
        .sign_in_trace(&stack.base(), "/", "dave", PASSWORD)
        .await;
    let last = hops.last().expect("hops");
    assert_eq!(last.url.path(), "/oauth2/callback", "{}", last.url);
    assert_eq!(last.status, 403, "dave at login: {}", last.body);
    assert!(
        last.body.contains("not verified"),
        "the page says why: {}",
        last.body
    );
    assert!(dave.cookie(&stack.base(), COOKIE_NAME).is_none());
    assert_eq!(dave.get(&stack.url("/")).await.status, 302, "no session");
}
