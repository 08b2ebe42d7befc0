use serde_json::{json, Map, Value};
use url::Url;

use super::*;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn graph() -> Url {
    Url::parse("https://graph.microsoft.com").unwrap()
}

/// Entra ID's ID token for a user in too many groups (Microsoft identity platform, "groups
/// overage claim").
fn overage() -> Value {
    json!({
        "sub": "u1",
        "_claim_names": {"groups": "src1"},
        "_claim_sources": {"src1": {"endpoint": "https://graph.windows.net/tenant/users/u1/getMemberObjects"}},
    })
}

#[test]
fn the_overage_marker_names_a_source_that_is_there() {
    let cases = [
        (overage(), true),
        // Another source name, as long as both agree.
        (
            json!({"_claim_names": {"groups": "s"}, "_claim_sources": {"s": {}}}),
            true,
        ),
        (json!({"groups": ["a"]}), false),
        (json!({}), false),
        // The marker for another claim.
        (
            json!({"_claim_names": {"roles": "src1"}, "_claim_sources": {"src1": {"endpoint": "x"}}}),
            false,
        ),
        // A source that is not there, or not an object.
        (
            json!({"_claim_names": {"groups": "src2"}, "_claim_sources": {"src1": {"endpoint": "x"}}}),
            false,
        ),
        (
            json!({"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": "x"}}),
            false,
        ),
        (json!({"_claim_names": {"groups": "src1"}}), false),
        (
            json!({"_claim_names": {"groups": 1}, "_claim_sources": {"1": {}}}),
            false,
        ),
        (
            json!({"_claim_names": "groups", "_claim_sources": {"groups": {}}}),
            false,
        ),
    ];
    for (claims, expected) in cases {
        assert_eq!(
            has_groups_overage(&object(claims.clone())),
            expected,
            "{claims}"
        );
    }
}

/// Graph's documented answer to `GET /me/transitiveMemberOf/microsoft.graph.group`.
fn page(groups: Value, next: Option<&str>) -> Vec<u8> {
    let mut page = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects(id,displayName)",
        "value": groups,
    });
    if let Some(next) = next {
        page["@odata.nextLink"] = json!(next);
    }
    page.to_string().into_bytes()
}

fn g(id: &str, name: Option<&str>) -> GraphGroup {
    GraphGroup {
        id: id.to_string(),
        display_name: name.map(str::to_string),
    }
}

#[test]
fn a_page_of_graph_is_its_groups_and_its_next_link() {
    let next = "https://graph.microsoft.com/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$skiptoken=RFNwdAIAAQAAAA";
    let body = page(
        json!([
            {"@odata.type": "#microsoft.graph.group", "id": "11111111-aaaa", "displayName": "Engineering"},
            {"@odata.type": "#microsoft.graph.group", "id": "22222222-bbbb", "displayName": null},
            {"id": "33333333-cccc", "displayName": ""},
            // Not groups: left out.
            {"@odata.type": "#microsoft.graph.directoryRole", "id": "role", "displayName": "Admin"},
            {"@odata.type": "#microsoft.graph.group", "displayName": "no id"},
            {"@odata.type": "#microsoft.graph.group", "id": ""},
            "a string",
        ]),
        Some(next),
    );
    assert_eq!(
        parse_page(200, &body),
        Ok(GraphPage {
            groups: vec![
                g("11111111-aaaa", Some("Engineering")),
                g("22222222-bbbb", None),
                g("33333333-cccc", None),
            ],
            next_link: Some(next.to_string()),
        })
    );
    // The last page has no next link; an empty list is a user in no group.
    assert_eq!(
        parse_page(200, &page(json!([]), None)),
        Ok(GraphPage {
            groups: vec![],
            next_link: None
        })
    );
}

#[test]
fn graph_errors_are_refused_unreachable_or_invalid() {
    let error = |code: &str, message: &str| {
        json!({"error": {"code": code, "message": message, "innerError": {"request-id": "r1", "date": "2024-01-01T00:00:00"}}})
            .to_string()
            .into_bytes()
    };
    type Expect = fn(&GraphError) -> bool;
    let refused: Expect = |e| matches!(e, GraphError::Refused(_));
    let unreachable: Expect = |e| matches!(e, GraphError::Unreachable(_));
    let invalid: Expect = |e| matches!(e, GraphError::Invalid(_));
    let cases: Vec<(u16, Vec<u8>, Expect, &str)> = vec![
        (
            401,
            error(
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
            ),
            refused,
            "HTTP 401: InvalidAuthenticationToken: Access token has expired",
        ),
        (
            403,
            error(
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ),
            refused,
            "HTTP 403: Authorization_RequestDenied: Insufficient privileges",
        ),
        (
            429,
            error("TooManyRequests", "Too many requests"),
            unreachable,
            "HTTP 429: TooManyRequests",
        ),
        (
            503,
            b"<html>Service Unavailable</html>".to_vec(),
            unreachable,
            "HTTP 503",
        ),
        (500, Vec::new(), unreachable, "HTTP 500"),
        (
            404,
            error("Request_ResourceNotFound", "Resource does not exist"),
            invalid,
            "HTTP 404: Request_ResourceNotFound",
        ),
        // A redirect is not followed: the token would go with it.
        (302, Vec::new(), invalid, "HTTP 302"),
        (200, b"not json".to_vec(), invalid, "not JSON"),
        (200, b"[1]".to_vec(), invalid, "not a JSON object"),
        (
            200,
            br#"{"@odata.context": "x"}"#.to_vec(),
            invalid,
            "no value list",
        ),
        (200, br#"{"value": {}}"#.to_vec(), invalid, "no value list"),
        (
            200,
            br#"{"value": [], "@odata.nextLink": 5}"#.to_vec(),
            invalid,
            "nextLink is not a string",
        ),
    ];
    for (status, body, kind, text) in cases {
        let err = parse_page(status, &body).expect_err("an error");
        assert!(kind(&err), "{status}: {err:?}");
        assert!(err.to_string().contains(text), "{status}: {err}");
    }
    // Graph's words are cut, whatever it sends.
    let long = error("Code", &"x".repeat(5000));
    let err = parse_page(401, &long).expect_err("an error");
    assert!(err.to_string().len() < 500, "{err}");
}

#[test]
fn the_first_page_is_under_the_graph_url() {
    assert_eq!(
        first_page_url(&graph()).as_str(),
        "https://graph.microsoft.com/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id,displayName"
    );
    let local = Url::parse("http://127.0.0.1:8080/graph/").unwrap();
    assert_eq!(
        first_page_url(&local).as_str(),
        "http://127.0.0.1:8080/graph/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id,displayName"
    );
}

#[test]
fn next_links_are_followed_only_on_the_graph_origin() {
    let follows = [
        "https://graph.microsoft.com/v1.0/me/transitiveMemberOf/microsoft.graph.group?$skiptoken=abc",
        "https://GRAPH.microsoft.com:443/v1.0/anything",
    ];
    for link in follows {
        assert!(next_page_url(&graph(), link).is_ok(), "{link}");
    }
    let refused = [
        "https://graph.microsoft.com.evil.example/v1.0/me",
        "http://graph.microsoft.com/v1.0/me",
        "https://graph.microsoft.com:8443/v1.0/me",
        "https://evil.example/?https://graph.microsoft.com",
        "https://user:pw@graph.microsoft.com/v1.0/me",
        "https://graph.windows.net/tenant/users/u1/getMemberObjects",
        "/v1.0/me?$skiptoken=relative",
        "not a url",
    ];
    for link in refused {
        let err = next_page_url(&graph(), link).expect_err(link);
        assert!(matches!(err, GraphError::Invalid(_)), "{link}: {err:?}");
    }
    let local = Url::parse("http://127.0.0.1:8080").unwrap();
    assert!(next_page_url(&local, "http://127.0.0.1:8080/v1.0/x?$skiptoken=1").is_ok());
    assert!(next_page_url(&local, "http://127.0.0.1:8081/v1.0/x?$skiptoken=1").is_err());
    assert!(next_page_url(&local, "http://localhost:8080/v1.0/x?$skiptoken=1").is_err());
}

#[test]
fn pages_are_gathered_until_the_last_and_bounded() {
    let next =
        "https://graph.microsoft.com/v1.0/me/transitiveMemberOf/microsoft.graph.group?$skiptoken=n";
    let with = |id: &str, link: Option<&str>| GraphPage {
        groups: vec![g(id, None)],
        next_link: link.map(str::to_string),
    };
    let mut pages = Pages::default();
    assert_eq!(
        pages
            .add(&graph(), with("a", Some(next)))
            .unwrap()
            .map(|u| u.to_string()),
        Some(next.to_string())
    );
    assert_eq!(pages.add(&graph(), with("b", None)).unwrap(), None);
    assert_eq!(pages.groups, vec![g("a", None), g("b", None)]);
    assert_eq!(pages.read, 2);

    // A Graph that never stops: the last allowed page may not ask for another.
    let mut pages = Pages::default();
    for n in 1..MAX_PAGES {
        assert!(
            pages
                .add(&graph(), with("x", Some(next)))
                .unwrap()
                .is_some(),
            "page {n}"
        );
    }
    let err = pages
        .add(&graph(), with("x", Some(next)))
        .expect_err("bounded");
    assert!(
        err.to_string()
            .contains(&format!("more than {MAX_PAGES} pages")),
        "{err}"
    );
    // The last allowed page that ends the list is fine.
    let mut pages = Pages::default();
    for _ in 1..MAX_PAGES {
        pages.add(&graph(), with("x", Some(next))).unwrap();
    }
    assert_eq!(pages.add(&graph(), with("x", None)).unwrap(), None);

    // A next link elsewhere stops the read.
    let mut pages = Pages::default();
    assert!(pages
        .add(&graph(), with("a", Some("https://evil.example/next")))
        .is_err());
}

#[test]
fn groups_are_ids_or_display_names_and_a_group_without_a_name_keeps_its_id() {
    let groups = [
        g("id-1", Some("Engineering")),
        g("id-2", None),
        g("id-3", Some("Ops")),
        g("id-4", Some("Ops")),
    ];
    let (ids, unnamed) = group_values(&groups, false);
    assert_eq!(ids, ["id-1", "id-2", "id-3", "id-4"]);
    assert!(unnamed.is_empty());
    let (names, unnamed) = group_values(&groups, true);
    // Two groups of one name are one group to the rules.
    assert_eq!(names, ["Engineering", "id-2", "Ops"]);
    assert_eq!(unnamed, ["id-2"]);
}

#[test]
fn the_groups_replace_the_groups_claim_where_it_is_read() {
    for path in ["groups", "realm_access.roles", "https://example.com/groups"] {
        let mut claims = object(overage());
        claims.insert("realm_access".into(), json!({"roles": ["old"]}));
        replace_groups(&mut claims, path, vec!["a".into(), "b".into()]);
        assert_eq!(
            crate::claims::groups(&Value::Object(claims), path),
            ["a", "b"],
            "{path}"
        );
    }
}
