//! Property tests of [`AllowedRedirects::resolve`]: whatever the candidate, a URL it lets through
//! points where the allow-list says, and is let through again as it is.
//!
//! The example tests (redirect_tests.rs) pin the known bypasses one by one; these throw
//! combinations of the same ingredients (look-alike hosts, ports, userinfo, backslashes,
//! encoded slashes, dot segments) and plain junk at the validator. The allow-list is judged by
//! a model written here from the README's wording, not by the code under test.

use proptest::prelude::*;
use proptest::sample::select;
use url::Url;

use super::AllowedRedirects;

/// One entry of each kind: a domain with its subdomains on the default port, one host on one
/// port, one host on any port.
const ALLOW_LIST: &str = ".example.com, app.example.org:8443, any.example.net:*";

/// Inside `.example.com`, so a relative target's absolute form is allowed too.
const BASE_ON_LIST: &str = "https://auth.example.com/oauth2/callback";
/// Not on the list: only relative targets resolve to it.
const BASE_OFF_LIST: &str = "http://127.0.0.1:4180/oauth2/callback";

/// What the README promises for [`ALLOW_LIST`]: a bare entry allows only the scheme's default
/// port (the parser drops a default port written out, so "no explicit port"), `host:port`
/// that port, `host:*` any port.
fn model_allows(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    let effective_port = url.port_or_known_default();
    (url.port().is_none() && (host == "example.com" || host.ends_with(".example.com")))
        || (host == "app.example.org" && effective_port == Some(8443))
        || host == "any.example.net"
}

/// Mostly well-formed parts (so that whole candidates often reach the allow-list decision),
/// with odd ones mixed in.
fn mix(plain: Vec<&'static str>, odd: Vec<&'static str>) -> impl Strategy<Value = &'static str> {
    prop_oneof![3 => select(plain), 1 => select(odd)]
}

fn hosts() -> impl Strategy<Value = &'static str> {
    let on_list = select(vec![
        "example.com",
        "app.example.com",
        "deep.sub.example.com",
        "EXAMPLE.COM",
        "App.Example.Org",
        "app.example.org",
        "any.example.net",
        "auth.example.com",
    ]);
    prop_oneof![1 => on_list, 1 => off_list_hosts()]
}

fn off_list_hosts() -> impl Strategy<Value = &'static str> {
    mix(
        vec![
            // Well-formed, but not on the list.
            "evilexample.com",
            "example.com.evil.net",
            "example.co",
            "sub.any.example.net",
            "app.example.org.evil",
            "other.example.org",
            "127.0.0.1",
            "[::1]",
        ],
        vec![
            "example.com.",
            ".example.com",
            "xn--exmple-cua.com",
            "ex%61mple.com",
            "example%2ecom",
            "example\u{3002}com",
            "\u{0435}xample.com",
            // IP shorthands the parser rewrites.
            "127.1",
            "0x7f.0.0.1",
            "2130706433",
            "[::ffff:127.0.0.1]",
            "[0:0::1]",
            "",
        ],
    )
}

fn ports() -> impl Strategy<Value = &'static str> {
    // Mostly none: most entries allow only the default port.
    prop_oneof![
        2 => Just(""),
        1 => mix(
            vec![":443", ":80", ":8443", ":8080", ":65535"],
            vec![":0", ":65536", ":", ":*", ":+443", ":0443", ": 443", ":443:443", ":\u{665}"],
        ),
    ]
}

fn userinfos() -> impl Strategy<Value = &'static str> {
    mix(
        vec![""],
        vec![
            "user@",
            "user:pw@",
            ":@",
            "@",
            "example.com@",
            "app.example.org:8443@",
            "evil.net\\@",
            "evil.net%40",
        ],
    )
}

fn schemes() -> impl Strategy<Value = &'static str> {
    mix(
        vec!["https://", "http://", "HTTPS://", "HtTp://"],
        vec![
            "https:",
            "https:/",
            "https:///",
            "https:\\\\",
            "https:/\\",
            "ftp://",
            "javascript:",
            "data:",
            "//",
            "///",
            "\\\\",
            "/\\",
            "",
        ],
    )
}

/// Path, query and fragment pieces, the odd ones a decode or a normalisation away from
/// naming another host.
fn path_pieces() -> impl Strategy<Value = &'static str> {
    mix(
        vec![
            "/",
            "/a",
            "/a/b",
            "/v1.2",
            "/...",
            "?x=1",
            "?x=%2F",
            "#frag",
            "%25",
            "%zz",
            "%",
            ";",
            ":",
            "*",
            "{}|^`\"<>'",
            "/@evil.net",
            "@evil.net",
            "?rd=https://evil.net/",
            "#//evil.net",
        ],
        vec![
            "//evil.net",
            "/\\evil.net",
            "\\evil.net",
            "/%2f",
            "/%2F/evil.net",
            "/%5c/evil.net",
            "/%2e%2e/",
            "/../",
            "/./",
            "/..//evil.net",
            "/.//evil.net",
            "/a/..//evil.net",
            "/a/%2e%2e//evil.net",
            "%09",
            "%0a",
            "%00",
            "%7f",
            "\t",
            "\n",
            " ",
            "\u{a0}",
            "\u{ff0f}",
            "\u{2215}",
        ],
    )
}

/// What follows the authority: mostly starting as a URL's path, query or fragment does, then
/// anything.
fn paths() -> impl Strategy<Value = String> {
    let first = prop_oneof![3 => select(vec!["", "/", "/a", "?x=1", "#f"]), 1 => path_pieces()];
    (first, proptest::collection::vec(path_pieces(), 0..4))
        .prop_map(|(first, pieces)| format!("{first}{}", pieces.concat()))
}

/// `scheme userinfo host port path`, each part from its small alphabet.
fn structured_absolute() -> impl Strategy<Value = String> {
    (schemes(), userinfos(), hosts(), ports(), paths()).prop_map(
        |(scheme, userinfo, host, port, path)| format!("{scheme}{userinfo}{host}{port}{path}"),
    )
}

/// Paths on our own origin, and the spellings that only look like one.
fn structured_relative() -> impl Strategy<Value = String> {
    (
        mix(
            vec!["/"],
            vec!["//", "/\\", "\\", "/%2f", "/%5C", "/./", "/../", "/%2e%2e/"],
        ),
        paths(),
    )
        .prop_map(|(start, rest)| format!("{start}{rest}"))
}

/// Junk: printable ASCII heavy on URL delimiters, some controls, some non-ASCII.
fn arbitrary_text() -> impl Strategy<Value = String> {
    let char_ = prop_oneof![
        6 => proptest::char::range(' ', '~'),
        3 => select(vec!['/', '\\', ':', '@', '%', '.', '?', '#', '[', ']']),
        1 => any::<char>(),
    ];
    prop_oneof![
        proptest::collection::vec(char_, 0..48).prop_map(|chars| chars.into_iter().collect()),
        any::<String>(),
    ]
}

fn candidates() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => structured_absolute(),
        2 => structured_relative(),
        2 => arbitrary_text(),
    ]
}

fn allowed() -> AllowedRedirects {
    AllowedRedirects::parse(ALLOW_LIST).unwrap()
}

/// The part of `url` from its path on: the relative form of a same-origin target.
fn relative_form(url: &Url) -> &str {
    &url[url::Position::BeforePath..]
}

/// Every property of one accepted URL, for either base.
fn assert_safe(candidate: &str, base: &Url, url: &Url) -> Result<(), TestCaseError> {
    prop_assert!(
        url.scheme() == "http" || url.scheme() == "https",
        "{candidate:?} -> {url}: scheme"
    );
    prop_assert!(
        url.username().is_empty() && url.password().is_none(),
        "{candidate:?} -> {url}: userinfo"
    );
    let own_origin = url.origin() == base.origin();
    prop_assert!(
        own_origin || model_allows(url),
        "{candidate:?} -> {url}: host/port neither on the list nor the base's origin"
    );
    Ok(())
}

/// The default case count (or `PROPTEST_CASES`), without writing failures to a
/// `proptest-regressions/` file: a failure prints its minimal input, which then belongs in the
/// example tests.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn an_accepted_target_is_on_the_list_and_accepted_again_unchanged(candidate in candidates()) {
        let allowed = allowed();
        let base = Url::parse(BASE_ON_LIST).unwrap();
        if let Some(url) = allowed.resolve(&candidate, &base) {
            assert_safe(&candidate, &base, &url)?;
            prop_assert_eq!(
                allowed.resolve(url.as_str(), &base),
                Some(url.clone()),
                "{:?} -> {}: not accepted again as itself", candidate, url
            );
        }
    }

    #[test]
    fn off_the_list_base_lets_through_only_its_own_paths(candidate in candidates()) {
        let allowed = allowed();
        let base = Url::parse(BASE_OFF_LIST).unwrap();
        if let Some(url) = allowed.resolve(&candidate, &base) {
            assert_safe(&candidate, &base, &url)?;
            // The base is not on the list, so its own URLs come back only in relative form.
            let again = if url.origin() == base.origin() {
                relative_form(&url).to_string()
            } else {
                url.as_str().to_string()
            };
            prop_assert_eq!(
                allowed.resolve(&again, &base),
                Some(url.clone()),
                "{:?} -> {}: {:?} not accepted again as the same URL", candidate, url, again
            );
        }
    }
}

/// Our own origin, spelt as a path or absolutely, followed by anything.
fn own_origin_targets() -> impl Strategy<Value = String> {
    (
        select(vec![
            "",
            "https://auth.example.com",
            "HTTPS://Auth.Example.COM:443",
        ]),
        paths(),
    )
        .prop_map(|(origin, path)| format!("{origin}{path}"))
}

proptest! {
    #![proptest_config(config())]

    /// `resolve` refuses `/..//evil.net` because its resolved path, `//evil.net`, reads as
    /// another host to an app that is later handed only the path. The same target written
    /// absolutely must get the same answer.
    /// (It found `https://auth.example.com/..//evil.net` accepted before absolute targets got
    /// the same check.)
    #[test]
    fn a_target_on_our_origin_never_has_a_protocol_relative_path(
        candidate in own_origin_targets(),
    ) {
        let base = Url::parse(BASE_ON_LIST).unwrap();
        if let Some(url) = allowed().resolve(&candidate, &base) {
            if url.origin() == base.origin() {
                prop_assert!(
                    !url.path().starts_with("//"),
                    "{:?} -> {}: protocol-relative path", candidate, url
                );
            }
        }
    }
}

/// The generators must reach the accepting branches often, absolute and relative, or the
/// properties above hold vacuously.
#[test]
fn generators_produce_accepted_targets() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let allowed = allowed();
    let base = Url::parse(BASE_ON_LIST).unwrap();
    let mut runner = TestRunner::deterministic();
    let strategy = candidates();
    let (mut absolute, mut relative) = (0, 0);
    for _ in 0..2000 {
        let candidate = strategy.new_tree(&mut runner).unwrap().current();
        if allowed.resolve(&candidate, &base).is_some() {
            if candidate.starts_with('/') {
                relative += 1;
            } else {
                absolute += 1;
            }
        }
    }
    assert!(
        absolute >= 100 && relative >= 100,
        "of 2000 candidates only {absolute} absolute and {relative} relative were accepted"
    );
}
