//! The environment portcullis starts with under test: the smallest that passes its configuration
//! check, for an instance reached over plain http on loopback. The tests and the bench both use
//! it, so that the bench measures the configuration the tests exercise.

use std::collections::HashMap;

use crate::idp::Idp;

/// A 32+ byte secret used by every test and bench instance (never by a real deployment).
pub const COOKIE_SECRET: &str = "test-cookie-secret-0123456789abcdef";
pub const COOKIE_NAME: &str = "_portcullis";
/// The variables portcullis cannot start without (each secret may be given as `_FILE` instead).
pub const REQUIRED: &[&str] = &[
    "OIDC_ISSUER_URL",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_REDIRECT_URL",
    "COOKIE_SECRET",
];

/// The IdP's client, callback on `public_base`, plain http, and `REDIS_URL` when given.
pub fn test_env(idp: &Idp, public_base: &str, redis_url: Option<&str>) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("OIDC_ISSUER_URL", idp.issuer()),
        ("OIDC_CLIENT_ID", idp.client_id()),
        ("OIDC_CLIENT_SECRET", idp.client_secret()),
        (
            "OIDC_REDIRECT_URL",
            format!("{public_base}/oauth2/callback"),
        ),
        ("OIDC_SCOPES", "openid profile email groups".to_string()),
        ("COOKIE_SECRET", COOKIE_SECRET.to_string()),
        ("COOKIE_SECURE", "false".to_string()),
        // Stopped at once: every test and bench run stops its instances, and ChildGuard's
        // SIGTERM would otherwise wait out the 2 s that give load balancers time to move on.
        // A test of the delay sets its own.
        ("SHUTDOWN_DELAY", "0".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(url) = redis_url {
        env.insert("REDIS_URL".into(), url.to_string());
    }
    env
}
