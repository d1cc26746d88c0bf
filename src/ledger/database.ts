/**
 * The lead ledger's database: PostgreSQL, always spoken to through the `pg` driver.
 *
 * - `DATABASE_URL` (postgres://…) names a real server: production, docker-compose.yml, the tests'
 *   own PostgreSQL.
 * - Without it, an embedded PostgreSQL (PGlite, PostgreSQL compiled to WASM: nothing to install)
 *   keeps its files under DATA_DIR/ledger and is served on loopback by PGlite's socket server, so
 *   the SQL, the driver and the migrations are the same as on a real server. `npm start` hosts it
 *   and hands its URL to the worker and the API; a process run alone hosts its own.
 *
 * PGlite is one process on its files, so the processes of one machine share one host: whoever
 * hosts DATA_DIR/ledger holds DATA_DIR/ledger.lock (created exclusively, holding its pid) and
 * writes DATA_DIR/ledger.url (mode 0600: its URL and pid), both removed when it closes. Another
 * process (leadctl while `npm start` runs, a second worker) finds the URL there and connects
 * instead of hosting; a lock or URL file left by a process that is gone (its pid dead, or reused
 * by another process since) is ignored and taken over.
 *
 * The schema is created and migrated at start (migrations/, node-pg-migrate), under an advisory
 * lock (and, on the embedded database, where that lock excludes no one, by running again after a
 * conflict), so several processes starting at once migrate once.
 */
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { ROOT, settings } from '../env.js';
import { pinExtendedQueries } from './pglite-queue.js';

export const MIGRATIONS_DIR = join(ROOT, 'migrations');

export interface Database {
  pool: pg.Pool;
  /** What other processes connect to (the embedded database's loopback URL included). */
  url: string;
  /** Where it is (a password is never shown). */
  describe: string;
  /** The embedded database's folder, and whether this process hosts it or shares another's (pid). */
  embedded?: { dir: string; hosted: boolean; pid: number };
  close(): Promise<void>;
}

/** An embedded PostgreSQL served on loopback; `url` is what the other processes connect to. */
export interface EmbeddedDatabase {
  url: string;
  dir: string;
  close(): Promise<void>;
}

/** The file where the host of the embedded database in `dir` says its URL and pid: DATA_DIR/ledger.url. */
export const embeddedUrlFile = (dir: string) => `${resolve(dir)}.url`;
/** Held, for as long as it hosts, by the one process that hosts the embedded database in `dir`. */
export const embeddedLockFile = (dir: string) => `${resolve(dir)}.lock`;

/** Another live process hosts the embedded database in `dir` (holds its lock). */
export class EmbeddedDatabaseBusy extends Error {
  /** "it is hosted by process N…", for a message that has named the folder already. */
  readonly reason: string;
  constructor(
    readonly dir: string,
    readonly pid: number | undefined,
    detail = '',
  ) {
    const reason = `it is hosted by ${pid ? `process ${pid}` : 'another process'}${detail}`;
    super(`the embedded lead ledger in ${dir}: ${reason}`);
    this.name = 'EmbeddedDatabaseBusy';
    this.reason = reason;
  }
}

/** Who holds a lock or wrote a URL file: a pid, and on Linux the boot and start time of that process. */
interface Holder {
  pid: number;
  start?: string;
}
interface UrlFile extends Holder {
  url: string;
}

/**
 * What tells a process from a later one with the same pid: the boot id and the process's start
 * time in clock ticks (/proc/PID/stat, field 22). Undefined where there is no /proc.
 */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const starttime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]; // fields from the 3rd on
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return starttime ? `${boot}:${starttime}` : undefined;
  } catch {
    return undefined;
  }
}

const ME: Holder = { pid: process.pid, start: processStart(process.pid) };

/** Folders whose embedded database this process hosts (holds the lock of): their files, to remove at exit. */
const hostedHere = new Map<string, { lock: string; url?: string }>();
let exitHookInstalled = false;
const removeIfMine = (file: string, text: string | undefined) => {
  try {
    if (text !== undefined && readFileSync(file, 'utf8') === text) unlinkSync(file);
  } catch {
    // gone already
  }
};

/** Whether the process that wrote `h` is still running (and is the same process, not a later one with its pid). */
function holderAlive(h: Holder, dir: string): boolean {
  if (h.pid === process.pid) return h.start === ME.start && hostedHere.has(dir);
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false; // ESRCH: no such process
  }
  const start = h.start && processStart(h.pid);
  return !(start && start !== h.start);
}

function readHolder<T extends Holder>(file: string): { text: string; holder?: T } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const h = JSON.parse(text) as T;
    return { text, holder: Number.isInteger(h?.pid) && h.pid > 0 ? h : undefined };
  } catch {
    return { text };
  }
}

/** The URL the host of the embedded database in `dir` wrote, when its process is still running. */
export function readEmbeddedUrl(dir: string): UrlFile | undefined {
  const read = readHolder<UrlFile>(embeddedUrlFile(dir));
  const h = read?.holder;
  return h && typeof h.url === 'string' && holderAlive(h, resolve(dir)) ? h : undefined;
}

/**
 * Removes a stale lock that still reads `seen`. It is renamed away first and checked, so that a
 * lock another process created meanwhile (after a third removed the stale one) is put back, not lost.
 */
function takeOverStaleLock(file: string, seen: string): void {
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(file, aside);
  } catch {
    return; // someone else took it over first
  }
  try {
    if (readFileSync(aside, 'utf8') !== seen) linkSync(aside, file); // fails if a newer lock exists: then that one stands
  } catch {
    // the newer lock stands
  } finally {
    try {
      unlinkSync(aside);
    } catch {
      // gone
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Takes the lock of the embedded database in `dir` (resolved), waiting up to `waitMs` for a live holder. */
async function acquireEmbeddedLock(dir: string, waitMs: number): Promise<string> {
  const file = embeddedLockFile(dir);
  const text = `${JSON.stringify(ME)}\n`;
  const until = Date.now() + waitMs;
  for (;;) {
    if (!hostedHere.has(dir)) {
      try {
        writeFileSync(file, text, { flag: 'wx', mode: 0o600 });
        hostedHere.set(dir, { lock: text }); // at once, before any await: this process's own callers see it held
        return text;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const read = readHolder(file);
      if (!read) continue; // removed meanwhile
      // A lock without a pid is one whose writer died between creating and writing it, unless it is brand new.
      const stale = read.holder ? !holderAlive(read.holder, dir) : Date.now() - mtime(file) > 5_000;
      if (stale) {
        takeOverStaleLock(file, read.text);
        continue;
      }
      if (Date.now() >= until) throw new EmbeddedDatabaseBusy(dir, read.holder?.pid);
    } else if (Date.now() >= until) {
      throw new EmbeddedDatabaseBusy(dir, process.pid, ' (this process)');
    }
    await sleep(100);
  }
}

const mtime = (file: string) => {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return Date.now();
  }
};

/**
 * Hosts the embedded database of `dir` (PGlite: one process owns the files) on 127.0.0.1, holding
 * `dir`.lock for as long and announcing itself in `dir`.url. Another live process hosting it is
 * EmbeddedDatabaseBusy (after waiting up to `waitMs` for it to stop, default 0).
 */
export async function hostEmbeddedDatabase(
  dir: string,
  o: { port?: number; waitMs?: number; vacuumEveryMs?: number } = {},
): Promise<EmbeddedDatabase> {
  dir = resolve(dir);
  mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
  const lockText = await acquireEmbeddedLock(dir, o.waitMs ?? 0);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // An exit without close() (process.exit, an uncaught error) leaves no file that names this process.
    process.on('exit', () => {
      for (const [d, files] of hostedHere) {
        removeIfMine(embeddedUrlFile(d), files.url);
        removeIfMine(embeddedLockFile(d), files.lock);
      }
    });
  }
  const release = () => {
    removeIfMine(embeddedLockFile(dir), lockText);
    hostedHere.delete(dir);
  };
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  let url: string;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    db = await PGlite.create(dir);
    // PGlite is one connection; the socket server multiplexes several clients onto it, keeping a
    // transaction's queries together.
    server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: o.port ?? 0, maxConnections: 64 });
    pinExtendedQueries(server); // keeps each connection's query together (./pglite-queue.ts)
    await server.start();
    const port = (server as unknown as { server: { address(): AddressInfo } }).server.address().port;
    url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    // Migrated before it is announced: every client of PGlite is the same session, where the
    // migrations' advisory lock excludes no one, so two processes migrating at once could run into
    // each other's transaction (seen: "current transaction is aborted"). Announced only once
    // migrated, every other process finds nothing left to do.
    const migrating = new pg.Pool({ connectionString: url, max: 1 });
    try {
      await migrate(migrating);
    } finally {
      await migrating.end();
    }
    // Written aside and renamed: a reader sees the whole file or none.
    const urlText = `${JSON.stringify({ url, ...ME })}\n`;
    const aside = `${embeddedUrlFile(dir)}.${process.pid}.tmp`;
    writeFileSync(aside, urlText, { mode: 0o600 });
    renameSync(aside, embeddedUrlFile(dir));
    hostedHere.get(dir)!.url = urlText;
  } catch (err) {
    await server?.stop().catch(() => undefined);
    await db?.close().catch(() => undefined);
    release();
    throw err;
  }
  // PGlite runs no autovacuum: every lead update leaves a dead row version, so the host vacuums
  // itself (through its own socket, so the query queue keeps it apart from others' queries).
  const vacuum = setInterval(() => void vacuumOnce(url), o.vacuumEveryMs ?? VACUUM_EVERY_MS);
  vacuum.unref();
  let closing: Promise<void> | undefined;
  return {
    url,
    dir,
    close() {
      closing ??= (async () => {
        clearInterval(vacuum);
        // No one new finds it while it stops; the lock is held until the files are closed.
        removeIfMine(embeddedUrlFile(dir), hostedHere.get(dir)?.url);
        try {
          await server!.stop();
          await db!.close();
        } finally {
          release();
        }
      })();
      return closing;
    },
  };
}

/** How often the host of an embedded database vacuums it (src/env.ts, default hourly). */
const VACUUM_EVERY_MS = settings().ledgerVacuumEveryMs;

/** VACUUM (ANALYZE) on `url`; a failure (the host stopping) is left for the next round. */
export async function vacuumOnce(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('VACUUM (ANALYZE)');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether a PostgreSQL server answers a query on `url` within `timeoutMs`. */
async function answers(url: string, timeoutMs = 2_000): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The embedded databases this process hosts for openDatabase, shared by its callers (closed with the last). */
const sharedHere = new Map<string, { host: Promise<EmbeddedDatabase>; refs: number }>();

interface Attached {
  url: string;
  hosted: boolean;
  pid: number;
  release(): Promise<void>;
}

/**
 * The embedded database in `dir`: the one this process already hosts, else the one another live
 * process announces in `dir`.url (if it answers), else hosted here. Waits up to `waitMs` for a
 * process that holds the lock but does not answer yet (one starting up).
 */
async function attachEmbedded(dir: string, waitMs: number): Promise<Attached> {
  const until = Date.now() + waitMs;
  const mine = (entry: { host: Promise<EmbeddedDatabase>; refs: number }, e: EmbeddedDatabase): Attached => {
    let released = false;
    return {
      url: e.url,
      hosted: true,
      pid: process.pid,
      async release() {
        if (released) return;
        released = true;
        if (--entry.refs > 0) return;
        if (sharedHere.get(dir) === entry) sharedHere.delete(dir);
        await e.close();
      },
    };
  };
  let busy: EmbeddedDatabaseBusy | undefined;
  for (;;) {
    const existing = sharedHere.get(dir);
    if (existing) {
      existing.refs++;
      try {
        return mine(existing, await existing.host);
      } catch {
        existing.refs--; // its host failed; the loop looks again
      }
    } else {
      const announced = readEmbeddedUrl(dir);
      if (announced && (await answers(announced.url))) {
        return { url: announced.url, hosted: false, pid: announced.pid, release: async () => undefined };
      }
      if (!sharedHere.has(dir)) {
        const entry = { host: hostEmbeddedDatabase(dir), refs: 1 };
        sharedHere.set(dir, entry);
        try {
          return mine(entry, await entry.host);
        } catch (err) {
          if (sharedHere.get(dir) === entry) sharedHere.delete(dir);
          if (!(err instanceof EmbeddedDatabaseBusy)) throw err;
          const other = readEmbeddedUrl(dir);
          busy = other
            ? new EmbeddedDatabaseBusy(dir, err.pid, `, which does not answer on ${other.url}`)
            : new EmbeddedDatabaseBusy(dir, err.pid, ', which has not said where it listens');
        }
      }
    }
    if (Date.now() >= until && busy) throw busy;
    await sleep(200);
  }
}

/** `postgres://user:secret@host/db` shown as `postgres://user@host/db`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString().replace(/:@/, '@');
  } catch {
    return '(an unparseable DATABASE_URL)';
  }
}

export class DatabaseUnreachable extends Error {
  constructor(where: string, cause: unknown, what = 'is not reachable') {
    super(`the lead ledger database ${where} ${what}: ${causeText(cause)}`.replace(/\s*\n\s*/g, ' '));
    this.name = 'DatabaseUnreachable';
  }
}

/** An error's message; an AggregateError (every address of a host refused) has none of its own. */
function causeText(cause: unknown): string {
  const e = cause as (Error & { code?: string; errors?: unknown[] }) | undefined;
  if (e?.message) return e.message;
  if (Array.isArray(e?.errors) && e.errors.length) return [...new Set(e.errors.map(causeText))].join('; ');
  return e?.code ?? String(cause);
}

/**
 * Connects to `url`, or without one to the embedded database under `dataDir` (DATA_DIR/ledger):
 * the one another process of this machine hosts and announces in DATA_DIR/ledger.url, else hosted
 * by this process (waiting up to `waitMs`, default 30 s, for a host that is starting). Checks that it
 * answers and migrates the schema. A database that does not answer within `connectTimeoutMs` is
 * DatabaseUnreachable naming it.
 */
export async function openDatabase(o: {
  url?: string;
  dataDir?: string;
  max?: number;
  connectTimeoutMs?: number;
  migrate?: boolean;
  waitMs?: number;
}): Promise<Database> {
  let embedded: (Attached & { dir: string }) | undefined;
  let url = o.url;
  if (!url) {
    const dir = join(resolve(o.dataDir ?? join(ROOT, '.data')), 'ledger');
    try {
      embedded = { ...(await attachEmbedded(dir, o.waitMs ?? 30_000)), dir };
    } catch (err) {
      if (err instanceof EmbeddedDatabaseBusy) throw new DatabaseUnreachable(`embedded in ${dir}`, err.reason);
      throw new DatabaseUnreachable(`embedded in ${dir}`, err, 'could not be hosted');
    }
    url = embedded.url;
  }
  const describe = embedded ? `embedded in ${embedded.dir}` : redactUrl(url);
  // A server that stops answering without refusing connections must not hold a request (or a
  // lead's write, which then retries) for ever: a query gives up after 20 s.
  const pool = new pg.Pool({
    connectionString: url,
    max: o.max ?? 10,
    connectionTimeoutMillis: o.connectTimeoutMs ?? 5_000,
    idleTimeoutMillis: 30_000,
    query_timeout: 20_000,
  });
  // An idle client that loses its server (a restart) must not crash the process: the next query reconnects.
  pool.on('error', () => undefined);
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      await pool.end().catch(() => undefined);
      await embedded?.release();
    })());
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await close();
    throw new DatabaseUnreachable(describe, err);
  }
  if (o.migrate !== false) {
    try {
      await migrate(pool);
    } catch (err) {
      await close();
      throw err;
    }
  }
  return {
    pool,
    url,
    describe,
    close,
    ...(embedded ? { embedded: { dir: embedded.dir, hosted: embedded.hosted, pid: embedded.pid } } : {}),
  };
}

/**
 * The lead ledger's database as an entry point (worker, API, leadctl) opens it from its settings:
 * DATABASE_URL, else the embedded database of DATA_DIR (shared with the process of this machine
 * that hosts it, else hosted here), migrated. Says where in one `log` line. Anything that stops it
 * (a server that does not answer, a failed migration, embedded files another process holds) is
 * DatabaseUnreachable, whose message is the one line to print before exiting.
 */
export async function openLedgerDatabase(
  s: { databaseUrl?: string; dataDir: string },
  log?: (line: string) => void,
  o: { waitMs?: number; connectTimeoutMs?: number } = {},
): Promise<Database> {
  const where = s.databaseUrl ? redactUrl(s.databaseUrl) : `embedded in ${join(resolve(s.dataDir), 'ledger')}`;
  let db: Database;
  try {
    db = await openDatabase({ url: s.databaseUrl, dataDir: s.dataDir, ...o });
  } catch (err) {
    if (err instanceof DatabaseUnreachable) throw err;
    throw new DatabaseUnreachable(where, err, 'could not be migrated');
  }
  const e = db.embedded;
  log?.(
    `lead ledger: ${!e ? `PostgreSQL at ${db.describe}` : `embedded PostgreSQL (PGlite) in ${e.dir}, ${e.hosted ? `hosted by this process on ${db.url}` : `shared with process ${e.pid} on ${db.url}`}`}`,
  );
  return db;
}

/**
 * Applies every migration not yet applied (idempotent; safe from several processes at once).
 * On PostgreSQL node-pg-migrate's advisory lock orders concurrent runs. On the embedded database
 * every client is the same session, where that lock excludes no one: two runs at once (processes
 * starting together on one host) can both find a migration pending, and the later one then fails
 * on what the earlier created. It runs again and finds nothing left to do.
 */
export async function migrate(pool: pg.Pool, attempts = 5): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const client = await pool.connect();
    try {
      await runner({
        dbClient: client,
        dir: MIGRATIONS_DIR,
        direction: 'up',
        migrationsTable: 'ledger_migrations',
        log: () => undefined,
        noLock: false,
      });
      return;
    } catch (err) {
      if (attempt >= attempts) throw err;
    } finally {
      client.release();
    }
    await sleep(100 * attempt + Math.floor(Math.random() * 100));
  }
}
