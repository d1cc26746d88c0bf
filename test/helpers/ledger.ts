/**
 * The lead ledger on each backend the engine supports, for tests that run on both: the embedded
 * database (PGlite in this process, served on loopback) and a real PostgreSQL server
 * (test/helpers/postgres.ts). Each gets a fresh, migrated database.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Database, openDatabase } from '../../src/ledger/database.js';
import { startPostgres } from './postgres.js';

export type Backend = 'embedded' | 'postgres';
export const BACKENDS: Backend[] = ['embedded', 'postgres'];

export async function ledgerDatabase(backend: Backend): Promise<Database & { url?: string }> {
  if (backend === 'embedded') {
    const dir = mkdtempSync(join(tmpdir(), 'lead-ledger-'));
    const db = await openDatabase({ dataDir: dir });
    return { ...db, close: async () => { await db.close(); rmSync(dir, { recursive: true, force: true }); } };
  }
  const pg = await startPostgres();
  try {
    const db = await openDatabase({ url: pg.url });
    return { ...db, url: pg.url, close: async () => { await db.close(); await pg.stop(); } };
  } catch (err) {
    await pg.stop();
    throw err;
  }
}
