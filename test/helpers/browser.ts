/**
 * Debian's Chromium for the browser tests (playwright-core drives it): where it is, the flags it
 * runs with here (no sandbox as root, no GPU, nothing fetched from the network), and the check
 * that fails a test with the way to install it, so a missing browser never skips a test.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

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
