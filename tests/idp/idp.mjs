// Test-only OpenID Provider for portcullis integration tests.
//
// A real oidc-provider (not a mock) so that portcullis talks to a spec-compliant
// OP: discovery, JWKS, authorization code + PKCE, ID token signatures, userinfo,
// RFC 9207 `iss` in the authorization response, refresh tokens, RP-initiated logout,
// back-channel logout. Everything is in memory and listens on loopback only.
//
// Environment:
//   PORT                       port to listen on (127.0.0.1)
//   ISSUER                     issuer URL, default http://127.0.0.1:$PORT
//   CLIENT_ID, CLIENT_SECRET   the confidential client (client_secret_basic);
//                              "$CLIENT_ID-post" is the same client using client_secret_post
//   REDIRECT_URIS              comma-separated redirect_uris
//   POST_LOGOUT_REDIRECT_URIS  comma-separated post_logout_redirect_uris (optional)
//   EXTRA_CLIENT_ID, EXTRA_CLIENT_SECRET, EXTRA_REDIRECT_URIS
//                              a third confidential client (client_secret_basic) with its own
//                              secret and redirect_uris, for another relying party (the bench's
//                              Apache mod_auth_openidc); optional, all three or none
//   PRIVATE_KEY_JWT_CLIENTS    JSON list of clients that authenticate with private_key_jwt, each
//                              {"client_id": "...", "jwks": {"keys": [<public JWK>]},
//                               "token_endpoint_auth_signing_alg": "RS256" | "ES256",
//                               "redirect_uris": [...] (optional, default REDIRECT_URIS)}:
//                              no client secret, same grants as the others (optional)
//   SESSION_LIFETIME           seconds that sessions, grants and refresh tokens last (default
//                              600: tests run for seconds; the bench runs for half an hour)
//   BACKCHANNEL_LOGOUT_URI     the clients' backchannel_logout_uri (optional; unset: the
//                              OP sends no logout tokens and ID tokens carry no sid)
//   RESOURCE_SERVER            a resource indicator (RFC 8707), e.g. https://api.test/ (optional):
//                              access tokens asked for it with `resource=` (code flow or
//                              client_credentials) are JWTs (RFC 9068, RS256, typ at+jwt, scope
//                              api:read, aud RESOURCE_AUDIENCE); a user's carry the account's
//                              preferred_username, email, email_verified and groups. Unset: no
//                              resource, every `resource=` is invalid_target (as before)
//   RESOURCE_AUDIENCE          the `aud` of those tokens (optional, default RESOURCE_SERVER)
//   MACHINE_CLIENT_ID, MACHINE_CLIENT_SECRET
//                              a client of grant client_credentials only (client_secret_basic),
//                              for an API client without a user; its tokens' `sub` is its id
//                              (optional, both or none; needs RESOURCE_SERVER)
//   MACHINE_CLIENT_GROUPS      comma list put in the machine client's tokens as `groups`
//                              (optional, default none)
//   TEST_SIGN_ENDPOINT         "1" turns on POST /test/sign (TEST ONLY, see below)
//   TEST_CONTROL_ENDPOINTS     "1" turns on /test/accounts/..., /test/counters, /test/pause,
//                              /test/token-requests (TEST ONLY, see below)
//
// Accounts are listed in README.md next to this file. The `entra` account's ID token carries
// Entra ID's groups overage marker (`_claim_names.groups` with `_claim_sources`) and no `groups`:
// oidc-provider passes both claims through (its claims helper keeps the names of granted claims,
// here through the `groups` scope, and conformIdTokenClaims: false puts them in the ID token).
// Its groups are served by the Microsoft Graph stand-in, graph.mjs next to this file.

import { createServer } from 'node:http';
import {
  createPrivateKey, generateKeyPairSync, randomBytes, sign,
} from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`idp: missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
}

function list(value) {
  return (value || '').split(',').map((s) => s.trim()).filter(Boolean);
}

const PORT = Number(required('PORT'));
const ISSUER = process.env.ISSUER || `http://127.0.0.1:${PORT}`;
const CLIENT_ID = required('CLIENT_ID');
const CLIENT_SECRET = required('CLIENT_SECRET');
const REDIRECT_URIS = list(required('REDIRECT_URIS'));
const POST_LOGOUT_REDIRECT_URIS = list(process.env.POST_LOGOUT_REDIRECT_URIS);
const BACKCHANNEL_LOGOUT_URI = process.env.BACKCHANNEL_LOGOUT_URI || '';
const EXTRA_CLIENT_ID = process.env.EXTRA_CLIENT_ID || '';
const SESSION_LIFETIME = Number(process.env.SESSION_LIFETIME || 600);
if (!Number.isInteger(SESSION_LIFETIME) || SESSION_LIFETIME <= 0) {
  console.error('idp: SESSION_LIFETIME must be a whole number of seconds');
  process.exit(2);
}
if (EXTRA_CLIENT_ID && !(process.env.EXTRA_CLIENT_SECRET && process.env.EXTRA_REDIRECT_URIS)) {
  console.error('idp: EXTRA_CLIENT_ID needs EXTRA_CLIENT_SECRET and EXTRA_REDIRECT_URIS');
  process.exit(2);
}
const PRIVATE_KEY_JWT_CLIENTS = parseJwtClients(process.env.PRIVATE_KEY_JWT_CLIENTS);
const RESOURCE_SERVER = process.env.RESOURCE_SERVER || '';
const RESOURCE_AUDIENCE = process.env.RESOURCE_AUDIENCE || RESOURCE_SERVER;
const RESOURCE_SCOPE = 'api:read';
const MACHINE_CLIENT_ID = process.env.MACHINE_CLIENT_ID || '';
const MACHINE_CLIENT_GROUPS = list(process.env.MACHINE_CLIENT_GROUPS);
if (MACHINE_CLIENT_ID && !(process.env.MACHINE_CLIENT_SECRET && RESOURCE_SERVER)) {
  console.error('idp: MACHINE_CLIENT_ID needs MACHINE_CLIENT_SECRET and RESOURCE_SERVER');
  process.exit(2);
}
const TEST_SIGN_ENDPOINT = process.env.TEST_SIGN_ENDPOINT === '1';
const TEST_CONTROL_ENDPOINTS = process.env.TEST_CONTROL_ENDPOINTS === '1';

const PASSWORD = 'password';

// PRIVATE_KEY_JWT_CLIENTS: checked here so that a test's typo stops the IdP with a reason
// instead of failing a sign-in later.
function parseJwtClients(value) {
  if (!value) return [];
  const fail = (why) => {
    console.error(`idp: PRIVATE_KEY_JWT_CLIENTS: ${why}`);
    process.exit(2);
  };
  let clients;
  try {
    clients = JSON.parse(value);
  } catch (err) {
    fail(`not JSON: ${err.message}`);
  }
  if (!Array.isArray(clients)) fail('expected a JSON list of {client_id, jwks, token_endpoint_auth_signing_alg}');
  for (const client of clients) {
    if (typeof client?.client_id !== 'string' || !client.client_id) fail('every client needs a client_id');
    if (!Array.isArray(client.jwks?.keys) || client.jwks.keys.length === 0) fail(`${client.client_id}: jwks must be {"keys": [<public JWK>, ...]}`);
    if (typeof client.token_endpoint_auth_signing_alg !== 'string') fail(`${client.client_id}: token_endpoint_auth_signing_alg is required (RS256, ES256, ...)`);
    if (client.redirect_uris !== undefined && !Array.isArray(client.redirect_uris)) fail(`${client.client_id}: redirect_uris must be a list`);
  }
  return clients;
}

// Claims per account. `sub` is the username. carol deliberately has no
// `groups` key at all (not an empty list), bob has a group containing a comma.
const ACCOUNTS = {
  alice: {
    email: 'alice@example.com',
    email_verified: true,
    name: 'Alice Admin',
    groups: ['admins', 'ops'],
    realm_access: { roles: ['app-admin'] },
  },
  bob: {
    email: 'bob@example.com',
    email_verified: true,
    name: 'Bob Builder',
    groups: ['dev', 'RT_users', 'ACME, Inc'],
  },
  carol: {
    email: 'carol@example.org',
    email_verified: true,
    name: 'Carol NoGroups',
  },
  dave: {
    email: 'dave@example.com',
    email_verified: false,
    name: 'Dave Unverified',
    groups: ['ops'],
  },
  erin: {
    email: 'erin@other.test',
    email_verified: true,
    name: 'Erin Elsewhere',
    groups: ['ops'],
  },
  // AWS Cognito's claim types: booleans as strings (in the ID token and userinfo alike), and
  // other claims whose types a strict client refuses. oidc-provider passes claim values through
  // as findAccount returns them, so these reach portcullis exactly as written here.
  cognito: {
    email: 'cognito@example.com',
    email_verified: 'true',
    phone_number_verified: 'false',
    name: 42,
    given_name: ['Cog', 'Nito'],
    updated_at: 'yesterday',
    address: '1 Main Street',
    groups: 'cognito-users',
  },
  // Microsoft Entra ID's groups overage: a user in more groups than a token holds gets no
  // `groups` claim but a marker saying where they are (OpenID Connect Core 5.6.2, distributed
  // claims). oidc-provider passes `_claim_names` / `_claim_sources` through as they are, in the
  // ID token and userinfo alike, keeping the names of the claims that are granted (`groups`,
  // through the `groups` scope) and their sources (lib/helpers/claims.js), and
  // conformIdTokenClaims: false puts them in the ID token. The endpoint is Entra's own, the
  // retired Azure AD Graph, which portcullis must not call: it reads Microsoft Graph (the
  // stand-in tests/idp/graph.mjs) instead.
  entra: {
    email: 'entra@example.com',
    email_verified: true,
    name: 'Entra Overage',
    _claim_names: { groups: 'src1' },
    _claim_sources: {
      src1: {
        endpoint: 'https://graph.windows.net/0b1c5e2a-test-tenant/users/entra/getMemberObjects',
      },
    },
  },
  // Signing in as `denied` makes the OP answer the client with error=access_denied.
  denied: {
    email: 'denied@example.com',
    email_verified: true,
    name: 'Denied User',
  },
};

// Accounts switched off by the test-only POST /test/accounts/<id>/disable: findAccount does not
// find them, and they cannot sign in.
const DISABLED = new Set();

// A fresh signing key per run: tests fetch the JWKS from this process, so
// nothing needs to be committed and no key outlives the test.
const signingKey = {
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: `test-${randomBytes(4).toString('hex')}`,
  alg: 'RS256',
  use: 'sig',
};

const baseClient = {
  client_secret: CLIENT_SECRET,
  redirect_uris: REDIRECT_URIS,
  post_logout_redirect_uris: POST_LOGOUT_REDIRECT_URIS,
  // refresh_token: every code grant also gets a refresh token (issueRefreshToken below).
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  id_token_signed_response_alg: 'RS256',
  // With a back-channel logout URI, the OP POSTs a logout token there when the user's session
  // here ends; "session required" puts `sid` in ID tokens and logout tokens alike
  // (oidc-provider's Client#includeSid), so that one browser's logout ends only its session.
  ...(BACKCHANNEL_LOGOUT_URI ? {
    backchannel_logout_uri: BACKCHANNEL_LOGOUT_URI,
    backchannel_logout_session_required: true,
  } : {}),
};

const SUPPORTED_SCOPES = 'openid profile email groups';

const CLAIMS_BY_SCOPE = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  // given_name..phone_number_verified: under `profile` so that the scopes portcullis asks
  // for carry them (only the cognito account has them).
  profile: [
    'preferred_username', 'name', 'realm_access',
    'given_name', 'updated_at', 'address', 'phone_number_verified',
  ],
  groups: ['groups'],
};

// Consent is implied for our own test clients: whenever the OP looks for a
// grant, hand it one covering every supported scope plus any claims asked for
// through the `claims` parameter, so the browser goes straight back to the client.
async function loadExistingGrant(ctx) {
  const { provider } = ctx.oidc;
  const grantId = ctx.oidc.result?.consent?.grantId
    || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
  let grant = grantId ? await provider.Grant.find(grantId) : undefined;
  if (!grant) {
    grant = new provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
  }
  grant.addOIDCScope(SUPPORTED_SCOPES);
  addRequestedResource(grant, ctx.oidc.params?.resource);
  const requestedClaims = ctx.oidc.claims || {};
  const claimNames = [
    ...Object.keys(requestedClaims.id_token || {}),
    ...Object.keys(requestedClaims.userinfo || {}),
  ];
  if (claimNames.length) grant.addOIDCClaims(claimNames);
  await grant.save();
  return grant;
}

// The API of RESOURCE_SERVER, when an authorization request names it (`resource=`): granted
// with its one scope, like the OIDC scopes, without consent.
function addRequestedResource(grant, resource) {
  const asked = Array.isArray(resource) ? resource : [resource];
  if (RESOURCE_SERVER && asked.includes(RESOURCE_SERVER)) {
    grant.addResourceScope(RESOURCE_SERVER, RESOURCE_SCOPE);
  }
}

// RFC 8707 / RFC 9068: the one API this OP issues JWT access tokens for.
async function getResourceServerInfo(_ctx, resourceIndicator) {
  if (!RESOURCE_SERVER || resourceIndicator !== RESOURCE_SERVER) {
    throw new errors.InvalidTarget();
  }
  return {
    scope: RESOURCE_SCOPE,
    audience: RESOURCE_AUDIENCE,
    accessTokenFormat: 'jwt',
    accessTokenTTL: 300,
    jwt: { sign: { alg: 'RS256' } },
  };
}

// What an API reads from a JWT access token besides sub: a user's name, email and groups (as
// their ID token has them), or the machine client's groups.
async function extraTokenClaims(_ctx, token) {
  if (token.kind === 'ClientCredentials') {
    return MACHINE_CLIENT_GROUPS.length ? { groups: MACHINE_CLIENT_GROUPS } : undefined;
  }
  if (token.kind !== 'AccessToken' || !token.accountId || !RESOURCE_SERVER) return undefined;
  const account = ACCOUNTS[token.accountId];
  if (!account || DISABLED.has(token.accountId)) return undefined;
  const extra = { preferred_username: token.accountId };
  for (const name of ['email', 'email_verified', 'groups']) {
    if (Object.hasOwn(account, name)) extra[name] = structuredClone(account[name]);
  }
  return extra;
}

const provider = new Provider(ISSUER, {
  clients: [
    { ...baseClient, client_id: CLIENT_ID, token_endpoint_auth_method: 'client_secret_basic' },
    { ...baseClient, client_id: `${CLIENT_ID}-post`, token_endpoint_auth_method: 'client_secret_post' },
    ...(MACHINE_CLIENT_ID ? [{
      client_id: MACHINE_CLIENT_ID,
      client_secret: process.env.MACHINE_CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }] : []),
    ...(EXTRA_CLIENT_ID ? [{
      ...baseClient,
      client_id: EXTRA_CLIENT_ID,
      client_secret: process.env.EXTRA_CLIENT_SECRET,
      redirect_uris: list(process.env.EXTRA_REDIRECT_URIS),
      post_logout_redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }] : []),
    // private_key_jwt clients have no secret at all: a request that brought one could not pass.
    ...PRIVATE_KEY_JWT_CLIENTS.map((client) => {
      const { client_secret: _secret, ...withoutSecret } = baseClient;
      return {
        ...withoutSecret,
        client_id: client.client_id,
        redirect_uris: client.redirect_uris || REDIRECT_URIS,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: client.token_endpoint_auth_signing_alg,
        jwks: client.jwks,
      };
    }),
  ],
  jwks: { keys: [signingKey] },
  cookies: {
    // Cookies ignore ports: the browser sends these to portcullis and the app
    // on 127.0.0.1 too. Distinct names keep them from clashing with theirs.
    names: { session: 'idp_session', interaction: 'idp_interaction', resume: 'idp_interaction_resume' },
    // SameSite=Lax (not the default None) so oidc-provider does not add
    // ".legacy" duplicates of every cookie.
    long: { httpOnly: true, sameSite: 'lax', signed: true },
    short: { httpOnly: true, sameSite: 'lax', signed: true },
    // Signed with a per-run key.
    keys: [randomBytes(32).toString('hex')],
  },
  scopes: SUPPORTED_SCOPES.split(' '),
  claims: CLAIMS_BY_SCOPE,
  // Portcullis revalidates sessions with refresh grants: hand out a refresh token with every
  // authorization code grant of a client allowed the grant (ours are), without the
  // `offline_access` scope and its consent prompt that oidc-provider's default asks for.
  // Such a token still expires with the IdP session (the default expiresWithSession: no
  // offline_access), and rotation is oidc-provider's default (rotateRefreshToken: only past 70%
  // of the token's TTL for a confidential client, so never within a test: refresh answers carry
  // the same refresh_token). A refresh answer has a new ID token (the grant has `openid`).
  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  // Put every claim of the granted scopes into the ID token too (portcullis may
  // read groups from the ID token without calling userinfo). userinfo stays on.
  conformIdTokenClaims: false,
  pkce: { methods: ['S256'], required: () => true },
  responseTypes: ['code'],
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true, logoutSource },
    // Discovery then says backchannel_logout_supported and _session_supported; clients
    // without a backchannel_logout_uri get no logout tokens.
    backchannelLogout: { enabled: true },
    // RESOURCE_SERVER: JWT access tokens for one API (getResourceServerInfo), for a user through
    // the code flow with `resource=`, or for the machine client (client_credentials).
    resourceIndicators: {
      enabled: true,
      getResourceServerInfo,
      // A code flow without `resource=` at the token endpoint still gets the userinfo token.
      useGrantedResource: () => false,
      defaultResource: () => undefined,
    },
    clientCredentials: { enabled: Boolean(MACHINE_CLIENT_ID) },
  },
  extraTokenClaims,
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  loadExistingGrant,
  // Called for every sign-in, code and refresh grant and userinfo request, so claim changes
  // and disabling (the test-only /test/accounts/...) apply to the next one. A disabled account
  // is not found: its refresh and code grants fail with invalid_grant, its userinfo with 401.
  async findAccount(_ctx, sub) {
    if (!Object.hasOwn(ACCOUNTS, sub) || DISABLED.has(sub)) return undefined;
    const account = ACCOUNTS[sub];
    return {
      accountId: sub,
      async claims() {
        return { sub, preferred_username: sub, ...structuredClone(account) };
      },
    };
  },
  // Short lifetimes: tests run for seconds, nothing should linger. The bench, which runs far
  // longer while portcullis refreshes its sessions every few minutes, sets SESSION_LIFETIME.
  ttl: {
    AccessToken: 300,
    AuthorizationCode: 60,
    IdToken: 300,
    Interaction: 300,
    Session: SESSION_LIFETIME,
    Grant: SESSION_LIFETIME,
    RefreshToken: SESSION_LIFETIME,
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><body><h1>OP error</h1>${Object.entries(out)
      .map(([k, v]) => `<pre>${escapeHtml(k)}: ${escapeHtml(v)}</pre>`).join('')}</body></html>`;
  },
});

// RP-initiated logout confirmation page. The `logout=yes` hidden input makes a
// plain form submission (what the Rust test browser does) mean "yes, sign me out".
async function logoutSource(ctx, form) {
  const withYes = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
  ctx.body = `<!DOCTYPE html><html><body><h1>Sign out?</h1>${withYes}
    <button type="submit" form="op.logoutForm">Yes, sign me out</button></body></html>`;
}

function escapeHtml(value) {
  return String(value)
    .replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}

function loginPage(uid, { error, login } = {}) {
  const u = escapeHtml(uid);
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Test IdP sign-in</title></head>
<body>
<h1>Test IdP sign-in</h1>
${error ? `<p class="error" id="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${u}/login">
  <input type="text" name="login" value="${escapeHtml(login || '')}" autofocus>
  <input type="password" name="password" value="">
  <button type="submit">Sign in</button>
</form>
</body>
</html>`;
}

// TEST ONLY: POST /test/sign {"claims": {...}, "header": {...}} answers {"token": "<JWS>"},
// the claims signed RS256 with this run's signing key (the one the JWKS serves), header
// {alg: RS256, typ: logout+jwt, kid} with `header` merged over it (a null member removes one).
// It lets a test forge tokens the JWKS vouches for (wrong aud, no events, ...), so it exists only
// when TEST_SIGN_ENDPOINT=1 (testkit sets it; the demo does not) and answers loopback peers only.
// The signature is always RS256 whatever `header.alg` says: a header naming another algorithm
// makes a token whose signature does not fit its header, which is what such tests want.
const signingPrivateKey = createPrivateKey({ key: signingKey, format: 'jwk' });

function signForTest(claims, header) {
  const fullHeader = { alg: 'RS256', typ: 'logout+jwt', kid: signingKey.kid, ...header };
  for (const [name, value] of Object.entries(fullHeader)) {
    if (value === null) delete fullHeader[name];
  }
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode(fullHeader)}.${encode(claims)}`;
  const signature = sign('sha256', Buffer.from(input), signingPrivateKey).toString('base64url');
  return `${input}.${signature}`;
}

async function handleTestSign(req, res) {
  if (!isLoopback(req)) {
    send(res, 403, 'text/plain', 'test-only endpoint: loopback peers only\n');
    return;
  }
  if (req.method !== 'POST') {
    send(res, 405, 'text/plain', 'method not allowed\n');
    return;
  }
  let input;
  try {
    input = JSON.parse((await readBody(req)).toString('utf8'));
  } catch (err) {
    send(res, 400, 'text/plain', `not JSON: ${err.message}\n`);
    return;
  }
  const { claims, header = {} } = input || {};
  if (!claims || typeof claims !== 'object' || typeof header !== 'object') {
    send(res, 400, 'text/plain', 'expected {"claims": {...}, "header": {...}}\n');
    return;
  }
  console.log(`idp: TEST signed claims ${JSON.stringify(claims)} with header ${JSON.stringify(header)}`);
  send(res, 200, 'application/json', JSON.stringify({ token: signForTest(claims, header) }));
}

// TEST ONLY, when TEST_CONTROL_ENDPOINTS=1 (testkit sets it; the demo does not), loopback peers
// only, JSON in and out (README.md):
//   GET  /test/accounts/<id>            {"account", "disabled", "claims"} (what findAccount gives)
//   POST /test/accounts/<id>            merge a JSON object of claims into the account (null
//                                       deletes one); the next ID token, refresh and userinfo
//                                       show it
//   POST /test/accounts/<id>/disable    findAccount no longer finds it (and /enable undoes it)
//   GET  /test/counters                 {"refresh", "userinfo", "authorization_code"}
//   POST /test/counters/reset           sets them to 0
//   POST /test/pause {"ms": n}          holds the answers of the token and userinfo endpoints
//                                       until n ms from now (0 ends a pause at once)
//   GET  /test/token-requests           the last token requests, oldest first: how each client
//                                       authenticated, its client assertion decoded, the answer
// All of it is in memory: a restart of the IdP starts from the accounts above, none disabled,
// counters at 0, no pause.
const RELEASED_CLAIMS = new Set(Object.values(CLAIMS_BY_SCOPE).flat());

// Token requests by grant_type and userinfo requests, counted by the middleware below once
// oidc-provider has answered them (success or error alike).
const counters = { refresh: 0, userinfo: 0, authorization_code: 0 };

const pause = { until: 0, timer: undefined, held: new Set() };

// The last token requests (at most TOKEN_REQUESTS_KEPT), for tests of client authentication:
// which credentials came, and the client assertion's header and claims as sent (decoded, not
// verified here: oidc-provider verified it, or refused the request).
const TOKEN_REQUESTS_KEPT = 50;
const tokenRequests = [];

function decodeJwtPart(part) {
  try {
    return JSON.parse(Buffer.from(part || '', 'base64url').toString('utf8'));
  } catch {
    return null;
  }
}

function recordTokenRequest(ctx) {
  const params = ctx.oidc.params || {};
  const [header, claims] = typeof params.client_assertion === 'string'
    ? params.client_assertion.split('.').slice(0, 2).map(decodeJwtPart)
    : [null, null];
  tokenRequests.push({
    grant_type: params.grant_type ?? null,
    client_id: params.client_id ?? null,
    authorization_header: Boolean(ctx.headers.authorization),
    client_secret: Boolean(params.client_secret),
    client_assertion_type: params.client_assertion_type ?? null,
    client_assertion: params.client_assertion ? { header, claims } : null,
    status: ctx.status,
    error: ctx.body?.error ?? null,
  });
  if (tokenRequests.length > TOKEN_REQUESTS_KEPT) tokenRequests.shift();
}

function setPause(ms) {
  clearTimeout(pause.timer);
  pause.until = Date.now() + ms;
  if (ms > 0) {
    pause.timer = setTimeout(endPause, ms);
  } else {
    endPause();
  }
}

function endPause() {
  pause.until = 0;
  for (const release of pause.held) release();
  pause.held.clear();
}

function holdWhilePaused() {
  if (Date.now() >= pause.until) return undefined;
  return new Promise((resolve) => { pause.held.add(resolve); });
}

const ACCOUNT_PATH = /^\/test\/accounts\/([A-Za-z0-9_.-]+)(?:\/(disable|enable))?\/?$/;

function accountView(id) {
  return {
    account: id,
    disabled: DISABLED.has(id),
    claims: { sub: id, preferred_username: id, ...ACCOUNTS[id] },
  };
}

async function readJson(req) {
  const text = (await readBody(req)).toString('utf8');
  try {
    return text.trim() === '' ? undefined : JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `not JSON: ${err.message}`);
  }
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function isLoopback(req) {
  const peer = req.socket.remoteAddress || '';
  return ['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(peer);
}

// Answers a /test/... request, or returns false for a path it does not know.
async function handleTestControl(req, res, path) {
  const account = ACCOUNT_PATH.exec(path);
  let answer;
  if (account) {
    const [, id, action] = account;
    if (!Object.hasOwn(ACCOUNTS, id)) throw new HttpError(404, `no account ${JSON.stringify(id)}`);
    if (req.method === 'GET' && !action) {
      answer = accountView(id);
    } else if (req.method !== 'POST') {
      throw new HttpError(405, 'method not allowed');
    } else if (action) {
      if (action === 'disable') DISABLED.add(id); else DISABLED.delete(id);
      console.log(`idp: TEST ${action}d account ${id}`);
      answer = accountView(id);
    } else {
      const changes = await readJson(req);
      if (!changes || typeof changes !== 'object' || Array.isArray(changes)) {
        throw new HttpError(400, 'expected a JSON object of claims, e.g. {"groups": ["dev"]}');
      }
      for (const name of Object.keys(changes)) {
        if (name === 'sub') throw new HttpError(400, '"sub" is the account id and cannot change');
        if (!RELEASED_CLAIMS.has(name)) {
          throw new HttpError(400, `claim ${JSON.stringify(name)} is in no scope, so the IdP would never send it; known: ${[...RELEASED_CLAIMS].filter((c) => c !== 'sub').join(' ')}`);
        }
      }
      for (const [name, value] of Object.entries(changes)) {
        if (value === null) delete ACCOUNTS[id][name]; else ACCOUNTS[id][name] = value;
      }
      console.log(`idp: TEST changed claims of ${id}: ${JSON.stringify(changes)}`);
      answer = accountView(id);
    }
  } else if (path === '/test/counters' || path === '/test/counters/') {
    if (req.method !== 'GET') throw new HttpError(405, 'method not allowed');
    answer = { ...counters };
  } else if (path === '/test/counters/reset') {
    if (req.method !== 'POST') throw new HttpError(405, 'method not allowed');
    for (const name of Object.keys(counters)) counters[name] = 0;
    tokenRequests.length = 0;
    console.log('idp: TEST counters reset');
    answer = { ...counters };
  } else if (path === '/test/token-requests' || path === '/test/token-requests/') {
    if (req.method !== 'GET') throw new HttpError(405, 'method not allowed');
    answer = tokenRequests;
  } else if (path === '/test/pause') {
    if (req.method !== 'POST') throw new HttpError(405, 'method not allowed');
    const { ms } = (await readJson(req)) || {};
    if (!Number.isInteger(ms) || ms < 0 || ms > 600000) {
      throw new HttpError(400, 'expected {"ms": n}, n an integer from 0 to 600000');
    }
    setPause(ms);
    console.log(`idp: TEST ${ms ? `holding token and userinfo answers for ${ms} ms` : 'pause ended'}`);
    answer = { ms };
  } else {
    return false;
  }
  send(res, 200, 'application/json', JSON.stringify(answer));
  return true;
}

function send(res, status, type, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

// Bounded body reads: the login form and the test-only signing requests are tiny.
function readForm(req) {
  return readBody(req).then((body) => new URLSearchParams(body.toString('utf8')));
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > 16 * 1024) {
        reject(new Error('form body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// Finish a consent prompt without asking: the grant comes from loadExistingGrant.
async function finishConsent(req, res, details) {
  const grant = new provider.Grant({
    accountId: details.session.accountId,
    clientId: details.params.client_id,
  });
  grant.addOIDCScope(SUPPORTED_SCOPES);
  addRequestedResource(grant, details.params.resource);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

async function handleInteraction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, 400, 'text/plain', 'interaction mismatch\n');
    return;
  }

  if (req.method === 'GET' && !action) {
    if (details.prompt.name === 'consent') {
      await finishConsent(req, res, details);
      return;
    }
    send(res, 200, 'text/html; charset=utf-8', loginPage(uid));
    return;
  }

  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const login = form.get('login') || '';
    const password = form.get('password') || '';
    if (!Object.hasOwn(ACCOUNTS, login) || password !== PASSWORD) {
      console.log(`idp: failed sign-in for ${JSON.stringify(login)}`);
      send(res, 200, 'text/html; charset=utf-8', loginPage(uid, { error: 'Invalid username or password', login }));
      return;
    }
    if (DISABLED.has(login)) {
      console.log(`idp: refused sign-in for disabled account ${JSON.stringify(login)}`);
      send(res, 200, 'text/html; charset=utf-8', loginPage(uid, { error: 'Account disabled', login }));
      return;
    }
    if (login === 'denied') {
      console.log('idp: denying sign-in for "denied"');
      await provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: 'The test account "denied" is never allowed to sign in',
      }, { mergeWithLastSubmission: false });
      return;
    }
    console.log(`idp: signed in ${login}`);
    // Consent is not asked: loadExistingGrant supplies the grant, so the
    // browser goes straight back to the client.
    await provider.interactionFinished(req, res, {
      login: { accountId: login },
    }, { mergeWithLastSubmission: false });
    return;
  }

  send(res, 405, 'text/plain', 'method not allowed\n');
}

if (TEST_CONTROL_ENDPOINTS) {
  // Runs around every oidc-provider request: once it has answered one of the token endpoint or
  // userinfo (ctx.oidc.route; its parameters are parsed by then), count it, and hold the answer
  // while a /test/pause lasts. The request itself is handled at once.
  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (route === 'token') {
      recordTokenRequest(ctx);
      const grantType = ctx.oidc.params?.grant_type;
      if (grantType === 'refresh_token') counters.refresh += 1;
      if (grantType === 'authorization_code') counters.authorization_code += 1;
    } else if (route === 'userinfo' && ctx.method !== 'OPTIONS') {
      counters.userinfo += 1;
    } else {
      return;
    }
    await holdWhilePaused();
  });
}

const oidcCallback = provider.callback();
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?\/?$/;

const server = createServer(async (req, res) => {
  const path = new URL(req.url, ISSUER).pathname;
  if (TEST_SIGN_ENDPOINT && path === '/test/sign') {
    handleTestSign(req, res).catch((err) => {
      console.error(`idp: test sign error: ${err.message}`);
      if (!res.headersSent) send(res, 500, 'text/plain', `${err.message}\n`);
    });
    return;
  }
  if (TEST_CONTROL_ENDPOINTS && path.startsWith('/test/') && path !== '/test/sign') {
    if (!isLoopback(req)) {
      send(res, 403, 'text/plain', 'test-only endpoint: loopback peers only\n');
      return;
    }
    try {
      if (await handleTestControl(req, res, path)) return;
    } catch (err) {
      if (!(err instanceof HttpError)) console.error(`idp: test control error: ${err.stack || err}`);
      if (!res.headersSent) send(res, err.status || 500, 'text/plain', `${err.message}\n`);
      return;
    }
  }
  const match = INTERACTION.exec(path);
  if (!match) {
    oidcCallback(req, res);
    return;
  }
  try {
    await handleInteraction(req, res, match[1], match[2]);
  } catch (err) {
    // Expired/unknown interaction (e.g. missing cookie): say so plainly.
    console.error(`idp: interaction error: ${err.name}: ${err.message}`);
    if (!res.headersSent) send(res, 400, 'text/plain', `interaction error: ${err.name}: ${err.message}\n`);
  }
});

provider.on('server_error', (_ctx, err) => console.error(`idp: server_error: ${err.stack || err}`));
provider.on('authorization.error', (_ctx, err) => console.error(`idp: authorization.error: ${err.message} ${err.error_description || ''}`));
provider.on('backchannel.success', (_ctx, client, accountId, sid) => console.log(`idp: back-channel logout sent to ${client.clientId} for ${accountId}, sid ${sid}`));
provider.on('backchannel.error', (_ctx, err, client, accountId, sid) => console.error(`idp: back-channel logout to ${client.clientId} for ${accountId}, sid ${sid} failed: ${err.message}`));
// error_detail: what oidc-provider does not tell the client (e.g. "refresh token invalid
// (referenced account not found)" for a disabled account).
provider.on('grant.error', (ctx, err) => console.error(`idp: grant.error (${ctx.oidc?.params?.grant_type || '?'}): ${err.message} ${err.error_description || ''}${err.error_detail ? ` (${err.error_detail})` : ''}`));
provider.on('userinfo.error', (_ctx, err) => console.error(`idp: userinfo.error: ${err.message} ${err.error_description || ''}${err.error_detail ? ` (${err.error_detail})` : ''}`));

server.listen(PORT, '127.0.0.1', () => {
  console.log(`idp: listening on 127.0.0.1:${PORT}, issuer ${ISSUER}, client ${CLIENT_ID}`
    + `${EXTRA_CLIENT_ID ? `, extra client ${EXTRA_CLIENT_ID}` : ''}`
    + `${PRIVATE_KEY_JWT_CLIENTS.length ? `, private_key_jwt clients ${PRIVATE_KEY_JWT_CLIENTS.map((c) => c.client_id).join(' ')}` : ''}`
    + `${SESSION_LIFETIME !== 600 ? `, sessions and refresh tokens last ${SESSION_LIFETIME} s` : ''}`
    + `${BACKCHANNEL_LOGOUT_URI ? `, back-channel logout to ${BACKCHANNEL_LOGOUT_URI}` : ''}`
    + `${RESOURCE_SERVER ? `, JWT access tokens for ${RESOURCE_SERVER} (aud ${RESOURCE_AUDIENCE})` : ''}`
    + `${MACHINE_CLIENT_ID ? `, machine client ${MACHINE_CLIENT_ID}` : ''}`
    + `${TEST_SIGN_ENDPOINT ? ', TEST signing endpoint on' : ''}`
    + `${TEST_CONTROL_ENDPOINTS ? ', TEST control endpoints on' : ''}`);
});

function shutdown(signal) {
  console.log(`idp: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  // Never hang the test teardown.
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
