//! Metrics in the Prometheus text format, served at `/metrics` on the admin listener.
//!
//! Every metric portcullis records is named and described here, with the fixed sets of label
//! values it takes: labels come from enums, never from a request or the IdP, so the number of
//! series is bounded whatever the traffic. The auth check is the hot path (about 15 µs of CPU):
//! its counters and histograms are looked up once, when [`Metrics`] is built, so a check costs
//! one atomic add and one histogram sample, with no allocation, hashing or formatting.
//!
//! The recorder is installed once per process ([`Metrics::global`]); the store and session cache
//! record their own metrics through the `metrics` macros into the same recorder, and this module
//! only describes them. Tests that count exactly build a [`Metrics::isolated`] of their own, since
//! every test of a process shares the global one.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, describe_histogram, Counter, Histogram, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::http::signed_in::NotSignedIn;
use crate::lifecycle::EndReason;
use crate::login::CallbackFailure;
use crate::oidc::TokenRefusal;
use crate::policy::DenyReason;

pub const AUTH_DECISIONS: &str = "portcullis_auth_decisions_total";
pub const AUTH_CHECK_DURATION: &str = "portcullis_auth_check_duration_seconds";
pub const LOGINS: &str = "portcullis_logins_total";
pub const REFRESHES: &str = "portcullis_refreshes_total";
pub const BACKCHANNEL_LOGOUTS: &str = "portcullis_backchannel_logouts_total";
pub const SESSIONS_ENDED: &str = "portcullis_sessions_ended_total";
// Recorded by the session store and its cache, described here so that every family has its help.
pub const STORE_OPERATIONS: &str = "portcullis_store_operations_total";
pub const STORE_ERRORS: &str = "portcullis_store_errors_total";
pub const STORE_DURATION: &str = "portcullis_store_duration_seconds";
pub const SESSION_CACHE_REQUESTS: &str = "portcullis_session_cache_requests_total";
pub const SESSION_CACHE_EVICTIONS: &str = "portcullis_session_cache_evictions_total";
pub const SESSION_CACHE_SUBSCRIBED: &str = "portcullis_session_cache_subscribed";
pub const SESSION_CACHE_ENTRIES: &str = "portcullis_session_cache_entries";

/// The buckets of every `*_duration_seconds` histogram: a check answered from memory takes tens
/// of microseconds, one that waits for Redis milliseconds, and the store's timeout is seconds.
pub const DURATION_BUCKETS: [f64; 15] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5,
];

/// The two auth endpoints, as the `endpoint` label names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/oauth2/auth` (status mode, nginx).
    Auth,
    /// `/oauth2/forward-auth` (redirect mode, Traefik and Caddy).
    ForwardAuth,
}

impl Endpoint {
    pub const ALL: [Endpoint; 2] = [Endpoint::Auth, Endpoint::ForwardAuth];

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Auth => "auth",
            Endpoint::ForwardAuth => "forward-auth",
        }
    }
}

/// Why an auth check could not decide (`outcome="error"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckError {
    /// The session store did not answer (503).
    Store,
    /// Forwarded headers, the peer or the route rules were unusable (400).
    BadRequest,
    /// A sign-in had to start but the IdP's discovery is not loaded (503).
    Provider,
    /// The signed identity assertion (`UPSTREAM_JWT`) could not be made (500).
    Assertion,
}

/// What an auth check answered, as the `outcome` and `reason` labels say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Allow,
    Deny(DenyReason),
    NotSignedIn(NotSignedIn),
    /// A bearer token (`BEARER_TOKENS`) refused: 401 `invalid_token`.
    InvalidToken(TokenRefusal),
    Error(CheckError),
}

impl AuthOutcome {
    /// Every outcome, in the order of [`AuthOutcome::index`].
    pub const ALL: [AuthOutcome; 30] = [
        AuthOutcome::Allow,
        AuthOutcome::Deny(DenyReason::NotInRequiredGroup),
        AuthOutcome::Deny(DenyReason::NoGroups),
        AuthOutcome::Deny(DenyReason::EmailDomainNotAllowed),
        AuthOutcome::Deny(DenyReason::EmailNotVerified),
        AuthOutcome::Deny(DenyReason::EmailMalformed),
        AuthOutcome::Deny(DenyReason::MissingEmail),
        AuthOutcome::Deny(DenyReason::RouteGroupNotMatched),
        AuthOutcome::Deny(DenyReason::RouteEmailDomainNotAllowed),
        AuthOutcome::Deny(DenyReason::RouteUserNotAllowed),
        AuthOutcome::Deny(DenyReason::RouteProviderNotAllowed),
        AuthOutcome::NotSignedIn(NotSignedIn::NoCookie),
        AuthOutcome::NotSignedIn(NotSignedIn::CookieRepeated),
        AuthOutcome::NotSignedIn(NotSignedIn::CookieNotValid),
        AuthOutcome::NotSignedIn(NotSignedIn::UnknownSession),
        AuthOutcome::NotSignedIn(NotSignedIn::Expired),
        AuthOutcome::NotSignedIn(NotSignedIn::Unreadable),
        AuthOutcome::NotSignedIn(NotSignedIn::Idle),
        AuthOutcome::NotSignedIn(NotSignedIn::PastGrace),
        AuthOutcome::Error(CheckError::Store),
        AuthOutcome::Error(CheckError::BadRequest),
        AuthOutcome::Error(CheckError::Provider),
        AuthOutcome::Error(CheckError::Assertion),
        AuthOutcome::InvalidToken(TokenRefusal::NotJwt),
        AuthOutcome::InvalidToken(TokenRefusal::NotAccessToken),
        AuthOutcome::InvalidToken(TokenRefusal::Signature),
        AuthOutcome::InvalidToken(TokenRefusal::Issuer),
        AuthOutcome::InvalidToken(TokenRefusal::Expired),
        AuthOutcome::InvalidToken(TokenRefusal::Audience),
        AuthOutcome::InvalidToken(TokenRefusal::NoUser),
    ];

    pub fn outcome(self) -> &'static str {
        match self {
            AuthOutcome::Allow => "allow",
            AuthOutcome::Deny(_) => "deny",
            AuthOutcome::NotSignedIn(_) => "not_signed_in",
            AuthOutcome::InvalidToken(_) => "invalid_token",
            AuthOutcome::Error(_) => "error",
        }
    }

    /// The deny reason is policy's own stable name ([`DenyReason::as_str`]); the others are
    /// named here. An allow has no reason, said as `none` rather than an empty label.
    pub fn reason(self) -> &'static str {
        match self {
            AuthOutcome::Allow => "none",
            AuthOutcome::Deny(rule) => rule.as_str(),
            AuthOutcome::NotSignedIn(why) => not_signed_in_label(why),
            AuthOutcome::InvalidToken(kind) => kind.as_str(),
            AuthOutcome::Error(CheckError::Store) => "store",
            AuthOutcome::Error(CheckError::BadRequest) => "bad_request",
            AuthOutcome::Error(CheckError::Provider) => "provider",
            AuthOutcome::Error(CheckError::Assertion) => "assertion",
        }
    }

    /// Its position in [`AuthOutcome::ALL`], where its counter is. The matches name every
    /// variant, so a new deny reason or kind of not signed in does not compile until it has a
    /// place here.
    fn index(self) -> usize {
        match self {
            AuthOutcome::Allow => 0,
            AuthOutcome::Deny(rule) => {
                1 + match rule {
                    DenyReason::NotInRequiredGroup => 0,
                    DenyReason::NoGroups => 1,
                    DenyReason::EmailDomainNotAllowed => 2,
                    DenyReason::EmailNotVerified => 3,
                    DenyReason::EmailMalformed => 4,
                    DenyReason::MissingEmail => 5,
                    DenyReason::RouteGroupNotMatched => 6,
                    DenyReason::RouteEmailDomainNotAllowed => 7,
                    DenyReason::RouteUserNotAllowed => 8,
                    DenyReason::RouteProviderNotAllowed => 9,
                }
            }
            AuthOutcome::NotSignedIn(why) => {
                11 + match why {
                    NotSignedIn::NoCookie => 0,
                    NotSignedIn::CookieRepeated => 1,
                    NotSignedIn::CookieNotValid => 2,
                    NotSignedIn::UnknownSession => 3,
                    NotSignedIn::Expired => 4,
                    NotSignedIn::Unreadable => 5,
                    NotSignedIn::Idle => 6,
                    NotSignedIn::PastGrace => 7,
                }
            }
            AuthOutcome::Error(error) => {
                19 + match error {
                    CheckError::Store => 0,
                    CheckError::BadRequest => 1,
                    CheckError::Provider => 2,
                    CheckError::Assertion => 3,
                }
            }
            AuthOutcome::InvalidToken(kind) => {
                23 + match kind {
                    TokenRefusal::NotJwt => 0,
                    TokenRefusal::NotAccessToken => 1,
                    TokenRefusal::Signature => 2,
                    TokenRefusal::Issuer => 3,
                    TokenRefusal::Expired => 4,
                    TokenRefusal::Audience => 5,
                    TokenRefusal::NoUser => 6,
                }
            }
        }
    }
}

/// The `reason` of `outcome="not_signed_in"`: one snake_case name per kind.
pub fn not_signed_in_label(why: NotSignedIn) -> &'static str {
    match why {
        NotSignedIn::NoCookie => "no_cookie",
        NotSignedIn::CookieRepeated => "cookie_repeated",
        NotSignedIn::CookieNotValid => "cookie_not_valid",
        NotSignedIn::UnknownSession => "unknown_session",
        NotSignedIn::Expired => "expired",
        NotSignedIn::Unreadable => "unreadable",
        NotSignedIn::Idle => "idle",
        NotSignedIn::PastGrace => "past_grace",
    }
}

/// Declares a label enum: its variants, their label values and the list of all of them (in
/// declaration order, so that `variant as usize` is its place in the list).
macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $label:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }
        }
    };
}

label_enum! {
    /// How a callback ended (`portcullis_logins_total{outcome}`).
    LoginOutcome {
        Success => "success",
        /// The rules refuse the user (or their username is an unverified email): 403.
        Denied => "denied",
        /// The IdP answered with an error instead of a code.
        IdpError => "idp_error",
        /// No login of this browser matches the callback: no or another login cookie, no state
        /// or no code.
        State => "state",
        /// The sign-in took longer than its 10 minutes.
        Expired => "expired",
        /// The state was used before.
        Replayed => "replayed",
        /// The IdP named another issuer in its answer (a mix-up).
        Issuer => "issuer",
        /// The code exchange, the ID token or userinfo failed.
        Token => "token",
        /// The claims have no username.
        Claims => "claims",
        /// The IdP's discovery is not loaded.
        Provider => "provider",
        /// The IdP's token endpoint could not be reached.
        IdpUnreachable => "idp_unreachable",
        /// An Entra ID user's groups could not be read from Microsoft Graph.
        Groups => "groups",
        Store => "store",
        /// The tokens could not be sealed for storing.
        Internal => "internal",
    }
}

label_enum! {
    /// What a revalidation at the IdP came to (`portcullis_refreshes_total{outcome}`).
    RefreshOutcome {
        /// New claims stored in place of the old ones.
        Success => "success",
        /// The IdP refused the refresh token or access token: the session ended.
        Refused => "refused",
        /// The IdP named another subject: the session ended.
        SubjectChanged => "subject_changed",
        /// The global rules refuse the new claims: the session ended.
        Denied => "denied",
        /// The IdP could not be asked: tried again after a pause.
        Unreachable => "unreachable",
        /// The session's tokens could not be read: tried again after a pause.
        NoTokens => "no_tokens",
        /// The store failed to keep or end the session.
        Store => "store",
        /// The new tokens could not be sealed.
        Internal => "internal",
    }
}

label_enum! {
    /// How a back-channel logout request was answered (`portcullis_backchannel_logouts_total`).
    BackchannelOutcome {
        Success => "success",
        /// 400: the body or the logout token is not valid.
        Invalid => "invalid",
        /// 400: the token's `jti` was used before.
        Replayed => "replayed",
        /// 503: the IdP's keys are not loaded yet.
        NotReady => "not_ready",
        /// 503: the store did not answer.
        Store => "store",
    }
}

label_enum! {
    /// Why sessions ended (`portcullis_sessions_ended_total{reason}`).
    EndedBy {
        SignOut => "sign_out",
        Idle => "idle",
        Admin => "admin",
        Backchannel => "backchannel",
        OwnSessions => "own_sessions",
        Refresh => "refresh",
    }
}

/// The login outcome of a callback that could not complete its login.
pub fn login_failure(failure: &CallbackFailure) -> LoginOutcome {
    match failure {
        CallbackFailure::IdpError { .. } => LoginOutcome::IdpError,
        CallbackFailure::MissingState
        | CallbackFailure::NoLoginCookie
        | CallbackFailure::StateMismatch
        | CallbackFailure::MissingCode => LoginOutcome::State,
        CallbackFailure::Expired => LoginOutcome::Expired,
        CallbackFailure::IssuerMismatch { .. } | CallbackFailure::ProviderMismatch { .. } => {
            LoginOutcome::Issuer
        }
        CallbackFailure::AlreadyUsed => LoginOutcome::Replayed,
    }
}

/// The refresh outcome of a refresh that ends its session.
pub fn refresh_ended(reason: &EndReason) -> RefreshOutcome {
    match reason {
        EndReason::Refused(_) => RefreshOutcome::Refused,
        EndReason::SubjectChanged => RefreshOutcome::SubjectChanged,
        EndReason::RulesRefuse(_) => RefreshOutcome::Denied,
        EndReason::ProviderGone => RefreshOutcome::Refused,
    }
}

/// A recorder's handle for rendering, and the counters and histograms of every series this
/// module records, looked up once.
pub struct Metrics {
    handle: PrometheusHandle,
    /// The recorder itself when it is not the global one: process metrics are recorded through
    /// the `metrics` macros, which then have to be pointed at it.
    own: Option<PrometheusRecorder>,
    process: metrics_process::Collector,
    auth: [[Counter; AuthOutcome::ALL.len()]; Endpoint::ALL.len()],
    auth_duration: [Histogram; Endpoint::ALL.len()],
    logins: Vec<Counter>,
    refreshes: Vec<Counter>,
    backchannel: Vec<Counter>,
    ended: Vec<Counter>,
}

static GLOBAL: OnceLock<Arc<Metrics>> = OnceLock::new();

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_duration_seconds".to_string()),
            &DURATION_BUCKETS,
        )
        // Only fails for an empty list of buckets; the default then renders summaries.
        .unwrap_or_else(|_| PrometheusBuilder::new())
}

/// Histogram samples wait in the recorder until a scrape or an upkeep takes them: without a
/// scraper they would pile up, so a thread takes them. Often: taken every 5 s, the samples of
/// 50,000 checks a second were 2 MB of fresh pages per interval, and page faults 2.3 % of a
/// cached check's CPU; taken every 100 ms they fit in what the allocator keeps at hand.
const UPKEEP_INTERVAL: Duration = Duration::from_millis(100);

impl Metrics {
    /// The process's metrics, installed as the global recorder the first time (the store's and
    /// the session cache's `metrics` macros record there too).
    pub fn global() -> Arc<Metrics> {
        Arc::clone(GLOBAL.get_or_init(|| Arc::new(Metrics::install())))
    }

    fn install() -> Metrics {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".to_string())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            });
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "metrics: no upkeep thread; histograms drain at scrapes only");
        }
        match metrics::set_global_recorder(recorder) {
            Ok(()) => Metrics::resolve(handle, None),
            Err(taken) => {
                // Another recorder came first (portcullis embedded in a program of its own):
                // ours still serves /metrics, without what others record through the macros.
                tracing::warn!("metrics: a global recorder was already installed; /metrics shows portcullis' own metrics only");
                Metrics::resolve(handle, Some(taken.into_inner()))
            }
        }
    }

    /// Metrics of their own, not installed globally: what one test records and nothing else.
    pub fn isolated() -> Metrics {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        Metrics::resolve(handle, Some(recorder))
    }

    /// Describes every family and looks up every series (so each is rendered, at 0, from the
    /// start: a rate over a series that appears only at its first event misses that event).
    fn resolve(handle: PrometheusHandle, own: Option<PrometheusRecorder>) -> Metrics {
        let process = metrics_process::Collector::default();
        let build = || {
            describe();
            process.describe();
            let counters = |name: &'static str, label: &'static str, values: &[&'static str]| {
                values
                    .iter()
                    .map(|&value| metrics::counter!(name, label => value))
                    .collect::<Vec<Counter>>()
            };
            Metrics {
                handle: handle.clone(),
                own: None,
                process: process.clone(),
                auth: Endpoint::ALL.map(|endpoint| {
                    AuthOutcome::ALL.map(|outcome| {
                        metrics::counter!(
                            AUTH_DECISIONS,
                            "endpoint" => endpoint.as_str(),
                            "outcome" => outcome.outcome(),
                            "reason" => outcome.reason()
                        )
                    })
                }),
                auth_duration: Endpoint::ALL.map(|endpoint| {
                    metrics::histogram!(AUTH_CHECK_DURATION, "endpoint" => endpoint.as_str())
                }),
                logins: counters(LOGINS, "outcome", &labels(LoginOutcome::ALL, LoginOutcome::as_str)),
                refreshes: counters(
                    REFRESHES,
                    "outcome",
                    &labels(RefreshOutcome::ALL, RefreshOutcome::as_str),
                ),
                backchannel: counters(
                    BACKCHANNEL_LOGOUTS,
                    "outcome",
                    &labels(BackchannelOutcome::ALL, BackchannelOutcome::as_str),
                ),
                ended: counters(SESSIONS_ENDED, "reason", &labels(EndedBy::ALL, EndedBy::as_str)),
            }
        };
        let metrics = match &own {
            Some(recorder) => metrics::with_local_recorder(recorder, build),
            None => build(),
        };
        Metrics { own, ..metrics }
    }

    /// One auth check: its decision and how long it took.
    pub fn auth_check(&self, endpoint: Endpoint, outcome: AuthOutcome, took: Duration) {
        let endpoint = endpoint as usize;
        self.auth[endpoint][outcome.index()].increment(1);
        self.auth_duration[endpoint].record(took);
    }

    pub fn login(&self, outcome: LoginOutcome) {
        self.logins[outcome as usize].increment(1);
    }

    pub fn refresh(&self, outcome: RefreshOutcome) {
        self.refreshes[outcome as usize].increment(1);
    }

    pub fn backchannel_logout(&self, outcome: BackchannelOutcome) {
        self.backchannel[outcome as usize].increment(1);
    }

    pub fn sessions_ended(&self, by: EndedBy, count: usize) {
        if count > 0 {
            self.ended[by as usize].increment(count as u64);
        }
    }

    /// A request found not signed in. An idle session is ended by the request that finds it
    /// so (in the background, see `signed_in`), which is where it is counted: two requests of
    /// the same browser in the moment before it is gone count it twice.
    pub fn not_signed_in(&self, why: NotSignedIn) {
        if why == NotSignedIn::Idle {
            self.sessions_ended(EndedBy::Idle, 1);
        }
    }

    /// The Prometheus text exposition, process metrics read just now.
    pub fn render(&self) -> String {
        match &self.own {
            Some(recorder) => metrics::with_local_recorder(recorder, || self.process.collect()),
            None => self.process.collect(),
        }
        self.handle.render()
    }
}

fn labels<T: Copy>(all: &[T], label: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().copied().map(label).collect()
}

/// The help text of every family, ours and those the store and the session cache record.
fn describe() {
    describe_counter!(
        AUTH_DECISIONS,
        "Auth checks by endpoint (auth, forward-auth), outcome (allow, deny, not_signed_in, invalid_token, error) and reason."
    );
    describe_histogram!(
        AUTH_CHECK_DURATION,
        Unit::Seconds,
        "How long auth checks took to answer, by endpoint."
    );
    describe_counter!(LOGINS, "Completed or failed sign-in callbacks, by outcome.");
    describe_counter!(
        REFRESHES,
        "Revalidations of sessions at the identity provider, by outcome."
    );
    describe_counter!(
        BACKCHANNEL_LOGOUTS,
        "Back-channel logout requests from the identity provider, by outcome."
    );
    describe_counter!(SESSIONS_ENDED, "Sessions ended, by why.");
    describe_counter!(STORE_OPERATIONS, "Session store operations, by operation.");
    describe_counter!(
        STORE_ERRORS,
        "Session store operations that failed, by operation."
    );
    describe_histogram!(
        STORE_DURATION,
        Unit::Seconds,
        "How long session store operations took, by operation."
    );
    describe_counter!(
        SESSION_CACHE_REQUESTS,
        "Session lookups by how the session cache answered them (hit, miss, bypass)."
    );
    describe_counter!(
        SESSION_CACHE_EVICTIONS,
        "Sessions dropped from the session cache, by reason (invalidated, cleared)."
    );
    describe_gauge!(
        SESSION_CACHE_SUBSCRIBED,
        "1 while the session cache receives the store's invalidations, 0 otherwise."
    );
    describe_gauge!(SESSION_CACHE_ENTRIES, "Sessions held in the session cache.");
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
