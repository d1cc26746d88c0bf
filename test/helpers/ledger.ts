/**
 * The lead ledger on each backend the engine supports, for tests that run on both: the embedded
 * database (PGlite in this process, served on loopback) and a real PostgreSQL server
 * (test/helpers/postgres.ts). Each gets a fresh, migrated database.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Database, openDatabase } from '../../src/ledger/database.js';
import { LeadLedger } from '../../src/ledger/ledger.js';
import { after } from 'node:test';
import { useResource } from './hooks.js';
import { type PostgresServer, startPostgres } from './postgres.js';

export type Backend = 'embedded' | 'postgres';
export const BACKENDS: Backend[] = ['embedded', 'postgres'];
/** How a test title names a backend. */
export const BACKEND_TITLES: Record<Backend, string> = {
  embedded: 'the embedded database',
  postgres: 'a real PostgreSQL server',
};

/** A fresh ledger database; on the postgres backend with the server under it (closing it stops the server). */
export type LedgerDatabase = Database & { postgres?: PostgresServer };

export async function ledgerDatabase(backend: Backend): Promise<LedgerDatabase> {
  if (backend === 'embedded') {
    const dir = mkdtempSync(join(tmpdir(), 'lead-ledger-'));
    const db = await openDatabase({ dataDir: dir });
    return {
      ...db,
      close: async () => {
        await db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const pg = await startPostgres();
  try {
    const db = await openDatabase({ url: pg.url });
    return {
      ...db,
      url: pg.url,
      postgres: pg,
      close: async () => {
        await db.close();
        await pg.stop();
      },
    };
  } catch (err) {
    await pg.stop();
    throw err;
  }
}

/**
 * A fresh ledger database on `backend` for the suite this is called in (opened in a `before`
 * hook, closed in an `after` hook; test/helpers/hooks.ts), with a LeadLedger on it as `ledger`.
 */
export function useLedgerDatabase(backend: Backend): LedgerDatabase & { ledger: LeadLedger } {
  return useResource(
    `${backend} ledger database`,
    async () => {
      const db = await ledgerDatabase(backend);
      return { ...db, ledger: new LeadLedger(db.pool) };
    },
    (db) => db.close(),
  );
}

/** A fresh ledger database on `backend` for the test this is called in, closed after it. */
export async function testLedgerDatabase(backend: Backend): Promise<LedgerDatabase> {
  const db = await ledgerDatabase(backend);
  after(() => db.close());
  return db;
}
