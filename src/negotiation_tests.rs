use super::*;

#[test]
fn browsers_are_recognised() {
    let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
    let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let safari = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    for accept in [chrome, firefox, safari] {
        assert!(wants_html("GET", Some(accept)));
        assert!(wants_html("HEAD", Some(accept)));
    }
}

#[test]
fn non_navigations_are_not_browsers() {
    let html = Some("text/html");
    assert!(!wants_html("POST", html));
    assert!(!wants_html("get", html));
    assert!(!wants_html("OPTIONS", html));
    assert!(!wants_html("GET", None));
    // curl, fetch() and XHR send `*/*` by default.
    assert!(!wants_html("GET", Some("*/*")));
    assert!(!wants_html("GET", Some("")));
    assert!(!wants_html("GET", Some("application/json")));
    assert!(!wants_html(
        "GET",
        Some("application/json, text/plain, */*")
    ));
    assert!(!wants_html("GET", Some("text/*")));
}

#[test]
fn accept_quality_values_are_parsed() {
    let yes = [
        "TEXT/HTML",
        "text/html;q=1",
        "text/html;q=1.000",
        "text/html ; q=0.001",
        "text/html;Q=0.5",
        "text/html;level=1;q=0.5",
        "application/xhtml+xml",
        "text/html;q=0, application/xhtml+xml;q=0.1",
        "text/plain;format=\"a,b\", text/html",
    ];
    for accept in yes {
        assert!(wants_html("GET", Some(accept)), "{accept:?}");
    }
    let no = [
        "text/html;q=0",
        "text/html;q=0.0",
        "text/html;q=0.000",
        "text/html; q=0, */*",
        "text/html;q=0, application/xhtml+xml;q=0",
        "text/html, text/html;q=0",
        "text/html;q=1.5",
        "text/html;q=2",
        "text/html;q=-1",
        "text/html;q=0.0001",
        "text/html;q=abc",
        "text/html;q=",
        "text/plain;format=\"x,text/html\"",
        "text/htmlx",
        "xtext/html",
    ];
    for accept in no {
        assert!(!wants_html("GET", Some(accept)), "{accept:?}");
    }
}

#[test]
fn qvalue_grammar() {
    assert_eq!(parse_qvalue("0"), Some(0.0));
    assert_eq!(parse_qvalue("0.5"), Some(0.5));
    assert_eq!(parse_qvalue("1"), Some(1.0));
    assert_eq!(parse_qvalue("1.0"), Some(1.0));
    assert_eq!(parse_qvalue("1.001"), None);
    assert_eq!(parse_qvalue("0.1234"), None);
    assert_eq!(parse_qvalue(".5"), None);
    assert_eq!(parse_qvalue("00.5"), None);
    assert_eq!(parse_qvalue("0.5e1"), None);
}

#[test]
fn quote_aware_split() {
    assert_eq!(split_outside_quotes("a,b", ','), vec!["a", "b"]);
    assert_eq!(
        split_outside_quotes("a;x=\"1,2\",b", ','),
        vec!["a;x=\"1,2\"", "b"]
    );
    assert_eq!(
        split_outside_quotes("a;x=\"q\\\"\",b", ','),
        vec!["a;x=\"q\\\"\"", "b"]
    );
    assert_eq!(split_outside_quotes("", ','), vec![""]);
}
