//! Who gets in, and which groups the upstream application is told about.
//!
//! Global rules come from the operator's environment and are trusted. Route rules come
//! from the query string of the auth URL, which a visitor may be able to write (Caddy
//! copies the page's query into it), so route rules can only narrow access: every one
//! is checked in addition to the global rules and none of them can relax a global rule.

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::url_text::decode_hex_pair;

/// The keyword that stands for "any IdP group that is a key of the group map".
const ANY_MAPPED_KEYWORD: &str = "GroupMap";

/// One alternative in a `require_group` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupTerm {
    /// The IdP group must equal this name (case-sensitive).
    Exact(String),
    /// The IdP group must start with this text; written `^text`.
    Prefix(String),
    /// The IdP group must be a key of the global group map; written `GroupMap`.
    AnyMapped,
}

impl GroupTerm {
    fn matches(&self, idp_group: &str, group_map: &GroupMap) -> bool {
        match self {
            GroupTerm::Exact(name) => idp_group == name,
            GroupTerm::Prefix(prefix) => idp_group.starts_with(prefix.as_str()),
            GroupTerm::AnyMapped => group_map.contains(idp_group),
        }
    }
}

/// Parses a comma-separated `require_group` list such as `admins, ^RT_, GroupMap`.
/// Items are trimmed and empty items skipped, but the list as a whole must name
/// something, and a bare `^` is refused because an empty prefix would match every group.
pub fn parse_group_terms(s: &str) -> Result<Vec<GroupTerm>, String> {
    let terms = s
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(parse_group_term)
        .collect::<Result<Vec<_>, _>>()?;
    if terms.is_empty() {
        return Err(
            "the group list is empty; name at least one group, `^prefix` or `GroupMap`".into(),
        );
    }
    Ok(terms)
}

fn parse_group_term(item: &str) -> Result<GroupTerm, String> {
    if item == ANY_MAPPED_KEYWORD {
        return Ok(GroupTerm::AnyMapped);
    }
    match item.strip_prefix('^') {
        Some("") => Err(
            "`^` must be followed by a group name prefix (an empty prefix would match every group)"
                .into(),
        ),
        Some(prefix) => Ok(GroupTerm::Prefix(prefix.to_owned())),
        None => Ok(GroupTerm::Exact(item.to_owned())),
    }
}

/// Translation from IdP group names to the group names the upstream application uses.
///
/// Entries keep the order of the JSON document. Nothing depends on that order today
/// (the order of upstream groups follows the user's IdP groups), but it makes the map
/// print the way the operator wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMap {
    entries: Vec<(String, Vec<String>)>,
}

impl GroupMap {
    /// The app groups an IdP group maps to, or None when it is not a key.
    pub fn targets(&self, idp_group: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(key, _)| key == idp_group)
            .map(|(_, targets)| targets.as_slice())
    }

    pub fn contains(&self, idp_group: &str) -> bool {
        self.targets(idp_group).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries in the order the JSON document listed them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries
            .iter()
            .map(|(key, targets)| (key.as_str(), targets.as_slice()))
    }
}

/// Parses a group map such as
/// `{"ACME Engineering": ["Customer Support", "Engineering"], "/inventree/admins": "admin"}`.
///
/// Each value is one app group name or a list of them; an empty list is allowed and
/// means "recognised, but forward nothing". Empty names and repeated keys are errors
/// because they are almost certainly mistakes. An empty or blank string is an empty map.
pub fn parse_group_map(json: &str) -> Result<GroupMap, String> {
    if json.trim().is_empty() {
        return Ok(GroupMap::default());
    }
    let DocumentOrderEntries(raw_entries) = serde_json::from_str(json)
        .map_err(|error| format!("the group map is not a valid JSON object: {error}"))?;
    let mut entries: Vec<(String, Vec<String>)> = Vec::with_capacity(raw_entries.len());
    for (idp_group, value) in raw_entries {
        if idp_group.is_empty() {
            return Err("the group map has an entry with an empty IdP group name".into());
        }
        if entries.iter().any(|(key, _)| *key == idp_group) {
            return Err(format!("the group map lists {idp_group:?} more than once"));
        }
        let targets = parse_map_targets(&value)
            .map_err(|why| format!("group map entry {idp_group:?}: {why}"))?;
        entries.push((idp_group, targets));
    }
    Ok(GroupMap { entries })
}

fn parse_map_targets(value: &Value) -> Result<Vec<String>, String> {
    const SHAPE: &str = "the value must be a group name or a list of group names";
    let names: Vec<&str> = match value {
        Value::String(name) => vec![name.as_str()],
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().ok_or(SHAPE))
            .collect::<Result<_, _>>()?,
        _ => return Err(SHAPE.into()),
    };
    if names.iter().any(|name| name.is_empty()) {
        return Err("app group names must not be empty".into());
    }
    Ok(names.into_iter().map(str::to_owned).collect())
}

/// A JSON object's entries in document order. serde_json's own map sorts keys unless
/// its `preserve_order` feature happens to be enabled somewhere in the dependency
/// graph, so the entries are collected directly from the parser instead.
struct DocumentOrderEntries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for DocumentOrderEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DocumentOrderEntriesVisitor)
    }
}

struct DocumentOrderEntriesVisitor;

impl<'de> Visitor<'de> for DocumentOrderEntriesVisitor {
    type Value = DocumentOrderEntries;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an object mapping IdP group names to app group names")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Value>()? {
            entries.push(entry);
        }
        Ok(DocumentOrderEntries(entries))
    }
}

/// One allowed email domain, stored in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainPattern {
    /// `example.com`: exactly this domain.
    Exact(String),
    /// `.example.com`: this domain and any subdomain of it.
    WithSubdomains(String),
}

impl DomainPattern {
    /// `domain` must already be lower case.
    fn matches(&self, domain: &str) -> bool {
        match self {
            DomainPattern::Exact(allowed) => domain == allowed,
            // The subdomain must end on a label boundary, or `evilexample.com` would
            // pass for `.example.com`.
            DomainPattern::WithSubdomains(allowed) => {
                domain == allowed
                    || domain
                        .strip_suffix(allowed.as_str())
                        .is_some_and(|subdomain| subdomain.ends_with('.'))
            }
        }
    }
}

/// The email domains allowed to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailDomains(Vec<DomainPattern>);

impl EmailDomains {
    pub fn patterns(&self) -> &[DomainPattern] {
        &self.0
    }

    /// Whether the domain part of an email address is allowed (case-insensitive).
    pub fn allows(&self, domain: &str) -> bool {
        let domain = domain.to_lowercase();
        self.0.iter().any(|pattern| pattern.matches(&domain))
    }
}

/// Parses a comma-separated domain list such as `example.com, .example.org`. Unlike
/// group lists, an empty item is an error: a stray comma in a rule that restricts
/// access is more likely a mistake than intent.
pub fn parse_email_domains(s: &str) -> Result<EmailDomains, String> {
    s.split(',')
        .map(str::trim)
        .map(parse_domain_pattern)
        .collect::<Result<Vec<_>, _>>()
        .map(EmailDomains)
}

fn parse_domain_pattern(item: &str) -> Result<DomainPattern, String> {
    if item.is_empty() {
        return Err("the email domain list has an empty item".into());
    }
    if item.contains('@') {
        return Err(format!(
            "{item:?} is an email address, not a domain; write only the part after `@`"
        ));
    }
    if item.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("email domain {item:?} contains spaces"));
    }
    let lower = item.to_lowercase();
    let (domain, pattern): (&str, fn(String) -> DomainPattern) = match lower.strip_prefix('.') {
        Some(domain) => (domain, DomainPattern::WithSubdomains),
        None => (&lower, DomainPattern::Exact),
    };
    if domain.split('.').any(str::is_empty) {
        return Err(format!("email domain {item:?} has an empty label"));
    }
    Ok(pattern(domain.to_owned()))
}

/// Rules from the operator's configuration. The default restricts nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalRules {
    pub require_group: Option<Vec<GroupTerm>>,
    pub allow_login_without_groups: bool,
    pub admins: Vec<String>,
    pub group_map: GroupMap,
    pub group_map_strict: bool,
    pub default_groups: Vec<String>,
    pub allowed_email_domains: Option<EmailDomains>,
    /// Several providers (`OIDC_PROVIDERS`): a user in `ADMINS` and `allowed_users` is written
    /// `provider:user` and only that form matches, since a `sub` is unique only within one
    /// issuer.
    pub qualified_users: bool,
}

/// Extra rules for one route, taken from the auth URL's query string. They are checked
/// in addition to the global rules and can never relax them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteRules {
    pub require_group: Option<Vec<GroupTerm>>,
    pub allowed_email_domains: Option<EmailDomains>,
    pub allowed_users: Option<Vec<String>>,
    /// `provider=`: only sessions from these providers pass, and browsers sign in there.
    pub providers: Option<Vec<String>>,
}

/// Why the auth URL's query string could not be read as route rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteRuleError {
    #[error("unknown route rule {key:?}; the known rules are require_group, allowed_email_domains, allowed_users and provider")]
    UnknownKey { key: String },
    #[error("route rule {key:?} is given more than once")]
    RepeatedKey { key: String },
    #[error("route rule {key:?}: {reason}")]
    InvalidValue { key: String, reason: String },
    #[error("the route rule query is not valid form encoding: {reason}")]
    MalformedQuery { reason: String },
}

impl RouteRules {
    /// Reads route rules from a query string (without the leading `?`) in
    /// `application/x-www-form-urlencoded` form, e.g. `require_group=%5ERT_&allowed_users=alice,bob`.
    ///
    /// Anything not understood is an error rather than ignored, because a misspelt rule
    /// that was silently dropped would leave the route more open than intended.
    pub fn from_query(query: &str) -> Result<RouteRules, RouteRuleError> {
        let mut rules = RouteRules::default();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key =
                form_decode(raw_key).map_err(|reason| RouteRuleError::MalformedQuery { reason })?;
            let value = form_decode(raw_value).map_err(|reason| RouteRuleError::InvalidValue {
                key: key.clone(),
                reason,
            })?;
            rules.set(&key, &value)?;
        }
        Ok(rules)
    }

    pub fn is_empty(&self) -> bool {
        self.require_group.is_none()
            && self.allowed_email_domains.is_none()
            && self.allowed_users.is_none()
            && self.providers.is_none()
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), RouteRuleError> {
        match key {
            "require_group" => fill_once(&mut self.require_group, key, parse_group_terms(value)),
            "allowed_email_domains" => fill_once(
                &mut self.allowed_email_domains,
                key,
                parse_email_domains(value),
            ),
            "allowed_users" => fill_once(&mut self.allowed_users, key, parse_user_list(value)),
            "provider" => fill_once(&mut self.providers, key, parse_provider_list(value)),
            _ => Err(RouteRuleError::UnknownKey {
                key: key.to_owned(),
            }),
        }
    }
}

fn fill_once<T>(
    slot: &mut Option<T>,
    key: &str,
    parsed: Result<T, String>,
) -> Result<(), RouteRuleError> {
    if slot.is_some() {
        return Err(RouteRuleError::RepeatedKey {
            key: key.to_owned(),
        });
    }
    let value = parsed.map_err(|reason| RouteRuleError::InvalidValue {
        key: key.to_owned(),
        reason,
    })?;
    *slot = Some(value);
    Ok(())
}

/// A comma-separated list of usernames; items are trimmed and empty items skipped, but
/// the list must name someone.
fn parse_user_list(s: &str) -> Result<Vec<String>, String> {
    let users: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|user| !user.is_empty())
        .map(str::to_owned)
        .collect();
    if users.is_empty() {
        return Err("the user list is empty".into());
    }
    Ok(users)
}

/// `provider=keycloak,google`: names as `OIDC_PROVIDERS` writes them (whether they are
/// configured is the caller's to check).
fn parse_provider_list(s: &str) -> Result<Vec<String>, String> {
    let names = parse_user_list(s).map_err(|_| "the provider list is empty".to_string())?;
    match names.iter().find(|n| {
        !n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }) {
        Some(bad) => Err(format!("{bad:?} is not a provider name")),
        None => Ok(names),
    }
}

/// `entry` as `provider:user` with a provider of `names`: the provider and the user. `None`
/// for a bare entry (or one whose prefix names no configured provider).
pub fn qualified_user<'e>(entry: &'e str, names: &[&str]) -> Option<(&'e str, &'e str)> {
    let (provider, user) = entry.split_once(':')?;
    (names.contains(&provider) && !user.is_empty()).then_some((provider, user))
}

/// Whether a user entry (of `ADMINS` or `allowed_users`) names `who`. With several providers
/// only `provider:user` does; with one, the bare user does too.
fn names_user(entry: &str, who: &Identity, qualified_only: bool) -> bool {
    if who.username.is_empty() {
        return false;
    }
    let qualified = who.provider.is_some_and(|provider| {
        entry
            .split_once(':')
            .is_some_and(|(p, user)| p == provider && user == who.username)
    });
    qualified || (!qualified_only && entry == who.username)
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space and `%XX`
/// a byte. Malformed escapes and non-UTF-8 results are errors rather than passed
/// through, so that an odd-looking rule is refused instead of half-understood.
fn form_decode(raw: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let (digits, after_escape) = rest
                    .split_at_checked(2)
                    .ok_or_else(|| format!("{raw:?} ends in an incomplete percent escape"))?;
                let decoded = decode_hex_pair(digits)
                    .ok_or_else(|| format!("{raw:?} has an invalid percent escape"))?;
                bytes.push(decoded);
                rest = after_escape;
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).map_err(|_| format!("{raw:?} does not decode to UTF-8 text"))
}

/// The facts about a logged-in user that the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// The provider the user signed in with; `None` for the one unnamed provider.
    pub provider: Option<&'a str>,
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub idp_groups: &'a [&'a str],
}

/// The groups forward upstream borrow from the identity and the configuration, so an
/// allowed request copies no group name before writing the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'a> {
    Allow { upstream_groups: Vec<&'a str> },
    Deny(DenyReason),
}

/// The rule that turned a user away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    NotInRequiredGroup,
    NoGroups,
    EmailDomainNotAllowed,
    EmailNotVerified,
    EmailMalformed,
    MissingEmail,
    RouteGroupNotMatched,
    RouteEmailDomainNotAllowed,
    RouteUserNotAllowed,
    RouteProviderNotAllowed,
}

impl DenyReason {
    /// A stable snake_case name for log lines and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            DenyReason::NotInRequiredGroup => "not_in_required_group",
            DenyReason::NoGroups => "no_groups",
            DenyReason::EmailDomainNotAllowed => "email_domain_not_allowed",
            DenyReason::EmailNotVerified => "email_not_verified",
            DenyReason::EmailMalformed => "email_malformed",
            DenyReason::MissingEmail => "missing_email",
            DenyReason::RouteGroupNotMatched => "route_group_not_matched",
            DenyReason::RouteEmailDomainNotAllowed => "route_email_domain_not_allowed",
            DenyReason::RouteUserNotAllowed => "route_user_not_allowed",
            DenyReason::RouteProviderNotAllowed => "route_provider_not_allowed",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            DenyReason::NotInRequiredGroup => "The user is not in any of the required groups.",
            DenyReason::NoGroups => {
                "The identity provider reported no groups for the user, and logins without groups are not allowed."
            }
            DenyReason::EmailDomainNotAllowed => "The user's email domain is not allowed.",
            DenyReason::EmailNotVerified => "The user's email address has not been verified.",
            DenyReason::EmailMalformed => "The user's email address is malformed.",
            DenyReason::MissingEmail => {
                "The identity provider did not report an email address, which the email domain rule needs."
            }
            DenyReason::RouteGroupNotMatched => {
                "The user is not in any of the groups this route requires."
            }
            DenyReason::RouteEmailDomainNotAllowed => {
                "The user's email domain is not allowed on this route."
            }
            DenyReason::RouteUserNotAllowed => {
                "The user is not on this route's list of allowed users."
            }
            DenyReason::RouteProviderNotAllowed => {
                "This route only admits users of another identity provider."
            }
        })
    }
}

/// Decides whether `who` may pass. Admins skip every rule; everyone else must satisfy
/// all global rules and then all route rules. On success the decision carries the
/// groups to forward upstream.
pub fn decide<'a>(global: &'a GlobalRules, route: &RouteRules, who: &Identity<'a>) -> Decision<'a> {
    match verdict(global, route, who) {
        Ok(()) => Decision::Allow {
            upstream_groups: upstream_groups(global, who.idp_groups),
        },
        Err(reason) => Decision::Deny(reason),
    }
}

/// [`decide`] without the upstream groups: for a caller that already holds what they render
/// to (the auth check, per cached session), or computes them only when it needs them.
pub fn verdict(global: &GlobalRules, route: &RouteRules, who: &Identity) -> Result<(), DenyReason> {
    // Which IdP vouches for the user is not a rule an admin skips.
    if let Some(providers) = &route.providers {
        if !who
            .provider
            .is_some_and(|provider| providers.iter().any(|p| p == provider))
        {
            return Err(DenyReason::RouteProviderNotAllowed);
        }
    }
    if is_admin(global, who) {
        Ok(())
    } else {
        check_global(global, who).and_then(|()| check_route(global, route, who))
    }
}

/// An empty username never counts as an admin, so a missing username claim cannot
/// meet a stray empty entry in the admin list.
fn is_admin(global: &GlobalRules, who: &Identity) -> bool {
    global
        .admins
        .iter()
        .any(|admin| names_user(admin, who, global.qualified_users))
}

fn check_global(global: &GlobalRules, who: &Identity) -> Result<(), DenyReason> {
    if let Some(terms) = &global.require_group {
        if who.idp_groups.is_empty() {
            if !global.allow_login_without_groups {
                return Err(DenyReason::NoGroups);
            }
        } else if !any_group_matches(terms, &global.group_map, who.idp_groups) {
            return Err(DenyReason::NotInRequiredGroup);
        }
    }
    if let Some(domains) = &global.allowed_email_domains {
        check_email(domains, who, DenyReason::EmailDomainNotAllowed)?;
    }
    Ok(())
}

/// Route rules only ever add conditions; `allow_login_without_groups` deliberately does
/// not apply here, since it would let a groupless user through a route that names groups.
fn check_route(global: &GlobalRules, route: &RouteRules, who: &Identity) -> Result<(), DenyReason> {
    if let Some(terms) = &route.require_group {
        if !any_group_matches(terms, &global.group_map, who.idp_groups) {
            return Err(DenyReason::RouteGroupNotMatched);
        }
    }
    if let Some(domains) = &route.allowed_email_domains {
        check_email(domains, who, DenyReason::RouteEmailDomainNotAllowed)?;
    }
    if let Some(users) = &route.allowed_users {
        if !users
            .iter()
            .any(|user| names_user(user, who, global.qualified_users))
        {
            return Err(DenyReason::RouteUserNotAllowed);
        }
    }
    Ok(())
}

/// `default_groups` are deliberately not consulted: they only decorate headers and
/// must never satisfy a group requirement.
fn any_group_matches(terms: &[GroupTerm], group_map: &GroupMap, idp_groups: &[&str]) -> bool {
    idp_groups
        .iter()
        .any(|group| terms.iter().any(|term| term.matches(group, group_map)))
}

fn check_email(
    domains: &EmailDomains,
    who: &Identity,
    domain_mismatch: DenyReason,
) -> Result<(), DenyReason> {
    let email = who.email.ok_or(DenyReason::MissingEmail)?;
    let domain = email_domain(email).ok_or(DenyReason::EmailMalformed)?;
    if !who.email_verified {
        return Err(DenyReason::EmailNotVerified);
    }
    if !domains.allows(domain) {
        return Err(domain_mismatch);
    }
    Ok(())
}

/// The domain of an address with exactly one `@`, a non-empty local part and a domain
/// without empty labels. Anything odder is refused rather than guessed at, since the
/// domain decides access.
fn email_domain(email: &str) -> Option<&str> {
    let (local, domain) = email.split_once('@')?;
    let well_formed = !local.is_empty()
        && !domain.contains('@')
        && !domain.split('.').any(str::is_empty)
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    well_formed.then_some(domain)
}

/// The groups to forward upstream: each IdP group is replaced by its group map targets,
/// kept as is when unmapped, or dropped when unmapped and the map is strict. A user the
/// IdP gave no groups at all gets `default_groups` instead. Duplicates are removed,
/// keeping the first occurrence.
pub fn upstream_groups<'a>(global: &'a GlobalRules, idp_groups: &[&'a str]) -> Vec<&'a str> {
    let mut kept = FirstSeen::default();
    if idp_groups.is_empty() {
        global
            .default_groups
            .iter()
            .for_each(|name| kept.push(name));
        return kept.names;
    }
    for &group in idp_groups {
        match global.group_map.targets(group) {
            Some(targets) => targets.iter().for_each(|name| kept.push(name)),
            None if global.group_map_strict => {}
            None => kept.push(group),
        }
    }
    kept.names
}

/// Names without duplicates, in the order first seen.
#[derive(Default)]
struct FirstSeen<'a> {
    names: Vec<&'a str>,
    /// Filled only once there are many names: for the usual few, a scan beats hashing.
    index: HashSet<&'a str>,
}

const SCAN_UP_TO: usize = 16;

impl<'a> FirstSeen<'a> {
    fn push(&mut self, name: &'a str) {
        let new = if self.names.len() < SCAN_UP_TO {
            !self.names.contains(&name)
        } else {
            if self.index.is_empty() {
                self.index.extend(self.names.iter().copied());
            }
            self.index.insert(name)
        };
        if new {
            self.names.push(name);
        }
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
