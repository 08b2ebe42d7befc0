// Test-only OpenID Provider for portcullis integration tests.
//
// A real oidc-provider (not a mock) so that portcullis talks to a spec-compliant
// OP: discovery, JWKS, authorization code + PKCE, ID token signatures, userinfo,
// RFC 9207 `iss` in the authorization response, RP-initiated logout.
// Everything is in memory and listens on loopback only.
//
// Environment:
//   PORT                       port to listen on (127.0.0.1)
//   ISSUER                     issuer URL, default http://127.0.0.1:$PORT
//   CLIENT_ID, CLIENT_SECRET   the confidential client (client_secret_basic);
//                              "$CLIENT_ID-post" is the same client using client_secret_post
//   REDIRECT_URIS              comma-separated redirect_uris
//   POST_LOGOUT_REDIRECT_URIS  comma-separated post_logout_redirect_uris (optional)
//
// Accounts are listed in README.md next to this file.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

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

const PASSWORD = 'password';

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
  // Signing in as `denied` makes the OP answer the client with error=access_denied.
  denied: {
    email: 'denied@example.com',
    email_verified: true,
    name: 'Denied User',
  },
};

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
  grant_types: ['authorization_code'],
  response_types: ['code'],
  id_token_signed_response_alg: 'RS256',
};

const SUPPORTED_SCOPES = 'openid profile email groups';

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
  const requestedClaims = ctx.oidc.claims || {};
  const claimNames = [
    ...Object.keys(requestedClaims.id_token || {}),
    ...Object.keys(requestedClaims.userinfo || {}),
  ];
  if (claimNames.length) grant.addOIDCClaims(claimNames);
  await grant.save();
  return grant;
}

const provider = new Provider(ISSUER, {
  clients: [
    { ...baseClient, client_id: CLIENT_ID, token_endpoint_auth_method: 'client_secret_basic' },
    { ...baseClient, client_id: `${CLIENT_ID}-post`, token_endpoint_auth_method: 'client_secret_post' },
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
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    // given_name..phone_number_verified: under `profile` so that the scopes portcullis asks
    // for carry them (only the cognito account has them).
    profile: [
      'preferred_username', 'name', 'realm_access',
      'given_name', 'updated_at', 'address', 'phone_number_verified',
    ],
    groups: ['groups'],
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
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  loadExistingGrant,
  async findAccount(_ctx, sub) {
    const account = ACCOUNTS[sub];
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, preferred_username: sub, ...structuredClone(account) };
      },
    };
  },
  // Short lifetimes: tests run for seconds, nothing should linger.
  ttl: {
    AccessToken: 300,
    AuthorizationCode: 60,
    IdToken: 300,
    Interaction: 300,
    Session: 600,
    Grant: 600,
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

function send(res, status, type, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

// Bounded body read: the login form is tiny.
function readForm(req) {
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
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
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

const oidcCallback = provider.callback();
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?\/?$/;

const server = createServer(async (req, res) => {
  const path = new URL(req.url, ISSUER).pathname;
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
provider.on('grant.error', (_ctx, err) => console.error(`idp: grant.error: ${err.message} ${err.error_description || ''}`));

server.listen(PORT, '127.0.0.1', () => {
  console.log(`idp: listening on 127.0.0.1:${PORT}, issuer ${ISSUER}, client ${CLIENT_ID}`);
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
