use super::*;

const LIST: &str = "app.example.com, .example.org, port.example.net:8443, 127.0.0.1:8080, \
any.example.net:*, .wild.example.net:*";

fn allowed() -> AllowedRedirects {
    AllowedRedirects::parse(LIST).expect("test list parses")
}

fn base() -> Url {
    Url::parse("https://auth.example.com/oauth2/callback").expect("test base parses")
}

/// `(candidate, expected result)`; `None` means "refused".
type Case = (&'static str, Option<&'static str>);

const TABLE: &[Case] = &[
    // --- Ordinary targets that must keep working.
    ("/", Some("https://auth.example.com/")),
    (
        "/app/page?x=1&y=/z#frag",
        Some("https://auth.example.com/app/page?x=1&y=/z#frag"),
    ),
    ("/a/../b", Some("https://auth.example.com/b")),
    ("https://app.example.com/", Some("https://app.example.com/")),
    // An entry without a port allows only the scheme's default port.
    ("https://app.example.com:9000/x", None),
    ("http://app.example.com:443/x", None),
    ("http://app.example.com/x", Some("http://app.example.com/x")),
    (
        "http://app.example.com:80/x",
        Some("http://app.example.com/x"),
    ),
    ("https://sub.example.org:8443/", None),
    // `host:*` and `.suffix:*` allow any port.
    (
        "https://any.example.net:9000/x",
        Some("https://any.example.net:9000/x"),
    ),
    ("https://any.example.net/", Some("https://any.example.net/")),
    ("https://sub.any.example.net/", None),
    (
        "http://a.wild.example.net:8080/",
        Some("http://a.wild.example.net:8080/"),
    ),
    (
        "HTTPS://App.Example.COM/X",
        Some("https://app.example.com/X"),
    ),
    // `.example.org` covers the domain itself and every subdomain.
    ("http://example.org/", Some("http://example.org/")),
    (
        "https://deep.sub.example.org/a?b",
        Some("https://deep.sub.example.org/a?b"),
    ),
    // An entry with a port allows only that port (explicit or default).
    (
        "https://port.example.net:8443/",
        Some("https://port.example.net:8443/"),
    ),
    ("https://port.example.net/", None),
    ("https://port.example.net:443/", None),
    ("http://127.0.0.1:8080/cb", Some("http://127.0.0.1:8080/cb")),
    ("http://127.0.0.1/", None),
    ("http://127.0.0.1:8081/", None),
    // An explicit default port is the same origin as no port.
    (
        "https://app.example.com:443/",
        Some("https://app.example.com/"),
    ),
    // Absolute targets whose path reads as protocol-relative, written or after dot segments.
    ("https://app.example.com//evil.com", None),
    ("https://app.example.com/..//evil.com", None),
    ("https://auth.example.com/.//evil.com", None),
    (
        "https://app.example.com/a//b",
        Some("https://app.example.com/a//b"),
    ),
    // A same-origin path that merely *contains* a URL is still our own path.
    (
        "/https://evil.com",
        Some("https://auth.example.com/https://evil.com"),
    ),
    //
    // --- bitly/oauth2_proxy PR #359 (fixes issue #228): protocol-relative `//host`.
    ("//evil.com/", None),
    ("//app.example.com/", None),
    ("///evil.com", None),
    ("////evil.com/%2e%2e", None),
    //
    // --- oauth2-proxy GHSA-qqxw-m5fj-f7gv / CVE-2020-5233: `/\` is `//` to a browser.
    ("/\\evil.com", None),
    ("/\\/evil.com/", None),
    ("\\/\\/evil.com/", None),
    //
    // --- oauth2-proxy GHSA-j7px-6hwj-hpjg / CVE-2020-11053: whitespace between the
    // slashes, raw or percent-encoded, which browsers strip.
    ("/\t/evil.com", None),
    ("/\n/evil.com", None),
    ("/\r/evil.com", None),
    ("/\x0b/evil.com", None),
    ("/ /evil.com", None),
    ("/%09/evil.com", None),
    ("/%0a/evil.com", None),
    ("/%0D/evil.com", None),
    //
    // --- oauth2-proxy GHSA-5m6c-jp6f-2vcv / CVE-2020-4037 (test cases added in
    // ploxiln/oauth2_proxy PR #59): repeated whitespace and dot segments before `\`.
    ("/\t/\t\\evil.com", None),
    ("/\t\t\\\t/evil.com", None),
    ("/./\\evil.com", None),
    ("/./../../\\evil.com", None),
    //
    // --- oauth2-proxy GHSA-4mf2-f3wh-gvf2 / CVE-2021-21291: `.example.org` must not
    // match a host that merely ends with the same letters, nor one that continues.
    ("https://badexample.org/", None),
    ("https://evilexample.org/", None),
    ("https://example.org.evil.net/", None),
    ("https://app.example.com.evil.net/", None),
    //
    // --- oauth2-proxy testdata/openredirects.txt (the payload list its validator is
    // tested against): userinfo, `#`/`?` before `@`, encoded separators in the host,
    // numeric IPs, schemes without slashes, encoded paths.
    ("http://app.example.com@evil.com/", None),
    ("http://evil.com:80#@app.example.com/", None),
    ("http://evil.com:80?@app.example.com/", None),
    ("http://evil.com#@app.example.com", None),
    ("http://evil.com?@app.example.com", None),
    ("http://app.example.com:80%40evil.com/", None),
    ("http://evil.com%2eexample.org/", None),
    ("http://evil.com%23.example.org/", None),
    ("http://evil.com%2f%2f.example.org/", None),
    ("http://evil.com%5c%5c.example.org/", None),
    ("//google%E3%80%82com", None),
    ("http://[::ffff:216.58.214.206]", None),
    ("http://0xd83ad6ce", None),
    ("http:evil.com", None),
    ("/%2f%2fevil.com", None),
    ("/%5cevil.com", None),
    ("/%2F/evil.com", None),
    ("@evil.com", None),
    ("javascript:alert(1)", None),
    (
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        None,
    ),
    ("<>//evil.com", None),
    ("/..//evil.com", None),
    ("/%2e%2e//evil.com", None),
    //
    // --- vouch/vouch-proxy handlers/login_test.go (getValidRequestedURL): no scheme,
    // other domains, data: and javascript: targets.
    ("app.example.com/dest", None),
    ("http://somewherelse.com/", None),
    ("data:text/plain,Example+Text", None),
    ("JAVASCRIPT://app.example.com/%0aalert(1)", None),
    // vouch also refuses a *query* that names another URL ("redirection chaining");
    // we deliberately do not: the target host is one the operator trusts, and a
    // query-string blocklist breaks legitimate apps (vouch-proxy issue #313).
    (
        "https://app.example.com/dest?url=https://evil.com",
        Some("https://app.example.com/dest?url=https://evil.com"),
    ),
    //
    // --- Authelia GHSA-36f2-fcrx-fp4j (open redirect on the logout endpoint) and the
    // IsURISafeRedirection tests added with it: other schemes and near-miss suffixes.
    ("https://evil.com/", None),
    ("ftp://secure.example.org/", None),
    ("https://secure.example.org.c/", None),
    ("https://secure.example.orgc/", None),
    ("https://secure.example.or/", None),
    //
    // --- thomseddon/traefik-forward-auth PR #77 (return URL taken from the OAuth state
    // without validation): any absolute URL outside the allowed hosts.
    ("https://evil.com/phish?from=app.example.com", None),
    ("http://evil.com/redirect?rd=app.example.com", None),
    //
    // --- Cases listed in our own design brief.
    ("https:evil.com", None),
    ("https:app.example.com", None),
    ("https:/app.example.com/", None),
    ("http://evil.com\\@app.example.com", None),
    ("http://app.example.com\\@evil.com", None),
    ("http://user@app.example.com/", None),
    ("http://user:pass@app.example.com/", None),
    ("https://evil.example.org%2e/", None),
    (" /x", None),
    ("/x ", None),
    ("https://app.example.com/ ", None),
    ("\thttps://app.example.com/", None),
    // Unicode look-alikes: Cyrillic "а", full-width letters, ideographic full stop.
    ("https://\u{0430}pp.example.com/", None),
    ("https://\u{ff41}pp.example.com/", None),
    ("https://app\u{3002}example.com/", None),
    ("/caf\u{e9}", None),
    // A trailing dot is the same DNS name but not the same string; we refuse rather
    // than reason about it.
    ("https://app.example.com./", None),
    // An IP written in another notation is refused: hosts must be written canonically.
    ("http://2130706433:8080/", None),
    ("http://127.1:8080/", None),
    ("https://app.example.com:/", None),
    ("", None),
];

#[test]
fn table_of_payloads() {
    let allowed = allowed();
    let base = base();
    let mut failures = Vec::new();
    for (candidate, expected) in TABLE {
        let got = allowed.resolve(candidate, &base);
        let got = got.as_ref().map(Url::as_str);
        if got != *expected {
            failures.push(format!("{candidate:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(TABLE.len() >= 30);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn overlong_candidates_are_refused() {
    let allowed = allowed();
    let base = base();
    let at_limit = format!("/{}", "a".repeat(MAX_CANDIDATE_LEN - 1));
    assert!(allowed.resolve(&at_limit, &base).is_some());
    let over = format!("/{}", "a".repeat(MAX_CANDIDATE_LEN));
    assert_eq!(allowed.resolve(&over, &base), None);
}

#[test]
fn relative_paths_need_no_entries_and_keep_base_origin() {
    let empty = AllowedRedirects::parse("").expect("blank list is allowed");
    assert!(empty.is_empty());
    let base = Url::parse("http://127.0.0.1:4180/callback").expect("base");
    assert_eq!(
        empty.resolve("/x?y", &base).map(String::from),
        Some("http://127.0.0.1:4180/x?y".to_owned())
    );
    assert_eq!(empty.resolve("http://127.0.0.1:4180/x", &base), None);
}

#[test]
fn relative_paths_refuse_an_unusable_base() {
    let allowed = allowed();
    let base = Url::parse("data:text/plain,hi").expect("base");
    assert_eq!(allowed.resolve("/x", &base), None);
}

#[test]
fn parse_accepts_every_entry_form() {
    let list = AllowedRedirects::parse(
        " App.Example.COM , app.example.com:8443,.example.org,127.0.0.1,127.0.0.1:8080,[::1]:9000 ",
    )
    .expect("valid list");
    assert_eq!(list.entries.len(), 6);
    assert_eq!(
        list.entries[0],
        Entry {
            host: HostRule::Exact(Host::Domain("app.example.com".to_owned())),
            port: PortRule::Default
        }
    );
    assert_eq!(
        list.entries[2],
        Entry {
            host: HostRule::Subdomains("example.org".to_owned()),
            port: PortRule::Default
        }
    );
    let any = AllowedRedirects::parse("app.example.com:*,.example.org:*").expect("any port");
    assert_eq!(any.entries[0].port, PortRule::Any);
    assert_eq!(any.entries[1].port, PortRule::Any);
    let base = base();
    assert!(list.resolve("http://[::1]:9000/", &base).is_some());
    assert!(list.resolve("http://[::1]:9001/", &base).is_none());
    assert!(list.resolve("http://127.0.0.1:1234/", &base).is_none());
    assert!(list.resolve("http://127.0.0.1/", &base).is_some());
}

#[test]
fn parse_normalises_internationalised_names() {
    let list = AllowedRedirects::parse("b\u{fc}cher.example").expect("IDN entry");
    let base = base();
    assert!(list
        .resolve("https://xn--bcher-kva.example/", &base)
        .is_some());
    assert!(list
        .resolve("https://XN--BCHER-KVA.example/", &base)
        .is_some());
}

#[test]
fn parse_rejects_bad_entries_naming_each() {
    let cases = [
        ("https://app.example.com", "scheme"),
        ("app.example.com/path", "path"),
        ("user@app.example.com", "user name"),
        ("*.example.com", "wildcard"),
        ("app.example.com:0", "port"),
        ("app.example.com:99999", "port"),
        ("app.example.com:", "port"),
        ("app.example.com:+80", "port"),
        ("app.example.com:80:*", "two ports"),
        ("app.example.com:*:80", "port"),
        ("app.*:80", "wildcard"),
        ("::1", "host or host:port"),
        ("[::1", "host or host:port"),
        ("..example.com", "stray dot"),
        ("app..example.com", "stray dot"),
        (".127.0.0.1", "IP address"),
        ("exa mple.com", "spaces"),
        ("app.exa\tmple.com", "spaces"),
        ("a%2eb.com", "percent"),
        ("exa<mple.com", "not a valid host"),
    ];
    for (entry, reason) in cases {
        let list = format!("good.example.com, {entry}");
        let err = AllowedRedirects::parse(&list).expect_err(entry);
        assert!(
            err.contains(&format!("{:?}", entry.trim())),
            "{entry:?}: {err}"
        );
        assert!(err.contains(reason), "{entry:?}: {err}");
    }
}

#[test]
fn parse_rejects_empty_items_and_reports_all_problems() {
    let err = AllowedRedirects::parse("a.example.com,,b.example.com").expect_err("empty item");
    assert!(err.contains("empty"), "{err}");
    let err = AllowedRedirects::parse("a.example.com,").expect_err("trailing comma");
    assert!(err.contains("empty"), "{err}");
    let err =
        AllowedRedirects::parse("*.x.com, ok.example.com, http://y.com").expect_err("two bad");
    assert!(
        err.contains("\"*.x.com\"") && err.contains("\"http://y.com\""),
        "{err}"
    );
}

#[test]
fn add_host_extends_the_list() {
    let mut list = AllowedRedirects::default();
    assert!(list.is_empty());
    let base = base();
    list.add_host("Auth.Example.com", Some(443));
    assert!(!list.is_empty());
    assert!(list.resolve("https://auth.example.com/x", &base).is_some());
    assert!(list
        .resolve("https://auth.example.com:8443/x", &base)
        .is_none());

    list.add_host(".example.net", None);
    assert!(list.resolve("http://a.example.net:81/", &base).is_none());
    assert!(list.resolve("http://a.example.net/", &base).is_some());
    assert!(list.resolve("http://example.net/", &base).is_some());
    assert!(list.resolve("http://badexample.net/", &base).is_none());

    list.add_host("[::1]", Some(8080));
    assert!(list.resolve("http://[::1]:8080/", &base).is_some());

    // Adding twice keeps one entry; unparsable hosts are skipped.
    let before = list.entries.len();
    list.add_host("auth.example.com", Some(443));
    list.add_host("not a host", None);
    list.add_host("", None);
    list.add_host(".", None);
    assert_eq!(list.entries.len(), before);
}

#[test]
fn subdomain_boundary_helper() {
    assert!(is_same_or_subdomain("example.com", "example.com"));
    assert!(is_same_or_subdomain("a.example.com", "example.com"));
    assert!(!is_same_or_subdomain("aexample.com", "example.com"));
    assert!(!is_same_or_subdomain(".example.com", "example.com"));
    assert!(!is_same_or_subdomain("example.com.evil", "example.com"));
}

#[test]
fn encoded_control_detection() {
    assert!(has_encoded_control("/a%00b"));
    assert!(has_encoded_control("/a%1fb"));
    assert!(has_encoded_control("/a%7Fb"));
    assert!(!has_encoded_control("/a%20b"));
    assert!(!has_encoded_control("/a%zzb"));
    assert!(!has_encoded_control("/100%"));
}
