/**
 * The lead ledger's database: PostgreSQL, always spoken to through the `pg` driver.
 *
 * - `DATABASE_URL` (postgres://…) names a real server: production, docker-compose.yml, the tests'
 *   own PostgreSQL.
 * - Without it, an embedded PostgreSQL (PGlite, PostgreSQL compiled to WASM: nothing to install)
 *   keeps its files under DATA_DIR/ledger and is served on loopback by PGlite's socket server, so
 *   the SQL, the driver and the migrations are the same as on a real server. `npm start` hosts it
 *   and hands its URL to the worker, the API and leadctl; a process run alone hosts its own.
 *
 * The schema is created and migrated at start (migrations/, node-pg-migrate), under an advisory
 * lock, so several processes starting at once migrate once.
 */
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { ROOT } from '../env.js';
import { pinExtendedQueries } from './pglite-queue.js';

export const MIGRATIONS_DIR = join(ROOT, 'migrations');

export interface Database {
  pool: pg.Pool;
  /** What other processes connect to (the embedded database's loopback URL included). */
  url: string;
  /** Where it is (a password is never shown). */
  describe: string;
  close(): Promise<void>;
}

/** An embedded PostgreSQL served on loopback; `url` is what the other processes connect to. */
export interface EmbeddedDatabase {
  url: string;
  dir: string;
  close(): Promise<void>;
}

/** Hosts the embedded database of `dir` (PGlite: one process owns the files) on 127.0.0.1. */
export async function hostEmbeddedDatabase(dir: string, o: { port?: number } = {}): Promise<EmbeddedDatabase> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const db = await PGlite.create(dir);
  // PGlite is one connection; the socket server multiplexes several clients onto it, keeping a
  // transaction's queries together.
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: o.port ?? 0, maxConnections: 64 });
  pinExtendedQueries(server); // keeps each connection's query together (./pglite-queue.ts)
  await server.start();
  const port = (server as unknown as { server: { address(): AddressInfo } }).server.address().port;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dir,
    async close() {
      await server.stop();
      await db.close();
    },
  };
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
  constructor(where: string, cause: unknown) {
    super(`the lead ledger database ${where} is not reachable: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'DatabaseUnreachable';
  }
}

/**
 * Connects to `url` (or hosts the embedded database under `dataDir` when there is none), checks
 * that it answers, and migrates the schema. A database that does not answer within
 * `connectTimeoutMs` is one clear error naming it.
 */
export async function openDatabase(o: { url?: string; dataDir?: string; max?: number; connectTimeoutMs?: number; migrate?: boolean }): Promise<Database> {
  let embedded: EmbeddedDatabase | undefined;
  let url = o.url;
  if (!url) {
    embedded = await hostEmbeddedDatabase(join(o.dataDir ?? join(ROOT, '.data'), 'ledger'));
    url = embedded.url;
  }
  const describe = embedded ? `embedded in ${embedded.dir}` : redactUrl(url);
  const pool = new pg.Pool({ connectionString: url, max: o.max ?? 10, connectionTimeoutMillis: o.connectTimeoutMs ?? 5_000, idleTimeoutMillis: 30_000 });
  // An idle client that loses its server (a restart) must not crash the process: the next query reconnects.
  pool.on('error', () => undefined);
  const close = async () => {
    await pool.end().catch(() => undefined);
    await embedded?.close();
  };
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
  return { pool, url, describe, close };
}

/** Applies every migration not yet applied (idempotent; safe from several processes at once). */
export async function migrate(pool: pg.Pool): Promise<void> {
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
  } finally {
    client.release();
  }
}
