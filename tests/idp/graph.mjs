// Test-only stand-in for Microsoft Graph: the one stand-in the integration tests use, because
// Graph itself cannot run here. It answers the one request portcullis makes for an Entra ID
// user whose token has the groups overage marker, with Graph's documented response shapes
// (https://learn.microsoft.com/graph/api/user-list-transitivememberof, "Paging Microsoft Graph
// data in your app"):
//
//   GET /v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id,displayName
//   Authorization: Bearer <access token>
//   200 {"@odata.context": "<base>/v1.0/$metadata#directoryObjects(id,displayName)",
//        "value": [{"@odata.type": "#microsoft.graph.group", "id": "...", "displayName": "..."}],
//        "@odata.nextLink": "<base>/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$skiptoken=..."}
//
// The last page has no @odata.nextLink. The bearer token is checked for real: the stand-in asks
// the test IdP's userinfo endpoint with it, and the `sub` it answers is the user ("me"). A token
// the IdP does not honour, or none, gets Graph's 401:
//   {"error": {"code": "InvalidAuthenticationToken", "message": "...", "innerError": {...}}}
// An IdP that cannot be asked gets 503 ServiceUnavailable. The $skiptoken is bound to the user it
// was issued for (another user's is a 400 BadRequest); any other path is a 404.
//
// Environment:
//   PORT                    port to listen on (127.0.0.1)
//   USERINFO_URL            the test IdP's userinfo endpoint (e.g. http://127.0.0.1:PORT/me)
//   GRAPH_GROUPS            JSON: {"<sub>": [{"id": "...", "displayName": "..." | null}, ...]};
//                           a user not listed is in no group
//   PAGE_SIZE               groups per page (default 2, so that a few groups take several pages)
//   TEST_CONTROL_ENDPOINTS  "1" turns on (TEST ONLY, loopback peers only, JSON in and out):
//                             PUT  /test/groups/<sub>  a JSON list of groups replaces the user's
//                             GET  /test/counters      {"pages": n, "refused": n}: pages answered
//                                                      (200) and requests refused (401)
//                             POST /test/counters/reset
//
// No dependencies beyond Node itself (fetch, node:http). Documented in README.md next to this file.

import { createServer } from 'node:http';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`graph: missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
}

const PORT = Number(required('PORT'));
const USERINFO_URL = required('USERINFO_URL');
const PAGE_SIZE = Number(process.env.PAGE_SIZE || 2);
if (!Number.isInteger(PAGE_SIZE) || PAGE_SIZE < 1 || PAGE_SIZE > 999) {
  console.error('graph: PAGE_SIZE must be a whole number from 1 to 999');
  process.exit(2);
}
const TEST_CONTROL_ENDPOINTS = process.env.TEST_CONTROL_ENDPOINTS === '1';
const BASE = `http://127.0.0.1:${PORT}`;
const GROUPS_PATH = '/v1.0/me/transitiveMemberOf/microsoft.graph.group';

function checkGroups(list, what) {
  if (!Array.isArray(list)
    || !list.every((g) => g && typeof g.id === 'string' && g.id
      && (g.displayName === undefined || g.displayName === null || typeof g.displayName === 'string'))) {
    throw new Error(`${what}: expected a list of {"id": "...", "displayName": "..." | null}`);
  }
  return list.map((g) => ({ id: g.id, displayName: g.displayName ?? null }));
}

const GROUPS = new Map();
try {
  const given = JSON.parse(process.env.GRAPH_GROUPS || '{}');
  for (const [sub, list] of Object.entries(given)) GROUPS.set(sub, checkGroups(list, `GRAPH_GROUPS.${sub}`));
} catch (err) {
  console.error(`graph: GRAPH_GROUPS: ${err.message}`);
  process.exit(2);
}

const counters = { pages: 0, refused: 0 };

function send(res, status, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify(body));
}

function graphError(res, status, code, message) {
  send(res, status, {
    error: {
      code,
      message,
      innerError: { date: new Date().toISOString().slice(0, 19), 'request-id': crypto.randomUUID() },
    },
  });
}

// Who the access token is for, as the test IdP says: its sub, or undefined when it refuses it.
async function subjectOf(authorization) {
  const answer = await fetch(USERINFO_URL, {
    headers: { authorization, accept: 'application/json' },
    signal: AbortSignal.timeout(5000),
    redirect: 'manual',
  });
  if (answer.status !== 200) return undefined;
  const claims = await answer.json();
  return typeof claims.sub === 'string' ? claims.sub : undefined;
}

function skiptoken(sub, offset) {
  return Buffer.from(JSON.stringify({ sub, offset })).toString('base64url');
}

function readSkiptoken(value, sub) {
  try {
    const token = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
    if (token.sub === sub && Number.isInteger(token.offset) && token.offset >= 0) return token.offset;
  } catch { /* not ours */ }
  return undefined;
}

async function handleGroups(req, res, url) {
  const authorization = req.headers.authorization || '';
  if (!/^Bearer \S+$/i.test(authorization)) {
    counters.refused += 1;
    graphError(res, 401, 'InvalidAuthenticationToken', 'Access token is empty.');
    return;
  }
  let sub;
  try {
    sub = await subjectOf(authorization);
  } catch (err) {
    console.error(`graph: the IdP's userinfo could not be asked: ${err.message}`);
    graphError(res, 503, 'ServiceUnavailable', 'The service is temporarily unavailable.');
    return;
  }
  if (!sub) {
    counters.refused += 1;
    console.log('graph: refused an access token the IdP does not honour');
    graphError(res, 401, 'InvalidAuthenticationToken', 'Access token has expired or is not yet valid.');
    return;
  }
  let offset = 0;
  const skip = url.searchParams.get('$skiptoken');
  if (skip !== null) {
    offset = readSkiptoken(skip, sub);
    if (offset === undefined) {
      graphError(res, 400, 'BadRequest', 'Invalid $skiptoken.');
      return;
    }
  }
  const groups = GROUPS.get(sub) || [];
  const slice = groups.slice(offset, offset + PAGE_SIZE);
  const body = {
    '@odata.context': `${BASE}/v1.0/$metadata#directoryObjects(id,displayName)`,
    value: slice.map((g) => ({ '@odata.type': '#microsoft.graph.group', id: g.id, displayName: g.displayName })),
  };
  const next = offset + PAGE_SIZE;
  if (next < groups.length) {
    body['@odata.nextLink'] = `${BASE}${GROUPS_PATH}?$select=id,displayName&$skiptoken=${skiptoken(sub, next)}`;
  }
  counters.pages += 1;
  console.log(`graph: ${sub}: page at ${offset}, ${slice.length} of ${groups.length} groups${body['@odata.nextLink'] ? ', more follow' : ''}`);
  send(res, 200, body);
}

function isLoopback(req) {
  return ['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(req.socket.remoteAddress || '');
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > 64 * 1024) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const GROUPS_CONTROL = /^\/test\/groups\/([A-Za-z0-9_.-]+)$/;

async function handleTestControl(req, res, path) {
  const text = (status, message) => {
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/plain');
    res.end(`${message}\n`);
  };
  if (!isLoopback(req)) return text(403, 'test-only endpoint: loopback peers only');
  const user = GROUPS_CONTROL.exec(path);
  if (user && req.method === 'PUT') {
    let list;
    try {
      list = checkGroups(JSON.parse(await readBody(req)), 'body');
    } catch (err) {
      return text(400, err.message);
    }
    GROUPS.set(user[1], list);
    console.log(`graph: TEST groups of ${user[1]} now ${JSON.stringify(list)}`);
    return send(res, 200, { user: user[1], groups: list });
  }
  if (path === '/test/counters' && req.method === 'GET') return send(res, 200, { ...counters });
  if (path === '/test/counters/reset' && req.method === 'POST') {
    counters.pages = 0;
    counters.refused = 0;
    return send(res, 200, { ...counters });
  }
  return text(404, 'no such test endpoint');
}

const server = createServer((req, res) => {
  const url = new URL(req.url, BASE);
  const done = (err) => {
    console.error(`graph: ${err.stack || err}`);
    if (!res.headersSent) graphError(res, 500, 'InternalServerError', 'The stand-in failed.');
  };
  if (TEST_CONTROL_ENDPOINTS && url.pathname.startsWith('/test/')) {
    handleTestControl(req, res, url.pathname).catch(done);
  } else if (req.method === 'GET' && url.pathname === GROUPS_PATH) {
    handleGroups(req, res, url).catch(done);
  } else {
    graphError(res, 404, 'Request_ResourceNotFound', `Resource '${url.pathname}' does not exist.`);
  }
});

server.listen(PORT, '127.0.0.1', () => {
  console.log(`graph: listening on ${BASE}, users' groups checked against ${USERINFO_URL}, ${PAGE_SIZE} per page`
    + `${TEST_CONTROL_ENDPOINTS ? ', TEST control endpoints on' : ''}`);
});

function shutdown(signal) {
  console.log(`graph: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
