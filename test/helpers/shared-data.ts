/**
 * The real data sets in shared/data/, which sits beside the repository (CI's clone included), or
 * beside the checkout this one was cloned from (`git clone . /tmp/fresh-check`), or in SHARED_DIR.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { ROOT } from '../../src/env.js';

function originCheckout(): string | undefined {
  try {
    const url = execFileSync('git', ['config', '--get', 'remote.origin.url'], { cwd: ROOT, encoding: 'utf8' }).trim();
    return isAbsolute(url) ? url : undefined;
  } catch {
    return undefined;
  }
}

export function sharedData(name: string): string {
  const origin = originCheckout();
  const candidates = [
    process.env.SHARED_DIR && join(process.env.SHARED_DIR, 'data', name),
    join(ROOT, '..', 'shared', 'data', name),
    origin && join(resolve(origin), '..', 'shared', 'data', name),
  ].filter(Boolean) as string[];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`shared data ${name} not found (looked in ${candidates.join(', ')}; set SHARED_DIR)`);
  return found;
}
