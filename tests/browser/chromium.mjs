// What both browser tests start with: Debian's Chromium, headless, driven by playwright-core
// (no browser is downloaded), one page with bounded waits, and the documents it loads, so that
// a failure can show the redirect chain.

import { chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/// Launches Chromium and opens one page whose actions and navigations each wait at most
/// `stepTimeoutMs`. Returns the browser (to close), its context (cookies), the page and the
/// documents loaded so far.
export async function openPage(stepTimeoutMs) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: stepTimeoutMs,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  const page = await context.newPage();
  page.setDefaultTimeout(stepTimeoutMs);
  page.setDefaultNavigationTimeout(stepTimeoutMs);
  const documents = [];
  page.on('response', (response) => {
    if (response.request().resourceType() === 'document') {
      documents.push(`${response.request().method()} ${response.url()} -> ${response.status()}`);
    }
  });
  return { browser, context, page, documents };
}
