/**
 * `npm start`: the whole local stack in one command (CONTRACT.md §Commands).
 *
 *   1. an API token (DATA_DIR/api-token), a link secret (DATA_DIR/link-secret) and the payload
 *      encryption keys (DATA_DIR/payload-keys), generated once with mode 0600 unless API_TOKEN /
 *      LINK_SECRET / PAYLOAD_KEYS are set: the only place development secrets are made (the
 *      worker and the API alone refuse to start without them);
 *   2. the lead ledger's database: unless DATABASE_URL is set, the embedded PostgreSQL (PGlite)
 *      under DATA_DIR/ledger, hosted by this process on a loopback port and announced in
 *      DATA_DIR/ledger.url, where leadctl and other processes of this machine find it
 *      (src/ledger/database.ts); migrated once here. A DATABASE_URL that does not answer stops
 *      start-up with one line naming it (without its password), before anything is started;
 *   3. a Temporal dev server (`temporal server start-dev`, state in DATA_DIR/temporal.db, the lead
 *      search attributes registered), unless TEMPORAL_ADDRESS points at a server already running;
 *   4. an SMTP capture writing DATA_DIR/outbox/*.eml (src/outbox.ts), unless SMTP_URL is set;
 *   5. the worker and the API as child processes (DATABASE_URL: the ledger's), their output
 *      prefixed [worker] / [api].
 * Then it prints the URLs, the token and a curl to paste. Ctrl-C (SIGINT), SIGTERM or SIGHUP stop
 * the worker and the API, then the SMTP capture, then the Temporal server, then the ledger, and
 * exit 0. If a child dies on its own, the rest is stopped and the exit code is 1, naming the child.
 *
 * Environment (all optional; docs/operations.md has the full table):
 *   DATA_DIR          where state lives (default .data/ in the repository)
 *   DATABASE_URL      the lead ledger's PostgreSQL (postgres://…) instead of the embedded one
 *   TEMPORAL_ADDRESS  use this Temporal server instead of starting one
 *   TEMPORAL_PORT     the dev server's gRPC port (default 7233)
 *   TEMPORAL_UI_PORT  the dev server's Web UI port (default TEMPORAL_PORT + 1000, so 8233)
 *   SMTP_URL          send mail there instead of starting the capture
 *   SMTP_PORT         the capture's port (default 2525)
 *   CODEC_CORS_ORIGINS the origins allowed to call the API's codec server (default: this stack's
 *                     Temporal UI, http://localhost:UI_PORT and http://127.0.0.1:UI_PORT)
 *   API_PORT (3000), API_TOKEN, LINK_SECRET, PAYLOAD_KEYS, PUBLIC_URL (http://localhost:API_PORT),
 *   TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE: passed on.
 * Children run in their own process groups, so that a terminal's Ctrl-C reaches only this process
 * and the shutdown order holds; each group is killed when this process exits in any way it can see.
 * Everything the stack and its children write (secrets, the outbox, the send ledger, the lead
 * ledger, Temporal's database) is created readable by this user only (umask 077; DATA_DIR and its
 * folders 0700).
 */
import { Connection } from '@temporalio/client';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { SEARCH_ATTRIBUTES } from '../workflows/defs.js';
import { generatePayloadKey, parsePayloadKeys } from './codec.js';
import { ROOT, stackSettings, temporalBinaries, WORKER_MALLOC_ARENA_MAX } from './env.js';
import {
  type EmbeddedDatabase,
  EmbeddedDatabaseBusy,
  embeddedUrlFile,
  hostEmbeddedDatabase,
  openDatabase,
  redactUrl,
} from './ledger/database.js';
import { type Outbox, startOutbox } from './outbox.js';

type Name = 'temporal' | 'worker' | 'api';

interface Child {
  name: Name;
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  done: boolean;
}

const COLORS: Record<string, number> = { stack: 1, temporal: 35, worker: 36, api: 32, smtp: 33, ledger: 34 };
const tty = process.stdout.isTTY && stackSettings().color;
const tag = (name: string) => (tty ? `\x1b[${COLORS[name] ?? 0}m[${name}]\x1b[0m` : `[${name}]`);
const say = (line: string, name = 'stack') => console.log(`${tag(name)} ${line}`);
const warn = (line: string) => console.error(`${tag('stack')} ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const shown = (p: string) => (p.startsWith(ROOT) ? relative(process.cwd(), p) || '.' : p);
type StackSettings = ReturnType<typeof stackSettings>;

/**
 * The secret in env, else the one in `file`, else a new random one written there (mode 0600).
 * A token list (`list`) may be one a line or comma-separated in the file; it is passed on comma-separated.
 */
function secret(
  envValue: string | undefined,
  file: string,
  list = false,
  generate = () => randomBytes(24).toString('base64url'),
): { value: string; source: 'env' | 'file' | 'generated' } {
  if (envValue) return { value: envValue, source: 'env' };
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8');
    const value = list
      ? text
          .split(/[,\n]/)
          .map((t) => t.trim())
          .filter(Boolean)
          .join(',')
      : text.trim();
    if (value) return { value, source: 'file' };
  }
  const value = generate();
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  return { value, source: 'generated' };
}

/** Fails with a useful message when a port this stack binds is taken (most often: a stack already running). */
async function assertFree(port: number, host: string, what: string, hint: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `port ${port} (${what}) is already in use: is a stack already running? ${hint}`
            : `port ${port} (${what}): ${err.message}`,
        ),
      );
    });
    srv.listen(port, host, () => srv.close(() => resolve()));
  });
}

const cliType = (t: string) =>
  t
    .split('_')
    .map((w) => w[0] + w.slice(1).toLowerCase())
    .join(''); // KEYWORD_LIST -> KeywordList
const INDEXED_VALUE_TYPE: Record<string, number> = {
  TEXT: 1,
  KEYWORD: 2,
  INT: 3,
  DOUBLE: 4,
  BOOL: 5,
  DATETIME: 6,
  KEYWORD_LIST: 7,
};

function devServerArgs(
  s: Pick<StackSettings, 'dataDir' | 'temporalPort' | 'uiPort' | 'namespace' | 'apiPort'>,
): string[] {
  return [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(s.temporalPort),
    '--ui-port',
    String(s.uiPort),
    '--db-filename',
    join(s.dataDir, 'temporal.db'),
    '--sqlite-pragma',
    'journal_mode=WAL',
    '--sqlite-pragma',
    'synchronous=NORMAL',
    // Deleted rows are overwritten, not left in free pages: an erased lead's runs (DELETE
    // /v1/leads/:leadId) leave nothing in the file.
    '--sqlite-pragma',
    'secure_delete=true',
    '--namespace',
    s.namespace,
    '--ui-disable-news-fetch',
    // The UI decodes the encrypted payloads through the API's codec server (src/api/codec.ts).
    '--ui-codec-endpoint',
    codecEndpoint(s.apiPort),
    // A lead whose workflow task fails twice in a row gets the system search attribute
    // TemporalReportedProblems, which `leadctl wedged` lists (off by default on the dev server).
    '--dynamic-config-value',
    `${REPORTED_PROBLEMS_SETTING}=2`,
    ...SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${cliType(k.type)}`]),
  ];
}

/** Temporal's dynamic config key that turns on TemporalReportedProblems after N consecutive task failures. */
const REPORTED_PROBLEMS_SETTING = 'system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute';

/** The API's codec server as the browser showing this stack's UI reaches it (the API listens on every IPv4 interface). */
const codecEndpoint = (apiPort: number) => `http://127.0.0.1:${apiPort}/codec`;

/** The running pieces, and the one way they stop. */
class LocalStack {
  readonly children: Child[] = [];
  outbox: Outbox | undefined;
  /** The embedded lead ledger this process hosts (none with DATABASE_URL). */
  ledger: EmbeddedDatabase | undefined;
  connection: Connection | undefined;
  stopping: Promise<void> | undefined;

  constructor(readonly s: StackSettings) {
    process.on('exit', () => {
      for (const c of this.children) if (!c.done) signalGroup(c, 'SIGKILL');
    });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(sig, () => {
        if (this.stopping) say(`${sig}: already stopping`);
        else void this.stop(0, sig);
      });
    }
  }

  /** Children first (the worker and the API), then the SMTP capture, the Temporal server, the ledger; then exits with `code`. */
  stop(code: number, reason: string): Promise<void> {
    this.stopping ??= (async () => {
      const started = this.children.length > 0 || this.outbox || this.ledger;
      (code ? warn : say)(started ? `${reason}: stopping` : reason); // nothing to stop: the reason is the one line
      setTimeout(() => {
        warn('still stopping after 60s: killing what is left');
        process.exit(code || 1); // the exit handler kills the process groups
      }, 60_000).unref();
      await this.connection?.close().catch(() => undefined);
      await Promise.all(this.children.filter((c) => c.name !== 'temporal').map((c) => stopChild(c, 20_000)));
      if (this.outbox) {
        await this.outbox.close();
        say('stopped', 'smtp');
      }
      await Promise.all(this.children.filter((c) => c.name === 'temporal').map((c) => stopChild(c, 20_000)));
      if (this.ledger) {
        await this.ledger.close().then(
          () => say('stopped', 'ledger'),
          (err: Error) => warn(`the ledger did not close cleanly: ${err.message}`),
        );
      }
      process.exit(code);
    })();
    return this.stopping;
  }

  start(name: Name, cmd: string, args: string[], env: NodeJS.ProcessEnv): Child {
    const proc = spawn(cmd, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const child: Child = {
      name,
      proc,
      done: false,
      exited: new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal }))),
    };
    proc.once('error', (err) => void this.stop(1, `${name} could not start (${cmd}): ${err.message}`));
    for (const [stream, out] of [
      [proc.stdout!, process.stdout],
      [proc.stderr!, process.stderr],
    ] as const) {
      // The services tag their own lines too: one tag is enough.
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) =>
        out.write(`${tag(name)} ${line.startsWith(`[${name}] `) ? line.slice(name.length + 3) : line}\n`),
      );
    }
    void child.exited.then(({ code, signal }) => {
      child.done = true;
      const how = signal ? `signal ${signal}` : `exit code ${code}`;
      if (this.stopping) say(`${name} stopped (${how})`);
      else void this.stop(1, `${name} exited unexpectedly (${how})`);
    });
    this.children.push(child);
    say(`started ${name} (pid ${proc.pid})`);
    return child;
  }

  /** Resolves once `check` passes; throws after `timeoutMs`; never resolves once stopping (stop() exits). */
  async waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
    const until = Date.now() + timeoutMs;
    let last: unknown;
    while (!this.stopping) {
      try {
        if (await check()) return;
      } catch (err) {
        last = err;
      }
      if (Date.now() > until)
        throw new Error(
          `${what} not ready after ${timeoutMs / 1000}s${last ? `: ${(last as Error).message ?? last}` : ''}`,
        );
      await sleep(250);
    }
    await new Promise(() => undefined);
  }

  async up(): Promise<void> {
    const s = this.s;
    // 1. Preflight: the data folder, the secrets, the ports this stack binds.
    process.umask(0o077); // inherited by the children: the ledger, the outbox and temporal.db are this user's only
    mkdirSync(s.dataDir, { recursive: true, mode: 0o700 });
    // A data folder from before files were private: close it and the folders with mail and PII in it.
    const ledgerDir = join(s.dataDir, 'ledger');
    for (const dir of [s.dataDir, join(s.dataDir, 'outbox'), ledgerDir]) if (existsSync(dir)) chmodSync(dir, 0o700);
    say(`data in ${shown(s.dataDir)}`);
    const token = secret(s.secrets.API_TOKEN, join(s.dataDir, 'api-token'), true);
    if (token.source === 'generated') say(`generated an API token into ${shown(join(s.dataDir, 'api-token'))}`);
    const linkSecret = secret(s.secrets.LINK_SECRET, join(s.dataDir, 'link-secret'));
    if (linkSecret.source === 'generated') say(`generated a link secret into ${shown(join(s.dataDir, 'link-secret'))}`);
    const payloadKeys = secret(s.secrets.PAYLOAD_KEYS, join(s.dataDir, 'payload-keys'), true, () =>
      generatePayloadKey(),
    );
    parsePayloadKeys(
      payloadKeys.value,
      payloadKeys.source === 'env' ? 'PAYLOAD_KEYS' : `PAYLOAD_KEYS (from ${shown(join(s.dataDir, 'payload-keys'))})`,
    ); // a bad key stops here, not in a child
    if (payloadKeys.source === 'generated')
      say(`generated a payload encryption key into ${shown(join(s.dataDir, 'payload-keys'))}`);
    const uiOrigins = [`http://localhost:${s.uiPort}`, `http://127.0.0.1:${s.uiPort}`];
    if (!s.externalTemporal) {
      await assertFree(
        s.temporalPort,
        '127.0.0.1',
        'Temporal gRPC',
        'Set TEMPORAL_ADDRESS to use a server already running, or TEMPORAL_PORT for another port.',
      );
      await assertFree(s.uiPort, '127.0.0.1', 'Temporal UI', 'Set TEMPORAL_UI_PORT for another port.');
    }
    if (!s.externalSmtp)
      await assertFree(
        s.smtpPort,
        '127.0.0.1',
        'SMTP capture',
        'Set SMTP_PORT for another port, or SMTP_URL to use another server.',
      );
    await assertFree(s.apiPort, '0.0.0.0', 'API', 'Set API_PORT for another port.');

    // 2. The lead ledger: DATABASE_URL, else the embedded database, hosted here for every process
    //    of this machine (PGlite is one process on its files). Checked and migrated once, before
    //    anything else starts: a DATABASE_URL that does not answer is the one line start-up ends with.
    let databaseUrl = s.databaseUrl;
    if (!databaseUrl) {
      try {
        this.ledger = await hostEmbeddedDatabase(ledgerDir, { waitMs: 10_000 });
      } catch (err) {
        if (err instanceof EmbeddedDatabaseBusy) {
          throw new Error(
            `${err.message}: stop it (a worker, API or leadctl run alone hosts it), or set DATABASE_URL, or DATA_DIR for another data folder`,
          );
        }
        throw err;
      }
      databaseUrl = this.ledger.url;
      say(
        `embedded PostgreSQL (PGlite) in ${shown(ledgerDir)}, ${databaseUrl}, announced in ${shown(embeddedUrlFile(ledgerDir))}`,
        'ledger',
      );
    }
    const ledgerDb = await openDatabase({ url: databaseUrl, max: 1 }); // answers, migrated
    await ledgerDb.close();
    say(
      `${s.databaseUrl ? `PostgreSQL at ${redactUrl(s.databaseUrl)} (DATABASE_URL) answers` : 'ready'}; schema migrated`,
      'ledger',
    );

    // 3. Temporal.
    const address = s.externalTemporal ?? `127.0.0.1:${s.temporalPort}`;
    if (s.externalTemporal) {
      say(`using the Temporal server at ${address} (TEMPORAL_ADDRESS)`);
    } else {
      const cli = temporalBinaries().cli;
      const args = devServerArgs(s);
      say(`Temporal dev server: ${shown(cli)} ${args.join(' ')}`);
      this.start('temporal', cli, args, process.env);
    }
    await this.waitFor(`Temporal at ${address}`, 60_000, async () => {
      this.connection ??= await Connection.connect({ address, connectTimeout: 1_000 });
      await this.connection.workflowService.describeNamespace({ namespace: s.namespace });
      return true;
    });
    const connection = this.connection!;
    await ensureSearchAttributes(connection, s.namespace);
    say(`Temporal answers on ${address} (namespace ${s.namespace})`);

    // 4. SMTP capture.
    const outboxDir = join(s.dataDir, 'outbox');
    let smtpUrl = s.externalSmtp;
    if (!smtpUrl) {
      this.outbox = await startOutbox({ dir: outboxDir, port: s.smtpPort, log: (line) => say(line, 'smtp') });
      smtpUrl = this.outbox.url;
      say(`listening on ${smtpUrl}, writing ${shown(outboxDir)}/`, 'smtp');
    }

    // 5. Worker and API, ready when the worker polls the task queue and /healthz answers 200.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: s.namespace,
      TEMPORAL_TASK_QUEUE: s.taskQueue,
      SMTP_URL: smtpUrl,
      API_PORT: String(s.apiPort),
      API_TOKEN: token.value,
      LINK_SECRET: linkSecret.value,
      PAYLOAD_KEYS: payloadKeys.value,
      CODEC_CORS_ORIGINS: s.codecCorsOrigins ?? (s.externalTemporal ? '' : uiOrigins.join(',')),
      PUBLIC_URL: s.publicUrl,
      DATA_DIR: s.dataDir,
      DATABASE_URL: databaseUrl,
    };
    this.start('worker', process.execPath, ['--import', 'tsx', 'src/worker.ts'], {
      MALLOC_ARENA_MAX: WORKER_MALLOC_ARENA_MAX,
      ...env,
    });
    this.start('api', process.execPath, ['--import', 'tsx', 'src/api/main.ts'], env);
    await this.waitFor('the worker', 120_000, async () => {
      const r = await connection.workflowService.describeTaskQueue({
        namespace: s.namespace,
        taskQueue: { name: s.taskQueue, kind: 1 /* NORMAL */ },
        taskQueueType: 1 /* WORKFLOW */,
      });
      return (r.pollers?.length ?? 0) > 0;
    });
    await this.waitFor(
      'the API',
      60_000,
      async () => (await fetch(`http://127.0.0.1:${s.apiPort}/healthz`, { signal: AbortSignal.timeout(3_000) })).ok,
    );
    this.connection = undefined;
    await connection.close();

    // 6. The banner.
    const first = token.value.split(',')[0]!;
    const bearer = token.source === 'env' ? (token.value.includes(',') ? '${API_TOKEN%%,*}' : '$API_TOKEN') : first;
    const api = `http://localhost:${s.apiPort}`;
    console.log(
      [
        '',
        'Lead nurture engine: local stack ready',
        '',
        `  Temporal gRPC  ${address}  (namespace ${s.namespace}, task queue ${s.taskQueue})${s.externalTemporal ? '  [TEMPORAL_ADDRESS]' : ''}`,
        `  Temporal UI    ${s.externalTemporal ? '(not started: use the UI of the server at TEMPORAL_ADDRESS)' : `http://localhost:${s.uiPort}`}`,
        `  API            ${api}  (OpenAPI ${api}/openapi.json, health ${api}/healthz)`,
        `  Console        ${api}/console  (sign in with the API token)`,
        `  SMTP           ${smtpUrl}${s.externalSmtp ? '  [SMTP_URL]' : '  (capture: nothing leaves this machine)'}`,
        `  Outbox         ${s.externalSmtp ? '(none: mail goes to SMTP_URL)' : `${outboxDir}  (one .eml file per message)`}`,
        `  Ledger         ${this.ledger ? `embedded PostgreSQL (PGlite) in ${ledgerDir}, ${this.ledger.url}` : `${redactUrl(databaseUrl)}  [DATABASE_URL]`}`,
        `  Codec server   ${codecEndpoint(s.apiPort)}  (payloads in Temporal are encrypted; ${s.externalTemporal ? 'point your UI at it' : 'the UI decodes through it'}; key ${payloadKeys.source === 'env' ? 'from PAYLOAD_KEYS' : `in ${shown(join(s.dataDir, 'payload-keys'))}`})`,
        `  API token      ${token.source === 'env' ? '(from API_TOKEN)' : `${first}  (${shown(join(s.dataDir, 'api-token'))})`}`,
        `  Data           ${s.dataDir}`,
        '',
        '  Try it: a VP at a 500-person US company asks for a demo; the lead goes straight to sql and',
        "  the owner's handoff mail lands in the outbox:",
        '',
        `  curl -sS -X POST ${api}/v1/events -H "Authorization: Bearer ${bearer}" -H 'Content-Type: application/json' \\`,
        `    -d '{"leadId":"demo-1","eventId":"demo-1-1","type":"demo_request","email":"kim@bigco.example","profile":{"firstName":"Kim","seniority":"vp","companySize":500,"country":"US"}}'`,
        `  curl -sS ${api}/v1/leads/demo-1 -H "Authorization: Bearer ${bearer}"`,
        '',
        '  Ctrl-C stops everything.',
        '',
      ].join('\n'),
    );
  }
}

/** Registers any lead search attribute the namespace lacks (a server from TEMPORAL_ADDRESS may have none). */
async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const missing = SEARCH_ATTRIBUTES.filter((k) => !(customAttributes && k.name in customAttributes));
    if (!missing.length) return;
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, INDEXED_VALUE_TYPE[k.type]!])),
    });
    say(`registered search attributes ${missing.map((k) => k.name).join(', ')} on namespace ${namespace}`);
  } catch (err) {
    warn(
      `could not check the search attributes on namespace ${namespace} (${(err as Error).message}); register them as docs/operations.md shows`,
    );
  }
}

function signalGroup(c: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-c.proc.pid!, signal); // the child's whole process group (it was spawned detached)
  } catch {
    try {
      c.proc.kill(signal);
    } catch {
      // gone already
    }
  }
}

async function stopChild(c: Child, graceMs: number): Promise<void> {
  if (c.done || c.proc.pid === undefined) return;
  signalGroup(c, 'SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
  if ((await Promise.race([c.exited, timer])) === 'timeout') {
    warn(`${c.name} did not stop within ${graceMs / 1000}s: killing it`);
    signalGroup(c, 'SIGKILL');
    await c.exited;
  }
}

let stack: LocalStack | undefined;
try {
  stack = new LocalStack(stackSettings());
  await stack.up();
} catch (err) {
  const message = `error: ${err instanceof Error ? err.message : String(err)}`;
  if (stack) await stack.stop(1, message);
  warn(message);
  process.exit(1);
}
