/**
 * The stack the chaos and fuzz suites break: a Temporal dev server (bench/stack.ts; SQLite file in
 * a temp folder, restartable on the same port and file), the recording SMTP server, and the worker
 * and the API as the production entry points (`src/worker.ts`, `src/api/main.ts`) in child
 * processes, so a SIGKILL is a real crash. Secrets are generated per run and passed to both
 * (LINK_SECRET, API_TOKEN, PAYLOAD_KEYS: the entry points refuse to start without them).
 */
import { type Database, openDatabase } from '../src/ledger/database.js';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ROOT, WORKER_MALLOC_ARENA_MAX } from '../src/env.js';
import { Cleanups, freePort } from '../bench/proc.js';
import { type DevServer, startDevServer, tail, TASK_QUEUE, terminate } from '../bench/stack.js';
import { type RecordingSmtp, startRecordingSmtp } from './smtp.js';

export interface Proc {
  child: ChildProcess;
  pid: number;
  logFile: string;
}

export interface ChaosStack {
  dir: string;
  cleanups: Cleanups;
  temporal: DevServer;
  smtp: RecordingSmtp;
  apiUrl: string;
  token: string;
  linkSecret: string;
  /** The lead ledger's database (embedded, hosted by this process), shared by the worker and the API. */
  database: Database;
  env: NodeJS.ProcessEnv;
  worker?: Proc;
  api?: Proc;
  workerLogs: string[];
  startWorker(): Promise<Proc>;
  killWorker(): Promise<void>;
  startApi(): Promise<Proc>;
  killApi(): Promise<void>;
  stopTemporal(): Promise<void>;
  startTemporal(): Promise<void>;
  close(): Promise<void>;
}

export interface StackOptions {
  log?: (s: string) => void;
  /** The worker's sticky cache (default: the production default). */
  cacheSize?: number;
  keepDir?: boolean;
}

/**
 * The default config without the send window and the frequency cap, so that mail goes out at any
 * hour of a run (a run at 18:00 New York would otherwise hold every nurture mail until morning).
 */
function writeConfig(dir: string): string {
  const raw = parse(readFileSync(join(ROOT, 'config', 'default.yaml'), 'utf8'));
  delete raw.email.sendWindow;
  delete raw.email.frequencyCap;
  raw.email.templates = join(ROOT, 'templates');
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(raw));
  return file;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

export async function startChaosStack(o: StackOptions = {}): Promise<ChaosStack> {
  const log = o.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'lead-chaos-'));
  const cleanups = new Cleanups();
  if (!o.keepDir) cleanups.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  try {
    const temporal = await startDevServer(dir, cleanups, log);
    const port = Number(temporal.address.split(':')[1]);
    const smtp = await startRecordingSmtp();
    cleanups.add('smtp', () => smtp.stop());
    const apiPort = await freePort();
    const token = randomBytes(24).toString('base64url');
    const linkSecret = randomBytes(32).toString('base64url');
    const database = await openDatabase({ dataDir: join(dir, 'ledger-host') });
    cleanups.add('ledger', () => database.close());
    const env: NodeJS.ProcessEnv = {
      MALLOC_ARENA_MAX: WORKER_MALLOC_ARENA_MAX,
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: TASK_QUEUE,
      SMTP_URL: smtp.url,
      DATABASE_URL: database.url,
      DATA_DIR: join(dir, 'data'),
      LEAD_CONFIG: writeConfig(dir),
      API_PORT: String(apiPort),
      PUBLIC_URL: `http://127.0.0.1:${apiPort}`,
      API_TOKEN: token,
      LINK_SECRET: linkSecret,
      PAYLOAD_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      API_LOG: '0',
      ...(o.cacheSize ? { WORKER_MAX_CACHED_WORKFLOWS: String(o.cacheSize) } : {}),
    };
    let seq = 0;
    const spawnEntry = (name: string, entry: string): Proc => {
      const logFile = join(dir, `${name}-${++seq}.log`);
      const out = createWriteStream(logFile);
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, entry)], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.pipe(out);
      child.stderr!.pipe(out);
      return { child, pid: child.pid!, logFile };
    };
    const stack: ChaosStack = {
      dir,
      cleanups,
      temporal,
      smtp,
      apiUrl: `http://127.0.0.1:${apiPort}`,
      token,
      linkSecret,
      database,
      env,
      workerLogs: [],
      async startWorker() {
        const p = spawnEntry('worker', 'src/worker.ts');
        stack.worker = p;
        stack.workerLogs.push(p.logFile);
        // Ready when Temporal lists its poller (identity `<pid>@<host>`, the SDK's default).
        const until = Date.now() + 180_000;
        for (;;) {
          if (p.child.exitCode !== null) throw new Error(`worker exited with ${p.child.exitCode}:\n${tail(p.logFile)}`);
          try {
            const r = await stack.temporal.connection.workflowService.describeTaskQueue({
              namespace: 'default',
              taskQueue: { name: TASK_QUEUE },
              taskQueueType: 1,
            });
            if (r.pollers?.some((x) => x.identity?.startsWith(`${p.pid}@`))) return p;
          } catch {
            // Temporal restarting: keep waiting
          }
          if (Date.now() > until) throw new Error(`worker did not poll within 180 s:\n${tail(p.logFile)}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      },
      async killWorker() {
        const p = stack.worker;
        stack.worker = undefined;
        if (!p) return;
        p.child.kill('SIGKILL');
        await exited(p.child);
      },
      async startApi() {
        const p = spawnEntry('api', 'src/api/main.ts');
        stack.api = p;
        const until = Date.now() + 120_000;
        for (;;) {
          if (p.child.exitCode !== null) throw new Error(`API exited with ${p.child.exitCode}:\n${tail(p.logFile)}`);
          try {
            const r = await fetch(`${stack.apiUrl}/healthz`, { signal: AbortSignal.timeout(5_000) });
            if (r.status === 200 || r.status === 503) return p; // listening; 503 is Temporal, not the API
          } catch {
            // not listening yet
          }
          if (Date.now() > until) throw new Error(`API did not answer within 120 s:\n${tail(p.logFile)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      },
      async killApi() {
        const p = stack.api;
        stack.api = undefined;
        if (!p) return;
        p.child.kill('SIGKILL');
        await exited(p.child);
      },
      stopTemporal: () => stack.temporal.stop(),
      async startTemporal() {
        stack.temporal = await startDevServer(dir, cleanups, log, { port });
      },
      close: () => cleanups.runAll(),
    };
    // Registered before they exist: whatever is running at the end is stopped.
    cleanups.add('worker', async () => {
      if (stack.worker) await terminate(stack.worker.child, 5_000);
    });
    cleanups.add('api', async () => {
      if (stack.api) await terminate(stack.api.child, 5_000);
    });
    return stack;
  } catch (err) {
    await cleanups.runAll();
    throw err;
  }
}
