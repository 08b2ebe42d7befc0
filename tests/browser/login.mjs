// Real-browser sign-in test for portcullis: Debian's Chromium, driven by playwright-core.
//
//   node tests/browser/login.mjs <base_url> <artifact_dir>
//
// <base_url> is the proxy in front of the app (no trailing slash), with the test IdP's accounts
// and a route /ops/ that only the group "ops" may open. The script signs in as bob through the
// IdP's form, checks the identity the app received, opens /ops/ (403 page), signs out with that
// page's button, and checks that "/" asks for a sign-in again. Screenshots and, on failure, the
// page's HTML go to <artifact_dir>. Exit 0 on success, 1 with a message on any failure.
//
// Started by tests/integration/browser.rs. Install: npm ci --prefix tests/browser
// and apt-get install -y chromium (no browser is downloaded: playwright-core only drives it).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { guardRun, openPage, stepLog } from './chromium.mjs';

const USER = 'bob';
const PASSWORD = 'password';
/// Per action and navigation; the whole run is bounded by WATCHDOG_MS.
const STEP_TIMEOUT_MS = 15_000;
const WATCHDOG_MS = 120_000;

const [baseArg, artifactDir] = process.argv.slice(2);
if (!baseArg || !artifactDir) {
  console.error('usage: node tests/browser/login.mjs <base_url> <artifact_dir>');
  process.exit(2);
}
const base = baseArg.replace(/\/+$/, '');
const baseOrigin = new URL(base).origin;
mkdirSync(artifactDir, { recursive: true });

let step = 'start';
const { log, note } = stepLog();
function fail(message) {
  throw new Error(message);
}

const watchdog = guardRun(WATCHDOG_MS, () => step);

let browser;
let context;
let page;
let documents = [];
try {
  step = 'launch Chromium';
  ({ browser, context, page, documents } = await openPage(STEP_TIMEOUT_MS));

  step = 'open the app signed out';
  await page.goto(`${base}/`);
  await expectIdpLoginForm('opening / signed out', documents);
  const idpOrigin = new URL(page.url()).origin;

  step = 'sign in at the IdP';
  await page.locator('input[name="login"]').fill(USER);
  await page.locator('input[name="password"]').fill(PASSWORD);
  await Promise.all([
    page.waitForURL((url) => url.origin === baseOrigin && !url.pathname.startsWith('/oauth2/')),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  const landed = new URL(page.url());
  if (landed.pathname !== '/') fail(`after sign-in the browser is at ${page.url()}, expected ${base}/`);
  // Chromium shows a JSON document inside a <pre> (plus, in new versions, a pretty-print toggle).
  const echo = parseEcho(await page.evaluate(() => (document.querySelector('pre') || document.body).textContent));
  const user = echo.headers?.['x-auth-request-user'];
  if (user !== USER) {
    fail(`the app received X-Auth-Request-User ${JSON.stringify(user)}, expected "${USER}"; headers: ${JSON.stringify(echo.headers)}`);
  }
  note(`signed in: the app received X-Auth-Request-User ${user} (${echo.headers['x-auth-request-email'] || 'no email'})`);

  step = 'open /ops/ (forbidden for bob)';
  const ops = await page.goto(`${base}/ops/`);
  if (ops.status() !== 403) fail(`/ops/ answered ${ops.status()}, expected 403`);
  const heading = await page.getByRole('heading', { level: 1 }).innerText();
  if (heading.trim() !== 'Access denied') fail(`the 403 page's heading is ${JSON.stringify(heading)}, expected "Access denied"`);
  const text = await page.locator('body').innerText();
  if (!text.includes(USER)) fail(`the 403 page does not name the user ${USER}: ${JSON.stringify(text)}`);
  const signOut = page.getByRole('button', { name: 'Sign out', exact: true });
  if ((await signOut.count()) !== 1) fail(`the 403 page has ${await signOut.count()} accessible "Sign out" buttons, expected 1`);
  if (!(await signOut.isVisible()) || !(await signOut.isEnabled())) fail('the "Sign out" button is not visible and enabled');
  await page.screenshot({ path: join(artifactDir, 'forbidden.png'), fullPage: true });
  note(`403 page: "${heading}", names ${USER}, has a "Sign out" button (forbidden.png)`);

  step = 'sign out with the 403 page\'s button (portcullis, then the IdP)';
  // OIDC_POST_LOGOUT_REDIRECT_URL is set: portcullis deletes its session and sends the browser
  // to the IdP's end-session endpoint, which asks for confirmation and comes back.
  await Promise.all([
    page.waitForURL((url) => url.origin === idpOrigin),
    signOut.click(),
  ]);
  await Promise.all([
    page.waitForURL((url) => url.origin === new URL(base).origin && url.pathname === '/oauth2/signed_out'),
    page.getByRole('button', { name: 'Yes, sign me out' }).click(),
  ]);
  await page.waitForLoadState('load');
  const outHeading = await page.getByRole('heading', { level: 1 }).innerText();
  if (outHeading.trim() !== 'Signed out') fail(`the sign-out page's heading is ${JSON.stringify(outHeading)}, expected "Signed out"`);
  const again = page.getByRole('link', { name: 'Sign in again' });
  if ((await again.count()) !== 1) fail('the signed-out page has no "Sign in again" link');
  const left = (await context.cookies(base)).filter((c) => c.name === '_portcullis');
  if (left.length) fail(`the session cookie is still in the browser after sign-out: ${JSON.stringify(left)}`);
  await page.screenshot({ path: join(artifactDir, 'signed-out.png'), fullPage: true });
  note('signed out: "Signed out" page with a "Sign in again" link, session cookie gone (signed-out.png)');

  step = 'open / again after sign-out';
  documents.length = 0;
  await page.goto(`${base}/`);
  await page.waitForLoadState('load');
  // portcullis no longer knows the browser: it must send it to the IdP's authorization endpoint.
  const authorization = documents.find((d) => {
    const url = new URL(d.split(' ')[1]);
    return url.origin === idpOrigin && url.pathname === '/auth';
  });
  if (!authorization) {
    fail(`after sign-out, / did not send the browser to the IdP (${idpOrigin}/auth); documents loaded:\n    ${documents.join('\n    ')}`);
  }
  // The IdP session ended too, so the IdP must ask again.
  await expectIdpLoginForm('opening / after sign-out', documents);
  await page.screenshot({ path: join(artifactDir, 'signin-again.png'), fullPage: true });
  note('after sign-out / leads to the IdP sign-in form again (signin-again.png)');

  await browser.close();
  clearTimeout(watchdog);
  writeFileSync(join(artifactDir, 'steps.txt'), `${log.join('\n')}\nPASSED\n`);
  console.log('browser test: PASSED');
  process.exit(0);
} catch (err) {
  const message = `browser test FAILED at step "${step}": ${err && err.message ? err.message : err}`;
  console.error(message);
  if (page) {
    try {
      console.error(`  page: ${page.url()}`);
      await page.screenshot({ path: join(artifactDir, 'failure.png'), fullPage: true, timeout: 5_000 });
      writeFileSync(join(artifactDir, 'failure.html'), await page.content());
      console.error(`  screenshot and HTML: ${join(artifactDir, 'failure.png')}, failure.html`);
    } catch (artifactErr) {
      console.error(`  (no failure screenshot: ${artifactErr.message})`);
    }
  }
  writeFileSync(join(artifactDir, 'steps.txt'), `${log.join('\n')}\n${message}\n`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

/// The browser must be on the IdP (another origin), showing its sign-in form.
async function expectIdpLoginForm(when, documents) {
  await page.waitForLoadState('load');
  const url = new URL(page.url());
  const chain = documents.length ? `\n  documents loaded:\n    ${documents.join('\n    ')}` : '';
  if (url.origin === baseOrigin) {
    fail(`${when}: the browser stayed on ${page.url()} instead of going to the IdP's sign-in form${chain}`);
  }
  if (!url.pathname.startsWith('/interaction/')) {
    fail(`${when}: the browser is at ${page.url()}, not the IdP's sign-in form${chain}`);
  }
  await page.locator('input[name="login"]').waitFor({ state: 'visible' });
  await page.locator('input[name="password"]').waitFor({ state: 'visible' });
  note(`${when}: IdP sign-in form at ${url.origin}${url.pathname}`);
}

function parseEcho(text) {
  try {
    return JSON.parse(text);
  } catch {
    return fail(`the app's page is not the echo app's JSON: ${text.slice(0, 300)}`);
  }
}
