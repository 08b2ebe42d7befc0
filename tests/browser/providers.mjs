// Real-browser test of the sign-in page of several identity providers: Debian's Chromium,
// driven by playwright-core.
//
//   node tests/browser/providers.mjs <base_url> <artifact_dir> <expectations_json>
//
// <base_url> is the proxy in front of the app (no trailing slash); portcullis there has several
// providers (OIDC_PROVIDERS), so a signed-out browser opening a page lands on the sign-in page.
// <expectations_json>: {"title": SIGN_IN_TITLE, "buttons": ["Sign in with ...", ...] (in order),
// "choose": the button to click, "idp_origin": that provider's IdP, "provider": its name,
// "user", "password", "email": what the app must then receive}.
//
// The script opens /docs/?from=browser, checks it is on portcullis' sign-in page (heading, one
// accessible link per provider and no other), saves sign-in.png, clicks the chosen provider,
// signs in at that IdP's form and checks the app received that provider and user. Screenshots
// and, on failure, the page's HTML go to <artifact_dir>. Exit 0 on success, 1 with a message.
//
// Started by tests/integration/browser.rs. Install: npm ci --prefix tests/browser
// and apt-get install -y chromium (no browser is downloaded: playwright-core only drives it).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { guardRun, openPage, stepLog } from './chromium.mjs';

/// Per action and navigation; the whole run is bounded by WATCHDOG_MS.
const STEP_TIMEOUT_MS = 15_000;
const WATCHDOG_MS = 90_000;

const [baseArg, artifactDir, expectationsArg] = process.argv.slice(2);
if (!baseArg || !artifactDir || !expectationsArg) {
  console.error('usage: node tests/browser/providers.mjs <base_url> <artifact_dir> <expectations_json>');
  process.exit(2);
}
const base = baseArg.replace(/\/+$/, '');
const baseOrigin = new URL(base).origin;
const expect = JSON.parse(expectationsArg);
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
  const chain = () => `\n  documents loaded:\n    ${documents.join('\n    ')}`;

  step = 'open a protected page signed out';
  const opened = await page.goto(`${base}/docs/?from=browser`);
  await page.waitForLoadState('load');
  const at = new URL(page.url());
  if (at.origin !== baseOrigin || at.pathname !== '/oauth2/start') {
    fail(`signed out, /docs/ led to ${page.url()}, not portcullis' sign-in page${chain()}`);
  }
  if (opened.status() !== 200) fail(`the sign-in page answered ${opened.status()}`);
  if (at.searchParams.get('rd') !== `${base}/docs/?from=browser`) {
    fail(`the sign-in page's rd is ${JSON.stringify(at.searchParams.get('rd'))}`);
  }
  await page.screenshot({ path: join(artifactDir, 'sign-in.png'), fullPage: true });

  step = 'read the sign-in page';
  const heading = (await page.getByRole('heading', { level: 1 }).innerText()).trim();
  if (heading !== expect.title) fail(`the sign-in page's heading is ${JSON.stringify(heading)}, expected ${JSON.stringify(expect.title)}`);
  const title = await page.title();
  if (!title.startsWith(expect.title)) fail(`the document title is ${JSON.stringify(title)}`);
  const nav = page.getByRole('navigation', { name: 'Identity providers' });
  if ((await nav.count()) !== 1) fail('no navigation landmark "Identity providers"');
  const links = nav.getByRole('link');
  const names = [];
  for (let i = 0; i < (await links.count()); i += 1) {
    names.push((await links.nth(i).innerText()).trim());
  }
  if (JSON.stringify(names) !== JSON.stringify(expect.buttons)) {
    fail(`the sign-in page's links are ${JSON.stringify(names)}, expected ${JSON.stringify(expect.buttons)}`);
  }
  for (const name of expect.buttons) {
    const button = page.getByRole('link', { name, exact: true });
    if ((await button.count()) !== 1) fail(`${await button.count()} accessible links named ${JSON.stringify(name)}, expected 1`);
    if (!(await button.isVisible())) fail(`the link ${JSON.stringify(name)} is not visible`);
    const box = await button.boundingBox();
    if (!box || box.width < 100 || box.height < 20) fail(`the link ${JSON.stringify(name)} is not shown as a button: ${JSON.stringify(box)}`);
  }
  note(`sign-in page: "${heading}", links ${names.map((n) => JSON.stringify(n)).join(', ')} (sign-in.png)`);

  step = `click ${JSON.stringify(expect.choose)}`;
  documents.length = 0;
  await Promise.all([
    page.waitForURL((url) => url.origin === expect.idp_origin),
    page.getByRole('link', { name: expect.choose, exact: true }).click(),
  ]);
  await page.waitForLoadState('load');
  if (!new URL(page.url()).pathname.startsWith('/interaction/')) {
    fail(`after ${JSON.stringify(expect.choose)} the browser is at ${page.url()}, not the IdP's sign-in form${chain()}`);
  }
  await page.locator('input[name="login"]').waitFor({ state: 'visible' });
  note(`${JSON.stringify(expect.choose)} led to the sign-in form of ${expect.idp_origin}`);

  step = 'sign in at the IdP';
  await page.locator('input[name="login"]').fill(expect.user);
  await page.locator('input[name="password"]').fill(expect.password);
  await Promise.all([
    page.waitForURL((url) => url.origin === baseOrigin && !url.pathname.startsWith('/oauth2/')),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  const landed = new URL(page.url());
  if (landed.pathname !== '/docs/' || landed.search !== '?from=browser') {
    fail(`after sign-in the browser is at ${page.url()}, expected ${base}/docs/?from=browser${chain()}`);
  }
  const callback = documents.find((d) => new URL(d.split(' ')[1]).pathname === `/oauth2/callback/${expect.provider}`);
  if (!callback) fail(`the sign-in did not come back to /oauth2/callback/${expect.provider}${chain()}`);
  const text = await page.evaluate(() => (document.querySelector('pre') || document.body).textContent);
  let echo;
  try {
    echo = JSON.parse(text);
  } catch {
    fail(`the app's page is not the echo app's JSON: ${text.slice(0, 300)}`);
  }
  const headers = echo.headers || {};
  for (const [name, wanted] of [
    ['x-auth-request-provider', expect.provider],
    ['x-auth-request-user', expect.user],
    ['x-auth-request-email', expect.email],
  ]) {
    if (headers[name] !== wanted) fail(`the app received ${name} ${JSON.stringify(headers[name])}, expected ${JSON.stringify(wanted)}; headers: ${JSON.stringify(headers)}`);
  }
  await page.screenshot({ path: join(artifactDir, 'landed.png'), fullPage: true });
  note(`signed in: the app received ${expect.user} (${expect.email}) of provider ${expect.provider} (landed.png)`);

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
