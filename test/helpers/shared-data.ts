/** The real data sets in shared/data/, which sits beside the repository (CI's clone included). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../src/env.js';

export function sharedData(name: string): string {
  const candidates = [process.env.SHARED_DIR && join(process.env.SHARED_DIR, 'data', name), join(ROOT, '..', 'shared', 'data', name)].filter(Boolean) as string[];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`shared data ${name} not found (looked in ${candidates.join(', ')}; set SHARED_DIR)`);
  return found;
}
