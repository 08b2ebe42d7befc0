//! Back-channel logout (`POST /oauth2/backchannel-logout`) with the real IdP and real Redis:
//! the IdP's own logout ends exactly the browser that left, on every replica; a token naming
//! only the subject ends all of that user's sessions; every invalid token is a 400 that ends
//! nothing.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::stack::{auth_status_at, signed_in, Options, Stack};
use crate::support::portcullis::{test_env, Portcullis};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const PATH: &str = "/oauth2/backchannel-logout";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A jti nobody used.
fn fresh_jti() -> String {
    format!(
        "jti-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Another portcullis on the stack's configuration and Redis, with `extra` on top.
fn replica(stack: &Stack, extra: &[(&str, &str)]) -> Portcullis {
    let redis = stack.redis.as_ref().expect("redis");
    let mut env = test_env(&stack.idp, &stack.base(), Some(&redis.url()));
    for (name, value) in extra {
        env.insert(name.to_string(), value.to_string());
    }
    let mut replica = Portcullis::reserve();
    replica.start(env);
    replica
}

struct Answer {
    status: u16,
    cache_control: Option<String>,
    body: String,
}

impl Answer {
    /// The JSON error of a 400 (section 2.8), after checking it is one.
    fn error_description(&self, case: &str) -> String {
        assert_eq!(self.status, 400, "{case}: {}", self.body);
        assert_eq!(
            self.cache_control.as_deref(),
            Some("no-store"),
            "{case}: Cache-Control"
        );
        let error: Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{case}: not JSON ({e}): {}", self.body));
        assert_eq!(error["error"], "invalid_request", "{case}: {error}");
        error["error_description"]
            .as_str()
            .unwrap_or_else(|| panic!("{case}: no error_description: {error}"))
            .to_string()
    }

    fn assert_accepted(&self, case: &str) {
        assert_eq!(self.status, 200, "{case}: {}", self.body);
        assert_eq!(self.cache_control.as_deref(), Some("no-store"), "{case}");
        assert_eq!(self.body, "", "{case}: the answer has no body");
    }
}

/// POSTs `body` as the IdP would, with a chosen Content-Type (None: no header).
async fn post_raw(instance: &str, content_type: Option<&str>, body: String) -> Answer {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.post(format!("{instance}{PATH}")).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let cache_control = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Answer {
        status,
        cache_control,
        body: response.text().await.unwrap(),
    }
}

async fn post_token(instance: &str, token: &str) -> Answer {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", token)
        .finish();
    post_raw(instance, Some("application/x-www-form-urlencoded"), body).await
}

/// What oidc-provider sends (tests/idp/README.md), now, for this stack's client.
fn logout_claims(stack: &Stack, sid: Option<&str>, sub: Option<&str>) -> Value {
    let now = now();
    let mut claims = json!({
        "iss": stack.idp.issuer(),
        "aud": stack.idp.client_id(),
        "iat": now,
        "exp": now + 120,
        "jti": fresh_jti(),
        "events": {EVENT: {}},
    });
    if let Some(sid) = sid {
        claims["sid"] = json!(sid);
    }
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    claims
}

/// The IdP session ids portcullis has indexed (one per IdP session that signed in).
fn indexed_sids(stack: &Stack) -> Vec<String> {
    let redis = stack.redis.as_ref().expect("redis");
    let mut sids: Vec<String> = redis
        .cli(&["--scan", "--pattern", "portcullis:sid:*"])
        .lines()
        .filter_map(|key| key.strip_prefix("portcullis:sid:"))
        .map(str::to_string)
        .collect();
    sids.sort();
    sids
}

fn b64(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn the_idps_logout_ends_exactly_that_browsers_session_on_every_replica() {
    let stack = Stack::start(Options {
        backchannel_logout: true,
        ..Options::default()
    });
    let second_replica = replica(&stack, &[]);
    let first = stack.portcullis.base_url();
    let second = second_replica.base_url();

    // The same user in two browsers: two IdP sessions, two sids.
    let (leaving, leaving_cookie) = signed_in(&stack, "alice").await;
    let (_staying, staying_cookie) = signed_in(&stack, "alice").await;
    let sids = indexed_sids(&stack);
    assert_eq!(
        sids.len(),
        2,
        "each sign-in stored its ID token's sid: {sids:?}"
    );
    for instance in [&first, &second] {
        assert_eq!(auth_status_at(instance, &stack, &leaving_cookie).await, 200);
        assert_eq!(auth_status_at(instance, &stack, &staying_cookie).await, 200);
    }

    // The leaving browser ends its session at the IdP itself (its own logout page, as another
    // app's "sign out everywhere" link would send it there).
    let hops = leaving.follow(&stack.idp.end_session_url(), 4).await;
    let confirm = hops.last().expect("hops");
    assert!(
        confirm.body.contains("Sign out?"),
        "no IdP logout page: {}",
        crate::support::browser::describe(&hops)
    );
    let started = Instant::now();
    let done = leaving.submit_form(confirm, &[]).await;
    // oidc-provider answers the browser only after its back-channel POSTs were answered.
    let idp_answered = started.elapsed();
    let refused_second = auth_status_at(&second, &stack, &leaving_cookie).await;
    let refused_after = started.elapsed();
    eprintln!(
        "measured: IdP logout (its back-channel POST included) {idp_answered:?}; \
         refusal seen on the other replica {refused_after:?} after the logout was submitted"
    );
    assert_eq!(
        refused_second,
        401,
        "the other replica refuses at once: {}",
        crate::support::browser::describe(&done)
    );
    assert_eq!(auth_status_at(&first, &stack, &leaving_cookie).await, 401);
    let log = stack.idp.log_tail(50);
    assert!(
        log.contains("back-channel logout sent to portcullis-test for alice"),
        "{log}"
    );
    assert!(!log.contains("failed:"), "{log}");

    // The other browser of the same user is still signed in, everywhere.
    for instance in [&first, &second] {
        assert_eq!(auth_status_at(instance, &stack, &staying_cookie).await, 200);
    }
    assert_eq!(indexed_sids(&stack).len(), 1);
}

#[tokio::test]
async fn a_token_with_only_sub_ends_every_session_of_that_user() {
    let mut stack = Stack::traefik();
    let second_replica = replica(&stack, &[]);
    let first = stack.portcullis.base_url();
    let second = second_replica.base_url();
    let (_a1, alice_one) = signed_in(&stack, "alice").await;
    let (_a2, alice_two) = signed_in(&stack, "alice").await;
    let (_b, bob) = signed_in(&stack, "bob").await;

    let token = stack
        .idp
        .sign(&logout_claims(&stack, None, Some("alice")), &json!({}))
        .await;
    let started = Instant::now();
    post_token(&first, &token).await.assert_accepted("sub only");
    let status = auth_status_at(&second, &stack, &alice_one).await;
    let elapsed = started.elapsed();
    eprintln!("measured: logout POST to one replica until the other refused: {elapsed:?}");
    assert_eq!(status, 401);
    for instance in [&first, &second] {
        assert_eq!(auth_status_at(instance, &stack, &alice_one).await, 401);
        assert_eq!(auth_status_at(instance, &stack, &alice_two).await, 401);
        assert_eq!(
            auth_status_at(instance, &stack, &bob).await,
            200,
            "bob stays"
        );
    }

    // A store that does not answer: 503, no-store, and the token is not refused as invalid.
    stack.redis.as_mut().expect("redis").stop();
    let token = stack
        .idp
        .sign(&logout_claims(&stack, None, Some("bob")), &json!({}))
        .await;
    let answer = post_token(&first, &token).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
}

#[tokio::test]
async fn invalid_logout_tokens_are_refused_and_end_nothing() {
    let stack = Stack::start(Options {
        backchannel_logout: true,
        ..Options::default()
    });
    let first = stack.portcullis.base_url();
    // A replica that trusts no proxy on loopback: the IdP's POST needs no TRUSTED_PROXIES.
    let untrusting_replica = replica(&stack, &[("TRUSTED_PROXIES", "192.0.2.0/24")]);
    let untrusting = untrusting_replica.base_url();

    let (_victim, victim) = signed_in(&stack, "alice").await;
    let sids = indexed_sids(&stack);
    assert_eq!(sids.len(), 1, "{sids:?}");
    let sid = sids[0].clone();
    // Each case is this token, valid and aimed at the victim, with one thing wrong.
    let valid = || logout_claims(&stack, Some(&sid), Some("alice"));
    let idp = &stack.idp;

    type Patch = fn(&mut Value);
    let claim_cases: &[(&str, Patch, &str)] = &[
        (
            "wrong aud",
            |c| c["aud"] = json!("another-client"),
            "not for client",
        ),
        (
            "wrong iss",
            |c| c["iss"] = json!("http://127.0.0.1:1"),
            "issued by",
        ),
        (
            "missing events",
            |c| {
                c.as_object_mut().unwrap().remove("events");
            },
            "no events",
        ),
        (
            "events without the back-channel member",
            |c| c["events"] = json!({"http://schemas.openid.net/event/other": {}}),
            "has no",
        ),
        (
            "the back-channel member is not an object",
            |c| c["events"] = json!({EVENT: true}),
            "is not a JSON object",
        ),
        (
            "events is not an object",
            |c| c["events"] = json!([EVENT]),
            "events is not a JSON object",
        ),
        (
            "with a nonce",
            |c| c["nonce"] = json!("n-1"),
            "must not contain a nonce",
        ),
        (
            "without sid and sub",
            |c| {
                let claims = c.as_object_mut().unwrap();
                claims.remove("sid");
                claims.remove("sub");
            },
            "neither sid nor sub",
        ),
        (
            "expired",
            |c| {
                let now = c["iat"].as_u64().unwrap();
                c["iat"] = json!(now - 300);
                c["exp"] = json!(now - 180);
            },
            "expired",
        ),
        (
            "without exp, issued too long ago",
            |c| {
                let now = c["iat"].as_u64().unwrap();
                c.as_object_mut().unwrap().remove("exp");
                c["iat"] = json!(now - 900);
            },
            "seconds ago",
        ),
        (
            "issued in the future",
            |c| c["iat"] = json!(c["iat"].as_u64().unwrap() + 600),
            "in the future",
        ),
        (
            "missing jti",
            |c| {
                c.as_object_mut().unwrap().remove("jti");
            },
            "no jti",
        ),
    ];
    let mut cases: Vec<(String, String, &str)> = Vec::new();
    for (name, patch, reason) in claim_cases {
        let mut claims = valid();
        patch(&mut claims);
        cases.push((
            name.to_string(),
            idp.sign(&claims, &json!({})).await,
            reason,
        ));
    }

    // Signatures.
    let signed = idp.sign(&valid(), &json!({})).await;
    let other = idp.sign(&valid(), &json!({})).await;
    let (signed_input, _) = signed.rsplit_once('.').unwrap();
    let (_, other_signature) = other.rsplit_once('.').unwrap();
    cases.push((
        "bad signature (another token's)".into(),
        format!("{signed_input}.{other_signature}"),
        "signature does not verify",
    ));
    let header = |alg: &str| json!({"alg": alg, "typ": "logout+jwt"});
    cases.push((
        "alg none".into(),
        format!("{}.{}.", b64(&header("none")), b64(&valid())),
        "is not allowed",
    ));
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &valid(),
        &jsonwebtoken::EncodingKey::from_secret(idp.client_secret().as_bytes()).unwrap(),
    )
    .unwrap();
    cases.push((
        "HS256 with the client secret".into(),
        hs256,
        "is not allowed",
    ));
    cases.push((
        "a kid the IdP does not have".into(),
        idp.sign(&valid(), &json!({"kid": "not-the-idps"})).await,
        "does not list",
    ));
    cases.push(("not a JWT".into(), "not-a-jwt".into(), "not a signed JWT"));

    for (name, token, reason) in &cases {
        let description = post_token(&first, token).await.error_description(name);
        assert!(
            description.contains(reason),
            "{name}: {description:?} lacks {reason:?}"
        );
        assert_eq!(
            auth_status_at(&first, &stack, &victim).await,
            200,
            "{name} ended the victim's session"
        );
    }

    // Malformed requests.
    let form = Some("application/x-www-form-urlencoded");
    let token = idp.sign(&valid(), &json!({})).await;
    let bodies: Vec<(&str, Option<&str>, String, &str)> = vec![
        ("empty body", form, String::new(), "no logout_token"),
        (
            "another parameter",
            form,
            format!("token={token}"),
            "no logout_token",
        ),
        (
            "empty logout_token",
            form,
            "logout_token=".into(),
            "is empty",
        ),
        (
            "logout_token twice",
            form,
            format!("logout_token={token}&logout_token={token}"),
            "more than once",
        ),
        (
            "JSON body",
            Some("application/json"),
            json!({ "logout_token": token }).to_string(),
            "x-www-form-urlencoded",
        ),
        (
            "no content type",
            None,
            format!("logout_token={token}"),
            "x-www-form-urlencoded",
        ),
        (
            "a body too large",
            form,
            format!("logout_token={}", "a".repeat(40_000)),
            "too large",
        ),
    ];
    for (name, content_type, body, reason) in bodies {
        let description = post_raw(&first, content_type, body)
            .await
            .error_description(name);
        assert!(description.contains(reason), "{name}: {description:?}");
        assert_eq!(auth_status_at(&first, &stack, &victim).await, 200, "{name}");
    }

    // The same token, valid, to the replica that trusts no loopback proxy, does end the
    // session: so every refusal above was for what was wrong with it.
    let valid_token = idp.sign(&valid(), &json!({})).await;
    post_token(&untrusting, &valid_token)
        .await
        .assert_accepted("valid");
    assert_eq!(auth_status_at(&first, &stack, &victim).await, 401);

    // Replays, on any replica: alice signs in again, and the token that ended her sessions
    // once ends nothing the second time.
    let (_again, again) = signed_in(&stack, "alice").await;
    let sub_only = idp
        .sign(&logout_claims(&stack, None, Some("alice")), &json!({}))
        .await;
    post_token(&first, &sub_only)
        .await
        .assert_accepted("sub only, first use");
    assert_eq!(auth_status_at(&first, &stack, &again).await, 401);
    let (_third, third) = signed_in(&stack, "alice").await;
    for (instance, name) in [
        (&first, "replayed jti"),
        (&untrusting, "replayed jti, other replica"),
    ] {
        let description = post_token(instance, &sub_only)
            .await
            .error_description(name);
        assert!(
            description.contains("already used"),
            "{name}: {description}"
        );
        let description = post_token(instance, &valid_token)
            .await
            .error_description(name);
        assert!(
            description.contains("already used"),
            "{name}: {description}"
        );
        assert_eq!(auth_status_at(&first, &stack, &third).await, 200, "{name}");
    }
}
