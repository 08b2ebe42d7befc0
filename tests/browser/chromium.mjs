// What both browser tests start with: Debian's Chromium, headless, driven by playwright-core
// (no browser is downloaded), one page with bounded waits, and the documents it loads, so that
// a failure can show the redirect chain.

import { existsSync } from 'node:fs';
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

/// Exits at once when Chromium is not installed, and after `watchdogMs` whatever happens, naming
/// the step the run was at (`currentStep()`). Returns the timer, to clear on success.
export function guardRun(watchdogMs, currentStep) {
  if (!existsSync(CHROMIUM)) {
    console.error(`browser test: ${CHROMIUM} is missing; install it with: apt-get install -y chromium`);
    process.exit(1);
  }
  const watchdog = setTimeout(() => {
    console.error(`browser test FAILED: no result after ${watchdogMs / 1000} s (at step: ${currentStep()})`);
    process.exit(1);
  }, watchdogMs);
  watchdog.unref();
  return watchdog;
}

/// The steps a run has passed, printed as they happen and kept for steps.txt.
export function stepLog() {
  const log = [];
  const note = (text) => {
    log.push(text);
    console.log(`browser test: ${text}`);
  };
  return { log, note };
}
