/**
 * `npm start` as a user runs it: src/stack.ts as a child process on free ports and a temporary
 * data folder, driven only through its HTTP API, its outbox folder and the Temporal UI in a real
 * browser; then stopped with SIGINT, started again on the same data, and finally a child killed.
 * On the way it checks what the stack keeps private (CONTRACT.md §Security): its secrets and its
 * mail files are its user's only, Temporal's database holds no plaintext profile (the payload
 * codec), and the UI still shows the lead's input decoded (through the API's codec server). It
 * hosts the lead ledger: another process finds the embedded database through DATA_DIR/ledger.url
 * and reads its migrated tables, and the data outlives a restart; a DATABASE_URL that does not
 * answer stops start-up in one line before anything starts.
 *
 * The stack reads these variables to stay out of the way of a stack already running on this
 * machine: DATA_DIR (instead of .data/), TEMPORAL_PORT, TEMPORAL_UI_PORT, SMTP_PORT, API_PORT.
 * The UI test needs /usr/bin/chromium (`apt-get update && apt-get install -y chromium`, or set
 * CHROMIUM_PATH); without it that test fails and says so, it never skips.
 */
import { simpleParser } from 'mailparser';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import pg from 'pg';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { Connection } from '@temporalio/client';
import { ENCRYPTED_ENCODING } from '../../src/codec.js';
import { ROOT } from '../../src/env.js';
import { freePort } from '../../bench/proc.js';
import { assertChromium, CHROMIUM, CHROMIUM_ARGS } from '../helpers/browser.js';

interface Ports {
  temporal: number;
  ui: number;
  smtp: number;
  api: number;
}

interface RunningStack {
  proc: ChildProcess;
  output: () => string;
  /** pids the stack reported as started ("started worker (pid 123)"). */
  pids: () => Map<string, number>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startStack(dataDir: string, ports: Ports, timeoutMs = 180_000): Promise<RunningStack> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NO_COLOR: '1',
    DATA_DIR: dataDir,
    TEMPORAL_PORT: String(ports.temporal),
    TEMPORAL_UI_PORT: String(ports.ui),
    SMTP_PORT: String(ports.smtp),
    API_PORT: String(ports.api),
  };
  for (const k of [
    'DATABASE_URL',
    'TEMPORAL_ADDRESS',
    'SMTP_URL',
    'API_TOKEN',
    'LINK_SECRET',
    'PAYLOAD_KEYS',
    'CODEC_CORS_ORIGINS',
    'PUBLIC_URL',
    'LEAD_CONFIG',
    'TEMPORAL_NAMESPACE',
    'TEMPORAL_TASK_QUEUE',
  ])
    delete env[k];
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/stack.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.once('exit', (code, signal) => r({ code, signal })),
  );
  const stack: RunningStack = {
    proc,
    exited,
    output: () => out,
    pids: () => new Map([...out.matchAll(/\[stack\] started (\w+) \(pid (\d+)\)/g)].map((m) => [m[1]!, Number(m[2])])),
  };
  running.add(stack);
  void exited.then(() => running.delete(stack));
  const until = Date.now() + timeoutMs;
  let gone: { code: number | null } | undefined;
  void exited.then((e) => (gone = e));
  while (!out.includes('local stack ready')) {
    // A Go panic's cause is its first lines, and its stack trace would push them out of the tail.
    if (gone)
      assert.fail(
        `the stack exited (code ${gone.code}) before it was ready:\n${out
          .split('\n')
          .filter((l) => /panic|error|fatal/i.test(l))
          .slice(0, 5)
          .join('\n')}\n…\n${tail(out)}`,
      );
    if (Date.now() > until) assert.fail(`the stack was not ready after ${timeoutMs / 1000}s:\n${tail(out)}`);
    await sleep(100);
  }
  return stack;
}

const running = new Set<RunningStack>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves undefined after `ms` without keeping the process alive. */
const deadline = (ms: number) => delay(ms, undefined, { ref: false });
const tail = (s: string, lines = 40) => s.split('\n').slice(-lines).join('\n');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether something still accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

async function assertAllGone(stack: RunningStack, ports: Ports): Promise<void> {
  const pids = stack.pids();
  assert.deepEqual(
    [...pids.keys()].sort(),
    ['api', 'temporal', 'worker'],
    `the stack reported its children:\n${tail(stack.output())}`,
  );
  for (const [name, pid] of pids)
    assert.equal(alive(pid), false, `${name} (pid ${pid}) is still running after the stack exited`);
  for (const [name, port] of Object.entries(ports))
    assert.equal(
      await listening(port),
      false,
      `port ${port} (${name}) still accepts connections after the stack exited`,
    );
  const ledger = ledgerUrl(stack);
  assert.equal(
    await listening(Number(new URL(ledger).port)),
    false,
    `the embedded ledger (${ledger}) still accepts connections after the stack exited`,
  );
  for (const f of ['ledger.url', 'ledger.lock'])
    assert.equal(existsSync(join(dataDir, f)), false, `DATA_DIR/${f} is left after the stack exited`);
}

/** The embedded ledger's URL, as the banner shows it. */
function ledgerUrl(stack: RunningStack): string {
  const url = stack
    .output()
    .match(
      /^ {2}Ledger {9}embedded PostgreSQL \(PGlite\) in (.+), (postgres:\/\/(?:\w+@)?127\.0\.0\.1:\d+(?:\/\w+)?)$/m,
    );
  assert.ok(url, `the banner shows the embedded ledger:\n${tail(stack.output())}`);
  assert.equal(url[1], join(dataDir, 'ledger'), 'under DATA_DIR/ledger');
  return url[2]!;
}

interface Probe {
  pid: number;
  url: string;
  embedded?: { dir: string; hosted: boolean; pid: number };
  leads: number;
  tables: string[];
}

/** Another process of this machine opening the ledger as leadctl does: openDatabase({ dataDir }) (test/helpers/ledger-probe.ts). */
async function probeLedger(): Promise<Probe> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, WAIT_MS: '5000' };
  delete env.DATABASE_URL;
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/ledger-probe.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const code = await Promise.race([new Promise<number | null>((r) => child.once('exit', r)), deadline(60_000)]);
  if (code === undefined) child.kill('SIGKILL');
  assert.equal(code, 0, `the ledger probe failed:\n${out}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as Probe;
}

/** A query on the ledger's URL from this process (also another process than the stack). */
async function ledgerQuery(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(200);
  }
}

const root = mkdtempSync(join(tmpdir(), 'stack-test-'));
const dataDir = join(root, 'data');
mkdirSync(dataDir);
const leadId = `stack-${process.pid}-${Date.now().toString(36)}`;
const otherLeadId = `${leadId}-other`;
/** Distinctive profile values, found nowhere but where the lead's data is kept in clear. */
const marker = Math.random().toString(36).slice(2, 10);
const email = `kim.q${marker}@bigco.example`;
const company = `Zyxq${marker} Corp`;
let ports: Ports;
let stack: RunningStack | undefined;
let token = '';
let owner = '';

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${ports.api}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

describe('npm start: the local stack', () => {
  after(async () => {
    // Whatever a failed test left running: the stack first (it stops its children), then its children by pid.
    for (const s of running) {
      s.proc.kill('SIGTERM');
      await Promise.race([s.exited, deadline(30_000)]);
      for (const pid of s.pids().values()) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    rmSync(dataDir, { recursive: true, force: true }); // the screenshot stays, in its parent folder
  });

  it('comes up on a fresh data folder with a generated token and prints how to reach it', async () => {
    ports = { temporal: await freePort(), ui: await freePort(), smtp: await freePort(), api: await freePort() };
    stack = await startStack(dataDir, ports);
    const tokenFile = join(dataDir, 'api-token');
    assert.ok(existsSync(tokenFile), 'api-token generated');
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600, 'api-token is readable by its owner only');
    assert.equal(
      statSync(join(dataDir, 'link-secret')).mode & 0o777,
      0o600,
      'link-secret is readable by its owner only',
    );
    assert.equal(
      statSync(join(dataDir, 'payload-keys')).mode & 0o777,
      0o600,
      'payload-keys is readable by its owner only',
    );
    assert.match(
      readFileSync(join(dataDir, 'payload-keys'), 'utf8').trim(),
      /^[A-Za-z0-9._-]+:[A-Za-z0-9+/]{43}=$/,
      'one keyId:base64(32 bytes)',
    );
    assert.equal(statSync(dataDir).mode & 0o777, 0o700, "the data folder is its owner's only");
    assert.equal(statSync(join(dataDir, 'temporal.db')).mode & 0o777, 0o600, "Temporal's database is its owner's only");
    token = readFileSync(tokenFile, 'utf8').trim();
    assert.match(token, /^[A-Za-z0-9_-]{32}$/);
    const out = stack.output();
    for (const expected of [
      `127.0.0.1:${ports.temporal}`,
      `http://localhost:${ports.ui}`,
      `http://localhost:${ports.api}`,
      `smtp://127.0.0.1:${ports.smtp}`,
      join(dataDir, 'outbox'),
      token,
      `curl -sS -X POST http://localhost:${ports.api}/v1/events`,
    ])
      assert.ok(out.includes(expected), `the banner shows ${expected}:\n${tail(out)}`);
    assert.match(out, /\[temporal\] /, 'the Temporal server output is prefixed');
    assert.match(out, /\[worker\] /, 'the worker output is prefixed');
    assert.match(out, /\[api\] /, 'the API output is prefixed');
    assert.equal((await fetch(`http://127.0.0.1:${ports.api}/v1/leads/x`)).status, 401, 'the API wants the token');
  });

  it('hosts the lead ledger: another process finds it through DATA_DIR/ledger.url and reads the migrated tables', async () => {
    assert.ok(stack, 'the stack is running');
    const url = ledgerUrl(stack);
    const file = join(dataDir, 'ledger.url');
    assert.equal(statSync(file).mode & 0o777, 0o600, "ledger.url is its owner's only");
    const announced = JSON.parse(readFileSync(file, 'utf8')) as { url: string; pid: number };
    assert.deepEqual(
      [announced.url, announced.pid],
      [url, stack.proc.pid],
      "ledger.url names the banner's URL and the stack's pid",
    );
    assert.equal(statSync(join(dataDir, 'ledger')).mode & 0o777, 0o700, "the ledger's files are their owner's only");

    const probe = await probeLedger();
    assert.equal(probe.url, url, 'the same database');
    assert.deepEqual(
      probe.embedded,
      { dir: join(dataDir, 'ledger'), hosted: false, pid: stack.proc.pid },
      'shared with npm start, not hosted by the second process',
    );
    for (const t of ['leads', 'lead_events', 'lead_transitions', 'ledger_migrations'])
      assert.ok(probe.tables.includes(t), `migrated: ${t} exists (${probe.tables})`);
    assert.equal(typeof probe.leads, 'number', 'SELECT count(*) FROM leads answers');
    // A mark, to find again after a restart: the ledger lives in DATA_DIR/ledger, not in the stack's memory.
    await ledgerQuery(
      url,
      `CREATE TABLE stack_test_mark (mark text); INSERT INTO stack_test_mark VALUES ('${marker}')`,
    );
  });

  it('runs a lead through the API: demo request, sql with an owner, handoff mail in the outbox, accepted', async () => {
    assert.ok(stack, 'the stack is running');
    const created = await api('POST', '/v1/leads', {
      leadId,
      email,
      firstName: 'Kim',
      company,
      seniority: 'vp',
      companySize: 500,
      country: 'US',
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.equal(
      (await api('POST', '/v1/leads', { leadId: otherLeadId, email: 'lee@smallco.example', country: 'US' })).status,
      201,
    );
    const ev = await api('POST', '/v1/events', { leadId, eventId: `${leadId}-demo`, type: 'demo_request' });
    assert.equal(ev.status, 202, JSON.stringify(ev.json));
    const sql = await eventually('stage sql with an owner', async () => {
      const r = await api('GET', `/v1/leads/${leadId}`);
      return r.status === 200 && r.json.stage === 'sql' && r.json.owner ? r.json : undefined;
    });
    owner = sql.owner;

    const outbox = join(dataDir, 'outbox');
    const handoff = await eventually('the handoff mail in the outbox', async () => {
      for (const name of readdirSync(outbox).filter((n) => n.endsWith('.eml'))) {
        const mail = await simpleParser(readFileSync(join(outbox, name)));
        if (mail.headers.get('x-lead-handoff') === '1' && mail.headers.get('x-lead-id') === leadId)
          return { name, mail };
      }
      return undefined;
    });
    assert.match(
      handoff.name,
      /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z-[A-Za-z0-9._@+-]+\.eml$/,
      'outbox file name: <timestamp>-<safe message id>.eml',
    );
    assert.ok(handoff.name.includes(`handoff.${leadId}`), `the file name carries the Message-ID: ${handoff.name}`);
    const to = handoff.mail.to && !Array.isArray(handoff.mail.to) ? handoff.mail.to.value.map((a) => a.address) : [];
    assert.deepEqual(to, [owner], 'the handoff goes to the owner');
    assert.ok(handoff.mail.text?.includes('/l/sales?'), 'the handoff mail links to the sales page');
    // The mail and the ledger hold addresses: files 0600 in folders 0700.
    assert.equal(statSync(outbox).mode & 0o777, 0o700, "the outbox folder is its owner's only");
    assert.equal(statSync(join(outbox, handoff.name)).mode & 0o777, 0o600, "an outbox file is its owner's only");
    assert.equal(
      statSync(join(dataDir, 'ledger')).mode & 0o777,
      0o700,
      "the embedded ledger's folder is its owner's only",
    );
    // The send ledger is the ledger's `mails` table: the handoff's row, sent.
    const probe = await probeLedger();
    const mails = await ledgerQuery(
      probe.url,
      `SELECT kind, status, recipient FROM mails WHERE lead_id = '${leadId}' AND kind = 'handoff'`,
    );
    assert.deepEqual(
      mails.rows,
      [{ kind: 'handoff', status: 'sent', recipient: owner }],
      'the send ledger has the handoff as sent',
    );

    const accepted = await api('POST', `/v1/leads/${leadId}/sales-outcome`, { outcome: 'accepted', rep: owner });
    assert.equal(accepted.status, 200, JSON.stringify(accepted.json));
    assert.equal(accepted.json.stage, 'opportunity');
  });

  it("keeps no plaintext profile in Temporal's database: the SQLite file and its WAL have the lead id, not its address", async () => {
    assert.ok(stack, 'the stack is running');
    // Every payload in the lead's history, as Temporal stores it (a client without the codec), is encrypted.
    const connection = await Connection.connect({ address: `127.0.0.1:${ports.temporal}` });
    try {
      const { history } = await connection.workflowService.getWorkflowExecutionHistory({
        namespace: 'default',
        execution: { workflowId: `lead-${leadId}` },
      });
      const encodings = new Map<string, number>();
      const walk = (v: unknown, path: string): void => {
        if (!v || typeof v !== 'object' || v instanceof Uint8Array) return;
        const o = v as Record<string, unknown>;
        if (
          o.metadata &&
          typeof o.metadata === 'object' &&
          'data' in o &&
          !/searchAttributes|indexedFields/.test(path)
        ) {
          const enc = Buffer.from((o.metadata as Record<string, Uint8Array>).encoding ?? new Uint8Array()).toString();
          encodings.set(enc, (encodings.get(enc) ?? 0) + 1);
          // The SDK core writes its own bookkeeping into markers in clear (a local activity's seq and
          // type; a patch marker's id under `patch-data`); what the engine sends (a local activity's
          // result) is in the marker's other details.
          if (/markerRecordedEventAttributes\.details\.(data|patch-data)\./.test(path))
            assert.ok(!Buffer.from(o.data as Uint8Array).includes(email), `${path} holds the address`);
          else assert.equal(enc, ENCRYPTED_ENCODING, `payload at ${path} is stored as ${enc}`);
          return;
        }
        for (const [k, child] of Object.entries(o)) walk(child, `${path}.${k}`);
      };
      walk(history?.events, 'events');
      assert.ok(
        (encodings.get(ENCRYPTED_ENCODING) ?? 0) >= 3,
        `the history has encrypted payloads (${JSON.stringify([...encodings])})`,
      );
    } finally {
      await connection.close();
    }
    const files = ['temporal.db', 'temporal.db-wal'].map((f) => join(dataDir, f)).filter(existsSync);
    assert.ok(files.length >= 1, 'the dev server keeps its state in DATA_DIR/temporal.db');
    const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
    assert.ok(
      bytes.includes(`lead-${leadId}`),
      'control: the workflow id (not secret) is in the database, so the search itself works',
    );
    for (const secret of [email, company, marker])
      assert.equal(bytes.includes(secret), false, `"${secret}" is in Temporal's database in clear`);
  });

  it('shows the lead in the Temporal UI filtered by LeadStage="opportunity"', async (t) => {
    assertChromium();
    assert.ok(stack, 'the stack is running');
    const userDataDir = mkdtempSync(join(root, 'chromium-'));
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
      viewport: { width: 1400, height: 900 },
    });
    const screenshot = join(root, 'temporal-ui-opportunity.png');
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const url = `http://127.0.0.1:${ports.ui}/namespaces/default/workflows?query=${encodeURIComponent('LeadStage="opportunity"')}`;
      const wanted = page.getByText(`lead-${leadId}`, { exact: true });
      // Visibility is eventually consistent: reload until the list has caught up with the accept.
      await eventually(
        `lead-${leadId} in the UI list`,
        async () => {
          await page.goto(url, { waitUntil: 'domcontentloaded' });
          await wanted.first().waitFor({ state: 'visible', timeout: 5_000 });
          return true;
        },
        60_000,
      );
      await page.screenshot({ path: screenshot, fullPage: true });
      assert.equal(
        await page.getByText(`lead-${otherLeadId}`, { exact: true }).count(),
        0,
        'the lead still in stage lead is filtered out',
      );
      const body = (await page.textContent('body')) ?? '';
      assert.ok(body.includes(`lead-${leadId}`));
      // The lead's page shows its input decoded: the UI calls the API's codec server (no token: the UI's origin on loopback).
      await page.goto(`http://127.0.0.1:${ports.ui}/namespaces/default/workflows/lead-${encodeURIComponent(leadId)}`, {
        waitUntil: 'domcontentloaded',
      });
      await page
        .waitForFunction((wanted) => document.body.innerText.includes(wanted), email, { timeout: 60_000 })
        .catch((err) => {
          throw new Error(`the lead's page does not show its decoded address ${email}: ${(err as Error).message}`);
        });
      await page.screenshot({ path: join(root, 'temporal-ui-decoded.png'), fullPage: true });
      t.diagnostic(`Temporal UI screenshot: ${screenshot}`);
    } catch (err) {
      await context
        .pages()[0]
        ?.screenshot({ path: screenshot, fullPage: true })
        .catch(() => undefined);
      throw new Error(`${(err as Error).message} (screenshot: ${screenshot})`);
    } finally {
      await context.close();
    }
  });

  it('stops on SIGINT: exit 0, every child gone, every port closed', async () => {
    assert.ok(stack, 'the stack is running');
    stack.proc.kill('SIGINT');
    const exit = await Promise.race([stack.exited, deadline(60_000)]);
    assert.ok(exit, `the stack did not exit within 60s of SIGINT:\n${tail(stack.output())}`);
    assert.deepEqual(exit, { code: 0, signal: null }, tail(stack.output()));
    const out = stack.output();
    const order = ['api stopped', 'worker stopped', '[smtp] stopped', 'temporal stopped', '[ledger] stopped'].map(
      (s) => [s, out.indexOf(s)] as const,
    );
    for (const [what, at] of order) assert.ok(at >= 0, `the stack says "${what}":\n${tail(out)}`);
    assert.ok(
      Math.max(order[0]![1], order[1]![1]) < order[2]![1] && order[2]![1] < order[3]![1],
      `the worker and the API stop first, the Temporal server last:\n${tail(out)}`,
    );
    assert.ok(order[3]![1] < order[4]![1], `the ledger stops after everything that uses it:\n${tail(out)}`);
    await assertAllGone(stack, ports);
  });

  it('starts again on the same data folder and the lead is still there', async () => {
    const before = token;
    stack = await startStack(dataDir, ports);
    assert.ok(!stack.output().includes('generated an API token'), 'the token is not generated again');
    assert.equal(readFileSync(join(dataDir, 'api-token'), 'utf8').trim(), before, 'the token file is kept');
    const r = await api('GET', `/v1/leads/${leadId}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.stage, 'opportunity');
    assert.equal(r.json.owner, owner);
    assert.ok(
      r.json.transitions.some((t: { to: string }) => t.to === 'sql'),
      'its history came back with it',
    );
    const probe = await probeLedger();
    assert.deepEqual(
      [probe.url, probe.embedded?.hosted, probe.embedded?.pid],
      [ledgerUrl(stack), false, stack.proc.pid],
      'the new stack hosts the ledger',
    );
    const mark = await ledgerQuery(probe.url, 'SELECT mark FROM stack_test_mark');
    assert.deepEqual(mark.rows, [{ mark: marker }], "the ledger's data came back with it");
  });

  it('stops everything and exits non-zero, naming the child, when a child dies', async () => {
    assert.ok(stack, 'the stack is running');
    const worker = stack.pids().get('worker');
    assert.ok(worker, 'the stack reported the worker pid');
    process.kill(worker, 'SIGKILL');
    const exit = await Promise.race([stack.exited, deadline(60_000)]);
    assert.ok(exit, `the stack did not exit within 60s of its worker dying:\n${tail(stack.output())}`);
    assert.notEqual(exit.code, 0);
    assert.match(stack.output(), /worker exited unexpectedly \(signal SIGKILL\)/);
    await assertAllGone(stack, ports);
  });

  it('stops in one line naming DATABASE_URL without its password, starting nothing, when that database does not answer', async () => {
    const dir = join(root, 'unreachable');
    mkdirSync(dir);
    const p: Ports = {
      temporal: await freePort(),
      ui: await freePort(),
      smtp: await freePort(),
      api: await freePort(),
    };
    const dbPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NO_COLOR: '1',
      DATA_DIR: dir,
      DATABASE_URL: `postgres://engine:s3cret${marker}@127.0.0.1:${dbPort}/ledger`,
      TEMPORAL_PORT: String(p.temporal),
      TEMPORAL_UI_PORT: String(p.ui),
      SMTP_PORT: String(p.smtp),
      API_PORT: String(p.api),
    };
    for (const k of ['TEMPORAL_ADDRESS', 'SMTP_URL', 'API_TOKEN', 'LINK_SECRET', 'PAYLOAD_KEYS']) delete env[k];
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/stack.ts'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exit = await Promise.race([new Promise<number | null>((r) => proc.once('exit', r)), deadline(60_000)]);
    if (exit === undefined) proc.kill('SIGKILL');
    assert.notEqual(exit, undefined, `npm start did not stop within 60s:\n${stdout}${stderr}`);
    assert.notEqual(exit, 0, 'a non-zero exit code');
    const lines = stderr.split('\n').filter((l) => l.trim());
    assert.equal(lines.length, 1, `one line on stderr:\n${stderr}`);
    assert.match(
      lines[0]!,
      new RegExp(
        `^\\[stack\\] error: the lead ledger database postgres://engine@127\\.0\\.0\\.1:${dbPort}/ledger is not reachable: \\S`,
      ),
    );
    assert.ok(!(stdout + stderr).includes(`s3cret${marker}`), 'the password is never shown');
    assert.doesNotMatch(stdout, /\[stack\] started |local stack ready/, `nothing was started:\n${stdout}`);
    assert.equal(existsSync(join(dir, 'temporal.db')), false, 'no Temporal server ran');
    for (const [name, port] of Object.entries(p))
      assert.equal(await listening(port), false, `port ${port} (${name}) is open`);
  });
});
