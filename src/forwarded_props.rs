//! Property tests of the forwarded-header parsers: an [`OriginalRequest`] that was built at all
//! names exactly the host that was checked, and a path without dot segments.
//!
//! The auth check judges route rules on what these parsers return, and a login redirect goes
//! to its `.url()`: if the URL parser read another host, or resolved a dot segment the check
//! did not see, the rule would be judged on one request and the app would serve another.
//! Inputs are built from the pieces that caused such gaps elsewhere (IP shorthands, IDNA,
//! encoded dots and slashes, Tomcat `;` parameters, comma lists) plus arbitrary text.

use proptest::prelude::*;
use proptest::sample::select;
use url::Url;

use super::{from_forwarded_headers, from_original_url, OriginalRequest, PathRules};

/// Mostly well-formed parts (so that whole inputs often get built), with odd ones mixed in.
fn mix(plain: Vec<&'static str>, odd: Vec<&'static str>) -> impl Strategy<Value = &'static str> {
    prop_oneof![3 => select(plain), 1 => select(odd)]
}

fn hosts() -> impl Strategy<Value = &'static str> {
    mix(
        vec![
            "app.example.com",
            "APP.Example.COM",
            "a_b.example",
            "localhost",
            "x",
            "127.0.0.1",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "xn--bcher-kva.de",
        ],
        vec![
            "example.com.",
            ".example.com",
            "a..b",
            "-x.com",
            "127.1",
            "0x7f.0.0.1",
            "0177.0.0.1",
            "2130706433",
            "1.2.3.4.5",
            "999.1.1.1",
            "1.2.3",
            "example.0x10",
            "[0:0::1]",
            "[::FFFF:7f00:1]",
            "[::1",
            "[]",
            "XN--bcher-kva.de",
            "xn--nxasmq6b.com",
            "xn--",
            "b\u{fc}cher.de",
            "exa%6dple.com",
            "user@host",
            "host\\x",
            "host/x",
            "host?x",
            "host#x",
            "host x",
            "",
        ],
    )
}

fn ports() -> impl Strategy<Value = &'static str> {
    mix(
        vec!["", "", ":443", ":80", ":8080", ":65535"],
        vec![
            ":0", ":65536", ":", ":abc", ":+80", ":080", ":8080:1", ":\u{665}",
        ],
    )
}

/// Path segments, the odd ones a decode or a normalisation away from `.` or `..`.
fn segments() -> impl Strategy<Value = &'static str> {
    mix(
        vec![
            "a",
            "ops",
            "v1.2",
            "...",
            ".well-known",
            "..a",
            "a..",
            ";x",
            "a;b=..",
            "%252e%252e",
            "%%2e",
            "%2",
            "%",
            "%zz",
            "@evil",
            "{x}",
            "%2f",
            "%5c",
            "",
        ],
        vec![
            ".", "..", "%2e", "%2E", "%2e%2E", ".%2e", "%2e.", ".;x", "..;x", "..%3b", "..%3Bx=1",
            "%2F..", "..%2f", "..%5C", "\\", "a b", "\u{fc}", "\t",
        ],
    )
}

fn targets() -> impl Strategy<Value = String> {
    let query = mix(
        vec!["", "?", "?a=1", "?rd=/../x", "?x=%2e%2e", "?%2F"],
        vec!["#f", "?a#f"],
    );
    (
        mix(vec!["/"], vec!["//", "\\", ""]),
        proptest::collection::vec(segments(), 0..5),
        select(vec!["", "/"]),
        query,
    )
        .prop_map(|(start, segments, end, query)| {
            format!("{start}{}{end}{query}", segments.join("/"))
        })
}

/// Junk: printable ASCII heavy on URL delimiters, some controls, some non-ASCII.
fn arbitrary_text() -> impl Strategy<Value = String> {
    let char_ = prop_oneof![
        6 => proptest::char::range(' ', '~'),
        3 => select(vec!['/', '\\', ':', '@', '%', '.', '?', '#', '[', ']', ',', ';']),
        1 => any::<char>(),
    ];
    proptest::collection::vec(char_, 0..40).prop_map(|chars| chars.into_iter().collect())
}

/// `X-Forwarded-Host`: one `host[:port]`, or a comma list as chained proxies send it.
fn forwarded_hosts() -> impl Strategy<Value = String> {
    let structured = (
        hosts(),
        ports(),
        mix(vec!["", ", other.example"], vec![",", " ", "\t,x"]),
        mix(vec!["", " "], vec!["\t"]),
    )
        .prop_map(|(host, port, list, pad)| format!("{pad}{host}{port}{list}"));
    prop_oneof![4 => structured, 1 => arbitrary_text()]
}

fn protos() -> impl Strategy<Value = Option<String>> {
    let known = mix(
        vec!["https", "http", "HTTPS", "Http", "https, http", " http"],
        vec!["ftp", "", "https\r\n", "https\u{0}"],
    )
    .prop_map(str::to_string);
    prop_oneof![
        8 => known.prop_map(Some),
        1 => arbitrary_text().prop_map(Some),
        1 => Just(None),
    ]
}

fn methods() -> impl Strategy<Value = Option<String>> {
    let known = mix(
        vec!["GET", "HEAD", "POST", "M-SEARCH"],
        vec!["get", "", "G\u{c9}T", "GET\r\nX: y"],
    )
    .prop_map(|m| Some(m.to_string()));
    prop_oneof![4 => known, 1 => Just(None), 1 => arbitrary_text().prop_map(Some)]
}

fn rules() -> impl Strategy<Value = PathRules> {
    // Mostly the default; with encoded slashes allowed, dot segments must stay refused too.
    prop_oneof![
        3 => Just(PathRules::default()),
        1 => Just(PathRules { allow_encoded_slashes: true }),
    ]
}

/// `scheme://host[:port]target`, each part from its small alphabet, or junk.
fn original_urls() -> impl Strategy<Value = String> {
    let structured = (
        mix(
            vec!["https://", "http://", "HTTP://"],
            vec!["https:/", "https:", "ftp://", "//", ""],
        ),
        hosts(),
        ports(),
        targets(),
    )
        .prop_map(|(scheme, host, port, target)| format!("{scheme}{host}{port}{target}"));
    prop_oneof![4 => structured, 1 => arbitrary_text()]
}

/// The host part of a `host[:port]` as written (brackets kept for IPv6).
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        authority
            .find(']')
            .map_or(authority, |close| &authority[..=close])
    } else {
        authority
            .split_once(':')
            .map_or(authority, |(host, _)| host)
    }
}

/// The port written in a `host[:port]`, if any.
fn port_of(authority: &str) -> Option<u16> {
    let rest = &authority[host_of(authority).len()..];
    rest.strip_prefix(':').and_then(|port| port.parse().ok())
}

/// The segments of `path` as an application that decodes it once sees them, each cut at its
/// `;parameters` as Tomcat, Jetty and Spring do.
fn decoded_segment_names(path: &str) -> Vec<String> {
    let decoded = percent_decode_once(path);
    decoded
        .split(['/', '\\'])
        .map(|segment| segment.split(';').next().unwrap_or("").to_string())
        .collect()
}

fn percent_decode_once(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escape) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every property of one built request, `authority` being the `host[:port]` that was validated.
fn assert_sound(
    input: &str,
    request: &OriginalRequest<'_>,
    authority: &str,
) -> Result<Url, TestCaseError> {
    let url = match request.url() {
        Ok(url) => url,
        Err(err) => {
            return Err(TestCaseError::fail(format!(
                "{input:?}: built, but .url() fails: {err}"
            )))
        }
    };
    let host = host_of(authority);
    prop_assert!(
        url.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host)),
        "{input:?} -> {url}: host is not the validated {host:?}"
    );
    let default_port = match url.scheme() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    prop_assert_eq!(
        url.port_or_known_default(),
        port_of(authority).or(default_port),
        "{:?} -> {}: port moved",
        input,
        url
    );
    prop_assert!(
        url.username().is_empty() && url.password().is_none() && url.fragment().is_none(),
        "{input:?} -> {url}: userinfo or fragment"
    );
    for name in decoded_segment_names(url.path()) {
        prop_assert!(
            name != "." && name != "..",
            "{input:?} -> {url}: dot segment in the path"
        );
    }
    Ok(url)
}

/// A URL that was built once is accepted again, as `X-Original-URL`, and names the same URL:
/// the validation is not an accident of one spelling.
fn assert_stable(input: &str, url: &Url, rules: PathRules) -> Result<(), TestCaseError> {
    match from_original_url(Some(url.as_str()), None, rules) {
        Ok(again) => {
            prop_assert_eq!(
                again.url().ok(),
                Some(url.clone()),
                "{:?} -> {}",
                input,
                url
            );
            Ok(())
        }
        Err(err) => Err(TestCaseError::fail(format!(
            "{input:?} -> {url}: refused when sent again: {err}"
        ))),
    }
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
    fn forwarded_headers_once_built_name_the_checked_host_and_path(
        proto in protos(),
        host in forwarded_hosts(),
        uri in prop_oneof![4 => targets(), 1 => arbitrary_text()],
        method in methods(),
        rules in rules(),
    ) {
        let built = from_forwarded_headers(
            proto.as_deref(),
            Some(&host),
            Some(&uri),
            method.as_deref(),
            rules,
        );
        if let Ok(request) = built {
            let input = format!("proto={proto:?} host={host:?} uri={uri:?} method={method:?}");
            // Chained proxies: the first element, as the parser documents.
            let first = host.split(',').next().unwrap_or("").trim_matches([' ', '\t']);
            let url = assert_sound(&input, &request, first)?;
            assert_stable(&input, &url, rules)?;
        }
    }

    #[test]
    fn original_url_once_built_names_the_checked_host_and_path(
        value in original_urls(),
        method in methods(),
        rules in rules(),
    ) {
        if let Ok(request) = from_original_url(Some(&value), method.as_deref(), rules) {
            let authority = value
                .split_once("://")
                .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
                .unwrap_or("");
            let url = assert_sound(&value, &request, authority)?;
            assert_stable(&value, &url, rules)?;
        }
    }
}

/// The generators must reach the accepting branch often, or the properties hold vacuously.
#[test]
fn generators_produce_accepted_requests() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = (original_urls(), rules());
    let accepted = (0..1000)
        .filter(|_| {
            let (value, rules) = strategy.new_tree(&mut runner).unwrap().current();
            from_original_url(Some(&value), None, rules).is_ok()
        })
        .count();
    assert!(
        accepted >= 50,
        "only {accepted} of 1000 generated URLs were accepted"
    );
}

/// Text near an IPv4 address: mostly four parts joined by dots, mostly numbers near an
/// octet's limits (0 to 10, 95 to 105, 195 to 205, 245 to 260, or any up to 999), else with
/// a leading zero or a few other characters.
fn near_ipv4() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        0u16..=10,
        95u16..=105,
        195u16..=205,
        245u16..=260,
        0u16..=999
    ];
    let part = prop_oneof![
        8 => number.prop_map(|n| n.to_string()),
        1 => "0[0-9]{1,3}",
        1 => "[0-9a-fx+ -]{0,4}",
    ];
    let count = prop_oneof![4 => Just(4usize), 1 => 1usize..=6];
    count
        .prop_flat_map(move |count| proptest::collection::vec(part.clone(), count))
        .prop_map(|parts| parts.join("."))
}

proptest! {
    #![proptest_config(config())]

    /// The pattern that spares a check the general IPv4 parser accepts exactly what it does.
    #[test]
    fn the_ipv4_pattern_accepts_what_the_standard_parser_accepts(
        text in prop_oneof![4 => near_ipv4(), 1 => arbitrary_text()],
    ) {
        prop_assert_eq!(
            super::is_dotted_decimal_ipv4(&text),
            text.parse::<std::net::Ipv4Addr>().is_ok(),
            "{:?}", text
        );
    }
}
