/**
 * The worker: polls `lead-nurture`, runs leadWorkflow (and the bench's baseline) and their activities.
 * `npm run worker` runs it alone; `createLeadWorker` is what the local stack and the tests use.
 */
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, type WorkflowBundleWithSourceMap, Worker } from '@temporalio/worker';
import nodemailer from 'nodemailer';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createActivities, SMTP_CONNECTIONS } from '../activities/index.js';
import { fileLedger } from '../activities/ledger.js';
import { type LoadedConfig, loadConfigFile } from './config-file.js';
import { settings } from './env.js';
import { LinkSigner } from './links.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/**
 * The workflow bundle built in a child process (webpack stays out of the worker's memory: the
 * worker's resident size at start fell from about 390 MB when it bundled in-process).
 */
export async function bundleInChildProcess(): Promise<{ codePath: string }> {
  const codePath = join(tmpdir(), `lead-workflows-${process.pid}-${Date.now()}.js`);
  await promisify(execFile)(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../scripts/bundle-workflows.ts', import.meta.url)), codePath]);
  return { codePath };
}

/**
 * Modules loaded once and shared by every workflow in the worker's reusable V8 context, instead of
 * once per cached lead: the pure domain model (no module state but a cache of Intl formatters).
 * The SDK freezes them, so nothing here may import zod, which defines properties lazily: the
 * schemas (lead.ts) are still built per lead.
 */
export const SHARED_WORKFLOW_MODULES = ['model', 'scoring', 'schedule', 'duration', 'stages']
  .map((m) => fileURLToPath(new URL(`./domain/${m}.ts`, import.meta.url)));

export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, preloadModules: SHARED_WORKFLOW_MODULES, logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} } as never });
}

export interface LeadWorkerOptions {
  connection: NativeConnection;
  client: Client;
  namespace?: string;
  taskQueue?: string;
  loaded: LoadedConfig;
  smtpUrl: string;
  ledgerDir: string;
  links: LinkSigner;
  workflowBundle?: WorkflowBundleWithSourceMap | { codePath: string };
  clock?: () => number;
}

export async function createLeadWorker(o: LeadWorkerOptions): Promise<{ worker: Worker; close: () => void }> {
  const taskQueue = o.taskQueue ?? settings().taskQueue;
  // Bounded SMTP timeouts: a send that hangs would hold one of the pool's slots (and heartbeat) forever.
  const transport = nodemailer.createTransport(o.smtpUrl.includes('?') || !o.smtpUrl.startsWith('smtp') ? o.smtpUrl : `${o.smtpUrl}?pool=true&maxConnections=${SMTP_CONNECTIONS}&connectionTimeout=10000&greetingTimeout=10000&socketTimeout=30000`);
  const activities = createActivities({
    loaded: o.loaded, transport, client: o.client, ledger: fileLedger(o.ledgerDir), links: o.links, clock: o.clock,
  });
  const bundle = o.workflowBundle ?? await bundleInChildProcess();
  const worker = await Worker.create({
    connection: o.connection,
    namespace: o.namespace ?? 'default',
    taskQueue,
    activities,
    workflowBundle: bundle,
    // Tuned on 2-core machines (see README, Performance): a cached lead costs about 1.5 MB, so the
    // cache is sized by memory for the leads active at one moment, not by the number of live
    // leads (an evicted lead is replayed from history when it wakes); more concurrent workflow
    // tasks than the cores can run only makes them queue inside the worker until they time out.
    maxCachedWorkflows: Number(process.env.WORKER_MAX_CACHED_WORKFLOWS ?? 50),
    maxConcurrentWorkflowTaskExecutions: Number(process.env.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS ?? 20),
    maxConcurrentActivityTaskExecutions: Number(process.env.WORKER_MAX_CONCURRENT_ACTIVITIES ?? 50),
    maxConcurrentLocalActivityExecutions: Number(process.env.WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES ?? 50),
  });
  if (!o.workflowBundle && 'codePath' in bundle) rmSync(bundle.codePath, { force: true }); // read by Worker.create
  return { worker, close: () => transport.close() };
}

export async function runWorker(): Promise<void> {
  const s = settings();
  const loaded = loadConfigFile();
  const connection = await NativeConnection.connect({ address: s.address });
  const client = new Client({ connection: await Connection.connect({ address: s.address }), namespace: s.namespace });
  const { worker, close } = await createLeadWorker({
    connection, client, namespace: s.namespace, taskQueue: s.taskQueue, loaded, smtpUrl: s.smtpUrl, ledgerDir: s.ledgerDir,
    links: new LinkSigner(s.linkSecret, s.publicUrl),
  });
  console.log(`[worker] task queue ${s.taskQueue} on ${s.address} (${s.namespace}); config ${loaded.file} version ${loaded.version}; SMTP ${s.smtpUrl}`);
  try {
    await worker.run();
  } finally {
    close();
    await connection.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runWorker().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
