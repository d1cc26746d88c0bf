/**
 * The Temporal test stack of a test file in one call: a Temporal server (the CLI dev server, or the
 * time-skipping test server), a real SMTP capture, and as the file asks a lead ledger database, a
 * worker running the real workflows and activities (`harness`, test/helpers/temporal.ts) with a
 * LeadService over it, and the Fastify API over that service.
 *
 * `useStack(o)` starts it in a `before` hook of the suite it is called in and takes it down in an
 * `after` hook there; `startStack(o)` is the same for a caller that closes it itself. Teardown
 * kills the worker processes test/helpers/worker-process.ts started, brings back a PostgreSQL
 * server of the stack that a test left paused (so that its worker can finish), then closes what it
 * started, last first, every part even when one fails (the first failure is thrown afterwards).
 */
import type { ChildProcess } from 'node:child_process';
import type { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApi } from '../../src/api/server.js';
import { LeadService } from '../../src/lead-service.js';
import { EncryptionCodec, parsePayloadKeys } from '../../src/codec.js';
import type { LoadedConfig } from '../../src/config-file.js';
import type { LeadState } from '../../src/domain/lead.js';
import type { Database } from '../../src/ledger/database.js';
import { LeadLedger } from '../../src/ledger/ledger.js';
import { LinkSigner } from '../../src/links.js';
import { useResource } from './hooks.js';
import { type Backend, type LedgerDatabase, ledgerDatabase } from './ledger.js';
import type { PostgresServer } from './postgres.js';
import { type SmtpCapture, startSmtp } from './smtp.js';
import {
  devServerEnv,
  harness,
  type Harness,
  TEST_LINK_SECRET,
  TEST_PAYLOAD_KEYS,
  testConfig,
  timeSkippingEnv,
} from './temporal.js';
import { killWorkerProcesses, startWorkerProcess, type WorkerProcessOptions } from './worker-process.js';

/** The base URL the workers sign mail links with (the secret is TEST_LINK_SECRET). */
export const LINK_BASE = 'http://links.test';
/** The stack API's bearer tokens. */
export const TOKEN = 'test-token-0123456789abcdef';
export const OTHER_TOKEN = 'second-token-for-rotation';
/** A `sales`-scoped token of the stack API (the console's queue without the read views). */
export const SALES_TOKEN = 'sales-scoped-token-for-tests';
/** The Temporal UI origin the stack API's codec server allows (CODEC_CORS_ORIGINS). */
export const UI_ORIGIN = 'http://localhost:8233';

export interface WorkerOptions {
  /** The worker's config (default testConfig()). */
  loaded?: LoadedConfig;
  /** Its task queue (default one of its own). */
  taskQueue?: string;
}

export interface StackOptions<M extends SmtpCapture = SmtpCapture> {
  /** The Temporal server (default the CLI dev server). */
  server?: 'dev' | 'time-skipping';
  /** Extra arguments for the dev server. */
  serverArgs?: string[];
  /** How to start the SMTP capture (default startSmtp), or false for none. */
  smtp?: (() => Promise<M>) | false;
  /** The stack's lead ledger database, on this backend; its worker writes it (default a fresh embedded one). */
  ledger?: Backend;
  /** A worker in this process, started with the servers. */
  worker?: WorkerOptions | true;
  /** The Fastify API over the worker's LeadService (a worker with the default options unless `worker` says). */
  api?: true;
}

/** A worker of the stack, with a LeadService on its task queue and ledger. */
export interface StackWorker extends Harness {
  loaded: LoadedConfig;
  service: LeadService;
  /** Stops the worker and closes a ledger database it owns; again, it does nothing. */
  close(): Promise<void>;
}

/** What a worker process takes beyond the stack's: more env, another script in test/helpers/. */
export type WorkerProcessExtras = Pick<WorkerProcessOptions, 'env' | 'script'>;

export interface Res {
  status: number;
  json: any;
  body: string;
  headers: LightMyRequestResponse['headers'];
}

export interface CallOptions {
  body?: unknown;
  payload?: string;
  headers?: Record<string, string>;
  token?: string | null;
}

/** A started stack. What it was not asked for throws when read (a worker's parts without `worker`, and so on). */
export interface Stack<M extends SmtpCapture = SmtpCapture> {
  env: TestWorkflowEnvironment;
  client: Client;
  smtp: M;
  /** The stack's ledger database (`ledger`, or the one its worker writes). */
  database: LedgerDatabase;
  /** The PostgreSQL server under that database (`ledger: 'postgres'`). */
  postgres: PostgresServer;
  /** The lead ledger on that database: the worker's when there is one. */
  ledger: LeadLedger;
  /** The worker started with the stack (`worker` or `api`), and its parts. */
  worker: StackWorker;
  loaded: LoadedConfig;
  taskQueue: string;
  service: LeadService;
  /** Runs `fn`, failing it if the worker dies meanwhile. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** The lead's state through the worker's LeadService. */
  state(leadId: string): Promise<LeadState>;
  /** The API (`api`): the app (ready, not listening), the link signer it verifies with. */
  app: FastifyInstance;
  links: LinkSigner;
  /** app.inject with the bearer token (unless `token: null`) and JSON bodies. */
  call(method: string, url: string, o?: CallOptions): Promise<Res>;
  /**
   * A worker in a process of its own on this server and SMTP capture, writing `database`
   * (test/helpers/worker-process.ts; the stack's teardown kills it if the test did not).
   */
  workerProcess(taskQueue: string, database: Database, o?: WorkerProcessExtras): Promise<ChildProcess>;
  /**
   * Starts another worker on these servers, with a fresh ledger database of its own (default
   * embedded), or with `sameLedger` on the stack's (a redeploy: the worker before it is closed first).
   */
  startWorker(o?: WorkerOptions & { ledger?: Backend; sameLedger?: true }): Promise<StackWorker>;
  /** Takes the whole stack down (useStack does it in its `after` hook); again, it does nothing. */
  close(): Promise<void>;
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn());
}

export async function startStack<M extends SmtpCapture = SmtpCapture>(o: StackOptions<M> = {}): Promise<Stack<M>> {
  const cleanup: (() => unknown)[] = [];
  const postgres: PostgresServer[] = [];
  const close = once(async () => {
    killWorkerProcesses();
    for (const pg of postgres) if (!pg.running) await pg.resume().catch(() => undefined);
    let failure: { err: unknown } | undefined;
    for (const fn of cleanup.reverse()) {
      await Promise.resolve()
        .then(fn)
        .catch((err) => {
          console.error('stack teardown:', err);
          failure ??= { err };
        });
    }
    if (failure) throw failure.err;
  });
  const need = <T>(what: string, v: T | undefined, option: string): T => {
    if (v === undefined) throw new Error(`this stack has no ${what} (startStack/useStack option ${option})`);
    return v;
  };
  const opened = (db: LedgerDatabase) => {
    if (db.postgres) postgres.push(db.postgres);
    return db;
  };
  try {
    const env = o.server === 'time-skipping' ? await timeSkippingEnv() : await devServerEnv(o.serverArgs);
    cleanup.push(() => env.teardown());
    const smtp = o.smtp === false ? undefined : await (o.smtp ?? (startSmtp as () => Promise<M>))();
    if (smtp) cleanup.push(() => smtp.close());
    const wantWorker = o.worker !== undefined || o.api !== undefined;
    let database: LedgerDatabase | undefined;
    if (o.ledger || wantWorker) {
      const db = opened(await ledgerDatabase(o.ledger ?? 'embedded'));
      cleanup.push(() => db.close());
      database = db;
    }

    const startWorker = async (w: WorkerOptions = {}, shared?: LedgerDatabase, backend: Backend = 'embedded') => {
      const owned = shared ? undefined : opened(await ledgerDatabase(backend));
      const loaded = w.loaded ?? testConfig();
      let h: Harness;
      try {
        h = await harness(env, need('SMTP capture', smtp, 'smtp'), loaded, w.taskQueue, { database: shared ?? owned! });
      } catch (err) {
        await owned?.close();
        throw err;
      }
      const closeWorker = once(async () => {
        try {
          await h.close();
        } finally {
          if (owned) {
            await owned.close();
            // Stopped for good with it: nothing to bring back at teardown.
            if (owned.postgres) postgres.splice(postgres.indexOf(owned.postgres), 1);
          }
        }
      });
      cleanup.push(closeWorker);
      const service = new LeadService(env.client, h.taskQueue, loaded.config, h.ledger);
      return { ...h, loaded, service, close: closeWorker } satisfies StackWorker;
    };
    const worker = wantWorker ? await startWorker(o.worker === true ? {} : o.worker, database) : undefined;
    const ledger = worker?.ledger ?? (database && new LeadLedger(database.pool));

    let app: FastifyInstance | undefined;
    const links = new LinkSigner(TEST_LINK_SECRET, LINK_BASE);
    if (o.api) {
      const api = buildApi({
        service: worker!.service,
        links,
        tokens: [TOKEN, OTHER_TOKEN, `sales:${SALES_TOKEN}`],
        codec: { codec: new EncryptionCodec(parsePayloadKeys(TEST_PAYLOAD_KEYS)), corsOrigins: [UI_ORIGIN] },
        console: { config: () => worker!.loaded },
        healthCheck: async () => (await env.connection.healthService.check({})).status === 1,
      });
      cleanup.push(() => api.close());
      await api.ready();
      app = api;
    }
    const w = () => need('worker', worker, 'worker or api');
    const a = () => need('API', app, 'api');

    return {
      env,
      client: env.client,
      get smtp() {
        return need('SMTP capture', smtp, 'smtp');
      },
      get database() {
        return need('ledger database', database, 'ledger, worker or api');
      },
      get postgres() {
        return need('PostgreSQL server', database?.postgres, "ledger: 'postgres'");
      },
      get ledger() {
        return need('ledger', ledger, 'ledger, worker or api');
      },
      get worker() {
        return w();
      },
      get loaded() {
        return w().loaded;
      },
      get taskQueue() {
        return w().taskQueue;
      },
      get service() {
        return w().service;
      },
      run: (fn) => w().run(fn),
      state: (leadId) => w().service.getState(leadId),
      get app() {
        return a();
      },
      get links() {
        a();
        return links;
      },
      async call(method, url, c = {}) {
        const headers: Record<string, string> = {
          ...(c.token === null ? {} : { authorization: `Bearer ${c.token ?? TOKEN}` }),
          ...c.headers,
        };
        let payload = c.payload;
        if (c.body !== undefined) {
          payload = JSON.stringify(c.body);
          headers['content-type'] ??= 'application/json';
        }
        const r = await a().inject({
          method: method as 'GET',
          url,
          headers,
          ...(payload !== undefined ? { payload } : {}),
        });
        let json: unknown;
        try {
          json = r.json();
        } catch {
          json = undefined;
        }
        return { status: r.statusCode, json, body: r.body, headers: r.headers };
      },
      workerProcess: (taskQueue, db, p = {}) =>
        startWorkerProcess({
          address: env.address,
          taskQueue,
          smtpUrl: need('SMTP capture', smtp, 'smtp').url,
          databaseUrl: db.url,
          ...p,
        }),
      startWorker: (x = {}) => startWorker(x, x.sameLedger ? database : undefined, x.ledger),
      close,
    };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/**
 * startStack in a `before` hook of the suite this is called in, its teardown in an `after` hook
 * there (test/helpers/hooks.ts). The handle it returns reads through to the started stack, from
 * that hook's end on. `setup` is the file's own setup on the stack, run in the same hook once the
 * stack is up (a second `before` at the top level of a file would not wait for this one).
 */
export function useStack<M extends SmtpCapture = SmtpCapture>(
  o: StackOptions<M> = {},
  setup?: (s: Stack<M>) => unknown,
): Stack<M> {
  return useResource(
    'stack',
    async () => {
      const s = await startStack(o);
      try {
        await setup?.(s);
      } catch (err) {
        await s.close().catch(() => undefined);
        throw err;
      }
      return s;
    },
    (s) => s.close(),
  );
}
