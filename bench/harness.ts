/**
 * The stack every bench mode runs on: a temp folder, the SMTP capture (with a watch on handoff
 * mail), the dev server, the worker child with RSS samplers, and a LeadService on the worker's
 * ledger; torn down when the mode is done. Also the race against the worker dying and the retry
 * of transient gRPC errors that every phase uses.
 */
import type { Client } from '@temporalio/client';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../src/config-file.js';
import { ROOT } from '../src/env.js';
import { LeadService } from '../src/lead-service.js';
import { openDatabase } from '../src/ledger/database.js';
import { LeadLedger } from '../src/ledger/ledger.js';
import { startSmtp, type Captured, type SmtpCapture } from '../test/helpers/smtp.js';
import { Cleanups, RssSampler } from './proc.js';
import { type DevServer, startDevServer, startWorkerChild, TASK_QUEUE, type WorkerChild } from './stack.js';
import { sleep } from './workload.js';

// ---- the stack every mode runs on ------------------------------------------------------------

export interface Stack {
  dir: string;
  server: DevServer;
  smtp: SmtpCapture;
  worker: WorkerChild;
  workerRss: RssSampler;
  serverRss: RssSampler;
  client: Client;
  service: LeadService;
  mail: MailWatch;
  log: (s: string) => void;
  /** Rejects if the worker child dies: every phase races against it. */
  workerDied: Promise<never>;
}

/** Records when mail arrives; handoff mail is indexed by lead id. `retain: false` keeps only counts. */
class MailWatch {
  total = 0;
  handoffs = 0;
  private handoffAt = new Map<string, number>();
  private waiters = new Map<string, (t: number) => void>();
  constructor(smtp: SmtpCapture, retain: boolean) {
    const messages = smtp.messages;
    messages.push = (...items: Captured[]) => {
      const t = performance.now();
      for (const m of items) this.record(m, t);
      return retain ? Array.prototype.push.apply(messages, items) : messages.length;
    };
  }
  private record(m: Captured, t: number) {
    this.total++;
    if (m.headers.get('x-lead-handoff') !== '1') return;
    this.handoffs++;
    const leadId = String(m.headers.get('x-lead-id') ?? '');
    if (!this.handoffAt.has(leadId)) this.handoffAt.set(leadId, t);
    this.waiters.get(leadId)?.(t);
    this.waiters.delete(leadId);
  }
  /** performance.now() of the first handoff mail for the lead after `since`, or undefined on timeout. */
  handoff(leadId: string, since: number, timeoutMs: number): Promise<number | undefined> {
    const seen = this.handoffAt.get(leadId);
    if (seen !== undefined && seen >= since) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(leadId);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(leadId, (t) => {
        clearTimeout(timer);
        resolve(t);
      });
    });
  }
}

export async function withStack<T>(
  o: { quiet?: boolean; retainMail: boolean; cacheSize?: number },
  fn: (s: Stack) => Promise<T>,
): Promise<T> {
  const cleanups = new Cleanups();
  const log = (s: string) => {
    if (!o.quiet) process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  };
  const dir = mkdtempSync(join(os.tmpdir(), 'lead-bench-'));
  cleanups.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  try {
    const smtp = await startSmtp();
    cleanups.add('smtp capture', () => smtp.close());
    const mail = new MailWatch(smtp, o.retainMail);
    log(`temp dir ${dir}; SMTP capture ${smtp.url}`);
    const server = await startDevServer(dir, cleanups, log);
    log('dev server up; starting the worker child (bundles the workflows)…');
    const worker = await startWorkerChild({
      dir,
      address: server.address,
      smtpUrl: smtp.url,
      cleanups,
      cacheSize: o.cacheSize,
    });
    log(
      `worker child pid ${worker.pid} ready (config ${worker.configVersion}; cache ${process.env.WORKER_MAX_CACHED_WORKFLOWS ?? o.cacheSize ?? 'default'} workflows)`,
    );
    const workerRss = new RssSampler(worker.pid);
    const serverRss = new RssSampler(server.pid);
    cleanups.add('samplers', () => {
      workerRss.stop();
      serverRss.stop();
    });
    const workerDied = worker.exited.then((code): never => {
      throw new Error(`the worker child exited (code ${code}) in the middle of the bench; see its log above`);
    });
    workerDied.catch(() => undefined);
    // Reads as the API reads: the ledger the worker writes.
    const ledgerDb = await openDatabase({ url: worker.databaseUrl, migrate: false });
    cleanups.add('ledger pool', () => ledgerDb.close());
    const service = new LeadService(
      server.client,
      TASK_QUEUE,
      loadConfigFile(join(ROOT, 'config', 'default.yaml')).config,
      new LeadLedger(ledgerDb.pool),
    );
    return await fn({
      dir,
      server,
      smtp,
      worker,
      workerRss,
      serverRss,
      client: server.client,
      service,
      mail,
      log,
      workerDied,
    });
  } finally {
    await cleanups.runAll();
  }
}

export const race = <T>(s: Stack, p: Promise<T>) => Promise.race([p, s.workerDied]);

/** gRPC codes worth another try: DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE. */
const RETRYABLE = new Set([4, 8, 14]);
export async function withRetry<T>(fn: () => Promise<T>, counters: { retries: number }, attempts = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: number }).code ?? (err as { cause?: { code?: number } }).cause?.code;
      if (i >= attempts || code === undefined || !RETRYABLE.has(code)) throw err;
      counters.retries++;
      await sleep(200 * i);
    }
  }
}
