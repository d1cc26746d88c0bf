/**
 * The worker is killed (SIGKILL) in the middle of sending, on the dev server, and a new worker
 * process takes over: every due step reaches the SMTP server once, none twice, none lost.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { devServerEnv, startSmtp } from '../helpers/temporal.js';
import type { SmtpCapture } from '../helpers/smtp.js';
import { startLead } from '../helpers/leads.js';

let env: TestWorkflowEnvironment;
let smtp: SmtpCapture;
const children: ChildProcess[] = [];
before(async () => {
  env = await devServerEnv();
  smtp = await startSmtp();
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await env?.teardown();
  await smtp?.close();
});

function startWorker(taskQueue: string, ledgerDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'helpers', 'worker-child.ts')], {
    env: { ...process.env, TEMPORAL_ADDRESS: env.address, TEMPORAL_TASK_QUEUE: taskQueue, SMTP_URL: smtp.url, SEND_LEDGER_DIR: ledgerDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => String(d).includes('worker ready') && resolve(child));
    child.on('exit', (code) => reject(new Error(`worker exited early (${code})`)));
  });
}

test('a worker killed mid-send: every welcome mail arrives exactly once', async () => {
  const taskQueue = 'crash-test';
  const ledgerDir = mkdtempSync(join(tmpdir(), 'ledger-'));
  const LEADS = 40;
  smtp.delayMs = 150; // each message takes a while to be accepted, so the kill lands mid-send
  const first = await startWorker(taskQueue, ledgerDir);
  for (let i = 0; i < LEADS; i++) {
    await startLead(env.client, taskQueue, { leadId: `crash-${i}`, email: `crash-${i}@buyer.example`, country: 'US' });
  }
  await smtp.waitFor((m) => m.length >= 8, 60_000);
  first.kill('SIGKILL');
  const atKill = smtp.messages.length;
  await new Promise((r) => first.once('exit', r));
  await startWorker(taskQueue, ledgerDir);
  await smtp.waitFor((m) => new Set(m.map((x) => x.messageId)).size >= LEADS, 120_000);
  await new Promise((r) => setTimeout(r, 3_000)); // anything sent twice would show up by now
  const ids = smtp.messages.map((m) => m.messageId);
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  console.log(`crash test: ${atKill} mails before the kill, ${ids.length} in all, ${counts.size} distinct`);
  assert.equal(counts.size, LEADS, 'every lead got its welcome mail');
  assert.deepEqual([...counts.entries()].filter(([, n]) => n > 1), [], 'no mail twice');
  assert.ok(atKill < LEADS, 'the kill happened before all mails were out');
});
