use super::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| (*name).to_owned()).collect()
}

fn terms(list: &str) -> Option<Vec<GroupTerm>> {
    match parse_group_terms(list) {
        Ok(terms) => Some(terms),
        Err(error) => panic!("bad test fixture {list:?}: {error}"),
    }
}

fn domains(list: &str) -> Option<EmailDomains> {
    match parse_email_domains(list) {
        Ok(domains) => Some(domains),
        Err(error) => panic!("bad test fixture {list:?}: {error}"),
    }
}

fn group_map(json: &str) -> GroupMap {
    match parse_group_map(json) {
        Ok(map) => map,
        Err(error) => panic!("bad test fixture {json:?}: {error}"),
    }
}

fn route(query: &str) -> RouteRules {
    match RouteRules::from_query(query) {
        Ok(rules) => rules,
        Err(error) => panic!("bad test fixture {query:?}: {error}"),
    }
}

fn global(configure: impl FnOnce(&mut GlobalRules)) -> GlobalRules {
    let mut rules = GlobalRules::default();
    configure(&mut rules);
    rules
}

const MAP_JSON: &str =
    r#"{"ACME Engineering": ["Customer Support", "Engineering"], "/inventree/admins": "admin"}"#;

#[derive(Clone)]
struct User {
    username: &'static str,
    email: Option<&'static str>,
    email_verified: bool,
    groups: Vec<&'static str>,
}

impl User {
    fn identity(&self) -> Identity<'_> {
        Identity {
            provider: None,
            username: self.username,
            email: self.email,
            email_verified: self.email_verified,
            idp_groups: &self.groups,
        }
    }
}

fn user(username: &'static str, email: &'static str, groups: &[&'static str]) -> User {
    User {
        username,
        email: Some(email),
        email_verified: true,
        groups: groups.to_vec(),
    }
}

fn alice(groups: &[&'static str]) -> User {
    user("alice", "alice@example.com", groups)
}

fn with_email(mut who: User, email: Option<&'static str>, verified: bool) -> User {
    who.email = email;
    who.email_verified = verified;
    who
}

fn allow(groups: &[&'static str]) -> Decision<'static> {
    Decision::Allow {
        upstream_groups: groups.to_vec(),
    }
}

fn deny(reason: DenyReason) -> Decision<'static> {
    Decision::Deny(reason)
}

struct Case {
    name: &'static str,
    global: GlobalRules,
    query: &'static str,
    who: User,
    expected: Decision<'static>,
}

fn check(cases: Vec<Case>) {
    for case in cases {
        let route = route(case.query);
        let decision = decide(&case.global, &route, &case.who.identity());
        assert_eq!(decision, case.expected, "case: {}", case.name);
    }
}

// ---- parse_group_terms ----

#[test]
fn group_terms_parse() {
    use GroupTerm::*;
    let cases: &[(&str, Vec<GroupTerm>)] = &[
        ("staff", vec![Exact("staff".into())]),
        (
            " staff , ops ",
            vec![Exact("staff".into()), Exact("ops".into())],
        ),
        ("^RT_", vec![Prefix("RT_".into())]),
        ("GroupMap", vec![AnyMapped]),
        ("groupmap", vec![Exact("groupmap".into())]),
        ("GroupMaps", vec![Exact("GroupMaps".into())]),
        (
            "admins,,^RT_, GroupMap,",
            vec![Exact("admins".into()), Prefix("RT_".into()), AnyMapped],
        ),
        ("a^b", vec![Exact("a^b".into())]),
        ("^^x", vec![Prefix("^x".into())]),
    ];
    for (input, expected) in cases {
        assert_eq!(parse_group_terms(input).as_ref(), Ok(expected), "{input:?}");
    }
}

#[test]
fn group_terms_reject_empty_lists_and_empty_prefixes() {
    for input in ["", " ", ",", " , ,", "^", "staff,^", " ^ "] {
        assert!(parse_group_terms(input).is_err(), "{input:?} should fail");
    }
}

// ---- parse_group_map ----

#[test]
fn group_map_parses_strings_and_lists_in_document_order() {
    let map = group_map(r#"{"zeta": "z", "alpha": ["a1", "a2"], "mid": []}"#);
    let entries: Vec<(&str, &[String])> = map.iter().collect();
    let a_targets = names(&["a1", "a2"]);
    let z_targets = names(&["z"]);
    assert_eq!(
        entries,
        vec![
            ("zeta", z_targets.as_slice()),
            ("alpha", a_targets.as_slice()),
            ("mid", &[][..]),
        ]
    );
    assert_eq!(map.len(), 3);
    assert!(map.contains("mid"));
    assert!(!map.contains("Zeta"));
    assert_eq!(map.targets("alpha"), Some(a_targets.as_slice()));
    assert_eq!(map.targets("missing"), None);
}

#[test]
fn group_map_blank_is_empty() {
    for input in ["", "  \n", "{}"] {
        assert!(group_map(input).is_empty(), "{input:?}");
    }
}

#[test]
fn group_map_rejects_bad_values_naming_the_key() {
    let cases = [
        (r#"{"ops": 1}"#, Some("\"ops\"")),
        (r#"{"ops": ["a", 2]}"#, Some("\"ops\"")),
        (r#"{"ops": null}"#, Some("\"ops\"")),
        (r#"{"ops": {"a": "b"}}"#, Some("\"ops\"")),
        (r#"{"ops": ""}"#, Some("\"ops\"")),
        (r#"{"ops": ["a", ""]}"#, Some("\"ops\"")),
        (r#"{"ops": "a", "ops": "b"}"#, Some("\"ops\"")),
        (r#"{"": "a"}"#, None),
        (r#"["ops"]"#, None),
        (r#""ops""#, None),
        (r#"{"ops": "a""#, None),
        ("not json", None),
    ];
    for (input, mentions) in cases {
        match parse_group_map(input) {
            Ok(map) => panic!("{input:?} parsed as {map:?}"),
            Err(message) => {
                if let Some(key) = mentions {
                    assert!(message.contains(key), "{input:?}: {message}");
                }
            }
        }
    }
}

// ---- parse_email_domains ----

#[test]
fn email_domains_parse_lower_case() {
    use DomainPattern::*;
    let cases: &[(&str, Vec<DomainPattern>)] = &[
        ("example.com", vec![Exact("example.com".into())]),
        ("Example.COM", vec![Exact("example.com".into())]),
        (".example.com", vec![WithSubdomains("example.com".into())]),
        (
            " a.org , .B.org ",
            vec![Exact("a.org".into()), WithSubdomains("b.org".into())],
        ),
        ("localhost", vec![Exact("localhost".into())]),
    ];
    for (input, expected) in cases {
        let parsed = parse_email_domains(input).map(|d| d.patterns().to_vec());
        assert_eq!(parsed.as_ref(), Ok(expected), "{input:?}");
    }
}

#[test]
fn email_domains_reject_bad_items() {
    for input in [
        "",
        " ",
        "a.com,",
        "a.com,,b.com",
        "user@example.com",
        "@example.com",
        "exa mple.com",
        "example.com\tother.com",
        ".",
        "..example.com",
        "example..com",
        "example.com.",
    ] {
        assert!(parse_email_domains(input).is_err(), "{input:?} should fail");
    }
}

#[test]
fn email_domains_match_on_label_boundaries() {
    let allowed = parse_email_domains("example.com, .corp.example").expect("fixture parses");
    let cases = [
        ("example.com", true),
        ("EXAMPLE.com", true),
        ("mail.example.com", false),
        ("evilexample.com", false),
        ("corp.example", true),
        ("eu.corp.example", true),
        ("a.b.CORP.example", true),
        ("evilcorp.example", false),
        ("corp.example.evil", false),
        ("example", false),
    ];
    for (domain, expected) in cases {
        assert_eq!(allowed.allows(domain), expected, "{domain:?}");
    }
}

// ---- RouteRules::from_query ----

#[test]
fn route_rules_parse() {
    let cases: &[(&str, RouteRules)] = &[
        ("", RouteRules::default()),
        ("&", RouteRules::default()),
        (
            "require_group=%5ERT_,ops",
            RouteRules {
                require_group: terms("^RT_,ops"),
                ..RouteRules::default()
            },
        ),
        (
            "require_group=Customer+Support%2C%20Sales",
            RouteRules {
                require_group: Some(vec![
                    GroupTerm::Exact("Customer Support".into()),
                    GroupTerm::Exact("Sales".into()),
                ]),
                ..RouteRules::default()
            },
        ),
        (
            "allowed_users=alice,+bob&allowed_email_domains=.Example.com&require_group=GroupMap",
            RouteRules {
                require_group: Some(vec![GroupTerm::AnyMapped]),
                allowed_email_domains: domains(".example.com"),
                allowed_users: Some(names(&["alice", "bob"])),
                providers: None,
            },
        ),
        (
            "%61llowed_users=caf%C3%A9",
            RouteRules {
                allowed_users: Some(names(&["café"])),
                ..RouteRules::default()
            },
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(
            RouteRules::from_query(query).as_ref(),
            Ok(expected),
            "{query:?}"
        );
        assert_eq!(route(query).is_empty(), *expected == RouteRules::default());
    }
}

#[test]
fn route_rules_reject_anything_not_understood() {
    use RouteRuleError::*;
    let unknown = |key: &str| UnknownKey { key: key.into() };
    let repeated = |key: &str| RepeatedKey { key: key.into() };
    let cases = [
        ("require_groups=staff", Some(unknown("require_groups"))),
        ("Require_Group=staff", Some(unknown("Require_Group"))),
        ("page=2", Some(unknown("page"))),
        ("require_group", None),
        ("require_group=", None),
        ("require_group=^", None),
        ("require_group=%5E", None),
        ("require_group=,", None),
        ("allowed_users=", None),
        ("allowed_users=,,", None),
        ("allowed_email_domains=", None),
        ("allowed_email_domains=a@example.com", None),
        (
            "require_group=a&require_group=b",
            Some(repeated("require_group")),
        ),
        (
            "allowed_users=a&allowed_users=a",
            Some(repeated("allowed_users")),
        ),
        (
            "allowed_email_domains=a.com&allowed_email_domains=b.com",
            Some(repeated("allowed_email_domains")),
        ),
        ("require_group=a%2", None),
        ("require_group=a%zz", None),
        ("require_group=%FF", None),
        ("require_group%=a", None),
    ];
    for (query, expected) in cases {
        let result = RouteRules::from_query(query);
        assert!(result.is_err(), "{query:?} parsed as {result:?}");
        if let (Some(expected), Err(error)) = (expected, &result) {
            assert_eq!(*error, expected, "{query:?}");
        }
    }
}

#[test]
fn route_rule_errors_name_the_key() {
    let cases = [
        ("require_group=^", "require_group"),
        ("allowed_users=", "allowed_users"),
        ("allowed_email_domains=a b", "allowed_email_domains"),
        ("bogus=1", "bogus"),
        ("allowed_users=a&allowed_users=b", "allowed_users"),
        ("require_group=%G0", "require_group"),
    ];
    for (query, key) in cases {
        match RouteRules::from_query(query) {
            Ok(rules) => panic!("{query:?} parsed as {rules:?}"),
            Err(error) => assert!(error.to_string().contains(key), "{query:?}: {error}"),
        }
    }
}

// ---- decide: global rules ----

#[test]
fn decide_global_group_rules() {
    let staff_only = global(|g| g.require_group = terms("staff"));
    let staff_only_groupless_ok = global(|g| {
        g.require_group = terms("staff");
        g.allow_login_without_groups = true;
    });
    let rt_prefix = global(|g| g.require_group = terms("^RT_"));
    let rt_exact = global(|g| g.require_group = terms("RT_"));
    let any_mapped = global(|g| {
        g.require_group = terms("GroupMap");
        g.group_map = group_map(MAP_JSON);
    });
    let with_defaults = global(|g| {
        g.require_group = terms("staff");
        g.default_groups = names(&["staff"]);
    });
    let with_defaults_groupless_ok = global(|g| {
        g.require_group = terms("staff");
        g.default_groups = names(&["staff", "guests"]);
        g.allow_login_without_groups = true;
    });
    check(vec![
        Case {
            name: "no rules: anyone gets in",
            global: GlobalRules::default(),
            query: "",
            who: alice(&["x"]),
            expected: allow(&["x"]),
        },
        Case {
            name: "no rules: groupless user gets in",
            global: GlobalRules::default(),
            query: "",
            who: alice(&[]),
            expected: allow(&[]),
        },
        Case {
            name: "exact group present",
            global: staff_only.clone(),
            query: "",
            who: alice(&["other", "staff"]),
            expected: allow(&["other", "staff"]),
        },
        Case {
            name: "exact group is case-sensitive",
            global: staff_only.clone(),
            query: "",
            who: alice(&["Staff"]),
            expected: deny(DenyReason::NotInRequiredGroup),
        },
        Case {
            name: "exact group is not a prefix match",
            global: staff_only.clone(),
            query: "",
            who: alice(&["staff-ops"]),
            expected: deny(DenyReason::NotInRequiredGroup),
        },
        Case {
            name: "no groups without allow_login_without_groups",
            global: staff_only.clone(),
            query: "",
            who: alice(&[]),
            expected: deny(DenyReason::NoGroups),
        },
        Case {
            name: "no groups with allow_login_without_groups",
            global: staff_only_groupless_ok.clone(),
            query: "",
            who: alice(&[]),
            expected: allow(&[]),
        },
        Case {
            name: "allow_login_without_groups does not help users with other groups",
            global: staff_only_groupless_ok,
            query: "",
            who: alice(&["other"]),
            expected: deny(DenyReason::NotInRequiredGroup),
        },
        Case {
            name: "prefix matches",
            global: rt_prefix.clone(),
            query: "",
            who: alice(&["RT_users"]),
            expected: allow(&["RT_users"]),
        },
        Case {
            name: "prefix matches the bare prefix",
            global: rt_prefix.clone(),
            query: "",
            who: alice(&["RT_"]),
            expected: allow(&["RT_"]),
        },
        Case {
            name: "prefix does not match elsewhere in the name",
            global: rt_prefix,
            query: "",
            who: alice(&["xRT_users"]),
            expected: deny(DenyReason::NotInRequiredGroup),
        },
        Case {
            name: "without ^ the text is an exact name",
            global: rt_exact,
            query: "",
            who: alice(&["RT_users"]),
            expected: deny(DenyReason::NotInRequiredGroup),
        },
        Case {
            name: "GroupMap keyword matches a mapped group",
            global: any_mapped.clone(),
            query: "",
            who: alice(&["unmapped", "/inventree/admins"]),
            expected: allow(&["unmapped", "admin"]),
        },
        Case {
            name: "GroupMap keyword needs a mapped group",
            global: any_mapped,
            query: "",
            who: alice(&["unmapped"]),
            expected: deny(DenyReason::NotInRequiredGroup),
        },
        Case {
            name: "default_groups do not satisfy require_group",
            global: with_defaults,
            query: "",
            who: alice(&[]),
            expected: deny(DenyReason::NoGroups),
        },
        Case {
            name: "default_groups appear in headers for groupless users",
            global: with_defaults_groupless_ok,
            query: "",
            who: alice(&[]),
            expected: allow(&["staff", "guests"]),
        },
    ]);
}

#[test]
fn decide_global_email_rules() {
    let example_only = global(|g| g.allowed_email_domains = domains("example.com"));
    let example_and_subdomains = global(|g| g.allowed_email_domains = domains(".example.com"));
    let open = GlobalRules::default();
    let who = |email| with_email(alice(&["g"]), email, true);
    let cases: Vec<(&str, &GlobalRules, User, Decision<'static>)> = vec![
        (
            "allowed domain",
            &example_only,
            who(Some("alice@example.com")),
            allow(&["g"]),
        ),
        (
            "domain is case-insensitive",
            &example_only,
            who(Some("Alice@EXAMPLE.Com")),
            allow(&["g"]),
        ),
        (
            "other domain",
            &example_only,
            who(Some("alice@example.org")),
            deny(DenyReason::EmailDomainNotAllowed),
        ),
        (
            "exact pattern excludes subdomains",
            &example_only,
            who(Some("alice@mail.example.com")),
            deny(DenyReason::EmailDomainNotAllowed),
        ),
        (
            "dot pattern allows the domain itself",
            &example_and_subdomains,
            who(Some("alice@example.com")),
            allow(&["g"]),
        ),
        (
            "dot pattern allows subdomains",
            &example_and_subdomains,
            who(Some("alice@mail.example.com")),
            allow(&["g"]),
        ),
        (
            "dot pattern needs a dot boundary",
            &example_and_subdomains,
            who(Some("alice@evilexample.com")),
            deny(DenyReason::EmailDomainNotAllowed),
        ),
        (
            "suffix trick",
            &example_only,
            who(Some("alice@example.com.evil.org")),
            deny(DenyReason::EmailDomainNotAllowed),
        ),
        (
            "missing email",
            &example_only,
            who(None),
            deny(DenyReason::MissingEmail),
        ),
        (
            "two @",
            &example_only,
            who(Some("alice@evil.org@example.com")),
            deny(DenyReason::EmailMalformed),
        ),
        (
            "no @",
            &example_only,
            who(Some("alice.example.com")),
            deny(DenyReason::EmailMalformed),
        ),
        (
            "empty local part",
            &example_only,
            who(Some("@example.com")),
            deny(DenyReason::EmailMalformed),
        ),
        (
            "empty domain",
            &example_only,
            who(Some("alice@")),
            deny(DenyReason::EmailMalformed),
        ),
        (
            "empty email",
            &example_only,
            who(Some("")),
            deny(DenyReason::EmailMalformed),
        ),
        (
            "leading dot in domain",
            &example_and_subdomains,
            who(Some("alice@.example.com")),
            deny(DenyReason::EmailMalformed),
        ),
        (
            "newline in email",
            &example_only,
            who(Some("alice\n@example.com")),
            deny(DenyReason::EmailMalformed),
        ),
        (
            "unverified email",
            &example_only,
            with_email(alice(&["g"]), Some("alice@example.com"), false),
            deny(DenyReason::EmailNotVerified),
        ),
        (
            "unverified email is irrelevant without a domain rule",
            &open,
            with_email(alice(&["g"]), Some("alice@example.com"), false),
            allow(&["g"]),
        ),
        (
            "missing email is irrelevant without a domain rule",
            &open,
            who(None),
            allow(&["g"]),
        ),
    ];
    for (name, rules, who, expected) in cases {
        let decision = decide(rules, &RouteRules::default(), &who.identity());
        assert_eq!(decision, expected, "case: {name}");
    }
}

#[test]
fn decide_checks_group_rule_before_email_rule() {
    let rules = global(|g| {
        g.require_group = terms("staff");
        g.allowed_email_domains = domains("example.com");
    });
    let who = with_email(alice(&["other"]), Some("alice@example.org"), false);
    assert_eq!(
        decide(&rules, &RouteRules::default(), &who.identity()),
        deny(DenyReason::NotInRequiredGroup)
    );
}

// ---- decide: route rules ----

#[test]
fn decide_route_rules() {
    let open = GlobalRules::default();
    let groupless_ok = global(|g| {
        g.require_group = terms("staff");
        g.allow_login_without_groups = true;
    });
    let mapped = global(|g| g.group_map = group_map(MAP_JSON));
    check(vec![
        Case {
            name: "route group present",
            global: open.clone(),
            query: "require_group=ops",
            who: alice(&["ops"]),
            expected: allow(&["ops"]),
        },
        Case {
            name: "route group missing",
            global: open.clone(),
            query: "require_group=ops",
            who: alice(&["staff"]),
            expected: deny(DenyReason::RouteGroupNotMatched),
        },
        Case {
            name: "route prefix",
            global: open.clone(),
            query: "require_group=%5ERT_",
            who: alice(&["RT_x"]),
            expected: allow(&["RT_x"]),
        },
        Case {
            name: "route GroupMap refers to the global map",
            global: mapped.clone(),
            query: "require_group=GroupMap",
            who: alice(&["ACME Engineering"]),
            expected: allow(&["Customer Support", "Engineering"]),
        },
        Case {
            name: "route GroupMap with an unmapped group",
            global: mapped,
            query: "require_group=GroupMap",
            who: alice(&["Customer Support"]),
            expected: deny(DenyReason::RouteGroupNotMatched),
        },
        Case {
            name: "route group with the global rule also required",
            global: global(|g| g.require_group = terms("staff")),
            query: "require_group=ops",
            who: alice(&["ops"]),
            expected: deny(DenyReason::NotInRequiredGroup),
        },
        Case {
            name: "both group rules satisfied",
            global: global(|g| g.require_group = terms("staff")),
            query: "require_group=ops",
            who: alice(&["staff", "ops"]),
            expected: allow(&["staff", "ops"]),
        },
        Case {
            name: "allow_login_without_groups does not apply to route rules",
            global: groupless_ok.clone(),
            query: "require_group=ops",
            who: alice(&[]),
            expected: deny(DenyReason::RouteGroupNotMatched),
        },
        Case {
            name: "groupless user still passes when the route has no group rule",
            global: groupless_ok,
            query: "allowed_users=alice",
            who: alice(&[]),
            expected: allow(&[]),
        },
        Case {
            name: "default_groups do not satisfy a route group rule",
            global: global(|g| g.default_groups = names(&["ops"])),
            query: "require_group=ops",
            who: alice(&[]),
            expected: deny(DenyReason::RouteGroupNotMatched),
        },
        Case {
            name: "route email domain allowed",
            global: open.clone(),
            query: "allowed_email_domains=example.com",
            who: alice(&[]),
            expected: allow(&[]),
        },
        Case {
            name: "route email domain not allowed",
            global: open.clone(),
            query: "allowed_email_domains=example.org",
            who: alice(&[]),
            expected: deny(DenyReason::RouteEmailDomainNotAllowed),
        },
        Case {
            name: "route email domain narrows the global one",
            global: global(|g| g.allowed_email_domains = domains(".example.com")),
            query: "allowed_email_domains=eu.example.com",
            who: user("bob", "bob@us.example.com", &[]),
            expected: deny(DenyReason::RouteEmailDomainNotAllowed),
        },
        Case {
            name: "route email rule needs an email",
            global: open.clone(),
            query: "allowed_email_domains=example.com",
            who: with_email(alice(&[]), None, true),
            expected: deny(DenyReason::MissingEmail),
        },
        Case {
            name: "route email rule needs a verified email",
            global: open.clone(),
            query: "allowed_email_domains=example.com",
            who: with_email(alice(&[]), Some("alice@example.com"), false),
            expected: deny(DenyReason::EmailNotVerified),
        },
        Case {
            name: "route email rule needs a well-formed email",
            global: open.clone(),
            query: "allowed_email_domains=example.com",
            who: with_email(alice(&[]), Some("alice@x@example.com"), true),
            expected: deny(DenyReason::EmailMalformed),
        },
        Case {
            name: "route user listed",
            global: open.clone(),
            query: "allowed_users=bob,alice",
            who: alice(&[]),
            expected: allow(&[]),
        },
        Case {
            name: "route user not listed",
            global: open.clone(),
            query: "allowed_users=bob",
            who: alice(&[]),
            expected: deny(DenyReason::RouteUserNotAllowed),
        },
        Case {
            name: "route user names are exact",
            global: open,
            query: "allowed_users=Alice",
            who: alice(&[]),
            expected: deny(DenyReason::RouteUserNotAllowed),
        },
    ]);
}

#[test]
fn route_rules_never_let_in_someone_the_global_rules_deny() {
    let group_rule = global(|g| g.require_group = terms("staff"));
    let domain_rule = global(|g| g.allowed_email_domains = domains("example.com"));
    let mallory = user("mallory", "mallory@evil.org", &["visitors"]);
    let groupless_mallory = user("mallory", "mallory@evil.org", &[]);
    let unverified = with_email(alice(&["staff"]), Some("alice@example.com"), false);

    let visitor_queries = [
        "",
        "require_group=",
        "require_group=^",
        "require_group=%5E",
        "require_group=visitors",
        "require_group=%5Evis",
        "require_group=GroupMap",
        "allowed_users=mallory",
        "allowed_users=alice",
        "allowed_email_domains=evil.org",
        "allowed_email_domains=.org",
        "allowed_email_domains=example.com",
        "require_group=visitors&allowed_users=mallory&allowed_email_domains=evil.org",
        "require_group=staff&require_group=visitors",
        "allow_login_without_groups=true",
        "admins=mallory",
    ];
    let denied: [(&str, &GlobalRules, &User); 4] = [
        ("not in the required group", &group_rule, &mallory),
        ("groupless", &group_rule, &groupless_mallory),
        ("wrong email domain", &domain_rule, &mallory),
        ("unverified email", &domain_rule, &unverified),
    ];
    for (situation, rules, who) in denied {
        let baseline = decide(rules, &RouteRules::default(), &who.identity());
        assert!(
            matches!(baseline, Decision::Deny(_)),
            "{situation}: fixture should be denied"
        );
        for query in visitor_queries {
            // A query that does not parse is refused before any decision is made.
            if let Ok(route) = RouteRules::from_query(query) {
                let decision = decide(rules, &route, &who.identity());
                assert!(
                    matches!(decision, Decision::Deny(_)),
                    "{situation}: query {query:?} let the user in: {decision:?}"
                );
            }
        }
    }
}

// ---- decide: admins ----

#[test]
fn admins_bypass_every_rule() {
    let strict = global(|g| {
        g.admins = names(&["root"]);
        g.require_group = terms("staff");
        g.allowed_email_domains = domains("example.com");
        g.group_map = group_map(MAP_JSON);
        g.group_map_strict = true;
        g.default_groups = names(&["guests"]);
    });
    let root = |email: Option<&'static str>, verified: bool, groups: &[&'static str]| User {
        username: "root",
        email,
        email_verified: verified,
        groups: groups.to_vec(),
    };
    let cases: Vec<(&str, &str, User, Decision<'static>)> = vec![
        (
            "global group rule",
            "",
            root(Some("root@example.com"), true, &["other"]),
            allow(&[]),
        ),
        (
            "no groups at all",
            "",
            root(Some("root@example.com"), true, &[]),
            allow(&["guests"]),
        ),
        (
            "email domain",
            "",
            root(Some("root@evil.org"), true, &["ACME Engineering"]),
            allow(&["Customer Support", "Engineering"]),
        ),
        (
            "missing email",
            "",
            root(None, true, &[]),
            allow(&["guests"]),
        ),
        (
            "malformed email",
            "",
            root(Some("root@@x"), true, &[]),
            allow(&["guests"]),
        ),
        (
            "unverified email",
            "",
            root(Some("root@example.com"), false, &[]),
            allow(&["guests"]),
        ),
        (
            "route group rule",
            "require_group=ops",
            root(Some("root@example.com"), true, &["staff"]),
            allow(&[]),
        ),
        (
            "route email domain rule",
            "allowed_email_domains=example.org",
            root(Some("root@example.com"), true, &["staff"]),
            allow(&[]),
        ),
        (
            "route user rule",
            "allowed_users=alice",
            root(Some("root@example.com"), true, &["/inventree/admins"]),
            allow(&["admin"]),
        ),
    ];
    for (rule, query, who, expected) in cases {
        let decision = decide(&strict, &route(query), &who.identity());
        assert_eq!(decision, expected, "admin bypassing {rule}");
    }
}

#[test]
fn admin_match_is_exact_and_never_empty() {
    let rules = global(|g| {
        g.admins = names(&["root", ""]);
        g.require_group = terms("staff");
    });
    for username in ["Root", "root ", "", "roo"] {
        let who = user(username, "x@example.com", &["other"]);
        assert_eq!(
            decide(&rules, &RouteRules::default(), &who.identity()),
            deny(DenyReason::NotInRequiredGroup),
            "{username:?}"
        );
    }
}

// ---- upstream_groups ----

#[test]
fn upstream_groups_map_keep_drop_and_dedup() {
    let mapping = r#"{"ACME Engineering": ["Customer Support", "Engineering"], "/inventree/admins": "admin", "eng": ["Engineering"], "hidden": []}"#;
    let lenient = global(|g| {
        g.group_map = group_map(mapping);
        g.default_groups = names(&["guests", "guests", "viewers"]);
    });
    let strict = global(|g| {
        g.group_map = group_map(mapping);
        g.group_map_strict = true;
        g.default_groups = names(&["guests"]);
    });
    let cases: &[(&str, &GlobalRules, &[&str], &[&str])] = &[
        ("no map entries", &lenient, &["a", "b"], &["a", "b"]),
        (
            "mapped to many",
            &lenient,
            &["ACME Engineering"],
            &["Customer Support", "Engineering"],
        ),
        (
            "mapped to one",
            &lenient,
            &["/inventree/admins"],
            &["admin"],
        ),
        (
            "unmapped kept in place",
            &lenient,
            &["x", "/inventree/admins", "y"],
            &["x", "admin", "y"],
        ),
        (
            "strict drops unmapped",
            &strict,
            &["x", "/inventree/admins", "y"],
            &["admin"],
        ),
        ("strict with nothing mapped", &strict, &["x", "y"], &[]),
        ("mapped to nothing", &lenient, &["hidden", "x"], &["x"]),
        (
            "dedup keeps first-seen order",
            &lenient,
            &["eng", "ACME Engineering", "Customer Support", "eng"],
            &["Engineering", "Customer Support"],
        ),
        (
            "unmapped name equal to a target deduplicated",
            &lenient,
            &["admin", "/inventree/admins"],
            &["admin"],
        ),
        (
            "duplicate IdP groups",
            &lenient,
            &["a", "a", "b", "a"],
            &["a", "b"],
        ),
        (
            "defaults when no groups",
            &lenient,
            &[],
            &["guests", "viewers"],
        ),
        ("defaults when no groups, strict", &strict, &[], &["guests"]),
        ("no defaults configured", &GlobalRules::default(), &[], &[]),
    ];
    for (name, rules, idp_groups, expected) in cases {
        assert_eq!(
            upstream_groups(rules, idp_groups),
            expected.to_vec(),
            "case: {name}"
        );
    }
}

// ---- DenyReason ----

#[test]
fn deny_reasons_have_distinct_names_and_sentences() {
    let all = [
        DenyReason::NotInRequiredGroup,
        DenyReason::NoGroups,
        DenyReason::EmailDomainNotAllowed,
        DenyReason::EmailNotVerified,
        DenyReason::EmailMalformed,
        DenyReason::MissingEmail,
        DenyReason::RouteGroupNotMatched,
        DenyReason::RouteEmailDomainNotAllowed,
        DenyReason::RouteUserNotAllowed,
    ];
    let rule_names: HashSet<&str> = all.iter().map(DenyReason::as_str).collect();
    let sentences: HashSet<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(rule_names.len(), all.len());
    assert_eq!(sentences.len(), all.len());
    for reason in all {
        let name = reason.as_str();
        assert!(
            name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{name}"
        );
        assert!(reason.to_string().ends_with('.'), "{reason:?}");
    }
    assert_eq!(DenyReason::NoGroups.as_str(), "no_groups");
    assert_eq!(
        DenyReason::RouteUserNotAllowed.as_str(),
        "route_user_not_allowed"
    );
}
