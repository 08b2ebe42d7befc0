// Verifies a JWT with the npm package `jose` (not portcullis' code): the integration tests'
// check of the signed identity assertion (X-Auth-Request-Jwt, UPSTREAM_JWT=true).
//
//   node verify-jwt.mjs <jwks URL or file> <token> <expected iss> <expected aud>
//
// The JWKS is fetched from an http(s) URL (as an app would, from /oauth2/jwks) or read from a
// file. ES256 only. Verified: prints {"header": ..., "payload": ...} as one JSON line on stdout,
// exit 0. Not verified: prints the reason on stderr as "<jose error code>: <message>", exit 1.
// Bad arguments: exit 2.
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify } from 'jose';

const [source, token, issuer, audience] = process.argv.slice(2);
if (!source || !token || !issuer || !audience) {
  console.error('usage: node verify-jwt.mjs <jwks URL or file> <token> <iss> <aud>');
  process.exit(2);
}

const keys = /^https?:\/\//.test(source)
  ? createRemoteJWKSet(new URL(source), { timeoutDuration: 5000 })
  : createLocalJWKSet(JSON.parse(readFileSync(source, 'utf8')));

try {
  const { payload, protectedHeader } = await jwtVerify(token, keys, {
    issuer,
    audience,
    algorithms: ['ES256'],
  });
  console.log(JSON.stringify({ header: protectedHeader, payload }));
} catch (err) {
  console.error(`${err.code ?? 'ERR'}: ${err.message}`);
  process.exit(1);
}
