use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test IP parses")
}

fn fwd(
    proto: Option<&str>,
    host: Option<&str>,
    uri: Option<&str>,
    method: Option<&str>,
) -> Result<(String, String), ForwardedError> {
    from_forwarded_headers(proto, host, uri, method, PathRules::default())
        .and_then(|r| Ok((r.url()?.to_string(), r.method.to_owned())))
}

/// `X-Original-URL` under the default path rules.
fn original<'r>(
    value: Option<&'r str>,
    method: Option<&'r str>,
) -> Result<OriginalRequest<'r>, ForwardedError> {
    from_original_url(value, method, PathRules::default())
}

fn ok(url: &str, method: &str) -> Result<(String, String), ForwardedError> {
    Ok((url.to_owned(), method.to_owned()))
}

// ---------------------------------------------------------------- TrustedProxies

#[test]
fn trusted_proxies_parse_cidrs_and_bare_ips() {
    let proxies = TrustedProxies::parse(" 10.0.0.0/8, 192.168.1.5 ,::1, fd00::/8").expect("valid");
    assert!(proxies.contains(ip("10.200.0.1")));
    assert!(proxies.contains(ip("192.168.1.5")));
    assert!(!proxies.contains(ip("192.168.1.6")));
    assert!(proxies.contains(ip("::1")));
    assert!(proxies.contains(ip("fd12:3456::1")));
    assert!(!proxies.contains(ip("fe80::1")));
    assert!(!proxies.contains(ip("8.8.8.8")));
}

#[test]
fn trusted_proxies_parse_normalises_host_bits() {
    let proxies = TrustedProxies::parse("10.1.2.3/8").expect("valid");
    assert_eq!(proxies, TrustedProxies::parse("10.0.0.0/8").expect("valid"));
}

#[test]
fn trusted_proxies_parse_names_every_bad_entry() {
    let err = TrustedProxies::parse("10.0.0.0/33, nope, 10.0.0.1, 300.1.1.1, fe80::1%eth0")
        .expect_err("bad entries");
    for bad in [
        "\"10.0.0.0/33\"",
        "\"nope\"",
        "\"300.1.1.1\"",
        "\"fe80::1%eth0\"",
    ] {
        assert!(err.contains(bad), "{bad} missing from {err}");
    }
    assert!(!err.contains("\"10.0.0.1\""), "{err}");
}

#[test]
fn trusted_proxies_parse_rejects_empty_items_but_allows_a_blank_list() {
    assert!(TrustedProxies::parse("10.0.0.1,,10.0.0.2").is_err());
    assert!(TrustedProxies::parse("10.0.0.1,").is_err());
    let none = TrustedProxies::parse("  ").expect("blank list");
    assert!(!none.contains(ip("127.0.0.1")));
}

#[test]
fn default_private_ranges() {
    let proxies = TrustedProxies::default_private();
    for inside in [
        "127.0.0.1",
        "127.255.0.9",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "::1",
        "fc00::1",
        "fd12:3456::1",
    ] {
        assert!(proxies.contains(ip(inside)), "{inside} should be trusted");
    }
    for outside in [
        "8.8.8.8",
        "172.32.0.1",
        "172.15.255.255",
        "192.169.0.1",
        "169.254.1.1",
        "fe80::1",
        "2001:db8::1",
        "::",
    ] {
        assert!(
            !proxies.contains(ip(outside)),
            "{outside} should not be trusted"
        );
    }
}

#[test]
fn mapped_ipv6_peers_are_their_ipv4_address() {
    let proxies = TrustedProxies::default_private();
    assert!(proxies.contains(ip("::ffff:10.0.0.1")));
    assert!(proxies.contains(ip("::ffff:127.0.0.1")));
    assert!(!proxies.contains(ip("::ffff:8.8.8.8")));
    // A mapped address as an *entry* matches the plain IPv4 peer, and vice versa.
    let mapped_entry =
        TrustedProxies::parse("::ffff:10.9.0.0/112, ::ffff:192.0.2.7").expect("valid");
    assert!(mapped_entry.contains(IpAddr::V4(Ipv4Addr::new(10, 9, 3, 4))));
    assert!(mapped_entry.contains(ip("::ffff:10.9.3.4")));
    assert!(mapped_entry.contains(ip("192.0.2.7")));
    assert!(!mapped_entry.contains(ip("10.8.0.1")));
    // IPv4-compatible (deprecated, not mapped) addresses are not reinterpreted.
    assert!(!proxies.contains(IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0x0a00, 1))));
}

#[test]
fn require_trusted_refuses_unknown_and_untrusted_peers() {
    let proxies = TrustedProxies::default_private();
    assert_eq!(
        proxies.require_trusted(Some(ip("10.0.0.1"))),
        Ok(ip("10.0.0.1"))
    );
    assert_eq!(
        proxies.require_trusted(None),
        Err(ForwardedError::UntrustedPeer)
    );
    assert_eq!(
        proxies.require_trusted(Some(ip("203.0.113.9"))),
        Err(ForwardedError::UntrustedPeer)
    );
}

#[test]
fn errors_display_as_short_sentences() {
    assert_eq!(
        ForwardedError::Missing("X-Forwarded-Host").to_string(),
        "the X-Forwarded-Host header is missing"
    );
    assert_eq!(
        ForwardedError::Invalid("X-Original-URL").to_string(),
        "the X-Original-URL header is not valid"
    );
    assert_eq!(
        ForwardedError::UntrustedPeer.to_string(),
        "the request did not come from a trusted proxy"
    );
}

// ---------------------------------------------------------------- X-Forwarded-*

#[test]
fn forwarded_basic_request() {
    assert_eq!(
        fwd(
            Some("https"),
            Some("app.example.com"),
            Some("/a/b?c=d&e"),
            Some("POST")
        ),
        ok("https://app.example.com/a/b?c=d&e", "POST")
    );
}

#[test]
fn forwarded_method_defaults_to_get() {
    assert_eq!(
        fwd(Some("http"), Some("app"), Some("/"), None),
        ok("http://app/", "GET")
    );
    assert_eq!(
        fwd(Some("http"), Some("app"), Some("/"), Some("")),
        ok("http://app/", "GET")
    );
}

#[test]
fn forwarded_missing_headers() {
    let h = Some("app.example.com");
    assert_eq!(
        fwd(None, h, Some("/"), None),
        Err(ForwardedError::Missing(PROTO))
    );
    assert_eq!(
        fwd(Some(""), h, Some("/"), None),
        Err(ForwardedError::Missing(PROTO))
    );
    assert_eq!(
        fwd(Some("https"), None, Some("/"), None),
        Err(ForwardedError::Missing(HOST))
    );
    assert_eq!(
        fwd(Some("https"), Some(""), Some("/"), None),
        Err(ForwardedError::Missing(HOST))
    );
    assert_eq!(
        fwd(Some("https"), h, None, None),
        Err(ForwardedError::Missing(URI))
    );
    assert_eq!(
        fwd(Some("https"), h, Some(""), None),
        Err(ForwardedError::Missing(URI))
    );
}

#[test]
fn forwarded_proto_rules() {
    let run = |p| fwd(Some(p), Some("app.example.com"), Some("/"), None);
    assert_eq!(run("HTTPS"), ok("https://app.example.com/", "GET"));
    assert_eq!(run("Http"), ok("http://app.example.com/", "GET"));
    // Chained proxies: the first element is the one nearest the client.
    assert_eq!(run("https, http"), ok("https://app.example.com/", "GET"));
    assert_eq!(run(" http ,https"), ok("http://app.example.com/", "GET"));
    for bad in [
        "ftp",
        "wss",
        "javascript",
        "https:",
        "http s",
        ",https",
        "https\r\nX-Evil: 1",
        "https\n",
        "htt\u{0440}s",
    ] {
        assert_eq!(run(bad), Err(ForwardedError::Invalid(PROTO)), "{bad:?}");
    }
}

#[test]
fn forwarded_host_rules() {
    let run = |h| fwd(Some("https"), Some(h), Some("/x"), None);
    assert_eq!(
        run("App.Example.COM"),
        ok("https://app.example.com/x", "GET")
    );
    assert_eq!(
        run("app.example.com:8443"),
        ok("https://app.example.com:8443/x", "GET")
    );
    // An explicit default port names the same origin; the URL simply omits it.
    assert_eq!(
        run("app.example.com:443"),
        ok("https://app.example.com/x", "GET")
    );
    assert_eq!(run("127.0.0.1:8080"), ok("https://127.0.0.1:8080/x", "GET"));
    assert_eq!(run("[::1]:8080"), ok("https://[::1]:8080/x", "GET"));
    assert_eq!(run("[::1]"), ok("https://[::1]/x", "GET"));
    assert_eq!(
        run("my_host.internal"),
        ok("https://my_host.internal/x", "GET")
    );
    // Chained proxies: first element.
    assert_eq!(
        run("app.example.com, evil.com"),
        ok("https://app.example.com/x", "GET")
    );
    for bad in [
        "evil.com@app.example.com",
        "app.example.com@evil.com",
        "app.example.com/evil",
        "app.example.com\\evil.com",
        "app.example.com?x",
        "app.example.com#x",
        "app .example.com",
        "app.example.com\r\nSet-Cookie: a=b",
        "app.example.com\n",
        "app.example.com\0",
        "%61pp.example.com",
        "app.example.com:",
        "app.example.com:0",
        "app.example.com:99999",
        "app.example.com:8o",
        "app.example.com:80:81",
        "::1",
        "[::1",
        "[::1]8080",
        "[fe80::1%25eth0]",
        "[]",
        ":8080",
        ",app.example.com",
        "b\u{fc}cher.example",
        "0x7f.1",
        "2130706433",
        "[0:0::1]",
        "*.example.com",
    ] {
        assert_eq!(run(bad), Err(ForwardedError::Invalid(HOST)), "{bad:?}");
    }
}

#[test]
fn forwarded_uri_rules() {
    let run = |u| fwd(Some("https"), Some("app.example.com"), Some(u), None);
    assert_eq!(run("/"), ok("https://app.example.com/", "GET"));
    assert_eq!(
        run("/a%20b?q=%2F&x=,"),
        ok("https://app.example.com/a%20b?q=%2F&x=,", "GET")
    );
    // Dot segments are refused (see the path tables below), never resolved.
    assert_eq!(
        run("/a/../../etc/passwd"),
        Err(ForwardedError::HiddenPath(URI, PathProblem::DotSegment))
    );
    assert_eq!(
        run("/@evil.com"),
        ok("https://app.example.com/@evil.com", "GET")
    );
    for bad in [
        "http://evil.com/",
        "https://app.example.com/",
        "//evil.com/x",
        "evil.com/x",
        "*",
        "/a b",
        "/a\tb",
        "/a\r\nX-Injected: 1",
        "/\\evil.com",
        "/x#frag",
        "/caf\u{e9}",
        "/\x7f",
    ] {
        assert_eq!(run(bad), Err(ForwardedError::Invalid(URI)), "{bad:?}");
    }
}

#[test]
fn forwarded_method_rules() {
    let run = |m| fwd(Some("https"), Some("app.example.com"), Some("/"), Some(m));
    for good in [
        "GET",
        "HEAD",
        "POST",
        "DELETE",
        "PROPFIND",
        "VERSION-CONTROL",
        "M-SEARCH",
    ] {
        assert_eq!(run(good), ok("https://app.example.com/", good), "{good:?}");
    }
    let long = "A".repeat(MAX_METHOD_LEN + 1);
    for bad in [
        "get",
        "Get",
        "GET ",
        " GET",
        "GET\r\n",
        "GE T",
        "G\u{c9}T",
        "123",
        "-",
        long.as_str(),
    ] {
        assert_eq!(run(bad), Err(ForwardedError::Invalid(METHOD)), "{bad:?}");
    }
}

// ---------------------------------------------------------------- X-Original-URL

#[test]
fn original_url_basic() {
    let got = original(Some("https://app.example.com/a?b=c"), None).expect("valid");
    assert_eq!(got.url().unwrap().as_str(), "https://app.example.com/a?b=c");
    assert_eq!(got.method, "GET");
    let got = original(Some("HTTP://App.Example.com:8080/x"), Some("PUT")).expect("valid");
    assert_eq!(got.url().unwrap().as_str(), "http://app.example.com:8080/x");
    assert_eq!(got.method, "PUT");
    let got = original(Some("http://[::1]:8080/x"), None).expect("valid");
    assert_eq!(got.url().unwrap().as_str(), "http://[::1]:8080/x");
}

#[test]
fn original_url_missing() {
    assert_eq!(
        original(None, None),
        Err(ForwardedError::Missing(ORIGINAL_URL))
    );
    assert_eq!(
        original(Some(""), None),
        Err(ForwardedError::Missing(ORIGINAL_URL))
    );
}

#[test]
fn original_url_method_rules() {
    let url = Some("https://app.example.com/");
    assert_eq!(
        original(url, Some("delete")),
        Err(ForwardedError::Invalid(ORIGINAL_METHOD))
    );
    assert_eq!(
        original(url, Some("GET\r\nX: y")),
        Err(ForwardedError::Invalid(ORIGINAL_METHOD))
    );
}

#[test]
fn original_url_rejects_malformed_values() {
    for bad in [
        // Authelia GHSA-68wm-pfjf-wqp6 / CVE-2021-32637: malformed values must be errors.
        "https://app.example.com/\r\n",
        "https://app.example.com/%\u{0}",
        "https://app.example.com/ x",
        "ftp://app.example.com/",
        "javascript://app.example.com/%0aalert(1)",
        "/relative/path",
        "//app.example.com/",
        "https:app.example.com/",
        "https:///app.example.com/",
        "https://user@app.example.com/",
        "https://user:pw@app.example.com/",
        "https://evil.com\\@app.example.com/",
        // A Host header ending in `?` or `#` would move the real path out of the path.
        "https://app.example.com?x/admin",
        "https://app.example.com#/admin",
        "https://app.example.com",
        "https://app.example.com/admin#frag",
        "https://app.example.com//evil.com",
        "https://app.example.com:99999/",
        "https://app.example.com:/",
        "https://%61pp.example.com/",
        "https://0x7f.1/",
        "https://b\u{fc}cher.example/",
    ] {
        assert_eq!(
            original(Some(bad), None),
            Err(ForwardedError::Invalid(ORIGINAL_URL)),
            "{bad:?}"
        );
    }
}

// ---------------------------------------------------------------- the original path

const ENCODED_SLASHES_ALLOWED: PathRules = PathRules {
    allow_encoded_slashes: true,
};

/// Dot segments: refused whatever `ALLOW_ENCODED_SLASHES` says.
const DOT_SEGMENTS: &[&str] = &[
    // CVE-2025-32431: literal, anywhere.
    "/x/../ops/",
    "/../ops/",
    "/./ops/",
    "/ops/./",
    "/a/./b",
    "/a/b/../../ops/",
    // Last segment: nothing after it.
    "/..",
    "/.",
    "/a/..",
    "/a/.",
    "/a/..?x=1",
    // GHSA-vrch-868g-9jx5: percent-encoded, in either case, whole or half.
    "/x/%2e%2e/ops/",
    "/x/%2E%2E/ops/",
    "/x/%2e%2E/ops/",
    "/x/.%2e/ops/",
    "/x/%2e./ops/",
    "/x/.%2E/ops/",
    "/ops/%2e/",
    "/ops/%2E/",
    "/ops/%2e",
    "/a/%2e%2e",
    // Tomcat-style path parameters after the dots, literal or encoded `;`.
    "/x/..;/ops/",
    "/x/..;jsessionid=1/ops/",
    "/x/.;x/ops/",
    "/x/%2e%2e;/ops/",
    "/x/..%3b/ops/",
    "/x/..%3Bx/ops/",
    "/a/..;",
    // Ended by an encoded slash or backslash: a dot segment once the app decodes it.
    "/x/..%2fops/",
    "/x/..%2Fops/",
    "/x/%2e%2e%2fops/",
    "/x/..%5cops/",
    "/x/..%5Cops/",
    "/x/.%2fops/",
    "/ops/x/..%5c",
];

/// Encoded slashes and backslashes: refused unless `ALLOW_ENCODED_SLASHES=true`.
const ENCODED_SLASHES: &[&str] = &[
    // GHSA-gm3x-23wp-hc2c
    "/ops%2f",
    "/ops%2F",
    "/x%2fops/",
    "/ops%5c",
    "/ops%5C",
    "/%2f%2fevil.com",
    "/%5Cevil.com",
    // GitLab's API: legitimate, and what the flag is for.
    "/api/v4/projects/group%2Fproject",
    "/api/v4/projects/group%2Fproject/repository/files/a%2Fb.txt?ref=main",
];

/// Names that merely contain dots, escapes that are neither dots nor separators, and queries
/// (never checked): these pass with the flag on and off.
const PLAIN_PATHS: &[&str] = &[
    "/",
    "/ops/",
    "/ops",
    "/v1.2/",
    "/..a/",
    "/a../",
    "/.a./",
    "/a.b/",
    "/...",
    "/..../",
    "/.well-known/openid-configuration",
    "/.hidden",
    "/a/.b",
    "/a/b.",
    "/%2e%2e%2e/",
    "/.%2e%2e",
    "/%2ea",
    "/a%2e",
    "/%2E%2Ex/",
    "/a;b/",
    "/..a;x/",
    "/a%20b/c%41d",
    "/a%",
    "/a%2",
    "/%zz",
    "/%%2e",
    "/a//b",
    "/ok?x=/../&y=%2e%2e",
    "/ok?x=%2f%5c&y=/./",
    "/ok?/..",
];

/// `path` through both header parsers and the bare check, as one comparable result each.
fn path_results(path: &str, rules: PathRules) -> [Result<(), ForwardedError>; 3] {
    let url = format!("https://app.example.com{path}");
    [
        check_path(path, rules).map_err(|problem| ForwardedError::HiddenPath("check", problem)),
        from_forwarded_headers(
            Some("https"),
            Some("app.example.com"),
            Some(path),
            None,
            rules,
        )
        .and_then(|r| r.url().map(drop)),
        from_original_url(Some(&url), None, rules).and_then(|r| r.url().map(drop)),
    ]
}

fn refused(problem: PathProblem) -> [Result<(), ForwardedError>; 3] {
    [
        Err(ForwardedError::HiddenPath("check", problem)),
        Err(ForwardedError::HiddenPath(URI, problem)),
        Err(ForwardedError::HiddenPath(ORIGINAL_URL, problem)),
    ]
}

const PASSED: [Result<(), ForwardedError>; 3] = [Ok(()), Ok(()), Ok(())];

#[test]
fn dot_segments_are_refused_whatever_the_flag_says() {
    for rules in [PathRules::default(), ENCODED_SLASHES_ALLOWED] {
        for path in DOT_SEGMENTS {
            assert_eq!(
                path_results(path, rules),
                refused(PathProblem::DotSegment),
                "{path:?} with {rules:?}"
            );
        }
    }
}

#[test]
fn encoded_slashes_are_refused_unless_allowed() {
    for path in ENCODED_SLASHES {
        assert_eq!(
            path_results(path, PathRules::default()),
            refused(PathProblem::EncodedSlash),
            "{path:?}"
        );
        assert_eq!(
            path_results(path, ENCODED_SLASHES_ALLOWED),
            PASSED,
            "{path:?} with ALLOW_ENCODED_SLASHES"
        );
    }
}

#[test]
fn names_with_dots_and_queries_pass() {
    for rules in [PathRules::default(), ENCODED_SLASHES_ALLOWED] {
        for path in PLAIN_PATHS {
            assert_eq!(path_results(path, rules), PASSED, "{path:?} with {rules:?}");
        }
    }
}

#[test]
fn a_literal_backslash_is_refused_whatever_the_flag_says() {
    for rules in [PathRules::default(), ENCODED_SLASHES_ALLOWED] {
        for path in ["/a\\b", "/ops\\", "/\\evil.com", "/x\\..\\ops\\"] {
            assert_eq!(
                check_path(path, rules),
                Err(PathProblem::Backslash),
                "{path:?}"
            );
            // The header parsers refuse it earlier, as a byte no request target may contain.
            let [_, forwarded, original] = path_results(path, rules);
            assert_eq!(forwarded, Err(ForwardedError::Invalid(URI)), "{path:?}");
            assert_eq!(
                original,
                Err(ForwardedError::Invalid(ORIGINAL_URL)),
                "{path:?}"
            );
        }
        // The query is not the path.
        assert_eq!(check_path("/ok?x=\\", rules), Ok(()));
    }
}

#[test]
fn hidden_path_errors_name_the_header_and_the_problem() {
    assert_eq!(
        ForwardedError::HiddenPath(URI, PathProblem::DotSegment).to_string(),
        "the X-Forwarded-Uri header's path has a dot segment"
    );
    assert_eq!(
        ForwardedError::HiddenPath(ORIGINAL_URL, PathProblem::EncodedSlash).to_string(),
        "the X-Original-URL header's path has an encoded slash or backslash \
         (ALLOW_ENCODED_SLASHES=true lets them through)"
    );
    assert_eq!(
        ForwardedError::HiddenPath(URI, PathProblem::Backslash).to_string(),
        "the X-Forwarded-Uri header's path has a backslash"
    );
}

#[test]
fn plain_dns_names_skip_the_url_parser_only_where_it_would_agree() {
    let names = [
        "app.example.com",
        "APP.Example.COM",
        "localhost",
        "a_b.example",
        "-odd-.example",
        "1.2.3.example",
        &"l".repeat(70),
        // everything below must take the parser's path
        "xn--nxasmq6b.example",
        "app.XN--nxasmq6b",
        "127.1",
        "1.2.3.4",
        "example.0x1f",
        "example.123",
        "a..b",
        "example.com.",
        ".example.com",
        "",
        "127.0.0.1",
        "10.1.2.255",
        "01.2.3.4",
        "1.2.3.04",
        "1.2.3.256",
        "0x7f.0.0.1",
        "1.2.3",
        "1.2.3.4.",
    ];
    for name in names {
        if is_plain_dns_name(name) || is_dotted_decimal_ipv4(name) {
            let parsed = Host::parse(name).map(|h| h.to_string());
            assert_eq!(
                parsed.as_deref().map(str::to_ascii_lowercase),
                Ok(name.to_ascii_lowercase()),
                "{name:?} skips the parser, so the parser must keep it as it is"
            );
        }
    }
    for name in [
        "app.example.com",
        "APP.Example.COM",
        "localhost",
        "a_b.example",
    ] {
        assert!(is_plain_dns_name(name), "{name:?}");
    }
    for name in [
        "xn--nxasmq6b.example",
        "127.1",
        "example.0x1f",
        "a..b",
        "example.com.",
    ] {
        assert!(!is_plain_dns_name(name), "{name:?}");
    }
}

// ---------------------------------------------------------------- origin (the assertion's aud)

#[test]
fn origin_is_the_browsers_origin_of_the_original_request() {
    let cases = [
        ("https", "app.example.com", "https://app.example.com"),
        ("https", "App.Example.COM", "https://app.example.com"),
        ("https", "app.example.com:443", "https://app.example.com"),
        (
            "https",
            "app.example.com:8443",
            "https://app.example.com:8443",
        ),
        ("http", "app.example.com:80", "http://app.example.com"),
        ("http", "app.example.com:443", "http://app.example.com:443"),
        ("http", "127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https", "[::1]:8443", "https://[::1]:8443"),
    ];
    for (proto, host, expected) in cases {
        let parsed = from_forwarded_headers(
            Some(proto),
            Some(host),
            Some("/p?q=1"),
            Some("GET"),
            PathRules::default(),
        )
        .expect("valid");
        assert_eq!(parsed.origin(), expected, "{proto} {host}");
    }
    let status = original(Some("https://App.example.com:443/x"), None).expect("valid");
    assert_eq!(status.origin(), "https://app.example.com");
}

#[test]
fn dotted_decimal_ipv4_is_what_the_standard_parser_accepts() {
    let cases = [
        ("0.0.0.0", true),
        ("127.0.0.1", true),
        ("255.255.255.255", true),
        ("199.249.200.250", true),
        ("10.1.2.255", true),
        ("256.1.1.1", false),
        ("1.2.3.260", false),
        ("300.1.1.1", false),
        ("01.2.3.4", false),
        ("1.2.3.00", false),
        ("1.2.3", false),
        ("1.2.3.4.5", false),
        ("1.2.3.4.", false),
        (".1.2.3", false),
        ("1..2.3", false),
        ("", false),
        ("1.2.3.a", false),
        ("1.2.3.+4", false),
        ("1.2.3.1000", false),
        ("0x7f.0.0.1", false),
    ];
    for (text, want) in cases {
        assert_eq!(is_dotted_decimal_ipv4(text), want, "{text:?}");
        assert_eq!(
            text.parse::<Ipv4Addr>().is_ok(),
            want,
            "{text:?} (reference)"
        );
    }
}
