/**
 * The worker: polls `lead-nurture`, runs leadWorkflow (and the bench's baseline) and their activities.
 * `npm run worker` runs it alone; `createLeadWorker` is what the local stack and the tests use.
 */
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { bundleWorkflowCode, NativeConnection, type WorkflowBundleWithSourceMap, Worker } from '@temporalio/worker';
import nodemailer from 'nodemailer';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createActivities, SMTP_CONNECTIONS } from '../activities/index.js';
import { sqlSendLedger } from '../activities/ledger.js';
import { dataConverter, parsePayloadKeys, PayloadKeyError } from './codec.js';
import { type LoadedConfig, loadConfigFile } from './config-file.js';
import { EXIT_CONFIG, requireSecrets, SecretError, settings, workerTuning } from './env.js';
import { LinkSigner } from './links.js';
import { DatabaseUnreachable, openLedgerDatabase } from './ledger/database.js';
import { LeadLedger } from './ledger/ledger.js';
import { WebhookLog } from './ledger/webhooks.js';
import { checkEndpointSecrets, WebhookSecretError } from './webhooks/send.js';
import { sweepWebhooks } from '../activities/webhooks.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/**
 * The workflow bundle built in a child process (webpack stays out of the worker's memory: the
 * worker's resident size at start fell from about 390 MB when it bundled in-process).
 */
export async function bundleInChildProcess(): Promise<{ codePath: string }> {
  const codePath = join(tmpdir(), `lead-workflows-${process.pid}-${Date.now()}.js`);
  await promisify(execFile)(process.execPath, [
    '--import',
    'tsx',
    fileURLToPath(new URL('../scripts/bundle-workflows.ts', import.meta.url)),
    codePath,
  ]);
  return { codePath };
}

/**
 * Modules loaded once and shared by every workflow in the worker's reusable V8 context, instead of
 * once per cached lead: the pure domain model (no module state but a cache of Intl formatters).
 * The SDK freezes them, so nothing here may import zod, which defines properties lazily: the
 * schemas (lead.ts) are still built per lead.
 */
export const SHARED_WORKFLOW_MODULES = ['lifecycle', 'scoring', 'schedule', 'duration', 'stages'].map((m) =>
  fileURLToPath(new URL(`./domain/${m}.ts`, import.meta.url)),
);

export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    preloadModules: SHARED_WORKFLOW_MODULES,
    logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} } as never,
  });
}

export interface LeadWorkerOptions {
  connection: NativeConnection;
  /** The client the activities use; built with the same dataConverter. */
  client: Client;
  /** src/codec.ts dataConverter(keys): every payload the worker sends is encrypted. */
  dataConverter: DataConverter;
  namespace?: string;
  taskQueue?: string;
  loaded: LoadedConfig;
  smtpUrl: string;
  /** The lead ledger (its database also holds the send ledger, shared by every worker). */
  ledger: LeadLedger;
  links: LinkSigner;
  workflowBundle?: WorkflowBundleWithSourceMap | { codePath: string };
  clock?: () => number;
  /**
   * How often the worker wakes the delivery of webhooks still pending after `webhookSweepAfterMs`
   * (default every 60 s, those pending for 30 s): a worker that died between a ledger write and
   * its wake-up leaves none behind. It also sweeps once at start.
   */
  webhookSweepEveryMs?: number;
  webhookSweepAfterMs?: number;
}

export async function createLeadWorker(o: LeadWorkerOptions): Promise<{ worker: Worker; close: () => void }> {
  const taskQueue = o.taskQueue ?? settings().taskQueue;
  // An endpoint whose secret's variable is unset or malformed stops start-up, naming both.
  checkEndpointSecrets(o.loaded.config.webhooks);
  // Bounded SMTP timeouts: a send that hangs would hold one of the pool's slots (and heartbeat) forever.
  const transport = nodemailer.createTransport(
    o.smtpUrl.includes('?') || !o.smtpUrl.startsWith('smtp')
      ? o.smtpUrl
      : `${o.smtpUrl}?pool=true&maxConnections=${SMTP_CONNECTIONS}&connectionTimeout=10000&greetingTimeout=10000&socketTimeout=30000`,
  );
  const activities = createActivities({
    loaded: o.loaded,
    transport,
    client: o.client,
    ledger: o.ledger,
    sendLedger: sqlSendLedger(o.ledger.pool),
    links: o.links,
    clock: o.clock,
  });
  const bundle = o.workflowBundle ?? (await bundleInChildProcess());
  const worker = await Worker.create({
    connection: o.connection,
    namespace: o.namespace ?? 'default',
    taskQueue,
    activities,
    workflowBundle: bundle,
    dataConverter: o.dataConverter,
    ...workerTuning(), // src/env.ts: sized for 2-core machines (README, Performance)
  });
  if (!o.workflowBundle && 'codePath' in bundle) rmSync(bundle.codePath, { force: true }); // read by Worker.create
  const webhookLog = new WebhookLog(o.ledger.pool);
  const sweep = () =>
    sweepWebhooks(o.client, taskQueue, webhookLog, o.loaded.config.webhooks, o.webhookSweepAfterMs ?? 30_000).catch(
      (err) => console.error(`[worker] webhook sweep: ${(err as Error).message}`),
    );
  const sweeper = o.loaded.config.webhooks.length
    ? setInterval(() => void sweep(), o.webhookSweepEveryMs ?? 60_000).unref()
    : undefined;
  if (sweeper) void sweep();
  return {
    worker,
    close: () => {
      clearInterval(sweeper);
      transport.close();
    },
  };
}

/**
 * Connects to Temporal, waiting with backoff (0.5 s doubling to 10 s, logged) while it is
 * unreachable, as the API does: a worker started before its server, or during a server restart,
 * comes up when the server does instead of exiting.
 */
export async function connectWithRetry(
  address: string,
  log: (line: string) => void = (l) => console.log(l),
  maxDelayMs = 10_000,
): Promise<NativeConnection> {
  for (let attempt = 1, delay = 500; ; attempt++, delay = Math.min(delay * 2, maxDelayMs)) {
    try {
      const connection = await NativeConnection.connect({ address });
      if (attempt > 1) log(`[worker] connected to Temporal at ${address} after ${attempt} attempts`);
      return connection;
    } catch (err) {
      log(
        `[worker] Temporal at ${address} is unreachable (${(err as Error).message?.split('\n')[0]}); retrying in ${delay / 1000}s (attempt ${attempt})`,
      );
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

export async function runWorker(): Promise<void> {
  const s = settings();
  const secrets = requireSecrets(['LINK_SECRET', 'PAYLOAD_KEYS']);
  const converter = dataConverter(parsePayloadKeys(secrets.PAYLOAD_KEYS));
  const links = new LinkSigner(secrets.LINK_SECRET, s.publicUrl);
  const loaded = loadConfigFile();
  process.umask(0o077); // an embedded ledger holds addresses: files 0600, folders 0700
  // The ledger first: a database that cannot be reached stops start-up with one line.
  const database = await openLedgerDatabase(s, (l) => console.log(`[worker] ${l}`));
  const connection = await connectWithRetry(s.address);
  const client = new Client({
    connection: await Connection.connect({ address: s.address }),
    namespace: s.namespace,
    dataConverter: converter,
  });
  const { worker, close } = await createLeadWorker({
    connection,
    client,
    dataConverter: converter,
    namespace: s.namespace,
    taskQueue: s.taskQueue,
    loaded,
    smtpUrl: s.smtpUrl,
    ledger: new LeadLedger(database.pool),
    links,
  });
  console.log(
    `[worker] task queue ${s.taskQueue} on ${s.address} (${s.namespace}); config ${loaded.file} version ${loaded.version}; SMTP ${s.smtpUrl}; ledger ${database.describe}; payloads encrypted`,
  );
  try {
    await worker.run();
  } finally {
    close();
    await connection.close();
    await database.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runWorker().catch((err) => {
    if (err instanceof DatabaseUnreachable) {
      console.error(`[worker] refusing to start: ${err.message}`);
      process.exit(1);
    }
    const refused =
      err instanceof SecretError ||
      err instanceof WebhookSecretError ||
      err instanceof PayloadKeyError ||
      (err instanceof Error && err.message.startsWith('LINK_SECRET'));
    console.error(refused ? `[worker] refusing to start: ${err.message}` : err instanceof Error ? err.message : err);
    process.exit(refused ? EXIT_CONFIG : 1);
  });
}
