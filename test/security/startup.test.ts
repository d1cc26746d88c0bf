/**
 * How `npm run api` and `npm run worker` start (their tsx entry points, as the npm scripts run
 * them): no secret has a default, so each refuses to start without LINK_SECRET, API_TOKEN (api)
 * and PAYLOAD_KEYS, with exit code 2 and one line naming the variable (CONTRACT.md §Security);
 * and the worker, started while Temporal is not up yet, waits with backoff (and says so) instead
 * of exiting, then serves once a server appears on its address.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LeadService } from '../../src/lead-service.js';
import { ROOT } from '../../src/env.js';
import { devServerEnv, TEST_LINK_SECRET, TEST_PAYLOAD_KEYS, testConfig } from '../helpers/temporal.js';
import { freePort } from '../../bench/proc.js';

const ENTRY = { api: 'src/api/main.ts', worker: 'src/worker.ts' } as const;
const SECRETS = { LINK_SECRET: TEST_LINK_SECRET, API_TOKEN: 'startup-test-token', PAYLOAD_KEYS: TEST_PAYLOAD_KEYS };

const children = new Set<ChildProcess>();

function start(what: keyof typeof ENTRY, env: NodeJS.ProcessEnv) {
  const base = { ...process.env };
  for (const k of [...Object.keys(SECRETS), 'TEMPORAL_ADDRESS', 'DATA_DIR']) delete base[k];
  const proc = spawn(process.execPath, ['--import', 'tsx', ENTRY[what]], {
    cwd: ROOT,
    env: { ...base, API_LOG: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) =>
    proc.once('exit', (code) => {
      children.delete(proc);
      r(code);
    }),
  );
  return { proc, exited, out: () => stdout, err: () => stderr };
}

/** Runs an entry point that should refuse; kills it after 60 s if it does not. */
async function refused(
  what: keyof typeof ENTRY,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const c = start(what, { TEMPORAL_ADDRESS: '127.0.0.1:1', API_PORT: String(await freePort()), ...env });
  const timer = setTimeout(() => c.proc.kill('SIGKILL'), 60_000);
  const code = await c.exited;
  clearTimeout(timer);
  return { code, stderr: c.err(), stdout: c.out() };
}

describe('start-up of npm run api / npm run worker', () => {
  let env: TestWorkflowEnvironment | undefined;
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await env?.teardown();
  });

  const cases: [keyof typeof ENTRY, keyof typeof SECRETS][] = [
    ['api', 'LINK_SECRET'],
    ['api', 'API_TOKEN'],
    ['api', 'PAYLOAD_KEYS'],
    ['worker', 'LINK_SECRET'],
    ['worker', 'PAYLOAD_KEYS'],
  ];
  for (const [what, missing] of cases) {
    it(`${what} refuses to start without ${missing}: exit 2, one line naming it`, async () => {
      const { [missing]: _gone, ...rest } = SECRETS;
      const r = await refused(what, rest);
      assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line:\n${r.stderr}`);
      assert.match(lines[0]!, new RegExp(`^\\[${what}\\] refusing to start: ${missing} is not set`));
      assert.ok(!r.stdout.includes('listening') && !r.stdout.includes('task queue'), 'it did not start');
    });
  }

  it('refuses a DATABASE_URL that cannot be reached: one line naming it without its password, exit 1', async () => {
    const port = await freePort();
    for (const what of ['api', 'worker'] as const) {
      const r = await refused(what, { ...SECRETS, DATABASE_URL: `postgres://lead:s3cret-pw@127.0.0.1:${port}/ledger` });
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line:\n${r.stderr}`);
      assert.match(
        lines[0]!,
        new RegExp(
          `^\\[${what}\\] refusing to start: the lead ledger database postgres://lead@127\\.0\\.0\\.1:${port}/ledger is not reachable`,
        ),
      );
      assert.ok(!r.stderr.includes('s3cret-pw'), 'the password is not printed');
      assert.ok(!r.stdout.includes('listening') && !r.stdout.includes('task queue'), 'it did not start');
    }
  });

  it('refuses a malformed PAYLOAD_KEYS or a short LINK_SECRET, naming it, without printing the key', async () => {
    const badKey = `k1:${Buffer.alloc(16, 5).toString('base64')}`;
    for (const what of ['api', 'worker'] as const) {
      const r = await refused(what, { ...SECRETS, PAYLOAD_KEYS: badKey });
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr.trim(),
        new RegExp(
          `^\\[${what}\\] refusing to start: PAYLOAD_KEYS entry 1 \\(key id "k1"\\): the key must be 32 bytes`,
        ),
      );
      assert.ok(!r.stderr.includes(badKey.slice(3)), 'the key is not printed');
      const short = await refused(what, { ...SECRETS, LINK_SECRET: 'short' });
      assert.equal(short.code, 2, short.stderr);
      assert.match(
        short.stderr.trim(),
        new RegExp(`^\\[${what}\\] refusing to start: LINK_SECRET must be at least 16 characters`),
      );
    }
  });

  it('the worker waits for Temporal with backoff, logging it, and serves once a server comes up on its address', async () => {
    const port = await freePort();
    const taskQueue = `startup-${process.pid}`;
    const w = start('worker', {
      ...SECRETS,
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
      TEMPORAL_TASK_QUEUE: taskQueue,
      SMTP_URL: 'smtp://127.0.0.1:1',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'startup-data-')),
      DATABASE_URL: '', // its own embedded ledger, in a temp folder
    });
    let gone: number | null | undefined;
    void w.exited.then((c) => (gone = c));
    const waitFor = async (what: string, re: RegExp, ms: number) => {
      const until = Date.now() + ms;
      while (!re.test(w.out())) {
        assert.equal(
          gone,
          undefined,
          `the worker exited (code ${gone}) while waiting for ${what}:\n${w.out()}\n${w.err()}`,
        );
        assert.ok(Date.now() < until, `no ${what} within ${ms / 1000}s:\n${w.out()}\n${w.err()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await waitFor(
      'retry log line',
      new RegExp(`\\[worker\\] Temporal at 127\\.0\\.0\\.1:${port} is unreachable .*retrying in 1s \\(attempt 2\\)`),
      60_000,
    );
    await new Promise((r) => setTimeout(r, 2_000)); // still down a while longer: it keeps waiting
    assert.equal(gone, undefined, 'still running while Temporal is down');
    env = await devServerEnv([], port);
    await waitFor(
      'the worker coming up',
      /\[worker\] task queue startup-\d+ on 127\.0\.0\.1:\d+ .*payloads encrypted/,
      120_000,
    );
    assert.match(w.out(), /\[worker\] connected to Temporal at 127\.0\.0\.1:\d+ after \d+ attempts/);
    // It serves: a lead's first workflow task runs there and its state query answers.
    const loaded = testConfig();
    const service = new LeadService(env.client, taskQueue, loaded.config);
    await service.upsertLead({ leadId: 'startup-1', email: 'startup@example.com', country: 'US' });
    const until = Date.now() + 60_000;
    for (;;) {
      try {
        const state = await service.getState('startup-1');
        assert.equal(state.leadId, 'startup-1');
        break;
      } catch (err) {
        if (Date.now() > until) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    w.proc.kill('SIGTERM');
    const code = await Promise.race([w.exited, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
    if (code === 'timeout') w.proc.kill('SIGKILL');
  });
});
