/**
 * leadctl as users run it, `node bin/leadctl.mjs …` in a child process from the repository root,
 * pointed at a test stack (test/helpers/stack.ts): its Temporal server, its worker's task queue,
 * its ledger database and the tests' payload keys.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../../src/env.js';
import type { Stack } from './stack.js';
import { TEST_PAYLOAD_KEYS } from './temporal.js';

export interface LeadctlRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs leadctl with `config` as LEAD_CONFIG against the stack; resolves once it exits, with how long it took. */
export function leadctl(s: Stack, config: string, ...args: string[]): Promise<LeadctlRun> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'leadctl.mjs'), ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: s.env.address,
        TEMPORAL_NAMESPACE: s.env.namespace ?? 'default',
        TEMPORAL_TASK_QUEUE: s.taskQueue,
        LEAD_CONFIG: config,
        PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
        DATABASE_URL: s.database.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - t0 }));
  });
}
