/**
 * The lead ledger on each backend the engine supports, for tests that run on both: the embedded
 * database (PGlite in this process, served on loopback) and a real PostgreSQL server
 * (test/helpers/postgres.ts). Each gets a fresh, migrated database.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Database, openDatabase } from '../../src/ledger/database.js';
import { type PostgresServer, startPostgres } from './postgres.js';

export type Backend = 'embedded' | 'postgres';
export const BACKENDS: Backend[] = ['embedded', 'postgres'];

/** A fresh ledger database; on the postgres backend with the server under it (closing it stops the server). */
export type LedgerDatabase = Database & { postgres?: PostgresServer };

export async function ledgerDatabase(backend: Backend): Promise<LedgerDatabase> {
  if (backend === 'embedded') {
    const dir = mkdtempSync(join(tmpdir(), 'lead-ledger-'));
    const db = await openDatabase({ dataDir: dir });
    return { ...db, close: async () => { await db.close(); rmSync(dir, { recursive: true, force: true }); } };
  }
  const pg = await startPostgres();
  try {
    const db = await openDatabase({ url: pg.url });
    return { ...db, url: pg.url, postgres: pg, close: async () => { await db.close(); await pg.stop(); } };
  } catch (err) {
    await pg.stop();
    throw err;
  }
}
