/**
 * The embedded lead ledger is one process's (PGlite owns its files), shared by the others of the
 * machine through DATA_DIR/ledger.url: two openDatabase calls of one process share one host, a
 * second process connects to the first's, two processes starting at once host once, and a lock or
 * URL file left by a process that is gone (a dead pid, a pid reused) is ignored and taken over,
 * while a live host that does not answer is waited for and then named, never hosted over.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { freePort } from '../../bench/proc.js';
import { ROOT } from '../../src/env.js';
import {
  type Database,
  DatabaseUnreachable,
  embeddedLockFile,
  embeddedUrlFile,
  EmbeddedDatabaseBusy,
  hostEmbeddedDatabase,
  openDatabase,
  openLedgerDatabase,
  readEmbeddedUrl,
} from '../../src/ledger/database.js';

const dirs: string[] = [];
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const fn of cleanups.reverse())
    await Promise.resolve()
      .then(fn)
      .catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const dataDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'ledger-share-'));
  dirs.push(d);
  return d;
};

/** A pid that was a process of this user and is not any more. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'console.log(process.pid)']);
  const pid = Number(r.stdout.toString().trim());
  assert.ok(pid > 0);
  return pid;
}

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

interface Probe {
  pid: number;
  url: string;
  describe: string;
  embedded: { dir: string; hosted: boolean; pid: number };
  leads: number;
  tables: string[];
}

/** test/helpers/ledger-probe.ts in a process of its own: openDatabase({ dataDir }) as leadctl would. */
function probe(dir: string, holdMs = 0): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dir, HOLD_MS: String(holdMs) };
    delete env.DATABASE_URL;
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/ledger-probe.ts'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Probe);
      else reject(new Error(`ledger-probe exited ${code}: ${err}${out}`));
    });
  });
}

describe('the embedded lead ledger, shared through DATA_DIR/ledger.url', () => {
  test('two openDatabase calls of one process share one host, which stops with the last close', async () => {
    const dir = dataDir();
    const opened = await Promise.allSettled([openDatabase({ dataDir: dir }), openDatabase({ dataDir: dir })]);
    for (const o of opened) if (o.status === 'fulfilled') cleanups.push(() => o.value.close());
    const [a, b] = opened.map((o) => {
      if (o.status === 'rejected') throw o.reason;
      return o.value;
    }) as [Database, Database];
    assert.equal(a.url, b.url, 'one database');
    assert.deepEqual([a.embedded?.hosted, b.embedded?.hosted, a.embedded?.pid], [true, true, process.pid]);
    assert.equal(a.embedded?.dir, join(dir, 'ledger'));

    const file = embeddedUrlFile(join(dir, 'ledger'));
    assert.equal(file, join(dir, 'ledger.url'));
    assert.equal(statSync(file).mode & 0o777, 0o600, "ledger.url is its owner's only");
    assert.deepEqual(
      { ...JSON.parse(readFileSync(file, 'utf8')), start: undefined },
      { url: a.url, pid: process.pid, start: undefined },
      'ledger.url says the URL and the pid',
    );
    assert.ok(existsSync(join(dir, 'ledger.lock')), 'the host holds the lock');

    await a.pool.query(
      `INSERT INTO leads (lead_id, stage, consent, score, created_at, state, version) VALUES ('shared-1', 'lead', 'subscribed', 1, now(), '{}', 1)`,
    );
    assert.equal(
      (await b.pool.query(`SELECT count(*)::int AS n FROM leads WHERE lead_id = 'shared-1'`)).rows[0].n,
      1,
      'a write through one is read through the other',
    );

    await a.close();
    assert.equal(
      (await b.pool.query('SELECT count(*)::int AS n FROM leads')).rows[0].n,
      1,
      'the other still works after the first closed',
    );
    const port = Number(new URL(b.url).port);
    await b.close();
    assert.equal(await listening(port), false, 'the last close stops the server');
    assert.equal(existsSync(file), false, 'ledger.url is removed at close');
    assert.equal(existsSync(join(dir, 'ledger.lock')), false, 'the lock is released at close');

    const again = await openDatabase({ dataDir: dir });
    cleanups.push(() => again.close());
    assert.equal(
      (await again.pool.query('SELECT count(*)::int AS n FROM leads')).rows[0].n,
      1,
      'the data outlives the host',
    );
    await again.close();
  });

  test("another process connects to this one's host through ledger.url instead of hosting", async () => {
    const dir = dataDir();
    const db = await openDatabase({ dataDir: dir });
    cleanups.push(() => db.close());
    await db.pool.query(
      `INSERT INTO leads (lead_id, stage, consent, score, created_at, state, version) VALUES ('x-1', 'mql', 'subscribed', 50, now(), '{}', 1)`,
    );
    const other = await probe(dir);
    assert.notEqual(other.pid, process.pid);
    assert.equal(other.url, db.url, 'the same server');
    assert.deepEqual(
      other.embedded,
      { dir: join(dir, 'ledger'), hosted: false, pid: process.pid },
      'shared with this process, not hosted',
    );
    assert.equal(other.leads, 1, 'it reads what this process wrote');
    assert.ok(other.tables.includes('ledger_migrations'), 'migrated');
    await db.close();
  });

  test('two processes starting at once on a new data folder host it once', async () => {
    const dir = dataDir();
    const [p, q] = await Promise.all([probe(dir, 12_000), probe(dir, 12_000)]);
    assert.equal(p.url, q.url, 'one server');
    assert.deepEqual([p.embedded.hosted, q.embedded.hosted].sort(), [false, true], 'one hosts, the other connects');
    const host = p.embedded.hosted ? p : q;
    assert.equal((p.embedded.hosted ? q : p).embedded.pid, host.pid);
    assert.equal(existsSync(join(dir, 'ledger.url')), false, 'the host removed ledger.url when it closed');
    assert.equal(existsSync(join(dir, 'ledger.lock')), false);
  });

  test('a ledger.url and a lock left by a dead process are ignored and taken over, even when the URL answers', async () => {
    const dir = dataDir();
    const elsewhere = await openDatabase({ dataDir: dataDir() }); // a live server the stale file points at
    cleanups.push(() => elsewhere.close());
    const ledgerDir = join(dir, 'ledger');
    const gone = deadPid();
    writeFileSync(embeddedUrlFile(ledgerDir), JSON.stringify({ url: elsewhere.url, pid: gone }), { mode: 0o600 });
    writeFileSync(embeddedLockFile(ledgerDir), JSON.stringify({ pid: gone }), { mode: 0o600 });
    assert.equal(readEmbeddedUrl(ledgerDir), undefined, 'a URL file of a dead pid is not an answer');

    const db = await openDatabase({ dataDir: dir, waitMs: 5_000 });
    cleanups.push(() => db.close());
    assert.notEqual(db.url, elsewhere.url, 'not the server the stale file named');
    assert.deepEqual([db.embedded?.hosted, db.embedded?.pid], [true, process.pid]);
    assert.equal(
      JSON.parse(readFileSync(embeddedUrlFile(ledgerDir), 'utf8')).pid,
      process.pid,
      "ledger.url is this host's now",
    );
    assert.equal(JSON.parse(readFileSync(embeddedLockFile(ledgerDir), 'utf8')).pid, process.pid, 'and so is the lock');
    await db.close();
    await elsewhere.close();
  });

  test("a lock with this process's pid from an earlier process (a pid reused, as in a restarted container) is stale", async () => {
    const dir = dataDir();
    writeFileSync(
      embeddedLockFile(join(dir, 'ledger')),
      JSON.stringify({ pid: process.pid, start: 'another-boot:1' }),
      { mode: 0o600 },
    );
    const db = await openDatabase({ dataDir: dir, waitMs: 5_000 });
    cleanups.push(() => db.close());
    assert.equal(db.embedded?.hosted, true);
    await db.close();
  });

  test('a live process holding the lock is never hosted over: waited for, then named', async () => {
    const dir = dataDir();
    const ledgerDir = join(dir, 'ledger');
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    cleanups.push(() => holder.kill('SIGKILL'));
    const silent = await freePort();
    writeFileSync(embeddedLockFile(ledgerDir), JSON.stringify({ pid: holder.pid }), { mode: 0o600 });
    writeFileSync(
      embeddedUrlFile(ledgerDir),
      JSON.stringify({ url: `postgres://postgres@127.0.0.1:${silent}/postgres`, pid: holder.pid }),
      { mode: 0o600 },
    );

    await assert.rejects(
      hostEmbeddedDatabase(ledgerDir),
      (err: unknown) => err instanceof EmbeddedDatabaseBusy && err.pid === holder.pid,
    );
    const started = Date.now();
    const err = await openDatabase({ dataDir: dir, waitMs: 1_500 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof DatabaseUnreachable, String(err));
    assert.ok(Date.now() - started >= 1_400, 'it waited for the host to answer');
    assert.equal(
      err.message,
      `the lead ledger database embedded in ${ledgerDir} is not reachable: it is hosted by process ${holder.pid}, which does not answer on postgres://postgres@127.0.0.1:${silent}/postgres`,
    );
    assert.equal(
      JSON.parse(readFileSync(embeddedLockFile(ledgerDir), 'utf8')).pid,
      holder.pid,
      'the live holder keeps its lock',
    );
    assert.equal(existsSync(join(ledgerDir, 'PG_VERSION')), false, 'no files were created under it');

    // Once the holder is gone, the next open takes over.
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    const db = await openDatabase({ dataDir: dir, waitMs: 5_000 });
    cleanups.push(() => db.close());
    assert.equal(db.embedded?.hosted, true);
    await db.close();
  });
});

describe('openLedgerDatabase: what the entry points call', () => {
  test('says where the ledger is in one line', async () => {
    const dir = dataDir();
    const lines: string[] = [];
    const db = await openLedgerDatabase({ dataDir: dir }, (l) => lines.push(l));
    cleanups.push(() => db.close());
    assert.deepEqual(lines, [
      `lead ledger: embedded PostgreSQL (PGlite) in ${join(dir, 'ledger')}, hosted by this process on ${db.url}`,
    ]);
    const shared = await openLedgerDatabase({ databaseUrl: db.url, dataDir: dataDir() }, (l) => lines.push(l));
    assert.equal(lines[1], `lead ledger: PostgreSQL at ${db.url}`);
    await shared.close();
    await db.close();
  });

  test('an unreachable DATABASE_URL is DatabaseUnreachable: one line, the URL without its password', async () => {
    const port = await freePort();
    const err = await openLedgerDatabase(
      { databaseUrl: `postgres://engine:s3cret@localhost:${port}/ledger`, dataDir: dataDir() },
      undefined,
      { connectTimeoutMs: 2_000 },
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof DatabaseUnreachable, String(err));
    assert.match(
      err.message,
      new RegExp(`^the lead ledger database postgres://engine@localhost:${port}/ledger is not reachable: \\S`),
    );
    assert.doesNotMatch(err.message, /s3cret|\n/);
  });
});
