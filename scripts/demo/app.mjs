// The protected app of scripts/demo.sh: an HTML page showing the identity headers the proxy
// passed on from portcullis. Node's http module only; every shown value is HTML-escaped.
//
// Environment:
//   APP_PORT          port on 127.0.0.1

import { createServer } from 'node:http';

const PORT = Number(process.env.APP_PORT);
if (!PORT) {
  console.error('app: APP_PORT is required');
  process.exit(2);
}

const IDENTITY_HEADERS = [
  'X-Auth-Request-User',
  'X-Auth-Request-Email',
  'X-Auth-Request-Preferred-Username',
  'X-Auth-Request-Groups',
  'X-Auth-Request-Provider',
  'X-Auth-Request-Jwt',
  'Remote-User',
  'Remote-Email',
  'Remote-Name',
  'Remote-Groups',
];

function escapeHtml(value) {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/// X-Auth-Request-Groups: comma-separated, each name percent-encoded (`,` is `%2C`).
function decodeGroups(header) {
  if (!header) return [];
  return header.split(',').filter(Boolean).map((item) => {
    try {
      return decodeURIComponent(item);
    } catch {
      return item;
    }
  });
}

function page(req) {
  const url = new URL(req.url, 'http://app.invalid');
  const header = (name) => {
    const value = req.headers[name.toLowerCase()];
    return Array.isArray(value) ? value.join(', ') : value;
  };
  const user = header('X-Auth-Request-User');
  const groups = decodeGroups(header('X-Auth-Request-Groups'));
  const rows = IDENTITY_HEADERS.map((name) => {
    const value = header(name);
    const shown = value === undefined
      ? '<em>(not sent)</em>'
      : value === '' ? '<em>(empty)</em>' : `<code>${escapeHtml(value)}</code>`;
    return `<tr><th scope="row">${escapeHtml(name)}</th><td>${shown}</td></tr>`;
  }).join('\n');
  const allHeaders = Object.entries(req.headers)
    .map(([name, value]) => `<tr><th scope="row">${escapeHtml(name)}</th><td><code>${escapeHtml(value)}</code></td></tr>`)
    .join('\n');
  const area = url.pathname.startsWith('/ops/')
    ? '<p class="note">You are in <strong>/ops/</strong>: the proxy lets only the group <code>ops</code> (and <code>ADMINS</code>) in here.</p>'
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>portcullis demo app</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1c1e21;margin:0;padding:2rem}
main{background:#fff;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15);padding:1.5rem 2rem;max-width:52rem;margin:auto}
h1{font-size:1.4rem;margin-top:0}table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e5e7eb;vertical-align:top;word-break:break-all}
th{white-space:nowrap;font-weight:600;width:18rem}code{font-size:.9rem}
nav a{margin-right:1rem}.actions{display:flex;gap:.8rem;margin:1rem 0}
button{background:#1a56db;color:#fff;border:0;border-radius:4px;padding:.55rem 1.1rem;font-size:1rem;cursor:pointer}
button.secondary{background:#4b5563}.note{background:#ecfdf5;padding:.5rem .8rem;border-radius:4px}
</style>
</head>
<body><main>
<h1>Hello, ${user ? escapeHtml(user) : 'whoever you are'}</h1>
<p>This page is the protected app. It knows who you are only from the request headers below,
which the proxy copied from portcullis' answer. You asked for <code>${escapeHtml(url.pathname + url.search)}</code>.</p>
${area}
<p>Groups: ${groups.length ? groups.map((g) => `<code>${escapeHtml(g)}</code>`).join(', ') : '<em>none</em>'}</p>
<nav><a href="/">/</a><a href="/ops/">/ops/ (group ops only)</a><a href="/oauth2/userinfo">/oauth2/userinfo</a></nav>
<table aria-label="identity headers">
${rows}
</table>
<div class="actions">
<form method="post" action="/oauth2/sign_out"><button type="submit">Sign out</button></form>
</div>
<details><summary>Every request header the app received</summary>
<table aria-label="all request headers">
${allHeaders}
</table>
</details>
</main></body>
</html>
`;
}

const server = createServer((req, res) => {
  if (req.url === '/favicon.ico') {
    res.writeHead(204).end();
    return;
  }
  const body = page(req);
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
});

server.listen(PORT, '127.0.0.1', () => {
  console.log(`app: listening on 127.0.0.1:${PORT}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
