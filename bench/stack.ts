/**
 * What the bench runs against, all its own: a Temporal dev server from the CLI binary (SQLite file
 * in a temp folder, WAL), an SMTP capture in this process, and the worker in a child process.
 */
import { Client, Connection } from '@temporalio/client';
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataConverter, generatePayloadKey, parsePayloadKeys } from '../src/codec.js';
import { ROOT, temporalBinaries, WORKER_MALLOC_ARENA_MAX } from '../src/env.js';
import { SEARCH_ATTRIBUTES } from '../workflows/defs.js';
import { type Cleanups, freePort, interrupted } from './proc.js';

export const TASK_QUEUE = 'lead-nurture';

export interface DevServer {
  address: string;
  dbPath: string;
  pid: number;
  connection: Connection;
  client: Client;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function terminate(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited(child);
  clearTimeout(killer);
}

const tail = (file: string, n = 30) => {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
};

/** `port`: a fixed port, to restart a stopped server where its clients look for it (the chaos suite). */
export async function startDevServer(
  dir: string,
  cleanups: Cleanups,
  log: (s: string) => void,
  opts: { port?: number } = {},
): Promise<DevServer> {
  const port = opts.port ?? (await freePort());
  const dbPath = join(dir, 'bench.db');
  const logFile = join(dir, 'temporal.log');
  const args = [
    'server',
    'start-dev',
    '--headless',
    '--port',
    String(port),
    '--ip',
    '127.0.0.1',
    '--db-filename',
    dbPath,
    '--sqlite-pragma',
    'journal_mode=WAL',
    '--sqlite-pragma',
    'synchronous=NORMAL',
    ...SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${searchAttributeTypeName(k.type)}`]),
    '--namespace',
    'default',
    '--log-level',
    'error',
  ];
  const out = createWriteStream(logFile);
  const child = spawn(temporalBinaries().cli, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  cleanups.add('temporal dev server', () => terminate(child));
  const address = `127.0.0.1:${port}`;
  log(`temporal dev server pid ${child.pid} on ${address}, db ${dbPath}`);

  const deadline = Date.now() + 120_000;
  let connection: Connection | undefined;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`temporal dev server exited with ${child.exitCode}:\n${tail(logFile)}`);
    try {
      connection ??= await Connection.connect({ address, connectTimeout: 2_000 });
      await connection.workflowService.getSystemInfo({});
      // The namespace and the search attributes are registered at start; wait until they answer.
      const sa = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      if (SEARCH_ATTRIBUTES.every((k) => k.name in (sa.customAttributes ?? {}))) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline)
      throw new Error(`temporal dev server did not answer on ${address} within 120 s:\n${tail(logFile)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const client = new Client({
    connection,
    namespace: 'default',
    dataConverter: dataConverter(parsePayloadKeys(BENCH_SECRETS.PAYLOAD_KEYS)),
  });
  cleanups.add('client connection', () => connection!.close());
  return {
    address,
    dbPath,
    pid: child.pid!,
    connection,
    client,
    stop: () => terminate(child),
  };
}

function searchAttributeTypeName(type: string): string {
  return (
    (
      {
        TEXT: 'Text',
        KEYWORD: 'Keyword',
        INT: 'Int',
        DOUBLE: 'Double',
        BOOL: 'Bool',
        DATETIME: 'Datetime',
        KEYWORD_LIST: 'KeywordList',
      } as Record<string, string>
    )[type] ?? type
  );
}

export interface WorkerChild {
  pid: number;
  configVersion: string;
  /** Resolves (with the exit code) if the worker exits; the bench fails fast on that. */
  exited: Promise<number | null>;
  logFile: string;
  /** The lead ledger it writes (what the bench's reads read). */
  databaseUrl: string;
  /** The worker's process.memoryUsage() (undefined if it does not answer within 5 s). */
  memory(): Promise<NodeJS.MemoryUsage | undefined>;
  stop(): Promise<void>;
}

/** One run's secrets, shared by the bench's client and its worker child: payloads are encrypted as in production. */
export const BENCH_SECRETS = {
  PAYLOAD_KEYS: generatePayloadKey('bench'),
  LINK_SECRET: randomBytes(24).toString('hex'),
};

const CHILD = fileURLToPath(new URL('./worker-child.ts', import.meta.url));

/**
 * `cacheSize`: the worker's sticky cache. The throughput and latency phases keep every lead busy
 * at once, so they size it to the leads (as a deployment would for its active set); the scale mode
 * leaves the production default, since sleeping leads need not stay cached.
 */
/** The lead ledger in its own process (bench/ledger-host.ts), as `npm start` hosts it beside the worker. */
async function startLedgerHost(dataDir: string, cleanups: Cleanups): Promise<{ url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'ledger-host.ts'), dataDir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.add('ledger host', () => terminate(child));
  let out = '';
  return await new Promise((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line) as { url: string });
    });
    child.once('exit', (code) => reject(new Error(`the ledger host exited (${code})`)));
  });
}

export async function startWorkerChild(o: {
  dir: string;
  address: string;
  smtpUrl: string;
  cleanups: Cleanups;
  cacheSize?: number;
}): Promise<WorkerChild> {
  // DATABASE_URL: a real PostgreSQL (the worker migrates it); else the embedded one, in its own process.
  const database = process.env.DATABASE_URL
    ? { url: process.env.DATABASE_URL }
    : await startLedgerHost(join(o.dir, 'ledger-host'), o.cleanups);
  const logFile = join(o.dir, 'worker.log');
  const out = createWriteStream(logFile);
  const child = fork(CHILD, [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: {
      MALLOC_ARENA_MAX: WORKER_MALLOC_ARENA_MAX,
      ...process.env,
      TEMPORAL_ADDRESS: o.address,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: TASK_QUEUE,
      SMTP_URL: o.smtpUrl,
      DATABASE_URL: database.url,
      ...BENCH_SECRETS,
      LEAD_CONFIG: join(ROOT, 'config', 'default.yaml'),
      ...(o.cacheSize && !process.env.WORKER_MAX_CACHED_WORKFLOWS
        ? { WORKER_MAX_CACHED_WORKFLOWS: String(o.cacheSize) }
        : {}),
    },
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const stop = async () => {
    if (child.connected) child.send({ type: 'stop' });
    // Interrupted, the server is likely gone too and a graceful shutdown has nothing to finish.
    const killer = setTimeout(() => child.kill('SIGKILL'), interrupted ? 5_000 : 20_000);
    await exited(child);
    clearTimeout(killer);
  };
  o.cleanups.add('worker child', stop);
  const exitedP = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const ready = await new Promise<{ configVersion: string }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`worker did not become ready within 180 s:\n${tail(logFile)}`)),
      180_000,
    );
    child.on('message', (m: { type?: string; configVersion?: string }) => {
      if (m?.type === 'ready') {
        clearTimeout(timer);
        resolve({ configVersion: m.configVersion ?? '' });
      }
    });
    void exitedP.then((code) => {
      clearTimeout(timer);
      // Give the log stream a moment to flush.
      setTimeout(() => reject(new Error(`worker exited with ${code} before it was ready:\n${tail(logFile)}`)), 100);
    });
  });
  const memory = () =>
    new Promise<NodeJS.MemoryUsage | undefined>((resolve) => {
      if (!child.connected) return resolve(undefined);
      const timer = setTimeout(() => done(undefined), 5_000);
      const onMessage = (m: { type?: string; usage?: NodeJS.MemoryUsage }) => {
        if (m?.type === 'memory') done(m.usage);
      };
      const done = (u: NodeJS.MemoryUsage | undefined) => {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(u);
      };
      child.on('message', onMessage);
      child.send({ type: 'memory' });
    });
  return {
    pid: child.pid!,
    configVersion: ready.configVersion,
    exited: exitedP,
    logFile,
    databaseUrl: database.url,
    memory,
    stop,
  };
}

export { tail };
