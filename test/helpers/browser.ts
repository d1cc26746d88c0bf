/**
 * Debian's Chromium for the browser tests (playwright-core drives it): where it is, the flags it
 * runs with here (no sandbox as root, no GPU, nothing fetched from the network), and the check
 * that fails a test with the way to install it, so a missing browser never skips a test; and
 * the servers a browser test file runs against.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { type Stack, startStack } from './stack.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const haveChromium = () => existsSync(CHROMIUM);

/** Fails (never skips) when Chromium is missing, saying how to install it. */
export function assertChromium(): void {
  assert.ok(
    haveChromium(),
    `Chromium not found at ${CHROMIUM}: install it with \`apt-get update && apt-get install -y chromium\` (or set CHROMIUM_PATH)`,
  );
}

/** A headless Chromium; launch() gives every run a fresh temporary profile (user-data-dir), removed on close. */
export const launchChromium = (): Promise<Browser> =>
  chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });

/**
 * A browser test file's servers: the stack with its API listening on loopback and a Chromium,
 * started in the suite's `before` and closed in its `after`. Its getters fail the test that reads
 * them when Chromium is missing (saying how to install it), so no test skips.
 */
export function useBrowserStack(): { readonly stack: Stack; readonly browser: Browser; readonly base: string } {
  let stack: Stack | undefined;
  let browser: Browser | undefined;
  let base = '';
  before(async () => {
    if (!haveChromium()) return; // the tests fail with the reason
    stack = await startStack({ api: true });
    await stack.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(stack.app.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });
  const ready = () => {
    assertChromium();
    assert.ok(stack && browser, 'the stack and the browser started');
    return { stack, browser };
  };
  return {
    get stack() {
      return ready().stack;
    },
    get browser() {
      return ready().browser;
    },
    get base() {
      ready();
      return base;
    },
  };
}
