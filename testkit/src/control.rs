//! The loopback control endpoints of the Node programs the tests start (the test IdP's and the
//! Graph stand-in's `/test/...`): JSON in, JSON out, and a panic that says which program did
//! not answer, since a test cannot go on without it.

use std::time::Duration;

use reqwest::Method;

/// No control request waits longer for its program.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// `method` `base` + `path` with `body` as JSON if any; panics unless `program` answers 2xx
/// with JSON, which it returns.
pub async fn request(
    program: &str,
    base: &str,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> serde_json::Value {
    let url = format!("{base}{path}");
    let mut request = reqwest::Client::builder()
        .no_proxy()
        .timeout(CONTROL_TIMEOUT)
        .build()
        .expect("build reqwest client")
        .request(method.clone(), &url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url} failed (is {program} running?): {e}"));
    let status = response.status();
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: reading the answer: {e}"));
    assert!(status.is_success(), "{method} {url} -> {status}: {text}");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {url} -> {status}: not JSON ({e}): {text}"))
}
